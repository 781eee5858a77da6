"""Processors: facilities whose activity is a decision, outputs following inputs through chains.

Hand-solved two-hop network (a waste → digester → digestate → farm), random chains of up to four hops
(hypothesis) checked for yields to 1e-9, mass closure per processor, capacity, BAU ≤ optimum, and the
independent scipy linprog cross-check of test_exchange_invariants extended to processor rows.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from symbiosis.candidates import Candidates
from symbiosis.errors import InputError
from symbiosis.exchange import solve_column_generation, solve_exchange
from symbiosis.exchange.blocks import block_labels
from symbiosis.inputs import load_region
from symbiosis.network.processors import LINK_COLUMNS, PROCESSOR_COLUMNS
from symbiosis.pipeline import optimise
from symbiosis.results import check_solution
from tests.helpers_exchange import make_candidates
from tests.independent import assert_kkt, reference_lp
from tests.test_exchange_invariants import linprog_optimum


def with_processors(cand: Candidates, processors: Sequence[dict[str, Any]],
                    links: Sequence[tuple[str, int, int, float]]) -> Candidates:
    """Attach processors (dicts of PROCESSOR_COLUMNS) and links (side, row, p, per_unit); the linked
    supply and demand amounts are set to per_unit × the processor's current activity (business as usual)."""
    table = pd.DataFrame([{"process_model": "m", "source": "test", "operating_cost_per_unit": 0.0,
                           "gate_fee_per_t": 0.0, "product_value_per_unit": 0.0, **p} for p in processors],
                         columns=PROCESSOR_COLUMNS)
    table["capacity"] = table["capacity"].astype(float)
    table["p"] = np.arange(len(table))
    link_table = pd.DataFrame(links, columns=LINK_COLUMNS).astype({"row": np.int64, "p": np.int64,
                                                                   "per_unit": float})
    for side, frame in (("out", cand.supplies), ("in", cand.demands)):
        part = link_table[link_table["side"] == side]
        frame.loc[part["row"].to_numpy(), "amount_t_per_yr"] = (
            part["per_unit"].to_numpy() * table["activity"].to_numpy(float)[part["p"].to_numpy()])
    cand.processors, cand.processor_links = table, link_table
    return cand


def digester(capacity: float = 120.0) -> Candidates:
    """S0 food waste 100 t/yr (incineration 50 EUR/t) → D0 digester intake (virgin substrate 8 EUR/t);
    digester P0: 1 t intake and 0.9 t digestate S1 (landfill 20 EUR/t) per unit, operating cost 5 EUR/unit,
    current activity 40; S1 → D1 farm fertiliser need 80 t/yr (virgin 30 EUR/t). Arcs: S0→D0 3 EUR/t,
    S1→D1 2 EUR/t.

    By hand: one more unit of activity costs 5, takes 1 t of waste (3 transport − 50 incineration avoided =
    −47) and gives 0.9 t of digestate worth −28 each on the farm (2 − 30) while the farm needs any, +20 each
    to landfill after. So the digester takes all 100 t of waste: 5 − 47 + 0.9·(−28) < 0 up to z = 80/0.9,
    and 5 − 47 + 0.9·20 = −24 < 0 up to z = 100; past the waste, virgin substrate gives 5 + 8 + 18 = 31 > 0.
    Optimum (capacity 120): z = 100, x(S0→D0) = 100, w0 = 0, y0 = 0, digestate 90: x(S1→D1) = 80, w1 = 10,
    y1 = 0; cost 3·100 + 2·80 + 20·10 + 5·100 = 1160. Business as usual: z = 40, w0 = 100, y0 = 40,
    w1 = 36, y1 = 80: 5000 + 320 + 720 + 2400 + 200 = 8640.
    With capacity 60 the capacity binds: z = 60, x0 = 60, w0 = 40, digestate 54 all to the farm, y1 = 26:
    180 + 2000 + 108 + 780 + 300 = 3368.
    """
    cand = make_candidates(
        [{"material": "food_waste", "amount_t_per_yr": 100.0, "fate_cost_per_t": 50.0, "facility_id": "W"},
         {"material": "digestate", "fate_cost_per_t": 20.0, "facility_id": "P"}],
        [{"material": "biogas_feedstock", "virgin_price_per_t": 8.0, "facility_id": "P"},
         {"material": "fertiliser", "amount_t_per_yr": 80.0, "virgin_price_per_t": 30.0, "facility_id": "F"}],
        [{"s": 0, "d": 0, "transport_cost_per_t": 3.0}, {"s": 1, "d": 1, "transport_cost_per_t": 2.0}],
    )
    return with_processors(cand, [{"facility_id": "P", "capacity": capacity, "activity": 40.0,
                                   "operating_cost_per_unit": 5.0}],
                           [("in", 0, 0, 1.0), ("out", 1, 0, 0.9)])


