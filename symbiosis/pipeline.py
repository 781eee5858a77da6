"""The whole pipeline as functions: region -> candidates -> exchange model -> results -> outputs.

Each stage stays a pure function of the previous stage's object; this module only chains them, times them
(logged at INFO) and writes the resolved parameters beside every run's outputs.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from symbiosis.atomic import in_folder, output_folder, write_text_atomic
from symbiosis.candidates import Candidates
from symbiosis.candidates import candidates as build_candidates
from symbiosis.errors import Problems, SymbiosisError
from symbiosis.region import Defaults, Region

if TYPE_CHECKING:
    from symbiosis.results import Results

logger = logging.getLogger(__name__)

Progress = Callable[[str], None]


@dataclass
class Timings:
    """Seconds per stage, in pipeline order."""

    stages: dict[str, float] = field(default_factory=dict)

    def record(self, stage: str, started: float) -> None:
        self.stages[stage] = time.perf_counter() - started
        logger.info("stage %s: %.3f s", stage, self.stages[stage])


#: The command-line option of each run parameter, named in error messages.
OPTION_OF = {"max_distance_km": "--max-distance", "circuity": "--circuity", "carbon_price": "--carbon-price",
             "transport_cost_per_tkm": "--transport-cost"}


def check_overrides(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The non-None run-parameter overrides, checked by the rules that check ``region.yaml``'s defaults.

    Every override goes through :class:`symbiosis.region.Defaults` (finite numbers, circuity >= 1, costs,
    emissions and carbon price >= 0, distances > 0), whether it comes from the command line, a scenario or
    ``optimise(**overrides)``, so the rules are written once. Unknown keys and bad values are collected
    and raised together as an :class:`~symbiosis.errors.InputError`.
    """
    problems = Problems()
    known = set(Defaults.model_fields)
    given = {key: value for key, value in overrides.items() if value is not None}
    for key in sorted(set(given) - known):
        problems.add("run parameters", "unknown parameter", column=key, found=key, expected=", ".join(known))
        given.pop(key)
    try:
        Defaults.model_validate(given)
    except ValidationError as exc:
        for error in exc.errors():
            key = ".".join(str(part) for part in error["loc"])
            option = OPTION_OF.get(key)
            problems.add("run parameters", error["msg"], column=key, found=error.get("input"),
                         expected="a finite number within the range region.yaml accepts (docs/data-format.md)",
                         fix=f"correct {option} on the command line, or the argument" if option else None)
    problems.raise_if_any()
    return given


def check_finite_kpis(results: Results) -> None:
    """Refuse results whose indicators are not finite numbers (an overflow in the data or the parameters)."""
    bad = sorted(key for key, value in results.kpis.items()
                 if isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isfinite(value))
    if bad:
        raise SymbiosisError(
            f"the results are not finite numbers ({', '.join(bad)}): a parameter or a figure of the region is "
            "so large that the sums overflow; nothing was written")


COLUMN_GENERATION_FROM_ARCS = 20_000
COLUMN_GENERATION_DENSITY = 20.0  # candidate arcs per supply and demand


#: From this many candidate arcs a whole LP is handed to HiGHS mostly from the arrays, not through a Pyomo model
#: of every arc (symbiosis.exchange.grow.solve_whole: the same LP and optimum, about half the memory).
WHOLE_LP_GROWN_FROM_ARCS = 200_000


def choose_strategy(cands: Candidates) -> str:
    """``column_generation`` or ``monolithic``: the rule ``optimise(strategy="auto")`` follows.

    Column generation pays where supplies have many candidate partners and use few of them: with its warm
    rounds it was measured 2.5-2.9x faster than the whole LP on generated regions of 2,000 facilities (23
    arcs per supply and demand) and 20x at 5,700 (64); on the arcs-only stress family (12.5, many arcs worth
    using) the master soon holds most of the LP and the monolithic solve is 5x faster (docs/performance.md,
    "Warm rounds of column generation"). 20 arcs per supply and demand lies between. Processors, heat and
    intake limits do not change the choice: column generation prices every row family their arcs enter
    (symbiosis.exchange.colgen.ARC_ROW_FAMILIES), so large regions with them keep the fast path.
    """
    density = len(cands.arcs) / max(1, len(cands.supplies) + len(cands.demands))
    big = len(cands.arcs) >= COLUMN_GENERATION_FROM_ARCS
    return "column_generation" if big and density >= COLUMN_GENERATION_DENSITY else "monolithic"


