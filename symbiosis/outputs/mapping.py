"""Interactive map of the exchange network (folium / Leaflet).

``explore(results)`` draws what the optimiser found on a web map, in the manner of GeoPandas' ``explore``:
it takes an optional ``folium.Map`` and returns it, and folium is imported only when it is called.

What a person sees:

- facilities as round markers coloured by NACE division, with a popup giving the name, the sector, the
  facility's gain and its main flows (what it sends, receives and still sends to its current fate);
- exchanges as lines from supplier to receiver, one toggleable layer per material group (material class);
  the line width follows the amount, ``w = min_weight + (max_weight - min_weight) * sqrt(t / t_max)``
  (2 to 12 px by default: the square root keeps small exchanges visible next to large ones), the colour
  follows the material group, an arrowhead at the midpoint shows the direction, and the tooltip gives
  from → to, material, t/yr, km, saving and CO2e avoided. An exchange inside one facility (internal reuse,
  0 km) is a ring of the same width at the facility;
- a layer (off at first) with the business-as-usual fates: per facility, the tonnes of supply that go to
  landfill or incineration without symbiosis, as circles whose radius grows with the square root of t/yr;
- a layer control, a legend, and the view fitted to the region.

All text that comes from the data is escaped for where it lands (:mod:`symbiosis.outputs.escape`): HTML
markup is built with :func:`~symbiosis.outputs.escape.html_text` and reaches the page's scripts as JSON, so
names always show as text and never run. The page carries its data as JSON arrays drawn by a few lines of
JavaScript rather than one folium object per feature, which keeps the file small; above ``max_markers_unclustered``
facilities the markers are clustered (Leaflet.markercluster). Stable CSS classes mark what is drawn:
``sym-facility`` (marker icons), ``sym-exchange`` (exchange paths), ``sym-arrow``, ``sym-bau-fate`` and
``sym-legend``, so tests and stylesheets can find them; an exchange path also carries its amount: tonnes in
``data-t-per-yr`` on a material path, MWh in ``data-mwh-per-yr`` on a heat path (class ``sym-heat``), and its
unit in ``data-unit``.

Confidential facilities are drawn as :func:`symbiosis.outputs.export.public_results` publishes them:
"Confidential facility N", at the centre of a 0.05° grid cell (about 5 km); their flows still count.
The page needs the network for the map tiles and for Leaflet and folium's other scripts, which load from
public CDNs (see docs/outputs.md); a notice at the top of the page says so when the scripts did not load
(:func:`add_offline_notice`, also used by the partner and difference maps).
"""

from __future__ import annotations

import functools
import logging
import math
import os
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from symbiosis.atomic import write_text_atomic
from symbiosis.disclosure import PRIVATE_MARK
from symbiosis.outputs.escape import html_text, html_texts, js_string, script_json
from symbiosis.outputs.export import (
    CONFIDENTIAL_GRID_DEG,
    WASTE_FATE_KINDS,
    confidential_mask,
    exchange_material_groups,
    facility_names,
    nace_division,
    public_results,
)

if TYPE_CHECKING:
    import folium

logger = logging.getLogger(__name__)

#: Colour of each material class (docs/architecture.md); other groups get a palette colour by name.
MATERIAL_COLOURS: dict[str, str] = {
    "mineral": "#8c6d31",
    "ash": "#636363",
    "gypsum": "#e377c2",
    "metal": "#7f7f7f",
    "chemical": "#9467bd",
    "organic": "#2ca02c",
    "biomass": "#98df8a",
    "water": "#1f77b4",
    "seawater": "#6baed6",
    "wastewater": "#17becf",
    "fuel": "#d62728",
    "gas": "#ff9896",
    "energy": "#ff7f0e",
    "product": "#bcbd22",
    "other": "#8c564b",
    "heat (MWh/yr)": "#d94801",
}
#: The map layer of heat exchanges (symbiosis.energy): apart from the material ones, dashed, widths in MWh.
HEAT_GROUP = "heat (MWh/yr)"

#: Twenty distinguishable colours, indexed by NACE division number.
PALETTE = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
    "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd", "#e6550d", "#31a354",
    "#756bb1", "#636363",
]

FATE_COLOURS = {"landfill": "#7f3b08", "incineration": "#b2182b"}

_CSS = """
<style>
.sym-facility { background: none; border: none; }
.sym-facility .sym-dot { display: block; width: 12px; height: 12px; border-radius: 50%;
  border: 2px solid #fff; box-shadow: 0 0 2px rgba(0,0,0,.8); box-sizing: content-box; }
.sym-arrow { background: none; border: none; pointer-events: none; }
.sym-legend { background: rgba(255,255,255,.92); padding: 6px 8px; border-radius: 4px; font: 12px/1.35
  sans-serif; box-shadow: 0 1px 4px rgba(0,0,0,.35); max-height: 45vh; overflow-y: auto; max-width: 260px; }
.sym-legend h4 { margin: 4px 0 2px; font-size: 12px; }
.sym-legend .sym-swatch { display: inline-block; width: 18px; height: 4px; margin-right: 6px;
  vertical-align: middle; }
.sym-legend .sym-swatch.sym-round { width: 10px; height: 10px; border-radius: 50%; }
.sym-legend p { margin: 4px 0 0; color: #444; }
.sym-popup, .sym-tip { font: 13px/1.35 sans-serif; }
.sym-popup ul { margin: 2px 0 4px; padding-left: 16px; }
.sym-label { position: absolute; white-space: nowrap; font: 600 12px/1.2 sans-serif; color: #1d1d1d;
  background: rgba(255,255,255,.86); padding: 1px 4px; border-radius: 3px; box-shadow: 0 0 2px rgba(0,0,0,.35); }
.leaflet-bar.sym-views a.sym-view { width: auto; height: auto; padding: 0 8px; font: 600 12px/28px sans-serif;
  white-space: nowrap; text-align: left; }
.sym-tile-notice { background: #fff4e5; color: #4a2b00; border: 1px solid #b35c00; border-radius: 4px;
  padding: 4px 8px; font: 12px/1.35 sans-serif; max-width: 320px; }
</style>
"""


def esc(value: Any) -> str:
    """Text from the data, safe as HTML text or a quoted attribute (:func:`~symbiosis.outputs.escape.html_text`)."""
    return html_text(value)


def fmt(value: Any, decimals: int = 0) -> str:
    """A number with thousands separators, or an empty string for a missing value."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return ""
    if math.isnan(number):
        return ""
    return f"{number:,.{decimals}f}"


def line_weights(amounts: pd.Series | np.ndarray, min_weight: float = 2.0, max_weight: float = 12.0) -> np.ndarray:
    """Line width in px for each amount: ``min + (max - min) * sqrt(t / t_max)`` (monotone in t)."""
    # A suppressed amount (NaN on a public map, docs/outputs.md) is drawn at the minimum width.
    values = np.clip(np.nan_to_num(np.asarray(amounts, dtype=float), nan=0.0), 0.0, None)
    top = values.max() if len(values) else 0.0
    if top <= 0:
        return np.full(len(values), min_weight)
    return min_weight + (max_weight - min_weight) * np.sqrt(values / top)


def material_colour(group: str) -> str:
    """Colour of a material group: fixed for the documented classes, stable by name otherwise."""
    if group in MATERIAL_COLOURS:
        return MATERIAL_COLOURS[group]
    return PALETTE[zlib.crc32(group.encode("utf-8")) % len(PALETTE)]


def division_colours(sectors: Any) -> dict[str, str]:
    """Colour per NACE division present, distinct for up to 20 divisions (in order of division)."""
    divisions = sorted({nace_division(s) for s in pd.unique(pd.Series(list(sectors), dtype=object))})
    return {d: PALETTE[i % len(PALETTE)] for i, d in enumerate(divisions)}


def screen_bearing(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Direction from point 1 to point 2 on a Web Mercator map, degrees clockwise from up."""

    def merc_y(lat: float) -> float:
        return math.log(math.tan(math.pi / 4 + math.radians(lat) / 2))

    dx = math.radians(lon2 - lon1)
    dy = merc_y(lat2) - merc_y(lat1)
    return math.degrees(math.atan2(dx, dy)) % 360


