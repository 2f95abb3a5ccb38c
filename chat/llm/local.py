"""The offline answerer (OPENAI_HOST=local): no model, no key, no network.

It answers extractively: it scores every sentence of the retrieved passages by the question's
words it holds (weighted by how rare they are among the passages, compared as word stems), with
half credit for the words of the sentences around it (a heading, the line before or after), and a
bonus when the question asks for a figure, a time or a person and the sentence has one. With
the offline embedding model on, each sentence's vector (made at index time, see
knowledge/sentence_vectors.py) adds how close its meaning is to the question's, so a sentence
that answers in other words ("pension" for "retirement") can lead. It quotes the best few
sentences, cites each one's page (at most three pages an answer), and streams the
result in small deltas like a model would. When the passages hold too little of the question it
says the documents do not answer it; if they share some of its words it then quotes the sentence
that comes closest, cited, so the reader can check. Only a question none of whose words are in
the passages (off-topic) gets the bare "not found".
"""

import asyncio
import math
import re
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from functools import lru_cache

import snowballstemmer
from django.conf import settings

from chat.llm.base import AnswerChunk, Rewrite
from knowledge import sentence_vectors
from knowledge.chunking import split_sentences
from knowledge.search.base import SearchHit
from knowledge.search.naming import name_words
from knowledge.search.spelling import MIN_LENGTH, STOPWORDS, Vocabulary, words_of
from knowledge.sentence_vectors import MIN_WORDS, WORD

NOT_STATED = "I could not find an answer to that in the documents available to you."
NOTHING_FOUND = (
    f"{NOT_STATED} Try rephrasing the question, or ask about another topic in the knowledge base."
)
CLOSEST = "The closest passage, in “{title}”, says: “{quote}” [{citation}]"
QUOTE_CHARS = 200  # a longer closest sentence is cut at a word and ended with "…"
# The search's stop words, and the words that weigh nothing in a question to be answered.
_STOP = STOPWORDS | frozenset(
    "about after all also am any been before being but could did doing get gets got had has have "
    "if im into its know lot many may might much must no not out over please so some tell than "
    "that their them then there these they this those under up us was were whats while whom "
    "would".split()
)
MAX_SENTENCES = 4
MAX_CITATIONS = 3  # pages cited in one answer
# The evidence threshold: the best sentence (with half its neighbours' words) must hold this
# share of the question's weighted words, or the answer is that nothing was found.
MIN_COVERAGE = 0.1
# Words of the heading a sentence is under count as its own ("Parking" above "Staff may use the
# 24 spaces in the courtyard"), words of the sentence before or after it this much of theirs.
HEADING_CREDIT = 1.0
NEIGHBOUR_CREDIT = 0.5
# Further sentences are quoted when they score at least this share of the best one's, so the fact
# a question asks for is in the answer even when another sentence shares more of its words...
SENTENCE_SPREAD = 0.45
# ...and another page is quoted (and cited) when its sentence comes this close: answers that span
# two pages, or the same rule in two documents.
PAGE_SPREAD = 0.55
# Sentences of a document the question names (its title or file name words) count this much more.
NAMED_BONUS = 0.15
# A question asking how much, how many, how long, when or who, and a sentence that has a figure,
# a date or a name.
FIGURE_BONUS = 0.12
# A sentence that one document repeats on several retrieved pages is its boilerplate (a running
# header, the same disclaimer on every page), rarely the answer: its score is scaled by this.
REPEATED = 0.6
# The retrieval's order: a sentence of the passage ranked n-th loses this much per place.
RANK_WEIGHT = 0.02
# When no quoted sentence is from the passage the retrieval ranked first, that passage's best
# sentence is quoted too (and its page cited) if it scores at least this share of the best one:
# retrieval saw more of the page than the words a sentence shares with the question.
TOP_PASSAGE = 0.3
# With sentence vectors (knowledge/sentence_vectors.py), how close a sentence's meaning is to the
# question adds this much to its score at most, and a sentence this close (scaled: 1 the closest,
# 0 the median) may lead an answer without sharing the question's words ("does the company put
# money into my retirement" -> "Northwind contributes 4 percent of your gross base salary").
MEANING_WEIGHT = 0.4
MEANING_LEADS = 0.9
# ...and a sentence this close counts as one more of the question's words found in it, for the
# evidence a sentence needs to be considered at all.
MEANING_COUNTS = 0.5
# Below this cosine (e5's) no sentence is about the question: unrelated text scores 0.70-0.80.
MEANING_FLOOR = 0.8
WORDS_PER_DELTA = 3

