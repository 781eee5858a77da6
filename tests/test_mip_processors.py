"""Mixed-integer mode with a processor chain, solved by hand: waste → digester → digestate → farm.

Before this file the MIP mode with processors was tested only through its link bound; here the whole chain
is solved in the MIP mode and every figure (activity, flows, connections built, objective, LP relaxation and
its gap) is checked against the hand solution below.

The chain (invented figures): S0 100 t/yr of food waste (incineration 50 EUR/t) → D0 the digester's intake
(virgin substrate 8 EUR/t); the digester P0 takes 1 t and gives 0.9 t of digestate S1 (landfill 20 EUR/t) per
unit of activity, costs 20 EUR per unit, runs at 40 today and at most 120; S1 → D1 a farm that needs 200 t/yr
of fertiliser (30 EUR/t). Arcs: S0→D0 3 EUR/t, S1→D1 2 EUR/t; connection fixed costs f0 and f1 a year.

By hand (costs per year):
- LP, no fixed costs: a unit of activity costs 20, saves 50 − 3 = 47 of incineration, and its 0.9 t of
  digestate saves 30 − 2 = 28 each on the farm (or costs 20 in landfill): 20 − 47 − 0.9·28 < 0 up to the
  waste's 100 t; on virgin substrate 20 + 8 − 25.2 = 2.8 > 0, so z = 100. x0 = 100, x1 = 90, y1 = 110:
  300 + 180 + 2000 + 3300 = 5780.
- Without the farm link: z = 100 still (20 − 47 + 0.9·20 = −9 < 0), 90 t of digestate landfilled, the farm
  buys 200 t: 300 + 2000 + 1800 + 6000 = 10,100. The farm link is worth 10,100 − 5780 = 4320 a year.
- Without the waste link: z = 0 (2.8 > 0 on virgin substrate), waste incinerated 5000, farm 6000: 11,000.
- MIP with f0 = 500, f1 = 5000 (more than the farm link's 4320): both 5780 + 5500 = 11,280; the waste link
  only 10,100 + 500 = 10,600; the farm link only ≥ 11,000 + 5000; neither 11,000. Optimum 10,600: the waste
  link built, the farm link not.
- LP relaxation: x_a ≤ u_a b_a with u0 = min(100 t of waste, 1 × 120 capacity) = 100 and
  u1 = min(0.9 × 120, 200) = 108, so a tonne costs f/u more: 3 + 5 = 8 and 2 + 5000/108 = 48.30 EUR, below the
  50 the farm link saves per t (20 landfill + 30 fertiliser): the relaxation uses it for all 90 t
  (b1 = 90/108) and pays 5000 × 90/108 = 4166.67 of its fixed cost. Objective 800 + 2000 + 180 + 4166.67 +
  3300 = 10,446.67; gap (10,600 − 10,446.67) / 10,600 = 1.4465 %.
"""

from __future__ import annotations

import numpy as np
import pytest

from symbiosis.candidates import Candidates
from symbiosis.energy.mip import solve_mip
from symbiosis.exchange import solve_exchange
from symbiosis.results import check_solution, why_not_matched
from tests.helpers_exchange import make_candidates
from tests.test_processors import with_processors

RELAXATION = 800 + 2000 + 180 + 5000 * 90 / 108 + 3300


def chain(f0: float, f1: float) -> Candidates:
    cand = make_candidates(
        [{"material": "food_waste", "amount_t_per_yr": 100.0, "fate_cost_per_t": 50.0, "facility_id": "W"},
         {"material": "digestate", "fate_cost_per_t": 20.0, "facility_id": "P"}],
        [{"material": "biogas_feedstock", "virgin_price_per_t": 8.0, "facility_id": "P"},
         {"material": "fertiliser", "amount_t_per_yr": 200.0, "virgin_price_per_t": 30.0, "facility_id": "F"}],
        [{"s": 0, "d": 0, "transport_cost_per_t": 3.0}, {"s": 1, "d": 1, "transport_cost_per_t": 2.0}],
    )
    cand = with_processors(cand, [{"facility_id": "P", "capacity": 120.0, "activity": 40.0,
                                   "operating_cost_per_unit": 20.0}],
                           [("in", 0, 0, 1.0), ("out", 1, 0, 0.9)])
    cand.arcs["fixed_cost_per_yr"] = [f0, f1]
    cand.arcs["min_flow"] = 0.0
    return cand


def test_the_lp_of_the_chain_by_hand() -> None:
    sol = solve_exchange(chain(0.0, 0.0), carbon_price=0.0)
    assert sol.z == pytest.approx([100.0], abs=1e-6)
    assert sol.x == pytest.approx([100.0, 90.0], abs=1e-6)
    assert sol.y == pytest.approx([0.0, 110.0], abs=1e-6)
    assert sol.objective == pytest.approx(5780.0, rel=1e-9)


