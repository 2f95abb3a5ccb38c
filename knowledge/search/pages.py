"""One hit per page: a long page is several chunks, and five hits from one page hide the other
pages a question may need. The best chunk of a page stands for it, and the page's other matching
chunks join its text, so the answerer sees what the page says around the best passage."""

from dataclasses import replace

from knowledge.search.base import SearchHit


def page_key(hit: SearchHit) -> tuple[int, str]:
    # Segments without a page label (sections of a web page, a whole text) stay one per chunk.
    return (hit.document_id, hit.label if hit.label.startswith("page=") else f"#{hit.ordinal}")


def distinct_pages(hits: list[SearchHit], top: int) -> list[SearchHit]:
    """The first `top` distinct pages in rank order, each with its matching chunks' text."""
    best: dict[tuple[int, str], SearchHit] = {}
    extra: dict[tuple[int, str], list[SearchHit]] = {}
    for hit in hits:
        key = page_key(hit)
        if key in best:
            extra[key].append(hit)
        elif len(best) < top:
            best[key] = hit
            extra[key] = []
    out = []
    for key, hit in best.items():
        if extra[key]:
            parts = sorted([hit, *extra[key]], key=lambda h: h.ordinal)
            hit = replace(hit, text="\n\n".join(p.text for p in parts))
        out.append(hit)
    return out
