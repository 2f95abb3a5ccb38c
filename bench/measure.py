"""One measured run of a sweep: a server under a closed loop while its processes are sampled, and
the figures derived from it; every run and failure is collected for the results."""

from __future__ import annotations

import time

from bench.harness import Harness, answer_seconds
from bench.processes import free_port, log, stop
from bench.procmon import Monitor, machine_busy_seconds

# What a repeated run keeps of the attempt it discarded.
DISCARDED_FIGURES = ("chats_per_s", "errors", "ttft_p99_ms", "cpu_ms_per_chat", "other_cpu_s")


def wait_quiet(limit: float) -> None:
    """Wait (at most `limit` s) until other processes use < 0.3 of a core for 2 s."""
    deadline = time.monotonic() + limit
    while True:
        before = machine_busy_seconds()
        time.sleep(2)
        busy = (machine_busy_seconds() - before) / 2
        if busy < 0.3 or time.monotonic() > deadline:
            if busy >= 0.3:
                log(f"  the machine stays busy ({busy:.2f} cores used by others); running")
            return
        log(f"  waiting: other processes use {busy:.2f} cores")
        time.sleep(3)


def _label(kind: str, mode: str, c: int, variant: str, kw: dict) -> str:
    label = f"{kind}{' ' + variant if variant else ''} {mode} C={c}"
    return label + (f" open={kw['open']}" if kw.get("open") else "")


def _cleaner(result: dict, again: dict) -> tuple[dict, dict]:
    """Of two attempts, the one other processes disturbed less, and the other."""
    first, second = sorted((result, again), key=lambda r: r["other_cpu_s"])
    first["discarded_attempt"] = {k: second.get(k) for k in DISCARDED_FIGURES}
    return first, second


def _per_chat(result: dict) -> None:
    ok = result["chats_ok"]
    result["cpu_ms_per_chat"] = round(result["server_cpu_s"] * 1000 / ok, 2) if ok else None
    result["cpu_s_per_100_chats"] = round(result["server_cpu_s"] * 100 / ok, 2) if ok else None


def _other_cpu(result: dict, kind: str, busy: float) -> None:
    """Everything else the machine did meanwhile (other sessions' tests, the harness itself):
    a large figure means the run shared its cores with strangers."""
    if kind == "ceiling":  # the server *is* the upstream here
        result["upstream_cpu_s"] = result["server_cpu_s"]
    ours = result["server_cpu_s"] + result["loadgen_cpu_s"]
    ours += result["upstream_cpu_s"] if kind != "ceiling" else 0
    result["machine_busy_s"] = round(busy, 2)
    result["other_cpu_s"] = round(max(0.0, busy - ours), 2)


def _log_figures(r: dict) -> None:
    log(
        f"  {r['chats_per_s']} chats/s, {r['errors']} errors, "
        f"ttft p99 {r['ttft_p99_ms']} ms, total p99 {r['total_p99_ms']} ms, "
        f"cpu {r['cpu_ms_per_chat']} ms/chat, threads {r['peak_threads']}, "
        f"rss {r['peak_rss_mb']} MB, loadgen cpu {r['loadgen_cpu_s']} s, "
        f"other processes' cpu {r['other_cpu_s']} s"
    )


class Measurements:
    """The runs of one sweep, measured through `harness`; `runs` and `failures` are the results."""

    def __init__(self, harness: Harness):
        self.harness = harness
        self.args = harness.args
        self.runs: list[dict] = []
        self.failures: list[dict] = []
        self.started = time.monotonic()

    def measure(
        self, kind: str, mode: str, c: int, variant: str = "", shared=None, **kw
    ) -> dict | None:
        """One closed-loop run. A fresh server per run (clean peaks) unless `shared`
        (process, port) is given: the smoke test reuses one to stay fast. A failed run is
        logged and recorded in `failures`; the sweep goes on."""
        try:
            result = self._measure(kind, mode, c, variant, shared, **dict(kw))
            share = result["other_cpu_s"] / max(result["wall_s"], 1.0)
            if share > 0.3 and self._may_rerun():
                # Someone else's work had a third of a core or more: run it once more and keep
                # the cleaner of the two (both figures stay in results.json).
                log(f"  others used {share:.2f} cores during the run: once more")
                again = self._measure(kind, mode, c, variant, shared, **dict(kw))
                result, discarded = _cleaner(result, again)
                self.runs.remove(discarded)
            return result
        except Exception as exc:
            if self.args.quick:
                raise
            log(f"  run failed: {exc!r}")
            failure = {"kind": kind, "mode": mode, "concurrency": c, "variant": variant or None}
            self.failures.append({**failure, "error": repr(exc)[:500]})
            return None

    def _may_rerun(self) -> bool:
        early = time.monotonic() - self.started < self.args.rerun_budget
        return not self.args.quick and early

    def _measure(self, kind, mode, c, variant, shared, **kw) -> dict:
        log("run", _label(kind, mode, c, variant, kw))
        if not self.args.quick:
            wait_quiet(self.args.quiet_wait)
        server = None
        t = time.monotonic()
        try:
            url, pid, server = self._target(kind, variant, shared)
            if mode == "ws":
                kw["server_pid"] = pid
            result, busy, upstream_cpu_s = self._load(kind, mode, c, url, pid, **kw)
        finally:
            stop(server)
        result.update(
            kind=kind,
            variant=variant or None,
            upstream_cpu_s=upstream_cpu_s if kind != "ceiling" else None,
            wall_s=round(time.monotonic() - t, 1),
            ideal_chats_per_s=round(c / answer_seconds(self.args.upstream), 2),
        )
        _other_cpu(result, kind, busy)
        _per_chat(result)
        _log_figures(result)
        self.runs.append(result)
        return result

    def _target(self, kind: str, variant: str, shared):
        """(url, pid to sample, the server to stop afterwards: None if not started here)."""
        h = self.harness
        if kind == "ceiling":
            return h.upstream_url, h.upstream.pid, None
        if shared is not None:
            proc, port = shared
            return f"http://127.0.0.1:{port}", proc.pid, None
        port = free_port()
        server = h.start_server(kind, port, variant)
        return f"http://127.0.0.1:{port}", server.pid, server

    def _load(self, kind: str, mode: str, c: int, url: str, pid: int, **kw):
        """The load generator's summary with the server's samples, the machine's busy CPU
        seconds meanwhile, and the upstream's CPU seconds."""
        upstream_cpu = Monitor(self.harness.upstream.pid)
        upstream_cpu.sample()
        busy = machine_busy_seconds()
        with Monitor(pid, include_children=kind == "sync") as mon:
            result = self.harness.loadgen(mode, url, c, **kw)
        busy = machine_busy_seconds() - busy
        upstream_cpu.sample()
        result.update(mon.result())
        return result, busy, round(upstream_cpu.cpu_s(), 2)
