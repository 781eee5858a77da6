"""The map of a large network (tens of thousands of facilities): aggregated when zoomed out, detail in view.

:func:`symbiosis.outputs.mapping.explore` draws every facility as a marker of its own (clustered by
Leaflet.markercluster above 200) and every exchange as a line, which a browser opens in about 10 s at
10,000 facilities and cannot handle smoothly at 50,000. From ``aggregate_from`` facilities (15,000 by
default) it hands over to :func:`draw` here, which draws the same content differently:

- **Zoomed out** (below the *detail zoom*): facilities are grouped on a grid of ``CELL_PX`` screen pixels
  of each zoom level, computed here with numpy (Web Mercator pixels, as Leaflet places them), and each group is
  one round marker (class ``sym-cluster``) showing how many facilities it holds, at their mean position; its
  tooltip says how many of them exchange something, and a click zooms to the group's facilities. Exchanges
  and BAU fates are not drawn at those zooms (a 50 km exchange is a few pixels long on a continent).
- **From the detail zoom**: every facility, exchange and BAU fate in view (plus a margin) is drawn, on one
  shared canvas, with the popups and tooltips of the small map (the same escaped HTML: facility popups with
  ``data-facility-id``, exchange tooltips with from → to, amount, km, saving and CO2e); what leaves the view
  is removed. The detail zoom is the lowest at which no screen of 1,280 x 860 px holds more than
  ``DETAIL_MOST`` facilities (:func:`detail_zoom`). Where more than ``MOST_IN_VIEW`` facilities, exchanges
  or fates are in view at once (a dense town's hundreds of lines), the busiest facilities and the largest
  exchanges and fates are drawn and the rest wait for a closer zoom: a repaint stays under half a second.

Confidential facilities are drawn where the public view puts them (the caller passes the public view), so
the groups count them at their coarsened places. The map container carries the number of clusters,
facilities, exchanges and fates drawn at the moment in ``data-sym-clusters-shown``,
``data-sym-facilities-shown``, ``data-sym-exchanges-shown`` and ``data-sym-fates-shown``, and how many in
view were left out in ``data-sym-<kind>-left-out`` (for tests and the benchmark
``tests/benchmarks/bench_map.py``).
"""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from symbiosis.outputs.escape import script_json

if TYPE_CHECKING:
    import folium

#: Facilities from which explore draws the aggregated map (its ``aggregate_from`` default): at 15,000 facilities
#: the one-marker-per-facility map took up to 1 s per zoom step in Chromium, at 10,000 0.2 s
#: (docs/performance.md, "Continental scale").
AGGREGATE_FROM = 15_000
#: Size of a grid cell of the groups, in screen pixels.
CELL_PX = 80
#: The detail zoom is the lowest zoom at which no screen holds more facilities than this.
DETAIL_MOST = 3_000
#: Lowest and highest detail zoom.
DETAIL_ZOOM_RANGE = (6, 13)
#: At most this many facilities, exchanges and fates are drawn at once (the busiest facilities, the largest
#: exchanges and fates in view); each one costs the browser about 0.1 ms to add on this machine.
MOST_IN_VIEW = 3_000
#: The screen size the detail zoom is chosen for (px).
SCREEN_PX = (1280, 860)

_CSS = """
<style>
.sym-cluster { background: none; border: none; }
.sym-cluster span { display: flex; align-items: center; justify-content: center; width: 100%; height: 100%;
  border-radius: 50%; background: rgba(49,130,189,.78); color: #fff; font: 600 12px/1 sans-serif;
  box-shadow: 0 0 0 4px rgba(49,130,189,.28); }
</style>
"""

