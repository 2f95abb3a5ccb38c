"""Who a bearer credential (`Authorization: Bearer <credential>`) is: an API key
(accounts/api_keys.py) or the identity provider's access token (accounts/jwt_bearer.py). One
code path for POST /chat, POST /chat/stream and the websocket, at its handshake and every turn.

Look-ups are cached in the process for API_KEY_CACHE_SECONDS (5 s by default), bad credentials
too, so a program chatting in a loop costs no database query per chat, as an anonymous caller
costs none. A revocation, an expiry, a deactivation or a group change applies at once in the
process where it was made (accounts/signals.py drops the cached entries) and within
API_KEY_CACHE_SECONDS in every other process. A key's last-used time is written on a cache miss,
at most once a minute per key.
"""

import hashlib
import threading
from datetime import timedelta

from asgiref.sync import sync_to_async
from cachetools import TTLCache
from django.conf import settings
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from accounts import api_keys, jwt_bearer
from accounts.identity import Identity
from accounts.identity import InvalidCredential as InvalidCredential  # what authenticate raises
from accounts.models import ApiKey
from core.db import release_db
from knowledge.access import access_for_sync

LAST_USED_EVERY = timedelta(minutes=1)
CACHE_SIZE = 10_000  # bounds the memory a flood of made-up keys can take


def credential(authorization: str) -> str:
    """The token of an `Authorization: Bearer <token>` header; InvalidCredential otherwise."""
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidCredential("Send the credential as 'Authorization: Bearer <key>'.")
    return token.strip()


_lock = threading.Lock()  # the cache is read on the event loop and cleared from signal receivers
_caches: dict[float, TTLCache[bytes, Identity | InvalidCredential]] = {}


def _cache() -> TTLCache[bytes, Identity | InvalidCredential]:
    ttl = settings.API_KEY_CACHE_SECONDS
    with _lock:
        if ttl not in _caches:
            _caches.clear()
            _caches[ttl] = TTLCache(CACHE_SIZE, ttl)
        return _caches[ttl]


def forget(user_id: object = None) -> None:
    """Drop cached look-ups: a user's (their rights or keys changed), or all."""
    with _lock:
        for cache in _caches.values():
            if user_id is None:
                cache.clear()
                continue
            for name, entry in list(cache.items()):
                if isinstance(entry, Identity) and entry.user.pk == user_id:
                    cache.pop(name, None)


async def authenticate(authorization: str) -> Identity:
    """The identity an Authorization header carries, or InvalidCredential."""
    token = credential(authorization)
    name = hashlib.sha256(token.encode()).digest()  # the cache holds no usable credential
    cache = _cache()
    if settings.API_KEY_CACHE_SECONDS:
        with _lock:
            entry = cache.get(name)
        if entry is None:
            entry = await _look_up(token)
            with _lock:
                cache[name] = entry
    else:
        entry = await _look_up(token)
    if isinstance(entry, InvalidCredential):
        raise entry
    if entry.expires_at is not None and entry.expires_at <= timezone.now():
        raise InvalidCredential("The credential has expired.")
    return entry


async def _look_up(token: str) -> Identity | InvalidCredential:
    prefix = api_keys.parse(token)
    if prefix is not None:
        return await sync_to_async(_key_identity, thread_sensitive=False)(prefix, token)
    if jwt_bearer.looks_like_jwt(token):
        return await sync_to_async(jwt_bearer.token_identity, thread_sensitive=False)(token)
    return InvalidCredential()


def _key_identity(prefix: str, token: str) -> Identity | InvalidCredential:
    try:
        row = ApiKey.objects.select_related("user").filter(prefix=prefix).first()
        if row is None or not constant_time_compare(row.digest, api_keys.digest(token)):
            return InvalidCredential()
        # The holder proved they have the key: they may learn why it no longer works.
        if row.revoked:
            return InvalidCredential("The API key has been revoked.")
        now = timezone.now()
        if row.expires_at is not None and row.expires_at <= now:
            return InvalidCredential("The API key has expired.")
        if not row.user.is_active:
            return InvalidCredential("The API key's user is deactivated.")
        access = access_for_sync(row.user)
        if row.last_used_at is None or now - row.last_used_at >= LAST_USED_EVERY:
            ApiKey.objects.filter(pk=row.pk).update(last_used_at=now)
        return Identity(row.user, access, row.pk, row.expires_at)
    finally:
        release_db()
