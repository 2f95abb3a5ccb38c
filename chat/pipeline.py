"""One chat turn, for every channel (page, POST /chat, POST /chat/stream, websocket).

`prepare()` does everything that can still fail with an ordinary HTTP error (conversation, access,
retrieval); `stream()` then yields the protocol's events. The database is used before and after
the token stream, never during it, and the connection is released before the stream starts.
"""

import asyncio
import functools
import logging
import time
import uuid
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass, field

from asgiref.sync import sync_to_async
from django.conf import settings
from django.urls import reverse

from chat import store
from chat.history import trim_history
from chat.llm import get_answerer
from chat.llm.base import AnswerChunk, AnswerError
from chat.protocol import ChatRequest, ProtocolError
from chat.render import render_answer
from chat.turn_log import error_kind, log_failed_start, log_turn
from chat.turn_trace import TurnTrace
from core import log_context
from core.db import release_db
from knowledge import retrieval
from knowledge.access import AccessFilter, access_for, collection_visible
from knowledge.embeddings import embeddings_enabled, get_embedder
from knowledge.search import get_backend
from knowledge.search.base import SearchBackendError, SearchHit, SearchQuery

log = logging.getLogger(__name__)

CONTEXT = "response.context"
DELTA = "response.output_text.delta"
REASONING = "response.reasoning.delta"  # a reasoning model's visible thinking


@dataclass
class Turn:
    request: ChatRequest
    conversation_id: uuid.UUID
    history: list[dict]
    access: AccessFilter
    hits: list[SearchHit]
    thoughts: list[dict]
    data_points: dict
    timings: dict = field(default_factory=dict)
    usage: dict = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)
    message_id: int | None = None
    answer: AsyncGenerator[AnswerChunk, None] | None = None
    slot: object = None  # the caller's concurrent-stream slot (chat/limits.py)
    recorded: bool = False  # the answer row is written or being written
    trace: TurnTrace = field(default_factory=TurnTrace)

    async def close(self) -> None:
        """End the turn, whatever became of its stream: close the upstream answer stream, and
        if the stream never got to record the answer (the client left before it started, or
        right after its first event), record it as interrupted. Safe to call more than once."""
        if self.answer is not None:
            await self.answer.aclose()
        if not self.recorded:
            self.recorded = True
            try:
                await _save_answer(self, "", {"completed": False, "error": ""})
            finally:
                self.trace.finish(self.usage, None, None, "cancelled")

    @property
    def session_state(self) -> str:
        return str(self.conversation_id)


async def prepare(request: ChatRequest, user, session_key: str | None, access=None) -> Turn:
    started = time.perf_counter()
    traced = TurnTrace()
    try:
        return await _prepare(request, user, session_key, access, started, traced)
    except AnswerError as exc:
        kind = exc.kind or error_kind(exc.status)
        log_failed_start(kind, started)
        traced.failed_before_answer(kind)
        raise
    except BaseException as exc:  # a bad request, an outage, a client that left
        traced.failed_before_answer(type(exc).__name__)
        raise


async def _prepare(request, user, session_key, access, started: float, traced) -> Turn:
    if access is None:
        access = await access_for(user)
    if request.overrides.collection:
        await _check_collection(access, request.overrides.collection)
    with traced.phase("load conversation"):
        conversation_id, history = await store.turns.get().submit(
            store.Question(request, user, session_key)
        )
    log_context.bind(user_id=getattr(user, "pk", None), conversation_id=conversation_id)
    traced.span.set_attribute("ragsite.conversation_id", str(conversation_id))
    history = trim_history(history, settings.CHAT_HISTORY_TOKEN_BUDGET)
    answerer = get_answerer()
    rewrite = await answerer.rewrite_query(history, request.question)
    overrides = request.overrides
    searched = time.perf_counter()
    with traced.phase("retrieval") as span:
        try:
            query = await _search_query(rewrite.query, access, overrides)
            hits = await retrieval.search(query, get_backend())
        except SearchBackendError as exc:
            log.warning("search failed: %s", exc)
            raise _search_unavailable() from exc
        span.set_attributes(_retrieval_attributes(query, hits))
    answered = time.perf_counter()
    traced.llm_started(getattr(answerer, "model", answerer.name), settings.OPENAI_HOST)
    answer = await answerer.start_answer(
        history, request.question, hits, overrides.temperature, overrides.reasoning_effort
    )
    timings = {
        "prepare_ms": round((searched - started) * 1000, 1),
        "search_ms": round((answered - searched) * 1000, 1),
        "llm_start_ms": round((time.perf_counter() - answered) * 1000, 1),
    }
    return Turn(
        request=request,
        conversation_id=conversation_id,
        history=history,
        access=access,
        hits=hits,
        thoughts=_thoughts(query, rewrite, hits, answerer.name, get_backend()),
        data_points=data_points(hits, staff=access.all),
        timings=timings,
        usage=dict(rewrite.usage),
        started=started,
        answer=answer,
        trace=traced,
    )