# Draws the rows inside the view (padded by a fifth) between two zooms while the target layer is on the map,
# each row's layer made when it comes into view and removed when it leaves; the number drawn goes to
# data-sym-<kind>-shown on the map's container.
_VIEWPORT_JS = """
<script>
window.symViewport = function (map, target, rows, opts) {
    var shown = new Map();
    var boxes = rows.map(opts.box);
    var counts = map._symCounts = map._symCounts || {};
    var key = opts.kind + ':' + Object.keys(counts).length, lastLines = 0;
    function sync() {
        var z = map.getZoom(), keep = new Set(), hidden = 0, added = 0, before = new Set(shown.keys());
        if (z >= opts.minZoom && z <= opts.maxZoom && map.hasLayer(target)) {
            var b = map.getBounds().pad(0.2);
            var s = b.getSouth(), w = b.getWest(), n = b.getNorth(), e = b.getEast();
            for (var i = 0; i < boxes.length; i++) {
                var x = boxes[i];
                if (x[2] < s || x[0] > n || x[3] < w || x[1] > e) { continue; }
                if (keep.size >= opts.most) { hidden++; continue; }  // rows come largest first
                keep.add(i);
                if (!shown.has(i)) {
                    var layer = opts.make(rows[i]); shown.set(i, layer); target.addLayer(layer); added++;
                }
            }
        }
        shown.forEach(function (layer, i) { if (!keep.has(i)) { target.removeLayer(layer); shown.delete(i); } });
        // Facilities above the lines that came into view after them (one canvas paints in insertion order, and
        // a click goes to the topmost shape). Lines sync first on a move, so only the facilities already shown
        // before it need moving up, and only when lines were added since.
        if ((opts.kind === 'exchanges' || opts.kind === 'fates') && added) {
            map._symLinesAdded = (map._symLinesAdded || 0) + 1;
        }
        if (opts.front && (map._symLinesAdded || 0) !== lastLines) {
            shown.forEach(function (layer, i) { if (before.has(i)) { layer.bringToFront(); } });
        }
        if (opts.front) { lastLines = map._symLinesAdded || 0; }
        counts[key] = [shown.size, hidden];
        var total = 0, left = 0;
        Object.keys(counts).forEach(function (k) {
            if (k.split(':')[0] === opts.kind) { total += counts[k][0]; left += counts[k][1]; } });
        map.getContainer().setAttribute('data-sym-' + opts.kind + '-shown', total);
        map.getContainer().setAttribute('data-sym-' + opts.kind + '-left-out', left);
    }
    map.on('moveend', sync);
    target.on('add remove', function () { setTimeout(sync, 0); });  // a layer switched on or off
    map.whenReady(sync);
};
window.symCanvas = function (map) {
    map._symCanvas = map._symCanvas || L.canvas({padding: 0.3});
    return map._symCanvas;
};
</script>
"""


@functools.lru_cache(maxsize=1)
def _element_classes() -> dict[str, type]:
    from branca.element import MacroElement

    from symbiosis.outputs.mapping import _template as template
    from symbiosis.outputs.mapping import render_macros_raw

    class Viewport(MacroElement):  # type: ignore[misc]
        """Rows drawn by ``window.symViewport`` into the parent layer; ``kind`` picks how each row is drawn."""

        _template = template("""
            {% macro script(this, kwargs) %}
            (function () {
                var map = {{ this.map_name }};
                var target = {{ this._parent.get_name() }};
                var rows = {{ this.rows_json }};
                var o = {{ this.options_json }};
                var make, box;
                if (o.kind === 'clusters') {
                    box = function (r) { return [r[0], r[1], r[0], r[1]]; };
                    make = function (r) {
                        var size = Math.round(24 + 8 * Math.log10(r[2]));
                        var marker = L.marker([r[0], r[1]], {icon: L.divIcon({
                            className: 'sym-cluster', html: '<span>' + r[2].toLocaleString('en') + '</span>',
                            iconSize: [size, size], iconAnchor: [size / 2, size / 2]})});
                        marker.bindTooltip(r[2].toLocaleString('en') + ' facilit' + (r[2] === 1 ? 'y' : 'ies')
                            + ', ' + r[3].toLocaleString('en') + ' with exchanges; click to zoom in',
                            {direction: 'top'});
                        marker.on('click', function () {
                            map.fitBounds([[r[4], r[5]], [r[6], r[7]]],
                                          {maxZoom: Math.max(o.detail, map.getZoom() + 1), padding: [40, 40]});
                        });
                        return marker;
                    };
                } else if (o.kind === 'facilities') {
                    box = function (r) { return [r[0], r[1], r[0], r[1]]; };
                    make = function (r) {
                        return L.circleMarker([r[0], r[1]], {renderer: symCanvas(map), radius: 6, color: '#fff',
                                                             weight: 1.5, fillColor: r[2], fillOpacity: 1})
                            .bindPopup(r[3], {maxWidth: 340})
                            .bindTooltip(r[4], {direction: 'top', offset: [0, -6]});
                    };
                } else if (o.kind === 'exchanges') {
                    box = function (r) { return [Math.min(r[0], r[2]), Math.min(r[1], r[3]),
                                                 Math.max(r[0], r[2]), Math.max(r[1], r[3])]; };
                    make = function (r) {
                        var options = Object.assign({}, o.style, {weight: r[4], color: r[5],
                                                                  renderer: symCanvas(map)});
                        var shape = r[8]
                            ? L.circleMarker([r[0], r[1]], Object.assign(options, {fill: false, radius: 9 + r[4]}))
                            : L.polyline([[r[0], r[1]], [r[2], r[3]]], options);
                        shape.options.tPerYr = r[9];
                        return shape.bindTooltip(r[6], {sticky: true});
                    };
                } else {
                    box = function (r) { return [r[0], r[1], r[0], r[1]]; };
                    make = function (r) {
                        return L.circleMarker([r[0], r[1]], {renderer: symCanvas(map), radius: r[2], color: r[3],
                                                             weight: 1, fillColor: r[3], fillOpacity: 0.35})
                            .bindTooltip(r[4]);
                    };
                }
                symViewport(map, target, rows, {kind: o.kind, minZoom: o.minZoom, maxZoom: o.maxZoom,
                                                most: o.most || Infinity, front: o.kind === 'facilities',
                                                box: box, make: make});
            })();
            {% endmacro %}
        """)

        def __init__(self, rows: list[list[Any]], map_name: str, **options: Any):
            super().__init__()
            self._name = "SymbiosisViewport"
            self.map_name = map_name
            self.rows_json = script_json(rows)
            self.options_json = script_json(options)

        def render(self, **kwargs: Any) -> Any:  # branca's MacroElement.render returns nothing
            render_macros_raw(self, kwargs)

    return {"Viewport": Viewport}


