"""Static PNG figures for slides and documents (matplotlib, no tiles, no network).

``exchange_map_png`` draws facilities and exchanges on longitude/latitude axes (aspect corrected for the
latitude, so distances look right), with the same colours and width rule as the web map: line width grows
with the square root of t/yr, colour shows the material group, an arrowhead the direction.
``kpi_bars_png`` compares business as usual with the optimum for cost, CO2e, waste to landfill and
incineration, and virgin material purchased. Both draw on a bare ``matplotlib.figure.Figure`` (no pyplot
state), write atomically, and anonymise confidential facilities unless ``public=False``.
"""

from __future__ import annotations

import io
import logging
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from symbiosis.atomic import write_atomic
from symbiosis.outputs.export import WASTE_FATE_KINDS, exchange_material_groups, nace_division, public_results
from symbiosis.outputs.mapping import division_colours, line_weights, material_colour

logger = logging.getLogger(__name__)

#: At most this many facilities are named on the static map (the busiest ones that do not crowd each other).
MAX_LABELS = 30
#: Up to this many exchanges get a drawn arrow each; above, lines and midpoint arrowheads are drawn in bulk.
MAX_ANNOTATED_ARROWS = 300


def _plain(text: str) -> str:
    """Text from the data as matplotlib shows it literally: a ``$`` pair would start mathtext (and a name
    like ``$x^{$`` would stop the run with a parse error)."""
    return text.replace("$", r"\$")


def _short_name(name: str, limit: int = 28) -> str:
    return _plain(name if len(name) <= limit else name[: limit - 1].rstrip() + "…")


def _labelled(facilities: Any) -> list[Any]:
    """Up to MAX_LABELS facilities to name, busiest first, none within 4 % of the map's span of another."""
    if facilities.empty:
        return []
    lat = facilities["lat"].astype(float)
    lon = facilities["lon"].astype(float) * math.cos(math.radians(float(lat.mean())))
    span = max(float(lat.max() - lat.min()), float(lon.max() - lon.min()), 1e-9)
    busiest = facilities.assign(label_x=lon, label_y=lat)
    if "n_exchanges" in busiest.columns:
        busiest = busiest.sort_values("n_exchanges", ascending=False, kind="stable")
    chosen: list[Any] = []
    for row in busiest.itertuples(index=False):
        if len(chosen) >= MAX_LABELS:
            break
        if all(math.hypot(row.label_x - c.label_x, row.label_y - c.label_y) > 0.04 * span for c in chosen):
            chosen.append(row)
    return chosen


def _save(fig: Any, path: str | os.PathLike[str], dpi: int) -> Path:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    data = buffer.getvalue()
    return write_atomic(Path(path), lambda tmp: tmp.write_bytes(data))


def exchange_map_png(results: Any, path: str | os.PathLike[str], *, public: bool = True, dpi: int = 150,
                     size: tuple[float, float] = (9.0, 7.0)) -> Path:
    """Write a PNG of facilities (coloured by NACE division) and exchanges (width ∝ √t/yr) to ``path``."""
    from matplotlib.collections import LineCollection
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    view = public_results(results) if public else results
    facilities = view.facilities
    located = facilities.drop_duplicates("facility_id").set_index("facility_id")
    exchanges = view.exchanges.reset_index(drop=True)
    groups = exchange_material_groups(view).to_numpy()
    widths = line_weights(exchanges["amount_t_per_yr"], 0.8, 6.0) if len(exchanges) else np.array([])

    fig = Figure(figsize=size)
    ax = fig.add_subplot()
    ends = located[["lon", "lat"]].astype(float)
    start = ends.reindex(exchanges["supply_facility"]).to_numpy()
    stop = ends.reindex(exchanges["demand_facility"]).to_numpy()
    colour = np.array([material_colour(str(g)) for g in groups], dtype=object)
    drawn = ~(np.isnan(start).any(axis=1) | np.isnan(stop).any(axis=1))
    internal = drawn & (start == stop).all(axis=1)
    lines = drawn & ~internal
    order = np.argsort(-exchanges["amount_t_per_yr"].to_numpy(dtype=float))
    order = order[lines[order]]  # thick lines first so thin ones stay visible on top
    if len(order) <= MAX_ANNOTATED_ARROWS:
        for i in order:
            ax.annotate("", xy=tuple(stop[i]), xytext=tuple(start[i]), zorder=2,
                        arrowprops={"arrowstyle": "-|>", "color": colour[i], "lw": widths[i], "alpha": 0.85,
                                    "shrinkA": 5, "shrinkB": 5, "mutation_scale": 8 + 2 * widths[i]})
    else:  # one collection and one quiver: seconds instead of minutes for thousands of exchanges
        ax.add_collection(LineCollection([[start[i], stop[i]] for i in order], linewidths=widths[order],
                                         colors=list(colour[order]), alpha=0.7, zorder=2))
        direction = stop[order] - start[order]
        direction /= np.linalg.norm(direction, axis=1, keepdims=True)
        middle = (start[order] + stop[order]) / 2
        ax.quiver(middle[:, 0], middle[:, 1], direction[:, 0], direction[:, 1], color=list(colour[order]),
                  angles="xy", scale_units="inches", scale=10, width=0.0025, headwidth=5, headlength=5,
                  pivot="mid", zorder=2)
    for i in np.flatnonzero(internal):
        ax.scatter([start[i, 0]], [start[i, 1]], s=(12 + 6 * widths[i]) ** 2, facecolors="none",
                   edgecolors=colour[i], linewidths=widths[i], zorder=2, alpha=0.85)

    colours = division_colours(facilities["sector"])
    divisions = facilities["sector"].map(nace_division)
    ax.scatter(facilities["lon"].astype(float), facilities["lat"].astype(float), s=36,
               c=[colours[d] for d in divisions], edgecolors="white", linewidths=0.8, zorder=3)
    for row in _labelled(facilities):
        ax.annotate(_short_name(str(row.name)), (float(row.lon), float(row.lat)), xytext=(4, 4),
                    textcoords="offset points", fontsize=7, color="#333333", zorder=4)

    if len(facilities):
        lat_mid = float(facilities["lat"].astype(float).mean())
        ax.set_aspect(1 / max(math.cos(math.radians(lat_mid)), 0.05))
        ax.margins(0.08)
    ax.set_xlabel("longitude (°E)")
    ax.set_ylabel("latitude (°N)")
    ax.grid(True, color="#eeeeee", linewidth=0.6)
    ax.set_title(("" if public else "PRIVATE: contains confidential data\n")
                 + f"{len(exchanges)} exchanges between {len(facilities)} facilities (line width ∝ √t/yr)",
                 fontsize=10)
    handles = [Line2D([0], [0], color=material_colour(g), lw=3, label=_plain(g)) for g in sorted(set(groups))]
    if handles:
        ax.legend(handles=handles, title="material group", fontsize=7, title_fontsize=8, loc="best",
                  framealpha=0.9)
    target = _save(fig, path, dpi)
    logger.info("static exchange map written to %s", target)
    return target


