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
print(create_key(User.objects.create_user("olga"), "live")[1])
"""
SALARY = {"messages": [{"role": "user", "content": "What does band L4 pay per year?"}]}


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
        yield port, {"hr": keys[-2], "outsider": keys[-1]}
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
