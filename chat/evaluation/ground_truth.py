"""Ground-truth files: JSON Lines, one question a line, as the Azure samples' evaluators use them.

    {"question": "how many days leave?", "truth": "28 days [handbook.pdf#page=3]", "kind": "typo"}

`question` and `truth` are required strings; any other field is kept and copied to the results,
except the names the results use themselves (RESERVED). Blank lines are skipped.
"""

import json
from pathlib import Path

RESERVED = frozenset(
    {"retrieved", "answer", "cited", "latency_s", "usage", "timings", "error", "stopped"}
    | {"metrics", "judge"}
)


class GroundTruthError(ValueError):
    """A problem with the file, its message naming the line."""


def load(path: str | Path) -> list[dict]:
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise GroundTruthError(f"Cannot read {path}: {exc.strerror or exc}.") from None
    questions = []
    for number, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        questions.append(_parse(path, number, line))
    if not questions:
        raise GroundTruthError(f"{path} has no questions (one JSON object a line is expected).")
    return questions


def _parse(path: Path, number: int, line: bytes) -> dict:
    where = f"{path}, line {number}"
    try:
        item = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError:
        raise GroundTruthError(f"{where}: not UTF-8 text.") from None
    except json.JSONDecodeError as exc:
        message = f"{where}: not valid JSON ({exc.msg}, column {exc.colno})."
        raise GroundTruthError(message) from None
    if not isinstance(item, dict):
        raise GroundTruthError(f"{where}: expected an object with 'question' and 'truth'.")
    for name in ("question", "truth"):
        if name not in item:
            raise GroundTruthError(f"{where}: missing field {name!r}.")
        if not isinstance(item[name], str):
            raise GroundTruthError(f"{where}: {name!r} must be a string.")
    if not item["question"].strip():
        raise GroundTruthError(f"{where}: 'question' is empty.")
    clash = sorted(RESERVED & item.keys())
    if clash:
        raise GroundTruthError(
            f"{where}: {', '.join(map(repr, clash))}: names the results use; rename the field."
        )
    return item


def dump_line(item: dict) -> str:
    return json.dumps(item, ensure_ascii=False) + "\n"
