"""A websocket keeps answering while the channel layer (Redis) is down, as the README's outage
table says: only what travels through the layer (other devices' answers, logout and rights
notices) waits, and each turn still re-checks the user."""

import json

import pytest
from asgiref.sync import sync_to_async
from django.test import Client

from chat.consumers import CLOSE_UNAUTHENTICATED
from tests.chat_helpers import ask, build_kb, ws_collect, ws_connect
from tests.proxy import free_port

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def redis_down(settings, transactional_db):
    build_kb()
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # nothing listens there: every layer call fails at once
            "CONFIG": {"hosts": [f"redis://127.0.0.1:{free_port()}/0"]},
        }
    }


async def test_an_anonymous_socket_answers_with_the_layer_down(redis_down):
    communicator, connected, _ = await ws_connect()
    assert connected
    for question in ("How many vacation days carry over?", "When do they expire?"):
        await communicator.send_to(text_data=json.dumps({"type": "chat", **ask(question)}))
        events = await ws_collect(communicator)
        assert events[-1]["type"] == "response.completed" and "cancelled" not in events[-1]
        assert any(e.get("type") == "response.output_text.delta" for e in events)
    await communicator.disconnect()


async def test_a_logged_in_socket_answers_and_still_loses_a_revoked_session(redis_down, make_user):
    user = await sync_to_async(make_user)("hanna", "HR")
    client = Client()
    await sync_to_async(client.force_login)(user)
    communicator, connected, _ = await ws_connect(
        cookie=f"sessionid={client.cookies['sessionid'].value}"
    )
    assert connected
    await communicator.send_to(text_data=json.dumps({"type": "chat", **ask("L4 pay?")}))
    assert (await ws_collect(communicator))[-1]["type"] == "response.completed"
    await sync_to_async(client.logout)()  # the notice cannot travel; the next turn finds out
    await communicator.send_to(text_data=json.dumps({"type": "chat", **ask("L4 pay?")}))
    while True:
        message = await communicator.receive_output(timeout=5)
        if message["type"] == "websocket.close":
            assert message["code"] == CLOSE_UNAUTHENTICATED
            break


async def test_a_layer_that_hangs_does_not_hold_up_a_logged_in_handshake(
    transactional_db, make_user, monkeypatch
):
    import asyncio

    from ragsite.channel_layers import InMemoryChannelLayer

    async def hangs(self, group, channel):
        await asyncio.Event().wait()

    monkeypatch.setattr(InMemoryChannelLayer, "group_add", hangs)
    user = await sync_to_async(make_user)("hanna")
    client = Client()
    await sync_to_async(client.force_login)(user)
    communicator, connected, _ = await ws_connect(
        cookie=f"sessionid={client.cookies['sessionid'].value}"
    )
    assert connected
    await communicator.disconnect()
