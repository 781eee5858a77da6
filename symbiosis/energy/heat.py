"""Heat as supplies, demands and arcs: the energy part of the candidates stage, in MWh/yr.

A heat flow (``quantity == "energy"``, material a carrier of data/reference/energy_carriers.csv) given off as
a by-product or waste is a supply; one bought (an ``in`` flow marked ``exchangeable: true``) is a demand.
They share the candidate tables with the mass rows: ``quantity`` tells a row's unit, ``amount_t_per_yr`` is
NaN on energy rows and ``amount_mwh_per_yr`` NaN on mass rows, and the per-unit money and CO2e columns of an
energy row are per MWh. The substitutions (steam → hot water, waste heat → district heat, ...) make pairs
compatible as for materials; ``apply_energy`` then turns each energy arc into a heat pipe:

- the carrier's reach: an arc longer than ``max_distance_km`` is dropped (reason ``too_far_for_steam``);
- losses: the delivered ratio is ρ_a = ratio · max(0, 1 − loss · km);
- the pipe's variable cost: ``pipe_cost_per_mwh_km · km`` per MWh shipped (transport CO2e 0);
- temperature (quality parameter ``temperature``, °C): a supply at least as hot as the demand's minimum
  serves it directly; a colder one only through a heat pump at the receiver (``HeatPump``), which multiplies
  the delivered heat by COP/(COP − 1) and costs 1/(COP − 1) MWh of electricity per MWh of source heat; with
  no feasible heat pump the arc is dropped (reason ``too_cold``). The temperature rows of energy demands
  leave the LP's blend rows (heat at two temperatures does not blend like a material).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from symbiosis.candidates import Candidates
    from symbiosis.region import Region

TEMPERATURE = "temperature"
ENERGY_SUPPLY_CATEGORIES = ("by_product", "waste")
#: Added arc columns (NaN or 0 on mass arcs).
ENERGY_ARC_COLUMNS = ["heat_pump_cop", "electricity_mwh_per_mwh", "loss_fraction"]


@dataclass(frozen=True)
class HeatPump:
    """A heat pump at the receiver lifting a too-cold supply (figures: estimates, data/SOURCES.md; a region
    sets its own under ``heat_pump:`` in region.yaml, symbiosis.region.HeatPumpSettings).

    COP = ``carnot_fraction`` · T_hot / (T_hot − T_cold) (kelvin), at most ``max_cop``; no lift above
    ``max_lift_k``; electricity at ``electricity_price_per_mwh`` and ``electricity_co2e_per_mwh``.
    """

    carnot_fraction: float = 0.5
    max_cop: float = 6.0
    max_lift_k: float = 80.0
    electricity_price_per_mwh: float = 100.0
    electricity_co2e_per_mwh: float = 0.3


HEAT_PUMP = HeatPump()


def heat_pump_cop(t_cold_c: np.ndarray, t_hot_c: np.ndarray, pump: HeatPump = HEAT_PUMP) -> np.ndarray:
    """COP of lifting heat from ``t_cold_c`` to ``t_hot_c`` (°C); NaN where no heat pump can (lift beyond
    ``max_lift_k``, or a COP ≤ 1, which would deliver no more heat than the electricity put in)."""
    cold = np.asarray(t_cold_c, dtype=float)
    hot = np.asarray(t_hot_c, dtype=float)
    lift = hot - cold
    with np.errstate(divide="ignore", invalid="ignore"):
        cop = np.minimum(pump.carnot_fraction * (hot + 273.15) / lift, pump.max_cop)
    cop = np.where(lift <= 0, pump.max_cop, cop)
    return np.where((lift > pump.max_lift_k) | ~(cop > 1.0), np.nan, cop)


def row_amount(table: pd.DataFrame) -> np.ndarray:
    """Each supply or demand row's amount in its own unit: t/yr for mass rows, MWh/yr for energy rows."""
    amount = pd.to_numeric(table["amount_t_per_yr"], errors="coerce").to_numpy(dtype=float)
    if "quantity" in table.columns and "amount_mwh_per_yr" in table.columns:
        energy = table["quantity"].to_numpy() == "energy"
        if energy.any():
            amount = np.where(energy, pd.to_numeric(table["amount_mwh_per_yr"], errors="coerce").to_numpy(float),
                              amount)
    return amount


def is_energy(table: pd.DataFrame) -> np.ndarray:
    """Per row: whether it is an energy row (tables without a ``quantity`` column are all mass)."""
    if "quantity" not in table.columns:
        return np.zeros(len(table), dtype=bool)
    return np.asarray(table["quantity"].to_numpy() == "energy", dtype=bool)


def _carrier(region: Region, materials: pd.Series, column: str, default: float) -> pd.Series:
    carriers = region.reference.energy_carriers
    if carriers.empty or column not in carriers.columns:
        return pd.Series(default, index=materials.index, dtype=float)
    return materials.map(carriers[column]).astype(float).fillna(default)


