"""The multi-period exchange: expand, solve with stores, and bring the optimum back to annual Results.

``optimise_periods`` is what ``symbiosis.pipeline.optimise`` calls for a region that declares ``periods:``
or stores. The time-expanded candidates (symbiosis.periods.expand) are solved as one LP with the stores'
families (symbiosis.periods.storage) through the ordinary :class:`~symbiosis.exchange.solve.ExchangeModel`.
The optimum is then summed over the periods onto the base candidates and evaluated by
``symbiosis.results.evaluate`` as any annual optimum, so every annual table and KPI keeps its meaning and is
the sum of its periods; the per-period tables (``PeriodResults``) are added beside it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from symbiosis.candidates import Candidates
from symbiosis.energy.heat import is_energy
from symbiosis.exchange.model import ExchangeArrays, exchange_arrays
from symbiosis.exchange.solve import ExchangeModel, Solution
from symbiosis.periods.expand import PERIOD_MARK, Expanded, capacity_parts, expand, storage_arrays
from symbiosis.periods.sites import (
    IN_SUFFIX,
    OUT_SUFFIX,
    add_sites,
    site_arcs,
    site_stores,
    with_site_flows,
    zero_site_amounts,
)

if TYPE_CHECKING:
    from symbiosis.region import Region
    from symbiosis.results import Results

logger = logging.getLogger(__name__)


@dataclass
class PeriodResults:
    """Per-period tables of a multi-period optimum (columns in docs/architecture.md)."""

    periods: pd.DataFrame
    exchanges: pd.DataFrame
    kpis: pd.DataFrame
    stores: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: The time-expanded candidates and their optimum, kept for a view of one period
    #: (symbiosis.periods.view; ``symbiosis run --period``).
    expanded: Any = None
    solution: Any = None

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (a `compare` worker's results) without the expanded candidates and optimum: they are only
        for a view of one period in this process, and would send every table once per period."""
        return {**self.__dict__, "expanded": None, "solution": None}


class PeriodExchangeModel(ExchangeModel):
    """The exchange model of time-expanded candidates, with the stores' columns and rows."""

    def __init__(self, expanded: Expanded, **options: Any) -> None:
        self.expanded = expanded
        super().__init__(expanded.candidates, **options)

    def _make_arrays(self, candidates: Candidates) -> ExchangeArrays:
        return self.arrays_of(self.expanded, candidates)

    @staticmethod
    def arrays_of(expanded: Expanded, candidates: Candidates | None = None) -> ExchangeArrays:
        """The arrays of ``candidates`` (default: all the expanded ones) with the stores' rows."""
        arrays = exchange_arrays(expanded.candidates if candidates is None else candidates)
        base = expanded.base.supplies
        arrays.storage = storage_arrays(
            expanded, pd.to_numeric(base["fate_cost_per_t"], errors="coerce").to_numpy(float),
            pd.to_numeric(base["fate_co2e_per_t"], errors="coerce").to_numpy(float))
        return arrays


def _weighted(values: np.ndarray, weights: np.ndarray, base: np.ndarray, n: int) -> np.ndarray:
    """Per base row, the mean of ``values`` over its periods weighted by ``weights`` (plain mean if all 0)."""
    if len(base) == n:  # one period: the mean of one value is that value (no rounding)
        return np.asarray(values, dtype=float).copy()
    total = np.bincount(base, weights=weights, minlength=n)
    weighted = np.bincount(base, weights=weights * values, minlength=n)
    plain = np.bincount(base, weights=values, minlength=n) / np.maximum(1, np.bincount(base, minlength=n))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, weighted / np.where(total > 0, total, 1.0), plain)


def store_nets(ex: Expanded, solution: Solution) -> tuple[np.ndarray, np.ndarray]:
    """Per base supply and per base demand, what its stores took in net over the year (put − take)."""
    n_s, n_d = len(ex.base.supplies), len(ex.base.demands)
    if solution.storage is None or ex.stores.empty:
        return np.zeros(n_s), np.zeros(n_d)
    periods = ex.n_periods
    net = (solution.storage["put"] - solution.storage["take"]).reshape(len(ex.stores), periods).sum(axis=1)
    side, row = ex.stores["side"].to_numpy(), ex.stores["row"].to_numpy(np.int64)
    at_s, at_d = side == "supply", side == "demand"  # a site's own rows: site_amounts
    return (np.bincount(row[at_s], weights=net[at_s], minlength=n_s),
            np.bincount(row[at_d], weights=net[at_d], minlength=n_d))


