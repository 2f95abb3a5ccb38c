"""The processes of a benchmark: the fake upstream, the data, the servers under test and the load
generator, each a process of its own, with their data and logs in a temporary folder."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.processes import BIN, PY, ROOT, free_port, log, spawn, stop, wait_port

UPSTREAM = {"ttft": 0.3, "chunks": 40, "chunk_interval": 0.025}  # 1.275 s per answer
QUICK_UPSTREAM = {"ttft": 0.05, "chunks": 5, "chunk_interval": 0.01}  # the smoke test's
QUESTION_BODY = json.dumps(
    {"messages": [{"role": "user", "content": "How many unused vacation days can I carry over?"}]}
).encode()
# The caller's shell settings that must not leak into a server under test.
FOREIGN_SETTINGS = ("OPENAI_", "AZURE_", "CHAT_", "DJANGO_", "SEARCH_")


def answer_seconds(upstream: dict) -> float:
    """First chunk at ttft, then one every chunk_interval: 0.3 + 39 x 0.025 = 1.275 s."""
    return round(upstream["ttft"] + (upstream["chunks"] - 1) * upstream["chunk_interval"], 3)


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


def _variant_settings(variant: str) -> dict:
    """The settings of a variant "env:K=V,K=V"; none for a variant of uvicorn flags."""
    if not variant.startswith("env:"):
        return {}
    return dict(pair.split("=", 1) for pair in variant[4:].split(","))


class Harness:
    """Starts and stops the processes; `args` are the sweep's options (bench/options.py)."""

    def __init__(self, args):
        self.args = args
        self.out = Path(args.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.work = Path(tempfile.mkdtemp(prefix="ragsite-bench-"))
        self.logs = self.work / "logs"
        self.logs.mkdir()
        self.upstream: subprocess.Popen | None = None
        self.upstream_url = ""

    @property
    def server_env(self) -> dict:
        """bench.run's --server-env: ragsite's settings for every run (bench.ab sets them per
        build instead)."""
        given = getattr(self.args, "server_env", "")
        return _variant_settings("env:" + given) if given else {}

    def env(self, **extra) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith(FOREIGN_SETTINGS)}
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

    # -- the fake upstream and the data ----------------------------------------------------------
    def start_upstream(self) -> None:
        """Started, not waited for (wait_upstream()): the data is prepared meanwhile."""
        port = free_port()
        up = self.args.upstream
        cmd = [PY, "-m", "tests.fakes.openai_server", "--port", str(port), "--log-limit", "100"]
        cmd += ["--ttft", str(up["ttft"]), "--chunks", str(up["chunks"])]
        cmd += ["--chunk-interval", str(up["chunk_interval"])]
        self.upstream = spawn(cmd, self.logs / "upstream.log", cwd=ROOT)
        self.upstream_url = f"http://127.0.0.1:{port}"

    def wait_upstream(self) -> None:
        assert self.upstream is not None
        wait_port(int(self.upstream_url.rsplit(":", 1)[1]), self.upstream)

    def data_dir(self, root: Path = ROOT) -> Path:
        """Each checkout serves data it prepared itself: an older build may not read the search
        index or the tables a newer one writes."""
        if root.resolve() == ROOT.resolve():
            return self.work / "data"
        return self.work / f"data-{hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:10]}"

    def api_key_file(self, root: Path = ROOT) -> Path:
        """An API key of `bench-program`, a user in no group (so it reads what anonymous callers
        read), for load generators that chat with a bearer key (bench/ab.py's `|bearer`)."""
        return self.data_dir(root) / "bench-api-key"

    def prepare_data(self, root: Path = ROOT) -> None:
        """manage.py migrate, seed_demo and sync_index, and the bench's API key, in one process
        (saves start-ups), by the checkout `root` in its own data directory."""
        t = time.monotonic()
        own = root / ".venv" / "bin" / "python"
        python = str(own) if own.is_file() else PY
        script = (
            "import django; django.setup(); from django.core.management import call_command; "
            "call_command('migrate', interactive=False, verbosity=0); call_command('seed_demo'); "
            "call_command('sync_index'); "
            "from django.contrib.auth.models import User; "
            "from accounts.api_keys import create_key; "
            "user = User.objects.get_or_create(username='bench-program')[0]; "
            f"open({str(self.api_key_file(root))!r}, 'w').write(create_key(user, 'bench')[1])"
        )
        env = self.env(DJANGO_SETTINGS_MODULE="ragsite.settings", **self.server_env)
        env["RAGSITE_DATA_DIR"] = str(self.data_dir(root))
        subprocess.run(
            [python, "-c", script],
            cwd=root,
            env=env,
            check=True,
            stdout=open(self.logs / "prepare.log", "a"),
            stderr=subprocess.STDOUT,
            timeout=300,
        )
        log(f"data prepared in {time.monotonic() - t:.1f}s at {self.data_dir(root)}")

    # -- the servers under test ------------------------------------------------------------------
    def start_server(
        self, kind: str, port: int, variant: str = "", wait: bool = True, root: Path = ROOT
    ) -> subprocess.Popen:
        """kind async: ragsite under uvicorn; variant is extra uvicorn flags, or "env:K=V,K=V"
        to run it with some settings switched back (a fix's before/after). kind sample: the
        sample apps' bare relay (bench/sample_app.py) under uvicorn. kind sync: the baseline.
        root: the checkout to serve (bench/ab.py serves several builds), in its own .venv if it
        has one."""
        cmd, env = self._server_command(kind, port, variant, root)
        proc = spawn(cmd, self.logs / f"{kind}-{port}.log", cwd=root, env=env)
        return self.ready(kind, port, proc) if wait else proc

    def _server_command(self, kind: str, port: int, variant: str, root: Path):
        if kind == "sync":
            cmd = [str(BIN / "gunicorn"), "bench.sync_app:application"]
            cmd += ["-w", str(self.args.sync_workers)]
            cmd += ["--worker-class", "sync", "-b", f"127.0.0.1:{port}", "--graceful-timeout", "5"]
            return cmd, self.env(DJANGO_SETTINGS_MODULE="bench.sync_settings")
        # A checkout with a virtualenv of its own runs in it (another Python, other pins).
        own = root / ".venv" / "bin"
        bin_dir = own if (own / "uvicorn").is_file() else BIN
        uvicorn = [str(bin_dir / "uvicorn"), "--host", "127.0.0.1", "--port", str(port)]
        uvicorn.append("--no-access-log")
        if kind == "sample":
            return [*uvicorn, "bench.sample_app:app"], self.env()
        overrides = _variant_settings(variant)
        flags = self.args.uvicorn_args if not variant or overrides else variant
        env = self.env(**{**self.server_env, **overrides})
        env["RAGSITE_DATA_DIR"] = str(self.data_dir(root))
        return [*uvicorn, *flags.split(), "ragsite.asgi:application"], env

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

    # -- the load generator ----------------------------------------------------------------------
    def loadgen_command(self, mode: str, url: str, c: int, duration, warmup, **kw) -> list[str]:
        cmd = [PY, "-m", "bench.loadgen", "--mode", mode, "--url", url]
        cmd += ["--concurrency", str(c), "--duration", str(duration), "--warmup", str(warmup)]
        cmd += ["--timeout", str(self.args.chat_timeout)]
        for key, value in kw.items():
            cmd += [f"--{key.replace('_', '-')}", str(value)]
        return cmd

    def loadgen(self, mode: str, url: str, c: int, **kw) -> dict:
        """One closed-loop run of the load generator; its summary (bench/loadgen.py)."""
        a = self.args
        duration, warmup = kw.pop("duration", a.duration), kw.pop("warmup", a.warmup)
        cmd = self.loadgen_command(mode, url, c, duration, warmup, **kw)
        limit = duration + a.chat_timeout + 120
        done = subprocess.run(
            cmd, cwd=ROOT, capture_output=True, text=True, timeout=limit, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"load generator failed: {done.stderr[-2000:]}")
        return json.loads(done.stdout.strip().splitlines()[-1])

    def close(self) -> None:
        stop(self.upstream)
        if not self.args.keep:
            shutil.rmtree(self.work, ignore_errors=True)