def test_a_fixed_cost_above_its_worth_leaves_the_farm_link_unbuilt() -> None:
    cand = chain(500.0, 5000.0)
    sol = solve_mip(cand, carbon_price=0.0)
    mip = sol.parameters["mip"]
    assert mip["objective"] == pytest.approx(10_600.0, rel=1e-9)
    assert mip["built"] == [0]  # the waste link only
    assert mip["n_binaries"] == 2 and mip["n_built"] == 1
    assert mip["fixed_cost"] == pytest.approx(500.0)
    assert sol.z == pytest.approx([100.0], abs=1e-6)
    assert sol.x == pytest.approx([100.0, 0.0], abs=1e-6)
    assert sol.w == pytest.approx([0.0, 90.0], abs=1e-6)  # the digestate follows the activity, to landfill
    assert sol.y == pytest.approx([0.0, 200.0], abs=1e-6)
    # The reported objective (fixed costs paid) and the relaxation, by hand.
    assert sol.cost == pytest.approx(10_600.0, rel=1e-9)
    assert mip["lp_relaxation_objective"] == pytest.approx(RELAXATION, rel=1e-9)
    assert mip["relaxation_gap"] == pytest.approx((10_600.0 - RELAXATION) / 10_600.0, rel=1e-7)
    assert mip["relaxation_gap"] == pytest.approx(0.014465, abs=1e-6)
    check_solution(cand, sol, 1e-9)
    reasons = why_not_matched(cand, sol).set_index("supply_id")["reason"]
    assert reasons["S1"] == "connection_not_built"


def test_the_mip_optimum_is_at_least_the_lp_and_equal_without_fixed_costs() -> None:
    lp = solve_exchange(chain(0.0, 0.0), carbon_price=0.0).objective
    free = solve_mip(chain(0.0, 0.0), carbon_price=0.0)
    assert free.parameters["mip"]["objective"] == pytest.approx(lp, rel=1e-9)
    assert free.parameters["mip"]["relaxation_gap"] == pytest.approx(0.0, abs=1e-9)
    assert free.z == pytest.approx([100.0], abs=1e-6)
    for f0, f1 in [(500.0, 5000.0), (100.0, 1000.0), (0.0, 4320.0 - 1.0), (2000.0, 0.0)]:
        mip = solve_mip(chain(f0, f1), carbon_price=0.0).parameters["mip"]
        assert mip["objective"] >= lp - 1e-9 * lp
        assert mip["objective"] >= mip["lp_relaxation_objective"] - 1e-9 * lp


def test_a_farm_link_worth_its_fixed_cost_is_built_and_pays_it() -> None:
    # f1 = 4000 < 4320: building it leaves 320 a year; both links built, 5780 + 500 + 4000.
    sol = solve_mip(chain(500.0, 4000.0), carbon_price=0.0)
    assert sorted(sol.parameters["mip"]["built"]) == [0, 1]
    assert sol.parameters["mip"]["objective"] == pytest.approx(10_280.0, rel=1e-9)
    assert np.asarray(sol.x) == pytest.approx([100.0, 90.0], abs=1e-6)


# --- the same through a region and the pipeline (optimise(..., mode="mip")) ----------------------------


def _processor_region(tmp_path, arcs: str):  # type: ignore[no-untyped-def]
    import shutil
    from pathlib import Path

    from symbiosis.inputs import load_region

    folder = tmp_path / "processor"
    shutil.copytree(Path(__file__).parent / "data" / "regions" / "processor", folder)
    if arcs:
        (folder / "arcs.csv").write_text("supply_facility,demand_facility,fixed_cost_per_yr,capacity_t_per_yr\n" + arcs)
    return load_region(folder)


def test_through_the_pipeline_a_prohibitive_connection_equals_a_closed_route(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A fixed cost above anything the grain → digester link could save leaves it unbuilt: the MIP optimum is
    then the LP optimum with that route closed (capacity 0), digester activity included. With a zero fixed
    cost the MIP is the LP."""
    from symbiosis.pipeline import optimise

    lp = optimise(_processor_region(tmp_path / "lp", ""))
    free = optimise(_processor_region(tmp_path / "free", "brewery,digester,0,\n"), mode="mip")
    assert free.kpis["objective_optimum"] == pytest.approx(lp.kpis["objective_optimum"], rel=1e-9)
    assert free.kpis["mip_n_binaries"] >= 1 and free.kpis["mip_relaxation_gap"] == pytest.approx(0.0, abs=1e-9)
    closed = optimise(_processor_region(tmp_path / "closed", "brewery,digester,,0\n"))
    dear = optimise(_processor_region(tmp_path / "dear", "brewery,digester,1e9,\n"), mode="mip")
    assert dear.kpis["mip_n_built"] == 0
    assert dear.kpis["objective_optimum"] == pytest.approx(closed.kpis["objective_optimum"], rel=1e-9)
    assert dear.kpis["objective_optimum"] >= lp.kpis["objective_optimum"]
    proc = dear.processors.set_index("facility_id")
    assert proc.at["digester", "activity_optimum"] == pytest.approx(
        closed.processors.set_index("facility_id").at["digester", "activity_optimum"], rel=1e-9, abs=1e-9)
    assert dear.supplies.set_index("supply_id").at["brewery_grain", "reason"] == "connection_not_built"
