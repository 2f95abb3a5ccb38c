"""Bringing the search index in line with a document row: the body of the `sync_document` task and
of `manage.py sync_index`.

The row says what the index should hold (`content_hash`); syncing makes it so and records the
outcome on the row. Running it twice does nothing new, so duplicate or replayed tasks are harmless.
"""

import asyncio
import logging

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from tenacity import (
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from knowledge import sentence_vectors
from knowledge.access import PUBLIC_GROUP, group_key
from knowledge.chunking import chunk_segments
from knowledge.embeddings import (
    Embedder,
    embedding_model_id,
    embeddings_enabled,
    from_bytes,
    make_embedder,
    to_bytes,
)
from knowledge.local_embeddings import LocalEmbedder
from knowledge.models import Chunk, Document, IndexStatus
from knowledge.search import build_backend
from knowledge.search.base import IndexChunk, SearchBackendError

log = logging.getLogger(__name__)


def _transient(exc: BaseException) -> bool:
    return isinstance(exc, SearchBackendError) and exc.transient or isinstance(exc, OSError)


class Indexer:
    """One search backend on one event loop, for sync callers (the task worker, commands)."""

    def __enter__(self):
        self._runner = asyncio.Runner()
        self.backend = build_backend()
        self.embedder: Embedder | LocalEmbedder | None = None
        self.vectors_pending = False  # set by sync: the document's vectors are add_vectors' work
        if embeddings_enabled():
            self.embedder = make_embedder(max_retries=settings.EMBEDDING_MAX_RETRIES)
        return self

    def __exit__(self, *exc):
        try:
            self._runner.run(self.backend.close())
            if self.embedder is not None:
                self._runner.run(self.embedder.close())
        finally:
            self._runner.close()

    def call(self, method, *args):
        """Run a backend coroutine, retrying transient failures with exponential backoff."""
        retrying = Retrying(
            stop=stop_after_attempt(settings.INDEX_SYNC_ATTEMPTS),
            wait=wait_exponential(multiplier=settings.INDEX_SYNC_BACKOFF_SECONDS, max=30),
            retry=retry_if_exception(_transient),
            reraise=True,
        )
        return retrying(lambda: self._runner.run(method(*args)))

    def sync(self, document_id: int) -> str:
        """Make the index hold what the row says. Returns what was done, for logs and commands.

        With the local model (some 300 ms of CPU a chunk) the chunks go in for text search only,
        with the vectors kept from earlier syncs, and `vectors_pending` is set: `add_vectors`
        completes them, so every document of a batch is searchable before any waits for its
        vectors. An embedding service's vectors are made first.
        """
        self.vectors_pending = False
        doc = Document.objects.select_related("collection").filter(pk=document_id).first()
        if doc is not None and doc.index_is_current:
            return "already current"  # a duplicate or replayed task
        try:
            # What the index may hold for it: the chunk rows of its last sync. A search cannot
            # tell (a remote index shows writes of the last second only later).
            indexed_count = doc.chunks.count() if doc is not None else 0
            if doc is None or not doc.published:
                self.call(self.backend.delete_document, document_id, indexed_count)
                if doc is None:
                    return "removed (deleted)"
                _record(doc, IndexStatus.REMOVED)
                return "removed (unpublished)"
            chunks = _rechunk(doc)
            # Found by its words now, by meaning too once the vectors are in.
            deferred = self._slow_embedder() and _missing(chunks)
            if self.embedder is not None and not deferred:
                self._embed(self.embedder, chunks)
            self.call(
                self.backend.upsert_document, document_id, _index_chunks(doc, chunks), indexed_count
            )
        except Exception as exc:
            if doc is not None:
                _record(doc, IndexStatus.FAILED, error=_describe(exc))
            raise
        _record(doc, IndexStatus.INDEXED)
        self.vectors_pending = deferred
        if deferred:
            return f"indexed ({len(chunks)} chunks, vectors to follow)"
        return f"indexed ({len(chunks)} chunks)"

    def _slow_embedder(self) -> bool:
        return isinstance(self.embedder, LocalEmbedder)

    def add_vectors(self, document_id: int) -> str:
        """Embed the chunks a `sync` left without vectors and upsert
        the document again with them. A document changed meanwhile is left to its own sync."""
        doc = Document.objects.select_related("collection").filter(pk=document_id).first()
        if self.embedder is None or doc is None or not doc.published or not doc.index_is_current:
            return "skipped (embeddings off, or the document changed)"
        chunks = list(doc.chunks.order_by("ordinal"))
        if not _missing(chunks):
            return "vectors already made"
        try:
            self._embed(self.embedder, chunks)
            doc.refresh_from_db(fields=["content_hash"])
            if doc.content_hash != doc.indexed_hash:
                return "skipped (the document changed)"
            self.call(
                self.backend.upsert_document, document_id, _index_chunks(doc, chunks), len(chunks)
            )
        except Exception as exc:
            # Searchable by text still; sync_index (or the next save) tries again.
            _record(doc, IndexStatus.FAILED, error=_describe(exc))
            raise
        return f"vectors added ({len(chunks)} chunks)"

    def _embed(self, embedder: Embedder | LocalEmbedder, chunks: list[Chunk]) -> None:
        """Embed the chunks that have no vector yet (and, for the offline answerer, their
        sentences) and keep the vectors on the rows."""
        missing = [c for c in chunks if not c.embedding]
        if missing:
            vectors = self.call(embedder.embed, [c.text for c in missing])
            made_by = embedding_model_id()
            for chunk, vector in zip(missing, vectors, strict=True):
                chunk.embedding = to_bytes(vector)
                chunk.embedding_model = made_by
            Chunk.objects.bulk_update(missing, ["embedding", "embedding_model"])
        if sentence_vectors.enabled():
            self._embed_sentences(embedder, [c for c in chunks if c.sentence_vectors is None])

    def _embed_sentences(self, embedder: Embedder | LocalEmbedder, chunks: list[Chunk]) -> None:
        if not chunks:
            return
        found = [sentence_vectors.embedded_texts(c.text, c.label) for c in chunks]
        texts = list({t: None for sentences in found for t in sentences})
        vectors = dict(zip(texts, self.call(embedder.embed, texts), strict=True)) if texts else {}
        for chunk, sentences in zip(chunks, found, strict=True):
            chunk.sentence_vectors = sentence_vectors.pack([vectors[t] for t in sentences])
        Chunk.objects.bulk_update(chunks, ["sentence_vectors"])

    def remove_orphans(self) -> list[int]:
        """Index entries whose document row is gone (queryset deletes bypass signals)."""
        in_index = self.call(self.backend.document_ids)
        existing = set(Document.objects.filter(pk__in=in_index).values_list("pk", flat=True))
        orphans = sorted(in_index - existing)
        for document_id in orphans:
            self.call(self.backend.delete_document, document_id)
        return orphans


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:2000]


