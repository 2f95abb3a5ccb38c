"""The embedded index's vectors in memory (knowledge/search/embedded_vectors.py): the same answers
as an exact scan of what the file holds, under access and collection filters, and kept current
when the file changes underneath, by this process, another instance, or another process; and the
text half's rank-then-filter giving what the filtered query gives."""

import asyncio
import os
import sqlite3
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from knowledge.access import ANONYMOUS, EVERYTHING, PUBLIC_GROUP, AccessFilter
from knowledge.search import embedded, embedded_vectors
from knowledge.search.base import IndexChunk, SearchBackendError, SearchQuery
from knowledge.search.embedded import EmbeddedSearchBackend

ROOT = Path(__file__).resolve().parent.parent
DIMS = 16
HR = AccessFilter(groups=frozenset({"hr"}))


def chunk(doc, vector, groups=(PUBLIC_GROUP,), collection="handbook", text="Policy text."):
    # One chunk per document, each its own page: a hit is a document.
    return IndexChunk(
        document_id=doc,
        ordinal=0,
        title=f"Doc {doc}",
        text=text,
        citation=f"doc{doc}.md",
        collection=collection,
        groups=tuple(groups),
        embedding=tuple(float(x) for x in vector),
    )


@pytest.fixture
async def index(tmp_path):
    backend = EmbeddedSearchBackend(tmp_path / "index.sqlite3")
    yield backend
    await backend.close()


async def nearest(backend, vector, access=EVERYTHING, top=5, collection=None):
    query = SearchQuery(
        "policy", access, top=top, vector=tuple(vector), mode="vectors", collection=collection
    )
    return [h.document_id for h in await backend.search(query)]


def exact(vectors, allowed, query, top):
    """Document ids (1-based rows) of the `top` best cosines among `allowed` rows."""
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    scores = unit @ (query / np.linalg.norm(query))
    scores[~allowed] = -np.inf
    return [int(i) + 1 for i in np.argsort(-scores)[:top] if allowed[i]]


async def test_nearest_match_an_exact_scan_under_access_and_collection(index):
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((300, DIMS)).astype(np.float32)
    restricted = rng.random(300) < 0.3
    for i, vector in enumerate(vectors):
        groups = ("hr",) if restricted[i] else (PUBLIC_GROUP,)
        collection = "hr" if i % 3 == 0 else "handbook"
        await index.upsert_document(i + 1, [chunk(i + 1, vector, groups, collection)])
    public = ~restricted
    in_hr = np.arange(300) % 3 == 0
    everyone = np.ones(300, bool)
    for query in rng.standard_normal((20, DIMS)).astype(np.float32):
        assert await nearest(index, query) == exact(vectors, everyone, query, 5)
        assert await nearest(index, query, ANONYMOUS) == exact(vectors, public, query, 5)
        assert await nearest(index, query, HR, top=8) == exact(vectors, everyone, query, 8)
        only_hr = AccessFilter(groups=frozenset({"hr"}), public=False)
        assert await nearest(index, query, only_hr) == exact(vectors, restricted, query, 5)
        assert await nearest(index, query, ANONYMOUS, collection="hr") == exact(
            vectors, public & in_hr, query, 5
        )
    query = vectors[0]
    assert await nearest(index, query, AccessFilter(public=False)) == []
    stranger = AccessFilter(groups=frozenset({"nobody"}), public=False)
    assert await nearest(index, query, stranger) == []
    assert await nearest(index, query, collection="no such collection") == []


async def test_a_document_replaced_or_deleted_leaves_the_vectors(index):
    await index.upsert_document(1, [chunk(1, [1.0] + [0.0] * (DIMS - 1))])
    await index.upsert_document(2, [chunk(2, [0.0, 1.0] + [0.0] * (DIMS - 2))])
    near_first = [1.0, 0.1] + [0.0] * (DIMS - 2)
    assert await nearest(index, near_first) == [1, 2]
    # Restricted now: gone for the public, there for its group.
    await index.upsert_document(1, [chunk(1, [1.0] + [0.0] * (DIMS - 1), groups=("hr",))])
    assert await nearest(index, near_first, ANONYMOUS) == [2]
    assert await nearest(index, near_first, HR) == [1, 2]
    await index.delete_document(1)
    assert await nearest(index, near_first) == [2]
    await index.delete_document(2)
    assert await nearest(index, near_first) == []
    await index.upsert_document(3, [chunk(3, near_first)])
    assert await nearest(index, near_first) == [3]


