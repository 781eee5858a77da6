"""References that do not come from the code under test, for tests that must catch a wrong answer.

- ``vincenty_km``: the WGS84 geodesic distance by Vincenty's inverse formula (T. Vincenty, "Direct and
  inverse solutions of geodesics on the ellipsoid with application of nested equations", Survey Review 23
  (176), 1975, pp. 88-93), written here from the paper's equations; symbiosis measures with pyproj's Geod
  (Karney's algorithm), so the two agree to well under a millimetre on the distances of a region.
- ``reference_lp``: the exchange LP of docs/formulation.md assembled from the raw columns of a Candidates'
  tables (supplies, demands, arcs, supply_quality, demand_quality) with scipy.sparse, solved by
  ``scipy.optimize.linprog`` (method ``highs``). It reads no ``symbiosis.exchange`` code: rows, signs and the
  objective are built again from the formulation.
- ``assert_kkt``: a certificate that a Solution's published duals are optimal: dual feasibility (reduced
  costs recomputed here from the raw arc data), complementary slackness and strong duality.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.optimize import OptimizeResult, linprog

WGS84_A_M = 6378137.0
WGS84_F = 1 / 298.257223563


def vincenty_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Geodesic distance (km) on the WGS84 ellipsoid by Vincenty's inverse iteration (not near-antipodal)."""
    a, f = WGS84_A_M, WGS84_F
    b = a * (1 - f)
    u1 = math.atan((1 - f) * math.tan(math.radians(lat1)))
    u2 = math.atan((1 - f) * math.tan(math.radians(lat2)))
    big_l = math.radians(lon2 - lon1)
    lam = big_l
    sin_u1, cos_u1, sin_u2, cos_u2 = math.sin(u1), math.cos(u1), math.sin(u2), math.cos(u2)
    for _ in range(200):
        sin_lam, cos_lam = math.sin(lam), math.cos(lam)
        sin_sigma = math.hypot(cos_u2 * sin_lam, cos_u1 * sin_u2 - sin_u1 * cos_u2 * cos_lam)
        if sin_sigma == 0.0:
            return 0.0  # the same point
        cos_sigma = sin_u1 * sin_u2 + cos_u1 * cos_u2 * cos_lam
        sigma = math.atan2(sin_sigma, cos_sigma)
        sin_alpha = cos_u1 * cos_u2 * sin_lam / sin_sigma
        cos2_alpha = 1 - sin_alpha**2
        cos_2sm = cos_sigma - 2 * sin_u1 * sin_u2 / cos2_alpha if cos2_alpha else 0.0
        c = f / 16 * cos2_alpha * (4 + f * (4 - 3 * cos2_alpha))
        previous = lam
        lam = big_l + (1 - c) * f * sin_alpha * (
            sigma + c * sin_sigma * (cos_2sm + c * cos_sigma * (-1 + 2 * cos_2sm**2)))
        if abs(lam - previous) < 1e-13:
            break
    else:  # pragma: no cover - only near-antipodal points fail to converge
        raise ArithmeticError("Vincenty's iteration did not converge")
    u_sq = cos2_alpha * (a**2 - b**2) / b**2
    big_a = 1 + u_sq / 16384 * (4096 + u_sq * (-768 + u_sq * (320 - 175 * u_sq)))
    big_b = u_sq / 1024 * (256 + u_sq * (-128 + u_sq * (74 - 47 * u_sq)))
    delta_sigma = big_b * sin_sigma * (cos_2sm + big_b / 4 * (
        cos_sigma * (-1 + 2 * cos_2sm**2) - big_b / 6 * cos_2sm * (-3 + 4 * sin_sigma**2) * (-3 + 4 * cos_2sm**2)))
    return b * big_a * (sigma - delta_sigma) / 1000.0


# --------------------------------------------------------------------------------------------------
# the exchange LP from the raw tables
# --------------------------------------------------------------------------------------------------


