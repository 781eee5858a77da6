"""Permitted tonnages (permits.csv ``max_t_per_yr``) enforced as LP rows: hand-solved cases, the dual, the
independent LP, column generation, the post-solve check and why-not-matched.

Each test fails on the code before this row family: ``max_t_per_yr`` was read and then ignored, so the kiln
below took all 450 t of hazardous ash over its 300 t permit.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from symbiosis.balances import ConservationError
from symbiosis.exchange import solve_exchange
from symbiosis.exchange.colgen import solve_column_generation
from symbiosis.exchange.model import exchange_arrays
from symbiosis.exchange.solve import ExchangeModel
from symbiosis.inputs import load_region
from symbiosis.network.permits import limit_table
from symbiosis.pipeline import optimise
from symbiosis.results import check_solution
from tests.helpers_exchange import random_candidates
from tests.independent import assert_kkt, reference_lp

FACILITIES = """facility_id,name,sector,lat,lon
plantA,Power plant A,35.11,55.60,11.00
plantB,Incinerator B,38.21,55.61,11.00
kiln,Cement kiln,23.51,55.62,11.01
"""
FLOWS = """flow_id,facility_id,direction,category,material,amount,unit,fate,price,price_unit,ewc_code
ashA,plantA,out,waste,fly_ash,200,t,landfill,60,EUR/t,{code}
ashB,plantB,out,waste,fly_ash,250,t,landfill,40,EUR/t,{code}
sand,kiln,in,raw_material,sand,10000,t,,20,EUR/t,
"""
ARCS = """supply_facility,demand_facility,distance_km,cost_per_t
plantA,kiln,1,0
plantB,kiln,1,0
"""


def _region(folder: Path, permits: str | None, code: str = "100116", extra: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "facilities.csv").write_text(FACILITIES)
    (folder / "flows.csv").write_text(FLOWS.format(code=code))
    (folder / "arcs.csv").write_text(ARCS)
    (folder / "region.yaml").write_text("name: Permit\ncurrency: EUR\ndefaults:\n  carbon_price: 0\n"
                                        f"  max_distance_km: 50\n{extra}")
    if permits is not None:
        (folder / "permits.csv").write_text("facility_id,ewc_code,max_t_per_yr,source\n" + permits)
    return folder


# By hand: transport and processing cost nothing and fly ash replaces sand 1:1, so a tonne of ash A used
# saves 60 (landfill) + 20 (sand) = 80 EUR, a tonne of B 40 + 20 = 60 EUR. The kiln needs 10,000 t of sand
# (fly ash at most 30 % of it: 3,000 t, not binding). Without a tonnage it takes all 450 t; with 300 t
# permitted it takes all 200 t of A (the better saving) and 100 t of B. One more permitted tonne brings one
# more tonne of B: 60 EUR/yr, the permit's dual. A supply's dual is the value of one more tonne of it, its
# fate cost included: one more tonne of B goes to landfill (−40); one more tonne of A displaces a tonne of B
# into landfill (−40 too).


def test_a_kiln_permitted_300_t_takes_the_better_ash_first_and_the_permit_is_worth_60_per_t(tmp_path: Path
                                                                                           ) -> None:
    results = optimise(load_region(_region(tmp_path / "r", "kiln,100116,300,permit 2025-3\n")))
    by_supply = results.exchanges.groupby("supply_id")["amount_t_per_yr"].sum()
    assert by_supply["ashA"] == pytest.approx(200.0)
    assert by_supply["ashB"] == pytest.approx(100.0)
    limits = results.permit_limits
    assert len(limits) == 1
    row = limits.iloc[0]
    assert (row["facility_id"], row["ewc_code"]) == ("kiln", "100116")
    assert row["max_t_per_yr"] == pytest.approx(300.0)
    assert row["received_t_per_yr"] == pytest.approx(300.0)
    assert row["permit_dual_per_t"] == pytest.approx(60.0)
    supplies = results.supplies.set_index("supply_id")
    assert supplies.at["ashA", "shadow_price_per_t"] == pytest.approx(-40.0)
    assert supplies.at["ashB", "shadow_price_per_t"] == pytest.approx(-40.0)
    assert supplies.at["ashA", "reason"] == "fully_exchanged"
    assert supplies.at["ashB", "reason"] == "permit_full"
    assert "permitted tonnage" in supplies.at["ashB", "reason_detail"] and "100116" in supplies.at["ashB",
                                                                                                  "reason_detail"]
    # The saving: 200 × 80 + 100 × 60 = 22,000 EUR/yr.
    assert results.kpis["cost_bau"] - results.kpis["cost_optimum"] == pytest.approx(22_000.0)


def test_without_a_tonnage_the_permit_takes_everything(tmp_path: Path) -> None:
    results = optimise(load_region(_region(tmp_path / "r", "kiln,100116,,permit 2025-3\n")))
    assert results.exchanges["amount_t_per_yr"].sum() == pytest.approx(450.0)
    assert results.permit_limits.empty


def test_two_permits_for_one_code_add_up(tmp_path: Path) -> None:
    results = optimise(load_region(_region(tmp_path / "r", "kiln,100116,120,permit 1\nkiln,100116,130,permit 2\n")))
    # 250 t permitted: all of A (200 t) and 50 t of B.
    by_supply = results.exchanges.groupby("supply_id")["amount_t_per_yr"].sum()
    assert by_supply["ashA"] == pytest.approx(200.0) and by_supply["ashB"] == pytest.approx(50.0)
    assert results.permit_limits["max_t_per_yr"].tolist() == pytest.approx([250.0])


def test_limit_table_sums_rows_and_a_row_without_tonnage_lifts_the_limit() -> None:
    permits = pd.DataFrame({"facility_id": ["k", "k", "m", "m", "n"], "ewc_code": ["100116"] * 4 + ["190111"],
                            "max_t_per_yr": [100.0, 50.0, 10.0, np.nan, np.nan], "source": ""})
    table = limit_table(permits)
    assert table is not None
    assert table.to_dict("records") == [{"facility_id": "k", "ewc_code": "100116", "max_t_per_yr": 150.0}]


def test_a_stream_that_needs_no_permit_is_not_counted_against_one(tmp_path: Path) -> None:
    # 100117 is the non-hazardous mirror entry: under permits_required_for: hazardous it needs no permit,
    # so a tonnage listed for it does not bind it (docs/data-format.md); under all_waste it does.
    free = optimise(load_region(_region(tmp_path / "free", "kiln,100117,300,\n", code="100117")))
    assert free.exchanges["amount_t_per_yr"].sum() == pytest.approx(450.0)
    strict = optimise(load_region(_region(tmp_path / "strict", "kiln,100117,300,\n", code="100117",
                                          extra="permits_required_for: all_waste\n")))
    assert strict.exchanges["amount_t_per_yr"].sum() == pytest.approx(300.0)


def test_the_post_solve_check_refuses_a_flow_over_the_permit(tmp_path: Path) -> None:
    from symbiosis.candidates import candidates

    cands = candidates(load_region(_region(tmp_path / "r", "kiln,100116,300,\n")))
    solution = solve_exchange(cands)
    check_solution(cands, solution)
    # Everything shipped (450 t into the kiln), every other row kept: only the permit row is broken.
    s = cands.arcs["s"].to_numpy()
    x = cands.supplies["amount_t_per_yr"].to_numpy(float)[s]
    y = cands.demands["amount_t_per_yr"].to_numpy(float) - np.bincount(
        cands.arcs["d"].to_numpy(), weights=cands.arcs["ratio"].to_numpy(float) * x, minlength=len(cands.demands))
    over = replace(solution, x=x, w=np.zeros(len(cands.supplies)), y=y)
    with pytest.raises(ConservationError, match="over its permitted 300"):
        check_solution(cands, over)


def test_column_generation_and_the_independent_lp_agree_on_the_binding_permit(tmp_path: Path) -> None:
    from symbiosis.candidates import candidates

    cands = candidates(load_region(_region(tmp_path / "r", "kiln,100116,300,\n")))
    model = ExchangeModel(cands)
    solution = model.solve()
    lp = reference_lp(cands)
    assert lp.solve().status == 0
    assert solution.objective == pytest.approx(lp.result.fun, rel=1e-9)  # type: ignore[union-attr]
    arrays = model.arrays
    assert_kkt(lp, solution, arrays.quality_rows, permit_ids=(arrays.permit_facility, arrays.permit_code))
    by_colgen = solve_column_generation(cands, per_supply=1, per_demand=1)
    assert by_colgen.objective == pytest.approx(solution.objective, rel=1e-9)
    assert by_colgen.permit_dual.tolist() == pytest.approx([60.0])


# --- random instances: permits among many arcs ---------------------------------------------------------

_CODES = ["100116", "190111", "160802"]


def _with_permits(seed: int, n_permits: int, fraction: float) -> object:
    c = random_candidates(12, 10, 80, seed=seed)
    rng = np.random.default_rng(seed)
    sup = c.supplies.copy()
    sup["ewc_code"] = rng.choice(_CODES, len(sup))
    sup["needs_permit"] = rng.random(len(sup)) < 0.7
    receivers = c.demands["facility_id"].unique()
    chosen = [(str(rng.choice(receivers)), str(rng.choice(_CODES))) for _ in range(n_permits)]
    table = pd.DataFrame(chosen, columns=["facility_id", "ewc_code"]).drop_duplicates()
    # A tonnage of a fraction of what could come in under the permit, so that many rows bind.
    s, f = c.arcs["s"].to_numpy(), c.arcs["demand_facility"].astype(str).to_numpy()
    amounts = sup["amount_t_per_yr"].to_numpy(float)
    table["max_t_per_yr"] = [fraction * sum(amounts[k] for k in set(s[(f == fac)
                                                                     & (sup["ewc_code"].to_numpy()[s] == code)]))
                             for fac, code in zip(table["facility_id"], table["ewc_code"], strict=True)]
    return replace(c, supplies=sup, permit_limits=table.reset_index(drop=True))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), n_permits=st.integers(1, 8), fraction=st.sampled_from([0.0, 0.1, 0.5, 2.0]))
def test_random_permits_match_the_independent_lp_with_optimal_duals(seed: int, n_permits: int,
                                                                    fraction: float) -> None:
    cands = _with_permits(seed, n_permits, fraction)
    model = ExchangeModel(cands)  # type: ignore[arg-type]
    solution = model.solve()
    check_solution(cands, solution)  # type: ignore[arg-type]
    lp = reference_lp(cands)
    assert lp.solve().status == 0
    assert solution.objective == pytest.approx(lp.result.fun, rel=1e-7, abs=1e-5)  # type: ignore[union-attr]
    arrays = model.arrays
    assert_kkt(lp, solution, arrays.quality_rows, facility_intake_ids=arrays.facility_intake_ids,
               permit_ids=(arrays.permit_facility, arrays.permit_code))
    by_colgen = solve_column_generation(cands, per_supply=1, per_demand=1)  # type: ignore[arg-type]
    assert by_colgen.objective == pytest.approx(solution.objective, rel=1e-7, abs=1e-5)
    full = exchange_arrays(cands)  # type: ignore[arg-type]
    assert np.all(full.permit.activity(by_colgen.x) <= full.permit_limit + 1e-6 * np.maximum(1.0, full.permit_limit))


def test_permit_limits_csv_is_written_with_the_dual(tmp_path: Path) -> None:
    from symbiosis.outputs.export import write_results

    region = load_region(_region(tmp_path / "r", "kiln,100116,300,permit 2025-3\n"))
    written = write_results(optimise(region), tmp_path / "out", region=region)
    table = pd.read_csv(written["permit_limits.csv"], dtype={"ewc_code": str})
    assert table.to_dict("records") == [{"facility_id": "kiln", "ewc_code": "100116", "max_t_per_yr": 300.0,
                                         "received_t_per_yr": pytest.approx(300.0),
                                         "permit_dual_per_t": pytest.approx(60.0)}]


@pytest.mark.parametrize(("tonnage", "text"), [("-5", "negative value"), ("lots", "")])
def test_a_bad_permitted_tonnage_is_a_located_error(tmp_path: Path, tonnage: str, text: str) -> None:
    from symbiosis.errors import InputError

    with pytest.raises(InputError) as caught:
        load_region(_region(tmp_path / "bad", f"kiln,100116,{tonnage},\n"))
    problems = [p for p in caught.value.problems if p.file.endswith("permits.csv") and p.column == "max_t_per_yr"]
    assert problems and problems[0].row == 2 and text in str(problems[0]), str(caught.value)


def test_permit_opportunities_keep_the_processors_in_the_relaxed_solve() -> None:
    """The digester chain of tests/test_processors.py with its only waste arc (food waste → digester) screened
    for want of a permit. Strict, by hand: the digester runs on virgin substrate (8/t) while its digestate
    serves the farm: 5 + 8 + 0.9·(2 − 30) = −12.2 per unit up to 80 t of digestate, z = 80/0.9; the waste is
    incinerated (5000): 5000 + 13·80/0.9 + 2·80 = 6315.56. Relaxed (the arc back): 1160 (test_processors).
    Before, the relaxed solve rebuilt the candidates without their processors and priced something else."""
    from symbiosis.network.permits import opportunities
    from tests.test_processors import digester

    full = digester()
    screened = full.arcs.iloc[[0]].reset_index(drop=True)
    strict = replace(full, arcs=full.arcs.iloc[[1]].reset_index(drop=True), permit_screened=screened)
    solution = solve_exchange(strict, carbon_price=0.0)
    assert solution.objective == pytest.approx(5000 + 13 * 80 / 0.9 + 160, rel=1e-9)
    table = opportunities(strict, solution, lambda c: solve_exchange(c, carbon_price=0.0))
    assert len(table) == 1 and table.at[0, "amount_t_per_yr"] == pytest.approx(100.0)
    assert table.at[0, "gain_total"] == pytest.approx(5000 + 13 * 80 / 0.9 + 160 - 1160, rel=1e-9)
    assert table.at[0, "gain_stream"] == pytest.approx(table.at[0, "gain_total"], rel=1e-12)


def test_the_mip_link_bound_takes_the_permitted_tonnage(tmp_path: Path) -> None:
    """u_a = min(supply, need, share cap, capacity, intake, permit): without the permit it would be each ash's
    own tonnage (200 and 250 t, the kiln's 3000 t share cap being larger); with 300 t permitted, the second
    stays 250 and the first 200 (both below 300). At 150 t permitted both links are bounded by 150."""
    from symbiosis.candidates import candidates
    from symbiosis.energy.mip import link_bounds

    for tonnage, expected in (("300", [200.0, 250.0]), ("150", [150.0, 150.0])):
        cands = candidates(load_region(_region(tmp_path / tonnage, f"kiln,100116,{tonnage},\n")))
        arrays = exchange_arrays(cands)
        assert link_bounds(arrays, np.arange(arrays.n_arcs)).tolist() == pytest.approx(expected)
