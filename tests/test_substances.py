"""Substances traced by mass through processors: conservation on random chains, a hand-traced case, the
warning when a processor's output carries more than it guarantees, transfer coefficients."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from symbiosis.candidates import Candidates
from symbiosis.exchange import solve_exchange
from symbiosis.network.substances import check_conservation, mass_fraction, trace
from tests.test_processors import REGION, chains, digester

MG_PER_KG = 1e-6


def _with_cadmium(cand: Candidates, waste: float, digestate: float | None = None) -> Candidates:
    rows = [{"s": 0, "parameter": "cadmium", "value": waste}]
    if digestate is not None:
        rows.append({"s": 1, "parameter": "cadmium", "value": digestate})
    cand.supply_quality = pd.DataFrame(rows).astype({"s": np.int64, "value": float})
    return cand


def test_hand_traced_cadmium_through_the_digester() -> None:
    """Optimum of test_processors.digester: 100 t waste (2 mg/kg Cd) → digester (z = 100) → 90 t digestate,
    80 t to the farm, 10 t to landfill. 2e-4 t Cd enters; the digestate carries it all (its only output):
    2e-4 / 90 t = 2.222 mg/kg, so 1.778e-4 t reach the farm and 2.22e-5 t the landfill. The digestate
    guarantees 1.5 mg/kg: a warning."""
    cand = _with_cadmium(digester(), 2.0, 1.5)
    sol = solve_exchange(cand, carbon_price=0.0)
    tracing = trace(cand, sol, {"cadmium": MG_PER_KG}, units={"cadmium": "mg/kg"})
    t = tracing.table.set_index(["from_flow", "to_kind"])["t_per_yr"]
    assert t[("S0", "processor")] == pytest.approx(2e-4, rel=1e-9)
    assert t[("S1", "facility")] == pytest.approx(80 * 2e-4 / 90, rel=1e-9)
    assert t[("S1", "fate")] == pytest.approx(10 * 2e-4 / 90, rel=1e-9)
    assert check_conservation(tracing)["cadmium"][0] == pytest.approx(2e-4, rel=1e-9)
    assert len(tracing.warnings) == 1
    warning = tracing.warnings.iloc[0]
    assert warning["flow_id"] == "S1" and warning["traced_concentration"] == pytest.approx(2e-4 / 90 / MG_PER_KG)
    # A guarantee the traced value meets gives no warning.
    quiet = trace(_with_cadmium(digester(), 2.0, 2.5), sol, {"cadmium": MG_PER_KG})
    assert quiet.warnings.empty


def test_transfer_coefficients_split_and_keep_the_rest() -> None:
    """transfer: 60 % of the Cd to the digestate, the rest stays in the plant (accumulated)."""
    cand = _with_cadmium(digester(), 2.0)
    sol = solve_exchange(cand, carbon_price=0.0)
    tracing = trace(cand, sol, {"cadmium": MG_PER_KG}, transfer={0: {"cadmium": {"digestate": 0.6}}})
    t = tracing.table.groupby("to_kind")["t_per_yr"].sum()
    assert t["accumulated"] == pytest.approx(0.4 * 2e-4, rel=1e-9)
    assert t["facility"] + t["fate"] == pytest.approx(0.6 * 2e-4, rel=1e-9)
    check_conservation(tracing)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cand=chains(), waste=st.integers(0, 50), guarantee=st.integers(0, 20),
       keep=st.sampled_from([None, 0.0, 0.3]), virgin=st.integers(0, 5))
def test_random_chains_conserve_each_substance(cand: Candidates, waste: int, guarantee: int,
                                               keep: float | None, virgin: int) -> None:
    """in = out + accumulated per processor, and entering = ending for the region, on chains of 1-4 hops."""
    links = cand.processor_links
    assert links is not None
    outputs = links[links["side"] == "out"]
    rows = [{"s": 0, "parameter": "cd", "value": float(waste)}]
    rows += [{"s": int(s), "parameter": "cd", "value": float(guarantee)} for s in outputs["row"]]
    cand.supply_quality = pd.DataFrame(rows).astype({"s": np.int64, "value": float})
    intake = links[links["side"] == "in"]["row"].tolist()
    cand.demand_quality = pd.DataFrame({"d": intake, "parameter": "cd", "bound": "max", "limit": 1e9,
                                        "virgin_value": float(virgin)}).astype({"d": np.int64})
    sol = solve_exchange(cand, carbon_price=0.0)
    transfer = None
    if keep is not None:  # the main output gets (1 − keep) of it, the side stream none
        main = outputs.groupby("p")["row"].min()
        material = {int(p): f"m{p}" for p in main.index}
        cand.supplies.loc[main.to_numpy(), "material"] = [material[int(p)] for p in main.index]
        transfer = {int(p): {"cd": {material[int(p)]: 1.0 - keep}} for p in main.index}
    tracing = trace(cand, sol, {"cd": MG_PER_KG}, transfer=transfer)
    table = tracing.table
    if table.empty:
        return
    check_conservation(tracing)
    assert (table["t_per_yr"] >= 0).all()
    for p, facility in enumerate(cand.processors["facility_id"]):
        into = table[(table["to_kind"] == "processor") & (table["to"] == facility)]["t_per_yr"].sum()
        out = table[(table["from_kind"] == "processor") & (table["from_facility"] == facility)]["t_per_yr"].sum()
        assert out == pytest.approx(into, rel=1e-9, abs=1e-15), (p, into, out)


def test_mass_fraction_units() -> None:
    assert mass_fraction("mg/kg") == pytest.approx(1e-6)
    assert mass_fraction("%") == pytest.approx(0.01)
    assert np.isnan(mass_fraction("mg/L")) and np.isnan(mass_fraction("MJ/kg"))


def test_region_tracing_reads_the_regions_units() -> None:
    """The example region's cadmium is in mg/kg: traced, conserved, no warning (no guarantee measured)."""
    from symbiosis.candidates import candidates as build
    from symbiosis.inputs import load_region
    from symbiosis.network.substances import trace_region

    region = load_region(REGION)
    cand = build(region)
    sol = solve_exchange(cand, carbon_price=0.0)
    tracing = trace_region(region, cand, sol)
    assert tracing.units == {"cadmium": "mg/kg"}
    assert check_conservation(tracing)["cadmium"][0] == pytest.approx(3e-3, rel=1e-9)
    assert tracing.warnings.empty


