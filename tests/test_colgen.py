"""Column generation reaches the monolithic optimum (1e-6 relative), and its pricing is right: at the
monolithic optimum no arc below its capacity prices out negative, and every arc carrying flow strictly
inside its bounds has a zero reduced cost. With processors, heat and intake limits (every family of rows an
arc enters), the pricing formula equals HiGHS's own reduced costs and column generation reaches the
monolithic optimum to 1e-7 on random networks (hypothesis)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from symbiosis.candidates import Candidates
from symbiosis.exchange import ExchangeModel, Solution, exchange_arrays, solve_column_generation, solve_exchange
from symbiosis.exchange.colgen import _full_quality_h, reduced_costs
from symbiosis.network.processors import LINK_COLUMNS, PROCESSOR_COLUMNS
from symbiosis.pipeline import optimise
from symbiosis.results import check_solution
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

    region = load_region(generate_region(300, tmp_path / "region", seed=seed))  # with processors and heat
    cands = candidates(region)
    assert len(cands.arcs) > 1000
    assert cands.processors is not None and len(cands.processors) >= 5
    assert (cands.supplies["quantity"].to_numpy()[cands.arcs["s"].to_numpy()] == "energy").any()
    mono = solve_exchange(cands, decompose=False)
    cg = solve_column_generation(cands, max_master_share=1.0)  # all the way, whatever the master's size
    assert cg.objective == pytest.approx(mono.objective, rel=1e-7)
    assert cg.parameters["strategy"] == "column_generation"
    check_solution(cands, cg, 1e-9)


def test_column_generation_falls_back_to_the_full_lp_when_the_master_would_be_most_of_it():
    c = random_candidates(20, 20, 300, seed=5)
    mono = solve_exchange(c, decompose=False)
    cg = solve_column_generation(c, max_master_share=0.01)
    assert cg.parameters["strategy"] == "monolithic after column generation"
    assert cg.objective == pytest.approx(mono.objective, rel=1e-9)


# --- processors, heat and intake limits: every row family an arc enters ---------------------------------


def network(seed: int, n_supplies: int, n_demands: int, n_arcs: int, n_processors: int) -> Candidates:
    """A random network with every family of rows an arc can enter: supply, demand, share and quality rows
    (random_candidates), intake limits per demand and per facility, processors (activity z, intake and
    outputs following it) and heat rows (MWh; a processor may give off heat, as a digester or a treatment
    plant's effluent does). Heat and mass rows never share an arc; heat demands bound no quality."""
    rng = np.random.default_rng(seed)
    c = random_candidates(n_supplies, n_demands, n_arcs, seed=seed, n_parameters=2)
    sup, dem = c.supplies, c.demands
    s_heat = rng.random(n_supplies) < 0.25
    d_heat = rng.random(n_demands) < 0.25
    for frame, heat in ((sup, s_heat), (dem, d_heat)):
        frame["quantity"] = np.where(heat, "energy", "mass")
        frame["amount_mwh_per_yr"] = np.where(heat, frame["amount_t_per_yr"], np.nan)
        frame["amount_t_per_yr"] = np.where(heat, np.nan, frame["amount_t_per_yr"])
    keep = s_heat[c.arcs["s"].to_numpy()] == d_heat[c.arcs["d"].to_numpy()]
    c.arcs = c.arcs[keep].reset_index(drop=True)
    c.demand_quality = c.demand_quality[~d_heat[c.demand_quality["d"].to_numpy()]].reset_index(drop=True)
    # Facilities: receivers grouped in a few sites, some with an intake capacity over all their demands.
    dem["facility_id"] = [f"site{k}" for k in rng.integers(0, max(2, n_demands // 4), n_demands)]
    received = rng.uniform(20, 400, n_demands)
    mass = ~d_heat
    dem["max_intake_t_per_yr"] = np.where(mass & (rng.random(n_demands) < 0.3), received, np.nan)
    sites = dem.loc[mass, "facility_id"].unique()
    capped = {f: float(rng.uniform(50, 800)) for f in sites if rng.random() < 0.4}
    dem["facility_intake_t_per_yr"] = np.where(mass, dem["facility_id"].map(capped).astype(float), np.nan)
    # Processors: each takes one or two mass demands in and gives one or two outputs (heat allowed).
    procs, links = [], []
    free_d = list(rng.permutation(np.flatnonzero(mass)))
    free_s = list(rng.permutation(n_supplies))
    for k in range(n_processors):
        if len(free_d) < 2 or len(free_s) < 2:
            break
        fid = f"proc{k}"
        activity = float(rng.uniform(5, 50))
        procs.append({"facility_id": fid, "activity": activity, "capacity": activity * rng.uniform(1, 4),
                      "operating_cost_per_unit": float(rng.uniform(0, 20)),
                      "product_value_per_unit": float(rng.uniform(0, 30))})
        for side, free, frame in (("in", free_d, dem), ("out", free_s, sup)):
            for _ in range(int(rng.integers(1, 3))):
                row = int(free.pop())
                per_unit = float(rng.uniform(0.2, 1.5))
                unit = "amount_mwh_per_yr" if frame["quantity"].iloc[row] == "energy" else "amount_t_per_yr"
                frame.loc[row, unit] = per_unit * activity
                frame.loc[row, "facility_id"] = fid
                links.append((side, row, len(procs) - 1, per_unit))
    table = pd.DataFrame([{"process_model": "m", "source": "test", "gate_fee_per_t": 0.0, **p} for p in procs],
                         columns=PROCESSOR_COLUMNS)
    table["capacity"] = table["capacity"].astype(float)
    table["p"] = np.arange(len(table))
    c.processors = table
    c.processor_links = pd.DataFrame(links, columns=LINK_COLUMNS).astype(
        {"row": np.int64, "p": np.int64, "per_unit": float})
    # Facility intake rows exist per facility: processors' own intake counts there too.
    dem["facility_intake_t_per_yr"] = dem.groupby("facility_id")["facility_intake_t_per_yr"].transform("max")
    c.arcs["demand_facility"] = dem["facility_id"].to_numpy()[c.arcs["d"].to_numpy()]
    return c


def _highs_reduced_costs(model: ExchangeModel) -> tuple[Solution, np.ndarray]:
    """A solution and, from the same HiGHS run, the arcs' reduced costs c − Aᵀπ over every row HiGHS holds
    (whatever families the model has), computed from the standard form handed over, not from colgen."""
    model.solve()
    result = model._highs.run(model._options())
    solution = model._extract(result)
    lp = model._highs.lp
    rc = lp.cost - lp.matrix.T @ result.row_dual
    return solution, rc[: model.arrays.n_arcs]


@pytest.mark.parametrize("seed", range(4))
def test_every_arc_row_family_is_priced(seed):
    """The pricing formula, fed the published duals, equals HiGHS's own reduced cost of every arc: a row
    family that arcs enter and ARC_ROW_FAMILIES leaves out makes this fail (checked by removing one)."""
    c = network(seed, 25, 25, 300, n_processors=3)
    model = ExchangeModel(c, carbon_price=40.0, decompose=False)
    solution, expected = _highs_reduced_costs(model)
    arrays = model.arrays
    assert arrays.n_processors and arrays.facility_intake.n_rows and len(arrays.intake_demands)
    assert arrays.quality.n_rows and len(arrays.share_demands)
    got = reduced_costs(arrays, solution, objective=arrays.objective_vector(40.0))
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-7 * max(1.0, np.abs(expected).max()))


def test_leaving_a_family_out_of_the_pricing_is_caught(monkeypatch):
    """The check above is not vacuous: without the facility intake family the formula misprices arcs."""
    from symbiosis.exchange import colgen

    c = network(1, 25, 25, 300, n_processors=3)
    model = ExchangeModel(c, carbon_price=40.0, decompose=False)
    solution, expected = _highs_reduced_costs(model)
    assert np.abs(solution.facility_intake_dual).max() > 1e-6  # the instance binds a facility's intake
    monkeypatch.setattr(colgen, "ARC_ROW_FAMILIES",
                        [f for f in colgen.ARC_ROW_FAMILIES if f.name != "facility_intake"])
    got = reduced_costs(model.arrays, solution, objective=model.arrays.objective_vector(40.0))
    assert np.abs(got - expected).max() > 1e-6


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10**6), n_processors=st.integers(1, 4), carbon_price=st.sampled_from([0.0, 90.0]))
def test_column_generation_with_processors_heat_and_intake_limits(seed, n_processors, carbon_price):
    """Column generation reaches the monolithic optimum (1e-7 relative) with every arc row family present,
    and at its answer no arc below its capacity, inside or outside the final master, prices out negative."""
    c = network(seed, 20, 20, 250, n_processors)
    mono = solve_exchange(c, carbon_price=carbon_price, decompose=False)
    cg = solve_column_generation(c, carbon_price=carbon_price, per_supply=1, per_demand=1, max_master_share=1.0)
    assert cg.parameters["strategy"] == "column_generation"
    assert cg.objective == pytest.approx(mono.objective, rel=1e-7, abs=1e-6)
    arrays = exchange_arrays(c)
    assert len(cg.z) == arrays.n_processors
    rc = reduced_costs(arrays, cg, objective=arrays.objective_vector(carbon_price))
    below_capacity = cg.x < np.nan_to_num(arrays.capacity, nan=np.inf) - 1e-6
    scale = max(1.0, float(np.abs(arrays.objective_vector(carbon_price)).max()))
    assert rc[below_capacity].min() >= -1e-6 * scale
    check_solution(c, cg, 1e-9)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10**6), n_processors=st.integers(0, 3), master_method=st.sampled_from(["simplex", "ipm"]))
