"""Simultaneous A/B: two or more builds of ragsite under the same load at the same time.

    python -m bench.ab "before=/tmp/old-checkout" "after=."
    python -m bench.ab "on=." "off=.|env:GC_TUNING=off" --c 100 --rounds 4
    python -m bench.ab "before=/tmp/old-checkout" "after=." --mode ws   # over the websocket

This machine's capacity drifts by 10-20 % from minute to minute, so two runs one after the other
cannot show a 5 % step. Here every build runs at once, each with its own load generator at C
concurrent chats against the one fake upstream: whatever the machine does meanwhile, it does to
all of them. Each round starts fresh servers; the figure is CPU per chat (the server's CPU
seconds over its completed chats) as a ratio to the first build, per round, and the median.

A build is LABEL=PATH, optionally |env:K=V,K=V (settings for that server). PATH is a checkout of
ragsite (git worktree add /tmp/old <commit>), served from its own .venv if it has one, else from
this one's.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

from bench.procmon import Monitor
from bench.run import ROOT, Bench, free_port, log, parse_args, raise_nofile, stop, wait_port


class Build(NamedTuple):
    label: str
    root: Path
    variant: str = ""
    kind: str = "async"  # or "sample": the sample apps' bare relay (bench/sample_app.py)


def parse_build(spec: str) -> Build:
    label, sep, rest = spec.partition("=")
    if not sep or not label:
        raise argparse.ArgumentTypeError(f"{spec!r}: expected LABEL=PATH[|env:K=V,...]")
    path, _, variant = rest.partition("|")
    root = Path(path or ".").resolve()
    if not (root / "ragsite" / "asgi.py").is_file():
        raise argparse.ArgumentTypeError(f"{spec!r}: {root} is not a ragsite checkout")
    if variant and not variant.startswith("env:"):
        raise argparse.ArgumentTypeError(f"{spec!r}: after | comes env:K=V,...")
    return Build(label, root, variant)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description="ragsite builds A/B, side by side under one load")
    p.add_argument("builds", nargs="+", type=parse_build, metavar="LABEL=PATH[|env:K=V,...]")
    p.add_argument("--c", type=int, default=100, help="concurrent chats per build")
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--duration", type=float, default=20.0, help="seconds per round")
    p.add_argument("--mode", choices=("http", "ws"), default="http", help="POST /chat/stream or "
                   "/ws/chat/ (C sockets, all answering)")  # fmt: skip
    p.add_argument("--quick", action="store_true", help="a handful of chats (the smoke test)")
    p.add_argument("--json", type=Path, help="also write the rounds here")
    a = p.parse_args(argv)
    if len({b.label for b in a.builds}) != len(a.builds):
        p.error("every build needs its own label")
    raise_nofile()
    bench_args = parse_args(["--focus", str(a.c)] + (["--quick"] if a.quick else []))
    if not a.quick:
        bench_args.duration = a.duration
    bench = Bench(bench_args)
    rounds: list[dict] = []
    try:
        bench.start_upstream()
        bench.prepare_data()
        wait_port(int(bench.upstream_url.rsplit(":", 1)[1]), bench.upstream)
        for r in range(a.rounds):
            rounds.append(one_round(bench, a.builds, a.c, a.mode))
            log(f"round {r}: " + ", ".join(f"{k} {v['cpu_ms_per_chat']} ms/chat, "
                                           f"{v['chats_per_s']} chats/s, {v['errors']} errors"
                                           for k, v in rounds[-1].items()))  # fmt: skip
    finally:
        bench.close()
    summary = summarise(rounds, [b.label for b in a.builds])
    for label, s in summary.items():
        print(
            f"{label}: median {s['cpu_ms_per_chat']} ms/chat, ratio to {a.builds[0].label} "
            f"{s['ratio']} (rounds: {s['ratios']}), {s['chats_per_s']} chats/s, "
            f"{s['errors']} errors"
        )
    if a.json:
        a.json.write_text(json.dumps({"rounds": rounds, "summary": summary}, indent=2))
    return summary


def paired_with_bare_relay(bench: Bench, c: int, rounds: int) -> dict:
    """ragsite and the sample apps' bare relay side by side, for the CPU target's ratio: run one
    after the other, the two figures differ by the machine's drift as well as by the code."""
    builds = [Build("bare relay", ROOT, kind="sample"), Build("ragsite", ROOT)]
    done = []
    for r in range(rounds):
        done.append(one_round(bench, builds, c))
        log(f"side by side, round {r}: " + ", ".join(
            f"{k} {v['cpu_ms_per_chat']} ms/chat" for k, v in done[-1].items()))  # fmt: skip
    summary = summarise(done, [b.label for b in builds])
    return {"concurrency": c, "rounds": done, "summary": summary}


def one_round(bench: Bench, builds: list[Build], c: int, mode: str = "http") -> dict:
    servers = []
    try:
        for label, root, variant, kind in builds:
            port = free_port()
            servers.append((label, port, bench.start_server(kind, port, variant, root=root)))

        def load(server) -> dict:
            _, port, proc = server
            with Monitor(proc.pid) as mon:
                sockets = {"open": c, "settle": 0.5} if mode == "ws" else {}
                out = bench.loadgen(mode, f"http://127.0.0.1:{port}", c, **sockets)
            out.update(mon.result())
            return out

        with ThreadPoolExecutor(len(servers)) as pool:
            outs = list(pool.map(load, servers))
    finally:
        for _, _, proc in servers:
            stop(proc)
    return {
        label: {
            "cpu_ms_per_chat": round(out["server_cpu_s"] * 1000 / max(out["chats_ok"], 1), 2),
            "chats_per_s": out["chats_per_s"],
            "errors": out["errors"],
            "ttft_p99_ms": out["ttft_p99_ms"],
        }
        for (label, _, _), out in zip(servers, outs, strict=True)
    }


def summarise(rounds: list[dict], labels: list[str]) -> dict:
    base = labels[0]
    out = {}
    for label in labels:
        ratios = [r[label]["cpu_ms_per_chat"] / r[base]["cpu_ms_per_chat"] for r in rounds]
        out[label] = {
            "cpu_ms_per_chat": statistics.median(r[label]["cpu_ms_per_chat"] for r in rounds),
            "ratio": round(statistics.median(ratios), 3),
            "ratios": [round(x, 3) for x in ratios],
            "chats_per_s": round(statistics.median(r[label]["chats_per_s"] for r in rounds), 2),
            "errors": sum(r[label]["errors"] for r in rounds),
        }
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
