"""Solving the Monte Carlo samples: one warm exchange model per worker, re-solved in place per sample.

Each worker (this process, a process of a pool, or a Dask worker) builds the exchange model once, solves the
base case and keeps its HiGHS basis; every sample then sets its drawn amounts in place
(:meth:`ExchangeModel.set_amounts`) and re-solves with the simplex from that base basis. Starting every sample
from the same basis makes its answer independent of which samples the worker solved before, so the same seed
gives the same results serially, on a process pool and on Dask. Workers return KPI rows and the non-zero
flows only; the calling process writes every file.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Executor, Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from symbiosis.candidates import Candidates
from symbiosis.errors import SymbiosisError
from symbiosis.uncertainty.draws import Draws, apply_draw, apply_prices, has_prices

logger = logging.getLogger(__name__)

#: An arc carries an exchange above this flow (t/yr or MWh/yr), as in symbiosis.results.
FLOW_TOLERANCE = 1e-6

#: The KPIs drawn per sample (names as in kpis.json, docs/architecture.md) and their units.
KPIS: list[tuple[str, str]] = [
    ("net_cost_saving", "currency/yr"),
    ("net_saving_incl_carbon", "currency/yr"),
    ("cost_optimum", "currency/yr"),
    ("cost_bau", "currency/yr"),
    ("co2e_avoided_t", "t CO2e/yr"),
    ("co2e_optimum_t", "t CO2e/yr"),
    ("co2e_bau_t", "t CO2e/yr"),
    ("waste_diverted_t", "t/yr"),
    ("landfill_diverted_t", "t/yr"),
    ("incineration_diverted_t", "t/yr"),
    ("virgin_avoided_t", "t/yr"),
    ("water_saved_m3", "m3/yr"),
    ("tkm", "t·km/yr"),
    ("heat_shipped_mwh", "MWh/yr"),
    ("heat_delivered_mwh", "MWh/yr"),
    ("n_exchanges", ""),
    ("n_facilities_participating", ""),
]
KPI_NAMES = [name for name, _ in KPIS]

#: With the default workers, samples are solved in this process while the rest would take less than this many
#: seconds (starting a pool of processes, each importing the package and building its model, costs more).
SERIAL_BELOW = 20.0
#: Seconds a pool of processes is assumed to need before its workers start warming their models (spawn,
#: imports, the candidate tables pickled to each); measured 5-10 s on the 2-core development machine.
SPAWN_SECONDS = 8.0

#: Seconds to wait for a Dask scheduler to answer before giving up.
SCHEDULER_TIMEOUT = 10.0


class SchedulerError(SymbiosisError):
    """The Dask scheduler given with --scheduler did not answer."""


@dataclass
class KpiStatics:
    """What the KPIs need of the candidate tables that no sample changes (computed once per worker)."""

    fate_kind: np.ndarray
    is_material: np.ndarray
    is_water: np.ndarray
    density: np.ndarray
    energy_arc: np.ndarray
    supply_facility: np.ndarray
    demand_facility: np.ndarray

    @classmethod
    def of(cls, candidates: Candidates) -> KpiStatics:
        from symbiosis.energy.heat import is_energy

        dem, arcs = candidates.demands, candidates.arcs
        material_class = dem["material_class"].astype(str).to_numpy()
        codes, index = np.unique(np.r_[arcs["supply_facility"].astype(str).to_numpy(),
                                       arcs["demand_facility"].astype(str).to_numpy()], return_inverse=True)
        n_a = len(arcs)
        return cls(
            fate_kind=candidates.supplies["fate_kind"].astype(str).to_numpy(),
            is_material=~np.isin(material_class, ["water", "seawater", "energy"]) & ~is_energy(dem),
            is_water=material_class == "water",
            density=pd.to_numeric(dem["density_t_per_m3"], errors="coerce").to_numpy(float),
            energy_arc=is_energy(candidates.supplies)[arcs["s"].to_numpy(np.int64)] if n_a else np.zeros(0, bool),
            supply_facility=index[:n_a], demand_facility=index[n_a:],
        )


def sample_kpis(arrays: Any, solution: Any, statics: KpiStatics, carbon_price: float) -> np.ndarray:
    """The KPIs of one solved sample, in the order of :data:`KPI_NAMES`, by the definitions of
    symbiosis.results (docs/architecture.md, ``kpis``), from the model's current amounts."""
    x, w, y = solution.x, solution.w, solution.y
    z = solution.z if len(solution.z) else arrays.processor_bau
    columns = np.concatenate([x, w, y, z])
    bau = arrays.bau_columns()
    cost_vector, co2e_vector = arrays.cost_vector(), arrays.co2e_vector()
    cost_bau, cost_opt = float(cost_vector @ bau), float(cost_vector @ columns)
    co2e_bau, co2e_opt = float(co2e_vector @ bau), float(co2e_vector @ columns)
    amount = arrays.supply_amount.copy()
    if arrays.n_processors:
        amount[arrays.out_rows] = arrays.out_per_unit * z[arrays.out_p]
    diverted = amount - w
    landfill = float(diverted[statics.fate_kind == "landfill"].sum())
    incineration = float(diverted[statics.fate_kind == "incineration"].sum())
    replaced = np.bincount(arrays.arc_d, weights=arrays.ratio * x, minlength=arrays.n_demands)
    water = statics.is_water & (replaced > 0)
    used = x > FLOW_TOLERANCE
    heat = used & statics.energy_arc
    participating = np.unique(np.r_[statics.supply_facility[used], statics.demand_facility[used]])
    return np.array([
        cost_bau - cost_opt,
        (cost_bau - cost_opt) + carbon_price * (co2e_bau - co2e_opt),
        cost_opt, cost_bau,
        co2e_bau - co2e_opt, co2e_opt, co2e_bau,
        landfill + incineration, landfill, incineration,
        float(replaced[statics.is_material].sum()),
        float((replaced[water] / statics.density[water]).sum()),
        float((arrays.distance_km * x)[~statics.energy_arc].sum()),
        float(x[heat].sum()), float((arrays.ratio * x)[heat].sum()),
        float(used.sum()), float(len(participating)),
    ])


