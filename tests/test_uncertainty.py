"""Monte Carlo robustness (symbiosis.uncertainty): hand-made cases with known probabilities, invariants,
reproducibility across serial / processes / Dask, and the command's bad input.

Expected values come from the cases' algebra and the normal distribution (scipy.stats.norm), never from
the code's own output.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm
from typer.testing import CliRunner

from symbiosis.candidates import candidates as build_candidates
from symbiosis.cli import app
from symbiosis.errors import InputError
from symbiosis.inputs import load_region
from symbiosis.pipeline import optimise
from symbiosis.uncertainty import (
    KPI_NAMES,
    draw,
    exchange_table,
    kpi_table,
    monte_carlo,
    sensitivity_table,
    uncertain_inputs,
)
from symbiosis.uncertainty.draws import INPUT_COLUMNS
from tests.conftest import TEST_DATA, TEST_MODELS, TINY, load_test_region
from tests.helpers_exchange import make_candidates

KALUNDBORG = Path(__file__).resolve().parents[1] / "data" / "regions" / "kalundborg"
ENV = {"SYMBIOSIS_DATA": str(TEST_DATA), "SYMBIOSIS_MODELS": str(TEST_MODELS)}


def invoke(*args: object, env: dict[str, str] | None = None):
    return CliRunner().invoke(app, [str(a) for a in args], env=ENV if env is None else env)


def _inputs(rows):
    """An inputs table by hand: (kind, row, flow_id, amount, relative_sd)."""
    table = pd.DataFrame(rows, columns=["kind", "row", "flow_id", "amount", "relative_sd"])
    table["input"] = table["kind"] + " amount " + table["flow_id"]
    table["facility_id"] = "F_" + table["flow_id"]
    table["material"] = "m"
    table["unit"] = "t/yr"
    table["sd_from"] = "test"
    table["p_below_zero"] = np.nan_to_num(norm.cdf(-1 / table["relative_sd"].replace(0, np.nan)), nan=0.0)
    return table[INPUT_COLUMNS]


def competing_supplies():
    """One demand D (100 t/yr, virgin 50 EUR/t) and two supplies that can serve it at no cost: S0 (80 t/yr,
    landfill 10 EUR/t: saves 60 EUR/t) and S1 (100 t/yr, landfill 5 EUR/t: saves 55 EUR/t). S0 fills D first,
    so S1 -> D is in the optimum exactly when S0's amount A < 100, and S0 -> D carries min(A, 100)."""
    return make_candidates(
        supplies=[{"amount_t_per_yr": 80.0, "fate_cost_per_t": 10.0},
                  {"amount_t_per_yr": 100.0, "fate_cost_per_t": 5.0}],
        demands=[{"amount_t_per_yr": 100.0, "virgin_price_per_t": 50.0}],
        arcs=[{"s": 0, "d": 0}, {"s": 1, "d": 0}],
    )


def test_a_known_margin_gives_the_normal_probability_within_the_monte_carlo_error():
    c = competing_supplies()
    n = 2000
    # A ~ N(80, 20²) truncated at 0: P(A < 100) = (Φ(1) − Φ(−4)) / (1 − Φ(−4)).
    inputs = _inputs([("supply", 0, "S0", 80.0, 0.25)])
    mc = monte_carlo(None, c, samples=n, seed=11, workers=1, inputs=inputs)
    table = exchange_table(mc).set_index("supply_id")
    expected = (norm.cdf(1.0) - norm.cdf(-4.0)) / (1 - norm.cdf(-4.0))
    se = math.sqrt(expected * (1 - expected) / n)
    assert table.at["S1", "probability"] == pytest.approx(expected, abs=4 * se)
    assert table.at["S0", "probability"] == 1.0  # A > 0 always: S0 always ships
    # S0 -> D carries min(A, 100): its median is A's median (80; P(A < 100) > 1/2), error ≈ 1.25 σ/√n
    assert table.at["S0", "p50_amount"] == pytest.approx(80.0, abs=4 * 1.2533 * 20 / math.sqrt(n))
    # and S1 -> D carries 100 − min(A, 100): its P95 is 100 − A's P5 = 100 − (80 − 1.645·20)
    assert table.at["S1", "p95_amount"] == pytest.approx(100 - (80 - 1.6449 * 20), abs=2.5)
    # the net saving is 60·min(A,100) + 55·(100 − min(A,100)) = 5500 + 5·min(A, 100)
    kpis = mc.kpis[:, KPI_NAMES.index("net_cost_saving")]
    a = mc.draws.values[:, 0]
    np.testing.assert_allclose(kpis, 5500 + 5 * np.minimum(a, 100), rtol=1e-9)
    # the only uncertain input is ranked first for both exchanges, S1's flow falling as A rises
    sens = sensitivity_table(mc)
    s1 = sens[(sens["output"] == "S1 -> D0") & (sens["rank"] == 1)].iloc[0]
    assert s1["flow_id"] == "S0" and s1["spearman_rho"] < -0.9


