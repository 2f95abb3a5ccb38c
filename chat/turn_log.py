"""One INFO line per chat turn: who, which conversation, on which channel, how fast, how many
tokens, and how it ended. Identifiers and figures only: never the question or the answer."""

import logging
import time

from core import log_context

log = logging.getLogger("chat.turn")
_KINDS = {429: "rate_limited", 503: "unavailable", 504: "timeout"}


def error_kind(status: int) -> str:
    """The upstream failure's class, for dashboards: its HTTP status says it well enough."""
    return _KINDS.get(status, "upstream_error")


def log_turn(turn, state: dict) -> None:
    if not log.isEnabledFor(logging.INFO):
        return
    usage = turn.usage or {}
    outcome = "completed" if state["completed"] else ("failed" if state["error"] else "cancelled")
    log.info(
        "chat turn %s in %s ms (first token %s ms, %s+%s tokens)",
        outcome,
        turn.timings.get("total_ms"),
        turn.timings.get("first_token_ms"),
        usage.get("prompt_tokens", 0),
        usage.get("completion_tokens", 0),
        extra={
            "outcome": outcome,
            "error_kind": state.get("error_kind") or None,
            "total_ms": turn.timings.get("total_ms"),
            "first_token_ms": turn.timings.get("first_token_ms"),
            "prompt_tokens": usage.get("prompt_tokens", 0),
            "completion_tokens": usage.get("completion_tokens", 0),
            "hits": len(turn.hits),
            "channel": log_context.current().get("channel"),
        },
    )


def log_failed_start(kind: str, started: float) -> None:
    """A turn that failed before its answer started streaming (the caller gets an HTTP error)."""
    total_ms = round((time.perf_counter() - started) * 1000, 1)
    log.info(
        "chat turn failed before the answer (%s) in %s ms",
        kind,
        total_ms,
        extra={"outcome": "failed", "error_kind": kind, "total_ms": total_ms},
    )
