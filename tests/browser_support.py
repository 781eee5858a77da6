"""Helpers for the output tests: Results to draw, and a browser that never leaves the machine.

``sample_results()`` returns the Results of the shipped Kalundborg region through the real pipeline when
the pipeline can run, and otherwise a Results-like object built by hand from the columns documented in
docs/architecture.md (the same shapes, a small Kalundborg-like network). ``synthetic_results(n)`` builds a
large random region for the clustering and file-size checks.

The browser side: ``browser_page()`` starts the system Chromium through Playwright with every request
routed by :class:`OfflineRouter`. Our own files are served from a fake origin (``http://symbiosis.test/``),
CDN URLs that folium and plotly emit are mapped onto the npm packages that
``.ci/install-browser-assets.sh`` installs into the asset cache, map tiles get a blank grey PNG, and every
other request is answered empty and recorded, so the test can fail naming the URL it could not map.
"""

from __future__ import annotations

import base64
import contextlib
import json
import math
import mimetypes
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
KALUNDBORG = REPO / "data" / "regions" / "kalundborg"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM = Path(os.environ.get("SYMBIOSIS_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]
LOCAL_ORIGIN = "http://symbiosis.test"


def asset_dir() -> Path:
    """Where ``.ci/install-browser-assets.sh`` put the npm packages (env ``SYMBIOSIS_BROWSER_ASSETS``)."""
    return Path(os.environ.get("SYMBIOSIS_BROWSER_ASSETS", REPO / ".cache" / "browser-assets"))


# --------------------------------------------------------------------------------------------------
# Results-like objects built by hand (docs/architecture.md columns)
# --------------------------------------------------------------------------------------------------


@dataclass
class FakeBalances:
    table: pd.DataFrame
    region: pd.DataFrame
    tolerance: float = 0.05


@dataclass
class FakeResults:
    exchanges: pd.DataFrame
    supplies: pd.DataFrame
    demands: pd.DataFrame
    facilities: pd.DataFrame
    kpis: dict[str, Any]
    balances: FakeBalances
    balances_after: FakeBalances
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass
class FakeRegion:
    name: str
    facilities: pd.DataFrame
    flows: pd.DataFrame


def _km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    r = 6371.0
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * r * math.asin(math.sqrt(a))


def build_results(
    facilities: list[dict[str, Any]],
    supplies: list[dict[str, Any]],
    demands: list[dict[str, Any]],
    exchanges: list[tuple[str, str, float]],
    *,
    circuity: float = 1.3,
    transport_cost_per_tkm: float = 0.10,
    transport_co2_per_tkm: float = 0.000062,
    carbon_price: float = 0.0,
) -> FakeResults:
    """Results-like object from facilities, supplies, demands and chosen (supply_id, demand_id, t/yr)."""
    fac = pd.DataFrame(facilities)
    for col, default in (("confidential", False), ("process_model", ""), ("activity", np.nan),
                         ("activity_unit", "")):
        if col not in fac:
            fac[col] = default
    where = fac.set_index("facility_id")[["lat", "lon"]]
    sup = pd.DataFrame(supplies)
    sup["lat"] = sup["facility_id"].map(where["lat"])
    sup["lon"] = sup["facility_id"].map(where["lon"])
    dem = pd.DataFrame(demands)
    dem["lat"] = dem["facility_id"].map(where["lat"])
    dem["lon"] = dem["facility_id"].map(where["lon"])
    s_by = sup.set_index("supply_id")
    d_by = dem.set_index("demand_id")

    rows = []
    for supply_id, demand_id, amount in exchanges:
        s, d = s_by.loc[supply_id], d_by.loc[demand_id]
        km = 0.0 if s.facility_id == d.facility_id else _km(s.lat, s.lon, d.lat, d.lon) * circuity
        ratio = 1.0
        transport_cost = transport_cost_per_tkm * km * amount
        fate_cost_avoided = s.fate_cost_per_t * amount
        virgin_cost_avoided = d.virgin_price_per_t * amount * ratio
        co2e = transport_co2_per_tkm * km * amount
        co2e_avoided = (s.fate_co2e_per_t + d.virgin_co2e_per_t * ratio) * amount - co2e
        rows.append({
            "supply_id": supply_id, "demand_id": demand_id, "supply_facility": s.facility_id,
            "demand_facility": d.facility_id, "material": s.material, "primary_material": d.material,
            "amount_t_per_yr": amount, "replaced_t_per_yr": amount * ratio, "distance_km": km,
            "tkm_per_yr": km * amount, "transport_cost": transport_cost, "processing_cost": 0.0,
            "fate_cost_avoided": fate_cost_avoided, "virgin_cost_avoided": virgin_cost_avoided,
            "saving": fate_cost_avoided + virgin_cost_avoided - transport_cost, "co2e_t_per_yr": co2e,
            "co2e_avoided_t_per_yr": co2e_avoided,
            "indicative_price_per_t": round(d.virgin_price_per_t * 0.5, 2),
        })
    exc = pd.DataFrame(rows, columns=[
        "supply_id", "demand_id", "supply_facility", "demand_facility", "material", "primary_material",
        "amount_t_per_yr", "replaced_t_per_yr", "distance_km", "tkm_per_yr", "transport_cost",
        "processing_cost", "fate_cost_avoided", "virgin_cost_avoided", "saving", "co2e_t_per_yr",
        "co2e_avoided_t_per_yr", "indicative_price_per_t"])

    sent = exc.groupby("supply_id")["amount_t_per_yr"].sum()
    got = exc.groupby("demand_id")["replaced_t_per_yr"].sum()
    sup["exchanged_t_per_yr"] = sup["supply_id"].map(sent).fillna(0.0)
    sup["to_fate_t_per_yr"] = sup["amount_t_per_yr"] - sup["exchanged_t_per_yr"]
    sup["shadow_price_per_t"] = np.where(sup["exchanged_t_per_yr"] > 0, -sup["fate_cost_per_t"] + 3.0, 0.0)
    if "reason" not in sup:
        sup["reason"] = ""
    if "reason_detail" not in sup:
        sup["reason_detail"] = ""
    sup.loc[sup["exchanged_t_per_yr"] > 0, ["reason", "reason_detail"]] = ["matched", ""]
    dem["secondary_t_per_yr"] = dem["demand_id"].map(got).fillna(0.0)
    dem["virgin_t_per_yr"] = dem["amount_t_per_yr"] - dem["secondary_t_per_yr"]
    dem["shadow_price_per_t"] = dem["virgin_price_per_t"]

    # Per-facility costs: fate costs of supplies, virgin purchases of demands, transport paid by the sender.
    def facility_cost(after: bool) -> pd.Series:
        fate_amount = sup["to_fate_t_per_yr"] if after else sup["amount_t_per_yr"]
        virgin = dem["virgin_t_per_yr"] if after else dem["amount_t_per_yr"]
        cost = (fate_amount * sup["fate_cost_per_t"]).groupby(sup["facility_id"]).sum()
        cost = cost.add((virgin * dem["virgin_price_per_t"]).groupby(dem["facility_id"]).sum(), fill_value=0)
        if after and len(exc):
            cost = cost.add(exc.groupby("supply_facility")["transport_cost"].sum(), fill_value=0)
        return cost

    def facility_co2(after: bool) -> pd.Series:
        fate_amount = sup["to_fate_t_per_yr"] if after else sup["amount_t_per_yr"]
        virgin = dem["virgin_t_per_yr"] if after else dem["amount_t_per_yr"]
        co2 = (fate_amount * sup["fate_co2e_per_t"]).groupby(sup["facility_id"]).sum()
        co2 = co2.add((virgin * dem["virgin_co2e_per_t"]).groupby(dem["facility_id"]).sum(), fill_value=0)
        if after and len(exc):
            co2 = co2.add(exc.groupby("supply_facility")["co2e_t_per_yr"].sum(), fill_value=0)
        return co2

    ids = fac["facility_id"]
    fac["cost_bau"] = ids.map(facility_cost(False)).fillna(0.0)
    fac["cost_optimum"] = ids.map(facility_cost(True)).fillna(0.0)
    fac["gain"] = fac["cost_bau"] - fac["cost_optimum"]
    fac["co2e_bau_t"] = ids.map(facility_co2(False)).fillna(0.0)
    fac["co2e_optimum_t"] = ids.map(facility_co2(True)).fillna(0.0)
    involved = pd.concat([exc["supply_facility"], exc["demand_facility"]])
    fac["n_exchanges"] = ids.map(involved.value_counts()).fillna(0).astype(int)

    waste = sup["fate_kind"].isin(["landfill", "incineration"])
    water = dem["material_class"].eq("water")
    kpis = {
        "waste_diverted_t": float(sup.loc[waste, "exchanged_t_per_yr"].sum()),
        "landfill_diverted_t": float(sup.loc[sup["fate_kind"].eq("landfill"), "exchanged_t_per_yr"].sum()),
        "incineration_diverted_t": float(
            sup.loc[sup["fate_kind"].eq("incineration"), "exchanged_t_per_yr"].sum()),
        "virgin_avoided_t": float(
            dem.loc[~dem["material_class"].isin(["water", "seawater"]), "secondary_t_per_yr"].sum()),
        "water_saved_m3": float(dem.loc[water, "secondary_t_per_yr"].sum()),
        "co2e_bau_t": float(fac["co2e_bau_t"].sum()),
        "co2e_optimum_t": float(fac["co2e_optimum_t"].sum()),
        "co2e_avoided_t": float(fac["co2e_bau_t"].sum() - fac["co2e_optimum_t"].sum()),
        "cost_bau": float(fac["cost_bau"].sum()),
        "cost_optimum": float(fac["cost_optimum"].sum()),
        "net_cost_saving": float(fac["gain"].sum()),
        "tkm": float(exc["tkm_per_yr"].sum()),
        "n_exchanges": len(exc),
        "n_facilities_participating": int((fac["n_exchanges"] > 0).sum()),
        "currency": "EUR",
        "solver": "HiGHS 1.8.0 (hand-built fixture)",
        "status": "optimal",
    }

    def balance_table(after: bool) -> pd.DataFrame:
        inputs = dem.groupby("facility_id")["amount_t_per_yr"].sum() * 1.25
        outputs = sup.groupby("facility_id")["amount_t_per_yr"].sum() * 1.1
        table = pd.DataFrame({"facility_id": ids})
        table["quantity"] = "mass"
        table["unit"] = "t/yr"
        table["inputs"] = table["facility_id"].map(inputs).fillna(0.0) + 1000.0
        table["outputs"] = table["facility_id"].map(outputs).fillna(0.0)
        table["stock_change"] = 0.0
        table["outputs"] = np.where(table["outputs"] > 0, table["outputs"], table["inputs"] * 0.98)
        table["closure"] = table["inputs"] - table["outputs"] - table["stock_change"]
        table["closure_error"] = table["closure"] / table["inputs"]
        table["within_tolerance"] = table["closure_error"].abs() <= 0.05
        table["share_measured"] = 0.7
        table["share_estimated"] = 0.2
        table["share_modelled"] = 0.1
        table["n_flows"] = 4
        error_pct = (table["closure_error"] * 100).round(1).astype(str)
        table["status"] = np.where(table["within_tolerance"], "ok", "warning: closure error " + error_pct + " %")
        return table

    def region_row(table: pd.DataFrame) -> pd.DataFrame:
        row = {"facility_id": "REGION", "quantity": "mass", "unit": "t/yr",
               "inputs": table["inputs"].sum(), "outputs": table["outputs"].sum(), "stock_change": 0.0}
        row["closure"] = row["inputs"] - row["outputs"]
        row["closure_error"] = row["closure"] / row["inputs"]
        row["within_tolerance"] = abs(row["closure_error"]) <= 0.05
        row["status"] = "ok" if row["within_tolerance"] else "warning: region closure"
        return pd.DataFrame([row])

    before, after = balance_table(False), balance_table(True)
    parameters = {
        "max_distance_km": 100.0, "circuity": circuity, "transport_cost_per_tkm": transport_cost_per_tkm,
        "transport_co2_per_tkm": transport_co2_per_tkm, "carbon_price": carbon_price, "internal_reuse": True,
        "currency": "EUR",
    }
    return FakeResults(
        exchanges=exc, supplies=sup, demands=dem, facilities=fac, kpis=kpis,
        balances=FakeBalances(before, region_row(before)), balances_after=FakeBalances(after, region_row(after)),
        parameters=parameters,
    )


KALUNDBORG_FACILITIES = [
    {"facility_id": "asnaes", "name": "Asnæs power station", "sector": "35.11", "lat": 55.661528, "lon": 11.080892},
    {"facility_id": "refinery", "name": "Kalundborg refinery", "sector": "19.20", "lat": 55.6790, "lon": 11.0930},
    {"facility_id": "gyproc", "name": "Gyproc plasterboard", "sector": "23.62", "lat": 55.6700, "lon": 11.1010},
    {"facility_id": "novo", "name": "Novo Nordisk", "sector": "21.20", "lat": 55.6580, "lon": 11.1180},
    {"facility_id": "novozymes", "name": "Novozymes", "sector": "20.59", "lat": 55.6540, "lon": 11.1260},
    {"facility_id": "kemira", "name": "Kemira", "sector": "20.13", "lat": 55.6720, "lon": 11.0870},
    {"facility_id": "cement", "name": "Cement works", "sector": "23.51", "lat": 55.4550, "lon": 11.3050},
    {"facility_id": "biogas", "name": "Biogas plant", "sector": "35.21", "lat": 55.6470, "lon": 11.1370},
    {"facility_id": "fishfarm", "name": "Trout & salmon farm", "sector": "03.22", "lat": 55.6650, "lon": 11.0700,
     "confidential": True},
    {"facility_id": "utility", "name": "Kalundborg Forsyning", "sector": "36.00", "lat": 55.6830, "lon": 11.1030},
]


def _supply(supply_id: str, facility_id: str, material: str, amount: float, fate: str, fate_kind: str,
            cost: float, co2: float, category: str = "by_product", **extra: Any) -> dict[str, Any]:
    return {"supply_id": supply_id, "facility_id": facility_id, "material": material, "category": category,
            "amount_t_per_yr": amount, "fate": fate, "fate_kind": fate_kind, "fate_cost_per_t": cost,
            "fate_co2e_per_t": co2, "material_class": extra.pop("material_class", "other"), **extra}


def _demand(demand_id: str, facility_id: str, material: str, material_class: str, amount: float,
            price: float, co2: float, share: float = 1.0) -> dict[str, Any]:
    return {"demand_id": demand_id, "facility_id": facility_id, "material": material,
            "material_class": material_class, "density_t_per_m3": 1.0, "amount_t_per_yr": amount,
            "virgin_price_per_t": price, "virgin_co2e_per_t": co2, "max_secondary_share": share}


def handmade_results() -> FakeResults:
    """A small Kalundborg-like network with every documented column (used until the pipeline runs)."""
    supplies = [
        _supply("asnaes_gypsum", "asnaes", "fgd_gypsum", 200_000, "landfill", "landfill", 45.0, 0.01,
                material_class="gypsum"),
        _supply("asnaes_flyash", "asnaes", "fly_ash", 60_000, "landfill", "landfill", 40.0, 0.01,
                material_class="ash"),
        _supply("asnaes_warmwater", "asnaes", "warm_cooling_water", 50_000, "sewer", "sewer", 0.5, 0.0,
                category="wastewater", material_class="water"),
        _supply("refinery_sulphur", "refinery", "sulphur", 3_000, "incineration", "incineration", 90.0, 0.3,
                material_class="chemical"),
        _supply("refinery_coolingwater", "refinery", "cooling_water", 700_000, "sewer", "sewer", 0.4, 0.0,
                category="wastewater", material_class="water"),
        _supply("refinery_catalyst", "refinery", "spent_catalyst", 500, "landfill", "landfill", 120.0, 0.02,
                category="waste", material_class="metal", reason="no_substitution",
                reason_detail="no substitution in the reference data for spent_catalyst"),
        _supply("novo_sludge", "novo", "biomass_sludge", 80_000, "incineration", "incineration", 60.0, 0.05,
                category="waste", material_class="organic"),
        _supply("novozymes_water", "novozymes", "process_water", 1_000, "sewer", "sewer", 1.0, 0.0,
                category="wastewater", material_class="water"),
        _supply("gyproc_offcuts", "gyproc", "plasterboard_offcuts", 4_000, "landfill", "landfill", 50.0, 0.01,
                category="waste", material_class="gypsum", reason="beyond_distance",
                reason_detail="nearest compatible demand (cement) is 130 km away, limit 100 km"),
    ]
    demands = [
        _demand("gyproc_gypsum", "gyproc", "natural_gypsum", "gypsum", 170_000, 14.0, 0.006),
        _demand("cement_fillers", "cement", "pozzolana", "mineral", 45_000, 30.0, 0.8, share=0.3),
        _demand("kemira_sulphur", "kemira", "sulphur", "chemical", 3_500, 150.0, 0.2),
        _demand("asnaes_water", "asnaes", "surface_water", "water", 900_000, 0.3, 0.0003),
        _demand("fishfarm_water", "fishfarm", "heated_water", "water", 60_000, 0.8, 0.004),
        _demand("biogas_feedstock", "biogas", "energy_crops", "biomass", 100_000, 35.0, 0.1),
        _demand("novozymes_process_water", "novozymes", "groundwater", "water", 5_000, 0.9, 0.0003),
    ]
    exchanges = [
        ("asnaes_gypsum", "gyproc_gypsum", 150_000.0),
        ("asnaes_flyash", "cement_fillers", 13_500.0),
        ("refinery_sulphur", "kemira_sulphur", 3_000.0),
        ("refinery_coolingwater", "asnaes_water", 700_000.0),
        ("asnaes_warmwater", "fishfarm_water", 50_000.0),
        ("novo_sludge", "biogas_feedstock", 80_000.0),
        ("novozymes_water", "novozymes_process_water", 1_000.0),
    ]
    return build_results(KALUNDBORG_FACILITIES, supplies, demands, exchanges)


def handmade_region(results: Any) -> FakeRegion:
    """Region-like object (facilities, flows) consistent with :func:`handmade_results`, for Sankeys."""
    flows = []
    n = 0

    def add(fid: str, direction: str, category: str, material: str, amount: float, fate: str = "") -> None:
        nonlocal n
        n += 1
        flows.append({"flow_id": f"f{n}", "facility_id": fid, "direction": direction, "category": category,
                      "material": material, "quantity": "mass", "amount_t_per_yr": amount,
                      "amount_mwh_per_yr": np.nan, "fate": fate, "data_quality": "measured"})

    for s in results.supplies.itertuples():
        add(s.facility_id, "out", s.category, s.material, s.amount_t_per_yr, s.fate)
    for d in results.demands.itertuples():
        add(d.facility_id, "in", "raw_material", d.material, d.amount_t_per_yr)
    add("asnaes", "in", "raw_material", "coal", 1_200_000)
    add("asnaes", "in", "auxiliary", "limestone", 90_000)
    add("asnaes", "out", "emission", "co2", 1_000_000)
    add("asnaes", "stock", "stock_change", "coal", 20_000)
    add("gyproc", "out", "product", "plasterboard", 160_000)
    return FakeRegion(name="Kalundborg (hand-built)", facilities=results.facilities, flows=pd.DataFrame(flows))


def pipeline_results() -> tuple[Any, Any] | None:
    """(Results, Region) of the shipped Kalundborg region through the real pipeline, or None until it runs."""
    if not KALUNDBORG.exists():
        return None
    try:
        from symbiosis.inputs import load_region
        from symbiosis.pipeline import optimise
        from symbiosis.results import Results  # noqa: F401  (the contract this module stands in for)
    except ImportError:
        return None
    region = load_region(KALUNDBORG)
    return optimise(region), region


def sample_results() -> tuple[Any, Any]:
    """(Results, Region-like) to test outputs on: the real pipeline when it runs, else the hand-built one."""
    real = pipeline_results()
    if real is not None:
        return real
    results = handmade_results()
    return results, handmade_region(results)


def synthetic_results(n_facilities: int, n_exchanges: int, seed: int = 1) -> FakeResults:
    """A random region of ``n_facilities`` over ~2°×3° with ``n_exchanges`` exchanges (for scale checks)."""
    rng = np.random.default_rng(seed)
    classes = ["mineral", "ash", "gypsum", "metal", "chemical", "organic", "biomass", "water", "fuel"]
    sectors = ["10.11", "16.10", "19.20", "20.13", "23.51", "23.62", "24.10", "35.11", "38.21", "01.11"]
    facilities = [
        {"facility_id": f"F{i:05d}", "name": f"Facility {i}", "sector": sectors[i % len(sectors)],
         "lat": 51.0 + rng.random() * 2.0, "lon": 4.0 + rng.random() * 3.0, "confidential": i % 17 == 0}
        for i in range(n_facilities)
    ]
    supplies, demands, exchanges = [], [], []
    for k in range(n_exchanges):
        a, b = rng.choice(n_facilities, size=2, replace=False)
        cls = classes[k % len(classes)]
        amount = float(np.round(10 ** rng.uniform(1, 5.5)))
        kind = "landfill" if k % 3 else "incineration"
        supplies.append(_supply(f"S{k}", f"F{a:05d}", f"{cls}_residue", amount * 1.2, kind, kind, 40.0, 0.02,
                                material_class=cls))
        demands.append(_demand(f"D{k}", f"F{b:05d}", f"{cls}_virgin", cls, amount * 1.5, 25.0, 0.1))
        exchanges.append((f"S{k}", f"D{k}", amount))
    return build_results(facilities, supplies, demands, exchanges)


# --------------------------------------------------------------------------------------------------
# the offline browser
# --------------------------------------------------------------------------------------------------

#: cdnjs library name -> (npm package, folder inside it that mirrors the cdnjs layout).
CDNJS_PACKAGES = {
    "Leaflet.awesome-markers": ("leaflet.awesome-markers", "dist"),
    "leaflet.markercluster": ("leaflet.markercluster", "dist"),
}

# 1x1 light-grey PNG: a blank tile so the map looks like a map without fetching OpenStreetMap.
BLANK_TILE = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGN48eIFAAV0ArnZwsdlAAAAAElFTkSuQmCC"
)
TILE_HOSTS = re.compile(r"(^|\.)tile\.openstreetmap\.org$|(^|\.)basemaps\.cartocdn\.com$|(^|\.)tile\.")


class UnmappedAsset(Exception):
    """A CDN URL that has no local copy."""


def _installed_version(package: str) -> str | None:
    manifest = asset_dir() / "node_modules" / package / "package.json"
    if not manifest.exists():
        return None
    return str(json.loads(manifest.read_text(encoding="utf-8"))["version"])


def _package_file(package: str, version: str | None, rel: str, exact: bool = True) -> Path:
    installed = _installed_version(package)
    if installed is None:
        raise UnmappedAsset(f"npm package {package} is not in {asset_dir()} (run .ci/install-browser-assets.sh)")
    if exact and version is not None and installed != version:
        raise UnmappedAsset(f"{package}@{version} wanted, {installed} installed (update the install script)")
    path = asset_dir() / "node_modules" / package / rel
    if not path.is_file():
        raise UnmappedAsset(f"{rel} not in npm package {package}@{installed}")
    return path


def _glyphicons_css() -> bytes:
    """The glyphicon rules of Bootstrap 3 (what netdna's ``bootstrap-glyphicons.css`` carried), fonts included.

    npm has no ``bootstrap@3.0.0`` and no package with that CDN-only file; Bootstrap 3.4.1's ``bootstrap.css``
    holds the same ``@font-face`` and ``.glyphicon*`` rules, which we cut out, so no Bootstrap 3 layout rule
    leaks into folium's Bootstrap 5 page.
    """
    css = _package_file("bootstrap3", None, "dist/css/bootstrap.css").read_text(encoding="utf-8")
    rules = re.findall(r"(?ms)^(@font-face \{.*?^\}|\.glyphicon[^{]*\{.*?^\})", css)
    if not rules:
        raise UnmappedAsset("no glyphicon rules found in bootstrap3/dist/css/bootstrap.css")
    return "\n".join(rules).encode("utf-8")


def _awesome_rotate_css() -> bytes:
    """folium's ``leaflet.awesome.rotate.min.css`` (not on npm): one ``.fa-rotate-N`` rule per degree."""
    return "".join(
        f".fa-rotate-{n}{{-ms-transform:rotate({n}deg);-webkit-transform:rotate({n}deg);transform:rotate({n}deg)}}"
        for n in range(1, 360)
    ).encode("ascii")


def local_asset(url: str) -> tuple[bytes | Path, str]:
    """Local body (a file or bytes) and content type for a CDN URL; raises :class:`UnmappedAsset`."""
    parsed = urlparse(url)
    host, path = parsed.netloc.lower(), parsed.path
    found: bytes | Path
    if host == "cdn.jsdelivr.net" and path.startswith("/npm/"):
        m = re.match(r"/npm/((?:@[^/]+/)?[^/@]+)@([^/]+)/(.+)", path)
        if not m:
            raise UnmappedAsset(url)
        package, version, rel = m.groups()
        found = _package_file(package, version, rel)
    elif host == "cdn.jsdelivr.net" and path.endswith("/folium/templates/leaflet.awesome.rotate.min.css"):
        found = _awesome_rotate_css()
    elif host == "code.jquery.com":
        m = re.match(r"/jquery-(\d+\.\d+\.\d+)(\.min)?\.js$", path)
        if not m:
            raise UnmappedAsset(url)
        found = _package_file("jquery", m.group(1), f"dist/jquery{m.group(2) or ''}.js")
    elif host == "cdnjs.cloudflare.com" and path.startswith("/ajax/libs/"):
        m = re.match(r"/ajax/libs/([^/]+)/([^/]+)/(.+)", path)
        if not m or m.group(1) not in CDNJS_PACKAGES:
            raise UnmappedAsset(url)
        package, folder = CDNJS_PACKAGES[m.group(1)]
        # npm's leaflet.awesome-markers has no 2.0.2; its 2.0.5 ships the same dist files (see the script).
        exact = m.group(1) != "Leaflet.awesome-markers"
        found = _package_file(package, m.group(2), f"{folder}/{m.group(3)}", exact=exact)
    elif host == "netdna.bootstrapcdn.com" and path == "/bootstrap/3.0.0/css/bootstrap-glyphicons.css":
        found = _glyphicons_css()
    elif host == "netdna.bootstrapcdn.com" and path.startswith("/bootstrap/3.0.0/fonts/"):
        found = _package_file("bootstrap3", None, "dist/fonts/" + path.rsplit("/", 1)[1])
    elif host == "cdn.plot.ly":
        m = re.match(r"/plotly-(\d+\.\d+\.\d+)\.min\.js$", path)
        if not m:
            raise UnmappedAsset(url)
        found = _package_file("plotly.js-dist-min", m.group(1), "plotly.min.js")
    else:
        raise UnmappedAsset(url)
    ctype = mimetypes.guess_type(path)[0] or "application/octet-stream"
    if path.endswith(".js"):
        ctype = "application/javascript"
    return found, ctype


@dataclass
class OfflineRouter:
    """Playwright route handler: our files from ``root``, CDN assets from the npm cache, nothing else."""

    root: Path
    served: list[str] = field(default_factory=list)
    tiles: list[str] = field(default_factory=list)
    unmapped: list[str] = field(default_factory=list)

    def __call__(self, route: Any) -> None:
        url = route.request.url
        parsed = urlparse(url)
        if url == LOCAL_ORIGIN + "/favicon.ico":
            route.fulfill(status=204, body="")
            return
        if url.startswith(LOCAL_ORIGIN + "/"):
            local = (self.root / parsed.path.lstrip("/")).resolve()
            if local.is_file() and self.root.resolve() in local.parents:
                ctype = mimetypes.guess_type(local.name)[0] or "application/octet-stream"
                route.fulfill(status=200, path=str(local), content_type=ctype)
                self.served.append(url)
                return
            self.unmapped.append(f"{url} (not in {self.root})")
            route.fulfill(status=404, body="")
            return
        if parsed.scheme in ("data", "blob", "about"):
            route.continue_()
            return
        if TILE_HOSTS.search(parsed.netloc.lower()):
            self.tiles.append(url)
            route.fulfill(status=200, body=BLANK_TILE, content_type="image/png")
            return
        try:
            body, ctype = local_asset(url)
        except UnmappedAsset as exc:
            self.unmapped.append(f"{url} ({exc})")
            route.fulfill(status=204, body="")
            return
        self.served.append(url)
        headers = {"Access-Control-Allow-Origin": "*"}
        if isinstance(body, Path):
            route.fulfill(status=200, path=str(body), content_type=ctype, headers=headers)
        else:
            route.fulfill(status=200, body=body, content_type=ctype, headers=headers)


def browser_unavailable_reason() -> str | None:
    """Why the browser tests cannot run here, or None."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright Python package is not installed"
    if not (CHROMIUM.exists() or shutil.which(str(CHROMIUM))):
        return f"{CHROMIUM} not found (apt-get install chromium, or set SYMBIOSIS_CHROMIUM)"
    if _installed_version("leaflet") is None:
        return f"browser assets missing in {asset_dir()}: run .ci/install-browser-assets.sh"
    return None


def require_browser() -> None:
    """Fail under CI (env ``CI`` set), skip elsewhere, when Chromium or the asset cache is missing."""
    reason = browser_unavailable_reason()
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"browser tests cannot run: {reason}", pytrace=False)
    pytest.skip(f"browser tests skipped: {reason}")


@dataclass
class PageLog:
    """What the page reported while it ran."""

    page_errors: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)


@contextlib.contextmanager
def browser_page(root: Path, viewport: tuple[int, int] = (1280, 860)) -> Iterator[tuple[Any, OfflineRouter, PageLog]]:
    """An offline Chromium page whose requests go through :class:`OfflineRouter` rooted at ``root``."""
    from playwright.sync_api import sync_playwright

    router = OfflineRouter(root=root)
    log = PageLog()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
            context.route("**/*", router)
            page = context.new_page()
            page.on("pageerror", lambda exc: log.page_errors.append(str(exc)))
            page.on("console", lambda msg: log.console_errors.append(msg.text) if msg.type == "error" else None)

            def on_dialog(dialog: Any) -> None:
                log.dialogs.append(f"{dialog.type}: {dialog.message}")
                dialog.dismiss()

            page.on("dialog", on_dialog)
            yield page, router, log
        finally:
            browser.close()
