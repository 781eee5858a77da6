"""Synthetic regions at any size, written in the normal input format, for benchmarks and tests.

``generate_region(n, out_dir, seed=...)`` writes a region folder (region.yaml, facilities.csv, flows.csv,
quality.csv) that :func:`symbiosis.inputs.load_region` reads like any other. It sits beside the pipeline, not in
it: nothing else imports it, and it touches only the folder it is asked to write (reading the shipped process
models and reference tables to stay consistent with them).

How a region is drawn, deterministically from ``seed``:

- **Where**: facilities cluster around a few towns and industrial parks (Gaussian clusters of a few km, sizes
  uneven) with a quarter scattered over the ``area_km`` rectangle centred on ``centre``.
- **What**: each facility is one of the process models in ``models/*.yaml`` (sector = the model's ``nace``),
  larger kinds of plant being rarer. Its activity is drawn so that its mass throughput is lognormal around a
  size typical of the kind; its flows are the model's coefficients × activity with multiplicative noise,
  rescaled per facility so that each facility's balance closes exactly as well as the model's own balance.
  Flows whose material is not in the reference materials are left out (with a log message).
- **Streams**: with ``streams_per_facility`` the exchangeable flows of a facility are split into parts (two
  lines, two suppliers) until it has about that many supplies and demands; the balance is unchanged.
- **Quality**: ``quality_parameters`` parameters (the ones the process models use most, then generic ones).
  Every supply is measured for all of them (the model's typical value where it has one, otherwise a value
  typical of the material class, with lognormal scatter); demands bound some of them, with limits drawn
  around the values of the supplies that could replace them, so quality rows bind at some demands and not at
  others. The virgin material always meets its own bounds.
- **Money**: fates and fate costs from the model or, for waste without one, landfill (sewer for wastewater);
  virgin prices from the model or a class default, with scatter.

- **Processors** (unless ``plain``): about 3 % of the facilities (at least one) are anaerobic digestion
  plants or wastewater treatment plants, the process models ``models/anaerobic_digester.yaml`` and
  ``models/wastewater_treatment.yaml`` that close their mass balance, declared in ``processors.csv`` with a
  capacity, an operating cost and a product value per unit (invented orders of magnitude,
  ``PROCESSOR_MODELS``): their activity is a decision of the model, their digestate and sludge flow on to
  farms and to digesters (chains: a treatment plant's sludge through a digester to a farm).
- **Heat** (unless ``plain``): about 15 % of the facilities, plus every processor, exchange heat (MWh/yr) at a
  temperature (quality ``temperature``, °C): heat a process model buys (steam for fermentation, the digester's
  heat) is marked exchangeable with a minimum temperature by carrier; heavy industry (power, refinery,
  cement, chemicals ...) gives off surplus steam at 180-250 °C; a treatment plant its effluent's heat at
  12-20 °C (a heat pump source); other facilities either give off low-grade waste heat at 30-70 °C or buy
  hot water or district heat at 55-90 °C. Amounts are a fraction of the facility's mass throughput (an
  invented order of magnitude, not a model coefficient). These draws come from their own random stream, so
  ``plain=True`` writes exactly the region of the generator before processors and heat were added.

Every figure is synthetic: flows say ``source: synthetic`` and a ``note``; region.yaml says so; the
processors' costs say ``synthetic (invented figures)``.
"""

from __future__ import annotations

import argparse
import csv
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from symbiosis.errors import Problems
from symbiosis.process_models import ModelFlow, load_process_model

logger = logging.getLogger(__name__)

__all__ = ["generate_region", "main"]

KM_PER_DEG_LAT = 111.32

IN_EXCHANGEABLE = ("raw_material", "auxiliary", "water")
OUT_EXCHANGEABLE = ("by_product", "waste", "wastewater")

# Median mass throughput (t/yr of inputs) of one plant, by a keyword in the process model's id. A guess at the
# order of magnitude of European plants, used only to draw synthetic sizes.
TYPICAL_THROUGHPUT_T = {
    "refinery": 4e6, "steel": 2e6, "power": 1.2e6, "cement": 1.2e6, "kiln": 8e5, "lime": 3e5,
    "incinerat": 2e5, "paper": 3e5, "pulp": 4e5, "plasterboard": 2e5, "glass": 2e5, "sugar": 5e5,
    "fertili": 4e5, "chemical": 3e5, "wastewater": 5e5, "digest": 6e4, "brewery": 1e5, "dairy": 2e5,
    "food": 8e4, "farm": 2e4, "greenhouse": 1e4, "fish": 3e4, "concrete": 1e5, "asphalt": 1e5,
}
DEFAULT_THROUGHPUT_T = 5e4

