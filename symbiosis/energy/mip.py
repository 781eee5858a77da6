r"""The optional mixed-integer mode: fixed annual costs of connections and minimum sizes, as binaries.

A pipe or a connection has a fixed annual cost whatever it carries, which no LP captures. In this mode
(``optimise(region, mode="mip")``, CLI ``--mip``) each arc with a fixed cost or a minimum size gets a binary
b_a (``symbiosis.exchange.model.add_fixed_connections``): x_a ≤ u_a b_a, x_a ≥ m_a b_a, and f_a b_a in the
objective. u_a is the tightest bound the data gives (``link_bounds``), never a big-M constant, so that the LP
relaxation stays close to the MIP. The fixed costs come from the region's arcs.csv (``fixed_cost_per_yr``,
``min_flow``), else, for energy arcs, from the carrier's ``fixed_cost_per_km_yr`` × km.

Three HiGHS solves, through the same hand-over and block solver as the LP: the LP relaxation (its objective
is reported with the gap (MIP − LP)/|MIP|), the MIP (HiGHS's own MIP gap is reported), and the LP with the
binaries fixed at their optimum, whose duals are reported as the solution's duals (a MIP has none).
Column generation is not used in this mode.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from symbiosis.candidates import Candidates
from symbiosis.energy.heat import is_energy
from symbiosis.exchange.blocks import BlockSolver
from symbiosis.exchange.model import ExchangeArrays, exchange_arrays
from symbiosis.exchange.solve import ExchangeModel, Solution, SolverError

if TYPE_CHECKING:
    from symbiosis.region import Region

logger = logging.getLogger(__name__)

MIP_ARC_COLUMNS = ["fixed_cost_per_yr", "min_flow"]


def connection_costs(region: Region, cands: Candidates) -> Candidates:
    """``cands`` with arc columns ``fixed_cost_per_yr`` (NaN where none) and ``min_flow`` (0 where none): the
    region's arcs.csv figures for the facility pair, else for an energy arc the carrier's
    ``fixed_cost_per_km_yr`` × km. An arc whose fixed cost is given (even 0) or that has a minimum size is a
    yes/no decision (a binary); the others stay continuous."""
    arcs = cands.arcs.copy()
    n = len(arcs)
    fixed = np.full(n, np.nan)
    carriers = region.reference.energy_carriers
    energy = is_energy(cands.supplies)[arcs["s"].to_numpy(np.int64)] if n else np.zeros(0, bool)
    if energy.any() and not carriers.empty:
        material = cands.supplies["material"].to_numpy()[arcs["s"].to_numpy(np.int64)[energy]]
        per_km = pd.Series(material).map(carriers["fixed_cost_per_km_yr"]).astype(float).fillna(0.0).to_numpy()
        fixed[energy] = per_km * arcs["distance_km"].to_numpy(float)[energy]
    least = np.zeros(n)
    given = region.arcs
    for column, target in (("fixed_cost_per_yr", fixed), ("min_flow", least)):
        if column not in given.columns or given.empty or not n:
            continue
        values = given.dropna(subset=[column]).drop_duplicates(["supply_facility", "demand_facility"], keep="last")
        lookup = values.set_index(["supply_facility", "demand_facility"])[column].astype(float)
        pair = pd.MultiIndex.from_arrays([arcs["supply_facility"], arcs["demand_facility"]])
        found = lookup.reindex(pair).to_numpy(float)
        target[~np.isnan(found)] = found[~np.isnan(found)]
    arcs["fixed_cost_per_yr"] = fixed
    arcs["min_flow"] = least
    return replace(cands, arcs=arcs)


def link_bounds(arrays: ExchangeArrays, arcs: np.ndarray) -> np.ndarray:
    """u_a for ``arcs``: the smallest of the supply's amount, the demand's amount / ρ_a, its share σ_d r_d / ρ_a,
    the arc's capacity, the receiver's intake limits and the permitted tonnage the arc falls under (no big-M
    constant).

    A processor's rows move with its activity (symbiosis.network.processors): their amounts here are those at
    full capacity (yield × capacity), not business as usual, or the bound would cut off optima the LP allows.
    """
    supply_most = arrays.supply_amount.astype(float).copy()
    demand_most = arrays.demand_amount.astype(float).copy()
    if arrays.n_processors:
        capacity = np.nan_to_num(arrays.processor_capacity, nan=np.inf)
        supply_most[arrays.out_rows] = arrays.out_per_unit * capacity[arrays.out_p]
        demand_most[arrays.in_rows] = arrays.in_per_unit * capacity[arrays.in_p]
    s, d = arrays.arc_s[arcs], arrays.arc_d[arcs]
    ratio = arrays.ratio[arcs]
    bound = np.minimum(supply_most[s], demand_most[d] / ratio)
    bound = np.minimum(bound, arrays.share[d] * demand_most[d] / ratio)
    bound = np.fmin(bound, arrays.capacity[arcs])
    if len(arrays.intake_limit) == arrays.n_demands:  # tonnes received into the demand (NaN: none)
        bound = np.fmin(bound, arrays.intake_limit[d])
    block = arrays.facility_intake
    if block.n_rows and len(arcs):  # Σ coef·x over the facility's arcs ≤ L_f, so x_a ≤ L_f / coef
        per_arc = np.full(arrays.n_arcs, np.nan)
        row_of_term = block.term_rows()
        positive = block.coefs > 0
        np.fmin.at(per_arc, block.cols[positive],
                   arrays.facility_intake_limit[row_of_term[positive]] / block.coefs[positive])
        bound = np.fmin(bound, per_arc[arcs])
    permit = arrays.permit
    if permit.n_rows and len(arcs):  # Σ x over the arcs under a permit ≤ its tonnage (symbiosis.network.permits)
        per_arc = np.full(arrays.n_arcs, np.nan)
        np.fmin.at(per_arc, permit.cols, arrays.permit_limit[np.repeat(np.arange(permit.n_rows),
                                                                      np.diff(permit.ptr))])
        bound = np.fmin(bound, per_arc[arcs])
    return bound


class MipExchangeModel(ExchangeModel):
    """The exchange model with binaries for fixed connection costs (the module docstring has the steps).

    ``candidates.arcs`` needs ``fixed_cost_per_yr`` and ``min_flow`` (``connection_costs``); the arcs with
    neither (fixed cost NaN, minimum size 0) stay continuous. A carbon price or weight change is re-solved
    on the same instance, the fixed costs kept in the objective."""

    def _make_arrays(self, candidates: Candidates) -> ExchangeArrays:
        arrays = exchange_arrays(candidates)
        arcs = candidates.arcs
        fixed = (arcs["fixed_cost_per_yr"].to_numpy(float) if "fixed_cost_per_yr" in arcs.columns
                 else np.zeros(len(arcs)))
        least = arcs["min_flow"].to_numpy(float) if "min_flow" in arcs.columns else np.zeros(len(arcs))
        least = np.nan_to_num(least)
        if (fixed < 0).any() or (least < 0).any():
            raise ValueError("fixed_cost_per_yr and min_flow must be ≥ 0")
        chosen = np.flatnonzero(~np.isnan(fixed) | (least > 0))
        # An arc whose bound is 0 carries nothing whatever is built (its b would be in no row): no binary.
        chosen = chosen[link_bounds(arrays, chosen) > 0]
        arrays.binary_arcs = chosen
        arrays.fixed_cost = np.nan_to_num(fixed[chosen])
        arrays.min_flow = least[chosen]
        arrays.link_bound = link_bounds(arrays, chosen)
        return arrays

    def solve(self, *, method: str | None = None) -> Solution:
        arrays = self.arrays
        assert arrays.binary_arcs is not None and arrays.fixed_cost is not None
        if self.model is None or len(arrays.binary_arcs) == 0:
            solution = super().solve(method=method)  # no binaries: the LP is the MIP
            solution.parameters["mip"] = _report(solution.objective, solution.objective, 0.0, 0, 0, 0.0)
            return solution
        timings = dict(self.timings)
        if self._highs is None:  # a carbon price or weight change updates the costs in place
            start = time.perf_counter()
            self._handover()
            timings["handover"] = time.perf_counter() - start
        assert self._highs is not None
        lp = self._highs.lp
        n_binary = len(arrays.binary_arcs)
        lp_options = self._options()
        mip_options = {"solver": "choose", "time_limit": lp_options["time_limit"],
                       "primal_feasibility_tolerance": self.tolerance, "mip_rel_gap": 1e-9}

        start = time.perf_counter()
        relaxed = BlockSolver(replace(lp, integrality=None), decompose=self.decompose, threads=self.threads,
                              target_columns=self.block_columns).run(lp_options)
        timings["relaxation"] = time.perf_counter() - start
        start = time.perf_counter()
        result = self._highs.run(mip_options)
        timings["solve"] = time.perf_counter() - start
        import highspy

        if result.status != highspy.HighsModelStatus.kOptimal:
            raise SolverError(self._failure_message(result.status, result.termination) + " (mixed-integer mode)")
        built = np.round(result.col_value[-n_binary:])
        # Duals: those of the LP with the binaries fixed at their optimum (a MIP has none).
        col_lower, col_upper = lp.col_lower.copy(), lp.col_upper.copy()
        col_lower[-n_binary:] = built
        col_upper[-n_binary:] = built
        start = time.perf_counter()
        fixed_lp = BlockSolver(replace(lp, col_lower=col_lower, col_upper=col_upper, integrality=None),
                               decompose=self.decompose, threads=self.threads,
                               target_columns=self.block_columns).run(lp_options)
        timings["fixed_lp"] = time.perf_counter() - start
        solution = self._extract(fixed_lp)
        fixed_cost = float(arrays.fixed_cost @ built)
        solution.cost += fixed_cost
        solution.timings = timings
        relaxation = relaxed.objective if relaxed.status == highspy.HighsModelStatus.kOptimal else math.nan
        solution.parameters["mip"] = _report(result.objective, relaxation, result.mip_gap, n_binary,
                                             int(built.sum()), fixed_cost)
        solution.parameters["mip"]["built"] = arrays.binary_arcs[built > 0.5].tolist()
        solution.parameters["strategy"] = "mip"
        logger.info("mixed-integer exchange model: objective %.6g, LP relaxation %.6g, %d of %d connections built",
                    result.objective, relaxation, int(built.sum()), n_binary)
        return solution


def _report(objective: float, relaxation: float, highs_gap: float, n_binary: int, n_built: int,
            fixed_cost: float) -> dict[str, Any]:
    gap = (objective - relaxation) / abs(objective) if objective else 0.0
    return {"objective": float(objective), "lp_relaxation_objective": float(relaxation),
            "relaxation_gap": float(gap), "highs_mip_gap": float(highs_gap), "n_binaries": n_binary,
            "n_built": n_built, "fixed_cost": fixed_cost,
            "duals": "from the LP with the binaries fixed at their optimum"}


def solve_mip(candidates: Candidates, *, carbon_price: float | None = None, weights: Any = None,
              method: str = "ipm", threads: int | None = None, **options: Any) -> Solution:
    """Solve the exchange model in mixed-integer mode (``candidates.arcs`` with ``fixed_cost_per_yr`` and
    ``min_flow``; see ``connection_costs``)."""
    return MipExchangeModel(candidates, carbon_price=carbon_price, weights=weights, method=method, threads=threads,
                            **options).solve()
