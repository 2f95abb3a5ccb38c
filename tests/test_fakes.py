"""The fake upstreams, driven by the real openai and azure-search-documents SDKs over real HTTP."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import openai
import pytest
from azure.core.credentials import AccessToken, AzureKeyCredential
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceResponseError,
)
from azure.search.documents.aio import SearchClient
from azure.search.documents.indexes.aio import SearchIndexClient
from azure.search.documents.indexes.models import (
    HnswAlgorithmConfiguration,
    SearchableField,
    SearchField,
    SearchFieldDataType,
    SearchIndex,
    SemanticConfiguration,
    SemanticField,
    SemanticPrioritizedFields,
    SemanticSearch,
    SimpleField,
    VectorSearch,
    VectorSearchProfile,
)
from azure.search.documents.models import VectorizedQuery

from tests import fakes
from tests.fakes.azure_search_server import FakeAzureSearch, ODataError, parse_filter
from tests.fakes.openai_server import (
    FakeOpenAI,
    content_filter_error,
    content_filter_mid_stream,
    default_answer,
    drop_connection,
    embed,
    hang,
    rate_limit,
    reply,
    server_error,
)

SOURCES = (
    "Answer from the sources only.\nSources:\n"
    "[handbook.pdf#page=3]: Employees get 20 days of paid leave per year.\n"
    "[Leave policy]: Unused leave carries over to March."
)
MESSAGES = [
    {"role": "system", "content": SOURCES},
    {"role": "user", "content": "How many days of leave do I get?"},
]
KEY = "fake-search-admin-key"
DIMS = 64

# The fixtures (the lead's conftest may import them too; the same objects either way).
fake_openai = fakes.fake_openai
fake_openai_factory = fakes.fake_openai_factory
fake_search = fakes.fake_search
fake_search_factory = fakes.fake_search_factory


def oai(server: FakeOpenAI, **kwargs) -> openai.AsyncOpenAI:
    kwargs.setdefault("max_retries", 0)
    return openai.AsyncOpenAI(base_url=server.openai_base_url, api_key=server.api_key, **kwargs)


async def collect(stream) -> tuple[str, list]:
    chunks = [c async for c in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    return text, chunks


# -- OpenAI: chat ----------------------------------------------------------------------------------


async def test_stream_concatenates_to_cited_answer(fake_openai: FakeOpenAI):
    async with oai(fake_openai) as client:
        stream = await client.chat.completions.create(
            model="gpt-test",
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
        )
        text, chunks = await collect(stream)
    assert text == default_answer(MESSAGES)
    assert text.startswith("According to the sources, Employees get 20 days")
    assert "[handbook.pdf#page=3]" in text and "[Leave policy]" in text
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0
    assert all(c.model == "gpt-test" and c.object == "chat.completion.chunk" for c in chunks)
    (rec,) = fake_openai.requests
    assert rec.path == "/v1/chat/completions" and rec.stream and rec.finished
    assert rec.authorization == f"Bearer {fake_openai.api_key}" and rec.json["messages"] == MESSAGES
    assert not rec.disconnected


async def test_chunks_and_latency(fake_openai: FakeOpenAI):
    fake_openai.set_latency(ttft=0.1, chunks=5, chunk_interval=0.02)
    fake_openai.set_answer("one two three four five six seven")
    async with oai(fake_openai) as client:
        start = time.monotonic()
        stream = await client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
        first = None
        deltas = []
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                first = first or time.monotonic() - start
                deltas.append(chunk.choices[0].delta.content)
        total = time.monotonic() - start
    assert "".join(deltas) == "one two three four five six seven" and len(deltas) == 5
    assert 0.1 <= first < 0.5 and total >= 0.1 + 4 * 0.02


async def test_azure_v1_path_sends_prompt_filter_chunk_first(fake_openai: FakeOpenAI):
    client = openai.AsyncOpenAI(
        base_url=fake_openai.azure_v1_base_url, api_key=fake_openai.api_key, max_retries=0
    )
    async with client:
        stream = await client.chat.completions.create(model="dep", messages=MESSAGES, stream=True)
        text, chunks = await collect(stream)
    assert chunks[0].choices == []
    assert chunks[0].model_extra["prompt_filter_results"][0]["prompt_index"] == 0
    assert "[handbook.pdf#page=3]" in text
    assert fake_openai.requests[0].path == "/openai/v1/chat/completions"
    assert fake_openai.requests[0].azure


async def test_azure_deployment_path_and_api_key(fake_openai: FakeOpenAI):
    fake_openai.require_api_key("azure-key")
    client = openai.AsyncAzureOpenAI(
        azure_endpoint=fake_openai.azure_endpoint,
        api_key="azure-key",
        api_version="2024-10-21",
        max_retries=0,
    )
    async with client:
        completion = await client.chat.completions.create(model="chat-dep", messages=MESSAGES)
    assert "[Leave policy]" in completion.choices[0].message.content
    assert completion.model_extra["prompt_filter_results"]
    rec = fake_openai.requests[0]
    assert rec.path == "/openai/deployments/chat-dep/chat/completions"
    assert rec.api_key == "azure-key" and rec.query["api-version"] == "2024-10-21"


async def test_non_streamed_and_scripted_replies(fake_openai: FakeOpenAI):
    fake_openai.set_answer("Fixed [a.txt].")
    fake_openai.enqueue(reply("First scripted."), reply("Second scripted."))
    async with oai(fake_openai) as client:
        answers = [
            (await client.chat.completions.create(model="m", messages=MESSAGES))
            .choices[0]
            .message.content
            for _ in range(3)
        ]
        limited = await client.chat.completions.create(model="m", messages=MESSAGES, max_tokens=1)
    assert answers == ["First scripted.", "Second scripted.", "Fixed [a.txt]."]
    assert limited.choices[0].finish_reason == "length"
    assert limited.choices[0].message.content == "Fixed"


async def test_query_rewrite_prompt_echoes_the_question(fake_openai: FakeOpenAI):
    messages = [
        {"role": "system", "content": "Generate a search query for the question below."},
        {"role": "user", "content": "leave days?"},
    ]
    async with oai(fake_openai) as client:
        completion = await client.chat.completions.create(model="m", messages=messages)
    assert completion.choices[0].message.content == "leave days?"


async def test_auth_required(fake_openai: FakeOpenAI):
    fake_openai.require_api_key("right")
    bad = openai.AsyncOpenAI(base_url=fake_openai.openai_base_url, api_key="wrong", max_retries=0)
    async with bad as client:
        with pytest.raises(openai.AuthenticationError):
            await client.chat.completions.create(model="m", messages=MESSAGES)
    good = openai.AsyncOpenAI(base_url=fake_openai.openai_base_url, api_key="right", max_retries=0)
    async with good:
        await good.chat.completions.create(model="m", messages=MESSAGES)
    assert [r.status for r in fake_openai.requests] == [401, 200]


# -- OpenAI: failures ------------------------------------------------------------------------------


async def test_429_retry_after_ms_is_honoured(fake_openai: FakeOpenAI):
    fake_openai.enqueue(rate_limit(retry_after_ms=150))
    async with oai(fake_openai, max_retries=2) as client:
        start = time.monotonic()
        stream = await client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
        text, _ = await collect(stream)
    assert "[handbook.pdf#page=3]" in text
    assert time.monotonic() - start >= 0.15
    first, second = fake_openai.chat_requests
    assert first.status == 429 and second.status == 200
    assert second.time - first.time >= 0.14


async def test_500_raises_without_retries(fake_openai: FakeOpenAI):
    fake_openai.enqueue(server_error(500))
    async with oai(fake_openai) as client:
        with pytest.raises(openai.InternalServerError):
            await client.chat.completions.create(model="m", messages=MESSAGES)
        await client.chat.completions.create(model="m", messages=MESSAGES)  # queue used up


async def test_content_filter_400(fake_openai: FakeOpenAI):
    fake_openai.enqueue(content_filter_error())
    async with oai(fake_openai) as client:
        with pytest.raises(openai.BadRequestError) as info:
            await client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
    assert info.value.code == "content_filter"
    assert info.value.body["innererror"]["content_filter_result"]["violence"]["filtered"]


async def test_content_filter_mid_stream(fake_openai: FakeOpenAI):
    fake_openai.enqueue(content_filter_mid_stream(after=2))
    async with oai(fake_openai) as client:
        stream = await client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
        text, chunks = await collect(stream)
    assert text == "According to"
    assert chunks[-1].choices[0].finish_reason == "content_filter"


async def test_dropped_stream_raises_in_client(fake_openai: FakeOpenAI):
    fake_openai.enqueue(drop_connection(after=3))
    async with oai(fake_openai) as client:
        stream = await client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
        received = []
        with pytest.raises((openai.APIConnectionError, OSError)):
            async for chunk in stream:
                received.append(chunk)
    assert 1 <= len(received) <= 4
    rec = fake_openai.requests[0]
    assert rec.dropped_by_server and not rec.disconnected and rec.chunks_sent == 3


async def test_client_closing_stream_early_is_seen_as_disconnect(fake_openai: FakeOpenAI):
    fake_openai.set_latency(chunks=50, chunk_interval=0.05)
    async with oai(fake_openai) as client:
        stream = await client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                break
        await stream.close()
        closed_at = time.time()
        rec = await fake_openai.wait_for_disconnect_async(timeout=1.0)
    assert rec.disconnected and not rec.finished
    assert rec.disconnected_at - closed_at < 1.0 and rec.chunks_sent < 50


async def test_hung_stream_times_out_and_is_seen_as_disconnect(fake_openai: FakeOpenAI):
    fake_openai.enqueue(hang(after=1))
    async with oai(fake_openai, timeout=0.3) as client:
        stream = await client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
        with pytest.raises((openai.APITimeoutError, openai.APIConnectionError)):
            async for _ in stream:
                pass
        rec = await fake_openai.wait_for_disconnect_async(timeout=1.0)
    assert rec.behaviour == "hang" and rec.chunks_sent == 1


# -- OpenAI: embeddings ----------------------------------------------------------------------------


async def test_embeddings_base64_default_and_float(fake_openai: FakeOpenAI):
    fake_openai.set_embedding("registered", [0.6, 0.8, 0.0])
    async with oai(fake_openai) as client:
        default = await client.embeddings.create(
            model="emb", input=["leave days", "registered"], dimensions=DIMS
        )
        floats = await client.embeddings.create(
            model="emb", input="leave days", encoding_format="float"
        )
    assert fake_openai.requests[0].json["encoding_format"] == "base64"
    assert default.data[0].embedding == pytest.approx(list(embed("leave days", DIMS)), abs=1e-6)
    assert default.data[1].embedding == pytest.approx([0.6, 0.8, 0.0], abs=1e-6)
    assert len(floats.data[0].embedding) == 1536 and default.usage.prompt_tokens == 3
    assert floats.data[0].embedding == list(embed("leave days"))


async def test_embeddings_rate_limit(fake_openai: FakeOpenAI):
    fake_openai.enqueue(rate_limit(retry_after_ms=10, endpoint="embeddings"))
    async with oai(fake_openai) as client:
        await client.chat.completions.create(model="m", messages=MESSAGES)  # not affected
        with pytest.raises(openai.RateLimitError):
            await client.embeddings.create(model="emb", input="x")


def test_embed_is_deterministic_and_normalised():
    a, b, c = embed("paid leave days", 32), embed("leave days", 32), embed("parking rules", 32)
    assert embed("paid leave days", 32) == a
    assert sum(x * x for x in a) == pytest.approx(1.0)
    assert sum(x * y for x, y in zip(a, b, strict=True)) > sum(
        x * y for x, y in zip(a, c, strict=True)
    )


def test_openai_cli_runs_standalone():
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.openai_server", "--port", "0", "--chunks", "3"],
        cwd=root,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert "listening on http://127.0.0.1:" in line
        base = line.split("listening on ")[1].strip()
        client = openai.OpenAI(base_url=f"{base}/v1", api_key="k", max_retries=0)
        with client.chat.completions.create(model="m", messages=MESSAGES, stream=True) as stream:
            deltas = [c.choices[0].delta.content for c in stream if c.choices]
        assert len([d for d in deltas if d]) == 3
    finally:
        proc.terminate()
        proc.wait(5)


# -- Azure AI Search -------------------------------------------------------------------------------


def index_definition(name: str = "chunks") -> SearchIndex:
    return SearchIndex(
        name=name,
        fields=[
            SimpleField(name="id", type=SearchFieldDataType.String, key=True, filterable=True),
            SearchableField(name="content"),
            SimpleField(name="title", type=SearchFieldDataType.String, filterable=True),
            SimpleField(
                name="groups",
                type=SearchFieldDataType.Collection(SearchFieldDataType.String),
                filterable=True,
            ),
            SimpleField(name="public", type=SearchFieldDataType.Boolean, filterable=True),
            SimpleField(name="page", type=SearchFieldDataType.Int32, filterable=True),
            SimpleField(name="secret", type=SearchFieldDataType.String),
            SearchField(
                name="embedding",
                type=SearchFieldDataType.Collection(SearchFieldDataType.Single),
                searchable=True,
                vector_search_dimensions=DIMS,
                vector_search_profile_name="profile",
            ),
        ],
        vector_search=VectorSearch(
            algorithms=[HnswAlgorithmConfiguration(name="hnsw")],
            profiles=[VectorSearchProfile(name="profile", algorithm_configuration_name="hnsw")],
        ),
        semantic_search=SemanticSearch(
            configurations=[
                SemanticConfiguration(
                    name="default",
                    prioritized_fields=SemanticPrioritizedFields(
                        content_fields=[SemanticField(field_name="content")]
                    ),
                )
            ]
        ),
    )


DOCS = [
    ("d1", "Employees get 20 days of paid leave per year.", ["staff"], True, 3),
    ("d2", "Unused leave carries over to March.", ["staff", "hr"], False, 4),
    ("d3", "The parking garage opens at 7 am.", [], True, 1),
    ("d4", "Managers approve leave requests within a week.", ["managers"], False, 2),
]


def doc(key, content, groups, public, page):
    return {
        "id": key,
        "content": content,
        "title": f"Doc {key}",
        "groups": groups,
        "public": public,
        "page": page,
        "secret": "x",
        "embedding": list(embed(content, DIMS)),
    }


def search_client(server: FakeAzureSearch, key: str = KEY, **kwargs) -> SearchClient:
    kwargs.setdefault("retry_total", 0)
    return SearchClient(server.endpoint, "chunks", AzureKeyCredential(key), **kwargs)


@pytest.fixture
async def populated(fake_search: FakeAzureSearch) -> FakeAzureSearch:
    # Writes visible at once: these tests read back what they just wrote. The near-real-time
    # lag has its own tests (test_fakes_strict.py).
    fake_search.visibility_delay = 0
    async with SearchIndexClient(fake_search.endpoint, AzureKeyCredential(KEY)) as indexes:
        await indexes.create_index(index_definition())
    async with search_client(fake_search) as client:
        results = await client.upload_documents([doc(*d) for d in DOCS])
    assert all(r.succeeded and r.status_code == 201 for r in results)
    return fake_search


async def keys(results) -> list[str]:
    return [r["id"] async for r in results]


async def test_index_lifecycle(fake_search: FakeAzureSearch):
    async with SearchIndexClient(fake_search.endpoint, AzureKeyCredential(KEY)) as client:
        created = await client.create_index(index_definition())
        assert created.name == "chunks" and created.e_tag
        with pytest.raises(ResourceExistsError):
            await client.create_index(index_definition())
        changed = index_definition()
        changed.fields.append(SimpleField(name="extra", type=SearchFieldDataType.String))
        updated = await client.create_or_update_index(changed)
        assert "extra" in [f.name for f in updated.fields]
        fetched = await client.get_index("chunks")
        assert fetched.fields[-1].name == "extra"
        assert [n async for n in client.list_index_names()] == ["chunks"]
        bad = index_definition()
        bad.fields[-1].vector_search_dimensions = DIMS + 1
        with pytest.raises(HttpResponseError) as info:
            await client.create_or_update_index(bad)
        assert info.value.status_code == 400
        await client.delete_index("chunks")
        with pytest.raises(ResourceNotFoundError):
            await client.get_index("chunks")
        await client.create_or_update_index(index_definition("other"))  # 201 through PUT
    paths = [(r.method, r.path) for r in fake_search.requests]
    assert ("PUT", "/indexes('chunks')") in paths and ("DELETE", "/indexes('chunks')") in paths
    assert all(r.query["api-version"] == "2026-04-01" for r in fake_search.requests)


async def test_documents_crud(populated: FakeAzureSearch):
    async with search_client(populated) as client:
        assert await client.get_document_count() == 4
        merged = await client.merge_documents([{"id": "d3", "title": "Parking"}])
        assert merged[0].succeeded
        assert (await client.get_document("d3"))["title"] == "Parking"
        missing = await client.merge_documents([{"id": "nope", "title": "x"}])
        assert not missing[0].succeeded and missing[0].status_code == 404
        both = await client.merge_or_upload_documents(
            [{"id": "d3", "page": 9}, {"id": "d5", "content": "New text."}]
        )
        assert [r.status_code for r in both] == [200, 201]
        await client.delete_documents([{"id": "d5"}, {"id": "never-existed"}])
        assert await client.get_document_count() == 4
        stored = await client.get_document("d3")
    assert stored["page"] == 9 and stored["title"] == "Parking"
    assert "secret" in stored and populated.documents("chunks")["d3"]["page"] == 9


async def test_search_text_filters_select_count(populated: FakeAzureSearch):
    async with search_client(populated) as client:
        results = await client.search("leave", include_total_count=True, select=["id", "title"])
        hits = [r async for r in results]
        assert await results.get_count() == 3
        assert {h["id"] for h in hits} == {"d1", "d2", "d4"}
        assert all(set(h) >= {"id", "title", "@search.score"} for h in hits)
        assert "content" not in hits[0] and hits[0]["@search.score"] > 0

        async def ids(text, flt, **kw):
            return sorted(await keys(await client.search(text, filter=flt, **kw)))

        assert await ids("leave", "groups/any(g: search.in(g, 'hr,managers', ','))") == [
            "d2",
            "d4",
        ]
        assert await ids("*", "groups/any(g: g eq 'staff') and not public") == ["d2"]
        assert await ids(None, "public eq true or (page ge 2 and page lt 3)") == ["d1", "d3", "d4"]
        assert await ids(None, "search.in(id, 'd1 d3')") == ["d1", "d3"]
        assert await ids(None, "not groups/any()") == ["d3"]
        assert await ids(None, "title eq 'Doc d2' or title eq 'O''Brien'") == ["d2"]
        assert await ids("leave", None, top=1) in (["d1"], ["d2"], ["d4"])
        by_page = await keys(await client.search(None, order_by=["page desc"], top=3))
        assert by_page == ["d2", "d1", "d4"]
        with pytest.raises(HttpResponseError) as info:
            await ids(None, "secret eq 'x'")
        assert info.value.status_code == 400 and "not filterable" in info.value.message
        with pytest.raises(HttpResponseError):
            await ids(None, "groups eq 'staff'")


async def test_vector_and_hybrid_queries(populated: FakeAzureSearch):
    query = "paid leave per year"
    vq = VectorizedQuery(vector=list(embed(query, DIMS)), k_nearest_neighbors=2, fields="embedding")
    async with search_client(populated) as client:
        vector_hits = [r async for r in await client.search(None, vector_queries=[vq])]
        assert [h["id"] for h in vector_hits][0] == "d1" and len(vector_hits) == 2
        assert 0.5 < vector_hits[1]["@search.score"] < vector_hits[0]["@search.score"] <= 1.0

        hybrid = await client.search(
            "parking", vector_queries=[vq], filter="public eq true", select=["id"]
        )
        hybrid_hits = [r async for r in hybrid]
        assert {h["id"] for h in hybrid_hits} == {"d1", "d3"}
        assert all(h["@search.score"] < 0.05 for h in hybrid_hits)  # RRF scores

        semantic = await client.search(
            "leave", query_type="semantic", semantic_configuration_name="default"
        )
        first = [r async for r in semantic][0]
        assert first["@search.rerankerScore"] == pytest.approx(4.0)
    body = populated.requests[-2].json
    assert body["vectorQueries"][0] == {
        "vector": vq.vector,
        "k": 2,
        "fields": "embedding",
        "kind": "vector",
    }


async def test_partial_failure_207(populated: FakeAzureSearch):
    populated.fail_documents(["d2"], status_code=422, message="Injected.", times=1)
    async with search_client(populated) as client:
        results = await client.upload_documents([doc(*d) for d in DOCS[:2]] + [{"id": "a/b"}])
        again = await client.upload_documents([doc(*DOCS[1])])
    assert [r.succeeded for r in results] == [True, False, False]
    assert [r.status_code for r in results] == [200, 422, 400]
    assert "Keys can only contain" in results[2].error_message
    assert populated.requests[-2].status == 207 and again[0].succeeded


async def test_batch_over_limit_is_413(fake_search_factory):
    server = fake_search_factory(max_batch=2)
    server.create_index(
        {"name": "chunks", "fields": [{"name": "id", "type": "Edm.String", "key": True}]}
    )
    async with search_client(server) as client:
        assert all(r.succeeded for r in await client.upload_documents([{"id": "1"}, {"id": "2"}]))
        # azure-search-documents 12.0.0 (async only): on 413 it retries the first half, then
        # calls _index_documents_actions(actions=...) for the second half, a TypeError.
        with pytest.raises(TypeError):
            await client.upload_documents([{"id": str(i)} for i in range(4)])
    assert [r.status for r in server.requests] == [200, 413, 200]


async def test_whole_batch_rejected_for_unknown_field(populated: FakeAzureSearch):
    async with search_client(populated) as client:
        with pytest.raises(HttpResponseError) as info:
            await client.upload_documents([{"id": "x", "nope": 1}])
    assert info.value.status_code == 400


async def test_api_key_and_bearer_auth(fake_search_factory):
    server = fake_search_factory(query_keys=["query-key"], bearer_tokens=["token-1"])
    server.create_index(
        {"name": "chunks", "fields": [{"name": "id", "type": "Edm.String", "key": True}]}
    )
    async with search_client(server, key="wrong") as client:
        with pytest.raises(ClientAuthenticationError):
            await client.get_document_count()
    async with search_client(server, key="query-key") as client:
        assert await client.get_document_count() == 0
        with pytest.raises(HttpResponseError) as info:
            await client.upload_documents([{"id": "1"}])
        assert info.value.status_code == 403

    class Token:
        async def get_token(self, *scopes, **kwargs):
            return AccessToken("token-1", int(time.time()) + 3600)

        async def close(self):
            pass

    async with SearchClient(server.endpoint, "chunks", Token()) as client:
        assert await client.get_document_count(enforce_https=False) == 0
    assert server.requests[-1].bearer_token == "token-1"


async def test_search_failures_503_and_hang(populated: FakeAzureSearch):
    populated.fail_next(503, operation="search")
    async with search_client(populated) as client:
        with pytest.raises(HttpResponseError) as info:
            await keys(await client.search("leave"))
        assert info.value.status_code == 503
    populated.fail_next(503, times=2)
    async with search_client(populated, retry_total=3, retry_backoff_factor=0.01) as client:
        assert await client.get_document_count() == 4
    populated.hang_next(operation="count")
    async with search_client(populated) as client:
        with pytest.raises(ServiceResponseError):
            await client.get_document_count(read_timeout=0.3)
    rec = await populated.wait_for_disconnect_async(timeout=1.0)
    assert rec.endpoint == "count" and rec.behaviour == "hang"
    populated.fail_always(500, operation="index")
    async with search_client(populated) as client:
        with pytest.raises(HttpResponseError):
            await client.upload_documents([doc(*DOCS[0])])
        assert await client.get_document_count() == 4
    populated.fail_always(None)


def test_parse_filter_forms():
    docs = {
        "a": {"cat": "x", "groups": ["g1", "g2"], "n": 3, "ok": True},
        "b": {"cat": "y", "groups": [], "n": 5, "ok": False},
    }

    def match(expr):
        predicate = parse_filter(expr)
        return sorted(k for k, d in docs.items() if predicate(d))

    assert match("cat eq 'x'") == ["a"]
    assert match("cat ne 'x'") == ["b"]
    assert match("search.in(cat, 'x|z', '|')") == ["a"]
    assert match("groups/any(g: search.in(g, 'g2,g9', ','))") == ["a"]
    assert match("groups/all(g: g eq 'g1')") == ["b"]  # vacuously true for []
    assert match("not (n gt 4) and ok") == ["a"]
    assert match("(cat eq 'y' or n le 3) and not ok eq false") == ["a"]
    assert match("ok") == ["a"]
    with pytest.raises(ODataError):
        parse_filter("cat eq")
    with pytest.raises(ODataError):
        parse_filter("cat eq 'x' garbage")


async def test_fakes_run_side_by_side_under_concurrency(fake_openai: FakeOpenAI):
    fake_openai.set_latency(ttft=0.05, chunks=10, chunk_interval=0.005)
    async with oai(fake_openai) as client:

        async def one() -> str:
            stream = await client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
            return (await collect(stream))[0]

        texts = await asyncio.gather(*(one() for _ in range(30)))
    assert len(set(texts)) == 1 and len(fake_openai.chat_requests) == 30
