"""Intake limits: what a receiver can physically take in, in tonnes *received* (Σ x_a, not ρ·x).

Two limits, both optional and in t/yr of secondary material received: per demand (the flow's
``max_intake_t_per_yr``) and per facility (``intake_capacity_t_per_yr`` on the facility, or its process
model's ``intake_capacity`` × activity), summed over every demand of the facility. ``demand_limits`` and
``facility_rows`` turn the candidate tables into the index sets of the two LP row families
(``symbiosis.exchange.model.add_intake_limits``); everything is vectorised over arcs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Demand columns (candidates.demands) carrying the limits; absent or NaN = no limit.
DEMAND_LIMIT = "max_intake_t_per_yr"
FACILITY_LIMIT = "facility_intake_t_per_yr"


def _limit_column(demands: pd.DataFrame, name: str) -> np.ndarray:
    if name not in demands.columns:
        return np.full(len(demands), np.nan)
    values = pd.to_numeric(demands[name], errors="coerce").to_numpy(dtype=float)
    finite = values[~np.isnan(values)]
    if (finite < 0).any() or np.isinf(finite).any():
        raise ValueError(f"candidates.demands.{name} must be finite and ≥ 0 (NaN for none)")
    return values


def demand_limits(demands: pd.DataFrame) -> np.ndarray:
    """Per demand position, its own intake limit in t/yr received (NaN: none)."""
    return _limit_column(demands, DEMAND_LIMIT)


def facility_rows(demands: pd.DataFrame, arc_d: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The facility intake rows: ``(row_of_arc_term, arc_positions, limits, facility_ids)``.

    One row per facility that has a limit and at least one arc into one of its demands; its terms are the
    arcs into any of its demands (coefficient 1). ``row_of_arc_term[k]`` is the row of term ``k``."""
    limit = _limit_column(demands, FACILITY_LIMIT)
    empty = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), np.zeros(0, dtype=object))
    if np.isnan(limit).all() or len(arc_d) == 0:
        return empty
    facility = demands["facility_id"].to_numpy()
    limited = ~np.isnan(limit[arc_d])
    arcs = np.flatnonzero(limited)
    if len(arcs) == 0:
        return empty
    ids, row = np.unique(facility[arc_d[arcs]].astype(str), return_inverse=True)
    first_demand = pd.Series(limit, index=facility.astype(str)).groupby(level=0).min()
    return row.astype(np.int64), arcs.astype(np.int64), first_demand.loc[ids].to_numpy(float), ids.astype(object)
