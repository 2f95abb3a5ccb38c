"""Relay an OpenAI-style streamed answer (chat completions or the Responses API) as AnswerChunks,
one per network read.

The SDK's own stream (AsyncStream[ChatCompletionChunk]) builds a pydantic object per token and
passes every token through several layers of async generators: about 20 ms of CPU per answer,
four times the whole budget of a chat turn (bench/results). Here the SDK still sends the request
(auth, retries, error mapping) and owns the response; the body is read as raw bytes and split
into events with the SDK's own SSE decoder, and everything that arrived in one read becomes one
chunk. Under load, when reads fall behind, several tokens share one read, so the busier the
server, the fewer (and larger) the deltas it handles and writes: coalescing without adding
latency. LLM_STREAM_BATCH_MS adds a pause between reads on top, so tokens gather even when the
server is idle; during the pause the upstream socket is not even read, so the kernel gathers
them and the event loop takes them in one read, not one per token as they arrive.
"""

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator

import httpx2
import orjson
from django.conf import settings
from openai._streaming import SSEDecoder, _SSELineDecoder

from chat.llm.base import AnswerChunk, AnswerError
from chat.llm.errors import FAILED, FILTERED, INTERRUPTED, TIMED_OUT

log = logging.getLogger(__name__)


def usage_of(data: dict) -> dict | None:
    usage = data.get("usage")
    if not isinstance(usage, dict):
        return None
    keys = ("prompt_tokens", "completion_tokens", "total_tokens")
    figures = {key: usage.get(key) for key in keys}
    details = usage.get("completion_tokens_details")
    if isinstance(details, dict) and details.get("reasoning_tokens"):
        figures["reasoning_tokens"] = details["reasoning_tokens"]
    return figures


class EventBatch:
    """The text, reasoning, usage and finish reason of the chat completion chunks in one read.
    Reasoning arrives as `reasoning_content` (DeepSeek-R1 and the hosts that serve it) or
    `reasoning` (vLLM, some gateways)."""

    def __init__(self):
        self.texts: list[str] = []
        self.reasoning: list[str] = []
        self.usage: dict | None = None
        self.finish_reason: str | None = None

    def add(self, data) -> None:
        if not isinstance(data, dict):
            raise AnswerError(INTERRUPTED, 502)
        if data.get("error"):
            log.warning("language model error in the stream: %s", data["error"])
            raise AnswerError(FAILED, 502)
        self.usage = usage_of(data) or self.usage
        choices = data.get("choices") or ()  # Azure's first chunk carries only filter results
        if not choices:
            return
        choice = choices[0]
        if choice.get("finish_reason") == "content_filter":
            raise AnswerError(FILTERED, 400)
        self.finish_reason = choice.get("finish_reason") or self.finish_reason
        delta = choice.get("delta") or {}
        if content := delta.get("content"):
            self.texts.append(content)
        if thinking := delta.get("reasoning_content") or delta.get("reasoning"):
            if isinstance(thinking, str):
                self.reasoning.append(thinking)

    def chunk(self) -> AnswerChunk | None:
        if not (self.texts or self.reasoning or self.usage or self.finish_reason):
            return None
        return AnswerChunk(
            delta="".join(self.texts),
            usage=self.usage,
            finish_reason=self.finish_reason,
            reasoning="".join(self.reasoning),
        )


class ResponsesEventBatch(EventBatch):
    """The same from the Responses API's typed events: text deltas, reasoning summary (or
    reasoning text) deltas, and the usage and end in `response.completed`."""

    def add(self, data) -> None:
        if not isinstance(data, dict):
            raise AnswerError(INTERRUPTED, 502)
        kind = data.get("type")
        if kind == "response.output_text.delta":
            self.texts.append(data.get("delta") or "")
        elif kind in ("response.reasoning_summary_text.delta", "response.reasoning_text.delta"):
            self.reasoning.append(data.get("delta") or "")
        elif kind in ("response.completed", "response.incomplete"):
            response = data.get("response") or {}
            self.usage = responses_usage(response.get("usage"))
            reason = (response.get("incomplete_details") or {}).get("reason")
            if reason == "content_filter":
                raise AnswerError(FILTERED, 400)
            self.finish_reason = "length" if reason == "max_output_tokens" else "stop"
        elif kind in ("response.failed", "error"):
            log.warning("language model error in the stream: %.300s", data)
            raise AnswerError(FAILED, 502)


