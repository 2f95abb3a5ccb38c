"""Group commit (core/group_commit.py): concurrent writes share executor calls, each caller
gets its own result or error, and a cancelled caller's row is still written."""

import asyncio
import threading

import pytest

from core import group_commit
from core.group_commit import GroupCommit


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


class LoopClock:
    """Stands in for asyncio in core.group_commit: the loop's clock there is the test's own,
    which moves only when the test moves it, and each wait of the writer is recorded and passes
    at once (after letting `meanwhile` submit what arrives during it)."""

    def __init__(self, meanwhile=None):
        self.now = 1000.0
        self.waits: list[float] = []
        self.meanwhile = meanwhile

    def __getattr__(self, name):
        return getattr(asyncio, name)

    def get_running_loop(self):
        return _ClockedLoop(asyncio.get_running_loop(), self)

    async def sleep(self, seconds):
        self.waits.append(seconds)
        if self.meanwhile is not None:
            self.meanwhile()
        self.now += seconds
        await asyncio.sleep(0)


class _ClockedLoop:
    def __init__(self, loop, clock):
        self._loop, self._clock = loop, clock

    def time(self):
        return self._clock.now

    def __getattr__(self, name):
        return getattr(self._loop, name)


async def test_writes_during_the_linger_share_one_batch(monkeypatch):
    write = Recorder(delay=0)
    commit = GroupCommit(write, linger=0.2)
    tasks = []

    def arrive():  # three more writes while the writer lingers
        tasks.extend(asyncio.create_task(commit.submit(i)) for i in range(3, 6))

    clock = LoopClock(meanwhile=arrive)
    monkeypatch.setattr(group_commit, "asyncio", clock)
    assert await commit.submit(1) == 10  # after a pause: at once
    assert clock.waits == []
    clock.now += 0.001  # the next write right after the batch: under load
    assert await commit.submit(2) == 20
    assert await asyncio.gather(*tasks) == [30, 40, 50]
    assert write.calls == [[1], [2, 3, 4, 5]]  # one batch, not four
    assert clock.waits == [pytest.approx(0.2 - 0.001)]  # the rest of the linger


async def test_under_load_a_write_waits_only_for_the_rest_of_the_linger(monkeypatch):
    write = Recorder(delay=0)
    commit = GroupCommit(write, linger=0.2)
    clock = LoopClock()
    monkeypatch.setattr(group_commit, "asyncio", clock)
    await asyncio.gather(*(commit.submit(i) for i in range(5)))  # load: five at once
    assert clock.waits == [] and write.calls == [[0, 1, 2, 3, 4]]
    clock.now += 0.25  # longer than the linger since that batch: at once
    assert await commit.submit(6) == 60
    assert clock.waits == [] and write.calls[-1] == [6]
    clock.now += 0.05  # sooner: it waits out the rest of the linger
    assert await commit.submit(7) == 70
    assert clock.waits == [pytest.approx(0.15)] and write.calls[-1] == [7]


async def test_a_users_next_question_right_after_their_answer_does_not_wait(monkeypatch):
    """One user chatting: the answer's write and the next question's come a moment apart, the
    chats seconds apart. That is not load: nothing lingers."""
    write = Recorder(delay=0)
    commit = GroupCommit(write, linger=0.08)
    clock = LoopClock()
    monkeypatch.setattr(group_commit, "asyncio", clock)
    await commit.submit(1)  # the first question
    for _ in range(3):
        clock.now += 3.0  # the answer streams
        await commit.submit(2)  # the answer
        clock.now += 0.001
        await commit.submit(1)  # the next question, at once
    assert clock.waits == []
    assert write.calls == [[1], *[[2], [1]] * 3]
