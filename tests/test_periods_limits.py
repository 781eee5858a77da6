"""Amounts per period (profiles.csv ``amount``) and limits per period (``intake_profile`` on facilities and in
flows, ``capacity_profile`` on processors): hand-solved cases, invariants on random regions, and bad input
refused with file, row and column (symbiosis/periods/data.py, expand.py).

Every test here fails on the code before these inputs: profiles.csv had to give shares, and intake limits and
processor capacities were the annual figure spread by the periods' lengths.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from symbiosis import load_region, optimise
from symbiosis.candidates import candidates as build_candidates
from symbiosis.errors import InputError
from tests.test_periods import PLANT_TOWN, SEASONS, write_region

ROOT = Path(__file__).resolve().parent.parent
PROCESSOR = ROOT / "tests" / "data" / "regions" / "processor"

# --- amounts per period -------------------------------------------------------------------------------

HEAT_FLOWS = ("flow_id,facility_id,direction,category,material,amount,unit,price,price_unit,exchangeable,profile\n"
              "plant_heat,plant,out,waste,hot_water,{amount},MWh,1,EUR/MWh,,{profile}\n"
              "town_heat,town,in,energy,district_heat,20000,MWh,30,EUR/MWh,true,winter_only\n")
WINTER_ONLY = "winter_only,winter,,1\nwinter_only,rest,,0\n"


def _heat_region(folder: Path, amount: str, profiles: str) -> Path:
    return write_region(folder, periods=SEASONS, facilities=PLANT_TOWN,
                        flows=HEAT_FLOWS.format(amount=amount, profile="heat_amounts"),
                        arcs="supply_facility,demand_facility,distance_km\nplant,town,5\n",
                        profiles="profile,period,amount,share\n" + profiles + WINTER_ONLY)


@pytest.mark.parametrize("amount", ["", "10000"], ids=["annual_left_empty", "annual_given"])
def test_amounts_per_period_set_each_periods_supply_and_the_annual_is_their_sum(tmp_path: Path, amount: str) -> None:
    """Waste heat of 9,000 MWh in winter and 1,000 in the rest of the year (not 10,000 spread by length:
    2,466 and 7,534), district heat needed in winter only. By hand: winter ships all its 9,000 MWh (9,000 ·
    0.99 = 8,910 ≤ 20,000 needed), each saving 0.99 · 30 − 0.25 against cooling at 1; the rest's 1,000 go to
    cooling (nobody needs heat then)."""
    region = load_region(_heat_region(tmp_path / "r", amount, "heat_amounts,winter,9000,\nheat_amounts,rest,1000,\n"))
    flows = region.flows.set_index("flow_id")
    assert flows.at["plant_heat", "amount_mwh_per_yr"] == pytest.approx(10_000.0, rel=1e-12)
    results = optimise(region)
    kpis = results.periods.kpis.set_index("period")
    assert kpis.at["winter", "supply_mwh"] == pytest.approx(9_000.0, rel=1e-12)
    assert kpis.at["rest", "supply_mwh"] == pytest.approx(1_000.0, rel=1e-12)
    shipped = results.periods.exchanges.set_index("period")["amount_mwh"]
    assert shipped.loc["winter"] == pytest.approx(9_000.0, rel=1e-9)
    assert "rest" not in shipped.index
    optimum = 0.25 * 9_000 + 1.0 * 1_000 + 30.0 * (20_000 - 0.99 * 9_000)
    assert results.kpis["objective_optimum"] == pytest.approx(optimum, rel=1e-9)
    assert kpis["supply_mwh"].sum() == pytest.approx(flows.at["plant_heat", "amount_mwh_per_yr"], rel=1e-12)


def _problems(folder: Path) -> list:
    with pytest.raises(InputError) as caught:
        load_region(folder)
    return caught.value.problems


def _has(problems: list, file: str, row: int | None, column: str, words: str) -> bool:
    return any(file in p.file and p.row == row and p.column == column and words in p.message for p in problems)


def test_bad_amounts_per_period_are_refused_with_file_row_and_column(tmp_path: Path) -> None:
    problems = _problems(_heat_region(
        tmp_path / "a", "12000",
        "heat_amounts,winter,9000,\nheat_amounts,rest,1000,\nheat_amounts,summer,5,\n"
        "neg,winter,-3,\nneg,rest,4,\nboth,winter,5,0.5\nboth,rest,5,\nmixed,winter,5,\nmixed,rest,,1\n"
        "nothing,winter,0,\nnothing,rest,0,\n"))
    # rows as a spreadsheet shows them: the header is row 1
    assert _has(problems, "profiles.csv", 4, "period", "unknown period")
    assert _has(problems, "profiles.csv", 5, "amount", "negative")
    assert _has(problems, "profiles.csv", 7, "amount", "both a share and an amount")
    assert _has(problems, "profiles.csv", 10, "share", "mixes shares and amounts")
    assert _has(problems, "profiles.csv", 11, "amount", "sum to 0")
    assert _has(problems, "flows.csv", 2, "amount", "contradicts its profile's amounts")


def test_a_profile_of_amounts_on_a_rate_is_refused(tmp_path: Path) -> None:
    folder = _heat_region(tmp_path / "b", "", "heat_amounts,winter,9000,\nheat_amounts,rest,1000,\n")
    flows = (folder / "flows.csv").read_text().replace(",,MWh,", ",,MWh/h,", 1)
    (folder / "flows.csv").write_text(flows)
    assert _has(_problems(folder), "flows.csv", 2, "unit", "needs a unit without time")


def test_under_period_month_an_annual_amount_is_compared_per_year(tmp_path: Path) -> None:
    """`period: month`: an amount without time is per month, so 10,000 MWh of amounts over the year are
    833.33 a month; 10,000 in the flow's amount is 120,000 a year and contradicts them."""
    folder = _heat_region(tmp_path / "c", "", "heat_amounts,winter,9000,\nheat_amounts,rest,1000,\n")
    text = (folder / "region.yaml").read_text()
    (folder / "region.yaml").write_text(text.replace("currency: EUR\n", "currency: EUR\nperiod: month\n"))
    region = load_region(folder)
    assert region.flows.set_index("flow_id").at["plant_heat", "amount_mwh_per_yr"] == pytest.approx(10_000.0)
    (folder / "flows.csv").write_text((folder / "flows.csv").read_text().replace(",,MWh,", ",10000,MWh,", 1))
    assert _has(_problems(folder), "flows.csv", 2, "amount", "contradicts")


