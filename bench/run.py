"""The concurrency benchmark: ragsite (one uvicorn worker) against the ceiling and a sync baseline.

    python -m bench.run                 # the full sweep (make bench), about 16 minutes
    python -m bench.run --profile       # ... plus py-spy profiles of ragsite at 200 concurrent
    python -m bench.run --quick --out /tmp/x   # a handful of chats: the harness's smoke test

One fake OpenAI-compatible upstream (tests/fakes, 300 ms to the first token, then 40 chunks 25 ms
apart) serves everything. For each concurrency C:

* ceiling   the load generator straight at the fake upstream;
* async     ragsite on its embedded default (SQLite, FTS5 index, OPENAI_HOST=compatible), one
            uvicorn worker, POST /chat/stream through the whole pipeline; websocket runs hold many
            open sockets while some answer;
* sample    the sample apps' bare relay (bench/sample_app.py: FastAPI, the SDK's own stream), at
            C=200 and 500 right after ragsite: the reference of the CPU target;
* sync      the same Django project as a WSGI app (bench/sync_app.py) under gunicorn -w 4 sync.

Each server run starts a fresh server process (clean peaks), sends two warm-up chats, then the
load generator (bench/loadgen.py, its own process) runs the closed loop while bench/procmon.py
samples the server's CPU, RSS and threads. Results: JSON, a Markdown table and a PNG plot.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.procmon import Monitor, machine_busy_seconds

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
BIN = Path(PY).parent
UPSTREAM = {"ttft": 0.3, "chunks": 40, "chunk_interval": 0.025}  # the upstream: 1.275 s
QUICK_UPSTREAM = {"ttft": 0.05, "chunks": 5, "chunk_interval": 0.01}  # the smoke test's


def answer_seconds(upstream: dict) -> float:
    """First chunk at ttft, then one every chunk_interval: 0.3 + 39 x 0.025 = 1.275 s."""
    return round(upstream["ttft"] + (upstream["chunks"] - 1) * upstream["chunk_interval"], 3)


QUESTION_BODY = json.dumps(
    {"messages": [{"role": "user", "content": "How many unused vacation days can I carry over?"}]}
).encode()


def log(*args) -> None:
    print(time.strftime("%H:%M:%S"), *args, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port} after {timeout}s")


def stop(proc: subprocess.Popen | None, timeout: float = 15) -> None:
    """SIGTERM, then SIGKILL to the process group the harness gave it (gunicorn's workers too)."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # its own session: only what it started
        except ProcessLookupError:
            pass
        proc.wait(5)


def cpu_model() -> str:
    """The processor, so that sweeps from different machines are not compared as equals."""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def git_state() -> dict:
    """The commit measured, and the files that differed from it (others edit concurrently)."""

    def git(*args):
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=30)
        return done.stdout

    # Not stripped: porcelain's first column is often a space ("XY path").
    changed = [line[3:] for line in git("status", "--porcelain", "-uno").splitlines()]
    return {
        "head": git("rev-parse", "--short", "HEAD").strip(),
        "uncommitted": [p for p in changed if not p.startswith(("bench/", "tests/test_bench"))],
    }


def post_chat(port: int, timeout: float = 30) -> None:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/chat/stream",
        data=QUESTION_BODY,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        body = resp.read()
    if b"response.output_text.delta" not in body or b'{"error"' in body:
        raise RuntimeError(f"warm-up chat failed: {body[:300]!r}")


