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

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import ValidationError
from stdnum.eu import nace

from symbiosis.errors import InputError, Problems
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
    QUALITY_COLUMNS,
    STOCK_CATEGORY,
    Region,
    RegionSettings,
)
from symbiosis.tables import (
    Table,
    bool_column,
    duplicate_ids,
    number_column,
    read_csv_table,
    require_columns,
    table_from_frame,
    text_column,
)
from symbiosis.units import UREG, UnitProblem, convert_amount, convert_price, convert_to, parse_unit

logger = logging.getLogger(__name__)

PERIOD_DAYS = {"year": 365.0, "quarter": 365.0 / 4, "month": 365.0 / 12, "week": 7.0, "day": 1.0}
_ESTIMATE_WORDS = ("estimat", "assum", "guess", "proxy")
TABLE_NAMES = ("facilities", "flows", "quality", "arcs", "processors")


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
    if suffix in (".xlsx", ".xlsm"):
        return _read_workbook(path, problems)
    if suffix == ".gpkg":
        return _read_geopackage(path, problems)
    problems.add(str(path), "unsupported region container", found=path.suffix or "no extension",
                 expected="a folder, .xlsx or .gpkg")
    problems.raise_if_any()
    raise AssertionError("unreachable")


def _label(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _read_folder(path: Path, problems: Problems) -> RawRegion:
    settings_path = path / "region.yaml"
    settings: dict[str, object] | None = None
    if settings_path.exists():
        data = read_yaml(settings_path, problems)
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


def _settings_from_key_values(table: Table | None, problems: Problems) -> dict[str, object] | None:
    if table is None:
        return None
    if not require_columns(table, ["key", "value"], problems):
        return None
    settings: dict[str, object] = {}
    defaults: dict[str, object] = {}
    default_keys = set(RegionSettings.model_fields["defaults"].annotation.model_fields)  # type: ignore[union-attr]
    for _, row in table.frame.iterrows():
        key = row["key"].removeprefix("defaults.")
        if key in default_keys:
            defaults[key] = row["value"]
        elif key:
            settings[key] = row["value"]
    if defaults:
        settings["defaults"] = defaults
    return settings


def _read_workbook(path: Path, problems: Problems) -> RawRegion:
    label = _label(path)
    try:
        sheets = pd.read_excel(path, sheet_name=None, dtype=object)
    except Exception as exc:  # openpyxl raises many kinds on a corrupt file
        problems.add(label, f"cannot read the workbook ({exc})", expected="an .xlsx file")
        problems.raise_if_any()
        raise
    tables: dict[str, Table | None] = {}
    for name in (*TABLE_NAMES, "region"):
        frame = sheets.get(name)
        tables[name] = table_from_frame(frame, f"{label} [sheet {name}]") if frame is not None else None
    for name in ("facilities", "flows"):
        if tables[name] is None:
            problems.add(label, f"missing sheet '{name}'", expected=f"sheets {', '.join(TABLE_NAMES)}, region")
    settings = _settings_from_key_values(tables.pop("region"), problems)
    if settings is None:
        problems.add(label, "missing sheet 'region'", expected="a sheet with columns key, value (name, currency, ...)")
    return RawRegion(settings, f"{label} [sheet region]", tables, path.parent, label)


def _read_layer(path: Path, layer: str, problems: Problems) -> Table | None:
    import pyogrio

    label = f"{_label(path)} [layer {layer}]"
    try:
        frame = pyogrio.read_dataframe(path, layer=layer)
    except Exception as exc:
        problems.add(label, f"cannot read the layer ({exc})")
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
    return table_from_frame(frame, label)


def _read_geopackage(path: Path, problems: Problems) -> RawRegion:
    import pyogrio

    layers = {name for name, _ in pyogrio.list_layers(path)}
    tables: dict[str, Table | None] = {}
    for name in (*TABLE_NAMES, "region"):
        tables[name] = _read_layer(path, name, problems) if name in layers else None
    for name in ("facilities", "flows"):
        if tables[name] is None:
            problems.add(_label(path), f"missing layer '{name}'", found=", ".join(sorted(layers)))
    settings = _settings_from_key_values(tables.pop("region"), problems)
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
    if not require_columns(table, required, problems):
        return pd.DataFrame(columns=FACILITY_COLUMNS)
    duplicate_ids(table, "facility_id", problems)
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


def _rough_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    x = math.radians(lon2 - lon1) * math.cos(math.radians((lat1 + lat2) / 2))
    y = math.radians(lat2 - lat1)
    return 6371.0 * math.hypot(x, y)


def _activity_in_model_units(activity: float, unit_text: str, model: ProcessModel) -> float:
    """The facility's activity per year, in the model's activity unit."""
    unit = parse_unit(unit_text or model.activity_unit)
    target = parse_unit(model.activity_unit)
    quantity = UREG.Quantity(activity, unit)
    if quantity.dimensionality != UREG.Quantity(1.0, target).dimensionality:
        quantity = quantity * UREG.Quantity(1.0, UREG.year)
    try:
        return float(quantity.to(target).magnitude)
    except Exception as exc:
        raise UnitProblem(str(exc)) from None


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
    if not require_columns(table, required, problems):
        return pd.DataFrame(columns=FLOW_COLUMNS)
    duplicate_ids(table, "flow_id", problems)
    period_days = PERIOD_DAYS.get(settings.period, 365.0)
    category = text_column(table, "category")
    is_stock = category == STOCK_CATEGORY
    amount = number_column(table, "amount", problems, required=True, expected="an amount")
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
    source = text_column(table, "source")

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
        row = table.row_number(position)
        fid = facility_list[position]
        if fid not in known_facilities:
            problems.add(table.file, "unknown facility", row=row, column="facility_id", found=fid,
                         expected="a facility_id from the facilities table")
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
                         fix="add the material to the region's reference materials table")
            continue
        value = amount_list[position]
        if math.isnan(value):
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
        if flow_quantity == "mass":
            t_per_yr[position] = value * per_unit.value  # type: ignore[attr-defined]
        else:
            mwh_per_yr[position] = value * per_unit.value  # type: ignore[attr-defined]
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
                         expected=f"one of {', '.join(sorted(known_fates))}")
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
    })
    return frame


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
                    })
    return pd.DataFrame(rows, columns=FLOW_COLUMNS), pd.DataFrame(quality_rows, columns=QUALITY_COLUMNS)


