"""Analyst files (CSV, JSON, GeoPackage), public anonymisation, atomic writes and the slide PNGs."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely

from symbiosis.outputs.export import (
    CONFIDENTIAL_GRID_DEG,
    exchange_material_groups,
    nace_division,
    public_results,
    write_results,
)
from symbiosis.outputs.static import exchange_map_png, kpi_bars_png
from symbiosis.region import Region
from symbiosis.results import Results
from tests.browser_support import most_connected, optimised_with

FILES = ["exchanges.csv", "supplies.csv", "demands.csv", "facilities.csv", "balances.csv", "kpis.json",
         "exchanges.gpkg", "substances.csv"]  # substances: the tiny region measures concentrations (%)


@pytest.fixture(scope="module")
def confidential(sample: tuple[Results, Region]) -> tuple[Results, str, str]:
    """Kalundborg optimised with its most connected facility marked confidential: (Results, its id, its name)."""
    results, region = sample
    assert not region.facilities["confidential"].any()
    fid = most_connected(results)
    hidden, hidden_region = optimised_with(region, fid, confidential=True)
    name = str(hidden_region.facilities.set_index("facility_id").at[fid, "name"])
    assert hidden.facilities["confidential"].sum() == 1
    return hidden, fid, name


def test_write_results_writes_every_file_with_the_same_rows(results: Results, tmp_path: Path) -> None:
    written = write_results(results, tmp_path, public=False)
    assert sorted(written) == sorted(FILES)
    for name in FILES:
        assert (tmp_path / name).stat().st_size > 0
    for name, frame in (("exchanges", results.exchanges), ("supplies", results.supplies),
                        ("demands", results.demands), ("facilities", results.facilities)):
        back = pd.read_csv(tmp_path / f"{name}.csv")
        assert len(back) == len(frame)
        assert list(back.columns) == list(frame.columns)
    np.testing.assert_allclose(pd.read_csv(tmp_path / "exchanges.csv")["amount_t_per_yr"],
                               results.exchanges["amount_t_per_yr"])
    balances = pd.read_csv(tmp_path / "balances.csv")
    assert set(balances["stage"]) == {"before", "after"}
    kpis = json.loads((tmp_path / "kpis.json").read_text(encoding="utf-8"))
    for key, value in results.kpis.items():
        if isinstance(value, float):
            assert kpis[key] == pytest.approx(value) if math.isfinite(value) else kpis[key] is None
        elif isinstance(value, (int, str)):
            assert kpis[key] == value


def test_geopackage_has_points_and_lines_in_wgs84(results: Results, tmp_path: Path) -> None:
    write_results(results, tmp_path, public=False)
    gpkg = tmp_path / "exchanges.gpkg"
    layers = dict(pyogrio.list_layers(gpkg))
    assert layers == {"facilities": "Point", "exchanges": "LineString"}
    facilities = gpd.read_file(gpkg, layer="facilities")
    exchanges = gpd.read_file(gpkg, layer="exchanges")
    assert facilities.crs.to_epsg() == 4326 and exchanges.crs.to_epsg() == 4326
    assert len(facilities) == len(results.facilities)
    assert len(exchanges) == len(results.exchanges)
    assert {"material", "amount_t_per_yr", "saving", "material_class"} <= set(exchanges.columns)
    where = facilities.set_index("facility_id").geometry
    for row in exchanges[exchanges.geometry.notna()].itertuples():
        start, end = row.geometry.coords[0], row.geometry.coords[-1]
        assert start == pytest.approx((where[row.supply_facility].x, where[row.supply_facility].y))
        assert end == pytest.approx((where[row.demand_facility].x, where[row.demand_facility].y))


def test_public_outputs_hide_confidential_facilities_but_keep_their_flows(
        confidential: tuple[Results, str, str], tmp_path: Path) -> None:
    hidden, fid, name = confidential
    write_results(hidden, tmp_path)  # public by default
    facilities = pd.read_csv(tmp_path / "facilities.csv")
    row = facilities[facilities["name"] == "Confidential facility 1"]
    assert len(row) == 1
    assert row["facility_id"].iloc[0] == "confidential-1"
    original = hidden.facilities.set_index("facility_id").loc[fid]
    for axis in ("lat", "lon"):
        centre = math.floor(original[axis] / CONFIDENTIAL_GRID_DEG) * CONFIDENTIAL_GRID_DEG + CONFIDENTIAL_GRID_DEG / 2
        assert row[axis].iloc[0] == pytest.approx(centre)
    # No file names the facility or its id, in text or inside the GeoPackage.
    for path in tmp_path.iterdir():
        data = path.read_bytes()
        assert name.encode("utf-8") not in data, path.name
        assert fid.encode("utf-8") not in data, path.name  # anywhere: a flow id that embeds it leaks it too
    # Same exchanges (ids still join), but the tonnes of those with the confidential facility or with the
    # public facilities suppressed beside it are empty; the region totals stay (docs/outputs.md).
    exchanges = pd.read_csv(tmp_path / "exchanges.csv")
    assert len(exchanges) == len(hidden.exchanges)
    mine = (exchanges["supply_facility"] == "confidential-1") | (exchanges["demand_facility"] == "confidential-1")
    assert mine.any() and exchanges.loc[mine, "amount_t_per_yr"].isna().all()
    assert exchanges["amount_t_per_yr"].notna().any()
    ids = set(facilities["facility_id"])
    assert set(exchanges["supply_facility"]) | set(exchanges["demand_facility"]) <= ids
    kpis = json.loads((tmp_path / "kpis.json").read_text(encoding="utf-8"))
    assert kpis["net_cost_saving"] == pytest.approx(hidden.kpis["net_cost_saving"])


def assert_valid_geometries(gpkg: Path) -> dict[str, gpd.GeoDataFrame]:
    """Every layer: valid, non-empty geometries, no zero-length line; a missing geometry only with a note."""
    layers = {}
    for name, _ in pyogrio.list_layers(gpkg):
        frame = gpd.read_file(gpkg, layer=name)
        present = frame.geometry.notna()
        geometries = frame.geometry[present]
        assert geometries.is_valid.all(), (name, frame.loc[present & ~frame.geometry.is_valid])
        assert not geometries.is_empty.any(), name
        lines = geometries[geometries.geom_type == "LineString"]
        length = shapely.length(np.asarray(lines.array))  # degrees: enough to tell a zero-length line
        assert (length > 0).all(), (name, frame.loc[lines.index[length <= 0]])
        if name == "exchanges":
            assert (frame.loc[~present, "geometry_note"].fillna("") != "").all(), "a missing line without a note"
            assert (frame.loc[present, "geometry_note"].fillna("") == "").all()
        else:
            assert present.all(), name
        layers[name] = frame
    return layers


def test_every_exported_geometry_is_valid_and_internal_reuse_has_no_line(results: Results, tmp_path: Path) -> None:
    write_results(results, tmp_path, public=False)
    layers = assert_valid_geometries(tmp_path / "exchanges.gpkg")
    assert dict(pyogrio.list_layers(tmp_path / "exchanges.gpkg")) == {"facilities": "Point", "exchanges": "LineString"}
    exchanges = layers["exchanges"]
    internal = exchanges["supply_facility"] == exchanges["demand_facility"]
    assert internal.any()  # Kalundborg: Gyproc's waste plasterboard back into its own gypsum
    assert exchanges.geometry[internal].isna().all()
    assert exchanges.loc[internal, "geometry_note"].str.startswith("internal exchange").all()
    assert exchanges.geometry[~internal].notna().all()


def test_confidential_partners_coarsened_into_one_point_get_no_line(results: Results, tmp_path: Path) -> None:
    # Two confidential partners 200 m apart fall in one 0.05° cell: both are shown at its centre.
    ex = results.exchanges[results.exchanges["supply_facility"] != results.exchanges["demand_facility"]].iloc[0]
    supplier, receiver = ex["supply_facility"], ex["demand_facility"]
    facilities = results.facilities.copy()
    at = facilities.set_index("facility_id")
    lat = math.floor(at.at[supplier, "lat"] / CONFIDENTIAL_GRID_DEG) * CONFIDENTIAL_GRID_DEG + 0.02
    lon = math.floor(at.at[supplier, "lon"] / CONFIDENTIAL_GRID_DEG) * CONFIDENTIAL_GRID_DEG + 0.02
    both = facilities["facility_id"].isin([supplier, receiver])
    facilities.loc[both, "confidential"] = True
    facilities.loc[facilities["facility_id"] == supplier, ["lat", "lon"]] = [lat, lon]
    facilities.loc[facilities["facility_id"] == receiver, ["lat", "lon"]] = [lat + 0.002, lon + 0.002]
    moved = copy.copy(results)
    moved.facilities = facilities
    write_results(moved, tmp_path)
    exchanges = assert_valid_geometries(tmp_path / "exchanges.gpkg")["exchanges"]
    same = exchanges["geometry_note"].fillna("").str.startswith("both ends")
    assert same.sum() >= 1 and exchanges.geometry[same].isna().all()


def test_public_results_is_the_identity_without_confidential_facilities(results: Results) -> None:
    assert not results.facilities["confidential"].any()  # none in the shipped Kalundborg region
    assert public_results(results) is results


def test_public_results_is_idempotent(confidential: tuple[Results, str, str]) -> None:
    hidden, _, _ = confidential
    once = public_results(hidden)
    twice = public_results(once)
    pd.testing.assert_frame_equal(once.facilities, twice.facilities)
    pd.testing.assert_frame_equal(once.exchanges, twice.exchanges)


def test_a_failed_write_leaves_the_previous_output(results: Results, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    write_results(results, tmp_path, public=False)
    before = (tmp_path / "exchanges.gpkg").read_bytes()

    def broken(self: Any, path: Any, *args: Any, **kwargs: Any) -> None:
        Path(path).write_bytes(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(gpd.GeoDataFrame, "to_file", broken)
    with pytest.raises(OSError, match="disk full"):
        write_results(results, tmp_path, public=False)
    assert (tmp_path / "exchanges.gpkg").read_bytes() == before
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_helpers() -> None:
    assert nace_division("35.11") == "35"
    assert nace_division("C23.5") == "23"
    assert nace_division("3.22") == "03"
    assert nace_division(1) == "01"
    assert nace_division("") == "??"


def test_material_groups_align_with_exchanges(results: Results) -> None:
    groups = exchange_material_groups(results)
    assert len(groups) == len(results.exchanges)
    assert groups.notna().all() and (groups != "").all()


@pytest.mark.slow
def test_slide_pngs(results: Results, tmp_path: Path) -> None:
    for path in (exchange_map_png(results, tmp_path / "map.png"), kpi_bars_png(results, tmp_path / "kpis.png")):
        data = path.read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000
