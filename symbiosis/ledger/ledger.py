"""The ledger: bookings (each one transaction under the ledger's write lock), balances, statements and the
audit of the hash chain. The rules themselves are in :mod:`symbiosis.ledger.rules`; storage in
:mod:`symbiosis.ledger.db`.

Every booking is a small frozen spec (:class:`Receipt`, :class:`Conversion`, :class:`Claim`,
:class:`Transfer`, :class:`Reversal`, :class:`Close`, :class:`SchemeRule`); :meth:`Ledger.book` books one or
more of them in one transaction, so a file of deliveries or an optimiser's exchanges is booked whole or not
at all, and a refused booking leaves the ledger exactly as it was.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from typing import Any

import pandas as pd
from sqlalchemy import select

from symbiosis.ledger.db import LedgerError, check_revision, locked, make_engine
from symbiosis.ledger.rules import (
    CARRY_OVER_RULES,
    GENESIS,
    REVERSIBLE_KINDS,
    Booking,
    Refused,
    certified_kg,
    decimal_in,
    entry_hash,
    next_period,
    parse_date,
    period_label,
    period_of,
    required,
    tonnes_to_kg,
)
from symbiosis.ledger.schema import Entry, Head

# --------------------------------------------------------------------------------------------------
# the bookings
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SchemeRule:
    """Register a certification scheme: its balancing period (months, dividing 12) and carry-over rule."""

    scheme: str
    period_months: int
    carry_over: str
    date: Any = None
    note: str | None = None


@dataclass(frozen=True)
class Receipt:
    """Certified material received at ``site`` from a supplier outside the ledger, under a declaration."""

    site: str
    material_group: str
    scheme: str
    declaration_id: str
    quantity_t: Any
    date: Any
    certificate_id: str | None = None
    supplier: str | None = None
    certified_share: Any = None
    certified_t: Any = None
    note: str | None = None


@dataclass(frozen=True)
class Conversion:
    """``certified_t`` certified tonnes of ``input_group`` turned into ``output_group`` at ``factor`` (t out per
    t in, in (0, 1]); the output credit is rounded down to the kilogram."""

    site: str
    scheme: str
    input_group: str
    output_group: str
    certified_t: Any
    factor: Any
    date: Any
    note: str | None = None


@dataclass(frozen=True)
class Claim:
    """A sale of ``quantity_t`` of ``material_group`` with certified content allocated to it, to a customer
    outside the ledger, under a new outgoing declaration."""

    site: str
    material_group: str
    scheme: str
    declaration_id: str
    quantity_t: Any
    date: Any
    customer: str | None = None
    certified_share: Any = None
    certified_t: Any = None
    note: str | None = None


@dataclass(frozen=True)
class Transfer:
    """Certified material sent from ``from_site`` to ``to_site`` (both in the ledger): A's outgoing
    declaration is B's receipt, the same tonnes, in one transaction."""

    from_site: str
    to_site: str
    material_group: str
    scheme: str
    declaration_id: str
    quantity_t: Any
    date: Any
    certified_share: Any = None
    certified_t: Any = None
    to_group: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class Reversal:
    """Correct a booking by reversing it whole (both halves of a transfer or conversion): never an edit."""

    seq: int
    reason: str
    date: Any = None


@dataclass(frozen=True)
class Close:
    """Close the balancing period of ``site`` under ``scheme`` that holds ``period``: carry a positive balance
    over (or forfeit it) by the scheme's rule and mark the period closed. ``as_of`` (default today) must be
    after the period's end."""

    site: str
    scheme: str
    period: Any
    as_of: Any = None


BookingSpec = SchemeRule | Receipt | Conversion | Claim | Transfer | Reversal | Close


def _today() -> datetime.date:
    return datetime.datetime.now(datetime.UTC).date()


