"""Scenarios: a base region plus a named list of changes, applied exactly and recorded.

A scenario file (``scenarios/NAME.yaml``) names its base region and lists changes; each change is one
small, typed operation on a :class:`~symbiosis.region.Region` (pydantic, unknown keys rejected). Applying a
scenario returns a new Region and never touches the base. The resolved scenario (every change with its
effect: which rows it touched and the values before and after) is written beside the run's results.

Example::

    name: landfill_tax_doubled
    description: The Danish landfill tax doubles.
    base: ../data/regions/kalundborg
    changes:
      - fate_cost: {fate: landfill, tax_factor: 2}
      - parameters: {carbon_price: 100}
"""

from __future__ import annotations

import logging
import math
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, Strict, ValidationError, field_validator, model_validator

from symbiosis.errors import InputError, Problems
from symbiosis.process_models import load_process_models, pydantic_problems, read_yaml
from symbiosis.region import Region

logger = logging.getLogger(__name__)


class _Strict(BaseModel):
    # NaN, infinity and text where a number belongs are refused with the key's path, never read as 0.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


#: A number in a scenario file: an int or a float as YAML reads it (not "1.5" in quotes, not true/false).
Number = Annotated[float, Strict()]

#: What a scenario name may hold: it names the scenario's folder in the comparison output.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]*$")


def scenario_name_problem(name: object) -> str | None:
    """Why ``name`` cannot be a scenario name (a single, safe folder name), or None if it can."""
    if not isinstance(name, str) or not name.strip():
        return "the scenario name is empty or not text"
    if len(name) > 100:
        return "the scenario name is longer than 100 characters"
    if not NAME_PATTERN.match(name) or name.endswith((" ", ".")):
        return ("the scenario name must be one folder name: letters, digits, space, '.', '_' or '-', starting "
                "with a letter or digit and not ending in a space or '.' (no '/', '\\', '..' or absolute path)")
    return None


def scenario_folder(name: str) -> str:
    """The folder of a scenario in a comparison's output (spaces become ``_``); compared case-insensitively."""
    return name.replace(" ", "_")


class ParameterChange(_Strict):
    """Run parameters: any of the region defaults (max_distance_km, circuity, carbon_price, ...)."""

    max_distance_km: Number | None = Field(None, gt=0)
    max_distance_cap_km: Number | None = Field(None, gt=0)
    circuity: Number | None = Field(None, ge=1)
    transport_cost_per_tkm: Number | None = Field(None, ge=0)
    transport_co2_per_tkm: Number | None = Field(None, ge=0)
    carbon_price: Number | None = Field(None, ge=0)
    internal_reuse: bool | None = None
    weight_cost: Number | None = Field(None, ge=0, description="objective weight on money")
    weight_co2e: Number | None = Field(None, ge=0, description="objective weight on t CO2e (money-equivalent)")


