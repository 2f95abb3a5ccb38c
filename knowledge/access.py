"""Who may read what: the access filter for a user, applied inside every search query."""

from django.conf import settings

from knowledge.search.base import ANONYMOUS, EVERYTHING, AccessFilter

NOBODY = AccessFilter(public=False)


def group_key(group_id: int) -> str:
    return f"g{group_id}"


def _decide(user):
    """The filter when the user alone decides it, or None when their groups are needed."""
    if user is None or not user.is_authenticated:
        return ANONYMOUS if settings.CHAT_ALLOW_ANONYMOUS else NOBODY
    if not user.is_active:
        return NOBODY
    if user.is_staff or user.is_superuser:
        return EVERYTHING
    return None


def access_for_sync(user) -> AccessFilter:
    decided = _decide(user)
    if decided is not None:
        return decided
    ids = user.groups.values_list("pk", flat=True)
    return AccessFilter(groups=frozenset(group_key(pk) for pk in ids))


async def access_for(user) -> AccessFilter:
    decided = _decide(user)
    if decided is not None:
        return decided
    ids = [pk async for pk in user.groups.values_list("pk", flat=True)]
    return AccessFilter(groups=frozenset(group_key(pk) for pk in ids))


def can_read(user_access: AccessFilter, document_group_ids) -> bool:
    keys = [group_key(pk) for pk in document_group_ids] or ["public"]
    return user_access.allows(keys)
