"""The mass-balance chain-of-custody rules, enforced on every booking (docs/custody.md).

A site's *credit account* is kept per (site, material group, scheme, balancing period) and is the sum of the
signed ``certified_kg`` of its journal entries. Bookings and the entries they append:

========================  ====================================================================================
booking                   entries (certified change)
========================  ====================================================================================
scheme                    ``scheme`` (0): the scheme's period length in months and its carry-over rule
receipt                   ``receipt`` (+c) at the receiving site, for a declaration from outside the ledger
conversion                ``conversion_out`` (−c, input group) and ``conversion_in`` (+⌊c·f⌋, output group)
claim (a sale)            ``claim`` (−c): certified quantity allocated to an outgoing sale, its declaration
transfer A → B            ``transfer_out`` (−c) at A and ``transfer_in`` (+c) at B, one declaration, one
                          transaction: A's outgoing declaration *is* B's receipt, with the same quantities
reversal (a correction)   ``reversal`` (−x) for each entry x of the booking it corrects (both halves of a
                          transfer or conversion)
close                     ``carry_out`` (−b) in the period and ``carry_in`` (+b) in the next, per group with a
                          positive balance b, when the scheme carries over; ``forfeit`` (−b) when it does not;
                          then ``close`` (0)
========================  ====================================================================================

Rules: an account never goes below zero (checked against the sum of every entry already booked in the
period, whatever their dates, so a claim needs its credit booked first); a declaration id is live in at most
one receipt, claim or transfer (a reversed one frees it); a conversion factor is in (0, 1] (a process cannot
make certified mass); periods close in order, a closed period takes no more bookings, nor does one before
it; a correction is a reversal, never an edit. Quantities are whole kilograms; tonnes with more than three
decimals are refused rather than rounded.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import uuid
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, Decimal, InvalidOperation
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from symbiosis.errors import SymbiosisError
from symbiosis.ledger.schema import Entry, Head

GENESIS = "0" * 64
CARRY_OVER_RULES = ("all", "none")
#: the kinds whose declaration id may be live only once in the whole ledger
DECLARING_KINDS = ("receipt", "claim", "transfer_out")
#: the kinds a reversal may correct
REVERSIBLE_KINDS = ("receipt", "claim", "transfer_out", "transfer_in", "conversion_out", "conversion_in")
#: the order of an entry's fields in its hash (every column but the hash itself)
HASHED_FIELDS = ("seq", "kind", "entry_date", "period_start", "site", "material_group", "scheme",
                 "certificate_id", "supplier", "counterparty", "declaration_id", "quantity_kg", "certified_kg",
                 "factor", "period_months", "carry_over", "reverses", "pair", "batch", "clerk", "note",
                 "booked_at", "prev_hash")


class Refused(SymbiosisError):
    """A booking broke a rule; nothing of it was written. ``reason`` says which rule and with what figures."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


# --------------------------------------------------------------------------------------------------
# quantities, dates, periods
# --------------------------------------------------------------------------------------------------

def tonnes_to_kg(value: Any, what: str = "quantity") -> int:
    """Tonnes (number or text) as whole kilograms; refuses negatives, non-numbers and sub-kilogram figures."""
    try:
        amount = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise Refused(f"{what} {value!r} is not a number of tonnes") from None
    if not amount.is_finite() or amount < 0:
        raise Refused(f"{what} {value!r} must be a finite number of tonnes ≥ 0")
    kg = amount * 1000
    if kg != kg.to_integral_value():
        raise Refused(f"{what} {value!r} t is more precise than 1 kg (at most 3 decimals in tonnes)")
    return int(kg)


def decimal_in(value: Any, what: str, low: Decimal, high: Decimal, *, low_open: bool = False) -> Decimal:
    try:
        number = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise Refused(f"{what} {value!r} is not a number") from None
    if not number.is_finite() or number > high or number < low or (low_open and number == low):
        bracket = "(" if low_open else "["
        raise Refused(f"{what} {value!r} is outside {bracket}{low}, {high}]")
    return number


def kg_to_tonnes(kg: int | None) -> float | None:
    return None if kg is None else kg / 1000


def parse_date(value: Any, what: str = "date") -> datetime.date:
    if isinstance(value, datetime.datetime):
        return value.date()
    if isinstance(value, datetime.date):
        return value
    try:
        return datetime.date.fromisoformat(str(value).strip())
    except ValueError:
        raise Refused(f"{what} {value!r} is not a date as YYYY-MM-DD") from None


def period_of(day: datetime.date, months: int) -> datetime.date:
    """First day of the balancing period holding ``day``: periods of ``months`` months from each 1 January."""
    start_month = (day.month - 1) // months * months + 1
    return datetime.date(day.year, start_month, 1)


