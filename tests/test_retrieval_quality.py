"""What the embedded index does for questions as people type them: misspelt words, a document
named among near-twins, one hit per page, and index files written by an older version."""

import sqlite3

import pytest

from knowledge.access import EVERYTHING
from knowledge.chunking import split_sentences
from knowledge.search.base import IndexChunk, SearchQuery
from knowledge.search.embedded import SCHEMA_VERSION, EmbeddedSearchBackend


def chunk(doc, ordinal, text, title="Member guide", page=1, citation=None):
    return IndexChunk(
        document_id=doc,
        ordinal=ordinal,
        title=title,
        text=text,
        citation=citation or f"doc-{doc}.pdf#page={page}",
        label=f"page={page}",
    )


@pytest.fixture
async def index(tmp_path):
    backend = EmbeddedSearchBackend(tmp_path / "index.sqlite3")
    yield backend
    await backend.close()


async def ask(index, text, top=5):
    return await index.search(SearchQuery(text=text, access=EVERYTHING, top=top))


async def test_a_misspelt_word_finds_the_page_that_spells_it(index):
    await index.upsert_document(
        1,
        [
            chunk(1, 0, "Hearing services include tests and hearing aids.", page=1),
            chunk(1, 1, "Dental care includes check-ups and fillings.", page=2),
        ],
    )
    hits = await ask(index, "servcies for my ears")
    assert [h.label for h in hits] == ["page=1"]
    # A correctly spelled unknown word stays what it is and matches nothing.
    assert await ask(index, "acupuncture") == []


async def test_each_page_is_one_hit_and_carries_its_matching_chunks(index):
    await index.upsert_document(
        1,
        [
            chunk(1, 0, "Glasses allowance: EUR 150 for glasses", page=3),  # a table row: no stop
            chunk(1, 1, "Glasses need a prescription for glasses.", page=3),
            chunk(1, 2, "Glasses bought abroad are reimbursed.", page=4),
        ],
    )
    hits = await ask(index, "glasses", top=2)
    assert [h.label for h in hits] == ["page=3", "page=4"]
    assert "EUR 150" in hits[0].text and "prescription" in hits[0].text
    # The chunks stay apart as sentences: the row does not run on into the next chunk.
    assert split_sentences(hits[0].text) == [
        "Glasses allowance: EUR 150 for glasses",
        "Glasses need a prescription for glasses.",
    ]


async def test_the_document_a_question_names_ranks_above_its_twin(index):
    text = "Hearing aids are paid up to EUR {} per ear. Hearing aids need a referral."
    await index.upsert_document(
        1, [chunk(1, 0, text.format(600) + " Hearing aids.", title="Essential plan guide")]
    )
    await index.upsert_document(2, [chunk(2, 0, text.format(1800), title="Premier plan guide")])
    unnamed = await ask(index, "how much for hearing aids")
    assert unnamed[0].document_id == 1  # the essential page says it more often
    named = await ask(index, "premier: how much for hearing aids")
    assert named[0].document_id == 2


async def test_a_function_word_in_a_title_names_no_document(index):
    """The "and" of "Health and Safety" is no reason to rank it above the page that answers
    (boosted as named, it would: BM25 has the two pages a few percent apart)."""
    equipment = "The furniture budget pays for a desk and a chair."
    health = (
        "Budget for desk and chair complaints: ask for an assessment of your desk and chair. "
        "Ask for help."
    )
    await index.upsert_document(1, [chunk(1, 0, equipment, title="Equipment")])
    await index.upsert_document(2, [chunk(2, 0, health, title="Health and Safety")])
    for doc in range(3, 8):  # other documents, so that the question's words are rare
        await index.upsert_document(doc, [chunk(doc, 0, f"Topic {doc} of the handbook.")])
    hits = await ask(index, "budget for a desk and chair")
    assert [h.title for h in hits] == ["Equipment", "Health and Safety"]


async def test_an_index_file_from_before_the_vocabulary_is_upgraded_in_place(tmp_path):
    path = tmp_path / "old.sqlite3"
    old = sqlite3.connect(path)
    old.executescript(
        """
        CREATE TABLE chunks (rowid INTEGER PRIMARY KEY, document_id INTEGER NOT NULL,
            ordinal INTEGER NOT NULL, citation TEXT NOT NULL, label TEXT NOT NULL,
            collection TEXT NOT NULL, embedding BLOB, UNIQUE (document_id, ordinal));
        CREATE TABLE document_groups (document_id INTEGER NOT NULL, grp TEXT NOT NULL,
            PRIMARY KEY (grp, document_id)) WITHOUT ROWID;
        CREATE VIRTUAL TABLE chunks_fts USING fts5(title, text,
            tokenize = 'porter unicode61 remove_diacritics 2');
        INSERT INTO chunks VALUES (1, 7, 0, 'old.pdf#page=2', 'page=2', '', NULL);
        INSERT INTO document_groups VALUES (7, 'public');
        INSERT INTO chunks_fts (rowid, title, text)
            VALUES (1, 'Travel policy', 'The per diem abroad is EUR 48.');
        """
    )
    old.close()
    backend = EmbeddedSearchBackend(path)
    try:
        hits = await ask(backend, "per diem arbaod")
        assert [(h.document_id, h.label) for h in hits] == [(7, "page=2")]
        assert await backend.document_ids() == {7}
    finally:
        await backend.close()
    (version,) = sqlite3.connect(path).execute("PRAGMA user_version").fetchone()
    assert version == SCHEMA_VERSION


def test_a_real_word_is_not_taken_for_a_typo_of_another():
    from knowledge.search.spelling import Vocabulary

    vocabulary = Vocabulary(["read", "portal", "services", "hearing", "thermostat"])
    assert vocabulary.correct("servcies") == "services"  # two letters swapped
    assert vocabulary.correct("hearin") == "hearing"  # one left out
    assert vocabulary.correct("therostat") == "thermostat"
    assert vocabulary.correct("bread") == "bread"  # not "read": first letters differ


async def test_the_vocabulary_grows_with_each_document_without_a_full_read(index, monkeypatch):
    """A new document's words are corrected to at once; the index's whole vocabulary (a second
    at 100k passages) is read once, not after every write, until enough documents changed."""
    from knowledge.search import embedded

    monkeypatch.setattr(embedded, "_VOCABULARY_GROWTH", 3)
    full_reads = []
    read_whole = embedded.Vocabulary.__init__

    def counted(self, words):
        full_reads.append(len(words))
        read_whole(self, words)

    monkeypatch.setattr(embedded.Vocabulary, "__init__", counted)
    words = ["physiotherapy", "orthodontics", "acupuncture"]
    for doc, word in enumerate(words, start=1):
        await index.upsert_document(doc, [chunk(doc, 0, f"Cover for {word} sessions.")])
        typo = word[:4] + word[5:]  # one letter left out
        assert [h.document_id for h in await ask(index, typo)] == [doc]
    assert len(full_reads) == 1
    # A removed document's words are forgotten at the next full read, which more changes bring.
    await index.delete_document(1)
    await index.upsert_document(4, [chunk(4, 0, "Glasses allowance.")])
    await ask(index, "glasses")
    assert len(full_reads) == 2
    assert await ask(index, "physotherapy") == []