def _heat_flows(region: Region, direction: str) -> pd.DataFrame:
    flows = region.flows
    carriers = region.reference.energy_carriers
    if carriers.empty or "quantity" not in flows.columns:
        return flows.iloc[0:0]
    chosen = ((flows["direction"] == direction) & flows["exchangeable"] & (flows["quantity"] == "energy")
              & (flows["amount_mwh_per_yr"] > 0) & flows["material"].isin(carriers.index))
    if direction == "out":
        chosen &= flows["category"].isin(ENERGY_SUPPLY_CATEGORIES)
    return flows[chosen]


def energy_supplies(region: Region) -> pd.DataFrame:
    """Heat given off as a by-product or waste, as supply rows (costs per MWh: the price paid to get rid of
    it, e.g. cooling, from ``price_per_mwh``; 0 if not given)."""
    chosen = _heat_flows(region, "out")
    return pd.DataFrame({
        "supply_id": chosen["flow_id"],
        "facility_id": chosen["facility_id"],
        "material": chosen["material"],
        "material_class": "energy",
        "category": chosen["category"],
        "amount_t_per_yr": np.nan,
        "fate": chosen["fate"],
        "fate_kind": "",
        "fate_cost_per_t": chosen["price_per_mwh"].fillna(0.0).astype(float),
        "fate_co2e_per_t": 0.0,
        "max_distance_km": chosen["max_distance_km"].astype(float),
        "quantity": "energy",
        "amount_mwh_per_yr": chosen["amount_mwh_per_yr"].astype(float),
    })


def energy_demands(region: Region, primary_materials: set[str]) -> pd.DataFrame:
    """Heat bought (``in`` flows marked exchangeable) as demand rows: price per MWh from ``price_per_mwh``,
    else the carrier's ``virgin_price_per_mwh``; CO2e per MWh from the carrier (heat made otherwise)."""
    chosen = _heat_flows(region, "in")
    chosen = chosen[chosen["material"].isin(primary_materials)]
    material = chosen["material"]
    return pd.DataFrame({
        "demand_id": chosen["flow_id"],
        "facility_id": chosen["facility_id"],
        "material": material,
        "material_class": "energy",
        "density_t_per_m3": np.nan,
        "amount_t_per_yr": np.nan,
        "virgin_price_per_t": chosen["price_per_mwh"].fillna(_carrier(region, material, "virgin_price_per_mwh",
                                                                      0.0)).astype(float),
        "virgin_co2e_per_t": _carrier(region, material, "virgin_co2e_per_mwh", 0.0),
        "max_secondary_share": chosen["max_secondary_share"].fillna(1.0).astype(float),
        "max_distance_km": chosen["max_distance_km"].astype(float),
        "quantity": "energy",
        "amount_mwh_per_yr": chosen["amount_mwh_per_yr"].astype(float),
    })


def _per_row(quality: pd.DataFrame, key: str, n: int, bound: str | None) -> np.ndarray:
    """The temperature of each supply (``bound`` None) or each demand's minimum temperature, NaN if none."""
    out = np.full(n, np.nan)
    if quality is None or quality.empty:
        return out
    rows = quality[quality["parameter"] == TEMPERATURE]
    if bound is not None:
        rows = rows[rows["bound"] == bound]
        values = rows["limit"].to_numpy(float)
    else:
        values = rows["value"].to_numpy(float)
    out[rows[key].to_numpy(np.int64)] = values
    return out


def region_pump(region: Region) -> HeatPump:
    """The region's heat pump (region.yaml ``heat_pump:``; the shipped estimates where not given)."""
    settings = getattr(getattr(region, "settings", None), "heat_pump", None)
    return settings.pump() if settings is not None else HEAT_PUMP


