"""The custody ledger's rules on a hand-worked example (docs/custody.md), on SQLite and PostgreSQL.

Every expected balance is worked out by hand in the comments from the bookings above it; none is read back
from the program. Each refusal is checked to leave the ledger exactly as it was (same entries, same head).
"""

from __future__ import annotations

import pytest

from symbiosis.ledger import (
    Claim,
    Close,
    Conversion,
    Ledger,
    LedgerError,
    Receipt,
    Refused,
    Reversal,
    SchemeRule,
    Transfer,
    init_ledger,
)

S = "ISCC PLUS"


def unchanged(ledger: Ledger, booking: object, match: str) -> None:
    """Book ``booking``, expect a refusal matching ``match``, and check nothing was written."""
    before = ledger.entries()
    head = ledger.verify().head_hash
    with pytest.raises(Refused, match=match):
        ledger.book(booking)  # type: ignore[arg-type]
    after = ledger.entries()
    assert len(after) == len(before)
    assert ledger.verify().head_hash == head


def worked_example(ledger: Ledger) -> None:
    """The worked example of docs/custody.md, up to the first claim."""
    ledger.book(SchemeRule(S, 3, "all", date="2026-01-01"))
    # 400 t of used cooking oil, 75 % certified: 300 t of credit
    ledger.book(Receipt("biorefinery", "UCO", S, "POS-UCO-0001", "400", "2026-01-05",
                        certificate_id="EU-ISCC-Cert-DE100-00001", supplier="Collector GmbH", certified_share="0.75"))
    # 200 t, all certified: UCO credit 300 + 200 = 500 t
    ledger.book(Receipt("biorefinery", "UCO", S, "POS-UCO-0002", "200", "2026-01-20",
                        certificate_id="EU-ISCC-Cert-DE100-00001", supplier="Collector GmbH", certified_t="200"))
    # 450 t of certified UCO into HVO at 0.8 t/t: UCO 500 - 450 = 50 t, HVO 450 * 0.8 = 360 t
    ledger.book(Conversion("biorefinery", S, "UCO", "HVO", "450", "0.8", "2026-02-01"))
    # 250 t of HVO to the blender, 200 t of it certified: refinery HVO 360 - 200 = 160 t, blender HVO 200 t
    ledger.book(Transfer("biorefinery", "blender", "HVO", S, "SD-2026-0007", "250", "2026-02-15", certified_t="200"))
    # a sale of 300 t with 150 t certified: refinery HVO 160 - 150 = 10 t
    ledger.book(Claim("biorefinery", "HVO", S, "SD-2026-0008", "300", "2026-03-01", customer="Airline A",
                      certified_t="150"))


def test_worked_example_balances_by_hand(ledger_db: str) -> None:
    with Ledger(ledger_db) as ledger:
        worked_example(ledger)
        assert ledger.balance_t("biorefinery", "UCO", S, "2026-03-31") == 50
        assert ledger.balance_t("biorefinery", "HVO", S, "2026-03-31") == 10
        assert ledger.balance_t("blender", "HVO", S, "2026-01-01") == 200
        # the transfer's two halves carry one declaration and the same tonnes
        entries = ledger.entries()
        halves = entries[entries["declaration_id"] == "SD-2026-0007"]
        assert list(halves["kind"]) == ["transfer_out", "transfer_in"]
        assert list(halves["site"]) == ["biorefinery", "blender"]
        assert list(halves["certified_t"]) == [-200, 200]
        assert list(halves["quantity_t"]) == [250, 250]
        assert ledger.verify().ok


def test_a_claim_beyond_the_credit_is_refused_and_changes_nothing(ledger_db: str) -> None:
    with Ledger(ledger_db) as ledger:
        worked_example(ledger)
        # 10 t of HVO credit left at the refinery: 20 t cannot be claimed, 10 t can
        unchanged(ledger, Claim("biorefinery", "HVO", S, "SD-2026-0009", "40", "2026-03-10", certified_t="20"),
                  r"claim of 20 t certified 'HVO' at site 'biorefinery'.*exceeds the credit available, 10 t")
        ledger.book(Claim("biorefinery", "HVO", S, "SD-2026-0009", "40", "2026-03-10", certified_t="10"))
        assert ledger.balance_t("biorefinery", "HVO", S, "2026-03-10") == 0
        # no credit for a material group that never came in, even if another group has some
        unchanged(ledger, Claim("biorefinery", "naphtha", S, "SD-X", "1", "2026-03-10", certified_t="1"),
                  "exceeds the credit available, 0 t")
        # nor at a site in another period
        unchanged(ledger, Claim("blender", "HVO", S, "SD-Y", "1", "2026-04-10", certified_t="1"),
                  "period from 2026-04-01.*exceeds the credit available, 0 t")


