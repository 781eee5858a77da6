"""Scenarios: changes applied exactly, unknown keys refused, runners (serial, process pool, Dask) agree."""

from __future__ import annotations

import math
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd
import pytest

from symbiosis.compare import compare_runs, run_scenario, run_scenarios, write_comparison
from symbiosis.errors import InputError
from symbiosis.scenarios import Scenario, apply_scenario, load_scenario
from tests.conftest import TEST_DATA, TEST_MODELS, load_test_region

SCENARIOS = TEST_DATA / "scenarios"


@pytest.fixture(autouse=True)
def _test_reference(monkeypatch):
    # Worker processes inherit the environment, so they read the same invented test tables.
    monkeypatch.setenv("SYMBIOSIS_DATA", str(TEST_DATA))
    monkeypatch.setenv("SYMBIOSIS_MODELS", str(TEST_MODELS))


def _scenario(*changes: dict) -> Scenario:
    return Scenario.model_validate({"name": "s", "base": "x", "changes": list(changes)})


def test_doubled_landfill_tax_doubles_that_tax_and_nothing_else(tiny_region):
    changed, overrides, record = apply_scenario(tiny_region, _scenario({"fate_cost": {"fate": "landfill",
                                                                                      "tax_factor": 2}}))
    assert overrides == {}
    fates_before, fates_after = tiny_region.reference.fates, changed.reference.fates
    assert fates_after.at["landfill", "cost_per_t"] == 60 + 25  # gate fee 35 + tax 2 x 25
    assert fates_after.at["landfill", "tax_per_t"] == 50
    pd.testing.assert_frame_equal(fates_after.drop(index="landfill"), fates_before.drop(index="landfill"))
    flows_before, flows_after = tiny_region.flows.set_index("flow_id"), changed.flows.set_index("flow_id")
    # the gypsum has its own contract price for landfill: it moves by the same 25 EUR/t
    assert flows_after.at["power_gypsum", "price_per_t"] == 85
    pd.testing.assert_frame_equal(flows_after.drop(index="power_gypsum"), flows_before.drop(index="power_gypsum"))
    pd.testing.assert_frame_equal(tiny_region.reference.fates, fates_before)  # the base is untouched
    assert "60 -> 85" in record[0]["effect"]


def test_scale_replace_remove_add_and_parameters(tiny_region):
    changed, overrides, record = apply_scenario(tiny_region, _scenario(
        {"scale_flows": {"facility": "power", "material": "fly_ash", "factor": 0.25}},
        {"replace_flow": {"flow_id": "board_gypsum", "amount": 2000, "unit": "t/month"}},
        {"remove_facility": {"facility": "far"}},
        {"add_facility": {"facility_id": "new_power", "name": "New power", "lat": 55.5, "lon": 11.5,
                          "process_model": "power_station", "activity": 1, "activity_unit": "TWh/yr"}},
        {"parameters": {"carbon_price": 100, "max_distance_km": 25, "weight_co2e": 10}},
        {"price": {"material": "clay", "factor": 1.5}},
    ))
    flows = changed.flows.set_index("flow_id")
    assert flows.at["power.model.out.fly_ash", "amount_t_per_yr"] == pytest.approx(10_000)
    assert flows.at["board_gypsum", "amount_t_per_yr"] == pytest.approx(24_000)
    assert "far" not in set(changed.facilities["facility_id"]) and "far_clay" not in flows.index
    assert flows.at["new_power.model.in.coal", "amount_t_per_yr"] == pytest.approx(400_000)
    assert changed.facilities.set_index("facility_id").at["new_power", "sector"] == "35.11"
    assert overrides == {"carbon_price": 100, "max_distance_km": 25, "weights": {"co2e": 10}}
    assert flows.at["cement_clay", "price_per_t"] == 18
    assert len(record) == 6 and all(r["effect"] != "not applied" for r in record)


def test_changes_that_match_nothing_are_errors(tiny_region):
    with pytest.raises(InputError) as info:
        apply_scenario(tiny_region, _scenario({"scale_flows": {"facility": "nowhere", "factor": 2}},
                                              {"fate_cost": {"fate": "moon", "add": 3}}))
    assert len(info.value.problems) == 2


