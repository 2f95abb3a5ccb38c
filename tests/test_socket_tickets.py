"""Websocket tickets: a browser page holding a bearer credential buys a one-use ticket over HTTP
and opens /ws/chat/?ticket=... with it. The socket acts as the credential's user, with exactly
that user's access; an expired, reused, forged or revoked ticket, or one presented by a browser
signed in as another user, is closed with 4401 and returns nothing of any document."""

import json
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from channels.testing.websocket import WebsocketCommunicator
from django.utils import timezone

from accounts import api_keys, tickets
from accounts.models import GroupMapping, SocketTicket
from tests.asgi_client import AsyncClient, Client, next_port
from tests.bearer_helpers import ws_exchange
from tests.chat_helpers import ask, build_kb, ws_collect
from tests.fakes.oidc_provider import SigningKey
from tests.oidc_helpers import HR_GROUP_ID

pytestmark = pytest.mark.django_db(transaction=True)

SECRET_BITS = ["78,000", "96,000", "Salary bands"]
PUBLIC_BITS = ["five unused vacation days", "Leave policy"]
SALARY = ask("What does L4 pay per year for vacation replacements?")
LEAVE = ask("How many unused vacation days may employees carry over?")
ORIGIN = b"http://127.0.0.1:8000"


@pytest.fixture
def keys(transactional_db, make_user):
    build_kb()
    hanna = make_user("hanna", "HR")
    olga = make_user("olga", "Sales")
    return {
        "hr": api_keys.create_key(hanna, "hr page")[1],
        "outsider": api_keys.create_key(olga, "sales page")[1],
        "users": {"hr": hanna, "outsider": olga},
    }


async def buy(key: str | None, client=None):
    """POST /accounts/socket-ticket/ as a page's fetch() does; the response."""
    client = client or AsyncClient(enforce_csrf_checks=True)
    headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
    return await client.post("/accounts/socket-ticket/", headers=headers)


async def ticket_for(key: str) -> str:
    response = await buy(key)
    assert response.status_code == 200, response.content
    return response.json()["ticket"]


async def open_socket(ticket: str, origin: bytes = ORIGIN, cookie: str | None = None):
    """A browser's handshake: an Origin, maybe this site's session cookie, no Authorization."""
    from ragsite.asgi import application

    headers = [(b"host", b"127.0.0.1:8000"), (b"origin", origin)]
    if cookie is not None:
        headers.append((b"cookie", cookie.encode()))
    communicator = WebsocketCommunicator(application, f"/ws/chat/?ticket={ticket}", headers)
    communicator.scope["client"] = ("127.0.0.1", next_port())
    connected, _ = await communicator.connect(timeout=5)
    return communicator, connected


async def chat_with(ticket: str, body: dict, **open_kwargs) -> tuple[int, str]:
    """(close code, or 200 when answered; everything received as text)."""
    communicator, connected = await open_socket(ticket, **open_kwargs)
    if not connected:
        return 403, ""
    return await ws_exchange(communicator, body)


def refused_with_nothing(code: int, text: str) -> None:
    assert code == 4401
    for bit in SECRET_BITS + PUBLIC_BITS:
        assert bit not in text


async def test_a_ticket_socket_reads_exactly_what_the_keys_user_may(keys):
    code, text = await chat_with(await ticket_for(keys["hr"]), SALARY)
    assert code == 200 and "78,000" in text
    code, text = await chat_with(await ticket_for(keys["outsider"]), SALARY)
    assert code == 200
    for bit in SECRET_BITS:
        assert bit not in text


async def test_a_ticket_works_once(keys):
    ticket = await ticket_for(keys["hr"])
    code, _ = await chat_with(ticket, LEAVE)
    assert code == 200
    for question in (SALARY, LEAVE):
        refused_with_nothing(*await chat_with(ticket, question))


async def test_an_expired_ticket_is_refused(keys):
    ticket = await ticket_for(keys["hr"])
    await SocketTicket.objects.all().aupdate(expires_at=timezone.now() - timedelta(seconds=1))
    refused_with_nothing(*await chat_with(ticket, SALARY))


@pytest.mark.parametrize(
    "forged",
    [
        "rst_" + "A" * 43,  # well formed, never issued
        "rsk_0123456789ab_" + "B" * 43,  # an API key's shape
        "not-a-ticket",
        "",
    ],
)
async def test_a_forged_ticket_is_refused(keys, forged):
    await ticket_for(keys["hr"])  # a real one exists meanwhile
    refused_with_nothing(*await chat_with(forged, SALARY))


async def test_a_ticket_whose_row_was_tampered_with_is_refused(keys):
    # Another ticket's sealed credential moved onto this ticket's row: the key derived from
    # the ticket does not open it.
    mine, theirs = await ticket_for(keys["outsider"]), await ticket_for(keys["hr"])
    rows = {row.user_id: row async for row in SocketTicket.objects.all()}
    outsider, hr = keys["users"]["outsider"].pk, keys["users"]["hr"].pk
    await SocketTicket.objects.filter(pk=rows[outsider].pk).aupdate(sealed=rows[hr].sealed)
    refused_with_nothing(*await chat_with(mine, SALARY))
    code, text = await chat_with(theirs, SALARY)
    assert code == 200 and "78,000" in text


