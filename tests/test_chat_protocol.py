"""Protocol conformance (PROTOCOL.md) on POST /chat, POST /chat/stream and the websocket."""

import json
import re

import pytest

from chat.models import Conversation, Message
from tests.asgi_client import AsyncClient
from tests.chat_helpers import (
    PUBLIC_FACT,
    ask,
    build_kb,
    stream_events,
    ws_collect,
    ws_connect,
)

pytestmark = pytest.mark.django_db(transaction=True)

QUESTION = "How many unused vacation days can I carry over?"


@pytest.fixture
def kb(transactional_db):
    return build_kb()


def _check_conformance(events: list[dict], followups: bool):
    first, *middle, last = events
    assert first["type"] == "response.context"
    data_points = first["context"]["data_points"]
    assert data_points["text"] and data_points["citations"]
    assert all(": " in text for text in data_points["text"])
    titles = [t["title"] for t in first["context"]["thoughts"]]
    assert {"Search query", "Access filter", "Search results"} <= set(titles)
    assert middle and all(e["type"] == "response.output_text.delta" for e in middle)
    answer = "".join(e["delta"] for e in middle)
    cited = re.findall(r"\[([^\]]+)\]", answer)
    assert cited and set(cited) <= set(data_points["citations"])
    assert last["type"] == "response.context"
    assert last["session_state"] == first["session_state"]
    if followups:
        assert isinstance(last["context"]["followup_questions"], list)
    return answer


async def test_stream_conformance_and_session_state_continues(kb):
    client = AsyncClient()
    body = ask(QUESTION, context={"overrides": {"suggest_followup_questions": True}})
    status, events, raw = await stream_events(client, body)
    assert status == 200
    answer = _check_conformance(events, followups=True)
    assert "five unused vacation days" in answer
    session_state = events[0]["session_state"]

    status, events, _ = await stream_events(
        client, ask("When do carried-over days expire?", session_state=session_state)
    )
    assert status == 200 and events[0]["session_state"] == session_state
    assert "31 March" in "".join(e.get("delta", "") for e in events)
    conversation = await Conversation.objects.aget(pk=session_state)
    roles = [m.role async for m in conversation.messages.order_by("pk")]
    assert roles == ["user", "assistant", "user", "assistant"]
    assert conversation.title == QUESTION


async def test_stream_response_headers(kb):
    response = await AsyncClient().post(
        "/chat/stream", data=json.dumps(ask(QUESTION)), content_type="application/json"
    )
    assert response["Content-Type"] == "application/x-ndjson"
    assert response.streaming


async def test_non_streamed_chat(kb):
    response = await AsyncClient().post(
        "/chat", data=json.dumps(ask(QUESTION)), content_type="application/json"
    )
    assert response.status_code == 200
    data = response.json()
    assert set(data) == {"output_text", "context", "session_state"}
    assert "five unused vacation days" in data["output_text"]
    cited = re.findall(r"\[([^\]]+)\]", data["output_text"])
    assert cited and set(cited) <= set(data["context"]["data_points"]["citations"])
    saved = await Message.objects.filter(role="assistant").alast()
    assert saved.content == data["output_text"] and not saved.interrupted
    assert saved.context["data_points"]["citations"]


async def test_nothing_found_is_said_plainly(kb):
    response = await AsyncClient().post(
        "/chat",
        data=json.dumps(ask("Quantum chromodynamics lattice gauge?")),
        content_type="application/json",
    )
    assert "could not find" in response.json()["output_text"]


async def test_websocket_conformance_and_completed(kb):
    communicator, connected, _ = await ws_connect()
    assert connected
    body = ask(QUESTION, context={"overrides": {"suggest_followup_questions": True}})
    await communicator.send_to(text_data=json.dumps({"type": "chat", **body}))
    events = await ws_collect(communicator)
    completed = events.pop()
    assert completed["type"] == "response.completed" and "cancelled" not in completed
    answer = _check_conformance(events, followups=True)
    assert "five unused vacation days" in answer
    assert completed["session_state"] == events[0]["session_state"]

    # the same socket continues the conversation
    follow = ask("When do carried-over days expire?", session_state=completed["session_state"])
    await communicator.send_to(text_data=json.dumps({"type": "chat", **follow}))
    events = await ws_collect(communicator)
    assert events[-1]["session_state"] == completed["session_state"]
    await communicator.disconnect()


async def test_citations_link_to_source_with_render_html(kb):
    body = ask(QUESTION, context={"overrides": {"render_html": True}})
    _, events, _ = await stream_events(AsyncClient(), body)
    html = events[-1]["context"]["answer_html"]
    assert 'class="citation"' in html and "/source/" in html
    assert PUBLIC_FACT.split(" up to")[0] in html.replace("\n", " ")
