"""The embedded search index: SQLite FTS5 (BM25) in its own file, plus cosine over the stored
vectors (kept in memory as one matrix per process: embedded_vectors.py) for vector and hybrid
retrieval. No server, no configuration.

Access and collection filters run inside the SQL query, or over the vectors' per-row arrays. Every
call runs in a worker thread so the event loop never waits on the disk or the matrix; each thread
keeps its own connection (sqlite3 connections are not shareable across threads), and WAL lets
readers go on while a document is being replaced. A search reads in one transaction, so its text
half, its vectors' generation and the passages it returns all come from the same state of the
file.
"""

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from knowledge.access import PUBLIC_GROUP
from knowledge.search.base import IndexChunk, SearchBackendError, SearchHit, SearchQuery
from knowledge.search.embedded_vectors import CHANGES_KEPT, VectorCache
from knowledge.search.fts_terms import fts_terms, narrowed_query
from knowledge.search.fusion import score_fusion
from knowledge.search.naming import prefer_named
from knowledge.search.pages import distinct_pages
from knowledge.search.spelling import Vocabulary, words_of

_SCHEMA = """
CREATE TABLE IF NOT EXISTS chunks (
    rowid INTEGER PRIMARY KEY,
    document_id INTEGER NOT NULL,
    ordinal INTEGER NOT NULL,
    citation TEXT NOT NULL,
    label TEXT NOT NULL,
    collection TEXT NOT NULL,
    embedding BLOB,
    UNIQUE (document_id, ordinal)
);
CREATE TABLE IF NOT EXISTS document_groups (
    document_id INTEGER NOT NULL,
    grp TEXT NOT NULL,
    PRIMARY KEY (grp, document_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS document_groups_doc ON document_groups (document_id);
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(
    title, text, tokenize = 'porter unicode61 remove_diacritics 2'
);
CREATE TABLE IF NOT EXISTS words (
    word TEXT NOT NULL,
    document_id INTEGER NOT NULL,
    PRIMARY KEY (word, document_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS words_doc ON words (document_id);
CREATE TABLE IF NOT EXISTS generation (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    n INTEGER NOT NULL,
    epoch TEXT NOT NULL DEFAULT ''
);
INSERT OR IGNORE INTO generation (id, n, epoch) VALUES (1, 0, lower(hex(randomblob(8))));
CREATE TABLE IF NOT EXISTS changes (
    generation INTEGER PRIMARY KEY,
    document_id INTEGER NOT NULL
);
"""
# PRAGMA user_version of the index file. Older files are brought up to date in place (_prepare):
# 0 or 1, before the vocabulary (`words`) existed, from the text they already hold; 2, before the
# change log (`changes`) and the file's random `epoch`, which tell each process's in-memory
# vectors what to reload.
SCHEMA_VERSION = 3
# Chunks fetched per page asked for, so that pages with several matching chunks still leave
# `top` distinct pages.
_CHUNKS_PER_PAGE = 3
_VOCABULARY_GROWTH = 1_000