async def test_another_users_ticket_is_refused_to_a_signed_in_browser(keys):
    # Olga is signed in in this browser; a page hands it Hanna's ticket. Olga's questions must
    # not land in Hanna's account, nor may the socket read with Hanna's rights.
    browser = Client()
    await sync_to_async(browser.force_login)(keys["users"]["outsider"])
    cookie = f"sessionid={browser.cookies['sessionid'].value}"
    refused_with_nothing(*await chat_with(await ticket_for(keys["hr"]), SALARY, cookie=cookie))
    # Her own ticket in her own browser is fine, and reads only what she may.
    code, text = await chat_with(await ticket_for(keys["outsider"]), SALARY, cookie=cookie)
    assert code == 200 and "78,000" not in text


async def test_a_foreign_page_cannot_use_a_ticket_and_does_not_spend_it(keys):
    ticket = await ticket_for(keys["hr"])
    _, connected = await open_socket(ticket, origin=b"https://evil.example")
    assert not connected
    code, text = await chat_with(ticket, SALARY)
    assert code == 200 and "78,000" in text


async def test_a_ticket_of_a_key_revoked_before_use_is_refused(keys):
    ticket = await ticket_for(keys["hr"])
    await sync_to_async(api_keys.revoke)(api_keys.parse(keys["hr"]))
    refused_with_nothing(*await chat_with(ticket, SALARY))


async def test_a_ticket_socket_stops_at_the_next_turn_after_its_key_is_revoked(keys):
    communicator, connected = await open_socket(await ticket_for(keys["hr"]))
    assert connected
    await communicator.send_to(text_data=json.dumps({"type": "chat", **SALARY}))
    assert "78,000" in str(await ws_collect(communicator))
    await sync_to_async(api_keys.revoke)(api_keys.parse(keys["hr"]))
    await communicator.send_to(text_data=json.dumps({"type": "chat", **SALARY}))
    assert await communicator.receive_output(timeout=10) == {
        "type": "websocket.close",
        "code": 4401,
    }


async def test_the_ticket_endpoint_wants_a_good_bearer_credential(keys):
    response = await buy(None)
    assert response.status_code == 401 and "error" in response.json()
    assert response["WWW-Authenticate"] == 'Bearer realm="ragsite"'
    response = await buy(keys["hr"][:-4] + "AAAA")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith('Bearer error="invalid_token"')
    # A session cookie buys nothing: the page already has its cookie socket.
    browser = AsyncClient()
    await sync_to_async(browser.force_login)(keys["users"]["hr"])
    assert (await buy(None, client=browser)).status_code == 401
    response = await AsyncClient().get(
        "/accounts/socket-ticket/", headers={"Authorization": f"Bearer {keys['hr']}"}
    )
    assert response.status_code == 405
    assert await SocketTicket.objects.acount() == 0


async def test_a_ticket_is_short_lived_private_and_stored_without_the_credential(keys, settings):
    settings.WS_TICKET_SECONDS = 12
    response = await buy(keys["hr"])
    body = response.json()
    assert response["Cache-Control"] == "private, no-store"
    assert body["expires_in"] == 12 and body["url"] == f"/ws/chat/?ticket={body['ticket']}"
    row = await SocketTicket.objects.aget()
    assert row.user_id == keys["users"]["hr"].pk
    assert timedelta(seconds=11) < row.expires_at - timezone.now() <= timedelta(seconds=12)
    secret = keys["hr"].rsplit("_", 1)[1]
    for stored in (row.digest, row.sealed):
        assert body["ticket"] not in stored and secret not in stored


async def test_outstanding_tickets_per_user_are_capped_and_expired_ones_purged(keys):
    for _ in range(tickets.MAX_OUTSTANDING):
        await ticket_for(keys["hr"])
    response = await buy(keys["hr"])
    assert response.status_code == 429 and "Retry-After" in response
    assert (await buy(keys["outsider"])).status_code == 200  # per user
    await SocketTicket.objects.all().aupdate(expires_at=timezone.now() - timedelta(seconds=1))
    await ticket_for(keys["hr"])
    assert await SocketTicket.objects.acount() == 1


async def test_a_provider_access_token_buys_a_ticket_too(transactional_db, fake_idp):
    kb = await sync_to_async(build_kb)()
    await GroupMapping.objects.acreate(claim=HR_GROUP_ID, group=kb["hr"])
    token = fake_idp.mint({"sub": "sp-page", "preferred_username": "page", "groups": [HR_GROUP_ID]})
    code, text = await chat_with(await ticket_for(token), SALARY)
    assert code == 200 and "78,000" in text
    # A bad token buys none.
    forged = fake_idp.mint({"sub": "sp-page", "groups": [HR_GROUP_ID]}, key=SigningKey())
    assert (await buy(forged)).status_code == 401