def test_two_hop_digester_matches_the_hand_solution() -> None:
    sol = solve_exchange(digester(), carbon_price=0.0)
    assert sol.z == pytest.approx([100.0], abs=1e-6)
    assert sol.x == pytest.approx([100.0, 80.0], abs=1e-6)
    assert sol.w == pytest.approx([0.0, 10.0], abs=1e-6)
    assert sol.y == pytest.approx([0.0, 0.0], abs=1e-6)
    assert sol.objective == pytest.approx(1160.0, rel=1e-9)
    assert sol.objective_bau == pytest.approx(8640.0, rel=1e-12)
    check_solution(digester(), sol, 1e-9)


def test_capacity_binds() -> None:
    cand = digester(capacity=60.0)
    sol = solve_exchange(cand, carbon_price=0.0)
    assert sol.z == pytest.approx([60.0], abs=1e-6)
    assert sol.x == pytest.approx([60.0, 54.0], abs=1e-6)
    assert sol.y == pytest.approx([0.0, 26.0], abs=1e-6)
    assert sol.objective == pytest.approx(3368.0, rel=1e-9)
    assert linprog_optimum(cand, 0.0) == pytest.approx(3368.0, rel=1e-9)


def test_column_generation_prices_the_processor_rows_to_the_hand_solution() -> None:
    sol = solve_column_generation(digester(), carbon_price=0.0, per_supply=1, per_demand=1)
    assert sol.parameters["strategy"] == "column_generation"
    assert sol.objective == pytest.approx(1160.0, rel=1e-9)
    assert sol.z == pytest.approx([100.0], abs=1e-6)
    check_solution(digester(), sol, 1e-9)


def test_the_block_decomposition_joins_a_processors_intake_and_outputs() -> None:
    """z_p links the digester's intake row with its digestate row: one block, not two."""
    from symbiosis.exchange.solve import ExchangeModel

    em = ExchangeModel(digester(), carbon_price=0.0, block_columns=1)
    assert em.solve().objective == pytest.approx(1160.0, rel=1e-9)
    col_block, _row_block = block_labels(em._highs.lp.matrix, target_columns=1)
    assert col_block.max() == 0  # without z the two hops would be two components
    assert em._highs.n_blocks == 1


# --- random chains: supply → P1 → P2 → ... → final demand ---------------------------------------------


@st.composite
def chains(draw: st.DrawFn) -> Candidates:
    """A chain of 1-4 processors: a waste supply feeds P1; P_k's output feeds P_{k+1}'s intake; the last
    output feeds a final demand. Each processor also has a second output (an exchangeable side stream left
    to its fate), random yields (closing: intake 1 t = main + side), capacities ≥ activity, costs."""
    hops = draw(st.integers(1, 4))
    ints = st.integers
    supplies: list[dict[str, Any]] = [{"amount_t_per_yr": float(draw(ints(10, 500))),
                                       "fate_cost_per_t": float(draw(ints(0, 80))), "facility_id": "W"}]
    demands: list[dict[str, Any]] = []
    arcs: list[dict[str, Any]] = []
    procs, links = [], []
    for k in range(hops):
        main = draw(ints(1, 9)) / 10.0
        activity = float(draw(ints(1, 50)))
        fid = f"P{k}"
        procs.append({"facility_id": fid, "activity": activity,
                      "capacity": activity + float(draw(ints(0, 400))),
                      "operating_cost_per_unit": float(draw(ints(0, 30))),
                      "product_value_per_unit": float(draw(ints(0, 40)))})
        d = len(demands)
        demands.append({"virgin_price_per_t": float(draw(ints(0, 60))), "facility_id": fid,
                        "max_secondary_share": draw(st.sampled_from([1.0, 0.5, 0.9]))})
        links.append(("in", d, k, 1.0))
        arcs.append({"s": len(supplies) - (1 if k == 0 else 2), "d": d,
                     "transport_cost_per_t": float(draw(ints(0, 10))), "ratio": draw(st.sampled_from([1.0, 0.8, 1.5]))})
        s_main = len(supplies)
        supplies.append({"fate_cost_per_t": float(draw(ints(-10, 60))), "facility_id": fid})
        supplies.append({"fate_cost_per_t": float(draw(ints(-10, 60))), "facility_id": fid})
        links.append(("out", s_main, k, main))
        links.append(("out", s_main + 1, k, round(1.0 - main, 10)))
    demands.append({"amount_t_per_yr": float(draw(ints(10, 500))), "virgin_price_per_t": float(draw(ints(0, 90))),
                    "facility_id": "FINAL"})
    arcs.append({"s": len(supplies) - 2, "d": len(demands) - 1, "transport_cost_per_t": float(draw(ints(0, 10)))})
    cand = make_candidates(supplies, demands, arcs)
    return with_processors(cand, procs, links)


