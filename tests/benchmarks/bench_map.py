"""The map at continental scale (issue 17): time to open ``map.html`` in Chromium and to repaint after a zoom.

Run by hand, never collected by pytest::

    SYMBIOSIS_BROWSER_ASSETS=.cache/browser-assets .venv/bin/python tests/benchmarks/bench_map.py \\
        --region out/bench/continent/continent-50000-seed0-50km --out out/bench/map50k.json

What is drawn: the facilities of a generated region (``python -m symbiosis.synthetic N DIR --layout continent``),
read by ``symbiosis.inputs.load_region``, with **a synthetic set of exchanges**, not an optimum (an optimum of
50,000 facilities takes long to compute): every supply of the region is sent to the demand of the same
material nearest to it within 40 km and to the next one (a k-d tree on planar km), amounts and money drawn at
random, and each facility's unexchanged waste goes to landfill, so the map holds at least as many exchanges,
popups and BAU fates as an optimum would (the 10,000-facility optimum has 1.7 exchanges per facility). The
Results are built with the columns ``symbiosis.results.evaluate`` writes and drawn by
``symbiosis.outputs.mapping.save_map``, the path of ``symbiosis run``.

Measured with Playwright on the system Chromium through the offline routing of ``tests/browser_support.py``
(blank tiles, scripts from the asset cache), as the browser tests do:

- **open**: from ``page.goto`` of the file's ``file://`` address to the ``load`` event plus two animation
  frames (everything drawn);
- **zoom**: for each of ``--zooms`` steps, ``map.setView(densest place, z)`` (no animation) then two animation
  frames: the repaint after one zoom, at the zooms a person goes through from the whole continent to the
  busiest town (the densest place: the mean of the facilities within 5 km of the one with most neighbours),
  timed from Python (with Playwright's round trips and the tiles' routing) and inside the page
  (``performance.now()`` around ``setZoom`` from the zoom below and two animation frames);
- **wheel**: one mouse-wheel step (``page.mouse.wheel(0, -300)``) then two animation frames, as in
  docs/outputs.md's figure for the 10,000-facility map; plus a pan (``map.panBy``).
The load average is recorded before the run.

With ``--map DIR/map.html`` (the map a ``symbiosis run`` of ``--region`` wrote: a real optimum, not synthetic
exchanges) that page is measured the same way, nothing drawn here.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
for _p in (str(REPO), str(REPO / "tests")):
    if _p not in sys.path:
        sys.path.insert(0, _p)

FRAMES = "() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))"


def synthetic_results(region_folder: Path, seed: int = 0, radius_km: float = 40.0, per_supply: int = 2) -> Any:
    """Results of the region's facilities with a synthetic set of exchanges (see the module docstring)."""
    from scipy.spatial import cKDTree

    from symbiosis.candidates import candidates as _unused  # noqa: F401  (the loader's imports, as a run has)
    from symbiosis.inputs import load_region
    from symbiosis.results import Results

    region = load_region(region_folder)
    rng = np.random.default_rng(seed)
    facilities = region.facilities[["facility_id", "name", "sector", "lat", "lon"]].copy()
    facilities["facility_id"] = facilities["facility_id"].astype(str)
    facilities["confidential"] = False
    flows = region.flows
    flows = flows.assign(facility_id=flows["facility_id"].astype(str))
    mass = flows["quantity"] == "mass"
    supplies = flows[mass & (flows["direction"] == "out") & flows["category"].isin(["by_product", "waste"])]
    demands = flows[mass & (flows["direction"] == "in") & flows["category"].isin(["raw_material", "auxiliary"])]
    located = facilities.set_index("facility_id")
    lat0 = float(facilities["lat"].mean())

    def km(frame: pd.DataFrame) -> np.ndarray:
        lat = frame["facility_id"].map(located["lat"]).to_numpy(float)
        lon = frame["facility_id"].map(located["lon"]).to_numpy(float)
        return np.column_stack([lon * 111.32 * math.cos(math.radians(lat0)), lat * 111.32])

    parts = []
    for material, sup in supplies.groupby("material", sort=True):
        # any demand stands in for a material's users: the map only needs plausible pairs and amounts
        dem = demands[demands["material"] == material]
        if dem.empty:
            dem = demands.sample(n=min(len(demands), 4 * len(sup)), random_state=int(rng.integers(1 << 31)))
        dist, nearest = cKDTree(km(dem)).query(km(sup), k=per_supply, distance_upper_bound=radius_km)
        dist, nearest = dist.reshape(len(sup), -1), nearest.reshape(len(sup), -1)
        which = np.repeat(np.arange(len(sup)), dist.shape[1])
        dist, nearest = dist.ravel(), nearest.ravel()
        ok = np.isfinite(dist) & (dem["facility_id"].to_numpy()[np.minimum(nearest, len(dem) - 1)]
                                  != sup["facility_id"].to_numpy()[which])
        if not ok.any():
            continue
        chosen = sup.iloc[which[ok]]
        parts.append(pd.DataFrame({
            "supply_id": chosen["flow_id"].astype(str).to_numpy(),
            "demand_id": dem["flow_id"].astype(str).to_numpy()[nearest[ok]],
            "supply_facility": chosen["facility_id"].to_numpy(),
            "demand_facility": dem["facility_id"].to_numpy()[nearest[ok]],
            "material": str(material), "primary_material": str(material),
            "distance_km": np.round(dist[ok] * 1.3, 1),
        }))
    exchanges = pd.concat(parts, ignore_index=True)
    n = len(exchanges)
    exchanges["amount_t_per_yr"] = np.round(rng.lognormal(6.0, 1.5, n), 1)
    exchanges["quantity"] = "mass"
    exchanges["amount_mwh_per_yr"] = np.nan
    exchanges["saving"] = np.round(rng.lognormal(8.0, 1.5, n))
    exchanges["co2e_avoided_t_per_yr"] = np.round(rng.lognormal(3.0, 1.5, n), 1)
    exchanges["material_class"] = exchanges["material"].map(region.reference.materials.set_index("material_id")[
        "class"]).fillna("other").astype(str) if not region.reference.materials.empty else "other"
    counts = pd.concat([exchanges["supply_facility"], exchanges["demand_facility"]]).value_counts()
    facilities["n_exchanges"] = facilities["facility_id"].map(counts).fillna(0).astype(int)
    facilities["gain"] = np.where(facilities["n_exchanges"] > 0, np.round(rng.lognormal(9.0, 1.5, len(facilities))),
                                  0.0)
    waste = supplies.copy()
    amount = pd.to_numeric(waste["amount_t_per_yr"], errors="coerce").fillna(0.0).to_numpy()
    sent = waste["flow_id"].astype(str).isin(set(exchanges["supply_id"]))
    table = pd.DataFrame({
        "supply_id": waste["flow_id"].astype(str).to_numpy(), "facility_id": waste["facility_id"].to_numpy(),
        "material": waste["material"].astype(str).to_numpy(), "fate": "landfill", "fate_kind": "landfill",
        "amount_t_per_yr": amount, "to_fate_t_per_yr": np.where(sent, 0.0, amount),
    })
    kpis = {"currency": "EUR", "n_exchanges": n,
            "n_facilities_participating": int((facilities["n_exchanges"] > 0).sum())}
    results = Results(exchanges=exchanges, supplies=table, demands=pd.DataFrame(), facilities=facilities,
                      kpis=kpis, balances=None, balances_after=None)
    return results, region


