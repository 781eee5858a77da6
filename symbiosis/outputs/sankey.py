"""Sankey diagrams (plotly) of one facility's balance and of the region's flows before and after symbiosis.

``facility_sankey`` shows a facility's mass (or energy) balance: inputs by category flow into the facility,
which sends them on to products, by-products, wastes, wastewater, emissions and stock change; when the
balance does not close, the gap is drawn as its own node ("Unaccounted loss" when inputs exceed what is
accounted for, "Unaccounted source" when outputs exceed inputs), so a reader sees the closure error.
It takes a Region, a Balances or a Results: the detail by category comes from their flows, the totals
otherwise from the balance table.

``network_sankey`` shows the region's exchangeable flows: before symbiosis (business as usual) supplies go to
their current fates and demands are bought virgin; after it, supplies go to their receivers and only the
remainder to the fates, and virgin purchases shrink. Flows are grouped by material (``by="material"``) or by
facility (``by="facility"``, names anonymised as on the map unless ``public=False``).
plotly is imported when a function is called.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import pandas as pd

from symbiosis.outputs.escape import plotly_text
from symbiosis.outputs.export import facility_names, public_results

if TYPE_CHECKING:
    import plotly.graph_objects as go

logger = logging.getLogger(__name__)

CATEGORY_LABELS = {
    "raw_material": "Raw material", "semi_finished": "Semi-finished", "auxiliary": "Auxiliary",
    "water": "Water", "energy": "Energy", "product": "Product", "by_product": "By-product", "waste": "Waste",
    "wastewater": "Wastewater", "emission": "Emission", "stock_change": "Stock change",
}
CATEGORY_COLOURS = {
    "raw_material": "#4c78a8", "semi_finished": "#72b7b2", "auxiliary": "#9ecae9", "water": "#1f77b4",
    "energy": "#f58518", "product": "#54a24b", "by_product": "#eeca3b", "waste": "#9d755d",
    "wastewater": "#17becf", "emission": "#bab0ac", "stock": "#b279a2", "gap": "#e45756", "facility": "#555555",
}
NETWORK_COLOURS = {"supply": "#9d755d", "fate": "#e45756", "virgin": "#4c78a8", "demand": "#54a24b"}

#: Closure below this share of the inputs is drawn as closed.
GAP_TOLERANCE = 1e-6


def _rgba(hex_colour: str, alpha: float = 0.45) -> str:
    h = hex_colour.lstrip("#")
    r, g, b = (int(h[i:i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


def _figure(nodes: list[tuple[str, str]], links: list[tuple[int, int, float, str]], title: str, unit: str) -> go.Figure:
    """A Sankey figure from (label, colour) nodes and (source, target, value, hover) links."""
    import plotly.graph_objects as go

    if not links:
        fig = go.Figure()
        fig.add_annotation(text="No flows to show", showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
        fig.update_layout(title=title, xaxis_visible=False, yaxis_visible=False, height=300)
        return fig

    def link_colour(source: int, target: int) -> str:
        """A link takes the colour of its end that is not the facility itself."""
        source_colour = nodes[source][1]
        return nodes[target][1] if source_colour == CATEGORY_COLOURS["facility"] else source_colour

    fig = go.Figure(go.Sankey(
        arrangement="snap",
        valueformat=",.0f",
        valuesuffix=f" {unit}",
        # plotly reads a few HTML tags (<b>, <br>, <a href>) in labels: data text is escaped so it shows as text.
        node={"label": [plotly_text(label) for label, _ in nodes],
              "color": [colour for _, colour in nodes],
              "pad": 19, "thickness": 16, "line": {"color": "#ffffff", "width": 0.5}},
        link={"source": [s for s, _, _, _ in links], "target": [t for _, t, _, _ in links],
              "value": [v for _, _, v, _ in links], "customdata": [h for _, _, _, h in links],
              "color": [_rgba(link_colour(s, t)) for s, t, _, _ in links],
              "hovertemplate": "%{customdata}<br>%{value}<extra></extra>"},
    ))
    # Tall enough that the labels of the busiest column do not overlap: 19 px of padding between nodes (a
    # label is about 15 px high) and room for the widths (26 px per node in all).
    sources = {s for s, _, _, _ in links}
    per_column = max(len(sources), len(nodes) - len(sources))
    fig.update_layout(title={"text": title, "font": {"size": 14}}, font={"size": 12},
                      height=int(min(max(460, 120 + 26 * per_column), 1600)),
                      margin={"l": 10, "r": 10, "t": 50, "b": 10})
    return fig


class _Nodes:
    """Node list with index lookup."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []
        self.index: dict[str, int] = {}

    def __call__(self, key: str, label: str, colour: str) -> int:
        if key not in self.index:
            self.index[key] = len(self.items)
            self.items.append((label, colour))
        return self.index[key]


