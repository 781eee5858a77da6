"""Trade-off curve, partner search and resilience, checked against the optimum they are built on."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from symbiosis.candidates import candidates
from symbiosis.exchange import solve_exchange
from symbiosis.partners import add_stream, find_partners
from symbiosis.pipeline import optimise
from symbiosis.resilience import graph_measures, resilience
from symbiosis.tradeoff import tradeoff
from tests.helpers_exchange import make_candidates, random_candidates


def test_tradeoff_by_hand():
    # One supply (100 t, landfill 50/t, 1 t CO2e/t) and two receivers: A near and cheap but dirty
    # (virgin saves 0.1 t CO2e/t), B far and dear but clean (virgin saves 2 t CO2e/t), each able to take 100 t.
    c = make_candidates(
        [{"amount_t_per_yr": 100, "fate_cost_per_t": 50, "fate_co2e_per_t": 1.0}],
        [{"amount_t_per_yr": 100, "virgin_price_per_t": 10, "virgin_co2e_per_t": 0.1},
         {"amount_t_per_yr": 100, "virgin_price_per_t": 10, "virgin_co2e_per_t": 2.0}],
        [{"s": 0, "d": 0, "transport_cost_per_t": 1.0}, {"s": 0, "d": 1, "transport_cost_per_t": 20.0}],
    )
    result = tradeoff(c, n_points=3)
    p = result.points
    # cheapest: all 100 t to A: cost = 100 x 1 + virgin 100 x 10 at B = 1,100; CO2e = 100 x 2.0 (B virgin)
    assert p["cost"].iloc[0] == pytest.approx(1_100) and p["co2e_t"].iloc[0] == pytest.approx(200)
    # greenest: all to B: cost 100 x 20 + 100 x 10 (A virgin) = 3,000; CO2e = 100 x 0.1 = 10
    assert p["cost"].iloc[-1] == pytest.approx(3_000) and p["co2e_t"].iloc[-1] == pytest.approx(10)
    # midpoint cap 105 t: 50 t each way: cost 50 + 1,000 + 500 + 500 = 2,050; carbon price (20-1)/1.9 = 10/t
    assert p["cost"].iloc[1] == pytest.approx(2_050) and p["co2e_t"].iloc[1] == pytest.approx(105)
    assert p["implied_carbon_price"].iloc[1] == pytest.approx(19 / 1.9)
    assert set(result.changes["change"]) == {"changed", "added", "removed"}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_tradeoff_curve_is_monotone(seed):
    c = random_candidates(6, 6, 20, seed=seed)
    p = tradeoff(c, n_points=6).points
    assert (np.diff(p["cost"]) >= -1e-6 * np.abs(p["cost"]).max()).all()
    assert (np.diff(p["co2e_t"]) <= 1e-6 * np.abs(p["co2e_t"]).max()).all()
    assert p["cost"].iloc[0] == pytest.approx(solve_exchange(c, carbon_price=0.0).cost, rel=1e-6)
    greenest = solve_exchange(c, weights={"cost": 0.0, "co2e": 1.0})
    assert p["co2e_t"].iloc[-1] == pytest.approx(greenest.co2e_t, rel=1e-6, abs=1e-6)


def test_partners_agree_with_the_optimum(tiny_region):
    search = find_partners(tiny_region, "power.model.out.fly_ash")
    results = optimise(tiny_region)
    used = results.exchanges[results.exchanges["supply_id"] == "power.model.out.fly_ash"]
    table = search.partners.set_index("demand_id")
    for row in used.itertuples():
        assert table.at[row.demand_id, "used_by_optimum"]
        assert table.at[row.demand_id, "optimum_t_per_yr"] == pytest.approx(row.amount_t_per_yr)
    assert search.exchanged_t_per_yr == pytest.approx(used["amount_t_per_yr"].sum())
    supply_dual = results.supplies.set_index("supply_id").at["power.model.out.fly_ash", "shadow_price_per_t"]
    assert search.shadow_value_per_t == pytest.approx(supply_dual)
    near = table.loc["cement_clay"]
    # net value per t: landfill 60 + 0.9 x 12 clay - 0.10 x 11.39 km - 1.0 processing
    assert near.net_value_per_t == pytest.approx(60 + 0.9 * 12 - near.distance_km * 0.10 - 1.0)
    assert near.quality_fit == "passes" and list(search.partners["rank"]) == [1, 2]


def test_partners_for_a_new_stream_explain_rejections(tiny_region):
    region, flow = add_stream(tiny_region, facility_id="ash_yard", material="fly_ash", amount=5_000, lat=55.68,
                              lon=11.15, fate="landfill", quality={"chloride": (0.3, "%")})
    search = find_partners(region, flow)
    table = search.partners.set_index("demand_id")
    near = table.loc["cement_clay"]
    # chloride 0.3 % against a max of 0.1 % with virgin clay at 0.01 %: at most (0.1-0.01)/(0.3-0.01) of the blend
    assert near.quality_fit == "blend needed"
    assert f"{(0.1 - 0.01) / (0.3 - 0.01):.0%}" in near.quality_detail
    with pytest.raises(Exception, match="unknown material"):
        add_stream(tiny_region, facility_id="x", material="moon_dust", amount=1, lat=55, lon=11)


def test_removing_a_facility_without_exchanges_changes_nothing(tiny_region):
    region = tiny_region.copy()
    region.facilities = pd.concat([region.facilities, pd.DataFrame([{
        "facility_id": "idle", "name": "Idle", "sector": "10.11", "lat": 55.6, "lon": 11.0, "confidential": False,
        "process_model": "", "activity": math.nan, "activity_unit": ""}])], ignore_index=True)
    row = region.flows.iloc[0].to_dict()
    row.update(flow_id="idle_out", facility_id="idle", category="product", material="clinker", exchangeable=False)
    region.flows = pd.concat([region.flows, pd.DataFrame([row])], ignore_index=True)
    result = resilience(region).facilities.set_index("facility_id")
    assert result.at["idle", "cost_benefit_lost"] == 0
    assert result.at["idle", "co2e_benefit_lost_t"] == 0
    assert result.at["idle", "n_exchanges_failing"] == 0
    assert result.at["power", "rank"] == 1  # the power station holds the network together
    base = optimise(region)
    assert result.at["power", "cost_benefit_lost"] == pytest.approx(base.kpis["net_cost_saving"])


def test_resilience_of_exchanges_and_graph_measures(tiny_region):
    result = resilience(tiny_region, include_exchanges=True)
    assert len(result.exchanges) == optimise(tiny_region).kpis["n_exchanges"]
    assert (result.exchanges["cost_benefit_lost"] >= -1e-6).all()
    measures = graph_measures(optimise(tiny_region).exchanges, list(tiny_region.facilities["facility_id"]))
    power = measures.set_index("facility_id").loc["power"]
    assert power.out_degree == 3 and power.betweenness == pytest.approx(1.0)


def test_partner_search_uses_the_same_candidates(tiny_region):
    c = candidates(tiny_region)
    assert set(c.arcs["demand_id"][c.arcs["supply_id"] == "power_gypsum"]) == {"board_gypsum"}


def test_stream_file_and_quality_strings(tmp_path):
    from symbiosis.errors import InputError
    from symbiosis.partners import parse_quality, read_stream_file

    path = tmp_path / "stream.yaml"
    path.write_text("facility: yard\nmaterial: fly_ash\namount: 500\nlat: 55.7\nlon: 11.1\n"
                    "quality:\n  chloride: 0.3 %\n")
    spec = read_stream_file(str(path))
    assert spec.amount == 500 and parse_quality(spec.quality) == {"chloride": (0.3, "%")}
    assert parse_quality(["chloride=0.05%", "moisture=12"]) == {"chloride": (0.05, "%"), "moisture": (12.0, "")}
    path.write_text("facility: yard\nmaterial: fly_ash\namount: 500\ncolour: grey\n")
    with pytest.raises(InputError, match="unknown key"):
        read_stream_file(str(path))
