"""The fakes as strict as the services, and what the app does about it: credentials required,
429s in every shape the services send (including the non-retryable "insufficient_quota"), answer
streams framed in every way server-sent events allow, and Azure AI Search's near-real-time
writes with Retry-After on throttling."""

import json

import aiohttp
import pytest
from asgiref.sync import sync_to_async
from azure.core.credentials import AzureKeyCredential
from azure.search.documents.aio import SearchClient

from chat.llm.base import AnswerError
from chat.llm.openai_answerer import OpenAIAnswerer
from chat.llm.stream_relay import EventReader
from knowledge.embeddings import Embedder, EmbeddingError
from knowledge.search.base import SearchBackendError
from tests.fakes import (
    CR,
    CRLF,
    DEFAULT_API_KEY,
    DEFAULT_ENTRA_TOKEN,
    EVERY_FORM,
    LF,
    Framing,
    insufficient_quota,
    rate_limit,
    reply,
)

QUESTION = "How many unused vacation days can I carry over?"
ANSWER = "You may carry over five unused vacation days [Leave policy]."
MESSAGES = [{"role": "user", "content": QUESTION}]


@pytest.fixture
def llm(settings, fake_openai):
    """OPENAI_HOST=openai against the fake, with the SDK's retries on (as shipped)."""
    settings.OPENAI_HOST = "openai"
    settings.OPENAI_BASE_URL = fake_openai.openai_base_url
    settings.OPENAI_CHAT_MODEL = "gpt-4o-mini"
    settings.LLM_MAX_RETRIES = 2
    settings.LLM_STREAM_BATCH_MS = 0
    assert settings.OPENAI_API_KEY == DEFAULT_API_KEY  # the fixture gave the app the fake's key
    return fake_openai


@pytest.fixture
async def answerer(llm):
    instance = OpenAIAnswerer()
    yield instance
    await instance.close()


async def answer(answerer) -> tuple[str, list]:
    chunks = [c async for c in await answerer.start_answer([], QUESTION, [], None)]
    return "".join(c.delta for c in chunks), chunks


# -- credentials ------------------------------------------------------------------------------


async def post(url, headers=None):
    async with aiohttp.ClientSession() as session:
        body = {"model": "m", "messages": MESSAGES}
        async with session.post(url, json=body, headers=headers or {}) as response:
            return response.status, await response.json()


async def test_the_fake_requires_credentials_as_the_services_do(fake_openai):
    chat = fake_openai.openai_base_url + "/chat/completions"
    azure = fake_openai.azure_v1_base_url + "chat/completions"
    status, body = await post(chat)
    assert status == 401 and "didn't provide an API key" in body["error"]["message"]
    status, body = await post(chat, {"Authorization": "Bearer sk-wrong"})
    assert status == 401 and body["error"]["code"] == "invalid_api_key"
    assert (await post(chat, {"Authorization": f"Bearer {DEFAULT_API_KEY}"}))[0] == 200
    assert (await post(azure, {"api-key": DEFAULT_API_KEY}))[0] == 200
    # An Entra token is good on Azure's paths only.
    entra = {"Authorization": f"Bearer {DEFAULT_ENTRA_TOKEN}"}
    assert (await post(azure, entra))[0] == 200
    status, body = await post(chat, entra)
    assert status == 401
    status, body = await post(azure, {"Authorization": "Bearer expired-token"})
    assert status == 401 and body["error"]["code"] == "401"
    fake_openai.allow_anonymous()  # a compatible server without keys
    assert (await post(chat))[0] == 200


async def test_a_refused_key_is_a_configuration_error_not_a_retry_storm(answerer, llm):
    llm.require_api_key("some-other-key")
    with pytest.raises(AnswerError) as refused:
        await answer(answerer)
    assert refused.value.status == 502 and "not configured correctly" in refused.value.message
    assert len(llm.chat_requests) == 1


