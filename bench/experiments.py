"""Prototypes of the fixes the profile points at, applied to ragsite *only inside the benchmark*.

    BENCH_PATCHES=middleware,sse,db uvicorn bench.experiments:application

This is not app code and not a proposed implementation: each patch is the smallest monkeypatch
that removes one measured cost, so `python -m bench.run --experiments` can put a number on each
fix before anyone writes it properly. The app itself is untouched (ragsite.asgi is imported
as is, after the patches).

* ``middleware``  Django's MiddlewareMixin.__acall__ runs every process_request/process_response
  through sync_to_async (a thread hop each: ~12 per request with ragsite's stack). Patched to
  call them inline on the event loop; a session that must be saved still hops to a thread.
* ``sse``         the openai SDK builds pydantic objects per streamed chunk (construct_type) over
  httpx/anyio. Patched: OpenAIAnswerer.start_answer reads the same SSE stream with one aiohttp
  session per loop and json.loads per `data:` line. Errors are mapped crudely (prototype).
* ``db``          each chat's two sync_to_async DB calls run in the request's own thread (one
  per in-flight request) and close the SQLite connection afterwards, so every call opens a new
  connection. Patched: one long-lived DB thread with a persistent connection.
* ``coalesce``    one ASGI send (one socket write) per delta. Patched: the NDJSON body merges
  the deltas already waiting into one write (no added delay: it only drains what is ready).
* ``signals``     request_started/request_finished's sync receivers (close_old_connections and
  friends) cost two more thread hops per request. Patched out (the DB thread owns connections).

Tried and dropped: sys.setswitchinterval(0.0005) (fewer GIL convoy waits) made it worse.
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ragsite.settings")
PATCHES = {p.strip() for p in os.environ.get("BENCH_PATCHES", "").split(",") if p.strip()}


def patch_middleware() -> None:
    from asgiref.sync import sync_to_async
    from django.contrib.sessions.middleware import SessionMiddleware
    from django.utils.deprecation import MiddlewareMixin

    def must_hop(mw, request) -> bool:
        session = getattr(request, "session", None)
        return isinstance(mw, SessionMiddleware) and session is not None and session.modified

    async def __acall__(self, request):
        response = None
        if hasattr(self, "process_request"):
            response = self.process_request(request)
        response = response or await self.get_response(request)
        if hasattr(self, "process_response"):
            if must_hop(self, request):
                response = await sync_to_async(self.process_response)(request, response)
            else:
                response = self.process_response(request, response)
        return response

    MiddlewareMixin.__acall__ = __acall__

    # process_view (CSRF's) is adapted by the handler the same way: one more hop per request.
    from inspect import iscoroutinefunction

    from django.core.handlers.base import BaseHandler

    adapt = BaseHandler.adapt_method_mode

    def adapt_method_mode(self, is_async, method, *args, **kwargs):
        if is_async and getattr(method, "__name__", "") == "process_view":
            if not iscoroutinefunction(method):

                async def inline(*a, **kw):
                    return method(*a, **kw)

                return inline
        return adapt(self, is_async, method, *args, **kwargs)

    BaseHandler.adapt_method_mode = adapt_method_mode


def patch_sse() -> None:
    import json

    import aiohttp
    from django.conf import settings

    from chat.llm import openai_answerer as oa
    from chat.llm.base import AnswerChunk, AnswerError
    from ragsite.per_loop import PerLoop

    sessions = PerLoop(
        lambda: aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0),
            timeout=aiohttp.ClientTimeout(
                sock_connect=settings.LLM_CONNECT_TIMEOUT, sock_read=settings.LLM_READ_TIMEOUT
            ),
        )
    )

    async def start_answer(self, history, question, passages, temperature):
        body = {
            "model": self.model,
            "messages": self.messages(history, question, passages),
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if temperature is not None:
            body["temperature"] = temperature
        headers = {"Authorization": f"Bearer {settings.OPENAI_API_KEY or 'not-needed'}"}
        url = settings.OPENAI_BASE_URL.rstrip("/") + "/chat/completions"
        try:
            resp = await sessions.get().post(url, json=body, headers=headers)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise AnswerError("The language model could not be reached.", 502) from exc
        if resp.status != 200:
            resp.release()
            raise AnswerError("The language model failed to answer.", 502)
        return relay(resp)

    async def relay(resp):
        try:
            async for line in resp.content:
                if not line.startswith(b"data: {"):
                    continue
                chunk = json.loads(line[6:])
                usage = chunk.get("usage")
                usage = oa._usage_dict(usage) if usage else None
                choices = chunk.get("choices")
                if not choices:
                    if usage:
                        yield AnswerChunk(usage=usage)
                    continue
                text = (choices[0].get("delta") or {}).get("content")
                if text:
                    yield AnswerChunk(delta=text, usage=usage)
                elif usage or choices[0].get("finish_reason"):
                    yield AnswerChunk(usage=usage, finish_reason=choices[0].get("finish_reason"))
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise AnswerError("The answer stream was interrupted.", 502) from exc
        finally:
            resp.close()

    def usage_dict(u: dict) -> dict:
        keys = ("prompt_tokens", "completion_tokens", "total_tokens")
        return {k: u.get(k) for k in keys}

    oa._usage_dict = usage_dict
    oa.OpenAIAnswerer.start_answer = start_answer


def patch_db() -> None:
    from concurrent.futures import ThreadPoolExecutor

    from asgiref.sync import sync_to_async

    from chat import pipeline

    db_thread = ThreadPoolExecutor(1, thread_name_prefix="db")

    def on_db_thread(fn, **_ignored):
        return sync_to_async(fn, thread_sensitive=False, executor=db_thread)

    pipeline.sync_to_async = on_db_thread
    # The one DB thread keeps its connection (the app closes it after every call).
    for name in ("_release_db", "release_db"):
        if hasattr(pipeline, name):
            setattr(pipeline, name, lambda: None)


def patch_coalesce() -> None:
    from django.views.decorators.csrf import csrf_exempt

    from chat import api

    original = api.chat_stream

    async def chat_stream(request):
        import asyncio

        response = await original(request)
        if not getattr(response, "streaming", False) or not response.is_async:
            return response
        source = response.streaming_content

        async def merged():
            queue: asyncio.Queue = asyncio.Queue()
            done = object()

            async def pump():
                try:
                    async for part in source:
                        queue.put_nowait(part)
                finally:
                    queue.put_nowait(done)

            task = asyncio.create_task(pump())
            try:
                while True:
                    part = await queue.get()
                    if part is done:
                        return
                    parts = [part]
                    while not queue.empty():
                        more = queue.get_nowait()
                        if more is done:
                            yield b"".join(parts)
                            return
                        parts.append(more)
                    yield b"".join(parts)
            finally:
                task.cancel()

        response.streaming_content = merged()
        return response

    api.chat_stream = csrf_exempt(chat_stream)  # before chat.urls is first imported


def patch_signals() -> None:
    """request_started/request_finished have sync receivers, so Django runs them through
    sync_to_async: two more hops per request. With all DB work on the one DB thread they have
    nothing to close in the request's thread; reset_urlconf is cheap and runs inline."""
    from django.core import signals
    from django.core.cache import close_caches
    from django.core.handlers.base import reset_urlconf
    from django.db import close_old_connections, reset_queries

    signals.request_started.disconnect(close_old_connections)
    signals.request_started.disconnect(reset_queries)
    signals.request_finished.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_caches)
    signals.request_finished.disconnect(reset_urlconf)

    async def reset_urlconf_inline(sender, **kwargs):
        reset_urlconf(sender, **kwargs)

    signals.request_finished.connect(reset_urlconf_inline, weak=False)


def _apply() -> None:
    import django

    django.setup()
    unknown = PATCHES - {"middleware", "sse", "db", "coalesce", "signals"}
    if unknown:
        raise SystemExit(f"BENCH_PATCHES: unknown patch(es) {sorted(unknown)}")
    if "middleware" in PATCHES:
        patch_middleware()
    if "sse" in PATCHES:
        patch_sse()
    if "db" in PATCHES:
        patch_db()
    if "coalesce" in PATCHES:
        patch_coalesce()
    if "signals" in PATCHES:
        patch_signals()


_apply()

from ragsite.asgi import application  # noqa: E402

__all__ = ["application"]
