"""Disclosure control: the public version of every output, with confidential facilities protected.

Every command hands what it is about to write (Results, a partner search, a scenario comparison, a
trade-off curve, a resilience ranking, balances, free text) through this module first, unless it was asked
for a private run (``--private``). The rules are those of docs/outputs.md, "Confidential facilities", in
the manner of a statistical office's cell suppression:

- identity: a confidential facility's name becomes ``Confidential facility N`` and its id ``confidential-N``
  (N in the order of the facilities table); the ids of its flows ``confidential-N/flow-K``; any other id or
  text that contains its name, id, flow ids or exact coordinates (case-insensitive substring) is rewritten,
  and a text that mentioned it loses its figures too;
- location: its coordinates are snapped to the centre of a 0.05° grid cell (about 5 km); distances from or
  to it are rounded to a 5 km band;
- figures: every figure of a row that belongs to it alone (its facility, balance, supply and demand rows,
  its partner-search and resilience rows) and every tonne and money figure of an exchange with it is
  suppressed (left empty); so is the exchanged/left-to-fate split of a public partner's flow that trades with
  it (that split less the published rows would give the suppressed exchange). Its figures survive only
  inside region totals and, when at least :data:`MIN_CONTRIBUTORS` confidential facilities contribute, in
  one "Other confidential facilities" aggregate row.

Only the I/O layer (symbiosis/cli.py, symbiosis/outputs/, symbiosis/compare.py) calls this; the analysis
itself always sees every figure.
"""

from __future__ import annotations

import copy
import logging
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

#: Grid cell (degrees) to whose centre a confidential facility is snapped on public outputs (~5 km).
CONFIDENTIAL_GRID_DEG = 0.05

#: Distances from or to a confidential facility are rounded to this band (km) on public outputs.
DISTANCE_BAND_KM = 5.0

#: An aggregate of confidential facilities' figures is published only with at least this many contributors.
MIN_CONTRIBUTORS = 3

#: Said by every private output, in its page title and in a top-level field of its JSON.
PRIVATE_MARK = "PRIVATE: contains confidential data"

#: What replaces a figure inside a free text that mentioned a confidential facility.
SUPPRESSED_FIGURE = "[suppressed]"

_FACILITY_COLUMNS = ("facility_id", "supply_facility", "demand_facility")
_FLOW_COLUMNS = ("supply_id", "demand_id", "flow_id")
_DISTANCE_COLUMNS = ("distance_km",)
#: Numbers kept on a confidential row: positions, counts and graph measures, not figures of the firm.
_KEEP_NUMBERS = {"lat", "lon", "rank", "point", "from_point", "to_point", "n_exchanges", "degree", "in_degree",
                 "out_degree", "betweenness", "component", "change", "ratio"}
#: Text kept on a confidential row: categories, not free text.
_KEEP_TEXT = {"facility_id", "supply_facility", "demand_facility", "supply_id", "demand_id", "flow_id", "name",
              "sector", "material", "primary_material", "material_class", "category", "fate", "fate_kind",
              "reason", "quality_fit", "change", "scenario", "stage", "quantity", "unit", "direction",
              "data_quality", "confidential", "currency", "what_would_make_it_viable"}