def screen_bearings(lat1: np.ndarray, lon1: np.ndarray, lat2: np.ndarray, lon2: np.ndarray) -> np.ndarray:
    """:func:`screen_bearing` over arrays of points."""
    with np.errstate(invalid="ignore", divide="ignore"):
        dy = (np.log(np.tan(np.pi / 4 + np.radians(lat2) / 2)) - np.log(np.tan(np.pi / 4 + np.radians(lat1) / 2)))
        return np.degrees(np.arctan2(np.radians(lon2 - lon1), dy)) % 360


def _template(source: str) -> Any:
    from folium.template import Template

    return Template(source)


@functools.lru_cache(maxsize=1)
def _raw_text_class() -> type:
    from branca.element import Element

    class RawText(Element):  # type: ignore[misc]
        """Text placed in the page as it is (branca's Element would compile it as a Jinja template first)."""

        def __init__(self, text: str):
            super().__init__()
            self.text = text

        def render(self, **kwargs: Any) -> str:
            return self.text

    return RawText


def render_macros_raw(element: Any, kwargs: dict[str, Any]) -> None:
    """branca's ``MacroElement.render`` for ``element``, without the second Jinja pass over its output.

    branca hands each macro's output (header, html, script) to a new ``Element``, which compiles it as a Jinja
    template and renders it again: for the tens of megabytes of rows of a large map, Jinja's lexer took 7.5 s
    of the 23 s of writing the 50,000-facility map (docs/performance.md). The output of the data elements is
    final (their data text is escaped for the page and holds no Jinja tag, :func:`script_json`), so it goes
    into the page unchanged."""
    figure = element.get_root()
    raw = _raw_text_class()
    module = element._template.module.__dict__
    for part, target in (("header", figure.header), ("html", figure.html), ("script", figure.script)):
        macro = module.get(part)
        if macro is not None:
            target.add_child(raw(macro(element, kwargs)), name=element.get_name())
    for child in element._children.values():
        child.render(**kwargs)