def test_a_declaration_is_consumed_once(ledger_db: str) -> None:
    with Ledger(ledger_db) as ledger:
        worked_example(ledger)
        # the same supplier declaration at another site
        unchanged(ledger, Receipt("other mill", "UCO", S, "POS-UCO-0001", "400", "2026-01-06",
                                  certificate_id="C", supplier="Collector GmbH", certified_share="0.75"),
                  "declaration 'POS-UCO-0001' was already received by site 'biorefinery' in entry #2")
        # the declaration the refinery passed on to the blender cannot come back in as a receipt elsewhere
        unchanged(ledger, Receipt("other mill", "HVO", S, "SD-2026-0007", "250", "2026-02-16",
                                  certificate_id="C", supplier="biorefinery", certified_t="200"),
                  "already passed on by site 'biorefinery'")
        # nor can a claimed declaration be issued again on a second sale
        unchanged(ledger, Claim("blender", "HVO", S, "SD-2026-0008", "1", "2026-03-02", certified_t="1"),
                  "already claimed on a sale by site 'biorefinery'")


def test_reversal_is_a_new_entry_and_frees_what_it_reverses(ledger_db: str) -> None:
    with Ledger(ledger_db) as ledger:
        worked_example(ledger)
        # the blender claims 180 t, then finds it should have been 170 t: reverse, rebook
        (claim,) = ledger.book(Claim("blender", "HVO", S, "SD-B-0001", "1000", "2026-03-20", certified_t="180"))
        assert ledger.balance_t("blender", "HVO", S, "2026-03-20") == 20
        entries_before = ledger.entries()
        (reversal,) = ledger.book(Reversal(claim.seq, "wrong quantity on invoice 7781", date="2026-03-21"))
        assert reversal.reverses == claim.seq and reversal.certified_kg == 180_000
        # the original entries are untouched: same hashes, and verify recomputes each from its content
        after = ledger.entries()
        assert list(after["hash"].iloc[: len(entries_before)]) == list(entries_before["hash"])
        assert ledger.verify().ok
        assert ledger.balance_t("blender", "HVO", S, "2026-03-20") == 200
        ledger.book(Claim("blender", "HVO", S, "SD-B-0001", "1000", "2026-03-21", certified_t="170"))
        assert ledger.balance_t("blender", "HVO", S, "2026-03-20") == 30
        unchanged(ledger, Reversal(claim.seq, "again"), f"entry #{claim.seq} was already reversed")


def test_reversing_a_receipt_whose_credit_was_spent_is_refused(ledger_db: str) -> None:
    with Ledger(ledger_db) as ledger:
        worked_example(ledger)
        # the 300 t of receipt #2 were largely converted; only 50 t of UCO are left
        unchanged(ledger, Reversal(2, "supplier withdrew the declaration"),
                  r"reversing entry #2 \(receipt\) of 300 t.*exceeds the credit available, 50 t")
        # reversing the transfer takes both halves back: the blender had 200 t, the refinery gets them back
        out_seq = int(ledger.entries().query("kind == 'transfer_out'")["seq"].iloc[0])
        entries = ledger.book(Reversal(out_seq + 1, "delivery returned", date="2026-03-02"))
        assert sorted(e.certified_kg for e in entries) == [-200_000, 200_000]
        assert ledger.balance_t("blender", "HVO", S, "2026-03-02") == 0
        assert ledger.balance_t("biorefinery", "HVO", S, "2026-03-02") == 210


def test_conversion_cannot_make_certified_mass(ledger_db: str) -> None:
    with Ledger(ledger_db) as ledger:
        worked_example(ledger)
        unchanged(ledger, Conversion("biorefinery", S, "UCO", "HVO", "10", "1.2", "2026-03-01"),
                  r"conversion factor '1.2' is outside \(0, 1\]")
        unchanged(ledger, Conversion("biorefinery", S, "UCO", "HVO", "60", "0.8", "2026-03-01"),
                  "conversion input of 60 t.*exceeds the credit available, 50 t")
        # rounded down to the kilogram: 0.001 t * 0.8 = 0.8 kg -> 0 kg
        ledger.book(Conversion("biorefinery", S, "UCO", "HVO", "0.001", "0.8", "2026-03-01"))
        assert ledger.balance_t("biorefinery", "HVO", S, "2026-03-01") == 10


