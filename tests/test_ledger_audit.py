"""Tamper tests: every kind of edit made to a stored ledger behind the program's back (with sqlite3 on the
SQLite file, with SQL on PostgreSQL) is found by ``verify``, which names the first bad entry."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import create_engine, text

from symbiosis.ledger import Claim, Conversion, Ledger, Receipt, SchemeRule, Transfer
from symbiosis.ledger.db import ledger_url
from symbiosis.ledger.rules import entry_hash

S = "ISCC PLUS"


def booked(db: str) -> str:
    """Eight entries: 1 scheme, 2-3 receipts, 4-5 conversion, 6-7 transfer, 8 claim; returns the head hash."""
    with Ledger(db) as ledger:
        ledger.book(SchemeRule(S, 3, "all", date="2026-01-01"))
        ledger.book(Receipt("A", "UCO", S, "D1", "100", "2026-01-02", certificate_id="C1", supplier="X",
                            certified_t="60"))
        ledger.book(Receipt("A", "UCO", S, "D2", "50", "2026-01-03", certificate_id="C1", supplier="X",
                            certified_t="50"))
        ledger.book(Conversion("A", S, "UCO", "HVO", "100", "0.8", "2026-01-04"))
        ledger.book(Transfer("A", "B", "HVO", S, "T1", "40", "2026-01-05", certified_t="40"))
        ledger.book(Claim("B", "HVO", S, "K1", "40", "2026-01-06", certified_t="30"))
        result = ledger.verify()
        assert result.ok and result.entries == 8
        return result.head_hash


def tamper(db: str, *statements: str, params: dict[str, Any] | None = None) -> None:
    """Run SQL against the stored ledger directly: on SQLite through the sqlite3 module (the file), on
    PostgreSQL through a plain connection; never through the ledger's code."""
    if "://" not in db:
        import sqlite3

        connection = sqlite3.connect(db)
        try:
            for statement in statements:
                connection.execute(statement, params or {})
            connection.commit()
        finally:
            connection.close()
        return
    engine = create_engine(ledger_url(db))
    try:
        with engine.begin() as connection:
            for statement in statements:
                connection.execute(text(statement), params or {})
    finally:
        engine.dispose()


def verdict(db: str, anchor: tuple[int, str] | None = None) -> tuple[int | None, str]:
    with Ledger(db) as ledger:
        result = ledger.verify(anchor=anchor)
    assert not result.ok
    assert result.problem
    return result.first_bad_seq, result.problem


EDITS: dict[str, tuple[list[str], int, str]] = {
    # name: (SQL, first bad entry, words of the finding)
    "a quantity raised": (["UPDATE ledger_entries SET certified_kg = 70000 WHERE seq = 2"], 2, "changed"),
    "a declaration id swapped": (["UPDATE ledger_entries SET declaration_id = 'D9' WHERE seq = 3"], 3, "changed"),
    "a conversion factor": (["UPDATE ledger_entries SET factor = '0.9' WHERE seq = 5"], 5, "changed"),
    "a site renamed": (["UPDATE ledger_entries SET site = 'Z' WHERE seq = 8"], 8, "changed"),
    "a date moved": (["UPDATE ledger_entries SET entry_date = '2026-04-06' WHERE seq = 8"], 8, "changed"),
    "a hash recomputed badly": (["UPDATE ledger_entries SET hash = '" + "a" * 64 + "' WHERE seq = 4"], 4,
                                "changed"),
    "a previous hash edited": (["UPDATE ledger_entries SET prev_hash = '" + "b" * 64 + "' WHERE seq = 6"], 6,
                               "does not follow"),
    "an entry deleted": (["DELETE FROM ledger_entries WHERE seq = 6"], 6, "missing"),
    "the last entry deleted": (["DELETE FROM ledger_entries WHERE seq = 8"], 8, "deleted"),
    "two entries swapped": ([
        "UPDATE ledger_entries SET seq = 100 WHERE seq = 2",
        "UPDATE ledger_entries SET seq = 2 WHERE seq = 3",
        "UPDATE ledger_entries SET seq = 3 WHERE seq = 100"], 2, "does not follow"),
    "an entry renumbered to the end": (["UPDATE ledger_entries SET seq = 9 WHERE seq = 8",
                                        "UPDATE ledger_head SET last_seq = 9"], 8, "missing"),
    "the head row deleted": (["DELETE FROM ledger_head"], None, "head row is missing"),  # type: ignore[dict-item]
}


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_verify_names_the_first_bad_entry(ledger_db: str, edit: str) -> None:
    booked(ledger_db)
    statements, first_bad, words = EDITS[edit]
    tamper(ledger_db, *statements)
    seq, problem = verdict(ledger_db)
    assert seq == first_bad, problem
    assert words in problem