@functools.lru_cache(maxsize=1)
def _element_classes() -> dict[str, type]:
    """The custom map elements, built on first use so that folium is imported lazily."""
    import folium
    from branca.element import MacroElement

    class RowsElement(MacroElement):  # type: ignore[misc]
        """An element whose script draws ``rows`` (a JSON array); subclasses give the name and the template.

        Every option the template reads is either in ``required`` (refused here when missing: otherwise Jinja
        would render it as Undefined and the page would fail at render time, far from the cause) or has a
        class-level default."""

        element_name = "Symbiosis"
        required: tuple[str, ...] = ()

        def __init__(self, rows: list[list[Any]], **options: Any):
            missing = [name for name in self.required if name not in options]
            if missing:
                raise TypeError(f"{type(self).__name__} needs the option(s) {', '.join(missing)}")
            super().__init__()
            self._name = self.element_name
            self.rows = rows
            # Written with script_json, not |tojson: safe in <script>, and no "{{" survives for the second
            # Jinja pass that branca gives every element's output.
            self.rows_json = script_json(rows)
            for key, value in options.items():
                setattr(self, key, value)

        def render(self, **kwargs: Any) -> Any:  # branca's MacroElement.render returns nothing
            render_macros_raw(self, kwargs)

    class FacilityMarkers(RowsElement):
        """Facility markers from a JSON array, added to the parent layer (a group or a cluster).

        With ``labels`` (unclustered maps), markers closer on screen than a marker's width push each other
        apart (pairwise repulsion in pixels, redone at every zoom), so each one can be clicked and opens its
        own popup; and the facilities are named on the map by labels
        placed greedily, busiest first, beside their marker where they overlap no other label, marker or
        map control (a label that finds no free place is hidden; the tooltip still names the facility)."""

        _template = _template("""
            {% macro script(this, kwargs) %}
            (function () {
                var rows = {{ this.rows_json }};
                var target = {{ this._parent.get_name() }};
                var map = {{ this.map_name }};
                var markers = [];
                // Leaflet.markercluster 1.1.0 (folium's) walks its clusters by their bounds, which are stale
                // while chunkedLoading is still adding markers: a zoom (the fitBounds at the page's end, or a
                // quick zoom by hand) before the last chunk threw "Cannot read properties of undefined
                // (reading 'lat')" and left the clusters half drawn. Bring a cluster's bounds up to date
                // before they are read, as markercluster 1.4.0 does (its issue 743).
                var cluster = L.MarkerCluster && L.MarkerCluster.prototype;
                if (cluster && cluster._recursively && !cluster._symFreshBounds) {
                    var recursively = cluster._recursively;
                    cluster._recursively = function () {
                        for (var k = 0; k < this._childClusters.length; k++) {
                            if (this._childClusters[k]._boundsNeedUpdate) {
                                this._childClusters[k]._recalculateBounds();
                            }
                        }
                        return recursively.apply(this, arguments);
                    };
                    cluster._symFreshBounds = true;
                }
                for (var i = 0; i < rows.length; i++) {
                    var r = rows[i];
                    var icon = L.divIcon({
                        className: 'sym-facility',
                        html: '<span class="sym-dot" data-facility-id="' + r[5] + '" style="background:'
                              + r[2] + '"></span>',
                        iconSize: [16, 16], iconAnchor: [8, 8], popupAnchor: [0, -8]});
                    var marker = L.marker([r[0], r[1]], {icon: icon});
                    marker.bindPopup(r[3], {maxWidth: 340});
                    marker.bindTooltip(r[4], {direction: 'top', offset: [0, -8]});
                    marker.symHome = L.latLng(r[0], r[1]);
                    markers.push(marker);
                    target.addLayer(marker);
                }
                if (!{{ this.labels|tojson }}) { return; }
                var pane = map.createPane('symLabels');
                pane.style.zIndex = 620;
                pane.style.pointerEvents = 'none';
                L.DomUtil.addClass(pane, 'leaflet-zoom-hide');
                var labels = rows.map(function (r) {
                    var div = L.DomUtil.create('div', 'sym-label', pane);
                    div.innerHTML = r[7];
                    div.setAttribute('data-facility-id', r[5]);
                    return div;
                });
                var order = rows.map(function (r, i) { return i; })
                    .sort(function (a, b) { return (rows[b][6] - rows[a][6]) || (a - b); });
                function overlaps(a, b) {
                    return a.l < b.r && b.l < a.r && a.t < b.b && b.t < a.b;
                }
                function spread() {
                    // markers closer than 18 px on screen push each other apart (a few rounds of pairwise
                    // repulsion, deterministic), so every marker can be clicked at any zoom
                    var home = markers.map(function (m) { return map.latLngToLayerPoint(m.symHome); });
                    var pos = home.map(function (p) { return [p.x, p.y]; });
                    var gap = 18;
                    for (var round = 0; round < 60; round++) {
                        var moved = false;
                        for (var i = 0; i < pos.length; i++) {
                            for (var j = i + 1; j < pos.length; j++) {
                                var dx = pos[j][0] - pos[i][0], dy = pos[j][1] - pos[i][1];
                                var d = Math.sqrt(dx * dx + dy * dy);
                                if (d >= gap - 0.01) { continue; }
                                if (d < 1e-6) {  // same place: a direction from their order
                                    var a = 2.399963 * (j + i * 7);
                                    dx = Math.cos(a); dy = Math.sin(a); d = 0;
                                } else { dx /= d; dy /= d; }
                                var push = (gap - d) / 2 + 0.05;
                                pos[i][0] -= dx * push; pos[i][1] -= dy * push;
                                pos[j][0] += dx * push; pos[j][1] += dy * push;
                                moved = true;
                            }
                        }
                        if (!moved) { break; }
                    }
                    markers.forEach(function (m, k) {
                        var p = pos[k];
                        m.setLatLng(Math.abs(p[0] - home[k].x) < 0.5 && Math.abs(p[1] - home[k].y) < 0.5
                                    ? m.symHome : map.layerPointToLatLng(L.point(p[0], p[1])));
                    });
                }
                function place() {
                    var taken = [];
                    var size = map.getSize();
                    var corner = map.containerPointToLayerPoint([0, 0]);
                    var box = map.getContainer().getBoundingClientRect();
                    // map controls (legend, layer list, buttons) are obstacles too
                    map.getContainer().querySelectorAll('.leaflet-control').forEach(function (el) {
                        var b = el.getBoundingClientRect();
                        if (b.width && b.height) {
                            taken.push({l: b.left - box.left + corner.x, t: b.top - box.top + corner.y,
                                        r: b.right - box.left + corner.x, b: b.bottom - box.top + corner.y});
                        }
                    });
                    var points = markers.map(function (m) { return map.latLngToLayerPoint(m.getLatLng()); });
                    points.forEach(function (p) { taken.push({l: p.x - 9, t: p.y - 9, r: p.x + 9, b: p.y + 9}); });
                    order.forEach(function (i) {
                        var el = labels[i], p = points[i];
                        el.style.display = 'block';
                        var w = el.offsetWidth, h = el.offsetHeight;
                        var spots = [[11, -h / 2], [-11 - w, -h / 2], [-w / 2, -11 - h], [-w / 2, 11],
                                     [9, -h - 5], [9, 5], [-9 - w, -h - 5], [-9 - w, 5]];
                        for (var k = 0; k < spots.length; k++) {
                            var x = p.x + spots[k][0], y = p.y + spots[k][1];
                            var b = {l: x - 1, t: y - 1, r: x + w + 1, b: y + h + 1};
                            if (b.l < corner.x || b.t < corner.y || b.r > corner.x + size.x
                                || b.b > corner.y + size.y) { continue; }
                            if (taken.some(function (o) { return overlaps(o, b); })) { continue; }
                            taken.push(b);
                            L.DomUtil.setPosition(el, L.point(Math.round(x), Math.round(y)));
                            return;
                        }
                        el.style.display = 'none';
                    });
                }
                function redraw() { spread(); place(); }
                map.on('zoomend viewreset resize', redraw);
                map.on('moveend', place);
                map.whenReady(function () { setTimeout(redraw, 0); });
            })();
            {% endmacro %}
        """)

        element_name = "SymbiosisFacilities"  # options: map_name, labels (bool)
        required = ("map_name",)
        labels = False

    class ExchangeLines(RowsElement):
        """Exchange lines with midpoint arrowheads (or rings for internal reuse) from a JSON array."""

        _template = _template("""
            {% macro script(this, kwargs) %}
            (function () {
                var rows = {{ this.rows_json }};
                var style = {{ this.style|tojson }};
                var target = {{ this._parent.get_name() }};
                var arrows = {{ this.arrows|tojson }};
                // Heat paths carry MWh/yr (data-mwh-per-yr, class sym-heat), material paths t/yr (data-t-per-yr).
                var amountAttribute = {{ this.amount_attribute|tojson }};
                var unit = {{ this.unit|tojson }};
                var extraClass = {{ this.extra_class|tojson }};
                // Thousands of SVG paths make panning and zooming crawl; a canvas renderer keeps them fluid.
                var renderer = {{ this.canvas|tojson }} ? L.canvas({padding: 0.5}) : null;
                for (var i = 0; i < rows.length; i++) {
                    var r = rows[i];
                    var options = Object.assign({}, style, {weight: r[4], color: r[5]});
                    if (renderer) { options.renderer = renderer; }
                    var shape;
                    if (r[8]) {
                        options.className = 'sym-exchange sym-internal' + extraClass;
                        options.fill = false;
                        options.radius = 9 + r[4];
                        shape = L.circleMarker([r[0], r[1]], options);
                    } else {
                        options.className = 'sym-exchange' + extraClass;
                        shape = L.polyline([[r[0], r[1]], [r[2], r[3]]], options);
                        if (!arrows) { shape.bindTooltip(r[6], {sticky: true}); shape.options.tPerYr = r[9];
                                       target.addLayer(shape); continue; }
                        var size = Math.round(10 + 1.2 * r[4]);
                        var arrow = '<svg width="' + size + '" height="' + size + '" viewBox="0 0 10 10" '
                            + 'style="transform: rotate(' + r[7] + 'deg)"><path d="M5 0 L10 10 L5 7 L0 10 Z" '
                            + 'fill="' + r[5] + '" stroke="#fff" stroke-width="0.6"/></svg>';
                        target.addLayer(L.marker([(r[0] + r[2]) / 2, (r[1] + r[3]) / 2], {
                            icon: L.divIcon({className: 'sym-arrow', html: arrow, iconSize: [size, size],
                                             iconAnchor: [size / 2, size / 2]}),
                            interactive: false, keyboard: false}));
                    }
                    shape.bindTooltip(r[6], {sticky: true});
                    shape.on('add', function (e) {
                        var element = e.target.getElement && e.target.getElement();
                        if (element) { element.setAttribute(amountAttribute, e.target.options.tPerYr);
                                       element.setAttribute('data-unit', unit); }
                    });
                    shape.options.tPerYr = r[9];
                    target.addLayer(shape);
                }
            })();
            {% endmacro %}
        """)

        element_name = "SymbiosisExchanges"  # options: style, arrows (bool), canvas (bool), amount attribute, unit
        required = ("style",)
        arrows = True
        canvas = False
        amount_attribute = "data-t-per-yr"
        unit = "t/yr"
        extra_class = ""

    class FateCircles(RowsElement):
        """Business-as-usual fates as circles from a JSON array."""

        _template = _template("""
            {% macro script(this, kwargs) %}
            (function () {
                var rows = {{ this.rows_json }};
                var target = {{ this._parent.get_name() }};
                for (var i = 0; i < rows.length; i++) {
                    var r = rows[i];
                    target.addLayer(L.circleMarker([r[0], r[1]], {
                        radius: r[2], color: r[3], weight: 1, fillColor: r[3], fillOpacity: 0.35,
                        className: 'sym-bau-fate'}).bindTooltip(r[4]));
                }
            })();
            {% endmacro %}
        """)

        element_name = "SymbiosisFates"

    class Legend(MacroElement):  # type: ignore[misc]
        """A legend as a Leaflet control (stays inside the map wherever the map is embedded)."""

        _template = _template("""
            {% macro script(this, kwargs) %}
            (function () {
                var legend = L.control({position: 'bottomleft'});
                legend.onAdd = function () {
                    var div = L.DomUtil.create('div', 'sym-legend');
                    div.innerHTML = {{ this.html_json }};
                    L.DomEvent.disableClickPropagation(div);
                    L.DomEvent.disableScrollPropagation(div);
                    return div;
                };
                legend.addTo({{ this._parent.get_name() }});
            })();
            {% endmacro %}
        """)

        def __init__(self, markup: str):
            super().__init__()
            self._name = "SymbiosisLegend"
            self.html = markup
            self.html_json = script_json(markup)

    class ViewControl(MacroElement):  # type: ignore[misc]
        """Two buttons in the map's corner: back to the park (the densest cluster) and the whole region."""

        _template = _template("""
            {% macro script(this, kwargs) %}
            (function () {
                var map = {{ this._parent.get_name() }};
                var views = {{ this.views_json }};
                var control = L.control({position: 'topleft'});
                control.onAdd = function () {
                    var div = L.DomUtil.create('div', 'leaflet-bar sym-views');
                    views.forEach(function (v) {
                        var a = L.DomUtil.create('a', 'sym-view', div);
                        a.href = '#';
                        a.setAttribute('role', 'button');
                        a.setAttribute('data-view', v[0]);
                        a.title = v[2];
                        a.textContent = v[1];
                        L.DomEvent.on(a, 'click', function (e) {
                            L.DomEvent.preventDefault(e);
                            map.fitBounds(v[3], {paddingTopLeft: v[4], paddingBottomRight: v[5]});
                        });
                    });
                    L.DomEvent.disableClickPropagation(div);
                    return div;
                };
                control.addTo(map);
            })();
            {% endmacro %}
        """)

        def __init__(self, views: list[list[Any]]):
            super().__init__()
            self._name = "SymbiosisViews"
            self.views_json = script_json(views)

    class TileNotice(MacroElement):  # type: ignore[misc]
        """A note in the map's corner, added the first time a background tile fails to load."""

        _template = _template("""
            {% macro script(this, kwargs) %}
            (function () {
                var map = {{ this._parent.get_name() }};
                var shown = false;
                map.eachLayer(function (layer) {
                    if (!(layer instanceof L.TileLayer)) { return; }
                    layer.on('tileerror', function () {
                        if (shown) { return; }
                        shown = true;
                        var note = L.control({position: 'bottomright'});
                        note.onAdd = function () {
                            var div = L.DomUtil.create('div', 'sym-tile-notice');
                            div.setAttribute('role', 'status');
                            div.textContent = {{ this.message_json }};
                            return div;
                        };
                        note.addTo(map);
                    });
                });
            })();
            {% endmacro %}
        """)

        def __init__(self, message: str):
            super().__init__()
            self._name = "SymbiosisTileNotice"
            self.message_json = script_json(message)

    class JsonTooltip(folium.Tooltip):  # type: ignore[misc]
        """folium's Tooltip, but its HTML reaches the script as JSON instead of inside a template literal.

        folium writes a tooltip's text between backquotes, where ``${...}`` runs as code and a backquote ends
        the string: a facility named ``${alert(1)}`` would run its script when the page opens.
        """

        _template = _template("""
            {% macro script(this, kwargs) %}
            {{ this._parent.get_name() }}.bindTooltip({{ this.text_json }}, {{ this.options_json }});
            {% endmacro %}
        """)

        def __init__(self, text: str, style: str | None = None, sticky: bool = True, **options: Any):
            super().__init__(text, style=style, sticky=sticky, **options)
            self.text_json = script_json(self.text)
            self.options_json = script_json(self.options)

    return {"FacilityMarkers": FacilityMarkers, "ExchangeLines": ExchangeLines, "FateCircles": FateCircles,
            "Legend": Legend, "JsonTooltip": JsonTooltip, "TileNotice": TileNotice, "ViewControl": ViewControl}