def bau_optimum_figures(results: Any) -> list[tuple[str, str, float, float]]:
    """(title, unit, BAU, optimum) for cost, CO2e, waste to landfill/incineration and virgin purchased."""
    kpis = results.kpis
    currency = _plain(str(kpis.get("currency", "EUR")))
    supplies, demands = results.supplies, results.demands
    waste = supplies["fate_kind"].isin(WASTE_FATE_KINDS) if "fate_kind" in supplies.columns else None
    waste_bau = float(supplies.loc[waste, "amount_t_per_yr"].sum()) if waste is not None else math.nan
    waste_opt = float(supplies.loc[waste, "to_fate_t_per_yr"].sum()) \
        if waste is not None and "to_fate_t_per_yr" in supplies.columns else math.nan
    # Material only, as the virgin_avoided_t KPI counts it: water is reported as water saved.
    material = (~demands["material_class"].isin(["water", "seawater"]) if "material_class" in demands.columns
                else demands["amount_t_per_yr"].notna())
    virgin_bau = float(demands.loc[material, "amount_t_per_yr"].sum())
    virgin_opt = float(demands.loc[material, "virgin_t_per_yr"].sum()) \
        if "virgin_t_per_yr" in demands.columns else math.nan
    return [
        ("Total cost", f"{currency}/yr", float(kpis["cost_bau"]), float(kpis["cost_optimum"])),
        ("Emissions", "t CO2e/yr", float(kpis["co2e_bau_t"]), float(kpis["co2e_optimum_t"])),
        ("Waste to landfill + incineration", "t/yr", waste_bau, waste_opt),
        ("Virgin material purchased (not water)", "t/yr", virgin_bau, virgin_opt),
    ]


def _short(value: float) -> str:
    for factor, suffix in ((1e9, " G"), (1e6, " M"), (1e3, " k")):
        if abs(value) >= factor:
            return f"{value / factor:.3g}{suffix}"
    return f"{value:.3g}"


def kpi_bars_png(results: Any, path: str | os.PathLike[str], *, dpi: int = 150,
                 size: tuple[float, float] = (11.0, 3.6)) -> Path:
    """Write a PNG of four bar pairs, business as usual against the optimum, each with its own unit."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    panels = bau_optimum_figures(results)
    fig = Figure(figsize=size)
    axes = fig.subplots(1, len(panels))
    for ax, (title, unit, bau, optimum) in zip(np.atleast_1d(axes), panels, strict=True):
        values = [bau, optimum]
        bars = ax.bar(["BAU", "optimum"], [0 if math.isnan(v) else v for v in values],
                      color=["#9d9d9d", "#2c7a4b"], width=0.6)
        for bar, value in zip(bars, values, strict=True):
            ax.annotate("n/a" if math.isnan(value) else _short(value), (bar.get_x() + bar.get_width() / 2,
                        bar.get_height()), ha="center", va="bottom", fontsize=8, xytext=(0, 2),
                        textcoords="offset points")
        if bau and not math.isnan(bau) and not math.isnan(optimum) and bau != 0:
            ax.set_title(f"{title}\n{(optimum - bau) / abs(bau):+.0%}", fontsize=9)
        else:
            ax.set_title(title, fontsize=9)
        ax.set_ylabel(unit, fontsize=8)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: _short(v) if v else "0"))
        ax.tick_params(labelsize=8)
        ax.spines[["top", "right"]].set_visible(False)
        ax.margins(y=0.15)
    fig.suptitle("Business as usual against the optimum", fontsize=11)
    fig.tight_layout()
    target = _save(fig, path, dpi)
    logger.info("KPI bars written to %s", target)
    return target
