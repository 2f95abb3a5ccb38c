"""The embedded search index: SQLite FTS5 (BM25) in its own file, plus numpy cosine over stored
vectors for vector and hybrid retrieval. No server, no configuration.

Access and collection filters run inside the SQL query. Every call runs in a worker thread so the
event loop never waits on the disk; each thread keeps its own connection (sqlite3 connections are
not shareable across threads), and WAL lets readers go on while a document is being replaced.
"""

import asyncio
import re
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from knowledge.access import PUBLIC_GROUP
from knowledge.search.base import IndexChunk, SearchBackendError, SearchHit, SearchQuery
from knowledge.search.fusion import reciprocal_rank_fusion

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
"""
_WORD = re.compile(r"\w+", re.UNICODE)
_STOPWORDS = frozenset(
    "a an and are as at be by can do does for from how i in is it me my of on or our should the "
    "to we what when where which who why will with you your".split()
)
_MAX_QUERY_TERMS = 64


def fts_query(text: str) -> str:
    """User text as an FTS5 query: every word quoted (so no FTS syntax gets through), OR-ed."""
    words = [w.lower() for w in _WORD.findall(text)]
    meaningful = [w for w in words if w not in _STOPWORDS] or words
    unique = list(dict.fromkeys(meaningful))[:_MAX_QUERY_TERMS]
    return " OR ".join('"' + w.replace('"', '""') + '"' for w in unique)


class EmbeddedSearchBackend:
    name = "embedded"

    def __init__(self, path: Path | str):
        self.path = str(path)
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._schema_ready = False
        # Two threads of its own, not the loop's default pool: a query is a millisecond of
        # SQLite, and a few warm threads take it with fewer wake-ups and GIL hand-offs.
        self._executor: ThreadPoolExecutor | None = None

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
                conn.executescript(_SCHEMA)
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
                "DROP TABLE IF EXISTS chunks_fts;"
            )
            self._schema_ready = False

        await self._call(drop)

    async def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._local = threading.local()

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
        mode = query.mode if query.vector is not None else "text"
        text_hits = self._text_search(conn, query) if mode in ("text", "hybrid") else []
        if mode == "text":
            return text_hits
        vector_hits = self._vector_search(conn, query)
        if mode == "vectors":
            return vector_hits
        return reciprocal_rank_fusion([text_hits, vector_hits], query.top)

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

    def _text_search(self, conn: sqlite3.Connection, query: SearchQuery) -> list[SearchHit]:
        match = fts_query(query.text)
        if not match:
            return []
        where, params = self._filters(query)
        # snippet() runs for every match before the sort, not just the top few: only on request.
        snippet = "snippet(chunks_fts, 1, '**', '**', '…', 24)" if query.snippets else "''"
        rows = conn.execute(
            "SELECT c.document_id, c.ordinal, f.title, f.text, c.citation, c.label, c.collection, "
            f"bm25(chunks_fts, 2.0, 1.0) AS rank, {snippet} "
            "FROM chunks_fts f JOIN chunks c ON c.rowid = f.rowid "
            f"WHERE chunks_fts MATCH ? AND {where} ORDER BY rank LIMIT ?",
            [match, *params, query.top],
        ).fetchall()
        return [
            SearchHit(
                document_id=r[0],
                ordinal=r[1],
                title=r[2],
                text=r[3],
                citation=r[4],
                label=r[5],
                collection=r[6],
                score=round(-r[7], 4),
                snippet=r[8],
            )
            for r in rows
        ]

    def _vector_search(self, conn: sqlite3.Connection, query: SearchQuery) -> list[SearchHit]:
        where, params = self._filters(query)
        rows = conn.execute(
            f"SELECT c.rowid, c.embedding FROM chunks c WHERE c.embedding IS NOT NULL AND {where}",
            params,
        ).fetchall()
        if not rows:
            return []
        matrix = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(
            len(rows), -1
        )
        q = np.asarray(query.vector, dtype=np.float32)
        if matrix.shape[1] != q.shape[0]:
            raise SearchBackendError(
                f"the question's vector has {q.shape[0]} dimensions, the index {matrix.shape[1]}",
                transient=False,
            )
        norms = np.linalg.norm(matrix, axis=1) * (np.linalg.norm(q) or 1.0)
        scores = matrix @ q / np.where(norms == 0, 1.0, norms)
        best = np.argsort(-scores)[: query.top]
        rowids = [rows[i][0] for i in best]
        marks = ",".join("?" * len(rowids))
        found = {
            r[0]: r
            for r in conn.execute(
                "SELECT c.rowid, c.document_id, c.ordinal, f.title, f.text, c.citation, c.label, "
                "c.collection FROM chunks c JOIN chunks_fts f ON f.rowid = c.rowid "
                f"WHERE c.rowid IN ({marks})",
                rowids,
            )
        }
        return [
            SearchHit(
                document_id=found[rid][1],
                ordinal=found[rid][2],
                title=found[rid][3],
                text=found[rid][4],
                citation=found[rid][5],
                label=found[rid][6],
                collection=found[rid][7],
                score=round(float(scores[i]), 4),
            )
            for i, rid in zip(best, rowids, strict=True)
        ]
