"""Alembic migrations of the ledger schema (run by :func:`symbiosis.ledger.db.init_ledger`)."""
