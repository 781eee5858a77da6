"""The ledger's commands through typer's CliRunner, the deliveries CSV, the statement and the booking of an
optimiser run's exchanges. Expected figures are worked out by hand in the comments."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from typer.testing import CliRunner, Result

import tests.tiny_by_hand as hand
from symbiosis.cli import app
from symbiosis.errors import InputError
from symbiosis.ledger import Ledger, Receipt, SchemeRule, init_ledger
from symbiosis.ledger.deliveries import book_deliveries

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "tests" / "data" / "regions" / "tiny"
ENV = {"SYMBIOSIS_DATA": str(REPO / "tests" / "data"), "SYMBIOSIS_MODELS": str(REPO / "tests" / "data" / "models")}
S = "ISCC PLUS"


def ledger_cli(db: Path, *args: object) -> Result:
    return CliRunner().invoke(app, ["ledger", *[str(a) for a in args], "--db", str(db)], env=ENV)


def ok(result: Result) -> str:
    assert result.exit_code == 0, result.output
    assert result.exception is None, result.exception
    return " ".join(result.output.split())


def refused(result: Result, *fragments: str) -> None:
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    text = " ".join(result.output.split())
    for fragment in fragments:
        assert re.search(fragment, text), f"{fragment!r} not in {text!r}"


def test_commands_book_refuse_verify_and_detect_tampering(tmp_path: Path) -> None:
    db = tmp_path / "ledger.sqlite"
    ok(CliRunner().invoke(app, ["ledger", "init", "--db", str(db)]))
    ok(CliRunner().invoke(app, ["ledger", "book", "scheme", S, "--period-months", "3", "--carry-over", "all",
                                "--date", "2026-01-01", "--db", str(db)]))
    common = ["--scheme", S, "--date", "2026-01-05"]
    # 400 t at 75 %: 300 t of UCO credit
    ok(CliRunner().invoke(app, ["ledger", "book", "receipt", "--site", "refinery", "--group", "UCO", *common,
                                "--declaration", "POS-1", "--quantity", "400", "--certified-share", "0.75",
                                "--certificate", "EU-ISCC-1", "--supplier", "Collector", "--db", str(db)]))
    # 300 t into HVO at 0.8: 240 t of HVO credit
    ok(CliRunner().invoke(app, ["ledger", "book", "conversion", "--site", "refinery", "--from-group", "UCO",
                                "--to-group", "HVO", "--certified", "300", "--factor", "0.8", *common,
                                "--db", str(db)]))
    ok(CliRunner().invoke(app, ["ledger", "book", "transfer", "--from", "refinery", "--to", "blender",
                                "--group", "HVO", "--declaration", "SD-1", "--quantity", "300", "--certified", "240",
                                *common, "--db", str(db)]))
    # the refinery passed all 240 t on: a claim of 1 t is refused, and says so
    refused(CliRunner().invoke(app, ["ledger", "book", "claim", "--site", "refinery", "--group", "HVO",
                                     "--declaration", "SD-2", "--quantity", "1", "--certified", "1", *common,
                                     "--db", str(db)]),
            "claim of 1 t certified 'HVO' at site 'refinery'", "exceeds the credit available, 0 t")
    text = ok(CliRunner().invoke(app, ["ledger", "verify", "--db", str(db)]))
    head = re.search(r"head #(\d+) ([0-9a-f]{64})", text)
    assert head and head.group(1) == "6"
    # an anchor recorded from that line holds; a wrong one is refused as a parameter
    ok(CliRunner().invoke(app, ["ledger", "verify", "--anchor", f"6:{head.group(2)}", "--db", str(db)]))
    refused(CliRunner().invoke(app, ["ledger", "verify", "--anchor", "6:xyz", "--db", str(db)]), "ENTRY:HASH")
    # the file edited behind the program's back
    with sqlite3.connect(db) as connection:
        connection.execute("UPDATE ledger_entries SET certified_kg = 400000 WHERE seq = 5")
    refused(CliRunner().invoke(app, ["ledger", "verify", "--db", str(db)]),
            "fails verification at entry #5", "changed after it was booked")
    # a database that is not a ledger, and a closed period
    refused(CliRunner().invoke(app, ["ledger", "verify", "--db", str(tmp_path / "none.sqlite")]), "is not a ledger")


def test_conversion_factor_from_a_process_model(tmp_path: Path) -> None:
    """The shipped cement kiln takes 1.27 t of limestone per t of clinker: 1 / 1.27 = 0.787401 t/t (rounded
    down to 6 decimals), so 127 t of certified limestone give 100.000 t of clinker credit (127 * 0.787401 =
    99.999927 t, rounded down to the kg: 99.999 t)."""
    db = tmp_path / "ledger.sqlite"
    init_ledger(str(db))
    with Ledger(str(db)) as ledger:
        ledger.book(SchemeRule(S, 12, "all", date="2026-01-01"),
                    Receipt("kiln", "limestone", S, "L-1", "127", "2026-02-01", certificate_id="C", supplier="Q",
                            certified_t="127"))
    result = CliRunner().invoke(app, ["ledger", "book", "conversion", "--site", "kiln", "--from-group", "limestone",
                                      "--to-group", "cement_clinker", "--model", "cement_kiln", "--certified", "127",
                                      "--scheme", S, "--date", "2026-02-02", "--db", str(db)])
    ok(result)
    with Ledger(str(db)) as ledger:
        assert ledger.balance_t("kiln", "cement_clinker", S, "2026-02-02") == 99.999
        entries = ledger.entries()
        assert set(entries.loc[entries["kind"] == "conversion_in", "factor"]) == {"0.787401"}
    # 0.8326 t of CO2 per 0.285 t of clay is 2.92 t/t: not a mass-balance conversion
    refused(CliRunner().invoke(app, ["ledger", "book", "conversion", "--site", "kiln", "--from-group", "clay",
                                     "--to-group", "co2", "--model", "cement_kiln", "--certified", "1",
                                     "--scheme", S, "--date", "2026-02-02", "--db", str(db)]),
            "makes 2.921403 t of 'co2' per t of 'clay': a conversion factor must be in")


DELIVERIES = ("kind;date;site;material_group;scheme;declaration_id;quantity_t;certified_share;certified_t;"
              "certificate_id;supplier;customer;to_site;input_group;output_group;factor\n") + """\
