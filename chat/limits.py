"""Abuse limits on chat: a moving-window rate per user (or per IP for anonymous callers) and per IP
overall, with the `limits` library (in memory on the embedded default, Redis when configured so
every worker process shares the counts), and a cap on concurrent streams per caller.
"""

import asyncio
import logging
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import limits
from django.conf import settings
from limits.aio.storage import MemoryStorage, RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter

from core.per_loop import PerLoop

log = logging.getLogger(__name__)


class LimitExceeded(Exception):
    def __init__(self, message: str, retry_after: float):
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


@dataclass
class Caller:
    user_key: str | None  # "user:<pk>" for a logged-in user
    ip: str

    @property
    def key(self) -> str:
        return self.user_key or f"ip:{self.ip}"


def caller_for(user, client_address: str | None) -> Caller:
    user_key = f"user:{user.pk}" if user is not None and user.is_authenticated else None
    return Caller(user_key=user_key, ip=client_address or "unknown")


class ChatLimits:
    def __init__(self, clock: Callable[[], float] = time.time):
        self.clock = clock  # wall time: Redis shares slot deadlines between processes
        self.redis = None
        storage: RedisStorage | MemoryStorage
        if settings.REDIS_URL:
            storage = RedisStorage(f"async+{settings.REDIS_URL}", implementation="redispy")
            import redis.asyncio

            self.redis = redis.asyncio.Redis.from_url(settings.REDIS_URL)
            self._acquire_script = self.redis.register_script(_ACQUIRE)
        else:
            storage = MemoryStorage()
        self.limiter = MovingWindowRateLimiter(storage)
        self.rate = limits.parse(settings.CHAT_RATE_LIMIT) if settings.CHAT_RATE_LIMIT else None
        self.ip_rate = (
            limits.parse(settings.CHAT_RATE_LIMIT_PER_IP)
            if settings.CHAT_RATE_LIMIT_PER_IP
            else None
        )
        # Without Redis: per caller key, each open slot's token and the time it expires.
        self.streams: dict[str, dict[str, float]] = {}

    async def close(self) -> None:
        if self.redis is not None:
            await self.redis.aclose()

    async def check_rate(self, caller: Caller) -> None:
        checks = [(self.rate, "chat", caller.key)]
        if caller.user_key:
            checks.append((self.ip_rate, "chat-ip", caller.ip))
        for item, namespace, key in checks:
            if item is None:
                continue
            if not await self.limiter.hit(item, namespace, key):
                stats = await self.limiter.get_window_stats(item, namespace, key)
                wait = max(1.0, stats.reset_time - time.time())
                raise LimitExceeded(
                    f"Too many questions. Please wait {round(wait)} seconds and try again.", wait
                )

    async def acquire_stream(self, caller: Caller) -> "Slot":
        """One of the caller's stream slots, or LimitExceeded when all are taken. A slot that
        is never released (a crashed process, a bug) expires after the slot TTL on its own."""
        cap = settings.CHAT_MAX_CONCURRENT_STREAMS
        if not cap:
            return Slot(self, None, None)
        key = f"ragsite:streams:{caller.key}"
        token = uuid.uuid4().hex
        ttl = float(settings.CHAT_STREAM_SLOT_TTL_SECONDS)
        now = self.clock()
        if self.redis is not None:
            taken = await self._acquire_script(
                keys=[key], args=[now, now + ttl, cap, token, max(1, math.ceil(ttl * 1000))]
            )
        else:
            slots = self._live(key, now)
            taken = len(slots) < cap
            if taken:
                slots[token] = now + ttl
                self.streams[key] = slots
        if not taken:
            raise LimitExceeded(
                f"You already have {cap} answers streaming. Wait for one to finish.", 5
            )
        return Slot(self, key, token)

    def _live(self, key: str, now: float) -> dict[str, float]:
        slots = {t: deadline for t, deadline in self.streams.get(key, {}).items() if deadline > now}
        if slots:
            self.streams[key] = slots
        else:
            self.streams.pop(key, None)
        return slots

    async def open_streams(self, caller: Caller) -> int:
        """How many of the caller's slots are taken (and not expired)."""
        key = f"ragsite:streams:{caller.key}"
        now = self.clock()
        if self.redis is not None:
            return await self.redis.zcount(key, f"({now}", "+inf")
        return len(self._live(key, now))

    async def _release(self, key: str, token: str) -> None:
        if self.redis is not None:
            try:
                await self.redis.zrem(key, token)
            except Exception as exc:  # Redis away: the slot's deadline frees it later
                log.warning("could not release a stream slot: %r", exc)
        else:
            slots = self.streams.get(key)
            if slots is not None:
                slots.pop(token, None)
                if not slots:
                    del self.streams[key]


# Atomic in Redis: drop the caller's expired slots, refuse when the rest fill the cap, else take
# one until its deadline. The key itself lives as long as its latest slot.
_ACQUIRE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
    return 0
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
"""

# Releases still running after their caller was cancelled: the loop keeps only weak references.
_releasing: set[asyncio.Task] = set()


class Slot:
    """A caller's stream slot, and what the turn that holds it must close before it frees
    (anything with an async close(): the turn's upstream answer stream and answer row).
    `release()` may be called any number of times from any exit path; it runs once, and runs
    to the end even if its caller is cancelled meanwhile."""

    def __init__(self, owner: ChatLimits, key: str | None, token: str | None):
        self.owner = owner
        self.key = key
        self.token = token
        self.held: list = []
        self._release_task: asyncio.Task | None = None

    def hold(self, resource) -> None:
        self.held.append(resource)

    def release_soon(self) -> asyncio.Task:
        """Start the release (from a callback or a sync close(), on the loop's thread)."""
        if self._release_task is None:
            self._release_task = asyncio.ensure_future(self._release())
            _releasing.add(self._release_task)
            self._release_task.add_done_callback(_releasing.discard)
        return self._release_task

    async def release(self) -> None:
        await asyncio.shield(self.release_soon())

    async def _release(self) -> None:
        try:
            for resource in reversed(self.held):
                try:
                    await resource.close()
                except Exception:
                    log.exception("could not close %r", resource)
        finally:
            self.held.clear()  # the turn points back at its slot: no cycle left for the GC
            if self.key is not None and self.token is not None:
                await self.owner._release(self.key, self.token)


chat_limits = PerLoop(lambda: ChatLimits())


async def _admit(user, client_address: str | None) -> Slot:
    checker = chat_limits.get()
    caller = caller_for(user, client_address)
    try:
        await checker.check_rate(caller)
        return await checker.acquire_stream(caller)
    except LimitExceeded:
        raise
    except Exception as exc:  # the limit store is down: serve rather than refuse everyone
        log.warning("rate limit store unavailable, not limiting: %r", exc)
        return Slot(checker, None, None)


async def admit(user, client_address: str | None) -> Slot:
    """Raise LimitExceeded, or return the stream slot the caller must release when done.

    A caller cancelled while the slot is being taken (a client that left) does not leak it:
    the acquisition finishes on its own and the slot is released at once."""
    admitting = asyncio.ensure_future(_admit(user, client_address))
    try:
        return await asyncio.shield(admitting)
    except asyncio.CancelledError:
        admitting.add_done_callback(_release_unclaimed)
        raise


def _release_unclaimed(admitting: asyncio.Future) -> None:
    if not admitting.cancelled() and admitting.exception() is None:
        admitting.result().release_soon()
