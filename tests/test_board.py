"""Issue 15: a report and map a planner can put in front of a board.

The browser tests open what ``symbiosis run`` and ``symbiosis compare`` write for the shipped Kalundborg region
(the real pipeline: HiGHS through Pyomo) in Debian's Chromium at 1400x1000, and assert what a person sees:
the map opens on the park, every facility marker in view can be clicked and opens its own popup, labels do
not overlap (DOM bounding boxes), legend entries are names, the smallest exchange in a Sankey is a few pixels
wide and its labels do not overlap, and the report's first screen tells the story. Screenshots go to
tests/artifacts/ (the ones in docs/img/ were taken the same way).

The other tests check the pieces against hand-made cases: the densest cluster, the leader labels of the
slides (no two overlap, every facility in view named), plain axis numbers, the log widths of the Sankey,
the NACE names, the story's sentences and the CLI's summary.
"""

from __future__ import annotations

import itertools
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from symbiosis.cli import app
from symbiosis.outputs.mapping import densest_cluster, division_names, short_name
from symbiosis.outputs.sankey import link_widths
from symbiosis.outputs.static import leader_labels, plain_axis
from symbiosis.outputs.story import exchange_sentence, plain_amount
from tests.browser_support import ARTIFACTS, KALUNDBORG, LOCAL_ORIGIN, REPO, browser_page, require_browser

VIEWPORT = (1400, 1000)


def overlapping(boxes: list[dict[str, Any]], name: str = "text") -> list[tuple[str, str]]:
    """Pairs of boxes (x, y, width, height) that overlap by more than half a pixel."""
    pairs = []
    for a, b in itertools.combinations(boxes, 2):
        dx = min(a["x"] + a["width"], b["x"] + b["width"]) - max(a["x"], b["x"])
        dy = min(a["y"] + a["height"], b["y"] + b["height"]) - max(a["y"], b["y"])
        if dx > 0.5 and dy > 0.5:
            pairs.append((a[name], b[name]))
    return pairs


# --------------------------------------------------------------------------------------------------
# pieces, against hand-made cases
# --------------------------------------------------------------------------------------------------


def test_densest_cluster_picks_the_park_not_the_distant_partners() -> None:
    # five plants within ~1.5 km of each other at 55.67 N, two partners 50 and 200 km away, one pair 300 km off
    park = [(55.670, 11.100), (55.672, 11.110), (55.668, 11.095), (55.675, 11.105), (55.665, 11.115)]
    far = [(55.670, 11.900), (57.050, 10.030), (58.000, 12.000), (58.001, 12.001)]
    facilities = pd.DataFrame({"facility_id": [f"f{i}" for i in range(9)],
                               "lat": [p[0] for p in park + far], "lon": [p[1] for p in park + far]})
    picked = densest_cluster(facilities, 3.0)
    assert sorted(picked["facility_id"]) == ["f0", "f1", "f2", "f3", "f4"]
    # a radius too small for any pair keeps one facility: the first of the largest count (a tie of ones)
    assert len(densest_cluster(facilities, 0.01)) in (1, 2)


def test_division_names_come_from_nace_csv() -> None:
    names = division_names(pd.Series(["35.11", "35.30", "23.51", "99.99"]))
    # data/reference/nace.csv: 35.11 "Production of electricity", 35.30 "Steam and air conditioning supply"
    assert names["35"] == "35 Production of electricity; Steam and air conditioning supply"
    assert names["23"] == "23 Manufacture of cement"
    assert names["99"] == "NACE division 99"  # not in nace.csv: said so, never a bare code


def test_short_name_cuts_at_the_bracket() -> None:
    assert short_name("Asnæs power station (DONG Energy in 2010, now Ørsted)") == "Asnæs power station"
    assert short_name("x" * 40, 10) == "x" * 9 + "…"


def test_log_link_widths_keep_a_stream_2000_times_smaller_visible() -> None:
    widths = link_widths([6_000_000.0, 3_000.0, 30_000.0, float("nan")], "log")
    # 1 + log10(v / 3000): 1 + log10(2000) = 4.301..., 1, 2; a missing amount at the smallest width
    assert widths == pytest.approx([1 + math.log10(2000), 1.0, 2.0, 1.0])
    assert link_widths([5.0, 1.0], "linear") == [5.0, 1.0]
    with pytest.raises(ValueError):
        link_widths([1.0], "sqrt")


