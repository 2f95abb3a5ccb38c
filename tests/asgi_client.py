"""An in-process HTTP client that serves every request through the ASGI application users run.

Django's test Client and AsyncClient call Django's request handler directly: no ASGI server, no
router in ragsite/asgi.py, no lean chat handler, no request body in pieces, no client that goes
away. The two clients here keep everything Django's clients do to *build* a request (form,
multipart and JSON encoding, cookies, force_login/login/logout, follow=, headers=) and replace
the handler call with a full ASGI exchange with `ragsite.asgi.application`: the body arrives in
64 KiB `http.request` messages, the response is read from `http.response.*` messages, and
`http.disconnect` is sent when the client leaves.

- AsyncClient runs the application on the test's event loop and returns as soon as the response
  starts: a streamed answer is read as it arrives (`response.streaming_content`), and
  `await response.disconnect()` leaves early, as a browser closing the tab does.
- Client runs it on one event loop per test in a background thread, as a server process runs
  all its requests on one loop (per-loop state such as the rate limits carries over between
  requests), and reads each response to the end. The application's thread-sensitive sync calls
  (Django's middleware, sessions, the admin) run on the calling thread, as they do under
  asgiref's async_to_sync, so they see the test's transaction.
- CSRF: a client made with enforce_csrf_checks=False (Django's default) acts like the page's own
  forms and scripts: on unsafe methods it sends the csrftoken cookie (making one if it has none)
  and the X-CSRFToken header. With enforce_csrf_checks=True it sends only what the test gives.
- A response counts as streaming when its body comes in more than one message and it has no
  Content-Length: all that a client can see of a StreamingHttpResponse.
- META-style keyword arguments map to what a client can actually send: HTTP_* become headers,
  REMOTE_ADDR/REMOTE_PORT the connection's address, SERVER_NAME/SERVER_PORT and secure= the
  server; anything else is refused (a TypeError), since no client could send it.
"""

import asyncio
import contextvars
import itertools
import threading
from functools import partial
from urllib.parse import quote

from asgiref.current_thread_executor import CurrentThreadExecutor
from asgiref.sync import AsyncToSync, SyncToAsync, async_to_sync
from django import test as django_test
from django.conf import settings
from django.core.signals import got_request_exception, request_finished, request_started
from django.db import close_old_connections, connections
from django.http import HttpResponse, StreamingHttpResponse
from django.test import signals
from django.test.client import RequestFactory, store_rendered_templates
from django.urls import resolve
from django.utils.crypto import get_random_string
from django.utils.functional import SimpleLazyObject

BODY_CHUNK = 65536  # what an ASGI server hands over per http.request message
HANG_GUARD_SECONDS = 60  # only against a test hanging forever; never a performance bound
SAFE_METHODS = {"GET", "HEAD", "OPTIONS", "TRACE"}
# Environ keys Django's request building produces that have an ASGI counterpart.
_MAPPED = {
    "PATH_INFO",
    "QUERY_STRING",
    "REMOTE_ADDR",
    "REMOTE_PORT",
    "REQUEST_METHOD",
    "SCRIPT_NAME",
    "SERVER_NAME",
    "SERVER_PORT",
    "SERVER_PROTOCOL",
}
_ports = itertools.count(50000)

# How many requests each kind of client has served in this process (see tests/conftest.py).
served = {"asgi": 0}


def next_port() -> int:
    """A client-side port for a new connection, as the client's OS would pick one."""
    return next(_ports)


def application():
    from ragsite.asgi import application

    return application


