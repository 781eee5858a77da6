"""Reading region files never misreads silently, never crashes, never hangs: one test per failure a tester
found (decimal points in semicolon files, swapped coordinates, look-alike ids, mixed encodings, empty required
text, unknown columns, virgin material outside its own bound, offset units, non-UTF-8 and alias-bomb YAML,
reference paths outside the region, sources in workbooks and GeoPackages, the starter region)."""

from __future__ import annotations

import os
import shutil
import unicodedata
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from symbiosis.cli import app
from symbiosis.errors import InputError
from symbiosis.inputs import load_region
from tests.conftest import REPO, TEST_DATA, TINY, deadline, load_test_region

KALUNDBORG = REPO / "data" / "regions" / "kalundborg"
CLI_ENV = {"SYMBIOSIS_DATA": str(TEST_DATA), "SYMBIOSIS_MODELS": str(TEST_DATA / "models")}




def _problems(folder: Path, **kwargs: object) -> list:
    with pytest.raises(InputError) as info:
        load_test_region(folder) if not kwargs else load_region(folder, **kwargs)  # type: ignore[arg-type]
    return info.value.problems


def _one(problems: list, **expected: object):
    hits = [p for p in problems if all(getattr(p, k) == v for k, v in expected.items())]
    assert hits, f"no problem with {expected} among:\n" + "\n".join(str(p) for p in problems)
    return hits[0]


def _cli(*args: str, env: dict[str, str] | None = None):
    result = CliRunner().invoke(app, list(args), env=CLI_ENV if env is None else env)
    # an exception other than the typer exit is a crash, even if CliRunner hides its traceback
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    return result


def _write(folder: Path, name: str, text: str, encoding: str = "utf-8") -> None:
    (folder / name).write_bytes(text.encode(encoding))


# ------------------------------------------------------------------ 1. decimal points in a ';' file


def test_semicolon_file_with_decimal_points_is_read_as_written(tiny_copy):
    folder = tiny_copy()
    _write(folder, "quality.csv", "flow_id;parameter;value;unit;bound;virgin_value\n"
                                  "cement_clay;chloride;0.005;%;max;0.002\n"
                                  "power_gypsum;purity;96.5;%;;\n"
                                  "board_gypsum;purity;90;%;min;\n")
    quality = load_test_region(folder).quality.set_index(["flow_id", "parameter"])
    assert quality.at[("cement_clay", "chloride"), "value"] == pytest.approx(0.005)  # was read as 5
    assert quality.at[("cement_clay", "chloride"), "virgin_value"] == pytest.approx(0.002)  # was read as 2
    assert quality.at[("power_gypsum", "purity"), "value"] == pytest.approx(96.5)


def test_three_decimals_follow_the_files_convention(tiny_copy):
    # 1.250 alone could be 1250 or 1.25: the other numbers of the file say which.
    folder = tiny_copy()
    _write(folder, "quality.csv", "flow_id;parameter;value;unit;bound;virgin_value\n"
                                  "cement_clay;chloride;1.250;%;max;0.5\n"
                                  "power_gypsum;purity;96;%;;\n")
    assert load_test_region(folder).quality.set_index("flow_id").at["cement_clay", "value"] == pytest.approx(1.25)
    _write(folder, "quality.csv", "flow_id;parameter;value;unit;bound;virgin_value\n"
                                  "cement_clay;chloride;1.250;%;max;0,5\n"
                                  "power_gypsum;purity;96;%;;\n")
    assert load_test_region(folder).quality.set_index("flow_id").at["cement_clay", "value"] == pytest.approx(1250)


def test_an_ambiguous_number_with_nothing_to_decide_it_is_refused(tiny_copy):
    folder = tiny_copy()
    _write(folder, "quality.csv", "flow_id;parameter;value;unit;bound;virgin_value\n"
                                  "cement_clay;chloride;1.250;%;max;\n"
                                  "power_gypsum;purity;96;%;;\n")
    problem = _one(_problems(folder), row=2, column="value")
    assert "ambiguous" in problem.message and problem.found == "1.250"
    assert "1250" in (problem.fix or "") and "1,250" in (problem.fix or "")


