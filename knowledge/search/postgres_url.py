"""Where the PostgreSQL search backend connects: SEARCH_DATABASE_URL, or the app's database."""

from django.conf import settings
from django.db import connections
from psycopg.conninfo import make_conninfo


def search_conninfo() -> str:
    if settings.SEARCH_DATABASE_URL:
        return settings.SEARCH_DATABASE_URL
    # The app's connection parameters, read at build time: under tests that is the test database.
    params = connections["default"].get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    params.pop("prepare_threshold", None)
    return make_conninfo("", **{k: v for k, v in params.items() if isinstance(v, str | int)})
