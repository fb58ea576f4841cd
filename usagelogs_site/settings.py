"""Settings for Usage Logs.

Everything that differs between a laptop and production is read from the
environment (the table in README.md, Settings). The defaults give a zero-setup SQLite
development server; production sets DEBUG=0, SECRET_KEY and ALLOWED_HOSTS.
"""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), got {value!r}")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, got {value!r}") from exc
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {number}")
    return number


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


DEBUG = env_bool("DEBUG", True)

_DEV_SECRET_KEY = "django-insecure-dev-only-usagelogs-change-me"
SECRET_KEY = os.environ.get("SECRET_KEY") or _DEV_SECRET_KEY
if not DEBUG and SECRET_KEY == _DEV_SECRET_KEY:
    raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    # Failed logins on both admin sites: locked out per username and per address.
    "axes",
    "rest_framework",
    "django_filters",
    "import_export",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "accounts",
    "logs",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Serves collected static files (admin, Swagger UI) from the app process.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Account memberships read once per request (accounts.scoping.visible_account_ids).
    "accounts.middleware.ScopeCacheMiddleware",
    # The time zone a user chose for the pages (accounts.UserPreference).
    "accounts.middleware.UserTimeZoneMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: turns a locked-out login into the login page
    # with its message (usagelogs_site.logins.lockout_response).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "usagelogs_site.urls"

# The call list's covering indexes INCLUDE columns for PostgreSQL's index-only
# scans; SQLite (small data, no such scans) builds them without, as it should.
SILENCED_SYSTEM_CHECKS = ["models.W040"]

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
            ],
        },
    },
]

WSGI_APPLICATION = "usagelogs_site.wsgi.application"

DATABASES = {
    "default": dj_database_url.config(
        env="DATABASE_URL",
        default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=env_int("DB_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
# Read replicas: comma-separated URLs. Reads of call data go to them (see
# usagelogs_site/routers.py); in tests each replica mirrors the test database.
DATABASE_REPLICAS: list[str] = []
for _number, _url in enumerate(env_list("DATABASE_REPLICA_URLS", []), start=1):
    _alias = f"replica_{_number}"
    DATABASES[_alias] = dj_database_url.parse(
        _url, conn_max_age=env_int("DB_CONN_MAX_AGE", 60), conn_health_checks=True
    )
    DATABASES[_alias]["TEST"] = {"MIRROR": "default"}
    DATABASE_REPLICAS.append(_alias)
DATABASE_ROUTERS = ["usagelogs_site.routers.ReadReplicaRouter"]

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several writers (server + seed command) must wait, not fail with "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# One cache that every worker process shares: the API's throttle counters live
# there, and a cache in each process's memory would let each of N gunicorn
# workers count on its own (N times the limit). The database cache by default
# (``migrate`` creates its table, see logs.apps); Redis when REDIS_URL is set
# (the ``redis`` package comes with the ``prod`` extra), for many workers or
# high request rates: the database cache costs a few queries per API request.
REDIS_URL = os.environ.get("REDIS_URL", "").strip()
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "usagelogs_cache",
            # Past MAX_ENTRIES rows a third of the entries is culled, throttle
            # counters among them: far above what a day of tokens and pages keeps.
            "OPTIONS": {"MAX_ENTRIES": 100_000},
        }
    }

AUTHENTICATION_BACKENDS = [
    # First: refuses every password, right or wrong, while its username or
    # address is locked out, before any password is checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

# Failed logins (README, Settings): after USAGELOGS_LOGIN_FAILURE_LIMIT failures
# for one username, or from one address, logins for it are refused for
# USAGELOGS_LOGIN_LOCKOUT_MINUTES after the last failure. Failures are rows in
# the database (django-axes' database handler), so every worker process sees them.
USAGELOGS_LOGIN_FAILURE_LIMIT = env_int("USAGELOGS_LOGIN_FAILURE_LIMIT", 5, minimum=1)
USAGELOGS_LOGIN_LOCKOUT_MINUTES = env_int("USAGELOGS_LOGIN_LOCKOUT_MINUTES", 15, minimum=1)
# Proxies in front of the app that append the client's address to X-Forwarded-For
# (a TLS-terminating nginx: 1). Without this every login comes from the proxy's
# address, and the lockout per address would lock everyone out at once.
USAGELOGS_TRUSTED_PROXIES = env_int("USAGELOGS_TRUSTED_PROXIES", 0, minimum=0)
AXES_FAILURE_LIMIT = USAGELOGS_LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(minutes=USAGELOGS_LOGIN_LOCKOUT_MINUTES)
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]  # each on its own, not the pair
# Attempts during a lockout are refused without counting: it ends when it said it would.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_CLIENT_IP_CALLABLE = "usagelogs_site.logins.client_address"
AXES_LOCKOUT_CALLABLE = "usagelogs_site.logins.lockout_response"
AXES_VERBOSE = False  # no banner on every management command

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
# ISO dates and times on every admin page (usagelogs_site/formats/en/formats.py).
FORMAT_MODULE_PATH = ["usagelogs_site.formats"]
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

LOGIN_URL = "admin:login"

# --- Usage Logs ---------------------------------------------------------------
# Each bulky part of a call (request parameters, request body, response, error
# detail) is capped to this many bytes of JSON after redaction.
USAGELOGS_PAYLOAD_MAX_BYTES = env_int("USAGELOGS_PAYLOAD_MAX_BYTES", 64 * 1024)
# Largest batch the ingest service takes in one transaction.
USAGELOGS_INGEST_MAX_BATCH = env_int("USAGELOGS_INGEST_MAX_BATCH", 1000)
# Largest body POST /api/v1/calls/ingest/ reads; a larger one is answered 413.
USAGELOGS_INGEST_MAX_BODY_BYTES = env_int("USAGELOGS_INGEST_MAX_BODY_BYTES", 32 * 1024 * 1024)
# Each ingest request folds pending rollup deltas after its commit, unless another
# folder is at work. Off when `manage.py fold_rollups --loop` runs as a process of
# its own: ingest requests then only append.
USAGELOGS_FOLD_AFTER_INGEST = env_bool("USAGELOGS_FOLD_AFTER_INGEST", True)
# /api/v1/health/ says "behind" once the oldest pending delta has waited this long.
USAGELOGS_FOLD_BEHIND_SECONDS = env_int("USAGELOGS_FOLD_BEHIND_SECONDS", 60)
# Gateways that post their own records (LiteLLM: docs/integrations/) name their
# teams and keys; those seen for the first time become accounts and keys here.
# Off: a record of a team or key not set up here is refused (400).
USAGELOGS_INTEGRATIONS_CREATE_ACCOUNTS = env_bool("USAGELOGS_INTEGRATIONS_CREATE_ACCOUNTS", True)

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.api.authentication.AccessTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_THROTTLE_RATES": {
        "token": os.environ.get("USAGELOGS_API_RATE", "1200/min"),
        "ingest": os.environ.get("USAGELOGS_INGEST_RATE", "600/min"),
    },
    "EXCEPTION_HANDLER": "usagelogs_site.api.exception_handler",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Usage Logs API",
    "DESCRIPTION": "Read, filter, export and ingest the call records of an LLM API gateway.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI from the project's own static files: the docs work offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}

if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}
