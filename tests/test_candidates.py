"""Candidate arcs: compatibility, distance limits (region, material, flow, override), internal reuse, the
quality screen, and agreement of the spatial index with a brute-force scan on random regions."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from symbiosis.candidates import _quality_fails, _stable_argsort, _unique_pairs, candidates, geodesic_km
from symbiosis.errors import InputError
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
    with pytest.raises(InputError, match="unknown parameter"):
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


def test_duplicate_substitution_row_keeps_the_better_ratio(tiny_region):
    region = tiny_region.copy()
    subs = region.reference.substitutions
    better = subs[subs["secondary_material"] == "fgd_gypsum"].assign(ratio=1.2, processing_cost_per_t=7.0)
    region.reference.substitutions = pd.concat([subs, better], ignore_index=True)
    arcs = candidates(region).arcs
    gypsum = arcs[(arcs["supply_id"] == "power_gypsum") & (arcs["demand_id"] == "board_gypsum")]
    assert len(gypsum) == 1
    assert gypsum["ratio"].iloc[0] == 1.2 and gypsum["processing_cost_per_t"].iloc[0] == 7.0
    assert arcs["s"].tolist() == sorted(arcs["s"])  # ordered by supply, then demand


def test_distance_once_per_facility_pair_equals_pyproj_per_arc(tiny_region):
    # Facility pairs recur across two substitution rows (gypsum also replaces clay here) and across the several
    # flows of one facility: the distance computed once per pair must land on every arc of that pair.
    rng = np.random.default_rng(3)
    n = 25
    region = tiny_region.copy()
    lat, lon = 55.0 + rng.uniform(-0.3, 0.3, n), 11.0 + rng.uniform(-0.5, 0.5, n)
    region.facilities = pd.DataFrame({
        "facility_id": [f"f{i}" for i in range(n)], "name": "x", "sector": "35.11", "lat": lat, "lon": lon,
        "confidential": False, "process_model": "", "activity": math.nan, "activity_unit": ""})
    template = region.flows.iloc[0].to_dict()
    rows = []
    for i in range(n):
        for k in range(1 + i % 2):
            rows.append({**template, "flow_id": f"s{i}_{k}", "facility_id": f"f{i}", "direction": "out",
                         "category": "by_product", "material": "fgd_gypsum", "amount_t_per_yr": 100.0,
                         "exchangeable": True, "max_distance_km": math.nan})
        for material in ("natural_gypsum", "clay"):
            rows.append({**template, "flow_id": f"d{i}_{material}", "facility_id": f"f{i}", "direction": "in",
                         "category": "raw_material", "material": material, "amount_t_per_yr": 100.0,
                         "exchangeable": True, "max_distance_km": math.nan, "max_secondary_share": math.nan})
    region.flows = pd.DataFrame(rows, columns=region.flows.columns)
    region.quality = region.quality.iloc[0:0]
    subs = region.reference.substitutions
    region.reference.substitutions = pd.concat(
        [subs, subs[subs["secondary_material"] == "fgd_gypsum"].assign(primary_material="clay")], ignore_index=True)
    arcs = candidates(region, max_distance_km=60.0, circuity=1.25).arcs
    pairs = arcs[["supply_facility", "demand_facility"]]
    assert pairs.duplicated().sum() > len(arcs) / 2  # most pairs carry several arcs
    i = arcs["supply_facility"].str[1:].astype(int).to_numpy()
    j = arcs["demand_facility"].str[1:].astype(int).to_numpy()
    expected = geodesic_km(lat[i], lon[i], lat[j], lon[j]) * 1.25
    expected[i == j] = 0.0
    np.testing.assert_array_equal(arcs["distance_km"].to_numpy(), expected)
    assert arcs["supply_id"].dtype == "str" and arcs["supply_facility"].dtype == "str"


@given(seed=st.integers(0, 10_000), bits=st.sampled_from([4, 16, 17, 33, 50]))
@settings(max_examples=30, deadline=None)
def test_stable_argsort_and_unique_pairs_agree_with_numpy(seed, bits):
    rng = np.random.default_rng(seed)
    key = rng.integers(0, 2**bits, int(rng.integers(0, 3000)), dtype=np.int64)
    key = np.concatenate([key, key[: len(key) // 3]])  # repeated keys: the order among equals must be kept
    np.testing.assert_array_equal(_stable_argsort(key), np.argsort(key, kind="stable"))
    distinct, number = _unique_pairs(key)
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    np.testing.assert_array_equal(distinct, first)
    np.testing.assert_array_equal(number, inverse)


@given(seed=st.integers(0, 10_000), n_parameters=st.sampled_from([1, 3, 64, 65, 130]))
@settings(max_examples=30, deadline=None)
def test_quality_bit_masks_agree_with_a_set_check(seed, n_parameters):
    rng = np.random.default_rng(seed)
    n_s, n_d, n_arcs = 20, 15, 300
    names = np.array([f"p{k}" for k in range(n_parameters)])
    # Supplies measure almost everything and demands bound about ten parameters each, so that arcs both pass and
    # fail, also on parameters past the first 64 (later mask words); one parameter is measured, never bounded.
    s_grid, p_grid = np.nonzero(rng.random((n_s, n_parameters)) < 0.99)
    measured = pd.DataFrame({"s": np.append(s_grid, 0), "parameter": np.append(names[p_grid], "only_measured"),
                             "value": 1.0})
    d_grid, q_grid = np.nonzero(rng.random((n_d, n_parameters)) < 10 / n_parameters)
    bounded = pd.DataFrame({"d": d_grid, "parameter": names[q_grid], "bound": "max", "limit": 1.0,
                            "virgin_value": 0.0})
    arc_s, arc_d = rng.integers(0, n_s, n_arcs), rng.integers(0, n_d, n_arcs)
    has = set(zip(measured["s"], measured["parameter"], strict=True))
    needs = bounded.groupby("d")["parameter"].apply(set).to_dict()
    expected = [any((s, p) not in has for p in needs.get(d, ())) for s, d in zip(arc_s, arc_d, strict=True)]
    fails = _quality_fails(arc_s, arc_d, measured, bounded, n_s, n_d)
    np.testing.assert_array_equal(fails, expected)


def test_a_better_ratio_beyond_its_limit_does_not_knock_out_a_row_within_its_own(tiny_region):
    # Two substitution rows make the same pair compatible: the better ratio (1.2) allows 1 km only, the
    # worse (the shipped row) the default limit. The pair is farther than 1 km: the arc is the shipped row's.
    # (An arc override with the route's length makes the pair a candidate of both rows whatever their radius.)
    region = tiny_region.copy()
    region.arcs = pd.DataFrame({"supply_facility": ["power"], "demand_facility": ["board"], "distance_km": [4.0],
                                "cost_per_t": [math.nan], "co2e_per_t": [math.nan]})
    subs = region.reference.substitutions
    shipped = candidates(region).arcs
    gypsum = (shipped["supply_id"] == "power_gypsum") & (shipped["demand_id"] == "board_gypsum")
    assert gypsum.sum() == 1 and shipped.loc[gypsum, "distance_km"].iloc[0] > 1.0
    better = subs[subs["secondary_material"] == "fgd_gypsum"].assign(ratio=1.2, max_distance_km=1.0)
    region.reference.substitutions = pd.concat([subs, better], ignore_index=True)
    arcs = candidates(region).arcs
    again = arcs[(arcs["supply_id"] == "power_gypsum") & (arcs["demand_id"] == "board_gypsum")]
    assert len(again) == 1
    assert again["ratio"].iloc[0] == shipped.loc[gypsum, "ratio"].iloc[0]
    assert len(arcs) == len(shipped)


def test_geodesic_on_threads_equals_one_call(monkeypatch):
    import importlib

    module = importlib.import_module("symbiosis.candidates")  # the package exports a function of that name
    rng = np.random.default_rng(0)
    lat1, lat2 = rng.uniform(-60, 70, (2, 1001))
    lon1, lon2 = rng.uniform(-180, 180, (2, 1001))
    one = geodesic_km(lat1, lon1, lat2, lon2)
    monkeypatch.setattr(module, "GEODESIC_PARALLEL_FROM", 100)
    monkeypatch.setattr(module, "usable_cpus", lambda: 4)
    threaded = geodesic_km(lat1, lon1, lat2, lon2)
    np.testing.assert_array_equal(threaded, one)
    assert one.min() > 0 and one.max() < 20_040  # half the meridian: a distance, not an azimuth
