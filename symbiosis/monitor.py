"""Monitoring a region over the years: the exchanges that took place against each year's optimum.

A region folder may hold ``realised.csv`` (docs/data-format.md): the exchanges that actually took place, by
year, each with its source. ``symbiosis monitor`` then, for every year:

- prices each realised exchange exactly as the optimum's exchanges are priced: its flow is put on the matching
  candidate arc (same supplier, receiver and material; the flow ids when given) and evaluated by
  :func:`symbiosis.results.exchanges_of_flows` (fate and virgin costs avoided, transport, CO2e per tonne);
- optimises the region of that year (:func:`symbiosis.pipeline.optimise`): the region's own data, or that data
  changed by ``years/<year>.yaml`` (a scenario file, docs/scenarios.md format) where one exists;
- reports what was left on the table (optimum − realised), which exchanges started or stopped since the
  previous monitored year, and why a realised exchange is not in the optimum (the supply's why-not-matched
  reason, or ``not_a_candidate``).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from symbiosis.errors import Problems, SymbiosisError
from symbiosis.region import Region

logger = logging.getLogger(__name__)

REALISED_FILE = "realised.csv"
YEARS_FOLDER = "years"
REQUIRED = ["year", "supply_facility", "demand_facility", "material", "amount", "unit", "source"]
STATUSES = ("running", "started", "stopped")
BASES = ("supplied", "delivered")
KEY = ["supply_facility", "demand_facility", "material"]
FIRST_YEAR, LAST_YEAR = 1900, 2100

#: monitor.csv, one row per year.
KPI_COLUMNS = [
    "year", "basis", "n_realised", "realised_t_per_yr", "realised_mwh_per_yr", "realised_saving",
    "realised_co2e_avoided_t", "n_optimum", "optimum_t_per_yr", "optimum_mwh_per_yr", "optimum_saving",
    "optimum_co2e_avoided_t", "left_saving", "left_co2e_avoided_t", "n_started", "n_stopped", "n_not_reported",
    "n_realised_not_in_optimum", "n_not_candidates", "currency",
]
#: monitor_exchanges.csv, one row per year and (supplier, receiver, material).
EXCHANGE_COLUMNS = [
    "year", "supply_facility", "demand_facility", "material", "quantity", "unit", "status", "change",
    "realised_amount", "optimum_amount", "realised_saving", "optimum_saving", "left_saving",
    "realised_co2e_avoided_t", "optimum_co2e_avoided_t", "in_optimum", "reason", "reason_detail", "source",
]


@dataclass
class Monitoring:
    """What ``symbiosis monitor`` found: KPIs by year, exchanges by year, and each year's optimum."""

    kpis: pd.DataFrame
    exchanges: pd.DataFrame
    realised: pd.DataFrame
    currency: str = "EUR"
    name: str = ""
    basis: dict[int, str] = field(default_factory=dict)
    facilities: pd.DataFrame = field(default_factory=pd.DataFrame)
    flows: pd.DataFrame = field(default_factory=pd.DataFrame)


# ------------------------------------------------------------------------------------------ reading


def _label(path: Path) -> str:
    from symbiosis.inputs import _label as label

    return label(path)


