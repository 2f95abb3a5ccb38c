"""Claims of dead workers. A worker killed mid-task (SIGKILL, OOM, a lost host) leaves its task
RUNNING forever; after `stale_after` we call the claim lost, fail it for the record, and queue the
document's sync again. The document row stayed pending all along, so nothing else is needed."""

from datetime import timedelta

from django.db import transaction
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from knowledge.indexing import mark_pending
from knowledge.models import Document
from knowledge.tasks import enqueue_sync_on_commit, sync_document


class WorkerLost(Exception):
    pass


def recover_stale_claims(stale_after: timedelta) -> list[int]:
    """Fail RUNNING tasks older than `stale_after` and requeue their documents; returns ids."""
    cutoff = timezone.now() - stale_after
    document_ids = []
    with transaction.atomic():
        stale = DBTaskResult.objects.select_for_update(skip_locked=True).filter(
            status="RUNNING", started_at__lt=cutoff
        )
        for result in stale:
            result.set_failed(WorkerLost(f"no worker finished this task within {stale_after}"))
            if result.task_path == sync_document.module_path:
                document_ids.extend(result.args_kwargs.get("args", [])[:1])
        enqueue_sync_on_commit(mark_pending(Document.objects.filter(pk__in=document_ids)))
    return document_ids
