"""Clerks racing for the same credit, on SQLite and PostgreSQL: N writers (threads, and processes), each with
its own connection, released at once by a barrier. The total claimed equals the credit, never more, and the
chain stays whole."""

from __future__ import annotations

import threading

from symbiosis.ledger import Claim, Ledger, Receipt, Refused, SchemeRule, Transfer

S = "ISCC PLUS"
WRITERS = 12


def race(db: str, bookings: list[object]) -> tuple[int, list[str]]:
    """Book each of ``bookings`` from its own thread and connection, all released together; returns the number
    booked and the refusals' reasons."""
    barrier = threading.Barrier(len(bookings))
    booked: list[int] = []
    refused: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def clerk(booking: object, name: str) -> None:
        try:
            with Ledger(db, clerk=name) as ledger:
                barrier.wait(timeout=60)
                try:
                    ledger.book(booking)  # type: ignore[arg-type]
                    with lock:
                        booked.append(1)
                except Refused as exc:
                    with lock:
                        refused.append(exc.reason)
        except BaseException as exc:  # noqa: BLE001 - reported below
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=clerk, args=(b, f"clerk {i}")) for i, b in enumerate(bookings)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    assert not any(t.is_alive() for t in threads), "a writer hung"
    assert not errors, errors
    return len(booked), refused


def test_racing_claims_never_overspend_the_credit(ledger_db: str) -> None:
    with Ledger(ledger_db) as ledger:
        ledger.book(SchemeRule(S, 3, "all", date="2026-01-01"))
        ledger.book(Receipt("A", "HVO", S, "IN-1", "10", "2026-01-02", certificate_id="C", supplier="X",
                            certified_t="7"))
    # 12 clerks each claim 1 t against 7 t of credit
    claims = [Claim("A", "HVO", S, f"OUT-{i}", "1", "2026-01-03", certified_t="1") for i in range(WRITERS)]
    n_booked, reasons = race(ledger_db, claims)
    assert n_booked == 7
    assert len(reasons) == WRITERS - 7
    assert all("exceeds the credit available, 0 t" in r for r in reasons)
    with Ledger(ledger_db) as ledger:
        entries = ledger.entries()
        assert -entries.loc[entries["kind"] == "claim", "certified_t"].sum() == 7
        assert ledger.balance_t("A", "HVO", S, "2026-01-03") == 0
        assert ledger.verify().ok


def test_racing_transfers_and_claims_from_one_credit(ledger_db: str) -> None:
    with Ledger(ledger_db) as ledger:
        ledger.book(SchemeRule(S, 3, "all", date="2026-01-01"))
        ledger.book(Receipt("A", "HVO", S, "IN-1", "10", "2026-01-02", certificate_id="C", supplier="X",
                            certified_t="5"))
    # half pass 1 t on to B, half claim 1 t: 5 t of credit in all
    bookings: list[object] = [
        Transfer("A", "B", "HVO", S, f"T-{i}", "1", "2026-01-03", certified_t="1") if i % 2
        else Claim("A", "HVO", S, f"K-{i}", "1", "2026-01-03", certified_t="1") for i in range(WRITERS)]
    n_booked, _ = race(ledger_db, bookings)
    assert n_booked == 5
    with Ledger(ledger_db) as ledger:
        entries = ledger.entries()
        out = -entries.loc[entries["kind"].isin(["claim", "transfer_out"]), "certified_t"].sum()
        assert out == 5
        # what B received equals what A passed on, tonne for tonne
        assert (entries.loc[entries["kind"] == "transfer_in", "certified_t"].sum()
                == -entries.loc[entries["kind"] == "transfer_out", "certified_t"].sum())
        assert ledger.verify().ok


def test_racing_receipts_of_one_declaration_book_it_once(ledger_db: str) -> None:
    with Ledger(ledger_db) as ledger:
        ledger.book(SchemeRule(S, 3, "all", date="2026-01-01"))
    receipts = [Receipt(f"site {i}", "HVO", S, "SAME-DECLARATION", "10", "2026-01-02", certificate_id="C",
                        supplier="X", certified_t="10") for i in range(WRITERS)]
    n_booked, reasons = race(ledger_db, receipts)
    assert n_booked == 1
    assert all("a declaration is consumed once" in r for r in reasons)
    with Ledger(ledger_db) as ledger:
        assert ledger.verify().ok


def _claim_in_own_process(db: str, declaration: str, barrier: object) -> str:
    """One clerk in a process of its own (as two `symbiosis ledger book` commands would be)."""
    with Ledger(db, clerk=declaration) as ledger:
        barrier.wait(timeout=120)  # type: ignore[attr-defined]
        try:
            ledger.book(Claim("A", "HVO", S, declaration, "1", "2026-01-03", certified_t="1"))
        except Refused as exc:
            return exc.reason
    return "booked"


def test_racing_processes_never_overspend_the_credit(ledger_db: str) -> None:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with Ledger(ledger_db) as ledger:
        ledger.book(SchemeRule(S, 3, "all", date="2026-01-01"))
        ledger.book(Receipt("A", "HVO", S, "IN-1", "10", "2026-01-02", certificate_id="C", supplier="X",
                            certified_t="3"))
    n = 6
    context = multiprocessing.get_context("fork")  # no engine is open in this process when it forks
    with context.Manager() as manager:
        barrier = manager.Barrier(n)
        with ProcessPoolExecutor(max_workers=n, mp_context=context) as pool:
            outcomes = list(pool.map(_claim_in_own_process, [ledger_db] * n, [f"P-{i}" for i in range(n)],
                                     [barrier] * n, timeout=300))
    assert outcomes.count("booked") == 3, outcomes
    assert all("exceeds the credit available, 0 t" in o for o in outcomes if o != "booked")
    with Ledger(ledger_db) as ledger:
        assert ledger.balance_t("A", "HVO", S, "2026-01-03") == 0
        assert ledger.verify().ok
