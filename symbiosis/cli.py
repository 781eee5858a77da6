"""Command line: thin wrappers that parse, call the library, print with rich and write outputs.

No logic lives here: every command is a call into the package, so anything the CLI does can be done from
Python. Input problems print as a located list and exit with status 1, without a traceback.
"""

from __future__ import annotations

import enum
import logging
import math
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import pandas as pd
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from symbiosis.atomic import check_output_folder, output_folder
from symbiosis.errors import InputError, Problem, SymbiosisError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Industrial symbiosis network optimiser: balances, exchanges, maps and reports.")
# Wide enough for the balance tables when output goes to a file or a CI log; a terminal sets its own width.
console = Console(width=None if sys.stdout.isatty() else 200)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 200)

RegionPath = Annotated[Path, typer.Argument(help="Region folder, .xlsx workbook or .gpkg GeoPackage")]
OutDir = Annotated[Path, typer.Option("--out", "-o", help="Folder for the outputs")]
Private = Annotated[bool, typer.Option(
    "--private", help="Show confidential facilities' names, places and figures (an internal copy for the agency)")]


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("pyomo").setLevel(logging.WARNING)


def _fail(exc: Exception) -> NoReturn:
    if isinstance(exc, InputError):
        err_console.print(f"[bold red]{len(exc.problems)} problem(s) in the input:[/]")
        for problem in exc.problems:
            err_console.print(f"  • {problem}", markup=False, highlight=False, soft_wrap=True)
    else:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
    raise typer.Exit(code=1)


def _prepare(out: Path | None, **overrides: Any) -> dict[str, Any]:
    """Check the output folder and the run parameters before any work: a mistake there costs no solve."""
    from symbiosis.pipeline import check_overrides

    try:
        if out is not None:
            check_output_folder(out)
        return check_overrides(overrides)
    except SymbiosisError as exc:
        _fail(exc)


def _write_csv(path: Path, frame: pd.DataFrame) -> None:
    from symbiosis.outputs.export import write_csv

    write_csv(path, frame)


def _load(path: Path):  # type: ignore[no-untyped-def]
    from symbiosis.inputs import load_region

    try:
        return load_region(path)
    except SymbiosisError as exc:
        _fail(exc)


def _text(value: object) -> Text:
    """A table cell from data: shown as it is, never read as rich markup (a name may hold ``[/]``)."""
    return Text(str(value))


def _fmt(value: float, digits: int = 1) -> str:
    if value != value:
        return "–"
    return f"{value:,.{digits}f}"


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log stage timings")] = False) -> None:
    _setup_logging(verbose)


@app.command()
def check(path: RegionPath, private: Private = False) -> None:
    """Validate a region's files and report every problem at once."""
    from symbiosis.disclosure import for_region

    region = _load(path)
    scrub = _say_disclosure(private, for_region(region))
    flows = region.flows
    console.print(f"[green]✓[/] region [bold]{escape(region.name)}[/]: {len(region.facilities)} facilities, "
                  f"{len(flows)} flows ({int((flows['data_quality'] == 'modelled').sum())} from process models), "
                  f"{len(region.quality)} quality entries, {len(region.arcs)} arc overrides")
    for warning in region.warnings:
        console.print(f"[yellow]warning:[/] {escape(str(scrub.text(warning)))}", highlight=False)


def _say_disclosure(private: bool, disclosure: Any) -> Any:
    """Print whether this run is public or private; return what scrubs its printed text."""
    from symbiosis.disclosure import PRIVATE_MARK, Disclosure

    if private:
        console.print(f"[bold red]{PRIVATE_MARK}[/]")
        return Disclosure(pd.DataFrame(columns=["facility_id", "name", "confidential"]))  # masks nothing
    if disclosure.n:
        console.print(f"public view: {disclosure.n} confidential facilit{'y' if disclosure.n == 1 else 'ies'} masked")
    return disclosure


class IdKind(enum.StrEnum):
    facilities = "facilities"
    flows = "flows"
    materials = "materials"
    supplies = "supplies"
    demands = "demands"


@app.command("list")
def list_ids(path: RegionPath,
             kind: Annotated[IdKind, typer.Argument(help="Which ids to print")] = IdKind.flows) -> None:
    """Print the ids of a region's facilities, flows, materials, supplies (outgoing mass flows and heat given
    off, for `partners --flow`) or demands (incoming mass flows), one a line, tab-separated with what they are."""
    region = _load(path)
    if kind is IdKind.facilities:
        rows = region.facilities[["facility_id", "name"]].astype(str).to_numpy().tolist()
    elif kind is IdKind.materials:
        materials = region.reference.materials
        label = materials["name"] if "name" in materials.columns else pd.Series("", index=materials.index)
        rows = [[str(i), str(n)] for i, n in zip(materials.index, label, strict=True)]
    else:
        flows = region.flows
        mass = flows["quantity"] == "mass"
        carriers = region.reference.energy_carriers.index if not region.reference.energy_carriers.empty else []
        heat = ((flows["quantity"] == "energy") & flows["material"].isin(carriers)
                & flows["category"].isin(["by_product", "waste"]))
        pick = {IdKind.flows: pd.Series(True, index=flows.index),
                IdKind.supplies: (mass | heat) & (flows["direction"] == "out"),
                IdKind.demands: mass & (flows["direction"] == "in")}[kind]
        rows = flows.loc[pick, ["flow_id", "facility_id", "direction", "material"]].astype(str).to_numpy().tolist()
    for row in rows:
        sys.stdout.write("\t".join(row) + "\n")


