"""Text out of uploaded files: .txt, .md, .html, .pdf (page by page), .docx, and through
`knowledge.formats` .pptx (slide by slide), .xlsx (sheet by sheet), .csv and .json.

Every failure is an ExtractionError whose message is written for the staff member who uploaded
the file; callers show it as a form error or an `ingest` failure line, never a traceback.

`extract` parses in a child process with a CPU-time, memory and wall-clock budget
(`knowledge.sandbox`, settings EXTRACT_CPU_SECONDS, EXTRACT_MEMORY_MB, EXTRACT_TIMEOUT_SECONDS):
a file built to stall or exhaust a parser costs its uploader an error, not the server its
latency. Call it outside any database transaction, so no lock is held while a file is read.
"""

import io
import logging
import zipfile
from pathlib import PurePath

from bs4 import BeautifulSoup, Tag
from django.conf import settings
from markdown_it import MarkdownIt

from knowledge import document_intelligence, sandbox
from knowledge.formats.archives import check_archive
from knowledge.formats.errors import ExtractionError
from knowledge.formats.records import read_csv, read_json
from knowledge.formats.sheets import read_xlsx
from knowledge.formats.slides import read_pptx

log = logging.getLogger(__name__)

SUPPORTED = {
    ".txt": "plain text",
    ".md": "Markdown",
    ".markdown": "Markdown",
    ".html": "HTML",
    ".htm": "HTML",
    ".pdf": "PDF",
    ".docx": "Word (DOCX)",
    ".pptx": "PowerPoint (PPTX)",
    ".xlsx": "Excel (XLSX)",
    ".csv": "CSV",
    ".json": "JSON",
    **document_intelligence.IMAGES,
}
# A DOCX is a zip: refuse one that would inflate past this, whatever its packed size.
DOCX_MAX_UNPACKED_BYTES = 200 * 1024 * 1024
# Not content: code, styling, and site navigation chrome around the document itself.
_INVISIBLE_TAGS = [
    "script", "style", "noscript", "template", "head", "svg", "iframe", "object", "nav",
]  # fmt: skip


# Imported by the sandbox's fork server once, instead of by every child that reads a file.
_PARSER_MODULES = (
    "docx", "pypdf", "lxml.etree", "pptx", "openpyxl", "charset_normalizer",
)  # fmt: skip


class NoText(ExtractionError):
    """The file holds no text a parser could find (a PDF of scanned pages, for example)."""


def supported_list() -> str:
    return ", ".join(sorted({ext for ext in SUPPORTED if ext not in (".htm", ".markdown")}))


def extract(name: str, data: bytes) -> list[dict]:
    """Return [{"label": ..., "text": ...}] segments; raise ExtractionError if there is no text."""
    return extract_with_title(name, data)[0]


def extract_with_title(name: str, data: bytes) -> tuple[list[dict], str]:
    """The segments and the document's title (see guess_title), read within the budget.

    Images, and PDFs without a text layer (scanned), go through Document Intelligence when it
    is configured (every PDF with DOCUMENT_INTELLIGENCE_FOR_PDF); its Markdown is then read in
    the sandbox like any file."""
    _check(name, data)
    limit = settings.KNOWLEDGE_MAX_UPLOAD_BYTES
    if len(data) > limit:
        raise ExtractionError(
            f"The file is {len(data) / 1048576:.1f} MB; the limit is {limit / 1048576:.0f} MB."
        )
    ext = PurePath(name).suffix.lower()
    if ext in document_intelligence.IMAGES or (
        ext == ".pdf" and settings.DOCUMENT_INTELLIGENCE_FOR_PDF
    ):
        return _through_layout(name, data)
    try:
        return _in_sandbox(parse, name, data)
    except NoText:
        if ext == ".pdf" and document_intelligence.configured():
            return _through_layout(name, data)
        raise


def _through_layout(name: str, data: bytes) -> tuple[list[dict], str]:
    ext = PurePath(name).suffix.lower()
    if ext in document_intelligence.IMAGES:
        document_intelligence.check_image(ext, data)
    elif not data.lstrip().startswith(b"%PDF-"):
        raise ExtractionError(_NOT_PDF)
    if not document_intelligence.configured():
        raise ExtractionError(document_intelligence.NOT_CONFIGURED.format(what="images"))
    pages = document_intelligence.analyze(data)
    return _in_sandbox(parse_layout, name, pages)