_NUMBER = re.compile(r"[-+]?(?:\d[\d,]*\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def confidential_mask(facilities: pd.DataFrame) -> pd.Series:
    """True for facilities marked confidential (the boolean ``confidential`` column; missing means none)."""
    if "confidential" not in facilities.columns:
        return pd.Series(False, index=facilities.index)
    col = facilities["confidential"]
    if col.dtype == object:
        col = col.map(lambda v: str(v).strip().lower() in {"true", "1", "yes", "y"} if v is not None else False)
    return col.fillna(False).astype(bool)


def snap_to_grid(values: pd.Series, grid_deg: float = CONFIDENTIAL_GRID_DEG) -> pd.Series:
    """Centre of the ``grid_deg`` cell each coordinate falls in."""
    return np.floor(values.astype(float) / grid_deg) * grid_deg + grid_deg / 2


def distance_band(values: Any, band_km: float = DISTANCE_BAND_KM) -> Any:
    """Distances rounded to the nearest ``band_km`` (at least one band, so a neighbour is not "0 km")."""
    return np.maximum(np.round(np.asarray(values, dtype=float) / band_km), 1.0) * band_km


def _coordinate_texts(lat: float, lon: float) -> list[str]:
    """The exact coordinates as a text may print them (3 to 6 decimals and as given)."""
    texts = []
    for value in (lat, lon):
        if value is None or not math.isfinite(float(value)):
            continue
        texts += [f"{float(value):.{k}f}" for k in (6, 5, 4, 3)] + [repr(float(value))]
    # A coordinate given with 2 decimals or fewer is a grid cell already; only longer prints identify a site.
    return sorted({t for t in texts if len(t.split(".")[-1]) >= 3}, key=len, reverse=True)


class Disclosure:
    """The pseudonyms and the scrubber for one set of facilities (see the module docstring).

    ``facilities``: a table with ``facility_id``, ``name``, ``confidential`` and ``lat``/``lon``;
    ``flows``: pairs (flow id, facility id), or a table with those columns, naming the flows of the region so
    that every flow id of a confidential facility gets its pseudonym (more may be met later: see
    :meth:`flow_pseudonym`).
    """

    def __init__(self, facilities: pd.DataFrame, flows: Iterable[tuple[str, str]] | pd.DataFrame = (),
                 grid_deg: float = CONFIDENTIAL_GRID_DEG):
        self.grid_deg = grid_deg
        mask = confidential_mask(facilities)
        hidden = facilities.loc[mask]
        self.id_map: dict[str, str] = {}
        self.name_map: dict[str, str] = {}
        self.coordinates: dict[str, tuple[float, float]] = {}
        self._names: dict[str, str] = {}
        for fid, name, lat, lon in zip(hidden["facility_id"].astype(str), hidden["name"].astype(str),
                                       hidden.get("lat", pd.Series(np.nan, index=hidden.index)),
                                       hidden.get("lon", pd.Series(np.nan, index=hidden.index)), strict=True):
            if fid.startswith("confidential-"):  # already public (a view passed through again)
                self.id_map[fid] = fid
                self.name_map[fid] = name
                continue
            n = len(self.id_map) + 1
            self.id_map[fid] = f"confidential-{n}"
            self.name_map[fid] = f"Confidential facility {n}"
            self.coordinates[fid] = (float(lat), float(lon))
            self._names[fid] = name
        self.flow_map: dict[str, str] = {}
        self._counters: dict[str, int] = {}
        if not self.id_map:
            pairs: Iterable[tuple[str, str]] = ()
        elif isinstance(flows, pd.DataFrame):
            mine = flows[flows["facility_id"].astype(str).isin(self.id_map.keys())]
            pairs = zip(mine["flow_id"].astype(str), mine["facility_id"].astype(str), strict=True)
        else:
            pairs = flows
        for flow_id, fid in pairs:
            self.flow_pseudonym(flow_id, fid)
        self._pattern: re.Pattern[str] | None = None

    # ------------------------------------------------------------------ construction helpers

    @classmethod
    def for_results(cls, results: Any, region: Any = None) -> Disclosure:
        """From Results (its facilities, supplies and demands) and, when given, the Region's flows."""
        pairs: list[tuple[str, str]] = []
        if not confidential_mask(results.facilities).any() and (
                region is None or not confidential_mask(region.facilities).any()):
            return cls(results.facilities)
        if region is not None and getattr(region, "flows", None) is not None:
            pairs += list(zip(region.flows["flow_id"].astype(str), region.flows["facility_id"].astype(str),
                              strict=True))
        for table, id_col in ((getattr(results, "supplies", None), "supply_id"),
                              (getattr(results, "demands", None), "demand_id")):
            if table is not None and id_col in table.columns:
                pairs += list(zip(table[id_col].astype(str), table["facility_id"].astype(str), strict=True))
        facilities = results.facilities
        if region is not None and getattr(region, "facilities", None) is not None:
            extra = region.facilities[~region.facilities["facility_id"].isin(facilities["facility_id"])]
            facilities = pd.concat([facilities, extra], ignore_index=True) if len(extra) else facilities
        return cls(facilities, pairs)

    @classmethod
    def for_region(cls, region: Any) -> Disclosure:
        return cls(region.facilities, region.flows[["flow_id", "facility_id"]])

    @property
    def n(self) -> int:
        """How many confidential facilities are masked."""
        return len(self.id_map)

    @property
    def active(self) -> bool:
        return bool(self.id_map)

    def flow_pseudonym(self, flow_id: str, facility_id: str) -> str:
        """The public id of a flow: a pseudonym for a confidential facility's flow (registered on first sight),
        else the id as it is (text scrubbing then rewrites any confidential id inside it)."""
        if flow_id in self.flow_map:
            return self.flow_map[flow_id]
        if facility_id in self.id_map and not flow_id.startswith("confidential-"):
            self._counters[facility_id] = self._counters.get(facility_id, 0) + 1
            self.flow_map[flow_id] = f"{self.id_map[facility_id]}/flow-{self._counters[facility_id]}"
            self._pattern = None
            return self.flow_map[flow_id]
        return flow_id

    # ------------------------------------------------------------------ text

    def _replacements(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for lat, lon in self.coordinates.values():
            for text in _coordinate_texts(lat, lon):
                out[text.lower()] = "[location suppressed]"
        for fid, pseudonym in self.id_map.items():
            if fid != pseudonym:
                out[fid.lower()] = pseudonym
        for flow_id, pseudonym in self.flow_map.items():
            out[flow_id.lower()] = pseudonym
        for fid, original in self._names.items():
            if original.strip():
                out[original.lower()] = self.name_map[fid]
        return {k: v for k, v in out.items() if k}

    def _regex(self) -> re.Pattern[str] | None:
        if self._pattern is None:
            self._lookup = self._replacements()
            if not self._lookup:
                return None
            self._pattern = re.compile(_trie_pattern(self._lookup), re.IGNORECASE)
        return self._pattern

    def text(self, value: Any) -> Any:
        """``value`` with confidential names, ids, flow ids and coordinates rewritten (case-insensitive
        substrings); a text that mentioned any of them also loses its figures."""
        if not isinstance(value, str) or not value or not self.active:
            return value
        pattern = self._regex()
        if pattern is None:
            return value
        parts = pattern.split(value)
        if len(parts) == 1:
            return value
        matches = pattern.findall(value)
        out = []
        for k, part in enumerate(parts):
            out.append(_NUMBER.sub(SUPPRESSED_FIGURE, part) if any(ch.isdigit() for ch in part) else part)
            if k < len(matches):
                out.append(self._lookup[matches[k].lower()])
        return "".join(out)

    def data(self, value: Any, *, tainted: bool = False) -> Any:
        """Every string inside nested dicts and lists scrubbed with :meth:`text`; an item of a list (such as
        one change of a scenario) that mentions a confidential facility also loses its numbers."""
        if isinstance(value, Mapping):
            return {self.text(k) if isinstance(k, str) else k: self.data(v, tainted=tainted)
                    for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.data(v, tainted=tainted or self._mentioned(v)) for v in value]
        if tainted and isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
            return SUPPRESSED_FIGURE
        return self.text(value)

    def _mentioned(self, value: Any) -> bool:
        if isinstance(value, Mapping):
            return any(self._mentioned(k) or self._mentioned(v) for k, v in value.items())
        if isinstance(value, (list, tuple)):
            return any(self._mentioned(v) for v in value)
        return self.mentions(value)

    def mentions(self, value: Any) -> bool:
        pattern = self._regex()
        return isinstance(value, str) and pattern is not None and pattern.search(value) is not None

    # ------------------------------------------------------------------ tables

    def hidden_rows(self, frame: pd.DataFrame, also: Iterable[str] = ()) -> pd.Series:
        """Rows of ``frame`` that belong to, or trade with, a confidential facility (or one of ``also``)."""
        ids = set(self.id_map) | set(also)
        hidden = pd.Series(False, index=frame.index)
        for col in _FACILITY_COLUMNS:
            if col in frame.columns:
                hidden |= frame[col].astype(str).isin(ids)
        return hidden

    def frame(self, frame: pd.DataFrame | None, *, hidden: pd.Series | None = None,
              locate_by: str = "facility_id", also: Iterable[str] = ()) -> pd.DataFrame | None:
        """The public version of a table: on hidden rows (default :meth:`hidden_rows`, with the public
        facilities ``also`` whose figures are suppressed too) figures are suppressed, distances banded and
        free text emptied; a confidential facility's own rows are located to a grid cell; everywhere ids are
        pseudonymised and text scrubbed."""
        if frame is None or not self.active:
            return frame
        out = frame.copy()
        if hidden is None:
            hidden = self.hidden_rows(out, also)
        hidden = hidden.reindex(out.index, fill_value=False)
        own = (out[locate_by].astype(str).isin(self.id_map.keys()) if locate_by in out.columns
               else pd.Series(False, index=out.index))
        if own.any():
            for axis in ("lat", "lon"):
                if axis in out.columns:
                    out[axis] = out[axis].astype(float)
                    out.loc[own, axis] = snap_to_grid(out.loc[own, axis], self.grid_deg)
            if "name" in out.columns:
                out["name"] = out["name"].astype(object)
                out.loc[own, "name"] = out.loc[own, locate_by].astype(str).map(self.name_map)
        if hidden.any():
            for col in out.columns:
                series = out[col]
                if col in _DISTANCE_COLUMNS:
                    out[col] = series.astype(float)
                    out.loc[hidden, col] = distance_band(series[hidden].to_numpy(dtype=float))
                elif pd.api.types.is_bool_dtype(series) or col in _KEEP_NUMBERS or col in _KEEP_TEXT:
                    continue
                elif pd.api.types.is_numeric_dtype(series):
                    out[col] = series.astype(float)
                    out.loc[hidden, col] = np.nan
                else:
                    out[col] = series.astype(object)
                    out.loc[hidden, col] = ""
            if "what_would_make_it_viable" in out.columns:
                out.loc[hidden, "what_would_make_it_viable"] = out.loc[hidden, "what_would_make_it_viable"].map(
                    _kinds_only)
        for col in _FACILITY_COLUMNS:
            if col in out.columns:
                out[col] = out[col].map(lambda v: self.id_map.get(str(v), v))
        for col in _FLOW_COLUMNS:
            if col in out.columns:
                out[col] = out[col].map(lambda v: self.flow_map.get(str(v), v))
        for col in out.columns:
            if out[col].dtype == object or pd.api.types.is_string_dtype(out[col]):
                uniques = pd.unique(out[col].dropna())
                changed = {u: self.text(u) for u in uniques if isinstance(u, str) and self.mentions(u)}
                if changed:
                    out[col] = out[col].map(lambda v, c=changed: c.get(v, v) if isinstance(v, str) else v)
        return out


def _trie_pattern(words: Iterable[str]) -> str:
    """One regular expression matching any of ``words``, longest first, built as a trie: matching costs the
    length of the text, not the number of words (a region may have hundreds of confidential flow ids)."""
    trie: dict[str, Any] = {}
    for word in words:
        node = trie
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}

    def build(node: dict[str, Any]) -> str:
        branches = [re.escape(ch) + build(child) for ch, child in sorted(node.items()) if ch]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        return f"(?:{body})?" if "" in node else body

    return build(trie)


def _kinds_only(text: Any) -> str:
    """"price: needs 12.3 per t; distance: 40 km ..." → "price; distance" (the kinds, no figures)."""
    if not isinstance(text, str) or not text:
        return ""
    kinds = []
    for part in text.split(";"):
        head = part.strip().split(":")[0].strip()
        if head in ("price", "distance", "quality") and head not in kinds:
            kinds.append(head)
    return "; ".join(kinds) if kinds else "not used by the optimum"


def for_results(results: Any, region: Any = None) -> Disclosure:
    """The :class:`Disclosure` of a run (its facilities and flows, and the Region's when given)."""
    return Disclosure.for_results(results, region)


def for_region(region: Any) -> Disclosure:
    """The :class:`Disclosure` of a Region (its facilities and every flow)."""
    return Disclosure.for_region(region)


# --------------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------------

#: Figures of a public flow that trades with a confidential facility: its split would give the exchange.
_SUPPLY_SPLIT = ("exchanged_t_per_yr", "to_fate_t_per_yr", "reason", "reason_detail", "exchanged_mwh_per_yr",
                 "to_fate_mwh_per_yr")
_DEMAND_SPLIT = ("secondary_t_per_yr", "secondary_received_t_per_yr", "virgin_t_per_yr", "secondary_mwh_per_yr",
                 "virgin_mwh_per_yr")


def public_results(results: Any, disclosure: Disclosure | None = None, region: Any = None) -> Any:
    """A copy of ``results`` safe to publish (module docstring); ``results`` itself when none is confidential.

    Region totals (``kpis``, the region balance) are kept. ``kpis`` gain ``confidential_facilities_masked``;
    the copy carries ``confidential_aggregates`` (a one-row facilities table "Other confidential facilities
    (N)" when N >= :data:`MIN_CONTRIBUTORS`, else empty) for the writers to append.
    """
    d = disclosure or for_results(results, region)
    if not d.active:
        return results
    if getattr(results, "disclosed", False):
        return results
    public = copy.copy(results)
    partners = complementary_facilities(results.facilities)
    exchanges = results.exchanges
    with_hidden = d.hidden_rows(exchanges, partners)
    public.exchanges = d.frame(exchanges, hidden=with_hidden, locate_by="")
    traded_supplies = set(exchanges.loc[with_hidden, "supply_id"].astype(str)) if len(exchanges) else set()
    traded_demands = set(exchanges.loc[with_hidden, "demand_id"].astype(str)) if len(exchanges) else set()

    supplies = d.frame(results.supplies, also=partners)
    if supplies is not None and len(traded_supplies):
        split = results.supplies["supply_id"].astype(str).isin(traded_supplies).to_numpy()
        _suppress(supplies, split, _SUPPLY_SPLIT)
    demands = d.frame(results.demands, also=partners)
    if demands is not None and len(traded_demands):
        split = results.demands["demand_id"].astype(str).isin(traded_demands).to_numpy()
        _suppress(demands, split, _DEMAND_SPLIT)
    public.supplies, public.demands = supplies, demands
    public.facilities = d.frame(results.facilities, also=partners)
    for attr in ("balances", "balances_after"):
        balances = getattr(results, attr, None)
        if balances is not None and getattr(balances, "table", None) is not None:
            setattr(public, attr, public_balances(balances, d, partners))
    for attr, columns in (("processors", ("facility_id",)), ("substances", ("from_facility", "to")),
                          ("substance_warnings", ("facility_id",))):  # symbiosis.network tables
        table = getattr(results, attr, None)
        if table is not None and len(table):
            ids = set(d.id_map) | partners
            hidden = pd.Series(False, index=table.index)
            for col in columns:
                hidden |= table[col].astype(str).isin(ids)
            setattr(public, attr, d.frame(table, hidden=hidden, locate_by=""))
    kpis = dict(getattr(results, "kpis", {}) or {})
    kpis["confidential_facilities_masked"] = d.n
    public.kpis = kpis
    if getattr(results, "parameters", None) is not None:
        public.parameters = d.data(dict(results.parameters))
    public.confidential_aggregates = {"facilities": aggregate_facilities(results.facilities, d)}
    public.disclosed = True
    logger.info("public outputs: %d confidential facilities masked", d.n)
    return public


def _suppress(frame: pd.DataFrame, rows: np.ndarray, columns: Iterable[str]) -> None:
    for col in columns:
        if col not in frame.columns:
            continue
        if pd.api.types.is_numeric_dtype(frame[col]):
            frame[col] = frame[col].astype(float)
            frame.loc[rows, col] = np.nan
        else:
            frame[col] = frame[col].astype(object)
            frame.loc[rows, col] = ""


def complementary_facilities(facilities: pd.DataFrame) -> set[str]:
    """Public facilities whose per-facility figures are suppressed too (secondary suppression).

    A region total (KPI, region balance) less the published rows of a per-facility table gives the sum of
    the suppressed rows; with fewer than :data:`MIN_CONTRIBUTORS` confidential facilities that sum would be
    theirs. So the figures of ``MIN_CONTRIBUTORS - n`` public facilities are suppressed with them: those
    with the smallest business-as-usual cost (the least information lost), ties in table order.
    """
    mask = confidential_mask(facilities)
    n = int(mask.sum())
    if n == 0 or n >= MIN_CONTRIBUTORS:
        return set()
    public = facilities.loc[~mask]
    size = (public["cost_bau"].abs() if "cost_bau" in public.columns
            else pd.Series(0.0, index=public.index)).fillna(0.0)
    order = size.sort_values(kind="stable").index[: MIN_CONTRIBUTORS - n]
    return set(public.loc[order, "facility_id"].astype(str))


def public_balances(balances: Any, d: Disclosure, partners: set[str] | None = None) -> Any:
    """Balances with a confidential facility's rows suppressed, and those of the ``partners`` of
    :func:`complementary_facilities` (the region rows are totals and stay)."""
    out = copy.copy(balances)
    if partners is None and d.active and balances.table is not None:
        table = balances.table
        sizes = table.groupby(table["facility_id"].astype(str), sort=False)["inputs"].sum().abs()
        facilities = pd.DataFrame({"facility_id": sizes.index, "cost_bau": sizes.to_numpy(),
                                   "confidential": sizes.index.isin(list(d.id_map))})
        partners = complementary_facilities(facilities)
    out.table = d.frame(balances.table, locate_by="", also=partners or ())
    out.suppressed_too = set(partners or ())  # for the tables written beside it (reconciled flows)
    if getattr(balances, "flows", None) is not None:
        out.flows = d.frame(balances.flows, locate_by="")
    figures = getattr(balances, "model_figures", None)
    if d.active and figures is not None and len(figures):  # a flow's figures are the facility's own
        hidden = {str(f) for f in d.id_map} | {str(f) for f in (partners or ())}
        out.model_figures = figures[~figures["facility_id"].astype(str).isin(hidden)]
    return out


def aggregate_facilities(facilities: pd.DataFrame, d: Disclosure) -> pd.DataFrame:
    """One row "Other confidential facilities (N)" with the sums of their figures, if N >= MIN_CONTRIBUTORS."""
    mask = confidential_mask(facilities)
    if mask.sum() < MIN_CONTRIBUTORS:
        return facilities.iloc[0:0]
    hidden = facilities.loc[mask]
    row: dict[str, Any] = {col: "" for col in facilities.columns}
    for col in facilities.columns:
        if col in ("lat", "lon", "activity") or pd.api.types.is_bool_dtype(facilities[col]):
            row[col] = np.nan if col != "confidential" else True
        elif pd.api.types.is_numeric_dtype(facilities[col]):
            row[col] = float(hidden[col].sum())
    row.update(facility_id="confidential", name=f"Other confidential facilities ({int(mask.sum())})")
    return pd.DataFrame([row], columns=facilities.columns)


def with_aggregates(view: Any, table: str, frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` plus the aggregate rows a public view carries for ``table`` (none on a private view)."""
    extra = (getattr(view, "confidential_aggregates", None) or {}).get(table)
    if extra is None or not len(extra):
        return frame
    return pd.concat([frame, extra], ignore_index=True)


def marker(private: bool, n_masked: int) -> dict[str, Any]:
    """The top-level disclosure fields of a JSON output."""
    if private:
        return {"disclosure": PRIVATE_MARK}
    return {"disclosure": "public", "confidential_facilities_masked": n_masked}


# --------------------------------------------------------------------------------------------------
# the other commands' results
# --------------------------------------------------------------------------------------------------


def public_partners(search: Any, d: Disclosure) -> Any:
    """A partner search as the public may see it: confidential receivers as "Confidential facility N",
    distance in a 5 km band, and their figures (and the stream's own, when the stream is a confidential
    facility's) suppressed."""
    if not d.active:
        return search
    out = copy.copy(search)
    supply = search.supply.copy()
    owner = str(supply.get("facility_id", ""))
    own_stream = owner in d.id_map
    partners = search.partners
    if len(partners):
        hidden = d.hidden_rows(partners)
        if own_stream:  # every row is a pair with the confidential supplier: public receivers keep their names
            hidden = pd.Series(True, index=partners.index)
        out.partners = d.frame(partners, hidden=hidden)
        if not own_stream and "used_by_optimum" in partners.columns and (hidden & partners["used_by_optimum"]).any():
            # the stream's total exchanged less the public receivers' rows would give the hidden one
            out.exchanged_t_per_yr = math.nan
    if own_stream:
        flow_id = str(getattr(search.supply, "name", "") or supply.get("flow_id", ""))
        for key in supply.index:
            value = supply[key]
            if key in ("material", "direction", "category", "quantity", "fate"):
                continue
            supply[key] = np.nan if isinstance(value, (int, float, np.number)) and not isinstance(value, bool) else ""
        supply["facility_id"] = d.id_map[owner]
        supply.name = d.flow_pseudonym(flow_id, owner)
        out.shadow_value_per_t = math.nan
        out.exchanged_t_per_yr = math.nan
    else:
        supply = supply.map(d.text)
    out.supply = supply
    out.parameters = d.data(dict(search.parameters))
    return out


def public_comparison(comparison: Any, d: Disclosure, also: Iterable[str] = ()) -> Any:
    """Scenario comparison: exchange changes with a confidential party (or with a public facility ``also``
    suppressed beside it, :func:`complementary_facilities`) keep material and change kind only, and the
    differences of a scenario whose changes touch a confidential facility lose their tonnes and money."""
    if not d.active:
        return comparison
    out = copy.copy(comparison)
    touched: set[str] = set()
    if len(comparison.exchanges):
        touched = set(comparison.exchanges.loc[d.hidden_rows(comparison.exchanges), "scenario"].astype(str))
        hidden = d.hidden_rows(comparison.exchanges, also)
        out.exchanges = d.frame(comparison.exchanges, hidden=hidden, locate_by="")
    differences = comparison.differences
    columns = [c for c in differences.columns if str(c) in touched]
    if columns:
        # a difference against the reference that comes from an exchange with a confidential facility is
        # attributable to it: the tonnes and money of that scenario's column go (counts stay)
        differences = differences.copy()
        figures = differences["unit"].astype(str) != "" if "unit" in differences.columns else slice(None)
        differences[columns] = differences[columns].astype(float)
        differences.loc[figures, columns] = np.nan
        comparison = copy.copy(comparison)
        comparison.differences = differences
    out.failed = {d.text(k): d.text(v) for k, v in comparison.failed.items()}
    out.reference = d.text(comparison.reference)
    for attr in ("kpis", "differences"):
        frame = getattr(comparison, attr)
        if len(frame):
            shown = d.frame(frame, hidden=pd.Series(False, index=frame.index), locate_by="")
            assert shown is not None
            setattr(out, attr, shown.rename(columns=lambda c: d.text(c) if isinstance(c, str) else c))
    return out


def public_tradeoff(result: Any, d: Disclosure) -> Any:
    """Trade-off curve: the points are region totals; changes with a confidential party lose their tonnes."""
    if not d.active:
        return result
    out = copy.copy(result)
    hidden = d.hidden_rows(result.changes)
    out.changes = d.frame(result.changes, hidden=hidden, locate_by="")
    if hidden.any() and "exchanged_t" in result.points.columns:
        # the tonnes exchanged at consecutive points differ by the changed exchanges, some of them hidden
        out.points = result.points.assign(exchanged_t=np.nan)
    return out


def public_resilience(result: Any, d: Disclosure) -> Any:
    """Resilience ranking: a confidential facility's row keeps its rank and graph measures, not its figures."""
    if not d.active:
        return result
    out = copy.copy(result)
    out.facilities = d.frame(result.facilities, locate_by="")
    out.exchanges = d.frame(result.exchanges, locate_by="")
    out.graph = d.frame(result.graph, hidden=pd.Series(False, index=result.graph.index), locate_by="")
    return out


def public_sources(sources: Mapping[str, Any] | None, d: Disclosure, cited_by_confidential: Iterable[str] = (),
                   cited_by_public: Iterable[str] = ()) -> dict[str, str]:
    """Region sources (citations) safe to print: an entry cited only by confidential facilities is dropped;
    the others are scrubbed of names, ids and coordinates (an entry that mentioned one loses its figures)."""
    sources = dict(sources or {})
    if not d.active:
        return {str(k): str(v) for k, v in sources.items()}
    private_keys = set(cited_by_confidential) - set(cited_by_public)
    return {d.text(str(k)): d.text(str(v)) for k, v in sources.items() if str(k) not in private_keys}


def citation_keys(frame: pd.DataFrame | None, rows: pd.Series | None = None) -> set[str]:
    """The citation keys in a ``source`` column (``;``-separated), of ``rows`` only when given."""
    if frame is None or "source" not in frame.columns:
        return set()
    column = frame["source"] if rows is None else frame.loc[rows, "source"]
    keys: set[str] = set()
    for text in column.dropna().astype(str):
        keys |= {part.strip() for part in text.split(";") if part.strip()}
    return keys


def region_sources(region: Any, d: Disclosure) -> dict[str, str]:
    """The region's ``sources`` for a public report (see :func:`public_sources`)."""
    settings = getattr(region, "settings", None)
    sources = getattr(settings, "sources", None) or {}
    if not d.active:
        return {str(k): str(v) for k, v in sources.items()}
    facilities, flows = region.facilities, region.flows
    hidden_f = facilities["facility_id"].astype(str).isin(d.id_map.keys())
    hidden_q = flows["facility_id"].astype(str).isin(d.id_map.keys())
    secret = citation_keys(facilities, hidden_f) | citation_keys(flows, hidden_q)
    shown = citation_keys(facilities, ~hidden_f) | citation_keys(flows, ~hidden_q)
    return public_sources(sources, d, secret, shown)