def test_plain_axis_has_no_offset_and_no_scientific_notation() -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    # a trade-off curve spanning 238 t CO2e near 1.793 million t and costs near 1e8: matplotlib's default
    # formatter writes "+1.793e6" and "1e8" here
    ax.plot([1_793_000, 1_793_238], [100_000_000, 100_400_000])
    plain_axis(ax.xaxis)
    plain_axis(ax.yaxis)
    fig.canvas.draw()
    labels = [t.get_text() for t in ax.get_xticklabels() + ax.get_yticklabels() if t.get_text()]
    assert labels and all(re.fullmatch(r"-?[\d,]+(\.\d+)?", text) for text in labels), labels
    assert any("," in text for text in labels)
    assert ax.xaxis.get_offset_text().get_text() == "" and ax.yaxis.get_offset_text().get_text() == ""


def test_leader_labels_name_every_point_without_overlap() -> None:
    from matplotlib.figure import Figure
    from matplotlib.text import Text

    fig = Figure(figsize=(8, 5))
    ax = fig.add_subplot()
    rng = np.random.default_rng(3)
    # 30 points crowded into a corner: any label placed beside its point would collide
    points = [(float(x), float(y), f"Facility number {i}") for i, (x, y) in
              enumerate(zip(rng.uniform(0.40, 0.45, 30), rng.uniform(0.40, 0.45, 30), strict=True))]
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    texts = leader_labels(ax, points, fontsize=8)
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    # the text's own box (an annotation's extent would include its leader line)
    boxes = [{"text": t.get_text(), **dict(zip(("x", "y", "width", "height"),
                                                Text.get_window_extent(t, renderer).bounds, strict=True))}
             for t in texts]
    assert sorted(b["text"] for b in boxes) == sorted(p[2] for p in points)
    assert not overlapping(boxes)
    axes_box = ax.get_window_extent(renderer)
    assert all(axes_box.y0 - 1 <= b["y"] and b["y"] + b["height"] <= axes_box.y1 + 1 for b in boxes)


def test_slide_map_names_every_facility_of_the_park(sample: tuple[Any, Any], tmp_path: Path) -> None:
    from matplotlib import image

    from symbiosis.outputs import static

    results, _ = sample
    drawn: list[list[str]] = []
    original = static.leader_labels

    def spy(ax: Any, points: list[tuple[float, float, str]], **kwargs: Any) -> list[Any]:
        drawn.append([p[2] for p in points])
        return original(ax, points, **kwargs)

    static.leader_labels = spy  # type: ignore[assignment]
    try:
        path = static.exchange_map_png(results, tmp_path / "map.png")
    finally:
        static.leader_labels = original  # type: ignore[assignment]
    park = densest_cluster(results.facilities, 3.0)
    assert len(park) == 8  # the Kalundborg park: 8 plants within 3 km; 5 partners farther away
    assert set(drawn[0]) >= {short_name(str(n)) for n in park["name"]}
    assert image.imread(path).shape[1] >= 1500  # 12 in at 150 dpi: legible when projected


def test_exchange_sentence_says_who_sends_what_to_whom() -> None:
    row = pd.Series({"supply_facility": "a", "demand_facility": "b", "material": "fgd_gypsum",
                     "primary_material": "natural_gypsum", "amount_t_per_yr": 150_000.0, "distance_km": 1.6,
                     "saving": 18_687_865.0, "co2e_avoided_t_per_yr": 2_047.2, "quantity": "mass"})
    names = {"a": "Asnæs power station", "b": "Gyproc"}
    materials = {"fgd_gypsum": "FGD gypsum", "natural_gypsum": "Natural gypsum"}
    assert exchange_sentence(row, names, materials, "EUR") == (
        "Asnæs power station sends 150,000 t/yr of FGD gypsum to Gyproc (1.6 km), replacing Natural gypsum: "
        "saves 18.7 million EUR a year and avoids 2,047 t CO2e a year.")
    heat = pd.Series({**row.to_dict(), "material": "steam", "primary_material": "steam", "quantity": "energy",
                      "amount_mwh_per_yr": 46_223.0, "amount_t_per_yr": float("nan")})
    assert exchange_sentence(heat, names, {}, "EUR").startswith(
        "Asnæs power station sends 46,223 MWh/yr of steam to Gyproc (1.6 km): saves")
    hidden = pd.Series({**row.to_dict(), "amount_t_per_yr": float("nan"), "saving": float("nan")})
    assert "an undisclosed amount of FGD gypsum" in exchange_sentence(hidden, names, materials, "EUR")
    assert plain_amount(58_452_849.5, "EUR") == "58.5 million EUR" and plain_amount(None) == "not disclosed"