class FateCostChange(_Strict):
    """Change what a fate costs (gate fee + tax), for the reference fate and every flow priced at it.

    ``tax_factor`` multiplies the fate's ``tax_per_t`` only (a doubled landfill tax); ``factor`` multiplies the
    whole cost; ``add`` adds money per t; ``set`` fixes it.
    """

    fate: str
    factor: Number | None = None
    tax_factor: Number | None = None
    add: Number | None = None
    set: Number | None = None

    @model_validator(mode="after")
    def _one_operation(self) -> FateCostChange:
        given = [k for k in ("factor", "tax_factor", "add", "set") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of factor, tax_factor, add, set (found {given or 'none'})")
        return self


class PriceChange(_Strict):
    """Change the virgin price of a material (all facilities, or one)."""

    material: str
    facility: str | None = None
    factor: Number | None = None
    set: Number | None = None

    @model_validator(mode="after")
    def _one_operation(self) -> PriceChange:
        if (self.factor is None) == (self.set is None):
            raise ValueError("give exactly one of factor or set")
        return self


class ScaleFlows(_Strict):
    """Multiply the flows of a facility (all, or of one material / direction / category) by a factor."""

    facility: str
    factor: Number = Field(ge=0)
    material: str | None = None
    direction: Literal["in", "out", "stock"] | None = None
    category: str | None = None


class ReplaceFlow(_Strict):
    """Set one flow's amount (t/yr after units; the unit given here is converted like any input)."""

    flow_id: str
    amount: Number = Field(ge=0)
    unit: str = "t"


class RemoveFacility(_Strict):
    facility: str


class AddFacility(_Strict):
    """A new facility estimated from a process model at a location."""

    facility_id: str
    name: str
    lat: Number = Field(ge=-90, le=90)
    lon: Number = Field(ge=-180, le=180)
    process_model: str
    activity: Number = Field(gt=0)
    activity_unit: str
    sector: str | None = None
    confidential: bool = False
    #: the facility's intake limit, t/yr received (facilities.csv's column); None: the model's, if any
    intake_capacity_t_per_yr: Number | None = Field(default=None, ge=0)


class MakeProcessor(_Strict):
    """Make a facility with a process model a processor (docs/data-format.md, "processors")."""

    facility: str
    capacity: Number = Field(ge=0)
    operating_cost_per_unit: Number = Field(default=0, ge=0)
    product_value_per_unit: Number = Field(default=0, ge=0)
    gate_fee_per_t: Number = 0


class Change(_Strict):
    """Exactly one of the operations."""

    parameters: ParameterChange | None = None
    fate_cost: FateCostChange | None = None
    price: PriceChange | None = None
    scale_flows: ScaleFlows | None = None
    replace_flow: ReplaceFlow | None = None
    remove_facility: RemoveFacility | None = None
    add_facility: AddFacility | None = None
    processor: MakeProcessor | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Change:
        given = [name for name in type(self).model_fields if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"each change has exactly one operation (found {given or 'none'})")
        return self

    @property
    def operation(self) -> tuple[str, BaseModel]:
        for name in type(self).model_fields:
            value = getattr(self, name)
            if value is not None:
                return name, value
        raise AssertionError("validated to have one operation")


class Scenario(_Strict):
    name: str = Field(description="one folder name: letters, digits, space, '.', '_', '-'")
    description: str = ""
    base: str = Field(description="the base region, relative to the scenario file")
    changes: Annotated[list[Change], Field(default_factory=list)]

    @field_validator("name")
    @classmethod
    def _safe_name(cls, name: str) -> str:
        problem = scenario_name_problem(name)
        if problem:
            raise ValueError(problem)
        return name


def load_scenario(path: str | Path) -> tuple[Scenario, Path]:
    """Read and validate a scenario file; returns it with the resolved base region path."""
    path = Path(path)
    problems = Problems()
    data = read_yaml(path, problems)
    problems.raise_if_any()
    if not isinstance(data, dict):
        problems.add(str(path), "expected a mapping with name, base and changes", found=type(data).__name__)
        problems.raise_if_any()
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        pydantic_problems(str(path), exc, problems)
        problems.raise_if_any()
        raise
    base = (path.parent / scenario.base).resolve()
    if not base.exists():
        problems.add(str(path), "the base region does not exist", column="base", found=scenario.base,
                     expected="a region folder, workbook or GeoPackage, relative to the scenario file")
        problems.raise_if_any()
    return scenario, base


def apply_scenario(region: Region, scenario: Scenario) -> tuple[Region, dict[str, Any], list[dict[str, Any]]]:
    """Apply the changes in order to a copy of the region.

    Returns the changed region, the run-parameter overrides (for :func:`symbiosis.pipeline.optimise`) and a
    record of every change with its effect (rows touched, values before and after).
    """
    changed = region.copy()
    overrides: dict[str, Any] = {}
    record: list[dict[str, Any]] = []
    problems = Problems()
    for number, change in enumerate(scenario.changes, start=1):
        name, op = change.operation
        where = f"scenario {scenario.name}, change {number} ({name})"
        effect = _APPLY[name](changed, op, overrides, where, problems)  # type: ignore[operator]
        record.append({"change": number, "operation": name, **op.model_dump(exclude_none=True), "effect": effect})
    problems.raise_if_any()
    return changed, overrides, record


def _parameters(region: Region, op: ParameterChange, overrides: dict[str, Any], where: str,
                problems: Problems) -> str:
    values = op.model_dump(exclude_none=True)
    weights = {k.removeprefix("weight_"): values.pop(k) for k in list(values) if k.startswith("weight_")}
    overrides.update(values)
    if weights:
        overrides.setdefault("weights", {}).update(weights)
    return ", ".join(f"{k} = {v}" for k, v in {**values, **weights}.items())


def _fate_cost(region: Region, op: FateCostChange, overrides: dict[str, Any], where: str,
               problems: Problems) -> str:
    fates = region.reference.fates
    if op.fate not in fates.index:
        problems.add(where, "unknown fate", found=op.fate, expected=", ".join(fates.index))
        return "not applied"
    old = float(fates.at[op.fate, "cost_per_t"])
    tax = float(fates.at[op.fate, "tax_per_t"]) if "tax_per_t" in fates.columns else math.nan
    if op.tax_factor is not None:
        if math.isnan(tax):
            problems.add(where, "the fate has no tax_per_t in fates.csv, so its tax cannot be scaled",
                         found=op.fate, fix="use factor or add, or give tax_per_t in fates.csv")
            return "not applied"
        delta = tax * (op.tax_factor - 1.0)
    elif op.factor is not None:
        delta = old * (op.factor - 1.0)
    elif op.add is not None:
        delta = op.add
    else:
        delta = float(op.set) - old  # type: ignore[arg-type]
    # The same money per tonne is added to flows that carry their own (contract) price for this fate, so a
    # tax change reaches every tonne sent to that fate, and nothing else moves.
    region.reference.fates = fates.copy()
    region.reference.fates.at[op.fate, "cost_per_t"] = old + delta
    if op.tax_factor is not None:
        region.reference.fates.at[op.fate, "tax_per_t"] = tax * op.tax_factor
    flows = region.flows
    priced = (flows["direction"] == "out") & (flows["fate"] == op.fate) & flows["price_per_t"].notna()
    region.flows = flows.copy()
    region.flows.loc[priced, "price_per_t"] = flows.loc[priced, "price_per_t"] + delta
    return (f"{op.fate}: {old:g} -> {old + delta:g} per t (reference); {int(priced.sum())} flow(s) with their own "
            f"price changed by {delta:+g} per t")


def _price(region: Region, op: PriceChange, overrides: dict[str, Any], where: str, problems: Problems) -> str:
    flows = region.flows
    mask = (flows["direction"] == "in") & (flows["material"] == op.material)
    if op.facility is not None:
        mask &= flows["facility_id"] == op.facility
    if not mask.any():
        problems.add(where, "no incoming flow matches", found=f"material {op.material}, facility {op.facility}")
        return "not applied"
    region.flows = flows.copy()
    old = region.flows.loc[mask, "price_per_t"]
    region.flows.loc[mask, "price_per_t"] = old * op.factor if op.factor is not None else float(op.set)  # type: ignore[arg-type]
    return f"{int(mask.sum())} flow(s) of {op.material}"


def _scale_flows(region: Region, op: ScaleFlows, overrides: dict[str, Any], where: str, problems: Problems) -> str:
    flows = region.flows
    if op.facility not in set(region.facilities["facility_id"]):
        problems.add(where, "unknown facility", found=op.facility)
        return "not applied"
    mask = flows["facility_id"] == op.facility
    for column, value in (("material", op.material), ("direction", op.direction), ("category", op.category)):
        if value is not None:
            mask &= flows[column] == value
    if not mask.any():
        problems.add(where, "no flow matches", found=op.model_dump(exclude_none=True))
        return "not applied"
    region.flows = flows.copy()
    for column in ("amount_t_per_yr", "amount_mwh_per_yr"):
        region.flows.loc[mask, column] = flows.loc[mask, column] * op.factor
    return f"{int(mask.sum())} flow(s) x {op.factor:g}: " + ", ".join(flows.loc[mask, "flow_id"])


def _replace_flow(region: Region, op: ReplaceFlow, overrides: dict[str, Any], where: str, problems: Problems) -> str:
    from symbiosis.units import UnitProblem, convert_amount

    flows = region.flows
    mask = flows["flow_id"] == op.flow_id
    if not mask.any():
        problems.add(where, "unknown flow", found=op.flow_id)
        return "not applied"
    material = flows.loc[mask, "material"].iloc[0]
    try:
        converted = convert_amount(op.amount, op.unit, density_t_per_m3=region.reference.density(material))
    except UnitProblem as exc:
        problems.add(where, str(exc), column="unit", found=op.unit)
        return "not applied"
    column = "amount_t_per_yr" if converted.quantity == "mass" else "amount_mwh_per_yr"
    old = float(flows.loc[mask, column].iloc[0])
    region.flows = flows.copy()
    region.flows.loc[mask, column] = converted.value
    return f"{op.flow_id}: {old:g} -> {converted.value:g}"


def _remove_facility(region: Region, op: RemoveFacility, overrides: dict[str, Any], where: str,
                     problems: Problems) -> str:
    if op.facility not in set(region.facilities["facility_id"]):
        problems.add(where, "unknown facility", found=op.facility)
        return "not applied"
    gone = region.flows["facility_id"] == op.facility
    removed_ids = set(region.flows.loc[gone, "flow_id"])
    region.facilities = region.facilities[region.facilities["facility_id"] != op.facility].reset_index(drop=True)
    region.flows = region.flows[~gone].reset_index(drop=True)
    region.quality = region.quality[~region.quality["flow_id"].isin(removed_ids)].reset_index(drop=True)
    arcs = region.arcs
    region.arcs = arcs[(arcs["supply_facility"] != op.facility) & (arcs["demand_facility"] != op.facility)]
    if region.processors is not None and len(region.processors):
        region.processors = region.processors[region.processors["facility_id"] != op.facility].reset_index(drop=True)
    return f"removed {op.facility} and its {len(removed_ids)} flow(s)"


def _add_facility(region: Region, op: AddFacility, overrides: dict[str, Any], where: str, problems: Problems) -> str:
    from symbiosis.inputs import _default_intake, modelled_flows

    if op.facility_id in set(region.facilities["facility_id"]):
        problems.add(where, "the facility id is already used", found=op.facility_id)
        return "not applied"
    models = load_process_models(problems)
    model = models.get(op.process_model)
    if model is None:
        problems.add(where, "unknown process model", found=op.process_model, expected=", ".join(sorted(models)))
        return "not applied"
    row = pd.DataFrame([{
        "facility_id": op.facility_id, "name": op.name, "sector": op.sector or model.nace, "lat": op.lat,
        "lon": op.lon, "confidential": op.confidential, "process_model": op.process_model,
        "activity": op.activity, "activity_unit": op.activity_unit,
        "intake_capacity_t_per_yr": float("nan") if op.intake_capacity_t_per_yr is None
        else float(op.intake_capacity_t_per_yr),
    }])
    row = _default_intake(row, models)
    empty = region.flows.iloc[0:0]
    flows, quality = modelled_flows(row, empty, models, region.reference, problems, region.settings)
    region.facilities = pd.concat([region.facilities, row[region.facilities.columns]], ignore_index=True)
    flows = flows.assign(ewc_code=flows["ewc_code"].astype(object).where(flows["ewc_code"].notna(), "").astype(str))
    region.flows = pd.concat([region.flows, flows[region.flows.columns]], ignore_index=True)
    if len(quality):
        region.quality = pd.concat([region.quality, quality[region.quality.columns]], ignore_index=True)
    return f"added {op.facility_id} ({op.process_model}, {op.activity:g} {op.activity_unit}) with {len(flows)} flow(s)"


def _processor(region: Region, op: MakeProcessor, overrides: dict[str, Any], where: str, problems: Problems) -> str:
    from symbiosis.inputs import _processors
    from symbiosis.network.processors import empty_processors
    from symbiosis.tables import table_from_frame

    frame = pd.DataFrame([{"facility_id": op.facility, "capacity": str(op.capacity),
                           "operating_cost_per_unit": str(op.operating_cost_per_unit),
                           "product_value_per_unit": str(op.product_value_per_unit),
                           "gate_fee_per_t": str(op.gate_fee_per_t), "source": f"scenario ({where})"}])
    found = Problems()
    table = _processors(table_from_frame(frame, where), found, region.facilities, load_process_models(found))
    if found:
        for problem in found.items:
            problems.add(where, problem.message, column=problem.column, found=problem.found,
                         expected=problem.expected)
        return "not applied"
    current = region.processors if region.processors is not None else empty_processors()
    current = current[current["facility_id"] != op.facility]
    region.processors = pd.concat([current, table], ignore_index=True) if len(current) else table
    return f"{op.facility} is a processor (capacity {op.capacity:g})"


_APPLY = {
    "parameters": _parameters,
    "fate_cost": _fate_cost,
    "price": _price,
    "scale_flows": _scale_flows,
    "replace_flow": _replace_flow,
    "remove_facility": _remove_facility,
    "add_facility": _add_facility,
    "processor": _processor,
}

def check_scenario_names(paths: list[str] | list[Path]) -> None:
    """Refuse, before any run, scenario names that are not safe folder names or that two files share.

    Each scenario's results go to a folder named after it in the comparison output, so a name such as
    ``..`` or ``a/b`` would write outside it, and two scenarios with one name would mix their results.
    A file that cannot be read is left to its run, which reports it.
    """
    problems = Problems()
    seen: dict[str, str] = {}
    for path in map(Path, paths):
        data = read_yaml(path, Problems())
        if not isinstance(data, dict) or "name" not in data:
            continue
        name = data["name"]
        problem = scenario_name_problem(name)
        if problem:
            problems.add(str(path), problem, column="name", found=name)
            continue
        key = scenario_folder(name).casefold()
        if key in seen:
            problems.add(str(path), "two scenarios have the same name (their results would share one folder)",
                         column="name", found=name, expected=f"a name other than that of {seen[key]}",
                         fix=f"rename the scenario in {path} or in {seen[key]}")
        else:
            seen[key] = str(path)
    problems.raise_if_any()


__all__ = ["Scenario", "Change", "load_scenario", "apply_scenario", "check_scenario_names", "InputError"]
