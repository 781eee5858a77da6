"""The aggregated map of large networks (symbiosis.outputs.bigmap, issue 17).

explore() draws from ``aggregate_from`` facilities (20,000 by default) groups of facilities when zoomed out
and every facility, exchange and fate in view from a detail zoom on. The thresholds are lowered here so that
Kalundborg and a generated 600-facility region (the size test_outputs_map.py and test_browser.py use) take
that path; the small map's own tests cover the path below the threshold. The groups are checked by hand
(Web Mercator pixels worked out below), the switch by what each page holds, escaping and masking by the
page's text, and the drawing in Chromium.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import folium
import pandas as pd
import pytest

from symbiosis.outputs.bigmap import cluster_rows, detail_zoom
from symbiosis.outputs.mapping import explore, map_html, save_map
from symbiosis.region import Region
from symbiosis.results import Results
from tests.browser_support import (
    LOCAL_ORIGIN,
    browser_page,
    most_connected,
    optimised_with,
    require_browser,
    synthetic_pipeline_results,
)

HOSTILE = "<script>alert(1)</script>"
HOSTILE_TAIL = " ${alert(2)}`\\"
BIG_REGION_FACILITIES = 600


@pytest.fixture(scope="module")
def big() -> Results:
    return synthetic_pipeline_results(BIG_REGION_FACILITIES)[0]


def _viewports(m: folium.Map) -> dict[str, list[Any]]:
    """kind → the Viewport elements of that kind on the map (walks folium's element tree)."""
    found: dict[str, list[Any]] = {}

    def walk(element: Any) -> None:
        for child in element._children.values():
            if getattr(child, "_name", "") == "SymbiosisViewport":
                import json

                found.setdefault(json.loads(child.options_json)["kind"], []).append(child)
            walk(child)

    walk(m)
    return found


def _facilities(rows: list[tuple[float, float, int]]) -> pd.DataFrame:
    return pd.DataFrame({"lat": [r[0] for r in rows], "lon": [r[1] for r in rows],
                         "n_exchanges": [r[2] for r in rows]})


def test_groups_by_hand() -> None:
    # At zoom 0 the world is 256 px wide: x = (lon + 180) / 360 * 256, and y = 128 on the equator. With 80 px
    # cells, lon 0 (x 128.0) and lon 10 (x 135.1) share cell (1, 1), lon 100 (x 199.1) is in cell (2, 1).
    # At zoom 3 (2,048 px) lon 0 is x 1,024 (cell 12) and lon 10 is x 1,080.9 (cell 13): apart.
    facilities = _facilities([(0.0, 0.0, 2), (0.0, 10.0, 0), (0.0, 100.0, 1)])
    assert cluster_rows(facilities, 0) == [[0.0, 5.0, 2, 1, 0.0, 0.0, 0.0, 10.0], [0.0, 100.0, 1, 1, 0.0, 100.0,
                                                                                  0.0, 100.0]]
    assert [r[2] for r in cluster_rows(facilities, 3)] == [1, 1, 1]
    # North of the equator y falls: lat 60 is y = (1 - asinh(tan 60°) / π) / 2 · 256 = 74.0 at zoom 0 (cell 0),
    # lat 1 is y = 127.3 (cell 1): two groups at the same longitude.
    assert [r[2] for r in cluster_rows(_facilities([(60.0, 0.0, 0), (1.0, 0.0, 0)]), 0)] == [1, 1]


def test_groups_count_every_facility_once_and_nest(big: Results) -> None:
    previous = 0
    for zoom in range(0, 14):
        rows = cluster_rows(big.facilities, zoom)
        assert sum(r[2] for r in rows) == len(big.facilities)
        assert sum(r[3] for r in rows) == int((big.facilities["n_exchanges"] > 0).sum())
        for lat, lon, _n, _busy, south, west, north, east in rows:  # the mean lies in the group's box
            assert south - 1e-5 <= lat <= north + 1e-5 and west - 1e-5 <= lon <= east + 1e-5
        assert len(rows) >= previous  # a cell of zoom z + 1 lies in one cell of zoom z
        previous = len(rows)


def test_detail_zoom_keeps_a_screen_under_the_limit() -> None:
    crowd = _facilities([(55.0, 10.0, 0)] * 3_001)
    assert detail_zoom(crowd) == 13  # never at most 3,000 per screen: the top of the range
    assert detail_zoom(crowd, most=3_001) == 6
    # 2,000 facilities 0.5° apart in two places: together on one screen at zoom 6 (a screen is ~28° wide),
    # apart from zoom 9 (1,280 px at zoom 9 are 3.5°, half a screen 1.75°: the 2 x 2 blocks still join them at 8).
    two = _facilities([(55.0, 10.0, 0)] * 1_000 + [(55.0, 10.5, 0)] * 1_000)
    assert detail_zoom(two, most=1_500) > 6
    assert detail_zoom(two, most=2_000) == 6


def test_the_aggregated_map_only_from_the_threshold(big: Results) -> None:
    import inspect

    from symbiosis.outputs.bigmap import AGGREGATE_FROM

    assert inspect.signature(explore).parameters["aggregate_from"].default == AGGREGATE_FROM == 15_000
    n = len(big.facilities)
    small = map_html(big, aggregate_from=n + 1)
    assert "markerClusterGroup" in small and "symViewport" not in small
    m = explore(big, aggregate_from=n)
    html = m.get_root().render()
    assert "symViewport" in html and "markerClusterGroup" not in html and "SymbiosisFacilities" not in html
    parts = _viewports(m)
    assert sum(len(v.rows_json) > 2 for v in parts["facilities"]) == 1
    facilities = parts["facilities"][0]
    import json

    assert len(json.loads(facilities.rows_json)) == n
    exchanges = sum(len(json.loads(v.rows_json)) for v in parts["exchanges"])
    assert exchanges == len(big.exchanges)
    detail = json.loads(facilities.options_json)["minZoom"]
    assert len(parts["clusters"]) == detail  # one level of groups per zoom below the detail zoom
    assert f"from zoom {detail} every facility" in html


def test_aggregated_map_escapes_and_masks(sample: tuple[Results, Region]) -> None:
    results, region = sample
    hostile, _ = optimised_with(region, most_connected(results), name=HOSTILE + HOSTILE_TAIL)
    html = map_html(hostile, aggregate_from=1)
    assert "symViewport" in html
    assert HOSTILE not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html.replace("\\u0026", "&")
    name = "Secret Works Ltd"
    hidden, _ = optimised_with(region, most_connected(results), name=name, confidential=True)
    html = map_html(hidden, aggregate_from=1)
    assert name not in html and "Confidential facility 1" in html
    assert name in map_html(hidden, public=False, aggregate_from=1)


# --- in Chromium --------------------------------------------------------------------------------------


def _map_name(page: Any) -> str:
    return str(page.evaluate("() => Object.keys(window).find(k => k.startsWith('map_') && window[k]"
                             " && window[k].setZoom)"))


def _shown(page: Any, name: str, kind: str) -> int:
    return int(page.evaluate(f"() => {name}.getContainer().getAttribute('data-sym-{kind}-shown')") or 0)


def _set_view(page: Any, name: str, lat: float, lon: float, zoom: int) -> None:
    page.evaluate(f"() => {{ {name}.setView([{lat}, {lon}], {zoom}, {{animate: false}}); }}")
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(1))))")


