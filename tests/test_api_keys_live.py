"""API keys against a real uvicorn over real HTTP: the README's curl call and its Python websocket
client work with a key, and a bad key is a 401 with WWW-Authenticate, or a 4401 close."""

import asyncio
import json
import os
import subprocess
import sys

import pytest
import requests
import websockets

from tests.uvicorn_server import ROOT, launch, stop, wait_listening

SETUP = """
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from accounts.api_keys import create_key
from knowledge.models import Document
hr = Group.objects.create(name="HR")
secret = Document.objects.create(title="Salary bands", body="Band L4 pays 78,000 euros per year.")
secret.groups.add(hr)
Document.objects.create(title="Leave", body="Employees may carry over five vacation days.")
call_command("sync_index", verbosity=0)
hanna = User.objects.create_user("hanna")
hanna.groups.add(hr)
print(create_key(hanna, "live")[1])
print(create_key(User.objects.create_user("olga", password="pw-olga-1"), "live")[1])
"""
SALARY = {"messages": [{"role": "user", "content": "What does band L4 pay per year?"}]}


pytestmark = pytest.mark.own_configuration


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data = tmp_path_factory.mktemp("live-keys")
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "CHAT_", "REDIS_"))
    }
    env.update(
        RAGSITE_DATA_DIR=str(data),
        DJANGO_SECRET_KEY="live-keys",
        CHAT_STREAM_DELAY_SECONDS="0",
        PYTHONUNBUFFERED="1",
    )
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    keys = (
        subprocess.run(
            [*manage, "shell", "-c", SETUP], cwd=ROOT, env=env, check=True, capture_output=True
        )
        .stdout.decode()
        .split()
    )
    log_path = data / "uvicorn.log"
    process, port = launch(env, log_path)
    try:
        wait_listening(process, port, log_path)
        yield port, {"hr": keys[-2], "outsider": keys[-1], "env": env}
    finally:
        stop(process)


def _stream(port, key):
    response = requests.post(
        f"http://127.0.0.1:{port}/chat/stream",
        json=SALARY,
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    return response


async def _ask(port: int, key: str) -> str:
    """The README's websocket client."""
    headers = {"Authorization": f"Bearer {key}"}
    async with websockets.connect(
        f"ws://127.0.0.1:{port}/ws/chat/", additional_headers=headers
    ) as ws:
        await ws.send(json.dumps({"type": "chat", **SALARY}))
        answer = ""
        async for frame in ws:
            event = json.loads(frame)
            if "error" in event:
                raise RuntimeError(event["error"])
            answer += event.get("delta", "")
            if event["type"] == "response.completed":
                return answer
    return answer


def test_keys_over_real_http_and_a_real_websocket(server):
    port, keys = server
    response = _stream(port, keys["hr"])
    assert response.status_code == 200 and "78,000" in response.text
    response = _stream(port, keys["outsider"])
    assert response.status_code == 200 and "78,000" not in response.text
    assert "78,000" in asyncio.run(_ask(port, keys["hr"]))
    assert "78,000" not in asyncio.run(_ask(port, keys["outsider"]))


def test_a_bad_key_over_real_http_and_a_real_websocket(server):
    port, keys = server
    forged = keys["hr"][:-4] + "AAAA"
    response = _stream(port, forged)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith('Bearer error="invalid_token"')
    assert "78,000" not in response.text and "vacation" not in response.text
    with pytest.raises(websockets.ConnectionClosedError) as closed:
        asyncio.run(_ask(port, forged))
    assert closed.value.rcvd.code == 4401


async def _ask_with_ticket(port: int, ticket: str, origin: str, cookie: str = "") -> str:
    """The README's browser flow, as a page's script does it: the socket carries the ticket in
    its URL and the page's Origin (and the browser's cookies), no Authorization header."""
    async with websockets.connect(
        f"ws://127.0.0.1:{port}/ws/chat/?ticket={ticket}",
        origin=origin,
        additional_headers={"Cookie": cookie} if cookie else None,
    ) as ws:
        await ws.send(json.dumps({"type": "chat", **SALARY}))
        answer = ""
        async for frame in ws:
            event = json.loads(frame)
            answer += event.get("delta", "")
            if event["type"] == "response.completed":
                return answer
    return answer


def _ticket(port: int, key: str) -> requests.Response:
    return requests.post(
        f"http://127.0.0.1:{port}/accounts/socket-ticket/",
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )


def test_a_websocket_ticket_over_real_http_and_a_real_websocket(server):
    port, keys = server
    origin = f"http://127.0.0.1:{port}"
    response = _ticket(port, keys["hr"])
    assert response.status_code == 200
    ticket = response.json()["ticket"]
    assert "78,000" in asyncio.run(_ask_with_ticket(port, ticket, origin))
    # Used up: the same URL again is closed with 4401.
    with pytest.raises(websockets.ConnectionClosedError) as closed:
        asyncio.run(_ask_with_ticket(port, ticket, origin))
    assert closed.value.rcvd.code == 4401
    # Another user's ticket reads with that user's rights only.
    outsider = _ticket(port, keys["outsider"]).json()["ticket"]
    assert "78,000" not in asyncio.run(_ask_with_ticket(port, outsider, origin))
    # A forged one is closed too; a bad key buys none.
    with pytest.raises(websockets.ConnectionClosedError) as closed:
        asyncio.run(_ask_with_ticket(port, "rst_" + "A" * 43, origin))
    assert closed.value.rcvd.code == 4401
    assert _ticket(port, keys["hr"][:-4] + "AAAA").status_code == 401


def _signed_in_cookie(port: int, username: str, password: str) -> str:
    """A browser signed in on the login page: its session cookie."""
    browser = requests.Session()
    login = f"http://127.0.0.1:{port}/accounts/login/"
    browser.get(login, timeout=30)
    form = {"username": username, "password": password}
    form["csrfmiddlewaretoken"] = browser.cookies["csrftoken"]
    response = browser.post(login, data=form, headers={"Referer": login}, timeout=30)
    assert response.status_code == 200 and "sessionid" in browser.cookies
    return f"sessionid={browser.cookies['sessionid']}"


def test_expired_and_other_users_tickets_over_a_real_websocket(server):
    port, keys = server
    origin = f"http://127.0.0.1:{port}"
    # Olga signed in in this browser; a page hands her Hanna's ticket: refused.
    cookie = _signed_in_cookie(port, "olga", "pw-olga-1")
    hannas = _ticket(port, keys["hr"]).json()["ticket"]
    with pytest.raises(websockets.ConnectionClosedError) as closed:
        asyncio.run(_ask_with_ticket(port, hannas, origin, cookie))
    assert closed.value.rcvd.code == 4401
    # Expired: the server's own row, moved into the past by another process.
    ticket = _ticket(port, keys["hr"]).json()["ticket"]
    expire = (
        "from datetime import timedelta; from django.utils import timezone; "
        "from accounts.models import SocketTicket; "
        "SocketTicket.objects.update(expires_at=timezone.now() - timedelta(seconds=1))"
    )
    subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", expire], cwd=ROOT, env=keys["env"], check=True
    )
    with pytest.raises(websockets.ConnectionClosedError) as closed:
        asyncio.run(_ask_with_ticket(port, ticket, origin))
    assert closed.value.rcvd.code == 4401