def test_zero_uncertainty_gives_the_deterministic_optimum_every_time():
    region = load_region(KALUNDBORG)
    c = build_candidates(region)
    inputs = uncertain_inputs(region, c).assign(relative_sd=0.0)
    mc = monte_carlo(region, c, samples=12, seed=1, workers=1, inputs=inputs)
    fresh = optimise(region, strategy="monolithic").kpis  # an independent full run
    for name in KPI_NAMES:
        assert mc.kpis[:, KPI_NAMES.index(name)] == pytest.approx(np.full(12, fresh[name]), rel=1e-9, abs=1e-6), name
    assert (mc.draws.truncated == 0).all()
    table = exchange_table(mc)
    assert set(table["probability"]) == {1.0} and len(table) == fresh["n_exchanges"]
    assert (table["p5_amount"] == table["p95_amount"]).all()


def test_the_base_case_kpis_are_those_of_the_results():
    # sample_kpis restates symbiosis.results' definitions on arrays: the base case must agree with evaluate
    region = load_test_region(TINY)
    c = build_candidates(region)
    mc = monte_carlo(region, c, samples=2, seed=0, workers=1)
    fresh = optimise(region).kpis
    base = dict(zip(KPI_NAMES, mc.base_kpis, strict=True))
    for name in KPI_NAMES:
        assert base[name] == pytest.approx(fresh[name], rel=1e-9, abs=1e-6), name
    assert kpi_table(mc).set_index("kpi").at["net_cost_saving", "base"] == pytest.approx(fresh["net_cost_saving"])


def test_the_same_seed_gives_the_same_results_serially_on_processes_and_on_dask():
    from distributed import Client, LocalCluster

    region = load_region(KALUNDBORG)
    c = build_candidates(region)
    serial = monte_carlo(region, c, samples=60, seed=5, workers=1)
    again = monte_carlo(region, c, samples=60, seed=5, workers=1)
    other = monte_carlo(region, c, samples=60, seed=6, workers=1)
    np.testing.assert_array_equal(serial.kpis, again.kpis)
    assert not np.array_equal(serial.kpis, other.kpis)
    pooled = monte_carlo(region, c, samples=60, seed=5, workers=2)  # workers given: a process pool
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        dask = monte_carlo(region, c, samples=60, seed=5, client=client)
    for run in (pooled, dask):
        np.testing.assert_array_equal(serial.kpis, run.kpis)
        np.testing.assert_array_equal(serial.flows, run.flows)
        np.testing.assert_array_equal(serial.arcs, run.arcs)


def test_draws_are_truncated_at_zero_and_counted():
    inputs = _inputs([("supply", 0, "A", 100.0, 1.0), ("supply", 1, "B", 100.0, 0.0)])
    n = 4000
    d = draw(inputs, n, seed=3)
    assert (d.values >= 0).all()
    assert (d.values[:, 1] == 100.0).all() and d.truncated[1] == 0
    p = norm.cdf(-1.0)  # a draw of N(100, 100²) falls below 0 with probability Φ(−1)
    assert d.truncated[0] == pytest.approx(n * p, abs=4 * math.sqrt(n * p * (1 - p)))
    # a sample's draws do not depend on how many samples there are (SeedSequence children)
    np.testing.assert_array_equal(draw(inputs, 10, seed=3).values, d.values[:10])
    with pytest.raises(ValueError, match="at least 1"):
        draw(inputs, 0, seed=3)


def test_an_uncertainty_above_100_percent_is_refused_with_its_place(tiny_copy):
    def edit(tables):
        tables["flows"].loc[tables["flows"]["flow_id"] == "power_gypsum", "uncertainty_pct"] = "150"

    region = load_test_region(tiny_copy(edit))
    with pytest.raises(InputError) as info:
        uncertain_inputs(region, build_candidates(region))
    text = str(info.value)
    assert "flows.csv, row 2, column 'uncertainty_pct'" in text and "'150'" in text and "0 to 100" in text


