"""The command line refuses bad options, bad scenarios and bad output folders before any work, and every
command's output folder is one run's complete set of files (manifest.json, staged and swapped whole)."""

from __future__ import annotations

import json
import math
import multiprocessing
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from symbiosis.atomic import MANIFEST, OutputsError, output_folder, verify_outputs
from symbiosis.cli import app
from symbiosis.errors import InputError, SymbiosisError
from symbiosis.outputs.export import excel_safe, write_csv
from symbiosis.pipeline import check_overrides, optimise
from tests.conftest import REPO, TEST_DATA, TEST_MODELS, TINY, load_test_region

ENV = {"SYMBIOSIS_DATA": str(TEST_DATA), "SYMBIOSIS_MODELS": str(TEST_MODELS)}


def _cli(*args: object):  # type: ignore[no-untyped-def]
    result = CliRunner().invoke(app, [str(a) for a in args], env=ENV)
    # An error is an exit status and a message, never an exception escaping the command (a traceback).
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result


# ---------------------------------------------------------------------------------------------------------
# 1. run options are checked by the rules of region.yaml
# ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("option", "value", "key"), [
    ("--circuity", "-1", "circuity"), ("--circuity", "0.5", "circuity"),
    ("--transport-cost", "-100", "transport_cost_per_tkm"), ("--max-distance", "nan", "max_distance_km"),
    ("--max-distance", "0", "max_distance_km"), ("--carbon-price", "nan", "carbon_price"),
    ("--carbon-price", "inf", "carbon_price"), ("--carbon-price", "-5", "carbon_price"),
])
def test_bad_run_options_are_refused_before_anything_is_written(tmp_path, option, value, key):
    out = tmp_path / "out"
    result = _cli("optimise", TINY, "--out", out, option, value)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert f"'{key}'" in result.output and option in result.output
    assert not out.exists()


def test_overrides_from_python_follow_the_same_rules(tiny_region):
    with pytest.raises(InputError, match="circuity"):
        optimise(tiny_region, circuity=-1)
    with pytest.raises(InputError, match="carbon_price"):
        optimise(tiny_region, carbon_price=math.nan)
    with pytest.raises(InputError, match="max_distnace_km"):
        optimise(tiny_region, max_distnace_km=3)
    assert check_overrides({"circuity": 1.0, "carbon_price": None}) == {"circuity": 1.0}


def test_overflowing_results_are_an_error_and_nothing_is_written(tmp_path, tiny_region):
    with pytest.raises(SymbiosisError, match="not finite"):
        optimise(tiny_region, transport_cost_per_tkm=1e308)
    out = tmp_path / "out"
    result = _cli("optimise", TINY, "--out", out, "--transport-cost", "1e308")
    assert result.exit_code == 1 and "not finite" in result.output and "Traceback" not in result.output
    assert not out.exists()


# ---------------------------------------------------------------------------------------------------------
# 2, 3. --method and --out are checked before any work
# ---------------------------------------------------------------------------------------------------------

def test_unknown_method_is_refused_with_the_choices(tmp_path):
    result = _cli("optimise", tmp_path / "no-such-region", "--out", tmp_path / "out", "--method", "foo")
    assert result.exit_code == 2
    assert "ipm" in result.output and "simplex" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", [
    ["optimise", TINY], ["run", TINY, "--no-pngs"], ["tradeoff", TINY], ["resilience", TINY],
    ["balance", TINY], ["partners", TINY, "--flow", "x"], ["compare", TEST_DATA / "scenarios" / "base.yaml"],
])
def test_out_naming_a_file_is_refused_before_any_work(tmp_path, command):
    target = tmp_path / "taken"
    target.write_text("mine")
    result = _cli(*command, "--out", target)
    assert result.exit_code == 1, result.output
    assert "is a file, not a folder" in result.output and "Traceback" not in result.output
    assert target.read_text() == "mine"