def _rows(cand: Candidates, sol: Any) -> tuple[np.ndarray, np.ndarray]:
    arcs = cand.arcs
    shipped = np.bincount(arcs["s"], weights=sol.x, minlength=len(cand.supplies)) + sol.w
    replaced = np.bincount(arcs["d"], weights=arcs["ratio"] * sol.x, minlength=len(cand.demands)) + sol.y
    return shipped, replaced


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cand=chains())
def test_random_chains_keep_yields_mass_capacity_and_bau(cand: Candidates) -> None:
    sol = solve_exchange(cand, carbon_price=0.0)
    links, table = cand.processor_links, cand.processors
    out_amount, in_amount = _rows(cand, sol)
    z = sol.z
    assert len(z) == len(table)
    for link in links.itertuples():
        got = out_amount[link.row] if link.side == "out" else in_amount[link.row]
        expected = link.per_unit * z[link.p]
        assert abs(got - expected) <= 1e-9 * max(1.0, expected), (link, got, expected)
    # Mass closes per processor: intake (reference-input t) = Σ outputs, yields summing to 1.
    for p in range(len(table)):
        intake = in_amount[links[(links.side == "in") & (links.p == p)]["row"]].sum()
        output = out_amount[links[(links.side == "out") & (links.p == p)]["row"]].sum()
        assert output == pytest.approx(intake, rel=1e-9, abs=1e-9)
    # ... and in the region: what enters (the waste, virgin bought) leaves (fates, the final demand's use).
    entering = cand.supplies["amount_t_per_yr"].iloc[0] + sol.y.sum()
    proc_rows = set(links[links.side == "in"]["row"])
    leaving = sol.w.sum() + sum(in_amount[j] for j in range(len(cand.demands)) if j not in proc_rows)
    # With ratios ≠ 1 the intake is counted in reference-input tonnes: compare in those units.
    physical_in = np.bincount(cand.arcs["d"], weights=sol.x, minlength=len(cand.demands))
    ratio_gain = sum((in_amount[j] - sol.y[j]) - physical_in[j] for j in proc_rows)
    assert leaving == pytest.approx(entering + ratio_gain, rel=1e-7, abs=1e-6)
    cap = table["capacity"].to_numpy(float)
    assert np.all(z >= -1e-12) and np.all(z <= cap * (1 + 1e-9))
    assert sol.objective <= sol.objective_bau + 1e-7 * max(1.0, abs(sol.objective_bau))
    check_solution(cand, sol, 1e-9)
    assert sol.objective == pytest.approx(linprog_optimum(cand, 0.0), rel=1e-6, abs=1e-5)
    reference = reference_lp(cand)  # tests/independent.py, built from the raw tables
    assert reference.solve().status == 0
    assert sol.objective == pytest.approx(float(reference.result.fun), rel=1e-6, abs=1e-5)
    # The published duals certify the optimum with the activity columns too (reduced costs of z included).
    from symbiosis.exchange.model import exchange_arrays

    assert_kkt(reference, sol, exchange_arrays(cand).quality_rows)