@dataclass
class ReferenceLP:
    """min c·v  s.t.  a_eq v = b_eq, a_ub v ≤ b_ub, bounds; columns x (arcs), w (supplies), y (demands)."""

    c: np.ndarray
    money: np.ndarray  # currency per unit of each column
    co2e: np.ndarray  # t CO2e per unit of each column
    a_eq: sp.csr_matrix
    b_eq: np.ndarray
    a_ub: sp.csr_matrix
    b_ub: np.ndarray
    upper: np.ndarray  # inf where a column has no upper bound
    n_a: int
    n_s: int
    n_d: int
    share_demand: np.ndarray  # demand position of each share row (rows 0 .. len-1 of a_ub)
    quality: pd.DataFrame  # d, parameter, bound of each quality row (the a_ub rows after the share rows)
    cap_row: int | None = None  # the emission cap row of a_ub, if any
    # Intake rows (a_ub, after quality and cap): the demand of each per-demand row, the facility of each
    # per-facility row, and where they start.
    intake_demand: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    intake_facility: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))
    intake_start: int = 0
    # Permit tonnage rows (a_ub, after the intake rows): (facility, EWC code) of each, and where they start.
    permit_keys: list[tuple[str, str]] = field(default_factory=list)
    permit_start: int = 0
    result: OptimizeResult | None = field(default=None, repr=False)

    def solve(self) -> OptimizeResult:
        bounds = np.column_stack([np.zeros(len(self.c)), np.where(np.isinf(self.upper), np.nan, self.upper)])
        self.result = linprog(self.c, A_ub=self.a_ub if self.a_ub.shape[0] else None,
                              b_ub=self.b_ub if self.a_ub.shape[0] else None, A_eq=self.a_eq, b_eq=self.b_eq,
                              bounds=[(lo, None if np.isnan(hi) else hi) for lo, hi in bounds], method="highs")
        return self.result

    def x(self) -> np.ndarray:
        assert self.result is not None and self.result.status == 0
        return np.asarray(self.result.x[: self.n_a])


def _amount(table: pd.DataFrame) -> np.ndarray:
    """Each row's amount: t/yr, or MWh/yr on heat rows (``quantity`` energy; docs/architecture.md)."""
    amount = table["amount_t_per_yr"].to_numpy(float)
    if "quantity" in table.columns:
        amount = np.where(table["quantity"].to_numpy() == "energy", table["amount_mwh_per_yr"].to_numpy(float), amount)
    return amount