def _pixels(lat: np.ndarray, lon: np.ndarray, zoom: int) -> tuple[np.ndarray, np.ndarray]:
    """Web Mercator pixel coordinates at ``zoom`` (256-px tiles), as Leaflet's ``project``."""
    scale = 256.0 * 2.0 ** zoom
    phi = np.radians(np.clip(lat, -85.0511287798, 85.0511287798))
    return (lon + 180.0) / 360.0 * scale, (1.0 - np.arcsinh(np.tan(phi)) / math.pi) / 2.0 * scale


def cluster_rows(facilities: pd.DataFrame, zoom: int, cell_px: int = CELL_PX) -> list[list[Any]]:
    """The groups of ``facilities`` at ``zoom``: [lat, lon, facilities, with exchanges, south, west, north,
    east] per occupied grid cell of ``cell_px`` screen pixels, at the mean position of its facilities."""
    lat = facilities["lat"].astype(float).to_numpy()
    lon = facilities["lon"].astype(float).to_numpy()
    busy = (pd.to_numeric(facilities["n_exchanges"], errors="coerce").fillna(0).to_numpy() > 0
            if "n_exchanges" in facilities.columns else np.zeros(len(lat), dtype=bool))
    ok = np.isfinite(lat) & np.isfinite(lon)
    x, y = _pixels(lat[ok], lon[ok], zoom)
    frame = pd.DataFrame({"cx": np.floor(x / cell_px).astype(np.int64), "cy": np.floor(y / cell_px).astype(np.int64),
                          "lat": lat[ok], "lon": lon[ok], "busy": busy[ok]})
    groups = frame.groupby(["cx", "cy"], sort=True).agg(
        mean_lat=("lat", "mean"), mean_lon=("lon", "mean"), n=("lat", "size"), busy=("busy", "sum"),
        south=("lat", "min"), west=("lon", "min"), north=("lat", "max"), east=("lon", "max"))
    return [[round(lat, 5), round(lon, 5), int(n), int(n_busy), round(south, 5), round(west, 5), round(north, 5),
             round(east, 5)] for lat, lon, n, n_busy, south, west, north, east in zip(
                *(groups[column].tolist() for column in ("mean_lat", "mean_lon", "n", "busy", "south", "west",
                                                          "north", "east")), strict=True)]


