"""Who may read what, through every chat channel, plus CSRF and conversation privacy."""

import json

import pytest

from tests.asgi_client import AsyncClient, Client
from tests.chat_helpers import SECRET_FACT, ask, build_kb, stream_events, ws_collect, ws_connect

pytestmark = pytest.mark.django_db(transaction=True)

SECRET_BITS = ["78,000", "96,000", "Salary bands", "euros per year"]
SALARY_QUESTION = "What does L4 pay per year for vacation replacements?"


@pytest.fixture
def kb(transactional_db):
    return build_kb()


async def _http_raw(client, endpoint, body) -> tuple[int, str]:
    response = await client.post(endpoint, data=json.dumps(body), content_type="application/json")
    if response.streaming:
        return response.status_code, b"".join(
            [c async for c in response.streaming_content]
        ).decode()
    return response.status_code, response.content.decode()


async def _ws_raw(user, body) -> str:
    cookie = None
    if user is not None:
        sync_client = Client()
        await _force_login(sync_client, user)
        cookie = f"sessionid={sync_client.cookies['sessionid'].value}"
    communicator, connected, _ = await ws_connect(cookie=cookie)
    assert connected
    await communicator.send_to(text_data=json.dumps({"type": "chat", **body}))
    events = await ws_collect(communicator)
    await communicator.disconnect()
    return json.dumps(events)


async def _force_login(client, user):
    from asgiref.sync import sync_to_async

    await sync_to_async(client.force_login)(user)


@pytest.fixture
def people(kb, make_user):
    return {"outsider": make_user("olga", "Sales"), "hr": make_user("hanna", "HR")}


@pytest.mark.parametrize("who", ["anonymous", "outsider"])
async def test_restricted_passages_never_reach_other_users_on_any_channel(people, who):
    user = None if who == "anonymous" else people["outsider"]
    body = ask(SALARY_QUESTION, context={"overrides": {"suggest_followup_questions": True}})
    for endpoint in ("/chat", "/chat/stream"):
        client = AsyncClient()  # sends the CSRF token as the page does
        if user is not None:
            await _force_login(client, user)
        status, raw = await _http_raw(client, endpoint, body)
        assert status == 200
        for bit in SECRET_BITS:
            assert bit not in raw, (endpoint, bit)
    raw = await _ws_raw(user, body)
    for bit in SECRET_BITS:
        assert bit not in raw, ("websocket", bit)


async def test_group_member_gets_the_restricted_answer_on_every_channel(people):
    client = AsyncClient()
    await _force_login(client, people["hr"])
    status, raw = await _http_raw(client, "/chat/stream", ask(SALARY_QUESTION))
    assert status == 200 and "78,000" in raw
    raw = await _ws_raw(people["hr"], ask(SALARY_QUESTION))
    assert "78,000" in raw


async def test_source_page_is_access_checked(people, kb):
    secret_url = f"/source/{kb['secret'].pk}/"
    assert (await AsyncClient().get(secret_url)).status_code == 404
    outsider = AsyncClient()
    await _force_login(outsider, people["outsider"])
    assert (await outsider.get(secret_url)).status_code == 404
    member = AsyncClient()
    await _force_login(member, people["hr"])
    page = await member.get(secret_url + "?chunk=0")
    assert page.status_code == 200 and SECRET_FACT.split(" per")[0] in page.content.decode()
    assert (await AsyncClient().get("/source/999999/")).status_code == 404


async def test_another_users_conversation_is_refused(people):
    hr = AsyncClient()
    await _force_login(hr, people["hr"])
    _, events, _ = await stream_events(hr, ask(SALARY_QUESTION))
    session_state = events[0]["session_state"]

    outsider = AsyncClient()
    await _force_login(outsider, people["outsider"])
    for client in (outsider, AsyncClient()):
        status, raw = await _http_raw(
            client, "/chat/stream", ask("and band L5?", session_state=session_state)
        )
        assert status == 404 and "78,000" not in raw
    page = await outsider.get(f"/?c={session_state}")
    assert page.status_code == 404


async def test_logged_in_post_needs_csrf_token_anonymous_does_not(people):
    client = AsyncClient(enforce_csrf_checks=True)
    await _force_login(client, people["hr"])
    status, raw = await _http_raw(client, "/chat/stream", ask("vacation days"))
    assert status == 403 and "CSRF" in raw
    page = await client.get("/")
    token = page.cookies["csrftoken"].value if "csrftoken" in page.cookies else None
    assert token, "the chat page sets the CSRF cookie"
    status, _ = await _http_raw_with_header(client, token)
    assert status == 200
    anonymous = AsyncClient(enforce_csrf_checks=True)
    status, _ = await _http_raw(anonymous, "/chat/stream", ask("vacation days"))
    assert status == 200


async def _http_raw_with_header(client, token):
    response = await client.post(
        "/chat/stream",
        data=json.dumps(ask("vacation days")),
        content_type="application/json",
        headers={"X-CSRFToken": token},
    )
    return response.status_code, None


async def test_anonymous_chat_can_be_switched_off(kb, settings):
    settings.CHAT_ALLOW_ANONYMOUS = False
    status, raw = await _http_raw(AsyncClient(), "/chat/stream", ask("vacation days"))
    assert status == 401 and "log in" in raw
    communicator, connected, code = await ws_connect()
    assert not connected
