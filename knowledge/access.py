"""Who may read what: the access filter for a user, applied inside every search query, and the
same rule over the document rows, which decide at query time whatever the index still holds."""

from dataclasses import dataclass

from django.conf import settings
from django.db import connections
from django.db.models import Exists, OuterRef, Q

from knowledge.models import Collection, Document, citation_for

# The group every chunk of a document without groups carries: everyone may read it.
PUBLIC_GROUP = "public"


@dataclass(frozen=True)
class AccessFilter:
    """Everything (`all`), or public documents plus those of `groups` (group ids as strings).

    `public=False` with no groups matches nothing: anonymous users while anonymous chat is off.
    """

    all: bool = False
    groups: frozenset[str] = frozenset()
    public: bool = True

    def allows(self, chunk_groups) -> bool:
        if self.all:
            return True
        allowed = set(self.groups) | ({PUBLIC_GROUP} if self.public else set())
        return bool(allowed & set(chunk_groups))

    def describe(self) -> str:
        if self.all:
            return "all documents (staff)"
        parts = (["public documents"] if self.public else []) + [
            f"group {g}" for g in sorted(self.groups)
        ]
        return " or ".join(parts) or "nothing (anonymous access is off)"

    def summary(self) -> str:
        """describe() without group ids, for people who are not staff."""
        if self.all:
            return "all documents"
        parts = (["public documents"] if self.public else []) + (
            ["your groups' documents"] if self.groups else []
        )
        return " and ".join(parts) or "nothing (anonymous access is off)"


ANONYMOUS = AccessFilter()
EVERYTHING = AccessFilter(all=True)
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
    keys = [group_key(pk) for pk in document_group_ids] or [PUBLIC_GROUP]
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
    # Q | Exists is a Q (Django combines conditional expressions); the stubs' Q.__or__ takes
    # only another Q.
    if access.public:
        readable |= ~Exists(memberships)  # type: ignore[assignment]
    if ids := _group_ids(access):
        readable |= Exists(memberships.filter(group_id__in=ids))  # type: ignore[assignment]
    return published & readable


@dataclass(frozen=True, slots=True)
class ReadableRow:
    """What a citation needs of a document the caller may read now."""

    pk: int
    title: str
    citation: str
    collection: str  # the collection's slug, "" for none


def _readable_sql(access: AccessFilter, n_ids: int) -> tuple[str, list] | None:
    """Hand-written because it runs once per question: the ORM spent over a millisecond per
    call compiling the same Exists() query (bench/results)."""
    document = Document._meta.db_table
    collection = Collection._meta.db_table
    through = Document.groups.through._meta.db_table
    sql = (
        f"SELECT d.id, d.title, d.source_name, d.file, c.slug FROM {document} d "
        f"LEFT JOIN {collection} c ON c.id = d.collection_id "
        f"WHERE d.published = %s AND d.id IN ({', '.join(['%s'] * n_ids)})"
    )
    if access.all:
        return sql, []
    member = f"SELECT 1 FROM {through} m WHERE m.document_id = d.id"
    either = []
    if access.public:
        either.append(f"NOT EXISTS ({member})")
    group_ids = _group_ids(access)
    if group_ids:
        either.append(f"EXISTS ({member} AND m.group_id IN ({', '.join(['%s'] * len(group_ids))}))")
    if not either:
        return None
    return f"{sql} AND ({' OR '.join(either)})", group_ids


def readable_documents(access: AccessFilter, document_ids) -> dict[int, ReadableRow]:
    """Of `document_ids`, the documents `access` may read now (published; public or in one of
    the caller's groups; staff all), by id: one query, the same rule as readable_documents_q."""
    ids = sorted(set(document_ids))
    built = _readable_sql(access, len(ids)) if ids else None
    if built is None:
        return {}
    sql, extra = built
    with connections[Document.objects.db].cursor() as cursor:
        cursor.execute(sql, [True, *ids, *extra])
        rows = cursor.fetchall()
    return {
        pk: ReadableRow(pk, title, citation_for(pk, title, source, file), slug or "")
        for pk, title, source, file, slug in rows
    }


def collection_visible(access: AccessFilter, slug: str) -> bool:
    """Whether the collection exists for this caller: staff see every collection; everyone
    else only one holding a document they may read, so that a restricted collection and a
    missing one look the same."""
    if access.all:
        return Collection.objects.filter(slug=slug).exists()
    return Document.objects.filter(readable_documents_q(access), collection__slug=slug).exists()
