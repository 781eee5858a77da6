"""Processors: facilities whose activity is a decision of the exchange model (multi-hop chains).

A processor is a facility with a process model, an activity and a row in the region's ``processors``
table (``processors.csv``: ``facility_id, capacity, operating_cost_per_unit, gate_fee_per_t, source``).
Its activity z_p (in the model's activity unit per year) becomes a variable 0 ≤ z_p ≤ capacity. Each of its
candidate demands (the inputs its model accepts, with every secondary material the substitution table lets
replace them) is an intake row Σ ρ_a x_a + y_d = i_d z_p, and each of its candidate supplies (exchangeable
outputs) an output row Σ x_a + w_s = o_s z_p, where i_d and o_s are the facility's flow amounts per unit of
its current activity (for modelled flows exactly the model's coefficients). Outputs then flow on to other
demands, including other processors' intake: chains of any length. Business as usual is z_p = the activity in
the data, where every row holds with x = 0, w = a, y = r. Maths and duals: docs/formulation.md.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from symbiosis.errors import Problems
from symbiosis.tables import Table, duplicate_ids, number_column, require_columns, text_column

if TYPE_CHECKING:
    import pyomo.environ as pyo

    from symbiosis.candidates import Candidates
    from symbiosis.exchange.model import ExchangeArrays

PROCESSOR_COLUMNS = ["facility_id", "process_model", "capacity", "activity", "operating_cost_per_unit",
                     "gate_fee_per_t", "source", "product_value_per_unit"]
#: Columns a processors table may have (an unknown column is an error, as for every input table).
PROCESSOR_TABLE_COLUMNS = ["facility_id", "capacity", "operating_cost_per_unit", "product_value_per_unit",
                           "gate_fee_per_t", "source", "note",
                           "capacity_profile"]  # capacity_profile: symbiosis.periods (read by inputs._time_data)
LINK_COLUMNS = ["side", "row", "p", "per_unit"]


def empty_processors() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=float if c in ("capacity", "activity", "operating_cost_per_unit",
                                                         "gate_fee_per_t", "product_value_per_unit") else str)
                         for c in PROCESSOR_COLUMNS})


def read_processors(table: Table | None, problems: Problems, facilities: pd.DataFrame,
                    activity_in_model_units: dict[str, float], models: dict[str, object]) -> pd.DataFrame:
    """The processors table, checked: known facility with a process model and activity > 0, capacity ≥ the
    current activity (business as usual must be feasible), costs finite; located problems otherwise."""
    if table is None:
        return empty_processors()
    if not require_columns(table, ["facility_id", "capacity"], problems, known=PROCESSOR_TABLE_COLUMNS):
        return empty_processors()
    duplicate_ids(table, "facility_id", problems)
    capacity = number_column(table, "capacity", problems, required=True, allow_negative=False,
                             expected="the processor's capacity, in its process model's activity unit per year")
    operating = number_column(table, "operating_cost_per_unit", problems, allow_negative=False,
                              expected="operating cost per unit of activity, in the region's currency")
    value = number_column(table, "product_value_per_unit", problems, allow_negative=False,
                          expected="value of the products (biogas, heat) per unit of activity, region currency")
    gate = number_column(table, "gate_fee_per_t", problems,
                         expected="gate fee charged per t of intake, in the region's currency")
    ids = text_column(table, "facility_id")
    by_id = facilities.set_index("facility_id") if len(facilities) else pd.DataFrame()
    model_closes: dict[str, bool] = {}
    rows = []
    for position, fid in enumerate(ids.tolist()):
        row_number = table.row_number(position)
        if fid not in by_id.index:
            problems.add(table.file, "unknown facility", row=row_number, column="facility_id", found=fid,
                         expected="a facility_id of facilities.csv")
            continue
        model = str(by_id.at[fid, "process_model"])
        if not model or model not in models:
            problems.add(table.file, "a processor needs a process model", row=row_number, column="facility_id",
                         found=fid, expected="a facility whose process_model (facilities.csv) names a model")
            continue
        activity = activity_in_model_units.get(fid, math.nan)
        if not activity > 0:
            problems.add(table.file, "a processor needs its current activity > 0", row=row_number,
                         column="facility_id", found=fid,
                         expected="the facility's activity (facilities.csv) > 0: yields are per unit of it")
            continue
        cap = float(capacity.iloc[position])
        if not math.isnan(cap) and cap < activity * (1 - 1e-9):
            problems.add(table.file, "capacity below the current activity (business as usual infeasible)",
                         row=row_number, column="capacity", found=cap,
                         expected=f"≥ the facility's activity, {activity:.6g} "
                                  f"{getattr(models[model], 'activity_unit', '')}")
        if model not in model_closes:  # once per model: its problems are the model file's, not the row's
            problems_before = len(problems.items)
            check_model_closure(models[model], problems)
            model_closes[model] = len(problems.items) == problems_before
        if not model_closes[model]:
            continue
        rows.append({
            "facility_id": fid, "process_model": model, "capacity": cap, "activity": activity,
            "operating_cost_per_unit": float(np.nan_to_num(operating.iloc[position])),
            "gate_fee_per_t": float(np.nan_to_num(gate.iloc[position])),
            "source": text_column(table, "source").iloc[position],
            "product_value_per_unit": float(np.nan_to_num(value.iloc[position])),
        })
    frame = pd.DataFrame(rows, columns=PROCESSOR_COLUMNS) if rows else empty_processors()
    return frame


def check_model_closure(model: object, problems: Problems, tolerance: float = 0.05) -> None:
    """A processor's yields must close its model's mass balance: Σ in (t) = Σ out (t) within ``tolerance``."""
    from symbiosis.units import UREG, parse_unit

    totals = {"in": 0.0, "out": 0.0}
    for flow in getattr(model, "flows", []):
        try:
            unit = parse_unit(flow.unit)
            if unit.dimensionality != UREG.t.dimensionality:
                continue
            mass = UREG.Quantity(flow.amount, unit).to("t").magnitude
            totals[flow.direction] = totals.get(flow.direction, 0.0) + mass
        except Exception:  # noqa: BLE001 - volumes and energies are not part of the mass closure
            continue
    model_id = getattr(model, "id", "?")
    outputs_named = {flow.material for flow in getattr(model, "flows", []) if flow.direction == "out"}
    for substance, shares in (getattr(model, "transfer", None) or {}).items():
        bad = {k: v for k, v in shares.items() if k not in outputs_named or not 0 <= v <= 1}
        if bad or sum(shares.values()) > 1 + 1e-9:
            problems.add(f"models/{model_id}.yaml", "transfer coefficients must name the model's outputs, each "
                         "0..1, summing to at most 1", column=f"transfer.{substance}", found=shares,
                         expected=f"shares of {substance} by output material among {sorted(outputs_named)}")
    inputs, outputs = totals["in"], totals["out"]
    scale = max(inputs, outputs)
    if scale > 0 and abs(inputs - outputs) > tolerance * scale:
        problems.add(f"models/{model_id}.yaml", "a processor's yields do not close its mass balance",
                     column="flows.amount", found=f"{inputs:.6g} t in, {outputs:.6g} t out per unit of activity",
                     expected=f"inputs = outputs within {tolerance:.0%} (a processor's outputs follow its inputs)",
                     fix="complete the model's out lines (emissions, water) or correct the amounts")


def processor_tables(processors: pd.DataFrame | None, supplies: pd.DataFrame, demands: pd.DataFrame
                     ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(processors, links) for Candidates: one link per candidate demand ('in') or supply ('out') of a
    processor, with its amount per unit of activity (flow amount / current activity)."""
    from symbiosis.energy.heat import row_amount

    if processors is None or len(processors) == 0:
        return empty_processors().assign(p=pd.Series(dtype=np.int64)), pd.DataFrame(columns=LINK_COLUMNS)
    table = processors.reset_index(drop=True).copy()
    table["p"] = np.arange(len(table), dtype=np.int64)
    pos = pd.Series(table["p"].to_numpy(), index=table["facility_id"])
    activity = table["activity"].to_numpy(float)
    pieces = []
    for side, frame in (("in", demands), ("out", supplies)):
        p = frame["facility_id"].map(pos)
        rows = np.flatnonzero(p.notna().to_numpy())
        pp = p.to_numpy()[rows].astype(np.int64)
        pieces.append(pd.DataFrame({
            "side": side, "row": rows.astype(np.int64), "p": pp,
            # t per unit on mass rows, MWh per unit on heat rows (a digester's or a treatment plant's heat)
            "per_unit": row_amount(frame)[rows] / activity[pp],
        }))
    links = pd.concat(pieces, ignore_index=True)
    # A processor with no candidate supply or demand is outside the exchange: it stays at its activity.
    linked = np.unique(links["p"].to_numpy(np.int64))
    if len(linked) < len(table):
        renumber = np.full(len(table), -1, np.int64)
        renumber[linked] = np.arange(len(linked))
        table = table.iloc[linked].reset_index(drop=True)
        table["p"] = np.arange(len(table), dtype=np.int64)
        links["p"] = renumber[links["p"].to_numpy(np.int64)]
    return table, links[LINK_COLUMNS].reset_index(drop=True)


