"""The page of a cited document: the passage highlighted, for readers the document allows."""

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse

from core.responses import private
from knowledge.access import access_for, can_read
from knowledge.models import Document


async def source(request: HttpRequest, document_id: int) -> HttpResponse:
    """A document with the cited passage highlighted; 404 for what the user may not read."""
    user = request.user = await request.auser()  # templates read request.user
    access = await access_for(user)
    doc = (
        await Document.objects.select_related("collection")
        .filter(pk=document_id, published=True)
        .afirst()
    )
    if doc is None:
        raise Http404("No such document.")
    group_ids = [pk async for pk in doc.groups.values_list("pk", flat=True)]
    if not can_read(access, group_ids):
        raise Http404("No such document.")
    try:
        highlight = int(request.GET.get("chunk", ""))
    except ValueError:
        highlight = None
    chunks = [c async for c in doc.chunks.order_by("ordinal")]
    cited = next((c for c in chunks if c.ordinal == highlight), None)
    # A browser's PDF viewer opens at #page=N; other originals open (or download) whole.
    anchor = f"#{cited.label}" if cited and cited.label.startswith("page=") else ""
    original_url = reverse("knowledge:original", args=[doc.pk]) + anchor if doc.file else ""
    return private(
        render(
            request,
            "knowledge/source.html",
            {
                "document": doc,
                "chunks": chunks,
                "highlight": highlight,
                "original_url": original_url,
            },
        )
    )
