"""Dedicated store sites (symbiosis/periods/sites.py): a store that is its own place, receiving one material
from several suppliers and sending it to several receivers in later periods. A hand-solved seasonal case,
the site at capacity 0 and out of reach, column generation against the monolithic LP, invariants on random
multi-period regions with sites, and bad input refused with file, row and column.

Every test here fails on the code before sites: stores.csv required a ``flow_id`` and knew no ``material``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from pyproj import Geod

from symbiosis import load_region, optimise
from symbiosis.errors import InputError

SEASONS = "periods:\n  - {name: winter, days: 90}\n  - {name: summer, days: 275}"
# Two gypsum works (FGD gypsum made in summer only), a depot between them and a plasterboard plant whose
# line runs in winter only.
FACILITIES = ("facility_id,name,sector,lat,lon\n"
              "works_a,Works A,35.11,55.00,11.00\n"
              "works_b,Works B,35.11,55.00,11.30\n"
              "depot,Depot,52.10,55.05,11.12\n"
              "board,Board plant,23.62,55.15,11.20\n")
FLOWS = ("flow_id,facility_id,direction,category,material,amount,unit,price,price_unit,exchangeable,profile\n"
         "gyp_a,works_a,out,waste,fgd_gypsum,1000,t,40,EUR/t,,summer_only\n"
         "gyp_b,works_b,out,waste,fgd_gypsum,500,t,40,EUR/t,,summer_only\n"
         "board_gyp,board,in,raw_material,natural_gypsum,2000,t,20,EUR/t,true,winter_only\n")
PROFILES = ("profile,period,share\nsummer_only,winter,0\nsummer_only,summer,1\nwinter_only,winter,1\n"
            "winter_only,summer,0\n")
STORE_HEADER = "store_id,material,facility_id,capacity,cost_per_period,loss_per_period,max_distance_km\n"
# The reference substitution fgd_gypsum -> natural_gypsum (data/reference/substitutions.csv): ratio 0.95,
# processing 3 EUR/t and 0.015 t CO2e/t, no share limit.
RATIO, PROCESSING = 0.95, 3.0
TKM = 0.10


def write(folder: Path, stores: str, *, flows: str = FLOWS, periods: str = SEASONS, profiles: str = PROFILES
          ) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "region.yaml").write_text(
        f"name: Sites\ncurrency: EUR\n{periods}\ndefaults:\n  max_distance_km: 100\n  circuity: 1.0\n"
        f"  transport_cost_per_tkm: {TKM}\n  carbon_price: 0\n")
    (folder / "facilities.csv").write_text(FACILITIES)
    (folder / "flows.csv").write_text(flows)
    if profiles:
        (folder / "profiles.csv").write_text(profiles)
    if stores:
        (folder / "stores.csv").write_text(stores)
    return folder


def km(a: str, b: str) -> float:
    """The geodesic distance between two facilities of FACILITIES (WGS84), independently of symbiosis."""
    table = pd.read_csv(pd.io.common.StringIO(FACILITIES)).set_index("facility_id")
    _, _, metres = Geod(ellps="WGS84").inv(table.at[a, "lon"], table.at[a, "lat"], table.at[b, "lon"],
                                           table.at[b, "lat"])
    return float(metres) / 1000.0


NO_STORAGE = 40.0 * 1500 + 20.0 * 2000  # everything to landfill, all the board plant's gypsum virgin


PLACED_HEADER = STORE_HEADER.strip() + ",site_lat,site_lon\n"


@pytest.mark.parametrize("stores, place", [
    (STORE_HEADER + "depot_store,fgd_gypsum,depot,1200,2,0.1,\n", "depot"),
    (PLACED_HEADER + "depot_store,fgd_gypsum,,1200,2,0.1,,55.05,11.12\n", "depot_store"),
], ids=["at_a_facility", "at_its_own_coordinates"])
def test_a_store_site_between_summer_suppliers_and_a_winter_receiver_matches_the_hand_solved_optimum(
        tmp_path: Path, stores: str, place: str) -> None:
    """Works A (1,000 t) and B (500 t) make FGD gypsum in summer only (landfill 40 EUR/t); the board plant
    needs 2,000 t of natural gypsum in winter only (20 EUR/t). A depot between them holds 1,200 t at 2 EUR/t per
    period and loses 10 % per period (cyclic); what it loses goes to landfill at the suppliers' 40 EUR/t.

    By hand: a tonne put in store in summer avoids landfill (40), pays its leg in (0.1 EUR/tkm) and 2 + 0.1 × 40
    = 6 EUR in stock at the end of summer (holding, and the landfill of the tenth lost in winter); 0.9 of it is
    drawn in winter (the store ends winter empty: holding more would only cost) and replaces 0.95 t of natural
    gypsum (19 EUR) less processing (3) and the leg out. Both suppliers' tonnes are worth storing; the nearer
    one (A) first, the store fills to 1,200 t (A's 1,000, 200 of B's), 1,080 t reach the board plant (1,026 t
    replaced ≤ 2,000 needed). The depot is a facility of facilities.csv, or placed by its own coordinates (the
    same point): the same optimum."""
    results = optimise(load_region(write(tmp_path / "r", stores)))
    d_a, d_b, d_out = km("works_a", "depot"), km("works_b", "depot"), km("depot", "board")
    assert d_a < d_b
    in_stock = 2 + 0.1 * 40
    value_a = 40 - TKM * d_a - in_stock + 0.9 * (RATIO * 20 - PROCESSING - TKM * d_out)
    value_b = 40 - TKM * d_b - in_stock + 0.9 * (RATIO * 20 - PROCESSING - TKM * d_out)
    assert value_a > value_b > 0
    put_a, put_b = 1000.0, 200.0
    drawn = 0.9 * (put_a + put_b)
    assert RATIO * drawn <= 2000
    optimum = (40 * (1000 - put_a) + 40 * (500 - put_b) + TKM * (d_a * put_a + d_b * put_b) + in_stock * 1200
               + (PROCESSING + TKM * d_out) * drawn + 20 * (2000 - RATIO * drawn))
    assert results.kpis["cost_optimum"] == pytest.approx(optimum, rel=1e-9, abs=1e-9)
    assert results.kpis["objective_optimum"] == pytest.approx(optimum, rel=1e-9, abs=1e-9)
    assert results.kpis["cost_bau"] == pytest.approx(NO_STORAGE, rel=1e-12)

    # Two legs per route, marked with the site; material counted once.
    ex = results.exchanges.set_index(["supply_id", "demand_id"])
    assert ex.at[("gyp_a", "depot_store:in"), "amount_t_per_yr"] == pytest.approx(put_a, rel=1e-9)
    assert ex.at[("gyp_b", "depot_store:in"), "amount_t_per_yr"] == pytest.approx(put_b, rel=1e-9)
    assert ex.at[("depot_store:out", "board_gyp"), "amount_t_per_yr"] == pytest.approx(drawn, rel=1e-9)
    assert set(results.exchanges["via_store"]) == {"depot_store"}
    assert results.kpis["virgin_avoided_t"] == pytest.approx(RATIO * drawn, rel=1e-9)
    # The site makes and needs nothing: sums of the amounts (the report's business-as-usual figures) omit it.
    assert results.demands["amount_t_per_yr"].sum() == pytest.approx(2000.0, rel=1e-12)
    assert results.supplies["amount_t_per_yr"].sum() == pytest.approx(1500.0, rel=1e-12)
    sites = results.demands.set_index("demand_id")
    assert sites.at["depot_store:in", "secondary_received_t_per_yr"] == pytest.approx(put_a + put_b, rel=1e-9)
    by_period = results.periods.kpis.set_index("period")
    assert by_period.at["summer", "exchanged_t"] == pytest.approx(put_a + put_b, rel=1e-9)
    assert by_period.at["winter", "exchanged_t"] == pytest.approx(0.0, abs=1e-6)
    assert by_period.at["winter", "delivered_t"] == pytest.approx(RATIO * drawn, rel=1e-9)
    assert by_period["net_cost_saving"].sum() == pytest.approx(NO_STORAGE - optimum, rel=1e-9)
    per_ex = results.periods.exchanges
    assert set(per_ex["via_store"]) == {"depot_store"}
    level = results.periods.stores.set_index("period")
    assert level.at["summer", "level"] == pytest.approx(1200.0, rel=1e-9)
    assert level.at["winter", "level"] == pytest.approx(0.0, abs=1e-6)
    assert level.at["winter", "draw"] == pytest.approx(drawn, rel=1e-9)
    assert (level["side"] == "site").all() and (level["facility_id"] == place).all()
    assert set(results.exchanges["demand_facility"]) | set(results.exchanges["supply_facility"]) >= {place}
    # The value of one more tonne of storage (capacity dual) in summer: what the marginal tonne (B's) is worth.
    assert level.at["summer", "capacity_value_per_unit"] == pytest.approx(value_b, rel=1e-6)


@pytest.mark.parametrize("stores", [STORE_HEADER + "depot_store,fgd_gypsum,depot,0,2,0.1,\n",
                                    STORE_HEADER + "depot_store,fgd_gypsum,depot,1200,2,0.1,5\n"],
                         ids=["capacity_0", "out_of_reach"])
def test_a_site_that_cannot_hold_or_reach_anything_gives_the_no_storage_optimum(tmp_path: Path, stores: str
                                                                               ) -> None:
    """At capacity 0, or with a 5 km reach while every supplier is further, nothing can cross from summer to
    winter: the optimum is business as usual (nothing else connects them)."""
    assert min(km("works_a", "depot"), km("works_b", "depot")) > 5
    results = optimise(load_region(write(tmp_path / "r", stores)))
    assert results.kpis["cost_optimum"] == pytest.approx(NO_STORAGE, rel=1e-9)
    assert results.kpis["net_cost_saving"] == pytest.approx(0.0, abs=1e-6)
    assert results.exchanges.empty or results.exchanges["amount_t_per_yr"].sum() == pytest.approx(0.0, abs=1e-6)
    # Why not matched: the suppliers' material never meets the board plant's need (the site cannot bridge them
    # when out of reach; at capacity 0 it could take material but holds none).
    if "out_of_reach" in str(tmp_path):
        reasons = results.supplies.set_index("supply_id")["reason"]
        assert reasons["gyp_a"] == "not_at_the_same_time"


def test_a_one_period_region_with_a_site_is_the_region_without_it(tmp_path: Path) -> None:
    """In one period a site cannot carry anything forward (a cyclic store with one period holds its own
    level): it changes nothing when supply and demand meet directly."""
    flows = FLOWS.replace(",summer_only\n", ",\n").replace(",winter_only\n", ",\n")
    plain = optimise(load_region(write(tmp_path / "plain", "", flows=flows, periods="", profiles="")))
    sited = optimise(load_region(write(tmp_path / "sited", STORE_HEADER + "s,fgd_gypsum,depot,1200,2,0.1,\n",
                                       flows=flows, periods="", profiles="")))
    assert plain.periods is None and sited.periods is not None and len(sited.periods.kpis) == 1
    assert plain.kpis["cost_optimum"] < plain.kpis["cost_bau"]
    assert sited.kpis["cost_optimum"] == pytest.approx(plain.kpis["cost_optimum"], rel=1e-9)
    assert sited.exchanges["via_store"].eq("").all()


# --- bad input ---------------------------------------------------------------------------------------


def _problems(folder: Path) -> list:
    with pytest.raises(InputError) as caught:
        load_region(folder)
    return caught.value.problems


def test_bad_store_sites_are_refused_with_file_row_and_column(tmp_path: Path) -> None:
    stores = ("store_id,flow_id,material,facility_id,capacity,loss_per_period,max_distance_km\n"
              "both,gyp_a,fgd_gypsum,depot,10,0.1,\n"      # row 2: a flow and a material
              "unknown,,unobtainium,depot,10,0.1,\n"        # row 3: unknown material
              "nowhere,,fgd_gypsum,,10,0.1,\n"              # row 4: no facility
              "lost,,fgd_gypsum,atlantis,10,0.1,\n"         # row 5: unknown facility
              "negative,,fgd_gypsum,depot,-1,0.1,\n"        # row 6: negative capacity
              "leaky,,fgd_gypsum,depot,10,1.5,\n"           # row 7: loss above 1
              "far,,fgd_gypsum,depot,10,0.1,-3\n"           # row 8: negative reach
              "half,,,depot,10,0.1,\n"                      # row 9: a facility but no material (nor flow)
              "warm,,hot_water,depot,10,0.1,\n")            # row 10: heat
    problems = _problems(write(tmp_path / "r", stores))

    def has(row: int, column: str, words: str) -> bool:
        return any("stores" in p.file and p.row == row and p.column == column and words in p.message
                   for p in problems)

    assert has(2, "flow_id", "a store site with a flow"), problems
    assert has(3, "material", "unknown material"), problems
    assert has(4, "facility_id", "a value is required"), problems
    assert has(5, "facility_id", "unknown facility"), problems
    assert any("stores" in p.file and p.row == 6 and p.column == "capacity" for p in problems), problems
    assert any("stores" in p.file and p.row == 7 and p.column == "loss_per_period" for p in problems), problems
    assert any("stores" in p.file and p.row == 8 and p.column == "max_distance_km" for p in problems), problems
    assert has(9, "material", "a facility_id without a material"), problems
    assert has(10, "material", "holds material, not heat"), problems


def test_bad_store_site_coordinates_are_refused_with_file_row_and_column(tmp_path: Path) -> None:
    stores = (PLACED_HEADER
              + "twice,fgd_gypsum,depot,10,0.5,0.1,,55.0,11.0\n" # row 2: a facility and coordinates
              + "half,fgd_gypsum,,10,0.5,0.1,,55.0,\n"          # row 3: a latitude only
              + "board,fgd_gypsum,,10,0.5,0.1,,55.0,11.0\n"     # row 4: the id of a facility
              + "pole,fgd_gypsum,,10,0.5,0.1,,95.0,11.0\n")     # row 5: a latitude beyond 90
    problems = _problems(write(tmp_path / "r", stores))

    def has(row: int, column: str, words: str) -> bool:
        return any("stores" in p.file and p.row == row and p.column == column and words in p.message
                   for p in problems)

    assert has(2, "site_lat", "placed twice"), problems
    assert has(3, "site_lon", "a value is required"), problems
    assert has(4, "store_id", "a store site's id is a facility's"), problems
    assert any("stores" in p.file and p.row == 5 and p.column == "site_lat" for p in problems), problems


# --- invariants on random multi-period regions with sites ----------------------------------------------


def _random_region(folder: Path, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    n_sup, n_rec, n_sites = int(rng.integers(2, 6)), int(rng.integers(1, 4)), int(rng.integers(1, 3))
    rows = ["facility_id,name,sector,lat,lon"]
    for kind, n in (("s", n_sup), ("r", n_rec), ("d", n_sites)):
        for i in range(n):
            rows.append(f"{kind}{i},{kind}{i},35.11,{55 + rng.uniform(0, 0.4):.4f},{11 + rng.uniform(0, 0.6):.4f}")
    facilities = "\n".join(rows) + "\n"
    months = [f"m{i}" for i in range(4)]
    profiles = ["profile,period,share"]
    flows = ["flow_id,facility_id,direction,category,material,amount,unit,price,price_unit,exchangeable,profile"]
    for i in range(n_sup):
        weights = rng.integers(0, 4, size=4) * (rng.random(4) < 0.6)
        shares = weights / weights.sum() if weights.sum() > 0 else np.full(4, 0.25)
        profiles += [f"ps{i},{m},{v:.12f}" for m, v in zip(months, shares, strict=True)]
        flows.append(f"g{i},s{i},out,waste,fgd_gypsum,{rng.integers(100, 2000)},t,{rng.integers(5, 60)},EUR/t,,ps{i}")
    for j in range(n_rec):
        flows.append(f"n{j},r{j},in,raw_material,natural_gypsum,{rng.integers(100, 2000)},t,{rng.integers(5, 40)},"
                     f"EUR/t,true,pr{j}")
        month = int(rng.integers(0, 4))
        profiles += [f"pr{j},{m},{1.0 if k == month else 0.0}" for k, m in enumerate(months)]
    stores = [STORE_HEADER.strip()]
    for k in range(n_sites):
        stores.append(f"site{k},fgd_gypsum,d{k},{rng.integers(0, 1500)},{rng.uniform(0, 4):.3f},"
                      f"{rng.uniform(0, 0.3):.3f},{'' if rng.random() < 0.7 else rng.integers(5, 60)}")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "region.yaml").write_text("name: R\ncurrency: EUR\nperiods: 4 quarters\ndefaults:\n"
                                        "  max_distance_km: 60\n  circuity: 1.2\n")
    (folder / "facilities.csv").write_text(facilities)
    (folder / "flows.csv").write_text("\n".join(flows) + "\n")
    (folder / "profiles.csv").write_text("\n".join(profiles).replace("m0", "q1").replace("m1", "q2")
                                         .replace("m2", "q3").replace("m3", "q4") + "\n")
    (folder / "stores.csv").write_text("\n".join(stores) + "\n")
    return folder


@settings(max_examples=12, deadline=None, derandomize=True, phases=[Phase.generate],
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000))
def test_random_regions_with_sites_keep_the_invariants(tmp_path: Path, seed: int) -> None:
    results = optimise(load_region(_random_region(tmp_path / f"r{seed}", seed)))
    stores = results.periods.stores
    tol = 1e-6
    # The stock stays within 0..capacity, and each period balances: level = retained opening + fill − draw.
    assert (stores["level"] >= -tol).all() and (stores["level"] <= stores["capacity"] + tol).all()
    balance = stores["opening"] - stores["loss"] + stores["fill"] - stores["draw"] - stores["level"]
    assert np.abs(balance).max() <= tol * max(1.0, float(stores["capacity"].max()))
    # Nothing double counted: tonnes leaving suppliers toward the sites are the tonnes put into the sites, and
    # tonnes leaving the sites are the tonnes drawn.
    per = results.periods.exchanges
    into = per[per["demand_id"].str.endswith(":in")].groupby("period")["amount_t"].sum()
    fill = stores.groupby("period")["fill"].sum()
    assert np.allclose(into.reindex(fill.index).fillna(0.0), fill, rtol=1e-6, atol=1e-6)
    out = per[per["supply_id"].str.endswith(":out")].groupby("period")["amount_t"].sum()
    draw = stores.groupby("period")["draw"].sum()
    assert np.allclose(out.reindex(draw.index).fillna(0.0), draw, rtol=1e-6, atol=1e-6)
    # Exchanged counts each tonne once, as it leaves its supplier; the annual figures are the sum of the periods.
    k = results.periods.kpis
    direct = per[~per["supply_id"].str.endswith(":out")].groupby("period")["amount_t"].sum()
    assert np.allclose(direct.reindex(k["period"]).fillna(0.0).to_numpy(), k["exchanged_t"].to_numpy(), atol=1e-6)
    annual_direct = results.exchanges.loc[~results.exchanges["supply_id"].str.endswith(":out"), "amount_t_per_yr"]
    assert k["exchanged_t"].sum() == pytest.approx(float(annual_direct.sum()), rel=1e-9, abs=1e-6)
    assert k["net_cost_saving"].sum() == pytest.approx(results.kpis["net_cost_saving"], rel=1e-6, abs=1e-6)
    assert results.kpis["net_cost_saving"] >= -1e-6


# --- column generation on a generated region with sites ------------------------------------------------


@pytest.fixture(scope="module")
def generated_with_sites(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated region (symbiosis.synthetic, invented figures) with seasonal profiles and stores at
    suppliers (symbiosis.periods.seasonal), and four store sites for the materials most suppliers make."""
    from symbiosis.periods.seasonal import add_seasons
    from symbiosis.synthetic import generate_region

    folder = generate_region(250, tmp_path_factory.mktemp("sites") / "r", seed=5)
    add_seasons(folder, n_stores=6, every=2, seed=5)
    flows = pd.read_csv(folder / "flows.csv", dtype=str, keep_default_na=False)
    substitutions = pd.read_csv(Path(__file__).resolve().parent.parent / "data" / "reference" / "substitutions.csv")
    out = flows[(flows["direction"] == "out") & flows["unit"].str.strip().str.lower().eq("t")
                & flows["material"].isin(set(substitutions["secondary_material"]))]
    materials = out["material"].value_counts().index[:4]
    facilities = pd.read_csv(folder / "facilities.csv", dtype=str, keep_default_na=False)["facility_id"]
    stores = pd.read_csv(folder / "stores.csv", dtype=str, keep_default_na=False)
    sites = pd.DataFrame({"store_id": [f"SITE{i}" for i in range(len(materials))], "flow_id": "",
                          "material": list(materials), "facility_id": facilities.iloc[[7, 31, 90, 140][:len(materials)]]
                          .to_numpy(), "capacity": ["2000", "500", "0", "5000"][:len(materials)],
                          "cost_per_period": "0.5", "loss_per_period": "0.02", "source": "invented (test)"})
    pd.concat([stores, sites], ignore_index=True).fillna("").to_csv(folder / "stores.csv", index=False)
    return folder


