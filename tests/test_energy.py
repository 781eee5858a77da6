"""Heat exchanges (steam reach, losses, temperature, heat pumps) and the mixed-integer mode, hand-solved.

The region tests/data/regions/heat has invented figures chosen so that each case can be solved by hand:
a steam supply 3 km from a steam user (arcs.csv fixes the distance), a second one 8 km from its only user
(beyond steam's 5 km reach), warm effluent at 40 °C 2 km from a town needing 90 °C (a heat pump), and a
dairy's 40 °C heat 1 km from a dryer needing 150 °C (a lift no heat pump makes). Carrier figures come from
data/reference/energy_carriers.csv, heat pump figures from symbiosis.energy.heat.HEAT_PUMP; the tests read
them from there rather than repeating them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import LinearConstraint, linprog, milp

from symbiosis.balances import balances_after
from symbiosis.candidates import candidates
from symbiosis.energy.heat import HEAT_PUMP, heat_pump_cop
from symbiosis.energy.mip import MipExchangeModel, connection_costs, link_bounds, solve_mip
from symbiosis.exchange import solve_exchange
from symbiosis.inputs import load_region
from symbiosis.pipeline import optimise
from symbiosis.reference import data_dir
from symbiosis.results import REASONS, check_solution
from tests.helpers_exchange import instances, make_candidates

HEAT = Path(__file__).parent / "data" / "regions" / "heat"
CARRIERS = pd.read_csv(data_dir() / "reference" / "energy_carriers.csv").set_index("carrier")


def _steam() -> tuple[float, float]:
    """(delivered ratio, pipe cost per MWh) of the 3 km steam main."""
    return 1.0 - CARRIERS.at["steam", "loss_fraction_per_km"] * 3.0, CARRIERS.at["steam", "pipe_cost_per_mwh_km"] * 3.0


def _heat_pump() -> tuple[float, float, float]:
    """(COP, delivered ratio, pipe cost per MWh) of the 40 °C effluent lifted to 90 °C over 2 km."""
    cop = 0.5 * (90 + 273.15) / (90 - 40)
    ratio = (1.0 - CARRIERS.at["waste_heat", "loss_fraction_per_km"] * 2.0) * cop / (cop - 1.0)
    return cop, ratio, CARRIERS.at["waste_heat", "pipe_cost_per_mwh_km"] * 2.0


@pytest.fixture(scope="module")
def heat_region():  # type: ignore[no-untyped-def]
    return load_region(HEAT)


@pytest.fixture(scope="module")
def heat_results(heat_region):  # type: ignore[no-untyped-def]
    return optimise(heat_region)


def test_steam_within_reach_loses_exactly_loss_per_km(heat_region, heat_results) -> None:  # type: ignore[no-untyped-def]
    cands = candidates(heat_region)
    steam = cands.arcs[cands.arcs["supply_id"] == "plant_steam"]
    ratio, pipe = _steam()
    assert len(steam) == 1 and steam["distance_km"].iloc[0] == 3.0
    assert steam["ratio"].iloc[0] == pytest.approx(0.97, abs=1e-12) == ratio
    assert steam["transport_cost_per_t"].iloc[0] == pytest.approx(pipe)
    ex = heat_results.exchanges.set_index("supply_id").loc["plant_steam"]
    # The refinery's 40,000 MWh are met whole: 40,000 / 0.97 MWh leave the plant, 3 % is lost on the way.
    assert ex["delivered_mwh_per_yr"] == pytest.approx(40_000.0)
    assert ex["amount_mwh_per_yr"] == pytest.approx(40_000.0 / 0.97)
    assert ex["amount_mwh_per_yr"] - ex["delivered_mwh_per_yr"] == pytest.approx(0.03 * 40_000.0 / 0.97)
    assert ex["quantity"] == "energy"


def test_steam_beyond_the_carrier_reach_is_screened(heat_region, heat_results) -> None:  # type: ignore[no-untyped-def]
    cands = candidates(heat_region)
    assert (cands.arcs["supply_id"] != "boiler_steam").all()
    reason = heat_results.supplies.set_index("supply_id").loc["boiler_steam"]
    assert reason["reason"] == "too_far_for_steam"
    assert "MWh/yr" in reason["reason_detail"] and " t/yr" not in reason["reason_detail"]


def test_the_carrier_reach_holds_even_where_the_flow_allows_further(tmp_path: Path) -> None:
    """The flow's own max_distance_km (20 km) lets the distance screen pass the 8 km pair; steam still cannot go
    that far (energy_carriers.csv: 5 km), so the heat screen drops it and says why."""
    copy = tmp_path / "heat"
    shutil.copytree(HEAT, copy)
    flows = pd.read_csv(copy / "flows.csv", dtype=str, keep_default_na=False)
    flows["max_distance_km"] = np.where(flows["flow_id"].isin(["boiler_steam", "pharma_steam"]), "20", "")
    flows.to_csv(copy / "flows.csv", index=False)
    region = load_region(copy)
    cands = candidates(region)
    screening = cands.screening.set_index("supply_id")
    assert screening.at["boiler_steam", "n_within_distance"] == 1
    assert screening.at["boiler_steam", "n_too_far_for_carrier"] == 1
    assert (cands.arcs["supply_id"] != "boiler_steam").all()
    assert optimise(region).supplies.set_index("supply_id").at["boiler_steam", "reason"] == "too_far_for_steam"


def test_too_cold_without_a_feasible_heat_pump(heat_region, heat_results) -> None:  # type: ignore[no-untyped-def]
    # 40 °C to 150 °C is a 110 K lift, beyond the heat pump's 80 K: no arc, reason too_cold.
    assert np.isnan(heat_pump_cop(np.array([40.0]), np.array([150.0])))[0]
    cands = candidates(heat_region)
    assert (cands.arcs["supply_id"] != "dairy_heat").all()
    assert cands.screening.set_index("supply_id").at["dairy_heat", "n_too_cold"] == 1
    assert heat_results.supplies.set_index("supply_id").at["dairy_heat", "reason"] == "too_cold"
    assert set(heat_results.supplies["reason"]) <= set(REASONS)  # the documented list names every reason given


def test_a_40_degree_supply_reaches_a_90_degree_demand_only_through_a_heat_pump(heat_region, heat_results) -> None:  # type: ignore[no-untyped-def]
    cop, ratio, pipe = _heat_pump()
    assert cop == pytest.approx(3.6315)
    arc = candidates(heat_region).arcs.set_index("supply_id").loc["wwtp_heat"]
    assert arc["heat_pump_cop"] == pytest.approx(cop)
    assert arc["ratio"] == pytest.approx(ratio)
    assert arc["electricity_mwh_per_mwh"] == pytest.approx(1.0 / (cop - 1.0))
    assert arc["processing_cost_per_t"] == pytest.approx(HEAT_PUMP.electricity_price_per_mwh / (cop - 1.0))
    assert arc["processing_co2e_per_t"] == pytest.approx(HEAT_PUMP.electricity_co2e_per_mwh / (cop - 1.0))
    ex = heat_results.exchanges.set_index("supply_id").loc["wwtp_heat"]
    source = 20_000.0 / ratio
    assert ex["amount_mwh_per_yr"] == pytest.approx(source)
    assert ex["delivered_mwh_per_yr"] == pytest.approx(20_000.0)
    assert ex["heat_pump_electricity_mwh_per_yr"] == pytest.approx(source / (cop - 1.0))


def test_heat_region_optimum_by_hand(heat_results) -> None:  # type: ignore[no-untyped-def]
    steam_ratio, steam_pipe = _steam()
    cop, hp_ratio, hp_pipe = _heat_pump()
    bau = 100_000 * 2 + 50_000 * 2 + 40_000 * 35 + 30_000 * 35 + 20_000 * 30 + 8_000 * 30
    x_steam = 40_000 / steam_ratio
    x_hp = 20_000 / hp_ratio
    steam_saving = 40_000 * 35 + 2 * x_steam - steam_pipe * x_steam
    hp_saving = 20_000 * 30 - x_hp * (hp_pipe + HEAT_PUMP.electricity_price_per_mwh / (cop - 1.0))
    k = heat_results.kpis
    assert k["cost_bau"] == pytest.approx(bau)
    assert k["cost_optimum"] == pytest.approx(bau - steam_saving - hp_saving)
    assert k["heat_delivered_mwh"] == pytest.approx(60_000.0)
    assert k["heat_shipped_mwh"] == pytest.approx(x_steam + x_hp)
    assert k["heat_pump_electricity_mwh"] == pytest.approx(x_hp / (cop - 1.0))
    assert k["fuel_avoided_mwh"] == pytest.approx(60_000.0 * CARRIERS.at["steam", "fuel_mwh_per_mwh"])


def test_mwh_never_count_as_tonnes(tmp_path: Path) -> None:
    """A gypsum exchange beside the heat ones: the tonne KPIs are those of the gypsum alone."""
    copy = tmp_path / "heat"
    shutil.copytree(HEAT, copy)
    with open(copy / "flows.csv", "a") as handle:
        handle.write("plant_gypsum,plant,out,by_product,fgd_gypsum,1000,t,landfill,60,EUR/t,,,,weighbridge,\n"
                     "refinery_gypsum,refinery,in,raw_material,natural_gypsum,5000,t,,25,EUR/t,,,,invoice,\n")
    results = optimise(load_region(copy))
    ex = results.exchanges
    mass, heat = ex[ex["quantity"] == "mass"], ex[ex["quantity"] == "energy"]
    assert len(mass) == 1 and len(heat) == 2
    assert heat["amount_t_per_yr"].isna().all() and heat["replaced_t_per_yr"].isna().all()
    assert mass["amount_mwh_per_yr"].isna().all()
    k = results.kpis
    assert k["waste_diverted_t"] == pytest.approx(1000.0)
    assert k["virgin_avoided_t"] == pytest.approx(float(mass["replaced_t_per_yr"].sum()))
    assert k["virgin_avoided_t"] < 1000.0  # fgd gypsum ratio < 1; 60,000 MWh would show here if summed in
    assert k["tkm"] == pytest.approx(1000.0 * 3.0)
    supplies = results.supplies.set_index("supply_id")
    assert np.isnan(supplies.at["plant_steam", "exchanged_t_per_yr"])
    assert supplies.at["plant_steam", "exchanged_mwh_per_yr"] == pytest.approx(40_000.0 / 0.97)


def test_energy_balances_after_the_optimum(heat_region, heat_results) -> None:  # type: ignore[no-untyped-def]
    """Each facility's energy closure is unchanged by the exchanges; the pipe's loss and the heat pump's
    electricity are explicit lines."""
    before = heat_results.balances.table.set_index(["facility_id", "quantity"])["closure"]
    after = heat_results.balances_after.table.set_index(["facility_id", "quantity"])["closure"]
    assert after.reindex(before.index).to_numpy() == pytest.approx(before.to_numpy())
    flows = balances_after(heat_region, heat_results.exchanges).flows
    loss = flows[flows["flow_id"] == "refinery_steam.substitution_difference"]
    assert loss["direction"].tolist() == ["out"]
    assert loss["amount_mwh_per_yr"].iloc[0] == pytest.approx(0.03 * 40_000 / 0.97)
    gain = flows[flows["flow_id"] == "town_heat.substitution_difference"]
    assert gain["direction"].tolist() == ["in"]
    assert flows["amount_t_per_yr"][flows["quantity"] == "energy"].isna().all()


# --- an independent cross-check of the heat LP from the raw files -------------------------------------------


def test_heat_optimum_matches_linprog_built_from_the_raw_files(heat_results) -> None:  # type: ignore[no-untyped-def]
    """The heat LP rebuilt from flows.csv, arcs.csv, quality.csv and energy_carriers.csv with the formulas of
    docs/formulation.md (ρ = (1 − loss·km) · COP/(COP − 1) when lifted), solved by scipy's linprog."""
    flows = pd.read_csv(HEAT / "flows.csv").set_index("flow_id")
    quality = pd.read_csv(HEAT / "quality.csv").set_index("flow_id")["value"]
    pairs = pd.read_csv(HEAT / "arcs.csv")
    sup = flows[flows["direction"] == "out"]
    dem = flows[flows["direction"] == "in"]
    rows = []
    for pair in pairs.itertuples():
        s = sup.index[sup["facility_id"] == pair.supply_facility][0]
        d = dem.index[dem["facility_id"] == pair.demand_facility][0]
        carrier = CARRIERS.loc[sup.at[s, "material"]]
        if pair.distance_km > carrier["max_distance_km"]:
            continue
        ratio = 1 - carrier["loss_fraction_per_km"] * pair.distance_km
        cost = carrier["pipe_cost_per_mwh_km"] * pair.distance_km
        t_s, t_d = quality[s], quality[d]
        if t_s < t_d:
            if t_d - t_s > 80:
                continue
            cop = min(0.5 * (t_d + 273.15) / (t_d - t_s), 6.0)
            ratio *= cop / (cop - 1)
            cost += 100.0 / (cop - 1)
        rows.append((list(sup.index).index(s), list(dem.index).index(d), ratio, cost))
    n_a, n_s, n_d = len(rows), len(sup), len(dem)
    c = np.r_[[r[3] for r in rows], sup["price"].to_numpy(float), dem["price"].to_numpy(float)]
    a_eq = np.zeros((n_s + n_d, n_a + n_s + n_d))
    for k, (s, d, ratio, _cost) in enumerate(rows):
        a_eq[s, k], a_eq[n_s + d, k] = 1.0, ratio
    a_eq[np.arange(n_s), n_a + np.arange(n_s)] = 1.0
    a_eq[n_s + np.arange(n_d), n_a + n_s + np.arange(n_d)] = 1.0
    b_eq = np.r_[sup["amount"].to_numpy(float), dem["amount"].to_numpy(float)]
    res = linprog(c, A_eq=a_eq, b_eq=b_eq, bounds=(0, None), method="highs")
    assert res.status == 0
    assert heat_results.kpis["objective_optimum"] == pytest.approx(res.fun, rel=1e-9)