def test_cadmium_of_the_spent_grain_reaches_the_farm_through_the_digester() -> None:
    """6000 t grain at 0.5 mg/kg = 3e-3 t Cd enters the digester; by mass its outputs per t of substrate are
    biogas 0.0605 t (a product) and digestate 0.9395 t, so 0.9395 · 3e-3 t goes on with the digestate (all
    of it to the farm at the optimum) and 0.0605 · 3e-3 t leaves with the biogas."""
    from symbiosis.inputs import load_region
    from symbiosis.pipeline import optimise

    results = optimise(load_region(REGION))
    table = results.substances
    cd = table[table["substance"] == "cadmium"]
    assert cd[cd["from_kind"] == "supply"]["t_per_yr"].sum() == pytest.approx(3e-3, rel=1e-9)
    to_farm = cd[(cd["to"] == "farm")]["t_per_yr"].sum()
    assert to_farm == pytest.approx(0.9395 * 3e-3, rel=1e-9)
    biogas = cd[cd["to_kind"] == "product"]["t_per_yr"].sum()
    assert biogas == pytest.approx(0.0605 * 3e-3, rel=1e-9)


# --- only concentrations of a substance are traced (quality_parameters.csv) -----------------------------


def test_only_concentrations_of_a_substance_are_traced() -> None:
    """Purity, moisture and loss on ignition are in % like chloride, but they are properties of a material:
    tracing "tonnes of purity" through the network is meaningless. Before this rule every %-unit parameter
    was traced, so the Kalundborg run showed purity and moisture Sankeys."""
    from symbiosis.errors import Problems
    from symbiosis.network.substances import substance_factors
    from symbiosis.reference import load_reference

    problems = Problems()
    parameters = load_reference(problems).quality_parameters
    assert not problems.items
    units = {"cadmium": "mg/kg", "chloride": "%", "purity": "%", "moisture": "%", "loss_on_ignition": "%",
             "temperature": "degC", "calorific_value": "MJ/kg", "Lead": "mg/kg", "antimony": "g/t",
             "brightness": "%"}
    factors = substance_factors(units, parameters)
    # Listed substances in any mass-fraction unit; an unlisted parameter only with an explicit concentration
    # unit (antimony in g/t: 1e-6 t/t per unit), never with a bare % (brightness).
    assert factors == pytest.approx({"cadmium": 1e-6, "chloride": 0.01, "Lead": 1e-6, "antimony": 1e-6})


def test_a_region_reference_folder_can_flag_its_own_parameters(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import shutil

    from symbiosis.errors import Problems
    from symbiosis.network.substances import substance_factors
    from symbiosis.reference import data_dir, load_reference

    folder = tmp_path / "reference"
    shutil.copytree(data_dir() / "reference", folder)
    with (folder / "quality_parameters.csv").open("a") as f:
        f.write("brightness,true,invented for this test,test\n")
    problems = Problems()
    parameters = load_reference(problems, directory=folder).quality_parameters
    assert not problems.items
    assert substance_factors({"brightness": "%"}, parameters) == pytest.approx({"brightness": 0.01})
    with (folder / "quality_parameters.csv").open("a") as f:
        f.write("purity,maybe,,\n")
    problems = Problems()
    load_reference(problems, directory=folder)
    located = [p for p in problems.items if p.file.endswith("quality_parameters.csv")]
    assert located and {p.column for p in located} >= {"substance", "parameter"}, problems.items


def test_kalundborg_traces_chloride_but_not_purity_moisture_or_loss_on_ignition() -> None:
    from symbiosis.candidates import candidates as build
    from symbiosis.inputs import load_region
    from symbiosis.network.substances import trace_region
    from symbiosis.reference import data_dir

    region = load_region(data_dir() / "regions" / "kalundborg")
    cand = build(region)
    tracing = trace_region(region, cand, solve_exchange(cand))
    traced = set(tracing.table["substance"]) | set(tracing.units)
    assert "chloride" in traced
    assert not traced & {"purity", "moisture", "loss_on_ignition", "temperature"}