def test_closing_carries_a_positive_balance_over_and_locks_the_period(ledger_db: str) -> None:
    with Ledger(ledger_db) as ledger:
        worked_example(ledger)
        unchanged(ledger, Close("biorefinery", S, "2026-02-01", as_of="2026-03-31"), "can be closed from 2026-04-01")
        ledger.book(Close("biorefinery", S, "2026-02-01", as_of="2026-04-01"))
        # UCO 50 t and HVO 10 t carried into Q2; Q1 ends at zero
        assert ledger.balance_t("biorefinery", "UCO", S, "2026-03-31") == 0
        assert ledger.balance_t("biorefinery", "HVO", S, "2026-03-31") == 0
        assert ledger.balance_t("biorefinery", "UCO", S, "2026-04-01") == 50
        assert ledger.balance_t("biorefinery", "HVO", S, "2026-06-30") == 10
        unchanged(ledger, Claim("biorefinery", "HVO", S, "SD-late", "1", "2026-03-31", certified_t="1"),
                  "balancing period from 2026-01-01 is closed")
        unchanged(ledger, Close("biorefinery", S, "2026-01-15", as_of="2026-05-01"), "is closed")
        # the blender's period is its own: still open
        ledger.book(Claim("blender", "HVO", S, "SD-B-1", "10", "2026-03-31", certified_t="10"))
        # periods close in order: the blender's Q2 cannot close before its Q1
        ledger.book(Claim("blender", "HVO", S, "SD-B-2", "0", "2026-04-02", certified_t="0"))
        unchanged(ledger, Close("blender", S, "2026-04-01", as_of="2026-07-01"), "earlier period from 2026-01-01")


def test_a_scheme_without_carry_over_forfeits_the_balance(ledger_db: str) -> None:
    with Ledger(ledger_db) as ledger:
        ledger.book(SchemeRule("NOCARRY", 12, "none", date="2025-01-01"))
        ledger.book(Receipt("mill", "pulp", "NOCARRY", "P1", "80", "2025-03-01", certificate_id="C", supplier="F",
                            certified_share="0.5"))
        ledger.book(Claim("mill", "pulp", "NOCARRY", "P-out", "50", "2025-06-01", certified_share="0.5"))
        ledger.book(Close("mill", "NOCARRY", "2025-12-31", as_of="2026-01-01"))
        # 40 - 25 = 15 t forfeited, nothing in 2026
        entries = ledger.entries()
        assert list(entries[entries["kind"] == "forfeit"]["certified_t"]) == [-15]
        assert ledger.balance_t("mill", "pulp", "NOCARRY", "2026-01-01") == 0


def test_scheme_rules_are_fixed_once_registered(ledger_db: str) -> None:
    with Ledger(ledger_db) as ledger:
        unchanged(ledger, Receipt("m", "g", S, "D", "1", "2026-01-01", certificate_id="c", supplier="s",
                                  certified_t="1"), "scheme 'ISCC PLUS' is not registered")
        unchanged(ledger, SchemeRule(S, 5, "all"), "does not divide a year")
        ledger.book(SchemeRule(S, 3, "all", date="2026-01-01"))
        unchanged(ledger, SchemeRule(S, 12, "all"), "its rules cannot change")


def test_several_bookings_are_all_or_nothing(ledger_db: str) -> None:
    from symbiosis.ledger import BookingRefused

    with Ledger(ledger_db) as ledger:
        ledger.book(SchemeRule(S, 3, "all", date="2026-01-01"))
        before = ledger.verify()
        with pytest.raises(BookingRefused) as caught:
            ledger.book(Receipt("m", "g", S, "D1", "10", "2026-01-02", certificate_id="c", supplier="s",
                                certified_t="10"),
                        Claim("m", "g", S, "D2", "20", "2026-01-03", certified_t="11"))
        assert caught.value.index == 1
        assert ledger.verify() == before
        assert ledger.balance_t("m", "g", S, "2026-01-02") == 0


