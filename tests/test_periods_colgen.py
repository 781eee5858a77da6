"""Column generation over the time-expanded model (symbiosis.periods.solve.solve_expanded): the same optimum as
the monolithic LP and as the LP built bare from the arrays (tests/benchmarks/bare_highs.py, stores included), and
a proof of optimality that covers every arc-period (no reduced cost below zero), on a generated region with
seasonal profiles and stores (symbiosis.periods.seasonal)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from symbiosis import load_region, optimise
from symbiosis.candidates import candidates as build_candidates
from symbiosis.exchange.colgen import reduced_costs
from symbiosis.periods.expand import capacity_parts, expand
from symbiosis.periods.seasonal import add_seasons
from symbiosis.periods.solve import PeriodExchangeModel, solve_expanded
from symbiosis.synthetic import generate_region
from tests.benchmarks.bare_highs import solve_bare


@pytest.fixture(scope="module")
def seasonal(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = generate_region(250, tmp_path_factory.mktemp("seasonal") / "r", seed=3)
    added = add_seasons(folder, n_stores=8, every=2, seed=3)
    assert added["stores"] == 8 and added["demands_with_profile"] > 0 and added["supplies_with_profile"] > 0
    return folder


def test_column_generation_over_periods_is_the_monolithic_and_the_bare_optimum(seasonal: Path) -> None:
    region = load_region(seasonal)
    assert region.time is not None and region.time.n_periods == 12 and len(region.time.stores) == 8
    cands = build_candidates(region)
    share_cap, route = capacity_parts(cands, region.reference.substitutions, region.arcs)
    ex = expand(cands, region.time, share_cap=share_cap, route_capacity=route)
    price = float(cands.parameters["carbon_price"])
    mono, arrays = solve_expanded(ex, carbon_price=price, strategy="monolithic")
    # One arc per supply and demand to start, and no fall-back to the monolithic LP: a region this small would
    # otherwise hand most arcs to the master at once.
    cg, cg_arrays = solve_expanded(ex, carbon_price=price, strategy="column_generation", per_supply=1, per_demand=1,
                                   max_master_share=1.0)
    assert cg.parameters["strategy"] == "column_generation", cg.parameters
    assert cg.parameters["iterations"] >= 2
    # Every round after the first grew the first model (the stores' columns and rows in it from the start).
    assert cg.parameters["grown_rounds"] == cg.parameters["iterations"] - 1
    assert cg.parameters["master_arcs"] < cg.parameters["candidate_arcs"] == len(ex.candidates.arcs)
    assert cg.objective == pytest.approx(mono.objective, rel=1e-8)
    # The LP assembled bare from the candidate tables and the stores' arrays (no Pyomo, no blocks).
    bare_cands = ex.candidates
    bare_cands.storage = PeriodExchangeModel.arrays_of(ex).storage  # type: ignore[attr-defined]
    bare, _, info = solve_bare(bare_cands, carbon_price=price)
    assert info["status"] == "Optimal"
    assert mono.objective == pytest.approx(bare, rel=1e-8)
    # Optimality over every arc-period, from the published duals on the full model's rows: an arc-period at
    # zero has no negative reduced cost (none would improve the optimum by entering), one strictly between
    # zero and its capacity a reduced cost of zero, one at its capacity none above zero.
    objective = cg_arrays.objective_vector(price)
    rc = reduced_costs(cg_arrays, cg, objective=objective)
    tol = 1e-6 * max(1.0, float(np.abs(objective).max()))
    assert len(rc) == len(ex.candidates.arcs)
    capacity = np.nan_to_num(cg_arrays.capacity, nan=np.inf)
    at_zero = cg.x <= 1e-7 * np.maximum(1.0, capacity)
    at_capacity = cg.x >= capacity * (1 - 1e-7)
    between = ~at_zero & ~at_capacity
    assert at_zero.sum() > len(rc) / 2 and between.any()
    assert rc[at_zero].min() >= -tol
    assert np.abs(rc[between]).max() <= tol
    assert not at_capacity.any() or rc[at_capacity].max() <= tol
    # The stores are in every restricted model: their levels are the monolithic optimum's own figures.
    assert cg.storage is not None and mono.storage is not None
    assert float(np.dot(arrays.storage.cost_vector(), np.r_[cg.storage["stock"], cg.storage["put"],
                                                           cg.storage["take"]])) >= 0.0


def test_optimise_takes_the_strategy_for_a_region_with_periods(seasonal: Path) -> None:
    region = load_region(seasonal)
    mono = optimise(region, strategy="monolithic")
    cg = optimise(region, strategy="column_generation")
    assert cg.parameters.get("strategy") in ("column_generation", "monolithic after column generation")
    assert cg.kpis["objective_optimum"] == pytest.approx(mono.kpis["objective_optimum"], rel=1e-8)
    assert cg.kpis["net_cost_saving"] == pytest.approx(mono.kpis["net_cost_saving"], rel=1e-6, abs=1e-3)
    # Annual figures are the sum of the periods, whichever way the LP was solved.
    assert cg.periods.kpis["exchanged_t"].sum() == pytest.approx(
        cg.exchanges["amount_t_per_yr"].fillna(0).sum(), rel=1e-9, abs=1e-6)
    with pytest.raises(ValueError, match="strategy"):
        optimise(region, strategy="fastest")
