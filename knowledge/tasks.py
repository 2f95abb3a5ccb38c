import logging

from django.db import transaction
from django.tasks import task

from knowledge.index_telemetry import sync_span
from knowledge.indexing import Indexer

log = logging.getLogger(__name__)


# Below every sync: a batch of documents (seed_demo, an ingest) is all searchable by text before
# the worker spends its minutes on the local model's vectors.
VECTORS_PRIORITY = -10


@task(queue_name="indexing")
def sync_document(document_id: int) -> str:
    with sync_span(document_id) as span, Indexer() as indexer:
        outcome = indexer.sync(document_id)
        vectors_pending = indexer.vectors_pending
        span.set_attribute("ragsite.index.outcome", outcome)
    log.info("document %s: %s", document_id, outcome)
    if vectors_pending:
        try:
            add_vectors.enqueue(document_id)
        except Exception:  # searchable by text meanwhile; sync_index makes the vectors
            log.exception("could not enqueue the vectors of document %s", document_id)
    return outcome


@task(queue_name="indexing", priority=VECTORS_PRIORITY)
def add_vectors(document_id: int) -> str:
    with Indexer() as indexer:
        outcome = indexer.add_vectors(document_id)
    log.info("document %s: %s", document_id, outcome)
    return outcome


def enqueue_sync_on_commit(document_ids) -> None:
    """Queue a sync for each document once the surrounding transaction commits.

    A failure to enqueue never fails the save: the row stays pending and `sync_index` finds it.
    """

    def enqueue():
        for document_id in document_ids:
            try:
                sync_document.enqueue(document_id)
            except Exception:
                log.exception("could not enqueue the index sync of document %s", document_id)

    if document_ids:
        transaction.on_commit(enqueue, robust=True)
