"""Dedicated store sites: a store that is its own place, receiving one material from several suppliers and
sending it to several receivers in later periods.

A site (a row of stores.csv with ``material`` and ``facility_id`` instead of ``flow_id``) becomes two
candidate rows of amount 0 at its facility: a **demand** (``<store_id>:in``, material M, ratio 1 on the arcs
from every supplier of M within reach, no virgin price, no emission, no share or intake limit) and a
**supply** (``<store_id>:out``, material M, no fate cost or emission, arcs to every receiver a substitution of
M reaches within reach, as a supplier of M would have). The site's store puts what its demand row receives and
takes what its supply row ships: demand row ``Σ_in x_a + y = put``, supply row ``Σ_out x_a + w = take``, and
``y = w = 0`` (a site buys nothing and dumps nothing); what its store loses goes to a fate at the dearest
fate cost among the suppliers it can receive from (``storage_arrays``). Arcs enter only the ordinary row
families (supply, demand, share, quality, intake), so column generation prices them unchanged. Equations:
docs/formulation.md, "Dedicated store sites".

Quality: a site declares no limits of its own: it takes any supplier of its material, and what comes out is
taken at the worst it could be, for each parameter the largest value among the suppliers it can receive from
(a parameter one of them has no measurement of is unknown at the site, so a receiver bounding it is out of
the site's reach, as it would be of that supplier's); a receiver that sets a lower bound (``min``) on a
parameter is out of reach too, since the worst for it would be the smallest value. Routes of arcs.csv do not
apply to a site's legs (their distance is the geodesic × circuity, as for any pair without a route). A stream
that needs a permit goes to a site only if the site's facility holds one for its EWC code, and a site that
may receive such streams sends only to receivers permitted for every one of their codes; its outgoing legs
count against a receiver's permitted tonnage under the first of those codes.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from symbiosis.candidates import Candidates, geodesic_km
from symbiosis.network import permits

if TYPE_CHECKING:
    from symbiosis.region import Region

#: The ids of a site's demand and supply rows: ``<store_id>:in`` and ``<store_id>:out``.
IN_SUFFIX, OUT_SUFFIX = ":in", ":out"


def site_stores(stores: pd.DataFrame) -> pd.DataFrame:
    """The dedicated store sites among the stores (a material given)."""
    if "material" not in stores.columns:
        return stores.iloc[:0]
    return stores[stores["material"].fillna("").astype(str) != ""]


def _blank(frame: pd.DataFrame, n: int) -> pd.DataFrame:
    """``n`` rows with ``frame``'s columns: NaN in numbers, "" in text, False in flags."""
    out = pd.DataFrame(index=range(n), columns=frame.columns)
    for column in frame.columns:
        dtype = frame[column].dtype
        if pd.api.types.is_bool_dtype(dtype):
            out[column] = False
        elif pd.api.types.is_numeric_dtype(dtype):
            out[column] = np.full(n, np.nan)
        else:
            out[column] = ""
    return out


