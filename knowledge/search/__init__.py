"""Search backends behind one async protocol (see base.py), chosen by SEARCH_BACKEND."""

import asyncio
import weakref
from contextlib import asynccontextmanager

from django.conf import settings

from knowledge.search.base import SearchBackend

_backends: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def build_backend() -> SearchBackend:
    if settings.SEARCH_BACKEND == "embedded":
        from knowledge.search.embedded import EmbeddedSearchBackend

        return EmbeddedSearchBackend(settings.SEARCH_INDEX_PATH)
    raise NotImplementedError(f"SEARCH_BACKEND={settings.SEARCH_BACKEND} is not available yet")


def get_backend() -> SearchBackend:
    """The backend for the running event loop, built once and reused.

    Async network clients are bound to the loop that created them, so a process that runs one loop
    (the web server) builds exactly one; short-lived loops (a task, a command) use `backend()`.
    """
    loop = asyncio.get_running_loop()
    if loop not in _backends:
        _backends[loop] = build_backend()
    return _backends[loop]


async def close_backends() -> None:
    backends = list(_backends.values())
    _backends.clear()
    for backend in backends:
        await backend.close()


@asynccontextmanager
async def backend():
    """A backend for one short-lived loop (tasks, management commands), closed afterwards."""
    instance = build_backend()
    try:
        yield instance
    finally:
        await instance.close()
