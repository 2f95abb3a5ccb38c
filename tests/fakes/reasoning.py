"""What the fake OpenAI server knows of reasoning models and the Responses API.

- Reasoning models (OpenAI's o-series and GPT-5 family, by model or deployment name) refuse
  `max_tokens` and a `temperature` other than 1 with the service's own 400 errors, and report
  reasoning tokens in their usage; other models refuse `reasoning_effort`.
- R1-like models (DeepSeek-R1 on a compatible host) stream their thinking as `reasoning_content`
  deltas before the answer.
- `POST /responses` speaks the Responses API: a JSON response, or with `stream: true` its typed
  server-sent events (`response.created`, `response.reasoning_summary_text.delta` for a reasoning
  model, `response.output_text.delta`, `response.completed` with the usage).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
from typing import Any

from aiohttp import web

REASONING_MODEL = re.compile(r"(^|[/:_.-])(o[1-9](-mini|-pro)?|gpt-5)([/:_.-]|$)", re.IGNORECASE)
THINKING_MODEL = re.compile(r"(^|[/:_.-])(deepseek-)?r1([/:_.-]|$)", re.IGNORECASE)
THOUGHT = "The question asks about the sources; let me check which passage answers it."


def is_reasoning(model: str) -> bool:
    return bool(REASONING_MODEL.search(model or ""))


def thinks_aloud(model: str) -> bool:
    return bool(THINKING_MODEL.search(model or ""))


def _error(message: str, param: str, code: str) -> dict:
    return {
        "error": {
            "message": message,
            "type": "invalid_request_error",
            "param": param,
            "code": code,
        }
    }


def refusal(body: dict, model: str, api: str = "chat") -> dict | None:
    """The service's 400 body for parameters this model does not take, or None."""
    if is_reasoning(model):
        if api == "chat" and "max_tokens" in body:
            return _error(
                "Unsupported parameter: 'max_tokens' is not supported with this model. "
                "Use 'max_completion_tokens' instead.",
                "max_tokens",
                "unsupported_parameter",
            )
        temperature = body.get("temperature")
        if temperature is not None and temperature != 1:
            return _error(
                f"Unsupported value: 'temperature' does not support {temperature} with this "
                "model. Only the default (1) value is supported.",
                "temperature",
                "unsupported_value",
            )
        return None
    asked = "reasoning_effort" in body or (api == "responses" and "reasoning" in body)
    if asked:
        param = "reasoning_effort" if api == "chat" else "reasoning.effort"
        return _error(
            f"Unsupported parameter: '{param}' is not supported with this model.",
            param,
            "unsupported_parameter",
        )
    return None


def reasoning_tokens(model: str, text: str) -> int:
    return 3 * len(text.split()) if is_reasoning(model) or thinks_aloud(model) else 0


def thinking_frames(model: str, head: bytes, event) -> list[bytes]:
    """`reasoning_content` chunks for an R1-like model, before its answer."""
    if not thinks_aloud(model):
        return []
    words = re.findall(r"\s*\S+", THOUGHT)
    return [
        event(
            head
            + b'"delta":{"content":null,"reasoning_content":'
            + json.dumps(word).encode()
            + b'},"logprobs":null,"finish_reason":null}]}'
        )
        for word in words
    ]


# -- the Responses API --------------------------------------------------------------------------


def _messages(body: dict) -> list[dict] | None:
    items = body.get("input")
    if isinstance(items, str):
        return [{"role": "user", "content": items}]
    if not isinstance(items, list):
        return None
    messages = [m for m in items if isinstance(m, dict) and "role" in m]
    if instructions := body.get("instructions"):
        messages.insert(0, {"role": "system", "content": instructions})
    return messages


def _response(rid: str, model: str, status: str, output: list, usage: dict | None) -> dict:
    return {
        "id": rid,
        "object": "response",
        "created_at": int(time.time()),
        "status": status,
        "model": model,
        "output": output,
        "usage": usage,
        "error": None,
        "incomplete_details": None,
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
    }


def _usage(prompt_tokens: int, text_tokens: int, thinking: int) -> dict:
    return {
        "input_tokens": prompt_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": text_tokens + thinking,
        "output_tokens_details": {"reasoning_tokens": thinking},
        "total_tokens": prompt_tokens + text_tokens + thinking,
    }


