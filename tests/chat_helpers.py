"""Shared pieces of the chat tests: a small knowledge base, and clients for each channel."""

import asyncio
import json

from channels.testing.websocket import WebsocketCommunicator
from django.contrib.auth.models import Group
from django.core.management import call_command

from knowledge.models import Collection, Document
from tests.asgi_client import AsyncClient, next_port

PUBLIC_FACT = "Employees may carry over up to five unused vacation days into the next year."
SECRET_FACT = "Band L4 pays between 78,000 and 96,000 euros per year."


def build_kb():
    hr = Group.objects.get_or_create(name="HR")[0]
    handbook = Collection.objects.create(name="Handbook", slug="handbook")
    hr_coll = Collection.objects.create(name="HR", slug="hr")
    Document.objects.create(
        title="Leave policy",
        collection=handbook,
        body=f"Annual leave is 28 days. {PUBLIC_FACT} Carried-over days expire on 31 March.",
    )
    Document.objects.create(
        title="Parking",
        collection=handbook,
        body="The garage has 40 spaces. Parking permits cost 12 euros per month.",
    )
    secret = Document.objects.create(
        title="Salary bands",
        collection=hr_coll,
        body=f"{SECRET_FACT} Salary bands for vacation replacements follow band L2.",
    )
    secret.groups.add(hr)
    call_command("sync_index", verbosity=0)
    return {"hr": hr, "secret": secret}


async def logged_in(client, user):
    """The client, logged in as user (a session made the way Django's login makes one)."""
    from asgiref.sync import sync_to_async

    await sync_to_async(client.force_login)(user)
    return client


def parse_lines(raw: bytes) -> list[dict]:
    return [json.loads(line) for line in raw.decode().splitlines() if line.strip()]


async def stream_events(client, body, **extra) -> tuple[int, list[dict], bytes]:
    response = await client.post(
        "/chat/stream", data=json.dumps(body), content_type="application/json", **extra
    )
    if not response.streaming:
        return response.status_code, [json.loads(response.content)], response.content
    raw = b"".join([chunk async for chunk in response.streaming_content])
    return response.status_code, parse_lines(raw), raw


def ask(question, **kwargs) -> dict:
    body = {"messages": [{"role": "user", "content": question}]}
    body.update(kwargs)
    return body


async def ws_connect(
    cookie: str | None = None,
    origin: bytes = b"http://127.0.0.1:8000",
    address: str = "127.0.0.1",
):
    """A websocket to the real application; `address` is where the client connects from."""
    from ragsite.asgi import application

    headers = [(b"origin", origin), (b"host", b"127.0.0.1:8000")]
    if cookie:
        headers.append((b"cookie", cookie.encode()))
    communicator = WebsocketCommunicator(application, "/ws/chat/", headers=headers)
    communicator.scope["client"] = (address, next_port())
    connected, code = await communicator.connect(timeout=5)
    return communicator, connected, code


async def ws_collect(communicator, until="response.completed", seconds=10) -> list[dict]:
    events = []
    async with asyncio.timeout(seconds):
        while True:
            event = json.loads(await communicator.receive_from(timeout=seconds))
            events.append(event)
            if event.get("type") == until:
                return events


async def leave_after_lines(body: dict, lines: int, client=None) -> None:
    """POST /chat/stream through the real ASGI app and go away (http.disconnect) once `lines`
    lines of the answer have arrived, as a browser tab that is closed mid-answer."""
    client = client or AsyncClient()
    response = await client.post("/chat/stream", data=body, content_type="application/json")
    assert response.status_code == 200 and response.streaming
    received = b""
    async for chunk in response.streaming_content:
        received += chunk
        if received.count(b"\n") >= lines:
            break
    await response.disconnect()


async def eventually(predicate, seconds: float = 10, what: str = "the condition"):
    """Wait until `predicate()` (sync or async) is true; `seconds` only guards against hanging."""
    try:
        async with asyncio.timeout(seconds):
            while True:
                value = predicate()
                if asyncio.iscoroutine(value):
                    value = await value
                if value:
                    return value
                await asyncio.sleep(0.01)
    except TimeoutError:
        raise AssertionError(f"{what} did not happen within {seconds} s") from None