# -------------------------------------------------------------------------------------------- quality


def _quality(table: Table | None, problems: Problems, known: set[str]) -> pd.DataFrame:
    if table is None:
        return pd.DataFrame(columns=QUALITY_COLUMNS)
    if not require_columns(table, ["flow_id", "parameter", "value", "unit"], problems):
        return pd.DataFrame(columns=QUALITY_COLUMNS)
    frame = pd.DataFrame({
        "flow_id": text_column(table, "flow_id"),
        "parameter": text_column(table, "parameter"),
        "value": number_column(table, "value", problems, required=True, expected="a measured value or a limit"),
        "unit": text_column(table, "unit"),
        "bound": text_column(table, "bound").str.lower(),
        "virgin_value": number_column(table, "virgin_value", problems, expected="the virgin material's value"),
    })
    unknown = ~frame["flow_id"].isin(known)
    for position in np.flatnonzero(unknown.to_numpy()):
        problems.add(table.file, "unknown flow", row=table.row_number(int(position)), column="flow_id",
                     found=frame["flow_id"].iat[position], expected="a flow_id from the flows table")
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
    return frame


def _harmonise_quality_units(quality: pd.DataFrame, problems: Problems, file: str) -> pd.DataFrame:
    """One unit per parameter across the region: values are converted to the first unit seen."""
    if quality.empty:
        return quality
    quality = quality.copy()
    target_units = quality.groupby("parameter", sort=False)["unit"].first()
    for (parameter, unit), rows in quality.groupby(["parameter", "unit"], sort=False).groups.items():
        target = target_units[parameter]
        if unit == target:
            continue
        try:
            factor = convert_to(1.0, unit, target)
        except UnitProblem as exc:
            for position in rows:
                problems.add(file, f"quality units differ for parameter '{parameter}' ({exc})",
                             row=int(position) + 2, column="unit", found=unit,
                             expected=f"a unit convertible to {target}")
            continue
        quality.loc[rows, "value"] = quality.loc[rows, "value"] * factor
        quality.loc[rows, "virgin_value"] = quality.loc[rows, "virgin_value"] * factor
        quality.loc[rows, "unit"] = target
    return quality


# ----------------------------------------------------------------------------------------------- arcs


