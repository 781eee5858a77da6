"""Waste under permit: which streams need a receiver's permit, the permit screen on arcs, and what a permit
change would be worth.

A stream (supply) is *waste* when its category is ``waste`` or ``wastewater`` and it has no end-of-waste
status (flows column ``end_of_waste``; a ``by_product`` has it by default: WFD art. 5/6). Its EWC code is the
flow's ``ewc_code``, else the first of its material's ``ewc_codes``; it is *hazardous* when that code is a
hazardous entry of the European List of Waste (or, with no code, when the material says so). Under the
region's ``permits_required_for`` (``hazardous``, the default; ``all_waste``; ``none``) such a stream may go
only to a facility whose permit (``permits.csv``: ``facility_id, ewc_code``) lists its code; other arcs are
screened out with reason ``no_permit`` and kept aside (``Candidates.permit_screened``) so that the
``permit_opportunities`` table can say what they would be worth.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from symbiosis.network import ewc

PERMIT_COLUMNS = ["facility_id", "ewc_code", "max_t_per_yr", "source"]
PERMIT_MODES = ("hazardous", "all_waste", "none")
WASTE_CATEGORIES = ("waste", "wastewater")
OPPORTUNITY_COLUMNS = ["supply_id", "demand_id", "supply_facility", "demand_facility", "ewc_code", "hazardous",
                       "amount_t_per_yr", "gain_total", "gain_stream"]


def supply_law(region: Any, chosen: pd.DataFrame) -> pd.DataFrame:
    """Per chosen supply flow: ``ewc_code`` (text, '' if none), ``hazardous`` and ``needs_permit``."""
    materials = region.reference.materials
    own = chosen["ewc_code"].fillna("").astype(str) if "ewc_code" in chosen else pd.Series("", index=chosen.index)
    if not materials.empty and "ewc_codes" in materials:
        first = materials["ewc_codes"].fillna("").astype(str).str.split(";").str[0].str.strip()
        from_material = chosen["material"].map(first).fillna("")
        material_hazardous = chosen["material"].map(
            materials["hazardous"].astype(str).str.lower().eq("true")).fillna(False).astype(bool)
    else:
        from_material = pd.Series("", index=chosen.index)
        material_hazardous = pd.Series(False, index=chosen.index)
    code = own.where(own != "", from_material)
    table = ewc.entries(region.reference.ewc)
    hazardous = code.map(table["hazardous"]).astype("boolean").fillna(False).astype(bool)
    hazardous = hazardous | ((code == "") & material_hazardous)
    eow = ~chosen["category"].isin(WASTE_CATEGORIES)  # the default: a by-product is no waste (WFD art. 5)
    if "end_of_waste" in chosen:
        given = chosen["end_of_waste"].astype(object)
        eow = eow.mask(given.isin([True]), True).mask(given.isin([False]), False)
    mode = getattr(region.settings, "permits_required_for", "hazardous")
    waste = ~eow
    needs = waste & hazardous if mode == "hazardous" else waste & ((code != "") | hazardous) \
        if mode == "all_waste" else pd.Series(False, index=chosen.index)
    return pd.DataFrame({"ewc_code": code.to_numpy(), "hazardous": hazardous.to_numpy(bool),
                         "needs_permit": needs.to_numpy(bool)}, index=chosen.index)


def permitted(permits: pd.DataFrame, facility: np.ndarray, code: np.ndarray) -> np.ndarray:
    """Per (facility, code) pair, whether a permit lists it (vectorised)."""
    if permits is None or permits.empty or len(facility) == 0:
        return np.zeros(len(facility), dtype=bool)
    keys = pd.Index(permits["facility_id"].astype(str) + "\x1f" + permits["ewc_code"].astype(str))
    wanted = pd.Series(facility).astype(str) + "\x1f" + pd.Series(code).astype(str)
    return wanted.isin(keys).to_numpy()


def opportunities(candidates: Any, solution: Any, solve: Callable[[Any], Any], tol: float = 1e-6
                  ) -> pd.DataFrame:
    """Exchanges that need a permit change, with what they would be worth.

    Solves once more with the permit screen relaxed (only if an arc was screened for ``no_permit``) and lists
    the screened arcs the relaxed optimum uses, with their tonnes. ``gain_total`` is the objective gain of
    relaxing every permit (strict minus relaxed objective, ≥ 0, objective units per year); ``gain_stream``
    that of relaxing only this stream's arcs (one more solve per stream listed)."""
    from dataclasses import replace

    from symbiosis.candidates import Candidates

    screened = getattr(candidates, "permit_screened", None)
    if screened is None or len(screened) == 0:
        return pd.DataFrame(columns=OPPORTUNITY_COLUMNS)

    def with_arcs(extra: pd.DataFrame) -> Candidates:
        arcs = pd.concat([candidates.arcs, extra], ignore_index=True)
        arcs = arcs.sort_values(["s", "d"], kind="stable").reset_index(drop=True)
        # replace keeps the processors and the permit tonnages (a permit change adds a code, not tonnes).
        return replace(candidates, arcs=arcs, permit_screened=None)

    relaxed_candidates = with_arcs(screened)
    relaxed = solve(relaxed_candidates)
    arcs = relaxed_candidates.arcs
    key = pd.MultiIndex.from_frame(screened[["s", "d"]])
    is_screened = pd.MultiIndex.from_frame(arcs[["s", "d"]]).isin(key)
    used = np.flatnonzero(is_screened & (relaxed.x > tol))
    if len(used) == 0:
        return pd.DataFrame(columns=OPPORTUNITY_COLUMNS)
    sup = candidates.supplies
    s = arcs["s"].to_numpy(np.int64)[used]
    table = pd.DataFrame({
        "supply_id": arcs["supply_id"].to_numpy()[used],
        "demand_id": arcs["demand_id"].to_numpy()[used],
        "supply_facility": arcs["supply_facility"].to_numpy()[used],
        "demand_facility": arcs["demand_facility"].to_numpy()[used],
        "ewc_code": sup["ewc_code"].to_numpy()[s] if "ewc_code" in sup else "",
        "hazardous": sup["hazardous"].to_numpy()[s] if "hazardous" in sup else False,
        "amount_t_per_yr": relaxed.x[used],
        "gain_total": solution.objective - relaxed.objective,
    })
    gains = {}
    for supply in np.unique(s).tolist():
        gains[supply] = solution.objective - solve(with_arcs(screened[screened["s"] == supply])).objective
    table["gain_stream"] = [gains[k] for k in s.tolist()]
    return table[OPPORTUNITY_COLUMNS].sort_values("gain_stream", ascending=False, kind="stable") \
        .reset_index(drop=True)