def next_period(start: datetime.date, months: int) -> datetime.date:
    month = start.month - 1 + months
    return datetime.date(start.year + month // 12, month % 12 + 1, 1)


def period_label(start: datetime.date | str, months: int) -> str:
    """``2026-01-01`` with 3 months -> ``2026-01..2026-03``."""
    first = datetime.date.fromisoformat(start) if isinstance(start, str) else start
    last = next_period(first, months) - datetime.timedelta(days=1)
    return f"{first:%Y-%m}..{last:%Y-%m}"


# --------------------------------------------------------------------------------------------------
# the hash chain
# --------------------------------------------------------------------------------------------------

def canonical(entry: Entry | dict[str, Any]) -> bytes:
    """The bytes an entry's hash covers: its fields (not the hash) as sorted, compact JSON."""
    get = entry.get if isinstance(entry, dict) else lambda name: getattr(entry, name)
    record = {name: get(name) for name in HASHED_FIELDS}
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def entry_hash(entry: Entry | dict[str, Any]) -> str:
    return hashlib.sha256(canonical(entry)).hexdigest()


# --------------------------------------------------------------------------------------------------
# bookings
# --------------------------------------------------------------------------------------------------

@dataclass
class Scheme:
    name: str
    period_months: int
    carry_over: str


@dataclass
class Booking:
    """The transaction being built: entries are appended, numbered and chained as they come, and flushed so
    that the next rule check (in the same transaction) sees them."""

    session: Session
    head: Head
    clerk: str | None = None
    batch: str = field(default_factory=lambda: str(uuid.uuid4()))
    booked_at: str = field(default_factory=lambda: datetime.datetime.now(datetime.UTC)
                           .isoformat(timespec="microseconds"))
    entries: list[Entry] = field(default_factory=list)

    def add(self, **values: Any) -> Entry:
        fields: dict[str, Any] = {name: values.pop(name, None) for name in HASHED_FIELDS}
        if values:
            raise TypeError(f"not entry fields: {sorted(values)}")
        fields.update(seq=self.head.last_seq + 1, batch=self.batch, clerk=self.clerk, booked_at=self.booked_at,
                      prev_hash=self.head.last_hash)
        if fields["certified_kg"] is None:
            fields["certified_kg"] = 0
        entry = Entry(**fields)
        entry.hash = entry_hash(entry)
        self.session.add(entry)
        self.session.flush()
        self.head.last_seq = entry.seq
        self.head.last_hash = entry.hash
        self.entries.append(entry)
        return entry

    # -- what the rules read ------------------------------------------------------------------------

    def scheme(self, name: str) -> Scheme:
        row = self.session.execute(select(Entry).where(Entry.kind == "scheme", Entry.scheme == name)
                                   .order_by(Entry.seq.desc()).limit(1)).scalar_one_or_none()
        if row is None:
            raise Refused(f"scheme {name!r} is not registered in this ledger: register it first with its period "
                          "length and carry-over rule (`symbiosis ledger book scheme`)")
        assert row.period_months is not None and row.carry_over is not None
        return Scheme(name, row.period_months, row.carry_over)

    def balance_kg(self, site: str, group: str, scheme: str, period_start: str) -> int:
        total = self.session.execute(
            select(func.coalesce(func.sum(Entry.certified_kg), 0)).where(
                Entry.site == site, Entry.material_group == group, Entry.scheme == scheme,
                Entry.period_start == period_start)).scalar_one()
        return int(total)

    def closed(self, site: str, scheme: str, period_start: str) -> bool:
        return self.session.execute(select(Entry.seq).where(
            Entry.kind == "close", Entry.site == site, Entry.scheme == scheme,
            Entry.period_start == period_start).limit(1)).first() is not None

    def check_open(self, site: str, scheme: str, period_start: str) -> None:
        later = self.session.execute(select(func.max(Entry.period_start)).where(
            Entry.kind == "close", Entry.site == site, Entry.scheme == scheme)).scalar_one()
        if later is not None and later >= period_start:
            which = "is closed" if later == period_start else f"is before {later}, which is closed"
            raise Refused(f"site {site!r}, scheme {scheme!r}: the balancing period from {period_start} {which}; "
                          "a closed period takes no more bookings (book a correction in an open period)")

    def live_declaration(self, declaration_id: str) -> Entry | None:
        reversed_seqs = select(Entry.reverses).where(Entry.reverses.is_not(None))
        return self.session.execute(select(Entry).where(
            Entry.declaration_id == declaration_id, Entry.kind.in_(DECLARING_KINDS),
            Entry.seq.not_in(reversed_seqs)).order_by(Entry.seq).limit(1)).scalar_one_or_none()

    def check_declaration_free(self, declaration_id: str) -> None:
        if not declaration_id or not declaration_id.strip():
            raise Refused("a declaration id is required: every certified quantity in or out carries one")
        earlier = self.live_declaration(declaration_id)
        if earlier is not None:
            verb = {"receipt": "received by", "claim": "claimed on a sale by",
                    "transfer_out": "passed on by"}[earlier.kind]
            raise Refused(f"declaration {declaration_id!r} was already {verb} site {earlier.site!r} in entry "
                          f"#{earlier.seq} ({earlier.entry_date}): a declaration is consumed once")

    def check_debit(self, site: str, group: str, scheme: str, period_start: str, debit_kg: int, what: str) -> None:
        available = self.balance_kg(site, group, scheme, period_start)
        if debit_kg > available:
            raise Refused(f"{what} of {debit_kg / 1000:g} t certified {group!r} at site {site!r} ({scheme}, period "
                          f"from {period_start}) exceeds the credit available, {available / 1000:g} t: the "
                          "account may not go negative")


def required(value: Any, what: str) -> str:
    text = "" if value is None else str(value).strip()
    if not text:
        raise Refused(f"{what} is required")
    return text


def certified_kg(quantity_kg: int, certified_share: Any, certified_t: Any) -> int:
    """The certified kilograms of a delivery: given directly, or as a share of the quantity (rounded down, so
    rounding never creates credit); never more than the quantity."""
    if certified_t is not None and certified_share is not None:
        raise Refused("give the certified quantity or the certified share, not both")
    if certified_t is None and certified_share is None:
        raise Refused("the certified quantity or the certified share is required")
    if certified_share is not None:
        share = decimal_in(certified_share, "certified share", Decimal(0), Decimal(1))
        return int((Decimal(quantity_kg) * share).to_integral_value(rounding=ROUND_FLOOR))
    kg = tonnes_to_kg(certified_t, "certified quantity")
    if kg > quantity_kg:
        raise Refused(f"certified quantity {kg / 1000:g} t exceeds the quantity delivered, {quantity_kg / 1000:g} t")
    return kg
