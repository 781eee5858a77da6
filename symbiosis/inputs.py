"""Load and validate a region: the first stage of the pipeline (files -> :class:`~symbiosis.region.Region`).

A region comes as a folder (``region.yaml``, ``facilities.csv`` or ``facilities.gpkg``, ``flows.csv``,
optional ``quality.csv`` and ``arcs.csv``), as one Excel workbook with the same tables as sheets (plus a
``region`` sheet of ``key, value`` rows), or as one GeoPackage with the same tables as layers. Whatever the
container, the tables pass the same checks: every problem is collected with file, row, column, what was
found and what was expected, and one :class:`~symbiosis.errors.InputError` lists them all. Units are
converted here and nowhere else. Facilities that name a process model get modelled flows for whatever
their measured flows do not cover.
"""

from __future__ import annotations

import difflib
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import ValidationError
from stdnum.eu import nace

from symbiosis.errors import InputError, Problems
from symbiosis.landmask import near_land
from symbiosis.network import ewc
from symbiosis.periods.data import TimeData
from symbiosis.process_models import (
    ProcessModel,
    load_process_models,
    pydantic_problems,
    read_yaml,
)
from symbiosis.reference import Reference, load_reference
from symbiosis.region import (
    ARC_COLUMNS,
    EXCHANGEABLE_BY_DEFAULT,
    FACILITY_COLUMNS,
    FLOW_COLUMNS,
    IN_CATEGORIES,
    OUT_CATEGORIES,
    PERMIT_COLUMNS,
    QUALITY_COLUMNS,
    STOCK_CATEGORY,
    Region,
    RegionSettings,
)
from symbiosis.tables import (
    MAX_TABLE_BYTES,
    Table,
    bool_column,
    duplicate_ids,
    number_column,
    read_csv_table,
    require_columns,
    require_text,
    table_from_frame,
    text_column,
)
from symbiosis.units import UREG, UnitProblem, convert_amount, convert_price, convert_values, parse_unit

logger = logging.getLogger(__name__)

PERIOD_DAYS = {"year": 365.0, "quarter": 365.0 / 4, "month": 365.0 / 12, "week": 7.0, "day": 1.0}
_ESTIMATE_WORDS = ("estimat", "assum", "guess", "proxy")
TABLE_NAMES = ("facilities", "flows", "quality", "arcs", "permits", "processors", "profiles", "stores", "costs")

# The columns each input table may have (required ones first); any other header is an error.
FACILITY_INPUT = ["facility_id", "name", "sector", "lat", "lon", "confidential", "process_model", "activity",
                  "activity_unit", "intake_capacity_t_per_yr", "source", "note",
                  "intake_profile"]  # intake_profile: symbiosis.periods (read by _time_data)
FLOW_INPUT = ["flow_id", "facility_id", "direction", "category", "material", "amount", "unit", "fate", "price",
              "price_unit", "exchangeable", "max_secondary_share", "max_distance_km", "uncertainty_pct",
              "max_intake_t_per_yr", "ewc_code", "end_of_waste", "price_uncertainty_pct", "source", "note",
              # network reconciliation (symbiosis/account/reconcile.py, docs/reconciliation.md)
              "stream_id", "measured", "process",
              "profile", "intake_profile"]  # profile, intake_profile: symbiosis.periods (read by _time_data)
QUALITY_INPUT = ["flow_id", "parameter", "value", "unit", "bound", "virgin_value", "source", "note"]
ARC_INPUT = ["supply_facility", "demand_facility", "distance_km", "cost_per_t", "co2e_per_t", "capacity_t_per_yr",
             "fixed_cost_per_yr", "min_flow", "source", "note"]
PERMIT_INPUT = ["facility_id", "ewc_code", "max_t_per_yr", "source", "note"]
#: realised.csv (symbiosis.monitor): the exchanges that actually took place, by year.
REALISED_INPUT = ["year", "supply_facility", "demand_facility", "material", "amount", "unit", "source",
                  "supply_flow_id", "demand_flow_id", "basis", "status", "note"]
KEY_VALUE_INPUT = ["key", "value", "note"]
SOURCES_INPUT = ["source_id", "citation"]
# Beyond these a figure is a typing or unit error (the world extracts about 1e11 t of material a year).
MAX_AMOUNT_PER_YR = 1e12


@dataclass
class RawRegion:
    """The tables of a region as text, before any parsing, and where each came from."""

    settings: dict[str, object] | None
    settings_file: str
    tables: dict[str, Table | None]
    base_dir: Path
    source: str


# --------------------------------------------------------------------------------------------- reading


def read_raw(path: Path, problems: Problems) -> RawRegion:
    """Read the containers: folder, Excel workbook or GeoPackage."""
    if not path.exists():
        problems.add(str(path), "no such file or folder",
                     expected="a region folder, an .xlsx workbook or a .gpkg GeoPackage")
        problems.raise_if_any()
    if path.is_dir():
        return _read_folder(path, problems)
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm", ".gpkg") and _container_file_ok(path, problems) is False:
        problems.raise_if_any()
    if suffix in (".xlsx", ".xlsm"):
        return _read_workbook(path, problems)
    if suffix == ".gpkg":
        return _read_geopackage(path, problems)
    problems.add(str(path), "unsupported region container", found=path.suffix or "no extension",
                 expected="a folder, .xlsx or .gpkg")
    problems.raise_if_any()
    raise AssertionError("unreachable")


def _container_file_ok(path: Path, problems: Problems) -> bool:
    """A workbook or GeoPackage must be a regular file of bounded size (the readers open it whole)."""
    import stat

    try:
        info = path.stat()
    except OSError as exc:
        problems.add(_label(path), f"cannot read the file ({exc.strerror})")
        return False
    if not stat.S_ISREG(info.st_mode):
        problems.add(_label(path), "not a regular file", expected="a file (not a device, pipe or folder)")
        return False
    if info.st_size > MAX_TABLE_BYTES:
        problems.add(_label(path), "the file is too large", found=f"{info.st_size:,} bytes",
                     expected=f"at most {MAX_TABLE_BYTES:,} bytes")
        return False
    return True


