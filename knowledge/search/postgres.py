"""PostgreSQL search backend: full text (a weighted, generated tsvector with a GIN index) and
pgvector (HNSW, cosine), fused by reciprocal rank in one SQL statement.

The chunks live in one table of the app's database, or of SEARCH_DATABASE_URL's. Access and
collection filters are part of the same statement as the ranking, so a user never ranks against
rows they may not read. Everything goes through psycopg 3's async connection pool: a query waits
on a socket, not on a thread.

The vector column is added the first time a document arrives with vectors (or by create_index when
OPENAI_EMBEDDING_DIMENSIONS names the size), because its dimension is that of the embedding model.
"""

import re
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from typing import Literal, overload

import numpy as np
import orjson
import psycopg
from django.conf import settings
from psycopg import AsyncConnection, sql
from psycopg.abc import Params, QueryNoTemplate
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from knowledge.access import PUBLIC_GROUP
from knowledge.search.base import (
    IndexChunk,
    SearchBackendError,
    SearchHit,
    SearchQuery,
)
from knowledge.search.postgres_sql import (
    ADD_VECTOR_COLUMN,
    SCHEMA,
    TABLE,
    filters,
    hybrid_statement,
    text_statement,
    vector_statement,
)

_WORD = re.compile(r"\w+", re.UNICODE)
_MAX_QUERY_TERMS = 64
# Serialises schema changes across hosts and processes (any fixed 64-bit number).
_SCHEMA_LOCK = 0x72616773_69746531


def question_words(text: str) -> list[str]:
    """The words of user text for websearch_to_tsquery. Only words pass, so no operator of the
    user's gets through."""
    words = [w for w in _WORD.findall(text.lower()) if w != "or"]
    return list(dict.fromkeys(words))[:_MAX_QUERY_TERMS]


def websearch_text(text: str) -> str:
    """User text for websearch_to_tsquery, its words OR-ed: a question's words rarely all appear
    in the passage that answers it."""
    return " or ".join(question_words(text))


def vector_literal(vector: Sequence[float]) -> str:
    """pgvector's text form, `[x,y,...]`, which is JSON's: orjson writes it in microseconds."""
    array = np.asarray(vector, dtype=np.float32)
    return orjson.dumps(array, option=orjson.OPT_SERIALIZE_NUMPY).decode()


def allowed_groups(query: SearchQuery) -> list[str] | None:
    """The groups a chunk must share with the query, None for everything (staff)."""
    if query.access.all:
        return None
    return sorted(query.access.groups | ({PUBLIC_GROUP} if query.access.public else set()))


def _error(exc: Exception, doing: str) -> SearchBackendError:
    if isinstance(exc, psycopg.errors.UndefinedTable):
        return SearchBackendError(
            f"{doing}: the search table is missing (run `manage.py search_index --create`)",
            transient=False,
        )
    # Connection trouble and timeouts pass; bad data (a vector of the wrong size) does not.
    transient = isinstance(exc, psycopg.OperationalError | PoolTimeout)
    return SearchBackendError(f"{doing}: {exc}".strip(), transient=transient)


