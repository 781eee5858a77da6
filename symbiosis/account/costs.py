"""The per-facility cost table (``costs.csv``) and its link to a firm's accounting export.

MFCA (symbiosis.account.mfca) needs, beside the prices in flows.csv, what a facility spends on its system
(labour, depreciation, maintenance), on energy not recorded as priced flows, and on waste management. These
come from ``costs.csv`` in the region (one row per facility, cost type and amount), or from an accounting
export: a CSV of general-ledger accounts or cost centres with their amounts, and a mapping file that assigns
each account to a facility and cost type, or to one flow. An account that maps to nothing is a located error,
never a silent drop: money that reaches no quantity centre would make the losses look cheaper than they are.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from symbiosis.errors import Problems
from symbiosis.tables import (
    Table,
    number_column,
    read_csv_table,
    require_columns,
    require_text,
    snippet,
    text_column,
)

#: The cost types of ISO 14051 that are not material costs (material costs come from the flows' prices).
COST_TYPES = ("system", "energy", "waste_management")
#: Columns of ``costs.csv`` (required first).
COST_INPUT = ["facility_id", "cost_type", "amount", "currency", "flow_id", "source", "note"]
#: Columns of Region.costs (docs/architecture.md).
COST_COLUMNS = ["facility_id", "cost_type", "flow_id", "amount_per_yr", "source", "origin"]
#: Columns of an accounting export and of its mapping file.
ACCOUNT_INPUT = ["account", "amount", "currency", "description", "source", "note"]
ACCOUNT_MAP_INPUT = ["account", "facility_id", "cost_type", "flow_id", "source", "note"]

#: Periods per year, as in symbiosis.inputs.PERIOD_DAYS (amounts without a time unit are per period).
_PER_YEAR = {"year": 1.0, "quarter": 4.0, "month": 12.0, "week": 365.0 / 7.0, "day": 365.0}


def empty_costs() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=float if c == "amount_per_yr" else object) for c in COST_COLUMNS})


def _check_references(table: Table, frame: pd.DataFrame, facilities: pd.DataFrame, flows: pd.DataFrame | None,
                      problems: Problems) -> None:
    """Facility ids, cost types and flow ids of a cost or mapping table must name something in the region."""
    known_facilities = set(facilities["facility_id"].astype(str))
    flow_facility = (dict(zip(flows["flow_id"].astype(str), flows["facility_id"].astype(str), strict=True))
                     if flows is not None else {})
    for position in range(len(frame)):
        row = table.row_number(position)
        fid = frame["facility_id"].iat[position]
        flow_id = frame["flow_id"].iat[position]
        kind = frame["cost_type"].iat[position]
        if fid and fid not in known_facilities:
            problems.add(table.file, "unknown facility", row=row, column="facility_id", found=snippet(fid),
                         expected="a facility_id from the facilities table")
        if flow_id:
            if flows is not None and flow_id not in flow_facility:
                problems.add(table.file, "unknown flow", row=row, column="flow_id", found=snippet(flow_id),
                             expected="a flow_id from the flows table")
            elif fid and flow_facility.get(flow_id, fid) != fid:
                problems.add(table.file, "the flow belongs to another facility", row=row, column="flow_id",
                             found=f"{snippet(flow_id)} (of {snippet(flow_facility[flow_id])})",
                             expected=f"a flow of {snippet(fid)}, or an empty facility_id")
        if kind == "material" and not flow_id:
            problems.add(table.file, "a material cost belongs to a flow", row=row, column="flow_id",
                         found="an empty cell", expected="the flow_id of the input it pays for",
                         fix="material costs otherwise come from the flows' prices")
        elif kind and kind != "material" and kind not in COST_TYPES:
            problems.add(table.file, "unknown cost type", row=row, column="cost_type", found=snippet(kind),
                         expected=" | ".join(COST_TYPES),
                         fix="material costs come from the flows' prices; map a purchase account to its flow "
                             "instead (flow_id)")


def read_costs(table: Table | None, problems: Problems, facilities: pd.DataFrame, currency: str,
               period: str = "year", flows: pd.DataFrame | None = None) -> pd.DataFrame:
    """``costs.csv``: ``facility_id, cost_type (system | energy | waste_management), amount`` per period, with
    optional ``currency`` (must be the region's), ``flow_id`` (the cost belongs to one flow), ``source``, ``note``.
    """
    if table is None:
        return empty_costs()
    if not require_columns(table, ["facility_id", "cost_type", "amount"], problems, known=COST_INPUT):
        return empty_costs()
    require_text(table, ["facility_id", "cost_type"], problems)
    amount = number_column(table, "amount", problems, required=True, allow_negative=False,
                           expected="a cost per period, ≥ 0, in the region's currency")
    frame = pd.DataFrame({
        "facility_id": text_column(table, "facility_id").to_numpy(),
        "cost_type": text_column(table, "cost_type").str.lower().str.replace(" ", "_").to_numpy(),
        "flow_id": text_column(table, "flow_id").to_numpy(),
        "amount_per_yr": amount.to_numpy(float) * _PER_YEAR.get(period, 1.0),
        "source": text_column(table, "source").to_numpy(),
        "origin": [f"{table.file}:{table.row_number(i)}" for i in range(len(table.frame))],
    })
    _check_currency(table, currency, problems)
    _check_references(table, frame, facilities, flows, problems)
    return frame[COST_COLUMNS]


def _check_currency(table: Table, currency: str, problems: Problems) -> None:
    cells = text_column(table, "currency").reset_index(drop=True)
    for position in np.flatnonzero(((cells != "") & (cells.str.upper() != currency.upper())).to_numpy()):
        problems.add(table.file, "a cost in another currency", row=table.row_number(int(position)),
                     column="currency", found=snippet(cells.iat[position]),
                     expected=f"{currency} (the region's currency; no exchange rates are applied)")


def costs_from_accounts(accounts: Table, mapping: Table, problems: Problems, facilities: pd.DataFrame,
                        flows: pd.DataFrame, currency: str) -> pd.DataFrame:
    """Costs (Region.costs columns) from an accounting export and its mapping, amounts per year.

    ``accounts``: ``account, amount`` (per year; ``currency``, ``description`` optional), one row per general-
    ledger account or cost centre, as an ERP exports it (the same account on several rows is summed).
    ``mapping``: ``account`` and either ``facility_id`` + ``cost_type`` or ``flow_id`` (the account pays for one
    flow: a purchase account for an input is that input's material cost, a disposal account for an output is
    its waste-management cost). Every account of the export must be mapped (an unmapped one is a located
    error naming the account), and every mapping row must reach a facility.
    """
    ok = require_columns(accounts, ["account", "amount"], problems, known=ACCOUNT_INPUT)
    ok = require_columns(mapping, ["account"], problems, known=ACCOUNT_MAP_INPUT) and ok
    if not ok:
        return empty_costs()
    require_text(accounts, ["account"], problems)
    require_text(mapping, ["account"], problems)
    amount = number_column(accounts, "amount", problems, required=True,
                           expected="the account's amount for the year, in the region's currency")
    _check_currency(accounts, currency, problems)
    mapped = pd.DataFrame({
        "account": text_column(mapping, "account").to_numpy(),
        "facility_id": text_column(mapping, "facility_id").to_numpy(),
        "cost_type": text_column(mapping, "cost_type").str.lower().str.replace(" ", "_").to_numpy(),
        "flow_id": text_column(mapping, "flow_id").to_numpy(),
        "origin": [f"{mapping.file}:{mapping.row_number(i)}" for i in range(len(mapping.frame))],
    })
    flow_facility = dict(zip(flows["flow_id"].astype(str), flows["facility_id"].astype(str), strict=True))
    _check_references(mapping, mapped, facilities, flows, problems)
    for position in range(len(mapped)):
        row = mapping.row_number(position)
        if not mapped["flow_id"].iat[position] and not mapped["facility_id"].iat[position]:
            problems.add(mapping.file, "the account maps to no facility and no flow", row=row, column="facility_id",
                         found="an empty cell", expected="a facility_id with a cost_type, or a flow_id")
        elif not mapped["flow_id"].iat[position] and not mapped["cost_type"].iat[position]:
            problems.add(mapping.file, "a facility cost needs its type", row=row, column="cost_type",
                         found="an empty cell", expected=" | ".join(COST_TYPES))
    duplicated = mapped["account"].duplicated(keep="first").to_numpy()
    for twice in np.flatnonzero(duplicated):
        problems.add(mapping.file, "the account is mapped twice", row=mapping.row_number(int(twice)),
                     column="account", found=snippet(mapped["account"].iat[twice]),
                     expected="one row per account (split an account in the ledger, not in the mapping)")
    by_account = {a: i for i, a in enumerate(mapped["account"]) if not duplicated[i]}
    names = text_column(accounts, "account").reset_index(drop=True)
    rows: list[dict[str, object]] = []
    for position, account in enumerate(names):
        where = accounts.row_number(position)
        if account == "":
            continue
        if account not in by_account:
            problems.add(accounts.file, "the account maps to no flow or facility", row=where, column="account",
                         found=snippet(account),
                         expected=f"a row for it in {mapping.file} (account, facility_id, cost_type or flow_id)",
                         fix="map it, or remove it from the export if it is not a cost of a facility in the region")
            continue
        m = mapped.iloc[by_account[account]]
        flow_id = str(m["flow_id"])
        facility = str(m["facility_id"]) or flow_facility.get(flow_id, "")
        rows.append({"facility_id": facility, "cost_type": str(m["cost_type"]) or "flow", "flow_id": flow_id,
                     "amount_per_yr": float(amount.iat[position]), "source": f"account {account}",
                     "origin": f"{accounts.file}:{where}; {m['origin']}"})
    if not rows:
        return empty_costs()
    return pd.DataFrame(rows, columns=COST_COLUMNS)


def read_accounts(export: Path, mapping: Path, region: object) -> pd.DataFrame:
    """Read an accounting export and its mapping file (CSV, any dialect symbiosis reads) into costs."""
    problems = Problems()
    accounts = read_csv_table(export, problems, label=str(export))
    mapped = read_csv_table(mapping, problems, label=str(mapping))
    problems.raise_if_any()
    assert accounts is not None and mapped is not None  # a file that could not be read raised above
    costs = costs_from_accounts(accounts, mapped, problems, region.facilities, region.flows,  # type: ignore[attr-defined]
                                region.settings.currency)  # type: ignore[attr-defined]
    problems.raise_if_any()
    return costs
