"""The configured OpenID Connect provider: its discovery document and signing keys, fetched
when first needed and cached (the document for an hour, the keys for five minutes, or until a
token names a key id they lack, at most once per OIDC_KEYS_REFRESH_COOLDOWN_SECONDS: a rotated
key is fetched then), and token validation against them.

A token is accepted only when its header's algorithm is in OIDC_ALGORITHMS (RS256 by default:
never `none`, never an HMAC algorithm keyed with a public key), its signature verifies with one
of the provider's published keys, and its issuer (the discovery document's, so one tenant),
audience, expiry and not-before hold.
"""

import threading
from typing import Any

import jwt
import requests
from cachetools import TTLCache, cached
from django.conf import settings

DOCUMENT_SECONDS = 3600
KEYS_SECONDS = 300
TIMEOUT = 10


@cached(TTLCache(8, DOCUMENT_SECONDS), lock=threading.Lock())
def _document(url: str) -> dict[str, Any]:
    response = requests.get(url, timeout=TIMEOUT)
    response.raise_for_status()
    document: dict[str, Any] = response.json()
    for field in ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri"):
        if not isinstance(document.get(field), str):
            raise ValueError(f"The provider's discovery document has no {field}.")
    return document


def document() -> dict[str, Any]:
    return _document(settings.OIDC_DISCOVERY_URL)


@cached(TTLCache(8, DOCUMENT_SECONDS), lock=threading.Lock())
def _keys(jwks_uri: str) -> jwt.PyJWKClient:
    # A key id it does not know makes it fetch the keys again, at most once per cooldown (a
    # flood of made-up key ids cannot hammer the provider).
    return jwt.PyJWKClient(
        jwks_uri,
        cache_keys=True,
        lifespan=KEYS_SECONDS,
        timeout=TIMEOUT,
        cooldown_duration=settings.OIDC_KEYS_REFRESH_COOLDOWN_SECONDS,
    )


def verify(token: str, audience: str) -> dict[str, Any]:
    """The token's claims, or a jwt.PyJWTError saying why not (blocking: network on a miss)."""
    header = jwt.get_unverified_header(token)
    algorithms = list(settings.OIDC_ALGORITHMS)
    if header.get("alg") not in algorithms:
        raise jwt.InvalidAlgorithmError("The token's algorithm is not allowed.")
    provider = document()
    key = _keys(provider["jwks_uri"]).get_signing_key_from_jwt(token)
    return jwt.decode(
        token,
        key.key,
        algorithms=algorithms,
        audience=audience,
        issuer=provider["issuer"],
        leeway=settings.OIDC_LEEWAY_SECONDS,
        options={"require": ["exp", "iat", "iss", "aud", "sub"]},
    )


def forget() -> None:
    """Drop the cached document and keys (tests; a provider that moved)."""
    _document.cache_clear()
    _keys.cache_clear()
