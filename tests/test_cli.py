"""Every command through the command line (typer's CliRunner, in process) on the tiny region.

Each command: exit status 0, the files it says it writes, one figure in them against a value derived by
hand (tests/tiny_by_hand.py), and one clearly bad input refused with status 1, a located message and no
traceback. The tiny region is read against the test reference tables and process models
(``SYMBIOSIS_DATA`` / ``SYMBIOSIS_MODELS``). ``pipeline.write_outputs`` is checked here too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from click.testing import Result
from typer.testing import CliRunner

from symbiosis.cli import app
from tests import tiny_by_hand as hand
from tests.conftest import TEST_DATA, TEST_MODELS, TINY, load_test_region

ENV = {"SYMBIOSIS_DATA": str(TEST_DATA), "SYMBIOSIS_MODELS": str(TEST_MODELS)}
SCENARIOS = TEST_DATA / "scenarios"
TABLES = ["exchanges.csv", "supplies.csv", "demands.csv", "facilities.csv", "balances.csv", "kpis.json",
          "exchanges.gpkg"]


def invoke(*args: object) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args], env=ENV)


def assert_ok(result: Result) -> None:
    assert result.exit_code == 0, result.output
    assert result.exception is None, result.exception


def assert_refused(result: Result, *fragments: str) -> None:
    """Status 1 from a handled exit (an uncaught exception would also give 1, with the exception kept)."""
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    text = " ".join(result.output.split())  # rich may wrap long lines
    for fragment in fragments:
        assert re.search(fragment, text), f"{fragment!r} not in {text!r}"


def edit_cell(table: str, flow_or_facility: str, column: str, value: str) -> Callable[[dict[str, pd.DataFrame]], None]:
    """An edit for ``tiny_copy``: set one cell of the row whose first column is ``flow_or_facility``."""

    def edit(tables: dict[str, pd.DataFrame]) -> None:
        frame = tables[table]
        frame.loc[frame[frame.columns[0]] == flow_or_facility, column] = value

    return edit


def by_receiver(frame: pd.DataFrame) -> pd.DataFrame:
    """Exchanges keyed board / cement / far (cement is confidential: public files call it confidential-N)."""
    key = frame["demand_facility"].where(frame["demand_facility"].isin(["board", "far"]), "cement")
    assert key.is_unique, frame
    return frame.set_index(key)


# --- check -------------------------------------------------------------------------------------------


def test_check(tiny_copy: Callable[..., Path]) -> None:
    result = invoke("check", TINY)
    assert_ok(result)
    # flows.csv has 8 rows; the power station's model has 6 lines, one (FGD gypsum out) measured: 5 modelled.
    assert "4 facilities, 13 flows (5 from process models), 4 quality entries" in result.output
    bad = tiny_copy(edit_cell("flows", "cement_clay", "amount", "lots"))
    assert_refused(invoke("check", bad), r"flows\.csv", r"row\D{0,3}6\b", "amount", "lots")


# --- balance -----------------------------------------------------------------------------------------


def test_balance_and_reconcile(tmp_path: Path, tiny_copy: Callable[..., Path]) -> None:
    out = tmp_path / "balance"
    assert_ok(invoke("balance", TINY, "--out", out, "--reconcile", "--private"))
    for name in ("balances.csv", "reconciled_flows.csv", "reconciliation.csv"):
        assert (out / name).stat().st_size > 0, name
    table = pd.read_csv(out / "balances.csv").set_index(["facility_id", "quantity"])
    # cement: 100,000 t clay in, 99,000 t clinker out, no stock change.
    assert table.at[("cement", "mass"), "closure"] == pytest.approx(1_000.0)
    assert table.at[("cement", "mass"), "closure_error"] == pytest.approx(0.01)
    # board: 25,000 in = 24,000 out + 1,000 stock.
    assert table.at[("board", "mass"), "closure"] == pytest.approx(0.0, abs=1e-9)
    # Reconciled by weighted least squares with 5 % for measured flows: σ² = 5,000² and 4,950²; the clay is
    # lowered by 1,000 · 5,000² / (5,000² + 4,950²) and the clinker raised by the rest: both 99,494.97 t.
    flows = pd.read_csv(out / "reconciled_flows.csv").set_index("flow_id")
    share = 5_000**2 / (5_000**2 + 4_950**2)
    assert flows.at["cement_clay", "reconciled"] == pytest.approx(100_000 - 1_000 * share, rel=1e-12)
    assert flows.at["cement_clinker", "reconciled"] == pytest.approx(99_000 + 1_000 * (1 - share), rel=1e-12)
    facilities = pd.read_csv(out / "reconciliation.csv").set_index("facility_id")
    assert facilities.at["cement", "chi_square"] == pytest.approx(1_000**2 / (5_000**2 + 4_950**2), rel=1e-12)
    assert not facilities["gross_error_suspected"].any()
    bad = tiny_copy(edit_cell("facilities", "far", "lat", "95"))
    assert_refused(invoke("balance", bad, "--out", tmp_path / "bad"), r"facilities\.csv", "lat", "95")
    assert not (tmp_path / "bad" / "balances.csv").exists()


# The tiny region's cement works is confidential: the figure checks read the agency's (--private) view;
# tests/test_confidentiality.py checks what the public view hides.

# --- optimise ----------------------------------------------------------------------------------------


def test_optimise(tmp_path: Path, tiny_copy: Callable[..., Path]) -> None:
    out = tmp_path / "optimise"
    result = invoke("optimise", TINY, "--out", out, "--private")
    assert_ok(result)
    for name in [*TABLES, "parameters.json"]:
        assert (out / name).stat().st_size > 0, name
    kpis = json.loads((out / "kpis.json").read_text(encoding="utf-8"))
    assert kpis["cost_bau"] == pytest.approx(hand.COST_BAU, rel=1e-12)
    assert kpis["net_cost_saving"] == pytest.approx(hand.COST_BAU - hand.COST_OPTIMUM, rel=1e-9)
    assert kpis["co2e_optimum_t"] == pytest.approx(hand.CO2E_OPTIMUM, rel=1e-9)
    exchanges = by_receiver(pd.read_csv(out / "exchanges.csv"))
    for receiver, (amount, replaced, km) in hand.EXCHANGES.items():
        row = exchanges.loc[receiver]
        assert row["amount_t_per_yr"] == pytest.approx(amount, rel=1e-7), receiver
        assert row["replaced_t_per_yr"] == pytest.approx(replaced, rel=1e-7), receiver
        assert row["distance_km"] == pytest.approx(km, rel=1e-9), receiver
        assert row["tkm_per_yr"] == pytest.approx(amount * km, rel=1e-7), receiver
        assert row["saving"] == pytest.approx(amount * hand.SAVING_PER_T[receiver], rel=1e-7), receiver
    parameters = json.loads((out / "parameters.json").read_text(encoding="utf-8"))
    assert parameters["parameters"]["circuity"] == hand.CIRCUITY
    assert "4,237,820" in result.output  # the printed net saving
    bad = tiny_copy(edit_cell("flows", "far_clay", "facility_id", "nowhere"))
    assert_refused(invoke("optimise", bad, "--out", tmp_path / "bad"), r"flows\.csv", "facility_id", "nowhere")
    assert not (tmp_path / "bad" / "exchanges.csv").exists()


# --- run, and pipeline.write_outputs -------------------------------------------------------------------


def test_run_the_readme_command(tmp_path: Path, tiny_copy: Callable[..., Path]) -> None:
    out = tmp_path / "run"
    result = invoke("run", TINY, "--out", out, "--no-pngs")
    assert_ok(result)
    for name in [*TABLES, "parameters.json", "report.html", "map.html"]:
        assert (out / name).stat().st_size > 0, name
    assert not (out / "exchange_map.png").exists()
    kpis = json.loads((out / "kpis.json").read_text(encoding="utf-8"))
    assert kpis["net_cost_saving"] == pytest.approx(hand.COST_BAU - hand.COST_OPTIMUM, rel=1e-9)
    report = (out / "report.html").read_text(encoding="utf-8")
    saving = re.search(r'data-kpi="net_cost_saving"[^>]*>\s*([^<]+?)\s*<', report)
    assert saving is not None and saving.group(1) == f"{hand.COST_BAU - hand.COST_OPTIMUM:,.0f}"  # 4,237,820
    bad = tiny_copy(edit_cell("flows", "board_gypsum", "material", "unobtainium"))
    assert_refused(invoke("run", bad, "--out", tmp_path / "bad", "--no-pngs"), r"flows\.csv", "material",
                   "unobtainium")
    assert not (tmp_path / "bad" / "report.html").exists()


@pytest.mark.slow
def test_pipeline_write_outputs(tmp_path: Path) -> None:
    from symbiosis.pipeline import optimise, write_outputs

    region = load_test_region(TINY)
    written = write_outputs(optimise(region), region, tmp_path, pngs=True)
    assert {"parameters", "report", "map", "map_png", "kpi_png"} <= set(written)
    for path in written.values():
        assert Path(path).stat().st_size > 0, path
    for png in (written["map_png"], written["kpi_png"]):
        assert Path(png).read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    for name in TABLES:
        assert (tmp_path / name).exists(), name
    kpis = json.loads((tmp_path / "kpis.json").read_text(encoding="utf-8"))
    assert kpis["cost_optimum"] == pytest.approx(hand.COST_OPTIMUM, rel=1e-9)
    recorded = json.loads(Path(written["parameters"]).read_text(encoding="utf-8"))
    assert recorded["region"] == "Tiny"
    assert recorded["parameters"]["transport_cost_per_tkm"] == hand.TRANSPORT_PER_TKM


# --- compare -----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_compare(tmp_path: Path) -> None:
    out = tmp_path / "compare"
    result = invoke("compare", SCENARIOS / "base.yaml", SCENARIOS / "landfill_tax_doubled.yaml", "--out", out,
                    "--workers", "1")
    assert_ok(result)
    for name in ("comparison.html", "kpis_comparison.csv", "exchanges_changes.csv", "runs.json"):
        assert (out / name).exists(), name
    for scenario in ("base", "landfill_tax_doubled"):
        assert (out / scenario / "kpis.json").exists(), scenario
    kpis = pd.read_csv(out / "kpis_comparison.csv").set_index("indicator")
    # The landfill tax, 25 of the 60 EUR/t, doubles: BAU pays 25 more on each of the 60,000 t landfilled;
    # the optimum sends none of it to landfill, so its cost is unchanged and the saving grows by 1,500,000.
    bau = kpis.loc["system cost, business as usual"]
    assert float(bau["base"]) == pytest.approx(hand.COST_BAU)
    assert float(bau["landfill_tax_doubled"]) == pytest.approx(hand.COST_BAU + 25 * 60_000)
    optimum = kpis.loc["system cost with symbiosis"]
    assert float(optimum["landfill_tax_doubled"]) == pytest.approx(hand.COST_OPTIMUM, rel=1e-9)
    assert len(pd.read_csv(out / "exchanges_changes.csv")) == 0  # the same exchanges
    broken = invoke("compare", SCENARIOS / "base.yaml", SCENARIOS / "broken.yaml", "--out", tmp_path / "bad",
                    "--workers", "1")
    assert_refused(broken, "broken", "nowhere")


# --- tradeoff ----------------------------------------------------------------------------------------


def test_tradeoff(tmp_path: Path, tiny_copy: Callable[..., Path]) -> None:
    out = tmp_path / "tradeoff"
    # At 0.30 EUR/t·km the fly ash trip to far costs 0.30 · 221.7 = 66.52 EUR/t against 60 + 0.9 · 8 − 1 =
    # 66.2 saved: the cheapest network leaves 6,666.7 t in landfill. It would still save CO2e: 0.01 (landfill)
    # + 0.9 · 0.01 (clay) − 0.000062 · 221.7 t per t. Between the two ends, each t CO2e avoided costs the
    # ratio of the two: the implied carbon price.
    assert_ok(invoke("tradeoff", TINY, "--out", out, "--points", "5", "--transport-cost", "0.3"))
    for name in ("tradeoff.csv", "tradeoff_changes.csv", "tradeoff.png"):
        assert (out / name).stat().st_size > 0, name
    points = pd.read_csv(out / "tradeoff.csv")
    assert len(points) == 5
    gap = 0.3 * hand.KM_FAR - (60 + 0.9 * 8 - 1)
    avoided = 0.01 + 0.9 * 0.01 - hand.TRANSPORT_CO2_PER_TKM * hand.KM_FAR
    assert points["implied_carbon_price"].iloc[1:-1].to_numpy() == pytest.approx(gap / avoided, rel=1e-6)
    assert points["co2e_t"].iloc[-1] == pytest.approx(hand.CO2E_OPTIMUM, rel=1e-7)  # all fly ash shipped
    assert points["co2e_t"].iloc[0] - points["co2e_t"].iloc[-1] == pytest.approx(hand.X_FAR * avoided, rel=1e-6)
    changes = pd.read_csv(out / "tradeoff_changes.csv")
    assert set(changes["demand_id"]) == {"far_clay"}
    bad = tiny_copy()
    (bad / "region.yaml").write_text((bad / "region.yaml").read_text().replace("max_distance_km", "max_distnace_km"))
    assert_refused(invoke("tradeoff", bad, "--out", tmp_path / "bad"), r"region\.yaml", "max_distnace_km")


# --- partners ----------------------------------------------------------------------------------------


def test_partners(tmp_path: Path) -> None:
    out = tmp_path / "partners"
    assert_ok(invoke("partners", TINY, "--flow", "power_gypsum", "--out", out))
    assert (out / "partners.csv").stat().st_size > 0
    assert (out / "partners_map.html").stat().st_size > 0
    partners = pd.read_csv(out / "partners.csv")
    assert list(partners["demand_id"]) == ["board_gypsum"]
    row = partners.iloc[0]
    # The supplier saves its 60 EUR/t landfill; the board plant saves 25 EUR/t virgin and pays 2 EUR/t
    # processing and the 2.18 km trip.
    assert row["net_value_per_t"] == pytest.approx(hand.SAVING_PER_T["board"], rel=1e-9)
    assert row["distance_km"] == pytest.approx(hand.KM_GYPSUM, rel=1e-9)
    assert row["optimum_t_per_yr"] == pytest.approx(hand.X_GYPSUM, rel=1e-7)
    assert_refused(invoke("partners", TINY, "--flow", "no_such_flow", "--out", tmp_path / "bad"), "--flow",
                   "no_such_flow")


# --- resilience --------------------------------------------------------------------------------------


def test_resilience(tmp_path: Path, tiny_copy: Callable[..., Path]) -> None:
    out = tmp_path / "resilience"
    assert_ok(invoke("resilience", TINY, "--out", out, "--private"))
    for name in ("resilience_facilities.csv", "exchange_graph.csv"):
        assert (out / name).stat().st_size > 0, name
    lost = pd.read_csv(out / "resilience_facilities.csv").set_index("facility_id")["cost_benefit_lost"]
    # Without the power station nothing is exchanged; without board or far, their exchange alone is lost;
    # without cement, its 33,333 t of fly ash go to far instead (far's capacity is 66,667 t), losing the
    # difference of the two savings per tonne.
    assert lost["power"] == pytest.approx(hand.COST_BAU - hand.COST_OPTIMUM, rel=1e-9)
    assert lost["board"] == pytest.approx(hand.X_GYPSUM * hand.SAVING_PER_T["board"], rel=1e-9)
    assert lost["far"] == pytest.approx(hand.X_FAR * hand.SAVING_PER_T["far"], rel=1e-7)
    assert lost["cement"] == pytest.approx(hand.X_CEMENT * (hand.SAVING_PER_T["cement"] - hand.SAVING_PER_T["far"]),
                                           rel=1e-7)
    bad = tiny_copy(edit_cell("quality", "cement_clay", "bound", "maximum"))
    assert_refused(invoke("resilience", bad, "--out", tmp_path / "bad"), r"quality\.csv", "bound", "maximum")
