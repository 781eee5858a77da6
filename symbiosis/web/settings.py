"""Django settings, read from environment variables (docs/app.md lists them).

``SYMBIOSIS_DATABASE_URL``: a database URL (``postgres://user:pass@host/db`` or ``sqlite:///path``); default
SQLite in ``SYMBIOSIS_WEB_DIR`` (default ``./symbiosis-web``). ``SYMBIOSIS_SECRET_KEY``: the signing key; if
unset, one is generated once and kept in ``SYMBIOSIS_WEB_DIR/secret_key`` (mode 600). ``SYMBIOSIS_ALLOWED_HOSTS``
(comma-separated, default loopback), ``SYMBIOSIS_DEBUG`` (``1`` for development only), ``SYMBIOSIS_HTTPS``
(``1`` behind a TLS-terminating reverse proxy: secure cookies, HSTS, the proxy's X-Forwarded-Proto trusted).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import dj_database_url

WEB_DIR = Path(os.environ.get("SYMBIOSIS_WEB_DIR", "symbiosis-web")).resolve()


def _secret_key() -> str:
    key = os.environ.get("SYMBIOSIS_SECRET_KEY")
    if key:
        return key
    path = WEB_DIR / "secret_key"
    if path.exists():
        return path.read_text().strip()
    WEB_DIR.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(50)
    # Created with mode 600 so that another local user cannot forge sessions.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key


SECRET_KEY = _secret_key()
DEBUG = os.environ.get("SYMBIOSIS_DEBUG") == "1"
ALLOWED_HOSTS = [h.strip() for h in os.environ.get("SYMBIOSIS_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",")
                 if h.strip()]
HTTPS = os.environ.get("SYMBIOSIS_HTTPS") == "1"

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "axes",
    "simple_history",
    "symbiosis.web.apps.WebConfig",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    # last, as django-axes asks: it turns a locked-out login into its lockout response
    "axes.middleware.AxesMiddleware",
]

if os.environ.get("SYMBIOSIS_TEST_PID_HEADER") == "1":  # tests of several server processes only
    MIDDLEWARE.append("symbiosis.web.serve.pid_header")

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses a locked-out user before any password check
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "symbiosis.web.urls"
WSGI_APPLICATION = "symbiosis.web.wsgi.application"

TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "DIRS": [],
    "APP_DIRS": True,
    "OPTIONS": {"context_processors": [
        "django.template.context_processors.request",
        "django.contrib.auth.context_processors.auth",
        "django.contrib.messages.context_processors.messages",
        "symbiosis.web.access.membership_context",
    ]},
}]

DATABASES = {"default": dj_database_url.parse(
    os.environ.get("SYMBIOSIS_DATABASE_URL") or f"sqlite:///{WEB_DIR / 'db.sqlite3'}", conn_max_age=60)}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # background runs write their status from another thread while pages read it
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20
    # Write-ahead log: pages read while a write commits (in SQLite's default journal a write waits for every
    # reader and blocks new ones, which queued a 50-user load test for tens of seconds, docs/performance.md);
    # a transaction that will write takes the write lock when it begins, not halfway.
    DATABASES["default"]["OPTIONS"].update(init_command="PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                                           transaction_mode="IMMEDIATE")

# Passwords are hashed with Argon2id (Django's Argon2PasswordHasher, argon2-cffi: memory-hard, Django's and OWASP's
# first recommendation) at Django's parameters; PBKDF2 stays after it so that hashes made before still verify, and
# Django rehashes them with Argon2id at the user's next login. A login costs a few ms of CPU, not PBKDF2's 0.6 s
# (1,000,000 iterations), which was a quarter of the server's CPU in the 50-user load test (docs/performance.md).
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "home"

# Sessions expire after 8 hours and when the browser closes; the cookie is never readable by scripts.
SESSION_COOKIE_AGE = 8 * 3600
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = HTTPS
if HTTPS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = 31536000
    SECURE_SSL_REDIRECT = True
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "SAMEORIGIN"  # the run's map opens in a frame of the run page

# Login throttling (django-axes): 5 failures for one user name from one address lock it for an hour.
AXES_FAILURE_LIMIT = 5
AXES_COOLOFF_TIME = 1
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True

LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True
STATIC_URL = "static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

#: A partner search waits for the regional optimum of its own data version when the programme's last solve took
#: at most this many seconds; otherwise it uses the newest optimum and says how many changes it is behind
#: (symbiosis/web/search_cache.py, docs/app.md).
#: 2 s: Kalundborg solves in a fraction of a second; a 5,000-facility programme, solved whole by column generation
#: without the rest of the results (search_cache._solve_programme), in 4-10 s, and its searches must not wait for
#: the solver under a stream of edits (they did at the 5 s this was before, docs/performance.md).
PARTNERS_EXACT_OPTIMUM_S = float(os.environ.get("SYMBIOSIS_PARTNERS_EXACT_OPTIMUM_S", "2"))

#: On such a large programme (last solve over PARTNERS_EXACT_OPTIMUM_S), the optimum is refreshed at most once in
#: this many seconds, counted from the start of the last solve: edits in between are taken up together by the
#: next solve, and the server keeps its cores for the pages (docs/app.md, docs/performance.md).
PARTNERS_REFRESH_MIN_S = float(os.environ.get("SYMBIOSIS_PARTNERS_REFRESH_MIN_S", "60"))

#: On such a large programme, a change of amounts and prices only is re-optimised (the solver's child re-solves the
#: blocks it touches and prices every arc: about 0.3-0.4 CPU-s on a 5,000-facility programme, against 5-6 CPU-s
#: for the whole programme, symbiosis/web/search_cache.py) at most once in this many seconds, counted from the
#: start of the last solve: "in the optimum" lags behind the edits by about 15 s instead of a minute, and the
#: solver uses a third of the CPU it used for one whole solve a minute.
PARTNERS_REOPTIMISE_MIN_S = float(os.environ.get("SYMBIOSIS_PARTNERS_REOPTIMISE_MIN_S", "15"))

#: Where background runs write their output folders.
RUNS_DIR = WEB_DIR / "runs"

LOGGING = {"version": 1, "disable_existing_loggers": False,
           "handlers": {"console": {"class": "logging.StreamHandler"}},
           "loggers": {"axes": {"handlers": ["console"], "level": "WARNING"},
                       # which process solved which optimum (several server processes share one solver)
                       "symbiosis.web.search_cache": {"handlers": ["console"], "level": "INFO", "propagate": False}}}