@app.command()
def verify(folder: Annotated[Path, typer.Argument(help="An output folder a symbiosis command wrote")]) -> None:
    """Check that an output folder is one run's complete, unchanged set of files (its manifest.json)."""
    from symbiosis.atomic import verify_outputs

    try:
        manifest = verify_outputs(folder)
    except SymbiosisError as exc:
        _fail(exc)
    console.print(f"[green]✓[/] {folder}: {len(manifest['files'])} files of run {manifest.get('run_id')} "
                  f"({manifest.get('finished')}, symbiosis {manifest.get('version')})", highlight=False)


def _balance_table(table: pd.DataFrame, title: str) -> Table:
    view = Table(title=title, show_lines=False)
    for column, justify in [("facility", "left"), ("quantity", "left"), ("inputs", "right"), ("outputs", "right"),
                            ("stock change", "right"), ("closure", "right"), ("closure error", "right"),
                            ("measured/estimated/modelled", "right"), ("status", "left")]:
        view.add_column(column, justify=justify)  # type: ignore[arg-type]
    for row in table.itertuples():
        error = "–" if row.closure_error != row.closure_error else f"{row.closure_error:+.2%}"
        mix = ("–" if math.isnan(row.share_measured) else
               f"{row.share_measured:.0%}/{row.share_estimated:.0%}/{row.share_modelled:.0%}")
        style = "" if row.within_tolerance else "yellow"
        view.add_row(_text(row.facility_id), f"{row.quantity} ({row.unit})", _fmt(row.inputs), _fmt(row.outputs),
                     _fmt(row.stock_change), _fmt(row.closure), error, mix, _text(row.status), style=style)
    return view


@app.command()
def balance(path: RegionPath,
            out: Annotated[Path | None, typer.Option("--out", "-o", help="Write balances.csv here")] = None,
            tolerance: Annotated[float | None, typer.Option(help="Relative closure error accepted")] = None,
            reconcile: Annotated[bool, typer.Option(
                help="Reconcile the mass flows over the region as one network and locate gross errors")] = False,
            private: Private = False) -> None:
    """Show every facility's mass (and energy) balance with its closure error and data quality."""
    from symbiosis.balances import balances
    from symbiosis.balances import reconcile as reconcile_flows
    from symbiosis.disclosure import for_region, public_balances
    from symbiosis.outputs.export import write_disclosure_note

    _prepare(out, balance_tolerance=tolerance)  # the rule of balance_tolerance in region.yaml: 0 < t < 1
    region = _load(path)
    scrub = _say_disclosure(private, for_region(region))
    result = public_balances(balances(region, tolerance=tolerance), scrub)
    name = escape(region.name)
    console.print(_balance_table(result.table, f"{name}: facility balances (tolerance {result.tolerance:.0%})"))
    console.print(_balance_table(result.region, f"{escape(region.name)}: region across its boundary"))
    for warning in result.warnings():
        console.print(f"[yellow]warning:[/] {escape(str(scrub.text(warning)))}", highlight=False)
    reconciled = None
    if reconcile:
        try:
            reconciled = reconcile_flows(region)
        except SymbiosisError as exc:
            _fail(exc)
    also: set[str] = getattr(result, "suppressed_too", set())
    if reconciled is not None:
        facilities = scrub.frame(reconciled.facilities, locate_by="", also=also)
        test = reconciled.network.global_test
        verdict = ("consistent with the stated uncertainties" if test["passed"] else
                   "more than the stated uncertainties explain (95 %): a gross error is likely")
        console.print(f"reconciliation of the region as one network: chi-square {test['chi_square']:,.2f} with "
                      f"{test['dof']} degrees of freedom (p = {test['p_value']:.3g}): {verdict}", highlight=False)
        table = reconciled.network.flows
        console.print(f"  {int((table['measured_flow'] & table['redundant']).sum())} of "
                      f"{int(table['measured_flow'].sum())} measured flows are redundant (checked by the balances); "
                      f"{int((~table['measured_flow']).sum())} unmeasured flows, all determined by them",
                      highlight=False)
        for message in reconciled.network.warnings:
            console.print(f"  [yellow]gross error:[/] {escape(str(scrub.text(message)))}", highlight=False)
        flagged = facilities[facilities["gross_error_suspected"]]
        console.print(f"reconciliation: {len(flagged)} facilit{'y' if len(flagged) == 1 else 'ies'} with a closure "
                      "beyond what the stated uncertainties explain (chi-square > 3.84, 95 %)")
        for row in flagged.itertuples():
            console.print(f"  [yellow]{row.facility_id}[/]: closure {row.closure:,.1f} t/yr ± "
                          f"{row.closure_standard_uncertainty:,.1f} (chi-square {row.chi_square:,.1f}): check for a "
                          "missing flow or a wrong unit", highlight=False)
    if out is not None:
        frame = pd.concat([result.table, result.region], ignore_index=True)
        try:
            with output_folder(out) as stage:
                _write_csv(stage / "balances.csv", frame)
                if reconciled is not None:
                    from symbiosis.account.reconcile import write_reconciliation

                    write_reconciliation(reconciled.network, stage, scrub, also)
                write_disclosure_note(stage, public=not private, n_masked=scrub.n)
        except SymbiosisError as exc:
            _fail(exc)
        console.print(f"wrote {out / 'balances.csv'}")
        if reconciled is not None:
            console.print(f"wrote {out / 'reconciled_flows.csv'}, {out / 'reconciliation.csv'}, "
                          f"{out / 'gross_errors.csv'} and {out / 'reconciliation.json'}")