def tooltip(markup: str, **options: Any) -> folium.Tooltip:
    """A folium tooltip showing ``markup`` (HTML whose data text is already escaped with :func:`esc`).

    Use it instead of passing a string as ``tooltip=`` to a folium object: folium puts such strings into a
    JavaScript template literal, where text from the data can run as code.
    """
    options.setdefault("sticky", True)
    return _element_classes()["JsonTooltip"](markup, **options)


#: The id of the notice element that a page shows until its scripts have loaded.
OFFLINE_NOTICE_ID = "sym-offline-notice"

#: The notice of a map page whose scripts did not load (HTML written here, never data).
MAP_OFFLINE_MESSAGE = (
    "<b>The map cannot be drawn: its scripts did not load.</b> This map needs the Leaflet scripts from the "
    "internet (cdn.jsdelivr.net and other public CDNs): open it with a network connection{hint}. The CSV files "
    "beside it hold the same figures."
)
SELF_CONTAINED_HINT = (
    ", or write it with <code>symbiosis run --self-contained</code> (<code>save_map(..., self_contained=True)"
    "</code>), which puts the scripts into the page"
)
#: Shown on the map when a background tile did not load (Leaflet itself did).
TILES_OFFLINE_MESSAGE = (
    "The background map could not be loaded: its tiles come from the internet (openstreetmap.org). "
    "Facilities and exchanges are drawn all the same."
)


def offline_notice_div(message: str, notice_id: str = OFFLINE_NOTICE_ID, *,
                       position: str = "fixed; top: 0; left: 0; right: 0") -> str:
    """The notice element, shown by default (``message`` is HTML written here, never data)."""
    return (
        f'<div id="{notice_id}" class="sym-offline-notice" role="alert" style="position: {position}; '
        "z-index: 10000; margin: 0; padding: 10px 14px; background: #fff4e5; color: #4a2b00; "
        f'border-bottom: 2px solid #b35c00; font: 14px/1.45 system-ui, sans-serif;">{message}</div>\n'
    )


def offline_notice_check(loaded: str, notice_id: str = OFFLINE_NOTICE_ID) -> str:
    """An inline script that removes the notice once ``loaded`` (a JavaScript test) is true.

    Placed after the page's ``<script src>`` tags, which load (or fail) before the parser goes on, it sees
    whether they came: without the network, or with scripts turned off, the notice stays and says why the
    page is empty.
    """
    return (
        "<script>(function () {\n"
        f"  var notice = document.getElementById({js_string(notice_id)});\n"
        f"  var loaded = false; try {{ loaded = Boolean({loaded}); }} catch (e) {{ loaded = false; }}\n"
        "  if (loaded && notice) { notice.parentNode.removeChild(notice); }\n"
        "})();</script>\n"
    )


def offline_notice_html(message: str, loaded: str, notice_id: str = OFFLINE_NOTICE_ID, *,
                        position: str = "fixed; top: 0; left: 0; right: 0") -> str:
    """A notice shown by default and removed once ``loaded`` is true: :func:`offline_notice_div` and its check."""
    return offline_notice_div(message, notice_id, position=position) + offline_notice_check(loaded, notice_id)


def add_offline_notice(m: folium.Map, *, self_contained_hint: bool = False) -> folium.Map:
    """Give the page of ``m`` a notice that shows when Leaflet did not load (no network), and a note on the
    map when its tiles do not load; returns ``m``.

    ``self_contained_hint`` adds that ``symbiosis run --self-contained`` writes a page that needs no scripts
    from the network (true of the maps that :func:`save_map` writes).
    """
    import folium

    message = MAP_OFFLINE_MESSAGE.format(hint=SELF_CONTAINED_HINT if self_contained_hint else "")
    root = m.get_root()
    root.html.add_child(  # type: ignore[attr-defined]
        folium.Element(offline_notice_html(message, "window.L && window.L.map")), name="symbiosis_offline_notice")
    m.add_child(_element_classes()["TileNotice"](TILES_OFFLINE_MESSAGE), name="symbiosis_tile_notice")
    return m


