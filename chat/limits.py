"""Abuse limits on chat: a moving-window rate per user (or per IP for anonymous callers) and per IP
overall, with the `limits` library (in memory on the embedded default, Redis when configured so
every worker process shares the counts), and a cap on concurrent streams per caller.
"""

import logging
import time
from dataclasses import dataclass

import limits
from django.conf import settings
from limits.aio.storage import MemoryStorage, RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter

from ragsite.per_loop import PerLoop

log = logging.getLogger(__name__)
SLOT_TTL_SECONDS = 600  # a crashed process's slots expire rather than block the caller forever


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
    def __init__(self):
        self.redis = None
        if settings.REDIS_URL:
            storage = RedisStorage(f"async+{settings.REDIS_URL}", implementation="redispy")
            import redis.asyncio

            self.redis = redis.asyncio.Redis.from_url(settings.REDIS_URL)
        else:
            storage = MemoryStorage()
        self.limiter = MovingWindowRateLimiter(storage)
        self.rate = limits.parse(settings.CHAT_RATE_LIMIT) if settings.CHAT_RATE_LIMIT else None
        self.ip_rate = (
            limits.parse(settings.CHAT_RATE_LIMIT_PER_IP)
            if settings.CHAT_RATE_LIMIT_PER_IP
            else None
        )
        self.streams: dict[str, int] = {}

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
        cap = settings.CHAT_MAX_CONCURRENT_STREAMS
        if not cap:
            return Slot(self, None)
        key = f"ragsite:streams:{caller.key}"
        if self.redis is not None:
            count = await self.redis.incr(key)
            await self.redis.expire(key, SLOT_TTL_SECONDS)
        else:
            count = self.streams[key] = self.streams.get(key, 0) + 1
        slot = Slot(self, key)
        if count > cap:
            await slot.release()
            raise LimitExceeded(
                f"You already have {cap} answers streaming. Wait for one to finish.", 5
            )
        return slot

    async def _release(self, key: str) -> None:
        if self.redis is not None:
            try:
                await self.redis.decr(key)
            except Exception as exc:  # Redis away: the key's TTL frees the slot later
                log.warning("could not release a stream slot: %r", exc)
        else:
            self.streams[key] = max(0, self.streams.get(key, 1) - 1)


class Slot:
    def __init__(self, owner: ChatLimits, key: str | None):
        self.owner = owner
        self.key = key

    async def release(self) -> None:
        key, self.key = self.key, None
        if key is not None:
            await self.owner._release(key)


chat_limits = PerLoop(lambda: ChatLimits())


async def admit(user, client_address: str | None) -> Slot:
    """Raise LimitExceeded, or return the stream slot the caller must release when done."""
    checker = chat_limits.get()
    caller = caller_for(user, client_address)
    try:
        await checker.check_rate(caller)
        return await checker.acquire_stream(caller)
    except LimitExceeded:
        raise
    except Exception as exc:  # the limit store is down: serve rather than refuse everyone
        log.warning("rate limit store unavailable, not limiting: %r", exc)
        return Slot(checker, None)