def _arcs(table: Table | None, problems: Problems, facilities: pd.DataFrame) -> pd.DataFrame:
    if table is None:
        return pd.DataFrame(columns=ARC_COLUMNS)
    if not require_columns(table, ["supply_facility", "demand_facility"], problems):
        return pd.DataFrame(columns=ARC_COLUMNS)
    frame = pd.DataFrame({
        "supply_facility": text_column(table, "supply_facility"),
        "demand_facility": text_column(table, "demand_facility"),
        "distance_km": number_column(table, "distance_km", problems, allow_negative=False, expected="a distance in km"),
        "cost_per_t": number_column(table, "cost_per_t", problems, allow_negative=False,
                                    expected="a transport cost per t"),
        "co2e_per_t": number_column(table, "co2e_per_t", problems, allow_negative=False,
                                    expected="transport emissions in t CO2e per t (e.g. 0 for a pipeline)"),
    })
    known = set(facilities["facility_id"])
    for position, row in frame.iterrows():
        row_number = table.row_number(int(position))  # type: ignore[arg-type]
        for column in ("supply_facility", "demand_facility"):
            if row[column] not in known:
                problems.add(table.file, "unknown facility", row=row_number, column=column, found=row[column],
                             expected="a facility_id from the facilities table")
        if math.isnan(row["distance_km"]) and math.isnan(row["cost_per_t"]):
            problems.add(table.file, "an arc override needs a distance or a cost", row=row_number,
                         column="distance_km", found="empty distance_km and cost_per_t",
                         expected="distance_km and/or cost_per_t")
    return frame


# ------------------------------------------------------------------------------------------- the load


def load_region(path: str | Path, *, reference_dir: Path | None = None, models_directory: Path | None = None
                ) -> Region:
    """Read and validate a region; raises :class:`InputError` listing every problem found."""
    started = time.perf_counter()
    path = Path(path)
    problems = Problems()
    raw = read_raw(path, problems)
    settings = _settings(raw, problems)
    overrides: dict[str, Path] = {}
    if settings is not None:
        for name, relative in settings.reference.model_dump().items():
            if relative:
                overrides[name] = raw.base_dir / relative
    reference = load_reference(problems, overrides, reference_dir)
    models = load_process_models(problems, models_directory)
    if settings is None:
        settings = RegionSettings.model_validate({"name": path.stem})
    if settings.period not in PERIOD_DAYS:
        problems.add(raw.settings_file, "unknown period", column="period", found=settings.period,
                     expected=", ".join(PERIOD_DAYS))

    facilities_table = raw.tables.get("facilities")
    facilities = (_facilities(facilities_table, problems, models) if facilities_table is not None
                  else pd.DataFrame(columns=FACILITY_COLUMNS))
    flows_table = raw.tables.get("flows")
    if flows_table is not None and not reference.materials.empty and not reference.fates.empty:
        measured = _flows(flows_table, problems, facilities, reference, settings)
    else:
        measured = pd.DataFrame(columns=FLOW_COLUMNS)
    quality_table = raw.tables.get("quality")
    flow_ids = set(text_column(flows_table, "flow_id")) if flows_table is not None else set()
    quality = _quality(quality_table, problems, flow_ids)
    arcs = _arcs(raw.tables.get("arcs"), problems, facilities)
    processors = _processors(raw.tables.get("processors"), problems, facilities, models)
    problems.raise_if_any()

    modelled, modelled_quality = modelled_flows(facilities, measured, models, reference, problems, settings)
    problems.raise_if_any()
    flows = pd.concat([measured, modelled], ignore_index=True) if len(modelled) else measured
    flows = flows[FLOW_COLUMNS].reset_index(drop=True)
    if len(modelled_quality):
        quality = pd.concat([quality, modelled_quality], ignore_index=True)
    quality = _harmonise_quality_units(quality[QUALITY_COLUMNS], problems,
                                       quality_table.file if quality_table is not None else "quality")
    problems.raise_if_any()

    region = Region(name=settings.name, settings=settings, facilities=facilities.reset_index(drop=True),
                    flows=flows, quality=quality.reset_index(drop=True), arcs=arcs, reference=reference,
                    source=raw.source, processors=processors)
    region.warnings.extend(_warnings(region))
    logger.info("loaded region %s: %d facilities, %d flows (%d modelled) in %.2f s", region.name,
                len(facilities), len(flows), len(modelled), time.perf_counter() - started)
    return region


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
    found: list[str] = []
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