def test_column_generation_with_sites_is_the_monolithic_optimum_and_prices_every_site_leg(
        generated_with_sites: Path) -> None:
    from symbiosis.candidates import candidates as build_candidates
    from symbiosis.exchange.colgen import reduced_costs
    from symbiosis.periods.expand import capacity_parts, expand
    from symbiosis.periods.sites import add_sites
    from symbiosis.periods.solve import solve_expanded

    region = load_region(generated_with_sites)
    cands = add_sites(region, build_candidates(region))
    n_site_arcs = int(cands.arcs["supply_id"].str.endswith(":out").sum() + cands.arcs["demand_id"].str.endswith(
        ":in").sum())
    assert n_site_arcs > 0
    share_cap, route = capacity_parts(cands, region.reference.substitutions, region.arcs)
    ex = expand(cands, region.time, share_cap=share_cap, route_capacity=route)
    assert (ex.stores["side"] == "site").sum() == 4
    price = float(cands.parameters["carbon_price"])
    mono, _ = solve_expanded(ex, carbon_price=price, strategy="monolithic")
    cg, arrays = solve_expanded(ex, carbon_price=price, strategy="column_generation", per_supply=1, per_demand=1,
                                max_master_share=1.0)
    assert cg.parameters["strategy"] == "column_generation", cg.parameters
    assert cg.objective == pytest.approx(mono.objective, rel=1e-8)
    # The site legs are priced like every arc: none at zero has a negative reduced cost at the optimum.
    objective = arrays.objective_vector(price)
    rc = reduced_costs(arrays, cg, objective=objective)
    tol = 1e-6 * max(1.0, float(np.abs(objective).max()))
    site_leg = (ex.candidates.arcs["supply_id"].str.endswith(":out")
                | ex.candidates.arcs["demand_id"].str.endswith(":in")).to_numpy()
    at_zero = cg.x <= 1e-7
    assert (site_leg & at_zero).any() and (site_leg & ~at_zero).any()
    assert rc[site_leg & at_zero].min() >= -tol
    # The pricing formula equals HiGHS's own reduced costs (c − Aᵀπ over every row it holds, the sites' rows
    # included) on every arc-period, site legs among them (tests/test_colgen.py's check, on this model).
    from symbiosis.periods.solve import PeriodExchangeModel
    from tests.test_colgen import _highs_reduced_costs

    whole = PeriodExchangeModel(ex, carbon_price=price, decompose=False)
    solution, expected = _highs_reduced_costs(whole)
    got = reduced_costs(whole.arrays, solution, objective=whole.arrays.objective_vector(price))
    np.testing.assert_allclose(got[site_leg], expected[site_leg], rtol=1e-9,
                               atol=1e-7 * max(1.0, float(np.abs(expected).max())))
    # And through the pipeline: both strategies give the same annual results, the sites' legs marked.
    mono_r = optimise(region, strategy="monolithic")
    cg_r = optimise(region, strategy="column_generation")
    assert cg_r.kpis["objective_optimum"] == pytest.approx(mono_r.kpis["objective_optimum"], rel=1e-8)
    assert mono_r.exchanges["via_store"].str.startswith("SITE").any()
    assert mono_r.periods.kpis["net_cost_saving"].sum() == pytest.approx(mono_r.kpis["net_cost_saving"], rel=1e-6)


