"""A PDF of the report, printed by Chromium (optional: it needs the playwright package and a Chromium).

``report_pdf(out_dir)`` opens ``out_dir/report.html`` in a headless Chromium (``SYMBIOSIS_CHROMIUM``, else
``/usr/bin/chromium`` or ``chromium`` on the PATH; playwright drives it, ``playwright install`` is never
needed), opens every collapsed table, waits for the map and the flow diagrams to draw, and prints the page
to an A4 PDF with its colours. The PDF is written beside the run's folder by default
(``<out_dir>-report.pdf``), so the folder stays the one set of files its ``manifest.json`` lists.
Without playwright or Chromium a :class:`~symbiosis.errors.SymbiosisError` says what to install.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from symbiosis.atomic import write_atomic
from symbiosis.errors import SymbiosisError

logger = logging.getLogger(__name__)

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]


def chromium_path() -> Path:
    """The Chromium to print with; raises SymbiosisError naming what to install when there is none."""
    configured = os.environ.get("SYMBIOSIS_CHROMIUM")
    for candidate in ([configured] if configured else []) + ["/usr/bin/chromium", "chromium", "chromium-browser"]:
        found = shutil.which(candidate) or (candidate if Path(candidate).is_file() else None)
        if found:
            return Path(found)
    raise SymbiosisError("no Chromium found to print the PDF: install it (Debian: apt-get install chromium) or "
                         "set SYMBIOSIS_CHROMIUM to its path")


def default_target(out_dir: Path) -> Path:
    """Where the PDF goes unless told: beside the output folder, ``<folder>-report.pdf``."""
    out_dir = Path(out_dir).resolve()
    return out_dir.with_name(f"{out_dir.name}-report.pdf")


def report_pdf(out_dir: str | os.PathLike[str], target: str | os.PathLike[str] | None = None, *,
               url: str | None = None, route: Callable[[Any], None] | None = None,
               timeout_s: float = 60.0) -> Path:
    """Print ``out_dir/report.html`` to an A4 PDF at ``target`` (default :func:`default_target`) and return it.

    ``url`` and ``route`` (a Playwright route handler) let a test serve the page from elsewhere; by default the
    file is opened directly.
    """
    folder = Path(out_dir)
    report = folder / "report.html"
    if not report.is_file():
        raise SymbiosisError(f"{report} not found: write it first with `symbiosis run REGION --out {folder}`")
    try:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise SymbiosisError("printing the PDF needs the playwright package: pip install playwright "
                             "(it drives the system Chromium; `playwright install` is not needed)") from None
    executable = chromium_path()
    out = Path(target) if target is not None else default_target(folder)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(executable), args=CHROMIUM_ARGS)
            try:
                context = browser.new_context(viewport={"width": 1400, "height": 1000})
                if route is not None:
                    context.route("**/*", route)
                page = context.new_page()
                page.goto(url or report.resolve().as_uri(), wait_until="load", timeout=timeout_s * 1000)
                page.evaluate("document.querySelectorAll('details').forEach(function (d) { d.open = true; })")
                # the Sankeys and the map draw after load; give them a moment, then print
                page.wait_for_timeout(1500)
                page.emulate_media(media="print")
                data = page.pdf(format="A4", print_background=True,
                                margin={"top": "12mm", "bottom": "12mm", "left": "10mm", "right": "10mm"})
            finally:
                browser.close()
    except PlaywrightError as exc:
        raise SymbiosisError(f"Chromium could not print {report}: {exc}") from None
    written = write_atomic(out, lambda tmp: tmp.write_bytes(data))
    logger.info("report PDF written to %s (%.0f kB)", written, len(data) / 1024)
    return written
