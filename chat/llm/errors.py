"""Upstream LLM failures as end-user messages with the HTTP status they deserve, for the
request (SDK exceptions) and for the stream (chat/llm/stream_relay.py) alike."""

import logging

import openai

from chat.llm.base import AnswerError

log = logging.getLogger(__name__)

TIMED_OUT = "The language model took too long to answer. Please try again."
FAILED = "The language model failed to answer. Please try again."
INTERRUPTED = "The answer stream was interrupted. Please try again."
FILTERED = "The rest of the answer was withheld by the content filter."


def _retry_after(exc: openai.APIStatusError) -> float | None:
    headers = exc.response.headers if exc.response is not None else {}
    try:
        if "retry-after-ms" in headers:
            return float(headers["retry-after-ms"]) / 1000
        if "retry-after" in headers:
            return float(headers["retry-after"])
    except ValueError:
        return None
    return None


def map_error(exc: Exception) -> AnswerError:
    """An SDK exception as an end-user message with the HTTP status it deserves."""
    if isinstance(exc, openai.BadRequestError) and _is_content_filter(exc):
        return AnswerError(
            "Your question was blocked by the content filter. Please rephrase it.", 400
        )
    if isinstance(exc, openai.RateLimitError):
        wait = _retry_after(exc)
        when = f" in about {max(1, round(wait))} seconds" if wait else " in a minute"
        return AnswerError(f"The language model is busy. Please try again{when}.", 429, wait)
    if isinstance(exc, openai.APITimeoutError):
        return AnswerError(TIMED_OUT, 504)
    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        log.error("the language model refused our credentials: %s", exc)
        return AnswerError("The language model is not configured correctly.", 502)
    if isinstance(exc, openai.APIConnectionError):
        return AnswerError("The language model could not be reached. Please try again.", 502)
    if isinstance(exc, openai.APIStatusError):
        log.warning("language model error %s: %s", exc.status_code, exc)
        return AnswerError(FAILED, 502)
    log.exception("unexpected language model failure", exc_info=exc)
    return AnswerError(FAILED, 502)


def _is_content_filter(exc: openai.BadRequestError) -> bool:
    body = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error", body) if isinstance(body, dict) else {}
    return "content_filter" in (getattr(exc, "code", None) or "") or (
        isinstance(error, dict) and error.get("code") == "content_filter"
    )
