"""Fast re-solves: a parameter change made in place (ExchangeModel.set_*) gives the optimum of a fresh build.

Each case solves a random instance, changes amounts, prices, capacities, intake limits or ratios in place and
re-solves warm; the reference is a new model built from candidate tables carrying the same change. The Pyomo
model must stay the statement of the changed problem: the fresh optimum, put into it, meets every row and
gives the same objective.
"""

from __future__ import annotations

import copy

import numpy as np
import pyomo.environ as pyo
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from symbiosis.exchange import ExchangeModel, solve_exchange
from tests.helpers_exchange import instances, random_candidates


def _changed(c, rng, kinds):
    """Random new parameter arrays and the candidates carrying them (the fresh build's input)."""
    new = copy.deepcopy(c)
    sup, dem, arcs = new.supplies, new.demands, new.arcs
    change = {}
    if "amounts" in kinds:
        change["supply"] = np.round(sup["amount_t_per_yr"].to_numpy(float) * rng.uniform(0.0, 2.0, len(sup)), 3)
        change["demand"] = np.round(dem["amount_t_per_yr"].to_numpy(float) * rng.uniform(0.0, 2.0, len(dem)), 3)
        sup["amount_t_per_yr"], dem["amount_t_per_yr"] = change["supply"], change["demand"]
    if "costs" in kinds:
        change["fate_cost"] = np.round(rng.uniform(-20, 100, len(sup)), 2)
        change["virgin_price"] = np.round(rng.uniform(0, 120, len(dem)), 2)
        change["arc_cost"] = np.round(rng.uniform(0, 60, len(arcs)), 2)
        sup["fate_cost_per_t"], dem["virgin_price_per_t"] = change["fate_cost"], change["virgin_price"]
        arcs["transport_cost_per_t"] = change["arc_cost"] - arcs["processing_cost_per_t"].to_numpy(float)
    if "capacity" in kinds:
        cap = arcs["capacity_t_per_yr"].to_numpy(float).copy()
        flip = rng.random(len(cap)) < 0.5
        cap[flip] = np.where(np.isnan(cap[flip]), np.round(rng.uniform(0, 500, int(flip.sum())), 1), np.nan)
        change["capacity"] = cap
        arcs["capacity_t_per_yr"] = cap
    if "intake" in kinds and "max_intake_t_per_yr" in dem.columns:
        limit = dem["max_intake_t_per_yr"].to_numpy(float).copy()
        has = ~np.isnan(limit)
        limit[has] = np.round(rng.uniform(0, 800, int(has.sum())), 1)
        change["intake"] = limit
        dem["max_intake_t_per_yr"] = limit
    if "ratio" in kinds:
        change["ratio"] = rng.choice([0.4, 0.7, 1.0, 1.3], len(arcs)).astype(float)
        arcs["ratio"] = change["ratio"]
    return new, change


def _apply(em, change):
    if "supply" in change:
        em.set_amounts(supply=change["supply"], demand=change["demand"])
    if "fate_cost" in change:
        em.set_costs(arc_cost=change["arc_cost"], fate_cost=change["fate_cost"], virgin_price=change["virgin_price"])
    if "capacity" in change:
        em.set_capacity(change["capacity"])
    if "intake" in change:
        em.set_intake_limits(demand=change["intake"])
    if "ratio" in change:
        em.set_ratios(change["ratio"])


def _pyomo_states_the_changed_problem(em, fresh):
    m = em.model
    values = [*fresh.x, *fresh.w, *fresh.y]
    for var, value in zip([*m.x_list, *m.w_list, *m.y_list], values, strict=True):
        var.set_value(float(value), skip_validation=True)
    assert pyo.value(m.objective) == pytest.approx(fresh.objective, rel=1e-9, abs=1e-6)
    for con in m.component_data_objects(pyo.Constraint, active=True):
        body = pyo.value(con.body)
        if con.has_lb():
            assert body >= pyo.value(con.lower) - 1e-5, con.name
        if con.has_ub():
            assert body <= pyo.value(con.upper) + 1e-5, con.name
    for var, value in zip(m.x_list, fresh.x, strict=True):
        if var.ub is not None:
            assert value <= var.ub + 1e-5