def test_warm_rounds_reach_the_cold_optimum(seed, n_processors, master_method):
    """Every round after the first continues from the last round's optimum, whatever the first round's method:
    by default the first model grows (symbiosis.exchange.grow: the entering arcs' columns added to its HiGHS
    instances, used in every later round); with ``grow=False`` a new model is built each round and started from
    the last basis (symbiosis.exchange.warm, accepted in every such round). Both reach the cold optimum and the
    monolithic LP's (1e-7 relative), with no arc below its capacity pricing out negative."""
    c = network(seed, 25, 25, 300, n_processors)
    options = {"carbon_price": 40.0, "per_supply": 1, "per_demand": 1, "max_master_share": 1.0,
               "master_method": master_method}
    grown = solve_column_generation(c, **options)
    warm = solve_column_generation(c, grow=False, **options)
    cold = solve_column_generation(c, warm=False, **options)
    mono = solve_exchange(c, carbon_price=40.0, decompose=False)
    assert cold.parameters["warm_rounds"] == 0 and cold.parameters["grown_rounds"] == 0
    assert warm.parameters["warm_rounds"] == warm.parameters["iterations"] - 1
    assert warm.parameters["grown_rounds"] == 0
    assert grown.parameters["grown_rounds"] == grown.parameters["iterations"] - 1
    arrays = exchange_arrays(c)
    objective = arrays.objective_vector(40.0)
    scale = max(1.0, float(np.abs(objective).max()))
    for solution in (grown, warm):
        assert solution.objective == pytest.approx(cold.objective, rel=1e-7, abs=1e-6)
        assert solution.objective == pytest.approx(mono.objective, rel=1e-7, abs=1e-6)
        # The objective is that of the flows reported over all arcs (a grown model's own columns included).
        columns = np.concatenate([solution.x, solution.w, solution.y, solution.z])
        assert float(objective @ columns) == pytest.approx(mono.objective, rel=1e-7, abs=1e-6)
        assert solution.cost == pytest.approx(float(arrays.cost_vector() @ columns), rel=1e-9, abs=1e-6)
        rc = reduced_costs(arrays, solution, objective=objective)
        below_capacity = solution.x < np.nan_to_num(arrays.capacity, nan=np.inf) - 1e-6
        assert rc[below_capacity].min() >= -1e-6 * scale
        check_solution(c, solution, 1e-9)


