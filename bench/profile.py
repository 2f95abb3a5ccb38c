"""Read py-spy's collapsed stacks (``py-spy record --format raw --threads``) into percentages.

Each line is ``frame;frame;...;frame COUNT`` with frames like ``function (path/file.py:LINE)``;
with ``--threads`` the first frame names the thread. Record with ``--gil``: only the thread that
holds the GIL is sampled, so the percentages are shares of the Python CPU time that caps one
process (without it, py-spy also counts the hundreds of parked executor threads).

    python -m bench.profile bench/results/profile-c200.txt   # prints the Markdown summary
"""

from __future__ import annotations

import re
import sys
from collections import Counter

FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")

# Call sites that answer the profile's questions (inclusive: the site and everything it calls).
CALL_SITES = {
    "openai SDK stream: SSE decode + pydantic object per chunk (AsyncStream.__stream__)": (
        "openai/_streaming.py:AsyncStream.__stream__",
    ),
    "openai SDK request start (client.post)": ("openai/_base_client.py:AsyncAPIClient.post",),
    "upstream stream relay (chat/llm/stream_relay.py:relay)": ("chat/llm/stream_relay.py:relay",),
    "DB: questions and answers, group-committed (chat/store.py:store_turns)": (
        "chat/store.py:store_turns",
    ),
    "DB: new SQLite connection per call (get_new_connection)": (
        "django/db/backends/sqlite3/base.py:DatabaseWrapper.get_new_connection",
    ),
    "search: FTS5 query (knowledge/search/embedded.py:_run)": (
        "knowledge/search/embedded.py:EmbeddedSearchBackend._run",
    ),
    "prompt: sources_block + tiktoken": ("chat/llm/openai_answerer.py:sources_block",),
    "NDJSON encode per event (chat/protocol.py:encode)": ("chat/protocol.py:encode",),
    "uvicorn send per chunk (httptools RequestResponseCycle.send)": (
        "uvicorn/protocols/http/httptools_impl.py:RequestResponseCycle.send",
        "uvicorn/protocols/http/h11_impl.py:RequestResponseCycle.send",
    ),
    "work in sync_to_async threads (asgiref thread_handler)": (
        "asgiref/sync.py:SyncToAsync.thread_handler",
    ),
    "middleware hops (MiddlewareMixin.process_* via sync_to_async)": (
        "django/middleware/",
        "django/contrib/sessions/middleware.py",
        "django/contrib/auth/middleware.py",
        "django/contrib/messages/middleware.py",
    ),
    "request_started/finished signal receivers": ("django/dispatch/dispatcher.py",),
    "thread start/stop (per-request executors)": (
        "threading.py:Thread.start",
        "concurrent/futures/thread.py:ThreadPoolExecutor.shutdown",
        "concurrent/futures/thread.py:ThreadPoolExecutor._adjust_thread_count",
    ),
    "websocket consumer (channels)": ("channels/generic/", "channels/consumer.py"),
}
# Self time by the package of the innermost Python frame.
PACKAGES = (
    ("openai", "openai SDK"), ("pydantic", "pydantic"), ("httpx", "httpx/httpcore/anyio"),
    ("httpcore", "httpx/httpcore/anyio"), ("anyio", "httpx/httpcore/anyio"),
    ("h11/", "httpx/httpcore/anyio"), ("aiohttp", "aiohttp"),
    ("django/db", "Django ORM + sqlite3"), ("django", "Django (other)"),
    ("asgiref", "asgiref"), ("channels", "channels"), ("uvicorn", "uvicorn"),
    ("websockets", "websockets"), ("asyncio", "asyncio"), ("json/", "json"),
    ("threading.py", "threading"), ("concurrent/", "threading"), ("queue.py", "threading"),
    ("tiktoken", "tiktoken"), ("chat/", "ragsite app code"), ("knowledge/", "ragsite app code"),
    ("ragsite/", "ragsite app code"), ("typing", "typing"),
)  # fmt: skip


