"""One period of a multi-period optimum as ordinary Results, for a map and report of that period.

``period_results_view(region, results, name)`` cuts period ``name`` out of the time-expanded optimum that
``symbiosis.periods.solve`` keeps beside its per-period tables, and evaluates it with
``symbiosis.results.evaluate`` like an annual optimum: every table and KPI of the view is that period's,
and the map and report read it as they read the year (``symbiosis run --period NAME``). Its columns keep
their names (``amount_t_per_yr`` holds the period's tonnes); ``kpis["period"]`` names the period so that the
pages say so. The KPIs the per-period table has (costs, CO2e, savings, storage) are taken from that
table's row, so the pages show exactly what ``kpis_by_period.csv`` says (a store's holding costs and losses
belong to the period they fall in). A supplier's store changes what the supply has in the period (made,
less what it puts in store, plus what it draws), a receiver's store what its demand needs from outside;
the view's supplies and demands show those amounts.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from symbiosis.candidates import Candidates
from symbiosis.energy.heat import is_energy
from symbiosis.errors import SymbiosisError
from symbiosis.exchange.model import exchange_arrays
from symbiosis.exchange.solve import Solution
from symbiosis.periods.expand import PERIOD_MARK, Expanded
from symbiosis.periods.sites import with_site_flows, zero_site_amounts

if TYPE_CHECKING:
    from symbiosis.region import Region
    from symbiosis.results import Results

#: KPIs taken from the period's row of ``kpis_by_period`` (the rest come from evaluating the period).
PERIOD_KPIS = ("cost_bau", "cost_optimum", "co2e_bau_t", "co2e_optimum_t", "net_cost_saving", "co2e_avoided_t",
               "storage_cost")


def period_name(results: Any, name: str) -> str:
    """The period of ``results`` called ``name`` (case as you like), or a SymbiosisError naming the periods."""
    periods = getattr(results, "periods", None)
    if periods is None:
        raise SymbiosisError(f"--period {name}: this region declares no periods (region.yaml `periods:`); "
                             "its results are for the year")
    names = [str(p) for p in periods.periods["period"]]
    known = {n.casefold(): n for n in names}
    if name.casefold() not in known:
        raise SymbiosisError(f"--period {name}: unknown period; expected one of {', '.join(names)}")
    return known[name.casefold()]


def check_period(region: Region, name: str) -> None:
    """Refuse ``--period name`` before any solve when ``region`` does not declare that period."""
    if region.time is None or len(region.time.names) < 2:
        raise SymbiosisError(f"--period {name}: this region declares no periods (region.yaml `periods:`); "
                             "its results are for the year")
    if name.casefold() not in {n.casefold() for n in region.time.names}:
        raise SymbiosisError(f"--period {name}: unknown period; expected one of {', '.join(region.time.names)}")


def _slice_table(table: pd.DataFrame | None, column: str, keep: np.ndarray, offset: int) -> pd.DataFrame | None:
    """Rows of an expanded side table whose ``column`` position is one of period t's (``keep``), moved back."""
    if table is None:
        return None
    if not len(table) or column not in table.columns:
        return table.iloc[:0].reset_index(drop=True) if len(table) else table
    positions = table[column].to_numpy(np.int64)
    out = table[keep[positions]].reset_index(drop=True)
    out[column] = out[column].to_numpy(np.int64) - offset
    return out


