"""A fake OpenAI-compatible (and Azure OpenAI-compatible) HTTP server for tests and benchmarks.

What it covers of the API:

* ``POST /v1/chat/completions`` (OpenAI and compatible servers),
  ``POST /openai/v1/chat/completions`` (Azure OpenAI v1 API) and
  ``POST /openai/deployments/{deployment}/chat/completions`` (Azure's older deployment paths, as
  ``AsyncAzureOpenAI(azure_endpoint=...)`` sends them). Non-streamed
  (``chat.completion``) and streamed (server-sent events of ``chat.completion.chunk`` objects ending
  with ``data: [DONE]``); a final usage chunk when ``stream_options.include_usage`` is true; on the
  Azure paths the first chunk has empty ``choices`` and ``prompt_filter_results``, as Azure sends.
  ``max_tokens`` / ``max_completion_tokens`` cut the answer (counted in words) with
  ``finish_reason: "length"``. Tools, ``n > 1``, logprobs, audio and images are not covered: the
  answer is always plain assistant text.
* ``POST /v1/embeddings`` (and the same two Azure forms): deterministic vectors (a hashed bag of
  lower-cased words into ``dimensions`` dims, L2-normalised, see :func:`embed`), in ``float`` or
  ``base64`` ``encoding_format`` (the openai SDK asks for base64 by default); exact vectors can be
  registered for given texts.
* ``GET /v1/models``: one chat model and one embedding model.
* Credentials, as the services require them: a key of ``api_keys`` (default
  :data:`DEFAULT_API_KEY`) as ``api-key`` header or bearer token, or on the Azure paths a
  Microsoft Entra token of ``entra_tokens`` (default :data:`DEFAULT_ENTRA_TOKEN`) as bearer
  token; anything else is a 401 in the service's shape. ``require_auth=False`` (or
  :meth:`FakeOpenAI.allow_anonymous`) accepts anything, as a compatible server without keys.
* Errors in the shapes the real services use: 401, 429 "rate_limit_exceeded" with
  ``retry-after-ms``, ``retry-after`` in seconds or ``retry-after`` as an HTTP-date
  (:func:`rate_limit`), 429 "insufficient_quota" without a retry header
  (:func:`insufficient_quota`), 5xx, Azure's content-filter 400 (``code: "content_filter"`` with
  ``innererror.content_filter_result``), and a 400 for a malformed request.
* Streams framed in every way server-sent events allow (:class:`Framing`): ``\\n``,
  ``\\r\\n`` or ``\\r`` line ends, comment lines, ``event:`` and ``id:`` lines, data over
  several ``data:`` lines.

The answer text: by default a deterministic echo built from the prompt. Every source given to the
model as a line ``[name]: text`` (in any message) is cited: ``According to the sources, <first
words of the source> [name]. <...> [other].``; without sources it says it does not know. When a
system message asks for a "search query" (the query-rewrite step) and there are no sources, the
answer is the last user question itself. A test can instead set a fixed answer for the server
(:meth:`FakeOpenAI.set_answer`) or script the next requests with a queue of behaviours
(:meth:`FakeOpenAI.enqueue` with :func:`reply`, :func:`rate_limit`, :func:`server_error`,
:func:`content_filter_error`, :func:`content_filter_mid_stream`, :func:`drop_connection`,
:func:`hang`), or make one behaviour permanent (:meth:`FakeOpenAI.always`).

Every request is recorded in :attr:`FakeOpenAI.requests` (path, headers, JSON body, time, chunks
sent, and whether and when the client went away before the response was finished).

Standalone, for benchmarks (uses uvloop when importable)::

    python -m tests.fakes.openai_server --port 8901 --ttft 0.3 --chunks 40 --chunk-interval 0.025
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import dataclasses
import email.utils
import functools
import itertools
import json
import math
import re
import struct
import time
import zlib
from collections.abc import Iterable, Sequence
from typing import Any

from aiohttp import web

from . import reasoning
from .server import BackgroundServer, RecordedRequest, record_request

__all__ = [
    "CR",
    "CRLF",
    "DEFAULT_API_KEY",
    "DEFAULT_ENTRA_TOKEN",
    "LF",
    "Behaviour",
    "FakeOpenAI",
    "Framing",
    "RecordedRequest",
    "insufficient_quota",
    "content_filter_error",
    "content_filter_mid_stream",
    "default_answer",
    "drop_connection",
    "embed",
    "hang",
    "rate_limit",
    "reply",
    "server_error",
]


# --------------------------------------------------------------------------------------------------
# Credentials and stream framing
# --------------------------------------------------------------------------------------------------

DEFAULT_API_KEY = "sk-fake-openai-key"
DEFAULT_ENTRA_TOKEN = "fake-entra-token"


@dataclasses.dataclass(frozen=True)
class Framing:
    """How the server-sent events of a streamed answer are framed: every way the SSE format
    allows that a chat completions stream may use.

    ``newline``: the line end, ``\\n``, ``\\r\\n`` or ``\\r`` (an event ends with two).
    ``comments``: a ``: keep-alive`` comment block before every event. ``events``: an ``event:
    message`` line in every event. ``ids``: an ``id: N`` line in every event (the id is kept
    across events, so a later comment block is a blank dispatch for a naive decoder).
    ``split_data``: each JSON object over two ``data:`` lines (joined by a newline, which JSON
    allows between members). ``compact``: ``data:{...}``, without the optional space.
    """

    newline: bytes = b"\n"
    comments: bool = False
    events: bool = False
    ids: bool = False
    split_data: bool = False
    compact: bool = False

    def frame(self, payload: bytes, n: int) -> bytes:
        """One event carrying ``payload`` (n: its position in the stream)."""
        nl = self.newline
        out = b""
        if self.comments:
            out += b": keep-alive" + nl + nl
        if self.events:
            out += b"event: message" + nl
        if self.ids:
            out += b"id: " + str(n).encode() + nl
        field = b"data:" if self.compact else b"data: "
        cut = payload.find(b',"choices"') if self.split_data else -1
        parts = [payload[:cut], payload[cut:]] if cut > 0 else [payload]
        for part in parts:
            out += field + part + nl
        return out + nl


LF = Framing()
CRLF = Framing(newline=b"\r\n")
CR = Framing(newline=b"\r")
EVERY_FORM = Framing(
    newline=b"\r\n", comments=True, events=True, ids=True, split_data=True, compact=True
)


# --------------------------------------------------------------------------------------------------
# Behaviours
# --------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Behaviour:
    """What the fake does with one request. Build them with the helper functions below.

    ``kind``: ``ok`` (answer), ``error`` (``status`` + ``body`` + ``headers``), ``filter``
    (content filter mid-stream after ``after`` chunks), ``drop`` (abort the connection after
    ``after`` chunks), ``hang`` (send ``after`` chunks, then wait until the client goes away).
    ``endpoint``: ``chat``, ``embeddings`` or ``any``: which requests it applies to.
    ``text``, ``ttft``, ``chunks``, ``chunk_interval``: override the server's answer and latency.
    """

    kind: str = "ok"
    endpoint: str = "chat"
    text: str | None = None
    status: int = 200
    body: dict[str, Any] | None = None
    headers: tuple[tuple[str, str], ...] = ()
    after: int = 0
    ttft: float | None = None
    chunks: int | None = None
    chunk_interval: float | None = None
    finish_reason: str = "stop"
    retry_at: float | None = None  # seconds from the response: a Retry-After HTTP-date
    framing: Framing | None = None


def reply(
    text: str | None = None,
    *,
    ttft: float | None = None,
    chunks: int | None = None,
    chunk_interval: float | None = None,
    finish_reason: str = "stop",
    framing: Framing | None = None,
) -> Behaviour:
    """Answer normally, with this exact text (None: the server's answer) and/or latency, and
    streamed with ``framing`` (None: the server's)."""
    return Behaviour(
        text=text,
        ttft=ttft,
        chunks=chunks,
        chunk_interval=chunk_interval,
        finish_reason=finish_reason,
        framing=framing,
    )


def rate_limit(
    retry_after_ms: int | None = None,
    *,
    retry_after: float | None = None,
    retry_at: float | None = None,
    endpoint: str = "chat",
) -> Behaviour:
    """429 "rate_limit_exceeded", in the header shapes the services use: ``retry-after-ms``
    (milliseconds), ``retry-after`` (seconds), and ``retry_at``: ``retry-after`` as an
    HTTP-date that many seconds after the response (whole seconds, as the format has). Only
    the ones given are sent; none given: ``retry-after-ms: 50``."""
    if retry_after_ms is None and retry_after is None and retry_at is None:
        retry_after_ms = 50
    headers: list[tuple[str, str]] = []
    if retry_after_ms is not None:
        headers.append(("retry-after-ms", str(retry_after_ms)))
    if retry_after is not None:
        headers.append(("retry-after", f"{retry_after:g}"))
    body = {
        "error": {
            "message": "Rate limit reached for requests. Please retry after the time in the "
            "retry-after header.",
            "type": "requests",
            "param": None,
            "code": "rate_limit_exceeded",
        }
    }
    return Behaviour(
        kind="error",
        endpoint=endpoint,
        status=429,
        body=body,
        headers=tuple(headers),
        retry_at=retry_at,
    )


def insufficient_quota(*, endpoint: str = "chat") -> Behaviour:
    """OpenAI's 429 for an account out of credit: no retry header, and retrying cannot help."""
    body = {
        "error": {
            "message": "You exceeded your current quota, please check your plan and billing "
            "details. For more information on this error, read the docs: "
            "https://platform.openai.com/docs/guides/error-codes/api-errors.",
            "type": "insufficient_quota",
            "param": None,
            "code": "insufficient_quota",
        }
    }
    return Behaviour(kind="error", endpoint=endpoint, status=429, body=body)


def server_error(status: int = 500, *, endpoint: str = "chat") -> Behaviour:
    """A 5xx with OpenAI's error body."""
    body = {
        "error": {
            "message": "The server had an error while processing your request. Sorry about that!",
            "type": "server_error",
            "param": None,
            "code": None,
        }
    }
    return Behaviour(kind="error", endpoint=endpoint, status=status, body=body)


_FILTER_SAFE = {
    "hate": {"filtered": False, "severity": "safe"},
    "self_harm": {"filtered": False, "severity": "safe"},
    "sexual": {"filtered": False, "severity": "safe"},
    "violence": {"filtered": False, "severity": "safe"},
}
_FILTER_HIT = {**_FILTER_SAFE, "violence": {"filtered": True, "severity": "medium"}}


def content_filter_error(*, endpoint: str = "chat") -> Behaviour:
    """Azure's 400 for a prompt that the content filter rejected."""
    body = {
        "error": {
            "message": "The response was filtered due to the prompt triggering Azure OpenAI's "
            "content management policy. Please modify your prompt and retry.",
            "type": None,
            "param": "prompt",
            "code": "content_filter",
            "status": 400,
            "innererror": {
                "code": "ResponsibleAIPolicyViolation",
                "content_filter_result": {
                    **_FILTER_HIT,
                    "jailbreak": {"filtered": False, "detected": False},
                },
            },
        }
    }
    return Behaviour(kind="error", endpoint=endpoint, status=400, body=body)


def content_filter_mid_stream(after: int = 2, text: str | None = None) -> Behaviour:
    """Stream ``after`` content chunks, then end with ``finish_reason: "content_filter"``."""
    return Behaviour(kind="filter", after=after, text=text, finish_reason="content_filter")


def drop_connection(after: int = 2, *, endpoint: str = "chat") -> Behaviour:
    """Abort the TCP connection after ``after`` content chunks (0: before any content).

    Non-streamed requests are aborted before any response is sent.
    """
    return Behaviour(kind="drop", endpoint=endpoint, after=after)


def hang(after: int = 1, *, endpoint: str = "chat") -> Behaviour:
    """Send the headers and ``after`` content chunks, then send nothing until the client goes away.

    Non-streamed requests hang before any response is sent.
    """
    return Behaviour(kind="hang", endpoint=endpoint, after=after)


def error(
    status: int,
    body: dict[str, Any] | None = None,
    *,
    headers: dict[str, str] | None = None,
    endpoint: str = "chat",
) -> Behaviour:
    """Any error status with any JSON body."""
    body = body or {"error": {"message": f"error {status}", "type": None, "code": None}}
    return Behaviour(
        kind="error",
        endpoint=endpoint,
        status=status,
        body=body,
        headers=tuple((headers or {}).items()),
    )


_OK = Behaviour()
_OK_EMBEDDINGS = Behaviour(endpoint="embeddings")


# --------------------------------------------------------------------------------------------------
# Answers, chunking, tokens, embeddings
# --------------------------------------------------------------------------------------------------

_SOURCE_LINE = re.compile(r"^[ \t]*\[([^\[\]\n]{1,300})\]:[ \t]*(.*)$", re.M)
_SOURCES_HEADER = re.compile(r"^\s*sources\s*:?\s*$", re.I)
_WORD = re.compile(r"\w+")
_TOKEN = re.compile(r"\w+|[^\w\s]")
_PIECE = re.compile(r"\s*\S+|\s+$")


async def misbehave(request: web.Request, rec: RecordedRequest, b: Behaviour) -> None:
    """A dropping behaviour cuts the connection, a hanging one never answers: either way this
    waits until the client goes away (and is cancelled with it). Any other returns at once."""
    if b.kind == "drop":
        rec.dropped_by_server = True
        assert request.transport is not None
        request.transport.abort()
        await asyncio.sleep(3600)  # cancelled as the connection goes away
    if b.kind == "hang":
        await asyncio.Future()  # until the client goes away


def _text_of(content: Any) -> str:
    """A message's content as text (string content or a list of text parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"
        )
    return ""


def _snippet(text: str, words: int = 12) -> str:
    parts = text.split()
    snippet = " ".join(parts[:words]).rstrip(".,;:!?")
    return snippet or "(empty source)"


def default_answer(messages: Sequence[dict[str, Any]]) -> str:
    """The deterministic echo answer (see the module docstring)."""
    sources: dict[str, str] = {}
    for message in messages:
        if not isinstance(message, dict):
            continue
        for name, text in _SOURCE_LINE.findall(_text_of(message.get("content"))):
            sources.setdefault(name.strip(), text.strip())
    question = ""
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            lines = [
                line.strip()
                for line in _text_of(message.get("content")).splitlines()
                if line.strip() and not _SOURCE_LINE.match(line) and not _SOURCES_HEADER.match(line)
            ]
            question = " ".join(lines)[:300]
            break
    if sources:
        sentences = [f"{_snippet(text)} [{name}]." for name, text in sources.items()]
        return "According to the sources, " + " ".join(sentences)
    system = " ".join(
        _text_of(m.get("content"))
        for m in messages
        if isinstance(m, dict) and m.get("role") in ("system", "developer")
    ).lower()
    if "search query" in system and question:
        return question
    return f'I don\'t know. The sources say nothing about "{question}".'


def count_tokens(text: str) -> int:
    """A rough token count (words and punctuation marks)."""
    return len(_TOKEN.findall(text))


def _group(items: Sequence[str], n: int) -> tuple[str, ...]:
    size, extra = divmod(len(items), n)
    out, start = [], 0
    for i in range(n):
        end = start + size + (1 if i < extra else 0)
        out.append("".join(items[start:end]))
        start = end
    return tuple(out)


@functools.lru_cache(maxsize=512)
def split_answer(text: str, chunks: int | None) -> tuple[str, ...]:
    """Split ``text`` into content deltas that concatenate back to it.

    ``chunks=None``: one delta per word (with its leading whitespace). Otherwise exactly ``chunks``
    deltas (word groups, or characters when there are fewer words), fewer only when the text has
    fewer characters than that.
    """
    if not text:
        return ()
    pieces = _PIECE.findall(text)
    if chunks is None or chunks <= 0:
        return tuple(pieces)
    if len(pieces) >= chunks:
        return _group(pieces, chunks)
    chars = list(text)
    return _group(chars, min(chunks, len(chars)))


@functools.lru_cache(maxsize=512)
def _encoded_pieces(text: str, chunks: int | None) -> tuple[bytes, ...]:
    return tuple(json.dumps(p).encode() for p in split_answer(text, chunks))


@functools.lru_cache(maxsize=4096)
def embed(text: str, dimensions: int = 1536) -> tuple[float, ...]:
    """The fake's deterministic embedding: lower-cased words hashed (crc32) into ``dimensions``
    buckets, counted and L2-normalised. Texts sharing words have a positive cosine similarity.
    A text without words maps to the unit vector on the first axis."""
    counts: dict[int, float] = {}
    for word in _WORD.findall(text.lower()):
        idx = zlib.crc32(word.encode()) % dimensions
        counts[idx] = counts.get(idx, 0.0) + 1.0
    vec = [0.0] * dimensions
    if not counts:
        vec[0] = 1.0
        return tuple(vec)
    norm = math.sqrt(sum(v * v for v in counts.values()))
    for idx, value in counts.items():
        vec[idx] = value / norm
    return tuple(vec)


# --------------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------------


class FakeOpenAI(BackgroundServer):
    """Fake OpenAI / Azure OpenAI. All settings can be changed while it runs.

    URLs: ``openai_base_url`` for ``AsyncOpenAI(base_url=...)``; ``azure_v1_base_url`` for Azure's
    v1 API through ``AsyncOpenAI``; ``azure_endpoint`` for ``AsyncAzureOpenAI(azure_endpoint=...)``.
    """

    thread_name = "fake-openai"

    def __init__(
        self,
        *,
        answer: str | None = None,
        ttft: float = 0.0,
        chunks: int | None = None,
        chunk_interval: float = 0.0,
        api_keys: Iterable[str] = (DEFAULT_API_KEY,),
        entra_tokens: Iterable[str] = (DEFAULT_ENTRA_TOKEN,),
        require_auth: bool = True,
        framing: Framing | None = None,
        model: str = "gpt-4o-mini",
        embedding_model: str = "text-embedding-3-small",
        embedding_dimensions: int = 1536,
        host: str = "127.0.0.1",
        port: int = 0,
        log_limit: int | None = None,
    ):
        super().__init__(host=host, port=port, log_limit=log_limit)
        self.answer = answer
        self.ttft = ttft
        self.chunks = chunks
        self.chunk_interval = chunk_interval
        self.api_keys: set[str] = set()
        self.require_api_key(*api_keys)
        self.entra_tokens: set[str] = set(entra_tokens)
        self.require_auth = require_auth
        self.framing = framing or LF
        self.model = model
        self.embedding_model = embedding_model
        self.embedding_dimensions = embedding_dimensions
        self._queue: collections.deque[Behaviour] = collections.deque()
        self._always: dict[str, Behaviour] = {}
        self._vectors: dict[str, list[float]] = {}
        self._ids = itertools.count(1)

    # -- URLs -----------------------------------------------------------------------------------

    @property
    def openai_base_url(self) -> str:
        return f"{self.base_url}/v1"

    @property
    def azure_v1_base_url(self) -> str:
        return f"{self.base_url}/openai/v1/"

    @property
    def azure_endpoint(self) -> str:
        assert self.base_url is not None
        return self.base_url

    # -- scripting ------------------------------------------------------------------------------

    def set_answer(self, text: str | None) -> None:
        """A fixed answer for every chat request; None goes back to the echo answer."""
        self.answer = text

    def set_latency(
        self, ttft: float = 0.0, chunks: int | None = None, chunk_interval: float = 0.0
    ) -> None:
        self.ttft, self.chunks, self.chunk_interval = ttft, chunks, chunk_interval

    @property
    def api_key(self) -> str:
        """A key the fake accepts (the first one it was given)."""
        return self._first_key

    def require_api_key(self, *keys: str) -> None:
        """Accept only these keys (as ``api-key`` header or bearer token, on every path), and on
        the Azure paths the Entra tokens of :meth:`accept_entra_tokens`; anything else is a 401."""
        self.api_keys = set(keys)
        self._first_key = keys[0] if keys else ""
        self.require_auth = True

    def accept_entra_tokens(self, *tokens: str) -> None:
        """Bearer tokens accepted on the Azure paths, as Microsoft Entra ID tokens are."""
        self.entra_tokens = set(tokens)

    def allow_anonymous(self) -> None:
        """Accept requests with any credentials or none (a compatible server without keys)."""
        self.require_auth = False

    def set_framing(self, framing: Framing | None) -> None:
        """How streamed answers are framed (None: ``data: ...`` and ``\\n\\n``, see Framing)."""
        self.framing = framing or LF

    def enqueue(self, *behaviours: Behaviour, times: int = 1) -> None:
        """Queue behaviours for the next requests of their endpoint (each used ``times`` times)."""
        with self._cond:
            for b in behaviours:
                self._queue.extend([b] * times)

    def always(self, behaviour: Behaviour | None, *, endpoint: str = "chat") -> None:
        """Use ``behaviour`` for its endpoint's requests when the queue is empty (None: stop)."""
        with self._cond:
            if behaviour is None:
                self._always.pop(endpoint, None)
            else:
                self._always[behaviour.endpoint] = behaviour

    def set_embedding(self, text: str, vector: Sequence[float]) -> None:
        """Return exactly ``vector`` for the input ``text``."""
        self._vectors[text] = list(vector)

    def reset(self) -> None:
        """Forget scripted behaviours, fixed answer, registered vectors, the request log; back to
        the default credentials and framing."""
        with self._cond:
            self._queue.clear()
            self._always.clear()
            self.requests.clear()
        self._vectors.clear()
        self.require_api_key(DEFAULT_API_KEY)
        self.entra_tokens = {DEFAULT_ENTRA_TOKEN}
        self.framing = LF
        self.answer = None
        self.set_latency()

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        return [r for r in list(self.requests) if r.endpoint == "chat"]

    @property
    def embedding_requests(self) -> list[RecordedRequest]:
        return [r for r in list(self.requests) if r.endpoint == "embeddings"]

    def _next_behaviour(self, endpoint: str) -> Behaviour:
        with self._cond:
            for i, b in enumerate(self._queue):
                if b.endpoint in (endpoint, "any"):
                    del self._queue[i]
                    return b
            b = self._always.get(endpoint) or self._always.get("any")
        if b is not None:
            return b
        return _OK if endpoint == "chat" else _OK_EMBEDDINGS

    # -- app ------------------------------------------------------------------------------------

    def build_app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        for prefix in ("/v1", "", "/openai/v1", "/openai/deployments/{deployment}"):
            app.router.add_post(f"{prefix}/chat/completions", self._chat)
            app.router.add_post(f"{prefix}/responses", self._responses)
            app.router.add_post(f"{prefix}/embeddings", self._embeddings)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/openai/v1/models", self._models)
        return app

    def _unauthorized(self, request: web.Request, azure: bool) -> web.Response | None:
        if not self.require_auth:
            return None
        key = request.headers.get("api-key")
        auth = request.headers.get("Authorization", "")
        token = auth[7:] if auth[:7].lower() == "bearer " else None
        if key in self.api_keys or token in self.api_keys:
            return None
        if azure and token is not None and token in self.entra_tokens:
            return None
        if azure:
            body: dict[str, Any] = {
                "error": {
                    "code": "401",
                    "message": "Access denied due to invalid subscription key or wrong API "
                    "endpoint. Make sure to provide a valid key for an active subscription and "
                    "use a correct regional API endpoint for your resource.",
                }
            }
        elif key is None and token is None:
            body = {
                "error": {
                    "message": "You didn't provide an API key. You need to provide your API key "
                    "in an Authorization header using Bearer auth (i.e. Authorization: Bearer "
                    "YOUR_KEY).",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": None,
                }
            }
        else:
            body = {
                "error": {
                    "message": "Incorrect API key provided.",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": "invalid_api_key",
                }
            }
        return web.json_response(body, status=401, headers=self._headers())

    def _headers(self) -> dict[str, str]:
        return {"x-request-id": f"req-fake-{next(self._ids)}"}

    def _error_response(self, rec: RecordedRequest, b: Behaviour) -> web.Response:
        rec.status = b.status
        headers = self._headers()
        headers.update(dict(b.headers))
        if b.retry_at is not None:
            when = math.ceil(time.time() + b.retry_at)
            headers["retry-after"] = email.utils.formatdate(when, usegmt=True)
        return web.json_response(b.body, status=b.status, headers=headers)

    @staticmethod
    def _bad_request(message: str, param: str | None = None) -> web.Response:
        body = {
            "error": {
                "message": message,
                "type": "invalid_request_error",
                "param": param,
                "code": None,
            }
        }
        return web.json_response(body, status=400)

    async def _models(self, request: web.Request) -> web.Response:
        rec, _ = await record_request(request, "models", azure=request.path.startswith("/openai/"))
        self._log(rec)
        denied = self._unauthorized(request, rec.azure)
        if denied is not None:
            rec.status = 401
            return denied
        rec.status = 200
        self._mark_finished(rec)
        data = [
            {"id": m, "object": "model", "created": 1700000000, "owned_by": "fake"}
            for m in (self.model, self.embedding_model)
        ]
        return web.json_response({"object": "list", "data": data})

    # -- chat -------------------------------------------------------------------------------------

    async def _recorded(self, request: web.Request, endpoint: str, inner) -> web.StreamResponse:
        """Record the request, refuse bad credentials, run ``inner`` and note a client that went
        away meanwhile."""
        azure = request.path.startswith("/openai/")
        rec, body = await record_request(request, endpoint, azure=azure)
        self._log(rec)
        denied = self._unauthorized(request, azure)
        if denied is not None:
            rec.status = 401
            self._mark_finished(rec)
            return denied
        return await self.watch(rec, inner(request, rec, body, azure))

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        return await self._recorded(request, "chat", self._chat_inner)

    async def _responses(self, request: web.Request) -> web.StreamResponse:
        """The Responses API (tests/fakes/reasoning.py); recorded among the chat requests."""

        async def inner(request, rec, body, azure):
            return await reasoning.responses(self, request, rec, body, azure)

        return await self._recorded(request, "chat", inner)

    def _begin_answer(
        self, rec: RecordedRequest, body: dict, messages: list, api: str = "chat"
    ) -> tuple[web.Response | None, Behaviour, str]:
        """What every answer endpoint does first: refuse what the model refuses (an error
        response), take the queued behaviour (an error response for an error), else the text."""
        refused = reasoning.refusal(body, body.get("model") or self.model, api=api)
        if refused is not None:
            rec.status = 400
            self._mark_finished(rec)
            return web.json_response(refused, status=400, headers=self._headers()), _OK, ""
        rec.stream = body.get("stream") is True
        b = self._next_behaviour("chat")
        rec.behaviour = b.kind
        if b.kind == "error":
            response = self._error_response(rec, b)
            self._mark_finished(rec)
            return response, b, ""
        text = b.text if b.text is not None else self.answer
        return None, b, default_answer(messages) if text is None else text

    async def _chat_inner(
        self, request: web.Request, rec: RecordedRequest, body: Any, azure: bool
    ) -> web.StreamResponse:
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            rec.status = 400
            self._mark_finished(rec)
            return self._bad_request("'messages' is a required property", "messages")
        messages = body["messages"]
        refused, b, text = self._begin_answer(rec, body, messages)
        if refused is not None:
            return refused
        ttft = self.ttft if b.ttft is None else b.ttft
        chunks = self.chunks if b.chunks is None else b.chunks
        interval = self.chunk_interval if b.chunk_interval is None else b.chunk_interval
        finish_reason = b.finish_reason

        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        if isinstance(limit, int) and limit > 0:
            words = split_answer(text, None)
            if len(words) > limit:
                text = "".join(words[:limit])
                finish_reason = "length"
        prompt_tokens = sum(count_tokens(_text_of(m.get("content"))) + 4 for m in messages)
        model = body.get("model") or request.match_info.get("deployment") or self.model

        if not rec.stream:
            if b.kind == "filter":
                text = "".join(split_answer(text, chunks)[: b.after])
            await misbehave(request, rec, b)
            n = len(split_answer(text, chunks))
            delay = ttft + max(0, n - 1) * interval
            if delay > 0:
                await asyncio.sleep(delay)
            resp = web.json_response(
                self._completion(text, finish_reason, model, prompt_tokens, azure),
                headers=self._headers(),
            )
            rec.status = 200
            self._mark_finished(rec)
            return resp
        return await self._stream(
            request,
            rec,
            body,
            b,
            text,
            chunks,
            ttft,
            interval,
            finish_reason,
            model,
            prompt_tokens,
            azure,
        )

    def _completion(
        self, text: str, finish_reason: str, model: str, prompt_tokens: int, azure: bool
    ) -> dict[str, Any]:
        completion_tokens = count_tokens(text)
        choice: dict[str, Any] = {
            "index": 0,
            "message": {"role": "assistant", "content": text, "refusal": None, "annotations": []},
            "logprobs": None,
            "finish_reason": finish_reason,
        }
        out: dict[str, Any] = {
            "id": f"chatcmpl-fake{next(self._ids)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": "fp_fake",
            "choices": [choice],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
        if azure:
            choice["content_filter_results"] = (
                _FILTER_HIT if finish_reason == "content_filter" else _FILTER_SAFE
            )
            out["prompt_filter_results"] = [
                {"prompt_index": 0, "content_filter_results": _FILTER_SAFE}
            ]
        return out

    async def _stream(
        self,
        request: web.Request,
        rec: RecordedRequest,
        body: dict[str, Any],
        b: Behaviour,
        text: str,
        chunks: int | None,
        ttft: float,
        interval: float,
        finish_reason: str,
        model: str,
        prompt_tokens: int,
        azure: bool,
    ) -> web.StreamResponse:
        loop = asyncio.get_running_loop()
        start = loop.time()
        pieces = _encoded_pieces(text, chunks)
        created = int(time.time())
        cid = f"chatcmpl-fake{next(self._ids)}"
        framing = b.framing or self.framing
        count = itertools.count()

        def event(payload: bytes) -> bytes:
            return framing.frame(payload, next(count))

        head = (
            f'{{"id":"{cid}","object":"chat.completion.chunk","created":{created},'
            f'"model":{json.dumps(model)},"system_fingerprint":"fp_fake","choices":[{{"index":0,'
        ).encode()
        cfr = b',"content_filter_results":' + json.dumps(_FILTER_SAFE).encode() if azure else b""
        role = event(
            head
            + b'"delta":{"role":"assistant","content":"","refusal":null},'
            + (
                b'"logprobs":null,"finish_reason":null'
                + (b',"content_filter_results":{}' if azure else b"")
            )
            + b"}]}"
        )
        content_head = head + b'"delta":{"content":'
        content_tail = b'},"logprobs":null,"finish_reason":null' + cfr + b"}]}"
        frames = [event(content_head + p + content_tail) for p in pieces]
        frames[:0] = reasoning.thinking_frames(model, head, event)

        resp = web.StreamResponse(
            status=200,
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache",
                **self._headers(),
            },
        )
        await resp.prepare(request)
        rec.status = 200
        if azure:
            first = {
                "choices": [],
                "created": 0,
                "id": "",
                "model": "",
                "object": "",
                "prompt_filter_results": [
                    {"prompt_index": 0, "content_filter_results": _FILTER_SAFE}
                ],
            }
            await resp.write(event(json.dumps(first).encode()))

        stop_at = len(frames)
        if b.kind in ("drop", "hang", "filter"):
            stop_at = min(b.after, len(frames))
        if b.kind == "filter":
            text = "".join(split_answer(text, chunks)[:stop_at])

        # Role chunk and first content chunk at ttft, then one chunk every `interval`.
        due = start + ttft
        if ttft > 0:
            await asyncio.sleep(ttft)
        await resp.write(role)
        rec.first_chunk_at = time.time()
        for i in range(stop_at):
            if i:
                due += interval
                delay = due - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            await resp.write(frames[i])
            rec.chunks_sent = i + 1

        await misbehave(request, rec, b)

        if frames and interval > 0:
            delay = due + interval - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
        fin_cfr = b""
        if azure:
            results = _FILTER_HIT if finish_reason == "content_filter" else _FILTER_SAFE
            fin_cfr = b',"content_filter_results":' + json.dumps(results).encode()
        finish = event(
            head
            + b'"delta":{},"logprobs":null,"finish_reason":'
            + json.dumps(finish_reason).encode()
            + fin_cfr
            + b"}]}"
        )
        tail = [finish]
        options = body.get("stream_options")
        if isinstance(options, dict) and options.get("include_usage"):
            completion_tokens = count_tokens(text)
            usage = {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "system_fingerprint": "fp_fake",
                "choices": [],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            }
            if thought := reasoning.reasoning_tokens(model, reasoning.THOUGHT):
                usage["usage"]["completion_tokens_details"] = {"reasoning_tokens": thought}
            tail.append(event(json.dumps(usage).encode()))
        tail.append(event(b"[DONE]"))
        await resp.write(b"".join(tail))
        await resp.write_eof()
        self._mark_finished(rec)
        return resp

    # -- embeddings -------------------------------------------------------------------------------

    async def _embeddings(self, request: web.Request) -> web.StreamResponse:
        return await self._recorded(request, "embeddings", self._embeddings_inner)

    async def _embeddings_inner(
        self, request: web.Request, rec: RecordedRequest, body: Any, azure: bool
    ) -> web.StreamResponse:
        if not isinstance(body, dict) or "input" not in body:
            rec.status = 400
            self._mark_finished(rec)
            return self._bad_request("'input' is a required property", "input")
        b = self._next_behaviour("embeddings")
        rec.behaviour = b.kind
        if b.kind == "error":
            resp = self._error_response(rec, b)
            self._mark_finished(rec)
            return resp
        await misbehave(request, rec, b)
        if b.ttft:
            await asyncio.sleep(b.ttft)

        raw = body["input"]
        if isinstance(raw, str):
            texts = [raw]
        elif isinstance(raw, list) and raw and all(isinstance(x, int) for x in raw):
            texts = [" ".join(map(str, raw))]
        elif isinstance(raw, list) and raw:
            texts = [x if isinstance(x, str) else " ".join(map(str, x)) for x in raw]
        else:
            rec.status = 400
            self._mark_finished(rec)
            return self._bad_request("'input' must be a non-empty string or array", "input")
        dims = body.get("dimensions") or self.embedding_dimensions
        fmt = body.get("encoding_format") or "float"
        data = []
        for i, t in enumerate(texts):
            vec = self._vectors.get(t)
            if vec is None:
                vec = embed(t, dims)
            value: Any = (
                base64.b64encode(struct.pack(f"<{len(vec)}f", *vec)).decode()
                if fmt == "base64"
                else list(vec)
            )
            data.append({"object": "embedding", "index": i, "embedding": value})
        tokens = sum(count_tokens(t) for t in texts)
        out = {
            "object": "list",
            "data": data,
            "model": body.get("model") or self.embedding_model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
        rec.status = 200
        self._mark_finished(rec)
        return web.json_response(out, headers=self._headers())


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Fake OpenAI-compatible server (tests/fakes).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8901)
    parser.add_argument("--ttft", type=float, default=0.0, help="seconds to the first token")
    parser.add_argument("--chunks", type=int, default=None, help="content chunks per answer")
    parser.add_argument("--chunk-interval", type=float, default=0.0, help="seconds between chunks")
    parser.add_argument("--answer", default=None, help="fixed answer (default: echo answer)")
    parser.add_argument(
        "--api-key", action="append", default=[], help="required key (repeat); none: any"
    )
    parser.add_argument("--model", default="gpt-4o-mini")
    parser.add_argument("--embedding-dimensions", type=int, default=1536)
    parser.add_argument("--log-limit", type=int, default=1000, help="requests kept in the log")
    args = parser.parse_args(argv)
    FakeOpenAI(
        answer=args.answer,
        ttft=args.ttft,
        chunks=args.chunks,
        chunk_interval=args.chunk_interval,
        api_keys=args.api_key,
        require_auth=bool(args.api_key),
        model=args.model,
        embedding_dimensions=args.embedding_dimensions,
        host=args.host,
        port=args.port,
        log_limit=args.log_limit,
    ).serve_forever()


if __name__ == "__main__":
    main()
