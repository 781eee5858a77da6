r"""Column generation: the exact optimum of the full exchange LP from a small restricted one.

Most candidate arcs of a large region never carry anything: a supply ends up with one or two partners.
Instead of handing HiGHS every arc, the restricted master problem holds a few promising arcs per supply and
per demand; its duals price **every** arc at once with numpy, and the arcs whose reduced cost is negative
enter the next round. When no arc prices out negative, the restricted optimum is the optimum of the full LP
(linear programming duality: the restricted duals, with zero for constraint rows the restricted model does
not contain, are feasible for the full dual and meet the same objective).

Reduced cost of arc :math:`a = (s, d)` in HiGHS's convention (minimisation, ``row_dual`` = ∂objective/∂row
bound), written with the solution's published duals (docs/formulation.md):

.. math::

    \bar c_a = c_a + \pi^{supply}_s - \rho_a \pi^{demand}_d + \rho_a \pi^{share}_d
               - \sum_{q \in Q(d)} (c_{s,q} - \ell_{d,q})\, h_{d,q}

               + \mu^{intake}_d + \mu^{facility}_{f(d)} + [a \in A(f, e)]\, \mu^{permit}_{f,e}

with :math:`h = -\pi^{quality}` on a max row and :math:`+\pi^{quality}` on a min row, and
:math:`\mu` the published intake and permit duals (value of one more tonne of intake or of permitted tonnage,
≥ 0; zero where no row). Rows absent from the
restricted model (quality rows of a demand with no restricted arc in) are slack there (the virgin material
meets its own bound, which the model checks), so their dual is zero and the formula holds for them too.

Supplies and demands keep their positions in the restricted model (only the arc table is cut), so duals map
one to one; quality rows map by (demand, parameter, bound), facility intake rows by facility id, permit rows
by (facility, EWC code).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import replace

import numpy as np

from symbiosis.candidates import Candidates
from symbiosis.exchange.model import ExchangeArrays, exchange_arrays, resolve_weights
from symbiosis.exchange.solve import ExchangeModel, Solution, _carbon_price

logger = logging.getLogger(__name__)


def reduced_costs(arrays: ExchangeArrays, solution: Solution, quality_h: np.ndarray, objective: np.ndarray
                  ) -> np.ndarray:
    """Reduced cost of every arc of the full model, from the duals of a (restricted) solution.

    ``quality_h`` is the raw row dual of each full quality row (0 where the row is absent); ``objective``
    the full objective vector (x columns first).
    """
    s, d, rho = arrays.arc_s, arrays.arc_d, arrays.ratio
    rc = (objective[:arrays.n_arcs] + solution.supply_dual[s] - rho * solution.demand_dual[d]
          + rho * solution.share_dual[d])
    q = arrays.quality
    if q.n_rows and len(q.cols):
        row_of_term = np.repeat(np.arange(q.n_rows), np.diff(q.ptr))
        rc -= np.bincount(q.cols, weights=q.coefs * quality_h[row_of_term], minlength=arrays.n_arcs)
    if len(solution.intake_dual) == arrays.n_demands:
        rc += solution.intake_dual[d]
    f = arrays.facility_intake
    if f.n_rows and len(solution.facility_intake_dual) == f.n_rows:
        row_of_term = np.repeat(np.arange(f.n_rows), np.diff(f.ptr))
        rc += np.bincount(f.cols, weights=f.coefs * solution.facility_intake_dual[row_of_term],
                          minlength=arrays.n_arcs)
    rc += _permit_term(arrays, solution)
    return rc


def _permit_term(arrays: ExchangeArrays, solution: Solution) -> np.ndarray:
    """Per arc, Σ over the permit rows it is in of their published dual (value of one more permitted tonne)."""
    p = arrays.permit
    dual = np.asarray(solution.permit_dual, dtype=float)
    if p.n_rows == 0 or len(dual) != p.n_rows:
        return np.zeros(arrays.n_arcs)
    row_of_term = np.repeat(np.arange(p.n_rows), np.diff(p.ptr))
    return np.bincount(p.cols, weights=p.coefs * dual[row_of_term], minlength=arrays.n_arcs)


def _full_permit_dual(full: ExchangeArrays, restricted: ExchangeArrays, solution: Solution) -> np.ndarray:
    """The restricted solution's permit duals on the full model's rows, by (facility, EWC code); 0 where the
    restricted model has no row (no arc under that permit there, so the row is slack)."""
    out = np.zeros(full.permit.n_rows)
    if full.permit.n_rows == 0 or len(solution.permit_dual) == 0:
        return out
    position = {key: k for k, key in enumerate(zip(full.permit_facility.tolist(), full.permit_code.tolist(),
                                                   strict=True))}
    for k, key in enumerate(zip(restricted.permit_facility.tolist(), restricted.permit_code.tolist(), strict=True)):
        out[position[key]] = solution.permit_dual[k]
    return out


def _full_facility_intake_dual(full: ExchangeArrays, restricted: ExchangeArrays, solution: Solution
                               ) -> np.ndarray:
    """The restricted solution's facility intake duals on the full model's rows (by facility id; 0 where the
    restricted model has no row: no arc into the facility, so the row is slack)."""
    out = np.zeros(full.facility_intake.n_rows)
    if full.facility_intake.n_rows == 0 or len(solution.facility_intake_dual) == 0:
        return out
    position = {fid: k for k, fid in enumerate(full.facility_intake_ids.tolist())}
    for k, fid in enumerate(restricted.facility_intake_ids.tolist()):
        out[position[fid]] = solution.facility_intake_dual[k]
    return out


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


def _restricted(candidates: Candidates, positions: np.ndarray) -> Candidates:
    # dataclasses.replace keeps every other field (the permit tonnages among them: their rows must be in
    # the restricted model too).
    return replace(candidates, arcs=candidates.arcs.iloc[positions].reset_index(drop=True))


def _full_quality_h(full: ExchangeArrays, restricted: ExchangeArrays, solution: Solution
                    ) -> tuple[np.ndarray, np.ndarray]:
    """(raw row duals h, published quality duals) on the full model's quality rows."""
    h = np.zeros(full.quality.n_rows)
    published = np.zeros(full.quality.n_rows)
    if restricted.quality.n_rows == 0 or full.quality.n_rows == 0:
        return h, published
    key = ["d", "parameter", "bound"]
    where = full.quality_rows[key].reset_index().rename(columns={"index": "full"})
    mine = restricted.quality_rows[key].reset_index().rename(columns={"index": "mine"})
    mapping = mine.merge(where, on=key, how="left")
    dual = np.asarray(solution.quality_dual, dtype=float)
    is_max = (mapping["bound"] == "max").to_numpy()
    full_pos = mapping["full"].to_numpy(np.int64)
    mine_pos = mapping["mine"].to_numpy(np.int64)
    h[full_pos] = np.where(is_max, -dual[mine_pos], dual[mine_pos])
    published[full_pos] = dual[mine_pos]
    return h, published


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
) -> Solution:
    """Solve the exchange LP by column generation; returns a Solution over **all** candidate arcs.

    Starts from the ``per_supply`` / ``per_demand`` arcs with the most negative reduced cost at business-as-
    usual prices (fate cost for a supply, virgin price for a demand); every round adds, for each supply and
    each demand, up to that many arcs that price out negative, until none does (the exact optimum) or
    ``max_iterations`` is reached (then a RuntimeError: never a silently partial answer). When the master
    would hold more than ``max_master_share`` of all arcs, column generation cannot win (each round re-solves
    most of the LP), so it stops and the full LP is solved monolithically instead: the same optimum, recorded
    in ``parameters["strategy"]``.
    """
    started = time.perf_counter()
    full = exchange_arrays(candidates)
    price = _carbon_price(candidates, carbon_price)
    objective = full.objective_vector(price, dict(zip(("cost", "co2e"), resolve_weights(weights), strict=True)))
    n_a, n_s = full.n_arcs, full.n_supplies
    timings: dict[str, float] = {"build": 0.0, "handover": 0.0, "solve": 0.0, "extract": 0.0, "pricing": 0.0}
    if n_a == 0:
        return ExchangeModel(candidates, carbon_price=price, weights=weights, method=method).solve()
    if full.n_processors:
        # Processor rows tie supplies and demands to activities that reduced_costs does not price:
        # column generation is off with processors (the monolithic LP, the same optimum).
        whole = _monolithic(candidates, price, weights, method, tolerance, timings, started, 0, threads)
        whole.parameters["strategy"] = "monolithic (processors: column generation off)"
        return whole

    # Business-as-usual prices: a supply is worth its fate cost, a demand its virgin price.
    fate_obj = objective[n_a:n_a + n_s]
    virgin_obj = objective[n_a + n_s:]
    t0 = time.perf_counter()
    rc = objective[:n_a] - fate_obj[full.arc_s] - full.ratio * virgin_obj[full.arc_d]
    scale = max(1.0, float(np.abs(objective).max()))
    negative = rc < -rc_tolerance * scale
    active = np.zeros(n_a, dtype=bool)
    active[_select(rc, full.arc_s, per_supply, negative)] = True
    active[_select(rc, full.arc_d, per_demand, negative)] = True
    timings["pricing"] += time.perf_counter() - t0

    iteration = 0
    solution: Solution | None = None
    while True:
        iteration += 1
        positions = np.flatnonzero(active)
        restricted = _restricted(candidates, positions)
        model = ExchangeModel(restricted, carbon_price=price, weights=weights, method=method, tolerance=tolerance,
                              threads=threads)
        solution = model.solve()
        for key in ("build", "handover", "solve", "extract"):
            timings[key] += solution.timings.get(key, 0.0)
        t0 = time.perf_counter()
        h, published_quality = _full_quality_h(full, model.arrays, solution)
        solution.facility_intake_dual = _full_facility_intake_dual(full, model.arrays, solution)
        solution.permit_dual = _full_permit_dual(full, model.arrays, solution)
        rc = reduced_costs(full, solution, h, objective)
        entering = (rc < -rc_tolerance * scale) & ~active
        n_entering = int(entering.sum())
        logger.info("column generation round %d: %d arcs in the master, objective %.10g, %d price out negative",
                    iteration, len(positions), solution.objective, n_entering)
        if n_entering == 0:
            timings["pricing"] += time.perf_counter() - t0
            break
        if iteration >= max_iterations:
            raise RuntimeError(f"column generation did not converge in {max_iterations} rounds "
                               f"({n_entering} arcs still price out negative)")
        active[_select(rc, full.arc_s, per_supply, entering)] = True
        active[_select(rc, full.arc_d, per_demand, entering)] = True
        timings["pricing"] += time.perf_counter() - t0
        if active.sum() > max_master_share * n_a:
            logger.info("column generation stopped after %d rounds: the master would hold %.0f %% of the arcs; "
                        "solving the full LP instead", iteration, 100.0 * active.sum() / n_a)
            return _monolithic(candidates, price, weights, method, tolerance, timings, started, iteration,
                               threads)

    assert solution is not None
    x = np.zeros(n_a)
    x[positions] = solution.x
    solution.x = x
    solution.quality_dual = published_quality
    solution.timings = {**timings, "total": time.perf_counter() - started}
    solution.parameters = {**solution.parameters, "strategy": "column_generation", "iterations": iteration,
                           "master_arcs": int(len(positions)), "candidate_arcs": int(n_a)}
    return solution


def _monolithic(candidates: Candidates, price: float, weights: Mapping[str, float] | None, method: str,
                tolerance: float, timings: dict[str, float], started: float, rounds: int,
                threads: int | None = None) -> Solution:
    solution = ExchangeModel(candidates, carbon_price=price, weights=weights, method=method,
                             tolerance=tolerance, threads=threads).solve()
    for key, value in solution.timings.items():
        timings[key] = timings.get(key, 0.0) + value
    solution.timings = {**timings, "total": time.perf_counter() - started}
    solution.parameters = {**solution.parameters, "strategy": "monolithic after column generation",
                           "iterations": rounds, "candidate_arcs": int(len(candidates.arcs))}
    return solution


__all__ = ["reduced_costs", "solve_column_generation"]
