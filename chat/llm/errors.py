"""Upstream LLM failures as end-user messages with the HTTP status they deserve, for the
request (SDK exceptions) and for the stream (chat/llm/stream_relay.py) alike."""

import email.utils
import logging
import socket
from collections.abc import Mapping
from datetime import UTC, datetime

import openai

from chat.llm.base import AnswerError
from core.clients import is_out_of_quota

log = logging.getLogger(__name__)

TIMED_OUT = "The language model took too long to answer. Please try again."
FAILED = "The language model failed to answer. Please try again."
INTERRUPTED = "The answer stream was interrupted. Please try again."
FILTERED = "The rest of the answer was withheld by the content filter."
OUT_OF_QUOTA = (
    "The language model cannot answer: this site's account with it has used up its quota. "
    "Please tell the site's administrators."
)


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """The wait a 429 or 503 asks for: `retry-after-ms`, or `retry-after` in seconds or as an
    HTTP-date (all three are in use)."""
    try:
        if "retry-after-ms" in headers:
            return max(0.0, float(headers["retry-after-ms"]) / 1000)
        value = headers.get("retry-after")
        if value is None:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            when = email.utils.parsedate_to_datetime(value)
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            return max(0.0, (when - datetime.now(UTC)).total_seconds())
    except (ValueError, TypeError, OverflowError):
        return None


def _retry_after(exc: openai.APIStatusError) -> float | None:
    return retry_after_seconds(exc.response.headers if exc.response is not None else {})


def map_error(exc: Exception) -> AnswerError:
    """An SDK exception as an end-user message with the HTTP status it deserves."""
    if isinstance(exc, openai.BadRequestError) and _is_content_filter(exc):
        return AnswerError(
            "Your question was blocked by the content filter. Please rephrase it.", 400
        )
    if isinstance(exc, openai.RateLimitError) and is_out_of_quota(exc.body):
        log.error("the language model account is out of quota: %s", exc)
        return AnswerError(OUT_OF_QUOTA, 503)
    if isinstance(exc, openai.RateLimitError):
        wait = _retry_after(exc)
        when = f" in about {max(1, round(wait))} seconds" if wait else " in a minute"
        return AnswerError(f"The language model is busy. Please try again{when}.", 429, wait)
    if isinstance(exc, openai.APITimeoutError) and not _never_connected(exc):
        return AnswerError(TIMED_OUT, 504)
    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        log.error("the language model refused our credentials: %s", exc)
        return AnswerError("The language model is not configured correctly.", 502)
    if isinstance(exc, openai.APIConnectionError):  # APITimeoutError is one
        return AnswerError("The language model could not be reached. Please try again.", 502)
    if isinstance(exc, openai.APIStatusError):
        log.warning("language model error %s: %s", exc.status_code, exc)
        return AnswerError(FAILED, 502)
    log.exception("unexpected language model failure", exc_info=exc)
    return AnswerError(FAILED, 502)


def _never_connected(exc: BaseException) -> bool:
    """Whether the connection was refused or its host not found, whatever the exception says
    on top: the aiohttp transport under the SDK reports a refused connection as a connect
    timeout, which would tell the user to wait for a server that is not there."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, ConnectionRefusedError | socket.gaierror):
            return True
        cause = cause.__cause__ or cause.__context__
    return False


def _is_content_filter(exc: openai.BadRequestError) -> bool:
    body = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error", body) if isinstance(body, dict) else {}
    return "content_filter" in (getattr(exc, "code", None) or "") or (
        isinstance(error, dict) and error.get("code") == "content_filter"
    )