# Generic quality parameters used when the process models name fewer than asked: (name, unit, bound kind,
# typical value by material class). Bound kind "max" for contaminants, "min" for properties like heat value.
GENERIC_PARAMETERS: list[tuple[str, str, str, dict[str, float]]] = [
    ("chloride", "percent", "max", {"ash": 0.4, "gypsum": 0.02, "biomass": 0.15, "organic": 0.5, "fuel": 0.3,
                                   "mineral": 0.05, "chemical": 0.2, "water": 0.02, "wastewater": 0.1,
                                   "metal": 0.05, "other": 0.2}),
    ("moisture", "percent", "max", {"ash": 15.0, "gypsum": 10.0, "biomass": 35.0, "organic": 70.0,
                                   "fuel": 10.0, "mineral": 5.0, "chemical": 5.0, "metal": 2.0, "other": 20.0,
                                   "water": 99.0, "wastewater": 98.0}),
    ("calorific_value", "MJ/kg", "min", {"fuel": 25.0, "biomass": 14.0, "organic": 8.0, "other": 2.0,
                                         "ash": 0.5, "gypsum": 0.1, "mineral": 0.1, "chemical": 1.0,
                                         "metal": 0.1, "water": 0.0, "wastewater": 0.5}),
    ("sulfur", "percent", "max", {"fuel": 1.0, "ash": 0.8, "gypsum": 17.0, "biomass": 0.1, "organic": 0.3,
                                 "mineral": 0.1, "chemical": 1.0, "other": 0.5, "metal": 0.05,
                                 "water": 0.01, "wastewater": 0.05}),
    ("heavy_metals", "mg/kg", "max", {"ash": 800.0, "gypsum": 20.0, "biomass": 30.0, "organic": 80.0,
                                      "fuel": 100.0, "mineral": 50.0, "chemical": 100.0, "metal": 5000.0,
                                      "other": 200.0, "water": 0.1, "wastewater": 5.0}),
]

# Demand material classes at which a generic parameter is bounded (a heat value matters for a fuel, not for
# limestone).
GENERIC_BOUNDED_AT = {
    "chloride": {"mineral", "gypsum", "fuel", "biomass", "chemical", "water", "ash", "other"},
    "moisture": {"mineral", "gypsum", "fuel", "biomass", "ash", "organic"},
    "calorific_value": {"fuel", "biomass"},
    "sulfur": {"fuel", "mineral", "chemical"},
    "heavy_metals": {"mineral", "gypsum", "biomass", "organic", "fuel", "water", "ash", "other"},
}

# Virgin price by material class (EUR/t), where the process model gives none. Orders of magnitude only.
DEFAULT_VIRGIN_PRICE = {"mineral": 15.0, "gypsum": 25.0, "ash": 20.0, "chemical": 250.0, "fuel": 110.0,
                        "biomass": 60.0, "metal": 450.0, "organic": 200.0, "water": 1.5, "wastewater": 1.0,
                        "product": 300.0, "gas": 300.0, "energy": 50.0, "other": 50.0}

SIGNIFICANT = 6

# Processors and heat (not in ``plain`` regions). Every figure here is invented: orders of magnitude only.
#: Process models that become processors, with their share among processors and, drawn uniformly between
#: the two figures, capacity / current activity, operating cost and product value per unit of activity (EUR
#: per t of substrate or wastewater). A digester's value is its biogas (about 0.3 MWh of methane per t at a
#: supported price of 50-65 EUR/MWh, plus the natural gas CO2e it displaces at the generated regions' carbon
#: price of 80 EUR/t): on bought substrate (8 EUR/t in its model, 13 EUR/t with its CO2e priced), with its
#: heat bought and its digestate spread (5 EUR/t), it about breaks even; on residues that cost their holder a
#: fate it gains, so it grows towards its capacity. A treatment plant's value is the treatment
#: its catchment pays for; its wastewater intake is not a demand, so its capacity is kept close to what it
#: treats today (a plant cannot treat wastewater nobody sends).
PROCESSOR_MODELS: dict[str, dict[str, Any]] = {
    "anaerobic_digester": {"share": 2.0, "capacity": (1.2, 2.0), "operating_cost": (2.0, 5.0),
                           "product_value": (19.0, 25.0)},
    "wastewater_treatment": {"share": 1.0, "capacity": (1.0, 1.1), "operating_cost": (0.3, 0.8),
                             "product_value": (1.0, 2.0)},
}
# The continental layout (``layout="continent"``). The extent is about Europe's from the Iberian peninsula to
# the Urals' foothills and from Sicily to central Scandinavia; the density parameters were chosen so that the
# 50,000-facility region (seed 0, 50 km) gives more than 10 million candidate arcs (docs/performance.md).
LAYOUTS = ("region", "continent")
REGION_AREA_KM = (200.0, 150.0)
REGION_CENTRE = (55.5, 10.5)
CONTINENT_AREA_KM = (3600.0, 2800.0)
CONTINENT_CENTRE = (50.0, 10.0)
CONTINENT_FACILITIES_PER_TOWN = 40
CONTINENT_TOWN_ZIPF = 0.9
CONTINENT_TOWNS_ALONE = 0.15
CONTINENT_SCATTER = 0.05
PROCESSOR_SHARE = 0.03
HEAT_SHARE = 0.15
#: Minimum temperature (°C, low and high of a uniform draw) of heat a facility buys, by carrier.
HEAT_DEMAND_TEMPERATURE = {"steam": (150.0, 190.0), "heat": (40.0, 70.0), "hot_water": (60.0, 90.0),
                           "district_heat": (65.0, 85.0)}
