"""The chat API through the real ASGI application, where it is served by the lean handler
(chat/api_handler.py, no middleware): sessions, users, CSRF and access still hold."""

import json

import pytest
from asgiref.sync import sync_to_async

from tests.asgi_client import AsyncClient, Client
from tests.chat_helpers import SECRET_FACT, ask, build_kb, parse_lines

pytestmark = pytest.mark.django_db(transaction=True)
QUESTION = "What does L4 pay per year for vacation replacements?"


async def _post(path, body, cookies=None, token=None):
    """POST as a program would: only the cookies and token given, nothing else."""
    client = AsyncClient(enforce_csrf_checks=True)
    for name, value in (cookies or {}).items():
        client.cookies[name] = value
    response = await client.post(
        path,
        data=json.dumps(body),
        content_type="application/json",
        headers={"X-CSRFToken": token} if token else None,
    )
    if response.streaming:
        return {
            "status": response.status_code,
            "body": b"".join([chunk async for chunk in response.streaming_content]),
        }
    return {"status": response.status_code, "body": response.content}


@pytest.fixture
def kb(transactional_db):
    return build_kb()


async def test_lean_handler_serves_anonymous_and_logged_in_users_with_csrf(kb, make_user):
    response = await _post("/chat/stream", ask(QUESTION))
    assert response["status"] == 200
    assert SECRET_FACT.split(" per")[0] not in response["body"].decode()

    member = await sync_to_async(make_user)("hedda", "HR")
    browser = Client()
    await sync_to_async(browser.force_login)(member)
    page = await sync_to_async(browser.get)("/")
    cookies = {name: morsel.value for name, morsel in browser.cookies.items()}
    assert "csrftoken" in cookies and "sessionid" in cookies

    refused = await _post("/chat/stream", ask(QUESTION), cookies=cookies)
    assert refused["status"] == 403 and b"CSRF" in refused["body"]

    response = await _post(
        "/chat/stream", ask(QUESTION), cookies=cookies, token=cookies["csrftoken"]
    )
    assert response["status"] == 200, response["body"][:300]
    events = parse_lines(response["body"])
    assert "78,000" in json.dumps(events)  # the session's user is HR: the passage is theirs
    assert page.status_code == 200

    answer = await _post(
        "/chat", ask("vacation days?"), cookies=cookies, token=cookies["csrftoken"]
    )
    assert answer["status"] == 200 and json.loads(answer["body"])["session_state"]


async def test_lean_handler_reports_bad_input_as_json(kb):
    response = await _post("/chat/stream", {"messages": []})
    assert response["status"] == 400
    assert "non-empty list" in json.loads(response["body"])["error"]


async def test_chat_path_sends_no_request_signals_but_the_site_does(kb):
    """Their sync receivers would each hop to the one shared sync thread on every chat."""
    from django.core.signals import request_finished, request_started

    seen = []

    def receiver(sender, **kwargs):
        seen.append(sender)

    request_started.connect(receiver)
    request_finished.connect(receiver)
    try:
        response = await _post("/chat/stream", ask(QUESTION))
        assert response["status"] == 200 and b"response.context" in response["body"]
        assert seen == []
        bad = await _post("/chat/stream", {"messages": "nope"})
        assert bad["status"] == 400 and seen == []
        await _post("/feedback", {})  # any other path goes through Django's own handler
        assert seen
    finally:
        request_started.disconnect(receiver)
        request_finished.disconnect(receiver)


async def test_the_lean_handler_serves_the_paths_the_urlconf_names(kb, settings):
    """The fast path is the URLconf's chat API, not a copy of its paths: moving the URLs moves
    the lean handler with them."""
    from django.core.signals import request_started
    from django.urls import reverse

    from chat.api_handler import chat_api_paths

    assert chat_api_paths() == {reverse("chat:chat"), reverse("chat:stream")}
    assert chat_api_paths() == {"/chat", "/chat/stream"}

    settings.ROOT_URLCONF = "tests.moved_chat_urls"
    assert chat_api_paths() == {"/v2/chat", "/v2/chat/stream"}
    seen = []

    def receiver(sender, **kwargs):
        seen.append(sender)

    request_started.connect(receiver)
    try:
        response = await _post("/v2/chat/stream", ask(QUESTION))
        assert response["status"] == 200 and b"response.context" in response["body"]
        assert seen == []  # served by the lean handler
        gone = await _post("/chat/stream", ask(QUESTION))
        assert gone["status"] == 404 and seen  # Django's handler: no such URL any more
    finally:
        request_started.disconnect(receiver)


async def test_a_chat_turn_leaves_no_reference_cycles(kb, settings, fake_openai):
    """Cyclic garbage waits for the garbage collector, whose full collections stalled every
    chat in flight for up to 160 ms under load. The chat path frees its per-turn objects by
    reference counting: no ExceptionGroup from a TaskGroup, no SDK stream object, no HTTP
    response of the upstream request left in a cycle."""
    import gc

    import aiohttp
    import httpx2
    import openai

    from tests.test_llm import configure

    configure(settings, fake_openai, "compatible")
    fake_openai.set_latency(ttft=0.0, chunks=5, chunk_interval=0.0)
    await _post("/chat/stream", ask(QUESTION))  # warm: clients and caches are built once
    watched = (BaseExceptionGroup, openai.AsyncStream, httpx2.Response, aiohttp.ClientResponse)
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for _ in range(3):
            response = await _post("/chat/stream", ask(QUESTION))
            assert response["status"] == 200 and b"output_text.delta" in response["body"]
        gc.collect()
        cyclic = [type(o).__name__ for o in gc.garbage if isinstance(o, watched)]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert cyclic == []
