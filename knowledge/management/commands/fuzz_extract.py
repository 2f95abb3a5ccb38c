"""Fuzz the file extractors with mutated real files: every outcome must be text or ExtractionError.

A seeded mutator (no coverage guidance): byte flips, truncation, inserted and duplicated runs,
splices between two files of the same type, and for DOCX the same mutations inside one member of
the zip (usually the one holding the text), re-zipped so the parser gets past the archive; the
same for PPTX and XLSX. Types the sample knowledge base has no file of start from small files
built here. Each file is
read in this process by `knowledge.extract.read`, the layer below the catch-all in `parse`, so an
exception the handlers do not turn into a clear message is reported instead of hidden.
"""

from __future__ import annotations

import io
import logging
import random
import re
import signal
import time
import traceback
import warnings
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from knowledge.extract import ExtractionError, read

FUZZ_TYPES = (".txt", ".md", ".html", ".pdf", ".docx", ".pptx", ".xlsx", ".csv", ".json")
# The part of each zip-based format that holds its text, mutated most often.
_MAIN_MEMBER = {
    ".docx": "word/document.xml",
    ".pptx": "ppt/slides/slide1.xml",
    ".xlsx": "xl/worksheets/sheet1.xml",
}
# A file that takes longer is counted as slow and skipped: in production the sandbox's budget
# ends it; the fuzz is after exceptions.
PER_FILE_SECONDS = 5.0


_NAME = re.compile(rb"[/<][A-Za-z][A-Za-z0-9:]{2,}")


class _Slow(BaseException):
    """Raised by the alarm; a BaseException so no parser's `except Exception` swallows it."""


@dataclass
class Report:
    files: int = 0
    outcomes: Counter = field(default_factory=Counter)
    findings: list[tuple[str, str, bytes]] = field(default_factory=list)  # kind, detail, input

    def finding_kinds(self) -> Counter:
        return Counter(kind for kind, _, _ in self.findings)


def seed_files() -> dict[str, list[bytes]]:
    """Real files of every supported type: the sample knowledge base's, and for the office and
    data formats built ones with what those lack (formulas, a hidden sheet, a cp1252 CSV)."""
    seeds: dict[str, list[bytes]] = {ext: [] for ext in FUZZ_TYPES}
    root = Path(settings.BASE_DIR) / "sample_kb"
    for path in sorted(root.rglob("*")):
        ext = path.suffix.lower()
        # Its documents only: names starting with "_" are the builder and its sources.
        internal = any(part.startswith("_") for part in path.relative_to(root).parts)
        if ext in seeds and path.is_file() and not internal:
            seeds[ext].append(path.read_bytes())
    for ext, files in seeds.items():
        if ext in _BUILT_SEEDS:
            files.extend(_BUILT_SEEDS[ext]())
    missing = [ext for ext, files in seeds.items() if not files]
    if missing:
        raise CommandError(f"No sample files of type {', '.join(missing)} in sample_kb/")
    return seeds


def mutate(rng: random.Random, ext: str, data: bytes, others: list[bytes]) -> bytes:
    if ext == ".pdf" and rng.random() < 0.2:
        # Filters name how streams are packed; a reader meets unknown and obsolete ones.
        filters = list(re.finditer(rb"/[A-Za-z0-9]+Decode\b", data))
        if filters:
            match = rng.choice(filters)
            new = rng.choice([b"/Fl", b"/FooDecode", b"/LZW", b"/A85", b"/Crypt", b"/JBIG2Decode"])
            return data[: match.start()] + new + data[match.end() :]
    if ext in _MAIN_MEMBER and rng.random() < 0.8:
        mutated = _mutate_zip_member(rng, data, _MAIN_MEMBER[ext])
        if mutated is not None:
            return mutated
    return _mutate_bytes(rng, data, others)