_FIGURE_WORDS = frozenset(
    "one two three four five six seven eight nine ten eleven twelve fifteen twenty thirty forty "
    "fifty hundred thousand first second third fourth fifth sixth seventh eighth ninth tenth "
    "once twice half quarter daily weekly monthly yearly annually noon midnight "
    "january february march april june july august september october november december "
    "monday tuesday wednesday thursday friday saturday sunday".split()
)
_ASKS_FIGURE = frozenset(
    "much many cost costs price fee fees pay paid pays expensive cheap amount allowance budget "
    "limit maximum max minimum rate percent percentage often long early soon fast late old age "
    "when number dial call phone deadline size big large small heavy weight days hours".split()
)
_MEASURES = frozenset("long often soon early fast quickly late far big large old tall high".split())
_ASKS_PERSON = frozenset("who whom whose".split())
_DIGIT = re.compile(r"\d")
_DIGITS = re.compile(r"\d+")
_NAME = re.compile(r"\b[A-Z][a-z]+ [A-Z][a-z]+")


# The Snowball (Porter 2) English stemmer, the family the embedded index's porter tokenizer uses:
# "pays", "paying" -> "pay"; "relocation", "relocate" -> "reloc".
_stem = snowballstemmer.stemmer("english").stemWord


def terms(text: str) -> set[str]:
    return _terms_of(WORD.findall(text.lower()))


def _terms_of(words: list[str]) -> set[str]:
    return {t for t in map(_term, words) if t}


@lru_cache(maxsize=65536)
def _term(word: str) -> str:
    """The word's stem, or "" for a stop word or a lone letter (the "s" of "company's")."""
    if word in _STOP or (len(word) == 1 and not word.isdigit()):
        return ""
    return _stem(word)


@lru_cache(maxsize=4096)
def _title_terms(title: str) -> frozenset[str]:
    return frozenset(terms(title))


@dataclass
class _Sentence:
    text: str
    rank: int  # of its passage among the retrieved ones
    position: int
    terms: set[str]
    heading: set[str]  # the terms of the heading above it
    context: set[str]  # the terms of the sentences around it
    figure: bool
    citations: list[str]  # every retrieved page that has this very sentence
    ranks: list[int] = field(default_factory=list)  # of those pages' passages
    documents: set[int] = field(default_factory=set)
    shape: str = ""  # its words, lower case, numbers left out
    key: str = ""  # its words, lower case: how its vector is found
    meaning: float = 0.0  # how close its vector is to the question's, scaled among the candidates
    repeated: bool = False  # on several retrieved pages of one document
    follower: bool = False  # has none of the question's words, only its neighbours do
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


def _candidates(passages: list[SearchHit]) -> tuple[list[_Sentence], set[str]]:
    """Every sentence of the passages that may answer (one per text, citing every page that
    has it), and every word of the passages."""
    by_text: dict[str, _Sentence] = {}
    # The pages of a document a sentence is on, its figures left out: a running header or a
    # disclaimer repeats on every page, sometimes with the page's number.
    shapes: dict[tuple[str, int], set[str]] = {}
    seen: set[str] = set()
    for rank, hit in enumerate(passages):
        sentences = split_sentences(hit.text)
        words = [WORD.findall(s.lower()) for s in sentences]
        found_terms = [_terms_of(w) for w in words]
        short = [len(w) < MIN_WORDS for w in words]
        title = _title_terms(hit.title)
        heading: set[str] = set()  # the terms of the last heading: it heads what follows it
        for position, sentence in enumerate(sentences):
            seen.update(words[position])
            own = found_terms[position]
            if short[position]:
                heading = own
                continue
            if all(t in title or t.isdigit() or t == "page" for t in own):
                continue  # the document's title, a page number: a running header or footer
            key = " ".join(words[position])  # = sentence_key(sentence): its vector's key
            figures = _DIGIT.search(sentence) is not None
            shape = _DIGITS.sub("#", key) if figures else key
            shapes.setdefault((shape, hit.document_id), set()).add(hit.citation)
            found = by_text.get(key)
            if found is None:
                context = found_terms[position - 1] if position else set()
                if position + 1 < len(sentences) and not short[position + 1]:
                    context = context | found_terms[position + 1]
                by_text[key] = _Sentence(
                    " ".join(sentence.split()),
                    rank,
                    position,
                    own,
                    (heading | title) - own,
                    context - own - heading,
                    figures or not _FIGURE_WORDS.isdisjoint(words[position]),
                    [hit.citation],
                    [rank],
                    {hit.document_id},
                    shape,
                    key,
                )
            elif hit.citation not in found.citations:
                found.citations.append(hit.citation)
                found.ranks.append(rank)
                found.documents.add(hit.document_id)
    candidates = list(by_text.values())
    for c in candidates:
        c.repeated = any(len(shapes[(c.shape, d)]) > 1 for d in c.documents)
    return candidates, seen