def site_amounts(ex: Expanded, solution: Solution) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per dedicated store site (symbiosis.periods.sites): its supply row, its demand row, and per period
    (sites × periods) what it sent out (take) and took in (put)."""
    stores = ex.stores
    site = (stores["side"] == "site").to_numpy() if len(stores) else np.zeros(0, bool)
    if not site.any() or solution.storage is None:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, ex.n_periods)), np.zeros((0, ex.n_periods))
    periods = ex.n_periods
    take = solution.storage["take"].reshape(len(stores), periods)[site]
    put = solution.storage["put"].reshape(len(stores), periods)[site]
    return (stores["row"].to_numpy(np.int64)[site], stores["demand_row"].to_numpy(np.int64)[site], take, put)


def aggregate(ex: Expanded, solution: Solution, arrays: ExchangeArrays | None = None) -> Solution:
    """The multi-period optimum summed over its periods onto the base candidates.

    x, w, y and z are sums; what a supplier's store took in net over the year (its losses, and any closing
    stock above the opening) counts as left to the supply's fate; what a receiver's store took in net (its
    losses) is added to that demand's annual need by :func:`evaluation_candidates`, so that the annual supply
    and demand balances hold. Duals are annual
    figures: supply and demand duals are the amount-weighted means of the periods'; intake duals are the
    value of one more tonne of annual limit (Σ_t share_t · dual_t); quality duals are summed.
    """
    base = ex.base
    n_s, n_d, n_a = len(base.supplies), len(base.demands), len(base.arcs)
    if arrays is None:
        arrays = exchange_arrays(ex.candidates)
    x = np.bincount(ex.arc_base, weights=solution.x, minlength=n_a) if n_a else np.zeros(0)
    net_s, net_d = store_nets(ex, solution)
    w = np.bincount(ex.supply_base, weights=solution.w, minlength=n_s) + net_s
    y = np.bincount(ex.demand_base, weights=solution.y, minlength=n_d)
    n_p = len(base.processors) if base.processors is not None else 0
    z = solution.z.reshape(ex.n_periods, n_p).sum(axis=0) if n_p and len(solution.z) else solution.z
    supply_dual = _weighted(solution.supply_dual, arrays.supply_amount, ex.supply_base, n_s)
    demand_dual = _weighted(solution.demand_dual, arrays.demand_amount, ex.demand_base, n_d)
    share_dual = _weighted(solution.share_dual, arrays.demand_amount, ex.demand_base, n_d) \
        if len(solution.share_dual) == len(ex.demand_base) else np.zeros(n_d)
    # One more tonne of annual limit is spread over the periods as the limit is: by its profile or by length.
    flow_limit = ex.time.shares(base.demands["demand_id"].astype(str).to_numpy(), by=ex.time.flow_intake_profile)
    intake_dual = np.bincount(ex.demand_base, weights=flow_limit[ex.demand_base, ex.demand_period]
                              * solution.intake_dual, minlength=n_d) \
        if len(solution.intake_dual) == len(ex.demand_base) else np.zeros(n_d)
    base_arrays = exchange_arrays(base)
    quality_dual = np.zeros(base_arrays.quality.n_rows)
    if base_arrays.quality.n_rows and len(solution.quality_dual):
        keys = ["d", "parameter", "bound"]
        expanded_rows = arrays.quality_rows[keys].copy()
        expanded_rows["d"] = ex.demand_base[expanded_rows["d"].to_numpy(np.int64)]
        expanded_rows["dual"] = solution.quality_dual
        summed = expanded_rows.groupby(keys, sort=False)["dual"].sum()
        index = pd.MultiIndex.from_frame(base_arrays.quality_rows[keys])
        quality_dual = summed.reindex(index).fillna(0.0).to_numpy(float)
    facility_dual = np.zeros(base_arrays.facility_intake.n_rows)
    if base_arrays.facility_intake.n_rows and len(solution.facility_intake_dual):
        ids = pd.Series(arrays.facility_intake_ids).astype(str)
        parts = ids.str.rsplit(PERIOD_MARK, n=1, expand=True) if ex.n_periods > 1 else \
            pd.DataFrame({0: ids, 1: "0"})
        period = parts[1].astype(int).to_numpy()
        facility_limit = ex.time.shares(parts[0].to_numpy(), by=ex.time.facility_intake_profile)
        frame = pd.DataFrame({"facility": parts[0], "dual": solution.facility_intake_dual
                              * facility_limit[np.arange(len(period)), period]})
        facility_dual = (frame.groupby("facility")["dual"].sum()
                         .reindex(pd.Series(base_arrays.facility_intake_ids).astype(str)).fillna(0.0).to_numpy(float))
    permit_dual = np.zeros(base_arrays.permit.n_rows)
    if base_arrays.permit.n_rows and len(solution.permit_dual):  # annual rows: the same dual, matched by key
        dual = dict(zip(zip(arrays.permit_facility.tolist(), arrays.permit_code.tolist(), strict=True),
                        solution.permit_dual.tolist(), strict=True))
        permit_dual = np.array([dual.get(key, 0.0) for key in zip(base_arrays.permit_facility.tolist(),
                                                                  base_arrays.permit_code.tolist(), strict=True)])
    return Solution(
        x=x, w=w, y=y, supply_dual=supply_dual, demand_dual=demand_dual, objective=solution.objective,
        objective_bau=solution.objective_bau, status=solution.status, termination=solution.termination,
        solver=solution.solver, timings=dict(solution.timings), share_dual=share_dual, quality_dual=quality_dual,
        co2e_cap_dual=solution.co2e_cap_dual, cost=solution.cost, co2e_t=solution.co2e_t,
        parameters={**solution.parameters, "periods": ex.n_periods, "n_stores": len(ex.stores)},
        z=z, intake_dual=intake_dual, facility_intake_dual=facility_dual, storage=solution.storage,
        permit_dual=permit_dual,
    )


def evaluation_candidates(ex: Expanded, solution: Solution) -> Candidates:
    """The base candidates with each demand's annual need raised by what its receiver's store took in net
    (the delivered material its store lost): evaluated against these, the annual demand balance holds."""
    _, net_d = store_nets(ex, solution)
    s_site, d_site, take, put = site_amounts(ex, solution)
    if not np.any(net_d) and not len(s_site):
        return ex.base
    demands = ex.base.demands.copy()
    energy = is_energy(demands)
    for column, rows in (("amount_t_per_yr", ~energy), ("amount_mwh_per_yr", energy)):
        values = pd.to_numeric(demands[column], errors="coerce").to_numpy(float).copy()
        values[rows] = values[rows] + net_d[rows]
        demands[column] = values
    if not len(s_site):
        return replace(ex.base, demands=demands)
    # A site's demand took in what it put in store over the year, its supply sent out what it drew.
    supplies = ex.base.supplies.copy()
    amount = pd.to_numeric(supplies["amount_t_per_yr"], errors="coerce").to_numpy(float).copy()
    amount[s_site] = take.sum(axis=1)
    supplies["amount_t_per_yr"] = amount
    need = pd.to_numeric(demands["amount_t_per_yr"], errors="coerce").to_numpy(float).copy()
    need[d_site] = put.sum(axis=1)
    demands["amount_t_per_yr"] = need
    return replace(ex.base, supplies=supplies, demands=demands)


def via_store(exchanges: pd.DataFrame, ex: Expanded) -> np.ndarray:
    """Per exchange (rows with ``supply_id``, ``demand_id``), the store site it leaves or enters ("" for a
    direct exchange): a supplier -> site -> receiver exchange is two rows, each marked with the site."""
    sites = ex.stores[ex.stores["side"] == "site"] if len(ex.stores) else ex.stores
    if not len(exchanges):
        return np.zeros(0, dtype=object)
    if not len(sites):
        return np.full(len(exchanges), "", dtype=object)
    ids = sites["store_id"].astype(str)
    out = pd.Series(ids.to_numpy(), index=(ids + OUT_SUFFIX).to_numpy())
    into = pd.Series(ids.to_numpy(), index=(ids + IN_SUFFIX).to_numpy())
    marked = exchanges["supply_id"].astype(str).map(out)
    marked = marked.where(marked.notna(), exchanges["demand_id"].astype(str).map(into))
    return marked.fillna("").to_numpy(dtype=object)


def not_at_the_same_time(ex: Expanded, solution: Solution, tol: float = 1e-6) -> np.ndarray:
    """Base supplies left (partly) to their fate whose every candidate partner needs material only in
    periods when the supply has none, with no store at either end to bridge them (a store site bridges when
    it sends to a receiver that needs material at some time of the year)."""
    base = ex.base
    n_s, n_d = len(base.supplies), len(base.demands)
    if not len(base.arcs) or ex.n_periods == 1:
        return np.zeros(n_s, bool)
    s_share = ex.time.shares(base.supplies["supply_id"].astype(str).to_numpy()) > 0
    d_share = ex.time.shares(base.demands["demand_id"].astype(str).to_numpy()) > 0
    arc_s, arc_d = base.arcs["s"].to_numpy(np.int64), base.arcs["d"].to_numpy(np.int64)
    overlap = (s_share[arc_s] & d_share[arc_d]).any(axis=1)
    stored_s = np.zeros(n_s, bool)
    stored_d = np.zeros(n_d, bool)
    stored_s[ex.stores.loc[ex.stores["side"] == "supply", "row"].to_numpy(np.int64)] = True
    stored_d[ex.stores.loc[ex.stores["side"] == "demand", "row"].to_numpy(np.int64)] = True
    possible = overlap | stored_s[arc_s] | stored_d[arc_d]
    sites = ex.stores[ex.stores["side"] == "site"] if len(ex.stores) else ex.stores
    if len(sites):
        # An arc into a store site bridges the periods only if the site sends to some receiver that needs
        # material at some time of the year (a site takes in every period, so the overlap above always holds).
        needs = np.asarray(d_share.any(axis=1), dtype=bool)
        sends = np.bincount(arc_s[needs[arc_d]], minlength=n_s) > 0
        bridges = np.zeros(n_d, bool)
        site_d = sites["demand_row"].to_numpy(np.int64)
        bridges[site_d] = sends[sites["row"].to_numpy(np.int64)]
        into_site = np.isin(arc_d, site_d)
        possible = np.where(into_site, bridges[arc_d], possible)
    any_arc = np.bincount(arc_s, minlength=n_s) > 0
    any_possible = np.bincount(arc_s, weights=possible.astype(float), minlength=n_s) > 0
    amount = np.abs(np.nan_to_num(exchange_arrays(base).supply_amount))
    return any_arc & ~any_possible & (solution.w > tol * np.maximum(1.0, amount))


def closed_demands(ex: Expanded) -> np.ndarray:
    """Per expanded demand row, whether it can take nothing in its period: its own intake limit or its
    facility's is 0 then, or it is the intake of a processor whose capacity is 0 then (a profile's 0: a
    kiln's month of maintenance)."""
    demands = ex.candidates.demands
    closed = np.zeros(len(demands), bool)
    for column in ("max_intake_t_per_yr", "facility_intake_t_per_yr"):
        if column in demands.columns:
            closed |= pd.to_numeric(demands[column], errors="coerce").to_numpy(float) == 0.0
    processors, links = ex.candidates.processors, ex.candidates.processor_links
    if processors is not None and len(processors) and links is not None and len(links):
        shut = pd.to_numeric(processors["capacity"], errors="coerce").to_numpy(float) == 0.0
        into = links[links["side"] == "in"]
        closed[into["row"].to_numpy(np.int64)[shut[into["p"].to_numpy(np.int64)]]] = True
    return closed


