"""Scale benchmark (issue 6): the pipeline stage by stage against the bare monolithic HiGHS solve.

Run by hand, never collected by pytest (the file name does not match ``test_*.py``)::

    .venv/bin/python tests/benchmarks/bench_pipeline.py --sizes 100 1000 5000 10000 \\
        --out docs/performance-data.json
    .venv/bin/python tests/benchmarks/bench_pipeline.py --sizes --arcs 20000 100000 300000 1000000 \\
        --out docs/performance-arcs.json

Region mode (``--sizes``): for each number of facilities N a synthetic region is generated
(``symbiosis.synthetic.generate_region``, cached in ``--cache``; with processors and heat, or without them
with ``--plain``, the regions the figures before issue 19 were measured on), then one fresh subprocess per size times
each stage separately (load, balances, candidates, model build, hand-over, solve, results) and records the
peak resident memory after each stage (``ru_maxrss``, which only grows, so "after hand-over" is the peak of
everything before the solver runs). The candidate arcs are pickled and a second fresh subprocess solves the
same LP with ``bare_highs.solve_bare`` (numpy → highspy, ``solver=ipm``, crossover on) as the reference.

Arcs-only mode (``--arcs``): Candidates are built directly with numpy at the given numbers of arcs (no
region files), to measure the exchange model's build / hand-over / solve per arc against the bare solve.

Stages that do not exist yet in the package are reported as ``missing`` and skipped; the rest still runs.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import math
import os
import pickle
import platform
import resource
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
for _p in (str(REPO), str(HERE)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

KIB = 1024.0


# --------------------------------------------------------------------------------------------------
# Arcs-only Candidates, built with numpy
# --------------------------------------------------------------------------------------------------

def synthetic_candidates(
    n_arcs: int,
    *,
    seed: int = 0,
    arcs_per_node: float = 25.0,
    n_groups: int = 8,
    quality_parameters: int = 3,
    carbon_price: float = 80.0,
    area_km: tuple[float, float] = (200.0, 150.0),
) -> Any:
    """Candidates with about ``n_arcs`` arcs, drawn directly (no region, no screening).

    Supplies and demands are points in an ``area_km`` rectangle, clustered around a few towns, split into
    ``n_groups`` material groups (arcs stay inside a group). Each arc joins a supply to a demand of its
    group that is near it in a spatial ordering, so arcs are local as after a distance screen. Every supply
    is measured for ``quality_parameters`` parameters; each demand bounds one to all of them (the first
    parameter as a minimum, like a calorific value, the others as maxima), with limits drawn so that quality
    rows bind at some demands. Columns follow docs/architecture.md.
    """
    from symbiosis.candidates import Candidates

    rng = np.random.default_rng(seed)
    n_nodes = max(2, int(round(n_arcs / arcs_per_node)))
    n_s = n_d = n_nodes

    def points(n: int) -> np.ndarray:
        towns = rng.uniform([0, 0], area_km, size=(12, 2))
        town = rng.integers(0, len(towns), n)
        pts = towns[town] + rng.normal(0, 12.0, size=(n, 2))
        scatter = rng.random(n) < 0.25
        pts[scatter] = rng.uniform([0, 0], area_km, size=(int(scatter.sum()), 2))
        return np.clip(pts, 0, area_km)

    s_xy, d_xy = points(n_s), points(n_d)
    s_group = rng.integers(0, n_groups, n_s)
    d_group = rng.integers(0, n_groups, n_d)

    # Per group, order demands along a serpentine sweep (coarse x strips, y within) and join each arc's
    # supply to a demand at a small random offset from the supply's place in that order.
    strip = 10.0

    def sweep_key(xy: np.ndarray) -> np.ndarray:
        col = np.floor(xy[:, 0] / strip)
        y = np.where(col % 2 == 0, xy[:, 1], area_km[1] - xy[:, 1])
        return col * 1e4 + y

    s_key, d_key = sweep_key(s_xy), sweep_key(d_xy)
    arc_s_parts, arc_d_parts = [], []
    # Oversample, since near pairs repeat, then thin to exactly n_arcs.
    per_supply = rng.poisson(1.6 * arcs_per_node, n_s) + 1
    for g in range(n_groups):
        ds = np.flatnonzero(d_group == g)
        ss = np.flatnonzero(s_group == g)
        if len(ds) == 0 or len(ss) == 0:
            continue
        ds = ds[np.argsort(d_key[ds], kind="stable")]
        pos = np.searchsorted(d_key[ds], s_key[ss])
        k = per_supply[ss]
        a_s = np.repeat(ss, k)
        offset = np.round(rng.normal(0, max(3.0, 1.6 * arcs_per_node), k.sum())).astype(np.int64)
        a_d = ds[np.clip(np.repeat(pos, k) + offset, 0, len(ds) - 1)]
        arc_s_parts.append(a_s)
        arc_d_parts.append(a_d)
    pairs = np.unique(np.stack([np.concatenate(arc_s_parts), np.concatenate(arc_d_parts)], axis=1), axis=0)
    if len(pairs) > n_arcs:
        pairs = pairs[np.sort(rng.choice(len(pairs), n_arcs, replace=False))]
    a_s, a_d = pairs[:, 0], pairs[:, 1]
    n_a = len(a_s)

    distance = np.hypot(*(s_xy[a_s] - d_xy[a_d]).T) * 1.3
    supply_ids = np.char.add("S", np.arange(n_s).astype(str)).astype(object)
    demand_ids = np.char.add("D", np.arange(n_d).astype(str)).astype(object)
    supplies = pd.DataFrame({
        "supply_id": supply_ids,
        "facility_id": np.char.add("F", (np.arange(n_s) // 2).astype(str)).astype(object),
        "material": np.char.add("sec", s_group.astype(str)).astype(object),
        "category": "by_product",
        "amount_t_per_yr": np.round(rng.lognormal(np.log(2000), 1.0, n_s), 1),
        "fate": "landfill", "fate_kind": "landfill",
        "fate_cost_per_t": np.round(rng.uniform(20, 120, n_s), 2),
        "fate_co2e_per_t": np.round(rng.uniform(0.0, 0.5, n_s), 3),
        "lat": 55.5 + (s_xy[:, 1] - area_km[1] / 2) / 111.0,
        "lon": 10.5 + (s_xy[:, 0] - area_km[0] / 2) / 63.0,
    })
    share = np.where(rng.random(n_d) < 0.5, np.nan, np.round(rng.uniform(0.1, 0.6, n_d), 2))
    demands = pd.DataFrame({
        "demand_id": demand_ids,
        "facility_id": np.char.add("F", (np.arange(n_d) // 2 + n_s).astype(str)).astype(object),
        "material": np.char.add("prim", d_group.astype(str)).astype(object),
        "material_class": "mineral", "density_t_per_m3": 1.5,
        "amount_t_per_yr": np.round(rng.lognormal(np.log(3000), 1.0, n_d), 1),
        "virgin_price_per_t": np.round(rng.uniform(10, 80, n_d), 2),
        "virgin_co2e_per_t": np.round(rng.uniform(0.01, 0.9, n_d), 3),
        "max_secondary_share": share,
        "lat": 55.5 + (d_xy[:, 1] - area_km[1] / 2) / 111.0,
        "lon": 10.5 + (d_xy[:, 0] - area_km[0] / 2) / 63.0,
    })
    capacity = np.where(rng.random(n_a) < 0.05, np.round(rng.uniform(100, 2000, n_a), 0), np.nan)
    arcs = pd.DataFrame({
        "s": a_s, "d": a_d,
        "supply_id": supply_ids[a_s], "demand_id": demand_ids[a_d],
        "supply_facility": supplies["facility_id"].to_numpy()[a_s],
        "demand_facility": demands["facility_id"].to_numpy()[a_d],
        "distance_km": distance, "max_distance_km": 50.0,
        "ratio": np.round(rng.uniform(0.5, 1.0, n_groups)[s_group[a_s]], 3),
        "processing_cost_per_t": np.round(rng.uniform(0, 10, n_groups)[s_group[a_s]], 2),
        "processing_co2e_per_t": np.round(rng.uniform(0, 0.02, n_groups)[s_group[a_s]], 4),
        "transport_cost_per_t": 0.10 * distance,
        "transport_co2e_per_t": 0.000062 * distance,
        "capacity_t_per_yr": capacity,
    })
    params = [f"q{i}" for i in range(quality_parameters)]
    # Supply measurements around 1.0 (lognormal); demand limits around the same scale.
    sq_val = rng.lognormal(0.0, 0.5, (n_s, quality_parameters))
    supply_quality = pd.DataFrame({
        "s": np.repeat(np.arange(n_s), quality_parameters),
        "parameter": np.tile(np.array(params, dtype=object), n_s),
        "value": np.round(sq_val.ravel(), 4),
    })
    n_bounds = rng.integers(1, quality_parameters + 1, n_d)
    dq_d = np.repeat(np.arange(n_d), n_bounds)
    dq_p = np.arange(len(dq_d)) - np.repeat(np.cumsum(n_bounds) - n_bounds, n_bounds)
    is_min = dq_p == 0
    limit = np.where(is_min, rng.uniform(0.4, 0.9, len(dq_d)), rng.uniform(0.9, 1.8, len(dq_d)))
    virgin = np.where(is_min, np.nan, np.round(limit * rng.uniform(0.1, 0.6, len(dq_d)), 4))
    demand_quality = pd.DataFrame({
        "d": dq_d, "parameter": np.array(params, dtype=object)[dq_p],
        "bound": np.where(is_min, "min", "max").astype(object),
        "limit": np.round(limit, 4),
        "virgin_value": np.where(is_min, np.round(limit * 1.5, 4), virgin),
    })
    return Candidates(
        supplies=supplies, demands=demands, arcs=arcs, supply_quality=supply_quality,
        demand_quality=demand_quality, screening=pd.DataFrame(),
        parameters={"carbon_price": carbon_price, "transport_cost_per_tkm": 0.10,
                    "transport_co2_per_tkm": 0.000062, "circuity": 1.3, "max_distance_km": 50.0,
                    "synthetic": "arcs-only"},
    )


# --------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------

def maxrss_mib() -> float:
    """Peak resident memory of this process so far, MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / KIB


