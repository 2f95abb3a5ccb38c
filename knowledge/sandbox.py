"""Run a function in a throwaway child process with a CPU-time, memory and wall-clock budget.

File parsers are the one place where a few hundred hostile bytes can cost minutes of CPU or
gigabytes of memory. Run in the server process, that stalls every other request and, inside a
database transaction, holds its locks. A child process with resource limits turns such a file
into an error for the one upload, and the server's own memory never grows with the parse.

Children are forked from a multiprocessing fork server, which preloads the parsing modules once:
a file costs a fork (tens of milliseconds), not a fresh interpreter, and a child killed by its
limits leaves nothing behind for the next file. As with every start method but "fork", a child
imports the parent's main script as `__mp_main__` (manage.py, uvicorn and gunicorn guard theirs
with `if __name__ == "__main__"`, as multiprocessing requires).
"""

from __future__ import annotations

import math
import multiprocessing
import os
import resource
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import cast

_context = multiprocessing.get_context("forkserver")
_preload_lock = threading.Lock()
_preloaded: set[str] = set()


@dataclass(frozen=True)
class Budget:
    cpu_seconds: float
    memory_mb: int
    timeout_seconds: float


class BudgetExceeded(Exception):
    """The child used up its CPU time (`kind` "cpu"), memory ("memory") or wall clock ("time")."""

    def __init__(self, kind: str):
        super().__init__(kind)
        self.kind = kind


class ChildFailed(Exception):
    """The child died without an answer (a crash in C code, the kernel's OOM killer, ...)."""


def run[T](
    func: Callable[..., T], *args: object, budget: Budget, preload: tuple[str, ...] = ()
) -> T:
    """Return func(*args) computed in a child process under `budget`.

    An exception that func raises is re-raised here when it can be pickled; budget overruns raise
    BudgetExceeded and a child that dies without answering raises ChildFailed. `preload` names
    modules the fork server imports once so that children need not (effective at first use).
    """
    _preload(func.__module__, *preload)
    receiver, sender = _context.Pipe(duplex=False)
    child = _context.Process(
        target=_child_main,
        args=(sender, func, args, budget.cpu_seconds, budget.memory_mb),
        daemon=True,
    )
    try:
        child.start()
        sender.close()
        ready = wait([receiver, child.sentinel], timeout=budget.timeout_seconds)
        if not ready:
            raise BudgetExceeded("time")
        try:
            outcome, value = (
                receiver.recv() if receiver in ready or receiver.poll() else (None, None)
            )
        except EOFError:  # died before (or while) answering
            outcome, value = None, None
    finally:
        receiver.close()
        sender.close()
        if child.pid is not None:
            if child.is_alive():
                child.kill()
            child.join()
    if outcome == "ok":
        return cast(T, value)  # what func returned, through the pipe
    if outcome == "raised" and isinstance(value, BaseException):
        raise value
    if outcome == "memory" or child.exitcode == _EXIT_OUT_OF_MEMORY:
        raise BudgetExceeded("memory")
    if child.exitcode in (-signal.SIGXCPU, -signal.SIGKILL):
        # SIGXCPU at the soft CPU limit, SIGKILL at the hard one a second later.
        raise BudgetExceeded("cpu")
    raise ChildFailed(f"exit code {child.exitcode}")


def _preload(*modules: str) -> None:
    # Only takes effect before the fork server starts; later modules are imported per child.
    with _preload_lock:
        if not _preloaded.issuperset(modules):
            _preloaded.update(modules)
            _context.set_forkserver_preload(sorted(_preloaded))


# A child that runs out of memory even while reporting it exits with this code.
_EXIT_OUT_OF_MEMORY = 75
# Freed when memory runs out, so that unwinding the parse and answering have room to allocate.
_RESERVE_BYTES = 4 * 1024 * 1024


def _child_main(
    sender: Connection,
    func: Callable[..., object],
    args: tuple[object, ...],
    cpu_seconds: float,
    memory_mb: int,
) -> None:
    _limit(cpu_seconds, memory_mb)
    reserve = bytearray(_RESERVE_BYTES)
    try:
        try:
            message = ("ok", func(*args))
        except MemoryError:
            del reserve
            message = ("memory", None)
        except Exception as exc:
            message = ("raised", exc)
        try:
            sender.send(message)
        except MemoryError:
            raise
        except Exception as exc:  # an exception or result that does not pickle
            sender.send(("raised", RuntimeError(f"unsendable result: {exc!r}")))
        sender.close()
    except MemoryError:
        os._exit(_EXIT_OUT_OF_MEMORY)


def _limit(cpu_seconds: float, memory_mb: int) -> None:
    # A killed child leaves no core file behind.
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    soft = max(1, math.ceil(cpu_seconds))
    _lower(resource.RLIMIT_CPU, soft, soft + 1)
    # The budget is what parsing may add to what the child already maps (interpreter, modules).
    limit = _address_space() + memory_mb * 1024 * 1024
    _lower(resource.RLIMIT_AS, limit, limit)


def _lower(kind: int, soft: int, hard: int) -> None:
    """Set a limit, never above one the process was already given (a container's, ulimit's)."""
    _, current_hard = resource.getrlimit(kind)
    if current_hard != resource.RLIM_INFINITY:
        soft, hard = min(soft, current_hard), min(hard, current_hard)
    resource.setrlimit(kind, (soft, hard))


def _address_space() -> int:
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[0]) * resource.getpagesize()
    except OSError:  # no /proc: RLIMIT_AS is not enforced there (macOS) anyway
        return 0
