"""Analyst files: the Results tables as CSV, the KPIs as JSON, the network as a GeoPackage.

The last stage of the pipeline writes what the optimiser found in formats an analyst opens as they are:
``exchanges.csv``, ``supplies.csv``, ``demands.csv``, ``facilities.csv``, ``balances.csv`` (before and
after the exchanges, one ``stage`` column apart), ``kpis.json``, and ``exchanges.gpkg`` with a point layer
``facilities`` and a LineString layer ``exchanges`` (supply facility → demand facility), both EPSG:4326.
No line has zero length: an exchange whose two ends are one point (internal reuse, or two confidential
facilities coarsened into one grid cell) keeps its row with no geometry and says why in ``geometry_note``.
Every file is written to a temporary file in the target folder and then moved over the old one, so an
interrupted run never leaves a half-written output in place of a good one.

This module also holds what the other output modules share: :func:`public_results`, which hides
confidential facilities (name replaced by "Confidential facility N", id and flow ids pseudonymised,
location snapped to the centre of a 0.05° grid cell, about 5 km) while keeping their flows in every total,
and the small helpers for material groups and NACE divisions. Writes go through symbiosis.atomic.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from symbiosis.atomic import write_atomic, write_text_atomic

logger = logging.getLogger(__name__)

#: Grid cell (degrees) to whose centre a confidential facility is snapped on public outputs (~5 km).
CONFIDENTIAL_GRID_DEG = 0.05

#: Fate kinds counted as waste that symbiosis can divert (docs/architecture.md, fates.csv).
WASTE_FATE_KINDS = ("landfill", "incineration")

#: Free-text columns scrubbed of confidential names and ids on public outputs.
_FREE_TEXT_COLUMNS = ("reason_detail", "note", "status")


# --------------------------------------------------------------------------------------------------
# shared helpers
# --------------------------------------------------------------------------------------------------


def nace_division(sector: Any) -> str:
    """The NACE division (first two digits) of a sector code such as ``"35.11"``, ``"C23.5"`` or ``23``."""
    if sector is None or (isinstance(sector, float) and math.isnan(sector)):
        return "??"
    text = str(sector).strip()
    if isinstance(sector, (int, float)) and not isinstance(sector, bool):
        text = f"{int(sector):02d}" if float(sector).is_integer() else text
    match = re.search(r"\d+", text)
    if not match:
        return "??"
    digits = match.group(0)
    return digits.zfill(2)[:2]


def facility_names(facilities: pd.DataFrame) -> dict[str, str]:
    """Facility id → name."""
    return dict(zip(facilities["facility_id"].astype(str), facilities["name"].astype(str), strict=True))


def exchange_material_groups(results: Any) -> pd.Series:
    """Material group (material class) of each exchange, aligned with ``results.exchanges``.

    The class of the supplied material is taken from a ``material_class`` column of the exchanges or of the
    supplies when one is there, else from the class of the demand it serves, else the material id itself.
    """
    exchanges = results.exchanges
    if "material_class" in exchanges.columns:
        groups = exchanges["material_class"].astype("string")
    else:
        groups = pd.Series(pd.NA, index=exchanges.index, dtype="string")
        supplies = getattr(results, "supplies", None)
        demands = getattr(results, "demands", None)
        if supplies is not None and "material_class" in supplies.columns and "supply_id" in exchanges:
            lookup = supplies.drop_duplicates("supply_id").set_index("supply_id")["material_class"]
            groups = groups.fillna(exchanges["supply_id"].map(lookup).astype("string"))
        if demands is not None and "material_class" in demands.columns and "demand_id" in exchanges:
            lookup = demands.drop_duplicates("demand_id").set_index("demand_id")["material_class"]
            groups = groups.fillna(exchanges["demand_id"].map(lookup).astype("string"))
    groups = groups.fillna(exchanges["material"].astype("string")).replace("", pd.NA)
    return groups.fillna("other").astype(str)


def jsonable(value: Any) -> Any:
    """``value`` with numpy scalars made plain and NaN/inf made ``None``, ready for strict JSON."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


# --------------------------------------------------------------------------------------------------
# confidentiality
# --------------------------------------------------------------------------------------------------


def confidential_mask(facilities: pd.DataFrame) -> pd.Series:
    """True for facilities marked confidential (a missing column means none is)."""
    if "confidential" not in facilities.columns:
        return pd.Series(False, index=facilities.index)
    col = facilities["confidential"]
    if col.dtype == object:
        col = col.map(lambda v: str(v).strip().lower() in {"true", "1", "yes", "y"} if v is not None else False)
    return col.fillna(False).astype(bool)


def snap_to_grid(values: pd.Series, grid_deg: float = CONFIDENTIAL_GRID_DEG) -> pd.Series:
    """Centre of the ``grid_deg`` cell each coordinate falls in."""
    return np.floor(values.astype(float) / grid_deg) * grid_deg + grid_deg / 2


