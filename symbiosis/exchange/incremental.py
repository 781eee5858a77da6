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

:meth:`Reoptimiser.update` takes the candidates of the changed region whole, so that a change may also move
the **arcs**: a facility that moved (its arcs' costs and emissions; arcs gone beyond a distance limit, others
come within one), a changed distance limit, a stream's changed composition (its arcs' quality coefficients).
The model's arcs whose column changed are retired (fixed at 0) and enter again with their new column; a
processor's changed yields become the coefficients of its activity in its rows; every arc of the new
candidates is priced, so the proof is the same.

Changes that alter the rows are refused with :class:`StructuralChange`: a new or removed stream, a demand
reached by arcs for the first time or by none any more (its quality, share and intake rows come and go with
its arcs), changed limits, processors added or removed. Those need the region solved again. Through
:meth:`Reoptimiser.change`, processors' rows follow their activity and cannot be set. The Pyomo model of the
first restricted model states the problem as it was first solved; changes are made to the HiGHS instances
only.
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
from symbiosis.exchange.model import ExchangeArrays
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
        timings = {"change": time.perf_counter() - started}
        return self._reoptimise(started, timings, cols=cols,
                                rows=np.r_[rows.supply_rows[s_rows], rows.demand_rows[d_rows]])

    def update(self, new: Candidates) -> Reoptimisation:
        """Re-optimise for ``new``, the candidates of the changed region (``symbiosis.candidates`` of it).

        Beyond the amounts and prices :meth:`change` takes, ``new`` may differ in its **arcs**: a facility
        that moved (its arcs' distances, costs and emissions, some arcs gone beyond a distance limit and others
        come within one), a changed distance limit, a stream's changed composition (its arcs' quality
        coefficients, arcs screened out or in), changed emission factors of a stream or a raw material. The
        streams must be the same, in the same order, and so must the rows of every family arcs enter (a
        demand's quality, share and intake rows exist once some arc reaches it): anything else raises
        :class:`StructuralChange`, and the region is solved again.

        The model's arcs that are no longer candidates, or whose column changed, are retired (fixed at 0,
        :meth:`~symbiosis.exchange.grow.GrownMaster.retire`); those still candidates enter again with their new
        column. Only the blocks that hold a changed row or column are re-solved, from their last basis, then
        every arc of ``new`` is priced as after :meth:`change`: the same proof of optimality over every arc.
        """
        from symbiosis.exchange.colgen import ARC_ROW_FAMILIES
        from symbiosis.exchange.model import exchange_arrays

        started = time.perf_counter()
        st = self.state
        master = st.master
        model = master.model
        solver = model._highs
        old, mine = st.full, model.arrays
        new = in_order_of(new, self.candidates)
        self._same_streams(new)
        for name in ("carbon_price", "weight_cost", "weight_co2e"):  # the objective's own terms
            before, after = self.candidates.parameters.get(name), new.parameters.get(name)
            if before != after:
                raise StructuralChange(f"the run's {name} changed ({before} -> {after}): solve again")
        full = exchange_arrays(new)
        for family in ARC_ROW_FAMILIES:
            if not family.keys(full).equals(family.keys(old)):
                raise StructuralChange(f"the changed region has other {family.name} rows (a demand reached by "
                                       f"arcs for the first time, or by none any more): solve it again")
        for name in ("share", "intake_limit", "facility_intake_limit", "permit_limit", "processor_capacity",
                     "processor_cost", "out_rows", "out_p", "in_rows", "in_p"):
            if not np.array_equal(getattr(full, name), getattr(old, name), equal_nan=True):
                raise StructuralChange(f"{name} changed: solve again")
        if not full.quality_rows.reset_index(drop=True).equals(old.quality_rows.reset_index(drop=True)):
            raise StructuralChange("a demand's quality limits or its raw material's quality changed: solve again")
        objective = full.objective_vector(st.carbon_price, st.weights)
        n_a0, n_a = mine.n_arcs, full.n_arcs
        # Rows: the amounts, through the first model as change() does. A processor's rows hold its activity
        # (right-hand side 0): their amounts are its business as usual only, and its yields per unit of
        # activity are the coefficients of its column in them.
        supply, demand = full.supply_amount.copy(), full.demand_amount.copy()
        supply[full.out_rows] = mine.supply_amount[full.out_rows]
        demand[full.in_rows] = mine.demand_amount[full.in_rows]
        model.set_amounts(supply=supply, demand=demand)
        mine.supply_amount[full.out_rows] = full.supply_amount[full.out_rows]
        mine.demand_amount[full.in_rows] = full.demand_amount[full.in_rows]
        moved_rows = np.r_[model._rows.supply_rows[np.flatnonzero(full.supply_amount != old.supply_amount)],
                           model._rows.demand_rows[np.flatnonzero(full.demand_amount != old.demand_amount)]]
        moved_rows = np.r_[moved_rows, self._set_yields(full)]
        # The other columns (w, y, z): their costs.
        rest_old, rest_new = st.objective[old.n_arcs:], objective[n_a:]
        changed_rest = np.flatnonzero(rest_old != rest_new)
        cols = [n_a0 + changed_rest]
        if len(changed_rest):
            solver.set_cols_cost(n_a0 + changed_rest, rest_new[changed_rest])
        for name in ("fate_cost", "fate_co2e", "virgin_price", "virgin_co2e"):
            setattr(mine, name, getattr(full, name).copy())
        # Arcs: by (supply, demand), the streams being the same rows.
        alive = np.flatnonzero(master.positions >= 0)
        before = master.positions[alive]
        after = _arc_map(old, full, before)
        stays = after >= 0
        stays[stays] = _same_columns(old, full, before[stays], after[stays], st.objective, objective)
        retired = master.retire(alive[~stays])
        cols.append(retired)
        master.positions[alive[stays]] = after[stays]
        active = np.zeros(n_a, dtype=bool)
        active[after[stays]] = True
        again = np.setdiff1d(after[~stays & (after >= 0)], after[stays])
        st.full = master.full = full
        st.objective = master.objective = objective
        st.active = active
        if len(again):
            master.add(again)
            active[again] = True
            cols.append(master.arc_col[-len(again):])
        self.candidates = new
        timings = {"change": time.perf_counter() - started}
        logger.info("update: %d of the model's arcs retired, %d entered again with their new column, %d rows and "
                    "%d other columns changed", len(retired), len(again), len(moved_rows), len(changed_rest))
        return self._reoptimise(started, timings, cols=np.concatenate(cols), rows=moved_rows)

    def _set_yields(self, full: ExchangeArrays) -> np.ndarray:
        """A processor's changed yields (outputs and intakes per unit of activity) as the coefficients of its
        column in its supply, demand and share rows, in HiGHS and the first model's arrays. Returns the rows."""
        model = self.state.master.model
        mine, rows = model.arrays, model._rows
        z0 = mine.n_arcs + mine.n_supplies + mine.n_demands  # the first processor's column
        at_rows, at_cols, values = [], [], []
        out = np.flatnonzero(full.out_per_unit != mine.out_per_unit)
        if len(out):
            at_rows.append(rows.supply_rows[full.out_rows[out]])
            at_cols.append(z0 + full.out_p[out])
            values.append(-full.out_per_unit[out])
        into = np.flatnonzero(full.in_per_unit != mine.in_per_unit)
        if len(into):
            d = full.in_rows[into]
            at_rows.append(rows.demand_rows[d])
            at_cols.append(z0 + full.in_p[into])
            values.append(-full.in_per_unit[into])
            share = rows.share_rows[d] >= 0
            at_rows.append(rows.share_rows[d][share])
            at_cols.append(z0 + full.in_p[into][share])
            values.append(-full.share[d][share] * full.in_per_unit[into][share])
        if not at_rows:
            return np.zeros(0, np.int64)
        r, c, v = np.concatenate(at_rows), np.concatenate(at_cols), np.concatenate(values)
        model._highs.set_coefficients(r, c, v)
        mine.out_per_unit, mine.in_per_unit = full.out_per_unit.copy(), full.in_per_unit.copy()
        return r

    def _same_streams(self, new: Candidates) -> None:
        """Raise StructuralChange unless ``new`` has the kept candidates' streams, in their order, and their
        processors."""
        for label, key in (("supplies", "supply_id"), ("demands", "demand_id")):
            a, b = getattr(self.candidates, label), getattr(new, label)
            if len(a) != len(b) or not a[key].astype(str).reset_index(drop=True).equals(
                    b[key].astype(str).reset_index(drop=True)):
                raise StructuralChange(f"the changed region has other {label} (a new or removed stream): solve "
                                       f"it again")
        for name in ("processors", "processor_links"):
            before, after = getattr(self.candidates, name, None), getattr(new, name, None)
            if before is None and after is None:
                continue
            # A link's yield per unit of activity may change (a processor's stream edited): its coefficient.
            ignore = ["per_unit"] if name == "processor_links" else []
            if before is None or after is None or not before.drop(columns=ignore).reset_index(drop=True).equals(
                    after.drop(columns=ignore).reset_index(drop=True)):
                raise StructuralChange(f"the {name} changed: solve again")

    def _reoptimise(self, started: float, timings: dict[str, float], *, cols: np.ndarray,
                    rows: np.ndarray) -> Reoptimisation:
        """Re-solve the blocks that hold the changed HiGHS columns ``cols`` and rows ``rows`` (global
        positions), then price every candidate arc and add those that price out negative, until none does."""
        st = self.state
        master = st.master
        solver = master.model._highs
        full = st.full
        n_a = full.n_arcs
        cols, rows = np.asarray(cols, dtype=np.int64), np.asarray(rows, dtype=np.int64)
        rows = rows[rows >= 0]
        blocks = np.unique(np.r_[solver.row_block[rows], solver.col_block[cols]]).astype(np.int64)
        timings.update({"solve": 0.0, "pricing": 0.0, "grow": 0.0})
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