# --- limits per period: a kiln shut for a month ----------------------------------------------------------

SHUTDOWN = "periods:\n  - {name: shutdown, days: 31}\n  - {name: rest, days: 334}"
KILN_FACILITIES = ("facility_id,name,sector,lat,lon,intake_capacity_t_per_yr,intake_profile\n"
                   "plant,Power plant,35.11,55.60,11.00,,\nkiln,Cement kiln,23.51,55.62,11.01,{limit},kiln_open\n")
KILN_FLOWS = ("flow_id,facility_id,direction,category,material,amount,unit,fate,price,price_unit,ewc_code\n"
              "ash,plant,out,waste,fly_ash,3650,t,landfill,60,EUR/t,100102\n"
              "sand,kiln,in,raw_material,sand,40000,t,,20,EUR/t,\n")


def _kiln(folder: Path, rest: float, *, limit: str = "", stores: str = "", profile: str | None = None) -> Path:
    return write_region(folder, periods=SHUTDOWN, facilities=KILN_FACILITIES.format(limit=limit), flows=KILN_FLOWS,
                        arcs="supply_facility,demand_facility,distance_km,cost_per_t\nplant,kiln,1,0\n",
                        profiles=profile or f"profile,period,amount\nkiln_open,shutdown,0\nkiln_open,rest,{rest:g}\n",
                        stores=stores)


# By hand (tests/test_permit_limits.py's kiln): fly ash replaces sand 1:1, transport costs nothing, so a
# tonne of ash used saves 60 (landfill) + 20 (sand) = 80 EUR. Ash is made flat: 310 t in the 31-day shutdown,
# 3,340 t in the rest. The kiln takes nothing in the shutdown (its intake limit is 0 then); the sand's 30 %
# share cap (0.3 · 40,000 · 334/365 = 10,981 t in the rest) never binds.
ASH = {"shutdown": 3650 * 31 / 365, "rest": 3650 * 334 / 365}
BAU = 60 * 3650 + 20 * 40_000


