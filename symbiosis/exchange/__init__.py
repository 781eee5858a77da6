"""The exchange model (Pyomo LP) and its solve by HiGHS: Candidates → Solution."""

from symbiosis.exchange.colgen import reduced_costs, solve_column_generation
from symbiosis.exchange.model import (
    ExchangeArrays,
    add_arc_capacity,
    add_demand_balance,
    add_objective,
    add_quality_limits,
    add_share_limits,
    add_supply_balance,
    build_model,
    exchange_arrays,
)
from symbiosis.exchange.solve import ExchangeModel, Solution, SolverError, solve_exchange

__all__ = [
    "ExchangeArrays",
    "ExchangeModel",
    "Solution",
    "SolverError",
    "add_arc_capacity",
    "add_demand_balance",
    "add_objective",
    "add_quality_limits",
    "add_share_limits",
    "add_supply_balance",
    "build_model",
    "exchange_arrays",
    "reduced_costs",
    "solve_column_generation",
    "solve_exchange",
]
