r"""Column generation's restricted model grown in place: the entering arcs added to the HiGHS instances.

Between two rounds of column generation (symbiosis.exchange.colgen) the restricted model only gains arc
columns. Building a new Pyomo model and handing it over every round costs more than the solves (at 5,700
facilities about 8 of 14 s; docs/performance.md). Here the first restricted model is built and handed over as
any other (the Pyomo model states the problem), and every later round adds the entering arcs' columns to its
HiGHS instances (:meth:`BlockSolver.add_columns`): each instance keeps its basis and factorisation, so the
simplex method continues from the last optimum.

That needs every row an entering arc enters to be in the model already. An arc enters rows of the families of
``ARC_ROW_FAMILIES``; the supply and demand balances always exist, but a demand's share, quality and intake
rows, a facility's intake row and a permit's row exist only where some arc enters them. So the first restricted
model is given, for every such row of the full model, at least one of its arcs (:func:`covering_arcs`: the one
with the lowest reduced cost at business-as-usual prices). Its rows are then the full model's rows, which
:class:`GrownMaster` checks row family by row family; when they are not (a family whose rows depend on more than
the arcs' presence), column generation rebuilds its model every round as before: the same optimum.

An arc's column in a grown model is the column it has in the full model restricted to these rows: its cost
(the full objective's), its bounds (0 and its capacity) and its coefficients in each family's rows (the same in
a restricted and the full model, colgen's module docstring). The duals of the grown model's rows are then the
raw duals of the full model's rows, and an arc absent from the model has reduced cost
``c_a − Σ_F Σ_k A^F_{k,a} π^F_k`` as before.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import sparse

from symbiosis.exchange.model import resolve_weights
from symbiosis.network.processors import polish

if TYPE_CHECKING:
    from collections.abc import Mapping

    from symbiosis.candidates import Candidates
    from symbiosis.exchange.blocks import BlockResult
    from symbiosis.exchange.model import ExchangeArrays
    from symbiosis.exchange.solve import ExchangeModel, Solution

logger = logging.getLogger(__name__)

#: Where the hand-over (``ExchangeModel._rows``) keeps each arc row family's HiGHS rows.
HANDOVER_ROWS = {"supply_balance": "supply_rows", "demand_balance": "demand_rows", "share_limit": "share_rows",
                 "quality_limit": "quality_rows", "intake_limit": "intake_rows",
                 "facility_intake": "facility_intake_rows", "permit_limit": "permit_rows"}
#: Families whose rows exist whatever the arcs (a supply's or a demand's balance holds its w or y).
ALWAYS_PRESENT = ("supply_balance", "demand_balance")


def covering_arcs(full: ExchangeArrays, scores: np.ndarray, active: np.ndarray) -> int:
    """Mark in ``active`` (in place) one arc of every row of the full model, other than the supply and demand
    balances, that no active arc enters: the arc with the lowest score (reduced cost). Returns how many."""
    from symbiosis.exchange.colgen import ARC_ROW_FAMILIES

    added = 0
    for family in ARC_ROW_FAMILIES:
        if family.name in ALWAYS_PRESENT:
            continue
        block = family.rows(full)
        if block.n_rows == 0 or len(block.cols) == 0:
            continue
        row = block.term_rows()
        covered = np.zeros(block.n_rows, dtype=bool)
        covered[row[active[block.cols]]] = True
        idx = np.flatnonzero(~covered[row])
        if len(idx) == 0:
            continue
        order = idx[np.lexsort((scores[block.cols[idx]], row[idx]))]
        first = np.r_[True, row[order][1:] != row[order][:-1]]
        chosen = block.cols[order[first]]
        added += int((~active[chosen]).sum())
        active[chosen] = True
    return added


class GrownMaster:
    """A solved restricted model whose HiGHS instances gain the entering arcs' columns round after round.

    ``model``: the first restricted model, handed over (its arcs are the candidates at ``positions``);
    ``full``: the full model's arrays; ``objective``: the full objective vector (arcs first). Raises
    ValueError when the model's rows are not the full model's (see the module docstring).
    """

    def __init__(self, model: ExchangeModel, positions: np.ndarray, full: ExchangeArrays,
                 objective: np.ndarray) -> None:
        from symbiosis.exchange.colgen import ARC_ROW_FAMILIES

        if model._highs is None or model._rows is None:
            raise ValueError("the model has not been handed over")
        mine = model.arrays
        if mine.n_supplies != full.n_supplies or mine.n_demands != full.n_demands:
            raise ValueError("the restricted model has other supplies or demands than the full one")
        if not (np.array_equal(mine.share_demands, full.share_demands)
                and np.array_equal(mine.intake_demands, full.intake_demands)):
            raise ValueError("the restricted model lacks share or intake rows of the full model")
        self.row_of: dict[str, np.ndarray] = {}
        for family in ARC_ROW_FAMILIES:
            where = np.asarray(getattr(model._rows, HANDOVER_ROWS[family.name]), dtype=np.int64)
            keys_full, keys_mine = family.keys(full), family.keys(mine)
            if not keys_full.equals(keys_mine) or len(where) != len(keys_full):
                raise ValueError(f"the restricted model's {family.name} rows are not the full model's")
            self.row_of[family.name] = where
        self.model = model
        self.full = full
        self.objective = objective
        self.positions = np.asarray(positions, dtype=np.int64)
        n_a = mine.n_arcs
        #: The HiGHS (global) column of each arc of the model, in the order of ``positions``.
        self.arc_col = np.arange(n_a, dtype=np.int64)
        self.n_first_columns = model._highs.lp.n_col
        self.timings: dict[str, float] = {"grow": 0.0}

    def add(self, entering: np.ndarray, *, defer: bool = False) -> None:
        """Add the arcs at ``entering`` (positions among all candidate arcs, none already in the model); with
        ``defer``, to the kept LP only (BlockSolver.add_columns: hand it over with ``redecompose``)."""
        from symbiosis.exchange.colgen import ARC_ROW_FAMILIES

        started = time.perf_counter()
        entering = np.asarray(entering, dtype=np.int64)
        k = len(entering)
        if k == 0:
            return
        full, solver = self.full, self.model._highs
        new_index = np.full(full.n_arcs, -1, dtype=np.int64)
        new_index[entering] = np.arange(k)
        rows, cols, values = [], [], []
        for family in ARC_ROW_FAMILIES:
            block = family.rows(full)
            if block.n_rows == 0 or len(block.cols) == 0:
                continue
            column = new_index[block.cols]
            hit = np.flatnonzero(column >= 0)
            if len(hit) == 0:
                continue
            row = np.searchsorted(block.ptr, hit, side="right") - 1  # the row of each term hit
            target = self.row_of[family.name][row]
            present = target >= 0  # a row the full model does not hold either (a share of 1, no limit)
            rows.append(target[present])
            cols.append(column[hit][present])
            values.append(block.coefs[hit][present])
        r, c, v = (np.concatenate(parts) if parts else np.zeros(0) for parts in (rows, cols, values))
        matrix = sparse.csc_matrix((v.astype(float), (r.astype(np.int64), c.astype(np.int64))),
                                   shape=(solver.lp.n_row, k))
        upper = np.nan_to_num(full.capacity[entering], nan=np.inf)
        added = solver.add_columns(self.objective[entering], np.zeros(k), upper, matrix, defer=defer)
        self.arc_col = np.r_[self.arc_col, added]
        self.positions = np.r_[self.positions, entering]
        self.timings["grow"] += time.perf_counter() - started

    def retire(self, members: np.ndarray) -> np.ndarray:
        """Take the model's arcs at ``members`` (indices into :attr:`positions`) out of the model: their columns
        are fixed at 0 (bounds [0, 0]; HiGHS has no cheap column deletion that keeps the blocks' numbering) and
        stand for no arc from now on (position -1). Returns their HiGHS columns."""
        members = np.asarray(members, dtype=np.int64)
        cols = self.arc_col[members]
        if len(cols):
            zeros = np.zeros(len(cols))
            self.model._highs.set_cols_bounds(cols, zeros, zeros)
            self.positions[members] = -1
        return cols

    def solve(self, method: str = "simplex", only: np.ndarray | None = None) -> BlockResult:
        """Re-solve (default: with the simplex method from the instances' bases; ``only`` those blocks, see
        BlockSolver.run); raises SolverError if not optimal."""
        import highspy

        from symbiosis.exchange.solve import SolverError

        options = {**self.model._options(), "solver": method}
        result = self.model._highs.run(options, only)
        if result.status != highspy.HighsModelStatus.kOptimal:
            raise SolverError(self.model._failure_message(result.status, result.termination))
        return result

    def raw_duals(self, result: BlockResult) -> dict[str, np.ndarray]:
        """Each arc row family's raw row duals (HiGHS's convention) on the full model's rows (0 where a row is
        absent from the full model too)."""
        out = {}
        for name, where in self.row_of.items():
            dual = np.zeros(len(where))
            present = where >= 0
            dual[present] = result.row_dual[where[present]]
            out[name] = dual
        return out

    def solution(self, result: BlockResult) -> Solution:
        """The Solution of the grown model: ``x`` over **all** candidate arcs, and every arc row family's duals
        published on the full model's rows."""
        from symbiosis.exchange.blocks import BlockResult as Result
        from symbiosis.exchange.colgen import ARC_ROW_FAMILIES

        model, full = self.model, self.full
        first = self.n_first_columns
        col = result.col_value
        # The first model's own columns, in its order, give its duals, w, y, z and the stores.
        truncated = Result(col[:first].copy(), result.row_dual, result.objective, result.status,
                           result.termination, result.statuses, result.mip_gap)
        solution = model._extract(truncated)
        x = np.zeros(full.n_arcs)
        alive = self.positions >= 0  # a retired column (see :meth:`retire`) stands for no arc
        x[self.positions[alive]] = np.maximum(col[self.arc_col[alive]], 0.0)
        n_a, n_s, n_d, n_p = model.arrays.n_arcs, full.n_supplies, full.n_demands, full.n_processors
        w = np.maximum(col[n_a:n_a + n_s], 0.0)
        y = np.maximum(col[n_a + n_s:n_a + n_s + n_d], 0.0)
        z = np.maximum(col[n_a + n_s + n_d:n_a + n_s + n_d + n_p], 0.0)
        polish(full, x, w, y, z)
        solution.x, solution.w, solution.y, solution.z = x, w, y, z
        # Money and emissions: the arcs' from the full arrays, every other column's (w, y, z, the stores) from the
        # first model's, which holds them all.
        rest = [w, y, z]
        if solution.storage is not None:
            rest += [solution.storage["stock"], solution.storage["put"], solution.storage["take"]]
        others = np.concatenate(rest)
        solution.cost = float(full.arc_cost @ x + model.arrays.cost_vector()[n_a:] @ others)
        solution.co2e_t = float(full.arc_co2e @ x + model.arrays.co2e_vector()[n_a:] @ others)
        duals = self.raw_duals(result)
        for family in ARC_ROW_FAMILIES:
            family.publish(full, solution, duals[family.name])
        return solution