def _overrides(max_distance: float | None, circuity: float | None, carbon_price: float | None,
               transport_cost: float | None) -> dict[str, Any]:
    return {"max_distance_km": max_distance, "circuity": circuity, "carbon_price": carbon_price,
            "transport_cost_per_tkm": transport_cost}


class Method(enum.StrEnum):
    """HiGHS methods (symbiosis.exchange.solve.METHODS)."""

    ipm = "ipm"
    simplex = "simplex"
    pdlp = "pdlp"
    choose = "choose"


MaxDistance = Annotated[float | None,
                        typer.Option("--max-distance", help="Default max distance, km (overrides region.yaml)")]
Circuity = Annotated[float | None, typer.Option(help="Road km per great-circle km")]
Threads = Annotated[int | None, typer.Option(
    min=1, help="Independent blocks of the LP solved at once (default: the CPUs this process may use)")]
Mip = Annotated[bool, typer.Option("--mip", help="Mixed-integer mode: fixed annual costs and minimum sizes of "
                                                  "connections (arcs.csv; slower; LP by default)")]
Reconciled = Annotated[bool, typer.Option(
    "--reconciled", help="Optimise on the reconciled mass flows (balance --reconcile; kpis.json says so)")]
CarbonPrice = Annotated[float | None, typer.Option("--carbon-price", help="Money per t CO2e")]
TransportCost = Annotated[float | None, typer.Option("--transport-cost", help="Money per t·km")]


def _shown(results, region, private: bool):  # type: ignore[no-untyped-def]
    """What the terminal may show of a run: the public view unless ``--private``."""
    from symbiosis.disclosure import for_results, public_results

    return public_results(results, _say_disclosure(private, for_results(results, region)))


def _print_kpis(results) -> None:  # type: ignore[no-untyped-def]
    k = results.kpis
    cur = k.get("currency", "EUR")
    view = Table(title="Against business as usual")
    view.add_column("indicator")
    view.add_column("value", justify="right")
    price = float(k.get("carbon_price") or 0.0)
    saving_rows = ([("net cost saving (money only, carbon cost not included)", "net_cost_saving", f"{cur}/yr"),
                    (f"net saving including carbon cost at {price:,.0f} {cur}/t CO2e", "net_saving_incl_carbon",
                     f"{cur}/yr")] if price > 0 else
                   [("net cost saving (no carbon price)", "net_cost_saving", f"{cur}/yr")])
    for label, key, unit in [
        *saving_rows, ("CO2e avoided", "co2e_avoided_t", "t/yr"),
        ("waste diverted from landfill and incineration", "waste_diverted_t", "t/yr"),
        ("virgin material avoided", "virgin_avoided_t", "t/yr"), ("water saved", "water_saved_m3", "m3/yr"),
        ("transport", "tkm", "t·km/yr"), ("exchanges", "n_exchanges", ""),
        ("participating facilities", "n_facilities_participating", ""),
    ]:
        value = k.get(key)
        view.add_row(label, f"{value:,.0f} {unit}".strip() if isinstance(value, (int, float)) else "–")
    if k.get("n_energy_exchanges"):
        for label, key in (("heat delivered", "heat_delivered_mwh"), ("heat lost in pipes", "heat_lost_mwh"),
                           ("fuel avoided", "fuel_avoided_mwh")):
            value = k.get(key)
            view.add_row(label, f"{value:,.0f} MWh/yr" if isinstance(value, (int, float)) else "–")
    console.print(view)
    # Ranked by saving: tonnes and MWh are not comparable, money is.
    ex = results.exchanges.sort_values("saving", ascending=False).head(10)
    if len(ex):
        top = Table(title="Top exchanges by saving")
        # What each exchange replaces tells apart two rows of one material between the same pair; if rows are
        # still alike, the supply and demand ids (flow ids) are shown too.
        replaces = ex["primary_material"].astype(str) if "primary_material" in ex else ex["material"].astype(str)
        alike = pd.DataFrame({"s": ex["supply_facility"], "d": ex["demand_facility"], "m": ex["material"],
                              "r": replaces}).duplicated(keep=False).any()
        columns = ["from", "to", "material", "replaces", *(["flows (supply → demand)"] if alike else []),
                   "amount /yr", "km", f"saving {cur}/yr"]
        for column in columns:
            numeric = column in ("amount /yr", "km") or column.startswith("saving")
            top.add_column(column, justify="right" if numeric else "left")
        heat = ex["amount_mwh_per_yr"].notna().to_numpy() if "amount_mwh_per_yr" in ex else [False] * len(ex)
        for row, is_heat, replaced in zip(ex.itertuples(), heat, replaces, strict=True):
            amount = f"{_fmt(row.amount_mwh_per_yr, 0)} MWh" if is_heat else f"{_fmt(row.amount_t_per_yr, 0)} t"
            flows = [f"{_text(row.supply_id)} → {_text(row.demand_id)}"] if alike else []
            top.add_row(_text(row.supply_facility), _text(row.demand_facility), _text(row.material),
                        "" if replaced == row.material else _text(replaced), *flows, amount,
                        _fmt(row.distance_km), _fmt(row.saving, 0))
        console.print(top)