def test_cli_echoes_the_options_and_tells_similar_exchanges_apart(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["optimise", str(KALUNDBORG), "--out", str(tmp_path / "o"),
                                      "--carbon-price", "100"], env={"COLUMNS": "220"})
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == "options: --carbon-price 100"
    table = result.output[result.output.index("Top exchanges"):]
    assert "replaces" in table
    # the refinery's fuel gas goes to Gyproc (replacing natural gas) and to Asnæs (replacing coal)
    assert re.search(r"refinery_fuel_gas\s*│\s*natural_gas", table) and re.search(r"refinery_fuel_gas\s*│\s*coal",
                                                                                  table)


# --------------------------------------------------------------------------------------------------
# what a person sees, in Chromium
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def board_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_browser()
    root = tmp_path_factory.mktemp("board")
    runner = CliRunner()
    result = runner.invoke(app, ["run", str(KALUNDBORG), "--out", str(root / "run")])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["compare", str(REPO / "scenarios" / "baseline.yaml"),
                                 str(REPO / "scenarios" / "distance_25km.yaml"), "--out", str(root / "compare"),
                                 "--workers", "1"])
    assert result.exit_code == 0, result.output
    return root


def _open_map(page: Any, url: str) -> None:
    page.goto(url, wait_until="load")
    page.wait_for_selector(".sym-label", state="attached", timeout=20_000)
    page.wait_for_timeout(600)  # labels are placed once the view has settled


def _visible_labels(page: Any) -> list[dict[str, Any]]:
    return page.eval_on_selector_all(
        ".sym-label", "els => els.filter(e => e.style.display !== 'none' && e.offsetWidth > 0).map(e => {"
        " const r = e.getBoundingClientRect(); return {text: e.textContent, id: e.dataset.facilityId,"
        " x: r.x, y: r.y, width: r.width, height: r.height}; })")


def _markers_in_view(page: Any) -> list[dict[str, Any]]:
    """Facility markers whose centre is in the viewport and not under a map control."""
    return page.evaluate(
        """() => {
            const controls = Array.from(document.querySelectorAll('.leaflet-control'))
                .map(c => c.getBoundingClientRect());
            return Array.from(document.querySelectorAll('.sym-facility .sym-dot')).map(d => {
                const r = d.getBoundingClientRect();
                return {id: d.dataset.facilityId, x: r.x + r.width / 2, y: r.y + r.height / 2};
            }).filter(p => p.x > 0 && p.y > 0 && p.x < innerWidth && p.y < innerHeight &&
                !controls.some(c => p.x >= c.left && p.x <= c.right && p.y >= c.top && p.y <= c.bottom));
        }""")


def _click_each_marker(page: Any) -> list[str]:
    """Click every marker in view at its centre, as a person would; return the ids whose popup opened."""
    opened = []
    for marker in _markers_in_view(page):
        page.mouse.click(marker["x"], marker["y"])
        popup = page.locator(".leaflet-popup-content .sym-popup")
        popup.wait_for(timeout=5_000)
        assert popup.get_attribute("data-facility-id") == marker["id"], (
            f"clicking {marker['id']} opened the popup of {popup.get_attribute('data-facility-id')}")
        opened.append(marker["id"])
        page.evaluate("window[document.querySelector('.folium-map').id].closePopup()")
        page.wait_for_function("document.querySelectorAll('.leaflet-popup').length === 0", timeout=5_000)
    return opened


