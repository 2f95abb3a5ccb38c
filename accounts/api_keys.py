"""Making, reading and revoking API keys.

A key is `rsk_<prefix>_<secret>`: 12 hex characters that find its row, then 256 random bits.
Only HMAC-SHA256 of the whole key is stored. A slow password hash (PBKDF2, Argon2) defends
guessable secrets; a 256-bit random one cannot be guessed, so one fast keyed hash is as safe
and costs nothing per request. The hash key is fixed (not SECRET_KEY), so rotating the
secret key does not invalidate every API key.
"""

import hashlib
import hmac
import re
import secrets
from datetime import timedelta

from django.contrib.auth.models import User
from django.utils import timezone

from accounts.models import ApiKey

KEY_PATTERN = re.compile(r"rsk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")
_HASH_KEY = b"ragsite api key v1"


def digest(key: str) -> str:
    return hmac.new(_HASH_KEY, key.encode(), hashlib.sha256).hexdigest()


def parse(key: str) -> str | None:
    """The prefix of a well-formed key, else None."""
    match = KEY_PATTERN.fullmatch(key)
    return match.group(1) if match else None


def new_key() -> tuple[str, str]:
    """(prefix, key) of a fresh random key."""
    prefix = secrets.token_hex(6)
    return prefix, f"rsk_{prefix}_{secrets.token_urlsafe(32)}"


def create_key(user: User, name: str, expires_days: int | None = None) -> tuple[ApiKey, str]:
    """A new key for `user`: its row, and the key itself (shown once, stored nowhere)."""
    prefix, key = new_key()
    expires_at = timezone.now() + timedelta(days=expires_days) if expires_days else None
    row = ApiKey.objects.create(
        user=user, name=name, prefix=prefix, digest=digest(key), expires_at=expires_at
    )
    return row, key


def revoke(prefix: str) -> int:
    """Revoke the key(s) with this prefix (`rsk_` optional); how many were revoked."""
    prefix = prefix.removeprefix("rsk_").split("_")[0].lower()
    revoked = 0
    for row in ApiKey.objects.filter(prefix=prefix, revoked=False):
        row.revoked = True
        row.save(update_fields=["revoked"])  # through save(): the signal drops cached look-ups
        revoked += 1
    return revoked
