"""Edges of a chat turn outside the browser: the history budget, a deactivated user, and who may
leave feedback on an answer."""

import json

import pytest
from asgiref.sync import sync_to_async

from chat.history import MESSAGE_OVERHEAD_TOKENS, trim_history
from knowledge.tokens import count_tokens
from tests.chat_helpers import SECRET_FACT, ask, build_kb, logged_in, parse_lines
from tests.test_llm import configure

SALARY = "What does band L4 pay per year?"


def _turn(role, text):
    return {"role": role, "content": text}


def _cost(messages):
    return sum(count_tokens(m["content"]) + MESSAGE_OVERHEAD_TOKENS for m in messages)


def test_trim_history_keeps_the_newest_turns_within_the_budget():
    history = [_turn("user", f"question {i} " * 20) for i in range(6)]
    kept = trim_history(history, budget=_cost(history[-2:]))
    assert kept == history[-2:]
    assert trim_history(history, budget=_cost(history)) == history
    assert trim_history(history, budget=0) == []


def test_trim_history_never_starts_with_an_orphaned_answer():
    history = [
        _turn("user", "first question " * 30),
        _turn("assistant", "first answer"),
        _turn("user", "second question"),
    ]
    kept = trim_history(history, budget=_cost(history[1:]))
    assert kept == [history[2]]


@pytest.fixture
def kb(transactional_db):
    return build_kb()


async def _answer(client, body) -> tuple[int, list[dict]]:
    response = await client.post(
        "/chat/stream", data=json.dumps(body), content_type="application/json"
    )
    if not response.streaming:
        return response.status_code, [json.loads(response.content)]
    raw = b"".join([chunk async for chunk in response.streaming_content])
    return response.status_code, parse_lines(raw)


async def test_the_model_gets_only_the_history_that_fits_the_budget(
    kb, settings, fake_openai, new_client
):
    configure(settings, fake_openai, "compatible")
    client = new_client()
    _, events = await _answer(client, ask("How many vacation days carry over? " + "please " * 150))
    state = events[0]["session_state"]
    settings.CHAT_HISTORY_TOKEN_BUDGET = 100
    _, events = await _answer(client, ask("And parking?", session_state=state))
    assert "error" not in events[-1], events[-1]
    answer_request = fake_openai.chat_requests[-1]
    sent = [m["content"] for m in answer_request.json["messages"] if m["role"] != "system"]
    assert not any("please please" in text for text in sent)  # the long first turn was dropped
    assert any("And parking?" in text for text in sent)


async def test_a_deactivated_user_loses_their_access_with_their_session(
    kb, settings, new_client, make_user
):
    member = await sync_to_async(make_user)("hedda", "HR")
    client = await logged_in(new_client(), member)
    _, events = await _answer(client, ask(SALARY))
    assert SECRET_FACT.split(" per")[0] in json.dumps(events)

    member.is_active = False
    await member.asave(update_fields=["is_active"])
    status, events = await _answer(client, ask(SALARY))
    assert status == 200 and SECRET_FACT.split(" per")[0] not in json.dumps(events)

    settings.CHAT_ALLOW_ANONYMOUS = False
    status, events = await _answer(client, ask(SALARY))
    assert status == 401 and SECRET_FACT.split(" per")[0] not in json.dumps(events)


async def test_feedback_only_from_whoever_received_the_answer(kb, new_client, make_user):
    owner = await logged_in(new_client(), await sync_to_async(make_user)("olga"))
    _, events = await _answer(owner, ask("Where can I park?"))
    message_id = events[-1]["context"]["message_id"]
    vote = json.dumps({"message_id": message_id, "helpful": False})

    other = await logged_in(new_client(), await sync_to_async(make_user)("mallory"))
    program = type(new_client())(enforce_csrf_checks=True)
    for stranger in (other, program):
        response = await stranger.post("/chat/feedback", data=vote, content_type="application/json")
        assert response.status_code == 404 and response.json() == {"error": "No such answer."}

    response = await owner.post("/chat/feedback", data=vote, content_type="application/json")
    assert response.status_code == 200


async def test_feedback_from_a_logged_in_session_needs_the_csrf_token(kb, new_client, make_user):
    user = await sync_to_async(make_user)("petra")
    owner = await logged_in(new_client(), user)
    _, events = await _answer(owner, ask("Where can I park?"))
    vote = json.dumps({"message_id": events[-1]["context"]["message_id"], "helpful": True})
    forged = await logged_in(type(new_client())(enforce_csrf_checks=True), user)
    response = await forged.post("/chat/feedback", data=vote, content_type="application/json")
    assert response.status_code == 403 and "CSRF" in response.json()["error"]
