"""The exchange model: the linear program of DESIGN.md built as a Pyomo model from Candidates.

This is the fourth stage of the pipeline (Candidates → exchange model → Solution). ``exchange_arrays``
turns the candidate tables into flat numpy arrays and sparse index sets (arcs out of each supply, arcs into
each demand, the terms of each quality row), checked for NaN and bad values; ``build_model`` then adds one
constraint family per function, in order, to a ``ConcreteModel`` whose variables ``x`` (arcs), ``w``
(supplies left to their fate) and ``y`` (virgin bought per demand) are indexed by flat integer ranges aligned
with the rows of ``candidates.arcs``, ``candidates.supplies`` and ``candidates.demands``. Expressions are
``LinearExpression`` objects of plain floats: no Params, no scan of supplies × demands. Solving lives in
``symbiosis.exchange.solve``; the full formulation and the dual sign conventions are in docs/formulation.md.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyomo.environ as pyo
from pyomo.common.gc_manager import PauseGC
from pyomo.core.expr.numeric_expr import LinearExpression, MonomialTermExpression

from symbiosis.candidates import Candidates
from symbiosis.energy.heat import row_amount
from symbiosis.network import intake
from symbiosis.network.permits import limit_rows as permit_rows
from symbiosis.network.processors import add_processor_balance
from symbiosis.periods.storage import StorageArrays, add_storage

logger = logging.getLogger(__name__)

DEFAULT_WEIGHTS: dict[str, float] = {"cost": 1.0, "co2e": 0.0}


@dataclass
class RowBlock:
    """Sparse rows in CSR form: row ``i`` has terms ``cols[ptr[i]:ptr[i+1]]`` with ``coefs`` alike."""

    ptr: np.ndarray
    cols: np.ndarray
    coefs: np.ndarray

    @property
    def n_rows(self) -> int:
        return len(self.ptr) - 1

    def row(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = self.ptr[i], self.ptr[i + 1]
        return self.cols[lo:hi], self.coefs[lo:hi]

    def term_rows(self) -> np.ndarray:
        """The row of each term (aligned with ``cols`` and ``coefs``)."""
        return np.repeat(np.arange(self.n_rows), np.diff(self.ptr))

    def activity(self, values: np.ndarray) -> np.ndarray:
        """Σ coef · values[col] per row."""
        return np.bincount(self.term_rows(), weights=self.coefs * values[self.cols], minlength=self.n_rows)


def _csr(rows: np.ndarray, cols: np.ndarray, coefs: np.ndarray, n_rows: int) -> RowBlock:
    order = np.argsort(rows, kind="stable")
    ptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n_rows), out=ptr[1:])
    return RowBlock(ptr=ptr, cols=cols[order].astype(np.int64), coefs=coefs[order].astype(float))


@dataclass
class ExchangeArrays:
    """The candidate tables as flat arrays and sparse index sets (positions, not ids).

    Costs are in the region's currency per t, emissions in t CO2e per t, amounts in t/yr. ``out_arcs`` and
    ``in_arcs`` list the arcs out of each supply and into each demand; ``quality`` holds one row per bounded
    (demand, parameter) that has at least one arc: coefficients ``c[s(a),q] − limit`` on the arcs and
    ``virgin − limit`` on the demand's virgin purchase, with ``quality_rows`` telling which demand, parameter
    and bound (``max`` rows are ≤ 0, ``min`` rows ≥ 0).
    """

    n_arcs: int
    n_supplies: int
    n_demands: int
    arc_s: np.ndarray
    arc_d: np.ndarray
    ratio: np.ndarray
    arc_cost: np.ndarray
    arc_co2e: np.ndarray
    capacity: np.ndarray
    distance_km: np.ndarray
    max_distance_km: np.ndarray
    supply_amount: np.ndarray
    fate_cost: np.ndarray
    fate_co2e: np.ndarray
    demand_amount: np.ndarray
    virgin_price: np.ndarray
    virgin_co2e: np.ndarray
    share: np.ndarray
    out_arcs: RowBlock
    in_arcs: RowBlock
    share_demands: np.ndarray
    quality: RowBlock
    quality_rows: pd.DataFrame = field(repr=False)
    # Processors (symbiosis.network.processors): activity columns z_p after y, and their linked rows
    # (supply rows ``out_rows`` with yield ``out_per_unit`` of processor ``out_p``; demand rows alike).
    n_processors: int = 0
    processor_capacity: np.ndarray = field(default_factory=lambda: np.zeros(0))
    processor_cost: np.ndarray = field(default_factory=lambda: np.zeros(0))
    processor_bau: np.ndarray = field(default_factory=lambda: np.zeros(0))
    out_rows: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    out_p: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    out_per_unit: np.ndarray = field(default_factory=lambda: np.zeros(0))
    in_rows: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    in_p: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    in_per_unit: np.ndarray = field(default_factory=lambda: np.zeros(0))
    # Permitted tonnages (symbiosis.network.permits.limit_rows): one row per (facility, EWC code) with a
    # tonnage and an arc, over the arcs of streams needing that permit into that facility, t/yr received.
    permit: RowBlock = field(
        default_factory=lambda: RowBlock(np.zeros(1, np.int64), np.zeros(0, np.int64), np.zeros(0)))
    permit_limit: np.ndarray = field(default_factory=lambda: np.zeros(0))
    permit_facility: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))
    permit_code: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))
    # Intake limits (symbiosis.network.intake), in t/yr received: per demand (NaN = none) with the demands
    # that get a row, and per facility as rows over the arcs into its demands.
    intake_limit: np.ndarray = field(default_factory=lambda: np.zeros(0))
    intake_demands: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    facility_intake: RowBlock = field(
        default_factory=lambda: RowBlock(np.zeros(1, np.int64), np.zeros(0, np.int64), np.zeros(0)))
    facility_intake_limit: np.ndarray = field(default_factory=lambda: np.zeros(0))
    facility_intake_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))
    #: Mixed-integer mode only (symbiosis.energy.mip), None otherwise: the arcs with a binary b_a, each one's
    #: fixed annual cost f_a, minimum size m_a and the tightest bound u_a on its flow (x_a ≤ u_a b_a).
    binary_arcs: np.ndarray | None = None
    fixed_cost: np.ndarray | None = None
    min_flow: np.ndarray | None = None
    link_bound: np.ndarray | None = None
    #: Stores between periods (symbiosis.periods.storage), None without: their columns follow z.
    storage: StorageArrays | None = None

    def cost_vector(self) -> np.ndarray:
        """Money per unit of each column, in column order x, w, y (then z, with processors; then stores)."""
        return np.concatenate([self.arc_cost, self.fate_cost, self.virgin_price, self.processor_cost,
                               *([self.storage.cost_vector()] if self.storage is not None else [])])

    def co2e_vector(self) -> np.ndarray:
        """t CO2e per unit of each column, in column order x, w, y (then z, with processors; then stores)."""
        return np.concatenate([self.arc_co2e, self.fate_co2e, self.virgin_co2e, np.zeros(self.n_processors),
                               *([self.storage.co2e_vector()] if self.storage is not None else [])])

    def objective_vector(self, carbon_price: float, weights: Mapping[str, float] | None = None) -> np.ndarray:
        """Objective coefficients: w_cost · (money + λ · CO2e) + w_co2e · CO2e, column order x, w, y."""
        w_cost, w_co2e = resolve_weights(weights)
        co2e = self.co2e_vector()
        return w_cost * (self.cost_vector() + carbon_price * co2e) + w_co2e * co2e

    def bau_columns(self) -> np.ndarray:
        """Column values of business as usual: x = 0, w = a, y = r (z = current activity)."""
        return np.concatenate([np.zeros(self.n_arcs), self.supply_amount, self.demand_amount, self.processor_bau,
                               np.zeros(self.storage.n_columns if self.storage is not None else 0)])


def resolve_weights(weights: Mapping[str, float] | None) -> tuple[float, float]:
    """(w_cost, w_co2e) from an optional ``{"cost": ..., "co2e": ...}`` dict (unknown keys refused)."""
    merged = dict(DEFAULT_WEIGHTS)
    if weights:
        unknown = set(weights) - set(DEFAULT_WEIGHTS)
        if unknown:
            raise ValueError(f"unknown objective weight(s) {sorted(unknown)}; expected 'cost' and/or 'co2e'")
        merged.update({k: float(v) for k, v in weights.items()})
    if merged["cost"] < 0 or merged["co2e"] < 0 or merged["cost"] + merged["co2e"] == 0:
        raise ValueError(f"objective weights must be ≥ 0 and not both 0, got {merged}")
    return merged["cost"], merged["co2e"]


def _column(table: pd.DataFrame, name: str, table_name: str, *, nan_ok: bool = False) -> np.ndarray:
    if name not in table.columns:
        raise ValueError(f"candidates.{table_name} lacks column '{name}' (see docs/architecture.md)")
    values = pd.to_numeric(table[name], errors="coerce").to_numpy(dtype=float)
    if not nan_ok and np.isnan(values).any():
        bad = np.flatnonzero(np.isnan(values))[:5].tolist()
        raise ValueError(f"candidates.{table_name}.{name} has missing or non-numeric values at rows {bad}")
    return values


def _amounts(table: pd.DataFrame, table_name: str) -> np.ndarray:
    """Each row's amount in its own unit (t/yr, or MWh/yr on energy rows; symbiosis.energy), NaN refused."""
    if "amount_t_per_yr" not in table.columns:
        raise ValueError(f"candidates.{table_name} lacks column 'amount_t_per_yr' (see docs/architecture.md)")
    values = row_amount(table)
    if np.isnan(values).any():
        bad = np.flatnonzero(np.isnan(values))[:5].tolist()
        raise ValueError(f"candidates.{table_name}.amount_t_per_yr (amount_mwh_per_yr on energy rows) has missing "
                         f"or non-numeric values at rows {bad}")
    return values