def test_a_kiln_shut_for_a_month_takes_nothing_then_and_its_ash_goes_to_its_fate(tmp_path: Path) -> None:
    results = optimise(load_region(_kiln(tmp_path / "k", 4000)))
    shipped = results.periods.exchanges.set_index("period")["amount_t"]
    assert "shutdown" not in shipped.index  # spread by length the kiln would take 4,000 · 31/365 = 340 t then
    assert shipped.loc["rest"] == pytest.approx(ASH["rest"], rel=1e-9)
    kpis = results.periods.kpis.set_index("period")
    assert kpis.at["shutdown", "to_fate_t"] == pytest.approx(ASH["shutdown"], rel=1e-9)
    assert results.kpis["objective_optimum"] == pytest.approx(60 * ASH["shutdown"] + 20 * (40_000 - ASH["rest"]),
                                                              rel=1e-9)
    assert results.kpis["cost_bau"] == pytest.approx(BAU, rel=1e-9)
    facilities = results.facilities.set_index("facility_id")
    assert facilities.at["kiln", "intake_capacity_t_per_yr"] == pytest.approx(4000.0)  # the amounts' sum
    # Why not matched: the ash left is made while the kiln is shut (it was "not_economic" before).
    supply = results.supplies.set_index("supply_id").loc["ash"]
    assert supply["reason"] == "not_at_the_same_time"
    assert "310 of the 310 t" in supply["reason_detail"] and "(shutdown)" in supply["reason_detail"]


def test_a_silo_at_the_plant_carries_the_shutdowns_ash_to_the_kiln_afterwards(tmp_path: Path) -> None:
    """A 500 t silo at the plant (1 EUR/t per period, no loss, cyclic): the shutdown's 310 t wait in it and
    go to the kiln in the rest (3,650 t ≤ 4,000); the silo is empty again at the end of the year. Optimum:
    sand for 40,000 − 3,650 t plus 310 t held one period."""
    results = optimise(load_region(_kiln(tmp_path / "s", 4000, stores="store_id,flow_id,capacity,cost_per_period\n"
                                                                       "silo,ash,500,1\n")))
    stores = results.periods.stores.set_index("period")
    assert stores.at["shutdown", "level"] == pytest.approx(ASH["shutdown"], rel=1e-9)
    assert stores.at["rest", "level"] == pytest.approx(0.0, abs=1e-6)
    shipped = results.periods.exchanges.set_index("period")["amount_t"]
    assert "shutdown" not in shipped.index
    assert shipped.loc["rest"] == pytest.approx(3650.0, rel=1e-9)
    assert results.kpis["objective_optimum"] == pytest.approx(20 * (40_000 - 3650) + 1 * ASH["shutdown"], rel=1e-9)


@pytest.mark.parametrize("on", ["facility", "flow"])
def test_a_full_kiln_is_worth_80_per_tonne_of_annual_limit_all_of_it_in_the_rest(tmp_path: Path, on: str) -> None:
    """All 3,650 t of ash made in the rest (a profile of amounts: 0 in the shutdown), the kiln limited to
    3,000 t then (0 in the shutdown): 650 t go to landfill, so one more tonne of limit in the rest is worth
    80 EUR, and in the shutdown (no ash then) nothing. The annual limit's dual spreads one more tonne as its
    profile does (all in the rest): 80, where spreading it by length would give 80 · 334/365 = 73.2."""
    folder = _kiln(tmp_path / "f", 3000, limit="3000")
    flows = KILN_FLOWS.replace("ewc_code\n", "ewc_code,profile,max_intake_t_per_yr,intake_profile\n", 1)
    flows = flows.replace("100102\n", "100102,ash_rest,,\n")
    if on == "flow":  # the same limit on the sand flow instead of the kiln
        (folder / "facilities.csv").write_text(KILN_FACILITIES.format(limit="").replace("kiln_open", ""))
        flows = flows.replace("EUR/t,\n", "EUR/t,,,3000,kiln_open\n")
    (folder / "flows.csv").write_text(flows.replace("EUR/t,\n", "EUR/t,,,,\n"))
    with (folder / "profiles.csv").open("a") as profiles:
        profiles.write("ash_rest,shutdown,0\nash_rest,rest,3650\n")
    results = optimise(load_region(folder))
    assert results.periods.kpis.set_index("period").at["shutdown", "supply_t"] == 0.0
    assert results.kpis["objective_optimum"] == pytest.approx(60 * (3650 - 3000) + 20 * (40_000 - 3000), rel=1e-9)
    if on == "facility":
        assert results.facilities.set_index("facility_id").at["kiln", "intake_dual_per_t"] == pytest.approx(80.0)
    else:
        assert results.demands.set_index("demand_id").at["sand", "intake_dual_per_t"] == pytest.approx(80.0)