# -- 429s in every shape -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "seconds"),
    [
        ({"retry_after_ms": 3000}, 3),
        ({"retry_after": 4}, 4),
        ({"retry_after_ms": None, "retry_at": 5}, 5),  # retry-after as an HTTP-date
    ],
)
async def test_every_retry_after_shape_tells_the_user_when_to_come_back(
    answerer, llm, settings, shape, seconds
):
    """With the SDK's retries spent (here: none), the user is told how long to wait, whichever
    header shape the service used."""
    answerer.client = answerer.client.with_options(max_retries=0)
    llm.enqueue(rate_limit(**shape))
    with pytest.raises(AnswerError) as busy:
        await answer(answerer)
    assert busy.value.status == 429
    # An HTTP-date has whole seconds: the wait it gives is up to a second longer.
    assert seconds - 1 <= busy.value.retry_after <= seconds + 1
    assert "busy" in busy.value.message and "seconds" in busy.value.message


@pytest.mark.parametrize(
    "shape",
    [{"retry_after_ms": 150}, {"retry_after": 0.2}, {"retry_after_ms": None, "retry_at": 1}],
)
async def test_sdk_retries_wait_as_each_retry_after_shape_says(answerer, llm, shape):
    llm.enqueue(rate_limit(**shape), reply(ANSWER))
    text, _ = await answer(answerer)
    assert text == ANSWER
    refused, served = llm.chat_requests
    assert (refused.status, served.status) == (429, 200)
    assert served.time > refused.time


async def test_insufficient_quota_is_not_retried_and_says_what_is_wrong(answerer, llm):
    """A 429 for an account out of credit will not pass by waiting: one request, and a message
    that does not ask the user to retry in a minute."""
    llm.enqueue(insufficient_quota(), times=3)
    with pytest.raises(AnswerError) as out:
        await answer(answerer)
    assert len(llm.chat_requests) == 1
    assert out.value.status == 503 and out.value.retry_after is None
    assert "quota" in out.value.message and "try again" not in out.value.message


@pytest.mark.django_db(transaction=True)
async def test_the_chat_api_answers_an_exhausted_quota_with_a_clear_503(llm, async_client):
    from tests.chat_helpers import ask, build_kb

    await sync_to_async(build_kb)()
    llm.enqueue(insufficient_quota(), times=3)
    response = await async_client.post(
        "/chat/stream", data=json.dumps(ask(QUESTION)), content_type="application/json"
    )
    assert response.status_code == 503 and "Retry-After" not in response
    assert "quota" in response.json()["error"]
    assert len(llm.chat_requests) == 1


async def test_insufficient_quota_on_the_query_rewrite_is_not_retried(answerer, llm):
    llm.enqueue(insufficient_quota(), times=3)
    history = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}]
    rewrite = await answerer.rewrite_query(history, QUESTION)
    assert rewrite.query == QUESTION and "quota" in rewrite.note
    assert len(llm.chat_requests) == 1


async def test_insufficient_quota_fails_embedding_at_once_and_for_good(llm, settings):
    settings.OPENAI_EMBEDDING_MODEL = "text-embedding-3-small"
    llm.enqueue(insufficient_quota(endpoint="embeddings"), times=5)
    embedder = Embedder(max_retries=4)
    try:
        with pytest.raises(EmbeddingError) as out:
            await embedder.embed(["Bike racks are behind building C."])
    finally:
        await embedder.close()
    assert len(llm.embedding_requests) == 1
    assert not out.value.transient and "quota" in str(out.value)


async def test_an_ordinary_rate_limit_is_still_retried(answerer, llm):
    llm.enqueue(rate_limit(retry_after_ms=20), times=2)
    assert (await answer(answerer))[0] and len(llm.chat_requests) == 3


# -- every legal framing of the answer stream ------------------------------------------------

FRAMINGS = {
    "lf": LF,
    "crlf": CRLF,
    "cr": CR,
    "comments": Framing(comments=True),
    "events": Framing(events=True),
    "ids": Framing(ids=True),
    "ids-and-comments": Framing(ids=True, comments=True),
    "split-data": Framing(split_data=True),
    "compact": Framing(compact=True),
    "every-form": EVERY_FORM,
}


