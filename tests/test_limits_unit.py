"""The abuse limits one decision at a time, through their public functions: who counts as one
caller, the moving-window rates per caller and per IP, the cap on concurrent streams and the
slots that free it, and what happens when the limit store is away. The HTTP and websocket
answers (429, Retry-After, error frames) are in test_limits.py.

Each test runs on the in-memory store, and again on Redis where one is configured (REDIS_URL, or
TEST_REDIS_URL for this file alone); every caller is new, so tests running at the same time on
one Redis never share counts."""

import asyncio
import logging
import os
import socket
import time
import uuid
from urllib.parse import urlsplit

import pytest
from django.contrib.auth.models import AnonymousUser, User

from chat.limits import ChatLimits, LimitExceeded, admit, caller_for, chat_limits


def _reachable(url: str) -> bool:
    parts = urlsplit(url)
    try:
        socket.create_connection((parts.hostname, parts.port or 6379), 2).close()
    except OSError:
        return False
    return True


@pytest.fixture(params=["memory", "redis"])
async def store(request, settings):
    """Limits on the in-memory store or on Redis, with every limit off until a test sets one."""
    if request.param == "redis":
        url = settings.REDIS_URL or os.environ.get("TEST_REDIS_URL")
        if not url or not _reachable(url):
            pytest.skip("no Redis configured (REDIS_URL or TEST_REDIS_URL)")
        settings.REDIS_URL = url
    else:
        settings.REDIS_URL = None
    settings.CHAT_RATE_LIMIT = settings.CHAT_RATE_LIMIT_PER_IP = None
    settings.CHAT_MAX_CONCURRENT_STREAMS = 0
    # A callback or task that fails where nobody awaits it only reaches the loop's handler.
    loop, errors = asyncio.get_running_loop(), []
    loop.set_exception_handler(lambda _, context: errors.append(context))
    limits = ChatLimits()
    yield limits
    await limits.close()
    await settle()
    loop.set_exception_handler(None)
    assert errors == []


def new_ip() -> str:
    return f"test-{uuid.uuid4().hex}"


def new_user() -> User:
    return User(pk=uuid.uuid4().int % 10**12, username="someone")


def someone(ip: str | None = None):
    """A caller who is logged in, from the given (or a new) address."""
    return caller_for(new_user(), ip or new_ip())


def anonymous(ip: str | None = None):
    return caller_for(AnonymousUser(), ip or new_ip())


# Who is one caller


def test_a_logged_in_user_is_counted_by_account_and_an_anonymous_caller_by_address():
    user = User(pk=42, username="ann")
    ann = caller_for(user, "192.0.2.1")
    assert ann.key == "user:42"
    assert ann.ip == "192.0.2.1"
    assert caller_for(user, "198.51.100.7").key == "user:42"  # the same account elsewhere

    stranger = caller_for(AnonymousUser(), "192.0.2.1")
    assert stranger.key == "ip:192.0.2.1"
    assert stranger.user_key is None
    assert caller_for(None, "192.0.2.9").key == "ip:192.0.2.9"


def test_a_caller_without_an_address_is_still_one_caller():
    nowhere = caller_for(None, None)
    assert nowhere.ip == "unknown"
    assert nowhere.key == "ip:unknown"
    assert caller_for(AnonymousUser(), "").key == "ip:unknown"


# Rates


async def test_a_caller_has_the_configured_number_of_questions_per_window(store, settings):
    settings.CHAT_RATE_LIMIT = "3/minute"
    limits = ChatLimits()  # reads the rates when built
    caller = someone()
    started = time.time()
    await limits.check_rate(caller)
    first_counted = time.time()
    await asyncio.sleep(1)  # so that a wait counted from the refusal would be visibly longer
    await limits.check_rate(caller)
    await limits.check_rate(caller)
    refused_at = time.time()
    with pytest.raises(LimitExceeded) as refused:
        await limits.check_rate(caller)
    # The wait runs until the first question leaves the minute's window, however long this took.
    wait = refused.value.retry_after
    assert 60 - (time.time() - started) - 0.01 <= wait <= 60 - (refused_at - first_counted) + 0.01
    assert refused.value.message == (
        f"Too many questions. Please wait {round(wait)} seconds and try again."
    )
    assert str(refused.value) == refused.value.message
    await limits.check_rate(someone())  # everyone else keeps their own budget
    await limits.close()


