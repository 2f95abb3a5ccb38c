"""Chat requests that carry a bearer credential, on each of the three channels, returning what
a caller sees: the status (or websocket close code) and everything it received."""

import json

from channels.testing.websocket import WebsocketCommunicator

from tests.asgi_client import AsyncClient, next_port

CHANNELS = ("/chat", "/chat/stream", "websocket")


async def http_chat(endpoint: str, body: dict, authorization: str, client=None):
    """(status, response headers, the whole body as text)."""
    client = client or AsyncClient(enforce_csrf_checks=True)
    response = await client.post(
        endpoint,
        data=json.dumps(body),
        content_type="application/json",
        headers={"Authorization": authorization},
    )
    if response.streaming:
        text = b"".join([c async for c in response.streaming_content]).decode()
    else:
        text = response.content.decode()
    return response.status_code, response.headers, text


async def ws_open(authorization: str, origin: bytes | None = None, cookie: str | None = None):
    from ragsite.asgi import application

    headers = [(b"host", b"127.0.0.1:8000"), (b"authorization", authorization.encode())]
    if origin is not None:
        headers.append((b"origin", origin))
    if cookie is not None:
        headers.append((b"cookie", cookie.encode()))
    communicator = WebsocketCommunicator(application, "/ws/chat/", headers=headers)
    communicator.scope["client"] = ("127.0.0.1", next_port())
    connected, _ = await communicator.connect(timeout=5)
    return communicator, connected


async def ws_chat(body: dict, authorization: str, **open_kwargs):
    """(close code or 200 when answered, everything received as text)."""
    communicator, connected = await ws_open(authorization, **open_kwargs)
    assert connected
    return await ws_exchange(communicator, body)


async def ws_exchange(communicator, body: dict) -> tuple[int, str]:
    """Ask on an open socket: (close code or 200 when answered, everything received as text)."""
    await communicator.send_to(text_data=json.dumps({"type": "chat", **body}))
    received = []
    while True:
        message = await communicator.receive_output(timeout=10)
        if message["type"] == "websocket.close":
            return message.get("code"), json.dumps(received)
        received.append(json.loads(message["text"]))
        if received[-1].get("type") == "response.completed":
            await communicator.disconnect()
            return 200, json.dumps(received)


async def chat_on(channel: str, body: dict, authorization: str) -> tuple[int, str]:
    if channel == "websocket":
        return await ws_chat(body, authorization)
    status, _, text = await http_chat(channel, body, authorization)
    return status, text
