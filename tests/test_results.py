"""Results: exchange tables, KPIs, per-facility gains, "why not matched" and the post-solve check.

The networks are the hand-solved ones of test_exchange_model.py (flows worked out there); here the tests
check what ``evaluate`` tells about them. Regions are built to match the candidates
(``helpers_exchange.region_for``); one test runs the tiny test region end to end.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from symbiosis.exchange import solve_exchange
from symbiosis.results import (
    EXCHANGE_COLUMNS,
    REASONS,
    ConservationError,
    Results,
    check_solution,
    evaluate,
)
from tests.helpers_exchange import (
    blend_candidates,
    calorific_candidates,
    carbon_candidates,
    instances,
    make_candidates,
    region_for,
    scarce_candidates,
    share_candidates,
)

KPI_KEYS = {
    "waste_diverted_t", "landfill_diverted_t", "incineration_diverted_t", "virgin_avoided_t", "water_saved_m3",
    "co2e_bau_t", "co2e_optimum_t", "co2e_avoided_t", "cost_bau", "cost_optimum", "net_cost_saving", "tkm",
    "n_exchanges", "n_facilities_participating", "currency", "solver", "status",
}


def run(cand, **kwargs) -> Results:
    return evaluate(region_for(cand), cand, solve_exchange(cand, **kwargs))


def reason_of(results: Results, supply_id: str) -> tuple[str, str]:
    row = results.supplies.set_index("supply_id").loc[supply_id]
    return row["reason"], row["reason_detail"]


# --- tables --------------------------------------------------------------------------------------------


def test_exchange_table_of_the_blend():
    res = run(blend_candidates())
    assert list(res.exchanges.columns) == EXCHANGE_COLUMNS
    by_supply = res.exchanges.set_index("supply_id")
    assert by_supply.loc["S0", "amount_t_per_yr"] == pytest.approx(20.0)
    assert by_supply.loc["S1", "amount_t_per_yr"] == pytest.approx(80.0)
    # S0 saves its landfill (20·20) and the virgin it replaces (50·20); S1 only the virgin (50·80).
    assert by_supply.loc["S0", "saving"] == pytest.approx(400.0 + 1000.0)
    assert by_supply.loc["S1", "saving"] == pytest.approx(4000.0)
    # Ranked by saving.
    assert list(res.exchanges["supply_id"]) == ["S1", "S0"]
    sup = res.supplies.set_index("supply_id")
    assert sup.loc["S0", "exchanged_t_per_yr"] == pytest.approx(20.0)
    assert sup.loc["S0", "to_fate_t_per_yr"] == pytest.approx(80.0)
    assert sup.loc["S0", "shadow_price_per_t"] == pytest.approx(-20.0)
    dem = res.demands.set_index("demand_id")
    assert dem.loc["D0", "secondary_t_per_yr"] == pytest.approx(100.0)
    assert dem.loc["D0", "virgin_t_per_yr"] == pytest.approx(0.0, abs=1e-9)
    assert dem.loc["D0", "shadow_price_per_t"] == pytest.approx(-4.0)


def test_kpis_have_the_contract_keys_and_figures():
    res = run(blend_candidates())
    assert set(res.kpis) >= KPI_KEYS
    assert res.kpis["cost_bau"] == pytest.approx(7000.0)
    assert res.kpis["cost_optimum"] == pytest.approx(1600.0)
    assert res.kpis["net_cost_saving"] == pytest.approx(5400.0)
    assert res.kpis["n_exchanges"] == 2
    assert res.kpis["n_facilities_participating"] == 3
    assert res.kpis["virgin_avoided_t"] == pytest.approx(100.0)
    assert res.kpis["status"] == "optimal"
    assert res.kpis["currency"] == "EUR"


def test_waste_diverted_counts_landfill_and_incineration_only_and_water_saved_in_m3():
    # S0 (landfill) and S1 (incineration) go to a mineral demand; S2, treated wastewater (fate sewer),
    # goes to a cooling-water demand (class water, density 1.0 t/m³) at ratio 0.9.
    cand = make_candidates(
        [{"amount_t_per_yr": 10, "fate_cost_per_t": 50, "fate_kind": "landfill"},
         {"amount_t_per_yr": 5, "fate_cost_per_t": 50, "fate_kind": "incineration"},
         {"amount_t_per_yr": 1000, "fate_cost_per_t": 2, "fate_kind": "sewer", "material": "treated_ww"}],
        [{"amount_t_per_yr": 100, "virgin_price_per_t": 10},
         {"amount_t_per_yr": 2000, "virgin_price_per_t": 0.5, "material": "water", "material_class": "water",
          "density_t_per_m3": 1.0}],
        [{"s": 0, "d": 0}, {"s": 1, "d": 0}, {"s": 2, "d": 1, "ratio": 0.9}],
    )
    res = run(cand)
    k = res.kpis
    assert k["landfill_diverted_t"] == pytest.approx(10.0)
    assert k["incineration_diverted_t"] == pytest.approx(5.0)
    assert k["waste_diverted_t"] == pytest.approx(15.0)
    assert k["water_saved_m3"] == pytest.approx(900.0)
    # water is reported as water saved, not as virgin material avoided
    assert k["virgin_avoided_t"] == pytest.approx(15.0)


def test_facility_gains_follow_the_convention_and_indicative_prices_leave_nobody_worse_off():
    # Scarce supply: x = 50 from F_S0 to F_D0, transport 5/t.  At zero price the supplier saves its
    # landfill, 30·50 = 1500; the receiver saves 20·50 virgin and pays 5·50 transport: 750.
    # The indicative price is the supply dual, 15/t: 750 changes hands, the receiver is left at 0.
    res = run(scarce_candidates())
    fac = res.facilities.set_index("facility_id")
    assert fac.loc["F_S0", "gain"] == pytest.approx(1500.0)
    assert fac.loc["F_D0", "gain"] == pytest.approx(750.0)
    assert fac.loc["F_D0", "cost_optimum"] == pytest.approx(20.0 * 50 + 5.0 * 50)
    assert res.exchanges["indicative_price_per_t"].iloc[0] == pytest.approx(15.0)
    assert fac.loc["F_S0", "gain_at_indicative_prices"] == pytest.approx(2250.0)
    assert fac.loc["F_D0", "gain_at_indicative_prices"] == pytest.approx(0.0, abs=1e-6)
    assert fac["gain"].sum() == pytest.approx(res.kpis["net_cost_saving"])
    assert fac["n_exchanges"].to_dict() == {"F_S0": 1, "F_D0": 1}


def test_costs_are_money_and_co2e_is_reported_beside_them():
    # At λ = 50 the long arc carries all 100 t: money cost 35·100 = 3500 against a BAU of 3000; CO2e falls
    # from 50 t to 1 t.  The KPI costs stay money; the objective carries the carbon price.
    res = run(carbon_candidates(), carbon_price=50.0)
    k = res.kpis
    assert k["cost_bau"] == pytest.approx(3000.0)
    assert k["cost_optimum"] == pytest.approx(3500.0)
    assert k["co2e_bau_t"] == pytest.approx(50.0)
    assert k["co2e_optimum_t"] == pytest.approx(1.0)
    assert k["co2e_avoided_t"] == pytest.approx(49.0)
    assert k["objective_optimum"] == pytest.approx(3500.0 + 50.0 * 1.0)
    assert k["carbon_price"] == 50.0
    assert res.exchanges["co2e_avoided_t_per_yr"].iloc[0] == pytest.approx(49.0)
    assert res.kpis["tkm"] == pytest.approx(100 * 10.0)


def test_balances_before_and_after():
    res = run(scarce_candidates())
    assert res.balances is not None and res.balances_after is not None
    region_before = res.balances.region.set_index("quantity").loc["mass"]
    region_after = res.balances_after.region.set_index("quantity").loc["mass"]
    # The 50 exchanged tonnes become internal: they no longer cross the region's boundary.
    assert region_before["outputs"] - region_after["outputs"] == pytest.approx(50.0)
    assert res.parameters["carbon_price"] == 0.0


# --- why not matched -----------------------------------------------------------------------------------


def test_reasons_in_the_blend():
    res = run(blend_candidates())
    reason, detail = reason_of(res, "S0")
    assert reason == "quality_limit_binding"
    assert "Cl max 1" in detail
    # S1 is held back because D0's whole need is met by secondary material.
    assert reason_of(res, "S1")[0] == "receiver_amount_exhausted"


def test_reason_minimum_bound():
    cand = calorific_candidates()
    assert reason_of(run(cand), "S0")[0] == "quality_limit_binding"


def test_reason_share():
    reason, detail = reason_of(run(share_candidates()), "S0")
    assert reason == "receiver_share_exhausted"
    assert "0.3" in detail


def test_reason_not_economic_with_the_gap():
    # Arc 20/t; saves fate −10 (it is sold) + virgin 5 = −5: gap 25 EUR/t.
    cand = make_candidates(
        [{"amount_t_per_yr": 100, "fate_cost_per_t": -10, "fate_kind": "sold"}],
        [{"amount_t_per_yr": 80, "virgin_price_per_t": 5}],
        [{"s": 0, "d": 0, "transport_cost_per_t": 20.0}],
    )
    res = run(cand)
    reason, detail = reason_of(res, "S0")
    assert reason == "not_economic"
    assert "gap 25 EUR/t" in detail
    assert res.exchanges.empty
    assert res.kpis["n_exchanges"] == 0


def test_reason_capacity_and_fully_exchanged():
    cand = scarce_candidates()
    cand.arcs["capacity_t_per_yr"] = 12.5
    assert reason_of(run(cand), "S0")[0] == "arc_capacity_binding"
    assert reason_of(run(scarce_candidates()), "S0")[0] == "fully_exchanged"


def test_reasons_from_screening_when_a_supply_has_no_arc():
    # S0 is matched; S1's only compatible demand lies beyond the distance limit; S2's material has no
    # user; S3's compatible demands bound a parameter it has no measurement of.
    cand = make_candidates(
        [{"amount_t_per_yr": 100, "fate_cost_per_t": 30}, {"amount_t_per_yr": 10}, {"amount_t_per_yr": 10},
         {"amount_t_per_yr": 10}],
        [{"amount_t_per_yr": 50, "virgin_price_per_t": 40}, {"amount_t_per_yr": 60, "virgin_price_per_t": 25}],
        [{"s": 0, "d": 1, "distance_km": 50.0, "transport_cost_per_t": 5.0}],
        screening=[
            {"supply_id": "S0", "n_compatible": 2, "nearest_compatible_km": 50.0, "n_within_distance": 1,
             "n_quality_fail": 0, "n_arcs": 1},
            {"supply_id": "S1", "n_compatible": 1, "nearest_compatible_km": 150.0, "n_within_distance": 0,
             "n_quality_fail": 0, "n_arcs": 0},
            {"supply_id": "S2", "n_compatible": 0, "nearest_compatible_km": np.nan, "n_within_distance": 0,
             "n_quality_fail": 0, "n_arcs": 0},
            {"supply_id": "S3", "n_compatible": 2, "nearest_compatible_km": 5.0, "n_within_distance": 2,
             "n_quality_fail": 2, "n_arcs": 0},
        ],
    )
    res = run(cand)
    assert reason_of(res, "S0")[0] == "receiver_amount_exhausted"
    reason, detail = reason_of(res, "S1")
    assert reason == "beyond_distance" and "150.0 km" in detail
    assert reason_of(res, "S2")[0] == "no_compatible_demand"
    assert reason_of(res, "S3")[0] == "quality_screen"


@pytest.mark.slow
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cand=instances())
def test_reasons_and_price_invariants_on_random_networks(cand):
    # Reasons are from the list, "fully_exchanged" exactly when nothing is left to the fate, and at the
    # indicative prices (λ = 0, costs are money) no facility is worse off than under business as usual.
    res = run(cand)
    sup = res.supplies
    assert set(sup["reason"]) <= set(REASONS)
    left = sup["to_fate_t_per_yr"] > 1e-6 * np.maximum(1.0, sup["amount_t_per_yr"])
    assert ((sup["reason"] == "fully_exchanged") == ~left).all()
    assert (res.facilities["gain_at_indicative_prices"] >= -1e-5 * np.maximum(
        1.0, res.facilities["cost_bau"].abs())).all()
    assert res.facilities["gain_at_indicative_prices"].sum() == pytest.approx(
        res.facilities["gain"].sum(), abs=1e-5 * max(1.0, abs(res.kpis["cost_bau"])))
    assert res.kpis["cost_optimum"] <= res.kpis["cost_bau"] + 1e-6 * max(1.0, abs(res.kpis["cost_bau"]))


# --- the post-solve check ------------------------------------------------------------------------------


def test_check_solution_catches_a_broken_supply_row():
    cand = scarce_candidates()
    sol = solve_exchange(cand)
    sol.w = sol.w + 1.0
    with pytest.raises(ConservationError, match=r"supply S0: shipped 50 \+ to fate 1 = 51 t/yr, amount 50"):
        check_solution(cand, sol)
    with pytest.raises(AssertionError):  # a ConservationError is an AssertionError
        evaluate(region_for(cand), cand, sol)


def test_check_solution_catches_quality_share_and_capacity():
    cand = blend_candidates()
    sol = solve_exchange(cand)
    sol.x = np.array([40.0, 60.0])  # blend Cl = (40·3 + 60·0.5)/100 = 1.5 > 1; both rows still balance
    sol.w = np.array([60.0, 40.0])
    with pytest.raises(ConservationError, match="blend Cl = 1.5, bound ≤ 1"):
        check_solution(cand, sol)

    cand = share_candidates()
    sol = solve_exchange(cand)
    sol.x, sol.w, sol.y = np.array([100.0]), np.array([0.0]), np.array([120.0])
    with pytest.raises(ConservationError, match="exceeds its share"):
        check_solution(cand, sol)

    cand = scarce_candidates()
    cand.arcs["capacity_t_per_yr"] = 10.0
    sol = solve_exchange(scarce_candidates())
    with pytest.raises(ConservationError, match="over its capacity 10"):
        check_solution(cand, sol)


def test_check_solution_catches_an_arc_beyond_its_distance_limit():
    # The cheaper partner D0 is 150 km away with a 100 km limit: an arc to it must never carry flow.
    cand = make_candidates(
        [{"amount_t_per_yr": 100, "fate_cost_per_t": 30}],
        [{"amount_t_per_yr": 50, "virgin_price_per_t": 40}],
        [{"s": 0, "d": 0, "distance_km": 150.0, "max_distance_km": 100.0, "transport_cost_per_t": 15.0}],
    )
    sol = solve_exchange(cand)  # the model itself does not screen distance: that is the candidates' job
    assert sol.x[0] == pytest.approx(50.0)
    with pytest.raises(ConservationError, match="150 km, beyond its limit of 100 km"):
        check_solution(cand, sol)


def test_check_solution_catches_misaligned_arrays():
    cand = scarce_candidates()
    sol = solve_exchange(cand)
    sol.x = np.zeros(3)
    with pytest.raises(ConservationError, match="does not align"):
        check_solution(cand, sol)


# --- end to end on the tiny test region ----------------------------------------------------------------


def test_tiny_region_end_to_end(tiny_region):
    from symbiosis.candidates import candidates

    cand = candidates(tiny_region)
    sol = solve_exchange(cand)
    res = evaluate(tiny_region, cand, sol)
    assert list(res.exchanges.columns) == EXCHANGE_COLUMNS
    assert set(res.kpis) >= KPI_KEYS
    assert set(res.supplies["reason"]) <= set(REASONS)
    assert res.kpis["cost_optimum"] <= res.kpis["cost_bau"]
    assert len(res.facilities) == len(tiny_region.facilities)
    assert (res.facilities["gain_at_indicative_prices"] >= -1e-6 * res.facilities["cost_bau"].abs().clip(1)).all()
