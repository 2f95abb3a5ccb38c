"""Azure AI Search backend, through azure-search-documents' async clients.

One index document per chunk. A document's chunks are replaced as one unit: the new chunks are
uploaded first, then the ids it no longer has are deleted, so a reader never sees it missing.
Every indexing result is checked: a 207 with a per-document failure fails the sync, which the
row records and the retry or `sync_index` repeats.

The service is near-real-time: a write shows in queries only about a second later, so chunks
just uploaded cannot be found by searching. Chunk keys follow from the document id and ordinal
(`chunk_key`), so the chunks to remove are addressed by key, ordinals up to the count the caller
says may be indexed; a search by document id adds any older ones beyond that count.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from azure.core.credentials import AzureKeyCredential
from azure.core.exceptions import AzureError, HttpResponseError, ResourceNotFoundError
from django.conf import settings

from core.clients import azure_credential
from knowledge.access import PUBLIC_GROUP
from knowledge.search.base import IndexChunk, SearchBackendError, SearchHit, SearchQuery, chunk_key

if TYPE_CHECKING:
    from azure.core.credentials_async import AsyncTokenCredential
    from azure.search.documents.indexes.models import SearchIndex
    from azure.search.documents.models import IndexingResult

log = logging.getLogger(__name__)
VECTOR_FIELD = "embedding"
PAGE = 1000
# The service refuses an indexing request over 16 MB with a 413, and azure-search-documents
# 12.0.0's async client crashes (TypeError) splitting the batch after one: batches stay under
# this many bytes of JSON, with room for the SDK's own framing.
MAX_REQUEST_BYTES = 15 * 1024 * 1024
ACTION_OVERHEAD = 64  # the "@search.action" member and separators the SDK adds per document
FLOAT_JSON_BYTES = 25  # the longest float repr ("-1.2345678901234567e-05") and ", "


def odata_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def access_filter(query: SearchQuery) -> str | None:
    """The OData filter for the query's access and collection, None when nothing is allowed."""
    clauses = []
    if not query.access.all:
        allowed = sorted(query.access.groups | ({PUBLIC_GROUP} if query.access.public else set()))
        if not allowed:
            return None
        # search.in takes a delimited list; group keys never contain a comma.
        clauses.append(f"groups/any(g: search.in(g, {odata_string(','.join(allowed))}, ','))")
    if query.collection:
        clauses.append(f"collection eq {odata_string(query.collection)}")
    return " and ".join(clauses)