receipt;2026-01-05;mill;pulp;ISCC PLUS;IN-1;1.000,5;;500;EU-1;"Forest; Co";;;;;
receipt;2026-01-06;mill;pulp;ISCC PLUS;IN-2;200;0,5;;EU-1;Forest Co;;;;;
conversion;2026-01-07;mill;;ISCC PLUS;;;;550;;;;;pulp;paper;0,9
claim;2026-01-08;mill;paper;ISCC PLUS;OUT-1;800;;400;;;Printer;;;;
transfer;2026-01-09;mill;paper;ISCC PLUS;OUT-2;100;;95;;;;converter;;;
"""


def test_a_deliveries_csv_is_booked_whole(tmp_path: Path) -> None:
    """An ERP export: ';'-separated with decimal commas and a quoted ';' in a cell. Pulp: 500 + 200 * 0.5 =
    600 t; 550 t into paper at 0.9 = 495 t, pulp 50 t left; paper 495 - 400 claimed - 95 passed on = 0 t;
    the converter holds 95 t."""
    db = str(tmp_path / "ledger.sqlite")
    init_ledger(db)
    path = tmp_path / "deliveries.csv"
    path.write_text(DELIVERIES, encoding="utf-8")
    with Ledger(db) as ledger:
        ledger.book(SchemeRule(S, 3, "all", date="2026-01-01"))
        assert book_deliveries(ledger, path) == 7  # a conversion and a transfer write two entries each
        assert ledger.balance_t("mill", "pulp", S, "2026-01-31") == 50
        assert ledger.balance_t("mill", "paper", S, "2026-01-31") == 0
        assert ledger.balance_t("converter", "paper", S, "2026-01-31") == 95
        entries = ledger.entries()
        assert set(entries.loc[entries["kind"] == "receipt", "supplier"]) == {"Forest; Co", "Forest Co"}
        assert list(entries.loc[entries["kind"] == "receipt", "quantity_t"]) == [1000.5, 200]


def test_a_deliveries_csv_with_mistakes_is_refused_row_by_row_and_books_nothing(tmp_path: Path) -> None:
    db = str(tmp_path / "ledger.sqlite")
    init_ledger(db)
    bad = tmp_path / "bad.csv"
    bad.write_text("kind,date,site,material_group,scheme,declaration_id,quantity_t,certified_t,colour\n"
                   "receipt,2026-01-05,mill,pulp,ISCC PLUS,IN-1,10,5,red\n", encoding="utf-8")
    with Ledger(db) as ledger:
        ledger.book(SchemeRule(S, 3, "all", date="2026-01-01"))
        with pytest.raises(InputError) as caught:
            book_deliveries(ledger, bad)
        assert "row 1, column 'colour': unknown column" in str(caught.value)
        bad.write_text("kind,date,site,material_group,scheme,declaration_id,quantity_t,certified_t,supplier\n"
                       "receipt,2026-01-05,mill,pulp,ISCC PLUS,IN-1,10,5,F\n"
                       "receipt,05/01/2026,mill,pulp,ISCC PLUS,IN-2,ten,5,F\n"
                       "refund,2026-01-05,mill,pulp,ISCC PLUS,IN-3,10,5,F\n", encoding="utf-8")
        with pytest.raises(InputError) as caught:
            book_deliveries(ledger, bad)
        text = str(caught.value)
        assert "bad.csv, row 2, column 'certificate_id': a receipt needs this column" in text
        assert "row 3, column 'quantity_t': not a number; found 'ten'" in text
        assert "row 3, column 'date': not a date; found '05/01/2026'" in text
        assert "row 4, column 'kind': unknown booking kind; found 'refund'" in text
        # well-formed rows, the third of which breaks a rule: nothing of the file is booked
        bad.write_text("kind,date,site,material_group,scheme,declaration_id,quantity_t,certified_t,certificate_id,"
                       "supplier\n"
                       "receipt,2026-01-05,mill,pulp,ISCC PLUS,IN-1,10,5,C,F\n"
                       "claim,2026-01-06,mill,pulp,ISCC PLUS,OUT-1,10,4,,\n"
                       "claim,2026-01-07,mill,pulp,ISCC PLUS,OUT-2,10,2,,\n", encoding="utf-8")
        with pytest.raises(InputError, match=r"row 4: booking refused, nothing in the file was booked: claim of "
                                             r"2 t .* exceeds the credit available, 1 t"):
            book_deliveries(ledger, bad)
        assert len(ledger.entries()) == 1  # the scheme only
    # through the command: status 1, the located problem, no traceback
    refused(ledger_cli(tmp_path / "ledger.sqlite", "book", "csv", bad), "bad.csv, row 4", "booking refused")


def test_statement_sums_escapes_and_opens_in_a_spreadsheet(tmp_path: Path) -> None:
    db = tmp_path / "ledger.sqlite"
    init_ledger(str(db))
    site = "<script>alert(1)</script> & mill"
    with Ledger(str(db)) as ledger:
        ledger.book(SchemeRule(S, 3, "all", date="2026-01-01"))
        ledger.book(Receipt(site, "pulp", S, "IN-1", "100", "2026-01-05", certificate_id="=HYPERLINK(1)",
                            supplier="F", certified_t="60"))
    ok(ledger_cli(db, "book", "claim", "--site", site, "--group", "pulp", "--scheme", S, "--declaration", "O-1",
                  "--quantity", "50", "--certified", "25", "--date", "2026-02-01"))
    ok(ledger_cli(db, "close", "--site", site, "--scheme", S, "--period", "2026-01-01", "--as-of", "2026-04-01"))
    out = tmp_path / "statement"
    ok(ledger_cli(db, "statement", "--site", site, "--scheme", S, "--period", "2026-03-31", "--out", out))
    page = (out / "statement.html").read_text(encoding="utf-8")
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; mill" in page
    summary = pd.read_csv(out / "statement.csv").set_index("material_group")
    # 60 received - 25 claimed = 35 carried over; closing 0 (the carry-over is in Q2)
    assert summary.loc["pulp", "received_t"] == 60
    assert summary.loc["pulp", "claimed_t"] == 25
    assert summary.loc["pulp", "carried_over_t"] == 35
    assert summary.loc["pulp", "closing_t"] == 0
    book = openpyxl.load_workbook(out / "statement.xlsx")
    assert {"statement", "balances", "entries"} <= set(book.sheetnames)
    certificate_cells = [c.value for row in book["entries"].iter_rows() for c in row if c.value
                         and "HYPERLINK" in str(c.value)]
    assert certificate_cells == ["'=HYPERLINK(1)"]  # shown as text, never run as a formula
    # Q2 opens with the 35 t
    ok(ledger_cli(db, "statement", "--site", site, "--scheme", S, "--period", "2026-04-01", "--out", out))
    assert pd.read_csv(out / "statement.csv").set_index("material_group").loc["pulp", "opening_t"] == 35
    # the auditor's export: every entry of the period with its hash, and the verified head
    audit = tmp_path / "audit"
    ok(ledger_cli(db, "export", "--site", site, "--scheme", S, "--period", "2026-01-01", "--out", audit))
    entries = pd.read_csv(audit / "entries.csv")
    assert list(entries["kind"]) == ["receipt", "claim", "carry_out", "close"]
    assert entries["hash"].str.fullmatch("[0-9a-f]{64}").all()
    chain = json.loads((audit / "chain.json").read_text(encoding="utf-8"))
    assert chain["verified"] is True and chain["entries"] == 6
    ok(CliRunner().invoke(app, ["verify", str(audit)]))  # the folder's manifest


def test_the_optimum_exchanges_become_transfers(tmp_path: Path) -> None:
    """The tiny region's optimum ships 20,000 t/yr of gypsum to the board plant, 100,000 * 0.3 / 0.9 =
    33,333.33 t/yr of fly ash to the cement works and 40,000 - 33,333.33 = 6,666.67 t/yr to the distant works
    (tests/tiny_by_hand.py). One quarter at a certified share of 0.5: gypsum 5,000 t shipped, 2,500 t
    certified; cement 8,333.333 t (rounded down to the kg), 4,166.666 t certified; far 1,666.666 t, 833.333 t."""
    out = tmp_path / "run"
    ok(CliRunner().invoke(app, ["optimise", str(TINY), "--out", str(out), "--private"], env=ENV))
    exchanges = pd.read_csv(out / "exchanges.csv")
    assert set(exchanges["supply_facility"]) == {"power"}
    materials = dict(zip(exchanges["demand_facility"], exchanges["material"], strict=True))
    db = tmp_path / "ledger.sqlite"
    init_ledger(str(db))
    with Ledger(str(db)) as ledger:
        ledger.book(SchemeRule(S, 3, "all", date="2026-01-01"))
        ledger.book(*[Receipt("power", material, S, f"IN-{material}", "10000", "2026-01-02", certificate_id="C",
                              supplier="F", certified_t="10000") for material in sorted(set(materials.values()))])
    ok(ledger_cli(db, "book-exchanges", out / "exchanges.csv", "--scheme", S, "--date", "2026-01-15",
                  "--certified-share", "0.5"))
    expected = {"board": (5000.0, 2500.0), "cement": (8333.333, 4166.666), "far": (1666.666, 833.333)}
    assert hand.X_GYPSUM / 4 == 5000
    with Ledger(str(db)) as ledger:
        entries = ledger.entries()
        received = entries[entries["kind"] == "transfer_in"].set_index("site")
        for receiver, (quantity, certified) in expected.items():
            assert received.loc[receiver, "quantity_t"] == quantity, receiver
            assert received.loc[receiver, "certified_t"] == certified, receiver
            assert received.loc[receiver, "material_group"] == materials[receiver]
            assert received.loc[receiver, "supplier"] == "power"
        sent = entries[entries["kind"] == "transfer_out"]
        assert sent["certified_t"].sum() == -received["certified_t"].sum()
    # each exchange's certified share in the quarter: 2,500 / 5,000 = 0.5; 4,166.666 / 8,333.333 = 0.49999994;
    # 833.333 / 1,666.666 = 0.5000003; the gypsum transfer reversed: nothing certified moved with it
    with Ledger(str(db)) as ledger:
        board_out = int(ledger.entries().query("kind == 'transfer_out' and counterparty == 'board'")["seq"].iloc[0])
    ok(ledger_cli(db, "book", "reverse", board_out, "--reason", "not delivered"))
    table_dir = tmp_path / "certified"
    ok(ledger_cli(db, "exchanges", out / "exchanges.csv", "--scheme", S, "--period", "2026-02-01",
                  "--out", table_dir))
    shares = pd.read_csv(table_dir / "certified_exchanges.csv").set_index("demand_facility")
    assert shares.loc["cement", "certified_share"] == pytest.approx(4166.666 / 8333.333, abs=1e-6)
    assert shares.loc["far", "certified_share"] == pytest.approx(833.333 / 1666.666, abs=1e-6)
    assert shares.loc["cement", "certified_t"] == 4166.666
    assert pd.isna(shares.loc["board", "certified_share"]) and shares.loc["board", "certified_t"] == 0
    # booking the same exchanges again in the same period reuses their (live) declarations: refused whole
    refused(ledger_cli(db, "book-exchanges", out / "exchanges.csv", "--scheme", S, "--date", "2026-01-15",
                       "--certified-share", "0.5"), "a declaration is consumed once")