def current_rss_mib() -> float:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / KIB / KIB
    except OSError:
        return float("nan")


@contextlib.contextmanager
def _solver_entry_memory(record: dict[str, Any]) -> Any:
    """Record the memory the pipeline holds each time it hands control to HiGHS.

    ``at_first_solver_entry`` is the process peak before HiGHS first runs (everything up to and including the
    first hand-over, no solver work yet); ``held_at_solver_entry`` the largest resident size at the start of
    any solve (column generation solves once per round; HiGHS instances of earlier rounds are freed by then).
    Their maximum, less the baseline, is the memory beyond the solver.
    """
    blocks = optional("symbiosis.exchange.blocks", "BlockSolver")
    if blocks is None:
        yield
        return
    original = blocks.run

    def probed(self: Any, *args: Any, **kwargs: Any) -> Any:
        mem = record["maxrss_mib"]
        mem.setdefault("at_first_solver_entry", maxrss_mib())
        mem["held_at_solver_entry"] = max(mem.get("held_at_solver_entry", 0.0), current_rss_mib())
        return original(self, *args, **kwargs)

    blocks.run = probed
    try:
        yield
    finally:
        blocks.run = original


def optional(module: str, name: str) -> Any:
    """``module.name`` or None when the package does not provide it yet."""
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return None