class Bench:
    def __init__(self, args):
        self.args = args
        self.out = Path(args.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.work = Path(tempfile.mkdtemp(prefix="ragsite-bench-"))
        self.logs = self.work / "logs"
        self.logs.mkdir()
        self.upstream: subprocess.Popen | None = None
        self.upstream_url = ""
        self.runs: list[dict] = []
        self.failures: list[dict] = []
        self.started = time.monotonic()

    # -- processes --------------------------------------------------------------------------------
    def env(self, **extra) -> dict:
        env = dict(os.environ)
        for name in list(env):  # no settings leak in from the caller's shell
            if name.startswith(("OPENAI_", "AZURE_", "CHAT_", "DJANGO_", "SEARCH_")):
                del env[name]
        env.pop("DATABASE_URL", None)
        env.pop("REDIS_URL", None)
        env.update(
            RAGSITE_DATA_DIR=str(self.work / "data"),
            OPENAI_HOST="compatible",
            OPENAI_BASE_URL=self.upstream_url + "/v1",
            OPENAI_CHAT_MODEL="bench",
            CHAT_RATE_LIMIT="off",
            CHAT_RATE_LIMIT_PER_IP="off",
            CHAT_MAX_CONCURRENT_STREAMS="0",
            LOG_LEVEL="WARNING",
            PYTHONUNBUFFERED="1",
        )
        env.update(extra)
        return env

    def start_upstream(self) -> None:
        port = free_port()
        self.upstream = subprocess.Popen(
            [PY, "-m", "tests.fakes.openai_server", "--port", str(port), "--log-limit", "100"]
            + ["--ttft", str(self.args.upstream["ttft"])]
            + ["--chunks", str(self.args.upstream["chunks"])]
            + ["--chunk-interval", str(self.args.upstream["chunk_interval"])],
            cwd=ROOT,
            stdout=open(self.logs / "upstream.log", "w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.upstream_url = f"http://127.0.0.1:{port}"  # waited for in sweep()

    def prepare_data(self) -> None:
        """manage.py migrate, seed_demo and sync_index, in one process (saves two start-ups)."""
        t = time.monotonic()
        script = (
            "import django; django.setup(); from django.core.management import call_command; "
            "call_command('migrate', interactive=False, verbosity=0); call_command('seed_demo'); "
            "call_command('sync_index')"
        )
        subprocess.run(
            [PY, "-c", script],
            cwd=ROOT,
            env=self.env(DJANGO_SETTINGS_MODULE="ragsite.settings"),
            check=True,
            stdout=open(self.logs / "prepare.log", "a"),
            stderr=subprocess.STDOUT,
            timeout=300,
        )
        log(f"data prepared in {time.monotonic() - t:.1f}s at {self.work / 'data'}")

    def start_server(
        self, kind: str, port: int, variant: str = "", wait: bool = True, root: Path = ROOT
    ) -> subprocess.Popen:
        """kind async: ragsite under uvicorn; variant is extra uvicorn flags, or "env:K=V,K=V"
        to run it with some settings switched back (a fix's before/after). kind sample: the
        sample apps' bare relay (bench/sample_app.py) under uvicorn. kind sync: the baseline.
        root: the checkout to serve (bench/ab.py serves several builds), in its own .venv if it
        has one."""
        logfile = open(self.logs / f"{kind}-{port}.log", "w")
        # A checkout with a virtualenv of its own runs in it (another Python, other pins).
        own = root / ".venv" / "bin"
        bin_dir = own if (own / "uvicorn").is_file() else BIN
        uvicorn = [str(bin_dir / "uvicorn"), "--host", "127.0.0.1", "--port", str(port)]
        uvicorn.append("--no-access-log")
        if kind == "sample":
            cmd, env = [*uvicorn, "bench.sample_app:app"], self.env()
        elif kind == "async":
            overrides = {}
            if variant.startswith("env:"):
                overrides = dict(pair.split("=", 1) for pair in variant[4:].split(","))
            flags = self.args.uvicorn_args if not variant or overrides else variant
            cmd = [*uvicorn, *flags.split(), "ragsite.asgi:application"]
            env = self.env(**overrides)
        else:
            cmd = [str(BIN / "gunicorn"), "bench.sync_app:application"]
            cmd += ["-w", str(self.args.sync_workers)]
            cmd += ["--worker-class", "sync", "-b", f"127.0.0.1:{port}", "--graceful-timeout", "5"]
            env = self.env(DJANGO_SETTINGS_MODULE="bench.sync_settings")
        proc = subprocess.Popen(
            cmd,
            cwd=root,
            env=env,
            stdout=logfile,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a process group of its own, for stop()
        )
        return self.ready(kind, port, proc) if wait else proc

    def ready(self, kind: str, port: int, proc: subprocess.Popen) -> subprocess.Popen:
        """Wait until the server listens and has answered warm-up chats; stop it on failure."""
        try:
            wait_port(port, proc)
            # Warm every worker (first-request imports, the tokenizer) before measuring.
            warm = 2 * self.args.sync_workers if kind == "sync" else 2
            with ThreadPoolExecutor(warm) as pool:
                list(pool.map(lambda _: post_chat(port), range(warm)))
        except BaseException:
            stop(proc)
            raise
        return proc

    def loadgen(self, mode: str, url: str, c: int, **kw) -> dict:
        a = self.args
        duration, warmup = kw.pop("duration", a.duration), kw.pop("warmup", a.warmup)
        cmd = [PY, "-m", "bench.loadgen", "--mode", mode, "--url", url]
        cmd += ["--concurrency", str(c), "--duration", str(duration), "--warmup", str(warmup)]
        cmd += ["--timeout", str(a.chat_timeout)]
        for key, value in kw.items():
            cmd += [f"--{key.replace('_', '-')}", str(value)]
        limit = duration + a.chat_timeout + 120
        done = subprocess.run(
            cmd, cwd=ROOT, capture_output=True, text=True, timeout=limit, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"load generator failed: {done.stderr[-2000:]}")
        return json.loads(done.stdout.strip().splitlines()[-1])

    # -- one measured run --------------------------------------------------------------------------
    def wait_quiet(self, limit: float) -> None:
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

    def measure(
        self, kind: str, mode: str, c: int, variant: str = "", shared=None, **kw
    ) -> dict | None:
        """One closed-loop run. A fresh server per run (clean peaks) unless `shared`
        (process, port) is given: the smoke test reuses one to stay fast. A failed run is
        logged and recorded in `failures`; the sweep goes on."""
        try:
            result = self._measure(kind, mode, c, variant, shared, **dict(kw))
            share = result["other_cpu_s"] / max(result["wall_s"], 1.0)
            if (
                not self.args.quick
                and share > 0.3
                and time.monotonic() - self.started < self.args.rerun_budget
            ):
                # Someone else's work had a third of a core or more: run it once more and keep
                # the cleaner of the two (both figures stay in results.json).
                log(f"  others used {share:.2f} cores during the run: once more")
                again = self._measure(kind, mode, c, variant, shared, **dict(kw))
                first, second = sorted((result, again), key=lambda r: r["other_cpu_s"])
                self.runs.remove(second)
                first["discarded_attempt"] = {
                    k: second.get(k)
                    for k in ("chats_per_s", "errors", "ttft_p99_ms", "cpu_ms_per_chat",
                              "other_cpu_s")
                }  # fmt: skip
                result = first
            return result
        except Exception as exc:
            if self.args.quick:
                raise
            log(f"  run failed: {exc!r}")
            failure = {"kind": kind, "mode": mode, "concurrency": c, "variant": variant or None}
            self.failures.append({**failure, "error": repr(exc)[:500]})
            return None

    def _measure(self, kind, mode, c, variant, shared, **kw) -> dict:
        label = f"{kind}{' ' + variant if variant else ''} {mode} C={c}" + (
            f" open={kw['open']}" if kw.get("open") else ""
        )
        log("run", label)
        if not self.args.quick:
            self.wait_quiet(self.args.quiet_wait)
        server = None
        t = time.monotonic()
        try:
            if kind == "ceiling":
                url, pid, children = self.upstream_url, self.upstream.pid, False
            else:
                if shared is not None:
                    proc, port = shared
                else:
                    port = free_port()
                    proc = server = self.start_server(kind, port, variant)
                url, pid, children = f"http://127.0.0.1:{port}", proc.pid, kind == "sync"
                if mode == "ws":
                    kw["server_pid"] = pid
            upstream_cpu = Monitor(self.upstream.pid)
            upstream_cpu.sample()
            busy = machine_busy_seconds()
            with Monitor(pid, include_children=children) as mon:
                result = self.loadgen(mode, url, c, **kw)
            busy = machine_busy_seconds() - busy
            upstream_cpu.sample()
        finally:
            stop(server)
        result.update(mon.result())
        result.update(
            kind=kind,
            variant=variant or None,
            upstream_cpu_s=round(upstream_cpu.cpu_s(), 2) if kind != "ceiling" else None,
            wall_s=round(time.monotonic() - t, 1),
            ideal_chats_per_s=round(c / answer_seconds(self.args.upstream), 2),
        )
        if kind == "ceiling":  # the server *is* the upstream here
            result["upstream_cpu_s"] = result["server_cpu_s"]
        ours = result["server_cpu_s"] + result["loadgen_cpu_s"]
        ours += result["upstream_cpu_s"] if kind != "ceiling" else 0
        # Everything else the machine did meanwhile (other sessions' tests, the harness itself):
        # a large figure means the run shared its 2 cores with strangers.
        result["machine_busy_s"] = round(busy, 2)
        result["other_cpu_s"] = round(max(0.0, busy - ours), 2)
        ok = result["chats_ok"]
        result["cpu_ms_per_chat"] = round(result["server_cpu_s"] * 1000 / ok, 2) if ok else None
        result["cpu_s_per_100_chats"] = round(result["server_cpu_s"] * 100 / ok, 2) if ok else None
        log(
            f"  {result['chats_per_s']} chats/s, {result['errors']} errors, "
            f"ttft p99 {result['ttft_p99_ms']} ms, total p99 {result['total_p99_ms']} ms, "
            f"cpu {result['cpu_ms_per_chat']} ms/chat, threads {result['peak_threads']}, "
            f"rss {result['peak_rss_mb']} MB, loadgen cpu {result['loadgen_cpu_s']} s, "
            f"other processes' cpu {result['other_cpu_s']} s"
        )
        self.runs.append(result)
        return result

    # -- the sweep ---------------------------------------------------------------------------------
    def sweep(self) -> dict:
        a = self.args
        t0 = time.monotonic()
        load1 = os.getloadavg()[0]
        if load1 > 0.5 and not a.quick:
            log(f"warning: load average {load1:.1f} before the sweep: other work shares the cores")
        self.start_upstream()
        shared = {"async": None, "sync": None}
        launched = {}
        if a.quick:  # the smoke test is timed: servers import Django while the data is prepared
            launched = {k: (self.start_server(k, p, wait=False), p) for k, p in
                        ((k, free_port()) for k in shared)}  # fmt: skip
        pool = ThreadPoolExecutor(2)
        try:
            self.prepare_data()  # meanwhile the upstream (and in quick mode the servers) start
            wait_port(int(self.upstream_url.rsplit(":", 1)[1]), self.upstream)
            log("fake upstream on", self.upstream_url)
            warming = {k: pool.submit(self.ready, k, port, proc)
                       for k, (proc, port) in launched.items()}  # fmt: skip
            ws_active = min(a.ws_active, a.ws_open)
            for c in sorted(set(a.http_c) | ({ws_active} if a.ws else set())):
                self.measure("ceiling", "upstream", c)
            for k, future in warming.items():
                shared[k] = (future.result(), launched[k][1])
            for c in a.http_c:
                self.measure("async", "http", c, shared=shared["async"])
                if c in a.sample_c:  # right after: the same minute of this drifting machine
                    self.measure("sample", "http", c)
            if a.paired_rounds:
                self.pair_with_bare_relay()
            for variant in a.variants:
                self.measure("async", "http", a.variant_c, variant=variant)
            for overrides in a.experiments:
                self.measure("async", "http", a.variant_c, variant=f"env:{overrides}")
            for n_open, active, duration, warmup in a.ws:
                self.measure(
                    "async", "ws", active, open=n_open, settle=a.settle, shared=shared["async"],
                    duration=duration, warmup=warmup,
                )  # fmt: skip
            for c in a.sync_c:
                self.measure("sync", "http", c, shared=shared["sync"])
        finally:
            pool.shutdown()
            for proc, _ in launched.values():
                stop(proc)
        if a.soak:
            self.soak(a.soak, 2 if a.quick else 200)
        if a.profile:
            self.profile(a.profile_c)
            if a.ws:
                self.profile(a.profile_c, suffix="-ws", mode="ws")
        return self.report(time.monotonic() - t0)

    def pair_with_bare_relay(self) -> None:
        from bench import ab

        a = self.args
        log(f"side by side: ragsite and the bare relay at C={a.paired_c} each, "
            f"{a.paired_rounds} rounds")  # fmt: skip
        self.wait_quiet(a.quiet_wait)
        try:
            self.paired = ab.paired_with_bare_relay(self, a.paired_c, a.paired_rounds)
        except Exception as exc:
            self.failures.append({"kind": "paired", "error": repr(exc)[:2000]})
            log(f"  failed: {exc!r}")
            return
        mine = self.paired["summary"]["ragsite"]
        log(f"  ragsite {mine['cpu_ms_per_chat']} ms/chat, {mine['ratio']} of the bare relay "
            f"(rounds: {mine['ratios']})")  # fmt: skip

    def soak(self, seconds: float, c: int = 200) -> None:
        """One long run at C: does the server's memory level off? (The sweep's 20 s windows
        are too short to see garbage piling up between full collections.)"""
        port = free_port()
        server = self.start_server("async", port)
        log(f"soak: ragsite over HTTP at C={c} for {seconds:.0f} s")
        try:
            with Monitor(server.pid) as mon:
                result = self.loadgen(
                    "http", f"http://127.0.0.1:{port}", c, duration=seconds,
                    warmup=min(5.0, seconds / 4),
                )  # fmt: skip
        finally:
            stop(server)
        series = mon.rss_series
        half = [mb for t, mb in series if t >= series[-1][0] / 2]
        self.soak_result = {
            "concurrency": c,
            "seconds": seconds,
            "chats_per_s": result["chats_per_s"],
            "errors": result["errors"],
            "rss_mb": series,
            # Growth over the second half, per minute: about 0 when memory has levelled off.
            "rss_growth_mb_per_min": round((half[-1] - half[0]) / max(seconds / 2, 1) * 60, 1),
        }
        log(
            f"  {result['chats_per_s']} chats/s, {result['errors']} errors, RSS "
            f"{series[0][1]} → {series[-1][1]} MB, second half "
            f"{self.soak_result['rss_growth_mb_per_min']} MB/min"
        )

    def profile(self, c: int, variant: str = "", suffix: str = "", mode: str = "http") -> None:
        """py-spy record --gil (collapsed stacks) and py-spy dump of ragsite under load."""
        from bench import profile as prof

        port = free_port()
        server = self.start_server("async", port, variant)
        url = f"http://127.0.0.1:{port}"
        log(f"profile: py-spy on ragsite {variant} over {mode} at C={c}")
        a = self.args
        sockets = ["--open", str(c), "--settle", "0.5"] if mode == "ws" else []
        load = subprocess.Popen(
            [PY, "-m", "bench.loadgen", "--mode", mode, "--url", url, "--concurrency", str(c)]
            + ["--duration", str(a.profile_seconds + 8), "--warmup", "3"]
            + ["--timeout", str(a.chat_timeout), *sockets],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            time.sleep(4)
            name = f"profile-c{c}{suffix}"
            raw = self.out / f"{name}.txt"
            spy = [str(BIN / "py-spy"), "record", "-p", str(server.pid), "-r", "100"]
            spy += ["-d", str(a.profile_seconds), "--nonblocking", "--threads", "--gil"]
            subprocess.run(
                [*spy, "--format", "raw", "-o", str(raw)],
                check=True,
                capture_output=True,
                timeout=a.profile_seconds + 60,
            )
            dump = subprocess.run(
                [str(BIN / "py-spy"), "dump", "-p", str(server.pid), "--nonblocking"],
                capture_output=True,
                text=True,
                timeout=60,
            )
            (self.out / f"{name}-dump.txt").write_text(dump.stdout[:400_000])
            out, err = load.communicate(timeout=a.profile_seconds + a.chat_timeout + 60)
        finally:
            if load.poll() is None:
                load.kill()
                load.wait()
            stop(server)
        summary = prof.summarise(raw.read_text())
        summary["load"] = json.loads(out.strip().splitlines()[-1]) if out.strip() else err[-500:]
        summary["server"] = variant or "ragsite.asgi (as shipped)"
        summary["mode"] = mode
        (self.out / f"{name}.json").write_text(json.dumps(summary, indent=1) + "\n")
        (self.out / f"{name}.md").write_text(prof.markdown(summary))
        log(f"profile written to {self.out}/{name}.*")

    # -- results -----------------------------------------------------------------------------------
    def report(self, wall: float) -> dict:
        from bench import report as rep

        a = self.args
        data = {
            "meta": {
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
                "sync_server": f"gunicorn -w {a.sync_workers} --worker-class sync bench.sync_app",
                "duration_s": a.duration,
                "warmup_s": a.warmup,
                "chat_timeout_s": a.chat_timeout,
                "sweep_wall_s": round(wall, 1),
                "git": git_state(),
            },
            "runs": self.runs,
            "failures": self.failures,
            "soak": getattr(self, "soak_result", None),
            "paired": getattr(self, "paired", None),
        }
        rep.annotate(data)
        (self.out / "results.json").write_text(json.dumps(data, indent=1) + "\n")
        (self.out / "table.md").write_text(rep.markdown(data))
        rep.plot(data, self.out / "bench.png")
        log(f"results in {self.out}: results.json, table.md, bench.png ({wall:.0f}s)")
        return data

    def close(self) -> None:
        stop(self.upstream)
        if not self.args.keep:
            shutil.rmtree(self.work, ignore_errors=True)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="ragsite concurrency benchmark")
    p.add_argument("--out", default=str(ROOT / "bench" / "results"))
    p.add_argument("--quick", action="store_true", help="a handful of chats (the smoke test)")
    p.add_argument("--profile", action="store_true", help="also py-spy ragsite under load")
    p.add_argument("--keep", action="store_true", help="keep the temporary data and logs")
    p.add_argument("--uvicorn-args", default="", help="extra uvicorn flags for every async run")
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
    args = p.parse_args(argv)
    asked_soak = args.soak
    if args.quick:
        args.http_c, args.sync_c, args.ws = [2], [2], [(6, 2, 1.0, 0.2)]
        args.duration, args.warmup, args.chat_timeout, args.settle = 1.0, 0.2, 20.0, 0.2
        args.upstream, args.sync_workers = QUICK_UPSTREAM, 1
        args.variants, args.variant_c, args.profile_c, args.profile_seconds = [], 2, 2, 2
        args.sample_c = [2]
        args.paired_c, args.paired_rounds = 2, 1
        args.experiments = []
        args.soak = 2.0 if args.soak is None else args.soak
    else:
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
    if args.focus:
        args.http_c, args.sync_c, args.ws = [args.focus], [], []
        args.variants, args.experiments, args.profile_c = [], [], args.focus
        args.sample_c = [args.focus]
        args.soak = asked_soak or 0
    args.ws_open = max((w[0] for w in args.ws), default=0)
    args.ws_active = max((w[1] for w in args.ws), default=0)
    return args


def raise_nofile() -> None:
    """Inherited by the servers and the load generator: 2,000 sockets each way."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 16384 if hard == resource.RLIM_INFINITY else min(16384, hard)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def main(argv=None) -> None:
    args = parse_args(argv)
    raise_nofile()
    bench = Bench(args)
    try:
        bench.sweep()
    finally:
        bench.close()
    if bench.failures:
        sys.exit(f"{len(bench.failures)} run(s) failed: see 'failures' in results.json")


if __name__ == "__main__":
    main()
