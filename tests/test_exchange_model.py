"""Hand-solved exchange networks: known optimum, flows and duals; re-solving; solver failures.

Every network is small enough to solve on paper; the working is in each test's comments. Costs are per t,
amounts t/yr, the currency EUR. Unless said otherwise ratio ρ = 1, transport and processing cost 0, no
emissions and no carbon price.
"""

from __future__ import annotations

import math

import numpy as np
import pyomo.environ as pyo
import pytest

from symbiosis.exchange import (
    ExchangeModel,
    SolverError,
    build_model,
    exchange_arrays,
    solve_exchange,
)
from tests.helpers_exchange import (
    blend_candidates,
    calorific_candidates,
    carbon_candidates,
    make_candidates,
    scarce_candidates,
    share_candidates,
)

REL = 1e-7


def approx(value: float) -> object:
    return pytest.approx(value, rel=1e-6, abs=1e-6)


# --- quality: two sources blended to meet a maximum ----------------------------------------------------


def test_quality_limit_forces_a_blend_of_two_sources():
    # Quality row: (3−1) x0 + (0.5−1) x1 + (0−1) y ≤ 0, i.e. 2 x0 ≤ 0.5 x1 + y.  Demand: x0 + x1 + y = 100.
    # Every secondary tonne saves the 50 virgin; S0 also saves 20 landfill, so S0 as much as quality allows.
    # With y: x0 ≤ 20 + 0.2 y, so a tonne of virgin (50) buys 0.2 t more S0 (4): y = 0.
    # Hence x0 = 20, x1 = 80 (blend Cl = (20·3 + 80·0.5)/100 = 1.0), w0 = 80, w1 = 20.
    # Objective 20·80 = 1600; BAU 20·100 + 50·100 = 7000.
    sol = solve_exchange(blend_candidates())
    assert sol.status == "optimal"
    np.testing.assert_allclose(sol.x, [20.0, 80.0], atol=1e-6)
    np.testing.assert_allclose(sol.w, [80.0, 20.0], atol=1e-6)
    np.testing.assert_allclose(sol.y, [0.0], atol=1e-6)
    assert sol.x[0] / sol.x.sum() == approx(0.2)
    assert sol.objective == approx(1600.0)
    assert sol.objective_bau == approx(7000.0)