# --- permitted tonnages: the permit_limit rows of the LP ---------------------------------------------------

LIMIT_COLUMNS = ["facility_id", "ewc_code", "max_t_per_yr"]


def limit_table(permits: pd.DataFrame | None) -> pd.DataFrame | None:
    """One row per (facility, EWC code) whose permits give a tonnage: ``facility_id, ewc_code, max_t_per_yr``.

    Several rows for the same facility and code are several permits: their tonnages add up, and one row
    without a tonnage (NaN) lifts the limit. None when no permit gives a tonnage."""
    if permits is None or permits.empty or "max_t_per_yr" not in permits.columns:
        return None
    frame = pd.DataFrame({"facility_id": permits["facility_id"].astype(str),
                          "ewc_code": permits["ewc_code"].astype(str),
                          "max_t_per_yr": pd.to_numeric(permits["max_t_per_yr"], errors="coerce")})
    grouped = frame.groupby(["facility_id", "ewc_code"], sort=True)["max_t_per_yr"]
    table = grouped.sum().to_frame()
    table.loc[frame["max_t_per_yr"].isna().groupby([frame["facility_id"], frame["ewc_code"]]).any(),
              "max_t_per_yr"] = np.nan
    table = table.dropna().reset_index()
    return table[LIMIT_COLUMNS] if len(table) else None


def limit_rows(candidates: Any, arc_s: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The permit tonnage rows: ``(row_of_arc_term, arc_positions, limits, facility_ids, ewc_codes)``.

    One row per (facility, code) with a tonnage (``Candidates.permit_limits``) and at least one arc of a stream
    that needs the permit (``supplies.needs_permit``) with that code into that facility; its terms are those
    arcs (coefficient 1: tonnes received). Streams that need no permit under ``permits_required_for`` are not
    counted against it. Vectorised over arcs."""
    empty = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), np.zeros(0, dtype=object),
             np.zeros(0, dtype=object))
    table = getattr(candidates, "permit_limits", None)
    sup, arcs = candidates.supplies, candidates.arcs
    if table is None or len(table) == 0 or len(arc_s) == 0 or "needs_permit" not in sup or "ewc_code" not in sup:
        return empty
    needs = sup["needs_permit"].fillna(False).to_numpy(bool)[arc_s]
    terms = np.flatnonzero(needs)
    if len(terms) == 0:
        return empty
    keys = pd.Index(table["facility_id"].astype(str) + "\x1f" + table["ewc_code"].astype(str))
    wanted = (pd.Series(arcs["demand_facility"].to_numpy()[terms]).astype(str) + "\x1f"
              + pd.Series(sup["ewc_code"].to_numpy()[arc_s[terms]]).astype(str))
    row = keys.get_indexer(wanted)
    hit = row >= 0
    terms, row = terms[hit], row[hit]
    if len(terms) == 0:
        return empty
    used, row = np.unique(row, return_inverse=True)  # only rows with an arc, renumbered 0..
    chosen = table.iloc[used]
    return (row.astype(np.int64), terms.astype(np.int64), chosen["max_t_per_yr"].to_numpy(float),
            chosen["facility_id"].to_numpy(dtype=object), chosen["ewc_code"].to_numpy(dtype=object))