def parse(text: str) -> list[tuple[list[str], int]]:
    stacks = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        stack, _, count = line.rpartition(" ")
        try:
            stacks.append((stack.split(";"), int(count)))
        except ValueError:
            continue
    return stacks


def _key(frame: str) -> tuple[str, str]:
    """(function, file) of a frame; the file is cut to the part after site-packages/."""
    m = FRAME.match(frame)
    if not m:
        return frame, ""
    path = m.group("file")
    for marker in ("site-packages/", "/work/main/", "lib/python3.13/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return m.group("func"), path


def _is_thread(frame: str) -> bool:
    return frame.startswith(("thread (", "process "))


def summarise(text: str, top: int = 25) -> dict:
    stacks = parse(text)
    total = sum(n for _, n in stacks) or 1
    threads: Counter = Counter()
    inclusive: Counter = Counter()
    leaf: Counter = Counter()
    sites: Counter = Counter()
    packages: Counter = Counter()
    app: Counter = Counter()
    # The loop's thread: the one whose stacks reach uvicorn's Server.run (with --nonblocking
    # some stacks come back cut short, so classify by thread id, not by each stack).
    loop_threads = {
        next((f for f in frames if f.startswith("thread (")), "")
        for frames, _ in stacks
        if any("uvicorn/server.py" in f or "run_forever" in f for f in frames)
    }
    for frames, n in stacks:
        thread = next((f for f in frames if f.startswith("thread (")), "")
        body = [f for f in frames if not _is_thread(f)]
        keys = [_key(f) for f in body]
        on_loop = thread in loop_threads
        threads["event loop (main thread)" if on_loop else f"other threads {thread}"] += n
        labels = {f"{p}:{f}" for f, p in keys}
        for label in labels:
            inclusive[label] += n
            if not label.startswith((".venv", "lib/")) and label.split(":", 1)[0].startswith(
                ("chat/", "knowledge/", "ragsite/")
            ):
                app[label] += n
        if keys:
            f, p = keys[-1]
            leaf[f"{p}:{f}"] += n
        for site, needles in CALL_SITES.items():
            if any(label.startswith(needle) for label in labels for needle in needles):
                sites[site] += n
        if keys:
            path = keys[-1][1]
            package = next((name for needle, name in PACKAGES if needle in path), "other")
            packages[package] += n

    def pct(counter: Counter, k: int = top) -> list[list]:
        return [[name, round(100 * n / total, 1)] for name, n in counter.most_common(k)]

    other = Counter()
    for name, n in threads.items():
        other["event loop (main thread)" if name.startswith("event") else "worker threads"] += n
    return {
        "samples": total,
        "threads": pct(other, 5),
        "call_sites_inclusive_pct": pct(sites, 20),
        "packages_self_pct": pct(packages, 20),
        "app_functions_inclusive_pct": pct(app),
        "functions_inclusive_pct": pct(inclusive, 40),
        "leaf_functions_self_pct": pct(leaf),
    }


def markdown(summary: dict) -> str:
    out = [f"py-spy samples: {summary['samples']} (percent of on-CPU samples)", ""]
    for title, key in (
        ("Where the samples run", "threads"),
        ("Call sites (inclusive; a sample may count in several)", "call_sites_inclusive_pct"),
        ("Self time by package of the innermost frame", "packages_self_pct"),
        ("ragsite's own functions (inclusive)", "app_functions_inclusive_pct"),
        ("All functions (inclusive)", "functions_inclusive_pct"),
        ("Leaf functions (self time)", "leaf_functions_self_pct"),
    ):
        out += [f"### {title}", "", "| % | where |", "|--:|---|"]
        out += [f"| {p} | `{name}` |" for name, p in summary[key]]
        out.append("")
    load = summary.get("load")
    if isinstance(load, dict):
        out.append(
            f"Load during the profile: C={load.get('concurrency')}, {load.get('chats_per_s')} "
            f"chats/s, {load.get('errors')} errors, total p99 {load.get('total_p99_ms')} ms."
        )
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        print(markdown(summarise(f.read())))
