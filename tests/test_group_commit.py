"""Group commit (ragsite/group_commit.py): concurrent writes share executor calls, each caller
gets its own result or error, and a cancelled caller's row is still written."""

import asyncio
import threading

import pytest

from ragsite import group_commit
from ragsite.group_commit import GroupCommit


class Recorder:
    def __init__(self, delay=0.02, fail=False, gate: threading.Event | None = None):
        self.calls: list[list] = []
        self.delay, self.fail, self.gate = delay, fail, gate
        self.threads = set()
        self.writing = threading.Event()

    def __call__(self, items):
        self.threads.add(threading.current_thread().name)
        self.calls.append(list(items))
        self.writing.set()
        if self.gate is not None:  # the database takes until the test says
            assert self.gate.wait(30), "the test never let the write finish"
        threading.Event().wait(self.delay)  # the database takes a while
        if self.fail:
            raise ConnectionError("database down")
        return [ValueError(f"bad {i}") if i < 0 else i * 10 for i in items]


async def test_concurrent_writes_are_batched_and_answered_in_order():
    write = Recorder()
    commit = GroupCommit(write)
    results = await asyncio.gather(*(commit.submit(i) for i in range(1, 51)))
    assert results == [i * 10 for i in range(1, 51)]
    assert len(write.calls) < 10  # 50 writes, a few executor calls
    assert sorted(i for call in write.calls for i in call) == list(range(1, 51))
    assert write.threads and all(name.startswith("group-commit") for name in write.threads)


async def test_a_lone_write_goes_at_once():
    write = Recorder(delay=0)
    assert await GroupCommit(write).submit(7) == 70
    assert write.calls == [[7]]


async def test_one_items_error_is_its_own():
    commit = GroupCommit(Recorder())
    results = await asyncio.gather(
        commit.submit(1), commit.submit(-1), commit.submit(2), return_exceptions=True
    )
    assert results[0] == 10 and results[2] == 20
    assert isinstance(results[1], ValueError)


async def test_a_database_failure_fails_every_item_of_the_batch():
    commit = GroupCommit(Recorder(fail=True))
    results = await asyncio.gather(*(commit.submit(i) for i in range(3)), return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results)
    with pytest.raises(ConnectionError):  # the next write is tried again, not stuck
        await commit.submit(4)


async def test_a_cancelled_caller_still_has_its_row_written():
    write = Recorder(delay=0, gate=threading.Event())
    commit = GroupCommit(write)
    first = asyncio.create_task(commit.submit(1))
    assert await asyncio.to_thread(write.writing.wait, 30)  # the first batch is being written
    second = asyncio.create_task(commit.submit(2))
    await asyncio.sleep(0)  # queued behind it
    second.cancel()
    write.gate.set()
    assert await first == 10
    await commit.close()
    assert write.calls == [[1], [2]]
    assert second.cancelled()


class Lingers:
    """Stands in for asyncio in ragsite.group_commit and records each wait of the writer."""

    def __init__(self, real=True, meanwhile=None):
        self.waits: list[float] = []
        self.real, self.meanwhile = real, meanwhile

    def __getattr__(self, name):
        return getattr(asyncio, name)

    async def sleep(self, seconds):
        self.waits.append(seconds)
        if self.meanwhile is not None:  # what arrives while the writer waits
            self.meanwhile()
        await asyncio.sleep(seconds if self.real else 0)


async def test_writes_during_the_linger_share_one_batch(monkeypatch):
    write = Recorder(delay=0)
    commit = GroupCommit(write, linger=5)  # never really waited out: see Lingers(real=False)
    tasks = []

    def arrive():
        tasks.extend(asyncio.create_task(commit.submit(i)) for i in range(3, 6))

    lingers = Lingers(real=False, meanwhile=arrive)
    monkeypatch.setattr(group_commit, "asyncio", lingers)
    assert await commit.submit(1) == 10  # after a pause: at once
    assert lingers.waits == []
    second = asyncio.create_task(commit.submit(2))  # right after a batch: under load
    assert await second == 20
    assert await asyncio.gather(*tasks) == [30, 40, 50]
    assert write.calls == [[1], [2, 3, 4, 5]]  # one batch, not four
    assert len(lingers.waits) == 1 and 0 < lingers.waits[0] <= 5


async def test_a_pause_longer_than_the_linger_writes_at_once(monkeypatch):
    write = Recorder(delay=0)
    commit = GroupCommit(write, linger=0.05)
    lingers = Lingers()
    monkeypatch.setattr(group_commit, "asyncio", lingers)
    await commit.submit(1)
    await commit.submit(2)  # right after a batch: this one lingers
    assert len(lingers.waits) == 1
    await asyncio.sleep(0.2)  # a pause of four lingers (a sleep lasts at least that long)
    assert await commit.submit(6) == 60
    assert len(lingers.waits) == 1 and write.calls[-1] == [6]


async def test_a_users_next_question_right_after_their_answer_does_not_wait(monkeypatch):
    """One user chatting: the answer's write and the next question's come a moment apart, the
    chats seconds apart. That is not load: nothing lingers."""
    write = Recorder(delay=0)
    commit = GroupCommit(write, linger=0.08)
    lingers = Lingers()
    monkeypatch.setattr(group_commit, "asyncio", lingers)
    await commit.submit(1)  # the first question
    for _ in range(3):
        await asyncio.sleep(0.3)  # the answer streams
        await commit.submit(2)  # the answer
        await commit.submit(1)  # the next question, at once
    assert lingers.waits == []
    assert write.calls == [[1], *[[2], [1]] * 3]
