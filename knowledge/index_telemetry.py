"""The index's figures for OpenTelemetry: a span per sync task, and, from the task worker,
how many documents wait for the index and how many failed (read from the rows, which are the
truth about the index's state)."""

from __future__ import annotations

from contextlib import AbstractContextManager

from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.trace import Span

from core.telemetry import meter, tracer


def sync_span(document_id: int) -> AbstractContextManager[Span]:
    return tracer.start_as_current_span(
        "index sync", attributes={"ragsite.document.id": document_id}
    )


def _counts(_options: CallbackOptions) -> list[Observation]:
    from django.db import close_old_connections

    from knowledge.models import Document, IndexStatus

    close_old_connections()  # runs on the metric reader's own thread
    try:
        pending = Document.objects.filter(index_status=IndexStatus.PENDING).count()
        failed = Document.objects.filter(index_status=IndexStatus.FAILED).count()
    except Exception:  # the database is away: no figure this round
        return []
    return [
        Observation(pending, {"ragsite.index.state": "pending"}),
        Observation(failed, {"ragsite.index.state": "failed"}),
    ]


def observe_queue() -> None:
    """Register the gauges (once, in the task worker: web processes never count rows)."""
    meter.create_observable_gauge(
        "ragsite.index.documents",
        callbacks=[_counts],
        description="documents waiting for the index (pending) or failed",
    )
