"""Slow down password guessing: after LOGIN_MAX_FAILURES failed logins for one account or from
one address within LOGIN_FAILURE_WINDOW, further attempts get 429 until the window moves on.
Counts live in the `limits` library's storage: Redis when configured, so all workers share them.
"""

import time
from functools import wraps

import limits
from django.conf import settings
from django.http import HttpResponse
from limits.storage import MemoryStorage, RedisStorage
from limits.strategies import MovingWindowRateLimiter

_limiter = None


def limiter() -> MovingWindowRateLimiter:
    global _limiter
    if _limiter is None:
        storage = RedisStorage(settings.REDIS_URL) if settings.REDIS_URL else MemoryStorage()
        _limiter = MovingWindowRateLimiter(storage)
    return _limiter


def _keys(request) -> list[tuple[str, str]]:
    username = (request.POST.get("username") or "").strip().lower()[:150]
    keys = [("login-ip", request.META.get("REMOTE_ADDR", "unknown"))]
    if username:
        keys.append(("login-user", username))
    return keys


def throttled(view):
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if request.method != "POST" or not settings.LOGIN_MAX_FAILURES:
            return view(request, *args, **kwargs)
        item = limits.RateLimitItemPerSecond(
            settings.LOGIN_MAX_FAILURES, settings.LOGIN_FAILURE_WINDOW
        )
        for key in _keys(request):
            if not limiter().test(item, *key):
                reset = limiter().get_window_stats(item, *key).reset_time
                wait = max(1, round(reset - time.time()))
                response = HttpResponse(
                    f"Too many failed logins. Try again in {wait} seconds.",
                    status=429,
                    content_type="text/plain; charset=utf-8",
                )
                response["Retry-After"] = str(wait)
                return response
        response = view(request, *args, **kwargs)
        if response.status_code == 200:  # the form came back: the login failed
            for key in _keys(request):
                limiter().hit(item, *key)
        return response

    return wrapper
