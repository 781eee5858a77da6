"""Analyst files: the Results tables as CSV, the KPIs as JSON, the network as a GeoPackage.

The last stage of the pipeline writes what the optimiser found in formats an analyst opens as they are:
``exchanges.csv``, ``supplies.csv``, ``demands.csv``, ``facilities.csv``, ``balances.csv`` (before and
after the exchanges, one ``stage`` column apart), ``kpis.json``, and ``exchanges.gpkg`` with a point layer
``facilities`` and a LineString layer ``exchanges`` (supply facility → demand facility), both EPSG:4326.
No line has zero length: an exchange whose two ends are one point (internal reuse, or two confidential
facilities coarsened into one grid cell) keeps its row with no geometry and says why in ``geometry_note``.
Every file is written to a temporary file in the target folder and then moved over the old one, so an
interrupted run never leaves a half-written output in place of a good one.

This module also holds what the other output modules share: :func:`public_results`, the public view of
a run by the rules of symbiosis/disclosure.py (confidential facilities pseudonymised, located to a 0.05°
cell, their own figures suppressed, region totals kept), and the small helpers for material groups and
NACE divisions. Writes go through symbiosis.atomic.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from symbiosis import disclosure
from symbiosis.atomic import write_atomic, write_text_atomic
from symbiosis.disclosure import CONFIDENTIAL_GRID_DEG, confidential_mask, snap_to_grid  # noqa: F401 (re-exported)

logger = logging.getLogger(__name__)

#: Fate kinds counted as waste that symbiosis can divert (docs/architecture.md, fates.csv).
WASTE_FATE_KINDS = ("landfill", "incineration")


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


def public_results(results: Any, grid_deg: float = CONFIDENTIAL_GRID_DEG, *, region: Any = None) -> Any:
    """A copy of ``results`` safe to publish (``symbiosis.disclosure.public_results``; docs/outputs.md,
    "Confidential facilities"): confidential facilities pseudonymised, located to a ``grid_deg`` cell, and
    every figure attributable to one of them alone suppressed; region totals kept. Returns ``results``
    itself when no facility is confidential."""
    if getattr(results, "disclosed", False):
        return results
    d = disclosure.for_results(results, region)
    d.grid_deg = grid_deg
    return disclosure.public_results(results, d)


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


#: What a spreadsheet reads as the start of a formula in a text cell (OWASP, CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def excel_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` whose text cells a spreadsheet cannot run as formulas.

    A text cell (or column name) that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets
    a leading ``'``, the OWASP rule against CSV injection: Excel and LibreOffice then show the text as it is.
    Numbers stay numbers (a negative number is not text); only ``str`` values are touched.
    """
    out = frame
    pattern = "^[" + "".join(re.escape(c) for c in FORMULA_STARTS) + "]"
    for position in range(frame.shape[1]):
        series = frame.iloc[:, position]
        if not (series.dtype == object or pd.api.types.is_string_dtype(series)
                or isinstance(series.dtype, pd.CategoricalDtype)):
            continue
        text = series.astype(object)
        risky = text.str.match(pattern, na=False).to_numpy(bool)
        if risky.any():
            if out is frame:
                out = frame.copy()
            fixed = text.copy()
            fixed[risky] = "'" + text[risky].astype(str)
            out.isetitem(position, fixed)
    renamed = {c: f"'{c}" for c in out.columns if isinstance(c, str) and c.startswith(FORMULA_STARTS)}
    return out.rename(columns=renamed) if renamed else out


def write_csv(path: str | os.PathLike[str], frame: pd.DataFrame, **options: Any) -> Path:
    """Write ``frame`` as CSV, atomically, through :func:`excel_safe`: every CSV the project writes goes here."""
    safe = excel_safe(frame)
    return write_atomic(Path(path), lambda tmp: safe.to_csv(tmp, index=False, **options))


def write_csv_batches(path: str | os.PathLike[str], batches: Iterable[pd.DataFrame], empty: pd.DataFrame) -> Path:
    """Write the frames of ``batches`` one after the other as one CSV (one header), atomically, each through
    :func:`excel_safe`, never holding more than one; ``empty`` (the columns, no row) when there is no batch."""
    def write(tmp: Path) -> None:
        first = True
        for frame in batches:
            excel_safe(frame).to_csv(tmp, index=False, mode="w" if first else "a", header=first)
            first = False
        if first:
            excel_safe(empty).to_csv(tmp, index=False)

    return write_atomic(Path(path), write)


def _csv_writer(frame: pd.DataFrame) -> Callable[[Path], None]:
    safe = excel_safe(frame)
    return lambda tmp: safe.to_csv(tmp, index=False)


#: Rows (in any one of exchanges, supplies, demands) from which write_results also writes Parquet unasked.
PARQUET_FROM_ROWS = 50_000
#: The tables write_results also writes as Parquet.
PARQUET_TABLES = ("exchanges", "supplies", "demands")