def _print_options(overrides: dict[str, Any], **flags: Any) -> None:
    """Echo the options that change the results (``--carbon-price 100`` ...) before anything else is printed."""
    names = {"max_distance_km": "--max-distance", "circuity": "--circuity", "carbon_price": "--carbon-price",
             "transport_cost_per_tkm": "--transport-cost"}
    given = [f"{names.get(key, '--' + key.replace('_', '-'))} {value:g}" if isinstance(value, float)
             else f"{names.get(key, '--' + key.replace('_', '-'))} {value}"
             for key, value in overrides.items() if value is not None]
    given += [f"--{key.replace('_', '-')}" for key, value in flags.items() if value]
    console.print("options: " + (escape(", ".join(given)) if given else "none (the region's settings)"),
                  highlight=False)


@app.command()
def optimise(path: RegionPath, out: OutDir = Path("out"), max_distance: MaxDistance = None,
             circuity: Circuity = None, carbon_price: CarbonPrice = None, transport_cost: TransportCost = None,
             method: Annotated[Method, typer.Option(help="HiGHS method")] = Method.ipm,
             threads: Threads = None, private: Private = False,
             mip: Mip = False, reconciled: Reconciled = False) -> None:
    """Choose the exchanges that minimise cost (+ carbon price × CO2e) against business as usual."""
    from symbiosis.outputs.export import write_results
    from symbiosis.pipeline import optimise as run_optimise
    from symbiosis.pipeline import write_parameters

    overrides = _prepare(out, **_overrides(max_distance, circuity, carbon_price, transport_cost))
    _print_options(overrides, private=private, mip=mip)
    region = _load(path)
    try:
        with console.status("optimising") as status:
            results = run_optimise(region, method=method.value, progress=lambda m: status.update(m),
                                   threads=threads, mode="mip" if mip else "lp", reconciled=reconciled, **overrides)
            with output_folder(out) as stage:
                write_results(results, stage, public=not private, region=region)
                write_parameters(results, stage, {"region": region.name, "source": region.source},
                                 public=not private, region=region)
                if results.reconciliation is not None:
                    from symbiosis.account.reconcile import write_reconciliation
                    from symbiosis.disclosure import complementary_facilities, for_results

                    write_reconciliation(results.reconciliation, stage,
                                         None if private else for_results(results, region),
                                         complementary_facilities(results.facilities))
    except SymbiosisError as exc:
        _fail(exc)
    _print_kpis(_shown(results, region, private))
    console.print(f"outputs in {out}/")