def _facility_name(source: Any, facility_id: str) -> str:
    facilities = getattr(source, "facilities", None)
    if isinstance(facilities, pd.DataFrame) and "name" in facilities.columns:
        match = facilities.loc[facilities["facility_id"].astype(str) == str(facility_id), "name"]
        if len(match):
            return str(match.iloc[0])
    return str(facility_id)


def _flows_of(source: Any) -> pd.DataFrame | None:
    """The flow table of a Region, a Balances, or a Results (through its balances), if it has one."""
    for candidate in (source, getattr(source, "balances", None)):
        flows = getattr(candidate, "flows", None)
        if isinstance(flows, pd.DataFrame) and not flows.empty and {"facility_id", "direction"} <= set(flows):
            return flows
    return None


def facility_sankey(region_or_balances: Any, facility_id: str, *, quantity: str = "mass",
                    by_category: bool = True) -> go.Figure:
    """Sankey of one facility's ``quantity`` (``"mass"``, t/yr, or ``"energy"``, MWh/yr) balance.

    ``region_or_balances`` is a Region, a Balances or a Results. When it carries flows (a Region's
    ``flows``, a Balances' ``flows``) and ``by_category`` is true, inputs and outputs are split by category,
    each link's hover listing its materials; otherwise the figure shows the totals of the balance table.
    Closure = inputs − outputs − stock change; a non-zero closure gets its own node.
    """
    source = region_or_balances
    unit = "t/yr" if quantity == "mass" else "MWh/yr"
    name = _facility_name(source, facility_id)
    flows = _flows_of(source) if by_category else None
    nodes = _Nodes()
    links: list[tuple[int, int, float, str]] = []
    centre = nodes("facility", name, CATEGORY_COLOURS["facility"])

    if flows is not None:
        column = "amount_t_per_yr" if quantity == "mass" else "amount_mwh_per_yr"
        mine = flows[(flows["facility_id"].astype(str) == str(facility_id)) & flows[column].notna()]
        if "quantity" in mine.columns:
            mine = mine[mine["quantity"].fillna(quantity) == quantity]
        if mine.empty:
            raise ValueError(f"facility {facility_id!r} has no {quantity} flows")

        def materials(group: pd.DataFrame) -> str:
            parts = group.groupby("material")[column].sum().sort_values(ascending=False)
            shown = [f"{plotly_text(m)}: {v:,.0f} {unit}" for m, v in parts.head(6).items()]
            return "<br>".join(shown + ([f"… {len(parts) - 6} more"] if len(parts) > 6 else []))

        inputs = mine[mine["direction"] == "in"]
        outputs = mine[mine["direction"] == "out"]
        stock = float(mine.loc[mine["direction"] == "stock", column].sum())
        for category, group in inputs.groupby("category", sort=False):
            label = CATEGORY_LABELS.get(str(category), str(category))
            node = nodes(f"in:{category}", label, CATEGORY_COLOURS.get(str(category), "#4c78a8"))
            links.append((node, centre, float(group[column].sum()),
                          f"{plotly_text(label)} in<br>{materials(group)}"))
        for category, group in outputs.groupby("category", sort=False):
            label = CATEGORY_LABELS.get(str(category), str(category))
            node = nodes(f"out:{category}", label, CATEGORY_COLOURS.get(str(category), "#9d755d"))
            links.append((centre, node, float(group[column].sum()),
                          f"{plotly_text(label)} out<br>{materials(group)}"))
        total_in = float(inputs[column].sum())
        total_out = float(outputs[column].sum())
    else:
        table = getattr(source, "table", None)
        if not isinstance(table, pd.DataFrame):
            table = getattr(getattr(source, "balances", None), "table", None)
        if not isinstance(table, pd.DataFrame):
            raise TypeError("facility_sankey needs a Region, a Balances or a Results object")
        rows = table[(table["facility_id"].astype(str) == str(facility_id)) & (table["quantity"] == quantity)]
        if rows.empty:
            raise ValueError(f"facility {facility_id!r} has no {quantity} balance")
        row = rows.iloc[0]
        total_in, total_out, stock = float(row["inputs"]), float(row["outputs"]), float(row["stock_change"])
        if total_in > 0:
            links.append((nodes("in", "Inputs", CATEGORY_COLOURS["raw_material"]), centre, total_in, "Inputs"))
        if total_out > 0:
            links.append((centre, nodes("out", "Outputs", CATEGORY_COLOURS["product"]), total_out, "Outputs"))

    if stock > 0:
        links.append((centre, nodes("stock+", "Stock increase", CATEGORY_COLOURS["stock"]), stock, "Stock change"))
    elif stock < 0:
        links.append((nodes("stock-", "Stock drawdown", CATEGORY_COLOURS["stock"]), centre, -stock, "Stock change"))
    closure = total_in - total_out - stock
    scale = max(total_in, total_out, 1e-12)
    if abs(closure) > GAP_TOLERANCE * scale:
        share = f"{closure / total_in:+.1%} of inputs" if total_in else "no inputs recorded"
        if closure > 0:
            links.append((centre, nodes("gap", "Unaccounted loss", CATEGORY_COLOURS["gap"]), closure,
                          f"Unaccounted loss (closure error {share})"))
        else:
            links.append((nodes("gap", "Unaccounted source", CATEGORY_COLOURS["gap"]), centre, -closure,
                          f"Outputs exceed inputs (closure error {share})"))
    closure_text = f"closure {closure:,.0f} {unit}" + (f" ({closure / total_in:+.1%})" if total_in else "")
    title = f"{plotly_text(name)}<br><sup>{quantity} balance ({unit}), {closure_text}</sup>"
    return _figure(nodes.items, links, title, unit)


