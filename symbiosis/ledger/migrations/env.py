"""Alembic environment for the ledger: run only programmatically, on the connection the caller passes in
``config.attributes['connection']`` (symbiosis.ledger.db.init_ledger), never from an alembic.ini."""

from __future__ import annotations

from alembic import context

from symbiosis.ledger.schema import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
