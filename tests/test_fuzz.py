"""Fuzzing the chat endpoints and websocket frames (hypothesis): zero 5xx, zero hung requests,
every error a JSON object with a human message."""

import asyncio
import json

import pytest
from asgiref.sync import async_to_sync
from channels.layers import channel_layers
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.asgi_client import Client
from tests.chat_helpers import build_kb, ws_collect, ws_connect

pytestmark = pytest.mark.django_db(transaction=True)
FUZZ = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
message = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "assistant", "system", "", 3]), "content": json_values}
)
near_valid = st.fixed_dictionaries(
    {"messages": st.lists(message, max_size=3) | json_values},
    optional={
        "context": st.fixed_dictionaries({"overrides": st.dictionaries(
            st.sampled_from(["top", "retrieval_mode", "temperature", "collection",
                             "suggest_followup_questions", "render_html", "x"]),
            json_values, max_size=3)}) | json_values,
        "session_state": st.none() | st.uuids().map(str) | json_values,
        "type": json_values,
    },
)  # fmt: skip
bodies = (
    near_valid.map(lambda v: json.dumps(v).encode())
    | json_values.map(lambda v: json.dumps(v).encode())
    | st.binary(max_size=200)
)


@pytest.fixture
def kb(transactional_db, settings):
    settings.CHAT_STREAM_DELAY_SECONDS = 0
    # 120 examples from one address in seconds: past 30 a minute every answer would be a 429,
    # and the parser under test would never see the body.
    settings.CHAT_RATE_LIMIT = settings.CHAT_RATE_LIMIT_PER_IP = None
    build_kb()


def _content(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def _check_response(response):
    raw = _content(response)
    assert response.status_code < 500, raw[:300]
    if response.status_code >= 400:
        error = json.loads(raw)["error"]
        assert isinstance(error, str) and error and "Traceback" not in error
    else:
        lines = [json.loads(line) for line in raw.splitlines() if line.strip()]
        assert lines
        for line in lines:
            if "error" in line:
                assert isinstance(line["error"], str) and "Traceback" not in line["error"]


@FUZZ
@given(body=bodies, endpoint=st.sampled_from(["/chat", "/chat/stream"]))
def test_fuzzed_http_bodies_never_5xx(kb, body, endpoint):
    response = Client().post(endpoint, data=body, content_type="application/json")
    _check_response(response)


@settings(FUZZ, max_examples=40)
@given(
    frames=st.lists(
        bodies.map(lambda b: b.decode("utf-8", "replace")).filter(bool), min_size=1, max_size=4
    )
)
def test_fuzzed_websocket_frames_get_answers_and_the_socket_stays_open(kb, frames):
    async def talk():
        channel_layers.backends.clear()  # this example runs its own event loop
        socket, connected, _ = await ws_connect()
        assert connected
        for frame in frames:
            await socket.send_to(text_data=frame)
        # drain whatever came back; every frame is JSON, errors are messages. (receive_nothing,
        # not a timed-out receive_from, which would cancel the application.)
        while not await socket.receive_nothing(timeout=0.1):
            event = json.loads(await socket.receive_from())
            if "error" in event:
                assert isinstance(event["error"], str) and event["error"]
        # still open and answering
        valid = {"messages": [{"role": "user", "content": "vacation days"}]}
        await socket.send_to(text_data=json.dumps({"type": "cancel"}))
        await asyncio.sleep(0.05)
        while not await socket.receive_nothing(timeout=0.2):
            await socket.receive_from()
        await socket.send_to(text_data=json.dumps({"type": "chat", **valid}))
        events = await ws_collect(socket, seconds=10)
        assert events[-1]["type"] == "response.completed"
        await socket.disconnect()

    async_to_sync(asyncio.wait_for)(talk(), 30)
