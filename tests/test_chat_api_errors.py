"""The chat API's answers that are not a plain success, through the application users run: a body
that is not JSON is a JSON 415 (never Django's HTML 400), answers are never kept by a shared
cache, and a POST /chat answer the model broke off mid-way says so."""

import json

import pytest
from channels.testing.http import HttpCommunicator

from chat.models import Message
from tests.asgi_client import Client
from tests.chat_helpers import ask, build_kb, parse_lines
from tests.fakes import drop_connection, server_error
from tests.test_llm import configure

pytestmark = pytest.mark.django_db(transaction=True)
QUESTION = "How many unused vacation days can I carry over?"
BOUNDARY = "----ragsite-test-boundary"
NOT_JSON = {
    "form": (
        "application/x-www-form-urlencoded",
        b"messages=hello&csrfmiddlewaretoken=x",
    ),
    "multipart": (
        f"multipart/form-data; boundary={BOUNDARY}",
        (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="messages"\r\n\r\n'
            f"hello\r\n--{BOUNDARY}--\r\n"
        ).encode(),
    ),
    "broken multipart": ("multipart/form-data", b"no boundary at all"),
    "text": ("text/plain", json.dumps(ask(QUESTION)).encode()),
}


async def _post(path, body: bytes, content_type="application/json", cookies=None, token=None):
    from ragsite.asgi import application

    headers = [(b"content-type", content_type.encode()), (b"host", b"127.0.0.1")]
    if cookies:
        headers.append((b"cookie", "; ".join(f"{k}={v}" for k, v in cookies.items()).encode()))
    if token:
        headers.append((b"x-csrftoken", token.encode()))
    communicator = HttpCommunicator(application, "POST", path, body, headers)
    await communicator.send_input({"type": "http.request", "body": body})
    start = await communicator.receive_output(10)
    response = {
        "status": start["status"],
        "headers": {k.decode().lower(): v.decode() for k, v in start["headers"]},
        "body": b"",
    }
    while True:
        chunk = await communicator.receive_output(10)
        response["body"] += chunk.get("body", b"")
        if not chunk.get("more_body"):
            return response


@pytest.fixture
def kb(transactional_db):
    return build_kb()


@pytest.fixture
def logged_in(kb, make_user):
    """A member's session cookies and CSRF token, as the page hands them out."""
    browser = Client()
    browser.force_login(make_user("hedda", "HR"))
    browser.get("/")
    cookies = {name: morsel.value for name, morsel in browser.cookies.items()}
    return cookies, cookies["csrftoken"]


@pytest.mark.parametrize("kind", sorted(NOT_JSON))
@pytest.mark.parametrize("path", ["/chat", "/chat/stream"])
async def test_a_body_that_is_not_json_is_a_json_415(kb, logged_in, path, kind):
    content_type, body = NOT_JSON[kind]
    cookies, token = logged_in
    callers = {
        "logged in": {"cookies": cookies, "token": token},
        "logged in without a token": {"cookies": cookies},
        "anonymous": {},
    }
    answers = {
        who: await _post(path, body, content_type, **credentials)
        for who, credentials in callers.items()
    }
    seen = {who: (r["status"], r["headers"]["content-type"]) for who, r in answers.items()}
    assert seen == dict.fromkeys(callers, (415, "application/json")), answers
    for response in answers.values():
        assert "JSON" in json.loads(response["body"])["error"]


async def test_json_with_a_charset_and_no_content_type_at_all_are_served(kb):
    body = json.dumps(ask(QUESTION)).encode()
    for content_type in ("application/json; charset=utf-8", ""):
        response = await _post("/chat", body, content_type)
        assert response["status"] == 200, response["body"][:200]


async def test_answers_are_private_and_never_stored(kb, logged_in):
    cookies, token = logged_in
    body = json.dumps(ask("What does L4 pay per year for vacation replacements?")).encode()
    for path in ("/chat", "/chat/stream"):
        response = await _post(path, body, cookies=cookies, token=token)
        assert response["status"] == 200
        assert "78,000" in response["body"].decode()  # restricted text: this member's only
        assert response["headers"]["cache-control"] == "private, no-store"
    refused = await _post("/chat", json.dumps({"messages": []}).encode())
    assert refused["status"] == 400
    assert refused["headers"]["cache-control"] == "private, no-store"


async def test_an_answer_broken_off_mid_way_keeps_its_text_and_says_why(kb, settings, fake_openai):
    configure(settings, fake_openai, "compatible")
    # Tokens spaced as a model sends them, so the cut comes after some of them arrived.
    fake_openai.set_latency(chunk_interval=0.02)
    fake_openai.enqueue(drop_connection(after=3))
    response = await _post("/chat", json.dumps(ask(QUESTION)).encode())
    assert response["status"] == 200
    result = json.loads(response["body"])
    assert result["output_text"] and "interrupted" in result["error"]
    saved = await Message.objects.filter(role="assistant").alast()
    assert saved.interrupted and saved.content == result["output_text"]

    # The stream says the same in its last line.
    fake_openai.enqueue(drop_connection(after=3))
    streamed = await _post("/chat/stream", json.dumps(ask(QUESTION)).encode())
    events = parse_lines(streamed["body"])
    assert streamed["status"] == 200 and "interrupted" in events[-1]["error"]


async def test_an_answer_that_never_started_is_a_502(kb, settings, fake_openai):
    configure(settings, fake_openai, "compatible")
    fake_openai.enqueue(server_error(500))
    response = await _post("/chat", json.dumps(ask(QUESTION)).encode())
    assert response["status"] == 502
    assert json.loads(response["body"])["error"]
    assert response["headers"]["cache-control"] == "private, no-store"


async def test_a_logged_in_caller_without_a_token_still_gets_json(kb, logged_in):
    cookies, _ = logged_in
    response = await _post("/chat", json.dumps(ask(QUESTION)).encode(), cookies=cookies)
    assert response["status"] == 403 and "CSRF" in json.loads(response["body"])["error"]


async def test_a_failure_of_ours_mid_answer_is_json_too(kb, monkeypatch):
    from chat.llm.local import LocalAnswerer

    async def breaks(self, *args, **kwargs):
        yield await anext(aiter(original(self, *args, **kwargs)))
        raise RuntimeError("a bug (test)")

    original = LocalAnswerer.stream_answer
    monkeypatch.setattr(LocalAnswerer, "stream_answer", breaks)
    response = await _post("/chat", json.dumps(ask(QUESTION)).encode())
    assert response["status"] == 500
    assert response["headers"]["content-type"] == "application/json"
    assert "went wrong" in json.loads(response["body"])["error"]
    streamed = await _post("/chat/stream", json.dumps(ask(QUESTION)).encode())
    assert "went wrong" in parse_lines(streamed["body"])[-1]["error"]
    saved = await Message.objects.filter(role="assistant").alast()
    assert saved.interrupted and saved.content  # the word that came before is kept
