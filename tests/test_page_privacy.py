"""The chat page and the source page: no session row per cookieless visit, no shared caching of
restricted text, feedback rate-limited, and a saved conversation showing only the passages its
owner may still read."""

import json
import re

import pytest
from asgiref.sync import sync_to_async
from django.contrib.sessions.models import Session

from chat.models import Message
from tests.chat_helpers import SECRET_FACT, ask, build_kb, logged_in

pytestmark = pytest.mark.django_db(transaction=True)

SALARY_QUESTION = "What does L4 pay per year for vacation replacements?"
SECRET_PASSAGE = SECRET_FACT.split(" per")[0]


@pytest.fixture
def kb(transactional_db):
    return build_kb()


async def _stream(client, body) -> list[dict]:
    response = await client.post(
        "/chat/stream", data=json.dumps(body), content_type="application/json"
    )
    assert response.status_code == 200
    raw = b"".join([chunk async for chunk in response.streaming_content])
    return [json.loads(line) for line in raw.decode().splitlines()]


def _initial_messages(page) -> list[dict]:
    found = re.search(
        r'<script id="initial-messages" type="application/json">(.*?)</script>',
        page.content.decode(),
        re.S,
    )
    return json.loads(found.group(1))


def _assert_private(response):
    directives = {d.strip() for d in response.headers.get("Cache-Control", "").split(",")}
    assert {"private", "no-store"} <= directives, response.headers.get("Cache-Control")


async def test_cookieless_visits_create_no_session_and_the_browser_flow_still_works(kb, new_client):
    before = await Session.objects.acount()
    for _ in range(3):
        page = await new_client().get("/")
        assert page.status_code == 200 and 'id="composer"' in page.content.decode()
    assert await Session.objects.acount() == before

    browser = new_client()
    assert (await browser.get("/")).status_code == 200
    events = await _stream(browser, ask("How many unused vacation days can I carry over?"))
    state = events[0]["session_state"]
    message_id = events[-1]["context"]["message_id"]
    page = await browser.get(f"/?c={state}")
    assert page.status_code == 200
    assert [m["role"] for m in _initial_messages(page)] == ["user", "assistant"]
    response = await browser.post(
        "/chat/feedback",
        data=json.dumps({"message_id": message_id, "helpful": True}),
        content_type="application/json",
    )
    assert response.status_code == 200


async def test_pages_with_restricted_text_are_not_cached(kb, new_client, make_user):
    member = await logged_in(new_client(), await sync_to_async(make_user)("hanna", "HR"))
    events = await _stream(member, ask(SALARY_QUESTION))
    for url in ("/", f"/?c={events[0]['session_state']}", f"/source/{kb['secret'].pk}/?chunk=0"):
        response = await member.get(url)
        assert response.status_code == 200, url
        _assert_private(response)
    _assert_private(await new_client().get("/"))


async def test_feedback_is_rate_limited(kb, new_client, settings):
    settings.CHAT_FEEDBACK_RATE_LIMIT = "3/minute"
    browser = new_client()
    events = await _stream(browser, ask("How many unused vacation days can I carry over?"))
    message_id = events[-1]["context"]["message_id"]
    body = json.dumps({"message_id": message_id, "helpful": False, "comment": "meh"})
    statuses = []
    for _ in range(5):
        response = await browser.post("/chat/feedback", data=body, content_type="application/json")
        statuses.append(response.status_code)
    assert statuses == [200, 200, 200, 429, 429]
    assert int(response.headers["Retry-After"]) >= 1
    assert "Too much feedback" in response.json()["error"]


async def test_a_saved_conversation_shows_only_passages_its_owner_may_still_read(
    kb, new_client, make_user
):
    user = await sync_to_async(make_user)("hanna", "HR")
    member = await logged_in(new_client(), user)
    events = await _stream(member, ask(SALARY_QUESTION))
    state = events[0]["session_state"]
    page = await member.get(f"/?c={state}")
    answer = _initial_messages(page)[-1]
    assert SECRET_PASSAGE in json.dumps(answer["context"])  # shown while readable

    await sync_to_async(user.groups.remove)(kb["hr"])
    page = await member.get(f"/?c={state}")
    assert page.status_code == 200
    answer = _initial_messages(page)[-1]
    assert SECRET_PASSAGE not in json.dumps(answer["context"])
    assert "Salary bands" not in json.dumps(answer["context"])
    assert f"/source/{kb['secret'].pk}/" not in answer["answer_html"]
    # What the answer itself said was written then and stays, as in the stored message.
    stored = await Message.objects.aget(pk=answer["id"])
    assert answer["content"] == stored.content


async def test_a_demoted_staff_member_no_longer_sees_scores_or_filters_of_saved_answers(
    kb, new_client, make_user
):
    user = await sync_to_async(make_user)("stella", "HR")
    user.is_staff = True
    await user.asave()
    staff = await logged_in(new_client(), user)
    events = await _stream(staff, ask(SALARY_QUESTION))
    state = events[0]["session_state"]
    shown = json.dumps(_initial_messages(await staff.get(f"/?c={state}"))[-1]["context"])
    assert '"score"' in shown and '"filter"' in shown

    user.is_staff = False
    await user.asave()
    answer = _initial_messages(await staff.get(f"/?c={state}"))[-1]
    shown = json.dumps(answer["context"])
    assert '"score"' not in shown and '"filter"' not in shown
    assert SECRET_PASSAGE in shown  # still in HR: the passage itself stays