# --- the mixed-integer mode ---------------------------------------------------------------------------------


def test_a_fixed_cost_makes_the_heat_pump_connection_not_worth_building(heat_region, heat_results) -> None:  # type: ignore[no-untyped-def]
    """The heat pump link saves less a year than its 2 km pipe costs (2 × fixed_cost_per_km_yr): the LP
    builds it, the MIP does not; the steam main (3 km) is worth its fixed cost."""
    cop, hp_ratio, hp_pipe = _heat_pump()
    x_hp = 20_000 / hp_ratio
    hp_saving = 20_000 * 30 - x_hp * (hp_pipe + 100.0 / (cop - 1.0))
    hp_fixed = 2 * CARRIERS.at["waste_heat", "fixed_cost_per_km_yr"]
    steam_fixed = 3 * CARRIERS.at["steam", "fixed_cost_per_km_yr"]
    assert 0 < hp_saving < hp_fixed
    mip = optimise(heat_region, mode="mip")
    assert set(mip.exchanges["supply_id"]) == {"plant_steam"}
    assert set(heat_results.exchanges["supply_id"]) == {"plant_steam", "wwtp_heat"}
    k = mip.kpis
    assert k["objective_optimum"] == pytest.approx(heat_results.kpis["objective_optimum"] + hp_saving + steam_fixed)
    assert k["cost_optimum"] == pytest.approx(k["objective_optimum"])  # the fixed cost is paid in cost too
    assert k["mip_n_binaries"] == 2 and k["mip_n_built"] == 1
    assert k["mip_fixed_cost"] == pytest.approx(steam_fixed)
    # With the tightest bounds the relaxation is exact here: each link carries its bound or nothing.
    assert k["mip_lp_relaxation_objective"] == pytest.approx(k["objective_optimum"])
    assert k["mip_relaxation_gap"] == pytest.approx(0.0, abs=1e-9)
    assert k["mip_highs_mip_gap"] <= 1e-6
    reason = mip.supplies.set_index("supply_id").loc["wwtp_heat"]
    assert reason["reason"] == "connection_not_built" and f"{hp_fixed:,.6g}" in reason["reason_detail"]
    assert set(mip.supplies["reason"]) <= set(REASONS)


