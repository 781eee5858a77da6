"""The reference solve: the exchange LP built straight from Candidates arrays and handed to HiGHS whole.

The scale benchmark (issue 6) compares the Pyomo pipeline against this: the same linear program as
DESIGN.md, assembled with numpy into one column-wise sparse matrix and passed to ``highspy`` with
``passModel``, no modelling layer in between. It doubles as an independent cross-check of the exchange
model's optimum.

Formulation (symbols as in DESIGN.md; columns are x_a for each arc, then w_s, then y_d)::

    supply    Σ_{a∈out(s)} x_a + w_s = a_s                                        ∀s
    demand    Σ_{a∈in(d)} ρ_a x_a + y_d = r_d                                     ∀d
    share     Σ_{a∈in(d)} ρ_a x_a ≤ σ_d r_d                                       ∀d with σ_d < 1
    quality   Σ_{a∈in(d)} (c[s(a),q] − qmax[d,q]) x_a + (cv[d,q] − qmax[d,q]) y_d ≤ 0   ∀(d,q) bound max
              Σ_{a∈in(d)} (c[s(a),q] − qmin[d,q]) x_a + (cv[d,q] − qmin[d,q]) y_d ≥ 0   ∀(d,q) bound min
    capacity  0 ≤ x_a ≤ u_a  (column bound, where u_a is given)
    min       Σ_a (t k_a + π_a) x_a + Σ_s p_s w_s + Σ_d v_d y_d
              + λ (Σ_a (et k_a + πe_a) x_a + Σ_s e_s w_s + Σ_d ev_d y_d)

``t k_a`` and ``et k_a`` come precomputed as the arcs' ``transport_cost_per_t`` and
``transport_co2e_per_t``; ``πe_a`` is ``processing_co2e_per_t`` (0 where absent). A missing
``max_secondary_share`` means no share row (σ_d = 1 is implied by the demand row and y_d ≥ 0).

The families added with issue 19, so that the benchmark's regions with processors and heat are compared
with the same LP:

- heat rows (``quantity == "energy"``) take their amount from ``amount_mwh_per_yr``;
- intake: Σ_{a∈in(d)} x_a ≤ L_d where ``max_intake_t_per_yr`` is given and d has arcs in, and per facility
  Σ_{d∈D(f)} Σ_{a∈in(d)} x_a ≤ L_f (``facility_intake_t_per_yr``);
- processors (``candidates.processors`` and ``processor_links``): columns z_p after y, 0 ≤ z_p ≤ Z_p at cost
  k_p − v_p; on its rows the amounts become −o_s z_p, −i_d z_p (right-hand side 0) and the share row
  Σρx − σ_d i_d z_p ≤ 0.

Time-expanded candidates (symbiosis.periods) are an LP of the same shape, one row per supply, demand and arc
per period; the stores between periods come as ``candidates.storage`` (a
symbiosis.periods.storage.StorageArrays, set by the benchmark on the Candidates it pickles), with the stock
balance of docs/formulation.md ("Periods and storage").
"""

from __future__ import annotations

import time
from typing import Any

import highspy
import numpy as np
import pandas as pd
import scipy.sparse as sp

__all__ = ["build_arrays", "solve_bare"]


def _col(frame: pd.DataFrame, name: str, default: float = 0.0) -> np.ndarray:
    """A float column as numpy, ``default`` where the column is absent or NaN."""
    if name not in frame.columns:
        return np.full(len(frame), default, dtype=float)
    values = frame[name].to_numpy(dtype=float, na_value=np.nan)
    return np.where(np.isnan(values), default, values)


def _amount(frame: pd.DataFrame) -> np.ndarray:
    """Each row's amount: t/yr, or MWh/yr on heat rows (``quantity == "energy"``)."""
    amount = _col(frame, "amount_t_per_yr")
    if "quantity" in frame.columns and "amount_mwh_per_yr" in frame.columns:
        energy = frame["quantity"].to_numpy() == "energy"
        amount = np.where(energy, _col(frame, "amount_mwh_per_yr"), amount)
    return amount