@pytest.mark.browser
def test_the_map_opens_on_the_park_and_every_marker_opens_its_own_popup(board_site: Path, sample: Any) -> None:
    results, _ = sample
    park = set(densest_cluster(results.facilities, 3.0)["facility_id"])
    with browser_page(board_site / "run", VIEWPORT) as (page, router, log):
        _open_map(page, f"{LOCAL_ORIGIN}/map.html")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "board_map_park.png"))
        in_view = {m["id"] for m in _markers_in_view(page)}
        assert park <= in_view, f"park facilities not in the opening view: {park - in_view}"
        assert set(_click_each_marker(page)) == in_view
        labels = _visible_labels(page)
        assert {label["id"] for label in labels} >= park, "a park facility is not named on the map"
        assert not overlapping(labels), overlapping(labels)
        # the whole region: the two Aalborg Portland units share one site and still get a popup each
        page.locator('.sym-view[data-view="region"]').click()
        page.wait_for_timeout(900)
        in_view = {m["id"] for m in _markers_in_view(page)}
        assert in_view == set(results.facilities["facility_id"])
        assert set(_click_each_marker(page)) == in_view
        assert not overlapping(_visible_labels(page))
        page.screenshot(path=str(ARTIFACTS / "board_map_region.png"))
        assert not log.page_errors and not router.unmapped


@pytest.mark.browser
def test_every_legend_entry_has_a_human_name(board_site: Path) -> None:
    for page_name in ("run/map.html", "compare/differences_map.html"):
        with browser_page(board_site, VIEWPORT) as (page, router, log):
            page.goto(f"{LOCAL_ORIGIN}/{page_name}", wait_until="load")
            page.wait_for_selector(".sym-legend", timeout=20_000)
            entries = [t.strip() for t in page.locator(".sym-legend .sym-legend-entry").all_inner_texts()]
            assert entries, f"{page_name}: no legend entries"
            for text in entries:
                assert re.search(r"[A-Za-z]{3}", text), f"{page_name}: legend entry without a name: {text!r}"
            if page_name.startswith("compare"):
                page.wait_for_timeout(400)
                page.screenshot(path=str(ARTIFACTS / "board_compare_map.png"))
                assert page.locator("path.sym-diff").count() > 0, "the difference map draws no difference"
                assert {"exchange added by the scenario", "exchange the scenario drops"} <= set(entries)
            else:
                assert not any(re.fullmatch(r"\d\d", t) for t in entries)
                assert any(t.startswith("35 Production of electricity") for t in entries), entries
            assert not log.page_errors


@pytest.mark.browser
def test_the_report_opens_with_the_story_and_sankeys_that_read(board_site: Path, sample: Any) -> None:
    results, _ = sample
    with browser_page(board_site / "run", VIEWPORT) as (page, router, log):
        page.goto(f"{LOCAL_ORIGIN}/report.html", wait_until="load")
        page.wait_for_function("document.querySelectorAll('.sym-main .sankey-link').length > 0", timeout=30_000)
        page.wait_for_timeout(800)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "board_report.png"))
        # the story fits the first screen: savings, five exchanges, who gains, what is uncertain, what next
        story = page.locator("#story").bounding_box()
        assert story is not None and story["y"] + story["height"] <= VIEWPORT[1]
        assert page.locator("#story .story-card").count() >= 6  # money, CO2e, landfill, virgin, water, MWh
        sentences = page.locator(".story-exchanges li").all_inner_texts()
        assert len(sentences) == 5
        top = results.exchanges.sort_values("saving", ascending=False).iloc[0]
        names = dict(zip(results.facilities["facility_id"], results.facilities["name"], strict=True))
        assert short_name(names[top["supply_facility"]], 60) in sentences[0]
        assert short_name(names[top["demand_facility"]], 60) in sentences[0]
        assert re.search(r"\d+ of the \d+ flows .* are modelled", page.locator(".story-uncertain").inner_text())
        assert page.locator(".story-next li").count() >= 2
        # the tables are there, closed under their titles
        assert page.locator("details.tables:not([open])").count() >= 5

        figures = page.evaluate(
            """() => Array.from(document.querySelectorAll('.sym-main')).map(f => ({
                widths: Array.from(f.querySelectorAll('.sankey-link')).map(l => l.__data__.link.width),
                labels: Array.from(f.querySelectorAll('.node-label')).filter(t => t.textContent).map(t => {
                    const r = t.getBoundingClientRect();
                    return {text: t.textContent, x: r.x, y: r.y, width: r.width, height: r.height}; }),
                nodes: f.querySelectorAll('.sankey-node').length}))""")
        assert len(figures) == 3  # every exchange; materials and water; heat
        ids = set(results.exchanges["supply_facility"]) | set(results.exchanges["demand_facility"])
        assert figures[0]["nodes"] == len(ids), "one node per facility taking part"
        for figure in figures:
            assert min(figure["widths"]) >= 2.5, f"a hairline exchange: {sorted(figure['widths'])[:3]}"
            assert not overlapping(figure["labels"]), overlapping(figure["labels"])
        page.locator(".sym-main").first.screenshot(path=str(ARTIFACTS / "board_sankey.png"))
        assert not log.page_errors and not router.unmapped


