"""The map and report of one period (``symbiosis run --period NAME``, symbiosis/periods/view.py), and the
commands that do not handle periods saying so (exit 1, no traceback).

The period view fails on the code before it: `run` had no --period, and the pages always showed the year.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from symbiosis import load_region, optimise
from symbiosis.cli import app
from symbiosis.outputs.report import format_kpi
from symbiosis.periods.view import PERIOD_KPIS, period_results_view
from tests.test_periods import PLANT_TOWN, SEASONS, write_region

SEASONAL_FLOWS = ("flow_id,facility_id,direction,category,material,amount,unit,price,price_unit,exchangeable,"
                  "profile\nplant_heat,plant,out,waste,hot_water,36500,MWh,1,EUR/MWh,,\n"
                  "town_heat,town,in,energy,district_heat,20000,MWh,30,EUR/MWh,true,winter_only\n")


def _seasonal(folder: Path, *, store: bool = True, periods: str = SEASONS) -> Path:
    """tests/test_periods.py's hand-solved case: flat waste heat, a winter-only town, a pit at the plant."""
    return write_region(folder, periods=periods, facilities=PLANT_TOWN, flows=SEASONAL_FLOWS,
                        arcs="supply_facility,demand_facility,distance_km\nplant,town,5\n",
                        profiles="profile,period,share\nwinter_only,winter,1\nwinter_only,rest,0\n" if periods else "",
                        stores="store_id,flow_id,capacity,cost_per_period,loss_per_period\npit,plant_heat,10000,0.5,0.1\n"
                        if store else "")


def test_the_view_of_a_period_holds_that_periods_rows(tmp_path: Path) -> None:
    """Each period's view: its exchanges are that period's rows of exchanges_by_period, its KPIs that period's
    row of kpis_by_period; the winter view ships the hand-solved 18,000 MWh (9,000 made + 9,000 drawn)."""
    region = load_region(_seasonal(tmp_path / "r"))
    results = optimise(region)
    for period in ("winter", "rest"):
        view = period_results_view(region, results, period.upper())  # case as you like
        rows = results.periods.exchanges[results.periods.exchanges["period"] == period]
        assert sorted(view.exchanges["amount_mwh_per_yr"].round(6)) == sorted(rows["amount_mwh"].round(6))
        assert view.exchanges["delivered_mwh_per_yr"].sum() == pytest.approx(rows["delivered"].sum(), rel=1e-12)
        kpis = results.periods.kpis.set_index("period").loc[period]
        for key in PERIOD_KPIS:
            assert view.kpis[key] == pytest.approx(float(kpis[key]), rel=1e-12, abs=1e-9), key
        assert view.kpis["period"] == period
        assert view.kpis["n_exchanges"] == len(rows)
    winter = period_results_view(region, results, "winter")
    assert winter.exchanges["amount_mwh_per_yr"].sum() == pytest.approx(9_000 + 9_000, rel=1e-9)
    # The supplier's store gave 9,000 MWh in winter: the supply had 18,000 to give then, and gave it all.
    supply = winter.supplies.set_index("supply_id").loc["plant_heat"]
    assert supply["amount_mwh_per_yr"] == pytest.approx(18_000, rel=1e-9)
    assert supply["to_fate_mwh_per_yr"] == pytest.approx(0.0, abs=1e-6)
    # The slide's bars say whose figures they are.
    from symbiosis.outputs.static import bau_optimum_figures

    assert [unit for _, unit, _, _ in bau_optimum_figures(winter)] == ["EUR in winter", "t CO2e in winter",
                                                                       "t in winter", "t in winter"]
    assert bau_optimum_figures(results)[0][1] == "EUR/yr"
    # The year's view is untouched.
    assert results.kpis["cost_optimum"] == pytest.approx(results.periods.kpis["cost_optimum"].sum(), rel=1e-12)


def _span(report: str, key: str) -> str:
    found = re.search(rf'<span data-kpi="{key}">([^<]*)</span>', report)
    assert found, key
    return html.unescape(found.group(1))