def test_defaults_by_data_quality_where_no_uncertainty_is_given():
    region = load_test_region(TINY)
    inputs = uncertain_inputs(region, build_candidates(region)).set_index("flow_id")
    assert inputs.at["power_gypsum", "relative_sd"] == 0.05  # its uncertainty_pct, 5
    assert inputs.at["power_gypsum", "sd_from"] == "uncertainty_pct"
    assert inputs.at["board_gypsum", "relative_sd"] == 0.05  # an invoice: measured, 5 % by default
    assert inputs.at["board_gypsum", "sd_from"] == "default for measured"


# --- the command -------------------------------------------------------------------------------------------


def test_the_command_writes_every_table_and_a_map(tmp_path):
    out = tmp_path / "mc"
    result = invoke("uncertainty", TINY, "--samples", 40, "--seed", 2, "--workers", 1, "--out", out)
    assert result.exit_code == 0, result.output
    for name in ("kpis.csv", "exchanges.csv", "convergence.csv", "sensitivity.csv", "measure_first.csv",
                 "inputs.csv", "samples.csv", "parameters.json", "map.html", "manifest.json", "disclosure.json"):
        assert (out / name).is_file(), name
    params = json.loads((out / "parameters.json").read_text())
    assert params["samples"] == 40 and params["seed"] == 2
    convergence = pd.read_csv(out / "convergence.csv")
    assert sorted(set(convergence["n_samples"])) == [5, 10, 20, 40]
    assert len(pd.read_csv(out / "samples.csv")) == 40
    page = (out / "map.html").read_text()
    assert "Robust exchanges" in page and "Fragile exchanges" in page


def test_the_map_draws_fragile_exchanges_dashed(tmp_path):
    # on Kalundborg some exchanges come and go with the amounts (tables/test: 9 robust, 7 fragile at 1000)
    out = tmp_path / "mc"
    result = invoke("uncertainty", KALUNDBORG, "--samples", 30, "--seed", 1, "--workers", 1, "--out", out, env={})
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out / "exchanges.csv")
    assert (~table["robust"]).any() and table["robust"].any()
    page = (out / "map.html").read_text()
    layers = _line_layers(page)
    dashed = [rows for rows, style in layers if style.get("dashArray")]
    solid = [rows for rows, style in layers if not style.get("dashArray")]
    assert [len(r) for r in dashed] == [int((~table["robust"]).sum())]
    assert [len(r) for r in solid] == [int(table["robust"].sum())]


def _line_layers(page: str) -> list[tuple[list, dict]]:
    """(rows, style) of every exchange-line layer of a map page."""
    found = []
    for part in page.split("var rows = ")[1:]:
        rows_text, rest = part.split(";\n", 1)
        if "var style = " not in rest.split("\n", 1)[0] and "var style = " not in rest[:200]:
            continue
        style_text = rest.split("var style = ", 1)[1].split(";\n", 1)[0]
        found.append((json.loads(rows_text), json.loads(style_text)))
    return found


def test_a_confidential_facility_is_masked_in_the_public_tables(tiny_copy, tmp_path):
    def edit(tables):
        tables["facilities"].loc[tables["facilities"]["facility_id"] == "power", "confidential"] = "true"

    out = tmp_path / "mc"
    result = invoke("uncertainty", tiny_copy(edit), "--samples", 20, "--workers", 1, "--out", out)
    assert result.exit_code == 0, result.output
    for name in ("exchanges.csv", "inputs.csv", "sensitivity.csv", "measure_first.csv", "convergence.csv",
                 "map.html"):
        text = (out / name).read_text()
        assert "power_gypsum" not in text and "Power station" not in text, name
    inputs = pd.read_csv(out / "inputs.csv")
    hidden = inputs[inputs["facility_id"].str.startswith("confidential-")]
    assert len(hidden) and hidden["amount"].isna().all()


@pytest.mark.parametrize(("option", "value", "fragment"), [
    ("--samples", "0", "--samples"), ("--samples", "-5", "--samples"), ("--robust", "1.5", "--robust"),
    ("--seed", "-1", "--seed"), ("--workers", "0", "--workers"),
])
def test_bad_options_are_refused_before_any_work(tmp_path, option, value, fragment):
    out = tmp_path / "mc"
    result = invoke("uncertainty", TINY, option, value, "--out", out)
    assert result.exit_code == 1, result.output
    assert fragment in result.output and "Traceback" not in result.output
    assert not out.exists()