def test_decimal_comma_and_point_mixed_in_one_column_is_refused(tiny_copy):
    folder = tiny_copy()
    _write(folder, "quality.csv", "flow_id;parameter;value;unit;bound;virgin_value\n"
                                  "cement_clay;chloride;0,1;%;max;\n"
                                  "power_gypsum;purity;96,5;%;;\n"
                                  "board_gypsum;purity;90.5;%;min;\n")
    problem = _one(_problems(folder), row=4, column="value")
    assert "mixed" in problem.message


def test_european_thousands_dots_still_read(tiny_copy):
    folder = tiny_copy()
    frame = pd.read_csv(folder / "flows.csv", dtype=str, keep_default_na=False)
    frame.loc[frame["flow_id"] == "power_gypsum", "amount"] = "20.000"
    frame.loc[frame["flow_id"] == "cement_clay", "max_secondary_share"] = "0,5"
    frame.loc[frame["flow_id"] == "board_gypsum", "amount"] = "1.234.567"
    (folder / "flows.csv").write_text(frame.to_csv(sep=";", index=False))
    flows = load_test_region(folder).flows.set_index("flow_id")
    assert flows.at["power_gypsum", "amount_t_per_yr"] == 20_000
    assert flows.at["board_gypsum", "amount_t_per_yr"] == 1_234_567
    assert flows.at["cement_clay", "max_secondary_share"] == 0.5


# ------------------------------------------------------------------------ 2. swapped coordinates


def _swap_columns(folder: Path) -> None:
    frame = pd.read_csv(folder / "facilities.csv", dtype=str, keep_default_na=False)
    frame = frame.rename(columns={"lat": "lon", "lon": "lat"})
    frame.to_csv(folder / "facilities.csv", index=False)


def test_lat_and_lon_swapped_for_every_facility_is_an_error(tiny_copy):
    folder = tiny_copy()
    _swap_columns(folder)
    problem = _one(_problems(folder), column="lat", row=2)
    assert "swapped for every facility" in problem.message


def test_kalundborg_with_swapped_columns_is_refused_and_as_shipped_loads(tmp_path):
    load_region(KALUNDBORG)  # no false positive on the shipped region
    folder = tmp_path / "kalundborg"
    shutil.copytree(KALUNDBORG, folder)
    _swap_columns(folder)
    with pytest.raises(InputError) as info:
        load_region(folder)
    assert any("swapped for every facility" in p.message for p in info.value.problems)


# ---------------------------------------------------------------------------- 3. look-alike ids


def test_ids_differing_only_by_case_are_refused_naming_both_rows(tiny_copy):
    def edit(t):
        t["facilities"].loc[3, "facility_id"] = "Power"
    problem = _one(_problems(tiny_copy(edit)), column="facility_id", row=5)
    assert "case" in problem.message and "row 2" in (problem.expected or "") and "power" in (problem.expected or "")


def test_zero_width_space_in_an_id_is_refused(tiny_copy):
    def edit(t):
        t["flows"].loc[0, "flow_id"] = "power_gypsum\u200b"
    problem = _one(_problems(tiny_copy(edit)), column="flow_id", row=2)
    assert "U+200B" in problem.message


def test_unicode_spaces_and_normal_forms_do_not_make_new_ids(tiny_copy, tiny_region):
    decomposed = unicodedata.normalize("NFD", "café")
    def edit(t):
        t["facilities"].loc[1, "facility_id"] = "café"  # composed é
        t["flows"]["facility_id"] = t["flows"]["facility_id"].replace({"board": decomposed + "\u00a0"})
    region = load_test_region(tiny_copy(edit))
    assert set(region.flows["facility_id"]) >= {"café"}
    assert len(region.facilities) == len(tiny_region.facilities)
    assert len(region.flows) == len(tiny_region.flows)


def test_an_id_in_other_case_gets_a_suggestion(tiny_copy):
    def edit(t):
        t["flows"].loc[0, "facility_id"] = "POWER"
    problem = _one(_problems(tiny_copy(edit)), column="facility_id", row=2)
    assert "'power'" in (problem.fix or "")


# ---------------------------------------------------------------------------- 4. mixed encodings


