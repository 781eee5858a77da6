"""The balancing-period statement of a site and the auditor's export.

A statement lists, per material group, the period's opening (carried in), what came in (receipts and
transfers in), what conversions took and gave, what was passed on, claimed, corrected, carried over or
forfeited, and the closing balance, which is the sum of all of them: the same sum as the ledger's balance,
so the statement can be checked line by line against the entries printed beneath it, each with its hash.
The statement is written as HTML (every value escaped; ready to print to PDF from a browser) and as an XLSX
workbook; the auditor's export adds the entries and balances as CSV and the chain's head.
"""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from symbiosis.atomic import write_atomic, write_text_atomic
from symbiosis.ledger.ledger import Ledger
from symbiosis.ledger.rules import Refused, parse_date, period_label, period_of
from symbiosis.outputs.escape import html_text
from symbiosis.outputs.export import excel_safe, write_csv

#: statement lines: (column, entry kinds summed, sign shown: +1 adds to the balance, -1 takes from it)
LINES = [
    ("opening_t", ("carry_in",), 1),
    ("received_t", ("receipt",), 1),
    ("transferred_in_t", ("transfer_in",), 1),
    ("converted_in_t", ("conversion_in",), 1),
    ("converted_out_t", ("conversion_out",), -1),
    ("passed_on_t", ("transfer_out",), -1),
    ("claimed_t", ("claim",), -1),
    ("corrections_t", ("reversal",), 1),
    ("carried_over_t", ("carry_out",), -1),
    ("forfeited_t", ("forfeit",), -1),
]
LABELS = {
    "opening_t": "opening (carried in)", "received_t": "received", "transferred_in_t": "transferred in",
    "converted_in_t": "converted in", "converted_out_t": "converted out", "passed_on_t": "passed on",
    "claimed_t": "claimed on sales", "corrections_t": "corrections (reversals)",
    "carried_over_t": "carried over", "forfeited_t": "forfeited", "closing_t": "closing balance",
}
ENTRY_VIEW = ["seq", "kind", "entry_date", "material_group", "declaration_id", "certificate_id", "supplier",
              "counterparty", "quantity_t", "certified_t", "factor", "reverses", "clerk", "note", "hash"]


@dataclass(frozen=True)
class Statement:
    site: str
    scheme: str
    period_start: str
    period: str
    closed: bool
    summary: pd.DataFrame  # one row per material group, the LINES columns and closing_t, in tonnes
    entries: pd.DataFrame  # the period's entries at the site, with hashes
    head_seq: int
    head_hash: str


def statement(ledger: Ledger, site: str, scheme: str, period: Any) -> Statement:
    """The statement of ``site`` under ``scheme`` for the balancing period that holds the date ``period``."""
    months = ledger.scheme_months(scheme)
    start = period_of(parse_date(period, "period"), months)
    entries = ledger.entries(site=site, scheme=scheme, period_start=start.isoformat())
    accounts = entries[entries["material_group"].notna()]
    groups = sorted(accounts["material_group"].unique())
    summary = pd.DataFrame({"material_group": groups})
    for column, kinds, sign in LINES:
        sums = accounts[accounts["kind"].isin(kinds)].groupby("material_group")["certified_t"].sum()
        summary[column] = [round(sign * float(sums.get(g, 0.0)), 3) + 0.0 for g in groups]
    totals = accounts.groupby("material_group")["certified_t"].sum()
    summary["closing_t"] = [round(float(totals.get(g, 0.0)), 3) + 0.0 for g in groups]
    verified = ledger.verify()
    return Statement(site=site, scheme=scheme, period_start=start.isoformat(), period=period_label(start, months),
                     closed=bool((entries["kind"] == "close").any()), summary=summary,
                     entries=entries[ENTRY_VIEW].reset_index(drop=True), head_seq=verified.entries,
                     head_hash=verified.head_hash)


def _table_html(frame: pd.DataFrame, headers: dict[str, str] | None = None) -> str:
    head = "".join(f"<th>{html_text((headers or {}).get(c, c))}</th>" for c in frame.columns)
    body = []
    for row in frame.itertuples(index=False):
        cells = []
        for value in row:
            text = "" if value is None or (isinstance(value, float) and pd.isna(value)) else value
            if isinstance(text, float):
                text = f"{text:,.3f}"
            cells.append(f"<td>{html_text(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def statement_html(s: Statement) -> str:
    """The statement as a self-contained HTML page (no script, no remote asset; prints to PDF as it is)."""
    status = "closed" if s.closed else "open (figures may still change)"
    title = f"Mass-balance statement: {s.site}, {s.scheme}, {s.period}"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html_text(title)}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }}
