"""The journal and its head row.

Revision ID: 0001_journal
Revises:
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_journal"
down_revision = None
branch_labels = None
depends_on = None

GENESIS = "0" * 64


def upgrade() -> None:
    seq_type = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.create_table(
        "ledger_entries",
        sa.Column("seq", seq_type, primary_key=True, autoincrement=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("entry_date", sa.String(10), nullable=False),
        sa.Column("period_start", sa.String(10), nullable=True),
        sa.Column("site", sa.String(200), nullable=True),
        sa.Column("material_group", sa.String(200), nullable=True),
        sa.Column("scheme", sa.String(100), nullable=False),
        sa.Column("certificate_id", sa.String(200), nullable=True),
        sa.Column("supplier", sa.String(200), nullable=True),
        sa.Column("counterparty", sa.String(200), nullable=True),
        sa.Column("declaration_id", sa.String(200), nullable=True),
        sa.Column("quantity_kg", sa.BigInteger(), nullable=True),
        sa.Column("certified_kg", sa.BigInteger(), nullable=False),
        sa.Column("factor", sa.String(40), nullable=True),
        sa.Column("period_months", sa.Integer(), nullable=True),
        sa.Column("carry_over", sa.String(16), nullable=True),
        sa.Column("reverses", sa.BigInteger(), sa.ForeignKey("ledger_entries.seq"), nullable=True),
        sa.Column("pair", sa.BigInteger(), nullable=True),
        sa.Column("batch", sa.String(36), nullable=False),
        sa.Column("clerk", sa.String(200), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("booked_at", sa.String(32), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_index("ix_ledger_entries_account", "ledger_entries",
                    ["site", "scheme", "period_start", "material_group"])
    op.create_index("ix_ledger_entries_declaration", "ledger_entries", ["declaration_id"])
    op.create_index("ix_ledger_entries_kind", "ledger_entries", ["kind", "scheme"])
    op.create_index("ix_ledger_entries_reverses", "ledger_entries", ["reverses"])
    op.create_index("ix_ledger_entries_pair", "ledger_entries", ["pair"])
    head = op.create_table(
        "ledger_head",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("last_hash", sa.String(64), nullable=False),
    )
    op.bulk_insert(head, [{"id": 1, "last_seq": 0, "last_hash": GENESIS}])


def downgrade() -> None:
    op.drop_table("ledger_head")
    for index in ("ix_ledger_entries_pair", "ix_ledger_entries_reverses", "ix_ledger_entries_kind"):
        op.drop_index(index, table_name="ledger_entries")
    op.drop_index("ix_ledger_entries_declaration", table_name="ledger_entries")
    op.drop_index("ix_ledger_entries_account", table_name="ledger_entries")
    op.drop_table("ledger_entries")
