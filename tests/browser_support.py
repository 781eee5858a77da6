"""Helpers for the output tests: Results to draw, and a browser that never leaves the machine.

Everything drawn comes from the real pipeline: ``sample_results()`` is the shipped Kalundborg region through
``load_region`` and ``optimise`` (and fails loudly if that does not run), ``optimised_with()`` optimises a copy
of a real region with one facility edited (a hostile name, a confidential flag), and
``synthetic_pipeline_results(n)`` is a region from ``symbiosis.synthetic.generate_region`` through the same
pipeline, for the clustering and file-size checks.

The browser side: ``browser_page()`` starts the system Chromium through Playwright with every request
routed by :class:`OfflineRouter`. Our own files are served from a fake origin (``http://symbiosis.test/``),
CDN URLs that folium and plotly emit are mapped onto the npm packages that
``.ci/install-browser-assets.sh`` installs into the asset cache, map tiles get a blank grey PNG, and every
other request is answered empty and recorded, so the test can fail naming the URL it could not map.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import mimetypes
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from symbiosis.inputs import load_region
from symbiosis.pipeline import optimise
from symbiosis.region import Region
from symbiosis.results import Results
from symbiosis.synthetic import generate_region

REPO = Path(__file__).resolve().parents[1]
KALUNDBORG = REPO / "data" / "regions" / "kalundborg"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM = Path(os.environ.get("SYMBIOSIS_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]
LOCAL_ORIGIN = "http://symbiosis.test"


def asset_dir() -> Path:
    """Where ``.ci/install-browser-assets.sh`` put the npm packages (env ``SYMBIOSIS_BROWSER_ASSETS``)."""
    return Path(os.environ.get("SYMBIOSIS_BROWSER_ASSETS", REPO / ".cache" / "browser-assets"))


# --------------------------------------------------------------------------------------------------
# Results to draw: always the real pipeline (load_region + optimise), never a stand-in
# --------------------------------------------------------------------------------------------------


def sample_results() -> tuple[Results, Region]:
    """(Results, Region) of the shipped Kalundborg region through the real pipeline; any failure is raised."""
    region = load_region(KALUNDBORG)
    return optimise(region), region


def most_connected(results: Results) -> str:
    """Id of the facility with the most exchanges (the first such one in the facilities table)."""
    facilities = results.facilities
    return str(facilities.at[facilities["n_exchanges"].idxmax(), "facility_id"])


def optimised_with(region: Region, facility_id: str, **columns: Any) -> tuple[Results, Region]:
    """Optimise a copy of ``region`` whose facility ``facility_id`` has ``columns`` set (``name=``, ...)."""
    edited = region.copy()
    row = edited.facilities["facility_id"] == facility_id
    assert row.sum() == 1, f"{facility_id!r} is not one facility of {region.name}"
    for column, value in columns.items():
        edited.facilities.loc[row, column] = value
    return optimise(edited), edited


@functools.cache
def synthetic_pipeline_results(n_facilities: int, seed: int = 1) -> tuple[Results, Region]:
    """A region from ``symbiosis.synthetic.generate_region`` through ``load_region`` and ``optimise``.

    Cached for the test process (a 1,000-facility region takes a few seconds): callers must not modify the
    objects. The generated files are removed once loaded.
    """
    with tempfile.TemporaryDirectory(prefix="symbiosis-synthetic-") as tmp:
        region = load_region(generate_region(n_facilities, Path(tmp) / "region", seed=seed))
    return optimise(region), region


# --------------------------------------------------------------------------------------------------
# the offline browser
# --------------------------------------------------------------------------------------------------

#: cdnjs library name -> (npm package, folder inside it that mirrors the cdnjs layout).
CDNJS_PACKAGES = {
    "Leaflet.awesome-markers": ("leaflet.awesome-markers", "dist"),
    "leaflet.markercluster": ("leaflet.markercluster", "dist"),
}

# 1x1 light-grey PNG: a blank tile so the map looks like a map without fetching OpenStreetMap.
BLANK_TILE = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGN48eIFAAV0ArnZwsdlAAAAAElFTkSuQmCC"
)
TILE_HOSTS = re.compile(r"(^|\.)tile\.openstreetmap\.org$|(^|\.)basemaps\.cartocdn\.com$|(^|\.)tile\.")


class UnmappedAsset(Exception):
    """A CDN URL that has no local copy."""


def _installed_version(package: str) -> str | None:
    manifest = asset_dir() / "node_modules" / package / "package.json"
    if not manifest.exists():
        return None
    return str(json.loads(manifest.read_text(encoding="utf-8"))["version"])


def _package_file(package: str, version: str | None, rel: str, exact: bool = True) -> Path:
    installed = _installed_version(package)
    if installed is None:
        raise UnmappedAsset(f"npm package {package} is not in {asset_dir()} (run .ci/install-browser-assets.sh)")
    if exact and version is not None and installed != version:
        raise UnmappedAsset(f"{package}@{version} wanted, {installed} installed (update the install script)")
    path = asset_dir() / "node_modules" / package / rel
    if not path.is_file():
        raise UnmappedAsset(f"{rel} not in npm package {package}@{installed}")
    return path


def _glyphicons_css() -> bytes:
    """The glyphicon rules of Bootstrap 3 (what netdna's ``bootstrap-glyphicons.css`` carried), fonts included.

    npm has no ``bootstrap@3.0.0`` and no package with that CDN-only file; Bootstrap 3.4.1's ``bootstrap.css``
    holds the same ``@font-face`` and ``.glyphicon*`` rules, which we cut out, so no Bootstrap 3 layout rule
    leaks into folium's Bootstrap 5 page.
    """
    css = _package_file("bootstrap3", None, "dist/css/bootstrap.css").read_text(encoding="utf-8")
    rules = re.findall(r"(?ms)^(@font-face \{.*?^\}|\.glyphicon[^{]*\{.*?^\})", css)
    if not rules:
        raise UnmappedAsset("no glyphicon rules found in bootstrap3/dist/css/bootstrap.css")
    return "\n".join(rules).encode("utf-8")


def _awesome_rotate_css() -> bytes:
    """folium's ``leaflet.awesome.rotate.min.css`` (not on npm): one ``.fa-rotate-N`` rule per degree."""
    return "".join(
        f".fa-rotate-{n}{{-ms-transform:rotate({n}deg);-webkit-transform:rotate({n}deg);transform:rotate({n}deg)}}"
        for n in range(1, 360)
    ).encode("ascii")


def local_asset(url: str) -> tuple[bytes | Path, str]:
    """Local body (a file or bytes) and content type for a CDN URL; raises :class:`UnmappedAsset`."""
    parsed = urlparse(url)
    host, path = parsed.netloc.lower(), parsed.path
    found: bytes | Path
    if host == "cdn.jsdelivr.net" and path.startswith("/npm/"):
        m = re.match(r"/npm/((?:@[^/]+/)?[^/@]+)@([^/]+)/(.+)", path)
        if not m:
            raise UnmappedAsset(url)
        package, version, rel = m.groups()
        found = _package_file(package, version, rel)
    elif host == "cdn.jsdelivr.net" and path.endswith("/folium/templates/leaflet.awesome.rotate.min.css"):
        found = _awesome_rotate_css()
    elif host == "code.jquery.com":
        m = re.match(r"/jquery-(\d+\.\d+\.\d+)(\.min)?\.js$", path)
        if not m:
            raise UnmappedAsset(url)
        found = _package_file("jquery", m.group(1), f"dist/jquery{m.group(2) or ''}.js")
    elif host == "cdnjs.cloudflare.com" and path.startswith("/ajax/libs/"):
        m = re.match(r"/ajax/libs/([^/]+)/([^/]+)/(.+)", path)
        if not m or m.group(1) not in CDNJS_PACKAGES:
            raise UnmappedAsset(url)
        package, folder = CDNJS_PACKAGES[m.group(1)]
        # npm's leaflet.awesome-markers has no 2.0.2; its 2.0.5 ships the same dist files (see the script).
        exact = m.group(1) != "Leaflet.awesome-markers"
        found = _package_file(package, m.group(2), f"{folder}/{m.group(3)}", exact=exact)
    elif host == "netdna.bootstrapcdn.com" and path == "/bootstrap/3.0.0/css/bootstrap-glyphicons.css":
        found = _glyphicons_css()
    elif host == "netdna.bootstrapcdn.com" and path.startswith("/bootstrap/3.0.0/fonts/"):
        found = _package_file("bootstrap3", None, "dist/fonts/" + path.rsplit("/", 1)[1])
    elif host == "cdn.plot.ly":
        m = re.match(r"/plotly-(\d+\.\d+\.\d+)\.min\.js$", path)
        if not m:
            raise UnmappedAsset(url)
        found = _package_file("plotly.js-dist-min", m.group(1), "plotly.min.js")
    else:
        raise UnmappedAsset(url)
    ctype = mimetypes.guess_type(path)[0] or "application/octet-stream"
    if path.endswith(".js"):
        ctype = "application/javascript"
    return found, ctype


@dataclass
class OfflineRouter:
    """Playwright route handler: our files from ``root``, CDN assets from the npm cache, nothing else."""

    root: Path
    served: list[str] = field(default_factory=list)
    tiles: list[str] = field(default_factory=list)
    unmapped: list[str] = field(default_factory=list)
    #: With ``network=False`` every request that is not for our own files is aborted (a machine offline).
    network: bool = True
    blocked: list[str] = field(default_factory=list)

    def __call__(self, route: Any) -> None:
        url = route.request.url
        parsed = urlparse(url)
        if url == LOCAL_ORIGIN + "/favicon.ico":
            route.fulfill(status=204, body="")
            return
        if url.startswith(LOCAL_ORIGIN + "/"):
            local = (self.root / parsed.path.lstrip("/")).resolve()
            if local.is_file() and self.root.resolve() in local.parents:
                ctype = mimetypes.guess_type(local.name)[0] or "application/octet-stream"
                route.fulfill(status=200, path=str(local), content_type=ctype)
                self.served.append(url)
                return
            self.unmapped.append(f"{url} (not in {self.root})")
            route.fulfill(status=404, body="")
            return
        if parsed.scheme in ("data", "blob", "about"):
            route.continue_()
            return
        if not self.network:
            self.blocked.append(url)
            route.abort("internetdisconnected")
            return
        if TILE_HOSTS.search(parsed.netloc.lower()):
            self.tiles.append(url)
            route.fulfill(status=200, body=BLANK_TILE, content_type="image/png")
            return
        try:
            body, ctype = local_asset(url)
        except UnmappedAsset as exc:
            self.unmapped.append(f"{url} ({exc})")
            route.fulfill(status=204, body="")
            return
        self.served.append(url)
        headers = {"Access-Control-Allow-Origin": "*"}
        if isinstance(body, Path):
            route.fulfill(status=200, path=str(body), content_type=ctype, headers=headers)
        else:
            route.fulfill(status=200, body=body, content_type=ctype, headers=headers)


def browser_unavailable_reason() -> str | None:
    """Why the browser tests cannot run here, or None."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright Python package is not installed"
    if not (CHROMIUM.exists() or shutil.which(str(CHROMIUM))):
        return f"{CHROMIUM} not found (apt-get install chromium, or set SYMBIOSIS_CHROMIUM)"
    if _installed_version("leaflet") is None:
        return f"browser assets missing in {asset_dir()}: run .ci/install-browser-assets.sh"
    return None


def require_browser() -> None:
    """Fail under CI (env ``CI`` set), skip elsewhere, when Chromium or the asset cache is missing."""
    reason = browser_unavailable_reason()
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"browser tests cannot run: {reason}", pytrace=False)
    pytest.skip(f"browser tests skipped: {reason}")


@dataclass
class PageLog:
    """What the page reported while it ran."""

    page_errors: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)


@contextlib.contextmanager
def browser_page(root: Path, viewport: tuple[int, int] = (1280, 860), *, network: bool = True,
                 init_script: str | None = None) -> Iterator[tuple[Any, OfflineRouter, PageLog]]:
    """An offline Chromium page whose requests go through :class:`OfflineRouter` rooted at ``root``.

    ``network=False`` plays a machine with no network: CDN scripts, styles and tiles are refused, not
    served from the asset cache. ``init_script`` runs in every frame before the page's own scripts.
    """
    from playwright.sync_api import sync_playwright

    router = OfflineRouter(root=root, network=network)
    log = PageLog()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
            context.route("**/*", router)
            if init_script is not None:
                context.add_init_script(init_script)
            page = context.new_page()
            page.on("pageerror", lambda exc: log.page_errors.append(str(exc)))
            page.on("console", lambda msg: log.console_errors.append(msg.text) if msg.type == "error" else None)

            def on_dialog(dialog: Any) -> None:
                log.dialogs.append(f"{dialog.type}: {dialog.message}")
                dialog.dismiss()

            page.on("dialog", on_dialog)
            yield page, router, log
        finally:
            browser.close()