def test_one_latin1_byte_in_a_utf8_file_is_refused_with_its_row(tiny_copy):
    folder = tiny_copy()
    lines = (folder / "facilities.csv").read_text(encoding="utf-8").splitlines()
    lines[1] = lines[1].replace("Power station", "Asnæs power station")
    data = ("\n".join(lines) + "\n").encode("utf-8").replace(b"Plasterboard plant", b"Gipsv\xe6rk plant")
    (folder / "facilities.csv").write_bytes(data)
    problem = _one(_problems(folder), row=3)
    assert "mixed text encodings" in problem.message and problem.column == "name" and problem.found == "byte 0xe6"


def test_a_windows_1252_file_is_read_with_a_warning(tiny_copy):
    folder = tiny_copy()
    text = (folder / "facilities.csv").read_text().replace("Power station", "Asnæs power station")
    (folder / "facilities.csv").write_bytes(text.encode("cp1252"))
    region = load_test_region(folder)
    assert region.facilities.set_index("facility_id").at["power", "name"] == "Asnæs power station"
    assert any("Windows-1252" in w and "facilities.csv" in w for w in region.warnings)


def test_utf16_with_bom_is_read(tiny_copy, tiny_region):
    folder = tiny_copy()
    (folder / "flows.csv").write_bytes((folder / "flows.csv").read_text().encode("utf-16"))
    region = load_test_region(folder)
    pd.testing.assert_frame_equal(region.flows.drop(columns="origin"), tiny_region.flows.drop(columns="origin"))


# ---------------------------------------------------------------------------- 5. empty required text


@pytest.mark.parametrize(("table", "column", "row"), [("facilities", "name", 3), ("flows", "material", 2),
                                                     ("flows", "unit", 2), ("quality", "unit", 2)])
def test_an_empty_required_text_cell_is_an_error(tiny_copy, table, column, row):
    def edit(t):
        t[table].loc[row - 2, column] = ""
    problem = _one(_problems(tiny_copy(edit)), column=column, row=row)
    assert "required" in problem.message


# ---------------------------------------------------------------------------- 6. unknown columns


@pytest.mark.parametrize(("table", "column", "misspelt", "suggestion"), [
    ("facilities", "confidential", "confidental", "confidential"),
    ("flows", "max_secondary_share", "max_secundary_share", "max_secondary_share"),
    ("quality", "virgin_value", "virgin_valeu", "virgin_value"),
])
def test_a_misspelt_header_is_an_error_with_a_suggestion(tiny_copy, table, column, misspelt, suggestion):
    def edit(t):
        t[table] = t[table].rename(columns={column: misspelt})
    problem = _one(_problems(tiny_copy(edit)), column=misspelt, row=1)
    assert problem.message == "unknown column" and f"'{suggestion}'" in (problem.fix or "")


def test_headers_match_without_case_or_surrounding_spaces(tiny_copy, tiny_region):
    def edit(t):
        t["facilities"] = t["facilities"].rename(columns={"confidential": "Confidential", "name": "name "})
        t["flows"] = t["flows"].rename(columns={"amount": " Amount"})
    region = load_test_region(tiny_copy(edit))
    assert region.facilities.set_index("facility_id").at["cement", "confidential"]  # was silently dropped
    pd.testing.assert_frame_equal(region.facilities, tiny_region.facilities)
    pd.testing.assert_frame_equal(region.flows.drop(columns="origin"), tiny_region.flows.drop(columns="origin"))


def test_an_unknown_column_in_arcs_and_in_a_reference_override(tiny_copy):
    folder = tiny_copy()
    _write(folder, "arcs.csv", "supply_facility,demand_facility,distance_km,cost_per_tonne\npower,board,3,1\n")
    _write(folder, "fates.csv", "fate_id,name,kind,cost_per_t,co2e_per_t\nlandfill,Landfill,landfill,70,0.01\n")
    (folder / "region.yaml").write_text((TINY / "region.yaml").read_text() + "reference:\n  fates: fates.csv\n")
    problems = _problems(folder)
    assert "'cost_per_t'" in (_one(problems, column="cost_per_tonne").fix or "")
    assert "'co2e_t_per_t'" in (_one(problems, column="co2e_per_t").fix or "")


