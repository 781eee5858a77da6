r"""Column generation: the exact optimum of the full exchange LP from a small restricted one.

Most candidate arcs of a large region never carry anything: a supply ends up with one or two partners.
Instead of handing HiGHS every arc, the restricted master problem holds a few promising arcs per supply and
per demand; its duals price **every** arc at once with numpy, and the arcs whose reduced cost is negative
enter the next round. When no arc prices out negative, the restricted optimum is the optimum of the full LP
(linear programming duality: the restricted duals, with zero for constraint rows the restricted model does
not contain, are feasible for the full dual and meet the same objective).

An arc's column x_a has non-zeros only in the rows of the families listed in :data:`ARC_ROW_FAMILIES`
(every other variable, w, y and the processors' activities z, is in every restricted model, so only arcs
need pricing). Its reduced cost, in HiGHS's convention (minimisation, raw ``row_dual`` π = ∂objective/∂row
bound), is

.. math::

    \bar c_a = c_a - \sum_{F} \sum_{k \in F} A^F_{k,a}\, \pi^F_k

over the families F: supply balance (coefficient 1 in row s(a)), demand balance (ρ_a in row d(a)), share
(ρ_a in row d(a)), quality (c_{s,q} − ℓ_{d,q} in each bounded (d(a), q)), intake (1 in row d(a)), facility
intake (1 in the row of d(a)'s facility), permit limit (1 in the row of (f(d(a)), EWC code of a) when a's stream
needs the permit). A processor's rows are its supply, demand and share rows restated
with its activity z_p in place of the fixed amount (symbiosis.network.processors): the same rows, in which
an arc has the same coefficients, so they need no family of their own; z_p only changes what the duals are
worth. Heat arcs are arcs like any other (their ratio carries the losses and the heat pump's lift). The
arc's capacity is a column bound, not a row. Written with the published duals (docs/formulation.md) this
is the formula of the documentation:
c_a + π^supply_s − ρ_a π^demand_d + ρ_a π^share_d − Σ_q (c_{s,q} − ℓ_{d,q}) h_{d,q} + μ^intake_d + μ^facility_f
+ [a ∈ A(f, e)] μ^permit_{f,e}.

Rows absent from a restricted model (the quality, share and intake rows of a demand with no restricted arc
in, the intake row of a facility with none) are slack there (0 ≤ σ r, (v − ℓ) y ≤ 0 as the virgin material
meets its bound, 0 ≤ L), also with processors, where the same rows read −σ i z ≤ 0 and hold for any z ≥ 0;
so their dual is zero and the formula holds for them too. Each family matches a restricted row to the full
model's row by a key (position for supply and demand rows, which keep their positions as only the arc
table is cut; (demand, parameter, bound) for quality rows; facility id for facility intake rows; (facility,
EWC code) for permit rows).

**Adding a row family that arcs enter** (e.g. a cap per receiving facility and EWC code): give its rows over
the arc columns as a :class:`~symbiosis.exchange.model.RowBlock` in ``ExchangeArrays``, its dual in
``Solution``, and append one :class:`ArcRowFamily` to :data:`ARC_ROW_FAMILIES` saying where its rows are, the
key of each row, how to read its raw dual from a Solution and how to write it back. Pricing, the mapping from
restricted to full rows and the published duals of the final Solution then include it; the test
``test_every_arc_row_family_is_priced`` of tests/test_colgen.py compares the formula with HiGHS's own
reduced costs, so a family left out fails it.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from symbiosis.candidates import Candidates
from symbiosis.exchange.model import ExchangeArrays, RowBlock, exchange_arrays, resolve_weights
from symbiosis.exchange.solve import ExchangeModel, Solution, _carbon_price

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ArcRowFamily:
    """One family of constraint rows that arc columns enter, as column generation needs to know it.

    ``rows(arrays)``: the family's rows over the arc columns (row k holds arc ``cols`` with ``coefs``);
    ``keys(arrays)``: one key per row, the same in a restricted and the full model; ``raw_dual(arrays,
    solution)``: each row's dual in HiGHS's convention (∂objective/∂row bound; 0 where the row is absent);
    ``publish(arrays, solution, raw)``: write raw duals of ``arrays``' rows back into the solution's published
    field (the inverse of ``raw_dual``).
    """

    name: str
    rows: Callable[[ExchangeArrays], RowBlock]
    keys: Callable[[ExchangeArrays], pd.Index]
    raw_dual: Callable[[ExchangeArrays, Solution], np.ndarray]
    publish: Callable[[ExchangeArrays, Solution, np.ndarray], None]


def _fit(values: np.ndarray, n: int) -> np.ndarray:
    """``values`` as a float array of length ``n``: zeros when the solution has none (an empty array, as a
    Solution made without that family has), an error when it has duals for other rows than the model's."""
    values = np.asarray(values, dtype=float)
    if len(values) == n:
        return values
    if len(values) == 0:
        return np.zeros(n)
    raise ValueError(f"a solution has {len(values)} duals for a family of {n} rows: it belongs to another model")


