"""Relay an OpenAI-style streamed chat completion as AnswerChunks, one per network read.

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
    return {key: usage.get(key) for key in keys}


class EventBatch:
    """The text, usage and finish reason of the events in one read."""

    def __init__(self):
        self.texts: list[str] = []
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
        content = (choice.get("delta") or {}).get("content")
        if content:
            self.texts.append(content)

    def chunk(self) -> AnswerChunk | None:
        if not (self.texts or self.usage or self.finish_reason):
            return None
        return AnswerChunk(
            delta="".join(self.texts), usage=self.usage, finish_reason=self.finish_reason
        )


class EventReader:
    """Network reads in, one EventBatch per read out; events may span reads."""

    def __init__(self):
        self.lines, self.events = _SSELineDecoder(), SSEDecoder()
        # After [DONE] the body is still read to its end, so the connection is reused.
        self.done = False

    def read(self, block: bytes) -> EventBatch:
        batch = EventBatch()
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


async def relay(response: httpx2.Response) -> AsyncGenerator[AnswerChunk, None]:
    """The chunks of the streamed `response`, which is closed when they end or stop."""
    reader = EventReader()
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
