"""Limits per identity: a key counts as its user (all of a user's keys share the user's budget),
and behind trusted proxies (TRUSTED_PROXIES) the client address is the one they report in
X-Forwarded-For, read right to left; what the client itself wrote there is never believed."""

import json

import pytest
from asgiref.sync import sync_to_async
from channels.testing.websocket import WebsocketCommunicator

from accounts import api_keys
from core.client_address import client_address
from tests.asgi_client import AsyncClient, application, next_port
from tests.chat_helpers import ask, build_kb, ws_collect

pytestmark = pytest.mark.django_db(transaction=True)
QUESTION = ask("How many unused vacation days can I carry over?")


@pytest.mark.parametrize(
    ("trusted", "peer", "forwarded", "expected"),
    [
        ([], "10.0.0.5", "203.0.113.9", "10.0.0.5"),  # no proxies configured: the connection
        (["10.0.0.0/8"], "198.51.100.7", "203.0.113.9", "198.51.100.7"),  # not from a proxy
        (["10.0.0.0/8"], "10.0.0.5", "203.0.113.9", "203.0.113.9"),
        (["10.0.0.0/8"], "10.0.0.5", "1.2.3.4, 203.0.113.9", "203.0.113.9"),  # spoofed left
        (["10.0.0.0/8"], "10.0.0.5", "1.2.3.4, 203.0.113.9, 10.1.1.1", "203.0.113.9"),
        (["10.0.0.5", "10.1.1.1"], "10.0.0.5", "203.0.113.9,10.1.1.1", "203.0.113.9"),
        (["10.0.0.0/8"], "10.0.0.5", "10.2.2.2, 10.1.1.1", "10.2.2.2"),  # all hops trusted
        (["10.0.0.0/8"], "10.0.0.5", "1.2.3.4, garbage, 10.1.1.1", "10.1.1.1"),
        (["10.0.0.0/8"], "10.0.0.5", None, "10.0.0.5"),
        (["10.0.0.0/8"], "10.0.0.5", "2001:db8::1", "2001:db8::1"),
        (["2001:db8:ff::/48"], "2001:db8:ff::2", "[2001:db8::1]", "2001:db8::1"),
        (["10.0.0.0/8"], "::ffff:10.0.0.5", "203.0.113.9", "203.0.113.9"),
    ],
)
def test_client_address_reads_trusted_hops_right_to_left(
    settings, trusted, peer, forwarded, expected
):
    settings.TRUSTED_PROXIES = trusted
    assert client_address(peer, forwarded) == expected


@pytest.fixture
async def limited(transactional_db, settings):
    await sync_to_async(build_kb)()
    settings.CHAT_RATE_LIMIT = "2/minute"
    settings.CHAT_RATE_LIMIT_PER_IP = None
    settings.TRUSTED_PROXIES = ["127.0.0.1"]


async def _post(forwarded=None, key=None):
    headers = {}
    if forwarded:
        headers["X-Forwarded-For"] = forwarded
    if key:
        headers["Authorization"] = f"Bearer {key}"
    client = AsyncClient()
    response = await client.post(
        "/chat", data=json.dumps(QUESTION), content_type="application/json", headers=headers
    )
    return response.status_code


async def test_anonymous_callers_behind_the_proxy_each_have_their_budget(limited):
    assert [await _post("203.0.113.1") for _ in range(3)] == [200, 200, 429]
    assert [await _post("203.0.113.2") for _ in range(2)] == [200, 200]
    # Writing another address to the left does not buy a new budget.
    assert await _post("198.51.100.99, 203.0.113.1") == 429


async def test_the_websocket_counts_the_forwarded_address_too(limited):
    assert [await _post("203.0.113.3") for _ in range(2)] == [200, 200]
    for forwarded, refused in (("203.0.113.3", True), ("203.0.113.4", False)):
        socket = WebsocketCommunicator(
            application(),
            "/ws/chat/",
            headers=[
                (b"origin", b"http://127.0.0.1:8000"),
                (b"host", b"127.0.0.1:8000"),
                (b"x-forwarded-for", forwarded.encode()),
            ],
        )
        socket.scope["client"] = ("127.0.0.1", next_port())  # from the proxy
        assert (await socket.connect(timeout=5))[0]
        await socket.send_to(text_data=json.dumps({"type": "chat", **QUESTION}))
        events = await ws_collect(socket)
        assert ("Too many questions" in json.dumps(events)) is refused
        await socket.disconnect()


async def test_all_keys_of_a_user_share_the_users_budget(limited, make_user):
    ann, ben = await sync_to_async(make_user)("ann"), await sync_to_async(make_user)("ben")
    first, second = [(await sync_to_async(api_keys.create_key)(ann, n))[1] for n in "ab"]
    bens = (await sync_to_async(api_keys.create_key)(ben, "c"))[1]
    assert [await _post(key=first), await _post(key=second)] == [200, 200]
    assert await _post(key=second) == 429  # a new key is no new budget
    assert await _post(key=bens) == 200  # another user from the same address: their own
