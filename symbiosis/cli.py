"""Command line: thin wrappers that parse, call the library, print with rich and write outputs.

No logic lives here: every command is a call into the package, so anything the CLI does can be done from
Python. Input problems print as a located list and exit with status 1, without a traceback.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from symbiosis.atomic import write_atomic
from symbiosis.errors import InputError, SymbiosisError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Industrial symbiosis network optimiser: balances, exchanges, maps and reports.")
console = Console()
err_console = Console(stderr=True)

RegionPath = Annotated[Path, typer.Argument(help="Region folder, .xlsx workbook or .gpkg GeoPackage")]
OutDir = Annotated[Path, typer.Option("--out", "-o", help="Folder for the outputs")]


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("pyomo").setLevel(logging.WARNING)


def _fail(exc: Exception) -> None:
    if isinstance(exc, InputError):
        err_console.print(f"[bold red]{len(exc.problems)} problem(s) in the input:[/]")
        for problem in exc.problems:
            err_console.print(f"  • {problem}", markup=False, highlight=False, soft_wrap=True)
    else:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
    raise typer.Exit(code=1)


def _load(path: Path):  # type: ignore[no-untyped-def]
    from symbiosis.inputs import load_region

    try:
        return load_region(path)
    except SymbiosisError as exc:
        _fail(exc)


def _fmt(value: float, digits: int = 1) -> str:
    if value != value:
        return "–"
    return f"{value:,.{digits}f}"


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log stage timings")] = False) -> None:
    _setup_logging(verbose)


@app.command()
def check(path: RegionPath) -> None:
    """Validate a region's files and report every problem at once."""
    region = _load(path)
    flows = region.flows
    console.print(f"[green]✓[/] region [bold]{region.name}[/]: {len(region.facilities)} facilities, "
                  f"{len(flows)} flows ({int((flows['data_quality'] == 'modelled').sum())} from process models), "
                  f"{len(region.quality)} quality entries, {len(region.arcs)} arc overrides")
    for warning in region.warnings:
        console.print(f"[yellow]warning:[/] {warning}", highlight=False)


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
        view.add_row(str(row.facility_id), f"{row.quantity} ({row.unit})", _fmt(row.inputs), _fmt(row.outputs),
                     _fmt(row.stock_change), _fmt(row.closure), error, mix, str(row.status), style=style)
    return view


@app.command()
def balance(path: RegionPath, out: Annotated[Path | None, typer.Option("--out", "-o", help="Write balances.csv here")] = None,
            tolerance: Annotated[float | None, typer.Option(help="Relative closure error accepted")] = None) -> None:
    """Show every facility's mass (and energy) balance with its closure error and data quality."""
    from symbiosis.balances import balances

    region = _load(path)
    result = balances(region, tolerance=tolerance)
    console.print(_balance_table(result.table, f"{region.name}: facility balances (tolerance {result.tolerance:.0%})"))
    console.print(_balance_table(result.region, f"{region.name}: region across its boundary"))
    for warning in result.warnings():
        console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    if out is not None:
        target = out / "balances.csv"
        frame = pd.concat([result.table, result.region], ignore_index=True)
        write_atomic(target, lambda p: frame.to_csv(p, index=False))
        console.print(f"wrote {target}")


def _overrides(max_distance: float | None, circuity: float | None, carbon_price: float | None,
               transport_cost: float | None) -> dict[str, object]:
    return {"max_distance_km": max_distance, "circuity": circuity, "carbon_price": carbon_price,
            "transport_cost_per_tkm": transport_cost}


MaxDistance = Annotated[float | None, typer.Option("--max-distance", help="Default max distance, km (overrides region.yaml)")]
Circuity = Annotated[float | None, typer.Option(help="Road km per great-circle km")]
CarbonPrice = Annotated[float | None, typer.Option("--carbon-price", help="Money per t CO2e")]
TransportCost = Annotated[float | None, typer.Option("--transport-cost", help="Money per t·km")]