def in_order_of(new: Candidates, kept: Candidates) -> Candidates:
    """``new`` with its supplies and demands in the order of ``kept``'s (by id), and every position that
    refers to them (arcs, quality tables, processor links) renumbered; its arcs again by supply, then demand.
    ``new`` itself when the order is already the same, or when the streams are not the same (left to the
    caller's check to refuse)."""
    perms: list[np.ndarray | None] = []
    for label, key in (("supplies", "supply_id"), ("demands", "demand_id")):
        a, b = getattr(kept, label)[key].astype(str), getattr(new, label)[key].astype(str)
        if len(a) != len(b) or not b.is_unique or set(a) != set(b):
            return new
        if a.reset_index(drop=True).equals(b.reset_index(drop=True)):
            perms.append(None)
            continue
        position = pd.Series(np.arange(len(b)), index=b.to_numpy())
        perms.append(position.loc[a.to_numpy()].to_numpy(np.int64))  # new row of each kept row
    if all(p is None for p in perms):
        return new
    renumber = []
    for perm, n in zip(perms, (len(new.supplies), len(new.demands)), strict=True):
        mapping = np.arange(n, dtype=np.int64)
        if perm is not None:
            mapping[perm] = np.arange(n, dtype=np.int64)  # kept position of each new row
        renumber.append(mapping)
    to_s, to_d = renumber
    supplies = new.supplies if perms[0] is None else new.supplies.iloc[perms[0]].reset_index(drop=True)
    demands = new.demands if perms[1] is None else new.demands.iloc[perms[1]].reset_index(drop=True)

    def arcs_of(frame: pd.DataFrame | None) -> pd.DataFrame | None:
        if frame is None or len(frame) == 0:
            return frame
        out = frame.copy()
        out["s"] = to_s[frame["s"].to_numpy(np.int64)]
        out["d"] = to_d[frame["d"].to_numpy(np.int64)]
        order = np.lexsort((out["d"].to_numpy(), out["s"].to_numpy()))
        return out.iloc[order].reset_index(drop=True)

    supply_quality = new.supply_quality.copy()
    supply_quality["s"] = to_s[new.supply_quality["s"].to_numpy(np.int64)]
    demand_quality = new.demand_quality.copy()
    demand_quality["d"] = to_d[new.demand_quality["d"].to_numpy(np.int64)]
    # In the kept table's order (its rows are the model's quality rows, in this order); rows it lacks last.
    keys = ["d", "parameter", "bound"]
    rank = pd.Series(np.arange(len(kept.demand_quality)),
                     index=pd.MultiIndex.from_frame(kept.demand_quality[keys].astype(str)))
    rank = rank[~rank.index.duplicated()]
    at = rank.reindex(pd.MultiIndex.from_frame(demand_quality[keys].astype(str))).to_numpy(float)
    demand_quality = demand_quality.iloc[np.lexsort((np.arange(len(at)), np.nan_to_num(at, nan=np.inf)))
                                         ].reset_index(drop=True)
    links = new.processor_links
    if links is not None and len(links):
        links = links.copy()
        rows = links["row"].to_numpy(np.int64).copy()
        out = links["side"].to_numpy() == "out"  # a supply row; an intake's is a demand row
        rows[out], rows[~out] = to_s[rows[out]], to_d[rows[~out]]
        links["row"] = rows
    return dataclasses.replace(new, supplies=supplies, demands=demands, arcs=arcs_of(new.arcs),
                               supply_quality=supply_quality, demand_quality=demand_quality,
                               processor_links=links, permit_screened=arcs_of(new.permit_screened))


