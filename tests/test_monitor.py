"""``symbiosis monitor``: realised exchanges by year (realised.csv) against each year's optimum.

The two-year case is the tiny region (tests/tiny_by_hand.py solves its optimum by hand); the realised figures
below are priced by hand from the same per-tonne terms, never by the code under test.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from symbiosis.cli import app
from symbiosis.errors import InputError
from symbiosis.monitor import monitor, write_monitoring
from tests import tiny_by_hand as hand
from tests.conftest import REPO, TEST_DATA, TEST_MODELS, TEST_REFERENCE, TINY

ENV = {"SYMBIOSIS_DATA": str(TEST_DATA), "SYMBIOSIS_MODELS": str(TEST_MODELS)}
HEADER = "year,supply_facility,demand_facility,material,amount,unit,status,source\n"
TWO_YEARS = HEADER + (
    "2020,power,board,fgd_gypsum,15000,t,running,weighbridge 2020\n"
    "2020,power,far,fly_ash,10,kilotonne,running,invoice 2020\n"
    "2021,power,board,fgd_gypsum,0,t,stopped,letter of 2021\n"
    "2021,power,cement,fly_ash,20000,t,started,invoice 2021\n"
    "2021,power,board,fly_ash,100,t,running,site visit 2021\n"
)
# CO2e per tonne avoided, from the test reference tables: landfill 0.01 t/t (fates.csv), natural gypsum
# 0.02 and clay 0.01 t/t virgin (emission_factors.csv), road 0.000062 t per t·km.
CO2E_PER_T = {"board": 0.01 + 0.02 - hand.TRANSPORT_CO2_PER_TKM * hand.KM_GYPSUM,
              "cement": 0.01 + 0.9 * 0.01 - hand.TRANSPORT_CO2_PER_TKM * hand.KM_CEMENT,
              "far": 0.01 + 0.9 * 0.01 - hand.TRANSPORT_CO2_PER_TKM * hand.KM_FAR}


def region_with(tmp_path: Path, realised: str | None) -> Path:
    folder = tmp_path / "tiny"
    shutil.copytree(TINY, folder)
    if realised is not None:
        (folder / "realised.csv").write_text(realised, encoding="utf-8")
    return folder


def run(folder: Path):  # type: ignore[no-untyped-def]
    return monitor(folder, reference_dir=TEST_REFERENCE, models_directory=TEST_MODELS)


@pytest.fixture(scope="module")
def two_years(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    return run(region_with(tmp_path_factory.mktemp("two"), TWO_YEARS))


def test_realised_kpis_and_left_on_the_table_match_the_hand_figures(two_years) -> None:  # type: ignore[no-untyped-def]
    kpis = two_years.kpis.set_index("year")
    assert list(kpis.index) == [2020, 2021]
    realised_2020 = 15_000 * hand.SAVING_PER_T["board"] + 10_000 * hand.SAVING_PER_T["far"]
    realised_2021 = 20_000 * hand.SAVING_PER_T["cement"]  # gypsum stopped; fly ash -> board is no candidate
    optimum = hand.COST_BAU - hand.COST_OPTIMUM
    optimum_co2e = hand.CO2E_BAU - hand.CO2E_OPTIMUM
    assert kpis.at[2020, "realised_saving"] == pytest.approx(realised_2020, rel=1e-9)
    assert kpis.at[2021, "realised_saving"] == pytest.approx(realised_2021, rel=1e-9)
    assert kpis.at[2020, "realised_co2e_avoided_t"] == pytest.approx(
        15_000 * CO2E_PER_T["board"] + 10_000 * CO2E_PER_T["far"], rel=1e-9)
    assert kpis.at[2021, "realised_co2e_avoided_t"] == pytest.approx(20_000 * CO2E_PER_T["cement"], rel=1e-9)
    for year, realised in ((2020, realised_2020), (2021, realised_2021)):
        assert kpis.at[year, "optimum_saving"] == pytest.approx(optimum, rel=1e-9)
        assert kpis.at[year, "left_saving"] == pytest.approx(optimum - realised, rel=1e-9)
        assert kpis.at[year, "optimum_co2e_avoided_t"] == pytest.approx(optimum_co2e, rel=1e-9)
        assert kpis.at[year, "basis"] == "region data"
    assert kpis.at[2020, "realised_t_per_yr"] == pytest.approx(25_000)  # 10 kt converted to t
    assert kpis.at[2021, "realised_t_per_yr"] == pytest.approx(20_100)  # the stopped row counts nothing


def test_started_stopped_and_not_reported_are_detected(two_years) -> None:  # type: ignore[no-untyped-def]
    ex = two_years.exchanges
    change = {(r.year, r.demand_facility, r.material): r.change for r in ex.itertuples() if r.change}
    assert change == {
        (2020, "board", "fgd_gypsum"): "running", (2020, "far", "fly_ash"): "running",
        (2021, "board", "fgd_gypsum"): "stopped", (2021, "cement", "fly_ash"): "started",
        (2021, "far", "fly_ash"): "not_reported", (2021, "board", "fly_ash"): "started",
    }
    kpis = two_years.kpis.set_index("year")
    assert (kpis.at[2021, "n_started"], kpis.at[2021, "n_stopped"], kpis.at[2021, "n_not_reported"]) == (2, 1, 1)


def test_a_realised_exchange_that_is_no_candidate_says_why(two_years) -> None:  # type: ignore[no-untyped-def]
    ex = two_years.exchanges
    row = ex[(ex["year"] == 2021) & (ex["demand_facility"] == "board") & (ex["material"] == "fly_ash")].iloc[0]
    assert row["reason"] == "not_a_candidate"
    assert not row["in_optimum"]
    assert math.isnan(row["realised_saving"])
    kpis = two_years.kpis.set_index("year")
    assert kpis.at[2021, "n_not_candidates"] == 1 and kpis.at[2021, "n_realised_not_in_optimum"] == 1
    # the optimum's own exchanges are left on the table where nothing was realised
    far = ex[(ex["year"] == 2020) & (ex["demand_facility"] == "far")].iloc[0]
    assert far["optimum_amount"] == pytest.approx(hand.X_FAR, rel=1e-9)
    assert far["left_saving"] == pytest.approx(hand.SAVING_PER_T["far"] * (hand.X_FAR - 10_000), rel=1e-9)


def test_a_year_file_changes_that_years_optimum_only(tmp_path: Path) -> None:
    folder = region_with(tmp_path, TWO_YEARS)
    (folder / "years").mkdir()
    (folder / "years" / "2021.yaml").write_text(yaml.safe_dump({
        "name": "tiny_2021", "base": "..", "changes": [{"remove_facility": {"facility": "far"}}]}))
    result = run(folder)
    kpis = result.kpis.set_index("year")
    assert kpis.at[2021, "basis"] == "years/2021.yaml" and kpis.at[2020, "basis"] == "region data"
    # without far the fly ash beyond cement's 33,333 t capacity goes to landfill: the hand optimum less far's arc
    # (far's clay leaves BAU and optimum alike): the saving is the two remaining exchanges'
    assert kpis.at[2021, "optimum_saving"] == pytest.approx(
        hand.X_GYPSUM * hand.SAVING_PER_T["board"] + hand.X_CEMENT * hand.SAVING_PER_T["cement"], rel=1e-9)
    assert kpis.at[2020, "optimum_saving"] == pytest.approx(hand.COST_BAU - hand.COST_OPTIMUM, rel=1e-9)


@pytest.mark.parametrize(("row", "column", "message"), [
    ("2010.5,power,board,fgd_gypsum,1,t,running,x", "year", "not a year"),
    ("2010,nowhere,board,fgd_gypsum,1,t,running,x", "supply_facility", "unknown facility"),
    ("2010,power,board,unobtainium,1,t,running,x", "material", "unknown material"),
    ("2010,power,board,fgd_gypsum,-5,t,running,x", "amount", "negative"),
    ("2010,power,board,fgd_gypsum,1,t,maybe,x", "status", "unknown status"),
    ("2010,power,board,fgd_gypsum,1,MWh,running,x", "unit", "the unit is one of energy"),
    ("2010,power,board,fgd_gypsum,1,t,running,", "source", "needs its source"),
    ("2010,board,power,fgd_gypsum,1,t,running,x", "material", "no outgoing flow"),
])
def test_bad_rows_are_refused_with_file_row_and_column(tmp_path: Path, row: str, column: str, message: str) -> None:
    folder = region_with(tmp_path, HEADER + row + "\n")
    with pytest.raises(InputError) as caught:
        run(folder)
    hits = [p for p in caught.value.problems if p.file.endswith("realised.csv") and p.row == 2 and p.column == column]
    assert hits, caught.value
    assert message in str(hits[0]).lower() or message in hits[0].message


def test_duplicates_and_unknown_columns_are_refused(tmp_path: Path) -> None:
    folder = region_with(tmp_path, HEADER + "2020,power,board,fgd_gypsum,1,t,running,a\n"
                         "2020,power,board,fgd_gypsum,2,t,running,b\n")
    with pytest.raises(InputError) as caught:
        run(folder)
    (problem,) = caught.value.problems
    assert (problem.row, problem.column) == (3, "year") and "row 2" in (problem.expected or "")
    header = HEADER.replace("source", "sauce")
    folder = region_with(tmp_path / "b", header + "2020,power,board,fgd_gypsum,1,t,running,a\n")
    with pytest.raises(InputError, match="unknown column"):
        run(folder)


def test_cli_writes_the_monitor_folder_and_refuses_a_missing_table(tmp_path: Path) -> None:
    folder = region_with(tmp_path, TWO_YEARS)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["monitor", str(folder), "--out", str(out)], env=ENV)
    assert result.exit_code == 0, result.output
    assert {"monitor.csv", "monitor_exchanges.csv", "monitor.png", "monitor.html", "manifest.json"} <= {
        p.name for p in out.iterdir()}
    assert (out / "monitor.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert pd.read_csv(out / "monitor.csv")["year"].tolist() == [2020, 2021]
    bare = region_with(tmp_path / "bare", None)
    result = CliRunner().invoke(app, ["monitor", str(bare), "--out", str(tmp_path / "o2")], env=ENV)
    assert result.exit_code == 1 and "realised.csv" in result.output and "Traceback" not in result.output


def test_a_confidential_facilitys_realised_exchange_is_masked_in_public(two_years, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    public = write_monitoring(two_years, tmp_path / "public", name="Tiny")
    private = write_monitoring(two_years, tmp_path / "private", name="Tiny", private=True)
    text = Path(public["monitor_exchanges"]).read_text(encoding="utf-8")
    page = Path(public["page"]).read_text(encoding="utf-8")
    for shown in (text, page):
        assert ",cement," not in shown and "Cement works" not in shown and "invoice 2021" not in shown
    frame = pd.read_csv(public["monitor_exchanges"])
    hidden = frame[(frame["year"] == 2021) & frame["demand_facility"].str.startswith("confidential-")]
    assert len(hidden) == 1 and hidden["realised_amount"].isna().all()
    mine = pd.read_csv(private["monitor_exchanges"])
    cement = mine[(mine["year"] == 2021) & (mine["demand_facility"] == "cement")]
    assert cement["realised_amount"].tolist() == [20_000]
    assert json.loads(Path(public["parameters"]).read_text())["disclosure"] == "public"


def test_kalundborg_ships_sourced_realised_years_and_its_gypsum_figure() -> None:
    folder = REPO / "data" / "regions" / "kalundborg"
    settings = yaml.safe_load((folder / "region.yaml").read_text(encoding="utf-8"))
    realised = pd.read_csv(folder / "realised.csv")
    assert realised["year"].nunique() >= 2
    assert set(realised["source"]) <= set(settings["sources"])  # every row cites a source key of the region
    assert "150,000 t/yr FGD gypsum" in settings["sources"]["ks_2010"]
    result = monitor(folder)
    ex = result.exchanges
    gypsum = ex[(ex["year"] == 2010) & (ex["supply_facility"] == "asnaes") & (ex["material"] == "fgd_gypsum")]
    assert gypsum["realised_amount"].tolist() == [150_000.0] and gypsum["source"].tolist() == ["ks_2010"]
    heat = result.realised[result.realised["year"] == 2022].iloc[0]
    assert heat["amount_converted"] == 80_000.0 and heat["basis"] == "delivered"  # ks_2022: heat delivered
    assert result.kpis.set_index("year").at[2022, "basis"] == "years/2022.yaml"


def test_the_page_escapes_text_from_the_data(tmp_path: Path) -> None:
    folder = region_with(tmp_path, HEADER + '2020,power,board,fgd_gypsum,1,t,running,"<script>alert(1)</script>"\n')
    written = write_monitoring(run(folder), tmp_path / "out", name="<b>Tiny</b>", private=True)
    page = Path(written["page"]).read_text(encoding="utf-8")
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<b>Tiny</b>" not in page


def test_a_realised_candidate_the_optimum_leaves_out_takes_the_supplys_reason(tmp_path: Path) -> None:
    folder = region_with(tmp_path, HEADER + "2022,power,far,fly_ash,10000,t,running,invoice 2022\n")
    (folder / "years").mkdir()
    (folder / "years" / "2022.yaml").write_text(yaml.safe_dump({
        "name": "tiny_2022", "base": "..", "changes": [{"fate_cost": {"fate": "landfill", "set": 0}}]}))
    result = run(folder)
    ex = result.exchanges
    far = ex[(ex["year"] == 2022) & (ex["demand_facility"] == "far")].iloc[0]
    # landfill free: fly ash -> far saves 0.9 x 8 - 1 - 0.10 x 221.7 km < 0, so the optimum does not use it; the
    # cement arc (0.9 x 12 - 1 - 1.14 > 0) is full at 33,333 t, so the supply's reason is that capacity
    assert not far["in_optimum"] and far["optimum_amount"] == 0
    assert far["reason"] == "arc_capacity_binding"
    per_t = 0.9 * 8 - 1 - hand.TRANSPORT_PER_TKM * hand.KM_FAR
    assert far["realised_saving"] == pytest.approx(10_000 * per_t, rel=1e-9) and per_t < 0
    assert result.kpis.at[0, "n_realised_not_in_optimum"] == 1
