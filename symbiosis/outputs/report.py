"""The HTML report: one page that tells a region what symbiosis would achieve and on what assumptions.

``write_report(results, out_dir)`` renders ``report.html`` from the Jinja2 template
``templates/report.html.j2`` (autoescaped: every name from the data appears as text). The page holds the
KPIs against business as usual with their units, the map (``map.html`` written beside the report and shown
in an iframe, or inlined into the page), the Sankey diagrams of the network before and after and of the
facilities that gain most, the exchanges, per-facility gains, shadow prices, unmatched streams with their
reasons, facility balances with closure errors and data-quality warnings, and the methods and assumptions
(parameters, circuity, carbon price, solver, sources of the factors when the Region is given).

KPI figures carry ``data-kpi="name"`` attributes and are formatted by :func:`format_kpi`, so a test can
compare what a reader sees with ``kpis.json``. Plotly's script comes from its CDN by default; with
``self_contained=True`` it is inlined from the plotly Python package and the map is inlined too, with
Leaflet's script and style (symbiosis/outputs/offline.py): the page then works with no network, but for the
map's background tiles (docs/outputs.md). Without the network, a page that needs its scripts says so.
"""

from __future__ import annotations

import logging
import math
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from symbiosis import disclosure
from symbiosis.atomic import write_text_atomic
from symbiosis.outputs.export import (
    CONFIDENTIAL_GRID_DEG,
    WASTE_FATE_KINDS,
    confidential_mask,
    facility_names,
    jsonable,
    public_results,
)
from symbiosis.outputs.mapping import map_html, offline_notice_check, offline_notice_div, save_map
from symbiosis.outputs.sankey import (
    WATER_CLASSES,
    energy_sankey,
    facility_sankey,
    network_sankey,
    substance_sankey,
    symbiosis_sankey,
)
from symbiosis.outputs.story import story

logger = logging.getLogger(__name__)

#: Rows shown per table; the CSV files written by write_results hold them all.
MAX_ROWS = 500

#: Shown above the Sankeys until plotly.js has loaded (HTML written here, never data).
PLOTLY_OFFLINE_MESSAGE = (
    "<b>The flow diagrams cannot be drawn: plotly.js did not load.</b> They need plotly.js from the internet "
    "(cdn.plot.ly): open the report with a network connection, or write it with "
    "<code>symbiosis run --self-contained</code> (<code>write_report(..., self_contained=True)</code>), which "
    "puts plotly.js into the page. The tables below do not need it."
)
PLOTLY_NOTICE_ID = "sym-plotly-offline-notice"

#: How many facilities get their own balance Sankey in the report (those with the largest gain).
N_FACILITY_SANKEYS = 4


def kpi_decimals(value: float) -> int:
    """Decimals shown for a KPI value: none for whole numbers and from 10 upwards, two below."""
    return 0 if abs(value) >= 10 or float(value).is_integer() else 2


def format_kpi(value: Any) -> str:
    """A KPI as displayed: thousands separators, decimals by :func:`kpi_decimals`; text as it is."""
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value)
    if isinstance(value, int):
        return f"{value:,d}"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(number):
        return "n/a"
    return f"{number:,.{kpi_decimals(number)}f}"


