"""Open websockets hold only the rights their user has now: every turn re-checks the session and the
user, and a logout, a deactivation or a change of rights reaches open sockets through the channel
layer (closed with 4401, or the running answer stopped), in this process and in another one."""

import asyncio
import json
import logging
import os

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth.models import Group
from django.urls import reverse

from chat import revocation
from chat.consumers import CLOSE_UNAUTHENTICATED, RIGHTS_CHANGED
from tests.asgi_client import Client
from tests.chat_helpers import SECRET_FACT, ask, build_kb, ws_collect, ws_connect
from tests.uvicorn_server import launch, stop, wait_listening

pytestmark = pytest.mark.django_db(transaction=True)
SALARY = "What does L4 pay per year for vacation replacements?"
SECRET = SECRET_FACT.split(" pays")[0]  # "Band L4", in the passage and the answer


@pytest.fixture
def kb(transactional_db):
    return build_kb()


@pytest.fixture
def boss(kb, django_user_model):
    return django_user_model.objects.create_user("boss", password="pw-boss-1", is_staff=True)


@pytest.fixture
def hanna(kb, make_user):
    return make_user("hanna", "HR")


async def _logged_in(user, password=None) -> tuple[Client, str]:
    client = Client()
    if password:
        assert await sync_to_async(client.login)(username=user.username, password=password)
    else:
        await sync_to_async(client.force_login)(user)
    return client, f"sessionid={client.cookies['sessionid'].value}"


async def _socket(cookie):
    communicator, connected, _ = await ws_connect(cookie=cookie)
    assert connected
    return communicator


async def _turn(communicator, question=SALARY) -> str:
    """One chat turn; everything the socket received for it, as text."""
    await communicator.send_to(text_data=json.dumps({"type": "chat", **ask(question)}))
    return json.dumps(await ws_collect(communicator))


async def _closed_with(communicator) -> int:
    """Wait for the server to close the socket; its close code. (The timeout is a hang guard.)"""
    while True:
        message = await communicator.receive_output(timeout=5)
        if message["type"] == "websocket.close":
            return message.get("code")


async def _save(user, **fields):
    for name, value in fields.items():
        setattr(user, name, value)
    await sync_to_async(user.save)()


async def test_deactivated_staff_socket_is_closed_at_once(boss):
    _, cookie = await _logged_in(boss)
    communicator = await _socket(cookie)
    assert SECRET in await _turn(communicator)
    await _save(boss, is_staff=False, is_active=False)
    assert await _closed_with(communicator) == CLOSE_UNAUTHENTICATED


async def test_demoted_staff_gets_no_restricted_passage_on_the_next_turn(boss):
    _, cookie = await _logged_in(boss)
    communicator = await _socket(cookie)
    assert SECRET in await _turn(communicator)
    await _save(boss, is_staff=False)
    after = await _turn(communicator)
    assert SECRET not in after and "Salary bands" not in after
    await communicator.disconnect()


async def test_the_admins_user_form_deactivates_an_open_socket(boss, staff_user):
    _, cookie = await _logged_in(boss)
    communicator = await _socket(cookie)
    assert SECRET in await _turn(communicator)
    admin, _ = await _logged_in(staff_user)
    response = await sync_to_async(_change_user_in_admin)(admin, boss, is_active="", is_staff="")
    assert response.status_code == 302, response.content[:2000]
    assert await _closed_with(communicator) == CLOSE_UNAUTHENTICATED


def _change_user_in_admin(client, user, **changes):
    """Post the admin's user change form back as a browser would, with `changes` applied."""
    url = reverse("admin:auth_user_change", args=[user.pk])
    page = client.get(url)
    assert page.status_code == 200
    form = page.context["adminform"].form
    data = {}
    for name, field in form.fields.items():
        if field.disabled:
            continue
        value = form.initial.get(name)
        if hasattr(field, "fields"):  # split date and time
            for i, part in enumerate(field.widget.decompress(value)):
                data[f"{name}_{i}"] = "" if part is None else str(part)
        elif isinstance(value, bool):
            data[name] = "on" if value else ""
        elif isinstance(value, list | tuple):
            data[name] = [getattr(v, "pk", v) for v in value]
        else:
            data[name] = "" if value is None else value
    data.update(changes)
    return client.post(url, {k: v for k, v in data.items() if v != ""})


