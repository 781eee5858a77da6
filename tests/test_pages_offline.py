"""Pages opened with no network: they say why they are empty, and the self-contained ones still work.

The browser is tests/browser_support.py's, with ``network=False``: every request that is not for our own
files is aborted, as on a machine offline. With the network "on" (CDN assets served from the npm cache) the
same pages must show no notice.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from symbiosis.outputs.mapping import OFFLINE_NOTICE_ID, save_map
from symbiosis.outputs.offline import NotSelfContained, inline_assets
from symbiosis.outputs.report import PLOTLY_NOTICE_ID, write_report
from symbiosis.partners import find_partners, partners_map
from symbiosis.pipeline import optimise
from tests.browser_support import ARTIFACTS, LOCAL_ORIGIN, TILE_HOSTS, browser_page, require_browser
from tests.conftest import TINY, load_test_region

#: page -> (notice id, what it needs) for the pages that load their scripts from CDNs.
CDN_PAGES = {
    "cdn/map.html": OFFLINE_NOTICE_ID,
    "cdn/report.html": PLOTLY_NOTICE_ID,
    "partners/partners_map.html": OFFLINE_NOTICE_ID,
}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """(root, number of facilities) with the tiny region's pages, from CDNs and self-contained."""
    region = load_test_region(TINY)
    results = optimise(region)
    root = tmp_path_factory.mktemp("offline")
    write_report(results, root / "cdn", region=region)
    write_report(results, root / "self_contained", region=region, self_contained=True)
    save_map(results, root / "self_contained" / "map.html", self_contained=True)
    search = find_partners(region, "power_gypsum")
    (root / "partners").mkdir()
    partners_map(search, region, str(root / "partners" / "partners_map.html"))
    return root, len(results.facilities)


def test_a_self_contained_map_asks_the_network_for_no_script_or_style(site: tuple[Path, int]) -> None:
    root, _ = site
    for page in ("self_contained/map.html", "self_contained/report.html"):
        text = (root / page).read_text(encoding="utf-8")
        assert not re.search(r"<script[^>]+src=", text), f"{page} loads a script"
        assert not re.search(r"<link[^>]+stylesheet", text), f"{page} loads a style sheet"
        assert not re.search(r"&lt;script[^&]+src=", text), f"{page}: its map (srcdoc) loads a script"
    assert 'window.L=t' in (root / "self_contained" / "map.html").read_text(encoding="utf-8")


def test_a_cdn_with_no_local_copy_is_refused_by_name() -> None:
    page = '<head><script src="https://cdn.example.org/lib@1.0/lib.js"></script></head>'
    with pytest.raises(NotSelfContained, match="cdn.example.org/lib@1.0/lib.js"):
        inline_assets(page)


def _notice(page: Any, notice_id: str) -> Any:
    return page.locator(f"#{notice_id}")


@pytest.mark.browser
@pytest.mark.parametrize("page_name", sorted(CDN_PAGES))
def test_with_no_network_the_page_says_what_it_needs(site: tuple[Path, int], page_name: str) -> None:
    require_browser()
    root, _ = site
    notice_id = CDN_PAGES[page_name]
    with browser_page(root, network=False) as (page, router, _log):
        page.goto(f"{LOCAL_ORIGIN}/{page_name}", wait_until="load")
        notice = _notice(page, notice_id)
        notice.wait_for(state="visible", timeout=10_000)
        text = notice.inner_text()
        box = notice.bounding_box()
        frame_notice = None
        if page_name.endswith("report.html"):
            frame_notice = page.frame_locator("iframe.map").locator(f"#{OFFLINE_NOTICE_ID}")
            frame_notice.wait_for(state="visible", timeout=10_000)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"offline-{page_name.replace('/', '-')}.png"))
    assert router.blocked, "the page asked the network for nothing: this test proves nothing"
    assert box is not None and box["height"] > 20 and box["width"] > 200
    assert "internet" in text and "did not load" in text, text
    if page_name.endswith("report.html"):
        assert "cdn.plot.ly" in text and "--self-contained" in text
    elif page_name == "cdn/map.html":
        assert "cdn.jsdelivr.net" in text and "--self-contained" in text
    else:  # the partner map has no self-contained variant: it must not offer one
        assert "cdn.jsdelivr.net" in text and "--self-contained" not in text