def read_realised(folder: Path, problems: Problems) -> tuple[pd.DataFrame, str]:
    """``realised.csv`` parsed and checked row by row where it needs no region (numbers, units, codes,
    duplicates); the facility and flow checks need each year's region (:func:`check_against_region`)."""
    from symbiosis.inputs import REALISED_INPUT
    from symbiosis.tables import number_column, read_csv_table, require_columns, text_column

    path = folder / REALISED_FILE
    label = _label(path)
    empty = pd.DataFrame(columns=["row", "year", *KEY, "supply_flow_id", "demand_flow_id", "amount", "unit",
                                  "basis", "status", "source", "note"])
    table = read_csv_table(path, problems, label=label)
    if table is None or not require_columns(table, REQUIRED, problems, known=REALISED_INPUT):
        return empty, label
    n = len(table.frame)
    rows = np.array([table.row_number(i) for i in range(n)], dtype=int)
    year = number_column(table, "year", problems, required=True, expected="a year, e.g. 2010").to_numpy(float)
    amount = number_column(table, "amount", problems, required=True, allow_negative=False,
                           expected="the amount exchanged in that year (≥ 0)").to_numpy(float)
    frame = pd.DataFrame({"row": rows, "year": year})
    for column in [*KEY, "supply_flow_id", "demand_flow_id", "unit", "source", "note"]:
        frame[column] = text_column(table, column).to_numpy()
    frame["amount"] = amount
    frame["basis"] = text_column(table, "basis", "supplied").replace("", "supplied").str.lower().to_numpy()
    frame["status"] = text_column(table, "status", "running").replace("", "running").str.lower().to_numpy()

    bad_year = ~np.isnan(year) & ((year != np.floor(year)) | (year < FIRST_YEAR) | (year > LAST_YEAR))
    for i in np.flatnonzero(bad_year):
        problems.add(label, "not a year", row=int(rows[i]), column="year", found=table.frame["year"].iat[i],
                     expected=f"a whole year between {FIRST_YEAR} and {LAST_YEAR}, e.g. 2010")
    for column, allowed in (("basis", BASES), ("status", STATUSES)):
        for i in np.flatnonzero(~frame[column].isin(allowed).to_numpy()):
            problems.add(label, f"unknown {column}", row=int(rows[i]), column=column, found=frame[column].iat[i],
                         expected=" or ".join(allowed))
    for column in ("supply_facility", "demand_facility", "material", "unit"):
        for i in np.flatnonzero((frame[column] == "").to_numpy()):
            problems.add(label, "an empty cell", row=int(rows[i]), column=column,
                         expected="a value (every realised exchange names its supplier, receiver, material and unit)")
    for i in np.flatnonzero((frame["source"] == "").to_numpy()):
        problems.add(label, "a realised exchange needs its source", row=int(rows[i]), column="source",
                     found="an empty cell", expected="a source key of region.yaml's sources, or a citation",
                     fix="cite where the figure was published; leave out a figure that has no source")
    identity = ["year", *KEY, "supply_flow_id", "demand_flow_id"]
    repeated = frame.duplicated(identity, keep="first").to_numpy()
    if repeated.any():
        first = frame.drop_duplicates(identity).set_index(identity)["row"]
        for i in np.flatnonzero(repeated):
            original = first.loc[tuple(frame.loc[i, identity])]
            problems.add(label, "a duplicate realised exchange", row=int(rows[i]), column="year",
                         found=f"{frame.at[i, 'supply_facility']} -> {frame.at[i, 'demand_facility']}, "
                               f"{frame.at[i, 'material']}, {int(year[i]) if year[i] == year[i] else ''}",
                         expected=f"one row per year and exchange (the same as row {int(original)})",
                         fix="add the amounts into one row, or name supply_flow_id/demand_flow_id where the "
                             "two rows are different flows")
    frame["year"] = np.where(np.isnan(year) | bad_year, -1, year).astype(int)
    return frame, label


def _convert_units(frame: pd.DataFrame, region: Region, label: str, problems: Problems) -> pd.DataFrame:
    """Amounts to t/yr or MWh/yr (symbiosis.units), the unit checked against the supply flow's quantity."""
    from symbiosis.units import UnitProblem, convert_amount

    converted = np.full(len(frame), np.nan)
    quantity = np.full(len(frame), "", dtype=object)
    for i, (amount, unit, material, row) in enumerate(zip(frame["amount"], frame["unit"], frame["material"],
                                                         frame["row"], strict=True)):
        if not unit or amount != amount:
            continue
        try:
            result = convert_amount(float(amount), str(unit), density_t_per_m3=region.reference.density(material))
        except UnitProblem as exc:
            problems.add(label, str(exc), row=int(row), column="unit", found=unit,
                         expected="t, kilotonne, m3 (with the material's density) or MWh, GJ, optionally per year")
            continue
        converted[i], quantity[i] = result.value, result.quantity
    out = frame.copy()
    out["amount_converted"] = converted
    out["quantity"] = quantity
    return out


