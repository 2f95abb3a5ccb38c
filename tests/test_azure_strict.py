"""SEARCH_BACKEND=azure against a fake as strict as the service: writes visible to queries only
after a delay (near-real-time), its request-size limit, semantic reranker scores on the service's
0-4 scale, Retry-After on throttling with the SDK's retries on, and only the api-version the SDK
sends."""

import pytest
from azure.core.credentials import AzureKeyCredential
from azure.core.exceptions import HttpResponseError
from azure.search.documents.aio import SearchClient

from knowledge.access import EVERYTHING
from knowledge.indexing import Indexer
from knowledge.models import Document
from knowledge.search import azure as azure_backend
from knowledge.search import build_backend
from knowledge.search.base import SearchQuery
from tests.fakes.azure_search_server import MAX_REQUEST_BYTES
from tests.test_search_contract import chunk

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def strict_azure(settings, fake_search_factory):
    """The fake with its defaults (writes visible after 0.3 s), SDK retries on as in production."""
    service = fake_search_factory()
    settings.SEARCH_BACKEND = "azure"
    settings.AZURE_SEARCH_ENDPOINT = service.endpoint
    settings.AZURE_SEARCH_KEY = service.api_key
    settings.OPENAI_EMBEDDING_DIMENSIONS = 4
    with Indexer() as indexer:
        indexer.call(indexer.backend.create_index)
    return service


def _visible_chunks(service, settings, document_id):
    service.settle()  # every write so far is visible now
    stored = service.visible_documents(settings.AZURE_SEARCH_INDEX)
    return sorted(k for k, d in stored.items() if d["document_id"] == str(document_id))


def test_unpublish_right_after_publish_leaves_nothing_searchable(strict_azure, settings):
    """The unpublish runs before the service shows the new chunks to any search: they must be
    deleted by key, or the unpublished text stays searchable for good."""
    doc = Document.objects.create(title="Merger", body="The merger closes on 3 May. " * 3)
    with Indexer() as indexer:
        indexer.sync(doc.pk)
        doc.published = False
        doc.save()
        assert indexer.sync(doc.pk) == "removed (unpublished)"
    assert _visible_chunks(strict_azure, settings, doc.pk) == []


def test_edit_to_fewer_chunks_right_after_publish_leaves_no_stale_chunk(strict_azure, settings):
    long_body = "\n\n".join(
        f"Section {i}. " + f"Topic {i} is explained here. " * 60 for i in range(4)
    )
    doc = Document.objects.create(title="Guide", body=long_body)
    with Indexer() as indexer:
        assert indexer.sync(doc.pk).startswith("indexed (")
        assert doc.chunks.count() > 1
        doc.body = "Section 0. A single short paragraph now."
        doc.save()
        assert indexer.sync(doc.pk) == "indexed (1 chunks)"
    assert _visible_chunks(strict_azure, settings, doc.pk) == [f"doc-{doc.pk}-0"]


def test_deleted_rows_chunks_go_once_visible(strict_azure, settings):
    """A deleted row leaves no chunk count behind: its chunks are found by searching, which
    works once the service shows them (sync_index's orphan sweep repeats it)."""
    doc = Document.objects.create(title="Old memo", body="The old memo text.")
    with Indexer() as indexer:
        indexer.sync(doc.pk)
        strict_azure.settle()
        pk = doc.pk
        doc.delete()
        assert indexer.sync(pk) == "removed (deleted)"
    assert _visible_chunks(strict_azure, settings, pk) == []


