"""Balance arithmetic: hand-checked figures, a property test on random regions, and conservation with
exchanges in place."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from symbiosis.balances import ConservationError, balances, balances_after, check_conservation
from tests.conftest import TEST_REFERENCE, load_test_region


def test_tiny_balances_by_hand(tiny_region):
    result = balances(tiny_region)
    board = result.facility("board")
    # 25,000 in = 24,000 out + 1,000 stock growth: closes exactly
    assert (board.inputs, board.outputs, board.stock_change, board.closure) == (25_000, 24_000, 1_000, 0)
    cement = result.facility("cement")
    # 100,000 in, 99,000 out: 1,000 t unaccounted, 1 % of inputs, inside the 5 % tolerance
    assert cement.closure == 1_000 and cement.closure_error == pytest.approx(0.01) and cement.within_tolerance
    power = result.facility("power")
    # modelled coal 400,000 + water 100,000 in; CO2 440,000 + fly ash 40,000 + measured gypsum 20,000 out
    assert power.inputs == pytest.approx(500_000) and power.outputs == pytest.approx(500_000)
    assert power.share_measured == pytest.approx(20_000 / 1_000_000)
    assert power.share_modelled == pytest.approx(980_000 / 1_000_000)
    energy = result.facility("power", "energy")
    assert energy.outputs == pytest.approx(1_000_000) and energy.unit == "MWh/yr"
    region = result.region.set_index("quantity").loc["mass"]
    assert region.closure == pytest.approx(1_000)  # the region's closure is the sum of the facilities'


def test_unbalanced_facility_is_a_warning_with_its_figure(tiny_copy):
    def edit(t):
        t["flows"].loc[t["flows"]["flow_id"] == "cement_clinker", "amount"] = "80000"
    result = balances(load_test_region(tiny_copy(edit)))
    cement = result.facility("cement")
    assert not cement.within_tolerance
    assert cement.closure_error == pytest.approx(0.20)
    assert any("cement" in w and "+20.0%" in w for w in result.warnings())


def _region_from_flows(template, rows):
    region = template.copy()
    region.facilities = pd.DataFrame({
        "facility_id": sorted({r["facility_id"] for r in rows}), "name": "f", "sector": "35.11",
        "lat": 55.0, "lon": 11.0, "confidential": False, "process_model": "", "activity": math.nan,
        "activity_unit": ""})
    frame = pd.DataFrame(rows)
    for column in template.flows.columns:
        if column not in frame:
            frame[column] = template.flows[column].iloc[0] if len(template.flows) else ""
    frame["quantity"] = "mass"
    frame["amount_mwh_per_yr"] = math.nan
    region.flows = frame[template.flows.columns]
    return region


amounts = st.floats(min_value=0.0, max_value=1e7, allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@pytest.mark.slow
@given(facilities=st.lists(
    st.tuples(st.lists(amounts, min_size=1, max_size=4), st.lists(amounts, max_size=4),
              st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)),
    min_size=1, max_size=5))
def test_random_regions_report_the_closure_they_were_built_with(tiny_region, facilities):
    rows = []
    expected = {}
    for k, (ins, outs, stock) in enumerate(facilities):
        fid = f"f{k}"
        for j, amount in enumerate(ins):
            rows.append({"flow_id": f"{fid}_in{j}", "facility_id": fid, "direction": "in", "category": "raw_material",
                         "material": "clay", "amount_t_per_yr": amount, "data_quality": "measured"})
        for j, amount in enumerate(outs):
            rows.append({"flow_id": f"{fid}_out{j}", "facility_id": fid, "direction": "out", "category": "waste",
                         "material": "clay", "amount_t_per_yr": amount, "data_quality": "estimated"})
        rows.append({"flow_id": f"{fid}_stock", "facility_id": fid, "direction": "stock",
                     "category": "stock_change", "material": "clay", "amount_t_per_yr": stock,
                     "data_quality": "estimated"})
        expected[fid] = (sum(ins), sum(outs), stock, sum(ins) - sum(outs) - stock)
    result = balances(_region_from_flows(tiny_region, rows), tolerance=0.05)
    for fid, (ins, outs, stock, closure) in expected.items():
        row = result.facility(fid)
        scale = max(ins, outs, abs(stock), 1.0)
        assert row.inputs == pytest.approx(ins, abs=1e-9 * scale)
        assert row.outputs == pytest.approx(outs, abs=1e-9 * scale)
        assert row.closure == pytest.approx(closure, abs=1e-9 * scale)
        if ins > 0:
            assert row.closure_error == pytest.approx(closure / ins, rel=1e-9, abs=1e-12)
        else:
            assert math.isnan(row.closure_error)
        limit = 0.05 * max(ins, outs, abs(stock))
        if abs(abs(closure) - limit) > 1e-6 * scale:  # away from the boundary, where rounding decides
            assert row.within_tolerance == (abs(closure) <= limit)
        assert row.share_measured + row.share_estimated == pytest.approx(1.0 if ins + outs > 0 else 0.0)
    region = result.region.iloc[0]
    assert region.closure == pytest.approx(sum(v[3] for v in expected.values()),
                                           abs=1e-9 * max(1.0, *(max(v[0], v[1]) for v in expected.values())))


def _exchange(supply_id, demand_id, supply_facility, material, amount, ratio):
    return {"supply_id": supply_id, "demand_id": demand_id, "supply_facility": supply_facility,
            "material": material, "amount_t_per_yr": amount, "replaced_t_per_yr": amount * ratio}


def test_exchanges_conserve_mass_per_facility_and_region(tiny_region):
    before = balances(tiny_region)
    exchanges = pd.DataFrame([
        _exchange("power_gypsum", "board_gypsum", "power", "fgd_gypsum", 20_000, 1.0),
        _exchange("power.model.out.fly_ash", "cement_clay", "power", "fly_ash", 30_000, 0.9),
    ])
    after = balances_after(tiny_region, exchanges)
    check_conservation(before, after)
    cement = after.facility("cement")
    # 100,000 - 27,000 virgin + 30,000 fly ash in; the 3,000 t difference shows as its own line
    assert cement.inputs == pytest.approx(103_000) and cement.outputs == pytest.approx(102_000)
    diff = after.flows[after.flows["flow_id"] == "cement_clay.substitution_difference"]
    assert diff["amount_t_per_yr"].iloc[0] == pytest.approx(3_000)
    region_before = before.region.set_index("quantity").loc["mass"]
    region_after = after.region.set_index("quantity").loc["mass"]
    # exchanged tonnes no longer cross the boundary
    # outside inputs fall by the virgin material replaced: 20,000 gypsum + 0.9 x 30,000 clay
    assert region_after.inputs == pytest.approx(region_before.inputs - 20_000 - 27_000)


def test_conservation_check_catches_lost_mass(tiny_region):
    before = balances(tiny_region)
    exchanges = pd.DataFrame([_exchange("power_gypsum", "board_gypsum", "power", "fgd_gypsum", 20_000, 1.0)])
    after = balances_after(tiny_region, exchanges)
    after.table.loc[after.table["facility_id"] == "board", "inputs"] += 5.0
    after.table.loc[after.table["facility_id"] == "board", "closure"] += 5.0
    with pytest.raises(ConservationError, match="board"):
        check_conservation(before, after)


def test_reference_dir_fixture_exists():
    assert (TEST_REFERENCE / "materials.csv").exists()


def test_reconciliation_by_hand(tiny_region):
    from symbiosis.balances import reconcile

    result = reconcile(tiny_region)
    cement = result.flows[result.flows["facility_id"] == "cement"].set_index("flow_id")
    # clay in 100,000 ± 5 % (measured), clinker out 99,000 ± 5 %: closure 1,000 t is shared by variance
    v_in, v_out = (0.05 * 100_000) ** 2, (0.05 * 99_000) ** 2
    assert cement.at["cement_clay", "adjustment"] == pytest.approx(-1_000 * v_in / (v_in + v_out))
    assert cement.at["cement_clinker", "adjustment"] == pytest.approx(1_000 * v_out / (v_in + v_out))
    # every facility closes exactly after reconciliation
    signed = np.where(result.flows["direction"] == "in", 1, -1) * result.flows["reconciled"]
    per_facility = signed.groupby(result.flows["facility_id"]).sum()
    assert np.abs(per_facility.to_numpy()).max() < 1e-6
    facilities = result.facilities.set_index("facility_id")
    assert facilities.at["cement", "chi_square"] == pytest.approx(1_000**2 / (v_in + v_out))
    assert not facilities.at["cement", "gross_error_suspected"]


def test_reconciliation_flags_a_gross_error(tiny_copy):
    from symbiosis.balances import reconcile

    def edit(t):
        t["flows"].loc[t["flows"]["flow_id"] == "cement_clinker", "amount"] = "60000"  # 40 % missing
    facilities = reconcile(load_test_region(tiny_copy(edit))).facilities.set_index("facility_id")
    assert facilities.at["cement", "gross_error_suspected"]
    assert facilities.at["cement", "chi_square"] > 3.84
