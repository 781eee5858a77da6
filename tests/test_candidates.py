"""Candidate arcs: compatibility, distance limits (region, material, flow, override), internal reuse, the
quality screen, and agreement of the spatial index with a brute-force scan on random regions."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from symbiosis.candidates import candidates, geodesic_km
from tests.conftest import load_test_region


def test_tiny_candidates(tiny_region):
    c = candidates(tiny_region)
    arcs = c.arcs.set_index(["supply_id", "demand_id"])
    # gypsum to the board plant next door; fly ash to both cement works (fly ash's own limit is 300 km)
    assert set(arcs.index) == {("power_gypsum", "board_gypsum"), ("power.model.out.fly_ash", "cement_clay"),
                               ("power.model.out.fly_ash", "far_clay")}
    gypsum = arcs.loc[("power_gypsum", "board_gypsum")]
    expected_km = geodesic_km(np.array([55.66]), np.array([11.08]), np.array([55.67]), np.array([11.10]))[0] * 1.3
    assert gypsum.distance_km == pytest.approx(expected_km, rel=1e-12)
    assert gypsum.max_distance_km == 50  # region default
    assert gypsum.transport_cost_per_t == pytest.approx(0.10 * expected_km)
    fly = arcs.loc[("power.model.out.fly_ash", "cement_clay")]
    assert fly.max_distance_km == 300 and fly.ratio == 0.9
    # the substitution's max share 0.3 of 100,000 t clay, at ratio 0.9, caps the arc at 33,333 t of fly ash
    assert fly.capacity_t_per_yr == pytest.approx(0.3 * 100_000 / 0.9)
    assert c.parameters["circuity"] == 1.3


def test_water_demand_without_a_compatible_supply_has_no_arc(tiny_region):
    c = candidates(tiny_region)
    assert "power.model.in.water" in set(c.demands["demand_id"])
    assert "power.model.in.water" not in set(c.arcs["demand_id"])


def test_material_limit_excludes_the_distant_partner_when_tighter(tiny_copy):
    def edit(t):
        t["flows"].loc[t["flows"]["flow_id"] == "far_clay", "max_distance_km"] = "100"
    c = candidates(load_test_region(tiny_copy(edit)))
    assert "far_clay" not in set(c.arcs["demand_id"])
    screen = c.screening.set_index("supply_id").loc["power.model.out.fly_ash"]
    assert screen.n_compatible == 2 and screen.n_within_distance == 1


def test_override_max_distance_and_circuity(tiny_region):
    c = candidates(tiny_region, max_distance_km=1.0)
    assert "board_gypsum" not in set(c.arcs["demand_id"])  # 2.2 road km > 1 km
    c2 = candidates(tiny_region, circuity=2.0)
    km = c2.arcs.set_index("demand_id").loc["board_gypsum", "distance_km"]
    assert km == pytest.approx(candidates(tiny_region).arcs.set_index("demand_id").loc["board_gypsum", "distance_km"]
                               / 1.3 * 2.0)
    with pytest.raises(TypeError, match="unknown parameter"):
        candidates(tiny_region, max_distnace_km=3)


def test_arc_override_sets_distance_and_cost(tiny_copy):
    def edit(t):
        t["arcs"] = pd.DataFrame({"supply_facility": ["power"], "demand_facility": ["far"],
                                  "distance_km": ["280"], "cost_per_t": ["9.5"]})
    c = candidates(load_test_region(tiny_copy(edit)))
    arc = c.arcs.set_index("demand_id").loc["far_clay"]
    assert arc.distance_km == 280 and arc.transport_cost_per_t == 9.5


def test_internal_reuse_switch(tiny_copy):
    def edit(t):
        flows = t["flows"]
        flows.loc[len(flows)] = {**flows.iloc[4].to_dict(), "flow_id": "power_clay", "facility_id": "power",
                                 "amount": "1000", "max_secondary_share": ""}
    region = load_test_region(tiny_copy(edit))
    arcs = candidates(region).arcs
    internal = arcs[(arcs["supply_facility"] == "power") & (arcs["demand_facility"] == "power")]
    assert len(internal) == 1 and internal["distance_km"].iloc[0] == 0
    assert internal["transport_cost_per_t"].iloc[0] == 0
    none = candidates(region, internal_reuse=False).arcs
    assert not ((none["supply_facility"] == "power") & (none["demand_facility"] == "power")).any()


def test_quality_screen_needs_a_measurement(tiny_copy):
    def edit(t):
        q = t["quality"]
        q.loc[len(q)] = {"flow_id": "board_gypsum", "parameter": "chloride", "value": "100", "unit": "mg/kg",
                         "bound": "max", "virgin_value": ""}
    c = candidates(load_test_region(tiny_copy(edit)))
    assert "board_gypsum" not in set(c.arcs["demand_id"])  # the FGD gypsum has no chloride measurement
    assert c.screening.set_index("supply_id").at["power_gypsum", "n_quality_fail"] == 1


def test_quality_defaults_for_virgin_material(tiny_region):
    dq = candidates(tiny_region).demand_quality.set_index("parameter")
    assert dq.at["chloride", "virgin_value"] == 0.01  # given
    assert dq.at["purity", "virgin_value"] == 90.0  # under a min bound, the limit itself


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), limit=st.floats(5, 120))
def test_spatial_index_agrees_with_brute_force(tiny_region, seed, limit):
    rng = np.random.default_rng(seed)
    n = 30
    region = tiny_region.copy()
    lat = 55.0 + rng.uniform(-1, 1, n)
    lon = 11.0 + rng.uniform(-1.5, 1.5, n)
    region.facilities = pd.DataFrame({
        "facility_id": [f"f{i}" for i in range(n)], "name": "x", "sector": "35.11", "lat": lat, "lon": lon,
        "confidential": False, "process_model": "", "activity": math.nan, "activity_unit": ""})
    template = region.flows.iloc[0]
    rows = []
    for i in range(n):
        if rng.random() < 0.5:
            rows.append({**template.to_dict(), "flow_id": f"s{i}", "facility_id": f"f{i}", "direction": "out",
                         "category": "by_product", "material": "fgd_gypsum", "amount_t_per_yr": 100.0,
                         "exchangeable": True, "max_distance_km": math.nan})
        # some facilities hold two flows of one material, so flow pairs outnumber facility pairs
        for k in range(1 + int(rng.random() < 0.3)):
            if rng.random() < 0.5:
                rows.append({**template.to_dict(), "flow_id": f"d{i}_{k}", "facility_id": f"f{i}", "direction": "in",
                             "category": "raw_material", "material": "natural_gypsum", "amount_t_per_yr": 100.0,
                             "exchangeable": True, "max_distance_km": math.nan})
        if rng.random() < 0.3:
            rows.append({**template.to_dict(), "flow_id": f"s{i}_b", "facility_id": f"f{i}", "direction": "out",
                         "category": "waste", "material": "fgd_gypsum", "amount_t_per_yr": 50.0,
                         "exchangeable": True, "max_distance_km": math.nan})
    region.flows = pd.DataFrame(rows, columns=region.flows.columns)
    region.quality = region.quality.iloc[0:0]
    c = candidates(region, max_distance_km=limit)
    found = set(zip(c.arcs["supply_id"], c.arcs["demand_id"], strict=True))
    supplies = [r for r in rows if r["direction"] == "out"]
    demands = [r for r in rows if r["direction"] == "in"]
    expected = set()
    for s in supplies:
        for d in demands:
            i, j = int(s["facility_id"][1:]), int(d["facility_id"][1:])
            km = 0.0 if i == j else geodesic_km(lat[[i]], lon[[i]], lat[[j]], lon[[j]])[0] * 1.3
            if km <= limit:
                expected.add((s["flow_id"], d["flow_id"]))
    assert found == expected
    assert (c.arcs["distance_km"] <= c.arcs["max_distance_km"] + 1e-9).all()


def test_distance_cap_overrides_every_limit(tiny_region):
    # fly ash has its own 300 km limit; the cap of 5 km still excludes the cement works 11 km away
    c = candidates(tiny_region, max_distance_cap_km=5)
    assert set(c.arcs["demand_id"]) == {"board_gypsum"}
    assert (c.arcs["max_distance_km"] <= 5).all()
