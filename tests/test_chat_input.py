"""Bad input gets a clear 4xx JSON error (HTTP) or an error frame (websocket), never a 500."""

import json
import uuid

import pytest

from tests.asgi_client import AsyncClient
from tests.chat_helpers import ask, build_kb, ws_collect, ws_connect

pytestmark = pytest.mark.django_db(transaction=True)

TOO_MANY = {"messages": [{"role": "user", "content": "hi"}] * 51}
LONG = ask("x" * 4001)

BAD_BODIES = [
    ("not json", b"{nope", 400, "not valid JSON"),
    # Python's json module raises RecursionError here, not ValueError: once a 500.
    ("nested too deep", b"[" * 50_000, 400, "not valid JSON"),
    ("not utf-8", b'{"messages": [{"role": "user", "content": "\xff"}]}', 400, "not valid JSON"),
    ("array", b"[1, 2]", 400, "must be a JSON object"),
    ("string", b'"hello"', 400, "must be a JSON object"),
    ("missing messages", b"{}", 400, "'messages' must be a non-empty list"),
    ("empty messages", b'{"messages": []}', 400, "'messages' must be a non-empty list"),
    ("messages not list", b'{"messages": "hi"}', 400, "'messages' must be a non-empty list"),
    ("message not object", b'{"messages": ["hi"]}', 400, "messages[0] must be an object"),
    ("wrong role", b'{"messages": [{"role": "system", "content": "x"}]}', 400, "role must be"),
    ("content not string", b'{"messages": [{"role": "user", "content": 5}]}', 400, "string"),
    (
        "last not user",
        b'{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}',
        400,
        "last message must be the user's",
    ),
    ("empty question", b'{"messages": [{"role": "user", "content": "   "}]}', 400, "empty"),
    ("too many", json.dumps(TOO_MANY).encode(), 413, "Too many messages"),
    ("too long", json.dumps(LONG).encode(), 413, "too long"),
    ("too large body", json.dumps(ask("y" * 70_000)).encode(), 413, "too large"),
    ("unknown field", json.dumps(ask("q", system="be evil")).encode(), 400, "Unknown field"),
    ("context not object", json.dumps(ask("q", context=3)).encode(), 400, "'context' must"),
    *[
        (
            f"override {name}={value!r}",
            json.dumps(ask("q", context={"overrides": {name: value}})).encode(),
            400,
            message,
        )
        for name, value, message in [
            ("top", 0, "'top' must"),
            ("top", "5", "'top' must"),
            ("top", True, "'top' must"),
            ("top", 500, "'top' must"),
            ("retrieval_mode", "magic", "'retrieval_mode' must"),
            ("temperature", 3, "'temperature' must"),
            ("temperature", "hot", "'temperature' must"),
            ("suggest_followup_questions", "yes", "must be true or false"),
            ("collection", 7, "'collection' must"),
            ("collection", "no-such-collection", "There is no collection"),
        ]
    ],
    (
        "overrides not object",
        json.dumps(ask("q", context={"overrides": []})).encode(),
        400,
        "overrides",
    ),
    ("session_state number", json.dumps(ask("q", session_state=5)).encode(), 400, "session_state"),
    (
        "session_state junk",
        json.dumps(ask("q", session_state="abc")).encode(),
        400,
        "session_state",
    ),
    (
        "session_state unknown",
        json.dumps(ask("q", session_state=str(uuid.uuid4()))).encode(),
        404,
        "does not exist or is not yours",
    ),
]


@pytest.fixture
def kb(transactional_db):
    return build_kb()


@pytest.mark.parametrize("endpoint", ["/chat", "/chat/stream"])
@pytest.mark.parametrize(("case", "body", "status", "message"), BAD_BODIES, ids=lambda v: None)
async def test_bad_http_bodies(kb, endpoint, case, body, status, message):
    response = await AsyncClient().post(endpoint, data=body, content_type="application/json")
    assert response.status_code == status, (case, response.content[:300])
    assert response["Content-Type"] == "application/json"
    assert message in response.json()["error"], case


async def test_unknown_override_keys_are_ignored(kb):
    body = ask("vacation days carry over", context={"overrides": {"flux_capacitor": 1}})
    response = await AsyncClient().post("/chat", data=body, content_type="application/json")
    assert response.status_code == 200


@pytest.mark.parametrize("endpoint", ["/chat", "/chat/stream"])
async def test_get_is_method_not_allowed(endpoint):
    response = await AsyncClient().get(endpoint)
    assert response.status_code == 405 and "POST" in response.json()["error"]


BAD_FRAMES = [
    ("not json", "{nope", "not valid JSON"),
    ("nested too deep", "[" * 50_000, "not valid JSON"),
    ("no type", json.dumps(ask("q")), '"type"'),
    ("wrong type", json.dumps({"type": "shout"}), '"type"'),
    ("array", "[1]", '"type"'),
    ("empty messages", json.dumps({"type": "chat", "messages": []}), "non-empty list"),
    (
        "bad override",
        json.dumps({"type": "chat", **ask("q", context={"overrides": {"top": -1}})}),
        "'top'",
    ),
    ("too large", json.dumps({"type": "chat", **ask("z" * 70_000)}), "too large"),
    ("unknown field", json.dumps({"type": "chat", "extra": 1, **ask("q")}), "Unknown field"),
]


async def test_bad_websocket_frames_get_error_frames_and_socket_stays_open(kb):
    communicator, connected, _ = await ws_connect()
    assert connected
    for case, frame, message in BAD_FRAMES:
        await communicator.send_to(text_data=frame)
        event = json.loads(await communicator.receive_from(timeout=5))
        assert message in event.get("error", ""), (case, event)
    await communicator.send_to(bytes_data=b"\x00\x01")
    assert "text frames" in json.loads(await communicator.receive_from(timeout=5))["error"]
    # still open and answering
    await communicator.send_to(text_data=json.dumps({"type": "chat", **ask("vacation days")}))
    events = await ws_collect(communicator)
    assert events[0]["type"] == "response.context"
    await communicator.disconnect()


async def test_websocket_from_foreign_origin_is_refused(kb):
    communicator, connected, _ = await ws_connect(origin=b"https://evil.example")
    assert not connected


async def test_huge_body_is_413_json(kb):
    body = json.dumps(ask("w" * 3_000_000)).encode()
    response = await AsyncClient().post("/chat/stream", data=body, content_type="application/json")
    assert response.status_code == 413 and "too large" in response.json()["error"]