async def test_anonymous_callers_share_a_budget_per_address(store, settings):
    settings.CHAT_RATE_LIMIT = "1/minute"
    limits = ChatLimits()
    ip = new_ip()
    await limits.check_rate(anonymous(ip))
    with pytest.raises(LimitExceeded):
        await limits.check_rate(anonymous(ip))
    await limits.check_rate(anonymous())
    await limits.close()


async def test_every_account_behind_one_address_counts_against_that_address(store, settings):
    settings.CHAT_RATE_LIMIT_PER_IP = "2/minute"  # no per-caller rate: only the address's
    limits = ChatLimits()
    ip = new_ip()
    started = time.time()
    await limits.check_rate(someone(ip))
    await limits.check_rate(someone(ip))
    with pytest.raises(LimitExceeded, match="Too many questions") as refused:
        await limits.check_rate(someone(ip))
    assert 60 - (time.time() - started) - 0.01 <= refused.value.retry_after <= 60.01
    await limits.check_rate(someone())  # another address
    await limits.close()


async def test_the_address_limit_applies_beside_the_callers_own(store, settings):
    settings.CHAT_RATE_LIMIT = "2/minute"
    settings.CHAT_RATE_LIMIT_PER_IP = "3/minute"
    limits = ChatLimits()
    ip = new_ip()
    ann, ben = someone(ip), someone(ip)
    await limits.check_rate(ann)
    await limits.check_rate(ann)
    with pytest.raises(LimitExceeded):
        await limits.check_rate(ann)  # ann's own two
    await limits.check_rate(ben)
    with pytest.raises(LimitExceeded):
        await limits.check_rate(ben)  # the address's three (ann's refused one did not count)
    await limits.close()


async def test_no_rate_configured_means_no_rate_limit(store):
    limits = ChatLimits()
    caller = someone()
    for _ in range(50):
        await limits.check_rate(caller)
    await limits.close()


async def test_the_wait_is_never_under_a_second_and_the_window_moves_on(store, settings):
    settings.CHAT_RATE_LIMIT = "1/second"
    limits = ChatLimits()
    caller = anonymous()
    await limits.check_rate(caller)
    with pytest.raises(LimitExceeded) as refused:
        await limits.check_rate(caller)
    assert refused.value.retry_after == 1.0
    assert "Please wait 1 seconds" in refused.value.message
    # Once the window has moved past the first question, the caller may ask again.
    for _ in range(20):
        await asyncio.sleep(refused.value.retry_after / 4)
        try:
            await limits.check_rate(caller)
            break
        except LimitExceeded:
            continue
    else:
        pytest.fail("still refused long after the window passed")
    await limits.close()


# Concurrent streams


async def test_without_a_cap_every_stream_gets_a_slot(store):
    caller = someone()
    slots = [await store.acquire_stream(caller) for _ in range(20)]
    for slot in slots:
        await slot.release()


async def test_a_caller_gets_the_capped_number_of_slots_and_no_more(store, settings):
    settings.CHAT_MAX_CONCURRENT_STREAMS = 2
    caller = someone()
    held = [await store.acquire_stream(caller), await store.acquire_stream(caller)]
    with pytest.raises(LimitExceeded) as refused:
        await store.acquire_stream(caller)
    assert refused.value.message == "You already have 2 answers streaming. Wait for one to finish."
    assert refused.value.retry_after == 5
    # others are not affected, logged in or not, even from the same address
    other = await store.acquire_stream(someone(caller.ip))
    stranger = await store.acquire_stream(anonymous(caller.ip))
    for slot in [*held, other, stranger]:
        await slot.release()


async def test_a_released_slot_can_be_taken_again_and_a_refusal_takes_none(store, settings):
    settings.CHAT_MAX_CONCURRENT_STREAMS = 1
    caller = anonymous()
    first = await store.acquire_stream(caller)
    for _ in range(3):
        with pytest.raises(LimitExceeded):
            await store.acquire_stream(caller)
    await first.release()
    second = await store.acquire_stream(caller)  # the refusals left nothing behind
    with pytest.raises(LimitExceeded):
        await store.acquire_stream(caller)
    await second.release()
    await (await store.acquire_stream(caller)).release()


async def test_releasing_a_slot_twice_frees_it_once(store, settings):
    settings.CHAT_MAX_CONCURRENT_STREAMS = 2
    caller = someone()
    kept = await store.acquire_stream(caller)
    done = await store.acquire_stream(caller)
    await done.release()
    await done.release()  # every exit path may release: the second call changes nothing
    again = await store.acquire_stream(caller)
    with pytest.raises(LimitExceeded):
        await store.acquire_stream(caller)  # kept and again: still two open
    for slot in (kept, again):
        await slot.release()