@dataclass
class ChunkResult:
    """What a worker returns for consecutive samples ``first ..``: KPI rows (NaN where a sample failed), the
    arcs each sample uses and their flows, and the errors of failed samples."""

    first: int
    kpis: np.ndarray
    used: list[tuple[np.ndarray, np.ndarray]]
    errors: dict[int, str] = field(default_factory=dict)
    seconds: float = 0.0
    #: Of ``seconds``, the time spent building and solving the worker's base model (0 once it is warm).
    warm_seconds: float = 0.0


@dataclass
class _Warm:
    model: Any
    basis: Any
    statics: KpiStatics
    supply: np.ndarray
    demand: np.ndarray
    carbon_price: float
    fate_cost: np.ndarray
    virgin_price: np.ndarray

    @classmethod
    def of(cls, model: Any, candidates: Candidates) -> _Warm:
        """A solved model at the stated parameters, its basis and base arrays."""
        a = model.arrays
        return cls(model, model.basis(), KpiStatics.of(candidates), a.supply_amount.copy(), a.demand_amount.copy(),
                   float(model.carbon_price), a.fate_cost.copy(), a.virgin_price.copy())


# Per process: the payload a pool's initializer handed over, and the warm models, per run and thread.
_SHARED: dict[str, tuple[Candidates, float, pd.DataFrame]] = {}
_WARM: dict[tuple[str, int], _Warm] = {}


def _init_worker(token: str, payload: tuple[Candidates, float, pd.DataFrame]) -> None:
    _SHARED[token] = payload


def _warm(token: str, payload: tuple[Candidates, float, pd.DataFrame] | None) -> _Warm:
    key = (token, threading.get_ident())
    if key not in _WARM:
        from symbiosis.exchange import ExchangeModel

        candidates, carbon_price, _ = payload if payload is not None else _SHARED[token]
        for old in [k for k in _WARM if k[1] == key[1]]:  # one run at a time per thread: free the last
            del _WARM[old]
        model = ExchangeModel(candidates, carbon_price=carbon_price, threads=1)
        model.solve()
        _WARM[key] = _Warm.of(model, candidates)
    return _WARM[key]


def solve_chunk(token: str, payload: tuple[Candidates, float, pd.DataFrame] | None, values: np.ndarray,
                first: int) -> ChunkResult:
    """Solve samples ``first .. first + len(values) - 1`` (rows of drawn input values) on this worker's warm
    model; a sample the solver fails on is reported, the others go on."""
    started = time.perf_counter()
    warm = _warm(token, payload)
    warm_seconds = time.perf_counter() - started
    inputs = (payload if payload is not None else _SHARED[token])[2]
    kpis = np.full((len(values), len(KPI_NAMES)), np.nan)
    used: list[tuple[np.ndarray, np.ndarray]] = []
    errors: dict[int, str] = {}
    prices = has_prices(inputs)
    for i, row in enumerate(values):
        supply, demand = apply_draw(inputs, row, warm.supply, warm.demand)
        try:
            warm.model.set_amounts(supply=supply, demand=demand)
            if prices:
                fate_cost, virgin_price = apply_prices(inputs, row, warm.fate_cost, warm.virgin_price)
                warm.model.set_costs(fate_cost=fate_cost, virgin_price=virgin_price)
            solution = warm.model.resolve(start=warm.basis)
        except Exception as exc:  # a sample that fails is reported; the others go on
            errors[first + i] = f"{type(exc).__name__}: {exc}"
            used.append((np.zeros(0, np.int64), np.zeros(0)))
            continue
        kpis[i] = sample_kpis(warm.model.arrays, solution, warm.statics, warm.carbon_price)
        nz = np.flatnonzero(solution.x > FLOW_TOLERANCE)
        used.append((nz, solution.x[nz]))
    return ChunkResult(first, kpis, used, errors, time.perf_counter() - started, warm_seconds)


