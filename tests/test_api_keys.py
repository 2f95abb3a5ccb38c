"""API keys: a key acts as its user, with exactly that user's access, on POST /chat,
POST /chat/stream and the websocket; a bad, expired, revoked or forged key is a 401 (a 4401
close on the websocket) and returns nothing of any document."""

import io
import json
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from accounts import api_keys, bearer
from accounts.models import ApiKey
from tests.asgi_client import AsyncClient, Client
from tests.bearer_helpers import CHANNELS, chat_on, http_chat, ws_chat, ws_open
from tests.chat_helpers import PUBLIC_FACT, ask, build_kb, ws_collect, ws_connect

pytestmark = pytest.mark.django_db(transaction=True)

SECRET_BITS = ["78,000", "96,000", "Salary bands"]
PUBLIC_BITS = ["five unused vacation days", "Leave policy"]
SALARY = ask("What does L4 pay per year for vacation replacements?")
LEAVE = ask("How many unused vacation days may employees carry over?")


@pytest.fixture
def kb(transactional_db):
    return build_kb()


@pytest.fixture
def keys(kb, make_user):
    hanna = make_user("hanna", "HR")
    olga = make_user("olga", "Sales")
    return {
        "hr": api_keys.create_key(hanna, "hr script")[1],
        "outsider": api_keys.create_key(olga, "sales script")[1],
        "users": {"hr": hanna, "outsider": olga},
    }


def bearer_header(key: str) -> str:
    return f"Bearer {key}"


@pytest.mark.parametrize("channel", CHANNELS)
async def test_a_key_reads_exactly_what_its_user_may(keys, channel):
    status, text = await chat_on(channel, SALARY, bearer_header(keys["hr"]))
    assert status == 200
    assert "78,000" in text
    status, text = await chat_on(channel, SALARY, bearer_header(keys["outsider"]))
    assert status == 200
    for bit in SECRET_BITS:
        assert bit not in text


def _forged(key: str) -> str:
    """The same prefix, another secret: what someone who saw only the prefix could send."""
    prefix = api_keys.parse(key)
    return f"rsk_{prefix}_{'A' * 43}"


BAD = {
    "expired": lambda keys: _expired_key(keys["users"]["hr"]),
    "revoked": lambda keys: _revoked_key(keys["users"]["hr"]),
    "forged": lambda keys: _forged(keys["hr"]),
    "unknown": lambda keys: "rsk_0123456789ab_" + "B" * 43,
    "malformed": lambda keys: "not-a-key",
    "deactivated user": lambda keys: _deactivated_key(),
}