def exchange_arrays(candidates: Candidates) -> ExchangeArrays:
    """Flat arrays and sparse index sets of the exchange model, with the data checked (NaN refused)."""
    sup, dem, arcs = candidates.supplies, candidates.demands, candidates.arcs
    n_s, n_d, n_a = len(sup), len(dem), len(arcs)
    arc_s = arcs["s"].to_numpy(dtype=np.int64) if n_a else np.zeros(0, np.int64)
    arc_d = arcs["d"].to_numpy(dtype=np.int64) if n_a else np.zeros(0, np.int64)
    if n_a and (arc_s.min() < 0 or arc_s.max() >= n_s or arc_d.min() < 0 or arc_d.max() >= n_d):
        raise ValueError("candidates.arcs has s or d outside the supplies or demands tables")
    ratio = _column(arcs, "ratio", "arcs")
    if (ratio <= 0).any():
        raise ValueError(f"candidates.arcs.ratio must be > 0; found {ratio[ratio <= 0][:5].tolist()}")
    capacity = _column(arcs, "capacity_t_per_yr", "arcs", nan_ok=True)
    if (capacity < 0).any():
        raise ValueError("candidates.arcs.capacity_t_per_yr must be ≥ 0 (NaN for none)")
    share = _column(dem, "max_secondary_share", "demands", nan_ok=True)
    share = np.where(np.isnan(share), 1.0, share)
    if ((share < 0) | (share > 1)).any():
        raise ValueError("candidates.demands.max_secondary_share must lie in 0..1")

    out_arcs = _csr(arc_s, np.arange(n_a), np.ones(n_a), n_s)
    in_arcs = _csr(arc_d, np.arange(n_a), ratio, n_d)
    has_arcs_in = np.diff(in_arcs.ptr) > 0
    share_demands = np.flatnonzero(has_arcs_in & (share < 1.0))

    quality, quality_rows = _quality_rows(candidates, arc_s, arc_d, has_arcs_in)
    from symbiosis.network.processors import processor_arrays

    intake_limit = intake.demand_limits(dem)
    f_row, f_arc, f_limit, f_ids = intake.facility_rows(dem, arc_d)
    p_row, p_arc, p_limit, p_fac, p_code = permit_rows(candidates, arc_s)
    return ExchangeArrays(
        n_arcs=n_a, n_supplies=n_s, n_demands=n_d, arc_s=arc_s, arc_d=arc_d, ratio=ratio,
        arc_cost=_column(arcs, "transport_cost_per_t", "arcs") + _column(arcs, "processing_cost_per_t", "arcs"),
        arc_co2e=_column(arcs, "transport_co2e_per_t", "arcs") + _column(arcs, "processing_co2e_per_t", "arcs"),
        capacity=capacity,
        distance_km=_column(arcs, "distance_km", "arcs"),
        max_distance_km=_column(arcs, "max_distance_km", "arcs", nan_ok=True),
        supply_amount=_amounts(sup, "supplies"),
        fate_cost=_column(sup, "fate_cost_per_t", "supplies"),
        fate_co2e=_column(sup, "fate_co2e_per_t", "supplies"),
        demand_amount=_amounts(dem, "demands"),
        virgin_price=_column(dem, "virgin_price_per_t", "demands"),
        virgin_co2e=_column(dem, "virgin_co2e_per_t", "demands"),
        share=share, out_arcs=out_arcs, in_arcs=in_arcs, share_demands=share_demands,
        quality=quality, quality_rows=quality_rows,
        intake_limit=intake_limit, intake_demands=np.flatnonzero(has_arcs_in & ~np.isnan(intake_limit)),
        facility_intake=_csr(f_row, f_arc, np.ones(len(f_arc)), len(f_limit)),
        facility_intake_limit=f_limit, facility_intake_ids=f_ids,
        **processor_arrays(candidates),
        permit=_csr(p_row, p_arc, np.ones(len(p_arc)), len(p_limit)), permit_limit=p_limit,
        permit_facility=p_fac, permit_code=p_code,
    )


