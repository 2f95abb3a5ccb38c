"""Preferring the document a question names: "what does the premier plan pay for glasses" should
rank the Premier guide's page above the same page of its near-twin, the Essential guide.

A word of the question that is in some candidates' titles or file names but not in all of them
names a document; candidates it names get their score raised by NAME_BOOST. Words every candidate
title shares ("plan", "guide") say nothing about which one is meant, and neither do function
words ("and" in "Health and Safety" is no reason to prefer it).
"""

from dataclasses import replace
from functools import lru_cache

from knowledge.search.base import SearchHit
from knowledge.search.spelling import STOPWORDS, words_of

NAME_BOOST = 0.25


def name_words(hit: SearchHit) -> frozenset[str]:
    return _name_words(hit.title, hit.citation.split("#")[0])


@lru_cache(maxsize=4096)
def _name_words(title: str, file_name: str) -> frozenset[str]:
    words = words_of(title) | words_of(file_name.replace("-", " ").replace("_", " "))
    return frozenset(words - STOPWORDS)


def prefer_named(hits: list[SearchHit], question: set[str]) -> list[SearchHit]:
    """The hits re-ranked by score with the named documents' boost (scores: higher is better)."""
    if not hits or not question:
        return hits
    names = {(h.document_id): name_words(h) & question for h in hits}
    shared = frozenset.intersection(*names.values())
    named = {doc for doc, words in names.items() if words - shared}
    if not named or len(named) == len(names):
        return hits
    boosted = [
        replace(h, score=h.score * (1 + NAME_BOOST)) if h.document_id in named else h for h in hits
    ]
    return sorted(boosted, key=lambda h: h.score, reverse=True)
