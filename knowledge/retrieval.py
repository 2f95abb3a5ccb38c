"""Retrieval as users get it: the index's own access filter first, then the document rows.

The index lags the database (a sync runs after the commit, or not at all while the worker is
stopped), so a hit is kept only if its document's current row lets the caller read it. That makes a
revocation, an unpublish or a delete take effect on the next question whatever the index's state.
Titles, citations and collections come from the row too, so a renamed document does not show its
old name. Every channel and `manage.py search` go through here.
"""

from dataclasses import replace

from asgiref.sync import sync_to_async

from core.db import release_db
from knowledge.access import ReadableRow, readable_documents
from knowledge.anchors import cite
from knowledge.search.base import SearchHit, SearchQuery

# The index's own filter already leaves out what the caller may not read, so the rows drop a hit
# only while the index lags behind them: ask for exactly `top` first, and only when the rows
# dropped some, once more for several times as many.
WIDEN = 4
MAX_FETCH = 200


def fetch_size(query: SearchQuery, attempt: int = 0) -> int:
    return min(MAX_FETCH, query.top * WIDEN if attempt else query.top)


def keep_readable(query: SearchQuery, hits: list[SearchHit], rows: dict[int, ReadableRow]):
    """The hits whose rows allow them (and still match the collection asked for), with the
    row's title and citation, at most `query.top`."""
    kept = []
    for hit in hits:
        row = rows.get(hit.document_id)
        if row is None:
            continue
        if query.collection and row.collection != query.collection:
            continue
        citation = cite(row.citation, hit.label)
        kept.append(replace(hit, title=row.title, citation=citation, collection=row.collection))
        if len(kept) == query.top:
            break
    return kept


def _rows(query: SearchQuery, hits: list[SearchHit]) -> dict[int, ReadableRow]:
    try:
        return readable_documents(query.access, {hit.document_id for hit in hits})
    finally:
        release_db()


def search_sync(query: SearchQuery, run_search) -> list[SearchHit]:
    """search() for sync callers (management commands): `run_search(query)` queries the index,
    and the rows are read on this thread."""
    kept: list[SearchHit] = []
    for attempt in (0, 1):
        fetch = fetch_size(query, attempt)
        hits = run_search(replace(query, top=fetch))
        rows = readable_documents(query.access, {hit.document_id for hit in hits})
        kept = keep_readable(query, hits, rows)
        if len(kept) == query.top or len(hits) < fetch or fetch == MAX_FETCH:
            break
    return kept


async def _search_then(backend, query: SearchQuery, then):
    """The backend's hits and then(hits). A backend with threads of its own (the embedded one)
    runs both in one of them; for the others `then` is one executor call."""
    combined = getattr(backend, "search_then", None)
    if combined is not None:
        return await combined(query, then)
    hits = await backend.search(query)
    return hits, await sync_to_async(then, thread_sensitive=False)(hits)


async def search(query: SearchQuery, backend=None) -> list[SearchHit]:
    """The top hits the caller may read now: one index query (rarely two) and one row look-up."""
    if backend is None:
        from knowledge.search import get_backend

        backend = get_backend()
    rows: dict[int, ReadableRow] = {}
    checked: set[int] = set()
    kept: list[SearchHit] = []

    def rows_of(hits: list[SearchHit]) -> dict[int, ReadableRow]:
        unchecked = [h for h in hits if h.document_id not in checked]
        return _rows(query, unchecked) if unchecked else {}

    for attempt in (0, 1):
        fetch = fetch_size(query, attempt)
        hits, found = await _search_then(backend, replace(query, top=fetch), rows_of)
        if not hits:
            return []
        rows |= found
        checked |= {h.document_id for h in hits}
        kept = keep_readable(query, hits, rows)
        if len(kept) == query.top or len(hits) < fetch or fetch == MAX_FETCH:
            break
    return kept