@pytest.mark.browser
@pytest.mark.parametrize("page_name", sorted(CDN_PAGES))
def test_with_the_scripts_loaded_no_notice_shows(site: tuple[Path, int], page_name: str) -> None:
    require_browser()
    root, _ = site
    with browser_page(root) as (page, router, log):
        page.goto(f"{LOCAL_ORIGIN}/{page_name}", wait_until="load")
        if page_name.endswith("report.html"):
            page.wait_for_selector(".js-plotly-plot .main-svg", state="attached", timeout=20_000)
            in_frame = page.frame_locator("iframe.map")
            in_frame.locator(".sym-facility").first.wait_for(state="attached", timeout=20_000)
            assert in_frame.locator(f"#{OFFLINE_NOTICE_ID}").count() == 0
        else:
            page.wait_for_selector(".leaflet-container", state="attached", timeout=20_000)
        notices = page.locator(f"#{CDN_PAGES[page_name]}").count()
        tile_notes = page.locator(".sym-tile-notice").count()
    assert notices == 0, f"{page_name}: the offline notice shows although the scripts loaded"
    assert tile_notes == 0, f"{page_name}: the tile note shows although the tiles loaded"
    assert not router.unmapped and not log.page_errors, (router.unmapped, log.page_errors)


@pytest.mark.browser
def test_a_self_contained_report_draws_its_sankeys_and_map_with_no_network(site: tuple[Path, int]) -> None:
    require_browser()
    root, n_facilities = site
    with browser_page(root, network=False) as (page, router, log):
        page.goto(f"{LOCAL_ORIGIN}/self_contained/report.html", wait_until="load")
        page.wait_for_selector(".js-plotly-plot .main-svg", state="attached", timeout=20_000)
        in_frame = page.frame_locator("iframe.map")
        in_frame.locator(".leaflet-container").wait_for(state="attached", timeout=20_000)
        in_frame.locator(".sym-tile-notice").wait_for(state="visible", timeout=10_000)
        markers = in_frame.locator(".sym-facility").count()
        map_notice = in_frame.locator(f"#{OFFLINE_NOTICE_ID}").count()
        plotly_notice = page.locator(f"#{PLOTLY_NOTICE_ID}").count()
        tile_note = in_frame.locator(".sym-tile-notice").inner_text()
        sankeys = page.locator(".js-plotly-plot .sankey").count()
        page.screenshot(path=str(ARTIFACTS / "offline-self-contained-report.png"), full_page=False)
    assert markers == n_facilities
    assert sankeys >= 2
    assert map_notice == 0 and plotly_notice == 0
    assert "tiles" in tile_note and "internet" in tile_note
    # The only requests that left the page were for tiles.
    assert router.blocked and all(TILE_HOSTS.search(u.split("/")[2]) for u in router.blocked), router.blocked
    assert not log.page_errors, log.page_errors


@pytest.mark.browser
def test_a_self_contained_map_draws_with_no_network(site: tuple[Path, int]) -> None:
    require_browser()
    root, n_facilities = site
    with browser_page(root, network=False) as (page, router, log):
        page.goto(f"{LOCAL_ORIGIN}/self_contained/map.html", wait_until="load")
        page.wait_for_selector(".sym-facility", state="attached", timeout=20_000)
        page.locator(".sym-tile-notice").wait_for(state="visible", timeout=10_000)
        markers = page.locator(".sym-facility").count()
        legend = page.locator(".sym-legend").count()
        notice = page.locator(f"#{OFFLINE_NOTICE_ID}").count()
    assert markers == n_facilities and legend == 1 and notice == 0
    assert all(TILE_HOSTS.search(u.split("/")[2]) for u in router.blocked), router.blocked
    assert not log.page_errors, log.page_errors
