"""The base every fake upstream is built on: an aiohttp server in a background thread, with a
log of the requests it received.

A new fake subclasses :class:`BackgroundServer` and implements ``build_app()``; each handler
records its request and notes how it ended::

    class FakeThing(BackgroundServer):
        thread_name = "fake-thing"

        def build_app(self) -> web.Application:
            app = web.Application()
            app.router.add_post("/things", self._things)
            return app

        async def _things(self, request: web.Request) -> web.StreamResponse:
            rec, body = await record_request(request, "things")
            self._log(rec)  # now in self.requests; wait_for_requests() wakes up
            # watch(): a client that goes away meanwhile is marked disconnected in the record.
            response = await self.watch(rec, self._answer(body))
            if not rec.disconnected:
                rec.status = response.status
                self._mark_finished(rec)
            return response

The server is then started from a test with ``start()`` / ``stop()`` or ``with FakeThing() as
server:``, and from the command line with ``serve_forever()``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import json
import threading
import time
from collections.abc import Awaitable
from typing import Any

from aiohttp import web

__all__ = ["BackgroundServer", "RecordedRequest", "record_request"]


@dataclasses.dataclass
class RecordedRequest:
    """One request as the fake saw it. ``headers`` has lower-cased names."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    json: Any
    time: float  # time.time() when the request arrived
    endpoint: str = ""  # "chat", "embeddings", "models"; for the search fake the operation name
    azure: bool = False
    stream: bool = False
    status: int | None = None
    behaviour: str = "ok"
    chunks_sent: int = 0  # content chunks written (streamed chat only)
    first_chunk_at: float | None = None  # time.time() when the first delta was written
    finished: bool = False  # the handler ended normally (the whole response was written)
    finished_at: float | None = None
    disconnected: bool = False  # the client went away before the response was finished
    disconnected_at: float | None = None
    dropped_by_server: bool = False  # the fake cut the connection on purpose (drop_connection)

    @property
    def api_key(self) -> str | None:
        return self.headers.get("api-key")

    @property
    def authorization(self) -> str | None:
        return self.headers.get("authorization")

    @property
    def bearer_token(self) -> str | None:
        auth = self.headers.get("authorization") or ""
        return auth[7:] if auth[:7].lower() == "bearer " else None


