"""A real uvicorn serving ragsite.asgi:application in a subprocess, as in production."""

import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.proxy import free_port

ROOT = Path(__file__).resolve().parent.parent


def launch(env: dict, log_path: Path) -> tuple[subprocess.Popen, int]:
    """Start uvicorn on a free port, its output in log_path; does not wait for it."""
    port = free_port()
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "ragsite.asgi:application", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return process, port


def wait_listening(process: subprocess.Popen, port: int, log_path: Path, seconds=60) -> None:
    """Return once the server accepts connections; fail with its log if it died or never did."""
    deadline = time.monotonic() + seconds
    while True:
        assert process.poll() is None, log_path.read_text()
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
            return
        except OSError:
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.1)


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)
