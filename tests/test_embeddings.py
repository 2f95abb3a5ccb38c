"""Embeddings: chunks embedded at index time in bounded batches that ride out 429s, kept on the
Chunk rows so only changed text is paid for again; questions embedded at ask time for vector and
hybrid retrieval."""

import json

import pytest
from django.core.management import call_command

from knowledge.models import Chunk, Collection, Document
from tests.asgi_client import AsyncClient
from tests.chat_helpers import ask
from tests.fakes import rate_limit

pytestmark = pytest.mark.django_db(transaction=True)
DIMS = 8


@pytest.fixture
def embedding_llm(settings, fake_openai):
    settings.OPENAI_HOST = "compatible"
    settings.OPENAI_BASE_URL = fake_openai.openai_base_url
    settings.OPENAI_CHAT_MODEL = "llama3.1"
    settings.OPENAI_EMBEDDING_MODEL = "nomic-embed-text"
    settings.OPENAI_EMBEDDING_DIMENSIONS = DIMS
    settings.EMBEDDINGS_ENABLED = True
    settings.EMBEDDING_BATCH_SIZE = 2
    settings.LLM_MAX_RETRIES = 0
    settings.EMBEDDING_MAX_RETRIES = 3
    return fake_openai


def _inputs(fake):
    return [r.json["input"] for r in fake.embedding_requests]


def test_chunks_are_embedded_in_bounded_batches_and_reused(embedding_llm, settings):
    coll = Collection.objects.create(name="Handbook")
    doc = Document.objects.create(
        title="Many facts",
        collection=coll,
        body="\n\n".join(f"Fact {i} is about topic number {i}. " * 30 for i in range(5)),
    )
    call_command("sync_index", verbosity=0)
    chunks = list(doc.chunks.all())
    assert len(chunks) >= 3 and all(c.embedding for c in chunks)
    assert all(len(batch) <= 2 for batch in _inputs(embedding_llm))
    assert sum(len(batch) for batch in _inputs(embedding_llm)) == len(chunks)
    assert embedding_llm.embedding_requests[0].json.get("dimensions") == DIMS

    # An edit that changes one chunk pays for that chunk only.
    embedding_llm.requests.clear()
    doc.body = doc.body.replace("Fact 4 is about topic number 4.", "Fact 4 changed entirely.")
    doc.save()
    call_command("sync_index", verbosity=0)
    changed = sum(len(batch) for batch in _inputs(embedding_llm))
    assert 1 <= changed < len(chunks)


def test_rate_limited_embeddings_ride_out_the_429s(embedding_llm):
    embedding_llm.enqueue(rate_limit(retry_after_ms=20, endpoint="embeddings"), times=2)
    Document.objects.create(title="Bikes", body="Bike racks are behind building C.")
    call_command("sync_index", verbosity=0)
    assert Chunk.objects.exclude(embedding=None).count() == 1
    assert len(embedding_llm.embedding_requests) == 3


async def test_vector_retrieval_finds_what_words_miss(embedding_llm, settings):
    passage = "Staff may bring dogs to the office on Fridays."
    question = "What is the pets policy?"
    near = [1.0] + [0.0] * (DIMS - 1)
    far = [0.0, 1.0] + [0.0] * (DIMS - 2)
    embedding_llm.set_embedding(passage, near)
    embedding_llm.set_embedding("The pets policy question is answered elsewhere.", far)
    embedding_llm.set_embedding(question, [0.95, 0.05] + [0.0] * (DIMS - 2))
    await Document.objects.acreate(title="Dogs", body=passage)
    await Document.objects.acreate(
        title="Elsewhere", body="The pets policy question is answered elsewhere."
    )
    from asgiref.sync import sync_to_async

    await sync_to_async(call_command)("sync_index", verbosity=0)

    async def top_title(mode):
        body = ask(question, context={"overrides": {"retrieval_mode": mode, "top": 1}})
        response = await AsyncClient().post("/chat", data=body, content_type="application/json")
        data = response.json()
        return data["context"]["data_points"]["sources"][0]["title"], data["context"]["thoughts"]

    assert (await top_title("text"))[0] == "Elsewhere"
    title, thoughts = await top_title("vectors")
    assert title == "Dogs" and thoughts[0]["props"]["retrieval_mode"] == "vectors"
    # hybrid is the default once embeddings are on
    body = ask(question)
    response = await AsyncClient().post("/chat", data=body, content_type="application/json")
    assert response.json()["context"]["thoughts"][0]["props"]["retrieval_mode"] == "hybrid"
    assert embedding_llm.embedding_requests[-1].json["input"] in ([question], question)


async def test_vector_mode_without_embeddings_is_a_clear_400(transactional_db):
    body = json.dumps(ask("pets?", context={"overrides": {"retrieval_mode": "vectors"}}))
    response = await AsyncClient().post("/chat", data=body, content_type="application/json")
    assert response.status_code == 400 and "needs embeddings" in response.json()["error"]