def _in_sandbox(func, *args) -> tuple[list[dict], str]:
    budget = sandbox.Budget(
        cpu_seconds=settings.EXTRACT_CPU_SECONDS,
        memory_mb=settings.EXTRACT_MEMORY_MB,
        timeout_seconds=settings.EXTRACT_TIMEOUT_SECONDS,
    )
    try:
        return sandbox.run(func, *args, budget=budget, preload=_PARSER_MODULES)
    except ExtractionError:
        raise
    except sandbox.BudgetExceeded as exc:
        if exc.kind == "memory":
            raise ExtractionError(
                f"The file took too much memory to read (more than {budget.memory_mb} MB). "
                "It may be damaged or built to overload the reader; split it or save it again."
            ) from exc
        spent = (
            f"{budget.timeout_seconds:g} s"
            if exc.kind == "time"
            else f"{budget.cpu_seconds:g} s of processing"
        )
        raise ExtractionError(
            f"The file took too long to read (more than {spent}). "
            "It may be damaged or built to overload the reader; split it or save it again."
        ) from exc
    except Exception as exc:  # the reader crashed or could not start: still one clear error
        log.warning("extracting %r failed: %r", args[0], exc)
        raise ExtractionError(
            "The file could not be read: the reader stopped on it (it may be damaged, or need "
            f"more than {budget.memory_mb} MB of memory)."
        ) from exc


def parse(name: str, data: bytes) -> tuple[list[dict], str]:
    """`read` in this process, with any exception a parser raises turned into ExtractionError.

    Runs in the sandbox's child process; call `extract` instead, which bounds its cost.
    """
    return _guarded(read, name, data)


def parse_layout(name: str, pages: list[str]) -> tuple[list[dict], str]:
    """`parse` for Document Intelligence's Markdown pages (see `_layout_pages`)."""
    return _guarded(_layout_pages, name, pages)


def _guarded(reader, name: str, content) -> tuple[list[dict], str]:
    try:
        return reader(name, content)
    except ExtractionError:
        raise
    except RecursionError as exc:
        raise ExtractionError(f"The {_kind(name)} file is malformed (nested too deeply).") from exc
    except MemoryError:
        raise
    except Exception as exc:  # a parser's bug or an error it does not document
        log.warning("unexpected error reading %r: %r", name, exc)
        raise ExtractionError(
            f"The {_kind(name)} file is damaged or uses a feature this reader does not support."
        ) from exc


def read(name: str, data: bytes) -> tuple[list[dict], str]:
    """Segments and title, parsed here and now. Raises ExtractionError for every file problem
    the parsers are known to report; anything else is a gap that `parse` still catches."""
    _check(name, data)
    ext = PurePath(name).suffix.lower()
    handler = {
        ".pdf": _pdf,
        ".docx": _docx,
        ".html": _html_bytes,
        ".htm": _html_bytes,
        ".md": _markdown,
        ".markdown": _markdown,
        ".txt": _plain,
        ".pptx": read_pptx,
        ".xlsx": read_xlsx,
        ".csv": read_csv,
        ".json": read_json,
        **dict.fromkeys(document_intelligence.IMAGES, _image),
    }[ext]
    raw, meta_title = handler(data)
    return _kept(name, raw, meta_title)


def _kept(name: str, raw: list[dict], meta_title: str) -> tuple[list[dict], str]:
    ext = PurePath(name).suffix.lower()
    segments = [s for s in raw if s["text"].strip()]
    if not segments:
        raise NoText(
            f"No text could be extracted from this {SUPPORTED[ext]} file"
            + (
                " (is it a scanned image without a text layer? Scanned pages are read when "
                "Azure AI Document Intelligence is configured)."
                if ext == ".pdf"
                else "."
            )
        )
    return segments, _choose_title(name, meta_title, segments)


def _layout_pages(name: str, pages: list[str]) -> tuple[list[dict], str]:
    """Each page's Markdown as visible text (tables by cell, comments such as the layout
    model's page markers dropped), labelled `page=N`; the first heading is the title."""
    segments, title = [], ""
    for number, markdown in enumerate(pages, start=1):
        sections = _html(_render_markdown(markdown))[0]
        title = title or next((s["label"] for s in sections if s["label"]), "")
        text = "".join(section["text"] for section in sections)
        segments.append({"label": f"page={number}", "text": text})
    return _kept(name, segments, title)


def _kind(name: str) -> str:
    return SUPPORTED.get(PurePath(name).suffix.lower(), "uploaded")


