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
PROFILE_INPUT = ["profile", "period", "share", "source", "note"]
PROFILE_COLUMNS = ["profile", "period", "share"]
STORE_INPUT = ["store_id", "flow_id", "capacity", "cost_per_period", "loss_per_period", "opening_level",
               "closing_level", "source", "note"]
STORE_COLUMNS = ["store_id", "flow_id", "capacity", "cost_per_period", "loss_per_period", "opening_level",
                 "closing_level", "source"]


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

    @property
    def n_periods(self) -> int:
        return len(self.periods)

    @property
    def names(self) -> list[str]:
        return [str(p) for p in self.periods["period"]]

    def copy(self) -> TimeData:
        return TimeData(self.periods.copy(), self.profiles.copy(), dict(self.flow_profile), self.stores.copy())

    def shares(self, flow_ids: pd.Series | np.ndarray | list[str]) -> np.ndarray:
        """Per flow (rows) and period (columns), the share of its annual amount in that period."""
        ids = pd.Series(np.asarray(flow_ids, dtype=object)).astype(str)
        by_length = self.periods["share"].to_numpy(float)
        out = np.tile(by_length, (len(ids), 1))
        if not self.flow_profile or self.profiles.empty:
            return out
        table = (self.profiles.pivot_table(index="profile", columns="period", values="share", aggfunc="sum")
                 .reindex(columns=self.names).fillna(0.0))
        profile = ids.map(self.flow_profile)
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


def read_profiles(table: Table | None, problems: Problems, periods: pd.DataFrame | None) -> pd.DataFrame:
    """profiles.csv: ``profile, period, share``; each profile's shares sum to 1 over declared periods."""
    empty = pd.DataFrame(columns=PROFILE_COLUMNS)
    if table is None:
        return empty
    if not require_columns(table, ["profile", "period", "share"], problems, known=PROFILE_INPUT):
        return empty
    if periods is None:
        problems.add(table.file, "profiles need periods", row=1, column="period", found="no `periods:` key",
                     expected="`periods:` in region.yaml (e.g. 12 months) naming the periods of these rows")
        return empty
    skip = require_text(table, ["profile", "period"], problems)
    share = number_column(table, "share", problems, required=True, minimum=0, maximum=1,
                          expected="the share of the annual amount in this period, 0..1")
    frame = pd.DataFrame({"profile": text_column(table, "profile").to_numpy(),
                          "period": text_column(table, "period").to_numpy(), "share": share.to_numpy(),
                          "row": [table.row_number(i) for i in range(len(table.frame))]})
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
                     expected="one share per profile and period")
    sums = frame.groupby("profile", sort=False).agg(total=("share", "sum"), row=("row", "min"))
    for profile, total, row in zip(sums.index, sums["total"], sums["row"], strict=True):
        if not np.isnan(total) and abs(total - 1.0) > SHARE_TOLERANCE:
            problems.add(table.file, "the shares of a profile do not sum to 1", row=int(row), column="share",
                         found=f"profile {profile}: {total:.9g}",
                         expected=f"shares summing to 1 within {SHARE_TOLERANCE:g} (a period left out is 0)")
    return frame[PROFILE_COLUMNS].reset_index(drop=True)


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


def read_stores(table: Table | None, problems: Problems, flows: pd.DataFrame) -> pd.DataFrame:
    """stores.csv: one store per row, holding one flow's material (or heat) between periods."""
    empty = pd.DataFrame(columns=STORE_COLUMNS)
    if table is None:
        return empty
    if not require_columns(table, ["store_id", "flow_id", "capacity"], problems, known=STORE_INPUT):
        return empty
    require_text(table, ["store_id", "flow_id"], problems)
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
    })
    rows = np.array([table.row_number(i) for i in range(len(frame))])
    direction = dict(zip(flows["flow_id"], flows["direction"], strict=True))
    for position, flow_id in enumerate(frame["flow_id"]):
        if flow_id and direction.get(flow_id) not in ("in", "out"):
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
