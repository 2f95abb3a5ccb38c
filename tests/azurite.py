"""Azurite, the Azure Storage emulator, started for a test on a free port (blob service only,
in memory). It is installed into .ci/azurite by `make azurite` (npm, Node.js 18 or newer); where
it is missing the tests that need it skip, saying why, except under CI, where that fails."""

import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

BIN = Path(__file__).resolve().parent.parent / ".ci" / "azurite" / "node_modules" / ".bin"
ACCOUNT = "devstoreaccount1"
# Azurite's published development key (the same in every installation, not a secret).
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def connection_string(port: int) -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
        f"BlobEndpoint=http://127.0.0.1:{port}/{ACCOUNT};"
    )


@pytest.fixture
def azurite():
    """The connection string of a fresh Azurite blob service."""
    executable = BIN / "azurite-blob"
    if not executable.exists():
        message = f"Azurite is not installed ({executable} missing): run `make azurite`"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    port = _free_port()
    process = subprocess.Popen(
        [
            str(executable),
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(port),
            "--inMemoryPersistence",
            "--skipApiVersionCheck",
            "--loose",
            "--silent",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.5).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    error = process.stderr.read().decode(errors="replace")[-2000:]
                    pytest.fail(f"Azurite did not start: {error}")
                time.sleep(0.1)
        yield connection_string(port)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