def _gap_case() -> object:
    """One 100 t supply, two 60 t demands (virgin 10 /t) with a 300 fixed cost each, and a third demand whose
    bound is its capacity (45) below its share (0.5 × 80 / 0.8 = 50), with a prohibitive fixed cost."""
    cand = make_candidates(
        [{"amount_t_per_yr": 100.0}],
        [{"amount_t_per_yr": 60.0, "virgin_price_per_t": 10.0}, {"amount_t_per_yr": 60.0, "virgin_price_per_t": 10.0},
         {"amount_t_per_yr": 80.0, "virgin_price_per_t": 1.0, "max_secondary_share": 0.5}],
        [{"s": 0, "d": 0}, {"s": 0, "d": 1}, {"s": 0, "d": 2, "ratio": 0.8, "capacity_t_per_yr": 45.0}])
    cand.arcs["fixed_cost_per_yr"] = [300.0, 300.0, 1e6]  # type: ignore[attr-defined]
    cand.arcs["min_flow"] = 0.0  # type: ignore[attr-defined]
    return cand


def test_the_relaxation_uses_the_tightest_bounds_and_the_gap_is_reported() -> None:
    cand = _gap_case()
    model = MipExchangeModel(cand, carbon_price=0.0)  # type: ignore[arg-type]
    assert model.arrays.link_bound.tolist() == pytest.approx([60.0, 60.0, 45.0])  # type: ignore[union-attr]
    solution = model.solve()
    bau = 60 * 10 * 2 + 80 * 1
    # MIP: both links built (400 net beats one link's 300); relaxation: 100 t at 300/60 per t, i.e. 500 net.
    assert solution.objective == pytest.approx(bau - 400.0)
    mip = solution.parameters["mip"]
    assert mip["lp_relaxation_objective"] == pytest.approx(bau - 500.0)
    assert mip["relaxation_gap"] == pytest.approx(100.0 / (bau - 400.0))
    assert mip["n_built"] == 2 and mip["fixed_cost"] == pytest.approx(600.0)
    assert solution.x.tolist() == pytest.approx([sorted(solution.x[:2].tolist())[0], solution.x[1], 0.0])
    assert solution.x[:2].sum() == pytest.approx(100.0)
    check_solution(cand, solution)  # type: ignore[arg-type]
    # The duals are those of the LP with the binaries fixed: the supply is scarce, worth the virgin price.
    assert solution.supply_dual[0] == pytest.approx(10.0)


