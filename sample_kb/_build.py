#!/usr/bin/env python3
"""Regenerate the binary documents (.pdf, .docx, .pptx, .xlsx) of the sample knowledge base from
their sources.

The text of every PDF and DOCX is a Markdown file in _source/ (the same folder and name as the
document it makes); a slide deck's slides and a workbook's sheets are a TOML file there instead.
Each is listed with its metadata in _source/manifest.toml. The Markdown, HTML, text, CSV and JSON
documents are edited directly in their folders. Run from anywhere:

    .venv/bin/python sample_kb/_build.py            # rebuild all generated files
    .venv/bin/python sample_kb/_build.py --check    # rebuild, then verify QUESTIONS.json

Output is deterministic (fixed dates, normalised zip entries), so rebuilding without changing
the text produces byte-identical files and no git diff.

The sources use a small part of Markdown: one "# " title, "## " headings, paragraphs (lines
joined with spaces), "-" and "1." lists, and in a PDF's source a "---" line to start the next
page; anything else is refused. PDF rules: core font Helvetica only, plain ASCII text, one
explicit page per "---"-separated part (the build fails if a page overflows, so facts stay on
the page QUESTIONS.json names). Requires fpdf2, python-docx, python-pptx, openpyxl and
markdown-it-py; --check also needs pypdf, and reads slide decks, workbooks, CSV and JSON with the
project's own readers (knowledge/formats/), so a question's slide or sheet is the one a citation
names.
"""

import datetime as dt
import io
import json
import re
import sys
import tomllib
import zipfile
from html.parser import HTMLParser
from pathlib import Path

from docx import Document
from fpdf import FPDF
from markdown_it import MarkdownIt

ROOT = Path(__file__).resolve().parent
SOURCES = ROOT / "_source"
AUTHOR = "Northwind Lattice GmbH"
FIXED_DATE = dt.datetime(2025, 3, 1, 9, 0, 0, tzinfo=dt.UTC)
# Made from a TOML source (slides or sheets); PDFs and DOCX files from a Markdown one.
FROM_TOML = (".pptx", ".xlsx")


# --------------------------------------------------------------------------------------------
# Sources
# Blocks: ("h2", text) | ("p", text) | ("ul", [items]) | ("ol", [items])

LISTS = {"bullet_list_open": "ul", "ordered_list_open": "ol"}
STRUCTURE = {"heading_close", "paragraph_close", "list_item_open", "list_item_close"}
STRUCTURE |= {"bullet_list_close", "ordered_list_close"}


def read_source(path: Path) -> tuple[str, list[list[tuple]]]:
    """(title, pages of blocks) of a Markdown source; pages are separated by "---" lines."""
    title, pages, pending = "", [[]], ""
    for token in MarkdownIt("commonmark").parse(path.read_text(encoding="utf-8")):
        if token.type in LISTS and token.level == 0:
            pages[-1].append((LISTS[token.type], []))
        elif token.type == "heading_open" and token.tag in ("h1", "h2"):
            pending = token.tag
        elif token.type == "paragraph_open":
            pending = "item" if token.level else "p"
        elif token.type == "hr":
            pages.append([])
        elif token.type == "inline":
            text = token.content.replace("\n", " ")
            if pending == "h1":
                title = text
            elif pending == "item":
                pages[-1][-1][1].append(text)
            else:
                pages[-1].append((pending, text))
        elif token.type not in STRUCTURE:
            raise SystemExit(f"{path}: line {token.map and token.map[0] + 1}: not supported "
                             f"in a source ({token.type} {token.tag})")  # fmt: skip
    if not title:
        raise SystemExit(f"{path}: the first line must be the title (# Title)")
    return title, pages


