"""Scale-out for real: two uvicorn worker processes and a separate db_worker on PostgreSQL + Redis.

PostgreSQL and Redis are reached through cuttable TCP proxies, so the test can take each away
and bring it back without touching the machine's shared services.
"""

import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import aiohttp
import pytest

from tests.proxy import CuttableProxy, free_port

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "multi-process-pw-1"
OWN_PREFIXES = ("DATABASE_", "REDIS_", "OPENAI_", "AZURE_", "SEARCH_", "CHAT_", "RAGSITE_")


def _reachable(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), 2).close()
        return True
    except OSError:
        return False


def require_services():
    missing = [
        name for name, port in (("PostgreSQL", 5432), ("Redis", 6379)) if not _reachable(port)
    ]
    if missing:
        reason = f"service unavailable: {' and '.join(missing)} on 127.0.0.1"
        if os.environ.get("CI") == "true":
            pytest.fail(reason + " (CI must have both)")
        pytest.skip(reason)


def _admin_sql(sql: str) -> None:
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        conn.execute(sql)


pytestmark = pytest.mark.own_configuration


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    require_services()
    database = f"ragsite_mp_{uuid.uuid4().hex[:10]}"
    _admin_sql(f'CREATE DATABASE "{database}"')
    pg = CuttableProxy(5432).__enter__()
    redis = CuttableProxy(6379).__enter__()
    env = {k: v for k, v in os.environ.items() if not k.startswith(OWN_PREFIXES)}
    env.update(
        DATABASE_URL=f"postgres://postgres@127.0.0.1:{pg.port}/{database}",
        DATABASE_POOL_TIMEOUT="2",
        REDIS_URL=f"redis://127.0.0.1:{redis.port}/13",
        DJANGO_SECRET_KEY="multi-process-test",
        RAGSITE_DATA_DIR=str(tmp_path_factory.mktemp("cluster")),
        CHAT_STREAM_DELAY_SECONDS="0.03",
        PYTHONUNBUFFERED="1",
    )
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "-v", "0"], cwd=ROOT, env=env, check=True, timeout=180)
    create_staff = (
        "from django.contrib.auth.models import User;"
        f"User.objects.create_superuser('boss', 'boss@example.com', '{PASSWORD}')"
    )
    subprocess.run([*manage, "shell", "-c", create_staff], cwd=ROOT, env=env, check=True)
    ports = [free_port(), free_port()]
    logs = Path(env["RAGSITE_DATA_DIR"])
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "ragsite.asgi:application", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=open(logs / f"web-{port}.log", "w"),
            stderr=subprocess.STDOUT,
        )
        for port in ports
    ]
    processes.append(
        subprocess.Popen(
            [*manage, "db_worker", "--queue-name", "*", "--interval", "0.2"],
            cwd=ROOT,
            env=env,
            stdout=open(logs / "worker.log", "w"),
            stderr=subprocess.STDOUT,
        )
    )
    try:
        deadline = time.monotonic() + 60
        while not all(_reachable(p) for p in ports):
            assert time.monotonic() < deadline, "the web workers did not start"
            assert all(p.poll() is None for p in processes), "a process died at start-up"
            time.sleep(0.2)
        yield {
            "urls": [f"http://127.0.0.1:{p}" for p in ports],
            "pg": pg,
            "redis": redis,
            "database": database,
            "processes": processes,
        }
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
        redis.__exit__()
        pg.__exit__()
        _admin_sql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def _token(html: str) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)


async def _login(session: aiohttp.ClientSession, base: str) -> None:
    page = await (await session.get(f"{base}/admin/login/")).text()
    response = await session.post(
        f"{base}/admin/login/?next=/admin/",
        data={"csrfmiddlewaretoken": _token(page), "username": "boss", "password": PASSWORD},
        allow_redirects=False,
    )
    assert response.status == 302, await response.text()


async def _add_document(session, base, title, body) -> int:
    page = await (await session.get(f"{base}/admin/knowledge/document/add/")).text()
    form = {
        "csrfmiddlewaretoken": _token(page),
        "title": title,
        "body": body,
        "published": "on",
        "source_url": "",
        "collection": "",
        "chunks-TOTAL_FORMS": "0",
        "chunks-INITIAL_FORMS": "0",
        "chunks-MIN_NUM_FORMS": "0",
        "chunks-MAX_NUM_FORMS": "1000",
    }
    return (await session.post(f"{base}/admin/knowledge/document/add/", data=form,
                               allow_redirects=False)).status  # fmt: skip


async def _ask(base, question, **extra) -> tuple[int, dict]:
    body = {"messages": [{"role": "user", "content": question}], **extra}
    async with aiohttp.ClientSession() as anonymous:
        response = await anonymous.post(f"{base}/chat", json=body)
        return response.status, await response.json(content_type=None)


