"""Partners for one stream: every receiver that could take it, ranked, with why the rest do not.

For a supply (a flow already in the region, or a stream described on the command line and added to a copy
of the region), every demand of a material it can replace is assessed, at any distance: the road distance
and the limit that applies, the quality fit per bounded parameter (passes / blend needed / fails / not
measured, with figures), the net value per tonne for the supplier (its avoided fate cost) and for the
receiver (virgin purchase avoided less transport and processing), the CO2e avoided per tonne, and whether
the regional optimum uses the pair. For a receiver the optimum does not use, it says what would make it
viable: the price gap, the distance at which it would pay, and which quality limit stands in the way.
Only the demands of compatible materials are visited (grouped by material), never every demand.

A heat supply (steam, hot water, district heat, waste heat in MWh/yr) is ranked the same way against the heat
demands its carrier serves, in MWh: the pipe's length within the carrier's reach, the heat that arrives after
the carrier's losses per km, the temperature fit (hot enough; a heat pump at the receiver with its COP and
electricity; or too cold), and the value and CO2e avoided per MWh shipped, by the rules of
symbiosis.energy.heat, so that each pair the candidates keep has the ratio and costs of its arc.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from symbiosis.candidates import candidates as build_candidates
from symbiosis.candidates import geodesic_km, resolve_parameters
from symbiosis.errors import InputError, Problem
from symbiosis.region import Region


@dataclass
class PartnerSearch:
    """The ranked receivers (``partners``) of one stream, its shadow value and the run's parameters."""

    supply: pd.Series
    partners: pd.DataFrame
    shadow_value_per_t: float
    exchanged_t_per_yr: float
    parameters: dict[str, object]
    #: The stream's unit: ``t`` for a material, ``MWh`` for heat. The shadow value is per this unit and the
    #: amount exchanged in it per year; the partners table's columns carry it in their names.
    unit: str = "t"


def suggest(value: str, choices: Iterable[object], kind: str) -> str:
    """'did you mean ...' with the nearest ids (difflib), and how to list them all."""
    nearest = difflib.get_close_matches(str(value), [str(c) for c in choices], n=3, cutoff=0.5)
    hint = f"did you mean {' or '.join(repr(n) for n in nearest)}? " if nearest else ""
    return hint + f"list them with: symbiosis list REGION {kind}"