@pytest.mark.parametrize("framing", FRAMINGS.values(), ids=FRAMINGS.keys())
@pytest.mark.parametrize("host", ["openai", "azure"])
async def test_every_sse_framing_relays_the_whole_answer(llm, settings, framing, host):
    if host == "azure":  # Azure's paths: a filter-results chunk comes first
        settings.OPENAI_HOST = "azure"
        settings.AZURE_OPENAI_ENDPOINT = llm.base_url
        settings.AZURE_OPENAI_CHAT_DEPLOYMENT = "chat"
    llm.enqueue(reply(ANSWER, chunks=6, framing=framing))
    instance = OpenAIAnswerer()
    try:
        text, chunks = await answer(instance)
    finally:
        await instance.close()
    assert text == ANSWER
    assert chunks[-1].usage["total_tokens"] > 0
    assert [c.finish_reason for c in chunks if c.finish_reason] == ["stop"]


@pytest.mark.parametrize("framing", FRAMINGS.values(), ids=FRAMINGS.keys())
def test_every_framing_survives_any_read_boundary(framing):
    """The same stream cut into reads of every size from 1 byte: nothing lost or doubled, even
    where a read ends between the CR and LF of one line end."""
    words = ["Five", " unused", " days", " carry", " over."]
    events = [
        b'{"choices":[{"index":0,"delta":{"content":%s}}]}' % f'"{w}"'.encode() for w in words
    ]
    events.append(b'{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}')
    raw = b"".join(framing.frame(e, n) for n, e in enumerate(events))
    raw += framing.frame(b"[DONE]", len(events))
    for size in (1, 2, 3, 7, len(raw)):
        reader = EventReader()
        batches = [reader.read(raw[i : i + size]) for i in range(0, len(raw), size)]
        chunks = [c for c in (b.chunk() for b in batches) if c is not None]
        assert "".join(c.delta for c in chunks) == "".join(words), size
        assert [c.finish_reason for c in chunks if c.finish_reason][-1:] == ["stop"]
        assert reader.done


# -- Azure AI Search: near-real-time writes, Retry-After ----------------------------------------


async def test_azure_search_writes_show_in_queries_only_after_the_delay(fake_search):
    fake_search.create_index(
        {
            "name": "chunks",
            "fields": [
                {"name": "id", "type": "Edm.String", "key": True},
                {"name": "content", "type": "Edm.String", "searchable": True},
            ],
        }
    )
    credential = AzureKeyCredential(fake_search.api_key)
    async with SearchClient(fake_search.endpoint, "chunks", credential, retry_total=0) as client:
        await client.upload_documents([{"id": "a", "content": "Boiler room key"}])
        assert [r async for r in await client.search("boiler")] == []
        assert await client.get_document_count() == 0
        assert set(fake_search.documents("chunks")) == {"a"}  # written, not yet visible
        await fake_search.settle_async()
        assert [r["id"] async for r in await client.search("boiler")] == ["a"]
        await client.delete_documents([{"id": "a"}])
        assert (await client.get_document("a"))["id"] == "a"  # still there for a moment
        await fake_search.settle_async()
        assert await client.get_document_count() == 0


async def test_azure_search_throttling_carries_retry_after(fake_search):
    fake_search.fail_next(503)
    fake_search.fail_next(429, retry_after=None)  # a test may still leave it out
    fake_search.fail_next(500)
    async with aiohttp.ClientSession() as session:
        url = f"{fake_search.endpoint}/servicestats?api-version=2026-04-01"
        headers = {"api-key": fake_search.api_key}
        seen = []
        for _ in range(3):
            async with session.get(url, headers=headers) as response:
                seen.append((response.status, response.headers.get("Retry-After")))
    assert seen == [(503, "1"), (429, None), (500, None)]


async def test_search_backend_error_names_the_413(settings, fake_search_factory):
    """A single chunk over the service's limit cannot be split: a clear, permanent error."""
    from knowledge.search import build_backend
    from tests.test_search_contract import chunk, use_fake_azure

    service = use_fake_azure(settings, lambda **kw: fake_search_factory(**kw))
    service.max_request_bytes = 2000
    backend = build_backend()
    try:
        await backend.create_index()
        with pytest.raises(SearchBackendError) as refused:
            await backend.upsert_document(4, [chunk(4, 0, "x" * 5000)])
    finally:
        await backend.close()
    assert not refused.value.transient and "too large" in str(refused.value)