def build_arrays(candidates: Any, *, carbon_price: float) -> dict[str, Any]:
    """The LP of the module docstring as numpy arrays and one CSC matrix (no solver involved).

    Returns a dict with ``cost, col_lower, col_upper, row_lower, row_upper`` (numpy), ``matrix``
    (scipy CSC), and the sizes ``n_arcs, n_supplies, n_demands, n_share_rows, n_quality_rows``.
    """
    arcs, supplies, demands = candidates.arcs, candidates.supplies, candidates.demands
    n_a, n_s, n_d = len(arcs), len(supplies), len(demands)
    s = arcs["s"].to_numpy(dtype=np.int64)
    d = arcs["d"].to_numpy(dtype=np.int64)
    ratio = _col(arcs, "ratio", 1.0)
    lam = float(carbon_price)

    # Columns: x (arcs), w (supplies), y (demands).
    x_cost = (_col(arcs, "transport_cost_per_t") + _col(arcs, "processing_cost_per_t")
              + lam * (_col(arcs, "transport_co2e_per_t") + _col(arcs, "processing_co2e_per_t")))
    w_cost = _col(supplies, "fate_cost_per_t") + lam * _col(supplies, "fate_co2e_per_t")
    y_cost = _col(demands, "virgin_price_per_t") + lam * _col(demands, "virgin_co2e_per_t")
    cost = np.concatenate([x_cost, w_cost, y_cost])
    col_lower = np.zeros(n_a + n_s + n_d)
    col_upper = np.full(n_a + n_s + n_d, np.inf)
    col_upper[:n_a] = _col(arcs, "capacity_t_per_yr", np.inf)

    supply_amount = _amount(supplies)
    demand_amount = _amount(demands)
    share = _col(demands, "max_secondary_share", 1.0)

    # Processors: z columns after y; their rows get right-hand side 0 and a −per_unit·z term.
    processors = getattr(candidates, "processors", None)
    links = getattr(candidates, "processor_links", None)
    n_p = 0 if processors is None or links is None else len(processors)
    z_cols = n_a + n_s + n_d + np.arange(n_p)
    if n_p:
        value = _col(processors, "product_value_per_unit")
        cost = np.concatenate([cost, _col(processors, "operating_cost_per_unit") - value])
        col_lower = np.concatenate([col_lower, np.zeros(n_p)])
        col_upper = np.concatenate([col_upper, _col(processors, "capacity", np.inf)])
        side = links["side"].to_numpy()
        link_row = links["row"].to_numpy(np.int64)
        link_p = links["p"].to_numpy(np.int64)
        per_unit = links["per_unit"].to_numpy(float)
        out_l, in_l = side == "out", side == "in"
        supply_amount = supply_amount.copy()
        demand_amount = demand_amount.copy()
        supply_amount[link_row[out_l]] = 0.0
        demand_amount[link_row[in_l]] = 0.0
    has_arcs_in = np.bincount(d, minlength=n_d) > 0

    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    vals: list[np.ndarray] = []
    arc_cols = np.arange(n_a, dtype=np.int64)

    # Supply rows 0..n_s-1 and demand rows n_s..n_s+n_d-1 (equalities).
    rows += [s, np.arange(n_s), n_s + d, n_s + np.arange(n_d)]
    cols += [arc_cols, n_a + np.arange(n_s), arc_cols, n_a + n_s + np.arange(n_d)]
    vals += [np.ones(n_a), np.ones(n_s), ratio, np.ones(n_d)]
    row_lower = [supply_amount, demand_amount]
    row_upper = [supply_amount, demand_amount]
    next_row = n_s + n_d
    if n_p:
        rows += [link_row[out_l], n_s + link_row[in_l]]
        cols += [z_cols[link_p[out_l]], z_cols[link_p[in_l]]]
        vals += [-per_unit[out_l], -per_unit[in_l]]

    # Share rows, only where the share actually limits.
    share_demands = np.flatnonzero(share < 1.0)
    share_row_of = np.full(n_d, -1, dtype=np.int64)
    share_row_of[share_demands] = next_row + np.arange(len(share_demands))
    on_share = share_row_of[d] >= 0
    rows.append(share_row_of[d[on_share]])
    cols.append(arc_cols[on_share])
    vals.append(ratio[on_share])
    row_lower.append(np.full(len(share_demands), -np.inf))
    row_upper.append(share[share_demands] * demand_amount[share_demands])
    if n_p:  # a processor's intake share: Σρx − σ i z ≤ 0
        on = in_l.copy()
        on[in_l] = share_row_of[link_row[in_l]] >= 0
        rows.append(share_row_of[link_row[on]])
        cols.append(z_cols[link_p[on]])
        vals.append(-share[link_row[on]] * per_unit[on])
    next_row += len(share_demands)

    # Intake limits, t/yr received: per demand with arcs in, and per facility over its demands.
    limit_d = _col(demands, "max_intake_t_per_yr", np.nan)
    intake_demands = np.flatnonzero(~np.isnan(limit_d) & has_arcs_in)
    intake_row_of = np.full(n_d, -1, dtype=np.int64)
    intake_row_of[intake_demands] = next_row + np.arange(len(intake_demands))
    on_intake = intake_row_of[d] >= 0
    rows.append(intake_row_of[d[on_intake]])
    cols.append(arc_cols[on_intake])
    vals.append(np.ones(int(on_intake.sum())))
    row_lower.append(np.full(len(intake_demands), -np.inf))
    row_upper.append(limit_d[intake_demands])
    next_row += len(intake_demands)
    limit_f = _col(demands, "facility_intake_t_per_yr", np.nan)
    capped = ~np.isnan(limit_f[d])
    if capped.any():
        facility = demands["facility_id"].to_numpy()
        names, f_of_arc = np.unique(facility[d[capped]], return_inverse=True)
        first = pd.Series(limit_f, index=facility).groupby(level=0).first()
        rows.append(next_row + f_of_arc)
        cols.append(arc_cols[capped])
        vals.append(np.ones(int(capped.sum())))
        row_lower.append(np.full(len(names), -np.inf))
        row_upper.append(first.loc[names].to_numpy(float))
        next_row += len(names)

    # Quality rows: one per (demand, parameter, bound); arcs into d get one entry per row of d.
    dq = candidates.demand_quality
    n_q = len(dq)
    if n_q:
        dq_d = dq["d"].to_numpy(dtype=np.int64)
        order = np.argsort(dq_d, kind="stable")
        dq_d = dq_d[order]
        params = dq["parameter"].to_numpy()[order]
        bound = dq["bound"].to_numpy()[order]
        limit = dq["limit"].to_numpy(dtype=float)[order]
        virgin = dq["virgin_value"].to_numpy(dtype=float)[order]
        if np.isnan(limit).any():
            raise ValueError("demand_quality has a NaN limit")
        virgin = np.where(np.isnan(virgin), np.where(bound == "min", limit, 0.0), virgin)
        is_min = bound == "min"
        if not np.all(is_min | (bound == "max")):
            raise ValueError("demand_quality bound must be 'max' or 'min'")

        # Supply quality as a dense supply × parameter table (NaN = not measured).
        names, p_of_row = np.unique(params, return_inverse=True)
        sq = candidates.supply_quality
        sq = sq[sq["parameter"].isin(names)]
        conc = np.full((n_s, len(names)), np.nan)
        conc[sq["s"].to_numpy(dtype=np.int64), np.searchsorted(names, sq["parameter"].to_numpy())] = (
            sq["value"].to_numpy(dtype=float))

        per_d = np.bincount(dq_d, minlength=n_d)
        first = np.concatenate([[0], np.cumsum(per_d)[:-1]])
        k = per_d[d]
        arc_rep = np.repeat(arc_cols, k)
        offset = np.arange(len(arc_rep)) - np.repeat(np.cumsum(k) - k, k)
        qrow = first[d[arc_rep]] + offset
        coef = conc[s[arc_rep], p_of_row[qrow]] - limit[qrow]
        if np.isnan(coef).any():
            raise ValueError("an arc's supply lacks a measurement of a parameter its demand bounds")
        rows += [next_row + qrow, next_row + np.arange(n_q)]
        cols += [arc_rep, n_a + n_s + dq_d]
        vals += [coef, virgin - limit]
        row_lower.append(np.where(is_min, 0.0, -np.inf))
        row_upper.append(np.where(is_min, np.inf, 0.0))
        next_row += n_q

    n_cols = n_a + n_s + n_d + n_p
    storage = getattr(candidates, "storage", None)
    if storage is not None and storage.n_rows:
        # Stores (time-expanded candidates, symbiosis.periods): columns stock, put, take per store-period
        # i = k·T + t after z; stock balance s_i − r_i s_{i−1} − p_i + q_i = rhs_i (s_{−1} = s_{T−1} for a
        # cyclic store); 0 ≤ s_i ≤ C_k; s_{T−1} = closing level where one is given; a supplier's store enters
        # its supply row as + p − q, a receiver's its demand row as − p + q.
        n, periods = storage.n_rows, storage.n_periods
        i = np.arange(n)
        stock, put, take = n_cols + i, n_cols + n + i, n_cols + 2 * n + i
        t = i % periods
        prev = np.where(t > 0, i - 1, i + periods - 1)
        linked = ((t > 0) | storage.cyclic[i // periods]) & (storage.retain != 0.0)
        balance = next_row + i
        rows += [balance, balance, balance, balance[linked]]
        cols += [stock, put, take, stock[prev[linked]]]
        vals += [np.ones(n), -np.ones(n), np.ones(n), -storage.retain[linked]]
        row_lower.append(storage.opening_rhs)
        row_upper.append(storage.opening_rhs)
        next_row += n
        at_s, at_d = storage.supply_row >= 0, storage.demand_row >= 0
        rows += [storage.supply_row[at_s], storage.supply_row[at_s], n_s + storage.demand_row[at_d],
                 n_s + storage.demand_row[at_d]]
        cols += [put[at_s], take[at_s], put[at_d], take[at_d]]
        vals += [np.ones(int(at_s.sum())), -np.ones(int(at_s.sum())), -np.ones(int(at_d.sum())),
                 np.ones(int(at_d.sum()))]
        cost = np.concatenate([cost, storage.stock_cost + lam * storage.stock_co2e, np.zeros(2 * n)])
        upper = np.full(3 * n, np.inf)
        upper[:n] = storage.capacity
        lower = np.zeros(3 * n)
        pinned = ~storage.cyclic & ~np.isnan(storage.closing)
        last = np.flatnonzero(pinned) * periods + periods - 1
        lower[last] = upper[last] = storage.closing[pinned]
        col_lower = np.concatenate([col_lower, lower])
        col_upper = np.concatenate([col_upper, upper])
        n_cols += 3 * n
    n_rows = next_row
    matrix = sp.csc_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(n_rows, n_cols),
    )
    matrix.sum_duplicates()
    return {
        "cost": cost, "col_lower": col_lower, "col_upper": col_upper,
        "row_lower": np.concatenate(row_lower), "row_upper": np.concatenate(row_upper),
        "matrix": matrix, "n_arcs": n_a, "n_supplies": n_s, "n_demands": n_d,
        "n_share_rows": len(share_demands), "n_quality_rows": n_q, "n_processors": n_p,
    }


def solve_bare(
    candidates: Any,
    *,
    carbon_price: float,
    method: str = "ipm",
    threads: int | None = None,
    time_limit: float | None = None,
) -> tuple[float, float, dict[str, Any]]:
    """Solve the exchange LP of ``candidates`` with HiGHS directly (no Pyomo).

    Returns ``(objective, seconds, info)``: the optimal objective, the seconds inside ``Highs.run``, and a
    dict with ``status``, the iteration counts, LP sizes, ``build_seconds`` (numpy/scipy assembly),
    ``pass_seconds`` (``passModel``), ``highs_version``, and the primal ``x, w, y`` and row duals
    ``supply_dual, demand_dual`` (HiGHS' sign: d objective / d right-hand side).
    ``method`` is HiGHS' ``solver`` option (``ipm``, ``simplex``, ``pdlp``, ``choose``); crossover is on.
    """
    t0 = time.perf_counter()
    arrays = build_arrays(candidates, carbon_price=carbon_price)
    matrix = arrays["matrix"]
    lp = highspy.HighsLp()
    lp.num_col_ = matrix.shape[1]
    lp.num_row_ = matrix.shape[0]
    lp.col_cost_ = arrays["cost"]
    lp.col_lower_ = arrays["col_lower"]
    lp.col_upper_ = arrays["col_upper"]
    lp.row_lower_ = arrays["row_lower"]
    lp.row_upper_ = arrays["row_upper"]
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = matrix.indptr.astype(np.int32)
    lp.a_matrix_.index_ = matrix.indices.astype(np.int32)
    lp.a_matrix_.value_ = matrix.data
    t1 = time.perf_counter()

    highs = highspy.Highs()
    highs.setOptionValue("output_flag", False)
    highs.setOptionValue("solver", method)
    highs.setOptionValue("run_crossover", "on")
    if threads is not None:
        highs.setOptionValue("threads", int(threads))
    if time_limit is not None:
        highs.setOptionValue("time_limit", float(time_limit))
    highs.passModel(lp)
    t2 = time.perf_counter()
    highs.run()
    t3 = time.perf_counter()

    status = highs.modelStatusToString(highs.getModelStatus())
    hinfo = highs.getInfo()
    n_a, n_s, n_d = arrays["n_arcs"], arrays["n_supplies"], arrays["n_demands"]
    solution = highs.getSolution()
    col_value = np.asarray(solution.col_value)
    row_dual = np.asarray(solution.row_dual)
    info: dict[str, Any] = {
        "status": status,
        "method": method,
        "highs_version": highs.version(),
        "ipm_iterations": hinfo.ipm_iteration_count,
        "crossover_iterations": hinfo.crossover_iteration_count,
        "simplex_iterations": hinfo.simplex_iteration_count,
        "n_rows": matrix.shape[0],
        "n_cols": matrix.shape[1],
        "nnz": matrix.nnz,
        "n_arcs": n_a,
        "n_share_rows": arrays["n_share_rows"],
        "n_quality_rows": arrays["n_quality_rows"],
        "n_processors": arrays["n_processors"],
        "build_seconds": t1 - t0,
        "pass_seconds": t2 - t1,
        "run_seconds": t3 - t2,
        "x": col_value[:n_a] if len(col_value) else None,
        "w": col_value[n_a:n_a + n_s] if len(col_value) else None,
        "y": col_value[n_a + n_s:n_a + n_s + n_d] if len(col_value) else None,
        "z": col_value[n_a + n_s + n_d:] if len(col_value) else None,
        "supply_dual": row_dual[:n_s] if len(row_dual) else None,
        "demand_dual": row_dual[n_s:n_s + n_d] if len(row_dual) else None,
    }
    return float(hinfo.objective_function_value), t3 - t2, info