def _arc_map(old: ExchangeArrays, new: ExchangeArrays, arcs: np.ndarray) -> np.ndarray:
    """For the arcs of ``old`` at ``arcs``, their positions among ``new``'s arcs (the same supply and demand
    rows), or -1."""
    n_d = max(old.n_demands, 1)
    old_key = old.arc_s[arcs].astype(np.int64) * n_d + old.arc_d[arcs]
    new_key = new.arc_s.astype(np.int64) * n_d + new.arc_d
    if len(new_key) < 2 or bool(np.all(new_key[1:] > new_key[:-1])):  # candidates come by supply, then demand
        order = None
        ordered = new_key
    else:
        order = np.argsort(new_key, kind="stable")
        ordered = new_key[order]
        if np.any(ordered[1:] == ordered[:-1]):
            raise StructuralChange("two arcs join the same supply and demand: their columns cannot be told apart")
    if len(ordered) == 0:
        return np.full(len(arcs), -1, dtype=np.int64)
    at = np.minimum(np.searchsorted(ordered, old_key), len(ordered) - 1)
    found = ordered[at] == old_key
    position = at if order is None else order[at]
    return np.where(found, position, -1).astype(np.int64)


def _same_columns(old: ExchangeArrays, new: ExchangeArrays, a: np.ndarray, b: np.ndarray,
                  old_objective: np.ndarray, new_objective: np.ndarray) -> np.ndarray:
    """Whether old arc ``a[k]`` has the same column as new arc ``b[k]``: cost, capacity and its coefficients in
    the rows of every family (the rows being the same, keyed alike).

    A column's coefficients in a family are compared through two sums over its terms, Σ coef · u_row and
    Σ coef · v_row, with u and v drawn at random per row (the same draw for both models), and its number of
    terms: columns that differ in any coefficient or row give equal sums only on a set of draws of measure zero.
    Only the terms of the compared arcs are summed (one pass over each family's columns to find them)."""
    from symbiosis.exchange.colgen import ARC_ROW_FAMILIES

    same = (old_objective[a] == new_objective[b]) & _elementwise_same(old.capacity[a], new.capacity[b])
    rng = np.random.default_rng(20261129)
    slots = []
    for n_arcs, cols in ((old.n_arcs, a), (new.n_arcs, b)):
        slot = np.full(n_arcs, -1, dtype=np.int64)
        slot[cols] = np.arange(len(cols))
        slots.append(slot)
    for family in ARC_ROW_FAMILIES:
        block_old, block_new = family.rows(old), family.rows(new)
        weights = rng.uniform(1.0, 2.0, (2, max(block_old.n_rows, 1)))
        sums = []
        for block, slot, cols in ((block_old, slots[0], a), (block_new, slots[1], b)):
            mine = np.flatnonzero(slot[block.cols] >= 0)
            rows = np.searchsorted(block.ptr, mine, side="right") - 1
            at, coefs = slot[block.cols[mine]], block.coefs[mine]
            sums.append((np.bincount(at, minlength=len(cols)),
                         np.bincount(at, weights=coefs * weights[0][rows], minlength=len(cols)),
                         np.bincount(at, weights=coefs * weights[1][rows], minlength=len(cols))))
        (t0, f0, s0), (t1, f1, s1) = sums
        scale = 1e-12 * np.maximum(1.0, np.abs(f0) + np.abs(s0))
        same &= (t0 == t1) & (np.abs(f0 - f1) <= scale) & (np.abs(s0 - s1) <= scale)
    return same


def _elementwise_same(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return (a == b) | (np.isnan(a) & np.isnan(b))


__all__ = ["Reoptimisation", "Reoptimiser", "StructuralChange", "in_order_of"]