class PostgresSearchBackend:
    name = "postgres"

    def __init__(
        self,
        conninfo: str,
        pool_size: int = 10,
        timeout: float = 5.0,
        text_candidates: int = 1000,
    ):
        self.conninfo = conninfo
        self.timeout = timeout
        self.text_candidates = text_candidates
        self._pool = AsyncConnectionPool(
            conninfo,
            min_size=1,
            max_size=pool_size,
            timeout=timeout,
            open=False,
            check=AsyncConnectionPool.check_connection,
            configure=self._configure,
            kwargs={"autocommit": True, "connect_timeout": max(1, int(timeout))},
            name="search",
        )
        self._opened = False

    async def _configure(self, conn: AsyncConnection[TupleRow]) -> None:
        # ef_search above top-k keeps HNSW recall high; an iterative scan keeps a filtered vector
        # query from coming back short when the nearest vectors belong to others. psycopg
        # prepares a statement run often, and PostgreSQL would then switch to a generic plan,
        # made without the groups and the words, so estimated for an average that no question
        # has: a custom plan each time costs a fraction of a millisecond. JIT compiling, which a
        # large table's estimates switch on, costs more than these queries take.
        await conn.execute(
            "SELECT set_config('hnsw.ef_search', %s, false), "
            "set_config('hnsw.iterative_scan', 'relaxed_order', false), "
            "set_config('plan_cache_mode', 'force_custom_plan', false), "
            "set_config('jit', 'off', false)",
            (str(settings.SEARCH_HNSW_EF_SEARCH),),
        )

    async def _open(self) -> AbstractAsyncContextManager[AsyncConnection[TupleRow]]:
        if not self._opened:
            # Opening does not wait: an unreachable server fails the request (after the pool's
            # timeout), not the process, and the pool goes on trying to connect.
            await self._pool.open(wait=False)
            self._opened = True
        return self._pool.connection(timeout=self.timeout)

    @overload
    async def _execute(
        self,
        doing: str,
        statement: QueryNoTemplate,
        params: Params = ...,
        fetch: Literal[True] = ...,
    ) -> list[TupleRow]: ...
    @overload
    async def _execute(
        self, doing: str, statement: QueryNoTemplate, params: Params = ..., *, fetch: Literal[False]
    ) -> None: ...
    async def _execute(
        self, doing: str, statement: QueryNoTemplate, params: Params = (), fetch: bool = True
    ) -> list[TupleRow] | None:
        try:
            async with await self._open() as conn:
                cursor = await conn.execute(statement, params)
                return await cursor.fetchall() if fetch else None
        except (psycopg.Error, PoolTimeout) as exc:
            raise _error(exc, doing) from exc

    async def close(self) -> None:
        await self._pool.close()

    # -- index management -------------------------------------------------------------------------
    async def create_index(self, dimensions: int | None = None) -> None:
        dimensions = dimensions or settings.OPENAI_EMBEDDING_DIMENSIONS or None
        try:
            async with await self._open() as conn, conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
                await conn.execute(SCHEMA)
                if dimensions:
                    await self._add_vectors(conn, dimensions)
        except (psycopg.Error, PoolTimeout) as exc:
            raise _error(exc, "could not create the search table") from exc

    @staticmethod
    async def _vector_dimensions(conn: AsyncConnection[TupleRow]) -> int | None:
        cursor = await conn.execute(
            "SELECT atttypmod FROM pg_attribute WHERE attrelid = to_regclass(%s) "
            "AND attname = 'embedding' AND NOT attisdropped",
            (TABLE,),
        )
        row = await cursor.fetchone()
        return row[0] if row else None

    async def _add_vectors(self, conn: AsyncConnection[TupleRow], dimensions: int) -> None:
        """The vector column and its HNSW index, once; a different size needs a rebuild."""
        existing = await self._vector_dimensions(conn)
        if existing == dimensions:
            return
        if existing is not None:
            raise SearchBackendError(
                f"the search table holds {existing}-dimension vectors, the embeddings have "
                f"{dimensions}: run `manage.py sync_index --rebuild`",
                transient=False,
            )
        await conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        await conn.execute(sql.SQL(ADD_VECTOR_COLUMN).format(dims=sql.Literal(dimensions)))

    async def drop_index(self) -> None:
        await self._execute(
            "could not drop the search table", f"DROP TABLE IF EXISTS {TABLE}", fetch=False
        )

    # -- writes -----------------------------------------------------------------------------------
    async def upsert_document(
        self, document_id: int, chunks: list[IndexChunk], indexed_count: int = 0
    ) -> None:
        dimensions = next((len(c.embedding) for c in chunks if c.embedding), None)
        try:
            async with await self._open() as conn, conn.transaction():
                if dimensions and await self._vector_dimensions(conn) != dimensions:
                    await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
                    await self._add_vectors(conn, dimensions)
                # One transaction: readers see the old chunks or the new, never neither.
                await conn.execute(f"DELETE FROM {TABLE} WHERE document_id = %s", (document_id,))
                if chunks:
                    await self._insert(conn, chunks, bool(dimensions))
        except (psycopg.Error, PoolTimeout) as exc:
            raise _error(exc, "indexing failed") from exc

    @staticmethod
    async def _insert(
        conn: AsyncConnection[TupleRow], chunks: list[IndexChunk], with_vectors: bool
    ) -> None:
        columns = "document_id, ordinal, title, label, body, citation, collection, groups"
        if with_vectors:
            columns += ", embedding"
        rows = []
        for c in chunks:
            row = [c.document_id, c.ordinal, c.title, c.label, c.text, c.citation]
            row += [c.collection, list(c.groups)]
            if with_vectors:
                row.append(vector_literal(c.embedding) if c.embedding else None)
            rows.append(row)
        async with conn.cursor() as cursor:
            async with cursor.copy(f"COPY {TABLE} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    await copy.write_row(row)

    async def delete_document(self, document_id: int, indexed_count: int = 0) -> None:
        await self._execute(
            "removing from the index failed",
            f"DELETE FROM {TABLE} WHERE document_id = %s",
            (document_id,),
            fetch=False,
        )

    async def ping(self) -> None:
        await self._execute("search index unavailable", f"SELECT 1 FROM {TABLE} LIMIT 1")

    # -- reads ------------------------------------------------------------------------------------
    async def document_ids(self) -> set[int]:
        rows = await self._execute(
            "search index unavailable", f"SELECT DISTINCT document_id FROM {TABLE}"
        )
        return {r[0] for r in rows}

    def filter_expression(self, query: SearchQuery) -> str:
        groups = allowed_groups(query)
        clauses = []
        if groups is not None:
            if not groups:
                return "false (nothing: access denied)"
            clauses.append("groups && ARRAY[" + ", ".join(f"'{g}'" for g in groups) + "]")
        if query.collection:
            clauses.append(f"collection = '{query.collection}'")
        return " AND ".join(clauses) or "(none)"

    async def search(self, query: SearchQuery) -> list[SearchHit]:
        groups = allowed_groups(query)
        if groups == []:
            return []
        mode = query.mode if query.vector is not None else "text"
        words = question_words(query.text) if mode in ("text", "hybrid") else []
        if mode == "text" and not words:
            return []
        params = {"groups": groups, "collection": query.collection, "top": query.top}
        params |= {"terms": " or ".join(words), "all_terms": " ".join(words)}
        params["candidates"] = self.text_candidates
        where = filters(groups is not None, bool(query.collection))
        every_word = len(words) > 1
        if mode == "text":
            statement = text_statement(where, query.snippets, every_word)
        elif mode == "vectors":
            statement = vector_statement(where)
        else:
            statement = hybrid_statement(where, every_word)
        if mode != "text":
            assert query.vector is not None  # mode is "text" when there is no vector
            params["vector"] = vector_literal(query.vector)
        try:
            rows = await self._execute("search failed", statement, params)
        except SearchBackendError as exc:
            if isinstance(exc.__cause__, psycopg.errors.UndefinedColumn):
                # No vectors indexed yet: the text half is all there is.
                return [] if mode == "vectors" else await self.search(replace(query, mode="text"))
            if isinstance(exc.__cause__, psycopg.errors.DataException):
                exc.transient = False
            raise
        return [
            SearchHit(
                document_id=r[0],
                ordinal=r[1],
                title=r[2],
                text=r[3],
                citation=r[4],
                label=r[5],
                collection=r[6],
                score=round(float(r[7]), 6 if mode == "hybrid" else 4),
                snippet=r[8] or "",
            )
            for r in rows
        ]
