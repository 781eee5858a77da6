"""The basis of one restricted model carried to the next round of column generation.

Between two rounds the restricted model only gains arc columns (and the rows those arcs bring: the quality,
share and intake rows of a demand that had no arc in before, a facility's intake row). The optimal basis of the
last round, with every new arc nonbasic at zero and every new row's slack basic, is a basis of the new model
(each block keeps as many basic variables as rows: a new row brings its own basic slack) and it is primal
feasible (the new arcs carry nothing, so every old row holds as before, and a new row holds with no arc in it).
The primal simplex method then starts from the last optimum and only pivots the entering arcs in, instead of
solving the new model from nothing.

Columns and rows are matched by key, not by position, as positions move between models: an arc by its
position among all candidate arcs, w, y, z and the stores' columns by their own positions (every restricted
model holds all of them); a row by its family and the family's key (supply and demand rows by position,
quality rows by (demand, parameter, bound), a facility's intake row by its id, a permit row by (facility,
EWC code), the stores' rows by position). When a row of the model belongs to no family known here the model is
solved cold (nothing is guessed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from symbiosis.exchange.solve import ExchangeModel

BASIC = 1  # HighsBasisStatus.kBasic
LOWER = 0  # HighsBasisStatus.kLower


@dataclass
class KeyedBasis:
    """A basis as HiGHS status codes, per column id (see :func:`column_ids`) and per row family's keys."""

    cols: pd.Series
    rows: dict[str, pd.Series]


def column_ids(model: ExchangeModel, positions: np.ndarray, n_candidate_arcs: int) -> np.ndarray:
    """Per standard-form column of ``model`` (x, w, y, z, stores, in that order), an id that is the same in
    every restricted model: the arc's position among all ``n_candidate_arcs``, then ``n_candidate_arcs`` + the
    position among the other columns."""
    n_a = model.arrays.n_arcs
    n_col = model._highs.lp.n_col
    return np.concatenate([np.asarray(positions, np.int64), n_candidate_arcs + np.arange(n_col - n_a)])


def _row_families(model: ExchangeModel) -> list[tuple[str, np.ndarray, pd.Index]] | None:
    from symbiosis.exchange.colgen import _quality_keys

    rows, a = model._rows, model.arrays
    if rows is None:
        return None
    families = [
        ("supply", rows.supply_rows, pd.RangeIndex(a.n_supplies)),
        ("demand", rows.demand_rows, pd.RangeIndex(a.n_demands)),
        ("share", rows.share_rows, pd.RangeIndex(a.n_demands)),
        ("quality", rows.quality_rows, _quality_keys(a)),
        ("intake", rows.intake_rows, pd.RangeIndex(a.n_demands)),
        ("facility_intake", rows.facility_intake_rows, pd.Index(np.asarray(a.facility_intake_ids, dtype=object))),
        ("permit", rows.permit_rows, pd.MultiIndex.from_arrays([np.asarray(a.permit_facility, dtype=str),
                                                               np.asarray(a.permit_code, dtype=str)])),
        ("stock", rows.stock_rows, pd.RangeIndex(len(rows.stock_rows))),
        ("store_capacity", rows.store_capacity_rows, pd.RangeIndex(len(rows.store_capacity_rows))),
        ("store_closing", rows.store_closing_rows, pd.RangeIndex(len(rows.store_closing_rows))),
        ("co2e_cap", np.array([rows.co2e_cap_row], np.int64), pd.RangeIndex(1)),
    ]
    out = []
    covered = 0
    for name, where, keys in families:
        where = np.asarray(where, np.int64)
        if len(where) != len(keys):
            return None
        present = where >= 0
        covered += int(present.sum())
        out.append((name, where[present], keys[present]))
    return out if covered == model._highs.lp.n_row else None


def basis_of(model: ExchangeModel, positions: np.ndarray, n_candidate_arcs: int) -> KeyedBasis | None:
    """The optimal basis of a solved restricted model, keyed (None when it has none or a row is unknown)."""
    if model._highs is None:
        return None
    found = model._highs.global_basis()
    families = _row_families(model)
    if found is None or families is None:
        return None
    cols, rows = found
    return KeyedBasis(cols=pd.Series(cols, index=column_ids(model, positions, n_candidate_arcs)),
                      rows={name: pd.Series(rows[where], index=keys) for name, where, keys in families})


def start_from(model: ExchangeModel, previous: KeyedBasis, positions: np.ndarray, n_candidate_arcs: int) -> bool:
    """Give the handed-over ``model`` the basis ``previous`` (new columns at zero, new rows basic); False, and
    nothing set, when that cannot be done (then the model is solved cold)."""
    if model._highs is None:
        return False
    families = _row_families(model)
    if families is None or set(previous.rows) != {name for name, _, _ in families}:
        return False
    ids = column_ids(model, positions, n_candidate_arcs)
    cols = previous.cols.reindex(ids).fillna(LOWER).to_numpy(np.int8)
    rows = np.full(model._highs.lp.n_row, BASIC, np.int8)
    for name, where, keys in families:
        rows[where] = previous.rows[name].reindex(keys).fillna(BASIC).to_numpy(np.int8)
    # Each block must hold as many basic columns and rows as it has rows, or HiGHS would have to repair it.
    solver = model._highs
    basic = np.bincount(solver.col_block, weights=(cols == BASIC), minlength=solver.n_blocks) + \
        np.bincount(solver.row_block, weights=(rows == BASIC), minlength=solver.n_blocks)
    if not np.array_equal(basic, np.bincount(solver.row_block, minlength=solver.n_blocks)):
        return False
    solver.set_global_basis(cols, rows)
    return True


__all__ = ["KeyedBasis", "basis_of", "column_ids", "start_from"]