def test_a_basis_that_does_not_fit_the_blocks_is_not_used():
    """A start whose basic count does not match a block's rows is refused (the model is then solved cold)
    rather than handed to HiGHS to repair."""
    from symbiosis.exchange import warm

    c = network(3, 15, 15, 150, 1)
    model = ExchangeModel(c, carbon_price=0.0)
    model.solve()
    positions = np.arange(len(c.arcs))
    basis = warm.basis_of(model, positions, len(c.arcs))
    assert basis is not None
    again = ExchangeModel(c, carbon_price=0.0)
    again.hand_over()
    assert warm.start_from(again, basis, positions, len(c.arcs))
    broken = warm.KeyedBasis(cols=basis.cols.copy(), rows=dict(basis.rows))
    broken.cols.iloc[np.flatnonzero(broken.cols.to_numpy() != warm.BASIC)[0]] = warm.BASIC  # one basic too many
    fresh = ExchangeModel(c, carbon_price=0.0)
    fresh.hand_over()
    assert not warm.start_from(fresh, broken, positions, len(c.arcs))
    assert fresh.solve().objective == pytest.approx(model.solve().objective, rel=1e-9)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10**6), n_processors=st.integers(0, 3), carbon_price=st.sampled_from([0.0, 70.0]))
def test_the_whole_lp_added_from_the_arrays_is_the_pyomo_one(seed, n_processors, carbon_price):
    """solve_whole builds only the covering arcs in Pyomo and adds every other arc's column from the arrays:
    the same LP as ExchangeModel hands over, so the same optimum (1e-7), a feasible answer over every arc and no
    arc below capacity pricing out negative against its published duals."""
    from symbiosis.exchange.grow import solve_whole

    c = network(seed, 25, 25, 300, n_processors)
    mono = solve_exchange(c, carbon_price=carbon_price, decompose=False)
    whole = solve_whole(c, carbon_price=carbon_price, method="ipm")
    assert whole.parameters["built_in_pyomo_arcs"] < len(c.arcs)
    assert whole.objective == pytest.approx(mono.objective, rel=1e-7, abs=1e-6)
    assert whole.objective_bau == pytest.approx(mono.objective_bau, rel=1e-12, abs=1e-9)
    arrays = exchange_arrays(c)
    objective = arrays.objective_vector(carbon_price)
    assert float(objective @ np.concatenate([whole.x, whole.w, whole.y, whole.z])) == pytest.approx(
        mono.objective, rel=1e-7, abs=1e-6)
    rc = reduced_costs(arrays, whole, objective=objective)
    below = whole.x < np.nan_to_num(arrays.capacity, nan=np.inf) - 1e-6
    assert rc[below].min() >= -1e-6 * max(1.0, float(np.abs(objective).max()))
    check_solution(c, whole, 1e-9)


def test_large_whole_lps_take_the_grown_path_in_the_pipeline(tiny_region, monkeypatch):
    import symbiosis.pipeline as pipeline

    before = optimise(tiny_region, strategy="monolithic")
    monkeypatch.setattr(pipeline, "WHOLE_LP_GROWN_FROM_ARCS", 0)
    after = optimise(tiny_region, strategy="monolithic")
    assert "built_in_pyomo_arcs" in after.parameters and "built_in_pyomo_arcs" not in before.parameters
    assert after.kpis["objective_optimum"] == pytest.approx(before.kpis["objective_optimum"], rel=1e-9)
    pd_cols = ["supply_id", "demand_id", "amount_t_per_yr"]
    assert after.exchanges[pd_cols].round(6).values.tolist() == before.exchanges[pd_cols].round(6).values.tolist()
