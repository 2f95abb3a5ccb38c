"""Rows as text: spreadsheets, CSV and JSON records become one line per row that names each
value by its column ("Office: Porto; Desks: 40"), so a passage cut from the middle of a table
still says what its numbers are. Bounded, so a sheet of a million blank rows costs an error."""

import datetime
from collections.abc import Iterable

from knowledge.formats.errors import ExtractionError

# Rows (records) and non-empty values per file, whatever their format.
MAX_ROWS = 200_000
MAX_VALUES = 2_000_000
# One value longer than this is cut: a cell is data, not a document.
MAX_VALUE_CHARS = 10_000


class Budget:
    """Counts rows and values across a whole file and refuses it past the limits."""

    def __init__(self, kind: str):
        self.kind, self.rows, self.values = kind, 0, 0

    def row(self) -> None:
        self.rows += 1
        if self.rows > MAX_ROWS:
            raise ExtractionError(
                f"The {self.kind} file has more than {MAX_ROWS:,} rows; "
                "split it into smaller files."
            )

    def add_values(self, count: int) -> None:
        self.values += count
        if self.values > MAX_VALUES:
            raise ExtractionError(
                f"The {self.kind} file has more than {MAX_VALUES:,} values; "
                "split it into smaller files."
            )


def show(value: object) -> str:
    """A cell's value as a reader would write it: 40 not 40.0, dates in ISO form."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, datetime.datetime) and value.time() == datetime.time():
        return value.date().isoformat()
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    return " ".join(str(value).split())[:MAX_VALUE_CHARS]


def row_text(header: list[str], values: Iterable[object], budget: Budget) -> str:
    """'Header: value; ...' for the row's non-empty values ('' when it has none)."""
    parts = []
    for index, value in enumerate(values):
        text = show(value)
        if not text:
            continue
        name = header[index] if index < len(header) and header[index] else f"Column {index + 1}"
        parts.append(f"{name}: {text}")
    budget.add_values(len(parts))
    return "; ".join(parts)