def _quality_rows(
    candidates: Candidates, arc_s: np.ndarray, arc_d: np.ndarray, has_arcs_in: np.ndarray
) -> tuple[RowBlock, pd.DataFrame]:
    """One row per bounded (demand, parameter) with arcs in; terms c[s(a),q] − limit on each arc."""
    dq = candidates.demand_quality
    columns = ["d", "parameter", "bound", "limit", "virgin_value", "virgin_coef"]
    if dq is None or len(dq) == 0:
        return RowBlock(np.zeros(1, np.int64), np.zeros(0, np.int64), np.zeros(0)), pd.DataFrame(columns=columns)
    dq = dq[["d", "parameter", "bound", "limit", "virgin_value"]].copy()
    bad_bound = ~dq["bound"].isin(["max", "min"])
    if bad_bound.any():
        raise ValueError(f"candidates.demand_quality.bound must be 'max' or 'min'; found "
                         f"{sorted(set(dq.loc[bad_bound, 'bound'].astype(str)))}")
    for col in ("limit", "virgin_value"):
        if dq[col].isna().any():
            raise ValueError(f"candidates.demand_quality.{col} has missing values")
    sign = np.where(dq["bound"].to_numpy() == "max", 1.0, -1.0)
    violated = sign * (dq["virgin_value"].to_numpy(float) - dq["limit"].to_numpy(float)) > 1e-12
    if violated.any():
        rows = dq[violated].head(5).to_dict("records")
        raise ValueError(f"virgin material violates its own quality bound (business as usual would be "
                         f"infeasible): {rows}")
    dq = dq[has_arcs_in[dq["d"].to_numpy(dtype=np.int64)]].reset_index(drop=True)
    dq["virgin_coef"] = dq["virgin_value"] - dq["limit"]
    dq["k"] = np.arange(len(dq))

    terms = pd.DataFrame({"a": np.arange(len(arc_s)), "s": arc_s, "d": arc_d}).merge(
        dq[["d", "parameter", "limit", "k"]], on="d", how="inner")
    sq = candidates.supply_quality[["s", "parameter", "value"]]
    terms = terms.merge(sq, on=["s", "parameter"], how="left")
    if terms["value"].isna().any():
        missing = terms[terms["value"].isna()].head(5)[["a", "s", "parameter"]].to_dict("records")
        raise ValueError(f"arcs reach a demand that bounds a parameter the supply has no measurement of "
                         f"(candidates should have screened these out): {missing}")
    coef = (terms["value"] - terms["limit"]).to_numpy(float)
    keep = coef != 0.0
    block = _csr(terms["k"].to_numpy(np.int64)[keep], terms["a"].to_numpy(np.int64)[keep], coef[keep], len(dq))
    return block, dq[columns]


