"""Solving the exchange model with HiGHS: Candidates → Solution (flows, duals, objective vs BAU).

The Pyomo model of ``symbiosis.exchange.model`` is handed to HiGHS through Pyomo's
``LinearStandardFormCompiler`` (mixed form: one sparse row per constraint, with its sense) and passed to
``highspy`` as column-wise arrays. That path measured cheapest of those that give duals (about a quarter of
the cost of Pyomo's persistent ``appsi_highs`` / ``contrib.solver`` interfaces; figures in
docs/formulation.md) and keeps the HiGHS instance at hand, so :class:`ExchangeModel` can change the carbon
price, the objective weights or an emission cap and re-solve without rebuilding or handing over again.
Only this module and ``symbiosis.results`` read solver values; the :class:`Solution` it returns holds plain
numpy arrays aligned with the candidate tables. Duals are reported with the signs of docs/formulation.md:
``supply_dual`` = value of one more tonne of a supply, ``demand_dual`` = cost of one more tonne of need.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyomo
import pyomo.environ as pyo
from pyomo.common.gc_manager import PauseGC
from pyomo.core.expr.numeric_expr import LinearExpression

from symbiosis.candidates import Candidates
from symbiosis.errors import SymbiosisError
from symbiosis.exchange.blocks import TARGET_COLUMNS, BlockResult, BlockSolver, StandardForm
from symbiosis.exchange.model import (
    ExchangeArrays,
    _expression,
    add_objective,
    build_model,
    exchange_arrays,
    model_columns,
    objective_coefficients,
    resolve_weights,
)
from symbiosis.network.processors import polish

logger = logging.getLogger(__name__)

METHODS = ("ipm", "simplex", "pdlp", "choose")
INF = math.inf


class SolverError(SymbiosisError):
    """The solver did not return an optimal solution (infeasible, unbounded, time limit, error)."""


@dataclass
class Solution:
    """The optimal exchange: flows and duals as numpy arrays aligned with the candidate tables.

    ``x`` (t/yr per row of ``candidates.arcs``), ``w`` (t/yr left to the fate, per supply), ``y`` (t/yr
    virgin, per demand). ``supply_dual``: value to the system of one more tonne of the supply (currency per
    t, positive = valuable); ``demand_dual``: cost to the system of one more tonne of need (currency per t).
    ``share_dual`` (per demand, 0 where no share row) and ``quality_dual`` (per row of
    ``ExchangeArrays.quality_rows``) are the value of relaxing that limit by one unit (≥ 0; > 0 = binding).
    ``co2e_cap_dual`` is the implied carbon price of an emission cap (currency per t CO2e), NaN without one.
    Duals are in objective units: currency when the objective weights are the default cost-only ones.
    """

    x: np.ndarray
    w: np.ndarray
    y: np.ndarray
    supply_dual: np.ndarray
    demand_dual: np.ndarray
    objective: float
    objective_bau: float
    status: str
    termination: str
    solver: str
    timings: dict[str, float] = field(default_factory=dict)
    share_dual: np.ndarray = field(default_factory=lambda: np.zeros(0))
    quality_dual: np.ndarray = field(default_factory=lambda: np.zeros(0))
    co2e_cap_dual: float = math.nan
    cost: float = math.nan
    co2e_t: float = math.nan
    parameters: dict[str, Any] = field(default_factory=dict)
    #: Processors' activities (aligned with ``candidates.processors``; empty without processors).
    z: np.ndarray = field(default_factory=lambda: np.zeros(0))
    #: Value of one more permitted tonne (≥ 0; > 0 = binding), per row of ExchangeArrays.permit (facility
    #: ExchangeArrays.permit_facility[k], EWC code ExchangeArrays.permit_code[k]).
    permit_dual: np.ndarray = field(default_factory=lambda: np.zeros(0))
    # Value of one more tonne of intake capacity (≥ 0; > 0 = binding): per demand (0 where no row) and per
    # row of ExchangeArrays.facility_intake (facility ExchangeArrays.facility_intake_ids[k]).
    intake_dual: np.ndarray = field(default_factory=lambda: np.zeros(0))
    facility_intake_dual: np.ndarray = field(default_factory=lambda: np.zeros(0))
    #: Stores between periods (symbiosis.periods), None without: per store-period row ``stock``, ``put``,
    #: ``take``, ``stock_dual`` (value of one more unit in stock at the end of the period), ``capacity_dual``
    #: (value of one more unit of capacity in that period, ≥ 0) and per store ``closing_dual``.
    storage: dict[str, np.ndarray] | None = None


@functools.cache
def _solver_name() -> str:
    import highspy

    highs = highspy.Highs()
    return f"HiGHS {highs.version()} (highspy) via Pyomo {pyomo.version.version} LinearStandardFormCompiler"


@dataclass
class _Handover:
    """Where each Pyomo row landed in the HiGHS instance."""

    supply_rows: np.ndarray
    demand_rows: np.ndarray
    share_rows: np.ndarray
    quality_rows: np.ndarray
    co2e_cap_row: int = -1
    permit_rows: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    intake_rows: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    facility_intake_rows: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    stock_rows: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    store_capacity_rows: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    store_closing_rows: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))


class ExchangeModel:
    """A built exchange model that can be re-solved after changing the carbon price, weights or a CO2e cap.

    >>> em = ExchangeModel(candidates, carbon_price=0.0)      # doctest: +SKIP
    >>> base = em.solve()
    >>> em.set_carbon_price(100.0); priced = em.resolve()     # no rebuild, no new hand-over
    >>> em.set_co2_cap(0.9 * base.co2e_t); capped = em.resolve()

    The Pyomo model (``.model``) stays the statement of the problem: every change is made to it and,
    incrementally, to the HiGHS instances handed over at the first solve. With ``decompose`` (the default)
    the LP's independent blocks get one HiGHS instance each and are solved ``threads`` at a time
    (symbiosis.exchange.blocks: the same optimum, much faster on large regions); blocks smaller than
    ``block_columns`` columns are packed together. An emission cap couples every block and joins them.
    """

    def __init__(
        self,
        candidates: Candidates,
        *,
        carbon_price: float | None = None,
        weights: Mapping[str, float] | None = None,
        method: str = "ipm",
        crossover: bool = True,
        time_limit: float | None = None,
        tolerance: float = 1e-7,
        decompose: bool = True,
        threads: int | None = None,
        block_columns: int = TARGET_COLUMNS,
    ) -> None:
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        self.candidates = candidates
        self.carbon_price = _carbon_price(candidates, carbon_price)
        self.weights = dict(zip(("cost", "co2e"), resolve_weights(weights), strict=True))
        self.method = method
        self.crossover = crossover
        self.time_limit = time_limit
        self.tolerance = tolerance
        self.decompose = decompose
        self.threads = threads
        self.block_columns = block_columns
        self.co2e_cap: float | None = None
        self.timings: dict[str, float] = {}
        start = time.perf_counter()
        self.arrays: ExchangeArrays = self._make_arrays(candidates)
        self.model: pyo.ConcreteModel | None = None
        if self.arrays.n_arcs:
            self.model = build_model(candidates, carbon_price=self.carbon_price, weights=self.weights,
                                     arrays=self.arrays)
        self.timings["build"] = time.perf_counter() - start
        self._highs: Any = None
        self._rows: _Handover | None = None
        self._solved = False

    def _make_arrays(self, candidates: Candidates) -> ExchangeArrays:
        """The model's arrays (a subclass adds its own, e.g. symbiosis.energy.mip's binaries)."""
        return exchange_arrays(candidates)

    # --- changes -------------------------------------------------------------------------------------

    def set_carbon_price(self, carbon_price: float) -> None:
        """Change λ (currency per t CO2e) in the objective; the next solve needs no rebuild or new hand-over."""
        self.carbon_price = float(carbon_price)
        self._update_objective()

    def set_weights(self, weights: Mapping[str, float] | None) -> None:
        """Change the cost / CO2e weights of the objective."""
        self.weights = dict(zip(("cost", "co2e"), resolve_weights(weights), strict=True))
        self._update_objective()

    def set_co2_cap(self, eps: float | None) -> None:
        r"""Add or move the ε-constraint :math:`E \le \varepsilon` on total emissions (t CO2e/yr); None removes it.

        E is the emission term of the objective (transport, processing, fates, virgin production).
        """
        co2e = self.arrays.co2e_vector()
        nz = np.flatnonzero(co2e)
        if eps is not None and len(nz) == 0 and eps < 0:
            raise ValueError(f"an emission cap of {eps} t CO2e cannot be met: nothing in the network emits")
        self.co2e_cap = None if eps is None else float(eps)
        if self.model is None or len(nz) == 0:
            return  # no emission terms: E = 0 meets any cap ≥ 0, no row needed
        m = self.model
        upper = INF if eps is None else float(eps)
        if m.component("co2e_cap") is None:
            if eps is None:
                return
            with PauseGC():
                expr: LinearExpression = _expression(model_columns(m), nz, co2e[nz])
                m.co2e_cap = pyo.Constraint(expr=(None, expr, upper))
        elif eps is None:
            m.co2e_cap.deactivate()
        else:
            m.co2e_cap.set_value((None, m.co2e_cap.body, upper))
            m.co2e_cap.activate()
        if self._highs is None or self._rows is None:
            return  # the first hand-over compiles whatever is active
        if self._rows.co2e_cap_row >= 0:
            self._highs.set_row_bounds(self._rows.co2e_cap_row, -INF, upper)
        elif eps is not None:
            # The cap couples every block: the block solver hands the LP over again as one.
            self._rows.co2e_cap_row = self._highs.add_row(-INF, upper, nz, co2e[nz])

    def _update_objective(self) -> None:
        if self.model is None:
            return
        with PauseGC():
            add_objective(self.model, self.arrays, carbon_price=self.carbon_price, weights=self.weights)
        if self._highs is not None:
            self._highs.set_cost(objective_coefficients(self.arrays, self.carbon_price, self.weights))

    # --- solving -------------------------------------------------------------------------------------

    def solve(self, *, method: str | None = None) -> Solution:
        """Solve (handing the model over to HiGHS the first time) and return the Solution.

        ``method`` changes the HiGHS method from now on: after a carbon price or weight change,
        ``method="simplex"`` starts from the last basis and is usually faster than a fresh interior point.
        """
        if method is not None:
            if method not in METHODS:
                raise ValueError(f"method must be one of {METHODS}, got {method!r}")
            self.method = method
        if self.model is None:
            return self._bau_solution()
        timings = dict(self.timings)
        if self._highs is None:
            self.hand_over()
            timings["handover"] = self.timings["handover"]
        elif self._solved:
            timings.pop("build", None)
            timings.pop("handover", None)
        self._solved = True
        start = time.perf_counter()
        result = self._highs.run(self._options())
        timings["solve"] = time.perf_counter() - start
        start = time.perf_counter()
        solution = self._extract(result)
        timings["extract"] = time.perf_counter() - start
        solution.timings = timings
        logger.info("exchange model solved: objective %.6g (BAU %.6g), %s; timings %s",
                    solution.objective, solution.objective_bau, solution.termination,
                    {k: round(v, 4) for k, v in timings.items()})
        return solution

    def hand_over(self) -> None:
        """Hand the model to HiGHS now (``solve`` does it the first time otherwise), e.g. to give it a
        starting basis before the first solve (symbiosis.exchange.warm)."""
        if self._highs is not None or self.model is None:
            return
        start = time.perf_counter()
        with PauseGC():
            self._handover()
        self.timings["handover"] = time.perf_counter() - start

    def resolve(self, *, method: str | None = None, start: list[Any] | None = None) -> Solution:
        """Solve again after changes, warm: from the last basis (or ``start``, as :meth:`basis` gave it).

        Without ``method``, an LP whose blocks all hold a valid basis is re-solved with the simplex from that
        basis (a parameter change leaves it primal or dual feasible, so few pivots are needed); otherwise, or
        for a mixed-integer model, with the model's own method. The optimum is that of a fresh solve; only
        the path to it differs. ``start`` makes the result independent of what was solved before (the Monte
        Carlo restarts every sample from the base basis, so that a sample's answer does not depend on which
        samples the same worker solved before it, even at a degenerate optimum).
        """
        if self._highs is None or self.model is None:
            return self.solve(method=method)
        if start is not None:
            self._highs.set_bases(start)
        if method is not None:
            return self.solve(method=method)
        warm = self._highs.lp.integrality is None and all(b.valid for b in self._highs.bases())
        if not warm:
            return self.solve()
        kept = self.method
        self.method = "simplex"
        try:
            return self.solve()
        finally:
            self.method = kept

    def basis(self) -> list[Any] | None:
        """The HiGHS basis of every block after the last solve (None before the first hand-over)."""
        return None if self._highs is None else self._highs.bases()

    # --- parameter changes (the LP's structure stays; the HiGHS instances are changed in place) ---------

    def set_amounts(self, supply: np.ndarray | None = None, demand: np.ndarray | None = None) -> None:
        """New supply and/or demand amounts (t/yr, MWh/yr on energy rows; one per row of the tables).

        Changes the right-hand sides of the supply and demand balances and of the share limits
        (σ_d r_d). A processor's rows hold its activity, not a fixed amount: their amounts cannot be set.
        """
        arrays = self.arrays
        changes = []
        if supply is not None:
            supply = _checked(supply, arrays.n_supplies, "supply amounts")
            changes.append(("supply", supply, arrays.supply_amount, arrays.out_rows))
        if demand is not None:
            demand = _checked(demand, arrays.n_demands, "demand amounts")
            changes.append(("demand", demand, arrays.demand_amount, arrays.in_rows))
        for label, new, old, processor_rows in changes:
            moved = np.flatnonzero(new != old)
            if len(np.intersect1d(moved, processor_rows)):
                raise ValueError(f"the {label} amounts of processor rows follow their activity and cannot be set")
        m, rows = self.model, self._rows
        if supply is not None:
            moved = np.flatnonzero(supply != arrays.supply_amount)
            arrays.supply_amount = supply.copy()
            if m is not None:
                for s in moved.tolist():
                    con = m.supply_balance[s]
                    con.set_value((con.body, float(supply[s])))
            if rows is not None and self._highs is not None:
                at = rows.supply_rows[moved]
                keep = at >= 0
                self._highs.set_rows_bounds(at[keep], supply[moved][keep], supply[moved][keep])
        if demand is not None:
            moved = np.flatnonzero(demand != arrays.demand_amount)
            arrays.demand_amount = demand.copy()
            share_rows = np.intersect1d(moved, arrays.share_demands)
            bound = arrays.share * demand
            if m is not None:
                for d in moved.tolist():
                    con = m.demand_balance[d]
                    con.set_value((con.body, float(demand[d])))
                for d in share_rows.tolist():
                    con = m.share_limit[d]
                    con.set_value((None, con.body, float(bound[d])))
            if rows is not None and self._highs is not None:
                at = rows.demand_rows[moved]
                keep = at >= 0
                self._highs.set_rows_bounds(at[keep], demand[moved][keep], demand[moved][keep])
                at = rows.share_rows[share_rows]
                keep = at >= 0
                self._highs.set_rows_bounds(at[keep], np.full(int(keep.sum()), -INF), bound[share_rows][keep])

    def set_costs(self, *, arc_cost: np.ndarray | None = None, fate_cost: np.ndarray | None = None,
                  virgin_price: np.ndarray | None = None, arc_co2e: np.ndarray | None = None,
                  fate_co2e: np.ndarray | None = None, virgin_co2e: np.ndarray | None = None) -> None:
        """New objective data: money per t on each arc (transport + processing), each supply's fate cost,
        each demand's virgin price, and their t CO2e per t. Only the objective changes."""
        arrays = self.arrays
        for name, value, n in (("arc_cost", arc_cost, arrays.n_arcs), ("fate_cost", fate_cost, arrays.n_supplies),
                               ("virgin_price", virgin_price, arrays.n_demands),
                               ("arc_co2e", arc_co2e, arrays.n_arcs), ("fate_co2e", fate_co2e, arrays.n_supplies),
                               ("virgin_co2e", virgin_co2e, arrays.n_demands)):
            if value is not None:
                setattr(arrays, name, _checked(value, n, name, negative_ok=True))
        self._update_objective()

    def set_capacity(self, capacity: np.ndarray) -> None:
        """New arc capacities (t/yr, NaN = none): the upper bounds of x."""
        arrays = self.arrays
        capacity = _checked(capacity, arrays.n_arcs, "arc capacities", nan_ok=True)
        moved = np.flatnonzero(~((capacity == arrays.capacity) | (np.isnan(capacity) & np.isnan(arrays.capacity))))
        arrays.capacity = capacity.copy()
        upper = np.where(np.isnan(capacity), INF, capacity)
        if self.model is not None:
            x = self.model.x_list
            for a in moved.tolist():
                x[a].setub(None if np.isnan(capacity[a]) else float(capacity[a]))
        if self._highs is not None and len(moved):
            self._highs.set_cols_bounds(moved, np.zeros(len(moved)), upper[moved])

    def set_intake_limits(self, demand: np.ndarray | None = None, facility: np.ndarray | None = None) -> None:
        """New intake limits (t/yr received): per demand (aligned with the demands; only demands that have a
        limit row can change it) and per row of ``arrays.facility_intake``."""
        arrays, m, rows = self.arrays, self.model, self._rows
        if demand is not None:
            demand = _checked(demand, arrays.n_demands, "intake limits", nan_ok=True)
            has_row = np.zeros(arrays.n_demands, bool)
            has_row[arrays.intake_demands] = True
            same = (demand == arrays.intake_limit) | (np.isnan(demand) & np.isnan(arrays.intake_limit))
            moved = np.flatnonzero(~same)
            has_arcs_in = np.diff(arrays.in_arcs.ptr) > 0  # a demand without arcs in needs no row
            if (has_arcs_in[moved] & (~has_row[moved] | np.isnan(demand[moved]))).any():
                raise ValueError("an intake limit can only be moved where the model has one (a new or removed "
                                 "limit changes the model's rows: build it again)")
            arrays.intake_limit = demand.copy()
            moved = moved[has_row[moved]]
            if m is not None:
                for d in moved.tolist():
                    con = m.intake_limit[d]
                    con.set_value((None, con.body, float(demand[d])))
            if rows is not None and self._highs is not None:
                at = rows.intake_rows[moved]
                keep = at >= 0
                self._highs.set_rows_bounds(at[keep], np.full(int(keep.sum()), -INF), demand[moved][keep])
        if facility is not None:
            facility = _checked(facility, arrays.facility_intake.n_rows, "facility intake limits")
            moved = np.flatnonzero(facility != arrays.facility_intake_limit)
            arrays.facility_intake_limit = facility.copy()
            if m is not None:
                for k in moved.tolist():
                    con = m.facility_intake[k]
                    con.set_value((None, con.body, float(facility[k])))
            if rows is not None and self._highs is not None:
                at = rows.facility_intake_rows[moved]
                keep = at >= 0
                self._highs.set_rows_bounds(at[keep], np.full(int(keep.sum()), -INF), facility[moved][keep])

    def set_ratios(self, ratio: np.ndarray) -> None:
        """New substitution ratios ρ_a (t replaced per t shipped, > 0): coefficients of the demand balance and
        share rows. HiGHS changes one coefficient a call, so this costs a Python step per changed arc."""
        arrays = self.arrays
        ratio = _checked(ratio, arrays.n_arcs, "ratios")
        if (ratio <= 0).any():
            raise ValueError("substitution ratios must be > 0")
        moved = np.flatnonzero(ratio != arrays.ratio)
        if not len(moved):
            return
        demands = np.unique(arrays.arc_d[moved])
        if len(np.intersect1d(demands, arrays.in_rows)):
            raise ValueError("the ratios of arcs into a processor cannot be changed in place")
        arrays.ratio = ratio.copy()
        arrays.in_arcs.coefs = ratio[arrays.in_arcs.cols]
        m, rows = self.model, self._rows
        is_share = np.zeros(arrays.n_demands, bool)
        is_share[arrays.share_demands] = True
        if m is not None:
            x, y = m.x_list, m.y_list
            bound = arrays.share * arrays.demand_amount
            for d in demands.tolist():
                cols, coefs = arrays.in_arcs.row(d)
                m.demand_balance[d].set_value((_expression(x, cols, coefs, (y[d],)), float(arrays.demand_amount[d])))
                if is_share[d]:
                    m.share_limit[d].set_value((None, _expression(x, cols, coefs), float(bound[d])))
        if rows is not None and self._highs is not None:
            d_of = arrays.arc_d[moved]
            at = rows.demand_rows[d_of]
            keep = at >= 0
            self._highs.set_coefficients(at[keep], moved[keep], ratio[moved][keep])
            at = rows.share_rows[d_of]
            keep = (at >= 0) & is_share[d_of]
            self._highs.set_coefficients(at[keep], moved[keep], ratio[moved][keep])

    def _handover(self) -> None:
        from pyomo.repn.plugins.standard_form import LinearStandardFormCompiler

        m = self.model
        assert m is not None
        columns = [*model_columns(m), *getattr(m, "b_list", [])]
        n_col = len(columns)

        def same_columns(found: list[Any]) -> bool:
            return len(found) == n_col and all(a is b for a, b in zip(found, columns, strict=True))

        # Declaration order already gives x, w, y; passing column_order costs more than checking it.
        info = LinearStandardFormCompiler().write(m, mixed_form=True)
        if not same_columns(info.columns):
            info = LinearStandardFormCompiler().write(m, mixed_form=True, column_order=columns)
            if not same_columns(info.columns):
                raise SolverError("internal error: the standard form dropped or reordered columns of the "
                                  "exchange model (a variable appears in no row)")
        # Row bookkeeping: which HiGHS row holds each Pyomo constraint (rows with no terms are skipped).
        families = {"supply_balance": 0, "demand_balance": 1, "share_limit": 2, "quality_limit": 3,
                    "co2e_cap": 4, "intake_limit": 5, "facility_intake": 6, "stock_balance": 7,
                    "store_capacity": 8, "store_closing": 9}
        arrays = self.arrays
        rows = _Handover(
            supply_rows=np.full(arrays.n_supplies, -1, np.int64),
            demand_rows=np.full(arrays.n_demands, -1, np.int64),
            share_rows=np.full(arrays.n_demands, -1, np.int64),
            quality_rows=np.full(arrays.quality.n_rows, -1, np.int64),
            intake_rows=np.full(arrays.n_demands, -1, np.int64),
            facility_intake_rows=np.full(arrays.facility_intake.n_rows, -1, np.int64),
        )
        n_store_rows = arrays.storage.n_rows if arrays.storage is not None else 0
        rows.stock_rows = np.full(n_store_rows, -1, np.int64)
        rows.store_capacity_rows = np.full(n_store_rows, -1, np.int64)
        rows.store_closing_rows = np.full(arrays.storage.n_stores if arrays.storage is not None else 0, -1, np.int64)
        targets = [rows.supply_rows, rows.demand_rows, rows.share_rows, rows.quality_rows, np.zeros(0),
                   rows.intake_rows, rows.facility_intake_rows, rows.stock_rows, rows.store_capacity_rows,
                   rows.store_closing_rows]
        n_row = len(info.rows)
        # Permitted tonnages (add_permit_limits): their family number is the next free position of targets.
        rows.permit_rows = np.full(arrays.permit.n_rows, -1, np.int64)
        families["permit_limit"] = len(targets)
        targets.append(rows.permit_rows)
        row_lower = np.full(n_row, -INF)
        row_upper = np.full(n_row, INF)
        rhs = np.asarray(info.rhs, dtype=float)
        for i, (con, bound_type) in enumerate(info.rows):
            family = families.get(con.parent_component().local_name, -1)  # -1: no dual reported (MIP links)
            if family == 4:
                rows.co2e_cap_row = i
            elif family >= 0:
                targets[family][con.index()] = i
            if bound_type <= 0:
                row_lower[i] = rhs[i]
            if bound_type >= 0:
                row_upper[i] = rhs[i]
        col_lower = np.zeros(n_col)
        col_upper = np.full(n_col, INF)
        capped = ~np.isnan(arrays.capacity)
        col_upper[: arrays.n_arcs][capped] = arrays.capacity[capped]
        n_binary = n_col - arrays.n_arcs - arrays.n_supplies - arrays.n_demands - arrays.n_processors - 3 * n_store_rows
        integrality = None
        if arrays.n_processors:
            first = arrays.n_arcs + arrays.n_supplies + arrays.n_demands
            col_upper[first:first + arrays.n_processors] = np.nan_to_num(arrays.processor_capacity, nan=INF)
        if n_binary:
            col_upper[-n_binary:] = 1.0
            integrality = np.r_[np.zeros(n_col - n_binary, np.int32), np.ones(n_binary, np.int32)]
        cost = np.asarray(info.c.toarray(), dtype=float).ravel() if info.c.shape[0] else np.zeros(n_col)
        lp = StandardForm(cost, col_lower, col_upper, row_lower, row_upper, info.A.tocsc(),
                          float(info.c_offset[0]) if len(info.c_offset) else 0.0, integrality)
        try:
            self._highs = BlockSolver(lp, decompose=self.decompose, threads=self.threads,
                                      target_columns=self.block_columns)
        except ValueError as exc:
            raise SolverError(f"{exc} (exchange model)") from exc
        self._rows = rows
        logger.debug("handed %d columns, %d rows, %d non-zeros to HiGHS in %d block(s)", n_col, n_row,
                     lp.matrix.nnz, self._highs.n_blocks)

    def _options(self) -> dict[str, Any]:
        return {
            "solver": self.method,
            "run_crossover": "on" if self.crossover else "off",
            "time_limit": INF if self.time_limit is None else float(self.time_limit),
            "primal_feasibility_tolerance": self.tolerance,
            "dual_feasibility_tolerance": self.tolerance,
        }

    def _extract(self, result: BlockResult) -> Solution:
        import highspy

        rows, arrays = self._rows, self.arrays
        assert rows is not None
        status, termination = result.status, result.termination
        if status != highspy.HighsModelStatus.kOptimal:
            raise SolverError(self._failure_message(status, termination))
        col, row_dual = result.col_value, result.row_dual
        n_a, n_s, n_d = arrays.n_arcs, arrays.n_supplies, arrays.n_demands
        x = np.maximum(col[:n_a], 0.0)
        w = np.maximum(col[n_a:n_a + n_s], 0.0)
        y = np.maximum(col[n_a + n_s:n_a + n_s + n_d], 0.0)
        z = np.maximum(col[n_a + n_s + n_d:n_a + n_s + n_d + arrays.n_processors], 0.0)
        polish(arrays, x, w, y, z)

        def pick(positions: np.ndarray, sign: float) -> np.ndarray:
            out = np.zeros(len(positions))
            present = positions >= 0
            out[present] = sign * row_dual[positions[present]]
            return out

        # HiGHS (minimisation): row_dual = ∂objective/∂(row bound). One more tonne of supply lowers the
        # objective by the supply's value, so the value is −row_dual; one more tonne of need raises it.
        # A ≤ row's dual is ≤ 0 and a ≥ row's ≥ 0: relaxing either is worth |dual|.
        supply_dual = pick(rows.supply_rows, -1.0)
        demand_dual = pick(rows.demand_rows, 1.0)
        share_dual = pick(rows.share_rows, -1.0)
        is_max = (arrays.quality_rows["bound"] == "max").to_numpy() if arrays.quality.n_rows else np.zeros(0)
        quality_dual = pick(rows.quality_rows, 1.0) * np.where(is_max, -1.0, 1.0)
        cap_dual = -row_dual[rows.co2e_cap_row] if rows.co2e_cap_row >= 0 and self.co2e_cap is not None \
            else math.nan
        solution = self._solution(x, w, y, supply_dual, demand_dual, share_dual, quality_dual, cap_dual,
                                  objective=result.objective, termination=termination, z=z)
        solution.permit_dual = pick(rows.permit_rows, -1.0)
        solution.intake_dual = pick(rows.intake_rows, -1.0)
        solution.facility_intake_dual = pick(rows.facility_intake_rows, -1.0)
        if arrays.storage is not None:
            first = n_a + n_s + n_d + arrays.n_processors
            stock, put, take = arrays.storage.split(np.maximum(col[first:first + arrays.storage.n_columns], 0.0))
            solution.storage = {"stock": stock, "put": put, "take": take,
                                "stock_dual": pick(rows.stock_rows, -1.0),
                                "capacity_dual": pick(rows.store_capacity_rows, -1.0),
                                "closing_dual": pick(rows.store_closing_rows, -1.0)}
            columns = np.concatenate([x, w, y, z, stock, put, take])
            solution.cost = float(arrays.cost_vector() @ columns)
            solution.co2e_t = float(arrays.co2e_vector() @ columns)
        return solution

    def _failure_message(self, status: Any, termination: str) -> str:
        import highspy

        kind = {
            highspy.HighsModelStatus.kInfeasible: "infeasible",
            highspy.HighsModelStatus.kUnbounded: "unbounded",
            highspy.HighsModelStatus.kUnboundedOrInfeasible: "unbounded or infeasible",
            highspy.HighsModelStatus.kTimeLimit: "stopped at the time limit",
            highspy.HighsModelStatus.kIterationLimit: "stopped at the iteration limit",
        }.get(status, "not solved")
        text = f"the exchange model is {kind} (HiGHS: {termination}, method {self.method})."
        if "infeasible" in kind or "unbounded" in kind:
            text += (" Business as usual (no exchange) is always feasible and the objective is bounded by "
                     "the supply and demand amounts, so this means bad data or a bug.")
            text += " " + _data_diagnosis(self.arrays, self.co2e_cap)
        elif "limit" in kind:
            text += f" Raise time_limit (now {self.time_limit}) or try method='simplex'."
        return text.strip()

    def _solution(
        self, x: np.ndarray, w: np.ndarray, y: np.ndarray, supply_dual: np.ndarray, demand_dual: np.ndarray,
        share_dual: np.ndarray, quality_dual: np.ndarray, cap_dual: float, *, objective: float,
        termination: str, z: np.ndarray | None = None,
    ) -> Solution:
        arrays = self.arrays
        z = arrays.processor_bau.copy() if z is None else z
        columns = np.concatenate([x, w, y, z, np.zeros(arrays.storage.n_columns if arrays.storage is not None else 0)])
        bau = arrays.bau_columns()
        obj_vector = arrays.objective_vector(self.carbon_price, self.weights)
        return Solution(
            x=x, w=w, y=y, supply_dual=supply_dual, demand_dual=demand_dual,
            objective=objective, objective_bau=float(obj_vector @ bau),
            status="optimal", termination=termination, solver=_solver_name(),
            share_dual=share_dual, quality_dual=quality_dual, co2e_cap_dual=cap_dual,
            cost=float(arrays.cost_vector() @ columns), co2e_t=float(arrays.co2e_vector() @ columns),
            parameters={"carbon_price": self.carbon_price, "weights": dict(self.weights),
                        "method": self.method, "crossover": self.crossover, "time_limit": self.time_limit,
                        "tolerance": self.tolerance, "co2e_cap": self.co2e_cap,
                        "blocks": self._highs.n_blocks if self._highs is not None else 0},
            z=z,
        )

    def _bau_solution(self) -> Solution:
        """No arcs: business as usual is the only solution; duals follow from the fate and virgin costs."""
        arrays = self.arrays
        problems = _data_diagnosis(arrays, None)
        if problems:
            raise SolverError(f"the exchange model is infeasible (no arcs, business as usual only). {problems}")
        bau = arrays.bau_columns()
        if self.co2e_cap is not None and arrays.co2e_vector() @ bau > self.co2e_cap:
            raise SolverError(f"the emission cap {self.co2e_cap} t CO2e is below the business-as-usual "
                              f"emissions {arrays.co2e_vector() @ bau:.6g} and there are no arcs: infeasible")
        obj_vector = arrays.objective_vector(self.carbon_price, self.weights)
        n_s = arrays.n_supplies
        solution = self._solution(
            np.zeros(0), arrays.supply_amount.copy(), arrays.demand_amount.copy(),
            supply_dual=-obj_vector[:n_s], demand_dual=obj_vector[n_s:n_s + arrays.n_demands].copy(),
            share_dual=np.zeros(arrays.n_demands), quality_dual=np.zeros(0),
            cap_dual=0.0 if self.co2e_cap is not None else math.nan,
            objective=float(obj_vector @ bau), termination="no arcs: business as usual",
        )
        solution.timings = dict(self.timings)
        solution.intake_dual = np.zeros(arrays.n_demands)
        solution.facility_intake_dual = np.zeros(arrays.facility_intake.n_rows)
        return solution


