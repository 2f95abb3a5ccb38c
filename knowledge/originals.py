"""The uploaded original of a document, streamed to a user who may read the document.

The same rule as the document's source page: published, and public or in one of the user's
groups (staff read everything); anything else, a missing file included, is a 404, so a
document's existence does not leak. The file comes from whichever storage holds the originals
(local disk or Azure Blob Storage), read a chunk at a time off the event loop.

Only types a browser shows without running anything of the file's (PDF, images, plain text)
are sent inline, so a PDF opens at `#page=N`; everything else, HTML above all, is a download:
an uploaded page must never run as this site.
"""

import mimetypes
from pathlib import PurePath

from asgiref.sync import sync_to_async
from django.http import Http404, StreamingHttpResponse
from django.utils.http import content_disposition_header

from core.responses import private
from knowledge.access import access_for, can_read
from knowledge.models import Document

CHUNK_BYTES = 256 * 1024
_INLINE = {
    "application/pdf", "image/png", "image/jpeg", "image/tiff", "image/bmp", "text/plain",
}  # fmt: skip
# Office types the mimetypes table may lack on a slim host.
_TYPES = {
    ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".csv": "text/csv",
    ".json": "application/json",
}


async def readable_original(user, document_id: int) -> Document:
    """The document whose original `user` may open, else Http404."""
    access = await access_for(user)
    doc = await Document.objects.filter(pk=document_id, published=True).afirst()
    if doc is None or not doc.file:
        raise Http404("No such document.")
    group_ids = [pk async for pk in doc.groups.values_list("pk", flat=True)]
    if not can_read(access, group_ids):
        raise Http404("No such document.")
    return doc


def content_type_for(name: str) -> str:
    ext = PurePath(name).suffix.lower()
    return _TYPES.get(ext) or mimetypes.guess_type(name)[0] or "application/octet-stream"


async def original(request, document_id: int):
    doc = await readable_original(await request.auser(), document_id)
    file_name = doc.file.name
    if not file_name:  # readable_original already refuses a document without a file
        raise Http404("No such document.")
    name = PurePath(doc.source_name or file_name).name
    try:
        handle = await sync_to_async(doc.file.storage.open, thread_sensitive=False)(file_name, "rb")
        size = await sync_to_async(doc.file.storage.size, thread_sensitive=False)(file_name)
    except (FileNotFoundError, OSError) as exc:
        raise Http404("No such document.") from exc
    content_type = content_type_for(name)
    if content_type.startswith("text/"):
        content_type += "; charset=utf-8" if content_type == "text/plain" else ""
    inline = content_type.split(";")[0] in _INLINE
    response = StreamingHttpResponse(_chunks(handle), content_type=content_type)
    response["Content-Length"] = str(size)
    disposition = content_disposition_header(not inline, name)
    if disposition is not None:  # None only for an inline file without a name
        response["Content-Disposition"] = disposition
    response["X-Content-Type-Options"] = "nosniff"
    return private(response)


async def _chunks(handle):
    read = sync_to_async(handle.read, thread_sensitive=False)
    try:
        while chunk := await read(CHUNK_BYTES):
            yield chunk
    finally:
        await sync_to_async(handle.close, thread_sensitive=False)()