#: Keywords of the kinds of plant that give off surplus steam.
STEAM_SOURCES = ("power", "refinery", "cement", "kiln", "incinerat", "steel", "chemical", "sulphur", "fertili",
                 "paper", "pulp", "lime", "glass")


def _num(value: float) -> str:
    """A number as text, rounded to a fixed number of significant digits (stable across platforms)."""
    if value == 0 or not math.isfinite(value):
        return "0" if value == 0 else ""
    return format(float(value), f".{SIGNIFICANT}g")


# ---------------------------------------------------------------------------------------------- inputs


@dataclass
class _Model:
    id: str
    name: str
    nace: str
    activity_unit: str
    flows: list[ModelFlow]
    quality: list[dict[str, Any]]
    mass_in_per_unit: float = 0.0
    mass_out_per_unit: float = 0.0
    throughput_t: float = DEFAULT_THROUGHPUT_T
    weight: float = 1.0
    # Per flow: t and MWh per unit of the flow's own unit (0 for the other quantity), direction masks, and the
    # model's out/in ratio per quantity (None when it has no inputs or no outputs of that quantity).
    mass_per_unit: np.ndarray = field(default_factory=lambda: np.zeros(0))
    energy_per_unit: np.ndarray = field(default_factory=lambda: np.zeros(0))
    is_in: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    is_out: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    mass_ratio: float | None = None
    energy_ratio: float | None = None


@dataclass
class _Reference:
    material_class: dict[str, str]
    density: dict[str, float]
    secondaries_of: dict[str, list[str]]
    primaries_of: dict[str, list[str]]
    fates: set[str]


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return [{k.strip(): (v or "").strip() for k, v in row.items() if k} for row in csv.DictReader(fh)]


def _read_reference(reference_dir: Path) -> _Reference:
    materials = _read_csv(reference_dir / "materials.csv")
    substitutions = _read_csv(reference_dir / "substitutions.csv")
    fates = _read_csv(reference_dir / "fates.csv")
    material_class = {m["material_id"]: m.get("class", "other") or "other" for m in materials}
    density: dict[str, float] = {}
    for m in materials:
        try:
            density[m["material_id"]] = float(m.get("density_t_per_m3", "") or "nan")
        except ValueError:
            density[m["material_id"]] = math.nan
    secondaries_of: dict[str, list[str]] = {}
    primaries_of: dict[str, list[str]] = {}
    for row in substitutions:
        sec, prim = row["secondary_material"], row["primary_material"]
        secondaries_of.setdefault(prim, []).append(sec)
        primaries_of.setdefault(sec, []).append(prim)
    return _Reference(material_class, density, secondaries_of, primaries_of, {f["fate_id"] for f in fates})


def _per_unit(unit: str, density: float) -> tuple[float, float]:
    """(t, MWh) per 1 of ``unit``: one of them is 0; both are 0 for a unit the loader would not take."""
    from symbiosis.units import convert_amount

    try:
        converted = convert_amount(1.0, unit, density_t_per_m3=density if math.isfinite(density) else None,
                                   period_days=365.0)
    except Exception:  # noqa: BLE001  (an odd unit only leaves the flow out of the size and closure figures)
        return 0.0, 0.0
    return (converted.value, 0.0) if converted.quantity == "mass" else (0.0, converted.value)


def _read_models(models_dir: Path, reference: _Reference) -> list[_Model]:
    models: list[_Model] = []
    # The same validated reader as the loader's: a model file the pipeline refuses is refused here too.
    problems = Problems()
    for path in sorted(models_dir.glob("*.yaml")):
        parsed = load_process_model(path, problems)
        if parsed is None:
            continue
        flows: list[ModelFlow] = []
        for f in parsed.flows:
            if f.material not in reference.material_class:
                logger.info("synthetic: %s: material %r is not in the reference materials; left out",
                            path.name, f.material)
                continue
            flows.append(f)
        if not flows:
            continue
        model = _Model(id=parsed.id, name=parsed.name, nace=parsed.nace, activity_unit=parsed.activity_unit,
                       flows=flows, quality=[q.model_dump() for q in parsed.quality])
        per_unit = np.array([_per_unit(f.unit, reference.density.get(f.material, math.nan)) for f in flows])
        model.mass_per_unit, model.energy_per_unit = per_unit[:, 0], per_unit[:, 1]
        model.is_in = np.array([f.direction == "in" for f in flows])
        model.is_out = np.array([f.direction == "out" for f in flows])
        amounts = np.array([f.amount for f in flows])
        model.mass_in_per_unit = float((amounts * model.mass_per_unit)[model.is_in].sum())
        model.mass_out_per_unit = float((amounts * model.mass_per_unit)[model.is_out].sum())
        if model.mass_in_per_unit <= 0 and model.mass_out_per_unit <= 0:
            continue
        if model.mass_in_per_unit > 0 and model.mass_out_per_unit > 0:
            model.mass_ratio = model.mass_out_per_unit / model.mass_in_per_unit
        energy_in = float((amounts * model.energy_per_unit)[model.is_in].sum())
        energy_out = float((amounts * model.energy_per_unit)[model.is_out].sum())
        if energy_in > 0 and energy_out > 0:
            model.energy_ratio = energy_out / energy_in
        key = model.id.lower() + " " + model.name.lower()
        model.throughput_t = next((v for k, v in TYPICAL_THROUGHPUT_T.items() if k in key), DEFAULT_THROUGHPUT_T)
        # Many small plants, few large ones.
        model.weight = (DEFAULT_THROUGHPUT_T / model.throughput_t) ** 0.35
        models.append(model)
    return models


