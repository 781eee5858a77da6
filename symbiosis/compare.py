"""Run scenarios side by side and compare them: KPIs, exchanges added / removed / changed, a difference map.

Runs go through the standard :mod:`concurrent.futures` executor interface: a process pool on this machine
by default, or the executor of a Dask distributed cluster (``scheduler="tcp://host:8786"``), with the same
results. Workers return tidy tables only; the calling process writes every file, so a remote cluster needs
no shared disk. A scenario that fails is reported with its error while the others finish.
"""

from __future__ import annotations

import json
import logging
import time
import traceback
from collections.abc import Callable, Iterable
from concurrent.futures import Executor, Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import yaml

from symbiosis.atomic import in_folder, output_folder, write_atomic, write_text_atomic

if TYPE_CHECKING:
    from symbiosis.results import Results

logger = logging.getLogger(__name__)

KPI_ROWS = [
    ("net_cost_saving", "net cost saving (money only, carbon cost not included)", "currency/yr"),
    ("net_saving_incl_carbon", "net saving including carbon cost at the scenario's carbon price", "currency/yr"),
    ("carbon_price", "carbon price", "currency/t CO2e"),
    ("cost_optimum", "system cost with symbiosis", "currency/yr"),
    ("cost_bau", "system cost, business as usual", "currency/yr"),
    ("co2e_avoided_t", "CO2e avoided", "t/yr"),
    ("co2e_optimum_t", "CO2e with symbiosis", "t/yr"),
    ("waste_diverted_t", "waste diverted from landfill and incineration", "t/yr"),
    ("virgin_avoided_t", "virgin material avoided", "t/yr"),
    ("water_saved_m3", "water saved", "m3/yr"),
    ("tkm", "transport", "t·km/yr"),
    ("heat_delivered_mwh", "heat delivered", "MWh/yr"),
    ("n_exchanges", "exchanges", ""),
    ("n_facilities_participating", "participating facilities", ""),
]


@dataclass
class ScenarioRun:
    """The outcome of one scenario: its results, or the error that stopped it."""

    name: str
    path: str
    ok: bool
    seconds: float
    results: Results | None = None
    resolved: dict[str, Any] = field(default_factory=dict)
    error: str = ""


def run_scenario(path: str | Path) -> ScenarioRun:
    """Load a scenario, apply it to its base region and optimise; never raises (errors are returned)."""
    from symbiosis.inputs import load_region
    from symbiosis.pipeline import optimise
    from symbiosis.scenarios import apply_scenario, load_scenario

    started = time.perf_counter()
    name = Path(path).stem
    try:
        scenario, base = load_scenario(path)
        name = scenario.name
        region = load_region(base)
        changed, overrides, record = apply_scenario(region, scenario)
        # Scenarios already run side by side, one per worker: one solver thread each keeps the cores busy
        # without oversubscribing them.
        results = optimise(changed, threads=1, warm=_warm_solver(str(base)), **overrides)
        resolved = {"name": scenario.name, "description": scenario.description, "base": str(base),
                    "changes": record, "parameters": results.parameters}
        return ScenarioRun(name, str(path), True, time.perf_counter() - started, results, resolved)
    except Exception as exc:  # a failed scenario is reported, the others go on
        detail = str(exc) if hasattr(exc, "problems") else f"{type(exc).__name__}: {exc}"
        logger.debug("scenario %s failed:\n%s", path, traceback.format_exc())
        return ScenarioRun(name, str(path), False, time.perf_counter() - started, error=detail)


_WARM_SOLVERS: dict[str, Any] = {}


def _warm_solver(base: str) -> Any:
    """This process's WarmSolver for scenarios of ``base``: a scenario that changes only parameters of the
    last one solved here re-solves its model in place (symbiosis.exchange.reuse)."""
    from symbiosis.exchange.reuse import WarmSolver

    return _WARM_SOLVERS.setdefault(base, WarmSolver())


def make_executor(scheduler: str | None = None, max_workers: int | None = None) -> tuple[Executor, Callable[[], None]]:
    """A process pool, or a Dask cluster's executor when ``scheduler`` is an address; returns (executor, close)."""
    if scheduler:
        from distributed import Client

        client = Client(scheduler)
        executor = client.get_executor()

        def close() -> None:
            client.close()

        return executor, close
    pool = ProcessPoolExecutor(max_workers=max_workers)
    return pool, lambda: pool.shutdown(wait=True)


