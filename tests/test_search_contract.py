"""One contract, every search backend: the embedded SQLite FTS5 index and Azure AI Search (the real
azure-search-documents SDK over HTTP to the fake service in tests/fakes/)."""

import pytest

from knowledge.access import ANONYMOUS, EVERYTHING, PUBLIC_GROUP, AccessFilter
from knowledge.search import build_backend
from knowledge.search.base import IndexChunk, SearchBackendError, SearchQuery

DIMS = 4


def chunk(doc, ordinal, text, groups=(PUBLIC_GROUP,), collection="handbook", vector=None):
    return IndexChunk(
        document_id=doc,
        ordinal=ordinal,
        title=f"Doc {doc}",
        text=text,
        citation=f"doc{doc}.md",
        collection=collection,
        groups=tuple(groups),
        embedding=vector,
    )


def use_fake_azure(settings, fake_search_factory):
    # Writes visible at once: the contract is what a backend stores and finds. The service's
    # near-real-time lag, and what the backend does about it, is tested in test_azure_strict.py.
    service = fake_search_factory(visibility_delay=0)
    settings.SEARCH_BACKEND = "azure"
    settings.AZURE_SEARCH_ENDPOINT = service.endpoint
    settings.AZURE_SEARCH_KEY = service.api_key
    settings.AZURE_SEARCH_RETRIES = 0
    settings.OPENAI_EMBEDDING_DIMENSIONS = DIMS
    return service


@pytest.fixture(params=["embedded", "azure"])
async def backend(request, settings, fake_search_factory):
    service = use_fake_azure(settings, fake_search_factory) if request.param == "azure" else None
    instance = build_backend()
    await instance.create_index()
    instance.fake = service
    yield instance
    await instance.close()


@pytest.fixture
async def azure_backend(settings, fake_search_factory):
    service = use_fake_azure(settings, fake_search_factory)
    instance = build_backend()
    await instance.create_index()
    instance.fake = service
    yield instance
    await instance.close()


async def _ids(backend, text, access=EVERYTHING, **kwargs):
    hits = await backend.search(SearchQuery(text=text, access=access, **kwargs))
    return [(h.document_id, h.ordinal) for h in hits]


async def test_upsert_search_update_delete(backend):
    await backend.upsert_document(
        1,
        [
            chunk(1, 0, "The blue kiosk is near the lifts."),
            chunk(1, 1, "Lockers cost five euros."),
        ],
    )
    await backend.upsert_document(2, [chunk(2, 0, "Parking is free on Sundays.")])
    assert await _ids(backend, "blue kiosk") == [(1, 0)]
    hit = (await backend.search(SearchQuery(text="lockers", access=EVERYTHING)))[0]
    assert (hit.citation, hit.title, hit.collection) == ("doc1.md", "Doc 1", "handbook")
    assert hit.text == "Lockers cost five euros." and hit.score > 0
    assert await backend.document_ids() == {1, 2}

    # an update replaces every chunk: old text gone, stale ordinals gone
    await backend.upsert_document(1, [chunk(1, 0, "The green turnstile replaced the kiosk.")])
    assert await _ids(backend, "lockers") == []
    assert await _ids(backend, "green turnstile") == [(1, 0)]

    await backend.delete_document(1)
    assert await _ids(backend, "turnstile") == []
    assert await backend.document_ids() == {2}
    await backend.delete_document(1)  # deleting twice is fine


async def test_access_and_collection_filters(backend):
    await backend.upsert_document(1, [chunk(1, 0, "Holiday rota for everyone.")])
    await backend.upsert_document(
        2, [chunk(2, 0, "Holiday rota for HR only.", groups=["g1"], collection="hr")]
    )
    await backend.upsert_document(
        3, [chunk(3, 0, "Holiday rota for HR and Engineering.", groups=["g1", "g2"])]
    )
    assert sorted(await _ids(backend, "holiday rota")) == [(1, 0), (2, 0), (3, 0)]
    assert await _ids(backend, "holiday rota", ANONYMOUS) == [(1, 0)]
    hr = AccessFilter(groups=frozenset({"g1"}))
    assert sorted(await _ids(backend, "holiday rota", hr)) == [(1, 0), (2, 0), (3, 0)]
    eng = AccessFilter(groups=frozenset({"g2"}))
    assert sorted(await _ids(backend, "holiday rota", eng)) == [(1, 0), (3, 0)]
    assert await _ids(backend, "holiday rota", AccessFilter(public=False)) == []
    assert await _ids(backend, "holiday rota", hr, collection="hr") == [(2, 0)]
    assert await _ids(backend, "holiday rota", eng, collection="hr") == []
    assert "g1" in backend.filter_expression(SearchQuery(text="x", access=hr))


