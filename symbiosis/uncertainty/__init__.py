"""Monte Carlo robustness and sensitivity of the exchange optimum (docs/uncertainty.md).

``uncertain_inputs`` reads what is uncertain in a region, ``draw`` draws it, ``monte_carlo`` solves every
sample on warm models (serially, on a process pool or on Dask) and the ``*_table`` functions summarise.
"""

from symbiosis.uncertainty.analysis import (
    ROBUST_PROBABILITY,
    MonteCarlo,
    convergence_table,
    exchange_table,
    inputs_table,
    kpi_table,
    measure_first,
    monte_carlo,
    sensitivity_table,
)
from symbiosis.uncertainty.draws import Draws, draw, uncertain_inputs
from symbiosis.uncertainty.run import KPI_NAMES, KPIS, SchedulerError

__all__ = ["KPIS", "KPI_NAMES", "ROBUST_PROBABILITY", "Draws", "MonteCarlo", "SchedulerError", "convergence_table",
           "draw", "exchange_table", "inputs_table", "kpi_table", "measure_first", "monte_carlo",
           "sensitivity_table", "uncertain_inputs"]
