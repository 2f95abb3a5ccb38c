"""The one async search API the chat pipeline and the index sync talk to.

Access is part of every query: a chunk carries the ids of the groups that may read its document
(PUBLIC_GROUP when everyone may), and a query carries what the asking user holds. That is the first
line; the index can lag the database, so knowledge/retrieval.py then keeps only the hits whose
document rows still allow them.
"""

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from knowledge.access import PUBLIC_GROUP, AccessFilter


class SearchBackendError(Exception):
    """The index could not do what was asked; `transient` errors are worth retrying."""

    def __init__(self, message: str, transient: bool = True):
        super().__init__(message)
        self.transient = transient


@dataclass(frozen=True)
class IndexChunk:
    document_id: int
    ordinal: int
    title: str
    text: str
    citation: str
    label: str = ""
    collection: str = ""
    groups: tuple[str, ...] = (PUBLIC_GROUP,)
    embedding: tuple[float, ...] | None = None

    @property
    def key(self) -> str:
        return chunk_key(self.document_id, self.ordinal)


def chunk_key(document_id: int, ordinal: int) -> str:
    return f"doc-{document_id}-{ordinal}"


@dataclass(frozen=True)
class SearchQuery:
    text: str
    access: AccessFilter
    collection: str | None = None
    top: int = 5
    vector: tuple[float, ...] | None = None
    mode: str = "text"  # text, vectors, hybrid
    # Highlighted excerpts (SearchHit.snippet) for people reading results; the chat does not
    # show them, and on the embedded index they cost a third of a query.
    snippets: bool = False


@dataclass(frozen=True)
class SearchHit:
    document_id: int
    ordinal: int
    title: str
    text: str
    citation: str
    score: float
    label: str = ""
    collection: str = ""
    snippet: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class SearchBackend(Protocol):
    name: str

    async def create_index(self) -> None: ...

    async def drop_index(self) -> None: ...

    async def upsert_document(
        self, document_id: int, chunks: list[IndexChunk], indexed_count: int = 0
    ) -> None:
        """Replace every chunk of the document with `chunks`, as one unit. `indexed_count`:
        how many chunks (ordinals 0 to n-1) the index may hold for it from an earlier sync."""

    async def delete_document(self, document_id: int, indexed_count: int = 0) -> None:
        """Remove every chunk of the document (`indexed_count` as for upsert_document)."""

    async def document_ids(self) -> set[int]:
        """Ids of every document that has chunks in the index (for reconciling)."""

    async def search(self, query: SearchQuery) -> list[SearchHit]: ...

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Raise SearchBackendError unless the index answers (cheaply: readiness probes)."""

    def filter_expression(self, query: SearchQuery) -> str:
        """The filter this backend applies for the query, as shown in the thought steps."""