def detail_zoom(facilities: pd.DataFrame, most: int = DETAIL_MOST, screen_px: tuple[int, int] = SCREEN_PX,
                zoom_range: tuple[int, int] = DETAIL_ZOOM_RANGE) -> int:
    """The lowest zoom in ``zoom_range`` at which no screen of ``screen_px`` holds more than ``most``
    facilities (counted on a grid of half-screens, every 2 x 2 block of them: a screen anywhere lies within
    one such block), or the range's top."""
    lat = facilities["lat"].astype(float).to_numpy()
    lon = facilities["lon"].astype(float).to_numpy()
    ok = np.isfinite(lat) & np.isfinite(lon)
    for zoom in range(zoom_range[0], zoom_range[1]):
        x, y = _pixels(lat[ok], lon[ok], zoom)
        cells = pd.Series(1, index=pd.MultiIndex.from_arrays(
            [np.floor(x / (screen_px[0] / 2)).astype(np.int64), np.floor(y / (screen_px[1] / 2)).astype(np.int64)]))
        counts = cells.groupby(level=[0, 1]).sum()
        cx, cy = counts.index.get_level_values(0).to_numpy(), counts.index.get_level_values(1).to_numpy()
        total = counts.to_numpy().copy()
        lookup = dict(zip(zip(cx.tolist(), cy.tolist(), strict=True), total.tolist(), strict=True))
        block = total.copy()
        for dx, dy in ((1, 0), (0, 1), (1, 1)):
            block += np.array([lookup.get((a + dx, b + dy), 0) for a, b in zip(cx.tolist(), cy.tolist(), strict=True)])
        if len(block) == 0 or int(block.max()) <= most:
            return zoom
    return zoom_range[1]


def draw(m: folium.Map, view: Any, exchanges: pd.DataFrame, groups: list[str], *, facility_rows: list[list[Any]],
         fates: list[list[Any]], line_style: dict[str, Any], show_fates: bool, legend: str) -> int:
    """Draw ``view`` on ``m`` aggregated (module docstring); returns the detail zoom.

    ``exchanges`` is :func:`symbiosis.outputs.mapping.exchange_rows`'s table, ``facility_rows`` and ``fates``
    the rows of the small map's facilities and BAU fates, ``legend`` the small map's legend HTML."""
    import folium

    from symbiosis.outputs.mapping import HEAT_GROUP, esc, line_rows
    from symbiosis.outputs.mapping import _element_classes as map_classes

    viewport = _element_classes()["Viewport"]
    facilities = view.facilities
    m.get_root().header.add_child(folium.Element(_CSS), name="symbiosis_bigmap_css")  # type: ignore[attr-defined]
    m.get_root().header.add_child(folium.Element(_VIEWPORT_JS), name="symbiosis_viewport")  # type: ignore[attr-defined]
    detail = detail_zoom(facilities)
    name = m.get_name()
    # Rows largest first: where more than MOST_IN_VIEW are in view, the largest are the ones drawn.
    for group in groups:
        part = exchanges[exchanges["group"] == group].sort_values("amount", ascending=False, kind="stable")
        most = max(1, MOST_IN_VIEW * len(part) // max(1, len(exchanges)))  # the budget shared by group size
        layer = folium.FeatureGroup(name=f"Exchanges: {esc(group)} ({len(part)})", show=True)
        style = {**line_style, "dashArray": "8 6"} if group == HEAT_GROUP else line_style
        layer.add_child(viewport(line_rows(part), name, kind="exchanges", minZoom=detail, maxZoom=99, style=style,
                                 most=most))
        layer.add_to(m)
    if fates:
        fate_layer = folium.FeatureGroup(name="BAU fates: landfill & incineration", show=show_fates)
        fate_layer.add_child(viewport(sorted(fates, key=lambda r: -r[2]), name, kind="fates", minZoom=detail,
                                      maxZoom=99, most=MOST_IN_VIEW))
        fate_layer.add_to(m)
    facility_layer = folium.FeatureGroup(name=f"Facilities ({len(facilities):,}, grouped when zoomed out)")
    for zoom in range(detail):
        facility_layer.add_child(viewport(cluster_rows(facilities, zoom), name, kind="clusters",
                                          minZoom=-99 if zoom == 0 else zoom,
                                          maxZoom=zoom, detail=detail))
    busiest_first = sorted(facility_rows, key=lambda r: -r[6])  # r[6]: the facility's number of exchanges
    facility_layer.add_child(viewport(busiest_first, name, kind="facilities", minZoom=detail, maxZoom=99,
                                      most=MOST_IN_VIEW))
    facility_layer.add_to(m)
    legend = legend.replace("arrow = direction.", "direction in the tooltip.")
    legend += (f"<p>{len(facilities):,} facilities: zoomed out, a blue circle counts the facilities of its area "
               f"(click to zoom in); from zoom {detail} every facility, exchange and BAU fate in view is "
               f"drawn, at most {MOST_IN_VIEW:,} of each at once (the largest; zoom in for the rest).</p>")
    m.add_child(map_classes()["Legend"](legend))
    return detail