def mostly_off_season(ex: Expanded, solution: Solution, annual: Solution, tol: float = 1e-6
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Base supplies at least half of whose tonnes left to the fate fall in periods when none of their
    candidate receivers needs anything (and no receiver's store could take it), with a detail per supply
    naming those periods and what the supply's own stores carried to later periods."""
    base = ex.base
    n_s = len(base.supplies)
    detail = np.full(n_s, "", dtype=object)
    if not len(base.arcs) or ex.n_periods == 1:
        return np.zeros(n_s, bool), detail
    periods = ex.n_periods
    live = np.zeros((n_s, periods), bool)  # the supply has an arc in that period into a receiver that can take
    arcs = ex.candidates.arcs
    open_arc = ~closed_demands(ex)[arcs["d"].to_numpy(np.int64)] if len(arcs) else np.zeros(0, bool)
    live[arcs["s"].to_numpy(np.int64)[open_arc] % n_s, ex.arc_period[open_arc]] = True
    w = solution.w.reshape(periods, n_s).T
    off = np.where(live, 0.0, w).sum(axis=1)
    left = w.sum(axis=1)
    has_arcs = np.bincount(base.arcs["s"].to_numpy(np.int64), minlength=n_s) > 0
    amount = np.abs(np.nan_to_num(exchange_arrays(base).supply_amount))
    mostly = has_arcs & (annual.w > tol * np.maximum(1.0, amount)) & (off > 0.5 * left) & (left > 0)
    names = np.asarray(ex.time.names, dtype=object)
    unit = np.where(is_energy(base.supplies), "MWh", "t")
    stored = ex.stores[ex.stores["side"] == "supply"]
    for s in np.flatnonzero(mostly).tolist():
        when = ", ".join(names[(~live[s]) & (w[s] > tol * max(1.0, amount[s]))])
        text = (f"{off[s]:,.6g} of the {left[s]:,.6g} {unit[s]} left to its fate fall in periods when none of its "
                f"candidate receivers needs any or can take any ({when})")
        own = stored[stored["row"] == s]
        if own.empty:
            text += ", and no store at the supplier holds it for later"
        elif solution.storage is not None:
            k = own.index.to_numpy()
            level = solution.storage["stock"].reshape(len(ex.stores), periods)[k]
            text += (f"; its store(s) {', '.join(own['store_id'].astype(str))} hold up to {level.max():,.6g} "
                     f"{unit[s]} (capacity {own['capacity'].sum():,.6g}) for later")
        detail[s] = text
    return mostly, detail


def period_results(ex: Expanded, solution: Solution, arrays: ExchangeArrays, tol: float = 1e-6) -> PeriodResults:
    """Exchanges, KPIs and stores per period (their sums over the periods are the annual figures)."""
    cands = ex.candidates
    names = np.asarray(ex.time.names, dtype=object)
    periods = ex.n_periods
    used = np.flatnonzero(solution.x > tol)
    arcs = cands.arcs.iloc[used]
    s_energy = is_energy(cands.supplies)
    energy = s_energy[arcs["s"].to_numpy(np.int64)] if len(arcs) else np.zeros(0, bool)
    xs = solution.x[used]
    exchanges = pd.DataFrame({
        "period": names[ex.arc_period[used]], "supply_id": arcs["supply_id"].to_numpy(),
        "demand_id": arcs["demand_id"].to_numpy(), "supply_facility": arcs["supply_facility"].to_numpy(),
        "demand_facility": arcs["demand_facility"].to_numpy(),
        "material": cands.supplies["material"].to_numpy()[arcs["s"].to_numpy(np.int64)] if len(arcs) else [],
        "quantity": np.where(energy, "energy", "mass"),
        "amount_t": np.where(energy, np.nan, xs), "amount_mwh": np.where(energy, xs, np.nan),
        "delivered": arrays.ratio[used] * xs, "cost": arrays.arc_cost[used] * xs,
        "co2e_t": arrays.arc_co2e[used] * xs,
    })
    n_sites = int((ex.stores["side"] == "site").sum()) if len(ex.stores) else 0
    leaves_site, enters_site = site_arcs(cands, len(ex.base.supplies), len(ex.base.demands), n_sites)
    exchanges["via_store"] = via_store(exchanges, ex)
    n_a, n_s, n_d = arrays.n_arcs, arrays.n_supplies, arrays.n_demands
    a_mass = ~s_energy[arrays.arc_s] if n_a else np.zeros(0, bool)
    # Material through a store site counts once: exchanged as it leaves its supplier, delivered as it reaches
    # its receiver (the legs out of and into the site are left out of those sums).
    z = solution.z if len(solution.z) else arrays.processor_bau
    n_p = arrays.n_processors
    p_period = np.repeat(np.arange(periods), n_p // periods) if n_p else np.zeros(0, np.int64)

    def by_period(index: np.ndarray, values: np.ndarray) -> np.ndarray:
        return np.bincount(index, weights=values, minlength=periods) if len(values) else np.zeros(periods)

    def money(vector: np.ndarray, columns: list[np.ndarray]) -> np.ndarray:
        x, w, y, zz = columns
        return (by_period(ex.arc_period, vector[:n_a] * x) + by_period(ex.supply_period, vector[n_a:n_a + n_s] * w)
                + by_period(ex.demand_period, vector[n_a + n_s:n_a + n_s + n_d] * y)
                + by_period(p_period, vector[n_a + n_s + n_d:n_a + n_s + n_d + n_p] * zz))

    cost, co2e = arrays.cost_vector(), arrays.co2e_vector()
    optimum = [solution.x, solution.w, solution.y, z]
    bau = [np.zeros(n_a), arrays.supply_amount, arrays.demand_amount, arrays.processor_bau]
    store_cost = np.zeros(periods)
    store_co2e = np.zeros(periods)
    stores = pd.DataFrame()
    st = arrays.storage
    if st is not None and solution.storage is not None:
        stock = solution.storage["stock"]
        t = np.tile(np.arange(periods), st.n_stores)
        store_cost = by_period(t, st.stock_cost * stock)
        store_co2e = by_period(t, st.stock_co2e * stock)
        k = np.repeat(np.arange(st.n_stores), periods)
        last = stock.reshape(st.n_stores, periods)[:, -1][k]  # a cyclic store starts where it ends
        opening = ex.stores["opening_level"].to_numpy(float)[k]
        previous = np.where(t == 0, np.where(np.isnan(opening), last, opening), np.r_[0.0, stock[:-1]])
        side = ex.stores["side"].to_numpy()[k]
        row = ex.stores["row"].to_numpy(np.int64)[k]
        at_s = side != "demand"  # a site's row is its supply row
        facility = np.where(at_s, ex.base.supplies["facility_id"].to_numpy()[np.where(at_s, row, 0)],
                            ex.base.demands["facility_id"].to_numpy()[np.where(at_s, 0, row)])
        stores = pd.DataFrame({
            "store_id": ex.stores["store_id"].to_numpy()[k], "flow_id": ex.stores["flow_id"].to_numpy()[k],
            "facility_id": facility, "side": side, "unit": ex.stores["unit"].to_numpy()[k], "period": names[t],
            "opening": previous, "fill": solution.storage["put"], "draw": solution.storage["take"],
            "loss": (1.0 - st.retain) * previous, "level": stock, "capacity": st.capacity,
            "holding_cost": ex.stores["cost_per_period"].to_numpy(float)[k] * stock,
            "stock_value_per_unit": solution.storage["stock_dual"],
            "capacity_value_per_unit": solution.storage["capacity_dual"],
        })
    d_energy = is_energy(cands.demands)
    kpis = pd.DataFrame({
        "period": names, "days": ex.time.periods["days"].to_numpy(float),
        "exchanged_t": by_period(ex.arc_period[a_mass & ~leaves_site], solution.x[a_mass & ~leaves_site]) if n_a
        else np.zeros(periods),
        "exchanged_mwh": by_period(ex.arc_period[~a_mass], solution.x[~a_mass]) if n_a else np.zeros(periods),
        "supply_t": by_period(ex.supply_period[~s_energy], arrays.supply_amount[~s_energy]),
        "supply_mwh": by_period(ex.supply_period[s_energy], arrays.supply_amount[s_energy]),
        "to_fate_t": by_period(ex.supply_period[~s_energy], solution.w[~s_energy]),
        "to_fate_mwh": by_period(ex.supply_period[s_energy], solution.w[s_energy]),
        "need_t": by_period(ex.demand_period[~d_energy], arrays.demand_amount[~d_energy]),
        "need_mwh": by_period(ex.demand_period[d_energy], arrays.demand_amount[d_energy]),
        "delivered_t": by_period(ex.arc_period[a_mass & ~enters_site],
                                 (arrays.ratio * solution.x)[a_mass & ~enters_site]) if n_a else np.zeros(periods),
        "delivered_mwh": by_period(ex.arc_period[~a_mass], (arrays.ratio * solution.x)[~a_mass]) if n_a
        else np.zeros(periods),
        "virgin_t": by_period(ex.demand_period[~d_energy], solution.y[~d_energy]),
        "virgin_mwh": by_period(ex.demand_period[d_energy], solution.y[d_energy]),
        "cost_bau": money(cost, bau), "cost_optimum": money(cost, optimum) + store_cost,
        "storage_cost": store_cost,
        "co2e_bau_t": money(co2e, bau), "co2e_optimum_t": money(co2e, optimum) + store_co2e,
    })
    kpis["net_cost_saving"] = kpis["cost_bau"] - kpis["cost_optimum"]
    kpis["co2e_avoided_t"] = kpis["co2e_bau_t"] - kpis["co2e_optimum_t"]
    return PeriodResults(periods=ex.time.periods.copy(), exchanges=exchanges, kpis=kpis, stores=stores, expanded=ex,
                         solution=solution)


def solve_expanded(ex: Expanded, *, carbon_price: float, weights: Any = None, method: str = "ipm",
                   threads: int | None = None, strategy: str = "auto", **colgen_options: Any
                   ) -> tuple[Solution, ExchangeArrays]:
    """The optimum of the time-expanded LP over every arc-period, and the full model's arrays.

    ``strategy`` as in symbiosis.pipeline.optimise: ``auto`` uses column generation where ``choose_strategy``
    does on the annual candidates (an arc-period competes with the same partners as its arc does over the year;
    the expanded model counts fewer arcs per supply and demand only because profiles leave some arcs out of
    some periods: 27 against the annual 58 at 5,000 facilities with seasonal profiles). Column generation
    prices every arc-period with the duals of a restricted model that holds the stores' columns and rows whole
    (arcs enter none of the stock rows, so the reduced cost of an arc-period is the formula of
    symbiosis.exchange.colgen unchanged, and its proof of optimality covers every arc-period).
    ``colgen_options`` go to solve_column_generation (per_supply, max_master_share, ...)."""
    from symbiosis.exchange.colgen import solve_column_generation
    from symbiosis.pipeline import choose_strategy

    if strategy not in ("auto", "monolithic", "column_generation"):
        raise ValueError(f"strategy must be auto, monolithic or column_generation, got {strategy!r}")
    use_cg = strategy == "column_generation" or (
        strategy == "auto" and choose_strategy(ex.base) == "column_generation")
    if not use_cg:
        model = PeriodExchangeModel(ex, carbon_price=carbon_price, weights=weights, method=method, threads=threads)
        return model.solve(), model.arrays

    def restricted_model(restricted: Candidates, positions: np.ndarray, **options: Any) -> ExchangeModel:
        return PeriodExchangeModel(replace(ex, candidates=restricted, arc_base=ex.arc_base[positions],
                                           arc_period=ex.arc_period[positions]), **options)

    arrays = PeriodExchangeModel.arrays_of(ex)
    solution = solve_column_generation(ex.candidates, carbon_price=carbon_price, weights=weights, method=method,
                                       threads=threads, model_factory=restricted_model, arrays=arrays,
                                       **colgen_options)
    return solution, arrays


def optimise_periods(region: Region, cands: Candidates, *, carbon_price: float, weights: Any = None,
                     method: str = "ipm", threads: int | None = None, strategy: str = "auto") -> Results:
    """Solve ``cands`` over the region's periods with its stores and evaluate (see the module docstring).
    ``strategy``: see :func:`solve_expanded`."""
    from symbiosis.results import evaluate

    assert region.time is not None
    cands = add_sites(region, cands)  # dedicated store sites: a demand and a supply row each, and their arcs
    n_sites = len(site_stores(region.time.stores))
    share_cap, route = capacity_parts(cands, region.reference.substitutions, region.arcs)
    capacity = pd.to_numeric(cands.arcs["capacity_t_per_yr"], errors="coerce").to_numpy(float) \
        if len(cands.arcs) else np.zeros(0)
    rebuilt = np.fmin(share_cap, route)
    if not np.allclose(np.nan_to_num(rebuilt, nan=-1.0), np.nan_to_num(capacity, nan=-1.0), rtol=1e-9, atol=1e-9):
        logger.warning("arc capacities could not be split into share caps and route capacities: every capacity "
                       "is spread over the periods by their lengths")
        share_cap = route = None  # type: ignore[assignment]
    ex = expand(cands, region.time, share_cap=share_cap, route_capacity=route)
    solution, arrays = solve_expanded(ex, carbon_price=carbon_price, weights=weights, method=method,
                                      threads=threads, strategy=strategy)
    annual = aggregate(ex, solution, arrays)
    evaluated = evaluation_candidates(ex, solution)
    results = evaluate(with_site_flows(region, evaluated, n_sites), evaluated, annual)
    for column in ("amount_t_per_yr", "amount_mwh_per_yr"):  # the need as given, not with the stores' losses
        results.demands[column] = cands.demands[column].to_numpy()
    if n_sites:  # (without a site the annual tables stay exactly today's: the one-period identity)
        zero_site_amounts(results, n_sites)
        _count_sites_once(results, evaluated, n_sites)
        results.exchanges["via_store"] = via_store(results.exchanges, ex)
    if ex.n_periods > 1:
        late = not_at_the_same_time(ex, annual)
        if late.any():
            names = ex.time.names
            s_on = ex.time.shares(cands.supplies["supply_id"].astype(str).to_numpy()) > 0
            details = [f"has material in {', '.join(n for n, on in zip(names, s_on[s], strict=True) if on)} only; "
                       "its candidate receivers need none then, and no store bridges the gap"
                       for s in np.flatnonzero(late)]
            results.supplies.loc[late, "reason"] = "not_at_the_same_time"
            results.supplies.loc[late, "reason_detail"] = details
        mostly, detail = mostly_off_season(ex, solution, annual)
        mostly &= ~late
        if mostly.any():
            results.supplies.loc[mostly, "reason"] = "not_at_the_same_time"
            results.supplies.loc[mostly, "reason_detail"] = detail[mostly]
    results.periods = period_results(ex, solution, arrays)
    if solution.storage is not None:
        _with_storage_kpis(results, solution)
    results.kpis["n_periods"] = ex.n_periods
    return results


def _count_sites_once(results: Results, evaluated: Candidates, n_sites: int) -> None:
    """Virgin material avoided counts what reaches the receivers, not what enters a store site too."""
    sites = results.demands.iloc[-n_sites:]
    klass = evaluated.demands["material_class"].astype(str).to_numpy()[-n_sites:]
    counted = ~np.isin(klass, ["water", "seawater", "energy"])
    into = pd.to_numeric(sites["secondary_t_per_yr"], errors="coerce").fillna(0.0).to_numpy(float)
    results.kpis["virgin_avoided_t"] = float(results.kpis["virgin_avoided_t"]) - float(into[counted].sum())
    results.kpis["store_sites_in_t"] = float(into.sum())


def _with_storage_kpis(results: Results, solution: Solution) -> None:
    """Annual KPIs with the stores' costs: the LP's own money and CO2e, including holding costs and what
    the stores' losses cost (a supplier's losses go to its fate; a receiver's are replaced by virgin).
    ``storage_cost`` is the stock terms of the objective: holding costs plus the fate cost of what a
    supplier's store loses (those losses also appear in the supplies' ``to_fate`` figures)."""
    k = results.kpis
    storage = solution.storage or {}
    k["storage_cost"] = float(results.periods.kpis["storage_cost"].sum()) if results.periods is not None \
        else float(np.sum(storage.get("stock", 0.0)))
    k["cost_optimum"] = float(solution.cost)
    if results.periods is not None:  # business as usual from the need as given (no store)
        k["cost_bau"] = float(results.periods.kpis["cost_bau"].sum())
        k["co2e_bau_t"] = float(results.periods.kpis["co2e_bau_t"].sum())
        k["objective_bau"] = float(solution.objective_bau)
        k["cost_incl_carbon_bau"] = k["cost_bau"] + float(k.get("carbon_price", 0.0)) * k["co2e_bau_t"]
    k["co2e_optimum_t"] = float(solution.co2e_t)
    k["net_cost_saving"] = k["cost_bau"] - k["cost_optimum"]
    k["co2e_avoided_t"] = k["co2e_bau_t"] - k["co2e_optimum_t"]
    carbon_price = float(k.get("carbon_price", 0.0))
    k["cost_incl_carbon_optimum"] = k["cost_optimum"] + carbon_price * k["co2e_optimum_t"]
    k["net_saving_incl_carbon"] = k["cost_incl_carbon_bau"] - k["cost_incl_carbon_optimum"]
