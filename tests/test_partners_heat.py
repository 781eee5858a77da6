"""``symbiosis partners`` for heat: a heat supply's receivers ranked in MWh, by reach, losses, temperature
(heat pump or too cold), value and CO2e per MWh shipped.

Hand-checked on tests/data/regions/heat (invented figures, distances from its arcs.csv; carriers from the
shipped data/reference/energy_carriers.csv: steam reach 5 km, loss 1 %/km, pipe 0.10 EUR/MWh·km; waste heat
reach 10 km, loss 0.2 %/km, pipe 0.05; gas-boiler heat 0.224 t CO2e/MWh; heat pump COP = 0.5 · T_hot /
(T_hot − T_cold) in kelvin, electricity 100 EUR and 0.3 t CO2e per MWh), and on Kalundborg's steam and
effluent heat against the optimum.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from click.testing import Result
from typer.testing import CliRunner

from symbiosis.candidates import candidates
from symbiosis.cli import app
from symbiosis.inputs import load_region
from symbiosis.partners import add_stream, find_partners, parse_quality
from symbiosis.pipeline import optimise
from tests.conftest import REPO, TEST_DATA

HEAT = TEST_DATA / "regions" / "heat"
KALUNDBORG = REPO / "data" / "regions" / "kalundborg"


@pytest.fixture(scope="module")
def heat_region():
    return load_region(HEAT)


def test_steam_within_reach_by_hand(heat_region) -> None:
    search = find_partners(heat_region, "plant_steam")
    assert search.unit == "MWh"
    row = search.partners.set_index("demand_id").loc["refinery_steam"]
    # 3 km of steam main: 3 % lost; the refinery pays 35 EUR/MWh; the plant's cooling costs 2 EUR/MWh.
    assert row.distance_km == pytest.approx(3.0)
    assert row.delivered_mwh_per_mwh == pytest.approx(0.97, rel=1e-12)
    assert row.net_value_per_mwh == pytest.approx(2 + 0.97 * 35 - 0.10 * 3, rel=1e-12)
    assert row.co2e_avoided_t_per_mwh == pytest.approx(0.97 * 0.224, rel=1e-9)
    assert row.quality_fit == "passes" and row.used_by_optimum
    assert row.optimum_mwh_per_yr == pytest.approx(40_000 / 0.97, rel=1e-7)  # the refinery's whole need
    assert search.exchanged_t_per_yr == pytest.approx(40_000 / 0.97, rel=1e-7)
    assert search.partners.iloc[0]["demand_id"] == "refinery_steam"
    assert "net_value_per_t" not in search.partners.columns  # every figure in MWh


def test_steam_beyond_its_reach(heat_region) -> None:
    row = find_partners(heat_region, "boiler_steam").partners.set_index("demand_id").loc["pharma_steam"]
    assert row.distance_km == pytest.approx(8.0) and row.max_distance_km == pytest.approx(5.0)
    assert not row.within_distance and not row.used_by_optimum
    assert "beyond the 5 km reach of steam" in row.what_would_make_it_viable


def test_heat_pump_and_too_cold_by_hand(heat_region) -> None:
    town = find_partners(heat_region, "wwtp_heat").partners.set_index("demand_id").loc["town_heat"]
    cop = 0.5 * (90 + 273.15) / (90 - 40)
    delivered = (1 - 0.002 * 2) * cop / (cop - 1)
    assert town.quality_fit == "heat pump" and town.heat_pump_cop == pytest.approx(cop, rel=1e-12)
    assert town.delivered_mwh_per_mwh == pytest.approx(delivered, rel=1e-12)
    assert town.electricity_mwh_per_mwh == pytest.approx(1 / (cop - 1), rel=1e-12)
    assert town.net_value_per_mwh == pytest.approx(delivered * 30 - 0.05 * 2 - 100 / (cop - 1), rel=1e-12)
    assert town.co2e_avoided_t_per_mwh == pytest.approx(delivered * 0.224 - 0.3 / (cop - 1), rel=1e-9)
    assert town.used_by_optimum
    dryer = find_partners(heat_region, "dairy_heat").partners.set_index("demand_id").loc["dryer_heat"]
    assert dryer.quality_fit == "too cold" and not dryer.used_by_optimum
    assert "110 K" in dryer.what_would_make_it_viable


def test_each_pair_the_candidates_keep_has_its_arcs_figures(heat_region) -> None:
    """The partner search prices a pair as the exchange model does: ratio after losses and heat pump, and
    pipe and electricity costs, equal to the candidate arc's."""
    cands = candidates(heat_region)
    for flow in ("plant_steam", "wwtp_heat"):
        table = find_partners(heat_region, flow).partners.set_index("demand_id")
        for arc in cands.arcs[cands.arcs["supply_id"] == flow].itertuples():
            row = table.loc[arc.demand_id]
            assert row.delivered_mwh_per_mwh == pytest.approx(arc.ratio, rel=1e-12)
            demand = cands.demands.set_index("demand_id").loc[arc.demand_id]
            cost = arc.transport_cost_per_t + arc.processing_cost_per_t
            assert row.receiver_value_per_mwh == pytest.approx(arc.ratio * demand.virgin_price_per_t - cost,
                                                               rel=1e-12)