@app.command()
def run(path: RegionPath, out: OutDir = Path("out"), max_distance: MaxDistance = None,
        circuity: Circuity = None, carbon_price: CarbonPrice = None, transport_cost: TransportCost = None,
        self_contained: Annotated[bool, typer.Option(help="Inline scripts so the report opens offline")] = False,
        pngs: Annotated[bool, typer.Option(help="Also write slide PNGs")] = True, threads: Threads = None,
        private: Private = False, mip: Mip = False, reconciled: Reconciled = False,
        period: Annotated[str | None, typer.Option(
            help="A region with periods: the map, report and slide images show this period (e.g. jan) "
                 "instead of the year; the tables stay annual beside the per-period ones")] = None,
        parquet: Annotated[bool | None, typer.Option(
            "--parquet/--no-parquet", help="Also write exchanges, supplies and demands as Parquet (default: when "
            "one of them has 50,000 rows or more)")] = None,
        tiles: Annotated[str, typer.Option(
            help="Make and price the candidate arcs tile by tile: auto (from 20,000 facilities), off, or a number "
                 "of tiles; the same optimum with less memory")] = "auto",
        scheduler: Annotated[str | None, typer.Option(
            help="Price the tiles on Dask workers: a scheduler address (tcp://host:8786) or local")] = None,
        arcs: Annotated[bool, typer.Option(
            "--arcs", help="Also write every candidate arc with its flow and reduced cost (candidates.csv, or "
            "candidates.parquet from 50,000 arcs; read tile by tile in a tiled run)")] = False) -> None:
    """The main job: check -> balances -> optimise -> tables, map, Sankey and report."""
    from symbiosis.balances import balances
    from symbiosis.pipeline import optimise as run_optimise
    from symbiosis.pipeline import write_outputs

    overrides = _prepare(out, **_overrides(max_distance, circuity, carbon_price, transport_cost))
    _print_options(overrides, private=private, mip=mip, self_contained=self_contained, no_pngs=not pngs)
    with console.status("checking the region") as status:
        region = _load(path)
        if period is not None:
            from symbiosis.periods.view import check_period

            try:
                check_period(region, period)
            except SymbiosisError as exc:
                _fail(exc)
        status.update("balancing facilities")
        balance_result = balances(region)
        try:
            results = run_optimise(region, progress=lambda m: status.update(m), threads=threads,
                                   mode="mip" if mip else "lp", reconciled=reconciled, tiles=tiles,
                                   scheduler=scheduler, arcs=arcs, **overrides)
            written = write_outputs(results, region, out, self_contained=self_contained,
                                    progress=lambda m: status.update(m), pngs=pngs, public=not private,
                                    period=period, parquet=parquet)
        except SymbiosisError as exc:
            _fail(exc)
    if reconciled:  # the report's balances are those of the reconciled flows: count what it lists
        balance_result = results.balances
    # The same three lists, in the same order, as the report's warnings.
    counts = (len(balance_result.warnings()), len(balance_result.data_quality_notes()), len(region.warnings))
    console.print(f"[green]✓[/] {escape(region.name)}: {len(region.facilities)} facilities, {counts[0]} balance "
                  f"warning(s), {counts[1]} data-quality note(s), {counts[2]} loading warning(s): "
                  f"{sum(counts)} listed in the report", highlight=False)
    _print_kpis(_shown(results, region, private))
    if period is not None:
        console.print(f"map, report and slide images show the period {escape(period)} only; the figures above and "
                      "the tables are the year's", highlight=False)
    for name, file in written.items():
        console.print(f"  {name}: {file}")


@app.command()
def compare(scenarios: Annotated[list[Path], typer.Argument(help="Scenario YAML files; the first is the reference")],
            out: OutDir = Path("out/compare"),
            scheduler: Annotated[str | None, typer.Option(help="Dask scheduler address (tcp://host:8786)")] = None,
            workers: Annotated[int | None, typer.Option(help="Processes on this machine")] = None,
            reference: Annotated[str | None, typer.Option(help="Scenario name to compare against")] = None,
            private: Private = False) -> None:
    """Run scenarios (in parallel) and compare them side by side against the first."""
    from rich.progress import Progress

    from symbiosis.compare import check_scenario_names, compare_runs, public_runs, run_scenarios, write_comparison

    _prepare(out)
    try:
        check_scenario_names(scenarios)
    except SymbiosisError as exc:
        _fail(exc)
    with Progress(console=console) as bar:
        task = bar.add_task("scenarios", total=len(scenarios))

        def tick(run, done, total):  # type: ignore[no-untyped-def]
            mark = "[green]✓[/]" if run.ok else "[red]✗[/]"
            # A scenario's name may name a confidential facility: the public run prints its number only.
            label = escape(run.name) if private else f"scenario {done} of {total}"
            bar.console.print(f"{mark} {label} ({run.seconds:.1f} s)", highlight=False)
            bar.update(task, completed=done)

        runs = run_scenarios(scenarios, scheduler=scheduler, max_workers=workers, progress=tick)
    comparison = compare_runs(runs, reference=reference)
    if private:
        console.print("[bold red]PRIVATE: contains confidential data[/]")
    else:
        comparison, runs = public_runs(comparison, runs)
    try:
        written = write_comparison(comparison, runs, out, public=not private)
    except SymbiosisError as exc:
        _fail(exc)
    if not comparison.kpis.empty:
        view = Table(title=f"Scenarios against {escape(comparison.reference)}")
        for column in comparison.kpis.columns:
            view.add_column(str(column), justify="left" if column in ("indicator", "unit") else "right")
        for row in comparison.kpis.itertuples(index=False):
            view.add_row(*[_text(v) if isinstance(v, str) else _fmt(float(v), 0) if v is not None else "–"
                           for v in row])
        console.print(view)
    for name, error in comparison.failed.items():
        err_console.print(f"[red]scenario {name} failed:[/] {error}", highlight=False, soft_wrap=True)
    console.print(f"comparison in {written['report']}")
    if comparison.failed:
        raise typer.Exit(code=1)


