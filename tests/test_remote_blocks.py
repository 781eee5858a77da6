"""The LP's blocks solved on Dask distributed workers (symbiosis.exchange.blocks.remote_blocks): the same
optimum as solved in this process, through column generation's grown rounds (merges included) and the
incremental re-optimisation, with every block's answer coming back from a worker."""

from __future__ import annotations

import numpy as np
import pytest

from symbiosis.exchange import solve_column_generation, solve_exchange
from symbiosis.exchange.blocks import remote_blocks
from symbiosis.exchange.incremental import Reoptimiser
from tests.helpers_exchange import random_candidates
from tests.test_colgen import network

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def executor():
    # Worker processes, so every block's LP really is pickled to another interpreter and back.
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) \
            as cluster, distributed.Client(cluster) as client:
        yield client.get_executor()


def test_blocks_on_workers_give_the_local_optimum(executor):
    c = network(4, 30, 30, 350, 2)
    options = {"carbon_price": 25.0, "per_supply": 1, "per_demand": 1, "max_master_share": 1.0,
               "block_columns": 150}
    local = solve_column_generation(c, **options)
    with remote_blocks(executor):
        remote = solve_column_generation(c, **options)
        whole = solve_exchange(c, carbon_price=25.0)
    assert remote.parameters["grown_rounds"] == remote.parameters["iterations"] - 1 >= 1
    assert remote.objective == pytest.approx(local.objective, rel=1e-9, abs=1e-6)
    assert whole.objective == pytest.approx(local.objective, rel=1e-7, abs=1e-6)
    # The same flows where the optimum is unique enough to compare: totals per supply.
    assert np.allclose(remote.w, local.w, atol=1e-6 * max(1.0, float(np.abs(local.w).max())))


def test_incremental_re_optimisation_on_workers(executor):
    c = random_candidates(60, 60, 140, seed=8, n_parameters=1)
    with remote_blocks(executor):
        r = Reoptimiser(c, carbon_price=0.0, per_supply=1, per_demand=1, block_columns=1)
        blocks = r.state.master.model._highs.blocks
        assert len(blocks) > 1 and all(b.remote is not None for b in blocks)  # every answer from a worker
        done = r.change(supply_amount={3: 5.0, 4: 900.0})
    local = Reoptimiser(c, carbon_price=0.0, per_supply=1, per_demand=1, block_columns=1)
    expected = local.change(supply_amount={3: 5.0, 4: 900.0})
    assert done.solution.objective == pytest.approx(expected.solution.objective, rel=1e-9, abs=1e-6)
    assert done.blocks_solved < done.blocks