th, td {{ border: 1px solid #bbb; padding: 0.25em 0.5em; text-align: left; }}
td {{ font-variant-numeric: tabular-nums; }}
code {{ font-size: 0.85em; }}
@media print {{ body {{ margin: 0; }} }}
</style></head><body>
<h1>{html_text(title)}</h1>
<p>Site <b>{html_text(s.site)}</b>; scheme <b>{html_text(s.scheme)}</b>; balancing period
<b>{html_text(s.period)}</b> (from {html_text(s.period_start)}), {html_text(status)}. Certified quantities in
tonnes; the closing balance is the sum of the lines before it.</p>
<h2>Balance per material group</h2>
{_table_html(s.summary, LABELS | {"material_group": "material group"})}
<h2>Entries</h2>
<p>Each entry's hash is SHA-256 over its content and the previous entry's hash
(<code>symbiosis ledger verify</code> checks the chain).</p>
{_table_html(s.entries)}
<p>Ledger head when this statement was made: entry #{s.head_seq}, hash <code>{html_text(s.head_hash)}</code>.
Record it: <code>symbiosis ledger verify --anchor {s.head_seq}:{html_text(s.head_hash)}</code> later proves
that no entry up to this one was changed since.</p>
</body></html>
"""


def write_statement_xlsx(s: Statement, path: str | Path) -> Path:
    def write(tmp: Path) -> None:
        with pd.ExcelWriter(tmp, engine="openpyxl") as writer:
            about = pd.DataFrame({"field": ["site", "scheme", "period", "period_start", "status", "head_entry",
                                            "head_hash"],
                                  "value": [s.site, s.scheme, s.period, s.period_start,
                                            "closed" if s.closed else "open", str(s.head_seq), s.head_hash]})
            excel_safe(about).to_excel(writer, sheet_name="statement", index=False)
            excel_safe(s.summary).to_excel(writer, sheet_name="balances", index=False)
            excel_safe(s.entries).to_excel(writer, sheet_name="entries", index=False)

    return write_atomic(Path(path), write)


def write_statement(s: Statement, folder: Path) -> dict[str, Path]:
    """statement.html, statement.xlsx and statement.csv (the summary) into ``folder``."""
    return {"statement.html": write_text_atomic(folder / "statement.html", statement_html(s)),
            "statement.xlsx": write_statement_xlsx(s, folder / "statement.xlsx"),
            "statement.csv": write_csv(folder / "statement.csv", s.summary)}


def write_audit_export(ledger: Ledger, site: str, scheme: str, period: Any, folder: Path) -> dict[str, Path]:
    """The auditor's export for one site and period: the statement (HTML, XLSX, CSV), ``entries.csv`` (every
    entry of the period at the site, all fields and hashes), ``balances.csv`` and ``chain.json`` (the
    result of verifying the whole chain, and its head)."""
    s = statement(ledger, site, scheme, period)
    verified = ledger.verify()
    if not verified.ok:
        raise Refused(f"the ledger fails verification at entry #{verified.first_bad_seq}: {verified.problem}; "
                      "no audit export is written from a broken chain")
    written = write_statement(s, folder)
    everything = ledger.entries(site=site, scheme=scheme, period_start=s.period_start)
    written["entries.csv"] = write_csv(folder / "entries.csv", everything)
    written["balances.csv"] = write_csv(folder / "balances.csv", s.summary)
    chain = {"verified": True, "entries": verified.entries, "head_hash": verified.head_hash,
             "site": site, "scheme": scheme, "period": s.period, "period_start": s.period_start,
             "exported_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")}
    written["chain.json"] = write_text_atomic(folder / "chain.json", json.dumps(chain, indent=2) + "\n")
    return written


def certified_exchanges(ledger: Ledger, exchanges: pd.DataFrame, scheme: str, period: Any) -> pd.DataFrame:
    """Each exchange of an optimise run with the certified content that moved with it in one balancing
    period: ``exchanges`` (``supply_facility, demand_facility, material`` and whatever else) gains
    ``shipped_t`` and ``certified_t`` (the live transfers booked in the period from the supplying to the
    receiving site in that material group, reversed ones left out) and ``certified_share`` (certified /
    shipped; empty where nothing was booked)."""
    months = ledger.scheme_months(scheme)
    start = period_of(parse_date(period, "period"), months).isoformat()
    entries = ledger.entries(scheme=scheme, period_start=start)
    reversed_seqs = set(entries["reverses"].dropna().astype(int))
    sent = entries[(entries["kind"] == "transfer_out") & ~entries["seq"].isin(reversed_seqs)]
    totals = (sent.assign(certified=-sent["certified_t"].astype(float), shipped=sent["quantity_t"].astype(float))
              .groupby(["site", "counterparty", "material_group"])[["shipped", "certified"]].sum())
    keys = list(zip(exchanges["supply_facility"], exchanges["demand_facility"], exchanges["material"], strict=True))
    out = exchanges.copy()
    out["shipped_t"] = [float(totals["shipped"].get(k, 0.0)) for k in keys]
    out["certified_t"] = [float(totals["certified"].get(k, 0.0)) for k in keys]
    shipped = out["shipped_t"].where(out["shipped_t"] > 0)
    out["certified_share"] = (out["certified_t"] / shipped).round(6)
    return out
