"""The heat pump's figures as region.yaml settings (``heat_pump:``), validated, and their effect by hand.

tests/data/regions/heat: warm effluent at 40 °C (30,000 MWh/yr, free to give away) 2 km from a town that
buys 20,000 MWh/yr of district heat at 30 EUR/MWh and needs 90 °C; only a heat pump at the town bridges it.
Carrier figures (waste_heat: 0.002 loss per km, 0.05 EUR/MWh·km) come from data/reference/energy_carriers.csv.
Before this change the figures were constants in symbiosis.energy.heat: a region could not set them, and
``heat_pump:`` in region.yaml was refused as an unknown key.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from symbiosis.candidates import candidates
from symbiosis.errors import InputError
from symbiosis.inputs import load_region
from symbiosis.pipeline import optimise
from symbiosis.reference import data_dir

HEAT = Path(__file__).parent / "data" / "regions" / "heat"
CARRIERS = pd.read_csv(data_dir() / "reference" / "energy_carriers.csv").set_index("carrier")
LOSS = CARRIERS.at["waste_heat", "loss_fraction_per_km"] * 2.0  # 2 km
PIPE = CARRIERS.at["waste_heat", "pipe_cost_per_mwh_km"] * 2.0


def _region(tmp_path: Path, heat_pump: str) -> Path:
    copy = tmp_path / "heat"
    shutil.copytree(HEAT, copy)
    with (copy / "region.yaml").open("a") as f:
        f.write("heat_pump:\n" + heat_pump)
    return copy


def _by_hand(carnot_fraction: float, price: float) -> tuple[float, float, float]:
    """(COP, delivered MWh per MWh shipped, cost per MWh delivered) of the 40 → 90 °C lift over 2 km."""
    cop = carnot_fraction * (90 + 273.15) / (90 - 40)
    ratio = (1.0 - LOSS) * cop / (cop - 1.0)
    return cop, ratio, (PIPE + price / (cop - 1.0)) / ratio


def _delivered_to_town(results) -> float:  # type: ignore[no-untyped-def]
    ex = results.exchanges
    return float(ex.loc[ex["supply_id"] == "wwtp_heat", "delivered_mwh_per_yr"].sum())


def test_the_break_even_electricity_price_decides_the_heat_pump_exchange(tmp_path: Path) -> None:
    # The exchange pays while a delivered MWh costs less than the town's 30 EUR: with COP 3.6315 (0.5 of
    # Carnot), ratio (1 − 0.004) × COP/(COP − 1) = 1.3745, so p* = (30 × ratio − pipe) × (COP − 1) = 108.24.
    cop, ratio, _ = _by_hand(0.5, 0.0)
    break_even = (30.0 * ratio - PIPE) * (cop - 1.0)
    assert break_even == pytest.approx(108.24, abs=0.01)
    below = optimise(load_region(_region(tmp_path / "below", f"  electricity_price_per_mwh: {break_even - 3}\n")))
    assert _delivered_to_town(below) == pytest.approx(20_000.0)
    above = optimise(load_region(_region(tmp_path / "above", f"  electricity_price_per_mwh: {break_even + 3}\n")))
    assert _delivered_to_town(above) == 0.0
    assert above.supplies.set_index("supply_id").at["wwtp_heat", "reason"] == "not_economic"
    # The chosen exchange's cost is the hand figure: 20,000 MWh at (pipe + p/(COP − 1)) / ratio each.
    k = below.kpis
    _, _, per_mwh = _by_hand(0.5, break_even - 3)
    steam_and_rest = optimise(load_region(_region(tmp_path / "above2", f"  electricity_price_per_mwh: "
                                                                         f"{break_even + 3}\n"))).kpis
    assert steam_and_rest["cost_optimum"] - k["cost_optimum"] == pytest.approx(20_000.0 * (30.0 - per_mwh), rel=1e-7)


def test_a_poorer_heat_pump_makes_the_same_lift_not_worth_it(tmp_path: Path) -> None:
    # 0.4 of Carnot: COP 2.905, a delivered MWh costs (0.1 + 100/1.905)/1.519 = 34.6 EUR > 30: no exchange.
    cop, ratio, per_mwh = _by_hand(0.4, 100.0)
    assert per_mwh == pytest.approx(34.6, abs=0.05)
    cands = candidates(load_region(_region(tmp_path / "poor", "  carnot_fraction: 0.4\n")))
    arc = cands.arcs.set_index("supply_id").loc["wwtp_heat"]
    assert arc["heat_pump_cop"] == pytest.approx(cop)
    assert arc["ratio"] == pytest.approx(ratio)
    assert arc["processing_cost_per_t"] == pytest.approx(100.0 / (cop - 1.0))
    assert _delivered_to_town(optimise(load_region(_region(tmp_path / "poor2", "  carnot_fraction: 0.4\n")))) == 0.0


def test_a_smaller_largest_lift_screens_the_arc_as_too_cold(tmp_path: Path) -> None:
    results = optimise(load_region(_region(tmp_path / "lift", "  max_lift_k: 45\n")))  # the lift is 50 K
    assert results.supplies.set_index("supply_id").at["wwtp_heat", "reason"] == "too_cold"


def test_the_cop_cap_and_the_electricity_co2e_follow_the_settings(tmp_path: Path) -> None:
    region = load_region(_region(tmp_path / "cap", "  max_cop: 2.5\n  electricity_co2e_per_mwh: 0.45\n"))
    arc = candidates(region).arcs.set_index("supply_id").loc["wwtp_heat"]
    assert arc["heat_pump_cop"] == pytest.approx(2.5)  # 3.63 capped
    assert arc["processing_co2e_per_t"] == pytest.approx(0.45 / 1.5)


def test_defaults_are_the_shipped_estimates(tmp_path: Path) -> None:
    default = candidates(load_region(HEAT)).arcs.set_index("supply_id").loc["wwtp_heat"]
    cop, ratio, _ = _by_hand(0.5, 100.0)
    assert default["heat_pump_cop"] == pytest.approx(cop)
    assert default["processing_cost_per_t"] == pytest.approx(100.0 / (cop - 1.0))
    assert default["processing_co2e_per_t"] == pytest.approx(0.3 / (cop - 1.0))


@pytest.mark.parametrize(("setting", "column"), [
    ("  max_cop: 1\n", "heat_pump.max_cop"),
    ("  max_cop: 0.8\n", "heat_pump.max_cop"),
    ("  carnot_fraction: 0\n", "heat_pump.carnot_fraction"),
    ("  carnot_fraction: 1.5\n", "heat_pump.carnot_fraction"),
    ("  electricity_price_per_mwh: -10\n", "heat_pump.electricity_price_per_mwh"),
    ("  electricity_co2e_per_mwh: -0.1\n", "heat_pump.electricity_co2e_per_mwh"),
    ("  electricity_price_per_mwh: .nan\n", "heat_pump.electricity_price_per_mwh"),
    ("  max_lift_k: 0\n", "heat_pump.max_lift_k"),
    ("  cop: 3\n", "heat_pump.cop"),
])
def test_bad_heat_pump_settings_are_located_errors(tmp_path: Path, setting: str, column: str) -> None:
    with pytest.raises(InputError) as caught:
        load_region(_region(tmp_path / "bad", setting))
    problems = [p for p in caught.value.problems if p.file.endswith("region.yaml") and p.column == column]
    assert problems, str(caught.value)


def test_a_workbook_region_sheet_sets_the_heat_pump_with_dotted_keys(tmp_path: Path) -> None:
    workbook = tmp_path / "heat.xlsx"
    with pd.ExcelWriter(workbook) as writer:
        pd.DataFrame({"key": ["name", "max_distance_km", "heat_pump.max_cop", "heat_pump.electricity_price_per_mwh"],
                      "value": ["Heat", 50, 2.5, 80]}).to_excel(writer, sheet_name="region", index=False)
        for name in ("facilities", "flows", "quality", "arcs"):
            pd.read_csv(HEAT / f"{name}.csv", dtype=str, keep_default_na=False).to_excel(
                writer, sheet_name=name, index=False)
    region = load_region(workbook)
    assert region.settings.heat_pump.max_cop == 2.5
    assert region.settings.heat_pump.electricity_price_per_mwh == 80.0
    arc = candidates(region).arcs.set_index("supply_id").loc["wwtp_heat"]
    assert arc["processing_cost_per_t"] == pytest.approx(80.0 / 1.5)
