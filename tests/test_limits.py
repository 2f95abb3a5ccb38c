"""Abuse limits: rates per user / per IP and concurrent streams, answered with 429 and
Retry-After (HTTP) or an error frame (websocket); shared through Redis when it is configured."""

import json

import pytest
from asgiref.sync import sync_to_async

from tests.asgi_client import AsyncClient, Client
from tests.chat_helpers import ask, build_kb, ws_collect, ws_connect

pytestmark = pytest.mark.django_db(transaction=True)
QUESTION = "How many unused vacation days can I carry over?"


@pytest.fixture
async def limited(transactional_db, settings):
    await sync_to_async(build_kb)()
    settings.CHAT_RATE_LIMIT = "3/minute"
    settings.CHAT_RATE_LIMIT_PER_IP = "5/minute"


async def _post(client):
    return await client.post(
        "/chat", data=json.dumps(ask(QUESTION)), content_type="application/json"
    )


async def test_rate_limit_answers_429_with_retry_after(limited):
    client = AsyncClient()
    statuses = [(await _post(client)).status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    refused = await _post(client)
    assert refused.status_code == 429
    assert "Too many questions" in refused.json()["error"]
    assert 1 <= int(refused["Retry-After"]) <= 60
    # the websocket counts against the same caller
    socket, _, _ = await ws_connect()
    await socket.send_to(text_data=json.dumps({"type": "chat", **ask(QUESTION)}))
    events = await ws_collect(socket)
    assert "Too many questions" in events[0]["error"]
    await socket.disconnect()


async def test_users_have_their_own_budget_and_the_ip_a_shared_one(limited, make_user):
    clients = []
    for name in ("ann", "ben"):
        client = AsyncClient()
        await sync_to_async(client.force_login)(await sync_to_async(make_user)(name))
        clients.append(client)
    ann, ben = clients
    assert [(await _post(ann)).status_code for _ in range(3)] == [200, 200, 200]
    assert (await _post(ann)).status_code == 429  # ann's own limit
    assert [(await _post(ben)).status_code for _ in range(2)] == [200, 200]
    assert (await _post(ben)).status_code == 429  # the shared IP's 5/minute


async def test_concurrent_streams_are_capped_per_caller(limited, settings, make_user):
    settings.CHAT_RATE_LIMIT = settings.CHAT_RATE_LIMIT_PER_IP = None
    settings.CHAT_MAX_CONCURRENT_STREAMS = 1
    settings.CHAT_STREAM_DELAY_SECONDS = 0.05
    sync_client = Client()
    await sync_to_async(sync_client.force_login)(await sync_to_async(make_user)("cara"))
    cookie = f"sessionid={sync_client.cookies['sessionid'].value}"
    first, _, _ = await ws_connect(cookie=cookie)
    second, _, _ = await ws_connect(cookie=cookie)
    await first.send_to(text_data=json.dumps({"type": "chat", **ask(QUESTION)}))
    await first.receive_from(timeout=5)  # streaming now
    await second.send_to(text_data=json.dumps({"type": "chat", **ask(QUESTION)}))
    refused = await ws_collect(second)
    assert "already have 1 answers streaming" in refused[0]["error"]
    await ws_collect(first)
    await second.send_to(text_data=json.dumps({"type": "chat", **ask(QUESTION)}))
    assert "error" not in (await ws_collect(second))[0]
    for socket in (first, second):
        await socket.disconnect()


async def test_http_streams_are_capped_at_the_default_and_a_client_that_leaves_frees_one(
    transactional_db, settings
):
    await sync_to_async(build_kb)()
    settings.CHAT_STREAM_DELAY_SECONDS = 2.0  # each answer outlasts everything this test does
    client = AsyncClient()

    async def stream():
        return await client.post(
            "/chat/stream", data=ask(QUESTION), content_type="application/json"
        )

    answering = [await stream() for _ in range(settings.CHAT_MAX_CONCURRENT_STREAMS)]
    assert [r.status_code for r in answering] == [200, 200, 200, 200]
    refused = await stream()
    assert refused.status_code == 429 and "already have 4 answers" in refused.json()["error"]
    await answering.pop().disconnect()  # a reader closes the tab mid-answer
    answering.append(await stream())
    assert answering[-1].status_code == 200 and answering[-1].streaming
    for response in answering:
        await response.disconnect()
