"""A text question on the embedded index right after a document was written, with the vocabulary
grown from the change log (after) against read whole again (before, as after every write in
earlier builds), alternating question by question on a copy of a large index.

    .venv/bin/python -m bench.search_after_write /tmp/search-scale-X/index-100000.sqlite3 \
        --size 100000

The file is one that `bench.search_scale` indexed; it is copied first (the writes rewrite
documents of the synthetic corpus with their own text, so the copy's content stays the same).
"""

import argparse
import asyncio
import os
import shutil
import tempfile
import time
from pathlib import Path

from bench.percentiles import print_percentiles


async def measure(path: Path, size: int, questions: int) -> dict[str, list[float]]:
    from bench.search_scale import Corpus
    from knowledge.access import AccessFilter
    from knowledge.search import embedded
    from knowledge.search.base import SearchQuery

    backend = embedded.EmbeddedSearchBackend(path)
    corpus = Corpus(size)
    access = AccessFilter(groups=frozenset({"g1"}))
    grow = embedded._grow
    times: dict[str, list[float]] = {"before": [], "after": []}
    try:
        for i, (words, _) in enumerate(corpus.queries(questions)):
            name = ("before", "after")[i % 2]
            embedded._grow = grow if name == "after" else (lambda *_: None)  # type: ignore[assignment]
            document = i % corpus.documents
            await backend.upsert_document(document + 1, list(corpus.chunks(document)))
            started = time.perf_counter()
            await backend.search(SearchQuery(words, access, top=5))
            times[name].append(time.perf_counter() - started)
    finally:
        embedded._grow = grow
        await backend.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("index", help="an embedded index file written by bench.search_scale")
    parser.add_argument("--size", type=int, required=True, help="its corpus size, in chunks")
    parser.add_argument("--questions", type=int, default=60)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ragsite.settings")
    import django

    django.setup()
    with tempfile.TemporaryDirectory(prefix="search-after-write-") as scratch:
        copy = Path(scratch) / "index.sqlite3"
        shutil.copyfile(args.index, copy)
        times = asyncio.run(measure(copy, args.size, args.questions))
    print(f"{args.questions} writes, each followed by a question; load {os.getloadavg()[0]:.2f}")
    print_percentiles(times, digits=0)


if __name__ == "__main__":
    main()