class AzureSearchBackend:
    name = "azure"

    def __init__(self) -> None:
        from azure.search.documents.aio import SearchClient
        from azure.search.documents.indexes.aio import SearchIndexClient

        self.credential: AsyncTokenCredential | None = None
        credential: AzureKeyCredential | AsyncTokenCredential
        if settings.AZURE_SEARCH_KEY:
            credential = AzureKeyCredential(settings.AZURE_SEARCH_KEY)
        else:
            credential = self.credential = azure_credential()
        self.index_name = settings.AZURE_SEARCH_INDEX
        options = {
            "retry_total": settings.AZURE_SEARCH_RETRIES,
            "connection_timeout": settings.AZURE_SEARCH_TIMEOUT,
            "read_timeout": settings.AZURE_SEARCH_TIMEOUT,
        }
        endpoint = settings.AZURE_SEARCH_ENDPOINT
        self.search_client = SearchClient(endpoint, self.index_name, credential, **options)
        self.index_client = SearchIndexClient(endpoint, credential, **options)

    async def close(self) -> None:
        await self.search_client.close()
        await self.index_client.close()
        if self.credential is not None:
            await self.credential.close()

    def filter_expression(self, query: SearchQuery) -> str:
        expression = access_filter(query)
        return "(nothing: access denied)" if expression is None else (expression or "(none)")

    # -- index management -------------------------------------------------------------------------
    def index_definition(self, dimensions: int | None) -> SearchIndex:
        from azure.search.documents.indexes.models import (
            HnswAlgorithmConfiguration,
            SearchableField,
            SearchField,
            SearchFieldDataType,
            SearchIndex,
            SemanticConfiguration,
            SemanticField,
            SemanticPrioritizedFields,
            SemanticSearch,
            SimpleField,
            VectorSearch,
            VectorSearchProfile,
        )

        string = SearchFieldDataType.STRING
        fields = [
            SimpleField(name="id", type=string, key=True),
            SimpleField(name="document_id", type=string, filterable=True),
            SimpleField(name="ordinal", type=SearchFieldDataType.INT32),
            SearchableField(name="title", type=string),
            SearchableField(name="content", type=string),
            SimpleField(name="citation", type=string),
            SimpleField(name="label", type=string),
            SimpleField(name="collection", type=string, filterable=True),
            SimpleField(
                name="groups",
                # The SDK adds Collection to the enum at run time (indexes/models/_patch.py).
                type=SearchFieldDataType.Collection(string),  # type: ignore[operator]
                filterable=True,
            ),
        ]
        vector_search = None
        if dimensions:
            fields.append(
                SearchField(
                    name=VECTOR_FIELD,
                    type=SearchFieldDataType.Collection(  # type: ignore[operator]  # as above
                        SearchFieldDataType.SINGLE
                    ),
                    searchable=True,
                    vector_search_dimensions=dimensions,
                    vector_search_profile_name="hnsw",
                )
            )
            vector_search = VectorSearch(
                algorithms=[HnswAlgorithmConfiguration(name="hnsw-config")],
                profiles=[
                    VectorSearchProfile(name="hnsw", algorithm_configuration_name="hnsw-config")
                ],
            )
        semantic = SemanticSearch(
            configurations=[
                SemanticConfiguration(
                    name="default",
                    prioritized_fields=SemanticPrioritizedFields(
                        title_field=SemanticField(field_name="title"),
                        content_fields=[SemanticField(field_name="content")],
                    ),
                )
            ]
        )
        return SearchIndex(
            name=self.index_name,
            fields=fields,
            vector_search=vector_search,
            semantic_search=semantic,
        )

    async def create_index(self, dimensions: int | None = None) -> None:
        dimensions = dimensions or settings.OPENAI_EMBEDDING_DIMENSIONS or None
        try:
            await self.index_client.create_or_update_index(self.index_definition(dimensions))
        except AzureError as exc:
            raise SearchBackendError(f"could not create the index: {exc}") from exc

    async def drop_index(self) -> None:
        try:
            await self.index_client.delete_index(self.index_name)
        except ResourceNotFoundError:
            return
        except AzureError as exc:
            raise SearchBackendError(f"could not drop the index: {exc}") from exc

    # -- writes -----------------------------------------------------------------------------------
    async def _chunk_ids(self, document_id: int) -> set[str]:
        ids: set[str] = set()
        results = await self.search_client.search(
            search_text="*",
            filter=f"document_id eq {odata_string(str(document_id))}",
            select=["id"],
            top=PAGE,
        )
        async for doc in results:
            ids.add(doc["id"])
        return ids

    @staticmethod
    def _batches(documents: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
        """AZURE_SEARCH_BATCH_SIZE documents at most, and under MAX_REQUEST_BYTES of JSON."""
        size = settings.AZURE_SEARCH_BATCH_SIZE
        batch: list[dict[str, Any]] = []
        used = 0
        for document in documents:
            # The vector is costed, not serialised: an upper bound, without the time to write
            # thousands of floats out twice.
            vector = document.get(VECTOR_FIELD) or ()
            rest = {k: v for k, v in document.items() if k != VECTOR_FIELD}
            cost = len(json.dumps(rest)) + FLOAT_JSON_BYTES * len(vector) + ACTION_OVERHEAD
            if batch and (len(batch) >= size or used + cost > MAX_REQUEST_BYTES):
                yield batch
                batch, used = [], 0
            batch.append(document)
            used += cost
        if batch:
            yield batch

    async def _index(
        self,
        method: Callable[..., Awaitable[list[IndexingResult]]],
        documents: list[dict[str, Any]],
    ) -> None:
        for batch in self._batches(documents):
            try:
                results = await method(documents=batch)
            except HttpResponseError as exc:
                transient = (
                    exc.status_code is None
                    or exc.status_code >= 500
                    or exc.status_code
                    in (
                        408,
                        429,
                    )
                )
                raise SearchBackendError(f"indexing failed: {exc.message}", transient) from exc
            except AzureError as exc:
                raise SearchBackendError(f"indexing failed: {exc}") from exc
            failed = [r for r in results if not r.succeeded]
            if failed:
                detail = "; ".join(f"{r.key}: {r.status_code} {r.error_message}" for r in failed)
                raise SearchBackendError(f"{len(failed)} chunk(s) were not indexed ({detail})")

    async def _existing_ids(self, document_id: int, indexed_count: int) -> set[str]:
        """Keys the document may have in the index: ordinals below `indexed_count` by key (found
        or not: writes of the last second are invisible to a search), and whatever a search
        finds (chunks of an older, longer version)."""
        try:
            found = await self._chunk_ids(document_id)
        except AzureError as exc:
            raise SearchBackendError(f"search index unavailable: {exc}") from exc
        return found | {chunk_key(document_id, ordinal) for ordinal in range(indexed_count)}

    async def _delete(self, ids: Iterable[str]) -> None:
        # Sorted: the same request for the same state, which logs and tests can compare.
        documents = [{"id": i} for i in sorted(ids)]
        if documents:
            await self._index(self.search_client.delete_documents, documents)

    async def upsert_document(
        self, document_id: int, chunks: list[IndexChunk], indexed_count: int = 0
    ) -> None:
        existing = await self._existing_ids(document_id, indexed_count)
        documents = [self._document(chunk) for chunk in chunks]
        await self._index(self.search_client.merge_or_upload_documents, documents)
        await self._delete(existing - {d["id"] for d in documents})

    async def delete_document(self, document_id: int, indexed_count: int = 0) -> None:
        await self._delete(await self._existing_ids(document_id, indexed_count))

    @staticmethod
    def _document(chunk: IndexChunk) -> dict[str, Any]:
        document = {
            "id": chunk.key,
            "document_id": str(chunk.document_id),
            "ordinal": chunk.ordinal,
            "title": chunk.title,
            "content": chunk.text,
            "citation": chunk.citation,
            "label": chunk.label,
            "collection": chunk.collection,
            "groups": list(chunk.groups),
        }
        if chunk.embedding:
            document[VECTOR_FIELD] = list(chunk.embedding)
        return document

    async def ping(self) -> None:
        try:
            await self.search_client.get_document_count()
        except AzureError as exc:
            raise SearchBackendError(f"search index unavailable: {exc}") from exc

    # -- reads ------------------------------------------------------------------------------------
    async def document_ids(self) -> set[int]:
        ids: set[int] = set()
        try:
            skip = 0
            while True:
                results = await self.search_client.search(
                    search_text="*", select=["document_id"], top=PAGE, skip=skip
                )
                page = [doc async for doc in results]
                ids.update(int(doc["document_id"]) for doc in page)
                if len(page) < PAGE:
                    return ids
                skip += PAGE
        except AzureError as exc:
            raise SearchBackendError(f"search index unavailable: {exc}") from exc

    async def search(self, query: SearchQuery) -> list[SearchHit]:
        from azure.search.documents.models import VectorizedQuery

        expression = access_filter(query)
        if expression is None:
            return []
        kwargs: dict[str, Any] = {
            "filter": expression or None,
            "top": query.top,
            "select": ["id", "document_id", "ordinal", "title", "content", "citation", "label",
                       "collection"],
        }  # fmt: skip
        mode = query.mode if query.vector is not None else "text"
        kwargs["search_text"] = query.text if mode in ("text", "hybrid") else None
        if mode in ("vectors", "hybrid") and query.vector is not None:
            kwargs["vector_queries"] = [
                VectorizedQuery(
                    vector=list(query.vector), k_nearest_neighbors=query.top, fields=VECTOR_FIELD
                )
            ]
        semantic = settings.AZURE_SEARCH_SEMANTIC_RANKER and kwargs["search_text"]
        if semantic:
            kwargs.update(query_type="semantic", semantic_configuration_name="default")
        try:
            results = await self.search_client.search(**kwargs)
            hits = []
            async for doc in results:
                reranker = doc.get("@search.reranker_score")
                if semantic and reranker is not None:
                    if reranker < settings.AZURE_SEARCH_MIN_RERANKER_SCORE:
                        continue
                hits.append(
                    SearchHit(
                        document_id=int(doc["document_id"]),
                        ordinal=int(doc["ordinal"]),
                        title=doc["title"],
                        text=doc["content"],
                        citation=doc["citation"],
                        label=doc.get("label") or "",
                        collection=doc.get("collection") or "",
                        score=round(
                            float(reranker if reranker is not None else doc["@search.score"]), 4
                        ),
                    )
                )
            return hits
        except HttpResponseError as exc:
            raise SearchBackendError(f"search failed: {exc.message}") from exc
        except AzureError as exc:
            raise SearchBackendError(f"search index unavailable: {exc}") from exc