def _choose_parameters(models: list[_Model], n: int) -> list[tuple[str, str, str]]:
    """(name, unit, bound kind) of the ``n`` parameters: most used by the models first, then generic ones."""
    count: dict[str, int] = {}
    unit: dict[str, str] = {}
    kind: dict[str, str] = {}
    for m in models:
        for q in m.quality:
            p = str(q.get("parameter", ""))
            if not p:
                continue
            count[p] = count.get(p, 0) + 1
            unit.setdefault(p, str(q.get("unit", "")))
            if q.get("bound") in ("max", "min"):
                kind.setdefault(p, str(q["bound"]))
    chosen = sorted(count, key=lambda p: (-count[p], p))[:n]
    generic_kind = {g[0]: g[2] for g in GENERIC_PARAMETERS}
    out = [(p, unit[p], kind.get(p, generic_kind.get(p, "max"))) for p in chosen]
    for name, u, k, _ in GENERIC_PARAMETERS:
        if len(out) >= n:
            break
        if name not in count:
            out.append((name, u, k))
    return out[:n]


# ---------------------------------------------------------------------------------------------- drawing


def _positions(rng: np.random.Generator, n: int, area_km: tuple[float, float]) -> np.ndarray:
    """Facility positions in km within the area: Gaussian clusters of uneven size plus scatter."""
    width, height = area_km
    n_clusters = int(np.clip(round(math.sqrt(n) / 2.5), 3, 60))
    centres = np.column_stack([rng.uniform(0.08 * width, 0.92 * width, n_clusters),
                               rng.uniform(0.08 * height, 0.92 * height, n_clusters)])
    spread = rng.uniform(1.5, 8.0, n_clusters)
    weights = 1.0 / np.arange(1, n_clusters + 1) ** 0.8
    weights = weights / weights.sum()
    cluster = rng.choice(n_clusters, size=n, p=weights)
    xy = centres[cluster] + rng.normal(0.0, 1.0, (n, 2)) * spread[cluster, None]
    scatter = rng.random(n) < 0.25
    xy[scatter] = np.column_stack([rng.uniform(0, width, scatter.sum()), rng.uniform(0, height, scatter.sum())])
    return np.clip(xy, [0.0, 0.0], [width, height])


def _continental_positions(rng: np.random.Generator, n: int, area_km: tuple[float, float]) -> np.ndarray:
    """Facility positions in km over a continent: industrial towns, most of them grouped in industrial basins.

    About one town per ``CONTINENT_FACILITIES_PER_TOWN`` facilities; the towns' shares of the facilities
    fall off with rank (Zipf, exponent ``CONTINENT_TOWN_ZIPF``), so a few towns hold thousands of plants and
    most a few dozen; a town's plants scatter over a few km (more for a larger town). Most towns lie in one
    of about 0.6 √towns industrial basins (a Ruhr, a Po valley: towns Gaussian within 15-40 km of the
    basin's centre, basins uneven), ``CONTINENT_TOWNS_ALONE`` of them stand alone anywhere in the extent,
    and ``CONTINENT_SCATTER`` of the facilities stand outside any town. Land and sea are not told apart.
    """
    width, height = area_km
    n_towns = int(np.clip(round(n / CONTINENT_FACILITIES_PER_TOWN), 20, 5000))
    n_basins = int(np.clip(round(0.6 * math.sqrt(n_towns)), 4, 80))
    basin_xy = np.column_stack([rng.uniform(0.05 * width, 0.95 * width, n_basins),
                                rng.uniform(0.05 * height, 0.95 * height, n_basins)])
    basin_spread = rng.uniform(15.0, 40.0, n_basins)
    basin_weight = 1.0 / np.arange(1, n_basins + 1) ** 0.7
    basin = rng.choice(n_basins, size=n_towns, p=basin_weight / basin_weight.sum())
    town_xy = basin_xy[basin] + rng.normal(0.0, 1.0, (n_towns, 2)) * basin_spread[basin, None]
    alone = rng.random(n_towns) < CONTINENT_TOWNS_ALONE
    town_xy[alone] = np.column_stack([rng.uniform(0, width, alone.sum()), rng.uniform(0, height, alone.sum())])
    town_weight = 1.0 / np.arange(1, n_towns + 1) ** CONTINENT_TOWN_ZIPF
    town_weight = town_weight[rng.permutation(n_towns)]
    town_weight /= town_weight.sum()
    town_spread = rng.uniform(1.5, 4.0, n_towns) * (1.0 + 2.0 * np.sqrt(town_weight / town_weight.max()))
    town = rng.choice(n_towns, size=n, p=town_weight)
    xy = town_xy[town] + rng.normal(0.0, 1.0, (n, 2)) * town_spread[town, None]
    scatter = rng.random(n) < CONTINENT_SCATTER
    xy[scatter] = np.column_stack([rng.uniform(0, width, scatter.sum()), rng.uniform(0, height, scatter.sum())])
    return np.clip(xy, [0.0, 0.0], [width, height])


