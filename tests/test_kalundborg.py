"""The shipped Kalundborg region: its balances close, the optimum reproduces the real exchanges that the
data supports, and the results match the stored expected results (rewrite them deliberately with
``pytest tests/test_kalundborg.py --update-expected`` and review the diff)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from symbiosis.balances import balances
from symbiosis.inputs import load_region
from symbiosis.pipeline import optimise
from tests.conftest import REPO

KALUNDBORG = REPO / "data" / "regions" / "kalundborg"
EXPECTED = Path(__file__).parent / "expected" / "kalundborg.json"
KPI_KEYS = ["net_cost_saving", "cost_bau", "cost_optimum", "co2e_bau_t", "co2e_optimum_t", "co2e_avoided_t",
            "waste_diverted_t", "virgin_avoided_t", "water_saved_m3", "tkm", "n_exchanges",
            "n_facilities_participating"]


@pytest.fixture(scope="module")
def region():
    return load_region(KALUNDBORG)


@pytest.fixture(scope="module")
def results(region):
    return optimise(region)


def test_every_facility_balance_closes(region):
    table = balances(region).table
    mass = table[table["quantity"] == "mass"]
    assert len(mass) == len(region.facilities)
    assert mass["within_tolerance"].all(), mass.loc[~mass["within_tolerance"], ["facility_id", "closure_error"]]


@pytest.mark.parametrize(("supply", "demand"), [
    ("asnaes_fgd_gypsum", "gyproc_natural_gypsum"),   # FGD gypsum replaces natural gypsum at Gyproc
    ("asnaes_fly_ash", "aalborg_mill_clinker"),        # fly ash to cement
    ("refinery_sulphur", "kemira_sulphur"),            # sulphur to sulphuric acid
    ("refinery_cooling_water", "asnaes_process_water"),  # refinery cooling water to the power station
])
def test_real_exchanges_are_reproduced(results, supply, demand):
    ex = results.exchanges
    hit = ex[(ex["supply_id"] == supply) & (ex["demand_id"] == demand)]
    assert len(hit) == 1 and hit["amount_t_per_yr"].iloc[0] > 0


def test_optimum_is_no_worse_than_bau_and_mass_is_conserved(results):
    k = results.kpis
    assert k["objective_optimum"] <= k["objective_bau"] + 1e-9 * abs(k["objective_bau"])
    before = results.balances.region.set_index("quantity").loc["mass"]
    after = results.balances_after.region.set_index("quantity").loc["mass"]
    assert after["closure"] == pytest.approx(before["closure"], rel=1e-9, abs=1e-6)



def test_no_exchange_beyond_its_distance_limit(region, results):
    from symbiosis.candidates import candidates

    arcs = candidates(region).arcs[["supply_id", "demand_id", "max_distance_km"]]
    used = results.exchanges.merge(arcs, on=["supply_id", "demand_id"], how="left")
    assert used["max_distance_km"].notna().all()
    assert (used["distance_km"] <= used["max_distance_km"] + 1e-9).all()


def _snapshot(results) -> dict:
    ex = results.exchanges.sort_values(["supply_id", "demand_id"])
    return {
        "kpis": {k: results.kpis[k] for k in KPI_KEYS},
        "exchanges": [[r.supply_id, r.demand_id, round(float(r.amount_t_per_yr), 3)] for r in ex.itertuples()],
    }


def test_matches_expected_results(results, update_expected):
    current = _snapshot(results)
    if update_expected or not EXPECTED.exists():
        EXPECTED.parent.mkdir(exist_ok=True)
        EXPECTED.write_text(json.dumps(current, indent=1) + "\n")
        if not update_expected:
            pytest.fail(f"{EXPECTED} did not exist; written now: review and commit it")
    expected = json.loads(EXPECTED.read_text())
    for key, value in expected["kpis"].items():
        assert current["kpis"][key] == pytest.approx(value, rel=1e-6, abs=1e-6), key
    assert [e[:2] for e in current["exchanges"]] == [e[:2] for e in expected["exchanges"]]
    for got, want in zip(current["exchanges"], expected["exchanges"], strict=True):
        assert got[2] == pytest.approx(want[2], rel=1e-6, abs=1e-3), got[:2]