def _print_kpis(results) -> None:  # type: ignore[no-untyped-def]
    k = results.kpis
    cur = k.get("currency", "EUR")
    view = Table(title="Against business as usual")
    view.add_column("indicator")
    view.add_column("value", justify="right")
    for label, key, unit in [
        ("net cost saving", "net_cost_saving", f"{cur}/yr"), ("CO2e avoided", "co2e_avoided_t", "t/yr"),
        ("waste diverted from landfill and incineration", "waste_diverted_t", "t/yr"),
        ("virgin material avoided", "virgin_avoided_t", "t/yr"), ("water saved", "water_saved_m3", "m3/yr"),
        ("transport", "tkm", "t·km/yr"), ("exchanges", "n_exchanges", ""),
        ("participating facilities", "n_facilities_participating", ""),
    ]:
        value = k.get(key)
        view.add_row(label, f"{value:,.0f} {unit}".strip() if isinstance(value, (int, float)) else "–")
    console.print(view)
    ex = results.exchanges.sort_values("amount_t_per_yr", ascending=False).head(10)
    if len(ex):
        top = Table(title="Top exchanges")
        for column in ("from", "to", "material", "t/yr", "km", f"saving {cur}/yr"):
            top.add_column(column, justify="right" if column in ("t/yr", "km") or column.startswith("saving") else "left")
        for row in ex.itertuples():
            top.add_row(row.supply_facility, row.demand_facility, row.material, _fmt(row.amount_t_per_yr, 0),
                        _fmt(row.distance_km), _fmt(row.saving, 0))
        console.print(top)


@app.command()
def optimise(path: RegionPath, out: OutDir = Path("out"), max_distance: MaxDistance = None,
             circuity: Circuity = None, carbon_price: CarbonPrice = None, transport_cost: TransportCost = None,
             method: Annotated[str, typer.Option(help="HiGHS method: ipm, simplex or choose")] = "ipm") -> None:
    """Choose the exchanges that minimise cost (+ carbon price × CO2e) against business as usual."""
    from symbiosis.outputs.export import write_results
    from symbiosis.pipeline import optimise as run_optimise
    from symbiosis.pipeline import write_parameters

    region = _load(path)
    try:
        with console.status("optimising") as status:
            results = run_optimise(region, method=method, progress=lambda m: status.update(m),
                                   **_overrides(max_distance, circuity, carbon_price, transport_cost))
            write_results(results, out)
            write_parameters(results, out, {"region": region.name, "source": region.source})
    except SymbiosisError as exc:
        _fail(exc)
    _print_kpis(results)
    console.print(f"outputs in {out}/")


@app.command()
def run(path: RegionPath, out: OutDir = Path("out"), max_distance: MaxDistance = None,
        circuity: Circuity = None, carbon_price: CarbonPrice = None, transport_cost: TransportCost = None,
        self_contained: Annotated[bool, typer.Option(help="Inline scripts so the report opens offline")] = False,
        pngs: Annotated[bool, typer.Option(help="Also write slide PNGs")] = True) -> None:
    """The main job: check -> balances -> optimise -> tables, map, Sankey and report."""
    from symbiosis.balances import balances
    from symbiosis.pipeline import optimise as run_optimise
    from symbiosis.pipeline import write_outputs

    with console.status("checking the region") as status:
        region = _load(path)
        status.update("balancing facilities")
        balance_result = balances(region)
        try:
            results = run_optimise(region, progress=lambda m: status.update(m),
                                   **_overrides(max_distance, circuity, carbon_price, transport_cost))
            written = write_outputs(results, region, out, self_contained=self_contained,
                                    progress=lambda m: status.update(m), pngs=pngs)
        except SymbiosisError as exc:
            _fail(exc)
    n_warn = len(balance_result.warnings())
    console.print(f"[green]✓[/] {region.name}: {len(region.facilities)} facilities, "
                  f"{n_warn} balance warning(s)")
    _print_kpis(results)
    for name, file in written.items():
        console.print(f"  {name}: {file}")


if __name__ == "__main__":  # pragma: no cover
    app()
