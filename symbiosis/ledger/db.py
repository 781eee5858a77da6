"""Where the ledger is stored: SQLite by default (a file path), PostgreSQL by URL; creating it, opening it,
and the transaction every booking runs in.

Concurrency. Every booking is one transaction that first takes the ledger's single write lock and only then
reads the balances it checks against: on SQLite the transaction starts with ``BEGIN IMMEDIATE`` (the file's
write lock, taken before any read; other writers wait up to the busy timeout), on PostgreSQL it starts by
``SELECT ... FROM ledger_head ... FOR UPDATE`` (a row lock; other bookings wait on it, and under READ
COMMITTED each reads, once it holds the lock, everything committed before). So bookings are serialised: a
clerk's balance check always sees every booking committed before it, and two clerks can never both spend the
last tonne. Serialising every booking is what the hash chain needs anyway (each entry names the one before),
and bookings are few (a site books a few a day), so the lock costs nothing that matters.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import Session

from symbiosis.errors import SymbiosisError
from symbiosis.ledger.schema import Head

#: the newest migration; a ledger at another revision is refused until `symbiosis ledger init` upgrades it
HEAD_REVISION = "0001_journal"
#: where `--db` points when it is not given
DEFAULT_DB_ENV = "SYMBIOSIS_LEDGER_DB"
SQLITE_BUSY_TIMEOUT_S = 60


class LedgerError(SymbiosisError):
    """The ledger cannot be opened, or it is not in a state this program can work on."""


def ledger_url(db: str | os.PathLike[str] | None) -> str:
    """The SQLAlchemy URL for ``--db``: a URL as given (``postgresql://`` is driven by psycopg 3), anything
    else a SQLite file path. ``None`` reads ``SYMBIOSIS_LEDGER_DB``, else ``ledger.sqlite`` here."""
    if db is None:
        db = os.environ.get(DEFAULT_DB_ENV) or "ledger.sqlite"
    text = os.fspath(db)
    if "://" not in text:
        return f"sqlite:///{Path(text).resolve()}"
    try:
        url = make_url(text)
    except ArgumentError as exc:
        raise LedgerError(f"--db {text!r} is not a database URL ({exc}): give a file path for SQLite or "
                          "postgresql://user@host:port/database") from None
    if url.drivername.split("+")[0] in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")  # the driver this package depends on, whatever was named
    if url.get_backend_name() not in ("sqlite", "postgresql"):
        raise LedgerError(f"--db {url.render_as_string(hide_password=True)}: the ledger is stored in SQLite or "
                          "PostgreSQL only")
    return url.render_as_string(hide_password=False)


def make_engine(db: str | os.PathLike[str] | None) -> Engine:
    """An engine for the ledger. SQLite transactions begin with ``BEGIN IMMEDIATE`` (see the module text);
    the driver's own transaction handling is switched off so that SQLAlchemy's ``begin()`` is the real one."""
    url = ledger_url(db)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S,
                                                  "isolation_level": None})

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, record: Any) -> None:
            dbapi_connection.isolation_level = None  # no implicit BEGIN from the driver
            dbapi_connection.execute("PRAGMA foreign_keys = ON")
            dbapi_connection.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_S * 1000}")

        @event.listens_for(engine, "begin")
        def _on_begin(connection: Any) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_engine(url, pool_pre_ping=True)


def migrate(db: str | os.PathLike[str] | None, revision: str = "head") -> str:
    """Run the packaged Alembic migrations up to ``revision`` ("head" or a revision id), or down to "base"
    (every ledger table dropped); returns the URL (password hidden)."""
    from alembic import command
    from alembic.config import Config

    engine = make_engine(db)
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            if revision == "base":
                command.downgrade(config, revision)
            else:
                command.upgrade(config, revision)
    except OperationalError as exc:
        raise LedgerError(f"cannot create the ledger in {engine.url.render_as_string(hide_password=True)}: "
                          f"{exc.orig}") from None
    finally:
        engine.dispose()
    return engine.url.render_as_string(hide_password=True)


def init_ledger(db: str | os.PathLike[str] | None) -> str:
    """Create the ledger's tables (or bring an older ledger up to date) with the packaged Alembic
    migrations; returns the URL (password hidden). Safe to run twice."""
    return migrate(db, "head")


def check_revision_text(engine: Engine) -> str | None:
    """The database's schema revision, or None for an empty database."""
    from alembic.runtime.migration import MigrationContext

    try:
        with engine.connect() as connection:
            revision = MigrationContext.configure(connection).get_current_revision()
            connection.rollback()
    except OperationalError as exc:
        raise LedgerError(f"cannot open the ledger {engine.url.render_as_string(hide_password=True)}: "
                          f"{exc.orig}") from None
    return revision


def check_revision(engine: Engine) -> None:
    """Refuse a database that is not a ledger, or one at another schema revision."""
    where = engine.url.render_as_string(hide_password=True)
    revision = check_revision_text(engine)
    if revision is None:
        raise LedgerError(f"{where} is not a ledger (no schema revision): create one with "
                          f"`symbiosis ledger init --db {where}`")
    if revision != HEAD_REVISION:
        raise LedgerError(f"{where} is at schema revision {revision}, this program needs {HEAD_REVISION}: "
                          f"run `symbiosis ledger init --db {where}` to upgrade it")


@contextlib.contextmanager
def locked(engine: Engine) -> Iterator[tuple[Session, Head]]:
    """A transaction holding the ledger's write lock, with its head row; commits on success, rolls back
    (leaving the ledger exactly as it was) on any error."""
    with Session(engine, expire_on_commit=False) as session, session.begin():
        head = session.execute(select(Head).where(Head.id == 1).with_for_update()).scalar_one_or_none()
        if head is None:
            raise LedgerError("the ledger has no head row: it was not created by `symbiosis ledger init`, or "
                              "the row was deleted behind the program's back (run `symbiosis ledger verify`)")
        yield session, head