def test_a_minimum_size_above_what_an_arc_can_carry_keeps_it_unbuilt() -> None:
    cand = _gap_case()
    cand.arcs["fixed_cost_per_yr"] = 0.0  # type: ignore[attr-defined]
    cand.arcs["min_flow"] = [70.0, 0.0, 0.0]  # type: ignore[attr-defined]
    solution = solve_mip(cand, carbon_price=0.0)  # type: ignore[arg-type]
    assert solution.x[0] == pytest.approx(0.0)
    assert solution.x[1] == pytest.approx(60.0)


def _milp_optimum(cand: object, fixed: np.ndarray) -> float:
    """The MIP from the raw candidate tables (u_a recomputed here), solved by scipy.optimize.milp."""
    arcs, sup, dem = cand.arcs, cand.supplies, cand.demands  # type: ignore[attr-defined]
    n_a, n_s, n_d = len(arcs), len(sup), len(dem)
    n = 2 * n_a + n_s + n_d
    c = np.r_[arcs["transport_cost_per_t"] + arcs["processing_cost_per_t"], sup["fate_cost_per_t"],
              dem["virgin_price_per_t"], fixed]
    a_s, r_d = sup["amount_t_per_yr"].to_numpy(float), dem["amount_t_per_yr"].to_numpy(float)
    share = dem["max_secondary_share"].to_numpy(float)
    constraints = []
    eq = np.zeros((n_s + n_d, n))
    share_rows = np.zeros((n_d, n))
    link = np.zeros((n_a, n))
    value = {(q.s, q.parameter): q.value for q in cand.supply_quality.itertuples()}  # type: ignore[attr-defined]
    for k, arc in enumerate(arcs.itertuples()):
        eq[arc.s, k], eq[n_s + arc.d, k] = 1.0, arc.ratio
        share_rows[arc.d, k] = arc.ratio
        u = min(a_s[arc.s], r_d[arc.d] / arc.ratio, share[arc.d] * r_d[arc.d] / arc.ratio,
                np.inf if np.isnan(arc.capacity_t_per_yr) else arc.capacity_t_per_yr)
        link[k, k], link[k, n_a + n_s + n_d + k] = 1.0, -u
    eq[np.arange(n_s), n_a + np.arange(n_s)] = 1.0
    eq[n_s + np.arange(n_d), n_a + n_s + np.arange(n_d)] = 1.0
    constraints.append(LinearConstraint(eq, np.r_[a_s, r_d], np.r_[a_s, r_d]))
    constraints.append(LinearConstraint(share_rows, -np.inf, share * r_d))
    constraints.append(LinearConstraint(link, -np.inf, 0.0))
    for q in cand.demand_quality.itertuples():  # type: ignore[attr-defined]
        row = np.zeros(n)
        for k, arc in enumerate(arcs.itertuples()):
            if arc.d == q.d:
                row[k] = value[(arc.s, q.parameter)] - q.limit
        row[n_a + n_s + q.d] = q.virgin_value - q.limit
        constraints.append(LinearConstraint(row, -np.inf, 0.0) if q.bound == "max" else
                           LinearConstraint(row, 0.0, np.inf))
    # Intake limits (t/yr received), per demand and per facility over its demands (the instances draw them).
    d_of_arc = arcs["d"].to_numpy()
    own = dem.get("max_intake_t_per_yr", pd.Series(np.nan, index=dem.index)).to_numpy(float)
    for d in np.flatnonzero(~np.isnan(own)):
        row = np.zeros(n)
        row[:n_a] = (d_of_arc == d).astype(float)
        constraints.append(LinearConstraint(row, -np.inf, own[d]))
    per_facility = dem.get("facility_intake_t_per_yr", pd.Series(np.nan, index=dem.index)).to_numpy(float)
    facility = dem["facility_id"].to_numpy()
    for f in sorted(set(facility[~np.isnan(per_facility)])):
        mine = np.flatnonzero(facility == f)
        row = np.zeros(n)
        row[:n_a] = np.isin(d_of_arc, mine).astype(float)
        constraints.append(LinearConstraint(row, -np.inf, np.nanmin(per_facility[mine])))
    upper = np.r_[np.where(np.isnan(arcs["capacity_t_per_yr"]), np.inf, arcs["capacity_t_per_yr"]),
                  np.full(n_s + n_d, np.inf), np.ones(n_a)]
    from scipy.optimize import Bounds

    res = milp(c, constraints=constraints, integrality=np.r_[np.zeros(n_a + n_s + n_d), np.ones(n_a)],
               bounds=Bounds(np.zeros(n), upper), options={"mip_rel_gap": 1e-9})
    assert res.status == 0, res.message
    return float(res.fun)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cand=instances(), costs=st.lists(st.integers(0, 5000), min_size=36, max_size=36), zero=st.booleans())
