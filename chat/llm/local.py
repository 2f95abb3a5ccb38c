"""The offline answerer (OPENAI_HOST=local): no model, no key, no network.

It answers extractively: from the retrieved passages it picks the sentences that share the most
(inverse-frequency weighted) words with the question, cites each, and streams the result in small
deltas like a model would. When too little of the question is covered it says it found nothing.
"""

import asyncio
import math
import re
from collections.abc import AsyncGenerator

from django.conf import settings

from chat.llm.base import AnswerChunk, Rewrite
from knowledge.chunking import split_sentences
from knowledge.search.base import SearchHit

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
MIN_WORDS = 5
MIN_COVERAGE = 0.25
WORDS_PER_DELTA = 3


def _stem(word: str) -> str:
    word = word.lower()
    for suffix in ("ing", "ies", "es", "ed", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def terms(text: str) -> set[str]:
    return {_stem(w) for w in _WORD.findall(text) if w.lower() not in _STOP}


class LocalAnswerer:
    name = "local"

    async def rewrite_query(self, history: list[dict], question: str) -> Rewrite:
        return Rewrite(query=question, note="offline answerer: the question is the query")

    def compose(self, question: str, passages: list[SearchHit]) -> str:
        wanted = terms(question)
        candidates = [
            (rank, position, sentence, hit.citation)
            for rank, hit in enumerate(passages)
            for position, sentence in enumerate(split_sentences(hit.text))
            if len(sentence.split()) >= MIN_WORDS  # a bare heading is no answer
        ]
        if not wanted or not candidates:
            return NOTHING_FOUND
        sentence_terms = [terms(c[2]) for c in candidates]
        frequency = {t: sum(t in s for s in sentence_terms) for t in wanted}
        weight = {t: math.log(1 + len(candidates) / (1 + frequency[t])) + 0.1 for t in wanted}
        total = sum(weight.values())
        scored = []
        for candidate, found in zip(candidates, sentence_terms, strict=True):
            matched = wanted & found
            covered = sum(weight[t] for t in matched)
            # One shared word is chance ("capital" of France vs venture capital), not an answer.
            if len(matched) >= min(2, len(wanted)):
                # Earlier-ranked passages win ties; very long sentences are slightly penalised.
                score = covered / total - 0.02 * candidate[0] - len(candidate[2]) / 20000
                scored.append((score, covered / total, candidate))
        scored.sort(key=lambda item: item[0], reverse=True)
        if not scored or scored[0][1] < MIN_COVERAGE:
            return NOTHING_FOUND
        best = [c for _, coverage, c in scored[:MAX_SENTENCES] if coverage >= MIN_COVERAGE / 2]
        best.sort(key=lambda c: (c[0], c[1]))  # reading order
        parts: list[str] = []
        for i, (_, _, sentence, citation) in enumerate(best):
            sentence = sentence.strip()
            ends_group = i + 1 == len(best) or best[i + 1][3] != citation
            if ends_group:
                stripped = sentence.rstrip(".!?")
                closing = sentence[len(stripped) :] or "."
                sentence = f"{stripped} [{citation}]{closing}"
            parts.append(sentence)
        return " ".join(parts)

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
