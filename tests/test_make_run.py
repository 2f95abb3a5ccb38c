"""`make run`, the README's first command: it serves the embedded default, and Ctrl-C stops the
server and the task worker cleanly. (Its shell trap used to send itself the signal it was
handling, over and over, until the shell crashed with a segmentation fault.)"""

import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.proxy import free_port

ROOT = Path(__file__).resolve().parent.parent


def _up(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _running_in_group(pgid: int) -> list[str]:
    """Live processes of a process group (zombies left to an init that does not reap are not
    running)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            found.append(stat[:80])
    return found


@pytest.mark.slow
@pytest.mark.own_configuration  # make run is the embedded default's command, whatever the pass's
def test_make_run_serves_and_ctrl_c_stops_everything(tmp_path):
    if not (ROOT / ".venv" / "bin" / "uvicorn").is_file():
        pytest.skip("make run needs the project's .venv (make install)")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env["RAGSITE_DATA_DIR"] = str(tmp_path)
    proc = subprocess.Popen(
        ["make", "--no-print-directory", "run", f"PORT={port}"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,  # its own process group, as a terminal gives it
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not _up(port):
            assert proc.poll() is None, proc.stdout.read()[-3000:]
            assert time.monotonic() < deadline, "make run did not serve within 120 s"
            time.sleep(0.5)
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert "Segmentation fault" not in out, out[-3000:]
    assert "Application shutdown complete" in out, out[-3000:]
    time.sleep(1)
    assert _running_in_group(proc.pid) == []  # nothing of it is left running