def carbon_price_of(candidates: Any) -> float:
    return float((candidates.parameters or {}).get("carbon_price", 0.0) or 0.0)


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {"nproc": os.cpu_count(), "python": platform.python_version(),
                            "platform": platform.platform()}
    try:
        with open("/proc/cpuinfo") as fh:
            info["cpu"] = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), "")
        with open("/proc/meminfo") as fh:
            info["mem_total_gib"] = round(int(fh.readline().split()[1]) / KIB / KIB, 1)
    except OSError:
        pass
    for mod in ("numpy", "pandas", "scipy", "highspy", "pyomo"):
        try:
            m = importlib.import_module(mod)
            info[mod] = getattr(m, "__version__", None) or getattr(getattr(m, "version", None), "version", None)
        except ImportError:
            info[mod] = None
    try:
        import highspy
        info["highs"] = highspy.Highs().version()
    except Exception:  # noqa: BLE001
        pass
    return info


# Names the exchange stage may use for its timings, mapped to the benchmark's stages.
TIMING_ALIASES = {
    "build": "model_build", "model_build": "model_build", "build_model": "model_build",
    "handover": "hand_over", "hand_over": "hand_over", "hand-over": "hand_over", "transfer": "hand_over",
    "to_solver": "hand_over", "compile": "hand_over", "load_solver": "hand_over",
    "solve": "solve", "solver": "solve", "highs": "solve", "run": "solve",
    "extract": "extract", "duals": "extract", "read_back": "extract",
    "pricing": "pricing",
    "grow": "hand_over",  # columns added to HiGHS from the arrays (symbiosis.exchange.grow): part of handing over
}


def run_exchange(candidates: Any, record: dict[str, Any], method: str, strategy: str = "pipeline") -> Any:
    """Solve the exchange as the pipeline would and record its total wall time and its own timings.

    ``strategy``: ``pipeline`` follows ``symbiosis.pipeline.optimise`` (column generation from its arc and
    arcs-per-node thresholds, where the package has them); ``monolithic`` calls ``solve_exchange``;
    ``column_generation`` calls ``solve_column_generation``.
    """
    solve_exchange = optional("symbiosis.exchange", "solve_exchange")
    if solve_exchange is None:
        record["stages"]["exchange"] = "missing"
        return None
    solve_cg = optional("symbiosis.exchange", "solve_column_generation")
    if strategy == "pipeline":
        # The rule of symbiosis.pipeline.optimise(strategy="auto"), from the pipeline itself.
        choose = optional("symbiosis.pipeline", "choose_strategy")
        density = len(candidates.arcs) / max(1, len(candidates.supplies) + len(candidates.demands))
        strategy = choose(candidates) if (choose is not None and solve_cg is not None) else "monolithic"
        record["arcs_per_node"] = density
    if strategy == "column_generation":
        if solve_cg is None:
            record["stages"]["column_generation"] = "missing"
            return None
        solve_exchange = solve_cg
    elif record.get("arcs_per_node") is not None:
        # A large whole LP: the pipeline hands most of it to HiGHS from the arrays (grow.solve_whole).
        grown_from = optional("symbiosis.pipeline", "WHOLE_LP_GROWN_FROM_ARCS")
        solve_whole = optional("symbiosis.exchange.grow", "solve_whole")
        if grown_from is not None and solve_whole is not None and len(candidates.arcs) >= grown_from:
            solve_exchange = solve_whole
    record["strategy"] = strategy
    kwargs: dict[str, Any] = {}
    try:
        import inspect
        sig = inspect.signature(solve_exchange).parameters
        if "carbon_price" in sig:
            kwargs["carbon_price"] = carbon_price_of(candidates)
        if "method" in sig:
            kwargs["method"] = method
        elif "solver_method" in sig:
            kwargs["solver_method"] = method
    except (TypeError, ValueError):
        pass
    t0 = time.perf_counter()
    with _solver_entry_memory(record):
        solution = solve_exchange(candidates, **kwargs)
    record_solution(record, solution, time.perf_counter() - t0)
    return solution


