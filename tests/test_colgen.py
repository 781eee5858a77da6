"""Column generation reaches the monolithic optimum (1e-6 relative), and its pricing is right: at the
monolithic optimum no arc below its capacity prices out negative, and every arc carrying flow strictly
inside its bounds has a zero reduced cost."""

from __future__ import annotations

import numpy as np
import pytest

from symbiosis.exchange import ExchangeModel, exchange_arrays, solve_column_generation, solve_exchange
from symbiosis.exchange.colgen import _full_quality_h, reduced_costs
from symbiosis.pipeline import optimise
from tests.helpers_exchange import make_candidates, random_candidates


@pytest.mark.parametrize("seed", range(6))
def test_column_generation_equals_the_monolithic_optimum(seed):
    c = random_candidates(30, 30, 400, seed=seed, n_parameters=3)
    mono = solve_exchange(c, decompose=False)
    cg = solve_column_generation(c, per_supply=1, per_demand=1, max_master_share=1.0)
    assert cg.objective == pytest.approx(mono.objective, rel=1e-6)
    assert cg.parameters["iterations"] >= 1 and len(cg.x) == len(c.arcs)
    # the column-generation answer is a feasible point of the full model with that objective
    arrays = exchange_arrays(c)
    full_objective = arrays.objective_vector(0.0) @ np.concatenate([cg.x, cg.w, cg.y])
    assert full_objective == pytest.approx(mono.objective, rel=1e-6)


@pytest.mark.parametrize("carbon_price", [0.0, 150.0])
def test_reduced_costs_at_the_monolithic_optimum(carbon_price):
    c = random_candidates(25, 25, 300, seed=11)
    model = ExchangeModel(c, carbon_price=carbon_price)
    sol = model.solve()
    arrays = exchange_arrays(c)
    h, _ = _full_quality_h(arrays, model.arrays, sol)
    rc = reduced_costs(arrays, sol, h, arrays.objective_vector(carbon_price))
    capacity = np.nan_to_num(arrays.capacity, nan=np.inf)
    at_upper = np.abs(sol.x - capacity) < 1e-6
    inside = (sol.x > 1e-6) & ~at_upper
    assert (rc[~at_upper] >= -1e-6).all()
    assert np.abs(rc[inside]).max() < 1e-6
    assert (rc[at_upper] <= 1e-6).all()


def test_nothing_worth_exchanging_stops_at_business_as_usual():
    c = make_candidates([{"fate_cost_per_t": 1.0}], [{"virgin_price_per_t": 1.0}],
                        [{"s": 0, "d": 0, "transport_cost_per_t": 5.0}])
    cg = solve_column_generation(c)
    assert cg.x.tolist() == [0.0] and cg.objective == pytest.approx(cg.objective_bau)


def test_pipeline_strategies_agree(tiny_region):
    mono = optimise(tiny_region, strategy="monolithic")
    cg = optimise(tiny_region, strategy="column_generation")
    assert cg.kpis["objective_optimum"] == pytest.approx(mono.kpis["objective_optimum"], rel=1e-9)
    pd_cols = ["supply_id", "demand_id", "amount_t_per_yr"]
    assert mono.exchanges[pd_cols].round(6).values.tolist() == cg.exchanges[pd_cols].round(6).values.tolist()
    with pytest.raises(ValueError, match="strategy"):
        optimise(tiny_region, strategy="magic")


@pytest.mark.slow
@pytest.mark.parametrize("seed", [3, 4])
def test_column_generation_on_generated_regions(tmp_path, seed):
    from symbiosis.candidates import candidates
    from symbiosis.inputs import load_region
    from symbiosis.synthetic import generate_region

    region = load_region(generate_region(300, tmp_path / "region", seed=seed))
    cands = candidates(region)
    assert len(cands.arcs) > 1000
    mono = solve_exchange(cands, decompose=False)
    cg = solve_column_generation(cands, max_master_share=1.0)  # all the way, whatever the master's size
    assert cg.objective == pytest.approx(mono.objective, rel=1e-6)
    assert cg.parameters["strategy"] == "column_generation"


def test_column_generation_falls_back_to_the_full_lp_when_the_master_would_be_most_of_it():
    c = random_candidates(20, 20, 300, seed=5)
    mono = solve_exchange(c, decompose=False)
    cg = solve_column_generation(c, max_master_share=0.01)
    assert cg.parameters["strategy"] == "monolithic after column generation"
    assert cg.objective == pytest.approx(mono.objective, rel=1e-9)
