"""The load generator: C concurrent chats in a closed loop, in its own process, printing one JSON
object (per-phase summary plus its own CPU) on stdout.

Modes:

* ``http``     POST /chat/stream on ragsite (or the sync baseline), NDJSON lines.
* ``ws``       /ws/chat/ on ragsite: open ``--open`` sockets, ``--concurrency`` of them answer.
* ``upstream`` the fake OpenAI server itself (POST /v1/chat/completions, stream=True): the ceiling.

Each of the C workers runs chats back to back until ``--duration`` seconds have passed (or
``--max-chats`` were started); chats in flight then finish (each is bounded by ``--timeout``).
Steady throughput is the number of chats that *completed* inside [warmup, duration], divided by
that window; latency percentiles use the chats that *started* inside it. Errors count everywhere.

With ``--api-key-file`` every chat (http) and every socket's handshake (ws) carries
``Authorization: Bearer <key>``: the cost of an authenticated caller against an anonymous one.

Parsing is kept cheap on purpose (on 2 shared cores the generator's CPU is the server's loss):
only the first and last NDJSON lines are decoded; deltas are counted as bytes.

Usage: python -m bench.loadgen --mode http --url http://127.0.0.1:8000 --concurrency 50 ...
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
from dataclasses import dataclass

import aiohttp

QUESTION = "How many unused vacation days can I carry over?"
CHAT_BODY = json.dumps({"messages": [{"role": "user", "content": QUESTION}]}).encode()
# What the ceiling sends: the shape of ragsite's own upstream request (system prompt with quoted
# sources, then the question), so the fake answers with an echo of similar length.
UPSTREAM_BODY = json.dumps(
    {
        "model": "bench",
        "stream": True,
        "stream_options": {"include_usage": True},
        "messages": [
            {
                "role": "system",
                "content": "Answer from the sources.\n\nSources:\n"
                + "\n".join(
                    f"[leave-policy.md#{i}]: Employees may carry over up to five unused vacation "
                    f"days into the next calendar year; section {i} explains the deadline."
                    for i in range(1, 6)
                ),
            },
            {"role": "user", "content": QUESTION},
        ],
    }
).encode()
DELTA = b"response.output_text.delta"
WS_CHAT = '{"type":"chat",' + CHAT_BODY[1:].decode()
WS_DELTA = '"response.output_text.delta"'
WS_DONE = '"response.completed"'


@dataclass(slots=True)
class Chat:
    start: float
    first_byte: float | None = None
    first_token: float | None = None
    end: float | None = None
    deltas: int = 0
    error: str | None = None


def now() -> float:
    return time.perf_counter()


def raise_nofile(want: int = 16384) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(want, hard) if hard != resource.RLIM_INFINITY else want
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# -- one chat per channel ------------------------------------------------------------------------
async def http_chat(session: aiohttp.ClientSession, url: str, headers: dict) -> Chat:
    chat = Chat(start=now())
    try:
        async with session.post(url, data=CHAT_BODY, headers=headers) as resp:
            if resp.status != 200:
                text = (await resp.read())[:200].decode(errors="replace")
                chat.error = f"HTTP {resp.status}: {text}"
                return chat
            parts = []
            async for data in resp.content.iter_any():
                t = now()
                if chat.first_byte is None:
                    chat.first_byte = t
                if chat.first_token is None and DELTA in data:
                    chat.first_token = t
                parts.append(data)
            chat.end = now()
        body = b"".join(parts)
        lines = body.rstrip(b"\n").split(b"\n")
        chat.deltas = body.count(DELTA)
        first, last = json.loads(lines[0]), json.loads(lines[-1])
        if b'{"error"' in body:
            chat.error = "error line: " + body[body.index(b'{"error"') :][:200].decode()
        elif first.get("type") != "response.context" or last.get("type") != "response.context":
            chat.error = "stream did not start and end with response.context"
        elif chat.deltas == 0:
            chat.error = "no deltas"
        elif chat.first_token is None:  # a delta split across reads
            chat.first_token = chat.end
    except TimeoutError:
        chat.error = "timeout"
    except (aiohttp.ClientError, ValueError, IndexError) as exc:
        chat.error = f"{type(exc).__name__}: {exc}"[:200]
    return chat


async def upstream_chat(session: aiohttp.ClientSession, url: str) -> Chat:
    chat = Chat(start=now())
    try:
        async with session.post(
            url, data=UPSTREAM_BODY, headers={"Content-Type": "application/json"}
        ) as resp:
            if resp.status != 200:
                chat.error = f"HTTP {resp.status}"
                return chat
            parts = []
            async for data in resp.content.iter_any():
                t = now()
                if chat.first_byte is None:
                    chat.first_byte = t
                if chat.first_token is None and b'"content"' in data:
                    chat.first_token = t
                parts.append(data)
            chat.end = now()
        body = b"".join(parts)
        chat.deltas = body.count(b'"content"')
        if not body.rstrip().endswith(b"data: [DONE]"):
            chat.error = "SSE stream did not end with [DONE]"
        elif chat.first_token is None:
            chat.first_token = chat.end
    except TimeoutError:
        chat.error = "timeout"
    except aiohttp.ClientError as exc:
        chat.error = f"{type(exc).__name__}: {exc}"[:200]
    return chat


async def ws_chat(ws: aiohttp.ClientWebSocketResponse, limit: float) -> Chat:
    chat = Chat(start=now())
    try:
        await ws.send_str(WS_CHAT)
        async with asyncio.timeout(limit):
            while True:
                msg = await ws.receive()
                if msg.type != aiohttp.WSMsgType.TEXT:
                    chat.error = f"socket {msg.type.name}"
                    return chat
                data = msg.data
                t = now()
                if chat.first_byte is None:
                    chat.first_byte = t
                    if not data.startswith('{"type":"response.context"'):
                        chat.error = "first frame: " + data[:200]
                if WS_DELTA in data:
                    chat.deltas += 1
                    if chat.first_token is None:
                        chat.first_token = t
                elif data.startswith('{"error"'):
                    chat.error = "error frame: " + data[:200]
                elif WS_DONE in data:
                    chat.end = t
                    break
        if chat.error is None and chat.deltas == 0:
            chat.error = "no deltas"
    except TimeoutError:
        chat.error = "timeout"
    except (aiohttp.ClientError, ConnectionError) as exc:
        chat.error = f"{type(exc).__name__}: {exc}"[:200]
    return chat


# -- the closed loop -----------------------------------------------------------------------------
async def closed_loop(n: int, one_chat, duration: float, max_chats: int) -> tuple[list, float]:
    """n workers, chats back to back until `duration` or `max_chats`; returns (chats, t0)."""
    chats: list[Chat] = []
    t0 = now()
    deadline = t0 + duration
    started = 0

    async def worker(i: int):
        nonlocal started
        while now() < deadline and started < max_chats:
            started += 1
            chats.append(await one_chat(i))

    await asyncio.gather(*(worker(i) for i in range(n)))
    return chats, t0


def pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    k = min(len(values) - 1, max(0, round(p / 100 * (len(values) - 1))))
    return round(values[k] * 1000, 1)


def summarise(chats: list[Chat], t0: float, warmup: float, duration: float) -> dict:
    ok = [c for c in chats if c.error is None and c.end is not None]
    errors = [c for c in chats if c.error is not None]
    w0, w1 = t0 + warmup, t0 + duration
    in_window = [c for c in ok if w0 <= c.end <= w1]
    steady = [c for c in ok if w0 <= c.start <= w1] or ok
    kinds: dict[str, int] = {}
    for c in errors:
        key = c.error.split(":")[0][:60]
        kinds[key] = kinds.get(key, 0) + 1
    return {
        "chats_started": len(chats),
        "chats_ok": len(ok),
        "errors": len(errors),
        "error_kinds": kinds,
        "error_samples": [c.error for c in errors[:3]],
        "window_s": round(duration - warmup, 2),
        "chats_in_window": len(in_window),
        "chats_per_s": round(len(in_window) / (duration - warmup), 2),
        # Every completed chat over the whole run, ramp and drain included.
        "overall_chats_per_s": round(len(ok) / (max(c.end for c in ok) - t0), 2) if ok else 0.0,
        "latency_sample": len(steady),
        "deltas_per_chat": round(sum(c.deltas for c in ok) / len(ok), 1) if ok else 0,
        **{
            f"{name}_p{p}_ms": pct([getattr(c, attr) - c.start for c in steady], p)
            for name, attr in (("ttfb", "first_byte"), ("ttft", "first_token"), ("total", "end"))
            for p in (50, 95, 99)
        },
        "last_end_s": round(max((c.end or c.start) for c in chats) - t0, 2) if chats else 0,
    }


def read_status(pid: int) -> dict:
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(("VmRSS:", "Threads:")):
                    key, value = line.split(":", 1)
                    out[key] = int(value.split()[0])
    except OSError:
        pass
    return {"rss_mb": round(out.get("VmRSS", 0) / 1024, 1), "threads": out.get("Threads", 0)}


async def run(args) -> dict:
    nofile = raise_nofile(max(4096, args.open + args.concurrency + 256))
    connector = aiohttp.TCPConnector(limit=0, limit_per_host=0, force_close=False)
    timeout = aiohttp.ClientTimeout(total=args.timeout, sock_connect=10)
    result: dict = {"mode": args.mode, "concurrency": args.concurrency, "nofile": nofile}
    result["bearer"] = bool(args.api_key_file)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        if args.mode == "http":
            url = args.url.rstrip("/") + "/chat/stream"
            headers = {"Content-Type": "application/json", **auth_headers(args)}
            chats, t0 = await closed_loop(
                args.concurrency,
                lambda i: http_chat(session, url, headers),
                args.duration,
                args.max_chats,
            )
        elif args.mode == "upstream":
            url = args.url.rstrip("/") + "/v1/chat/completions"
            chats, t0 = await closed_loop(
                args.concurrency,
                lambda i: upstream_chat(session, url),
                args.duration,
                args.max_chats,
            )
        else:
            result.update(await run_ws(session, args))
            chats, t0 = result.pop("_chats"), result.pop("_t0")
    result.update(summarise(chats, t0, args.warmup, args.duration))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result["loadgen_cpu_s"] = round(usage.ru_utime + usage.ru_stime, 2)
    return result


def auth_headers(args) -> dict:
    if not args.api_key_file:
        return {}
    with open(args.api_key_file) as f:
        return {"Authorization": f"Bearer {f.read().strip()}"}


async def run_ws(session: aiohttp.ClientSession, args) -> dict:
    url = args.url.rstrip("/").replace("http://", "ws://") + "/ws/chat/"
    origin = args.url.rstrip("/")
    n_open = max(args.open, args.concurrency)
    out: dict = {"ws_open_requested": n_open}
    if args.server_pid:
        out["server_before_open"] = read_status(args.server_pid)
    sockets: list = [None] * n_open
    headers = auth_headers(args)  # a bearer socket: the key on the handshake, checked each turn
    gate = asyncio.Semaphore(100)  # connect in waves; a 2,000-socket SYN flood proves nothing
    connect_errors: list[str] = []

    async def connect(i):
        async with gate:
            try:
                sockets[i] = await session.ws_connect(
                    url,
                    origin=origin,
                    headers=headers,
                    heartbeat=None,
                    autoping=True,
                    max_msg_size=0,
                )
            except (aiohttp.ClientError, TimeoutError) as exc:
                connect_errors.append(f"{type(exc).__name__}: {exc}"[:200])

    t = now()
    await asyncio.gather(*(connect(i) for i in range(n_open)))
    out["ws_connect_s"] = round(now() - t, 2)
    out["ws_connect_errors"] = len(connect_errors)
    out["ws_connect_error_samples"] = connect_errors[:3]
    await asyncio.sleep(args.settle)
    if args.server_pid:
        out["server_idle_open"] = after = read_status(args.server_pid)
        before = out["server_before_open"]
        opened = sum(1 for s in sockets if s is not None)
        if opened:
            out["rss_kb_per_idle_socket"] = round(
                (after["rss_mb"] - before["rss_mb"]) * 1024 / opened, 1
            )
    active = [s for s in sockets if s is not None][: args.concurrency]
    chats, t0 = await closed_loop(
        len(active), lambda i: ws_chat(active[i], args.timeout), args.duration, args.max_chats
    )
    out["ws_open_at_end"] = sum(1 for s in sockets if s is not None and not s.closed)
    if args.server_pid:
        out["server_after_chats"] = read_status(args.server_pid)
    await asyncio.gather(*(s.close() for s in sockets if s is not None), return_exceptions=True)
    out["_chats"], out["_t0"] = chats, t0
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mode", choices=("http", "ws", "upstream"), required=True)
    p.add_argument("--url", required=True, help="base URL, e.g. http://127.0.0.1:8000")
    p.add_argument("--concurrency", type=int, required=True)
    p.add_argument("--duration", type=float, default=20.0, help="seconds of starting new chats")
    p.add_argument("--warmup", type=float, default=5.0, help="seconds not counted in the window")
    p.add_argument("--max-chats", type=int, default=100_000)
    p.add_argument("--timeout", type=float, default=60.0, help="per chat, seconds")
    p.add_argument("--open", type=int, default=0, help="ws: sockets to hold open")
    p.add_argument("--settle", type=float, default=2.0, help="ws: seconds idle before measuring")
    p.add_argument("--server-pid", type=int, default=0, help="ws: sample its RSS per idle socket")
    p.add_argument("--api-key-file", default="", help="send the API key in this file as a bearer")
    args = p.parse_args(argv)
    if not 0 <= args.warmup < args.duration:
        p.error("--warmup must be shorter than --duration")
    try:
        import uvloop

        loop_factory = uvloop.new_event_loop
    except ImportError:
        loop_factory = None
    result = asyncio.run(run(args), loop_factory=loop_factory)
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
