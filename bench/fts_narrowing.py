"""The embedded index's text half on a large index, every match scored (before) against the
narrowed query (after: common words qualify a passage only in pairs, knowledge/search/fts_terms.py),
per question, interleaved, through the backend as the app builds it.

    .venv/bin/python -m bench.fts_narrowing /tmp/search-scale-X/index-100000.sqlite3 --size 100000

The file is one that `bench.search_scale` indexed (its temporary folder is kept) and --size the
corpus size it was built for, so the questions are that run's. --mode hybrid measures the whole
question (the vector scan runs beside the text half). Prints p50 / p90 / p99 of each and how many
of the five passages the narrowed query returns are the ones every match scored would.
"""

import argparse
import os
import time

import numpy as np

from bench.percentiles import print_percentiles


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("index", help="an embedded index file written by bench.search_scale")
    parser.add_argument("--size", type=int, required=True, help="its corpus size, in chunks")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--mode", choices=["text", "hybrid"], default="text")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ragsite.settings")
    import django

    django.setup()
    from bench.search_scale import Corpus
    from knowledge.access import AccessFilter
    from knowledge.search import embedded
    from knowledge.search.base import SearchQuery

    backend = embedded.EmbeddedSearchBackend(args.index)
    access = AccessFilter(groups=frozenset({"g1"}))
    narrowed = embedded.narrowed_query
    times: dict[str, list[float]] = {"before": [], "after": []}
    overlap = []
    for words, vector in Corpus(args.size).queries(args.queries):
        query = SearchQuery(words, access, top=5, vector=vector, mode=args.mode)
        found = {}
        for name, narrow in (("before", lambda *_: None), ("after", narrowed)):
            embedded.narrowed_query = narrow  # type: ignore[assignment]
            started = time.perf_counter()
            hits = backend.search_sync(query)
            times[name].append(time.perf_counter() - started)
            found[name] = {(h.document_id, h.ordinal) for h in hits}
        overlap.append(len(found["before"] & found["after"]) / max(1, len(found["before"])))
    embedded.narrowed_query = narrowed
    print(f"{args.queries} questions ({args.mode}), load average {os.getloadavg()[0]:.2f}")
    print_percentiles(times, (50, 90, 99))
    print(f"top 5 shared with every match scored: {np.mean(overlap):.2f}")


if __name__ == "__main__":
    main()
