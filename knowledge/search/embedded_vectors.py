"""The embedded index's vectors, held in memory as one float32 matrix per process.

A vector query is then one matrix-vector product over rows normalised once (numpy, which releases
the GIL, so concurrent searches use every core) instead of reading every stored vector out
of SQLite for each question. The index file stays the truth: every upsert or delete of a document
records its id in the `changes` table in the same transaction, under the generation number that
transaction sets, so a process that finds a newer generation (this one, or another process
sharing the file) reloads just the documents changed since the generation it holds. A
process that fell further behind than the log keeps, or finds the file rebuilt (a new epoch),
reloads everything.

Rows are never changed in place: a document's new rows are appended, its old rows are marked dead
in a fresh `alive` array, and arrays are replaced by larger or compacted copies when needed. A
search works on one immutable `Snapshot` and needs no lock; only refreshing takes one.

sqlite-vec would do the same brute-force scan inside SQLite, but loading it needs
`enable_load_extension`, which many Python builds leave out of `sqlite3` (the one this was
measured on among them), so it would mean shipping a second SQLite binding; numpy over memory is
as fast as its C loop over pages.

A question reads an int8 copy of the matrix rather than the float32 one: simsimd's int8 dot
products pick the best few dozen candidates from a quarter of the bytes (2.7 ms for a question
at 100k x 384 against 8.9 ms for the float32 scan), and those candidates alone are then scored
exactly in float32, so the hits and cosines returned are the float32 scan's. simsimd holds the GIL
for its 2 ms, where einsum let go of it: concurrent scans take turns, but each is a third of the
work. Without simsimd the float32 matrix is scanned as before.
"""

import importlib
import logging
import sqlite3
import threading
from dataclasses import dataclass, field, replace
from types import ModuleType

import numpy as np
import numpy.typing as npt

from knowledge.search.base import SearchBackendError

try:
    simsimd: ModuleType | None = importlib.import_module("simsimd")
except ImportError:  # an install without it scans the float32 matrix
    simsimd = None

log = logging.getLogger(__name__)

# The change log keeps this many generations; a process further behind reloads every vector.
CHANGES_KEPT = 10_000
# Past this many changed documents, one full reload is cheaper than applying them one by one.
_INCREMENTAL_LIMIT = 2_000

# The int8 scan keeps this many candidates per wanted hit (and at least _MIN_CANDIDATES) for the
# exact float32 re-rank. On bench.search_scale's 100k corpus the exact top k sat within the
# int8 order's first k + 8 (k = 1 to 30, 1,000 questions near a passage, 300 random, 300
# between two topics); on 100k vectors drawn to the spread of real multilingual-e5-small
# passages (cosines squeezed into 0.8 to 0.9), within k + 14, for real e5 questions too. 8 per
# hit leaves a wide margin at the price of a few hundred rows re-scored.
_CANDIDATES_PER_HIT = 8
_MIN_CANDIDATES = 64
_SAMPLE_STRIDE = 16
_warned = False