def check_against_region(frame: pd.DataFrame, region: Region, label: str, problems: Problems) -> None:
    """Facilities, materials and flow ids of realised rows that the region (of that year) does not have."""
    facilities = set(region.facilities["facility_id"].astype(str))
    materials = set(region.reference.materials.index.astype(str))
    flows = region.flows
    fid, direction = flows["facility_id"].astype(str), flows["direction"].astype(str)
    material = flows["material"].astype(str)
    outs = pd.DataFrame({"facility_id": fid, "material": material, "flow_id": flows["flow_id"].astype(str),
                         "quantity": flows["quantity"].astype(str) if "quantity" in flows.columns else ""})
    outs = outs[(direction == "out").to_numpy()]
    out_pairs = set(zip(outs["facility_id"], outs["material"], strict=True))
    out_ids = set(zip(outs["facility_id"], outs["material"], outs["flow_id"], strict=True))
    in_ids = set(zip(fid[direction == "in"], flows["flow_id"].astype(str)[direction == "in"], strict=True))
    supply_quantity = outs.drop_duplicates(["facility_id", "material"]).set_index(
        ["facility_id", "material"])["quantity"].to_dict()
    for r in frame.itertuples(index=False):  # realised rows: tens per year, not arcs
        row = int(r.row)
        known = True
        for column, value in (("supply_facility", r.supply_facility), ("demand_facility", r.demand_facility)):
            if value and value not in facilities:
                known = False
                problems.add(label, "unknown facility", row=row, column=column, found=value,
                             expected=f"a facility_id of the region in {r.year}")
        if r.material and r.material not in materials:
            known = False
            problems.add(label, "unknown material", row=row, column="material", found=r.material,
                         expected="a material_id of the reference materials (or the region's own)")
        if not known:
            continue
        if (r.supply_facility, r.material) not in out_pairs:
            problems.add(label, "the supplier has no outgoing flow of this material", row=row, column="material",
                         found=f"{r.supply_facility}: {r.material}",
                         expected=f"a material that {r.supply_facility} gives off in the region's flows")
            continue
        if r.supply_flow_id and (r.supply_facility, r.material, r.supply_flow_id) not in out_ids:
            problems.add(label, "no such outgoing flow of the supplier", row=row, column="supply_flow_id",
                         found=r.supply_flow_id, expected=f"a flow_id of {r.supply_facility}'s {r.material} output")
        if r.demand_flow_id and (r.demand_facility, r.demand_flow_id) not in in_ids:
            problems.add(label, "no such incoming flow of the receiver", row=row, column="demand_flow_id",
                         found=r.demand_flow_id, expected=f"a flow_id of {r.demand_facility}'s inputs")
        wanted = supply_quantity.get((r.supply_facility, r.material), "")
        if r.quantity and wanted in ("mass", "energy") and r.quantity != wanted:
            problems.add(label, f"the unit is one of {r.quantity}, the supply is one of {wanted}", row=row,
                         column="unit", found=r.unit,
                         expected="MWh or GJ for heat" if wanted == "energy" else "t, kt or m3 for a material")


def _years_overrides(folder: Path, label: str, problems: Problems) -> dict[int, Path]:
    """``years/<year>.yaml``: the scenario that gives a year's data (the region's own data where none)."""
    found: dict[int, Path] = {}
    years = folder / YEARS_FOLDER
    if not years.is_dir():
        return found
    for path in sorted(years.glob("*.yaml")):
        if not path.stem.isdigit() or not FIRST_YEAR <= int(path.stem) <= LAST_YEAR:
            problems.add(_label(path), "a year file must be named after its year", found=path.name,
                         expected=f"<year>.yaml with a year between {FIRST_YEAR} and {LAST_YEAR}, e.g. 2022.yaml")
            continue
        found[int(path.stem)] = path
    return found


def region_of_year(folder: Path, region: Region, path: Path | None) -> tuple[Region, dict[str, Any], str]:
    """The region of one year: its own data, or changed by ``years/<year>.yaml`` (base must be the region)."""
    if path is None:
        return region, {}, "region data"
    from symbiosis.scenarios import apply_scenario, load_scenario

    scenario, base = load_scenario(path)
    if base != folder.resolve():
        problems = Problems()
        problems.add(_label(path), "a year file's base must be its own region", column="base", found=scenario.base,
                     expected="'..' (the region folder that holds years/)")
        problems.raise_if_any()
    changed, overrides, _record = apply_scenario(region, scenario)
    return changed, overrides, f"{YEARS_FOLDER}/{path.name}"


# ------------------------------------------------------------------------------------------ evaluating