def format_number(value: Any, decimals: int = 0) -> str:
    """A table figure with thousands separators; empty for a missing value."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "" if value is None else str(value)
    if math.isnan(number):
        return ""
    return f"{number:,.{decimals}f}"


def _percent(value: Any, decimals: int = 1) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return ""
    return "" if math.isnan(number) else f"{number * 100:.{decimals}f} %"


def _environment() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("symbiosis.outputs", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["kpi"] = format_kpi
    env.filters["num"] = format_number
    env.filters["pct"] = _percent
    return env


def _records(frame: pd.DataFrame | None) -> list[dict[str, Any]]:
    if frame is None or frame.empty:
        return []
    return [dict(row) for row in frame.to_dict(orient="records")]


def _waste_to_fate(supplies: pd.DataFrame, column: str) -> float:
    if supplies is None or "fate_kind" not in supplies.columns or column not in supplies.columns:
        return float("nan")
    return float(supplies.loc[supplies["fate_kind"].isin(WASTE_FATE_KINDS), column].sum())


def kpi_rows(results: Any) -> list[dict[str, Any]]:
    """Rows of the KPI table: label, unit, and the kpis.json keys for BAU, optimum and change."""
    kpis = results.kpis
    currency = kpis.get("currency", "EUR")
    price = float(kpis.get("carbon_price") or 0.0)
    rows = [
        {"label": "Total cost" + (" (money only, carbon cost not included)" if price > 0 else ""),
         "unit": f"{currency}/yr", "bau": "cost_bau", "optimum": "cost_optimum",
         "change": "net_cost_saving", "change_label": "saving"},
        *([{"label": f"Total cost including carbon at {price:,.0f} {currency}/t CO2e", "unit": f"{currency}/yr",
            "bau": "cost_incl_carbon_bau", "optimum": "cost_incl_carbon_optimum",
            "change": "net_saving_incl_carbon", "change_label": "saving"}]
          if price > 0 and "net_saving_incl_carbon" in kpis else []),
        {"label": "Emissions", "unit": "t CO2e/yr", "bau": "co2e_bau_t", "optimum": "co2e_optimum_t",
         "change": "co2e_avoided_t", "change_label": "avoided"},
        {"label": "Waste diverted from landfill and incineration", "unit": "t/yr", "change": "waste_diverted_t",
         "change_label": "diverted"},
        {"label": "… of which from landfill", "unit": "t/yr", "change": "landfill_diverted_t",
         "change_label": "diverted"},
        {"label": "… of which from incineration", "unit": "t/yr", "change": "incineration_diverted_t",
         "change_label": "diverted"},
        {"label": "Virgin material avoided", "unit": "t/yr", "change": "virgin_avoided_t", "change_label": "avoided"},
        {"label": "Water saved", "unit": "m³/yr", "change": "water_saved_m3", "change_label": "saved"},
        {"label": "Transport for the exchanges", "unit": "t·km/yr", "change": "tkm", "change_label": "added"},
        # Heat (symbiosis.energy), in MWh: rows appear only when the KPIs hold them and heat was exchanged.
        {"label": "Heat delivered", "unit": "MWh/yr", "change": "heat_delivered_mwh", "change_label": "delivered"},
        {"label": "… lost in the pipes", "unit": "MWh/yr", "change": "heat_lost_mwh", "change_label": "lost"},
        {"label": "… heat pump electricity", "unit": "MWh/yr", "change": "heat_pump_electricity_mwh",
         "change_label": "used"},
        {"label": "Fuel avoided", "unit": "MWh/yr", "change": "fuel_avoided_mwh", "change_label": "avoided"},
    ]
    if not kpis.get("n_energy_exchanges"):
        rows = [row for row in rows if row["unit"] != "MWh/yr"]
    if kpis.get("period"):  # a view of one period (symbiosis.periods.view): its figures are that period's
        rows = [{**row, "unit": row["unit"].replace("/yr", f" in {kpis['period']}")} for row in rows]
    return [{**row, **{k: (row.get(k) if row.get(k) in kpis else None) for k in ("bau", "optimum", "change")}}
            for row in rows if any(row.get(k) in kpis for k in ("bau", "optimum", "change"))]


def network_figures(view: Any, public: bool) -> list[tuple[str, Any]]:
    """The network Sankeys: materials before and after; water apart from the other materials when the region
    has both (one cooling-water stream would flatten them); heat in MWh/yr apart from tonnes when there is
    any (symbiosis.energy)."""
    def has(frame: pd.DataFrame, column: str, values: tuple[str, ...]) -> bool:
        return column in frame.columns and bool(frame[column].astype(str).isin(values).any())

    supplies, demands = view.supplies, view.demands
    mass = [frame[frame["quantity"] == "mass"] if "quantity" in frame.columns else frame
            for frame in (supplies, demands)]
    water_apart = (any(has(f, "material_class", WATER_CLASSES) for f in mass)
                   and any(not f.empty and not f["material_class"].astype(str).isin(WATER_CLASSES).all()
                           for f in mass if "material_class" in f.columns))
    heat = has(supplies, "quantity", ("energy",)) or has(demands, "quantity", ("energy",))
    materials = ", materials without water" if water_apart else ", materials" if heat else ""
    figures: list[tuple[str, Any]] = [
        (f"Before symbiosis (business as usual){materials}",
         network_sankey(view, after=False, public=public, water=False if water_apart else None)),
        (f"After symbiosis (optimum){materials}",
         network_sankey(view, after=True, public=public, water=False if water_apart else None)),
    ]
    if water_apart:
        figures += [("Water before symbiosis", network_sankey(view, after=False, public=public, water=True)),
                    ("Water after symbiosis", network_sankey(view, after=True, public=public, water=True))]
    if heat:
        figures += [("Heat before symbiosis (MWh/yr)", energy_sankey(view, after=False, public=public)),
                    ("Heat after symbiosis (MWh/yr)", energy_sankey(view, after=True, public=public))]
    return figures


def _table(frame: pd.DataFrame, max_rows: int, file: str) -> dict[str, Any]:
    """The first ``max_rows`` rows of a table for the template, with the total and the file holding all."""
    return {"rows": _records(frame.head(max_rows)), "total": len(frame), "file": file}


def _context(results: Any, region: Any, public: bool, map_src: str | None, map_srcdoc: str | None,
             include_plotlyjs: str | bool, max_rows: int) -> dict[str, Any]:
    view = public_results(results, region=region) if public else results
    scrub = disclosure.for_results(results, region) if public else None
    kpis = dict(view.kpis)
    currency = str(kpis.get("currency", "EUR"))
    names = facility_names(view.facilities)

    def name(fid: Any) -> str:
        return names.get(str(fid), str(fid))

    # Sankeys: the first figure carries plotly.js (CDN tag or inline), the others reuse it.
    # the public view is marked as such: the Sankeys take it as it is, without masking it again
    figures = network_figures(view, public)
    facilities = view.facilities
    if "gain" in facilities.columns and len(facilities):
        top = facilities.assign(_abs=facilities["gain"].abs()).sort_values("_abs", ascending=False)
        if "n_exchanges" in top.columns:
            top = top[top["n_exchanges"] > 0]
        hidden = set(results.facilities.loc[confidential_mask(results.facilities), "facility_id"].astype(str))
        hidden |= disclosure.complementary_facilities(results.facilities)
        detail = region if region is not None and getattr(region, "flows", None) is not None else results
        for row in top.head(N_FACILITY_SANKEYS).itertuples(index=False):
            original_id = _original_id(results, view, row.facility_id)
            if public and original_id in hidden:
                continue  # its balance is suppressed (a confidential facility, or one suppressed beside it)
            try:
                fig = facility_sankey(detail, original_id)
            except (ValueError, TypeError) as exc:
                logger.info("no balance Sankey for %s: %s", row.facility_id, exc)
                continue
            figures.append((f"Balance of {row.name}", fig))
    substance_fig = substance_sankey(view, public=public)  # traced substances (symbiosis.network)
    if substance_fig is not None:
        figures.append(("Substances", substance_fig))
    # First, the symbiosis itself: one node per facility (its loops show), every exchange on relative widths,
    # then materials and heat apart with their units; the flows by material before and after follow.
    heat_exchanged = "quantity" in view.exchanges.columns and bool((view.exchanges["quantity"] == "energy").any())
    main = [("Every exchange, one node per facility", symbiosis_sankey(view, quantity="all", public=public))]
    if heat_exchanged:
        main += [("Materials and water between facilities", symbiosis_sankey(view, quantity="mass", public=public)),
                 ("Heat between facilities", symbiosis_sankey(view, quantity="energy", public=public))]
    figures = main + figures
    sankeys = []
    for i, (title, fig) in enumerate(figures):
        # the substance Sankey runs over up to five columns (sources, processors, users, fates): full width,
        # or a facility's name in one column runs into the labels of the next
        wide = i < len(main) + 2 or title == "Substances"
        sankeys.append({"title": title, "wide": wide, "main": i < len(main), "html": _markup(fig.to_html(
            full_html=False, include_plotlyjs=include_plotlyjs if i == 0 else False,
            config={"displaylogo": False, "responsive": True}, default_width="100%"))})

    exchanges = view.exchanges.copy()
    exchanges["from_name"] = exchanges["supply_facility"].map(name)
    exchanges["to_name"] = exchanges["demand_facility"].map(name)
    exchanges = exchanges.sort_values("amount_t_per_yr", ascending=False)

    gains = facilities.copy()
    if "gain" in gains.columns:
        gains = gains.sort_values("gain", ascending=False)

    supplies = view.supplies.copy()
    supplies["facility_name"] = supplies["facility_id"].map(name)
    demands = view.demands.copy()
    demands["facility_name"] = demands["facility_id"].map(name)
    unmatched = supplies[supplies.get("to_fate_t_per_yr", supplies["amount_t_per_yr"]) > 1e-9]
    permits = getattr(results, "permit_opportunities", None)
    permits = permits.copy() if permits is not None else pd.DataFrame()
    if len(permits) and public:  # a confidential facility's permit gap is not for publication
        hidden = set(results.facilities.loc[confidential_mask(results.facilities), "facility_id"])
        permits = permits[~permits["supply_facility"].isin(hidden) & ~permits["demand_facility"].isin(hidden)]
    if len(permits):
        permits["supply_name"] = permits["supply_facility"].map(name)
        permits["demand_name"] = permits["demand_facility"].map(name)

    balance_frames = []
    warnings: list[str] = []
    for stage, attr in (("before", "balances"), ("after", "balances_after")):
        table = getattr(getattr(view, attr, None), "table", None)
        if table is None or table.empty:
            continue
        frame = table.copy()
        frame["facility_name"] = frame["facility_id"].map(name)
        frame["stage"] = stage
        balance_frames.append(frame)
        if stage == "before":
            # The same messages, counted the same way, as the terminal prints (symbiosis.balances.Balances).
            before = getattr(view, attr)
            warnings.extend(before.warnings(names=names))
            warnings.extend(before.data_quality_notes(names=names))
    if region is not None:
        warnings.extend(str(w) for w in getattr(region, "warnings", []))
    if scrub is not None:
        warnings = [str(scrub.text(w)) for w in warnings]
    balances = pd.concat(balance_frames, ignore_index=True) if balance_frames else pd.DataFrame()
    if not balances.empty:
        # Before the exchanges first; within a stage, the worst closure first.
        balances = balances.assign(_stage=balances["stage"].eq("after"),
                                   _error=-balances["closure_error"].abs().fillna(0.0))
        balances = balances.sort_values(["_stage", "_error"], kind="stable").drop(columns=["_stage", "_error"])

    reconciliation = _reconciliation(results, scrub, name, max_rows)
    parameters = {**dict(getattr(view, "parameters", {}) or {})}
    sources = _sources(region, parameters, scrub)
    waste_bau = _waste_to_fate(view.supplies, "amount_t_per_yr")
    waste_after = _waste_to_fate(view.supplies, "to_fate_t_per_yr")
    n_confidential = int(confidential_mask(results.facilities).sum()) if public else 0
    carbon_priced = float(kpis.get("carbon_price") or 0.0) > 0
    board = story(results, view, region, public=public, n_permits=len(permits))
    return {
        "story": board,
        "title": _title(region, parameters) if public else f"{disclosure.PRIVATE_MARK}: {_title(region, parameters)}",
        "generated": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "kpis": kpis,
        "kpi_rows": kpi_rows(view),
        "currency": currency,
        "headline": [k for k in ("net_cost_saving", *(("net_saving_incl_carbon",) if carbon_priced else ()),
                                 "co2e_avoided_t", "waste_diverted_t", "virgin_avoided_t", "n_exchanges",
                                 "n_facilities_participating") if k in kpis],
        "waste_bau": waste_bau,
        "waste_after": waste_after,
        "virgin_bau": float(view.demands["amount_t_per_yr"].sum()) if len(view.demands) else 0.0,
        "virgin_after": float(view.demands["virgin_t_per_yr"].sum())
        if "virgin_t_per_yr" in view.demands.columns and len(view.demands) else float("nan"),
        "map_src": map_src,
        "map_srcdoc": map_srcdoc,
        "sankeys": sankeys,
        "substance_warnings": [str(m) for m in getattr(view, "substance_warnings", pd.DataFrame()).get(
            "message", pd.Series(dtype=str))],
        "plotly_notice": _markup(offline_notice_div(PLOTLY_OFFLINE_MESSAGE, PLOTLY_NOTICE_ID, position="static")),
        "plotly_check": _markup(offline_notice_check("window.Plotly && window.Plotly.newPlot", PLOTLY_NOTICE_ID)),
        "exchanges": _table(exchanges, max_rows, "exchanges.csv"),
        "gains": _table(gains, max_rows, "facilities.csv"),
        "supplies": _table(supplies.sort_values("amount_t_per_yr", ascending=False), max_rows, "supplies.csv"),
        "demands": _table(demands.sort_values("amount_t_per_yr", ascending=False), max_rows, "demands.csv"),
        "unmatched": _table(unmatched.sort_values("to_fate_t_per_yr" if "to_fate_t_per_yr" in unmatched else
                                                  "amount_t_per_yr", ascending=False), max_rows, "supplies.csv"),
        "balances": _table(balances, max_rows, "balances.csv"),
        "permits": _table(permits, max_rows, "permit_opportunities.csv"),
        "reconciliation": reconciliation,
        "warnings": warnings[:max_rows],
        "n_warnings": len(warnings),
        "parameters": jsonable(parameters),
        "sources": sources,
        "solver": kpis.get("solver", "unknown"),
        "status": kpis.get("status", "unknown"),
        "public": public,
        "n_confidential": n_confidential,
        "grid_deg": CONFIDENTIAL_GRID_DEG,
        "tolerance": getattr(getattr(view, "balances", None), "tolerance", None),
        "period": {"name": kpis["period"], "days": kpis.get("period_days")} if kpis.get("period") else None,
    }


def _reconciliation(results: Any, scrub: Any, name: Any, max_rows: int) -> dict[str, Any] | None:
    """Measured and reconciled flows of a run on reconciled flows (symbiosis.account.reconcile), gross errors
    and largest adjustments first; in the public view a confidential facility's flows (and those suppressed
    beside it) are left out."""
    network = getattr(results, "reconciliation", None)
    if network is None:
        return None
    flows = network.flows.copy()
    messages = list(network.warnings)
    if scrub is not None:
        hidden = set(results.facilities.loc[confidential_mask(results.facilities), "facility_id"].astype(str))
        hidden |= disclosure.complementary_facilities(results.facilities)
        from symbiosis.account.reconcile import shares_stream_with

        flows = flows[~flows["facility_id"].astype(str).isin(hidden) & ~shares_stream_with(flows, hidden)]
        messages = [str(scrub.text(m)) for m in messages if not any(h in m for h in hidden)]
    flows["facility_name"] = flows["facility_id"].map(name)
    flows = flows.assign(_order=-flows["adjustment_sigma"].abs().fillna(0.0)).sort_values(
        ["gross_error", "_order"], ascending=[False, True], kind="stable").drop(columns="_order")
    return {"test": network.global_test, "gross": messages, "flows": _table(flows, max_rows, "reconciled_flows.csv")}


def _title(region: Any, parameters: dict[str, Any]) -> str:
    name = getattr(region, "name", None) or parameters.get("region")
    title = f"Industrial symbiosis: {name}" if name else "Industrial symbiosis report"
    return f"{title}, period {parameters['period']}" if parameters.get("period") else title


def _original_id(results: Any, view: Any, public_id: Any) -> str:
    """The facility id in ``results`` of a row of the public ``view`` (same row order)."""
    ids = view.facilities["facility_id"].astype(str).tolist()
    return str(results.facilities["facility_id"].iloc[ids.index(str(public_id))])


def _sources(region: Any, parameters: dict[str, Any], scrub: Any = None) -> list[dict[str, str]]:
    """Where the factors came from: region sources, reference emission factors and fates, parameters.

    With ``scrub`` (a public report's Disclosure) region sources cited only by confidential facilities are
    left out and the others scrubbed (symbiosis.disclosure.region_sources)."""
    rows: list[dict[str, str]] = []
    settings = getattr(region, "settings", None)
    region_sources = (disclosure.region_sources(region, scrub) if scrub is not None and region is not None
                      else (getattr(settings, "sources", None) or {}))
    for key, value in region_sources.items():
        rows.append({"item": str(key), "kind": "region", "value": "", "source": str(value)})
    reference = getattr(region, "reference", None)
    factors = getattr(reference, "emission_factors", None)
    if isinstance(factors, pd.DataFrame):
        for row in factors.to_dict(orient="records"):
            year = row.get("year", "")
            rows.append({"item": str(row.get("item", "")), "kind": f"emission factor ({row.get('kind', '')})",
                         "value": f"{format_number(row.get('co2e_t_per_t'), 4)} t CO2e/t",
                         "source": f"{row.get('source', '')}" + (f", {year}" if year not in ("", None) else "")})
    fates = getattr(reference, "fates", None)
    if isinstance(fates, pd.DataFrame):
        table = fates.reset_index() if "fate_id" not in fates.columns else fates
        for row in table.to_dict(orient="records"):
            rows.append({"item": str(row.get("fate_id", "")), "kind": f"fate ({row.get('kind', '')})",
                         "value": f"{format_number(row.get('cost_per_t'), 2)} per t, "
                                  f"{format_number(row.get('co2e_t_per_t'), 4)} t CO2e/t",
                         "source": str(row.get("source", ""))})
    extra = parameters.get("sources")
    for key, value in (extra.items() if isinstance(extra, dict) else []):
        rows.append({"item": str(key), "kind": "parameter", "value": "", "source": str(value)})
    if scrub is not None:
        rows = [{k: str(scrub.text(v)) for k, v in row.items()} for row in rows]
    return rows


def _markup(text: str) -> Any:
    from markupsafe import Markup

    return Markup(text)  # noqa: S704  (plotly's own HTML: figure data is JSON-encoded by plotly)


def render_report(results: Any, *, region: Any = None, public: bool = True, self_contained: bool = False,
                  map_src: str | None = "map.html", max_rows: int = MAX_ROWS) -> str:
    """The report page as a string (see :func:`write_report`)."""
    map_srcdoc = map_html(public_results(results, region=region) if public else results,
                          public=public, self_contained=True) if self_contained else None
    context = _context(results, region, public, None if self_contained else map_src, map_srcdoc,
                       True if self_contained else "cdn", max_rows)
    from symbiosis.periods.outputs import report_context

    context["periods"] = report_context(results, public=public, region=region)
    return str(_environment().get_template("report.html.j2").render(**context))


def write_report(results: Any, out_dir: str | os.PathLike[str], *, region: Any = None, public: bool = True,
                 self_contained: bool = False, max_rows: int = MAX_ROWS) -> Path:
    """Write ``report.html`` (and, unless ``self_contained``, the ``map.html`` it shows) into ``out_dir``.

    ``region`` (optional) adds the loading warnings and the sources of the reference factors; the facility
    Sankeys take their detail by category from it, or else from ``results.balances.flows`` (a confidential
    facility in the public view gets the totals only). ``self_contained=True`` inlines plotly.js and the map
    into the one file. Long tables show their first ``max_rows`` rows and name the CSV file that holds all.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if not self_contained:
        save_map(public_results(results, region=region) if public else results, out / "map.html", public=public)
    text = render_report(results, region=region, public=public, self_contained=self_contained)
    path = write_text_atomic(out / "report.html", text)
    logger.info("report written to %s (%.1f kB, self_contained=%s)", path, len(text.encode("utf-8")) / 1024,
                self_contained)
    return path