async def test_another_instance_writes_and_this_one_sees_it(tmp_path, monkeypatch):
    """Two backends on one file, as two processes would be (each has its own vectors)."""
    path = tmp_path / "index.sqlite3"
    reader, writer = EmbeddedSearchBackend(path), EmbeddedSearchBackend(path)
    try:
        await writer.upsert_document(1, [chunk(1, [1.0] + [0.0] * (DIMS - 1))])
        query = [0.0, 1.0] + [0.0] * (DIMS - 2)
        assert await nearest(reader, query) == [1]  # loaded
        await writer.upsert_document(2, [chunk(2, query)])
        assert await nearest(reader, query) == [2, 1]
        await writer.delete_document(1)
        assert await nearest(reader, query) == [2]
        # More changes than the log keeps: the reader loads everything again.
        rng = np.random.default_rng(5)
        monkeypatch.setattr(embedded, "CHANGES_KEPT", 3)
        extra = rng.standard_normal((8, DIMS))
        for i, vector in enumerate(extra):
            await writer.upsert_document(10 + i, [chunk(10 + i, vector)])
        (kept,) = sqlite3.connect(path).execute("SELECT count(*) FROM changes").fetchone()
        assert kept == 3
        everything = np.vstack([query, extra]).astype(np.float32)
        ids = [2, *range(10, 18)]
        expected = [ids[i - 1] for i in exact(everything, np.ones(9, bool), extra[4], 9)]
        assert await nearest(reader, extra[4], top=9) == expected
        # Rebuilt from scratch by the other: a new file epoch, nothing of the old left.
        await writer.drop_index()
        await writer.create_index()
        await writer.upsert_document(20, [chunk(20, query)])
        assert await nearest(reader, query, top=9) == [20]
    finally:
        await reader.close()
        await writer.close()


async def test_another_process_writes_and_this_one_sees_it(tmp_path):
    path = tmp_path / "index.sqlite3"
    reader = EmbeddedSearchBackend(path)
    try:
        await reader.upsert_document(1, [chunk(1, [1.0] + [0.0] * (DIMS - 1))])
        query = [0.0, 1.0] + [0.0] * (DIMS - 2)
        assert await nearest(reader, query) == [1]
        script = textwrap.dedent(
            f"""
            import asyncio, django
            django.setup()
            from knowledge.search.base import IndexChunk
            from knowledge.search.embedded import EmbeddedSearchBackend

            async def main():
                index = EmbeddedSearchBackend({str(path)!r})
                vector = tuple([0.0, 1.0] + [0.0] * {DIMS - 2})
                await index.upsert_document(2, [IndexChunk(2, 0, "Doc 2", "Policy text.",
                                                           "doc2.md", embedding=vector)])
                await index.delete_document(1)
                await index.close()

            asyncio.run(main())
            """
        )
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "ragsite.settings"}
        env["RAGSITE_DATA_DIR"] = str(tmp_path / "data")
        writer = await asyncio.create_subprocess_exec(
            sys.executable, "-c", script, cwd=ROOT, env=env, stderr=asyncio.subprocess.PIPE
        )
        _, errors = await asyncio.wait_for(writer.communicate(), 120)
        assert writer.returncode == 0, errors.decode()[-2000:]
        assert await nearest(reader, query) == [2]
    finally:
        await reader.close()


async def test_vectors_of_another_size_fail_without_retry(index):
    await index.upsert_document(1, [chunk(1, [1.0] + [0.0] * (DIMS - 1))])
    with pytest.raises(SearchBackendError) as failure:
        await nearest(index, [1.0, 0.0])
    assert not failure.value.transient
    await index.upsert_document(2, [chunk(2, [1.0, 0.0])])  # another model, no rebuild
    with pytest.raises(SearchBackendError, match="rebuild") as failure:
        await nearest(index, [1.0, 0.0])
    assert not failure.value.transient
    await index.delete_document(1)  # every vector now of the new size: fine again
    assert await nearest(index, [1.0, 0.0]) == [2]


