"""Which pages may open the chat websocket: the same origin as the request (scheme, host and port)
or one of DJANGO_CSRF_TRUSTED_ORIGINS; and refused clients (a foreign origin, or anonymous with
CHAT_ALLOW_ANONYMOUS off) that leave at once leave no error in a real server's log, even with the
channel layer down."""

import asyncio
import os

import pytest
from channels.testing.websocket import WebsocketCommunicator

from tests.proxy import free_port
from tests.uvicorn_server import launch, wait_listening

pytestmark = pytest.mark.django_db(transaction=True)


async def _opens(origin: str | None, host="127.0.0.1:8000", scheme="ws", extra=()) -> bool:
    from ragsite.asgi import application

    headers = [(b"host", host.encode()), *extra]
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    communicator = WebsocketCommunicator(application, "/ws/chat/", headers=headers)
    communicator.scope["scheme"] = scheme
    connected, _ = await communicator.connect(timeout=5)
    if connected:
        await communicator.disconnect()
    return connected


@pytest.mark.parametrize(
    "origin",
    ["http://127.0.0.1:8000", "HTTP://127.0.0.1:8000", "http://127.0.0.1:8000/"],
)
async def test_the_same_origin_is_accepted(origin):
    assert await _opens(origin)


@pytest.mark.parametrize(
    "origin",
    [
        "http://127.0.0.1:9999",  # another port: another site
        "http://127.0.0.1",  # port 80
        "https://127.0.0.1:8000",  # another scheme
        "http://localhost:8000",  # an allowed host, but not the one asked
        "https://evil.example",
        "null",
        "",
        "http://127.0.0.1:8000@evil.example",
        "http://user@127.0.0.1:8000",
        "http://127.0.0.1:99999",
        "ws://127.0.0.1:8000",
    ],
)
async def test_other_origins_are_refused(origin):
    assert not await _opens(origin)


async def test_no_origin_is_refused():
    assert not await _opens(None)


async def test_a_host_not_served_is_refused_even_from_its_own_origin():
    assert not await _opens("http://evil.example:8000", host="evil.example:8000")


async def test_default_ports_are_the_same_origin():
    assert await _opens("http://127.0.0.1", host="127.0.0.1:80")
    assert await _opens("https://localhost", host="localhost", scheme="wss")
    assert not await _opens("http://localhost", host="localhost", scheme="wss")


async def test_https_behind_a_proxy_as_the_settings_trust_it(settings):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    proto = ((b"x-forwarded-proto", b"https"),)
    assert await _opens("https://localhost", host="localhost", extra=proto)
    assert not await _opens("http://localhost", host="localhost", extra=proto)
    settings.SECURE_PROXY_SSL_HEADER = None
    assert not await _opens("https://localhost", host="localhost", extra=proto)


async def test_trusted_origins_with_their_port(settings):
    settings.CSRF_TRUSTED_ORIGINS = ["https://chat.example.com", "https://*.corp.example:8443"]
    # behind a proxy that passes its own upstream address as the Host
    assert await _opens("https://chat.example.com")
    assert await _opens("https://chat.example.com:443")
    assert not await _opens("https://chat.example.com:8443")
    assert not await _opens("http://chat.example.com")
    assert await _opens("https://a.corp.example:8443")
    assert await _opens("https://corp.example:8443")
    assert not await _opens("https://a.corp.example")
    assert not await _opens("https://corp.example.evil:8443")


async def test_a_refused_handshake_is_a_403_without_a_consumer(settings):
    """Refused before the consumer: nothing of the chat runs for a foreign page."""
    from ragsite.asgi import application

    communicator = WebsocketCommunicator(
        application,
        "/ws/chat/",
        headers=[(b"host", b"127.0.0.1:8000"), (b"origin", b"http://127.0.0.1:9999")],
    )
    connected, code = await communicator.connect(timeout=5)
    assert not connected
    await communicator.wait(timeout=5)  # the application has returned


# --- a real server: refused clients that leave at once -----------------------------------------


@pytest.fixture
def live(tmp_path, request):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "CHAT_"))}
    env.update(
        RAGSITE_DATA_DIR=str(tmp_path),
        DJANGO_SECRET_KEY="origin-test",
        CHAT_ALLOW_ANONYMOUS="false",
        PYTHONUNBUFFERED="1",  # no migrations needed: refusals without a cookie read no table
        GC_TUNING="false",  # an unretrieved task exception is logged when the task is collected
        # A channel layer that is down (nothing listens there): a refusal must not need it.
        REDIS_URL=f"redis://127.0.0.1:{free_port()}/0",
    )
    log_path = tmp_path / "uvicorn.log"
    process, port = launch(env, log_path)
    try:
        wait_listening(process, port, log_path)

        def stopped() -> str:
            """Stop the server gracefully (every connection finished); its whole log."""
            process.terminate()
            process.wait(15)
            return log_path.read_text()

        yield port, stopped
    finally:
        if process.poll() is None:
            process.kill()


async def _handshake_and_leave(port: int, origin: str, pause: float, reset: bool) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        (
            f"GET /ws/chat/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            f"Sec-WebSocket-Version: 13\r\nOrigin: {origin}\r\n\r\n"
        ).encode()
    )
    await writer.drain()
    answer = b""
    if pause:
        await asyncio.sleep(pause)
    else:
        answer = await reader.read(12)
    if reset:
        writer.transport.abort()
    else:
        writer.close()
    return answer


async def test_refused_clients_that_leave_at_once_leave_no_error_in_the_log(live):
    port, stopped = live
    foreign, own = "http://127.0.0.1:9999", f"http://127.0.0.1:{port}"
    answers = await asyncio.gather(
        *[
            _handshake_and_leave(port, origin, pause, reset)
            for origin in (foreign, own)  # own: refused as anonymous (CHAT_ALLOW_ANONYMOUS off)
            for pause in (0, 0.001, 0.01)
            for reset in (False, True)
            for _ in range(3)
        ]
    )
    assert all(a.startswith(b"HTTP/1.1 403") for a in answers if a)
    log = stopped()
    for sign in ("Traceback", "never retrieved", "ERROR", "Exception"):
        assert sign not in log, log
    assert log.count("403") >= 18