def add_stream(region: Region, *, facility_id: str, material: str, amount: float, unit: str = "t",
               lat: float | None = None, lon: float | None = None, fate: str = "landfill",
               price_per_t: float | None = None, quality: dict[str, tuple[float, str]] | None = None,
               flow_id: str = "new_stream", sector: str = "38.21", name: str | None = None) -> tuple[Region, str]:
    """A copy of the region with a stream that is not yet in it (and its facility, if new).

    An amount in an energy unit (MWh, GJ, ...) of a heat carrier makes a heat supply: ``fate`` is then not
    used and ``price_per_t`` is what getting rid of the heat costs per MWh; give its temperature in
    ``quality`` (``{"temperature": (35, "degC")}``)."""
    from symbiosis.units import UnitProblem, convert_amount

    changed = region.copy()
    problems: list[Problem] = []
    if material not in changed.reference.materials.index:
        problems.append(Problem("--material", "unknown material", found=material,
                                expected="a material_id from the reference materials",
                                fix=suggest(material, changed.reference.materials.index, "materials")))
    if fate and fate not in changed.reference.fates.index:
        problems.append(Problem("--fate", "unknown fate", found=fate,
                                expected=", ".join(changed.reference.fates.index)))
    known = set(changed.facilities["facility_id"])
    if facility_id not in known:
        if lat is None or lon is None:
            problems.append(Problem("--facility", "a new facility needs --lat and --lon", found=facility_id))
        else:
            changed.facilities = pd.concat([changed.facilities, pd.DataFrame([{
                "facility_id": facility_id, "name": name or facility_id, "sector": sector, "lat": lat, "lon": lon,
                "confidential": False, "process_model": "", "activity": math.nan, "activity_unit": ""}])],
                ignore_index=True)
    try:
        converted = convert_amount(amount, unit, density_t_per_m3=changed.reference.density(material))
    except UnitProblem as exc:
        problems.append(Problem("--unit", str(exc), found=unit))
    if problems:
        raise InputError(problems)
    if flow_id in set(changed.flows["flow_id"]):
        raise InputError([Problem("--flow-id", "the flow id is already used", found=flow_id)])
    row: dict[str, Any] = {column: "" for column in changed.flows.columns}
    # An amount in an energy unit (MWh, GJ) of a heat carrier is heat given off: a heat supply, priced per MWh.
    heat = converted.quantity == "energy"
    price = math.nan if price_per_t is None else price_per_t
    row.update(flow_id=flow_id, facility_id=facility_id, direction="out", category="by_product", material=material,
               quantity=converted.quantity, amount_t_per_yr=math.nan if heat else converted.value,
               amount_mwh_per_yr=converted.value if heat else math.nan, fate="" if heat else fate,
               price_per_t=math.nan if heat else price, price_per_mwh=price if heat else math.nan,
               exchangeable=True, max_secondary_share=math.nan, max_distance_km=math.nan, uncertainty_pct=math.nan,
               source="partner search", data_quality="estimated", note="stream added for a partner search",
               origin="command line")
    changed.flows = pd.concat([changed.flows, pd.DataFrame([row])], ignore_index=True)
    if quality:
        extra = pd.DataFrame([{"flow_id": flow_id, "parameter": p, "value": v, "unit": u, "bound": "",
                               "virgin_value": math.nan} for p, (v, u) in quality.items()])
        changed.quality = pd.concat([changed.quality, extra], ignore_index=True)
    return changed, flow_id


class StreamFile(BaseModel):
    """A stream not yet in the region, described in a small YAML file for ``symbiosis partners``."""

    model_config = ConfigDict(extra="forbid")

    facility: str
    material: str
    amount: float = Field(gt=0)
    unit: str = "t"
    lat: float | None = Field(None, ge=-90, le=90)
    lon: float | None = Field(None, ge=-180, le=180)
    name: str | None = None
    fate: str = "landfill"
    price_per_t: float | None = None
    quality: dict[str, str] = Field(default_factory=dict, description="parameter: 'VALUE UNIT', e.g. '0.3 %'")


def read_stream_file(path: str) -> StreamFile:
    """Read a stream file (YAML), with located errors."""
    from pydantic import ValidationError

    from symbiosis.errors import Problems
    from symbiosis.process_models import pydantic_problems, read_yaml

    problems = Problems()
    data = read_yaml(Path(path), problems)
    problems.raise_if_any()
    try:
        return StreamFile.model_validate(data)
    except ValidationError as exc:
        pydantic_problems(str(path), exc, problems)
        problems.raise_if_any()
        raise


def parse_quality(items: dict[str, str] | list[str]) -> dict[str, tuple[float, str]]:
    """``{'chloride': '0.3 %'}`` or ``['chloride=0.3%']`` to ``{'chloride': (0.3, '%')}``."""
    import re

    pairs = items.items() if isinstance(items, dict) else (item.split("=", 1) if "=" in item else (item, "")
                                                           for item in items)
    parsed: dict[str, tuple[float, str]] = {}
    for parameter, text in pairs:
        match = re.match(r"^\s*([-+0-9.eE]+)\s*(.*)$", str(text))
        if not parameter or not match:
            raise InputError([Problem("--quality", "expected PARAMETER=VALUE[UNIT]", found=f"{parameter}={text}")])
        parsed[parameter.strip()] = (float(match.group(1)), match.group(2).strip())
    return parsed


