"""The ledger's tables, as SQLAlchemy ORM classes: one schema for SQLite and PostgreSQL.

The journal (``ledger_entries``) is the ledger: every booking appends rows to it and nothing ever updates or
deletes one. Balances are not stored; they are sums over the journal, so there is no second copy to drift
or to be edited apart. ``ledger_head`` is one row holding the last entry's number and hash: each booking
locks it first, which puts all bookings in one order (the hash chain needs one) and lets no two clerks
spend the same credit at once. The migrations in ``symbiosis/ledger/migrations`` create exactly these tables
(``tests/test_ledger_db.py`` compares them).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Entry(Base):
    """One journal entry. Quantities are integer kilograms (exact sums on both databases); ``certified_kg``
    is the signed change to the site's credit account for (material group, scheme, period)."""

    __tablename__ = "ledger_entries"

    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                     autoincrement=False)
    kind: Mapped[str] = mapped_column(String(16))
    entry_date: Mapped[str] = mapped_column(String(10))  # ISO date the booking is for
    period_start: Mapped[str | None] = mapped_column(String(10))  # first day of its balancing period
    site: Mapped[str | None] = mapped_column(String(200))
    material_group: Mapped[str | None] = mapped_column(String(200))
    scheme: Mapped[str] = mapped_column(String(100))
    certificate_id: Mapped[str | None] = mapped_column(String(200))
    supplier: Mapped[str | None] = mapped_column(String(200))
    counterparty: Mapped[str | None] = mapped_column(String(200))
    declaration_id: Mapped[str | None] = mapped_column(String(200))
    quantity_kg: Mapped[int | None] = mapped_column(BigInteger)
    certified_kg: Mapped[int] = mapped_column(BigInteger)
    factor: Mapped[str | None] = mapped_column(String(40))  # conversion factor, a decimal as text
    period_months: Mapped[int | None] = mapped_column(Integer)  # scheme entries: length of a period
    carry_over: Mapped[str | None] = mapped_column(String(16))  # scheme entries: 'all' or 'none'
    reverses: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("ledger_entries.seq"))
    pair: Mapped[int | None] = mapped_column(BigInteger)  # the other half of a transfer or conversion
    batch: Mapped[str] = mapped_column(String(36))  # the booking (one transaction) the entry belongs to
    clerk: Mapped[str | None] = mapped_column(String(200))
    note: Mapped[str | None] = mapped_column(Text)
    booked_at: Mapped[str] = mapped_column(String(32))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))

    __table_args__ = (
        Index("ix_ledger_entries_account", "site", "scheme", "period_start", "material_group"),
        Index("ix_ledger_entries_declaration", "declaration_id"),
        Index("ix_ledger_entries_kind", "kind", "scheme"),
        Index("ix_ledger_entries_reverses", "reverses"),
        Index("ix_ledger_entries_pair", "pair"),
    )


class Head(Base):
    """The single row every booking locks: the last entry's number and hash."""

    __tablename__ = "ledger_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_seq: Mapped[int] = mapped_column(BigInteger)
    last_hash: Mapped[str] = mapped_column(String(64))