def apply_energy(region: Region, cands: Candidates, pump: HeatPump | None = None) -> Candidates:
    """Energy arcs made heat pipes (reach, losses, pipe cost, temperature, heat pumps); see the module doc.

    ``pump`` defaults to the region's (``region_pump``).

    Returns ``cands`` unchanged (same tables) when it has no energy supply or demand, so that mass-only
    regions pay nothing."""
    pump = pump if pump is not None else region_pump(region)
    sup, dem, arcs = cands.supplies, cands.demands, cands.arcs
    s_energy, d_energy = is_energy(sup), is_energy(dem)
    if not s_energy.any() and not d_energy.any():
        return cands
    # The arc table is millions of rows at scale: no copy of it and no .loc assignment; the changed columns
    # are new arrays, the others stay the same Series, and the table is put together once at the end.
    new: dict[str, np.ndarray] = {}
    s = arcs["s"].to_numpy(np.int64)
    d = arcs["d"].to_numpy(np.int64)
    energy = s_energy[s]
    if (energy != d_energy[d]).any():
        raise ValueError("an arc links a mass row to an energy row (a substitution between a material and a heat "
                         "carrier): only a processor converts one into the other")
    material = sup["material"].iloc[s[energy]]
    reach = _carrier(region, material, "max_distance_km", np.inf).to_numpy()
    loss = _carrier(region, material, "loss_fraction_per_km", 0.0).to_numpy()
    pipe = _carrier(region, material, "pipe_cost_per_mwh_km", 0.0).to_numpy()
    km = arcs["distance_km"].to_numpy(float)[energy]
    delivered = np.maximum(0.0, 1.0 - loss * km)
    too_far = (km > reach * (1 + 1e-9)) | (delivered <= 0.0)

    t_supply = _per_row(cands.supply_quality, "s", len(sup), None)[s[energy]]
    t_demand = _per_row(cands.demand_quality, "d", len(dem), "min")[d[energy]]
    cold = ~np.isnan(t_demand) & ~np.isnan(t_supply) & (t_supply < t_demand)
    cop = np.where(cold, heat_pump_cop(t_supply, t_demand, pump), np.nan)
    too_cold = cold & np.isnan(cop) & ~too_far
    lift = np.where(cold, cop / (cop - 1.0), 1.0)
    electricity = np.where(cold, 1.0 / (cop - 1.0), 0.0)

    ratio = arcs["ratio"].to_numpy(float).copy()
    ratio[energy] = ratio[energy] * delivered * lift
    for column, values in (("processing_cost_per_t", electricity * pump.electricity_price_per_mwh),
                           ("processing_co2e_per_t", electricity * pump.electricity_co2e_per_mwh)):
        column_values = arcs[column].to_numpy(float).copy()
        column_values[energy] = column_values[energy] + values
        new[column] = column_values
    transport = arcs["transport_cost_per_t"].to_numpy(float).copy()
    transport_co2 = arcs["transport_co2e_per_t"].to_numpy(float).copy()
    transport[energy], transport_co2[energy] = pipe * km, 0.0
    new["transport_cost_per_t"], new["transport_co2e_per_t"] = transport, transport_co2
    new["ratio"] = ratio
    # A share cap (ρ·x ≤ σ·r) on the new ratio, within a route capacity given in arcs.csv (the smaller holds;
    # NaN = none).
    d_heat = d[energy]
    share = dem["max_secondary_share"].to_numpy(float)[d_heat]
    need = row_amount(dem)[d_heat]
    capacity = arcs["capacity_t_per_yr"].to_numpy(float).copy()
    with np.errstate(divide="ignore", invalid="ignore"):  # ratio 0: a too-far arc, dropped below
        share_cap = np.where(share < 1.0, share * need / ratio[energy], np.nan)
    capacity[energy] = np.fmin(capacity[energy], share_cap)
    new["capacity_t_per_yr"] = capacity
    new["heat_pump_cop"] = np.full(len(arcs), np.nan)
    new["heat_pump_cop"][energy] = cop
    new["electricity_mwh_per_mwh"] = np.zeros(len(arcs))
    new["electricity_mwh_per_mwh"][energy] = electricity
    new["loss_fraction"] = np.zeros(len(arcs))
    new["loss_fraction"][energy] = 1.0 - delivered

    energy_rows = np.flatnonzero(energy)
    far_arcs = np.zeros(len(arcs), dtype=bool)
    cold_arcs = np.zeros(len(arcs), dtype=bool)
    far_arcs[energy_rows[too_far]] = True
    cold_arcs[energy_rows[too_cold]] = True
    drop = far_arcs | cold_arcs
    screening = cands.screening.copy()
    n_s = len(sup)
    screening["n_too_far_for_carrier"] = np.bincount(s[far_arcs], minlength=n_s)
    screening["n_too_cold"] = np.bincount(s[cold_arcs], minlength=n_s)
    names = [*arcs.columns, *[c for c in ENERGY_ARC_COLUMNS if c not in arcs.columns]]
    arcs = pd.DataFrame({c: new[c] if c in new else arcs[c] for c in names}, copy=False)
    arcs = (arcs[~drop] if drop.any() else arcs).reset_index(drop=True)  # no copy of the data when nothing drops
    screening["n_arcs"] = np.bincount(arcs["s"].to_numpy(np.int64), minlength=n_s)
    demand_quality = cands.demand_quality
    if not demand_quality.empty:
        heat_rows = (demand_quality["parameter"] == TEMPERATURE) & d_energy[demand_quality["d"].to_numpy(np.int64)]
        demand_quality = demand_quality[~heat_rows].reset_index(drop=True)
    return replace(cands, arcs=arcs, demand_quality=demand_quality, screening=screening)