def record_solution(record: dict[str, Any], solution: Any, seconds: float) -> None:
    """The exchange stage's wall time, its own timings (added to the stages they belong to), objective, status
    and parameters (e.g. column generation's rounds and the size of its final restricted model)."""
    record["seconds"]["exchange_total"] = seconds
    record["maxrss_mib"]["after_exchange"] = maxrss_mib()
    timings = dict(getattr(solution, "timings", {}) or {})
    record["exchange_timings"] = {k: float(v) for k, v in timings.items() if isinstance(v, (int, float))}
    for key, value in record["exchange_timings"].items():
        stage = TIMING_ALIASES.get(key.lower())
        if stage:
            record["seconds"][stage] = record["seconds"].get(stage, 0.0) + value
    record["objective"] = float(getattr(solution, "objective", float("nan")))
    record["objective_bau"] = float(getattr(solution, "objective_bau", float("nan")))
    record["status"] = str(getattr(solution, "status", ""))
    record["solver"] = str(getattr(solution, "solver", ""))
    record["exchange_parameters"] = {k: v for k, v in (getattr(solution, "parameters", {}) or {}).items()
                                     if isinstance(v, (int, float, str))}


def run_periods(region: Any, candidates: Any, record: dict[str, Any], method: str, strategy: str,
                pickle_path: str) -> None:
    """The time-expanded model of a region with periods (symbiosis.periods), stage by stage as
    ``symbiosis.periods.solve.optimise_periods`` runs it: expand, solve (column generation where the pipeline's
    rule picks it), results. ``n_arcs`` becomes the number of arc-periods, so every per-arc figure is per
    arc-period; the pickle for the bare solve holds the expanded candidates with the stores' arrays."""
    from symbiosis.periods.expand import capacity_parts, expand, storage_arrays
    from symbiosis.periods.solve import (
        aggregate,
        evaluation_candidates,
        period_results,
        solve_expanded,
    )
    from symbiosis.results import evaluate

    t0 = time.perf_counter()
    share_cap, route = capacity_parts(candidates, region.reference.substitutions, region.arcs)
    ex = expand(candidates, region.time, share_cap=share_cap, route_capacity=route)
    record["seconds"]["expand"] = time.perf_counter() - t0
    record["maxrss_mib"]["after_expand"] = maxrss_mib()
    record["n_periods"] = ex.n_periods
    record["n_stores"] = len(ex.stores)
    record["n_base_arcs"] = len(candidates.arcs)
    record["n_arcs"] = len(ex.candidates.arcs)
    record["n_supplies"] = len(ex.candidates.supplies)
    record["n_demands"] = len(ex.candidates.demands)
    expanded = ex.candidates
    base = candidates.supplies
    expanded.storage = storage_arrays(ex, pd.to_numeric(base["fate_cost_per_t"], errors="coerce").to_numpy(float),
                                      pd.to_numeric(base["fate_co2e_per_t"], errors="coerce").to_numpy(float))
    with open(pickle_path, "wb") as fh:
        pickle.dump(expanded, fh, protocol=pickle.HIGHEST_PROTOCOL)
    del expanded.storage
    record["_flush"]()
    chosen = {"pipeline": "auto"}.get(strategy, strategy)
    t0 = time.perf_counter()
    with _solver_entry_memory(record):
        solution, arrays = solve_expanded(ex, carbon_price=carbon_price_of(candidates), method=method,
                                          strategy=chosen)
    record_solution(record, solution, time.perf_counter() - t0)
    record["strategy"] = str(solution.parameters.get("strategy", "monolithic"))
    record["_flush"]()
    t0 = time.perf_counter()
    annual = aggregate(ex, solution, arrays)
    results = evaluate(region, evaluation_candidates(ex, solution), annual)
    results.periods = period_results(ex, solution, arrays)
    record["seconds"]["results"] = time.perf_counter() - t0
    record["maxrss_mib"]["after_results"] = maxrss_mib()
    record["n_exchanges"] = len(results.exchanges)


