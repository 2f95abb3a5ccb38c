import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command

from tests.fakes import (  # noqa: F401  (fixtures)
    fake_openai,
    fake_openai_factory,
    fake_search,
    fake_search_factory,
)


@pytest.fixture(autouse=True)
def isolated_storage(settings, tmp_path):
    """Each test gets its own search index file and media folder, and no retry sleeps."""
    settings.SEARCH_INDEX_PATH = tmp_path / "search-index.sqlite3"
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.INDEX_SYNC_BACKOFF_SECONDS = 0
    # Abuse limits are tested on their own (test_limits.py); elsewhere they would only make
    # the suite depend on how many requests came before.
    settings.CHAT_RATE_LIMIT = settings.CHAT_RATE_LIMIT_PER_IP = None
    settings.CHAT_MAX_CONCURRENT_STREAMS = 0
    # A channel layer belongs to the event loop that first used it (channels-redis binds its
    # locks to it); each test runs its own loop, so each gets a fresh layer.
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    # Password hashing is slow by design; tests create many users.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return tmp_path


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

    await close_clients()


@pytest.fixture(autouse=True)
def close_outbound_clients(request):
    """What the ASGI lifespan does at shutdown: close the per-loop LLM and search clients that an
    async test's loop built. (Sync tests run no loop of ours; Playwright runs its own.)"""
    import inspect

    if inspect.iscoroutinefunction(getattr(request, "function", None)):
        request.getfixturevalue("_close_clients_after")
