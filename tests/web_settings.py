"""Django settings for the web app's tests: a throw-away data folder, a fixed key, fast password hashing
except where a test checks the real one; PostgreSQL when SYMBIOSIS_TEST_POSTGRES_URL is set (CI)."""

import atexit
import os
import shutil
import tempfile

if "SYMBIOSIS_WEB_DIR" not in os.environ:
    _folder = tempfile.mkdtemp(prefix="symbiosis-web-test-")
    atexit.register(shutil.rmtree, _folder, ignore_errors=True)
    os.environ["SYMBIOSIS_WEB_DIR"] = _folder
os.environ.setdefault("SYMBIOSIS_SECRET_KEY", "test-only-key-" + "x" * 40)
if os.environ.get("SYMBIOSIS_TEST_POSTGRES_URL"):
    os.environ["SYMBIOSIS_DATABASE_URL"] = os.environ["SYMBIOSIS_TEST_POSTGRES_URL"]

from symbiosis.web.settings import *  # noqa: E402,F403

ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]
# No persistent connections in tests: the live server's and background runs' threads must not hold the test
# database open when it is dropped at the end (PostgreSQL refuses to drop a database in use).
DATABASES["default"]["CONN_MAX_AGE"] = 0  # noqa: F405