@app.command()
def tradeoff(path: RegionPath, out: OutDir = Path("out/tradeoff"),
             points: Annotated[int, typer.Option(min=2, help="Points on the curve (at least 2)")] = 11,
             max_distance: MaxDistance = None, circuity: Circuity = None,
             transport_cost: TransportCost = None, private: Private = False) -> None:
    """The cost–CO2e trade-off curve (ε-constraint over one model, re-solved, not rebuilt)."""
    from symbiosis.candidates import candidates
    from symbiosis.disclosure import for_region, public_tradeoff
    from symbiosis.outputs.export import write_disclosure_note
    from symbiosis.tradeoff import plot_tradeoff
    from symbiosis.tradeoff import tradeoff as trace

    overrides = _prepare(out, **_overrides(max_distance, circuity, None, transport_cost))
    region = _load(path)
    try:
        if region.time is not None:  # symbiosis/periods/: the curve is traced on the annual model only
            raise SymbiosisError("tradeoff does not handle periods or stores yet (region.yaml `periods:`, "
                                 "stores.csv): trace it on a copy of the region without them")
        with console.status("tracing the trade-off curve"):
            cands = candidates(region, **overrides)
            result = trace(cands, n_points=points)
        scrub = _say_disclosure(private, for_region(region))
        result = public_tradeoff(result, scrub)
        with output_folder(out) as stage:
            write_disclosure_note(stage, public=not private, n_masked=scrub.n)
            _write_csv(stage / "tradeoff.csv", result.points)
            _write_csv(stage / "tradeoff_changes.csv", result.changes)
            plot_tradeoff(result, str(stage / "tradeoff.png"), private=private)
    except SymbiosisError as exc:
        _fail(exc)
    view = Table(title="Cost against CO2e")
    for column in ("point", "t CO2e/yr", f"cost {result.currency}/yr", "implied carbon price", "exchanges"):
        view.add_column(column, justify="right")
    for row in result.points.itertuples():
        view.add_row(str(row.point), _fmt(row.co2e_t, 0), _fmt(row.cost, 0), _fmt(row.implied_carbon_price, 1),
                     str(row.n_exchanges))
    console.print(view)
    console.print(f"{len(result.changes)} exchange change(s) along the curve; outputs in {out}/")


def _check_stream_numbers(**values: float | None) -> None:
    """A new stream's amount (>= 0) and location (lat within ±90, lon within ±180), finite, before any work."""
    ranges = {"amount": (0.0, math.inf), "lat": (-90.0, 90.0), "lon": (-180.0, 180.0)}
    problems = [Problem("command line", "not a finite number in range", column=f"--{name}", found=str(value),
                        expected=f"{ranges[name][0]:g} to {ranges[name][1]:g}")
                for name, value in values.items() if value is not None
                and not (math.isfinite(value) and ranges[name][0] <= value <= ranges[name][1])]
    if problems:
        _fail(InputError(problems))


@app.command()
def partners(path: RegionPath,
             flow: Annotated[str | None, typer.Option("--flow", help="An outgoing flow of the region")] = None,
             facility: Annotated[str | None, typer.Option(help="New stream: facility id (new or existing)")] = None,
             material: Annotated[str | None, typer.Option(help="For a new stream: material id")] = None,
             amount: Annotated[float | None, typer.Option(help="For a new stream: amount")] = None,
             unit: Annotated[str, typer.Option(help="Unit of --amount")] = "t",
             lat: Annotated[float | None, typer.Option(help="For a new facility")] = None,
             lon: Annotated[float | None, typer.Option(help="For a new facility")] = None,
             fate: Annotated[str, typer.Option(help="Today's fate of the new stream")] = "landfill",
             quality: Annotated[list[str] | None, typer.Option(help="PARAM=VALUE[UNIT], e.g. chloride=0.05%")] = None,
             stream_file: Annotated[Path | None, typer.Option(help="A YAML file describing a new stream")] = None,
             out: OutDir = Path("out/partners"),
             max_distance: MaxDistance = None, carbon_price: CarbonPrice = None, private: Private = False) -> None:
    """Ranked receivers for one waste stream, with quality fit, value per tonne and what would make others viable."""
    from symbiosis.disclosure import PRIVATE_MARK, for_region, public_partners
    from symbiosis.outputs.export import write_disclosure_note
    from symbiosis.partners import add_stream, find_partners, parse_quality, partners_map, read_stream_file

    overrides = _prepare(out, **_overrides(max_distance, None, carbon_price, None))
    _check_stream_numbers(amount=amount, lat=lat, lon=lon)
    region = _load(path)
    try:
        if flow is None and stream_file is not None:
            spec = read_stream_file(str(stream_file))
            region, flow = add_stream(region, facility_id=spec.facility, material=spec.material, amount=spec.amount,
                                      unit=spec.unit, lat=spec.lat, lon=spec.lon, fate=spec.fate,
                                      price_per_t=spec.price_per_t, name=spec.name,
                                      quality=parse_quality(spec.quality))
        elif flow is None:
            if facility is None or material is None or amount is None:
                raise InputError([Problem("command line",
                                          "give --flow, --stream-file, or --facility, --material and --amount")])
            region, flow = add_stream(region, facility_id=facility, material=material, amount=amount, unit=unit,
                                      lat=lat, lon=lon, fate=fate, quality=parse_quality(quality or []))
        with console.status("searching partners"):
            search = find_partners(region, flow, **overrides)
        scrub = _say_disclosure(private, for_region(region))
        search = public_partners(search, scrub)
        shown = region.copy()
        shown.facilities = scrub.frame(region.facilities, hidden=scrub.hidden_rows(region.facilities))
        with output_folder(out) as stage:
            write_disclosure_note(stage, public=not private, n_masked=scrub.n)
            _write_csv(stage / "partners.csv", search.partners)
            if len(search.partners):
                partners_map(search, shown, str(stage / "partners_map.html"),
                             title=f"{PRIVATE_MARK}: partners" if private else "Partners")
    except SymbiosisError as exc:
        _fail(exc)
    cur = region.settings.currency
    unit = search.unit  # t for a material, MWh for heat (symbiosis.partners)
    heat = unit == "MWh"
    amount = search.supply["amount_mwh_per_yr" if heat else "amount_t_per_yr"]
    console.print(f"stream [bold]{escape(str(search.supply.name))}[/]: {escape(str(search.supply['material']))}, "
                  f"{_fmt(amount, 0)} {unit}/yr; shadow value "
                  f"{_fmt(search.shadow_value_per_t, 2)} {cur}/{unit}; optimum exchanges "
                  f"{_fmt(search.exchanged_t_per_yr, 0)} {unit}/yr", highlight=False)
    view = Table(title="Receivers")
    for column in ("#", "receiver", "material", "km", "temperature" if heat else "quality", f"net {cur}/{unit}",
                   f"CO2e avoided t/{unit}", f"optimum {unit}/yr", "what would make it viable"):
        view.add_column(column)
    suffix = "mwh" if heat else "t"
    co2e = "co2e_avoided_t_per_mwh" if heat else "co2e_avoided_per_t"
    for row in search.partners.to_dict("records"):
        view.add_row(str(row["rank"]), _text(row["name"]), _text(row["material"]), _fmt(row["distance_km"]),
                     _text(row["quality_fit"]), _fmt(row[f"net_value_per_{suffix}"], 2), _fmt(row[co2e], 3),
                     _fmt(row[f"optimum_{suffix}_per_yr"], 0), _text(row["what_would_make_it_viable"]))
    console.print(view)
    console.print(f"outputs in {out}/")