def _checked(values: np.ndarray, n: int, what: str, *, nan_ok: bool = False, negative_ok: bool = False) -> np.ndarray:
    """``values`` as a float array of length ``n``, finite (NaN allowed with ``nan_ok``), ≥ 0 unless ``negative_ok``."""
    out = np.array(values, dtype=float, copy=True).ravel()
    if len(out) != n:
        raise ValueError(f"{what}: {len(out)} values for {n} rows")
    bad = np.isinf(out) | (np.isnan(out) if not nan_ok else np.zeros(n, bool))
    if not negative_ok:
        bad |= out < 0
    if bad.any():
        where = np.flatnonzero(bad)[:5]
        raise ValueError(f"{what} must be finite{'' if negative_ok else ' and ≥ 0'}; found {out[where].tolist()} "
                         f"at rows {where.tolist()}")
    return out


def _carbon_price(candidates: Candidates, carbon_price: float | None) -> float:
    if carbon_price is None:
        carbon_price = float((candidates.parameters or {}).get("carbon_price", 0.0) or 0.0)
    if not math.isfinite(carbon_price):
        raise ValueError(f"carbon_price must be finite, got {carbon_price}")
    return float(carbon_price)


def _data_diagnosis(arrays: ExchangeArrays, co2e_cap: float | None) -> str:
    """Name the data that make business as usual infeasible (negative amounts, an unreachable cap)."""
    found = []
    for label, amount in (("supply", arrays.supply_amount), ("demand", arrays.demand_amount)):
        negative = np.flatnonzero(amount < 0)
        if len(negative):
            found.append(f"negative {label} amount at {label} positions {negative[:5].tolist()} "
                         f"({amount[negative[:5]].tolist()} t/yr)")
    if co2e_cap is not None:
        found.append(f"an emission cap of {co2e_cap} t CO2e may be below what any exchange reaches")
    return ("Found: " + "; ".join(found) + ".") if found else ""


def solve_exchange(
    candidates: Candidates,
    *,
    carbon_price: float | None = None,
    weights: Mapping[str, float] | None = None,
    method: str = "ipm",
    time_limit: float | None = None,
    tolerance: float = 1e-7,
    crossover: bool = True,
    decompose: bool = True,
    threads: int | None = None,
) -> Solution:
    """Build the exchange model, solve it with HiGHS and return flows, duals and objective vs BAU.

    ``carbon_price`` defaults to ``candidates.parameters['carbon_price']`` (0 if absent). ``method`` is
    HiGHS's ``solver`` option (``ipm`` with crossover by default, ``simplex``, ``pdlp``, ``choose``).
    Raises :class:`SolverError` unless HiGHS reports an optimal solution. With no arcs the
    business-as-usual solution is returned without calling the solver. ``decompose`` (default) solves the
    independent blocks of the LP apart, ``threads`` of them at once (symbiosis.exchange.blocks); False hands
    HiGHS the LP whole.
    """
    return ExchangeModel(
        candidates, carbon_price=carbon_price, weights=weights, method=method, crossover=crossover,
        time_limit=time_limit, tolerance=tolerance, decompose=decompose, threads=threads,
    ).solve()