def _match_arcs(cands: Any, rows: pd.DataFrame, label: str, problems: Problems) -> np.ndarray:
    """The candidate arc of each realised row (-1: not a candidate); several matching arcs is an error."""
    arcs = cands.arcs
    s = arcs["s"].to_numpy(int)
    table = pd.DataFrame({"arc": np.arange(len(arcs)),
                          "supply_facility": arcs["supply_facility"].astype(str).to_numpy(),
                          "demand_facility": arcs["demand_facility"].astype(str).to_numpy(),
                          "material": cands.supplies["material"].astype(str).to_numpy()[s],
                          "supply_id": arcs["supply_id"].astype(str).to_numpy(),
                          "demand_id": arcs["demand_id"].astype(str).to_numpy()})
    left = rows[["row", *KEY, "supply_flow_id", "demand_flow_id"]].reset_index(drop=True)
    left["position"] = np.arange(len(left))
    merged = left.merge(table, on=KEY, how="inner")
    merged = merged[((merged["supply_flow_id"] == "") | (merged["supply_flow_id"] == merged["supply_id"]))
                    & ((merged["demand_flow_id"] == "") | (merged["demand_flow_id"] == merged["demand_id"]))]
    found = np.full(len(left), -1, dtype=int)
    for position, group in merged.groupby("position", sort=True):
        if len(group) > 1:
            choices = "; ".join(f"{a} -> {b}" for a, b in zip(group["supply_id"], group["demand_id"], strict=True))
            problems.add(label, "the realised exchange matches several candidate exchanges",
                         row=int(left.at[position, "row"]), column="demand_flow_id", found=choices[:200],
                         expected="supply_flow_id and/or demand_flow_id naming one of them")
            continue
        found[int(position)] = int(group["arc"].iat[0])
    return found


def evaluate_realised(cands: Any, rows: pd.DataFrame, arcs: np.ndarray) -> pd.DataFrame:
    """Each realised row priced as the optimum prices an exchange (symbiosis.results.exchanges_of_flows):
    amount, saving and CO2e avoided; NaN where it is no candidate arc."""
    from symbiosis.exchange.model import exchange_arrays
    from symbiosis.results import exchanges_of_flows

    n_arcs = len(cands.arcs)
    arrays = exchange_arrays(cands) if (arcs >= 0).any() else None
    ratio = cands.arcs["ratio"].to_numpy(float)
    out = rows.reset_index(drop=True).copy()
    for column in ("flow", "saving", "co2e_avoided_t_per_yr", "supply_id", "demand_id"):
        out[column] = np.nan if column not in ("supply_id", "demand_id") else ""
    for i, arc in enumerate(arcs):
        if arc < 0:
            continue
        amount = float(out.at[i, "amount_converted"])
        flow = amount / ratio[arc] if out.at[i, "basis"] == "delivered" else amount
        x = np.zeros(n_arcs)
        x[arc] = flow
        table = exchanges_of_flows(cands, x, arrays=arrays)
        out.at[i, "flow"] = flow
        out.at[i, "supply_id"] = str(cands.arcs["supply_id"].iat[arc])
        out.at[i, "demand_id"] = str(cands.arcs["demand_id"].iat[arc])
        if len(table):
            out.at[i, "saving"] = float(table["saving"].iat[0])
            out.at[i, "co2e_avoided_t_per_yr"] = float(table["co2e_avoided_t_per_yr"].iat[0])
        else:  # a zero flow (a stopped exchange): nothing saved
            out.at[i, "saving"] = out.at[i, "co2e_avoided_t_per_yr"] = 0.0
    return out


def _optimum_by_key(results: Any) -> pd.DataFrame:
    ex = results.exchanges
    if ex.empty:
        return pd.DataFrame(columns=[*KEY, "optimum_amount", "optimum_saving", "optimum_co2e_avoided_t", "quantity"])
    amount = np.where(ex["quantity"].astype(str) == "energy", ex["amount_mwh_per_yr"], ex["amount_t_per_yr"])
    frame = pd.DataFrame({**{k: ex[k].astype(str) for k in KEY}, "optimum_amount": amount.astype(float),
                          "optimum_saving": ex["saving"].astype(float),
                          "optimum_co2e_avoided_t": ex["co2e_avoided_t_per_yr"].astype(float),
                          "quantity": ex["quantity"].astype(str)})
    return frame.groupby(KEY, as_index=False, sort=True).agg(
        optimum_amount=("optimum_amount", "sum"), optimum_saving=("optimum_saving", "sum"),
        optimum_co2e_avoided_t=("optimum_co2e_avoided_t", "sum"), quantity=("quantity", "first"))