def run_scenarios(paths: Iterable[str | Path], *, executor: Executor | None = None, scheduler: str | None = None,
                  max_workers: int | None = None,
                  progress: Callable[[ScenarioRun, int, int], None] | None = None) -> list[ScenarioRun]:
    """Run every scenario through an executor; results come back in the order the paths were given."""
    path_list = [str(p) for p in paths]
    own_close: Callable[[], None] | None = None
    if executor is None:
        executor, own_close = make_executor(scheduler, max_workers)
    try:
        futures: dict[Future[ScenarioRun], int] = {executor.submit(run_scenario, p): k for k, p in enumerate(path_list)}
        runs: list[ScenarioRun | None] = [None] * len(path_list)
        for done, future in enumerate(as_completed(futures), start=1):
            k = futures[future]
            try:
                runs[k] = future.result()
            except Exception as exc:  # the worker itself died
                runs[k] = ScenarioRun(Path(path_list[k]).stem, path_list[k], False, 0.0, error=f"worker failed: {exc}")
            if progress is not None:
                progress(runs[k], done, len(path_list))  # type: ignore[arg-type]
    finally:
        if own_close is not None:
            own_close()
    return [r for r in runs if r is not None]


@dataclass
class Comparison:
    """KPIs side by side (one column per scenario), their differences against the reference, and the
    exchanges added, removed or changed against the reference."""

    kpis: pd.DataFrame
    differences: pd.DataFrame
    exchanges: pd.DataFrame
    reference: str
    failed: dict[str, str]


def compare_runs(runs: list[ScenarioRun], *, reference: str | None = None, change_tol: float = 1e-6) -> Comparison:
    """Compare successful runs against the reference run (the first successful one unless named)."""
    ok = [r for r in runs if r.ok and r.results is not None]
    failed = {r.name: r.error for r in runs if not r.ok}
    if not ok:
        empty = pd.DataFrame()
        return Comparison(empty, empty, empty, "", failed)
    ref = next((r for r in ok if r.name == reference), ok[0])
    kpis = pd.DataFrame({r.name: {key: r.results.kpis.get(key) for key, _, _ in KPI_ROWS} for r in ok})  # type: ignore[union-attr]
    kpis.insert(0, "unit", [unit for _, _, unit in KPI_ROWS])
    kpis.insert(0, "indicator", [label for _, label, _ in KPI_ROWS])
    numeric = kpis.drop(columns=["indicator", "unit"]).apply(pd.to_numeric, errors="coerce")
    differences = numeric.sub(numeric[ref.name], axis=0)
    differences.insert(0, "unit", kpis["unit"])
    differences.insert(0, "indicator", kpis["indicator"])
    rows = []
    key = ["supply_id", "demand_id"]
    ref_ex = ref.results.exchanges.set_index(key)  # type: ignore[union-attr]
    for run in ok:
        if run is ref:
            continue
        ex = run.results.exchanges.set_index(key)  # type: ignore[union-attr]
        for pair in ex.index.union(ref_ex.index):
            before = _amount(ref_ex, pair)
            after = _amount(ex, pair)
            if abs(after - before) <= change_tol * max(1.0, abs(before)):
                continue
            source = ex if pair in ex.index else ref_ex
            change = "added" if before == 0 else "removed" if after == 0 else "changed"
            rows.append({"scenario": run.name, "change": change, "supply_id": pair[0], "demand_id": pair[1],
                         "supply_facility": source.at[pair, "supply_facility"],
                         "demand_facility": source.at[pair, "demand_facility"],
                         "material": source.at[pair, "material"], "reference_t_per_yr": before,
                         "scenario_t_per_yr": after, "difference_t_per_yr": after - before,
                         "unit": "MWh/yr" if _is_heat(source, pair) else "t/yr"})
    exchanges = pd.DataFrame(rows, columns=["scenario", "change", "supply_id", "demand_id", "supply_facility",
                                            "demand_facility", "material", "reference_t_per_yr",
                                            "scenario_t_per_yr", "difference_t_per_yr", "unit"])
    return Comparison(kpis, differences, exchanges, ref.name, failed)


