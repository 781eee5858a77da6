"""Substances traced through the optimum by mass (post-processing: nothing here is in the LP).

A quality parameter is a substance when it is the concentration of an element or compound: cadmium,
chloride, phosphorus, nitrogen (``substance_factors``). The reference table quality_parameters.csv says so
(``substance`` true or false: purity, moisture, loss on ignition, calorific value and temperature are
properties of a material, not substances); a parameter it does not list is a substance only when its unit is
an explicit mass concentration (mg/kg, g/t, ppm, ...), never for a bare %, which as often means a purity or a
moisture as a content. Its mass on each arc is x_a · c_s(a), on each supply left to its fate
w_s · c_s, on each virgin purchase y_d · c^v_d (where the demand bounds it; virgin material is otherwise taken
to carry none). A processor passes what enters it on to its outputs: by the model's ``transfer``
coefficients (substance → output material → share; what they leave unassigned stays in the plant,
``accumulated``) or, by default, in proportion to the outputs' mass (products and emissions included).
Downstream of a processor, its outputs carry the traced concentration (mass out / output tonnes), whatever
it guarantees; where the traced one exceeds the guaranteed value measured on the output, a warning row says
so. Chains (and loops) are solved as one linear system per substance: S = b + M S, S_p the substance
entering processor p. Pooling (the traced concentration inside the LP) is not done.

The table (``substances.csv``): ``substance, from_kind, from_facility, from_flow, to_kind, to, t_per_yr``;
``from_kind`` is ``supply`` (a source facility's stream), ``virgin`` or ``processor``; ``to_kind`` is
``facility`` (a final user), ``processor``, ``fate``, ``product``, ``emission`` or ``accumulated``. Each
substance's mass is conserved: Σ rows from supply/virgin = Σ rows to anything but a processor.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from symbiosis.candidates import Candidates
from symbiosis.network.processors import has_processors

logger = logging.getLogger(__name__)

TABLE_COLUMNS = ["substance", "from_kind", "from_facility", "from_flow", "to_kind", "to", "t_per_yr"]
WARNING_COLUMNS = ["substance", "facility_id", "flow_id", "traced_concentration", "guaranteed", "unit", "message"]


@dataclass
class Tracing:
    """Where each substance goes (``table``) and the outputs whose traced concentration breaks what their
    processor guarantees (``warnings``)."""

    table: pd.DataFrame
    warnings: pd.DataFrame
    units: dict[str, str] = field(default_factory=dict)


def mass_fraction(unit: str) -> float:
    """t of substance per t of material for one unit of ``unit`` (mg/kg → 1e-6, % → 0.01); NaN if not a
    mass concentration (mg/L, pH, MJ/kg)."""
    from symbiosis.units import UREG

    text = (unit or "").strip()
    if text in ("%", "wt%", "% w/w", "%DM"):
        return 0.01 if text != "%DM" else math.nan
    if text.lower() == "ppm":
        return 1e-6
    try:
        quantity = UREG.Quantity(1.0, UREG.parse_units(text))
        if quantity.dimensionless:
            return float(quantity.to("dimensionless").magnitude)
    except Exception:  # noqa: BLE001 - any unit pint cannot read is not a concentration
        return math.nan
    return math.nan


#: Units that are a mass fraction but say nothing of what they measure (a purity, a moisture or a content).
AMBIGUOUS_UNITS = frozenset({"%", "wt%", "% w/w"})


def substance_factors(units: Mapping[str, str], parameters: pd.DataFrame | None) -> dict[str, float]:
    """Per traced parameter, t of substance per t of material per unit of its value.

    ``units``: parameter → unit (as in quality.csv); ``parameters``: the reference table quality_parameters
    (``parameter``, ``substance``), indexed by lower-case parameter. A listed parameter is traced if its flag is
    true and its unit a mass fraction (mg/kg, g/t, ppm, %); an unlisted one only if its unit is an explicit
    mass concentration (not a bare %)."""
    flags: dict[str, bool] = {}
    if parameters is not None and len(parameters) and "substance" in parameters.columns:
        flags = {str(k).lower(): bool(v) for k, v in zip(parameters["parameter"], parameters["substance"],
                                                          strict=True)}
    factors: dict[str, float] = {}
    for parameter, unit in units.items():
        factor = mass_fraction(unit)
        if math.isnan(factor):
            continue
        flag = flags.get(str(parameter).lower())
        if flag is None:
            flag = (unit or "").strip() not in AMBIGUOUS_UNITS
        if flag:
            factors[parameter] = factor
    return factors


def trace(candidates: Candidates, solution: Any, factors: Mapping[str, float], *,
          other_outputs: pd.DataFrame | None = None,
          transfer: Mapping[int, Mapping[str, Mapping[str, float]]] | None = None,
          fate_names: Mapping[str, str] | None = None, units: Mapping[str, str] | None = None,
          tol: float = 1e-12) -> Tracing:
    """Trace every parameter in ``factors`` (parameter → t per t per unit of its value) through the solution.

    ``other_outputs``: per processor its outputs that are not candidate supplies (``p, label, kind,
    material, per_unit``; kind ``product`` or ``emission``), so that proportional shares count them;
    ``transfer``: per processor position, substance → output material → share.
    """
    arcs, sup, dem = candidates.arcs, candidates.supplies, candidates.demands
    x, w, y = (np.asarray(v, float) for v in (solution.x, solution.w, solution.y))
    z = np.asarray(getattr(solution, "z", np.zeros(0)), float)
    s_of = arcs["s"].to_numpy(np.int64) if len(arcs) else np.zeros(0, np.int64)
    d_of = arcs["d"].to_numpy(np.int64) if len(arcs) else np.zeros(0, np.int64)
    n_s, n_d = len(sup), len(dem)
    sup_fac, dem_fac = sup["facility_id"].astype(str).to_numpy(), dem["facility_id"].astype(str).to_numpy()
    sup_id, dem_id = sup["supply_id"].astype(str).to_numpy(), dem["demand_id"].astype(str).to_numpy()
    fates = sup["fate"].astype(str).to_numpy() if "fate" in sup else np.full(n_s, "")
    fate_names = dict(fate_names or {})

    # Processor structure: which supply rows are whose outputs, which demand rows whose intake.
    supply_p = np.full(n_s, -1, np.int64)
    demand_p = np.full(n_d, -1, np.int64)
    supply_per_unit = np.zeros(n_s)
    n_p = 0
    proc_fac: np.ndarray = np.zeros(0, dtype=object)
    if has_processors(candidates):
        table, links = candidates.processors, candidates.processor_links
        assert table is not None and links is not None
        n_p = len(table)
        proc_fac = table["facility_id"].astype(str).to_numpy()
        out, into = links[links["side"] == "out"], links[links["side"] == "in"]
        supply_p[out["row"].to_numpy(np.int64)] = out["p"].to_numpy(np.int64)
        supply_per_unit[out["row"].to_numpy(np.int64)] = out["per_unit"].to_numpy(float)
        demand_p[into["row"].to_numpy(np.int64)] = into["p"].to_numpy(np.int64)
    others = other_outputs if other_outputs is not None else pd.DataFrame(
        columns=["p", "label", "kind", "material", "per_unit"])
    # Mass per unit of activity of every output of each processor, for the proportional default.
    total_per_unit = np.bincount(supply_p[supply_p >= 0], weights=supply_per_unit[supply_p >= 0], minlength=n_p)
    total_per_unit = total_per_unit + np.bincount(others["p"].to_numpy(np.int64),
                                                  weights=others["per_unit"].to_numpy(float), minlength=n_p)
    sup_material = sup["material"].astype(str).to_numpy()

    measured = candidates.supply_quality
    virgin = candidates.demand_quality
    rows: list[tuple[str, str, str, str, str, str, float]] = []
    frames: list[pd.DataFrame] = []
    warnings: list[dict[str, Any]] = []
    for substance, factor in factors.items():
        if not factor > 0:
            continue
        c = np.full(n_s, np.nan)  # t substance per t, measured
        m = measured[measured["parameter"] == substance]
        c[m["s"].to_numpy(np.int64)] = m["value"].to_numpy(float) * factor
        c_v = np.zeros(n_d)
        v = virgin[virgin["parameter"] == substance] if len(virgin) else virgin
        if len(v):
            c_v[v["d"].to_numpy(np.int64)] = v["virgin_value"].to_numpy(float) * factor

        # Share of processor p's intake of this substance that leaves by supply row s (0 elsewhere).
        share_s = np.zeros(n_s)
        kept = np.zeros(n_p)  # share accumulated in the plant
        share_other = np.zeros(len(others))
        for p in range(n_p):
            rule = (transfer or {}).get(p, {}).get(substance)
            mine = np.flatnonzero(supply_p == p)
            other_rows = np.flatnonzero(others["p"].to_numpy(np.int64) == p)
            if rule:
                share_s[mine] = [float(rule.get(sup_material[s], 0.0)) for s in mine]
                share_other[other_rows] = [float(rule.get(str(others["material"].iloc[k]), 0.0))
                                           for k in other_rows]
                kept[p] = max(0.0, 1.0 - share_s[mine].sum() - share_other[other_rows].sum())
            elif total_per_unit[p] > 0:
                share_s[mine] = supply_per_unit[mine] / total_per_unit[p]
                share_other[other_rows] = others["per_unit"].to_numpy(float)[other_rows] / total_per_unit[p]
            else:
                kept[p] = 1.0

        # S = b + M S: b from measured supplies and virgin purchases, M from processor outputs.
        from_proc = supply_p[s_of] >= 0 if len(s_of) else np.zeros(0, bool)
        into_proc = demand_p[d_of] if len(d_of) else np.zeros(0, np.int64)
        base = np.zeros(n_p)
        known = ~np.isnan(c[s_of]) & ~from_proc if len(s_of) else np.zeros(0, bool)
        target = (into_proc >= 0) & known
        np.add.at(base, into_proc[target], x[target] * c[s_of[target]])
        proc_dem = np.flatnonzero(demand_p >= 0)
        np.add.at(base, demand_p[proc_dem], y[proc_dem] * c_v[proc_dem])
        # Fraction of supply row s's output (of processor q) shipped on arc a: x_a / (o_s z_q).
        out_mass = np.where(supply_p >= 0, supply_per_unit * (z[supply_p] if n_p else 0.0), 0.0)
        matrix = np.zeros((n_p, n_p))
        link = (into_proc >= 0) & from_proc if len(s_of) else np.zeros(0, bool)
        for a in np.flatnonzero(link & (x > tol)):
            s = s_of[a]
            if out_mass[s] > 0:
                matrix[into_proc[a], supply_p[s]] += share_s[s] * x[a] / out_mass[s]
        entering = np.linalg.lstsq(np.eye(n_p) - matrix, base, rcond=None)[0] if n_p else np.zeros(0)
        # Traced concentration of processor outputs (t per t).
        traced = c.copy()
        proc_rows = np.flatnonzero(supply_p >= 0)
        traced[proc_rows] = np.where(out_mass[proc_rows] > 0,
                                     share_s[proc_rows] * entering[supply_p[proc_rows]]
                                     / np.where(out_mass[proc_rows] > 0, out_mass[proc_rows], 1.0), 0.0)
        for s in proc_rows:
            guaranteed = c[s]
            if not math.isnan(guaranteed) and traced[s] > guaranteed * (1 + 1e-9) + 1e-15 and out_mass[s] > 0:
                warnings.append({
                    "substance": substance, "facility_id": sup_fac[s], "flow_id": sup_id[s],
                    "traced_concentration": traced[s] / factor, "guaranteed": guaranteed / factor,
                    "unit": (units or {}).get(substance, ""),
                    "message": f"{sup_id[s]} of processor {sup_fac[s]} carries {traced[s] / factor:.6g} "
                               f"{(units or {}).get(substance, '')} of {substance} by mass balance, above the "
                               f"{guaranteed / factor:.6g} it guarantees (and the exchange model assumed)"})

        # Arcs, fates, virgin purchases (vectorised over arcs), processors' other outputs and what they keep.
        used = np.flatnonzero((x > tol) & ~np.isnan(traced[s_of])) if len(s_of) else np.zeros(0, np.int64)
        su, du = s_of[used], d_of[used]
        frames.append(pd.DataFrame({
            "substance": substance, "from_kind": np.where(supply_p[su] >= 0, "processor", "supply"),
            "from_facility": sup_fac[su], "from_flow": sup_id[su],
            "to_kind": np.where(demand_p[du] >= 0, "processor", "facility"), "to": dem_fac[du],
            "t_per_yr": x[used] * traced[su]}, columns=TABLE_COLUMNS))
        left = np.flatnonzero((w > tol) & ~np.isnan(traced))
        frames.append(pd.DataFrame({
            "substance": substance, "from_kind": np.where(supply_p[left] >= 0, "processor", "supply"),
            "from_facility": sup_fac[left], "from_flow": sup_id[left], "to_kind": "fate",
            "to": [fate_names.get(f, f) or "current fate" for f in fates[left]],
            "t_per_yr": w[left] * traced[left]}, columns=TABLE_COLUMNS))
        bought = np.flatnonzero((y > tol) & (c_v > 0))
        frames.append(pd.DataFrame({
            "substance": substance, "from_kind": "virgin", "from_facility": "", "from_flow": dem_id[bought],
            "to_kind": np.where(demand_p[bought] >= 0, "processor", "facility"), "to": dem_fac[bought],
            "t_per_yr": y[bought] * c_v[bought]}, columns=TABLE_COLUMNS))
        for k in range(len(others)):
            p = int(others["p"].iloc[k])
            amount = share_other[k] * entering[p]
            if amount > tol:
                rows.append((substance, "processor", proc_fac[p], str(others["label"].iloc[k]),
                             str(others["kind"].iloc[k]), str(others["label"].iloc[k]), amount))
        for p in range(n_p):
            if kept[p] * entering[p] > tol:
                rows.append((substance, "processor", proc_fac[p], "", "accumulated", proc_fac[p],
                             kept[p] * entering[p]))
    frames.append(pd.DataFrame(rows, columns=TABLE_COLUMNS))
    table = pd.concat([f for f in frames if len(f)], ignore_index=True) if any(len(f) for f in frames) \
        else pd.DataFrame(columns=TABLE_COLUMNS)
    table = table.sort_values(["substance", "from_kind", "from_facility", "to_kind", "to"], kind="stable",
                              ignore_index=True)
    return Tracing(table=table, warnings=pd.DataFrame(warnings, columns=WARNING_COLUMNS), units=dict(units or {}))


def trace_region(region: Any, candidates: Candidates, solution: Any) -> Tracing:
    """:func:`trace` with the region's concentration parameters, processors' other outputs (products,
    emissions) and the models' ``transfer`` coefficients."""
    quality = getattr(region, "quality", None)
    if quality is None or getattr(region, "flows", None) is None:
        return Tracing(pd.DataFrame(columns=TABLE_COLUMNS), pd.DataFrame(columns=WARNING_COLUMNS))
    units = quality.drop_duplicates("parameter").set_index("parameter")["unit"].astype(str).to_dict() \
        if len(quality) else {}
    reference = getattr(region, "reference", None)
    factors = substance_factors(units, getattr(reference, "quality_parameters", None))
    others = pd.DataFrame(columns=["p", "label", "kind", "material", "per_unit"])
    transfer: dict[int, dict[str, dict[str, float]]] = {}
    if has_processors(candidates):
        table = candidates.processors
        assert table is not None
        flows = region.flows
        # One pass over the flows for all processors (a scan per processor is quadratic in a large region).
        position = pd.Series(np.arange(len(table), dtype=np.int64), index=table["facility_id"].to_numpy())
        mine = flows[flows["facility_id"].isin(position.index) & (flows["direction"] == "out")
                     & (flows["quantity"] == "mass") & ~flows["flow_id"].isin(candidates.supplies["supply_id"])]
        p_of = mine["facility_id"].map(position).to_numpy(np.int64)
        others = pd.DataFrame({
            "p": p_of, "label": (mine["category"] + ": " + mine["material"]).to_numpy(),
            "kind": np.where(mine["category"] == "emission", "emission", "product"),
            "material": mine["material"].to_numpy(),
            # A processor shut for the period (activity 0, symbiosis.periods) makes nothing: 0 per unit.
            "per_unit": _per_unit(mine["amount_t_per_yr"].to_numpy(float), table["activity"].to_numpy(float)[p_of]),
        }).sort_values("p", kind="stable", ignore_index=True)  # by processor, each in flow order, as before
        transfer.update(_model_transfer(table))
    return trace(candidates, solution, factors, other_outputs=others, transfer=transfer,
                 units={p: units[p] for p in factors})