def test_unknown_keys_are_refused_with_a_clear_message(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: bad\nbase: .\nchanges:\n  - fate_cost: {fate: landfill, tax_factr: 2}\n")
    with pytest.raises(InputError) as info:
        load_scenario(path)
    assert any("unknown key" in p.message and "tax_factr" in (p.column or "") for p in info.value.problems)
    path.write_text("name: bad\nbase: .\nchanges:\n  - fate_cost: {fate: landfill}\n")
    with pytest.raises(InputError, match="exactly one of"):
        load_scenario(path)


def _signature(run):
    assert run.ok, run.error
    ex = run.results.exchanges.sort_values(["supply_id", "demand_id"])
    return ({k: v for k, v in run.results.kpis.items() if isinstance(v, (int, float))},
            list(zip(ex["supply_id"], ex["demand_id"], ex["amount_t_per_yr"].round(6), strict=True)))


def _paths():
    return [SCENARIOS / "base.yaml", SCENARIOS / "landfill_tax_doubled.yaml", SCENARIOS / "no_board_plant.yaml"]


@pytest.mark.slow
def test_serial_parallel_and_dask_runners_agree(tmp_path):
    serial = [run_scenario(p) for p in _paths()]
    with ProcessPoolExecutor(max_workers=2) as pool:
        parallel = run_scenarios(_paths(), executor=pool)
    assert [_signature(a) for a in serial] == [_signature(b) for b in parallel]
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        dask_runs = run_scenarios(_paths(), executor=client.get_executor())
    assert [_signature(a) for a in serial] == [_signature(b) for b in dask_runs]


def test_a_failing_scenario_is_reported_while_the_others_finish(tmp_path):
    runs = run_scenarios([*_paths()[:2], SCENARIOS / "broken.yaml"], max_workers=2)
    assert [r.ok for r in runs] == [True, True, False]
    assert "nowhere" in runs[2].error
    comparison = compare_runs(runs)
    assert comparison.failed == {"broken": runs[2].error}
    written = write_comparison(comparison, runs, tmp_path / "cmp")
    assert (tmp_path / "cmp" / "broken" / "error.txt").exists()
    assert "broken" in written["report"].read_text()


def test_comparison_tables(tmp_path):
    runs = [run_scenario(p) for p in _paths()]
    comparison = compare_runs(runs)
    kpis = comparison.kpis.set_index("indicator")
    base, closed = runs[0].results, runs[2].results
    assert kpis.at["net cost saving (money only, carbon cost not included)", "base"] == pytest.approx(
        base.kpis["net_cost_saving"])
    saving_with_carbon = "net saving including carbon cost at the scenario's carbon price"
    assert kpis.at[saving_with_carbon, "base"] == pytest.approx(
        base.kpis["net_cost_saving"] + base.kpis["carbon_price"] * base.kpis["co2e_avoided_t"])
    assert kpis.at["carbon price", "base"] == base.kpis["carbon_price"]
    diff = comparison.differences.set_index("indicator")
    assert diff.at["exchanges", "no_board_plant"] == closed.kpis["n_exchanges"] - base.kpis["n_exchanges"]
    removed = comparison.exchanges[(comparison.exchanges["scenario"] == "no_board_plant")
                                   & (comparison.exchanges["change"] == "removed")]
    assert ("power_gypsum", "board_gypsum") in set(zip(removed["supply_id"], removed["demand_id"], strict=True))
    # a doubled landfill tax makes BAU dearer by exactly 25 EUR/t on every tonne landfilled under BAU
    landfilled = base.supplies.loc[base.supplies["fate"] == "landfill", "amount_t_per_yr"].sum()
    assert runs[1].results.kpis["cost_bau"] - base.kpis["cost_bau"] == pytest.approx(25 * landfilled)
    write_comparison(comparison, runs, tmp_path / "cmp")
    for name in ("kpis_comparison.csv", "kpis_differences.csv", "exchanges_changes.csv", "differences_map.html",
                 "comparison.html", "runs.json", "base/scenario.resolved.yaml", "no_board_plant/exchanges.csv"):
        assert (tmp_path / "cmp" / name).exists(), name
    resolved = (tmp_path / "cmp" / "no_board_plant" / "scenario.resolved.yaml").read_text()
    assert "removed board" in resolved and "carbon_price: 100" in resolved


def test_scenario_base_must_exist(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("name: s\nbase: ../nowhere\n")
    with pytest.raises(InputError, match="base region does not exist"):
        load_scenario(path)


def test_region_copy_is_deep(tiny_region):
    copy = tiny_region.copy()
    copy.flows.loc[0, "amount_t_per_yr"] = -1
    copy.reference.fates.loc["landfill", "cost_per_t"] = math.inf
    assert tiny_region.flows.loc[0, "amount_t_per_yr"] != -1
    assert tiny_region.reference.fates.loc["landfill", "cost_per_t"] == 60
    assert isinstance(load_test_region(Path(TEST_DATA / "regions" / "tiny")).name, str)
