"""Re-solve and Monte Carlo benchmark (issue 13). Run by hand, never collected by pytest::

    .venv/bin/python tests/benchmarks/bench_uncertainty.py --sizes 1000 5000 --samples 100 \\
        --out /tmp/bench-uncertainty.json

For each number of facilities N a synthetic region is generated (``symbiosis.synthetic.generate_region``,
cached in ``--cache``), then, in this process:

- ``optimise_s``: one fresh ``symbiosis.pipeline.optimise`` (candidates, model, solve, results);
- ``first_solve_s``: ``ExchangeModel`` build + hand-over + first solve (interior point with crossover);
- ``carbon_resolve_s``: ``set_carbon_price`` (+20 per t CO2e) and ``resolve()`` (simplex from the basis),
  with ``carbon_resolve_ratio`` = carbon_resolve_s / first_solve_s (issue 13: ≤ 0.10);
- ``amounts_resolve_s``: every supply and demand amount scaled by a random ±10 % and re-solved warm;
- ``monte_carlo_s``: ``symbiosis.uncertainty.monte_carlo`` with ``--samples`` samples (default workers),
  with ``monte_carlo_ratio`` = monte_carlo_s / optimise_s (issue 13: ≤ 15 at 100 samples).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np


def bench(n: int, cache: Path, samples: int, seed: int) -> dict[str, float]:
    from symbiosis.candidates import candidates
    from symbiosis.exchange import ExchangeModel
    from symbiosis.inputs import load_region
    from symbiosis.pipeline import optimise
    from symbiosis.synthetic import generate_region
    from symbiosis.uncertainty import monte_carlo

    folder = cache / f"region-{n}-{seed}"
    if not (folder / "region.yaml").exists():
        generate_region(n, folder, seed=seed)
    region = load_region(folder)
    row: dict[str, float] = {"facilities": n}
    started = time.perf_counter()
    optimise(region)
    row["optimise_s"] = time.perf_counter() - started
    print("so far:", json.dumps(row), flush=True)  # a long run shows its figures as they come
    cands = candidates(region)
    row["arcs"] = len(cands.arcs)
    started = time.perf_counter()
    model = ExchangeModel(cands)
    first = model.solve()
    row["first_solve_s"] = time.perf_counter() - started
    started = time.perf_counter()
    model.set_carbon_price(model.carbon_price + 20.0)
    again = model.resolve()
    row["carbon_resolve_s"] = time.perf_counter() - started
    row["carbon_resolve_ratio"] = row["carbon_resolve_s"] / row["first_solve_s"]
    print("so far:", json.dumps(row), flush=True)  # a long run shows its figures as they come
    rng = np.random.default_rng(seed)
    started = time.perf_counter()
    arrays = model.arrays
    # a processor's rows follow its activity (set_amounts refuses them): those keep their amounts
    supply_scale = rng.uniform(0.9, 1.1, arrays.n_supplies)
    demand_scale = rng.uniform(0.9, 1.1, arrays.n_demands)
    supply_scale[arrays.out_rows] = 1.0
    demand_scale[arrays.in_rows] = 1.0
    model.set_amounts(supply=arrays.supply_amount * supply_scale, demand=arrays.demand_amount * demand_scale)
    model.resolve()
    row["amounts_resolve_s"] = time.perf_counter() - started
    print("so far:", json.dumps(row), flush=True)  # a long run shows its figures as they come
    row["objective_first"], row["objective_carbon"] = first.objective, again.objective
    started = time.perf_counter()
    mc = monte_carlo(region, cands, samples=samples, seed=seed)
    row["monte_carlo_s"] = time.perf_counter() - started
    row["monte_carlo_samples"] = samples
    row["monte_carlo_ratio"] = row["monte_carlo_s"] / row["optimise_s"]
    row["monte_carlo_failed"] = len(mc.failed)
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000])
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "symbiosis-bench")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    rows = []
    for n in args.sizes:
        row = bench(n, args.cache, args.samples, args.seed)
        print(json.dumps(row), flush=True)
        rows.append(row)
    if args.out:
        args.out.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