async def test_top_limits_results(backend):
    for doc in range(1, 8):
        await backend.upsert_document(doc, [chunk(doc, 0, f"Canteen menu number {doc}.")])
    assert len(await _ids(backend, "canteen menu", top=3)) == 3


async def test_vector_and_hybrid_rank_by_stored_vectors(backend):
    # The passage we want shares no word with the question: only its vector can find it.
    await backend.upsert_document(
        1, [chunk(1, 0, "Staff may bring dogs on Fridays.", vector=(1.0, 0.0, 0.0, 0.0))]
    )
    await backend.upsert_document(
        2, [chunk(2, 0, "Pets policy question answered elsewhere.", vector=(0.0, 1.0, 0.0, 0.0))]
    )
    await backend.upsert_document(
        3,
        [chunk(3, 0, "Secret pets rule.", groups=["g9"], vector=(0.99, 0.01, 0.0, 0.0))],
    )
    question = "pets policy"
    vector = (0.9, 0.1, 0.0, 0.0)
    assert await _ids(backend, question, ANONYMOUS, top=1) == [(2, 0)]  # text alone misses it
    ranked = await _ids(backend, question, ANONYMOUS, vector=vector, mode="vectors", top=2)
    assert ranked == [(1, 0), (2, 0)]  # the restricted, even closer vector is filtered out
    hybrid = await _ids(backend, question, ANONYMOUS, vector=vector, mode="hybrid", top=2)
    assert set(hybrid) == {(1, 0), (2, 0)}
    staff = await _ids(backend, question, EVERYTHING, vector=vector, mode="vectors", top=1)
    assert staff == [(3, 0)]


async def test_drop_and_recreate_empties_the_index(backend):
    await backend.upsert_document(1, [chunk(1, 0, "Fire drill on Tuesday.")])
    await backend.drop_index()
    await backend.create_index()
    assert await _ids(backend, "fire drill") == []


async def test_azure_partial_failure_fails_the_upsert(azure_backend):
    backend = azure_backend
    backend.fake.fail_documents(["doc-5-1"], status_code=500, times=1)
    with pytest.raises(SearchBackendError, match="doc-5-1"):
        await backend.upsert_document(5, [chunk(5, 0, "First part."), chunk(5, 1, "Second part.")])
    # retried (as the task retries), it succeeds and the document is complete
    await backend.upsert_document(5, [chunk(5, 0, "First part."), chunk(5, 1, "Second part.")])
    assert sorted(await _ids(backend, "part")) == [(5, 0), (5, 1)]


async def test_azure_outage_is_a_transient_backend_error(azure_backend):
    backend = azure_backend
    backend.fake.fail_always(503)
    with pytest.raises(SearchBackendError) as failure:
        await backend.upsert_document(6, [chunk(6, 0, "Anything.")])
    assert failure.value.transient
    with pytest.raises(SearchBackendError):
        await backend.search(SearchQuery(text="anything", access=EVERYTHING))
    backend.fake.fail_always(None)
    await backend.upsert_document(6, [chunk(6, 0, "Anything.")])


async def test_azure_batches_stay_under_the_service_limit(settings, fake_search_factory):
    """azure-search-documents 12.0.0 crashes splitting a batch after a 413, so we never send one
    larger than AZURE_SEARCH_BATCH_SIZE."""
    service = use_fake_azure(settings, lambda **kw: fake_search_factory(max_batch=3, **kw))
    settings.AZURE_SEARCH_BATCH_SIZE = 2
    instance = build_backend()
    await instance.create_index()
    try:
        await instance.upsert_document(7, [chunk(7, i, f"Part {i} of many.") for i in range(7)])
        assert len(service.documents(settings.AZURE_SEARCH_INDEX)) == 7
    finally:
        await instance.close()


async def test_embedded_snippets_only_on_request(settings):
    """The chat never shows snippets and they cost a third of an FTS5 query, so only people
    reading results (manage.py search) get them."""
    settings.SEARCH_BACKEND = "embedded"
    index = build_backend()
    await index.create_index()
    try:
        await index.upsert_document(1, [chunk(1, 0, "Lockers cost five euros a month.")])
        plain = await index.search(SearchQuery(text="lockers", access=EVERYTHING))
        shown = await index.search(SearchQuery(text="lockers", access=EVERYTHING, snippets=True))
    finally:
        await index.close()
    assert plain[0].snippet == "" and plain[0].text == shown[0].text
    assert "**Lockers**" in shown[0].snippet
