"""Excel (XLSX) through openpyxl in read-only mode: one segment per visible sheet, labelled
`sheet=Name` so a citation reads `book.xlsx#sheet=Name`. The first row with values is the
header; each later row becomes "Header: value; ..." text. Formulas give their cached values
(what Excel last showed) and are never evaluated; macros are never read; hidden sheets, rows
and columns are left out. Rows and values are bounded (`knowledge.formats.tables`)."""

import io
import logging
import zipfile

from knowledge.formats.archives import check_archive
from knowledge.formats.errors import ExtractionError
from knowledge.formats.tables import Budget, row_text, show

log = logging.getLogger(__name__)

MAX_UNPACKED_BYTES = 200 * 1024 * 1024
_DAMAGED = "The XLSX file is damaged or not an Excel workbook."
_MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
# A sheet name may hold characters that would end a [citation] early.
_UNSAFE_IN_LABEL = str.maketrans({"[": "(", "]": ")", "<": "(", ">": ")", "#": " "})


def read_xlsx(data: bytes) -> tuple[list[dict], str]:
    check_archive(
        data,
        kind="XLSX",
        what="an Excel workbook",
        required="xl/workbook.xml",
        max_unpacked=MAX_UNPACKED_BYTES,
    )
    from openpyxl import load_workbook

    try:
        book = load_workbook(
            io.BytesIO(data), read_only=True, data_only=True, keep_vba=False, keep_links=False
        )
    except MemoryError:
        raise
    except Exception as exc:  # openpyxl reports broken parts with whatever its XML layer raised
        log.info("unreadable XLSX: %r", exc)
        raise ExtractionError(_DAMAGED) from exc
    try:
        budget = Budget("XLSX")
        segments = []
        for sheet in book.worksheets:
            if sheet.sheet_state != "visible":
                continue
            text = _sheet_text(book, sheet, budget)
            label = " ".join(sheet.title.translate(_UNSAFE_IN_LABEL).split())[:100]
            segments.append({"label": f"sheet={label}", "text": text})
        return segments, _meta_title(book)
    except ExtractionError:
        raise
    except MemoryError:
        raise
    except (KeyError, ValueError, TypeError, AttributeError, IndexError, OverflowError,
            zipfile.BadZipFile, EOFError) as exc:  # fmt: skip
        log.info("unreadable XLSX: %r", exc)
        raise ExtractionError(_DAMAGED) from exc
    except Exception as exc:  # the XML layer's own errors for a broken sheet
        if "memory allocation failed" in str(exc).lower():
            raise MemoryError from exc
        log.info("unreadable XLSX: %r", exc)
        raise ExtractionError(_DAMAGED) from exc
    finally:
        book.close()


def _sheet_text(book, sheet, budget: Budget) -> str:
    hidden_rows, hidden_columns = _hidden_rows_and_columns(book, sheet)
    # Ignore the sheet's declared dimension: rows come as they are stored, not padded to it.
    sheet.reset_dimensions()
    header: list[str] | None = None
    lines = []
    for number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
        budget.row()
        if number in hidden_rows:
            continue
        kept = [None if i + 1 in hidden_columns else v for i, v in enumerate(values)]
        if header is None:
            if any(show(v) for v in kept):
                header = [show(v) for v in kept]
                budget.add_values(len(header))
            continue
        line = row_text(header, kept, budget)
        if line:
            lines.append(line + ".")
    if header is not None and not lines:  # a one-row sheet: its only row is its content
        lines.append("; ".join(h for h in header if h) + ".")
    return "\n\n".join(lines) + "\n\n" if lines else ""


def _hidden_rows_and_columns(book, sheet) -> tuple[set[int], set[int]]:
    """Row and column numbers the sheet hides. openpyxl's read-only sheets do not load row and
    column formats, so the sheet's XML is streamed once more for just those attributes."""
    from lxml import etree

    rows: set[int] = set()
    columns: set[int] = set()
    # The part's path inside the archive is openpyxl's, read-only mode keeps the archive open.
    with book._archive.open(sheet._worksheet_path) as source:
        for _, element in etree.iterparse(
            source,
            events=("end",),
            tag=(f"{_MAIN}row", f"{_MAIN}col"),
            resolve_entities=False,
            no_network=True,
            huge_tree=False,
        ):
            if element.get("hidden") in ("1", "true"):
                if element.tag == f"{_MAIN}row":
                    rows.add(int(element.get("r", "0")))
                else:
                    first, last = int(element.get("min", "0")), int(element.get("max", "0"))
                    columns.update(range(first, min(last, 16384) + 1))
            element.clear(keep_tail=False)
            while element.getprevious() is not None:
                del element.getparent()[0]
    return rows, columns


def _meta_title(book) -> str:
    try:
        return book.properties.title or ""
    except Exception:  # metadata is a nicety; the sheets were already read fine
        return ""