async def test_slots_are_counted_per_caller_and_freed_per_caller(store, settings):
    settings.CHAT_MAX_CONCURRENT_STREAMS = 1
    ann, ben = someone(), someone()
    ann_slot = await store.acquire_stream(ann)
    ben_slot = await store.acquire_stream(ben)
    await ann_slot.release()
    with pytest.raises(LimitExceeded):
        await store.acquire_stream(ben)  # ann's release freed ann's slot, not ben's
    await (await store.acquire_stream(ann)).release()
    await ben_slot.release()


class Clock:
    def __init__(self):
        self.now = 2_000_000.0

    def __call__(self) -> float:
        return self.now


async def test_a_slot_is_taken_for_exactly_its_lifetime(store, settings):
    settings.CHAT_MAX_CONCURRENT_STREAMS = 1
    settings.CHAT_STREAM_SLOT_TTL_SECONDS = 30
    store.clock = clock = Clock()
    caller = someone()
    await store.acquire_stream(caller)  # lost: never released
    assert await store.open_streams(caller) == 1
    clock.now += 29.9
    assert await store.open_streams(caller) == 1
    with pytest.raises(LimitExceeded):
        await store.acquire_stream(caller)
    clock.now += 0.1  # at its deadline the slot is gone
    assert await store.open_streams(caller) == 0
    slot = await store.acquire_stream(caller)
    assert await store.open_streams(caller) == 1
    await slot.release()
    assert await store.open_streams(caller) == 0


async def test_releasing_a_slot_that_expired_meanwhile_frees_nothing_else(store, settings):
    settings.CHAT_MAX_CONCURRENT_STREAMS = 2
    settings.CHAT_STREAM_SLOT_TTL_SECONDS = 30
    store.clock = clock = Clock()
    caller = someone()
    late = await store.acquire_stream(caller)
    clock.now += 20
    live = await store.acquire_stream(caller)
    clock.now += 15  # the first is past its deadline, the second is not
    assert await store.open_streams(caller) == 1
    await late.release()  # its turn ended after all: no error, and the live slot stays
    assert await store.open_streams(caller) == 1
    await live.release()
    assert await store.open_streams(caller) == 0


async def test_open_streams_counts_the_callers_taken_slots_only(store, settings):
    settings.CHAT_MAX_CONCURRENT_STREAMS = 3
    caller, other = someone(), someone()
    assert await store.open_streams(caller) == 0
    slots = [await store.acquire_stream(caller) for _ in range(3)]
    await store.acquire_stream(other)
    with pytest.raises(LimitExceeded):
        await store.acquire_stream(caller)
    assert await store.open_streams(caller) == 3
    for left, slot in zip((2, 1, 0), slots, strict=True):
        await slot.release()
        assert await store.open_streams(caller) == left
    assert await store.open_streams(other) == 1


class Resource:
    def __init__(self, name: str, closed: list, fails: bool = False):
        self.name, self.closed, self.fails = name, closed, fails

    async def close(self):
        self.closed.append(self.name)
        if self.fails:
            raise RuntimeError(f"{self.name} would not close")


async def test_a_slot_closes_what_it_holds_last_first_once_then_frees(store, settings, caplog):
    settings.CHAT_MAX_CONCURRENT_STREAMS = 1
    caller = someone()
    slot = await store.acquire_stream(caller)
    closed = []
    failing = Resource("upstream", closed, fails=True)
    slot.hold(Resource("answer row", closed))
    slot.hold(failing)  # a failing close stops nothing, and is logged with its traceback
    slot.hold(Resource("relay", closed))
    await slot.release()
    await slot.release()
    assert closed == ["relay", "upstream", "answer row"]
    [logged] = [r for r in caplog.records if r.name == "chat.limits"]
    assert logged.levelno == logging.ERROR
    assert logged.getMessage() == f"could not close {failing!r}"
    assert "upstream would not close" in str(logged.exc_info[1])
    assert await store.open_streams(caller) == 0
    await (await store.acquire_stream(caller)).release()


async def test_a_release_started_from_a_callback_finishes_and_frees(store, settings):
    settings.CHAT_MAX_CONCURRENT_STREAMS = 1
    caller = someone()
    slot = await store.acquire_stream(caller)
    closed = []
    slot.hold(Resource("upstream", closed))
    first = slot.release_soon()
    assert slot.release_soon() is first  # one release, however often it is asked for
    await first
    assert closed == ["upstream"]
    assert await store.open_streams(caller) == 0


