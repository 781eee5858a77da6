"""Loading regions: the containers agree, the dialects European spreadsheets export are read, and every
bad-input class gets a located error (file, row, column, found, expected)."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from symbiosis.cli import app
from symbiosis.errors import InputError
from tests.conftest import TINY, load_test_region

# --------------------------------------------------------------------------------------- good input


def test_tiny_region_loads_with_converted_units(tiny_region):
    flows = tiny_region.flows.set_index("flow_id")
    assert flows.at["power_gypsum", "amount_t_per_yr"] == 20_000
    assert flows.at["power_gypsum", "price_per_t"] == 60
    assert flows.at["board_stock", "direction"] == "stock"
    assert flows.at["board_stock", "data_quality"] == "estimated"
    assert flows.at["board_gypsum", "data_quality"] == "measured"
    assert tiny_region.facilities.set_index("facility_id").at["cement", "confidential"]
    assert tiny_region.facilities["sector"].tolist() == ["35.11", "23.62", "23.51", "23.51"]


def test_process_model_fills_what_measurements_do_not_cover(tiny_region):
    flows = tiny_region.flows
    power = flows[flows["facility_id"] == "power"].set_index("material")
    # 1,000,000 MWh/yr x 0.4 t coal/MWh
    assert power.at["coal", "amount_t_per_yr"] == pytest.approx(400_000)
    assert power.at["coal", "data_quality"] == "modelled"
    # 0.1 m3/MWh of water at 1.0 t/m3
    assert power.at["water", "amount_t_per_yr"] == pytest.approx(100_000)
    assert power.at["electricity", "amount_mwh_per_yr"] == pytest.approx(1_000_000)
    # the measured gypsum (20,000 t) overrides the modelled 0.02 t/MWh, and appears once
    assert (flows["material"][flows["facility_id"] == "power"] == "fgd_gypsum").sum() == 1
    assert power.at["fgd_gypsum", "amount_t_per_yr"] == 20_000
    assert power.at["fgd_gypsum", "data_quality"] == "measured"
    # model qualities travel with the modelled flow
    q = tiny_region.quality
    assert q[(q["flow_id"] == "power.model.out.fly_ash") & (q["parameter"] == "chloride")]["value"].iloc[0] == 0.05


def test_semicolon_decimal_comma_windows_1252(tiny_copy):
    folder = tiny_copy()
    frame = pd.read_csv(folder / "flows.csv", dtype=str, keep_default_na=False)
    frame.loc[frame["flow_id"] == "power_gypsum", "amount"] = "20.000,5"
    frame.loc[frame["flow_id"] == "power_gypsum", "price"] = "60,25"
    frame.loc[frame["flow_id"] == "power_gypsum", "note"] = "Asnæs gips – målt på brovægt"
    (folder / "flows.csv").write_bytes(frame.to_csv(sep=";", index=False).encode("cp1252"))
    region = load_test_region(folder)
    flow = region.flows.set_index("flow_id").loc["power_gypsum"]
    assert flow["amount_t_per_yr"] == pytest.approx(20_000.5)
    assert flow["price_per_t"] == pytest.approx(60.25)
    assert flow["note"] == "Asnæs gips – målt på brovægt"


def test_decimal_comma_in_a_comma_file_is_refused(tiny_copy):
    folder = tiny_copy()
    text = (folder / "flows.csv").read_text().replace("power_gypsum,power,out,by_product,fgd_gypsum,20000",
                                                      'power_gypsum,power,out,by_product,fgd_gypsum,"20000,5"')
    (folder / "flows.csv").write_text(text)
    with pytest.raises(InputError) as info:
        load_test_region(folder)
    problem = info.value.problems[0]
    assert (problem.row, problem.column, problem.found) == (2, "amount", "20000,5")
    assert "ambiguous" in (problem.fix or "")


def test_excel_workbook_gives_the_same_region(tiny_region, tmp_path):
    workbook = tmp_path / "tiny.xlsx"
    with pd.ExcelWriter(workbook) as writer:
        settings = pd.DataFrame({"key": ["name", "description", "period", "currency", "max_distance_km", "circuity",
                                         "transport_cost_per_tkm", "transport_co2_per_tkm", "carbon_price",
                                         "internal_reuse"],
                                 "value": ["Tiny", "A four-facility test region with invented figures", "year", "EUR",
                                           50, 1.3, 0.10, 0.000062, 0, True]})
        settings.to_excel(writer, sheet_name="region", index=False)
        for name in ("facilities", "flows", "quality"):
            pd.read_csv(TINY / f"{name}.csv", dtype=str, keep_default_na=False).to_excel(
                writer, sheet_name=name, index=False)
    from_excel = load_test_region(workbook)
    assert from_excel.settings == tiny_region.settings
    pd.testing.assert_frame_equal(from_excel.facilities, tiny_region.facilities)
    columns = [c for c in tiny_region.flows.columns if c != "origin"]
    pd.testing.assert_frame_equal(from_excel.flows[columns], tiny_region.flows[columns])
    pd.testing.assert_frame_equal(from_excel.quality, tiny_region.quality)
    assert from_excel.flows["origin"].iloc[0] == f"{workbook} [sheet flows]:2"


def test_excel_numbers_stored_as_numbers_keep_their_value(tmp_path, tiny_region):
    # A spreadsheet that stores amounts as numbers (not text) gives the same floats.
    workbook = tmp_path / "numeric.xlsx"
    flows = pd.read_csv(TINY / "flows.csv", keep_default_na=False)
    with pd.ExcelWriter(workbook) as writer:
        pd.DataFrame({"key": ["name", "max_distance_km"], "value": ["Tiny", 50]}).to_excel(
            writer, sheet_name="region", index=False)
        pd.read_csv(TINY / "facilities.csv", dtype=str, keep_default_na=False).to_excel(
            writer, sheet_name="facilities", index=False)
        flows.to_excel(writer, sheet_name="flows", index=False)
    region = load_test_region(workbook)
    assert region.flows.set_index("flow_id").at["cement_clay", "amount_t_per_yr"] == 100_000


def test_facilities_from_a_geopackage_layer(tiny_region, tiny_copy):
    import geopandas as gpd

    folder = tiny_copy()
    frame = pd.read_csv(folder / "facilities.csv", dtype=str, keep_default_na=False)
    points = gpd.GeoDataFrame(frame.drop(columns=["lat", "lon"]),
                              geometry=gpd.points_from_xy(frame["lon"].astype(float), frame["lat"].astype(float)),
                              crs="EPSG:4326").to_crs(25832)  # stored projected; read back in WGS84
    points.to_file(folder / "facilities.gpkg", layer="facilities", driver="GPKG")
    (folder / "facilities.csv").unlink()
    region = load_test_region(folder)
    assert region.facilities["facility_id"].tolist() == tiny_region.facilities["facility_id"].tolist()
    assert region.facilities["lat"].to_numpy() == pytest.approx(tiny_region.facilities["lat"].to_numpy(), abs=1e-9)
    assert region.facilities["lon"].to_numpy() == pytest.approx(tiny_region.facilities["lon"].to_numpy(), abs=1e-9)


# ---------------------------------------------------------------------------------------- bad input


def _problems(folder: Path) -> list:
    with pytest.raises(InputError) as info:
        load_test_region(folder)
    return info.value.problems


def _one(problems: list, **expected: object):
    hits = [p for p in problems if all(getattr(p, k) == v for k, v in expected.items())]
    assert hits, f"no problem with {expected} among:\n" + "\n".join(str(p) for p in problems)
    return hits[0]


def test_missing_required_column(tiny_copy):
    def edit(t):
        t["flows"] = t["flows"].drop(columns=["unit"])
    folder = tiny_copy(edit)
    problem = _one(_problems(folder), column="unit")
    assert problem.file.endswith("flows.csv") and problem.row == 1
    assert "missing" in problem.message


def test_unknown_facility_in_flows(tiny_copy):
    def edit(t):
        t["flows"].loc[2, "facility_id"] = "nowhere"
    problem = _one(_problems(tiny_copy(edit)), column="facility_id", row=4)
    assert problem.found == "nowhere" and "facilities" in (problem.expected or "")


def test_unknown_material(tiny_copy):
    def edit(t):
        t["flows"].loc[0, "material"] = "unobtainium"
    problem = _one(_problems(tiny_copy(edit)), column="material", row=2)
    assert problem.found == "unobtainium"


@pytest.mark.parametrize(("unit", "fragment"), [("kt", "knot"), ("parsec", "expected a mass"), ("widgets", "unknown")])
def test_unknown_or_mismatched_unit(tiny_copy, unit, fragment):
    def edit(t):
        t["flows"].loc[0, "unit"] = unit
    problem = _one(_problems(tiny_copy(edit)), column="unit", row=2)
    assert fragment in problem.message and problem.found == unit


def test_volume_without_density(tiny_copy):
    def edit(t):
        t["flows"].loc[len(t["flows"])] = {**t["flows"].iloc[0].to_dict(), "flow_id": "power_co2_volume",
                                            "category": "emission", "material": "co2", "unit": "m3", "fate": "",
                                            "price": "", "price_unit": ""}
    problem = _one(_problems(tiny_copy(edit)), column="unit")
    assert "density" in problem.message


@pytest.mark.parametrize(("amount", "message"), [("-5", "negative amount"), ("", "a value is required"),
                                                 ("NaN", "not a finite number"), ("abc", "not a number")])
def test_negative_or_missing_amount(tiny_copy, amount, message):
    def edit(t):
        t["flows"].loc[0, "amount"] = amount
    problem = _one(_problems(tiny_copy(edit)), column="amount", row=2)
    assert message in problem.message


def test_stock_change_may_be_negative(tiny_copy):
    def edit(t):
        t["flows"].loc[t["flows"]["flow_id"] == "board_stock", "amount"] = "-1000"
    region = load_test_region(tiny_copy(edit))
    assert region.flows.set_index("flow_id").at["board_stock", "amount_t_per_yr"] == -1000


def test_latitude_out_of_range_suggests_swap(tiny_copy):
    def edit(t):
        t["facilities"].loc[1, ["lat", "lon"]] = ["11.10", "195.67"]
    problems = _problems(tiny_copy(edit))
    _one(problems, column="lon", row=3)
    def edit2(t):
        t["facilities"].loc[1, ["lat", "lon"]] = ["100.5", "55.6"]
    problem = _one(_problems(tiny_copy(edit2)), column="lat", row=3)
    assert "swapped" in (problem.fix or "")


def test_swapped_coordinates_within_range_are_caught(tiny_copy):
    def edit(t):
        t["facilities"].loc[1, ["lat", "lon"]] = ["11.10", "55.67"]  # a point in the Indian Ocean
    problem = _one(_problems(tiny_copy(edit)), column="lat", row=3)
    assert "swapped" in problem.message


def test_duplicate_ids(tiny_copy):
    def edit(t):
        t["flows"].loc[1, "flow_id"] = "power_gypsum"
        t["facilities"].loc[3, "facility_id"] = "cement"
    problems = _problems(tiny_copy(edit))
    flow_dup = _one(problems, column="flow_id", row=3)
    assert "row 2" in (flow_dup.expected or "")
    _one(problems, column="facility_id", row=5)


def test_empty_file(tiny_copy):
    folder = tiny_copy()
    (folder / "quality.csv").write_text("")
    problem = _one(_problems(folder), message="the file is empty")
    assert problem.file.endswith("quality.csv")


def test_yaml_syntax_error(tiny_copy):
    folder = tiny_copy()
    (folder / "region.yaml").write_text("name: Tiny\ndefaults:\n  max_distance_km: [50\n  circuity: 1.3\n")
    problem = _one(_problems(folder), row=4, column="character 11")
    assert "YAML syntax error" in problem.message and "expected ',' or ']'" in problem.message


def test_unknown_key_in_region_yaml(tiny_copy):
    folder = tiny_copy()
    (folder / "region.yaml").write_text("name: Tiny\ndefaults:\n  max_distnace_km: 50\n")
    problem = _one(_problems(folder), message="unknown key")
    assert problem.column == "defaults.max_distnace_km"


def test_every_problem_is_reported_at_once(tiny_copy):
    def edit(t):
        t["flows"].loc[0, "material"] = "unobtainium"
        t["flows"].loc[1, "amount"] = "-3"
        t["facilities"].loc[0, "lat"] = "95"
        t["quality"].loc[0, "flow_id"] = "ghost"
    problems = _problems(tiny_copy(edit))
    assert {(p.column, p.row) for p in problems} >= {("material", 2), ("amount", 3), ("lat", 2), ("flow_id", 2)}


def test_price_without_unit_or_in_wrong_currency(tiny_copy):
    def edit(t):
        t["flows"].loc[0, "price_unit"] = ""
        t["flows"].loc[1, "price_unit"] = "DKK/t"
    problems = _problems(tiny_copy(edit))
    _one(problems, column="price_unit", row=2)
    assert "currency" in _one(problems, column="price_unit", row=3).message


def test_bad_nace_code_and_unknown_process_model(tiny_copy):
    def edit(t):
        t["facilities"].loc[1, "sector"] = "99.99"
        t["facilities"].loc[2, "process_model"] = "time_machine"
    problems = _problems(tiny_copy(edit))
    _one(problems, column="sector", row=3)
    _one(problems, column="process_model", row=4)


def test_cli_check_exits_nonzero_without_traceback(tiny_copy):
    def edit(t):
        t["flows"].loc[0, "material"] = "unobtainium"
    folder = tiny_copy(edit)
    data = Path(__file__).parent / "data"
    result = CliRunner().invoke(app, ["check", str(folder)],
                                env={"SYMBIOSIS_DATA": str(data), "SYMBIOSIS_MODELS": str(data / "models")})
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "row 2, column 'material': unknown material; found 'unobtainium'" in result.output


def test_no_row_is_lost(tiny_region):
    raw = pd.read_csv(TINY / "flows.csv", dtype=str, keep_default_na=False)
    measured = tiny_region.flows[tiny_region.flows["data_quality"] != "modelled"]
    assert sorted(measured["flow_id"]) == sorted(raw["flow_id"])
    assert not math.isnan(measured["amount_t_per_yr"].sum())