def test_bau_is_a_feasible_point_of_the_model() -> None:
    """The BAU columns (x = 0, w = a, y = r, z = activity) satisfy every row, with the same objective."""
    from symbiosis.exchange.model import exchange_arrays
    from symbiosis.exchange.solve import Solution

    cand = digester()
    arrays = exchange_arrays(cand)
    bau = Solution(x=np.zeros(arrays.n_arcs), w=arrays.supply_amount.copy(), y=arrays.demand_amount.copy(),
                   supply_dual=np.zeros(2), demand_dual=np.zeros(2), objective=0.0, objective_bau=0.0,
                   status="bau", termination="", solver="", z=arrays.processor_bau.copy())
    check_solution(cand, bau, 1e-12)
    assert arrays.objective_vector(0.0) @ arrays.bau_columns() == pytest.approx(8640.0)


def test_a_solution_whose_outputs_do_not_follow_the_activity_is_refused() -> None:
    from symbiosis.balances import ConservationError

    cand = digester()
    sol = solve_exchange(cand, carbon_price=0.0)
    sol.z = sol.z * 0.5
    with pytest.raises(ConservationError, match="supply S1"):
        check_solution(cand, sol, 1e-9)


# --- a region with a processor, read from files -------------------------------------------------------

REGION = Path(__file__).parent / "data" / "regions" / "processor"


def test_processor_region_runs_its_chain_end_to_end() -> None:
    """6000 t spent grain = 14,400 t of reference substrate (ratio 2.4): it replaces the 5000 t bought and the
    plant grows to 14,400 t/yr (within 30,000); its digestate (0.9395 t per t) follows, 13,528.8 t."""
    region = load_region(REGION)
    results = optimise(region)
    proc = results.processors.set_index("facility_id")
    assert proc.at["digester", "activity_bau"] == pytest.approx(5000.0)
    assert proc.at["digester", "activity_optimum"] == pytest.approx(14400.0, rel=1e-9)
    digestate = results.supplies.set_index("supply_id").loc["digester.model.out.digestate"]
    assert digestate["amount_t_per_yr"] == pytest.approx(0.9395 * 5000.0, rel=1e-9)  # business as usual
    assert digestate["amount_optimum_t_per_yr"] == pytest.approx(0.9395 * 14400.0, rel=1e-9)
    assert digestate["exchanged_t_per_yr"] + digestate["to_fate_t_per_yr"] == pytest.approx(
        digestate["amount_optimum_t_per_yr"], rel=1e-9)
    assert results.kpis["objective_optimum"] <= results.kpis["objective_bau"]
    # The digester's balance after the optimum closes (its model closes; intake and outputs scale with z).
    after = results.balances_after.table.set_index(["facility_id", "quantity"])
    assert after.at[("digester", "mass"), "closure"] == pytest.approx(0.0, abs=1e-6)


def _write_region(tmp_path: Path, processors: str, facilities: str | None = None) -> Path:
    folder = tmp_path / "region"
    shutil.copytree(REGION, folder)
    (folder / "processors.csv").write_text(processors, encoding="utf-8")
    if facilities is not None:
        (folder / "facilities.csv").write_text(facilities, encoding="utf-8")
    return folder


@pytest.mark.parametrize(("text", "message", "column"), [
    ("facility_id,capacity\ndigester,-5\n", "", "capacity"),
    ("facility_id,capacity\ndigester,1000\n", "capacity below the current activity", "capacity"),
    ("facility_id,capacity\nnowhere,1000\n", "unknown facility", "facility_id"),
    ("facility_id,capacity\nbrewery,1000\n", "needs a process model", "facility_id"),
    ("facility_id,capacity,colour\ndigester,9000,red\n", "unknown column", "colour"),
])
def test_bad_processor_rows_are_located_errors(tmp_path: Path, text: str, message: str, column: str) -> None:
    with pytest.raises(InputError) as info:
        load_region(_write_region(tmp_path, text))
    problems = [p for p in info.value.problems if p.file.endswith("processors.csv")]
    assert problems, info.value
    assert any(message in p.message and p.column == column for p in problems), problems
    assert all(p.row == (1 if p.column == "colour" else 2) for p in problems)