def _search_unavailable() -> AnswerError:
    error = AnswerError(
        "The knowledge base search is unavailable right now. Please try again shortly.", 503
    )
    error.kind = "search_unavailable"
    return error


def _retrieval_attributes(query: SearchQuery, hits: list[SearchHit]) -> dict:
    return {
        "ragsite.search.backend": settings.SEARCH_BACKEND,
        "ragsite.search.mode": query.mode,
        "ragsite.search.top": query.top,
        "ragsite.search.hits": len(hits),
    }


async def _search_query(text: str, access: AccessFilter, overrides) -> SearchQuery:
    mode = overrides.retrieval_mode or ("hybrid" if embeddings_enabled() else "text")
    vector = None
    if mode != "text":
        if not embeddings_enabled():
            raise ProtocolError(
                f"retrieval_mode {mode!r} needs embeddings, which this server has not configured."
            )
        vector = await get_embedder().embed_query(text)
    return SearchQuery(
        text=text,
        access=access,
        collection=overrides.collection,
        top=overrides.top or settings.CHAT_DEFAULT_TOP,
        mode=mode,
        vector=vector,
    )


@functools.lru_cache(maxsize=4096)
def _source_url(document_id: int, ordinal: int) -> str:
    return reverse("knowledge:source", args=[document_id]) + f"?chunk={ordinal}"


async def _check_collection(access: AccessFilter, slug: str):
    """A collection the caller may read nothing in answers like one that does not exist."""

    def visible():
        try:
            return collection_visible(access, slug)
        finally:
            release_db()

    if not await sync_to_async(visible, thread_sensitive=False)():
        raise ProtocolError(f"There is no collection {slug!r}.")


def data_points(hits: list[SearchHit], staff: bool) -> dict:
    """The sources of an answer as the protocol's context shows them."""
    # Raw scores only for staff: a restricted document's words shift the shared index
    # statistics, so everyone else's scores would say something about text they may not read.
    return {
        "text": [f"{hit.citation}: {hit.text}" for hit in hits],
        "citations": list(dict.fromkeys(hit.citation for hit in hits)),
        "sources": [
            {
                "citation": hit.citation,
                "title": hit.title,
                "url": _source_url(hit.document_id, hit.ordinal),
                "document_id": hit.document_id,
                "chunk": hit.ordinal,
            }
            | ({"score": hit.score} if staff else {})
            for hit in hits
        ],
    }


def _thoughts(query: SearchQuery, rewrite, hits, answerer: str, backend) -> list[dict]:
    """The thought steps; group ids, the index filter and scores are for staff only."""
    staff = query.access.all
    access_props = {"backend": backend.name}
    if staff:
        access_props["filter"] = backend.filter_expression(query)
    return [
        {
            "title": "Search query",
            "description": query.text,
            "props": {
                "retrieval_mode": query.mode,
                "top": query.top,
                "collection": query.collection,
                "rewrite": rewrite.note,
            },
        },
        {
            "title": "Access filter",
            "description": query.access.describe() if staff else query.access.summary(),
            "props": access_props,
        },
        {
            "title": "Search results",
            "description": [
                {"citation": h.citation, "title": h.title, "label": h.label}
                | ({"score": h.score} if staff else {})
                for h in hits
            ],
            "props": {"count": len(hits)},
        },
        {"title": "Answerer", "description": answerer, "props": {}},
    ]


def _reasoning_thought(turn: Turn, thinking: str) -> dict:
    effort = turn.request.overrides.reasoning_effort or settings.OPENAI_REASONING_EFFORT
    return {
        "title": "Reasoning",
        "description": f"{turn.usage.get('reasoning_tokens') or 0} reasoning tokens",
        "props": {
            "reasoning_tokens": turn.usage.get("reasoning_tokens") or 0,
            "effort": effort or "model default",
            "shown_chars": len(thinking),
        },
    }


def visible_context(context: dict, readable: set[int], staff: bool) -> dict:
    """A stored answer's context as its reader may see it now: passages of documents they can
    no longer read are dropped, and scores, group ids and the index filter are for staff only.
    (The answer's own text stays as it was written.)"""
    if not isinstance(context, dict) or not context:
        return {}
    context = dict(context)
    points = dict(context.get("data_points") or {})
    sources = list(points.get("sources") or [])
    keep = [
        i
        for i, source in enumerate(sources)
        if isinstance(source, dict) and source.get("document_id") in readable
    ]

    def kept(items):
        items = list(items or [])
        return [items[i] for i in keep] if len(items) == len(sources) else []

    points["text"] = kept(points.get("text"))
    points["sources"] = [_scrub(sources[i], staff) for i in keep]
    points["citations"] = list(dict.fromkeys(s.get("citation") for s in points["sources"]))
    context["data_points"] = points
    thoughts = []
    for thought in context.get("thoughts") or []:
        thought = dict(thought)
        if thought.get("title") == "Search results":
            thought["description"] = [_scrub(h, staff) for h in kept(thought.get("description"))]
            thought["props"] = {**(thought.get("props") or {}), "count": len(keep)}
        elif thought.get("title") == "Access filter" and not staff:
            thought["description"] = "the documents you may read"
            thought["props"] = {
                k: v for k, v in (thought.get("props") or {}).items() if k != "filter"
            }
        thoughts.append(thought)
    context["thoughts"] = thoughts
    return context


