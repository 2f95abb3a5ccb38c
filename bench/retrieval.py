"""Text query latency on the embedded index, one question at a time (C=1), on a 1,000-page corpus.

    .venv/bin/python -m bench.retrieval [--pages 1000] [--queries 2000] [--index PATH]

The corpus is the public evaluation set's pages (eval/docs) repeated into documents of 25 pages
under distinct titles until it has --pages pages; the questions are eval/questions.jsonl, as
people typed them (typos included). Each query is a full `search()` of the backend as the chat
uses it: one hop to the index's thread, the ranking, the texts, one hit per page. Prints p50, p95,
p99 and the mean in milliseconds.
"""

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import django
from pypdf import PdfReader

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ragsite.settings")
django.setup()  # the access vocabulary lives beside the models

from knowledge.access import ANONYMOUS  # noqa: E402
from knowledge.search.base import IndexChunk, SearchQuery  # noqa: E402
from knowledge.search.embedded import EmbeddedSearchBackend  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PAGES_PER_DOCUMENT = 25
CHUNK_CHARS = 1000


def source_pages() -> list[str]:
    pages = []
    for pdf in sorted((ROOT / "eval/docs").glob("*.pdf")):
        pages.extend(page.extract_text() or "" for page in PdfReader(pdf).pages)
    return pages


def chunks_of(document_id: int, pages: list[str]) -> list[IndexChunk]:
    out = []
    for number, text in enumerate(pages, start=1):
        for start in range(0, len(text), CHUNK_CHARS):
            out.append(
                IndexChunk(
                    document_id=document_id,
                    ordinal=len(out),
                    title=f"Guide {document_id}",
                    text=text[start : start + CHUNK_CHARS],
                    citation=f"guide-{document_id}.pdf#page={number}",
                    label=f"page={number}",
                )
            )
    return out


async def build(index: EmbeddedSearchBackend, pages: list[str], total: int) -> None:
    corpus = [pages[i % len(pages)] for i in range(total)]
    for document_id, start in enumerate(range(0, total, PAGES_PER_DOCUMENT), start=1):
        await index.upsert_document(
            document_id, chunks_of(document_id, corpus[start : start + PAGES_PER_DOCUMENT])
        )


def eval_questions() -> list[str]:
    with open(ROOT / "eval/questions.jsonl") as fh:
        return [json.loads(line)["question"] for line in fh]


async def measure(index, questions: list[str], queries: int) -> list[float]:
    for question in questions:  # warm-up: connections, page cache, the vocabulary
        await index.search(SearchQuery(text=question, access=ANONYMOUS, top=5))
    timings = []
    for i in range(queries):
        query = SearchQuery(text=questions[i % len(questions)], access=ANONYMOUS, top=5)
        started = time.perf_counter()
        await index.search(query)
        timings.append((time.perf_counter() - started) * 1000)
    return timings


async def main(pages: int, queries: int, path: str | None) -> None:
    source, questions = source_pages(), eval_questions()
    with tempfile.TemporaryDirectory() as folder:
        index = EmbeddedSearchBackend(path or Path(folder) / "index.sqlite3")
        try:
            started = time.perf_counter()
            await build(index, source, pages)
            built = time.perf_counter() - started
            timings = await measure(index, questions, queries)
        finally:
            await index.close()
    cuts = statistics.quantiles(timings, n=100)
    print(
        f"{pages} pages indexed in {built:.1f} s; {queries} text queries at C=1: "
        f"p50 {cuts[49]:.2f} ms, p95 {cuts[94]:.2f} ms, p99 {cuts[98]:.2f} ms, "
        f"mean {statistics.fmean(timings):.2f} ms"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=1000)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--index", help="Index file to write (default: a temporary one).")
    args = parser.parse_args()
    asyncio.run(main(args.pages, args.queries, args.index))