# --- constraint families -------------------------------------------------------------------------------


def _expression(
    var_list: Sequence[pyo.Var], cols: np.ndarray, coefs: np.ndarray, extra: Sequence[object] = ()
) -> LinearExpression:
    """Σ coefs·var[cols] (+ extra terms) as one LinearExpression; unit coefficients stay bare variables."""
    args: list[object] = [
        var_list[c] if k == 1.0 else MonomialTermExpression((k, var_list[c]))
        for c, k in zip(cols.tolist(), coefs.tolist(), strict=True)
    ]
    args.extend(extra)
    return LinearExpression(args)


def add_variables(m: pyo.ConcreteModel, arrays: ExchangeArrays) -> None:
    """x_a ≥ 0 (t/yr on arc a), w_s ≥ 0 (t/yr of supply s left to its fate), y_d ≥ 0 (t/yr virgin for d)."""
    m.x = pyo.Var(range(arrays.n_arcs), domain=pyo.NonNegativeReals)
    m.w = pyo.Var(range(arrays.n_supplies), domain=pyo.NonNegativeReals)
    m.y = pyo.Var(range(arrays.n_demands), domain=pyo.NonNegativeReals)
    m.x_list = list(m.x.values())
    m.w_list = list(m.w.values())
    m.y_list = list(m.y.values())


