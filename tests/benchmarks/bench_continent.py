"""Continental regions (issue 17): generation time, candidate arcs and memory at 15,000-100,000 facilities.

Run by hand, never collected by pytest::

    .venv/bin/python tests/benchmarks/bench_continent.py --sizes 15000 50000 --cache out/bench/continent \\
        --out out/bench/continent.json

For each size N, one fresh process writes the region with
``generate_region(N, ..., seed=0, layout="continent", max_distance_km=50)`` (timed; skipped when the folder is
already in ``--cache``, then the time is not reported) and a second fresh process loads it
(``symbiosis.inputs.load_region``), computes the balances and screens the candidate arcs
(``symbiosis.candidates.candidates``, the stage ``symbiosis run`` and ``symbiosis check`` use) with the region's
default distance limit, timing each stage and recording the peak resident memory after each (``ru_maxrss``).
The load average (``os.getloadavg``) is recorded before each process.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

MIB = 1024.0


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / MIB


def generate(n: int, folder: Path, seed: int) -> dict[str, Any]:
    from symbiosis.synthetic import generate_region

    started = time.perf_counter()
    generate_region(n, folder, seed=seed, layout="continent", max_distance_km=50.0)
    return {"generate_s": round(time.perf_counter() - started, 2), "generate_peak_mib": round(_peak_mib())}


def screen(folder: Path) -> dict[str, Any]:
    import numpy as np

    from symbiosis.balances import balances
    from symbiosis.candidates import candidates
    from symbiosis.inputs import load_region

    out: dict[str, Any] = {"baseline_mib": round(_peak_mib())}
    started = time.perf_counter()
    region = load_region(folder)
    out["load_s"], out["load_peak_mib"] = round(time.perf_counter() - started, 2), round(_peak_mib())
    started = time.perf_counter()
    balances(region)
    out["balances_s"] = round(time.perf_counter() - started, 2)
    started = time.perf_counter()
    cands = candidates(region)
    out["candidates_s"], out["candidates_peak_mib"] = round(time.perf_counter() - started, 2), round(_peak_mib())
    arcs = cands.arcs
    out.update(facilities=len(region.facilities), flows=len(region.flows), supplies=len(cands.supplies),
               demands=len(cands.demands), arcs=len(arcs),
               arcs_bytes=int(arcs.memory_usage(deep=True).sum()),
               processors=0 if cands.processors is None else len(cands.processors))
    # The largest group of facilities linked by arcs: what a tile of the tiled pricing would hold.
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n_s, n_d = len(cands.supplies), len(cands.demands)
    s, d = arcs["s"].to_numpy(), arcs["d"].to_numpy()
    graph = coo_matrix((np.ones(len(s)), (s, n_s + d)), shape=(n_s + n_d, n_s + n_d))
    count, label = connected_components(graph, directed=False)
    sizes = np.bincount(label[s])
    out.update(components=int(count), largest_component_arcs=int(sizes.max()) if len(sizes) else 0)
    return out


def run(sizes: list[int], cache: Path, seed: int, generate_only: frozenset[int] = frozenset()
        ) -> list[dict[str, Any]]:
    rows = []
    for n in sizes:
        folder = cache / f"continent-{n}-seed{seed}-50km"
        row: dict[str, Any] = {"n": n, "seed": seed, "folder": str(folder)}
        if not (folder / "region.yaml").exists():
            row["load_before_generate"] = os.getloadavg()
            row.update(_child("generate", n, folder, seed))
        if n not in generate_only:
            row["load_before_screen"] = os.getloadavg()
            row.update(_child("screen", n, folder, seed))
        print(json.dumps(row), flush=True)  # noqa: T201  (the benchmark's answer, as it comes)
        rows.append(row)
    return rows


def _child(stage: str, n: int, folder: Path, seed: int) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, __file__, "--child", stage, str(n), str(folder), str(seed)],
                          env=env, capture_output=True, text=True, check=True)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[15000, 50000])
    parser.add_argument("--cache", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "symbiosis-bench")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--generate-only", type=int, nargs="*", default=[],
                        help="sizes (among --sizes) only generated, not screened (100,000: ~50M arcs)")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--child", nargs=4, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        stage, n, folder, seed = args.child
        result = generate(int(n), Path(folder), int(seed)) if stage == "generate" else screen(Path(folder))
        print(json.dumps(result))  # noqa: T201
        return
    rows = run(args.sizes, args.cache, args.seed, frozenset(args.generate_only))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"command": " ".join(sys.argv), "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
