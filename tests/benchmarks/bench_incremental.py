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
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    import os

    from symbiosis.candidates import candidates
    from symbiosis.exchange.colgen import solve_column_generation
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
        if k < args.verify:
            t0 = time.perf_counter()
            fresh = solve_column_generation(dataclasses.replace(reopt.candidates))
            row["fresh_seconds"] = time.perf_counter() - t0
            row["fresh_objective"] = fresh.objective
            row["relative_difference"] = abs(fresh.objective - done.solution.objective) / max(1.0, abs(fresh.objective))
        record["changes"].append(row)
        print(f"{firm}: {len(s_rows)} supplies, {len(d_rows)} demands: {done.seconds:.3f} s, "
              f"{done.blocks_solved}/{done.blocks} block solves, {done.rounds} round(s), {done.arcs_added} arcs added"
              + (f"; fresh {row['fresh_seconds']:.1f} s, rel. diff {row['relative_difference']:.1e}"
                 if "fresh_seconds" in row else ""), flush=True)
    seconds = [r["seconds"] for r in record["changes"]]
    record["median_seconds"] = statistics.median(seconds)
    record["max_seconds"] = max(seconds)
    record["loadavg_after"] = os.getloadavg()
    print(f"median {record['median_seconds']:.3f} s, max {record['max_seconds']:.3f} s over {len(seconds)} changes; "
          f"load {record['loadavg_before']} -> {record['loadavg_after']}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(record, indent=1, default=float) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