def test_mip_is_no_better_than_the_lp_equal_without_fixed_costs_and_matches_scipy_milp(
        cand: object, costs: list[int], zero: bool) -> None:
    n_a = len(cand.arcs)  # type: ignore[attr-defined]
    fixed = np.zeros(n_a) if zero else np.array(costs[:n_a], dtype=float)
    cand.arcs["fixed_cost_per_yr"] = fixed  # type: ignore[attr-defined]
    cand.arcs["min_flow"] = 0.0  # type: ignore[attr-defined]
    lp = solve_exchange(cand, carbon_price=0.0)  # type: ignore[arg-type]
    mip = solve_mip(cand, carbon_price=0.0)  # type: ignore[arg-type]
    scale = max(1.0, abs(lp.objective))
    assert mip.objective >= lp.objective - 1e-6 * scale
    if zero:
        assert mip.objective == pytest.approx(lp.objective, rel=1e-6, abs=1e-6)
    relaxation = mip.parameters["mip"]["lp_relaxation_objective"]
    if n_a:
        assert relaxation <= mip.objective + 1e-6 * scale
        assert mip.objective == pytest.approx(_milp_optimum(cand, fixed), rel=1e-6, abs=1e-5)
    check_solution(cand, mip)  # type: ignore[arg-type]
    if mip.parameters["mip"]["n_binaries"]:
        built = np.zeros(n_a, dtype=bool)
        built[mip.parameters["mip"]["built"]] = True
        bound = link_bounds(MipExchangeModel(cand, carbon_price=0.0).arrays, np.arange(n_a))  # type: ignore[arg-type]
        # nothing flows on a link not built (a link with bound 0 carries nothing anyway)
        assert (mip.x[~built & (bound > 0)] <= 1e-6).all()


def test_link_bounds_take_the_smallest_figure() -> None:
    from symbiosis.exchange.model import exchange_arrays

    arrays = exchange_arrays(_gap_case())  # type: ignore[arg-type]
    assert link_bounds(arrays, np.arange(3)).tolist() == pytest.approx([60.0, 60.0, 45.0])


def test_link_bounds_follow_processor_capacity_and_intake_limits(tmp_path: Path) -> None:
    """u_a was the business-as-usual amount on a processor's rows: a MIP whose fixed costs are all 0 came out
    3.5 times the LP (374,145 against 107,458) because the digestate link could not carry more than the
    digester makes today. Bounds now take yield × capacity there, and the receivers' intake limits."""
    from symbiosis.exchange.model import exchange_arrays

    region_dir = tmp_path / "processor"
    shutil.copytree(Path(__file__).parent / "data" / "regions" / "processor", region_dir)
    (region_dir / "arcs.csv").write_text("supply_facility,demand_facility,fixed_cost_per_yr\n"
                                         "brewery,digester,0\ndigester,farm,0\n", encoding="utf-8")
    region = load_region(region_dir)
    lp, mip = optimise(region), optimise(region, mode="mip")
    assert mip.kpis["mip_n_binaries"] == 2
    assert mip.kpis["objective_optimum"] == pytest.approx(lp.kpis["objective_optimum"], rel=1e-9)
    # The digestate link's bound is its yield per t digested × the digester's capacity (30,000 t/yr).
    cands = candidates(region)
    arrays = exchange_arrays(cands)
    digestate = int(np.flatnonzero(cands.arcs["supply_facility"].to_numpy() == "digester")[0])
    yield_per_t = float(arrays.out_per_unit[0])
    farm = arrays.arc_d[digestate]
    assert link_bounds(arrays, np.array([digestate]))[0] == pytest.approx(
        np.nanmin([yield_per_t * 30_000, arrays.share[farm] * arrays.demand_amount[farm] / arrays.ratio[digestate],
                   arrays.capacity[digestate]]))
    assert yield_per_t * 30_000 > arrays.supply_amount[arrays.arc_s[digestate]]  # the old bound, 4,697.5 t
    # An intake limit on the farm's demand tightens it further.
    arrays.intake_limit = np.full(arrays.n_demands, np.nan)
    arrays.intake_limit[arrays.arc_d[digestate]] = 123.0
    assert link_bounds(arrays, np.array([digestate]))[0] == pytest.approx(123.0)