def test_a_share_profile_spreads_a_given_intake_limit(tmp_path: Path) -> None:
    """Shares instead of amounts: the annual 4,000 t spread 0 / 1 gives the same periods' limits."""
    results = optimise(load_region(_kiln(tmp_path / "p", 0, limit="4000",
                                         profile="profile,period,share\nkiln_open,shutdown,0\nkiln_open,rest,1\n")))
    shipped = results.periods.exchanges.set_index("period")["amount_t"]
    assert "shutdown" not in shipped.index and shipped.loc["rest"] == pytest.approx(ASH["rest"], rel=1e-9)


def test_a_flows_intake_profile_limits_that_flow_per_period(tmp_path: Path) -> None:
    """The same shutdown on the sand flow's own `max_intake_t_per_yr` instead of the facility's limit."""
    folder = _kiln(tmp_path / "flow", 4000)
    (folder / "facilities.csv").write_text(KILN_FACILITIES.format(limit="").replace("kiln_open", ""))
    flows = KILN_FLOWS.replace("ewc_code\n", "ewc_code,max_intake_t_per_yr,intake_profile\n", 1)
    flows = flows.replace("100102\n", "100102,,\n").replace("EUR/t,\n", "EUR/t,,,kiln_open\n")
    (folder / "flows.csv").write_text(flows)
    region = load_region(folder)
    assert region.time.flow_intake_profile == {"sand": "kiln_open"}
    results = optimise(region)
    shipped = results.periods.exchanges.set_index("period")["amount_t"]
    assert "shutdown" not in shipped.index and shipped.loc["rest"] == pytest.approx(ASH["rest"], rel=1e-9)


def test_bad_limit_profiles_are_refused_with_file_row_and_column(tmp_path: Path) -> None:
    problems = _problems(_kiln(tmp_path / "bad", 4000, limit="5000"))
    assert _has(problems, "facilities.csv", 3, "intake_capacity_t_per_yr", "contradicts its profile's amounts")
    problems = _problems(_kiln(tmp_path / "none", 0, profile="profile,period,share\nkiln_open,shutdown,0\n"
                                                             "kiln_open,rest,1\n"))
    assert _has(problems, "facilities.csv", 3, "intake_capacity_t_per_yr", "needs a limit to spread")
    folder = _kiln(tmp_path / "ghost", 4000)
    (folder / "facilities.csv").write_text(KILN_FACILITIES.format(limit="").replace("kiln_open", "ghost"))
    assert _has(_problems(folder), "facilities.csv", 3, "intake_profile", "unknown profile")


def _digester_shut_in_q1(tmp_path: Path):
    """tests/data/regions/processor over four quarters, the digester's capacity 0 in q1 (a capacity profile of
    shares over the other three quarters)."""
    folder = tmp_path / "processor"
    shutil.copytree(PROCESSOR, folder)
    (folder / "region.yaml").write_text((folder / "region.yaml").read_text() + "periods: 4 quarters\n")
    (folder / "processors.csv").write_text(
        "facility_id,capacity,operating_cost_per_unit,gate_fee_per_t,source,capacity_profile\n"
        "digester,30000,4,10,permit (invented),closed_q1\n")
    (folder / "profiles.csv").write_text("profile,period,share\n" + "".join(
        f"closed_q1,{q},{days / 275!r}\n" for q, days in (("q2", 91), ("q3", 92), ("q4", 92))))
    region = load_region(folder)
    return region


