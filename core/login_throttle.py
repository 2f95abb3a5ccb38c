"""Slow down password guessing: after LOGIN_MAX_FAILURES failed logins for one account or from
one address within LOGIN_FAILURE_WINDOW, further attempts get 429 until the window ends.

Every attempt first reserves a slot on both counts, atomically, and only then is the password
checked: concurrent guesses cannot all pass a check made before any of them failed. The slot is
given back when the login succeeds or the attempt is refused, so only failed checks count.
The account is keyed by the username as the login form normalises it (NFKC), case-folded, so no
spelling of a locked account's name gets another try. Counts live in the `limits` library's
storage: Redis when configured, so all workers share them.
"""

import threading
import time
from collections.abc import Callable
from functools import wraps
from typing import Any

import limits
from django.conf import settings
from django.contrib.auth.forms import UsernameField
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from limits.storage import MemoryStorage, RedisStorage
from limits.strategies import FixedWindowRateLimiter

from core.client_address import request_client_address

# Longer names fail the form's validation, so they never reach a password check.
_USERNAME = UsernameField(max_length=254)
_limiter: FixedWindowRateLimiter | None = None
# limits' MemoryStorage can lose a new key's first count to a concurrent read (it drops a key it
# sees without an expiry), so this process's attempts take turns; Redis counts atomically anyway.
_counting = threading.Lock()


def limiter() -> FixedWindowRateLimiter:
    global _limiter
    if _limiter is None:
        storage = RedisStorage(settings.REDIS_URL) if settings.REDIS_URL else MemoryStorage()
        # A fixed window, because a reservation can be given back: its count is one counter.
        _limiter = FixedWindowRateLimiter(storage)
    return _limiter


def account_key(raw: str) -> str:
    return (_USERNAME.to_python(raw[:1000]) or "").casefold()[:254]


def _keys(request: HttpRequest) -> list[tuple[str, str]]:
    keys = [("login-ip", request_client_address(request) or "unknown")]
    username = account_key(request.POST.get("username") or "")
    if username:
        keys.append(("login-user", username))
    return keys


def _reserve(item: limits.RateLimitItem, keys: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Take a slot on every count; returns the counts that were already full."""
    with _counting:
        return [key for key in keys if not limiter().hit(item, *key)]


def _give_back(item: limits.RateLimitItem, keys: list[tuple[str, str]]) -> None:
    with _counting:
        for key in keys:
            limiter().storage.incr(item.key_for(*key), item.get_expiry(), amount=-1)


def _too_many(item: limits.RateLimitItem, key: tuple[str, str]) -> HttpResponse:
    reset = limiter().get_window_stats(item, *key).reset_time
    wait = max(1, round(reset - time.time()))
    response = HttpResponse(
        f"Too many failed logins. Try again in {wait} seconds.",
        status=429,
        content_type="text/plain; charset=utf-8",
    )
    response["Retry-After"] = str(wait)
    return response


def throttled(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if request.method != "POST" or not settings.LOGIN_MAX_FAILURES:
            return view(request, *args, **kwargs)
        item = limits.RateLimitItemPerSecond(
            settings.LOGIN_MAX_FAILURES, settings.LOGIN_FAILURE_WINDOW
        )
        keys = _keys(request)
        refused = _reserve(item, keys)
        if refused:
            _give_back(item, keys)
            return _too_many(item, refused[0])
        response = view(request, *args, **kwargs)
        if response.status_code != 200:  # 200: the form came back, the login failed
            _give_back(item, keys)
        return response

    return wrapper
