"""The time-expanded candidates: every supply, demand and arc once per period, with that period's amounts.

Rows are period-major: expanded supply ``t·S + s`` is base supply ``s`` in period ``t`` (demands and arcs
alike), so every existing constraint family (quality, share, intake, processors, heat) holds per period
without a line of its own. Amounts are the annual amount × the row's share of the period (its profile, or
the period's length over the year's); money and CO2e per tonne are unchanged; arc capacities and intake
limits are the annual figure × the period's share of the year (an arc's share cap σ·r_d/ρ follows its
demand's amount instead: ``capacity_parts``); processors get one activity per period
with capacity and current activity × that share. With one period the expansion is the identity (the same
tables, value for value). Everything is vectorised: no Python loop over rows.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from symbiosis.candidates import Candidates
from symbiosis.energy.heat import is_energy, row_amount
from symbiosis.errors import SymbiosisError
from symbiosis.periods.data import TimeData
from symbiosis.periods.sites import site_rows
from symbiosis.periods.storage import StorageArrays

logger = logging.getLogger(__name__)

#: Joins a facility id and a period in the expanded demands, so that a facility's intake row holds per
#: period (ids never hold control characters: the loader refuses them).
PERIOD_MARK = "\x1f"


@dataclass
class Expanded:
    """Expanded candidates and, per expanded row, its base row and period."""

    base: Candidates
    candidates: Candidates
    time: TimeData
    supply_base: np.ndarray
    supply_period: np.ndarray
    demand_base: np.ndarray
    demand_period: np.ndarray
    arc_base: np.ndarray
    arc_period: np.ndarray
    #: Stores that serve a candidate supply or demand: STORE_COLUMNS plus ``side`` (supply, demand), ``row``
    #: (the base supply or demand position) and ``unit`` (t or MWh).
    stores: pd.DataFrame

    @property
    def n_periods(self) -> int:
        return self.time.n_periods


def _scale(table: pd.DataFrame, columns: list[str], factor: np.ndarray) -> None:
    for column in columns:
        if column in table.columns:
            table[column] = pd.to_numeric(table[column], errors="coerce").to_numpy(float) * factor


def _tile(table: pd.DataFrame | None, column: str, n_base: int, periods: int) -> pd.DataFrame | None:
    """A table keyed by base positions ``column`` repeated per period, positions moved to the expanded rows."""
    if table is None:
        return None
    n = len(table)
    out = table.iloc[np.tile(np.arange(n), periods)].reset_index(drop=True)
    if n and column in out.columns:
        out[column] = out[column].to_numpy(np.int64) + np.repeat(np.arange(periods), n) * n_base
    return out


def _store_rows(base: Candidates, time: TimeData) -> pd.DataFrame:
    stores = time.stores.copy()
    supply_pos = pd.Series(np.arange(len(base.supplies)), index=base.supplies["supply_id"].astype(str))
    demand_pos = pd.Series(np.arange(len(base.demands)), index=base.demands["demand_id"].astype(str))
    flow = stores["flow_id"].astype(str)
    s = flow.map(supply_pos)
    d = flow.map(demand_pos)
    stores["side"] = np.where(s.notna(), "supply", np.where(d.notna(), "demand", ""))
    stores["row"] = np.where(s.notna(), s.fillna(-1), d.fillna(-1)).astype(np.int64)
    # A dedicated store site (symbiosis.periods.sites): ``row`` its supply row, ``demand_row`` its demand row.
    site_s, site_d = site_rows(base, stores)
    site = (site_s >= 0) & (site_d >= 0)
    stores["side"] = np.where(site, "site", stores["side"])
    stores["row"] = np.where(site, site_s, stores["row"].to_numpy(np.int64))
    stores["demand_row"] = np.where(site, site_d, -1).astype(np.int64)
    unused = stores["side"] == ""
    if unused.any():
        logger.warning("store(s) %s hold a flow that is no candidate supply or demand: left out",
                       ", ".join(stores.loc[unused, "store_id"].astype(str)))
    stores = stores[~unused].reset_index(drop=True)
    table = np.where(stores["side"] != "demand", "supplies", "demands")
    quantity = [str(getattr(base, t)["quantity"].iat[r]) for t, r in zip(table, stores["row"], strict=True)]
    stores["unit"] = ["MWh" if q == "energy" else "t" for q in quantity]
    linked = set()
    if base.processor_links is not None and len(base.processor_links):
        links = base.processor_links
        linked = {("supply" if side == "out" else "demand", int(row)) for side, row in zip(links["side"], links["row"],
                                                                                             strict=True)}
    clash = [sid for sid, side, row in zip(stores["store_id"], stores["side"], stores["row"], strict=True)
             if (side, int(row)) in linked]
    if clash:
        raise SymbiosisError(f"store(s) {', '.join(map(str, clash))} hold a processor's intake or output: stores "
                             "on processors are not supported; give the store the processor's supplier or receiver")
    return stores


def capacity_parts(base: Candidates, substitutions: pd.DataFrame | None, route_arcs: pd.DataFrame | None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Per base arc, the two limits its ``capacity_t_per_yr`` is the smaller of: the share cap σ·r_d/ρ (a
    substitution's ``max_share``, or on heat arcs the demand's ``max_secondary_share``), which follows the
    demand's amount from period to period, and the route's own capacity from arcs.csv (mass arcs), which
    follows the periods' lengths. NaN = none."""
    arcs, sup, dem = base.arcs, base.supplies, base.demands
    n_a = len(arcs)
    if not n_a:
        return np.zeros(0), np.zeros(0)
    s, d = arcs["s"].to_numpy(np.int64), arcs["d"].to_numpy(np.int64)
    ratio = arcs["ratio"].to_numpy(float)
    need = row_amount(dem)[d]
    energy = is_energy(sup)[s]
    share = np.full(n_a, np.nan)
    if substitutions is not None and len(substitutions):
        table = substitutions.set_index(["secondary_material", "primary_material"])["max_share"]
        table = pd.to_numeric(table, errors="coerce").groupby(level=[0, 1]).min()
        keys = pd.MultiIndex.from_arrays([sup["material"].astype(str).to_numpy()[s],
                                          dem["material"].astype(str).to_numpy()[d]])
        share = table.reindex(keys).to_numpy(float)
    demand_share = pd.to_numeric(dem["max_secondary_share"], errors="coerce").to_numpy(float)[d]
    share = np.where(energy, demand_share, share)
    with np.errstate(divide="ignore", invalid="ignore"):
        share_cap = np.where(share < 1.0, share * need / ratio, np.nan)
    route = np.full(n_a, np.nan)
    if route_arcs is not None and len(route_arcs) and "capacity_t_per_yr" in route_arcs.columns:
        pairs = (route_arcs.assign(capacity=pd.to_numeric(route_arcs["capacity_t_per_yr"], errors="coerce"))
                 .groupby(["supply_facility", "demand_facility"])["capacity"].min())
        keys = pd.MultiIndex.from_arrays([arcs["supply_facility"].astype(str).to_numpy(),
                                          arcs["demand_facility"].astype(str).to_numpy()])
        route = np.where(energy, np.nan, pairs.reindex(keys).to_numpy(float))
    return share_cap, route