def test_a_scheduler_that_does_not_answer_fails_cleanly(tmp_path):
    out = tmp_path / "mc"
    result = invoke("uncertainty", TINY, "--samples", 5, "--scheduler", "tcp://127.0.0.1:9", "--timeout", 1,
                    "--out", out)
    assert result.exit_code == 1, result.output
    assert "did not answer" in result.output and "tcp://127.0.0.1:9" in result.output
    assert not out.exists() and not list(tmp_path.glob(".mc.staging-*"))


def test_an_uncertainty_above_100_percent_stops_the_command(tiny_copy, tmp_path):
    def edit(tables):
        tables["flows"].loc[tables["flows"]["flow_id"] == "power_gypsum", "uncertainty_pct"] = "250"

    out = tmp_path / "mc"
    result = invoke("uncertainty", tiny_copy(edit), "--samples", 5, "--out", out)
    assert result.exit_code == 1
    assert "uncertainty_pct" in result.output and "250" in result.output
    assert not out.exists()


def test_a_price_margin_gives_phi_of_mu_over_sigma():
    # S (100 t/yr to landfill at a fate cost c) can go to D (100 t/yr, virgin price 0) for 20 EUR/t transport:
    # the exchange pays iff c − 20 > 0. With c ~ N(25, 10²) (40 % of 25, not truncated: a fate cost may be
    # negative) the probability is Φ(5/10).
    c = make_candidates(supplies=[{"amount_t_per_yr": 100.0, "fate_cost_per_t": 25.0}],
                        demands=[{"amount_t_per_yr": 100.0, "virgin_price_per_t": 0.0}],
                        arcs=[{"s": 0, "d": 0, "transport_cost_per_t": 20.0}])
    inputs = _inputs([("fate_cost", 0, "S0", 25.0, 0.4)])
    n = 2000
    mc = monte_carlo(None, c, samples=n, seed=4, workers=1, inputs=inputs)
    expected = norm.cdf(0.5)
    probability = exchange_table(mc).set_index("supply_id").at["S0", "probability"]
    assert probability == pytest.approx(expected, abs=4 * math.sqrt(expected * (1 - expected) / n))
    assert mc.draws.truncated[0] == 0 and (mc.draws.values[:, 0] < 0).any()  # drawn below 0, kept
    # the saving is 100·max(c − 20, 0): its mean is 100·E[max(X, 0)], X ~ N(5, 10²) = 100·(μΦ(μ/σ) + σφ(μ/σ))
    saving = mc.kpis[:, KPI_NAMES.index("net_cost_saving")]
    mean = 100 * (5 * norm.cdf(0.5) + 10 * norm.pdf(0.5))
    assert saving.mean() == pytest.approx(mean, abs=4 * saving.std() / math.sqrt(n))


def test_price_uncertainty_is_read_from_the_flows(tiny_copy):
    def edit(tables):
        flows = tables["flows"]
        flows["price_uncertainty_pct"] = ""
        flows.loc[flows["flow_id"].isin(["power_gypsum", "board_gypsum"]), "price_uncertainty_pct"] = "10"

    region = load_test_region(tiny_copy(edit))
    c = build_candidates(region)
    inputs = uncertain_inputs(region, c).set_index("input")
    fate = inputs.loc["fate cost power_gypsum"]
    virgin = inputs.loc["virgin price board_gypsum"]
    s = int(np.flatnonzero(c.supplies["supply_id"] == "power_gypsum")[0])
    d = int(np.flatnonzero(c.demands["demand_id"] == "board_gypsum")[0])
    assert fate["amount"] == c.supplies["fate_cost_per_t"].iat[s] and fate["relative_sd"] == 0.1
    assert virgin["amount"] == c.demands["virgin_price_per_t"].iat[d] == 25.0
    assert np.isnan(fate["p_below_zero"])  # fate costs are not truncated
    mc = monte_carlo(region, c, samples=30, seed=0, workers=1)
    assert "virgin price board_gypsum" in set(sensitivity_table(mc)["input"])


def test_a_price_uncertainty_above_100_percent_is_refused_when_loading(tiny_copy):
    def edit(tables):
        tables["flows"]["price_uncertainty_pct"] = ""
        tables["flows"].loc[tables["flows"]["flow_id"] == "board_gypsum", "price_uncertainty_pct"] = "120"

    with pytest.raises(InputError) as info:
        load_test_region(tiny_copy(edit))
    assert "flows.csv, row 3, column 'price_uncertainty_pct'" in str(info.value)
