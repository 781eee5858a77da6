"""Periods, profiles and stores (symbiosis/periods/): a hand-solved seasonal case, the one-period identity,
invariants and an independent LP on random multi-period regions, and bad input refused with its location."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog
from scipy.sparse import coo_matrix

from symbiosis import load_region, optimise
from symbiosis.candidates import candidates as build_candidates
from symbiosis.errors import InputError, Problems
from symbiosis.periods.data import TimeData, calendar
from symbiosis.periods.expand import expand
from tests.conftest import load_test_region

ROOT = Path(__file__).resolve().parent.parent
KALUNDBORG = ROOT / "data" / "regions" / "kalundborg"
TINY = ROOT / "tests" / "data" / "regions" / "tiny"
HEAT = ROOT / "tests" / "data" / "regions" / "heat"


def write_region(folder: Path, *, periods: str, flows: str, facilities: str, arcs: str = "",
                 profiles: str = "", stores: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "region.yaml").write_text(f"name: Test\ncurrency: EUR\n{periods}\ndefaults:\n  max_distance_km: 50\n")
    (folder / "facilities.csv").write_text(facilities)
    (folder / "flows.csv").write_text(flows)
    for name, text in (("arcs", arcs), ("profiles", profiles), ("stores", stores)):
        if text:
            (folder / f"{name}.csv").write_text(text)
    return folder


SEASONS = "periods:\n  - {name: winter, days: 90}\n  - {name: rest, days: 275}"
PLANT_TOWN = "facility_id,name,sector,lat,lon\nplant,Plant,35.11,55.00,11.00\ntown,Town,35.30,55.02,11.00\n"


# --- the hand-solved seasonal case ------------------------------------------------------------------


def test_seasonal_heat_store_matches_the_hand_solved_optimum(tmp_path: Path) -> None:
    """Waste heat flat over the year (36,500 MWh, cooling costs 1 EUR/MWh), district heat needed in winter
    only (20,000 MWh at 30 EUR/MWh), 5 km of hot-water pipe, and a pit store at the plant (10,000 MWh,
    0.5 EUR/MWh per period, 10 % lost per period, cyclic)."""
    region = load_region(write_region(
        tmp_path / "seasonal", periods=SEASONS, facilities=PLANT_TOWN,
        flows="flow_id,facility_id,direction,category,material,amount,unit,price,price_unit,exchangeable,profile\n"
              "plant_heat,plant,out,waste,hot_water,36500,MWh,1,EUR/MWh,,\n"
              "town_heat,town,in,energy,district_heat,20000,MWh,30,EUR/MWh,true,winter_only\n",
        arcs="supply_facility,demand_facility,distance_km\nplant,town,5\n",
        profiles="profile,period,share\nwinter_only,winter,1\nwinter_only,rest,0\n",
        stores="store_id,flow_id,capacity,cost_per_period,loss_per_period\npit,plant_heat,10000,0.5,0.1\n"))
    # By hand. hot_water -> district_heat: ratio 1 × (1 − 0.002/km × 5 km) = 0.99 delivered per MWh shipped,
    # pipe 0.05 EUR/MWh·km × 5 km = 0.25 EUR/MWh (data/reference/energy_carriers.csv, substitutions.csv).
    rho, pipe, fate, virgin = 1 - 0.002 * 5, 0.05 * 5, 1.0, 30.0
    hold, loss, cap = 0.5, 0.1, 10_000.0
    supply = {"winter": 36_500 * 90 / 365, "rest": 36_500 * 275 / 365}  # 9,000 and 27,500 MWh
    need_winter = 20_000.0
    # A MWh put in store in the rest of the year: avoids its fate (1), costs hold + loss × fate per period in
    # stock (0.6), and 0.9 of it ships in winter, each MWh saving rho·virgin − pipe = 29.45: 26.905 > 0. So
    # the store fills to capacity; winter ships its own 9,000 MWh plus the 9,000 drawn (18,000 ≤ 20,000/0.99).
    drawn = (1 - loss) * cap
    shipped = supply["winter"] + drawn
    assert shipped * rho <= need_winter
    virgin_bought = need_winter - rho * shipped
    to_fate = supply["rest"] - cap
    optimum = pipe * shipped + fate * to_fate + virgin * virgin_bought + (hold + loss * fate) * cap
    bau = fate * 36_500 + virgin * need_winter
    capacity_value = fate - (hold + loss * fate) + (1 - loss) * (rho * virgin - pipe)

    results = optimise(region)
    assert results.kpis["objective_optimum"] == pytest.approx(optimum, rel=1e-9, abs=1e-9)
    assert results.kpis["cost_optimum"] == pytest.approx(optimum, rel=1e-9)
    assert results.kpis["cost_bau"] == pytest.approx(bau, rel=1e-9)
    stores = results.periods.stores.set_index("period")
    assert stores.loc["rest", "level"] == pytest.approx(cap, rel=1e-9)
    assert stores.loc["winter", "draw"] == pytest.approx(drawn, rel=1e-9)
    assert stores.loc["winter", "loss"] == pytest.approx(loss * cap, rel=1e-9)
    assert stores.loc["rest", "capacity_value_per_unit"] == pytest.approx(capacity_value, rel=1e-9)
    assert stores.loc["winter", "capacity_value_per_unit"] == pytest.approx(0.0, abs=1e-9)
    by_period = results.periods.exchanges.set_index("period")["amount_mwh"]
    assert by_period.loc["winter"] == pytest.approx(shipped, rel=1e-9)
    assert "rest" not in by_period.index
    # Annual figures are the sums of the periods'.
    assert results.exchanges["amount_mwh_per_yr"].sum() == pytest.approx(shipped, rel=1e-9)
    assert results.periods.kpis["cost_optimum"].sum() == pytest.approx(results.kpis["cost_optimum"], rel=1e-12)
    assert results.periods.kpis["cost_bau"].sum() == pytest.approx(results.kpis["cost_bau"], rel=1e-12)
    # What is left (17,500 MWh in the rest of the year, with the pit full) is left for want of a receiver then.
    supply = results.supplies.set_index("supply_id").loc["plant_heat"]
    assert supply["reason"] == "not_at_the_same_time"
    assert "17,500 of the 17,500 MWh" in supply["reason_detail"] and "(rest)" in supply["reason_detail"]


def test_without_the_store_the_rest_of_the_year_is_not_at_the_same_time(tmp_path: Path) -> None:
    """Heat made only in summer and needed only in winter: nothing can be exchanged without a store."""
    region = load_region(write_region(
        tmp_path / "apart", periods=SEASONS, facilities=PLANT_TOWN,
        flows="flow_id,facility_id,direction,category,material,amount,unit,price,price_unit,exchangeable,profile\n"
              "plant_heat,plant,out,waste,hot_water,36500,MWh,1,EUR/MWh,,rest_only\n"
              "town_heat,town,in,energy,district_heat,20000,MWh,30,EUR/MWh,true,winter_only\n",
        arcs="supply_facility,demand_facility,distance_km\nplant,town,5\n",
        profiles="profile,period,share\nwinter_only,winter,1\nrest_only,rest,1\n"))
    results = optimise(region)
    assert results.exchanges.empty
    assert results.supplies.set_index("supply_id").loc["plant_heat", "reason"] == "not_at_the_same_time"
    assert results.kpis["cost_optimum"] == pytest.approx(36_500 * 1.0 + 20_000 * 30.0, rel=1e-12)


# --- one period is today's model --------------------------------------------------------------------


@pytest.mark.parametrize("path", [KALUNDBORG, TINY, HEAT], ids=["kalundborg", "tiny", "heat"])
def test_one_period_is_exactly_todays_optimum_and_results(path: Path) -> None:
    region = load_test_region(path) if path == TINY else load_region(path)
    assert region.time is None
    one = region.copy()
    periods = calendar("1 year", Problems(), "region.yaml")
    assert periods is not None
    one.time = TimeData(periods=periods)
    cands = build_candidates(region)
    ex = expand(cands, one.time)
    for name in ("supplies", "demands", "arcs", "supply_quality", "demand_quality", "screening"):
        pd.testing.assert_frame_equal(getattr(ex.candidates, name), getattr(cands, name), check_exact=True)
    today, periodic = optimise(region), optimise(one)
    assert periodic.kpis["objective_optimum"] == today.kpis["objective_optimum"]
    assert periodic.periods is not None and today.periods is None
    for key, value in today.kpis.items():
        assert periodic.kpis[key] == value, key
    for name in ("exchanges", "supplies", "demands", "facilities"):
        pd.testing.assert_frame_equal(getattr(periodic, name), getattr(today, name), check_exact=True)


@pytest.mark.parametrize("path", [KALUNDBORG, TINY, ROOT / "tests" / "data" / "regions" / "processor"],
                         ids=["kalundborg", "tiny", "processor"])
def test_periods_spread_by_length_give_the_annual_optimum(path: Path) -> None:
    """Without profiles or stores each period's LP is the annual LP scaled by its length (amounts, arc
    capacities, intake limits and processor capacities alike), so the optimum over the periods is the annual
    one: this fails if any annual limit were not spread over the periods."""
    region = load_test_region(path) if path == TINY else load_region(path)
    annual = optimise(region)
    region.time = TimeData(periods=calendar("4 quarters", Problems(), "region.yaml"))
    periodic = optimise(region)
    assert periodic.kpis["objective_optimum"] == pytest.approx(annual.kpis["objective_optimum"], rel=1e-7)
    assert periodic.periods.kpis["cost_optimum"].sum() == pytest.approx(periodic.kpis["cost_optimum"], rel=1e-9)
    assert len(periodic.periods.kpis) == 4


# --- random multi-period regions: invariants and an independent LP ----------------------------------

MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
QUARTER_DAYS = np.array([90, 91, 92, 92], float)


def independent_optimum(cands, shares_s, shares_d, length, stores, fate_cost) -> float:
    """The multi-period LP built here from the annual candidate tables with scipy's linprog: variables
    x[a,t], w[s,t], y[d,t], then stock, put, take per store and period (no arc dropped, no expansion code)."""
    sup, dem, arcs = cands.supplies, cands.demands, cands.arcs
    n_s, n_d, n_a, periods = len(sup), len(dem), len(arcs), len(length)
    amount_s = np.where(sup["quantity"] == "energy", sup["amount_mwh_per_yr"], sup["amount_t_per_yr"]).astype(float)
    amount_d = np.where(dem["quantity"] == "energy", dem["amount_mwh_per_yr"], dem["amount_t_per_yr"]).astype(float)
    k = len(stores)
    n_x, n_w, n_y, n_k = n_a * periods, n_s * periods, n_d * periods, k * periods
    n = n_x + n_w + n_y + 3 * n_k
    xi = lambda a, t: t * n_a + a  # noqa: E731
    wi = lambda s, t: n_x + t * n_s + s  # noqa: E731
    yi = lambda d, t: n_x + n_w + t * n_d + d  # noqa: E731
    si = lambda j, t: n_x + n_w + n_y + j * periods + t  # noqa: E731
    pi = lambda j, t: si(j, t) + n_k  # noqa: E731
    qi = lambda j, t: si(j, t) + 2 * n_k  # noqa: E731
    c = np.zeros(n)
    arc_cost = (arcs["transport_cost_per_t"] + arcs["processing_cost_per_t"]).to_numpy(float)
    ratio = arcs["ratio"].to_numpy(float)
    cap = arcs["capacity_t_per_yr"].to_numpy(float)
    share = dem["max_secondary_share"].astype(float).fillna(1.0).to_numpy()
    bounds = [(0.0, None)] * n
    eq_rows, eq_cols, eq_vals, b_eq = [], [], [], []
    ub_rows, ub_cols, ub_vals, b_ub = [], [], [], []

    def eq(terms, rhs):
        r = len(b_eq)
        for col, val in terms:
            eq_rows.append(r)
            eq_cols.append(col)
            eq_vals.append(val)
        b_eq.append(rhs)

    for t in range(periods):
        for a in range(n_a):
            c[xi(a, t)] = arc_cost[a]
            # Heat arcs (all arcs here) carry the demand's share cap σ·r/ρ as their capacity, per period σ·r_t/ρ.
            d = int(arcs["d"].iat[a])
            if not np.isnan(cap[a]) and share[d] < 1:
                bounds[xi(a, t)] = (0.0, share[d] * amount_d[d] * shares_d[d, t] / ratio[a])
        for s in range(n_s):
            c[wi(s, t)] = sup["fate_cost_per_t"].iat[s]
        for d in range(n_d):
            c[yi(d, t)] = dem["virgin_price_per_t"].iat[d]
        for s in range(n_s):
            terms = [(xi(a, t), 1.0) for a in np.flatnonzero(arcs["s"].to_numpy() == s)] + [(wi(s, t), 1.0)]
            for j, store in enumerate(stores):
                if store["side"] == "supply" and store["row"] == s:
                    terms += [(pi(j, t), 1.0), (qi(j, t), -1.0)]
            eq(terms, amount_s[s] * shares_s[s, t])
        for d in range(n_d):
            into = np.flatnonzero(arcs["d"].to_numpy() == d)
            terms = [(xi(a, t), ratio[a]) for a in into] + [(yi(d, t), 1.0)]
            for j, store in enumerate(stores):
                if store["side"] == "demand" and store["row"] == d:
                    terms += [(pi(j, t), -1.0), (qi(j, t), 1.0)]
            eq(terms, amount_d[d] * shares_d[d, t])
            if share[d] < 1 and len(into):
                r = len(b_ub)
                for a in into:
                    ub_rows.append(r)
                    ub_cols.append(xi(a, t))
                    ub_vals.append(ratio[a])
                b_ub.append(share[d] * amount_d[d] * shares_d[d, t])
    for j, store in enumerate(stores):
        keep = 1.0 - store["loss"]
        for t in range(periods):
            c[si(j, t)] = store["cost"] + (store["loss"] * fate_cost[store["row"]] if store["side"] == "supply" else 0)
            bounds[si(j, t)] = (0.0, store["capacity"])
            terms = [(si(j, t), 1.0), (pi(j, t), -1.0), (qi(j, t), 1.0)]
            if t > 0:
                terms.append((si(j, t - 1), -keep))
                eq(terms, 0.0)
            elif store["opening"] is None:
                terms.append((si(j, periods - 1), -keep))
                eq(terms, 0.0)
            else:
                eq(terms, keep * store["opening"])
        if store["opening"] is not None:
            eq([(si(j, periods - 1), 1.0)], store["opening"])
    a_eq = coo_matrix((eq_vals, (eq_rows, eq_cols)), shape=(len(b_eq), n)).tocsr()
    a_ub = coo_matrix((ub_vals, (ub_rows, ub_cols)), shape=(len(b_ub), n)).tocsr() if b_ub else None
    result = linprog(c, A_ub=a_ub, b_ub=b_ub or None, A_eq=a_eq, b_eq=b_eq, bounds=bounds, method="highs")
    assert result.status == 0, result.message
    return float(result.fun)


@st.composite
def random_regions(draw):
    n_sup = draw(st.integers(1, 3))
    n_dem = draw(st.integers(1, 3))
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    facilities = ["facility_id,name,sector,lat,lon"]
    flows = ["flow_id,facility_id,direction,category,material,amount,unit,price,price_unit,exchangeable,"
             "max_secondary_share,profile"]
    profiles = ["profile,period,share"]
    flow_ids = []
    for i in range(n_sup + n_dem):
        facilities.append(f"f{i},F{i},35.11,{55 + 0.01 * rng.random():.5f},{11 + 0.01 * rng.random():.5f}")
        has_profile = rng.random() < 0.7
        if has_profile:
            raw = rng.random(4) * (rng.random(4) < 0.7)
            raw = raw if raw.sum() > 0 else np.ones(4)
            shares = raw / raw.sum()
            shares[-1] = 1.0 - shares[:-1].sum()
            profiles += [f"p{i},q{t + 1},{float(max(shares[t], 0.0))!r}" for t in range(4)]
        profile = f"p{i}" if has_profile else ""
        if i < n_sup:
            flows.append(f"s{i},f{i},out,waste,hot_water,{rng.integers(1000, 50000)},MWh,{rng.integers(0, 5)},EUR/MWh"
                         f",,,{profile}")
            flow_ids.append(f"s{i}")
        else:
            share = f"{rng.uniform(0.3, 1):.3f}" if rng.random() < 0.3 else ""
            flows.append(f"d{i},f{i},in,energy,district_heat,{rng.integers(1000, 50000)},MWh,"
                         f"{rng.integers(10, 40)},EUR/MWh,true,{share},{profile}")
            flow_ids.append(f"d{i}")
    stores = ["store_id,flow_id,capacity,cost_per_period,loss_per_period,opening_level"]
    for j in range(draw(st.integers(0, 2))):
        capacity = float(rng.integers(0, 20000))
        opening = "" if rng.random() < 0.5 else f"{rng.uniform(0, 1) * capacity * 0.2:.1f}"
        stores.append(f"k{j},{flow_ids[rng.integers(len(flow_ids))]},{capacity},{rng.uniform(0, 2):.3f},"
                      f"{rng.uniform(0, 0.5):.3f},{opening}")
    return "\n".join(facilities) + "\n", "\n".join(flows) + "\n", \
        ("\n".join(profiles) + "\n") if len(profiles) > 1 else "", \
        ("\n".join(stores) + "\n") if len(stores) > 1 else ""


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture],
          phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(data=random_regions())
def test_random_multi_period_regions_hold_the_invariants_and_the_independent_optimum(tmp_path_factory, data) -> None:
    facilities, flows, profiles, stores = data
    folder = write_region(tmp_path_factory.mktemp("random"), periods="periods: 4 quarters", facilities=facilities,
                          flows=flows, profiles=profiles, stores=stores)
    try:
        region = load_region(folder)
    except InputError as exc:  # a drawn opening level above capacity is refused, as it should be
        assert "above the store's capacity" in str(exc)
        return
    results = optimise(region)
    pr = results.periods
    tol = 1e-6
    # Stock within [0, capacity] in every period.
    if len(pr.stores):
        assert (pr.stores["level"] >= -tol).all()
        assert (pr.stores["level"] <= pr.stores["capacity"] * (1 + 1e-9) + tol).all()
        # The stock balance, period by period, from the table alone.
        expected = (1 - region.time.stores.set_index("store_id").loc[pr.stores["store_id"], "loss_per_period"]
                    .to_numpy()) * pr.stores["opening"] + pr.stores["fill"] - pr.stores["draw"]
        np.testing.assert_allclose(pr.stores["level"], expected, rtol=1e-7, atol=1e-4)
    # Every period balances: supply = shipped + to fate + what the supplier's stores took in net;
    # need = delivered + virgin − what the receiver's stores took in net.
    k = pr.kpis.set_index("period")
    net = (pr.stores.assign(net=pr.stores["fill"] - pr.stores["draw"]).groupby(["period", "side"])["net"].sum()
           if len(pr.stores) else pd.Series(dtype=float))

    def store_net(period: str, side: str) -> float:
        return float(net.get((period, side), 0.0))

    for period in k.index:
        assert k.loc[period, "supply_mwh"] == pytest.approx(
            k.loc[period, "exchanged_mwh"] + k.loc[period, "to_fate_mwh"] + store_net(period, "supply"), abs=1e-3)
        assert k.loc[period, "need_mwh"] == pytest.approx(
            k.loc[period, "delivered_mwh"] + k.loc[period, "virgin_mwh"] - store_net(period, "demand"), abs=1e-3)
    # Annual = Σ periods.
    assert k["cost_optimum"].sum() == pytest.approx(results.kpis["cost_optimum"], rel=1e-9, abs=1e-6)
    assert k["cost_bau"].sum() == pytest.approx(results.kpis["cost_bau"], rel=1e-9, abs=1e-6)
    assert k["exchanged_mwh"].sum() == pytest.approx(results.exchanges["amount_mwh_per_yr"].sum(), rel=1e-9,
                                                     abs=1e-6)
    annual = results.exchanges.groupby(["supply_id", "demand_id"])["amount_mwh_per_yr"].sum()
    summed = pr.exchanges.groupby(["supply_id", "demand_id"])["amount_mwh"].sum()
    pd.testing.assert_series_equal(annual.sort_index(), summed.reindex(annual.index).sort_index(),
                                   check_names=False, rtol=1e-9, atol=1e-6)
    # The optimum matches an LP built independently from the annual candidate tables.
    cands = build_candidates(region)
    length = QUARTER_DAYS / QUARTER_DAYS.sum()
    shares_s = region.time.shares(cands.supplies["supply_id"])
    shares_d = region.time.shares(cands.demands["demand_id"])
    supply_pos = {f: i for i, f in enumerate(cands.supplies["supply_id"])}
    demand_pos = {f: i for i, f in enumerate(cands.demands["demand_id"])}
    store_list = []
    for row in region.time.stores.itertuples():
        side, pos = ("supply", supply_pos[row.flow_id]) if row.flow_id in supply_pos else \
            ("demand", demand_pos.get(row.flow_id))
        if pos is None:
            continue
        store_list.append({"side": side, "row": pos, "capacity": row.capacity, "cost": row.cost_per_period,
                           "loss": row.loss_per_period,
                           "opening": None if np.isnan(row.opening_level) else row.opening_level})
    expected = independent_optimum(cands, shares_s, shares_d, length, store_list,
                                   cands.supplies["fate_cost_per_t"].to_numpy(float))
    assert results.kpis["objective_optimum"] == pytest.approx(expected, rel=1e-7, abs=1e-4)
    # Column generation over the arc-periods (the stores in every restricted model) reaches the same optimum.
    priced = optimise(region, strategy="column_generation")
    assert priced.kpis["objective_optimum"] == pytest.approx(expected, rel=1e-7, abs=1e-4)


# --- bad input ----------------------------------------------------------------------------------------


def _problems(folder: Path) -> list:
    with pytest.raises(InputError) as caught:
        load_region(folder)
    return caught.value.problems


def _has(problems: list, file: str, row: int | None, column: str, words: str) -> bool:
    return any(file in p.file and p.row == row and p.column == column and words in p.message for p in problems)


FLOWS = ("flow_id,facility_id,direction,category,material,amount,unit,price,price_unit,exchangeable,profile\n"
         "plant_heat,plant,out,waste,hot_water,36500,MWh,1,EUR/MWh,,{p}\n"
         "town_heat,town,in,energy,district_heat,20000,MWh,30,EUR/MWh,true,\n")


def test_bad_periods_profiles_and_stores_are_refused_with_file_row_and_column(tmp_path: Path) -> None:
    problems = _problems(write_region(
        tmp_path / "a", periods=SEASONS, facilities=PLANT_TOWN, flows=FLOWS.format(p="ghost"),
        profiles="profile,period,share\nwinter_only,winter,0.5\nwinter_only,rest,0.4\nodd,summer,1\n",
        stores="store_id,flow_id,capacity,cost_per_period,loss_per_period\n"
               "pit,plant_heat,-5,0.5,0.1\ntank,plant_heat,100,0,1.5\nnone,nowhere,10,0,0\n"))
    assert _has(problems, "profiles.csv", 2, "share", "do not sum to 1")
    assert _has(problems, "profiles.csv", 4, "period", "unknown period")
    assert _has(problems, "flows.csv", 2, "profile", "unknown profile")
    assert _has(problems, "stores.csv", 2, "capacity", "negative")
    assert _has(problems, "stores.csv", 3, "loss_per_period", "out of range")
    assert _has(problems, "stores.csv", 4, "flow_id", "unknown flow")


def test_periods_that_do_not_tile_the_year_are_refused(tmp_path: Path) -> None:
    problems = _problems(write_region(
        tmp_path / "b", periods="periods:\n  - {name: winter, days: 90}\n  - {name: rest, days: 200}",
        facilities=PLANT_TOWN, flows=FLOWS.format(p="")))
    assert _has(problems, "region.yaml", None, "periods", "do not tile the year")
    problems = _problems(write_region(tmp_path / "c", periods="periods: 13 months", facilities=PLANT_TOWN,
                                      flows=FLOWS.format(p="")))
    assert _has(problems, "region.yaml", None, "periods", "unknown periods")


def test_profiles_without_periods_are_refused(tmp_path: Path) -> None:
    problems = _problems(write_region(tmp_path / "d", periods="", facilities=PLANT_TOWN,
                                      flows=FLOWS.format(p="winter_only"),
                                      profiles="profile,period,share\nwinter_only,winter,1\n"))
    assert _has(problems, "profiles.csv", 1, "period", "profiles need periods")


def test_calendars_tile_the_year() -> None:
    for text, n in (("12 months", 12), ("4 quarters", 4), ("52 weeks", 52), ("1 year", 1)):
        table = calendar(text, Problems(), "region.yaml")
        assert table is not None and len(table) == n
        assert table["days"].sum() == 365
        assert table["share"].sum() == pytest.approx(1.0, abs=1e-12)


# --- output files -------------------------------------------------------------------------------------


def test_run_writes_the_period_files_and_masks_a_confidential_facility(tmp_path: Path) -> None:
    from symbiosis.pipeline import write_outputs

    folder = write_region(
        tmp_path / "out_region", periods=SEASONS,
        facilities="facility_id,name,sector,lat,lon,confidential\nplant,Secret Plant,35.11,55.00,11.00,true\n"
                   "town,Town,35.30,55.02,11.00,false\n",
        flows="flow_id,facility_id,direction,category,material,amount,unit,price,price_unit,exchangeable,profile\n"
              "plant_heat,plant,out,waste,hot_water,36500,MWh,1,EUR/MWh,,\n"
              "town_heat,town,in,energy,district_heat,20000,MWh,30,EUR/MWh,true,winter_only\n",
        arcs="supply_facility,demand_facility,distance_km\nplant,town,5\n",
        profiles="profile,period,share\nwinter_only,winter,1\n",
        stores="store_id,flow_id,capacity,cost_per_period,loss_per_period\npit,plant_heat,10000,0.5,0.1\n")
    region = load_region(folder)
    results = optimise(region)
    private = write_outputs(results, region, tmp_path / "private", public=False)
    assert {"periods_png"} <= set(private)
    by_period = pd.read_csv(tmp_path / "private" / "exchanges_by_period.csv")
    assert by_period["amount_mwh"].sum() == pytest.approx(results.exchanges["amount_mwh_per_yr"].sum(), rel=1e-9)
    kpis = pd.read_csv(tmp_path / "private" / "kpis_by_period.csv")
    assert list(kpis["period"]) == ["winter", "rest"]
    stores = pd.read_csv(tmp_path / "private" / "stores.csv")
    assert stores["level"].max() == pytest.approx(10_000, rel=1e-9)
    assert (tmp_path / "private" / "periods.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (tmp_path / "private" / "report.html").read_text()
    assert 'id="periods"' in report and report.count('class="period-row"') == 2
    write_outputs(results, region, tmp_path / "public", public=True, pngs=False)
    for name in ("exchanges_by_period.csv", "stores.csv", "report.html"):
        text = (tmp_path / "public" / name).read_text()
        assert "Secret Plant" not in text and "plant_heat" not in text, name
    public_stores = pd.read_csv(tmp_path / "public" / "stores.csv")
    assert public_stores["level"].isna().all()  # the confidential plant's store shows no figure


def test_a_workbook_region_takes_periods_profiles_and_stores(tmp_path: Path) -> None:
    """The `region` sheet's `periods` key and the `profiles` and `stores` sheets read like the folder's files."""
    def frame(text: str) -> pd.DataFrame:
        rows = [line.split(",") for line in text.strip().splitlines()]
        return pd.DataFrame(rows[1:], columns=rows[0])

    path = tmp_path / "seasonal.xlsx"
    with pd.ExcelWriter(path) as writer:
        frame("key,value\nname,Seasonal\ncurrency,EUR\nmax_distance_km,50\nperiods,4 quarters\n").to_excel(
            writer, sheet_name="region", index=False)
        frame(PLANT_TOWN).to_excel(writer, sheet_name="facilities", index=False)
        frame("flow_id,facility_id,direction,category,material,amount,unit,price,price_unit,exchangeable,profile\n"
              "plant_heat,plant,out,waste,hot_water,36500,MWh,1,EUR/MWh,,\n"
              "town_heat,town,in,energy,district_heat,20000,MWh,30,EUR/MWh,true,q1_only\n").to_excel(
            writer, sheet_name="flows", index=False)
        frame("supply_facility,demand_facility,distance_km\nplant,town,5\n").to_excel(writer, sheet_name="arcs",
                                                                                       index=False)
        frame("profile,period,share\nq1_only,q1,1\n").to_excel(writer, sheet_name="profiles", index=False)
        frame("store_id,flow_id,capacity\npit,plant_heat,1000\n").to_excel(writer, sheet_name="stores", index=False)
    region = load_region(path)
    assert region.time is not None and region.time.names == ["q1", "q2", "q3", "q4"]
    assert region.time.flow_profile == {"town_heat": "q1_only"}
    assert list(region.time.stores["store_id"]) == ["pit"]
    results = optimise(region)
    # Q1 (90 days) has 9,000 MWh of its own plus at most 1,000 carried in the pit (no loss, no cost).
    assert results.exchanges["amount_mwh_per_yr"].sum() == pytest.approx(36_500 * 90 / 365 + 1_000, rel=1e-9)


def test_a_share_cap_follows_the_demands_profile_not_the_periods_length(tmp_path: Path) -> None:
    """Tiny region (tests/tiny_by_hand.py) with the cement plant's clay needed in q1 only. Fly ash may
    replace at most 30 % of a clay need (substitution max_share): in q1 the cap into cement is
    0.3 · 100,000 / 0.9 = 33,333 t, far above the 40,000 · 90/365 = 9,863 t of fly ash made in q1, so all of
    q1's fly ash goes to cement (its best receiver, tiny_by_hand) and the rest of the year's to far. Spreading
    the cap by q1's length (8,219 t) instead would send some of q1's fly ash to far."""
    import shutil

    folder = tmp_path / "tiny"
    shutil.copytree(TINY, folder)
    flows = pd.read_csv(folder / "flows.csv", dtype=str, keep_default_na=False)
    flows["profile"] = np.where(flows["flow_id"] == "cement_clay", "q1_only", "")
    flows.to_csv(folder / "flows.csv", index=False)
    (folder / "profiles.csv").write_text("profile,period,share\nq1_only,q1,1\n")
    text = (folder / "region.yaml").read_text()
    (folder / "region.yaml").write_text(text + "periods: 4 quarters\n")
    results = optimise(load_test_region(folder))
    ash = results.exchanges[results.exchanges["supply_id"].str.contains("fly_ash")].set_index("demand_facility")
    q1_ash = 40_000 * 90 / 365
    assert ash.loc["cement", "amount_t_per_yr"] == pytest.approx(q1_ash, rel=1e-9)
    assert ash.loc["far", "amount_t_per_yr"] == pytest.approx(40_000 - q1_ash, rel=1e-9)


def test_tradeoff_refuses_a_region_with_periods_instead_of_ignoring_them(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from symbiosis.cli import app

    folder = write_region(tmp_path / "r", periods=SEASONS, facilities=PLANT_TOWN, flows=FLOWS.format(p=""),
                          arcs="supply_facility,demand_facility,distance_km\nplant,town,5\n")
    result = CliRunner().invoke(app, ["tradeoff", str(folder), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert "does not handle periods" in result.output
    assert not (tmp_path / "out" / "tradeoff.csv").exists()


def test_a_permitted_tonnage_holds_over_the_year_not_per_period(tmp_path: Path) -> None:
    """tests/test_permit_limits.py's kiln, permitted 300 t/yr of hazardous fly ash, over four quarters: the
    permit row is annual, so the kiln still takes 200 t of ash A and 100 t of B over the year (A made in q1
    only), and one more permitted tonne is still worth 60 EUR. Without the permit carried into the expanded
    candidates the kiln would take all 450 t."""
    from tests.test_permit_limits import _region

    folder = _region(tmp_path / "permit", "kiln,100116,300,permit 2025-3\n", extra="periods: 4 quarters\n")
    flows = pd.read_csv(folder / "flows.csv", dtype=str, keep_default_na=False)
    flows["profile"] = np.where(flows["flow_id"] == "ashA", "q1_only", "")
    flows.to_csv(folder / "flows.csv", index=False)
    (folder / "profiles.csv").write_text("profile,period,share\nq1_only,q1,1\n")
    results = optimise(load_region(folder))
    by_supply = results.exchanges.groupby("supply_id")["amount_t_per_yr"].sum()
    assert by_supply["ashA"] == pytest.approx(200.0, rel=1e-9)
    assert by_supply["ashB"] == pytest.approx(100.0, rel=1e-9)
    row = results.permit_limits.iloc[0]
    assert row["received_t_per_yr"] == pytest.approx(300.0, rel=1e-9)
    assert row["permit_dual_per_t"] == pytest.approx(60.0, rel=1e-9)