def _concat(frame: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    if not len(rows):
        return frame
    if not len(frame):
        return rows[frame.columns].reset_index(drop=True)
    return pd.concat([frame, rows[frame.columns]], ignore_index=True)


def add_sites(region: Region, base: Candidates) -> Candidates:
    """``base`` with each dedicated store site's demand and supply rows and their arcs appended (see the
    module docstring); ``base`` itself when the region has no site."""
    time = region.time
    sites = site_stores(time.stores) if time is not None else pd.DataFrame()
    if not len(sites):
        return base
    params = base.parameters or {}
    circuity = float(params.get("circuity", 1.0))
    default_limit = float(params.get("max_distance_km", np.inf))
    cap = params.get("max_distance_cap_km")
    tkm_cost = float(params.get("transport_cost_per_tkm", 0.0))
    tkm_co2 = float(params.get("transport_co2_per_tkm", 0.0))
    materials = region.reference.materials
    where = region.facilities.set_index("facility_id")[["lat", "lon"]]
    sup, dem = base.supplies, base.demands
    n_s, n_d, k = len(sup), len(dem), len(sites)
    material = sites["material"].astype(str).to_numpy()
    facility = sites["facility_id"].astype(str).to_numpy()
    lat = where["lat"].reindex(facility).to_numpy(float)
    lon = where["lon"].reindex(facility).to_numpy(float)
    own_limit = pd.to_numeric(sites["max_distance_km"], errors="coerce").to_numpy(float)
    material_limit = (materials["max_distance_km"].reindex(material).to_numpy(float)
                      if "max_distance_km" in materials.columns else np.full(k, np.nan))
    store_id = sites["store_id"].astype(str).to_numpy()
    klass = materials["class"].reindex(material).to_numpy() if "class" in materials.columns else np.full(k, "")

    supplies = _blank(sup, k)
    supplies["supply_id"] = [s + OUT_SUFFIX for s in store_id]
    supplies["facility_id"], supplies["material"], supplies["material_class"] = facility, material, klass
    supplies["category"] = "store site"
    for column in ("amount_t_per_yr", "fate_cost_per_t", "fate_co2e_per_t"):
        supplies[column] = 0.0
    supplies["lat"], supplies["lon"], supplies["quantity"] = lat, lon, "mass"
    supplies["max_distance_km"] = own_limit
    demands = _blank(dem, k)
    demands["demand_id"] = [s + IN_SUFFIX for s in store_id]
    demands["facility_id"], demands["material"], demands["material_class"] = facility, material, klass
    demands["density_t_per_m3"] = (materials["density_t_per_m3"].reindex(material).to_numpy(float)
                                   if "density_t_per_m3" in materials.columns else np.nan)
    for column in ("amount_t_per_yr", "virgin_price_per_t", "virgin_co2e_per_t"):
        demands[column] = 0.0
    demands["max_secondary_share"] = 1.0
    demands["lat"], demands["lon"], demands["quantity"] = lat, lon, "mass"
    demands["max_distance_km"] = own_limit

    def limit(first: np.ndarray, second: np.ndarray, fallback: np.ndarray) -> np.ndarray:
        out = np.fmin(first, second)
        out = np.where(np.isnan(out), fallback, out)
        return np.minimum(out, float(cap)) if cap is not None else out  # type: ignore[arg-type]

    # Legs in: every supplier of the site's material (mass, not a site) within reach.
    s_material = sup["material"].astype(str).to_numpy()
    s_mass = sup["quantity"].astype(str).to_numpy() == "mass"
    pairs_s, pairs_k = np.nonzero((s_material[:, None] == material[None, :]) & s_mass[:, None])
    km_in = geodesic_km(sup["lat"].to_numpy(float)[pairs_s], sup["lon"].to_numpy(float)[pairs_s], lat[pairs_k],
                        lon[pairs_k]) * circuity
    reach_in = limit(pd.to_numeric(sup["max_distance_km"], errors="coerce").to_numpy(float)[pairs_s],
                     own_limit[pairs_k], np.where(np.isnan(material_limit), default_limit, material_limit)[pairs_k])
    ok = km_in <= reach_in + 1e-9
    # A stream that needs a permit (symbiosis.network.permits) goes only to a site whose facility holds one for
    # its EWC code, as to any receiver.
    needs = sup["needs_permit"].fillna(False).to_numpy(bool) if "needs_permit" in sup.columns else np.zeros(n_s, bool)
    codes = sup["ewc_code"].fillna("").astype(str).to_numpy() if "ewc_code" in sup.columns else np.full(n_s, "")
    if needs[pairs_s].any():
        ok &= ~needs[pairs_s] | permits.permitted(region.permits, facility[pairs_k], codes[pairs_s])
    pairs_s, pairs_k, km_in, reach_in = pairs_s[ok], pairs_k[ok], km_in[ok], reach_in[ok]
    # What leaves a site needs the permits of every stream that may enter it: the receiver must hold them all.
    site_codes: list[list[str]] = [sorted(set(codes[pairs_s[(pairs_k == j) & needs[pairs_s]]])) for j in range(k)]
    if "needs_permit" in supplies.columns:
        supplies["needs_permit"] = [bool(c) for c in site_codes]
    if "ewc_code" in supplies.columns:
        supplies["ewc_code"] = [c[0] if c else "" for c in site_codes]
    if "hazardous" in supplies.columns and "hazardous" in sup.columns:
        hazardous = sup["hazardous"].fillna(False).to_numpy(bool)
        supplies["hazardous"] = [bool(hazardous[pairs_s[pairs_k == j]].any()) for j in range(k)]

    # The site's quality: per parameter, the largest value among the suppliers it can receive from, known only
    # if every one of them measured it.
    sq = base.supply_quality
    site_quality = pd.DataFrame({"s": np.zeros(0, np.int64), "parameter": [], "value": np.zeros(0)})
    if sq is not None and len(sq) and len(pairs_s):
        legs = pd.DataFrame({"s": pairs_s, "k": pairs_k})
        n_in = legs.groupby("k").size()
        joined = legs.merge(sq[["s", "parameter", "value"]], on="s")
        per = joined.groupby(["k", "parameter"]).agg(value=("value", "max"), n=("s", "nunique")).reset_index()
        per = per[per["n"].to_numpy() == n_in.reindex(per["k"]).to_numpy()]
        site_quality = pd.DataFrame({"s": per["k"].to_numpy(np.int64) + n_s, "parameter": per["parameter"].to_numpy(),
                                     "value": per["value"].to_numpy(float)})

    # Legs out: to every receiver a substitution of the site's material reaches, within reach.
    subs = region.reference.substitutions
    d_material = dem["material"].astype(str).to_numpy()
    d_mass = dem["quantity"].astype(str).to_numpy() == "mass"
    out_pieces: list[pd.DataFrame] = []
    for sub in subs.itertuples():
        hit_k = np.flatnonzero(material == str(sub.secondary_material))
        hit_d = np.flatnonzero((d_material == str(sub.primary_material)) & d_mass)
        if not len(hit_k) or not len(hit_d):
            continue
        kk, dd = np.repeat(hit_k, len(hit_d)), np.tile(hit_d, len(hit_k))
        sub_limit = float(sub.max_distance_km)
        fallback = np.where(np.isnan(material_limit[kk]), default_limit, material_limit[kk]) \
            if np.isnan(sub_limit) else np.full(len(kk), sub_limit)
        out_pieces.append(pd.DataFrame({
            "k": kk, "d": dd, "ratio": float(sub.ratio), "processing_cost_per_t": float(sub.processing_cost_per_t),
            "processing_co2e_per_t": float(sub.processing_co2e_per_t), "share": float(sub.max_share),
            "reach": limit(own_limit[kk], pd.to_numeric(dem["max_distance_km"], errors="coerce").to_numpy(float)[dd],
                           fallback)}))
    out = pd.concat(out_pieces, ignore_index=True) if out_pieces else pd.DataFrame(
        columns=["k", "d", "ratio", "processing_cost_per_t", "processing_co2e_per_t", "share", "reach"])
    out = out.drop_duplicates(["k", "d"], keep="first")  # one arc per (site, receiver), as the generator keeps
    kk, dd = out["k"].to_numpy(np.int64), out["d"].to_numpy(np.int64)
    km_out = geodesic_km(lat[kk], lon[kk], dem["lat"].to_numpy(float)[dd], dem["lon"].to_numpy(float)[dd]) * circuity
    keep = km_out <= out["reach"].to_numpy(float) + 1e-9
    for j, needed in enumerate(site_codes):
        for code in needed:
            mine = kk == j
            keep[mine] &= permits.permitted(region.permits, dem["facility_id"].astype(str).to_numpy()[dd[mine]],
                                            np.full(int(mine.sum()), code))
    dq = base.demand_quality
    if dq is not None and len(dq) and len(kk):
        # A receiver bounding a parameter the site has no value of, or with a lower bound, is out of reach.
        legs = pd.DataFrame({"position": np.arange(len(kk)), "s": kk + n_s, "d": dd}).merge(
            dq[["d", "parameter", "bound"]], on="d")
        legs = legs.merge(site_quality[["s", "parameter", "value"]], on=["s", "parameter"], how="left")
        bad = legs.loc[(legs["bound"] == "min") | legs["value"].isna(), "position"].to_numpy(np.int64)
        keep[bad] = False
    out, kk, dd, km_out = out[keep], kk[keep], dd[keep], km_out[keep]

    arcs = base.arcs
    legs_in = _blank(arcs, len(pairs_s))
    legs_in["s"], legs_in["d"] = pairs_s, pairs_k + n_d
    legs_in["supply_id"] = sup["supply_id"].to_numpy()[pairs_s]
    legs_in["demand_id"] = demands["demand_id"].to_numpy()[pairs_k]
    legs_in["supply_facility"] = sup["facility_id"].to_numpy()[pairs_s]
    legs_in["demand_facility"] = facility[pairs_k]
    legs_in["distance_km"], legs_in["max_distance_km"], legs_in["ratio"] = km_in, reach_in, 1.0
    legs_in["processing_cost_per_t"] = legs_in["processing_co2e_per_t"] = 0.0
    legs_in["transport_cost_per_t"], legs_in["transport_co2e_per_t"] = km_in * tkm_cost, km_in * tkm_co2
    legs_in["capacity_t_per_yr"] = np.nan
    legs_out = _blank(arcs, len(kk))
    ratio = out["ratio"].to_numpy(float)
    legs_out["s"], legs_out["d"] = kk + n_s, dd
    legs_out["supply_id"] = supplies["supply_id"].to_numpy()[kk]
    legs_out["demand_id"] = dem["demand_id"].to_numpy()[dd]
    legs_out["supply_facility"] = facility[kk]
    legs_out["demand_facility"] = dem["facility_id"].to_numpy()[dd]
    legs_out["distance_km"], legs_out["max_distance_km"] = km_out, out["reach"].to_numpy(float)
    legs_out["ratio"] = ratio
    legs_out["processing_cost_per_t"] = out["processing_cost_per_t"].to_numpy(float)
    legs_out["processing_co2e_per_t"] = out["processing_co2e_per_t"].to_numpy(float)
    legs_out["transport_cost_per_t"], legs_out["transport_co2e_per_t"] = km_out * tkm_cost, km_out * tkm_co2
    share = out["share"].to_numpy(float)
    need = pd.to_numeric(dem["amount_t_per_yr"], errors="coerce").to_numpy(float)[dd]
    legs_out["capacity_t_per_yr"] = np.where(share < 1.0, share * need / ratio, np.nan)
    for legs in (legs_in, legs_out):  # the columns the generator leaves as numbers stay numbers
        for column in ("ratio", "distance_km", "max_distance_km", "capacity_t_per_yr"):
            legs[column] = legs[column].astype(float)

    screening = base.screening
    site_screening = _blank(screening, k)
    site_screening["supply_id"] = supplies["supply_id"].to_numpy()
    for column in site_screening.columns:
        if column != "supply_id":
            site_screening[column] = 0
    if "n_arcs" in site_screening.columns:
        site_screening["n_arcs"] = np.bincount(kk, minlength=k)
    return replace(
        base,
        supplies=_concat(sup, supplies), demands=_concat(dem, demands),
        arcs=_concat(arcs, pd.concat([legs_in, legs_out], ignore_index=True)),
        supply_quality=_concat(base.supply_quality, site_quality) if len(site_quality) else base.supply_quality,
        screening=_concat(screening, site_screening),
    )


def site_rows(base: Candidates, stores: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Per store (rows of ``stores``), its site's supply and demand positions in ``base`` (−1: no site)."""
    supply_pos = pd.Series(np.arange(len(base.supplies)), index=base.supplies["supply_id"].astype(str))
    demand_pos = pd.Series(np.arange(len(base.demands)), index=base.demands["demand_id"].astype(str))
    material = stores["material"].fillna("").astype(str) if "material" in stores.columns \
        else pd.Series("", index=stores.index)
    ids = stores["store_id"].astype(str)
    s = (ids + OUT_SUFFIX).map(supply_pos).where(material != "")
    d = (ids + IN_SUFFIX).map(demand_pos).where(material != "")
    return s.fillna(-1).to_numpy(np.int64), d.fillna(-1).to_numpy(np.int64)


def site_arcs(cands: Candidates, n_base_supplies: int, n_base_demands: int, sites: int
              ) -> tuple[np.ndarray, np.ndarray]:
    """Per arc of ``cands`` (base or time-expanded, rows ``t·S + s``), whether it leaves a site and whether it
    enters one (sites are the last ``sites`` rows of the base supplies and demands)."""
    arcs = cands.arcs
    if not sites or not len(arcs):
        return np.zeros(len(arcs), bool), np.zeros(len(arcs), bool)
    s = arcs["s"].to_numpy(np.int64) % n_base_supplies
    d = arcs["d"].to_numpy(np.int64) % n_base_demands
    return s >= n_base_supplies - sites, d >= n_base_demands - sites


def with_site_flows(region: Region, cands: Candidates, sites: int) -> Region:
    """A copy of ``region`` with each site's two flows (``<store_id>:in``, ``<store_id>:out``) at its facility,
    of the amounts ``cands`` gives its demand and supply rows (what it took in and sent out over the year, or a
    period), so that the exchanges' balances (symbiosis.balances) hold at the site; ``region`` without a site."""
    if not sites:
        return region
    sup, dem = cands.supplies.iloc[-sites:], cands.demands.iloc[-sites:]
    flows = _blank(region.flows, 2 * sites)
    flows["flow_id"] = [*dem["demand_id"].astype(str), *sup["supply_id"].astype(str)]
    flows["facility_id"] = [*dem["facility_id"].astype(str), *sup["facility_id"].astype(str)]
    flows["direction"] = ["in"] * sites + ["out"] * sites
    flows["category"] = "store site"
    flows["material"] = [*dem["material"].astype(str), *sup["material"].astype(str)]
    flows["quantity"] = "mass"
    flows["amount_t_per_yr"] = np.r_[pd.to_numeric(dem["amount_t_per_yr"], errors="coerce").to_numpy(float),
                                     pd.to_numeric(sup["amount_t_per_yr"], errors="coerce").to_numpy(float)]
    flows["exchangeable"] = True
    flows["data_quality"] = "modelled"
    flows["source"] = flows["origin"] = "store site"
    if "measured" in flows.columns:
        flows["measured"] = False
    out = region.copy()
    out.flows = _concat(region.flows, flows)
    return out


def zero_site_amounts(results: Any, sites: int) -> None:
    """A site makes and needs nothing: its supply and demand rows of ``results`` (the last ``sites`` rows) show
    amount 0, what it sent out and took in being their ``exchanged_t_per_yr`` and ``secondary_received_t_per_yr``
    (so that sums of the amounts, e.g. the virgin material bought in business as usual, count no site)."""
    if not sites:
        return
    for table in (results.supplies, results.demands):
        if "amount_t_per_yr" in table.columns:
            values = pd.to_numeric(table["amount_t_per_yr"], errors="coerce").to_numpy(float).copy()
            values[-sites:] = 0.0
            table["amount_t_per_yr"] = values