def _scrub(item, staff: bool):
    if staff or not isinstance(item, dict):
        return item
    return {k: v for k, v in item.items() if k != "score"}


def cited_documents(context: dict) -> set[int]:
    sources = ((context or {}).get("data_points") or {}).get("sources") or []
    return {
        s["document_id"]
        for s in sources
        if isinstance(s, dict) and isinstance(s.get("document_id"), int)
    }


def _context(turn: Turn, **extra) -> dict:
    return {"data_points": turn.data_points, "thoughts": turn.thoughts, **extra}


async def stream(turn: Turn) -> AsyncGenerator[dict, None]:
    """The turn's events. Stopping early (cancel, disconnect) keeps the partial answer."""
    answerer = get_answerer()
    overrides = turn.request.overrides
    yield {"type": CONTEXT, "context": _context(turn), "session_state": turn.session_state}
    parts: list[str] = []
    thinking: list[str] = []
    state: dict[str, bool | str] = {"completed": False, "error": ""}
    first_token = finish_reason = None
    try:
        # aclosing: leaving early (cancel, disconnect) must close the upstream stream now,
        # not whenever the abandoned generator is garbage-collected.
        assert turn.answer is not None  # the turn's answer stream opens before its events
        async with aclosing(turn.answer) as chunks:
            async for chunk in chunks:
                if chunk.reasoning:
                    thinking.append(chunk.reasoning)
                    yield {"type": REASONING, "delta": chunk.reasoning}
                if chunk.delta:
                    if first_token is None:
                        first_token = time.perf_counter()
                    parts.append(chunk.delta)
                    yield {"type": DELTA, "delta": chunk.delta}
                if chunk.usage:
                    turn.usage.update(chunk.usage)
                finish_reason = chunk.finish_reason or finish_reason
        state["completed"] = True
    except AnswerError as exc:
        state["error"] = exc.message
        state["error_kind"] = error_kind(exc.status)
        yield {"error": exc.message}
    finally:
        answer = "".join(parts)
        turn.timings["first_token_ms"] = (
            round((first_token - turn.started) * 1000, 1) if first_token else None
        )
        turn.timings["total_ms"] = round((time.perf_counter() - turn.started) * 1000, 1)
        # Shielded: a cancelled stream must still record what the user already saw.
        turn.recorded = True
        state["reasoning"] = reasoning = "".join(thinking)
        if reasoning or turn.usage.get("reasoning_tokens"):
            turn.thoughts.append(_reasoning_thought(turn, reasoning))
        try:
            with turn.trace.phase("store answer"):
                await asyncio.shield(_save_answer(turn, answer, state))
        finally:
            log_turn(turn, state)
            first_token_s = first_token - turn.started if first_token else None
            turn.trace.finish(turn.usage, first_token_s, finish_reason, state.get("error_kind"))
    if not state["completed"]:
        return
    extra: dict[str, object] = {
        "usage": turn.usage,
        "timings": turn.timings,
        "message_id": turn.message_id,
    }
    if overrides.suggest_followup_questions:
        extra["followup_questions"] = await answerer.followup_questions(
            turn.request.question, answer, turn.hits
        )
    if overrides.render_html:
        extra["answer_html"] = render_answer(answer, turn.data_points["sources"])
    yield {"type": CONTEXT, "context": _context(turn, **extra), "session_state": turn.session_state}


async def _save_answer(turn: Turn, answer: str, state: dict) -> None:
    interrupted = not state["completed"]
    if interrupted and not answer and not state["error"]:
        state["error"] = "cancelled before the first word"
    fields = {
        "conversation_id": turn.conversation_id,
        "content": answer,
        "context": _context(turn),
        "usage": turn.usage,
        "timings": turn.timings,
        "interrupted": interrupted,
        "error": state["error"] if not answer else "",
        "reasoning": state.get("reasoning", ""),
    }
    try:
        turn.message_id = await store.turns.get().submit(store.Answer(fields))
    except Exception:  # the user already has the answer; losing the record must not crash
        log.exception("could not save the answer of conversation %s", turn.conversation_id)


async def run_to_completion(turn: Turn) -> dict:
    """The non-streaming form: every event folded into one response object."""
    output, context, error = [], {}, None
    async for event in stream(turn):
        if "error" in event:
            error = event["error"]
        elif event["type"] == DELTA:
            output.append(event["delta"])
        else:
            context = event["context"]
    return {
        "output_text": "".join(output),
        "context": context,
        "session_state": turn.session_state,
        "error": error,
    }
