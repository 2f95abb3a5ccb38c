"""Group commit: database writes of concurrent chats share one executor call and one transaction.

Every chat writes twice (its question before the stream, its answer after). One thread hop and
one transaction each cost more than the rows themselves, so writes that arrive while a batch is
being written wait for it and then go together. Under load (writes arriving on average less
than LINGER apart) a batch also starts no sooner than LINGER after the one before ended, so the
writes of those milliseconds share it: at 150 chats a second one write at a time cost about
0.25 ms of CPU each, mostly Django compiling the INSERT and SQLite committing, and batches of a
few halve that (bench/results/fixes.md). Otherwise nothing waits on a timer: a lone chat, or a
user's next question right after their last answer, writes at once.
"""

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import sync_to_async

from core.per_loop import PerLoop

# One thread for every batch: a batch keeps the database busy anyway (SQLite has one writer),
# and one warm thread costs far less in GIL hand-offs and wake-ups than a pool taking turns.
WRITER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="group-commit")
LINGER = 0.01  # seconds; what it adds to a write under load is invisible beside the LLM's wait


class GroupCommit[I, R]:
    """`write(items)` runs in the executor and returns one result (or exception) per item."""

    def __init__(
        self,
        write: Callable[[list[I]], list[R | Exception]],
        max_batch: int = 200,
        linger: float = LINGER,
    ) -> None:
        self.write = sync_to_async(write, thread_sensitive=False, executor=WRITER)
        self.max_batch = max_batch
        self.linger = linger
        self.ended = float("-inf")  # when the last batch was written (loop time)
        self.arrived: float | None = None  # when the last write was submitted
        self.gap: float | None = None  # moving average of the time between submissions
        self.pending: list[tuple[I, asyncio.Future[R | Exception]]] = []
        self.writer: asyncio.Task[None] | None = None

    def _note_arrival(self, now: float) -> None:
        if self.arrived is not None:
            gap = now - self.arrived
            self.gap = gap if self.gap is None else 0.8 * self.gap + 0.2 * gap
        self.arrived = now

    def _busy(self) -> bool:
        return self.gap is not None and self.gap < self.linger

    async def submit(self, item: I) -> R:
        loop = asyncio.get_running_loop()
        self._note_arrival(loop.time())
        future: asyncio.Future[R | Exception] = loop.create_future()
        self.pending.append((item, future))
        if self.writer is None:
            self.writer = asyncio.create_task(self._drain())
        # Shielded: a caller that is cancelled still gets its row written with the others.
        result = await asyncio.shield(future)
        if isinstance(result, Exception):
            raise result
        return result

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        batch: list[tuple[I, asyncio.Future[R | Exception]]] = []
        try:
            while self.pending:
                wait = self.ended + self.linger - loop.time()
                if wait > 0 and self._busy():
                    await asyncio.sleep(wait)
                batch = self.pending[: self.max_batch]
                del self.pending[: self.max_batch]
                results: list[R | Exception]
                try:
                    results = await self.write([item for item, _ in batch])
                except Exception as exc:  # the database itself failed: every item failed
                    results = [exc] * len(batch)
                self.ended = loop.time()
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)
                batch = []
        finally:
            self.writer = None
            # Only a cancelled writer (the loop shutting down) gets here with writes unanswered:
            # their callers are cancelled too rather than left waiting forever.
            for _, future in [*batch, *self.pending]:
                future.cancel()
            self.pending.clear()

    async def close(self) -> None:
        if self.writer is not None:
            await self.writer


def per_loop[I, R](
    write: Callable[[list[I]], list[R | Exception]], max_batch: int = 200
) -> PerLoop[GroupCommit[I, R]]:
    return PerLoop(lambda: GroupCommit(write, max_batch))