def public_results(results: Any, grid_deg: float = CONFIDENTIAL_GRID_DEG) -> Any:
    """A copy of ``results`` safe to publish: confidential facilities anonymised, their flows kept.

    For each facility with ``confidential`` true, in the order of the facilities table: the name becomes
    ``"Confidential facility N"``, the id ``"confidential-N"``, the ids of its supply and demand flows
    ``"confidential-N/flow-K"``, and its latitude and longitude the centre of the ``grid_deg`` cell it lies
    in (0.05° by default, about 5 km). The same substitution is applied to every table (facilities,
    supplies, demands, exchanges, balances) and to free-text reason columns, so the files still join.
    Amounts, costs, emissions and distances are unchanged, so every total and KPI is the same as in the
    analyst's view. Returns ``results`` itself when no facility is confidential.
    """
    facilities = results.facilities
    mask = confidential_mask(facilities)
    if not mask.any():
        return results

    id_map: dict[str, str] = {}
    name_map: dict[str, str] = {}
    for n, (fid, name) in enumerate(facility_names(facilities.loc[mask]).items(), start=1):
        id_map[fid] = f"confidential-{n}"
        name_map[name] = f"Confidential facility {n}"

    flow_map: dict[str, str] = {}
    counters: dict[str, int] = {}
    for table, id_col in ((results.supplies, "supply_id"), (results.demands, "demand_id")):
        if table is None or id_col not in table.columns:
            continue
        for fid, flow_id in zip(table["facility_id"].astype(str), table[id_col].astype(str), strict=True):
            if fid in id_map and flow_id not in flow_map:
                counters[fid] = counters.get(fid, 0) + 1
                flow_map[flow_id] = f"{id_map[fid]}/flow-{counters[fid]}"

    # One pass per text: names, flow ids and facility ids in one alternation, longest first.
    replacements = {**id_map, **flow_map, **name_map}
    pattern = re.compile(
        r"(?<![\w-])(" + "|".join(re.escape(k) for k in sorted(replacements, key=len, reverse=True)) + r")(?![\w-])"
    )

    def scrub_text(text: Any) -> Any:
        if not isinstance(text, str) or not text:
            return text
        return pattern.sub(lambda match: replacements[match.group(1)], text)

    def anonymise(table: pd.DataFrame | None, locate_by: str | None = "facility_id") -> pd.DataFrame | None:
        if table is None:
            return None
        out = table.copy()
        if locate_by and locate_by in out.columns and {"lat", "lon"} <= set(out.columns):
            hidden = out[locate_by].astype(str).isin(id_map.keys())
            out.loc[hidden, "lat"] = snap_to_grid(out.loc[hidden, "lat"], grid_deg)
            out.loc[hidden, "lon"] = snap_to_grid(out.loc[hidden, "lon"], grid_deg)
        for col in ("facility_id", "supply_facility", "demand_facility"):
            if col in out.columns:
                out[col] = out[col].map(lambda v: id_map.get(str(v), v))
        for col in ("supply_id", "demand_id", "flow_id"):
            if col in out.columns:
                out[col] = out[col].map(lambda v: flow_map.get(str(v), v))
        for col in _FREE_TEXT_COLUMNS:
            if col in out.columns:
                out[col] = out[col].map(scrub_text)
        return out

    public = copy.copy(results)
    facilities_out = anonymise(facilities)
    assert facilities_out is not None
    facilities_out.loc[mask, "name"] = facilities_out.loc[mask, "name"].map(lambda v: name_map.get(str(v), v))
    public.facilities = facilities_out
    public.supplies = anonymise(results.supplies)
    public.demands = anonymise(results.demands)
    public.exchanges = anonymise(results.exchanges, locate_by=None)
    for attr in ("balances", "balances_after"):
        balances = getattr(results, attr, None)
        if balances is not None and getattr(balances, "table", None) is not None:
            balances_out = copy.copy(balances)
            balances_out.table = anonymise(balances.table, locate_by=None)
            setattr(public, attr, balances_out)
    logger.info("public outputs: %d confidential facilities anonymised (grid %.3f deg)", len(id_map), grid_deg)
    return public


# --------------------------------------------------------------------------------------------------
# tables and geometry
# --------------------------------------------------------------------------------------------------


def balances_frame(results: Any) -> pd.DataFrame:
    """Facility and region balances before and after the exchanges in one table with a ``stage`` column."""
    parts = []
    for stage, attr in (("before", "balances"), ("after", "balances_after")):
        balances = getattr(results, attr, None)
        if balances is None:
            continue
        for table in (getattr(balances, "table", None), getattr(balances, "region", None)):
            if table is not None and len(table):
                parts.append(table.assign(stage=stage))
    if not parts:
        return pd.DataFrame(columns=["stage", "facility_id", "quantity"])
    frame = pd.concat(parts, ignore_index=True)
    return frame[["stage", *[c for c in frame.columns if c != "stage"]]]


