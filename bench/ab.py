"""Simultaneous A/B: two or more builds of ragsite under the same load at the same time.

    python -m bench.ab "before=/tmp/old-checkout" "after=."
    python -m bench.ab "on=." "off=.|env:GC_TUNING=off" --c 100 --rounds 4
    python -m bench.ab "before=/tmp/old-checkout" "after=." --mode ws   # over the websocket
    python -m bench.ab "anon=." "key=.|bearer" --c 60 --rounds 3   # what a bearer key costs

This machine's capacity drifts by 10-20 % from minute to minute, so two runs one after the other
cannot show a 5 % step. Here every build runs at once, each with its own load generator at C
concurrent chats against the one fake upstream: whatever the machine does meanwhile, it does to
all of them. Each round starts fresh servers; the figure is CPU per chat (the server's CPU
seconds over its completed chats) as a ratio to the first build, per round, and the median.

A build is LABEL=PATH, optionally |env:K=V,K=V (settings for that server) and |bearer (its load
generator sends an API key, made in the data set-up for a user in no group, as
`Authorization: Bearer` on every chat or handshake). PATH is a checkout of ragsite (git worktree
add /tmp/old <commit>), served from its own .venv if it has one, else from this one's.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bench.harness import Harness
from bench.options import parse_args
from bench.processes import log, raise_nofile
from bench.sidebyside import one_round, parse_build, summarise


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="ragsite builds A/B, side by side under one load")
    p.add_argument(
        "builds", nargs="+", type=parse_build, metavar="LABEL=PATH[|env:K=V,...][|bearer]"
    )
    p.add_argument("--c", type=int, default=100, help="concurrent chats per build")
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--duration", type=float, default=20.0, help="seconds per round")
    p.add_argument("--mode", choices=("http", "ws"), default="http", help="POST /chat/stream or "
                   "/ws/chat/ (C sockets, all answering)")  # fmt: skip
    p.add_argument("--quick", action="store_true", help="a handful of chats (the smoke test)")
    p.add_argument("--json", type=Path, help="also write the rounds here")
    return p


def main(argv=None) -> dict:
    p = _parser()
    a = p.parse_args(argv)
    if len({b.label for b in a.builds}) != len(a.builds):
        p.error("every build needs its own label")
    raise_nofile()
    rounds = _rounds(a)
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


def _rounds(a) -> list[dict]:
    """The fake upstream once, the data once per checkout, then a fresh server per build and
    round."""
    bench_args = parse_args(["--focus", str(a.c)] + (["--quick"] if a.quick else []))
    if not a.quick:
        bench_args.duration = a.duration
    harness = Harness(bench_args)
    rounds: list[dict] = []
    try:
        harness.start_upstream()
        for root in dict.fromkeys(build.root for build in a.builds):
            harness.prepare_data(root)
        harness.wait_upstream()
        for r in range(a.rounds):
            rounds.append(one_round(harness, a.builds, a.c, a.mode))
            log(f"round {r}: " + ", ".join(f"{k} {v['cpu_ms_per_chat']} ms/chat, "
                                           f"{v['chats_per_s']} chats/s, {v['errors']} errors"
                                           for k, v in rounds[-1].items()))  # fmt: skip
    finally:
        harness.close()
    return rounds


if __name__ == "__main__":
    main(sys.argv[1:])