def _quality_fit(c: float | None, bound: str, limit: float, virgin: float) -> tuple[str, str, float]:
    """(status, detail, max secondary share of the physical blend)."""
    if c is None or c != c:
        return "not measured", "no measurement on the stream", 0.0
    ok = c <= limit if bound == "max" else c >= limit
    if ok:
        return "passes", f"{c:g} vs {bound} {limit:g}", 1.0
    virgin_ok = virgin < limit if bound == "max" else virgin > limit
    if not virgin_ok:
        return "fails", f"{c:g} vs {bound} {limit:g}; the virgin material ({virgin:g}) cannot dilute it", 0.0
    share = (limit - virgin) / (c - virgin)
    return "blend needed", f"{c:g} vs {bound} {limit:g}: at most {share:.0%} of the blend", float(share)


def find_partners(region: Region, flow_id: str, *, results: Any = None, cands: Any = None,
                  **overrides: Any) -> PartnerSearch:
    """Rank the receivers of one supply flow (see the module docstring).

    ``results`` (a :func:`symbiosis.pipeline.optimise` result) and ``cands`` (:func:`symbiosis.candidates.
    candidates` of ``region``) may be given to reuse them across searches (the web app keeps them per data
    version). ``cands`` must be of ``region``; ``results`` may be of an earlier state of the region: only
    whether and how much the optimum ships, the stream's shadow value and the amount exchanged are then
    taken from it, every other figure from ``region`` and ``cands``."""
    from symbiosis.pipeline import optimise

    parameters = resolve_parameters(region, **overrides)
    flows = region.flows.set_index("flow_id")
    if flow_id not in flows.index:
        outgoing = flows.index[(flows["direction"] == "out")
                               & ((flows["quantity"] == "mass") | flows["material"].isin(_carriers(region)))]
        raise InputError([Problem("--flow", "unknown flow", found=flow_id, expected="a flow_id of the region",
                                  fix=suggest(flow_id, outgoing, "supplies"))])
    supply = flows.loc[flow_id]
    if _is_heat_supply(region, supply):
        return _heat_partners(region, flow_id, supply, parameters, results=results, cands=cands, **overrides)
    if supply["direction"] != "out" or supply["quantity"] != "mass":
        raise InputError([Problem("--flow", "not an outgoing mass flow or heat supply", found=flow_id,
                                  expected="a by-product, waste or wastewater stream, or heat given off as a "
                                           "by-product or waste (a carrier of energy_carriers.csv, in MWh)")])
    if results is None:
        results = optimise(region, **overrides)
    if cands is None:
        cands = build_candidates(region, **overrides)
    supplies = results.supplies.set_index("supply_id")
    in_model = flow_id in supplies.index
    own = cands.supplies.set_index("supply_id")  # the stream's own figures, of ``region`` whatever ``results``
    arcs = cands.arcs[cands.arcs["supply_id"] == flow_id].set_index("demand_id")
    used = results.exchanges[results.exchanges["supply_id"] == flow_id].set_index("demand_id")["amount_t_per_yr"]

    subs = region.reference.substitutions
    subs = subs[subs["secondary_material"] == supply["material"]]
    demands = cands.demands
    facilities = region.facilities.set_index("facility_id")
    here = facilities.loc[supply["facility_id"]]
    circuity = float(parameters["circuity"])  # type: ignore[arg-type]
    tkm_cost = float(parameters["transport_cost_per_tkm"])  # type: ignore[arg-type]
    tkm_co2 = float(parameters["transport_co2_per_tkm"])  # type: ignore[arg-type]
    carbon = float(parameters["carbon_price"])  # type: ignore[arg-type]
    if flow_id not in own.index and in_model:  # a supply the pipeline adds (a processor's output)
        own = supplies
    in_candidates = flow_id in own.index
    fate_cost = (float(own.at[flow_id, "fate_cost_per_t"]) if in_candidates else 0.0)
    fate_co2 = (float(own.at[flow_id, "fate_co2e_per_t"]) if in_candidates else 0.0)
    quality = region.quality
    measured = quality[(quality["flow_id"] == flow_id) & (quality["bound"] == "")].set_index("parameter")["value"]
    # Lookups of the loop below as dicts, built once (a search visits a thousand receivers at 5,000 facilities).
    measured_of = measured.to_dict()
    bounds = cands.demand_quality
    bounds = bounds[bounds["d"].isin(demands.index[demands["material"].isin(subs["primary_material"])])]
    bounds_of: dict[Any, list[tuple[Any, ...]]] = {}
    for d, *bound in zip(bounds["d"], bounds["parameter"], bounds["bound"], bounds["limit"], bounds["virgin_value"],
                         strict=True):
        bounds_of.setdefault(d, []).append(tuple(bound))
    arc_limit = dict(zip(arcs.index, arcs["max_distance_km"], strict=True))
    used_of = used.to_dict()
    overrides_of = ({(s, d): (km, cost) for s, d, km, cost in zip(
        region.arcs["supply_facility"], region.arcs["demand_facility"], region.arcs["distance_km"],
        region.arcs["cost_per_t"], strict=True)} if len(region.arcs) else {})
    # The supply row as a dict and the receivers' names by facility: looked up once per receiver below.
    supply_of = supply.to_dict()
    names = dict(zip(region.facilities["facility_id"], region.facilities["name"], strict=True))
    limits: dict[tuple[Any, Any], float] = {}
    rows = []
    for sub, d_pos, demand, distance in _receivers(subs, demands, here, supply["facility_id"], circuity):
        transport = distance * tkm_cost
        o = overrides_of.get((supply["facility_id"], demand["facility_id"]))
        if o is not None:
            distance = float(o[0]) if o[0] == o[0] else distance
            transport = float(o[1]) if o[1] == o[1] else distance * tkm_cost
        did = demand["demand_id"]
        if did in arc_limit:
            limit = float(arc_limit[did])
        else:  # the same for every receiver of one substitution with the same limit of its own (or none)
            own_limit = demand.get("max_distance_km", math.nan)
            key = (sub.Index, None if own_limit != own_limit else own_limit)
            if key not in limits:
                limits[key] = _limit(region, supply_of, demand, sub, parameters)
            limit = limits[key]
        fits = []
        worst = "passes"
        for parameter, bound, bound_limit, virgin_value in bounds_of.get(d_pos, ()):
            status, detail, _share = _quality_fit(measured_of.get(parameter), bound, bound_limit, virgin_value)
            fits.append(f"{parameter}: {status} ({detail})")
            worst = max(worst, status, key=["passes", "blend needed", "not measured", "fails"].index)
        receiver_value = sub.ratio * float(demand["virgin_price_per_t"]) - transport - sub.processing_cost_per_t
        co2_avoided = (fate_co2 + sub.ratio * float(demand["virgin_co2e_per_t"]) - distance * tkm_co2
                       - sub.processing_co2e_per_t)
        net = fate_cost + receiver_value + carbon * co2_avoided
        shipped = float(used_of.get(did, 0.0))
        viable: list[str] = []
        if shipped <= 0:
            if net < 0:
                viable.append(f"price: needs {-net:,.2f} per t more value "
                              "(e.g. a higher fate cost or virgin price)")
            economic_km = ((fate_cost + sub.ratio * float(demand["virgin_price_per_t"]) - sub.processing_cost_per_t
                            + carbon * (fate_co2 + sub.ratio * float(demand["virgin_co2e_per_t"])
                                        - sub.processing_co2e_per_t)) / (tkm_cost + carbon * tkm_co2)
                           if tkm_cost + carbon * tkm_co2 > 0 else math.inf)
            if distance > limit:
                viable.append(f"distance: {distance:,.1f} km is beyond the {limit:,.0f} km limit")
            if net < 0 and economic_km > 0:
                viable.append(f"distance: pays within {economic_km:,.1f} km")
            if worst in ("fails", "not measured"):
                viable.append("quality: " + "; ".join(f for f in fits if "passes" not in f))
            if not viable:
                viable.append("economic on its own, but the optimum places the stream or fills the receiver "
                              "more profitably elsewhere")
        rows.append({
            "demand_id": did, "facility_id": demand["facility_id"],
            "name": names[demand["facility_id"]], "material": sub.primary_material,
            "ratio": sub.ratio, "distance_km": distance, "max_distance_km": limit,
            "within_distance": distance <= limit + 1e-9, "quality_fit": worst,
            "quality_detail": "; ".join(fits) or "no limits", "supplier_value_per_t": fate_cost,
            "receiver_value_per_t": receiver_value, "net_value_per_t": net,
            "co2e_avoided_per_t": co2_avoided, "used_by_optimum": shipped > 0, "optimum_t_per_yr": shipped,
            "demand_t_per_yr": float(demand["amount_t_per_yr"]), "what_would_make_it_viable": "; ".join(viable),
        })
    partners = pd.DataFrame(rows)
    if len(partners):
        partners = partners.sort_values(["used_by_optimum", "within_distance", "net_value_per_t"],
                                        ascending=[False, False, False]).reset_index(drop=True)
        partners.insert(0, "rank", np.arange(1, len(partners) + 1))
    shadow = float(supplies.at[flow_id, "shadow_price_per_t"]) if in_model else math.nan
    exchanged = float(supplies.at[flow_id, "exchanged_t_per_yr"]) if in_model else 0.0
    return PartnerSearch(supply=supply, partners=partners, shadow_value_per_t=shadow, exchanged_t_per_yr=exchanged,
                         parameters=parameters)


