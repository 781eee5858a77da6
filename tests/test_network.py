"""Intake limits and waste law (symbiosis.network): hand-solved cases, the permit screen, bad inputs.

Every test here fails on the code before intake limits and permits existed: receivers were bottomless, the
arcs.csv capacity was ignored, and any EWC code (or none) could go anywhere.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from symbiosis.balances import ConservationError
from symbiosis.candidates import candidates
from symbiosis.errors import InputError
from symbiosis.exchange import solve_exchange
from symbiosis.exchange.colgen import reduced_costs, solve_column_generation
from symbiosis.exchange.model import exchange_arrays
from symbiosis.inputs import load_region
from symbiosis.network import ewc
from symbiosis.pipeline import optimise
from symbiosis.reference import load_reference
from symbiosis.results import check_solution, why_not_matched
from tests.helpers_exchange import make_candidates

# --- intake limits on the LP --------------------------------------------------------------------------


def _farm(limit: float = 300.0):  # type: ignore[no-untyped-def]
    # S0: 1000 t sludge, fate 30/t. D0: 100 t fertiliser need at 50/t; ρ = 0.1 t replaced per t received;
    # transport 5/t. Each tonne received saves 30 + 0.1·50 − 5 = 30. Without a limit the farm would take
    # all 1000 t (replacing 100 t); its intake limit of 300 t received binds.
    return make_candidates([{"amount_t_per_yr": 1000, "fate_cost_per_t": 30}],
                           [{"amount_t_per_yr": 100, "virgin_price_per_t": 50, "max_intake_t_per_yr": limit}],
                           [{"s": 0, "d": 0, "ratio": 0.1, "transport_cost_per_t": 5}])


@pytest.mark.parametrize("solve", [solve_exchange, solve_column_generation])
def test_a_farm_never_receives_more_than_its_intake_limit_and_the_dual_is_the_saving(solve) -> None:  # type: ignore[no-untyped-def]
    sol = solve(_farm(), carbon_price=0.0)
    assert sol.x[0] == pytest.approx(300.0)  # not 1000 t received (which would replace the whole 100 t need)
    assert sol.intake_dual[0] == pytest.approx(30.0)  # one more tonne of intake is worth its saving, 30/t
    assert sol.objective == pytest.approx(1000 * 30 + 100 * 50 - 300 * 30)
    check_solution(_farm(), sol)
    reason = why_not_matched(_farm(), sol).iloc[0]
    assert reason["reason"] == "intake_full" and "300" in reason["reason_detail"]


def test_a_slack_intake_limit_has_no_dual() -> None:
    sol = solve_exchange(_farm(limit=5000.0), carbon_price=0.0)
    assert sol.x[0] == pytest.approx(1000.0)
    assert sol.intake_dual[0] == pytest.approx(0.0)


def _two_demand_farm():  # type: ignore[no-untyped-def]
    # One farm, two demands, facility intake 400 t received over both. D0 needs 20 t (ρ 0.1: at most 200 t
    # received), each tonne saving 30 + 0.1·50 − 5 = 30; D1 needs 100 t at price 0, saving 20 − 5 = 15 per t.
    # Optimum: 200 t into D0 (its need), the other 200 t of the limit into D1; one more tonne of intake goes
    # to D1: dual 15.
    return make_candidates(
        [{"amount_t_per_yr": 1000, "fate_cost_per_t": 30}, {"amount_t_per_yr": 1000, "fate_cost_per_t": 20}],
        [{"facility_id": "farm", "amount_t_per_yr": 20, "virgin_price_per_t": 50, "facility_intake_t_per_yr": 400},
         {"facility_id": "farm", "amount_t_per_yr": 100, "virgin_price_per_t": 0, "facility_intake_t_per_yr": 400}],
        [{"s": 0, "d": 0, "ratio": 0.1, "transport_cost_per_t": 5},
         {"s": 1, "d": 1, "ratio": 0.1, "transport_cost_per_t": 5}])


@pytest.mark.parametrize("solve", [solve_exchange, solve_column_generation])
def test_a_facility_intake_limit_holds_over_its_two_demands(solve) -> None:  # type: ignore[no-untyped-def]
    c = _two_demand_farm()
    sol = solve(c, carbon_price=0.0)
    assert sol.x == pytest.approx([200.0, 200.0])
    assert sol.facility_intake_dual == pytest.approx([15.0])
    check_solution(c, sol)
    reasons = why_not_matched(c, sol).set_index("supply_id")["reason"]
    assert reasons["S0"] == "receiver_amount_exhausted" and reasons["S1"] == "intake_full"


def test_reduced_costs_price_the_intake_rows() -> None:
    # At the optimum no arc prices out negative and the used arcs price at zero only with the intake duals.
    c = _two_demand_farm()
    sol = solve_exchange(c, carbon_price=0.0)
    arrays = exchange_arrays(c)
    rc = reduced_costs(arrays, sol, np.zeros(0), arrays.objective_vector(0.0))
    assert rc == pytest.approx([0.0, 0.0], abs=1e-7)
    sol.facility_intake_dual = np.zeros(1)
    assert reduced_costs(arrays, sol, np.zeros(0), arrays.objective_vector(0.0))[1] == pytest.approx(-15.0)


def test_check_solution_catches_a_broken_intake_limit() -> None:
    c = _two_demand_farm()
    sol = solve_exchange(c, carbon_price=0.0)
    sol.x = np.array([200.0, 300.0])
    sol.w = np.array([800.0, 700.0])
    sol.y = np.array([0.0, 70.0])
    with pytest.raises(ConservationError, match="facility farm: receives 500 t/yr, over its intake capacity 400"):
        check_solution(c, sol)
    c1 = _farm()
    s1 = solve_exchange(c1, carbon_price=0.0)
    s1.x, s1.w, s1.y = np.array([400.0]), np.array([600.0]), np.array([60.0])
    with pytest.raises(ConservationError, match="over its intake limit 300"):
        check_solution(c1, s1)


def test_a_negative_or_infinite_limit_in_candidates_is_refused() -> None:
    with pytest.raises(ValueError, match="max_intake_t_per_yr"):
        exchange_arrays(_farm(limit=-1.0))
    with pytest.raises(ValueError, match="max_intake_t_per_yr"):
        exchange_arrays(_farm(limit=np.inf))


# --- the European List of Waste --------------------------------------------------------------------------


def test_the_list_of_waste_is_whole_and_well_formed() -> None:
    from symbiosis.errors import Problems

    table = load_reference(Problems()).ewc
    codes = set(table["code"])
    six = table[table["code"].str.fullmatch(r"\d{6}")]
    assert len(table["code"]) == len(codes)  # no duplicates
    assert 800 <= len(six) <= 900 and len(table[table["code"].str.len() == 2]) == 20
    for code in six["code"]:
        assert code[:2] in codes and code[:4] in codes, code
    entries = ewc.entries(table)
    for hazardous in ("160802", "170601", "190111", "200121", "130205"):
        assert entries.at[hazardous, "hazardous"], hazardous
    for plain in ("100105", "200301", "020106", "190805", "170504"):
        assert not entries.at[plain, "hazardous"], plain
    assert entries.at["190111", "mirror"] and entries.at["190112", "mirror"] and not entries.at["200301", "mirror"]


# --- regions on disk -------------------------------------------------------------------------------------

FACILITIES = """facility_id,name,sector,lat,lon,intake_capacity_t_per_yr
plant,Incineration plant,38.21,55.60,11.00,
road1,Road builder one,42.11,55.61,11.01,{cap1}
road2,Road builder two,42.11,55.62,11.02,
"""
FLOWS = """flow_id,facility_id,direction,category,material,amount,unit,fate,price,price_unit,ewc_code,end_of_waste,\
max_intake_t_per_yr
ash,plant,out,waste,fly_ash,1000,t,landfill,60,EUR/t,{code},{eow},
sand1,road1,in,raw_material,sand,10000,t,,20,EUR/t,,,{limit1}
sand2,road2,in,raw_material,sand,10000,t,,20,EUR/t,,,
"""
REGION = """name: Law
currency: EUR
defaults:
  carbon_price: 0
  max_distance_km: 50
{extra}"""


def _write(folder: Path, *, code: str = "100116", eow: str = "", cap1: str = "", limit1: str = "",
           permits: str | None = None, arcs: str | None = None, extra: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "facilities.csv").write_text(FACILITIES.format(cap1=cap1))
    (folder / "flows.csv").write_text(FLOWS.format(code=code, eow=eow, limit1=limit1))
    (folder / "region.yaml").write_text(REGION.format(extra=extra))
    # Transport costs nothing on both routes, so each tonne of ash used saves 60 (landfill) + 20 (sand).
    (folder / "arcs.csv").write_text(
        arcs or "supply_facility,demand_facility,distance_km,cost_per_t,capacity_t_per_yr\n"
                "plant,road1,1,0,\nplant,road2,1,0,\n")
    if permits is not None:
        (folder / "permits.csv").write_text("facility_id,ewc_code,max_t_per_yr,source\n" + permits)
    return folder


def test_hazardous_ash_goes_only_to_the_permitted_receiver(tmp_path: Path) -> None:
    region = load_region(_write(tmp_path / "r", permits="road1,100116,,permit 2024-17\n"))
    results = optimise(region)
    assert set(results.exchanges["demand_facility"]) == {"road1"}
    assert results.permit_opportunities.empty  # road1 already takes all the ash: road2 would add nothing
    supply = results.supplies.set_index("supply_id").loc["ash"]
    assert bool(supply["hazardous"]) and bool(supply["needs_permit"]) and supply["ewc_code"] == "100116"


def test_no_permit_anywhere_leaves_the_ash_with_reason_no_permit_and_prices_the_permit(tmp_path: Path) -> None:
    region = load_region(_write(tmp_path / "r"))
    results = optimise(region)
    assert results.exchanges.empty
    assert results.supplies.set_index("supply_id").at["ash", "reason"] == "no_permit"
    table = results.permit_opportunities
    # Relaxed: all 1000 t go to one road builder (fly ash may replace 30 % of 10,000 t sand), saving 60 + 20
    # per t: 80,000 a year, all of it from this one stream.
    assert len(table) == 1 and table.at[0, "supply_id"] == "ash" and table.at[0, "ewc_code"] == "100116"
    assert table.at[0, "amount_t_per_yr"] == pytest.approx(1000.0)
    assert table.at[0, "gain_total"] == pytest.approx(80_000.0)
    assert table.at[0, "gain_stream"] == pytest.approx(80_000.0)
    # ... and the report and the analyst files say so.
    from symbiosis.outputs.export import write_results
    from symbiosis.outputs.report import render_report

    html = render_report(results, region=region)
    assert "Exchanges that need a permit change (1)" in html and "100116*" in html and "80,000" in html
    written = write_results(results, tmp_path / "out", region=region)
    on_disk = pd.read_csv(written["permit_opportunities.csv"], dtype={"ewc_code": str})
    assert on_disk.at[0, "ewc_code"] == "100116" and on_disk.at[0, "gain_total"] == pytest.approx(80_000.0)


def test_end_of_waste_and_non_hazardous_codes_need_no_permit_unless_the_region_says_so(tmp_path: Path) -> None:
    eow = optimise(load_region(_write(tmp_path / "eow", eow="true")))
    assert eow.exchanges["amount_t_per_yr"].sum() == pytest.approx(1000.0)
    plain = optimise(load_region(_write(tmp_path / "plain", code="100117")))
    assert plain.exchanges["amount_t_per_yr"].sum() == pytest.approx(1000.0)
    strict = optimise(load_region(_write(tmp_path / "all", code="100117",
                                         extra="permits_required_for: all_waste\n")))
    assert strict.exchanges.empty
    assert strict.supplies.set_index("supply_id").at["ash", "reason"] == "no_permit"


def test_arcs_csv_capacity_is_honoured(tmp_path: Path) -> None:
    arcs = "supply_facility,demand_facility,distance_km,cost_per_t,capacity_t_per_yr\nplant,road1,1,0,100\n"
    results = optimise(load_region(_write(tmp_path / "r", code="100117", arcs=arcs)))
    to_road1 = results.exchanges[results.exchanges["demand_facility"] == "road1"]["amount_t_per_yr"].sum()
    assert to_road1 <= 100.0 + 1e-6  # not 500 (or 1000) over a 100 t/yr route
    assert to_road1 == pytest.approx(100.0)


def test_region_intake_limits_per_flow_and_per_facility(tmp_path: Path) -> None:
    one = optimise(load_region(_write(tmp_path / "one", code="100117", limit1="250",
                                      arcs="supply_facility,demand_facility,distance_km,cost_per_t\n"
                                           "plant,road1,1,0\nplant,road2,1,5\n")))
    demands = one.demands.set_index("demand_id")
    assert demands.at["sand1", "secondary_received_t_per_yr"] == pytest.approx(250.0)
    assert demands.at["sand1", "intake_limit_t_per_yr"] == pytest.approx(250.0)
    assert demands.at["sand1", "intake_dual_per_t"] == pytest.approx(5.0)  # road2 costs 5/t more
    fac = optimise(load_region(_write(tmp_path / "fac", code="100117", cap1="250",
                                      arcs="supply_facility,demand_facility,distance_km,cost_per_t\n"
                                           "plant,road1,1,0\nplant,road2,1,5\n")))
    facilities = fac.facilities.set_index("facility_id")
    assert facilities.at["road1", "secondary_received_t_per_yr"] == pytest.approx(250.0)
    assert facilities.at["road1", "intake_capacity_t_per_yr"] == pytest.approx(250.0)
    assert facilities.at["road1", "intake_dual_per_t"] == pytest.approx(5.0)


@pytest.mark.parametrize(("change", "file", "row", "column", "text"), [
    ({"limit1": "-5"}, "flows.csv", 3, "max_intake_t_per_yr", "negative value"),
    ({"limit1": "inf"}, "flows.csv", 3, "max_intake_t_per_yr", "not a finite number"),
    ({"cap1": "-1"}, "facilities.csv", 3, "intake_capacity_t_per_yr", "negative value"),
    ({"code": "999999"}, "flows.csv", 2, "ewc_code", "unknown EWC code"),
    ({"code": "20106"}, "flows.csv", 2, "ewc_code", "lost its leading zero; found '20106'"),
    ({"code": "20106.0"}, "flows.csv", 2, "ewc_code", "Fix: write 020106"),
    ({"code": "2.0106e4"}, "flows.csv", 2, "ewc_code", "Fix: write 020106"),
    ({"permits": "road1,1601xx,,\n"}, "permits.csv", 2, "ewc_code", "unknown EWC code"),
    ({"permits": "road1,999999,,\n"}, "permits.csv", 2, "ewc_code", "unknown EWC code"),
    ({"permits": "nowhere,100116,,\n"}, "permits.csv", 2, "facility_id", "unknown facility"),
    ({"arcs": "supply_facility,demand_facility,capacity_t_per_yr\nplant,road1,-100\n"}, "arcs.csv", 2,
     "capacity_t_per_yr", "negative value"),
])
def test_bad_law_and_limit_inputs_are_located_errors(tmp_path: Path, change: dict[str, str], file: str, row: int,
                                                    column: str, text: str) -> None:
    with pytest.raises(InputError) as caught:
        load_region(_write(tmp_path / "bad", **change))
    problems = [p for p in caught.value.problems if p.file.endswith(file) and p.column == column]
    assert problems, str(caught.value)
    assert problems[0].row == row and text in str(problems[0])


# --- property: hazardous waste never reaches an unpermitted receiver -------------------------------------

_HAZARDOUS = ["100116", "100104", "190111"]
_PLAIN = ["100117", "100102", "190112"]
_RECEIVERS = [f"r{k}" for k in range(4)]


@cache
def _base_region(folder: str) -> object:
    base = Path(folder)
    facilities = "facility_id,name,sector,lat,lon\nplant0,P0,38.21,55.60,11.00\nplant1,P1,38.21,55.63,11.03\n" + \
        "".join(f"{r},R{r},42.11,55.6{k},11.0{k}\n" for k, r in enumerate(_RECEIVERS))
    flows = "flow_id,facility_id,direction,category,material,amount,unit,fate,price,price_unit,ewc_code\n" + \
        "a0,plant0,out,waste,fly_ash,800,t,landfill,60,EUR/t,100116\n" + \
        "a1,plant1,out,waste,fly_ash,900,t,landfill,40,EUR/t,100116\n" + \
        "".join(f"s{k},{r},in,raw_material,sand,{1000 + 500 * k},t,,{10 + 3 * k},EUR/t,\n"
                for k, r in enumerate(_RECEIVERS))
    base.mkdir(parents=True, exist_ok=True)
    (base / "facilities.csv").write_text(facilities)
    (base / "flows.csv").write_text(flows)
    (base / "region.yaml").write_text("name: Random\ndefaults:\n  carbon_price: 0\n  max_distance_km: 50\n")
    return load_region(base)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(codes=st.lists(st.sampled_from(_HAZARDOUS + _PLAIN), min_size=2, max_size=2),
       granted=st.lists(st.tuples(st.sampled_from(_RECEIVERS), st.sampled_from(_HAZARDOUS + _PLAIN)),
                        max_size=6),
       mode=st.sampled_from(["hazardous", "all_waste"]))
def test_hazardous_codes_never_reach_a_receiver_without_their_permit(tmp_path_factory, codes, granted,  # type: ignore[no-untyped-def]
                                                                    mode) -> None:
    region = _base_region(str(tmp_path_factory.getbasetemp() / "law-base")).copy()  # type: ignore[attr-defined]
    region.flows.loc[region.flows["flow_id"] == "a0", "ewc_code"] = codes[0]
    region.flows.loc[region.flows["flow_id"] == "a1", "ewc_code"] = codes[1]
    region.permits = pd.DataFrame(granted, columns=["facility_id", "ewc_code"]).assign(max_t_per_yr=np.nan,
                                                                                        source="")
    region.settings.permits_required_for = mode
    results = optimise(region)
    permitted = set(granted)
    code_of = {"a0": codes[0], "a1": codes[1]}
    for row in results.exchanges.itertuples():
        code = code_of[row.supply_id]
        if code in _HAZARDOUS or mode == "all_waste":
            assert (row.demand_facility, code) in permitted, (row.supply_id, row.demand_facility, code)
    cands = candidates(region)
    if cands.permit_screened is not None:  # what was screened is exactly what lacks a permit
        for row in cands.permit_screened.itertuples():
            assert (row.demand_facility, code_of[row.supply_id]) not in permitted


def test_column_generation_prices_the_intake_rows_to_the_monolithic_optimum() -> None:
    from tests.helpers_exchange import random_candidates

    c = random_candidates(30, 30, 400, seed=3)
    free = solve_exchange(c, carbon_price=0.0)
    received = np.bincount(c.arcs["d"].to_numpy(int), weights=free.x, minlength=len(c.demands))
    rng = np.random.default_rng(3)
    c.demands["facility_id"] = [f"farm{k}" for k in rng.integers(0, 8, len(c.demands))]
    c.demands["max_intake_t_per_yr"] = np.where(rng.random(len(c.demands)) < 0.4, np.floor(0.5 * received), np.nan)
    per_facility = pd.Series(received).groupby(c.demands["facility_id"].to_numpy()).sum()
    c.demands["facility_intake_t_per_yr"] = c.demands["facility_id"].map(np.floor(0.6 * per_facility))
    mono = solve_exchange(c, carbon_price=0.0)
    cg = solve_column_generation(c, carbon_price=0.0, per_supply=1, per_demand=1)
    assert mono.objective > free.objective + 1e-6
    assert cg.objective == pytest.approx(mono.objective, rel=1e-7)
    assert cg.parameters["strategy"] == "column_generation" and cg.parameters["iterations"] > 1
    arrays = exchange_arrays(c)
    assert len(cg.facility_intake_dual) == arrays.facility_intake.n_rows
    check_solution(c, cg)


def test_a_process_model_intake_capacity_is_the_default_and_a_facility_figure_wins(tmp_path: Path) -> None:
    import shutil

    models = tmp_path / "models"
    models.mkdir()
    text = (Path(__file__).parent / "data" / "models" / "power_station.yaml").read_text()
    (models / "power_station.yaml").write_text(text + "intake_capacity: 0.002\n")  # t per MWh, invented
    region_dir = tmp_path / "tiny"
    shutil.copytree(Path(__file__).parent / "data" / "regions" / "tiny", region_dir)
    reference = Path(__file__).parent / "data" / "reference"
    region = load_region(region_dir, reference_dir=reference, models_directory=models)
    capacity = region.facilities.set_index("facility_id")["intake_capacity_t_per_yr"]
    assert capacity["power"] == pytest.approx(0.002 * 1_000_000)  # model figure × activity (MWh/yr)
    assert np.isnan(capacity["board"])  # no model, no figure: no limit
    facilities = region_dir / "facilities.csv"
    rows = facilities.read_text().splitlines()
    rows[0] += ",intake_capacity_t_per_yr"
    rows[1:] = [r + (",500" if r.startswith("power,") else ",") for r in rows[1:]]
    facilities.write_text("\n".join(rows) + "\n")
    region = load_region(region_dir, reference_dir=reference, models_directory=models)
    assert region.facilities.set_index("facility_id").at["power", "intake_capacity_t_per_yr"] == 500.0
    (models / "power_station.yaml").write_text(text + "intake_capacity: -1\n")
    with pytest.raises(InputError, match="intake_capacity"):
        load_region(region_dir, reference_dir=reference, models_directory=models)
