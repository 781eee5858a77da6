r"""The cost–CO2e trade-off curve by the ε-constraint method, over one model re-solved, never rebuilt.

1. Minimise cost (carbon price 0): the cheapest network, with emissions :math:`E_{max}`.
2. Minimise emissions, then the cost at that emission level: :math:`E_{min}` and its cost.
3. For ε from :math:`E_{max}` down to :math:`E_{min}`: minimise cost subject to :math:`E \le ε`.

Each point is Pareto-optimal; cost never falls as the cap tightens (the curve is monotone, a tested
property). The dual of the cap is the carbon price that would produce that point. Between consecutive
points the exchanges that appear, disappear or change are listed.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from symbiosis.candidates import Candidates

logger = logging.getLogger(__name__)


@dataclass
class TradeOff:
    """``points``: one row per ε (cost, CO2e, implied carbon price, exchanges); ``changes``: exchanges that
    change between consecutive points."""

    points: pd.DataFrame
    changes: pd.DataFrame
    currency: str


def tradeoff(candidates: Candidates, *, n_points: int = 11, method: str = "ipm", tol: float = 1e-6) -> TradeOff:
    """Trace the curve at ``n_points`` caps evenly spaced between the cost-optimal and the CO2e-optimal network."""
    from symbiosis.exchange import ExchangeModel

    if n_points < 2:
        raise ValueError("n_points must be at least 2")
    model = ExchangeModel(candidates, carbon_price=0.0, method=method)
    cheapest = model.solve()
    model.set_weights({"cost": 0.0, "co2e": 1.0})
    greenest = model.resolve()
    e_max, e_min = cheapest.co2e_t, greenest.co2e_t
    model.set_weights({"cost": 1.0, "co2e": 0.0})
    # A little slack on the caps keeps HiGHS clear of rounding at the extreme point.
    slack = max(abs(e_max), 1.0) * 1e-9
    caps = np.linspace(e_max, e_min, n_points)
    arcs = candidates.arcs
    rows = []
    flows = []
    for k, eps in enumerate(caps):
        if k == 0:
            model.set_co2_cap(None)
            solution = cheapest
        else:
            model.set_co2_cap(float(eps) + slack)
            solution = model.resolve()
        used = solution.x > tol
        rows.append({
            "point": k, "co2e_cap_t": float(eps), "co2e_t": solution.co2e_t, "cost": solution.cost,
            "implied_carbon_price": 0.0 if k == 0 else (solution.co2e_cap_dual if not math.isnan(solution.co2e_cap_dual)
                                                        else 0.0),
            "n_exchanges": int(used.sum()), "exchanged_t": float(solution.x[used].sum()),
        })
        flows.append(solution.x.copy())
    points = pd.DataFrame(rows)
    changes = []
    for k in range(1, len(flows)):
        delta = flows[k] - flows[k - 1]
        for a in np.flatnonzero(np.abs(delta) > tol * np.maximum(1.0, np.abs(flows[k - 1]))):
            before, after = float(flows[k - 1][a]), float(flows[k][a])
            changes.append({
                "from_point": k - 1, "to_point": k, "supply_id": arcs["supply_id"].iat[a],
                "demand_id": arcs["demand_id"].iat[a], "supply_facility": arcs["supply_facility"].iat[a],
                "demand_facility": arcs["demand_facility"].iat[a],
                "change": "added" if before <= tol else "removed" if after <= tol else "changed",
                "before_t_per_yr": before, "after_t_per_yr": after,
            })
    columns = ["from_point", "to_point", "supply_id", "demand_id", "supply_facility", "demand_facility", "change",
               "before_t_per_yr", "after_t_per_yr"]
    currency = str(candidates.parameters.get("currency", "EUR"))
    return TradeOff(points, pd.DataFrame(changes, columns=columns), currency)


def plot_tradeoff(result: TradeOff, path: str, *, private: bool = False) -> str:
    """The curve as a PNG (cost against CO2e, each point labelled with its implied carbon price); a private
    run says so in the title."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from symbiosis.atomic import write_atomic

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    p = result.points
    ax.plot(p["co2e_t"], p["cost"], marker="o", color="#2b8cbe")
    for row in p.itertuples():
        ax.annotate(f"{row.implied_carbon_price:,.0f}", (row.co2e_t, row.cost), textcoords="offset points",
                    xytext=(4, 4), fontsize=7, color="#555")
    ax.set_xlabel("emissions, t CO2e/yr")
    ax.set_ylabel(f"system cost, {result.currency}/yr")
    ax.set_title(("PRIVATE: contains confidential data\n" if private else "")
                 + "Cost against CO2e (labels: implied carbon price per t CO2e)")
    ax.grid(alpha=0.3)
    from symbiosis.outputs.static import plain_axis

    plain_axis(ax.xaxis)  # plain numbers: no "1e8" or "+1.793e6" offset on a curve spanning a few hundred t
    plain_axis(ax.yaxis)
    fig.tight_layout()
    write_atomic(path, lambda tmp: fig.savefig(tmp, format="png"))
    plt.close(fig)
    return path
