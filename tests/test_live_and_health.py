"""Health probes, and live multi-device conversations through the channel layer (in-memory on the
embedded default, Redis in the scale-out pass)."""

import json
import uuid

import pytest
from asgiref.sync import sync_to_async

from tests.asgi_client import AsyncClient, Client
from tests.chat_helpers import ask, build_kb, ws_collect, ws_connect

pytestmark = pytest.mark.django_db(transaction=True)
QUESTION = "How many unused vacation days can I carry over?"


@pytest.fixture
def kb(transactional_db):
    return build_kb()


async def test_healthz_and_readyz(kb, settings):
    assert (await AsyncClient().get("/healthz")).json() == {"status": "ok"}
    response = await AsyncClient().get("/readyz")
    assert response.status_code == 200, response.content
    checks = response.json()["checks"]
    assert {"database", "search", "llm"} <= set(checks) and all(c["ok"] for c in checks.values())
    if settings.REDIS_URL:
        assert checks["redis"]["ok"]


async def test_readyz_names_what_is_down(kb, settings, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    settings.SEARCH_INDEX_PATH = blocker / "index.sqlite3"
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    response = await AsyncClient().get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert not body["checks"]["search"]["ok"] and not body["checks"]["redis"]["ok"]
    assert body["checks"]["database"]["ok"]


async def _cookie_for(user) -> str:
    client = Client()
    await sync_to_async(client.force_login)(user)
    return f"sessionid={client.cookies['sessionid'].value}"


async def test_an_answer_streams_to_every_socket_on_the_conversation(kb, make_user):
    alice = await sync_to_async(make_user)("alice")
    mallory = await sync_to_async(make_user)("mallory")
    cookie = await _cookie_for(alice)
    phone, _, _ = await ws_connect(cookie=cookie)
    laptop, _, _ = await ws_connect(cookie=cookie)

    await phone.send_to(text_data=json.dumps({"type": "chat", **ask(QUESTION)}))
    first = await ws_collect(phone)
    state = first[-1]["session_state"]

    await laptop.send_to(text_data=json.dumps({"type": "follow", "session_state": state}))
    assert json.loads(await laptop.receive_from(timeout=5)) == {
        "type": "following",
        "session_state": state,
    }
    intruder, _, _ = await ws_connect(cookie=await _cookie_for(mallory))
    await intruder.send_to(text_data=json.dumps({"type": "follow", "session_state": state}))
    assert "not yours" in json.loads(await intruder.receive_from(timeout=5))["error"]

    follow_up = ask("When do carried-over days expire?", session_state=state)
    await phone.send_to(text_data=json.dumps({"type": "chat", **follow_up}))
    on_phone = await ws_collect(phone)
    on_laptop = await ws_collect(laptop)
    text = "".join(e.get("delta", "") for e in on_phone)
    assert text and "".join(e.get("delta", "") for e in on_laptop) == text
    assert on_laptop[0]["type"] == "response.context"
    assert on_laptop[-1] == on_phone[-1] == {"type": "response.completed", "session_state": state}
    # coalesced: the mirror sends fewer frames than the asking socket got
    assert len(on_laptop) <= len(on_phone)
    assert await intruder.receive_nothing(timeout=0.3)
    for socket in (phone, laptop, intruder):
        await socket.disconnect()


async def test_a_socket_follows_its_ten_latest_conversations(kb, make_user):
    from channels.layers import get_channel_layer

    from chat.consumers import MAX_FOLLOWED
    from chat.mirror import group_name
    from chat.models import Conversation

    alice = await sync_to_async(make_user)("alice")
    socket, _, _ = await ws_connect(cookie=await _cookie_for(alice))
    ids = [str((await Conversation.objects.acreate(owner=alice)).pk) for _ in range(12)]
    for state in [*ids, ids[0]]:  # the first one again: it becomes the most recent
        await socket.send_to(text_data=json.dumps({"type": "follow", "session_state": state}))
        assert json.loads(await socket.receive_from(timeout=5))["type"] == "following"
    assert MAX_FOLLOWED == 10
    layer = get_channel_layer()
    # What a worker of the previous release sends: events as objects, not encoded frames.
    message = {"type": "conversation.events", "origin": "another-socket"}
    for dropped in ids[1:3]:  # the least recently followed left the layer's groups
        await layer.group_send(group_name(dropped), {**message, "events": [{"delta": "x"}]})
        assert await socket.receive_nothing(timeout=0.2)
    for kept in (ids[0], ids[3], ids[11]):
        await layer.group_send(group_name(kept), {**message, "events": [{"delta": kept}]})
        assert json.loads(await socket.receive_from(timeout=5)) == {"delta": kept}
    await layer.group_send(group_name(ids[11]), {**message, "frames": ['{"delta":"as is"}']})
    assert await socket.receive_from(timeout=5) == '{"delta":"as is"}'
    await socket.disconnect()


async def test_an_answer_nobody_else_follows_is_sent_through_the_layer_only_on_redis(
    kb, monkeypatch, settings
):
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    sent = []
    stock = type(layer).group_send

    async def counting(self, group, message):
        sent.append(message)
        await stock(self, group, message)

    monkeypatch.setattr(type(layer), "group_send", counting)
    socket, _, _ = await ws_connect()
    await socket.send_to(text_data=json.dumps({"type": "chat", **ask(QUESTION)}))
    events = await ws_collect(socket)
    assert "five unused vacation days" in "".join(e.get("delta", "") for e in events)
    if settings.REDIS_URL:  # Redis cannot tell cheaply who is in a group: it always mirrors
        assert sent and all(m["type"] == "conversation.events" for m in sent)
    else:
        assert sent == []
    await socket.disconnect()


async def test_a_channel_layer_outage_does_not_break_the_answer(kb, monkeypatch):
    from channels.layers import get_channel_layer

    layer = get_channel_layer()

    async def down(*args, **kwargs):
        raise ConnectionError("channel layer down (test)")

    monkeypatch.setattr(type(layer), "group_send", down)
    monkeypatch.setattr(type(layer), "group_add", down)
    socket, _, _ = await ws_connect()
    await socket.send_to(text_data=json.dumps({"type": "chat", **ask(QUESTION)}))
    events = await ws_collect(socket)
    assert "five unused vacation days" in "".join(e.get("delta", "") for e in events)
    await socket.disconnect()


def test_database_outage_on_a_page_is_a_short_503_not_an_error_page(transactional_db, monkeypatch):
    from django.db import OperationalError

    from chat.models import Conversation

    def refuse(*args, **kwargs):
        raise OperationalError("connection refused (test)")

    monkeypatch.setattr(Conversation.objects, "filter", refuse)
    url = f"/?c={uuid.uuid4()}"
    page = Client().get(url)
    assert page.status_code == 503 and page["Retry-After"] == "5"
    assert page["Content-Type"] == "text/plain; charset=utf-8"
    assert "database cannot be reached" in page.content.decode()
    assert "connection refused" not in page.content.decode()  # no internals shown
    program = Client().get(url, headers={"Accept": "application/json"})
    assert program.status_code == 503 and program["Retry-After"] == "5"
    assert "database cannot be reached" in program.json()["error"]


async def test_database_outage_is_a_503_json(kb, monkeypatch):
    from django.db import OperationalError

    def refuse(*args, **kwargs):
        raise OperationalError("connection refused (test)")

    monkeypatch.setattr("chat.store._conversation_for", refuse)
    response = await AsyncClient().post(
        "/chat/stream", data=json.dumps(ask(QUESTION)), content_type="application/json"
    )
    assert response.status_code == 503 and "database" in response.json()["error"]
    assert response["Retry-After"] == "5"
    socket, _, _ = await ws_connect()
    await socket.send_to(text_data=json.dumps({"type": "chat", **ask(QUESTION)}))
    events = await ws_collect(socket)
    assert "database" in events[0]["error"]
    await socket.disconnect()
