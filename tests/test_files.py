"""Uploaded files: text extraction; bad files refused with clear messages (admin and ingest)."""

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command

from knowledge import extract as extract_module
from knowledge.extract import ExtractionError, extract, guess_title
from knowledge.models import Document
from tests.admin_forms import add_document
from tests.files import docx_bytes, encrypted_pdf_bytes, pdf_bytes, zip_bomb_docx

HTML = b"""<html><head><title>Office guide</title><style>.x{color:red}</style>
<script>alert('never indexed')</script></head>
<body><nav style="display:none">hidden menu</nav><h1>Office guide</h1>
<p>The <b>Porto</b> office has 40 desks.</p><h2>Parking</h2><p>Spaces cost 9 euros.</p>
<template>template text</template></body></html>"""


def test_pdf_pages_are_kept_as_labels():
    data = pdf_bytes(["Page one talks about apples.", "Page two talks about pears."], "Fruit")
    segments = extract("fruit.pdf", data)
    assert [s["label"] for s in segments] == ["page=1", "page=2"]
    assert "pears" in segments[1]["text"] and "pears" not in segments[0]["text"]
    assert guess_title("fruit.pdf", data, segments) == "Fruit"


def test_html_keeps_visible_text_only_by_section():
    segments = extract("guide.html", HTML)
    text = " ".join(s["text"] for s in segments)
    assert "40 desks" in text and "9 euros" in text
    for hidden in ("alert", "never indexed", "hidden menu", "color:red", "template text"):
        assert hidden not in text
    assert [s["label"] for s in segments if s["label"]] == ["Office guide", "Parking"]
    assert guess_title("guide.html", HTML, segments) == "Office guide"


def test_hidden_html_inside_hidden_html_is_dropped_once():
    html = (
        b'<div style="display:none"><p style="visibility:hidden">gone</p>'
        b"<span hidden>also gone</span></div><p>Desks are free on Fridays.</p>"
    )
    text = " ".join(s["text"] for s in extract("nested.html", html))
    assert "Desks are free on Fridays." in text and "gone" not in text


def test_markdown_docx_and_text():
    md = extract("x.md", b"# Travel\n\nTrains over **4 hours** may be first class.\n")
    assert md[-1]["label"] == "Travel" and "4 hours may be first class" in md[-1]["text"]
    data = docx_bytes("Expenses", ["Receipts are due within 30 days."])
    segments = extract("expenses.docx", data)
    assert "30 days" in " ".join(s["text"] for s in segments)
    assert guess_title("expenses.docx", data, segments) == "Expenses"
    assert extract("a.txt", "Café hours: 8–16".encode())[0]["text"] == "Café hours: 8–16"
    assert extract("latin.txt", "Olá".encode("cp1252"))[0]["text"] == "Olá"


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("broken.pdf", b"%PDF-1.4\n1 0 obj << /Type /Catalog >>\ngarbage", "damaged"),
        ("fake.pdf", b"MZ\x90\x00 this is an exe", "not a PDF"),
        ("locked.pdf", None, "password-protected"),
        ("tool.exe", b"MZ\x90\x00", "Unsupported file type '.exe'"),
        ("noext", b"hello", "Unsupported file type '(no extension)'"),
        ("empty.txt", b"   \n", "empty"),
        ("binary.txt", b"\x00\x01\x02" * 10, "binary data"),
        ("broken.docx", b"PK\x03\x04 not really a zip", "damaged"),
        ("notword.docx", None, "not a Word document"),
        ("image.pdf", None, "No text could be extracted"),
    ],
)
def test_bad_files_have_clear_messages(name, data, message):
    if name == "locked.pdf":
        data = encrypted_pdf_bytes()
    elif name == "notword.docx":
        import io
        import zipfile

        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as archive:
            archive.writestr("hello.txt", "hi")
        data = out.getvalue()
    elif name == "image.pdf":
        data = pdf_bytes([""])
    with pytest.raises(ExtractionError, match=re.escape(message)):
        extract(name, data)


def test_zip_bomb_docx_is_refused_before_unpacking(monkeypatch):
    # In this process (`read`): the sandbox's child has its own copy of the limit.
    monkeypatch.setattr(extract_module, "DOCX_MAX_UNPACKED_BYTES", 5 * 1024 * 1024)
    bomb = zip_bomb_docx(unpacked_mb=20)
    assert len(bomb) < 100_000
    with pytest.raises(ExtractionError, match="would unpack to 20 MB"):
        extract_module.read("bomb.docx", bomb)