def reference_lp(cand: Any, *, carbon_price: float = 0.0, weights: tuple[float, float] = (1.0, 0.0),
                 co2e_cap: float | None = None) -> ReferenceLP:
    """The LP of docs/formulation.md from ``cand``'s raw columns (nothing from symbiosis.exchange)."""
    arcs, sup, dem = cand.arcs, cand.supplies, cand.demands
    n_a, n_s, n_d = len(arcs), len(sup), len(dem)
    s = arcs["s"].to_numpy(np.int64)
    d = arcs["d"].to_numpy(np.int64)
    rho = arcs["ratio"].to_numpy(float)
    money = np.concatenate([
        arcs["transport_cost_per_t"].to_numpy(float) + arcs["processing_cost_per_t"].to_numpy(float),
        sup["fate_cost_per_t"].to_numpy(float), dem["virgin_price_per_t"].to_numpy(float)])
    co2e = np.concatenate([
        arcs["transport_co2e_per_t"].to_numpy(float) + arcs["processing_co2e_per_t"].to_numpy(float),
        sup["fate_co2e_per_t"].to_numpy(float), dem["virgin_co2e_per_t"].to_numpy(float)])
    w_cost, w_co2e = weights
    c = w_cost * (money + carbon_price * co2e) + w_co2e * co2e
    arc_col = np.arange(n_a)
    w_col = n_a + np.arange(n_s)
    y_col = n_a + n_s + np.arange(n_d)
    # Σ_out(s) x + w = a  (rows 0..n_s-1);  Σ_in(d) ρ x + y = r  (rows n_s..)
    a_eq = sp.coo_matrix((np.concatenate([np.ones(n_a), np.ones(n_s), rho, np.ones(n_d)]),
                          (np.concatenate([s, np.arange(n_s), n_s + d, n_s + np.arange(n_d)]),
                           np.concatenate([arc_col, w_col, arc_col, y_col]))), shape=(n_s + n_d, n_a + n_s + n_d))
    b_eq = np.concatenate([_amount(sup), _amount(dem)])
    # Share: Σ_in(d) ρ x ≤ σ r wherever σ < 1 (NaN means no limit).
    sigma = dem["max_secondary_share"].to_numpy(float)
    share_demand = np.flatnonzero(~np.isnan(sigma) & (sigma < 1.0))
    position = np.full(n_d, -1)
    position[share_demand] = np.arange(len(share_demand))
    on = position[d] >= 0
    rows = [position[d][on]]
    cols = [arc_col[on]]
    vals = [rho[on]]
    b_ub = [sigma[share_demand] * _amount(dem)[share_demand]]
    # Quality, the physical blend: Σ (c_sq − limit) x + (cv − limit) y ≤ 0 for a max, ≥ 0 (negated) for a min.
    dq = cand.demand_quality.reset_index(drop=True)
    quality = dq[["d", "parameter", "bound"]].copy() if len(dq) else pd.DataFrame(columns=["d", "parameter", "bound"])
    if len(dq):
        k0 = len(share_demand)
        sign = np.where(dq["bound"].to_numpy() == "max", 1.0, -1.0)
        value = cand.supply_quality.set_index(["s", "parameter"])["value"]
        terms = pd.DataFrame({"a": arc_col, "s": s, "d": d}).merge(
            dq[["d", "parameter", "limit"]].assign(k=np.arange(len(dq))), on="d")
        found = value.reindex(pd.MultiIndex.from_arrays([terms["s"], terms["parameter"]])).to_numpy(float)
        if np.isnan(found).any():
            raise ValueError("an arc's supply has no measurement of a parameter its demand bounds")
        rows.append(k0 + terms["k"].to_numpy())
        cols.append(terms["a"].to_numpy())
        vals.append(sign[terms["k"].to_numpy()] * (found - terms["limit"].to_numpy(float)))
        rows.append(k0 + np.arange(len(dq)))
        cols.append(y_col[dq["d"].to_numpy(np.int64)])
        vals.append(sign * (dq["virgin_value"].to_numpy(float) - dq["limit"].to_numpy(float)))
        b_ub.append(np.zeros(len(dq)))
    n_ub = len(share_demand) + len(dq)
    cap_row = None
    if co2e_cap is not None:
        cap_row = n_ub
        nz = np.flatnonzero(co2e)
        rows.append(np.full(len(nz), cap_row))
        cols.append(nz)
        vals.append(co2e[nz])
        b_ub.append(np.array([co2e_cap]))
        n_ub += 1
    # Intake, tonnes received: Σ_in(d) x ≤ L_d per demand with a limit; Σ over a facility's demands ≤ L_f.
    intake_start = n_ub
    limit_d = (dem["max_intake_t_per_yr"].to_numpy(float) if "max_intake_t_per_yr" in dem
               else np.full(n_d, np.nan))
    intake_demand = np.flatnonzero(~np.isnan(limit_d))
    row_of = np.full(n_d, -1)
    row_of[intake_demand] = n_ub + np.arange(len(intake_demand))
    hit = row_of[d] >= 0
    rows.append(row_of[d][hit])
    cols.append(arc_col[hit])
    vals.append(np.ones(int(hit.sum())))
    b_ub.append(limit_d[intake_demand])
    n_ub += len(intake_demand)
    intake_facility = np.zeros(0, dtype=object)
    if "facility_intake_t_per_yr" in dem:
        limit_f = dem.groupby("facility_id")["facility_intake_t_per_yr"].min().dropna()
        intake_facility = limit_f.index.to_numpy(dtype=object)
        facility_row = pd.Series(n_ub + np.arange(len(limit_f)), index=limit_f.index)
        arc_row = dem["facility_id"].map(facility_row).to_numpy(float)[d]
        hit = ~np.isnan(arc_row)
        rows.append(arc_row[hit].astype(np.int64))
        cols.append(arc_col[hit])
        vals.append(np.ones(int(hit.sum())))
        b_ub.append(limit_f.to_numpy(float))
        n_ub += len(limit_f)
    # Permits: Σ x over arcs of streams needing a permit with code e into facility f ≤ the permitted tonnage
    # (several rows of one facility and code add up; one without a tonnage lifts the limit).
    permit_start = n_ub
    permit_keys: list[tuple[str, str]] = []
    granted = getattr(cand, "permit_limits", None)
    if granted is not None and len(granted) and "needs_permit" in sup:
        tonnage: dict[tuple[str, str], float] = {}
        for row in granted.itertuples():
            key = (str(row.facility_id), str(row.ewc_code))
            tonnage[key] = tonnage.get(key, 0.0) + float(row.max_t_per_yr)
        needs = sup["needs_permit"].to_numpy(bool)
        codes = sup["ewc_code"].astype(str).to_numpy()
        receiver = arcs["demand_facility"].astype(str).to_numpy()
        for key, limit in tonnage.items():
            if np.isnan(limit):
                continue
            members = [a for a in range(n_a) if needs[s[a]] and codes[s[a]] == key[1] and receiver[a] == key[0]]
            permit_keys.append(key)
            rows.append(np.full(len(members), n_ub, np.int64))
            cols.append(np.asarray(members, np.int64))
            vals.append(np.ones(len(members)))
            b_ub.append(np.array([limit]))
            n_ub += 1
    a_ub = sp.coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                         shape=(n_ub, n_a + n_s + n_d))
    capacity = arcs["capacity_t_per_yr"].to_numpy(float)
    upper = np.concatenate([np.where(np.isnan(capacity), np.inf, capacity), np.full(n_s + n_d, np.inf)])
    a_eq, b_eq, a_ub, b_ub_all = a_eq.tocsr(), b_eq, a_ub.tocsr(), np.concatenate(b_ub)
    processors = getattr(cand, "processors", None)
    if processors is not None and len(processors):
        # Processors (docs/formulation.md): activity columns z after y; a linked supply row becomes
        # Σx + w − o·z = 0, a linked demand row Σρx + y − i·z = 0 and its share row Σρx − σ·i·z ≤ 0.
        links = cand.processor_links
        n_p = len(processors)
        side_out = (links["side"] == "out").to_numpy()
        row = links["row"].to_numpy(np.int64) + np.where(side_out, 0, n_s)
        p_col = links["p"].to_numpy(np.int64)
        per_unit = links["per_unit"].to_numpy(float)
        z_eq = sp.coo_matrix((-per_unit, (row, p_col)), shape=(n_s + n_d, n_p))
        a_eq = sp.hstack([a_eq, z_eq]).tocsr()
        b_eq = b_eq.copy()
        b_eq[row] = 0.0
        share_of = {int(j): k for k, j in enumerate(share_demand)}
        intake = ~side_out
        z_rows = [share_of[int(j)] for j in links["row"].to_numpy(np.int64)[intake] if int(j) in share_of]
        z_cols = [int(q) for j, q in zip(links["row"].to_numpy(np.int64)[intake], p_col[intake], strict=True)
                  if int(j) in share_of]
        z_vals = [-sigma[int(j)] * u for j, u in zip(links["row"].to_numpy(np.int64)[intake], per_unit[intake],
                                                      strict=True) if int(j) in share_of]
        a_ub = sp.hstack([a_ub, sp.coo_matrix((z_vals, (z_rows, z_cols)), shape=(a_ub.shape[0], n_p))]).tocsr()
        b_ub_all = b_ub_all.copy()
        b_ub_all[z_rows] = 0.0
        cost_z = processors["operating_cost_per_unit"].to_numpy(float) - (
            processors["product_value_per_unit"].fillna(0.0).to_numpy(float)
            if "product_value_per_unit" in processors else 0.0)
        money = np.concatenate([money, cost_z])
        co2e = np.concatenate([co2e, np.zeros(n_p)])
        c = np.concatenate([c, w_cost * cost_z])
        cap_p = processors["capacity"].to_numpy(float)
        upper = np.concatenate([upper, np.where(np.isnan(cap_p), np.inf, cap_p)])
    return ReferenceLP(c=c, money=money, co2e=co2e, a_eq=a_eq, b_eq=b_eq, a_ub=a_ub,
                       b_ub=b_ub_all, upper=upper, n_a=n_a, n_s=n_s, n_d=n_d,
                       share_demand=share_demand, quality=quality, cap_row=cap_row,
                       intake_demand=intake_demand, intake_facility=intake_facility, intake_start=intake_start,
                       permit_keys=permit_keys, permit_start=permit_start)


