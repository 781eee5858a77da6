"""symbiosis: an industrial symbiosis network optimiser (balances, a Pyomo/HiGHS exchange model, maps, reports)."""

import pandas as _pd

# pyarrow (for the Parquet outputs) makes pandas 3 keep text columns in Arrow buffers unless told otherwise, and
# the pipeline's per-element text work is slower there: measured on a generated 10,000-facility region,
# load_region 4.0-4.2 s against 2.7-3.3 s and candidates 6.4-6.7 s against 5.2-5.4 s, peak memory +170 MiB
# (docs/performance.md, "Continental scale"). Keep Python-backed strings, as without pyarrow, unless the user
# chose a storage.
if _pd.get_option("mode.string_storage") == "auto":
    _pd.set_option("mode.string_storage", "python")

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
