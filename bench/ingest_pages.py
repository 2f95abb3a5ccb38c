"""Pages per second through `manage.py ingest` on a generated folder of mixed formats.

    python -m bench.ingest_pages --out bench/results/ingest-pages.md
    python -m bench.ingest_pages --before /tmp/before   # also a checkout of an older build

The folder (about 1,000 pages in 525 files, seeded, made once per run): PDFs of 10 pages, decks
of 10 slides, two-sheet workbooks, and one-page DOCX, Markdown, HTML, CSV and JSON files. A page
is a PDF page, a slide, a sheet or a one-page file: what a citation can point at. Each build and
worker count ingests it into a fresh data folder (its own SQLite database and media), timed from
the command's start to its exit, migrations excluded; the best of `--rounds` is kept, since
other load on the machine only ever slows a round down.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORDS = (
    "office travel budget leave policy parking desk meeting room badge laptop expense receipt "
    "manager approval security training canteen shuttle holiday contract salary review team "
    "project deadline customer invoice report quarter revenue safety floor printer network"
).split()
# (kind, files, pages per file)
MIX = [
    ("pdf", 30, 10),
    ("pptx", 20, 10),
    ("xlsx", 25, 2),
    ("docx", 100, 1),
    ("md", 100, 1),
    ("html", 100, 1),
    ("csv", 75, 1),
    ("json", 75, 1),
]


def _sentences(rng: random.Random, count: int) -> str:
    return " ".join(
        " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 16))).capitalize() + "."
        for _ in range(count)
    )


def build_folder(folder: Path, seed: int = 20) -> int:
    """Write the mixed folder; return its page count."""
    import docx
    from fpdf import FPDF
    from openpyxl import Workbook
    from pptx import Presentation

    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    pages = 0
    for kind, files, per_file in MIX:
        for n in range(files):
            path = folder / f"{kind}-{n:03d}.{kind}"
            if kind == "pdf":
                pdf = FPDF()
                pdf.set_font("Helvetica", size=11)
                for _ in range(per_file):
                    pdf.add_page()
                    pdf.multi_cell(0, 6, _sentences(rng, 25))
                path.write_bytes(bytes(pdf.output()))
            elif kind == "pptx":
                deck = Presentation()
                for s in range(per_file):
                    slide = deck.slides.add_slide(deck.slide_layouts[1])
                    slide.shapes.title.text = f"Slide {s + 1}: {rng.choice(WORDS)}"
                    slide.placeholders[1].text = _sentences(rng, 4)
                    slide.notes_slide.notes_text_frame.text = _sentences(rng, 2)
                out = io.BytesIO()
                deck.save(out)
                path.write_bytes(out.getvalue())
            elif kind == "xlsx":
                book = Workbook()
                for s in range(per_file):
                    sheet = book.active if s == 0 else book.create_sheet()
                    sheet.title = f"Sheet {s + 1}"
                    sheet.append(["Item", "Owner", "Cost", "Note"])
                    for _ in range(60):
                        row = [rng.choice(WORDS), rng.choice(WORDS), rng.randint(1, 999)]
                        sheet.append([*row, _sentences(rng, 1)])
                out = io.BytesIO()
                book.save(out)
                path.write_bytes(out.getvalue())
            elif kind == "docx":
                document = docx.Document()
                document.add_heading(f"Note {n}", level=1)
                for _ in range(5):
                    document.add_paragraph(_sentences(rng, 5))
                out = io.BytesIO()
                document.save(out)
                path.write_bytes(out.getvalue())
            elif kind == "md":
                path.write_text(
                    f"# Note {n}\n\n" + "\n\n".join(_sentences(rng, 5) for _ in range(5))
                )
            elif kind == "html":
                body = "".join(f"<p>{_sentences(rng, 5)}</p>" for _ in range(5))
                path.write_text(f"<html><head><title>Page {n}</title></head><body>{body}</body>")
            elif kind == "csv":
                lines = ["item,owner,cost,note"] + [
                    f"{rng.choice(WORDS)},{rng.choice(WORDS)},{rng.randint(1, 999)},"
                    f'"{_sentences(rng, 1)}"'
                    for _ in range(60)
                ]
                path.write_text("\n".join(lines) + "\n")
            else:
                import json

                records = [
                    {
                        "item": rng.choice(WORDS),
                        "cost": rng.randint(1, 999),
                        "note": _sentences(rng, 1),
                    }
                    for _ in range(60)
                ]
                path.write_text(json.dumps({"records": records}))
            pages += per_file
    return pages


def ingest_seconds(checkout: Path, folder: Path, workers: int | None) -> float:
    """One timed `manage.py ingest` of the folder by `checkout`, into a fresh data folder."""
    python = checkout / ".venv" / "bin" / "python"
    python = python if python.exists() else Path(sys.executable)
    with tempfile.TemporaryDirectory(prefix="ingest-bench-") as data:
        env = {**os.environ, "RAGSITE_DATA_DIR": data, "DJANGO_SECRET_KEY": "bench-only"}
        env.pop("DATABASE_URL", None)
        run = dict(cwd=checkout, env=env, check=True, stdout=subprocess.DEVNULL)
        subprocess.run([str(python), "manage.py", "migrate", "--noinput", "-v", "0"], **run)
        command = [str(python), "manage.py", "ingest", str(folder), "-v", "0"]
        if workers is not None:
            command += ["--workers", str(workers)]
        started = time.perf_counter()
        subprocess.run(command, **run)
        return time.perf_counter() - started


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, os.cpu_count() or 1])
    parser.add_argument("--before", type=Path, help="A checkout of an older build to compare.")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ingest-folder-") as tmp:
        folder = Path(tmp) / "mixed"
        pages = build_folder(folder)
        files = sum(1 for _ in folder.iterdir())
        runs: list[tuple[str, float]] = []
        if args.before:
            best = min(ingest_seconds(args.before, folder, None) for _ in range(args.rounds))
            runs.append((f"before ({args.before.name}, sequential)", best))
        for workers in args.workers:
            best = min(ingest_seconds(ROOT, folder, workers) for _ in range(args.rounds))
            runs.append((f"--workers {workers}", best))
    load = os.getloadavg()[0]
    lines = [
        f"# ingest: {pages} pages in {files} mixed files",
        "",
        f"{os.cpu_count()} CPUs, load average {load:.1f} when it ended; best of {args.rounds}.",
        "",
        "| build | seconds | pages/s |",
        "|---|---:|---:|",
        *(f"| {label} | {seconds:.1f} | {pages / seconds:.1f} |" for label, seconds in runs),
    ]
    report = "\n".join(lines) + "\n"
    print(report)
    if args.out:
        args.out.write_text(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
