"""Django settings for the web app's tests: a throw-away data folder, a fixed key, fast password hashing
except where a test checks the real one; PostgreSQL when SYMBIOSIS_TEST_POSTGRES_URL is set (CI)."""

import os
import tempfile

os.environ.setdefault("SYMBIOSIS_WEB_DIR", tempfile.mkdtemp(prefix="symbiosis-web-test-"))
os.environ.setdefault("SYMBIOSIS_SECRET_KEY", "test-only-key-" + "x" * 40)
if os.environ.get("SYMBIOSIS_TEST_POSTGRES_URL"):
    os.environ["SYMBIOSIS_DATABASE_URL"] = os.environ["SYMBIOSIS_TEST_POSTGRES_URL"]

from symbiosis.web.settings import *  # noqa: E402,F403

ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]