async def test_logout_over_http_closes_the_socket_of_that_session(hanna):
    client, cookie = await _logged_in(hanna, password="pw-hanna-1")
    communicator = await _socket(cookie)
    assert SECRET in await _turn(communicator)
    response = await sync_to_async(client.post)("/accounts/logout/")
    assert response.status_code == 302
    assert await _closed_with(communicator) == CLOSE_UNAUTHENTICATED


async def test_another_session_of_the_same_user_stays_open(hanna):
    leaving, _ = await _logged_in(hanna, password="pw-hanna-1")
    _, cookie = await _logged_in(hanna, password="pw-hanna-1")
    communicator = await _socket(cookie)
    await sync_to_async(leaving.post)("/accounts/logout/")
    assert SECRET in await _turn(communicator)
    await communicator.disconnect()


@pytest.mark.parametrize("how", ["user.groups.remove", "group.user_set.clear", "group.delete"])
async def test_a_group_taken_away_loses_its_documents_on_the_next_turn(hanna, how):
    _, cookie = await _logged_in(hanna)
    communicator = await _socket(cookie)
    assert SECRET in await _turn(communicator)
    hr = await Group.objects.aget(name="HR")
    change = {
        "user.groups.remove": lambda: hanna.groups.remove(hr),
        "group.user_set.clear": lambda: hr.user_set.clear(),
        "group.delete": lambda: hr.delete(),
    }[how]
    await sync_to_async(change)()
    after = await _turn(communicator)
    assert SECRET not in after and "Salary bands" not in after
    await communicator.disconnect()


async def test_a_password_changed_elsewhere_ends_the_session_on_its_next_turn(hanna):
    _, cookie = await _logged_in(hanna)
    communicator = await _socket(cookie)
    assert SECRET in await _turn(communicator)
    hanna.set_password("a-new-password-1")
    await sync_to_async(hanna.save)()
    assert await _closed_with(communicator) == CLOSE_UNAUTHENTICATED


async def test_a_deleted_user_socket_is_closed(boss):
    _, cookie = await _logged_in(boss)
    communicator = await _socket(cookie)
    await sync_to_async(boss.delete)()
    assert await _closed_with(communicator) == CLOSE_UNAUTHENTICATED


async def test_an_expired_session_ends_on_the_next_turn_without_any_signal(hanna):
    from django.contrib.sessions.models import Session
    from django.utils import timezone

    client, cookie = await _logged_in(hanna)
    communicator = await _socket(cookie)
    assert SECRET in await _turn(communicator)
    # a queryset update sends no signal: only the per-turn check can see it
    await Session.objects.filter(session_key=client.cookies["sessionid"].value).aupdate(
        expire_date=timezone.now()
    )
    await communicator.send_to(text_data=json.dumps({"type": "chat", **ask(SALARY)}))
    assert await _closed_with(communicator) == CLOSE_UNAUTHENTICATED


@pytest.mark.parametrize("change", ["demoted", "group removed"])
async def test_a_running_answer_stops_when_its_rights_go(boss, hanna, settings, change):
    settings.CHAT_STREAM_DELAY_SECONDS = 0.1
    user = boss if change == "demoted" else hanna
    _, cookie = await _logged_in(user)
    communicator = await _socket(cookie)
    await communicator.send_to(text_data=json.dumps({"type": "chat", **ask(SALARY)}))
    assert json.loads(await communicator.receive_from(timeout=5))["type"] == "response.context"
    if change == "demoted":
        await _save(boss, is_staff=False)
    else:
        await sync_to_async(hanna.groups.clear)()
    events = await ws_collect(communicator)
    assert {"error": RIGHTS_CHANGED} in events
    assert events[-1]["type"] == "response.completed" and events[-1]["cancelled"]
    await communicator.disconnect()