def test_blend_duals_by_hand():
    # Both supplies have tonnes left to their fate, so one more tonne of either goes there: S0 is worth
    # −20 (it costs its landfill), S1 is worth 0.  One more tonne of need is met 20 % S0 / 80 % S1, diverting
    # 0.2 t from landfill: the need costs −4 (serving it saves money).  Relaxing the Cl row by one unit
    # (2 x0 − 0.5 x1 ≤ 1) gives 2.5 x0 ≤ 51: 0.4 t more S0, worth 0.4 · 20 = 8.
    sol = solve_exchange(blend_candidates())
    np.testing.assert_allclose(sol.supply_dual, [-20.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(sol.demand_dual, [-4.0], atol=1e-6)
    np.testing.assert_allclose(sol.quality_dual, [8.0], atol=1e-6)


# --- distance: the cheaper partner is not a candidate -------------------------------------------------


def test_distance_limit_excludes_the_cheaper_partner():
    # S0: 100 t, landfill 30.  D0 (virgin 40, 50 t) is 150 km away, beyond the 100 km limit, so candidate
    # generation leaves its arc out; D1 (virgin 25, 60 t) is 50 km away: transport 0.1 · 50 = 5 EUR/t.
    # Only S0 → D1: x = 60 (saves 30 + 25 − 5 = 50/t), w = 40, D0 buys all virgin.
    # Objective 30·40 + 5·60 + 40·50 = 3500; BAU 30·100 + 25·60 + 40·50 = 6500.
    cand = make_candidates(
        [{"amount_t_per_yr": 100, "fate_cost_per_t": 30}],
        [{"amount_t_per_yr": 50, "virgin_price_per_t": 40}, {"amount_t_per_yr": 60, "virgin_price_per_t": 25}],
        [{"s": 0, "d": 1, "distance_km": 50.0, "max_distance_km": 100.0, "transport_cost_per_t": 5.0}],
    )
    sol = solve_exchange(cand)
    np.testing.assert_allclose(sol.x, [60.0], atol=1e-6)
    np.testing.assert_allclose(sol.y, [50.0, 0.0], atol=1e-6)
    assert sol.objective == approx(3500.0)
    assert sol.objective_bau == approx(6500.0)


# --- nothing worth exchanging --------------------------------------------------------------------------


def test_nothing_worth_exchanging_gives_bau():
    # S0 is sold (fate −10 EUR/t: revenue); D0's virgin costs 5; the arc costs 20.  Moving a tonne costs 20
    # and saves −10 + 5 = −5: never.  x = 0 and the objective is BAU: −10·100 + 5·80 = −600.
    cand = make_candidates(
        [{"amount_t_per_yr": 100, "fate_cost_per_t": -10, "fate_kind": "sold"}],
        [{"amount_t_per_yr": 80, "virgin_price_per_t": 5}],
        [{"s": 0, "d": 0, "transport_cost_per_t": 20.0}],
    )
    sol = solve_exchange(cand)
    np.testing.assert_allclose(sol.x, [0.0], atol=1e-9)
    assert sol.objective == approx(-600.0)
    assert sol.objective == approx(sol.objective_bau)


# --- a minimum bound: calorific value ------------------------------------------------------------------


def test_minimum_calorific_value_caps_the_secondary_fuel():
    # Kiln fuel D0: 100 t, coal at 100 EUR/t with CV 25, bound CV ≥ 20.  S0: refuse-derived fuel, 80 t,
    # CV 15, incineration 40 EUR/t.  Min row: (15−20) x + (25−20) y ≥ 0, i.e. x ≤ y; with x + y = 100,
    # x ≤ 50.  Each tonne saves 140, so x = 50, y = 50, w = 30 (blend CV = (50·15 + 50·25)/100 = 20).
    # Objective 40·30 + 100·50 = 6200; BAU 40·80 + 100·100 = 13200.
    cand = calorific_candidates()
    sol = solve_exchange(cand)
    np.testing.assert_allclose(sol.x, [50.0], atol=1e-6)
    np.testing.assert_allclose(sol.y, [50.0], atol=1e-6)
    np.testing.assert_allclose(sol.w, [30.0], atol=1e-6)
    assert sol.objective == approx(6200.0)
    assert sol.objective_bau == approx(13200.0)
    # Relaxing the row by one unit (−5x + 5y ≥ −1) with x + y = 100: x = 50.1, 0.1 t more at 140 saves 14.
    np.testing.assert_allclose(sol.quality_dual, [14.0], atol=1e-6)


# --- share limit --------------------------------------------------------------------------------------


def test_share_limit_binds():
    # A tonne shipped saves 10 + 0.8·30 − 2 = 32, so ship up to the share: 0.8 x = 60, x = 75, w = 25,
    # y = 200 − 60 = 140.  Objective 10·25 + 2·75 + 30·140 = 4600; BAU 10·100 + 30·200 = 7000.
    # Relaxing the share row by 1 t of replaced need allows 1.25 t more at 32 each: share dual 40.
    sol = solve_exchange(share_candidates())
    np.testing.assert_allclose(sol.x, [75.0], atol=1e-6)
    np.testing.assert_allclose(sol.w, [25.0], atol=1e-6)
    np.testing.assert_allclose(sol.y, [140.0], atol=1e-6)
    assert sol.objective == approx(4600.0)
    assert sol.objective_bau == approx(7000.0)
    np.testing.assert_allclose(sol.share_dual, [40.0], atol=1e-6)


def test_share_row_only_where_it_can_bind():
    m = build_model(share_candidates(), carbon_price=0.0)
    assert list(m.share_limit.keys()) == [0]
    m1 = build_model(blend_candidates(), carbon_price=0.0)  # share 1 everywhere: implied, no row
    assert len(m1.share_limit) == 0


# --- carbon price flips a decision --------------------------------------------------------------------


def test_carbon_price_flips_the_decision():
    # Without a carbon price a tonne costs 35 and saves 30: no exchange.  At λ = 50 it costs 35 + 0.5 and
    # saves 30 + 25: exchange all 100 t.  The flip is at 35 + 0.01 λ = 30 + 0.5 λ, λ = 5/0.49 ≈ 10.2.
    assert solve_exchange(carbon_candidates(), carbon_price=0.0).x[0] == approx(0.0)
    assert solve_exchange(carbon_candidates(), carbon_price=10.0).x[0] == approx(0.0)
    priced = solve_exchange(carbon_candidates(), carbon_price=10.5)
    assert priced.x[0] == approx(100.0)
    # Objective at 10.5: 35·100 + 10.5·0.01·100 = 3510.5; BAU 10·100 + 20·100 + 10.5·50 = 3525.
    assert priced.objective == approx(3510.5)
    assert priced.objective_bau == approx(3525.0)
    assert priced.co2e_t == approx(1.0)


def test_carbon_price_defaults_to_the_candidates_parameter():
    cand = carbon_candidates()
    cand.parameters["carbon_price"] = 50.0
    assert solve_exchange(cand).x[0] == approx(100.0)


def test_resolve_with_new_carbon_price_matches_a_fresh_solve():
    em = ExchangeModel(carbon_candidates(), carbon_price=0.0)
    first = em.solve()
    assert first.x[0] == approx(0.0)
    assert "handover" in first.timings
    for price in (50.0, 5.0, 10.5):
        em.set_carbon_price(price)
        again = em.resolve()
        fresh = solve_exchange(carbon_candidates(), carbon_price=price)
        assert "handover" not in again.timings  # no new hand-over
        assert again.objective == approx(fresh.objective)
        np.testing.assert_allclose(again.x, fresh.x, atol=1e-6)
    # The Pyomo model was kept in step: its objective at the last solution equals HiGHS's.
    m = em.model
    for var, value in zip([*m.x_list, *m.w_list, *m.y_list], [*again.x, *again.w, *again.y], strict=True):
        var.set_value(value)
    assert pyo.value(m.objective) == approx(again.objective)


def test_co2_cap_and_its_implied_carbon_price():
    # BAU emits 0.5·100 = 50 t.  Cap at 30: every tonne exchanged cuts 0.5 − 0.01 = 0.49 t and costs
    # 35 − 30 = 5 EUR, so x = 20/0.49 and the cap's dual (implied carbon price) is 5/0.49 ≈ 10.204,
    # the same as the price at which the decision flips.
    em = ExchangeModel(carbon_candidates(), carbon_price=0.0)
    base = em.solve()
    assert base.co2e_t == approx(50.0)
    assert math.isnan(base.co2e_cap_dual)
    em.set_co2_cap(30.0)
    capped = em.resolve()
    assert capped.x[0] == approx(20.0 / 0.49)
    assert capped.co2e_t == approx(30.0)
    assert capped.co2e_cap_dual == approx(5.0 / 0.49)
    em.set_co2_cap(40.0)  # move the cap: the row is updated, not added again
    assert em.resolve().x[0] == approx(10.0 / 0.49)
    em.set_co2_cap(None)  # and removed
    assert em.resolve().x[0] == approx(0.0)


def test_co2_cap_set_before_the_first_solve():
    em = ExchangeModel(carbon_candidates(), carbon_price=0.0)
    em.set_co2_cap(30.0)
    assert em.solve().x[0] == approx(20.0 / 0.49)


def test_weighted_objective():
    # Weights {cost: 1, co2e: 50} value emissions like a carbon price of 50: exchange everything.
    sol = solve_exchange(carbon_candidates(), carbon_price=0.0, weights={"cost": 1.0, "co2e": 50.0})
    assert sol.x[0] == approx(100.0)
    assert sol.objective == approx(3500.0 + 50 * 1.0)
    with pytest.raises(ValueError, match="unknown objective weight"):
        solve_exchange(carbon_candidates(), weights={"money": 1.0})


# --- duals by hand ------------------------------------------------------------------------------------


def test_supply_dual_by_hand():
    # One more tonne of S0 would be shipped (cost 5) and replace virgin (20): worth 15, against the 30 it
    # would otherwise cost to landfill.  The value to the system is +15 EUR/t, the need's marginal cost
    # is the virgin price, 20 EUR/t.
    sol = solve_exchange(scarce_candidates())
    np.testing.assert_allclose(sol.x, [50.0], atol=1e-6)
    assert sol.supply_dual[0] == approx(15.0)
    assert sol.demand_dual[0] == approx(20.0)
    # Finite difference: one more tonne of supply lowers the objective by the supply dual.
    plus = solve_exchange(scarce_candidates(51.0))
    assert sol.objective - plus.objective == approx(sol.supply_dual[0])


def test_supply_dual_when_supply_is_left_to_its_fate():
    cand = make_candidates(
        [{"amount_t_per_yr": 100, "fate_cost_per_t": 30}],
        [{"amount_t_per_yr": 60, "virgin_price_per_t": 20}],
        [{"s": 0, "d": 0, "transport_cost_per_t": 5.0}],
    )
    sol = solve_exchange(cand)
    # 40 t stay in landfill: one more tonne costs 30 (value −30).  One more tonne of need takes a tonne
    # out of landfill: −30 + 5 = −25.
    assert sol.supply_dual[0] == approx(-30.0)
    assert sol.demand_dual[0] == approx(-25.0)


# --- capacity, model structure, methods ----------------------------------------------------------------


def test_arc_capacity_is_an_upper_bound():
    cand = scarce_candidates()
    cand.arcs["capacity_t_per_yr"] = 12.5
    sol = solve_exchange(cand)
    assert sol.x[0] == approx(12.5)
    m = build_model(cand, carbon_price=0.0)
    assert m.x[0].ub == 12.5


def test_model_has_one_component_per_family_and_no_params():
    m = build_model(blend_candidates(), carbon_price=0.0)
    for name in ("x", "w", "y", "supply_balance", "demand_balance", "share_limit", "quality_limit",
                 "objective"):
        assert m.component(name) is not None, name
    assert not list(m.component_objects(pyo.Param))
    assert len(m.supply_balance) == 2 and len(m.demand_balance) == 1 and len(m.quality_limit) == 1


@pytest.mark.parametrize("method", ["ipm", "simplex", "pdlp", "choose"])
def test_methods_agree(method):
    tolerance = 1e-4 if method == "pdlp" else 1e-6
    sol = solve_exchange(blend_candidates(), method=method)
    assert sol.objective == pytest.approx(1600.0, rel=tolerance)
    assert sol.parameters["method"] == method


def test_unknown_method_is_refused():
    with pytest.raises(ValueError, match="method must be one of"):
        solve_exchange(blend_candidates(), method="barrier")


def test_timings_and_solver_name():
    sol = solve_exchange(blend_candidates())
    assert {"build", "handover", "solve"} <= set(sol.timings)
    assert all(v >= 0 for v in sol.timings.values())
    assert sol.solver.startswith("HiGHS")


# --- edge cases and failures ---------------------------------------------------------------------------


def test_no_arcs_returns_bau_without_the_solver():
    cand = make_candidates(
        [{"amount_t_per_yr": 100, "fate_cost_per_t": 30, "fate_co2e_per_t": 0.1}],
        [{"amount_t_per_yr": 60, "virgin_price_per_t": 20}],
        [],
    )
    sol = solve_exchange(cand, carbon_price=10.0)
    assert sol.x.shape == (0,)
    np.testing.assert_allclose(sol.w, [100.0])
    np.testing.assert_allclose(sol.y, [60.0])
    # 30·100 + 20·60 + 10·(0.1·100) = 4300
    assert sol.objective == approx(4300.0)
    assert sol.objective_bau == approx(4300.0)
    assert sol.supply_dual[0] == approx(-31.0)  # landfill plus the carbon price on its emission
    assert sol.demand_dual[0] == approx(20.0)
    assert sol.status == "optimal"


def test_no_supplies_or_demands_at_all():
    sol = solve_exchange(make_candidates([], [], []))
    assert sol.objective == 0.0 and sol.objective_bau == 0.0


def test_negative_supply_amount_is_infeasible_and_says_so():
    cand = scarce_candidates()
    cand.supplies.loc[0, "amount_t_per_yr"] = -5.0
    with pytest.raises(SolverError, match="infeasible") as info:
        solve_exchange(cand)
    assert "bad data or a bug" in str(info.value)
    assert "negative supply amount" in str(info.value)


def test_negative_amount_without_arcs_is_also_refused():
    cand = make_candidates([{"amount_t_per_yr": -1.0}], [], [])
    with pytest.raises(SolverError, match="negative supply amount"):
        solve_exchange(cand)


def test_time_limit_zero_raises():
    with pytest.raises(SolverError, match="time limit"):
        solve_exchange(blend_candidates(), time_limit=0.0)


def test_missing_supply_measurement_is_refused():
    cand = blend_candidates()
    cand.supply_quality = cand.supply_quality.iloc[:1]
    with pytest.raises(ValueError, match="no measurement"):
        exchange_arrays(cand)


def test_nan_in_a_required_column_is_refused():
    cand = scarce_candidates()
    cand.arcs.loc[0, "transport_cost_per_t"] = np.nan
    with pytest.raises(ValueError, match="transport_cost_per_t"):
        solve_exchange(cand)


def test_virgin_outside_its_own_bound_is_refused():
    cand = blend_candidates()
    cand.demand_quality.loc[0, "virgin_value"] = 2.0
    with pytest.raises(ValueError, match="virgin material violates"):
        exchange_arrays(cand)


def test_co2_cap_removed_before_the_first_solve_then_set_again():
    em = ExchangeModel(carbon_candidates(), carbon_price=0.0)
    em.set_co2_cap(30.0)
    em.set_co2_cap(None)
    assert em.solve().x[0] == approx(0.0)  # the inactive cap row was not handed over
    em.set_co2_cap(30.0)  # so it is added to HiGHS now
    assert em.resolve().x[0] == approx(20.0 / 0.49)


def test_resolve_with_simplex_after_a_price_change():
    em = ExchangeModel(blend_candidates(), carbon_price=0.0)
    first = em.solve()
    em.set_carbon_price(20.0)
    again = em.resolve(method="simplex")
    assert again.parameters["method"] == "simplex"
    assert again.objective == approx(first.objective)  # no emissions in this network


def test_co2_cap_without_any_emission_term():
    em = ExchangeModel(blend_candidates(), carbon_price=0.0)
    em.set_co2_cap(0.0)  # nothing emits: E = 0 meets the cap, no row is added
    assert em.solve().objective == approx(1600.0)
    with pytest.raises(ValueError, match="nothing in the network emits"):
        em.set_co2_cap(-1.0)
