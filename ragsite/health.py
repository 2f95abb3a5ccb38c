"""Probes for load balancers and orchestrators.

/healthz: the process is alive (no I/O). /readyz: it can serve chats: the database, Redis (when
configured), the search index and the LLM settings, each checked with a short timeout, in
parallel, so a probe every few seconds costs milliseconds.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse

from core.clients import chat_model
from knowledge.search import get_backend

CHECK_TIMEOUT = 2.0


async def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def _database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    finally:
        if not connection.in_atomic_block:
            connection.close()  # hand it back to the pool; probes must not hold connections
    return connection.vendor


async def _redis() -> str:
    import redis.asyncio as redis  # only a scale-out deployment has Redis to ask

    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=CHECK_TIMEOUT)
    try:
        await client.ping()
    finally:
        await client.aclose()
    return "ok"


async def _search() -> str:
    backend = get_backend()
    await backend.ping()
    return backend.name


async def _llm() -> str:
    if settings.OPENAI_HOST == "local":
        return "offline answerer"
    return f"{settings.OPENAI_HOST}: {chat_model()}"


async def _run(name: str, check: Callable[[], Awaitable[str]]) -> tuple[str, dict[str, Any]]:
    started = time.perf_counter()
    try:
        detail = await asyncio.wait_for(check(), CHECK_TIMEOUT)
        result: dict[str, Any] = {"ok": True, "detail": detail}
    except Exception as exc:  # any failure is "not ready", described for the operator
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300] or "timeout"}
    result["ms"] = round((time.perf_counter() - started) * 1000, 1)
    return name, result


async def readyz(request: HttpRequest) -> JsonResponse:
    checks: dict[str, Callable[[], Awaitable[str]]] = {
        "database": sync_to_async(_database),
        "search": _search,
        "llm": _llm,
    }
    if settings.REDIS_URL:
        checks["redis"] = _redis
    results = dict(await asyncio.gather(*(_run(n, c) for n, c in checks.items())))
    ready = all(r["ok"] for r in results.values())
    return JsonResponse(
        {"status": "ready" if ready else "unavailable", "checks": results},
        status=200 if ready else 503,
    )