def assert_kkt(lp: ReferenceLP, solution: Any, quality_rows: pd.DataFrame, *, tol: float = 1e-6,
               facility_intake_ids: Any = (), permit_ids: Any = ((), ())) -> None:
    """The Solution's primal and published duals are an optimal pair of ``lp`` (built by ``reference_lp``).

    Published duals (docs/formulation.md) are turned back into row duals π = ∂objective/∂(row bound):
    supply −V_s, demand +D_d, share −μ_d, quality max −h, quality min (as the negated ≤ row here) −h, cap
    −κ. Then: these ≤-row duals are ≤ 0, i.e. μ, h, κ ≥ 0 (dual feasibility of the rows); reduced costs
    c − Aᵀπ ≥ 0 on columns at 0, ≤ 0 on columns at their capacity, 0 strictly between (dual feasibility and
    complementary slackness of the columns); zero duals on slack rows; and primal objective = dual
    objective (strong duality).
    ``quality_rows`` (d, parameter, bound) says which published quality dual is which row, and
    ``facility_intake_ids`` (ExchangeArrays.facility_intake_ids) which facility intake dual is which facility,
    ``permit_ids`` ((ExchangeArrays.permit_facility, ExchangeArrays.permit_code)) which permit dual is which.
    """
    scale = max(1.0, float(np.abs(lp.c).max(initial=0.0)))
    eps = tol * scale
    # Columns x, w, y, then the processors' activities z when the LP has them (their rows' duals are the
    # supply, demand and share duals already published: z is certified by its reduced cost like any column).
    z = np.asarray(getattr(solution, "z", None) if getattr(solution, "z", None) is not None else [], float)
    v = np.concatenate([solution.x, solution.w, solution.y, z[: len(lp.c) - lp.n_a - lp.n_s - lp.n_d]])
    pi_eq = np.concatenate([-np.asarray(solution.supply_dual, float), np.asarray(solution.demand_dual, float)])
    mu = np.asarray(solution.share_dual, float)
    pi_ub = np.zeros(lp.a_ub.shape[0])
    pi_ub[: len(lp.share_demand)] = -mu[lp.share_demand] if len(mu) else 0.0
    h = np.zeros(len(lp.quality))
    if len(quality_rows):
        key = {(int(r.d), str(r.parameter), str(r.bound)): k for k, r in enumerate(lp.quality.itertuples())}
        for published, row in zip(np.asarray(solution.quality_dual, float), quality_rows.itertuples(), strict=True):
            h[key[(int(row.d), str(row.parameter), str(row.bound))]] = published
    pi_ub[len(lp.share_demand): len(lp.share_demand) + len(h)] = -h
    if lp.cap_row is not None:
        # NaN: symbiosis added no cap row (nothing emits); the row's slack and the other checks still apply.
        pi_ub[lp.cap_row] = -float(np.nan_to_num(solution.co2e_cap_dual))
    # Intake rows: published μ ≥ 0 is −row_dual; per facility matched by id (0 where symbiosis has no row: no
    # arc in, the row is empty and slack).
    k = lp.intake_start
    if len(lp.intake_demand):
        pi_ub[k: k + len(lp.intake_demand)] = -np.asarray(solution.intake_dual, float)[lp.intake_demand]
    k += len(lp.intake_demand)
    if len(lp.intake_facility):
        published = dict(zip([str(f) for f in facility_intake_ids],
                             np.asarray(solution.facility_intake_dual, float), strict=True))
        pi_ub[k: k + len(lp.intake_facility)] = [-published.get(str(f), 0.0) for f in lp.intake_facility]
    if lp.permit_keys:
        by_key = dict(zip(zip([str(f) for f in permit_ids[0]], [str(e) for e in permit_ids[1]], strict=True),
                          np.asarray(solution.permit_dual, float), strict=True))
        pi_ub[lp.permit_start: lp.permit_start + len(lp.permit_keys)] = [-by_key.get(k, 0.0) for k in lp.permit_keys]
    assert np.all(pi_ub <= eps), f"a ≤ row has a dual of the wrong sign: {pi_ub.max()}"
    reduced = lp.c - lp.a_eq.T @ pi_eq - lp.a_ub.T @ pi_ub
    at_zero = v <= 1e-7 * np.maximum(1.0, np.abs(v).max(initial=1.0))
    finite_upper = np.where(np.isfinite(lp.upper), lp.upper, np.inf)
    at_upper = np.isfinite(lp.upper) & (v >= finite_upper - 1e-7 * np.maximum(1.0, np.nan_to_num(finite_upper)))
    between = ~at_zero & ~at_upper
    assert np.all(reduced[at_zero & ~at_upper] >= -eps), ("negative reduced cost at 0", reduced[at_zero].min())
    assert np.all(reduced[at_upper & ~at_zero] <= eps), ("positive reduced cost at capacity", reduced[at_upper].max())
    assert np.all(np.abs(reduced[between]) <= eps), ("non-zero reduced cost strictly between bounds",
                                                      np.abs(reduced[between]).max(initial=0.0))
    slack = lp.b_ub - lp.a_ub @ v
    rhs_scale = np.maximum(1.0, np.abs(lp.b_ub))
    assert np.all(slack >= -1e-6 * rhs_scale), "a ≤ row is violated"
    loose = slack > 1e-5 * rhs_scale
    assert np.all(np.abs(pi_ub[loose]) <= eps), "a slack row has a non-zero dual"
    primal = float(lp.c @ v)
    capped = np.isfinite(lp.upper)
    dual = float(lp.b_eq @ pi_eq + lp.b_ub @ pi_ub + lp.upper[capped] @ np.minimum(reduced[capped], 0.0))
    assert abs(primal - dual) <= 1e-6 * max(1.0, abs(primal)) + eps, (primal, dual)
    assert abs(primal - solution.objective) <= 1e-6 * max(1.0, abs(primal)), (primal, solution.objective)
