"""Hostile files: each is read within a CPU, memory and wall-clock budget, in a child process and
outside any database transaction; an overrun is one clear form error or `ingest` failure line,
and chat keeps answering while such a file is being parsed."""

import asyncio
import json
import os
import sqlite3
import threading
import time

import pytest
from asgiref.sync import sync_to_async
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.db import connection, connections

from knowledge import forms, sandbox
from knowledge.extract import ExtractionError, extract
from knowledge.models import Document
from tests.admin_forms import add_document
from tests.asgi_client import AsyncClient, Client
from tests.chat_helpers import ask, build_kb
from tests.files import (
    docx_bytes,
    empty_paragraphs_docx,
    grid_span_docx,
    many_tags_html,
    nested_list_markdown,
    pdf_bytes,
)

# Large enough to need several seconds of CPU or hundreds of MB, small enough to build at once.
MANY_TAGS = 200_000
LIST_ITEMS = 100_000


@pytest.fixture(autouse=True)
def small_budgets(settings):
    settings.EXTRACT_CPU_SECONDS = 1
    settings.EXTRACT_MEMORY_MB = 512
    # Generous: the machine may be busy, and CPU time, not wall time, is what a parser spends.
    settings.EXTRACT_TIMEOUT_SECONDS = 120
    return settings


def _file_errors(response) -> list[str]:
    assert response.status_code == 200, response.status_code
    return list(response.context["adminform"].form.errors.get("file", []))


def test_grid_span_docx_reads_the_cell_once():
    data = grid_span_docx(1_000_000, text="Quarterly totals")
    assert len(data) < 50_000
    text = " ".join(s["text"] for s in extract("budget.docx", data))
    assert text.count("Quarterly totals") == 1
    assert "Budget table follows." in text


def test_empty_paragraphs_docx_is_read_within_the_budget():
    data = empty_paragraphs_docx(1_000_000)
    assert len(data) < 100_000
    segments = extract("empty.docx", data)
    assert "The only real paragraph." in segments[-1]["text"]


@pytest.mark.django_db
def test_html_over_the_cpu_budget_is_a_form_error(staff_client):
    upload = SimpleUploadedFile("tags.html", many_tags_html(MANY_TAGS))
    errors = _file_errors(add_document(staff_client, title="Tags", file=upload))
    assert any("took too long to read (more than 1 s of processing)" in e for e in errors), errors
    assert not Document.objects.exists()


@pytest.mark.django_db
def test_markdown_over_the_memory_budget_is_a_form_error(staff_client, settings):
    settings.EXTRACT_MEMORY_MB = 32
    settings.EXTRACT_CPU_SECONDS = 60  # memory runs out first
    upload = SimpleUploadedFile("lists.md", nested_list_markdown(LIST_ITEMS))
    errors = _file_errors(add_document(staff_client, title="Lists", file=upload))
    assert any("took too much memory to read (more than 32 MB)" in e for e in errors), errors
    assert not Document.objects.exists()


def _pdf_with_filter(name: bytes) -> bytes:
    data = pdf_bytes(["Visible words on the page."])
    assert b"/FlateDecode" in data
    return data.replace(b"/FlateDecode", name)


@pytest.mark.django_db
def test_ingest_reports_each_hostile_file_and_ingests_the_rest(tmp_path, capsys):
    folder = tmp_path / "kb"
    folder.mkdir()
    (folder / "a-good.md").write_text("# Bikes\n\nThe bike shed is behind building C.\n")
    (folder / "b-foo-filter.pdf").write_bytes(_pdf_with_filter(b"/FooDecode"))
    (folder / "c-short-filter.pdf").write_bytes(_pdf_with_filter(b"/Fl"))
    (folder / "d-tags.html").write_bytes(many_tags_html(MANY_TAGS))
    (folder / "e-good.docx").write_bytes(docx_bytes("Canteen", ["Lunch is served from noon."]))
    (folder / "f-span.docx").write_bytes(grid_span_docx(99_999_999, text="Rota"))
    with pytest.raises(CommandError, match="3 file"):
        call_command("ingest", str(folder), "--collection", "handbook")
    captured = capsys.readouterr()
    assert "3 created, 0 updated, 0 unchanged, 3 failed, 0 skipped." in captured.out
    failures = [line.strip() for line in captured.err.splitlines() if "FAILED" in line]
    assert len(failures) == 3, captured.err
    assert any("b-foo-filter.pdf: The PDF uses a feature" in f for f in failures), failures
    assert any("c-short-filter.pdf: The PDF uses a feature" in f for f in failures), failures
    assert any("d-tags.html: The file took too long to read" in f for f in failures), failures
    assert "Traceback" not in captured.err
    assert sorted(Document.objects.values_list("source_name", flat=True)) == [
        "a-good.md",
        "e-good.docx",
        "f-span.docx",
    ]