def _saved_big_map(big: Results, tmp_path: Path) -> tuple[int, pd.Series, pd.Series]:
    """Write the aggregated map of ``big`` to tmp_path/map.html; return its detail zoom and the facilities'
    latitudes and longitudes."""
    m = explore(big, aggregate_from=1)
    detail = int(__import__("json").loads(_viewports(m)["facilities"][0].options_json)["minZoom"])
    save_map(big, tmp_path / "map.html", aggregate_from=1)
    return detail, big.facilities["lat"].astype(float), big.facilities["lon"].astype(float)


@pytest.mark.browser
def test_aggregated_map_groups_when_zoomed_out_and_details_in_view(big: Results, tmp_path: Path) -> None:
    require_browser()
    detail, lat, lon = _saved_big_map(big, tmp_path)
    with browser_page(tmp_path) as (page, router, log):
        page.goto(f"{LOCAL_ORIGIN}/map.html", wait_until="load")
        name = _map_name(page)
        # Zoomed out, the whole region in view: groups only, and they count every facility.
        _set_view(page, name, float(lat.mean()), float(lon.mean()), 4)
        counts = [int(t.replace(",", "")) for t in page.locator(".sym-cluster span").all_inner_texts()]
        assert counts and sum(counts) == len(big.facilities)
        assert _shown(page, name, "clusters") == len(counts)
        assert _shown(page, name, "facilities") == 0 and _shown(page, name, "exchanges") == 0
        assert page.locator(".sym-facility").count() == 0  # no marker per facility
        # From the detail zoom: no groups; the facilities and exchanges in view, on the canvas.
        fid = most_connected(big)
        row = big.facilities[big.facilities["facility_id"] == fid].iloc[0]
        _set_view(page, name, float(row["lat"]), float(row["lon"]), detail + 1)
        assert page.locator(".sym-cluster").count() == 0
        in_view = page.evaluate(f"() => {{ const b = {name}.getBounds().pad(0.2); return {{s: b.getSouth(),"
                                " w: b.getWest(), n: b.getNorth(), e: b.getEast()}; }")
        inside = ((lat >= in_view["s"]) & (lat <= in_view["n"]) & (lon >= in_view["w"]) & (lon <= in_view["e"]))
        assert _shown(page, name, "facilities") == int(inside.sum()) > 0
        assert _shown(page, name, "exchanges") > 0
        assert page.locator("canvas.leaflet-zoom-animated").count() >= 1
        # The small map's popup, opened on the facility's own marker.
        opened = page.evaluate(f"""() => {{ let done = false; {name}.eachLayer(l => {{
            if (!done && l.getPopup && l.getPopup() && String(l.getPopup().getContent())
                .includes('data-facility-id="{fid}"')) {{ l.openPopup(); done = true; }} }}); return done; }}""")
        assert opened
        popup = page.locator(".leaflet-popup-content .sym-popup")
        popup.wait_for(timeout=5_000)
        assert popup.get_attribute("data-facility-id") == fid
        # Facilities are painted (and hit-tested) above every line, also after a pan brought new lines in:
        # the canvas paints in the order of its list (Leaflet's Canvas renderer, _drawFirst → next).
        _set_view(page, name, float(row["lat"]), float(row["lon"]), max(detail + 1, 11))
        before = _shown(page, name, "exchanges")
        page.evaluate(f"() => {{ {name}.panBy([500, 300], {{animate: false}}); }}")
        page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(1))))")
        assert _shown(page, name, "exchanges") != before  # the pan brought lines in (or took some out)
        order = page.evaluate(f"""() => {{ const kinds = []; let item = {name}._symCanvas._drawFirst;
            while (item) {{ kinds.push(item.layer.getPopup && item.layer.getPopup() ? 'f' : 'x');
                           item = item.next; }} return kinds.join(''); }}""")
        assert "f" in order and "x" in order and "fx" not in order  # no line above a facility
        # Zooming back out removes what left the view and brings the groups back.
        _set_view(page, name, float(lat.mean()), float(lon.mean()), 4)
        assert _shown(page, name, "facilities") == 0 and page.locator(".sym-cluster").count() > 0
        page.mouse.move(640, 400)
        page.mouse.wheel(0, -300)
        page.wait_for_timeout(500)
        assert not router.unmapped and not log.page_errors and not log.console_errors and not log.dialogs


