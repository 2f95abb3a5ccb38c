"""Faults survived: a flaky index during a storm of saves, a slow or broken LLM while other users
chat, and many clients cancelling at once, with nothing leaked afterwards."""

import asyncio
import gc
import json
import linecache
import random
import sqlite3
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.core.management import call_command
from django.db import connections

from knowledge.models import Chunk, Collection, Document, IndexStatus
from knowledge.search.base import SearchBackendError
from knowledge.search.embedded import EmbeddedSearchBackend
from tests.asgi_client import AsyncClient
from tests.chat_helpers import ask, build_kb, eventually, stream_events, ws_collect, ws_connect
from tests.fakes import hang, rate_limit, server_error
from tests.test_chat_cancel import _answer_tasks
from tests.test_llm import configure

pytestmark = pytest.mark.django_db(transaction=True)
SAVES = 1000
FAILURE_RATE = 0.3


def test_flaky_index_during_a_thousand_saves_loses_nothing(settings, monkeypatch, run_worker):
    """Every save succeeds while 30 % of index calls fail; afterwards sync_index leaves every
    document indexed with its latest content, no chunk lost, stale or duplicated."""
    settings.INDEX_SYNC_ATTEMPTS = 1
    chance = random.Random(7)
    real_run = EmbeddedSearchBackend._run
    injected = {"failures": 0, "calls": 0}

    def flaky(self, fn, *args):
        injected["calls"] += 1
        if chance.random() < FAILURE_RATE:
            injected["failures"] += 1
            raise SearchBackendError("injected index failure")
        return real_run(self, fn, *args)

    monkeypatch.setattr(EmbeddedSearchBackend, "_run", flaky)
    coll = Collection.objects.create(name="Storm")
    latest: dict[int, str] = {}
    docs: list[Document] = []
    for i in range(SAVES):
        if docs and chance.random() < 0.6:  # edit an existing document
            doc = chance.choice(docs)
            doc.body = f"Revision {i} of document {doc.pk}: the locker code is {i * 7}."
        else:
            doc = Document(title=f"Doc {i}", collection=coll, body=f"First text {i}.")
            docs.append(doc)
        doc.save()  # never waits on, or fails because of, the index
        latest[doc.pk] = doc.body
        if i % 100 == 99:
            run_worker()
    run_worker()
    assert injected["failures"] > 50
    assert Document.objects.filter(index_status=IndexStatus.FAILED).exists()

    monkeypatch.setattr(EmbeddedSearchBackend, "_run", real_run)
    call_command("sync_index", verbosity=0)

    assert not Document.objects.exclude(index_status=IndexStatus.INDEXED).exists()
    index = sqlite3.connect(settings.SEARCH_INDEX_PATH)
    rows = index.execute(
        "SELECT c.document_id, c.ordinal, f.text FROM chunks c JOIN chunks_fts f "
        "ON f.rowid = c.rowid ORDER BY c.document_id, c.ordinal"
    ).fetchall()
    (fts_rows,) = index.execute("SELECT count(*) FROM chunks_fts").fetchone()
    index.close()
    in_index = {}
    for document_id, ordinal, text in rows:
        assert (document_id, ordinal) not in in_index, "duplicated chunk"
        in_index[(document_id, ordinal)] = text
    assert fts_rows == len(rows) == Chunk.objects.count()
    assert {d for d, _ in in_index} == set(latest), "lost documents"
    for pk, body in latest.items():
        assert in_index[(pk, 0)] == body, f"stale document {pk}"


@pytest.fixture
def kb(transactional_db):
    return build_kb()


async def test_a_hung_or_failing_llm_does_not_stall_other_users(kb, settings, fake_openai):
    configure(settings, fake_openai, "compatible")
    settings.LLM_READ_TIMEOUT = (
        60  # only against hanging: the hung answer ends when its user leaves
    )
    question = ask("How many unused vacation days can I carry over?")

    def person(n):  # each from their own address
        return AsyncClient(REMOTE_ADDR=f"10.0.0.{n}")

    # the first person's request meets a hang, the next two a 500 and a 429
    fake_openai.enqueue(hang(after=1), server_error(500), rate_limit(retry_after_ms=5000))
    hung = await person(0).post("/chat/stream", data=question, content_type="application/json")
    assert hung.status_code == 200 and hung.streaming
    (hung_upstream,) = await fake_openai.wait_for_requests_async(1, 30)
    outcomes = []
    for n in (1, 2):
        status, events, _ = await stream_events(person(n), question)
        outcomes.append((status, events[-1]["error"][:25]))
    assert outcomes == [(502, "The language model failed"), (429, "The language model is bus")]
    # eight others ask meanwhile, and are answered while the hung request still hangs
    healthy = await asyncio.gather(*(stream_events(person(n), question) for n in range(3, 11)))
    assert all(status == 200 and "error" not in events[-1] for status, events, _ in healthy)
    assert not hung_upstream.disconnected
    # its user gives up: the upstream request is closed with it
    await hung.disconnect()
    gone = await fake_openai.wait_for_disconnect_async(30, request=hung_upstream)
    assert gone.chunks_sent == 1