def _ones(block: RowBlock) -> RowBlock:
    return RowBlock(block.ptr, block.cols, np.ones(len(block.cols)))


def _quality_sign(arrays: ExchangeArrays) -> np.ndarray:
    """Published quality dual = sign × raw row dual: −1 on a max row, +1 on a min row."""
    if arrays.quality.n_rows == 0:
        return np.zeros(0)
    return np.where((arrays.quality_rows["bound"] == "max").to_numpy(), -1.0, 1.0)


def _quality_keys(arrays: ExchangeArrays) -> pd.Index:
    if arrays.quality.n_rows == 0:
        return pd.Index([])
    rows = arrays.quality_rows
    return pd.MultiIndex.from_arrays([rows["d"].to_numpy(np.int64), rows["parameter"].astype(str).to_numpy(),
                                      rows["bound"].astype(str).to_numpy()])


def _set(field_name: str, sign: float) -> Callable[[ExchangeArrays, Solution, np.ndarray], None]:
    def publish(_arrays: ExchangeArrays, solution: Solution, raw: np.ndarray) -> None:
        setattr(solution, field_name, sign * raw)
    return publish


def _publish_quality(arrays: ExchangeArrays, solution: Solution, raw: np.ndarray) -> None:
    solution.quality_dual = _quality_sign(arrays) * raw


#: Every row family an arc column enters. A new family that arcs enter is one more entry here (see the module
#: docstring).
ARC_ROW_FAMILIES: list[ArcRowFamily] = [
    ArcRowFamily("supply_balance", lambda a: a.out_arcs, lambda a: pd.RangeIndex(a.n_supplies),
                 lambda a, s: -_fit(s.supply_dual, a.n_supplies), _set("supply_dual", -1.0)),
    ArcRowFamily("demand_balance", lambda a: a.in_arcs, lambda a: pd.RangeIndex(a.n_demands),
                 lambda a, s: _fit(s.demand_dual, a.n_demands), _set("demand_dual", 1.0)),
    ArcRowFamily("share_limit", lambda a: a.in_arcs, lambda a: pd.RangeIndex(a.n_demands),
                 lambda a, s: -_fit(s.share_dual, a.n_demands), _set("share_dual", -1.0)),
    ArcRowFamily("quality_limit", lambda a: a.quality, _quality_keys,
                 lambda a, s: _quality_sign(a) * _fit(s.quality_dual, a.quality.n_rows), _publish_quality),
    ArcRowFamily("intake_limit", lambda a: _ones(a.in_arcs), lambda a: pd.RangeIndex(a.n_demands),
                 lambda a, s: -_fit(s.intake_dual, a.n_demands), _set("intake_dual", -1.0)),
    ArcRowFamily("facility_intake", lambda a: a.facility_intake,
                 lambda a: pd.Index(np.asarray(a.facility_intake_ids, dtype=object)),
                 lambda a, s: -_fit(s.facility_intake_dual, a.facility_intake.n_rows),
                 _set("facility_intake_dual", -1.0)),
    ArcRowFamily("permit_limit", lambda a: a.permit,
                 lambda a: pd.MultiIndex.from_arrays([np.asarray(a.permit_facility, dtype=str),
                                                      np.asarray(a.permit_code, dtype=str)]),
                 lambda a, s: -_fit(s.permit_dual, a.permit.n_rows), _set("permit_dual", -1.0)),
]