def _why_not(row: Any, supplies: pd.DataFrame) -> tuple[str, str]:
    if not row.get("supply_id"):
        return ("not_a_candidate",
                f"no candidate exchange from {row['supply_facility']} to {row['demand_facility']} for "
                f"{row['material']}: screened out (distance, quality, permit, no compatible demand, or not "
                "exchangeable), so it was never offered to the optimiser")
    hit = supplies[supplies["supply_id"].astype(str) == row["supply_id"]]
    reason = str(hit["reason"].iat[0]) if len(hit) and "reason" in hit.columns else ""
    detail = str(hit["reason_detail"].iat[0]) if len(hit) and "reason_detail" in hit.columns else ""
    if reason in ("", "nan", "fully_exchanged"):
        text = f"the optimum sends {row['supply_id']} to other receivers"
        return "used_elsewhere", f"{text} ({detail})" if detail else text
    return reason, detail


def monitor(path: str | Path, *, progress: Any = None, reference_dir: Path | None = None,
            models_directory: Path | None = None, **overrides: Any) -> Monitoring:
    """KPIs and exchanges year by year: realised against the optimum of each year (module docstring).

    ``reference_dir``/``models_directory``: as :func:`symbiosis.inputs.load_region` (default: the shipped ones).
    """
    from symbiosis.candidates import candidates as build_candidates
    from symbiosis.inputs import load_region
    from symbiosis.pipeline import check_overrides, optimise

    say = progress or (lambda _message: None)
    folder = Path(path)
    problems = Problems()
    if not folder.is_dir() or not (folder / REALISED_FILE).exists():
        problems.add(_label(folder / REALISED_FILE), "missing file",
                     expected="realised.csv in the region folder (the exchanges that took place, by year; "
                              "docs/data-format.md)")
        problems.raise_if_any()
    overrides = check_overrides(overrides)
    region = load_region(folder, reference_dir=reference_dir, models_directory=models_directory)
    realised, label = read_realised(folder, problems)
    year_files = _years_overrides(folder, label, problems)
    problems.raise_if_any()
    realised = _convert_units(realised, region, label, problems)
    years = sorted(set(realised["year"]) | set(year_files))
    regions: dict[int, tuple[Region, dict[str, Any], str]] = {}
    for year in years:
        regions[year] = region_of_year(folder, region, year_files.get(year))
        check_against_region(realised[realised["year"] == year], regions[year][0], label, problems)
    problems.raise_if_any()

    kpi_rows: list[dict[str, Any]] = []
    tables: list[pd.DataFrame] = []
    evaluated: list[pd.DataFrame] = []
    previous_active: dict[tuple[str, str, str], pd.Series] = {}
    currency = region.currency
    for year in years:
        year_region, year_overrides, basis = regions[year]
        run = {**year_overrides, **overrides}
        say(f"{year}: optimising ({basis})")
        results = optimise(year_region, **run)
        cands = build_candidates(year_region, **run)
        rows = realised[realised["year"] == year].reset_index(drop=True)
        arcs = _match_arcs(cands, rows, label, problems)
        problems.raise_if_any()
        rows = evaluate_realised(cands, rows, arcs)
        rows["realised_amount"] = rows["flow"].fillna(rows["amount_converted"])
        evaluated.append(rows)
        table, active = _year_table(year, rows, results, previous_active, first=year == years[0])
        previous_active = active
        tables.append(table)
        kpi_rows.append(_year_kpis(year, basis, rows, results, table))
    kpis = pd.DataFrame(kpi_rows, columns=KPI_COLUMNS)
    kpis["currency"] = currency
    exchanges = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=EXCHANGE_COLUMNS)
    facilities = pd.concat([r[0].facilities for r in regions.values()] or [region.facilities],
                           ignore_index=True).drop_duplicates("facility_id")
    flows = pd.concat([r[0].flows[["flow_id", "facility_id"]] for r in regions.values()] or
                      [region.flows[["flow_id", "facility_id"]]], ignore_index=True).drop_duplicates("flow_id")
    return Monitoring(kpis=kpis, exchanges=exchanges[EXCHANGE_COLUMNS].reset_index(drop=True),
                      realised=pd.concat(evaluated, ignore_index=True) if evaluated else realised,
                      currency=currency, name=region.name, basis={y: regions[y][2] for y in years},
                      facilities=facilities, flows=flows)


