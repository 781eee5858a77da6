"""What a person sees: the map and the report in a real (headless, offline) Chromium.

Every request is routed by tests/browser_support.py: our files from a fake origin, CDN scripts and styles
from the npm packages that .ci/install-browser-assets.sh installs, blank tiles; a CDN URL with no local copy
fails the test by name. Screenshots go to tests/artifacts/. Without Chromium or the asset cache these tests
skip, or fail when the CI variable is set.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from symbiosis.outputs.export import exchange_material_groups, write_results
from symbiosis.outputs.mapping import save_map
from symbiosis.outputs.report import format_kpi, kpi_decimals, write_report
from symbiosis.results import Results
from tests.browser_support import (
    ARTIFACTS,
    LOCAL_ORIGIN,
    OfflineRouter,
    PageLog,
    browser_page,
    most_connected,
    optimised_with,
    require_browser,
    synthetic_pipeline_results,
)

pytestmark = pytest.mark.browser

HOSTILE = "<script>alert(1)</script>"
# Also breaks out of a JS template literal if one were used: `${...}`, a backtick and a backslash.
HOSTILE_TAIL = " ${alert(2)}`\\"
#: A generated region through the real pipeline, above the clustering threshold (200 facilities); the same
#: size as in test_outputs_map.py, so one test process generates and optimises it once.
BIG_REGION_FACILITIES = 600


@pytest.fixture(scope="module", autouse=True)
def _browser_available() -> None:
    require_browser()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, sample: tuple[Results, Any]) -> tuple[Path, Results, str]:
    """Outputs of Kalundborg optimised with its most connected facility given a hostile name."""
    base, region = sample
    fid = most_connected(base)
    results, hostile_region = optimised_with(region, fid, name=HOSTILE + HOSTILE_TAIL)
    root = tmp_path_factory.mktemp("site")
    write_results(results, root)
    write_report(results, root, region=hostile_region)
    return root, results, fid


def assert_clean(router: OfflineRouter, log: PageLog) -> None:
    assert not router.unmapped, "requests with no local copy (add them to the asset map):\n" + "\n".join(
        router.unmapped)
    assert not log.page_errors, f"script errors on the page: {log.page_errors}"
    assert not log.console_errors, f"console errors: {log.console_errors}"
    assert not log.dialogs, f"a dialog fired (injected script ran?): {log.dialogs}"


def open_map(page: Any, url: str, n_facilities: int, clustered: bool = False) -> None:
    page.goto(url, wait_until="load")
    selector = ".marker-cluster, .sym-facility" if clustered else ".sym-facility"
    page.wait_for_selector(selector, state="attached", timeout=20_000)
    if not clustered:
        page.wait_for_function(f"document.querySelectorAll('.sym-facility').length >= {n_facilities}",
                               timeout=20_000)


def test_map_shows_every_exchange_and_facility(site: tuple[Path, Results, str]) -> None:
    root, results, _ = site
    with browser_page(root) as (page, router, log):
        open_map(page, f"{LOCAL_ORIGIN}/map.html", len(results.facilities))
        assert page.locator(".leaflet-marker-icon.sym-facility").count() == len(results.facilities)
        assert page.locator("path.sym-exchange").count() == len(results.exchanges)
        assert page.locator(".leaflet-marker-icon.sym-arrow").count() == int(
            (results.exchanges["supply_facility"] != results.exchanges["demand_facility"]).sum())
        drawn = page.eval_on_selector_all(
            "path.sym-exchange",
            "els => els.map(e => [e.getAttribute('stroke-dasharray') !== null,"
            " parseFloat(e.getAttribute('data-t-per-yr') ?? e.getAttribute('data-mwh-per-yr')),"
            " parseFloat(e.getAttribute('stroke-width'))])")
        # Heat paths (dashed, class sym-heat) carry MWh/yr and no tonnes; material paths t/yr.
        units = page.eval_on_selector_all(
            "path.sym-exchange",
            "els => els.map(e => [e.classList.contains('sym-heat'), e.getAttribute('data-unit'),"
            " e.hasAttribute('data-t-per-yr'), e.hasAttribute('data-mwh-per-yr')])")
        assert {tuple(u) for u in units if u[0]} == {(True, "MWh/yr", False, True)}
        assert {tuple(u) for u in units if not u[0]} == {(False, "t/yr", True, False)}
        heat_mwh = page.eval_on_selector_all(
            "path.sym-heat", "els => els.map(e => parseFloat(e.getAttribute('data-mwh-per-yr')))")
        energy = results.exchanges["quantity"] == "energy"
        assert sorted(heat_mwh) == pytest.approx(sorted(results.exchanges.loc[energy, "amount_mwh_per_yr"]
                                                        .astype(float).round(3)), abs=1e-3)
        # Heat lines (dashed) scale among themselves in MWh, material lines in t (docs/outputs.md).
        for dashed in {d for d, _, _ in drawn}:
            pairs = sorted((amount, width) for d, amount, width in drawn if d == dashed)
            widths = [w for _, w in pairs]
            assert widths == sorted(widths), f"line widths not monotone in their amount: {pairs}"
            assert max(widths) == pytest.approx(12.0) and min(widths) >= 2.0
        overlays = page.locator(".leaflet-control-layers-overlays label").all_inner_texts()
        from symbiosis.outputs.mapping import HEAT_GROUP

        # heat exchanges (material class energy) have their own layer, named with their unit
        for group in sorted({HEAT_GROUP if g == "energy" else g for g in exchange_material_groups(results)}):
            assert any(text.strip().startswith(f"Exchanges: {group} (") for text in overlays), (group, overlays)
        assert page.locator(".sym-legend").count() == 1
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "map.png"))
        assert router.tiles, "the map asked for no tiles"
        assert_clean(router, log)


def test_hostile_facility_name_shows_as_text(site: tuple[Path, Results, str]) -> None:
    root, results, fid = site
    with browser_page(root) as (page, router, log):
        open_map(page, f"{LOCAL_ORIGIN}/map.html", len(results.facilities))
        marker = page.locator(f'.sym-facility:has(.sym-dot[data-facility-id="{fid}"])')
        assert marker.count() == 1
        marker.dispatch_event("click")  # the marker itself, even where neighbours overlap it
        popup = page.locator(".leaflet-popup-content")
        popup.wait_for(timeout=5_000)
        assert popup.locator("b").first.inner_text() == HOSTILE + HOSTILE_TAIL
        assert page.locator(".leaflet-popup-content script").count() == 0
        page.locator("path.sym-exchange").first.hover(force=True)
        page.wait_for_timeout(200)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "map_popup.png"))
        assert_clean(router, log)


def test_report_shows_the_kpis_of_kpis_json(site: tuple[Path, Results, str]) -> None:
    root, results, _ = site
    kpis = json.loads((root / "kpis.json").read_text(encoding="utf-8"))
    with browser_page(root, viewport=(1280, 900)) as (page, router, log):
        page.goto(f"{LOCAL_ORIGIN}/report.html", wait_until="load")
        n_sankeys = page.locator(".sym-sankey").count()
        page.wait_for_function(
            f"document.querySelectorAll('.js-plotly-plot .sankey-node').length > 0 && "
            f"document.querySelectorAll('.js-plotly-plot').length == {n_sankeys}", timeout=30_000)
        shown = page.eval_on_selector_all("[data-kpi]", "els => els.map(e => [e.dataset.kpi, e.textContent.trim()])")
        assert {key for key, _ in shown} >= {"net_cost_saving", "co2e_avoided_t", "cost_bau", "cost_optimum",
                                             "waste_diverted_t", "virgin_avoided_t", "n_exchanges"}
        for key, text in shown:
            value = kpis[key]
            assert text == format_kpi(value)
            if isinstance(value, (int, float)):
                assert float(text.replace(",", "")) == round(value, kpi_decimals(value)), key
        assert page.locator(".exchange-row").count() == len(results.exchanges)
        # the tables are collapsed under the summary: a reader opens one by its title
        assert HOSTILE + HOSTILE_TAIL not in page.locator("#gains").inner_text()
        page.locator("#gains-details > summary").click()
        assert HOSTILE + HOSTILE_TAIL in page.locator("#gains").inner_text()
        frame = page.frame_locator("iframe.map")
        frame.locator(".sym-facility").first.wait_for(state="attached", timeout=20_000)
        assert frame.locator("path.sym-exchange").count() == len(results.exchanges)
        page.wait_for_timeout(300)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
        assert any("cdn.plot.ly" in url for url in router.served)
        assert_clean(router, log)


def test_self_contained_report_needs_no_plotly_cdn(site: tuple[Path, Results, str], tmp_path: Path) -> None:
    _, results, _ = site
    write_report(results, tmp_path, self_contained=True)
    with browser_page(tmp_path) as (page, router, log):
        page.goto(f"{LOCAL_ORIGIN}/report.html", wait_until="load")
        page.wait_for_selector(".js-plotly-plot .sankey-node", state="attached", timeout=30_000)
        page.frame_locator("iframe.map").locator(".sym-facility").first.wait_for(state="attached", timeout=20_000)
        assert not any("cdn.plot.ly" in url for url in router.served + router.unmapped)
        assert_clean(router, log)


@pytest.mark.slow
def test_many_facilities_are_clustered(tmp_path: Path) -> None:
    big = synthetic_pipeline_results(BIG_REGION_FACILITIES)[0]
    path = save_map(big, tmp_path / "map.html")
    assert path.stat().st_size < 600 * len(big.facilities) + 1_000 * len(big.exchanges) + 100_000
    with browser_page(tmp_path) as (page, router, log):
        open_map(page, f"{LOCAL_ORIGIN}/map.html", len(big.facilities), clustered=True)
        page.wait_for_selector(".marker-cluster", timeout=20_000)
        assert page.locator("path.sym-exchange").count() == len(big.exchanges)
        visible_markers = page.locator(".leaflet-marker-icon.sym-facility").count()
        clusters = page.locator(".marker-cluster").count()
        assert clusters > 0 and visible_markers < len(big.facilities)
        counts = [int(t) for t in page.locator(".marker-cluster span").all_inner_texts() if re.fullmatch(r"\d+", t)]
        assert sum(counts) + visible_markers == len(big.facilities)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "map_clustered.png"))
        assert_clean(router, log)


@pytest.mark.slow
def test_large_maps_draw_on_a_canvas_without_arrows(tmp_path: Path) -> None:
    # The thresholds are lowered so that the 600-facility region takes the path a 10,000-facility one takes.
    big = synthetic_pipeline_results(BIG_REGION_FACILITIES)[0]
    save_map(big, tmp_path / "map.html", max_arrows=0, canvas_from=1)
    with browser_page(tmp_path) as (page, router, log):
        open_map(page, f"{LOCAL_ORIGIN}/map.html", len(big.facilities), clustered=True)
        page.wait_for_selector("canvas.leaflet-zoom-animated", state="attached", timeout=20_000)
        assert page.locator("path.sym-exchange").count() == 0  # no SVG paths: they are on the canvas
        assert page.locator(".sym-arrow").count() == 0
        page.mouse.move(640, 400)
        page.mouse.wheel(0, -300)  # zooming redraws the canvas without error
        page.wait_for_timeout(500)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "map_canvas.png"))
        assert_clean(router, log)