@pytest.mark.parametrize("permits, stored", [("", False), ("depot,100105,,test\n", False),
                                             ("board,100105,,test\n", False),
                                             ("depot,100105,,test\nboard,100105,,test\n", True)],
                         ids=["none", "site_only", "receiver_only", "both"])
def test_permits_hold_on_both_legs_of_a_site(tmp_path: Path, permits: str, stored: bool) -> None:
    """With every waste needing a permit (``permits_required_for: all_waste``), FGD gypsum (EWC 10 01 05) goes
    into the depot only if the depot is permitted for it, and out of it only to a board plant permitted for
    it: with either permit missing the depot holds nothing and the optimum is business as usual (in particular
    a depot that can receive but not send is no dump: what it loses pays the suppliers' landfill)."""
    folder = write(tmp_path / "r", STORE_HEADER + "depot_store,fgd_gypsum,depot,1200,2,0.1,\n")
    yaml = (folder / "region.yaml").read_text()
    (folder / "region.yaml").write_text(yaml + "permits_required_for: all_waste\n")
    if permits:
        (folder / "permits.csv").write_text("facility_id,ewc_code,max_t_per_yr,source\n" + permits)
    results = optimise(load_region(folder))
    filled = float(results.periods.stores["fill"].sum())
    if stored:
        assert filled == pytest.approx(1200.0, rel=1e-9)
        assert results.kpis["cost_optimum"] < NO_STORAGE - 1.0
    else:
        assert filled == pytest.approx(0.0, abs=1e-6)
        assert results.kpis["cost_optimum"] == pytest.approx(NO_STORAGE, rel=1e-9)