def test_a_processor_shut_in_q1_takes_no_grain_then(tmp_path: Path) -> None:
    """tests/data/regions/processor over four quarters, the digester's capacity 0 in q1 (a capacity profile
    of shares): q1's spent grain (6,000 · 90/365 t) goes to incineration, its fate; the other quarters' to
    the digester as in the annual optimum."""
    region = _digester_shut_in_q1(tmp_path)
    assert region.time.processor_profile == {"digester": "closed_q1"}
    results = optimise(region)
    assert "q1" not in set(results.periods.exchanges["period"])
    kpis = results.periods.kpis.set_index("period")
    assert kpis.at["q1", "to_fate_t"] == pytest.approx(6000 * 90 / 365, rel=1e-9)
    grain = results.supplies.set_index("supply_id").loc["brewery_grain"]
    assert grain["reason"] == "not_at_the_same_time" and "(q1)" in grain["reason_detail"]
    into_digester = results.periods.exchanges[results.periods.exchanges["demand_facility"] == "digester"]
    assert into_digester.groupby("period")["amount_t"].sum().to_dict() == pytest.approx(
        {q: 6000 * days / 365 for q, days in (("q2", 91), ("q3", 92), ("q4", 92))}, rel=1e-9)


# --- invariants on random regions ---------------------------------------------------------------------

QUARTERS = ["q1", "q2", "q3", "q4"]


@st.composite
def random_limited_regions(draw):
    """One to three ash supplies with amounts per quarter (some left for the profile to give), one to two
    kilns with a per-quarter intake limit (amounts, some 0)."""
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    n_sup, n_kiln = draw(st.integers(1, 3)), draw(st.integers(1, 2))
    facilities = ["facility_id,name,sector,lat,lon,intake_capacity_t_per_yr,intake_profile"]
    flows = ["flow_id,facility_id,direction,category,material,amount,unit,fate,price,price_unit,ewc_code,profile"]
    profiles = ["profile,period,amount,share"]
    supply_amounts, limits = {}, {}
    for i in range(n_sup):
        amounts = rng.integers(0, 2000, 4) * (rng.random(4) < 0.8)
        amounts[rng.integers(0, 4)] += 1
        supply_amounts[f"ash{i}"] = amounts.astype(float)
        profiles += [f"ash{i}_q,{q},{a}," for q, a in zip(QUARTERS, amounts, strict=True)]
        facilities.append(f"p{i},Plant {i},35.11,{55.60 + 0.001 * i:.4f},11.00,,")
        given = "" if rng.random() < 0.5 else str(int(amounts.sum()))
        flows.append(f"ash{i},p{i},out,waste,fly_ash,{given},t,landfill,{rng.integers(10, 80)},EUR/t,100102,ash{i}_q")
    for j in range(n_kiln):
        limit = rng.integers(0, 3000, 4) * (rng.random(4) < 0.7)
        limit[rng.integers(0, 4)] += 1
        limits[f"k{j}"] = limit.astype(float)
        if rng.random() < 0.5:  # a profile of amounts, the annual limit left empty or given as their sum
            profiles += [f"k{j}_open,{q},{a}," for q, a in zip(QUARTERS, limit, strict=True)]
            given = "" if rng.random() < 0.5 else str(int(limit.sum()))
        else:  # a profile of shares spreading a given annual limit
            profiles += [f"k{j}_open,{q},,{float(a / limit.sum())!r}" for q, a in zip(QUARTERS, limit, strict=True)]
            given = str(int(limit.sum()))
        facilities.append(f"k{j},Kiln {j},23.51,{55.62 + 0.001 * j:.4f},11.01,{given},k{j}_open")
        flows.append(f"sand{j},k{j},in,raw_material,sand,{rng.integers(20000, 60000)},t,,{rng.integers(5, 30)},"
                     "EUR/t,,")
    return "\n".join(facilities) + "\n", "\n".join(flows) + "\n", "\n".join(profiles) + "\n", supply_amounts, limits


