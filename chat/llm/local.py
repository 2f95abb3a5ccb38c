"""The offline answerer (OPENAI_HOST=local): no model, no key, no network.

It answers extractively: from the retrieved passages it picks the sentences that share the most
(inverse-frequency weighted) words with the question, cites each, and streams the result in small
deltas like a model would. When too little of the question is covered it says it found nothing.
"""

import asyncio
import math
import re
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field

from django.conf import settings

from chat.llm.base import AnswerChunk, Rewrite
from knowledge.chunking import split_sentences
from knowledge.search.base import SearchHit
from knowledge.search.naming import name_words
from knowledge.search.spelling import Vocabulary, words_of

NOTHING_FOUND = (
    "I could not find an answer to that in the documents available to you. "
    "Try rephrasing the question, or ask about another topic in the knowledge base."
)
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_STOP = frozenset(
    "a about after all also an and any are as at be been before being but by can could did do "
    "does doing for from had has have how i if in into is it its may me might must my no not of "
    "on or our out over should so than that the their them then there these they this those to "
    "under up us was we were what when where which while who whom why will with would you your "
    "get gets got please tell know much many".split()
)
MAX_SENTENCES = 4
MAX_CITATIONS = 3  # pages cited in one answer
MIN_WORDS = 5
# The evidence threshold: the best sentence must hold this share of the question's (weighted)
# words, or the answer is that nothing was found.
MIN_COVERAGE = 0.25
# Another page is quoted too when its best sentence holds at least this share of what the best
# page's does: answers that span two pages, or the same rule in two documents.
PAGE_SPREAD = 0.7
# Sentences of a document the question names (its title or file name words) count this much more.
NAMED_BONUS = 0.15
# Share of the question's words the passages must hold for a one-word match to count.
KNOWN_FOR_ONE_WORD = 0.66
WORDS_PER_DELTA = 3