def record_candidates(record: dict[str, Any], candidates: Any) -> None:
    """Sizes of the candidates, with what they hold of the families of issue 19 (0 on a plain region)."""
    record["n_supplies"] = len(candidates.supplies)
    record["n_demands"] = len(candidates.demands)
    record["n_arcs"] = len(candidates.arcs)
    processors = getattr(candidates, "processors", None)
    record["n_processors"] = 0 if processors is None else len(processors)
    energy_s = (candidates.supplies["quantity"] == "energy").to_numpy() if "quantity" in candidates.supplies \
        else np.zeros(len(candidates.supplies), bool)
    record["n_heat_supplies"] = int(energy_s.sum())
    record["n_heat_arcs"] = int(energy_s[candidates.arcs["s"].to_numpy(np.int64)].sum())
    record["carbon_price"] = carbon_price_of(candidates)


def seasonal_region(region_dir: Path, periods: str, n_stores: int, seed: int) -> Path:
    """A copy of ``region_dir`` with periods, profiles and stores (symbiosis.periods.seasonal), cached beside it."""
    import shutil

    from symbiosis.periods.seasonal import add_seasons

    target = region_dir.with_name(f"{region_dir.name}-{periods.replace(' ', '')}-{n_stores}stores")
    if not (target / "profiles.csv").exists():
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(region_dir, target)
        add_seasons(target, periods=periods, n_stores=n_stores, seed=seed)
    return target


# --------------------------------------------------------------------------------------------------
# Workers (each in a fresh subprocess, so ru_maxrss belongs to one size only)
# --------------------------------------------------------------------------------------------------

def worker_region(region_dir: str, pickle_path: str, out_path: str, method: str, strategy: str) -> None:
    record: dict[str, Any] = {"seconds": {}, "maxrss_mib": {}, "stages": {}}
    record["_flush"] = lambda: Path(out_path).write_text(
        json.dumps({k: v for k, v in record.items() if k != "_flush"}, default=float))
    import symbiosis  # noqa: F401  (imports counted in the baseline, not in a stage)
    record["maxrss_mib"]["baseline"] = maxrss_mib()
    record["rss_mib_baseline"] = current_rss_mib()
    region = candidates = solution = None
    try:
        load_region = optional("symbiosis.inputs", "load_region")
        if load_region is None:
            record["stages"]["load"] = "missing"
            return
        t0 = time.perf_counter()
        region = load_region(region_dir)
        record["seconds"]["load"] = time.perf_counter() - t0
        record["maxrss_mib"]["after_load"] = maxrss_mib()
        record["n_facilities"] = len(region.facilities)
        record["n_flows"] = len(region.flows)
        record["n_warnings"] = len(region.warnings)
        record["_flush"]()

        balances = optional("symbiosis.balances", "balances")
        if balances is None:
            record["stages"]["balances"] = "missing"
        else:
            t0 = time.perf_counter()
            bal = balances(region)
            record["seconds"]["balances"] = time.perf_counter() - t0
            record["maxrss_mib"]["after_balances"] = maxrss_mib()
            table = getattr(bal, "table", None)
            if table is not None and "within_tolerance" in table:
                record["balances_within_tolerance"] = float(table["within_tolerance"].mean())
            del bal
            record["_flush"]()

        make_candidates = optional("symbiosis.candidates", "candidates")
        if make_candidates is None:
            record["stages"]["candidates"] = "missing"
            return
        t0 = time.perf_counter()
        candidates = make_candidates(region)
        record["seconds"]["candidates"] = time.perf_counter() - t0
        record["maxrss_mib"]["after_candidates"] = maxrss_mib()
        record_candidates(record, candidates)
        if getattr(region, "time", None) is not None:  # periods or stores: the time-expanded model
            run_periods(region, candidates, record, method, strategy, pickle_path)
            return
        with open(pickle_path, "wb") as fh:
            pickle.dump(candidates, fh, protocol=pickle.HIGHEST_PROTOCOL)
        record["_flush"]()

        solution = run_exchange(candidates, record, method, strategy)
        record["_flush"]()
        if solution is None:
            return

        evaluate = optional("symbiosis.results", "evaluate")
        if evaluate is None:
            record["stages"]["results"] = "missing"
        else:
            t0 = time.perf_counter()
            results = evaluate(region, candidates, solution)
            record["seconds"]["results"] = time.perf_counter() - t0
            record["maxrss_mib"]["after_results"] = maxrss_mib()
            record["n_exchanges"] = len(getattr(results, "exchanges", []))
    except Exception as exc:  # noqa: BLE001  (a failing stage is a finding, not the end of the run)
        record["error"] = f"{type(exc).__name__}: {exc}"
        record["traceback"] = traceback.format_exc()
    finally:
        record["maxrss_mib"]["final"] = maxrss_mib()
        record["_flush"]()


