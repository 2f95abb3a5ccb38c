"""A fake Azure AI Document Intelligence service (in memory) for the real
``azure-ai-documentintelligence`` SDK (1.0.x, ``api-version=2024-11-30``).

What it covers, as the SDK's sync client sends it:

* ``POST /documentintelligence/documentModels/{model}:analyze`` with the file as
  ``application/octet-stream`` (or JSON ``{"base64Source": ...}``), ``outputContentFormat``
  ``markdown`` or ``text``: 202 with ``Operation-Location``, as the service answers. Only the
  ``prebuilt-layout`` and ``prebuilt-read`` models exist (else 404 ``ModelNotFound``); a missing
  or other api-version is a 400; a missing or wrong ``Ocp-Apim-Subscription-Key`` (or, keyless,
  a ``Bearer`` token other than :data:`DEFAULT_TOKEN`) is a 401; an empty body a 400.
* ``GET .../documentModels/{model}/analyzeResults/{id}``: ``running`` for the first
  ``polls_before_done`` polls (each with ``Retry-After: poll_retry_after``), then ``succeeded``
  with an ``analyzeResult`` whose ``content`` holds the pages' Markdown separated by
  ``<!-- PageBreak -->`` and whose ``pages[].spans`` point into it, as the layout model's do;
  or ``failed`` with the service's error shape for a file registered with :meth:`fail_for`.
* Throttling: the next ``throttle`` requests (analyze or poll) are 429 with ``Retry-After``
  (seconds, ``retry_after``), the header the SDK's retry policy waits for.

The fake cannot read: a test registers what each file "says" with :meth:`add`, page by page;
any other file reads as one page naming its size.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import uuid
from dataclasses import dataclass, field

from aiohttp import web

from tests.fakes.server import BackgroundServer

API_VERSION = "2024-11-30"
DEFAULT_KEY = "fake-document-intelligence-key"
DEFAULT_TOKEN = "fake-document-intelligence-token"
MODELS = ("prebuilt-layout", "prebuilt-read")
PAGE_BREAK = "\n\n<!-- PageBreak -->\n\n"


@dataclass
class Seen:
    """One request as the fake saw it."""

    method: str
    path: str
    query: dict[str, str]
    status: int
    content_type: str = ""
    size: int = 0


@dataclass
class _Operation:
    model: str
    pages: list[str] | None
    failure: str | None
    polls: int = 0
    content_format: str = "text"


@dataclass
class FakeDocumentIntelligence(BackgroundServer):
    key: str = DEFAULT_KEY
    polls_before_done: int = 1
    poll_retry_after: int = 0
    throttle: int = 0
    retry_after: int = 1
    seen: list[Seen] = field(default_factory=list)

    def __post_init__(self):
        super().__init__()
        self._lock = threading.Lock()
        self._documents: dict[str, list[str]] = {}
        self._failures: dict[str, str] = {}
        self._operations: dict[str, _Operation] = {}

    @property
    def endpoint(self) -> str:
        return self.start()

    def add(self, data: bytes, pages: list[str]) -> None:
        """What the file's pages say, as Markdown."""
        self._documents[_digest(data)] = list(pages)

    def fail_for(
        self, data: bytes, message: str = "The file is corrupted or format is unsupported."
    ):
        """Analysing this file fails the way the service reports an unreadable file."""
        self._failures[_digest(data)] = message

    def analyze_requests(self) -> list[Seen]:
        return [s for s in self.seen if s.method == "POST"]

    def build_app(self) -> web.Application:
        app = web.Application(client_max_size=600 * 1024 * 1024)
        base = "/documentintelligence/documentModels"
        app.router.add_post(base + "/{model}:analyze", self._analyze)
        app.router.add_get(base + "/{model}/analyzeResults/{id}", self._result)
        return app

    # -- handlers ---------------------------------------------------------------------------------

    def _note(self, request: web.Request, status: int, size: int = 0) -> None:
        with self._lock:
            self.seen.append(
                Seen(
                    request.method,
                    request.path,
                    dict(request.query),
                    status,
                    request.headers.get("Content-Type", ""),
                    size,
                )
            )

    def _refusal(self, request: web.Request) -> web.Response | None:
        if request.query.get("api-version") != API_VERSION:
            return _error(400, "InvalidArgument", "The api-version query parameter is not valid.")
        key = request.headers.get("Ocp-Apim-Subscription-Key")
        bearer = request.headers.get("Authorization", "")
        if key != self.key and bearer != f"Bearer {DEFAULT_TOKEN}":
            return _error(401, "401", "Access denied due to invalid subscription key.")
        with self._lock:
            if self.throttle > 0:
                self.throttle -= 1
                response = _error(429, "429", "Rate limit is exceeded. Try again later.")
                response.headers["Retry-After"] = str(self.retry_after)
                return response
        return None

    async def _analyze(self, request: web.Request) -> web.Response:
        raw = await request.read()
        refused = self._refusal(request)
        if refused is not None:
            self._note(request, refused.status, len(raw))
            return refused
        model = request.match_info["model"]
        if model not in MODELS:
            self._note(request, 404, len(raw))
            return _error(404, "ModelNotFound", f"Resource not found: model {model}.")
        data = raw
        if request.content_type == "application/json":
            try:
                data = base64.b64decode(json.loads(raw)["base64Source"])
            except (ValueError, KeyError, TypeError):
                data = b""
        if not data:
            self._note(request, 400, len(raw))
            return _error(400, "InvalidRequest", "Invalid request.", "InvalidContent")
        digest = _digest(data)
        operation = _Operation(
            model=model,
            pages=self._documents.get(digest, [f"A document of {len(data)} bytes."]),
            failure=self._failures.get(digest),
            content_format=request.query.get("outputContentFormat", "text"),
        )
        operation_id = str(uuid.uuid4())
        with self._lock:
            self._operations[operation_id] = operation
        self._note(request, 202, len(raw))
        location = (
            f"{self.base_url}/documentintelligence/documentModels/{model}/analyzeResults/"
            f"{operation_id}?api-version={API_VERSION}"
        )
        return web.Response(status=202, headers={"Operation-Location": location})

    async def _result(self, request: web.Request) -> web.Response:
        refused = self._refusal(request)
        if refused is not None:
            self._note(request, refused.status)
            return refused
        with self._lock:
            operation = self._operations.get(request.match_info["id"])
            if operation is not None:
                operation.polls += 1
        if operation is None or operation.model != request.match_info["model"]:
            self._note(request, 404)
            return _error(404, "NotFound", "Resource not found.")
        self._note(request, 200)
        stamp = {
            "createdDateTime": "2025-01-01T00:00:00Z",
            "lastUpdatedDateTime": "2025-01-01T00:00:01Z",
        }
        if operation.polls <= self.polls_before_done:
            return web.json_response(
                {"status": "running", **stamp},
                headers={"Retry-After": str(self.poll_retry_after)},
            )
        if operation.failure is not None:
            error = {
                "code": "InvalidRequest",
                "message": "Invalid request.",
                "innererror": {"code": "InvalidContent", "message": operation.failure},
            }
            return web.json_response({"status": "failed", **stamp, "error": error})
        return web.json_response(
            {"status": "succeeded", **stamp, "analyzeResult": _result(operation)}
        )


def _result(operation: _Operation) -> dict:
    content, pages, offset = "", [], 0
    for number, text in enumerate(operation.pages or [], start=1):
        if number > 1:
            content += PAGE_BREAK
            offset = len(content)
        content += text
        pages.append(
            {
                "pageNumber": number,
                "angle": 0,
                "width": 8.5,
                "height": 11,
                "unit": "inch",
                "words": [],
                "lines": [],
                "spans": [{"offset": offset, "length": len(text)}],
            }
        )
    return {
        "apiVersion": API_VERSION,
        "modelId": operation.model,
        "stringIndexType": "textElements",
        "content": content,
        "contentFormat": operation.content_format,
        "pages": pages,
    }


def _error(status: int, code: str, message: str, inner: str | None = None) -> web.Response:
    error: dict = {"code": code, "message": message}
    if inner:
        error["innererror"] = {"code": inner, "message": message}
    return web.json_response({"error": error}, status=status)


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
