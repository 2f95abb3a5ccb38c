"""Cancel and disconnect stop the answer at once (checked at the answerer), keep the partial
answer marked interrupted, and leave no task running."""

import asyncio
import json

import pytest

from chat.llm.local import LocalAnswerer
from chat.models import Message
from tests.chat_helpers import (
    ask,
    build_kb,
    eventually,
    leave_after_lines,
    ws_collect,
    ws_connect,
)

pytestmark = pytest.mark.django_db(transaction=True)
QUESTION = "How many unused vacation days can I carry over?"
# Between the offline answerer's deltas: a cancel or disconnect after the first delta comes long
# before the answer could end on its own, however slow the machine. (A stopped answer ends at
# once; it never waits out this pause.)
SLOW = 2.0
FAST = 0.01
GUARD = 30  # seconds; only against hanging: `finished` says whether the answer was stopped


@pytest.fixture
def kb(transactional_db, settings):
    settings.CHAT_STREAM_DELAY_SECONDS = SLOW
    return build_kb()


@pytest.fixture
def watched(monkeypatch):
    """Records when the answerer's stream is closed and how many deltas it produced."""
    record = {"closed": asyncio.Event(), "produced": 0, "finished": False}
    original = LocalAnswerer.stream_answer

    async def stream_answer(self, *args, **kwargs):  # wraps the offline answerer's stream
        try:
            async for chunk in original(self, *args, **kwargs):
                record["produced"] += 1
                yield chunk
            record["finished"] = True
        finally:
            record["closed"].set()

    monkeypatch.setattr(LocalAnswerer, "stream_answer", stream_answer)
    return record


def _answer_tasks():
    """Running tasks of ours (the consumer's answer task, the pipeline), not the harness's."""
    return [
        t
        for t in asyncio.all_tasks()
        if not t.done()
        and t is not asyncio.current_task()
        and any(n in repr(t.get_coro()) for n in ("_answer", "stream", "chat"))
    ]


async def _last_answer():
    return await Message.objects.filter(role="assistant").alast()


async def test_websocket_cancel_stops_the_answer_and_keeps_the_partial(kb, watched, settings):
    communicator, connected, _ = await ws_connect()
    await communicator.send_to(text_data=json.dumps({"type": "chat", **ask(QUESTION)}))
    context = json.loads(await communicator.receive_from(timeout=5))
    first = json.loads(await communicator.receive_from(timeout=5))
    assert context["type"] == "response.context" and first["type"].endswith("delta")
    await communicator.send_to(text_data=json.dumps({"type": "cancel"}))
    events = await ws_collect(communicator, seconds=5)
    completed = events[-1]
    assert completed == {
        "type": "response.completed",
        "session_state": context["session_state"],
        "cancelled": True,
    }
    await asyncio.wait_for(watched["closed"].wait(), GUARD)
    assert not watched["finished"]
    received = first["delta"] + "".join(e.get("delta", "") for e in events)
    saved = await _last_answer()
    assert saved.interrupted and saved.content == received and received
    await eventually(lambda: _answer_tasks() == [], what="the answer's tasks ending")
    # the socket still works after a cancel
    settings.CHAT_STREAM_DELAY_SECONDS = FAST
    await communicator.send_to(text_data=json.dumps({"type": "chat", **ask(QUESTION)}))
    assert (await ws_collect(communicator))[-1]["type"] == "response.completed"
    await communicator.disconnect()


async def test_one_answer_at_a_time_per_socket(kb, watched, settings):
    settings.CHAT_STREAM_DELAY_SECONDS = FAST
    communicator, _, _ = await ws_connect()
    await communicator.send_to(text_data=json.dumps({"type": "chat", **ask(QUESTION)}))
    await communicator.send_to(text_data=json.dumps({"type": "chat", **ask("other question")}))
    events = await ws_collect(communicator)
    errors = [e for e in events if "error" in e]
    assert len(errors) == 1 and "already running" in errors[0]["error"]
    assert watched["finished"] and "cancelled" not in events[-1]
    assert not (await _last_answer()).interrupted
    await communicator.disconnect()


async def test_websocket_disconnect_stops_the_answer(kb, watched):
    communicator, _, _ = await ws_connect()
    await communicator.send_to(text_data=json.dumps({"type": "chat", **ask(QUESTION)}))
    await communicator.receive_from(timeout=5)
    await communicator.receive_from(timeout=5)
    await communicator.disconnect()
    await asyncio.wait_for(watched["closed"].wait(), GUARD)
    assert not watched["finished"]
    saved = await eventually(_last_answer, what="the partial answer being saved")
    assert saved.interrupted and saved.content


async def test_http_disconnect_stops_the_stream(kb, watched):
    """Through the real ASGI app: the client goes away after the first delta."""
    await leave_after_lines(ask(QUESTION), lines=2)
    await asyncio.wait_for(watched["closed"].wait(), GUARD)
    assert not watched["finished"]
    saved = await _last_answer()
    assert saved is not None and saved.interrupted
