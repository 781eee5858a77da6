"""Invariants of the exchange model on random instances, and a cross-check against scipy's linprog.

Hypothesis draws small networks (≤ 6 supplies, ≤ 6 demands, any subset of arcs, integer-valued data so that
no value is a denormal); every optimum must conserve each supply and demand, keep share, quality and
capacity bounds in the physical blend, never be worse than business as usual, and satisfy strong duality
with the reported duals (which pins down their signs). The cross-check builds its own A_eq / A_ub / c from
the Candidates tables, independently of symbiosis.exchange, and compares optima to 1e-6 relative.

The hard corners (``corner_instances``: several quality parameters, a max and a min at once, objective
weights, emission caps including unreachable ones, virgin material outside its own bound) are checked against
tests/independent.py: the same optimum as scipy's linprog on an LP built from the raw tables, infeasibility
where linprog finds it, and the published duals certified optimal (dual feasibility from reduced costs
recomputed from the raw arc data, complementary slackness, strong duality).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

from symbiosis.candidates import Candidates
from symbiosis.exchange import ExchangeModel, SolverError, solve_exchange
from symbiosis.results import check_solution
from tests.helpers_exchange import Corner, corner_instances, instances, random_candidates
from tests.independent import assert_kkt, reference_lp

carbon_prices = st.sampled_from([0.0, 30.0, 150.0])
fast = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _close(a: np.ndarray, b: np.ndarray, scale: np.ndarray) -> bool:
    return bool(np.all(np.abs(a - b) <= 1e-6 * np.maximum(1.0, np.abs(scale))))


@pytest.mark.slow
@fast
@given(cand=instances(), carbon_price=carbon_prices)
def test_balances_bounds_and_no_worse_than_bau(cand: Candidates, carbon_price: float) -> None:
    sol = solve_exchange(cand, carbon_price=carbon_price)
    arcs, sup, dem = cand.arcs, cand.supplies, cand.demands
    s = arcs["s"].to_numpy(int)
    d = arcs["d"].to_numpy(int)
    rho = arcs["ratio"].to_numpy(float)
    a = sup["amount_t_per_yr"].to_numpy(float)
    r = dem["amount_t_per_yr"].to_numpy(float)
    assert (sol.x >= 0).all() and (sol.w >= 0).all() and (sol.y >= 0).all()
    shipped = np.bincount(s, weights=sol.x, minlength=len(sup))
    replaced = np.bincount(d, weights=rho * sol.x, minlength=len(dem))
    assert _close(shipped + sol.w, a, a)                                     # Σx + w = a
    assert _close(replaced + sol.y, r, r)                                    # Σρx + y = r
    share = dem["max_secondary_share"].to_numpy(float)
    assert np.all(replaced <= share * r + 1e-6 * np.maximum(1.0, r))        # share
    cap = arcs["capacity_t_per_yr"].to_numpy(float)
    assert np.all(np.isnan(cap) | (sol.x <= cap + 1e-6 * np.maximum(1.0, np.nan_to_num(cap))))
    # Quality of the physical blend: (Σ c_s x + c_v y) / (Σ x + y) within each bound.
    value = dict(zip(cand.supply_quality["s"], cand.supply_quality["value"], strict=True))
    for q in cand.demand_quality.itertuples():
        into = np.flatnonzero(d == q.d)
        total = sol.x[into].sum() + sol.y[q.d]
        if sol.x[into].sum() <= 1e-9 or total <= 0:
            continue
        blend = (sum(value[s[k]] * sol.x[k] for k in into) + q.virgin_value * sol.y[q.d]) / total
        if q.bound == "max":
            assert blend <= q.limit + 1e-6 * max(1.0, q.limit)
        else:
            assert blend >= q.limit - 1e-6 * max(1.0, q.limit)
    assert sol.objective <= sol.objective_bau + 1e-6 * max(1.0, abs(sol.objective_bau))
    check_solution(cand, sol, 1e-6)


@fast
@given(cand=instances(capacities=False, intakes=False), carbon_price=carbon_prices)
def test_strong_duality_fixes_the_dual_signs(cand: Candidates, carbon_price: float) -> None:
    # Without capacities the dual objective is  −Σ V_s a_s + Σ D_d r_d − Σ μ_d σ_d r_d  (quality rows have a
    # zero right-hand side), with V the supply value, D the need's cost and μ ≥ 0 the share dual.
    sol = solve_exchange(cand, carbon_price=carbon_price)
    a = cand.supplies["amount_t_per_yr"].to_numpy(float)
    r = cand.demands["amount_t_per_yr"].to_numpy(float)
    sigma = cand.demands["max_secondary_share"].to_numpy(float)
    dual_objective = -(sol.supply_dual @ a) + sol.demand_dual @ r - (sol.share_dual * sigma) @ r
    assert dual_objective == pytest.approx(sol.objective, rel=1e-6, abs=1e-5)
    assert np.all(sol.share_dual >= -1e-7) and np.all(sol.quality_dual >= -1e-7)


# --- independent cross-check with scipy.optimize.linprog -----------------------------------------------


def linprog_optimum(cand: Candidates, carbon_price: float) -> float:
    """The exchange LP assembled straight from the tables, solved by scipy's HiGHS wrapper."""
    arcs, sup, dem = cand.arcs, cand.supplies, cand.demands
    n_a, n_s, n_d = len(arcs), len(sup), len(dem)
    # Processors (columns z after y): a linked supply row reads Σx + w − o·z = 0, a linked demand row
    # Σρx + y − i·z = 0 and its share row Σρx − σ·i·z ≤ 0; z carries the operating cost, 0 ≤ z ≤ capacity.
    proc = cand.processors if cand.processors is not None else pd.DataFrame(columns=["capacity"])
    links = cand.processor_links if cand.processor_links is not None else pd.DataFrame(
        columns=["side", "row", "p", "per_unit"])
    n_p = len(proc)
    n = n_a + n_s + n_d + n_p
    lam = carbon_price
    c = np.concatenate([
        arcs["transport_cost_per_t"] + arcs["processing_cost_per_t"]
        + lam * (arcs["transport_co2e_per_t"] + arcs["processing_co2e_per_t"]),
        sup["fate_cost_per_t"] + lam * sup["fate_co2e_per_t"],
        dem["virgin_price_per_t"] + lam * dem["virgin_co2e_per_t"],
        (proc["operating_cost_per_unit"] - proc.get("product_value_per_unit", 0.0)) if n_p else np.zeros(0),
    ])
    a_eq = np.zeros((n_s + n_d, n))
    b_eq = np.concatenate([sup["amount_t_per_yr"], dem["amount_t_per_yr"]]).astype(float)
    share_z: dict[int, tuple[int, float]] = {}
    for link in links.itertuples():
        row = int(link.row) + (0 if link.side == "out" else n_s)
        a_eq[row, n_a + n_s + n_d + int(link.p)] = -float(link.per_unit)
        b_eq[row] = 0.0
        if link.side == "in":
            share_z[int(link.row)] = (int(link.p), float(link.per_unit))
    for k, row in enumerate(arcs.itertuples()):
        a_eq[row.s, k] = 1.0
        a_eq[n_s + row.d, k] = row.ratio
    for i in range(n_s):
        a_eq[i, n_a + i] = 1.0
    for j in range(n_d):
        a_eq[n_s + j, n_a + n_s + j] = 1.0
    rows, rhs = [], []
    for j in range(n_d):  # share (harmless where σ = 1)
        row = np.zeros(n)
        for k, arc in enumerate(arcs.itertuples()):
            if arc.d == j:
                row[k] = arc.ratio
        if j in share_z:
            p, per_unit = share_z[j]
            row[n_a + n_s + n_d + p] = -dem["max_secondary_share"].iloc[j] * per_unit
            rows.append(row)
            rhs.append(0.0)
            continue
        rows.append(row)
        rhs.append(dem["max_secondary_share"].iloc[j] * dem["amount_t_per_yr"].iloc[j])
    value = {(q.s, q.parameter): q.value for q in cand.supply_quality.itertuples()}
    for q in cand.demand_quality.itertuples():
        sign = 1.0 if q.bound == "max" else -1.0
        row = np.zeros(n)
        for k, arc in enumerate(arcs.itertuples()):
            if arc.d == q.d:
                row[k] = sign * (value[(arc.s, q.parameter)] - q.limit)
        row[n_a + n_s + q.d] = sign * (q.virgin_value - q.limit)
        rows.append(row)
        rhs.append(0.0)
    # Intake limits, in tonnes received: per demand Σ_{a into d} x_a ≤ L_d; per facility over all its demands.
    for j in range(n_d):
        limit = float(dem["max_intake_t_per_yr"].iloc[j]) if "max_intake_t_per_yr" in dem else np.nan
        if not np.isnan(limit):
            row = np.zeros(n)
            row[:n_a] = (arcs["d"].to_numpy(int) == j).astype(float)
            rows.append(row)
            rhs.append(limit)
    if "facility_intake_t_per_yr" in dem:
        for _facility, group in dem.groupby("facility_id"):
            limit = float(group["facility_intake_t_per_yr"].min())
            if np.isnan(limit):
                continue
            row = np.zeros(n)
            row[:n_a] = np.isin(arcs["d"].to_numpy(int), group.index.to_numpy()).astype(float)
            rows.append(row)
            rhs.append(limit)
    cap = arcs["capacity_t_per_yr"].to_numpy(float)
    bounds = [(0.0, None if np.isnan(u) else float(u)) for u in cap] + [(0.0, None)] * (n_s + n_d)
    bounds += [(0.0, None if np.isnan(u) else float(u)) for u in proc["capacity"].to_numpy(float)]
    res = linprog(c, A_ub=np.array(rows) if rows else None, b_ub=np.array(rhs) if rows else None,
                  A_eq=a_eq, b_eq=b_eq, bounds=bounds, method="highs")
    assert res.status == 0, res.message
    return float(res.fun)


