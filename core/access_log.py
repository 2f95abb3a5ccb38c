"""One access log line per HTTP request and per websocket, and the request id on both.

ASGI middleware outermost in the stack, so the lean chat handler, Django's handler and the
websocket consumer are all covered (the lean handler runs no Django middleware). The id comes
from `X-Request-ID` when the caller (a proxy) sent a plausible one, else it is made here, and
goes back in the response's `X-Request-ID`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

from core import log_context
from core.asgi_types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("ragsite.access")


class AccessLog:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        request_id = log_context.request_id_from(_header(scope, b"x-request-id"))
        context = log_context.start(request_id=request_id)
        started = time.perf_counter()
        outcome: dict[str, int | None] = {"status": None}
        header = (b"x-request-id", request_id.encode())

        async def send_with_id(message: Message) -> None:
            kind = message["type"]
            if kind == "http.response.start":
                outcome["status"] = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), header]}
            elif kind == "websocket.accept":
                outcome["status"] = 101
                message = {**message, "headers": [*message.get("headers", ()), header]}
            elif kind == "websocket.close" and outcome["status"] is None:
                outcome["status"] = 403  # refused before the handshake completed
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if log.isEnabledFor(logging.INFO):
                _line(scope, outcome["status"], started, context)


def _line(scope: Scope, status: int | None, started: float, context: dict[str, Any]) -> None:
    latency_ms = round((time.perf_counter() - started) * 1000, 1)
    log.info(
        "%s %s %s %s ms",
        scope.get("method", "WS"),
        scope.get("path", ""),
        status if status is not None else "-",
        latency_ms,
        extra={
            "method": scope.get("method", "WEBSOCKET"),
            "path": scope.get("path", ""),
            "status": status,
            "latency_ms": latency_ms,
            "user_id": context.get("user_id"),
            "conversation_id": context.get("conversation_id"),
            "channel": context.get("channel"),
        },
    )


def _header(scope: Scope, name: bytes) -> bytes | None:
    headers: Iterable[tuple[bytes, bytes]] = scope.get("headers", ())
    for key, value in headers:
        if key == name:
            return value
    return None
