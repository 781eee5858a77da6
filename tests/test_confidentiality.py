"""A confidential facility stays confidential in every file and terminal line of every command.

The tiny test region is copied with its cement works renamed ``Zyxwv Secret Works`` (id ``ZQX9``), marked
confidential, moved to a site with five-decimal coordinates, given distinctive figures, a by-product whose
flow id embeds its id (``ZQX9-ash``), a region source that locates it and another that names it, and a
public flow whose note names it. Every command runs through the CLI in-process; every file it writes
(CSV, JSON, HTML, YAML, GeoPackage layers and geometry) and its terminal output are scanned for the name,
the id, the exact coordinates and the facility's own figures. The same commands with ``--private`` must show
the name (or, for ``check``, the id), so the scan can fail. PNG files are not scanned (their text is drawn
from the same public tables; reading pixels is out of scope); any other file type fails the test.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from symbiosis.cli import app
from symbiosis.disclosure import PRIVATE_MARK, Disclosure, aggregate_facilities, public_results
from tests.conftest import TEST_DATA, TEST_MODELS, TINY

NAME = "Zyxwv Secret Works"
FID = "ZQX9"
LAT, LON = 55.68137, 11.21593
CLAY_T, CLINKER_T, ASH_T, CLAY_PRICE = 98765.0, 97531.0, 4321.5, 12.34
ENV = {"SYMBIOSIS_DATA": str(TEST_DATA), "SYMBIOSIS_MODELS": str(TEST_MODELS)}


def _secret_region(root: Path) -> Path:
    """The tiny region with its cement works made the confidential ``Zyxwv Secret Works`` (see above)."""
    folder = root / "tiny"
    shutil.copytree(TINY, folder)
    facilities = pd.read_csv(folder / "facilities.csv", dtype=str, keep_default_na=False)
    row = facilities["facility_id"] == "cement"
    facilities.loc[row, ["facility_id", "name", "lat", "lon", "confidential"]] = [FID, NAME, str(LAT), str(LON),
                                                                                 "true"]
    facilities.to_csv(folder / "facilities.csv", index=False)
    flows = pd.read_csv(folder / "flows.csv", dtype=str, keep_default_na=False)
    flows.loc[flows["facility_id"] == "cement", "facility_id"] = FID
    flows.loc[flows["flow_id"] == "cement_clay", ["amount", "price", "source"]] = [f"{CLAY_T:g}", f"{CLAY_PRICE}",
                                                                                  "zyxwv_survey"]
    flows.loc[flows["flow_id"] == "cement_clinker", "amount"] = f"{CLINKER_T:g}"
    flows.loc[flows["flow_id"] == "power_gypsum", "source"] = "weighbridge; press"
    flows.loc[flows["flow_id"] == "board_gypsum", "note"] = "alternative supplier: zyxwv secret works (zqx9)"
    # A by-product whose flow id embeds the facility id, landfilled free of charge: shipping it to the distant
    # works saves CO2e but costs money, so it changes along the trade-off curve. And a dust with no fate, so
    # that `check` warns about a flow of the facility by its id.
    ash = {column: "" for column in flows.columns}
    ash.update(flow_id=f"{FID}-ash", facility_id=FID, direction="out", category="by_product", material="fly_ash",
               amount=f"{ASH_T}", unit="t", fate="landfill", price="0", price_unit="EUR/t", source="estimate")
    dust = {**ash, "flow_id": f"{FID}-dust", "amount": "12.5", "fate": "", "price": "", "price_unit": ""}
    flows = pd.concat([flows, pd.DataFrame([ash, dust])], ignore_index=True)
    flows.to_csv(folder / "flows.csv", index=False)
    yaml_text = (folder / "region.yaml").read_text(encoding="utf-8")
    yaml_text += ("sources:\n"
                  f"  zyxwv_survey: \"Site survey of {NAME}, {LAT} N {LON} E\"\n"
                  "  press: \"Press note: zqx9 (ZYXWV SECRET WORKS) buys 54,000 t of ash\"\n")
    (folder / "region.yaml").write_text(yaml_text, encoding="utf-8")
    for name, changes in (("base", ""),
                          ("grow_zqx9", "changes:\n  - scale_flows: {facility: ZQX9, material: clay, factor: 1.1}\n"
                                        "  - fate_cost: {fate: landfill, tax_factor: 2}\n")):
        (root / f"{name}.yaml").write_text(
            f"name: {name}\ndescription: {NAME} as it is, or growing\nbase: ./tiny\n{changes}", encoding="utf-8")
    return folder


def _commands(root: Path, region: Path, out: Path) -> dict[str, list[str]]:
    return {
        "check": ["check", str(region)],
        "balance": ["balance", str(region), "--out", str(out / "balance"), "--reconcile"],
        "optimise": ["optimise", str(region), "--out", str(out / "optimise")],
        "run": ["run", str(region), "--out", str(out / "run")],
        "run_reconciled": ["run", str(region), "--out", str(out / "run_reconciled"), "--reconciled", "--no-pngs"],
        "compare": ["compare", str(root / "base.yaml"), str(root / "grow_zqx9.yaml"), "--out", str(out / "compare"),
                    "--workers", "1"],
        "tradeoff": ["tradeoff", str(region), "--out", str(out / "tradeoff"), "--points", "4"],
        "partners_public_stream": ["partners", str(region), "--flow", "power.model.out.fly_ash",
                                   "--out", str(out / "partners_public")],
        "partners_own_stream": ["partners", str(region), "--flow", f"{FID}-ash", "--out", str(out / "partners_own")],
        "resilience": ["resilience", str(region), "--out", str(out / "resilience"), "--exchanges"],
    }


def _invoke(args: list[str]) -> str:
    result = CliRunner().invoke(app, args, env=ENV)
    assert result.exit_code == 0, f"{args[0]} failed:\n{result.output}\n{result.exception!r}"
    return result.output


def _texts(path: Path) -> list[str]:
    """Everything a reader of ``path`` could see, as text (GeoPackage: every layer's attributes, and the exact
    coordinates when a geometry has a vertex at the facility's site to 4 decimals)."""
    suffix = path.suffix.lower()
    if suffix == ".lock":  # the empty lock file beside an output folder (symbiosis.atomic.output_folder)
        assert path.stat().st_size == 0, f"{path}: a lock file with content"
        return []
    if suffix in (".csv", ".json", ".html", ".yaml", ".yml", ".txt", ".md"):
        return [path.read_text(encoding="utf-8")]
    if suffix == ".gpkg":
        import pyogrio

        texts = []
        for layer, _kind in pyogrio.list_layers(path):
            frame = pyogrio.read_dataframe(path, layer=layer)
            texts.append(frame.drop(columns="geometry").to_csv(index=False))
            texts.append(" ".join(f"{c}" for c in frame.columns))
            for geometry in frame.geometry:
                if geometry is None or geometry.is_empty:
                    continue
                coords = np.asarray(geometry.coords if hasattr(geometry, "coords") else [], dtype=float).reshape(-1, 2)
                hits = (np.round(coords[:, 1], 4) == round(LAT, 4)) & (np.round(coords[:, 0], 4) == round(LON, 4))
                if hits.any():  # reported as the coordinates themselves
                    texts.append(f"geometry of layer {layer} at {LAT:.5f} {LON:.5f}")
        return texts
    if suffix == ".xlsx":
        import openpyxl

        book = openpyxl.load_workbook(path, read_only=True)
        return [" ".join(str(cell) for row in sheet.iter_rows(values_only=True) for cell in row if cell is not None)
                for sheet in book.worksheets]
    if suffix == ".png":
        return []  # not scanned: see the module docstring
    raise AssertionError(f"{path}: a file type this test does not know how to scan")


def _figure_patterns(values: list[float]) -> list[re.Pattern[str]]:
    """A figure as a number token (not inside a longer number) in the ways the outputs print numbers."""
    patterns = []
    for value in values:
        texts = {repr(float(value)), f"{value:.0f}", f"{value:,.0f}", f"{value:.2f}", f"{value:,.2f}", f"{value:g}"}
        for text in texts:
            if sum(ch.isdigit() for ch in text) >= 5:  # shorter prints match other figures by chance
                patterns.append(re.compile(r"(?<![\d.])" + re.escape(text) + r"(?!\d)(?!\.\d)"))
    return patterns


def _leaks(text: str, figures: list[re.Pattern[str]]) -> list[str]:
    low = text.lower()
    found = [needle for needle in (NAME.lower(), FID.lower(), "zyxwv") if needle in low]
    for value in (LAT, LON):
        found += [f"{value:.{k}f}" for k in (5, 4) if f"{value:.{k}f}" in text]
        if re.search(r"(?<![\d.])" + re.escape(f"{value:.3f}") + r"(?!\d)", text):
            found.append(f"{value:.3f}")
    found += [pattern.pattern for pattern in figures if pattern.search(text)]
    return found


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every command, public then private, on the secret region: outputs and terminal text."""
    root = tmp_path_factory.mktemp("confidential")
    region = _secret_region(root)
    public_out, private_out = root / "public", root / "private"
    public = {name: _invoke(args) for name, args in _commands(root, region, public_out).items()}
    private = {name: _invoke([*args, "--private"]) for name, args in _commands(root, region, private_out).items()}
    return {"public": public, "private": private, "public_out": public_out, "private_out": private_out}


def _secret_figures(private_out: Path) -> list[float]:
    """The facility's own figures, from the private run: its flows, its exchange rows, its costs and gains."""
    exchanges = pd.read_csv(private_out / "optimise" / "exchanges.csv")
    own = exchanges[(exchanges["supply_facility"] == FID) | (exchanges["demand_facility"] == FID)]
    assert len(own), "the confidential facility must take part in an exchange for this test to mean anything"
    facilities = pd.read_csv(private_out / "optimise" / "facilities.csv").set_index("facility_id")
    figures = [CLAY_T, CLINKER_T, ASH_T, CLAY_T * CLAY_PRICE]
    for column in ("amount_t_per_yr", "saving", "virgin_cost_avoided", "replaced_t_per_yr"):
        figures += [float(v) for v in own[column] if abs(float(v)) >= 100]
    for column in ("cost_bau", "cost_optimum", "gain"):
        value = float(facilities.at[FID, column])
        if abs(value) >= 100:
            figures.append(value)
    return figures


def test_the_confidential_facility_trades_in_the_optimum(runs: dict[str, Any]) -> None:
    private = pd.read_csv(runs["private_out"] / "optimise" / "exchanges.csv")
    assert ((private["supply_facility"] == FID) | (private["demand_facility"] == FID)).any()
    public = pd.read_csv(runs["public_out"] / "optimise" / "exchanges.csv")
    mine = (public["supply_facility"] == "confidential-1") | (public["demand_facility"] == "confidential-1")
    assert mine.any()
    # The row stays (material kept) but its tonnes and money are suppressed; the distance is a 5 km band.
    assert public.loc[mine, "material"].notna().all()
    assert public.loc[mine, ["amount_t_per_yr", "saving", "transport_cost"]].isna().all().all()
    assert (public.loc[mine, "distance_km"] % 5 == 0).all()


def test_no_public_output_reveals_the_confidential_facility(runs: dict[str, Any]) -> None:
    figures = _figure_patterns(_secret_figures(runs["private_out"]))
    files = sorted(p for p in runs["public_out"].rglob("*") if p.is_file())
    assert {p.suffix for p in files} >= {".csv", ".json", ".html", ".yaml", ".gpkg"}
    problems = []
    for path in files:
        for text in _texts(path):
            problems += [f"{path.relative_to(runs['public_out'])}: {leak}" for leak in _leaks(text, figures)]
    for command, output in runs["public"].items():
        problems += [f"terminal of {command}: {leak}" for leak in _leaks(output, figures)]
    assert not problems, "\n".join(problems)


def test_public_outputs_say_how_many_were_masked(runs: dict[str, Any]) -> None:
    out = runs["public_out"]
    for path in (out / "optimise" / "kpis.json", out / "optimise" / "parameters.json", out / "run" / "kpis.json",
                 out / "tradeoff" / "disclosure.json", out / "partners_own" / "disclosure.json",
                 out / "resilience" / "disclosure.json", out / "balance" / "disclosure.json"):
        record = json.loads(path.read_text(encoding="utf-8"))
        assert record["disclosure"] == "public" and record["confidential_facilities_masked"] == 1, path
    assert "1 confidential facility is" in (out / "run" / "report.html").read_text(encoding="utf-8")
    # A scenario change that names the facility keeps its operation but not its figures.
    resolved = (out / "compare" / "grow_confidential-1" / "scenario.resolved.yaml").read_text(encoding="utf-8")
    assert "facility: confidential-1" in resolved and "factor: '[suppressed]'" in resolved
    # The source that locates the facility is left out of the report; the one that names it is scrubbed.
    report = (out / "run" / "report.html").read_text(encoding="utf-8")
    assert "zyxwv_survey" not in report and "Press note" in report


def test_private_outputs_show_everything_and_say_so(runs: dict[str, Any]) -> None:
    out = runs["private_out"]
    for command, output in runs["private"].items():
        assert PRIVATE_MARK in output, command
        # the terminal shows ids (and names in partners); tradeoff and compare print region totals only
        assert FID in output or NAME in output or command in ("tradeoff", "compare"), command
    texts = {path: "\n".join(_texts(path)) for path in out.rglob("*") if path.is_file()}
    for folder in ("balance", "optimise", "run", "compare", "tradeoff", "partners_public", "partners_own",
                   "resilience"):
        assert any(FID in text for path, text in texts.items() if folder in path.parts), folder
    for folder in ("optimise", "run", "compare", "partners_public", "partners_own"):
        assert any(NAME in text for path, text in texts.items() if folder in path.parts), folder
    assert f"{LAT:.5f} {LON:.5f}" in texts[out / "optimise" / "exchanges.gpkg"]  # the geometry check can fail
    assert json.loads((out / "optimise" / "kpis.json").read_text())["disclosure"] == PRIVATE_MARK
    assert json.loads((out / "optimise" / "parameters.json").read_text())["disclosure"] == PRIVATE_MARK
    assert PRIVATE_MARK in (out / "compare" / "grow_zqx9" / "scenario.resolved.yaml").read_text(encoding="utf-8")
    for folder in ("balance", "tradeoff", "partners_own", "resilience"):
        assert json.loads((out / folder / "disclosure.json").read_text())["disclosure"] == PRIVATE_MARK
    for page in (out / "run" / "report.html", out / "compare" / "comparison.html", out / "run" / "map.html",
                 out / "partners_public" / "partners_map.html"):
        title = re.search(r"<title>(.*?)</title>", page.read_text(encoding="utf-8"), re.S)
        assert title and PRIVATE_MARK in title.group(1), page


def test_a_flow_id_that_embeds_the_facility_id_is_masked() -> None:
    facilities = pd.DataFrame({"facility_id": [FID, "board"], "name": [NAME, "Board"], "lat": [LAT, 55.67],
                               "lon": [LON, 11.1], "confidential": [True, False]})
    d = Disclosure(facilities, [(f"{FID}-ash", FID)])
    table = pd.DataFrame({"supply_id": [f"{FID}-ash", f"{FID.lower()}.model.out.x", "board_gypsum"],
                          "facility_id": ["board", "board", "board"], "note": ["", f"from {NAME.upper()}", ""]})
    shown = d.frame(table)
    assert shown["supply_id"].iloc[0] == "confidential-1/flow-1"
    assert FID.lower() not in shown["supply_id"].iloc[1].lower()  # an id met only later: scrubbed as text
    assert shown["supply_id"].iloc[2] == "board_gypsum"
    assert shown["note"].iloc[1] == "from Confidential facility 1"


def test_an_aggregate_needs_three_confidential_facilities(results: Any) -> None:
    facilities = results.facilities.copy()
    for n, expected in ((2, 0), (3, 1)):
        marked = facilities.assign(confidential=[k < n for k in range(len(facilities))])
        aggregate = aggregate_facilities(marked, Disclosure(marked))
        assert len(aggregate) == expected
        if expected:
            assert aggregate["name"].iloc[0] == "Other confidential facilities (3)"
            assert aggregate["gain"].iloc[0] == pytest.approx(marked["gain"].iloc[:3].sum())
    everyone = copy.copy(results)
    everyone.facilities = facilities.assign(confidential=True)
    assert public_results(everyone).facilities["gain"].isna().all()


def test_region_totals_less_the_published_rows_do_not_give_its_figures(runs: dict[str, Any]) -> None:
    """Secondary suppression: with one confidential facility, two public ones are suppressed beside it."""
    out = runs["public_out"] / "optimise"
    facilities = pd.read_csv(out / "facilities.csv")
    kpis = json.loads((out / "kpis.json").read_text(encoding="utf-8"))
    assert facilities["cost_bau"].isna().sum() >= 3
    residual = kpis["cost_bau"] - facilities["cost_bau"].sum()  # NaN rows are skipped
    assert residual != pytest.approx(CLAY_T * CLAY_PRICE)
    balances = pd.read_csv(out / "balances.csv")
    before = balances[(balances["stage"] == "before") & (balances["quantity"] == "mass")]
    region = float(before.loc[before["facility_id"] == "REGION", "inputs"].iloc[0])
    published = before.loc[before["facility_id"] != "REGION", "inputs"].sum()
    assert before.loc[before["facility_id"] != "REGION", "inputs"].isna().sum() >= 3
    assert region - published != pytest.approx(CLAY_T)
    # ... and the per-flow tables do not undo it: the suppressed public facilities' flows are empty too.
    demands = pd.read_csv(out / "demands.csv")
    suppressed = set(facilities.loc[facilities["cost_bau"].isna(), "facility_id"])
    assert demands.loc[demands["facility_id"].isin(suppressed), "amount_t_per_yr"].isna().all()
