"""Every HTML page symbiosis writes, built from a region whose every text field is hostile.

The tiny test region is copied with each text field (facility names and ids, flow ids, sources and notes,
material, substitution and fate ids and names of a region materials table, region name, description and
source citations, scenario names and descriptions) carrying script-injection payloads, then every command
that writes HTML runs through the CLI in this process: ``run`` (``map.html``, ``report.html``), ``run
--self-contained``, ``compare`` (``comparison.html``, ``differences_map.html``) and ``partners``
(``partners_map.html``). ``tradeoff`` and ``resilience`` write no HTML.

Two regions: ``all`` puts every payload into each field; ``quiet`` only the payloads that run without
breaking the syntax around them (``${...}`` in a template literal, an ``<img onerror>`` in HTML), which is
how an attack would really look: with ``all``, a backquote or ``</script>`` in the same string would turn
the attack into a syntax error. The fast test reads the files; the browser tests open each one in Chromium.
Sector codes are not free text (NACE codes, validated), so they carry no payload.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from symbiosis.cli import app
from tests.browser_support import LOCAL_ORIGIN, browser_page, require_browser
from tests.conftest import TEST_DATA, TEST_MODELS, TINY

PAYLOADS = [
    "${alert(document.domain)}",
    "</script><script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    '"><svg onload=alert(1)>',
    "'-alert(1)-'",
    "javascript:alert(1)",
    "{{7*7}}",
    '<a href="javascript:alert(1)">x</a>',
    "\u2028",
    "`backtick`",
    # Not in a browser but where the page is written: folium renders its scripts twice through Jinja.
    "{% raw %}{# x",
]
#: Payloads that run without breaking the syntax around them when a context is not escaped.
QUIET = ["${alert(document.domain)}", "<img src=x onerror=alert(1)>", "{{7*7}}"]
VARIANTS = {"all": PAYLOADS, "quiet": QUIET}
#: What each command writes, relative to the output root.
PAGES = ["run/map.html", "run/report.html", "self_contained/map.html", "self_contained/report.html",
         "compare/comparison.html", "compare/differences_map.html", "partners/partners_map.html"]
#: Must never appear in a page as they are: each would be markup or script if it did.
RAW_MARKUP = ["<img src=x", "<svg onload", "<script>alert(1)", '<a href="javascript:']
#: Text of the payloads that must not be left outside a JSON string inside a <script> element.
SCRIPT_MARKERS = ["alert(document.domain)", "alert(1)", "7*7", "backtick"]

HOOK = """
(function () {
  window.__symbiosis_calls = [];
  ['alert', 'confirm', 'prompt', 'print'].forEach(function (name) {
    window[name] = function (message) {
      var call = name + ': ' + message;
      window.__symbiosis_calls.push(call);
      try { if (window.top !== window) { window.top.__symbiosis_calls.push(call); } } catch (e) {}
      return null;
    };
  });
})();
"""


def hostile_text(payloads: list[str]) -> str:
    return " ".join(payloads)


def hostile_id(payloads: list[str]) -> str:
    """The payloads as an id tail: no line separator (ids refuse control and invisible characters)."""
    return "".join(p for p in payloads if p != "\u2028")


def hostile_region(target: Path, payloads: list[str]) -> Path:
    """A copy of the tiny region at ``target`` with a hostile value in every text field."""
    text, tail = hostile_text(payloads), hostile_id(payloads)
    shutil.copytree(TINY, target)
    tables = {name: pd.read_csv(target / f"{name}.csv", dtype=str, keep_default_na=False)
              for name in ("facilities", "flows", "quality")}
    facilities, flows, quality = tables["facilities"], tables["flows"], tables["quality"]
    facility_ids = {f: f + tail for f in facilities["facility_id"]}
    flow_ids = {f: f + tail for f in flows["flow_id"]}
    facilities["facility_id"] = facilities["facility_id"].map(facility_ids)
    facilities["name"] = facilities["name"] + " " + text
    flows["facility_id"] = flows["facility_id"].map(facility_ids)
    flows["flow_id"] = flows["flow_id"].map(flow_ids)
    quality["flow_id"] = quality["flow_id"].map(flow_ids)
    material, fate = "fgd_gypsum" + tail, "landfill" + tail
    flows.loc[flows["material"] == "fgd_gypsum", "material"] = material
    flows.loc[flows["fate"] == "landfill", "fate"] = fate
    flows["source"] = flows["source"] + " " + text
    flows["note"] = text
    for name, frame in tables.items():
        frame.to_csv(target / f"{name}.csv", index=False)
    pd.DataFrame([{"material_id": material, "name": "FGD gypsum " + text, "class": "gypsum",
                   "density_t_per_m3": "1.0", "ewc_codes": "100105", "hazardous": "false", "max_distance_km": "",
                   "source": text}]).to_csv(target / "materials.csv", index=False)
    pd.DataFrame([{"secondary_material": material, "primary_material": "natural_gypsum", "ratio": "1.0",
                   "max_share": "1.0", "processing_cost_per_t": "2.0", "processing_co2e_per_t": "0.0",
                   "max_distance_km": "", "source": text}]).to_csv(target / "substitutions.csv", index=False)
    pd.DataFrame([{"fate_id": fate, "name": "Landfill " + text, "kind": "landfill", "cost_per_t": "60",
                   "co2e_t_per_t": "0.01", "tax_per_t": "25", "source": text}]).to_csv(target / "fates.csv",
                                                                                         index=False)
    settings = yaml.safe_load((target / "region.yaml").read_text(encoding="utf-8"))
    settings.update(name="Tiny " + text, description=text,
                    reference={"materials": "materials.csv", "substitutions": "substitutions.csv",
                               "fates": "fates.csv"},
                    sources={"source" + tail: text})
    (target / "region.yaml").write_text(yaml.safe_dump(settings, allow_unicode=True), encoding="utf-8")
    return target


def hostile_scenarios(region: Path, folder: Path, payloads: list[str]) -> list[Path]:
    """Two scenarios of the hostile region whose exchanges differ (one plant removed, the landfill tax doubled).

    Scenario names are refused unless they are one safe folder name (letters, digits, space, '.', '_', '-'),
    so the payloads ride in the descriptions; the names carry what the name rule lets through.
    """
    text, tail = hostile_text(payloads), hostile_id(payloads)
    folder.mkdir(parents=True)
    scenarios = [
        {"name": "base -_. x", "description": text, "base": str(region)},
        {"name": "no board", "description": text, "base": str(region),
         "changes": [{"remove_facility": {"facility": "board" + tail}},
                     {"fate_cost": {"fate": "landfill" + tail, "tax_factor": 2}}]},
    ]
    paths = []
    for k, scenario in enumerate(scenarios):
        path = folder / f"scenario_{k}.yaml"
        path.write_text(yaml.safe_dump(scenario, allow_unicode=True), encoding="utf-8")
        paths.append(path)
    return paths


def cli(*args: str) -> None:
    env = {"SYMBIOSIS_DATA": str(TEST_DATA), "SYMBIOSIS_MODELS": str(TEST_MODELS)}
    result = CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)
    assert result.exit_code == 0, f"symbiosis {args[0]} failed:\n{result.output}"


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def site(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """(variant, output root) with every HTML page written from the hostile region."""
    variant = request.param
    payloads = VARIANTS[variant]
    work = tmp_path_factory.mktemp(f"hostile-{variant}")
    region = hostile_region(work / "region", payloads)
    out = work / "out"
    cli("run", str(region), "--out", str(out / "run"), "--no-pngs")
    cli("run", str(region), "--out", str(out / "self_contained"), "--no-pngs", "--self-contained")
    scenarios = hostile_scenarios(region, work / "scenarios", payloads)
    cli("compare", *map(str, scenarios), "--out", str(out / "compare"), "--workers", "1")
    cli("partners", str(region), "--flow", "power_gypsum" + hostile_id(payloads), "--out", str(out / "partners"))
    return variant, out


def test_every_command_wrote_its_pages(site: tuple[str, Path]) -> None:
    _, out = site
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.html"))
    # A new page must be added to PAGES, so that the browser test opens it too.
    assert written == sorted(PAGES)


def _script_bodies(text: str) -> list[str]:
    return re.findall(r"(?is)<script\b[^>]*>(.*?)</script\s*>", text)


def _outside_strings(script: str) -> str:
    """A script with its double-quoted string literals (JSON strings) removed."""
    return re.sub(r'"(?:[^"\\\n]|\\.)*"', '""', script)


@pytest.mark.parametrize("page", PAGES)
def test_no_payload_is_left_unescaped_in_the_file(site: tuple[str, Path], page: str) -> None:
    _, out = site
    text = (out / page).read_text(encoding="utf-8")
    for raw in RAW_MARKUP:
        assert raw not in text, f"{page}: {raw!r} is in the page as markup"
    # Inside a script, text from the data may only stand in a JSON (double-quoted) string: in a template
    # literal `${...}` runs, in a single-quoted string '-alert(1)-' does.
    for k, script in enumerate(_script_bodies(text)):
        bare = _outside_strings(script)
        for marker in SCRIPT_MARKERS:
            assert marker not in bare, (
                f"{page}: script {k} holds {marker!r} outside a JSON string: "
                f"...{bare[max(0, bare.index(marker) - 120):bare.index(marker) + 60]}...")
        assert "\u2028" not in script and "\u2029" not in script, f"{page}: a raw line separator in script {k}"
    # Present (as it is, or with its braces as entities or \u escapes), and not evaluated to 49.
    assert "7*7" in text, f"{page}: the hostile text is missing, or was evaluated as a Jinja template"


# --------------------------------------------------------------------------------------------------
# in the browser
# --------------------------------------------------------------------------------------------------

OPEN_TOOLTIPS = """
() => {
  var opened = 0;
  Object.keys(window).filter(function (k) { return /^map_[0-9a-f]+$/.test(k); }).forEach(function (k) {
    var map = window[k];
    if (!map || !map.eachLayer) { return; }
    map.eachLayer(function (layer) {
      if (layer.getTooltip && layer.getTooltip()) {
        try { layer.openTooltip(); opened++; } catch (e) {}
      }
    });
  });
  return opened;
}
"""


@pytest.mark.browser
@pytest.mark.parametrize("page_name", PAGES)
def test_no_payload_runs_in_the_browser(site: tuple[str, Path], page_name: str) -> None:
    require_browser()
    variant, out = site
    with browser_page(out, init_script=HOOK) as (page, router, log):
        page.goto(f"{LOCAL_ORIGIN}/{page_name}", wait_until="load")
        if page_name.endswith("map.html"):
            page.wait_for_selector(".leaflet-container", state="attached", timeout=20_000)
        if page_name.endswith("report.html"):
            page.wait_for_selector(".js-plotly-plot .main-svg", state="attached", timeout=20_000)
            page.frame_locator("iframe.map").locator(".leaflet-container").wait_for(state="attached",
                                                                                    timeout=20_000)
        # Names show in tooltips: open them all, so that they are in the page as a reader would see them.
        opened = sum(frame.evaluate(OPEN_TOOLTIPS) for frame in page.frames)
        assert opened > 0 or page_name.endswith("comparison.html"), f"{page_name}: no tooltip to open"
        page.wait_for_timeout(300)
        calls: list[str] = []
        injected: list[str] = []
        for frame in page.frames:
            calls += frame.evaluate("window.__symbiosis_calls || []")
            injected += frame.evaluate(
                "Array.from(document.querySelectorAll('img[src=x], svg[onload], a[href^=\"javascript:\"]'))"
                ".map(function (e) { return e.outerHTML; })")
        visible = page.evaluate("document.body.innerText")
        # plotly reads a few tags in labels: its SVG text must hold the payloads as text.
        sankey_text = "\n".join(page.evaluate(
            "Array.from(document.querySelectorAll('.js-plotly-plot text')).map(function (t) "
            "{ return t.textContent; })"))
        frames_text = "\n".join(frame.evaluate("document.body ? document.body.innerText : ''")
                                for frame in page.frames)
        syntax = [m for m in log.console_errors + log.page_errors if "SyntaxError" in m or "Unexpected" in m
                  or "missing" in m]
    assert not log.dialogs, f"{page_name}: a dialog opened: {log.dialogs}"
    assert not calls, f"{page_name}: injected script ran: {calls}"
    assert not injected, f"{page_name}: injected elements: {injected}"
    assert not syntax, f"{page_name}: script broken by the data: {syntax}"
    assert not log.page_errors, f"{page_name}: script errors: {log.page_errors}"
    assert not router.unmapped, f"{page_name}: unexpected requests: {router.unmapped}"
    shown = visible + "\n" + frames_text
    for payload in ("<img src=x onerror=alert(1)>", "{{7*7}}", "${alert(document.domain)}"):
        assert payload in shown, f"{page_name} ({variant}): {payload!r} is not shown as text"
        if page_name.endswith("report.html"):
            assert payload in sankey_text, f"{page_name} ({variant}): {payload!r} is not a Sankey label"


# --------------------------------------------------------------------------------------------------
# the escaping helpers, one context each
# --------------------------------------------------------------------------------------------------


def test_html_text_escapes_markup_quotes_and_template_braces() -> None:
    from symbiosis.outputs.escape import html_text

    assert html_text('<a href="x">\'{{7*7}}\'</a>') == (
        "&lt;a href=&quot;x&quot;&gt;&#x27;&#123;&#123;7*7&#125;&#125;&#x27;&lt;/a&gt;")
    assert html_text(None) == "" and html_text(float("nan")) == "" and html_text(12) == "12"


@pytest.mark.parametrize("text", PAYLOADS + ["\u2029", "<!--", "a & b", "{{ cycler }}", "{{{x}}}"])
def test_script_json_is_inert_in_a_script_and_in_jinja(text: str) -> None:
    import json

    import jinja2

    from symbiosis.outputs.escape import js_string, script_json

    value = {"name": text, "rows": [[1.5, text, {}], {"nested": {}}]}
    encoded = script_json(value)
    assert json.loads(encoded) == value
    for unsafe in ("<", ">", "&", "'", "\u2028", "\u2029", "{{", "{%", "{#"):
        assert unsafe not in encoded, (unsafe, encoded)
    # branca renders a map's scripts a second time through Jinja: the JSON must come out the same.
    assert jinja2.Environment().from_string(encoded).render() == encoded
    literal = js_string(text)
    assert literal.startswith('"') and literal.endswith('"') and json.loads(literal) == text


def test_plotly_text_shows_plotly_tags_as_text() -> None:
    from symbiosis.outputs.escape import plotly_text

    assert plotly_text('<a href="javascript:alert(1)">x</a><br>') == (
        '&lt;a href="javascript:alert(1)"&gt;x&lt;/a&gt;&lt;br&gt;')


def test_a_folium_tooltip_gets_its_html_as_json_not_as_a_template_literal() -> None:
    import json

    import folium

    from symbiosis.outputs.escape import html_text
    from symbiosis.outputs.mapping import tooltip

    fmap = folium.Map(location=(55.0, 11.0))
    name = "${alert(document.domain)} `x` {{7*7}}"
    folium.CircleMarker((55.0, 11.0), tooltip=tooltip(html_text(name))).add_to(fmap)
    page = fmap.get_root().render()
    call = re.search(r'\.bindTooltip\(("(?:[^"\\]|\\.)*"), \{"sticky": true\}\);', page)
    assert call is not None, "the tooltip is not bound with a JSON string"
    assert json.loads(call.group(1)) == html_text(name)


def test_slide_images_show_dollar_names_literally(tmp_path: Path) -> None:
    """matplotlib reads text between two ``$`` as mathtext: such a name stopped ``symbiosis run``."""
    from symbiosis.outputs.static import exchange_map_png, kpi_bars_png
    from symbiosis.pipeline import optimise
    from tests.conftest import load_test_region

    region = load_test_region(TINY)
    region.facilities.loc[region.facilities["facility_id"] == "power", "name"] = "Power $x^{ $ \\frac{"
    region.facilities.loc[region.facilities["facility_id"] == "board", "name"] = "Board $\\nomacro$"
    results = optimise(region)
    assert exchange_map_png(results, tmp_path / "map.png").stat().st_size > 0
    assert kpi_bars_png(results, tmp_path / "kpis.png").stat().st_size > 0