def test_out_holding_other_files_is_refused_and_left_alone(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.docx").write_text("years of work")
    result = _cli("optimise", TINY, "--out", out)
    assert result.exit_code == 1 and "did not write" in result.output
    assert (out / "thesis.docx").read_text() == "years of work"


# ---------------------------------------------------------------------------------------------------------
# 4, 5. scenario files: numbers are numbers; names are safe, single folder names
# ---------------------------------------------------------------------------------------------------------

def _write_scenario(folder: Path, file: str, name: str, changes: str = "[]") -> Path:
    base = Path(shutil.copytree(TINY, folder / "tiny", dirs_exist_ok=True))
    path = folder / file
    path.write_text(f"name: {json.dumps(name)}\nbase: {base.name}\nchanges: {changes}\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("value", [".nan", ".inf", '"2"', "true", "twice"])
def test_scenario_numbers_refuse_nan_inf_and_text(tmp_path, value):
    from symbiosis.scenarios import load_scenario

    path = _write_scenario(tmp_path, "s.yaml", "s", f"[{{fate_cost: {{fate: landfill, tax_factor: {value}}}}}]")
    with pytest.raises(InputError) as info:
        load_scenario(path)
    text = str(info.value)
    assert str(path) in text and "changes.0.fate_cost.tax_factor" in text


@pytest.mark.parametrize("name", ["..", ".", "", "/abs", "a/b", "a\\b", "../escape", ".hidden"])
def test_unsafe_scenario_names_are_refused_before_running(tmp_path, name):
    path = _write_scenario(tmp_path, "s.yaml", name)
    out = tmp_path / "deep" / "cmp"
    result = _cli("compare", path, "--out", out)
    assert result.exit_code == 1, result.output
    assert "scenario name" in result.output and str(path) in result.output.replace("\n", "")
    assert not (tmp_path / "deep").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.yaml", "tiny"]


def test_two_scenarios_with_one_name_are_refused_naming_both_files(tmp_path):
    first = _write_scenario(tmp_path, "one.yaml", "same")
    second = _write_scenario(tmp_path, "two.yaml", "Same")
    result = _cli("compare", first, second, "--out", tmp_path / "cmp")
    assert result.exit_code == 1
    flat = result.output.replace("\n", "")
    assert "same name" in flat and str(first) in flat and str(second) in flat
    assert not (tmp_path / "cmp").exists()


# ---------------------------------------------------------------------------------------------------------
# 6. an output folder is one run's complete set
# ---------------------------------------------------------------------------------------------------------

def test_optimise_writes_a_manifest_that_verifies(tmp_path):
    out = tmp_path / "out"
    result = _cli("optimise", TINY, "--out", out)
    assert result.exit_code == 0, result.output
    manifest = verify_outputs(out)
    assert {"exchanges.csv", "kpis.json", "exchanges.gpkg", "parameters.json"} <= set(manifest["files"])
    assert manifest["version"] and manifest["command"] and manifest["started"] <= manifest["finished"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"] or all(
        p.name in ("out", ".out.lock") for p in tmp_path.iterdir())
    # a file from elsewhere, a changed file and a missing file are each caught
    (out / "report.html").write_text("from another run")
    with pytest.raises(OutputsError, match="report.html: not written by run"):
        verify_outputs(out)
    (out / "report.html").unlink()
    (out / "kpis.json").write_text("{}")
    with pytest.raises(OutputsError, match="kpis.json: changed"):
        verify_outputs(out)
    (out / "exchanges.csv").unlink()
    with pytest.raises(OutputsError, match="exchanges.csv: missing"):
        verify_outputs(out)


@pytest.mark.parametrize("command", [
    ["run", TINY, "--no-pngs"], ["tradeoff", TINY, "--points", "3"], ["resilience", TINY], ["balance", TINY],
    ["compare", TEST_DATA / "scenarios" / "base.yaml", TEST_DATA / "scenarios" / "no_board_plant.yaml"],
])
def test_every_command_writes_a_verified_folder_replaced_whole(tmp_path, command):
    out = tmp_path / "out"
    out.mkdir()
    # the folder an earlier run of another command left: replaced whole, not mixed with the new files
    (out / "stale.csv").write_text("old")
    (out / MANIFEST).write_text(json.dumps({"run_id": "old", "files": {"stale.csv": "x"}}))
    result = _cli(*command, "--out", out)
    assert result.exit_code == 0, result.output
    verify_outputs(out)
    assert not (out / "stale.csv").exists()
    assert not [p for p in tmp_path.iterdir() if "staging" in p.name or ".old-" in p.name]


def test_partners_folder_is_verified(tmp_path):
    region = load_test_region(TINY)
    flow = region.flows.loc[region.flows["direction"] == "out", "flow_id"].iloc[0]
    out = tmp_path / "out"
    result = _cli("partners", TINY, "--flow", flow, "--out", out)
    assert result.exit_code == 0, result.output
    assert "partners.csv" in verify_outputs(out)["files"]


def test_a_failed_write_leaves_the_old_folder_whole(tmp_path):
    out = tmp_path / "out"
    with output_folder(out) as stage:
        (stage / "a.csv").write_text("first")
        (stage / "b.csv").write_text("first")
    with pytest.raises(RuntimeError), output_folder(out) as stage:
        (stage / "a.csv").write_text("second")
        raise RuntimeError("killed midway")
    assert (out / "a.csv").read_text() == "first" and (out / "b.csv").read_text() == "first"
    verify_outputs(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.lock", "out"]


def _slow_writer(out: str, tag: str, seconds: float, barrier) -> None:  # type: ignore[no-untyped-def]
    import time

    with output_folder(out, command=[tag]) as stage:
        barrier.wait()
        for k in range(5):
            (stage / f"part{k}.csv").write_text(tag)
            time.sleep(seconds / 5)


def test_two_processes_into_one_out_the_last_to_finish_wins_whole(tmp_path):
    out = str(tmp_path / "out")
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    slow = ctx.Process(target=_slow_writer, args=(out, "slow", 2.0, barrier))
    fast = ctx.Process(target=_slow_writer, args=(out, "fast", 0.2, barrier))
    slow.start()
    fast.start()
    slow.join(60)
    fast.join(60)
    assert slow.exitcode == 0 and fast.exitcode == 0
    manifest = verify_outputs(out)
    assert manifest["command"] == ["slow"]
    assert {Path(out, name).read_text() for name in manifest["files"]} == {"slow"}


# ---------------------------------------------------------------------------------------------------------
# 7. no CSV cell a spreadsheet would run as a formula
# ---------------------------------------------------------------------------------------------------------

def test_text_cells_that_start_a_formula_are_quoted_numbers_are_not():
    frame = pd.DataFrame({"name": ["=HYPERLINK(\"x\")", "+1", "-cmd", "@SUM(A1)", "\tx", "\rx", "plain", None],
                          "amount": [-1.5, 2, -3, 4, 5, 6, 7, 8]})
    safe = excel_safe(frame)
    assert list(safe["name"][:7]) == ["'=HYPERLINK(\"x\")", "'+1", "'-cmd", "'@SUM(A1)", "'\tx", "'\rx", "plain"]
    assert safe["amount"].tolist() == frame["amount"].tolist() and safe["amount"].dtype == float
    assert frame.at[0, "name"] == "=HYPERLINK(\"x\")"  # the caller's frame is not changed


def test_every_csv_of_a_run_is_formula_safe(tmp_path, tiny_copy):
    def edit(tables: dict[str, pd.DataFrame]) -> None:
        tables["facilities"].loc[0, "name"] = "=cmd|' /C calc'!A0"
    folder = tiny_copy(edit)
    out = tmp_path / "out"
    result = _cli("run", folder, "--out", out, "--no-pngs")
    assert result.exit_code == 0, result.output
    csvs = list(out.glob("*.csv"))
    assert csvs
    for path in csvs:
        text = path.read_text(encoding="utf-8")
        for line in text.splitlines():
            for cell in line.split(","):
                assert not cell.startswith(("=", "@")), (path.name, cell)
    assert "'=cmd|' /C calc'!A0" in (out / "facilities.csv").read_text(encoding="utf-8")
    write_csv(tmp_path / "x.csv", pd.DataFrame({"a": ["=1"]}))
    assert (tmp_path / "x.csv").read_text().splitlines()[1] == "'=1"


def test_no_module_writes_a_csv_around_the_helper():
    offenders = [str(p.relative_to(REPO)) for p in (REPO / "symbiosis").rglob("*.py")
                 if ".to_csv(" in p.read_text(encoding="utf-8") and p.name != "export.py"]
    assert offenders == []


# ---------------------------------------------------------------------------------------------------------
# 8. the terminal and the report count the same warnings; an open energy balance is a warning
# ---------------------------------------------------------------------------------------------------------

def test_open_energy_balance_is_a_warning_with_its_figure():
    from symbiosis import balances, load_region

    result = balances(load_region(REPO / "data" / "regions" / "kalundborg"))
    kemira = result.facility("kemira_fredericia", "energy")
    assert not kemira.within_tolerance and kemira.status.startswith("warning: energy balance open")
    assert any(w.startswith("kemira_fredericia: energy balance open: 130,500 MWh/yr more out than in")
               for w in result.warnings())
    assert result.facility("kemira_fredericia", "mass").status == "ok"


def test_terminal_and_report_count_the_same_warnings(tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["run", str(REPO / "data" / "regions" / "kalundborg"), "--out", str(out),
                                      "--no-pngs"])
    assert result.exit_code == 0, result.output
    found = re.search(r"(\d+) balance warning\(s\), (\d+) data-quality note\(s\), (\d+) loading warning\(s\): "
                      r"(\d+) listed in the report", result.output.replace("\n", " "))
    assert found, result.output
    balance_count, notes, loading, total = map(int, found.groups())
    assert balance_count >= 1 and balance_count + notes + loading == total
    html = (out / "report.html").read_text(encoding="utf-8")
    listing = html.split('<ul class="warnings">', 1)[1].split("</ul>", 1)[0]
    shown = listing.count("<li>")
    more = re.search(r"… and (\d+) more", listing)
    assert shown + (int(more.group(1)) - 1 if more else 0) == total
    assert (listing.count("energy balance open") + listing.count("balance does not close")
            + listing.count("its process model gives")) == balance_count


# ---------------------------------------------------------------------------------------------------------
# 10. unknown ids get the nearest ones; `symbiosis list` prints them all
# ---------------------------------------------------------------------------------------------------------

KALUNDBORG = REPO / "data" / "regions" / "kalundborg"


def test_unknown_flow_and_material_suggest_the_nearest_ids(tmp_path):
    result = CliRunner().invoke(app, ["partners", str(KALUNDBORG), "--flow", "asnaes_fly_ahs", "--out",
                                      str(tmp_path / "p")])
    assert result.exit_code == 1
    flat = result.output.replace("\n", "")
    assert "did you mean 'asnaes_fly_ash'" in flat and "symbiosis list REGION supplies" in flat
    result = CliRunner().invoke(app, ["partners", str(KALUNDBORG), "--facility", "asnaes", "--material", "fly_ahs",
                                      "--amount", "3", "--out", str(tmp_path / "p")])
    assert result.exit_code == 1 and "did you mean 'fly_ash'" in result.output.replace("\n", "")


@pytest.mark.parametrize(("kind", "present"), [
    ("supplies", "asnaes_fly_ash"), ("facilities", "asnaes"), ("materials", "fly_ash"), ("flows", "asnaes_fly_ash"),
])
def test_list_prints_the_ids(kind, present):
    result = CliRunner().invoke(app, ["list", str(KALUNDBORG), kind])
    assert result.exit_code == 0, result.output
    ids = [line.split("\t")[0] for line in result.output.splitlines()]
    assert present in ids


def test_list_supplies_and_demands_split_the_mass_flows():
    from symbiosis import load_region

    flows = load_region(KALUNDBORG).flows
    supplies = CliRunner().invoke(app, ["list", str(KALUNDBORG), "supplies"]).output.splitlines()
    demands = CliRunner().invoke(app, ["list", str(KALUNDBORG), "demands"]).output.splitlines()
    mass = flows[flows["quantity"] == "mass"]
    # Supplies are what `partners --flow` takes: outgoing mass flows and heat given off (by-product or waste).
    heat = flows[(flows["quantity"] == "energy") & (flows["direction"] == "out")
                 & flows["category"].isin(["by_product", "waste"])
                 & flows["material"].isin(["steam", "hot_water", "district_heat", "heat", "waste_heat"])]
    assert {"asnaes_steam", "forsyning_effluent_heat"} <= set(heat["flow_id"])
    assert {s.split("\t")[0] for s in supplies} == (set(mass.loc[mass["direction"] == "out", "flow_id"])
                                                    | set(heat["flow_id"]))
    assert {d.split("\t")[0] for d in demands} == set(mass.loc[mass["direction"] == "in", "flow_id"])
    bad = CliRunner().invoke(app, ["list", str(KALUNDBORG), "widgets"])
    assert bad.exit_code == 2 and "supplies" in bad.output


# ---------------------------------------------------------------------------------------------------------
# 9. scripts/test.sh installs system packages only under CI or with --install-system
# ---------------------------------------------------------------------------------------------------------

def _sandbox(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A copy of the scripts with setup.sh and the venv's python stubbed, and a PATH without npm or chromium
    in which `id -u` says root and `apt-get` only records its arguments."""
    import os
    import stat

    root = tmp_path / "repo"
    (root / "scripts").mkdir(parents=True)
    shutil.copytree(REPO / ".ci", root / ".ci")
    shutil.copy(REPO / "scripts" / "test.sh", root / "scripts" / "test.sh")
    (root / "scripts" / "setup.sh").write_text("exit 0\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "apt.log"
    scripts = {"apt-get": f'#!/bin/sh\necho "$@" >> {log}\n', "id": "#!/bin/sh\necho 0\n",
               "python": "#!/bin/sh\nexit 0\n"}
    for tool in ("bash", "dirname", "sed", "head", "mkdir", "cat", "sh"):
        found = shutil.which(tool)
        assert found, tool
        os.symlink(found, bin_dir / tool)
    for name, text in scripts.items():
        target = (root / ".venv" / "bin" / name) if name == "python" else bin_dir / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        target.chmod(target.stat().st_mode | stat.S_IEXEC)
    env = {"PATH": str(bin_dir), "HOME": str(tmp_path), "SYMBIOSIS_BROWSER_ASSETS": str(tmp_path / "assets")}
    return root, env


def _test_sh(root: Path, env: dict[str, str], *args: str):  # type: ignore[no-untyped-def]
    import subprocess

    return subprocess.run([shutil.which("bash"), str(root / "scripts" / "test.sh"), *args], env=env,
                          capture_output=True, text=True, timeout=60)


def test_test_sh_installs_nothing_system_wide_and_skips_without_npm(tmp_path):
    root, env = _sandbox(tmp_path)
    done = _test_sh(root, env)
    assert not (tmp_path / "apt.log").exists(), (tmp_path / "apt.log").read_text()
    assert done.returncode == 0, done.stderr
    assert "npm is not installed" in done.stderr and "browser tests will be skipped" in done.stderr


def test_test_sh_installs_system_packages_under_ci_or_when_asked(tmp_path):
    root, env = _sandbox(tmp_path)
    _test_sh(root, env, "--install-system")
    assert "install" in (tmp_path / "apt.log").read_text() and "npm" in (tmp_path / "apt.log").read_text()
    (tmp_path / "apt.log").unlink()
    done = _test_sh(root, {**env, "CI": "true"})
    assert "npm" in (tmp_path / "apt.log").read_text()
    assert done.returncode != 0  # the stub apt-get installed nothing: under CI a missing npm is a failure
    ci_run = (REPO / ".ci" / "run").read_text()
    assert "install-system.sh" in ci_run and "bash scripts/test.sh" in ci_run
    assert "bash scripts/test.sh" in (REPO / "README.md").read_text()


# ---------------------------------------------------------------------------------------------------------
# 11-13. docs stand alone; the declared dependencies are used; the licence is in the repository
# ---------------------------------------------------------------------------------------------------------

def test_docs_cite_no_machine_paths_and_no_files_outside_the_repository():
    bad = re.compile(r"/work/|/tmp/|(?<!\.)venv/bin|\.\./shared|DESIGN\.md")
    hits = [f"{p.relative_to(REPO)}:{n}: {line.strip()}"
            for p in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
            for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), start=1) if bad.search(line)]
    assert hits == []


def test_declared_dependencies_are_imported_and_the_licence_is_mit():
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    names = [re.split(r"[<>=!\[ ]", d, maxsplit=1)[0] for d in project["dependencies"]]
    assert "pandera" not in names
    assert project["license"] == "MIT"
    licence = (REPO / "LICENSE").read_text(encoding="utf-8")
    assert licence.startswith("MIT License") and "Copyright (c) 2026 the symbiosis contributors" in licence


def test_verify_command(tmp_path):
    out = tmp_path / "out"
    with output_folder(out) as stage:
        (stage / "a.csv").write_text("1")
    ok = _cli("verify", out)
    assert ok.exit_code == 0 and "1 files of run" in ok.output
    (out / "b.csv").write_text("other run")
    bad = _cli("verify", out)
    assert bad.exit_code == 1 and "b.csv: not written by run" in bad.output and "Traceback" not in bad.output


@pytest.mark.parametrize("args", [["tradeoff", TINY, "--points", "1"],
                                  ["partners", TINY, "--facility", "f", "--material", "m", "--amount", "nan"],
                                  ["partners", TINY, "--facility", "f", "--material", "m", "--amount", "1",
                                   "--lat", "91", "--lon", "0"],
                                  ["balance", TINY, "--tolerance", "2"], ["balance", TINY, "--tolerance", "nan"]])
def test_other_numeric_options_are_checked_before_any_work(tmp_path, args):
    result = _cli(*args, "--out", tmp_path / "out")
    assert result.exit_code in (1, 2), result.output
    assert "Traceback" not in result.output and not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------------------------------------
# names are printed as text on the terminal, never read as rich markup
# ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("command", ["check", "balance", "optimise", "run", "partners", "resilience"])
def test_names_with_markup_print_as_text(tmp_path, tiny_copy, command):
    """A facility named ``Plant [/] [bold]`` made rich raise MarkupError (a traceback) in the terminal tables."""
    name = "Board [/] [bold]works"

    def edit(tables: dict[str, pd.DataFrame]) -> None:
        tables["facilities"].loc[tables["facilities"]["facility_id"] == "board", "name"] = name
        tables["facilities"].loc[tables["facilities"]["facility_id"] == "cement", "facility_id"] = "cem[/]ent"
        for column in ("facility_id",):
            tables["flows"].loc[tables["flows"][column] == "cement", column] = "cem[/]ent"
    folder = tiny_copy(edit)
    args: list[object] = [command, folder]
    if command != "check":
        args += ["--out", tmp_path / "out", "--private"]
    if command == "partners":
        args += ["--flow", "power_gypsum"]
    if command == "run":
        args += ["--no-pngs"]
    result = _cli(*args)
    assert result.exit_code == 0, result.output
    # Markup of the program's own is rendered, not printed (the data's own brackets are printed as they are).
    rest = result.output.replace("cem[/]ent", "").replace(name, "")
    assert "[green]" not in rest and "[yellow]" not in rest and "[/]" not in rest
    if command in ("balance", "optimise", "resilience"):
        assert "cem[/]ent" in result.output