def add_supply_balance(m: pyo.ConcreteModel, arrays: ExchangeArrays) -> None:
    r"""Every tonne of a supply is either shipped on an arc or left to its current fate.

    .. math:: \sum_{a \in out(s)} x_a + w_s = a_s \qquad \forall s \in S

    ========  =====================================================
    symbol    meaning
    ========  =====================================================
    x_a       t/yr shipped on arc a (variable ``x``)
    w_s       t/yr of supply s left to its current fate (``w``)
    a_s       supply amount, t/yr (``supplies.amount_t_per_yr``)
    out(s)    arcs leaving supply s (``arrays.out_arcs``)
    ========  =====================================================
    """
    x, w, rows = m.x_list, m.w_list, arrays.out_arcs
    amount = arrays.supply_amount.tolist()

    def rule(_m: pyo.ConcreteModel, s: int) -> tuple[object, float]:
        cols, coefs = rows.row(s)
        return _expression(x, cols, coefs, (w[s],)), amount[s]

    m.supply_balance = pyo.Constraint(range(arrays.n_supplies), rule=rule)


def add_demand_balance(m: pyo.ConcreteModel, arrays: ExchangeArrays) -> None:
    r"""Every tonne of need is met by secondary material (at its substitution ratio) or by virgin material.

    .. math:: \sum_{a \in in(d)} \rho_a x_a + y_d = r_d \qquad \forall d \in D

    ========  =====================================================
    symbol    meaning
    ========  =====================================================
    ρ_a       t of the demand's material replaced per t shipped (``arcs.ratio``)
    y_d       t/yr of virgin material bought for demand d (``y``)
    r_d       demand amount, t/yr (``demands.amount_t_per_yr``)
    in(d)     arcs entering demand d (``arrays.in_arcs``)
    ========  =====================================================
    """
    x, y, rows = m.x_list, m.y_list, arrays.in_arcs
    amount = arrays.demand_amount.tolist()

    def rule(_m: pyo.ConcreteModel, d: int) -> tuple[object, float]:
        cols, coefs = rows.row(d)
        return _expression(x, cols, coefs, (y[d],)), amount[d]

    m.demand_balance = pyo.Constraint(range(arrays.n_demands), rule=rule)


def add_share_limits(m: pyo.ConcreteModel, arrays: ExchangeArrays) -> None:
    r"""Secondary material may replace at most a share σ_d of a demand.

    .. math:: \sum_{a \in in(d)} \rho_a x_a \le \sigma_d r_d \qquad \forall d \in D: \sigma_d < 1, in(d) \ne \emptyset

    ========  =====================================================
    symbol    meaning
    ========  =====================================================
    σ_d       maximum secondary share, 0..1 (``demands.max_secondary_share``; NaN = 1)
    ========  =====================================================

    With σ_d = 1 the row is implied by the demand balance and y_d ≥ 0, so it is left out. Indexed by the
    demand position ``d``.
    """
    x, rows = m.x_list, arrays.in_arcs
    bound = (arrays.share * arrays.demand_amount).tolist()

    def rule(_m: pyo.ConcreteModel, d: int) -> tuple[None, object, float]:
        cols, coefs = rows.row(d)
        return None, _expression(x, cols, coefs), bound[d]

    m.share_limit = pyo.Constraint(arrays.share_demands.tolist(), rule=rule)


