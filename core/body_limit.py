"""Bound every HTTP request body in size and in time, before any handler buffers it.

Django's ASGIHandler reads the whole body into a temporary file before a view sees the request,
so a size check in a view comes after the disk has been filled. This middleware sits in front of
both HTTP handlers: an oversized declared Content-Length is refused before a byte of the body is
read, a chunked (or lying) body is cut off as soon as it passes the limit, and a body that does not
arrive within the time limit is answered 408. Each refusal closes the connection, so the server
does not go on reading what the client still sends.

Once the body is complete, `receive` is passed straight through: the handlers listen on it for
the client leaving while an answer streams, however long that takes.
"""

import asyncio
import json
from collections.abc import Callable, Container
from importlib import import_module

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth import get_user
from django.http import HttpRequest, parse_cookie

from core.asgi_types import ASGIApp, Message, Receive, Scope, Send
from core.db import release_db
from core.outage import MESSAGE, is_outage
from core.per_loop import PerLoop

# Staff upload documents here (knowledge/admin.py): the file plus the form's other fields.
UPLOAD_PREFIX = "/admin/knowledge/document/"


def limits_for(path: str, chat_paths: Container[str] = ()) -> tuple[int, float]:
    """(largest body in bytes, seconds to receive it) for a request path."""
    if path in chat_paths:
        return settings.CHAT_MAX_BODY_BYTES, settings.HTTP_BODY_TIMEOUT_SECONDS
    if path.startswith(UPLOAD_PREFIX):
        return (
            settings.KNOWLEDGE_MAX_UPLOAD_BYTES + settings.HTTP_MAX_BODY_BYTES,
            settings.HTTP_UPLOAD_TIMEOUT_SECONDS,
        )
    return settings.HTTP_MAX_BODY_BYTES, settings.HTTP_BODY_TIMEOUT_SECONDS


def _is_staff(cookie: str) -> bool:
    key = parse_cookie(cookie).get(settings.SESSION_COOKIE_NAME)
    if not key:
        return False
    request = HttpRequest()
    request.session = import_module(settings.SESSION_ENGINE).SessionStore(key)
    try:
        user = get_user(request)  # checks the session's password hash too
        return user.is_active and user.is_staff
    finally:
        release_db()


async def upload_limits(scope: Scope) -> tuple[int, float]:
    """The upload limits for an active staff user's session, the default ones for anyone else,
    so an anonymous caller cannot make the server store an upload's worth of bytes."""
    for name, value in scope["headers"]:
        if name == b"cookie":
            cookie = value.decode("latin-1")
            if await sync_to_async(_is_staff, thread_sensitive=False)(cookie):
                return limits_for(UPLOAD_PREFIX)
    return settings.HTTP_MAX_BODY_BYTES, settings.HTTP_BODY_TIMEOUT_SECONDS


async def refuse(send: Send, status: int, message: str, as_json: bool) -> None:
    if as_json:
        body = json.dumps({"error": message}).encode()
        content_type = b"application/json"
    else:
        body = message.encode() + b"\n"
        content_type = b"text/plain; charset=utf-8"
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
                # The rest of the body is not wanted: close rather than read and discard it.
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """`chat_paths()` names the chat API's paths, whose bodies get CHAT_MAX_BODY_BYTES."""

    def __init__(self, app: ASGIApp, chat_paths: Callable[[], Container[str]] = tuple) -> None:
        self.app = app
        self.chat_paths = chat_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        declared = None
        has_body = False
        as_json = path.startswith("/chat")  # the chat API and feedback answer in JSON
        for name, value in scope["headers"]:
            if name == b"content-length":
                has_body = True
                try:
                    declared = int(value)
                except ValueError:
                    return await refuse(send, 400, "The Content-Length is not a number.", as_json)
            elif name == b"transfer-encoding":
                has_body = True
            elif name == b"accept" or name == b"content-type":
                as_json = as_json or b"application/json" in value
        if declared == 0 or not has_body and scope.get("http_version", "1.1") < "2":
            # HTTP/1 frames a body with one of those headers; HTTP/2 and 3 need neither.
            return await self.app(scope, receive, send)
        limit, seconds = limits_for(path, self.chat_paths())
        if declared is not None and declared > limit:
            return await refuse(send, 413, _too_large(limit), as_json)
        if path.startswith(UPLOAD_PREFIX) and (
            declared is None or declared > settings.HTTP_MAX_BODY_BYTES
        ):
            try:
                limit, seconds = await upload_limits(scope)
            except Exception as exc:
                if not is_outage(exc):
                    raise
                return await refuse(send, 503, MESSAGE, as_json)
            if declared is not None and declared > limit:
                return await refuse(send, 413, _too_large(limit), as_json)
        body = _BoundedBody(receive, send, limit, seconds, as_json)
        await self.app(scope, body.receive, send)