class BackgroundServer:
    """Runs an aiohttp application on 127.0.0.1 (a free port by default).

    In tests: ``start()`` runs it in a daemon thread with its own event loop and returns the base
    URL; ``stop()`` shuts it down; it is also a context manager. From the command line:
    ``serve_forever()`` runs it in the main thread (on uvloop when importable).
    Handlers are cancelled when their client disconnects (aiohttp's ``handler_cancellation``), which
    is how the fakes notice a client that went away while they were sleeping.
    """

    thread_name = "fake-server"

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, log_limit: int | None = None):
        self.host = host
        self.port = port
        self.base_url: str | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._cond = threading.Condition()
        self.requests: list[RecordedRequest] | collections.deque[RecordedRequest] = (
            [] if log_limit is None else collections.deque(maxlen=log_limit)
        )

    # -- to override ------------------------------------------------------------------------------

    def build_app(self) -> web.Application:
        raise NotImplementedError

    # -- lifecycle --------------------------------------------------------------------------------

    async def _astart(self) -> str:
        app = self.build_app()
        self._runner = web.AppRunner(
            app,
            handle_signals=False,
            access_log=None,
            handler_cancellation=True,
            shutdown_timeout=0.5,
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, backlog=2048, reuse_address=True)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self.base_url = f"http://{self.host}:{self.port}"
        return self.base_url

    def start(self) -> str:
        """Start serving in a background thread; returns the base URL (``http://127.0.0.1:PORT``)."""
        if self._thread is not None:
            assert self.base_url is not None
            return self.base_url
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            try:
                loop.run_until_complete(self._astart())
            except BaseException as exc:  # reported to start()'s caller
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                with contextlib.suppress(Exception):
                    loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        self._thread = threading.Thread(target=run, name=self.thread_name, daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError(f"{type(self).__name__} did not start within 10 s")
        if failure:
            self._thread = None
            raise failure[0]
        assert self.base_url is not None
        return self.base_url

    def stop(self) -> None:
        """Close every connection (hung handlers are cancelled) and stop the thread."""
        thread, loop, runner = self._thread, self._loop, self._runner
        if thread is None or loop is None:
            return
        if runner is not None:
            fut = asyncio.run_coroutine_threadsafe(runner.cleanup(), loop)
            with contextlib.suppress(Exception):
                fut.result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        self._thread = None
        self._loop = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def serve_forever(self) -> None:
        """Serve in the current thread until interrupted (the command-line entry point)."""

        async def main() -> None:
            url = await self._astart()
            print(f"{type(self).__name__} listening on {url}", flush=True)
            try:
                await asyncio.Event().wait()
            finally:
                assert self._runner is not None
                await self._runner.cleanup()

        try:
            import uvloop
        except ImportError:
            uvloop = None
        with contextlib.suppress(KeyboardInterrupt):
            if uvloop is not None:
                uvloop.run(main())
            else:
                asyncio.run(main())

    # -- request log ----------------------------------------------------------------------------
    # For subclasses' handlers: _log() a new record, then _mark_finished() or, through watch(),
    # _mark_disconnected(); tests read self.requests and wait on them.

    def _log(self, rec: RecordedRequest) -> RecordedRequest:
        with self._cond:
            self.requests.append(rec)
            self._cond.notify_all()
        return rec

    def _mark_finished(self, rec: RecordedRequest) -> None:
        with self._cond:
            rec.finished = True
            rec.finished_at = time.time()
            self._cond.notify_all()

    def _mark_disconnected(self, rec: RecordedRequest) -> None:
        with self._cond:
            if not rec.dropped_by_server and not rec.finished:
                rec.disconnected = True
                rec.disconnected_at = time.time()
            self._cond.notify_all()

    async def watch(
        self, rec: RecordedRequest, response: Awaitable[web.StreamResponse]
    ) -> web.StreamResponse:
        """Await a handler's response, noting in ``rec`` a client that went away meanwhile."""
        try:
            return await response
        except asyncio.CancelledError:
            self._mark_disconnected(rec)
            raise
        except ConnectionResetError:  # a write found the client gone
            self._mark_disconnected(rec)
            return web.Response(status=499)  # aiohttp drops it quietly (connection is closed)

    def clear_requests(self) -> None:
        with self._cond:
            self.requests.clear()

    def wait_for_requests(
        self, n: int = 1, timeout: float = 2.0, endpoint: str | None = None
    ) -> list[RecordedRequest]:
        """Block until at least ``n`` requests (of ``endpoint``, if given) were received."""

        def matching() -> list[RecordedRequest]:
            return [r for r in list(self.requests) if endpoint is None or r.endpoint == endpoint]

        with self._cond:
            if not self._cond.wait_for(lambda: len(matching()) >= n, timeout):
                raise TimeoutError(f"expected {n} requests, got {len(matching())}")
            return matching()

    def wait_for_disconnect(
        self, timeout: float = 1.0, request: RecordedRequest | None = None
    ) -> RecordedRequest:
        """Block until a client went away mid-response; returns that request's record.

        Without ``request``: the first recorded request that is marked ``disconnected``.
        Raises ``TimeoutError`` if none within ``timeout`` seconds. From an async test, prefer
        ``await wait_for_disconnect_async(...)`` (this one blocks the calling event loop).
        """

        def found() -> RecordedRequest | None:
            if request is not None:
                return request if request.disconnected else None
            return next((r for r in list(self.requests) if r.disconnected), None)

        with self._cond:
            if not self._cond.wait_for(lambda: found() is not None, timeout):
                raise TimeoutError("no client disconnect seen")
            rec = found()
            assert rec is not None
            return rec

    async def wait_for_disconnect_async(
        self,
        timeout: float = 1.0,  # noqa: ASYNC109 (mirrors the blocking version)
        request: RecordedRequest | None = None,
    ) -> RecordedRequest:
        """The same as :meth:`wait_for_disconnect`, without blocking the caller's event loop."""
        deadline = time.monotonic() + timeout
        while True:
            if request is not None and request.disconnected:
                return request
            if request is None:
                rec = next((r for r in list(self.requests) if r.disconnected), None)
                if rec is not None:
                    return rec
            if time.monotonic() >= deadline:
                raise TimeoutError("no client disconnect seen")
            await asyncio.sleep(0.01)

    async def wait_for_requests_async(
        self,
        n: int = 1,
        timeout: float = 2.0,  # noqa: ASYNC109
        endpoint: str | None = None,
    ) -> list[RecordedRequest]:
        deadline = time.monotonic() + timeout
        while True:
            got = [r for r in list(self.requests) if endpoint is None or r.endpoint == endpoint]
            if len(got) >= n:
                return got
            if time.monotonic() >= deadline:
                raise TimeoutError(f"expected {n} requests, got {len(got)}")
            await asyncio.sleep(0.01)


async def record_request(
    request: web.Request, endpoint: str, *, azure: bool = False
) -> tuple[RecordedRequest, Any]:
    """Read the request's body and make its record; returns ``(record, body)``, the body parsed
    as JSON when it is JSON, else as text (None when empty). Log it with ``server._log(rec)``."""
    raw = await request.read()
    body: Any = None
    if raw:
        try:
            body = json.loads(raw)
        except ValueError:
            body = raw.decode("utf-8", "replace")
    rec = RecordedRequest(
        method=request.method,
        path=request.path,
        query=dict(request.query),
        headers={k.lower(): v for k, v in request.headers.items()},
        json=body,
        time=time.time(),
        endpoint=endpoint,
        azure=azure,
    )
    return rec, body
