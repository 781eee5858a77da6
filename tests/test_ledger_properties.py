"""Property tests of the custody rules (hypothesis): random sequences of receipts, conversions, transfers,
claims, reversals and closes, booked one by one on a SQLite ledger.

After every booking, from the journal alone (pandas sums written here, not the ledger's own queries): no
account is below zero; the certified quantity claimed across the network never exceeds the certified input
after conversion; no conversion makes mass; every declaration is live at most once and each transfer's two
halves agree. A refused booking leaves the ledger exactly as it was, says why, and a refusal for want of
credit happens exactly when the account (summed here) is short.
"""

from __future__ import annotations

import shutil
import tempfile
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from symbiosis.ledger import (
    Claim,
    Close,
    Conversion,
    Ledger,
    Receipt,
    Refused,
    Reversal,
    SchemeRule,
    Transfer,
    init_ledger,
)

S = "SCHEME"
SITES = ["A", "B"]
GROUPS = ["feed", "product"]
DECLARATIONS = [f"D{i}" for i in range(10)]

_TEMPLATE: Path | None = None


def fresh_ledger(folder: Path) -> str:
    """A copy of one initialised, scheme-registered ledger file (migrations run once per session)."""
    global _TEMPLATE
    if _TEMPLATE is None:
        _TEMPLATE = Path(tempfile.mkdtemp()) / "template.sqlite"
        init_ledger(str(_TEMPLATE))
        with Ledger(str(_TEMPLATE)) as ledger:
            ledger.book(SchemeRule(S, 3, "all", date="2026-01-01"))
    target = folder / "ledger.sqlite"
    shutil.copy(_TEMPLATE, target)
    return str(target)


tonnes = st.integers(min_value=0, max_value=5000).map(lambda kg: str(Decimal(kg) / 1000))
small = st.integers(min_value=0, max_value=1500).map(lambda kg: str(Decimal(kg) / 1000))
# mostly one quarter, so that credits and the claims on them meet; sometimes the next
dates = st.sampled_from(["2026-01-10", "2026-02-10", "2026-03-10", "2026-03-31", "2026-04-10"])
sites = st.sampled_from(SITES)
groups = st.sampled_from(GROUPS)
declarations = st.sampled_from(DECLARATIONS)


def certified_amount(draw: st.DrawFn, available_kg: int) -> str:
    """Mostly within the account's credit, sometimes just over it or far over (to be refused)."""
    share = draw(st.sampled_from([Decimal(0), Decimal("0.3"), Decimal("0.5"), Decimal(1), None, Decimal(2)]))
    kg = available_kg + 1 if share is None else int(available_kg * share)
    if available_kg == 0 and share is not None and share > 0:
        kg = draw(st.integers(min_value=1, max_value=1500))
    return str(Decimal(kg) / 1000)


@st.composite
def draw_booking(draw: st.DrawFn, entries: pd.DataFrame) -> object:
    """One booking, drawn knowing the journal so far so that credits and the claims on them meet."""
    kind = draw(st.sampled_from(["receipt"] * 3 + ["conversion"] * 2 + ["transfer"] * 2 + ["claim"] * 3
                                + ["reversal", "close"]))
    day = draw(dates)
    site = draw(sites)
    group = draw(groups)
    if kind == "receipt":
        return Receipt(site, group, S, draw(declarations), draw(tonnes), day, certificate_id="C",
                       supplier="outside", certified_share=draw(st.sampled_from(["0", "0.25", "0.5", "1"])))
    available = account_balance(entries, site, group, day)
    if kind == "conversion":
        other = next(g for g in GROUPS if g != group)
        return Conversion(site, S, group, other, certified_amount(draw, available),
                          draw(st.sampled_from(["0.5", "0.8", "0.999", "1", "1.5"])), day)
    certified = certified_amount(draw, available)
    quantity = str(Decimal(certified) + Decimal(draw(small)))
    if kind == "transfer":
        other_site = next(s for s in SITES if s != site)
        return Transfer(site, other_site, group, S, draw(declarations), quantity, day, certified_t=certified)
    if kind == "claim":
        return Claim(site, group, S, draw(declarations), quantity, day, certified_t=certified)
    if kind == "reversal":
        return Reversal(draw(st.integers(min_value=1, max_value=max(2, len(entries) + 1))), "correction", date=day)
    return Close(site, S, day, as_of="2027-01-01")