def _carriers(region: Region) -> pd.Index:
    carriers = region.reference.energy_carriers
    return carriers.index if not carriers.empty else pd.Index([])


def _is_heat_supply(region: Region, supply: pd.Series) -> bool:
    """Heat given off as a by-product or waste, in an energy unit, of a known carrier (symbiosis.energy.heat)."""
    from symbiosis.energy.heat import ENERGY_SUPPLY_CATEGORIES

    return (supply["direction"] == "out" and supply["quantity"] == "energy"
            and supply["category"] in ENERGY_SUPPLY_CATEGORIES and supply["material"] in _carriers(region))


def _temperatures(region: Region, bound: str) -> pd.Series:
    """Temperature (°C) per flow id: a supply's own (``bound`` "") or a demand's minimum (``"min"``)."""
    from symbiosis.energy.heat import TEMPERATURE

    q = region.quality
    rows = q[(q["parameter"] == TEMPERATURE) & (q["bound"] == bound)]
    return rows.drop_duplicates("flow_id").set_index("flow_id")["value"].astype(float)


def _receivers(subs: pd.DataFrame, demands: pd.DataFrame, here: pd.Series, facility_id: str, circuity: float
               ) -> Iterator[tuple[Any, Any, dict[str, Any], float]]:
    """Each (substitution, demand position, demand, road distance km) a supply at ``here`` could serve: the
    demands of each substitution's primary material, the great-circle distance × circuity (0 within the
    supply's own facility)."""
    for sub in subs.itertuples():
        targets = demands[demands["material"] == sub.primary_material]
        if targets.empty:
            continue
        km = geodesic_km(np.full(len(targets), here.lat), np.full(len(targets), here.lon),
                         targets["lat"].to_numpy(float), targets["lon"].to_numpy(float)) * circuity
        columns = list(targets.columns)
        records = [dict(zip(columns, row, strict=True))
                   for row in zip(*(targets[c].tolist() for c in columns), strict=True)]
        for k, (position, demand) in enumerate(zip(targets.index, records, strict=True)):
            yield sub, position, demand, 0.0 if demand["facility_id"] == facility_id else float(km[k])