def optimise(region: Region, *, method: str = "ipm", strategy: str = "auto", progress: Progress | None = None,
             timings: Timings | None = None, threads: int | None = None, mode: str = "lp",
             reconciled: bool = False, warm: Any = None, tiles: str | int | None = "off",
             scheduler: str | None = None, arcs: bool = False, **overrides: Any) -> Results:
    """Candidates, exchange model and results for a region (parameters override region.yaml defaults).

    ``strategy``: ``monolithic`` hands every candidate arc to HiGHS; ``column_generation`` solves a restricted
    model and prices all arcs until none improves (the same optimum, see symbiosis/exchange/colgen.py);
    ``auto`` (default) uses column generation from 20,000 candidate arcs when there are at least 20 arcs per
    supply and demand, where it was measured faster (docs/performance.md). Either way the LP's independent
    blocks are solved apart, ``threads`` at a time (default: the CPUs the process may use;
    symbiosis/exchange/blocks.py). ``mode="mip"`` adds the fixed annual costs and minimum sizes of
    connections as binaries (symbiosis/energy/mip.py; column generation is then not used); ``"lp"`` (default)
    leaves them out. ``reconciled=True`` optimises on the reconciled mass flows
    (symbiosis/account/reconcile.py): every supply and demand takes its reconciled amount, unmeasured flows
    their estimate, and ``kpis["reconciled_flows"]`` is true, with the global test's figures beside it.
    ``warm`` (a symbiosis.exchange.reuse.WarmSolver) re-solves its last model in place when
    only parameters changed since (the monolithic LP only; ``symbiosis compare`` passes one).
    ``tiles`` (``off``, the default here; ``auto`` or a number, as ``symbiosis run --tiles``) makes and prices
    the candidate arcs tile by tile (symbiosis/tiled_run.py; the same optimum, never every arc in memory at
    once), with ``scheduler`` (a Dask address or ``local``) on Dask workers. ``arcs=True`` keeps every candidate
    arc readable after the solve (``results.arcs``; a tiled run keeps its tiles on disk for it), so that
    :func:`write_outputs` writes ``candidates.csv`` / ``candidates.parquet`` (symbiosis.outputs.arcs; the annual
    LP only).
    """
    from symbiosis.exchange import solve_column_generation, solve_exchange
    from symbiosis.results import evaluate

    timings = timings or Timings()
    say = progress or (lambda _message: None)
    weights = overrides.pop("weights", None)
    if arcs and (region.time is not None or mode != "lp"):
        raise SymbiosisError("--arcs writes the candidate arcs of the annual LP: not with periods or stores, nor "
                             "with --mip")
    check_overrides(overrides)
    reconciliation = None
    if reconciled:
        from symbiosis.account.reconcile import reconcile_network, reconciled_region

        started = time.perf_counter()
        say("reconciling the mass flows")
        reconciliation = reconcile_network(region)
        region = reconciled_region(region, reconciliation)
        timings.record("reconcile", started)
    if tiles != "off" or scheduler is not None:
        from symbiosis.tiled_run import optimise_tiled, tile_count

        n_tiles = tile_count(region, tiles)
        plain = region.time is None and mode == "lp" and warm is None
        if n_tiles is not None and not plain and tiles not in (None, "auto"):
            raise SymbiosisError("--tiles works on the annual LP only (no periods or stores, no --mip)")
        if scheduler is not None and (n_tiles is None or not plain):
            raise SymbiosisError("--scheduler prices tiles of candidate arcs: give --tiles N (or auto on a region "
                                 "that auto tiles) on the annual LP")
        if n_tiles is not None and plain:
            results = optimise_tiled(region, n_tiles, method=method, threads=threads, weights=weights,
                                     scheduler=scheduler, timings=timings, say=say, arcs=arcs, **overrides)
            _record_reconciliation(results, reconciliation)
            check_finite_kpis(results)
            return results
    started = time.perf_counter()
    say("screening candidate exchanges")
    cands = build_candidates(region, **overrides)
    if weights:
        cands.parameters["weights"] = weights
    timings.record("candidates", started)
    started = time.perf_counter()
    say(f"solving the exchange model ({len(cands.arcs):,} candidate arcs)")
    if strategy not in ("auto", "monolithic", "column_generation"):
        raise ValueError(f"strategy must be auto, monolithic or column_generation, got {strategy!r}")
    if mode not in ("lp", "mip"):
        raise ValueError(f"mode must be lp or mip, got {mode!r}")
    if region.time is not None:  # periods or stores: the time-expanded LP (symbiosis/periods/)
        results = _optimise_periods(region, cands, mode=mode, method=method, threads=threads, weights=weights,
                                    timings=timings, say=say, strategy=strategy)
        _record_reconciliation(results, reconciliation)
        check_finite_kpis(results)
        return results
    use_cg = strategy == "column_generation" or (strategy == "auto" and choose_strategy(cands) == "column_generation")
    solve = solve_column_generation if use_cg else solve_exchange
    if not use_cg and len(cands.arcs) >= WHOLE_LP_GROWN_FROM_ARCS:
        from symbiosis.exchange.grow import solve_whole

        solve = solve_whole  # type: ignore[assignment]  # the same LP, most of it added from the arrays
    if warm is not None and not use_cg and mode == "lp":
        solve = warm.solve
    if mode == "mip":
        from symbiosis.energy.mip import connection_costs, solve_mip

        cands, solve = connection_costs(region, cands), solve_mip
    solution = solve(cands, carbon_price=float(cands.parameters["carbon_price"]),  # type: ignore[arg-type]
                     weights=weights, method=method, threads=threads)  # type: ignore[arg-type]
    timings.record("solve", started)
    started = time.perf_counter()
    say("evaluating results against business as usual")
    results = evaluate(region, cands, solution)
    if cands.permit_screened is not None and len(cands.permit_screened):
        from symbiosis.network.permits import opportunities

        say("pricing the exchanges a permit change would allow")
        results.permit_opportunities = opportunities(
            cands, solution, lambda c: solve_exchange(c, carbon_price=float(cands.parameters["carbon_price"]),  # type: ignore[arg-type]
                                                      weights=weights, method=method, threads=threads))
    if arcs:
        from symbiosis.outputs.arcs import WholeArcs

        results.arcs = WholeArcs(cands, solution)
    timings.record("results", started)
    _record_reconciliation(results, reconciliation)
    check_finite_kpis(results)
    return results