def _typical_value(model: _Model | None, direction: str, material: str, parameter: str, material_class: str,
                   generic: dict[str, dict[str, float]]) -> float | None:
    if model is not None:
        for q in model.quality:
            if (q.get("direction") == direction and q.get("material") == material
                    and q.get("parameter") == parameter and not q.get("bound")):
                return float(q["value"])
    table = generic.get(parameter)
    if table is None:
        return None
    return table.get(material_class, table.get("other"))


def generate_region(
    n_facilities: int,
    out_dir: str | Path,
    *,
    seed: int = 0,
    area_km: tuple[float, float] | None = None,
    centre: tuple[float, float] | None = None,
    streams_per_facility: float | None = None,
    quality_parameters: int = 3,
    max_distance_km: float = 50.0,
    carbon_price: float = 80.0,
    name: str | None = None,
    models_dir: str | Path | None = None,
    reference_dir: str | Path | None = None,
    plain: bool = False,
    layout: str = "region",
) -> Path:
    """Write a synthetic region of ``n_facilities`` facilities to ``out_dir`` and return that folder.

    Deterministic: the same arguments give byte-identical files. ``centre`` is (lat, lon) of the middle of
    the ``area_km`` (east-west, north-south) rectangle. ``streams_per_facility`` is the number of exchangeable
    streams (supplies + demands) to aim for per facility by splitting the model's streams (None: as the
    models have them). ``quality_parameters`` parameters are measured on supplies and bounded at demands.
    ``max_distance_km`` and ``carbon_price`` go into region.yaml's defaults. Process models and reference
    tables come from the package's ``models/`` and ``data/reference/`` unless given. ``plain=True`` leaves out
    the processors and heat (the regions of the first benchmarks: no ``processors.csv``, no heat rows).

    ``layout="region"`` (the default) places the facilities in clusters over a region, by default 200 x 150 km
    around (55.5, 10.5); ``layout="continent"`` around industrial towns over a continent, by default
    3,600 x 2,800 km around (50.0, 10.0) (:func:`_continental_positions`; longitudes follow each facility's
    own latitude so that distances stay true over the extent). Only the positions differ (they come from a
    random stream of their own): the kinds of plant, flows, qualities, processors and heat are the region
    layout's draws for the same seed, so the files other than facilities.csv's positions are the same.
    """
    from symbiosis.reference import data_dir
    from symbiosis.reference import models_dir as default_models_dir

    if n_facilities < 1:
        raise ValueError(f"n_facilities must be ≥ 1, got {n_facilities}")
    if quality_parameters < 0:
        raise ValueError(f"quality_parameters must be ≥ 0, got {quality_parameters}")
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    continent = layout == "continent"
    if area_km is None:
        area_km = CONTINENT_AREA_KM if continent else REGION_AREA_KM
    if centre is None:
        centre = CONTINENT_CENTRE if continent else REGION_CENTRE
    out = Path(out_dir)
    ref_dir = Path(reference_dir) if reference_dir is not None else data_dir() / "reference"
    mod_dir = Path(models_dir) if models_dir is not None else default_models_dir()
    reference = _read_reference(ref_dir)
    models = _read_models(mod_dir, reference)
    if not models:
        raise ValueError(f"no usable process models in {mod_dir} (need *.yaml with flows in known materials)")
    parameters = _choose_parameters(models, quality_parameters)
    generic = {g[0]: g[3] for g in GENERIC_PARAMETERS}
    rng = np.random.default_rng(seed)
    name = name or f"synthetic-{n_facilities}-seed{seed}"

    # Typical supply values per (material, parameter), to place demand limits around what could arrive.
    model_of_material_out: dict[str, _Model] = {}
    for m in models:
        for f in m.flows:
            if f.direction == "out" and f.category in OUT_EXCHANGEABLE:
                model_of_material_out.setdefault(f.material, m)

    def supply_typical(material: str, parameter: str) -> float | None:
        return _typical_value(model_of_material_out.get(material), "out", material, parameter,
                              reference.material_class.get(material, "other"), generic)

    xy = _positions(rng, n_facilities, area_km)
    if continent:  # its own random stream, after the region's draws: every other draw stays as in the region
        xy = _continental_positions(np.random.default_rng([seed, 17]), n_facilities, area_km)
    lat0, lon0 = centre
    lat = lat0 + (xy[:, 1] - area_km[1] / 2) / KM_PER_DEG_LAT
    # Over a continent a degree of longitude shrinks from south to north: each facility's own latitude.
    lon = lon0 + (xy[:, 0] - area_km[0] / 2) / (KM_PER_DEG_LAT * (np.cos(np.radians(lat)) if continent
                                                                  else math.cos(math.radians(lat0))))
    weights = np.array([m.weight for m in models])
    kind = rng.choice(len(models), size=n_facilities, p=weights / weights.sum())
    size = rng.lognormal(0.0, 0.7, n_facilities)
    # Processors and heat draw from their own stream: the plain region's draws stay as they were.
    extra = np.random.default_rng([seed, 19])
    is_processor = np.zeros(n_facilities, dtype=bool)
    heat_facility = np.zeros(n_facilities, dtype=bool)
    if not plain:
        kind, is_processor = _choose_processors(extra, models, kind)
        heat_facility = is_processor | (extra.random(n_facilities) < HEAT_SHARE)

    width = len(str(n_facilities))
    facility_rows: list[list[str]] = []
    flow_rows: list[list[str]] = []
    quality_rows: list[list[str]] = []
    processor_rows: list[list[str]] = []
    note = f"generated by symbiosis.synthetic (seed {seed}); synthetic figures, not a real facility"
    count_per_model: dict[str, int] = {}

    for i in range(n_facilities):
        model = models[kind[i]]
        fid = f"F{i + 1:0{width}d}"
        count_per_model[model.id] = count_per_model.get(model.id, 0) + 1
        basis = model.mass_in_per_unit or model.mass_out_per_unit
        activity = float(f"{model.throughput_t * size[i] / basis:.3g}")
        facility_rows.append([fid, f"{model.name} {count_per_model[model.id]} (synthetic)", model.nace,
                              f"{lat[i]:.5f}", f"{lon[i]:.5f}", _num(activity), model.activity_unit,
                              *([] if plain else [model.id if is_processor[i] else ""])])

        # Flows: coefficient × activity × noise; then the outputs of each quantity (mass, energy) are
        # rescaled so the facility closes exactly as well as the model does.
        noise = rng.lognormal(0.0, 0.08, len(model.flows))
        amounts = np.array([f.amount for f in model.flows]) * activity * noise
        for per_unit, ratio in ((model.mass_per_unit, model.mass_ratio), (model.energy_per_unit, model.energy_ratio)):
            if ratio is None:
                continue
            total_in = float((amounts * per_unit)[model.is_in].sum())
            total_out = float((amounts * per_unit)[model.is_out].sum())
            if total_in > 0 and total_out > 0:
                amounts[model.is_out & (per_unit > 0)] *= total_in * ratio / total_out

        # Split exchangeable streams into parts to reach streams_per_facility.
        parts = np.ones(len(model.flows), dtype=int)
        exch = [k for k, f in enumerate(model.flows)
                if (f.direction == "in" and f.category in IN_EXCHANGEABLE)
                or (f.direction == "out" and f.category in OUT_EXCHANGEABLE)]
        if streams_per_facility and exch:
            target = max(len(exch), int(rng.poisson(streams_per_facility)))
            for _ in range(target - len(exch)):
                parts[exch[int(rng.integers(len(exch)))]] += 1

        n_flow = 0
        for k, f in enumerate(model.flows):
            shares = rng.dirichlet(np.full(parts[k], 4.0)) if parts[k] > 1 else np.ones(1)
            for share in shares:
                n_flow += 1
                flow_id = f"{fid}-{n_flow:02d}"
                amount = amounts[k] * share
                supply = f.direction == "out" and f.category in OUT_EXCHANGEABLE
                demand = f.direction == "in" and f.category in IN_EXCHANGEABLE
                mclass = reference.material_class.get(f.material, "other")
                fate, price, price_unit, share_cell = "", "", "", ""
                if supply:
                    fate = f.fate if f.fate in reference.fates else (
                        "sewer" if mclass == "wastewater" and "sewer" in reference.fates else
                        "landfill" if "landfill" in reference.fates else "")
                    if f.price is not None and f.price_unit:
                        price, price_unit = _num(float(f.price) * rng.lognormal(0, 0.2)), f.price_unit
                elif demand:
                    if f.price is not None and f.price_unit:
                        price, price_unit = _num(float(f.price) * rng.lognormal(0, 0.2)), f.price_unit
                    else:
                        base = DEFAULT_VIRGIN_PRICE.get(mclass, DEFAULT_VIRGIN_PRICE["other"])
                        price, price_unit = _num(base * rng.lognormal(0, 0.25)), "EUR/t"
                    if rng.random() < 0.2:
                        share_cell = _num(round(float(rng.uniform(0.2, 0.8)), 2))
                elif f.direction == "out" and f.fate in reference.fates:
                    fate = f.fate
                row = [flow_id, fid, f.direction, f.category, f.material, _num(amount), f.unit,
                       fate, price, price_unit, share_cell, "10", "synthetic", note]
                if not plain:
                    bought_heat = (heat_facility[i] and f.direction == "in"
                                   and f.material in HEAT_DEMAND_TEMPERATURE and _is_energy(f.unit))
                    row.append("true" if bought_heat else "")
                    if bought_heat:
                        low, high = HEAT_DEMAND_TEMPERATURE[f.material]
                        quality_rows.append([flow_id, "temperature", _num(round(float(extra.uniform(low, high)))),
                                             "degC", "min", ""])
                flow_rows.append(row)
                if supply:
                    for p, unit, _kind in parameters:
                        typical = _typical_value(model, "out", f.material, p, mclass, generic)
                        if typical is None:
                            continue
                        value = typical * rng.lognormal(0.0, 0.35)
                        quality_rows.append([flow_id, p, _num(value), unit, "", ""])
                elif demand and f.material in reference.secondaries_of:
                    quality_rows.extend(_demand_bounds(rng, model, f.material, flow_id, parameters,
                                                       reference, supply_typical))
        if heat_facility[i]:
            throughput = model.throughput_t * float(size[i])
            buys_heat = any(f.direction == "in" and f.material in HEAT_DEMAND_TEMPERATURE and _is_energy(f.unit)
                            for f in model.flows)
            for row, quality in _heat_flows(extra, model, fid, n_flow, throughput, activity, buys_heat, note):
                if row[4] not in reference.material_class:  # reference tables without heat carriers
                    continue
                flow_rows.append(row)
                quality_rows.append(quality)
                n_flow += 1
        if is_processor[i]:
            costs = PROCESSOR_MODELS[model.id]
            capacity = max(activity, float(f"{activity * extra.uniform(*costs['capacity']):.3g}"))
            processor_rows.append([fid, _num(capacity),
                                   _num(round(float(extra.uniform(*costs["operating_cost"])), 2)),
                                   _num(round(float(extra.uniform(*costs["product_value"])), 2)),
                                   "synthetic (invented figures)"])

    out.mkdir(parents=True, exist_ok=True)
    # A processor names its process model (its yields per unit of activity); the others need none, their
    # flows being written in full.
    _write_csv(out / "facilities.csv",
               ["facility_id", "name", "sector", "lat", "lon", "activity", "activity_unit",
                *([] if plain else ["process_model"])], facility_rows)
    _write_csv(out / "flows.csv",
               ["flow_id", "facility_id", "direction", "category", "material", "amount", "unit", "fate",
                "price", "price_unit", "max_secondary_share", "uncertainty_pct", "source", "note",
                *([] if plain else ["exchangeable"])], flow_rows)
    if processor_rows:
        _write_csv(out / "processors.csv",
                   ["facility_id", "capacity", "operating_cost_per_unit", "product_value_per_unit", "source"],
                   processor_rows)
    _write_csv(out / "quality.csv", ["flow_id", "parameter", "value", "unit", "bound", "virgin_value"],
               quality_rows)
    settings = {
        "name": name,
        "description": (f"Synthetic region of {n_facilities} facilities generated by symbiosis.synthetic "
                        f"(seed {seed}) around lat {centre[0]}, lon {centre[1]} over {area_km[0]:g} x "
                        f"{area_km[1]:g} km{' (continental layout: industrial towns)' if continent else ''}. "
                        "All facilities, flows, prices and qualities are synthetic, drawn "
                        "from the process models in models/; they describe no real site."),
        "period": "year",
        "currency": "EUR",
        "defaults": {
            "max_distance_km": float(max_distance_km),
            "circuity": 1.3,
            "transport_cost_per_tkm": 0.10,
            "transport_co2_per_tkm": 0.000062,
            "carbon_price": float(carbon_price),
            "internal_reuse": True,
        },
    }
    (out / "region.yaml").write_text(yaml.safe_dump(settings, sort_keys=False, allow_unicode=True),
                                     encoding="utf-8")
    logger.info("synthetic region %s: %d facilities (%d processors, %d with heat), %d flows, %d quality rows "
                "written to %s", name, n_facilities, int(is_processor.sum()), int(heat_facility.sum()),
                len(flow_rows), len(quality_rows), out)
    return out


