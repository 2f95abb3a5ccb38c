"""What every log line says about the request it belongs to, without any caller passing it on.

The ASGI access log (core/access_log.py) starts a request's context; the chat pipeline adds the
conversation and channel. A logging filter copies the context onto each record, so a text line
and a JSON line carry the same fields. Only identifiers and figures go here, never a question,
an answer or a credential.
"""

from __future__ import annotations

import logging
import re
import uuid
from contextvars import ContextVar
from typing import Any

_context: ContextVar[dict[str, Any] | None] = ContextVar("ragsite_log_context", default=None)

# An incoming X-Request-ID is kept only if it is a plausible id: it lands in every log line.
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
FIELDS = ("request_id", "user_id", "conversation_id", "channel")


def request_id_from(raw: bytes | None) -> str:
    text = raw.decode("latin-1") if raw else ""
    return text if _REQUEST_ID.match(text) else uuid.uuid4().hex


def start(**fields: Any) -> dict[str, Any]:
    """A fresh context for this task and the tasks it starts (they copy it)."""
    context = {name: None for name in FIELDS} | fields
    _context.set(context)
    return context


def bind(**fields: Any) -> None:
    """Add to the current context; outside any request (a task worker) this starts one."""
    context = _context.get()
    if context is None:
        start(**fields)
    else:
        context.update(fields)


def current() -> dict[str, Any]:
    return _context.get() or {}


class ContextFilter(logging.Filter):
    """Puts the context's fields on the record (`-` where unknown, so text formats never fail)."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = _context.get() or {}
        for name in FIELDS:
            if not hasattr(record, name):
                setattr(record, name, context.get(name) or "-")
        return True
