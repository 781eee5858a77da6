"""Re-solving one exchange model for a series of runs that differ only in parameters (scenarios).

A :class:`WarmSolver` keeps the last :class:`~symbiosis.exchange.solve.ExchangeModel` it built. Given new
candidates with the same structure (the same arcs between the same supplies and demands, the same rows:
share, quality, intake limits), it changes amounts, prices, fate costs, transport and processing costs,
emissions, capacities, intake limits, ratios, the carbon price and the weights in place and re-solves from the
last basis; otherwise it builds a new model. The optimum is a fresh solve's (the same objective; at a
degenerate optimum another vertex of the same value may be returned). ``symbiosis compare`` keeps one per
worker process and base region.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np

from symbiosis.candidates import Candidates
from symbiosis.exchange.model import ExchangeArrays, exchange_arrays, resolve_weights
from symbiosis.exchange.solve import ExchangeModel, Solution, _carbon_price

logger = logging.getLogger(__name__)


def same_structure(a: ExchangeArrays, b: ExchangeArrays) -> bool:
    """Whether two models have the same columns and rows (only right-hand sides, bounds, costs and ratios may
    differ): the condition for changing one into the other in place."""
    if (a.n_arcs, a.n_supplies, a.n_demands) != (b.n_arcs, b.n_supplies, b.n_demands):
        return False
    if a.n_processors or b.n_processors or a.binary_arcs is not None or b.binary_arcs is not None:
        return False
    pairs = [(a.arc_s, b.arc_s), (a.arc_d, b.arc_d), (a.share, b.share), (a.share_demands, b.share_demands),
             (a.intake_demands, b.intake_demands), (a.quality.ptr, b.quality.ptr), (a.quality.cols, b.quality.cols),
             (a.quality.coefs, b.quality.coefs), (a.facility_intake.ptr, b.facility_intake.ptr),
             (a.facility_intake.cols, b.facility_intake.cols), (np.isnan(a.capacity), np.isnan(b.capacity))]
    if not all(x.shape == y.shape and np.array_equal(x, y) for x, y in pairs):
        return False
    rows_a, rows_b = a.quality_rows, b.quality_rows
    return len(rows_a) == len(rows_b) and bool(
        (rows_a["d"].to_numpy() == rows_b["d"].to_numpy()).all()
        and (rows_a["bound"].to_numpy() == rows_b["bound"].to_numpy()).all())


class WarmSolver:
    """Solve candidates, re-using the last model in place when only parameters changed (see the module)."""

    def __init__(self) -> None:
        self.model: ExchangeModel | None = None
        self.reused = 0
        self.built = 0

    def solve(self, candidates: Candidates, *, carbon_price: float | None = None,
              weights: Mapping[str, float] | None = None, method: str = "ipm", threads: int | None = None,
              **options: Any) -> Solution:
        """The optimum of ``candidates`` (arguments as :func:`~symbiosis.exchange.solve.solve_exchange`)."""
        new = exchange_arrays(candidates)
        model = self.model
        if model is not None and model.model is not None and model._highs is not None and new.n_arcs \
                and same_structure(model.arrays, new) and not options:
            self._update(model, new, _carbon_price(candidates, carbon_price), weights)
            model.candidates = candidates
            self.reused += 1
            solution = model.resolve()
            solution.parameters["reused_model"] = True
            return solution
        self.model = ExchangeModel(candidates, carbon_price=carbon_price, weights=weights, method=method,
                                   threads=threads, **options)
        self.built += 1
        return self.model.solve()

    @staticmethod
    def _update(model: ExchangeModel, new: ExchangeArrays, carbon_price: float,
                weights: Mapping[str, float] | None) -> None:
        old = model.arrays
        old.distance_km, old.max_distance_km = new.distance_km, new.max_distance_km
        model.set_amounts(supply=new.supply_amount, demand=new.demand_amount)
        model.set_capacity(new.capacity)
        if len(new.intake_demands):
            model.set_intake_limits(demand=new.intake_limit)
        else:
            old.intake_limit = new.intake_limit
        if new.facility_intake.n_rows:
            model.set_intake_limits(facility=new.facility_intake_limit)
        model.set_ratios(new.ratio)
        model.carbon_price = float(carbon_price)
        model.weights = dict(zip(("cost", "co2e"), resolve_weights(weights), strict=True))
        model.set_costs(arc_cost=new.arc_cost, fate_cost=new.fate_cost, virgin_price=new.virgin_price,
                        arc_co2e=new.arc_co2e, fate_co2e=new.fate_co2e, virgin_co2e=new.virgin_co2e)


__all__ = ["WarmSolver", "same_structure"]