def test_the_view_of_one_period_shows_the_site_legs_of_that_period(tmp_path: Path) -> None:
    """``symbiosis run --period``: summer shows the legs into the depot (1,200 t), winter the leg out (1,080 t);
    each view balances at the site (what it took in or sent out that period) and the two views' legs are the
    year's."""
    from symbiosis.periods.view import period_results_view

    region = load_region(write(tmp_path / "r", STORE_HEADER + "depot_store,fgd_gypsum,depot,1200,2,0.1,\n"))
    results = optimise(region)
    summer = period_results_view(region, results, "summer")
    winter = period_results_view(region, results, "winter")
    assert summer.exchanges["demand_id"].eq("depot_store:in").all()
    assert summer.exchanges["amount_t_per_yr"].sum() == pytest.approx(1200.0, rel=1e-9)
    assert winter.exchanges["supply_id"].eq("depot_store:out").all()
    assert winter.exchanges["amount_t_per_yr"].sum() == pytest.approx(1080.0, rel=1e-9)
    site = winter.supplies.set_index("supply_id").loc["depot_store:out"]
    assert site["exchanged_t_per_yr"] == pytest.approx(1080.0, rel=1e-9)
    assert site["amount_t_per_yr"] == 0.0 and site["to_fate_t_per_yr"] == pytest.approx(0.0, abs=1e-6)
    # The report's "virgin material purchased" in business as usual counts the board plant's need, not the depot.
    assert winter.demands["amount_t_per_yr"].sum() == pytest.approx(2000.0, rel=1e-12)
    assert len(summer.exchanges) + len(winter.exchanges) == len(results.exchanges)


