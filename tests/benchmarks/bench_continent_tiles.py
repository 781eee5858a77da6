"""How many candidate arcs a continental region has when they cannot all be held at once (issue 17, 100,000).

Run by hand, never collected by pytest::

    .venv/bin/python tests/benchmarks/bench_continent_tiles.py DIR [--tile-deg 2] [--check] \\
        [--out out/bench/tiles.json]

``DIR`` is a generated region (``python -m symbiosis.synthetic N DIR --layout continent``). The region is loaded
(``symbiosis.inputs.load_region``) and its balances computed (``symbiosis.balances.balances``), each timed with
the peak resident memory after it (``ru_maxrss``). Then the candidate arcs are **counted tile by tile**,
never all held: the facilities are cut into tiles of ``--tile-deg`` degrees of latitude by 1.5 times as
many of longitude; for each tile, ``symbiosis.candidates.candidates`` (the stage ``symbiosis run`` uses,
unchanged) screens the region cut to the tile's facilities and the flows taken in by every facility within the
longest distance an arc may have around it (the largest distance limit of the region's defaults, materials,
substitutions and flows, divided by the circuity: a great-circle distance no arc can exceed; in degrees at the
tile's most polar latitude), and the arcs whose supply lies in the tile are counted, their memory measured,
then dropped.
Every arc has its supply in exactly one tile, and an arc depends only on its supply, its demand and the
reference data (no screening step looks at other arcs), so the counts add up to the whole region's.
``--check`` also screens the whole region at once and compares the totals (for 15,000 and 50,000 facilities,
which fit in memory). The load average is recorded before and after.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def reach_km(region: Any) -> float:
    """The longest great-circle distance an arc of ``region`` may span (its largest road limit / circuity)."""
    from symbiosis.candidates import resolve_parameters

    parameters = resolve_parameters(region)
    limits = [float(parameters["max_distance_km"])]
    reference = region.reference
    for table in (reference.materials, reference.substitutions, region.flows):
        if "max_distance_km" in table.columns:
            values = pd.to_numeric(table["max_distance_km"], errors="coerce").dropna()
            limits += values.tolist()
    cap = parameters.get("max_distance_cap_km")
    longest = min(max(limits), float(cap)) if cap else max(limits)
    return longest / float(parameters["circuity"])


def cut(region: Any, keep: np.ndarray, core: np.ndarray) -> Any:
    """``region`` with only the facilities where ``keep`` is true (and their flows, quality, processors), and
    of those outside ``core`` only the flows they take in (the demands the core's supplies may reach)."""
    facilities = region.facilities[keep]
    ids = set(facilities["facility_id"])
    inside = set(region.facilities["facility_id"][core])
    flows = region.flows[region.flows["facility_id"].isin(ids)]
    flows = flows[flows["facility_id"].isin(inside) | (flows["direction"] == "in")]
    quality = region.quality[region.quality["flow_id"].isin(set(flows["flow_id"]))] \
        if "flow_id" in region.quality.columns else region.quality
    processors = region.processors[region.processors["facility_id"].isin(ids)] \
        if region.processors is not None and len(region.processors) else region.processors
    permits = region.permits[region.permits["facility_id"].isin(ids)] \
        if "facility_id" in region.permits.columns else region.permits
    return dataclasses.replace(region, facilities=facilities, flows=flows, quality=quality, processors=processors,
                               permits=permits)


def count_by_tiles(region: Any, tile_deg: float) -> dict[str, Any]:
    from symbiosis.candidates import candidates

    reach = reach_km(region) + 1.0
    lat = region.facilities["lat"].to_numpy(float)
    lon = region.facilities["lon"].to_numpy(float)
    row = np.floor(lat / tile_deg).astype(np.int64)
    col = np.floor(lon / (1.5 * tile_deg)).astype(np.int64)
    tiles = sorted(set(zip(row.tolist(), col.tolist(), strict=True)))
    ids = region.facilities["facility_id"].to_numpy()
    total = supplies = arc_bytes = 0
    largest: dict[str, Any] = {"arcs": 0}
    started = time.perf_counter()
    for r, c in tiles:
        core = (row == r) & (col == c)
        south, north = r * tile_deg, (r + 1) * tile_deg
        west, east = c * 1.5 * tile_deg, (c + 1) * 1.5 * tile_deg
        d_lat = reach / 110.57
        d_lon = reach / (111.32 * max(math.cos(math.radians(min(89.0, max(abs(south), abs(north)) + d_lat))), 1e-3))
        near = (lat >= south - d_lat) & (lat < north + d_lat) & (lon >= west - d_lon) & (lon < east + d_lon)
        found = candidates(cut(region, near, core))
        inside = set(ids[core])
        mine = found.arcs["supply_facility"].isin(inside).to_numpy() if len(found.arcs) else np.zeros(0, bool)
        n = int(mine.sum())
        total += n
        supplies += int(found.supplies["facility_id"].isin(inside).sum())
        if n:
            arc_bytes += int(found.arcs[mine].memory_usage(deep=True).sum())
        if n > largest["arcs"]:
            largest = {"arcs": n, "tile": [south, west, north, east], "facilities_in_tile": int(core.sum()),
                       "facilities_screened": int(near.sum()), "arcs_screened": len(found.arcs)}
        del found
    return {"tile_deg": tile_deg, "reach_km": round(reach, 1), "tiles": len(tiles), "arcs": total,
            "supplies": supplies, "arcs_bytes": arc_bytes, "bytes_per_arc": round(arc_bytes / max(total, 1), 1),
            "largest_tile": largest, "count_s": round(time.perf_counter() - started, 1),
            "count_peak_mib": round(_peak_mib())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("region", type=Path)
    parser.add_argument("--tile-deg", type=float, default=2.0)
    parser.add_argument("--check", action="store_true", help="also screen the whole region at once")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    from symbiosis.balances import balances
    from symbiosis.inputs import load_region

    out: dict[str, Any] = {"region": str(args.region), "load_average_before": os.getloadavg(),
                           "baseline_mib": round(_peak_mib())}
    started = time.perf_counter()
    region = load_region(args.region)
    out.update(load_s=round(time.perf_counter() - started, 1), load_peak_mib=round(_peak_mib()),
               facilities=len(region.facilities), flows=len(region.flows))
    started = time.perf_counter()
    balances(region)
    out.update(balances_s=round(time.perf_counter() - started, 1), balances_peak_mib=round(_peak_mib()))
    print(json.dumps(out), flush=True)  # noqa: T201
    out.update(count_by_tiles(region, args.tile_deg))
    if args.check:
        from symbiosis.candidates import candidates

        started = time.perf_counter()
        whole = candidates(region)
        out.update(whole_arcs=len(whole.arcs), whole_s=round(time.perf_counter() - started, 1),
                   whole_bytes=int(whole.arcs.memory_usage(deep=True).sum()), whole_peak_mib=round(_peak_mib()))
        del whole
    out["load_average_after"] = os.getloadavg()
    print(json.dumps(out), flush=True)  # noqa: T201
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"command": " ".join(sys.argv), "row": out}, indent=1) + "\n")


if __name__ == "__main__":
    main()
