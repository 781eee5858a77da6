"""Periods, profiles and stores as the loader reads them (region.yaml ``periods:``, profiles.csv, stores.csv).

The year is split into periods that tile it (``12 months``, ``4 quarters``, ``52 weeks``, ``1 year`` or named
seasons with their length in days). A flow's annual amount is spread over the periods by its ``profile`` (a
named row set of profiles.csv: one share per period, summing to 1) or, without one, by the periods' lengths.
A store (stores.csv) holds one flow's material (or heat) from one period to the next. Everything here is
checked with the located errors of every other table (docs/data-format.md, "Periods and storage"); the model
that uses it is in ``symbiosis.periods.model``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from symbiosis.errors import Problems
from symbiosis.tables import Table, duplicate_ids, number_column, require_columns, require_text, text_column

MONTHS = [("jan", 31), ("feb", 28), ("mar", 31), ("apr", 30), ("may", 31), ("jun", 30), ("jul", 31),
          ("aug", 31), ("sep", 30), ("oct", 31), ("nov", 30), ("dec", 31)]
QUARTERS = [("q1", 90), ("q2", 91), ("q3", 92), ("q4", 92)]
# 52 weeks of 7 days leave one day over: the last week has 8, so that the weeks tile the 365-day year.
WEEKS = [*((f"w{i:02d}", 7) for i in range(1, 52)), ("w52", 8)]
CALENDARS: dict[str, list[tuple[str, int]]] = {"12 months": MONTHS, "4 quarters": QUARTERS, "52 weeks": WEEKS,
                                               "1 year": [("year", 365)]}
_CALENDAR_TEXT = re.compile(r"^\s*(\d+)\s*(month|quarter|week|year)s?\s*$", re.IGNORECASE)
#: Shares of a profile must sum to 1 within this.
SHARE_TOLERANCE = 1e-6
YEAR_DAYS = (365.0, 366.0)

PERIOD_COLUMNS = ["period", "days", "share"]
PROFILE_INPUT = ["profile", "period", "share", "source", "note", "amount"]
#: ``amount`` is NaN on a profile of shares; on a profile of amounts ``share`` is the row's amount over the
#: profile's total, so that every profile spreads a figure the same way.
PROFILE_COLUMNS = ["profile", "period", "share", "amount"]
#: A flow's annual amount must equal the sum of its profile's amounts within this (relative).
AMOUNT_TOLERANCE = 1e-6
STORE_INPUT = ["store_id", "flow_id", "capacity", "cost_per_period", "loss_per_period", "opening_level",
               "closing_level", "source", "note", "material", "facility_id", "max_distance_km", "site_lat", "site_lon"]
#: ``material``, ``facility_id``, ``max_distance_km`` and ``site_lat``/``site_lon`` are a dedicated store site's
#: (symbiosis.periods.sites): empty (and NaN) on a store at a supplier or a receiver, whose ``flow_id`` is empty
#: on a site. A site given by its coordinates gets a facility of its own, its ``facility_id`` its ``store_id``
#: (:func:`site_facilities`).
STORE_COLUMNS = ["store_id", "flow_id", "capacity", "cost_per_period", "loss_per_period", "opening_level",
                 "closing_level", "source", "material", "facility_id", "max_distance_km", "site_lat", "site_lon"]
#: The NACE class a site given by its coordinates is filed under: 52.10, warehousing and storage.
SITE_SECTOR = "52.10"


@dataclass
class TimeData:
    """The region's periods (``period, days, share`` in order), profiles (``profile, period, share``), each
    flow's profile (``flow_id -> profile``; flows absent follow the periods' lengths) and stores
    (``STORE_COLUMNS``: capacity in t, or MWh for a heat flow; cost in currency per t (MWh) held per period;
    loss as the share of the stock lost per period; opening and closing levels, both NaN for a cyclic store
    whose level at the end of the year is its level at the start)."""

    periods: pd.DataFrame
    profiles: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=PROFILE_COLUMNS))
    flow_profile: dict[str, str] = field(default_factory=dict)
    stores: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=STORE_COLUMNS))
    #: Profiles of limits (``key -> profile``): a facility's intake limit (``intake_capacity_t_per_yr``), an in
    #: flow's (``max_intake_t_per_yr``) and a processor's capacity (keyed by its facility); absent keys follow
    #: the periods' lengths.
    facility_intake_profile: dict[str, str] = field(default_factory=dict)
    flow_intake_profile: dict[str, str] = field(default_factory=dict)
    processor_profile: dict[str, str] = field(default_factory=dict)

    @property
    def n_periods(self) -> int:
        return len(self.periods)

    @property
    def names(self) -> list[str]:
        return [str(p) for p in self.periods["period"]]

    def copy(self) -> TimeData:
        return TimeData(self.periods.copy(), self.profiles.copy(), dict(self.flow_profile), self.stores.copy(),
                        dict(self.facility_intake_profile), dict(self.flow_intake_profile),
                        dict(self.processor_profile))

    def shares(self, flow_ids: pd.Series | np.ndarray | list[str], by: dict[str, str] | None = None) -> np.ndarray:
        """Per flow (rows) and period (columns), the share of its annual amount in that period; with ``by``
        (e.g. ``facility_intake_profile``), per key of that mapping instead."""
        mapping = self.flow_profile if by is None else by
        ids = pd.Series(np.asarray(flow_ids, dtype=object)).astype(str)
        by_length = self.periods["share"].to_numpy(float)
        out = np.tile(by_length, (len(ids), 1))
        if not mapping or self.profiles.empty:
            return out
        table = (self.profiles.pivot_table(index="profile", columns="period", values="share", aggfunc="sum")
                 .reindex(columns=self.names).fillna(0.0))
        profile = ids.map(mapping)
        has = profile.notna().to_numpy()
        if has.any():
            out[has] = table.loc[profile[has].to_numpy()].to_numpy(float)
        return out


def calendar(periods: Any, problems: Problems, file: str) -> pd.DataFrame | None:
    """The ``periods:`` key as a table ``period, days, share`` (None when not given)."""
    if periods is None:
        return None
    if isinstance(periods, str):
        match = _CALENDAR_TEXT.match(periods)
        key = f"{match.group(1)} {match.group(2).lower()}s" if match else ""
        key = "1 year" if key == "1 years" else key
        if key not in CALENDARS:
            problems.add(file, "unknown periods", column="periods", found=periods,
                         expected="12 months, 4 quarters, 52 weeks, 1 year, or a list of seasons with their days")
            return None
        rows: list[tuple[str, float]] = [(name, float(days)) for name, days in CALENDARS[key]]
    else:
        rows = [(str(getattr(s, "name", "")).strip(), float(getattr(s, "days", 0.0))) for s in periods]
        if not rows:
            problems.add(file, "no periods", column="periods", found="an empty list",
                         expected="at least one season, e.g. {name: winter, days: 90}")
            return None
        seen: dict[str, int] = {}
        for position, (name, _) in enumerate(rows):
            if name.casefold() in seen:
                problems.add(file, "a period is named twice", column=f"periods[{position}].name", found=name,
                             expected=f"each name once (already at periods[{seen[name.casefold()]}])")
            seen[name.casefold()] = position
        total = sum(days for _, days in rows)
        if not any(abs(total - year) <= 1e-9 for year in YEAR_DAYS):
            problems.add(file, "the periods do not tile the year", column="periods",
                         found=f"{total:g} days in all ({', '.join(f'{n} {d:g}' for n, d in rows)})",
                         expected="periods whose days sum to 365 (or 366)")
            return None
    days = np.array([d for _, d in rows], dtype=float)
    return pd.DataFrame({"period": [n for n, _ in rows], "days": days, "share": days / days.sum()})


def _one_of(table: Table, columns: tuple[str, ...], problems: Problems, expected: str) -> bool:
    """True when ``table`` has one of ``columns`` at least; else a located problem naming the first of them."""
    if any(c in table.frame.columns for c in columns):
        return True
    problems.add(table.file, "a required column is missing", row=1, column=columns[0],
                 found=", ".join(map(str, table.frame.columns)), expected=expected)
    return False


def read_profiles(table: Table | None, problems: Problems, periods: pd.DataFrame | None) -> pd.DataFrame:
    """profiles.csv: ``profile, period`` and either ``share`` (each profile's shares sum to 1 over declared
    periods) or ``amount`` (the amount in that period; the profile's shares are the amounts over their sum)."""
    empty = pd.DataFrame(columns=PROFILE_COLUMNS)
    if table is None:
        return empty
    if not require_columns(table, ["profile", "period"], problems, known=PROFILE_INPUT):
        return empty
    if not _one_of(table, ("share", "amount"), problems,
                   "a share column (the share of the annual amount in each period) or an amount column (the amount "
                   "in each period)"):
        return empty
    if periods is None:
        problems.add(table.file, "profiles need periods", row=1, column="period", found="no `periods:` key",
                     expected="`periods:` in region.yaml (e.g. 12 months) naming the periods of these rows")
        return empty
    skip = require_text(table, ["profile", "period"], problems)
    share = number_column(table, "share", problems, minimum=0, maximum=1,
                          expected="the share of the annual amount in this period, 0..1")
    amount = number_column(table, "amount", problems, allow_negative=False,
                           expected="the amount in this period (≥ 0), in the unit of the flows naming the profile")
    rows = np.array([table.row_number(i) for i in range(len(table.frame))], dtype=np.int64)
    share_text, amount_text = text_column(table, "share") != "", text_column(table, "amount") != ""
    for position in np.flatnonzero((share_text & amount_text).to_numpy() & ~skip):
        problems.add(table.file, "both a share and an amount", row=int(rows[position]), column="amount",
                     found=f"share {table.frame['share'].iat[position]}, amount {table.frame['amount'].iat[position]}",
                     expected="one of the two: a share of the annual amount, or the amount in this period")
    for position in np.flatnonzero(~(share_text | amount_text).to_numpy() & ~skip):
        problems.add(table.file, "a value is required", row=int(rows[position]),
                     column="share" if "share" in table.frame.columns else "amount", found="an empty cell",
                     expected="the share of the annual amount in this period, or the amount in this period")
    frame = pd.DataFrame({"profile": text_column(table, "profile").to_numpy(),
                          "period": text_column(table, "period").to_numpy(), "share": share.to_numpy(),
                          "amount": amount.to_numpy(), "by_amount": amount_text.to_numpy(), "row": rows})
    known = {str(p).casefold(): str(p) for p in periods["period"]}
    canonical = frame["period"].str.casefold().map(known)
    for position in np.flatnonzero((canonical.isna() & ~skip).to_numpy()):
        problems.add(table.file, "unknown period", row=int(frame["row"].iat[position]), column="period",
                     found=frame["period"].iat[position], expected=f"one of {', '.join(known.values())}")
    frame["period"] = canonical
    frame = frame[~skip & canonical.notna().to_numpy()]
    twice = frame.duplicated(["profile", "period"], keep="first")
    for position in np.flatnonzero(twice.to_numpy()):
        problems.add(table.file, "a period appears twice in a profile", row=int(frame["row"].iat[position]),
                     column="period", found=f"{frame['profile'].iat[position]} {frame['period'].iat[position]}",
                     expected="one share or amount per profile and period")
    # A profile is of shares or of amounts, as its first row says.
    by_amount = frame.groupby("profile", sort=False)["by_amount"].transform("first").astype(bool)
    mixed = frame["by_amount"].astype(bool) != by_amount
    for position in np.flatnonzero(mixed.to_numpy()):
        first = "amounts" if by_amount.iat[position] else "shares"
        problems.add(table.file, "a profile mixes shares and amounts", row=int(frame["row"].iat[position]),
                     column="amount" if first == "shares" else "share",
                     found=f"profile {frame['profile'].iat[position]}",
                     expected=f"{first} on every row of the profile, as on its first row")
    shares, amounts = frame[~by_amount.to_numpy()], frame[by_amount.to_numpy()]
    sums = shares.groupby("profile", sort=False).agg(total=("share", "sum"), row=("row", "min"))
    for profile, total, row in zip(sums.index, sums["total"], sums["row"], strict=True):
        if not np.isnan(total) and abs(total - 1.0) > SHARE_TOLERANCE:
            problems.add(table.file, "the shares of a profile do not sum to 1", row=int(row), column="share",
                         found=f"profile {profile}: {total:.9g}",
                         expected=f"shares summing to 1 within {SHARE_TOLERANCE:g} (a period left out is 0)")
    totals = amounts.groupby("profile", sort=False).agg(total=("amount", "sum"), row=("row", "min"))
    for profile, total, row in zip(totals.index, totals["total"], totals["row"], strict=True):
        if not total > 0:
            problems.add(table.file, "the amounts of a profile sum to 0", row=int(row), column="amount",
                         found=f"profile {profile}: 0 in every period",
                         expected="an amount > 0 in at least one period (a flow of nothing needs no profile)")
    frame = frame.copy()
    frame["amount"] = np.where(by_amount, frame["amount"], np.nan)
    total = frame.groupby("profile", sort=False)["amount"].transform("sum").to_numpy(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        frame["share"] = np.where(by_amount, frame["amount"].to_numpy(float) / np.where(total > 0, total, np.nan),
                                  frame["share"])
    return frame[PROFILE_COLUMNS].reset_index(drop=True)


def profile_totals(profiles: pd.DataFrame) -> pd.Series:
    """Per profile of amounts, the sum of its amounts (profiles of shares are left out)."""
    given = profiles[profiles["amount"].notna()] if "amount" in profiles.columns else profiles.iloc[:0]
    return given.groupby("profile")["amount"].sum()


def flow_profiles(table: Table | None, problems: Problems, profiles: pd.DataFrame) -> dict[str, str]:
    """The flows table's optional ``profile`` column: flow_id -> a profile of profiles.csv."""
    if table is None or "profile" not in table.frame.columns:
        return {}
    names = text_column(table, "profile").reset_index(drop=True)
    flow_ids = text_column(table, "flow_id").reset_index(drop=True)
    known = set(profiles["profile"])
    for position in np.flatnonzero(((names != "") & ~names.isin(known)).to_numpy()):
        problems.add(table.file, "unknown profile", row=table.row_number(int(position)), column="profile",
                     found=names.iat[position],
                     expected=f"a profile of profiles.csv ({', '.join(sorted(known)) or 'none given'})")
    given = (names != "") & names.isin(known)
    return dict(zip(flow_ids[given], names[given], strict=True))


def read_stores(table: Table | None, problems: Problems, flows: pd.DataFrame, *,
                facilities: pd.DataFrame | None = None, materials: pd.DataFrame | None = None) -> pd.DataFrame:
    """stores.csv: one store per row, holding one flow's material (or heat) between periods; or a dedicated
    store site (``material`` and ``facility_id`` instead of ``flow_id``: symbiosis.periods.sites), checked
    against ``facilities`` and the reference ``materials`` table (indexed by id) when given."""
    empty = pd.DataFrame(columns=STORE_COLUMNS)
    if table is None:
        return empty
    if not require_columns(table, ["store_id", "capacity"], problems, known=STORE_INPUT):
        return empty
    if not _one_of(table, ("flow_id", "material"), problems,
                   "flow_id (a store at a supplier or receiver) or material and facility_id (a dedicated store site)"):
        return empty
    require_text(table, ["store_id"], problems)
    site = _site_columns(table, problems, facilities, materials)
    flow_text = text_column(table, "flow_id")
    for position in np.flatnonzero(((flow_text == "") & ~site).to_numpy()).tolist():
        problems.add(table.file, "a value is required", row=table.row_number(position), column="flow_id",
                     found="an empty cell",
                     expected="the flow the store holds (or, for a dedicated store site, a material and a "
                              "facility_id)")
    duplicate_ids(table, "store_id", problems)
    unit = "t (MWh for heat)"
    capacity = number_column(table, "capacity", problems, required=True, allow_negative=False,
                             expected=f"the most the store holds, {unit}")
    cost = number_column(table, "cost_per_period", problems, allow_negative=False,
                         expected=f"the cost of holding one {unit} for one period")
    loss = number_column(table, "loss_per_period", problems, minimum=0, maximum=1,
                         expected="the share of the stock lost per period, 0..1")
    opening = number_column(table, "opening_level", problems, allow_negative=False,
                            expected=f"the stock at the start of the first period, {unit}")
    closing = number_column(table, "closing_level", problems, allow_negative=False,
                            expected=f"the stock at the end of the last period, {unit}")
    frame = pd.DataFrame({
        "store_id": text_column(table, "store_id").to_numpy(), "flow_id": text_column(table, "flow_id").to_numpy(),
        "capacity": capacity.to_numpy(), "cost_per_period": cost.fillna(0.0).to_numpy(),
        "loss_per_period": loss.fillna(0.0).to_numpy(), "opening_level": opening.to_numpy(),
        "closing_level": closing.where(closing.notna(), opening).to_numpy(),
        "source": text_column(table, "source").to_numpy(),
        "material": text_column(table, "material").to_numpy(),
        "facility_id": text_column(table, "facility_id").to_numpy(),
        "max_distance_km": number_column(table, "max_distance_km", problems, allow_negative=False,
                                         expected="the longest leg into or out of the store site, km (≥ 0)").to_numpy(),
        "site_lat": number_column(table, "site_lat", problems, minimum=-90, maximum=90,
                                  expected="the store site's latitude in degrees (WGS84)").to_numpy(),
        "site_lon": number_column(table, "site_lon", problems, minimum=-180, maximum=180,
                                  expected="the store site's longitude in degrees (WGS84)").to_numpy(),
    })
    placed = frame["facility_id"].eq("") & frame["site_lat"].notna() & frame["site_lon"].notna() & site.to_numpy()
    frame["facility_id"] = np.where(placed, frame["store_id"], frame["facility_id"])
    rows = np.array([table.row_number(i) for i in range(len(frame))])
    direction = dict(zip(flows["flow_id"], flows["direction"], strict=True))
    for position, flow_id in enumerate(frame["flow_id"]):
        if flow_id and not site.iat[position] and direction.get(flow_id) not in ("in", "out"):
            problems.add(table.file, "unknown flow" if flow_id not in direction else "a store needs an in or out flow",
                         row=int(rows[position]), column="flow_id", found=flow_id,
                         expected="the flow_id of an out flow (the store holds its surplus) or an in flow (it "
                                  "holds deliveries for it)")
    closing_only = (opening.isna() & closing.notna()).to_numpy()
    for position in np.flatnonzero(closing_only).tolist():
        problems.add(table.file, "a closing level needs an opening level", row=int(rows[position]),
                     column="opening_level", found="an empty cell",
                     expected="the opening level too (or neither: the store is then cyclic, the year's end level "
                              "carried into its start)")
    for column in ("opening_level", "closing_level"):
        over = (frame[column] > frame["capacity"]).to_numpy()
        for position in np.flatnonzero(over).tolist():
            problems.add(table.file, "a level above the store's capacity", row=int(rows[position]), column=column,
                         found=f"{frame[column].iat[position]:g}",
                         expected=f"at most the capacity {frame['capacity'].iat[position]:g}")
    return frame[STORE_COLUMNS]


def fill_amounts_from_profiles(table: Table | None, problems: Problems, profiles: pd.DataFrame,
                               period_days: float) -> None:
    """Flows naming a profile of amounts: an empty ``amount`` is taken as the sum of the profile's amounts
    (written into ``table`` before the flows are read, in the flow's own unit per the region's ``period``),
    and a given one must equal that sum within ``AMOUNT_TOLERANCE``. The amounts are in the flow's unit, which
    must then be an amount (t, MWh, m3), not a rate (t/h)."""
    from symbiosis.units import ENERGY, MASS, VOLUME, UnitProblem, parse_unit

    totals = profile_totals(profiles)
    if table is None or totals.empty:
        return
    # The flows' headers are matched to their names (case, spaces) only when the flows are read, after this.
    header = {str(c).strip().casefold(): c for c in table.frame.columns}
    if not {"profile", "amount", "unit"} <= set(header):
        return
    names = table.frame[header["profile"]].astype(str).str.strip().reset_index(drop=True)
    named = np.flatnonzero(names.isin(totals.index).to_numpy())
    if not len(named):
        return
    units = table.frame[header["unit"]].astype(str).str.strip().reset_index(drop=True)
    cells = table.frame[header["amount"]].astype(str).reset_index(drop=True)
    amount_at = table.frame.columns.get_loc(header["amount"])
    per_year = 365.0 / period_days
    for position in named.tolist():
        row, profile, unit = table.row_number(position), names.iat[position], units.iat[position]
        total = float(totals[profile])
        try:
            dimension = parse_unit(unit).dimensionality if unit else None
        except UnitProblem:
            continue  # the flows table reports the unit
        if dimension not in (MASS, VOLUME, ENERGY):
            problems.add(table.file, "a profile of amounts needs a unit without time", row=row, column="unit",
                         found=unit or "an empty cell",
                         expected=f"an amount such as t, MWh or m3: profile {profile}'s amounts are each "
                                  "period's amount in this unit, not a rate")
            continue
        cell = cells.iat[position].strip()
        if cell == "":
            value = total / per_year
            text = f"{value:.0f}" if value == round(value) else repr(value)
            # a semicolon file written with decimal commas reads its numbers so
            table.frame.iat[position, amount_at] = text.replace(".", ",") if table.decimal_comma else text
            continue
        given = pd.to_numeric(cell, errors="coerce")
        if np.isnan(given) and table.decimal_comma:
            given = pd.to_numeric(cell.replace(".", "").replace(",", "."), errors="coerce")
        if np.isnan(given):
            continue  # the flows table reports a cell that is not a number
        annual = float(given) * per_year
        if abs(annual - total) > AMOUNT_TOLERANCE * max(abs(total), 1.0):
            over = "" if per_year == 1.0 else f" ({float(given):.9g} per {period_days:g} days is {annual:.9g} a year)"
            problems.add(table.file, "the amount contradicts its profile's amounts", row=row, column="amount",
                         found=f"{cell} {unit}{over}; the amounts of profile {profile} sum to {total:.9g} {unit}",
                         expected="the sum of the profile's amounts over the year, or an empty cell to take it")


def limit_profiles(table: Table | None, key_column: str, profile_column: str, limit: pd.Series, limit_column: str,
                   problems: Problems, profiles: pd.DataFrame, unit: str) -> tuple[dict[str, str], pd.Series]:
    """A limit's profile (facilities' ``intake_profile``, flows' ``intake_profile``, processors'
    ``capacity_profile``): ``key -> profile`` and the annual limits (``limit``, parsed and aligned with the
    table's rows; NaN = none) with those of a profile of amounts filled in where empty.

    A profile of shares spreads the annual limit over the periods; a profile of amounts gives the limit in each
    period, and the annual figure must then be their sum (or empty, to take it). A profile on no limit at all
    is refused: it would limit nothing."""
    limit = limit.reset_index(drop=True).astype(float).copy()
    if table is None or profile_column not in table.frame.columns:
        return {}, limit
    names = text_column(table, profile_column).reset_index(drop=True)
    keys = text_column(table, key_column).reset_index(drop=True)
    known = set(profiles["profile"])
    for unknown in np.flatnonzero(((names != "") & ~names.isin(known)).to_numpy()).tolist():
        problems.add(table.file, "unknown profile", row=table.row_number(unknown), column=profile_column,
                     found=names.iat[unknown],
                     expected=f"a profile of profiles.csv ({', '.join(sorted(known)) or 'none given'})")
    given = ((names != "") & names.isin(known)).to_numpy()
    totals = profile_totals(profiles)
    for position in np.flatnonzero(given).tolist():
        name, value, row = names.iat[position], float(limit.iat[position]), table.row_number(position)
        if name in totals.index:
            total = float(totals[name])
            if np.isnan(value):
                limit.iat[position] = total
            elif abs(value - total) > AMOUNT_TOLERANCE * max(abs(total), 1.0):
                problems.add(table.file, "the limit contradicts its profile's amounts", row=row, column=limit_column,
                             found=f"{value:.9g} {unit}; the amounts of profile {name} sum to {total:.9g}",
                             expected="the sum of the profile's amounts over the year, or an empty cell to take it")
        elif np.isnan(value):
            problems.add(table.file, "a profile needs a limit to spread", row=row, column=limit_column,
                         found="an empty cell",
                         expected=f"the annual limit in {unit} that profile {name} spreads over the periods (or "
                                  "name a profile of amounts, whose sum is then the annual limit)")
    return dict(zip(keys[given], names[given], strict=True)), limit


def _site_columns(table: Table, problems: Problems, facilities: pd.DataFrame | None,
                  materials: pd.DataFrame | None) -> pd.Series:
    """Rows of stores.csv that are dedicated store sites (a ``material`` given), with their own checks: a site
    names a material (known to the reference) and a facility (its place), and no flow."""
    material, facility = text_column(table, "material"), text_column(table, "facility_id")
    flow, store_id = text_column(table, "flow_id"), text_column(table, "store_id")
    lat, lon = text_column(table, "site_lat"), text_column(table, "site_lon")
    site = (material != "").reset_index(drop=True)
    known_materials = None if materials is None else {str(m) for m in materials.index}
    energy = set() if materials is None or "class" not in materials.columns else \
        {str(m) for m in materials.index[materials["class"].astype(str) == "energy"]}
    known_facilities = None if facilities is None else set(facilities["facility_id"].astype(str))
    for position in np.flatnonzero(site.to_numpy()).tolist():
        row = table.row_number(position)
        if flow.iat[position] != "":
            problems.add(table.file, "a store site with a flow", row=row, column="flow_id", found=flow.iat[position],
                         expected="either a flow_id (a store at that supplier or receiver) or a material and a "
                                  "facility_id (a dedicated store site), not both")
        if known_materials is not None and material.iat[position] not in known_materials:
            problems.add(table.file, "unknown material", row=row, column="material", found=material.iat[position],
                         expected="a material of the reference materials.csv (the material the site holds)")
        elif material.iat[position] in energy:
            problems.add(table.file, "a store site holds material, not heat", row=row, column="material",
                         found=material.iat[position],
                         expected="a material in t (heat is stored at its supplier or receiver: a store with the "
                                  "heat flow's flow_id)")
        has_lat, has_lon = lat.iat[position] != "", lon.iat[position] != ""
        if facility.iat[position] != "" and (has_lat or has_lon):
            problems.add(table.file, "a store site placed twice", row=row,
                         column="site_lat" if has_lat else "site_lon", found=f"facility {facility.iat[position]} and "
                         f"coordinates {lat.iat[position]}, {lon.iat[position]}",
                         expected="either a facility_id (the site is at that facility) or site_lat and site_lon")
        elif facility.iat[position] == "" and has_lat != has_lon:
            problems.add(table.file, "a value is required", row=row, column="site_lon" if has_lat else "site_lat",
                         found="an empty cell", expected="both site_lat and site_lon (WGS84 degrees)")
        elif facility.iat[position] == "" and not has_lat:
            problems.add(table.file, "a value is required", row=row, column="facility_id", found="an empty cell",
                         expected="the facility where the store site is (a row of facilities.csv), or its own "
                                  "site_lat and site_lon")
        elif facility.iat[position] == "" and known_facilities is not None and \
                store_id.iat[position] in known_facilities:
            problems.add(table.file, "a store site's id is a facility's", row=row, column="store_id",
                         found=store_id.iat[position],
                         expected="a store_id no facility has (a site given by its coordinates becomes a facility "
                                  "of that id), or facility_id to place the site at that facility")
        elif facility.iat[position] != "" and known_facilities is not None and \
                facility.iat[position] not in known_facilities:
            problems.add(table.file, "unknown facility", row=row, column="facility_id", found=facility.iat[position],
                         expected="a facility_id of facilities.csv (the store site's place)")
    for position in np.flatnonzero(((facility != "").reset_index(drop=True) & ~site).to_numpy()).tolist():
        problems.add(table.file, "a facility_id without a material", row=table.row_number(position),
                     column="material", found="an empty cell",
                     expected="the material a dedicated store site holds (or no facility_id: a store at a supplier "
                              "or receiver is at that flow's facility)")
    return site


def site_facilities(stores: pd.DataFrame) -> pd.DataFrame:
    """A facility for each store site given by its coordinates (``site_lat``, ``site_lon``): id and name its
    ``store_id``, sector :data:`SITE_SECTOR` (warehousing and storage), not confidential; the other facility
    columns empty. Empty when there is none."""
    if "site_lat" not in stores.columns or not len(stores):
        return pd.DataFrame(columns=["facility_id", "name", "sector", "lat", "lon", "confidential"])
    placed = stores[stores["site_lat"].notna() & stores["site_lon"].notna()
                    & (stores["facility_id"].astype(str) == stores["store_id"].astype(str))]
    return pd.DataFrame({"facility_id": placed["store_id"].astype(str).to_numpy(),
                         "name": placed["store_id"].astype(str).to_numpy(), "sector": SITE_SECTOR,
                         "lat": placed["site_lat"].to_numpy(float), "lon": placed["site_lon"].to_numpy(float),
                         "confidential": False})
