"""Unit conversion at the boundary: hand-checked figures and the known traps."""

from __future__ import annotations

import pytest

from symbiosis.units import UnitProblem, convert_amount, convert_price, convert_to


@pytest.mark.parametrize(
    ("amount", "unit", "density", "expected_quantity", "expected"),
    [
        (5, "t", None, "mass", 5.0),
        (5000, "kg", None, "mass", 5.0),
        (3, "Mt/yr", None, "mass", 3_000_000.0),
        (2, "kilotonne", None, "mass", 2_000.0),
        (50, "t/h", None, "mass", 50 * 8760.0),  # a year is 8,760 h, not pint's Julian 8,766 h
        (250, "t/day", None, "mass", 250 * 365.0),
        (1, "t/month", None, "mass", 12.0),
        (700_000, "m3", 1.0, "mass", 700_000.0),
        (700_000, "m**3", 1.0, "mass", 700_000.0),
        (1000, "L", 0.8, "mass", 0.8),
        (10, "GJ", None, "energy", 10 / 3.6),
        (3, "MWh/h", None, "energy", 3 * 8760.0),
        (80_000, "MWh", None, "energy", 80_000.0),
    ],
)
def test_amounts_convert_to_internal_units(amount, unit, density, expected_quantity, expected):
    converted = convert_amount(amount, unit, density_t_per_m3=density)
    assert converted.quantity == expected_quantity
    assert converted.value == pytest.approx(expected, rel=1e-12)


def test_amount_per_month_period_scales_to_year():
    # A region whose period is a month: 10 t in the period is 120 t/yr.
    assert convert_amount(10, "t", period_days=365 / 12).value == pytest.approx(120.0)


@pytest.mark.parametrize(
    ("unit", "message"),
    [
        ("kt", "knot"),
        ("kt/yr", "knot"),
        ("widget", "unknown unit"), ("furlong", "expected a mass"),
        ("m**2", "expected a mass"),
        ("t/h/h", "expected a mass"),
        ("", "empty unit"),
        ("m3", "density"),
    ],
)
def test_bad_units_are_refused_with_a_reason(unit, message):
    with pytest.raises(UnitProblem, match=message):
        convert_amount(1.0, unit)


def test_prices_convert_per_tonne_and_per_mwh():
    assert convert_price(0.02, "EUR/kg", currency="EUR").value == pytest.approx(20.0)
    assert convert_price(1.5, "EUR/m3", currency="EUR", density_t_per_m3=1.0).value == pytest.approx(1.5)
    energy = convert_price(50, "EUR/MWh", currency="EUR")
    assert energy.quantity == "energy" and energy.value == pytest.approx(50.0)


def test_prices_in_another_currency_or_per_time_are_refused():
    with pytest.raises(UnitProblem, match="currency"):
        convert_price(1, "DKK/t", currency="EUR")
    with pytest.raises(UnitProblem, match="per amount"):
        convert_price(1, "EUR/h", currency="EUR")


def test_quality_units_convert():
    assert convert_to(1.0, "%", "mg/kg") == pytest.approx(10_000.0)
    with pytest.raises(UnitProblem):
        convert_to(1.0, "%", "MJ/kg")
