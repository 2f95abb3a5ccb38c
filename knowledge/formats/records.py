"""CSV and JSON: each row or record becomes one line of text naming its fields
("Office: Porto; Desks: 40"), with the file's encoding detected. Values are data, never run:
a CSV cell that starts with "=" is kept as the text it is."""

import codecs
import csv
import io
import json

from knowledge.formats.errors import ExtractionError
from knowledge.formats.tables import Budget, row_text, show

# How much of a CSV the dialect sniffer looks at; its regular expressions cost the square of it.
_SNIFF_CHARS = 4096
# Deeper JSON is shown as compact JSON text rather than walked further.
_MAX_JSON_DEPTH = 12
_WESTERN = "cp1252"
_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
         (codecs.BOM_UTF16_BE, "utf-16"))  # fmt: skip


def decode(data: bytes, kind: str) -> str:
    """The file's text: by its byte-order mark, as UTF-8, or in the encoding charset-normalizer
    finds most likely; refused when it looks like no text at all."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(encoding)
            except UnicodeDecodeError as exc:
                raise ExtractionError(f"The {kind} file's text is not valid {encoding}.") from exc
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if b"\x00" in data[:4096]:
        raise ExtractionError(f"This does not look like a {kind} file (it contains binary data).")
    from charset_normalizer import from_bytes

    matches = from_bytes(data)
    best = matches.best()
    if best is None:
        raise ExtractionError(f"This does not look like a {kind} file (no text encoding fits).")
    # Short Western text fits several code pages equally well; Excel on a Western Windows
    # writes cp1252, so among equals that one wins (cp1250 would turn "Inês" into "Inęs").
    for match in matches:
        if match.encoding == _WESTERN and (match.chaos, -match.coherence) <= (
            best.chaos,
            -best.coherence,
        ):
            return str(match)
    return str(best)


def read_csv(data: bytes) -> tuple[list[dict], str]:
    text = decode(data, "CSV")
    dialect = _dialect(text)
    budget = Budget("CSV")
    header: list[str] | None = None
    lines = []
    try:
        for row in csv.reader(io.StringIO(text, newline=""), dialect):
            budget.row()
            if header is None:
                if any(cell.strip() for cell in row):
                    header = [show(cell) for cell in row]
                    budget.add_values(len(header))
                continue
            line = row_text(header, row, budget)
            if line:
                lines.append(line + ".")
    except csv.Error as exc:
        raise ExtractionError(f"The CSV file is malformed ({exc}).") from exc
    if header is not None and not lines:  # a single row: its cells are the content
        lines.append("; ".join(h for h in header if h) + ".")
    return [{"label": "", "text": "\n\n".join(lines)}], ""


def _dialect(text: str):
    sample = text[:_SNIFF_CHARS]
    if len(text) > _SNIFF_CHARS and "\n" in sample:
        sample = sample[: sample.rindex("\n")]  # whole lines only
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:  # one column, or too little to tell: the common comma form
        return csv.excel


def read_json(data: bytes) -> tuple[list[dict], str]:
    text = decode(data, "JSON")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ExtractionError(
            f"The JSON file is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})."
        ) from exc
    budget = Budget("JSON")
    lines = [line + "." for line in _records(value, budget) if line]
    return [{"label": "", "text": "\n\n".join(lines)}], ""


def _records(value, budget: Budget):
    """One line per record: the items of a top-level list, or of each list of objects a
    top-level object holds (named by its key); the object's other fields make one more line."""
    if isinstance(value, list):
        for item in value:
            budget.row()
            yield _record_text("", item, budget)
        return
    if not isinstance(value, dict):
        budget.row()
        yield show(value)
        return
    rest = {}
    for key, item in value.items():
        if isinstance(item, list) and item and all(isinstance(v, dict) for v in item):
            for record in item:
                budget.row()
                yield f"{key} - " + _record_text("", record, budget)
        else:
            rest[key] = item
    if rest:
        budget.row()
        yield _record_text("", rest, budget)


def _record_text(prefix: str, value, budget: Budget) -> str:
    fields = list(_fields(prefix, value, 0))
    names = [name for name, _ in fields]
    return row_text(names, (v for _, v in fields), budget)


def _fields(path: str, value, depth: int):
    """(dotted.path[index], scalar) pairs of a value, depth first."""
    if depth >= _MAX_JSON_DEPTH and isinstance(value, (dict, list)):
        yield path or "value", json.dumps(value, ensure_ascii=False)[:1000]
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _fields(f"{path}.{key}" if path else str(key), item, depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value, start=1):
            yield from _fields(f"{path}[{index}]", item, depth + 1)
    else:
        yield path or "value", value