@pytest.mark.browser
def test_aggregated_map_shows_a_hostile_name_as_text(sample: tuple[Results, Region], tmp_path: Path) -> None:
    require_browser()
    results, region = sample
    fid = most_connected(results)
    hostile, _ = optimised_with(region, fid, name=HOSTILE + HOSTILE_TAIL)
    save_map(hostile, tmp_path / "map.html", aggregate_from=1)
    row = hostile.facilities[hostile.facilities["facility_id"] == fid].iloc[0]
    with browser_page(tmp_path) as (page, router, log):
        page.goto(f"{LOCAL_ORIGIN}/map.html", wait_until="load")
        name = _map_name(page)
        _set_view(page, name, float(row["lat"]), float(row["lon"]), 14)
        assert page.evaluate(f"""() => {{ let done = false; {name}.eachLayer(l => {{
            if (!done && l.getPopup && l.getPopup() && String(l.getPopup().getContent())
                .includes('data-facility-id="{fid}"')) {{ l.openPopup(); done = true; }} }}); return done; }}""")
        popup = page.locator(".leaflet-popup-content")
        popup.wait_for(timeout=5_000)
        assert popup.locator("b").first.inner_text() == HOSTILE + HOSTILE_TAIL
        assert page.locator(".leaflet-popup-content script").count() == 0
        assert not log.page_errors and not log.console_errors and not log.dialogs