@settings(max_examples=12, deadline=None, phases=[Phase.generate],
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=random_limited_regions())
def test_random_regions_keep_per_period_amounts_and_intake_limits(tmp_path_factory, data) -> None:
    facilities, flows, profiles, supply_amounts, limits = data
    folder = write_region(tmp_path_factory.mktemp("lim"), periods="periods: 4 quarters", facilities=facilities,
                          flows=flows, profiles=profiles)
    with (folder / "region.yaml").open("a") as yaml:  # money only, as the independent LP below
        yaml.write("  carbon_price: 0\n")
    region = load_region(folder)
    annual = region.flows.set_index("flow_id")["amount_t_per_yr"]
    for flow_id, amounts in supply_amounts.items():  # the annual amount is the sum of the periods' amounts
        assert annual[flow_id] == pytest.approx(amounts.sum(), rel=1e-12)
    results = optimise(region)
    exchanges = results.periods.exchanges
    kpis = results.periods.kpis.set_index("period").reindex(QUARTERS)
    assert kpis["supply_t"].to_numpy() == pytest.approx(sum(supply_amounts.values()), rel=1e-9, abs=1e-9)
    # an intake limit is on the tonnes received (shipped), not the need they meet
    received = (exchanges.groupby(["demand_facility", "period"])["amount_t"].sum()
                if len(exchanges) else pd.Series(dtype=float))
    for kiln, limit in limits.items():  # intake per period never above its period's limit
        taken = np.array([received.get((kiln, q), 0.0) for q in QUARTERS])
        assert np.all(taken <= limit + 1e-6 * np.maximum(1.0, limit)), (kiln, taken, limit)
    for flow_id, amounts in supply_amounts.items():  # no period ships more than that period's amount
        sent = exchanges[exchanges["supply_id"] == flow_id].groupby("period")["amount_t"].sum() \
            if len(exchanges) else pd.Series(dtype=float)
        assert np.all(sent.reindex(QUARTERS).fillna(0.0).to_numpy() <= amounts + 1e-6 * np.maximum(1.0, amounts))
    # annual figures are the sums of the periods'
    assert kpis["exchanged_t"].sum() == pytest.approx(results.exchanges["amount_t_per_yr"].sum(), rel=1e-9, abs=1e-6)
    assert kpis["cost_optimum"].sum() == pytest.approx(results.kpis["cost_optimum"], rel=1e-9, abs=1e-6)
    # the optimum equals an LP built here from the annual candidate tables and the drawn per-quarter figures
    assert results.kpis["objective_optimum"] == pytest.approx(
        independent_optimum(build_candidates(region), supply_amounts, limits), rel=1e-7, abs=1e-4)


