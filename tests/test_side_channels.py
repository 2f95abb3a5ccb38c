"""What callers who are not staff learn beyond the passages they may read: nothing about a
collection they may read nothing in, no group ids or index filter, no raw scores."""

import json
import re

import pytest
from asgiref.sync import sync_to_async

from knowledge.models import Collection
from tests.chat_helpers import ask, build_kb, logged_in, ws_collect, ws_connect

pytestmark = pytest.mark.django_db(transaction=True)

QUESTION = "What does L4 pay per year for vacation replacements?"


@pytest.fixture
def kb(transactional_db):
    return build_kb()


async def _chat(client, collection=None) -> tuple[int, dict]:
    overrides = {"collection": collection} if collection else {}
    body = ask(QUESTION, context={"overrides": overrides})
    response = await client.post("/chat", data=json.dumps(body), content_type="application/json")
    return response.status_code, response.json()


def _without_slug(data: dict, slug: str) -> dict:
    return json.loads(json.dumps(data).replace(slug, "<slug>"))


async def test_a_collection_one_may_read_nothing_in_looks_like_a_missing_one(
    kb, new_client, make_user
):
    await Collection.objects.acreate(name="Empty", slug="empty")
    outsider = await logged_in(new_client(), await sync_to_async(make_user)("olga", "Sales"))
    for client in (new_client(), outsider):
        missing = await _chat(client, "no-such-thing")
        for slug in ("hr", "empty"):
            status, data = await _chat(client, slug)
            assert (status, _without_slug(data, slug)) == (
                missing[0],
                _without_slug(missing[1], "no-such-thing"),
            )
        assert missing[0] == 400 and "no collection" in missing[1]["error"]

    member = await logged_in(new_client(), await sync_to_async(make_user)("hanna", "HR"))
    status, data = await _chat(member, "hr")
    assert status == 200 and "78,000" in json.dumps(data)
    staff = await sync_to_async(make_user)("stella")
    staff.is_staff = True
    await staff.asave()
    assert (await _chat(await logged_in(new_client(), staff), "empty"))[0] == 200


def _leaks(context: dict) -> list[str]:
    found = []
    for source in context["data_points"]["sources"]:
        if "score" in source:
            found.append("score in a source")
    for thought in context["thoughts"]:
        if thought["title"] == "Access filter":
            described = json.dumps(thought["description"])
            if "filter" in thought["props"] or re.search(r"\bg\d+\b|HR", described):
                found.append("access filter details")
        if thought["title"] == "Search results":
            if any("score" in hit for hit in thought["description"]):
                found.append("score in the search results")
    return found


async def test_group_ids_filters_and_scores_are_shown_to_staff_only(kb, new_client, make_user):
    member = await sync_to_async(make_user)("hanna", "HR")
    for client in (new_client(), await logged_in(new_client(), member)):
        status, data = await _chat(client)
        assert status == 200 and data["context"]["data_points"]["sources"]
        assert _leaks(data["context"]) == []
        response = await client.post(
            "/chat/stream", data=json.dumps(ask(QUESTION)), content_type="application/json"
        )
        raw = b"".join([chunk async for chunk in response.streaming_content])
        for line in raw.decode().splitlines():
            event = json.loads(line)
            if "context" in event:
                assert _leaks(event["context"]) == []

    socket, connected, _ = await ws_connect()
    assert connected
    await socket.send_to(text_data=json.dumps({"type": "chat", **ask(QUESTION)}))
    for event in await ws_collect(socket):
        if "context" in event:
            assert _leaks(event["context"]) == []
    await socket.disconnect()

    staff = await sync_to_async(make_user)("stella")
    staff.is_staff = True
    await staff.asave()
    status, data = await _chat(await logged_in(new_client(), staff))
    assert status == 200
    assert set(_leaks(data["context"])) == {
        "score in a source",
        "access filter details",
        "score in the search results",
    }
