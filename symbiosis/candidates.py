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
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from pyproj import Geod
from scipy.spatial import cKDTree

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


logger = logging.getLogger(__name__)

EARTH_RADIUS_KM = 6371.0088
_GEOD = Geod(ellps="WGS84")
# Geodesic (ellipsoid) and great-circle (sphere) distances differ by well under 1 %; the spatial index is
# queried on the sphere with this margin and every pair is then measured exactly on the ellipsoid.
_SPHERE_MARGIN = 1.01

SUPPLY_COLUMNS = ["supply_id", "facility_id", "material", "material_class", "category", "amount_t_per_yr", "fate",
                  "fate_kind",
                  "fate_cost_per_t", "fate_co2e_per_t", "lat", "lon"]
DEMAND_COLUMNS = ["demand_id", "facility_id", "material", "material_class", "density_t_per_m3",
                  "amount_t_per_yr", "virgin_price_per_t", "virgin_co2e_per_t", "max_secondary_share", "lat", "lon"]
ARC_COLUMNS = ["s", "d", "supply_id", "demand_id", "supply_facility", "demand_facility", "distance_km",
               "max_distance_km", "ratio", "processing_cost_per_t", "processing_co2e_per_t",
               "transport_cost_per_t", "transport_co2e_per_t", "capacity_t_per_yr"]


def resolve_parameters(region: Region, **overrides: Any) -> dict[str, object]:
    """Region defaults with the non-None overrides applied (the parameters a run used, for its record)."""
    parameters: dict[str, object] = dict(region.settings.defaults.model_dump())
    unknown = set(overrides) - set(parameters)
    if unknown:
        raise TypeError(f"unknown parameter(s): {', '.join(sorted(unknown))}; known: {', '.join(parameters)}")
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
    if len(lat1) == 0:
        return np.zeros(0)
    _, _, metres = _GEOD.inv(lon1, lat1, lon2, lat2)
    return np.asarray(metres, dtype=float) / 1000.0


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
    })
    return _locate(frame, region)


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
    })
    return _locate(frame, region)


def _locate(frame: pd.DataFrame, region: Region) -> pd.DataFrame:
    where = region.facilities.set_index("facility_id")[["lat", "lon"]]
    frame = frame.join(where, on="facility_id")
    return frame.reset_index(drop=True)