def account_balance(entries: pd.DataFrame, site: str, group: str, day: object) -> int:
    start = f"2026-{(pd.Timestamp(day).month - 1) // 3 * 3 + 1:02d}-01"
    rows = entries[(entries["site"] == site) & (entries["material_group"] == group)
                   & (entries["period_start"] == start)]
    return round(rows["certified_t"].sum() * 1000)


def check_invariants(entries: pd.DataFrame) -> None:
    kg = (entries["certified_t"] * 1000).round().astype(int)
    accounts = entries.assign(kg=kg)[entries["material_group"].notna()]
    balances = accounts.groupby(["site", "material_group", "period_start"])["kg"].sum()
    assert (balances >= 0).all(), balances[balances < 0]

    reversed_seqs = set(entries["reverses"].dropna().astype(int))
    live = entries[~entries["seq"].isin(reversed_seqs) & (entries["kind"] != "reversal")]
    live_kg = kg[live.index]
    claimed = -live_kg[live["kind"] == "claim"].sum()
    received = live_kg[live["kind"] == "receipt"].sum()
    conversion_net = live_kg[live["kind"].isin(["conversion_in", "conversion_out"])].sum()
    forfeited = -live_kg[live["kind"] == "forfeit"].sum()
    assert conversion_net <= 0  # conversions only lose certified mass
    assert claimed <= received + conversion_net - forfeited

    for _, incoming in live[live["kind"] == "conversion_in"].iterrows():
        outgoing = entries[entries["seq"] == incoming["pair"]].iloc[0]
        assert Decimal(incoming["factor"]) <= 1
        assert incoming["certified_t"] <= -outgoing["certified_t"] * float(incoming["factor"]) + 1e-9

    declaring = live[live["kind"].isin(["receipt", "claim", "transfer_out"])]
    assert not declaring["declaration_id"].duplicated().any()
    for _, out in live[live["kind"] == "transfer_out"].iterrows():
        (half,) = entries.index[(entries["pair"] == out["seq"]) & (entries["kind"] == "transfer_in")]
        assert entries.at[half, "certified_t"] == -out["certified_t"]
        assert entries.at[half, "quantity_t"] == out["quantity_t"]
        assert entries.at[half, "declaration_id"] == out["declaration_id"]
        assert entries.at[half, "site"] == out["counterparty"]


@pytest.mark.slow
@settings(max_examples=40, deadline=None)
@given(st.data(), st.integers(min_value=3, max_value=25))
def test_random_bookings_keep_every_rule(data: st.DataObject, n_bookings: int) -> None:
    with tempfile.TemporaryDirectory() as folder, Ledger(fresh_ledger(Path(folder))) as ledger:
        for _ in range(n_bookings):
            before = ledger.entries()
            booking = data.draw(draw_booking(before))
            head = ledger.verify(anchor=None).head_hash
            short = None
            if isinstance(booking, Claim | Transfer):
                site = booking.site if isinstance(booking, Claim) else booking.from_site
                short = account_balance(before, site, booking.material_group, booking.date) < round(
                    Decimal(booking.certified_t) * 1000)
            elif isinstance(booking, Conversion):
                short = account_balance(before, booking.site, booking.input_group, booking.date) < round(
                    Decimal(booking.certified_t) * 1000)
            try:
                ledger.book(booking)  # type: ignore[arg-type]
            except Refused as exc:
                event(f"refused {type(booking).__name__}: {exc.reason.split(' of ')[0][:30]}")
                assert exc.reason
                after = ledger.entries()
                assert len(after) == len(before) and ledger.verify().head_hash == head
                if short is not None and "exceeds the credit available" in exc.reason:
                    assert short, exc.reason
                continue
            event(f"booked {type(booking).__name__}")
            # booked: it cannot have been short of credit
            assert not short, booking
            check_invariants(ledger.entries())
        assert ledger.verify().ok