def _is_heat(exchanges: pd.DataFrame, pair: object) -> bool:
    """A heat exchange: its amount is in MWh (``amount_mwh_per_yr``), its tonnes NaN (symbiosis.energy)."""
    return "amount_mwh_per_yr" in exchanges.columns and bool(pd.notna(exchanges.at[pair, "amount_mwh_per_yr"]))


def _amount(exchanges: pd.DataFrame, pair: object) -> float:
    """The exchange's amount in its own unit (t/yr, or MWh/yr for heat); 0 where the pair does not trade."""
    if pair not in exchanges.index:
        return 0.0
    column = "amount_mwh_per_yr" if _is_heat(exchanges, pair) else "amount_t_per_yr"
    return float(exchanges.at[pair, column])


def check_scenario_names(paths: Iterable[str | Path]) -> None:
    """Refuse unsafe or shared scenario names before running anything (see symbiosis.scenarios)."""
    from symbiosis.scenarios import check_scenario_names as check

    check([str(p) for p in paths])


def public_runs(comparison: Comparison, runs: list[ScenarioRun]) -> tuple[Comparison, list[ScenarioRun]]:
    """The comparison and runs as the public may see them (symbiosis/disclosure.py): one set of pseudonyms
    for every scenario, so "Confidential facility 1" is the same firm in each folder and table."""
    from symbiosis import disclosure

    ok = [r.results for r in runs if r.ok and r.results is not None]
    if not ok:
        return comparison, runs
    facilities = pd.concat([r.facilities for r in ok], ignore_index=True).drop_duplicates("facility_id")
    pairs: list[tuple[str, str]] = []
    for r in ok:
        for table, col in ((r.supplies, "supply_id"), (r.demands, "demand_id")):
            pairs += list(zip(table[col].astype(str), table["facility_id"].astype(str), strict=True))
    d = disclosure.Disclosure(facilities, pairs)
    if not d.active:
        return comparison, runs
    shown = []
    for run in runs:
        copy_ = ScenarioRun(str(d.text(run.name)), "", run.ok, run.seconds,
                            disclosure.public_results(run.results, d) if run.results is not None else None,
                            d.data(run.resolved), str(d.text(run.error)))
        shown.append(copy_)
    also = set().union(*(disclosure.complementary_facilities(r.facilities) for r in ok))
    public = disclosure.public_comparison(comparison, d, also)
    public.disclosed = True  # type: ignore[attr-defined]
    return public, shown


def write_comparison(comparison: Comparison, runs: list[ScenarioRun], out_dir: Path, *,
                     public: bool = True) -> dict[str, Path]:
    """Each run's outputs in its own folder (with its resolved scenario), the comparison tables, a
    difference map and ``comparison.html``, as one folder; public unless ``public=False`` (docs/outputs.md,
    "Confidential facilities").

    Written into a staging folder with a ``manifest.json`` and swapped into place whole
    (:func:`symbiosis.atomic.output_folder`): a failed comparison leaves the previous one untouched.
    Raises :class:`~symbiosis.errors.InputError` when two runs would share a folder.
    """
    from symbiosis.errors import Problems

    problems = Problems()
    folders: dict[str, str] = {}
    for run in runs:
        key = _safe(run.name).casefold()
        if key in folders:
            problems.add(run.path, "two scenarios have the same name (their results would share one folder)",
                         column="name", found=run.name, expected=f"a name other than that of {folders[key]}")
        folders[key] = run.path
    problems.raise_if_any()
    if public and not getattr(comparison, "disclosed", False):
        comparison, runs = public_runs(comparison, runs)
    with output_folder(out_dir) as stage:
        written = _write_comparison(comparison, runs, stage, public=public)
    return in_folder(out_dir, stage, written)


