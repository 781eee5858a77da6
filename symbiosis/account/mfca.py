r"""Material flow cost accounting (ISO 14051:2011): what a facility's material losses cost.

Each facility is a quantity centre (a site split into process steps in the data, as a kiln and a mill, is one
centre per step). Its costs, per year, in four types:

- **material costs** :math:`C_M`: the mass inputs (raw materials, semi-finished goods, auxiliaries, water) at
  the prices in flows.csv, or at what a ``costs.csv`` row or an accounting account mapped to that flow says;
- **energy costs** :math:`C_E`: energy inputs at their prices, plus ``costs.csv`` rows of type ``energy``;
- **system costs** :math:`C_S`: ``costs.csv`` rows of type ``system`` (labour, depreciation, maintenance);
- **waste-management costs** :math:`C_W`: what the losses' fates cost (a flow's own price, else the fate's
  ``cost_per_t``), plus ``costs.csv`` rows of type ``waste_management``.

The outputs are split into **products** (category ``product``, and by-products sold: fate kind ``sold`` or a
negative price) and **material losses** (every other mass output, and the part of the inputs the balance does
not account for: :math:`\max(0, \text{inputs} - \text{outputs} - \Delta\text{stock})`, since in MFCA a loss is
what went in and did not come out as product). Material, energy and system costs are allocated to products and
losses by an allocation key, by mass unless told otherwise (ISO 14051, Annex B):

.. math:: C^{loss}_k = C_k \, \frac{m_{loss}}{m_{product} + m_{loss}}, \qquad k \in \{E, S\}

and waste-management costs go to the losses whole. Material costs follow the materials themselves, as the
standard's example does: a loss of a material the centre buys carries that material's own cost per tonne
(:math:`C^{loss}_{M,traced} = \sum t_{loss,j} \, C_{M,j} / t_{in,j}`, at most the tonnes bought), and what is
left of the material costs is allocated by the key over the products and the rest of the losses. The cost of losses is
:math:`C^{loss} = C^{loss}_M + C^{loss}_E + C^{loss}_S + C_W`, and its share :math:`C^{loss} / (C_M + C_E + C_S + C_W)`.
Each loss flow carries its part of its centre's loss costs in proportion to its key. With an optimum, the part
of each loss that the exchanges now send to a partner is the share of its cost they recover.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from symbiosis.region import Region

#: Input categories whose mass is material input (energy is costed apart, by MWh).
MATERIAL_CATEGORIES = ("raw_material", "semi_finished", "auxiliary", "water")
#: Allocation keys understood by name; a Series of weights per output flow id is also accepted.
KEYS = ("mass", "value")

CENTRE_COLUMNS = [
    "facility_id", "input_t", "product_t", "loss_t", "unaccounted_loss_t", "loss_share_mass",
    "material_cost", "energy_cost", "system_cost", "waste_management_cost", "total_cost",
    "product_cost", "loss_material_cost", "loss_energy_cost", "loss_system_cost", "loss_waste_management_cost",
    "loss_cost", "loss_cost_share", "unpriced_input_t", "n_losses",
]
LOSS_COLUMNS = [
    "flow_id", "facility_id", "material", "category", "fate", "amount_t_per_yr", "key_share",
    "material_cost", "energy_cost", "system_cost", "waste_management_cost", "loss_cost", "origin",
]


@dataclass
class MFCA:
    """MFCA of a region: ``centres`` (one row per quantity centre), ``losses`` (one row per material loss,
    the unaccounted part of a balance as flow id ``FACILITY.unaccounted``), ``region`` (totals) and, with an
    optimum, the losses' ``recovered_t_per_yr`` and ``recovered_cost``. Money in the region's currency per yr."""

    centres: pd.DataFrame
    losses: pd.DataFrame
    region: dict[str, Any]
    currency: str = "EUR"
    key: str = "mass"
    notes: list[str] = field(default_factory=list)


def _fate_cost(flows: pd.DataFrame, region: Region) -> pd.Series:
    """Per output flow, the cost per t of its fate: its own price, else the fate's reference cost."""
    fates = region.reference.fates
    reference = flows["fate"].map(fates["cost_per_t"]) if "cost_per_t" in fates.columns else np.nan
    return flows["price_per_t"].where(flows["price_per_t"].notna(), reference).astype(float)


def _is_product(flows: pd.DataFrame, region: Region) -> pd.Series:
    kind = flows["fate"].map(region.reference.fates["kind"]) if "kind" in region.reference.fates.columns else ""
    sold = (kind == "sold") | (flows["price_per_t"].fillna(0.0) < 0)
    return (flows["category"] == "product") | ((flows["category"] == "by_product") & sold)