def scope_for(environ: dict, client_port: int) -> tuple[dict, bytes]:
    """The ASGI scope and body of the request Django's RequestFactory describes as `environ`."""
    headers = []
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            name = key[5:]
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            name = key
        elif key in _MAPPED or key.startswith("wsgi."):
            continue
        else:
            raise TypeError(f"{key} is not something an HTTP client can send; use headers=")
        if value == "" and key == "HTTP_COOKIE":
            continue
        headers.append((name.replace("_", "-").lower().encode(), str(value).encode("latin-1")))
    server_name, server_port = environ["SERVER_NAME"], int(environ["SERVER_PORT"])
    scheme = environ.get("wsgi.url_scheme", "http")
    if "HTTP_HOST" not in environ:
        default_port = 443 if scheme == "https" else 80
        host = server_name if server_port == default_port else f"{server_name}:{server_port}"
        headers.insert(0, (b"host", host.encode()))
    path = environ["PATH_INFO"].encode("iso-8859-1")  # Django's WSGI-style path: raw bytes
    body = environ["wsgi.input"].read() if "wsgi.input" in environ else b""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": environ["REQUEST_METHOD"].upper(),
        "scheme": scheme,
        "path": path.decode("utf-8", errors="replace"),
        "raw_path": quote(path).encode(),
        "query_string": environ.get("QUERY_STRING", "").encode("iso-8859-1"),
        "root_path": environ.get("SCRIPT_NAME", ""),
        "headers": headers,
        "client": (
            environ.get("REMOTE_ADDR", "127.0.0.1"),
            int(environ.get("REMOTE_PORT", client_port)),
        ),
        "server": (server_name, server_port),
        "state": {},
    }
    return scope, body


class Exchange:
    """One request/response with the application, as a server and a client see it."""

    open: set["Exchange"] = set()  # started and not finished, for the end of each test

    def __init__(self, scope: dict, body: bytes):
        self.scope = scope
        self.body = body
        self.sent = 0
        self.body_done = False
        self.messages: asyncio.Queue = asyncio.Queue()
        self.gone = asyncio.Event()
        self.loop = asyncio.get_running_loop()
        self.task = None

    def start(self) -> None:
        served["asgi"] += 1
        self.task = asyncio.ensure_future(application()(self.scope, self.receive, self.send))
        self.task.add_done_callback(lambda _: self.messages.put_nowait(None))
        Exchange.open.add(self)

    async def receive(self) -> dict:
        if not self.body_done:
            chunk = self.body[self.sent : self.sent + BODY_CHUNK]
            self.sent += len(chunk)
            self.body_done = self.sent >= len(self.body)
            return {"type": "http.request", "body": chunk, "more_body": not self.body_done}
        await self.gone.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict) -> None:
        self.messages.put_nowait(message)

    async def next_message(self) -> dict:
        message = await self.messages.get()
        if message is None:  # the application returned or raised
            self.messages.put_nowait(None)
            Exchange.open.discard(self)
            if not self.task.cancelled() and self.task.exception() is not None:
                raise self.task.exception()
            raise ConnectionError("the application ended without completing the response")
        return message

    async def finish(self) -> None:
        """Wait for the application to return after the response is complete."""
        await asyncio.wait([self.task], timeout=HANG_GUARD_SECONDS)
        Exchange.open.discard(self)
        if not self.task.done():
            self.task.cancel()
            raise TimeoutError("the application did not return after its response")
        if not self.task.cancelled() and self.task.exception() is not None:
            raise self.task.exception()

    async def disconnect(self) -> None:
        """The client goes away: http.disconnect, then the application must wind up."""
        self.gone.set()
        if self.task is not None:
            await self.finish()

    async def response_start(self) -> dict:
        while True:
            message = await self.next_message()
            if message["type"] == "http.response.start":
                return message

    async def body_message(self) -> dict:
        while True:
            message = await self.next_message()
            if message["type"] == "http.response.body":
                return message


def django_response(start: dict, content: bytes | None, chunks=None, head=False):
    """A Django response object carrying what came over the wire."""
    status = start["status"]
    if chunks is None:
        response = HttpResponse(b"" if head else content, status=status)
    else:
        response = StreamingHttpResponse([] if head else chunks, status=status)
    for name in list(response.headers):
        del response.headers[name]
    for raw_name, raw_value in start.get("headers", []):
        name, value = raw_name.decode("latin-1"), raw_value.decode("latin-1")
        if name.lower() == "set-cookie":
            response.cookies.load(value)
        elif name in response.headers:
            response.headers[name] = f"{response.headers[name]}, {value}"
        else:
            response.headers[name] = value
    if "Location" in response.headers:
        response.url = response.headers["Location"]  # what follow= reads
    return response