def _transpose_dot(block: RowBlock, dual: np.ndarray, n_arcs: int) -> np.ndarray:
    """Σ_k A_{k,a} dual_k for every arc a (the family's contribution to the arcs' reduced costs)."""
    if block.n_rows == 0 or len(block.cols) == 0 or not np.any(dual):
        return np.zeros(n_arcs)
    row_of_term = block.term_rows()
    return np.bincount(block.cols, weights=block.coefs * dual[row_of_term], minlength=n_arcs)


def raw_duals(arrays: ExchangeArrays, solution: Solution) -> dict[str, np.ndarray]:
    """Each family's raw row duals (HiGHS's convention) on ``arrays``' rows, from a solution of that model."""
    return {f.name: f.raw_dual(arrays, solution) for f in ARC_ROW_FAMILIES}


def full_raw_duals(full: ExchangeArrays, restricted: ExchangeArrays, solution: Solution
                   ) -> dict[str, np.ndarray]:
    """A restricted model's raw row duals on the full model's rows (0 on rows the restricted model lacks)."""
    out: dict[str, np.ndarray] = {}
    for family in ARC_ROW_FAMILIES:
        n_full = family.rows(full).n_rows
        mine = family.raw_dual(restricted, solution)
        dual = np.zeros(n_full)
        if n_full and len(mine):
            position = family.keys(full).get_indexer(family.keys(restricted))
            if (position < 0).any():
                raise RuntimeError(f"internal error: column generation found {family.name} rows in the restricted "
                                   "model that the full model lacks")
            dual[position] = mine
        out[family.name] = dual
    return out


def price_arcs(arrays: ExchangeArrays, duals: Mapping[str, np.ndarray], objective: np.ndarray) -> np.ndarray:
    """Reduced cost of every arc: c_a − Σ_F Σ_k A^F_{k,a} π^F_k, from raw row duals per family."""
    n_a = arrays.n_arcs
    rc = np.array(objective[:n_a], dtype=float)
    for family in ARC_ROW_FAMILIES:
        rc -= _transpose_dot(family.rows(arrays), duals[family.name], n_a)
    return rc


def reduced_costs(arrays: ExchangeArrays, solution: Solution, quality_h: np.ndarray | None = None,
                  objective: np.ndarray | None = None) -> np.ndarray:
    """Reduced cost of every arc of ``arrays``' model, from the duals of a solution on the same rows.

    ``quality_h``, if given with one value per quality row, is the raw row dual of each quality row (it
    overrides the solution's; kept for callers that map a restricted model's duals themselves);
    ``objective`` the full objective vector (x columns first; default: carbon price 0, cost only).
    """
    duals = raw_duals(arrays, solution)
    if quality_h is not None and len(quality_h) == arrays.quality.n_rows:
        duals["quality_limit"] = np.asarray(quality_h, dtype=float)
    if objective is None:
        objective = arrays.objective_vector(0.0)
    return price_arcs(arrays, duals, objective)


def _select(scores: np.ndarray, groups: np.ndarray, k: int, eligible: np.ndarray) -> np.ndarray:
    """Positions of the ``k`` lowest scores within each group, among the eligible positions."""
    idx = np.flatnonzero(eligible)
    if len(idx) == 0:
        return idx
    order = idx[np.lexsort((scores[idx], groups[idx]))]
    g = groups[order]
    start = np.r_[0, np.flatnonzero(np.diff(g)) + 1]
    rank = np.arange(len(order)) - np.repeat(start, np.diff(np.r_[start, len(order)]))
    return order[rank < k]