def independent_optimum(cands, supply_amounts: dict[str, np.ndarray], limits: dict[str, np.ndarray]) -> float:
    """x[a,t], w[s,t], y[d,t] with scipy's linprog: each supply's drawn amount per quarter, each need by the
    quarters' days, the share caps per quarter, and each kiln's drawn limit per quarter on the tonnes it
    receives (none of the expansion code)."""
    from scipy.optimize import linprog

    sup, dem, arcs = cands.supplies, cands.demands, cands.arcs
    n_s, n_d, n_a, periods = len(sup), len(dem), len(arcs), 4
    length = np.array([90, 91, 92, 92], float) / 365
    n_x, n_w = n_a * periods, n_s * periods
    n = n_x + n_w + n_d * periods
    c = np.zeros(n)
    a_eq, b_eq, a_ub, b_ub = [], [], [], []
    s_of, d_of = arcs["s"].to_numpy(int), arcs["d"].to_numpy(int)
    ratio = arcs["ratio"].to_numpy(float)
    share = dem["max_secondary_share"].astype(float).fillna(1.0).to_numpy()
    need = dem["amount_t_per_yr"].to_numpy(float)
    for t in range(periods):
        c[t * n_a:(t + 1) * n_a] = (arcs["transport_cost_per_t"] + arcs["processing_cost_per_t"]).to_numpy(float)
        c[n_x + t * n_s:n_x + (t + 1) * n_s] = sup["fate_cost_per_t"].to_numpy(float)
        c[n_x + n_w + t * n_d:n_x + n_w + (t + 1) * n_d] = dem["virgin_price_per_t"].to_numpy(float)
        for s in range(n_s):
            row = np.zeros(n)
            row[t * n_a + np.flatnonzero(s_of == s)] = 1.0
            row[n_x + t * n_s + s] = 1.0
            a_eq.append(row)
            b_eq.append(supply_amounts[str(sup["supply_id"].iat[s])][t])
        for d in range(n_d):
            into = np.flatnonzero(d_of == d)
            row = np.zeros(n)
            row[t * n_a + into] = ratio[into]
            row[n_x + n_w + t * n_d + d] = 1.0
            a_eq.append(row)
            b_eq.append(need[d] * length[t])
            if share[d] < 1:
                cap = np.zeros(n)
                cap[t * n_a + into] = ratio[into]
                a_ub.append(cap)
                b_ub.append(share[d] * need[d] * length[t])
        for kiln, limit in limits.items():
            into = np.flatnonzero(arcs["demand_facility"].astype(str).to_numpy() == kiln)
            row = np.zeros(n)
            row[t * n_a + into] = 1.0
            a_ub.append(row)
            b_ub.append(limit[t])
    # An arc's capacity is the substitution's share cap σ·r_d/ρ (fly ash: at most 30 % of a sand need), which
    # follows the need's quarters (by their days here).
    capacity = arcs["capacity_t_per_yr"].to_numpy(float)
    bounds = [(0.0, None if np.isnan(capacity[i % n_a]) else capacity[i % n_a] * length[i // n_a]) if i < n_x
              else (0.0, None) for i in range(n)]
    result = linprog(c, A_ub=np.array(a_ub), b_ub=b_ub, A_eq=np.array(a_eq), b_eq=b_eq, bounds=bounds,
                     method="highs")
    assert result.status == 0, result.message
    return float(result.fun)


def test_a_semicolon_file_with_decimal_commas_takes_and_checks_amounts_per_period(tmp_path: Path) -> None:
    """flows.csv and profiles.csv written by a European spreadsheet: the filled-in annual amount and the
    comparison read decimal commas as the file does."""
    folder = tmp_path / "semicolon"
    folder.mkdir()
    (folder / "region.yaml").write_text(f"name: T\ncurrency: EUR\n{SEASONS}\ndefaults:\n  max_distance_km: 50\n")
    (folder / "facilities.csv").write_text("facility_id;name;sector;lat;lon\nplant;Plant;35.11;55,00;11,00\n"
                                           "town;Town;35.30;55,02;11,00\n")
    (folder / "profiles.csv").write_text("profile;period;amount\nhq;winter;9000,25\nhq;rest;1000,25\n")
    flows = ("flow_id;facility_id;direction;category;material;amount;unit;price;price_unit;exchangeable;profile\n"
             "plant_heat;plant;out;waste;hot_water;{};MWh;1;EUR/MWh;;hq\n"
             "town_heat;town;in;energy;district_heat;20000;MWh;30,5;EUR/MWh;true;\n")
    for annual in ("", "10000,5"):
        (folder / "flows.csv").write_text(flows.format(annual))
        region = load_region(folder)
        assert region.flows.set_index("flow_id").at["plant_heat", "amount_mwh_per_yr"] == pytest.approx(10_000.5)
    (folder / "flows.csv").write_text(flows.format("9000,5"))
    assert _has(_problems(folder), "flows.csv", 2, "amount", "contradicts its profile's amounts")


def test_the_view_of_a_period_with_the_processor_shut_traces_substances_without_dividing_by_zero(
        tmp_path: Path) -> None:
    """In q1 the digester's activity is 0: the substance trace of that period's view gives finite figures
    (it divided the processor's outputs by its activity, a RuntimeWarning and NaN shares)."""
    import warnings

    from symbiosis.periods.view import period_results_view

    region = _digester_shut_in_q1(tmp_path)
    results = optimise(region)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        q1 = period_results_view(region, results, "q1")
    numbers = q1.substances.select_dtypes("number")
    assert len(q1.substances) and np.isfinite(numbers.to_numpy(float)).all()