def specs() -> list[dict]:
    """Every generated document: its manifest entry, with the title and text of its source."""
    manifest = tomllib.loads((SOURCES / "manifest.toml").read_text(encoding="utf-8"))
    out = []
    for entry in manifest["document"]:
        if entry["path"].endswith(FROM_TOML):
            source = (SOURCES / entry["path"]).with_suffix(".toml")
            out.append({**entry, **tomllib.loads(source.read_text(encoding="utf-8"))})
            continue
        title, pages = read_source((SOURCES / entry["path"]).with_suffix(".md"))
        if entry["path"].endswith(".docx") and len(pages) > 1:
            raise SystemExit(f"{entry['path']}: a DOCX has no pages; remove the --- lines")
        out.append({**entry, "title": title, "pages": pages, "blocks": pages[0]})
    return out


# --------------------------------------------------------------------------------------------
# PDF


class HandbookPDF(FPDF):
    doc_title = ""

    def footer(self):
        self.set_y(-15)
        self.set_font("Helvetica", "", 8)
        self.set_text_color(110, 110, 110)
        self.cell(0, 8, f"{AUTHOR} - {self.doc_title} - Page {self.page_no()} of {{nb}}", align="C")
        self.set_text_color(0, 0, 0)


def _check_pdf_text(text: str, where: str) -> None:
    bad = sorted({c for c in text if ord(c) > 126 or (ord(c) < 32 and c != "\n")})
    if bad:
        raise SystemExit(f"{where}: non-ASCII characters not allowed in PDFs: {bad!r}")


def build_pdf(spec: dict) -> bytes:
    pdf = HandbookPDF(format="A4")
    pdf.doc_title = spec["title"]
    pdf.set_margins(20, 20, 20)
    pdf.set_auto_page_break(True, margin=20)
    pdf.set_title(spec["title"])
    pdf.set_author(AUTHOR)
    pdf.set_subject(spec["subject"])
    pdf.set_creator("sample_kb/_build.py (fpdf2)")
    pdf.set_creation_date(FIXED_DATE)
    pdf.alias_nb_pages()
    for number, blocks in enumerate(spec["pages"], start=1):
        pdf.add_page()
        if number == 1:
            pdf.set_font("Helvetica", "B", 20)
            pdf.multi_cell(0, 10, spec["title"], new_x="LMARGIN", new_y="NEXT")
            pdf.set_font("Helvetica", "I", 10)
            pdf.multi_cell(0, 6, spec["subtitle"], new_x="LMARGIN", new_y="NEXT")
            pdf.ln(4)
        for kind, content in blocks:
            _check_pdf_text(
                content if isinstance(content, str) else "\n".join(content), spec["path"]
            )
            _pdf_block(pdf, kind, content)
        if pdf.page_no() != number:
            raise SystemExit(f"{spec['path']}: page {number} overflowed; shorten it")
    return bytes(pdf.output())