# --- energy balances with a stated efficiency ----------------------------------------------------------------


@pytest.mark.parametrize("efficiency", [None, 0.9])
def test_a_model_efficiency_accounts_for_the_expected_conversion_loss(tmp_path: Path, efficiency: float | None) -> None:
    """A gas boiler model: 1.11 MWh of gas in, 1 MWh of steam out. Without an efficiency, the 0.11 MWh missing
    (9.9 % of inputs) is an open energy balance; at a stated 90 % the expected loss is 0.111 MWh and what is
    left open (−0.001 MWh per MWh of steam) is within tolerance (per MWh of activity)."""
    models = tmp_path / "models"
    models.mkdir()
    stated = f"energy_efficiency: {efficiency}\n" if efficiency is not None else ""
    (models / "gas_boiler.yaml").write_text(
        "id: gas_boiler\nname: Test gas boiler\nactivity_unit: MWh\nreference_product: steam\n" + stated
        + "flows:\n"
        "  - {direction: in, category: energy, material: natural_gas, amount: 1.11, unit: MWh, source: invented}\n"
        "  - {direction: out, category: product, material: steam, amount: 1.0, unit: MWh, source: invented}\n")
    region_dir = tmp_path / "region"
    shutil.copytree(HEAT, region_dir)
    with open(region_dir / "facilities.csv", "a") as handle:
        handle.write("gas_boiler,Gas boiler house,35.30,59.00,11.00,false,gas_boiler,1000,MWh\n")
    region = load_region(region_dir, models_directory=models)
    from symbiosis.balances import balances

    row = balances(region).table.set_index(["facility_id", "quantity"]).loc[("gas_boiler", "energy")]
    assert row["inputs"] == pytest.approx(1110.0) and row["outputs"] == pytest.approx(1000.0)
    if efficiency is None:
        assert row["expected_loss"] == 0.0
        assert row["status"].startswith("warning: energy balance open: 110 MWh/yr unaccounted")
    else:
        assert row["expected_loss"] == pytest.approx(111.0)
        assert row["status"] == "ok" and row["within_tolerance"]


def test_check_solution_catches_flow_on_a_connection_not_built() -> None:
    from symbiosis.balances import ConservationError

    cand = _gap_case()
    solution = solve_mip(cand, carbon_price=0.0)  # type: ignore[arg-type]
    check_solution(cand, solution)  # type: ignore[arg-type]
    solution.parameters["mip"]["built"] = [0]  # pretend the second link was not built: its 40 t are then illegal
    with pytest.raises(ConservationError, match="not built"):
        check_solution(cand, solution)  # type: ignore[arg-type]


def test_a_heat_supply_without_a_temperature_is_screened_where_a_demand_bounds_one(tmp_path: Path) -> None:
    copy = tmp_path / "heat"
    shutil.copytree(HEAT, copy)
    quality = pd.read_csv(copy / "quality.csv", dtype=str, keep_default_na=False)
    quality[quality["flow_id"] != "plant_steam"].to_csv(copy / "quality.csv", index=False)
    results = optimise(load_region(copy))
    assert results.supplies.set_index("supply_id").at["plant_steam", "reason"] == "quality_screen"


# --- outputs: heat apart from tonnes on the map and in the Sankeys --------------------------------------------


