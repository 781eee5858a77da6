"""The report's first screen: what the network achieves, told in words a board member reads.

``story(results, view, region)`` gathers, from the (public) results:

- the savings: money, CO2e, waste kept from landfill (and incineration), virgin material, water and energy
  (fuel avoided by the heat exchanges, in MWh), each with a plain-words figure ("58.5 million EUR a year");
- the five exchanges that matter most (by saving) as one generated sentence each: who sends what to whom,
  how much (t/yr, or MWh/yr for heat), how far, what it replaces, the money and the CO2e;
- who gains: the facilities with the largest gain, and how many take part;
- what is uncertain or assumed: the share of the flows (by count and by tonnes) that are modelled rather
  than measured or estimated (the flows' ``data_quality``), the balances outside their tolerance, the carbon
  price and the circuity used;
- what to do next: a few actions drawn from the same data (the partners of the largest exchange, the
  figures to measure first, the largest stream still landfilled, permit changes, a carbon price to test).

Everything here is plain text: the template escapes it. Names come from the view the report is written
from, so a confidential facility is "Confidential facility N" and its tonnes and money are not told.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import pandas as pd

from symbiosis.outputs.export import WASTE_FATE_KINDS, facility_names
from symbiosis.outputs.mapping import short_name

#: How many exchanges the story names.
N_STORY_EXCHANGES = 5
#: How many facilities "who gains" names.
N_STORY_GAINERS = 3


def plain_amount(value: Any, unit: str = "") -> str:
    """A figure in words for a board: "58.5 million", "186,870", "2.4 billion"; "not disclosed" when missing."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "not disclosed"
    if math.isnan(number):
        return "not disclosed"
    size = abs(number)
    if size >= 1e9:
        text = f"{number / 1e9:,.1f} billion"
    elif size >= 1e6:
        text = f"{number / 1e6:,.1f} million"
    elif size >= 100:
        text = f"{number:,.0f}"
    elif size >= 1:
        text = f"{number:,.1f}".removesuffix(".0")
    else:
        text = f"{number:.2g}"
    return f"{text} {unit}".strip()


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


@functools.lru_cache(maxsize=1)
def _shipped_material_names() -> dict[str, str]:
    from symbiosis.reference import data_dir

    try:
        table = pd.read_csv(data_dir() / "reference" / "materials.csv", dtype=str, keep_default_na=False)
    except (OSError, ValueError):
        return {}
    return dict(zip(table["material_id"], table["name"], strict=True)) if "name" in table.columns else {}


def material_names(region: Any = None) -> dict[str, str]:
    """material_id -> a short readable name (the reference's name up to its first bracket)."""
    names = dict(_shipped_material_names())
    materials = getattr(getattr(region, "reference", None), "materials", None)
    if isinstance(materials, pd.DataFrame) and {"material_id", "name"} <= set(materials.columns):
        names.update(zip(materials["material_id"].astype(str), materials["name"].astype(str), strict=True))
    return {key: (value.split(" (", 1)[0].strip() or key) for key, value in names.items() if value}


def _material(names: dict[str, str], material: Any) -> str:
    text = str(material)
    return names.get(text, text.replace("_", " "))


def exchange_sentence(row: Any, names: dict[str, str], materials: dict[str, str], currency: str) -> str:
    """One sentence for one exchange (a row of the exchanges table)."""
    sender = names.get(str(row["supply_facility"]), str(row["supply_facility"]))
    receiver = names.get(str(row["demand_facility"]), str(row["demand_facility"]))
    heat = str(row.get("quantity", "mass")) == "energy"
    amount = _number(row.get("amount_mwh_per_yr") if heat else row.get("amount_t_per_yr"))
    unit = "MWh/yr" if heat else "t/yr"
    what = _material(materials, row["material"])
    how_much = (f"{plain_amount(amount, unit)} of {what}" if not math.isnan(amount)
                else f"an undisclosed amount of {what}")
    primary = row.get("primary_material")
    replaces = (f", replacing {_material(materials, primary)}"
                if isinstance(primary, str) and primary and primary != row["material"] else "")
    distance = _number(row.get("distance_km"))
    if str(row["supply_facility"]) == str(row["demand_facility"]):
        head = f"{sender} reuses {how_much} in its own process{replaces}"
    else:
        far = f" ({distance:,.1f} km)" if not math.isnan(distance) else ""
        head = f"{sender} sends {how_much} to {receiver}{far}{replaces}"
    figures = []
    saving = _number(row.get("saving"))
    if not math.isnan(saving):
        figures.append(f"saves {plain_amount(saving, currency)} a year")
    co2e = _number(row.get("co2e_avoided_t_per_yr"))
    if not math.isnan(co2e) and abs(co2e) >= 0.5:
        figures.append(f"{'avoids' if co2e > 0 else 'adds'} {plain_amount(abs(co2e), 't CO2e')} a year")
    return head + (": " + " and ".join(figures) if figures else "") + "."