def _year_table(year: int, rows: pd.DataFrame, results: Any, previous: dict[tuple[str, str, str], pd.Series],
                *, first: bool) -> tuple[pd.DataFrame, dict[tuple[str, str, str], pd.Series]]:
    """One year's exchanges: realised and optimum side by side by (supplier, receiver, material), with the
    change since the previous monitored year and why a realised exchange is not in the optimum."""
    optimum = _optimum_by_key(results)
    by_key = {tuple(k): g for k, g in rows.groupby(KEY, sort=True)} if len(rows) else {}
    opt_by_key = {tuple(r[k] for k in KEY): r for _, r in optimum.iterrows()}
    keys = sorted(set(by_key) | set(opt_by_key) | set(previous))
    out: list[dict[str, Any]] = []
    active: dict[tuple[str, str, str], pd.Series] = {}
    for key in keys:
        group = by_key.get(key)
        opt = opt_by_key.get(key)
        record: dict[str, Any] = dict(zip(KEY, key, strict=True))
        record["year"] = year
        in_optimum = opt is not None and float(opt["optimum_amount"]) > 0
        record.update(optimum_amount=float(opt["optimum_amount"]) if opt is not None else 0.0,
                      optimum_saving=float(opt["optimum_saving"]) if opt is not None else 0.0,
                      optimum_co2e_avoided_t=float(opt["optimum_co2e_avoided_t"]) if opt is not None else 0.0,
                      in_optimum=in_optimum, reason="", reason_detail="", status="", change="", source="")
        quantity = str(opt["quantity"]) if opt is not None else ""
        if group is not None:
            first_row = group.iloc[0]
            quantity = str(first_row["quantity"]) or quantity
            stopped = bool((group["status"] == "stopped").all()) or float(group["amount_converted"].sum()) <= 0
            record.update(realised_amount=float(group["realised_amount"].sum()),
                          realised_saving=float(group["saving"].sum(min_count=1)),
                          realised_co2e_avoided_t=float(group["co2e_avoided_t_per_yr"].sum(min_count=1)),
                          status=", ".join(sorted(set(group["status"]))),
                          source="; ".join(dict.fromkeys(group["source"])))
            if not stopped:
                active[key] = first_row
            was = key in previous
            if stopped:
                record["change"] = "stopped"
            elif first:
                record["change"] = "running"
            else:
                record["change"] = "continued" if was else "started"
            if not stopped and not in_optimum:
                record["reason"], record["reason_detail"] = _why_not(first_row, results.supplies)
        else:
            record.update(realised_amount=np.nan if key in previous else 0.0, realised_saving=np.nan
                          if key in previous else 0.0, realised_co2e_avoided_t=np.nan if key in previous else 0.0)
            if key in previous:
                record["change"] = "not_reported"
                record["reason_detail"] = "realised the year before; no figure for this year in realised.csv"
        record["quantity"] = quantity or "mass"
        record["unit"] = "MWh/yr" if record["quantity"] == "energy" else "t/yr"
        realised_saving = record["realised_saving"]
        record["left_saving"] = record["optimum_saving"] - (0.0 if np.isnan(realised_saving) else realised_saving)
        out.append(record)
    table = pd.DataFrame(out, columns=EXCHANGE_COLUMNS)
    return table, active