def _book_scheme(b: Booking, spec: SchemeRule) -> None:
    name = required(spec.scheme, "scheme")
    try:
        months = int(spec.period_months)
    except (TypeError, ValueError):
        raise Refused(f"period length {spec.period_months!r} is not a whole number of months") from None
    if months not in (1, 2, 3, 4, 6, 12):
        raise Refused(f"period length {months} months does not divide a year: give 1, 2, 3, 4, 6 or 12")
    if spec.carry_over not in CARRY_OVER_RULES:
        raise Refused(f"carry-over rule {spec.carry_over!r} is not one of {', '.join(CARRY_OVER_RULES)}")
    try:
        known = b.scheme(name)
    except Refused:
        known = None
    if known is not None:
        if (known.period_months, known.carry_over) == (months, spec.carry_over):
            raise Refused(f"scheme {name!r} is already registered with these rules")
        raise Refused(f"scheme {name!r} is already registered ({known.period_months} months, carry-over "
                      f"{known.carry_over}); its rules cannot change under existing bookings")
    day = parse_date(spec.date) if spec.date is not None else _today()
    b.add(kind="scheme", scheme=name, entry_date=day.isoformat(), period_months=months,
          carry_over=spec.carry_over, note=spec.note)


def _book_receipt(b: Booking, spec: Receipt) -> None:
    site = required(spec.site, "site")
    group = required(spec.material_group, "material group")
    scheme = b.scheme(required(spec.scheme, "scheme"))
    day = parse_date(spec.date)
    start = period_of(day, scheme.period_months).isoformat()
    quantity = tonnes_to_kg(spec.quantity_t)
    certified = certified_kg(quantity, spec.certified_share, spec.certified_t)
    certificate = required(spec.certificate_id, "the supplier's certificate id")
    supplier = required(spec.supplier, "supplier")
    declaration = required(spec.declaration_id, "declaration id")
    b.check_open(site, scheme.name, start)
    b.check_declaration_free(declaration)
    b.add(kind="receipt", entry_date=day.isoformat(), period_start=start, site=site, material_group=group,
          scheme=scheme.name, certificate_id=certificate, supplier=supplier, declaration_id=declaration,
          quantity_kg=quantity, certified_kg=certified, note=spec.note)


def _book_conversion(b: Booking, spec: Conversion) -> None:
    site = required(spec.site, "site")
    group_in = required(spec.input_group, "input material group")
    group_out = required(spec.output_group, "output material group")
    scheme = b.scheme(required(spec.scheme, "scheme"))
    day = parse_date(spec.date)
    start = period_of(day, scheme.period_months).isoformat()
    consumed = tonnes_to_kg(spec.certified_t, "certified input")
    factor = decimal_in(spec.factor, "conversion factor", Decimal(0), Decimal(1), low_open=True)
    produced = int((Decimal(consumed) * factor).to_integral_value(rounding=ROUND_FLOOR))
    if group_in == group_out:
        raise Refused(f"a conversion turns one material group into another; input and output are both {group_in!r}")
    b.check_open(site, scheme.name, start)
    b.check_debit(site, group_in, scheme.name, start, consumed, "conversion input")
    first = b.add(kind="conversion_out", entry_date=day.isoformat(), period_start=start, site=site,
                  material_group=group_in, scheme=scheme.name, certified_kg=-consumed, factor=str(factor),
                  note=spec.note)
    second = b.add(kind="conversion_in", entry_date=day.isoformat(), period_start=start, site=site,
                   material_group=group_out, scheme=scheme.name, certified_kg=produced, factor=str(factor),
                   pair=first.seq, note=spec.note)
    del second


def _book_claim(b: Booking, spec: Claim) -> None:
    site = required(spec.site, "site")
    group = required(spec.material_group, "material group")
    scheme = b.scheme(required(spec.scheme, "scheme"))
    day = parse_date(spec.date)
    start = period_of(day, scheme.period_months).isoformat()
    quantity = tonnes_to_kg(spec.quantity_t)
    certified = certified_kg(quantity, spec.certified_share, spec.certified_t)
    declaration = required(spec.declaration_id, "declaration id")
    b.check_open(site, scheme.name, start)
    b.check_declaration_free(declaration)
    b.check_debit(site, group, scheme.name, start, certified, "claim")
    b.add(kind="claim", entry_date=day.isoformat(), period_start=start, site=site, material_group=group,
          scheme=scheme.name, counterparty=spec.customer, declaration_id=declaration, quantity_kg=quantity,
          certified_kg=-certified, note=spec.note)


