"""Typed reads of environment variables for settings.py, on top of django-environ.

Every failure raises ImproperlyConfigured naming the variable and what was wrong with it, so a
bad deployment stops at start-up instead of failing at the first request.
"""

from __future__ import annotations

import builtins
import ipaddress
import re
from pathlib import Path
from typing import NoReturn
from urllib.parse import urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured

_RATE = re.compile(r"^\s*\d+\s*(/|\s+per\s+)\s*(\d+\s*)?(second|minute|hour|day)s?\s*$", re.I)
_INSECURE_DEV_KEY = "django-insecure-ragsite-dev-only-key-never-use-in-production"
_SIGNATURE_ALGORITHMS = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
)


class Config:
    def __init__(self, base_dir: Path):
        self.base_dir = base_dir
        self.env = environ.Env()

    def fail(self, name: str, problem: str) -> NoReturn:
        self._fail(name, problem)

    def _fail(self, name: str, problem: str) -> NoReturn:
        raise ImproperlyConfigured(f"Environment variable {name}: {problem}")

    def _read(self, name, cast, default):
        try:
            return self.env(name, cast=cast, default=default)
        except (ValueError, TypeError) as exc:
            self._fail(name, f"cannot parse {self.env.str(name)!r} ({exc})")

    def str(self, name: str, default: str) -> str:
        return self.env.str(name, default=default)

    # Below, the class's own str/bool/int/float/list methods hide the builtins' names.
    def bool(self, name: builtins.str, default: builtins.bool) -> builtins.bool:
        raw = self.env.str(name, default="").strip().lower()
        if not raw:
            return default
        if raw in {"1", "true", "yes", "on"}:
            return True
        if raw in {"0", "false", "no", "off"}:
            return False
        self._fail(name, f"expected true/false, got {raw!r}")

    def int(
        self, name: builtins.str, default: builtins.int, minimum: builtins.int | None = None
    ) -> builtins.int:
        value = self._read(name, int, default)
        if minimum is not None and value < minimum:
            self._fail(name, f"must be at least {minimum}, got {value}")
        return value

    def float(
        self, name: builtins.str, default: builtins.float, minimum: builtins.float | None = None
    ) -> builtins.float:
        value = self._read(name, float, default)
        if minimum is not None and value < minimum:
            self._fail(name, f"must be at least {minimum}, got {value}")
        return value

    def list(
        self, name: builtins.str, default: builtins.list[builtins.str]
    ) -> builtins.list[builtins.str]:
        return [item for item in self.env.list(name, default=default) if item]

    def networks(self, name: builtins.str) -> builtins.list[builtins.str]:
        """IP addresses or networks (`10.0.0.0/8`, `2001:db8::/32`), comma-separated."""
        entries = self.list(name, [])
        for entry in entries:
            try:
                ipaddress.ip_network(entry.strip(), strict=False)
            except ValueError:
                self._fail(name, f"{entry!r} is not an IP address or network")
        return [entry.strip() for entry in entries]

    def origin(self, name: builtins.str, url: builtins.str) -> builtins.str:
        """The scheme, host and port of a URL setting."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            self._fail(name, f"must be an http(s) URL, got {url!r}")
        return f"{parts.scheme}://{parts.netloc}"

    def algorithms(
        self, name: builtins.str, default: builtins.list[builtins.str]
    ) -> builtins.list[builtins.str]:
        """Token signature algorithms: asymmetric ones only (never `none`, never HMAC, whose
        key would be the provider's public key)."""
        values = self.list(name, default)
        for value in values:
            if value not in _SIGNATURE_ALGORITHMS:
                self._fail(name, f"{value!r} is not one of {', '.join(_SIGNATURE_ALGORITHMS)}")
        return values

    def path(self, name: builtins.str, default: Path) -> Path:
        raw = self.env.str(name, default="")
        path = Path(raw) if raw else default
        return path if path.is_absolute() else (self.base_dir / path)

    def choice(
        self, name: builtins.str, default: builtins.str, choices: builtins.list[builtins.str]
    ) -> builtins.str:
        value = self.env.str(name, default=default).strip().lower()
        if value not in choices:
            self._fail(name, f"must be one of {', '.join(choices)}; got {value!r}")
        return value

    def rate(self, name: builtins.str, default: builtins.str) -> builtins.str | None:
        """A rate in the `limits` library's notation ("30/minute"), or None for "off"."""
        value = self.env.str(name, default=default).strip()
        if value.lower() in {"off", "0", "none", ""}:
            return None
        if not _RATE.match(value):
            self._fail(name, f"expected a rate like '30/minute' or 'off', got {value!r}")
        return value

    def secret_key(self, debug: builtins.bool) -> builtins.str:
        key = self.env.str("DJANGO_SECRET_KEY", default="")
        if key:
            return key
        if debug or not self.env.str("DATABASE_URL", default=""):
            # The embedded default is a one-machine demo; a shared database means production.
            return _INSECURE_DEV_KEY
        self._fail("DJANGO_SECRET_KEY", "must be set when DATABASE_URL points at a shared database")

    def database(self, sqlite_path: Path) -> builtins.dict:
        url = self.env.str("DATABASE_URL", default="")
        if not url:
            return self.sqlite(sqlite_path)
        try:
            db = environ.Env.db_url_config(url)
        except Exception as exc:  # django-environ raises several types for a bad URL
            self._fail("DATABASE_URL", f"not a database URL ({exc})")
        engine = db.get("ENGINE", "")
        if engine.endswith("sqlite3"):
            return self.sqlite(Path(db["NAME"]))
        if not engine.endswith("postgresql"):
            self._fail("DATABASE_URL", "only sqlite:// and postgres:// URLs are supported")
        pool_max = self.int("DATABASE_POOL_MAX_SIZE", 20, minimum=1)
        db["CONN_MAX_AGE"] = 0  # the pool owns connection reuse; Django's async docs advise 0
        from psycopg_pool import ConnectionPool

        db.setdefault("OPTIONS", {})["pool"] = {
            # Checked on checkout, so connections cut by a database restart are replaced
            # instead of failing the next request.
            "check": ConnectionPool.check_connection,
            "min_size": self.int("DATABASE_POOL_MIN_SIZE", 2, minimum=0),
            "max_size": pool_max,
            "timeout": self.float("DATABASE_POOL_TIMEOUT", 10.0, minimum=0.1),
        }
        return db

    def search_database_url(self, required: builtins.bool, database: builtins.dict) -> builtins.str:
        """SEARCH_DATABASE_URL, or the app's PostgreSQL database as a libpq URL."""
        url = self.env.str("SEARCH_DATABASE_URL", default="")
        if url:
            if not re.match(r"^postgres(ql)?://", url):
                self._fail("SEARCH_DATABASE_URL", "must be a postgres:// URL")
            return url
        if required and not database["ENGINE"].endswith("postgresql"):
            self._fail(
                "SEARCH_DATABASE_URL",
                "must be set when SEARCH_BACKEND=postgres and DATABASE_URL is not PostgreSQL",
            )
        return ""

    @staticmethod
    def sqlite(path: Path) -> builtins.dict:
        path.parent.mkdir(parents=True, exist_ok=True)
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": path,
            # Tests use a file too: an in-memory database shares one cache across threads and
            # answers concurrent writers with "table is locked" instead of waiting, as WAL does.
            "TEST": {"NAME": str(path.with_name(f"test-{path.name}"))},
            "OPTIONS": {
                # Without IMMEDIATE and WAL concurrent writers fail with "database is locked".
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }

    def check_llm(self, host, azure_endpoint, azure_deployment, api_key, base_url, model) -> None:
        """Each OPENAI_HOST needs its own variables; say which one is missing at start-up."""
        needed = {
            "azure": [
                ("AZURE_OPENAI_ENDPOINT", azure_endpoint),
                ("AZURE_OPENAI_CHAT_DEPLOYMENT", azure_deployment),
            ],
            "openai": [("OPENAI_API_KEY", api_key), ("OPENAI_CHAT_MODEL", model)],
            "compatible": [("OPENAI_BASE_URL", base_url), ("OPENAI_CHAT_MODEL", model)],
        }.get(host, [])
        for name, value in needed:
            if not value:
                self._fail(name, f"must be set when OPENAI_HOST={host}")
        for name, value in (
            ("AZURE_OPENAI_ENDPOINT", azure_endpoint),
            ("OPENAI_BASE_URL", base_url),
        ):
            if value and not value.startswith(("http://", "https://")):
                self._fail(name, f"expected an http(s) URL, got {value!r}")

    def redis_url(self) -> builtins.str:
        url = self.env.str("REDIS_URL", default="")
        if url and not url.startswith(("redis://", "rediss://", "unix://")):
            self._fail("REDIS_URL", f"expected redis://host:port/db, got {url!r}")
        return url

    def caches(self) -> builtins.dict:
        url = self.redis_url()
        if url:
            return {
                "default": {
                    "BACKEND": "django.core.cache.backends.redis.RedisCache",
                    "LOCATION": url,
                }
            }
        return {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

    def channel_layers(self) -> builtins.dict:
        url = self.redis_url()
        if url:
            return {
                "default": {
                    "BACKEND": "channels_redis.core.RedisChannelLayer",
                    "CONFIG": {"hosts": [url]},
                }
            }
        return {"default": {"BACKEND": "ragsite.channel_layers.InMemoryChannelLayer"}}

    def originals_storage(self) -> builtins.dict:
        """STORAGES["default"]: Azure Blob Storage when an account URL or a connection string
        is set (keyless with the URL alone), else the local MEDIA_ROOT."""
        url = self.str("AZURE_STORAGE_ACCOUNT_URL", "").strip()
        connection = self.str("AZURE_STORAGE_CONNECTION_STRING", "").strip()
        container = self.str("AZURE_STORAGE_CONTAINER", "originals").strip()
        if not (url or connection):
            return {"BACKEND": "django.core.files.storage.FileSystemStorage"}
        if url and connection:
            self._fail(
                "AZURE_STORAGE_ACCOUNT_URL",
                "set it or AZURE_STORAGE_CONNECTION_STRING, not both",
            )
        if not re.fullmatch(r"[a-z0-9](?:[a-z0-9-]{1,61}[a-z0-9])?", container):
            self._fail("AZURE_STORAGE_CONTAINER", f"not a valid container name: {container!r}")
        options = {"azure_container": container, "overwrite_files": False}
        if connection:
            options["connection_string"] = connection
        else:
            match = re.fullmatch(r"(https?)://([a-z0-9]{3,24})\.blob\.([a-z0-9.-]+?)/?", url)
            if not match:
                self._fail(
                    "AZURE_STORAGE_ACCOUNT_URL",
                    f"expected https://<account>.blob.core.windows.net, got {url!r}",
                )
            scheme, account, suffix = match.groups()
            options |= {
                "account_name": account,
                "endpoint_suffix": suffix,
                "azure_ssl": scheme == "https",
            }
        return {"BACKEND": "knowledge.blob_storage.KeylessAzureStorage", "OPTIONS": options}
