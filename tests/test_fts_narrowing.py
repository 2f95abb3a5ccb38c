"""The embedded index's text half on a large index: when a question's common words match more
passages than BM25 can score cheaply, only passages holding a rarer word or two common ones are
ranked. Budgets are lowered here so that a few dozen passages make an index "large"."""

import pytest

from knowledge.access import EVERYTHING
from knowledge.search import fts_terms
from knowledge.search.base import IndexChunk, SearchQuery
from knowledge.search.embedded import EmbeddedSearchBackend


def chunk(doc, ordinal, text, title="Guide"):
    return IndexChunk(
        document_id=doc,
        ordinal=ordinal,
        title=title,
        text=text,
        citation=f"doc-{doc}.pdf#page={ordinal + 1}",
        label=f"page={ordinal + 1}",
    )


@pytest.fixture
async def index(tmp_path, monkeypatch):
    monkeypatch.setattr(fts_terms, "SCORE_BUDGET", 20)
    monkeypatch.setattr(fts_terms, "COMMON_ROWS", 8)
    backend = EmbeddedSearchBackend(tmp_path / "index.sqlite3")
    # "claim" in 19 passages, "form" in 30, both in 12, the rare "ombudsman" in one.
    texts = [f"claim notes {i}" for i in range(5)] + [f"form notes {i}" for i in range(18)]
    texts += [f"claim form steps and more words here {i}" for i in range(12)]
    texts += ["the ombudsman hears appeals about a claim"]
    texts += [f"other matters {i}" for i in range(100)]
    await backend.upsert_document(1, [chunk(1, i, t) for i, t in enumerate(texts)])
    # Short, and "claim" in its title too: BM25 over every match ranks it above the rest.
    await backend.upsert_document(2, [chunk(2, 0, "claim claim", title="Claim")])
    yield backend
    await backend.close()


def test_a_small_index_is_never_narrowed(tmp_path):
    import sqlite3

    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE VIRTUAL TABLE chunks_fts USING fts5(title, text)")
    conn.executemany("INSERT INTO chunks_fts (title, text) VALUES ('', ?)", [("claim form",)] * 50)
    # 50 passages, far below the real budget: every match is scored, whatever the words.
    assert fts_terms.narrowed_query(conn, ['"claim"', '"form"'], {}) is None


async def test_common_words_qualify_a_passage_only_together(index):
    hits = await index.search(SearchQuery(text="claim form", access=EVERYTHING, top=4))
    # Scored by every match, the short passage titled "Claim" ranks first; narrowed, only
    # passages holding both words are candidates.
    assert len(hits) == 4
    assert all("claim form" in h.text for h in hits)
    plain = await index.search(SearchQuery(text="claim", access=EVERYTHING, top=1))
    assert plain[0].document_id == 2  # one word alone is not narrowed


async def test_a_rare_word_keeps_its_passage_first(index):
    hits = await index.search(SearchQuery(text="ombudsman claim form", access=EVERYTHING, top=3))
    assert "ombudsman" in hits[0].text


async def test_too_few_narrow_matches_fall_back_to_every_match(index):
    # Only one passage holds the rare word and no passage holds both common ones with it: the
    # narrow query finds fewer than asked, so the whole question is ranked as before.
    hits = await index.search(SearchQuery(text="ombudsman notes", access=EVERYTHING, top=5))
    assert len(hits) == 5
    assert "ombudsman" in hits[0].text


def test_term_counts_are_remembered(index):
    counts: dict[str, int] = {}
    conn = index._connect()
    try:
        query = fts_terms.narrowed_query(conn, ['"claim"', '"form"', '"ombudsman"'], counts)
    finally:
        conn.close()
    assert counts == {'"claim"': 19, '"form"': 30, '"ombudsman"': 1}
    assert query == '"ombudsman" OR ("claim" AND "form")'
