"""The offline answerer's reading around a hit (knowledge/sentence_vectors.py): the chunks either
side of a hit without a page, in order, never another page, never another document."""

import pytest
from asgiref.sync import sync_to_async

from knowledge import sentence_vectors
from knowledge.models import Chunk, Document
from knowledge.search.base import SearchHit


def _hit(doc: Document, ordinal: int, label: str = "") -> SearchHit:
    text = Chunk.objects.get(document=doc, ordinal=ordinal).text
    return SearchHit(
        document_id=doc.pk,
        ordinal=ordinal,
        title=doc.title,
        text=text,
        citation="x",
        score=1.0,
        label=label,
    )


def _chunks(doc: Document, texts: list[str], labels: list[str] | None = None) -> None:
    labels = labels or [""] * len(texts)
    Chunk.objects.bulk_create(
        Chunk(document=doc, ordinal=i, text=t, label=lb, token_count=10)
        for i, (t, lb) in enumerate(zip(texts, labels, strict=True))
    )


_achunks = sync_to_async(_chunks)
_ahit = sync_to_async(_hit)


@pytest.mark.django_db(transaction=True)
async def test_a_hit_without_a_page_is_read_with_the_chunks_either_side():
    doc = await Document.objects.acreate(title="Equipment", body="-")
    other = await Document.objects.acreate(title="Other", body="-")
    texts = [f"Chunk {n} says thing number {n} about laptops." for n in range(5)]
    await _achunks(doc, texts)
    await _achunks(other, ["The other document says something else entirely."])
    hit = await _ahit(doc, 2)
    widened, similarity = await sentence_vectors.context("how often are laptops replaced", [hit])
    assert widened[0].text == "\n\n".join(texts[1:4])  # in order, the hit between its neighbours
    assert widened[0].citation == hit.citation and widened[0].ordinal == 2
    assert similarity == {}  # no sentence vectors yet: the words alone decide


@pytest.mark.django_db(transaction=True)
async def test_a_page_hit_keeps_its_text_and_no_neighbour_crosses_into_a_page():
    doc = await Document.objects.acreate(title="Guide", body="-")
    texts = ["Page one text about the plan.", "Page two text.", "More of page two.", "Notes."]
    await _achunks(doc, texts, ["page=1", "page=2", "page=2", ""])
    page_hit = await _ahit(doc, 1, "page=2")
    widened, _ = await sentence_vectors.context("plan", [page_hit])
    assert widened[0].text == texts[1]
    notes = await _ahit(doc, 3)
    widened, _ = await sentence_vectors.context("plan", [notes])
    assert widened[0].text == texts[3]  # its neighbour is on a page another citation names


@pytest.mark.django_db(transaction=True)
async def test_a_chunk_border_stays_a_sentence_border():
    """A chunk that ends without a full stop (a table's last row) must not run on into the next
    chunk's first sentence once they are read together: the merged "sentence" would have no
    vector (its key is no chunk's) and the table row's figure would be read as part of prose."""
    doc = await Document.objects.acreate(title="Org chart", body="-")
    texts = [
        "Department Head Headcount Engineering Dario Mancini 176 Sales Katharina Albers 61",
        "The leadership team meets every Monday at nine.",
    ]
    await _achunks(doc, texts)
    widened, _ = await sentence_vectors.context("how many engineers", [await _ahit(doc, 0)])
    read = sentence_vectors.sentences_of(widened[0].text)
    assert read == [s for t in texts for s in sentence_vectors.sentences_of(t)]


def test_a_sentence_is_embedded_under_its_heading_never_under_a_page_anchor():
    text = "The probation period is 6 months. Short label."
    assert sentence_vectors.embedded_texts(text, "Probation period") == [
        "Probation period: The probation period is 6 months."
    ]
    for label in ("page=3", "slide=2", "sheet=Q1 sales", ""):
        assert sentence_vectors.embedded_texts(text, label) == ["The probation period is 6 months."]
