"""A task worker killed (SIGKILL) in the middle of a sync: the next worker detects the stale claim
and the document is indexed; nothing stays pending forever. Real processes, a real database file,
and the fake Azure AI Search holding the worker mid-upload."""

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OWN_PREFIXES = ("DATABASE_", "REDIS_", "OPENAI_", "AZURE_", "SEARCH_", "CHAT_", "RAGSITE_")


def _wait_for(predicate, seconds, what):
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


@pytest.mark.own_configuration
def test_killed_worker_leaves_nothing_stuck(tmp_path, fake_search):
    env = {k: v for k, v in os.environ.items() if not k.startswith(OWN_PREFIXES)}
    env.update(
        RAGSITE_DATA_DIR=str(tmp_path),
        SEARCH_BACKEND="azure",
        AZURE_SEARCH_ENDPOINT=fake_search.endpoint,
        AZURE_SEARCH_KEY=fake_search.api_key,
        AZURE_SEARCH_RETRIES="0",
        AZURE_SEARCH_TIMEOUT="60",
        PYTHONUNBUFFERED="1",
    )

    def manage(*args, **kwargs):
        return subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, timeout=120,
            capture_output=True, text=True, **kwargs,
        )  # fmt: skip

    manage("migrate", "-v", "0")
    manage("search_index", "--create")
    create = "Document.objects.create(title='Boiler room', body='The boiler room key is blue.')"
    manage("shell", "-c", f"from knowledge.models import Document; {create}")
    db = sqlite3.connect(tmp_path / "db.sqlite3")

    def task_statuses():
        return [
            row[0] for row in db.execute("SELECT status FROM django_tasks_database_dbtaskresult")
        ]

    def document_status():
        return db.execute("SELECT index_status FROM knowledge_document").fetchone()[0]

    assert task_statuses() == ["READY"] and document_status() == "pending"
    fake_search.hang_next(operation="index")  # the upload never returns: the worker is mid-sync
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "db_worker", "--queue-name", "*", "--interval", "0.1"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for(lambda: task_statuses() == ["RUNNING"], 30, "the worker never claimed the task")
        _wait_for(
            lambda: any(r.endpoint == "index" for r in fake_search.requests),
            30,
            "the worker never started uploading",
        )
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert task_statuses() == ["RUNNING"] and document_status() == "pending"  # stuck, as feared

    # The next worker run notices the dead worker's claim and finishes the job.
    manage("db_worker", "--queue-name", "*", "--batch", "--no-startup-delay", "--stale-after", "0")
    assert document_status() == "indexed"
    statuses = sorted(task_statuses())
    assert statuses[0] == "FAILED" and set(statuses[1:]) == {"SUCCESSFUL"}
    failure = db.execute(
        "SELECT exception_class_path FROM django_tasks_database_dbtaskresult WHERE status='FAILED'"
    ).fetchone()[0]
    assert failure == "knowledge.stale.WorkerLost"
    stored = fake_search.documents("ragsite")
    assert [d["content"] for d in stored.values()] == ["The boiler room key is blue."]
    db.close()


@pytest.mark.django_db
def test_sync_index_also_recovers_stale_claims():
    from django.core.management import call_command
    from django.utils import timezone
    from django_tasks_db.models import DBTaskResult

    from knowledge.models import Document
    from knowledge.tasks import sync_document

    doc = Document.objects.create(title="Attic", body="The attic ladder is in room 4.")
    sync_document.enqueue(doc.pk)  # claimed by a worker that then died:
    DBTaskResult.objects.update(status="RUNNING", started_at=timezone.now())
    call_command("sync_index", "--stale-after", "0", verbosity=0)
    assert DBTaskResult.objects.filter(status="FAILED").count() == 1
    doc.refresh_from_db()
    assert doc.index_status == "indexed"
