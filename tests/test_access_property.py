"""Property: whoever asks, through whichever channel, nothing from a document they may not read is
returned, cited, quoted or shown. Random groups, users, collections and documents (hypothesis)."""

import asyncio
import json
import uuid

import pytest
from asgiref.sync import async_to_sync
from channels.layers import channel_layers
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chat.models import Conversation
from knowledge.models import Collection, Document
from tests.chat_helpers import ws_collect, ws_connect

pytestmark = pytest.mark.django_db(transaction=True)

GROUPS = ["red", "green", "blue"]
world = st.fixed_dictionaries(
    {
        "documents": st.lists(
            st.fixed_dictionaries(
                {
                    "groups": st.sets(st.sampled_from(GROUPS), max_size=2),
                    "published": st.booleans(),
                    "collection": st.sampled_from(["alpha", "beta"]),
                }
            ),
            min_size=1,
            max_size=6,
        ),
        "users": st.lists(
            st.fixed_dictionaries(
                {"groups": st.sets(st.sampled_from(GROUPS), max_size=2), "staff": st.booleans()}
            ),
            min_size=1,
            max_size=3,
        ),
        "anonymous_allowed": st.booleans(),
        "collection_filter": st.sampled_from([None, "alpha"]),
    }
)


def _readable(doc_spec, user_spec) -> bool:
    if not doc_spec["published"]:
        return False
    if user_spec is None:
        return not doc_spec["groups"]
    return (
        user_spec["staff"]
        or not doc_spec["groups"]
        or bool(doc_spec["groups"] & user_spec["groups"])
    )


def _build(spec, run):
    groups = {name: Group.objects.create(name=f"{name}-{run}") for name in GROUPS}
    collections = {
        slug: Collection.objects.create(name=f"{slug}-{run}", slug=f"{slug}-{run}")
        for slug in ("alpha", "beta")
    }
    tokens = []
    for i, doc_spec in enumerate(spec["documents"]):
        token = f"zq{run}x{i}"
        doc = Document.objects.create(
            title=f"Note {token}",
            body=f"The code word {token} opens locker {token} for the team.",
            published=doc_spec["published"],
            collection=collections[doc_spec["collection"]],
        )
        doc.groups.set([groups[g] for g in doc_spec["groups"]])
        tokens.append((token, doc))
    users = []
    for j, user_spec in enumerate(spec["users"]):
        user = User.objects.create_user(f"u{run}{j}", password="x", is_staff=user_spec["staff"])
        user.groups.set([groups[g] for g in user_spec["groups"]])
        users.append((user, user_spec))
    call_command("sync_index", verbosity=0)
    return tokens, users, collections


def _cleanup():
    Conversation.objects.all().delete()
    Document.objects.all().delete()
    Collection.objects.all().delete()
    User.objects.all().delete()
    Group.objects.all().delete()


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(spec=world)
def test_no_channel_ever_shows_what_a_user_may_not_read(spec, transactional_db, settings, capsys):
    settings.CHAT_ALLOW_ANONYMOUS = spec["anonymous_allowed"]
    settings.CHAT_STREAM_DELAY_SECONDS = 0
    run = uuid.uuid4().hex[:6]
    try:
        tokens, users, collections = _build(spec, run)
        question = "Which locker does each code word open? " + " ".join(t for t, _ in tokens)
        overrides = {"top": 50, "suggest_followup_questions": True, "render_html": True}
        if spec["collection_filter"]:
            overrides["collection"] = collections[spec["collection_filter"]].slug
        body = {"messages": [{"role": "user", "content": question}]}
        body["context"] = {"overrides": overrides}
        for user, user_spec in [(None, None), *users]:
            client = Client()
            if user is not None:
                client.force_login(user)
            forbidden = [
                (token, doc)
                for (token, doc), doc_spec in zip(tokens, spec["documents"], strict=True)
                if not _readable(doc_spec, user_spec)
            ]
            seen = []
            for endpoint in ("/chat", "/chat/stream"):
                response = client.post(
                    endpoint, data=json.dumps(body), content_type="application/json"
                )
                raw = _content(response)
                if user is None and not spec["anonymous_allowed"]:
                    assert response.status_code == 401
                    continue
                assert response.status_code == 200
                seen.append(raw.decode())
            seen.append(_websocket(client, user, body))
            for _token, doc in forbidden:
                page = client.get(f"/source/{doc.pk}/")
                assert page.status_code == 404
                seen.append(page.content.decode())
            capsys.readouterr()
            call_command(
                "search", question, *(["--user", user.username] if user else []), "--top", "50"
            )
            seen.append(capsys.readouterr().out)
            everything = "\n".join(seen)
            for token, _ in forbidden:
                # the question itself names every token; a leak is the document's own text
                assert f"locker {token}" not in everything, (token, user_spec)
                assert f"Note {token}" not in everything, (token, user_spec)
    finally:
        _cleanup()


def _content(response) -> bytes:
    """The body, also of a streamed answer (an async iterator) read from a sync test."""
    if not response.streaming:
        return response.content

    async def collect():
        return b"".join([chunk async for chunk in response.streaming_content])

    return async_to_sync(collect)()


def _websocket(client, user, body) -> str:
    async def talk():
        channel_layers.backends.clear()  # this example runs its own event loop
        cookie = f"sessionid={client.cookies['sessionid'].value}" if user is not None else None
        socket, connected, _ = await ws_connect(cookie=cookie)
        if not connected:
            return ""
        await socket.send_to(text_data=json.dumps({"type": "chat", **body}))
        events = await ws_collect(socket)
        await socket.disconnect()
        return json.dumps(events)

    return async_to_sync(asyncio.wait_for)(talk(), 20)
