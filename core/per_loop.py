"""Outbound clients built once per event loop and closed at shutdown.

Async network clients (AsyncOpenAI, azure aio clients) are bound to the loop that created them.
A web server runs one loop, so it builds each client exactly once; tests and commands that run
their own short loops get their own, and nothing is shared across loops by accident.
"""

import asyncio
import weakref
from collections.abc import Awaitable, Callable
from typing import Protocol


class Closable(Protocol):
    def close(self) -> Awaitable[object]: ...


class PerLoop[T]:
    def __init__(self, factory: Callable[[], T]) -> None:
        self._factory = factory
        self._instances: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, T] = (
            weakref.WeakKeyDictionary()
        )

    def get(self) -> T:
        loop = asyncio.get_running_loop()
        if loop not in self._instances:
            self._instances[loop] = self._factory()
        return self._instances[loop]

    async def close_all[C: Closable](self: "PerLoop[C]") -> None:
        """Close this loop's instance. Those of loops already closed are only dropped: their
        connections went with their loop, and closing them would schedule work on a dead loop.
        Those of other live loops stay for their own loop to close."""
        current = asyncio.get_running_loop()
        for loop, instance in list(self._instances.items()):
            if loop is current or loop.is_closed():
                del self._instances[loop]
                if loop is current:
                    await instance.close()