def connect(scheduler: str, timeout: float = SCHEDULER_TIMEOUT) -> Any:
    """A Dask distributed client of ``scheduler``, or :class:`SchedulerError` if it does not answer in time."""
    try:
        from distributed import Client
    except ImportError as exc:  # pragma: no cover - dask is an optional extra
        raise SchedulerError("--scheduler needs Dask distributed: pip install 'symbiosis[dask]'") from exc
    try:
        return Client(scheduler, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise SchedulerError(f"the Dask scheduler at {scheduler!r} did not answer within {timeout:g} s "
                             f"({type(exc).__name__}: {exc}); check the address (tcp://HOST:PORT) and that "
                             "`dask scheduler` runs there") from exc


def solve_samples(candidates: Candidates, draws: Draws, *, carbon_price: float, workers: int | None = None,
                  scheduler: str | None = None, client: Any = None, chunk_size: int | None = None,
                  progress: Callable[[int, int], None] | None = None,
                  timeout: float = SCHEDULER_TIMEOUT, warm_model: Any = None) -> list[ChunkResult]:
    """Solve every sample of ``draws``: serially (``workers=1``), on a process pool of ``workers`` processes
    (default: the CPUs this process may use, unless the first chunk shows the whole would take less than
    :data:`SERIAL_BELOW` seconds here), or on a Dask cluster (``scheduler`` address or a ``client``).
    ``progress(done, total)`` is called as samples finish. Chunks come back in sample order. ``warm_model``:
    an ExchangeModel of ``candidates`` already solved at the stated amounts, used by the samples solved in
    this process (it saves building a second one; its amounts are changed)."""
    from symbiosis.parallel import usable_cpus

    n = draws.n_samples
    asked = workers
    token = uuid.uuid4().hex
    payload = (candidates, float(carbon_price), draws.inputs)
    dask: Any = client
    own: Any = None
    if scheduler is not None and client is None:
        dask = own = connect(scheduler, timeout)  # before any work: an address that does not answer fails fast
    workers = max(1, sum(dask.nthreads().values())) if dask is not None else max(1, workers or usable_cpus())
    if chunk_size is None:
        # several chunks per worker, so that progress moves and a slow chunk does not leave cores idle
        chunk_size = max(1, min(250, math.ceil(n / (4 * workers))))
    starts = list(range(0, n, chunk_size))
    results: list[ChunkResult | None] = [None] * len(starts)
    done = 0

    def finished(k: int, result: ChunkResult) -> None:
        nonlocal done
        results[k] = result
        done += len(result.kpis)
        if progress is not None:
            progress(done, n)

    pending = list(enumerate(starts))
    if dask is None:
        # Solve here while that is cheaper than starting processes: always with workers=1, and by default
        # (workers not given) when the first chunk shows the rest would take less than SERIAL_BELOW seconds.
        probe = workers == 1 or asked is None
        if warm_model is not None and probe:
            _WARM[(token, threading.get_ident())] = _Warm.of(warm_model, candidates)
        solving = warming = 0.0
        while pending and probe:
            k, first = pending.pop(0)
            chunk = solve_chunk(token, payload, draws.values[first:first + chunk_size], first)
            finished(k, chunk)
            solving += chunk.seconds - chunk.warm_seconds
            warming += chunk.warm_seconds
            # Stay here unless a pool would be clearly faster: it must start its processes and warm a model
            # in each before it solves anything.
            rest = solving / done * (n - done)
            pool = SPAWN_SECONDS + max(warming, solving / done) + rest / workers
            probe = workers == 1 or rest < SERIAL_BELOW or pool > 0.8 * rest
        _WARM.pop((token, threading.get_ident()), None)
        if not pending:
            return [r for r in results if r is not None]

    executor: Executor | None = None
    shared: Any = None
    try:
        if dask is not None:
            shared = dask.scatter([payload], broadcast=True)[0]  # one object, not one per element
            executor = dask.get_executor()
        else:
            executor = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                           initializer=_init_worker, initargs=(token, payload))
        futures: dict[Future[ChunkResult], int] = {
            executor.submit(solve_chunk, token, shared, draws.values[first:first + chunk_size], first): k
            for k, first in pending}
        for future in as_completed(futures):
            finished(futures[future], future.result())
    finally:
        if own is not None:
            own.close()
        elif isinstance(executor, ProcessPoolExecutor):
            executor.shutdown(wait=True, cancel_futures=True)
    return [r for r in results if r is not None]


__all__ = ["KPIS", "KPI_NAMES", "ChunkResult", "KpiStatics", "SchedulerError", "connect", "sample_kpis",
           "solve_chunk", "solve_samples"]