def _demand_bounds(rng: np.random.Generator, model: _Model, material: str, flow_id: str,
                   parameters: list[tuple[str, str, str]], reference: _Reference,
                   supply_typical: Any) -> list[list[str]]:
    """Quality bounds of one demand: the model's where it has them, else limits around candidate supplies."""
    rows: list[list[str]] = []
    secondaries = reference.secondaries_of.get(material, [])
    for p, unit, kind in parameters:
        given = next((q for q in model.quality if q.get("direction") == "in" and q.get("material") == material
                      and q.get("parameter") == p and q.get("bound") in ("max", "min")), None)
        if given is not None:
            bound = str(given["bound"])
            limit = float(given["value"]) * rng.lognormal(0.0, 0.1)
            virgin = given.get("virgin_value")
            virgin_value = float(virgin) if virgin is not None else None
        else:
            bounded_at = GENERIC_BOUNDED_AT.get(p)
            if bounded_at is not None and reference.material_class.get(material, "other") not in bounded_at:
                continue
            if rng.random() < 0.35:
                continue
            values = [v for v in (supply_typical(s, p) for s in secondaries) if v is not None and v > 0]
            if not values:
                continue
            typical = float(np.median(values))
            bound = kind
            # Around the typical incoming value: some supplies pass, some fail, some need blending.
            limit = typical * (rng.uniform(0.7, 2.5) if bound == "max" else rng.uniform(0.4, 1.1))
            virgin_value = None
        if bound == "max":
            if virgin_value is None or virgin_value > limit:
                virgin_value = limit * rng.uniform(0.05, 0.6)
        else:
            if virgin_value is None or virgin_value < limit:
                virgin_value = limit * rng.uniform(1.05, 1.6)
        rows.append([flow_id, p, _num(limit), unit, bound, _num(virgin_value)])
    return rows


