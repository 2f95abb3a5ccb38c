"""Request bodies are bounded in size and time on a real uvicorn, before any handler buffers them.

The server runs as in production (`uvicorn ragsite.asgi:application`) with small limits, and its
TMPDIR points at a private folder, so the test can see whether a body was spooled to disk. The
client speaks raw HTTP over a socket, so it controls exactly how much of a body it sends.
"""

import asyncio
import http.client
import json
import os
import select
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.uvicorn_server import ROOT, launch, stop, wait_listening

# The caller's settings; EMBEDDINGS is the suite's own (tests/suite_env.py: none), so kept.
SETTINGS_PREFIXES = (
    "DJANGO_", "RAGSITE_", "DATABASE_", "REDIS_", "CHAT_", "SEARCH_", "INDEX_", "CHUNK_",
    "KNOWLEDGE_", "TOKEN_", "OPENAI_", "AZURE_", "LLM_", "EMBEDDING_", "HTTP_", "LOGIN_",
)  # fmt: skip
CHAT_LIMIT = 4096
PAGE_LIMIT = 64 * 1024
UPLOAD_PATH = "/admin/knowledge/document/add/"
HUGE = 1 << 30
WAIT = 15  # seconds a test waits for an answer that should come at once


def server_env(data_dir: Path, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(SETTINGS_PREFIXES)}
    env.update(RAGSITE_DATA_DIR=str(data_dir), OPENAI_HOST="local", PYTHONUNBUFFERED="1", **extra)
    return env


def start_uvicorn(env: dict, log_path: Path, setup: str = "") -> tuple[subprocess.Popen, int]:
    """Serve a fresh database, migrated (and `setup` run) while uvicorn starts; returns once the
    server answers."""
    process, port = launch(env, log_path)
    migrate = (
        "from django.core.management import call_command\ncall_command('migrate', verbosity=0)"
    )
    try:
        subprocess.run(
            [sys.executable, "manage.py", "shell", "-v", "0", "-c", f"{migrate}\n{setup}"],
            cwd=ROOT,
            env=env,
            check=True,
        )
        wait_listening(process, port, log_path)
        return process, port
    except BaseException:
        stop(process)
        raise


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("body-limits")
    spool = data_dir / "tmp"
    spool.mkdir()
    env = server_env(
        data_dir,
        TMPDIR=str(spool),
        CHAT_MAX_BODY_BYTES=str(CHAT_LIMIT),
        HTTP_MAX_BODY_BYTES=str(PAGE_LIMIT),
        KNOWLEDGE_MAX_UPLOAD_MB="1",
        HTTP_BODY_TIMEOUT_SECONDS="1",
        HTTP_UPLOAD_TIMEOUT_SECONDS="1",
        CHAT_STREAM_DELAY_SECONDS="0.3",  # an answer streams for longer than the body timeout
        CHAT_RATE_LIMIT="off",
        CHAT_RATE_LIMIT_PER_IP="off",
    )
    session_file = data_dir / "staff-session"
    # A staff user's session, as the admin's login would make it.
    staff_session = (
        "from django.contrib.auth.models import User\n"
        "from django.test import Client\n"
        "client = Client()\n"
        "client.force_login(User.objects.create(username='boss', is_staff=True))\n"
        f"open({str(session_file)!r}, 'w').write(client.cookies['sessionid'].value)"
    )
    process, port = start_uvicorn(env, data_dir / "uvicorn.log", setup=staff_session)
    try:
        yield {
            "port": port,
            "pid": process.pid,
            "spool": spool,
            "staff_cookie": f"sessionid={session_file.read_text()}",
        }
    finally:
        stop(process)


def open_request(server, path: str, headers: dict[str, str]) -> socket.socket:
    """A connection that has sent a POST's headers and nothing of its body."""
    sock = socket.create_connection(("127.0.0.1", server["port"]), 5)
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    return sock