def _scale_meaning(candidates: list[_Sentence], similarity: dict[str, float]) -> float:
    """Each candidate's cosine to the question, scaled so the closest one is 1 and the median
    (or anything below) 0: e5's cosines all sit between 0.7 and 0.9, so the order tells more
    than the values. Returns the closest one's cosine."""
    found = sorted(similarity[c.key] for c in candidates if c.key in similarity)
    if len(found) < 3:
        return 0.0
    middle, top = found[len(found) // 2], found[-1]
    if top - middle < 1e-6:
        return 0.0
    for c in candidates:
        cosine = similarity.get(c.key)
        if cosine is not None:
            c.meaning = max(0.0, (cosine - middle) / (top - middle))
    return top


def _choose(best: _Sentence, scored: list[_Sentence]) -> list[_Sentence]:
    """The best sentences: the best one, the next ones that come close to it from pages already
    quoted, and those from other pages (at most MAX_CITATIONS in all) that come closer still."""
    pages: list[str] = list(best.citations[:MAX_CITATIONS])
    best.citations = list(pages)
    chosen: list[_Sentence] = [best]
    for c in scored:
        if len(chosen) == MAX_SENTENCES or c.score < best.score * SENTENCE_SPREAD:
            break
        if c is best or c.repeated or c.coverage < MIN_COVERAGE / 2:
            continue
        if best.named and not c.named:
            continue  # the question named the best sentence's document: not its twin
        quoted = [p for p in c.citations if p in pages]
        if not quoted and (c.follower or c.score < best.score * PAGE_SPREAD):
            continue
        if c.follower:
            c.citations = quoted
            chosen.append(c)
            continue
        fresh = [p for p in c.citations if p not in pages][: MAX_CITATIONS - len(pages)]
        c.citations = quoted + fresh
        if not c.citations:
            continue
        pages.extend(fresh)
        chosen.append(c)
    return chosen


def _add_top_passage(best: _Sentence, scored: list[_Sentence], chosen: list[_Sentence]) -> None:
    if len({p for c in chosen for p in c.citations}) >= MAX_CITATIONS:
        return
    for c in scored:
        if c.score < best.score * TOP_PASSAGE:
            return
        if c.ranks[0] == 0 and not c.follower and not c.repeated and (c.named or not best.named):
            c.citations = c.citations[:1]
            chosen.append(c)
            return


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


def _closest(
    candidates: list[_Sentence],
    wanted: set[str],
    weight: dict[str, float],
    passages: list[SearchHit],
) -> str:
    """Not found, then the sentence sharing most of the question's words, quoted and cited: too
    little evidence to answer with, enough for the reader to judge (and retrieval's order breaks
    ties). Called only when some sentence shares a word with the question."""
    sharing = [c for c in candidates if wanted & c.terms]
    # A sentence whose only words in common are its document's title ("Smart Thermostat - User
    # Manual Contents 1.") is a heading, not a passage to read, when there is another.
    sharing = [
        c for c in sharing if not wanted & c.terms <= _title_terms(passages[c.rank].title)
    ] or sharing
    best = max(
        sharing,
        key=lambda c: (
            sum(weight[t] for t in wanted & c.terms) * (REPEATED if c.repeated else 1.0)
            - RANK_WEIGHT * c.rank
        ),
    )
    quote = best.text
    if len(quote) > QUOTE_CHARS:
        quote = quote[:QUOTE_CHARS].rsplit(" ", 1)[0].rstrip(",;:") + "…"
    pointer = CLOSEST.format(
        title=passages[best.ranks[0]].title, quote=quote, citation=best.citations[0]
    )
    return f"{NOT_STATED} {pointer}."


class LocalAnswerer:
    name = "local"

    async def rewrite_query(self, history: list[dict], question: str) -> Rewrite:
        return Rewrite(query=question, note="offline answerer: the question is the query")

    def compose(
        self, question: str, passages: list[SearchHit], similarity: dict[str, float] | None = None
    ) -> str:
        candidates, seen = _candidates(passages)
        if not candidates:
            return NOTHING_FOUND
        closest = _scale_meaning(candidates, similarity) if similarity else 0.0
        typed = WORD.findall(question)
        asked = [w.lower() for w in typed]
        if not seen.issuperset(w for w in asked if len(w) >= MIN_LENGTH):
            # A misspelt question word counts as the passages' word nearest to it.
            vocabulary = Vocabulary(sorted(w for w in seen if len(w) >= 3))
            asked = [vocabulary.correct(w) for w in asked]
        # "how long", "how often": what kind of answer is asked for, not what it is about.
        wanted = {
            _term(w)
            for i, w in enumerate(asked)
            if _term(w) and not (w in _MEASURES and i and asked[i - 1] == "how")
        }
        if not wanted:
            return NOTHING_FOUND
        frequency = {t: sum(t in c.terms for c in candidates) for t in wanted}
        known = {t for t in wanted if frequency[t]}
        # A name or a number the passages never mention ("Mount Everest", "the 1998 cup") says
        # they are about something else, whatever other words they share with the question.
        specific = {
            _stem(asked[i])
            for i, w in enumerate(typed)
            if (i and w[0].isupper() or any(c.isdigit() for c in w)) and asked[i] not in _STOP
        }
        if not known:
            return NOTHING_FOUND  # off-topic: nothing to point to
        weight = {t: math.log(1 + len(candidates) / (1 + frequency[t])) + 0.1 for t in wanted}
        if not specific <= known:
            return _closest(candidates, wanted, weight, passages)
        total = sum(weight.values())
        # Evidence. When the passages know most of a longer question, a sentence with one of
        # its words may answer ("unused holidays next year?" -> "Unused leave is paid out");
        # when they know less, one shared word is chance ("thermostat" for "can the thermostat
        # open my garage door"), two may not be. Of a two-word question, one word the passages
        # lack leaves the other to answer; two they have but never together are chance
        # ("meaning" and "life").
        if len(wanted) <= 2:
            needed = len(known)
        else:
            needed = 1 if 3 * len(known) >= 2 * len(wanted) else 2
        # The sentences' meaning is scaled among them, so some sentence is always the closest:
        # it may stand in for the question's words only when it is close in absolute terms too
        # (a question about something else, "who won the football match last night", has no
        # sentence that close), or the passages know most of the words anyway.
        trusted = closest >= MEANING_FLOOR or 3 * len(known) >= 2 * len(wanted)
        wants_figure = not _ASKS_FIGURE.isdisjoint(asked)
        wants_person = not _ASKS_PERSON.isdisjoint(asked)
        named = _named_passages(question, passages)
        if named:  # a sentence the named document shares with its twin cites the named one
            for c in candidates:
                keep = [i for i, rank in enumerate(c.ranks) if rank in named] or range(len(c.ranks))
                c.citations = [c.citations[i] for i in keep]
                c.ranks = [c.ranks[i] for i in keep]
                c.rank = c.ranks[0]
        scored = []
        for candidate in candidates:
            matched = wanted & candidate.terms
            headed = wanted & candidate.heading
            near = wanted & candidate.context
            close = trusted and candidate.meaning >= MEANING_LEADS
            evidence = len(matched) + len(headed) + len(near)
            evidence += trusted and candidate.meaning >= MEANING_COUNTS
            if evidence < needed and not close:
                continue
            # A sentence with none of the question's words may still hold its answer next to
            # one that has them ("Lunch at the canteen." "A main course is EUR 4.20."): it can
            # follow a quoted sentence of its page, never lead an answer or bring a page.
            candidate.follower = not matched and not close
            candidate.coverage = (
                sum(weight[t] for t in matched)
                + HEADING_CREDIT * sum(weight[t] for t in headed)
                + NEIGHBOUR_CREDIT * sum(weight[t] for t in near)
            ) / total
            bonus = 0.0
            if wants_figure and candidate.figure:
                bonus += FIGURE_BONUS
            if wants_person and _NAME.search(candidate.text):
                bonus += FIGURE_BONUS
            candidate.named = candidate.rank in named
            # Earlier-ranked passages win ties; very long sentences are slightly penalised.
            candidate.score = (
                candidate.coverage * (REPEATED if candidate.repeated else 1.0)
                + bonus
                - RANK_WEIGHT * candidate.rank
                - len(candidate.text) / 20000
                + (NAMED_BONUS if candidate.named else 0.0)
                + MEANING_WEIGHT * candidate.meaning
            )
            scored.append(candidate)
        # A sentence with no word beyond the question's says nothing it does not ("Tech Bar in
        # Leipzig." for "when is the Tech Bar in Leipzig open"): a heading, a slide's title. It
        # is quoted only when nothing else may be.
        scored = [c for c in scored if c.terms - wanted] or scored
        scored.sort(key=lambda c: c.score, reverse=True)

        leader = next((c for c in scored if not c.follower), None)
        if leader is None or (
            leader.coverage < MIN_COVERAGE and not (trusted and leader.meaning >= MEANING_LEADS)
        ):
            return _closest(candidates, wanted, weight, passages)
        chosen = _choose(leader, scored)
        if all(0 not in c.ranks for c in chosen):
            _add_top_passage(leader, scored, chosen)
        return _write(chosen)

    async def start_answer(
        self,
        history: list[dict],
        question: str,
        passages: list[SearchHit],
        temperature: float | None,
        reasoning_effort: str | None = None,
    ) -> AsyncGenerator[AnswerChunk, None]:
        similarity = None
        if sentence_vectors.enabled():
            passages, similarity = await sentence_vectors.context(question, passages)
        return self.stream_answer(question, passages, similarity)

    async def stream_answer(
        self, question: str, passages: list[SearchHit], similarity: dict[str, float] | None = None
    ):
        answer = self.compose(question, passages, similarity)
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
