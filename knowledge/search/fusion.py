"""Reciprocal rank fusion: merge ranked lists by 1 / (k + rank), the standard hybrid-search rule."""

from dataclasses import replace

from knowledge.search.base import SearchHit

RRF_K = 60


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
