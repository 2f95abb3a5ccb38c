"""A pytest plugin for mutation runs (scripts/mutate.py).

Each test process gets its own SQLite test database: mutmut runs several test processes at once
in the same directory, and they would otherwise create, flush and delete one shared file under
each other. And the tests run in the order of the module's test files in MUTATE_TEST_ORDER
(fast unit tests first), so that with -x a killed mutant costs only the first test that fails.
"""

import os
from pathlib import Path


def pytest_sessionstart(session):
    from django.conf import settings

    database = settings.DATABASES["default"]
    if database.get("ENGINE", "").endswith("sqlite3"):
        test = database.setdefault("TEST", {})
        shared = Path(test.get("NAME") or Path(database["NAME"]).with_name("test-db.sqlite3"))
        test["NAME"] = str(shared.with_name(f"{shared.stem}-{os.getpid()}{shared.suffix}"))


def pytest_collection_modifyitems(session, config, items):
    order = [f for f in os.environ.get("MUTATE_TEST_ORDER", "").split(",") if f]

    def rank(item):
        path = item.nodeid.split("::", 1)[0]
        return order.index(path) if path in order else len(order)

    items.sort(key=rank)  # stable: each file keeps its own order