def _stem(word: str) -> str:
    word = word.lower()
    for suffix in ("ing", "ies", "es", "ed", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def terms(text: str) -> set[str]:
    return {_stem(w) for w in _WORD.findall(text) if w.lower() not in _STOP}


@dataclass
class _Sentence:
    text: str
    rank: int  # of its passage among the retrieved ones
    position: int
    citations: list[str]  # every retrieved page that has this very sentence
    ranks: list[int] = field(default_factory=list)  # of those pages' passages
    named: bool = False  # from a document the question names
    score: float = 0.0
    coverage: float = 0.0


def _named_passages(question: str, passages: list[SearchHit]) -> set[int]:
    """Ranks of the passages whose document the question names (its title or file name words
    that the other passages' documents lack)."""
    words = words_of(question)
    names = [name_words(hit) & words for hit in passages]
    shared = frozenset.intersection(*names) if names else frozenset()
    named = {rank for rank, found in enumerate(names) if found - shared}
    return named if len(named) < len(passages) else set()


def _candidates(passages: list[SearchHit]) -> list[_Sentence]:
    by_text: dict[str, _Sentence] = {}
    for rank, hit in enumerate(passages):
        for position, sentence in enumerate(split_sentences(hit.text)):
            if len(sentence.split()) < MIN_WORDS:  # a bare heading is no answer
                continue
            key = " ".join(sentence.lower().split())
            found = by_text.get(key)
            if found is None:
                by_text[key] = _Sentence(sentence.strip(), rank, position, [hit.citation], [rank])
            elif hit.citation not in found.citations:
                found.citations.append(hit.citation)
                found.ranks.append(rank)
    return list(by_text.values())


def _choose(scored: list[_Sentence]) -> list[_Sentence]:
    """The best sentences: from the best page, and from other pages (at most MAX_CITATIONS in
    all) whose sentences come close to the best one."""
    best = scored[0]
    pages: list[str] = []
    chosen: list[_Sentence] = []
    for c in scored:
        if len(chosen) == MAX_SENTENCES:
            break
        if c.coverage < MIN_COVERAGE / 2:
            continue
        if best.named and not c.named:
            continue  # the question named the best sentence's document: not its twin
        quoted = [p for p in c.citations if p in pages]
        if not quoted and c is not best and c.score < best.score * PAGE_SPREAD:
            continue
        fresh = [p for p in c.citations if p not in pages][: MAX_CITATIONS - len(pages)]
        c.citations = quoted + fresh
        if not c.citations:
            continue
        pages.extend(fresh)
        chosen.append(c)
    return chosen


def _write(chosen: list[_Sentence]) -> str:
    """The sentences in reading order, each run from the same pages followed by its citations."""
    chosen.sort(key=lambda c: (c.rank, c.position))
    parts: list[str] = []
    for i, c in enumerate(chosen):
        sentence = c.text
        if i + 1 == len(chosen) or chosen[i + 1].citations != c.citations:
            stripped = sentence.rstrip(".!?")
            closing = sentence[len(stripped) :] or "."
            cites = "".join(f"[{p}]" for p in c.citations)
            sentence = f"{stripped} {cites}{closing}"
        parts.append(sentence)
    return " ".join(parts)


class LocalAnswerer:
    name = "local"

    async def rewrite_query(self, history: list[dict], question: str) -> Rewrite:
        return Rewrite(query=question, note="offline answerer: the question is the query")

    def compose(self, question: str, passages: list[SearchHit]) -> str:
        candidates = _candidates(passages)
        if not candidates:
            return NOTHING_FOUND
        sentence_terms = [terms(c.text) for c in candidates]
        # A misspelt question word counts as the passages' word nearest to it.
        vocabulary = Vocabulary(sorted(set().union(*sentence_terms)))
        wanted = {vocabulary.correct(t) for t in terms(question)}
        if not wanted:
            return NOTHING_FOUND
        frequency = {t: sum(t in s for s in sentence_terms) for t in wanted}
        weight = {t: math.log(1 + len(candidates) / (1 + frequency[t])) + 0.1 for t in wanted}
        total = sum(weight.values())
        # Evidence: how much of the question the passages know at all. When they know most of
        # it, a sentence with one of its words may answer ("how many days wfh" -> "Home office
        # days: up to 3 days a week"); when they do not, or the question has only two words,
        # one shared word is chance ("capital" of France vs venture capital), not an answer.
        known = sum(frequency[t] > 0 for t in wanted) / len(wanted)
        needed = 1 if known >= KNOWN_FOR_ONE_WORD and len(wanted) > 2 else min(2, len(wanted))
        named = _named_passages(question, passages)
        if named:  # a sentence the named document shares with its twin cites the named one
            for c in candidates:
                keep = [i for i, rank in enumerate(c.ranks) if rank in named] or range(len(c.ranks))
                c.citations = [c.citations[i] for i in keep]
                c.ranks = [c.ranks[i] for i in keep]
                c.rank = c.ranks[0]
        scored = []
        for candidate, found in zip(candidates, sentence_terms, strict=True):
            matched = wanted & found
            if len(matched) < needed:
                continue
            candidate.coverage = sum(weight[t] for t in matched) / total
            # Earlier-ranked passages win ties; very long sentences are slightly penalised.
            candidate.score = (
                candidate.coverage
                - 0.02 * candidate.rank
                - len(candidate.text) / 20000
                + (NAMED_BONUS if candidate.rank in named else 0.0)
            )
            candidate.named = candidate.rank in named
            scored.append(candidate)
        scored.sort(key=lambda c: c.score, reverse=True)
        if not scored or scored[0].coverage < MIN_COVERAGE:
            return NOTHING_FOUND
        return _write(_choose(scored))

    async def start_answer(
        self,
        history: list[dict],
        question: str,
        passages: list[SearchHit],
        temperature: float | None,
        reasoning_effort: str | None = None,
    ) -> AsyncGenerator[AnswerChunk, None]:
        return self.stream_answer(question, passages)

    async def stream_answer(self, question: str, passages: list[SearchHit]):
        answer = self.compose(question, passages)
        words = answer.split(" ")
        delay = settings.CHAT_STREAM_DELAY_SECONDS
        for start in range(0, len(words), WORDS_PER_DELTA):
            piece = " ".join(words[start : start + WORDS_PER_DELTA])
            yield AnswerChunk(delta=piece if start == 0 else " " + piece)
            if delay:
                await asyncio.sleep(delay)
        yield AnswerChunk(finish_reason="stop", usage={})

    async def followup_questions(
        self, question: str, answer: str, passages: list[SearchHit]
    ) -> list[str]:
        if answer == NOTHING_FOUND:
            return []
        cited = set(re.findall(r"\[([^\]]+)\]", answer))
        titles = []
        for hit in passages:
            if hit.citation not in cited and hit.title not in titles:
                titles.append(hit.title)
        return [f"What does “{title}” say?" for title in titles[:3]]

    async def close(self) -> None:
        return None
