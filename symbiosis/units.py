"""Unit conversion at the boundary: everything becomes t/yr, MWh/yr, km and currency per t or per MWh.

One pint registry serves the package. A year is 365 days (8,760 h), as operating and accounting figures
count it, not pint's Julian year of 365.25 days; a month is a twelfth of that. pint reads ``kt`` as a knot,
so it is refused with a message naming ``kilotonne``. ``m3`` is accepted as shorthand for ``m**3``. Every
failure inside pint (an offset unit such as ``degC`` in a rate, a unit of the wrong kind) comes out as a
:class:`UnitProblem`, which the loaders turn into a located problem.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache, wraps
from typing import TypeVar

import numpy as np
import pint

UREG: pint.UnitRegistry = pint.UnitRegistry(on_redefinition="ignore")
UREG.define("year = 365 * day = a = yr")
UREG.define("tonne_co2e = tonne")

MASS = UREG.tonne.dimensionality
VOLUME = (UREG.meter**3).dimensionality
ENERGY = UREG.megawatt_hour.dimensionality
TIME = UREG.hour.dimensionality

_SHORTHAND = [
    (re.compile(r"(?<![A-Za-z_])m3(?![A-Za-z0-9_])"), "m**3"),
    (re.compile(r"(?<![A-Za-z_])Nm3(?![A-Za-z0-9_])"), "m**3"),
    (re.compile(r"(?<![A-Za-z_])l(?![A-Za-z0-9_])"), "L"),
]


class UnitProblem(ValueError):
    """A unit string that cannot be used; the message says what was expected."""


_T = TypeVar("_T")


def _pint_errors_as_unit_problems(function: Callable[..., _T]) -> Callable[..., _T]:
    """pint raises many kinds (offset-unit calculus, dimensionality, undefined units); callers see one."""

    @wraps(function)
    def wrapper(*args: object, **kwargs: object) -> _T:
        try:
            return function(*args, **kwargs)
        except UnitProblem:
            raise
        except pint.OffsetUnitCalculusError:
            raise UnitProblem("a temperature-like unit with an offset (degC, degF) cannot be an amount, a rate "
                              "or a price; use K or delta_degC for differences") from None
        except pint.DimensionalityError as exc:
            raise UnitProblem(f"units do not fit ({exc})") from None
        except (pint.PintError, ValueError, TypeError, AttributeError, ZeroDivisionError, OverflowError) as exc:
            raise UnitProblem(f"cannot use this unit ({type(exc).__name__})") from None

    return wrapper


@dataclass(frozen=True)
class Converted:
    """An amount in internal units: ``quantity`` is ``mass`` (t/yr) or ``energy`` (MWh/yr)."""

    quantity: str
    value: float


def _normalise(text: str) -> str:
    cleaned = text.strip()
    for pattern, replacement in _SHORTHAND:
        cleaned = pattern.sub(replacement, cleaned)
    return cleaned


@lru_cache(maxsize=512)
def parse_unit(text: str) -> pint.Unit:
    """Parse a unit string, refusing the known traps with a message that says how to write it."""
    cleaned = _normalise(str(text))
    if not cleaned:
        raise UnitProblem("empty unit; expected a unit such as t, kg, m3, MWh or t/day")
    if len(cleaned) > 40:
        raise UnitProblem("a unit of more than 40 characters; expected a unit such as t, kg, m3, MWh or t/day")
    # pint evaluates numbers in a unit string: 9**9**9 would never finish
    exponents = re.findall(r"(?:\*\*|\^)\s*([^\sA-Za-z_*/()]*)", cleaned)
    if any(not re.fullmatch(r"[+-]?\d{1,2}", e) for e in exponents) or re.search(r"(\*\*|\^)[^A-Za-z_]*(\*\*|\^)",
                                                                               cleaned):
        raise UnitProblem("only small whole powers are allowed in a unit (m**3, m^3)")
    if re.search(r"(?<![A-Za-z_])kt(?![A-Za-z_])", cleaned):
        raise UnitProblem("'kt' is a knot (a speed) in pint; write 'kilotonne' (or '1000 t')")
    try:
        unit = UREG.parse_units(cleaned)
    except (pint.UndefinedUnitError, pint.DefinitionSyntaxError, AttributeError, TypeError, ValueError) as exc:
        raise UnitProblem(f"unknown unit ({exc})") from None
    except Exception as exc:  # pint raises assorted tokenizer errors on garbage
        raise UnitProblem(f"cannot parse unit ({exc})") from None
    return unit


def _to_amount_per_year(amount: float, unit: pint.Unit, period_days: float) -> pint.Quantity:
    """A rate (t/h, t/day, MWh/month) times one year, or an amount per period scaled to a year."""
    quantity = UREG.Quantity(amount, unit)
    if quantity.dimensionality in (MASS, VOLUME, ENERGY):
        return quantity * (365.0 / period_days)
    per_year = quantity * UREG.Quantity(1.0, UREG.year)
    if per_year.dimensionality in (MASS, VOLUME, ENERGY):
        return per_year
    raise UnitProblem(
        f"unit is {quantity.dimensionality}; expected a mass (t, kg, Mt), a volume (m3, L) or an energy "
        "(MWh, GJ), optionally per time (t/h, t/day, t/month, t/yr)"
    )


@_pint_errors_as_unit_problems
def convert_amount(amount: float, unit_text: str, *, density_t_per_m3: float | None = None,
                   period_days: float = 365.0) -> Converted:
    """Convert an amount to t/yr (mass and volume) or MWh/yr (energy).

    Volumes need the material's density (t/m3); a rate (t/h, m3/day, MWh/month) becomes per year; an amount
    without time is per period (``period_days`` long).
    """
    unit = parse_unit(unit_text)
    base = _to_amount_per_year(amount, unit, period_days)
    dims = base.dimensionality
    if dims == MASS:
        return Converted("mass", float(base.to(UREG.tonne).magnitude))
    if dims == VOLUME:
        if density_t_per_m3 is None or not math.isfinite(density_t_per_m3) or density_t_per_m3 <= 0:
            raise UnitProblem("a volume needs the material's density (density_t_per_m3 in materials.csv)")
        return Converted("mass", float(base.to(UREG.meter**3).magnitude) * density_t_per_m3)
    if dims == ENERGY:
        return Converted("energy", float(base.to(UREG.megawatt_hour).magnitude))
    raise UnitProblem(
        f"unit '{unit_text}' is {UREG.Quantity(1.0, unit).dimensionality}; expected a mass (t, kg, Mt), "
        "a volume (m3, L) or an energy (MWh, GJ), optionally per time (t/h, t/day)"
    )


@_pint_errors_as_unit_problems
def quantity_of(unit_text: str) -> str:
    """``mass`` or ``energy`` for a flow unit (volumes count as mass); raises UnitProblem otherwise."""
    return convert_amount(1.0, unit_text, density_t_per_m3=1.0).quantity


@_pint_errors_as_unit_problems
def convert_price(price: float, price_unit: str, *, currency: str,
                  density_t_per_m3: float | None = None) -> Converted:
    """Convert a price such as ``EUR/t``, ``EUR/kg``, ``EUR/m3`` or ``EUR/MWh`` to currency per t or per MWh.

    Returns the price per t (quantity ``mass``) or per MWh (``energy``). No exchange rates are applied:
    the currency must be the region's.
    """
    text = str(price_unit).strip()
    if "/" not in text:
        raise UnitProblem(f"a price unit looks like '{currency}/t'")
    money, _, per = text.partition("/")
    if money.strip().upper() != currency.upper():
        raise UnitProblem(f"price currency '{money.strip()}' differs from the region's currency '{currency}'")
    # price per one unit of `per`: the inverse conversion of one unit of amount
    per_unit = parse_unit(per)
    if UREG.Quantity(1.0, per_unit).dimensionality not in (MASS, VOLUME, ENERGY):
        raise UnitProblem("a price is per amount of material or energy (EUR/t, EUR/m3, EUR/MWh)")
    one = convert_amount(1.0, per, density_t_per_m3=density_t_per_m3)
    return Converted(one.quantity, price / one.value)


@_pint_errors_as_unit_problems
def convert_to(value: float, unit_text: str, target: str) -> float:
    """Convert a quality value between compatible units (e.g. % to mg/kg); raises UnitProblem."""
    try:
        return float(UREG.Quantity(value, parse_unit(unit_text)).to(parse_unit(target)).magnitude)
    except pint.DimensionalityError as exc:
        raise UnitProblem(f"cannot convert {unit_text} to {target} ({exc})") from None


@_pint_errors_as_unit_problems
def convert_values(values: np.ndarray, unit_text: str, target: str) -> np.ndarray:
    """Convert an array of values between compatible units, offsets included (degC to K); NaN stays NaN."""
    try:
        converted = UREG.Quantity(np.asarray(values, dtype=float), parse_unit(unit_text)).to(parse_unit(target))
    except pint.DimensionalityError as exc:
        raise UnitProblem(f"cannot convert {unit_text} to {target} ({exc})") from None
    return np.asarray(converted.magnitude, dtype=float)
