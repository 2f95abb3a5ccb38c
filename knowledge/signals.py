"""Every change that alters what the index should hold marks the document pending and queues its
sync on commit: saves, deletes, access-group changes, collection renames, group deletions."""

from django.contrib.auth.models import Group
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_delete
from django.dispatch import receiver
from django.utils import timezone

from knowledge.indexing import mark_pending
from knowledge.models import Collection, Document, IndexStatus
from knowledge.tasks import enqueue_sync_on_commit


@receiver(post_save, sender=Document, dispatch_uid="knowledge.document_saved")
def document_saved(sender, instance: Document, raw=False, **kwargs):
    if not raw and instance.index_status == IndexStatus.PENDING:
        enqueue_sync_on_commit([instance.pk])


@receiver(post_delete, sender=Document, dispatch_uid="knowledge.document_deleted")
def document_deleted(sender, instance: Document, **kwargs):
    enqueue_sync_on_commit([instance.pk])


@receiver(m2m_changed, sender=Document.groups.through, dispatch_uid="knowledge.groups_changed")
def document_groups_changed(sender, instance, action, reverse, pk_set, **kwargs):
    if action not in ("post_add", "post_remove", "post_clear"):
        return
    if reverse:  # group.documents.add(...): pk_set holds documents (None on clear)
        docs = Document.objects.filter(pk__in=pk_set) if pk_set else instance.documents.all()
    else:
        docs = Document.objects.filter(pk=instance.pk)
    changed = [d.pk for d in docs if d.compute_content_hash() != d.content_hash]
    enqueue_sync_on_commit(mark_pending(Document.objects.filter(pk__in=changed)))


@receiver(post_save, sender=Collection, dispatch_uid="knowledge.collection_saved")
def collection_saved(sender, instance: Collection, created=False, raw=False, **kwargs):
    if not created and not raw:
        stale = [
            d.pk
            for d in instance.documents.select_related("collection")
            if d.compute_content_hash() != d.content_hash
        ]
        enqueue_sync_on_commit(mark_pending(Document.objects.filter(pk__in=stale)))


@receiver(pre_delete, sender=Group, dispatch_uid="knowledge.group_deleting")
def group_deleting(sender, instance: Group, **kwargs):
    """Fail closed: a document readable only by the deleted group would otherwise turn public
    (no groups means everyone), so it is unpublished and staff see why."""
    docs = list(instance.documents.all())
    for doc in docs:
        if doc.groups.count() == 1 and doc.published:
            Document.objects.filter(pk=doc.pk).update(
                published=False,
                index_error=f"Unpublished because its only access group {instance.name!r} "
                "was deleted; choose new groups and publish it again.",
                updated_at=timezone.now(),
            )
    # Carried on the instance to the post_delete receiver below.
    instance._affected_documents = [d.pk for d in docs]  # type: ignore[attr-defined]


@receiver(post_delete, sender=Group, dispatch_uid="knowledge.group_deleted")
def group_deleted(sender, instance: Group, **kwargs):
    ids = getattr(instance, "_affected_documents", [])
    enqueue_sync_on_commit(mark_pending(Document.objects.filter(pk__in=ids)))
