"""A lean ASGI handler for the chat API (the URLconf's `chat:chat` and `chat:stream`).

Django's ASGIHandler gives every request its own thread-sensitive context, so the first sync call
of a request (a MiddlewareMixin hook, a sync signal receiver, the async ORM) creates an OS thread
for it; with Django's stock middleware every request hops to that thread a dozen times. For a
chat, which mostly waits on the model, that made threads, not the event loop, the bottleneck
(see bench/results). This handler serves only the chat API views, with no middleware; the views
load the session and the user themselves in one database call on the shared executor, and check
CSRF inline. It also sends no request_started/request_finished signals: their receivers are sync
(close_old_connections, reset_queries), so each would hop to the one shared sync thread, twice per
chat, and here they have nothing to do: this path never uses the database on the event loop's
thread, and its executor calls manage their own connections (core/db.py).

Its paths are the URLconf's, reversed once: rename a chat URL and the fast path moves with it.
"""

import asyncio
from collections.abc import Callable
from contextlib import closing
from functools import cache
from typing import Any

from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.core.handlers.exception import convert_exception_to_response
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import HttpRequest
from django.urls import get_script_prefix as url_prefix
from django.urls import reverse, set_script_prefix

from core.asgi_types import ASGIApp, Receive, Scope, Send

CHAT_API_URL_NAMES = ("chat:chat", "chat:stream")


class ChatAPIHandler(ASGIHandler):
    def load_middleware(self, is_async: bool = False) -> None:
        self._view_middleware: list[Callable[..., object]] = []
        self._template_response_middleware: list[Callable[..., object]] = []
        self._exception_middleware: list[Callable[..., object]] = []
        # BaseHandler._get_response_async is real but private, so django-stubs leave it out.
        get_response = self._get_response_async  # type: ignore[attr-defined]
        self._middleware_chain = convert_exception_to_response(get_response)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # No ThreadSensitiveContext: no per-request thread to create.
        await self.handle(scope, receive, send)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Django's ASGIHandler.handle without the request signals (see above)."""
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        with closing(body_file):
            set_script_prefix(get_script_prefix(scope))
            request, error_response = self.create_request(scope, body_file)
            if request is None:
                assert error_response is not None  # create_request returns one or the other
                await self.send_response(error_response, send)
                return
            await self.respond(request, receive, send)

    async def respond(self, request: HttpRequest, receive: Receive, send: Send) -> None:
        """Send the response; a client that goes away cancels it, and with it the upstream
        stream. Django runs this in a TaskGroup that it ends by raising an exception: per
        request an ExceptionGroup, a traceback and frames in reference cycles, which only the
        garbage collector frees (bench/results/fixes.md). Here a callback cancels instead."""
        handler = asyncio.current_task()
        assert handler is not None  # a coroutine always runs in a task here
        gone = finished = False

        def on_listener_done(listener: asyncio.Task[None]) -> None:
            nonlocal gone
            # A callback already queued when the response ended must not cancel whatever the
            # task does next (the server's next step, or the next request on this task).
            if finished:
                return
            if not listener.cancelled() and isinstance(listener.exception(), RequestAborted):
                gone = True
                handler.cancel()

        listener = asyncio.create_task(self.listen_for_disconnect(receive))
        listener.add_done_callback(on_listener_done)
        response = None
        try:
            response = await self.run_get_response(request)
            await self.send_response(response, send)
        except asyncio.CancelledError:
            # Our own cancel ends quietly; anyone else's (server shutdown) goes on up.
            if not gone or handler.uncancel() > 0:
                raise
        finally:
            finished = True
            listener.remove_done_callback(on_listener_done)
            listener.cancel()
            # What the response holds (a chat turn's stream slot) is released however sending
            # ended: a client that left before the first byte leaves an iterator never started,
            # whose own cleanup never runs. (Django's close() would send request_finished.)
            closer = getattr(response, "aclose", None)
            if closer is not None:
                await closer()


@cache
def chat_api_paths() -> frozenset[str]:
    """The chat API's paths as the URLconf spells them, without the script prefix, as the router
    has always compared them; resolved at the first request, once Django is set up."""
    prefix = url_prefix()
    return frozenset("/" + reverse(name).removeprefix(prefix) for name in CHAT_API_URL_NAMES)


@receiver(setting_changed)
def _urlconf_changed(*, setting: str, **kwargs: Any) -> None:
    if setting == "ROOT_URLCONF":
        chat_api_paths.cache_clear()


class Router:
    """HTTP requests for the chat API go to the lean handler, everything else to Django's."""

    def __init__(self, django_app: ASGIApp, chat_app: ASGIApp) -> None:
        self.django_app = django_app
        self.chat_app = chat_app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        app = self.chat_app if scope.get("path") in chat_api_paths() else self.django_app
        await app(scope, receive, send)