def _per_unit(amount: np.ndarray, activity: np.ndarray) -> np.ndarray:
    """Mass per unit of activity, 0 where the activity is 0 (no division by zero)."""
    return np.divide(amount, activity, out=np.zeros(len(amount)), where=activity != 0)


def _model_transfer(table: pd.DataFrame) -> dict[int, dict[str, dict[str, float]]]:
    """The ``transfer`` coefficients of the processors' models (models/*.yaml), by processor position."""
    from symbiosis.errors import Problems
    from symbiosis.process_models import load_process_models

    models = load_process_models(Problems())
    found: dict[int, dict[str, dict[str, float]]] = {}
    for p, name in enumerate(table["process_model"].astype(str)):
        model = models.get(name)
        rule = getattr(model, "transfer", None) if model is not None else None
        if rule:
            found[p] = {k: dict(v) for k, v in rule.items()}
    return found


def check_conservation(tracing: Tracing, rel_tol: float = 1e-9) -> dict[str, tuple[float, float]]:
    """Per substance (entering, ending) in t/yr; raises ValueError when they differ beyond ``rel_tol``."""
    found: dict[str, tuple[float, float]] = {}
    for substance, part in tracing.table.groupby("substance"):
        entering = float(part.loc[part["from_kind"].isin(["supply", "virgin"]), "t_per_yr"].sum())
        ending = float(part.loc[part["to_kind"] != "processor", "t_per_yr"].sum())
        if abs(entering - ending) > rel_tol * max(abs(entering), 1e-12):
            raise ValueError(f"substance {substance}: {entering:.9g} t/yr enters, {ending:.9g} t/yr ends somewhere")
        found[str(substance)] = (entering, ending)
    return found
