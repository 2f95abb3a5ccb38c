"""Merging a text ranking and a vector ranking into one.

Reciprocal rank fusion (1 / (k + rank)) is the standard rule, and what the postgres backend's SQL
does. The embedded index instead adds the two scores, each scaled to its list's best, half and
half: measured on the public sets (eval/results.md), rank fusion let a page that both lists
placed second or third outrank the one BM25 was sure of (the sample knowledge base's recall@1 fell
from 1.00 to 0.83), where the scores keep that certainty and still bring in what only the vectors
found.
"""

from dataclasses import replace

from knowledge.search.base import SearchHit

RRF_K = 60
TEXT_WEIGHT = 0.5


def reciprocal_rank_fusion(rankings: list[list[SearchHit]], top: int) -> list[SearchHit]:
    scores: dict[tuple[int, int], float] = {}
    hits: dict[tuple[int, int], SearchHit] = {}
    for ranking in rankings:
        for rank, hit in enumerate(ranking, start=1):
            key = (hit.document_id, hit.ordinal)
            scores[key] = scores.get(key, 0.0) + 1.0 / (RRF_K + rank)
            hits.setdefault(key, hit)
    ordered = sorted(scores, key=scores.__getitem__, reverse=True)[:top]
    return [replace(hits[key], score=round(scores[key], 6)) for key in ordered]


def score_fusion(
    text: list[SearchHit], vectors: list[SearchHit], top: int, text_weight: float = TEXT_WEIGHT
) -> list[SearchHit]:
    """Hits by text_weight * BM25 / best BM25 + (1 - text_weight) * the cosine min-max scaled over
    the vector list (cosines of one model crowd into a narrow band, so their raw values say
    little); a hit missing from one list gets nothing from it."""
    scores: dict[tuple[int, int], float] = {}
    hits: dict[tuple[int, int], SearchHit] = {}
    for weight, ranking, floor in (
        (text_weight, text, 0.0),
        (1.0 - text_weight, vectors, min((h.score for h in vectors), default=0.0)),
    ):
        if not ranking:
            continue
        span = (max(h.score for h in ranking) - floor) or 1.0
        for hit in ranking:
            key = (hit.document_id, hit.ordinal)
            scores[key] = scores.get(key, 0.0) + weight * (hit.score - floor) / span
            hits.setdefault(key, hit)
    ordered = sorted(scores, key=scores.__getitem__, reverse=True)[:top]
    return [replace(hits[key], score=round(scores[key], 6)) for key in ordered]