@dataclass
class ColumnGenerationState:
    """What column generation keeps to re-optimise after a change: the full model's arrays and objective, the
    arcs in the master (``active``, over all candidate arcs), the grown master and the pricing's threshold
    (an arc enters when its reduced cost is below ``-threshold``)."""

    full: ExchangeArrays
    objective: np.ndarray
    active: np.ndarray
    master: Any  # symbiosis.exchange.grow.GrownMaster
    threshold: float
    per_supply: int
    per_demand: int
    carbon_price: float
    weights: dict[str, float]


def bau_reduced_costs(arrays: ExchangeArrays, objective: np.ndarray) -> np.ndarray:
    """Every arc's reduced cost at business-as-usual prices: a supply worth its fate cost, a demand its virgin
    price (the duals of the model without arcs)."""
    n_a, n_s = arrays.n_arcs, arrays.n_supplies
    return objective[:n_a] - objective[n_a:n_a + n_s][arrays.arc_s] - arrays.ratio * objective[n_a + n_s:][arrays.arc_d]


def admit(rc: np.ndarray, arrays: ExchangeArrays, active: np.ndarray, threshold: float, per_supply: int,
          per_demand: int) -> np.ndarray:
    """Mark in ``active`` (in place), per supply and per demand, the ``per_supply`` / ``per_demand`` arcs of
    most negative reduced cost among those below ``-threshold`` and not active yet; returns their positions."""
    entering = (rc < -threshold) & ~active
    new = np.union1d(_select(rc, arrays.arc_s, per_supply, entering), _select(rc, arrays.arc_d, per_demand, entering))
    active[new] = True
    return new


class ModelFactory(Protocol):
    """Builds the exchange model of the candidates restricted to the arcs at ``positions`` (all of them for the
    full LP); ``options`` are ExchangeModel's keyword arguments (carbon_price, weights, method, ...). A model
    with more columns than arcs, w, y and z (the stores of symbiosis.periods) is priced the same way as long as
    arcs enter none of its extra rows."""

    def __call__(self, restricted: Candidates, positions: np.ndarray, **options: Any) -> ExchangeModel: ...


def _plain_model(restricted: Candidates, positions: np.ndarray, **options: Any) -> ExchangeModel:  # noqa: ARG001
    return ExchangeModel(restricted, **options)


def _restricted(candidates: Candidates, positions: np.ndarray) -> Candidates:
    """The same candidates (supplies, demands, quality, processors ...) with only the arcs at ``positions``."""
    return dataclasses.replace(candidates, arcs=candidates.arcs.iloc[positions].reset_index(drop=True))


def _full_quality_h(full: ExchangeArrays, restricted: ExchangeArrays, solution: Solution
                    ) -> tuple[np.ndarray, np.ndarray]:
    """(raw row duals h, published quality duals) on the full model's quality rows."""
    h = full_raw_duals(full, restricted, solution)["quality_limit"]
    return h, _quality_sign(full) * h