@pytest.mark.parametrize(("n_s", "n_d", "n_arcs", "seed", "carbon_price"), [
    (5, 5, 12, 1, 0.0),
    (8, 6, 30, 2, 40.0),
    (20, 15, 120, 3, 0.0),
    (30, 30, 300, 4, 100.0),
    (12, 40, 200, 5, 25.0),
])
def test_optimum_matches_scipy_linprog(n_s: int, n_d: int, n_arcs: int, seed: int, carbon_price: float) -> None:
    cand = random_candidates(n_s, n_d, n_arcs, seed=seed)
    ours = solve_exchange(cand, carbon_price=carbon_price)
    theirs = linprog_optimum(cand, carbon_price)
    assert ours.objective == pytest.approx(theirs, rel=1e-6, abs=1e-6)
    assert ours.objective < ours.objective_bau  # these instances all have something worth exchanging
    check_solution(cand, ours, 1e-6)


@fast
@given(cand=instances(), carbon_price=carbon_prices)
def test_optimum_matches_linprog_on_hypothesis_instances(cand: Candidates, carbon_price: float) -> None:
    ours = solve_exchange(cand, carbon_price=carbon_price)
    assert ours.objective == pytest.approx(linprog_optimum(cand, carbon_price), rel=1e-6, abs=1e-5)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_intake_limits_match_scipy_linprog(seed: int) -> None:
    # Receivers that would take more than they can: limits at a fraction of what they get unlimited.
    cand = random_candidates(20, 15, 120, seed=seed)
    free = solve_exchange(cand, carbon_price=0.0)
    received = np.bincount(cand.arcs["d"].to_numpy(int), weights=free.x, minlength=len(cand.demands))
    rng = np.random.default_rng(seed)
    dem = cand.demands
    dem["facility_id"] = [f"farm{k}" for k in rng.integers(0, 5, len(dem))]
    dem["max_intake_t_per_yr"] = np.where(rng.random(len(dem)) < 0.5, np.floor(0.6 * received), np.nan)
    per_facility = pd.Series(received).groupby(dem["facility_id"].to_numpy()).sum()
    dem["facility_intake_t_per_yr"] = dem["facility_id"].map(np.floor(0.5 * per_facility)).where(
        dem["facility_id"].isin(["farm0", "farm1", "farm2"]))
    ours = solve_exchange(cand, carbon_price=0.0)
    assert ours.objective == pytest.approx(linprog_optimum(cand, 0.0), rel=1e-6, abs=1e-6)
    assert ours.objective > free.objective + 1e-6  # the limits bind
    assert (ours.intake_dual > 1e-9).any() and (ours.facility_intake_dual > 1e-9).any()
    check_solution(cand, ours, 1e-6)


