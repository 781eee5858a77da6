"""Incremental re-optimisation (issue 17): one firm's figures change in a large region; how long until the
region's optimum is known again, and is it the optimum?

Run by hand, never collected by pytest::

    .venv/bin/python tests/benchmarks/bench_incremental.py REGION_DIR --firms 20 --verify 3 \\
        --out out/bench/incremental.json

The region is loaded, its candidates built and solved once by column generation, keeping its grown model
(symbiosis.exchange.incremental.Reoptimiser). Then, one after another, ``--firms`` facilities chosen at random
(seeded) among those with a supply or demand that no processor drives change every such row: its amount by a
factor drawn in 0.5..1.5, and the fate cost of its supplies and the virgin price of its demands by a factor in
0.8..1.2. Each change is timed from the call to the optimum over every arc (re-solve of the blocks touched,
pricing of every arc, arcs added where any price out negative). For the first ``--verify`` changes the changed
candidates are also solved from nothing by column generation and the objectives compared.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("region", type=Path)
    parser.add_argument("--firms", type=int, default=20)
    parser.add_argument("--verify", type=int, default=2, help="changes also solved from nothing and compared")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--moves", type=int, default=0,
                        help="then move this many facilities (Reoptimiser.update), one after another")
    parser.add_argument("--move-km", type=float, default=3.0, help="how far each moved facility goes")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    import os

    from symbiosis.candidates import candidates
    from symbiosis.exchange.incremental import Reoptimiser
    from symbiosis.inputs import load_region

    record: dict[str, Any] = {"region": str(args.region), "loadavg_before": os.getloadavg(), "changes": []}
    t0 = time.perf_counter()
    region = load_region(args.region)
    cands = candidates(region)
    record["candidates_seconds"] = time.perf_counter() - t0
    record["n_arcs"] = len(cands.arcs)
    t0 = time.perf_counter()
    reopt = Reoptimiser(cands)
    record["first_solve_seconds"] = time.perf_counter() - t0
    record["master_arcs"] = int(reopt.state.active.sum())
    record["blocks"] = reopt.state.master.model._highs.n_blocks
    print(f"{len(cands.arcs)} arcs, first solve {record['first_solve_seconds']:.1f} s, "
          f"{record['master_arcs']} in the master, {record['blocks']} blocks", flush=True)

    full = reopt.state.full
    rng = np.random.default_rng(args.seed)
    sup, dem = cands.supplies, cands.demands
    driven_s = np.zeros(len(sup), bool)
    driven_s[full.out_rows] = True
    driven_d = np.zeros(len(dem), bool)
    driven_d[full.in_rows] = True
    firms = sorted(set(sup["facility_id"][~driven_s]) | set(dem["facility_id"][~driven_d]))
    chosen = rng.choice(firms, size=min(args.firms, len(firms)), replace=False)
    for k, firm in enumerate(chosen.tolist()):
        s_rows = np.flatnonzero((sup["facility_id"].to_numpy() == firm) & ~driven_s)
        d_rows = np.flatnonzero((dem["facility_id"].to_numpy() == firm) & ~driven_d)
        change = {
            "supply_amount": {int(s): float(full.supply_amount[s] * rng.uniform(0.5, 1.5)) for s in s_rows},
            "demand_amount": {int(d): float(full.demand_amount[d] * rng.uniform(0.5, 1.5)) for d in d_rows},
            "fate_cost": {int(s): float(full.fate_cost[s] * rng.uniform(0.8, 1.2)) for s in s_rows},
            "virgin_price": {int(d): float(full.virgin_price[d] * rng.uniform(0.8, 1.2)) for d in d_rows},
        }
        done = reopt.change(**change)
        row: dict[str, Any] = {"firm": firm, "supplies": len(s_rows), "demands": len(d_rows),
                               "seconds": done.seconds, "blocks_solved": done.blocks_solved,
                               "blocks": done.blocks, "rounds": done.rounds, "arcs_added": done.arcs_added,
                               "arcs_priced": done.arcs_priced, "objective": done.solution.objective,
                               "timings": done.timings}
        checked = verify(row, reopt.candidates, done) if k < args.verify else ""
        record["changes"].append(row)
        print(f"{firm}: {len(s_rows)} supplies, {len(d_rows)} demands: {done.seconds:.3f} s, "
              f"{done.blocks_solved}/{done.blocks} block solves, {done.rounds} round(s), {done.arcs_added} arcs added"
              + checked, flush=True)
    seconds = [r["seconds"] for r in record["changes"]]
    if seconds:
        record["median_seconds"] = statistics.median(seconds)
        record["max_seconds"] = max(seconds)
    if args.moves:
        record["moves"] = moves(region, reopt, args, rng)
    record["loadavg_after"] = os.getloadavg()
    if seconds:
        print(f"median {record['median_seconds']:.3f} s, max {record['max_seconds']:.3f} s over {len(seconds)} "
              f"changes")
    print(f"load {record['loadavg_before']} -> {record['loadavg_after']}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(record, indent=1, default=float) + "\n")
    return 0


def verify(row: dict[str, Any], candidates: Any, done: Any) -> str:
    """Solve ``candidates`` from nothing by column generation and put the time and the relative difference of
    its objective from the re-optimised one in ``row``; returns them as the end of the printed line."""
    from symbiosis.exchange.colgen import solve_column_generation

    t0 = time.perf_counter()
    fresh = solve_column_generation(candidates)
    row["fresh_seconds"] = time.perf_counter() - t0
    row["fresh_objective"] = fresh.objective
    row["relative_difference"] = abs(fresh.objective - done.solution.objective) / max(1.0, abs(fresh.objective))
    return f"; fresh {row['fresh_seconds']:.1f} s, rel. diff {row['relative_difference']:.1e}"


def moves(region: Any, reopt: Any, args: argparse.Namespace, rng: np.random.Generator) -> dict[str, Any]:
    """``args.moves`` facilities, chosen at random among those with a stream in the candidates, each moved
    ``args.move_km`` in a random direction: the candidates of the moved region built again (timed apart: the
    candidates stage, not the re-optimisation), then ``Reoptimiser.update``. A move that changes the rows (a
    demand reached for the first time) raises StructuralChange and is counted, not applied. The first
    ``args.verify`` moves are also solved from nothing and compared."""
    from symbiosis.candidates import candidates
    from symbiosis.exchange.incremental import StructuralChange

    out: dict[str, Any] = {"move_km": args.move_km, "changes": [], "structural": []}
    facilities = region.facilities
    ids = sorted(set(reopt.candidates.supplies["facility_id"]) | set(reopt.candidates.demands["facility_id"]))
    chosen = rng.choice(ids, size=min(args.moves, len(ids)), replace=False)
    for firm in chosen.tolist():
        bearing = rng.uniform(0, 2 * np.pi)
        moved = facilities.copy()
        at = moved.index[moved["facility_id"].astype(str) == str(firm)]
        lat = float(moved.loc[at, "lat"].iloc[0])
        moved.loc[at, "lat"] = lat + args.move_km / 111.2 * np.cos(bearing)
        moved.loc[at, "lon"] = moved.loc[at, "lon"] + args.move_km / (111.2 * np.cos(np.radians(lat))) * np.sin(bearing)
        changed = dataclasses.replace(region, facilities=moved)
        t0 = time.perf_counter()
        new = candidates(changed)
        candidates_seconds = time.perf_counter() - t0
        try:
            done = reopt.update(new)
        except StructuralChange as exc:
            out["structural"].append({"firm": firm, "why": str(exc)})
            print(f"{firm}: moved {args.move_km} km: structural ({exc})", flush=True)
            continue
        region, facilities = changed, moved
        row: dict[str, Any] = {"firm": firm, "candidates_seconds": candidates_seconds, "seconds": done.seconds,
                               "blocks_solved": done.blocks_solved, "blocks": done.blocks, "rounds": done.rounds,
                               "arcs_added": done.arcs_added, "arcs_priced": done.arcs_priced,
                               "objective": done.solution.objective, "timings": done.timings}
        checked = verify(row, new, done) if len(out["changes"]) < args.verify else ""
        out["changes"].append(row)
        print(f"{firm}: moved {args.move_km} km: candidates {candidates_seconds:.2f} s, update {done.seconds:.3f} s "
              f"({', '.join(f'{k} {v:.3f}' for k, v in done.timings.items())}), {done.blocks_solved}/{done.blocks} "
              f"block solves, {done.arcs_added} arcs added" + checked, flush=True)
    seconds = [r["seconds"] for r in out["changes"]]
    if seconds:
        out["median_seconds"] = statistics.median(seconds)
        out["max_seconds"] = max(seconds)
        print(f"moves: update median {out['median_seconds']:.3f} s, max {out['max_seconds']:.3f} s over "
              f"{len(seconds)}; {len(out['structural'])} structural", flush=True)
    return out


if __name__ == "__main__":
    raise SystemExit(main())