def _year_kpis(year: int, basis: str, rows: pd.DataFrame, results: Any, table: pd.DataFrame) -> dict[str, Any]:
    live = rows[(rows["status"] != "stopped") & (rows["amount_converted"] > 0)]
    energy = live["quantity"] == "energy"
    ex = results.exchanges
    opt_energy = ex["quantity"].astype(str) == "energy" if len(ex) else pd.Series(dtype=bool)
    realised_saving = float(live["saving"].sum())
    realised_co2e = float(live["co2e_avoided_t_per_yr"].sum())
    optimum_saving = float(results.kpis["net_cost_saving"])
    optimum_co2e = float(results.kpis["co2e_avoided_t"])
    realised_keys = table[table["change"].isin(["running", "started", "continued"])]
    return {
        "year": year, "basis": basis, "n_realised": len(live),
        "realised_t_per_yr": float(live.loc[~energy, "realised_amount"].sum()),
        "realised_mwh_per_yr": float(live.loc[energy, "realised_amount"].sum()),
        "realised_saving": realised_saving, "realised_co2e_avoided_t": realised_co2e,
        "n_optimum": int(results.kpis["n_exchanges"]),
        "optimum_t_per_yr": float(ex.loc[~opt_energy, "amount_t_per_yr"].sum()) if len(ex) else 0.0,
        "optimum_mwh_per_yr": float(ex.loc[opt_energy, "amount_mwh_per_yr"].sum()) if len(ex) else 0.0,
        "optimum_saving": optimum_saving, "optimum_co2e_avoided_t": optimum_co2e,
        "left_saving": optimum_saving - realised_saving, "left_co2e_avoided_t": optimum_co2e - realised_co2e,
        "n_started": int((table["change"] == "started").sum()), "n_stopped": int((table["change"] == "stopped").sum()),
        "n_not_reported": int((table["change"] == "not_reported").sum()),
        "n_realised_not_in_optimum": int((~realised_keys["in_optimum"].astype(bool)).sum()),
        "n_not_candidates": int((realised_keys["reason"] == "not_a_candidate").sum()),
        "currency": "",
    }


# ------------------------------------------------------------------------------------------ writing


def public_exchanges(monitoring: Monitoring, private: bool) -> tuple[pd.DataFrame, Any]:
    """monitor_exchanges as the public may see it: a confidential facility's exchanges pseudonymised, their
    figures suppressed (symbiosis.disclosure); as it is with ``private``."""
    from symbiosis.disclosure import Disclosure

    d = Disclosure(monitoring.facilities, monitoring.flows)
    if private:
        return monitoring.exchanges, d
    public = d.frame(monitoring.exchanges)
    if public is not None and len(public):
        public["year"] = monitoring.exchanges["year"].to_numpy()  # a year is no figure of the firm
    return public if public is not None else monitoring.exchanges, d


def chart_png(kpis: pd.DataFrame, path: Path, currency: str) -> Path:
    """Realised against optimum by year: money saved and CO2e avoided, side by side."""
    from matplotlib.figure import Figure

    from symbiosis.atomic import write_atomic

    figure = Figure(figsize=(9, 3.6), dpi=110)
    axes = figure.subplots(1, 2)
    years = kpis["year"].astype(int).astype(str).tolist()
    positions = np.arange(len(years))
    for ax, (realised, optimum, title) in zip(axes, (
            ("realised_saving", "optimum_saving", f"Saving ({currency}/yr)"),
            ("realised_co2e_avoided_t", "optimum_co2e_avoided_t", "CO2e avoided (t/yr)")), strict=True):
        ax.bar(positions - 0.2, kpis[realised].astype(float), 0.4, label="realised", color="#2b8cbe")
        ax.bar(positions + 0.2, kpis[optimum].astype(float), 0.4, label="optimum", color="#bdbdbd")
        ax.set_xticks(positions, years)
        ax.set_title(title)
        ax.legend(frameon=False)
    figure.tight_layout()
    return write_atomic(path, lambda tmp: figure.savefig(tmp, format="png"))


