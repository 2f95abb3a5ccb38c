"""Reasoning models as people deploy them: a GPT-5 or o-series model refuses `max_tokens` and
`temperature` (the strict fake refuses them as the service does), DeepSeek-R1 streams its
thinking as `reasoning_content`, and the Responses API streams reasoning summaries. The thinking
reaches the user as its own events, is stored on the message, and never enters the answer."""

import json

import pytest

from chat.models import Message
from tests.asgi_client import AsyncClient
from tests.chat_helpers import ask, build_kb, stream_events, ws_collect, ws_connect
from tests.fakes import reply
from tests.fakes.reasoning import THOUGHT
from tests.test_llm import QUESTION, configure

REASONING_EVENT = "response.reasoning.delta"


@pytest.fixture
def kb(transactional_db):
    return build_kb()


@pytest.fixture
def upstream(settings, fake_openai):
    configure(settings, fake_openai, "compatible")
    return fake_openai


def _model(settings, name, api="chat"):
    settings.OPENAI_CHAT_MODEL = name
    settings.OPENAI_API = api


@pytest.mark.parametrize("api", ["chat", "responses"])
async def test_a_reasoning_model_rewrites_queries_and_suggests_followups(
    kb, settings, upstream, api
):
    _model(settings, "gpt-5-mini", api)
    client = AsyncClient()
    _, events, _ = await stream_events(client, ask(QUESTION))
    state = events[0]["session_state"]
    upstream.enqueue(reply("vacation days expiry"), reply(None), reply('["And sick leave?"]'))
    overrides = {"suggest_followup_questions": True, "temperature": 0.2}
    status, events, _ = await stream_events(
        client,
        ask("And when do they expire?", session_state=state, context={"overrides": overrides}),
    )
    assert status == 200 and "error" not in events[-1], events[-1]
    search = events[0]["context"]["thoughts"][0]
    assert search["props"]["rewrite"] == "rewritten by the model"
    assert search["description"] == "vacation days expiry"
    assert events[-1]["context"]["followup_questions"] == ["And sick leave?"]
    for request in upstream.chat_requests:
        assert "max_tokens" not in request.json and "temperature" not in request.json
    rewrite = upstream.chat_requests[-3].json
    if api == "chat":
        assert rewrite["max_completion_tokens"] >= 1024 and rewrite["reasoning_effort"] == "low"
    else:
        assert rewrite["max_output_tokens"] >= 1024 and rewrite["reasoning"]["effort"] == "low"


async def test_the_strict_fake_refuses_what_the_service_refuses(kb, settings, upstream):
    """With reasoning parameters switched off, a GPT-5 model refuses the side calls' parameters:
    the rewrite falls back to the question, as it did on every turn before."""
    _model(settings, "gpt-5-mini")
    settings.OPENAI_REASONING_MODEL = "false"
    client = AsyncClient()
    _, events, _ = await stream_events(client, ask(QUESTION))
    state = events[0]["session_state"]
    _, events, _ = await stream_events(client, ask("And then?", session_state=state))
    assert "rewrite failed" in events[0]["context"]["thoughts"][0]["props"]["rewrite"]
    refused = [r for r in upstream.chat_requests if r.status == 400]
    assert refused and "max_tokens" in refused[0].json


@pytest.mark.parametrize("api", ["chat", "responses"])
async def test_reasoning_effort_override(kb, settings, upstream, api):
    _model(settings, "o4-mini", api)
    body = ask(QUESTION, context={"overrides": {"reasoning_effort": "high"}})
    status, events, _ = await stream_events(AsyncClient(), body)
    assert status == 200 and "error" not in events[-1]
    sent = upstream.chat_requests[-1].json
    assert (sent.get("reasoning_effort") or sent["reasoning"]["effort"]) == "high"


@pytest.mark.parametrize("api", ["chat", "responses"])
async def test_reasoning_effort_is_not_sent_to_other_models(kb, settings, upstream, api):
    _model(settings, "llama3.1", api)  # the fake refuses reasoning_effort here, as the service
    body = ask(QUESTION, context={"overrides": {"reasoning_effort": "high"}})
    status, events, _ = await stream_events(AsyncClient(), body)
    assert status == 200 and "error" not in events[-1]
    sent = upstream.chat_requests[-1].json
    assert "reasoning_effort" not in sent and "reasoning" not in sent


@pytest.mark.parametrize("effort", ["extreme", 3, ""])
async def test_a_bad_reasoning_effort_is_a_400(kb, settings, upstream, effort):
    body = ask(QUESTION, context={"overrides": {"reasoning_effort": effort}})
    status, events, _ = await stream_events(AsyncClient(), body)
    assert status == 400 and "reasoning_effort" in events[-1]["error"]


@pytest.mark.parametrize(
    ("model", "api"), [("deepseek-r1:8b", "chat"), ("gpt-5-mini", "responses")]
)
async def test_the_thinking_streams_apart_and_is_stored(kb, settings, upstream, model, api):
    _model(settings, model, api)
    status, events, _ = await stream_events(AsyncClient(), ask(QUESTION))
    assert status == 200 and "error" not in events[-1]
    kinds = [e.get("type") for e in events]
    first_answer = kinds.index("response.output_text.delta")
    assert REASONING_EVENT in kinds[:first_answer]  # the thinking comes first
    thinking = "".join(e["delta"] for e in events if e.get("type") == REASONING_EVENT)
    answer = "".join(e["delta"] for e in events if e.get("type") == "response.output_text.delta")
    assert thinking == THOUGHT
    assert "let me check" not in answer  # never mixed into the answer
    final = events[-1]["context"]
    assert final["usage"]["reasoning_tokens"] > 0
    (step,) = [t for t in final["thoughts"] if t["title"] == "Reasoning"]
    assert step["props"]["reasoning_tokens"] == final["usage"]["reasoning_tokens"]
    saved = await Message.objects.filter(role="assistant").alast()
    assert saved.reasoning == THOUGHT and saved.content == answer


async def test_the_thinking_streams_over_the_websocket_too(kb, settings, upstream):
    _model(settings, "deepseek-r1:8b")
    communicator, _, _ = await ws_connect()
    await communicator.send_to(text_data=json.dumps({"type": "chat", **ask(QUESTION)}))
    events = await ws_collect(communicator)
    await communicator.disconnect()
    thinking = "".join(e["delta"] for e in events if e.get("type") == REASONING_EVENT)
    assert thinking == THOUGHT


async def test_the_page_shows_stored_thinking(kb, settings, upstream):
    """A conversation opened again carries its thinking for the page's panel."""
    _model(settings, "deepseek-r1:8b")
    client = AsyncClient()
    _, events, _ = await stream_events(client, ask(QUESTION))
    state = events[0]["session_state"]
    page = await client.get(f"/?c={state}")
    assert page.status_code == 200
    assert json.dumps(THOUGHT)[1:-1] in page.content.decode()