@pytest.mark.browser
def test_the_report_prints_to_a_pdf_with_the_story_and_every_table(board_site: Path, tmp_path: Path) -> None:
    from pypdf import PdfReader

    from symbiosis.outputs.pdf import report_pdf
    from tests.browser_support import OfflineRouter

    run = board_site / "run"
    router = OfflineRouter(root=run)
    path = report_pdf(run, tmp_path / "report.pdf", url=f"{LOCAL_ORIGIN}/report.html", route=router)
    reader = PdfReader(str(path))
    text = "\n".join(page.extract_text() or "" for page in reader.pages)
    assert len(reader.pages) >= 3
    assert "What the network would achieve" in text
    # the collapsed tables are opened for print: the exchanges table and the balances are in the PDF
    assert "Shadow price" in text and "Closure error" in text
    assert not router.unmapped


def test_the_pdf_command_says_what_is_missing(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["pdf", str(tmp_path / "nothing")])
    assert result.exit_code == 1
    assert "report.html not found" in result.output and "Traceback" not in result.output


def test_a_large_region_keeps_the_symbiosis_sankey_small() -> None:
    from symbiosis.outputs.sankey import symbiosis_sankey
    from tests.browser_support import synthetic_pipeline_results

    results = synthetic_pipeline_results(600)[0]
    ids = set(results.exchanges["supply_facility"]) | set(results.exchanges["demand_facility"])
    assert len(ids) > 40
    trace = symbiosis_sankey(results, quantity="all").data[0]
    labels = list(trace.node.label)
    assert len(labels) == 40 and any(label.endswith("other facilities") for label in labels)
    assert min(trace.link.value) >= 1.0  # log widths: the smallest stream of each unit is 1


@pytest.mark.browser
def test_no_sankey_of_the_report_has_overlapping_labels(board_site: Path) -> None:
    with browser_page(board_site / "run", VIEWPORT) as (page, router, log):
        page.goto(f"{LOCAL_ORIGIN}/report.html", wait_until="load")
        page.wait_for_function("document.querySelectorAll('.sym-main .sankey-link').length > 0", timeout=30_000)
        page.locator("#flows-details > summary").click()  # the by-material and balance Sankeys, collapsed at first
        page.wait_for_timeout(1200)
        figures = page.evaluate(
            """() => Array.from(document.querySelectorAll('.sym-sankey')).map(f => ({
                title: (f.querySelector('.gtitle') || {}).textContent || '',
                labels: Array.from(f.querySelectorAll('.node-label')).filter(t => t.textContent).map(t => {
                    const r = t.getBoundingClientRect();
                    return {text: t.textContent, x: r.x, y: r.y, width: r.width, height: r.height}; })}))""")
        assert len(figures) >= 8
        for figure in figures:
            assert figure["labels"], f"no labels drawn in {figure['title']!r}"
            assert not overlapping(figure["labels"]), (figure["title"], overlapping(figure["labels"]))
        assert not log.page_errors