def _mutate_bytes(rng: random.Random, data: bytes, others: list[bytes]) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        if not buf:
            buf.extend(rng.randbytes(rng.randint(1, 64)))
            continue
        op = rng.randrange(8)
        pos = rng.randrange(len(buf))
        if op == 0:  # flip bits
            for _ in range(rng.randint(1, 8)):
                i = rng.randrange(len(buf))
                buf[i] ^= 1 << rng.randrange(8)
        elif op == 1:  # interesting bytes
            buf[pos : pos + 1] = rng.choice(
                [b"\x00", b"\xff", b"<", b">", b"/", b"(", b")", b"[", b"]", b"#", b"*", b"\n"]
            )
        elif op == 2:  # truncate
            del buf[rng.randrange(len(buf) + 1) :]
        elif op == 3:  # insert random bytes
            buf[pos:pos] = rng.randbytes(rng.randint(1, 32))
        elif op == 4:  # duplicate a run
            length = rng.randint(1, min(4096, len(buf)))
            start = rng.randrange(len(buf) - length + 1)
            buf[pos:pos] = buf[start : start + length] * rng.randint(1, 8)
        elif op == 5:  # splice with another file of the same type
            other = rng.choice(others) if others else data
            cut = rng.randrange(len(other) + 1)
            buf = buf[:pos] + bytearray(other[cut:])
        elif op == 6:  # a PDF name or XML/HTML tag name cut short or renamed
            names = list(_NAME.finditer(buf, max(0, pos - 2000), pos + 2000))
            if names:
                match = rng.choice(names)
                word = match.group()
                short = word[: rng.randint(2, max(2, len(word) - 1))]
                replacement = rng.choice([short, word[:1] + b"Foo" + word[1:], word[:1] + b"Zz"])
                buf[match.start() : match.end()] = replacement
        else:  # a number grows huge (counts, spans, lengths, offsets)
            digits = [i for i in range(max(0, pos - 200), min(len(buf), pos + 200))]
            digits = [i for i in digits if 48 <= buf[i] <= 57]
            if digits:
                i = rng.choice(digits)
                buf[i : i + 1] = str(rng.choice([0, -1, 99999999, 2**31, 2**64])).encode()
    return bytes(buf)


def _mutate_zip_member(rng: random.Random, data: bytes, main_member: str) -> bytes | None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = [(info, archive.read(info)) for info in archive.infolist()]
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return None
    xml = [i for i, (info, _) in enumerate(members) if info.filename.endswith(".xml")]
    if not xml:
        return None
    main = [i for i in xml if members[i][0].filename == main_member]
    target = main[0] if main and rng.random() < 0.7 else rng.choice(xml)
    others = [content for _, content in members]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for i, (info, content) in enumerate(members):
            if i == target:
                content = _mutate_bytes(rng, content, others)
            archive.writestr(info.filename, content)
    return out.getvalue()


def _deck_seeds() -> list[bytes]:
    from pptx import Presentation
    from pptx.util import Inches

    deck = Presentation()
    deck.core_properties.title = "Travel"
    for title, body in [("Trains", "Book trains under 4 hours."), ("Hotels", "Up to 140 euros.")]:
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.shapes.title.text = title
        slide.placeholders[1].text = body
        slide.notes_slide.notes_text_frame.text = f"Notes on {title.lower()}."
        table = slide.shapes.add_table(2, 2, Inches(1), Inches(5), Inches(4), Inches(1)).table
        table.cell(0, 0).text, table.cell(1, 1).text = "City", "Porto"
    out = io.BytesIO()
    deck.save(out)
    return [out.getvalue()]


def _workbook_seeds() -> list[bytes]:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = "Offices"
    for row in [("City", "Desks", "Opened"), ("Porto", 40, "2019-03-01"), ("Lisbon", 25, None)]:
        sheet.append(row)
    sheet["B4"] = "=SUM(B2:B3)"
    book.create_sheet("Hidden").append(("Secret", 1))
    book["Hidden"].sheet_state = "hidden"
    out = io.BytesIO()
    book.save(out)
    return [out.getvalue()]


_BUILT_SEEDS = {
    ".pptx": _deck_seeds,
    ".xlsx": _workbook_seeds,
    ".csv": lambda: [
        b'City,Desks,Note\nPorto,40,"Near the metro, line D"\nLisbon,25,\n',
        "Cidade;Secretária\nSão Paulo;Inês\n".encode("cp1252"),
    ],
    ".json": lambda: [
        b'{"updated": "2025-01-10", "offices": [{"city": "Porto", "desks": 40, '
        b'"tags": ["hq", "parking"]}, {"city": "Lisbon", "contact": {"name": "Ana"}}]}',
        b'[{"q": "Wifi?", "a": "Guest network"}, {"q": "Parking?", "a": null}]',
    ],
}


