"""Images and scanned pages through Azure AI Document Intelligence's layout model.

Called in the process that extracts (an admin request's thread, `ingest`, the task worker),
never on an event loop: it is the SDK's sync client, waiting on the service's long-running
operation. What comes back is Markdown per page; `knowledge.extract` turns it into text in the
extraction sandbox like any other file, each page keeping its `page=N` label for citations.
Keyless (azure-identity) unless DOCUMENT_INTELLIGENCE_KEY is set.
"""

import functools
import logging

from django.conf import settings

from knowledge.formats.errors import ExtractionError

log = logging.getLogger(__name__)

IMAGES = {
    ".png": "PNG image",
    ".jpg": "JPEG image",
    ".jpeg": "JPEG image",
    ".tif": "TIFF image",
    ".tiff": "TIFF image",
    ".bmp": "BMP image",
}
_SIGNATURES = {
    ".png": (b"\x89PNG\r\n\x1a\n",),
    ".jpg": (b"\xff\xd8\xff",),
    ".jpeg": (b"\xff\xd8\xff",),
    ".tif": (b"II*\x00", b"MM\x00*"),
    ".tiff": (b"II*\x00", b"MM\x00*"),
    ".bmp": (b"BM",),
}
MODEL = "prebuilt-layout"
NOT_CONFIGURED = (
    "Reading {what} needs Azure AI Document Intelligence, which this site has not configured "
    "(DOCUMENT_INTELLIGENCE_ENDPOINT)."
)


def configured() -> bool:
    return bool(settings.DOCUMENT_INTELLIGENCE_ENDPOINT)


def check_image(ext: str, data: bytes) -> None:
    if not data.startswith(_SIGNATURES[ext]):
        raise ExtractionError(f"This is not a {IMAGES[ext]} (its first bytes say otherwise).")


def analyze(data: bytes) -> list[str]:
    """The file's pages as the layout model's Markdown, in page order."""
    from azure.core.exceptions import AzureError, HttpResponseError

    client = _client(
        settings.DOCUMENT_INTELLIGENCE_ENDPOINT,
        settings.DOCUMENT_INTELLIGENCE_KEY,
        settings.AZURE_CLIENT_ID,
    )
    timeout = settings.DOCUMENT_INTELLIGENCE_TIMEOUT_SECONDS
    try:
        poller = client.begin_analyze_document(
            MODEL,
            data,
            content_type="application/octet-stream",
            output_content_format="markdown",
        )
        poller.wait(timeout)
        if not poller.done():
            raise ExtractionError(
                f"Document Intelligence did not finish reading the file within {timeout} s; "
                "try again later, or split the file."
            )
        result = poller.result()
    except ExtractionError:
        raise
    except HttpResponseError as exc:
        log.warning("Document Intelligence refused a file: %s", exc)
        if exc.status_code in (None, 200, 400, 415):  # None/200: the operation itself failed
            raise ExtractionError(
                "Document Intelligence could not read the file (it may be damaged, "
                "password-protected or in a format it does not take)."
            ) from exc
        raise ExtractionError(_unavailable(f"HTTP {exc.status_code}")) from exc
    except AzureError as exc:  # connection, timeout, credential
        log.warning("Document Intelligence unavailable: %r", exc)
        raise ExtractionError(_unavailable(type(exc).__name__)) from exc
    return _pages(result)


def _unavailable(why: str) -> str:
    return f"Document Intelligence is unavailable right now ({why}); try again later."


def _pages(result) -> list[str]:
    content = result.content or ""
    pages = sorted(result.pages or [], key=lambda page: page.page_number)
    if not pages:
        return [content]
    return [
        "".join(content[span.offset : span.offset + span.length] for span in page.spans or [])
        for page in pages
    ]


@functools.lru_cache(maxsize=4)
def _client(endpoint: str, key: str, client_id: str):
    """One client (and credential) per configuration and process, as for every Azure client."""
    from azure.ai.documentintelligence import DocumentIntelligenceClient
    from azure.core.credentials import AzureKeyCredential, TokenCredential

    credential: AzureKeyCredential | TokenCredential
    if key:
        credential = AzureKeyCredential(key)
    else:
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential(managed_identity_client_id=client_id or None)
    return DocumentIntelligenceClient(endpoint, credential)