async def test_mass_cancel_closes_every_upstream_and_leaks_nothing(kb, settings, fake_openai):
    configure(settings, fake_openai, "compatible")
    # 60 chunks 0.5 s apart: a stream closed by a cancel is closed long before its end
    fake_openai.set_latency(ttft=0.0, chunks=60, chunk_interval=0.5)
    await _cancel_round(fake_openai, 20)  # warms the thread pools up
    before = {thread.ident for thread in threading.enumerate()}
    # Earlier tests may have left pools with a thread still busy: only more of it counts here.
    busy_before = {id(pool): _busy(pool) for pool in _thread_pools()}
    fake_openai.requests.clear()
    await _cancel_round(fake_openai, 20)
    # Pools may still grow towards their fixed bounds when more work overlaps in the second
    # round; what must not happen is a thread per chat outside a pool, or a pool thread left busy.
    pools = _thread_pools()
    pooled = {thread.ident for pool in pools for thread in pool._threads}
    added = [t.name for t in threading.enumerate() if t.ident not in before | pooled]
    assert added == [], f"threads outside any bounded pool: {added}"
    assert all(len(pool._threads) <= pool._max_workers for pool in pools)
    await eventually(
        lambda: all(_busy(pool) <= busy_before.get(id(pool), 0) for pool in pools),
        what="every pool thread the round used idle again",
    )
    assert _search_threads() <= SEARCH_POOL_SIZE
    assert _answer_tasks() == []
    open_db = [c for c in connections.all(initialized_only=True) if c.connection is not None]
    assert len(open_db) <= 1
    saved = [m async for m in _answers()]
    assert len(saved) == 40 and all(m.interrupted for m in saved)


SEARCH_POOL_SIZE = 2  # knowledge/search/embedded.py


def _thread_pools() -> list[ThreadPoolExecutor]:
    return [o for o in gc.get_objects() if isinstance(o, ThreadPoolExecutor) and o._threads]


def _busy(pool: ThreadPoolExecutor) -> int:
    """Work queued plus pool threads doing anything but waiting for their next item."""
    frames = sys._current_frames()
    return pool._work_queue.qsize() + sum(
        not _waiting_for_work(frames.get(thread.ident)) for thread in list(pool._threads)
    )


def _waiting_for_work(frame) -> bool:
    # an idle worker sits in ThreadPoolExecutor's _worker, on its queue's (C) get()
    if frame is None or frame.f_code.co_name != "_worker":
        return False
    return "work_queue.get" in linecache.getline(frame.f_code.co_filename, frame.f_lineno)


def _search_threads() -> int:
    return sum(thread.name.startswith("search") for thread in threading.enumerate())


async def _cancel_round(fake_openai, n):
    sockets = [(await ws_connect(address=f"10.0.1.{user}"))[0] for user in range(n)]
    for socket in sockets:
        await socket.send_to(text_data=json.dumps({"type": "chat", **ask("vacation days?")}))
    for socket in sockets:  # every answer is streaming
        await socket.receive_from(timeout=5)
        await socket.receive_from(timeout=5)
    for socket in sockets:
        await socket.send_to(text_data=json.dumps({"type": "cancel"}))
    for socket in sockets:
        assert (await ws_collect(socket))[-1]["cancelled"] is True
    await eventually(
        lambda: sum(r.disconnected for r in fake_openai.chat_requests) == n,
        seconds=30,
        what="every upstream stream closing",
    )
    assert all(r.chunks_sent < 60 for r in fake_openai.chat_requests)
    for socket in sockets:
        await socket.disconnect()
    await eventually(lambda: _answer_tasks() == [], what="the answers' tasks ending")


def _answers():
    from chat.models import Message

    return Message.objects.filter(role="assistant").aiterator()