def responses_usage(usage) -> dict | None:
    """The Responses API's usage in the chat completions' names, which the rest of ragsite
    speaks."""
    if not isinstance(usage, dict):
        return None
    figures = {
        "prompt_tokens": usage.get("input_tokens"),
        "completion_tokens": usage.get("output_tokens"),
        "total_tokens": usage.get("total_tokens"),
    }
    details = usage.get("output_tokens_details")
    if isinstance(details, dict) and details.get("reasoning_tokens"):
        figures["reasoning_tokens"] = details["reasoning_tokens"]
    return figures


class EventReader:
    """Network reads in, one EventBatch per read out; events may span reads."""

    def __init__(self, batch_type: type[EventBatch] = EventBatch):
        self.lines, self.events = _SSELineDecoder(), SSEDecoder()
        self.batch_type = batch_type
        # After [DONE] the body is still read to its end, so the connection is reused.
        self.done = False

    def read(self, block: bytes) -> EventBatch:
        batch = self.batch_type()
        for line in self.lines.feed(block):
            sse = self.events.decode(line.decode("utf-8"))
            # An event without data is not dispatched (the SSE format); the decoder hands one
            # over for a comment or an `event:` line alone once an `id:` line was seen.
            if sse is None or self.done or not sse.data:
                continue
            if sse.data.startswith("[DONE]"):
                self.done = True
                continue
            try:
                batch.add(orjson.loads(sse.data))
            except ValueError:
                log.warning("the language model sent an unreadable event: %.200r", sse.data)
                raise AnswerError(INTERRUPTED, 502) from None
        return batch


def aiohttp_response(response: httpx2.Response):
    """aiohttp's own response under the SDK's aiohttp transport (LLM_HTTP_CLIENT=aiohttp), or
    None (httpx). The path runs through private names of httpx2 and of the SDK's vendored
    transport (pinned; tests/test_stream_relay.py checks it)."""
    return getattr(getattr(response.stream, "_stream", None), "_aiohttp_response", None)


def upstream_transport(response: httpx2.Response) -> asyncio.Transport | None:
    """The socket under the answer, or None (httpx, or the connection is already released)."""
    connection = getattr(aiohttp_response(response), "connection", None)
    return getattr(connection, "transport", None)


def network_reads(response: httpx2.Response) -> AsyncIterator[bytes]:
    """The body as it arrives, one block per read. Under aiohttp straight from its stream,
    without the three wrappers between it and httpx2's aiter_bytes (step 13 in
    bench/results/fixes.md). aiohttp's read timeout is a TimeoutError (see relay)."""
    raw = aiohttp_response(response)
    return raw.content.iter_any() if raw is not None else response.aiter_bytes()


async def gather_tokens(response: httpx2.Response, seconds: float) -> None:
    """Wait while the next tokens arrive, without reading them one by one meanwhile: every
    token is its own TCP segment, and each read costs the loop a wake-up, a parse and a
    timer reset (about 6 % of a chat's CPU: step 11 in bench/results/fixes.md). The socket is
    looked up at every pause, not once: an answer that ends without a finish reason hands its
    connection back to the pool at the end of the body, and a pooled socket is not ours."""
    transport = upstream_transport(response)
    if transport is None or not transport.is_reading():
        await asyncio.sleep(seconds)
        return
    transport.pause_reading()
    try:
        await asyncio.sleep(seconds)
    finally:
        if not transport.is_closing():
            transport.resume_reading()


async def relay(
    response: httpx2.Response, batch_type: type[EventBatch] = EventBatch
) -> AsyncGenerator[AnswerChunk, None]:
    """The chunks of the streamed `response` (chat completion chunks, or the Responses API's
    events with ResponsesEventBatch), which is closed when they end or stop."""
    reader = EventReader(batch_type)
    pause = settings.LLM_STREAM_BATCH_MS / 1000
    loop = asyncio.get_running_loop()
    try:
        async for block in network_reads(response):
            chunk = reader.read(block).chunk()
            if chunk is None:
                continue
            yielded = loop.time()
            yield chunk
            # Let the next tokens gather in the socket buffer: one read for several. Not once
            # the answer has finished: only the usage and the end are left, and they are due now.
            if pause and not (reader.done or chunk.finish_reason):
                await gather_tokens(response, max(0.0, yielded + pause - loop.time()))
    except AnswerError:
        raise
    except (httpx2.TimeoutException, TimeoutError) as exc:  # TimeoutError: aiohttp's own
        raise AnswerError(TIMED_OUT, 504) from exc
    except Exception as exc:  # the connection was cut mid-stream
        log.warning("answer stream interrupted: %r", exc)
        raise AnswerError(INTERRUPTED, 502) from exc
    finally:
        await response.aclose()
