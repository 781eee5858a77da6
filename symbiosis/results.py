"""Results: the optimal exchange network told as tidy tables, KPIs against business as usual, and why not.

The fifth stage of the pipeline (Region, Candidates, Solution → :class:`Results`). ``evaluate`` first runs
``check_solution`` (every supply, demand, share, quality and capacity row and every distance limit is
re-checked from the candidate tables, independently of the model code), then builds: the exchanges (arcs
carrying more than ``tolerance`` t/yr) with their costs, savings, CO2e and an indicative price from the
duals; supplies and demands with exchanged and remaining amounts, shadow prices and, for each supply left
(partly) to its fate, the reason it was not matched, read from the solution's row slacks; per-facility
costs before and after; the KPI record; and the facility balances before and after the exchanges.

Gains convention: material changes hands at zero price; the receiver pays transport and processing and saves
the virgin purchase; the supplier saves the fate cost. Costs in these tables are money only (the carbon
price is not added to them); emissions are reported beside them. The indicative price per tonne is the
supply's dual: what the receiver would pay the supplier for the exchange to leave both at least as well off
as business as usual (negative: the supplier pays the receiver, like a gate fee). See docs/formulation.md.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from symbiosis.balances import ConservationError
from symbiosis.candidates import Candidates
from symbiosis.energy.heat import is_energy
from symbiosis.exchange.model import ExchangeArrays, exchange_arrays
from symbiosis.exchange.solve import Solution
from symbiosis.network import intake
from symbiosis.network.processors import (
    activity_table,
    processor_amounts,
    processor_problems,
    scale_to_activity,
)
from symbiosis.network.substances import trace_region
from symbiosis.region import Region

logger = logging.getLogger(__name__)

__all__ = ["ConservationError", "REASONS", "Results", "check_solution", "evaluate", "why_not_matched"]

DIVERTED_FATE_KINDS = ("landfill", "incineration")
REASONS = (
    "fully_exchanged", "no_compatible_demand", "beyond_distance", "quality_screen", "not_economic",
    "arc_capacity_binding", "receiver_amount_exhausted", "receiver_share_exhausted", "quality_limit_binding",
    "intake_full", "no_permit", "permit_full", "too_cold", "too_far_for_steam", "connection_not_built",
)


@dataclass
class Results:
    """Everything a report, map or export reads (columns in docs/architecture.md)."""

    exchanges: pd.DataFrame
    supplies: pd.DataFrame
    demands: pd.DataFrame
    facilities: pd.DataFrame
    kpis: dict[str, Any]
    balances: Any
    balances_after: Any
    parameters: dict[str, Any] = field(default_factory=dict)
    #: Processors' activity, BAU and optimum (symbiosis.network.processors.activity_table); empty without any.
    processors: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: Substances traced by mass through the optimum, and outputs above their guarantee
    #: (symbiosis.network.substances; columns in docs/architecture.md).
    substances: pd.DataFrame = field(default_factory=pd.DataFrame)
    substance_warnings: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: Permitted tonnages per (facility, EWC code), what the optimum uses of each and its dual
    #: (``permit_table``; empty without tonnages).
    permit_limits: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: Exchanges a permit change would allow, and their worth (symbiosis.network.permits.opportunities).
    permit_opportunities: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: Per-period tables of a region with periods or stores (symbiosis.periods.solve.PeriodResults), else None.
    periods: Any = None
    #: The network reconciliation the run optimised on (``optimise(..., reconciled=True)``), else None
    #: (symbiosis.account.reconcile.NetworkReconciliation).
    reconciliation: Any = None
    #: Every candidate arc with its flow and reduced cost, read in batches (``optimise(..., arcs=True)``:
    #: symbiosis.outputs.arcs.WholeArcs or TiledArcs, written as candidates.csv / .parquet), else None.
    arcs: Any = None


# --- the post-solve check ------------------------------------------------------------------------------


def check_solution(candidates: Candidates, solution: Solution, tol: float = 1e-6) -> None:
    """Raise :class:`ConservationError` listing every constraint the solution breaks, with its figures.

    Checked from the candidate tables directly (not from the model's index sets): supply rows
    Σx + w = a, demand rows Σρx + y = r, share Σρx ≤ σr, every quality bound on the physical blend, arc
    capacities, non-negativity, and that no arc carrying flow (x > tol) is longer than its
    ``max_distance_km``. Tolerances are relative: ``tol · max(1, scale)`` with the row's own magnitude.
    """
    sup, dem, arcs = candidates.supplies, candidates.demands, candidates.arcs
    x, w, y = (np.asarray(v, dtype=float) for v in (solution.x, solution.w, solution.y))
    problems: list[str] = []
    if len(x) != len(arcs) or len(w) != len(sup) or len(y) != len(dem):
        raise ConservationError(
            f"solution does not align with the candidates: {len(x)} x for {len(arcs)} arcs, {len(w)} w for "
            f"{len(sup)} supplies, {len(y)} y for {len(dem)} demands")
    for name, values, ids in (("x", x, arcs.get("supply_id", pd.Series(dtype=str)).astype(str) + "->"
                               + arcs.get("demand_id", pd.Series(dtype=str)).astype(str)),
                              ("w", w, sup["supply_id"]), ("y", y, dem["demand_id"])):
        negative = np.flatnonzero(values < -tol * np.maximum(1.0, np.abs(values)))
        problems += [f"{name}[{ids.iloc[i]}] = {values[i]:.6g} < 0" for i in negative[:10]]

    s_idx = arcs["s"].to_numpy(np.int64) if len(arcs) else np.zeros(0, np.int64)
    d_idx = arcs["d"].to_numpy(np.int64) if len(arcs) else np.zeros(0, np.int64)
    ratio = arcs["ratio"].to_numpy(float) if len(arcs) else np.zeros(0)
    shipped = np.bincount(s_idx, weights=x, minlength=len(sup))
    replaced = np.bincount(d_idx, weights=ratio * x, minlength=len(dem))
    received = np.bincount(d_idx, weights=x, minlength=len(dem))
    # Processor rows: amounts follow the activity z (symbiosis.network.processors); fixed elsewhere.
    z = getattr(solution, "z", None)
    a, r = processor_amounts(candidates, z)
    problems += processor_problems(candidates, x, w, y, z, tol)

    gap = shipped + w - a
    for i in np.flatnonzero(np.abs(gap) > tol * np.maximum(1.0, np.abs(a))):
        problems.append(f"supply {sup['supply_id'].iloc[i]}: shipped {shipped[i]:.6g} + to fate {w[i]:.6g} "
                        f"= {shipped[i] + w[i]:.6g} t/yr, amount {a[i]:.6g} (gap {gap[i]:.3g})")
    gap = replaced + y - r
    for j in np.flatnonzero(np.abs(gap) > tol * np.maximum(1.0, np.abs(r))):
        problems.append(f"demand {dem['demand_id'].iloc[j]}: replaced {replaced[j]:.6g} + virgin {y[j]:.6g} "
                        f"= {replaced[j] + y[j]:.6g} t/yr, amount {r[j]:.6g} (gap {gap[j]:.3g})")
    share = pd.to_numeric(dem["max_secondary_share"], errors="coerce").fillna(1.0).to_numpy(float)
    excess = replaced - share * r
    for j in np.flatnonzero(excess > tol * np.maximum(1.0, np.abs(r))):
        problems.append(f"demand {dem['demand_id'].iloc[j]}: secondary {replaced[j]:.6g} t/yr exceeds its share "
                        f"{share[j]:.6g} × {r[j]:.6g} = {share[j] * r[j]:.6g}")

    if len(arcs):
        cap = pd.to_numeric(arcs["capacity_t_per_yr"], errors="coerce").to_numpy(float)
        over = np.flatnonzero(~np.isnan(cap) & (x > cap + tol * np.maximum(1.0, np.nan_to_num(cap))))
        problems += [f"arc {arcs['supply_id'].iloc[k]}->{arcs['demand_id'].iloc[k]}: {x[k]:.6g} t/yr over its "
                     f"capacity {cap[k]:.6g}" for k in over]
        dist = arcs["distance_km"].to_numpy(float)
        limit = pd.to_numeric(arcs["max_distance_km"], errors="coerce").to_numpy(float)
        far = np.flatnonzero((x > tol) & ~np.isnan(limit) & (dist > limit * (1 + 1e-9)))
        problems += [f"arc {arcs['supply_id'].iloc[k]}->{arcs['demand_id'].iloc[k]} carries {x[k]:.6g} t/yr "
                     f"over {dist[k]:.6g} km, beyond its limit of {limit[k]:.6g} km" for k in far]

    problems += _quality_problems(candidates, x, y, received, tol)
    problems += _intake_problems(candidates, d_idx, received, tol)
    problems += _permit_problems(candidates, x, tol)
    problems += _connection_problems(candidates, solution, x, tol)
    if problems:
        head = f"the exchange solution breaks {len(problems)} constraint(s) (tolerance {tol:g}):"
        raise ConservationError("\n".join([head, *(f"  - {p}" for p in problems)]))


def _intake_problems(candidates: Candidates, d_idx: np.ndarray, received: np.ndarray, tol: float) -> list[str]:
    """Tonnes received per demand and per facility within their intake limits (symbiosis.network.intake)."""
    dem = candidates.demands
    problems: list[str] = []
    limit = intake.demand_limits(dem)
    over = np.flatnonzero(~np.isnan(limit) & (received > limit + tol * np.maximum(1.0, np.nan_to_num(limit))))
    problems += [f"demand {dem['demand_id'].iloc[j]}: receives {received[j]:.6g} t/yr, over its intake limit "
                 f"{limit[j]:.6g}" for j in over[:10]]
    f_limit = pd.to_numeric(dem.get(intake.FACILITY_LIMIT, pd.Series(np.nan, index=dem.index)),
                            errors="coerce").to_numpy(float)
    if len(dem) and not np.isnan(f_limit).all():
        per = pd.DataFrame({"f": dem["facility_id"].astype(str).to_numpy(), "got": received, "limit": f_limit})
        per = per[~np.isnan(per["limit"])].groupby("f").agg(got=("got", "sum"), limit=("limit", "min"))
        bad = per[per["got"] > per["limit"] + tol * np.maximum(1.0, per["limit"])]
        problems += [f"facility {f}: receives {r.got:.6g} t/yr, over its intake capacity {r.limit:.6g}"
                     for f, r in bad.head(10).iterrows()]
    return problems


def _permit_received(candidates: Candidates, x: np.ndarray) -> pd.DataFrame:
    """Per (facility, EWC code) with a permitted tonnage: ``max_t_per_yr`` and ``received_t_per_yr``, the
    tonnes on arcs of streams needing a permit with that code into that facility (from the raw tables)."""
    table = getattr(candidates, "permit_limits", None)
    columns = ["facility_id", "ewc_code", "max_t_per_yr", "received_t_per_yr"]
    if table is None or len(table) == 0:
        return pd.DataFrame(columns=columns)
    sup, arcs = candidates.supplies, candidates.arcs
    got = pd.Series(dtype=float)
    if len(arcs) and "needs_permit" in sup and "ewc_code" in sup:
        s = arcs["s"].to_numpy(np.int64)
        needs = sup["needs_permit"].fillna(False).to_numpy(bool)[s]
        got = pd.Series(x[needs]).groupby([arcs["demand_facility"].astype(str).to_numpy()[needs],
                                           sup["ewc_code"].astype(str).to_numpy()[s[needs]]]).sum()
    out = table[["facility_id", "ewc_code", "max_t_per_yr"]].astype({"facility_id": str, "ewc_code": str}).copy()
    key = pd.MultiIndex.from_frame(out[["facility_id", "ewc_code"]])
    out["received_t_per_yr"] = got.reindex(key).fillna(0.0).to_numpy(float) if len(got) else 0.0
    return out[columns].reset_index(drop=True)


def _permit_problems(candidates: Candidates, x: np.ndarray, tol: float) -> list[str]:
    """Tonnes received under each permit within its permitted tonnage (``permits.max_t_per_yr``)."""
    per = _permit_received(candidates, x)
    limit = per["max_t_per_yr"].to_numpy(float)
    bad = per[per["received_t_per_yr"].to_numpy(float) > limit + tol * np.maximum(1.0, limit)]
    return [f"facility {r.facility_id}: receives {r.received_t_per_yr:.6g} t/yr of EWC {r.ewc_code}, over its "
            f"permitted {r.max_t_per_yr:.6g}" for r in bad.head(10).itertuples()]


def permit_table(candidates: Candidates, arrays: ExchangeArrays, solution: Solution) -> pd.DataFrame:
    """Per permitted tonnage: ``facility_id, ewc_code, max_t_per_yr, received_t_per_yr, permit_dual_per_t``
    (value of one more permitted tonne, objective units; 0 where the model has no row: no arc under it)."""
    table = _permit_received(candidates, np.asarray(solution.x, dtype=float))
    dual = np.asarray(solution.permit_dual, dtype=float)
    if len(dual) != arrays.permit.n_rows:
        dual = np.zeros(arrays.permit.n_rows)
    published = pd.Series(dual, index=pd.MultiIndex.from_arrays(
        [arrays.permit_facility.astype(str), arrays.permit_code.astype(str)]))
    key = pd.MultiIndex.from_frame(table[["facility_id", "ewc_code"]])
    table["permit_dual_per_t"] = published.reindex(key).fillna(0.0).to_numpy(float) if len(published) else 0.0
    return table


def _connection_problems(candidates: Candidates, solution: Solution, x: np.ndarray, tol: float) -> list[str]:
    """Mixed-integer mode: no flow on a connection not built, and a built one at least its ``min_flow``."""
    mip = solution.parameters.get("mip") or {}
    arcs = candidates.arcs
    if "built" not in mip or "fixed_cost_per_yr" not in arcs.columns:
        return []
    fixed = pd.to_numeric(arcs["fixed_cost_per_yr"], errors="coerce").to_numpy(float)
    least = pd.to_numeric(arcs.get("min_flow", pd.Series(0.0, index=arcs.index)), errors="coerce").fillna(0.0)
    least = least.to_numpy(float)
    built = np.zeros(len(arcs), dtype=bool)
    built[np.asarray(mip["built"], dtype=np.int64)] = True
    decided = ~np.isnan(fixed) | (least > 0)
    problems = [f"arc {arcs['supply_id'].iloc[k]}->{arcs['demand_id'].iloc[k]} carries {x[k]:.6g} but its "
                f"connection is not built" for k in np.flatnonzero(decided & ~built & (x > tol))[:10]]
    short = decided & built & (x < least - tol * np.maximum(1.0, least))
    problems += [f"arc {arcs['supply_id'].iloc[k]}->{arcs['demand_id'].iloc[k]} carries {x[k]:.6g}, below its "
                 f"minimum size {least[k]:.6g}" for k in np.flatnonzero(short)[:10]]
    return problems


def _quality_problems(candidates: Candidates, x: np.ndarray, y: np.ndarray, received: np.ndarray,
                      tol: float) -> list[str]:
    """Each bounded (demand, parameter): the blend's value (Σ c x + c^v y) / (Σ x + y) within the bound."""
    dq, sq, arcs = candidates.demand_quality, candidates.supply_quality, candidates.arcs
    if dq is None or dq.empty or not len(arcs):
        return []
    terms = pd.DataFrame({"s": arcs["s"].to_numpy(np.int64), "d": arcs["d"].to_numpy(np.int64), "x": x})
    # One term per arc and bounded parameter, even when a demand bounds a parameter both ways (a max and a min).
    bounded = dq[["d", "parameter"]].drop_duplicates()
    terms = terms[terms["x"] > 0].merge(bounded, on="d").merge(
        sq[["s", "parameter", "value"]], on=["s", "parameter"], how="left")
    problems: list[str] = []
    missing = terms[terms["value"].isna()]
    problems += [f"arc into demand position {r.d} carries supply position {r.s} with no measurement of "
                 f"{r.parameter}" for r in missing.head(10).itertuples()]
    terms["cx"] = terms["value"] * terms["x"]
    content = terms.groupby(["d", "parameter"], as_index=False)["cx"].sum()
    rows = dq.merge(content, on=["d", "parameter"], how="left").fillna({"cx": 0.0})
    demand_ids = candidates.demands["demand_id"].to_numpy()
    for r in rows.itertuples():
        secondary = received[r.d]
        total = secondary + y[r.d]
        if total <= 0 or secondary <= tol:
            continue
        amount = r.cx + r.virgin_value * y[r.d]
        slack = (r.limit * total - amount) if r.bound == "max" else (amount - r.limit * total)
        scale = max(1.0, abs(r.limit) * total, abs(amount))
        if slack < -tol * scale:
            blend = amount / total
            sign = "≤" if r.bound == "max" else "≥"
            problems.append(f"demand {demand_ids[r.d]}: blend {r.parameter} = {blend:.6g}, bound {sign} "
                            f"{r.limit:.6g} ({secondary:.6g} t secondary, {y[r.d]:.6g} t virgin)")
    return problems


# --- evaluate ------------------------------------------------------------------------------------------


def evaluate(region: Region, candidates: Candidates, solution: Solution, *, tolerance: float = 1e-6) -> Results:
    """Tables, KPIs, balances and "why not matched" for a solved exchange (see the module docstring)."""
    from symbiosis.balances import balances, balances_after, check_conservation

    check_solution(candidates, solution, tolerance)
    arrays = exchange_arrays(candidates)
    x, w, y = solution.x, solution.w, solution.y
    sup, dem = candidates.supplies, candidates.demands

    exchanges = _exchanges(candidates, arrays, solution, tolerance)
    shipped = np.bincount(arrays.arc_s, weights=x, minlength=arrays.n_supplies)
    replaced = np.bincount(arrays.arc_d, weights=arrays.ratio * x, minlength=arrays.n_demands)
    received = np.bincount(arrays.arc_d, weights=x, minlength=arrays.n_demands)

    supplies = sup.copy()
    s_energy, d_energy = is_energy(sup), is_energy(dem)
    # A processor's outputs and intake follow its activity: with processors, the amounts at the optimum
    # beside the business-as-usual ones (equal except on processor rows).
    amount_s, amount_r = processor_amounts(candidates, solution.z)
    if arrays.n_processors:
        supplies["amount_optimum_t_per_yr"] = np.where(s_energy, np.nan, amount_s)
    supplies["exchanged_t_per_yr"] = np.where(s_energy, np.nan, shipped)
    supplies["to_fate_t_per_yr"] = np.where(s_energy, np.nan, w)
    supplies["shadow_price_per_t"] = solution.supply_dual
    reasons = why_not_matched(candidates, solution, tolerance=tolerance, arrays=arrays)
    supplies["reason"] = reasons["reason"].to_numpy()
    supplies["reason_detail"] = reasons["reason_detail"].to_numpy()

    demands = dem.copy()
    if arrays.n_processors:
        demands["amount_optimum_t_per_yr"] = np.where(d_energy, np.nan, amount_r)
    demands["secondary_t_per_yr"] = np.where(d_energy, np.nan, replaced)
    demands["secondary_received_t_per_yr"] = np.where(d_energy, np.nan, received)
    demands["virgin_t_per_yr"] = np.where(d_energy, np.nan, y)
    demands["shadow_price_per_t"] = solution.demand_dual
    demands["intake_limit_t_per_yr"] = arrays.intake_limit
    demands["intake_dual_per_t"] = (solution.intake_dual if len(solution.intake_dual) == arrays.n_demands
                                    else np.zeros(arrays.n_demands))
    # The same figures in MWh on energy rows (NaN on mass rows); shadow prices there are per MWh.
    supplies["exchanged_mwh_per_yr"] = np.where(s_energy, shipped, np.nan)
    supplies["to_fate_mwh_per_yr"] = np.where(s_energy, w, np.nan)
    demands["secondary_mwh_per_yr"] = np.where(d_energy, replaced, np.nan)
    demands["virgin_mwh_per_yr"] = np.where(d_energy, y, np.nan)

    facilities = _facilities(region, candidates, arrays, solution, exchanges)
    facilities = _facility_intake(facilities, arrays, solution, received, candidates)
    kpis = _kpis(region, candidates, arrays, solution, exchanges, facilities)
    before = balances(region)
    running = scale_to_activity(region, candidates, solution.z)  # processors at their optimum activity
    after = balances_after(running, exchanges)
    check_conservation(before if running is region else balances(running), after)
    parameters = {**(candidates.parameters or {}), **solution.parameters, "tolerance": tolerance}
    tracing = trace_region(region, candidates, solution)
    logger.info("results: %d exchanges, cost %.6g → %.6g, CO2e %.6g → %.6g t", kpis["n_exchanges"],
                kpis["cost_bau"], kpis["cost_optimum"], kpis["co2e_bau_t"], kpis["co2e_optimum_t"])
    return Results(exchanges=exchanges, supplies=supplies, demands=demands, facilities=facilities, kpis=kpis,
                   balances=before, balances_after=after, parameters=parameters,
                   processors=activity_table(candidates, solution.z), substances=tracing.table,
                   substance_warnings=tracing.warnings, permit_limits=permit_table(candidates, arrays, solution))


EXCHANGE_COLUMNS = [
    "supply_id", "demand_id", "supply_facility", "demand_facility", "material", "primary_material",
    "amount_t_per_yr", "replaced_t_per_yr", "distance_km", "tkm_per_yr", "transport_cost", "processing_cost",
    "fate_cost_avoided", "virgin_cost_avoided", "saving", "co2e_t_per_yr", "co2e_avoided_t_per_yr",
    "indicative_price_per_t", "quantity", "amount_mwh_per_yr", "delivered_mwh_per_yr",
    "heat_pump_electricity_mwh_per_yr",
]


def _exchanges(candidates: Candidates, arrays: ExchangeArrays, solution: Solution, tol: float) -> pd.DataFrame:
    arcs = candidates.arcs
    used = np.flatnonzero(solution.x > tol)
    x = solution.x[used]
    s, d = arrays.arc_s[used], arrays.arc_d[used]
    ratio = arrays.ratio[used]
    arc_co2e = arrays.arc_co2e[used] * x
    co2e_avoided = (arrays.fate_co2e[s] + ratio * arrays.virgin_co2e[d]) * x - arc_co2e
    transport = arcs["transport_cost_per_t"].to_numpy(float)[used] * x
    processing = arcs["processing_cost_per_t"].to_numpy(float)[used] * x
    fate_avoided = arrays.fate_cost[s] * x
    virgin_avoided = arrays.virgin_price[d] * ratio * x
    table = pd.DataFrame({
        "supply_id": arcs["supply_id"].to_numpy()[used],
        "demand_id": arcs["demand_id"].to_numpy()[used],
        "supply_facility": arcs["supply_facility"].to_numpy()[used],
        "demand_facility": arcs["demand_facility"].to_numpy()[used],
        "material": candidates.supplies["material"].to_numpy()[s],
        "primary_material": candidates.demands["material"].to_numpy()[d],
        "amount_t_per_yr": x,
        "replaced_t_per_yr": ratio * x,
        "distance_km": arrays.distance_km[used],
        "tkm_per_yr": arrays.distance_km[used] * x,
        "transport_cost": transport,
        "processing_cost": processing,
        "fate_cost_avoided": fate_avoided,
        "virgin_cost_avoided": virgin_avoided,
        "saving": fate_avoided + virgin_avoided - transport - processing,
        "co2e_t_per_yr": arc_co2e,
        "co2e_avoided_t_per_yr": co2e_avoided,
        "indicative_price_per_t": np.asarray(solution.supply_dual, dtype=float)[s],
    }, columns=EXCHANGE_COLUMNS)
    # Energy exchanges (symbiosis.energy) are in MWh: their tonne columns are NaN, never MWh under a t name.
    energy = is_energy(candidates.supplies)[s]
    table["quantity"] = np.where(energy, "energy", "mass")
    table["amount_mwh_per_yr"] = np.where(energy, x, np.nan)
    table["delivered_mwh_per_yr"] = np.where(energy, ratio * x, np.nan)
    electricity = (arcs["electricity_mwh_per_mwh"].to_numpy(float)[used] if "electricity_mwh_per_mwh" in arcs.columns
                   else np.zeros(len(used)))
    table["heat_pump_electricity_mwh_per_yr"] = np.where(energy, electricity * x, np.nan)
    for column in ("amount_t_per_yr", "replaced_t_per_yr", "tkm_per_yr"):
        table[column] = np.where(energy, np.nan, table[column].to_numpy(float))
    return table.sort_values("saving", ascending=False, kind="stable").reset_index(drop=True)


def _facilities(region: Region, candidates: Candidates, arrays: ExchangeArrays, solution: Solution,
                exchanges: pd.DataFrame) -> pd.DataFrame:
    """Per facility: money cost and CO2e of its exchangeable streams, BAU vs optimum (gains convention)."""
    x, w, y = solution.x, solution.w, solution.y
    sup_fac = candidates.supplies["facility_id"].to_numpy()
    dem_fac = candidates.demands["facility_id"].to_numpy()
    arc_dem_fac = dem_fac[arrays.arc_d]
    parts = [
        pd.DataFrame({"facility_id": sup_fac,
                      "cost_bau": arrays.fate_cost * arrays.supply_amount,
                      "cost_optimum": arrays.fate_cost * w,
                      "co2e_bau_t": arrays.fate_co2e * arrays.supply_amount,
                      "co2e_optimum_t": arrays.fate_co2e * w}),
        pd.DataFrame({"facility_id": dem_fac,
                      "cost_bau": arrays.virgin_price * arrays.demand_amount,
                      "cost_optimum": arrays.virgin_price * y,
                      "co2e_bau_t": arrays.virgin_co2e * arrays.demand_amount,
                      "co2e_optimum_t": arrays.virgin_co2e * y}),
        pd.DataFrame({"facility_id": arc_dem_fac, "cost_bau": 0.0, "cost_optimum": arrays.arc_cost * x,
                      "co2e_bau_t": 0.0, "co2e_optimum_t": arrays.arc_co2e * x}),
    ]
    if arrays.n_processors:  # a processor's operating cost per unit of activity
        parts.append(pd.DataFrame({"facility_id": candidates.processors["facility_id"].to_numpy(),  # type: ignore[index]
                                   "cost_bau": arrays.processor_cost * arrays.processor_bau,
                                   "cost_optimum": arrays.processor_cost * solution.z,
                                   "co2e_bau_t": 0.0, "co2e_optimum_t": 0.0}))
    sums = pd.concat(parts, ignore_index=True).groupby("facility_id").sum()
    pairs = pd.concat([exchanges[["supply_facility"]].rename(columns={"supply_facility": "facility_id"})
                       .assign(k=np.arange(len(exchanges))),
                       exchanges[["demand_facility"]].rename(columns={"demand_facility": "facility_id"})
                       .assign(k=np.arange(len(exchanges)))]).drop_duplicates()
    n_ex = pairs.groupby("facility_id")["k"].nunique()
    table = region.facilities.copy()
    ids = table["facility_id"]
    for col in ("cost_bau", "cost_optimum", "co2e_bau_t", "co2e_optimum_t"):
        table[col] = ids.map(sums[col]).fillna(0.0).to_numpy(float)
    table["gain"] = table["cost_bau"] - table["cost_optimum"]
    # Settling each exchange at its indicative price (the supply's dual) moves money from receiver to
    # supplier; at those prices no participant is worse off than under business as usual (LP duality).
    # The indicative price stands in for any negotiated price, the gate fee among them: it is settled on the
    # gain before gate fees.
    payment = exchanges["indicative_price_per_t"] * exchanges["amount_t_per_yr"]
    received = payment.groupby(exchanges["supply_facility"]).sum()
    paid = payment.groupby(exchanges["demand_facility"]).sum()
    table["gain_at_indicative_prices"] = (table["gain"] + ids.map(received).fillna(0.0)
                                          - ids.map(paid).fillna(0.0)).to_numpy(float)
    # Gate fees: a processor charges gate_fee_per_t on every tonne it takes in on an arc; the supplier pays
    # it. A transfer between two firms: it moves gain between them and cancels in the sum.
    fee_paid, fee_received = _gate_fees(candidates, arrays, x)
    table["gate_fees_paid"] = ids.astype(str).map(fee_paid).fillna(0.0).to_numpy(float)
    table["gate_fees_received"] = ids.astype(str).map(fee_received).fillna(0.0).to_numpy(float)
    table["cost_optimum"] = table["cost_optimum"] + table["gate_fees_paid"] - table["gate_fees_received"]
    table["gain"] = table["cost_bau"] - table["cost_optimum"]
    table["n_exchanges"] = ids.map(n_ex).fillna(0).astype(np.int64).to_numpy()
    unknown = sorted(set(sums.index) - set(ids))
    if unknown:
        logger.warning("candidates name facilities absent from the region: %s", unknown[:10])
    return table


def _gate_fees(candidates: Candidates, arrays: ExchangeArrays, x: np.ndarray) -> tuple[pd.Series, pd.Series]:
    """(paid per supplying facility, received per processor facility), currency/yr: ``gate_fee_per_t`` of the
    processor × the tonnes on each arc into one of its intake rows (mass rows only: the fee is per tonne)."""
    empty = pd.Series(dtype=float)
    processors, links = candidates.processors, candidates.processor_links
    if not arrays.n_processors or processors is None or links is None or "gate_fee_per_t" not in processors:
        return empty, empty
    fee = pd.to_numeric(processors["gate_fee_per_t"], errors="coerce").fillna(0.0).to_numpy(float)
    intake = links[links["side"] == "in"]
    fee_of_demand = np.zeros(arrays.n_demands)
    np.add.at(fee_of_demand, intake["row"].to_numpy(np.int64), fee[intake["p"].to_numpy(np.int64)])
    p_of_demand = np.full(arrays.n_demands, -1, np.int64)
    p_of_demand[intake["row"].to_numpy(np.int64)] = intake["p"].to_numpy(np.int64)
    mass = ~is_energy(candidates.supplies)[arrays.arc_s]
    charged = np.flatnonzero(mass & (fee_of_demand[arrays.arc_d] != 0.0) & (x > 0.0))
    if len(charged) == 0:
        return empty, empty
    amount = fee_of_demand[arrays.arc_d[charged]] * x[charged]
    payer = candidates.supplies["facility_id"].astype(str).to_numpy()[arrays.arc_s[charged]]
    payee = processors["facility_id"].astype(str).to_numpy()[p_of_demand[arrays.arc_d[charged]]]
    return pd.Series(amount).groupby(payer).sum(), pd.Series(amount).groupby(payee).sum()


def _facility_intake(table: pd.DataFrame, arrays: ExchangeArrays, solution: Solution, received: np.ndarray,
                     candidates: Candidates) -> pd.DataFrame:
    """Per facility: secondary t/yr received, its intake capacity (NaN: none) and that row's dual."""
    ids = table["facility_id"].astype(str)
    got = pd.Series(received).groupby(candidates.demands["facility_id"].astype(str).to_numpy()).sum()
    limit = pd.Series(arrays.facility_intake_limit, index=arrays.facility_intake_ids.astype(str))
    dual = np.asarray(solution.facility_intake_dual, dtype=float)
    dual = pd.Series(dual if len(dual) == len(limit) else np.zeros(len(limit)), index=limit.index)
    table["secondary_received_t_per_yr"] = ids.map(got).fillna(0.0).to_numpy(float)
    given = (pd.to_numeric(table["intake_capacity_t_per_yr"], errors="coerce") if "intake_capacity_t_per_yr" in table
             else pd.Series(np.nan, index=table.index))
    table["intake_capacity_t_per_yr"] = ids.map(limit).astype(float).fillna(given).to_numpy(float)
    table["intake_dual_per_t"] = ids.map(dual).fillna(0.0).to_numpy(float)
    return table


def _kpis(region: Region, candidates: Candidates, arrays: ExchangeArrays, solution: Solution,
          exchanges: pd.DataFrame, facilities: pd.DataFrame) -> dict[str, Any]:
    x, w, y = solution.x, solution.w, solution.y
    diverted = processor_amounts(candidates, solution.z)[0] - w
    fate_kind = candidates.supplies["fate_kind"].astype(str).to_numpy()
    landfill = float(diverted[fate_kind == "landfill"].sum())
    incineration = float(diverted[fate_kind == "incineration"].sum())
    replaced = np.bincount(arrays.arc_d, weights=arrays.ratio * x, minlength=arrays.n_demands)
    # Water saved counts fresh water only (class "water"); seawater (class "seawater") is no scarce
    # resource, and neither counts as virgin *material* avoided.
    material_class = candidates.demands["material_class"].astype(str).to_numpy()
    is_water = material_class == "water"
    is_material = ~np.isin(material_class, ["water", "seawater", "energy"]) & ~is_energy(candidates.demands)
    density = pd.to_numeric(candidates.demands["density_t_per_m3"], errors="coerce").to_numpy(float)
    water_rows = is_water & (replaced > 0)
    if (water_rows & ~(density > 0)).any():
        raise ValueError("a water demand lacks a positive density_t_per_m3; cannot report water saved in m³")
    water_m3 = float((replaced[water_rows] / density[water_rows]).sum())
    columns = np.concatenate([x, w, y, solution.z if len(solution.z) else arrays.processor_bau])
    bau = arrays.bau_columns()
    cost_bau = float(arrays.cost_vector() @ bau)
    mip = solution.parameters.get("mip") or {}
    cost_opt = float(arrays.cost_vector() @ columns) + float(mip.get("fixed_cost", 0.0))  # MIP: fixed costs paid
    co2e_bau = float(arrays.co2e_vector() @ bau)
    co2e_opt = float(arrays.co2e_vector() @ columns)
    participating = set(exchanges["supply_facility"]) | set(exchanges["demand_facility"])
    currency = getattr(region, "currency", None) or (candidates.parameters or {}).get("currency", "EUR")
    carbon_price = float(solution.parameters.get("carbon_price", 0.0))
    return {
        "waste_diverted_t": landfill + incineration,
        "landfill_diverted_t": landfill,
        "incineration_diverted_t": incineration,
        "virgin_avoided_t": float(replaced[is_material].sum()),
        "water_saved_m3": water_m3,
        "co2e_bau_t": co2e_bau,
        "co2e_optimum_t": co2e_opt,
        "co2e_avoided_t": co2e_bau - co2e_opt,
        "cost_bau": cost_bau,
        "cost_optimum": cost_opt,
        "net_cost_saving": cost_bau - cost_opt,
        "tkm": float((arrays.distance_km * x)[~is_energy(candidates.supplies)[arrays.arc_s]].sum()),
        "n_exchanges": len(exchanges),
        "n_facilities_participating": len(participating),
        "currency": currency,
        "solver": solution.solver,
        "status": solution.status,
        "carbon_price": carbon_price,
        "objective_bau": float(solution.objective_bau),
        "objective_optimum": float(solution.objective),
        # net_cost_saving is money only; with a carbon price the optimum also weighs carbon cost, so the
        # saving that includes it is reported beside it (the two are equal at carbon price 0).
        "cost_incl_carbon_bau": cost_bau + carbon_price * co2e_bau,
        "cost_incl_carbon_optimum": cost_opt + carbon_price * co2e_opt,
        "net_saving_incl_carbon": (cost_bau - cost_opt) + carbon_price * (co2e_bau - co2e_opt),
        **_energy_kpis(region, candidates, exchanges),
        **({f"mip_{key}": value for key, value in mip.items() if key in (
            "lp_relaxation_objective", "relaxation_gap", "highs_mip_gap", "n_binaries", "n_built", "fixed_cost")}
           if mip else {}),
    }


def _energy_kpis(region: Region, candidates: Candidates, exchanges: pd.DataFrame) -> dict[str, float]:
    """Heat KPIs in MWh (never added to the tonne KPIs): heat shipped, delivered, lost on the way, heat pump
    electricity, fuel avoided (heat replaced × the carrier's fuel per MWh of heat) and CO2e avoided."""
    heat = exchanges[exchanges["quantity"] == "energy"] if "quantity" in exchanges.columns else exchanges.iloc[0:0]
    carriers = region.reference.energy_carriers
    fuel_per_mwh = (heat["primary_material"].map(carriers["fuel_mwh_per_mwh"]).astype(float).fillna(0.0)
                    if not carriers.empty and len(heat) else pd.Series(0.0, index=heat.index))
    shipped = float(heat["amount_mwh_per_yr"].sum()) if len(heat) else 0.0
    delivered = float(heat["delivered_mwh_per_yr"].sum()) if len(heat) else 0.0
    electricity = float(heat["heat_pump_electricity_mwh_per_yr"].sum()) if len(heat) else 0.0
    return {
        "heat_shipped_mwh": shipped,
        "heat_delivered_mwh": delivered,
        "heat_lost_mwh": max(0.0, shipped + electricity - delivered) if len(heat) else 0.0,
        "heat_pump_electricity_mwh": electricity,
        "fuel_avoided_mwh": float((heat["delivered_mwh_per_yr"] * fuel_per_mwh).sum()) if len(heat) else 0.0,
        "heat_co2e_avoided_t": float(heat["co2e_avoided_t_per_yr"].sum()) if len(heat) else 0.0,
        "n_energy_exchanges": len(heat),
    }


# --- why not matched -----------------------------------------------------------------------------------


def _screening_counts(candidates: Candidates) -> pd.DataFrame:
    """Per supply position: n_compatible, n_within_distance, n_quality_fail, nearest_compatible_km."""
    n = len(candidates.supplies)
    out = pd.DataFrame({"n_compatible": np.zeros(n), "n_within_distance": np.full(n, np.nan),
                        "n_quality_fail": np.zeros(n), "nearest_compatible_km": np.full(n, np.nan),
                        "n_beyond_distance": np.full(n, np.nan), "n_no_permit": np.zeros(n),
                        "n_too_far_for_carrier": np.zeros(n), "n_too_cold": np.zeros(n),
                        "is_energy": is_energy(candidates.supplies).astype(float)})
    scr = candidates.screening
    if scr is None or scr.empty:
        return out
    if "s" in scr.columns:
        pos = scr["s"].to_numpy(np.int64)
    else:
        lookup = pd.Series(np.arange(n), index=candidates.supplies["supply_id"].to_numpy())
        pos = scr["supply_id"].map(lookup).to_numpy()
        keep = ~pd.isna(pos)
        scr, pos = scr[keep], pos[keep].astype(np.int64)
    aliases = {"n_quality_fail": ("n_quality_fail", "n_quality_screened"),
               "n_within_distance": ("n_within_distance",), "n_beyond_distance": ("n_beyond_distance",),
               "n_compatible": ("n_compatible",), "nearest_compatible_km": ("nearest_compatible_km",),
               "n_no_permit": ("n_no_permit",), "n_too_far_for_carrier": ("n_too_far_for_carrier",),
               "n_too_cold": ("n_too_cold",)}
    for target, names in aliases.items():
        for name in names:
            if name in scr.columns:
                out.loc[pos, target] = pd.to_numeric(scr[name], errors="coerce").to_numpy(float)
                break
    return out


def why_not_matched(
    candidates: Candidates,
    solution: Solution,
    *,
    tolerance: float = 1e-6,
    arrays: ExchangeArrays | None = None,
) -> pd.DataFrame:
    """Per supply: ``reason`` and ``reason_detail`` for what is left to its fate (rules in formulation.md).

    Without arcs, the screening counts decide (``no_compatible_demand``, ``beyond_distance``,
    ``quality_screen``). With arcs, each arc is judged in turn: an arc whose cost exceeds what it saves
    (objective terms per tonne: arc cost vs fate cost + ratio × virgin price) is ``not_economic``; otherwise
    the constraint that stops more flow on it, read from the row slacks of the solution, checked in this
    order: its capacity; a binding quality row that this supply's quality would push further out (it could
    only come in by displacing better material); the receiver's share row; the receiver's need (y_d = 0).
    The supply's reason is that of its most attractive arc (the smallest cost − saving per tonne).
    """
    arrays = arrays if arrays is not None else exchange_arrays(candidates)
    sup = candidates.supplies
    n_s = arrays.n_supplies
    x, w, y = (np.asarray(v, dtype=float) for v in (solution.x, solution.w, solution.y))
    weights = solution.parameters.get("weights")
    carbon_price = float(solution.parameters.get("carbon_price", 0.0))
    obj = arrays.objective_vector(carbon_price, weights)
    n_a = arrays.n_arcs
    c_arc, c_fate, c_virgin = obj[:n_a], obj[n_a:n_a + n_s], obj[n_a + n_s:n_a + n_s + arrays.n_demands]
    currency = (candidates.parameters or {}).get("currency", "")
    unit = f"{currency}/t".strip("/") if currency else "per t"
    money = "" if not weights or float(dict(weights).get("co2e", 0.0)) == 0.0 else " (weighted objective units)"

    # Row slacks of the blocking constraints, per demand and per quality row.
    replaced = np.bincount(arrays.arc_d, weights=arrays.ratio * x, minlength=arrays.n_demands)
    need = arrays.demand_amount
    amount_exhausted = y <= tolerance * np.maximum(1.0, need)
    share_exhausted = (arrays.share < 1.0) & (replaced >= arrays.share * need - tolerance * np.maximum(1.0, need))
    q = arrays.quality
    q_activity = q.activity(x)
    meta = arrays.quality_rows
    if q.n_rows:
        q_d = meta["d"].to_numpy(np.int64)
        is_max = (meta["bound"] == "max").to_numpy()
        activity = q_activity + meta["virgin_coef"].to_numpy(float) * y[q_d]
        received = np.bincount(arrays.arc_d, weights=x, minlength=arrays.n_demands)
        scale = np.maximum(1.0, (np.abs(meta["limit"].to_numpy(float)) + 1.0) * (received[q_d] + y[q_d]))
        q_binding = np.where(is_max, activity >= -tolerance * scale, activity <= tolerance * scale)
    else:
        q_d = np.zeros(0, np.int64)
        is_max = np.zeros(0, bool)
        q_binding = np.zeros(0, bool)
    # For each arc, the binding quality rows its supply would push further out of bounds.
    arc_quality_block = np.zeros(n_a, dtype=bool)
    arc_quality_what: dict[int, str] = {}
    if q.n_rows and len(q.cols):
        row_of_term = q.term_rows()
        adverse = np.where(is_max[row_of_term], q.coefs > 0, q.coefs < 0) & q_binding[row_of_term]
        labels = [f"{p} {b} {v:g}" for p, b, v in zip(meta["parameter"], meta["bound"], meta["limit"],
                                                        strict=True)]
        blocked_arcs, first = np.unique(q.cols[adverse], return_index=True)
        arc_quality_block[blocked_arcs] = True
        arc_quality_what = dict(zip(blocked_arcs.tolist(),
                                    [labels[k] for k in row_of_term[adverse][first].tolist()], strict=True))
    received_d = np.bincount(arrays.arc_d, weights=x, minlength=arrays.n_demands)
    il = arrays.intake_limit if len(arrays.intake_limit) == arrays.n_demands else np.full(arrays.n_demands, np.nan)
    intake_full = ~np.isnan(il) & (received_d >= np.nan_to_num(il) - tolerance * np.maximum(1.0, np.nan_to_num(il)))
    intake_what = {int(j): f"receives {received_d[j]:,.6g} t/yr = its intake limit"
                   for j in np.flatnonzero(intake_full)}
    f_block = arrays.facility_intake
    if f_block.n_rows:
        f_got = f_block.activity(x)
        f_lim = arrays.facility_intake_limit
        f_full = f_got >= f_lim - tolerance * np.maximum(1.0, f_lim)
        row_of_term = f_block.term_rows()
        full_terms = f_full[row_of_term]
        demands_full, first = np.unique(arrays.arc_d[f_block.cols[full_terms]], return_index=True)
        for j, k in zip(demands_full.tolist(), row_of_term[full_terms][first].tolist(), strict=True):
            intake_full[j] = True
            intake_what.setdefault(j, f"facility {arrays.facility_intake_ids[k]} receives {f_got[k]:,.6g} t/yr "
                                      "= its intake capacity")
    # Permitted tonnages (symbiosis.network.permits): arcs under a permit whose tonnage is all used.
    permit_full = np.zeros(n_a, dtype=bool)
    permit_what: dict[int, str] = {}
    p_block = arrays.permit
    if p_block.n_rows:
        p_got = p_block.activity(x)
        p_lim = arrays.permit_limit
        p_full = p_got >= p_lim - tolerance * np.maximum(1.0, p_lim)
        row_of_term = p_block.term_rows()
        full_terms = p_full[row_of_term]
        arcs_full, first = np.unique(p_block.cols[full_terms], return_index=True)
        permit_full[arcs_full] = True
        permit_what = {a: (f"facility {arrays.permit_facility[k]} receives {p_got[k]:,.6g} t/yr of EWC "
                           f"{arrays.permit_code[k]} = its permitted tonnage")
                       for a, k in zip(arcs_full.tolist(), row_of_term[full_terms][first].tolist(), strict=True)}
    capacity = arrays.capacity
    cap0 = np.nan_to_num(capacity)
    at_capacity = ~np.isnan(capacity) & (x >= cap0 - tolerance * np.maximum(1.0, cap0))

    # Mixed-integer mode: arcs whose connection was not built (their fixed cost is not covered).
    not_built = np.zeros(n_a, dtype=bool)
    fixed_cost = np.zeros(n_a)
    mip = solution.parameters.get("mip") or {}
    if "built" in mip and "fixed_cost_per_yr" in candidates.arcs.columns:
        fixed_cost = pd.to_numeric(candidates.arcs["fixed_cost_per_yr"], errors="coerce").to_numpy(float)
        not_built = ~np.isnan(fixed_cost)
        not_built[np.asarray(mip["built"], dtype=np.int64)] = False
    counts = _screening_counts(candidates)
    count_arrays = {col: counts[col].to_numpy(float) for col in counts.columns}
    demand_ids = candidates.demands["demand_id"].to_numpy()
    reason = np.empty(n_s, dtype=object)
    detail = np.empty(n_s, dtype=object)
    out_ptr, out_cols = arrays.out_arcs.ptr, arrays.out_arcs.cols
    for s in range(n_s):
        left = w[s]
        amount = arrays.supply_amount[s]
        if left <= tolerance * max(1.0, abs(amount)):
            reason[s], detail[s] = "fully_exchanged", f"all {amount:,.6g} t/yr exchanged"
            continue
        arcs_out = out_cols[out_ptr[s]:out_ptr[s + 1]]
        if len(arcs_out) == 0:
            reason[s], detail[s] = _screened_reason({k: v[s] for k, v in count_arrays.items()}, left)
            continue
        # Per tonne, objective terms: arc cost minus what it saves (fate cost + ratio × virgin price).
        d_out = arrays.arc_d[arcs_out]
        saving = c_fate[s] + arrays.ratio[arcs_out] * c_virgin[d_out]
        gap = c_arc[arcs_out] - saving
        best = int(np.argmin(gap))
        a = int(arcs_out[best])
        d = int(d_out[best])
        partner = demand_ids[d]
        prefix = f"{left:,.6g} t/yr left to its fate; best partner {partner}: "
        if gap[best] > tolerance * max(1.0, abs(saving[best])):
            reason[s] = "not_economic"
            detail[s] = (prefix + f"arc costs {c_arc[a]:,.4g} {unit}, saves {saving[best]:,.4g} {unit} "
                         f"(fate {c_fate[s]:,.4g} + ratio {arrays.ratio[a]:.4g} × virgin {c_virgin[d]:,.4g}); "
                         f"gap {gap[best]:,.4g} {unit}{money}")
        elif not_built[a]:
            reason[s] = "connection_not_built"
            detail[s] = (prefix + f"saves {-gap[best]:,.4g} {unit}{money}, not enough to pay the connection's fixed "
                         f"cost of {fixed_cost[a]:,.6g} {currency or 'money'}/yr (mixed-integer mode)")
        elif at_capacity[a]:
            reason[s] = "arc_capacity_binding"
            detail[s] = prefix + f"arc at its capacity of {capacity[a]:,.6g} t/yr"
        elif arc_quality_block[a]:
            reason[s] = "quality_limit_binding"
            detail[s] = prefix + f"blend at its limit {arc_quality_what[a]}, which more of this supply breaks"
        elif share_exhausted[d]:
            reason[s] = "receiver_share_exhausted"
            detail[s] = (prefix + f"secondary already {replaced[d]:,.6g} t/yr = max share "
                         f"{arrays.share[d]:.4g} × {need[d]:,.6g} t/yr")
        elif amount_exhausted[d]:
            reason[s] = "receiver_amount_exhausted"
            detail[s] = prefix + f"its need of {need[d]:,.6g} t/yr is fully met by secondary material"
        elif permit_full[a]:
            reason[s] = "permit_full"
            detail[s] = prefix + permit_what[a]
        elif intake_full[d]:
            reason[s] = "intake_full"
            detail[s] = prefix + intake_what[d]
        else:
            # Room on every row, yet not used: another supply serves the receiver at a lower marginal cost.
            reduced = c_arc[a] + solution.supply_dual[s] - arrays.ratio[a] * solution.demand_dual[d]
            reason[s] = "not_economic"
            detail[s] = (prefix + f"saves {-gap[best]:,.4g} {unit} against virgin, but the receiver's marginal "
                         f"cost of need is only {solution.demand_dual[d]:,.4g} {unit} (served by cheaper "
                         f"sources); reduced cost {reduced:,.4g} {unit}{money}")
    energy = is_energy(sup)
    if energy.any():  # energy rows are in MWh: say so in their details
        detail[energy] = [str(text).replace(" t/yr", " MWh/yr").replace(f"{unit} ", f"{unit.replace('/t', '/MWh')} ")
                          .replace("per t", "per MWh") for text in detail[energy]]
    return pd.DataFrame({"supply_id": sup["supply_id"].to_numpy(), "reason": reason, "reason_detail": detail})


def _screened_reason(c: dict[str, float], left: float) -> tuple[str, str]:
    """Reason for a supply with no candidate arc, from the screening counts."""
    n_compatible = int(c["n_compatible"]) if not np.isnan(c["n_compatible"]) else 0
    prefix = f"{left:,.6g} t/yr left to its fate; "
    if n_compatible == 0:
        return "no_compatible_demand", prefix + "no demand in the region uses this material"
    if c.get("is_energy", 0.0) == 1.0:
        n_cold = int(np.nan_to_num(c.get("n_too_cold", 0.0)))
        n_far = int(np.nan_to_num(c.get("n_too_far_for_carrier", 0.0)))
        if n_cold > 0:
            return "too_cold", prefix + (f"{n_cold} demand(s) in reach need heat hotter than this supply and no heat "
                                         "pump can lift it (lift too large)")
        within = c["n_within_distance"]
        if n_far > 0 or (not np.isnan(within) and within == 0):
            nearest = c["nearest_compatible_km"]
            near_text = f"; nearest at {nearest:,.1f} km" if not np.isnan(nearest) else ""
            return "too_far_for_steam", prefix + (f"{n_compatible} compatible demand(s), none within the heat "
                                                  "carrier's reach (energy_carriers.csv)" + near_text)
    within = c["n_within_distance"]
    beyond = c["n_beyond_distance"]
    nearest = c["nearest_compatible_km"]
    near_text = f"; nearest at {nearest:,.1f} km" if not np.isnan(nearest) else ""
    if (not np.isnan(within) and within == 0) or (not np.isnan(beyond) and beyond >= n_compatible):
        return "beyond_distance", prefix + f"{n_compatible} compatible demand(s), none within the distance limit" \
            + near_text
    n_permit = int(c.get("n_no_permit", 0.0)) if not np.isnan(c.get("n_no_permit", 0.0)) else 0
    if n_permit > 0:
        return "no_permit", prefix + (f"{n_permit} compatible receiver(s) within reach hold no permit for this "
                                      "waste's EWC code")
    n_fail = int(c["n_quality_fail"]) if not np.isnan(c["n_quality_fail"]) else 0
    if n_fail > 0:
        return "quality_screen", prefix + (f"{n_fail} compatible demand(s) within distance bound a quality "
                                           "parameter this supply has no measurement of")
    return "no_compatible_demand", prefix + f"{n_compatible} compatible demand(s) but no candidate arc"


def exchanges_of_flows(candidates: Candidates, x: np.ndarray, *, tolerance: float = 1e-9,
                       arrays: ExchangeArrays | None = None) -> pd.DataFrame:
    """The exchange table (``EXCHANGE_COLUMNS``) of given flows ``x`` on the candidate arcs, priced exactly as the
    optimum's exchanges are (fate and virgin costs avoided, transport and processing, CO2e per tonne of the arc).

    For flows that were not optimised, e.g. the exchanges that actually took place (symbiosis.monitor): there is
    no dual, so ``indicative_price_per_t`` is NaN. ``arrays``: the candidates' ExchangeArrays, to reuse.
    """
    arrays = arrays if arrays is not None else exchange_arrays(candidates)
    x = np.asarray(x, dtype=float)
    if x.shape != (arrays.n_arcs,):
        raise ValueError(f"x must have one value per candidate arc ({arrays.n_arcs}), got shape {x.shape}")
    solution = Solution(x=x, w=np.zeros(arrays.n_supplies), y=np.zeros(arrays.n_demands),
                        supply_dual=np.full(arrays.n_supplies, np.nan), demand_dual=np.full(arrays.n_demands, np.nan),
                        objective=float("nan"), objective_bau=float("nan"), status="given", termination="given",
                        solver="none")
    return _exchanges(candidates, arrays, solution, tolerance)