def _quality(results: Any) -> dict[str, Any]:
    """Counts and tonnes of the flows by data_quality, and which facilities hold the most modelled tonnes."""
    flows = getattr(getattr(results, "balances", None), "flows", None)
    if not isinstance(flows, pd.DataFrame) or flows.empty or "data_quality" not in flows.columns:
        return {}
    flows = flows[flows["direction"].isin(["in", "out"])] if "direction" in flows.columns else flows
    quality = flows["data_quality"].fillna("unknown").astype(str)
    tonnes = flows["amount_t_per_yr"].astype(float).fillna(0.0).abs() if "amount_t_per_yr" in flows.columns \
        else pd.Series(0.0, index=flows.index)
    modelled = quality.eq("modelled")
    total_t = float(tonnes.sum())
    per_facility = tonnes[modelled].groupby(flows.loc[modelled, "facility_id"].astype(str)).sum()
    return {
        "n_flows": len(flows),
        "n_modelled": int(modelled.sum()),
        "n_estimated": int(quality.eq("estimated").sum()),
        "n_measured": int(quality.eq("measured").sum()),
        "share_modelled": float(modelled.mean()) if len(flows) else math.nan,
        "share_modelled_t": float(tonnes[modelled].sum()) / total_t if total_t > 0 else math.nan,
        "modelled_facilities": per_facility.sort_values(ascending=False).index.tolist(),
        "by_supply": dict(zip(flows.get("flow_id", pd.Series(dtype=str)).astype(str), quality, strict=False)),
    }


