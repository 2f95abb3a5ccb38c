"""The numbers: retrieval (recall@k and MRR at three levels), answers (the Azure samples'
`citations_matched` and `any_citation`), latency, tokens, and the judge's ratings.

Retrieval is scored on the retrieved passages in rank order (one citation per passage, so two
passages of one page take two ranks) against the citations in the truth:
- recall@k: the share of the truth's citations that one of the first k passages matches;
- MRR: 1 / the rank of the first passage that matches any of them (0 when none does).
At three levels: `page` (same document and page), `document` (same document), and `near_page`
(same document, a page at most one away). A truth citation without a page is matched by any
passage of its document. Questions whose truth cites nothing are left out of retrieval scores.
"""

import json
import statistics

from chat.evaluation.citations import Ref, azure_citations, bracketed, ref

KS = (1, 3, 5, 10)
LEVELS = ("page", "document", "near_page")
JUDGE_PASS = 3  # azure-ai-evaluation's default threshold for its 1-5 ratings


def _matches(level: str, found: Ref, truth: Ref) -> bool:
    if found.document != truth.document:
        return False
    if level == "document" or truth.page is None:
        return True
    if found.page is None:
        return False
    if level == "page":
        return found.page == truth.page
    return abs(found.page - truth.page) <= 1


def _truth_items(level: str, truths: list[Ref]) -> list[Ref]:
    if level == "document":
        return list(dict.fromkeys(Ref(t.document) for t in truths))
    return list(dict.fromkeys(truths))


def retrieval_scores(retrieved: list[str], truth: str) -> dict | None:
    """{level: {"recall@k": ..., "mrr": ...}} of one question; None if the truth cites nothing."""
    truths = [ref(c) for c in bracketed(truth)]
    if not truths:
        return None
    found = [ref(c) for c in retrieved]
    scores = {}
    for level in LEVELS:
        items = _truth_items(level, truths)
        level_scores = {}
        for k in KS:
            hit = sum(any(_matches(level, f, t) for f in found[:k]) for t in items)
            level_scores[f"recall@{k}"] = hit / len(items)
        first = next(
            (i for i, f in enumerate(found, 1) if any(_matches(level, f, t) for t in items)),
            None,
        )
        level_scores["mrr"] = 1 / first if first else 0.0
        scores[level] = level_scores
    return scores


def citations_matched(answer: str, truth: str) -> float | None:
    """The share of the truth's citations the answer cites, as the Azure samples compute it;
    None when the truth cites nothing (their script divides by zero there)."""
    wanted = azure_citations(truth)
    if not wanted:
        return None
    return len(wanted & azure_citations(answer)) / len(wanted)


def any_citation(answer: str) -> bool:
    return bool(azure_citations(answer))


def score_row(row: dict) -> dict:
    """The metrics of one answered question (a per-question output row)."""
    answer = row.get("answer") or ""
    return {
        "retrieval": retrieval_scores(row.get("retrieved") or [], row["truth"]),
        "citations_matched": citations_matched(answer, row["truth"]),
        "any_citation": any_citation(answer),
        "citations": len(row.get("cited") or []),
    }


def _mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return round(statistics.fmean(values), 4) if values else None


def _percentile(values: list[float], q: int) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return round(values[0], 4)
    return round(statistics.quantiles(values, n=100, method="inclusive")[q - 1], 4)


def summarize(rows: list[dict]) -> dict:
    """The run's summary from its per-question rows (each with "metrics" unless it failed)."""
    ok = [r for r in rows if not r.get("error")]
    scored = [r["metrics"] for r in ok]
    retrieval = [m["retrieval"] for m in scored if m["retrieval"] is not None]
    matched = [m["citations_matched"] for m in scored if m["citations_matched"] is not None]
    latencies = [r["latency_s"] for r in ok if r.get("latency_s") is not None]
    summary = {
        "questions": len(rows),
        "answered": len(ok),
        "errors": len(rows) - len(ok),
        "retrieval": {
            "questions": len(retrieval),
            **{
                level: {
                    name: _mean(s[level][name] for s in retrieval)
                    for name in [*(f"recall@{k}" for k in KS), "mrr"]
                }
                for level in LEVELS
            },
        },
        "answers": {
            "citations_matched": {
                "rate": _mean(matched),
                "total": round(sum(matched), 4),
                "questions": len(matched),
            },
            "any_citation": {
                "rate": _mean(float(m["any_citation"]) for m in scored),
                "total": sum(m["any_citation"] for m in scored),
            },
            "citations_per_answer": _mean(m["citations"] for m in scored),
        },
        "latency_s": {
            "p50": _percentile(latencies, 50),
            "p95": _percentile(latencies, 95),
            "mean": _mean(latencies),
        },
        "tokens": _tokens(ok),
    }
    judged = [r["judge"] for r in ok if r.get("judge")]
    if judged:
        summary["judge"] = {name: _ratings(j.get(name) for j in judged) for name in JUDGED}
    return summary


JUDGED = ("groundedness", "relevance")


def _ratings(values) -> dict:
    scores = [v for v in values if v is not None]
    return {
        "mean": _mean(scores),
        "pass_rate": _mean(float(s >= JUDGE_PASS) for s in scores),
        "rated": len(scores),
    }


def _tokens(rows: list[dict]) -> dict:
    names = ("prompt_tokens", "completion_tokens", "total_tokens")
    reported = [r["usage"] for r in rows if r.get("usage")]
    totals = {name: sum(int(u.get(name) or 0) for u in reported) for name in names}
    return {
        **totals,
        "per_answer": _mean(int(u.get("total_tokens") or 0) for u in reported),
        "answers_reporting": len(reported),
    }


def summarize_by(rows: list[dict], field: str) -> dict:
    """The summary of each group of questions sharing a value of an input field (e.g. "kind")."""
    groups: dict[str, list[dict]] = {}
    for row in rows:
        value = row.get(field)
        key = value if isinstance(value, str) else json.dumps(value)
        groups.setdefault(key, []).append(row)
    return {key: summarize(group) for key, group in sorted(groups.items())}
