"""Typo tolerance against the index's own vocabulary: a question word the index has never seen
("servcies") is replaced by the most common indexed word within one or two edits ("services")
that starts with the same letter.

Words the index knows are left alone, so a correctly spelled question costs one set look-up per
word; only unknown words pay for the fuzzy match (rapidfuzz, in C++, over the indexed words with
the same first letter).

A word the index lacks is often a real word, not a typo ("postal" where the index has "portal",
"bread" beside "read"), so the guess is kept narrow: people seldom mistype a word's first letter,
and one slip (a letter left out, two swapped) is what most typos are.
"""

import re
from collections.abc import Iterable

from rapidfuzz import process
from rapidfuzz.distance import OSA

WORD = re.compile(r"[^\W_]+", re.UNICODE)
MEMO_SIZE = 10_000
MIN_LENGTH = 5  # shorter words have too many neighbours one edit away to guess from
# Words that say nothing of what a question is about: left out of its search terms, and never
# taken for the name of a document ("and" in "Health and Safety").
STOPWORDS = frozenset(
    "a an and are as at be by can do does for from how i in is it me my of on or our should the "
    "to we what when where which who why will with you your".split()
)


def words_of(text: str) -> set[str]:
    """The words of a text as the vocabulary keeps them (lower case, at least three letters)."""
    return {w for w in WORD.findall(text.lower()) if len(w) >= 3}


def max_edits(word: str) -> int:
    return 1 if len(word) <= 8 else 2


class Vocabulary:
    def __init__(self, words_by_frequency: list[str]):
        # Most frequent first: among equally close candidates the common word wins.
        self.words = words_by_frequency
        self.known = frozenset(words_by_frequency)
        self._by_initial: dict[str, list[str]] = {}
        for word in words_by_frequency:
            self._by_initial.setdefault(word[:1], []).append(word)
        self._corrected: dict[str, str] = {}  # misspellings seen before (a bounded memo)
        # Passages matching each FTS term, for this state of the index (fts_terms.py).
        self.match_counts: dict[str, int] = {}

    def grown(self, words: Iterable[str]) -> "Vocabulary":
        """This vocabulary plus the `words` it lacks, counted as its rarest: for an index that
        gained documents, without reading every word again. Its memos start empty."""
        new = [w for w in dict.fromkeys(words) if w not in self.known]
        grown = Vocabulary.__new__(Vocabulary)
        grown.words = self.words + new
        grown.known = self.known.union(new)
        grown._by_initial = dict(self._by_initial)
        for initial in {w[:1] for w in new}:
            grown._by_initial[initial] = self._by_initial.get(initial, []) + [
                w for w in new if w[:1] == initial
            ]
        grown._corrected = {}
        grown.match_counts = {}
        return grown

    def correct(self, word: str) -> str:
        """The word itself when known (or too short or a number to guess), else its nearest
        indexed neighbour with the same first letter within max_edits, else the word unchanged."""
        if word in self.known or len(word) < MIN_LENGTH or any(c.isdigit() for c in word):
            return word
        found = self._corrected.get(word)
        if found is None:
            match = process.extractOne(
                word,
                self._by_initial.get(word[0], ()),
                scorer=OSA.distance,
                score_cutoff=max_edits(word),
            )
            found = match[0] if match else word
            if len(self._corrected) < MEMO_SIZE:
                self._corrected[word] = found
        return found