@app.command()
def resilience(path: RegionPath, out: OutDir = Path("out/resilience"),
               exchanges: Annotated[bool, typer.Option(help="Also remove each exchange in turn")] = False,
               only_participants: Annotated[bool, typer.Option(help="Only facilities in the optimum")] = False,
               private: Private = False) -> None:
    """Remove each facility in turn, re-optimise, and rank facilities by the benefit the network loses."""
    from rich.progress import Progress

    from symbiosis.disclosure import for_region, public_resilience
    from symbiosis.outputs.export import write_disclosure_note
    from symbiosis.resilience import resilience as analyse

    _prepare(out)
    region = _load(path)
    scrub = _say_disclosure(private, for_region(region))
    try:
        with Progress(console=console) as bar:
            task = bar.add_task("removing facilities", total=None)

            def tick(facility: str, k: int, n: int) -> None:
                bar.update(task, total=n, completed=k - 1, description=f"without {scrub.text(facility)}")

            result = analyse(region, only_participants=only_participants, include_exchanges=exchanges, progress=tick)
        result = public_resilience(result, scrub)
        with output_folder(out) as stage:
            write_disclosure_note(stage, public=not private, n_masked=scrub.n)
            _write_csv(stage / "resilience_facilities.csv", result.facilities)
            _write_csv(stage / "exchange_graph.csv", result.graph)
            if len(result.exchanges):
                _write_csv(stage / "resilience_exchanges.csv", result.exchanges)
    except SymbiosisError as exc:
        _fail(exc)
    cur = region.settings.currency
    view = Table(title="Who the network depends on")
    for column in ("#", "facility", f"cost benefit lost {cur}/yr", "CO2e lost t/yr", "waste diversion lost t/yr",
                   "failing", "degree", "betweenness"):
        view.add_column(column)
    for row in result.facilities.itertuples():
        view.add_row(str(row.rank), _text(row.facility_id), _fmt(row.cost_benefit_lost, 0),
                     _fmt(row.co2e_benefit_lost_t, 0),
                     _fmt(row.waste_diversion_lost_t, 0), str(row.n_exchanges_failing), str(row.degree),
                     f"{row.betweenness:.2f}")
    console.print(view)
    console.print(f"outputs in {out}/")


@app.command()
def init(folder: Annotated[Path, typer.Argument(help="Folder for the new region (created if need be)")]) -> None:
    """Write a starter region (region.yaml, facilities, flows and quality tables with example rows) to fill in."""
    from symbiosis.inputs import write_starter_region

    try:
        written = write_starter_region(folder)
    except SymbiosisError as exc:
        _fail(exc)
    for file in written:
        console.print(f"wrote {file}", highlight=False)
    console.print(f"next: replace the example rows, then run `symbiosis check {folder}`", highlight=False)