def write_results(results: Any, out_dir: str | os.PathLike[str], *, public: bool = True,
                  region: Any = None, parquet: bool | None = None) -> dict[str, Path]:
    """Write the analyst files of ``results`` into ``out_dir`` and return their paths by name.

    Files: ``exchanges.csv``, ``supplies.csv``, ``demands.csv``, ``facilities.csv``, ``balances.csv``,
    ``kpis.json`` and ``exchanges.gpkg`` (layers ``facilities``, points, and ``exchanges``, LineStrings;
    EPSG:4326). With ``public=True`` (the default) confidential facilities are masked exactly as on the map
    and in the report (see :func:`public_results`; ``region`` adds its flows and sources to what is
    scrubbed), and ``kpis.json`` says how many; ``public=False`` writes an internal copy with every name,
    coordinate and figure, and ``kpis.json`` then says ``"disclosure": "PRIVATE: contains confidential data"``.
    ``parquet``: also write ``exchanges.parquet``, ``supplies.parquet`` and ``demands.parquet`` (the same
    rows and cells as the CSVs); None (the default) does so when one of them has ``PARQUET_FROM_ROWS`` rows.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    view = public_results(results, region=region) if public else results
    written: dict[str, Path] = {}

    tables = {
        "exchanges": view.exchanges,
        "supplies": view.supplies,
        "demands": view.demands,
        "facilities": disclosure.with_aggregates(view, "facilities", view.facilities),
        "balances": balances_frame(view),
    }
    # Processors and traced substances (symbiosis.network), written only where the run has any.
    for name in ("processors", "substances", "substance_warnings"):
        frame = getattr(view, name, None)
        if frame is not None and len(frame):
            tables[name] = frame
    limits = getattr(results, "permit_limits", None)
    if limits is not None and len(limits):
        if public:  # a confidential facility's permits are not for publication
            hidden = set(results.facilities.loc[confidential_mask(results.facilities), "facility_id"])
            limits = limits[~limits["facility_id"].isin(hidden)]
        tables["permit_limits"] = limits
    opportunities = getattr(results, "permit_opportunities", None)
    if opportunities is not None and len(opportunities):
        if public:  # a confidential facility's permit gap is not for publication
            hidden = set(results.facilities.loc[confidential_mask(results.facilities), "facility_id"])
            opportunities = opportunities[~opportunities["supply_facility"].isin(hidden)
                                          & ~opportunities["demand_facility"].isin(hidden)]
        tables["permit_opportunities"] = opportunities
    if getattr(results, "periods", None) is not None:  # periods and stores (symbiosis.periods.outputs)
        from symbiosis.periods.outputs import period_tables

        tables.update(period_tables(results, public=public, region=region))
    for name, frame in tables.items():
        written[f"{name}.csv"] = write_atomic(out / f"{name}.csv", _csv_writer(frame))
    if parquet or (parquet is None and max(len(tables[name]) for name in PARQUET_TABLES) >= PARQUET_FROM_ROWS):
        for name in PARQUET_TABLES:
            written[f"{name}.parquet"] = write_parquet(out / f"{name}.parquet", tables[name])

    n_masked = int(confidential_mask(results.facilities).sum()) if public else 0
    record = {**disclosure.marker(not public, n_masked), **dict(view.kpis)}
    kpis_text = json.dumps(jsonable(record), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
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


def write_parquet(path: str | os.PathLike[str], frame: pd.DataFrame) -> Path:
    """Write ``frame`` as Parquet (pyarrow), atomically, with the cells its CSV has (:func:`excel_safe`'s).

    A text column that also holds numbers (which Parquet cannot type) is written as text, as the CSV shows it.
    """
    safe = excel_safe(frame).reset_index(drop=True)
    mixed = [c for c in safe.columns if safe[c].dtype == object
             and pd.api.types.infer_dtype(safe[c], skipna=True) not in ("string", "empty", "boolean", "floating",
                                                                         "integer", "decimal")]
    if mixed:
        safe = safe.copy()
        for column in mixed:
            safe[column] = safe[column].map(lambda v: v if v is None or (isinstance(v, float) and math.isnan(v))
                                            else str(v))
    return write_atomic(Path(path), lambda tmp: safe.to_parquet(tmp, engine="pyarrow", index=False))


def write_disclosure_note(out_dir: str | os.PathLike[str], *, public: bool, n_masked: int) -> Path:
    """``disclosure.json`` in an output folder: public (and how many confidential facilities were masked) or
    ``"PRIVATE: contains confidential data"``, for the commands whose other outputs are plain tables."""
    record = disclosure.marker(not public, n_masked)
    return write_text_atomic(Path(out_dir) / "disclosure.json", json.dumps(record, indent=2) + "\n")


def write_xlsx(path: str | os.PathLike[str], sheets: dict[str, pd.DataFrame]) -> Path:
    """Write a workbook of ``sheets`` (name → table), atomically, every sheet through :func:`excel_safe`.

    Sheet names are cut to Excel's 31 characters; an empty table still gets its header row.
    """
    safe = {name[:31]: excel_safe(frame) for name, frame in sheets.items()}

    def write(tmp: Path) -> None:
        with pd.ExcelWriter(tmp, engine="openpyxl") as writer:
            for name, frame in safe.items():
                frame.to_excel(writer, sheet_name=name, index=False)

    return write_atomic(Path(path), write)
