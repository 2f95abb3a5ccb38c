import os
from pathlib import Path

import coverage
import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.test.client import AsyncClientHandler, ClientHandler

from tests import asgi_client
from tests.fakes import (  # noqa: F401  (fixtures)
    fake_openai,
    fake_openai_factory,
    fake_search,
    fake_search_factory,
)
from tests.oidc_helpers import fake_idp  # noqa: F401  (fixture)
from tests.pgvector_server import pgvector_fixture

pgvector_url = pgvector_fixture()


def pytest_collection_modifyitems(config, items):
    """Pass 2 (RAGSITE_TEST_SCALEOUT, scripts/test.sh) is this suite on PostgreSQL and Redis. A
    test marked own_configuration starts every process it checks with settings of its own, the
    pass's database and Redis stripped: pass 2 would run exactly what pass 1 does, so it skips."""
    if not os.environ.get("RAGSITE_TEST_SCALEOUT"):
        return
    skip = pytest.mark.skip(reason="own configuration, not this pass's backends: pass 1 runs it")
    for item in items:
        if item.get_closest_marker("own_configuration"):
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def isolated_storage(settings, tmp_path):
    """Each test gets its own search index file and media folder, and no retry sleeps."""
    settings.SEARCH_INDEX_PATH = tmp_path / "search-index.sqlite3"
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.INDEX_SYNC_BACKOFF_SECONDS = 0
    # A channel layer belongs to the event loop that first used it (channels-redis binds its
    # locks to it); each test runs its own loop, so each gets a fresh layer.
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    # Password hashing is slow by design; tests create many users.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return tmp_path


@pytest.fixture
def client():
    """Django's Client API, served by ragsite.asgi.application (tests/asgi_client.py)."""
    return asgi_client.Client()


@pytest.fixture
def async_client():
    """Django's AsyncClient API, served by ragsite.asgi.application on the test's loop."""
    return asgi_client.AsyncClient()


@pytest.fixture
def admin_client(db, admin_user):
    client = asgi_client.Client()
    client.force_login(admin_user)
    return client


# Which way each test's HTTP requests went: through the ASGI application users run, or through
# Django's test handler (django.test.Client/AsyncClient), which skips the server-facing layers.
_django_handler_requests = {"count": 0}
_http_tests = {"asgi": set(), "django": set()}


def _counting(call):
    def counted(self, *args, **kwargs):
        _django_handler_requests["count"] += 1
        return call(self, *args, **kwargs)

    return counted


ClientHandler.__call__ = _counting(ClientHandler.__call__)
AsyncClientHandler.__call__ = _counting(AsyncClientHandler.__call__)


@pytest.fixture(autouse=True)
def _http_path(request):
    asgi_before = asgi_client.served["asgi"]
    django_before = _django_handler_requests["count"]
    yield
    asgi_client.stop_server_loop()
    if asgi_client.served["asgi"] > asgi_before:
        _http_tests["asgi"].add(request.node.nodeid)
    if _django_handler_requests["count"] > django_before:
        _http_tests["django"].add(request.node.nodeid)
        pytest.fail(
            "this test sent HTTP requests through Django's test handler, which skips the ASGI "
            "application users run: use tests.asgi_client.Client/AsyncClient or the client, "
            "async_client and admin_client fixtures"
        )


def pytest_terminal_summary(terminalreporter):
    asgi_requests, django_requests = asgi_client.served["asgi"], _django_handler_requests["count"]
    if asgi_requests or django_requests:
        terminalreporter.write_line(
            f"HTTP: {asgi_requests} requests ({len(_http_tests['asgi'])} tests) through "
            f"ragsite.asgi.application, {django_requests} requests "
            f"({len(_http_tests['django'])} tests) through Django's test handler"
        )
        for nodeid in sorted(_http_tests["django"]):
            terminalreporter.write_line(f"  Django's test handler: {nodeid}")


@pytest.fixture(autouse=True)
def fresh_limits(settings):
    """The abuse limits stay on with their production defaults; each test starts as if nobody
    had asked anything yet. In memory the chat limits live per event loop, and each test runs
    its own loops (tests/asgi_client.py); the login throttle lives per process, and Redis
    outlives the process, so those counts are dropped here."""
    from core import login_throttle

    login_throttle._limiter = None
    if settings.REDIS_URL:
        import redis

        with redis.Redis.from_url(settings.REDIS_URL) as store:
            keys = [*store.scan_iter("LIMITS*"), *store.scan_iter("ragsite:*")]
            if keys:
                store.delete(*keys)


@pytest.fixture
def run_worker():
    """Run the real django-tasks-db worker until the queue is empty."""

    def run():
        call_command("db_worker", queue_name="*", batch=True, startup_delay=False, verbosity=0)

    return run


@pytest.fixture
def search(capsys):
    """Run `manage.py search` and return what it printed."""

    def run(query, user=None, **kwargs):
        args = [query] + (["--user", user] if user else [])
        for key, value in kwargs.items():
            args += [f"--{key}", str(value)]
        capsys.readouterr()
        call_command("search", *args)
        return capsys.readouterr().out

    return run


@pytest.fixture
def staff_user(django_user_model):
    return django_user_model.objects.create_user(
        "staffer", password="pw-staffer-1", is_staff=True, is_superuser=True
    )


@pytest.fixture
def staff_client(client, staff_user):
    client.force_login(staff_user)
    return client


@pytest.fixture
def new_client(async_client):
    """A factory of further clients like async_client: another browser or program each."""
    return lambda: type(async_client)()


@pytest.fixture
def make_user(django_user_model):
    def make(username, *groups):
        user = django_user_model.objects.create_user(username, password=f"pw-{username}-1")
        user.groups.add(*[Group.objects.get_or_create(name=g)[0] for g in groups])
        return user

    return make


@pytest.fixture
async def _close_clients_after():
    yield
    from ragsite.lifespan import close_clients

    await asgi_client.close_open_exchanges()
    await close_clients()


@pytest.fixture(autouse=True)
def close_outbound_clients(request):
    """What the ASGI lifespan does at shutdown: close the per-loop LLM and search clients that an
    async test's loop built. (Sync tests run no loop of ours; Playwright runs its own.)"""
    import inspect

    if inspect.iscoroutinefunction(getattr(request, "function", None)):
        request.getfixturevalue("_close_clients_after")


@pytest.fixture(scope="session", autouse=True)
def _child_process_coverage():
    """The processes that outlive every test: the extraction sandbox's fork server and
    multiprocessing's resource tracker would exit with this process, after the coverage report;
    stopped here, they write their coverage data in time to be combined. A server killed while
    writing its data (one that did not stop within its grace time) leaves a file coverage
    cannot read: dropped here, it would otherwise stay beside .coverage, warned about at every
    combine."""
    yield
    from multiprocessing import forkserver, resource_tracker

    # No public API stops them; CPython's own tests call these.
    forkserver._forkserver._stop()
    resource_tracker._resource_tracker._stop()
    measuring = coverage.Coverage.current()
    if measuring is not None:
        data_file = Path(measuring.config.data_file)
        for path in data_file.parent.glob(f"{data_file.name}.*"):
            try:
                coverage.CoverageData(str(path)).read()
            except coverage.CoverageException:
                path.unlink(missing_ok=True)