def test_what_leaves_a_site_has_the_worst_quality_that_may_enter_it(tmp_path: Path) -> None:
    """The board plant takes at most 0.10 % chloride (EN 197-1's figure, as an example; virgin gypsum 0). Works
    A's gypsum has 0.05 %, B's 0.20 %: the depot may hold B's, so what leaves it counts at 0.20 % (not the
    blend actually stored). By hand, the blend row of the winter delivery is (0.20 − 0.10) x − 0.10 y ≤ 0, so
    x ≤ y, and with 0.95 x + y = 2,000 at most x = 2,000 / 1.95 t leave the depot; the depot draws that, so it
    holds x / 0.9 at the end of summer (below its 1,200 t), filled from A first."""
    folder = write(tmp_path / "r", STORE_HEADER + "depot_store,fgd_gypsum,depot,1200,2,0.1,\n")
    (folder / "quality.csv").write_text("flow_id,parameter,value,unit,bound,virgin_value\n"
                                        "gyp_a,chloride,0.05,%,,\ngyp_b,chloride,0.20,%,,\n"
                                        "board_gyp,chloride,0.10,%,max,\n")
    results = optimise(load_region(folder))
    d_a, d_b, d_out = km("works_a", "depot"), km("works_b", "depot"), km("depot", "board")
    drawn = 2000 / 1.95
    put = drawn / 0.9
    put_a, put_b = 1000.0, put - 1000.0
    assert 0 < put_b < 500 and put < 1200
    optimum = (40 * (500 - put_b) + TKM * (d_a * put_a + d_b * put_b) + (2 + 0.1 * 40) * put
               + (PROCESSING + TKM * d_out) * drawn + 20 * (2000 - RATIO * drawn))
    assert results.kpis["cost_optimum"] == pytest.approx(optimum, rel=1e-9)
    level = results.periods.stores.set_index("period")
    assert level.at["winter", "draw"] == pytest.approx(drawn, rel=1e-9)
    assert level.at["summer", "capacity_value_per_unit"] == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("quality", ["gyp_a,chloride,0.05,%,,\n", "gyp_a,chloride,0.05,%,,\ngyp_b,chloride,0.05,%,,\n"
                                     "board_gyp,chloride,0.03,%,min,0.05\n"], ids=["one_unmeasured", "a_lower_bound"])