def test_a_column_repeated_after_normalising_is_an_error(tiny_copy):
    folder = tiny_copy()
    text = (folder / "facilities.csv").read_text().splitlines()
    text = [text[0] + ",Name", *[line + ",x" for line in text[1:]]]
    (folder / "facilities.csv").write_text("\n".join(text) + "\n")
    problem = _one(_problems(folder), column="name", row=1)
    assert "twice" in problem.message


def test_shipped_regions_and_reference_tables_pass_the_header_check():
    assert len(load_region(KALUNDBORG).facilities) == 13  # the 2018 biogas plant is a scenario, not 2010 data
    assert len(load_test_region(TINY).facilities) == 4


# ------------------------------------------------------------------------ 7. virgin outside its bound


def test_virgin_material_above_its_own_max_is_refused_at_check(tiny_copy):
    def edit(t):
        t["quality"].loc[0, "virgin_value"] = "0.5"  # cement_clay chloride max 0.1
    folder = tiny_copy(edit)
    problem = _one(_problems(folder), column="virgin_value", row=2)
    assert "cement_clay" in problem.message and "chloride" in problem.message
    assert problem.found is not None and "0.5" in problem.found and "max 0.1" in problem.found
    result = _cli("check", str(folder))
    assert result.exit_code == 1 and "virgin" in result.output


def test_virgin_material_below_its_own_min_is_refused(tiny_copy):
    def edit(t):
        t["quality"].loc[2, "virgin_value"] = "80"  # board_gypsum purity min 90
    problem = _one(_problems(tiny_copy(edit)), column="virgin_value", row=4)
    assert "below the min" in problem.message


# ------------------------------------------------------------------------------ 8. offset units


def test_degc_as_a_flow_unit_is_a_located_problem(tiny_copy):
    def edit(t):
        t["flows"].loc[0, "unit"] = "degC"
    folder = tiny_copy(edit)
    problem = _one(_problems(folder), column="unit", row=2)
    assert "offset" in problem.message
    assert _cli("check", str(folder)).exit_code == 1


def test_degc_as_an_activity_unit_is_a_located_problem(tiny_copy):
    def edit(t):
        t["facilities"].loc[0, "activity_unit"] = "degC"
    _one(_problems(tiny_copy(edit)), column="activity_unit", row=2)


def test_quality_in_kelvin_and_celsius_is_converted_with_the_offset(tiny_copy):
    def edit(t):
        t["quality"] = pd.concat([t["quality"], pd.DataFrame([
            {"flow_id": "power_gypsum", "parameter": "temperature", "value": "30", "unit": "degC", "bound": "",
             "virgin_value": ""},
            {"flow_id": "board_gypsum", "parameter": "temperature", "value": "313.15", "unit": "K", "bound": "max",
             "virgin_value": "293.15"}])], ignore_index=True)
    quality = load_test_region(tiny_copy(edit)).quality
    limit = quality[(quality["flow_id"] == "board_gypsum") & (quality["parameter"] == "temperature")].iloc[0]
    assert limit["unit"] == "degC"
    assert limit["value"] == pytest.approx(40.0) and limit["virgin_value"] == pytest.approx(20.0)


def test_a_unit_that_would_never_finish_evaluating_is_refused(tiny_copy):
    def edit(t):
        t["flows"].loc[0, "unit"] = "9**9**9*t"
    with deadline(20):
        problem = _one(_problems(tiny_copy(edit)), column="unit", row=2)
    assert "power" in problem.message


# ------------------------------------------------------------------------------ 9-10. region.yaml


def test_a_non_utf8_region_yaml_is_a_located_error(tiny_copy):
    folder = tiny_copy()
    (folder / "region.yaml").write_bytes("name: Kalundborg\ndescription: Asnæs\n".encode("cp1252"))
    problem = _one(_problems(folder), row=2)
    assert problem.file.endswith("region.yaml") and "UTF-8" in problem.message
    result = _cli("check", str(folder))
    assert result.exit_code == 1 and "region.yaml" in result.output


