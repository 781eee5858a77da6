"""Test helpers for the exchange model: Candidates built directly from small tables, and random instances.

The exchange model and the results stage only read a :class:`~symbiosis.candidates.Candidates`, so their
tests build one by hand (``make_candidates``) with every column of docs/architecture.md filled from short
dicts, or at random (``random_candidates``) for the invariant tests, the linprog cross-check and the timing
of the build at scale. The hand-solved networks of test_exchange_model.py and the hypothesis strategy
``instances`` live here too, shared by the test modules. Time the build and hand-over (the figures in
docs/formulation.md) from the repository root with
``python -m tests.helpers_exchange --arcs 100000 --repeat 3 --compare``.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from hypothesis import strategies as st

from symbiosis.candidates import Candidates

SUPPLY_DEFAULTS: dict[str, Any] = {
    "facility_id": None, "material": "ash", "category": "by_product", "amount_t_per_yr": 100.0,
    "fate": "landfill", "fate_kind": "landfill", "fate_cost_per_t": 0.0, "fate_co2e_per_t": 0.0,
    "lat": 55.0, "lon": 11.0,
}
DEMAND_DEFAULTS: dict[str, Any] = {
    "facility_id": None, "material": "sand", "material_class": "mineral", "density_t_per_m3": 1.0,
    "amount_t_per_yr": 100.0, "virgin_price_per_t": 0.0, "virgin_co2e_per_t": 0.0,
    "max_secondary_share": 1.0, "lat": 55.0, "lon": 11.0,
    "max_intake_t_per_yr": np.nan, "facility_intake_t_per_yr": np.nan,
}
ARC_DEFAULTS: dict[str, Any] = {
    "distance_km": 10.0, "max_distance_km": 100.0, "ratio": 1.0, "processing_cost_per_t": 0.0,
    "processing_co2e_per_t": 0.0, "transport_cost_per_t": 0.0, "transport_co2e_per_t": 0.0,
    "capacity_t_per_yr": np.nan,
}
SCREENING_COLUMNS = ["supply_id", "n_compatible", "nearest_compatible_km", "n_within_distance", "n_quality_fail",
                     "n_arcs"]


def make_candidates(
    supplies: Iterable[Mapping[str, Any]],
    demands: Iterable[Mapping[str, Any]],
    arcs: Iterable[Mapping[str, Any]],
    *,
    supply_quality: Iterable[Mapping[str, Any]] = (),
    demand_quality: Iterable[Mapping[str, Any]] = (),
    screening: Iterable[Mapping[str, Any]] | None = None,
    parameters: Mapping[str, Any] | None = None,
) -> Candidates:
    """Candidates from short dicts; unspecified columns take the defaults above.

    Supplies and demands may omit their ids (``S0``, ``D0``, ... by position) and facility ids (``F_S0``...).
    Arcs need ``s`` and ``d``; supply quality rows ``s, parameter, value``; demand quality rows
    ``d, parameter, bound, limit`` and optionally ``virgin_value`` (default 0 under a max, the limit under a
    min). Screening (columns as ``symbiosis.candidates`` writes them, keyed by ``supply_id``) defaults to
    counting the arcs given as the compatible demands, all within distance.
    """
    sup = pd.DataFrame([{**SUPPLY_DEFAULTS, **row} for row in supplies],
                       columns=["supply_id", *SUPPLY_DEFAULTS])
    sup["supply_id"] = [sid if isinstance(sid, str) else f"S{i}" for i, sid in enumerate(sup["supply_id"])]
    sup["facility_id"] = [f if isinstance(f, str) else f"F_{sid}"
                          for f, sid in zip(sup["facility_id"], sup["supply_id"], strict=True)]
    dem = pd.DataFrame([{**DEMAND_DEFAULTS, **row} for row in demands],
                       columns=["demand_id", *DEMAND_DEFAULTS])
    dem["demand_id"] = [did if isinstance(did, str) else f"D{i}" for i, did in enumerate(dem["demand_id"])]
    dem["facility_id"] = [f if isinstance(f, str) else f"F_{did}"
                          for f, did in zip(dem["facility_id"], dem["demand_id"], strict=True)]

    arc_rows = [{**ARC_DEFAULTS, **row} for row in arcs]
    arc = pd.DataFrame(arc_rows, columns=["s", "d", *ARC_DEFAULTS])
    arc["s"] = arc["s"].astype(np.int64)
    arc["d"] = arc["d"].astype(np.int64)
    arc.insert(2, "supply_id", sup["supply_id"].to_numpy()[arc["s"].to_numpy()] if len(arc) else [])
    arc.insert(3, "demand_id", dem["demand_id"].to_numpy()[arc["d"].to_numpy()] if len(arc) else [])
    arc.insert(4, "supply_facility", sup["facility_id"].to_numpy()[arc["s"].to_numpy()] if len(arc) else [])
    arc.insert(5, "demand_facility", dem["facility_id"].to_numpy()[arc["d"].to_numpy()] if len(arc) else [])
    for col in ARC_DEFAULTS:
        arc[col] = arc[col].astype(float)

    sq = pd.DataFrame(list(supply_quality), columns=["s", "parameter", "value"])
    dq_rows = []
    for row in demand_quality:
        row = dict(row)
        if "virgin_value" not in row or pd.isna(row["virgin_value"]):
            row["virgin_value"] = 0.0 if row["bound"] == "max" else row["limit"]
        dq_rows.append(row)
    dq = pd.DataFrame(dq_rows, columns=["d", "parameter", "bound", "limit", "virgin_value"])
    sq = sq.astype({"s": np.int64, "value": float})
    dq = dq.astype({"d": np.int64, "limit": float, "virgin_value": float})

    if screening is None:
        counts = np.bincount(arc["s"].to_numpy(), minlength=len(sup)) if len(arc) else np.zeros(len(sup), int)
        scr = pd.DataFrame({
            "supply_id": sup["supply_id"], "n_compatible": counts, "nearest_compatible_km": np.nan,
            "n_within_distance": counts, "n_quality_fail": 0, "n_arcs": counts,
        })
    else:
        scr = pd.DataFrame(list(screening), columns=SCREENING_COLUMNS)
    params = {"carbon_price": 0.0, "transport_cost_per_tkm": 0.1, "transport_co2_per_tkm": 0.000062,
              "currency": "EUR"}
    params.update(parameters or {})
    return Candidates(supplies=sup, demands=dem, arcs=arc, supply_quality=sq, demand_quality=dq,
                      screening=scr, parameters=params)


def random_candidates(
    n_supplies: int,
    n_demands: int,
    n_arcs: int,
    *,
    n_parameters: int = 2,
    seed: int = 0,
    capacity_share: float = 0.2,
) -> Candidates:
    """A random, always well-formed instance: arcs are distinct (s, d) pairs, every supply is measured for
    every parameter, each demand bounds each parameter with probability 1/2 (max or min)."""
    rng = np.random.default_rng(seed)
    n_arcs = min(n_arcs, n_supplies * n_demands)
    flat = rng.choice(n_supplies * n_demands, size=n_arcs, replace=False) if n_arcs else np.array([], int)
    s, d = np.divmod(flat, n_demands)
    order = np.lexsort((d, s))
    s, d = s[order], d[order]
    params = [f"q{k}" for k in range(n_parameters)]
    supplies = [{
        "amount_t_per_yr": float(rng.uniform(10, 1000)),
        "fate_cost_per_t": float(rng.uniform(-5, 80)),
        "fate_co2e_per_t": float(rng.uniform(0, 0.5)),
        "fate_kind": str(rng.choice(["landfill", "incineration", "sold", "sewer"])),
    } for _ in range(n_supplies)]
    demands = [{
        "amount_t_per_yr": float(rng.uniform(10, 1000)),
        "virgin_price_per_t": float(rng.uniform(5, 100)),
        "virgin_co2e_per_t": float(rng.uniform(0, 1.0)),
        "max_secondary_share": float(rng.choice([1.0, rng.uniform(0.1, 0.9)])),
        "material_class": str(rng.choice(["mineral", "water"])),
    } for _ in range(n_demands)]
    distance = rng.uniform(0.5, 150.0, size=n_arcs)
    arcs = pd.DataFrame({
        "s": s, "d": d, "distance_km": distance, "max_distance_km": 150.0,
        "ratio": rng.uniform(0.5, 1.2, size=n_arcs),
        "processing_cost_per_t": rng.uniform(0, 20, size=n_arcs),
        "processing_co2e_per_t": rng.uniform(0, 0.05, size=n_arcs),
        "transport_cost_per_t": 0.1 * distance, "transport_co2e_per_t": 0.000062 * distance,
        "capacity_t_per_yr": np.where(rng.random(n_arcs) < capacity_share,
                                      rng.uniform(5, 500, size=n_arcs), np.nan),
    })
    supply_quality = [{"s": i, "parameter": q, "value": float(rng.uniform(0, 10))}
                      for i in range(n_supplies) for q in params]
    demand_quality = []
    for j in range(n_demands):
        for q in params:
            draw = rng.random()
            if draw < 0.35:
                demand_quality.append({"d": j, "parameter": q, "bound": "max",
                                       "limit": float(rng.uniform(3, 9)),
                                       "virgin_value": float(rng.uniform(0, 3))})
            elif draw < 0.5:
                demand_quality.append({"d": j, "parameter": q, "bound": "min",
                                       "limit": float(rng.uniform(1, 6)),
                                       "virgin_value": float(rng.uniform(6, 10))})
    return make_candidates(supplies, demands, arcs.to_dict("records"), supply_quality=supply_quality,
                           demand_quality=demand_quality)


# --- the hand-solved networks of test_exchange_model.py (working in the tests) -------------------------


def blend_candidates() -> Candidates:
    # D0 needs 100 t, virgin 50 EUR/t with Cl 0, bound Cl ≤ 1.
    # S0: 100 t, Cl 3, landfill 20 EUR/t.  S1: 100 t, Cl 0.5, fate free (0 EUR/t).
    return make_candidates(
        [{"amount_t_per_yr": 100, "fate_cost_per_t": 20}, {"amount_t_per_yr": 100, "fate_cost_per_t": 0}],
        [{"amount_t_per_yr": 100, "virgin_price_per_t": 50}],
        [{"s": 0, "d": 0}, {"s": 1, "d": 0}],
        supply_quality=[{"s": 0, "parameter": "Cl", "value": 3.0}, {"s": 1, "parameter": "Cl", "value": 0.5}],
        demand_quality=[{"d": 0, "parameter": "Cl", "bound": "max", "limit": 1.0, "virgin_value": 0.0}],
    )


def calorific_candidates() -> Candidates:
    # Kiln fuel D0: 100 t, coal at 100 EUR/t with CV 25, bound CV ≥ 20.  S0: refuse-derived fuel, 80 t,
    # CV 15, incineration 40 EUR/t.
    return make_candidates(
        [{"amount_t_per_yr": 80, "fate_cost_per_t": 40, "fate_kind": "incineration"}],
        [{"amount_t_per_yr": 100, "virgin_price_per_t": 100}],
        [{"s": 0, "d": 0}],
        supply_quality=[{"s": 0, "parameter": "cv", "value": 15.0}],
        demand_quality=[{"d": 0, "parameter": "cv", "bound": "min", "limit": 20.0, "virgin_value": 25.0}],
    )


def share_candidates() -> Candidates:
    # D0: 200 t, virgin 30, max secondary share 0.3 → ρ x ≤ 60.  S0: 100 t, fate 10, ratio 0.8, transport 2.
    return make_candidates(
        [{"amount_t_per_yr": 100, "fate_cost_per_t": 10}],
        [{"amount_t_per_yr": 200, "virgin_price_per_t": 30, "max_secondary_share": 0.3}],
        [{"s": 0, "d": 0, "ratio": 0.8, "transport_cost_per_t": 2.0}],
    )


def carbon_candidates() -> Candidates:
    # S0: 100 t, landfill 10, no fate emission.  D0: 100 t, virgin 20 EUR/t and 0.5 t CO2e/t.
    # The arc is long: transport 35 EUR/t and 0.01 t CO2e/t.
    return make_candidates(
        [{"amount_t_per_yr": 100, "fate_cost_per_t": 10}],
        [{"amount_t_per_yr": 100, "virgin_price_per_t": 20, "virgin_co2e_per_t": 0.5}],
        [{"s": 0, "d": 0, "transport_cost_per_t": 35.0, "transport_co2e_per_t": 0.01}],
    )


def scarce_candidates(amount: float = 50.0) -> Candidates:
    # S0: 50 t, landfill 30.  D0: 100 t, virgin 20.  Arc transport 5.  Every tonne is worth moving
    # (saves 30 + 20 − 5 = 45), and there is not enough supply: x = 50, y = 50.
    return make_candidates(
        [{"amount_t_per_yr": amount, "fate_cost_per_t": 30}],
        [{"amount_t_per_yr": 100, "virgin_price_per_t": 20}],
        [{"s": 0, "d": 0, "transport_cost_per_t": 5.0}],
    )


# --- random networks for hypothesis ---------------------------------------------------------------------


@st.composite
def instances(draw: st.DrawFn, *, capacities: bool = True, intakes: bool = True) -> Candidates:
    n_s = draw(st.integers(1, 6))
    n_d = draw(st.integers(1, 6))
    # Intake limits (t/yr received): some demands have their own, and demands share three facilities, two
    # of which may have an intake capacity over all their demands.
    facility_limit = {f"farm{k}": (float(draw(st.integers(0, 800))) if intakes and k < 2 and draw(st.booleans())
                                   else np.nan) for k in range(3)}
    facility_of = [f"farm{draw(st.integers(0, 2))}" for _ in range(n_d)]
    pairs = [(s, d) for s in range(n_s) for d in range(n_d)]
    chosen = draw(st.lists(st.booleans(), min_size=len(pairs), max_size=len(pairs)))
    kinds = ["landfill", "incineration", "sold", "sewer"]
    supplies = [{
        "amount_t_per_yr": float(draw(st.integers(0, 1000))),
        "fate_cost_per_t": float(draw(st.integers(-20, 100))),
        "fate_co2e_per_t": draw(st.integers(0, 50)) / 100,
        "fate_kind": draw(st.sampled_from(kinds)),
    } for _ in range(n_s)]
    demands = [{
        "amount_t_per_yr": float(draw(st.integers(0, 1000))),
        "virgin_price_per_t": float(draw(st.integers(0, 120))),
        "virgin_co2e_per_t": draw(st.integers(0, 100)) / 100,
        "max_secondary_share": draw(st.sampled_from([1.0, 0.8, 0.5, 0.25, 0.0])),
        "material_class": draw(st.sampled_from(["mineral", "water"])),
        "facility_id": facility_of[j],
        "max_intake_t_per_yr": float(draw(st.integers(0, 600))) if intakes and draw(st.booleans()) else np.nan,
        "facility_intake_t_per_yr": facility_limit[facility_of[j]],
    } for j in range(n_d)]
    arcs = []
    for (s, d), keep in zip(pairs, chosen, strict=True):
        if not keep:
            continue
        km = float(draw(st.integers(0, 200)))
        capacity = float(draw(st.integers(0, 500))) if capacities and draw(st.booleans()) else np.nan
        arcs.append({
            "s": s, "d": d, "distance_km": km, "max_distance_km": 200.0,
            "ratio": draw(st.sampled_from([0.5, 0.8, 1.0, 1.2])),
            "processing_cost_per_t": float(draw(st.integers(0, 30))),
            "processing_co2e_per_t": draw(st.integers(0, 10)) / 100,
            "transport_cost_per_t": 0.1 * km, "transport_co2e_per_t": 0.0001 * km,
            "capacity_t_per_yr": capacity,
        })
    supply_quality = [{"s": s, "parameter": "q", "value": draw(st.integers(0, 100)) / 10} for s in range(n_s)]
    demand_quality = []
    for d in range(n_d):
        bound = draw(st.sampled_from(["", "max", "min"]))
        if bound == "max":
            limit = draw(st.integers(10, 90)) / 10
            demand_quality.append({"d": d, "parameter": "q", "bound": "max", "limit": limit,
                                   "virgin_value": draw(st.integers(0, int(limit * 10))) / 10})
        elif bound == "min":
            limit = draw(st.integers(10, 90)) / 10
            demand_quality.append({"d": d, "parameter": "q", "bound": "min", "limit": limit,
                                   "virgin_value": draw(st.integers(int(limit * 10), 100)) / 10})
    return make_candidates(supplies, demands, arcs, supply_quality=supply_quality,
                           demand_quality=demand_quality)


@dataclass
class Corner:
    """A drawn instance with the run it is solved under (``corner_instances``)."""

    candidates: Candidates
    carbon_price: float
    weights: dict[str, float]
    cap_fraction: float | None  # where the emission cap sits between the least and BAU emissions; None: no cap
    virgin_outside_bound: bool  # a demand's virgin material breaks its own bound: symbiosis must refuse


@st.composite
def corner_instances(draw: st.DrawFn) -> Corner:
    """Networks that reach the hard corners: up to three quality parameters, a max and a min on one
    parameter at once (a window), capacities of zero, shares of 0, ratio ≠ 1, sold fates (negative cost),
    objective weights on CO2e, emission caps (some below what any network reaches: infeasible), and,
    now and then, virgin material outside its own bound (refused before any solve)."""
    n_s = draw(st.integers(1, 5))
    n_d = draw(st.integers(1, 5))
    params = [f"q{k}" for k in range(draw(st.integers(1, 3)))]
    facility_of = [f"plant{draw(st.integers(0, 2))}" for _ in range(n_d)]
    facility_limit = {f"plant{k}": draw(st.sampled_from([np.nan, np.nan, 0.0, 100.0, 300.0])) for k in range(3)}
    pairs = [(s, d) for s in range(n_s) for d in range(n_d)]
    chosen = draw(st.lists(st.booleans(), min_size=len(pairs), max_size=len(pairs)))
    supplies = [{
        "amount_t_per_yr": float(draw(st.integers(0, 500))),
        "fate_cost_per_t": float(draw(st.integers(-20, 100))),
        "fate_co2e_per_t": draw(st.integers(0, 50)) / 100,
        "fate_kind": draw(st.sampled_from(["landfill", "incineration", "sold", "sewer"])),
    } for _ in range(n_s)]
    demands = [{
        "amount_t_per_yr": float(draw(st.integers(0, 500))),
        "virgin_price_per_t": float(draw(st.integers(0, 120))),
        "virgin_co2e_per_t": draw(st.integers(0, 100)) / 100,
        "max_secondary_share": draw(st.sampled_from([1.0, 0.75, 0.5, 0.0])),
        # Intake limits in t received: per demand, and per facility over the demands it shares with others.
        "facility_id": facility_of[j],
        "max_intake_t_per_yr": draw(st.sampled_from([np.nan, np.nan, 0.0, 60.0, 250.0])),
        "facility_intake_t_per_yr": facility_limit[facility_of[j]],
    } for j in range(n_d)]
    arcs = []
    for (s, d), keep in zip(pairs, chosen, strict=True):
        if keep:
            km = float(draw(st.integers(0, 200)))
            arcs.append({
                "s": s, "d": d, "distance_km": km, "max_distance_km": 200.0,
                "ratio": draw(st.sampled_from([0.5, 0.9, 1.0, 1.5])),
                "processing_cost_per_t": float(draw(st.integers(0, 30))),
                "processing_co2e_per_t": draw(st.integers(0, 10)) / 100,
                "transport_cost_per_t": 0.1 * km, "transport_co2e_per_t": 0.0001 * km,
                "capacity_t_per_yr": draw(st.sampled_from([np.nan, np.nan, 0.0, 50.0, 200.0])),
            })
    supply_quality = [{"s": s, "parameter": q, "value": draw(st.integers(0, 100)) / 10}
                      for s in range(n_s) for q in params]
    demand_quality = []
    for d in range(n_d):
        for q in params:
            kind = draw(st.sampled_from(["", "max", "min", "window"]))
            lo, hi = sorted(draw(st.lists(st.integers(5, 95), min_size=2, max_size=2, unique=True)))
            virgin = draw(st.integers(lo, hi)) / 10  # inside the window: business as usual is feasible
            if kind in ("max", "window"):
                demand_quality.append({"d": d, "parameter": q, "bound": "max", "limit": hi / 10,
                                       "virgin_value": virgin})
            if kind in ("min", "window"):
                demand_quality.append({"d": d, "parameter": q, "bound": "min", "limit": lo / 10,
                                       "virgin_value": virgin})
    outside = bool(demand_quality) and draw(st.integers(0, 9)) == 0
    if outside:
        k = draw(st.integers(0, len(demand_quality) - 1))
        row = demand_quality[k]
        row["virgin_value"] = row["limit"] + (0.5 if row["bound"] == "max" else -0.5)
    weights = draw(st.sampled_from([{"cost": 1.0, "co2e": 0.0}, {"cost": 1.0, "co2e": 40.0},
                                    {"cost": 0.5, "co2e": 0.0}, {"cost": 0.0, "co2e": 1.0}]))
    return Corner(
        candidates=make_candidates(supplies, demands, arcs, supply_quality=supply_quality,
                                   demand_quality=demand_quality),
        carbon_price=draw(st.sampled_from([0.0, 0.0, 25.0, 150.0])),
        weights=weights,
        cap_fraction=draw(st.sampled_from([None, None, -0.5, 0.05, 0.5])),
        virgin_outside_bound=outside,
    )


def time_exchange(n_arcs: int, *, seed: int = 0, repeat: int = 3, compare: bool = False) -> pd.DataFrame:
    """Seconds and µs per arc of each exchange stage, one row per run (the first pays one-off imports).

    Stages: ``build`` (arrays + Pyomo model), ``handover`` (standard form + highspy), ``solve`` (HiGHS ipm
    with crossover), ``resolve`` (after a carbon price change, no rebuild). With ``compare``, also Pyomo's
    persistent HiGHS interfaces' ``set_instance`` on the same model (``appsi_highs``, ``contrib_highs``).
    """
    from pyomo.common.gc_manager import PauseGC

    from symbiosis.exchange import ExchangeModel

    n_side = max(int(np.sqrt(n_arcs / 0.05)), 10)
    cand = random_candidates(n_side, n_side, n_arcs, seed=seed)
    n = len(cand.arcs)
    rows = []
    for run in range(repeat):
        em = ExchangeModel(cand, carbon_price=50.0)
        sol = em.solve()
        row = {"run": run + 1, "arcs": n, **{k: sol.timings[k] for k in ("build", "handover", "solve")}}
        em.set_carbon_price(80.0)
        start = time.perf_counter()
        em.resolve()
        row["resolve"] = time.perf_counter() - start
        if compare:
            from pyomo.contrib.appsi.solvers.highs import Highs as AppsiHighs
            from pyomo.contrib.solver.solvers.highs import Highs as ContribHighs

            for name, factory in (("appsi_highs", AppsiHighs), ("contrib_highs", ContribHighs)):
                solver = factory()
                solver.available()
                with PauseGC():
                    start = time.perf_counter()
                    solver.set_instance(em.model)
                    row[name] = time.perf_counter() - start
        rows.append(row)
    table = pd.DataFrame(rows)
    for col in [c for c in table.columns if c not in ("run", "arcs")]:
        table[f"{col}_us_per_arc"] = 1e6 * table[col] / max(n, 1)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description="Time the exchange model build, hand-over and solve.")
    parser.add_argument("--arcs", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3, help="runs in one process; report the best")
    parser.add_argument("--compare", action="store_true", help="also time appsi_highs / contrib highs")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    table = time_exchange(args.arcs, seed=args.seed, repeat=args.repeat, compare=args.compare)
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print(table.round(3).T.to_string())  # noqa: T201 - a command-line timing report
        print("best (min over runs):")  # noqa: T201
        print(table.drop(columns="run").min().round(3).to_string())  # noqa: T201


def region_for(candidates: Candidates, *, name: str = "test") -> Any:
    """A minimal Region whose facilities and flows match the candidates (for ``evaluate`` and balances).

    Each supply becomes an out flow (by_product) and each demand an in flow (raw material) of its facility,
    with the supply's or demand's id as flow id; reference tables are empty.
    """
    from symbiosis.reference import Reference
    from symbiosis.region import FLOW_COLUMNS, Region, RegionSettings

    sup, dem = candidates.supplies, candidates.demands
    ids = list(dict.fromkeys([*sup["facility_id"], *dem["facility_id"]]))
    facilities = pd.DataFrame({
        "facility_id": ids, "name": ids, "sector": "C", "lat": 55.0, "lon": 11.0, "confidential": False,
        "process_model": "", "activity": np.nan, "activity_unit": "",
    })
    rows = []
    for r in sup.itertuples():
        rows.append({"flow_id": r.supply_id, "facility_id": r.facility_id, "direction": "out",
                     "category": "by_product", "material": r.material, "amount_t_per_yr": r.amount_t_per_yr,
                     "fate": r.fate, "price_per_t": r.fate_cost_per_t, "exchangeable": True})
    for r in dem.itertuples():
        rows.append({"flow_id": r.demand_id, "facility_id": r.facility_id, "direction": "in",
                     "category": "raw_material", "material": r.material, "amount_t_per_yr": r.amount_t_per_yr,
                     "fate": "", "price_per_t": r.virgin_price_per_t, "exchangeable": True,
                     "max_secondary_share": r.max_secondary_share})
    flows = pd.DataFrame(rows)
    defaults = {"quantity": "mass", "amount_mwh_per_yr": np.nan, "price_per_mwh": np.nan,
                "max_secondary_share": np.nan, "max_distance_km": np.nan, "uncertainty_pct": np.nan,
                "source": "test", "data_quality": "measured", "note": "", "origin": "test"}
    for col, value in defaults.items():
        if col not in flows.columns:
            flows[col] = value
    flows = flows.reindex(columns=FLOW_COLUMNS)
    empty = pd.DataFrame()
    reference = Reference(materials=empty, substitutions=empty, emission_factors=empty, fates=empty)
    return Region(
        name=name, settings=RegionSettings(name=name), facilities=facilities, flows=flows,
        quality=pd.DataFrame(columns=["flow_id", "parameter", "value", "unit", "bound", "virgin_value"]),
        arcs=pd.DataFrame(columns=["supply_facility", "demand_facility", "distance_km", "cost_per_t"]),
        reference=reference,
    )


if __name__ == "__main__":
    main()
