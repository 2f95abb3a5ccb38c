"""Text out of uploaded files: .txt, .md, .html, .pdf (page by page) and .docx.

Every failure is an ExtractionError whose message is written for the staff member who uploaded
the file; callers show it as a form error or an `ingest` failure line, never a traceback.
"""

import io
import logging
import zipfile
from pathlib import PurePath

from bs4 import BeautifulSoup
from django.conf import settings
from markdown_it import MarkdownIt

log = logging.getLogger(__name__)

SUPPORTED = {
    ".txt": "plain text",
    ".md": "Markdown",
    ".markdown": "Markdown",
    ".html": "HTML",
    ".htm": "HTML",
    ".pdf": "PDF",
    ".docx": "Word (DOCX)",
}
# A DOCX is a zip: refuse one that would inflate past this, whatever its packed size.
DOCX_MAX_UNPACKED_BYTES = 200 * 1024 * 1024
# Not content: code, styling, and site navigation chrome around the document itself.
_INVISIBLE_TAGS = [
    "script", "style", "noscript", "template", "head", "svg", "iframe", "object", "nav",
]  # fmt: skip


class ExtractionError(ValueError):
    pass


def supported_list() -> str:
    return ", ".join(sorted({ext for ext in SUPPORTED if ext not in (".htm", ".markdown")}))


def extract(name: str, data: bytes) -> list[dict]:
    """Return [{"label": ..., "text": ...}] segments; raise ExtractionError if there is no text."""
    ext = PurePath(name).suffix.lower()
    if ext not in SUPPORTED:
        raise ExtractionError(
            f"Unsupported file type {ext or '(no extension)'!r}. Supported: {supported_list()}."
        )
    limit = settings.KNOWLEDGE_MAX_UPLOAD_BYTES
    if len(data) > limit:
        raise ExtractionError(
            f"The file is {len(data) / 1048576:.1f} MB; the limit is {limit / 1048576:.0f} MB."
        )
    if not data.strip():
        raise ExtractionError("The file is empty.")
    handler = {
        ".pdf": _pdf,
        ".docx": _docx,
        ".html": _html_bytes,
        ".htm": _html_bytes,
        ".md": _markdown,
        ".markdown": _markdown,
        ".txt": _plain,
    }[ext]
    segments = [s for s in handler(data) if s["text"].strip()]
    if not segments:
        raise ExtractionError(
            f"No text could be extracted from this {SUPPORTED[ext]} file"
            + (" (is it a scanned image without a text layer?)." if ext == ".pdf" else ".")
        )
    return segments


def _decode(data: bytes) -> str:
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


def _plain(data: bytes) -> list[dict]:
    if b"\x00" in data[:4096]:
        raise ExtractionError("This does not look like a text file (it contains binary data).")
    return [{"label": "", "text": _decode(data)}]


def _markdown(data: bytes) -> list[dict]:
    _plain(data)  # same binary check
    html = MarkdownIt("commonmark").enable("table").render(_decode(data))
    return _html(html)


def _html_bytes(data: bytes) -> list[dict]:
    _plain(data)
    return _html(_decode(data))


def _html(html: str) -> list[dict]:
    """Visible text only, one segment per h1-h3 section so the label names the section."""
    soup = BeautifulSoup(html, "html.parser")
    for tag in soup(_INVISIBLE_TAGS):
        tag.decompose()
    for tag in soup.find_all(style=True):
        style = tag["style"].replace(" ", "").lower()
        if "display:none" in style or "visibility:hidden" in style:
            tag.decompose()
    for tag in soup.find_all(hidden=True):
        tag.decompose()
    body = soup.body or soup
    segments: list[dict] = [{"label": "", "text": ""}]
    blocks = body.find_all(["h1", "h2", "h3", "h4", "p", "li", "td", "th", "pre", "blockquote"])
    if not blocks:
        return [{"label": "", "text": body.get_text(" ", strip=True)}]
    for block in blocks:
        if block.find_parent(["p", "li", "td", "th", "pre", "blockquote"]):
            continue  # nested block: its text was taken with its parent
        text = block.get_text(" ", strip=True)
        if not text:
            continue
        if block.name in ("h1", "h2", "h3"):
            segments.append({"label": text[:200], "text": text + ".\n\n"})
        else:
            segments[-1]["text"] += text + ("\n\n" if block.name != "li" else "\n")
    return segments


