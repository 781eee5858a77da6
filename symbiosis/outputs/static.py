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
import pandas as pd

from symbiosis.atomic import write_atomic
from symbiosis.outputs.export import WASTE_FATE_KINDS, exchange_material_groups, nace_division, public_results
from symbiosis.outputs.mapping import division_colours, line_weights, material_colour

logger = logging.getLogger(__name__)

#: At most this many facilities are named on the static map (the busiest ones that do not crowd each other).
MAX_LABELS = 30
#: Every facility in view is named on the slide map up to this many (label columns with leader lines).
MAX_LEADER_LABELS = 40
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


def plain_axis(axis: Any, decimals: int | None = None) -> None:
    """Plain tick numbers on a matplotlib axis: no offset (``+1.793e6``), no scientific notation (``1e8``),
    thousands separators; ``decimals`` fixed, or chosen from the tick spacing."""
    from matplotlib.ticker import FuncFormatter

    def label(value: float, _pos: Any) -> str:
        if decimals is not None:
            return f"{value:,.{decimals}f}"
        ticks = axis.get_majorticklocs()
        step = float(np.min(np.diff(ticks))) if len(ticks) > 1 else abs(value) or 1.0
        places = 0 if step >= 1 else min(6, int(math.ceil(-math.log10(step))))
        return f"{value:,.{places}f}"

    axis.set_major_formatter(FuncFormatter(label))


def leader_labels(ax: Any, points: list[tuple[float, float, str]], *, fontsize: float = 8.0) -> list[Any]:
    """Name every point with a label in a column at the left or right edge of ``ax`` (the side nearer the
    point), joined to it by a thin leader line. Within a column the labels keep the points' vertical order
    and are pushed apart to at least one line height, so no two labels overlap whatever the density of the
    points. Returns the text artists."""
    if not points:
        return []
    fig = ax.figure
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    middle = (x0 + x1) / 2
    height_in = ax.get_position().height * fig.get_size_inches()[1]
    # A column holds `capacity` labels; a full column hands the points nearest the middle to the other side,
    # and when both are full the font shrinks until they fit.
    while True:
        line = (fontsize * 1.45 / 72) / max(height_in, 1e-6)  # one label height, as a fraction of the axes
        capacity = max(1, int(0.97 / line))
        if len(points) <= 2 * capacity or fontsize <= 4:
            break
        fontsize *= 0.9
    by_distance = sorted(points, key=lambda p: p[0])
    left = [p for p in by_distance if p[0] < middle]
    right = [p for p in by_distance if p[0] >= middle]
    while len(left) > capacity:
        right.insert(0, left.pop())
    while len(right) > capacity:
        left.append(right.pop(0))
    texts = []
    for side, members in (("left", left), ("right", right)):
        column = sorted(members, key=lambda p: -p[1])
        if not column:
            continue
        wanted = [(p[1] - y0) / (y1 - y0) for p in column]
        # top-down: each label at its point's height, or one line below the label above it
        placed: list[float] = []
        for want in wanted:
            y = min(want, 0.985, placed[-1] - line if placed else 0.985)
            placed.append(y)
        # if the column ran off the bottom, shift it up (the order and spacing are kept)
        if placed and placed[-1] < 0.015:
            shift = 0.015 - placed[-1]
            placed = [y + shift for y in placed]
        x_text = 0.01 if side == "left" else 0.99
        for (px, py, text), y in zip(column, placed, strict=True):
            texts.append(ax.annotate(
                text, xy=(px, py), xycoords="data", xytext=(x_text, y), textcoords="axes fraction",
                ha=side, va="center", fontsize=fontsize, color="#1d1d1d", zorder=6,
                bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.85},
                arrowprops={"arrowstyle": "-", "color": "#777777", "lw": 0.6, "shrinkA": 0, "shrinkB": 4}))
    return texts


def _draw_exchanges(ax: Any, start: np.ndarray, stop: np.ndarray, colour: np.ndarray, widths: np.ndarray,
                    amounts: np.ndarray, arrows: bool = True) -> None:
    from matplotlib.collections import LineCollection

    drawn = ~(np.isnan(start).any(axis=1) | np.isnan(stop).any(axis=1))
    internal = drawn & (start == stop).all(axis=1)
    lines = drawn & ~internal
    order = np.argsort(-amounts)
    order = order[lines[order]]  # thick lines first so thin ones stay visible on top
    if arrows and len(order) <= MAX_ANNOTATED_ARROWS:
        for i in order:
            ax.annotate("", xy=tuple(stop[i]), xytext=tuple(start[i]), zorder=2,
                        arrowprops={"arrowstyle": "-|>", "color": colour[i], "lw": widths[i], "alpha": 0.85,
                                    "shrinkA": 5, "shrinkB": 5, "mutation_scale": 8 + 2 * widths[i]})
    elif len(order):  # one collection and one quiver: seconds instead of minutes for thousands of exchanges
        ax.add_collection(LineCollection([[start[i], stop[i]] for i in order], linewidths=widths[order],
                                         colors=list(colour[order]), alpha=0.7, zorder=2))
        if arrows:
            direction = stop[order] - start[order]
            direction /= np.linalg.norm(direction, axis=1, keepdims=True)
            middle = (start[order] + stop[order]) / 2
            ax.quiver(middle[:, 0], middle[:, 1], direction[:, 0], direction[:, 1], color=list(colour[order]),
                      angles="xy", scale_units="inches", scale=10, width=0.0025, headwidth=5, headlength=5,
                      pivot="mid", zorder=2)
    for i in np.flatnonzero(internal):
        ax.scatter([start[i, 0]], [start[i, 1]], s=(12 + 6 * widths[i]) ** 2, facecolors="none",
                   edgecolors=colour[i], linewidths=widths[i], zorder=2, alpha=0.85)


