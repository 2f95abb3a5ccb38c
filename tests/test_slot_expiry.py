"""A stream slot that is never released (a crashed process, a bug) frees itself after
CHAT_STREAM_SLOT_TTL_SECONDS, in memory and in Redis, so a leak cannot lock a caller out for good.
The limits' clock is replaced: no real minutes go by."""

import pytest

from chat.limits import Caller, LimitExceeded, admit, chat_limits

IP = "10.66.0.1"


class Clock:
    def __init__(self):
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def limits(settings):
    settings.CHAT_MAX_CONCURRENT_STREAMS = 2
    settings.CHAT_STREAM_SLOT_TTL_SECONDS = 600
    settings.CHAT_RATE_LIMIT = settings.CHAT_RATE_LIMIT_PER_IP = None  # slots only
    checker = chat_limits.get()
    if checker.redis is not None:  # the scale-out pass: Redis keeps counts across tests
        await checker.redis.delete(f"ragsite:streams:ip:{IP}")
    checker.clock = Clock()
    return checker


async def _open(checker) -> int:
    return await checker.open_streams(Caller(None, IP))


async def test_a_leaked_slot_expires(limits):
    leaked = [await admit(None, IP), await admit(None, IP)]  # never released
    with pytest.raises(LimitExceeded):
        await admit(None, IP)
    limits.clock.now += 599
    with pytest.raises(LimitExceeded):  # not before its time
        await admit(None, IP)
    limits.clock.now += 2
    slot = await admit(None, IP)
    assert await _open(limits) == 1
    await slot.release()
    assert await _open(limits) == 0
    assert len(leaked) == 2


async def test_the_expiry_is_a_setting(limits, settings):
    settings.CHAT_STREAM_SLOT_TTL_SECONDS = 5
    await admit(None, IP)
    await admit(None, IP)
    with pytest.raises(LimitExceeded):
        await admit(None, IP)
    limits.clock.now += 6
    await admit(None, IP)
    assert await _open(limits) == 1


async def test_a_released_slot_frees_at_once_and_only_once(limits):
    first, second = await admit(None, IP), await admit(None, IP)
    await first.release()
    await first.release()  # a second release frees nothing more
    assert await _open(limits) == 1
    third = await admit(None, IP)
    assert await _open(limits) == 2
    for slot in (second, third):
        await slot.release()
    assert await _open(limits) == 0
    if limits.redis is None:
        assert limits.streams == {}  # nothing kept for a caller with no slot