def _check(name: str, data: bytes) -> None:
    # No settings here: the sandbox's children run without Django configured (and faster so).
    ext = PurePath(name).suffix.lower()
    if ext not in SUPPORTED:
        raise ExtractionError(
            f"Unsupported file type {ext or '(no extension)'!r}. Supported: {supported_list()}."
        )
    if not data.strip():
        raise ExtractionError("The file is empty.")


def _decode(data: bytes) -> str:
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


def _plain(data: bytes) -> tuple[list[dict], str]:
    _refuse_binary(data)
    return [{"label": "", "text": _decode(data)}], ""


def _refuse_binary(data: bytes) -> None:
    if b"\x00" in data[:4096]:
        raise ExtractionError("This does not look like a text file (it contains binary data).")


def _markdown(data: bytes) -> tuple[list[dict], str]:
    _refuse_binary(data)
    return _html(_render_markdown(_decode(data)))[0], ""


def _render_markdown(text: str) -> str:
    return MarkdownIt("commonmark").enable("table").render(text)


def _image(data: bytes) -> tuple[list[dict], str]:
    # Only Document Intelligence reads images (see extract_with_title); here, just say so.
    raise ExtractionError(document_intelligence.NOT_CONFIGURED.format(what="images"))


def _html_bytes(data: bytes) -> tuple[list[dict], str]:
    _refuse_binary(data)
    return _html(_decode(data))


# Blocks whose text is taken whole; a heading inside one is part of its text, not a section.
_TEXT_BLOCKS = {"p", "li", "td", "th", "pre", "blockquote"}
_HEADINGS = {"h1", "h2", "h3", "h4"}


def _html(html: str) -> tuple[list[dict], str]:
    """Visible text only, one segment per h1-h3 section so the label names the section."""
    soup = BeautifulSoup(html, "html.parser")
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    for tag in soup(_INVISIBLE_TAGS):
        tag.decompose()
    for tag in soup.find_all(style=True):
        if tag.decomposed:  # inside a hidden tag removed a moment ago
            continue
        style = str(tag.get("style", "")).replace(" ", "").lower()
        if "display:none" in style or "visibility:hidden" in style:
            tag.decompose()
    for tag in soup.find_all(hidden=True):
        if not tag.decomposed:
            tag.decompose()
    body = soup.body or soup
    segments: list[dict] = [{"label": "", "text": ""}]
    found = False
    for block in _outer_blocks(body):
        found = True
        text = block.get_text(" ", strip=True)
        if not text:
            continue
        if block.name in ("h1", "h2", "h3"):
            segments.append({"label": text[:200], "text": text + ".\n\n"})
        else:
            segments[-1]["text"] += text + ("\n\n" if block.name != "li" else "\n")
    if not found:
        return [{"label": "", "text": body.get_text(" ", strip=True)}], title
    return segments, title


def _outer_blocks(root: Tag):
    """Headings and text blocks in document order, skipping what lies inside a text block.

    One walk over the tree: asking each block for its ancestors instead costs the depth of the
    tree per block, which a file of deeply nested tags turns into hours.
    """
    stack = [child for child in reversed(root.contents) if isinstance(child, Tag)]
    while stack:
        tag = stack.pop()
        if tag.name in _TEXT_BLOCKS or tag.name in _HEADINGS:
            yield tag
        if tag.name not in _TEXT_BLOCKS:
            stack.extend(child for child in reversed(tag.contents) if isinstance(child, Tag))


def _pdf(data: bytes) -> tuple[list[dict], str]:
    from pypdf import PdfReader
    from pypdf.errors import DependencyError, DeprecationError, PdfReadError, PyPdfError

    if not data.lstrip().startswith(b"%PDF-"):
        raise ExtractionError(_NOT_PDF)
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            try:
                if not reader.decrypt(""):
                    raise ExtractionError(_ENCRYPTED)
            except ExtractionError:
                raise
            except Exception as exc:
                raise ExtractionError(_ENCRYPTED) from exc
        pages = []
        for number, page in enumerate(reader.pages, start=1):
            pages.append({"label": f"page={number}", "text": page.extract_text() or ""})
        return pages, _pdf_title(reader)
    except ExtractionError:
        raise
    except (NotImplementedError, DeprecationError, DependencyError) as exc:  # e.g. a /Filter
        log.info("unsupported PDF feature: %r", exc)
        raise ExtractionError(
            "The PDF uses a feature this reader does not support (for example an unknown "
            "compression filter). Save it again as a standard PDF and upload that."
        ) from exc
    except (
        PdfReadError, PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError,
        AssertionError, ArithmeticError, LookupError, OSError, EOFError, UnicodeError,
    ) as exc:  # fmt: skip
        log.info("corrupt PDF: %r", exc)
        raise ExtractionError("The PDF is damaged or not a valid PDF file.") from exc
    except RecursionError as exc:
        raise ExtractionError("The PDF is malformed (its structure is circular).") from exc


