"""Databases for the ledger tests: a fresh SQLite file, or a fresh database on the PostgreSQL server that
``.ci/start-postgres.sh`` started (``SYMBIOSIS_TEST_POSTGRES_URL``).

Without that variable the PostgreSQL tests skip with the reason, except under CI (env ``CI`` set), where
they fail: CI must exercise the real server.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

POSTGRES_ENV = "SYMBIOSIS_TEST_POSTGRES_URL"


def require_postgres() -> str:
    url = os.environ.get(POSTGRES_ENV)
    if url:
        return url
    reason = (f"{POSTGRES_ENV} is not set: start a server with `eval \"$(bash .ci/start-postgres.sh)\"` "
              "(Debian's postgresql package)")
    if os.environ.get("CI"):
        pytest.fail(f"PostgreSQL tests cannot run: {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL tests skipped: {reason}")


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """A new, empty database on the test server (dropped afterwards); yields its URL."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    base = make_url(require_postgres()).set(drivername="postgresql+psycopg")
    name = f"ledger_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield base.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()