def test_kalundborg_steam_and_effluent_heat_agree_with_the_optimum() -> None:
    region = load_region(KALUNDBORG)
    results = optimise(region)
    heat = results.exchanges[results.exchanges["quantity"] == "energy"]
    search = find_partners(region, "asnaes_steam")
    table = search.partners.set_index("demand_id")
    assert {"novo_steam", "novozymes_steam", "refinery_steam"} <= set(table.index)
    used = heat[heat["supply_id"] == "asnaes_steam"].set_index("demand_id")["amount_mwh_per_yr"]
    assert len(used) > 0
    for demand_id, mwh in used.items():
        assert table.at[demand_id, "used_by_optimum"]
        assert table.at[demand_id, "optimum_mwh_per_yr"] == pytest.approx(mwh)
        assert table.at[demand_id, "distance_km"] <= 5.0  # steam's reach
    assert search.exchanged_t_per_yr == pytest.approx(used.sum())
    shadow = results.supplies.set_index("supply_id").at["asnaes_steam", "shadow_price_per_t"]
    assert search.shadow_value_per_t == pytest.approx(shadow)
    effluent = find_partners(region, "forsyning_effluent_heat").partners.set_index("demand_id")
    assert effluent.at["town_district_heat", "quality_fit"] == "heat pump"


def invoke(*args: object) -> Result:
    """The CLI on the shipped reference tables (the heat carriers are in data/reference)."""
    return CliRunner().invoke(app, [str(a) for a in args])


def test_cli_partners_for_heat(tmp_path: Path) -> None:
    from tests.test_cli import assert_ok

    out = tmp_path / "partners"
    result = invoke("partners", HEAT, "--flow", "wwtp_heat", "--out", out)
    assert_ok(result)
    assert "MWh/yr" in result.output and "EUR/MWh" in result.output and "heat pump" in result.output
    table = pd.read_csv(out / "partners.csv")
    assert list(table["demand_id"])[0] == "town_heat" and "net_value_per_mwh" in table.columns
    assert (out / "partners_map.html").stat().st_size > 0
    listed = invoke("list", HEAT, "supplies")
    assert_ok(listed)
    assert "wwtp_heat" in listed.output and "plant_steam" in listed.output
    assert "refinery_steam" not in listed.output  # a demand, not a supply


def test_a_new_heat_stream_from_the_command_line_is_ranked_in_mwh(heat_region) -> None:
    """``partners --facility ... --material waste_heat --amount 5000 --unit MWh --quality temperature=40degC``:
    the stream is a heat supply (not a mass flow of 'waste heat' in tonnes) and its receivers are priced per
    MWh; beside the treatment plant it sees the town's 90 °C district heat through the same heat pump."""
    region, flow = add_stream(heat_region, facility_id="datacentre", material="waste_heat", amount=5_000,
                              unit="MWh", lat=57.0, lon=11.0, quality=parse_quality(["temperature=40degC"]))
    added = region.flows.set_index("flow_id").loc[flow]
    assert added["quantity"] == "energy" and added["amount_mwh_per_yr"] == pytest.approx(5_000)
    search = find_partners(region, flow)
    assert search.unit == "MWh"
    town = search.partners.set_index("demand_id").loc["town_heat"]
    assert town.quality_fit == "heat pump"
    assert town.heat_pump_cop == pytest.approx(0.5 * (90 + 273.15) / (90 - 40), rel=1e-12)


def test_the_regions_own_heat_pump_prices_the_partners(heat_region) -> None:
    """partners uses region.yaml's heat_pump: settings as the optimum does (it used the shipped defaults)."""
    from dataclasses import replace

    from symbiosis.region import HeatPumpSettings

    settings = heat_region.settings.model_copy(update={"heat_pump": HeatPumpSettings(
        carnot_fraction=0.4, electricity_price_per_mwh=60.0, electricity_co2e_per_mwh=0.1)})
    region = replace(heat_region, settings=settings)
    town = find_partners(region, "wwtp_heat").partners.set_index("demand_id").loc["town_heat"]
    cop = 0.4 * (90 + 273.15) / (90 - 40)
    delivered = (1 - 0.002 * 2) * cop / (cop - 1)
    assert town.heat_pump_cop == pytest.approx(cop, rel=1e-12)
    assert town.net_value_per_mwh == pytest.approx(delivered * 30 - 0.05 * 2 - 60 / (cop - 1), rel=1e-12)
    assert town.co2e_avoided_t_per_mwh == pytest.approx(delivered * 0.224 - 0.1 / (cop - 1), rel=1e-9)