async def test_a_down_channel_layer_delays_the_change_only_briefly(
    boss, monkeypatch, caplog, settings
):
    class HangingLayer:
        async def group_send(self, group, message):
            await asyncio.Event().wait()

    monkeypatch.setattr(revocation, "get_channel_layer", lambda: HangingLayer())
    _, cookie = await _logged_in(boss)
    communicator = await _socket(cookie)
    with caplog.at_level(logging.WARNING, logger="chat.revocation"):
        # the hang guard: without the send timeout this save would never return
        await asyncio.wait_for(_save(boss, is_staff=False), 30)
    assert "could not tell open websockets" in caplog.text
    # the turn re-checks the database by itself
    after = await _turn(communicator)
    assert SECRET not in after
    await communicator.disconnect()


async def test_the_per_turn_check_is_one_query(boss, monkeypatch):
    from django.db.backends.utils import CursorWrapper

    client, _ = await _logged_in(boss)
    statements = []
    original = CursorWrapper.execute

    def counted(self, sql, params=None):
        statements.append(sql)
        return original(self, sql, params)

    monkeypatch.setattr(CursorWrapper, "execute", counted)
    user = await revocation.current_user(client.cookies["sessionid"].value, boss.pk)
    assert user is not None and user.pk == boss.pk
    assert len(statements) == 1, statements


# --- another process: the socket served by a real uvicorn, the change made here ---------------


def _database_url() -> str:
    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user, host, port = db.get("USER") or "postgres", db.get("HOST"), db.get("PORT") or 5432
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{user}{password}@{host}:{port}/{db['NAME']}"


@pytest.fixture
def other_process(kb, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "SEARCH_"))}
    env.update(
        DATABASE_URL=_database_url(),
        SEARCH_INDEX_PATH=str(settings.SEARCH_INDEX_PATH),
        RAGSITE_DATA_DIR=str(tmp_path / "other"),
        DJANGO_SECRET_KEY=settings.SECRET_KEY,
        CHAT_STREAM_DELAY_SECONDS="0",
        PYTHONUNBUFFERED="1",
    )
    log_path = tmp_path / "uvicorn.log"
    process, port = launch(env, log_path)
    try:
        wait_listening(process, port, log_path)
        yield f"127.0.0.1:{port}"
    finally:
        stop(process)


async def _remote_turn(ws) -> str:
    await ws.send(json.dumps({"type": "chat", **ask(SALARY)}))
    events = []
    async with asyncio.timeout(20):
        while True:
            events.append(json.loads(await ws.recv()))
            if events[-1].get("type") == "response.completed":
                return json.dumps(events)


async def test_changes_made_here_reach_a_socket_served_by_another_process(boss, other_process):
    """The per-turn check works across processes on any layer; with Redis (the scale-out pass)
    a logout here also closes the socket there without waiting for a turn."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    client, cookie = await _logged_in(boss, password="pw-boss-1")
    async with connect(
        f"ws://{other_process}/ws/chat/",
        origin=f"http://{other_process}",
        additional_headers={"Cookie": cookie},
    ) as ws:
        assert SECRET in await _remote_turn(ws)
        await _save(boss, is_staff=False)
        assert SECRET not in await _remote_turn(ws)
        await sync_to_async(client.post)("/accounts/logout/")
        with pytest.raises(ConnectionClosed) as closed:
            async with asyncio.timeout(10):
                if not settings.REDIS_URL:  # one process's layer: the next turn finds out
                    await ws.send(json.dumps({"type": "chat", **ask(SALARY)}))
                while True:
                    assert SECRET not in await ws.recv()
        assert closed.value.rcvd.code == CLOSE_UNAUTHENTICATED
