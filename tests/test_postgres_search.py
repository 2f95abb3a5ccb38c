"""SEARCH_BACKEND=postgres through the whole app: the sync task and commands fill it, the chat reads
it with the asker's access, and an unreachable server fails searches (503) and syncs (recorded on
the rows) until `sync_index` repairs. A real PostgreSQL with pgvector (tests/pgvector_server.py)."""

import random
import string

import pytest
from asgiref.sync import sync_to_async
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.db import connection

from knowledge.access import ANONYMOUS, EVERYTHING
from knowledge.models import Document, IndexStatus
from knowledge.search import backends, build_backend
from knowledge.search.base import IndexChunk, SearchBackendError, SearchQuery
from knowledge.search.postgres import websearch_text
from ragsite.config import Config
from tests.admin_forms import add_document
from tests.asgi_client import AsyncClient
from tests.chat_helpers import SECRET_FACT, ask, build_kb, stream_events

pytestmark = pytest.mark.django_db(transaction=True)
QUESTION = "How many unused vacation days can I carry over?"


def _down_url() -> str:
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        return f"postgresql://postgres@127.0.0.1:{s.getsockname()[1]}/postgres"


@pytest.fixture
def pg_search(settings, pgvector_url):
    settings.SEARCH_BACKEND = "postgres"
    settings.SEARCH_DATABASE_URL = pgvector_url
    settings.SEARCH_TIMEOUT = 2.0
    call_command("search_index", "--drop", verbosity=0)
    call_command("search_index", "--create", verbosity=0)
    return settings


async def test_chat_answers_from_postgres_within_the_askers_access(pg_search, search):
    await sync_to_async(build_kb)()
    status, _, raw = await stream_events(AsyncClient(), ask(QUESTION))
    assert status == 200, raw[:500]
    assert "five unused vacation days" in raw.decode()
    assert SECRET_FACT not in raw.decode()
    assert "No results" in await sync_to_async(search)("salary bands")  # anonymous
    found = await sync_to_async(search)("parking permits")
    assert "[Parking]" in found and "**permits**" in found  # highlighted by ts_headline


async def test_index_down_answers_503_until_it_is_back(pg_search):
    await sync_to_async(build_kb)()
    good = pg_search.SEARCH_DATABASE_URL
    pg_search.SEARCH_DATABASE_URL = _down_url()
    await backends.close_all()  # the next request builds its backend on the new URL
    status, events, _ = await stream_events(AsyncClient(), ask(QUESTION))
    assert status == 503 and "unavailable" in str(events[0])
    ready = await AsyncClient().get("/readyz")
    assert ready.status_code == 503 and not ready.json()["checks"]["search"]["ok"]

    pg_search.SEARCH_DATABASE_URL = good
    await backends.close_all()
    status, _, raw = await stream_events(AsyncClient(), ask(QUESTION))
    assert status == 200 and "five unused vacation days" in raw.decode()


def test_saves_succeed_while_index_is_down_and_sync_index_repairs(
    pg_search, staff_client, run_worker, search, django_capture_on_commit_callbacks
):
    good = pg_search.SEARCH_DATABASE_URL
    pg_search.SEARCH_DATABASE_URL = _down_url()
    pg_search.SEARCH_TIMEOUT = 0.5  # each of the worker's attempts waits this long for a connection
    with django_capture_on_commit_callbacks(execute=True):
        response = add_document(staff_client, title="Down doc", body="Locker code is 5517.")
    assert response.status_code == 302  # saved
    run_worker()
    doc = Document.objects.get(title="Down doc")
    assert doc.index_status == IndexStatus.FAILED and "connection" in doc.index_error
    with pytest.raises(CommandError, match="search index is not reachable"):
        call_command("sync_index", verbosity=0)

    pg_search.SEARCH_DATABASE_URL = good
    call_command("sync_index", verbosity=0)
    doc.refresh_from_db()
    assert doc.index_status == IndexStatus.INDEXED
    assert "[Down doc]" in search("5517")


def test_sync_index_rebuild_fills_a_fresh_table(pg_search, search):
    build_kb()
    assert "[Parking]" in search("parking permits")
    call_command("sync_index", "--rebuild", verbosity=0)
    assert "[Parking]" in search("parking permits")
    Document.objects.filter(title="Parking").delete()  # its removal queued, not run
    call_command("sync_index", verbosity=0)
    assert "[Parking]" not in search("parking permits")


async def test_vectors_of_another_size_fail_without_retry(pg_search):
    index = build_backend()
    try:
        first = IndexChunk(1, 0, "T", "Dogs on Fridays.", "a.md", embedding=(1.0, 0.0, 0.0))
        await index.upsert_document(1, [first])
        other = IndexChunk(2, 0, "T", "Cats.", "b.md", embedding=(1.0, 0.0))
        with pytest.raises(SearchBackendError, match="rebuild") as failure:
            await index.upsert_document(2, [other])
        assert not failure.value.transient
        query = SearchQuery("dogs", EVERYTHING, vector=(1.0, 0.0), mode="hybrid")
        with pytest.raises(SearchBackendError) as failure:
            await index.search(query)
        assert not failure.value.transient
    finally:
        await index.close()


