"""Facility and region balances: the second stage of the pipeline (Region -> :class:`Balances`).

For every facility and conserved quantity (mass in t/yr; energy in MWh/yr, balanced separately)::

    inputs = outputs + stock_change + closure        closure_error = closure / inputs

A closure error beyond the tolerance (region default 5 %) is a warning with its figure, never a crash: real
records rarely close, and the consultant needs to see by how much. Energy is held to the same tolerance but
its warning reads "energy balance open": a facility that burns fuel or uses electricity turns it into heat
that is rarely recorded as an output (conversion losses), and one that sells heat or power made from a fuel
recorded in tonnes has more energy out than in; either is legitimate, and the figure shows how much is
unaccounted (docs/architecture.md, "Balances"). Each row also gives the data-quality mix
(shares of measured, estimated and modelled tonnage). The region's balance across its boundary counts only
flows that enter or leave the region: before symbiosis that is every flow; after it, exchanged tonnes are
internal. :func:`balances_after` rebuilds the flow table with the exchanges in place and balances it again,
so the post-solve check compares two independent computations.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from symbiosis.region import Region

logger = logging.getLogger(__name__)

REGION_ID = "REGION"
#: A measured flow and its process model's figure this many times apart (either way) is a balance warning.
MODEL_DISAGREEMENT = 2.0
UNITS = {"mass": "t/yr", "energy": "MWh/yr"}
TABLE_COLUMNS = [
    "facility_id", "quantity", "unit", "inputs", "outputs", "stock_change", "closure", "closure_error",
    "within_tolerance", "share_measured", "share_estimated", "share_modelled", "n_flows", "status",
    "expected_loss",
]


class ConservationError(AssertionError):
    """Mass (or energy) was created or lost by a computation: a bug, reported with the figures."""


@dataclass
class Balances:
    """Balances per facility and quantity (``table``) and across the region boundary (``region``)."""

    table: pd.DataFrame
    region: pd.DataFrame
    tolerance: float
    flows: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: region.model_figures: measured flows with their process model's figure (a factor of 2 apart warns).
    model_figures: pd.DataFrame = field(default_factory=pd.DataFrame)

    def model_disagreements(self) -> pd.DataFrame:
        """The measured flows whose process model gives a figure at least MODEL_DISAGREEMENT times larger or
        smaller (both positive): the data or the model is wrong, or the facility differs from the model."""
        figures = self.model_figures
        if figures.empty:
            return figures
        measured = figures["measured_t_per_yr"].to_numpy(dtype=float)
        model = figures["model_t_per_yr"].to_numpy(dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.maximum(measured / model, model / measured)
        hit = (measured > 0) & (model > 0) & (ratio >= MODEL_DISAGREEMENT)
        return figures[hit].assign(ratio=ratio[hit])

    def warnings(self, names: dict[str, str] | None = None) -> list[str]:
        """One message per facility balance whose status is a warning (the terminal and the report both
        count these). ``names`` maps facility ids to the names to show instead."""
        rows = self.table[self.table["status"].str.startswith("warning")]
        messages = []
        for r in rows.itertuples():
            who = (names or {}).get(r.facility_id, r.facility_id)
            if r.n_flows == 0:
                messages.append(f"{who}: no flows recorded")
            elif r.quantity == "energy":
                why = ("conversion losses are expected where fuel or power becomes heat; record them as an output "
                       "(emission, waste heat) to close it" if r.closure >= 0 else
                       "expected where heat or power is made from a fuel recorded in tonnes; otherwise check the "
                       "units of the energy flows")
                messages.append(
                    f"{who}: {_energy_open(r.closure)} (inputs {r.inputs:,.1f}, outputs {r.outputs:,.1f} "
                    f"{r.unit}; closure error {_pct(r.closure_error)}, tolerance {self.tolerance:.0%}): {why}")
            else:
                messages.append(
                    f"{who}: {r.quantity} balance does not close: inputs {r.inputs:,.1f}, outputs "
                    f"{r.outputs:,.1f}, stock change {r.stock_change:,.1f} {r.unit}; closure error "
                    f"{_pct(r.closure_error)} (tolerance {self.tolerance:.0%})")
        for r in self.model_disagreements().itertuples():
            who = (names or {}).get(r.facility_id, r.facility_id)
            messages.append(
                f"{who}: flow {r.flow_id} ({r.direction} {r.material}) is {r.measured_t_per_yr:,.0f} t/yr in the "
                f"data but its process model gives {r.model_t_per_yr:,.0f} t/yr at the facility's activity "
                f"({r.ratio:.1f}x apart): check the figure, the activity or the model")
        return messages

    def data_quality_notes(self, names: dict[str, str] | None = None) -> list[str]:
        """Facility balances resting mostly (over half the tonnage or MWh) on estimated or modelled flows."""
        shares = self.table["share_estimated"].fillna(0.0) + self.table["share_modelled"].fillna(0.0)
        rows = self.table[shares > 0.5]
        return [f"{(names or {}).get(r.facility_id, r.facility_id)} ({r.quantity}): "
                f"{r.share_estimated + r.share_modelled:.0%} of the flows are estimated or modelled, not measured"
                for r in rows.itertuples()]

    def facility(self, facility_id: str, quantity: str = "mass") -> pd.Series:
        hit = self.table[(self.table["facility_id"] == facility_id) & (self.table["quantity"] == quantity)]
        if hit.empty:
            raise KeyError(f"no {quantity} balance for facility {facility_id!r}")
        return hit.iloc[0]


def _energy_open(closure: float) -> str:
    if closure >= 0:
        return f"energy balance open: {closure:,.0f} MWh/yr unaccounted"
    return f"energy balance open: {-closure:,.0f} MWh/yr more out than in"


def _pct(value: float) -> str:
    return "n/a (no inputs)" if value != value else f"{value:+.1%}"


def _amount(flows: pd.DataFrame) -> pd.Series:
    return flows["amount_t_per_yr"].where(flows["quantity"] == "mass", flows["amount_mwh_per_yr"])


def balance_table(flows: pd.DataFrame, facility_ids: list[str], tolerance: float,
                  efficiency: dict[str, float] | None = None) -> pd.DataFrame:
    """The per-facility balance table of a flow table (columns in docs/architecture.md).

    ``efficiency`` (facility_id → η, from process models) sets each facility's ``expected_loss`` of energy,
    (1 − η) × energy inputs; the energy balance is judged on what is open beyond it."""
    frame = flows[["facility_id", "quantity", "direction", "data_quality"]].copy()
    frame["amount"] = _amount(flows).astype(float)
    sides = frame.pivot_table(index=["facility_id", "quantity"], columns="direction", values="amount",
                              aggfunc="sum", fill_value=0.0)
    for side in ("in", "out", "stock"):
        if side not in sides.columns:
            sides[side] = 0.0
    moving = frame[frame["direction"] != "stock"].copy()
    moving["abs"] = moving["amount"].abs()
    quality = moving.pivot_table(index=["facility_id", "quantity"], columns="data_quality", values="abs",
                                 aggfunc="sum", fill_value=0.0)
    counts = frame.groupby(["facility_id", "quantity"]).size().rename("n_flows")
    table = sides[["in", "out", "stock"]].join(quality, how="left").join(counts, how="left").fillna(0.0)
    table = table.reset_index().rename(columns={"in": "inputs", "out": "outputs", "stock": "stock_change"})
    total = table[["inputs", "outputs"]].sum(axis=1)
    for kind in ("measured", "estimated", "modelled"):
        column = table[kind] if kind in table.columns else 0.0
        table[f"share_{kind}"] = np.where(total > 0, column / total.where(total > 0, 1.0), 0.0)
    # Facilities without any flow still appear, so nothing is silently dropped from a report.
    present = set(table["facility_id"])
    missing = [f for f in facility_ids if f not in present]
    if missing:
        empty = pd.DataFrame({"facility_id": missing, "quantity": "mass", "inputs": 0.0, "outputs": 0.0,
                              "stock_change": 0.0, "n_flows": 0, "share_measured": 0.0,
                              "share_estimated": 0.0, "share_modelled": 0.0})
        table = pd.concat([table, empty], ignore_index=True)
    table["expected_loss"] = 0.0
    if efficiency:
        eta = table["facility_id"].map(efficiency).astype(float)
        expected = (table["quantity"] == "energy") & eta.notna()
        table.loc[expected, "expected_loss"] = ((1.0 - eta) * table["inputs"])[expected]
    return _finish(table, tolerance)


def _finish(table: pd.DataFrame, tolerance: float) -> pd.DataFrame:
    table = table.copy()
    table["unit"] = table["quantity"].map(UNITS)
    table["closure"] = table["inputs"] - table["outputs"] - table["stock_change"]
    if "expected_loss" not in table.columns:
        table["expected_loss"] = 0.0
    # What is open beyond the conversion loss a process model expects (0 where none is stated).
    unexplained = table["closure"] - table["expected_loss"]
    table["closure_error"] = np.where(table["inputs"] > 0,
                                      table["closure"] / table["inputs"].where(table["inputs"] > 0, 1.0), np.nan)
    # The tolerance is relative to the largest side of the balance, so a facility with a stock change but
    # no recorded inputs is still judged. Energy is judged too, and a warning says it is open, not wrong.
    scale = pd.concat([table["inputs"], table["outputs"], table["stock_change"].abs()], axis=1).max(axis=1)
    closure_abs = unexplained.abs()
    relative = np.where(scale > 0, closure_abs / scale.where(scale > 0, 1.0), np.where(closure_abs > 0, np.inf, 0.0))
    table["within_tolerance"] = relative <= tolerance
    table["n_flows"] = table["n_flows"].astype(int)
    table["status"] = np.where(
        table["within_tolerance"], "ok",
        "warning: closure error " + table["closure_error"].map(_pct) + f" beyond {tolerance:.0%}",
    )
    energy_open = (table["quantity"] == "energy") & ~table["within_tolerance"]
    if energy_open.any():
        table.loc[energy_open, "status"] = "warning: " + unexplained[energy_open].map(_energy_open)
    table.loc[table["n_flows"] == 0, "status"] = "warning: no flows"
    order = {"mass": 0, "energy": 1}
    table = table.sort_values(["facility_id", "quantity"], key=lambda s: s.map(order) if s.name == "quantity" else s)
    return table[TABLE_COLUMNS].reset_index(drop=True)


def _region_rows(table: pd.DataFrame, internal: dict[str, float], tolerance: float) -> pd.DataFrame:
    sums = table.groupby("quantity")[["inputs", "outputs", "stock_change", "expected_loss"]].sum()
    counts = table.groupby("quantity")["n_flows"].sum()
    rows = []
    for quantity, row in sums.iterrows():
        inner = internal.get(str(quantity), 0.0)
        rows.append({
            "facility_id": REGION_ID, "quantity": quantity,
            "inputs": row["inputs"] - inner, "outputs": row["outputs"] - inner,
            "stock_change": row["stock_change"], "n_flows": int(counts[quantity]),
            "expected_loss": row["expected_loss"],
            "share_measured": math.nan, "share_estimated": math.nan, "share_modelled": math.nan,
        })
    if not rows:
        return pd.DataFrame(columns=TABLE_COLUMNS)
    return _finish(pd.DataFrame(rows), tolerance)


def balances(region: Region, *, tolerance: float | None = None) -> Balances:
    """Balance every facility of the region and the region across its boundary."""
    tolerance = region.settings.defaults.balance_tolerance if tolerance is None else tolerance
    table = balance_table(region.flows, list(region.facilities["facility_id"]), tolerance,
                          getattr(region, "energy_efficiency", None))
    region_rows = _region_rows(table, {}, tolerance)
    result = Balances(table=table, region=region_rows, tolerance=tolerance, flows=region.flows,
                      model_figures=region.model_figures)
    for message in result.warnings():  # the commands print them, counted; here for a verbose log only
        logger.info(message)
    return result


def flows_after(region: Region, exchanges: pd.DataFrame) -> pd.DataFrame:
    """The flow table with the exchanges in place.

    A supply's outgoing flow is split into the part that goes to each partner and the part left to its fate
    (its total is unchanged). A demand's incoming virgin flow shrinks by what the secondary material replaces
    (ρ·x) and the secondary material enters as its own flow (x). Where ρ ≠ 1 the receiver's inputs change by
    x·(1 − ρ); that difference is shown as an explicit ``substitution_difference`` line (an output when the
    secondary is heavier than what it replaces, e.g. its extra moisture; an input otherwise), so the balance
    stays closed and the assumption stays visible.
    """
    flows = region.flows.copy()
    if exchanges.empty:
        return flows
    base = region.flows.set_index("flow_id")
    pieces = [flows]
    # Mass exchanges in t; energy exchanges (symbiosis.energy) in MWh, their losses on the way and the heat
    # a heat pump adds being the difference line (an output where heat is lost, an input where it is gained).
    quantity = exchanges["quantity"] if "quantity" in exchanges.columns else pd.Series("mass", index=exchanges.index)
    for kind, amount_col, received_col, replaced_col in (
            ("mass", "amount_t_per_yr", "amount_t_per_yr", "replaced_t_per_yr"),
            ("energy", "amount_mwh_per_yr", "amount_mwh_per_yr", "delivered_mwh_per_yr")):
        part = exchanges[quantity.to_numpy() == kind]
        if part.empty:
            continue
        replaced = part.groupby("demand_id")[replaced_col].sum()
        received = part.groupby("demand_id")[received_col].sum()
        hit = flows["flow_id"].isin(replaced.index)
        flows.loc[hit, amount_col] = flows.loc[hit, amount_col] - flows.loc[hit, "flow_id"].map(replaced)
        # One incoming flow per exchange: the secondary material as it arrives.
        secondary = base.loc[part["demand_id"]].reset_index()
        secondary["flow_id"] = (part["demand_id"] + "<-" + part["supply_id"]).to_numpy()
        secondary["material"] = part["material"].to_numpy()
        secondary[amount_col] = part[received_col].to_numpy(float)
        secondary["source"] = "exchange"
        secondary["origin"] = "exchange"
        secondary["note"] = ("secondary " + part["material"].astype(str) + " from "
                             + part["supply_facility"].astype(str)).to_numpy()
        pieces.append(secondary)
        difference = (received - replaced)
        difference = difference[difference.abs() > 1e-9]
        if len(difference):
            adjust = base.loc[difference.index].reset_index()
            adjust["flow_id"] = adjust["flow_id"] + ".substitution_difference"
            heavier = difference.to_numpy() > 0
            adjust["direction"] = np.where(heavier, "out", "in")
            adjust["category"] = np.where(heavier, "emission", "raw_material" if kind == "mass" else "energy")
            adjust[amount_col] = np.abs(difference.to_numpy())
            adjust["source"] = "exchange"
            adjust["origin"] = "exchange"
            adjust["note"] = ("difference between secondary received and virgin replaced (ratio ≠ 1)" if kind == "mass"
                              else "heat lost in the pipe (out) or added by a heat pump (in)")
            pieces.append(adjust)
    pieces[0] = flows
    return pd.concat(pieces, ignore_index=True)


def balances_after(region: Region, exchanges: pd.DataFrame, *, tolerance: float | None = None) -> Balances:
    """Balances with the exchanges in place; exchanged tonnes become internal to the region."""
    tolerance = region.settings.defaults.balance_tolerance if tolerance is None else tolerance
    after = flows_after(region, exchanges)
    table = balance_table(after, list(region.facilities["facility_id"]), tolerance,
                          getattr(region, "energy_efficiency", None))
    internal = {"mass": float(exchanges["amount_t_per_yr"].sum())} if not exchanges.empty else {}
    if "amount_mwh_per_yr" in exchanges.columns and exchanges["amount_mwh_per_yr"].notna().any():
        internal["energy"] = float(exchanges["amount_mwh_per_yr"].sum())
    return Balances(table=table, region=_region_rows(table, internal, tolerance), tolerance=tolerance, flows=after)


def check_conservation(before: Balances, after: Balances, *, rel_tol: float = 1e-9) -> None:
    """Raise :class:`ConservationError` unless every facility's and the region's closure is unchanged.

    Exchanges move material between facilities; they must neither create nor destroy any, so each facility's
    closure (inputs − outputs − stock change) and the region's must be the same before and after.
    """
    merged = before.table.merge(after.table, on=["facility_id", "quantity"], suffixes=("_before", "_after"))
    if len(merged) != len(before.table):
        raise ConservationError("balances after symbiosis lost facility rows")
    scale = merged[["inputs_before", "outputs_before"]].abs().max(axis=1).clip(lower=1.0)
    drift = (merged["closure_after"] - merged["closure_before"]).abs() / scale
    bad = merged[drift > rel_tol]
    if not bad.empty:
        lines = [f"{r.facility_id} ({r.quantity}): closure {r.closure_before:.6g} before, {r.closure_after:.6g} after"
                 for r in bad.itertuples()]
        raise ConservationError("mass not conserved by the exchanges:\n" + "\n".join(lines))
    region = before.region.merge(after.region, on="quantity", suffixes=("_before", "_after"))
    for r in region.itertuples():
        scale_r = max(abs(r.inputs_before), 1.0)
        if abs(r.closure_after - r.closure_before) / scale_r > rel_tol:
            raise ConservationError(f"region ({r.quantity}): closure {r.closure_before:.6g} before, "
                                    f"{r.closure_after:.6g} after")


#: Relative standard uncertainty assumed where a flow gives no ``uncertainty_pct`` (by data quality).
DEFAULT_UNCERTAINTY = {"measured": 0.05, "estimated": 0.20, "modelled": 0.30}
#: 95 % quantile of the chi-square distribution with one degree of freedom.
CHI2_1_95 = 3.841458820694124


@dataclass
class Reconciliation:
    """Reconciled flows (``flows``: amount before and after, standard uncertainty, adjustment) and, per
    facility, the test statistic of the closure against its uncertainty (``facilities``)."""

    flows: pd.DataFrame
    facilities: pd.DataFrame
    #: the whole network reconciliation (mass): global test, gross errors, node closures.
    network: Any = None


def reconcile(region: Region, *, quantity: str = "mass") -> Reconciliation:
    r"""Reconcile each facility's flows so that its balance closes, by weighted least squares.

    Each facility has one constraint, :math:`a^\top x = 0` with :math:`a = +1` for inputs, :math:`-1` for
    outputs and stock change. With measurement variances :math:`\sigma_i^2` (from ``uncertainty_pct``, read as
    one standard deviation, or a default by data quality: measured 5 %, estimated 20 %, modelled 30 %), the
    reconciled flows minimise :math:`\sum (\hat x_i - x_i)^2 / \sigma_i^2` subject to the constraint:

    .. math:: \hat x = x - \sigma^2 \odot a \, \frac{a^\top x}{\sum_j a_j^2 \sigma_j^2}

    The test statistic :math:`(a^\top x)^2 / \sum_j a_j^2 \sigma_j^2` follows a chi-square law with one degree
    of freedom when the data are right; above 3.84 (95 %) the closure is larger than the stated uncertainties
    explain: a gross error (a missing flow, a wrong unit) is likely, and the facility is flagged. Flows with
    the largest uncertainty absorb most of the adjustment, as in STAN and Narasimhan & Jordache.

    Mass is reconciled over the region as one network (:func:`symbiosis.account.reconcile.reconcile_network`:
    a stream between two facilities is one variable, unmeasured flows are estimated, gross errors are located
    by the measurement test); the per-facility formula above is the case of a facility linked to no other, and
    still serves energy. ``facilities`` keeps the per-facility test of the data as given.
    """
    if quantity == "mass":
        from symbiosis.account.reconcile import reconcile_network

        network = reconcile_network(region)
        return Reconciliation(flows=network.flows, facilities=network.facility_tests(), network=network)
    flows = region.flows[region.flows["quantity"] == quantity].copy()
    column = "amount_t_per_yr" if quantity == "mass" else "amount_mwh_per_yr"
    amount = flows[column].to_numpy(float)
    sign = np.where(flows["direction"].to_numpy() == "in", 1.0, -1.0)
    relative = flows["uncertainty_pct"].to_numpy(float) / 100.0
    default = flows["data_quality"].map(DEFAULT_UNCERTAINTY).fillna(0.2).to_numpy(float)
    relative = np.where(np.isnan(relative), default, relative)
    sigma = np.abs(amount) * relative
    variance = sigma**2
    facility = flows["facility_id"].to_numpy()
    codes, index = np.unique(facility, return_inverse=True)
    closure = np.bincount(index, weights=sign * amount, minlength=len(codes))
    spread = np.bincount(index, weights=variance, minlength=len(codes))
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(spread > 0, closure / spread, 0.0)
        statistic = np.where(spread > 0, closure**2 / spread, np.where(closure != 0, np.inf, 0.0))
    adjustment = -variance * sign * share[index]
    flows_out = pd.DataFrame({
        "flow_id": flows["flow_id"].to_numpy(), "facility_id": facility, "direction": flows["direction"].to_numpy(),
        "material": flows["material"].to_numpy(), "data_quality": flows["data_quality"].to_numpy(),
        "amount": amount, "standard_uncertainty": sigma, "reconciled": amount + adjustment,
        "adjustment": adjustment,
        "adjustment_pct": np.where(amount != 0, 100.0 * adjustment / np.where(amount != 0, amount, 1.0), 0.0),
    })
    facilities = pd.DataFrame({
        "facility_id": codes, "closure": closure, "closure_standard_uncertainty": np.sqrt(spread),
        "chi_square": statistic, "gross_error_suspected": statistic > CHI2_1_95,
    })
    return Reconciliation(flows=flows_out, facilities=facilities)