def worker_arcs(n_arcs: int, seed: int, pickle_path: str, out_path: str, method: str, strategy: str) -> None:
    record: dict[str, Any] = {"seconds": {}, "maxrss_mib": {}, "stages": {}}
    import symbiosis  # noqa: F401
    record["maxrss_mib"]["baseline"] = maxrss_mib()
    try:
        t0 = time.perf_counter()
        candidates = synthetic_candidates(n_arcs, seed=seed)
        record["seconds"]["generate"] = time.perf_counter() - t0
        record["maxrss_mib"]["after_candidates"] = maxrss_mib()
        record_candidates(record, candidates)
        with open(pickle_path, "wb") as fh:
            pickle.dump(candidates, fh, protocol=pickle.HIGHEST_PROTOCOL)
        run_exchange(candidates, record, method, strategy)
    except Exception as exc:  # noqa: BLE001
        record["error"] = f"{type(exc).__name__}: {exc}"
        record["traceback"] = traceback.format_exc()
    finally:
        record["maxrss_mib"]["final"] = maxrss_mib()
        Path(out_path).write_text(json.dumps(record, default=float))


def worker_bare(pickle_path: str, out_path: str, method: str, time_limit: float | None) -> None:
    from bare_highs import solve_bare

    record: dict[str, Any] = {}
    with open(pickle_path, "rb") as fh:
        candidates = pickle.load(fh)
    record["maxrss_mib_baseline"] = maxrss_mib()
    try:
        objective, seconds, info = solve_bare(candidates, carbon_price=carbon_price_of(candidates),
                                              method=method, time_limit=time_limit)
        record.update({
            "objective": objective, "run_seconds": seconds, "build_seconds": info["build_seconds"],
            "pass_seconds": info["pass_seconds"], "status": info["status"],
            "ipm_iterations": info["ipm_iterations"], "crossover_iterations": info["crossover_iterations"],
            "simplex_iterations": info["simplex_iterations"], "n_rows": info["n_rows"],
            "n_cols": info["n_cols"], "nnz": info["nnz"], "highs_version": info["highs_version"],
        })
    except Exception as exc:  # noqa: BLE001
        record["error"] = f"{type(exc).__name__}: {exc}"
    record["maxrss_mib_final"] = maxrss_mib()
    Path(out_path).write_text(json.dumps(record, default=float))