def test_simplex_and_ipm_agree_on_a_larger_instance() -> None:
    cand = random_candidates(60, 60, 1500, seed=11)
    ipm = solve_exchange(cand, carbon_price=50.0)
    simplex = solve_exchange(cand, carbon_price=50.0, method="simplex")
    assert ipm.objective == pytest.approx(simplex.objective, rel=1e-7)
    assert isinstance(pd.Series(ipm.x).sum(), float)


# --- hard corners, against an independent LP and a dual certificate --------------------------------------


def _emission_cap(cand: Candidates, fraction: float) -> float:
    """A cap ``fraction`` of the way from the least emissions any network reaches to business as usual's;
    a negative fraction puts it at least 1 t below the least: unreachable."""
    least = reference_lp(cand, weights=(0.0, 1.0)).solve()
    assert least.status == 0, least.message
    bau = float(cand.supplies["fate_co2e_per_t"] @ cand.supplies["amount_t_per_yr"]
                + cand.demands["virgin_co2e_per_t"] @ cand.demands["amount_t_per_yr"])
    if fraction < 0:
        return float(least.fun) - max(1.0, -fraction * (bau - least.fun))
    return float(least.fun) + fraction * (bau - least.fun) + 1e-6 * max(1.0, abs(least.fun))


@pytest.mark.slow
@given(corner=corner_instances())
@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_hard_corners_match_an_independent_lp_and_the_duals_are_optimal(corner: Corner) -> None:
    cand = corner.candidates
    weights = (corner.weights["cost"], corner.weights["co2e"])
    if corner.virgin_outside_bound:
        with pytest.raises(ValueError, match="virgin material violates its own quality bound"):
            solve_exchange(cand, carbon_price=corner.carbon_price, weights=corner.weights)
        return
    cap = None if corner.cap_fraction is None else _emission_cap(cand, corner.cap_fraction)
    lp = reference_lp(cand, carbon_price=corner.carbon_price, weights=weights, co2e_cap=cap)
    reference = lp.solve()
    model = ExchangeModel(cand, carbon_price=corner.carbon_price, weights=corner.weights)
    if reference.status == 2:  # infeasible: only an unreachable cap can do that
        assert corner.cap_fraction is not None and corner.cap_fraction < 0
        with pytest.raises((SolverError, ValueError), match="cap|infeasible"):
            model.set_co2_cap(cap)
            model.solve()
        return
    assert reference.status == 0, reference.message
    model.set_co2_cap(cap)
    sol = model.solve()
    assert sol.objective == pytest.approx(reference.fun, rel=1e-6, abs=1e-5)
    assert_kkt(lp, sol, model.arrays.quality_rows, facility_intake_ids=model.arrays.facility_intake_ids)
    check_solution(cand, sol, 1e-6)
    if cap is not None:
        assert sol.co2e_t <= cap + 1e-6 * max(1.0, abs(cap))
