"""The sweep's options: its command line, and the plan each mode runs (full, --quick, --focus)."""

from __future__ import annotations

import argparse

from bench.harness import QUICK_UPSTREAM, UPSTREAM
from bench.processes import ROOT


def parse_args(argv=None):
    args = _parser().parse_args(argv)
    asked_soak = args.soak
    if args.quick:
        _quick_plan(args)
    else:
        _full_plan(args)
    if args.focus:
        _focus_plan(args, asked_soak)
    args.ws_open = max((w[0] for w in args.ws), default=0)
    args.ws_active = max((w[1] for w in args.ws), default=0)
    return args


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="ragsite concurrency benchmark")
    p.add_argument("--out", default=str(ROOT / "bench" / "results"))
    p.add_argument("--quick", action="store_true", help="a handful of chats (the smoke test)")
    p.add_argument("--profile", action="store_true", help="also py-spy ragsite under load")
    p.add_argument("--keep", action="store_true", help="keep the temporary data and logs")
    p.add_argument("--uvicorn-args", default="", help="extra uvicorn flags for every async run")
    p.add_argument(
        "--server-env",
        default="",
        metavar="K=V,K=V",
        help="settings for ragsite's data set-up and servers (e.g. SEARCH_BACKEND=postgres,...)",
    )
    p.add_argument(
        "--no-experiments", action="store_true", help="skip the runs with fixes switched off"
    )
    p.add_argument(
        "--quiet-wait", type=float, default=10, help="max s to wait for other work before a run"
    )
    p.add_argument(
        "--rerun-budget",
        type=float,
        default=300,
        help="until this many s into the sweep, a run that shared the cores is repeated once",
    )
    p.add_argument(
        "--soak",
        type=float,
        metavar="SECONDS",
        help="length of the memory soak run at C=200 (default 120 in a full sweep; 0: none)",
    )
    p.add_argument(
        "--focus",
        type=int,
        metavar="C",
        help="only the ceiling, ragsite and the bare relay over HTTP at this C",
    )
    return p


def _quick_plan(args) -> None:
    args.http_c, args.sync_c, args.ws = [2], [2], [(6, 2, 1.0, 0.2)]
    args.duration, args.warmup, args.chat_timeout, args.settle = 1.0, 0.2, 20.0, 0.2
    args.upstream, args.sync_workers = QUICK_UPSTREAM, 1
    args.variants, args.variant_c, args.profile_c, args.profile_seconds = [], 2, 2, 2
    args.sample_c = [2]
    args.paired_c, args.paired_rounds = 2, 1
    args.experiments = []
    args.soak = 2.0 if args.soak is None else args.soak


def _full_plan(args) -> None:
    args.http_c, args.sync_c = [1, 50, 200, 500, 1000], [1, 50, 200]
    # (open, answering, duration, warm-up): at 500 answering one wave of chats takes longer
    # than 20 s while the server is CPU-bound, so that run is longer to reach steady state.
    args.ws = [(200, 200, 20.0, 6.0), (2000, 500, 50.0, 20.0)]
    args.duration, args.warmup, args.chat_timeout, args.settle = 20.0, 6.0, 60.0, 3.0
    args.upstream, args.sync_workers = UPSTREAM, 4
    args.variants, args.variant_c = ["--loop asyncio --http h11"], 200
    args.sample_c = [200, 500]  # the sample apps' bare relay: the CPU target's reference
    # ... and side by side with ragsite, where the machine's drift hits both alike.
    args.paired_c, args.paired_rounds = 100, 3
    # The fixes that have a setting, switched off (or turned up) one at a time at C=200:
    # their before/after in the same run (the others' figures: bench/results/fixes.md).
    args.experiments = [] if args.no_experiments else [
        "LLM_STREAM_BATCH_MS=0", "LLM_STREAM_BATCH_MS=50", "GC_TUNING=off",
        "LLM_HTTP_CLIENT=httpx",
    ]  # fmt: skip
    args.profile_c, args.profile_seconds = 200, 15
    args.soak = args.soak if args.soak is not None else 120


def _focus_plan(args, asked_soak) -> None:
    args.http_c, args.sync_c, args.ws = [args.focus], [], []
    args.variants, args.experiments, args.profile_c = [], [], args.focus
    args.sample_c = [args.focus]
    args.soak = asked_soak or 0
