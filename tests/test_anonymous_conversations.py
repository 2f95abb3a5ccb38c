"""An anonymous conversation started from the page belongs to that browser alone: the page
creates no session row, the first question does, and another browser holding the conversation's
id gets a 404 on every channel. Programs without the page's cookies stay sessionless."""

import json

import pytest
from django.conf import settings
from django.contrib.sessions.models import Session

from chat.models import Conversation
from tests.chat_helpers import ask, build_kb

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def kb(transactional_db):
    return build_kb()


async def _first_line(client, body) -> tuple[object, dict]:
    response = await client.post(
        "/chat/stream", data=json.dumps(body), content_type="application/json"
    )
    assert response.status_code == 200
    raw = b"".join([chunk async for chunk in response.streaming_content])
    return response, json.loads(raw.decode().splitlines()[0])


async def test_a_page_conversation_belongs_to_its_browser(kb, new_client):
    browser = new_client()
    assert (await browser.get("/")).status_code == 200
    assert settings.SESSION_COOKIE_NAME not in browser.cookies
    response, first = await _first_line(browser, ask("How many vacation days carry over?"))
    state = first["session_state"]
    assert settings.SESSION_COOKIE_NAME in response.cookies
    conversation = await Conversation.objects.aget(pk=state)
    assert conversation.session_key
    assert await Session.objects.filter(session_key=conversation.session_key).aexists()

    assert (await browser.get(f"/?c={state}")).status_code == 200
    _, again = await _first_line(browser, ask("And parking?", session_state=state))
    assert again["session_state"] == state

    stranger = new_client()
    assert (await stranger.get(f"/?c={state}")).status_code == 404
    refused = await stranger.post(
        "/chat",
        data=json.dumps(ask("And parking?", session_state=state)),
        content_type="application/json",
    )
    assert refused.status_code == 404


async def test_programs_without_the_page_cookie_create_no_session(kb, new_client):
    before = await Session.objects.acount()
    program = type(new_client())(enforce_csrf_checks=True)  # a program: no page, no cookies
    response = await program.post(
        "/chat", data=json.dumps(ask("Parking permits?")), content_type="application/json"
    )
    assert response.status_code == 200
    assert settings.SESSION_COOKIE_NAME not in response.cookies
    assert await Session.objects.acount() == before