def test_run_with_period_writes_the_periods_map_and_report_and_keeps_the_tables_annual(tmp_path: Path) -> None:
    folder = _seasonal(tmp_path / "r")
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["run", str(folder), "--out", str(out), "--no-pngs", "--private",
                                      "--period", "winter"])
    assert result.exit_code == 0, result.output
    kpis = pd.read_csv(out / "kpis_by_period.csv").set_index("period").loc["winter"]
    by_period = pd.read_csv(out / "exchanges_by_period.csv")
    winter = by_period[by_period["period"] == "winter"]
    report = (out / "report.html").read_text()
    assert "period winter" in report and 'id="period-note"' in report
    for key in ("cost_bau", "cost_optimum", "net_cost_saving"):
        assert _span(report, key) == format_kpi(float(kpis[key])), key
    annual = pd.read_json(out / "kpis.json", typ="series")
    assert _span(report, "cost_optimum") != format_kpi(float(annual["cost_optimum"]))
    # The map's line shows the period's MWh, labelled as such.
    page = html.unescape((out / "map.html").read_text())
    amount = f"{float(winter['amount_mwh'].iat[0]):,.0f}"
    assert f"{amount} MWh in winter" in page
    # Tables stay annual: exchanges.csv is the year's (the same as the winter here, nothing ships in the rest).
    exchanges = pd.read_csv(out / "exchanges.csv")
    assert exchanges["amount_mwh_per_yr"].sum() == pytest.approx(by_period["amount_mwh"].sum(), rel=1e-9)


@pytest.mark.parametrize("periods, words", [(SEASONS, "unknown period; expected one of winter, rest"),
                                            ("", "declares no periods")], ids=["unknown", "no_periods"])
def test_run_with_a_period_the_region_does_not_have_is_refused(tmp_path: Path, periods: str, words: str) -> None:
    folder = _seasonal(tmp_path / "r", store=False, periods=periods)
    if not periods:
        (folder / "flows.csv").write_text(SEASONAL_FLOWS.replace("winter_only", ""))
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["run", str(folder), "--out", str(out), "--no-pngs", "--period", "summer"])
    assert result.exit_code == 1
    assert words in result.output
    assert "Traceback" not in result.output and not out.exists()


# --- commands that do not handle periods say so --------------------------------------------------------


@pytest.mark.parametrize("args, words", [
    (["resilience", "--exchanges"], "resilience --exchanges does not handle periods"),
    (["optimise", "--mip"], "does not handle periods"),
    (["run", "--mip", "--no-pngs"], "does not handle periods"),
    (["tradeoff"], "does not handle periods"),
    (["uncertainty", "--samples", "2", "--workers", "1"], "uncertainty does not handle periods"),
], ids=["resilience_exchanges", "optimise_mip", "run_mip", "tradeoff", "uncertainty"])
def test_commands_that_do_not_handle_periods_refuse_them(tmp_path: Path, args: list[str], words: str) -> None:
    folder = _seasonal(tmp_path / "r")
    out = tmp_path / "out"
    result = CliRunner().invoke(app, [args[0], str(folder), *args[1:], "--out", str(out)])
    assert result.exit_code == 1, result.output
    assert words in " ".join(result.output.split())
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert not out.exists() or not any(out.glob("*.csv"))


def test_a_public_period_run_with_a_confidential_store_writes_every_page_and_leaks_nothing(tmp_path: Path) -> None:
    """The plant is confidential: the public copy blanks its store's rows (period included), which made
    periods.png fail on duplicate periods; the winter pages must not name the plant or its flow."""
    from symbiosis.pipeline import write_outputs

    folder = _seasonal(tmp_path / "r")
    (folder / "facilities.csv").write_text("facility_id,name,sector,lat,lon,confidential\n"
                                           "plant,Secret Plant,35.11,55.00,11.00,true\n"
                                           "town,Town,35.30,55.02,11.00,false\n")
    region = load_region(folder)
    results = optimise(region)
    for self_contained in (False, True):
        out = tmp_path / f"public_{self_contained}"
        written = write_outputs(results, region, out, public=True, pngs=True, period="winter",
                                self_contained=self_contained)
        assert (out / "periods.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert written["report"].exists()
        for name in ("report.html", "map.html", "exchanges_by_period.csv", "stores.csv"):
            text = (out / name).read_text()
            assert "Secret Plant" not in text and "plant_heat" not in text, (self_contained, name)
        assert "period winter" in (out / "report.html").read_text()


def test_pickled_period_results_leave_the_expanded_model_behind(tmp_path: Path) -> None:
    """`compare` returns results from worker processes: the per-period tables travel, the time-expanded
    candidates (every table once per period) do not, and a view of a period then says why it cannot be cut."""
    import pickle

    from symbiosis.errors import SymbiosisError

    region = load_region(_seasonal(tmp_path / "r"))
    results = optimise(region)
    assert results.periods.expanded is not None
    copy = pickle.loads(pickle.dumps(results))
    assert copy.periods.expanded is None and copy.periods.solution is None
    pd.testing.assert_frame_equal(copy.periods.kpis, results.periods.kpis)
    assert results.periods.expanded is not None  # the original keeps them
    with pytest.raises(SymbiosisError, match="do not hold the optimum of each period"):
        period_results_view(region, copy, "winter")