def test_user_text_reaches_postgres_as_words_only():
    words = websearch_text('pets -dogs "or" OR (x) AND y; DROP')
    assert words == "pets or dogs or x or and or y or drop"
    assert websearch_text("¿qué pasa?") == "qué or pasa"


def test_postgres_backend_needs_a_postgres_database(monkeypatch, tmp_path):
    monkeypatch.delenv("SEARCH_DATABASE_URL", raising=False)
    sqlite = Config(tmp_path).sqlite(tmp_path / "db.sqlite3")
    with pytest.raises(ImproperlyConfigured, match="SEARCH_DATABASE_URL"):
        Config(tmp_path).search_database_url(True, sqlite)
    monkeypatch.setenv("SEARCH_DATABASE_URL", "mysql://x/y")
    with pytest.raises(ImproperlyConfigured, match="SEARCH_DATABASE_URL"):
        Config(tmp_path).search_database_url(True, sqlite)


async def test_the_apps_own_postgres_database_by_default(settings):
    """Scale-out pass: no SEARCH_DATABASE_URL, so the table lives in the app's database (text
    search needs no extension)."""
    if connection.vendor != "postgresql":
        pytest.skip("the app's database is SQLite here; the scale-out pass runs this")
    settings.SEARCH_BACKEND = "postgres"
    settings.SEARCH_DATABASE_URL = ""
    index = build_backend()
    try:
        await index.drop_index()
        await index.create_index()
        await index.upsert_document(9, [IndexChunk(9, 0, "Bikes", "Bike racks: 40.", "b.md")])
        hits = await index.search(SearchQuery("bike racks", EVERYTHING))
        assert [(h.document_id, h.title) for h in hits] == [(9, "Bikes")]
        await index.drop_index()
    finally:
        await index.close()


async def test_restricted_documents_do_not_move_public_text_scores(pg_search):
    """ts_rank reads only the passage itself (no corpus-wide term statistics as BM25 has), so a
    restricted document sharing a rare word changes nothing an outsider can see."""
    index = build_backend()
    try:
        await index.upsert_document(1, [IndexChunk(1, 0, "Lockers", "Zyxwort lockers.", "a.md")])
        before = await index.search(SearchQuery("zyxwort", ANONYMOUS))
        secret = IndexChunk(2, 0, "HR", "Zyxwort zyxwort plan.", "b.md", groups=("g7",))
        await index.upsert_document(2, [secret])
        after = await index.search(SearchQuery("zyxwort", ANONYMOUS))
        assert [(h.document_id, h.score) for h in after] == [
            (h.document_id, h.score) for h in before
        ]
        assert len(await index.search(SearchQuery("zyxwort", EVERYTHING))) == 2
    finally:
        await index.close()


async def test_the_text_candidate_cap_keeps_the_best_and_the_readable(pg_search):
    """ts_rank reads at most SEARCH_TEXT_CANDIDATES matches: passages with every word of the
    question come first, and passages the asker may not read never take a place."""
    pg_search.SEARCH_TEXT_CANDIDATES = 5
    index = build_backend()
    try:
        for doc in range(1, 21):
            secret = IndexChunk(doc, 0, "Rota", f"Rota number {doc}.", "r.md", groups=("g7",))
            await index.upsert_document(doc, [secret])
        for doc in range(21, 31):
            await index.upsert_document(doc, [IndexChunk(doc, 0, "Rota", "Rota.", "p.md")])
        canteen = IndexChunk(99, 0, "Canteen", "Canteen rota for Fridays.", "c.md")
        await index.upsert_document(99, [canteen])
        hits = await index.search(SearchQuery("canteen rota", ANONYMOUS, top=3))
        assert hits[0].document_id == 99 and len(hits) == 3
        public = await index.search(SearchQuery("rota", ANONYMOUS, top=5))
        assert len(public) == 5 and all(h.document_id > 20 for h in public)
    finally:
        await index.close()


async def test_a_passage_and_its_vector_stay_in_one_row(pg_search):
    """A 384-dimension vector beside a passage's text is not moved out of line (TOAST), which
    made a scan over every vector read about ten pages per passage."""
    index = build_backend()
    try:
        rng = random.Random(7)
        for doc in range(1, 41):
            # About 1,000 characters of words that do not compress, as real passages' do not much.
            words = ["".join(rng.choices(string.ascii_lowercase, k=7)) for _ in range(125)]
            vector = tuple(rng.uniform(-0.1, 0.1) for _ in range(384))
            chunk = IndexChunk(doc, 0, "Title", " ".join(words), f"d{doc}.md", embedding=vector)
            await index.upsert_document(doc, [chunk])
        async with index._pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT coalesce(pg_total_relation_size(reltoastrelid), 0) FROM pg_class "
                "WHERE relname = 'ragsite_search_chunks'"
            )
            (toasted,) = await cursor.fetchone()
        assert toasted <= 16384  # an empty TOAST table and its index
    finally:
        await index.close()
