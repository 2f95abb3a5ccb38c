"""Helpers for the real-browser tests: a real uvicorn server on a fresh data dir, and Chromium.

The server runs in a subprocess exactly as in production (`uvicorn ragsite.asgi:application`),
against its own temporary database and search index, seeded with the sample knowledge base.
Chromium is Debian's (/usr/bin/chromium), driven by Playwright for Python; nothing is downloaded.
"""

import contextlib
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.proxy import free_port

REPO = Path(__file__).resolve().parent.parent
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DEMO_PASSWORD = "ragsite-demo"
# Environment variables ragsite's settings read; the test server gets none of the caller's.
# EMBEDDINGS is the suite's own (tests/suite_env.py: none), so it is kept.
OWN_SETTINGS = (
    "DJANGO_", "RAGSITE_", "DATABASE_", "REDIS_", "CHAT_", "SEARCH_", "INDEX_", "CHUNK_",
    "KNOWLEDGE_", "TOKEN_", "OPENAI_", "AZURE_", "LLM_", "EMBEDDING_", "OIDC_", "API_KEY_",
    "TRUSTED_PROXIES",
)  # fmt: skip

# A document written by an attacker: its title and text try to run script in every place the
# page shows document data (answer, sources, thought process, source page).
HOSTILE_DOCUMENT = """
from knowledge.models import Collection, Document
Document.objects.create(
    collection=Collection.objects.filter(slug="handbook").first(),
    title='Zebra memo <img src=x onerror="window.__pwned=1">',
    body=(
        "Zebra crossing rule.\\n\\nThe zebra crossing rule says staff cross the car park "
        "only at the zebra stripes <img src=x onerror=window.__pwned=2> near the canteen "
        "<script>window.__pwned=3</script>. See [the rule](javascript:window.__pwned=4) "
        "and <a href=\\"javascript:window.__pwned=5\\">this link</a> for the zebra crossing rule."
    ),
)
"""


def missing(reason: str) -> None:
    """Skip where a developer lacks the browser; under CI (CI=true) the browser tests are
    required (they are the only tests of answer sanitising), so a missing one fails."""
    if os.environ.get("CI") == "true":
        pytest.fail(reason.replace("browser tests skipped", "CI requires the browser tests"))
    pytest.skip(reason)


def chromium_path() -> str:
    """Debian's Chromium, or skip: the tests never download a browser."""
    for candidate in CHROMIUM_CANDIDATES:
        if os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    missing("Chromium is not installed (apt-get install chromium); browser tests skipped")


def require_playwright() -> None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing("Playwright is not installed (pip install playwright); browser tests skipped")


def sync_playwright():
    require_playwright()
    from playwright.sync_api import sync_playwright as start

    return start()


@dataclass
class LiveServer:
    url: str
    data_dir: Path
    process: subprocess.Popen
    log_path: Path

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _server_env(data_dir: Path) -> dict:
    env = dict(os.environ)
    for name in list(env):  # settings of the developer's own instance must not leak in
        if name.startswith(OWN_SETTINGS):
            del env[name]
    env.update(
        RAGSITE_DATA_DIR=str(data_dir),
        OPENAI_HOST="local",  # the offline answerer: deterministic answers, no network
        CHAT_STREAM_DELAY_SECONDS="0.03",  # slow enough that streaming is visible
        CHAT_ALLOW_ANONYMOUS="true",
        PYTHONUNBUFFERED="1",
    )
    return env


def _manage(env: dict, *args: str) -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"manage.py {' '.join(args)} failed ({result.returncode}):\n"
            f"{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
        )


def _wait_until_up(server: LiveServer, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"uvicorn exited early:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(server.url + "/accounts/login/", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"uvicorn did not answer within {timeout} s:\n{server.log_tail()}")


@contextlib.contextmanager
def live_server(data_dir: Path, setup: str = HOSTILE_DOCUMENT, **settings: str):
    """Migrate, seed the demo (users + sample_kb), run `setup` in `manage.py shell`, index,
    then serve with uvicorn (with `settings` as environment variables on top of the offline
    defaults)."""
    env = _server_env(data_dir) | settings
    _manage(env, "migrate", "--noinput", "-v", "0")
    _manage(env, "seed_demo")
    _manage(env, "shell", "-c", setup)
    _manage(env, "sync_index", "-v", "0")
    port = free_port()
    log_path = data_dir / "uvicorn.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "ragsite.asgi:application",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--lifespan",
                "off",
            ],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = LiveServer(f"http://127.0.0.1:{port}", data_dir, process, log_path)
    try:
        _wait_until_up(server)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def answer_state(page) -> dict:
    """The last answer bubble: its state (waiting/streaming/done/stopped/error) and text."""
    return page.evaluate(
        """() => {
            const all = document.querySelectorAll('.msg-assistant .answer');
            const last = all[all.length - 1];
            return last ? {state: last.dataset.state, text: last.textContent} : null;
        }"""
    )


def watch_answer(page, timeout: float = 60) -> list[dict]:
    """Poll the last answer until it is finished; returns every observation."""
    observations = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = answer_state(page)
        if state is not None:
            if not observations or state != observations[-1]:
                observations.append(state)
            if state["state"] in ("done", "stopped", "error"):
                return observations
        time.sleep(0.005)
    raise AssertionError(f"the answer did not finish within {timeout} s: {observations[-3:]}")


def ask(page, question: str) -> None:
    page.get_by_label("Your question").fill(question)
    page.get_by_label("Your question").press("Enter")