async def settle():
    """Wait for every other task of this loop, and those they start, to finish."""
    for _ in range(50):
        others = {t for t in asyncio.all_tasks() if t is not asyncio.current_task()}
        if not others:
            return
        await asyncio.wait(others, timeout=5)
        await asyncio.sleep(0)


async def test_a_caller_that_leaves_while_admitted_leaves_no_slot_behind(store, settings):
    settings.CHAT_MAX_CONCURRENT_STREAMS = 1
    user, ip = new_user(), new_ip()
    caller = caller_for(user, ip)
    admitting = asyncio.ensure_future(admit(user, ip))
    await asyncio.sleep(0)  # admission under way
    admitting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await admitting
    await settle()  # the admission finishes on its own, then gives its slot back
    assert await chat_limits.get().open_streams(caller) == 0
    await (await admit(user, ip)).release()


async def test_a_caller_that_leaves_while_refused_leaves_no_error_behind(store, settings):
    settings.CHAT_MAX_CONCURRENT_STREAMS = 1
    user, ip = new_user(), new_ip()
    held = await admit(user, ip)
    admitting = asyncio.ensure_future(admit(user, ip))  # will be refused
    await asyncio.sleep(0)
    admitting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await admitting
    await settle()  # the store fixture checks that the refusal reached no loop handler
    assert await chat_limits.get().open_streams(caller_for(user, ip)) == 1
    await held.release()


async def test_a_slot_never_released_expires_on_its_own(store, settings):
    settings.CHAT_MAX_CONCURRENT_STREAMS = 1
    settings.CHAT_STREAM_SLOT_TTL_SECONDS = 1
    caller = someone()
    await store.acquire_stream(caller)  # lost: never released
    for _ in range(40):
        try:
            slot = await store.acquire_stream(caller)
            break
        except LimitExceeded:
            await asyncio.sleep(0.25)
    else:
        pytest.fail("the lost slot never expired")
    await slot.release()


# admit: the rate, then a slot


async def test_admit_checks_the_rate_then_hands_out_a_slot(store, settings):
    settings.CHAT_RATE_LIMIT = "2/minute"
    settings.CHAT_MAX_CONCURRENT_STREAMS = 1
    user, ip = new_user(), new_ip()
    slot = await admit(user, ip)
    with pytest.raises(LimitExceeded, match="answers streaming"):
        await admit(user, ip)
    await slot.release()
    with pytest.raises(LimitExceeded, match="Too many questions"):
        await admit(user, ip)  # both earlier questions counted, the refused one too


async def test_admit_serves_everyone_while_the_limit_store_is_away(settings, caplog):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # nothing listens here once the socket is closed
    settings.REDIS_URL = f"redis://127.0.0.1:{port}/0"
    settings.CHAT_RATE_LIMIT = "1/minute"
    settings.CHAT_MAX_CONCURRENT_STREAMS = 1
    user, ip = new_user(), new_ip()
    slots = [await admit(user, ip) for _ in range(3)]
    for slot in slots:
        await slot.release()
    warnings = [r for r in caplog.records if r.name == "chat.limits"]
    assert len(warnings) == 3
    for record in warnings:
        assert record.levelno == logging.WARNING
        assert record.getMessage().startswith("rate limit store unavailable, not limiting: ")
        assert "Error" in record.getMessage()  # the cause, e.g. ConnectionError(...)


async def test_a_slot_whose_release_cannot_reach_redis_frees_itself_at_its_deadline(
    store, settings, caplog
):
    if store.redis is None:
        pytest.skip("the in-memory store cannot be away")
    from tests.proxy import CuttableProxy

    target = urlsplit(settings.REDIS_URL)
    settings.CHAT_MAX_CONCURRENT_STREAMS = 1
    settings.CHAT_STREAM_SLOT_TTL_SECONDS = 30
    with CuttableProxy(target.port or 6379, target.hostname) as proxy:
        settings.REDIS_URL = f"redis://127.0.0.1:{proxy.port}{target.path}"
        limits = ChatLimits()
        limits.clock = clock = Clock()
        caller = someone()
        slot = await limits.acquire_stream(caller)
        proxy.cut()
        await slot.release()  # no error for the caller
        proxy.restore()
        [logged] = [r for r in caplog.records if r.name == "chat.limits"]
        assert logged.levelno == logging.WARNING
        assert logged.getMessage().startswith("could not release a stream slot: ")
        assert "Error" in logged.getMessage()
        assert await limits.open_streams(caller) == 1  # still counted, until its deadline
        clock.now += 30
        assert await limits.open_streams(caller) == 0
        await (await limits.acquire_stream(caller)).release()
        await limits.close()