def test_a_receiver_the_site_cannot_vouch_for_is_out_of_its_reach(tmp_path: Path, quality: str) -> None:
    """Works B's chloride is not measured, so what leaves the depot has no known chloride and cannot serve a
    plant that bounds it; or the plant sets a lower bound, which the worst case (the largest value) does not
    vouch for. The depot then holds nothing: business as usual."""
    folder = write(tmp_path / "r", STORE_HEADER + "depot_store,fgd_gypsum,depot,1200,2,0.1,\n")
    bound = "board_gyp,chloride,0.10,%,max,\n" if "min" not in quality else ""
    (folder / "quality.csv").write_text("flow_id,parameter,value,unit,bound,virgin_value\n" + quality + bound)
    results = optimise(load_region(folder))
    assert results.kpis["cost_optimum"] == pytest.approx(NO_STORAGE, rel=1e-9)
    assert float(results.periods.stores["fill"].sum()) == pytest.approx(0.0, abs=1e-6)


def test_not_at_the_same_time_knows_that_a_site_bridges_the_seasons(tmp_path: Path) -> None:
    """With the depot working, the works' gypsum is matched through it (no not_at_the_same_time); with the
    board plant out of the depot's reach (its flow takes nothing from beyond 5 km), the depot bridges nothing
    and the works' gypsum, made in summer for a plant that needs it in winter, is not_at_the_same_time."""
    stores = STORE_HEADER + "depot_store,fgd_gypsum,depot,1200,2,0.1,\n"
    working = optimise(load_region(write(tmp_path / "w", stores)))
    assert "not_at_the_same_time" not in set(working.supplies["reason"].astype(str))
    header, *rows = FLOWS.splitlines()
    far = "\n".join([header + ",max_distance_km", *(r + "," for r in rows[:2]), rows[2] + ",5"]) + "\n"
    cut = optimise(load_region(write(tmp_path / "c", stores, flows=far)))
    assert float(cut.periods.stores["fill"].sum()) == pytest.approx(0.0, abs=1e-6)
    reasons = cut.supplies.set_index("supply_id")["reason"]
    assert reasons["gyp_a"] == "not_at_the_same_time" and reasons["gyp_b"] == "not_at_the_same_time"
