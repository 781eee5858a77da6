"""Self-test of the bare HiGHS reference solve (tests/benchmarks/bare_highs.py) on a hand-solvable network.

Two supplies, two demands, three arcs. Supply S0 (100 t, landfill 50/t, Cl 0) and S1 (100 t, fate 20/t,
Cl 2, CV 15); demand D0 (150 t, virgin 30/t, 1 t CO2e/t, share ≤ 0.5, Cl ≤ 1) and D1 (100 t, virgin 10/t,
Cl ≤ 1 with virgin Cl 0.5, CV ≥ 10). Arcs S0→D0 (5/t), S1→D0 (1/t), S1→D1 (2/t), ratio 1.
Without capacity S0 fills D0's share (75 t); S1 → D1 is held by quality at x ≤ 0.5 y, so x = 100/3.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from symbiosis.candidates import Candidates
from tests.benchmarks.bare_highs import solve_bare


def tiny_candidates(capacity: float = np.nan) -> Candidates:
    supplies = pd.DataFrame({
        "supply_id": ["S0", "S1"], "facility_id": ["F0", "F1"], "material": ["m", "m"],
        "category": ["waste", "waste"], "amount_t_per_yr": [100.0, 100.0], "fate": ["landfill", "sold"],
        "fate_kind": ["landfill", "other"], "fate_cost_per_t": [50.0, 20.0], "fate_co2e_per_t": [0.0, 0.0],
        "lat": [55.0, 55.1], "lon": [10.0, 10.1],
    })
    demands = pd.DataFrame({
        "demand_id": ["D0", "D1"], "facility_id": ["F2", "F3"], "material": ["p", "p"],
        "material_class": ["mineral", "mineral"], "density_t_per_m3": [1.0, 1.0],
        "amount_t_per_yr": [150.0, 100.0], "virgin_price_per_t": [30.0, 10.0],
        "virgin_co2e_per_t": [1.0, 0.0], "max_secondary_share": [0.5, np.nan],
        "lat": [55.2, 55.3], "lon": [10.2, 10.3],
    })
    arcs = pd.DataFrame({
        "s": [0, 1, 1], "d": [0, 0, 1], "supply_id": ["S0", "S1", "S1"], "demand_id": ["D0", "D0", "D1"],
        "supply_facility": ["F0", "F1", "F1"], "demand_facility": ["F2", "F2", "F3"],
        "distance_km": [50.0, 10.0, 20.0], "max_distance_km": [100.0] * 3, "ratio": [1.0] * 3,
        "processing_cost_per_t": [0.0] * 3, "processing_co2e_per_t": [0.0] * 3,
        "transport_cost_per_t": [5.0, 1.0, 2.0], "transport_co2e_per_t": [0.0] * 3,
        "capacity_t_per_yr": [capacity, np.nan, np.nan],
    })
    supply_quality = pd.DataFrame({"s": [0, 1, 0, 1], "parameter": ["Cl", "Cl", "CV", "CV"],
                                   "value": [0.0, 2.0, 12.0, 15.0]})
    demand_quality = pd.DataFrame({"d": [0, 1, 1], "parameter": ["Cl", "Cl", "CV"], "bound": ["max", "max", "min"],
                                   "limit": [1.0, 1.0, 10.0], "virgin_value": [0.0, 0.5, np.nan]})
    return Candidates(supplies=supplies, demands=demands, arcs=arcs, supply_quality=supply_quality,
                      demand_quality=demand_quality, screening=pd.DataFrame(), parameters={})


def test_known_optimum() -> None:
    objective, seconds, info = solve_bare(tiny_candidates(), carbon_price=0.0)
    assert info["status"] == "Optimal"
    # 5·75 + 50·25 + 20·(200/3) + 2·(100/3) + 30·75 + 10·(200/3)
    assert objective == pytest.approx(5941.6666667, rel=1e-7)
    np.testing.assert_allclose(info["x"], [75.0, 0.0, 100.0 / 3.0], atol=1e-6)
    np.testing.assert_allclose(info["y"], [75.0, 200.0 / 3.0], atol=1e-6)
    assert seconds >= 0.0
    assert info["n_quality_rows"] == 3 and info["n_share_rows"] == 1


def test_carbon_price_prices_virgin_emissions() -> None:
    objective, _, _ = solve_bare(tiny_candidates(), carbon_price=10.0)
    assert objective == pytest.approx(5941.6666667 + 10.0 * 75.0, rel=1e-7)


def test_capacity_and_simplex_agree() -> None:
    objective, _, info = solve_bare(tiny_candidates(capacity=60.0), carbon_price=0.0, method="simplex")
    # x = (60, 15, 100/3): S1 takes D0's remaining share before D1.
    assert objective == pytest.approx(6331.6666667, rel=1e-7)
    np.testing.assert_allclose(info["x"], [60.0, 15.0, 100.0 / 3.0], atol=1e-6)


def test_bau_bound() -> None:
    objective, _, _ = solve_bare(tiny_candidates(), carbon_price=0.0)
    bau = 100 * 50 + 100 * 20 + 150 * 30 + 100 * 10
    assert objective <= bau


# --- the same hand-solved network through symbiosis's own solver ----------------------------------------


def symbiosis_candidates(capacity: float = np.nan) -> Candidates:
    """The network above as Candidates hold it: virgin_value defaulted (the limit under a min, as documented)."""
    cand = tiny_candidates(capacity)
    dq = cand.demand_quality
    cand.demand_quality = dq.assign(virgin_value=dq["virgin_value"].fillna(dq["limit"]))
    return cand


@pytest.mark.parametrize("decompose", [True, False])
def test_solve_exchange_finds_the_hand_optimum(decompose: bool) -> None:
    from symbiosis.exchange import solve_exchange
    from symbiosis.exchange.model import exchange_arrays
    from tests.independent import assert_kkt, reference_lp

    cand = symbiosis_candidates()
    sol = solve_exchange(cand, carbon_price=0.0, decompose=decompose)
    assert sol.objective == pytest.approx(5941.6666667, rel=1e-7)
    np.testing.assert_allclose(sol.x, [75.0, 0.0, 100.0 / 3.0], atol=1e-6)
    np.testing.assert_allclose(sol.y, [75.0, 200.0 / 3.0], atol=1e-6)
    np.testing.assert_allclose(sol.w, [25.0, 200.0 / 3.0], atol=1e-6)
    assert sol.objective_bau == pytest.approx(100 * 50 + 100 * 20 + 150 * 30 + 100 * 10)
    # The binding rows have positive duals: D0's share (75 = 0.5 · 150) and D1's chloride (x = y/2).
    assert sol.share_dual[0] > 1e-6
    rows = exchange_arrays(cand).quality_rows.reset_index(drop=True)
    chloride_d1 = rows.index[(rows["d"] == 1) & (rows["parameter"] == "Cl")][0]
    assert sol.quality_dual[chloride_d1] > 1e-6
    assert_kkt(reference_lp(cand), sol, rows)


def test_solve_exchange_with_a_capacity_and_a_carbon_price() -> None:
    from symbiosis.exchange import solve_exchange

    capped = solve_exchange(symbiosis_candidates(capacity=60.0), carbon_price=0.0, method="simplex")
    assert capped.objective == pytest.approx(6331.6666667, rel=1e-7)
    np.testing.assert_allclose(capped.x, [60.0, 15.0, 100.0 / 3.0], atol=1e-6)
    priced = solve_exchange(symbiosis_candidates(), carbon_price=10.0)
    assert priced.objective == pytest.approx(5941.6666667 + 10.0 * 75.0, rel=1e-7)


@pytest.mark.parametrize("seed", range(3))
def test_the_reference_solve_covers_processors_heat_and_intake(seed: int) -> None:
    """The benchmark's reference LP has the families of issue 19 too (heat amounts in MWh, intake limits,
    processors' activities): its optimum equals the pipeline's on networks that have them all."""
    from symbiosis.exchange import solve_exchange
    from tests.test_colgen import network

    c = network(seed, 25, 25, 300, n_processors=3)
    objective, _, info = solve_bare(c, carbon_price=40.0)
    assert info["status"] == "Optimal" and info["n_cols"] == len(c.arcs) + 25 + 25 + len(c.processors)
    assert objective == pytest.approx(solve_exchange(c, carbon_price=40.0).objective, rel=1e-7)


def test_the_reference_solve_on_a_generated_region_with_processors_and_heat(tmp_path) -> None:
    from symbiosis.candidates import candidates
    from symbiosis.exchange import solve_exchange
    from symbiosis.inputs import load_region
    from symbiosis.synthetic import generate_region

    cands = candidates(load_region(generate_region(200, tmp_path / "r", seed=4)))
    assert cands.processors is not None and len(cands.processors) > 0
    assert (cands.supplies["quantity"] == "energy").any()
    price = float(cands.parameters["carbon_price"])
    objective, _, info = solve_bare(cands, carbon_price=price)
    assert info["n_processors"] == len(cands.processors)
    assert objective == pytest.approx(solve_exchange(cands, carbon_price=price).objective, rel=1e-7)