@pytest.fixture(scope="module")
def mixed_results(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """The heat region with a gypsum exchange (t) and a water exchange (6 Mt/yr) beside the heat ones."""
    copy = tmp_path_factory.mktemp("mixed") / "heat"
    shutil.copytree(HEAT, copy)
    with open(copy / "flows.csv", "a") as handle:
        handle.write("plant_gypsum,plant,out,by_product,fgd_gypsum,1000,t,landfill,60,EUR/t,,,,weighbridge,\n"
                     "refinery_gypsum,refinery,in,raw_material,natural_gypsum,5000,t,,25,EUR/t,,,,invoice,\n"
                     "plant_effluent,plant,out,wastewater,treated_wastewater,6000000,t,sewer,0.5,EUR/t,,,,meter,\n"
                     "refinery_water,refinery,in,water,process_water,12000000,t,,0.8,EUR/t,,,,invoice,\n")
    return optimise(load_region(copy))


def _sankey_total(fig) -> float:  # type: ignore[no-untyped-def]
    return float(sum(fig.data[0].link.value)) if fig.data else 0.0


def test_sankeys_keep_mwh_apart_from_tonnes_and_water_apart(mixed_results) -> None:  # type: ignore[no-untyped-def]
    from symbiosis.outputs.report import network_figures
    from symbiosis.outputs.sankey import energy_sankey, network_sankey

    ex = mixed_results.exchanges
    water = ex["material"].isin(["treated_wastewater"])
    assert water.any(), "the test needs a water exchange"
    heat_after = _sankey_total(energy_sankey(mixed_results, public=False))
    heat = mixed_results.supplies[mixed_results.supplies["quantity"] == "energy"]
    heat_demands = mixed_results.demands[mixed_results.demands["quantity"] == "energy"]
    assert heat_after == pytest.approx(heat["amount_mwh_per_yr"].sum() + heat_demands["virgin_mwh_per_yr"].sum())
    materials = network_sankey(mixed_results, public=False, water=False)
    assert "MWh" not in materials.layout.title.text
    mass_supplies = mixed_results.supplies[(mixed_results.supplies["quantity"] == "mass")
                                           & ~mixed_results.supplies["material_class"].isin(["wastewater", "water"])]
    mass_demands = mixed_results.demands[(mixed_results.demands["quantity"] == "mass")
                                         & ~mixed_results.demands["material_class"].isin(["wastewater", "water"])]
    assert _sankey_total(materials) == pytest.approx(mass_supplies["amount_t_per_yr"].sum()
                                                     + mass_demands["virgin_t_per_yr"].sum())
    assert _sankey_total(materials) < 10_000  # neither the 6 Mt/yr of water nor any MWh
    assert _sankey_total(network_sankey(mixed_results, public=False, water=True)) >= 6e6
    titles = [title for title, _ in network_figures(mixed_results, public=False)]
    assert titles == ["Before symbiosis (business as usual), materials without water",
                      "After symbiosis (optimum), materials without water", "Water before symbiosis",
                      "Water after symbiosis", "Heat before symbiosis (MWh/yr)", "Heat after symbiosis (MWh/yr)"]


def test_the_map_draws_heat_as_its_own_layer(mixed_results) -> None:  # type: ignore[no-untyped-def]
    from symbiosis.outputs.mapping import HEAT_GROUP, exchange_rows, map_html

    rows = exchange_rows(mixed_results, "EUR", 2.0, 12.0)
    heat = rows[rows["group"] == HEAT_GROUP]
    assert len(heat) == 2 and np.isfinite(rows["weight"]).all()
    shipped = mixed_results.exchanges.loc[mixed_results.exchanges["quantity"] == "energy", "amount_mwh_per_yr"]
    assert sorted(heat["amount"]) == pytest.approx(sorted(shipped), rel=1e-6)
    assert heat["weight"].max() == pytest.approx(12.0)  # heat widths scale among heat, not against tonnes
    assert all("MWh/yr" in tip for tip in heat["tooltip"])
    html = map_html(mixed_results)
    assert f"Exchanges: {HEAT_GROUP} (2)" in html and '"dashArray": "8 6"' in html


def test_the_independent_reference_lp_and_kkt_certificate_cover_heat_rows(heat_region) -> None:  # type: ignore[no-untyped-def]
    from symbiosis.exchange.solve import ExchangeModel
    from tests.independent import assert_kkt, reference_lp

    cands = candidates(heat_region)
    model = ExchangeModel(cands, carbon_price=0.0)
    solution = model.solve()
    lp = reference_lp(cands)
    assert lp.solve().status == 0
    assert solution.objective == pytest.approx(lp.result.fun, rel=1e-9)  # type: ignore[union-attr]
    assert_kkt(lp, solution, model.arrays.quality_rows)


# --- the command line ----------------------------------------------------------------------------------------


def test_cli_mip_flag_reports_the_relaxation_and_gaps(tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from symbiosis.cli import app

    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["optimise", str(HEAT), "--out", str(out), "--mip"])
    assert result.exit_code == 0, result.output
    kpis = json.loads((out / "kpis.json").read_text())
    assert kpis["mip_n_built"] == 1 and kpis["mip_n_binaries"] == 2
    assert {"mip_lp_relaxation_objective", "mip_relaxation_gap", "mip_highs_mip_gap"} <= set(kpis)
    lp = CliRunner().invoke(app, ["optimise", str(HEAT), "--out", str(tmp_path / "lp")])
    assert lp.exit_code == 0, lp.output
    assert "mip_n_built" not in json.loads((tmp_path / "lp" / "kpis.json").read_text())


def test_a_negative_fixed_cost_is_a_located_error(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from symbiosis.cli import app

    copy = tmp_path / "heat"
    shutil.copytree(HEAT, copy)
    with open(copy / "arcs.csv", "a") as handle:
        handle.write("plant,pharma,,,,test\n")
    arcs = pd.read_csv(copy / "arcs.csv", dtype=str, keep_default_na=False)
    arcs["fixed_cost_per_yr"] = ["", "", "-5", "", ""]
    arcs.to_csv(copy / "arcs.csv", index=False)
    result = CliRunner().invoke(app, ["optimise", str(copy), "--out", str(tmp_path / "out"), "--mip"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    text = " ".join(result.output.split())
    assert "arcs.csv" in text and "row 4" in text and "fixed_cost_per_yr" in text and "-5" in text
    assert "row 6" in text  # the row with neither distance nor cost nor fixed cost


def test_temperatures_in_kelvin_are_read_in_celsius(tmp_path: Path) -> None:
    """Temperature scales have offsets: 313.15 K is 40 °C (a factor conversion would make it 40 · 1 = 313 °C)."""
    copy = tmp_path / "heat"
    shutil.copytree(HEAT, copy)
    quality = pd.read_csv(copy / "quality.csv", dtype=str, keep_default_na=False)
    quality.loc[quality["flow_id"] == "wwtp_heat", ["value", "unit"]] = ["313.15", "K"]
    quality.loc[quality["flow_id"] == "town_heat", ["value", "unit"]] = ["194", "degF"]
    quality.to_csv(copy / "quality.csv", index=False)
    region = load_region(copy)
    temps = region.quality.set_index("flow_id")
    assert temps.at["wwtp_heat", "value"] == pytest.approx(40.0) and temps.at["wwtp_heat", "unit"] == "degC"
    assert temps.at["town_heat", "value"] == pytest.approx(90.0)
    cop, ratio, _ = _heat_pump()
    arc = candidates(region).arcs.set_index("supply_id").loc["wwtp_heat"]
    assert arc["heat_pump_cop"] == pytest.approx(cop) and arc["ratio"] == pytest.approx(ratio)


def test_a_substitution_between_heat_and_a_material_is_a_located_error(tmp_path: Path) -> None:
    """It used to pass the loader and raise a bare ValueError in the candidates stage (a traceback)."""
    from symbiosis.errors import InputError

    region_dir = tmp_path / "heat"
    shutil.copytree(HEAT, region_dir)
    with (region_dir / "region.yaml").open("a", encoding="utf-8") as handle:
        handle.write("reference:\n  substitutions: substitutions.csv\n")
    (region_dir / "substitutions.csv").write_text(
        "secondary_material,primary_material,ratio,max_share,processing_cost_per_t,processing_co2e_per_t,"
        "max_distance_km,source\nsteam,clay,1,1,0,0,,invented\n", encoding="utf-8")
    with pytest.raises(InputError) as caught:
        load_region(region_dir)
    text = str(caught.value)
    assert "substitutions.csv" in text and "heat carrier" in text and "steam → clay" in text


def test_the_terminal_shows_heat_in_mwh(tmp_path: Path) -> None:
    """The top-exchange table printed heat exchanges as '–' tonnes (their amount_t_per_yr is NaN)."""
    from typer.testing import CliRunner

    from symbiosis.cli import app

    result = CliRunner().invoke(app, ["optimise", str(HEAT), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "heat delivered" in result.output and "MWh/yr" in result.output
    top = result.output[result.output.index("Top exchanges"):]
    assert "steam" in top and " MWh" in top and "–" not in top


def test_compare_counts_heat_exchanges_in_mwh(tmp_path: Path) -> None:
    """Heat exchanges have NaN tonnes: compare reported every one as 'changed' (NaN ≠ NaN) even between two
    identical scenarios. Now unchanged ones are not listed and a changed one carries its MWh and unit."""
    from typer.testing import CliRunner

    from symbiosis.cli import app

    same = tmp_path / "same.yaml"
    same.write_text(f"name: same\nbase: {HEAT}\n", encoding="utf-8")
    base = tmp_path / "base.yaml"
    base.write_text(f"name: base\nbase: {HEAT}\n", encoding="utf-8")
    dearer = tmp_path / "dearer.yaml"
    dearer.write_text(f"name: no refinery\nbase: {HEAT}\nchanges:\n  - remove_facility: {{facility: refinery}}\n",
                      encoding="utf-8")
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["compare", str(base), str(same), str(dearer), "--out", str(out),
                                      "--workers", "1"])
    assert result.exit_code == 0, result.output
    changes = pd.read_csv(out / "exchanges_changes.csv")
    assert not (changes["scenario"] == "same").any()
    removed = changes[(changes["scenario"] == "no refinery") & (changes["demand_id"].str.startswith("refinery"))]
    assert len(removed) and (removed["change"] == "removed").all() and (removed["unit"] == "MWh/yr").all()
    assert removed["reference_t_per_yr"].gt(0).all() and removed["difference_t_per_yr"].notna().all()
    kpis = pd.read_csv(out / "kpis_comparison.csv").set_index("indicator")
    assert kpis.at["heat delivered", "base"] == pytest.approx(60_000.0)


def test_the_mip_re_solves_a_new_carbon_price_on_the_same_instance() -> None:
    """A carbon price change raised NotImplementedError in the mixed-integer mode (the cost vector had no
    entries for the binaries). Now the re-solve equals a model built afresh at that price, fixed costs kept."""
    region = load_region(HEAT)
    cands = connection_costs(region, candidates(region))
    model = MipExchangeModel(cands, carbon_price=0.0)
    first = model.solve()
    model.set_carbon_price(500.0)
    again = model.solve()
    fresh = MipExchangeModel(cands, carbon_price=500.0).solve()
    assert again.objective == pytest.approx(fresh.objective, rel=1e-9)
    assert again.objective != pytest.approx(first.objective, rel=1e-6)  # the price did reach the objective
    assert again.parameters["mip"]["fixed_cost"] == pytest.approx(fresh.parameters["mip"]["fixed_cost"])
    assert again.parameters["mip"]["n_binaries"] > 0


def test_a_route_capacity_in_arcs_csv_holds_on_a_heat_arc(tmp_path: Path) -> None:
    """arcs.csv's capacity on a steam main bounds the MWh shipped (the heat step used to overwrite it with the
    demand's share cap, or with nothing)."""
    import shutil

    region_dir = tmp_path / "heat"
    shutil.copytree(HEAT, region_dir)
    arcs = pd.read_csv(region_dir / "arcs.csv")
    arcs["capacity_t_per_yr"] = np.where(arcs["supply_facility"] == "plant", 10_000.0, np.nan)
    arcs.to_csv(region_dir / "arcs.csv", index=False)
    results = optimise(load_region(region_dir))
    steam = results.exchanges[(results.exchanges["supply_id"] == "plant_steam")
                              & (results.exchanges["demand_id"] == "refinery_steam")]
    # unbounded, the refinery takes 40,000 / 0.97 MWh shipped (tests/test_partners_heat.py): the cap binds
    assert steam["amount_mwh_per_yr"].sum() == pytest.approx(10_000.0, rel=1e-9)
