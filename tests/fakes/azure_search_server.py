"""A fake Azure AI Search REST service for tests (in memory, one process, no persistence).

What it covers, as ``azure-search-documents`` 12.0.0 sends it (``api-version=2026-04-01``, the SDK's
default, and by default no other: a missing or other api-version is a 400 as on the real service;
``api_versions=`` widens it):

* Near-real-time writes, as on the service: an indexing request is answered at once, but queries,
  counts, lookups and stats see its documents (and stop seeing deleted ones) only
  ``visibility_delay`` seconds later (default 0.3). :meth:`FakeAzureSearch.settle` waits for
  every write so far; :meth:`documents` shows what was written, :meth:`visible_documents` what
  queries see.

* Index management (``SearchIndexClient`` / ``azure.search.documents.indexes.aio``):
  ``POST /indexes`` (create: 201, 409 if it exists), ``PUT /indexes('name')`` (create or update:
  201/200; changing or removing an existing field is a 400 as on the real service, adding fields
  is fine), ``GET /indexes('name')``, ``GET /indexes`` (list, ``$select=name``),
  ``DELETE /indexes('name')`` (204, or 404, which the SDK ignores), ``GET
  /indexes('name')/search.stats``, ``GET /servicestats``. The path form ``/indexes/name`` works too.
  Index names are validated (lower-case letters, digits, dashes), exactly one ``Edm.String`` key
  field is required and vector fields need ``dimensions``.
* Documents (``SearchClient`` / ``azure.search.documents.aio``):
  ``POST /indexes('name')/docs/search.index`` with ``upload``, ``merge``, ``mergeOrUpload`` and
  ``delete`` actions: 200, or 207 when some documents failed (``status: false`` with
  ``statusCode`` and ``errorMessage``). Failures come from a key with characters the real service
  rejects (only letters, digits, ``_``, ``-``, ``=`` are allowed), a ``merge`` of a missing
  document (404), or keys a test made fail (:meth:`FakeAzureSearch.fail_documents`). A whole batch
  is a 400 for an unknown field, a missing key or a vector of the wrong length, and a 413 above
  ``max_batch`` actions (1000) or ``max_request_bytes`` (16 MB), the service's limits (the sync
  SDK then splits the batch; the async SDK 12.0.0 fails with a TypeError there, an SDK bug: keep
  batches under both limits yourself).
  ``GET /indexes('name')/docs/$count``, ``GET /indexes('name')/docs('key')``.
* Queries: ``POST /indexes('name')/docs/search.post.search`` (and ``GET .../docs`` with the query
  parameters): ``search`` (simple syntax: terms, ``"phrases"`` as terms, ``+required``,
  ``-excluded``, ``prefix*``; ``*`` or none matches everything; BM25 scoring over the searchable
  string fields, or ``searchFields``; ``searchMode`` any/all), ``filter`` (OData: ``eq ne gt ge lt
  le``, ``and or not``, parentheses, ``search.in(field, 'a,b', ',')``, ``coll/any(g: ...)``,
  ``coll/all(g: ...)``, ``coll/any()``, literals; unknown or non-filterable fields and comparing a
  collection directly are 400s), ``top`` (default 50), ``skip``, ``select``, ``count``,
  ``orderby`` (fields and ``search.score()``), ``vectorQueries`` of kind ``vector`` (exact cosine
  over the stored vectors, ``k``, ``fields``, ``weight``; ``@search.score`` is ``1 / (1 + (1 -
  cosine))`` as on the real service; ``vectorFilterMode`` pre- or post-filter), hybrid text +
  vector (and several vector queries) fused by reciprocal rank fusion (``sum weight / (60 +
  rank)``), ``queryType: semantic`` (the ``semanticConfiguration`` must exist in the index; the
  first 50 results are reordered by ``@search.rerankerScore`` on the service's 0-4 scale, here
  4 x the share of the question's words the document holds, so weak matches score low; and
  ``@search.captions`` when ``captions`` is ``extractive``). Not covered: facets, highlights,
  suggest, autocomplete, scoring profiles, integrated vectorization (``kind: text``), indexers,
  data sources, skillsets, synonym maps, aliases, knowledge bases, paging links.
* Auth: the ``api-key`` header must be the admin key (or a query key, for queries); a bearer
  token in ``bearer_tokens`` is accepted as admin. Otherwise 401. ``api_key=None`` and no tokens:
  anything goes. (The SDK only sends bearer tokens over https unless the call is given
  ``enforce_https=False``.)
* Failures for tests: :meth:`FakeAzureSearch.fail_next`, :meth:`hang_next`, :meth:`delay_next`,
  :meth:`fail_always`, per operation (``indexes``, ``stats``, ``index``, ``search``, ``count``,
  ``get_document``, or ``any``). A 429 or 503 carries ``Retry-After`` (``retry_after``, default
  1 s) unless the test says otherwise.

Every request is recorded in :attr:`FakeAzureSearch.requests` (see ``RecordedRequest``).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import dataclasses
import json
import math
import re
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
from aiohttp import web

from .server import BackgroundServer, RecordedRequest, record_request

__all__ = ["FakeAzureSearch", "ODataError", "parse_filter"]

_JSON_NONE = "application/json; odata.metadata=none; odata.streaming=true; charset=utf-8"
_JSON_MINIMAL = "application/json; odata.metadata=minimal; odata.streaming=true; charset=utf-8"
_WORD = re.compile(r"\w+")
_INDEX_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,126}[a-z0-9])?$")
_VALID_KEY = re.compile(r"^[A-Za-z0-9_\-=]+$")
_PATH = re.compile(r"^/indexes(?:\('(?P<q>(?:[^']|'')*)'\)|/(?P<p>[^/]+))?(?P<rest>/.*)?$")
_DOC_KEY = re.compile(r"^/docs(?:\('(?P<q>(?:[^']|'')*)'\)|/(?P<p>[^/]+))$")
_ADMIN_OPS = {"indexes", "stats", "index", "servicestats"}
_ACTIONS = {"upload", "merge", "mergeOrUpload", "delete"}
_RRF_K = 60
_STOP_WORDS = frozenset(
    "a an and are as at be by can do does for from how i in is it of on or the to what when "
    "where which who why with".split()
)
# What azure-search-documents 12.0.0 sends (its DEFAULT_VERSION); the service answers any other
# api-version with a 400.
SDK_API_VERSIONS = ("2026-04-01",)
# The service's limits per indexing request.
MAX_REQUEST_BYTES = 16 * 1024 * 1024
MAX_BATCH = 1000
_DEFAULT = object()  # "the server's default" where None means "none"


class ODataError(ValueError):
    """An invalid $filter or $orderby; the fake answers 400 with this message."""


def _error(status: int, message: str, code: str = "") -> web.Response:
    body = json.dumps({"error": {"code": code, "message": message}})
    return web.Response(status=status, text=body, headers={"Content-Type": _JSON_NONE})


def _ok(payload: Any, status: int = 200, content_type: str = _JSON_NONE) -> web.Response:
    return web.Response(
        status=status, text=json.dumps(payload), headers={"Content-Type": content_type}
    )


def _csv(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v).strip() for v in value]


def _is_collection(field: dict[str, Any]) -> bool:
    return str(field.get("type", "")).startswith("Collection(")


def _is_vector(field: dict[str, Any]) -> bool:
    return _is_collection(field) and (
        field.get("dimensions") is not None or field.get("vectorSearchProfile") is not None
    )


def _is_text(field: dict[str, Any]) -> bool:
    return field.get("type") in ("Edm.String", "Collection(Edm.String)")


# --------------------------------------------------------------------------------------------------
# OData $filter
# --------------------------------------------------------------------------------------------------

_FILTER_TOKEN = re.compile(
    r"""\s*(?:
      (?P<str>'(?:[^']|'')*')
    | (?P<date>\d{4}-\d{2}-\d{2}T[0-9:.]+(?:Z|[+-]\d{2}:\d{2}))
    | (?P<num>-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)
    | (?P<punct>[(),:])
    | (?P<ident>[A-Za-z_][\w./]*)
    )""",
    re.X,
)
_COMPARISONS = {"eq", "ne", "gt", "ge", "lt", "le"}

Evaluator = Callable[[dict[str, Any], dict[str, Any]], Any]


def _compare(op: str, a: Any, b: Any) -> bool:
    if op == "eq":
        return a == b
    if op == "ne":
        return a != b
    if a is None or b is None:
        return False
    try:
        if op == "gt":
            return a > b
        if op == "ge":
            return a >= b
        if op == "lt":
            return a < b
        return a <= b
    except TypeError:
        return False


def _lookup(value: Any, parts: Sequence[str]) -> Any:
    for part in parts:
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


class _FilterParser:
    def __init__(self, text: str, fields: dict[str, dict[str, Any]] | None):
        self.text = text
        self.fields = fields
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        text = text.rstrip()
        while pos < len(text):
            m = _FILTER_TOKEN.match(text, pos)
            if not m or m.end() == pos:
                raise ODataError(f"Invalid expression: syntax error at position {pos} in '{text}'.")
            kind = m.lastgroup
            assert kind is not None
            self.tokens.append((kind, m.group(kind)))
            pos = m.end()
        self.pos = 0
        self.vars: list[str] = []

    # -- token helpers --
    def peek(self, offset: int = 0) -> tuple[str, str] | None:
        i = self.pos + offset
        return self.tokens[i] if i < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        tok = self.peek()
        if tok is None:
            raise ODataError(f"Invalid expression: unexpected end of '{self.text}'.")
        self.pos += 1
        return tok

    def expect(self, value: str) -> None:
        tok = self.take()
        if tok[1] != value:
            raise ODataError(f"Invalid expression: expected '{value}' but found '{tok[1]}'.")

    def keyword(self, word: str) -> bool:
        tok = self.peek()
        if tok is not None and tok[0] == "ident" and tok[1].lower() == word:
            self.pos += 1
            return True
        return False

    # -- grammar --
    def parse(self) -> Evaluator:
        if not self.tokens:
            raise ODataError("Invalid expression: the filter is empty.")
        expr = self.or_()
        if self.peek() is not None:
            raise ODataError(f"Invalid expression: unexpected '{self.peek()[1]}'.")  # type: ignore[index]
        return expr

    def or_(self) -> Evaluator:
        left = self.and_()
        while self.keyword("or"):
            right = self.and_()
            left = (lambda l_, r_: lambda d, v: bool(l_(d, v)) or bool(r_(d, v)))(left, right)
        return left

    def and_(self) -> Evaluator:
        left = self.not_()
        while self.keyword("and"):
            right = self.not_()
            left = (lambda l_, r_: lambda d, v: bool(l_(d, v)) and bool(r_(d, v)))(left, right)
        return left

    def not_(self) -> Evaluator:
        if self.keyword("not"):
            inner = self.not_()
            return lambda d, v: not inner(d, v)
        return self.comparison()

    def comparison(self) -> Evaluator:
        left, left_kind = self.operand()
        tok = self.peek()
        if tok is not None and tok[0] == "ident" and tok[1].lower() in _COMPARISONS:
            op = self.take()[1].lower()
            right, right_kind = self.operand()
            if "collection" in (left_kind, right_kind):
                raise ODataError(
                    "Invalid expression: A binary operator with incompatible types was detected. "
                    "Use any() or all() to compare the items of a collection field."
                )
            return lambda d, v: _compare(op, left(d, v), right(d, v))
        if left_kind == "collection":
            raise ODataError("Invalid expression: a collection field is not a boolean expression.")
        return left

    def field_ref(self, name: str) -> tuple[Evaluator, str]:
        parts = name.split("/")
        if parts[0] in self.vars:
            var, rest = parts[0], parts[1:]
            return (lambda d, v: _lookup(v[var], rest)), "value"
        if self.fields is not None:
            field = self.fields.get(parts[0])
            if field is None:
                raise ODataError(
                    f"Invalid expression: Could not find a property named '{parts[0]}' on type "
                    "'search.document'."
                )
            if field.get("filterable") is False or _is_vector(field):
                raise ODataError(
                    f"Invalid expression: The field '{parts[0]}' is not filterable. Only "
                    "filterable fields can be used in filter expressions."
                )
            kind = "collection" if _is_collection(field) and len(parts) == 1 else "value"
        else:
            kind = "value"
        return (lambda d, v: _lookup(d, parts)), kind

    def operand(self) -> tuple[Evaluator, str]:
        kind, value = self.take()
        if kind == "punct" and value == "(":
            inner = self.or_()
            self.expect(")")
            return inner, "value"
        if kind == "str":
            s = value[1:-1].replace("''", "'")
            return (lambda d, v: s), "value"
        if kind == "num":
            n: float | int = float(value) if any(c in value for c in ".eE") else int(value)
            return (lambda d, v: n), "value"
        if kind == "date":
            return (lambda d, v: value), "value"
        if kind != "ident":
            raise ODataError(f"Invalid expression: unexpected '{value}'.")
        low = value.lower()
        if low in ("true", "false", "null"):
            const = {"true": True, "false": False, "null": None}[low]
            return (lambda d, v: const), "value"
        nxt = self.peek()
        if nxt is not None and nxt[1] == "(":
            self.take()
            if low == "search.in":
                return self.search_in(), "value"
            if low.endswith("/any") or low.endswith("/all"):
                return self.lambda_(value[:-4], low[-3:]), "value"
            raise ODataError(f"Invalid expression: the function '{value}' is not supported.")
        return self.field_ref(value)

    def search_in(self) -> Evaluator:
        kind, name = self.take()
        if kind != "ident":
            raise ODataError("Invalid expression: search.in needs a field or variable first.")
        target, target_kind = self.field_ref(name)
        if target_kind == "collection":
            raise ODataError("Invalid expression: search.in cannot take a collection field.")
        self.expect(",")
        kind, raw = self.take()
        if kind != "str":
            raise ODataError("Invalid expression: search.in needs a string of values.")
        values_text = raw[1:-1].replace("''", "'")
        delimiters = " ,"
        if self.peek() is not None and self.peek()[1] == ",":  # type: ignore[index]
            self.take()
            kind, raw = self.take()
            if kind != "str":
                raise ODataError("Invalid expression: search.in delimiters must be a string.")
            delimiters = raw[1:-1].replace("''", "'")
        self.expect(")")
        pattern = "[" + re.escape(delimiters) + "]"
        values = {x for x in re.split(pattern, values_text) if x}
        return lambda d, v: target(d, v) in values

    def lambda_(self, path: str, quantifier: str) -> Evaluator:
        coll, kind = self.field_ref(path)
        if self.fields is not None and kind != "collection" and path.split("/")[0] not in self.vars:
            raise ODataError(f"Invalid expression: '{path}' is not a collection field.")
        if self.peek() is not None and self.peek()[1] == ")":  # type: ignore[index]
            self.take()
            if quantifier == "all":
                raise ODataError("Invalid expression: all() needs a lambda expression.")
            return lambda d, v: bool(coll(d, v))
        kind_, var = self.take()
        if kind_ != "ident":
            raise ODataError("Invalid expression: expected a lambda variable.")
        self.expect(":")
        self.vars.append(var)
        body = self.or_()
        self.vars.pop()
        self.expect(")")
        if quantifier == "any":
            return lambda d, v: any(body(d, {**v, var: item}) for item in (coll(d, v) or ()))
        return lambda d, v: all(body(d, {**v, var: item}) for item in (coll(d, v) or ()))


def parse_filter(
    text: str, fields: dict[str, dict[str, Any]] | None = None
) -> Callable[[dict[str, Any]], bool]:
    """Compile an OData filter into ``predicate(document) -> bool`` (raises :class:`ODataError`).

    With ``fields`` (name -> field definition) unknown and non-filterable fields are errors."""
    expr = _FilterParser(text, fields).parse()
    return lambda doc: bool(expr(doc, {}))


# --------------------------------------------------------------------------------------------------
# One index
# --------------------------------------------------------------------------------------------------


class _Index:
    def __init__(self, definition: dict[str, Any]):
        self.docs: dict[str, dict[str, Any]] = {}
        self.pending: collections.deque[tuple[float, str, dict[str, Any] | None]] = (
            collections.deque()
        )
        self.written: dict[str, dict[str, Any] | None] = {}
        self.terms: dict[str, dict[str, collections.Counter[str]]] = {}
        self.vectors: dict[str, dict[str, np.ndarray]] = {}
        self.set_definition(definition)

    def set_definition(self, definition: dict[str, Any]) -> None:
        self.definition = definition
        self.name: str = definition["name"]
        self.fields: dict[str, dict[str, Any]] = {f["name"]: f for f in definition["fields"]}
        self.key: str = next(f["name"] for f in definition["fields"] if f.get("key"))
        self.searchable = [
            n for n, f in self.fields.items() if _is_text(f) and f.get("searchable") is not False
        ]
        self.vector_fields = {n: f for n, f in self.fields.items() if _is_vector(f)}
        self.etag = f'"0x{uuid.uuid4().hex[:15].upper()}"'
        for key, doc in self.docs.items():
            self._analyse(key, doc)

    def retrievable(self, name: str) -> bool:
        f = self.fields.get(name)
        return f is not None and f.get("retrievable") is not False and f.get("stored") is not False

    def metric(self, field: str) -> str:
        profile_name = self.fields[field].get("vectorSearchProfile")
        vs = self.definition.get("vectorSearch") or {}
        profile = next((p for p in vs.get("profiles") or [] if p.get("name") == profile_name), {})
        algo = next(
            (a for a in vs.get("algorithms") or [] if a.get("name") == profile.get("algorithm")),
            {},
        )
        params = algo.get("hnswParameters") or algo.get("exhaustiveKnnParameters") or {}
        return params.get("metric") or "cosine"

    def _analyse(self, key: str, doc: dict[str, Any]) -> None:
        terms: dict[str, collections.Counter[str]] = {}
        for name in self.searchable:
            value = doc.get(name)
            if isinstance(value, list):
                value = " ".join(str(x) for x in value if x is not None)
            if isinstance(value, str):
                terms[name] = collections.Counter(_WORD.findall(value.lower()))
        self.terms[key] = terms
        vectors: dict[str, np.ndarray] = {}
        for name in self.vector_fields:
            value = doc.get(name)
            if isinstance(value, list) and value:
                vec = np.asarray(value, dtype=np.float64)
                vectors[name] = vec
        self.vectors[key] = vectors

    def put(self, key: str, doc: dict[str, Any]) -> None:
        self.docs[key] = doc
        self._analyse(key, doc)

    # Writes land in `pending` and reach `docs` (what queries and lookups see) once due: the
    # service is near-real-time, so a search right after an upload may not see it yet.

    def write(self, key: str, doc: dict[str, Any] | None, due: float) -> None:
        """Store ``doc`` under ``key`` (None: delete it), visible from ``due`` (monotonic)."""
        self.pending.append((due, key, doc))
        self.written[key] = doc

    def latest(self, key: str) -> dict[str, Any] | None:
        """The last document written under ``key``, visible yet or not."""
        return self.written[key] if key in self.written else self.docs.get(key)

    def refresh(self, now: float) -> None:
        while self.pending and self.pending[0][0] <= now:
            _, key, doc = self.pending.popleft()
            if doc is None:
                self.remove(key)
            else:
                self.put(key, doc)
        if not self.pending:
            self.written.clear()

    def all_written(self) -> dict[str, dict[str, Any]]:
        out = dict(self.docs)
        for key, doc in self.written.items():
            if doc is None:
                out.pop(key, None)
            else:
                out[key] = doc
        return out

    def remove(self, key: str) -> None:
        self.docs.pop(key, None)
        self.terms.pop(key, None)
        self.vectors.pop(key, None)

    def public(self, base_url: str) -> dict[str, Any]:
        return {
            "@odata.context": f"{base_url}/$metadata#indexes/$entity",
            "@odata.etag": self.etag,
            **self.definition,
        }

    # -- scoring --

    def text_scores(
        self, query: str, keys: Iterable[str], search_fields: list[str], mode: str
    ) -> dict[str, float]:
        fields = search_fields or self.searchable
        clauses: list[tuple[str, str, bool]] = []  # (sign, term, is_prefix)
        for raw in re.findall(r'[+-]?"[^"]*"|\S+', query):
            sign = raw[0] if raw[0] in "+-" else ""
            body = raw[1:] if sign else raw
            prefix = body.endswith("*") and not body.startswith('"')
            for word in _WORD.findall(body.lower()):
                clauses.append((sign, word, prefix))
        if not clauses:
            return {k: 1.0 for k in keys}

        def tf(key: str, term: str, prefix: bool) -> int:
            total = 0
            for name in fields:
                counter = self.terms.get(key, {}).get(name)
                if not counter:
                    continue
                if prefix:
                    total += sum(c for t, c in counter.items() if t.startswith(term))
                else:
                    total += counter.get(term, 0)
            return total

        def length(key: str) -> int:
            return sum(sum(self.terms.get(key, {}).get(n, {}).values()) for n in fields)

        all_keys = list(self.docs)
        n_docs = max(1, len(all_keys))
        avgdl = (sum(length(k) for k in all_keys) / n_docs) or 1.0
        idf: dict[tuple[str, bool], float] = {}
        for _, term, prefix in clauses:
            df = sum(1 for k in all_keys if tf(k, term, prefix))
            idf[(term, prefix)] = math.log(1 + (n_docs - df + 0.5) / (df + 0.5))
        k1, b = 1.2, 0.75
        scores: dict[str, float] = {}
        for key in keys:
            dl = length(key)
            score, matched_all, matched_any, excluded = 0.0, True, False, False
            for sign, term, prefix in clauses:
                f = tf(key, term, prefix)
                if sign == "-":
                    excluded = excluded or f > 0
                    continue
                if f:
                    matched_any = True
                    score += (
                        idf[(term, prefix)] * f * (k1 + 1) / (f + k1 * (1 - b + b * dl / avgdl))
                    )
                elif sign == "+" or mode == "all":
                    matched_all = False
            if excluded or not matched_all:
                continue
            positive = any(sign != "-" for sign, _, _ in clauses)
            if matched_any or not positive:
                scores[key] = score if positive else 1.0
        return scores

    def reranker_score(self, query: str, key: str) -> float:
        """A stand-in for the semantic ranker, on its 0-4 scale: 4 when the document holds
        every word of the question, 0 when it holds none. Unlike BM25 it is not relative to
        the other results, so a weak best hit scores low, as on the service."""
        wanted = {w for w in _WORD.findall(query.lower()) if w not in _STOP_WORDS}
        if not wanted:
            return 0.0
        found: set[str] = set()
        for counter in self.terms.get(key, {}).values():
            found.update(counter)
        return round(4.0 * len(wanted & found) / len(wanted), 4)

    def vector_scores(
        self, vector: list[float], fields: list[str], keys: Iterable[str]
    ) -> dict[str, float]:
        q = np.asarray(vector, dtype=np.float64)
        qn = float(np.linalg.norm(q)) or 1.0
        scores: dict[str, float] = {}
        for key in keys:
            best = None
            for name in fields:
                vec = self.vectors.get(key, {}).get(name)
                if vec is None or vec.shape != q.shape:
                    continue
                metric = self.metric(name)
                if metric == "euclidean":
                    score = 1.0 / (1.0 + float(np.linalg.norm(vec - q)))
                elif metric == "dotProduct":
                    score = 1.0 / (1.0 + (1.0 - float(vec @ q)))
                else:
                    cos = float(vec @ q) / ((float(np.linalg.norm(vec)) or 1.0) * qn)
                    score = 1.0 / (1.0 + (1.0 - cos))
                best = score if best is None else max(best, score)
            if best is not None:
                scores[key] = best
        return scores


# --------------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Failure:
    kind: str  # "error", "hang", "delay"
    operation: str = "any"
    status: int = 503
    message: str = ""
    retry_after: Any = _DEFAULT  # seconds, None for no header, _DEFAULT: the server's
    delay: float = 0.0


class FakeAzureSearch(BackgroundServer):
    """Fake Azure AI Search service. ``endpoint`` (= ``base_url``) goes to ``SearchClient``."""

    thread_name = "fake-azure-search"

    def __init__(
        self,
        *,
        api_key: str | None = "fake-search-admin-key",
        query_keys: Iterable[str] = (),
        bearer_tokens: Iterable[str] = (),
        service_name: str = "fake-search",
        max_batch: int = MAX_BATCH,
        max_request_bytes: int = MAX_REQUEST_BYTES,
        visibility_delay: float = 0.3,
        api_versions: Iterable[str] = SDK_API_VERSIONS,
        retry_after: float | None = 1.0,
        host: str = "127.0.0.1",
        port: int = 0,
        log_limit: int | None = None,
    ):
        super().__init__(host=host, port=port, log_limit=log_limit)
        self.api_key = api_key
        self.query_keys: set[str] = set(query_keys)
        self.bearer_tokens: set[str] = set(bearer_tokens)
        self.service_name = service_name
        self.max_batch = max_batch
        self.max_request_bytes = max_request_bytes
        self.visibility_delay = visibility_delay
        self.api_versions: set[str] = set(api_versions)
        self.retry_after = retry_after
        self.indexes: dict[str, _Index] = {}
        self._doc_failures: dict[str, list[Any]] = {}  # key -> [status, message, times left]
        self._queue: collections.deque[_Failure] = collections.deque()
        self._always: _Failure | None = None
        self._lock = self._cond

    @property
    def endpoint(self) -> str:
        assert self.base_url is not None
        return self.base_url

    # -- test-side API ----------------------------------------------------------------------------

    def create_index(self, definition: dict[str, Any]) -> None:
        """Create (or replace) an index directly, with REST-shaped JSON (camelCase)."""
        problem = self._validate_definition(definition)
        if problem:
            raise ValueError(problem)
        with self._lock:
            self.indexes[definition["name"]] = _Index(json.loads(json.dumps(definition)))

    def documents(self, index: str) -> dict[str, dict[str, Any]]:
        """A copy of the documents written to ``index``, by key, whether queries see them yet
        or not (see :meth:`visible_documents`)."""
        with self._lock:
            return {k: dict(v) for k, v in self.indexes[index].all_written().items()}

    def visible_documents(self, index: str) -> dict[str, dict[str, Any]]:
        """A copy of the documents that queries and lookups of ``index`` see now."""
        with self._lock:
            found = self.indexes[index]
            found.refresh(time.monotonic())
            return {k: dict(v) for k, v in found.docs.items()}

    def _settles_in(self) -> float:
        with self._lock:
            due = max((i.pending[-1][0] for i in self.indexes.values() if i.pending), default=0)
        return max(0.0, due - time.monotonic())

    def settle(self) -> None:
        """Block until every write so far is visible to queries."""
        time.sleep(self._settles_in())

    async def settle_async(self) -> None:
        """Wait, without blocking the event loop, until every write so far is visible."""
        await asyncio.sleep(self._settles_in())

    def fail_documents(
        self,
        keys: Iterable[str],
        *,
        status_code: int = 400,
        message: str = "Injected failure for this document.",
        times: int | None = None,
    ) -> None:
        """Index actions on these keys fail (207, ``status: false``), ``times`` times or always."""
        with self._lock:
            for key in keys:
                self._doc_failures[key] = [status_code, message, times]

    def clear_document_failures(self) -> None:
        with self._lock:
            self._doc_failures.clear()

    def fail_next(
        self,
        status: int = 503,
        *,
        times: int = 1,
        operation: str = "any",
        message: str | None = None,
        retry_after: Any = _DEFAULT,
    ) -> None:
        """The next ``times`` requests of ``operation`` get this error status. A 429 or 503
        carries ``Retry-After`` (the server's ``retry_after`` unless given; None: no header)."""
        message = message or f"Injected failure ({status})."
        self._enqueue(_Failure("error", operation, status, message, retry_after), times)

    def hang_next(self, *, times: int = 1, operation: str = "any") -> None:
        """The next ``times`` requests of ``operation`` never get an answer (until disconnect)."""
        self._enqueue(_Failure("hang", operation), times)

    def delay_next(self, seconds: float, *, times: int = 1, operation: str = "any") -> None:
        """The next ``times`` requests of ``operation`` are answered after ``seconds``."""
        self._enqueue(_Failure("delay", operation, delay=seconds), times)

    def fail_always(
        self, status: int | None = 503, *, operation: str = "any", hang: bool = False
    ) -> None:
        """Fail (or hang) every request of ``operation`` until ``fail_always(None)``."""
        with self._lock:
            if status is None and not hang:
                self._always = None
            elif hang:
                self._always = _Failure("hang", operation)
            else:
                assert status is not None
                self._always = _Failure("error", operation, status, f"Injected failure ({status}).")

    def reset(self) -> None:
        with self._lock:
            self.indexes.clear()
            self._doc_failures.clear()
            self._queue.clear()
            self._always = None
            self.requests.clear()

    def _enqueue(self, failure: _Failure, times: int) -> None:
        with self._lock:
            self._queue.extend([failure] * times)

    def _next_failure(self, operation: str) -> _Failure | None:
        with self._lock:
            for i, f in enumerate(self._queue):
                if f.operation in (operation, "any"):
                    del self._queue[i]
                    return f
            if self._always is not None and self._always.operation in (operation, "any"):
                return self._always
        return None

    # -- app ------------------------------------------------------------------------------------

    def build_app(self) -> web.Application:
        app = web.Application(client_max_size=256 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        return app

    def _route(self, method: str, path: str) -> tuple[str, str | None, str, str | None]:
        """(operation, index name, action, document key)."""
        if path == "/servicestats" and method == "GET":
            return "servicestats", None, "servicestats", None
        m = _PATH.match(path)
        if not m:
            return "unknown", None, "unknown", None
        name = m.group("q")
        name = name.replace("''", "'") if name is not None else m.group("p")
        rest = m.group("rest") or ""
        if name is None:
            if rest:
                return "unknown", None, "unknown", None
            return "indexes", None, {"GET": "list", "POST": "create"}.get(method, "?"), None
        if not rest:
            action = {"GET": "get", "PUT": "put", "DELETE": "delete"}.get(method, "?")
            return "indexes", name, action, None
        if rest == "/search.stats":
            return "stats", name, "stats", None
        if rest == "/docs/search.post.search" and method == "POST":
            return "search", name, "search", None
        if rest == "/docs" and method == "GET":
            return "search", name, "search_get", None
        if rest == "/docs/search.index" and method == "POST":
            return "index", name, "index", None
        if rest == "/docs/$count" and method == "GET":
            return "count", name, "count", None
        dm = _DOC_KEY.match(rest)
        if dm and method == "GET" and not rest.startswith("/docs/search."):
            key = dm.group("q")
            key = key.replace("''", "'") if key is not None else dm.group("p")
            return "get_document", name, "get_document", key
        return "unknown", name, "unknown", None

    def _unauthorized(self, request: web.Request, operation: str) -> web.Response | None:
        if self.api_key is None and not self.bearer_tokens:
            return None
        key = request.headers.get("api-key")
        if key is not None:
            if key == self.api_key:
                return None
            if key in self.query_keys:
                if operation not in _ADMIN_OPS:
                    return None
                return _error(403, "Forbidden: a query key cannot be used for this operation.")
        auth = request.headers.get("Authorization", "")
        if auth[:7].lower() == "bearer " and auth[7:] in self.bearer_tokens:
            return None
        return _error(
            401, "Authentication failed: the api-key or bearer token is missing or wrong."
        )

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        operation, name, action, key = self._route(request.method, request.path)
        rec, body = await record_request(request, operation)
        self._log(rec)
        resp = await self.watch(rec, self._handle(request, rec, body, operation, name, action, key))
        if rec.disconnected:  # the client went away: nothing more to send
            return resp
        rec.status = resp.status
        self._mark_finished(rec)
        resp.headers["request-id"] = str(uuid.uuid4())
        resp.headers["elapsed-time"] = "1"
        resp.headers["OData-Version"] = "4.0"
        return resp

    async def _handle(
        self,
        request: web.Request,
        rec: RecordedRequest,
        body: Any,
        operation: str,
        name: str | None,
        action: str,
        key: str | None,
    ) -> web.Response:
        denied = self._unauthorized(request, operation)
        if denied is not None:
            return denied
        if "api-version" not in request.query:
            return _error(
                400,
                "The api-version query parameter (?api-version=) is required for all requests.",
            )
        if request.query["api-version"] not in self.api_versions:
            return _error(
                400,
                f"Invalid or missing api-version query string parameter: "
                f"'{request.query['api-version']}' is not a supported api-version.",
                "InvalidApiVersionParameter",
            )
        if operation == "index":
            size = len(await request.read())
            if size > self.max_request_bytes:
                return _error(
                    413,
                    f"The request is too large: {size} bytes, more than the "
                    f"{self.max_request_bytes} bytes an indexing request may carry.",
                    "RequestEntityTooLarge",
                )
        failure = self._next_failure(operation)
        if failure is not None:
            rec.behaviour = failure.kind
            if failure.kind == "hang":
                await asyncio.Future()  # until the client goes away
            elif failure.kind == "delay":
                await asyncio.sleep(failure.delay)
            else:
                resp = _error(failure.status, failure.message)
                retry_after = failure.retry_after
                if retry_after is _DEFAULT:
                    retry_after = self.retry_after if failure.status in (429, 503) else None
                if retry_after is not None:
                    resp.headers["Retry-After"] = f"{retry_after:g}"
                return resp
        if operation == "unknown":
            return _error(
                400, f"The fake Azure AI Search does not support {request.method} {request.path}."
            )
        with self._lock:
            if operation == "servicestats":
                return self._servicestats()
            if operation == "indexes":
                return self._indexes(request, body, name, action)
            assert name is not None
            index = self.indexes.get(name)
            if index is None:
                return _error(
                    404, f"The index '{name}' for service '{self.service_name}' was not found."
                )
            index.refresh(time.monotonic())
            if operation == "stats":
                return self._stats(index)
            if operation == "count":
                return web.Response(text=str(len(index.docs)), content_type="text/plain")
            if operation == "get_document":
                assert key is not None
                doc = index.docs.get(key)
                if doc is None:
                    return _error(404, "Document not found.")
                selected = _csv(request.query.get("$select")) or None
                return _ok(self._project(index, doc, selected))
            if operation == "index":
                return self._index_documents(index, body)
            if action == "search_get":
                body = self._query_to_body(request.query)
            if not isinstance(body, dict):
                return _error(400, "The request is invalid: a JSON object body is required.")
            try:
                return _ok(self._search(index, body))
            except ODataError as exc:
                return _error(400, str(exc))

    # -- index management -------------------------------------------------------------------------

    def _validate_definition(self, d: Any) -> str | None:
        if not isinstance(d, dict) or not isinstance(d.get("name"), str):
            return "The request is invalid. Details: index : The index name is required."
        if not _INDEX_NAME.match(d["name"]):
            return (
                f"The request is invalid. Details: Index name '{d['name']}' must only contain "
                "lowercase letters, digits or dashes, cannot start or end with dashes and is "
                "limited to 128 characters."
            )
        fields = d.get("fields")
        if not isinstance(fields, list) or not fields:
            return "The request is invalid. Details: index.fields : At least one field is required."
        names = [f.get("name") for f in fields if isinstance(f, dict)]
        if len(names) != len(fields) or len(set(names)) != len(names):
            return "The request is invalid. Details: index.fields : Field names must be unique."
        keys = [f for f in fields if f.get("key")]
        if len(keys) != 1:
            return (
                "The request is invalid. Details: index.fields : Exactly one key field is needed."
            )
        if keys[0].get("type") != "Edm.String":
            return "The request is invalid. Details: The key field must be of type Edm.String."
        profiles = {p.get("name") for p in (d.get("vectorSearch") or {}).get("profiles") or []}
        for f in fields:
            if _is_vector(f):
                if not isinstance(f.get("dimensions"), int) or f["dimensions"] < 1:
                    return (
                        f"The request is invalid. Details: Vector field '{f['name']}' needs "
                        "'dimensions'."
                    )
                if f.get("vectorSearchProfile") not in profiles:
                    return (
                        f"The request is invalid. Details: Vector field '{f['name']}' refers to "
                        f"the vector search profile '{f.get('vectorSearchProfile')}', which does "
                        "not exist."
                    )
        return None

    def _indexes(
        self, request: web.Request, body: Any, name: str | None, action: str
    ) -> web.Response:
        base = self.endpoint
        if action == "list":
            select = _csv(request.query.get("$select"))
            items = [i.public(base) for i in self.indexes.values()]
            if select and select != ["*"]:
                items = [{k: v for k, v in i.items() if k in select} for i in items]
            return _ok(
                {"@odata.context": f"{base}/$metadata#indexes", "value": items},
                content_type=_JSON_MINIMAL,
            )
        if action == "get" and name is not None:
            index = self.indexes.get(name)
            if index is None:
                return self._no_index(name)
            return _ok(index.public(base), content_type=_JSON_MINIMAL)
        if action == "delete" and name is not None:
            if self.indexes.pop(name, None) is None:
                return self._no_index(name)
            return web.Response(status=204)
        if action in ("create", "put"):
            if action == "put" and isinstance(body, dict) and body.get("name") != name:
                return _error(
                    400,
                    "The request is invalid. Details: the index name in the URL "
                    "does not match the name in the body.",
                )
            problem = self._validate_definition(body)
            if problem:
                return _error(400, problem)
            definition = {k: v for k, v in body.items() if not k.startswith("@odata.")}
            existing = self.indexes.get(definition["name"])
            if existing is not None and action == "create":
                return _error(
                    409, f"Cannot create index '{definition['name']}' because it already exists."
                )
            if existing is not None:
                problem = self._compatible(existing, definition)
                if problem:
                    return _error(400, problem, "CannotChangeExistingField")
                existing.set_definition(definition)
                return _ok(existing.public(base), content_type=_JSON_MINIMAL)
            index = _Index(definition)
            self.indexes[index.name] = index
            return _ok(index.public(base), status=201, content_type=_JSON_MINIMAL)
        return _error(400, f"The fake Azure AI Search does not support {request.method} here.")

    @staticmethod
    def _compatible(existing: _Index, new: dict[str, Any]) -> str | None:
        new_fields = {f["name"]: f for f in new["fields"]}
        for fname, old in existing.fields.items():
            f = new_fields.get(fname)
            if f is None:
                return (
                    f"The request is invalid. Details: index.fields : Existing field '{fname}' "
                    "cannot be removed from the index."
                )
            for prop in ("type", "key", "dimensions"):
                before, after = old.get(prop), f.get(prop)
                if prop == "key":
                    before, after = bool(before), bool(after)
                if before != after:
                    return (
                        f"The request is invalid. Details: Existing field '{fname}' cannot be "
                        f"changed ({prop})."
                    )
        return None

    def _no_index(self, name: str) -> web.Response:
        return _error(
            404, f"No index with the name '{name}' was found in the service '{self.service_name}'."
        )

    def _stats(self, index: _Index) -> web.Response:
        size = sum(len(json.dumps(d)) for d in index.docs.values())
        vector_size = sum(v.size * 4 for vs in index.vectors.values() for v in vs.values())
        return _ok(
            {"documentCount": len(index.docs), "storageSize": size, "vectorIndexSize": vector_size}
        )

    def _servicestats(self) -> web.Response:
        docs = sum(len(i.docs) for i in self.indexes.values())
        return _ok(
            {
                "counters": {
                    "indexesCount": {"usage": len(self.indexes), "quota": 50},
                    "documentCount": {"usage": docs, "quota": None},
                },
                "limits": {"maxFieldsPerIndex": 1000},
            }
        )

    # -- documents --------------------------------------------------------------------------------

    def _index_documents(self, index: _Index, body: Any) -> web.Response:
        actions = body.get("value") if isinstance(body, dict) else None
        if not isinstance(actions, list):
            return _error(
                400,
                "The request is invalid. Details: actions : a 'value' array of "
                "index actions is required.",
            )
        if len(actions) > self.max_batch:
            return _error(
                413,
                f"The request is too large: {len(actions)} actions, more than {self.max_batch}.",
            )
        for n, action in enumerate(actions):
            if not isinstance(action, dict):
                return _error(
                    400, f"The request is invalid. Details: actions : {n}: not an object."
                )
            kind = action.get("@search.action", "upload")
            if kind not in _ACTIONS:
                return _error(
                    400, f"The request is invalid. Details: actions : {n}: Unknown action '{kind}'."
                )
            key = action.get(index.key)
            if not isinstance(key, str) or not key:
                return _error(
                    400,
                    f"The request is invalid. Details: actions : {n}: Document key "
                    "cannot be missing or empty.",
                )
            for fname, value in action.items():
                if fname.startswith("@"):
                    continue
                field = index.fields.get(fname)
                if field is None:
                    return _error(
                        400,
                        f"The request is invalid. Details: The property '{fname}' "
                        "does not exist on type 'search.documentFields'. Make sure "
                        "to only use property names that are defined by the type.",
                    )
                if kind != "delete" and _is_vector(field) and value is not None:
                    dims = field.get("dimensions")
                    if not isinstance(value, list) or len(value) != dims:
                        got = len(value) if isinstance(value, list) else "?"
                        return _error(
                            400,
                            f"The request is invalid. Details: The vector field "
                            f"'{fname}' dimensionality must match the field "
                            f"definition's 'dimensions' property. Expected: "
                            f"'{dims}'. Actual: '{got}'.",
                        )
        results = []
        due = time.monotonic() + self.visibility_delay
        for action in actions:
            kind = action.get("@search.action", "upload")
            key = action[index.key]
            doc = {k: v for k, v in action.items() if not k.startswith("@")}
            results.append(self._apply(index, kind, key, doc, due))
        index.refresh(time.monotonic())
        status = 200 if all(r["status"] for r in results) else 207
        return _ok({"value": results}, status=status)

    def _apply(
        self, index: _Index, kind: str, key: str, doc: dict[str, Any], due: float
    ) -> dict[str, Any]:
        def failed(code: int, message: str) -> dict[str, Any]:
            return {"key": key, "status": False, "errorMessage": message, "statusCode": code}

        if not _VALID_KEY.match(key):
            return failed(
                400,
                f"Invalid document key: '{key}'. Keys can only contain letters, digits, "
                "underscore (_), dash (-), or equal sign (=).",
            )
        injected = self._doc_failures.get(key)
        if injected is not None:
            code, message, times = injected
            if times is not None:
                injected[2] = times - 1
                if injected[2] <= 0:
                    del self._doc_failures[key]
            return failed(code, message)
        current = index.latest(key)
        exists = current is not None
        if kind == "delete":
            index.write(key, None, due)
            code = 200
        elif kind == "upload":
            index.write(key, doc, due)
            code = 200 if exists else 201
        elif kind == "merge" and not exists:
            return failed(404, "Document not found.")
        else:  # merge, mergeOrUpload
            merged = {**current, **doc} if current is not None else doc
            index.write(key, merged, due)
            code = 200 if exists else 201
        return {"key": key, "status": True, "errorMessage": None, "statusCode": code}

    @staticmethod
    def _project(index: _Index, doc: dict[str, Any], select: list[str] | None) -> dict[str, Any]:
        if select and select != ["*"]:
            unknown = [s for s in select if s not in index.fields]
            if unknown:
                raise ODataError(
                    f"Invalid expression: Could not find a property named '{unknown[0]}' on "
                    "type 'search.document'."
                )
            names = select
        else:
            names = list(index.fields)
        return {n: doc.get(n) for n in names if index.retrievable(n) and n in doc}

    # -- search ------------------------------------------------------------------------------------

    @staticmethod
    def _query_to_body(query: Any) -> dict[str, Any]:
        body: dict[str, Any] = {}
        mapping = {
            "search": "search",
            "$filter": "filter",
            "$select": "select",
            "$orderby": "orderby",
            "searchFields": "searchFields",
            "searchMode": "searchMode",
            "queryType": "queryType",
            "captions": "captions",
            "answers": "answers",
        }
        for src, dst in mapping.items():
            if src in query:
                body[dst] = query[src]
        for src, dst in (("$top", "top"), ("$skip", "skip")):
            if src in query:
                body[dst] = int(query[src])
        if "$count" in query:
            body["count"] = query["$count"].lower() == "true"
        return body

    def _search(self, index: _Index, body: dict[str, Any]) -> dict[str, Any]:
        filter_text = body.get("filter")
        predicate = parse_filter(filter_text, index.fields) if filter_text else None
        search_fields = _csv(body.get("searchFields"))
        for f in search_fields:
            if f not in index.searchable:
                raise ODataError(f"Invalid search field '{f}': not a searchable field.")
        select = _csv(body.get("select")) or None
        if select:
            self._project(index, {}, select)  # validates names
        top = body.get("top")
        skip = int(body.get("skip") or 0)
        mode = str(body.get("searchMode") or "any").lower()
        text = body.get("search")
        text_query = text if isinstance(text, str) and text.strip() not in ("", "*") else None
        vector_queries = body.get("vectorQueries") or []
        post_filter = str(body.get("vectorFilterMode") or "").lower() in (
            "postfilter",
            "strictpostfilter",
        )

        keys = list(index.docs)
        filtered = [k for k in keys if predicate(index.docs[k])] if predicate is not None else keys
        legs: list[tuple[list[tuple[str, float]], float]] = []  # (ranked results, weight)
        if text_query is not None:
            scores = index.text_scores(text_query, filtered, search_fields, mode)
            legs.append((sorted(scores.items(), key=lambda kv: -kv[1]), 1.0))
        for vq in vector_queries:
            if not isinstance(vq, dict) or vq.get("kind", "vector") != "vector":
                kind = vq.get("kind") if isinstance(vq, dict) else "?"
                raise ODataError(f"Vector query kind '{kind}' is not supported by the fake.")
            vector = vq.get("vector")
            fields = _csv(vq.get("fields"))
            if not isinstance(vector, list) or not fields:
                raise ODataError("A vector query needs 'vector' and 'fields'.")
            for f in fields:
                if f not in index.vector_fields:
                    raise ODataError(f"Field '{f}' is not a vector field of the index.")
                dims = index.vector_fields[f].get("dimensions")
                if len(vector) != dims:
                    raise ODataError(
                        f"The vector field '{f}', with dimension of '{dims}', expects a length "
                        f"of '{dims}'. However, the provided vector has a length of "
                        f"'{len(vector)}'. Please ensure that the vector length matches the "
                        "vector field dimension."
                    )
            k = int(vq.get("k") or 50)
            candidates = keys if post_filter else filtered
            ranked = sorted(
                index.vector_scores(vector, fields, candidates).items(), key=lambda kv: -kv[1]
            )[:k]
            if post_filter and predicate is not None:
                ranked = [kv for kv in ranked if predicate(index.docs[kv[0]])]
            legs.append((ranked, float(vq.get("weight") or 1.0)))

        if not legs:
            results = [(k, 1.0) for k in filtered]
        elif len(legs) == 1:
            results = legs[0][0]
        else:
            fused: dict[str, float] = {}
            for ranked, weight in legs:
                for rank, (k, _) in enumerate(ranked, start=1):
                    fused[k] = fused.get(k, 0.0) + weight / (_RRF_K + rank)
            results = sorted(fused.items(), key=lambda kv: -kv[1])

        if body.get("orderby"):
            results = self._order(index, results, str(body["orderby"]))
        count = len(results)
        if top is None:
            top = 50 if text_query is not None or not vector_queries else count
        page = results[skip : skip + int(top)]

        semantic = str(body.get("queryType") or "").lower() == "semantic"
        reranked: dict[str, float] = {}
        if semantic:
            configs = (index.definition.get("semantic") or {}).get("configurations") or []
            wanted = body.get("semanticConfiguration") or (
                (index.definition.get("semantic") or {}).get("defaultConfiguration")
            )
            if wanted not in {c.get("name") for c in configs}:
                raise ODataError(
                    f"Invalid semantic configuration '{wanted}': the index has no semantic "
                    "configuration of that name."
                )
            # The semantic ranker reorders the first 50 results by its own score.
            head = results[: max(50, skip + int(top))]
            reranked = {k: index.reranker_score(text or "", k) for k, _ in head}
            page = sorted(head, key=lambda kv: -reranked[kv[0]])[skip : skip + int(top)]
        captions = str(body.get("captions") or "").lower().startswith("extractive")
        value = []
        for k, score in page:
            doc = index.docs[k]
            item: dict[str, Any] = {"@search.score": score}
            if semantic:
                item["@search.rerankerScore"] = reranked[k]
                if captions:
                    text_field = next((f for f in index.searchable if doc.get(f)), None)
                    caption = str(doc.get(text_field) or "")[:200] if text_field else ""
                    item["@search.captions"] = [{"text": caption, "highlights": None}]
            item.update(self._project(index, doc, select))
            value.append(item)
        out: dict[str, Any] = {}
        if body.get("count"):
            out["@odata.count"] = count
        if semantic and body.get("answers"):
            out["@search.answers"] = []
        out["value"] = value
        return out

    @staticmethod
    def _order(
        index: _Index, results: list[tuple[str, float]], orderby: str
    ) -> list[tuple[str, float]]:
        clauses = []
        for part in orderby.split(","):
            words = part.split()
            if not words:
                continue
            expr, direction = words[0], (words[1].lower() if len(words) > 1 else "asc")
            if expr != "search.score()" and expr not in index.fields:
                raise ODataError(
                    f"Invalid expression: Could not find a property named '{expr}' on type "
                    "'search.document'."
                )
            clauses.append((expr, direction == "desc"))
        ordered = list(results)
        for expr, desc in reversed(clauses):
            if expr == "search.score()":
                ordered.sort(key=lambda kv: kv[1], reverse=desc)
            else:
                present = [kv for kv in ordered if index.docs[kv[0]].get(expr) is not None]
                missing = [kv for kv in ordered if index.docs[kv[0]].get(expr) is None]
                present.sort(key=lambda kv: index.docs[kv[0]][expr], reverse=desc)
                ordered = (missing + present) if not desc else (present + missing)
        return ordered


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Fake Azure AI Search service (tests/fakes).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8902)
    parser.add_argument("--api-key", default="fake-search-admin-key", help="'' for no auth")
    parser.add_argument("--log-limit", type=int, default=1000)
    args = parser.parse_args(argv)
    FakeAzureSearch(
        api_key=args.api_key or None, host=args.host, port=args.port, log_limit=args.log_limit
    ).serve_forever()


if __name__ == "__main__":
    main()
