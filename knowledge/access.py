"""Who may read what: the access filter for a user, applied inside every search query, and the
same rule over the document rows, which decide at query time whatever the index still holds."""

from django.conf import settings
from django.db.models import Exists, OuterRef, Q

from knowledge.models import Collection, Document
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


def _group_ids(access: AccessFilter) -> list[int]:
    return [int(key[1:]) for key in access.groups if key.startswith("g") and key[1:].isdigit()]


def readable_documents_q(access: AccessFilter) -> Q:
    """The published documents `access` may read, as a filter on Document (the rows' truth,
    whatever the index still holds)."""
    published = Q(published=True)
    if access.all:
        return published
    memberships = Document.groups.through.objects.filter(document_id=OuterRef("pk"))
    readable = Q(pk__in=[])
    if access.public:
        readable |= ~Exists(memberships)
    if ids := _group_ids(access):
        readable |= Exists(memberships.filter(group_id__in=ids))
    return published & readable


def readable_documents(access: AccessFilter, document_ids) -> dict[int, Document]:
    """Of `document_ids`, the documents `access` may read now, by id: one query. Only the
    fields a citation needs are loaded."""
    ids = set(document_ids)
    if not ids:
        return {}
    rows = (
        Document.objects.filter(readable_documents_q(access), pk__in=ids)
        .select_related("collection")
        .only("pk", "title", "source_name", "file", "collection__slug")
    )
    return {doc.pk: doc for doc in rows}


def collection_visible(access: AccessFilter, slug: str) -> bool:
    """Whether the collection exists for this caller: staff see every collection; everyone
    else only one holding a document they may read, so that a restricted collection and a
    missing one look the same."""
    if access.all:
        return Collection.objects.filter(slug=slug).exists()
    return Document.objects.filter(readable_documents_q(access), collection__slug=slug).exists()