def _record_reconciliation(results: Results, reconciliation: Any) -> None:
    """The reconciliation the run optimised on, in its KPIs and parameters (nothing when there is none)."""
    if reconciliation is not None:
        test = reconciliation.global_test
        results.kpis.update({"reconciled_flows": True, "reconciliation_chi_square": test["chi_square"],
                             "reconciliation_dof": test["dof"],
                             "reconciliation_p_value": test["p_value"] if test["dof"] else None,
                             "reconciliation_gross_errors": test["n_gross_errors"]})
        results.parameters["reconciled"] = True
        results.reconciliation = reconciliation


def _optimise_periods(region: Region, cands: Candidates, *, mode: str, method: str, threads: int | None,
                      weights: Any, timings: Timings, say: Progress, strategy: str = "auto") -> Results:
    from symbiosis.periods.solve import optimise_periods

    if mode != "lp":
        raise SymbiosisError("the mixed-integer mode (--mip) does not handle periods or stores yet: run the LP")
    started = time.perf_counter()
    results = optimise_periods(region, cands, carbon_price=float(cands.parameters["carbon_price"]),
                               weights=weights, method=method, threads=threads, strategy=strategy)
    timings.record("solve", started)
    return results


def write_parameters(results: Results, out_dir: Path, extra: dict[str, object] | None = None, *,
                     public: bool = True, region: Region | None = None) -> Path:
    """The resolved parameters of the run, beside its outputs, so a result can always be reproduced.

    A top-level ``disclosure`` field says whether the folder is public (with how many confidential
    facilities were masked, and the parameters scrubbed of their names and ids) or private."""
    from symbiosis import disclosure

    parameters: Any = results.parameters
    extra = dict(extra or {})
    n_masked = 0
    if public:
        d = disclosure.for_results(results, region)
        parameters, extra, n_masked = d.data(dict(parameters or {})), d.data(extra), d.n
    record = {**disclosure.marker(not public, n_masked), "parameters": parameters, **extra}
    return write_text_atomic(out_dir / "parameters.json", json.dumps(record, indent=2, default=str) + "\n")