# --------------------------------------------------------------------------------------------------
# rows: plain data for the page
# --------------------------------------------------------------------------------------------------


def _objects(values: Any) -> np.ndarray:
    """A column as a numpy object array (pandas' string arrays are slow to walk value by value)."""
    return values.to_numpy(dtype=object) if isinstance(values, (pd.Series, pd.Index)) else \
        np.asarray(values, dtype=object)


def _strings(values: Any) -> np.ndarray:
    """``str()`` of every value, as an object array (pandas' ``astype(str)`` keeps a missing value missing)."""
    return np.array([str(value) for value in _objects(values).tolist()], dtype=object)


def esc_column(values: Any) -> np.ndarray:
    """:func:`esc` of every value of a column (an object array), each distinct value escaped once."""
    codes, uniques = pd.factorize(_objects(values), use_na_sentinel=False)
    return np.array(html_texts(uniques), dtype=object)[codes] if len(codes) else np.array([], dtype=object)


def fmt_column(values: Any, decimals: int = 0) -> np.ndarray:
    """:func:`fmt` of every value of a column (an object array): thousands separators, "" where missing."""
    numbers = pd.to_numeric(pd.Series(_objects(values)), errors="coerce").to_numpy(dtype=float)
    return np.array(["" if number != number else f"{number:,.{decimals}f}" for number in numbers.tolist()],
                    dtype=object)


def _escaped_names(facilities: pd.DataFrame) -> dict[str, str]:
    """:func:`facility_names` with the names escaped (:func:`esc`)."""
    names = facility_names(facilities)
    return dict(zip(names.keys(), html_texts(names.values()), strict=True))


def _named(ids: pd.Series, escaped: dict[str, str]) -> np.ndarray:
    """The escaped name of each facility id, as ``esc(names.get(str(id), id))`` (``escaped``: _escaped_names)."""
    keys = _objects(ids)
    named = pd.Series([str(key) for key in keys.tolist()], dtype=object).map(escaped).to_numpy(dtype=object)
    missing = pd.isna(named)
    if missing.any():
        named[missing] = esc_column(keys[missing])
    return named


def _flow_lists(title: str, keys: Any, amounts: np.ndarray, texts: Any, limit: int = 3) -> pd.Series:
    """Per key (a facility id), the HTML list of its items' texts, largest amount first (ties in the given
    order), at most ``limit`` of them and "… and N more"; keys without items are absent."""
    frame = pd.DataFrame({"key": _objects(keys), "amount": -np.asarray(amounts, dtype=float),
                          "order": np.arange(len(texts)), "text": _objects(texts)})
    if frame.empty:
        return pd.Series(dtype=object)
    frame = frame.sort_values(["key", "amount", "order"], kind="stable", na_position="last")
    rank = frame.groupby("key", sort=False).cumcount().to_numpy()
    counts = frame.groupby("key", sort=False).size()
    items = np.full(len(counts), "", dtype=object)
    for place in range(limit):  # the first, second, ... item of every key at once
        at = rank == place
        items[counts.index.get_indexer(frame["key"].to_numpy()[at])] += np.array(
            [f"<li>{text}</li>" for text in frame["text"].to_numpy()[at].tolist()], dtype=object)
    head = f"<div><u>{esc(title)}</u><ul>"
    return pd.Series([f"{head}{shown}<li>… and {n - limit} more</li></ul></div>" if n > limit
                      else f"{head}{shown}</ul></div>"
                      for shown, n in zip(items.tolist(), counts.tolist(), strict=True)],
                     index=counts.index, dtype=object)


def facility_rows(view: Any, currency: str) -> list[list[Any]]:
    """[lat, lon, colour, popup html, tooltip html, id, exchanges, label] per facility; all data text escaped.

    Built column by column (pandas and numpy over whole columns, each distinct text escaped once): row by
    row it took 3 s of Python for 50,000 facilities and 84,000 exchanges."""
    facilities = view.facilities
    names = _escaped_names(facilities)
    exchanges = view.exchanges
    if len(exchanges):
        heat = (exchanges["quantity"] == "energy").to_numpy() if "quantity" in exchanges.columns \
            else np.zeros(len(exchanges), dtype=bool)
        amount = exchanges["amount_t_per_yr"].astype(float).to_numpy()
        if heat.any():
            amount = np.where(heat, exchanges["amount_mwh_per_yr"].astype(float).to_numpy(), amount)
        figures = fmt_column(amount).tolist()
        units = np.where(heat, "MWh/yr", "t/yr").tolist()
        material = esc_column(exchanges["material"]).tolist()
        sends = _flow_lists("Sends", _strings(exchanges["supply_facility"]), amount, [
            f"{m} → {other}: {figure} {unit}" for m, other, figure, unit in
            zip(material, _named(exchanges["demand_facility"], names).tolist(), figures, units, strict=True)])
        receives = _flow_lists("Receives", _strings(exchanges["demand_facility"]), amount, [
            f"{m} from {other}: {figure} {unit}" for m, other, figure, unit in
            zip(material, _named(exchanges["supply_facility"], names).tolist(), figures, units, strict=True)])
    else:
        sends = receives = pd.Series(dtype=object)
    to_fate = pd.Series(dtype=object)
    supplies = view.supplies
    if supplies is not None and "to_fate_t_per_yr" in supplies.columns:
        left = supplies[supplies["to_fate_t_per_yr"].astype(float) > 0]
        amount = left["to_fate_t_per_yr"].astype(float).to_numpy()
        to_fate = _flow_lists("Still to its current fate", _strings(left["facility_id"]), amount, [
            f"{m} → {fate}: {figure} t/yr" for m, fate, figure in
            zip(esc_column(left["material"]).tolist(), esc_column(left["fate"]).tolist(),
                fmt_column(amount).tolist(), strict=True)])

    colours = division_colours(facilities["sector"])
    classes = nace_names()
    codes, sectors = pd.factorize(facilities["sector"].astype(object), use_na_sentinel=False)
    divisions = [nace_division(sector) for sector in sectors]
    described = [classes.get(_nace_code(sector), "") for sector in sectors]
    sector_text = np.array([f"Sector {esc(sector)}" + (f" {esc(name)}" if name else "")
                            + f" (NACE division {esc(division)})"
                            for sector, name, division in zip(sectors, described, divisions, strict=True)],
                           dtype=object)[codes] if len(codes) else np.array([], dtype=object)
    colour = np.array([colours[division] for division in divisions], dtype=object)[codes] if len(codes) else \
        np.array([], dtype=object)
    gain = fmt_column(facilities["gain"]) if "gain" in facilities.columns else \
        np.full(len(facilities), "", dtype=object)
    money = esc(currency)
    fid = pd.Series(_strings(facilities["facility_id"]), dtype=object)
    fid_esc = esc_column(fid)
    name_esc = esc_column(facilities["name"])

    def lists(found: pd.Series) -> list[str]:
        return fid.map(found).fillna("").tolist() if len(found) else [""] * len(fid)

    popup = [f'<div class="sym-popup" data-facility-id="{i}"><b>{n}</b><br>{sector}'
             + (f"<br>Gain: {g} {money}/yr" if g else "") + f"{a}{b}{c}</div>"
             for i, n, sector, g, a, b, c in zip(fid_esc.tolist(), name_esc.tolist(), sector_text.tolist(),
                                                 gain.tolist(), lists(sends), lists(receives), lists(to_fate),
                                                 strict=True)]
    busy = (pd.to_numeric(facilities["n_exchanges"], errors="coerce").fillna(0).astype(int).tolist()
            if "n_exchanges" in facilities.columns else [0] * len(facilities))
    label_codes, label_names = pd.factorize(_strings(facilities["name"]), use_na_sentinel=False)
    labels = np.array(html_texts([short_name(name) for name in label_names.tolist()]), dtype=object)[label_codes] \
        if len(label_codes) else np.array([], dtype=object)
    lat = [round(value, 6) for value in facilities["lat"].astype(float).tolist()]
    lon = [round(value, 6) for value in facilities["lon"].astype(float).tolist()]
    return [list(row) for row in zip(lat, lon, colour.tolist(), popup, name_esc.tolist(),
                                     fid_esc.tolist(), busy, labels.tolist(), strict=True)]