def expand(base: Candidates, time: TimeData, *, share_cap: np.ndarray | None = None,
           route_capacity: np.ndarray | None = None) -> Expanded:
    """The candidates once per period of ``time`` (see the module docstring).

    ``share_cap`` and ``route_capacity`` (per base arc, from :func:`capacity_parts`) split each arc's annual
    capacity into what follows the demand's amount per period and what follows the periods' lengths; without
    them the whole capacity follows the lengths."""
    periods = time.n_periods
    length_share = time.periods["share"].to_numpy(float)
    sup, dem, arcs = base.supplies, base.demands, base.arcs
    n_s, n_d, n_a = len(sup), len(dem), len(arcs)
    s_share = time.shares(sup["supply_id"].astype(str).to_numpy())
    d_share = time.shares(dem["demand_id"].astype(str).to_numpy())
    links = base.processor_links
    processors = base.processors
    # A processor's capacity and its current activity follow its capacity profile (or the periods' lengths).
    p_share = time.shares(processors["facility_id"].astype(str).to_numpy(), by=time.processor_profile) \
        if processors is not None and len(processors) else np.zeros((0, periods))
    if links is not None and len(links):  # processor rows follow the processor's activity
        link_p = links["p"].to_numpy(np.int64)
        out = (links["side"] == "out").to_numpy()
        s_share[links["row"].to_numpy(np.int64)[out]] = p_share[link_p[out]]
        d_share[links["row"].to_numpy(np.int64)[~out]] = p_share[link_p[~out]]
    stores = _store_rows(base, time)

    s_base, s_period = np.tile(np.arange(n_s), periods), np.repeat(np.arange(periods), n_s)
    supplies = sup.iloc[s_base].reset_index(drop=True)
    _scale(supplies, ["amount_t_per_yr", "amount_mwh_per_yr"], s_share[s_base, s_period])
    d_base, d_period = np.tile(np.arange(n_d), periods), np.repeat(np.arange(periods), n_d)
    demands = dem.iloc[d_base].reset_index(drop=True)
    _scale(demands, ["amount_t_per_yr", "amount_mwh_per_yr"], d_share[d_base, d_period])
    # Intake limits follow their own profiles (a kiln's month of maintenance), or the periods' lengths.
    flow_intake = time.shares(dem["demand_id"].astype(str).to_numpy(), by=time.flow_intake_profile)
    facility_intake = time.shares(dem["facility_id"].astype(str).to_numpy(), by=time.facility_intake_profile)
    _scale(demands, ["max_intake_t_per_yr"], flow_intake[d_base, d_period])
    _scale(demands, ["facility_intake_t_per_yr"], facility_intake[d_base, d_period])
    if periods > 1:
        demands["facility_id"] = demands["facility_id"].astype(str) + PERIOD_MARK + d_period.astype(str)

    a_base, a_period = np.tile(np.arange(n_a), periods), np.repeat(np.arange(periods), n_a)
    if periods > 1 and n_a:
        # An arc exists in a period where its supply has something to send and its demand a need, or where
        # a store at either end bridges the gap.
        s_store = np.zeros(n_s, bool)
        d_store = np.zeros(n_d, bool)
        s_store[stores.loc[stores["side"] != "demand", "row"].to_numpy(np.int64)] = True
        d_store[stores.loc[stores["side"] == "demand", "row"].to_numpy(np.int64)] = True
        d_store[stores.loc[stores["side"] == "site", "demand_row"].to_numpy(np.int64)] = True
        arc_s, arc_d = arcs["s"].to_numpy(np.int64), arcs["d"].to_numpy(np.int64)
        live = ((s_share[arc_s[a_base], a_period] > 0) | s_store[arc_s[a_base]]) & \
               ((d_share[arc_d[a_base], a_period] > 0) | d_store[arc_d[a_base]])
        a_base, a_period = a_base[live], a_period[live]
    expanded_arcs = arcs.iloc[a_base].reset_index(drop=True)
    if n_a:
        expanded_arcs["s"] = arcs["s"].to_numpy(np.int64)[a_base] + a_period * n_s
        expanded_arcs["d"] = arcs["d"].to_numpy(np.int64)[a_base] + a_period * n_d
        if share_cap is None or route_capacity is None or periods == 1:
            _scale(expanded_arcs, ["capacity_t_per_yr"], length_share[a_period])
        else:
            a_d = arcs["d"].to_numpy(np.int64)[a_base]
            expanded_arcs["capacity_t_per_yr"] = np.fmin(share_cap[a_base] * d_share[a_d, a_period],
                                                         route_capacity[a_base] * length_share[a_period])

    expanded_links = None
    if processors is not None and len(processors) and links is not None:
        n_p = len(processors)
        processors = processors.iloc[np.tile(np.arange(n_p), periods)].reset_index(drop=True)
        p_base, p_period = np.tile(np.arange(n_p), periods), np.repeat(np.arange(periods), n_p)
        if "p" in processors.columns:
            processors["p"] = processors["p"].to_numpy(np.int64) + p_period * n_p
        _scale(processors, ["capacity", "activity"], p_share[p_base, p_period])
        n_l = len(links)
        expanded_links = links.iloc[np.tile(np.arange(n_l), periods)].reset_index(drop=True)
        l_period = np.repeat(np.arange(periods), n_l)
        offset = np.where(expanded_links["side"].to_numpy() == "out", n_s, n_d)
        expanded_links["row"] = expanded_links["row"].to_numpy(np.int64) + l_period * offset
        expanded_links["p"] = expanded_links["p"].to_numpy(np.int64) + l_period * n_p

    candidates = Candidates(
        supplies=supplies, demands=demands, arcs=expanded_arcs,
        supply_quality=_tile(base.supply_quality, "s", n_s, periods),  # type: ignore[arg-type]
        demand_quality=_tile(base.demand_quality, "d", n_d, periods),  # type: ignore[arg-type]
        screening=_tile(base.screening, "s", n_s, periods),  # type: ignore[arg-type]
        parameters=dict(base.parameters or {}),
        processors=processors, processor_links=expanded_links,
        permit_screened=base.permit_screened if periods == 1 else None,
        # A permitted tonnage is per year: its row (keyed by the arcs' demand facility, which the expansion
        # keeps) takes the arcs of every period.
        permit_limits=getattr(base, "permit_limits", None),
    )
    return Expanded(base=base, candidates=candidates, time=time, supply_base=s_base, supply_period=s_period,
                    demand_base=d_base, demand_period=d_period, arc_base=a_base, arc_period=a_period, stores=stores)


