"""The exchange LP solved block by block equals the LP solved whole: objective, primal feasibility and the
duals' optimality conditions; the blocks are exactly the connected components of the matrix."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse

from symbiosis.exchange import ExchangeModel, exchange_arrays, solve_exchange
from symbiosis.exchange.blocks import block_labels
from symbiosis.exchange.colgen import _full_quality_h, reduced_costs
from symbiosis.results import check_solution
from tests.helpers_exchange import random_candidates


def test_block_labels_are_the_connected_components():
    # columns 0,1 share row 0; columns 2,3 share row 1; column 4 alone in row 2; row 3 has no term
    A = sparse.csc_matrix(np.array([
        [1, 1, 0, 0, 0],
        [0, 0, 1, 2, 0],
        [0, 0, 0, 0, 3],
        [0, 0, 0, 0, 0],
    ], dtype=float))
    cols, rows = block_labels(A, target_columns=1)
    assert cols.tolist() == [0, 0, 1, 1, 2]
    assert rows.tolist() == [0, 1, 2, 0]
    # packed: components join consecutive blocks until one would pass the target
    cols, rows = block_labels(A, target_columns=4)
    assert cols.tolist() == [0, 0, 0, 0, 1] and rows.tolist() == [0, 0, 1, 0]
    # a coupling row (like the emission cap) makes one block
    coupled = sparse.vstack([A, sparse.csr_matrix(np.ones((1, 5)))]).tocsc()
    cols, rows = block_labels(coupled, target_columns=1)
    assert set(cols.tolist()) == {0} and set(rows.tolist()) == {0}


def _sparse_instance(seed: int):
    # few arcs per node: the supply–demand graph falls apart into many components
    return random_candidates(60, 60, 90, seed=seed, n_parameters=2)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("threads", [1, 2])
def test_blocks_give_the_whole_lp_optimum(seed, threads):
    c = _sparse_instance(seed)
    whole = solve_exchange(c, decompose=False)
    model = ExchangeModel(c, threads=threads, block_columns=1)
    split = model.solve()
    assert whole.parameters["blocks"] == 1
    assert split.parameters["blocks"] > 10  # the test means something only if the LP was split
    assert split.objective == pytest.approx(whole.objective, rel=1e-9)
    assert split.objective_bau == whole.objective_bau
    # feasible for the whole model, and the duals certify optimality: no arc prices out negative
    # below its capacity, every arc strictly inside its bounds has zero reduced cost
    check_solution(c, split)  # raises on any broken row, bound or distance
    arrays = exchange_arrays(c)
    h, _ = _full_quality_h(arrays, model.arrays, split)
    rc = reduced_costs(arrays, split, h, arrays.objective_vector(0.0))
    capacity = np.nan_to_num(arrays.capacity, nan=np.inf)
    at_upper = np.abs(split.x - capacity) < 1e-6
    inside = (split.x > 1e-6) & ~at_upper
    assert (rc[~at_upper] >= -1e-6).all()
    assert np.abs(rc[inside]).max(initial=0.0) < 1e-6


def test_changes_between_solves_reach_every_block():
    c = _sparse_instance(7)
    model = ExchangeModel(c, carbon_price=0.0, block_columns=1)
    base = model.solve()
    assert base.parameters["blocks"] > 10
    for price in (50.0, 400.0):
        model.set_carbon_price(price)
        assert model.resolve().objective == pytest.approx(
            solve_exchange(c, carbon_price=price, decompose=False).objective, rel=1e-9)
    # an emission cap couples the blocks: the LP is handed over again as one, and the cap binds
    model.set_carbon_price(0.0)
    cap = base.co2e_t * 0.97
    model.set_co2_cap(cap)
    capped = model.resolve()
    assert capped.parameters["blocks"] == 1
    assert capped.co2e_t <= cap * (1 + 1e-7)
    reference = ExchangeModel(c, carbon_price=0.0, decompose=False)
    reference.set_co2_cap(cap)
    assert capped.objective == pytest.approx(reference.solve().objective, rel=1e-9)
    model.set_co2_cap(cap * 0.99)  # a bound change on the joined instance
    assert model.resolve().co2e_t <= cap * 0.99 * (1 + 1e-7)


def test_blocks_on_a_generated_region(tmp_path):
    from symbiosis.candidates import candidates
    from symbiosis.inputs import load_region
    from symbiosis.synthetic import generate_region

    cands = candidates(load_region(generate_region(300, tmp_path / "region", seed=2)))
    whole = solve_exchange(cands, decompose=False)
    split = ExchangeModel(cands, threads=2, block_columns=200).solve()
    assert split.parameters["blocks"] > 2
    assert split.objective == pytest.approx(whole.objective, rel=1e-6)
    check_solution(cands, split)


def test_a_time_limit_holds_for_the_whole_solve_not_each_block(monkeypatch):
    import importlib
    import types

    from symbiosis.exchange import SolverError

    blocks = importlib.import_module("symbiosis.exchange.blocks")
    c = _sparse_instance(1)
    assert ExchangeModel(c, block_columns=1, time_limit=10.0, threads=1).solve().status == "optimal"
    # A clock on which every reading is 6 s after the last: the first block starts with 10 s left, the
    # later ones with none, so the solve must stop at the limit (a per-block limit would give each 10 s).
    ticks = iter(range(0, 10_000, 6))
    monkeypatch.setattr(blocks, "time", types.SimpleNamespace(perf_counter=lambda: float(next(ticks))))
    with pytest.raises(SolverError, match="time limit"):
        ExchangeModel(c, block_columns=1, time_limit=10.0, threads=1).solve()


def test_the_cli_passes_threads_to_the_solver(tiny_copy, tmp_path):
    from typer.testing import CliRunner

    from symbiosis.cli import app
    from tests.conftest import TEST_DATA, TEST_MODELS

    env = {"SYMBIOSIS_DATA": str(TEST_DATA), "SYMBIOSIS_MODELS": str(TEST_MODELS)}
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["optimise", str(tiny_copy()), "--out", str(out), "--threads", "1"], env=env)
    assert result.exit_code == 0, result.output
    assert (out / "exchanges.csv").exists()
    refused = CliRunner().invoke(app, ["optimise", str(tiny_copy()), "--out", str(out), "--threads", "0"], env=env)
    assert refused.exit_code != 0 and "threads" in refused.output


def _random_lp(seed: int, n_row: int, n_col: int):
    """A feasible, bounded LP: min c·x, A x ≥ b (b ≤ A·1, so x = 1 is feasible), 0 ≤ x ≤ 2, with few
    non-zeros per column so that its rows and columns fall into several components."""
    from symbiosis.exchange.blocks import StandardForm

    rng = np.random.default_rng(seed)
    rows = rng.integers(0, n_row, size=(n_col, 2))
    data = rng.uniform(0.5, 2.0, size=(n_col, 2))
    matrix = sparse.csc_matrix((data.ravel(), (rows.ravel(), np.repeat(np.arange(n_col), 2))), shape=(n_row, n_col))
    activity = np.asarray(matrix.sum(axis=1)).ravel()
    lower = 0.4 * activity
    cost = rng.uniform(-1.0, 3.0, n_col)
    return StandardForm(cost, np.zeros(n_col), np.full(n_col, 2.0), lower, np.full(n_row, np.inf), matrix, 1.5)


@pytest.mark.parametrize("seed", range(5))
def test_columns_added_to_solved_blocks_give_the_whole_lp_optimum(seed):
    """Column generation grows its model with add_columns: the blocks that a new column joins are merged (from
    their bases), the others gain the column in place; the optimum is that of the LP handed over whole, and a
    block that only gained columns continues from its basis (fewer simplex iterations than a fresh solve)."""
    from symbiosis.exchange.blocks import BlockSolver, StandardForm

    lp = _random_lp(seed, 40, 120)
    options = {"solver": "simplex", "primal_feasibility_tolerance": 1e-9, "dual_feasibility_tolerance": 1e-9}
    whole = BlockSolver(lp, decompose=False).run(options)
    # Start from half the columns (every row kept, each still feasible with its own columns at 2: x = 1 on
    # all columns meets b = 0.4 A·1 when half the columns are doubled... not guaranteed, so keep a slack
    # column per row with a high cost that makes the restricted LP feasible in any case).
    rng = np.random.default_rng(seed)
    first = np.sort(rng.choice(lp.n_col, lp.n_col // 2, replace=False))
    rest = np.setdiff1d(np.arange(lp.n_col), first)
    slack = sparse.identity(lp.n_row, format="csc")
    big = 1e3
    start = StandardForm(np.r_[lp.cost[first], np.full(lp.n_row, big)], np.zeros(len(first) + lp.n_row),
                         np.r_[lp.col_upper[first], np.full(lp.n_row, np.inf)], lp.row_lower.copy(),
                         lp.row_upper.copy(), sparse.hstack([lp.matrix[:, first], slack], format="csc"), lp.offset)
    solver = BlockSolver(start, target_columns=1)
    n_blocks_before = solver.n_blocks
    solver.run(options)
    added = solver.add_columns(lp.cost[rest], lp.col_lower[rest], lp.col_upper[rest], lp.matrix[:, rest])
    assert added.tolist() == list(range(start.n_col, start.n_col + len(rest)))
    assert solver.n_blocks < n_blocks_before  # the new columns joined blocks
    grown = solver.run(options)
    # The slack columns carry nothing at the optimum of the whole (their cost is above any arc's), so the
    # optimum of the grown LP is the whole LP's, and the added columns hold the whole LP's values.
    assert grown.objective == pytest.approx(whole.objective, rel=1e-9, abs=1e-9)
    x = np.zeros(lp.n_col)
    x[first] = grown.col_value[:len(first)]
    x[rest] = grown.col_value[added]
    assert np.all(grown.col_value[len(first):start.n_col] <= 1e-9)
    assert lp.cost @ x + lp.offset == pytest.approx(whole.objective, rel=1e-9, abs=1e-9)
    activity = lp.matrix @ x
    assert np.all(activity >= lp.row_lower - 1e-7)
    # Every column sits in exactly one block and the blocks' own matrices are the LP's.
    seen = np.concatenate([b.cols for b in solver.blocks])
    assert np.array_equal(np.sort(seen), np.arange(solver.lp.n_col))
    assert np.array_equal(np.sort(np.concatenate([b.rows for b in solver.blocks])), np.arange(lp.n_row))


def test_a_column_added_inside_one_block_keeps_its_basis():
    from symbiosis.exchange.blocks import BlockSolver

    lp = _random_lp(7, 30, 80)
    options = {"solver": "simplex"}
    solver = BlockSolver(lp, decompose=False)
    solver.run(options)
    iterations_first = solver.blocks[0].highs.getInfo().simplex_iteration_count
    # A copy of an existing column at a higher cost: it never enters, and the solve from the kept basis needs
    # no pivot at all.
    solver.add_columns(lp.cost[:1] + 10.0, np.zeros(1), np.full(1, 2.0), lp.matrix[:, :1])
    again = solver.run(options)
    assert iterations_first > 0
    assert solver.blocks[0].highs.getInfo().simplex_iteration_count == 0
    assert again.col_value[-1] == 0.0