def has_processors(candidates: Candidates) -> bool:
    table = getattr(candidates, "processors", None)
    return table is not None and len(table) > 0


def _table(candidates: Candidates) -> pd.DataFrame:
    return candidates.processors if candidates.processors is not None else empty_processors()


def _links(candidates: Candidates) -> pd.DataFrame:
    links = candidates.processor_links
    return links if links is not None else pd.DataFrame(columns=LINK_COLUMNS)


def processor_amounts(candidates: Candidates, z: np.ndarray | None
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Supply and demand amounts at activity ``z``: a_s = o_s z_p, r_d = i_d z_p on processor rows (t/yr),
    the tables' fixed amounts elsewhere (t/yr, or MWh/yr on heat rows: symbiosis.energy.heat.row_amount)."""
    from symbiosis.energy.heat import row_amount

    a = row_amount(candidates.supplies).copy()
    r = row_amount(candidates.demands).copy()
    if not has_processors(candidates) or z is None or len(z) == 0:
        return a, r
    links = _links(candidates)
    for side, target in (("out", a), ("in", r)):
        part = links[links["side"] == side]
        rows = part["row"].to_numpy(np.int64)
        target[rows] = part["per_unit"].to_numpy(float) * np.asarray(z, float)[part["p"].to_numpy(np.int64)]
    return a, r


def processor_problems(candidates: Candidates, x: np.ndarray, w: np.ndarray, y: np.ndarray, z: np.ndarray | None,
                       tol: float) -> list[str]:
    """Activity within [0, capacity] and each processor row's in/out equal to its yield × activity."""
    if not has_processors(candidates):
        return []
    table = _table(candidates)
    if z is None or len(z) != len(table):
        return [f"solution has {0 if z is None else len(z)} processor activities for {len(table)} processors"]
    z = np.asarray(z, float)
    found = []
    cap = table["capacity"].to_numpy(float)
    for p in np.flatnonzero((z < -tol) | (~np.isnan(cap) & (z > cap + tol * np.maximum(1.0, np.nan_to_num(cap))))):
        found.append(f"processor {table['facility_id'].iloc[p]}: activity {z[p]:.6g} outside 0..{cap[p]:.6g}")
    return found


def bau_activity(candidates: Candidates) -> np.ndarray:
    if not has_processors(candidates):
        return np.zeros(0)
    return _table(candidates)["activity"].to_numpy(float)


def activity_table(candidates: Candidates, z: np.ndarray | None) -> pd.DataFrame:
    """One row per processor: its activity in business as usual and at the optimum, capacity, costs."""
    if not has_processors(candidates) or z is None:
        return pd.DataFrame(columns=["facility_id", "process_model", "activity_bau", "activity_optimum",
                                     "capacity", "utilisation", "operating_cost", "product_value"])
    table = _table(candidates)
    z = np.asarray(z, float)
    cap = table["capacity"].to_numpy(float)
    return pd.DataFrame({
        "facility_id": table["facility_id"].to_numpy(), "process_model": table["process_model"].to_numpy(),
        "activity_bau": table["activity"].to_numpy(float), "activity_optimum": z, "capacity": cap,
        "utilisation": np.where(cap > 0, z / np.where(cap > 0, cap, 1.0), np.nan),
        "operating_cost": table["operating_cost_per_unit"].to_numpy(float) * z,
        "product_value": (table["product_value_per_unit"].to_numpy(float) if "product_value_per_unit" in table
                          else np.zeros(len(table))) * z,
    })


def processor_arrays(candidates: Candidates) -> dict[str, Any]:
    """ExchangeArrays fields for the processors of ``candidates`` ({} without any: the arrays unchanged)."""
    if not has_processors(candidates):
        return {}
    table = _table(candidates)
    links = _links(candidates)
    activity = table["activity"].to_numpy(float)
    cost = table["operating_cost_per_unit"].to_numpy(float)
    if "product_value_per_unit" in table:  # net: what running costs less what its products are worth
        cost = cost - np.nan_to_num(table["product_value_per_unit"].to_numpy(float))
    capacity = table["capacity"].to_numpy(float)
    # The links' per_unit were divided by the activity of the annual table (> 0 there); a period in which a
    # processor is shut (symbiosis.periods: a capacity profile's 0) has activity and capacity 0.
    if np.isnan(activity).any() or (activity < 0).any():
        raise ValueError("_table(candidates).activity must be ≥ 0 (and > 0 where yields are divided by it)")
    if (capacity < activity * (1 - 1e-9)).any():
        raise ValueError("_table(candidates).capacity must be ≥ activity (business as usual must be feasible)")
    per_unit = links["per_unit"].to_numpy(float)
    if np.isnan(per_unit).any() or (per_unit < 0).any():
        raise ValueError("_links(candidates).per_unit must be ≥ 0")
    out, into = links[links["side"] == "out"], links[links["side"] == "in"]
    return {
        "n_processors": len(table), "processor_capacity": capacity, "processor_cost": np.nan_to_num(cost),
        "processor_bau": activity,
        "out_rows": out["row"].to_numpy(np.int64), "out_p": out["p"].to_numpy(np.int64),
        "out_per_unit": out["per_unit"].to_numpy(float),
        "in_rows": into["row"].to_numpy(np.int64), "in_p": into["p"].to_numpy(np.int64),
        "in_per_unit": into["per_unit"].to_numpy(float),
    }


def add_processor_balance(m: pyo.ConcreteModel, arrays: ExchangeArrays) -> None:
    r"""A processor's intake and outputs follow its activity z_p (0 ≤ z_p ≤ Z_p).

    .. math::

        \sum_{a \in out(s)} x_a + w_s - o_s z_p = 0 \quad \forall s \in S_p \qquad
        \sum_{a \in in(d)} \rho_a x_a + y_d - i_d z_p = 0 \quad \forall d \in D_p

        \sum_{a \in in(d)} \rho_a x_a - \sigma_d i_d z_p \le 0 \quad \forall d \in D_p: \sigma_d < 1

    ========  =====================================================
    symbol    meaning
    ========  =====================================================
    z_p       activity of processor p, model units per year (variable ``z``)
    o_s       yield of output s per unit of activity, t (``processor_links.per_unit``, side out)
    i_d       intake d per unit of activity, t of the reference input (side in)
    Z_p       capacity (``processors.capacity``), the upper bound of z_p
    ========  =====================================================

    The supply, demand and share rows of the processor's own flows, built with fixed amounts by the
    families before, are restated with the activity in place of the amount (same rows, same indices, so
    the duals keep their meaning: value of one more tonne of output / cost of one more tonne of intake).
    """
    import pyomo.environ as pyo
    from pyomo.core.expr.numeric_expr import MonomialTermExpression

    from symbiosis.exchange.model import _expression

    n_p = getattr(arrays, "n_processors", 0)
    if not n_p:
        return
    cap = arrays.processor_capacity
    m.z = pyo.Var(range(n_p), domain=pyo.NonNegativeReals)
    m.z_list = list(m.z.values())
    z = m.z_list
    for p in range(n_p):
        if not math.isnan(cap[p]):
            z[p].setub(float(cap[p]))
    x, w, y = m.x_list, m.w_list, m.y_list
    for s, p, o in zip(arrays.out_rows.tolist(), arrays.out_p.tolist(), arrays.out_per_unit.tolist(), strict=True):
        cols, coefs = arrays.out_arcs.row(s)
        expr = _expression(x, cols, coefs, (w[s], MonomialTermExpression((-o, z[p]))))
        m.supply_balance[s].set_value((expr, 0.0))
    share_rows = set(arrays.share_demands.tolist())
    for d, p, i in zip(arrays.in_rows.tolist(), arrays.in_p.tolist(), arrays.in_per_unit.tolist(), strict=True):
        cols, coefs = arrays.in_arcs.row(d)
        expr = _expression(x, cols, coefs, (y[d], MonomialTermExpression((-i, z[p]))))
        m.demand_balance[d].set_value((expr, 0.0))
        if d in share_rows:
            sigma = float(arrays.share[d])
            body = _expression(x, cols, coefs, (MonomialTermExpression((-sigma * i, z[p])),))
            m.share_limit[d].set_value((None, body, 0.0))


def polish(arrays: ExchangeArrays, x: np.ndarray, w: np.ndarray, y: np.ndarray, z: np.ndarray) -> None:
    """Make every processor row hold exactly (to rounding), in place, after the solver's tolerance.

    The solver meets rows to its feasibility tolerance (1e-7); a processor's outputs must equal its intake ×
    yields to 1e-9. z_p is raised to the least activity that covers what its rows already ship or receive
    (a change of the order of the solver tolerance), then w_s = o_s z_p − Σx and y_d = i_d z_p − Σρx."""
    if not getattr(arrays, "n_processors", 0):
        return
    a = arrays
    shipped = np.bincount(a.arc_s, weights=x, minlength=a.n_supplies)
    replaced = np.bincount(a.arc_d, weights=a.ratio * x, minlength=a.n_demands)
    need = np.zeros(len(z))
    for rows, p, per_unit, used in ((a.out_rows, a.out_p, a.out_per_unit, shipped),
                                    (a.in_rows, a.in_p, a.in_per_unit, replaced)):
        positive = per_unit > 0
        np.maximum.at(need, p[positive], used[rows[positive]] / per_unit[positive])
    z[:] = np.maximum(z, need)
    w[a.out_rows] = np.maximum(a.out_per_unit * z[a.out_p] - shipped[a.out_rows], 0.0)
    y[a.in_rows] = np.maximum(a.in_per_unit * z[a.in_p] - replaced[a.in_rows], 0.0)


def scale_to_activity(region: Any, candidates: Candidates, z: np.ndarray | None) -> Any:
    """A copy of ``region`` whose processors' flows (mass and energy, not stock change) are scaled to the
    activity ``z``: the region as it runs at the optimum, before the exchanges are put in place."""
    if not has_processors(candidates) or z is None or len(z) == 0:
        return region
    table = _table(candidates)
    activity = table["activity"].to_numpy(float)
    # A processor shut for the period (activity and z 0, symbiosis.periods): its flows scale to nothing.
    factor = pd.Series(np.divide(np.asarray(z, float), activity, out=np.zeros(len(activity)), where=activity != 0),
                       index=table["facility_id"].to_numpy())
    scaled = region.copy()
    flows = scaled.flows
    f = flows["facility_id"].map(factor)
    hit = f.notna() & (flows["direction"] != "stock")
    for column in ("amount_t_per_yr", "amount_mwh_per_yr"):
        flows.loc[hit, column] = flows.loc[hit, column] * f[hit]
    return scaled