def _expired_key(user) -> str:
    row, key = api_keys.create_key(user, "old", expires_days=1)
    ApiKey.objects.filter(pk=row.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    return key


def _revoked_key(user) -> str:
    row, key = api_keys.create_key(user, "gone")
    api_keys.revoke(row.prefix)
    return key


def _deactivated_key() -> str:
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user("left", is_active=False, is_staff=True)
    return api_keys.create_key(user, "former staff")[1]


@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize("kind", list(BAD))
async def test_bad_keys_are_refused_with_nothing_of_any_document(keys, channel, kind):
    key = await sync_to_async(BAD[kind])(keys)
    for question in (SALARY, LEAVE):
        if channel == "websocket":
            code, text = await ws_chat(question, bearer_header(key))
            assert code == 4401
        else:
            status, headers, text = await http_chat(channel, question, bearer_header(key))
            assert status == 401
            assert headers["WWW-Authenticate"].startswith('Bearer error="invalid_token"')
            assert headers["Content-Type"] == "application/json"
            assert "error" in json.loads(text)
        for bit in SECRET_BITS + PUBLIC_BITS:
            assert bit not in text


@pytest.mark.parametrize("header", ["Basic aGFubmE6cHc=", "Bearer", "Bearer  ", "Token abc"])
async def test_other_authorization_schemes_are_refused_not_served_anonymously(keys, header):
    for endpoint in ("/chat", "/chat/stream"):
        status, headers, text = await http_chat(endpoint, LEAVE, header)
        assert status == 401 and PUBLIC_FACT not in text
        assert "invalid_token" in headers["WWW-Authenticate"]
    code, text = await ws_chat(LEAVE, header)
    assert code == 4401 and PUBLIC_FACT not in text


async def test_a_bearer_request_needs_no_csrf_token_and_ignores_the_session_cookie(keys):
    # A browser session of the HR user, without its CSRF token, plus an outsider's key: the key
    # decides (no CSRF needed: a browser never adds the header by itself), the cookie is ignored.
    browser = AsyncClient(enforce_csrf_checks=True)
    await sync_to_async(browser.force_login)(keys["users"]["hr"])
    for endpoint in ("/chat", "/chat/stream"):
        status, _, text = await http_chat(
            endpoint, SALARY, bearer_header(keys["outsider"]), client=browser
        )
        assert status == 200 and "78,000" not in text
    # The same cookie without the key still needs its token.
    response = await browser.post("/chat", data=SALARY, content_type="application/json")
    assert response.status_code == 403


async def test_a_bearer_socket_needs_no_origin_and_a_cookie_socket_still_does(keys):
    communicator, connected = await ws_open(bearer_header(keys["hr"]))
    assert connected
    await communicator.disconnect()
    _, connected, _ = await ws_connect(origin=b"https://evil.example")
    assert not connected


async def test_a_revoked_key_stops_an_open_socket_at_its_next_turn(keys):
    communicator, connected = await ws_open(bearer_header(keys["hr"]))
    assert connected
    await communicator.send_to(text_data=json.dumps({"type": "chat", **SALARY}))
    assert "78,000" in str(await ws_collect(communicator))
    await sync_to_async(api_keys.revoke)(api_keys.parse(keys["hr"]))
    await communicator.send_to(text_data=json.dumps({"type": "chat", **SALARY}))
    message = await communicator.receive_output(timeout=10)
    assert message == {"type": "websocket.close", "code": 4401}


async def test_group_changes_apply_to_the_next_request_of_a_key(keys):
    hanna = keys["users"]["hr"]
    status, text = await chat_on("/chat", SALARY, bearer_header(keys["hr"]))
    assert "78,000" in text
    await sync_to_async(hanna.groups.clear)()
    status, text = await chat_on("/chat", SALARY, bearer_header(keys["hr"]))
    assert status == 200 and "78,000" not in text


async def test_look_ups_are_cached_and_last_use_is_written_at_most_once_a_minute(keys, monkeypatch):
    calls = []
    real = bearer._key_identity

    def counted(*args):
        calls.append(args)
        return real(*args)

    monkeypatch.setattr(bearer, "_key_identity", counted)
    bearer.forget()
    for _ in range(4):
        status, _ = await chat_on("/chat/stream", LEAVE, bearer_header(keys["hr"]))
        assert status == 200
    assert len(calls) == 1  # one database look-up for four chats
    row = await ApiKey.objects.aget(prefix=api_keys.parse(keys["hr"]))
    first_use = row.last_used_at
    assert first_use is not None
    bearer.forget()  # the cache expired: the next chat looks the key up again...
    await chat_on("/chat", LEAVE, bearer_header(keys["hr"]))
    row = await ApiKey.objects.aget(pk=row.pk)
    assert len(calls) == 2 and row.last_used_at == first_use  # ...but within a minute: no write


async def test_a_revocation_in_another_process_applies_when_the_cache_expires(keys, settings):
    # Another process revokes with no signal reaching this one: the cached look-up serves on
    # until it expires (API_KEY_CACHE_SECONDS), then the key is refused.
    key = keys["hr"]
    assert (await chat_on("/chat", LEAVE, bearer_header(key)))[0] == 200
    await ApiKey.objects.filter(prefix=api_keys.parse(key)).aupdate(revoked=True)
    assert (await chat_on("/chat", LEAVE, bearer_header(key)))[0] == 200
    bearer.forget()  # what API_KEY_CACHE_SECONDS does in time
    assert (await chat_on("/chat", LEAVE, bearer_header(key)))[0] == 401
    settings.API_KEY_CACHE_SECONDS = 0  # no cache: every request looks the key up
    await ApiKey.objects.filter(prefix=api_keys.parse(key)).aupdate(revoked=False)
    assert (await chat_on("/chat", LEAVE, bearer_header(key)))[0] == 200


def test_the_apikey_command_creates_and_revokes(db, make_user):
    make_user("erin")
    out = io.StringIO()
    call_command("apikey", "create", "erin", "--name", "ci", "--expires-days", "30", stdout=out)
    key = out.getvalue().strip().splitlines()[-1]
    row = ApiKey.objects.get(prefix=api_keys.parse(key))
    assert row.name == "ci" and row.user.username == "erin"
    assert row.expires_at > timezone.now() + timedelta(days=29)
    assert key not in (row.digest, row.prefix) and row.digest == api_keys.digest(key)
    call_command("apikey", "revoke", f"rsk_{row.prefix}", stdout=io.StringIO())
    row.refresh_from_db()
    assert row.revoked
    with pytest.raises(CommandError, match="No active key"):
        call_command("apikey", "revoke", row.prefix, stdout=io.StringIO())
    with pytest.raises(CommandError, match="No user"):
        call_command("apikey", "create", "nobody", stdout=io.StringIO())
    with pytest.raises(CommandError, match="expires-days"):
        call_command("apikey", "create", "erin", "--expires-days", "0", stdout=io.StringIO())


def _shown_key(page: str, row) -> str:
    start = page.index(f"rsk_{row.prefix}_")
    return page[start : start + len(f"rsk_{row.prefix}_") + 43]


def test_a_user_makes_and_revokes_their_own_keys_on_their_page(db, make_user):
    erin, olga = make_user("erin"), make_user("olga")
    others = api_keys.create_key(olga, "olga's")[0]
    client = Client()
    assert client.get("/accounts/keys/").status_code == 302  # sign in first
    client.force_login(erin)
    response = client.post("/accounts/keys/", {"name": "laptop", "expires_days": "7"})
    assert response.status_code == 200
    row = ApiKey.objects.get(user=erin)
    key = _shown_key(response.content.decode(), row)
    assert api_keys.digest(key) == row.digest
    page = client.get("/accounts/keys/").content.decode()
    assert "laptop" in page and key not in page and "olga's" not in page
    assert client.post(f"/accounts/keys/{others.pk}/revoke/").status_code == 404
    assert client.post(f"/accounts/keys/{row.pk}/revoke/").status_code == 302
    row.refresh_from_db()
    others.refresh_from_db()
    assert row.revoked and not others.revoked


def test_staff_make_a_key_for_a_user_in_the_admin_and_see_it_once(admin_client, make_user):
    erin = make_user("erin")
    response = admin_client.post(
        "/admin/accounts/apikey/add/", {"user": erin.pk, "name": "nightly job", "expires_at": ""}
    )
    assert response.status_code == 200
    row = ApiKey.objects.get(user=erin)
    key = _shown_key(response.content.decode(), row)
    assert api_keys.digest(key) == row.digest
    assert key not in admin_client.get(f"/admin/accounts/apikey/{row.pk}/change/").content.decode()
    admin_client.post(
        "/admin/accounts/apikey/",
        {"action": "revoke", "_selected_action": [row.pk]},
    )
    row.refresh_from_db()
    assert row.revoked