def facilities_geodataframe(results: Any) -> Any:
    """Facilities as points (EPSG:4326) with their attributes."""
    import geopandas as gpd

    facilities = results.facilities.reset_index(drop=True)
    geometry = gpd.points_from_xy(facilities["lon"].astype(float), facilities["lat"].astype(float))
    return gpd.GeoDataFrame(facilities, geometry=geometry, crs="EPSG:4326")


#: ``geometry_note`` of an exchange row written without a line (docs/outputs.md).
INTERNAL_EXCHANGE_NOTE = "internal exchange (the facility serves itself): no line; the facility's point shows it"
SAME_POINT_NOTE = "both ends are shown at one point (a coarsened confidential location): no line"


def exchanges_geodataframe(results: Any) -> Any:
    """Exchanges as LineStrings from the supply facility to the demand facility (EPSG:4326).

    A zero-length line is not a valid line (and GIS tools drop or choke on it): an exchange whose two ends
    are the same point, an internal exchange (a facility serving itself) or two confidential facilities
    snapped into one grid cell, keeps its row with a missing geometry, and ``geometry_note`` says why
    (empty on every row that has a line).
    """
    import geopandas as gpd
    from shapely.geometry import LineString

    exchanges = results.exchanges.reset_index(drop=True).copy()
    exchanges["material_class"] = exchange_material_groups(results).to_numpy()
    located = results.facilities.drop_duplicates("facility_id").set_index("facility_id")[["lat", "lon"]]
    start = located.reindex(exchanges["supply_facility"]).to_numpy(dtype=float)
    end = located.reindex(exchanges["demand_facility"]).to_numpy(dtype=float)
    missing = np.isnan(start).any(axis=1) | np.isnan(end).any(axis=1)
    if missing.any():
        raise ValueError(
            "exchanges refer to facilities missing from results.facilities: "
            + ", ".join(sorted(set(exchanges.loc[missing, "supply_facility"].astype(str))
                               | set(exchanges.loc[missing, "demand_facility"].astype(str))))
        )
    internal = (exchanges["supply_facility"].astype(str) == exchanges["demand_facility"].astype(str)).to_numpy()
    one_point = (start == end).all(axis=1)
    exchanges["geometry_note"] = np.where(internal, INTERNAL_EXCHANGE_NOTE, np.where(one_point, SAME_POINT_NOTE, ""))
    lines = [None if same else LineString([(a[1], a[0]), (b[1], b[0])])
             for a, b, same in zip(start, end, internal | one_point, strict=True)]
    return gpd.GeoDataFrame(exchanges, geometry=gpd.GeoSeries(lines, crs="EPSG:4326"), crs="EPSG:4326")


def _for_file(frame: pd.DataFrame) -> pd.DataFrame:
    """Object columns as plain text so GDAL and CSV readers see one type per column."""
    out = frame.copy()
    for col in out.columns:
        if out[col].dtype == object and col != "geometry":
            out[col] = out[col].map(lambda v: "" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v))
    return out


def _csv_writer(frame: pd.DataFrame) -> Callable[[Path], None]:
    return lambda tmp: frame.to_csv(tmp, index=False)


def write_results(results: Any, out_dir: str | os.PathLike[str], *, public: bool = True) -> dict[str, Path]:
    """Write the analyst files of ``results`` into ``out_dir`` and return their paths by name.

    Files: ``exchanges.csv``, ``supplies.csv``, ``demands.csv``, ``facilities.csv``, ``balances.csv``,
    ``kpis.json`` and ``exchanges.gpkg`` (layers ``facilities``, points, and ``exchanges``, LineStrings;
    EPSG:4326). With ``public=True`` (the default) confidential facilities are anonymised and their location
    coarsened exactly as on the map and in the report (see :func:`public_results`); pass ``public=False``
    for an internal copy with every name and coordinate.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    view = public_results(results) if public else results
    written: dict[str, Path] = {}

    tables = {
        "exchanges": view.exchanges,
        "supplies": view.supplies,
        "demands": view.demands,
        "facilities": view.facilities,
        "balances": balances_frame(view),
    }
    for name, frame in tables.items():
        written[f"{name}.csv"] = write_atomic(out / f"{name}.csv", _csv_writer(frame))

    kpis_text = json.dumps(jsonable(dict(view.kpis)), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    written["kpis.json"] = write_text_atomic(out / "kpis.json", kpis_text)

    facilities_gdf = _for_file(facilities_geodataframe(view))
    exchanges_gdf = _for_file(exchanges_geodataframe(view))

    def write_gpkg(tmp: Path) -> None:
        # The layer types are stated, not inferred: a layer of internal exchanges only (no line) stays LineString.
        facilities_gdf.to_file(tmp, layer="facilities", driver="GPKG", engine="pyogrio", geometry_type="Point")
        exchanges_gdf.to_file(tmp, layer="exchanges", driver="GPKG", engine="pyogrio", geometry_type="LineString")

    written["exchanges.gpkg"] = write_atomic(out / "exchanges.gpkg", write_gpkg)
    logger.info("wrote %d result files to %s (public=%s)", len(written), out, public)
    return written
