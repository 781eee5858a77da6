"""``symbiosis uncertainty``: the command's body (registered in symbiosis/cli.py, imported when it runs)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from symbiosis.errors import InputError, Problem, SymbiosisError


def check_options(*, samples: int, seed: int, workers: int | None, robust: float, timeout: float) -> None:
    """Every option checked before any work: a mistake there costs no load and no solve."""
    problems = []
    if samples < 1:
        problems.append(Problem("command line", "too few samples", column="--samples", found=str(samples),
                                expected="a whole number ≥ 1"))
    if seed < 0:
        problems.append(Problem("command line", "a seed must not be negative", column="--seed", found=str(seed),
                                expected="a whole number ≥ 0"))
    if workers is not None and workers < 1:
        problems.append(Problem("command line", "too few workers", column="--workers", found=str(workers),
                                expected="a whole number ≥ 1"))
    if not (0.0 < robust <= 1.0):
        problems.append(Problem("command line", "not a probability", column="--robust", found=str(robust),
                                expected="a share above 0 and at most 1, e.g. 0.9"))
    if not (math.isfinite(timeout) and timeout > 0):
        problems.append(Problem("command line", "not a time", column="--timeout", found=str(timeout),
                                expected="seconds > 0"))
    if problems:
        raise InputError(problems)


def run(path: Path, *, samples: int, seed: int, scheduler: str | None, workers: int | None, out: Path,
        robust: float, timeout: float, private: bool, overrides: dict[str, Any]) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
    from rich.table import Table

    from symbiosis.atomic import output_folder, write_text_atomic
    from symbiosis.candidates import candidates
    from symbiosis.cli import _fail, _fmt, _load, _prepare, _say_disclosure, _text, console, err_console
    from symbiosis.disclosure import for_region
    from symbiosis.outputs.export import write_disclosure_note
    from symbiosis.results import evaluate
    from symbiosis.uncertainty.analysis import monte_carlo
    from symbiosis.uncertainty.outputs import parameters_json, public_tables, robustness_map, tables, write_tables
    from symbiosis.uncertainty.run import connect

    try:
        check_options(samples=samples, seed=seed, workers=workers, robust=robust, timeout=timeout)
    except SymbiosisError as exc:
        _fail(exc)
    overrides = _prepare(out, **overrides)
    client = None
    try:
        if scheduler:
            with console.status(f"connecting to the Dask scheduler at {scheduler}"):
                client = connect(scheduler, timeout)
        region = _load(path)
        if region.time is not None:  # the samples re-solve the annual model (symbiosis/periods/ not used)
            raise SymbiosisError("uncertainty does not handle periods or stores yet (region.yaml `periods:`, "
                                 "profiles.csv, stores.csv): its samples would ignore them; run it on the region "
                                 "without them")
        cands = candidates(region, **overrides)
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      console=console) as bar:
            task = bar.add_task("Monte Carlo samples", total=samples)
            mc = monte_carlo(region, cands, samples=samples, seed=seed, workers=workers, client=client,
                             progress=lambda done, total: bar.update(task, completed=done), timeout=timeout)
        if client is not None:
            mc.parameters["scheduler"] = scheduler
        if len(mc.failed) == samples:
            raise SymbiosisError(f"every sample failed; the first: {next(iter(mc.failed.values()))}")
        results = evaluate(region, cands, mc.base_solution)
        scrub = _say_disclosure(private, for_region(region))
        found = tables(mc, robust=robust)
        shown = found if private else public_tables(found, scrub)
        with output_folder(out) as stage:
            write_disclosure_note(stage, public=not private, n_masked=scrub.n)
            write_tables(stage, shown)
            write_text_atomic(stage / "parameters.json",
                              parameters_json(mc, robust=robust, private=private, n_masked=scrub.n))
            write_text_atomic(stage / "map.html", robustness_map(results, shown["exchanges.csv"], public=not private,
                                                                 robust=robust))
    except SymbiosisError as exc:
        _fail(exc)
    finally:
        if client is not None:
            client.close()
    _report(mc, shown, robust, out, console, err_console, _fmt, _text, Table)


def _report(mc: Any, shown: dict[str, Any], robust: float, out: Path, console: Any, err_console: Any, fmt: Any,
            text: Any, table_class: Any) -> None:
    kpis = shown["kpis.csv"]
    view = table_class(title=f"KPIs over {int(kpis['n_samples'].iat[0])} samples")
    for column in ("KPI", "unit", "base", "P5", "P50", "P95"):
        view.add_column(column, justify="left" if column in ("KPI", "unit") else "right")
    for row in kpis.itertuples(index=False):
        view.add_row(text(row.kpi), text(row.unit), fmt(row.base, 0), fmt(row.p5, 0), fmt(row.p50, 0),
                     fmt(row.p95, 0))
    console.print(view)
    exchanges = shown["exchanges.csv"]
    n_robust = int(exchanges["robust"].fillna(False).astype(bool).sum())
    console.print(f"{n_robust} robust exchange(s) (in ≥ {robust:.0%} of samples), {len(exchanges) - n_robust} "
                  f"fragile; measure first: see measure_first.csv", highlight=False)
    truncated = int(mc.draws.truncated.sum())
    if truncated:
        err_console.print(f"[yellow]warning:[/] {truncated} draw(s) of "
                          f"{int((mc.draws.truncated > 0).sum())} input(s) fell below 0 and were redrawn from the "
                          "normal truncated at 0 (inputs.csv, draws_truncated)", highlight=False)
    if mc.failed:
        err_console.print(f"[yellow]warning:[/] {len(mc.failed)} sample(s) failed and are left out of the "
                          "statistics (samples.csv, failed)", highlight=False)
    console.print(f"{mc.parameters['seconds_per_sample'] * 1000:.1f} ms per sample; outputs in {out}/",
                  highlight=False)