def _has_length(start: dict) -> bool:
    return any(name.lower() == b"content-length" for name, _ in start.get("headers", []))


async def read_all(exchange: Exchange, head: bool):
    """Run the exchange to its end; return the response."""
    start = await exchange.response_start()
    chunks, more = [], True
    while more:
        message = await exchange.body_message()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    await exchange.finish()
    content = b"".join(chunks)
    if len([c for c in chunks if c]) > 1 and not _has_length(start):
        return django_response(start, None, [c for c in chunks if c], head)
    return django_response(start, content, None, head)


async def read_until_streaming(exchange: Exchange, head: bool):
    """Return once the response has started: the whole of a plain response, or the first part
    of a streamed one with the rest to come from `streaming_content`."""
    start = await exchange.response_start()
    first = await exchange.body_message()
    if not first.get("more_body", False):
        await exchange.finish()
        return django_response(start, first.get("body", b""), None, head)
    if _has_length(start):
        chunks, more = [first.get("body", b"")], True
        while more:
            message = await exchange.body_message()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        await exchange.finish()
        return django_response(start, b"".join(chunks), None, head)

    async def rest():
        finished = False
        try:
            if first.get("body"):
                yield first["body"]
            while True:
                message = await exchange.body_message()
                if message.get("body"):
                    yield message["body"]
                if not message.get("more_body", False):
                    break
            finished = True
            await exchange.finish()
        finally:
            if not finished:
                await exchange.disconnect()

    response = django_response(start, None, rest(), head)
    response.disconnect = exchange.disconnect
    return response