def _pdf_title(reader) -> str:
    try:
        meta = reader.metadata
        return str((meta.title if meta else "") or "")
    except Exception:  # metadata is a nicety; the text was already read fine
        return ""


_NOT_PDF = "This is not a PDF file (it does not start with the PDF header)."
_ENCRYPTED = "The PDF is password-protected. Remove the password and upload it again."


def _docx(data: bytes) -> tuple[list[dict], str]:
    import docx
    from docx.opc.exceptions import PackageNotFoundError

    check_archive(
        data,
        kind="DOCX",
        what="a Word document",
        required="word/document.xml",
        max_unpacked=DOCX_MAX_UNPACKED_BYTES,
    )
    try:
        document = docx.Document(io.BytesIO(data))
        return _docx_segments(document), _docx_title(document)
    except (PackageNotFoundError, KeyError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise ExtractionError("The DOCX file is damaged or not a DOCX file.") from exc
    except MemoryError:
        raise
    except Exception as exc:  # lxml raises its own XMLSyntaxError family for broken XML
        if "memory allocation failed" in str(exc).lower():
            raise MemoryError from exc  # libxml2 out of memory: the budget, not a damaged file
        log.info("unreadable DOCX: %r", exc)
        raise ExtractionError("The DOCX file is damaged (its XML cannot be read).") from exc


def _docx_segments(document) -> list[dict]:
    """Body paragraphs (headings start sections), then each table row as 'cell | cell'.

    Walks the XML instead of python-docx's paragraph and cell lists: those build an object per
    empty paragraph and repeat a cell once per grid column it claims to span, so a few hundred
    bytes saying gridSpan="99999999" cost minutes.
    """
    from docx.oxml.ns import qn
    from docx.text.paragraph import Paragraph

    body = document.element.body
    paragraph_tag, table_tag = qn("w:p"), qn("w:tbl")
    text_tags = (qn("w:t"), qn("w:noBreakHyphen"))
    segments: list[dict] = [{"label": "", "text": ""}]
    for element in _paragraphs_with_text(body, paragraph_tag, text_tags):
        paragraph = Paragraph(element, document._body)
        text = paragraph.text.strip()
        if not text:
            continue
        style = (paragraph.style.name if paragraph.style is not None else "") or ""
        if style.startswith("Heading") or style == "Title":
            segments.append({"label": text[:200], "text": text + ".\n\n"})
        else:
            segments[-1]["text"] += text + "\n\n"
    row_tag, cell_tag = qn("w:tr"), qn("w:tc")
    for table in body.iterchildren(table_tag):
        rows = [
            " | ".join(
                "\n".join(p.text for p in cell.iterchildren(paragraph_tag)).strip()
                for cell in row.iterchildren(cell_tag)
            )
            for row in table.iterchildren(row_tag)
        ]
        segments[-1]["text"] += "\n".join(rows) + "\n\n"
    return segments


def _paragraphs_with_text(body, paragraph_tag, text_tags):
    """The body's own paragraphs that hold any text, in order, found from the text elements up:
    lxml's C loop passes over empty paragraphs without a Python object for each."""
    last = None
    for text in body.iter(*text_tags):
        node = text
        while node is not None and node.getparent() is not body:
            node = node.getparent()
        if node is not None and node.tag == paragraph_tag and node is not last:
            last = node
            yield node


def _docx_title(document) -> str:
    try:
        return document.core_properties.title or ""
    except Exception:  # metadata is a nicety; the text was already read fine
        return ""


def guess_title(name: str, data: bytes, segments: list[dict]) -> str:
    """The document's own title (PDF/DOCX metadata, HTML <title>, first heading), else its name."""
    try:
        return read(name, data)[1]
    except Exception:  # the title is a nicety; the text was already extracted fine
        return _choose_title(name, "", segments)


def _choose_title(name: str, meta_title: str, segments: list[dict]) -> str:
    title = meta_title or ""
    if not title.strip():
        title = next((s["label"] for s in segments if s["label"] and "=" not in s["label"]), "")
    if not title.strip():
        title = PurePath(name).stem.replace("_", " ").replace("-", " ").strip().capitalize()
    return " ".join(title.split())[:300]