def _heat_partners(region: Region, flow_id: str, supply: pd.Series, parameters: dict[str, object], *,
                   results: Any = None, cands: Any = None, **overrides: Any) -> PartnerSearch:
    """Rank the heat demands a heat supply could serve, per MWh (see the module docstring)."""
    from symbiosis.energy.heat import heat_pump_cop, is_energy, region_pump
    from symbiosis.pipeline import optimise

    if results is None:
        results = optimise(region, **overrides)
    if cands is None:
        cands = build_candidates(region, **overrides)
    supplies = results.supplies.set_index("supply_id")
    in_model = flow_id in supplies.index
    own = cands.supplies.set_index("supply_id")  # the stream's own figures, of ``region`` whatever ``results``
    if flow_id not in own.index and in_model:
        own = supplies
    in_candidates = flow_id in own.index
    arcs = cands.arcs[cands.arcs["supply_id"] == flow_id].set_index("demand_id")
    exchanges = results.exchanges[results.exchanges["supply_id"] == flow_id]
    used = exchanges.set_index("demand_id")["amount_mwh_per_yr"] if len(exchanges) else pd.Series(dtype=float)
    carrier = region.reference.energy_carriers.loc[supply["material"]]
    reach = float(carrier["max_distance_km"])
    loss = float(carrier["loss_fraction_per_km"])
    pipe = float(carrier["pipe_cost_per_mwh_km"])
    pump = region_pump(region)  # the region's heat_pump: settings (region.yaml), else the defaults
    circuity = float(parameters["circuity"])  # type: ignore[arg-type]
    carbon = float(parameters["carbon_price"])  # type: ignore[arg-type]
    price = float(supply.get("price_per_mwh", math.nan))
    fate_cost = (float(own.at[flow_id, "fate_cost_per_t"]) if in_candidates
                 else (0.0 if math.isnan(price) else price))
    fate_co2 = float(own.at[flow_id, "fate_co2e_per_t"]) if in_candidates else 0.0
    t_supply = float(_temperatures(region, "").get(flow_id, math.nan))
    t_min = _temperatures(region, "min")
    facilities = region.facilities.set_index("facility_id")
    here = facilities.loc[supply["facility_id"]]
    overrides_table = region.arcs.set_index(["supply_facility", "demand_facility"]) if len(region.arcs) else None
    subs = region.reference.substitutions
    subs = subs[subs["secondary_material"] == supply["material"]]
    demands = cands.demands[is_energy(cands.demands)]
    rows = []
    for sub, _, demand, distance in _receivers(subs, demands, here, supply["facility_id"], circuity):
        pair = (supply["facility_id"], demand["facility_id"])
        if overrides_table is not None and pair in overrides_table.index:
            given = overrides_table.loc[pair, "distance_km"]
            distance = float(given) if given == given else distance
        did = demand["demand_id"]
        arc = arcs.loc[did] if did in arcs.index else None
        general = (float(arc["max_distance_km"]) if arc is not None
                   else _limit(region, supply, demand, sub, parameters))
        limit = min(general, reach)
        delivered = max(0.0, 1.0 - loss * distance)
        need = float(t_min.get(did, math.nan))
        cop = math.nan
        if math.isnan(need):
            fit, detail = "passes", "no temperature limit"
        elif math.isnan(t_supply):
            fit, detail = "not measured", f"the receiver needs at least {need:g} °C; the supply has no temperature"
        elif t_supply >= need:
            fit, detail = "passes", f"{t_supply:g} °C vs min {need:g} °C"
        else:
            cop = float(heat_pump_cop(np.array([t_supply]), np.array([need]), pump)[0])
            if math.isnan(cop):
                fit, detail = "too cold", (f"{t_supply:g} °C vs min {need:g} °C: a lift of {need - t_supply:g} K, "
                                           f"beyond a heat pump (at most {pump.max_lift_k:g} K)")
            else:
                fit, detail = "heat pump", (f"{t_supply:g} °C vs min {need:g} °C: a heat pump at COP {cop:.2f} "
                                            f"delivers {cop / (cop - 1):.2f} MWh per MWh taken, for "
                                            f"{1 / (cop - 1):.2f} MWh of electricity")
        lift = cop / (cop - 1.0) if fit == "heat pump" else 1.0
        electricity = 1.0 / (cop - 1.0) if fit == "heat pump" else 0.0
        per_mwh = float(sub.ratio) * lift  # MWh of need replaced per MWh shipped, before losses
        rho = per_mwh * delivered
        virgin_price = float(demand["virgin_price_per_t"])  # per MWh on a heat row
        virgin_co2 = float(demand["virgin_co2e_per_t"])
        running = electricity * pump.electricity_price_per_mwh + float(sub.processing_cost_per_t)
        running_co2 = electricity * pump.electricity_co2e_per_mwh + float(sub.processing_co2e_per_t)
        receiver_value = rho * virgin_price - pipe * distance - running
        co2_avoided = fate_co2 + rho * virgin_co2 - running_co2
        net = fate_cost + receiver_value + carbon * co2_avoided
        shipped = float(used.get(did, 0.0))
        viable: list[str] = []
        if shipped <= 0:
            if net < 0:
                viable.append(f"price: needs {-net:,.2f} per MWh more value (a higher cost of getting rid of "
                              "the heat or of the heat bought)")
            if distance > limit + 1e-9:
                viable.append(f"distance: {distance:,.1f} km is beyond the {limit:,.0f} km "
                              + (f"reach of {supply['material']}" if reach <= general else "limit"))
            worth = per_mwh * (virgin_price + carbon * virgin_co2)
            slope = worth * loss + pipe
            pays_km = ((fate_cost + carbon * fate_co2 + worth - running - carbon * running_co2) / slope
                       if slope > 0 else math.inf)
            if net < 0 and 0 < pays_km <= limit:  # beyond the reach the distance message says it all
                viable.append(f"distance: pays within {pays_km:,.1f} km")
            if fit in ("too cold", "not measured"):
                viable.append(f"temperature: {detail}")
            if not viable:
                viable.append("economic on its own, but the optimum places the heat or fills the receiver "
                              "more profitably elsewhere")
        rows.append({
            "demand_id": did, "facility_id": demand["facility_id"],
            "name": facilities.at[demand["facility_id"], "name"], "material": sub.primary_material,
            "ratio": sub.ratio, "distance_km": distance, "max_distance_km": limit,
            "within_distance": distance <= limit + 1e-9, "quality_fit": fit, "quality_detail": detail,
            "delivered_mwh_per_mwh": rho, "loss_fraction": 1.0 - delivered, "heat_pump_cop": cop,
            "electricity_mwh_per_mwh": electricity, "supplier_value_per_mwh": fate_cost,
            "receiver_value_per_mwh": receiver_value, "net_value_per_mwh": net,
            "co2e_avoided_t_per_mwh": co2_avoided, "used_by_optimum": shipped > 0, "optimum_mwh_per_yr": shipped,
            "demand_mwh_per_yr": float(demand["amount_mwh_per_yr"]),
            "what_would_make_it_viable": "; ".join(viable),
        })
    partners = pd.DataFrame(rows)
    if len(partners):
        partners["_warm_enough"] = ~partners["quality_fit"].isin(["too cold", "not measured"])
        partners = partners.sort_values(["used_by_optimum", "within_distance", "_warm_enough", "net_value_per_mwh"],
                                        ascending=[False, False, False, False]).drop(columns="_warm_enough")
        partners = partners.reset_index(drop=True)
        partners.insert(0, "rank", np.arange(1, len(partners) + 1))
    shadow = float(supplies.at[flow_id, "shadow_price_per_t"]) if in_model else math.nan  # per MWh on heat rows
    exchanged = float(np.nansum(used.to_numpy(float))) if len(used) else 0.0
    return PartnerSearch(supply=supply, partners=partners, shadow_value_per_t=shadow, exchanged_t_per_yr=exchanged,
                         parameters=parameters, unit="MWh")