def _is_energy(unit: str) -> bool:
    return _per_unit(unit, math.nan)[1] > 0


def _choose_processors(rng: np.random.Generator, models: list[_Model], kind: np.ndarray
                       ) -> tuple[np.ndarray, np.ndarray]:
    """(kind, is_processor): about PROCESSOR_SHARE of the facilities (at least one) made processors, of the
    PROCESSOR_MODELS that are among ``models``, by their shares."""
    n = len(kind)
    is_processor = np.zeros(n, dtype=bool)
    available = [k for k, m in enumerate(models) if m.id in PROCESSOR_MODELS]
    if not available:
        logger.info("synthetic: none of %s among the process models; no processors", sorted(PROCESSOR_MODELS))
        return kind, is_processor
    n_proc = max(1, int(round(PROCESSOR_SHARE * n)))
    where = rng.choice(n, size=min(n, n_proc), replace=False)
    share = np.array([PROCESSOR_MODELS[models[k].id]["share"] for k in available])
    kind = kind.copy()
    kind[where] = np.array(available)[rng.choice(len(available), size=len(where), p=share / share.sum())]
    is_processor[where] = True
    return kind, is_processor


def _heat_flows(rng: np.random.Generator, model: _Model, fid: str, n_flow: int, throughput_t: float,
                activity: float, buys_heat: bool, note: str) -> list[tuple[list[str], list[str]]]:
    """Heat given off or bought by one facility (flow row, temperature row), beyond what its model buys.

    A treatment plant gives off its effluent's heat (per t treated, so it follows a processor's activity);
    heavy industry surplus steam; a facility that already buys heat (its model's steam or heat, marked
    exchangeable) nothing more; any other either low-grade waste heat or a hot water / district heat demand.
    """
    key = model.id.lower() + " " + model.name.lower()

    def flow(direction: str, category: str, material: str, mwh: float, price: str, temperature: float,
             bound: str) -> tuple[list[str], list[str]]:
        flow_id = f"{fid}-{n_flow + 1:02d}"
        exchangeable = "true" if direction == "in" else ""
        return ([flow_id, fid, direction, category, material, _num(float(f"{mwh:.4g}")), "MWh", "",
                 price, "EUR/MWh" if price else "", "", "10", "synthetic", note, exchangeable],
                [flow_id, "temperature", _num(round(temperature)), "degC", bound, ""])

    if model.id == "wastewater_treatment":
        return [flow("out", "waste", "waste_heat", activity * rng.uniform(0.004, 0.01), "",
                     rng.uniform(12.0, 20.0), "")]
    if any(k in key for k in STEAM_SOURCES):
        return [flow("out", "by_product", "steam", throughput_t * rng.uniform(0.02, 0.1),
                     _num(round(float(rng.uniform(0.0, 3.0)), 2)), rng.uniform(180.0, 250.0), "")]
    if buys_heat:
        return []
    if rng.random() < 0.5:
        return [flow("out", "waste", "waste_heat", throughput_t * rng.uniform(0.01, 0.05),
                     _num(round(float(rng.uniform(0.0, 2.0)), 2)), rng.uniform(30.0, 70.0), "")]
    carrier = "district_heat" if rng.random() < 0.5 else "hot_water"
    return [flow("in", "energy", carrier, throughput_t * rng.uniform(0.02, 0.15),
                 _num(round(float(rng.uniform(25.0, 45.0)), 2)), rng.uniform(55.0, 90.0), "min")]


