"""Sentence vectors, for the offline answerer: which sentence of a passage means what was asked.

The offline answerer quotes sentences; by their words alone it cannot tell that "Northwind
contributes 4 percent of your salary" answers "does the company put money into my retirement".
When it is the configured answerer and embeddings are on, indexing embeds every sentence of a
chunk that may answer (MIN_WORDS words or more), under its section's heading (`embedded_texts`),
and keeps them on the chunk row, float16 in the order of `sentences_of(chunk.text)`; at answer
time the question's vector (the one retrieval made, cached) is compared with the retrieved
passages' sentences in one row look-up. Building them costs about as much CPU again as the
chunk's own vector; answering with them a look-up.
"""

import re
from dataclasses import replace

import numpy as np
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db.models import Q

from core.db import release_db
from knowledge.anchors import is_anchor
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


def embedded_texts(text: str, label: str) -> list[str]:
    """What is embedded for each sentence of a chunk, in `sentences_of` order: the sentence under
    its section's heading. "The probation period is 6 months." under "Probation period" is what
    "how long is the trial period" asks about; without its heading e5 ranks it eleventh among
    its passages' sentences. A page, slide or sheet anchor says nothing of the topic."""
    heading = f"{label}: " if label and not is_anchor(label) else ""
    return [heading + sentence for _, sentence in sentences_of(text)]


def pack(vectors: list[tuple[float, ...]]) -> bytes:
    """Unit vectors as float16: half the bytes, and cosines good to three decimals."""
    if not vectors:
        return b""
    matrix = np.asarray(vectors, dtype=np.float32)
    matrix /= np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
    return matrix.astype(np.float16).tobytes()


def _beside(hit: SearchHit, document_id: int, label: str, ordinal: int) -> bool:
    """Whether a chunk is read with a hit that has no page: the chunks either side of it, which
    the hit's citation (the document's) cites too."""
    return (
        document_id == hit.document_id and not is_anchor(label) and abs(ordinal - hit.ordinal) <= 1
    )


def _widen(hit: SearchHit, rows: list[tuple[int, str, int, str, bytes | None]]) -> SearchHit:
    if is_anchor(hit.label):
        # A page's hit keeps its own text (its page's matching chunks): the answerer quoting the
        # rest of a long page measured worse on the public set.
        return hit
    around = [text for d, label, o, text, _ in rows if _beside(hit, d, label, o)]
    return replace(hit, text="\n\n".join(around)) if around else hit


def _rows(hits: list[SearchHit]) -> list[tuple[int, str, int, str, bytes | None]]:
    where = Q()
    for hit in hits:
        if is_anchor(hit.label):
            where |= Q(document_id=hit.document_id, label=hit.label)
        else:
            where |= Q(
                document_id=hit.document_id, ordinal__range=(hit.ordinal - 1, hit.ordinal + 1)
            )
    try:
        rows = Chunk.objects.filter(where).order_by("document_id", "ordinal")
        return [
            (document_id, label, ordinal, text, None if blob is None else bytes(blob))
            for document_id, label, ordinal, text, blob in rows.values_list(
                "document_id", "label", "ordinal", "text", "sentence_vectors"
            )
        ]
    finally:
        release_db()


async def context(question: str, hits: list[SearchHit]) -> tuple[list[SearchHit], dict[str, float]]:
    """The passages widened to their surroundings, and each of their sentences' cosine to the
    question by `sentence_key` (none for chunks whose vectors are still to come).

    A fact often sits a sentence past the chunk that matched ("Laptops are replaced every 36
    months." after the chunk about choosing one): the answerer reads the chunks either side of
    a hit without a page, whose citation (the document's) cites them too."""
    if not hits:
        return hits, {}
    rows = await sync_to_async(_rows, thread_sensitive=False)(hits)
    widened = [_widen(hit, rows) for hit in hits]
    # The page rows fetched for a page's hit include its chunks that did not match: only the
    # chunks the answerer reads are scored.
    read = [
        (text, blob)
        for d, _, _, text, blob in rows
        if blob and any(d == w.document_id and text in w.text for w in widened)
    ]
    found: dict[str, float] = {}
    if read:
        query = np.asarray(await get_embedder().embed_query(question), dtype=np.float32)
        query /= max(float(np.linalg.norm(query)), 1e-12)
        for text, blob in read:
            found.update(_cosines(text, blob, query))
    return widened, found


def _cosines(text: str, blob: bytes, query: np.ndarray) -> dict[str, float]:
    sentences = sentences_of(text)
    matrix = np.frombuffer(blob, dtype=np.float16)
    if not sentences or matrix.size != len(sentences) * query.size:
        return {}  # made with another model, or by another sentence splitter
    cosines = matrix.reshape(len(sentences), query.size).astype(np.float32) @ query
    return dict(zip((key for key, _ in sentences), cosines.tolist(), strict=True))