def read_response(sock: socket.socket) -> tuple[int, dict, bytes]:
    sock.settimeout(WAIT)
    response = http.client.HTTPResponse(sock)
    response.begin()
    body = response.read()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, body


def closed_by_server(sock: socket.socket) -> bool:
    sock.settimeout(WAIT)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def spooled_bytes(pid: int, spool: Path) -> int:
    """Bytes in the server's open files under its TMPDIR (unlinked temporary files included)."""
    total = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            if os.readlink(fd).startswith(str(spool)):
                total += fd.stat().st_size
        except OSError:  # closed meanwhile
            pass
    return total


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


PATHS = [
    ("/chat", "application/json"),
    ("/chat/stream", "application/json"),
    ("/chat/feedback", "application/x-www-form-urlencoded"),
    ("/accounts/login/", "application/x-www-form-urlencoded"),
    ("/admin/login/", "application/x-www-form-urlencoded"),
    (UPLOAD_PATH, "multipart/form-data; boundary=x"),
]


@pytest.mark.own_configuration
@pytest.mark.parametrize(("path", "content_type"), PATHS)
def test_an_oversized_declared_length_is_refused_before_the_body_is_sent(
    server, path, content_type
):
    sock = open_request(server, path, {"Content-Type": content_type, "Content-Length": str(HUGE)})
    with sock:
        status, headers, body = read_response(sock)
        assert status == 413
        if path.startswith("/chat"):
            assert "too large" in json.loads(body)["error"]
        else:
            assert headers["content-type"].startswith("text/plain") and b"too large" in body
        assert closed_by_server(sock)


@pytest.mark.own_configuration
def test_a_json_caller_gets_json_and_a_page_gets_text(server):
    headers = {"Content-Type": "application/json", "Content-Length": str(HUGE)}
    with open_request(server, "/accounts/login/", headers) as sock:
        status, _, body = read_response(sock)
    assert status == 413 and "error" in json.loads(body)


@pytest.mark.own_configuration
def test_only_staff_get_the_upload_limit(server):
    size = 3 * PAGE_LIMIT  # over the page limit, well under the upload limit
    with open_request(server, "/accounts/login/", {"Content-Length": str(size)}) as sock:
        assert read_response(sock)[0] == 413
    body = (
        b'--x\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n\r\n'
        + b"a" * size
        + b"\r\n--x--\r\n"
    )
    headers = {"Content-Type": "multipart/form-data; boundary=x", "Content-Length": str(len(body))}
    # Anyone else may not make the server store an upload's worth of bytes.
    with open_request(server, UPLOAD_PATH, headers) as sock:
        assert read_response(sock)[0] == 413
    with open_request(server, UPLOAD_PATH, {**headers, "Cookie": server["staff_cookie"]}) as sock:
        sock.sendall(body)
        status, _, _ = read_response(sock)
    assert status == 403  # the admin's own answer: this request carries no CSRF token


@pytest.mark.own_configuration
@pytest.mark.parametrize(
    ("path", "limit"),
    [("/chat", CHAT_LIMIT), ("/accounts/login/", PAGE_LIMIT), (UPLOAD_PATH, PAGE_LIMIT)],
)
def test_a_chunked_body_is_cut_off_at_the_limit_and_nothing_is_spooled(server, path, limit):
    """The client streams up to 128 MiB lazily and stops when the server answers or closes."""
    chunk = b"x" * (64 * 1024)
    frame = b"%x\r\n%s\r\n" % (len(chunk), chunk)
    rss_before = rss_bytes(server["pid"])
    sent = most_spooled = 0
    sock = open_request(
        server,
        path,
        {"Content-Type": "application/x-www-form-urlencoded", "Transfer-Encoding": "chunked"},
    )
    with sock:
        try:
            while sent < 128 * 1024 * 1024:
                if select.select([sock], [], [], 0)[0]:
                    break  # the server has answered (or closed)
                sock.sendall(frame)
                sent += len(chunk)
                if sent % (1024 * 1024) == 0:
                    most_spooled = max(most_spooled, spooled_bytes(server["pid"], server["spool"]))
        except (BrokenPipeError, ConnectionResetError):
            pass
        # What the kernel's socket buffers hold is all a client gets to send past the limit.
        assert sent < 24 * 1024 * 1024
        try:
            status, _, _ = read_response(sock)
        except ConnectionResetError:
            status = None  # the answer was lost to the reset of the unread rest: allowed
        assert status in (413, None)
    assert most_spooled == 0
    assert spooled_bytes(server["pid"], server["spool"]) == 0
    assert rss_bytes(server["pid"]) - rss_before < 32 * 1024 * 1024
    assert limit < sent  # it was the limit, not something else, that stopped the body


