"""Expected values from outside the code under test: published geodesics and the tiny region solved by hand.

The reference distances are rows of GeographicLib's geodesic test set (C. F. F. Karney, "Test set for
geodesics", GeodTest.dat, 2010, doi:10.5281/zenodo.32156; the same rows open the ``testcases`` of
GeographicLib's own test suites), on WGS84, with s12 in metres to 0.1 µm. symbiosis measures with pyproj's
Geod, an implementation of the same algorithm, so only a published value can tell whether it is called
right (units, argument order, ellipsoid). The tiny region's optimum is worked out in tests/tiny_by_hand.py.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from symbiosis.candidates import candidates, geodesic_km
from symbiosis.pipeline import optimise
from tests import tiny_by_hand as hand
from tests.independent import vincenty_km

# (lat1, lon1, lat2, lon2, s12 in metres): GeodTest.dat, first two rows of GeographicLib's testcases.
PUBLISHED = [
    (35.60777, -139.44815, -11.17491, -69.95921, 8935244.5604818305),
    (55.52454, 106.05087, 77.03196, 197.18234, 4105086.1713924406),
]


@pytest.mark.parametrize(("lat1", "lon1", "lat2", "lon2", "metres"), PUBLISHED)
def test_geodesic_km_matches_the_published_test_set(lat1: float, lon1: float, lat2: float, lon2: float,
                                                    metres: float) -> None:
    got = geodesic_km(np.array([lat1]), np.array([lon1]), np.array([lat2]), np.array([lon2]))
    assert got.shape == (1,)
    assert got[0] == pytest.approx(metres / 1000.0, abs=1e-6)  # kilometres, to a millimetre


@pytest.mark.parametrize(("lat1", "lon1", "lat2", "lon2", "metres"), PUBLISHED)
def test_the_independent_vincenty_distance_matches_it_too(lat1: float, lon1: float, lat2: float, lon2: float,
                                                         metres: float) -> None:
    # Vincenty's series is good to ~0.1 mm away from antipodes: this checks the reference the tests use.
    assert vincenty_km(lat1, lon1, lat2, lon2) == pytest.approx(metres / 1000.0, abs=1e-6)


def test_tiny_arcs_are_geodesic_km_times_circuity(tiny_region) -> None:
    arcs = candidates(tiny_region).arcs.set_index("demand_facility")
    for facility, (_, _, km) in hand.EXCHANGES.items():
        assert arcs.at[facility, "distance_km"] == pytest.approx(km, rel=1e-9), facility
        assert arcs.at[facility, "transport_cost_per_t"] == pytest.approx(hand.TRANSPORT_PER_TKM * km, rel=1e-9)
        assert arcs.at[facility, "transport_co2e_per_t"] == pytest.approx(hand.TRANSPORT_CO2_PER_TKM * km, rel=1e-9)
    assert arcs.at["cement", "capacity_t_per_yr"] == pytest.approx(hand.X_CEMENT)
    assert arcs.at["far", "capacity_t_per_yr"] == pytest.approx(0.3 * 200_000 / 0.9)


def test_tiny_region_optimum_by_hand(tiny_region) -> None:
    """The whole pipeline on the tiny region against the optimum worked out in tests/tiny_by_hand.py.

    Gypsum: 20,000 t to board (saves 82.78 EUR/t); fly ash: 33,333.3 t to cement (its max_share capacity,
    saves 68.66 EUR/t), the other 6,666.7 t to far (saves 44.03 EUR/t); cost 7,025,000 → 2,787,180 EUR/yr,
    CO2e 4,130 → 2,887.9 t/yr; supply duals 22.78 and −15.97, demand duals the virgin prices.
    """
    results = optimise(tiny_region)
    k = results.kpis
    assert k["cost_bau"] == pytest.approx(hand.COST_BAU, rel=1e-12)
    assert k["cost_optimum"] == pytest.approx(hand.COST_OPTIMUM, rel=1e-9)
    assert k["net_cost_saving"] == pytest.approx(hand.COST_BAU - hand.COST_OPTIMUM, rel=1e-9)
    assert k["co2e_bau_t"] == pytest.approx(hand.CO2E_BAU, rel=1e-12)
    assert k["co2e_optimum_t"] == pytest.approx(hand.CO2E_OPTIMUM, rel=1e-9)
    assert k["waste_diverted_t"] == pytest.approx(60_000.0)
    assert k["virgin_avoided_t"] == pytest.approx(20_000 + 0.9 * 40_000)
    assert k["tkm"] == pytest.approx(hand.TKM, rel=1e-9)
    assert k["water_saved_m3"] == 0.0
    assert k["n_exchanges"] == 3 and k["n_facilities_participating"] == 4
    ex = results.exchanges.set_index("demand_facility")
    assert sorted(ex.index) == ["board", "cement", "far"]
    for facility, (amount, replaced, km) in hand.EXCHANGES.items():
        assert ex.at[facility, "amount_t_per_yr"] == pytest.approx(amount, rel=1e-7), facility
        assert ex.at[facility, "replaced_t_per_yr"] == pytest.approx(replaced, rel=1e-7), facility
        assert ex.at[facility, "distance_km"] == pytest.approx(km, rel=1e-9), facility
        assert ex.at[facility, "saving"] == pytest.approx(amount * hand.SAVING_PER_T[facility], rel=1e-7), facility
    supplies = results.supplies.set_index("supply_id")
    for supply, value in hand.SUPPLY_DUAL.items():
        assert supplies.at[supply, "shadow_price_per_t"] == pytest.approx(value, rel=1e-6), supply
    demands = results.demands.set_index("demand_id")
    for demand, price in {"board_gypsum": 25.0, "cement_clay": 12.0, "far_clay": 8.0,
                          "power.model.in.water": 0.0}.items():
        assert demands.at[demand, "shadow_price_per_t"] == pytest.approx(price, abs=1e-6), demand


def test_a_quality_window_on_one_demand(tiny_copy) -> None:
    """A max and a min on the same parameter (purity 90..99 %, virgin 95 %): the gypsum blend, 20,000 t at
    96 % and 5,000 t at 95 %, is 95.8 %, inside; the optimum is unchanged. (The post-solve check used to count
    each tonne once per bound and refuse this optimum.)"""
    from tests.conftest import load_test_region

    def window(tables) -> None:
        quality = tables["quality"]
        quality.loc[quality["flow_id"] == "board_gypsum", "virgin_value"] = "95"
        row = {"flow_id": "board_gypsum", "parameter": "purity", "value": "99", "unit": "%", "bound": "max",
               "virgin_value": "95"}
        tables["quality"] = pd.concat([quality, pd.DataFrame([row])], ignore_index=True)

    results = optimise(load_test_region(tiny_copy(window)))
    ex = results.exchanges.set_index("demand_facility")
    assert ex.at["board", "amount_t_per_yr"] == pytest.approx(hand.X_GYPSUM)
    assert results.kpis["cost_optimum"] == pytest.approx(hand.COST_OPTIMUM, rel=1e-9)