BILLION_LAUGHS = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
name: *g
"""


def test_a_yaml_alias_bomb_is_refused_quickly(tiny_copy):
    folder = tiny_copy()
    (folder / "region.yaml").write_text(BILLION_LAUGHS)
    with deadline(20):
        result = _cli("check", str(folder))
    assert result.exit_code == 1
    assert "aliases" in result.output and len(result.output) < 5_000


def test_a_huge_region_yaml_is_refused(tiny_copy):
    folder = tiny_copy()
    (folder / "region.yaml").write_text("name: Tiny\ndescription: " + "x" * (2 * 1024 * 1024) + "\n")
    problem = _one(_problems(folder), message="the file is too large")
    assert problem.file.endswith("region.yaml")


# ---------------------------------------------------------------------------- 11. reference paths


def _with_reference(folder: Path, fates: str) -> None:
    (folder / "region.yaml").write_text((TINY / "region.yaml").read_text() + f"reference:\n  fates: {fates}\n")


def test_a_reference_path_to_a_device_is_refused_without_reading_it(tiny_copy):
    folder = tiny_copy()
    _with_reference(folder, "/dev/zero")
    with deadline(20):
        problem = _one(_problems(folder), column="reference.fates")
    assert "inside the region" in problem.message


def test_a_reference_path_never_echoes_the_environment(tiny_copy):
    folder = tiny_copy()
    _with_reference(folder, "/proc/self/environ")
    secret = "symbiosis-test-secret-7d1f"
    result = _cli("check", str(folder), env={**CLI_ENV, "SYMBIOSIS_TEST_SECRET": secret})
    assert result.exit_code == 1 and "inside the region" in result.output
    assert secret not in result.output


def test_a_symlink_out_of_the_region_and_a_parent_path_are_refused(tiny_copy):
    folder = tiny_copy()
    os.symlink("/dev/zero", folder / "fates.csv")
    _with_reference(folder, "fates.csv")
    with deadline(20):
        _one(_problems(folder), column="reference.fates")
    _with_reference(folder, "../../../../etc/passwd")
    _one(_problems(folder), column="reference.fates")


def test_a_fifo_instead_of_a_table_is_refused_without_blocking(tiny_copy):
    folder = tiny_copy()
    (folder / "arcs.csv").unlink(missing_ok=True)
    os.mkfifo(folder / "arcs.csv")
    with deadline(20):
        problem = _one(_problems(folder), message="not a regular file")
    assert problem.file.endswith("arcs.csv")


def test_a_reference_override_beyond_the_size_cap_is_refused(tiny_copy, monkeypatch):
    import symbiosis.reference

    folder = tiny_copy()
    shutil.copy(TEST_DATA / "reference" / "fates.csv", folder / "fates.csv")
    _with_reference(folder, "fates.csv")
    monkeypatch.setattr(symbiosis.reference, "MAX_OVERRIDE_BYTES", 100)
    problem = _one(_problems(folder), message="the file is too large")
    assert problem.file.endswith("fates.csv")


def test_error_messages_quote_only_a_short_escaped_snippet(tiny_copy):
    def edit(t):
        t["flows"].loc[0, "amount"] = "x" * 5000 + "\x1b[31m"
    result = _cli("check", str(tiny_copy(edit)))
    assert result.exit_code == 1
    assert "x" * 200 not in result.output and "\x1b[31m" not in result.output


# --------------------------------------------------------------------- 12. sources in other containers


SETTINGS = pd.DataFrame({"key": ["name", "currency", "max_distance_km"], "value": ["Tiny", "EUR", 50]})
SOURCES = pd.DataFrame({"source_id": ["weighbridge", "invoice"],
                        "citation": ["Weighbridge records 2024", "Supplier invoices 2024"]})


def test_sources_sheet_in_a_workbook(tmp_path):
    workbook = tmp_path / "tiny.xlsx"
    with pd.ExcelWriter(workbook) as writer:
        SETTINGS.to_excel(writer, sheet_name="region", index=False)
        SOURCES.to_excel(writer, sheet_name="sources", index=False)
        for name in ("facilities", "flows", "quality"):
            pd.read_csv(TINY / f"{name}.csv", dtype=str, keep_default_na=False).to_excel(
                writer, sheet_name=name, index=False)
    region = load_test_region(workbook)
    assert region.settings.sources == dict(zip(SOURCES["source_id"], SOURCES["citation"], strict=True))


def test_an_unknown_sheet_is_an_error(tmp_path):
    workbook = tmp_path / "tiny.xlsx"
    with pd.ExcelWriter(workbook) as writer:
        SETTINGS.to_excel(writer, sheet_name="region", index=False)
        SOURCES.to_excel(writer, sheet_name="source", index=False)
        for name in ("facilities", "flows"):
            pd.read_csv(TINY / f"{name}.csv", dtype=str, keep_default_na=False).to_excel(
                writer, sheet_name=name, index=False)
    problem = _one(_problems(workbook), message="unknown sheet")
    assert "'sources'" in (problem.fix or "")


def test_sources_layer_in_a_geopackage(tmp_path):
    import geopandas as gpd

    gpkg = tmp_path / "tiny.gpkg"
    facilities = pd.read_csv(TINY / "facilities.csv", dtype=str, keep_default_na=False)
    points = gpd.GeoDataFrame(facilities.drop(columns=["lat", "lon"]), crs="EPSG:4326",
                              geometry=gpd.points_from_xy(facilities["lon"].astype(float),
                                                          facilities["lat"].astype(float)))
    points.to_file(gpkg, layer="facilities", driver="GPKG")
    for name, frame in (("flows", pd.read_csv(TINY / "flows.csv", dtype=str, keep_default_na=False)),
                        ("region", SETTINGS.astype(str)), ("sources", SOURCES)):
        gpd.GeoDataFrame(frame, geometry=[None] * len(frame), crs="EPSG:4326").to_file(gpkg, layer=name, driver="GPKG")
    region = load_test_region(gpkg)
    assert region.settings.sources["weighbridge"] == "Weighbridge records 2024"


# --------------------------------------------------------------------------------------- 13. init


def test_init_writes_a_starter_region_that_check_accepts(tmp_path):
    folder = tmp_path / "new_region"
    result = _cli("init", str(folder), env={})
    assert result.exit_code == 0, result.output
    assert {p.name for p in folder.iterdir()} == {"region.yaml", "facilities.csv", "flows.csv", "quality.csv"}
    for name in ("facilities.csv", "flows.csv", "quality.csv"):
        assert len(pd.read_csv(folder / name)) == 2
    yaml_text = (folder / "region.yaml").read_text()
    for key in ("name", "description", "period", "year", "currency", "max_distance_km", "max_distance_cap_km",
                "circuity", "transport_cost_per_tkm", "transport_co2_per_tkm", "carbon_price", "internal_reuse",
                "balance_tolerance", "reference", "sources"):
        line = next(line for line in yaml_text.splitlines() if line.strip().startswith(f"{key}:"))
        assert "#" in line, f"{key} has no comment"
    checked = _cli("check", str(folder), env={})
    assert checked.exit_code == 0, checked.output
    region = load_region(folder)
    assert len(region.facilities) == 2 and len(region.flows) == 2 and len(region.quality) == 2
    again = _cli("init", str(folder), env={})
    assert again.exit_code == 1 and "exists already" in again.output


# --------------------------------------------------------------------------------------- 14. quality units


def test_a_quality_unit_that_is_no_unit_is_refused_at_its_cell(tmp_path):
    """A unit typed wrong on a parameter no other row has (nothing to convert it to) used to pass unnoticed;
    now it is an error at its cell, and one that converts to the parameter's other units still loads."""
    folder = tmp_path / "kalundborg"
    shutil.copytree(REPO / "data" / "regions" / "kalundborg", folder)
    with (folder / "quality.csv").open("a", encoding="utf-8") as handle:
        handle.write("asnaes_fly_ash,mercury,0.3,mg/kgg,,,typed wrong\n")
    with pytest.raises(InputError) as caught:
        load_region(folder)
    [problem] = caught.value.problems
    assert (Path(problem.file).name, problem.row, problem.column, problem.found) == (
        "quality.csv", 24, "unit", "mg/kgg")
    text = (folder / "quality.csv").read_text(encoding="utf-8").replace("mg/kgg", "ppm")
    (folder / "quality.csv").write_text(text, encoding="utf-8")
    mercury = load_region(folder).quality.query("parameter == 'mercury'")
    assert list(mercury["unit"]) == ["ppm"] and list(mercury["value"]) == [0.3]