class EmbeddedSearchBackend:
    name = "embedded"

    def __init__(self, path: Path | str, text_candidates: int = 1000):
        self.path = str(path)
        # BM25's best this many matches are ranked first, the access filter applied to them after.
        self.text_candidates = text_candidates
        self._vectors = VectorCache()
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._schema_ready = False
        # Two threads of its own, not the loop's default pool: a query is a millisecond of
        # SQLite, and a few warm threads take it with fewer wake-ups and GIL hand-offs.
        self._executor: ThreadPoolExecutor | None = None
        # A hybrid search's vector scan runs here while its own thread runs the text half:
        # both wait without the GIL (numpy's loop, SQLite), so on two cores they overlap.
        self._scans: ThreadPoolExecutor | None = None
        # ((epoch, generation), vocabulary)
        # (version, vocabulary, documents grown into it since it was read whole)
        self._vocabulary: tuple[tuple[str, int], Vocabulary, int] | None = None

    # -- plumbing ---------------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        try:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            # check_same_thread=False only lets close() run elsewhere; each thread uses its own.
            conn = sqlite3.connect(
                self.path, timeout=30, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            # Back-to-back syncs can keep a checkpoint from ever restarting the log, which then
            # grows by every page each one touches; past this it is cut back once checkpointed.
            conn.execute("PRAGMA journal_size_limit=67108864")
        except (sqlite3.Error, OSError) as exc:
            raise SearchBackendError(f"cannot open the search index at {self.path}: {exc}") from exc
        self._local.conn = conn
        with self._lock:
            self._connections.append(conn)
        return conn

    def _run[T, *Ts](self, fn: Callable[[sqlite3.Connection, *Ts], T], *args: *Ts) -> T:
        try:
            conn = self._connect()
            if not self._schema_ready:
                _prepare(conn)
                self._schema_ready = True
            return fn(conn, *args)
        except sqlite3.Error as exc:
            raise SearchBackendError(f"search index error: {exc}") from exc

    async def _call[T, *Ts](self, fn: Callable[[sqlite3.Connection, *Ts], T], *args: *Ts) -> T:
        loop = asyncio.get_running_loop()
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="search")
        return await loop.run_in_executor(self._executor, self._run, fn, *args)

    # -- index management -------------------------------------------------------------------------
    async def create_index(self) -> None:
        await self._call(lambda conn: None)

    async def drop_index(self) -> None:
        def drop(conn: sqlite3.Connection) -> None:
            conn.executescript(
                "DROP TABLE IF EXISTS chunks; DROP TABLE IF EXISTS document_groups;"
                "DROP TABLE IF EXISTS chunks_fts; DROP TABLE IF EXISTS words;"
                "DROP TABLE IF EXISTS generation; DROP TABLE IF EXISTS changes;"
                "PRAGMA user_version = 0;"
            )
            self._schema_ready = False
            self._vocabulary = None
            self._vectors.clear()

        await self._call(drop)

    async def close(self) -> None:
        for pool in (self._executor, self._scans):
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)
        self._executor = self._scans = None
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._local = threading.local()
        self._vectors.clear()

    # -- writes -----------------------------------------------------------------------------------
    async def upsert_document(
        self, document_id: int, chunks: list[IndexChunk], indexed_count: int = 0
    ) -> None:
        await self._call(self._replace, document_id, chunks)

    async def delete_document(self, document_id: int, indexed_count: int = 0) -> None:
        await self._call(self._replace, document_id, [])

    @staticmethod
    def _replace(conn: sqlite3.Connection, document_id: int, chunks: list[IndexChunk]) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(
                "DELETE FROM chunks_fts WHERE rowid IN "
                "(SELECT rowid FROM chunks WHERE document_id = ?)",
                (document_id,),
            )
            conn.execute("DELETE FROM chunks WHERE document_id = ?", (document_id,))
            conn.execute("DELETE FROM document_groups WHERE document_id = ?", (document_id,))
            conn.execute("DELETE FROM words WHERE document_id = ?", (document_id,))
            for chunk in chunks:
                vector = (
                    np.asarray(chunk.embedding, dtype=np.float32).tobytes()
                    if chunk.embedding
                    else None
                )
                cur = conn.execute(
                    "INSERT INTO chunks (document_id, ordinal, citation, label, collection, "
                    "embedding) VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        document_id,
                        chunk.ordinal,
                        chunk.citation,
                        chunk.label,
                        chunk.collection,
                        vector,
                    ),
                )
                conn.execute(
                    "INSERT INTO chunks_fts (rowid, title, text) VALUES (?, ?, ?)",
                    (cur.lastrowid, chunk.title, chunk.text),
                )
            if chunks:
                conn.executemany(
                    "INSERT INTO document_groups (document_id, grp) VALUES (?, ?)",
                    [(document_id, g) for g in sorted(set(chunks[0].groups))],
                )
                _add_words(conn, document_id, [(c.title, c.text) for c in chunks])
            conn.execute("UPDATE generation SET n = n + 1")
            # In the same transaction: whoever sees the new generation sees what it changed.
            conn.execute(
                "INSERT INTO changes (generation, document_id) SELECT n, ? FROM generation",
                (document_id,),
            )
            conn.execute(
                "DELETE FROM changes WHERE generation <= (SELECT n FROM generation) - ?",
                (CHANGES_KEPT,),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    async def ping(self) -> None:
        await self._call(lambda conn: conn.execute("SELECT 1 FROM chunks LIMIT 1").fetchall())

    # -- reads ------------------------------------------------------------------------------------
    async def document_ids(self) -> set[int]:
        return await self._call(
            lambda conn: {r[0] for r in conn.execute("SELECT DISTINCT document_id FROM chunks")}
        )

    async def search(self, query: SearchQuery) -> list[SearchHit]:
        return await self._call(self._search, query)

    def search_sync(self, query: SearchQuery) -> list[SearchHit]:
        """The same search for a caller without an event loop, on the caller's thread."""
        return self._run(self._search, query)

    async def search_then[T](
        self, query: SearchQuery, then: Callable[[list[SearchHit]], T]
    ) -> tuple[list[SearchHit], T]:
        """(hits, then(hits)): `then` (sync, it may use the database) runs on the search's own
        thread, right after the search, which saves a thread hop per question."""

        def both(conn: sqlite3.Connection, query: SearchQuery) -> tuple[list[SearchHit], T]:
            hits = self._search(conn, query)
            return hits, then(hits)

        return await self._call(both, query)

    def _search(self, conn: sqlite3.Connection, query: SearchQuery) -> list[SearchHit]:
        """The best chunks, re-ranked for the document the question names, one per page."""
        conn.execute("BEGIN")  # one snapshot of the file for every statement below
        try:
            mode = query.mode if query.vector is not None else "text"
            fetch = query.top * _CHUNKS_PER_PAGE
            generation, epoch = conn.execute("SELECT n, epoch FROM generation").fetchone()
            vocabulary = self.vocabulary(conn, (epoch, generation))
            terms = {vocabulary.correct(w) for w in words_of(query.text)}
            if mode == "text":
                hits = self._text_search(conn, query, vocabulary, fetch)
            elif mode == "vectors":
                scan = self._scan(conn, query, fetch, epoch, generation)
                hits = self._vector_hits(conn, scan())
            else:
                if self._scans is None:
                    with self._lock:
                        if self._scans is None:
                            self._scans = ThreadPoolExecutor(2, thread_name_prefix="search-scan")
                nearest = self._scans.submit(self._scan(conn, query, fetch, epoch, generation))
                text_hits = self._text_search(conn, query, vocabulary, fetch)
                vector_hits = self._vector_hits(conn, nearest.result())
                hits = score_fusion(text_hits, vector_hits, fetch)
            return distinct_pages(prefer_named(hits, terms), query.top)
        finally:
            if conn.in_transaction:
                conn.execute("COMMIT")

    def filter_expression(self, query: SearchQuery) -> str:
        where, params = self._filters(query)
        for param in params:
            where = where.replace("?", f"'{param}'", 1)
        return where

    @staticmethod
    def _filters(query: SearchQuery) -> tuple[str, list[str]]:
        clauses: list[str] = []
        params: list[str] = []
        if not query.access.all:
            allowed = sorted(
                query.access.groups | ({PUBLIC_GROUP} if query.access.public else set())
            )
            if not allowed:
                return "0", []
            marks = ",".join("?" * len(allowed))
            clauses.append(
                f"c.document_id IN (SELECT document_id FROM document_groups WHERE grp IN ({marks}))"
            )
            params.extend(allowed)
        if query.collection:
            clauses.append("c.collection = ?")
            params.append(query.collection)
        return (" AND ".join(clauses) or "1"), params

    def vocabulary(self, conn: sqlite3.Connection, version: tuple[str, int]) -> Vocabulary:
        """The index's words, most common first, for `version` (the file's epoch and
        generation). After a few documents changed, their words are added to the one in memory
        (a full read groups every word of the index: a second at 100k passages); the words of
        documents deleted or rewritten stay known until the next full read, which comes after
        _VOCABULARY_GROWTH changed documents."""
        cached = self._vocabulary
        if cached is not None and cached[0] == version:
            return cached[1]
        grown = None
        if cached is not None and cached[0][0] == version[0] and cached[0][1] < version[1]:
            grown = _grow(conn, cached, version[1])
        if grown is None:
            rows = conn.execute(
                "SELECT word FROM words GROUP BY word ORDER BY count(*) DESC, word"
            ).fetchall()
            grown = Vocabulary([r[0] for r in rows]), 0
        self._vocabulary = (version, *grown)
        return grown[0]

    def _text_search(
        self, conn: sqlite3.Connection, query: SearchQuery, vocabulary: Vocabulary, fetch: int
    ) -> list[SearchHit]:
        terms = fts_terms(query.text, vocabulary)
        if not terms:
            return []
        rows: list[tuple[Any, ...]] = []
        narrow = narrowed_query(conn, terms, vocabulary.match_counts)
        if narrow is not None:
            rows = self._ranked(conn, query, narrow, fetch)
        if len(rows) < fetch:  # not narrowed, or the narrow query found too few
            rows = self._ranked(conn, query, " OR ".join(terms), fetch)
        texts = _texts(conn, [r[0] for r in rows])
        return [
            SearchHit(
                document_id=r[1],
                ordinal=r[2],
                title=texts[r[0]][0],
                text=texts[r[0]][1],
                citation=r[3],
                label=r[4],
                collection=r[5],
                score=round(-r[6], 4),
                snippet=r[7],
            )
            for r in rows
        ]

    def _ranked(
        self, conn: sqlite3.Connection, query: SearchQuery, match: str, fetch: int
    ) -> list[tuple[Any, ...]]:
        """The `fetch` best passages for an FTS5 query under the access and collection filter:
        (rowid, document_id, ordinal, citation, label, collection, bm25, snippet)."""
        where, params = self._filters(query)
        rows: list[tuple[Any, ...]] = []
        # The ranking reads no text: SQLite sorts whole result rows, so columns selected here
        # would be read for every match, not only for the few kept. The texts come after.
        columns = "c.rowid, c.document_id, c.ordinal, c.citation, c.label, c.collection"
        if not query.snippets:
            candidates = max(self.text_candidates, fetch)
            # Rank, then filter: BM25's best `text_candidates` matches, then the access and
            # collection filter over those few, instead of the filter's look-ups for every match
            # of a common word. BM25 reads the same corpus statistics either way, so the scores
            # are the same as the filtered query's.
            rows = conn.execute(
                "WITH best AS MATERIALIZED (SELECT rowid, bm25(chunks_fts, 2.0, 1.0) AS rank "
                "FROM chunks_fts WHERE chunks_fts MATCH ? ORDER BY rank LIMIT ?) "
                f"SELECT {columns}, b.rank, '', (SELECT count(*) FROM best) "
                f"FROM best b JOIN chunks c ON c.rowid = b.rowid WHERE {where} "
                "ORDER BY b.rank LIMIT ?",
                [match, candidates, *params, fetch],
            ).fetchall()
            capped = not rows or rows[0][8] >= candidates
            if len(rows) < fetch and capped and where != "1":
                rows = []  # the filter left too few of the best: rank what it allows
        if not rows:
            # snippet() runs for every match before the sort, not just the top few: on request.
            snippet = "snippet(chunks_fts, 1, '**', '**', '…', 24)" if query.snippets else "''"
            rows = conn.execute(
                f"SELECT {columns}, bm25(chunks_fts, 2.0, 1.0) AS rank, {snippet} "
                "FROM chunks_fts f JOIN chunks c ON c.rowid = f.rowid "
                f"WHERE chunks_fts MATCH ? AND {where} ORDER BY rank LIMIT ?",
                [match, *params, fetch],
            ).fetchall()
        return rows

    def _scan(
        self, conn: sqlite3.Connection, query: SearchQuery, fetch: int, epoch: str, generation: int
    ) -> Callable[[], list[tuple[int, float]]]:
        """The vector scan, ready to run on any thread: (rowid, cosine), best first. The
        vectors are brought up to date first, on this thread's connection and snapshot."""
        vector = query.vector
        assert vector is not None
        vectors = self._vectors.current(conn, epoch, generation)
        groups = None
        if not query.access.all:
            groups = sorted(
                query.access.groups | ({PUBLIC_GROUP} if query.access.public else set())
            )
        return partial(vectors.nearest, vector, groups, query.collection or None, fetch)

    @staticmethod
    def _vector_hits(conn: sqlite3.Connection, best: list[tuple[int, float]]) -> list[SearchHit]:
        if not best:
            return []
        marks = ",".join("?" * len(best))
        found = {
            r[0]: r
            for r in conn.execute(
                "SELECT c.rowid, c.document_id, c.ordinal, f.title, f.text, c.citation, c.label, "
                "c.collection FROM chunks c JOIN chunks_fts f ON f.rowid = c.rowid "
                f"WHERE c.rowid IN ({marks})",
                [rowid for rowid, _ in best],
            )
        }
        # A row missing here was replaced after this search's snapshot of the file, when another
        # thread had already brought the vectors further: it is left out.
        return [
            SearchHit(
                document_id=found[rowid][1],
                ordinal=found[rowid][2],
                title=found[rowid][3],
                text=found[rowid][4],
                citation=found[rowid][5],
                label=found[rowid][6],
                collection=found[rowid][7],
                score=round(score, 4),
            )
            for rowid, score in best
            if rowid in found
        ]


def _grow(
    conn: sqlite3.Connection, cached: tuple[tuple[str, int], Vocabulary, int], generation: int
) -> tuple[Vocabulary, int] | None:
    """`cached` with the words of the documents changed up to `generation`, from the change log;
    None when the log no longer reaches back to it or too many documents changed."""
    (_, since), vocabulary, grown = cached
    changes = conn.execute(
        "SELECT generation, document_id FROM changes WHERE generation > ? AND generation <= ? "
        "ORDER BY generation",
        (since, generation),
    ).fetchall()
    documents = sorted({document_id for _, document_id in changes})
    if not changes or changes[0][0] != since + 1 or grown + len(documents) > _VOCABULARY_GROWTH:
        return None
    marks = ",".join("?" * len(documents))
    words = conn.execute(
        f"SELECT DISTINCT word FROM words WHERE document_id IN ({marks})", documents
    ).fetchall()
    return vocabulary.grown(w for (w,) in words), grown + len(documents)


def _texts(conn: sqlite3.Connection, rowids: list[int]) -> dict[int, tuple[str, str]]:
    if not rowids:
        return {}
    marks = ",".join("?" * len(rowids))
    return {
        r[0]: (r[1], r[2])
        for r in conn.execute(
            f"SELECT rowid, title, text FROM chunks_fts WHERE rowid IN ({marks})", rowids
        )
    }


def _add_words(conn: sqlite3.Connection, document_id: int, texts: list[tuple[str, str]]) -> None:
    words: set[str] = set()
    for title, text in texts:
        words |= words_of(title) | words_of(text)
    conn.executemany(
        "INSERT INTO words (word, document_id) VALUES (?, ?)",
        [(w, document_id) for w in sorted(words)],
    )


def _prepare(conn: sqlite3.Connection) -> None:
    """Create the schema, or bring an index file written by an older version up to date."""
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    if version == SCHEMA_VERSION:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        (version,) = conn.execute("PRAGMA user_version").fetchone()  # another thread's work?
        if version > SCHEMA_VERSION:
            raise SearchBackendError(
                f"the search index was written by a newer version (schema {version}); "
                "run `manage.py sync_index --rebuild`",
                transient=False,
            )
        columns = {r[1] for r in conn.execute("PRAGMA table_info(generation)")}
        if columns and "epoch" not in columns:  # schema 2: no change log yet, no epoch
            conn.execute("ALTER TABLE generation ADD COLUMN epoch TEXT NOT NULL DEFAULT ''")
            conn.execute("UPDATE generation SET epoch = lower(hex(randomblob(8)))")
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
        (filled,) = conn.execute("SELECT count(*) FROM words").fetchone()
        if version < SCHEMA_VERSION and not filled:
            # An older file: its vocabulary, from the text it already holds.
            rows = conn.execute(
                "SELECT c.document_id, f.title, f.text FROM chunks c "
                "JOIN chunks_fts f ON f.rowid = c.rowid ORDER BY c.document_id"
            ).fetchall()
            by_document: dict[int, list[tuple[str, str]]] = {}
            for document_id, title, text in rows:
                by_document.setdefault(document_id, []).append((title, text))
            for document_id, texts in by_document.items():
                _add_words(conn, document_id, texts)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
