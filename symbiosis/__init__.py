"""symbiosis: an industrial symbiosis network optimiser (balances, a Pyomo/HiGHS exchange model, maps, reports)."""

from symbiosis.balances import Balances, balances, balances_after
from symbiosis.candidates import Candidates, candidates
from symbiosis.errors import InputError, Problem, SymbiosisError
from symbiosis.exchange import ExchangeModel, Solution, SolverError, solve_exchange
from symbiosis.inputs import check_region, load_region
from symbiosis.pipeline import optimise, write_outputs
from symbiosis.region import Region
from symbiosis.results import Results, evaluate

__version__ = "0.1.0"

__all__ = [
    "Balances",
    "Candidates",
    "ExchangeModel",
    "InputError",
    "Problem",
    "Region",
    "Results",
    "Solution",
    "SolverError",
    "SymbiosisError",
    "balances",
    "balances_after",
    "candidates",
    "check_region",
    "evaluate",
    "load_region",
    "optimise",
    "solve_exchange",
    "write_outputs",
]