def _message_item(mid: str, text: str) -> dict:
    return {
        "id": mid,
        "type": "message",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    }


async def responses(fake, request: web.Request, rec, body: Any, azure: bool) -> web.StreamResponse:
    """The Responses API endpoint of FakeOpenAI (`fake`), as its chat endpoint behaves:
    the same answers, latency, queued behaviours and recorded requests."""
    from tests.fakes.openai_server import count_tokens, misbehave, split_answer

    messages = _messages(body) if isinstance(body, dict) else None
    if messages is None:
        rec.status = 400
        fake._mark_finished(rec)
        return fake._bad_request("'input' is a required property", "input")
    model = body.get("model") or fake.model
    refused, b, text = fake._begin_answer(rec, body, messages, api="responses")
    if refused is not None:
        return refused
    prompt_tokens = sum(count_tokens(str(m.get("content"))) + 4 for m in messages)
    ids = next(fake._ids)
    rid, mid = f"resp_fake{ids}", f"msg_fake{ids}"
    thinking = reasoning_tokens(model, THOUGHT)
    usage = _usage(prompt_tokens, count_tokens(text), thinking)
    if not rec.stream:
        if b.kind == "hang":
            await asyncio.Future()
        rec.status = 200
        fake._mark_finished(rec)
        output = [_message_item(mid, text)]
        if thinking:
            output.insert(0, {"id": f"rs_fake{ids}", "type": "reasoning", "summary": []})
        reply = _response(rid, model, "completed", output, usage)
        return web.json_response(reply, headers=fake._headers())

    ttft = fake.ttft if b.ttft is None else b.ttft
    chunks = fake.chunks if b.chunks is None else b.chunks
    interval = fake.chunk_interval if b.chunk_interval is None else b.chunk_interval
    sequence = itertools.count()

    def event(payload: dict) -> bytes:
        payload["sequence_number"] = next(sequence)
        return f"event: {payload['type']}\ndata: {json.dumps(payload)}\n\n".encode()

    resp = web.StreamResponse(
        status=200,
        headers={"Content-Type": "text/event-stream; charset=utf-8", **fake._headers()},
    )
    await resp.prepare(request)
    rec.status = 200
    started = _response(rid, model, "in_progress", [], None)
    await resp.write(event({"type": "response.created", "response": started}))
    if ttft > 0:
        await asyncio.sleep(ttft)
    rec.first_chunk_at = time.time()
    summarise = isinstance(body.get("reasoning"), dict) and body["reasoning"].get("summary")
    if thinking and summarise:
        for word in re.findall(r"\s*\S+", THOUGHT):
            await resp.write(
                event(
                    {
                        "type": "response.reasoning_summary_text.delta",
                        "item_id": f"rs_fake{ids}",
                        "output_index": 0,
                        "summary_index": 0,
                        "delta": word,
                    }
                )
            )
    pieces = split_answer(text, chunks)
    cut = b.kind in ("drop", "hang", "filter")
    stop_at = min(b.after, len(pieces)) if cut else len(pieces)
    for i, piece in enumerate(pieces[:stop_at]):
        if i and interval > 0:
            await asyncio.sleep(interval)
        await resp.write(
            event(
                {
                    "type": "response.output_text.delta",
                    "item_id": mid,
                    "output_index": 1 if thinking else 0,
                    "content_index": 0,
                    "delta": piece,
                    "logprobs": [],
                }
            )
        )
        rec.chunks_sent = i + 1
    await misbehave(request, rec, b)
    if b.kind == "filter":  # Azure's content filter stops the output where it triggered
        stopped = _response(rid, model, "incomplete", [], usage)
        stopped["incomplete_details"] = {"reason": "content_filter"}
        await resp.write(event({"type": "response.incomplete", "response": stopped}))
        await resp.write_eof()
        fake._mark_finished(rec)
        return resp
    done = _response(rid, model, "completed", [_message_item(mid, text)], usage)
    await resp.write(event({"type": "response.completed", "response": done}))
    await resp.write_eof()
    fake._mark_finished(rec)
    return resp
