"""Re-optimising after a change of amounts and prices (symbiosis.exchange.incremental) gives the optimum of the
changed LP solved from nothing (1e-7 relative), re-solves only the blocks the change is in, leaves the flows of
every other block as they were, and proves the whole optimal: no arc of the region below its capacity prices out
negative against the new duals."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from symbiosis.exchange import exchange_arrays, solve_exchange
from symbiosis.exchange.colgen import reduced_costs
from symbiosis.exchange.incremental import Reoptimiser, StructuralChange
from symbiosis.results import check_solution
from tests.helpers_exchange import random_candidates
from tests.test_colgen import network


def _changed(c, supply_amount=None, demand_amount=None, fate_cost=None, virgin_price=None):
    """The candidates with the change written into their tables, as a fresh solve would read them."""
    sup, dem = c.supplies.copy(), c.demands.copy()
    for table, values in ((sup, supply_amount), (dem, demand_amount)):
        for row, value in (values or {}).items():
            energy = "quantity" in table and table["quantity"].iloc[row] == "energy"
            table.loc[table.index[row], "amount_mwh_per_yr" if energy else "amount_t_per_yr"] = value
    for row, value in (fate_cost or {}).items():
        sup.loc[sup.index[row], "fate_cost_per_t"] = value
    for row, value in (virgin_price or {}).items():
        dem.loc[dem.index[row], "virgin_price_per_t"] = value
    return dataclasses.replace(c, supplies=sup, demands=dem)


def _assert_optimal(c, solution, carbon_price):
    fresh = solve_exchange(c, carbon_price=carbon_price, decompose=False)
    assert solution.objective == pytest.approx(fresh.objective, rel=1e-7, abs=1e-6)
    assert solution.objective_bau == pytest.approx(fresh.objective_bau, rel=1e-9, abs=1e-6)
    arrays = exchange_arrays(c)
    objective = arrays.objective_vector(carbon_price)
    columns = np.concatenate([solution.x, solution.w, solution.y, solution.z])
    assert float(objective @ columns) == pytest.approx(fresh.objective, rel=1e-7, abs=1e-6)
    rc = reduced_costs(arrays, solution, objective=objective)
    below = solution.x < np.nan_to_num(arrays.capacity, nan=np.inf) - 1e-6
    assert rc[below].min() >= -1e-6 * max(1.0, float(np.abs(objective).max()))
    check_solution(c, solution, 1e-9)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10**6), n_processors=st.integers(0, 2), factor=st.floats(0.2, 3.0))
def test_a_change_of_amounts_and_prices_reaches_the_fresh_optimum(seed, n_processors, factor):
    c = network(seed, 25, 25, 300, n_processors)
    r = Reoptimiser(c, carbon_price=30.0, per_supply=1, per_demand=1)
    arrays = exchange_arrays(c)
    rng = np.random.default_rng(seed)
    free_s = np.setdiff1d(np.arange(arrays.n_supplies), arrays.out_rows)
    free_d = np.setdiff1d(np.arange(arrays.n_demands), arrays.in_rows)
    s = rng.choice(free_s, 3, replace=False)
    d = rng.choice(free_d, 3, replace=False)
    change = {"supply_amount": {int(k): float(arrays.supply_amount[k] * factor) for k in s},
              "demand_amount": {int(k): float(arrays.demand_amount[k] * factor) for k in d},
              "fate_cost": {int(s[0]): float(arrays.fate_cost[s[0]] + 40.0)},
              "virgin_price": {int(d[0]): float(arrays.virgin_price[d[0]] * factor)}}
    done = r.change(**change)
    _assert_optimal(_changed(c, **change), done.solution, 30.0)
    # A second change, on top of the first, from the state the first left.
    again = {"supply_amount": {int(s[1]): float(arrays.supply_amount[s[1]])}}
    done = r.change(**again)
    _assert_optimal(_changed(_changed(c, **change), **again), done.solution, 30.0)


def test_only_the_changed_blocks_are_solved_and_the_others_keep_their_flows():
    # Few arcs per node: the region falls apart into many independent blocks.
    c = random_candidates(80, 80, 120, seed=5, n_parameters=1)
    r = Reoptimiser(c, carbon_price=0.0, per_supply=1, per_demand=1, block_columns=1)
    solver = r.state.master.model._highs
    before = r.solution.x.copy()
    assert solver.n_blocks >= 4
    # The supply row with the most arcs in the master, doubled.
    arrays = exchange_arrays(c)
    s = int(np.argmax(np.bincount(arrays.arc_s, weights=before > 0, minlength=arrays.n_supplies)))
    done = r.change(supply_amount={s: 2.0 * float(arrays.supply_amount[s])})
    _assert_optimal(_changed(c, supply_amount={s: 2.0 * float(arrays.supply_amount[s])}), done.solution, 0.0)
    assert done.blocks_solved < done.blocks
    assert done.arcs_priced == len(c.arcs)
    # Arcs in blocks that were not solved again carry exactly what they did.
    master = r.state.master
    arc_block = np.full(len(c.arcs), -1)
    arc_block[master.positions] = solver.col_block[master.arc_col]
    row_block = solver.row_block[r.state.master.model._rows.supply_rows[s]]
    untouched = (arc_block >= 0) & (arc_block != row_block)
    assert untouched.any()
    assert np.array_equal(done.solution.x[untouched], before[untouched])


def test_structural_changes_and_processor_rows_are_refused():
    c = network(2, 15, 15, 150, 1)
    r = Reoptimiser(c, carbon_price=0.0, per_supply=1, per_demand=1)
    arrays = exchange_arrays(c)
    with pytest.raises(StructuralChange, match="processor"):
        r.change(supply_amount={int(arrays.out_rows[0]): 1.0})
    moved = c.supplies.copy()
    moved.loc[moved.index[0], "fate_co2e_per_t"] = 9.0
    with pytest.raises(StructuralChange, match="fate_co2e_per_t"):
        r.changes_from(supplies=moved)
    with pytest.raises(StructuralChange, match="other rows"):
        r.changes_from(supplies=c.supplies.iloc[1:])
    # Amount and price changes are found, by row, in t or MWh as the row's quantity says.
    s = int(np.setdiff1d(np.arange(arrays.n_supplies), arrays.out_rows)[0])
    d = int(np.setdiff1d(np.arange(arrays.n_demands), arrays.in_rows)[0])
    changed = _changed(c, supply_amount={s: 7.0}, virgin_price={d: 11.0})
    found = r.changes_from(supplies=changed.supplies, demands=changed.demands)
    assert found == {"supply_amount": {s: 7.0}, "virgin_price": {d: 11.0}}
    done = r.change(**found)
    _assert_optimal(changed, done.solution, 0.0)
    assert r.changes_from(supplies=changed.supplies, demands=changed.demands) == {}


def _moved(c, seed, *, drop=0.5, cost=(0.2, 3.0), quality=1.3):
    """The candidates after one supply's facility moved: its arcs' transport costs scaled, some of its arcs gone
    (only where their demand keeps another arc, so that no row appears or goes) and its composition changed."""
    rng = np.random.default_rng(seed)
    arcs = c.arcs.copy()
    s0 = int(rng.integers(0, len(c.supplies)))
    mine = arcs["s"].to_numpy() == s0
    arcs.loc[mine, "transport_cost_per_t"] = arcs.loc[mine, "transport_cost_per_t"] * rng.uniform(*cost, mine.sum())
    d = arcs["d"].to_numpy()
    counts = np.bincount(d, minlength=len(c.demands))
    gone = mine & (counts[d] > 1) & (rng.random(len(arcs)) < drop)
    arcs = arcs[~gone].reset_index(drop=True)
    sq = c.supply_quality.copy()
    sq.loc[sq["s"] == s0, "value"] = sq.loc[sq["s"] == s0, "value"] * quality
    return dataclasses.replace(c, arcs=arcs, supply_quality=sq), s0, int(gone.sum())


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10**6), n_processors=st.integers(0, 2))
def test_changed_arcs_reach_the_fresh_optimum(seed, n_processors):
    c = network(seed, 25, 25, 300, n_processors)
    r = Reoptimiser(c, carbon_price=30.0, per_supply=1, per_demand=1)
    new, s0, gone = _moved(c, seed)
    done = r.update(new)
    _assert_optimal(new, done.solution, 30.0)
    assert done.arcs_priced == len(new.arcs)
    # A second move, from the state the first left, with the amounts changed too.
    again, _, _ = _moved(new, seed + 1, quality=0.8)
    sup = again.supplies.copy()
    free = np.setdiff1d(np.arange(len(sup)), exchange_arrays(again).out_rows)
    column = np.where(sup["quantity"].iloc[free[0]] == "energy", "amount_mwh_per_yr", "amount_t_per_yr")
    sup.loc[sup.index[free[0]], str(column)] = 2.0 * float(sup[str(column)].iloc[free[0]])
    again = dataclasses.replace(again, supplies=sup)
    done = r.update(again)
    _assert_optimal(again, done.solution, 30.0)
    assert r.changes_from(supplies=again.supplies, demands=again.demands) == {}


def test_a_retired_arc_carries_nothing_and_an_arc_that_comes_within_reach_is_used():
    c = network(7, 20, 20, 200, 0)
    r = Reoptimiser(c, carbon_price=0.0, per_supply=1, per_demand=1)
    used = np.flatnonzero(r.solution.x > 1e-6)
    assert len(used)
    # The used arc whose demand keeps another arc goes (its supply moved out of reach)...
    d = c.arcs["d"].to_numpy()
    counts = np.bincount(d, minlength=len(c.demands))
    a = int(used[counts[d[used]] > 1][0])
    gone = c.arcs.drop(index=c.arcs.index[a]).reset_index(drop=True)
    new = dataclasses.replace(c, arcs=gone)
    done = r.update(new)
    _assert_optimal(new, done.solution, 0.0)
    assert len(done.solution.x) == len(new.arcs)
    # ... and comes back, cheaper than it was: the fresh optimum again, with the arc in use.
    back = c.arcs.copy()
    back.loc[back.index[a], "transport_cost_per_t"] = 0.0
    back.loc[back.index[a], "processing_cost_per_t"] = 0.0
    new = dataclasses.replace(c, arcs=back)
    done = r.update(new)
    _assert_optimal(new, done.solution, 0.0)
    assert done.solution.x[a] > 1e-6


def test_a_moved_facility_in_a_generated_region(tmp_path):
    from symbiosis.candidates import candidates
    from symbiosis.inputs import load_region
    from symbiosis.synthetic import generate_region

    region = load_region(generate_region(300, tmp_path / "region", seed=2))  # with processors and heat
    c = candidates(region)
    r = Reoptimiser(c, carbon_price=80.0)
    facilities = region.facilities
    applied = 0
    for k in range(4):
        moved = facilities.copy()
        at = moved.index[(7 * k + 3) % len(moved)]
        moved.loc[at, "lat"] += 0.03
        moved.loc[at, "lon"] -= 0.03
        changed = dataclasses.replace(region, facilities=moved)
        new = candidates(changed)
        try:
            done = r.update(new)
        except StructuralChange as exc:  # a demand reached for the first time: its rows are new
            assert "rows" in str(exc)
            continue
        applied += 1
        _assert_optimal(new, done.solution, 80.0)
        region, facilities = changed, moved
    assert applied >= 2


def test_new_streams_and_new_rows_are_refused_and_leave_the_optimum_as_it_was():
    c = network(3, 15, 15, 150, 1)
    r = Reoptimiser(c, carbon_price=0.0, per_supply=1, per_demand=1)
    objective = r.solution.objective
    fewer = dataclasses.replace(c, supplies=c.supplies.iloc[:-1].reset_index(drop=True),
                                arcs=c.arcs[c.arcs["s"] < len(c.supplies) - 1].reset_index(drop=True))
    with pytest.raises(StructuralChange, match="new or removed stream"):
        r.update(fewer)
    # Every arc into one demand gone: its quality rows go with them.
    d0 = int(exchange_arrays(c).quality_rows["d"].iloc[0])
    lonely = dataclasses.replace(c, arcs=c.arcs[c.arcs["d"] != d0].reset_index(drop=True))
    with pytest.raises(StructuralChange, match="rows"):
        r.update(lonely)
    # Another carbon price moves every column's cost: solved again, not re-optimised.
    pricier = dataclasses.replace(c, parameters={**c.parameters, "carbon_price": 99.0})
    with pytest.raises(StructuralChange, match="carbon_price"):
        r.update(pricier)
    # Refused changes leave the kept model as it was: a change of nothing re-optimises to the same optimum.
    done = r.update(c)
    assert done.solution.objective == pytest.approx(objective, rel=1e-9, abs=1e-9)
    assert done.blocks_solved == 0


def test_the_same_streams_in_another_order_are_the_same_model():
    from symbiosis.exchange.incremental import in_order_of

    c = network(11, 25, 25, 300, 2)
    r = Reoptimiser(c, carbon_price=30.0, per_supply=1, per_demand=1)
    rng = np.random.default_rng(11)
    ps, pd_ = rng.permutation(len(c.supplies)), rng.permutation(len(c.demands))
    to_s, to_d = np.empty_like(ps), np.empty_like(pd_)
    to_s[ps], to_d[pd_] = np.arange(len(ps)), np.arange(len(pd_))
    arcs = c.arcs.copy()
    arcs["s"], arcs["d"] = to_s[arcs["s"].to_numpy()], to_d[arcs["d"].to_numpy()]
    sq, dq = c.supply_quality.copy(), c.demand_quality.copy()
    sq["s"], dq["d"] = to_s[sq["s"].to_numpy()], to_d[dq["d"].to_numpy()]
    links = c.processor_links.copy()
    rows = links["row"].to_numpy()
    links["row"] = np.where(links["side"] == "out", to_s[np.minimum(rows, len(ps) - 1)],
                            to_d[np.minimum(rows, len(pd_) - 1)])
    shuffled = dataclasses.replace(
        c, supplies=c.supplies.iloc[ps].reset_index(drop=True), demands=c.demands.iloc[pd_].reset_index(drop=True),
        arcs=arcs.sample(frac=1.0, random_state=1).reset_index(drop=True), supply_quality=sq,
        demand_quality=dq.sample(frac=1.0, random_state=2).reset_index(drop=True), processor_links=links)
    back = in_order_of(shuffled, c)
    for name in ("supplies", "demands", "arcs", "supply_quality", "processor_links"):
        mine, theirs = getattr(back, name), getattr(c, name)
        key = list(theirs.columns)
        assert mine[key].sort_values(key).reset_index(drop=True).equals(
            theirs.sort_values(key).reset_index(drop=True)), name
    # The same model: nothing to re-solve, the same optimum.
    done = r.update(shuffled)
    assert done.blocks_solved == 0 and done.arcs_added == 0
    _assert_optimal(c, done.solution, 30.0)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10**6), factor=st.floats(0.3, 2.5))
def test_a_processors_changed_yields_reach_the_fresh_optimum(seed, factor):
    # A processor's stream edited: its yield per unit of activity (the link's per_unit) changes, and the
    # stream's amount with it; the rows stay.
    c = network(seed, 25, 25, 300, 2)
    r = Reoptimiser(c, carbon_price=30.0, per_supply=1, per_demand=1)
    links = c.processor_links.copy()
    rng = np.random.default_rng(seed)
    k = int(rng.integers(0, len(links)))
    links.loc[links.index[k], "per_unit"] = float(links["per_unit"].iloc[k]) * factor
    changed = dataclasses.replace(c, processor_links=links)
    done = r.update(changed)
    _assert_optimal(changed, done.solution, 30.0)
    assert done.solution.objective_bau == pytest.approx(
        solve_exchange(changed, carbon_price=30.0, decompose=False).objective_bau, rel=1e-9, abs=1e-6)