KINDS = st.sets(st.sampled_from(["amounts", "costs", "capacity", "intake", "ratio"]), min_size=1)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(c=instances(), kinds=KINDS, seed=st.integers(0, 2**32 - 1))
def test_a_parameter_change_in_place_gives_the_fresh_optimum(c, kinds, seed):
    if not len(c.arcs):
        return
    rng = np.random.default_rng(seed)
    em = ExchangeModel(c, carbon_price=0.0)
    em.solve()
    for _ in range(2):  # two changes in a row: the second starts from the first's basis
        new, change = _changed(c, rng, kinds)
        _apply(em, change)
        again = em.resolve()
        fresh = solve_exchange(new, carbon_price=0.0)
        assert again.objective == pytest.approx(fresh.objective, rel=1e-9, abs=1e-6)
        assert again.objective_bau == pytest.approx(fresh.objective_bau, rel=1e-12, abs=1e-9)
        assert again.parameters["method"] == "simplex"  # warm from the basis, not a fresh interior point
        _pyomo_states_the_changed_problem(em, fresh)
        c = new


@pytest.mark.parametrize("seed", range(3))
def test_changes_reach_every_block_of_a_split_lp(seed):
    # few arcs per node: many independent blocks, each its own HiGHS instance
    c = random_candidates(60, 60, 90, seed=seed)
    rng = np.random.default_rng(seed)
    em = ExchangeModel(c, carbon_price=0.0, block_columns=1)
    em.solve()
    new, change = _changed(c, rng, {"amounts", "costs", "capacity", "ratio"})
    _apply(em, change)
    again = em.resolve()
    assert again.parameters["blocks"] > 10
    fresh = solve_exchange(new, carbon_price=0.0, decompose=False)
    assert again.objective == pytest.approx(fresh.objective, rel=1e-9)


def test_a_restart_from_a_saved_basis_does_not_depend_on_what_was_solved_between():
    c = random_candidates(20, 20, 120, seed=4)
    rng = np.random.default_rng(1)
    em = ExchangeModel(c, carbon_price=0.0)
    em.solve()
    base = em.basis()
    _, first = _changed(c, rng, {"amounts", "costs"})
    _, other = _changed(c, rng, {"amounts", "costs"})
    _apply(em, first)
    direct = em.resolve(start=base)
    _apply(em, other)
    em.resolve()
    _apply(em, first)
    detour = em.resolve(start=base)
    np.testing.assert_array_equal(direct.x, detour.x)
    assert direct.objective == detour.objective


def test_bad_parameter_arrays_are_refused():
    c = random_candidates(5, 5, 10, seed=0)
    em = ExchangeModel(c, carbon_price=0.0)
    em.solve()
    with pytest.raises(ValueError, match="3 values for 5 rows"):
        em.set_amounts(supply=np.ones(3))
    with pytest.raises(ValueError, match="finite and ≥ 0"):
        em.set_amounts(demand=np.r_[-1.0, np.ones(4)])
    with pytest.raises(ValueError, match="ratios must be > 0"):
        em.set_ratios(np.zeros(len(c.arcs)))


def test_scenarios_that_change_only_parameters_reuse_one_model_with_the_fresh_optimum():
    from pathlib import Path

    from symbiosis.candidates import candidates
    from symbiosis.exchange.reuse import WarmSolver
    from symbiosis.inputs import load_region
    from symbiosis.scenarios import apply_scenario, load_scenario

    folder = Path(__file__).resolve().parents[1] / "scenarios"
    warm = WarmSolver()
    names = ["baseline", "carbon_price_100", "landfill_tax_doubled", "carbon_price_200", "distance_25km",
             "baseline"]
    for name in names:
        scenario, base = load_scenario(folder / f"{name}.yaml")
        changed, overrides, _ = apply_scenario(load_region(base), scenario)
        overrides = {k: v for k, v in overrides.items() if k != "weights"}
        cands = candidates(changed, **overrides)
        price = float(cands.parameters["carbon_price"])
        again = warm.solve(cands, carbon_price=price)
        fresh = solve_exchange(cands, carbon_price=price)
        assert again.objective == pytest.approx(fresh.objective, rel=1e-9), name
        assert again.objective_bau == pytest.approx(fresh.objective_bau, rel=1e-12), name
        assert again.cost == pytest.approx(fresh.cost, rel=1e-6), name
    # the 25 km limit drops arcs: a new model; the others changed prices and costs of the same arcs
    assert warm.built == 2 + 1 and warm.reused == len(names) - 3
