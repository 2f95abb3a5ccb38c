"""Sentence vectors, for the offline answerer: which sentence of a passage means what was asked.

The offline answerer quotes sentences; by their words alone it cannot tell that "Northwind
contributes 4 percent of your salary" answers "does the company put money into my retirement".
When it is the configured answerer and embeddings are on, indexing embeds every sentence of a
chunk that may answer (MIN_WORDS words or more) and keeps them on the chunk row, float16 in the
order of `sentences_of(chunk.text)`; at answer time the question's vector (the one retrieval
made, cached) is compared with the retrieved passages' sentences in one row look-up. Building
them costs about as much CPU again as the chunk's own vector; answering with them a look-up.
"""

import re

import numpy as np
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db.models import Q

from core.db import release_db
from knowledge.chunking import split_sentences
from knowledge.embeddings import embeddings_enabled, get_embedder
from knowledge.models import Chunk
from knowledge.search.base import SearchHit

WORD = re.compile(r"[^\W_]+", re.UNICODE)
MIN_WORDS = 4  # a shorter "sentence" is a heading or a label: context, not an answer


def enabled() -> bool:
    return embeddings_enabled() and settings.OPENAI_HOST == "local"


def sentence_key(sentence: str) -> str:
    """Its words, lower case: the same sentence in two passages (or two syncs) has one key."""
    return " ".join(WORD.findall(sentence.lower()))


def sentences_of(text: str) -> list[tuple[str, str]]:
    """(key, sentence) of every sentence of `text` that may answer, in order."""
    found = []
    for sentence in split_sentences(text):
        key = sentence_key(sentence)
        if key.count(" ") + 1 >= MIN_WORDS:
            found.append((key, sentence))
    return found


def pack(vectors: list[tuple[float, ...]]) -> bytes:
    """Unit vectors as float16: half the bytes, and cosines good to three decimals."""
    if not vectors:
        return b""
    matrix = np.asarray(vectors, dtype=np.float32)
    matrix /= np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
    return matrix.astype(np.float16).tobytes()


def _rows(hits: list[SearchHit]) -> list[tuple[str, bytes]]:
    """The chunks behind the hits: a page's every chunk (a hit stands for its page), else the
    hit's own."""
    where = Q()
    for hit in hits:
        if hit.label.startswith("page="):
            where |= Q(document_id=hit.document_id, label=hit.label)
        else:
            where |= Q(document_id=hit.document_id, ordinal=hit.ordinal)
    try:
        rows = Chunk.objects.filter(where).exclude(sentence_vectors=None)
        return [
            (text, bytes(blob or b""))
            for text, blob in rows.values_list("text", "sentence_vectors")
        ]
    finally:
        release_db()


async def similarity(question: str, hits: list[SearchHit]) -> dict[str, float]:
    """Each retrieved sentence's cosine to the question, by `sentence_key`; empty when the
    chunks have no sentence vectors yet (they follow the text into the index)."""
    if not hits:
        return {}
    rows = await sync_to_async(_rows, thread_sensitive=False)(hits)
    if not rows:
        return {}
    query = np.asarray(await get_embedder().embed_query(question), dtype=np.float32)
    query /= max(float(np.linalg.norm(query)), 1e-12)
    found: dict[str, float] = {}
    for text, blob in rows:
        sentences = sentences_of(text)
        matrix = np.frombuffer(blob, dtype=np.float16)
        if not sentences or matrix.size != len(sentences) * query.size:
            continue  # made with another model, or by another sentence splitter: skip
        cosines = matrix.reshape(len(sentences), query.size).astype(np.float32) @ query
        found.update(zip((key for key, _ in sentences), cosines.tolist(), strict=True))
    return found