def _limit(region: Region, supply: pd.Series | dict[str, Any], demand: pd.Series | dict[str, Any], sub: object,
           parameters: dict[str, object]) -> float:
    flow_limit = np.fmin(supply.get("max_distance_km", math.nan), demand.get("max_distance_km", math.nan))
    if not math.isnan(flow_limit):
        return float(flow_limit)
    sub_limit = getattr(sub, "max_distance_km", math.nan)
    if not math.isnan(sub_limit):
        return float(sub_limit)
    materials = region.reference.materials
    mat_limit = (materials.at[supply["material"], "max_distance_km"] if supply["material"] in materials.index
                 else math.nan)
    return float(mat_limit) if not math.isnan(mat_limit) else float(parameters["max_distance_km"])  # type: ignore[arg-type]


def partners_map(search: PartnerSearch, region: Region, path: str, *, title: str | None = None) -> str:
    """A small folium map: the stream, each receiver coloured by whether the optimum uses it.

    For a public map pass the public search and a region whose facilities are the public ones
    (symbiosis.disclosure); ``title`` becomes the page title.

    Names and materials are HTML-escaped and reach the page as JSON (:func:`symbiosis.outputs.mapping.tooltip`),
    so they show as text whatever they hold; the page says so when Leaflet could not load (no network).
    """
    import folium

    from symbiosis.atomic import write_atomic
    from symbiosis.outputs.escape import html_text
    from symbiosis.outputs.mapping import add_offline_notice, tooltip

    facilities = region.facilities.set_index("facility_id")
    origin = facilities.loc[search.supply["facility_id"]]
    fmap = folium.Map(location=(origin.lat, origin.lon), zoom_start=9, tiles="OpenStreetMap")
    add_offline_notice(fmap)
    if title:
        fmap.get_root().header.add_child(  # type: ignore[attr-defined]
            folium.Element(f"<title>{html_text(title)}</title>"))
    folium.CircleMarker((origin.lat, origin.lon), radius=9, color="#333333", weight=3, fill=True,
                        fill_color="#ffffff", fill_opacity=1.0, class_name="sym-partner-origin",
                        tooltip=tooltip(html_text(f"{origin['name']}: {search.supply['material']}"))).add_to(fmap)
    points = [(origin.lat, origin.lon)]
    for row in search.partners.itertuples():
        f = facilities.loc[row.facility_id]
        colour = "#1a9850" if row.used_by_optimum else "#fdae61" if row.within_distance else "#bbbbbb"
        value = float(getattr(row, "net_value_per_mwh" if search.unit == "MWh" else "net_value_per_t"))
        net = "–" if math.isnan(value) else f"{value:,.2f}/{search.unit}"  # suppressed when public
        fit = "temperature" if search.unit == "MWh" else "quality"
        tip = html_text(f"#{row.rank} {f['name']}: {row.material}, {row.distance_km:,.1f} km, net "
                        f"{net}, {fit} {row.quality_fit}")
        folium.PolyLine([(origin.lat, origin.lon), (f.lat, f.lon)], color=colour, weight=3, tooltip=tooltip(tip),
                        class_name="sym-partner").add_to(fmap)
        folium.CircleMarker((f.lat, f.lon), radius=6, color=colour, fill=True, tooltip=tooltip(tip)).add_to(fmap)
        points.append((f.lat, f.lon))
    lats, lons = zip(*points, strict=True)
    fmap.fit_bounds([[min(lats), min(lons)], [max(lats), max(lons)]])
    return str(write_atomic(path, lambda p: fmap.save(str(p))))
