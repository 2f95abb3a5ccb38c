"""Staff edits through the admin's HTTP forms reach the search index through the task worker."""

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from django.urls import reverse

from knowledge.models import Chunk, Collection, Document, IndexStatus
from knowledge.search import backend
from knowledge.search.base import SearchBackendError
from knowledge.search.embedded import EmbeddedSearchBackend
from tests.admin_forms import add_document, change_document, delete_document, run_action

pytestmark = pytest.mark.django_db(transaction=True)

BODY = "The Lisbon office opens at 08:30. Visitors sign in at the blue kiosk near the lifts."


def _doc(title):
    return Document.objects.get(title=title)


def _indexed_ids() -> set[int]:
    async def ids():
        async with backend() as index:
            return await index.document_ids()

    return async_to_sync(ids)()


def _assert_saved(response):
    """The admin saved the form: it redirects to the list (a form error answers 200)."""
    assert response.status_code == 302, response.content[:2000]
    assert response["Location"] == reverse("admin:knowledge_document_changelist")


def _assert_action_done(response, count):
    assert response.status_code == 200 and response.redirect_chain, response.content[:2000]
    assert f"{count} document" in response.content.decode()


def test_admin_created_document_is_found_after_the_worker_runs(
    staff_client, run_worker, search, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = add_document(staff_client, title="Lisbon office", body=BODY)
    _assert_saved(response)
    doc = _doc("Lisbon office")
    assert doc.index_status == IndexStatus.PENDING
    assert "Lisbon" not in search("blue kiosk")  # nothing until the worker runs

    run_worker()

    doc.refresh_from_db()
    assert doc.index_status == IndexStatus.INDEXED and doc.indexed_at is not None
    found = search("blue kiosk")
    assert "[Lisbon office]" in found and "**kiosk**" in found  # the excerpt, highlighted
    assert doc.chunks.count() >= 1


def test_editing_replaces_chunks_and_unpublish_and_delete_remove(
    staff_client, run_worker, search, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        _assert_saved(add_document(staff_client, title="Lisbon office", body=BODY))
    run_worker()
    doc = _doc("Lisbon office")

    new_body = "The Lisbon office moved. Visitors now use the green turnstile on Rua Augusta."
    with django_capture_on_commit_callbacks(execute=True):
        response = change_document(staff_client, doc, body=new_body)
    _assert_saved(response)
    run_worker()
    assert "Lisbon office" not in search("blue kiosk")
    assert "[Lisbon office]" in search("green turnstile")
    assert list(Chunk.objects.filter(document=doc).values_list("text", flat=True)) == [new_body]

    with django_capture_on_commit_callbacks(execute=True):
        _assert_action_done(run_action(staff_client, "unpublish", [doc]), 1)
    run_worker()
    assert "Lisbon office" not in search("green turnstile")
    doc.refresh_from_db()
    assert doc.index_status == IndexStatus.REMOVED

    with django_capture_on_commit_callbacks(execute=True):
        _assert_action_done(run_action(staff_client, "publish", [doc]), 1)
    run_worker()
    assert "[Lisbon office]" in search("green turnstile")

    with django_capture_on_commit_callbacks(execute=True):
        assert delete_document(staff_client, doc).status_code == 302
    run_worker()
    assert "Lisbon office" not in search("green turnstile")


def test_group_restricted_document_reaches_only_its_group(
    staff_client, staff_user, make_user, run_worker, search, django_capture_on_commit_callbacks
):
    hr = Group.objects.create(name="HR")
    make_user("hannah", "HR")
    make_user("bob", "Sales")
    with django_capture_on_commit_callbacks(execute=True):
        _assert_saved(
            add_document(
                staff_client,
                title="Salary bands",
                body="Band L4 pays 78,000 to 96,000.",
                groups=[hr],
            )
        )
        _assert_saved(
            add_document(
                staff_client, title="Canteen", body="The canteen pays for fruit on Mondays."
            )
        )
    run_worker()

    assert "Salary bands" in search("pays", user="hannah")
    assert "Salary bands" in search("pays", user=staff_user.username)
    for outsider in ("bob", None):
        out = search("pays", user=outsider)
        assert "Canteen" in out and "Salary bands" not in out and "78,000" not in out

    # Taking the restriction away through the admin opens it up; putting it back closes it.
    doc = _doc("Salary bands")
    with django_capture_on_commit_callbacks(execute=True):
        _assert_saved(change_document(staff_client, doc, groups=[]))
    run_worker()
    assert "Salary bands" in search("pays", user="bob")
    with django_capture_on_commit_callbacks(execute=True):
        _assert_saved(change_document(staff_client, doc, groups=[hr]))
    run_worker()
    assert "Salary bands" not in search("pays", user="bob")


def test_deleting_the_only_group_unpublishes_instead_of_going_public(
    staff_client, run_worker, search, django_capture_on_commit_callbacks
):
    hr = Group.objects.create(name="HR")
    with django_capture_on_commit_callbacks(execute=True):
        _assert_saved(
            add_document(
                staff_client, title="Salary bands", body="Band L4 pays 78,000.", groups=[hr]
            )
        )
    run_worker()
    with django_capture_on_commit_callbacks(execute=True):
        hr.delete()
    run_worker()
    doc = _doc("Salary bands")
    assert not doc.published
    assert "Salary bands" not in search("pays")


@pytest.fixture
def broken_index(monkeypatch):
    def fail(*args, **kwargs):
        raise SearchBackendError("index unavailable (test)")

    monkeypatch.setattr(EmbeddedSearchBackend, "_run", fail)


def test_saves_succeed_while_index_is_down_and_sync_index_repairs(
    staff_client, run_worker, search, monkeypatch, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        _assert_saved(
            add_document(staff_client, title="Early doc", body="Parking permits cost 12 euros.")
        )
    run_worker()
    early = _doc("Early doc")

    def fail(*args, **kwargs):
        raise SearchBackendError("index unavailable (test)")

    with monkeypatch.context() as patch:
        patch.setattr(EmbeddedSearchBackend, "_run", fail)
        with django_capture_on_commit_callbacks(execute=True):
            for i in range(3):
                response = add_document(
                    staff_client, title=f"Down doc {i}", body=f"Locker {i} code is 55{i}7."
                )
                _assert_saved(response)
            _assert_saved(
                change_document(staff_client, early, body="Parking permits now cost 15 euros.")
            )
        run_worker()
        failed = Document.objects.filter(index_status=IndexStatus.FAILED)
        assert failed.count() == 4
        assert all("index unavailable" in d.index_error for d in failed)
        changelist = staff_client.get(reverse("admin:knowledge_document_changelist")).content
        assert b"Failed" in changelist and b"index unavailable" in changelist
        with pytest.raises(CommandError, match="search index is not reachable"):
            call_command("sync_index", verbosity=0)

    call_command("sync_index", verbosity=0)
    assert not Document.objects.exclude(index_status=IndexStatus.INDEXED).exists()
    for i in range(3):
        assert f"Down doc {i}" in search(f"55{i}7")
    assert "Early doc" in search("15 euros") and "12 euros" not in search("parking permits")


def test_unwritable_index_file_fails_documents_then_sync_index_recovers(
    staff_client, run_worker, search, settings, tmp_path, django_capture_on_commit_callbacks
):
    good_path = settings.SEARCH_INDEX_PATH
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the index folder should be")
    settings.SEARCH_INDEX_PATH = blocker / "index.sqlite3"
    with django_capture_on_commit_callbacks(execute=True):
        response = add_document(staff_client, title="Pending doc", body="Bike racks: 40")
    _assert_saved(response)
    assert _doc("Pending doc").index_status == IndexStatus.PENDING  # the save did not wait
    run_worker()
    doc = _doc("Pending doc")
    assert doc.index_status == IndexStatus.FAILED and "search index" in doc.index_error

    settings.SEARCH_INDEX_PATH = good_path
    call_command("sync_index", verbosity=0)
    doc.refresh_from_db()
    assert doc.index_status == IndexStatus.INDEXED
    assert "Pending doc" in search("bike racks")


def test_queryset_delete_is_cleaned_up_by_sync_index(run_worker, search):
    coll = Collection.objects.create(name="Handbook")
    for i in range(3):
        Document.objects.create(
            title=f"Doc {i}", body=f"Fact number {i}: zebra{i}.", collection=coll
        )
    call_command("sync_index", verbosity=0)
    assert "Doc 1" in search("zebra1")
    ids = {d.title: d.pk for d in Document.objects.all()}
    Document.objects.filter(title__in=["Doc 0", "Doc 1"]).delete()  # removals queued, not run
    assert _indexed_ids() == set(ids.values())  # the index still has them
    assert "Doc 1" not in search("zebra1")  # but answers check the rows
    call_command("sync_index", verbosity=0)
    assert _indexed_ids() == {ids["Doc 2"]}
    assert "Doc 2" in search("zebra2")


def test_sync_index_rebuild_and_idempotent_tasks(run_worker, search):
    doc = Document.objects.create(title="Rebuilt", body="The fire drill is on 3 March.")
    call_command("sync_index", "--rebuild", verbosity=0)
    assert "Rebuilt" in search("fire drill")
    doc.refresh_from_db()
    indexed_at = doc.indexed_at
    call_command("sync_index", verbosity=0)  # nothing stale: nothing to do
    doc.refresh_from_db()
    assert doc.indexed_at == indexed_at
    from knowledge.tasks import sync_document

    sync_document.call(doc.pk)
    sync_document.call(doc.pk)
    out = search("fire drill")
    assert out.count("[Rebuilt]") == 1
