"""A question as an FTS5 query, and a narrower one when scoring every match would cost too much.

BM25 in FTS5 scores every passage a query matches before it can sort them: about 2.5 µs a match,
so three words common in a large index (a fifth of 100k passages) cost 50 ms, most of it spent
ranking passages that hold one common word and nothing else, which come last anyway. When the
question's words match more than SCORE_BUDGET passages in all, the query keeps every rarer word
(each matching at most COMMON_ROWS passages) and lets common words in only two at a time: a
passage qualifies by holding a rarer word or two of the common ones (Lucene's "common terms"
idea). Every passage holding a rarer word is still a candidate; those holding a single common
word are not, and a common word no longer adds to the score of a passage it did not qualify.
An index small enough that every match is cheap to score (most knowledge bases) is never
narrowed; the caller falls back to the whole query when the narrow one finds too few.
"""

import re
import sqlite3
from itertools import combinations

from knowledge.search.spelling import STOPWORDS, Vocabulary

_WORD = re.compile(r"\w+", re.UNICODE)
_MAX_QUERY_TERMS = 64
SCORE_BUDGET = 4000
COMMON_ROWS = 1000
# The rarest common words paired (n words make n(n-1)/2 pairs, each an index walk).
_COMMON_PAIRED = 5
_COUNTS_KEPT = 50_000


def fts_terms(text: str, vocabulary: Vocabulary | None = None) -> list[str]:
    """The question's words as FTS5 phrases: each quoted (so no FTS syntax gets through), stop
    words dropped, words the index does not know replaced by their nearest known spelling."""
    words = [w.lower() for w in _WORD.findall(text)]
    if vocabulary is not None:  # first, so that "whats" becomes a stop word like "what"
        words = [vocabulary.correct(w) for w in words]
    meaningful = [w for w in words if w not in STOPWORDS] or words
    unique = list(dict.fromkeys(meaningful))[:_MAX_QUERY_TERMS]
    return ['"' + w.replace('"', '""') + '"' for w in unique]


def fts_query(text: str, vocabulary: Vocabulary | None = None) -> str:
    """User text as an FTS5 query: its terms OR-ed."""
    return " OR ".join(fts_terms(text, vocabulary))


def narrowed_query(
    conn: sqlite3.Connection, terms: list[str], counts: dict[str, int]
) -> str | None:
    """The narrower query for `terms` when scoring all their matches would exceed the budget,
    else None (use them all). `counts` memoises each term's number of matching passages: the
    caller empties it when the index changes."""
    if len(terms) < 2:
        return None
    (last,) = conn.execute("SELECT max(rowid) FROM chunks_fts").fetchone()
    if not last or last <= SCORE_BUDGET:  # the whole index is cheap to score
        return None
    for term in terms:
        if term not in counts:
            if len(counts) >= _COUNTS_KEPT:
                counts.clear()
            counts[term] = conn.execute(
                "SELECT count(*) FROM chunks_fts WHERE chunks_fts MATCH ?", [term]
            ).fetchone()[0]
    sizes = [counts[t] for t in terms]
    if sum(sizes) <= SCORE_BUDGET:
        return None
    rare = [t for t, n in zip(terms, sizes, strict=True) if n <= COMMON_ROWS]
    common = [t for n, t in sorted(zip(sizes, terms, strict=True)) if n > COMMON_ROWS]
    pairs = [f"({a} AND {b})" for a, b in combinations(common[:_COMMON_PAIRED], 2)]
    if not rare and not pairs:
        return None
    return " OR ".join(rare + pairs)
