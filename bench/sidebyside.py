"""Builds served side by side: every build at once under the same load, so that whatever the
machine does meanwhile it does to all of them; CPU per chat as a ratio to the first build."""

from __future__ import annotations

import argparse
import statistics
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

from bench.harness import Harness
from bench.processes import ROOT, free_port, log, stop
from bench.procmon import Monitor


class Build(NamedTuple):
    label: str
    root: Path
    variant: str = ""
    kind: str = "async"  # or "sample": the sample apps' bare relay (bench/sample_app.py)
    bearer: bool = False  # its load generator sends the bench's API key on every chat


SPEC = "LABEL=PATH[|env:K=V,...][|bearer]"


def parse_build(spec: str) -> Build:
    label, sep, rest = spec.partition("=")
    if not sep or not label:
        raise argparse.ArgumentTypeError(f"{spec!r}: expected {SPEC}")
    path, *options = rest.split("|")
    root = Path(path or ".").resolve()
    if not (root / "ragsite" / "asgi.py").is_file():
        raise argparse.ArgumentTypeError(f"{spec!r}: {root} is not a ragsite checkout")
    variant, bearer = "", False
    for option in options:
        if option == "bearer" and not bearer:
            bearer = True
        elif option.startswith("env:") and not variant:
            variant = option
        else:
            raise argparse.ArgumentTypeError(f"{spec!r}: after | comes env:K=V,... or bearer")
    return Build(label, root, variant, bearer=bearer)


def paired_with_bare_relay(harness: Harness, c: int, rounds: int) -> dict:
    """ragsite and the sample apps' bare relay side by side, for the CPU target's ratio: run one
    after the other, the two figures differ by the machine's drift as well as by the code."""
    builds = [Build("bare relay", ROOT, kind="sample"), Build("ragsite", ROOT)]
    done = []
    for r in range(rounds):
        done.append(one_round(harness, builds, c))
        log(f"side by side, round {r}: " + ", ".join(
            f"{k} {v['cpu_ms_per_chat']} ms/chat" for k, v in done[-1].items()))  # fmt: skip
    summary = summarise(done, [b.label for b in builds])
    return {"concurrency": c, "rounds": done, "summary": summary}


def one_round(harness: Harness, builds: list[Build], c: int, mode: str = "http") -> dict:
    """A fresh server per build, all under load at once; each build's figures."""
    servers = []
    try:
        for build in builds:
            port = free_port()
            proc = harness.start_server(build.kind, port, build.variant, root=build.root)
            servers.append((build.label, port, proc, build.bearer, build.root))

        def load(server) -> dict:
            _, port, proc, bearer, root = server
            with Monitor(proc.pid) as mon:
                kw: dict = {"open": c, "settle": 0.5} if mode == "ws" else {}
                if bearer:
                    kw["api_key_file"] = harness.api_key_file(root)
                out = harness.loadgen(mode, f"http://127.0.0.1:{port}", c, **kw)
            out.update(mon.result())
            return out

        with ThreadPoolExecutor(len(servers)) as pool:
            outs = list(pool.map(load, servers))
    finally:
        for _, _, proc, _, _ in servers:
            stop(proc)
    return {
        label: {
            "cpu_ms_per_chat": round(out["server_cpu_s"] * 1000 / max(out["chats_ok"], 1), 2),
            "chats_per_s": out["chats_per_s"],
            "errors": out["errors"],
            "ttft_p99_ms": out["ttft_p99_ms"],
        }
        for (label, *_), out in zip(servers, outs, strict=True)
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