def add_quality_limits(m: pyo.ConcreteModel, arrays: ExchangeArrays) -> None:
    r"""The physical blend of secondary and virgin material entering a process meets the demand's bounds.

    .. math::

        \sum_{a \in in(d)} (c_{s(a),q} - q^{max}_{d,q})\, x_a + (c^{v}_{d,q} - q^{max}_{d,q})\, y_d \le 0
        \qquad \forall (d, q) \text{ with a max}

        \sum_{a \in in(d)} (c_{s(a),q} - q^{min}_{d,q})\, x_a + (c^{v}_{d,q} - q^{min}_{d,q})\, y_d \ge 0
        \qquad \forall (d, q) \text{ with a min}

    ============  =====================================================
    symbol        meaning
    ============  =====================================================
    c_{s,q}       value of parameter q in supply s (``supply_quality.value``)
    q^max, q^min  the demand's limit (``demand_quality.limit`` with ``bound``)
    c^v_{d,q}     the virgin material's own value (``demand_quality.virgin_value``)
    ============  =====================================================

    The blend is by tonnes entering the process (x_a of secondary, y_d of virgin), whatever the
    substitution ratio ρ_a. Row k of ``quality_limit`` is row k of ``arrays.quality_rows``; only
    demands with arcs in get rows (otherwise y_d = r_d is fixed and the virgin value meets the bound).
    """
    x, y, rows, meta = m.x_list, m.y_list, arrays.quality, arrays.quality_rows
    demand = meta["d"].to_numpy(np.int64).tolist()
    is_max = (meta["bound"] == "max").to_numpy().tolist()
    virgin = meta["virgin_coef"].to_numpy(float).tolist()

    def rule(_m: pyo.ConcreteModel, k: int) -> tuple[float | None, object, float | None]:
        cols, coefs = rows.row(k)
        extra = (MonomialTermExpression((virgin[k], y[demand[k]])),) if virgin[k] != 0.0 else ()
        expr = _expression(x, cols, coefs, extra)
        if len(expr.args) == 0:
            return pyo.Constraint.Skip  # type: ignore[return-value]
        return (None, expr, 0.0) if is_max[k] else (0.0, expr, None)

    m.quality_limit = pyo.Constraint(range(rows.n_rows), rule=rule)


def add_arc_capacity(m: pyo.ConcreteModel, arrays: ExchangeArrays) -> None:
    r"""An arc carries at most its capacity, where one is given.

    .. math:: x_a \le u_a \qquad \forall a: u_a \text{ given}

    ========  =====================================================
    symbol    meaning
    ========  =====================================================
    u_a       arc capacity, t/yr (``arcs.capacity_t_per_yr``; NaN = none)
    ========  =====================================================

    Set as the upper bound of x_a rather than as a row: the solver treats bounds natively and the bound's
    reduced cost is its dual.
    """
    x = m.x_list
    for a, u in zip(np.flatnonzero(~np.isnan(arrays.capacity)).tolist(),
                    arrays.capacity[~np.isnan(arrays.capacity)].tolist(), strict=True):
        x[a].setub(u)


def add_intake_limits(m: pyo.ConcreteModel, arrays: ExchangeArrays) -> None:
    r"""A receiver takes in at most what it physically can, in tonnes received (not tonnes replaced).

    .. math::

        \sum_{a \in in(d)} x_a \le L_d \qquad \forall d \in D: L_d \text{ given}, in(d) \ne \emptyset

        \sum_{d \in D(f)} \sum_{a \in in(d)} x_a \le L_f \qquad \forall f: L_f \text{ given}

    ========  =====================================================
    symbol    meaning
    ========  =====================================================
    L_d       the demand's intake limit, t/yr received (``demands.max_intake_t_per_yr``; NaN = none)
    L_f       the facility's intake capacity over all its demands, t/yr received
              (``demands.facility_intake_t_per_yr``, the same on each demand of the facility)
    D(f)      the demands of facility f
    ========  =====================================================

    ``intake_limit`` is indexed by demand position, ``facility_intake`` by row of
    ``arrays.facility_intake`` (facility ``arrays.facility_intake_ids[k]``). Neither exists without limits.
    """
    x, rows = m.x_list, arrays.in_arcs
    if len(arrays.intake_demands):
        bound = arrays.intake_limit.tolist()

        def demand_rule(_m: pyo.ConcreteModel, d: int) -> tuple[None, object, float]:
            cols, _ = rows.row(d)
            return None, _expression(x, cols, np.ones(len(cols))), bound[d]

        m.intake_limit = pyo.Constraint(arrays.intake_demands.tolist(), rule=demand_rule)
    block = arrays.facility_intake
    if block.n_rows:
        limits = arrays.facility_intake_limit.tolist()

        def facility_rule(_m: pyo.ConcreteModel, k: int) -> tuple[None, object, float]:
            cols, coefs = block.row(k)
            return None, _expression(x, cols, coefs), limits[k]

        m.facility_intake = pyo.Constraint(range(block.n_rows), rule=facility_rule)


