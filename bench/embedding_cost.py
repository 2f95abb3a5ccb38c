"""CPU cost of the offline embedding model (EMBEDDINGS=local), one call at a time on one thread.

    .venv/bin/python -m bench.embedding_cost [--model multilingual-e5-small] [--chunks 60]

Questions: eval/questions.jsonl as people typed them, each embedded once. Chunks: the public
set's pages (eval/docs) cut as `sync_index` cuts them, the first --chunks of them. CPU time of
this process (time.process_time), which what other processes do on the host changes little; the
wall time per question is printed beside it.
"""

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ragsite.settings")
django.setup()

from knowledge import local_embeddings  # noqa: E402
from knowledge.chunking import chunk_segments  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def _chunks(limit: int) -> list[str]:
    from pypdf import PdfReader

    texts: list[str] = []
    for pdf in sorted((ROOT / "eval/docs").glob("*.pdf")):
        segments = [
            {"label": f"page={n}", "text": page.extract_text() or ""}
            for n, page in enumerate(PdfReader(pdf).pages, start=1)
        ]
        texts.extend(piece.text for piece in chunk_segments(segments))
    return texts[:limit]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model",
        default="multilingual-e5-small",
        choices=["multilingual-e5-small", "e5-small-enpt"],
    )
    parser.add_argument("--chunks", type=int, default=60)
    args = parser.parse_args()
    questions = [json.loads(line)["question"] for line in (ROOT / "eval/questions.jsonl").open()]
    local_embeddings.embed_query("warm up", args.model)
    cpu, wall = [], []
    for question in questions:
        c, w = time.process_time(), time.perf_counter()
        local_embeddings.embed_query(question, args.model)
        cpu.append((time.process_time() - c) * 1000)
        wall.append((time.perf_counter() - w) * 1000)
    chunks = _chunks(args.chunks)
    c = time.process_time()
    for text in chunks:
        local_embeddings.embed_passages([text], args.model)
    per_chunk = (time.process_time() - c) * 1000 / len(chunks)
    print(
        f"{args.model}: {len(questions)} questions, CPU per question mean "
        f"{statistics.mean(cpu):.1f} ms, p50 {statistics.median(cpu):.1f} ms "
        f"(wall p50 {statistics.median(wall):.1f} ms); {len(chunks)} chunks, "
        f"CPU per chunk {per_chunk:.0f} ms"
    )


if __name__ == "__main__":
    main()
