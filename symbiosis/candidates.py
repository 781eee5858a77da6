"""Supply, demand and candidate arcs: the screened input of the exchange model.

From a Region, every exchangeable outgoing flow becomes a supply and every incoming flow that some
secondary material can replace becomes a demand. Arcs are the (supply, demand) pairs that pass the
compatibility screen (a substitution exists), the distance screen (within the smallest applicable limit)
and the hard quality screen (the supply is measured for every parameter the demand bounds). Pairs come from
a spatial index per material pair, never from a scan of all supplies against all demands.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from pyproj import Geod
from scipy.spatial import cKDTree

from symbiosis.energy.heat import apply_energy, energy_demands, energy_supplies
from symbiosis.network import permits
from symbiosis.parallel import usable_cpus
from symbiosis.region import Region


@dataclass
class Candidates:
    """Supplies, demands, arcs and their quality data (columns in docs/architecture.md)."""

    supplies: pd.DataFrame
    demands: pd.DataFrame
    arcs: pd.DataFrame
    supply_quality: pd.DataFrame
    demand_quality: pd.DataFrame
    screening: pd.DataFrame
    parameters: dict[str, Any] = field(default_factory=dict)
    #: Processors and their intake/output rows (symbiosis.network.processors); None or empty without any.
    processors: pd.DataFrame | None = None
    processor_links: pd.DataFrame | None = None
    #: Arcs screened out for want of a receiver's permit (same columns as ``arcs``), for permit_opportunities.
    permit_screened: pd.DataFrame | None = None
    #: Permitted tonnages per (receiving facility, EWC code) (symbiosis.network.permits.limit_table): the
    #: permit_limit rows of the LP. None without any.
    permit_limits: pd.DataFrame | None = None


logger = logging.getLogger(__name__)

EARTH_RADIUS_KM = 6371.0088
_GEOD = Geod(ellps="WGS84")
#: Facility pairs per thread from which the geodesic distances are measured on several threads.
GEODESIC_PARALLEL_FROM = 250_000
# Geodesic (ellipsoid) and great-circle (sphere) distances differ by well under 1 %; the spatial index is
# queried on the sphere with this margin and every pair is then measured exactly on the ellipsoid.
_SPHERE_MARGIN = 1.01
# The dtype pandas infers for a column of Python strings (``str`` since pandas 3).
_INFERRED_STRINGS = pd.Series(["x"]).dtype

SUPPLY_COLUMNS = ["supply_id", "facility_id", "material", "material_class", "category", "amount_t_per_yr", "fate",
                  "fate_kind",
                  "fate_cost_per_t", "fate_co2e_per_t", "lat", "lon", "quantity", "amount_mwh_per_yr"]
DEMAND_COLUMNS = ["demand_id", "facility_id", "material", "material_class", "density_t_per_m3",
                  "amount_t_per_yr", "virgin_price_per_t", "virgin_co2e_per_t", "max_secondary_share", "lat", "lon",
                  "quantity", "amount_mwh_per_yr"]
ARC_COLUMNS = ["s", "d", "supply_id", "demand_id", "supply_facility", "demand_facility", "distance_km",
               "max_distance_km", "ratio", "processing_cost_per_t", "processing_co2e_per_t",
               "transport_cost_per_t", "transport_co2e_per_t", "capacity_t_per_yr"]


def resolve_parameters(region: Region, **overrides: Any) -> dict[str, object]:
    """Region defaults with the non-None overrides applied (the parameters a run used, for its record)."""
    from symbiosis.pipeline import check_overrides

    check_overrides(overrides)  # unknown keys, NaN and out-of-range values: the rules of region.yaml
    parameters: dict[str, object] = dict(region.settings.defaults.model_dump())
    parameters.update({key: value for key, value in overrides.items() if value is not None})
    parameters["currency"] = region.settings.currency
    return parameters


def _xyz(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    phi, lam = np.radians(lat), np.radians(lon)
    return EARTH_RADIUS_KM * np.column_stack([np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)])


def _chord(great_circle_km: float) -> float:
    angle = min(great_circle_km / EARTH_RADIUS_KM, math.pi)
    return 2.0 * EARTH_RADIUS_KM * math.sin(angle / 2.0)


def _great_circle_from_chord(chord_km: np.ndarray) -> np.ndarray:
    return 2.0 * EARTH_RADIUS_KM * np.arcsin(np.clip(chord_km / (2.0 * EARTH_RADIUS_KM), 0.0, 1.0))


def geodesic_km(lat1: np.ndarray, lon1: np.ndarray, lat2: np.ndarray, lon2: np.ndarray) -> np.ndarray:
    """Geodesic distance on the WGS84 ellipsoid, in km, vectorised."""
    return _geodesic_km_in_place(*(np.array(a, dtype=float) for a in (lat1, lon1, lat2, lon2)))


def _geodesic_km_in_place(lat1: np.ndarray, lon1: np.ndarray, lat2: np.ndarray, lon2: np.ndarray) -> np.ndarray:
    """``geodesic_km`` computed in its arguments, float64 arrays that the caller gives up (the result is one of
    them): pyproj would otherwise copy all four first, hundreds of MB of fresh memory at millions of pairs."""
    n = len(lat1)
    if n == 0:
        return np.zeros(0)
    workers = min(usable_cpus(), n // GEODESIC_PARALLEL_FROM)
    if workers <= 1:
        return _geodesic_part(lat1, lon1, lat2, lon2)
    # pyproj releases the GIL in its loop, so slices measured on threads run on all cores (the geodesic is
    # two thirds of the candidates stage at millions of pairs). The slices are views: still in place.
    bounds = np.linspace(0, n, workers + 1).astype(np.int64)
    slices = [slice(bounds[k], bounds[k + 1]) for k in range(workers)]
    out = np.empty(n)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        parts = pool.map(lambda sl: _geodesic_part(lat1[sl], lon1[sl], lat2[sl], lon2[sl]), slices)
        for sl, part in zip(slices, parts, strict=True):
            out[sl] = part
    return out


def _geodesic_part(lat1: np.ndarray, lon1: np.ndarray, lat2: np.ndarray, lon2: np.ndarray) -> np.ndarray:
    # The distance does not depend on it, and flipping the back azimuth costs pyproj about 8 % of the call.
    _, _, metres = _GEOD.inv(lon1, lat1, lon2, lat2, inplace=True, return_back_azimuth=False)
    metres /= 1000.0
    return metres


def _supplies(region: Region) -> pd.DataFrame:
    flows = region.flows
    chosen = flows[(flows["direction"] == "out") & flows["exchangeable"] & (flows["quantity"] == "mass")
                   & (flows["amount_t_per_yr"] > 0)]
    fates = region.reference.fates
    fate = chosen["fate"]
    has_fate = fate.isin(fates.index)
    fate_cost = fate.map(fates["cost_per_t"]) if not fates.empty else pd.Series(np.nan, index=chosen.index)
    fate_co2 = fate.map(fates["co2e_t_per_t"]) if not fates.empty else pd.Series(np.nan, index=chosen.index)
    # The facility's own figure (its contract price) wins over the reference fate cost.
    cost = chosen["price_per_t"].where(chosen["price_per_t"].notna(), fate_cost).fillna(0.0)
    frame = pd.DataFrame({
        "supply_id": chosen["flow_id"],
        "facility_id": chosen["facility_id"],
        "material": chosen["material"],
        "material_class": chosen["material"].map(region.reference.materials["class"]),
        "category": chosen["category"],
        "amount_t_per_yr": chosen["amount_t_per_yr"].astype(float),
        "fate": fate,
        "fate_kind": fate.map(fates["kind"]).where(has_fate, "") if not fates.empty else "",
        "fate_cost_per_t": cost.astype(float),
        "fate_co2e_per_t": fate_co2.where(has_fate, 0.0).fillna(0.0).astype(float),
        "max_distance_km": chosen["max_distance_km"].astype(float),
        "quantity": "mass",
        "amount_mwh_per_yr": np.nan,
    })
    law = permits.supply_law(region, chosen)
    for column in law.columns:
        frame[column] = law[column].to_numpy()
    frame = _with_energy(frame, energy_supplies(region))
    if len(frame):  # heat is no waste under the List of Waste: no code, no permit
        frame["ewc_code"] = frame["ewc_code"].fillna("")
        frame["hazardous"] = frame["hazardous"].fillna(False).astype(bool)
        frame["needs_permit"] = frame["needs_permit"].fillna(False).astype(bool)
    return _locate(frame, region)


def _with_energy(frame: pd.DataFrame, energy: pd.DataFrame) -> pd.DataFrame:
    """The mass rows followed by the energy rows (symbiosis.energy.heat), if any."""
    return pd.concat([frame, energy], ignore_index=True) if len(energy) else frame


def _demands(region: Region, primary_materials: set[str]) -> pd.DataFrame:
    flows = region.flows
    chosen = flows[(flows["direction"] == "in") & flows["exchangeable"] & (flows["quantity"] == "mass")
                   & (flows["amount_t_per_yr"] > 0) & flows["material"].isin(primary_materials)]
    materials = region.reference.materials
    virgin = region.reference.emission_factors
    virgin = virgin[virgin["kind"] == "virgin"].drop_duplicates("item", keep="last").set_index("item")["co2e_t_per_t"]
    frame = pd.DataFrame({
        "demand_id": chosen["flow_id"],
        "facility_id": chosen["facility_id"],
        "material": chosen["material"],
        "material_class": chosen["material"].map(materials["class"]),
        "density_t_per_m3": chosen["material"].map(materials["density_t_per_m3"]).astype(float),
        "amount_t_per_yr": chosen["amount_t_per_yr"].astype(float),
        "virgin_price_per_t": chosen["price_per_t"].fillna(0.0).astype(float),
        "virgin_co2e_per_t": chosen["material"].map(virgin).fillna(0.0).astype(float),
        "max_secondary_share": chosen["max_secondary_share"].fillna(1.0).astype(float),
        "max_distance_km": chosen["max_distance_km"].astype(float),
        "max_intake_t_per_yr": (chosen["max_intake_t_per_yr"].astype(float) if "max_intake_t_per_yr" in chosen
                                else np.nan),
        "quantity": "mass",
        "amount_mwh_per_yr": np.nan,
    })
    if "intake_capacity_t_per_yr" in region.facilities:
        capacity = region.facilities.set_index("facility_id")["intake_capacity_t_per_yr"].astype(float)
        frame["facility_intake_t_per_yr"] = chosen["facility_id"].map(capacity).astype(float).to_numpy()
    else:
        frame["facility_intake_t_per_yr"] = np.nan
    return _locate(_with_energy(frame, energy_demands(region, primary_materials)), region)


def _locate(frame: pd.DataFrame, region: Region) -> pd.DataFrame:
    where = region.facilities.set_index("facility_id")[["lat", "lon"]]
    frame = frame.join(where, on="facility_id")
    return frame.reset_index(drop=True)


def _facility_pairs(tree_s: cKDTree, tree_d: cKDTree, radius_km: float) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (i, j) of supply and demand points within ``radius_km`` great-circle, via their k-d trees."""
    if tree_s.n == 0 or tree_d.n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    # The ndarray output keeps pairs at distance 0 (a facility's own supply and demand), each pair once.
    pairs = tree_s.sparse_distance_matrix(tree_d, _chord(radius_km * _SPHERE_MARGIN), output_type="ndarray")
    return pairs["i"].astype(np.int64), pairs["j"].astype(np.int64)