def _book_transfer(b: Booking, spec: Transfer) -> None:
    giver = required(spec.from_site, "sending site")
    taker = required(spec.to_site, "receiving site")
    if giver == taker:
        raise Refused(f"a transfer is between two sites; both are {giver!r} (use a conversion within a site)")
    group = required(spec.material_group, "material group")
    group_in = spec.to_group.strip() if spec.to_group and spec.to_group.strip() else group
    scheme = b.scheme(required(spec.scheme, "scheme"))
    day = parse_date(spec.date)
    start = period_of(day, scheme.period_months).isoformat()
    quantity = tonnes_to_kg(spec.quantity_t)
    certified = certified_kg(quantity, spec.certified_share, spec.certified_t)
    declaration = required(spec.declaration_id, "declaration id")
    b.check_open(giver, scheme.name, start)
    b.check_open(taker, scheme.name, start)
    b.check_declaration_free(declaration)
    b.check_debit(giver, group, scheme.name, start, certified, "transfer")
    out = b.add(kind="transfer_out", entry_date=day.isoformat(), period_start=start, site=giver,
                material_group=group, scheme=scheme.name, counterparty=taker, declaration_id=declaration,
                quantity_kg=quantity, certified_kg=-certified, note=spec.note)
    b.add(kind="transfer_in", entry_date=day.isoformat(), period_start=start, site=taker, material_group=group_in,
          scheme=scheme.name, supplier=giver, counterparty=giver, declaration_id=declaration, quantity_kg=quantity,
          certified_kg=certified, pair=out.seq, note=spec.note)


def _book_reversal(b: Booking, spec: Reversal) -> None:
    reason = required(spec.reason, "the reason for the correction")
    target = b.session.get(Entry, int(spec.seq))
    if target is None:
        raise Refused(f"there is no entry #{spec.seq} to reverse")
    if target.kind not in REVERSIBLE_KINDS:
        raise Refused(f"entry #{target.seq} is a {target.kind} entry, which cannot be reversed (only "
                      f"{', '.join(REVERSIBLE_KINDS)})")
    # both halves of a transfer or conversion, always together
    partner_seq = target.pair
    if partner_seq is None:
        partner_row = b.session.execute(select(Entry).where(Entry.pair == target.seq)).scalar_one_or_none()
        group = [target] if partner_row is None else [target, partner_row]
    else:
        partner = b.session.get(Entry, partner_seq)
        group = [partner, target] if partner is not None else [target]
    for entry in group:
        earlier = b.session.execute(select(Entry.seq).where(Entry.reverses == entry.seq)).first()
        if earlier is not None:
            raise Refused(f"entry #{entry.seq} was already reversed by entry #{earlier[0]}")
    day = parse_date(spec.date) if spec.date is not None else _today()
    for entry in group:
        assert entry.site is not None and entry.period_start is not None and entry.material_group is not None
        b.check_open(entry.site, entry.scheme, entry.period_start)
    # credits added back first, then debits checked (a transfer's receiving side may have spent them)
    for entry in sorted(group, key=lambda e: e.certified_kg):
        assert entry.site is not None and entry.period_start is not None and entry.material_group is not None
        if entry.certified_kg > 0:
            b.check_debit(entry.site, entry.material_group, entry.scheme, entry.period_start, entry.certified_kg,
                          f"reversing entry #{entry.seq} ({entry.kind})")
        b.add(kind="reversal", entry_date=day.isoformat(), period_start=entry.period_start, site=entry.site,
              material_group=entry.material_group, scheme=entry.scheme, declaration_id=entry.declaration_id,
              counterparty=entry.counterparty, quantity_kg=entry.quantity_kg, certified_kg=-entry.certified_kg,
              reverses=entry.seq, note=reason)


