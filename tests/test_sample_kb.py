"""The shipped sample knowledge base, ingested by the same commands `make run` uses, is the test
bed for retrieval quality: every question in sample_kb/QUESTIONS.json has a known answer."""

import asyncio
import json
import re
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import override_settings

from chat.llm.local import NOT_STATED, NOTHING_FOUND, LocalAnswerer, terms
from knowledge.access import EVERYTHING, access_for_sync
from knowledge.models import Document, IndexStatus
from knowledge.search import backend
from knowledge.search.base import SearchQuery

QUESTIONS = json.loads((Path(__file__).parent.parent / "sample_kb/QUESTIONS.json").read_text())
OFF_TOPIC = [
    "What is the capital of France?",
    "How do I bake sourdough bread?",
    "Who won the 1998 football world cup?",
    "What is the meaning of life?",
    "How tall is Mount Everest?",
]


def _norm(text):
    return " ".join(text.split())


def _search_all(questions, access, top=5):
    async def run():
        async with backend() as index:
            return [
                await index.search(SearchQuery(text=q, access=access, top=top)) for q in questions
            ]

    return asyncio.run(run())


@pytest.fixture(scope="module")
def storage(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sample-kb")
    return {"SEARCH_INDEX_PATH": folder / "index.sqlite3", "MEDIA_ROOT": folder / "media"}


@pytest.fixture(scope="module")
def sample_kb(django_db_setup, django_db_blocker, storage):
    with django_db_blocker.unblock(), override_settings(**storage):
        call_command("seed_demo", verbosity=0)
        call_command("sync_index", verbosity=0)
        yield
        # Committed outside any test's transaction: leave the database as we found it.
        from django.contrib.auth.models import Group, User
        from django_tasks_db.models import DBTaskResult

        from knowledge.models import Collection

        Document.objects.all().delete()
        Collection.objects.all().delete()
        User.objects.all().delete()
        Group.objects.all().delete()
        DBTaskResult.objects.all().delete()


@pytest.fixture(autouse=True)
def isolated_storage(settings, storage):
    """One index for the whole module (instead of conftest's one per test)."""
    for name, value in storage.items():
        setattr(settings, name, value)


@pytest.mark.django_db
def test_every_sample_document_is_ingested_and_indexed(sample_kb):
    docs = Document.objects.all()
    assert docs.count() >= 25
    assert not docs.exclude(index_status=IndexStatus.INDEXED).exists()
    names = set(docs.values_list("source_name", flat=True))
    assert {n.rsplit(".", 1)[1] for n in names} >= {
        "md", "html", "txt", "pdf", "docx", "pptx", "xlsx", "csv", "json",
    }  # fmt: skip
    restricted = docs.filter(groups__isnull=False).distinct().count()
    assert restricted >= 8


@pytest.mark.django_db
def test_retrieval_finds_the_answering_passage(sample_kb):
    results = _search_all([q["question"] for q in QUESTIONS], EVERYTHING)
    found = sum(
        any(all(_norm(a) in _norm(h.text) for a in q["answer_contains"]) for h in hits)
        for q, hits in zip(QUESTIONS, results, strict=True)
    )
    assert found / len(QUESTIONS) >= 0.95, f"recall@5 {found}/{len(QUESTIONS)}"


@pytest.mark.django_db
def test_offline_answerer_answers_and_admits_ignorance(sample_kb):
    results = _search_all([q["question"] for q in QUESTIONS], EVERYTHING)
    answerer = LocalAnswerer()
    answered = sum(
        all(_norm(a) in _norm(answerer.compose(q["question"], hits)) for a in q["answer_contains"])
        for q, hits in zip(QUESTIONS, results, strict=True)
    )
    assert answered / len(QUESTIONS) >= 0.8, f"answered {answered}/{len(QUESTIONS)}"
    pointed = []
    for question, hits in zip(OFF_TOPIC, _search_all(OFF_TOPIC, EVERYTHING), strict=True):
        answer = answerer.compose(question, hits)
        assert answer.startswith(NOT_STATED), question
        if not any(terms(question) & terms(h.text) for h in hits):
            assert answer == NOTHING_FOUND, question  # nothing in common: nothing to point to
            continue
        # Some word in common: the one closest sentence, quoted from the page it cites.
        (citation,) = re.findall(r"\[([^\]]+)\]", answer)
        quote = answer.split("“")[-1].split("”")[0]
        page = next(h for h in hits if h.citation == citation)
        assert quote in " ".join(page.text.split()) and terms(quote) & terms(question), question
        pointed.append(question)
    # Both kinds occur: "capital" is in the company history, "Mount Everest" in nothing.
    assert "What is the capital of France?" in pointed
    assert "How tall is Mount Everest?" not in pointed


def _citation(question):
    """How an answer cites the question's source: `deck.pptx#slide=3`, `guide.pdf#page=2`."""
    name = Path(question["source"]).name
    if question["page"]:
        return f"{name}#page={question['page']}"
    return f"{name}#{question['anchor']}" if question.get("anchor") else name


@pytest.mark.django_db
def test_an_answer_cites_the_page_slide_or_sheet_that_holds_it(sample_kb):
    results = _search_all([q["question"] for q in QUESTIONS], EVERYTHING)
    answerer = LocalAnswerer()
    answered, miscited = 0, []
    for q, hits in zip(QUESTIONS, results, strict=True):
        answer = _norm(answerer.compose(q["question"], hits))
        if all(_norm(a) in answer for a in q["answer_contains"]):
            answered += 1
            if f"[{_citation(q)}]" not in answer:
                miscited.append((q["question"], _citation(q)))
    assert len(miscited) <= 0.05 * answered, miscited
    # A slide deck's or workbook's answer names the slide or sheet it is on.
    assert not [m for m in miscited if "#" in m[1] and "#page=" not in m[1]], miscited


@pytest.mark.django_db
def test_restricted_documents_stay_out_of_anonymous_results(sample_kb):
    restricted = [q for q in QUESTIONS if q["restricted_to"]]
    assert len(restricted) >= 10
    public_sources = set(
        Document.objects.filter(groups__isnull=True).values_list("source_name", flat=True)
    )
    for hits in _search_all([q["question"] for q in restricted], access_for_sync(None)):
        assert {h.citation.split("#")[0] for h in hits} <= public_sources
