"""Search backends behind one async protocol (see base.py), chosen by SEARCH_BACKEND."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from django.conf import settings

from core.per_loop import PerLoop
from knowledge.search.base import SearchBackend


def build_backend() -> SearchBackend:
    if settings.SEARCH_BACKEND == "embedded":
        from knowledge.search.embedded import EmbeddedSearchBackend

        return EmbeddedSearchBackend(
            settings.SEARCH_INDEX_PATH, text_candidates=settings.SEARCH_TEXT_CANDIDATES
        )
    if settings.SEARCH_BACKEND == "postgres":
        from knowledge.search.postgres import PostgresSearchBackend
        from knowledge.search.postgres_url import search_conninfo

        return PostgresSearchBackend(
            search_conninfo(),
            pool_size=settings.SEARCH_POOL_MAX_SIZE,
            timeout=settings.SEARCH_TIMEOUT,
            text_candidates=settings.SEARCH_TEXT_CANDIDATES,
        )
    from knowledge.search.azure import AzureSearchBackend

    return AzureSearchBackend()


backends = PerLoop(lambda: build_backend())
get_backend = backends.get


@asynccontextmanager
async def backend() -> AsyncIterator[SearchBackend]:
    """A backend for one short-lived loop (tasks, management commands), closed afterwards."""
    instance = build_backend()
    try:
        yield instance
    finally:
        await instance.close()