def solve_column_generation(
    candidates: Candidates,
    *,
    carbon_price: float | None = None,
    weights: Mapping[str, float] | None = None,
    method: str = "ipm",
    per_supply: int = 4,
    per_demand: int = 4,
    max_iterations: int = 50,
    tolerance: float = 1e-7,
    rc_tolerance: float = 1e-7,
    max_master_share: float = 0.4,
    threads: int | None = None,
    model_factory: ModelFactory | None = None,
    arrays: ExchangeArrays | None = None,
    warm: bool = True,
    master_method: str | None = "simplex",
    grow: bool = True,
    keep: list[ColumnGenerationState] | None = None,
    block_columns: int | None = None,
) -> Solution:
    """Solve the exchange LP by column generation; returns a Solution over **all** candidate arcs.

    Starts from the ``per_supply`` / ``per_demand`` arcs with the most negative reduced cost at business-as-
    usual prices (fate cost for a supply, virgin price for a demand); every round adds, for each supply and
    each demand, up to that many arcs that price out negative, until none does (the exact optimum) or
    ``max_iterations`` is reached (then a RuntimeError: never a silently partial answer). When the master
    would hold more than ``max_master_share`` of all arcs, column generation cannot win (each round re-solves
    most of the LP), so it stops and the full LP is solved monolithically instead: the same optimum, recorded
    in ``parameters["strategy"]``.

    ``model_factory`` builds each restricted model (default: a plain ExchangeModel; symbiosis.periods passes
    one that adds the stores' columns and rows, which every restricted model holds whole); ``arrays``, the
    full model's arrays when the caller has them already (else built here). With ``warm`` (the default) every
    round after the first starts the simplex method from the last round's optimal basis
    (symbiosis.exchange.warm): the same optimum, reached in a few pivots instead of a fresh solve.
    ``master_method`` is the HiGHS method of the first restricted model (default the simplex method, measured
    two to three times faster than the interior point on these masters, docs/performance.md; None: ``method``);
    ``method`` is that of the full LP when column generation gives up on it. With ``grow`` (the default, with
    ``warm``) the first restricted model is kept and every later round adds the entering arcs' columns to its
    HiGHS instances (symbiosis.exchange.grow) instead of building a new model: the same optimum, without a
    Pyomo build and hand-over per round. ``keep``: a list to which the grown model and what prices arcs
    against it are appended (:class:`ColumnGenerationState`), for re-optimising after a change
    (symbiosis.exchange.incremental); nothing is appended when the model was not grown. ``block_columns``:
    the restricted models' block packing (ExchangeModel's; default its own).
    """
    from symbiosis.exchange import grow as grow_module
    from symbiosis.exchange import warm as warm_start

    started = time.perf_counter()
    factory = model_factory or _plain_model
    full = arrays if arrays is not None else exchange_arrays(candidates)
    price = _carbon_price(candidates, carbon_price)
    weight_map = dict(zip(("cost", "co2e"), resolve_weights(weights), strict=True))
    objective = full.objective_vector(price, weight_map)
    n_a = full.n_arcs
    timings: dict[str, float] = {"build": 0.0, "handover": 0.0, "solve": 0.0, "extract": 0.0, "pricing": 0.0}
    if n_a == 0:
        return factory(candidates, np.arange(0), carbon_price=price, weights=weights, method=method).solve()
    t0 = time.perf_counter()
    rc = bau_reduced_costs(full, objective)
    threshold = rc_tolerance * max(1.0, float(np.abs(objective).max()))
    active = np.zeros(n_a, dtype=bool)
    admit(rc, full, active, threshold, per_supply, per_demand)
    timings["pricing"] += time.perf_counter() - t0

    grow = warm and grow
    if grow:
        # Every row that arcs enter is in the first restricted model, so that later rounds can add columns to
        # its HiGHS instances instead of building a new model (symbiosis.exchange.grow).
        grow_module.covering_arcs(full, rc, active)

    iteration = 0
    warm_rounds = 0
    grown_rounds = 0
    solution: Solution | None = None
    basis: warm_start.KeyedBasis | None = None
    master: grow_module.GrownMaster | None = None
    result = None
    while True:
        iteration += 1
        if master is None:
            positions = np.flatnonzero(active)
            restricted = _restricted(candidates, positions)
            model = factory(restricted, positions, carbon_price=price, weights=weights,
                            method=master_method or method, tolerance=tolerance, threads=threads,
                            **({} if block_columns is None else {"block_columns": block_columns}))
            started_warm = False
            if basis is not None:
                model.hand_over()
                started_warm = warm_start.start_from(model, basis, positions, n_a)
            solution = model.solve(method="simplex" if started_warm else None)
            warm_rounds += started_warm
            for key in ("build", "handover", "solve", "extract"):
                timings[key] += solution.timings.get(key, 0.0)
            objective_value = solution.objective
            if grow:
                try:
                    master = grow_module.GrownMaster(model, positions, full, objective)
                except ValueError as exc:
                    logger.info("column generation rebuilds its model every round: %s", exc)
                    grow = False
            if warm and master is None:
                t0 = time.perf_counter()
                basis = warm_start.basis_of(model, positions, n_a)
                timings["extract"] += time.perf_counter() - t0
            t0 = time.perf_counter()
            duals = full_raw_duals(full, model.arrays, solution)
            # The restricted model (Pyomo and HiGHS) is not needed any more unless it grows: free it before
            # the next one is built.
            del model, restricted
        else:
            t0 = time.perf_counter()
            result = master.solve()
            timings["solve"] += time.perf_counter() - t0
            logger.debug("column generation round %d: grown model solved in %.2f s (%d blocks)", iteration,
                         time.perf_counter() - t0, master.model._highs.n_blocks)
            objective_value = result.objective
            grown_rounds += 1
            t0 = time.perf_counter()
            duals = master.raw_duals(result)
        rc = price_arcs(full, duals, objective)
        n_entering = int(((rc < -threshold) & ~active).sum())
        logger.info("column generation round %d: %d arcs in the master, objective %.10g, %d price out negative",
                    iteration, int(active.sum()), objective_value, n_entering)
        if n_entering == 0:
            timings["pricing"] += time.perf_counter() - t0
            break
        if iteration >= max_iterations:
            raise RuntimeError(f"column generation did not converge in {max_iterations} rounds "
                               f"({n_entering} arcs still price out negative)")
        new = admit(rc, full, active, threshold, per_supply, per_demand)
        timings["pricing"] += time.perf_counter() - t0
        if active.sum() > max_master_share * n_a:
            logger.info("column generation stopped after %d rounds: the master would hold %.0f %% of the arcs; "
                        "solving the full LP instead", iteration, 100.0 * active.sum() / n_a)
            del master
            return _monolithic(candidates, price, weights, method, tolerance, timings, started, iteration,
                               threads, factory, full if grow else None)
        if master is not None:
            master.add(new)

    if master is not None and result is not None:
        solution = master.solution(result)
        positions = master.positions
        timings["grow"] = master.timings["grow"]
    else:
        assert solution is not None
        x = np.zeros(n_a)
        x[positions] = solution.x
        solution.x = x
        for family in ARC_ROW_FAMILIES:  # the duals of the final master, on the full model's rows
            family.publish(full, solution, duals[family.name])
    if keep is not None and master is not None:
        keep.append(ColumnGenerationState(full, objective, active, master, threshold, per_supply, per_demand, price,
                                          weight_map))
    solution.timings = {**timings, "total": time.perf_counter() - started}
    solution.parameters = {**solution.parameters, "method": master_method or method, "strategy": "column_generation",
                           "iterations": iteration, "warm_rounds": warm_rounds + grown_rounds,
                           "grown_rounds": grown_rounds, "master_arcs": int(len(positions)),
                           "candidate_arcs": int(n_a)}
    return solution


