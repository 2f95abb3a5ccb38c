"""The embedded index's text half, before and after rank-then-filter, on one index file.

    .venv/bin/python -m bench.fts_rank_filter /tmp/search-scale-X/index-100000.sqlite3 --size 100000

The file is one that `bench.search_scale` indexed (its temporary folder is kept), and --size the
corpus size it was built for, so the questions are the same as that run's. Each question runs
both statements one after the other, read-only, so drift in the machine's load hits both alike;
their hits must agree. Before: FTS5 MATCH with the access filter in the same statement, which
looks up every match's groups. After: BM25's best SEARCH_TEXT_CANDIDATES matches first, then the
filter over those (knowledge/search/embedded.py).
"""

import argparse
import os
import sqlite3
import time

import numpy as np

from bench.percentiles import print_percentiles

COLUMNS = "c.rowid, c.document_id, c.ordinal, c.citation, c.label, c.collection"
WHERE = "c.document_id IN (SELECT document_id FROM document_groups WHERE grp IN (?, ?))"
BEFORE = (
    f"SELECT {COLUMNS}, bm25(chunks_fts, 2.0, 1.0) AS rank FROM chunks_fts f "
    f"JOIN chunks c ON c.rowid = f.rowid WHERE chunks_fts MATCH ? AND {WHERE} "
    "ORDER BY rank LIMIT ?"
)
AFTER = (
    "WITH best AS MATERIALIZED (SELECT rowid, bm25(chunks_fts, 2.0, 1.0) AS rank "
    "FROM chunks_fts WHERE chunks_fts MATCH ? ORDER BY rank LIMIT ?) "
    f"SELECT {COLUMNS}, b.rank FROM best b JOIN chunks c ON c.rowid = b.rowid WHERE {WHERE} "
    "ORDER BY b.rank LIMIT ?"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("index", help="an embedded index file written by bench.search_scale")
    parser.add_argument("--size", type=int, required=True, help="its corpus size, in chunks")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--candidates", type=int, default=1000)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ragsite.settings")
    import django

    django.setup()
    from bench.search_scale import Corpus
    from knowledge.search.fts_terms import fts_query

    questions = [fts_query(words) for words, _ in Corpus(args.size).queries(args.queries)]
    conn = sqlite3.connect(f"file:{args.index}?mode=ro", uri=True)
    fetch = 15  # top 5, three chunks per page
    times: dict[str, list[float]] = {"before": [], "after": []}
    matches = [
        conn.execute("SELECT count(*) FROM chunks_fts WHERE chunks_fts MATCH ?", [q]).fetchone()[0]
        for q in questions
    ]
    for match in questions:
        started = time.perf_counter()
        before = conn.execute(BEFORE, [match, "g1", "public", fetch]).fetchall()
        times["before"].append(time.perf_counter() - started)
        started = time.perf_counter()
        after = conn.execute(AFTER, [match, args.candidates, "g1", "public", fetch]).fetchall()
        times["after"].append(time.perf_counter() - started)
        if len(after) == fetch:  # else the backend would run the filtered query
            assert [r[6] for r in before] == [r[6] for r in after], match
    print(f"{len(questions)} questions, load average {os.getloadavg()[0]:.2f}")
    p50, p99 = np.percentile(matches, [50, 99])
    print(f"matches per question: p50 {p50:.0f}, p99 {p99:.0f}")
    print_percentiles(times)


if __name__ == "__main__":
    main()
