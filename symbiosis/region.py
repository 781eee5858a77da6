"""The Region: the plain object that the loaders produce and every later stage reads.

A region is the system boundary of a study: its facilities, their flows (units already converted to
t/yr and MWh/yr), quality measurements and limits, user arc overrides, the reference data in force and the
resolved settings from ``region.yaml``. Column contracts are in ``docs/architecture.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from symbiosis.energy.heat import HEAT_PUMP, HeatPump
from symbiosis.reference import Reference


class Defaults(BaseModel):
    """Region-wide parameters; every one can be overridden per run (and every override is checked here)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    max_distance_km: float = Field(100.0, gt=0)
    # A hard cap over every limit (flow, substitution, material, region): "nothing travels further than".
    max_distance_cap_km: float | None = Field(None, gt=0)
    circuity: float = Field(1.3, ge=1.0)
    transport_cost_per_tkm: float = Field(0.10, ge=0)
    transport_co2_per_tkm: float = Field(0.000062, ge=0)
    carbon_price: float = Field(0.0, ge=0)
    internal_reuse: bool = True
    balance_tolerance: float = Field(0.05, gt=0, lt=1)


class HeatPumpSettings(BaseModel):
    """The heat pump a receiver may use to lift a too-cold heat supply (symbiosis.energy.heat.HeatPump), with
    the shipped estimates as defaults (data/SOURCES.md): COP = ``carnot_fraction`` × the Carnot COP of the lift,
    at most ``max_cop``, no lift above ``max_lift_k``; electricity price and CO2e per MWh."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    carnot_fraction: float = Field(HEAT_PUMP.carnot_fraction, gt=0, le=1)
    max_cop: float = Field(HEAT_PUMP.max_cop, gt=1)
    max_lift_k: float = Field(HEAT_PUMP.max_lift_k, gt=0)
    electricity_price_per_mwh: float = Field(HEAT_PUMP.electricity_price_per_mwh, ge=0)
    electricity_co2e_per_mwh: float = Field(HEAT_PUMP.electricity_co2e_per_mwh, ge=0)

    def pump(self) -> HeatPump:
        return HeatPump(**self.model_dump())


class ReferenceOverrides(BaseModel):
    """Region tables that add to, or override, the shipped reference tables (paths relative to the region)."""

    model_config = ConfigDict(extra="forbid")

    materials: str | None = None
    substitutions: str | None = None
    fates: str | None = None
    emission_factors: str | None = None


class RegionSettings(BaseModel):
    """The content of ``region.yaml``."""

    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    period: str = "year"
    year: int | None = Field(None, description="reference year of the figures, where one applies")
    currency: str = "EUR"
    defaults: Defaults = Field(default_factory=lambda: Defaults.model_validate({}))
    reference: ReferenceOverrides = Field(default_factory=lambda: ReferenceOverrides.model_validate({}))
    sources: dict[str, str] = Field(default_factory=dict)
    heat_pump: HeatPumpSettings = Field(default_factory=lambda: HeatPumpSettings.model_validate({}))
    permits_required_for: Literal["hazardous", "all_waste", "none"] = Field(
        "hazardous", description="which waste streams need a receiver's permit listing their EWC code")


FACILITY_COLUMNS = [
    "facility_id", "name", "sector", "lat", "lon", "confidential",
    "process_model", "activity", "activity_unit", "intake_capacity_t_per_yr",
]
FLOW_COLUMNS = [
    "flow_id", "facility_id", "direction", "category", "material", "quantity",
    "amount_t_per_yr", "amount_mwh_per_yr", "fate", "price_per_t", "price_per_mwh",
    "exchangeable", "max_secondary_share", "max_distance_km", "uncertainty_pct",
    "source", "data_quality", "note", "origin", "max_intake_t_per_yr", "ewc_code", "end_of_waste",
    "stream_id", "measured", "process",
    "price_uncertainty_pct",
]
QUALITY_COLUMNS = ["flow_id", "parameter", "value", "unit", "bound", "virgin_value"]
ARC_COLUMNS = ["supply_facility", "demand_facility", "distance_km", "cost_per_t", "co2e_per_t", "capacity_t_per_yr",
               "fixed_cost_per_yr", "min_flow"]
PERMIT_COLUMNS = ["facility_id", "ewc_code", "max_t_per_yr", "source"]

IN_CATEGORIES = ("raw_material", "semi_finished", "auxiliary", "water", "energy")
OUT_CATEGORIES = ("product", "by_product", "waste", "wastewater", "emission")
STOCK_CATEGORY = "stock_change"
EXCHANGEABLE_BY_DEFAULT = frozenset(
    {("out", "by_product"), ("out", "waste"), ("out", "wastewater"),
     ("in", "raw_material"), ("in", "auxiliary"), ("in", "water")}
)


@dataclass
class Region:
    """A loaded, validated region (see docs/architecture.md for every column)."""

    name: str
    settings: RegionSettings
    facilities: pd.DataFrame
    flows: pd.DataFrame
    quality: pd.DataFrame
    arcs: pd.DataFrame
    reference: Reference
    warnings: list[str] = field(default_factory=list)
    source: str = ""
    #: Processors (symbiosis.network.processors): facility_id, process_model, capacity, activity, ... (may be empty).
    processors: pd.DataFrame | None = None
    permits: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=PERMIT_COLUMNS))
    #: facility_id → the energy efficiency its process model states (symbiosis.balances: expected loss).
    energy_efficiency: dict[str, float] = field(default_factory=dict)
    #: Measured flows that a process model would also give, with the model's figure (symbiosis.inputs
    #: .model_figures): flow_id, facility_id, material, direction, measured_t_per_yr, model_t_per_yr.
    model_figures: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def currency(self) -> str:
        return self.settings.currency

    def copy(self) -> Region:
        """A deep copy, so scenarios can change a region without touching the base."""
        return Region(
            name=self.name,
            settings=self.settings.model_copy(deep=True),
            facilities=self.facilities.copy(),
            flows=self.flows.copy(),
            quality=self.quality.copy(),
            arcs=self.arcs.copy(),
            reference=self.reference.copy(),
            warnings=list(self.warnings),
            source=self.source,
            processors=None if self.processors is None else self.processors.copy(),
            permits=self.permits.copy(),
            energy_efficiency=dict(self.energy_efficiency),
            model_figures=self.model_figures.copy(),
        )