async def _ws_until_completed(ws) -> list[dict]:
    events = []
    async with asyncio.timeout(20):
        while True:
            event = json.loads((await ws.receive()).data)
            events.append(event)
            if event.get("type") == "response.completed":
                return events


def test_edit_on_one_worker_is_indexed_and_streamed_to_both(cluster):
    asyncio.run(_edit_then_stream(cluster))


async def _edit_then_stream(cluster):
    web_a, web_b = cluster["urls"]
    # unsafe=True: aiohttp's jar otherwise ignores cookies set by an IP-address host
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as staff:
        await _login(staff, web_a)
        status = await _add_document(
            staff, web_a, "Rooftop garden", "The rooftop garden opens at 07:15 on weekdays."
        )
        assert status == 302
        # indexed by the separate task worker, cited by the other web worker
        deadline = time.monotonic() + 30
        while True:
            code, answer = await _ask(web_b, "When does the rooftop garden open?")
            if code == 200 and "[Rooftop garden]" in answer["output_text"]:
                break
            assert time.monotonic() < deadline, answer
            await asyncio.sleep(0.3)
        assert "07:15" in answer["output_text"]

        # one conversation open on both workers: the answer streams to both
        cookies = "; ".join(f"{c.key}={c.value}" for c in staff.cookie_jar)
        sockets = []
        for base in (web_a, web_b):
            sockets.append(
                await staff.ws_connect(
                    base.replace("http", "ws") + "/ws/chat/",
                    headers={"Origin": base, "Cookie": cookies},
                )
            )
        on_a, on_b = sockets
        await on_a.send_json({"type": "chat", **_q("When does the rooftop garden open?")})
        state = (await _ws_until_completed(on_a))[-1]["session_state"]
        await on_b.send_json({"type": "follow", "session_state": state})
        assert json.loads((await on_b.receive()).data)["type"] == "following"
        await on_a.send_json(
            {"type": "chat", "session_state": state, **_q("Is the rooftop garden open at 07:15?")}
        )
        from_a = await _ws_until_completed(on_a)
        from_b = await _ws_until_completed(on_b)
        text = "".join(e.get("delta", "") for e in from_a)
        assert "07:15" in text and "".join(e.get("delta", "") for e in from_b) == text
        for ws in sockets:
            await ws.close()


def _q(question):
    return {"messages": [{"role": "user", "content": question}]}


def test_outages_give_clear_errors_and_recover_without_loss(cluster):
    asyncio.run(_outages(cluster))


async def _outages(cluster):
    web_a, web_b = cluster["urls"]
    async with aiohttp.ClientSession() as session:
        # Redis away: chat still answers (mirroring is best effort); readiness says why.
        cluster["redis"].cut()
        code, answer = await _ask(web_b, "When does the rooftop garden open?")
        assert code == 200 and "07:15" in answer["output_text"]
        ready = await session.get(f"{web_b}/readyz")
        assert ready.status == 503 and not (await ready.json())["checks"]["redis"]["ok"]
        cluster["redis"].restore()
        await _eventually_ready(session, web_b)

        # PostgreSQL away: 503 with a JSON error, no crash, and back when it returns.
        cluster["pg"].cut()
        code, body = await _ask(web_a, "When does the rooftop garden open?")
        assert code == 503 and "database" in body["error"]
        ready = await session.get(f"{web_a}/readyz")
        assert ready.status == 503 and not (await ready.json())["checks"]["database"]["ok"]
        cluster["pg"].restore()
        await _eventually_ready(session, web_a)
        await _eventually_ready(session, web_b)
        code, answer = await _ask(web_a, "When does the rooftop garden open?")
        assert code == 200 and "07:15" in answer["output_text"]
    assert all(p.poll() is None for p in cluster["processes"]), "a process died"

    # nothing lost: every conversation turn that got an answer is stored with it
    import psycopg

    dsn = f"postgresql://postgres@127.0.0.1:5432/{cluster['database']}"
    with psycopg.connect(dsn) as conn:
        roles = conn.execute("SELECT role, count(*) FROM chat_message GROUP BY role").fetchall()
        docs = conn.execute(
            "SELECT index_status, count(*) FROM knowledge_document GROUP BY index_status"
        ).fetchall()
    counts = dict(roles)
    assert counts["assistant"] >= 4 and counts["user"] >= counts["assistant"]
    assert dict(docs) == {"indexed": 1}


async def _eventually_ready(session, base, seconds=20):
    deadline = time.monotonic() + seconds
    while True:
        response = await session.get(f"{base}/readyz")
        if response.status == 200:
            return
        assert time.monotonic() < deadline, await response.text()
        await asyncio.sleep(0.3)