def _record(doc: Document, status: str, error: str = "") -> None:
    """Record the outcome, unless the row changed meanwhile (its own sync is queued then)."""
    fields: dict[str, object] = {"index_status": status, "index_error": error}
    if status != IndexStatus.FAILED:
        fields.update(indexed_hash=doc.content_hash, indexed_at=timezone.now())
    Document.objects.filter(pk=doc.pk, content_hash=doc.content_hash).update(**fields)


def _rechunk(doc: Document) -> list[Chunk]:
    pieces = chunk_segments(doc.segments())
    # Embeddings are kept by text, so an edit only pays for the chunks it changed; those of
    # another model than the one configured are dropped (made again when embeddings are on).
    kept = doc.chunks.exclude(embedding=None)
    if embeddings_enabled():
        kept = kept.filter(embedding_model=embedding_model_id())
    old = {c.text: c for c in kept}
    chunks = [
        Chunk(
            document=doc,
            ordinal=i,
            text=p.text,
            label=p.label[:300],
            token_count=p.token_count,
            **_vectors_of(old.get(p.text), p.label[:300]),
        )
        for i, p in enumerate(pieces)
    ]
    with transaction.atomic():
        doc.chunks.all().delete()
        Chunk.objects.bulk_create(chunks)
    return chunks


def _vectors_of(chunk: Chunk | None, label: str) -> dict:
    if chunk is None:
        return {}
    return {
        "embedding": chunk.embedding,
        "embedding_model": chunk.embedding_model,
        # Its sentences were embedded under their heading: a renamed section makes them again.
        "sentence_vectors": chunk.sentence_vectors if chunk.label == label else None,
    }


def _index_chunks(doc: Document, chunks: list[Chunk]) -> list[IndexChunk]:
    group_ids = sorted(doc.groups.values_list("pk", flat=True))
    groups = tuple(group_key(pk) for pk in group_ids) or (PUBLIC_GROUP,)
    collection = doc.collection.slug if doc.collection is not None else ""
    return [
        IndexChunk(
            document_id=doc.pk,
            ordinal=c.ordinal,
            title=doc.title,
            text=c.text,
            citation=c.citation,
            label=c.label,
            collection=collection,
            groups=groups,
            embedding=from_bytes(c.embedding),
        )
        for c in chunks
    ]


def missing_vectors() -> list[int]:
    """Published, indexed documents with chunks still waiting for their vectors (a vectors task
    that never ran, or failed)."""
    if not embeddings_enabled():
        return []
    waiting = Q(chunks__embedding=None)
    if sentence_vectors.enabled():
        waiting |= Q(chunks__sentence_vectors=None)
    current = Document.objects.filter(waiting, published=True, index_status=IndexStatus.INDEXED)
    return sorted(set(current.values_list("pk", flat=True)))


def _missing(chunks: list[Chunk]) -> bool:
    if any(not c.embedding for c in chunks):
        return True
    return sentence_vectors.enabled() and any(c.sentence_vectors is None for c in chunks)


def mark_pending(queryset) -> list[int]:
    """Flag documents for syncing and return their ids; the caller enqueues them on commit."""
    ids = list(queryset.values_list("pk", flat=True))
    for doc in Document.objects.filter(pk__in=ids).select_related("collection"):
        Document.objects.filter(pk=doc.pk).update(
            content_hash=doc.compute_content_hash(),
            index_status=IndexStatus.PENDING,
            index_requested_at=timezone.now(),
        )
    return ids