def _pdf_block(pdf: FPDF, kind: str, content) -> None:
    if kind == "h2":
        pdf.ln(2)
        pdf.set_font("Helvetica", "B", 13)
        pdf.multi_cell(0, 7, content, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(1)
    elif kind == "p":
        pdf.set_font("Helvetica", "", 10.5)
        pdf.multi_cell(0, 5.5, content, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(2)
    elif kind in ("ul", "ol"):
        pdf.set_font("Helvetica", "", 10.5)
        for i, item in enumerate(content, start=1):
            marker = "-" if kind == "ul" else f"{i}."
            pdf.set_x(pdf.l_margin + 2)
            pdf.cell(6, 5.5, marker)
            pdf.multi_cell(0, 5.5, item, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(2)
    else:
        raise ValueError(kind)


# --------------------------------------------------------------------------------------------
# DOCX


def _normalised_zip(data: bytes) -> bytes:
    """Rewrite the zip with fixed timestamps and order so rebuilds are byte-identical."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            entry = zipfile.ZipInfo(info.filename, date_time=(2025, 3, 1, 9, 0, 0))
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o644 << 16
            dst.writestr(entry, src.read(info.filename))
    return out.getvalue()


def build_docx(spec: dict) -> bytes:
    doc = Document()
    _set_core_properties(doc.core_properties, spec)
    doc.add_heading(spec["title"], level=1)
    for kind, content in spec["blocks"]:
        if kind == "h2":
            doc.add_heading(content, level=2)
        elif kind == "p":
            doc.add_paragraph(content)
        elif kind in ("ul", "ol"):
            style = "List Bullet" if kind == "ul" else "List Number"
            for item in content:
                doc.add_paragraph(item, style=style)
        else:
            raise ValueError(kind)
    buf = io.BytesIO()
    doc.save(buf)
    return _normalised_zip(buf.getvalue())


# --------------------------------------------------------------------------------------------
# PPTX


def build_pptx(spec: dict) -> bytes:
    """A slide deck from the default template: a title slide, bullet slides, table slides;
    speaker notes, and slides hidden in the slide show, as the source says."""
    from pptx import Presentation
    from pptx.util import Inches, Pt

    deck = Presentation()
    _set_core_properties(deck.core_properties, spec)
    for number, slide_spec in enumerate(spec["slide"], start=1):
        if number == 1:
            slide = deck.slides.add_slide(deck.slide_layouts[0])  # Title Slide
            slide.placeholders[1].text = slide_spec.get("subtitle", "")
        elif "table" in slide_spec:
            slide = deck.slides.add_slide(deck.slide_layouts[5])  # Title Only
            rows = slide_spec["table"]
            left, top, width, row_height = Inches(0.5), Inches(1.8), Inches(9), Inches(0.5)
            shape = slide.shapes.add_table(
                len(rows), len(rows[0]), left, top, width, row_height * len(rows)
            )
            for r, row in enumerate(rows):
                for c, value in enumerate(row):
                    cell = shape.table.cell(r, c)
                    cell.text = value
                    cell.text_frame.paragraphs[0].font.size = Pt(16)
        else:
            slide = deck.slides.add_slide(deck.slide_layouts[1])  # Title and Content
            body = slide.placeholders[1].text_frame
            for i, bullet in enumerate(slide_spec.get("bullets", [])):
                paragraph = body.paragraphs[0] if i == 0 else body.add_paragraph()
                paragraph.text = bullet
                paragraph.font.size = Pt(20)
        slide.shapes.title.text = slide_spec["title"]
        if slide_spec.get("notes"):
            slide.notes_slide.notes_text_frame.text = slide_spec["notes"]
        if slide_spec.get("hidden"):
            slide.element.set("show", "0")
    buf = io.BytesIO()
    deck.save(buf)
    return _normalised_zip(buf.getvalue())


def _set_core_properties(props, spec: dict) -> None:
    """Fixed metadata: the libraries would stamp the time of the build."""
    props.title = spec["title"]
    props.author = AUTHOR
    props.last_modified_by = AUTHOR
    props.subject = spec["subject"]
    props.created = FIXED_DATE.replace(tzinfo=None)
    props.modified = FIXED_DATE.replace(tzinfo=None)
    props.revision = 1


# --------------------------------------------------------------------------------------------
# XLSX


def build_xlsx(spec: dict) -> bytes:
    """A workbook of typed cells (numbers, dates), a bold frozen header row and set widths."""
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter
    from openpyxl.writer.excel import ExcelWriter

    book = Workbook()
    book.remove(book.active)
    for sheet_spec in spec["sheet"]:
        sheet = book.create_sheet(sheet_spec["name"])
        for row in sheet_spec["rows"]:
            sheet.append(row)
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        for row in sheet.iter_rows(min_row=2):
            for cell in row:
                if isinstance(cell.value, dt.date):
                    cell.number_format = "yyyy-mm-dd"
        for index, width in enumerate(sheet_spec["widths"], start=1):
            sheet.column_dimensions[get_column_letter(index)].width = width
        sheet.freeze_panes = "A2"
    props = book.properties
    props.title, props.creator, props.subject = spec["title"], AUTHOR, spec["subject"]
    props.lastModifiedBy = AUTHOR
    props.created = props.modified = FIXED_DATE.replace(tzinfo=None)
    buf = io.BytesIO()
    # ExcelWriter rather than Workbook.save, which stamps the time of saving as "modified".
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        ExcelWriter(book, archive).write_data()
    return _normalised_zip(buf.getvalue())


BUILDERS = {".pdf": build_pdf, ".docx": build_docx, ".pptx": build_pptx, ".xlsx": build_xlsx}


def build(spec: dict) -> bytes:
    return BUILDERS[Path(spec["path"]).suffix](spec)


# --------------------------------------------------------------------------------------------
# Verification of QUESTIONS.json (--check)


class _VisibleText(HTMLParser):
    """Visible body text of an HTML page: skips head, script, style, nav and display:none."""

    SKIP = {"head", "script", "style", "nav", "noscript", "template"}
    VOID = {"meta", "link", "br", "img", "input", "hr"}

    def __init__(self):
        super().__init__()
        self.stack: list[bool] = []
        self.parts: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in self.VOID:
            return
        style = (dict(attrs).get("style") or "").replace(" ", "").lower()
        hidden = tag in self.SKIP or "display:none" in style
        self.stack.append(hidden or (bool(self.stack) and self.stack[-1]))

    def handle_endtag(self, tag):
        if tag not in self.VOID and self.stack:
            self.stack.pop()

    def handle_data(self, data):
        if not (self.stack and self.stack[-1]):
            self.parts.append(data)


def extract_pages(path: Path) -> list[str]:
    """Text of a document; PDFs give one string per page, everything else a single string."""
    if path.suffix == ".pdf":
        from pypdf import PdfReader

        return [p.extract_text() or "" for p in PdfReader(path).pages]
    if path.suffix == ".docx":
        return ["\n".join(p.text for p in Document(path).paragraphs)]
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".html":
        parser = _VisibleText()
        parser.feed(text)
        return [" ".join(parser.parts)]
    if path.suffix == ".md":
        text = re.sub(r"[*`]", "", text)
    return [text]


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def extract_anchored(path: Path) -> dict[str, str]:
    """Text of a slide deck, workbook, CSV or JSON file by its segment label ("slide=3",
    "sheet=Teams"; "" for the whole of a CSV or JSON file), as the project's readers give it."""
    sys.path.insert(0, str(ROOT.parent))
    from knowledge.formats.records import read_csv, read_json
    from knowledge.formats.sheets import read_xlsx
    from knowledge.formats.slides import read_pptx

    readers = {".pptx": read_pptx, ".xlsx": read_xlsx, ".csv": read_csv, ".json": read_json}
    segments, _ = readers[path.suffix](path.read_bytes())
    return {s["label"]: s["text"] for s in segments}


def check_questions() -> int:
    questions = json.loads((ROOT / "QUESTIONS.json").read_text(encoding="utf-8"))
    failures = 0
    for q in questions:
        path = ROOT / q["source"]
        if path.suffix in (".pptx", ".xlsx", ".csv", ".json"):
            text = extract_anchored(path).get(q.get("anchor") or "")
            if text is None:
                failures += 1
                print(f"NO SEGMENT {q['anchor']!r} in {q['source']}: {q['question']}")
                continue
        else:
            pages = extract_pages(path)
            text = pages[q["page"] - 1] if q.get("page") else "\n".join(pages)
        for needle in q["answer_contains"]:
            if _norm(needle).lower() not in _norm(text).lower():
                failures += 1
                where = q.get("anchor") or f"page={q.get('page')}"
                print(f"MISSING {needle!r} in {q['source']} {where}: {q['question']}")
    print(f"{len(questions)} questions checked, {failures} missing answer strings")
    return failures


def main() -> int:
    for spec in specs():
        (ROOT / spec["path"]).write_bytes(build(spec))
        pages = f" ({len(spec['pages'])} pages)" if spec["path"].endswith(".pdf") else ""
        print(f"wrote {spec['path']}{pages}")
    if "--check" in sys.argv[1:]:
        return 1 if check_questions() else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