def test_an_entry_appended_with_sql_is_caught(ledger_db: str) -> None:
    """A forged claim appended after entry 8 with a correct chain hash, but without the program's lock and
    head: verify names it."""
    booked(ledger_db)
    with Ledger(ledger_db) as ledger:
        last = ledger.entries().iloc[-1]
    forged = {"seq": 9, "kind": "claim", "entry_date": "2026-01-07", "period_start": "2026-01-01", "site": "B",
              "material_group": "HVO", "scheme": S, "certificate_id": None, "supplier": None, "counterparty": None,
              "declaration_id": "K-forged", "quantity_kg": 10000, "certified_kg": -10000, "factor": None,
              "period_months": None, "carry_over": None, "reverses": None, "pair": None, "batch": "forged",
              "clerk": None, "note": None, "booked_at": "2026-01-07T00:00:00+00:00", "prev_hash": last["hash"]}
    forged["hash"] = entry_hash(forged)
    columns = ", ".join(forged)
    tamper(ledger_db, f"INSERT INTO ledger_entries ({columns}) VALUES ({', '.join(':' + c for c in forged)})",
           params=forged)
    seq, problem = verdict(ledger_db)
    assert seq == 9 and "added behind the program's back" in problem


def test_a_chain_rewritten_whole_is_caught_by_the_recorded_head(ledger_db: str) -> None:
    """Someone who edits entry 2 and recomputes every hash after it, and the head row, leaves a chain that is
    consistent in itself (and here within the rules); the head hash an auditor wrote down from the last
    statement catches it."""
    recorded = booked(ledger_db)
    tamper(ledger_db, "UPDATE ledger_entries SET certified_kg = 90000 WHERE seq = 2")
    _rehash_all(ledger_db)
    with Ledger(ledger_db) as ledger:
        assert ledger.verify().ok  # nothing inside the database can tell ...
    seq, problem = verdict(ledger_db, anchor=(8, recorded))  # ... the recorded head can
    assert seq == 8 and "rewritten" in problem


def test_entries_cut_off_the_end_with_the_head_moved_back_are_caught_by_the_recorded_head(ledger_db: str) -> None:
    recorded = booked(ledger_db)
    with Ledger(ledger_db) as ledger:
        seventh = str(ledger.entries()["hash"].iloc[6])
    tamper(ledger_db, "DELETE FROM ledger_entries WHERE seq = 8",
           "UPDATE ledger_head SET last_seq = 7, last_hash = :h", params={"h": seventh})
    with Ledger(ledger_db) as ledger:
        assert ledger.verify().ok
    seq, problem = verdict(ledger_db, anchor=(8, recorded))
    assert seq == 8 and "no longer in the ledger" in problem


def test_an_edit_that_breaks_the_rules_is_named_even_with_hashes_redone(ledger_db: str) -> None:
    """A forger who lowers a receipt below what was claimed from it and redoes the hashes is caught by the
    replay of the rules (the account would have gone negative at the claim)."""
    booked(ledger_db)
    tamper(ledger_db, "UPDATE ledger_entries SET certified_kg = 10000 WHERE seq = 2")
    _rehash_all(ledger_db)
    seq, problem = verdict(ledger_db)
    assert seq == 4 and "to -" in problem  # the conversion took 100 t of 60 t


def _rehash_all(db: str) -> None:
    from symbiosis.ledger.db import make_engine
    from symbiosis.ledger.rules import GENESIS
    from symbiosis.ledger.schema import Entry

    engine = make_engine(db)
    table = Entry.__table__
    previous = GENESIS
    with engine.begin() as connection:
        for row in connection.execute(table.select().order_by(table.c.seq)).mappings().all():
            record = dict(row)
            record["prev_hash"] = previous
            record["hash"] = entry_hash(record)
            connection.execute(table.update().where(table.c.seq == record["seq"])
                               .values(prev_hash=record["prev_hash"], hash=record["hash"]))
            previous = record["hash"]
        connection.execute(text("UPDATE ledger_head SET last_hash = :h"), {"h": previous})
    engine.dispose()


def test_bytes_edited_in_the_sqlite_file_are_caught(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """An edit of the file itself, not through SQLite: a supplier's name overwritten byte for byte."""
    from symbiosis.ledger import init_ledger

    db = str(tmp_path / "ledger.sqlite")
    init_ledger(db)
    with Ledger(db) as ledger:
        ledger.book(SchemeRule(S, 3, "all", date="2026-01-01"))
        ledger.book(Receipt("A", "UCO", S, "D1", "100", "2026-01-02", certificate_id="C1",
                            supplier="Collector-AAAA", certified_t="60"))
        ledger.book(Claim("A", "UCO", S, "K1", "40", "2026-01-06", certified_t="30"))
    raw = (tmp_path / "ledger.sqlite").read_bytes()
    assert raw.count(b"Collector-AAAA") == 1
    (tmp_path / "ledger.sqlite").write_bytes(raw.replace(b"Collector-AAAA", b"Collector-BBBB"))
    with Ledger(db) as ledger:
        assert set(ledger.entries()["supplier"].dropna()) == {"Collector-BBBB"}  # SQLite reads the forged file
    seq, problem = verdict(db)
    assert seq == 2 and "changed after it was booked" in problem