def _write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def main(argv: list[str] | None = None) -> int:
    """``python -m symbiosis.synthetic N OUT_DIR --seed S``: write a synthetic region."""
    parser = argparse.ArgumentParser(prog="python -m symbiosis.synthetic",
                                     description="Write a synthetic region (all figures synthetic).")
    parser.add_argument("n_facilities", type=int)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-distance-km", type=float, default=50.0)
    parser.add_argument("--quality-parameters", type=int, default=3)
    parser.add_argument("--streams-per-facility", type=float, default=None)
    parser.add_argument("--carbon-price", type=float, default=80.0)
    parser.add_argument("--name", default=None)
    parser.add_argument("--plain", action="store_true",
                        help="no processors and no heat (the regions of the first benchmarks)")
    parser.add_argument("--layout", choices=LAYOUTS, default="region",
                        help="region: clusters over 200 x 150 km (the default); continent: industrial towns "
                             "over 3,600 x 2,800 km")
    args = parser.parse_args(argv)
    path = generate_region(args.n_facilities, args.out_dir, seed=args.seed, max_distance_km=args.max_distance_km,
                           quality_parameters=args.quality_parameters,
                           streams_per_facility=args.streams_per_facility, carbon_price=args.carbon_price,
                           name=args.name, plain=args.plain, layout=args.layout)
    print(path)  # noqa: T201  (the CLI's answer)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