def _facility_pairs(s_points: np.ndarray, d_points: np.ndarray, radius_km: float) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (i, j) of supply and demand points within ``radius_km`` great-circle, via a k-d tree."""
    if len(s_points) == 0 or len(d_points) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    tree_d = cKDTree(d_points)
    tree_s = cKDTree(s_points)
    # The ndarray output keeps pairs at distance 0 (a facility's own supply and demand), each pair once.
    pairs = tree_s.sparse_distance_matrix(tree_d, _chord(radius_km * _SPHERE_MARGIN), output_type="ndarray")
    return pairs["i"].astype(np.int64), pairs["j"].astype(np.int64)


def _expand(pair_sf: np.ndarray, pair_df: np.ndarray, s_rows: np.ndarray, s_facs_of_rows: np.ndarray,
            d_rows: np.ndarray, d_facs_of_rows: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Facility pairs to flow pairs: every supply flow of the first facility with every demand flow of the
    second (usually one each), with numpy only."""
    def groups(rows: np.ndarray, facs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        order = np.argsort(facs, kind="stable")
        unique, start, count = np.unique(facs[order], return_index=True, return_counts=True)
        return rows[order], unique, start, count

    s_sorted, s_unique, s_start, s_count = groups(s_rows, s_facs_of_rows)
    d_sorted, d_unique, d_start, d_count = groups(d_rows, d_facs_of_rows)
    ps = np.searchsorted(s_unique, pair_sf)
    pd_ = np.searchsorted(d_unique, pair_df)
    cs, cd = s_count[ps], d_count[pd_]
    if (cs == 1).all() and (cd == 1).all():
        return pair_sf, pair_df, s_sorted[s_start[ps]], d_sorted[d_start[pd_]]
    per_pair = cs * cd
    pair_of = np.repeat(np.arange(len(pair_sf)), per_pair)
    offset = np.arange(per_pair.sum()) - np.repeat(np.cumsum(per_pair) - per_pair, per_pair)
    cd_rep = cd[pair_of]
    s_out = s_sorted[s_start[ps[pair_of]] + offset // cd_rep]
    d_out = d_sorted[d_start[pd_[pair_of]] + offset % cd_rep]
    return pair_sf[pair_of], pair_df[pair_of], s_out, d_out


def candidates(region: Region, **overrides: Any) -> Candidates:
    """Supplies, demands and the screened candidate arcs of a region.

    Overrides (``max_distance_km``, ``circuity``, ``transport_cost_per_tkm``, ``transport_co2_per_tkm``,
    ``carbon_price``, ``internal_reuse``) replace the region defaults for this run. The distance limit of an
    arc is the most specific one given: the flow's own (the smaller of supply and demand flow), else the
    substitution's, else the secondary material's, else the region default.
    """
    started = time.perf_counter()
    parameters = resolve_parameters(region, **overrides)
    circuity = float(parameters["circuity"])  # type: ignore[arg-type]
    default_limit = float(parameters["max_distance_km"])  # type: ignore[arg-type]
    internal_reuse = bool(parameters["internal_reuse"])
    reference = region.reference
    substitutions = reference.substitutions
    supplies = _supplies(region)
    demands = _demands(region, set(substitutions["primary_material"]) if not substitutions.empty else set())
    facility_index = {fid: k for k, fid in enumerate(region.facilities["facility_id"])}
    points = _xyz(region.facilities["lat"].to_numpy(float), region.facilities["lon"].to_numpy(float))
    overrides_table = region.arcs
    override_pairs = {(r.supply_facility, r.demand_facility): (r.distance_km, r.cost_per_t, r.co2e_per_t)
                      for r in overrides_table.itertuples()}

    n_facilities = len(region.facilities)
    override_keys = np.array(sorted(facility_index[a] * n_facilities + facility_index[b]
                                    for a, b in override_pairs if a in facility_index and b in facility_index),
                             dtype=np.int64)
    s_fac = supplies["facility_id"].map(facility_index).to_numpy(np.int64)
    d_fac = demands["facility_id"].map(facility_index).to_numpy(np.int64)
    material_limit = reference.materials["max_distance_km"] if not reference.materials.empty else pd.Series(dtype=float)

    pieces: list[dict[str, np.ndarray]] = []
    screening_rows = {
        "n_compatible": np.zeros(len(supplies), dtype=np.int64),
        "nearest_compatible_km": np.full(len(supplies), np.nan),
    }
    supply_groups = {m: g.index.to_numpy() for m, g in supplies.groupby("material")}
    demand_groups = {m: g.index.to_numpy() for m, g in demands.groupby("material")}
    for sub in substitutions.itertuples():
        s_rows = supply_groups.get(sub.secondary_material)
        d_rows = demand_groups.get(sub.primary_material)
        if s_rows is None or d_rows is None:
            continue
        sub_limit = sub.max_distance_km
        mat_limit = material_limit.get(sub.secondary_material, np.nan)
        pair_default = (sub_limit if not math.isnan(sub_limit)
                        else mat_limit if not math.isnan(mat_limit) else default_limit)
        flow_limits = np.concatenate([supplies["max_distance_km"].to_numpy()[s_rows],
                                      demands["max_distance_km"].to_numpy()[d_rows]])
        radius = max([pair_default, *flow_limits[~np.isnan(flow_limits)]]) / circuity
        if parameters.get("max_distance_cap_km") is not None:
            radius = min(radius, float(parameters["max_distance_cap_km"]) / circuity)  # type: ignore[arg-type]
        s_facs, s_inverse = np.unique(s_fac[s_rows], return_inverse=True)
        d_facs, d_inverse = np.unique(d_fac[d_rows], return_inverse=True)
        fi, fj = _facility_pairs(points[s_facs], points[d_facs], radius)
        keys = s_facs[fi] * n_facilities + d_facs[fj]
        # Arc overrides make a pair a candidate even beyond the spatial radius (the user knows the route).
        # (The k-d tree gives each pair once; only added overrides can repeat one.)
        if len(override_keys):
            wanted = override_keys[np.isin(override_keys // n_facilities, s_facs)
                                   & np.isin(override_keys % n_facilities, d_facs)]
            if len(wanted):
                keys = np.unique(np.concatenate([keys, wanted]))
        # Screening: how many compatible demands each supply has anywhere, and the nearest one.
        if len(d_facs):
            tree = cKDTree(points[d_facs])
            nearest_chord, _ = tree.query(points[s_facs], k=1)
            nearest = _great_circle_from_chord(np.atleast_1d(nearest_chord)) * circuity
            for local, row in enumerate(s_rows):
                screening_rows["n_compatible"][row] += len(d_rows)
                previous = screening_rows["nearest_compatible_km"][row]
                value = nearest[s_inverse[local]]
                screening_rows["nearest_compatible_km"][row] = value if math.isnan(previous) else min(previous, value)
        if len(keys) == 0:
            continue
        sf_arr, df_arr, s_arr, d_arr = _expand(keys // n_facilities, keys % n_facilities,
                                               s_rows, s_fac[s_rows], d_rows, d_fac[d_rows])
        if len(s_arr) == 0:
            continue
        n = len(s_arr)
        pieces.append({
            "sf": sf_arr, "df": df_arr, "s": s_arr, "d": d_arr,
            "ratio": np.full(n, float(sub.ratio)),
            "processing_cost_per_t": np.full(n, float(sub.processing_cost_per_t)),
            "processing_co2e_per_t": np.full(n, float(sub.processing_co2e_per_t)),
            "pair_limit": np.full(n, float(pair_default)),
            "pair_share": np.full(n, float(sub.max_share)),
        })

    columns = ["sf", "df", "s", "d", "ratio", "processing_cost_per_t", "processing_co2e_per_t", "pair_limit",
               "pair_share"]
    # From here on the arcs are a dict of numpy arrays, filtered with index arrays: no DataFrame copies of
    # millions of rows until the result is built once.
    arcs = {c: (np.concatenate([p[c] for p in pieces]) if pieces
                else np.zeros(0, np.int64 if c in ("sf", "df", "s", "d") else float)) for c in columns}

    def take(index: np.ndarray) -> None:
        for key in list(arcs):
            arcs[key] = arcs[key][index]

    if not internal_reuse:
        take(np.flatnonzero(arcs["sf"] != arcs["df"]))
    # One (supply, demand) pair may be compatible through two substitution rows; keep the better ratio,
    # and order the arcs by supply then demand.
    pair_key = arcs["s"] * max(len(demands), 1) + arcs["d"]
    order = np.lexsort((-arcs["ratio"], pair_key))
    first = np.r_[True, pair_key[order][1:] != pair_key[order][:-1]] if len(order) else np.zeros(0, bool)
    take(order[first])

    lat = region.facilities["lat"].to_numpy(float)
    lon = region.facilities["lon"].to_numpy(float)
    sf, df = arcs["sf"], arcs["df"]
    distance = geodesic_km(lat[sf], lon[sf], lat[df], lon[df]) * circuity
    distance[sf == df] = 0.0
    cost_override = np.full(len(sf), np.nan)
    co2_override = np.full(len(sf), np.nan)
    if override_pairs and len(sf):
        arc_keys = sf * n_facilities + df
        for (a, b), hit in override_pairs.items():
            if a not in facility_index or b not in facility_index:
                continue
            rows = np.flatnonzero(arc_keys == facility_index[a] * n_facilities + facility_index[b])
            if not math.isnan(hit[0]):
                distance[rows] = hit[0]
            cost_override[rows] = hit[1]
            co2_override[rows] = hit[2]
    flow_limit = np.fmin(supplies["max_distance_km"].to_numpy(float)[arcs["s"]],
                         demands["max_distance_km"].to_numpy(float)[arcs["d"]])
    limit = np.where(np.isnan(flow_limit), arcs["pair_limit"], flow_limit)
    cap = parameters.get("max_distance_cap_km")
    if cap is not None:
        limit = np.minimum(limit, float(cap))  # type: ignore[arg-type]
    arcs.update(distance_km=distance, max_distance_km=limit, cost_override=cost_override, co2_override=co2_override)
    within = np.flatnonzero(distance <= limit + 1e-9)
    n_within = np.bincount(arcs["s"][within], minlength=len(supplies))
    take(within)

    supply_quality, demand_quality = _quality_tables(region, supplies, demands)
    keep, n_quality_fail = _quality_screen(arcs["s"], arcs["d"], supply_quality, demand_quality, len(supplies))
    take(keep)

    tkm_cost = float(parameters["transport_cost_per_tkm"])  # type: ignore[arg-type]
    tkm_co2 = float(parameters["transport_co2_per_tkm"])  # type: ignore[arg-type]
    transport_cost = np.where(np.isnan(arcs["cost_override"]), arcs["distance_km"] * tkm_cost, arcs["cost_override"])
    demand_amount = demands["amount_t_per_yr"].to_numpy(float)[arcs["d"]]
    share = arcs["pair_share"]
    # A substitution's own max share (e.g. fly ash ≤ 30 % of the clay it replaces) caps the arc: ρ·x ≤ share·r_d.
    capacity = np.where(share < 1.0, share * demand_amount / arcs["ratio"], np.nan)
    facility_ids = region.facilities["facility_id"].to_numpy()
    result = pd.DataFrame({
        "s": arcs["s"].astype(np.int64),
        "d": arcs["d"].astype(np.int64),
        "supply_id": supplies["supply_id"].to_numpy()[arcs["s"]],
        "demand_id": demands["demand_id"].to_numpy()[arcs["d"]],
        "supply_facility": facility_ids[arcs["sf"]],
        "demand_facility": facility_ids[arcs["df"]],
        "distance_km": arcs["distance_km"],
        "max_distance_km": arcs["max_distance_km"],
        "ratio": arcs["ratio"],
        "processing_cost_per_t": arcs["processing_cost_per_t"],
        "processing_co2e_per_t": arcs["processing_co2e_per_t"],
        "transport_cost_per_t": transport_cost,
        "transport_co2e_per_t": np.where(np.isnan(arcs["co2_override"]), arcs["distance_km"] * tkm_co2,
                                         arcs["co2_override"]),
        "capacity_t_per_yr": capacity,
    }, columns=ARC_COLUMNS)
    screening = pd.DataFrame({
        "supply_id": supplies["supply_id"],
        "n_compatible": screening_rows["n_compatible"],
        "nearest_compatible_km": screening_rows["nearest_compatible_km"],
        "n_within_distance": n_within,
        "n_quality_fail": n_quality_fail,
        "n_arcs": np.bincount(result["s"].to_numpy(), minlength=len(supplies)),
    })
    logger.info("candidates: %d supplies, %d demands, %d arcs in %.2f s", len(supplies), len(demands),
                len(result), time.perf_counter() - started)
    return Candidates(
        supplies=supplies[SUPPLY_COLUMNS + ["max_distance_km"]],
        demands=demands[DEMAND_COLUMNS + ["max_distance_km"]],
        arcs=result,
        supply_quality=supply_quality,
        demand_quality=demand_quality,
        screening=screening,
        parameters=parameters,
    )


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


def _quality_screen(arc_s: np.ndarray, arc_d: np.ndarray, supply_quality: pd.DataFrame,
                    demand_quality: pd.DataFrame, n_supplies: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the arcs to keep (the supply is measured for every parameter the demand bounds), and per
    supply the number of arcs dropped for a missing measurement."""
    n_arcs = len(arc_s)
    if demand_quality.empty or n_arcs == 0:
        return np.arange(n_arcs), np.zeros(n_supplies, dtype=np.int64)
    codes = {p: k for k, p in enumerate(pd.unique(pd.concat([demand_quality["parameter"],
                                                             supply_quality["parameter"]])))}
    n_codes = len(codes)
    bounded = demand_quality[["d", "parameter"]].drop_duplicates()
    b_d = bounded["d"].to_numpy(np.int64)
    b_p = bounded["parameter"].map(codes).to_numpy(np.int64)
    order = np.argsort(b_d, kind="stable")
    b_d, b_p = b_d[order], b_p[order]
    n_demands = int(max(arc_d.max(initial=-1), b_d.max(initial=-1)) + 1)
    per_demand = np.bincount(b_d, minlength=n_demands)
    start = np.r_[0, np.cumsum(per_demand)[:-1]]
    # One row per (arc, bounded parameter of its demand).
    repeats = per_demand[arc_d]
    arc_of = np.repeat(np.arange(n_arcs), repeats)
    offset = np.arange(repeats.sum()) - np.repeat(np.cumsum(repeats) - repeats, repeats)
    needed = arc_s[arc_of] * n_codes + b_p[start[arc_d[arc_of]] + offset]
    measured = np.unique(supply_quality["s"].to_numpy(np.int64) * n_codes
                         + supply_quality["parameter"].map(codes).to_numpy(np.int64))
    found = np.zeros(len(needed), dtype=bool)
    if len(measured):
        at = np.searchsorted(measured, needed)
        found = measured[np.minimum(at, len(measured) - 1)] == needed
    failing = np.unique(arc_of[~found])
    n_fail = np.bincount(arc_s[failing], minlength=n_supplies)
    keep = np.ones(n_arcs, dtype=bool)
    keep[failing] = False
    return np.flatnonzero(keep), n_fail
