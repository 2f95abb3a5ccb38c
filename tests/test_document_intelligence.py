"""Images and scanned PDFs through Azure AI Document Intelligence: the real SDK over HTTP to the
fake service (long-running operation, throttling), page labels kept for citations, and a clear
error when the service is not configured, fails, or refuses the file."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command

from knowledge import document_intelligence
from knowledge.extract import ExtractionError, extract, guess_title
from knowledge.models import Document
from tests.admin_forms import add_document
from tests.fakes.document_intelligence_server import DEFAULT_KEY, FakeDocumentIntelligence
from tests.files import pdf_bytes

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(range(200))
PLAN = [
    '# Floor plan\n\nThe fire exit is next to room 4.\n\n<!-- PageFooter="Page 1 of 2" -->',
    '| Room | Seats |\n|---|---|\n| Atlas | 8 |\n\n<figure>\n\n<!-- PageNumber="2" -->\n\n'
    "</figure>",
]


@pytest.fixture
def fake_di(settings):
    server = FakeDocumentIntelligence()
    server.start()
    settings.DOCUMENT_INTELLIGENCE_ENDPOINT = server.base_url
    settings.DOCUMENT_INTELLIGENCE_KEY = DEFAULT_KEY
    document_intelligence._client.cache_clear()
    yield server
    server.stop()
    document_intelligence._client.cache_clear()


def test_an_image_is_read_page_by_page_through_the_layout_model(fake_di):
    fake_di.add(PNG, PLAN)
    segments = extract("plan.png", PNG)
    assert [s["label"] for s in segments] == ["page=1", "page=2"]
    assert "The fire exit is next to room 4." in segments[0]["text"]
    assert "Atlas" in segments[1]["text"] and "8" in segments[1]["text"]
    text = " ".join(s["text"] for s in segments)
    assert "PageFooter" not in text and "PageNumber" not in text and "<figure>" not in text
    analyze = fake_di.analyze_requests()
    assert len(analyze) == 1 and analyze[0].status == 202
    assert analyze[0].query["outputContentFormat"] == "markdown"
    assert analyze[0].content_type == "application/octet-stream" and analyze[0].size == len(PNG)
    assert "prebuilt-layout:analyze" in analyze[0].path
    polls = [s for s in fake_di.seen if s.method == "GET"]
    assert [s.status for s in polls] == [200, 200]  # running, then succeeded


def test_throttling_is_waited_out_with_retry_after(fake_di):
    fake_di.throttle = 1
    fake_di.add(PNG, ["Parking is behind building C."])
    assert "building C" in extract("p.png", PNG)[0]["text"]
    assert [s.status for s in fake_di.analyze_requests()] == [429, 202]


def test_a_scanned_pdf_goes_to_document_intelligence_only_when_it_has_no_text(fake_di):
    scanned = pdf_bytes([""])
    fake_di.add(scanned, ["# Visitor policy\n\nVisitors sign in at reception."])
    segments = extract("scan.pdf", scanned)
    assert segments == [
        {"label": "page=1", "text": "Visitor policy.\n\nVisitors sign in at reception.\n\n"}
    ]
    assert guess_title("scan.pdf", scanned, segments) == "Scan"  # no text layer to ask
    text_pdf = pdf_bytes(["Lunch is at noon."])
    assert "Lunch is at noon." in extract("menu.pdf", text_pdf)[0]["text"]
    assert len(fake_di.analyze_requests()) == 1


def test_every_pdf_through_document_intelligence_when_asked(fake_di, settings):
    settings.DOCUMENT_INTELLIGENCE_FOR_PDF = True
    text_pdf = pdf_bytes(["Lunch is at noon."])
    fake_di.add(text_pdf, ["| Meal | Time |\n|---|---|\n| Lunch | noon |"])
    assert "Lunch" in extract("menu.pdf", text_pdf)[0]["text"]
    assert len(fake_di.analyze_requests()) == 1


def test_a_failed_analysis_is_a_clear_error(fake_di):
    fake_di.fail_for(PNG)
    with pytest.raises(ExtractionError, match="Document Intelligence could not read the file"):
        extract("broken.png", PNG)


def test_a_wrong_key_is_an_unavailable_service_not_a_traceback(fake_di, settings):
    settings.DOCUMENT_INTELLIGENCE_KEY = "wrong"
    with pytest.raises(ExtractionError, match=r"unavailable right now \(HTTP 401\)"):
        extract("a.png", PNG)


def test_an_unreachable_service_is_a_clear_error(settings):
    server = FakeDocumentIntelligence()
    server.start()
    server.stop()  # its port now refuses connections
    settings.DOCUMENT_INTELLIGENCE_ENDPOINT = server.base_url
    settings.DOCUMENT_INTELLIGENCE_KEY = DEFAULT_KEY
    document_intelligence._client.cache_clear()
    try:
        with pytest.raises(ExtractionError, match="unavailable right now"):
            extract("a.png", PNG)
    finally:
        document_intelligence._client.cache_clear()


def test_an_analysis_that_does_not_finish_in_time_is_a_clear_error(fake_di, settings):
    settings.DOCUMENT_INTELLIGENCE_TIMEOUT_SECONDS = 1
    fake_di.polls_before_done = 10_000
    fake_di.poll_retry_after = 1
    with pytest.raises(ExtractionError, match="did not finish reading the file within 1 s"):
        extract("slow.png", PNG)


def test_a_file_that_is_not_the_image_it_claims_never_leaves(fake_di):
    with pytest.raises(ExtractionError, match="This is not a PNG image"):
        extract("fake.png", b"MZ\x90\x00 an executable")
    assert fake_di.seen == []


def test_without_document_intelligence_images_and_scans_say_what_they_need(settings):
    settings.DOCUMENT_INTELLIGENCE_ENDPOINT = ""
    with pytest.raises(ExtractionError, match="Reading images needs Azure AI Document Intell"):
        extract("plan.png", PNG)
    with pytest.raises(ExtractionError, match="Scanned pages are read when Azure AI Document"):
        extract("scan.pdf", pdf_bytes([""]))


@pytest.mark.django_db
def test_admin_image_upload_without_the_service_is_a_form_error(staff_client, settings):
    settings.DOCUMENT_INTELLIGENCE_ENDPOINT = ""
    response = add_document(
        staff_client,
        title="Plan",
        file=SimpleUploadedFile("plan.jpg", b"\xff\xd8\xff\xe0" + b"x" * 100),
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors["file"]
    assert any("needs Azure AI Document Intelligence" in e for e in errors), errors
    assert not Document.objects.exists()


@pytest.mark.django_db
def test_admin_image_upload_cites_its_pages(
    staff_client, fake_di, django_capture_on_commit_callbacks, search
):
    fake_di.add(PNG, PLAN)
    with django_capture_on_commit_callbacks(execute=True):
        response = add_document(
            staff_client, title="Plan", file=SimpleUploadedFile("plan.png", PNG)
        )
    assert response.status_code == 302
    call_command("sync_index", verbosity=0)
    assert "plan.png#page=1" in search("where is the fire exit")
