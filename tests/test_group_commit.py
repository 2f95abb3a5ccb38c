"""Group commit (ragsite/group_commit.py): concurrent writes share executor calls, each caller
gets its own result or error, and a cancelled caller's row is still written."""

import asyncio
import threading

import pytest

from ragsite.group_commit import GroupCommit


class Recorder:
    def __init__(self, delay=0.02, fail=False):
        self.calls: list[list] = []
        self.delay, self.fail = delay, fail
        self.threads = set()

    def __call__(self, items):
        self.threads.add(threading.current_thread().name)
        self.calls.append(list(items))
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
    write = Recorder(delay=0.1)
    commit = GroupCommit(write)
    first = asyncio.create_task(commit.submit(1))
    await asyncio.sleep(0.01)  # the first batch is being written
    second = asyncio.create_task(commit.submit(2))
    await asyncio.sleep(0.01)
    second.cancel()
    assert await first == 10
    await commit.close()
    assert [2] in write.calls


async def test_writes_right_after_a_batch_wait_to_share_the_next_and_a_pause_resets():
    write = Recorder(delay=0)
    commit = GroupCommit(write, linger=0.2)
    loop = asyncio.get_running_loop()
    assert await commit.submit(1) == 10  # after a pause: at once
    started = loop.time()
    tasks = []
    for i in range(2, 6):  # four writes within the linger
        tasks.append(asyncio.create_task(commit.submit(i)))
        await asyncio.sleep(0.01)
    assert await asyncio.gather(*tasks) == [20, 30, 40, 50]
    assert write.calls == [[1], [2, 3, 4, 5]]  # one batch, not four
    assert loop.time() - started >= 0.15
    await asyncio.sleep(0.25)  # a pause longer than the linger
    before = loop.time()
    assert await commit.submit(6) == 60
    assert loop.time() - before < 0.1 and write.calls[-1] == [6]


async def test_a_users_next_question_right_after_their_answer_does_not_wait():
    """One user chatting: the answer's write and the next question's come a moment apart, the
    chats seconds apart. That is not load: nothing lingers."""
    write = Recorder(delay=0)
    commit = GroupCommit(write, linger=0.08)
    loop = asyncio.get_running_loop()
    await commit.submit(1)  # the first question
    for _ in range(3):
        await asyncio.sleep(0.3)  # the answer streams
        await commit.submit(2)  # the answer
        before = loop.time()
        await commit.submit(1)  # the next question, at once
        assert loop.time() - before < 0.04
