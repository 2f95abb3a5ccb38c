"""Who may read what, decided for one user at a time: the access filter each kind of user gets
(anonymous with anonymous chat on and off, inactive, staff, superuser, group member), what that
filter lets through and how it is described, whether a document with given groups is readable,
and the same rule over the document rows (published, groups, collections). The end-to-end checks
through every channel are in test_chat_access.py, test_access_rows.py and
test_access_property.py; these pin each decision on its own, in both directions."""

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth.models import AnonymousUser, Group

from knowledge.access import (
    ANONYMOUS,
    EVERYTHING,
    NOBODY,
    PUBLIC_GROUP,
    AccessFilter,
    access_for,
    access_for_sync,
    can_read,
    collection_visible,
    group_key,
    readable_documents,
)
from knowledge.models import Collection, Document


@pytest.fixture(params=["sync", "async"])
def access(request):
    """The user's filter, through the sync or the async entry point (both must agree)."""

    return access_for_sync if request.param == "sync" else async_to_sync(access_for)


def group_id(name: str) -> int:
    return Group.objects.get_or_create(name=name)[0].pk


def reads(access_filter: AccessFilter, *group_ids: int) -> bool:
    """Whether the filter lets through a document restricted to these groups (none: public)."""
    return can_read(access_filter, list(group_ids))


# Group keys are what the index stores in each chunk: an index built before a change of format
# would answer nobody's restricted documents.
def test_group_keys_are_g_and_the_group_id():
    assert group_key(7) == "g7"
    assert group_key(123) == "g123"


@pytest.mark.parametrize("who", [None, AnonymousUser()], ids=["no user", "anonymous"])
def test_anonymous_callers_read_public_documents_only_while_anonymous_chat_is_on(
    access, settings, who
):
    settings.CHAT_ALLOW_ANONYMOUS = True
    anonymous = access(who)
    assert reads(anonymous)
    assert not reads(anonymous, 1)
    assert anonymous.allows([PUBLIC_GROUP])
    assert not anonymous.allows([group_key(1)])
    assert anonymous.describe() == "public documents"

    settings.CHAT_ALLOW_ANONYMOUS = False
    shut_out = access(who)
    assert not reads(shut_out)
    assert not reads(shut_out, 1)
    assert not shut_out.allows([PUBLIC_GROUP])
    assert shut_out.describe() == "nothing (anonymous access is off)"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "flags",
    [{}, {"is_staff": True}, {"is_superuser": True}, {"is_staff": True, "is_superuser": True}],
    ids=["member", "staff", "superuser", "staff superuser"],
)
def test_an_inactive_account_reads_nothing_whatever_its_rank_or_groups(
    access, make_user, settings, flags
):
    settings.CHAT_ALLOW_ANONYMOUS = True
    user = make_user("gone", "HR")
    hr = group_id("HR")
    for field, value in {**flags, "is_active": False}.items():
        setattr(user, field, value)
    user.save()
    inactive = access(user)
    assert not reads(inactive)
    assert not reads(inactive, hr)
    assert inactive.describe() == "nothing (anonymous access is off)"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "flags", [{"is_staff": True}, {"is_superuser": True}], ids=["staff", "superuser"]
)
def test_staff_and_superusers_read_every_document(access, make_user, flags):
    user = make_user("boss")  # in no group at all
    for field, value in flags.items():
        setattr(user, field, value)
    user.save()
    everything = access(user)
    assert reads(everything)
    assert reads(everything, 41, 42)
    assert everything.allows(["no-such-group"])
    assert everything.describe() == "all documents (staff)"


@pytest.mark.django_db
def test_a_member_reads_public_documents_and_those_of_each_of_their_groups(
    access, make_user, settings
):
    settings.CHAT_ALLOW_ANONYMOUS = False  # members read public documents regardless
    user = make_user("mia", "HR", "Legal")
    hr, legal, finance = [group_id(n) for n in ("HR", "Legal", "Finance")]
    member = access(user)
    assert member.groups == frozenset({group_key(hr), group_key(legal)})
    assert reads(member)
    assert reads(member, hr)
    assert reads(member, legal)
    assert reads(member, finance, legal)  # any one of the document's groups is enough
    assert not reads(member, finance)
    assert member.describe() == " or ".join(
        ["public documents"] + [f"group {g}" for g in sorted([group_key(hr), group_key(legal)])]
    )


@pytest.mark.django_db
def test_a_user_in_no_group_reads_public_documents_only(access, make_user):
    member = access(make_user("nils"))
    assert member.groups == frozenset()
    assert reads(member)
    assert not reads(member, group_id("HR"))
    assert member.describe() == "public documents"


@pytest.mark.django_db
def test_losing_a_group_takes_its_documents_away_at_the_next_question(access, make_user):
    user = make_user("olga", "HR")
    hr = group_id("HR")
    assert reads(access(user), hr)
    user.groups.clear()
    assert not reads(access(user), hr)


def test_a_filter_without_public_documents_lets_through_its_groups_only():
    groups_only = AccessFilter(groups=frozenset({"g3"}), public=False)
    assert groups_only.allows(["g3"])
    assert groups_only.allows([PUBLIC_GROUP, "g3"])
    assert not groups_only.allows([PUBLIC_GROUP])
    assert not groups_only.allows(["g4"])
    assert not groups_only.allows([])
    assert groups_only.describe() == "group g3"


def test_nothing_is_readable_by_a_document_with_no_keys_at_all():
    assert not AccessFilter().allows([])
    assert AccessFilter(all=True).allows([])


# The rows: what a filter may read among the documents as they are now