def _spread_points(lon: np.ndarray, lat: np.ndarray, span: float) -> tuple[np.ndarray, np.ndarray]:
    """Facilities at (nearly) the same place moved onto a small ring (1.5 % of the span) so each shows."""
    lon, lat = lon.copy(), lat.copy()
    key = np.round(lon / (0.004 * span + 1e-12)).astype(np.int64) * 1_000_003 + np.round(
        lat / (0.004 * span + 1e-12)).astype(np.int64)
    for value in np.unique(key):
        members = np.flatnonzero(key == value)
        if len(members) < 2:
            continue
        angles = -np.pi / 2 + 2 * np.pi * np.arange(len(members)) / len(members)
        lon[members] = lon[members].mean() + 0.015 * span * np.cos(angles)
        lat[members] = lat[members].mean() + 0.015 * span * np.sin(angles)
    return lon, lat


def exchange_map_png(results: Any, path: str | os.PathLike[str], *, public: bool = True, dpi: int = 150,
                     size: tuple[float, float] = (12.0, 7.5), extent: str = "auto",
                     cluster_km: float = 3.0) -> Path:
    """Write a slide PNG of facilities (coloured by NACE division) and exchanges (width ∝ √t/yr) to ``path``.

    ``extent="auto"`` (default) draws the densest cluster of facilities (the park, as the web map opens on it)
    when it is much smaller than the region, with an inset of the whole region marking it; ``"region"``
    always the whole region. Every facility in view is named (up to ``MAX_LEADER_LABELS``; above, the
    busiest, none crowding another), in label columns at the sides joined by leader lines, so no two labels
    overlap. The legend gives the material groups and the NACE divisions by name; axis numbers are plain.
    """
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Rectangle

    from symbiosis.outputs.mapping import HEAT_GROUP, densest_cluster, division_names, short_name

    view = public_results(results) if public else results
    facilities = view.facilities.reset_index(drop=True)
    exchanges = view.exchanges.reset_index(drop=True)
    heat = (exchanges["quantity"] == "energy").to_numpy() if "quantity" in exchanges.columns \
        else np.zeros(len(exchanges), dtype=bool)
    groups = np.where(heat, HEAT_GROUP, exchange_material_groups(view).to_numpy()) if len(exchanges) \
        else np.array([], dtype=object)
    amounts = exchanges["amount_t_per_yr"].astype(float).to_numpy() if len(exchanges) else np.array([])
    if heat.any() and "amount_mwh_per_yr" in exchanges.columns:
        amounts = np.where(heat, exchanges["amount_mwh_per_yr"].astype(float).to_numpy(), amounts)
    widths = np.zeros(len(exchanges))
    for mask in (heat, ~heat):
        if mask.any():
            widths[mask] = line_weights(amounts[mask], 0.8, 6.0)
    amounts = np.nan_to_num(amounts, nan=0.0)

    lat_all = facilities["lat"].astype(float).to_numpy()
    lon_all = facilities["lon"].astype(float).to_numpy()
    whole = (np.nanmin(lon_all), np.nanmax(lon_all), np.nanmin(lat_all), np.nanmax(lat_all)) if len(facilities) \
        else (0.0, 1.0, 0.0, 1.0)
    park = facilities
    if extent == "auto" and len(facilities) > 3:
        cluster = densest_cluster(facilities, cluster_km)
        span_all = max(whole[1] - whole[0], whole[3] - whole[2])
        span_park = max(float(cluster["lon"].astype(float).max() - cluster["lon"].astype(float).min()),
                        float(cluster["lat"].astype(float).max() - cluster["lat"].astype(float).min()))
        if 3 <= len(cluster) < len(facilities) and span_park < span_all / 3:
            park = cluster
    elif extent not in ("auto", "region"):
        raise ValueError(f"extent must be 'auto' or 'region', not {extent!r}")
    zoomed = park is not facilities
    p_lon = park["lon"].astype(float)
    p_lat = park["lat"].astype(float)
    view_box = [float(p_lon.min()), float(p_lon.max()), float(p_lat.min()), float(p_lat.max())]
    span = max(view_box[1] - view_box[0], view_box[3] - view_box[2], 1e-4)
    lon_s, lat_s = _spread_points(lon_all, lat_all, span)
    ends = pd.DataFrame({"lon": lon_s, "lat": lat_s}, index=facilities["facility_id"]).groupby(level=0).first()

    fig = Figure(figsize=size)
    ax = fig.add_axes((0.05, 0.08, 0.70, 0.84))
    start = ends.reindex(exchanges["supply_facility"]).to_numpy() if len(exchanges) else np.zeros((0, 2))
    stop = ends.reindex(exchanges["demand_facility"]).to_numpy() if len(exchanges) else np.zeros((0, 2))
    colour = np.array([material_colour(str(g)) for g in groups], dtype=object)
    _draw_exchanges(ax, start, stop, colour, widths, amounts)

    colours = division_colours(facilities["sector"])
    divisions = facilities["sector"].map(nace_division)
    ax.scatter(lon_s, lat_s, s=46, c=[colours[d] for d in divisions], edgecolors="white", linewidths=0.9, zorder=3)
    lat_mid = (view_box[2] + view_box[3]) / 2
    ax.set_aspect(1 / max(math.cos(math.radians(lat_mid)), 0.05))
    # room around the view for the label columns at the sides
    pad_x = 0.7 * max(view_box[1] - view_box[0], span * 0.6) + 1e-4
    pad_y = 0.12 * max(view_box[3] - view_box[2], span * 0.4) + 1e-4
    ax.set_xlim(view_box[0] - pad_x, view_box[1] + pad_x)
    ax.set_ylim(view_box[2] - pad_y, view_box[3] + pad_y)
    ax.set_xlabel("longitude (°E)")
    ax.set_ylabel("latitude (°N)")
    plain_axis(ax.xaxis)
    plain_axis(ax.yaxis)
    ax.grid(True, color="#eeeeee", linewidth=0.6)
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    inside = (lon_s >= x0) & (lon_s <= x1) & (lat_s >= y0) & (lat_s <= y1)
    chosen = facilities[inside]
    if len(chosen) > MAX_LEADER_LABELS:
        chosen = pd.DataFrame([r._asdict() for r in _labelled(chosen)]) if len(chosen) else chosen
    picked = set(chosen.index) if len(chosen) and len(chosen) <= MAX_LEADER_LABELS else set(
        facilities.index[inside][: MAX_LEADER_LABELS])
    leader_labels(ax, [(float(lon_s[i]), float(lat_s[i]), _plain(short_name(str(facilities.at[i, "name"]))))
                       for i in sorted(picked)], fontsize=8.5)
    n_out = int((~inside).sum())
    ax.set_title(("" if public else "PRIVATE: contains confidential data\n")
                 + (f"The park: {int(inside.sum())} of {len(facilities)} facilities "
                    f"({n_out} farther away, see the inset)" if zoomed else
                    f"{len(exchanges)} exchanges between {len(facilities)} facilities")
                 + " · line width ∝ √(t/yr), heat ∝ √(MWh/yr)", fontsize=10)

    if zoomed:
        inset = fig.add_axes((0.77, 0.60, 0.21, 0.32))
        _draw_exchanges(inset, ends.reindex(exchanges["supply_facility"]).to_numpy(),
                        ends.reindex(exchanges["demand_facility"]).to_numpy(), colour, widths * 0.4, amounts,
                        arrows=False)
        inset.scatter(lon_all, lat_all, s=10, c=[colours[d] for d in divisions], zorder=3)
        inset.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ec="#d62728", lw=1.2, zorder=4))
        inset.set_aspect(1 / max(math.cos(math.radians((whole[2] + whole[3]) / 2)), 0.05))
        inset.margins(0.08)
        inset.set_xticks([])
        inset.set_yticks([])
        inset.set_title("whole region (red box: the park)", fontsize=8)

    handles = [Line2D([0], [0], color=material_colour(str(g)), lw=3, label=_plain(str(g)))
               for g in sorted(set(groups))]
    names = division_names(facilities["sector"])
    dots = [Line2D([0], [0], marker="o", lw=0, markersize=7, markerfacecolor=colour_, markeredgecolor="white",
                   label=_short_name(names.get(division, division), 44)) for division, colour_ in colours.items()]
    legend_ax = fig.add_axes((0.77, 0.02, 0.22, 0.56) if zoomed else (0.77, 0.08, 0.22, 0.84))
    legend_ax.axis("off")
    if handles:
        first = legend_ax.legend(handles=handles, title="exchanges by material group", fontsize=7.5,
                                 title_fontsize=8, loc="upper left", frameon=False)
        legend_ax.add_artist(first)
    legend_ax.legend(handles=dots, title="facilities by NACE division", fontsize=7, title_fontsize=8,
                     loc="lower left", frameon=False)
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
    # A view of one period (symbiosis.periods.view) holds that period's figures, not a year's.
    per = f" in {_plain(str(kpis['period']))}" if kpis.get("period") else "/yr"
    return [
        ("Total cost", f"{currency}{per}", float(kpis["cost_bau"]), float(kpis["cost_optimum"])),
        ("Emissions", f"t CO2e{per}", float(kpis["co2e_bau_t"]), float(kpis["co2e_optimum_t"])),
        ("Waste to landfill + incineration", f"t{per}", waste_bau, waste_opt),
        ("Virgin material purchased (not water)", f"t{per}", virgin_bau, virgin_opt),
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