Matrix = npt.NDArray[np.float32]
Codes = npt.NDArray[np.int8]
Ints = npt.NDArray[np.int64]
Bits = npt.NDArray[np.uint64]
Flags = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class Snapshot:
    """The vectors of one generation of the index file. Rows [0, count) are in use; rows of
    `matrix` and its companions at or after `count` may be written by a later snapshot."""

    epoch: str
    generation: int
    dims: int = 0
    count: int = 0
    matrix: Matrix = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    # The same rows as int8: round(matrix * scale), one scale for every row (see _scale_for).
    codes: Codes = field(default_factory=lambda: np.zeros((0, 0), np.int8))
    scale: float = 127.0
    alive: Flags = field(default_factory=lambda: np.zeros(0, np.bool_))
    rowids: Ints = field(default_factory=lambda: np.zeros(0, np.int64))
    documents: Ints = field(default_factory=lambda: np.zeros(0, np.int64))
    # Access: bit i of a row's words is set when its document carries group_bits' group i.
    groups: Bits = field(default_factory=lambda: np.zeros((0, 1), np.uint64))
    collections: npt.NDArray[np.int32] = field(default_factory=lambda: np.zeros(0, np.int32))
    group_bits: dict[str, int] = field(default_factory=dict)
    collection_codes: dict[str, int] = field(default_factory=dict)

    @property
    def dead(self) -> int:
        return self.count - int(self.alive.sum())

    def nearest(
        self, vector: tuple[float, ...], groups: list[str] | None, collection: str | None, k: int
    ) -> list[tuple[int, float]]:
        """(rowid, cosine) of the k rows nearest `vector` among those of a document carrying one
        of `groups` (None: every document) in `collection` (None: any), best first."""
        if self.count == 0 or k <= 0:
            return []
        q = np.asarray(vector, dtype=np.float32)
        if q.shape[0] != self.dims:
            raise SearchBackendError(
                f"the question's vector has {q.shape[0]} dimensions, the index {self.dims}",
                transient=False,
            )
        norm = float(np.linalg.norm(q))
        if norm:
            q = q / norm
        n = self.count
        ok = self.alive
        if groups is not None:
            wanted = self.group_mask(groups)
            if not wanted.any():
                return []
            ok = ok & (self.groups[:n] & wanted).any(axis=1)
        if collection is not None:
            code = self.collection_codes.get(collection)
            if code is None:
                return []
            ok = ok & (self.collections[:n] == code)
        allowed = int(ok.sum())
        if not allowed:
            return []
        k = min(k, allowed)
        pool = max(_CANDIDATES_PER_HIT * k, _MIN_CANDIDATES)
        # einsum's own loop, not BLAS: as fast for one vector, and it keeps to the calling
        # thread, where OpenBLAS's threads for each of two concurrent scans fought over the
        # cores (two scans at once took longer each than one after the other).
        if pool >= allowed:
            rows = np.flatnonzero(ok)  # few enough to score every one exactly
            scores = np.einsum("ij,j->i", self.matrix[rows], q)
        elif simsimd is None:
            _warn_once()
            rows = np.flatnonzero(ok)
            scores = np.einsum("ij,j->i", self.matrix[:n], q)[rows]
        else:
            rows = self._candidates(q, ok, pool)
            scores = np.einsum("ij,j->i", self.matrix[rows], q)
        return self._best(rows, scores, k)

    def _candidates(self, q: Matrix, ok: Flags, pool: int) -> Ints:
        """The rows of `ok` whose int8 dot product with `q` is among the `pool` best (and any
        tied with the last of those, so equal rows are kept or dropped together)."""
        assert simsimd is not None
        n = self.count
        peak = float(np.abs(q).max())
        q8 = np.rint(q * (127.0 / peak if peak else 1.0)).astype(np.int8)
        # One thread: the scan runs beside the text half and other questions. float32 holds
        # every dot product exactly below 2**24 (1,040 dimensions at full scale), and beyond
        # that only the candidates' order shifts, never the exact scores returned.
        approx = np.asarray(
            simsimd.cdist(q8[None, :], self.codes[:n], "dot", out_dtype="float32", threads=1)
        ).reshape(n)
        approx[~ok] = -np.inf
        return _top_rows(approx, pool)

    def _best(self, rows: Ints, scores: Matrix, k: int) -> list[tuple[int, float]]:
        """(rowid, cosine) of the k best of `rows`, best first; equal cosines by rowid, so the
        answer does not depend on where rows sit in the arrays."""
        if k < len(rows):
            cut = np.partition(scores, len(scores) - k)[len(scores) - k]
            keep = scores >= cut
            rows, scores = rows[keep], scores[keep]
        rowids = self.rowids[rows]
        order = np.lexsort((rowids, -scores))[:k]
        return [(int(rowids[i]), float(scores[i])) for i in order]

    def group_mask(self, groups: list[str]) -> Bits:
        mask = np.zeros(self.groups.shape[1], np.uint64)
        for group in groups:
            bit = self.group_bits.get(group)
            if bit is not None:
                mask[bit // 64] |= np.uint64(1 << (bit % 64))
        return mask


def _top_rows(values: Matrix, pool: int) -> Ints:
    """The positions of the `pool` largest of `values` and of any equal to the last of those.

    One partition of all 100k values costs 0.6 to 1 ms, a quarter of the scan, so the cut is
    guessed from every 16th value, aiming at 4 * pool values above it, and found exactly among
    those alone. If fewer than `pool` values clear the guess (the sample missed where the best
    lie), every value is partitioned instead; otherwise the pool-th largest is at least the
    guess, so all values from it up are among those kept, and the answer is the same."""
    sample = values[::_SAMPLE_STRIDE]
    rank = min(sample.size, max(1, 4 * pool // _SAMPLE_STRIDE))
    guess = float(np.partition(sample, sample.size - rank)[sample.size - rank])
    above: Ints = np.flatnonzero(values >= guess)
    if len(above) < pool:
        above = np.arange(len(values))
    kept = values[above]
    cut = float(np.partition(kept, len(kept) - pool)[len(kept) - pool])
    return above[kept >= cut]


def _warn_once() -> None:
    global _warned
    if not _warned:
        _warned = True
        log.warning("simsimd is not installed: vector questions scan the float32 matrix")


def _scale_for(peak: float) -> float:
    """The int8 scale for rows whose largest component magnitude is `peak`: the largest that
    keeps every code within [-127, 127]. Rows are unit vectors, so peak <= 1 and the scale is at
    least 127: every code fits in int8, and a dot product of two code vectors stays far inside
    simsimd's int32 sum (127 * 127 * dims < 2**31 up to 133k dimensions)."""
    return 127.0 / peak if peak > 0 else 127.0


class VectorCache:
    """The current Snapshot of one index file, for every thread of one process."""

    def __init__(self) -> None:
        self._snapshot: Snapshot | None = None
        self._lock = threading.Lock()

    def clear(self) -> None:
        self._snapshot = None

    def current(self, conn: sqlite3.Connection, epoch: str, generation: int) -> Snapshot:
        """A snapshot at least as new as `generation` (read by the caller in the same read
        transaction as `conn` uses now, so the change log and the chunks agree with it)."""
        snapshot = self._snapshot
        if _fresh(snapshot, epoch, generation):
            assert snapshot is not None
            return snapshot
        with self._lock:
            snapshot = self._snapshot
            if _fresh(snapshot, epoch, generation):
                assert snapshot is not None
                return snapshot
            snapshot = _refresh(conn, snapshot, epoch, generation)
            self._snapshot = snapshot
            return snapshot


def _fresh(snapshot: Snapshot | None, epoch: str, generation: int) -> bool:
    return snapshot is not None and snapshot.epoch == epoch and snapshot.generation >= generation


def _refresh(
    conn: sqlite3.Connection, snapshot: Snapshot | None, epoch: str, generation: int
) -> Snapshot:
    if snapshot is not None and snapshot.epoch == epoch:
        changes = conn.execute(
            "SELECT generation, document_id FROM changes WHERE generation > ? ORDER BY generation",
            (snapshot.generation,),
        ).fetchall()
        documents = sorted({document_id for _, document_id in changes})
        if (
            changes
            and changes[0][0] == snapshot.generation + 1
            and len(documents) <= _INCREMENTAL_LIMIT
        ):
            try:
                return _load(conn, replace(snapshot, generation=generation), documents)
            except _OtherSize:
                pass  # perhaps every vector was replaced since: the full load tells
    try:
        return _load(conn, Snapshot(epoch, generation), None)
    except _OtherSize:
        raise SearchBackendError(
            "the search index holds vectors of different sizes (the embedding model changed): "
            "run `manage.py sync_index --rebuild`",
            transient=False,
        ) from None


class _OtherSize(Exception):
    pass


def _load(conn: sqlite3.Connection, base: Snapshot, documents: list[int] | None) -> Snapshot:
    """`base` with the current rows of `documents` (None: every document, into an empty base)."""
    chunk_sql = "SELECT rowid, document_id, collection, embedding FROM chunks"
    chunk_sql += " WHERE embedding IS NOT NULL"
    group_sql = "SELECT document_id, grp FROM document_groups"
    params: list[int] = []
    if documents is not None:
        marks = ",".join("?" * len(documents))
        chunk_sql += f" AND document_id IN ({marks})"
        group_sql += f" WHERE document_id IN ({marks})"
        params = documents
    rows = conn.execute(chunk_sql, params).fetchall()
    doc_groups: dict[int, list[str]] = {}
    for document_id, group in conn.execute(group_sql, params):
        doc_groups.setdefault(document_id, []).append(group)

    if documents is not None and base.count:
        gone = np.isin(base.documents[: base.count], np.asarray(documents, np.int64))
        base = replace(base, alive=base.alive & ~gone)
    if not rows:
        return base
    sizes = {len(r[3]) for r in rows}
    if base.dims and base.count > base.dead:
        sizes.add(base.dims * 4)
    if len(sizes) > 1:
        raise _OtherSize
    return _append(base, rows, doc_groups, sizes.pop() // 4)


def _append(
    base: Snapshot,
    rows: list[tuple[int, int, str, bytes]],
    doc_groups: dict[int, list[str]],
    dims: int,
) -> Snapshot:
    group_bits = dict(base.group_bits)
    for names in doc_groups.values():
        for name in names:
            group_bits.setdefault(name, len(group_bits))
    collection_codes = dict(base.collection_codes)
    for row in rows:
        collection_codes.setdefault(row[2], len(collection_codes))
    words = max(1, -(-len(group_bits) // 64))

    raw = np.frombuffer(b"".join(r[3] for r in rows), dtype=np.float32)
    vectors = raw.reshape(len(rows), dims)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit = (vectors / np.where(norms == 0, 1.0, norms)).astype(np.float32, copy=False)
    peak = float(np.abs(unit).max())

    count, k = base.count, len(rows)
    live = base.count - base.dead
    grow = count + k > base.matrix.shape[0] or dims != base.dims
    # A new row with a component beyond the current scale's reach means a new scale for all.
    # (127.4, not 127: a code rounds to at most 127 below 127.5, and a re-sent row whose peak set
    # the scale must not miss by a rounding error and copy every array.)
    wider = peak * base.scale > 127.4
    scale = base.scale
    if grow or wider or base.dead > live or words > base.groups.shape[1]:
        # New arrays (the old ones stay with the snapshots still reading them): live rows only,
        # with room to grow.
        keep = np.flatnonzero(base.alive)
        capacity = (live + k) * 5 // 4 + 1024  # a quarter to spare: a copy per quarter added
        kept: Matrix = base.matrix[keep] if live else np.zeros((0, dims), np.float32)
        scale = _scale_for(max(peak, float(np.abs(kept).max(initial=0.0))))
        matrix = np.zeros((capacity, dims), np.float32)
        codes = np.zeros((capacity, dims), np.int8)
        rowids = np.zeros(capacity, np.int64)
        documents = np.zeros(capacity, np.int64)
        groups = np.zeros((capacity, words), np.uint64)
        collections = np.zeros(capacity, np.int32)
        if live:
            matrix[:live] = kept
            codes[:live] = _quantise(kept, scale)
            rowids[:live] = base.rowids[keep]
            documents[:live] = base.documents[keep]
            groups[:live, : base.groups.shape[1]] = base.groups[keep]
            collections[:live] = base.collections[keep]
        count, alive = live, np.ones(live, np.bool_)
    else:
        matrix, codes = base.matrix, base.codes
        rowids, documents = base.rowids, base.documents
        groups, collections, alive = base.groups, base.collections, base.alive

    new = slice(count, count + k)
    matrix[new] = unit
    codes[new] = _quantise(unit, scale)
    rowids[new] = [r[0] for r in rows]
    documents[new] = [r[1] for r in rows]
    collections[new] = [collection_codes[r[2]] for r in rows]
    masks: dict[int, Bits] = {}
    for document_id in {r[1] for r in rows}:
        mask = np.zeros(words, np.uint64)
        for group in doc_groups.get(document_id, []):
            bit = group_bits[group]
            mask[bit // 64] |= np.uint64(1 << (bit % 64))
        masks[document_id] = mask
    groups[new] = np.stack([masks[r[1]] for r in rows])
    return Snapshot(
        epoch=base.epoch,
        generation=base.generation,
        dims=dims,
        count=count + k,
        matrix=matrix,
        codes=codes,
        scale=scale,
        alive=np.concatenate([alive, np.ones(k, np.bool_)]),
        rowids=rowids,
        documents=documents,
        groups=groups,
        collections=collections,
        group_bits=group_bits,
        collection_codes=collection_codes,
    )


def _quantise(unit: Matrix, scale: float) -> Codes:
    return np.rint(unit * np.float32(scale)).astype(np.int8)
