"""A run's files (eval_results.jsonl, summary.json, summary.md) and the comparison of two runs."""

import json
from pathlib import Path

from chat.evaluation.ground_truth import dump_line
from chat.evaluation.metrics import KS

RESULTS = "eval_results.jsonl"
SUMMARY = "summary.json"
TABLE = "summary.md"
LEVEL_NAMES = {"page": "page", "document": "document", "near_page": "page ±1"}


class ReportError(ValueError):
    pass


def write(out: Path, rows: list[dict], summary: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with open(out / RESULTS, "w", encoding="utf-8") as f:
        f.writelines(dump_line(row) for row in rows)
    (out / SUMMARY).write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    (out / TABLE).write_text(markdown(summary))


def _fmt(value, digits=2) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def markdown(summary: dict) -> str:
    params = summary.get("parameters", {})
    described = ", ".join(f"{k} {v}" for k, v in params.items() if v not in (None, ""))
    lines = [f"# Evaluation: {params.get('ground_truth', '')}", "", described, ""]
    retrieval = summary["retrieval"]
    lines += [
        f"Retrieval ({retrieval['questions']} questions whose truth cites a source):",
        "",
        "| level | " + " | ".join(f"recall@{k}" for k in KS) + " | MRR |",
        "|---|" + "--:|" * (len(KS) + 1),
    ]
    for level, name in LEVEL_NAMES.items():
        scores = retrieval[level]
        cells = [_fmt(scores[f"recall@{k}"]) for k in KS] + [_fmt(scores["mrr"])]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    answers, latency, tokens = summary["answers"], summary["latency_s"], summary["tokens"]
    matched = answers["citations_matched"]
    lines += [
        "",
        "| answers | value |",
        "|---|--:|",
        f"| questions answered / failed | {summary['answered']} / {summary['errors']} |",
        f"| citations_matched | {_fmt(matched['rate'])} ({matched['questions']} questions) |",
        f"| any_citation | {_fmt(answers['any_citation']['rate'])} |",
        f"| citations per answer | {_fmt(answers['citations_per_answer'])} |",
        f"| latency p50 / p95 (s) | {_fmt(latency['p50'], 3)} / {_fmt(latency['p95'], 3)} |",
        f"| tokens per answer | {_fmt(tokens['per_answer'], 0)} |",
    ]
    for name, ratings in summary.get("judge", {}).items():
        lines.append(
            f"| {name} (1–5), pass rate (≥ 3) | {_fmt(ratings['mean'])}, "
            f"{_fmt(ratings['pass_rate'])} ({ratings['rated']} rated) |"
        )
    for field, groups in summary.get("by", {}).items():
        lines += ["", *_group_table(field, groups)]
    return "\n".join(lines) + "\n"


def _group_table(field: str, groups: dict) -> list[str]:
    lines = [
        f"| {field} | questions | page recall@5 | page ±1 recall@5 | document recall@5 | page MRR "
        "| citations_matched | any_citation |",
        "|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for value, group in groups.items():
        retrieval, answers = group["retrieval"], group["answers"]
        cells = [
            group["questions"],
            _fmt(retrieval["page"]["recall@5"]),
            _fmt(retrieval["near_page"]["recall@5"]),
            _fmt(retrieval["document"]["recall@5"]),
            _fmt(retrieval["page"]["mrr"]),
            _fmt(answers["citations_matched"]["rate"]),
            _fmt(answers["any_citation"]["rate"]),
        ]
        lines.append(f"| {value} | " + " | ".join(map(str, cells)) + " |")
    return lines


def load_summary(path: str | Path) -> dict:
    """A run's summary: an output directory or its summary.json."""
    path = Path(path)
    if path.is_dir():
        path = path / SUMMARY
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ReportError(f"Cannot read {path}: {exc.strerror or exc}.") from None
    except ValueError:
        raise ReportError(f"{path} is not a JSON summary written by evaluate.") from None
    if not isinstance(data, dict) or "retrieval" not in data:
        raise ReportError(f"{path} is not a summary written by evaluate.")
    return data


def _numbers(data, prefix="") -> dict[str, float]:
    flat = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_numbers(value, name + "."))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            flat[name] = value
    return flat


def compare(a: dict, b: dict, name_a="A", name_b="B") -> str:
    """Every metric of the two runs and B - A, as a Markdown table."""
    first = _numbers({k: v for k, v in a.items() if k != "parameters"})
    second = _numbers({k: v for k, v in b.items() if k != "parameters"})
    lines = [f"| metric | {name_a} | {name_b} | delta |", "|---|--:|--:|--:|"]
    for metric in [*first, *(m for m in second if m not in first)]:
        x, y = first.get(metric), second.get(metric)
        delta = f"{y - x:+.4g}" if x is not None and y is not None else "–"
        lines.append(f"| {metric} | {_cell(x)} | {_cell(y)} | {delta} |")
    return "\n".join(lines) + "\n"


def _cell(value) -> str:
    return "–" if value is None else f"{value:.4g}"