def _write_comparison(comparison: Comparison, runs: list[ScenarioRun], out_dir: Path, *,
                      public: bool) -> dict[str, Path]:
    from symbiosis import disclosure
    from symbiosis.outputs.export import write_csv, write_results

    written: dict[str, Path] = {}
    for run in runs:
        folder = out_dir / _safe(run.name)
        folder.mkdir(parents=True, exist_ok=True)
        if run.ok and run.results is not None:
            write_results(run.results, folder, public=public)
            if not public:
                run.resolved = {"disclosure": disclosure.PRIVATE_MARK, **run.resolved}
            write_text_atomic(folder / "scenario.resolved.yaml",
                              yaml.safe_dump(_plain(run.resolved), sort_keys=False, allow_unicode=True))
        else:
            write_text_atomic(folder / "error.txt", run.error + "\n")
    if not comparison.kpis.empty:
        write_csv(out_dir / "kpis_comparison.csv", comparison.kpis)
        write_csv(out_dir / "kpis_differences.csv", comparison.differences)
        write_csv(out_dir / "exchanges_changes.csv", comparison.exchanges)
        written["kpis"] = out_dir / "kpis_comparison.csv"
        written["map"] = difference_map(comparison, runs, out_dir / "differences_map.html")
    status = [{"scenario": r.name, "ok": r.ok, "seconds": round(r.seconds, 3), "error": r.error} for r in runs]
    write_text_atomic(out_dir / "runs.json", json.dumps(status, indent=2) + "\n")
    written["report"] = _comparison_report(comparison, runs, out_dir / "comparison.html",
                                           title="Scenario comparison" if public
                                           else f"{disclosure.PRIVATE_MARK}: scenario comparison")
    return written


def _safe(name: str) -> str:
    """The folder of a run: its scenario name (already checked safe), or for a run whose file could not be
    read, its file's stem made safe (never empty, ``.`` or ``..``, never a path)."""
    from symbiosis.scenarios import scenario_folder, scenario_name_problem

    if scenario_name_problem(name) is None:
        return scenario_folder(name)
    text = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name).strip("_")
    return text or "scenario"


def _plain(value: Any) -> Any:
    """YAML-safe copy (numpy scalars and tuples become plain Python)."""
    return json.loads(json.dumps(value, default=lambda v: v.item() if hasattr(v, "item") else str(v)))


def difference_map(comparison: Comparison, runs: list[ScenarioRun], path: Path) -> Path:
    """A folium map of exchanges added (green), removed (red) and changed (orange) against the reference.

    Scenario names, ids and materials are HTML-escaped; tooltips reach the page as JSON
    (:func:`symbiosis.outputs.mapping.tooltip`), so no text from the data can run as code.
    """
    import folium

    from symbiosis.outputs.escape import html_text
    from symbiosis.outputs.mapping import add_offline_notice, tooltip

    ref = next(r for r in runs if r.name == comparison.reference)
    facilities = ref.results.facilities.set_index("facility_id")  # type: ignore[union-attr]
    for run in runs:
        if run.ok and run.results is not None:
            extra = run.results.facilities.set_index("facility_id")
            facilities = pd.concat([facilities, extra[~extra.index.isin(facilities.index)]])
    fmap = folium.Map(tiles="OpenStreetMap", control_scale=True)
    add_offline_notice(fmap)
    colours = {"added": "#1a9850", "removed": "#d73027", "changed": "#fc8d59"}
    for scenario, group in comparison.exchanges.groupby("scenario") if len(comparison.exchanges) else []:
        # Leaflet's layer control shows layer names as HTML: the name is escaped here, folium writes it as JSON.
        layer = folium.FeatureGroup(name=html_text(scenario))
        for row in group.itertuples():
            if row.supply_facility not in facilities.index or row.demand_facility not in facilities.index:
                continue
            a, b = facilities.loc[row.supply_facility], facilities.loc[row.demand_facility]
            tip = (f"{html_text(row.change)}: {html_text(row.supply_facility)} → "
                   f"{html_text(row.demand_facility)}, {html_text(row.material)}, "
                   f"{row.reference_t_per_yr:,.0f} → {row.scenario_t_per_yr:,.0f} t/yr")
            folium.PolyLine([(a.lat, a.lon), (b.lat, b.lon)], color=colours[row.change], weight=4,
                            tooltip=tooltip(tip), class_name=f"sym-diff sym-diff-{row.change}").add_to(layer)
        layer.add_to(fmap)
    for fid, row in facilities.iterrows():
        folium.CircleMarker((row.lat, row.lon), radius=4, color="#333", fill=True,
                            tooltip=tooltip(html_text(row.get("name", fid)))).add_to(fmap)
    if len(facilities):
        from symbiosis.outputs.mapping import fit_to_park

        fit_to_park(fmap, facilities.reset_index())
    folium.LayerControl(collapsed=False).add_to(fmap)
    from symbiosis.outputs.mapping import _CSS

    fmap.get_root().header.add_child(folium.Element(_CSS), name="symbiosis_css")  # type: ignore[attr-defined]
    fmap.add_child(difference_legend(comparison.reference, colours))
    return write_atomic(path, lambda p: fmap.save(str(p)))