def _too_large(limit: int) -> str:
    return f"The request body is too large (at most {limit} bytes)."


class _Clock:
    """Ends the waits of bodies past their deadline: one timer per event loop, ticking only
    while some body is being waited for, instead of a timer per request."""

    TICK = 0.5

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._waits: set[_BoundedBody] = set()
        self._ticking = False

    def watch(self, body: "_BoundedBody") -> None:
        self._waits.add(body)
        if not self._ticking:
            self._ticking = True
            self.loop.call_later(self.TICK, self._tick)

    def unwatch(self, body: "_BoundedBody") -> None:
        self._waits.discard(body)

    def _tick(self) -> None:
        now = self.loop.time()
        for body in [body for body in self._waits if body.deadline <= now]:
            self._waits.discard(body)
            body.expire()
        self._ticking = bool(self._waits)
        if self._ticking:
            self.loop.call_later(self.TICK, self._tick)


_clocks = PerLoop(_Clock)


class _BoundedBody:
    """The handler's `receive` while the body comes in: counts its bytes and bounds the time
    it takes."""

    __slots__ = ("_receive", "_send", "_limit", "_as_json", "_received", "_done", "_task",
                 "_clock", "_expired", "deadline")  # fmt: skip

    def __init__(self, receive: Receive, send: Send, limit: int, seconds: float, as_json: bool):
        self._receive = receive
        self._send = send
        self._limit = limit
        self._as_json = as_json
        self._received = 0
        self._done = False
        self._expired = False
        self._task: asyncio.Task[object] | None = None
        self._clock = _clocks.get()
        self.deadline = self._clock.loop.time() + seconds

    def expire(self) -> None:
        """Called only while the handler waits in `receive`, never during its own work."""
        self._expired = True
        if self._task is not None:
            self._task.cancel()

    async def receive(self) -> Message:
        if self._done:
            return await self._receive()
        if self._clock.loop.time() >= self.deadline:
            return await self._refuse(408, _TOO_SLOW)
        self._task = task = asyncio.current_task()
        self._clock.watch(self)
        try:
            message = await self._receive()
        except asyncio.CancelledError:
            if not self._expired or task is None or task.uncancel() > 0:
                raise  # someone else's cancellation (the server shutting down) goes on up
            return await self._refuse(408, _TOO_SLOW)
        finally:
            self._clock.unwatch(self)
        if message["type"] != "http.request":
            self._done = True
            return message
        self._received += len(message.get("body", b""))
        if self._received > self._limit:
            return await self._refuse(413, _too_large(self._limit))
        if not message.get("more_body", False):
            self._done = True
        return message

    async def _refuse(self, status: int, message: str) -> Message:
        """Answer for the handler and tell it the client has gone: both handlers then return
        without answering (Django's read_body raises RequestAborted)."""
        self._done = True
        await refuse(self._send, status, message, self._as_json)
        return {"type": "http.disconnect"}


_TOO_SLOW = "The request body did not arrive in time."