def test_oversized_file_is_refused(settings):
    settings.KNOWLEDGE_MAX_UPLOAD_BYTES = 1024 * 1024
    with pytest.raises(ExtractionError, match="the limit is 1 MB"):
        extract("big.txt", b"a" * (1024 * 1024 + 1))


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("broken.pdf", b"%PDF-1.4\ngarbage without structure", "The PDF is damaged"),
        ("tool.exe", b"MZ\x90\x00", "Unsupported file type"),
        ("big.txt", b"x" * (2 * 1024 * 1024), "the limit is 1 MB"),
    ],
)
def test_admin_upload_of_bad_file_is_a_form_error_and_saves_nothing(
    staff_client, settings, name, data, message
):
    settings.KNOWLEDGE_MAX_UPLOAD_BYTES = 1024 * 1024
    response = add_document(staff_client, title="Bad upload", file=SimpleUploadedFile(name, data))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors["file"]
    assert any(message in e for e in errors), errors
    assert message.encode() in response.content
    assert not Document.objects.exists()


@pytest.mark.django_db
def test_admin_upload_shows_extracted_text(staff_client, django_capture_on_commit_callbacks):
    data = pdf_bytes(["Shuttle bus leaves at 07:45.", "Return at 18:10."], "Shuttle")
    with django_capture_on_commit_callbacks(execute=True):
        response = add_document(
            staff_client, title="Shuttle", file=SimpleUploadedFile("shuttle.pdf", data)
        )
    assert response.status_code == 302
    doc = Document.objects.get()
    assert doc.citation_name == "shuttle.pdf"
    page = staff_client.get(f"/admin/knowledge/document/{doc.pk}/change/")
    assert b"page=2" in page.content and b"Return at 18:10." in page.content


@pytest.mark.django_db
def test_ingest_reports_failures_and_saves_only_good_files(tmp_path, capsys):
    folder = tmp_path / "kb"
    folder.mkdir()
    (folder / "good.md").write_text("# Good\n\nThe bike shed is behind building C.\n")
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4\nnope")
    (folder / "locked.pdf").write_bytes(encrypted_pdf_bytes())
    (folder / "photo.jpg").write_bytes(b"\xff\xd8\xff")
    (folder / "tool.exe").write_bytes(b"MZ\x90\x00")
    with pytest.raises(CommandError, match="3 file"):
        call_command("ingest", str(folder), "--collection", "handbook")
    captured = capsys.readouterr()
    assert "1 created, 0 updated, 0 unchanged, 3 failed, 1 skipped." in captured.out
    assert "skipped " in captured.out and "tool.exe: unsupported file type" in captured.out
    assert "broken.pdf: The PDF is damaged" in captured.err
    assert "locked.pdf: The PDF is password-protected" in captured.err
    assert "photo.jpg: Reading images needs Azure AI Document Intelligence" in captured.err
    assert list(Document.objects.values_list("title", flat=True)) == ["Good"]


@pytest.mark.django_db
def test_ingest_again_updates_instead_of_duplicating(tmp_path, run_worker, search, make_user):
    path = tmp_path / "policy.md"
    path.write_text("# Policy\n\nThe gym opens at 06:00.\n")
    call_command("ingest", str(path), "--collection", "hr", "--groups", "HR", verbosity=0)
    path.write_text("# Policy\n\nThe gym opens at 07:00.\n")
    call_command("ingest", str(path), "--collection", "hr", "--groups", "HR", verbosity=0)
    doc = Document.objects.get()
    assert [g.name for g in doc.groups.all()] == ["HR"] and doc.collection.slug == "hr"
    assert "07:00" in doc.segments()[0]["text"]
    assert "06:00" not in doc.segments()[0]["text"]
    call_command("sync_index", verbosity=0)
    hr_view = search("gym opens", user=make_user("hana", "HR").username)
    assert "Policy" in hr_view and "07:00" in hr_view and "06:00" not in hr_view
    anonymous_view = search("gym opens")  # HR only: anonymous sees nothing
    assert "Policy" not in anonymous_view and "07:00" not in anonymous_view


@pytest.mark.django_db
def test_ingest_refuses_a_huge_file_without_reading_it(tmp_path, settings, monkeypatch, capsys):
    settings.KNOWLEDGE_MAX_UPLOAD_BYTES = 1024 * 1024
    huge = tmp_path / "huge.txt"
    with huge.open("wb") as handle:  # sparse: 3 GB on paper, nothing on disk
        handle.truncate(3 * 1024**3)
    from pathlib import Path

    def never(self):
        raise AssertionError("the huge file was read")

    monkeypatch.setattr(Path, "read_bytes", never)
    with pytest.raises(CommandError):
        call_command("ingest", str(huge))
    assert "3072.0 MB; the limit is 1 MB" in capsys.readouterr().err
    assert not Document.objects.exists()