def short_name(name: str, limit: int = 40) -> str:
    """A facility's name for a label on the map: up to its first bracket, at most ``limit`` characters."""
    cut = name.split(" (", 1)[0].strip() or name
    return cut if len(cut) <= limit else cut[: limit - 1].rstrip() + "…"


@functools.lru_cache(maxsize=1)
def nace_names() -> dict[str, str]:
    """NACE Rev. 2 class code ("35.11") -> description, from data/reference/nace.csv (empty if absent)."""
    from symbiosis.reference import data_dir

    path = data_dir() / "reference" / "nace.csv"
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, ValueError) as exc:
        logger.info("no NACE names (%s): the legend shows the codes", exc)
        return {}
    if not {"code", "description"} <= set(table.columns):
        return {}
    return dict(zip(table["code"].str.strip(), table["description"].str.strip(), strict=True))


def _nace_code(sector: Any) -> str:
    """A sector as the class code of nace.csv ("35.11"); "C23.5" -> "23.5"."""
    text = "" if sector is None or (isinstance(sector, float) and math.isnan(sector)) else str(sector).strip()
    return text.lstrip("ABCDEFGHIJKLMNOPQRSTU").strip()


def division_names(sectors: Any) -> dict[str, str]:
    """A human name per NACE division present: the descriptions (nace.csv) of the region's classes in it,
    e.g. "35 Production of electricity; Distribution of gaseous fuels", or "NACE division 35" if none is known."""
    classes = nace_names()
    found: dict[str, list[str]] = {}
    for sector in sorted({_nace_code(s) for s in sectors}):
        division = nace_division(sector)
        names = found.setdefault(division, [])
        name = classes.get(sector) or classes.get(sector[:4])
        if name and name not in names:
            names.append(name)
    labels = {}
    for division, names in found.items():
        text = "; ".join(names[:2]) + ("; …" if len(names) > 2 else "")
        labels[division] = f"{division} {text}" if text else f"NACE division {division}"
    return labels


def densest_cluster(facilities: pd.DataFrame, radius_km: float = 3.0) -> pd.DataFrame:
    """The facilities within ``radius_km`` of the facility that has most neighbours within that distance
    (ties: the first in the table); the whole table when it is empty. Distances are planar (equirectangular
    at the mean latitude), counted with a k-d tree, so 10,000 facilities take milliseconds."""
    if len(facilities) < 2:
        return facilities
    from scipy.spatial import cKDTree

    lat = facilities["lat"].astype(float).to_numpy()
    lon = facilities["lon"].astype(float).to_numpy()
    ok = np.isfinite(lat) & np.isfinite(lon)
    if not ok.any():
        return facilities
    km = np.column_stack([lon * 111.32 * math.cos(math.radians(float(np.nanmean(lat[ok])))), lat * 110.57])
    km[~ok] = 1e9
    tree = cKDTree(km)
    counts = np.asarray(tree.query_ball_point(km, radius_km, return_length=True))
    centre = int(np.argmax(np.where(ok, counts, -1)))
    members = tree.query_ball_point(km[centre], radius_km)
    return facilities.iloc[sorted(members)]


def _bounds(frame: pd.DataFrame) -> list[list[float]]:
    lats, lons = frame["lat"].astype(float), frame["lon"].astype(float)
    return [[float(lats.min()), float(lons.min())], [float(lats.max()), float(lons.max())]]


#: Map padding that keeps the fitted facilities clear of the legend (bottom left) and the layer list (top right).
FIT_PADDING_TOP_LEFT = (250, 40)
FIT_PADDING_BOTTOM_RIGHT = (300, 30)


def exchange_rows(view: Any, currency: str, min_weight: float, max_weight: float) -> pd.DataFrame:
    """One row per exchange with its group, colour, width, tooltip and arrow bearing."""
    exchanges = view.exchanges.reset_index(drop=True)
    located = view.facilities.drop_duplicates("facility_id").set_index("facility_id")
    names = _escaped_names(view.facilities)
    # Heat exchanges (quantity "energy") form their own layer; their widths scale among themselves, in MWh.
    heat = (exchanges["quantity"] == "energy").to_numpy() if "quantity" in exchanges.columns \
        else np.zeros(len(exchanges), dtype=bool)
    amount = exchanges["amount_t_per_yr"].astype(float).to_numpy()
    if heat.any():
        amount = np.where(heat, exchanges["amount_mwh_per_yr"].astype(float).to_numpy(), amount)
    weight = line_weights(amount, min_weight, max_weight)
    if heat.any():
        weight[heat] = line_weights(amount[heat], min_weight, max_weight)
        weight[~heat] = line_weights(amount[~heat], min_weight, max_weight)
    frame = pd.DataFrame({
        "group": np.where(heat, HEAT_GROUP, exchange_material_groups(view).to_numpy()),
        "lat1": exchanges["supply_facility"].map(located["lat"]).astype(float),
        "lon1": exchanges["supply_facility"].map(located["lon"]).astype(float),
        "lat2": exchanges["demand_facility"].map(located["lat"]).astype(float),
        "lon2": exchanges["demand_facility"].map(located["lon"]).astype(float),
        "weight": np.round(weight, 2),
        "amount": np.round(amount, 3),
    })
    frame["colour"] = frame["group"].map(material_colour)
    frame["internal"] = (exchanges["supply_facility"].astype(str) == exchanges["demand_facility"].astype(str)) | (
        (frame["lat1"] == frame["lat2"]) & (frame["lon1"] == frame["lon2"]))
    bearing = screen_bearings(frame["lat1"].to_numpy(float), frame["lon1"].to_numpy(float),
                              frame["lat2"].to_numpy(float), frame["lon2"].to_numpy(float))
    frame["bearing"] = [0.0 if internal else round(value, 1)
                        for value, internal in zip(bearing.tolist(), frame["internal"].tolist(), strict=True)]
    # A view of one period (symbiosis.periods.view) shows that period's amounts, not a year's.
    period = (getattr(view, "kpis", None) or {}).get("period")
    per = f" in {esc(period)}" if period else "/yr"
    # Column by column, each distinct text escaped once (row by row: 1.5 s for 84,000 exchanges).
    material = exchanges["material"].astype(object).to_numpy()
    primary = exchanges["primary_material"].astype(object).to_numpy() if "primary_material" in exchanges.columns \
        else np.full(len(exchanges), "", dtype=object)
    replacing = np.array([bool(p) for p in primary.tolist()], dtype=bool) & (primary != material)
    money = esc(currency)
    frame["tooltip"] = [
        f'<div class="sym-tip"><b>{source} → {sink}</b><br>{m}' + (f" replacing {p}" if replace else "")
        + f" ({group})<br>{figure} {unit}{per} · {km} km<br>"
        f"saving {saving} {money}{per} · CO2e avoided {co2e} t{per}</div>"
        for source, sink, m, p, replace, group, figure, unit, km, saving, co2e in zip(
            _named(exchanges["supply_facility"], names).tolist(), _named(exchanges["demand_facility"], names).tolist(),
            esc_column(material).tolist(), esc_column(primary).tolist(), replacing.tolist(),
            esc_column(frame["group"]).tolist(), fmt_column(amount).tolist(), np.where(heat, "MWh", "t").tolist(),
            fmt_column(exchanges["distance_km"], 1).tolist(), fmt_column(exchanges["saving"]).tolist(),
            fmt_column(exchanges["co2e_avoided_t_per_yr"], 1).tolist(), strict=True)]
    missing = frame[["lat1", "lon1", "lat2", "lon2"]].isna().any(axis=1)
    if missing.any():
        logger.warning("%d exchanges refer to facilities without a location: not drawn", int(missing.sum()))
        frame = frame[~missing]
    return frame