@pytest.fixture
def library(db):
    """Documents of every kind: public, HR only, HR and Legal, unpublished, in an empty and in
    a restricted collection."""
    hr, legal = (Group.objects.create(name=n) for n in ("HR", "Legal"))
    handbook = Collection.objects.create(name="Handbook", slug="handbook")
    secrets = Collection.objects.create(name="Secrets", slug="secrets")
    Collection.objects.create(name="Empty", slug="empty")
    drafts = Collection.objects.create(name="Drafts", slug="drafts")

    def doc(title, collection, *groups, published=True):
        document = Document.objects.create(
            title=title, collection=collection, body=f"{title}.", published=published
        )
        document.groups.add(*groups)
        return document

    docs = {
        "public": doc("Public", handbook),
        "hr": doc("HR only", secrets, hr),
        "hr+legal": doc("HR and Legal", secrets, hr, legal),
        "draft": doc("Draft", drafts, published=False),
        "hr draft": doc("HR draft", secrets, hr, published=False),
    }
    return {"docs": docs, "hr": hr, "legal": legal}


def readable_titles(access_filter: AccessFilter, library) -> set[str]:
    ids = [d.pk for d in library["docs"].values()]
    return {d.title for d in readable_documents(access_filter, ids).values()}


def member_of(*groups, public=True) -> AccessFilter:
    return AccessFilter(groups=frozenset(group_key(g.pk) for g in groups), public=public)


def test_staff_read_every_published_row_and_no_draft(library):
    assert readable_titles(EVERYTHING, library) == {"Public", "HR only", "HR and Legal"}


def test_anonymous_callers_read_public_rows_and_nothing_while_shut_out(library):
    assert readable_titles(ANONYMOUS, library) == {"Public"}
    assert readable_titles(NOBODY, library) == set()


def test_members_read_public_rows_and_those_of_any_of_their_groups(library):
    hr, legal = library["hr"], library["legal"]
    assert readable_titles(member_of(hr), library) == {"Public", "HR only", "HR and Legal"}
    assert readable_titles(member_of(legal), library) == {"Public", "HR and Legal"}
    assert readable_titles(member_of(hr, public=False), library) == {"HR only", "HR and Legal"}


def test_keys_that_are_not_group_keys_grant_nothing(library):
    hr = library["hr"]
    assert readable_titles(member_of(), library) == {"Public"}
    odd = AccessFilter(groups=frozenset({f"x{hr.pk}", "gHR", PUBLIC_GROUP}), public=False)
    assert readable_titles(odd, library) == set()


def test_only_the_asked_documents_are_looked_up_and_ready_to_cite(library):
    docs = library["docs"]
    assert readable_documents(EVERYTHING, []) == {}
    found = readable_documents(EVERYTHING, [docs["hr"].pk, docs["draft"].pk, 10**9])
    assert list(found) == [docs["hr"].pk]
    assert found[docs["hr"].pk].title == "HR only"
    assert found[docs["hr"].pk].pk == docs["hr"].pk
    assert found[docs["hr"].pk].collection == "secrets"


def test_a_collection_exists_for_a_caller_only_with_a_document_they_may_read(library):
    hr = library["hr"]
    assert collection_visible(ANONYMOUS, "handbook")
    assert not collection_visible(ANONYMOUS, "secrets")  # restricted looks like missing
    assert not collection_visible(ANONYMOUS, "drafts")
    assert not collection_visible(ANONYMOUS, "nowhere")
    assert not collection_visible(NOBODY, "handbook")
    assert collection_visible(member_of(hr), "secrets")
    assert collection_visible(member_of(hr), "handbook")  # their groups' and public ones
    assert not collection_visible(member_of(library["legal"]), "drafts")


def test_staff_see_every_collection_that_exists(library):
    for slug in ("handbook", "secrets", "empty", "drafts"):
        assert collection_visible(EVERYTHING, slug)
    assert not collection_visible(EVERYTHING, "nowhere")


def test_the_summary_for_people_who_are_not_staff_names_no_group():
    member = AccessFilter(groups=frozenset({"g3", "g12"}))
    assert EVERYTHING.summary() == "all documents"
    assert ANONYMOUS.summary() == "public documents"
    assert NOBODY.summary() == "nothing (anonymous access is off)"
    assert member.summary() == "public documents and your groups' documents"
    assert AccessFilter(groups=frozenset({"g3"}), public=False).summary() == (
        "your groups' documents"
    )
    assert "g3" in member.describe()
    assert "g3" not in member.summary() and "12" not in member.summary()


def test_a_member_of_several_groups_reads_the_rows_of_each(library):
    hr, legal = library["hr"], library["legal"]
    only_legal = Document.objects.create(title="Legal only", body="Legal only.")
    only_legal.groups.add(legal)
    ids = [d.pk for d in library["docs"].values()] + [only_legal.pk]
    both = member_of(hr, legal, public=False)
    titles = {row.title for row in readable_documents(both, ids).values()}
    assert titles == {"HR only", "HR and Legal", "Legal only"}


def test_a_readable_row_cites_the_uploaded_name_then_the_stored_file_then_the_title(db):
    named = Document.objects.create(
        title="Named", body="x", source_name="Leave Policy.pdf", file="documents/x/ab12.pdf"
    )
    stored = Document.objects.create(title="Stored", body="x", file="documents/x/handbook.pdf")
    typed = Document.objects.create(title="Typed [draft]", body="x")
    rows = readable_documents(EVERYTHING, [named.pk, stored.pk, typed.pk])
    assert rows[named.pk].citation == "Leave Policy.pdf"
    assert rows[stored.pk].citation == "handbook.pdf"
    assert rows[typed.pk].citation == "Typed (draft)"
    assert rows[typed.pk].collection == ""  # no collection: no slug, not a placeholder
    for pk, row in rows.items():
        assert row.citation == Document.objects.get(pk=pk).citation_name