#: Material classes drawn apart from the other materials (``network_sankey(..., water=...)``).
WATER_CLASSES = ("water", "seawater", "wastewater")


def _water_rows(frame: pd.DataFrame, classes: pd.Series | None) -> pd.Series:
    """Per row: whether it is water (its ``material_class``, else the class looked up by ``classes``)."""
    if "material_class" in frame.columns:
        return frame["material_class"].astype(str).isin(WATER_CLASSES)
    if classes is not None and "supply_id" in frame.columns:
        return frame["supply_id"].map(classes).astype(str).isin(WATER_CLASSES)
    return pd.Series(False, index=frame.index)


def _pick(view: Any, quantity: str, water: bool | None) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Supplies, demands and exchanges of one ``quantity``; with ``water`` True only water, False none of it."""
    frames = [view.supplies, view.demands, view.exchanges]
    if "quantity" in frames[0].columns or "quantity" in frames[2].columns:
        frames = [f[f["quantity"].fillna("mass") == quantity] if "quantity" in f.columns else f for f in frames]
    if water is not None and quantity == "mass":
        classes = (view.supplies.drop_duplicates("supply_id").set_index("supply_id")["material_class"]
                   if "material_class" in view.supplies.columns else None)
        frames = [f[_water_rows(f, classes) == water] for f in frames]
    return frames[0], frames[1], frames[2]


def energy_sankey(results: Any, after: bool = True, *, by: str = "material", public: bool = True) -> go.Figure:
    """``network_sankey`` of the heat exchanges (MWh/yr), apart from the material flows (t/yr)."""
    return network_sankey(results, after, by=by, public=public, quantity="energy")


def network_sankey(results: Any, after: bool = True, *, by: str = "material", public: bool = True,
                   quantity: str = "mass", water: bool | None = None) -> go.Figure:
    """Sankey of the region's exchangeable flows in t/yr, after symbiosis (default) or before it (BAU).

    Before: supply → current fate, virgin → demand. After: supply → receiver (exchanges), the remainder of
    each supply → its fate, virgin still bought → demand. ``by`` groups nodes by ``"material"`` or
    ``"facility"``. ``quantity="energy"`` draws the heat flows in MWh/yr instead (never on one figure with
    tonnes). ``water``: None draws every material, False all but water (classes ``WATER_CLASSES``), True only
    water. Water is drawn apart rather than on a log scale: a Sankey is read by widths that add up at each
    node, which a log scale breaks, and one cooling-water stream of millions of t/yr would otherwise leave
    every material a hairline.
    """
    if by not in ("material", "facility"):
        raise ValueError(f"by must be 'material' or 'facility', not {by!r}")
    if quantity not in ("mass", "energy"):
        raise ValueError(f"quantity must be 'mass' or 'energy', not {quantity!r}")
    view = public_results(results) if public else results
    names = facility_names(view.facilities)
    supplies, demands, exchanges = _pick(view, quantity, water)
    unit = "t/yr" if quantity == "mass" else "MWh/yr"
    suffix = "t" if quantity == "mass" else "mwh"
    nodes = _Nodes()
    links: list[tuple[int, int, float, str]] = []

    def key(facility: Any, material: Any) -> str:
        return str(material) if by == "material" else names.get(str(facility), str(facility))

    def add(frame: pd.DataFrame, left: tuple[str, str, str], right: tuple[str, str, str], value: str,
            kinds: tuple[str, str]) -> None:
        """Group ``frame`` by its left and right keys and add one link per pair."""
        if frame.empty or value not in frame.columns:
            return
        grouped = frame.assign(_l=frame.apply(lambda r: key(r[left[0]], r[left[1]]), axis=1),
                               _r=frame.apply(lambda r: key(r[right[0]], r[right[1]]), axis=1)
                               if right[0] else frame[right[1]].astype(str))
        sums = grouped.groupby(["_l", "_r"], sort=True)[value].sum()
        for (lkey, rkey), amount in sums.items():
            if amount <= 0:
                continue
            s = nodes(f"{kinds[0]}:{lkey}", f"{left[2]}: {lkey}", NETWORK_COLOURS[kinds[0]])
            t = nodes(f"{kinds[1]}:{rkey}", f"{right[2]}: {rkey}", NETWORK_COLOURS[kinds[1]])
            links.append((s, t, float(amount), plotly_text(f"{lkey} → {rkey}")))

    fate_col = "fate" if "fate" in supplies.columns else "fate_kind"
    if after:
        add(exchanges, ("supply_facility", "material", "Supply"), ("demand_facility", "primary_material", "Demand"),
            f"amount_{suffix}_per_yr", ("supply", "demand"))
        add(supplies, ("facility_id", "material", "Supply"), ("", fate_col, "Fate"), f"to_fate_{suffix}_per_yr",
            ("supply", "fate"))
        add(demands, ("facility_id", "material", "Virgin"), ("facility_id", "material", "Demand"),
            f"virgin_{suffix}_per_yr", ("virgin", "demand"))
    else:
        add(supplies, ("facility_id", "material", "Supply"), ("", fate_col, "Fate"), f"amount_{suffix}_per_yr",
            ("supply", "fate"))
        add(demands, ("facility_id", "material", "Virgin"), ("facility_id", "material", "Demand"),
            f"amount_{suffix}_per_yr", ("virgin", "demand"))
    title = ("After symbiosis: supply → receivers, rest → fates" if after
             else "Business as usual: supply → fates, virgin → demands")
    what = "heat, " if quantity == "energy" else "water only, " if water else "materials without water, " \
        if water is False else ""
    return _figure(nodes.items, links, f"{title} ({what}{unit})", unit)


SUBSTANCE_KIND_COLOURS = {
    "supply": "#9d755d", "virgin": "#4c78a8", "processor": "#eeca3b", "facility": "#54a24b", "fate": "#bab0ac",
    "product": "#72b7b2", "emission": "#e45756", "accumulated": "#b279a2",
}


def substance_sankey(results: Any, substance: str | None = None, *, public: bool = True) -> go.Figure | None:
    """Sankey of one traced substance (symbiosis.network.substances) in kg/yr: sources (supplies, virgin
    purchases) → processors → users, fates, products, emissions, what stays in a plant. ``substance``
    defaults to the one with the most mass; None when nothing was traced."""
    view = public_results(results) if public else results
    table = getattr(view, "substances", None)
    if table is None or len(table) == 0:
        return None
    if substance is None:
        substance = str(table.groupby("substance")["t_per_yr"].sum().idxmax())
    part = table[table["substance"] == substance]
    names = facility_names(view.facilities)
    nodes = _Nodes()
    links: list[tuple[int, int, float, str]] = []

    def node(kind: str, facility: str, flow: str) -> int:
        if kind in ("supply", "processor", "facility"):
            label = names.get(facility, facility)
            key = f"facility:{facility}" if kind != "supply" else f"facility:{facility}"
        elif kind == "virgin":
            label, key = "Virgin material", "virgin"
        elif kind == "accumulated":
            label, key = f"Kept in {names.get(facility, facility)}", f"kept:{facility}"
        else:
            label, key = f"{kind.capitalize()}: {flow}" if kind != "fate" else f"Fate: {flow}", f"{kind}:{flow}"
        return nodes(key, label, SUBSTANCE_KIND_COLOURS.get(kind, "#555555"))

    grouped = part.groupby(["from_kind", "from_facility", "to_kind", "to"], sort=True)["t_per_yr"].sum()
    for (from_kind, from_facility, to_kind, to), amount in grouped.items():
        if amount <= 0:
            continue
        source = node(str(from_kind), str(from_facility), "")
        target = node(str(to_kind), str(to), str(to))
        if source == target:
            continue
        kg = float(amount) * 1000.0
        links.append((source, target, kg, plotly_text(f"{substance}: {nodes.items[source][0]} → "
                                                      f"{nodes.items[target][0]}")))
    return _figure(nodes.items, links, f"Where the {substance} goes (traced by mass)", "kg/yr")


#: Colour of a facility node in the symbiosis Sankey (by NACE division, as on the map).
def _division_colour(sectors: pd.Series) -> dict[str, str]:
    from symbiosis.outputs.export import nace_division
    from symbiosis.outputs.mapping import division_colours

    colours = division_colours(sectors)
    return {str(s): colours[nace_division(s)] for s in sectors}


def link_widths(values: Any, scale: str = "log") -> list[float]:
    """Drawn widths of the links: ``"linear"`` the values themselves; ``"log"`` ``1 + log10(v / v_min)``, so a
    stream a thousand times smaller than the largest is still a quarter of its width (the true figures go to
    the hover). Missing or non-positive values are drawn at the smallest width."""
    import numpy as np

    array = np.asarray(values, dtype=float)
    if scale == "linear" or not len(array):
        return [float(v) for v in np.nan_to_num(array, nan=0.0)]
    if scale != "log":
        raise ValueError(f"scale must be 'log' or 'linear', not {scale!r}")
    positive = array[np.isfinite(array) & (array > 0)]
    smallest = float(positive.min()) if len(positive) else 1.0
    safe = np.where(np.isfinite(array) & (array > 0), array, smallest)
    return [float(w) for w in 1.0 + np.log10(safe / smallest)]


#: Facilities drawn as their own node in ``symbiosis_sankey``; the others share one node.
MAX_FACILITY_NODES = 40


def symbiosis_sankey(results: Any, *, quantity: str = "all", scale: str = "auto", public: bool = True,
                     max_nodes: int = MAX_FACILITY_NODES) -> go.Figure:
    """The symbiosis itself: one node per facility, one link per pair of facilities and material exchanged, so
    the loops of the network show (A sends steam to B, B sends fuel gas and water back to A).

    ``quantity``: ``"mass"`` draws the material exchanges (t/yr, water included), ``"energy"`` the heat
    exchanges (MWh/yr), ``"all"`` (default) both on the same nodes with relative widths (log scale, each
    quantity against its own smallest stream: t and MWh are never added up). ``scale``: ``"log"`` draws
    widths by :func:`link_widths`, so that one dominant stream (millions of t/yr of cooling water) does not
    reduce every other exchange to a hairline; ``"linear"`` proportional to the amounts; ``"auto"`` log when
    the largest stream is over 100 times the smallest. The hover gives the true figures either way. Links take
    the colour of their material group, as on the map. An exchange inside one facility is a loop on its node.
    Above ``max_nodes`` facilities, those that exchange most money (saving) keep their node and the others
    share one, "N other facilities" (exchanges among them are left out, the subtitle says how many).
    """
    import numpy as np
    import plotly.graph_objects as go

    from symbiosis.outputs.export import exchange_material_groups
    from symbiosis.outputs.mapping import HEAT_GROUP, material_colour, short_name

    if quantity not in ("mass", "energy", "all"):
        raise ValueError(f"quantity must be 'mass', 'energy' or 'all', not {quantity!r}")
    if scale not in ("auto", "log", "linear"):
        raise ValueError(f"scale must be 'auto', 'log' or 'linear', not {scale!r}")
    view = public_results(results) if public else results
    names = facility_names(view.facilities)
    exchanges = view.exchanges.reset_index(drop=True)
    heat = (exchanges["quantity"].fillna("mass") == "energy") if "quantity" in exchanges.columns \
        else pd.Series(False, index=exchanges.index)
    groups = pd.Series(np.where(heat, HEAT_GROUP, exchange_material_groups(view).to_numpy()), index=exchanges.index) \
        if len(exchanges) else pd.Series(dtype=str)
    keep = heat if quantity == "energy" else ~heat if quantity == "mass" else pd.Series(True, index=exchanges.index)
    unit = {"mass": "t/yr", "energy": "MWh/yr", "all": "t/yr or MWh/yr"}[quantity]
    what = {"mass": "Materials and water", "energy": "Heat", "all": "Every exchange"}[quantity]
    title = f"{what} between facilities ({unit})"
    exchanges, heat, groups = exchanges[keep], heat[keep], groups[keep]
    if exchanges.empty:
        return _figure([], [], title, unit)
    amount = exchanges["amount_t_per_yr"].astype(float)
    if "amount_mwh_per_yr" in exchanges.columns:
        amount = amount.where(~heat, exchanges["amount_mwh_per_yr"].astype(float))
    frame = pd.DataFrame({"s": exchanges["supply_facility"].astype(str), "t": exchanges["demand_facility"].astype(str),
                          "material": exchanges["material"].astype(str), "group": groups, "heat": heat,
                          "amount": amount})
    others_note = ""
    ids_all = pd.Index(pd.concat([frame["s"], frame["t"]]).unique())
    if len(ids_all) > max_nodes:
        weight = exchanges["saving"].astype(float).abs().fillna(0.0).to_numpy() if "saving" in exchanges.columns \
            else np.ones(len(frame))
        score = (pd.Series(weight, index=frame.index).groupby(frame["s"]).sum()
                 .add(pd.Series(weight, index=frame.index).groupby(frame["t"]).sum(), fill_value=0.0))
        keep_ids = set(score.sort_values(ascending=False, kind="stable").index[: max_nodes - 1])
        others = f"{len(ids_all) - len(keep_ids)} other facilities"
        frame = frame.assign(s=frame["s"].where(frame["s"].isin(keep_ids), others),
                             t=frame["t"].where(frame["t"].isin(keep_ids), others))
        inner = (frame["s"] == others) & (frame["t"] == others)
        others_note = f"; {others} share one node ({int(inner.sum())} exchanges among them not drawn)"
        frame = frame[~inner]
        names = {**names, others: others}
    grouped = frame.groupby(["s", "t", "material", "group", "heat"], sort=False).agg(
        amount=("amount", lambda a: a.sum(min_count=1))).reset_index()
    ratio = {}
    for is_heat, part in grouped.groupby("heat"):
        positive = part["amount"][part["amount"] > 0]
        ratio[is_heat] = float(positive.max() / positive.min()) if len(positive) else 1.0
    use_log = scale == "log" or quantity == "all" or (scale == "auto" and max(ratio.values()) > 100)
    widths = pd.Series(0.0, index=grouped.index)
    for _is_heat, part in grouped.groupby("heat"):
        widths[part.index] = link_widths(part["amount"].to_numpy(), "log" if use_log else "linear")
    if not use_log:  # linear: a suppressed (public) amount is drawn thin rather than not at all
        floor = 0.01 * float(widths.max()) if len(widths) else 1.0
        widths = widths.where(widths > 0, floor)

    ids = list(dict.fromkeys([*grouped["s"], *grouped["t"]]))
    index = {fid: i for i, fid in enumerate(ids)}
    facilities = view.facilities.drop_duplicates("facility_id")
    sector = pd.Series(facilities["sector"].to_numpy(), index=facilities["facility_id"].astype(str))
    colours = _division_colour(sector)
    node_colour = [colours.get(str(sector.get(fid, "")), "#555555") for fid in ids]
    hover = []
    for row in grouped.itertuples(index=False):
        row_unit = "MWh/yr" if row.heat else "t/yr"
        figure = "not disclosed" if row.amount != row.amount else f"{row.amount:,.0f} {row_unit}"
        hover.append(plotly_text(f"{names.get(row.s, row.s)} → {names.get(row.t, row.t)}")
                     + f"<br>{plotly_text(row.material)} ({plotly_text(row.group)}): {figure}")

    def totals(side: str, fid: str) -> str:
        part = grouped[grouped[side] == fid]
        texts = [f"{part.loc[part['heat'] == h, 'amount'].sum():,.0f} {u}" for h, u in ((False, "t/yr"),
                                                                                        (True, "MWh/yr"))
                 if (part["heat"] == h).any()]
        return " + ".join(texts) or "nothing"

    node_hover = [f"{plotly_text(names.get(fid, fid))}<br>sends {totals('s', fid)}<br>receives {totals('t', fid)}"
                  for fid in ids]
    fig = go.Figure(go.Sankey(
        arrangement="snap",
        node={"label": [plotly_text(short_name(names.get(fid, fid))) for fid in ids], "color": node_colour,
              "customdata": node_hover, "hovertemplate": "%{customdata}<extra></extra>",
              "pad": 24, "thickness": 18, "line": {"color": "#ffffff", "width": 0.5}},
        link={"source": [index[s] for s in grouped["s"]], "target": [index[t] for t in grouped["t"]],
              "value": widths.tolist(), "customdata": hover,
              "color": [_rgba(material_colour(str(g)), 0.55) for g in grouped["group"]],
              "hovertemplate": "%{customdata}<extra></extra>"},
    ))
    note = ("widths on a log scale (each stream against the smallest of its unit) so that small streams show; "
            "hover for the true figures" if use_log else "widths proportional to the amounts")
    sinks = len(set(grouped["t"]) - set(grouped["s"]))
    sources = len(set(grouped["s"]) - set(grouped["t"]))
    fig.update_layout(title={"text": f"{title}<br><sup>one node per facility{others_note}; {note}</sup>",
                             "font": {"size": 14}},
                      font={"size": 12}, height=int(min(max(360, 110 + 52 * max(sinks, sources, 1)), 1400)),
                      margin={"l": 10, "r": 10, "t": 64, "b": 10})
    return fig