def _pdf(data: bytes) -> list[dict]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError, PyPdfError

    if not data.lstrip().startswith(b"%PDF-"):
        raise ExtractionError("This is not a PDF file (it does not start with the PDF header).")
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
        return pages
    except ExtractionError:
        raise
    except (PdfReadError, PyPdfError, ValueError, KeyError, TypeError, AttributeError) as exc:
        log.info("corrupt PDF: %r", exc)
        raise ExtractionError("The PDF is damaged or not a valid PDF file.") from exc
    except RecursionError as exc:
        raise ExtractionError("The PDF is malformed (its structure is circular).") from exc


_ENCRYPTED = "The PDF is password-protected. Remove the password and upload it again."


def _docx(data: bytes) -> list[dict]:
    import docx
    from docx.opc.exceptions import PackageNotFoundError

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
            if "word/document.xml" not in archive.namelist():
                raise ExtractionError("This is not a Word document (no word/document.xml inside).")
    except zipfile.BadZipFile as exc:
        raise ExtractionError("The DOCX file is damaged or not a DOCX file.") from exc
    if unpacked > DOCX_MAX_UNPACKED_BYTES:
        raise ExtractionError(
            f"The DOCX file would unpack to {unpacked / 1048576:.0f} MB, which is more than the "
            f"{DOCX_MAX_UNPACKED_BYTES / 1048576:.0f} MB allowed."
        )
    try:
        document = docx.Document(io.BytesIO(data))
    except (PackageNotFoundError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise ExtractionError("The DOCX file is damaged or not a DOCX file.") from exc
    except Exception as exc:  # lxml raises its own XMLSyntaxError family for broken XML
        log.info("unreadable DOCX: %r", exc)
        raise ExtractionError("The DOCX file is damaged (its XML cannot be read).") from exc
    segments: list[dict] = [{"label": "", "text": ""}]
    for paragraph in document.paragraphs:
        text = paragraph.text.strip()
        if not text:
            continue
        style = (paragraph.style.name if paragraph.style is not None else "") or ""
        if style.startswith("Heading") or style == "Title":
            segments.append({"label": text[:200], "text": text + ".\n\n"})
        else:
            segments[-1]["text"] += text + "\n\n"
    for table in document.tables:
        rows = [" | ".join(cell.text.strip() for cell in row.cells) for row in table.rows]
        segments[-1]["text"] += "\n".join(rows) + "\n\n"
    return segments


def guess_title(name: str, data: bytes, segments: list[dict]) -> str:
    """The document's own title (PDF/DOCX metadata, HTML <title>, first heading), else its name."""
    ext = PurePath(name).suffix.lower()
    title = ""
    try:
        if ext == ".pdf":
            from pypdf import PdfReader

            meta = PdfReader(io.BytesIO(data)).metadata
            title = (meta.title if meta else "") or ""
        elif ext == ".docx":
            import docx

            title = docx.Document(io.BytesIO(data)).core_properties.title or ""
        elif ext in (".html", ".htm"):
            tag = BeautifulSoup(_decode(data), "html.parser").title
            title = tag.get_text(" ", strip=True) if tag else ""
    except Exception:  # metadata is a nicety; the text was already extracted fine
        title = ""
    if not title.strip():
        title = next((s["label"] for s in segments if s["label"] and "=" not in s["label"]), "")
    if not title.strip():
        title = PurePath(name).stem.replace("_", " ").replace("-", " ").strip().capitalize()
    return " ".join(title.split())[:300]
