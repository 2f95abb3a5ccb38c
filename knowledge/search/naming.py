"""Preferring the document a question names: "what does the premier plan pay for glasses" should
rank the Premier guide's page above the same page of its near-twin, the Essential guide.

A word of the question that is in some candidates' titles or file names but not in all of them
names a document; candidates it names get their score raised by NAME_BOOST. Words every candidate
title shares ("plan", "guide") say nothing about which one is meant.
"""

from dataclasses import replace

from knowledge.search.base import SearchHit
from knowledge.search.spelling import words_of

NAME_BOOST = 0.25


def name_words(hit: SearchHit) -> set[str]:
    return words_of(hit.title) | words_of(hit.citation.split("#")[0].replace("-", " "))


def prefer_named(hits: list[SearchHit], question: set[str]) -> list[SearchHit]:
    """The hits re-ranked by score with the named documents' boost (scores: higher is better)."""
    if not hits or not question:
        return hits
    names = {(h.document_id): name_words(h) & question for h in hits}
    shared = set.intersection(*names.values())
    named = {doc for doc, words in names.items() if words - shared}
    if not named or len(named) == len(names):
        return hits
    boosted = [
        replace(h, score=h.score * (1 + NAME_BOOST)) if h.document_id in named else h for h in hits
    ]
    return sorted(boosted, key=lambda h: h.score, reverse=True)