def solve_whole(candidates: Candidates, *, carbon_price: float | None = None,
                weights: Mapping[str, float] | None = None, method: str = "ipm", tolerance: float = 1e-7,
                threads: int | None = None, arrays: ExchangeArrays | None = None,
                model_factory: Any = None) -> Solution:
    """The whole exchange LP, every arc in it, with only a small model built in Pyomo.

    The Pyomo model of a large LP and its hand-over cost time and memory (about 2 KiB per arc at a million arcs,
    docs/performance.md) that HiGHS does not need: here the model of the covering arcs (one arc of every row arcs
    enter, :func:`covering_arcs`) is built and handed over, and every other arc's column is added to its HiGHS
    instances from the same arrays (:meth:`GrownMaster.add`), then the whole is solved with ``method``. The LP
    is the one ``ExchangeModel(candidates)`` would hand over, with its columns in another order; the same
    optimum (tests/test_colgen.py). Falls back to that ExchangeModel when the rows do not match.
    """
    from symbiosis.exchange.colgen import _plain_model, _restricted, bau_reduced_costs
    from symbiosis.exchange.model import exchange_arrays
    from symbiosis.exchange.solve import _carbon_price

    started = time.perf_counter()
    factory = model_factory or _plain_model
    full = arrays if arrays is not None else exchange_arrays(candidates)
    price = _carbon_price(candidates, carbon_price)
    n_a = full.n_arcs
    options = {"carbon_price": price, "weights": weights, "method": method, "tolerance": tolerance,
               "threads": threads}
    if n_a == 0:
        return factory(candidates, np.arange(0), **options).solve()
    objective = full.objective_vector(price, dict(zip(("cost", "co2e"), resolve_weights(weights), strict=True)))
    rc = bau_reduced_costs(full, objective)
    active = np.zeros(n_a, dtype=bool)
    active[int(np.argmin(rc))] = True  # a model with one arc at least
    covering_arcs(full, rc, active)
    positions = np.flatnonzero(active)
    model = factory(_restricted(candidates, positions), positions, **options)
    model.hand_over()
    timings = {"build": model.timings.get("build", 0.0), "handover": model.timings.get("handover", 0.0)}
    try:
        master = GrownMaster(model, positions, full, objective)
    except ValueError as exc:
        logger.info("the whole LP is built in Pyomo: %s", exc)
        del model
        return factory(candidates, np.arange(n_a), **options).solve()
    master.add(np.flatnonzero(~active), defer=True)
    t0 = time.perf_counter()
    model._highs.redecompose()  # one hand-over of the whole LP, in its own components
    timings["grow"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    result = master.solve(method)
    timings["solve"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    solution = master.solution(result)
    timings["extract"] = time.perf_counter() - t0
    timings["grow"] += master.timings["grow"]
    solution.timings = {**timings, "total": time.perf_counter() - started}
    solution.parameters = {**solution.parameters, "method": method, "strategy": "monolithic",
                           "built_in_pyomo_arcs": int(len(positions)), "candidate_arcs": int(n_a),
                           "blocks": model._highs.n_blocks}
    return solution


def add_keyed_columns(master: GrownMaster, objective: np.ndarray, upper: np.ndarray,
                      terms: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]]) -> bool:
    """Add arc columns to ``master`` from their own data, not from full arrays (column generation over tiles,
    symbiosis.exchange.tiled, has none): ``objective`` and ``upper`` per new column, and per arc row family
    its terms as (new column, row among the family's rows of the master's model, coefficient). Each new
    column's position is the next one after the master's (``master.positions`` grows by 0, 1, 2 ... after its
    largest). Returns False, adding nothing, when a term's row is not a row of the master's model (-1): the
    caller rebuilds its model instead."""
    started = time.perf_counter()
    k = len(objective)
    if k == 0:
        return True
    solver = master.model._highs
    rows, cols, values = [], [], []
    for name, (col, row, coef) in terms.items():
        if len(row) == 0:
            continue
        if (row < 0).any():
            return False
        target = master.row_of[name][row]
        present = target >= 0  # a row the model does not hold (a share of 1, no limit): the arc's term is void
        rows.append(target[present])
        cols.append(np.asarray(col)[present])
        values.append(np.asarray(coef, dtype=float)[present])
    r, c, v = (np.concatenate(parts) if parts else np.zeros(0) for parts in (rows, cols, values))
    matrix = sparse.csc_matrix((v.astype(float), (r.astype(np.int64), c.astype(np.int64))),
                               shape=(solver.lp.n_row, k))
    added = solver.add_columns(np.asarray(objective, dtype=float), np.zeros(k), np.asarray(upper, dtype=float),
                               matrix)
    start = int(master.positions.max(initial=-1)) + 1
    master.arc_col = np.r_[master.arc_col, added]
    master.positions = np.r_[master.positions, np.arange(start, start + k, dtype=np.int64)]
    master.timings["grow"] += time.perf_counter() - started
    return True


__all__ = ["GrownMaster", "add_keyed_columns", "covering_arcs", "solve_whole"]
