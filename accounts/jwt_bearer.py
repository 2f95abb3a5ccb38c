"""Access tokens of the OpenID Connect provider (Entra ID) as bearer credentials: a program in
Azure sends a token issued for OIDC_API_AUDIENCE, validated by accounts/provider.py (signature
against the provider's rotating keys, algorithm allow-list, issuer, audience, expiry) and mapped
to a user and groups by the same rules as sign-in (accounts/claims.py)."""

import logging
from datetime import UTC, datetime

import jwt
import requests
from django.conf import settings

from accounts import claims as claim_rules
from accounts import provider
from accounts.identity import Identity, InvalidCredential
from core.db import release_db
from knowledge.access import access_for_sync

log = logging.getLogger(__name__)


def looks_like_jwt(token: str) -> bool:
    return bool(settings.OIDC_ENABLED and settings.OIDC_API_AUDIENCE) and token.count(".") == 2


def token_identity(token: str) -> Identity | InvalidCredential:
    """Blocking: the provider's keys may need fetching, and the user row writing."""
    try:
        payload = provider.verify(token, audience=settings.OIDC_API_AUDIENCE)
    except jwt.ExpiredSignatureError:
        return InvalidCredential("The token has expired.")
    except (jwt.PyJWTError, requests.RequestException, ValueError) as exc:
        log.info("bearer token refused: %r", exc)
        return InvalidCredential()
    try:
        user = claim_rules.user_for(payload, signing_in=False)
        if not user.is_active:
            return InvalidCredential("The token's user is deactivated.")
        access = access_for_sync(user)
    finally:
        release_db()
    return Identity(user, access, None, datetime.fromtimestamp(payload["exp"], UTC))