def difference_legend(reference: str, colours: dict[str, str]) -> Any:
    """The difference map's legend: what each line colour means, against which reference (escaped)."""
    from symbiosis.outputs.escape import html_text
    from symbiosis.outputs.mapping import _element_classes

    meaning = {"added": "exchange added by the scenario", "removed": "exchange the scenario drops",
               "changed": "exchange whose t/yr changed"}
    rows = "".join(f'<div class="sym-legend-entry"><span class="sym-swatch" style="background:{colour}"></span>'
                   f"{html_text(meaning.get(change, change))}</div>" for change, colour in colours.items())
    return _element_classes()["Legend"](
        f"<h4>Against the reference {html_text(reference)}</h4>{rows}"
        '<div class="sym-legend-entry"><span class="sym-swatch sym-round" style="background:#333"></span>'
        "facility</div><p>One layer per scenario (layer list, top right); hover a line for its figures.</p>")


def _comparison_report(comparison: Comparison, runs: list[ScenarioRun], path: Path,
                       title: str = "Scenario comparison") -> Path:
    from jinja2 import Environment

    env = Environment(autoescape=True)
    template = env.from_string(_REPORT)
    kpis = comparison.kpis
    text = template.render(
        comparison=comparison, runs=runs, title=title,
        kpi_columns=[c for c in kpis.columns if c not in ("indicator", "unit")] if not kpis.empty else [],
        kpi_rows=kpis.to_dict("records") if not kpis.empty else [],
        diff_rows=comparison.differences.to_dict("records") if not kpis.empty else [],
        exchange_rows=comparison.exchanges.to_dict("records"),
        fmt=lambda v: "–" if v is None or v != v else (f"{v:,.0f}" if isinstance(v, (int, float)) else str(v)),
    )
    return write_text_atomic(path, text)


_REPORT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }}</title>
<style>body{font-family:system-ui,sans-serif;margin:2rem;max-width:1200px}table{border-collapse:collapse;margin:1rem 0}
td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:right}td:first-child,th:first-child{text-align:left}
.failed{color:#b00}</style></head><body>
<h1>{{ title }}</h1>
<p>Reference: <strong>{{ comparison.reference }}</strong>. Differences are scenario minus reference.</p>
{% if comparison.failed %}<h2>Failed scenarios</h2><ul>{% for name, error in comparison.failed.items() %}
<li class="failed"><strong>{{ name }}</strong>: <pre>{{ error }}</pre></li>{% endfor %}</ul>{% endif %}
<h2>Indicators</h2><table><tr><th>indicator</th><th>unit</th>{% for c in kpi_columns %}<th>{{ c }}</th>{% endfor %}</tr>
{% for row in kpi_rows %}<tr><td>{{ row.indicator }}</td><td>{{ row.unit }}</td>{% for c in kpi_columns %}
<td data-kpi="{{ c }}:{{ loop.index0 }}">{{ fmt(row[c]) }}</td>{% endfor %}</tr>{% endfor %}</table>
<h2>Differences against {{ comparison.reference }}</h2><table><tr><th>indicator</th><th>unit</th>
{% for c in kpi_columns %}<th>{{ c }}</th>{% endfor %}</tr>{% for row in diff_rows %}<tr><td>{{ row.indicator }}</td>
<td>{{ row.unit }}</td>{% for c in kpi_columns %}<td>{{ fmt(row[c]) }}</td>{% endfor %}</tr>{% endfor %}</table>
<h2>Exchanges added, removed or changed</h2>
{% if exchange_rows %}<table><tr><th>scenario</th><th>change</th><th>from</th><th>to</th><th>material</th>
<th>reference t/yr</th><th>scenario t/yr</th></tr>{% for r in exchange_rows %}<tr><td>{{ r.scenario }}</td>
<td>{{ r.change }}</td><td>{{ r.supply_facility }}</td><td>{{ r.demand_facility }}</td><td>{{ r.material }}</td>
<td>{{ fmt(r.reference_t_per_yr) }}</td><td>{{ fmt(r.scenario_t_per_yr) }}</td></tr>{% endfor %}</table>
{% else %}<p>No exchange differs from the reference.</p>{% endif %}
<p><a href="differences_map.html">Map of the differences</a></p>
</body></html>
"""
