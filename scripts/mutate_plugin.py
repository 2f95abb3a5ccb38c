"""A pytest plugin for mutation runs (scripts/mutate.py).

Each test process gets its own SQLite test database: mutmut runs several test processes at once
in the same directory, and they would otherwise create, flush and delete one shared file under
each other. Where the script made a migrated template (MUTATE_DB_TEMPLATE), each process starts
from a copy of it instead of running every migration again (in MUTATE_DB_DIR, a RAM disk where
there is one). And the tests run in the order of the module's test files in MUTATE_TEST_ORDER
(fast unit tests first), so that with -x a killed mutant costs only the first test that fails.
"""

import os
import shutil
from pathlib import Path

_shared: Path | None = None  # the test database's own name, before this plugin renamed it
_copies: list[Path] = []


def pytest_configure(config):
    if os.environ.get("MUTATE_DB_TEMPLATE"):
        config.option.reuse_db = True  # the copy is there already; delete it ourselves


def pytest_sessionstart(session):
    global _shared
    from django.conf import settings

    database = settings.DATABASES["default"]
    if not database.get("ENGINE", "").endswith("sqlite3"):
        return
    test = database.setdefault("TEST", {})
    if _shared is None:
        _shared = Path(test.get("NAME") or Path(database["NAME"]).with_name("test-db.sqlite3"))
    folder = Path(os.environ.get("MUTATE_DB_DIR") or _shared.parent)
    name = folder / f"{_shared.stem}-{os.getpid()}{_shared.suffix}"
    test["NAME"] = str(name)
    template = os.environ.get("MUTATE_DB_TEMPLATE")
    if template:
        shutil.copyfile(template, name)
        _copies.append(name)


def pytest_unconfigure(config):
    while _copies:
        name = _copies.pop()
        for path in (name, *(name.with_name(name.name + s) for s in ("-wal", "-shm", "-journal"))):
            path.unlink(missing_ok=True)


def pytest_collection_modifyitems(session, config, items):
    order = [f for f in os.environ.get("MUTATE_TEST_ORDER", "").split(",") if f]

    def rank(item):
        path = item.nodeid.split("::", 1)[0]
        return order.index(path) if path in order else len(order)

    items.sort(key=rank)  # stable: each file keeps its own order
