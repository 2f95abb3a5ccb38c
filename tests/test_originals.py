"""The uploaded original behind a citation: streamed to whoever may read the document, with its
type and file name; a 404 for everyone else, whatever the id looks like."""

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import Group
from django.core.files.base import ContentFile
from django.core.management import call_command

from knowledge import originals
from knowledge.extract import extract
from knowledge.models import Document
from tests.asgi_client import AsyncClient
from tests.chat_helpers import logged_in
from tests.files import pdf_bytes, pptx_bytes

pytestmark = pytest.mark.django_db(transaction=True)

PDF = pdf_bytes(["Page one.", "Page two: the shuttle leaves at 07:45."], "Shuttle")
DECK = pptx_bytes([{"title": "Salaries", "body": "Band L4 pays 96,000."}])


def _document(name: str, data: bytes, *, groups=(), published=True, **fields) -> Document:
    doc = Document(title=name, published=published, extracted=extract(name, data), **fields)
    doc.file.save(name, ContentFile(data), save=False)
    doc.source_name = name
    doc.save()
    doc.groups.set(groups)
    return doc


@pytest.fixture
def docs(db):
    hr = Group.objects.create(name="HR")
    return {
        "public": _document("shuttle.pdf", PDF),
        "secret": _document("salaries.pptx", DECK, groups=[hr]),
        "draft": _document("draft.pdf", PDF, published=False),
        "page": _document("page.html", b"<script>alert(document.cookie)</script><p>Hi</p>"),
        "typed": Document.objects.create(title="Typed", body="No file here."),
    }


@pytest.fixture
def people(django_user_model):
    hr = Group.objects.get(name="HR")
    member = django_user_model.objects.create_user("hana", password="pw-hana-1")
    member.groups.add(hr)
    outsider = django_user_model.objects.create_user("otto", password="pw-otto-1")
    staff = django_user_model.objects.create_user("sam", password="pw-sam-1", is_staff=True)
    return {"member": member, "outsider": outsider, "staff": staff}


async def _body(response) -> bytes:
    # With its Content-Length set, a streamed body looks to a client like any other.
    if response.streaming:
        return b"".join([chunk async for chunk in response.streaming_content])
    return response.content


async def test_a_public_pdf_streams_inline_to_anyone(docs):
    response = await AsyncClient().get(f"/source/{docs['public'].pk}/original")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == 'inline; filename="shuttle.pdf"'
    assert response["Content-Length"] == str(len(PDF))
    assert "no-store" in response["Cache-Control"] and "private" in response["Cache-Control"]
    assert response["X-Content-Type-Options"] == "nosniff"
    assert await _body(response) == PDF


async def test_a_restricted_deck_only_for_its_group_and_staff(docs, people):
    url = f"/source/{docs['secret'].pk}/original"
    assert (await AsyncClient().get(url)).status_code == 404
    outsider = await logged_in(AsyncClient(), people["outsider"])
    assert (await outsider.get(url)).status_code == 404
    for who in ("member", "staff"):
        client = await logged_in(AsyncClient(), people[who])
        response = await client.get(url)
        assert response.status_code == 200, who
        assert response["Content-Type"] == (
            "application/vnd.openxmlformats-officedocument.presentationml.presentation"
        )
        assert response["Content-Disposition"] == 'attachment; filename="salaries.pptx"'
        assert await _body(response) == DECK


async def test_unpublished_deleted_and_fileless_documents_are_404_for_everyone(docs, people):
    staff = await logged_in(AsyncClient(), people["staff"])
    draft, typed = docs["draft"], docs["typed"]
    assert (await staff.get(f"/source/{draft.pk}/original")).status_code == 404
    assert (await staff.get(f"/source/{typed.pk}/original")).status_code == 404
    gone = docs["public"].pk
    await Document.objects.filter(pk=gone).adelete()
    assert (await staff.get(f"/source/{gone}/original")).status_code == 404


async def test_a_large_original_arrives_whole_a_chunk_at_a_time(db, monkeypatch):
    monkeypatch.setattr(originals, "CHUNK_BYTES", 4096)
    data = pdf_bytes([f"Page {n} of the long manual." for n in range(1, 400)], "Manual")
    doc = await sync_to_async(_document)("manual.pdf", data)
    response = await AsyncClient().get(f"/source/{doc.pk}/original")
    assert response.status_code == 200 and await _body(response) == data


async def test_a_file_missing_from_storage_is_404(docs):
    doc = docs["public"]
    doc.file.storage.delete(doc.file.name)
    assert (await AsyncClient().get(f"/source/{doc.pk}/original")).status_code == 404


async def test_an_uploaded_html_page_is_a_download_never_a_page_of_this_site(docs):
    response = await AsyncClient().get(f"/source/{docs['page'].pk}/original")
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="page.html"'
    assert response["X-Content-Type-Options"] == "nosniff"


async def test_look_alike_ids_reach_nothing_the_caller_may_not_read(docs, people):
    pk = docs["secret"].pk
    outsider = await logged_in(AsyncClient(), people["outsider"])
    member = await logged_in(AsyncClient(), people["member"])
    look_alikes = [
        f"/source/0{pk}/original",
        f"/source/%3{pk}/original" if pk < 10 else f"/source/{pk}%00/original",
        f"/source/{pk}/original/",
        f"/source/{pk}/original/../original",
        f"/source/{pk}.0/original",
        f"/source/-{pk}/original",
        f"/source/{pk + 1000}/original",
        f"/source/{pk}/original?document={docs['public'].pk}",
        f"/source/{docs['public'].pk}/../{pk}/original",
    ]
    for url in look_alikes:
        response = await outsider.get(url)
        assert response.status_code in (404, 301, 302), (url, response.status_code)
        if response.status_code != 404:  # a redirect must not lead to the deck either
            assert (await outsider.get(response["Location"])).status_code == 404, url
    # The same spellings that name the deck work for a member: the check, not the URL, decides.
    assert (await member.get(f"/source/0{pk}/original")).status_code == 200


async def test_the_source_page_links_the_original_at_the_cited_page(docs):
    await sync_to_async(call_command)("sync_index", verbosity=0)
    doc = docs["public"]
    chunk = await doc.chunks.filter(label="page=2").afirst()
    page = await AsyncClient().get(f"/source/{doc.pk}/?chunk={chunk.ordinal}")
    assert f'href="/source/{doc.pk}/original#page=2"'.encode() in page.content
    typed = await AsyncClient().get(f"/source/{docs['typed'].pk}/")
    assert b"Open the original" not in typed.content
