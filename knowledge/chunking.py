"""Sentence-aware chunking: ~CHUNK_TARGET_CHARS per chunk, never over CHUNK_MAX_TOKENS tokens,
with about CHUNK_OVERLAP_RATIO of the previous chunk repeated so a fact cut at a border survives.

Each segment (a PDF page, a section) is chunked on its own, so every chunk keeps one page label
and its citation points at the right page.
"""

import re
from dataclasses import dataclass

from django.conf import settings

from knowledge.tokens import count_tokens, encoding

# A sentence ends at . ! ? (optionally closed by a quote or bracket) followed by white space, or
# at a blank line. Good enough for handbook prose; abbreviations only cost a slightly early cut.
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+|\n\s*\n")
_SPACES = re.compile(r"[ \t\r\f\v]+")
# PDF text breaks lines where the page wrapped them; a single newline is just a space.
_WRAP = re.compile(r"(?<!\n)\n(?!\n)")


@dataclass(frozen=True)
class ChunkText:
    text: str
    label: str
    token_count: int


def split_sentences(text: str) -> list[str]:
    text = _SPACES.sub(" ", _WRAP.sub(" ", text))
    return [s.strip() for s in _SENTENCE_END.split(text) if s and s.strip()]


def _split_long(sentence: str, max_tokens: int) -> list[str]:
    """A 'sentence' longer than the token cap (a table, a run-on list) is cut by tokens."""
    enc = encoding()
    ids = enc.encode(sentence, disallowed_special=())
    return [enc.decode(ids[i : i + max_tokens]) for i in range(0, len(ids), max_tokens)]


def chunk_segments(segments: list[dict]) -> list[ChunkText]:
    target = settings.CHUNK_TARGET_CHARS
    max_tokens = settings.CHUNK_MAX_TOKENS
    overlap_chars = int(target * settings.CHUNK_OVERLAP_RATIO)
    chunks: list[ChunkText] = []
    for segment in segments:
        label = segment.get("label", "")
        units: list[tuple[str, int]] = []
        for sentence in split_sentences(segment.get("text", "")):
            tokens = count_tokens(sentence)
            if tokens > max_tokens:
                units.extend((p, count_tokens(p)) for p in _split_long(sentence, max_tokens))
            else:
                units.append((sentence, tokens))
        chunks.extend(_pack(units, label, target, max_tokens, overlap_chars))
    return chunks


def _pack(units, label, target, max_tokens, overlap_chars) -> list[ChunkText]:
    out: list[ChunkText] = []
    current: list[tuple[str, int]] = []

    def size(items):
        return sum(len(t) + 1 for t, _ in items), sum(n for _, n in items)

    i = 0
    fresh = 0  # sentences in `current` not yet emitted in an earlier chunk
    while i < len(units):
        candidate = current + [units[i]]
        chars, tokens = size(candidate)
        if current and fresh and (chars > target or tokens > max_tokens):
            out.append(_emit(current, label))
            current = _overlap_tail(current, overlap_chars, max_tokens - units[i][1])
            fresh = 0
            continue
        if tokens > max_tokens:  # overlap plus this unit would not fit: drop the overlap
            current = []
            continue
        current = candidate
        fresh += 1
        i += 1
    if current and fresh:
        out.append(_emit(current, label))
    return out


def _overlap_tail(items, overlap_chars, token_room):
    tail: list[tuple[str, int]] = []
    chars = tokens = 0
    for text, n in reversed(items):
        if chars + len(text) > overlap_chars or tokens + n > token_room:
            break
        tail.insert(0, (text, n))
        chars += len(text) + 1
        tokens += n
    return tail


def _emit(items, label) -> ChunkText:
    text = " ".join(t for t, _ in items)
    return ChunkText(text=text, label=label, token_count=count_tokens(text))