def _groups(inverse: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows grouped by ``inverse`` (their group number, every group 0..max present): the order that lists them
    group by group (stable), and each group's start in that order and size."""
    order = np.argsort(inverse, kind="stable")
    count = np.bincount(inverse)
    return order, np.cumsum(count) - count, count


def _expand(fi: np.ndarray, fj: np.ndarray, s_rows: np.ndarray, s_inverse: np.ndarray, d_rows: np.ndarray,
            d_inverse: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Facility pairs to flow pairs: every supply flow of facility ``fi`` with every demand flow of facility
    ``fj`` (usually one each), with numpy only. ``s_inverse`` is the facility of each of ``s_rows`` (likewise
    for demands). Returns each arc's supply and demand row and the pair it came from, or None for the pair
    when that is the identity (one flow per facility), which spares the callers an index pass."""
    s_order, s_start, s_count = _groups(s_inverse)
    d_order, d_start, d_count = _groups(d_inverse)
    s_sorted, d_sorted = s_rows[s_order], d_rows[d_order]
    if (s_count == 1).all() and (d_count == 1).all():
        return s_sorted[fi], d_sorted[fj], None
    cs, cd = s_count[fi], d_count[fj]
    per_pair = cs * cd
    pair_of = np.repeat(np.arange(len(fi)), per_pair)
    offset = np.arange(per_pair.sum()) - np.repeat(np.cumsum(per_pair) - per_pair, per_pair)
    cd_rep = cd[pair_of]
    s_out = s_sorted[s_start[fi[pair_of]] + offset // cd_rep]
    d_out = d_sorted[d_start[fj[pair_of]] + offset % cd_rep]
    return s_out, d_out, pair_of


def _stable_argsort(key: np.ndarray) -> np.ndarray:
    """``np.argsort(key, kind="stable")`` for non-negative integer keys, by 16-bit digits, least significant
    first: numpy radix-sorts 16-bit integers in linear time but merge-sorts wider ones (about twice as slow
    on millions of arc keys)."""
    order = np.argsort((key & 0xFFFF).astype(np.uint16), kind="stable")
    top, shift = int(key.max(initial=0)), 16
    while top >> shift:
        digit = ((key >> shift) & 0xFFFF).astype(np.uint16)
        order = order[np.argsort(digit[order], kind="stable")]
        shift += 16
    return order


def _unique_pairs(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For integer keys: the position of the first entry of each distinct key, and each entry's number among
    the distinct keys (in key order)."""
    order = _stable_argsort(key)
    sorted_key = key[order]
    first = np.r_[True, sorted_key[1:] != sorted_key[:-1]] if len(key) else np.zeros(0, dtype=bool)
    number = np.empty(len(key), dtype=np.int64)
    number[order] = np.cumsum(first) - 1
    return order[first], number


def _arc_order(s: np.ndarray, d: np.ndarray, ratio_of: Callable[[], np.ndarray], n_demands: int,
               within: np.ndarray) -> np.ndarray:
    """Positions of the arcs to keep, ordered by supply then demand: one arc per (supply, demand) pair.

    When two substitution rows make the same pair compatible, the better ratio wins (the earlier of equals)
    among the rows whose distance limit the pair is ``within``: a row with a better ratio but a shorter limit
    must not knock out the other row's arc. ``ratio_of()`` gives each arc's ratio and is only called then,
    as that is rare. Without repeated pairs every arc is returned, in order, and the caller screens the
    distance."""
    key = s * max(n_demands, 1) + d
    order = _stable_argsort(key)
    sorted_key = key[order]
    if not (sorted_key[1:] == sorted_key[:-1]).any():
        return order
    eligible = np.flatnonzero(within)
    key = key[eligible]
    order = np.lexsort((-ratio_of()[eligible], key))
    sorted_key = key[order]
    return eligible[order[np.r_[True, sorted_key[1:] != sorted_key[:-1]]]]


def _pair_distances(sf: np.ndarray, df: np.ndarray, lat: np.ndarray, lon: np.ndarray, circuity: float
                    ) -> np.ndarray:
    """Road km between facilities ``sf`` and ``df``: geodesic km times circuity, and 0 within a facility."""
    distance = _geodesic_km_in_place(lat[sf], lon[sf], lat[df], lon[df])
    distance *= circuity
    distance[sf == df] = 0.0
    return distance


def _take(column: pd.Series, positions: np.ndarray) -> Any:
    """``column``'s values at ``positions``, in the dtype a frame built from a numpy object array of them gets.

    A column of pandas' default string dtype is taken as its own array: the object array would make pandas
    check millions of labels one by one to infer that same dtype again. (An empty object array stays object.)"""
    if column.dtype == _INFERRED_STRINGS and len(positions):
        return column.array.take(positions)
    return column.to_numpy()[positions]


def _quality_fails(arc_s: np.ndarray, arc_d: np.ndarray, supply_quality: pd.DataFrame,
                   demand_quality: pd.DataFrame, n_supplies: int, n_demands: int) -> np.ndarray:
    """Per arc, whether its demand bounds a parameter its supply has no measurement of (the hard quality screen).

    Each flow's parameters are a bit mask (one bit per bounded parameter, 64 to a word), so an arc costs two
    lookups and a bitwise test per word, whatever the number of parameters per flow."""
    fails = np.zeros(len(arc_s), dtype=bool)
    if demand_quality.empty or len(arc_s) == 0:
        return fails
    bounded = pd.Index(pd.unique(demand_quality["parameter"]))  # parameters no demand bounds do not matter
    d_code = bounded.get_indexer(demand_quality["parameter"])
    s_code = bounded.get_indexer(supply_quality["parameter"])  # -1: not bounded anywhere
    d_rows = demand_quality["d"].to_numpy(np.int64)
    s_rows = supply_quality["s"].to_numpy(np.int64)
    for first in range(0, len(bounded), 64):
        needed = _bit_masks(d_rows, d_code - first, n_demands)
        measured = _bit_masks(s_rows, s_code - first, n_supplies)
        fails |= (needed[arc_d] & ~measured[arc_s]) != 0
    return fails


def _bit_masks(rows: np.ndarray, bits: np.ndarray, n_rows: int) -> np.ndarray:
    """Per row, a uint64 with bit ``b`` set for each (row, b) given, for the bits 0..63 (others are ignored)."""
    use = (bits >= 0) & (bits < 64)
    masks = np.zeros(n_rows, dtype=np.uint64)
    np.bitwise_or.at(masks, rows[use], np.left_shift(np.uint64(1), bits[use].astype(np.uint64)))
    return masks


def _override_table(region: Region, facility_index: dict[Any, int], n_facilities: int
                    ) -> tuple[np.ndarray, np.ndarray]:
    """The region's arc overrides between known facilities: their facility pair keys (supply facility *
    n_facilities + demand facility), sorted, and per key (distance_km, cost_per_t, co2e_per_t), NaN where not
    given. The last row given for a pair wins."""
    given = {(r.supply_facility, r.demand_facility): (r.distance_km, r.cost_per_t, r.co2e_per_t,
                                                       getattr(r, "capacity_t_per_yr", np.nan))
             for r in region.arcs.itertuples()}
    known = {facility_index[a] * n_facilities + facility_index[b]: values for (a, b), values in given.items()
             if a in facility_index and b in facility_index}
    keys = np.array(sorted(known), dtype=np.int64)
    return keys, np.array([known[k] for k in keys], dtype=float).reshape(-1, 4)


def _apply_overrides(pair_key: np.ndarray, distance: np.ndarray, override_keys: np.ndarray,
                     override_values: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """Overridden distances written into ``distance`` (per facility pair); returns the overriding transport cost,
    CO2e per t and route capacity (t/yr) per pair (NaN: none given), or None for all when nothing is overridden."""
    if not len(override_keys) or not len(pair_key):
        return None, None, None
    at = np.minimum(np.searchsorted(override_keys, pair_key), len(override_keys) - 1)
    hit = np.flatnonzero(override_keys[at] == pair_key)
    given = override_values[at[hit]]
    distance[hit] = np.where(np.isnan(given[:, 0]), distance[hit], given[:, 0])
    cost, co2, capacity = (np.full(len(pair_key), np.nan) for _ in range(3))
    cost[hit], co2[hit], capacity[hit] = given[:, 1], given[:, 2], given[:, 3]
    return cost, co2, capacity


def _pair_costs(sf: np.ndarray, df: np.ndarray, lat: np.ndarray, lon: np.ndarray, circuity: float,
                n_facilities: int, override_keys: np.ndarray, override_values: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """Per facility pair: road km, and the overriding transport cost, CO2e per t and capacity
    (see ``_apply_overrides``).

    A facility pair recurs across substitution rows (e.g. a brewery's yeast and spent grain to one farm), and
    the geodesic is the costliest step per pair (about 0.6 µs), so it runs once per distinct pair."""
    key = sf * n_facilities + df
    distinct, number = _unique_pairs(key)
    distance = _pair_distances(sf[distinct], df[distinct], lat, lon, circuity)[number]
    cost, co2, capacity = _apply_overrides(key, distance, override_keys, override_values)
    return distance, cost, co2, capacity


def _limits(s: np.ndarray, d: np.ndarray, sub: np.ndarray, s_limit: np.ndarray, d_limit: np.ndarray,
            sub_limit: np.ndarray, cap: Any) -> np.ndarray:
    """Per arc, its distance limit: the smaller of its supply's and demand's own, else its substitution row's
    (the row's own, its material's or the region default), and never above the cap."""
    limit = s_limit[s]
    np.fmin(limit, d_limit[d], out=limit)
    np.copyto(limit, sub_limit[sub], where=np.isnan(limit))
    if cap is not None:
        np.minimum(limit, float(cap), out=limit)
    return limit


def _joined(pieces: list[tuple[np.ndarray, ...]], names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The pieces' arrays concatenated per position, by name. Empties ``pieces``, so that their memory is reused
    instead of held twice (at millions of arcs, fresh memory costs page faults)."""
    joined = {name: (np.concatenate([p[k] for p in pieces]) if pieces else np.zeros(0, dtype=np.int64))
              for k, name in enumerate(names)}
    pieces.clear()
    return joined


def candidates(region: Region, **overrides: Any) -> Candidates:
    """Supplies, demands and the screened candidate arcs of a region.

    Overrides (``max_distance_km``, ``circuity``, ``transport_cost_per_tkm``, ``transport_co2_per_tkm``,
    ``carbon_price``, ``internal_reuse``) replace the region defaults for this run. The distance limit of an
    arc is the most specific one given: the flow's own (the smaller of supply and demand flow), else the
    substitution's, else the secondary material's, else the region default.
    """
    return candidates_of(prepare(region, **overrides), None)


@dataclass
class Prepared:
    """Everything the arcs of any set of supplies are made from: the whole supplies and demands tables, the
    run's parameters and per-substitution constants (symbiosis.tiles generates the arcs of one tile of
    supplies at a time from one of these; :func:`candidates` of all supplies at once)."""

    region: Region
    parameters: dict[str, Any]
    supplies: pd.DataFrame
    demands: pd.DataFrame
    supply_quality: pd.DataFrame
    demand_quality: pd.DataFrame
    lat: np.ndarray
    lon: np.ndarray
    points: np.ndarray
    s_fac: np.ndarray
    d_fac: np.ndarray
    override_keys: np.ndarray
    override_values: np.ndarray
    #: Per substitution row: ratio, processing cost, processing CO2e, distance limit, max share (NaN: unused).
    sub_ratio: np.ndarray
    sub_cost: np.ndarray
    sub_co2: np.ndarray
    sub_limit: np.ndarray
    sub_share: np.ndarray
    #: Per substitution row that reaches something: (k, supply rows, demand rows, demand facilities, each
    #: demand row's facility number among them, k-d tree of those facilities, search radius in km).
    reach: list[tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray, cKDTree, float]]


def prepare(region: Region, **overrides: Any) -> Prepared:
    """The supplies, demands, quality tables and substitution constants of a region (no arcs yet)."""
    parameters = resolve_parameters(region, **overrides)
    circuity = float(parameters["circuity"])  # type: ignore[arg-type]
    default_limit = float(parameters["max_distance_km"])  # type: ignore[arg-type]
    cap = parameters.get("max_distance_cap_km")
    reference = region.reference
    substitutions = reference.substitutions
    supplies = _supplies(region)
    demands = _demands(region, set(substitutions["primary_material"]) if not substitutions.empty else set())
    facility_index = {fid: k for k, fid in enumerate(region.facilities["facility_id"])}
    lat = region.facilities["lat"].to_numpy(float)
    lon = region.facilities["lon"].to_numpy(float)
    points = _xyz(lat, lon)
    n_facilities = len(region.facilities)
    override_keys, override_values = _override_table(region, facility_index, n_facilities)
    s_fac = supplies["facility_id"].map(facility_index).to_numpy(np.int64)
    d_fac = demands["facility_id"].map(facility_index).to_numpy(np.int64)
    s_limit = supplies["max_distance_km"].to_numpy(float)
    d_limit = demands["max_distance_km"].to_numpy(float)
    material_limit = reference.materials["max_distance_km"] if not reference.materials.empty else pd.Series(dtype=float)

    # Per substitution row: its constants, which the arcs look up by row number (no per-arc copies).
    n_subs = len(substitutions)
    sub_ratio = np.full(n_subs, np.nan)
    sub_cost = np.full(n_subs, np.nan)
    sub_co2 = np.full(n_subs, np.nan)
    sub_limit = np.full(n_subs, np.nan)
    sub_share = np.full(n_subs, np.nan)
    reach = []
    supply_groups = {m: g.index.to_numpy() for m, g in supplies.groupby("material")}
    demand_groups = {m: g.index.to_numpy() for m, g in demands.groupby("material")}
    for k, sub in enumerate(substitutions.itertuples()):
        s_rows = supply_groups.get(sub.secondary_material)
        d_rows = demand_groups.get(sub.primary_material)
        if s_rows is None or d_rows is None:
            continue
        sub_limit_km = sub.max_distance_km
        mat_limit = material_limit.get(sub.secondary_material, np.nan)
        pair_default = (sub_limit_km if not math.isnan(sub_limit_km)
                        else mat_limit if not math.isnan(mat_limit) else default_limit)
        sub_ratio[k], sub_cost[k], sub_co2[k] = sub.ratio, sub.processing_cost_per_t, sub.processing_co2e_per_t
        sub_limit[k], sub_share[k] = pair_default, sub.max_share
        flow_limits = np.concatenate([s_limit[s_rows], d_limit[d_rows]])
        radius = max([pair_default, *flow_limits[~np.isnan(flow_limits)]]) / circuity
        if cap is not None:
            radius = min(radius, float(cap) / circuity)  # type: ignore[arg-type]
        d_facs, d_inverse = np.unique(d_fac[d_rows], return_inverse=True)
        reach.append((k, s_rows, d_rows, d_facs, d_inverse, cKDTree(points[d_facs]), radius))
    supply_quality, demand_quality = _quality_tables(region, supplies, demands)
    return Prepared(region=region, parameters=parameters, supplies=supplies, demands=demands,
                    supply_quality=supply_quality, demand_quality=demand_quality, lat=lat, lon=lon, points=points,
                    s_fac=s_fac, d_fac=d_fac, override_keys=override_keys, override_values=override_values,
                    sub_ratio=sub_ratio, sub_cost=sub_cost, sub_co2=sub_co2, sub_limit=sub_limit,
                    sub_share=sub_share, reach=reach)


def candidates_of(prepared: Prepared, supply_rows: np.ndarray | None) -> Candidates:
    """The candidates of ``prepared`` with the arcs out of the supplies at positions ``supply_rows`` only
    (None: every supply). The supplies, demands and quality tables are whole either way; the arcs are
    exactly the rows of the whole candidates' arc table whose supply is in ``supply_rows``, in the same
    order (by supply, then demand), and the screening counts are those of these supplies (0 elsewhere)."""
    started = time.perf_counter()
    region, parameters = prepared.region, prepared.parameters
    circuity = float(parameters["circuity"])  # type: ignore[arg-type]
    internal_reuse = bool(parameters["internal_reuse"])
    cap = parameters.get("max_distance_cap_km")
    supplies, demands = prepared.supplies, prepared.demands
    lat, lon, points = prepared.lat, prepared.lon, prepared.points
    n_facilities = len(region.facilities)
    override_keys, override_values = prepared.override_keys, prepared.override_values
    s_fac, d_fac = prepared.s_fac, prepared.d_fac
    s_limit = supplies["max_distance_km"].to_numpy(float)
    d_limit = demands["max_distance_km"].to_numpy(float)
    sub_ratio, sub_cost, sub_co2 = prepared.sub_ratio, prepared.sub_cost, prepared.sub_co2
    sub_limit, sub_share = prepared.sub_limit, prepared.sub_share
    wanted_supply = None
    if supply_rows is not None:
        wanted_supply = np.zeros(len(supplies), dtype=bool)
        wanted_supply[np.asarray(supply_rows, dtype=np.int64)] = True

    # Per substitution row: the facility pairs it reaches (sf, df) and its arcs (s, d, pair number).
    pair_pieces: list[tuple[np.ndarray, ...]] = []
    arc_pieces: list[tuple[np.ndarray, ...]] = []
    arc_subs: list[int] = []
    arc_counts: list[int] = []
    n_pairs = 0
    n_compatible = np.zeros(len(supplies), dtype=np.int64)
    nearest_compatible = np.full(len(supplies), np.nan)
    for k, s_rows, d_rows, d_facs, d_inverse, tree_d, radius in prepared.reach:
        if wanted_supply is not None:
            s_rows = s_rows[wanted_supply[s_rows]]
            if len(s_rows) == 0:
                continue
        s_facs, s_inverse = np.unique(s_fac[s_rows], return_inverse=True)
        tree_s = cKDTree(points[s_facs])
        fi, fj = _facility_pairs(tree_s, tree_d, radius)
        # Arc overrides make a pair a candidate even beyond the spatial radius (the user knows the route).
        # (The k-d tree gives each pair once; only added overrides can repeat one.) The pair keys are local
        # (fi * len(d_facs) + fj), in the same order as the facility pair keys as both id lists are sorted.
        if len(override_keys):
            o_s, o_d = override_keys // n_facilities, override_keys % n_facilities
            wanted = np.isin(o_s, s_facs) & np.isin(o_d, d_facs)
            if wanted.any():
                local = np.searchsorted(s_facs, o_s[wanted]) * len(d_facs) + np.searchsorted(d_facs, o_d[wanted])
                keys = np.unique(np.concatenate([fi * len(d_facs) + fj, local]))
                fi, fj = keys // len(d_facs), keys % len(d_facs)
        if not internal_reuse:
            external = s_facs[fi] != d_facs[fj]
            fi, fj = fi[external], fj[external]
        # Screening: how many compatible demands each supply has anywhere, and the nearest one. Within one
        # substitution row each supply appears once, so plain fancy-index updates are exact.
        nearest_chord, _ = tree_d.query(points[s_facs], k=1)
        nearest = _great_circle_from_chord(np.atleast_1d(nearest_chord)) * circuity
        n_compatible[s_rows] += len(d_rows)
        nearest_compatible[s_rows] = np.fmin(nearest_compatible[s_rows], nearest[s_inverse])
        if len(fi) == 0:
            continue
        s_arc, d_arc, pair_of = _expand(fi, fj, s_rows, s_inverse, d_rows, d_inverse)
        pair_pieces.append((s_facs[fi], d_facs[fj]))
        arc_pieces.append((s_arc, d_arc, n_pairs + (np.arange(len(fi)) if pair_of is None else pair_of)))
        arc_subs.append(k)
        arc_counts.append(len(s_arc))
        n_pairs += len(fi)

    # Arrays over all arcs (in substitution order) and over all facility pairs. Intermediates of millions of
    # entries are dropped as soon as they are used: fresh memory is paid in page faults.
    arcs = _joined(arc_pieces, ("s", "d", "pair"))
    arcs["sub"] = np.repeat(np.array(arc_subs, dtype=np.int64), arc_counts)
    pairs = _joined(pair_pieces, ("sf", "df"))
    pair_distance, pair_cost, pair_co2, pair_capacity = _pair_costs(
        pairs["sf"], pairs["df"], lat, lon, circuity, n_facilities, override_keys, override_values)
    del pairs

    # One arc per (supply, demand), ordered; the distance and quality screens run per arc in the joined order
    # (elementwise), so that the arcs kept are gathered once, at the end.
    arcs["distance_km"] = pair_distance[arcs["pair"]]
    del pair_distance
    arcs["max_distance_km"] = _limits(arcs["s"], arcs["d"], arcs["sub"], s_limit, d_limit, sub_limit, cap)
    within = arcs["distance_km"] <= arcs["max_distance_km"] + 1e-9
    order = _arc_order(arcs["s"], arcs["d"], lambda: sub_ratio[arcs["sub"]], len(demands), within)
    kept = np.zeros(len(arcs["s"]), dtype=bool)
    kept[order] = True
    within &= kept
    supply_quality, demand_quality = prepared.supply_quality, prepared.demand_quality
    fails = _quality_fails(arcs["s"], arcs["d"], supply_quality, demand_quality, len(supplies), len(demands))
    n_within = np.bincount(arcs["s"][within], minlength=len(supplies))
    n_quality_fail = np.bincount(arcs["s"][within & fails], minlength=len(supplies))
    final = order[(within & ~fails)[order]]
    del order, kept, within, fails
    if pair_cost is None:
        del arcs["pair"]  # only overrides need it
    arcs = {name: values[final] for name, values in arcs.items()}
    del final

    s, d, sub = arcs["s"], arcs["d"], arcs["sub"]
    ratio, share = sub_ratio[sub], sub_share[sub]
    tkm_cost = float(parameters["transport_cost_per_tkm"])  # type: ignore[arg-type]
    tkm_co2 = float(parameters["transport_co2_per_tkm"])  # type: ignore[arg-type]
    transport_cost, transport_co2 = arcs["distance_km"] * tkm_cost, arcs["distance_km"] * tkm_co2
    if pair_cost is not None and pair_co2 is not None:
        pair = arcs["pair"]
        transport_cost = np.where(np.isnan(pair_cost[pair]), transport_cost, pair_cost[pair])
        transport_co2 = np.where(np.isnan(pair_co2[pair]), transport_co2, pair_co2[pair])
    demand_amount = demands["amount_t_per_yr"].to_numpy(float)[d]
    # A substitution's own max share (e.g. fly ash ≤ 30 % of the clay it replaces) caps the arc: ρ·x ≤ share·r_d.
    capacity = np.where(share < 1.0, share * demand_amount / ratio, np.nan)
    if pair_capacity is not None:
        # A route capacity from arcs.csv bounds the arc too: the smaller of the two (NaN: none).
        capacity = np.fmin(capacity, pair_capacity[arcs["pair"]])
    # copy=False: the columns are fresh arrays owned by nothing else, and consolidating the floats into one
    # block would copy hundreds of MB of new memory (a third of a second at 3M arcs) for no gain.
    result = pd.DataFrame({
        "s": s,
        "d": d,
        "supply_id": _take(supplies["supply_id"], s),
        "demand_id": _take(demands["demand_id"], d),
        "supply_facility": _take(region.facilities["facility_id"], s_fac[s]),
        "demand_facility": _take(region.facilities["facility_id"], d_fac[d]),
        "distance_km": arcs["distance_km"],
        "max_distance_km": arcs["max_distance_km"],
        "ratio": ratio,
        "processing_cost_per_t": sub_cost[sub],
        "processing_co2e_per_t": sub_co2[sub],
        "transport_cost_per_t": transport_cost,
        "transport_co2e_per_t": transport_co2,
        "capacity_t_per_yr": capacity,
    }, columns=ARC_COLUMNS, copy=False)
    result, screened, n_no_permit = _permit_screen(region, supplies, result)
    screening = pd.DataFrame({
        "supply_id": supplies["supply_id"],
        "n_compatible": n_compatible,
        "nearest_compatible_km": nearest_compatible,
        "n_within_distance": n_within,
        "n_quality_fail": n_quality_fail,
        "n_arcs": np.bincount(result["s"].to_numpy(np.int64), minlength=len(supplies)),
        "n_no_permit": n_no_permit,
    })
    logger.info("candidates: %d supplies, %d demands, %d arcs in %.2f s", len(supplies), len(demands),
                len(result), time.perf_counter() - started)
    return apply_energy(region, Candidates(
        supplies=supplies[SUPPLY_COLUMNS + ["max_distance_km", "ewc_code", "hazardous", "needs_permit"]],
        demands=demands[DEMAND_COLUMNS + ["max_distance_km", "max_intake_t_per_yr", "facility_intake_t_per_yr"]],
        arcs=result,
        supply_quality=supply_quality,
        demand_quality=demand_quality,
        screening=screening,
        parameters=parameters,
        permit_screened=screened,
        permit_limits=permits.limit_table(region.permits),
        **_processor_fields(region, supplies, demands),
    ))


def _processor_fields(region: Region, supplies: pd.DataFrame, demands: pd.DataFrame) -> dict[str, Any]:
    from symbiosis.network.processors import processor_tables

    if getattr(region, "processors", None) is None or len(region.processors) == 0:  # type: ignore[arg-type]
        return {}
    table, links = processor_tables(region.processors, supplies, demands)
    return {"processors": table, "processor_links": links}


def _permit_screen(region: Region, supplies: pd.DataFrame, arcs: pd.DataFrame
                   ) -> tuple[pd.DataFrame, pd.DataFrame | None, np.ndarray]:
    """Arcs of streams that need a permit and whose receiver has none for their EWC code, screened out:
    (arcs kept, arcs screened or None, screened count per supply). Vectorised; nothing to do without such
    streams."""
    needs = supplies["needs_permit"].to_numpy(bool) if "needs_permit" in supplies else np.zeros(len(supplies), bool)
    n_no_permit = np.zeros(len(supplies), dtype=np.int64)
    if not needs.any() or len(arcs) == 0:
        return arcs, None, n_no_permit
    s = arcs["s"].to_numpy(np.int64)
    candidate = np.flatnonzero(needs[s])
    ok = permits.permitted(region.permits, arcs["demand_facility"].to_numpy()[candidate],
                           supplies["ewc_code"].to_numpy()[s[candidate]])
    drop = np.zeros(len(arcs), dtype=bool)
    drop[candidate[~ok]] = True
    if not drop.any():
        return arcs, None, n_no_permit
    n_no_permit = np.bincount(s[drop], minlength=len(supplies))
    return arcs[~drop].reset_index(drop=True), arcs[drop].reset_index(drop=True), n_no_permit


def _quality_tables(region: Region, supplies: pd.DataFrame, demands: pd.DataFrame
                    ) -> tuple[pd.DataFrame, pd.DataFrame]:
    quality = region.quality
    s_pos = pd.Series(np.arange(len(supplies)), index=supplies["supply_id"])
    d_pos = pd.Series(np.arange(len(demands)), index=demands["demand_id"])
    measured = quality[(quality["bound"] == "") & quality["flow_id"].isin(s_pos.index)]
    supply_quality = pd.DataFrame({
        "s": measured["flow_id"].map(s_pos).to_numpy(np.int64),
        "parameter": measured["parameter"].to_numpy(),
        "value": measured["value"].to_numpy(float),
    })
    bounds = quality[quality["bound"].isin(["max", "min"]) & quality["flow_id"].isin(d_pos.index)]
    limit = bounds["value"].to_numpy(float)
    virgin = bounds["virgin_value"].to_numpy(float)
    default_virgin = np.where(bounds["bound"].to_numpy() == "max", 0.0, limit)
    demand_quality = pd.DataFrame({
        "d": bounds["flow_id"].map(d_pos).to_numpy(np.int64),
        "parameter": bounds["parameter"].to_numpy(),
        "bound": bounds["bound"].to_numpy(),
        "limit": limit,
        "virgin_value": np.where(np.isnan(virgin), default_virgin, virgin),
    })
    return supply_quality.reset_index(drop=True), demand_quality.reset_index(drop=True)
