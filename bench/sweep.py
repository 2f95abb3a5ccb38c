"""The sweep: which runs, in which order, then the memory soak, the profiles and the results
(results.json, table.md, bench.png)."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench import profile as prof
from bench import report as rep
from bench.harness import Harness, answer_seconds
from bench.measure import Measurements, wait_quiet
from bench.processes import BIN, ROOT, cpu_model, free_port, git_state, log, stop
from bench.procmon import Monitor
from bench.sidebyside import paired_with_bare_relay


class Sweep:
    def __init__(self, args):
        self.args = args
        self.harness = Harness(args)
        self.measured = Measurements(self.harness)
        self.extras: dict = {"soak": None, "paired": None}

    @property
    def failures(self) -> list[dict]:
        return self.measured.failures

    def run(self) -> dict:
        a = self.args
        t0 = time.monotonic()
        load1 = os.getloadavg()[0]
        if load1 > 0.5 and not a.quick:
            log(f"warning: load average {load1:.1f} before the sweep: other work shares the cores")
        self.harness.start_upstream()
        self._servers_runs()
        if a.soak:
            self.soak(a.soak, 2 if a.quick else 200)
        if a.profile:
            self.profile(a.profile_c)
            if a.ws:
                self.profile(a.profile_c, suffix="-ws", mode="ws")
        return self.report(time.monotonic() - t0)

    def _servers_runs(self) -> None:
        """Every measured run; in quick mode one server of each kind serves all of its runs."""
        h, a = self.harness, self.args
        launched = {}
        if a.quick:  # the smoke test is timed: servers import Django while the data is prepared
            launched = {k: (h.start_server(k, p, wait=False), p) for k, p in
                        ((k, free_port()) for k in ("async", "sync"))}  # fmt: skip
        pool = ThreadPoolExecutor(2)
        try:
            h.prepare_data()  # meanwhile the upstream (and in quick mode the servers) start
            h.wait_upstream()
            log("fake upstream on", h.upstream_url)
            warming = {k: pool.submit(h.ready, k, port, proc)
                       for k, (proc, port) in launched.items()}  # fmt: skip
            self._ceilings()
            shared = {"async": None, "sync": None}
            shared.update({k: (f.result(), launched[k][1]) for k, f in warming.items()})
            self._measured_runs(shared)
        finally:
            pool.shutdown()
            for proc, _ in launched.values():
                stop(proc)

    def _ceilings(self) -> None:
        a = self.args
        ws_active = min(a.ws_active, a.ws_open)
        for c in sorted(set(a.http_c) | ({ws_active} if a.ws else set())):
            self.measured.measure("ceiling", "upstream", c)

    def _measured_runs(self, shared: dict) -> None:
        a, measure = self.args, self.measured.measure
        for c in a.http_c:
            measure("async", "http", c, shared=shared["async"])
            if c in a.sample_c:  # right after: the same minute of this drifting machine
                measure("sample", "http", c)
        if a.paired_rounds:
            self.pair_with_bare_relay()
        for variant in a.variants:
            measure("async", "http", a.variant_c, variant=variant)
        for overrides in a.experiments:
            measure("async", "http", a.variant_c, variant=f"env:{overrides}")
        for n_open, active, duration, warmup in a.ws:
            measure(
                "async", "ws", active, open=n_open, settle=a.settle, shared=shared["async"],
                duration=duration, warmup=warmup,
            )  # fmt: skip
        for c in a.sync_c:
            measure("sync", "http", c, shared=shared["sync"])

    def pair_with_bare_relay(self) -> None:
        a = self.args
        log(f"side by side: ragsite and the bare relay at C={a.paired_c} each, "
            f"{a.paired_rounds} rounds")  # fmt: skip
        wait_quiet(a.quiet_wait)
        try:
            paired = paired_with_bare_relay(self.harness, a.paired_c, a.paired_rounds)
        except Exception as exc:
            self.failures.append({"kind": "paired", "error": repr(exc)[:2000]})
            log(f"  failed: {exc!r}")
            return
        self.extras["paired"] = paired
        mine = paired["summary"]["ragsite"]
        log(f"  ragsite {mine['cpu_ms_per_chat']} ms/chat, {mine['ratio']} of the bare relay "
            f"(rounds: {mine['ratios']})")  # fmt: skip

    def soak(self, seconds: float, c: int = 200) -> None:
        """One long run at C: does the server's memory level off? (The sweep's 20 s windows
        are too short to see garbage piling up between full collections.)"""
        h = self.harness
        port = free_port()
        server = h.start_server("async", port)
        log(f"soak: ragsite over HTTP at C={c} for {seconds:.0f} s")
        try:
            with Monitor(server.pid) as mon:
                result = h.loadgen(
                    "http", f"http://127.0.0.1:{port}", c, duration=seconds,
                    warmup=min(5.0, seconds / 4),
                )  # fmt: skip
        finally:
            stop(server)
        soak = self.extras["soak"] = _soak_result(c, seconds, result, mon.rss_series)
        series = soak["rss_mb"]
        log(
            f"  {result['chats_per_s']} chats/s, {result['errors']} errors, RSS "
            f"{series[0][1]} → {series[-1][1]} MB, second half "
            f"{soak['rss_growth_mb_per_min']} MB/min"
        )

    def profile(self, c: int, variant: str = "", suffix: str = "", mode: str = "http") -> None:
        """py-spy record --gil (collapsed stacks) and py-spy dump of ragsite under load."""
        h, a = self.harness, self.args
        port = free_port()
        server = h.start_server("async", port, variant)
        url = f"http://127.0.0.1:{port}"
        log(f"profile: py-spy on ragsite {variant} over {mode} at C={c}")
        sockets = {"open": c, "settle": "0.5"} if mode == "ws" else {}
        cmd = h.loadgen_command(mode, url, c, a.profile_seconds + 8, 3, **sockets)
        load = subprocess.Popen(
            cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        name = f"profile-c{c}{suffix}"
        try:
            time.sleep(4)
            _py_spy(server.pid, a.profile_seconds, h.out, name)
            out, err = load.communicate(timeout=a.profile_seconds + a.chat_timeout + 60)
        finally:
            if load.poll() is None:
                load.kill()
                load.wait()
            stop(server)
        summary = prof.summarise((h.out / f"{name}.txt").read_text())
        summary["load"] = json.loads(out.strip().splitlines()[-1]) if out.strip() else err[-500:]
        summary["server"] = variant or "ragsite.asgi (as shipped)"
        summary["mode"] = mode
        (h.out / f"{name}.json").write_text(json.dumps(summary, indent=1) + "\n")
        (h.out / f"{name}.md").write_text(prof.markdown(summary))
        log(f"profile written to {h.out}/{name}.*")

    def report(self, wall: float) -> dict:
        out = self.harness.out
        data = {
            "meta": _meta(self.args, wall),
            "runs": self.measured.runs,
            "failures": self.failures,
            **self.extras,
        }
        rep.annotate(data)
        (out / "results.json").write_text(json.dumps(data, indent=1) + "\n")
        (out / "table.md").write_text(rep.markdown(data))
        rep.plot(data, out / "bench.png")
        log(f"results in {out}: results.json, table.md, bench.png ({wall:.0f}s)")
        return data

    def close(self) -> None:
        self.harness.close()


def _soak_result(c: int, seconds: float, result: dict, series: list) -> dict:
    half = [mb for t, mb in series if t >= series[-1][0] / 2]
    return {
        "concurrency": c,
        "seconds": seconds,
        "chats_per_s": result["chats_per_s"],
        "errors": result["errors"],
        "rss_mb": series,
        # Growth over the second half, per minute: about 0 when memory has levelled off.
        "rss_growth_mb_per_min": round((half[-1] - half[0]) / max(seconds / 2, 1) * 60, 1),
    }


def _py_spy(pid: int, seconds: float, out: Path, name: str) -> None:
    """A raw profile (name.txt) and a dump of every thread's stack (name-dump.txt) in `out`."""
    spy = [str(BIN / "py-spy"), "record", "-p", str(pid), "-r", "100"]
    spy += ["-d", str(seconds), "--nonblocking", "--threads", "--gil"]
    subprocess.run(
        [*spy, "--format", "raw", "-o", str(out / f"{name}.txt")],
        check=True,
        capture_output=True,
        timeout=seconds + 60,
    )
    dump = subprocess.run(
        [str(BIN / "py-spy"), "dump", "-p", str(pid), "--nonblocking"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    (out / f"{name}-dump.txt").write_text(dump.stdout[:400_000])


def _meta(a, wall: float) -> dict:
    return {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "quick": a.quick,
        "machine": {
            "cpus": os.cpu_count(),
            "cpu_model": cpu_model(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "upstream": {**a.upstream, "answer_s": answer_seconds(a.upstream)},
        "server": "uvicorn ragsite.asgi:application (1 worker) " + a.uvicorn_args,
        "server_env": a.server_env,
        "sync_server": f"gunicorn -w {a.sync_workers} --worker-class sync bench.sync_app",
        "duration_s": a.duration,
        "warmup_s": a.warmup,
        "chat_timeout_s": a.chat_timeout,
        "sweep_wall_s": round(wall, 1),
        "git": git_state(),
    }