def test_migrations_create_exactly_the_orm_schema(ledger_db: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from symbiosis.ledger.db import make_engine
    from symbiosis.ledger.schema import Base

    engine = make_engine(ledger_db)
    try:
        with engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
            connection.rollback()
    finally:
        engine.dispose()
    assert differences == []
    assert init_ledger(ledger_db)  # a second init is harmless
    with Ledger(ledger_db) as ledger:
        assert ledger.verify().entries == 0


def test_a_database_that_is_not_a_ledger_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import sqlite3

    path = tmp_path / "other.sqlite"
    sqlite3.connect(path).execute("CREATE TABLE t (x)").connection.commit()
    with pytest.raises(LedgerError, match="is not a ledger.*symbiosis ledger init"):
        Ledger(str(path))


def test_the_worked_example_of_docs_custody_md(ledger_db: str) -> None:
    """Every figure of the worked example in docs/custody.md: entry numbers, balances, the closing statement."""
    from symbiosis.ledger.statement import statement

    with Ledger(ledger_db) as ledger:
        worked_example(ledger)  # entries 1-8
        unchanged(ledger, Claim("biorefinery", "HVO", S, "SD-2026-0009", "40", "2026-03-10", certified_t="20"),
                  "exceeds the credit available, 10 t")
        (claim,) = ledger.book(Claim("blender", "HVO", S, "SD-B-0001", "1000", "2026-03-20", certified_t="180"))
        assert claim.seq == 9
        (reversal,) = ledger.book(Reversal(9, "invoice 7781 was for 170 t", date="2026-03-21"))
        assert reversal.seq == 10
        (second,) = ledger.book(Claim("blender", "HVO", S, "SD-B-0002", "1000", "2026-03-21", certified_t="170"))
        assert second.seq == 11
        closing = ledger.book(Close("biorefinery", S, "2026-03-31", as_of="2026-04-01"))
        assert [(e.seq, e.kind, e.material_group, e.certified_kg / 1000) for e in closing] == [
            (12, "carry_out", "HVO", -10), (13, "carry_in", "HVO", 10), (14, "carry_out", "UCO", -50),
            (15, "carry_in", "UCO", 50), (16, "close", None, 0)]
        s = statement(ledger, "biorefinery", S, "2026-02-01").summary.set_index("material_group")
        assert s.loc["UCO"].to_dict() == {
            "opening_t": 0, "received_t": 500, "transferred_in_t": 0, "converted_in_t": 0, "converted_out_t": 450,
            "passed_on_t": 0, "claimed_t": 0, "corrections_t": 0, "carried_over_t": 50, "forfeited_t": 0,
            "closing_t": 0}
        assert s.loc["HVO"].to_dict() == {
            "opening_t": 0, "received_t": 0, "transferred_in_t": 0, "converted_in_t": 360, "converted_out_t": 0,
            "passed_on_t": 200, "claimed_t": 150, "corrections_t": 0, "carried_over_t": 10, "forfeited_t": 0,
            "closing_t": 0}
        b = statement(ledger, "blender", S, "2026-02-01").summary.set_index("material_group")
        assert b.loc["HVO"].to_dict() == {
            "opening_t": 0, "received_t": 0, "transferred_in_t": 200, "converted_in_t": 0, "converted_out_t": 0,
            "passed_on_t": 0, "claimed_t": 350, "corrections_t": 180, "carried_over_t": 0, "forfeited_t": 0,
            "closing_t": 30}
        q2 = statement(ledger, "biorefinery", S, "2026-04-01").summary.set_index("material_group")
        assert q2["opening_t"].to_dict() == {"HVO": 10, "UCO": 50}
        assert ledger.verify().ok


def test_migrations_go_down_to_nothing_and_up_again(ledger_db: str) -> None:
    from sqlalchemy import inspect

    from symbiosis.ledger.db import make_engine, migrate

    with Ledger(ledger_db) as ledger:
        ledger.book(SchemeRule(S, 3, "all", date="2026-01-01"))
    migrate(ledger_db, "base")
    engine = make_engine(ledger_db)
    try:
        assert not {"ledger_entries", "ledger_head"} & set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    with pytest.raises(LedgerError, match="is not a ledger"):
        Ledger(ledger_db)
    init_ledger(ledger_db)
    with Ledger(ledger_db) as ledger:
        result = ledger.verify()
        assert result.ok and result.entries == 0


def test_database_urls() -> None:
    from symbiosis.ledger import ledger_url

    assert ledger_url("postgresql://clerk@db.example:5432/ledger") == "postgresql+psycopg://clerk@db.example:5432/ledger"
    assert ledger_url("postgres+psycopg2://db/ledger") == "postgresql+psycopg://db/ledger"
    assert ledger_url("some/ledger.sqlite").startswith("sqlite:///") and ledger_url("a.sqlite").endswith("/a.sqlite")
    with pytest.raises(LedgerError, match="SQLite or PostgreSQL only"):
        ledger_url("mysql://db/ledger")