def add_permit_limits(m: pyo.ConcreteModel, arrays: ExchangeArrays) -> None:
    r"""A receiver takes in at most the tonnage its permit grants for a waste code.

    .. math:: \sum_{a \in A(f, e)} x_a \le P_{f,e} \qquad \forall (f, e): P_{f,e} \text{ given}, A(f, e) \ne \emptyset

    ========  =====================================================
    symbol    meaning
    ========  =====================================================
    P_{f,e}   tonnage facility f's permits grant for EWC code e, t/yr received (``permits.max_t_per_yr``,
              summed over the facility's rows for that code; a row without a tonnage lifts the limit)
    A(f, e)   arcs into any demand of f from a supply whose stream needs a permit (``supplies.needs_permit``)
              and carries code e (``supplies.ewc_code``)
    ========  =====================================================

    ``permit_limit`` is indexed by row of ``arrays.permit`` (facility ``arrays.permit_facility[k]``, code
    ``arrays.permit_code[k]``). Its dual is the value of one more permitted tonne. Absent without tonnages.
    """
    block = arrays.permit
    if block.n_rows == 0:
        return
    x, limits = m.x_list, arrays.permit_limit.tolist()

    def rule(_m: pyo.ConcreteModel, k: int) -> tuple[None, object, float]:
        cols, coefs = block.row(k)
        return None, _expression(x, cols, coefs), limits[k]

    m.permit_limit = pyo.Constraint(range(block.n_rows), rule=rule)


def add_fixed_connections(m: pyo.ConcreteModel, arrays: ExchangeArrays) -> None:
    r"""Mixed-integer mode only: an arc is used only if built (b_a = 1), at its fixed annual cost, and then at
    least at its minimum size.

    .. math:: x_a \le u_a b_a, \qquad x_a \ge m_a b_a, \qquad b_a \in \{0, 1\} \qquad \forall a \in B

    ========  =====================================================
    symbol    meaning
    ========  =====================================================
    B         arcs with a fixed cost or a minimum size (``arrays.binary_arcs``)
    b_a       1 if the connection is built (variable ``b``, aligned with B)
    u_a       the tightest bound the data gives on x_a: min(a_s, r_d/ρ_a, σ_d r_d/ρ_a, capacity), never a
              big-M constant, so that the LP relaxation stays close (``arrays.link_bound``)
    m_a       minimum size, the row's unit per yr (``arcs.min_flow``; 0 = none)
    f_a       fixed annual cost (``arcs.fixed_cost_per_yr``), added to the objective as f_a b_a
    ========  =====================================================

    Without ``arrays.binary_arcs`` (the LP, the default) nothing is added.
    """
    if arrays.binary_arcs is None or arrays.link_bound is None or arrays.min_flow is None:
        return
    arcs = arrays.binary_arcs.tolist()
    m.b = pyo.Var(range(len(arcs)), domain=pyo.Binary)
    m.b_list = list(m.b.values())
    x, b = m.x_list, m.b_list
    bound = arrays.link_bound.tolist()
    least = arrays.min_flow.tolist()
    m.fixed_link = pyo.Constraint(range(len(arcs)), rule=lambda _m, k: (
        None, LinearExpression([x[arcs[k]], MonomialTermExpression((-bound[k], b[k]))]), 0.0))
    with_min = [k for k in range(len(arcs)) if least[k] > 0]
    m.min_flow = pyo.Constraint(with_min, rule=lambda _m, k: (
        0.0, LinearExpression([x[arcs[k]], MonomialTermExpression((-least[k], b[k]))]), None))


