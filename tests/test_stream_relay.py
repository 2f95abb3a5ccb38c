"""The raw-read relay of the upstream answer stream (chat/llm/stream_relay.py): the SDK's SSE
decoder over whole network reads, tokens of one read merged into one delta, and optional pacing
(LLM_STREAM_BATCH_MS) between reads."""

import asyncio
import json
from contextlib import aclosing

import httpx2
import pytest

from chat.llm.base import AnswerError
from chat.llm.openai_answerer import OpenAIAnswerer
from chat.llm.stream_relay import EventBatch, EventReader, gather_tokens, relay, upstream_transport
from tests.asgi_client import AsyncClient
from tests.chat_helpers import ask, stream_events
from tests.test_llm import QUESTION, configure, kb  # noqa: F401  (kb is a fixture)


def sse(data) -> bytes:
    return (
        b"data: "
        + (data if isinstance(data, bytes) else json.dumps(data, ensure_ascii=False).encode())
        + b"\n\n"
    )


def token(text, **choice) -> dict:
    return {"choices": [{"index": 0, "delta": {"content": text}, **choice}]}


def parse(*blocks: bytes) -> list[EventBatch]:
    reader = EventReader()
    return [reader.read(block) for block in blocks]


def test_every_event_of_one_read_becomes_one_chunk():
    (batch,) = parse(sse(token("Hello")) + sse(token(", ")) + sse(token("world")))
    assert batch.chunk().delta == "Hello, world"


def test_events_split_across_reads_are_reassembled():
    raw = sse(token("Héllo")) + sse(token(" wörld"))
    cut = raw.index("ö".encode()) + 1  # inside a multi-byte character, too
    first, second, third = parse(raw[:7], raw[7:cut], raw[cut:])
    assert first.chunk() is None
    assert second.chunk().delta == "Héllo"
    assert third.chunk().delta == " wörld"


def test_usage_finish_reason_and_done():
    usage = {
        "choices": [],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
    }
    reader = EventReader()
    batch = reader.read(
        sse(token("Hi", finish_reason="stop")) + sse(usage) + sse(b"[DONE]") + sse(token("late"))
    )
    chunk = batch.chunk()
    assert chunk.delta == "Hi" and chunk.finish_reason == "stop"
    assert chunk.usage == {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    assert reader.done


def test_azure_filter_only_chunks_are_skipped():
    (batch,) = parse(sse({"choices": [], "prompt_filter_results": []}))
    assert batch.chunk() is None


@pytest.mark.parametrize(
    ("block", "status", "message"),
    [
        (sse({"error": {"message": "overloaded"}}), 502, "failed to answer"),
        (sse(token("", finish_reason="content_filter")), 400, "content filter"),
        (sse(b"{not json"), 502, "interrupted"),
        (sse(b'"a string"'), 502, "interrupted"),
    ],
)
def test_bad_events_end_the_answer_with_a_clear_error(block, status, message):
    with pytest.raises(AnswerError) as caught:
        parse(sse(token("partial")) + block)
    assert caught.value.status == status and message in caught.value.message


@pytest.fixture
def llm(settings, fake_openai):
    configure(settings, fake_openai, "compatible")
    return fake_openai


@pytest.mark.django_db(transaction=True)
async def test_pacing_gathers_tokens_into_fewer_deltas(kb, llm, settings):  # noqa: F811
    """20 tokens 50 ms apart: with LLM_STREAM_BATCH_MS=250 they arrive in a handful of deltas,
    and the text is the same as unpaced (tokens that far apart arrive one by one)."""
    llm.set_latency(ttft=0.0, chunks=20, chunk_interval=0.05)
    answers = {}
    for pause in (0, 250):
        settings.LLM_STREAM_BATCH_MS = pause
        status, events, _ = await stream_events(AsyncClient(), ask(QUESTION))
        assert status == 200
        deltas = [e["delta"] for e in events if e.get("type") == "response.output_text.delta"]
        answers[pause] = deltas
    assert "".join(answers[0]) == "".join(answers[250])
    assert len(answers[250]) <= 8 < len(answers[0])


@pytest.mark.django_db(transaction=True)
async def test_no_pause_once_the_answer_has_finished(kb, llm, settings, monkeypatch):  # noqa: F811
    """Pacing waits between reads of tokens, never after the last one: the finish, usage and
    end of stream follow at once, so a paced answer ends as soon as the model's does."""
    from chat.llm import openai_answerer, stream_relay

    llm.set_latency(ttft=0.0, chunks=3, chunk_interval=0.01)
    settings.LLM_STREAM_BATCH_MS = 50
    seen = []  # what the relay did, in order
    pause = stream_relay.gather_tokens

    async def paused(response, seconds):
        seen.append("pause")
        await pause(response, seconds)

    def relayed(response, batch_type=stream_relay.EventBatch):
        async def chunks():
            async with aclosing(stream_relay.relay(response, batch_type)) as inner:
                async for chunk in inner:
                    seen.append("finish" if chunk.finish_reason else "tokens")
                    yield chunk

        return chunks()

    monkeypatch.setattr(stream_relay, "gather_tokens", paused)
    monkeypatch.setattr(openai_answerer, "relay", relayed)
    status, events, _ = await stream_events(AsyncClient(), ask(QUESTION))
    assert status == 200 and "".join(e.get("delta", "") for e in events)
    assert seen[0] == "tokens" and seen[-1] == "finish", seen
    assert "pause" in seen  # pacing is on
    assert seen[seen.index("finish") :] == ["finish"]  # and takes no pause after the finish


@pytest.mark.parametrize("http_client", ["aiohttp", "httpx"])
async def test_the_upstream_socket_is_not_read_while_tokens_gather(llm, settings, http_client):
    """Under aiohttp (the default) a pause stops reading the upstream socket, so the kernel
    gathers the tokens for one read; reading resumes after it, even when it is cancelled.
    This also pins the private path to the socket: an SDK upgrade that moves it fails here."""
    settings.LLM_HTTP_CLIENT = http_client
    llm.set_latency(ttft=0.0, chunks=20, chunk_interval=0.01)
    answerer = OpenAIAnswerer()
    try:
        body = {"model": answerer.model, "messages": [{"role": "user", "content": QUESTION}]}

        async def request():
            return await answerer.client.post(
                "/chat/completions", body={**body, "stream": True}, cast_to=httpx2.Response,
                stream=True,
            )  # fmt: skip

        settings.LLM_STREAM_BATCH_MS = 0
        unpaused = "".join([chunk.delta async for chunk in relay(await request())])
        settings.LLM_STREAM_BATCH_MS = 50
        response = await request()
        transport = upstream_transport(response)
        if http_client == "httpx":
            assert transport is None
            await gather_tokens(response, 0.01)  # a plain pause
        else:
            assert transport.is_reading()
            pausing = asyncio.create_task(gather_tokens(response, 0.05))
            await asyncio.sleep(0)  # the pause has begun
            assert not transport.is_reading()
            await pausing
            assert transport.is_reading()
            pausing = asyncio.create_task(gather_tokens(response, 30))
            await asyncio.sleep(0)
            assert not transport.is_reading()
            pausing.cancel()
            with pytest.raises(asyncio.CancelledError):
                await pausing
            assert transport.is_reading()
        chunks = [chunk.delta async for chunk in relay(response)]
        assert "".join(chunks) == unpaused  # none lost
        if http_client == "aiohttp":  # (h11 hands over each chunk of the body on its own)
            assert len(chunks) < 20
    finally:
        await answerer.close()