async def test_a_schema_2_file_is_upgraded_and_its_vectors_found(tmp_path):
    path = tmp_path / "index.sqlite3"
    old = EmbeddedSearchBackend(path)
    await old.upsert_document(1, [chunk(1, [1.0] + [0.0] * (DIMS - 1))])
    await old.close()
    conn = sqlite3.connect(path)
    conn.executescript(  # as schema 2 left it: no change log, no epoch
        "DROP TABLE changes; DROP TABLE generation;"
        "CREATE TABLE generation (id INTEGER PRIMARY KEY CHECK (id = 1), n INTEGER NOT NULL);"
        "INSERT INTO generation VALUES (1, 1); PRAGMA user_version = 2;"
    )
    conn.close()
    backend = EmbeddedSearchBackend(path)
    try:
        assert await nearest(backend, [1.0] + [0.0] * (DIMS - 1)) == [1]
        await backend.upsert_document(2, [chunk(2, [0.0, 1.0] + [0.0] * (DIMS - 2))])
        assert await nearest(backend, [0.0, 1.0] + [0.0] * (DIMS - 2)) == [2, 1]
    finally:
        await backend.close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone() == (embedded.SCHEMA_VERSION,)
    (epoch,) = conn.execute("SELECT epoch FROM generation").fetchone()
    assert len(epoch) == 16


async def test_text_rank_then_filter_finds_what_the_filter_keeps(tmp_path):
    """Thirty public passages outrank three restricted ones for "rota"; with room for ten
    candidates, a reader of the restricted group alone still gets its three (the filtered query
    takes over), and every reader gets what an uncapped index gives."""
    capped = EmbeddedSearchBackend(tmp_path / "index.sqlite3", text_candidates=10)
    uncapped = EmbeddedSearchBackend(tmp_path / "index.sqlite3", text_candidates=100_000)
    try:
        for doc in range(1, 31):
            words = "Rota rota rota for the canteen" + " and" * doc  # no two scores alike
            await capped.upsert_document(doc, [_text(doc, words)])
        for doc in range(31, 34):
            words = "Rota for HR, with many other words about leave, sickness and holidays."
            await capped.upsert_document(doc, [_text(doc, words, groups=("hr",))])
        only_hr = AccessFilter(groups=frozenset({"hr"}), public=False)
        for access in (only_hr, ANONYMOUS, HR, EVERYTHING):
            for top in (2, 5):
                query = SearchQuery("rota", access, top=top)
                got = [(h.document_id, h.score) for h in await capped.search(query)]
                assert got == [(h.document_id, h.score) for h in await uncapped.search(query)]
        hits = await capped.search(SearchQuery("rota", only_hr, top=5))
        assert sorted(h.document_id for h in hits) == [31, 32, 33]
        assert [h.document_id for h in await capped.search(SearchQuery("rota", NOBODY))] == []
    finally:
        await capped.close()
        await uncapped.close()


NOBODY = AccessFilter(public=False)


def _text(doc, text, groups=(PUBLIC_GROUP,)):
    return IndexChunk(doc, 0, f"Doc {doc}", text, f"doc{doc}.md", groups=tuple(groups))


# The int8 scan and its exact re-rank, on Snapshots built directly (thousands of rows, so the
# candidates are a small part of what the filters allow).


@pytest.fixture
def int8_scan(monkeypatch):
    """simsimd, counting its scans, so a test knows the int8 path ran."""
    if embedded_vectors.simsimd is None:
        if os.environ.get("CI") == "true":
            pytest.fail("simsimd is not installed (requirements.txt pins it)")
        pytest.skip("simsimd is not installed")
    real = embedded_vectors.simsimd
    calls = []

    class Counting:
        def cdist(self, *args, **kwargs):
            calls.append(1)
            return real.cdist(*args, **kwargs)

    monkeypatch.setattr(embedded_vectors, "simsimd", Counting())
    return calls


def snapshot_of(vectors, groups, collections, rowids=None):
    """A Snapshot of one chunk per document; document i+1 holds row i, in `groups[i]`."""
    rowids = range(1, len(vectors) + 1) if rowids is None else rowids
    rows = [
        (int(rowid), i + 1, collections[i], np.asarray(v, np.float32).tobytes())
        for i, (rowid, v) in enumerate(zip(rowids, vectors, strict=True))
    ]
    doc_groups = {i + 1: list(g) for i, g in enumerate(groups)}
    base = embedded_vectors.Snapshot("epoch", 1)
    return embedded_vectors._append(base, rows, doc_groups, len(vectors[0]))