def storage_arrays(ex: Expanded, fate_cost: np.ndarray, fate_co2e: np.ndarray) -> StorageArrays | None:
    """The stores' rows for the expanded model (None without a store). ``fate_cost``/``fate_co2e`` per base
    supply: the share of a supplier's stock lost in a period goes to the supply's fate at its cost."""
    stores = ex.stores
    if stores.empty:
        return None
    periods, k = ex.n_periods, len(stores)
    t = np.tile(np.arange(periods), k)
    store = np.repeat(np.arange(k), periods)
    side = stores["side"].to_numpy()[store]
    row = stores["row"].to_numpy(np.int64)[store]
    n_s, n_d = len(ex.base.supplies), len(ex.base.demands)
    retain = 1.0 - stores["loss_per_period"].to_numpy(float)[store]
    loss = 1.0 - retain
    at_supplier = side == "supply"
    # A site (symbiosis.periods.sites) has both rows: put into its demand row, take out of its supply row.
    site = side == "site"
    site_demand = stores["demand_row"].to_numpy(np.int64)[store] if "demand_row" in stores.columns \
        else np.full(len(store), -1)
    # What a site loses goes to a fate at the dearest fate cost (and emission) among the suppliers it can
    # receive from: a site is never a cheaper way to dispose of material than the suppliers' own fates.
    site_fate, site_fate_co2e = np.zeros(len(store)), np.zeros(len(store))
    if site.any() and len(ex.base.arcs):
        arc_s, arc_d = ex.base.arcs["s"].to_numpy(np.int64), ex.base.arcs["d"].to_numpy(np.int64)
        worst = pd.DataFrame({"d": arc_d, "cost": np.nan_to_num(fate_cost)[arc_s],
                              "co2e": np.nan_to_num(fate_co2e)[arc_s]}).groupby("d").max()
        site_fate = np.where(site, worst["cost"].reindex(site_demand).fillna(0.0).to_numpy(float), 0.0)
        site_fate_co2e = np.where(site, worst["co2e"].reindex(site_demand).fillna(0.0).to_numpy(float), 0.0)
    return StorageArrays(
        n_stores=k, n_periods=periods,
        supply_row=np.where(at_supplier | site, row + t * n_s, -1),
        demand_row=np.where(site, site_demand + t * n_d, np.where(~at_supplier, row + t * n_d, -1)),
        retain=retain,
        opening_rhs=np.where(t == 0, retain * np.nan_to_num(stores["opening_level"].to_numpy(float)[store]), 0.0),
        capacity=stores["capacity"].to_numpy(float)[store],
        closing=stores["closing_level"].to_numpy(float),
        stock_cost=stores["cost_per_period"].to_numpy(float)[store]
        + np.where(at_supplier, loss * fate_cost[np.where(at_supplier, row, 0)], 0.0) + loss * site_fate,
        stock_co2e=np.where(at_supplier, loss * fate_co2e[np.where(at_supplier, row, 0)], 0.0) + loss * site_fate_co2e,
        cyclic=np.isnan(stores["opening_level"].to_numpy(float)),
        site=site,
    )