def measure(map_path: Path, zooms: list[int], centre: tuple[float, float]) -> dict[str, Any]:
    from browser_support import browser_page

    out: dict[str, Any] = {}
    with browser_page(map_path.parent) as (page, router, log):
        page.context.unroute("**/*")
        page.context.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file:")
                           else router(route))
        started = time.perf_counter()
        # From the disk, as a person opens map.html: the file:// request is let through, so the 20-60 MB page
        # does not go through the Python side of the routing (which alone took ~10 s for 20 MB); the scripts
        # and tiles still come from the offline router.
        page.goto(map_path.resolve().as_uri(), wait_until="load", timeout=600_000)
        out["load_event_s"] = round(time.perf_counter() - started, 2)
        page.evaluate(FRAMES)
        out["open_s"] = round(time.perf_counter() - started, 2)
        name = page.evaluate("() => Object.keys(window).find(k => k.startsWith('map_') && window[k]"
                             " && window[k].setZoom)")
        out["navigation"] = page.evaluate(
            "() => { const t = performance.getEntriesByType('navigation')[0];"
            " return {responseEnd: t.responseEnd, domInteractive: t.domInteractive, loadEventEnd: t.loadEventEnd}; }")
        out["start_zoom"] = page.evaluate(f"() => {name}.getZoom()")
        out["dom_elements"] = page.evaluate("() => document.getElementsByTagName('*').length")
        steps = []
        for z in zooms:
            started = time.perf_counter()
            page.evaluate(f"() => {{ {name}.setView([{centre[0]}, {centre[1]}], {z}, {{animate: false}}); }}")
            page.evaluate(FRAMES)
            elapsed = time.perf_counter() - started
            # the same step timed inside the page (no round trips to Playwright): zoom out and back first
            page.evaluate(f"() => {{ {name}.setZoom({z - 1}, {{animate: false}}); }}")
            page.evaluate(FRAMES)
            inside = page.evaluate("() => new Promise(r => { const t = performance.now(); "
                                   f"{name}.setZoom({z}, {{animate: false}}); "
                                   "requestAnimationFrame(() => requestAnimationFrame(() => r(performance.now() - t)));"
                                   " })")
            steps.append({"zoom": z, "repaint_s": round(elapsed, 3), "repaint_in_page_s": round(inside / 1000, 3),
                          "dom_elements": page.evaluate("() => document.getElementsByTagName('*').length"),
                          "shown": page.evaluate(f"() => Object.fromEntries(['clusters', 'facilities', 'exchanges',"
                                                 f" 'fates'].map(k => [k, {name}.getContainer()"
                                                 ".getAttribute('data-sym-' + k + '-shown')]))"),
                          "left_out": page.evaluate(f"() => Object.fromEntries(['facilities', 'exchanges', 'fates']"
                                                    f".map(k => [k, {name}.getContainer()"
                                                    ".getAttribute('data-sym-' + k + '-left-out')]))")})
        out["zoom_steps"] = steps
        page.mouse.move(640, 430)
        started = time.perf_counter()
        page.mouse.wheel(0, -300)
        page.wait_for_timeout(400)  # the wheel's own debounce and zoom animation (Leaflet: 40 ms + 250 ms)
        page.evaluate(FRAMES)
        out["wheel_step_s_incl_400ms_wait"] = round(time.perf_counter() - started, 3)
        started = time.perf_counter()
        page.evaluate(f"() => {{ {name}.panBy([300, 200], {{animate: false}}); }}")
        page.evaluate(FRAMES)
        out["pan_s"] = round(time.perf_counter() - started, 3)
        out["page_errors"], out["console_errors"] = log.page_errors, log.console_errors
        out["unmapped"] = router.unmapped
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--region", type=Path, required=True)
    parser.add_argument("--zooms", type=int, nargs="+", default=[5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15])
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--keep", type=Path, default=None, help="write map.html here (default: a temporary folder)")
    parser.add_argument("--explore", default="{}",
                        help="keywords for explore as JSON, e.g. '{\"aggregate_from\": 1000000}'")
    parser.add_argument("--map", type=Path, default=None,
                        help="measure this map.html (e.g. written by `symbiosis run` on --region) instead of drawing"
                             " synthetic exchanges; the zooms close in on the densest place of the region's"
                             " facilities.csv")
    args = parser.parse_args()
    from symbiosis.outputs.mapping import densest_cluster, save_map

    if args.map is not None:
        facilities = pd.read_csv(args.region / "facilities.csv", usecols=["facility_id", "lat", "lon"])
        dense = densest_cluster(facilities, 5.0)
        centre = (float(dense["lat"].mean()), float(dense["lon"].mean()))
        measured: dict[str, Any] = {"map": str(args.map), "map_mb": round(args.map.stat().st_size / 1e6, 1),
                                    "load_average": os.getloadavg(), "zoom_centre": centre}
        measured.update(measure(args.map, args.zooms, centre))
        measured["load_average_after"] = os.getloadavg()
        print(json.dumps(measured), flush=True)  # noqa: T201
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps({"command": " ".join(sys.argv), "rows": [measured]}, indent=1) + "\n")
        return
    row: dict[str, Any] = {"region": str(args.region), "load_average": os.getloadavg()}
    started = time.perf_counter()
    results, _region = synthetic_results(args.region)
    row["build_results_s"] = round(time.perf_counter() - started, 2)
    row.update(facilities=len(results.facilities), exchanges=len(results.exchanges))
    with tempfile.TemporaryDirectory(prefix="symbiosis-map-") as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        path = save_map(results, folder / "map.html", **json.loads(args.explore))
        row["write_map_s"] = round(time.perf_counter() - started, 2)
        row["map_mb"] = round(path.stat().st_size / 1e6, 1)
        print(json.dumps(row), flush=True)  # noqa: T201
        # the zoom steps close in on the densest place: the most facilities and lines in view
        dense = densest_cluster(results.facilities, 5.0)
        centre = (float(dense["lat"].mean()), float(dense["lon"].mean()))
        row["zoom_centre"] = centre
        row.update(measure(path, args.zooms, centre))
    print(json.dumps(row), flush=True)  # noqa: T201
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"command": " ".join(sys.argv), "rows": [row]}, indent=1) + "\n")


if __name__ == "__main__":
    main()