def fate_rows(view: Any) -> list[list[Any]]:
    """[lat, lon, radius, colour, tooltip] per facility that sends supply to landfill or incineration (BAU)."""
    supplies = view.supplies
    if supplies is None or "fate_kind" not in supplies.columns:
        return []
    waste = supplies[supplies["fate_kind"].isin(WASTE_FATE_KINDS)]
    if waste.empty:
        return []
    names = _escaped_names(view.facilities)
    located = view.facilities.drop_duplicates("facility_id").set_index("facility_id")
    after_col = "to_fate_t_per_yr" if "to_fate_t_per_yr" in waste.columns else "amount_t_per_yr"
    per = waste.groupby(["facility_id", "fate_kind"], sort=True).agg(
        bau=("amount_t_per_yr", "sum"), after=(after_col, "sum")).reset_index()
    per = per[per["bau"] > 0]
    top = float(per["bau"].max()) if len(per) else 0.0
    per = per[per["facility_id"].isin(located.index)]
    if per.empty:
        return []
    bau = per["bau"].astype(float).to_numpy()
    radius = 3 + 17 * np.sqrt(bau / top) if top > 0 else np.full(len(per), 3.0)
    tooltip = [f'<div class="sym-tip"><b>{name}</b><br>to {kind} without symbiosis: {before} t/yr<br>'
               f"after the exchanges: {after} t/yr</div>"
               for name, kind, before, after in zip(_named(per["facility_id"], names).tolist(),
                                                    esc_column(per["fate_kind"]).tolist(), fmt_column(bau).tolist(),
                                                    fmt_column(per["after"]).tolist(), strict=True)]
    colour = [FATE_COLOURS.get(str(kind), "#555555") for kind in per["fate_kind"].tolist()]
    lat = per["facility_id"].map(located["lat"]).astype(float).tolist()
    lon = per["facility_id"].map(located["lon"]).astype(float).tolist()
    return [list(row) for row in zip(lat, lon, [round(r, 1) for r in radius.tolist()], colour, tooltip,
                                     strict=True)]


def legend_html(groups: list[str], colours: dict[str, str], min_weight: float, max_weight: float,
                n_confidential: int, division_labels: dict[str, str] | None = None) -> str:
    """The legend's HTML (group names escaped)."""
    parts = ["<h4>Exchanges by material group</h4>"]
    for group in groups:
        parts.append(f'<div class="sym-legend-entry"><span class="sym-swatch" style="background:'
                     f'{material_colour(group)}"></span>{esc(group)}</div>')
    parts.append(f"<p>Width {min_weight:g}–{max_weight:g} px ∝ √(t/yr); arrow = direction.</p>")
    parts.append("<h4>Facilities by NACE division</h4>")
    shown = list(colours.items())[:12]
    for division, colour in shown:
        parts.append(f'<div class="sym-legend-entry"><span class="sym-swatch sym-round" style="background:{colour}">'
                     f"</span>{esc((division_labels or {}).get(division, division))}</div>")
    if len(colours) > len(shown):
        parts.append(f"<div>… {len(colours) - len(shown)} more divisions</div>")
    parts.append('<h4>BAU fates</h4><div><span class="sym-swatch sym-round" style="background:'
                 f'{FATE_COLOURS["landfill"]}"></span>landfill '
                 f'<span class="sym-swatch sym-round" style="background:{FATE_COLOURS["incineration"]}"></span>'
                 "incineration</div><p>Circle radius ∝ √(t/yr); layer off at first.</p>")
    if n_confidential:
        parts.append(f"<p>{n_confidential} confidential facilit{'y' if n_confidential == 1 else 'ies'} "
                     f"shown unnamed at the centre of a {CONFIDENTIAL_GRID_DEG:g}° cell (~5 km).</p>")
    return "".join(parts)


# --------------------------------------------------------------------------------------------------
# public functions
# --------------------------------------------------------------------------------------------------


def line_rows(lines: pd.DataFrame) -> list[list[Any]]:
    """The JSON rows an ExchangeLines element draws, from ``exchange_rows`` output (one per line)."""
    def rounded(column: str) -> list[float]:
        return [round(value, 6) for value in lines[column].astype(float).tolist()]

    return [list(row) for row in zip(rounded("lat1"), rounded("lon1"), rounded("lat2"), rounded("lon2"),
                                     lines["weight"].astype(float).tolist(), lines["colour"].tolist(),
                                     lines["tooltip"].tolist(), lines["bearing"].astype(float).tolist(),
                                     lines["internal"].astype(bool).tolist(), lines["amount"].astype(float).tolist(),
                                     strict=True)]