def exact_scan(snapshot, query, allowed, k):
    """(rowid, cosine) of the k best allowed rows by a float32 scan of every row: best first,
    equal cosines by rowid."""
    n = snapshot.count
    q = np.asarray(query, np.float32)
    q = q / np.linalg.norm(q)
    scores = np.einsum("ij,j->i", snapshot.matrix[:n], q)
    rows = np.flatnonzero(allowed & snapshot.alive)
    order = np.lexsort((snapshot.rowids[rows], -scores[rows]))[:k]
    return [(int(snapshot.rowids[rows[i]]), float(scores[rows[i]])) for i in order]


def clustered(rng, count, dims, centres=40):
    """Unit vectors around a few centres, as embeddings of related passages are: near
    neighbours have close cosines, which is where an int8 score could misorder them."""
    middle = rng.standard_normal((centres, dims)).astype(np.float32)
    vectors = middle[rng.integers(0, centres, count)]
    vectors = vectors + 0.6 * rng.standard_normal((count, dims)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_int8_candidates_then_exact_rerank_equal_an_exact_scan(int8_scan):
    rng = np.random.default_rng(11)
    count, dims = 6000, 48
    vectors = clustered(rng, count, dims)
    groups = [("hr",) if x < 0.3 else (PUBLIC_GROUP,) for x in rng.random(count)]
    collections = ["hr" if i % 4 == 0 else "handbook" for i in range(count)]
    rowids = rng.permutation(np.arange(10, 10 + 3 * count, 3))  # rowids not in row order
    snapshot = snapshot_of(vectors, groups, collections, rowids)
    public = np.array([g == (PUBLIC_GROUP,) for g in groups])
    in_hr = np.arange(count) % 4 == 0
    everyone = np.ones(count, bool)
    # Questions near a passage (as real ones are) and anywhere.
    near = vectors[rng.integers(0, count, 60)] + 0.1 * rng.standard_normal((60, dims))
    queries = np.vstack([near, rng.standard_normal((20, dims))]).astype(np.float32)
    for query in queries:
        for k in (1, 5, 10, 30):
            cases = [
                (None, None, everyone),
                ([PUBLIC_GROUP], None, public),
                (["hr"], None, ~public),
                ([PUBLIC_GROUP, "hr"], "hr", in_hr),
                ([PUBLIC_GROUP], "handbook", public & ~in_hr),
            ]
            for groups_wanted, collection, allowed in cases:
                got = snapshot.nearest(tuple(query), groups_wanted, collection, k)
                assert got == exact_scan(snapshot, query, allowed, k)
    assert len(int8_scan) == len(queries) * 4 * 5  # every one of them went through int8


def test_rerank_edge_cases(int8_scan):
    rng = np.random.default_rng(12)
    count, dims = 3000, 32
    vectors = clustered(rng, count, dims)
    # A few duplicates, spread over the rows: equal cosines, answered by rowid.
    for i in (5, 700, 1500, 2999):
        vectors[i] = vectors[100]
    groups = [("rare",) if i < 3 else (PUBLIC_GROUP,) for i in range(count)]
    snapshot = snapshot_of(vectors, groups, ["handbook"] * count)
    everyone = np.ones(count, bool)

    got = snapshot.nearest(tuple(vectors[100]), None, None, 5)
    assert [rowid for rowid, _ in got] == [6, 101, 701, 1501, 3000]
    assert len({cosine for _, cosine in got}) == 1
    assert got == exact_scan(snapshot, vectors[100], everyone, 5)
    # k beyond what the filter allows: all of those, no more.
    rare = snapshot.nearest(tuple(vectors[0]), ["rare"], None, 10)
    assert rare == exact_scan(snapshot, vectors[0], np.arange(count) < 3, 10)
    assert len(rare) == 3
    # Filters that allow nothing.
    assert snapshot.nearest(tuple(vectors[0]), [], None, 5) == []
    assert snapshot.nearest(tuple(vectors[0]), ["nobody"], None, 5) == []
    assert snapshot.nearest(tuple(vectors[0]), None, "no such collection", 5) == []
    assert snapshot.nearest(tuple(vectors[0]), None, None, 0) == []
    # Deleted rows (the duplicates among them) are never candidates.
    gone = np.zeros(count, bool)
    gone[[100, 700, 2999]] = True
    gone[rng.integers(0, count, 400)] = True
    alive = replace(snapshot, alive=snapshot.alive & ~gone)
    for query in vectors[rng.integers(0, count, 20)]:
        assert alive.nearest(tuple(query), None, None, 8) == exact_scan(alive, query, everyone, 8)
    got = alive.nearest(tuple(vectors[100]), None, None, 3)
    assert [rowid for rowid, _ in got][:2] == [6, 1501]
    assert int8_scan  # the int8 path, not the few-rows one


def test_a_row_beyond_the_scale_requantises_every_row(int8_scan):
    rng = np.random.default_rng(13)
    dims = 32
    vectors = clustered(rng, 2000, dims)
    snapshot = snapshot_of(vectors, [(PUBLIC_GROUP,)] * 2000, ["handbook"] * 2000)
    peak = float(np.abs(snapshot.matrix[:2000]).max())
    assert snapshot.scale == pytest.approx(127 / peak)
    n = snapshot.count
    assert np.abs(snapshot.codes[:n].astype(int)).max() == 127

    axis = np.zeros(dims, np.float32)
    axis[3] = 2.0  # normalised to a component of 1, beyond the old scale's reach
    row = (5000, 5000, "handbook", axis.tobytes())
    wider = embedded_vectors._append(snapshot, [row], {5000: [PUBLIC_GROUP]}, dims)
    assert wider.scale == pytest.approx(127.0)
    assert wider.codes is not snapshot.codes  # the old snapshot's arrays are left alone
    n = wider.count
    codes = wider.codes[:n].astype(int)
    assert np.array_equal(codes, np.rint(wider.matrix[:n] * np.float32(127.0)))
    assert wider.nearest(tuple(axis), None, None, 1)[0][0] == 5000
    query = vectors[7]
    assert wider.nearest(tuple(query), None, None, 10) == exact_scan(
        wider, query, np.ones(n, bool), 10
    )

    # A row within the scale is written in place, quantised with the scale in force.
    inside = embedded_vectors._append(
        wider, [(5001, 5001, "handbook", vectors[9].tobytes())], {5001: [PUBLIC_GROUP]}, dims
    )
    assert inside.codes is wider.codes and inside.scale == wider.scale
    assert np.array_equal(inside.codes[n], np.rint(vectors[9] * np.float32(127.0)))


def test_without_simsimd_the_float32_scan_answers(monkeypatch, caplog):
    monkeypatch.setattr(embedded_vectors, "simsimd", None)
    monkeypatch.setattr(embedded_vectors, "_warned", False)
    rng = np.random.default_rng(14)
    count, dims = 2000, 24
    vectors = clustered(rng, count, dims)
    groups = [("hr",) if i % 5 == 0 else (PUBLIC_GROUP,) for i in range(count)]
    snapshot = snapshot_of(vectors, groups, ["handbook"] * count)
    public = np.arange(count) % 5 != 0
    with caplog.at_level("WARNING", logger=embedded_vectors.__name__):
        for query in vectors[rng.integers(0, count, 10)]:
            got = snapshot.nearest(tuple(query), [PUBLIC_GROUP], None, 5)
            assert got == exact_scan(snapshot, query, public, 5)
    warnings = [r for r in caplog.records if "simsimd" in r.getMessage()]
    assert len(warnings) == 1  # once, not per question


def test_top_rows_equal_a_full_partition_when_the_sample_misleads():
    rng = np.random.default_rng(15)
    for trial in range(200):
        n = int(rng.integers(70, 5000))
        values = rng.integers(-50, 50, n).astype(np.float32)  # many ties
        if trial % 3 == 0:  # the best only where the sample never looks
            unsampled = np.flatnonzero(np.arange(n) % embedded_vectors._SAMPLE_STRIDE)
            values[rng.choice(unsampled, 80, replace=False)] = 1000 + rng.integers(0, 5, 80)
        if trial % 3 == 1:  # the sample holds the best, so too few others clear its guess
            values[:: embedded_vectors._SAMPLE_STRIDE] += 1000
        if trial % 5 == 0:
            values[rng.random(n) < 0.5] = -np.inf
        pool = int(rng.integers(1, min(n, 300)))
        if np.isinf(np.sort(values)[-pool]):
            continue  # callers ask for fewer than the rows allowed
        cut = np.sort(values)[-pool]
        expected = np.flatnonzero(values >= cut)
        assert np.array_equal(embedded_vectors._top_rows(values, pool), expected)