def _label(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _read_folder(path: Path, problems: Problems) -> RawRegion:
    settings_path = path / "region.yaml"
    settings: dict[str, object] | None = None
    if settings_path.exists():
        data = read_yaml(settings_path, problems, label=_label(settings_path))
        if data is not None and not isinstance(data, dict):
            problems.add(_label(settings_path), "expected a mapping of keys (name, currency, defaults, ...)",
                         found=type(data).__name__)
        elif isinstance(data, dict):
            settings = data
    else:
        problems.add(_label(settings_path), "missing file", expected="region.yaml with at least `name:`")
    tables: dict[str, Table | None] = {}
    for name in TABLE_NAMES:
        csv_path = path / f"{name}.csv"
        gpkg_path = path / f"{name}.gpkg"
        if csv_path.exists():
            tables[name] = read_csv_table(csv_path, problems, label=_label(csv_path))
        elif name == "facilities" and gpkg_path.exists():
            tables[name] = _read_layer(gpkg_path, "facilities", problems)
        else:
            if name in ("facilities", "flows"):
                problems.add(_label(csv_path), "missing file", expected=f"{name}.csv in the region folder")
            tables[name] = None
    return RawRegion(settings, _label(settings_path), tables, path, _label(path))


def _settings_from_key_values(table: Table | None, problems: Problems, sources: Table | None = None
                              ) -> dict[str, object] | None:
    """region.yaml from a ``region`` sheet (``key, value``; ``defaults.X`` and ``reference.X`` keys nest) and
    a ``sources`` sheet (``source_id, citation``)."""
    if table is None:
        return None
    if not require_columns(table, ["key", "value"], problems, known=KEY_VALUE_INPUT):
        return None
    settings: dict[str, object] = {}
    defaults: dict[str, object] = {}
    reference: dict[str, object] = {}
    heat_pump: dict[str, object] = {}
    default_keys = set(RegionSettings.model_fields["defaults"].annotation.model_fields)  # type: ignore[union-attr]
    seen: dict[str, int] = {}
    for position, (key_text, value) in enumerate(zip(table.frame["key"], table.frame["value"], strict=True)):
        row = table.row_number(position)
        if key_text == "":
            problems.add(table.file, "a key is required", row=row, column="key", found="an empty cell",
                         expected="a region.yaml key such as name, currency or max_distance_km")
            continue
        if key_text in seen:
            problems.add(table.file, "a key appears twice", row=row, column="key", found=key_text,
                         expected=f"each key once (already on row {seen[key_text]})")
            continue
        seen[key_text] = row
        key = key_text.removeprefix("defaults.")
        if key in default_keys:
            defaults[key] = value
        elif key_text.startswith("reference."):
            reference[key_text.removeprefix("reference.")] = value
        elif key_text.startswith("heat_pump."):
            heat_pump[key_text.removeprefix("heat_pump.")] = value
        else:
            settings[key] = value
    if defaults:
        settings["defaults"] = defaults
    if reference:
        settings["reference"] = reference
    if heat_pump:
        settings["heat_pump"] = heat_pump
    if sources is not None and require_columns(sources, SOURCES_INPUT, problems, known=SOURCES_INPUT):
        require_text(sources, ["citation"], problems)
        duplicate_ids(sources, "source_id", problems)
        settings["sources"] = {k: v for k, v in zip(sources.frame["source_id"], sources.frame["citation"],
                                                    strict=True) if k}
    return settings


def _read_workbook(path: Path, problems: Problems) -> RawRegion:
    label = _label(path)
    try:
        sheets = pd.read_excel(path, sheet_name=None, dtype=object)
    except Exception as exc:  # openpyxl raises many kinds on a corrupt file
        problems.add(label, f"cannot read the workbook ({type(exc).__name__})", expected="an .xlsx file")
        problems.raise_if_any()
        raise
    tables: dict[str, Table | None] = {}
    known_sheets = (*TABLE_NAMES, "region", "sources")
    for name in known_sheets:
        frame = sheets.get(name)
        tables[name] = (table_from_frame(frame, f"{label} [sheet {name}]", problems) if frame is not None
                        else None)
    _unknown_parts(label, set(map(str, sheets)) - set(known_sheets), known_sheets, "sheet", problems)
    for name in ("facilities", "flows"):
        if tables[name] is None:
            problems.add(label, f"missing sheet '{name}'", expected=f"sheets {', '.join(TABLE_NAMES)}, region")
    sources_table = tables.pop("sources")
    settings = _settings_from_key_values(tables.pop("region"), problems, sources_table)
    if settings is None:
        problems.add(label, "missing sheet 'region'", expected="a sheet with columns key, value (name, currency, ...)")
    return RawRegion(settings, f"{label} [sheet region]", tables, path.parent, label)


def _read_layer(path: Path, layer: str, problems: Problems) -> Table | None:
    import pyogrio

    label = f"{_label(path)} [layer {layer}]"
    try:
        frame = pyogrio.read_dataframe(path, layer=layer)
    except Exception as exc:
        problems.add(label, f"cannot read the layer ({type(exc).__name__})")
        return None
    if "geometry" in frame and frame.geometry.notna().any():
        gdf = frame
        if gdf.crs is not None and gdf.crs.to_epsg() != 4326:
            gdf = gdf.to_crs(4326)
        points = gdf.geometry
        plain = pd.DataFrame(gdf.drop(columns="geometry"))
        plain["lon"] = points.x
        plain["lat"] = points.y
        frame = plain
    elif "geometry" in frame:
        frame = pd.DataFrame(frame.drop(columns="geometry"))
    return table_from_frame(frame, label, problems)


def _read_geopackage(path: Path, problems: Problems) -> RawRegion:
    import pyogrio

    try:
        layers = {name for name, _ in pyogrio.list_layers(path)}
    except Exception as exc:  # GDAL raises assorted errors on a file that is not a GeoPackage
        problems.add(_label(path), f"cannot read the GeoPackage ({type(exc).__name__})", expected="a .gpkg file")
        problems.raise_if_any()
        raise
    tables: dict[str, Table | None] = {}
    known_layers = (*TABLE_NAMES, "region", "sources")
    for name in known_layers:
        tables[name] = _read_layer(path, name, problems) if name in layers else None
    _unknown_parts(_label(path), {layer for layer in layers - set(known_layers)  # GeoPackage's own tables
                                  if not layer.startswith(("gpkg_", "rtree_", "layer_styles"))},
                   known_layers, "layer", problems)
    for name in ("facilities", "flows"):
        if tables[name] is None:
            problems.add(_label(path), f"missing layer '{name}'", found=", ".join(sorted(layers)))
    sources_table = tables.pop("sources")
    settings = _settings_from_key_values(tables.pop("region"), problems, sources_table)
    if settings is None:
        problems.add(_label(path), "missing layer 'region'", expected="a table with columns key, value")
    return RawRegion(settings, f"{_label(path)} [layer region]", tables, path.parent, _label(path))


# ------------------------------------------------------------------------------------------- settings


def _settings(raw: RawRegion, problems: Problems) -> RegionSettings | None:
    if raw.settings is None:
        return None
    try:
        return RegionSettings.model_validate(raw.settings)
    except ValidationError as exc:
        pydantic_problems(raw.settings_file, exc, problems)
        return None


# ----------------------------------------------------------------------------------------- facilities


def _facilities(table: Table, problems: Problems, models: dict[str, ProcessModel]) -> pd.DataFrame:
    required = ["facility_id", "name", "sector", "lat", "lon"]
    if not require_columns(table, required, problems, known=FACILITY_INPUT):
        return pd.DataFrame(columns=FACILITY_COLUMNS)
    duplicate_ids(table, "facility_id", problems)
    require_text(table, ["name"], problems)
    lat = number_column(table, "lat", problems, required=True, expected="a latitude in degrees (WGS84)")
    lon = number_column(table, "lon", problems, required=True, expected="a longitude in degrees (WGS84)")
    frame = pd.DataFrame({
        "facility_id": text_column(table, "facility_id"),
        "name": text_column(table, "name"),
        "sector": text_column(table, "sector"),
        "lat": lat,
        "lon": lon,
        "confidential": bool_column(table, "confidential", problems).astype(bool),
        "process_model": text_column(table, "process_model"),
        "activity": number_column(table, "activity", problems, allow_negative=False,
                                  expected="an activity level (amount of reference product per period)"),
        "activity_unit": text_column(table, "activity_unit"),
        "intake_capacity_t_per_yr": number_column(
            table, "intake_capacity_t_per_yr", problems, allow_negative=False,
            expected="the facility's intake capacity in t/yr received (all its incoming secondary material)"),
    })
    _check_coordinates(table, frame, problems)
    valid_nace = {code: nace.is_valid(code) for code in frame["sector"].unique() if code}
    for position, row in enumerate(frame[["sector", "process_model", "activity", "activity_unit"]]
                                   .to_dict("records")):
        row_number = table.row_number(position)
        sector = row["sector"]
        if sector == "":
            problems.add(table.file, "a sector is required", row=row_number, column="sector",
                         found="an empty cell", expected="a NACE Rev. 2 code as text, e.g. 35.11")
        elif not valid_nace[sector]:
            problems.add(table.file, "unknown NACE code", row=row_number, column="sector", found=sector,
                         expected="a NACE Rev. 2 code as text, e.g. 35.11 or 03.22",
                         fix="store the column as text so a leading zero is kept")
        model = row["process_model"]
        if model:
            if model not in models:
                problems.add(table.file, "unknown process model", row=row_number, column="process_model",
                             found=model, expected=f"one of {', '.join(sorted(models)) or 'the models in models/'}")
            if math.isnan(row["activity"]):
                problems.add(table.file, "a facility with a process model needs its activity",
                             row=row_number, column="activity", found="an empty cell",
                             expected="the amount of reference product per period, e.g. 1.2 with unit Mt/yr")
            elif model in models:
                try:
                    _activity_in_model_units(row["activity"], row["activity_unit"], models[model])
                except UnitProblem as exc:
                    problems.add(table.file, f"activity unit does not fit the process model ({exc})",
                                 row=row_number, column="activity_unit", found=row["activity_unit"],
                                 expected=f"a unit convertible to {models[model].activity_unit} (per year)")
    return frame


def _check_coordinates(table: Table, frame: pd.DataFrame, problems: Problems) -> None:
    lat, lon = frame["lat"], frame["lon"]
    ok = lat.notna() & lon.notna()
    for position in frame.index[ok]:
        la, lo = float(lat[position]), float(lon[position])
        row = table.row_number(int(position))
        if abs(la) > 90:
            swapped = abs(lo) <= 90
            problems.add(table.file, "latitude out of range", row=row, column="lat", found=la,
                         expected="a latitude between -90 and 90",
                         fix="latitude and longitude look swapped" if swapped else None)
        if abs(lo) > 180:
            problems.add(table.file, "longitude out of range", row=row, column="lon", found=lo,
                         expected="a longitude between -180 and 180")
    # Swapped but in range: a facility far from the others that would sit among them if swapped.
    inside = ok & (lat.abs() <= 90) & (lon.abs() <= 90)
    if inside.sum() >= 3:
        med_lat, med_lon = float(lat[inside].median()), float(lon[inside].median())
        for position in frame.index[inside]:
            la, lo = float(lat[position]), float(lon[position])
            here = _rough_km(la, lo, med_lat, med_lon)
            if_swapped = _rough_km(lo, la, med_lat, med_lon)
            if here > 500 and if_swapped < 0.2 * here:
                problems.add(table.file, "latitude and longitude look swapped", row=table.row_number(int(position)),
                             column="lat", found=f"lat {la}, lon {lo}",
                             expected=f"a point near the other facilities (lat {med_lat:.2f}, lon {med_lon:.2f})",
                             fix="swap the lat and lon values")
    _check_all_swapped(table, frame, ok & (lat.abs() <= 90) & (lon.abs() <= 180), problems)


def _check_all_swapped(table: Table, frame: pd.DataFrame, valid: pd.Series, problems: Problems) -> None:
    """Every facility at sea as given, and every one on land with lat and lon exchanged: the columns are swapped.

    Industrial facilities stand on land or at a coast; the land mask counts a point within about 50 km of land
    as on land, so coastal and harbour sites pass. A region of offshore platforms stays at sea both ways and
    passes too. The polar rows are left out of "on land when swapped" (no region sits on an ice sheet).
    """
    lat = frame["lat"][valid].to_numpy(dtype=float)
    lon = frame["lon"][valid].to_numpy(dtype=float)
    if len(lat) == 0 or (np.abs(lon) > 90).any():
        return
    if near_land(lat, lon).any():
        return
    swapped_on_land = near_land(lon, lat) & (lon > -60) & (lon < 80)
    if not swapped_on_land.all():
        return
    first = int(np.flatnonzero(valid.to_numpy())[0])
    problems.add(table.file, "latitude and longitude look swapped for every facility", row=table.row_number(first),
                 column="lat", found=f"lat {lat[0]:g}, lon {lon[0]:g} (every facility at sea as given, on land "
                                     "with lat and lon exchanged)",
                 expected="lat the north-south coordinate (-90..90), lon the east-west one",
                 fix="exchange the contents of the lat and lon columns")


def _rough_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    x = math.radians(lon2 - lon1) * math.cos(math.radians((lat1 + lat2) / 2))
    y = math.radians(lat2 - lat1)
    return 6371.0 * math.hypot(x, y)


def _activity_in_model_units(activity: float, unit_text: str, model: ProcessModel) -> float:
    """The facility's activity per year, in the model's activity unit."""
    unit = parse_unit(unit_text or model.activity_unit)
    target = parse_unit(model.activity_unit)
    try:
        quantity = UREG.Quantity(activity, unit)
        if quantity.dimensionality != UREG.Quantity(1.0, target).dimensionality:
            quantity = quantity * UREG.Quantity(1.0, UREG.year)
        return float(quantity.to(target).magnitude)
    except Exception as exc:  # pint raises many kinds, offset units (degC) included
        raise UnitProblem(f"{type(exc).__name__}: {exc}") from None


# ---------------------------------------------------------------------------------------------- flows


def _data_quality(source: str) -> str:
    lowered = source.lower()
    if lowered.startswith("model"):
        return "modelled"
    if not lowered or any(word in lowered for word in _ESTIMATE_WORDS):
        return "estimated"
    return "measured"


def _flows(table: Table, problems: Problems, facilities: pd.DataFrame, reference: Reference,
           settings: RegionSettings) -> pd.DataFrame:
    required = ["flow_id", "facility_id", "direction", "category", "material", "amount", "unit"]
    if not require_columns(table, required, problems, known=FLOW_INPUT):
        return pd.DataFrame(columns=FLOW_COLUMNS)
    duplicate_ids(table, "flow_id", problems)
    stock_rows = (text_column(table, "category") == STOCK_CATEGORY).to_numpy()
    empty_text = require_text(table, ["facility_id", "category", "material", "unit"], problems)
    # the direction of a stock change is ignored, so it may be empty there
    empty_direction = (text_column(table, "direction") == "").to_numpy() & ~stock_rows
    for at in np.flatnonzero(empty_direction):
        problems.add(table.file, "a value is required", row=table.row_number(int(at)), column="direction",
                     found="an empty cell", expected="in or out")
    skip = empty_text | empty_direction
    period_days = PERIOD_DAYS.get(settings.period, 365.0)
    category = text_column(table, "category")
    is_stock = category == STOCK_CATEGORY
    # An unmeasured flow (measured: false) may leave its amount empty: reconciliation estimates it.
    measured_flag = bool_column(table, "measured", problems, default=True)
    amount = number_column(table, "amount", problems, expected="an amount")
    amount_empty = (text_column(table, "amount") == "").to_numpy()
    for at in np.flatnonzero(amount_empty & (measured_flag != False).to_numpy() & ~skip):  # noqa: E712
        problems.add(table.file, "a value is required", row=table.row_number(int(at)), column="amount",
                     found="an empty cell", expected="an amount",
                     fix="give the figure, or write false in the measured column for a flow nobody measures "
                         "(symbiosis balance --reconcile estimates it)")
    known_facilities = set(facilities["facility_id"])
    materials = reference.materials
    known_fates = set(reference.fates.index) if not reference.fates.empty else set()
    direction = text_column(table, "direction").str.lower()
    material = text_column(table, "material")
    unit = text_column(table, "unit")
    price = number_column(table, "price", problems, expected="a price")
    price_unit = text_column(table, "price_unit")
    fate = text_column(table, "fate")
    exchangeable = bool_column(table, "exchangeable", problems, default=None)
    share = number_column(table, "max_secondary_share", problems, minimum=0, maximum=1,
                          expected="a share between 0 and 1")
    max_km = number_column(table, "max_distance_km", problems, allow_negative=False, expected="a distance in km")
    uncertainty = number_column(table, "uncertainty_pct", problems, allow_negative=False,
                                expected="an uncertainty in percent")
    for at in np.flatnonzero((uncertainty == 0).to_numpy()):
        problems.add(table.file, "an uncertainty of zero", row=table.row_number(int(at)), column="uncertainty_pct",
                     found=table.frame["uncertainty_pct"].iat[at], expected="a standard uncertainty in percent > 0",
                     fix="no measurement is exact: give its uncertainty, or leave the cell empty for the default of "
                         "its data quality (docs/reconciliation.md)")
    source = text_column(table, "source")
    ewc_known = ewc.entries(reference.ewc).index

    n = len(table.frame)
    quantity = np.array([""] * n, dtype=object)
    t_per_yr = np.full(n, np.nan)
    mwh_per_yr = np.full(n, np.nan)
    price_t = np.full(n, np.nan)
    price_mwh = np.full(n, np.nan)
    directions = direction.to_numpy(dtype=object).copy()
    exchangeable_out = np.zeros(n, dtype=bool)

    # Plain lists and per-(unit, material) conversion factors: every conversion is linear, so each distinct
    # unit is parsed once however many rows use it.
    facility_list = table.frame["facility_id"].tolist()
    category_list, direction_list, material_list = category.tolist(), direction.tolist(), material.tolist()
    amount_list, unit_list, is_stock_list = amount.tolist(), unit.tolist(), is_stock.tolist()
    price_list, price_unit_list, fate_list = price.tolist(), price_unit.tolist(), fate.tolist()
    exchangeable_list, raw_amount = exchangeable.tolist(), table.frame["amount"].tolist()
    measured_list = measured_flag.tolist()
    known_materials = set(materials.index)
    amount_factors: dict[tuple[str, str], object] = {}
    price_factors: dict[tuple[str, str], object] = {}

    def factor(cache: dict[tuple[str, str], object], key: tuple[str, str], convert) -> object:  # type: ignore[no-untyped-def]
        if key not in cache:
            try:
                cache[key] = convert()
            except UnitProblem as exc:
                cache[key] = exc
        return cache[key]

    for position in range(n):
        if skip[position]:
            continue  # already reported: an empty required cell
        row = table.row_number(position)
        fid = facility_list[position]
        if fid not in known_facilities:
            problems.add(table.file, "unknown facility", row=row, column="facility_id", found=fid,
                         expected="a facility_id from the facilities table", fix=_did_you_mean(fid, known_facilities))
        cat, dirn, mat = category_list[position], direction_list[position], material_list[position]
        if cat == STOCK_CATEGORY:
            directions[position] = "stock"
        elif dirn not in ("in", "out"):
            problems.add(table.file, "unknown direction", row=row, column="direction", found=dirn,
                         expected="in or out")
        elif dirn == "in" and cat not in IN_CATEGORIES:
            problems.add(table.file, "unknown category for an incoming flow", row=row, column="category",
                         found=cat, expected=", ".join(IN_CATEGORIES) + f" or {STOCK_CATEGORY}")
        elif dirn == "out" and cat not in OUT_CATEGORIES:
            problems.add(table.file, "unknown category for an outgoing flow", row=row, column="category",
                         found=cat, expected=", ".join(OUT_CATEGORIES) + f" or {STOCK_CATEGORY}")
        if mat not in known_materials:
            problems.add(table.file, "unknown material", row=row, column="material", found=mat,
                         expected="a material_id from data/reference/materials.csv or the region's materials table",
                         fix=_did_you_mean(mat, known_materials)
                         or "add the material to the region's reference materials table")
            continue
        value = amount_list[position]
        # An unmeasured flow without a figure still has a unit (mass or energy) and may have a price.
        no_figure = math.isnan(value) and measured_list[position] is False
        if math.isnan(value) and not no_figure:
            continue
        if value < 0 and not is_stock_list[position]:
            problems.add(table.file, "negative amount", row=row, column="amount", found=raw_amount[position],
                         expected="an amount ≥ 0 (only stock_change may be negative)")
            continue
        unit_text = unit_list[position]
        density = reference.density(mat)
        per_unit = factor(amount_factors, (unit_text, mat), lambda u=unit_text, d=density: convert_amount(
            1.0, u, density_t_per_m3=d, period_days=period_days))
        if isinstance(per_unit, UnitProblem):
            problems.add(table.file, str(per_unit), row=row, column="unit", found=unit_text,
                         expected="t, kg, Mt, kilotonne, m3, L, MWh or GJ, optionally per h, day, month or yr")
            continue
        flow_quantity = per_unit.quantity  # type: ignore[attr-defined]
        quantity[position] = flow_quantity
        converted = value * per_unit.value  # type: ignore[attr-defined]
        if no_figure:
            pass
        elif not abs(converted) <= MAX_AMOUNT_PER_YR:
            problems.add(table.file, "implausibly large amount", row=row, column="amount", found=raw_amount[position],
                         expected=f"at most {MAX_AMOUNT_PER_YR:g} {'t' if flow_quantity == 'mass' else 'MWh'} a year "
                                  f"(this is {converted:.3g})", fix="check the amount and its unit")
            continue
        if flow_quantity == "mass":
            t_per_yr[position] = converted
        else:
            mwh_per_yr[position] = converted
        price_value = price_list[position]
        if not math.isnan(price_value):
            price_text = price_unit_list[position]
            if price_text == "":
                problems.add(table.file, "a price needs its unit", row=row, column="price_unit",
                             found="an empty cell", expected=f"e.g. {settings.currency}/t")
            else:
                per_price = factor(price_factors, (price_text, mat), lambda u=price_text, d=density: convert_price(
                    1.0, u, currency=settings.currency, density_t_per_m3=d))
                if isinstance(per_price, UnitProblem):
                    problems.add(table.file, str(per_price), row=row, column="price_unit", found=price_text,
                                 expected=f"{settings.currency}/t, /m3 or /MWh")
                elif per_price.quantity != flow_quantity:  # type: ignore[attr-defined]
                    problems.add(table.file, "the price unit does not match the amount's unit",
                                 row=row, column="price_unit", found=price_text,
                                 expected=f"a price per {'t' if flow_quantity == 'mass' else 'MWh'}")
                elif flow_quantity == "mass":
                    price_t[position] = price_value * per_price.value  # type: ignore[attr-defined]
                else:
                    price_mwh[position] = price_value * per_price.value  # type: ignore[attr-defined]
        fate_id = fate_list[position]
        if fate_id and fate_id not in known_fates:
            problems.add(table.file, "unknown fate", row=row, column="fate", found=fate_id,
                         expected=f"one of {', '.join(sorted(known_fates))}", fix=_did_you_mean(fate_id, known_fates))
        flag = exchangeable_list[position]
        exchangeable_out[position] = ((dirn, cat) in EXCHANGEABLE_BY_DEFAULT) if flag is None else bool(flag)

    frame = pd.DataFrame({
        "flow_id": text_column(table, "flow_id"),
        "facility_id": text_column(table, "facility_id"),
        "direction": directions,
        "category": category,
        "material": material,
        "quantity": quantity,
        "amount_t_per_yr": t_per_yr,
        "amount_mwh_per_yr": mwh_per_yr,
        "fate": fate,
        "price_per_t": price_t,
        "price_per_mwh": price_mwh,
        "exchangeable": exchangeable_out,
        "max_secondary_share": share,
        "max_distance_km": max_km,
        "uncertainty_pct": uncertainty,
        "source": source,
        "data_quality": source.map(_data_quality),
        "note": text_column(table, "note"),
        "origin": [f"{table.file}:{table.row_number(i)}" for i in range(n)],
        "max_intake_t_per_yr": number_column(table, "max_intake_t_per_yr", problems, allow_negative=False,
                                             expected="the most this flow can take in, t/yr received"),
        "ewc_code": ewc.check_codes(text_column(table, "ewc_code"), ewc_known, problems, table.file, "ewc_code",
                                    pd.Series([table.row_number(i) for i in range(n)])).to_numpy(),
        "end_of_waste": bool_column(table, "end_of_waste", problems, default=None).to_numpy(),
        "stream_id": text_column(table, "stream_id"),
        "process": text_column(table, "process"),
        "measured": measured_flag.astype(bool).to_numpy(),
        "price_uncertainty_pct": number_column(table, "price_uncertainty_pct", problems, minimum=0, maximum=100,
                                               expected="a price uncertainty in percent, 0 to 100"),
    })
    _check_streams(frame, table, problems)
    return frame


def _check_streams(frame: pd.DataFrame, table: Table, problems: Problems) -> None:
    """A ``stream_id`` names one stream that leaves one facility (one ``out`` row) and enters another (at most
    one ``in`` row), of one material: the two rows are two measurements of the same flow."""
    linked = frame[frame["stream_id"] != ""]
    if linked.empty:
        return
    for position in np.flatnonzero((linked["direction"] == "stock").to_numpy()):
        problems.add(table.file, "a stock change is no stream between facilities",
                     row=table.row_number(int(linked.index[position])), column="stream_id",
                     found=linked["stream_id"].iat[position], expected="an empty cell on a stock_change row")
    for side in ("out", "in"):
        rows = linked[linked["direction"] == side]
        repeated = rows[rows.duplicated("stream_id", keep="first")]
        for index, stream in repeated["stream_id"].items():
            first = rows.index[(rows["stream_id"] == stream).to_numpy()][0]
            problems.add(table.file, f"a stream_id used by more than one {side} row", row=table.row_number(int(index)),
                         column="stream_id", found=stream,
                         expected=f"one {side} row per stream (row {table.row_number(int(first))} already "
                                  f"{'sends' if side == 'out' else 'receives'} it)",
                         fix="give each stream its own id; a stream that splits is two streams")
    first_material = linked.groupby("stream_id")["material"].transform("first")
    for index in linked.index[(linked["material"] != first_material).to_numpy()]:
        stream = linked.at[index, "stream_id"]
        problems.add(table.file, "the rows of one stream are of different materials", row=table.row_number(int(index)),
                     column="material", found=linked.at[index, "material"],
                     expected=f"{first_material.at[index]}, the material of the other row of stream {stream}")


def _unknown_parts(label: str, extras: set[str], known: tuple[str, ...], kind: str, problems: Problems) -> None:
    """A sheet of a workbook or a layer of a GeoPackage that is no table of a region: an error, with the
    nearest known name."""
    for extra in sorted(extras):
        close = difflib.get_close_matches(extra.strip().lower(), known, n=1, cutoff=0.6)
        problems.add(label, f"unknown {kind}", column=extra, found=extra, expected=f"{kind}s {', '.join(known)}",
                     fix=f"did you mean '{close[0]}'?" if close else f"rename or remove the {kind}")


def _did_you_mean(value: str, known: set[str]) -> str | None:
    """A suggestion for an id that is not known: the same id in other case, or the nearest one."""
    folded = {k.casefold(): k for k in known}
    if value.casefold() in folded:
        return f"ids are case-sensitive here: did you mean '{folded[value.casefold()]}'?"
    close = difflib.get_close_matches(value, sorted(known), n=1, cutoff=0.8) if len(known) < 5000 else []
    return f"did you mean '{close[0]}'?" if close else None


MODEL_FIGURE_COLUMNS = ["flow_id", "facility_id", "material", "direction", "measured_t_per_yr",
                        "model_t_per_yr"]


def model_figures(facilities: pd.DataFrame, measured: pd.DataFrame, models: dict[str, ProcessModel],
                  reference: Reference) -> pd.DataFrame:
    """For each measured (or estimated) mass flow that the facility's process model also gives, the model's
    figure at the facility's activity: symbiosis.balances warns where the two differ by a factor of 2 or more.
    Joined as tables; units are converted once per distinct (unit, material) and (activity unit, model)."""
    empty = pd.DataFrame(columns=MODEL_FIGURE_COLUMNS)
    if not len(measured) or not len(facilities) or not models:
        return empty
    mass = measured.loc[measured["amount_t_per_yr"].notna(),
                        ["flow_id", "facility_id", "direction", "material", "amount_t_per_yr"]]
    lines = pd.DataFrame([(m.id, f.direction, f.material, f.amount, f.unit) for m in models.values() for f in m.flows],
                         columns=["process_model", "direction", "material", "line_amount", "line_unit"])
    lines = lines.drop_duplicates(["process_model", "direction", "material"])
    joined = (mass.merge(facilities[["facility_id", "process_model", "activity", "activity_unit"]], on="facility_id")
              .merge(lines, on=["process_model", "direction", "material"]))
    joined = joined[joined["activity"].notna() & joined["material"].isin(reference.materials.index)]
    if joined.empty:
        return empty

    def per_activity(key: tuple[str, str]) -> float:
        try:
            return _activity_in_model_units(1.0, key[1], models[key[0]])
        except UnitProblem:
            return math.nan

    def per_unit(key: tuple[str, str]) -> float:
        try:
            converted = convert_amount(1.0, key[0], density_t_per_m3=reference.density(key[1]))
        except UnitProblem:
            return math.nan
        return converted.value if converted.quantity == "mass" else math.nan

    activity_keys = list(zip(joined["process_model"], joined["activity_unit"].fillna(""), strict=True))
    unit_keys = list(zip(joined["line_unit"], joined["material"], strict=True))
    activity_factor = {k: per_activity(k) for k in set(activity_keys)}
    unit_factor = {k: per_unit(k) for k in set(unit_keys)}
    model_t = (joined["line_amount"].to_numpy(dtype=float) * joined["activity"].to_numpy(dtype=float)
               * np.array([activity_factor[k] for k in activity_keys], dtype=float)
               * np.array([unit_factor[k] for k in unit_keys], dtype=float))
    out = joined.assign(measured_t_per_yr=joined["amount_t_per_yr"].astype(float), model_t_per_yr=model_t)
    return out.loc[np.isfinite(model_t), MODEL_FIGURE_COLUMNS].reset_index(drop=True)


def modelled_flows(facilities: pd.DataFrame, measured: pd.DataFrame, models: dict[str, ProcessModel],
                    reference: Reference, problems: Problems, settings: RegionSettings
                    ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Flows and qualities estimated from process models for what measured flows do not cover."""
    rows: list[dict[str, object]] = []
    quality_rows: list[dict[str, object]] = []
    covered = set(zip(measured["facility_id"], measured["direction"], measured["material"], strict=True))
    for _, facility in facilities.iterrows():
        model = models.get(facility["process_model"])
        if model is None or math.isnan(facility["activity"]):
            continue
        try:
            activity = _activity_in_model_units(facility["activity"], facility["activity_unit"], model)
        except UnitProblem:
            continue  # already reported while checking facilities
        origin = f"models/{model.id}.yaml"
        for flow in model.flows:
            if (facility["facility_id"], flow.direction, flow.material) in covered:
                continue
            if flow.material not in reference.materials.index:
                problems.add(origin, "unknown material in process model", column="flows.material",
                             found=flow.material, expected="a material_id from materials.csv")
                continue
            try:
                converted = convert_amount(flow.amount * activity, flow.unit,
                                           density_t_per_m3=reference.density(flow.material))
            except UnitProblem as exc:
                problems.add(origin, str(exc), column="flows.unit", found=flow.unit)
                continue
            price_t = price_mwh = math.nan
            if flow.price is not None and flow.price_unit:
                try:
                    p = convert_price(flow.price, flow.price_unit, currency=settings.currency,
                                      density_t_per_m3=reference.density(flow.material))
                    if p.quantity == "mass":
                        price_t = p.value
                    else:
                        price_mwh = p.value
                except UnitProblem:
                    pass  # a model price in another currency is not used; the reference fate cost applies
            flow_id = f"{facility['facility_id']}.model.{flow.direction}.{flow.material}"
            rows.append({
                "flow_id": flow_id,
                "facility_id": facility["facility_id"],
                "direction": flow.direction,
                "category": flow.category,
                "material": flow.material,
                "quantity": converted.quantity,
                "amount_t_per_yr": converted.value if converted.quantity == "mass" else math.nan,
                "amount_mwh_per_yr": converted.value if converted.quantity == "energy" else math.nan,
                "fate": flow.fate,
                "price_per_t": price_t,
                "price_per_mwh": price_mwh,
                "exchangeable": ((flow.direction, flow.category) in EXCHANGEABLE_BY_DEFAULT
                                 if flow.exchangeable is None else flow.exchangeable),
                "max_secondary_share": math.nan,
                "max_distance_km": math.nan,
                "uncertainty_pct": math.nan,
                "source": f"model:{model.id}" + (f" ({flow.source})" if flow.source else ""),
                "data_quality": "modelled",
                "note": flow.note,
                "origin": origin,
            })
            for q in model.quality:
                if q.direction == flow.direction and q.material == flow.material:
                    quality_rows.append({
                        "flow_id": flow_id, "parameter": q.parameter, "value": q.value, "unit": q.unit,
                        "bound": q.bound, "virgin_value": math.nan if q.virgin_value is None else q.virgin_value,
                        "origin": origin,
                    })
    return (pd.DataFrame(rows, columns=FLOW_COLUMNS),
            pd.DataFrame(quality_rows, columns=[*QUALITY_COLUMNS, "origin"]))


def _default_intake(facilities: pd.DataFrame, models: dict[str, ProcessModel]) -> pd.DataFrame:
    """A facility without its own intake capacity takes its process model's ``intake_capacity`` × activity."""
    with_default = {name for name, model in models.items() if model.intake_capacity is not None}
    wanted = facilities["process_model"].isin(with_default) & facilities["intake_capacity_t_per_yr"].isna() \
        & facilities["activity"].notna()
    if not wanted.any():
        return facilities
    facilities = facilities.copy()
    for position, row in facilities[wanted].iterrows():
        model = models[row["process_model"]]
        assert model.intake_capacity is not None
        try:
            activity = _activity_in_model_units(row["activity"], row["activity_unit"], model)
        except UnitProblem:
            continue
        facilities.at[position, "intake_capacity_t_per_yr"] = model.intake_capacity * activity
    return facilities


# -------------------------------------------------------------------------------------------- quality


def _quality(table: Table | None, problems: Problems, known: set[str]) -> pd.DataFrame:
    if table is None:
        return pd.DataFrame(columns=QUALITY_COLUMNS)
    if not require_columns(table, ["flow_id", "parameter", "value", "unit"], problems, known=QUALITY_INPUT):
        return pd.DataFrame(columns=QUALITY_COLUMNS)
    empty = require_text(table, ["flow_id", "unit"], problems)
    frame = pd.DataFrame({
        "flow_id": text_column(table, "flow_id"),
        "parameter": text_column(table, "parameter"),
        "value": number_column(table, "value", problems, required=True, expected="a measured value or a limit"),
        "unit": text_column(table, "unit"),
        "bound": text_column(table, "bound").str.lower(),
        "virgin_value": number_column(table, "virgin_value", problems, expected="the virgin material's value"),
    })
    unknown = ~frame["flow_id"].isin(known)
    for position in np.flatnonzero(unknown.to_numpy() & ~empty):
        problems.add(table.file, "unknown flow", row=table.row_number(int(position)), column="flow_id",
                     found=frame["flow_id"].iat[position], expected="a flow_id from the flows table",
                     fix=_did_you_mean(frame["flow_id"].iat[position], known))
    _check_quality_units(table, frame["unit"], empty, problems)
    for position in np.flatnonzero((frame["parameter"] == "").to_numpy()):
        problems.add(table.file, "a parameter name is required", row=table.row_number(int(position)),
                     column="parameter", found="an empty cell", expected="e.g. chloride, moisture, calorific_value")
    for position in np.flatnonzero(~frame["bound"].isin(["", "max", "min"]).to_numpy()):
        problems.add(table.file, "unknown bound", row=table.row_number(int(position)), column="bound",
                     found=frame["bound"].iat[position], expected="max, min, or empty for a measured value")
    key = ["flow_id", "parameter", "bound"]
    repeated = frame.duplicated(key, keep="first").to_numpy()
    if repeated.any():
        first = {tuple(k): table.row_number(i) for i, k in enumerate(frame[key].itertuples(index=False))
                 if not repeated[i]}
        for position in np.flatnonzero(repeated):
            k = tuple(frame[key].iloc[position])
            problems.add(table.file, "duplicate quality entry", row=table.row_number(int(position)),
                         column="parameter", found=frame["parameter"].iat[position],
                         expected=f"one entry per flow, parameter and bound (row {first.get(k)})")
    frame["origin"] = [f"{table.file}:{table.row_number(i)}" for i in range(len(frame))]
    return frame


def _check_quality_units(table: Table, units: pd.Series, empty: np.ndarray, problems: Problems) -> None:
    """A quality unit must be a unit (``%``, ``mg/kg``, ``degC``...): each distinct one parsed once. Without
    this a unit such as ``mg/kgg`` passed whenever its parameter had no other unit to be converted to."""
    for unit, positions in pd.Series(np.arange(len(units))[~empty], index=units[~empty]).groupby(level=0):
        try:
            parse_unit(str(unit))
        except UnitProblem as exc:
            for position in positions.to_numpy():
                problems.add(table.file, str(exc), row=table.row_number(int(position)), column="unit",
                             found=str(unit), expected="a unit such as %, mg/kg, g/t, ppm, MJ/kg or degC")


def _check_virgin_within_bounds(quality: pd.DataFrame, problems: Problems) -> None:
    """A demand's limit must admit its own virgin material, or business as usual is infeasible.

    Under ``max`` the virgin value (default 0) must not exceed the limit; under ``min`` (default: the limit
    itself) it must not fall below it. Checked after units are harmonised, so both are in one unit.
    """
    bounded = quality[quality["bound"].isin(["max", "min"])]
    if bounded.empty:
        return
    limit = bounded["value"].to_numpy(dtype=float)
    is_max = (bounded["bound"] == "max").to_numpy()
    given = bounded["virgin_value"].to_numpy(dtype=float)
    virgin = np.where(np.isnan(given) & is_max, 0.0, given)  # the documented default under a max
    with np.errstate(invalid="ignore"):
        violated = np.where(is_max, virgin > limit, virgin < limit) & ~np.isnan(virgin) & ~np.isnan(limit)
    for position in np.flatnonzero(violated):
        row = bounded.iloc[int(position)]
        origin = str(row.get("origin", "")) or "quality"
        file, _, line = origin.rpartition(":")
        located_row = int(line) if line.isdigit() else None
        word = "above the max" if is_max[position] else "below the min"
        problems.add(file if located_row is not None else origin,
                     f"the virgin material of flow '{row['flow_id']}' violates its own bound on "
                     f"'{row['parameter']}' (virgin_value {word})",
                     row=located_row, column="virgin_value",
                     found=f"virgin_value {virgin[position]:g} {row['unit']}, {row['bound']} {row['value']:g}",
                     expected=(f"a virgin_value ≤ {row['value']:g}" if is_max[position]
                               else f"a virgin_value ≥ {row['value']:g}"),
                     fix="business as usual (all virgin material) would break the limit: check the limit, "
                         "the virgin value and their units")


def _located(origin: str) -> tuple[str, int | None]:
    """``file:row`` (or a model file) as a Problem's file and row."""
    file, _, line = origin.rpartition(":")
    return (file, int(line)) if file and line.isdigit() else (origin, None)


def _harmonise_quality_units(quality: pd.DataFrame, problems: Problems) -> pd.DataFrame:
    """One unit per parameter across the region: values are converted to the first unit seen.

    Values are converted one by one, not by a factor, so offset units (``degC`` to ``K``) come out right.
    """
    if quality.empty:
        return quality
    quality = quality.copy()
    target_units = quality.groupby("parameter", sort=False)["unit"].first()
    if "temperature" in target_units.index:
        target_units["temperature"] = "degC"  # heat's temperature level is read in °C (symbiosis.energy)
    for (parameter, unit), rows in quality.groupby(["parameter", "unit"], sort=False).groups.items():
        target = target_units[parameter]
        if unit == target:
            continue
        try:
            values = convert_values(quality.loc[rows, "value"].to_numpy(dtype=float), unit, target)
            virgin = convert_values(quality.loc[rows, "virgin_value"].to_numpy(dtype=float), unit, target)
        except UnitProblem as exc:
            for position in rows:
                file, row = _located(str(quality.at[position, "origin"]))
                problems.add(file, f"quality units differ for parameter '{parameter}' ({exc})",
                             row=row, column="unit", found=unit, expected=f"a unit convertible to {target}")
            continue
        quality.loc[rows, "value"] = values
        quality.loc[rows, "virgin_value"] = virgin
        quality.loc[rows, "unit"] = target
    return quality


# ----------------------------------------------------------------------------------------------- arcs


def _arcs(table: Table | None, problems: Problems, facilities: pd.DataFrame) -> pd.DataFrame:
    if table is None:
        return pd.DataFrame(columns=ARC_COLUMNS)
    if not require_columns(table, ["supply_facility", "demand_facility"], problems, known=ARC_INPUT):
        return pd.DataFrame(columns=ARC_COLUMNS)
    empty = require_text(table, ["supply_facility", "demand_facility"], problems)
    frame = pd.DataFrame({
        "supply_facility": text_column(table, "supply_facility"),
        "demand_facility": text_column(table, "demand_facility"),
        "distance_km": number_column(table, "distance_km", problems, allow_negative=False, expected="a distance in km"),
        "cost_per_t": number_column(table, "cost_per_t", problems, allow_negative=False,
                                    expected="a transport cost per t"),
        "co2e_per_t": number_column(table, "co2e_per_t", problems, allow_negative=False,
                                    expected="transport emissions in t CO2e per t (e.g. 0 for a pipeline)"),
        "capacity_t_per_yr": number_column(table, "capacity_t_per_yr", problems, allow_negative=False,
                                           expected="the most the route can carry, t/yr"),
        # Mixed-integer mode only (symbiosis.energy.mip): the connection's fixed annual cost and minimum size.
        "fixed_cost_per_yr": number_column(table, "fixed_cost_per_yr", problems, allow_negative=False,
                                           expected="a fixed annual cost of the connection (currency per yr)"),
        "min_flow": number_column(table, "min_flow", problems, allow_negative=False,
                                  expected="a minimum size (t/yr, or MWh/yr for heat)"),
    })
    known = set(facilities["facility_id"])
    for position, row in frame.iterrows():
        row_number = table.row_number(int(position))  # type: ignore[arg-type]
        for column in ("supply_facility", "demand_facility"):
            if row[column] not in known and not empty[int(position)]:  # type: ignore[call-overload]
                problems.add(table.file, "unknown facility", row=row_number, column=column, found=row[column],
                             expected="a facility_id from the facilities table",
                             fix=_did_you_mean(row[column], known))
        if all(math.isnan(row[c]) for c in ("distance_km", "cost_per_t", "capacity_t_per_yr", "fixed_cost_per_yr",
                                             "min_flow")):
            problems.add(table.file, "an arc override needs a distance or a cost", row=row_number,
                         column="distance_km", found="empty distance_km and cost_per_t",
                         expected="distance_km, cost_per_t and/or capacity_t_per_yr (or, for the mixed-integer "
                                  "mode, fixed_cost_per_yr or min_flow)")
    return frame


# -------------------------------------------------------------------------------------------- permits


def _permits(table: Table | None, problems: Problems, facilities: pd.DataFrame, reference: Reference
             ) -> pd.DataFrame:
    """permits.csv: one row per (receiving facility, EWC code it may accept), optional tonnage and source."""
    if table is None:
        return pd.DataFrame(columns=PERMIT_COLUMNS)
    if not require_columns(table, ["facility_id", "ewc_code"], problems, known=PERMIT_INPUT):
        return pd.DataFrame(columns=PERMIT_COLUMNS)
    rows = pd.Series([table.row_number(i) for i in range(len(table.frame))])
    codes = text_column(table, "ewc_code").reset_index(drop=True)
    for position in np.flatnonzero((codes == "").to_numpy()):
        problems.add(table.file, "a permit needs an EWC code", row=int(rows.iat[position]), column="ewc_code",
                     found="an empty cell", expected="a six-digit code of the European List of Waste")
    frame = pd.DataFrame({
        "facility_id": text_column(table, "facility_id").to_numpy(),
        "ewc_code": ewc.check_codes(codes, ewc.entries(reference.ewc).index, problems, table.file, "ewc_code",
                                    rows).to_numpy(),
        "max_t_per_yr": number_column(table, "max_t_per_yr", problems, allow_negative=False,
                                      expected="the permitted tonnage, t/yr").to_numpy(),
        "source": text_column(table, "source").to_numpy(),
    })
    unknown = ~frame["facility_id"].isin(set(facilities["facility_id"]))
    for position in np.flatnonzero(unknown.to_numpy()):
        problems.add(table.file, "unknown facility", row=int(rows.iat[position]), column="facility_id",
                     found=frame["facility_id"].iat[position], expected="a facility_id from the facilities table")
    return frame


# ------------------------------------------------------------------------------------------- the load


def _reference_paths(settings: RegionSettings, raw: RawRegion, problems: Problems) -> dict[str, Path]:
    """The region's own reference tables: files inside the region's folder, nothing else.

    A path is resolved (symbolic links followed) and must stay inside the folder that holds the region, so a
    region file cannot make the loader read ``/dev/zero``, ``/proc/self/environ`` or another user's files.
    """
    base = raw.base_dir.resolve()
    paths: dict[str, Path] = {}
    for name, relative in settings.reference.model_dump().items():
        if not relative:
            continue
        try:
            target = (base / relative).resolve()
        except (OSError, RuntimeError, ValueError):
            target = None
        if target is None or not target.is_relative_to(base):
            problems.add(raw.settings_file, "a reference table must be a file inside the region's folder",
                         column=f"reference.{name}", found=relative,
                         expected=f"a path relative to {_label(raw.base_dir)}, e.g. {name}.csv")
            continue
        paths[name] = target
    return paths


def _energy_efficiency(facilities: pd.DataFrame, models: dict[str, ProcessModel]) -> dict[str, float]:
    """facility_id → the energy efficiency its process model states (facilities without one are absent)."""
    efficiency = {name: model.energy_efficiency for name, model in models.items()
                  if model.energy_efficiency is not None}
    return {fid: float(efficiency[model]) for fid, model in zip(facilities["facility_id"], facilities["process_model"],
                                                                strict=True) if model in efficiency}


def load_region(path: str | Path, *, reference_dir: Path | None = None, models_directory: Path | None = None
                ) -> Region:
    """Read and validate a region; raises :class:`InputError` listing every problem found."""
    started = time.perf_counter()
    path = Path(path)
    problems = Problems()
    raw = read_raw(path, problems)
    return _region_from_raw(raw, problems, path.stem, started, reference_dir=reference_dir,
                            models_directory=models_directory)


def load_tables(settings: dict[str, object] | None, frames: dict[str, pd.DataFrame], *, base_dir: Path,
                source: str = "") -> Region:
    """Validate a region given as tables in memory, with the checks of :func:`load_region` on a folder of the
    same CSV files: ``settings`` is region.yaml's mapping (None: region.yaml missing), ``frames`` the tables by
    name (facilities, flows and any of the optional ones of TABLE_NAMES), each a frame of text cells as a
    ``<name>.csv`` file would hold them. Problems name those files (``flows.csv``, row 2 = the first row).
    The web app checks one facility's rows this way, without writing a folder (symbiosis/web/bridge.py).
    ``base_dir`` is where region.yaml's ``reference`` paths would be looked for."""
    started = time.perf_counter()
    problems = Problems()
    unknown = set(frames) - set(TABLE_NAMES)
    if unknown:
        raise ValueError(f"not tables of a region: {sorted(unknown)}")
    if settings is None:
        problems.add("region.yaml", "missing file", expected="region.yaml with at least `name:`")
    tables: dict[str, Table | None] = {}
    for name in TABLE_NAMES:
        frame = frames.get(name)
        if frame is None:
            if name in ("facilities", "flows"):
                problems.add(f"{name}.csv", "missing file", expected=f"{name}.csv in the region folder")
            tables[name] = None
            continue
        table = table_from_frame(frame, f"{name}.csv", problems)
        if table.frame.empty:  # as read_csv_table says of a file with a header and no row
            problems.add(f"{name}.csv", "the table has a header but no data rows", row=2,
                         expected="at least one data row")
        tables[name] = table
    raw = RawRegion(settings, "region.yaml", tables, base_dir, source)
    return _region_from_raw(raw, problems, source or "region", started)


def _region_from_raw(raw: RawRegion, problems: Problems, default_name: str, started: float, *,
                     reference_dir: Path | None = None, models_directory: Path | None = None) -> Region:
    """The checks and conversions of :func:`load_region` on tables read (from files or memory)."""
    settings = _settings(raw, problems)
    overrides = _reference_paths(settings, raw, problems) if settings is not None else {}
    reference = load_reference(problems, overrides, reference_dir)
    models = load_process_models(problems, models_directory)
    if settings is None:
        settings = RegionSettings.model_validate({"name": default_name})
    if settings.period not in PERIOD_DAYS:
        problems.add(raw.settings_file, "unknown period", column="period", found=settings.period,
                     expected=", ".join(PERIOD_DAYS))

    facilities_table = raw.tables.get("facilities")
    facilities = (_facilities(facilities_table, problems, models) if facilities_table is not None
                  else pd.DataFrame(columns=FACILITY_COLUMNS))
    flows_table = raw.tables.get("flows")
    periods, profiles = _periods_and_profiles(raw, settings, problems, flows_table)
    if flows_table is not None and not reference.materials.empty and not reference.fates.empty:
        measured = _flows(flows_table, problems, facilities, reference, settings)
    else:
        measured = pd.DataFrame(columns=FLOW_COLUMNS)
    quality_table = raw.tables.get("quality")
    flow_ids = set(text_column(flows_table, "flow_id")) if flows_table is not None else set()
    quality = _quality(quality_table, problems, flow_ids)
    arcs = _arcs(raw.tables.get("arcs"), problems, facilities)
    processors = _processors(raw.tables.get("processors"), problems, facilities, models)
    permits = _permits(raw.tables.get("permits"), problems, facilities, reference)
    time_data = _time_data(raw, problems, flows_table, measured, periods, profiles, facilities_table, facilities,
                           processors, materials=reference.materials)
    if time_data is not None:  # a store site given by its coordinates is a facility of its own
        from symbiosis.periods.data import site_facilities

        sites = site_facilities(time_data.stores)
        if len(sites):
            facilities = pd.concat([facilities, sites], ignore_index=True)
            for column, value in (("process_model", ""), ("activity_unit", "")):
                if column in facilities.columns:
                    facilities[column] = facilities[column].fillna(value)
    costs = _costs(raw.tables.get("costs"), problems, facilities, settings, measured)
    problems.raise_if_any()

    modelled, modelled_quality = modelled_flows(facilities, measured, models, reference, problems, settings)
    problems.raise_if_any()
    flows = pd.concat([measured, modelled], ignore_index=True) if len(modelled) else measured
    flows = flows[FLOW_COLUMNS].reset_index(drop=True)
    for column in ("stream_id", "process"):
        flows[column] = flows[column].astype(object).where(flows[column].notna(), "").astype(str)
    flows["measured"] = flows["measured"].astype(object).where(flows["measured"].notna(), True).astype(bool)
    if "origin" not in quality:
        quality["origin"] = ""
    flows["ewc_code"] = flows["ewc_code"].astype(object).where(flows["ewc_code"].notna(), "").astype(str)
    facilities = _default_intake(facilities, models)
    if len(modelled_quality):
        quality = pd.concat([quality, modelled_quality], ignore_index=True)
    quality = _harmonise_quality_units(quality[[*QUALITY_COLUMNS, "origin"]], problems)
    problems.raise_if_any()
    _check_virgin_within_bounds(quality, problems)
    problems.raise_if_any()
    quality = quality[QUALITY_COLUMNS]

    region = Region(name=settings.name, settings=settings, facilities=facilities.reset_index(drop=True),
                    flows=flows, quality=quality.reset_index(drop=True), arcs=arcs, reference=reference,
                    source=raw.source, permits=permits, processors=processors,
                    energy_efficiency=_energy_efficiency(facilities, models),
                    model_figures=model_figures(facilities, measured, models, reference), time=time_data,
                    costs=costs)
    region.warnings.extend([*reference.warnings,
                            *(w for t in raw.tables.values() if t is not None for w in t.warnings)])
    region.warnings.extend(_warnings(region))
    logger.info("loaded region %s: %d facilities, %d flows (%d modelled) in %.2f s", region.name,
                len(facilities), len(flows), len(modelled), time.perf_counter() - started)
    return region


def _periods_and_profiles(raw: RawRegion, settings: RegionSettings, problems: Problems, flows_table: Table | None
                          ) -> tuple[pd.DataFrame | None, pd.DataFrame]:
    """region.yaml ``periods:`` and profiles.csv, read before the flows: a flow naming a profile of amounts
    takes its annual amount from it where its own is empty (symbiosis.periods.data)."""
    from symbiosis.periods import data

    periods = data.calendar(settings.periods, problems, raw.settings_file)
    profiles = data.read_profiles(raw.tables.get("profiles"), problems, periods)
    data.fill_amounts_from_profiles(flows_table, problems, profiles, PERIOD_DAYS.get(settings.period, 365.0))
    return periods, profiles


def _time_data(raw: RawRegion, problems: Problems, flows_table: Table | None, flows: pd.DataFrame,
               periods: pd.DataFrame | None, profiles: pd.DataFrame, facilities_table: Table | None,
               facilities: pd.DataFrame, processors: pd.DataFrame, materials: Any = None) -> TimeData | None:
    """Periods (region.yaml ``periods:``), profiles.csv, the flows' ``profile`` column, the limits' profiles
    and stores.csv (symbiosis.periods.data); None when the region declares none of them. A limit left empty
    beside a profile of amounts is filled in, in ``flows``, ``facilities`` and ``processors`` themselves."""
    from symbiosis.periods import data

    flow_profile = data.flow_profiles(flows_table, problems, profiles)
    facility_intake: dict[str, str] = {}
    if facilities_table is not None and len(facilities) == len(facilities_table.frame):
        facility_intake, limit = data.limit_profiles(
            facilities_table, "facility_id", "intake_profile", facilities["intake_capacity_t_per_yr"],
            "intake_capacity_t_per_yr", problems, profiles, "t received")
        facilities["intake_capacity_t_per_yr"] = limit.to_numpy()
    flow_intake: dict[str, str] = {}
    if flows_table is not None and len(flows) == len(flows_table.frame):
        flow_intake, limit = data.limit_profiles(flows_table, "flow_id", "intake_profile", flows["max_intake_t_per_yr"],
                                                 "max_intake_t_per_yr", problems, profiles, "t received")
        flows["max_intake_t_per_yr"] = limit.to_numpy()
    processors_table = raw.tables.get("processors")
    processor_profile: dict[str, str] = {}
    if processors_table is not None and "capacity_profile" in processors_table.frame.columns:
        capacity = text_column(processors_table, "facility_id").map(
            processors.set_index("facility_id")["capacity"] if len(processors) else {}).astype(float)
        processor_profile, limit = data.limit_profiles(processors_table, "facility_id", "capacity_profile", capacity,
                                                       "capacity", problems, profiles, "activity units")
        filled = dict(zip(text_column(processors_table, "facility_id"), limit, strict=True))
        if len(processors):
            processors["capacity"] = processors["facility_id"].map(filled).fillna(processors["capacity"]).to_numpy()
    limits_named = facility_intake or flow_intake or processor_profile
    if flow_profile and periods is None:
        problems.add(raw.settings_file, "flows name profiles but no periods are declared", column="periods",
                     found="no `periods:` key", expected="`periods:` (e.g. 12 months) for the flows' profiles")
    stores = data.read_stores(raw.tables.get("stores"), problems, flows, facilities=facilities,
                              materials=materials)  # materials: a dedicated store site's (symbiosis.periods.sites)
    if periods is None and stores.empty and not limits_named:
        return None
    if periods is None:
        periods = data.calendar("1 year", problems, raw.settings_file)
    assert periods is not None
    return TimeData(periods=periods, profiles=profiles, flow_profile=flow_profile, stores=stores,
                    facility_intake_profile=facility_intake, flow_intake_profile=flow_intake,
                    processor_profile=processor_profile)


def _costs(table: Table | None, problems: Problems, facilities: pd.DataFrame, settings: RegionSettings,
           flows: pd.DataFrame) -> pd.DataFrame:
    """The optional per-facility cost table for MFCA (symbiosis.account.costs)."""
    from symbiosis.account.costs import read_costs

    return read_costs(table, problems, facilities, settings.currency, settings.period, flows)


def _processors(table: Table | None, problems: Problems, facilities: pd.DataFrame,
                models: dict[str, ProcessModel]) -> pd.DataFrame:
    """The optional processors table (symbiosis.network.processors), activities in model units."""
    from symbiosis.network.processors import read_processors

    activity: dict[str, float] = {}
    if table is not None:
        for facility in facilities.to_dict("records"):
            model = models.get(facility["process_model"])
            if model is None or math.isnan(facility["activity"]):
                continue
            try:
                activity[facility["facility_id"]] = _activity_in_model_units(
                    facility["activity"], facility["activity_unit"], model)
            except UnitProblem:
                continue  # reported with the facilities
    return read_processors(table, problems, facilities, activity, models)  # type: ignore[arg-type]


def _warnings(region: Region) -> list[str]:
    found: list[str] = [
        f"flow {flow.flow_id} ({flow.origin}): unmeasured and without a figure; it counts as 0 unless reconciled "
        "(symbiosis balance --reconcile, optimise --reconciled)"
        for flow in region.flows[~region.flows["measured"] & region.flows["amount_t_per_yr"].isna()
                                 & region.flows["amount_mwh_per_yr"].isna()].itertuples()]
    supplies = region.flows[(region.flows["direction"] == "out") & region.flows["exchangeable"]]
    for _, flow in supplies.iterrows():
        if flow["fate"] == "" and math.isnan(flow["price_per_t"]) and flow["quantity"] == "mass":
            found.append(f"flow {flow['flow_id']} ({flow['origin']}): no fate and no price given; its current "
                         "disposal cost is taken as 0")
    return found


def check_region(path: str | Path) -> tuple[Region | None, InputError | None]:
    """Validate only: the region if it loads, else the error listing every problem."""
    try:
        return load_region(path), None
    except InputError as exc:
        return None, exc


# ------------------------------------------------------------------------------------------ a starter


STARTER_FILES: dict[str, str] = {
    "region.yaml": """\
# A region: the system boundary of a study. Every key is described in docs/data-format.md.
name: My region                 # required: shown on maps and reports
description: Starter region      # optional: one line on what the region is and where
period: year                    # year | quarter | month | week | day; amounts without a time unit are per period
year: 2024                      # optional: the reference year of the figures
currency: EUR                   # prices must be in this currency (no exchange rates are applied)
defaults:
  max_distance_km: 100          # where no flow, substitution or material gives its own limit
  max_distance_cap_km:          # optional hard cap over every limit (empty: none)
  circuity: 1.3                 # road km per great-circle km
  transport_cost_per_tkm: 0.10  # currency per t·km
  transport_co2_per_tkm: 0.000062  # t CO2e per t·km
  carbon_price: 0               # currency per t CO2e
  internal_reuse: true          # a facility's own by-product may serve its own demand
  balance_tolerance: 0.05       # relative closure error accepted before a balance warning
reference: {}                   # optional region tables (files in this folder) that add to data/reference/,
                                # e.g. {materials: materials.csv, substitutions: substitutions.csv,
                                #       fates: fates.csv, emission_factors: emission_factors.csv}
# heat_pump:                    # optional: the heat pump that lifts too-cold heat to a demand (defaults shown)
#   carnot_fraction: 0.5        # COP = this share of the Carnot COP of the lift (0 < share ≤ 1)
#   max_cop: 6                  # the COP never exceeds this (> 1)
#   max_lift_k: 80              # no heat pump lifts heat by more than this, kelvin
#   electricity_price_per_mwh: 100   # currency per MWh of electricity
#   electricity_co2e_per_mwh: 0.3    # t CO2e per MWh of electricity
sources:                        # source id -> citation, for the `source` columns of the tables
  example: "Invented example figures written by symbiosis init: replace them"
# periods: 12 months            # optional: decide the exchanges per period (12 months, 4 quarters, 52 weeks,
                                # or seasons [{name: winter, days: 90}, ...]); profiles.csv spreads a flow over
                                # them and stores.csv holds material or heat between them (docs/data-format.md)
""",
    "facilities.csv": """\
facility_id,name,sector,lat,lon,confidential,process_model,activity,activity_unit,source,note
power_station,Example power station,35.11,55.6615,11.0809,false,,,,example,replace with your facilities
board_plant,Example plasterboard plant,23.62,55.6690,11.0960,false,,,,example,
""",
    "flows.csv": """\
flow_id,facility_id,direction,category,material,amount,unit,fate,price,price_unit,exchangeable,\
max_secondary_share,max_distance_km,uncertainty_pct,source,note
power_gypsum,power_station,out,by_product,fgd_gypsum,20000,t,landfill,,,,,,10,example,today landfilled
board_gypsum,board_plant,in,raw_material,natural_gypsum,25000,t,,25,EUR/t,,,,5,example,virgin gypsum bought
""",
    "quality.csv": """\
flow_id,parameter,value,unit,bound,virgin_value,source,note
power_gypsum,purity,96,%,,,example,measured on the supply
board_gypsum,purity,90,%,min,95,example,the plant's limit; its virgin gypsum has 95 %
""",
}


def write_starter_region(folder: str | Path) -> list[Path]:
    """Write a starter region folder that ``symbiosis check`` accepts; refuses to overwrite any file."""
    target = Path(folder)
    problems = Problems()
    if target.exists() and not target.is_dir():
        problems.add(_label(target), "not a folder", expected="a new or existing folder for the region files")
    else:
        for name in STARTER_FILES:
            if (target / name).exists():
                problems.add(_label(target / name), "the file exists already; nothing was written",
                             expected="a folder without region files", fix="choose a new folder")
    problems.raise_if_any()
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in STARTER_FILES.items():
        (target / name).write_text(text, encoding="utf-8")
        written.append(target / name)
    return written