def spawn(args: list[str], timeout: float | None) -> dict[str, Any]:
    """Run this file as a worker in a fresh interpreter and read back its JSON record."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as tmp:
        out = tmp.name
    cmd = [sys.executable, str(Path(__file__).resolve()), *args, "--worker-out", out]
    # Other work on the machine skews timings: keep the load average beside every figure.
    load_before = os.getloadavg()
    try:
        proc = subprocess.run(cmd, timeout=timeout, capture_output=True, text=True)
        text = Path(out).read_text() if Path(out).stat().st_size else ""
        record = json.loads(text) if text else {}
        if proc.returncode != 0:
            record["error"] = record.get("error") or f"worker exit {proc.returncode}: {proc.stderr[-2000:]}"
    except subprocess.TimeoutExpired:
        text = Path(out).read_text() if Path(out).exists() and Path(out).stat().st_size else ""
        record = json.loads(text) if text else {}
        record["error"] = f"timeout after {timeout} s (stages before it are kept)"
    finally:
        Path(out).unlink(missing_ok=True)
    record["loadavg_before"] = list(load_before)
    record["loadavg_after"] = list(os.getloadavg())
    return record


# --------------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------------

STAGES = ["load", "balances", "candidates", "expand", "model_build", "hand_over", "solve", "results"]


def summarise(row: dict[str, Any]) -> None:
    """Derived figures: pipeline total, outside-HiGHS time per arc, memory per arc, ratio to bare."""
    pipe, bare = row.get("pipeline", {}), row.get("bare", {})
    sec = pipe.get("seconds", {})
    n_arcs = pipe.get("n_arcs") or 0
    keys = ["load", "balances", "candidates", "expand", "exchange_total", "results"]
    total = sum(sec.get(k, 0.0) for k in keys)
    row["pipeline_seconds"] = total if sec else None
    if n_arcs and "exchange_total" in sec:
        inside = sec.get("solve", float("nan"))
        row["outside_highs_us_per_arc"] = (total - inside) / n_arcs * 1e6
        row["exchange_outside_highs_us_per_arc"] = (sec["exchange_total"] - inside) / n_arcs * 1e6
    mem = pipe.get("maxrss_mib", {})
    if n_arcs and "after_candidates" in mem:
        before_solver = max(v for k, v in mem.items()
                            if k in ("after_load", "after_balances", "after_candidates", "after_expand"))
        row["peak_mib_before_exchange"] = before_solver
        row["peak_mib_total"] = mem.get("final")
        row["mib_beyond_baseline"] = mem.get("final", before_solver) - mem.get("baseline", 0.0)
        if "at_first_solver_entry" in mem:
            outside = max(before_solver, mem["at_first_solver_entry"], mem.get("held_at_solver_entry", 0.0))
            # A peak reached in the results stage (above the exchange stage's, solver included) is the
            # pipeline's own: the HiGHS instances are gone by then.
            if mem.get("after_results", 0.0) > mem.get("after_exchange", math.inf):
                outside = max(outside, mem["after_results"])
            row["mib_beyond_solver"] = outside - mem.get("baseline", 0.0)
            row["kib_per_arc_beyond_solver"] = row["mib_beyond_solver"] * KIB / n_arcs
    if bare.get("run_seconds") is not None:
        row["bare_seconds"] = bare["run_seconds"]
        row["bare_total_seconds"] = bare["run_seconds"] + bare["build_seconds"] + bare["pass_seconds"]
        if n_arcs:
            row["bare_build_pass_us_per_arc"] = (bare["build_seconds"] + bare["pass_seconds"]) / n_arcs * 1e6
        if row.get("pipeline_seconds"):
            row["pipeline_over_bare"] = row["pipeline_seconds"] / bare["run_seconds"]
        obj, ref = pipe.get("objective"), bare.get("objective")
        if obj is not None and ref is not None and np.isfinite(obj):
            row["objective_rel_diff"] = abs(obj - ref) / max(1.0, abs(ref))


def fmt(value: Any, spec: str = ".2f") -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "-"
    return format(value, spec)


def print_table(rows: list[dict[str, Any]]) -> None:
    head = (f"{'case':>12} {'arcs':>9} " + " ".join(f"{s[:10]:>10}" for s in STAGES)
            + f" {'total':>8} {'bare':>8} {'ratio':>6} {'us/arc':>7} {'MiB':>7} {'bareMiB':>7} {'objdiff':>8}")
    print(head)
    print("-" * len(head))
    for row in rows:
        pipe = row.get("pipeline", {})
        sec = pipe.get("seconds", {})
        print(f"{row['case']:>12} {fmt(pipe.get('n_arcs'), 'd'):>9} "
              + " ".join(f"{fmt(sec.get(s)):>10}" for s in STAGES)
              + f" {fmt(row.get('pipeline_seconds')):>8} {fmt(row.get('bare_seconds')):>8}"
              + f" {fmt(row.get('pipeline_over_bare')):>6} {fmt(row.get('outside_highs_us_per_arc'), '.1f'):>7}"
              + f" {fmt(pipe.get('maxrss_mib', {}).get('final'), '.0f'):>7}"
              + f" {fmt(row.get('bare', {}).get('maxrss_mib_final'), '.0f'):>7}"
              + f" {fmt(row.get('objective_rel_diff'), '.1e'):>8}")
        if pipe.get("n_processors") is not None:
            print(f"{'':>12} {pipe['n_processors']} processors, {pipe.get('n_heat_supplies', 0)} heat supplies, "
                  f"{pipe.get('n_heat_arcs', 0)} heat arcs")
        if pipe.get("strategy"):
            blocks = pipe.get("exchange_parameters", {}).get("blocks", "-")
            beyond = fmt(row.get("kib_per_arc_beyond_solver"), ".2f")
            print(f"{'':>12} exchange solved by {pipe['strategy']} ({blocks} HiGHS block(s) in the last solve); "
                  f"status {pipe.get('status', '-')}; memory beyond the solver {beyond} KiB/arc")
        if pipe.get("error"):
            print(f"{'':>12} pipeline error: {pipe['error']}")
        if row.get("bare", {}).get("error"):
            print(f"{'':>12} bare error: {row['bare']['error']}")
        missing = [k for k, v in pipe.get("stages", {}).items() if v == "missing"]
        if missing:
            print(f"{'':>12} missing in the package: {', '.join(missing)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="*", default=[], help="numbers of facilities")
    parser.add_argument("--arcs", type=int, nargs="*", default=[], help="arcs-only sizes (no region files)")
    parser.add_argument("--out", type=Path, help="JSON file for the figures")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "symbiosis-bench",
                        help="where generated regions are kept between runs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-distance", type=float, default=50.0, help="km, written to region.yaml")
    parser.add_argument("--plain", action="store_true",
                        help="generate regions without processors and heat (the figures measured before issue 19)")
    parser.add_argument("--method", default="ipm", help="HiGHS solver option for both solves")
    parser.add_argument("--strategy", default="pipeline", choices=["pipeline", "monolithic", "column_generation"],
                        help="how the exchange is solved: as symbiosis.pipeline.optimise does (default), or forced")
    parser.add_argument("--no-bare", action="store_true", help="skip the bare HiGHS reference solve")
    parser.add_argument("--no-pipeline", action="store_true", help="only generate candidates and solve bare")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds per worker")
    parser.add_argument("--periods", choices=["12 months", "4 quarters", "52 weeks"],
                        help="add periods, seasonal profiles and stores to each region (symbiosis.periods.seasonal); "
                             "per-arc figures are then per arc-period")
    parser.add_argument("--stores", type=int, default=20, help="stores added with --periods")
    # Internal: worker entry points.
    parser.add_argument("--worker", choices=["region", "arcs", "bare"], help=argparse.SUPPRESS)
    parser.add_argument("--worker-out", help=argparse.SUPPRESS)
    parser.add_argument("--region-dir", help=argparse.SUPPRESS)
    parser.add_argument("--pickle", help=argparse.SUPPRESS)
    parser.add_argument("--n-arcs", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker == "region":
        worker_region(args.region_dir, args.pickle, args.worker_out, args.method, args.strategy)
        return 0
    if args.worker == "arcs":
        if args.no_pipeline:
            sys.modules.setdefault("symbiosis.exchange", None)  # type: ignore[arg-type]
        worker_arcs(args.n_arcs, args.seed, args.pickle, args.worker_out, args.method, args.strategy)
        return 0
    if args.worker == "bare":
        worker_bare(args.pickle, args.worker_out, args.method, args.timeout)
        return 0

    rows: list[dict[str, Any]] = []
    report = {"machine": machine(), "command": " ".join([Path(sys.executable).name, *sys.argv]),
              "method": args.method, "strategy": args.strategy, "seed": args.seed,
              "max_distance_km": args.max_distance, "plain": args.plain, "periods": args.periods,
              "stores": args.stores if args.periods else 0, "rows": rows}
    work = Path(tempfile.mkdtemp(prefix="bench-"))

    def save() -> None:
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(report, indent=1, default=float) + "\n")

    common = ["--method", args.method, "--timeout", str(args.timeout), "--seed", str(args.seed),
              "--strategy", args.strategy]
    for n in args.sizes:
        row: dict[str, Any] = {"case": f"N={n}", "mode": "region", "n_facilities": n}
        kind = "plain" if args.plain else "network"  # network: with processors and heat (issue 19)
        region_dir = args.cache / f"synthetic-{n}-seed{args.seed}-{int(args.max_distance)}km-{kind}"
        if not (region_dir / "region.yaml").exists():
            from symbiosis.synthetic import generate_region
            t0 = time.perf_counter()
            generate_region(n, region_dir, seed=args.seed, max_distance_km=args.max_distance, plain=args.plain)
            row["generate_seconds"] = time.perf_counter() - t0
        if args.periods:
            region_dir = seasonal_region(region_dir, args.periods, args.stores, args.seed)
            row["case"] = f"N={n}x{args.periods.split()[0]}"
        row["region_dir"] = str(region_dir)
        pkl = work / f"cand-{n}.pkl"
        print(f"[{time.strftime('%H:%M:%S')}] N={n}: pipeline ...", flush=True)
        row["pipeline"] = spawn(["--worker", "region", "--region-dir", str(region_dir), "--pickle", str(pkl),
                                 *common], args.timeout)
        if not args.no_bare and pkl.exists():
            print(f"[{time.strftime('%H:%M:%S')}] N={n}: bare HiGHS on {row['pipeline'].get('n_arcs')} arcs ...",
                  flush=True)
            row["bare"] = spawn(["--worker", "bare", "--pickle", str(pkl), *common], args.timeout)
        pkl.unlink(missing_ok=True)
        summarise(row)
        rows.append(row)
        save()
    for n_arcs in args.arcs:
        row = {"case": f"arcs={n_arcs}", "mode": "arcs-only", "n_arcs_requested": n_arcs}
        pkl = work / f"arcs-{n_arcs}.pkl"
        print(f"[{time.strftime('%H:%M:%S')}] arcs-only {n_arcs}: exchange ...", flush=True)
        extra = ["--no-pipeline"] if args.no_pipeline else []
        row["pipeline"] = spawn(["--worker", "arcs", "--n-arcs", str(n_arcs), "--pickle", str(pkl),
                                 *extra, *common], args.timeout)
        if not args.no_bare and pkl.exists():
            print(f"[{time.strftime('%H:%M:%S')}] arcs-only {n_arcs}: bare HiGHS ...", flush=True)
            row["bare"] = spawn(["--worker", "bare", "--pickle", str(pkl), *common], args.timeout)
        pkl.unlink(missing_ok=True)
        summarise(row)
        rows.append(row)
        save()
    with contextlib.suppress(OSError):
        work.rmdir()
    print_table(rows)
    save()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