def _monolithic(candidates: Candidates, price: float, weights: Mapping[str, float] | None, method: str,
                tolerance: float, timings: dict[str, float], started: float, rounds: int,
                threads: int | None = None, factory: ModelFactory = _plain_model,
                arrays: ExchangeArrays | None = None) -> Solution:
    """The full LP after column generation gave up on it: with ``arrays``, mostly added to HiGHS from them
    (symbiosis.exchange.grow.solve_whole), else built whole in Pyomo."""
    if arrays is not None:
        from symbiosis.exchange.grow import solve_whole

        solution = solve_whole(candidates, carbon_price=price, weights=weights, method=method, tolerance=tolerance,
                               threads=threads, arrays=arrays, model_factory=factory)
    else:
        solution = factory(candidates, np.arange(len(candidates.arcs)), carbon_price=price, weights=weights,
                           method=method, tolerance=tolerance, threads=threads).solve()
    for key, value in solution.timings.items():
        timings[key] = timings.get(key, 0.0) + value
    solution.timings = {**timings, "total": time.perf_counter() - started}
    solution.parameters = {**solution.parameters, "strategy": "monolithic after column generation",
                           "iterations": rounds, "candidate_arcs": int(len(candidates.arcs))}
    return solution


__all__ = ["ARC_ROW_FAMILIES", "ArcRowFamily", "ColumnGenerationState", "ModelFactory", "admit",
           "bau_reduced_costs", "full_raw_duals", "price_arcs", "reduced_costs",
           "solve_column_generation"]
