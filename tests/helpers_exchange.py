"""Test helpers for the exchange model: Candidates built directly from small tables, and random instances.

The exchange model and the results stage only read a :class:`~symbiosis.candidates.Candidates`, so their
tests build one by hand (``make_candidates``) with every column of docs/architecture.md filled from short
dicts, or at random (``random_candidates``) for the invariant tests, the linprog cross-check and the timing
of the build at scale. Run ``python -m tests.helpers_exchange --arcs 100000`` from the repository root to
time the build and hand-over (the figures in docs/formulation.md).
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

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
}
ARC_DEFAULTS: dict[str, Any] = {
    "distance_km": 10.0, "max_distance_km": 100.0, "ratio": 1.0, "processing_cost_per_t": 0.0,
    "processing_co2e_per_t": 0.0, "transport_cost_per_t": 0.0, "transport_co2e_per_t": 0.0,
    "capacity_t_per_yr": np.nan,
}
SCREENING_COLUMNS = ["s", "supply_id", "n_compatible", "n_beyond_distance", "n_quality_screened", "n_arcs"]


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
    min). Screening defaults to counting the arcs given as the compatible demands.
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
            "s": np.arange(len(sup)), "supply_id": sup["supply_id"], "n_compatible": counts,
            "n_beyond_distance": 0, "n_quality_screened": 0, "n_arcs": counts,
        })
    else:
        scr = pd.DataFrame(list(screening))
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


def _time_pipeline(n_arcs: int, seed: int) -> dict[str, float]:
    from symbiosis.exchange import solve_exchange

    n_side = max(int(np.sqrt(n_arcs / 0.05)), 10)
    cand = random_candidates(n_side, n_side, n_arcs, seed=seed)
    start = time.perf_counter()
    sol = solve_exchange(cand, carbon_price=50.0)
    total = time.perf_counter() - start
    n = len(cand.arcs)
    figures = {"arcs": float(n), "supplies": float(n_side), "demands": float(n_side), "total_s": total}
    for key, seconds in sol.timings.items():
        figures[f"{key}_s"] = seconds
        figures[f"{key}_us_per_arc"] = 1e6 * seconds / max(n, 1)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description="Time the exchange model build, hand-over and solve.")
    parser.add_argument("--arcs", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=2,
                        help="runs in one process; the first pays one-off imports (scipy.stats via Pyomo)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    for run in range(args.repeat):
        print(f"run {run + 1}")  # noqa: T201 - a command-line timing report
        for key, value in _time_pipeline(args.arcs, args.seed).items():
            print(f"{key:>28}: {value:,.3f}")  # noqa: T201


if __name__ == "__main__":
    main()
