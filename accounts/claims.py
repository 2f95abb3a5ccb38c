"""From an identity provider's claims to a Django user and groups: one rule for sign-in
(accounts/oidc.py) and for bearer tokens (accounts/jwt_bearer.py).

The user is found by issuer and subject (`sub`), never by name or e-mail. Group and app-role
claims (OIDC_GROUP_CLAIMS, `groups` and `roles` by default) are mapped to Django groups through
GroupMapping: unmapped values are ignored; a mapped group the user no longer has a claim for is
removed; groups no mapping mentions (given by staff by hand) are left alone. Staff status follows
OIDC_STAFF_CLAIM when it is set.
"""

import hashlib
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from accounts.models import ExternalIdentity, GroupMapping


def claim_values(claims: dict[str, Any]) -> set[str]:
    values: set[str] = set()
    for name in settings.OIDC_GROUP_CLAIMS:
        value = claims.get(name)
        if isinstance(value, str):
            values.add(value)
        elif isinstance(value, list):
            values.update(v for v in value if isinstance(v, str))
    return values


def _username(claims: dict[str, Any]) -> str:
    model = get_user_model()
    wanted = str(claims.get(settings.OIDC_USERNAME_CLAIM) or claims.get("email") or "")
    wanted = "".join(c for c in wanted if c.isalnum() or c in "@.+-_")[:120]
    if wanted and not model._default_manager.filter(username=wanted).exists():
        return wanted
    # Taken (a local account, or another provider's user): never theirs; a name of our own.
    suffix = hashlib.sha256(f"{claims['iss']} {claims['sub']}".encode()).hexdigest()[:10]
    return f"{wanted or 'user'}-{suffix}"[:150]


@transaction.atomic
def user_for(claims: dict[str, Any], signing_in: bool = True) -> User:
    """The user these verified claims are, created at first sight; groups and staff applied.
    `signing_in`: record the sign-in time (a bearer token's look-up does not)."""
    model = get_user_model()
    identity = (
        ExternalIdentity.objects.select_for_update()
        .select_related("user")
        .filter(issuer=claims["iss"], subject=claims["sub"])
        .first()
    )
    if identity is None:
        user = model._default_manager.create_user(_username(claims), email=claims.get("email", ""))
        user.set_unusable_password()
        user.save(update_fields=["password"])
        identity = ExternalIdentity.objects.create(
            user=user, issuer=claims["iss"], subject=claims["sub"]
        )
    elif signing_in:
        identity.last_sign_in = timezone.now()
        identity.save(update_fields=["last_sign_in"])
    user = identity.user
    apply_claims(user, claims)
    return user


def apply_claims(user: User, claims: dict[str, Any]) -> None:
    values = claim_values(claims)
    mappings = list(GroupMapping.objects.values_list("claim", "group_id"))
    managed = {group_id for _, group_id in mappings}
    granted = {group_id for claim, group_id in mappings if claim in values}
    current = set(user.groups.values_list("pk", flat=True))
    wanted = (current - managed) | granted
    if wanted != current:
        user.groups.set(wanted)
    changed = []
    if settings.OIDC_STAFF_CLAIM:
        staff = settings.OIDC_STAFF_CLAIM in values
        if user.is_staff != staff:
            user.is_staff = staff
            changed.append("is_staff")
    for field, claim in (("first_name", "given_name"), ("last_name", "family_name")):
        value = str(claims.get(claim) or "")[:150]
        if value and getattr(user, field) != value:
            setattr(user, field, value)
            changed.append(field)
    if changed:
        user.save(update_fields=changed)