def add_objective(
    m: pyo.ConcreteModel,
    arrays: ExchangeArrays,
    *,
    carbon_price: float,
    weights: Mapping[str, float] | None = None,
) -> None:
    r"""Minimise the system's cost, carbon priced, optionally weighted against its emissions.

    .. math::

        \min\; w_{cost} \Big[ C + \lambda E \Big] + w_{co2e} E, \quad
        C = \sum_a (t k_a + \pi_a) x_a + \sum_s p_s w_s + \sum_d v_d y_d, \quad
        E = \sum_a (e^t k_a + e^\pi_a) x_a + \sum_s e_s w_s + \sum_d e^v_d y_d

    ==============  =====================================================
    symbol          meaning
    ==============  =====================================================
    t k_a           transport cost per t on arc a (``arcs.transport_cost_per_t``)
    π_a             processing cost per t (``arcs.processing_cost_per_t``)
    e^t k_a, e^π_a  transport and processing t CO2e per t (``arcs.transport_co2e_per_t`` and
                    ``processing_co2e_per_t``)
    p_s, e_s        current fate cost (negative if sold) and emission per t (``supplies.fate_*``)
    v_d, e^v_d      virgin price and cradle-to-gate emission per t (``demands.virgin_*``)
    λ               carbon price, money per t CO2e
    w_cost, w_co2e  objective weights (default 1 and 0: cost only)
    ==============  =====================================================
    """
    if m.component("objective") is not None:
        m.del_component("objective")
    coef = objective_coefficients(arrays, carbon_price, weights)
    columns = [*model_columns(m), *getattr(m, "b_list", [])]
    nonzero = np.flatnonzero(coef)
    expr = _expression(columns, nonzero, coef[nonzero])
    m.objective = pyo.Objective(expr=expr, sense=pyo.minimize)
    m.carbon_price = float(carbon_price)
    m.weights = dict(zip(("cost", "co2e"), resolve_weights(weights), strict=True))


def objective_coefficients(arrays: ExchangeArrays, carbon_price: float,
                           weights: Mapping[str, float] | None = None) -> np.ndarray:
    """The objective over every column of the model: x, w, y (and z), then, in the mixed-integer mode, the
    connections' binaries b at their fixed annual cost (money, weighted like the other costs)."""
    coef = arrays.objective_vector(carbon_price, weights)
    if arrays.binary_arcs is None or arrays.fixed_cost is None or not len(arrays.binary_arcs):
        return coef
    w_cost, _ = resolve_weights(weights)
    return np.concatenate([coef, w_cost * arrays.fixed_cost])


def model_columns(m: pyo.ConcreteModel) -> list[pyo.Var]:
    """The model's variables in column order: x, w, y, then the processors' activities z (if any)."""
    return [*m.x_list, *m.w_list, *m.y_list, *getattr(m, "z_list", []), *getattr(m, "storage_list", [])]


def build_model(
    candidates: Candidates,
    *,
    carbon_price: float,
    weights: Mapping[str, float] | None = None,
    arrays: ExchangeArrays | None = None,
) -> pyo.ConcreteModel:
    """The exchange LP of DESIGN.md as a Pyomo model (equations in each ``add_*`` docstring).

    Variables ``x``, ``w``, ``y`` are indexed by the positions of the arcs, supplies and demands tables;
    ``model.arrays`` keeps the :class:`ExchangeArrays` the model was built from (pass ``arrays`` to reuse
    ones already computed).
    """
    start = time.perf_counter()
    arrays = arrays if arrays is not None else exchange_arrays(candidates)
    # Python's cyclic garbage collector rescans the growing heap of expression objects again and again;
    # pausing it during the build makes the build about five times faster at 100k arcs.
    with PauseGC():
        m = pyo.ConcreteModel(name="exchange")
        m.arrays = arrays
        add_variables(m, arrays)
        add_supply_balance(m, arrays)
        add_demand_balance(m, arrays)
        add_share_limits(m, arrays)
        add_quality_limits(m, arrays)
        add_arc_capacity(m, arrays)
        add_intake_limits(m, arrays)
        add_permit_limits(m, arrays)
        add_processor_balance(m, arrays)  # declares z before add_fixed_connections declares b: columns x, w, y, z, b
        add_storage(m, arrays)  # stores between periods (symbiosis.periods.storage): columns after z, before b
        add_fixed_connections(m, arrays)
        add_objective(m, arrays, carbon_price=carbon_price, weights=weights)
    logger.info("built exchange model: %d arcs, %d supplies, %d demands, %d quality rows in %.3f s",
                arrays.n_arcs, arrays.n_supplies, arrays.n_demands, arrays.quality.n_rows,
                time.perf_counter() - start)
    return m
