"""The Monte Carlo's files: tables (CSV), parameters (JSON) and the robustness map (HTML).

Everything goes through the shared writers (``write_csv``, ``write_text_atomic`` inside the caller's
``output_folder``) and, unless the run is private, through symbiosis.disclosure: rows about a confidential
facility's flows or exchanges keep their place in the ranking with pseudonymous ids and no figures.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd

from symbiosis.uncertainty.analysis import (
    DECISION_KPIS,
    MonteCarlo,
    convergence_table,
    exchange_table,
    inputs_table,
    kpi_table,
    measure_first,
    sensitivity_table,
)

#: Dash pattern of a fragile exchange's line on the map (px on, px off).
FRAGILE_DASH = "4 8"


def tables(mc: MonteCarlo, *, robust: float) -> dict[str, pd.DataFrame]:
    """Every table the run writes, before disclosure control, by file name."""
    sensitivity = sensitivity_table(mc)
    samples = pd.DataFrame(mc.kpis, columns=[name for name in kpi_table(mc)["kpi"]])
    samples.insert(0, "sample", np.arange(mc.draws.n_samples))
    samples.insert(1, "failed", [mc.failed.get(k, "") for k in range(mc.draws.n_samples)])
    return {
        "kpis.csv": kpi_table(mc),
        "exchanges.csv": exchange_table(mc, robust=robust),
        "convergence.csv": convergence_table(mc),
        "sensitivity.csv": sensitivity,
        "measure_first.csv": measure_first(sensitivity, mc.draws.inputs),
        "inputs.csv": inputs_table(mc),
        "samples.csv": samples,
    }


def public_tables(found: dict[str, pd.DataFrame], disclosure: Any) -> dict[str, pd.DataFrame]:
    """The public view: ids of confidential facilities and their flows pseudonymised, the figures of their
    rows (their inputs, their exchanges, sensitivity rows about either) suppressed."""
    if not disclosure.active:
        return found
    out = dict(found)
    for name in ("exchanges.csv", "inputs.csv", "measure_first.csv"):
        frame = found[name]
        out[name] = disclosure.frame(frame, hidden=disclosure.hidden_rows(frame), locate_by="")
    sens = found["sensitivity.csv"]
    hidden = disclosure.hidden_rows(sens) | sens["output"].map(disclosure.mentions).astype(bool)
    out["sensitivity.csv"] = disclosure.frame(sens, hidden=hidden, locate_by="")
    conv = found["convergence.csv"]
    hidden = conv["quantity"].map(disclosure.mentions).astype(bool)
    shown = disclosure.frame(conv, hidden=hidden, locate_by="")
    shown["n_samples"] = conv["n_samples"]  # a count of samples, not a figure of the firm
    out["convergence.csv"] = shown
    return out


def write_tables(stage: Path, shown: dict[str, pd.DataFrame]) -> None:
    from symbiosis.outputs.export import write_csv

    for name, frame in shown.items():
        write_csv(stage / name, frame)


def parameters_json(mc: MonteCarlo, *, robust: float, private: bool, n_masked: int) -> str:
    """What the run did: samples, seed, distribution, defaults, truncations, failures, timings."""
    from symbiosis.balances import DEFAULT_UNCERTAINTY
    from symbiosis.disclosure import marker
    from symbiosis.outputs.export import jsonable

    truncated = int(mc.draws.truncated.sum())
    record = {
        **marker(private, n_masked),
        **mc.parameters,
        "n_inputs": len(mc.draws.inputs),
        "distribution": "normal, mean the stated figure, sd = relative_sd x |figure|; amounts and virgin prices "
                        "truncated at 0 (a draw below 0 is redrawn from the truncated normal), fate costs not",
        "default_relative_sd_by_data_quality": DEFAULT_UNCERTAINTY,
        "draws_truncated": truncated,
        "inputs_with_truncated_draws": int((mc.draws.truncated > 0).sum()),
        "robust_probability": robust,
        "decision_kpis": list(DECISION_KPIS),
        "n_failed": len(mc.failed),
        "failed": {str(k): v for k, v in list(mc.failed.items())[:20]} if private else len(mc.failed),
        "drawn": "supply and demand amounts; fate costs and virgin prices of flows that give "
                 "price_uncertainty_pct; the region format gives no range for distances or substitution ratios",
        "inputs_by_kind": {str(k): int(v) for k, v in mc.draws.inputs["kind"].value_counts().items()},
    }
    return json.dumps(jsonable(record), indent=2, allow_nan=False)


def robustness_map(results: Any, exchanges: pd.DataFrame, *, public: bool, robust: float) -> str:
    """The map: facilities as on the run's map, each exchange that appears in some sample drawn with a width
    by its median flow, solid when robust (in the optimum in at least ``robust`` of the samples), dashed when
    fragile; its tooltip gives the probability and P5/P50/P95. ``exchanges`` is the (public) exchange table."""
    import folium

    from symbiosis.disclosure import PRIVATE_MARK
    from symbiosis.outputs.export import facility_names, public_results
    from symbiosis.outputs.mapping import (
        _CSS,
        _centre,
        _element_classes,
        add_offline_notice,
        esc,
        exchange_rows,
        facility_rows,
        fmt,
        line_rows,
    )

    view = public_results(results) if public else results
    currency = str(getattr(view, "kpis", {}).get("currency", "EUR") or "EUR")
    facilities = view.facilities
    heat = exchanges["quantity"].to_numpy() == "energy"
    amount = exchanges["p50_amount"].astype(float).fillna(0.0).to_numpy()
    lines = pd.DataFrame({
        "supply_id": exchanges["supply_id"], "demand_id": exchanges["demand_id"],
        "supply_facility": exchanges["supply_facility"], "demand_facility": exchanges["demand_facility"],
        "material": exchanges["material"], "primary_material": exchanges["primary_material"],
        "quantity": exchanges["quantity"], "amount_t_per_yr": np.where(heat, np.nan, amount),
        "amount_mwh_per_yr": np.where(heat, amount, np.nan), "distance_km": exchanges["distance_km"],
        "saving": np.nan, "co2e_avoided_t_per_yr": np.nan,
    })
    frame = exchange_rows(SimpleNamespace(exchanges=lines, facilities=facilities, supplies=view.supplies,
                                          demands=view.demands), currency, 2.0, 12.0)
    names = facility_names(facilities)
    tips = []
    for row in exchanges.loc[frame.index].itertuples(index=False):
        p = float(row.probability)
        figures = ("figures suppressed (confidential party)" if math.isnan(p) else
                   f"in the optimum in {p:.0%} of the samples ({'robust' if p >= robust else 'fragile'})<br>"
                   f"P5 / P50 / P95: {fmt(row.p5_amount)} / {fmt(row.p50_amount)} / {fmt(row.p95_amount)} "
                   f"{esc(row.unit)}")
        tips.append(f'<div class="sym-tip"><b>{esc(names.get(str(row.supply_facility), row.supply_facility))} → '
                    f"{esc(names.get(str(row.demand_facility), row.demand_facility))}</b><br>{esc(row.material)}"
                    f"<br>{figures}</div>")
    frame["tooltip"] = tips
    frame_heat = (exchanges.loc[frame.index, "quantity"] == "energy").to_numpy()
    is_robust = exchanges.loc[frame.index, "probability"].astype(float).fillna(0.0).to_numpy() >= robust

    m = folium.Map(tiles="OpenStreetMap", control_scale=True, location=_centre(facilities), zoom_start=11)
    m.get_root().header.add_child(folium.Element(_CSS), name="symbiosis_css")  # type: ignore[attr-defined]
    add_offline_notice(m, self_contained_hint=True)
    if not public:
        m.get_root().header.add_child(  # type: ignore[attr-defined]
            folium.Element(f"<title>{PRIVATE_MARK}</title>"), name="symbiosis_private")
    classes = _element_classes()
    base_style = {"opacity": 0.85, "lineCap": "round"}
    for label, mask, style in ((f"Robust exchanges (in ≥ {robust:.0%} of samples)", is_robust, base_style),
                               (f"Fragile exchanges (in < {robust:.0%} of samples)", ~is_robust,
                                {**base_style, "opacity": 0.7, "dashArray": FRAGILE_DASH})):
        part = frame[mask]
        layer = folium.FeatureGroup(name=f"{label} ({len(part)})", show=True)
        part_heat = frame_heat[mask]
        for is_heat in (False, True):  # heat lines carry MWh, material lines tonnes (as on the run's map)
            rows = line_rows(part[part_heat == is_heat])
            if not rows:
                continue
            # as on the run's map: no arrows, and a canvas, from 2,000 lines (mapping.explore measured why)
            layer.add_child(classes["ExchangeLines"](
                rows, style=style, arrows=len(frame) <= 2000, canvas=len(frame) >= 2000,
                amount_attribute="data-mwh-per-yr" if is_heat else "data-t-per-yr",
                unit="MWh/yr" if is_heat else "t/yr", extra_class=" sym-heat" if is_heat else ""))
        layer.add_to(m)
    facility_layer = folium.FeatureGroup(name=f"Facilities ({len(facilities)})")
    facility_layer.add_child(classes["FacilityMarkers"](facility_rows(view, currency), map_name=m.get_name(),
                                                        labels=len(facilities) <= 200))
    facility_layer.add_to(m)
    legend = (f"<h4>Robustness of the exchanges</h4><p>Solid: in the optimum in at least {robust:.0%} of the "
              f"Monte Carlo samples. Dashed: fragile (less often). Width 2–12 px ∝ √(median flow); colour by "
              f"material group; arrow = direction.</p>")
    m.add_child(classes["Legend"](legend))
    folium.LayerControl(collapsed=False).add_to(m)
    if len(facilities):
        lats, lons = facilities["lat"].astype(float), facilities["lon"].astype(float)
        m.fit_bounds([[lats.min(), lons.min()], [lats.max(), lons.max()]], padding=(30, 30))
    return str(m.get_root().render())


__all__ = ["FRAGILE_DASH", "parameters_json", "public_tables", "robustness_map", "tables", "write_tables"]