@app.command()
def facility(path: RegionPath,
             facility_id: Annotated[str, typer.Argument(help="The facility whose account to write")],
             out: OutDir = Path("out/facility"),
             accounts: Annotated[Path | None, typer.Option(
                 "--accounts", help="An accounting export (CSV: account, amount) to add to costs.csv")] = None,
             account_map: Annotated[Path | None, typer.Option(
                 "--account-map", help="CSV mapping each account to facility_id + cost_type, or to a flow_id")] = None,
             weights: Annotated[str | None, typer.Option(
                 help="Criteria weights, e.g. technical=1,environmental=1,economic=2")] = None,
             ahp: Annotated[Path | None, typer.Option(
                 "--ahp", help="Weights from a pairwise-comparison matrix (CSV; consistency ratio ≤ 0.1)")] = None,
             key: Annotated[str, typer.Option(
                 help="MFCA allocation key: mass (ISO 14051's default) or value")] = "mass",
             self_contained: Annotated[bool, typer.Option(help="Put plotly.js into the page")] = False,
             reconciled: Annotated[bool, typer.Option(
                 help="Account and optimise on the reconciled mass flows (unmeasured flows estimated)")] = False,
             private: Private = False) -> None:
    """One facility's account for its manager: balance, Sankey, reconciliation, MFCA, MCI and action plan."""
    from symbiosis.account.cli import facility_command

    _prepare(out)
    if key not in ("mass", "value"):
        _fail(SymbiosisError(f"--key {key!r}: use mass or value"))
    region = _load(path)
    try:
        facility_command(region, facility_id, out, accounts=accounts, account_map=account_map, weights=weights,
                         ahp_file=ahp, key=key, private=private, self_contained=self_contained, console=console,
                         reconciled=reconciled)
    except SymbiosisError as exc:
        _fail(exc)


@app.command()
def uncertainty(path: RegionPath,
                samples: Annotated[int, typer.Option("--samples", "-n", help="Monte Carlo samples (≥ 1)")] = 1000,
                seed: Annotated[int, typer.Option(help="Seed of the draws: the same seed gives the same results")] = 0,
                scheduler: Annotated[str | None, typer.Option(help="Dask scheduler address (tcp://host:8786)")] = None,
                workers: Annotated[int | None, typer.Option(help="Processes on this machine (default: CPUs)")] = None,
                robust: Annotated[float, typer.Option(help="Share of samples from which an exchange is robust")] = 0.9,
                timeout: Annotated[float, typer.Option(help="Seconds to wait for the Dask scheduler")] = 10.0,
                out: OutDir = Path("out/uncertainty"),
                max_distance: MaxDistance = None, circuity: Circuity = None, carbon_price: CarbonPrice = None,
                transport_cost: TransportCost = None, private: Private = False) -> None:
    """Monte Carlo over the uncertain amounts: how sure each exchange and KPI is, and what to measure first."""
    from symbiosis.uncertainty.cli import run

    run(path, samples=samples, seed=seed, scheduler=scheduler, workers=workers, out=out, robust=robust,
        timeout=timeout, private=private,
        overrides=_overrides(max_distance, circuity, carbon_price, transport_cost))


# The custody ledger (docs/custody.md): `symbiosis ledger init|book|close|statement|verify|export`. Its module
# imports only typer at the top; SQLAlchemy is loaded by the commands themselves.
from symbiosis.ledger.cli import ledger_app  # noqa: E402

app.add_typer(ledger_app, name="ledger")


@app.command()
def pdf(out: Annotated[Path, typer.Argument(help="Output folder of `symbiosis run` (holds report.html)")],
        to: Annotated[Path | None, typer.Option("--to", help="PDF file (default: <folder>-report.pdf beside it)")]
        = None) -> None:
    """Print the report to an A4 PDF with Chromium (every table opened), for a board pack or slides."""
    from symbiosis.outputs.pdf import report_pdf

    try:
        written = report_pdf(out, to)
    except SymbiosisError as exc:
        _fail(exc)
    console.print(f"wrote {written}", highlight=False)


@app.command()
def monitor(path: RegionPath, out: OutDir = Path("out/monitor"),
            max_distance: MaxDistance = None, circuity: Circuity = None, carbon_price: CarbonPrice = None,
            transport_cost: TransportCost = None, private: Private = False) -> None:
    """Realised exchanges year by year (realised.csv) against each year's optimum: what was left on the table."""
    from symbiosis.monitor import run

    run(path, out=out, private=private, overrides=_overrides(max_distance, circuity, carbon_price, transport_cost))


@app.command()
def serve(db: Annotated[str | None, typer.Option("--db", help="Database URL (postgres://... or sqlite:///PATH); "
                                                      "default SQLite in $SYMBIOSIS_WEB_DIR")] = None,
          demo: Annotated[bool, typer.Option("--demo", help="Load Kalundborg with demo accounts (printed)")] = False,
          host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
          port: Annotated[int, typer.Option(help="Port")] = 8000,
          workers: Annotated[int, typer.Option(min=1, help="Server processes: 1 serves with waitress; more with "
                                               "gunicorn's pre-forked workers (Linux, macOS), one per core")] = 1,
          ) -> None:
    """Start the web application for a symbiosis programme (docs/app.md)."""
    from symbiosis.web.serve import serve as run_server

    run_server(db=db, demo=demo, host=host, port=port, workers=workers)


if __name__ == "__main__":  # pragma: no cover
    app()