def story(results: Any, view: Any, region: Any = None, *, public: bool = True, n_permits: int = 0) -> dict[str, Any]:
    """The first screen of the report (see the module's docstring) as plain data for the template."""
    kpis = dict(view.kpis)
    currency = str(kpis.get("currency", "EUR"))
    names = {key: short_name(value, 60) for key, value in facility_names(view.facilities).items()}
    materials = material_names(region)

    savings = []

    def saving(key: str, label: str, unit: str, what: str) -> None:
        value = _number(kpis.get(key))
        if not math.isnan(value) and value != 0:
            savings.append({"key": key, "value": value, "plain": plain_amount(value), "unit": unit,
                            "label": label, "what": what})

    price = _number(kpis.get("carbon_price"))
    saving("net_cost_saving", "saved", f"{currency}/yr",
           "net cost saving: transport and processing paid, fates and virgin purchases avoided"
           + (" (money only)" if price > 0 else ""))
    saving("co2e_avoided_t", "CO2e avoided", "t/yr", "emissions avoided against business as usual")
    saving("landfill_diverted_t", "kept from landfill", "t/yr", "waste that no longer goes to landfill")
    saving("incineration_diverted_t", "kept from incineration", "t/yr", "waste no longer incinerated")
    saving("virgin_avoided_t", "virgin material avoided", "t/yr", "virgin material no longer bought")
    saving("water_saved_m3", "water saved", "m³/yr", "fresh water no longer drawn")
    saving("fuel_avoided_mwh", "fuel avoided", "MWh/yr", "fuel no longer burnt for heat, thanks to heat exchanges")

    exchanges = view.exchanges
    top = exchanges.assign(_s=exchanges["saving"].astype(float).fillna(-math.inf)).sort_values(
        "_s", ascending=False, kind="stable").head(N_STORY_EXCHANGES) if len(exchanges) else exchanges
    quality = _quality(results) if not public else _quality(view)
    by_supply = quality.get("by_supply", {})
    total_saving = _number(kpis.get("net_cost_saving"))
    top_exchanges = []
    for _, row in top.iterrows():
        share = _number(row.get("saving")) / total_saving if total_saving and total_saving > 0 else math.nan
        top_exchanges.append({
            "sentence": exchange_sentence(row, names, materials, currency),
            "share": share,
            "quality": by_supply.get(str(row["supply_id"]), "") if "supply_id" in row else "",
            "from_id": str(row["supply_facility"]), "to_id": str(row["demand_facility"]),
        })

    facilities = view.facilities
    # Who gains at the indicative exchange prices (where every participant is at least as well off), and
    # who would lose without payments between the firms (the gain at cost, before any price is paid).
    column = "gain_at_indicative_prices" if "gain_at_indicative_prices" in facilities.columns else "gain"
    gainers: list[dict[str, Any]] = []
    unpaid: list[str] = []
    if column in facilities.columns:
        ranked = facilities.assign(_g=facilities[column].astype(float)).dropna(subset=["_g"])
        ranked = ranked[ranked["_g"] > 0.5].sort_values("_g", ascending=False, kind="stable")
        gainers = [{"name": short_name(str(r["name"]), 60), "gain": float(r["_g"]), "id": str(r["facility_id"]),
                    "plain": plain_amount(r["_g"], f"{currency}/yr")}
                   for _, r in ranked.head(N_STORY_GAINERS).iterrows()]
    if column != "gain" and "gain" in facilities.columns:
        losing = facilities[facilities["gain"].astype(float) < -0.5]
        unpaid = [f"{short_name(str(r['name']), 60)} ({plain_amount(-float(r['gain']), f'{currency}/yr')})"
                  for _, r in losing.iterrows()]
    participating = _number(kpis.get("n_facilities_participating"))
    n_participating = 0 if math.isnan(participating) else int(participating)
    losers = int((facilities[column].astype(float) < -0.5).sum()) if column in facilities.columns else 0

    uncertain: list[str] = []
    if quality:
        uncertain.append(
            f"{quality['n_modelled']} of the {quality['n_flows']} flows behind these figures "
            f"({quality['share_modelled']:.0%}, {quality['share_modelled_t']:.0%} of their tonnes) are modelled "
            f"from process models or literature, {quality['n_estimated']} estimated and {quality['n_measured']} "
            "measured: the savings are as good as these figures.")
    balances = getattr(getattr(view, "balances", None), "table", None)
    if isinstance(balances, pd.DataFrame) and "within_tolerance" in balances.columns and len(balances):
        bad = balances[balances["within_tolerance"].eq(False)]
        n_bad = bad["facility_id"].nunique()
        if n_bad:
            uncertain.append(f"{n_bad} of {balances['facility_id'].nunique()} facilities' balances do not close "
                             "within the tolerance (see Facility balances): some of their flows are missing or "
                             "off.")
    parameters = dict(getattr(view, "parameters", {}) or {})
    price_text = (f"a carbon price of {price:,.0f} {currency}/t CO2e" if price > 0
                  else "no carbon price (CO2e is reported, not priced)")
    circuity = parameters.get("circuity")
    uncertain.append(f"Assumed: {price_text}"
                     + (f"; road distances = straight line × {circuity}" if circuity not in (None, "") else "")
                     + "; prices at the indicative exchange prices of the optimum.")

    next_steps: list[str] = []
    if top_exchanges:
        first = top.iloc[0]
        a = names.get(str(first["supply_facility"]), str(first["supply_facility"]))
        b = names.get(str(first["demand_facility"]), str(first["demand_facility"]))
        what = _material(materials, first["material"])
        next_steps.append(f"Bring {a} and {b} together on {what}: the largest saving of the network."
                          if a != b else f"Start with {a}'s reuse of {what}: the largest saving of the network.")
    if quality and quality["n_modelled"]:
        ids = [i for i in quality["modelled_facilities"] if i in names][:3]
        if ids:
            next_steps.append("Measure the flows that are now modelled, first at "
                              + ", ".join(names[i] for i in ids) + " (they carry the most modelled tonnes).")
    supplies = view.supplies
    if "to_fate_t_per_yr" in supplies.columns and "fate_kind" in supplies.columns:
        left = supplies[supplies["fate_kind"].isin(WASTE_FATE_KINDS)]
        left = left.assign(_t=left["to_fate_t_per_yr"].astype(float)).dropna(subset=["_t"])
        left = left[left["_t"] > 0].sort_values("_t", ascending=False)
        if len(left):
            row = left.iloc[0]
            next_steps.append(
                f"Find a receiver for {_material(materials, row['material'])} from "
                f"{names.get(str(row['facility_id']), str(row['facility_id']))}: "
                f"{plain_amount(row['_t'], 't/yr')} still go to {row['fate_kind']} (see Unmatched streams).")
    if n_permits:
        next_steps.append(f"Ask the authority about {n_permits} permit change(s) that would open exchanges "
                          "(see Unmatched streams).")
    if not price > 0:
        next_steps.append("Test the network under a carbon price (symbiosis run --carbon-price 100) before "
                          "committing: exchanges that only pay with CO2e priced show up.")
    return {
        "savings": savings,
        "exchanges": top_exchanges,
        "n_exchanges": len(exchanges),
        "gainers": gainers,
        "n_participating": n_participating,
        "losers": losers,
        "unpaid": unpaid,
        "uncertain": uncertain,
        "next_steps": next_steps,
        "currency": currency,
    }