def _html(kpis: pd.DataFrame, exchanges: pd.DataFrame, name: str, currency: str, public: bool, n_masked: int) -> str:
    from symbiosis.disclosure import PRIVATE_MARK
    from symbiosis.outputs.escape import html_text

    def number(value: Any, digits: int = 0) -> str:
        try:
            v = float(value)
        except (TypeError, ValueError):
            return html_text(value)
        return "–" if v != v else f"{v:,.{digits}f}"

    def cell(value: Any) -> str:
        numeric = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
        return f"<td>{number(value) if numeric else html_text(value)}</td>"

    def table(frame: pd.DataFrame, columns: list[str]) -> str:
        head = "".join(f"<th>{html_text(c)}</th>" for c in columns)
        body = "".join("<tr>" + "".join(f"<td>{int(r[c])}</td>" if c == "year" else cell(r[c]) for c in columns)
                       + "</tr>" for _, r in frame.iterrows())
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    mark = (f"<p class=mark>{html_text(PRIVATE_MARK)}</p>" if not public else
            f"<p>Public view: {n_masked} confidential facilities masked.</p>" if n_masked else "")
    kpi_cols = ["year", "basis", "n_realised", "realised_saving", "optimum_saving", "left_saving",
                "realised_co2e_avoided_t", "optimum_co2e_avoided_t", "left_co2e_avoided_t", "n_started",
                "n_stopped", "n_not_reported", "n_realised_not_in_optimum"]
    ex_cols = ["year", "supply_facility", "demand_facility", "material", "unit", "change", "realised_amount",
               "optimum_amount", "realised_saving", "optimum_saving", "reason", "source"]
    return ("<!doctype html><html lang=en><head><meta charset=utf-8>"
            f"<title>{html_text(name)}: monitoring over the years</title>"
            "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;font-size:90%}"
            "td,th{border:1px solid #ccc;padding:2px 6px}td{text-align:right}.mark{color:#b00;font-weight:bold}"
            "</style></head><body>"
            f"<h1>{html_text(name)}: realised exchanges against the optimum, year by year</h1>{mark}"
            f"<p>Money in {html_text(currency)}/yr. Realised exchanges are priced as the optimum prices its "
            "exchanges; left on the table = optimum − realised.</p>"
            "<img src=monitor.png alt='realised and optimum saving and CO2e avoided by year' width=900>"
            f"<h2>By year</h2>{table(kpis, kpi_cols)}<h2>Exchanges</h2>{table(exchanges, ex_cols)}"
            "</body></html>\n")


def write_monitoring(monitoring: Monitoring, out: Path, *, name: str, private: bool = False) -> dict[str, Path]:
    """monitor.csv, monitor_exchanges.csv, monitor.png, monitor.html and parameters.json as one folder."""
    from symbiosis.atomic import in_folder, output_folder, write_text_atomic
    from symbiosis.disclosure import marker
    from symbiosis.outputs.export import write_csv, write_disclosure_note

    exchanges, d = public_exchanges(monitoring, private)
    n_masked = 0 if private else d.n
    written: dict[str, Path] = {}
    with output_folder(out) as stage:
        written["monitor"] = write_csv(stage / "monitor.csv", monitoring.kpis)
        written["monitor_exchanges"] = write_csv(stage / "monitor_exchanges.csv", exchanges)
        written["chart"] = chart_png(monitoring.kpis, stage / "monitor.png", monitoring.currency)
        written["page"] = write_text_atomic(stage / "monitor.html", _html(
            monitoring.kpis, exchanges, name if private else str(d.text(name)), monitoring.currency,
            not private, n_masked))
        record = {**marker(private, n_masked), "region": name if private else d.text(name),
                  "years": {str(y): b for y, b in monitoring.basis.items()}}
        written["parameters"] = write_text_atomic(stage / "parameters.json",
                                                  json.dumps(record, indent=2, default=str) + "\n")
        written["disclosure"] = write_disclosure_note(stage, public=not private, n_masked=n_masked)
    return in_folder(out, stage, written)


def run(path: Path, *, out: Path, private: bool, overrides: dict[str, Any]) -> None:
    """The body of ``symbiosis monitor`` (registered in symbiosis/cli.py)."""
    from symbiosis.cli import _fail, _prepare, console

    overrides = _prepare(out, **overrides)
    try:
        with console.status("monitoring") as status:
            result = monitor(path, progress=lambda message: status.update(message), **overrides)
            written = write_monitoring(result, out, name=result.name, private=private)
    except SymbiosisError as exc:
        _fail(exc)
    for row in result.kpis.itertuples(index=False):
        console.print(f"{row.year}: realised {row.realised_saving:,.0f} {result.currency}/yr, "
                      f"optimum {row.optimum_saving:,.0f}, left on the table {row.left_saving:,.0f}; "
                      f"CO2e avoided {row.realised_co2e_avoided_t:,.0f} of {row.optimum_co2e_avoided_t:,.0f} t/yr",
                      highlight=False)
    console.print(f"wrote {out} ({', '.join(p.name for p in written.values())})", highlight=False)
