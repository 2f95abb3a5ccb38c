"""chat/store.py: the questions and answers of concurrent chats are written together, a few
statements per batch whatever its size, and one refused question does not sink the others."""

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import connection
from django.test.utils import CaptureQueriesContext

from chat.models import Conversation, Message
from chat.protocol import ProtocolError, parse_request
from chat.store import Answer, Question, store_turns

pytestmark = pytest.mark.django_db


def question(text, **overrides):
    body = {"messages": [{"role": "user", "content": text}]}
    if overrides:
        body["context"] = {"overrides": overrides}
    return Question(parse_request(body), AnonymousUser(), None)


def test_questions_and_answers_share_one_batch():
    (first,) = store_turns([question("Opening hours?")])
    conversation_id, history = first
    assert history == []

    batch = [question(f"Question {i}?") for i in range(10)]
    batch.insert(5, Answer({"conversation_id": conversation_id, "content": "Nine to five."}))
    batch.append(question("Lockers?", collection="no-such-collection"))
    with CaptureQueriesContext(connection) as queries:
        results = store_turns(batch)
    inserts = [q for q in queries.captured_queries if q["sql"].startswith("INSERT")]
    assert len(inserts) == 2  # the new conversations, then every message: one statement each

    answer_id = results[5]
    assert Message.objects.get(pk=answer_id).content == "Nine to five."
    assert isinstance(results[-1], ProtocolError) and "no-such-collection" in results[-1].message
    started = [r for r in results if isinstance(r, tuple)]
    assert len(started) == 10 and Conversation.objects.count() == 11
    roles = list(
        Message.objects.filter(conversation_id=conversation_id).values_list("role", flat=True)
    )
    assert roles == ["user", "assistant"]


def test_a_continued_conversation_moves_up_when_its_question_arrives():
    (older,) = store_turns([question("First?")])
    (newer,) = store_turns([question("Second?")])
    assert Conversation.objects.first().pk == newer[0]  # newest first
    follow_up = {
        "messages": [
            {"role": "user", "content": "First?"},
            {"role": "assistant", "content": "An answer."},
            {"role": "user", "content": "And then?"},
        ],
        "session_state": str(older[0]),
    }
    (continued,) = store_turns([Question(parse_request(follow_up), AnonymousUser(), None)])
    assert continued[0] == older[0]
    assert Conversation.objects.first().pk == older[0]