def test_unknown_process_model_of_a_processor_is_a_located_error(tmp_path: Path) -> None:
    facilities = (REGION / "facilities.csv").read_text(encoding="utf-8").replace("anaerobic_digester", "no_such_model")
    with pytest.raises(InputError, match="unknown process model"):
        load_region(_write_region(tmp_path, "facility_id,capacity\ndigester,9000\n", facilities))


def test_yields_that_do_not_close_name_the_model_file(tmp_path: Path) -> None:
    models = tmp_path / "models"
    shutil.copytree(Path(__file__).parents[1] / "models", models)
    path = models / "anaerobic_digester.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("amount: 0.9395", "amount: 0.5"), encoding="utf-8")
    with pytest.raises(InputError) as info:
        load_region(REGION, models_directory=models)
    found = [p for p in info.value.problems if p.file == "models/anaerobic_digester.yaml"]
    assert found and "do not close" in found[0].message and "1 t in, 0.5605 t out" in str(found[0].found)


def test_a_model_that_does_not_close_is_reported_once_for_all_its_processors(tmp_path: Path) -> None:
    """The closure is the model file's problem: checked once per model, not once per processor using it
    (300 processors of two models in a generated 10,000-facility region)."""
    models = tmp_path / "models"
    shutil.copytree(Path(__file__).parents[1] / "models", models)
    path = models / "anaerobic_digester.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("amount: 0.9395", "amount: 0.5"), encoding="utf-8")
    facilities = (REGION / "facilities.csv").read_text(encoding="utf-8")
    facilities += "digester2,Second biogas plant,35.21,55.675,11.105,false,anaerobic_digester,4000,t/yr\n"
    folder = _write_region(tmp_path, "facility_id,capacity\ndigester,30000\ndigester2,8000\n", facilities)
    with pytest.raises(InputError) as info:
        load_region(folder, models_directory=models)
    found = [p for p in info.value.problems if p.file == "models/anaerobic_digester.yaml"]
    assert len(found) == 1 and "do not close" in found[0].message


def test_kalundborg_biogas_scenario_lets_the_digestate_follow_the_intake() -> None:
    """scenarios/biogas_processor.yaml: the plant's digestate is 0.9395 t per t of substrate at whatever
    activity the optimum picks (the model's 281,850 t/yr at 300,000 t/yr is 0.9395 × 300,000), never above
    the capacity; the shipped 2010 region has neither the plant (opened 2018: the scenario adds it) nor a
    processor."""
    from symbiosis.scenarios import apply_scenario, load_scenario

    scenario, _ = load_scenario(Path(__file__).parents[1] / "scenarios" / "biogas_processor.yaml")
    base = load_region(Path(__file__).parents[1] / "data" / "regions" / "kalundborg")
    assert base.processors is None or base.processors.empty
    assert "kalundborg_bioenergi" not in set(base.facilities["facility_id"])
    region, overrides, log = apply_scenario(base, scenario)
    assert [entry["operation"] for entry in log] == ["add_facility", "processor"]
    results = optimise(region, **overrides)
    proc = results.processors.set_index("facility_id").loc["kalundborg_bioenergi"]
    assert proc["activity_bau"] == pytest.approx(300000.0)
    assert 0 <= proc["activity_optimum"] <= 400000.0 * (1 + 1e-9)
    digestate = results.supplies.set_index("supply_id").loc["kalundborg_bioenergi.model.out.digestate"]
    assert digestate["amount_t_per_yr"] == pytest.approx(281850.0)
    assert digestate["amount_optimum_t_per_yr"] == pytest.approx(0.9395 * proc["activity_optimum"], rel=1e-9)
    assert results.kpis["objective_optimum"] <= results.kpis["objective_bau"]


def test_a_processor_change_naming_a_facility_without_a_model_is_a_located_error() -> None:
    from symbiosis.scenarios import Scenario, apply_scenario

    base = load_region(Path(__file__).parents[1] / "data" / "regions" / "kalundborg")
    scenario = Scenario.model_validate({"name": "bad", "base": ".", "changes": [
        {"processor": {"facility": "nowhere", "capacity": 10}}]})
    with pytest.raises(InputError, match="unknown facility"):
        apply_scenario(base, scenario)