def _book_close(b: Booking, spec: Close) -> None:
    site = required(spec.site, "site")
    scheme = b.scheme(required(spec.scheme, "scheme"))
    first = period_of(parse_date(spec.period, "period"), scheme.period_months)
    start = first.isoformat()
    following = next_period(first, scheme.period_months)
    as_of = parse_date(spec.as_of) if spec.as_of is not None else _today()
    if as_of < following:
        raise Refused(f"the period {period_label(first, scheme.period_months)} ends on "
                      f"{following - datetime.timedelta(days=1)}; it can be closed from {following} on")
    b.check_open(site, scheme.name, start)
    open_before = b.session.execute(select(Entry.period_start).where(
        Entry.site == site, Entry.scheme == scheme.name, Entry.period_start < start,
        Entry.kind != "close").distinct()).scalars().all()
    for earlier in sorted(p for p in open_before if p is not None):
        if not b.closed(site, scheme.name, earlier):
            raise Refused(f"site {site!r}, scheme {scheme.name!r}: the earlier period from {earlier} is still "
                          "open; periods close in order")
    groups = b.session.execute(select(Entry.material_group).where(
        Entry.site == site, Entry.scheme == scheme.name, Entry.period_start == start,
        Entry.material_group.is_not(None)).distinct()).scalars().all()
    day = as_of.isoformat()
    for group in sorted(g for g in groups if g is not None):
        balance = b.balance_kg(site, group, scheme.name, start)
        if balance < 0:  # the rules never let this happen; a ledger edited behind the program's back might
            raise LedgerError(f"site {site!r}, {group!r}: balance {balance / 1000:g} t is negative; run "
                              "`symbiosis ledger verify`")
        if balance == 0:
            continue
        if scheme.carry_over == "all":
            out = b.add(kind="carry_out", entry_date=day, period_start=start, site=site, material_group=group,
                        scheme=scheme.name, certified_kg=-balance)
            b.add(kind="carry_in", entry_date=day, period_start=following.isoformat(), site=site,
                  material_group=group, scheme=scheme.name, certified_kg=balance, pair=out.seq)
        else:
            b.add(kind="forfeit", entry_date=day, period_start=start, site=site, material_group=group,
                  scheme=scheme.name, certified_kg=-balance)
    b.add(kind="close", entry_date=day, period_start=start, site=site, scheme=scheme.name)


_BOOKERS: dict[type, Any] = {SchemeRule: _book_scheme, Receipt: _book_receipt, Conversion: _book_conversion,
                             Claim: _book_claim, Transfer: _book_transfer, Reversal: _book_reversal,
                             Close: _book_close}


class BookingRefused(Refused):
    """One booking of several was refused: ``index`` (0-based) says which; none of them was written."""

    def __init__(self, index: int, reason: str):
        self.index = index
        super().__init__(reason)


# --------------------------------------------------------------------------------------------------
# the ledger
# --------------------------------------------------------------------------------------------------

ENTRY_COLUMNS = ["seq", "kind", "entry_date", "period_start", "site", "material_group", "scheme",
                 "certificate_id", "supplier", "counterparty", "declaration_id", "quantity_t", "certified_t",
                 "factor", "period_months", "carry_over", "reverses", "pair", "batch", "clerk", "note",
                 "booked_at", "prev_hash", "hash"]


@dataclass(frozen=True)
class VerifyResult:
    """What ``verify`` found: ``ok``, the number of entries, the head hash, and the first bad entry (its number
    and what is wrong with it) when not ok."""

    ok: bool
    entries: int
    head_hash: str
    first_bad_seq: int | None = None
    problem: str | None = None