async def test_a_document_larger_than_one_request_still_indexes(
    settings, fake_search_factory, monkeypatch
):
    """More chunks than one request may carry, with AZURE_SEARCH_BATCH_SIZE at 1000: batches
    are cut by size too, since the SDK crashes splitting a batch after the service's 413. The
    limits are scaled down from the service's 16 MB (and the backend's margin under it) to
    keep the test fast."""
    assert azure_backend.MAX_REQUEST_BYTES < MAX_REQUEST_BYTES  # the service's 16 MB
    service = fake_search_factory(visibility_delay=0, max_request_bytes=MAX_REQUEST_BYTES // 16)
    monkeypatch.setattr(azure_backend, "MAX_REQUEST_BYTES", azure_backend.MAX_REQUEST_BYTES // 16)
    settings.SEARCH_BACKEND = "azure"
    settings.AZURE_SEARCH_ENDPOINT = service.endpoint
    settings.AZURE_SEARCH_KEY = service.api_key
    settings.AZURE_SEARCH_BATCH_SIZE = 1000
    settings.OPENAI_EMBEDDING_DIMENSIONS = dims = 256
    backend = build_backend()
    try:
        await backend.create_index()
        text = "The big manual goes on and on about its subject. " * 60  # 3 KB, and a vector
        vector = tuple(-1.2345678901234567e-05 * (i + 1) for i in range(dims))
        chunks = [chunk(9, i, f"Part {i}. {text}", vector=vector) for i in range(300)]
        await backend.upsert_document(9, chunks)
    finally:
        await backend.close()
    uploads = [r for r in service.requests if r.endpoint == "index"]
    assert len(uploads) > 1 and all(r.status == 200 for r in uploads)
    assert len(service.documents(settings.AZURE_SEARCH_INDEX)) == 300


@pytest.fixture
async def semantic_backend(settings, fake_search_factory):
    service = fake_search_factory(visibility_delay=0)  # the ranking is under test, not the lag
    settings.SEARCH_BACKEND = "azure"
    settings.AZURE_SEARCH_ENDPOINT = service.endpoint
    settings.AZURE_SEARCH_KEY = service.api_key
    settings.AZURE_SEARCH_SEMANTIC_RANKER = True
    backend = build_backend()
    await backend.create_index()
    await backend.upsert_document(1, [chunk(1, 0, "Staff parking is free on Sundays.")])
    await backend.upsert_document(2, [chunk(2, 0, "On Sundays the canteen closes at noon.")])
    backend.fake = service
    yield backend
    await backend.close()


async def test_weak_semantic_matches_fall_below_the_minimum_reranker_score(semantic_backend):
    query = SearchQuery(text="staff parking permit sundays", access=EVERYTHING)
    hits = await semantic_backend.search(query)
    # Both contain a query word; the ranker gives the canteen 1 of 4 (below 1.5).
    assert [(h.document_id, h.score) for h in hits] == [(1, 3.0)]
    body = semantic_backend.fake.requests[-1].json
    assert body["queryType"] == "semantic" and body["semanticConfiguration"] == "default"


async def test_minimum_reranker_score_is_a_setting(semantic_backend, settings):
    settings.AZURE_SEARCH_MIN_RERANKER_SCORE = 0
    hits = await semantic_backend.search(
        SearchQuery(text="staff parking permit sundays", access=EVERYTHING)
    )
    assert [(h.document_id, h.score) for h in hits] == [(1, 3.0), (2, 1.0)]


async def test_sdk_retries_ride_out_throttling_after_retry_after(settings, fake_search_factory):
    """AZURE_SEARCH_RETRIES as shipped (3): a 503 and a 429, each with Retry-After, are waited
    out by the SDK and neither the write nor the query fails."""
    service = fake_search_factory(visibility_delay=0, retry_after=0.2)
    settings.SEARCH_BACKEND = "azure"
    settings.AZURE_SEARCH_ENDPOINT = service.endpoint
    settings.AZURE_SEARCH_KEY = service.api_key
    assert settings.AZURE_SEARCH_RETRIES >= 2
    backend = build_backend()
    try:
        await backend.create_index()
        service.fail_next(429, operation="index")
        await backend.upsert_document(3, [chunk(3, 0, "Bicycle racks are behind building C.")])
        service.fail_next(503, operation="search")
        hits = await backend.search(SearchQuery(text="bicycle racks", access=EVERYTHING))
    finally:
        await backend.close()
    assert [h.document_id for h in hits] == [3]
    for operation, status in (("index", 429), ("search", 503)):
        refused, retried = [r for r in service.requests if r.endpoint == operation][-2:]
        assert (refused.status, retried.status) == (status, 200)
        assert retried.time - refused.time >= 0.2  # the SDK waited as told


async def test_only_the_sdks_api_version_is_accepted(strict_azure, settings):
    credential = AzureKeyCredential(strict_azure.api_key)
    index = settings.AZURE_SEARCH_INDEX
    async with SearchClient(strict_azure.endpoint, index, credential, retry_total=0) as client:
        assert await client.get_document_count() == 0
    other = SearchClient(
        strict_azure.endpoint, index, credential, api_version="2024-07-01", retry_total=0
    )
    async with other:
        with pytest.raises(HttpResponseError) as refused:
            await other.get_document_count()
    assert refused.value.status_code == 400
    assert "api-version" in refused.value.message