def check_outcome(outcome) -> str | None:
    """None when `read` returned what its contract promises, else what is wrong."""
    if not (isinstance(outcome, tuple) and len(outcome) == 2):
        return f"returned {type(outcome).__name__}, not (segments, title)"
    segments, title = outcome
    if not isinstance(title, str):
        return f"title is {type(title).__name__}"
    if not isinstance(segments, list) or not segments:
        return "no segments"
    for segment in segments:
        if not (
            isinstance(segment, dict)
            and isinstance(segment.get("label"), str)
            and isinstance(segment.get("text"), str)
            and segment["text"].strip()
        ):
            return f"malformed segment {segment!r:.80}"
    return None


def run_fuzz(
    *, seed: int, per_type: int | None = None, seconds: float | None = None, report=None
) -> Report:
    """Mutate and read files until `per_type` files of each type are done or `seconds` pass."""
    rng = random.Random(seed)
    seeds = seed_files()
    report = report or Report()
    deadline = time.monotonic() + seconds if seconds is not None else None
    previous = signal.signal(signal.SIGALRM, _raise_slow)
    try:
        round_number = 0
        while True:
            if per_type is not None and round_number >= per_type:
                break
            if deadline is not None and time.monotonic() >= deadline:
                break
            round_number += 1
            for ext in FUZZ_TYPES:
                originals = seeds[ext]
                data = mutate(rng, ext, rng.choice(originals), originals)
                _read_one(ext, data, report)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    return report


def _raise_slow(signum, frame):
    raise _Slow


def _read_one(ext: str, data: bytes, report: Report) -> None:
    report.files += 1
    signal.setitimer(signal.ITIMER_REAL, PER_FILE_SECONDS)
    try:
        outcome = read(f"fuzzed{ext}", data)
    except _Slow:
        report.outcomes["slow"] += 1
        return
    except ExtractionError:
        report.outcomes["error"] += 1
        return
    except Exception as exc:
        report.outcomes["uncaught"] += 1
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        where = f"{Path(frame.filename).name}:{frame.lineno}"
        report.findings.append((f"{ext} {type(exc).__name__} at {where}", str(exc)[:200], data))
        return
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    problem = check_outcome(outcome)
    if problem:
        report.outcomes["bad result"] += 1
        report.findings.append((f"{ext} bad result", problem, data))
    else:
        report.outcomes["text"] += 1


class Command(BaseCommand):
    help = (
        "Fuzz the file extractors (every supported type) with mutated sample files for a "
        "while; exit non-zero if any file raised something other than ExtractionError."
    )

    def add_arguments(self, parser):
        parser.add_argument("--seconds", type=float, default=60.0)
        parser.add_argument("--seed", type=int, help="Default: a random one (printed).")
        parser.add_argument(
            "--save", metavar="DIR", help="Write each input that raised to DIR, to reproduce it."
        )

    def handle(self, *args, seconds, seed, save, **options):
        seed = seed if seed is not None else random.randrange(2**32)
        self.stdout.write(f"Fuzzing {', '.join(FUZZ_TYPES)} for {seconds:g} s, seed {seed}.")
        started = time.monotonic()
        logging.disable(logging.ERROR)  # the parsers' complaints about each broken file
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                report = run_fuzz(seed=seed, seconds=seconds)
        finally:
            logging.disable(logging.NOTSET)
        elapsed = time.monotonic() - started
        outcomes = ", ".join(f"{n} {k}" for k, n in sorted(report.outcomes.items()))
        self.stdout.write(
            f"{report.files} files in {elapsed:.0f} s ({report.files / elapsed:.1f}/s): {outcomes}."
        )
        for kind, count in report.finding_kinds().most_common():
            detail = next(d for k, d, _ in report.findings if k == kind)
            self.stdout.write(f"  {count}x {kind}: {detail}")
        if save and report.findings:
            folder = Path(save)
            folder.mkdir(parents=True, exist_ok=True)
            for number, (kind, _, data) in enumerate(report.findings):
                ext = kind.split()[0]
                (folder / f"finding-{number:04d}{ext}").write_bytes(data)
        if report.findings:
            raise CommandError(f"{len(report.findings)} file(s) raised an uncaught exception.")