def _period_cut(ex: Expanded, solution: Solution, t: int) -> tuple[Candidates, Solution]:
    """Period ``t`` of the expanded candidates and optimum, as annual-looking candidates and a solution."""
    cands = ex.candidates
    n_s, n_d, n_a_all = len(ex.base.supplies), len(ex.base.demands), len(cands.arcs)
    s_rows = np.flatnonzero(ex.supply_period == t)
    d_rows = np.flatnonzero(ex.demand_period == t)
    a_rows = np.flatnonzero(ex.arc_period == t) if n_a_all else np.zeros(0, np.int64)
    supplies = cands.supplies.iloc[s_rows].reset_index(drop=True)
    demands = cands.demands.iloc[d_rows].reset_index(drop=True)
    demands["facility_id"] = demands["facility_id"].astype(str).str.split(PERIOD_MARK, n=1).str[0]
    arcs = cands.arcs.iloc[a_rows].reset_index(drop=True)
    if len(arcs):
        arcs["s"] = arcs["s"].to_numpy(np.int64) - t * n_s
        arcs["d"] = arcs["d"].to_numpy(np.int64) - t * n_d
    w = solution.w[s_rows].copy()
    y = solution.y[d_rows].copy()
    # The stores of period t: what a supplier's store took in net leaves the supply's amount in the period,
    # what a receiver's store gave in net is need met from inside.
    if solution.storage is not None and len(ex.stores):
        periods = ex.n_periods
        net = (solution.storage["put"] - solution.storage["take"]).reshape(len(ex.stores), periods)[:, t]
        side, row = ex.stores["side"].to_numpy(), ex.stores["row"].to_numpy(np.int64)
        site = side == "site"  # a store site's rows: what it drew (supply) and what it put in store (demand)
        if site.any():
            take = solution.storage["take"].reshape(len(ex.stores), periods)[site, t]
            put = solution.storage["put"].reshape(len(ex.stores), periods)[site, t]
            for table, rows, values in ((supplies, row[site], take),
                                        (demands, ex.stores["demand_row"].to_numpy(np.int64)[site], put)):
                amount = pd.to_numeric(table["amount_t_per_yr"], errors="coerce").to_numpy(float).copy()
                amount[rows] = values
                table["amount_t_per_yr"] = amount
        for table, at, quantity_net in ((supplies, side == "supply", -net), (demands, side == "demand", net)):
            if not at.any():
                continue
            energy = is_energy(table)
            change = np.bincount(row[at], weights=quantity_net[at], minlength=len(table))
            for column, rows in (("amount_t_per_yr", ~energy), ("amount_mwh_per_yr", energy)):
                values = pd.to_numeric(table[column], errors="coerce").to_numpy(float).copy()
                values[rows] = values[rows] + change[rows]
                table[column] = np.maximum(values, 0.0) if column == "amount_t_per_yr" else values
    processors, links = cands.processors, cands.processor_links
    z = solution.z
    if processors is not None and len(processors) and links is not None:
        n_p = len(ex.base.processors) if ex.base.processors is not None else 0
        p_keep = slice(t * n_p, (t + 1) * n_p)
        processors = processors.iloc[p_keep].reset_index(drop=True)
        if "p" in processors.columns:
            processors["p"] = processors["p"].to_numpy(np.int64) - t * n_p
        links = links.copy()
        offset = np.where(links["side"].to_numpy() == "out", n_s, n_d)
        in_period = (links["row"].to_numpy(np.int64) // offset) == t
        links = links[in_period].reset_index(drop=True)
        links["row"] = links["row"].to_numpy(np.int64) - t * np.where(links["side"].to_numpy() == "out", n_s, n_d)
        links["p"] = links["p"].to_numpy(np.int64) - t * n_p
        z = solution.z[p_keep] if len(solution.z) else solution.z
    s_keep = np.zeros(len(cands.supplies), bool)
    s_keep[s_rows] = True
    d_keep = np.zeros(len(cands.demands), bool)
    d_keep[d_rows] = True
    cut = Candidates(
        supplies=supplies, demands=demands, arcs=arcs,
        supply_quality=_slice_table(cands.supply_quality, "s", s_keep, t * n_s),  # type: ignore[arg-type]
        demand_quality=_slice_table(cands.demand_quality, "d", d_keep, t * n_d),  # type: ignore[arg-type]
        screening=_slice_table(cands.screening, "s", s_keep, t * n_s),  # type: ignore[arg-type]
        parameters=dict(cands.parameters or {}), processors=processors, processor_links=links,
        permit_screened=ex.base.permit_screened, permit_limits=getattr(cands, "permit_limits", None),
    )
    arrays = exchange_arrays(cut)

    def part(values: np.ndarray, rows: np.ndarray, n: int) -> np.ndarray:
        return values[rows] if len(values) >= (rows.max() + 1 if len(rows) else 0) and len(values) else np.zeros(n)

    expanded_arrays = exchange_arrays(cands)
    quality_dual = np.zeros(arrays.quality.n_rows)
    if len(solution.quality_dual) and arrays.quality.n_rows:
        in_t = (expanded_arrays.quality_rows["d"].to_numpy(np.int64) // n_d) == t
        if int(in_t.sum()) == arrays.quality.n_rows:
            quality_dual = solution.quality_dual[in_t]
    facility_dual = np.zeros(arrays.facility_intake.n_rows)
    if len(solution.facility_intake_dual) and arrays.facility_intake.n_rows:
        ids = pd.Series(expanded_arrays.facility_intake_ids).astype(str)
        parts = ids.str.rsplit(PERIOD_MARK, n=1, expand=True) if ex.n_periods > 1 else pd.DataFrame({0: ids, 1: "0"})
        mine = (parts[1].astype(int) == t).to_numpy()
        dual = pd.Series(solution.facility_intake_dual[mine], index=parts[0][mine].to_numpy())
        facility_dual = dual.groupby(level=0).sum().reindex(
            pd.Series(arrays.facility_intake_ids).astype(str)).fillna(0.0).to_numpy(float)
    n_cut = len(demands)
    sol = Solution(
        x=solution.x[a_rows] if len(a_rows) else np.zeros(0), w=w, y=y,
        supply_dual=part(solution.supply_dual, s_rows, len(supplies)),
        demand_dual=part(solution.demand_dual, d_rows, n_cut),
        objective=float("nan"), objective_bau=float("nan"), status=solution.status,
        termination=solution.termination, solver=solution.solver,
        share_dual=part(solution.share_dual, d_rows, n_cut), quality_dual=quality_dual,
        parameters=dict(solution.parameters), z=z, intake_dual=part(solution.intake_dual, d_rows, n_cut),
        facility_intake_dual=facility_dual, permit_dual=np.zeros(arrays.permit.n_rows),
    )
    return cut, sol


def period_results_view(region: Region, results: Results, name: str) -> Results:
    """Period ``name`` of ``results`` (a multi-period optimum) as Results for the map and report."""
    from symbiosis.results import evaluate

    period = period_name(results, name)
    periods = results.periods
    ex, solution = getattr(periods, "expanded", None), getattr(periods, "solution", None)
    if ex is None or solution is None:
        raise SymbiosisError(f"--period {name}: these results do not hold the optimum of each period")
    t = [str(p) for p in periods.periods["period"]].index(period)
    cut, sol = _period_cut(ex, solution, t)
    n_sites = int((ex.stores["side"] == "site").sum()) if len(ex.stores) else 0
    view = evaluate(with_site_flows(region, cut, n_sites), cut, sol)
    zero_site_amounts(view, n_sites)
    row = periods.kpis.iloc[t]
    kpis = dict(results.kpis)
    kpis.update(view.kpis)
    for key in PERIOD_KPIS:
        if key in row.index:
            kpis[key] = float(row[key])
    price = float(kpis.get("carbon_price") or 0.0)
    kpis["cost_incl_carbon_bau"] = kpis["cost_bau"] + price * kpis["co2e_bau_t"]
    kpis["cost_incl_carbon_optimum"] = kpis["cost_optimum"] + price * kpis["co2e_optimum_t"]
    kpis["net_saving_incl_carbon"] = kpis["cost_incl_carbon_bau"] - kpis["cost_incl_carbon_optimum"]
    kpis["objective_bau"], kpis["objective_optimum"] = kpis["cost_incl_carbon_bau"], kpis["cost_incl_carbon_optimum"]
    kpis["period"] = period
    kpis["period_days"] = float(periods.periods["days"].iat[t])
    out = copy.copy(view)
    out.kpis = kpis
    out.parameters = {**results.parameters, **view.parameters, "period": period}
    out.periods = replace(periods)  # the year's periods stay in the report's "Over the year" section
    out.reconciliation = results.reconciliation
    return out