def explore(
    results: Any,
    m: folium.Map | None = None,
    *,
    tiles: str | None = "OpenStreetMap",
    max_markers_unclustered: int = 200,
    public: bool = True,
    min_weight: float = 2.0,
    max_weight: float = 12.0,
    show_fates: bool = False,
    layer_control: bool | None = None,
    fit: bool = True,
    max_arrows: int = 2000,
    canvas_from: int = 2000,
    cluster_km: float = 3.0,
    aggregate_from: int = 15_000,
    **style: Any,
) -> folium.Map:
    """Draw ``results`` (facilities, exchanges, BAU fates) on ``m`` or on a new map, and return the map.

    ``style`` keywords (Leaflet path options such as ``opacity=0.6`` or ``dash_array="4"``) apply to the
    exchange lines. ``public`` (default True) anonymises confidential facilities as in the published files.
    A layer control is added when the map is created here (``layer_control`` overrides that).
    Above ``max_arrows`` exchanges the midpoint arrows are left out (the tooltip still reads from → to), and
    from ``canvas_from`` exchanges the lines are drawn on a canvas instead of as SVG paths: measured on a
    generated 10,000-facility region (16,655 exchanges), arrows and SVG made one zoom step take minutes.
    The map opens on the densest cluster of facilities (those within ``cluster_km`` of the facility with
    most neighbours, :func:`densest_cluster`) when it spans less than a third of the region and the markers
    are not clustered, with buttons
    to go back to it or to see the whole region; unclustered facilities are named on the map.
    From ``aggregate_from`` facilities the map is drawn aggregated (:mod:`symbiosis.outputs.bigmap`): groups
    of facilities when zoomed out, every facility, exchange and fate in view from a detail zoom on.
    """
    import folium
    import folium.plugins
    from folium.utilities import camelize

    view = public_results(results) if public else results
    currency = str(getattr(view, "kpis", {}).get("currency", "EUR") or "EUR")
    facilities = view.facilities
    created = m is None
    if m is None:
        m = folium.Map(tiles=tiles, control_scale=True, location=_centre(facilities), zoom_start=11)
    m.get_root().header.add_child(folium.Element(_CSS), name="symbiosis_css")  # type: ignore[attr-defined]
    add_offline_notice(m, self_contained_hint=True)
    if not public:
        m.get_root().header.add_child(  # type: ignore[attr-defined]
            folium.Element(f"<title>{PRIVATE_MARK}</title>"), name="symbiosis_private")
    classes = _element_classes()

    exchanges = exchange_rows(view, currency, min_weight, max_weight)
    line_style = {"opacity": 0.85, "lineCap": "round"}
    line_style.update({camelize(key): value for key, value in style.items()})
    groups = sorted(exchanges["group"].unique()) if len(exchanges) else []
    if len(facilities) >= aggregate_from:  # tens of thousands of facilities: symbiosis/outputs/bigmap.py
        return _explore_aggregated(m, results, view, exchanges, groups, currency=currency, line_style=line_style,
                                   show_fates=show_fates, public=public, min_weight=min_weight,
                                   max_weight=max_weight, layer_control=layer_control if layer_control is not None
                                   else created, fit=fit)
    for group in groups:
        part = exchanges[exchanges["group"] == group]
        layer = folium.FeatureGroup(name=f"Exchanges: {esc(group)} ({len(part)})", show=True)
        group_style = {**line_style, "dashArray": "8 6"} if group == HEAT_GROUP else line_style
        rows = line_rows(part)
        heat = group == HEAT_GROUP
        layer.add_child(classes["ExchangeLines"](rows, style=group_style, arrows=len(exchanges) <= max_arrows,
                                                 canvas=len(exchanges) >= canvas_from,
                                                 amount_attribute="data-mwh-per-yr" if heat else "data-t-per-yr",
                                                 unit="MWh/yr" if heat else "t/yr",
                                                 extra_class=" sym-heat" if heat else ""))
        layer.add_to(m)

    fates = fate_rows(view)
    if fates:
        fate_layer = folium.FeatureGroup(name="BAU fates: landfill & incineration", show=show_fates)
        fate_layer.add_child(classes["FateCircles"](fates))
        fate_layer.add_to(m)

    clustered = len(facilities) > max_markers_unclustered
    facility_layer: folium.FeatureGroup | folium.plugins.MarkerCluster
    if clustered:
        facility_layer = folium.plugins.MarkerCluster(
            name=f"Facilities ({len(facilities)}, clustered)", disableClusteringAtZoom=15,
            chunkedLoading=True)
    else:
        facility_layer = folium.FeatureGroup(name=f"Facilities ({len(facilities)})")
    facility_layer.add_child(classes["FacilityMarkers"](facility_rows(view, currency), map_name=m.get_name(),
                                                        labels=not clustered))
    facility_layer.add_to(m)

    n_confidential = int(confidential_mask(results.facilities).sum()) if public else 0
    legend = legend_html(groups, division_colours(facilities["sector"]), min_weight, max_weight, n_confidential,
                         division_names(facilities["sector"]))
    if len(exchanges) > max_arrows:
        legend = legend.replace("arrow = direction.", f"direction in the tooltip (no arrows above {max_arrows:,} "
                                "exchanges).")
    m.add_child(classes["Legend"](legend))

    if layer_control if layer_control is not None else created:
        folium.LayerControl(collapsed=False).add_to(m)
    if fit and len(facilities):
        fit_to_park(m, facilities, cluster_km=cluster_km, park=not clustered)
    logger.info("map: %d facilities (%s), %d exchanges in %d groups, %d BAU fate circles",
                len(facilities), "clustered" if clustered else "unclustered", len(exchanges), len(groups),
                len(fates))
    return m


def _explore_aggregated(m: folium.Map, results: Any, view: Any, exchanges: pd.DataFrame, groups: list[str], *,
                        currency: str, line_style: dict[str, Any], show_fates: bool, public: bool,
                        min_weight: float, max_weight: float, layer_control: bool, fit: bool) -> folium.Map:
    """explore's drawing from ``aggregate_from`` facilities: the same legend and layers, drawn by bigmap."""
    import folium

    from symbiosis.outputs import bigmap

    facilities = view.facilities
    n_confidential = int(confidential_mask(results.facilities).sum()) if public else 0
    legend = legend_html(groups, division_colours(facilities["sector"]), min_weight, max_weight, n_confidential,
                         division_names(facilities["sector"]))
    detail = bigmap.draw(m, view, exchanges, groups, facility_rows=facility_rows(view, currency),
                         fates=fate_rows(view), line_style=line_style, show_fates=show_fates, legend=legend)
    if layer_control:
        folium.LayerControl(collapsed=False).add_to(m)
    if fit and len(facilities):
        fit_to_park(m, facilities, park=False)
    logger.info("map: %d facilities aggregated below zoom %d, %d exchanges in %d groups", len(facilities), detail,
                len(exchanges), len(groups))
    return m


def fit_to_park(m: folium.Map, facilities: pd.DataFrame, *, cluster_km: float = 3.0, park: bool = True) -> bool:
    """Fit ``m`` to the densest cluster of ``facilities`` (the park) when it spans less than a third of the
    region, with two buttons (the park, the whole region); otherwise to the whole region. True if on the park."""
    whole = _bounds(facilities)
    park_frame = densest_cluster(facilities, cluster_km) if park else facilities
    park_box = _bounds(park_frame)
    span = max(whole[1][0] - whole[0][0], whole[1][1] - whole[0][1])
    park_span = max(park_box[1][0] - park_box[0][0], park_box[1][1] - park_box[0][1])
    pads = [list(FIT_PADDING_TOP_LEFT), list(FIT_PADDING_BOTTOM_RIGHT)]
    if park and 3 <= len(park_frame) < len(facilities) and park_span < span / 3:
        m.fit_bounds(park_box, padding_top_left=FIT_PADDING_TOP_LEFT, padding_bottom_right=FIT_PADDING_BOTTOM_RIGHT)
        m.add_child(_element_classes()["ViewControl"]([
            ["park", f"Densest cluster ({len(park_frame)})",
             f"The {len(park_frame)} facilities within {cluster_km:g} km of each other's centre", park_box, *pads],
            ["region", f"Whole region ({len(facilities)})", "Every facility and partner", whole, *pads]]))
        return True
    m.fit_bounds(whole, padding=(30, 30))
    return False


def _centre(facilities: pd.DataFrame) -> list[float]:
    if facilities.empty:
        return [0.0, 0.0]
    return [float(facilities["lat"].astype(float).mean()), float(facilities["lon"].astype(float).mean())]


def map_html(results: Any, *, self_contained: bool = False, **kwargs: Any) -> str:
    """The complete HTML page of :func:`explore`'s map.

    ``self_contained=True`` puts Leaflet's script and style (and markercluster's) into the page
    (:func:`symbiosis.outputs.offline.inline_assets`), so the map draws with no network; only the background
    tiles still come from it.
    """
    text = str(explore(results, **kwargs).get_root().render())
    if self_contained:
        from symbiosis.outputs.offline import inline_assets

        text = inline_assets(text)
    return text


def save_map(results: Any, path: str | os.PathLike[str], *, self_contained: bool = False, **kwargs: Any) -> Path:
    """Write the map of ``results`` to ``path`` (HTML) atomically; keywords go to :func:`explore`.

    ``self_contained=True``: see :func:`map_html`.
    """
    text = map_html(results, self_contained=self_contained, **kwargs)
    target = write_text_atomic(Path(path), text)
    logger.info("map written to %s (%.1f kB, self_contained=%s)", target, len(text.encode("utf-8")) / 1024,
                self_contained)
    return target