class ServerLoop:
    """One event loop in a background thread, serving the sync client's requests."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=self.loop.run_forever, name="asgi-client-server", daemon=True
        )
        self.thread.start()

    def run(self, coroutine_function, *args):
        """Run it on the loop while this thread serves the thread-sensitive sync calls it
        makes (asgiref's CurrentThreadExecutor, as async_to_sync does)."""
        executor = CurrentThreadExecutor(getattr(AsyncToSync.executors, "current", None))
        context = contextvars.copy_context()

        def submit():
            AsyncToSync.executors.current = executor
            return asyncio.run_coroutine_threadsafe(coroutine_function(*args), self.loop)

        future = context.run(submit)
        executor.run_until_future(future)
        return future.result()

    def stop(self) -> None:
        from ragsite.lifespan import close_clients

        async def wind_up():
            await close_open_exchanges()
            await close_clients()

        try:
            self.run(wind_up)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join()
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.run_until_complete(self.loop.shutdown_default_executor())
            self.loop.close()


_server: ServerLoop | None = None
_server_lock = threading.Lock()


def server_loop() -> ServerLoop:
    global _server
    with _server_lock:
        if _server is None:
            _server = ServerLoop()
        return _server


def stop_server_loop() -> None:
    """End of a test: close what the sync client's loop opened, as the lifespan does."""
    global _server
    with _server_lock:
        server, _server = _server, None
    if server is not None:
        server.stop()


async def close_open_exchanges() -> None:
    """End of a test: every response nobody read to the end is left, as a client leaves."""
    loop = asyncio.get_running_loop()
    for exchange in [e for e in Exchange.open if e.loop is loop]:
        await exchange.disconnect()


class _ASGIClientMixin:
    """What both clients share: Django's request building, the ASGI app's handling."""

    generic = RequestFactory.generic  # WSGI-style keys, which scope_for() maps

    def __init__(self, enforce_csrf_checks=False, raise_request_exception=True, **kwargs):
        super().__init__(
            enforce_csrf_checks=enforce_csrf_checks,
            raise_request_exception=raise_request_exception,
            **kwargs,
        )
        self.enforce_csrf_checks = enforce_csrf_checks
        self.handler = None  # Django's test handler is never used
        self.port = next_port()

    def _base_environ(self, **request):
        method = request.get("REQUEST_METHOD", "GET").upper()
        if not self.enforce_csrf_checks and method not in SAFE_METHODS:
            request.setdefault("HTTP_X_CSRFTOKEN", self._csrf_cookie())
        return super()._base_environ(**request)

    def _csrf_cookie(self) -> str:
        name = settings.CSRF_COOKIE_NAME
        if name not in self.cookies or not self.cookies[name].value:
            self.cookies[name] = get_random_string(32)
        return self.cookies[name].value

    def _capture(self, request: dict):
        """Listen for rendered templates and view exceptions, as Django's clients do."""
        data: dict = {}
        template_uid = f"template-render-{id(request)}"
        exception_uid = f"request-exception-{id(request)}"
        on_render = partial(store_rendered_templates, data)
        signals.template_rendered.connect(on_render, dispatch_uid=template_uid)
        got_request_exception.connect(self.store_exc_info, dispatch_uid=exception_uid)

        def stop(receiver=on_render):  # holds it: signals keep only weak references
            signals.template_rendered.disconnect(dispatch_uid=template_uid)
            got_request_exception.disconnect(dispatch_uid=exception_uid)

        return data, stop

    def _annotate(self, response, request: dict, data: dict):
        self.check_exception(response)
        response.client = self
        response.request = request
        response.templates = data.get("templates", [])
        response.context = data.get("context")
        if response.context and len(response.context) == 1:
            response.context = response.context[0]
        response.json = partial(self._parse_json, response)
        response.resolver_match = SimpleLazyObject(lambda: resolve(request["PATH_INFO"]))
        if response.cookies:
            self.cookies.update(response.cookies)
        return response


class Client(_ASGIClientMixin, django_test.Client):
    """django.test.Client's API; each request served by ragsite.asgi.application."""

    def request(self, **request):
        environ = self._base_environ(**request)
        scope, body = scope_for(environ, self.port)
        head = scope["method"] == "HEAD"

        async def exchange():
            exchange = Exchange(scope, body)
            exchange.start()
            return await read_all(exchange, head)

        data, stop = self._capture(request)
        try:
            with _test_transaction_kept():
                parent = getattr(SyncToAsync.threadlocal, "main_event_loop", None)
                if parent is not None and parent.is_running():
                    # Called through sync_to_async from an async test: serve on its loop.
                    response = async_to_sync(exchange)()
                else:
                    response = server_loop().run(exchange)
        finally:
            stop()
        return self._annotate(response, request, data)


class AsyncClient(_ASGIClientMixin, django_test.AsyncClient):
    """django.test.AsyncClient's API (follow= included); each request served by
    ragsite.asgi.application on the running loop."""

    async def request(self, **request):
        environ = self._base_environ(**request)
        scope, body = scope_for(environ, self.port)
        data, stop = self._capture(request)
        try:
            exchange = Exchange(scope, body)
            exchange.start()
            response = await read_until_streaming(exchange, scope["method"] == "HEAD")
        finally:
            stop()
        return self._annotate(response, request, data)


class _test_transaction_kept:
    """Django closes obsolete connections when a request starts and ends. The sync client
    serves the app's thread-sensitive calls on the test's thread, whose connection may hold a
    non-transactional test's atomic block: closing it would lose the test's data. Django's own
    test handlers make the same exception."""

    def __enter__(self):
        self.held = any(c.in_atomic_block for c in connections.all(initialized_only=True))
        if self.held:
            request_started.disconnect(close_old_connections)
            request_finished.disconnect(close_old_connections)

    def __exit__(self, *exc):
        if self.held:
            request_started.connect(close_old_connections)
            request_finished.connect(close_old_connections)


__all__ = ["AsyncClient", "Client", "close_open_exchanges", "served", "stop_server_loop"]
