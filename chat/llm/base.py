"""The small interface every answerer implements: the offline one and the OpenAI-compatible ones."""

from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Protocol

from knowledge.search.base import SearchHit


class AnswerError(Exception):
    """An upstream failure, with a message fit for the end user."""

    def __init__(self, message: str, status: int = 502, retry_after: float | None = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.retry_after = retry_after
        self.kind: str | None = None  # a finer label than the status, where one is known


@dataclass
class AnswerChunk:
    delta: str = ""
    usage: dict | None = None
    finish_reason: str | None = None
    reasoning: str = ""  # the model's visible thinking, never part of the answer


@dataclass
class Rewrite:
    query: str
    usage: dict = field(default_factory=dict)
    note: str = ""


class Answerer(Protocol):
    name: str

    async def rewrite_query(self, history: list[dict], question: str) -> Rewrite:
        """A search query for the question, given the conversation so far."""

    async def start_answer(
        self,
        history: list[dict],
        question: str,
        passages: list[SearchHit],
        temperature: float | None,
        reasoning_effort: str | None = None,
    ) -> AsyncGenerator[AnswerChunk, None]:
        """Open the answer stream: raises AnswerError if the upstream refuses the request, so
        the caller can still answer with an HTTP error. Closing the returned iterator must stop
        the upstream at once."""

    async def followup_questions(
        self, question: str, answer: str, passages: list[SearchHit]
    ) -> list[str]: ...

    async def close(self) -> None: ...