def write_outputs(results: Results, region: Region, out_dir: Path, *, self_contained: bool = False,
                  progress: Progress | None = None, pngs: bool = True, public: bool = True,
                  period: str | None = None, parquet: bool | None = None) -> dict[str, Path]:
    """Tables, GeoPackage, map, report and slide PNGs for one run, as one folder; ``public=False`` for a
    private run that shows every confidential figure (docs/outputs.md, "Confidential facilities").
    ``period`` (a region with periods): the map, report and slide PNGs show that period
    (symbiosis.periods.view); the tables stay annual, beside the per-period ones. ``parquet`` as
    :func:`symbiosis.outputs.export.write_results` has it (None: Parquet copies of the large tables only).

    Everything is written into a staging folder beside ``out_dir`` with a ``manifest.json`` and then swapped
    into place whole (:func:`symbiosis.atomic.output_folder`): ``out_dir`` holds this run's files or the
    previous run's, never a mix. Returns the paths in ``out_dir``.
    """
    with output_folder(out_dir) as stage:
        written = _write_outputs(results, region, stage, self_contained=self_contained, progress=progress,
                                 pngs=pngs, public=public, period=period, parquet=parquet)
    return in_folder(out_dir, stage, written)


def _write_outputs(results: Results, region: Region, out_dir: Path, *, self_contained: bool,
                   progress: Progress | None, pngs: bool, public: bool, period: str | None = None,
                   parquet: bool | None = None
                   ) -> dict[str, Path]:
    from symbiosis.outputs.export import write_results
    from symbiosis.outputs.mapping import save_map
    from symbiosis.outputs.report import write_report

    say = progress or (lambda _message: None)
    written: dict[str, Path] = {}
    shown = results
    if period is not None:  # the pages show one period; every table stays annual
        from symbiosis.periods.view import period_results_view

        say(f"cutting out the period {period}")
        shown = period_results_view(region, results, period)
    say("writing tables and GeoPackage")
    for name, path in write_results(results, out_dir, public=public, region=region, parquet=parquet).items():
        if name.endswith(".parquet"):
            written[name] = path
    if results.arcs is not None:  # optimise(..., arcs=True): every candidate arc, streamed
        from symbiosis.outputs.arcs import write_arcs

        say("writing every candidate arc")
        written.update(write_arcs(results.arcs, out_dir, public=public, results=results, region=region,
                                  parquet=parquet))
    written["parameters"] = write_parameters(results, out_dir, {"region": region.name, "source": region.source},
                                             public=public, region=region)
    if results.reconciliation is not None:  # optimise(..., reconciled=True): the flows it optimised on
        from symbiosis.account.reconcile import write_reconciliation
        from symbiosis.disclosure import complementary_facilities, for_results

        for path in write_reconciliation(results.reconciliation, out_dir,
                                         for_results(results, region) if public else None,
                                         complementary_facilities(results.facilities)):
            written[path.name] = path
    say("writing the report and the map")
    written["report"] = write_report(shown, out_dir, region=region, self_contained=self_contained, public=public)
    written["map"] = out_dir / "map.html"
    if self_contained:  # the self-contained report inlines its map; still leave map.html beside it
        written["map"] = save_map(shown, out_dir / "map.html", public=public, self_contained=True)
    if pngs:
        from symbiosis.outputs.static import exchange_map_png, kpi_bars_png

        say("rendering slide images")
        written["map_png"] = exchange_map_png(shown, out_dir / "exchange_map.png", public=public)
        written["kpi_png"] = kpi_bars_png(shown, out_dir / "kpis.png")
        if results.periods is not None:
            from symbiosis.periods.outputs import periods_png

            written["periods_png"] = periods_png(results, out_dir / "periods.png", public=public,  # type: ignore[assignment]
                                                 region=region)
    return written