def mfca(region: Region, *, costs: pd.DataFrame | None = None, key: str | pd.Series = "mass",
         results: Any = None) -> MFCA:
    """MFCA of every facility of ``region`` (see the module docstring).

    ``costs``: the cost table (Region.costs columns); default the region's own ``costs.csv``; rows from an
    accounting export (symbiosis.account.costs.read_accounts) may be appended to it. ``key``: ``"mass"``
    (default, as ISO 14051), ``"value"`` (outputs weighted by |price| × t: products at their sale price,
    losses at their disposal cost) or a Series of weights indexed by output flow id (any other key the firm
    uses, energy products included; missing flows weigh 0). ``results``: an optimum
    (symbiosis.pipeline.optimise) whose exchanges recover part of the losses.
    """
    costs = region.costs if costs is None else costs
    if costs is None or costs.empty:
        costs = pd.DataFrame(columns=["facility_id", "cost_type", "flow_id", "amount_per_yr", "origin"])
    flows = region.flows
    ids = region.facilities["facility_id"].astype(str).tolist()
    mass = flows[flows["quantity"] == "mass"]
    notes: list[str] = []

    # costs booked on one flow (an accounting account mapped to it) replace price x amount for that flow
    flow_costs = costs[costs["flow_id"].astype(str) != ""].groupby("flow_id")["amount_per_yr"].sum()

    inputs = mass[(mass["direction"] == "in") & mass["category"].isin(MATERIAL_CATEGORIES)]
    priced = inputs["amount_t_per_yr"] * inputs["price_per_t"]
    booked = inputs["flow_id"].map(flow_costs)
    material_cost_of = booked.where(booked.notna(), priced)
    unpriced = inputs["amount_t_per_yr"].where(material_cost_of.isna(), 0.0)
    material_cost = material_cost_of.fillna(0.0).groupby(inputs["facility_id"]).sum()
    unpriced_t = unpriced.groupby(inputs["facility_id"]).sum()
    if float(unpriced_t.sum()) > 0:
        notes.append(f"{unpriced_t.sum():,.0f} t/yr of material inputs have no price and count at 0: give "
                     "`price` in flows.csv or map their purchase account to them")

    energy = flows[(flows["quantity"] == "energy") & (flows["direction"] == "in")]
    energy_priced = energy["amount_mwh_per_yr"] * energy["price_per_mwh"]
    energy_booked = energy["flow_id"].map(flow_costs)
    energy_cost = energy_booked.where(energy_booked.notna(), energy_priced).fillna(0.0).groupby(
        energy["facility_id"]).sum()
    by_type = costs[costs["flow_id"].astype(str) == ""].groupby(["facility_id", "cost_type"])["amount_per_yr"].sum()

    def typed(kind: str) -> pd.Series:
        if by_type.empty:
            return pd.Series(dtype=float)
        part = by_type.xs(kind, level="cost_type") if kind in by_type.index.get_level_values(1) else None
        return part if part is not None else pd.Series(dtype=float)

    outputs = mass[mass["direction"] == "out"].copy()
    product = _is_product(outputs, region)
    losses = outputs[~product].copy()
    products = outputs[product]
    fate_cost = _fate_cost(losses, region)
    booked_loss = losses["flow_id"].map(flow_costs)
    losses["waste_management_cost"] = booked_loss.where(
        booked_loss.notna(), (losses["amount_t_per_yr"] * fate_cost.clip(lower=0.0))).fillna(0.0)

    stock = mass[mass["category"] == "stock_change"].groupby("facility_id")["amount_t_per_yr"].sum()
    input_t = mass[mass["direction"] == "in"].groupby("facility_id")["amount_t_per_yr"].sum()
    product_t = products.groupby("facility_id")["amount_t_per_yr"].sum()
    loss_t = losses.groupby("facility_id")["amount_t_per_yr"].sum()
    out_t = outputs.groupby("facility_id")["amount_t_per_yr"].sum()

    def aligned(series: pd.Series) -> np.ndarray:
        return series.reindex(ids).fillna(0.0).to_numpy(float)

    unaccounted = np.maximum(0.0, aligned(input_t) - aligned(out_t) - aligned(stock))
    unaccounted_rows = pd.DataFrame({
        "flow_id": [f"{f}.unaccounted" for f in ids], "facility_id": ids, "material": "",
        "category": "unaccounted", "fate": "", "amount_t_per_yr": unaccounted, "waste_management_cost": 0.0,
        "origin": "balance: inputs − outputs − stock change", "price_per_t": np.nan,
    })
    unaccounted_rows = unaccounted_rows[unaccounted_rows["amount_t_per_yr"] > 0]
    loss_rows = pd.concat([losses[["flow_id", "facility_id", "material", "category", "fate", "amount_t_per_yr",
                                   "waste_management_cost", "origin", "price_per_t"]], unaccounted_rows],
                          ignore_index=True)

    # allocation key: weights of products and losses within each centre
    key_name = key if isinstance(key, str) else "custom"
    if isinstance(key, str) and key not in KEYS:
        raise ValueError(f"unknown allocation key {key!r}: use one of {', '.join(KEYS)} or a Series of weights")
    if key_name == "mass":
        loss_weight = loss_rows["amount_t_per_yr"].to_numpy(float)
        product_weight = products["amount_t_per_yr"].to_numpy(float)
    elif key_name == "value":
        loss_weight = (loss_rows["amount_t_per_yr"] * _fate_cost(loss_rows, region).abs()).fillna(0.0).to_numpy(float)
        product_weight = (products["amount_t_per_yr"] * products["price_per_t"].abs()).fillna(0.0).to_numpy(float)
    else:
        weights = pd.Series(key, dtype=float)
        loss_weight = loss_rows["flow_id"].map(weights).fillna(0.0).to_numpy(float)
        product_weight = products["flow_id"].map(weights).fillna(0.0).to_numpy(float)
    loss_key = pd.Series(loss_weight).groupby(loss_rows["facility_id"].to_numpy()).sum()
    product_key = pd.Series(product_weight).groupby(products["facility_id"].to_numpy()).sum()
    if key_name == "custom":
        # a key of the firm's own may weigh energy products too (a power station's electricity and heat)
        energy_out = flows[(flows["quantity"] == "energy") & (flows["direction"] == "out")]
        energy_out = energy_out[_is_product(energy_out, region)]
        extra = energy_out["flow_id"].map(pd.Series(key, dtype=float)).fillna(0.0)
        product_key = product_key.add(extra.groupby(energy_out["facility_id"]).sum(), fill_value=0.0)
    lk, pk = aligned(loss_key), aligned(product_key)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(lk + pk > 0, lk / (lk + pk), 0.0)

    # Material costs follow the materials (ISO 14051, 5.3): a loss of a material the centre buys carries that
    # material's own unit cost (at most the tonnes bought); the rest of the material costs go by the key.
    bought = pd.DataFrame({"facility_id": inputs["facility_id"], "material": inputs["material"],
                           "t": inputs["amount_t_per_yr"], "cost": material_cost_of})
    bought = bought[bought["cost"].notna()].groupby(["facility_id", "material"])[["t", "cost"]].sum()
    pair = pd.MultiIndex.from_arrays([loss_rows["facility_id"], loss_rows["material"]])
    bought_t = bought["t"].reindex(pair).to_numpy(float)
    bought_cost = bought["cost"].reindex(pair).to_numpy(float)
    amount = loss_rows["amount_t_per_yr"].to_numpy(float)
    lost_same = loss_rows.groupby(["facility_id", "material"])["amount_t_per_yr"].transform("sum").to_numpy(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        traced_t = np.nan_to_num(amount * np.where(lost_same > 0, np.minimum(1.0, bought_t / lost_same), 0.0))
        traced_cost = np.nan_to_num(traced_t * bought_cost / bought_t)
        traced_fraction = np.where(amount > 0, traced_t / np.where(amount > 0, amount, 1.0), 0.0)
    untraced_weight = loss_weight * (1 - traced_fraction)
    centre_of = loss_rows["facility_id"].to_numpy()
    ulk = aligned(pd.Series(untraced_weight).groupby(centre_of).sum())
    tc = aligned(pd.Series(traced_cost).groupby(centre_of).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        share_rest = np.where(ulk + pk > 0, ulk / (ulk + pk), 0.0)

    cm = aligned(material_cost)
    ce = aligned(energy_cost) + aligned(typed("energy"))
    cs = aligned(typed("system"))
    cw = aligned(loss_rows.groupby("facility_id")["waste_management_cost"].sum()) + aligned(typed("waste_management"))
    total = cm + ce + cs + cw
    loss_m, loss_e, loss_s = tc + (cm - tc) * share_rest, ce * share, cs * share
    loss_cost = loss_m + loss_e + loss_s + cw
    with np.errstate(invalid="ignore", divide="ignore"):
        loss_share_mass = np.where(aligned(loss_t) + unaccounted + aligned(product_t) > 0,
                                   (aligned(loss_t) + unaccounted)
                                   / (aligned(loss_t) + unaccounted + aligned(product_t)), np.nan)
        cost_share = np.where(total > 0, loss_cost / np.where(total > 0, total, 1.0), np.nan)
    centres = pd.DataFrame({
        "facility_id": ids, "input_t": aligned(input_t), "product_t": aligned(product_t),
        "loss_t": aligned(loss_t), "unaccounted_loss_t": unaccounted, "loss_share_mass": loss_share_mass,
        "material_cost": cm, "energy_cost": ce, "system_cost": cs, "waste_management_cost": cw, "total_cost": total,
        "product_cost": total - loss_cost, "loss_material_cost": loss_m, "loss_energy_cost": loss_e,
        "loss_system_cost": loss_s, "loss_waste_management_cost": cw, "loss_cost": loss_cost,
        "loss_cost_share": cost_share, "unpriced_input_t": aligned(unpriced_t),
        "n_losses": aligned(loss_rows.groupby("facility_id")["flow_id"].count()).astype(int),
    })[CENTRE_COLUMNS]

    # each loss flow's part of its centre's allocated costs, in proportion to its key
    position = {f: i for i, f in enumerate(ids)}
    centre = loss_rows["facility_id"].map(position).to_numpy(int)
    with np.errstate(invalid="ignore", divide="ignore"):
        within = np.where(lk[centre] > 0, loss_weight / np.where(lk[centre] > 0, lk[centre], 1.0), 0.0)
    table = loss_rows.drop(columns=["price_per_t"]).copy()
    table["key_share"] = within
    with np.errstate(invalid="ignore", divide="ignore"):
        within_rest = np.where(ulk[centre] > 0, untraced_weight / np.where(ulk[centre] > 0, ulk[centre], 1.0), 0.0)
    table["material_cost"] = traced_cost + ((cm - tc) * share_rest)[centre] * within_rest
    table["energy_cost"] = ce[centre] * share[centre] * within
    table["system_cost"] = loss_s[centre] * within
    # facility-level waste-management rows of costs.csv spread over the losses by the key
    facility_waste = aligned(typed("waste_management"))[centre] * within
    table["waste_management_cost"] = table["waste_management_cost"] + facility_waste
    table["loss_cost"] = table[["material_cost", "energy_cost", "system_cost", "waste_management_cost"]].sum(axis=1)
    table = table[LOSS_COLUMNS].sort_values("loss_cost", ascending=False).reset_index(drop=True)

    summary: dict[str, Any] = {
        "total_cost": float(total.sum()), "loss_cost": float(loss_cost.sum()),
        "loss_cost_share": float(loss_cost.sum() / total.sum()) if total.sum() > 0 else float("nan"),
        "loss_t": float(aligned(loss_t).sum() + unaccounted.sum()), "key": key_name,
    }
    if results is not None:
        table, summary = _recovered(table, summary, results)
    return MFCA(centres=centres, losses=table, region=summary, currency=region.settings.currency, key=key_name,
                notes=notes)


def _recovered(losses: pd.DataFrame, summary: dict[str, Any], results: Any) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The part of each loss the optimum's exchanges send to a partner, and the share of its cost recovered."""
    supplies = results.supplies
    shipped = pd.Series(supplies["exchanged_t_per_yr"].to_numpy(float), index=supplies["supply_id"].astype(str))
    shipped = shipped[~shipped.index.duplicated()].fillna(0.0)
    losses = losses.copy()
    exchanged = losses["flow_id"].map(shipped).fillna(0.0).clip(upper=losses["amount_t_per_yr"])
    with np.errstate(invalid="ignore", divide="ignore"):
        fraction = np.where(losses["amount_t_per_yr"] > 0, exchanged / losses["amount_t_per_yr"], 0.0)
    losses["recovered_t_per_yr"] = exchanged
    losses["recovered_cost"] = losses["loss_cost"] * fraction
    summary = dict(summary)
    summary["recovered_t"] = float(exchanged.sum())
    summary["recovered_cost"] = float(losses["recovered_cost"].sum())
    summary["recovered_share"] = (summary["recovered_cost"] / summary["loss_cost"]
                                  if summary["loss_cost"] > 0 else float("nan"))
    return losses, summary
