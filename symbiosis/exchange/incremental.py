r"""Re-optimising after one firm's figures change, without solving the region again.

A firm updates the tonnage of its streams, the price it pays to dispose of one, or the price of a raw material
it buys. In the exchange LP that moves the right-hand sides of its supply and demand balances (and its share
limits, σ r) and the costs of its w and y columns: nothing else. :class:`Reoptimiser` keeps the optimum that
column generation reached (its grown restricted model, symbiosis.exchange.grow, with one HiGHS instance per
independent block) and, after such a change,

1. changes those rows and columns in the HiGHS instance of the block each lies in;
2. re-solves **only those blocks**, with the simplex method from their last optimal basis (the other blocks'
   rows and columns did not change, so their solutions are still optimal for them);
3. prices every candidate arc against the new duals (numpy, as column generation does) and, where some prices
   out negative, adds them to the model and re-solves the blocks they fall in, until none does.

Step 3 is the proof: when no arc of the whole region has a negative reduced cost, the combined solution (the
re-solved blocks with the untouched ones) is the optimum of the full LP, by the same argument as column
generation's (symbiosis.exchange.colgen). The untouched blocks' flows are unchanged by construction; what the
proof adds is that leaving them unchanged is optimal.

Changes that alter the structure (a new or removed stream, a new location, a changed quality, anything that
changes the candidate arcs) are refused with :class:`StructuralChange`: those need the region solved again
(warm where possible). Processors' rows follow their activity and cannot be set. The Pyomo model of the first
restricted model states the problem as it was first solved; changes are made to the HiGHS instances only.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from symbiosis.candidates import Candidates
from symbiosis.errors import SymbiosisError
from symbiosis.exchange.colgen import ColumnGenerationState, admit, price_arcs, solve_column_generation
from symbiosis.exchange.solve import Solution

logger = logging.getLogger(__name__)

#: Columns of candidates.supplies / demands that a change may move; any other difference is structural.
SUPPLY_CHANGES = {"amount_t_per_yr": "supply_amount", "amount_mwh_per_yr": "supply_amount",
                  "fate_cost_per_t": "fate_cost"}
DEMAND_CHANGES = {"amount_t_per_yr": "demand_amount", "amount_mwh_per_yr": "demand_amount",
                  "virgin_price_per_t": "virgin_price"}


class StructuralChange(SymbiosisError):
    """The change alters more than amounts and prices (the candidate arcs would change): solve again."""


@dataclass
class Reoptimisation:
    """What one re-optimisation did: the new optimum and how much of the model it touched."""

    solution: Solution
    #: Block solves over the rounds (a block re-solved in two rounds counts twice), against ``blocks`` in all.
    blocks_solved: int
    blocks: int
    rounds: int
    arcs_added: int
    arcs_priced: int
    seconds: float
    timings: dict[str, float] = field(default_factory=dict)


def _as_changes(values: Mapping[int, float] | None) -> tuple[np.ndarray, np.ndarray]:
    if not values:
        return np.zeros(0, np.int64), np.zeros(0)
    rows = np.fromiter((int(k) for k in values), np.int64, len(values))
    new = np.fromiter((float(v) for v in values.values()), float, len(values))
    if not np.all(np.isfinite(new)):
        raise ValueError("changed amounts and prices must be finite numbers")
    return rows, new


class Reoptimiser:
    """The optimum of ``candidates`` kept for re-optimising after changes of amounts and prices.

    >>> r = Reoptimiser(candidates)                               # doctest: +SKIP
    >>> r.change(supply_amount={12: 4_000.0}).solution.objective  # supply row 12 now 4,000 t/yr

    ``options`` go to :func:`~symbiosis.exchange.colgen.solve_column_generation` (which must keep its model:
    a region whose master would hold most arcs is solved with ``max_master_share`` 1 here).
    """

    def __init__(self, candidates: Candidates, *, carbon_price: float | None = None,
                 weights: Mapping[str, float] | None = None, **options: Any) -> None:
        kept: list[ColumnGenerationState] = []
        options.setdefault("max_master_share", 1.0)
        self.candidates = candidates
        self.solution = solve_column_generation(candidates, carbon_price=carbon_price, weights=weights, keep=kept,
                                                **options)
        if not kept:
            raise ValueError("column generation did not keep a model to re-optimise (it rebuilt its model "
                             "every round; see symbiosis.exchange.grow)")
        self.state = kept[0]

    # --- changes -------------------------------------------------------------------------------------

    def changes_from(self, supplies: pd.DataFrame | None = None, demands: pd.DataFrame | None = None
                     ) -> dict[str, dict[int, float]]:
        """The changes of amounts and prices between the kept candidates' supplies/demands and new tables of
        the same rows (as ``symbiosis.candidates`` makes them from the changed region). Raises
        StructuralChange when rows or any other column differ."""
        out: dict[str, dict[int, float]] = {}
        for label, old, new, movable in (("supplies", self.candidates.supplies, supplies, SUPPLY_CHANGES),
                                         ("demands", self.candidates.demands, demands, DEMAND_CHANGES)):
            if new is None:
                continue
            if len(new) != len(old) or list(new.columns) != list(old.columns):
                raise StructuralChange(f"the {label} table has other rows or columns than the solved one")
            key = "supply_id" if label == "supplies" else "demand_id"
            if not new[key].astype(str).reset_index(drop=True).equals(old[key].astype(str).reset_index(drop=True)):
                raise StructuralChange(f"the {label} are other streams than the solved ones")
            for column in old.columns:
                a, b = old[column].reset_index(drop=True), new[column].reset_index(drop=True)
                same = (a == b) | (a.isna() & b.isna())
                if column in movable:
                    moved = np.flatnonzero(~same.to_numpy(bool))
                    if len(moved):
                        out.setdefault(movable[column], {}).update(
                            zip(moved.tolist(), b.iloc[moved].astype(float).tolist(), strict=True))
                elif not bool(same.all()):
                    raise StructuralChange(f"{label}.{column} changed: the candidate arcs would change")
        return out

    def change(self, *, supply_amount: Mapping[int, float] | None = None,
               demand_amount: Mapping[int, float] | None = None, fate_cost: Mapping[int, float] | None = None,
               virgin_price: Mapping[int, float] | None = None) -> Reoptimisation:
        """Apply new amounts (t/yr) and prices (per t) to supply and demand rows (by position in the
        candidates' tables) and re-optimise. Returns the new optimum with what was re-solved."""
        started = time.perf_counter()
        st = self.state
        master = st.master
        model = master.model
        solver = model._highs
        rows = model._rows
        full, mine = st.full, model.arrays
        n_a0, n_a, n_s, n_d = mine.n_arcs, full.n_arcs, full.n_supplies, full.n_demands
        s_rows, s_new = _as_changes(supply_amount)
        d_rows, d_new = _as_changes(demand_amount)
        f_rows, f_new = _as_changes(fate_cost)
        v_rows, v_new = _as_changes(virgin_price)
        for label, positions, n in (("supply", s_rows, n_s), ("demand", d_rows, n_d), ("supply", f_rows, n_s),
                                    ("demand", v_rows, n_d)):
            if len(positions) and (positions.min() < 0 or positions.max() >= n):
                raise IndexError(f"a {label} row outside 0..{n - 1}")
        if len(np.intersect1d(s_rows, full.out_rows)) or len(np.intersect1d(d_rows, full.in_rows)):
            raise StructuralChange("a processor's rows follow its activity: change the processor, and solve again")
        # The amounts through the first model (its Pyomo rows, arrays and HiGHS rows: supply and demand balances
        # and share limits); the full model's arrays price the arcs.
        supply, demand = mine.supply_amount.copy(), mine.demand_amount.copy()
        supply[s_rows], demand[d_rows] = s_new, d_new
        model.set_amounts(supply=supply, demand=demand)  # checks them too: finite, not negative
        self._record(s_rows, s_new, d_rows, d_new, f_rows, f_new, v_rows, v_new)
        full.supply_amount, full.demand_amount = supply.copy(), demand.copy()
        # The prices straight into the HiGHS columns of w and y (the first model's objective would be rebuilt
        # over its own columns only, not the grown ones).
        for arrays in (full, mine):
            arrays.fate_cost, arrays.virgin_price = arrays.fate_cost.copy(), arrays.virgin_price.copy()
            arrays.fate_cost[f_rows], arrays.virgin_price[v_rows] = f_new, v_new
        cols = np.r_[n_a0 + f_rows, n_a0 + n_s + v_rows].astype(np.int64)
        if len(cols):
            st.objective = master.objective = full.objective_vector(st.carbon_price, st.weights)
            solver.set_cols_cost(cols, np.r_[st.objective[n_a + f_rows], st.objective[n_a + n_s + v_rows]])
        # Share rows lie in their demand row's block (they hold the same arcs).
        blocks = np.unique(np.r_[solver.row_block[rows.supply_rows[s_rows]], solver.row_block[rows.demand_rows[d_rows]],
                                 solver.col_block[cols]]).astype(np.int64)
        timings = {"change": time.perf_counter() - started, "solve": 0.0, "pricing": 0.0, "grow": 0.0}
        solved = 0  # block solves, over the rounds
        rounds, added = 0, 0
        while True:
            rounds += 1
            t0 = time.perf_counter()
            result = master.solve(only=blocks)
            solved += len(blocks)
            timings["solve"] += time.perf_counter() - t0
            t0 = time.perf_counter()
            rc = price_arcs(full, master.raw_duals(result), st.objective)
            new = admit(rc, full, st.active, st.threshold, st.per_supply, st.per_demand)
            timings["pricing"] += time.perf_counter() - t0
            if len(new) == 0:
                break
            t0 = time.perf_counter()
            master.add(new)
            added += len(new)
            # Merged blocks are numbered anew: what is solved next is the blocks the new arcs are in.
            blocks = np.unique(solver.col_block[master.arc_col[-len(new):]])
            timings["grow"] += time.perf_counter() - t0
        solution = master.solution(result)
        seconds = time.perf_counter() - started
        solution.timings = {**timings, "total": seconds}
        solution.parameters = {**self.solution.parameters, "strategy": "incremental re-optimisation",
                               "master_arcs": int(st.active.sum())}
        self.solution = solution
        done = Reoptimisation(solution, blocks_solved=solved, blocks=solver.n_blocks,
                              rounds=rounds, arcs_added=added, arcs_priced=n_a, seconds=seconds, timings=timings)
        logger.info("re-optimised in %.3f s: %d of %d blocks solved, %d round(s), %d arc(s) added, objective %.10g",
                    seconds, done.blocks_solved, done.blocks, rounds, added, solution.objective)
        return done

    def _record(self, s_rows: np.ndarray, s_new: np.ndarray, d_rows: np.ndarray, d_new: np.ndarray,
                f_rows: np.ndarray, f_new: np.ndarray, v_rows: np.ndarray, v_new: np.ndarray) -> None:
        """The kept candidates' tables with the change, so that the next :meth:`changes_from` compares with them."""
        sup = self.candidates.supplies.copy()
        dem = self.candidates.demands.copy()
        for table, positions, values in ((sup, s_rows, s_new), (dem, d_rows, d_new)):
            if len(positions):
                energy = (table["quantity"].to_numpy()[positions] == "energy") if "quantity" in table \
                    else np.zeros(len(positions), bool)
                for column, mine in (("amount_mwh_per_yr", energy), ("amount_t_per_yr", ~energy)):
                    if mine.any():
                        table.loc[table.index[positions[mine]], column] = values[mine]
        if len(f_rows):
            sup.loc[sup.index[f_rows], "fate_cost_per_t"] = f_new
        if len(v_rows):
            dem.loc[dem.index[v_rows], "virgin_price_per_t"] = v_new
        self.candidates = dataclasses.replace(self.candidates, supplies=sup, demands=dem)


__all__ = ["Reoptimisation", "Reoptimiser", "StructuralChange"]