@pytest.mark.own_configuration
@pytest.mark.parametrize(
    ("path", "headers", "first_bytes"),
    [
        ("/chat/stream", {"Content-Type": "application/json", "Content-Length": "100"}, b'{"me'),
        ("/accounts/login/", {"Transfer-Encoding": "chunked"}, b"4\r\nuser\r\n"),
    ],
)
def test_a_stalled_body_is_answered_408(server, path, headers, first_bytes):
    with open_request(server, path, headers) as sock:
        sock.sendall(first_bytes)
        status, _, body = read_response(sock)
        assert status == 408 and b"in time" in body
        assert closed_by_server(sock)


@pytest.mark.own_configuration
def test_an_answer_streams_for_longer_than_the_body_timeout(server):
    """Once the body is in, the time limit is off: the handler's wait for the client to leave
    (the same `receive`) runs for as long as the answer streams."""
    payload = json.dumps({"messages": [{"role": "user", "content": "anything at all?"}]}).encode()
    headers = {"Content-Type": "application/json", "Content-Length": str(len(payload))}
    with open_request(server, "/chat/stream", headers) as sock:
        sock.sendall(payload)
        status, _, body = read_response(sock)
    assert status == 200, body
    events = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
    assert events[-1].get("type") != "error", events[-1]
    # The setup holds: CHAT_STREAM_DELAY_SECONDS after each delta outlasts the body timeout.
    deltas = [e for e in events if e.get("type") == "response.output_text.delta"]
    assert len(deltas) * 0.3 > 1


# The time limit's edges, in process: what the handler sees when the deadline passes.

CHUNK = {"type": "http.request", "body": b"ab", "more_body": True}
CHAT_SCOPE = {
    "type": "http",
    "http_version": "1.1",
    "method": "POST",
    "path": "/chat",
    "headers": [(b"transfer-encoding", b"chunked")],
}


async def test_a_handler_busy_between_two_reads_is_not_interrupted(settings):
    """Past the deadline, the handler's own work (Django writing a chunk to disk) runs to its
    end; its next read is the one that gets the 408."""
    from core.body_limit import BodyLimit

    settings.HTTP_BODY_TIMEOUT_SECONDS = 0.1
    sent, seen = [], []

    async def receive():
        return CHUNK

    async def send(message):
        sent.append(message)

    async def handler(scope, receive, send):
        seen.append(await receive())
        await asyncio.sleep(1)  # past the deadline and the clock's next tick
        seen.append(await receive())

    await BodyLimit(handler)(CHAT_SCOPE, receive, send)
    assert seen == [CHUNK, {"type": "http.disconnect"}]
    assert sent[0]["status"] == 408


async def test_a_server_shutdown_still_cancels_a_read(settings):
    from core.body_limit import BodyLimit

    settings.HTTP_BODY_TIMEOUT_SECONDS = 30
    waiting = asyncio.Event()

    async def receive():
        waiting.set()
        await asyncio.Event().wait()

    async def send(message):
        raise AssertionError(f"nothing may be sent: {message}")

    task = asyncio.create_task(BodyLimit(receive_only)(CHAT_SCOPE, receive, send))
    await waiting.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def receive_only(scope, receive, send):
    await receive()