@pytest.mark.browser
def test_aggregated_map_draws_at_most_so_many_at_once_the_largest_first(big: Results, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    require_browser()
    from symbiosis.outputs import bigmap

    monkeypatch.setattr(bigmap, "MOST_IN_VIEW", 40)
    detail, lat, lon = _saved_big_map(big, tmp_path)
    with browser_page(tmp_path) as (page, router, log):
        page.goto(f"{LOCAL_ORIGIN}/map.html", wait_until="load")
        name = _map_name(page)
        _set_view(page, name, float(lat.median()), float(lon.median()), detail)
        box = page.evaluate(f"() => {{ const b = {name}.getBounds().pad(0.2); return {{s: b.getSouth(),"
                            " w: b.getWest(), n: b.getNorth(), e: b.getEast()}; }")
        inside = (lat >= box["s"]) & (lat <= box["n"]) & (lon >= box["w"]) & (lon <= box["e"])
        assert inside.sum() > 40  # more in view than may be drawn
        shown = _shown(page, name, "facilities")
        left = int(page.evaluate(f"() => {name}.getContainer().getAttribute('data-sym-facilities-left-out')"))
        assert shown == 40 and shown + left == int(inside.sum())
        # the busiest are drawn: every one drawn has at least as many exchanges as every one left out
        drawn = page.evaluate(f"""() => {{ const ids = []; {name}.eachLayer(l => {{
            const p = l.getPopup && l.getPopup();
            const m = p && String(p.getContent()).match(/data-facility-id="([^"]+)"/);
            if (m) {{ ids.push(m[1]); }} }}); return ids; }}""")
        assert len(set(drawn)) == 40
        busy = big.facilities.set_index("facility_id")["n_exchanges"]
        in_view = set(big.facilities.loc[inside.to_numpy(), "facility_id"])
        assert min(busy[list(drawn)]) >= max(busy[list(in_view - set(drawn))])
        assert "at most 40 of each at once" in page.locator(".sym-legend").inner_text()
        assert not log.page_errors and not log.console_errors


# --- 15,000 facilities: the default threshold, popups built column by column --------------------------------

#: Hostile texts: HTML, a template literal, a Jinja tag (folium renders scripts twice), the end of a script,
#: quotes and the JavaScript line separator.
HOSTILE_NAMES = (HOSTILE + HOSTILE_TAIL, "{{ 7 * 7 }} {% if 1 %}x{% endif %}", "</script><b>\"o'k\"</b>\u2028&amp;")
N_CONTINENTAL = 15_000


def _continental_results() -> Results:
    """15,000 facilities (the default ``aggregate_from``) around a few towns, deterministic; facility F00000 has
    the first hostile name, sends a hostile material to five facilities (two of them hostile) and receives
    from one, and keeps 12 t of a hostile waste on its current fate. No optimisation: the map's input only."""
    import numpy as np

    rng = np.random.default_rng(17)
    towns = rng.uniform([45.0, 0.0], [55.0, 20.0], size=(30, 2))
    which = rng.integers(0, len(towns), N_CONTINENTAL)
    lat = towns[which, 0] + rng.normal(0.0, 0.05, N_CONTINENTAL)
    lon = towns[which, 1] + rng.normal(0.0, 0.08, N_CONTINENTAL)
    ids = [f"F{i:05d}" for i in range(N_CONTINENTAL)]
    names = [f"Plant {i}" for i in range(N_CONTINENTAL)]
    names[0], names[1], names[2] = HOSTILE_NAMES
    lat[:7], lon[:7] = lat[0] + np.arange(7) * 0.002, lon[0]  # the hostile facility's partners beside it
    facilities = pd.DataFrame({"facility_id": ids, "name": names, "sector": "C23.5", "lat": lat, "lon": lon,
                               "confidential": False})
    # F00000 sends to F00001..F00005 (amounts 500, 400, 300, 200, 100: the popup lists three and "… and 2 more")
    # and receives from F00006; 3,000 more exchanges between neighbours in the table.
    supply = ["F00000"] * 5 + ["F00006"] + ids[10:3_010]
    demand = ids[1:6] + ["F00000"] + ids[11:3_011]
    n = len(supply)
    exchanges = pd.DataFrame({
        "supply_id": [f"S{i}" for i in range(n)], "demand_id": [f"D{i}" for i in range(n)],
        "supply_facility": supply, "demand_facility": demand,
        "material": ["<img src=x onerror=alert(3)>"] * 5 + ["slag"] * (n - 5), "primary_material": "slag",
        "material_class": "mineral", "quantity": "mass", "amount_mwh_per_yr": float("nan"),
        "amount_t_per_yr": [500.0, 400.0, 300.0, 200.0, 100.0] + [50.0] * (n - 5),
        "distance_km": 1.0, "saving": 1_000.0, "co2e_avoided_t_per_yr": 2.0})
    counts = pd.concat([exchanges["supply_facility"], exchanges["demand_facility"]]).value_counts()
    facilities["n_exchanges"] = facilities["facility_id"].map(counts).fillna(0).astype(int)
    facilities["gain"] = facilities["n_exchanges"] * 100.0
    supplies = pd.DataFrame({"supply_id": ["W0"], "facility_id": ["F00000"], "material": [HOSTILE_NAMES[1]],
                             "fate": ["landfill"], "fate_kind": ["landfill"], "amount_t_per_yr": [12.0],
                             "to_fate_t_per_yr": [12.0]})
    return Results(exchanges=exchanges, supplies=supplies, demands=pd.DataFrame(), facilities=facilities,
                   kpis={"currency": "EUR"}, balances=None, balances_after=None)


@pytest.fixture(scope="module")
def continental() -> Results:
    return _continental_results()


def _popup_text(markup: str) -> tuple[str, list[str]]:
    """The bold name and the list items of a popup, as a browser's text (parsed by html.parser)."""
    from html.parser import HTMLParser

    class Reader(HTMLParser):
        def __init__(self) -> None:
            super().__init__(convert_charrefs=True)
            self.tags: list[str] = []
            self.bold, self.items = "", []  # type: ignore[var-annotated]

        def handle_starttag(self, tag: str, attrs: Any) -> None:
            assert tag in {"div", "b", "br", "u", "ul", "li"}, tag  # no markup from the data
            self.tags.append(tag)
            if tag == "li":
                self.items.append("")

        def handle_endtag(self, tag: str) -> None:
            self.tags.pop() if self.tags and self.tags[-1] == tag else None

        def handle_data(self, data: str) -> None:
            if self.tags and self.tags[-1] == "b":
                self.bold += data
            elif self.tags and self.tags[-1] == "li":
                self.items[-1] += data

    reader = Reader()
    reader.feed(markup)
    return reader.bold, reader.items


def test_continental_popups_hold_the_hostile_names_as_text(continental: Results) -> None:
    from symbiosis.outputs.mapping import facility_rows

    rows = {row[5]: row for row in facility_rows(continental, "EUR")}
    assert len(rows) == N_CONTINENTAL
    bold, items = _popup_text(rows["F00000"][3])
    assert bold == HOSTILE_NAMES[0]
    hostile_material = "<img src=x onerror=alert(3)>"
    # Sends, largest first, three of five; receives; what is left to its current fate.
    assert items == [f"{hostile_material} → {HOSTILE_NAMES[1]}: 500 t/yr",
                     f"{hostile_material} → {HOSTILE_NAMES[2]}: 400 t/yr",
                     f"{hostile_material} → Plant 3: 300 t/yr", "… and 2 more",
                     "slag from Plant 6: 50 t/yr", f"{HOSTILE_NAMES[1]} → landfill: 12 t/yr"]
    assert _popup_text(rows["F00001"][3])[0] == HOSTILE_NAMES[1]
    assert _popup_text(rows["F00002"][3])[0] == HOSTILE_NAMES[2]
    assert "Gain: 600 EUR/yr" in rows["F00000"][3]  # 6 exchanges x 100


def test_continental_map_is_aggregated_and_its_rows_are_not_templates(continental: Results,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    # branca used to compile each element's output as a Jinja template again: for the rows of a large map
    # that lexed tens of megabytes (a third of the writing time at 50,000 facilities). The rows go into the
    # page as they are now: no template compiled while the page renders is larger than the page's code.
    import jinja2

    compiled: list[int] = []
    original = jinja2.Environment.from_string

    def recording(self: Any, source: Any, *args: Any, **kwargs: Any) -> Any:
        compiled.append(len(source) if isinstance(source, str) else 0)
        return original(self, source, *args, **kwargs)

    monkeypatch.setattr(jinja2.Environment, "from_string", recording)
    html = map_html(continental)
    assert "symViewport" in html and "markerClusterGroup" not in html  # 15,000: the aggregated map
    assert len(html) > 2_000_000 and max(compiled) < 200_000
    for name in HOSTILE_NAMES:
        assert name not in html
    # the Jinja tag reached the page as escaped text, not evaluated (html_text, then script_json)
    assert "\\u0026#123;\\u0026#123; 7 * 7 \\u0026#125;\\u0026#125;" in html


@pytest.mark.browser
def test_continental_map_popup_shows_a_hostile_name_as_text(continental: Results, tmp_path: Path) -> None:
    require_browser()
    save_map(continental, tmp_path / "map.html")
    row = continental.facilities.iloc[0]
    with browser_page(tmp_path) as (page, router, log):
        page.goto(f"{LOCAL_ORIGIN}/map.html", wait_until="load", timeout=120_000)
        name = _map_name(page)
        _set_view(page, name, float(row["lat"]), float(row["lon"]), 15)
        assert page.evaluate(f"""() => {{ let done = false; {name}.eachLayer(l => {{
            if (!done && l.getPopup && l.getPopup() && String(l.getPopup().getContent())
                .includes('data-facility-id="F00000"')) {{ l.openPopup(); done = true; }} }}); return done; }}""")
        popup = page.locator(".leaflet-popup-content")
        popup.wait_for(timeout=5_000)
        assert popup.locator("b").first.inner_text() == HOSTILE_NAMES[0]
        items = popup.locator("li").all_inner_texts()
        assert items[0] == f"<img src=x onerror=alert(3)> → {HOSTILE_NAMES[1]}: 500 t/yr"
        assert items[1].startswith("<img src=x onerror=alert(3)> → </script>")
        assert page.locator(".leaflet-popup-content script, .leaflet-popup-content img").count() == 0
        assert not log.page_errors and not log.console_errors and not log.dialogs and not router.unmapped


def _zoom_quickly(page: Any, name: str, rounds: int) -> None:
    """Zoom out and in by three levels ``rounds`` times, animated, each step before the last one ended, then
    a few mouse-wheel steps both ways; wait for the page to settle."""
    page.evaluate(f"""() => new Promise(done => {{
        let round = 0;
        (function step() {{
            if (round++ >= {rounds}) {{ done(true); return; }}
            {name}.zoomOut(3);
            setTimeout(() => {name}.zoomIn(3), 40);
            setTimeout(step, 90);
        }})();
    }})""")
    page.mouse.move(640, 430)
    for delta in (300, 300, -300, -300, 300, -300):
        page.mouse.wheel(0, delta)
        page.wait_for_timeout(30)
    page.wait_for_timeout(1_500)


@pytest.mark.browser
@pytest.mark.parametrize("aggregate_from", [N_CONTINENTAL, 10 * N_CONTINENTAL], ids=["aggregated", "clustered"])
def test_quick_zooms_at_15000_facilities_raise_no_script_error(continental: Results, tmp_path: Path,
                                                               aggregate_from: int) -> None:
    # The clustered map (Leaflet.markercluster with chunked loading) threw "Cannot read properties of undefined
    # (reading 'lat')" when it zoomed before its last chunk of markers was clustered: at 15,000 facilities that
    # is the first seconds after the page opens, the fitBounds at its end included.
    require_browser()
    save_map(continental, tmp_path / "map.html", aggregate_from=aggregate_from)
    row = continental.facilities.iloc[0]
    with browser_page(tmp_path) as (page, router, log):
        page.goto(f"{LOCAL_ORIGIN}/map.html", wait_until="load", timeout=120_000)
        name = _map_name(page)
        page.evaluate(f"() => {{ {name}.setView([{float(row['lat'])}, {float(row['lon'])}], 12); }}")
        _zoom_quickly(page, name, 12)
        assert not log.page_errors and not log.console_errors and not router.unmapped
        # still drawing: at zoom 16 around F00000 its marker (or its canvas circle) is there
        _set_view(page, name, float(row["lat"]), float(row["lon"]), 16)
        if aggregate_from > N_CONTINENTAL:
            page.wait_for_function("() => document.querySelector('.sym-dot[data-facility-id=\"F00000\"]')",
                                   timeout=30_000)
        else:
            assert _shown(page, name, "facilities") >= 7
        assert not log.page_errors and not log.console_errors


def test_popup_lists_the_largest_flows_first_and_suppressed_amounts_last(continental: Results) -> None:
    # A public map suppresses some amounts (NaN): the popup's three must still be the largest known ones.
    # (Sorting with NaN keys in Python left the order to chance: 9 and 7 t were not listed, two blanks were.)
    import dataclasses

    import numpy as np

    from symbiosis.outputs.mapping import facility_rows

    amounts = [np.nan, 5.0, np.nan, 7.0, 9.0] + [50.0] * (len(continental.exchanges) - 5)
    results = dataclasses.replace(continental, exchanges=continental.exchanges.assign(amount_t_per_yr=amounts))
    rows = {row[5]: row for row in facility_rows(results, "EUR")}
    items = _popup_text(rows["F00000"][3])[1]
    sent = "<img src=x onerror=alert(3)> → "
    assert items[:4] == [f"{sent}Plant 5: 9 t/yr", f"{sent}Plant 4: 7 t/yr", f"{sent}{HOSTILE_NAMES[2]}: 5 t/yr",
                         "… and 2 more"]
