"""PowerPoint (PPTX) through python-pptx: one segment per slide, labelled `slide=N` so a citation
reads `deck.pptx#slide=N`; the slide's title heads its text, then its text boxes and tables,
then its speaker notes. Hidden slides and hidden shapes are left out; macros are never read."""

import io
import logging
import zipfile

from knowledge.formats.archives import check_archive
from knowledge.formats.errors import ExtractionError

log = logging.getLogger(__name__)

MAX_UNPACKED_BYTES = 200 * 1024 * 1024
# Groups nest in practice a few levels deep; a file nesting thousands is built to recurse.
_MAX_GROUP_DEPTH = 20
_DAMAGED = "The PPTX file is damaged or not a PowerPoint presentation."


def read_pptx(data: bytes) -> tuple[list[dict], str]:
    check_archive(
        data,
        kind="PPTX",
        what="a PowerPoint presentation",
        required="ppt/presentation.xml",
        max_unpacked=MAX_UNPACKED_BYTES,
    )
    from pptx import Presentation
    from pptx.exc import PythonPptxError

    try:
        deck = Presentation(io.BytesIO(data))
        segments, first_title = [], ""
        for number, slide in enumerate(deck.slides, start=1):
            if slide.element.get("show") in ("0", "false"):  # hidden in the slide show
                continue
            title, text = _slide_text(slide)
            first_title = first_title or title
            segments.append({"label": f"slide={number}", "text": text})
        return segments, _meta_title(deck) or first_title
    except ExtractionError:
        raise
    except MemoryError:
        raise
    except (PythonPptxError, KeyError, ValueError, TypeError, AttributeError, IndexError,
            zipfile.BadZipFile, EOFError) as exc:  # fmt: skip
        log.info("unreadable PPTX: %r", exc)
        raise ExtractionError(_DAMAGED) from exc
    except Exception as exc:  # lxml's XMLSyntaxError family for broken XML
        if "memory allocation failed" in str(exc).lower():
            raise MemoryError from exc  # libxml2 out of memory: the budget, not a damaged file
        log.info("unreadable PPTX: %r", exc)
        raise ExtractionError(_DAMAGED) from exc


def _slide_text(slide) -> tuple[str, str]:
    title_shape = slide.shapes.title
    title = _clean(title_shape.text_frame.text) if title_shape is not None else ""
    parts = [f"{title}."] if title else []
    parts.extend(_shapes_text(slide.shapes, skip=title_shape))
    notes = _notes(slide)
    if notes:
        parts.append(f"Speaker notes: {notes}")
    return title, "\n\n".join(parts) + "\n\n"


def _shapes_text(shapes, skip=None, depth: int = 0):
    from pptx.shapes.group import GroupShape

    for shape in shapes:
        if skip is not None and shape.shape_id == skip.shape_id or _hidden(shape):
            continue
        if isinstance(shape, GroupShape):
            if depth < _MAX_GROUP_DEPTH:
                yield from _shapes_text(shape.shapes, depth=depth + 1)
        elif getattr(shape, "has_table", False) and shape.has_table:
            for row in shape.table.rows:
                cells = [_clean(cell.text) for cell in row.cells]
                if any(cells):
                    yield _sentence(" | ".join(cells))
        elif shape.has_text_frame:
            lines = [_sentence(line.strip()) for line in shape.text_frame.text.splitlines()]
            text = "\n".join(line for line in lines if line)
            if text:
                yield text


def _hidden(shape) -> bool:
    # <p:nvSpPr><p:cNvPr hidden="1"/>: drawn nowhere, so not the deck's content either.
    return any(value in ("1", "true") for value in shape.element.xpath("./*[1]/p:cNvPr/@hidden"))


def _notes(slide) -> str:
    if not slide.has_notes_slide:
        return ""
    frame = slide.notes_slide.notes_text_frame
    return frame.text.strip() if frame is not None else ""


def _sentence(line: str) -> str:
    """A table row or a bullet ends as a sentence, as a spreadsheet row does (sheets.py): the
    answerer quotes sentences, and unpunctuated rows would run into one."""
    return line + "." if line and line[-1] not in ".!?:;" else line


def _clean(text: str) -> str:
    return " ".join(text.split())


def _meta_title(deck) -> str:
    try:
        return deck.core_properties.title or ""
    except Exception:  # metadata is a nicety; the slides were already read fine
        return ""