class Ledger:
    """A ledger database, opened (it must exist: :func:`symbiosis.ledger.db.init_ledger` creates it)."""

    def __init__(self, db: str | os.PathLike[str] | None, *, clerk: str | None = None):
        self.engine = make_engine(db)
        check_revision(self.engine)
        self.clerk = clerk

    def dispose(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.dispose()

    # -- booking ------------------------------------------------------------------------------------

    def book(self, *specs: BookingSpec) -> list[Entry]:
        """Book ``specs`` in one transaction, in order; returns the entries written. Any refusal raises
        :class:`BookingRefused` (or :class:`Refused` for a single booking) and writes nothing."""
        with locked(self.engine) as (session, head):
            booking = Booking(session, head, clerk=self.clerk)
            for index, spec in enumerate(specs):
                try:
                    _BOOKERS[type(spec)](booking, spec)
                except BookingRefused:
                    raise
                except Refused as exc:
                    if len(specs) == 1:
                        raise
                    raise BookingRefused(index, exc.reason) from None
            return list(booking.entries)

    # -- reading ------------------------------------------------------------------------------------

    def entries(self, *, site: str | None = None, scheme: str | None = None,
                period_start: str | None = None) -> pd.DataFrame:
        """The journal as a table (tonnes, not kilograms), in booking order, optionally for one site, scheme
        and period."""
        query = select(Entry).order_by(Entry.seq)
        if site is not None:
            query = query.where(Entry.site == site)
        if scheme is not None:
            query = query.where(Entry.scheme == scheme)
        if period_start is not None:
            query = query.where(Entry.period_start == period_start)
        with self.engine.connect() as connection:
            rows = connection.execute(query.with_only_columns(*Entry.__table__.columns)).mappings().all()
            connection.rollback()
        frame = pd.DataFrame([dict(r) for r in rows], columns=[c.name for c in Entry.__table__.columns])
        frame["quantity_t"] = frame.pop("quantity_kg").astype("Float64") / 1000
        frame["certified_t"] = frame.pop("certified_kg").astype("Int64").astype("Float64") / 1000
        return frame[ENTRY_COLUMNS]

    def balances(self, *, site: str | None = None, scheme: str | None = None) -> pd.DataFrame:
        """Certified balance per (site, material group, scheme, period), in tonnes."""
        entries = self.entries(site=site, scheme=scheme)
        entries = entries[entries["material_group"].notna()]
        table = (entries.groupby(["site", "material_group", "scheme", "period_start"], as_index=False)
                 ["certified_t"].sum().rename(columns={"certified_t": "balance_t"}))
        table["balance_t"] = table["balance_t"].astype(float).round(3)
        return table

    def balance_t(self, site: str, material_group: str, scheme: str, date: Any) -> float:
        """The certified balance of one account, in tonnes, for the period holding ``date``."""
        with locked(self.engine) as (session, head):
            booking = Booking(session, head)
            months = booking.scheme(scheme).period_months
            start = period_of(parse_date(date), months).isoformat()
            return booking.balance_kg(site, material_group, scheme, start) / 1000

    def scheme_months(self, scheme: str) -> int:
        with locked(self.engine) as (session, head):
            return Booking(session, head).scheme(scheme).period_months

    # -- audit --------------------------------------------------------------------------------------

    def verify(self, *, anchor: tuple[int, str] | None = None) -> VerifyResult:
        """Walk the hash chain from the first entry: each entry's number follows the one before, it names the
        previous entry's hash, and its own hash matches its content; the head row matches the last entry.
        ``anchor`` = (entry number, hash) an auditor recorded earlier: that entry must still carry that hash
        (this catches a chain rewritten whole). Then the rules are replayed over the chain."""
        with self.engine.connect() as connection:
            rows = connection.execute(select(*Entry.__table__.columns).order_by(Entry.seq)).mappings().all()
            head = connection.execute(select(Head.last_seq, Head.last_hash).where(Head.id == 1)).first()
            connection.rollback()
        previous = GENESIS
        expected_seq = 1
        for row in rows:
            seq = int(row["seq"])
            if seq != expected_seq:
                what = (f"entries #{expected_seq}..#{seq - 1} are missing (deleted)" if seq > expected_seq
                        else f"entry #{seq} is out of order (after #{expected_seq - 1})")
                return VerifyResult(False, len(rows), previous, min(seq, expected_seq), what)
            if row["prev_hash"] != previous:
                return VerifyResult(False, len(rows), previous, seq,
                                    f"entry #{seq} does not follow entry #{seq - 1}: it names a previous hash "
                                    f"{str(row['prev_hash'])[:12]}…, the chain has {previous[:12]}… (an entry "
                                    "before it was removed, reordered or rewritten)")
            recomputed = entry_hash(dict(row))
            if recomputed != row["hash"]:
                return VerifyResult(False, len(rows), previous, seq,
                                    f"entry #{seq} was changed after it was booked: its content no longer "
                                    "matches its hash")
            if anchor is not None and seq == anchor[0] and row["hash"] != anchor[1]:
                return VerifyResult(False, len(rows), previous, seq,
                                    f"entry #{seq} carries hash {row['hash'][:12]}…, not the {anchor[1][:12]}… "
                                    "recorded earlier: the chain was rewritten")
            previous = row["hash"]
            expected_seq += 1
        if head is None:
            return VerifyResult(False, len(rows), previous, None, "the head row is missing")
        if int(head[0]) < len(rows):
            first_added = int(head[0]) + 1
            return VerifyResult(False, len(rows), previous, first_added,
                                f"the ledger's head says {head[0]} entries, the table holds {len(rows)}: entries "
                                f"from #{first_added} on were added behind the program's back")
        if int(head[0]) != len(rows) or head[1] != previous:
            first_missing = len(rows) + 1
            return VerifyResult(False, len(rows), previous, first_missing,
                                f"the ledger's head says {head[0]} entries ending in {str(head[1])[:12]}…, the "
                                f"table holds {len(rows)}: entries from #{first_missing} on were deleted")
        if anchor is not None and anchor[0] > len(rows):
            return VerifyResult(False, len(rows), previous, len(rows) + 1,
                                f"entry #{anchor[0]} recorded earlier is no longer in the ledger")
        problem = replay([dict(r) for r in rows])
        if problem is not None:
            return VerifyResult(False, len(rows), previous, problem[0], problem[1])
        return VerifyResult(True, len(rows), previous)


def replay(rows: list[dict[str, Any]]) -> tuple[int, str] | None:
    """Check the rules over a whole journal in booking order: no account below zero after any booking (a
    booking's entries are applied together), every declaration live at most once. Returns (entry, problem)
    for the first breach, or None."""
    frame = pd.DataFrame(rows)
    if frame.empty:
        return None
    accounts = frame[frame["material_group"].notna()].copy()
    if not accounts.empty:
        accounts["running"] = accounts.groupby(["site", "material_group", "scheme", "period_start"])[
            "certified_kg"].cumsum()
        # an account is judged after the last entry a booking made to it (a reversal adds before it takes)
        last_of_batch = ~accounts.duplicated(["site", "material_group", "scheme", "period_start", "batch"],
                                             keep="last")
        negative = accounts[(accounts["running"] < 0) & last_of_batch]
        if not negative.empty:
            row = negative.iloc[0]
            return int(row["seq"]), (f"entry #{int(row['seq'])} takes the account of site {row['site']!r}, "
                                     f"{row['material_group']!r} ({row['scheme']}, period from "
                                     f"{row['period_start']}) to {row['running'] / 1000:g} t")
    reversed_seqs = set(frame["reverses"].dropna().astype(int))
    declaring = frame[frame["kind"].isin(["receipt", "claim", "transfer_out"]) & ~frame["seq"].isin(reversed_seqs)]
    twice = declaring[declaring["declaration_id"].duplicated()]
    if not twice.empty:
        row = twice.iloc[0]
        return int(row["seq"]), f"entry #{int(row['seq'])} uses declaration {row['declaration_id']!r} a second time"
    return None


def model_factor(model_id: str, input_material: str, output_material: str) -> Decimal:
    """A conversion factor from a process model (models/*.yaml): tonnes of ``output_material`` made per tonne
    of ``input_material`` taken in, per unit of activity, rounded down to six decimals. Both flows must be in
    tonnes; a factor above 1 is refused (a process cannot make certified mass)."""
    from symbiosis.errors import Problems
    from symbiosis.process_models import load_process_models

    problems = Problems()
    models = load_process_models(problems)
    model = models.get(model_id)
    if model is None:
        raise Refused(f"no process model {model_id!r} (known: {', '.join(sorted(models))})")

    def amount(direction: str, material: str) -> Decimal:
        flows = [f for f in model.flows if f.direction == direction and f.material == material]
        if not flows:
            names = sorted({f.material for f in model.flows if f.direction == direction})
            raise Refused(f"process model {model_id!r} has no {direction}put {material!r} (its {direction}puts: "
                          f"{', '.join(names)})")
        if any(f.unit != "t" for f in flows):
            raise Refused(f"process model {model_id!r}: {material!r} is not in tonnes, so no mass factor follows")
        return Decimal(str(sum(f.amount for f in flows)))

    taken, made = amount("in", input_material), amount("out", output_material)
    if taken == 0:
        raise Refused(f"process model {model_id!r} takes in no {input_material!r}")
    factor = (made / taken).quantize(Decimal("0.000001"), rounding=ROUND_FLOOR)
    if not 0 < factor <= 1:
        raise Refused(f"process model {model_id!r} makes {factor} t of {output_material!r} per t of "
                      f"{input_material!r}: a conversion factor must be in (0, 1]")
    return factor
