r"""A ranked action plan: candidate improvements from the data, scored on technical, environmental and economic
criteria under the user's weights (direct, or from AHP pairwise comparisons), exported as an action register.

**Candidates** come from what the other stages found, each with the rows of data it rests on (``evidence``:
``file:row`` origins, or ``models/NAME.yaml`` for a modelled flow):

- ``reduce_loss``: a costly material loss (MFCA, symbiosis.account.mfca), the three costliest per facility;
- ``exchange``: an exchange of the optimum (symbiosis.pipeline.optimise);
- ``close_balance_gap``: a mass balance open beyond its tolerance (symbiosis.balances): a flow is missing or
  wrong;
- ``check_measurement``: a flow or facility that the reconciliation flags as a likely gross error (any table
  with ``flow_id`` or ``facility_id`` and a boolean ``gross_error``/``gross_error_suspected``/``suspect``
  column: today's per-facility reconciliation, or the network reconciliation when it is there);
- ``measure_better``: a flow whose uncertainty puts most of the optimum's saving at stake (± its relative
  standard uncertainty × the saving of its exchanges; the ten with the most);
- ``meet_benchmark``: a loss or a consumption above what the facility's process model gives for its activity
  (Region.model_figures) by more than :data:`BENCHMARK_MARGIN`.

**Criteria** (direction: + more is better, − less is better):

=============== =================================================================== =====
group           criterion                                                            dir.
=============== =================================================================== =====
technical       ``feasibility`` (0..1: 1 measuring, 0.8 an exchange the LP found        +
                feasible, 0.5 a process change), ``data_confidence`` (0..1: measured 1,
                estimated 0.5, modelled 0.25), ``distance_km``, ``permit_ok`` (0/1)    + − +
environmental   ``co2e_avoided_t``, ``landfill_diverted_t``, ``virgin_avoided_t``,      +
                ``mci_change``
economic        ``saving_per_yr``, ``cost_per_yr``, ``payback_yr``                     + − −
=============== =================================================================== =====

Each criterion is normalised over the candidates to 0..1 (min-max, reversed for "less is better"; a
criterion equal for all scores 1; a value the data do not give scores 0, no credit for what the data do not
show, and is listed in ``missing``).
A group's score is the mean of its criteria; the action's score is
:math:`S = \sum_g w_g s_g` with the weights normalised to sum 1. Weights can also be given per criterion
(then :math:`S = \sum_c w_c n_c`).

**AHP** (Saaty, "The Analytic Hierarchy Process", McGraw-Hill 1980): the weights are the principal eigenvector
of a reciprocal pairwise-comparison matrix :math:`A` (:math:`a_{ij}` = how much more important i is than j,
1..9, :math:`a_{ji} = 1/a_{ij}`), normalised to sum 1; consistency index :math:`CI = (\lambda_{max} - n)/(n - 1)`,
consistency ratio :math:`CR = CI/RI_n` with Saaty's random indices :data:`RANDOM_INDEX`. A matrix with
:math:`CR > 0.1` is refused (a located error naming the cells least consistent with the weights).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from symbiosis.errors import Problems
from symbiosis.region import Region

#: criterion → (group, +1 if more is better, −1 if less is better)
CRITERIA: dict[str, tuple[str, int]] = {
    "feasibility": ("technical", 1), "data_confidence": ("technical", 1), "distance_km": ("technical", -1),
    "permit_ok": ("technical", 1),
    "co2e_avoided_t": ("environmental", 1), "landfill_diverted_t": ("environmental", 1),
    "virgin_avoided_t": ("environmental", 1), "mci_change": ("environmental", 1),
    "saving_per_yr": ("economic", 1), "cost_per_yr": ("economic", -1), "payback_yr": ("economic", -1),
}
GROUPS = ("technical", "environmental", "economic")
DEFAULT_WEIGHTS = {"technical": 1 / 3, "environmental": 1 / 3, "economic": 1 / 3}
#: Saaty's random consistency index by matrix size (Saaty 1980, table 1.7; n = 1, 2: 0).
RANDOM_INDEX = {1: 0.0, 2: 0.0, 3: 0.58, 4: 0.90, 5: 1.12, 6: 1.24, 7: 1.32, 8: 1.41, 9: 1.45, 10: 1.49}
#: A consistency ratio above this is refused (Saaty's rule).
MAX_CONSISTENCY_RATIO = 0.1
#: A loss or consumption this much above its process model's figure is an action "meet the benchmark".
BENCHMARK_MARGIN = 0.10
CONFIDENCE = {"measured": 1.0, "estimated": 0.5, "modelled": 0.25}
LOSSES_PER_FACILITY = 3
#: How many "measure better" actions: the flows with the most of the optimum's saving at stake.
UNCERTAIN_FLOWS = 10

ACTION_COLUMNS = ["action_id", "facility_id", "partner_id", "kind", "action", *CRITERIA, "evidence"]
REGISTER_COLUMNS = ["rank", "action_id", "facility_id", "partner_id", "kind", "action", "score", *GROUPS,
                    "saving_per_yr", "cost_per_yr", "payback_yr", "co2e_avoided_t", "landfill_diverted_t",
                    "virgin_avoided_t", "mci_change", "missing", "evidence", "owner", "due_date", "status"]


# ------------------------------------------------------------------------------------------------- AHP


@dataclass
class AHP:
    """Weights from a pairwise-comparison matrix, with its consistency."""

    names: list[str]
    weights: dict[str, float]
    lambda_max: float
    consistency_index: float
    consistency_ratio: float


def ahp(matrix: Any, names: list[str] | None = None) -> AHP:
    """Principal-eigenvector weights, λmax, CI and CR of a positive reciprocal matrix (no CR check here)."""
    a = np.asarray(matrix, dtype=float)
    n = a.shape[0]
    if a.ndim != 2 or a.shape[1] != n or n < 1:
        raise ValueError("a pairwise-comparison matrix is square")
    values, vectors = np.linalg.eig(a)
    k = int(np.argmax(values.real))
    vector = np.abs(vectors[:, k].real)
    weights = vector / vector.sum()
    lambda_max = float(values[k].real)
    ci = (lambda_max - n) / (n - 1) if n > 2 else 0.0
    ri = RANDOM_INDEX.get(n, 1.49)
    cr = ci / ri if ri > 0 else 0.0
    names = names or [f"c{i + 1}" for i in range(n)]
    return AHP(names, dict(zip(names, weights.tolist(), strict=True)), lambda_max, ci, cr)


def _cell(text: str) -> float:
    """A comparison as typed: ``3``, ``0.333``, ``1/3``, ``1:3``."""
    text = text.strip().replace(" ", "").replace(":", "/").replace(",", ".")
    return float(Fraction(text)) if "/" in text else float(text)


def read_ahp(path: Path) -> AHP:
    """Read a pairwise-comparison matrix from a CSV and check it (a located :class:`InputError` if not right).

    Layout: a header ``criterion, NAME1, NAME2, ...``, then one row per name in the same order, the cells
    ``a_ij`` as numbers or fractions (``1/3``). Names are the groups (technical, environmental, economic) or
    criteria of :data:`CRITERIA`. The matrix must be positive, with 1 on the diagonal and reciprocal
    (a_ji = 1/a_ij within 2 %), and its consistency ratio at most 0.1.
    """
    from symbiosis.tables import read_csv_table

    problems = Problems()
    label = str(path)
    table = read_csv_table(path, problems, label=label)
    problems.raise_if_any()
    assert table is not None
    frame = table.frame
    columns = [str(c).strip() for c in frame.columns]
    names = columns[1:]
    rows = [str(v).strip() for v in frame.iloc[:, 0]] if len(columns) else []
    known = set(GROUPS) | set(CRITERIA)
    if not names:
        problems.add(label, "no criteria to compare", row=1,
                     expected="a header `criterion, technical, environmental, economic` and one row per criterion")
        problems.raise_if_any()
    for j, name in enumerate(names):
        if name not in known:
            problems.add(label, "unknown criterion", row=1, column=name,
                         expected=f"one of {', '.join(GROUPS)} or a criterion: {', '.join(CRITERIA)}")
        if j >= len(rows) or rows[j] != name:
            problems.add(label, "rows and columns must name the criteria in the same order",
                         row=table.row_number(j), column=columns[0] if columns else None,
                         found=rows[j] if j < len(rows) else "no row", expected=name)
    if len(rows) != len(names):
        problems.add(label, "the matrix is not square", found=f"{len(rows)} rows, {len(names)} columns",
                     expected="one row per criterion column")
    problems.raise_if_any()
    n = len(names)
    a = np.ones((n, n))
    for i in range(n):
        for j in range(n):
            cell = str(frame.iat[i, j + 1])
            try:
                a[i, j] = _cell(cell)
            except (ValueError, ZeroDivisionError):
                problems.add(label, "not a comparison", row=table.row_number(i), column=names[j], found=cell,
                             expected="a positive number or fraction, 1/9 .. 9 (Saaty's scale)")
                continue
            if not np.isfinite(a[i, j]) or a[i, j] <= 0:
                problems.add(label, "a comparison must be positive", row=table.row_number(i), column=names[j],
                             found=cell, expected="1/9 .. 9")
    problems.raise_if_any()
    for i in range(n):
        if abs(a[i, i] - 1) > 1e-9:
            problems.add(label, "the diagonal compares a criterion with itself", row=table.row_number(i),
                         column=names[i], found=str(frame.iat[i, i + 1]), expected="1")
        for j in range(i + 1, n):
            if abs(a[i, j] * a[j, i] - 1) > 0.02:
                problems.add(label, "the matrix is not reciprocal", row=table.row_number(j), column=names[i],
                             found=str(frame.iat[j, i + 1]),
                             expected=f"1/{frame.iat[i, j + 1]} (the reciprocal of row {table.row_number(i)}, "
                                      f"column '{names[j]}')")
    problems.raise_if_any()
    result = ahp(a, names)
    if result.consistency_ratio > MAX_CONSISTENCY_RATIO:
        w = np.array([result.weights[name] for name in names])
        deviation = np.abs(np.log(a * w[None, :] / w[:, None]))
        worst = sorted(((deviation[i, j], i, j) for i in range(n) for j in range(i + 1, n)), reverse=True)[:2]
        cells = "; ".join(f"row {table.row_number(i)} ({names[i]}), column '{names[j]}': {frame.iat[i, j + 1]} "
                          f"where the weights imply {w[i] / w[j]:.2g}" for _, i, j in worst)
        problems.add(label, "the pairwise comparisons are inconsistent", column="consistency ratio",
                     found=f"CR = {result.consistency_ratio:.3f} (λmax {result.lambda_max:.3f}, n {n})",
                     expected=f"CR ≤ {MAX_CONSISTENCY_RATIO}",
                     fix=f"revise the least consistent comparisons: {cells}")
        problems.raise_if_any()
    return result


# ------------------------------------------------------------------------------------------ candidates


def _origins(origin_of: Mapping[str, str], ids: Any) -> str:
    """The ``file:row`` origins of the flows ``ids``, each once, in order."""
    return "; ".join(dict.fromkeys(o for o in (str(origin_of.get(i, "")) for i in ids) if o))


def _row(action_id: str, facility_id: str, kind: str, action: str, evidence: str, partner_id: str = "",
         **criteria: float) -> dict[str, Any]:
    row: dict[str, Any] = {"action_id": action_id, "facility_id": facility_id, "partner_id": partner_id,
                           "kind": kind, "action": action, "evidence": evidence}
    row.update({c: float(criteria.get(c, np.nan)) for c in CRITERIA})
    return row


def candidate_actions(region: Region, *, mfca: Any = None, results: Any = None, circularity: Any = None,
                      balances: Any = None, reconciliation: pd.DataFrame | Any = None) -> pd.DataFrame:
    """The candidate actions (columns :data:`ACTION_COLUMNS`) that the given analyses support."""
    flows = region.flows
    by_id = flows.set_index("flow_id")
    origin_of = dict(zip(flows["flow_id"].astype(str), flows["origin"].astype(str), strict=True))
    quality = by_id["data_quality"].map(CONFIDENCE).fillna(0.5)
    fate_kind = region.reference.fates["kind"]
    mci_change = (circularity.facilities.set_index("facility_id")["MCI_change"]
                  if circularity is not None else pd.Series(dtype=float))
    rows: list[dict[str, Any]] = []
    currency = region.settings.currency

    if mfca is not None:
        losses = mfca.losses[mfca.losses["loss_cost"] > 0]
        top = losses.sort_values("loss_cost", ascending=False).groupby("facility_id").head(LOSSES_PER_FACILITY)
        for r in top.itertuples(index=False):
            unaccounted = r.category == "unaccounted"
            what = "the unaccounted loss" if unaccounted else f"the loss of {r.material} ({r.flow_id})"
            landfilled = float(r.amount_t_per_yr) if fate_kind.get(r.fate, "") == "landfill" else 0.0
            rows.append(_row(f"loss:{r.flow_id}", r.facility_id, "reduce_loss",
                             f"Reduce {what}: {r.amount_t_per_yr:,.0f} t/yr costing {r.loss_cost:,.0f} {currency}/yr "
                             "(MFCA: materials, energy and system costs it carries, and its disposal)",
                             str(r.origin), feasibility=0.5,
                             data_confidence=0.25 if unaccounted else float(quality.get(r.flow_id, 0.5)),
                             distance_km=0.0, permit_ok=1.0, landfill_diverted_t=landfilled,
                             virgin_avoided_t=float(r.amount_t_per_yr), saving_per_yr=float(r.loss_cost)))

    if results is not None and len(results.exchanges):
        for r in results.exchanges.itertuples(index=False):
            supply_fate = by_id["fate"].get(r.supply_id, "")
            amount = r.amount_t_per_yr if r.amount_t_per_yr == r.amount_t_per_yr else r.amount_mwh_per_yr
            unit = "t/yr" if r.amount_t_per_yr == r.amount_t_per_yr else "MWh/yr"
            landfilled = float(amount) if unit == "t/yr" and fate_kind.get(supply_fate, "") == "landfill" else 0.0
            cost = float(r.transport_cost + r.processing_cost)
            confidence = float(np.mean([quality.get(r.supply_id, 0.5), quality.get(r.demand_id, 0.5)]))
            rows.append(_row(f"exchange:{r.supply_id}->{r.demand_id}", r.supply_facility, "exchange",
                             f"Send {amount:,.0f} {unit} of {r.material} from {r.supply_facility} to "
                             f"{r.demand_facility} ({r.distance_km:,.1f} km): saves {r.saving:,.0f} {currency}/yr",
                             _origins(origin_of, [r.supply_id, r.demand_id]), partner_id=str(r.demand_facility),
                             feasibility=0.8, data_confidence=confidence,
                             distance_km=float(r.distance_km), permit_ok=1.0,
                             co2e_avoided_t=float(r.co2e_avoided_t_per_yr), landfill_diverted_t=landfilled,
                             virgin_avoided_t=float(r.replaced_t_per_yr) if unit == "t/yr" else 0.0,
                             mci_change=float(mci_change.get(r.demand_facility, np.nan)),
                             saving_per_yr=float(r.saving), cost_per_yr=cost))

    if results is not None and len(results.exchanges):
        rows += _uncertainty_rows(results.exchanges, flows, origin_of, quality, currency)

    if balances is not None:
        table = balances.table
        # mass only: an energy balance is open wherever fuel becomes unrecorded heat (docs/architecture.md)
        open_rows = table[~table["within_tolerance"].astype(bool) & (table["n_flows"] > 0)
                          & (table["quantity"] == "mass")]
        of_facility = flows[flows["quantity"] == "mass"].groupby("facility_id")["flow_id"].agg(list)
        for r in open_rows.itertuples(index=False):
            rows.append(_row(f"gap:{r.facility_id}:{r.quantity}", r.facility_id, "close_balance_gap",
                             f"Find what the {r.quantity} balance misses: {r.closure:+,.0f} {r.unit} open "
                             f"({r.closure_error:+.0%} of inputs): a missing flow, a wrong figure or unit",
                             _origins(origin_of, of_facility.get(r.facility_id, [])), feasibility=1.0,
                             data_confidence=float(r.share_measured), distance_km=0.0, permit_ok=1.0,
                             cost_per_yr=0.0))

    if reconciliation is not None:
        rows += _gross_error_rows(reconciliation, flows, origin_of)

    figures = region.model_figures
    if figures is not None and len(figures):
        kinds = by_id
        for r in figures.itertuples(index=False):
            category = kinds["category"].get(r.flow_id, "")
            is_loss = r.direction == "out" and category in ("waste", "wastewater", "emission", "by_product")
            is_input = r.direction == "in"
            excess = float(r.measured_t_per_yr) - float(r.model_t_per_yr)
            if not (is_loss or is_input) or excess <= BENCHMARK_MARGIN * float(r.model_t_per_yr):
                continue
            price = kinds["price_per_t"].get(r.flow_id, np.nan)
            saving = excess * float(price) if is_input and price == price else np.nan
            what = "uses" if is_input else "loses"
            rows.append(_row(f"benchmark:{r.flow_id}", r.facility_id, "meet_benchmark",
                             f"{r.facility_id} {what} {r.measured_t_per_yr:,.0f} t/yr of {r.material}, its process "
                             f"model {r.model_t_per_yr:,.0f}: bring it to the benchmark or explain the difference",
                             _origins(origin_of, [r.flow_id]), feasibility=0.5,
                             data_confidence=float(quality.get(r.flow_id, 0.5)), distance_km=0.0, permit_ok=1.0,
                             virgin_avoided_t=excess if is_input else 0.0, saving_per_yr=saving))
    frame = pd.DataFrame(rows, columns=ACTION_COLUMNS)
    return frame.drop_duplicates("action_id").reset_index(drop=True)


def _uncertainty_rows(exchanges: pd.DataFrame, flows: pd.DataFrame, origin_of: Mapping[str, str],
                      quality: pd.Series, currency: str) -> list[dict[str, Any]]:
    """The flows whose uncertainty puts most of the optimum's saving at stake: each exchange's saving scales
    with the amounts of its supply and demand, so ±u on a flow puts ±u × the saving of its exchanges at
    stake. One action per flow, the :data:`UNCERTAIN_FLOWS` with the most at stake."""
    from symbiosis.balances import DEFAULT_UNCERTAINTY

    by_id = flows.set_index("flow_id")
    relative = by_id["uncertainty_pct"].astype(float) / 100.0
    relative = relative.where(relative.notna(), by_id["data_quality"].map(DEFAULT_UNCERTAINTY).fillna(0.2))
    saving = exchanges["saving"].abs().to_numpy(float)
    stake = pd.concat([pd.Series(saving, index=exchanges["supply_id"].astype(str)),
                       pd.Series(saving, index=exchanges["demand_id"].astype(str))]).groupby(level=0).sum()
    stake = (stake * relative.reindex(stake.index).fillna(0.2)).sort_values(ascending=False)
    rows = []
    for flow_id, at_stake in stake.head(UNCERTAIN_FLOWS).items():
        if at_stake <= 0:
            continue
        u = float(relative.get(flow_id, 0.2))
        rows.append(_row(f"measure:{flow_id}", str(by_id["facility_id"].get(flow_id, "")), "measure_better",
                         f"Measure {flow_id} better: its ±{u:.0%} uncertainty puts ±{at_stake:,.0f} {currency}/yr of "
                         "the optimum's saving at stake", _origins(origin_of, [flow_id]), feasibility=1.0,
                         data_confidence=float(quality.get(flow_id, 0.5)), distance_km=0.0, permit_ok=1.0,
                         cost_per_yr=0.0))
    return rows


def _gross_error_rows(table: Any, flows: pd.DataFrame, origin_of: Mapping[str, str]) -> list[dict[str, Any]]:
    """``check_measurement`` actions from a reconciliation: one per flow it flags, with the likely cause the
    network reconciliation gives (``network.gross_errors``: e.g. "1000x too small: a figure in t entered with
    unit kg?"), then one per flagged facility that has no flagged flow (today's per-facility test)."""
    frames = [t for t in (getattr(table, "flows", None), getattr(table, "facilities", None)) if t is not None]
    frames = frames or [table]
    network = getattr(table, "network", None)
    steps = getattr(network, "gross_errors", None)
    cause: dict[str, str] = {}
    if isinstance(steps, pd.DataFrame) and {"flow_id", "likely_cause"} <= set(steps.columns):
        cause = {str(f): str(c) for f, c in zip(steps["flow_id"], steps["likely_cause"], strict=True) if str(c)}
    rows: list[dict[str, Any]] = []
    facility_of = flows.set_index("flow_id")["facility_id"]
    flows_of = flows.groupby("facility_id")["flow_id"].agg(list)
    checked: set[str] = set()
    for frame in sorted(frames, key=lambda f: "flow_id" not in f.columns):  # flows before facilities
        flag = next((c for c in ("gross_error", "gross_error_suspected", "suspect") if c in frame.columns), None)
        if flag is None:
            continue
        for r in frame[frame[flag].fillna(False).astype(bool)].to_dict(orient="records"):
            if "flow_id" in r:
                fid = str(facility_of.get(r["flow_id"], r.get("facility_id", "")))
                checked.add(fid)
                why = cause.get(str(r["flow_id"]), "wrong unit, missing part, meter fault")
                test = r.get("measurement_test", np.nan)
                tested = f", measurement test {test:,.1f}" if test == test else ""
                rows.append(_row(f"check:{r['flow_id']}", fid, "check_measurement",
                                 f"Check the measurement of {r['flow_id']}: the reconciliation finds it a likely gross "
                                 f"error ({why}{tested})", _origins(origin_of, [r["flow_id"]]),
                                 feasibility=1.0, data_confidence=0.25, distance_km=0.0, permit_ok=1.0,
                                 cost_per_yr=0.0))
            elif "facility_id" in r and str(r["facility_id"]) not in checked:
                statistic = r.get("chi_square", np.nan)
                rows.append(_row(f"check:{r['facility_id']}", str(r["facility_id"]), "check_measurement",
                                 f"Check the measurements of {r['facility_id']}: its closure is beyond what the stated "
                                 f"uncertainties explain (chi-square {statistic:,.1f})",
                                 _origins(origin_of, flows_of.get(r["facility_id"], [])),
                                 feasibility=1.0, data_confidence=0.25, distance_km=0.0, permit_ok=1.0,
                                 cost_per_yr=0.0))
    return rows


# ---------------------------------------------------------------------------------------------- scoring


def normalise(actions: pd.DataFrame) -> pd.DataFrame:
    """Each criterion on 0..1 over the candidates (min-max; reversed for less-is-better; missing = 0)."""
    out = pd.DataFrame(index=actions.index)
    for criterion, (_, direction) in CRITERIA.items():
        values = actions[criterion].astype(float)
        low, high = values.min(), values.max()
        if values.notna().sum() == 0:
            scaled = pd.Series(0.5, index=values.index)
        elif high - low <= 1e-12 * max(abs(high), abs(low), 1.0):
            scaled = pd.Series(1.0, index=values.index)
        else:
            scaled = (values - low) / (high - low)
            if direction < 0:
                scaled = 1 - scaled
        out[criterion] = scaled.where(values.notna(), 0.0)
    return out


def score_actions(actions: pd.DataFrame, weights: Mapping[str, float] | AHP | None = None) -> pd.DataFrame:
    """Rank ``actions``: group scores, the weighted score and the rank (1 = first), best first.

    ``weights``: group → weight (technical, environmental, economic), or criterion → weight, or an :class:`AHP`
    result over either; normalised to sum 1. Negative or non-finite weights are an error.
    """
    given = dict(weights.weights if isinstance(weights, AHP) else (weights or DEFAULT_WEIGHTS))
    unknown = set(given) - set(GROUPS) - set(CRITERIA)
    if unknown:
        raise ValueError(f"unknown weight(s) {sorted(unknown)}: use {', '.join(GROUPS)} or criteria "
                         f"{', '.join(CRITERIA)}")
    if any(not np.isfinite(w) or w < 0 for w in given.values()) or sum(given.values()) <= 0:
        raise ValueError("weights must be finite, ≥ 0 and not all 0")
    total = sum(given.values())
    given = {k: v / total for k, v in given.items()}
    scaled = normalise(actions)
    out = actions.copy()
    for group in GROUPS:
        members = [c for c, (g, _) in CRITERIA.items() if g == group]
        out[group] = scaled[members].mean(axis=1)
    if set(given) <= set(GROUPS):
        out["score"] = sum(given.get(g, 0.0) * out[g] for g in GROUPS)
    elif set(given) <= set(CRITERIA):
        out["score"] = sum(w * scaled[c] for c, w in given.items())
    else:
        raise ValueError("give weights either per group or per criterion, not both")
    out["missing"] = actions[list(CRITERIA)].isna().apply(lambda r: ", ".join(c for c, m in r.items() if m), axis=1)
    out = out.sort_values(["score", "action_id"], ascending=[False, True], kind="stable").reset_index(drop=True)
    out["rank"] = np.arange(1, len(out) + 1)
    return out


def action_register(scored: pd.DataFrame) -> pd.DataFrame:
    """The ranked actions as a register a firm's environmental management system can take up: the owner, due
    date and status columns are left empty for the firm to fill."""
    register = scored.copy()
    for column in ("owner", "due_date", "status"):
        register[column] = ""
    return register[REGISTER_COLUMNS]


def write_register(scored: pd.DataFrame, folder: Path, stem: str = "actions") -> dict[str, Path]:
    """``actions.csv`` and ``actions.xlsx`` (sheet ``actions``) in ``folder``."""
    from symbiosis.outputs.export import write_csv, write_xlsx

    register = action_register(scored)
    return {"csv": write_csv(folder / f"{stem}.csv", register),
            "xlsx": write_xlsx(folder / f"{stem}.xlsx", {"actions": register})}