@pytest.mark.django_db
@pytest.mark.parametrize("filter_name", [b"/FooDecode", b"/Fl"])
def test_admin_upload_of_a_pdf_with_an_unknown_filter_is_a_form_error(staff_client, filter_name):
    upload = SimpleUploadedFile("filtered.pdf", _pdf_with_filter(filter_name))
    errors = _file_errors(add_document(staff_client, title="Filtered", file=upload))
    assert any("The PDF uses a feature this reader does not support" in e for e in errors), errors
    assert not Document.objects.exists()


def test_a_crashed_or_stalled_child_is_an_error_and_the_next_file_still_reads():
    budget = sandbox.Budget(cpu_seconds=5, memory_mb=256, timeout_seconds=120)
    with pytest.raises(sandbox.ChildFailed):
        sandbox.run(os.abort, budget=budget)
    stalled = sandbox.Budget(cpu_seconds=5, memory_mb=256, timeout_seconds=0.5)
    with pytest.raises(sandbox.BudgetExceeded) as exc:
        sandbox.run(time.sleep, 600, budget=stalled)
    assert exc.value.kind == "time"
    assert sandbox.run(os.getpid, budget=budget) != os.getpid()
    assert extract("ok.txt", b"Still fine.")[0]["text"] == "Still fine."


def _write_lock_is_free() -> bool:
    """Whether another connection could start writing to the SQLite file right now."""
    probe = sqlite3.connect(connection.settings_dict["NAME"], timeout=0)
    try:
        probe.execute("BEGIN IMMEDIATE")
        probe.rollback()
        return True
    except sqlite3.OperationalError:  # "database is locked"
        return False
    finally:
        probe.close()


def _watch_extraction(monkeypatch, while_parsing):
    """Make the admin's extraction call `while_parsing()` first, and hold the upload's response
    until `release` is set; return (parsing, release)."""
    real_extract = forms.extract
    parsing, release = threading.Event(), threading.Event()

    def watched(name, data):
        parsing.set()
        while_parsing()
        try:
            return real_extract(name, data)
        finally:
            release.wait(120)

    monkeypatch.setattr(forms, "extract", watched)
    return parsing, release


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(
    os.environ.get("DATABASE_URL", "").startswith("postgres"),
    reason="SQLite's database-wide write lock; PostgreSQL locks rows",
)
def test_no_write_lock_is_held_while_an_upload_is_parsed(staff_user, monkeypatch):
    lock_free: list[bool] = []
    parsing, release = _watch_extraction(
        monkeypatch, lambda: lock_free.append(_write_lock_is_free())
    )
    release.set()
    client = Client()
    client.force_login(staff_user)
    upload = SimpleUploadedFile("empty.docx", empty_paragraphs_docx(300_000))
    response = add_document(client, title="Mostly empty", file=upload)
    assert parsing.is_set()
    assert lock_free == [True]
    assert response.status_code == 302
    assert "The only real paragraph." in Document.objects.get().segments()[-1]["text"]


async def _chats(count: int) -> list[int]:
    client = AsyncClient()

    async def one(i: int) -> int:
        body = ask(f"How many unused vacation days carry over? ({i})")
        response = await client.post("/chat", json.dumps(body), content_type="application/json")
        return response.status_code

    return list(await asyncio.gather(*(one(i) for i in range(count))))


@pytest.mark.django_db(transaction=True)
def test_chat_keeps_answering_while_a_hostile_upload_is_parsed(staff_user, settings, monkeypatch):
    settings.CHAT_STREAM_DELAY_SECONDS = 0
    build_kb()
    parsing, release = _watch_extraction(monkeypatch, lambda: None)
    outcome = {}

    def upload():
        try:
            client = Client()
            client.force_login(staff_user)
            hostile = SimpleUploadedFile("tags.html", many_tags_html(MANY_TAGS))
            outcome["response"] = add_document(client, title="Tags", file=hostile)
            outcome["chats_had_finished"] = outcome.get("chats") is not None
        finally:
            connections.close_all()  # this thread's; the test database is dropped after

    uploader = threading.Thread(target=upload)
    uploader.start()
    try:
        assert parsing.wait(60), "the upload never reached extraction"
        # Chats that start while the file is parsed (its response held back until they end).
        outcome["chats"] = asyncio.run(_chats(4))
        asyncio.run(sync_to_async(connections.close_all)())  # the chats' ORM thread's
    finally:
        release.set()
        uploader.join(180)
    assert outcome["chats"] == [200] * 4
    assert outcome["chats_had_finished"]
    errors = _file_errors(outcome["response"])
    assert any("took too long to read" in e for e in errors), errors
    assert not Document.objects.filter(title="Tags").exists()


def test_every_budget_error_is_an_extraction_error(settings):
    settings.EXTRACT_MEMORY_MB = 32
    settings.EXTRACT_CPU_SECONDS = 60
    with pytest.raises(ExtractionError, match="too much memory"):
        extract("lists.md", nested_list_markdown(LIST_ITEMS))
