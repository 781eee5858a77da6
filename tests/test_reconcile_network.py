"""Network data reconciliation (symbiosis/account/reconcile.py) against published and hand-solved answers.

The textbook network is the flow process of Narasimhan, S. and Jordache, C. (2000), *Data Reconciliation
and Gross Error Detection: An Intelligent Use of Process Data*, Gulf Publishing, chapter 1 (the heat
exchanger with a bypass): a splitter (stream 1 in; 2 and 3 out), a heat exchanger (2 -> 4), a valve on the
bypass (3 -> 5) and a mixer (4 + 5 -> 6), every flow measured with variance 1. Its measurements are
101.91, 64.45, 34.65, 64.20, 36.44, 98.88 and its published reconciled flows 100.22 (streams 1 and 6), 64.50
(2 and 4), 35.72 (3 and 5). The gross-error variant raises the measurement of stream 2 to 68.45, as the
teaching model adapted from that chapter does (J. C. Kantor, MathProg examples, DataReconciliation.mod).
The reconciled standard uncertainties, chi-square statistics and the partially measured variant are derived
by hand in the comments (the network has two free flows, a = x2 = x4 and b = x3 = x5, with x1 = x6 = a + b).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import linalg, stats

from symbiosis.account.reconcile import (
    critical_measurement_test,
    reconcile_linear,
    reconcile_network,
    reconciled_region,
    serial_elimination,
)
from symbiosis.balances import balances
from symbiosis.errors import InputError
from tests.conftest import load_test_region

# Columns: x1..x6; rows: splitter, exchanger, valve, mixer (+1 in, -1 out).
NJ_A = np.array([[1, -1, -1, 0, 0, 0],
                 [0, 1, 0, -1, 0, 0],
                 [0, 0, 1, 0, -1, 0],
                 [0, 0, 0, 1, 1, -1]], dtype=float)
NJ_Y = np.array([101.91, 64.45, 34.65, 64.20, 36.44, 98.88])
NJ_RECONCILED = np.array([100.22, 64.50, 35.72, 64.50, 35.72, 100.22])  # published, 2 decimals


def test_textbook_network_all_measured() -> None:
    result = reconcile_linear(NJ_A, NJ_Y, np.ones(6), np.ones(6, dtype=bool))
    assert result.estimate == pytest.approx(NJ_RECONCILED, abs=0.005)
    # Hand: minimising the squared residuals over (a, b) gives s + a = 164.72 and s + b = 135.94 with s = a + b,
    # so s = 100.22, a = 64.50, b = 35.72 exactly.
    assert result.estimate == pytest.approx([100.22, 64.50, 35.72, 64.50, 35.72, 100.22], abs=1e-9)
    # Cov(a, b) = (T'T)^-1 with T'T = [[4, 2], [2, 4]]: var a = var b = 1/3, cov = -1/6, var(a + b) = 1/3.
    assert result.standard_uncertainty == pytest.approx(np.full(6, math.sqrt(1 / 3)), rel=1e-12)
    # Residuals 1.69, -0.05, -1.07, -0.30, 0.72, -1.34: chi-square 6.4075 with 4 degrees of freedom.
    assert result.chi_square == pytest.approx(6.4075, rel=1e-9)
    assert result.dof == 4
    assert stats.chi2.sf(result.chi_square, 4) > 0.05  # no gross error
    assert np.abs(NJ_A @ result.estimate).max() < 1e-9
    assert result.redundant.all() and result.observable.all()


def test_textbook_network_partially_measured() -> None:
    """Streams 2 and 5 unmeasured: both are observable (x2 = x1 - x3, x5 = x6 - x4); two balances remain
    (x1 = x6, x1 = x3 + x4), so two degrees of freedom."""
    measured = np.array([1, 0, 1, 1, 0, 1], dtype=bool)
    result = reconcile_linear(NJ_A, NJ_Y, np.ones(6), measured)
    # Hand, with s = x1 = x6, b = x3, c = x4, s = b + c: 2s + b = 235.44 and 2s + c = 264.99, so s = 100.086,
    # b = 35.268, c = 64.818; the unmeasured x2 = c and x5 = b.
    assert result.estimate == pytest.approx([100.086, 64.818, 35.268, 64.818, 35.268, 100.086], abs=1e-9)
    # Cov(b, c) = [[3, 2], [2, 3]]^-1 = [[0.6, -0.4], [-0.4, 0.6]]: σ(b) = σ(c) = √0.6; σ(s) = √0.4.
    assert result.standard_uncertainty == pytest.approx(
        np.sqrt([0.4, 0.6, 0.6, 0.6, 0.6, 0.4]), rel=1e-9)
    # Residuals 1.824, -1.206, -0.618, -0.618.
    assert result.chi_square == pytest.approx(1.824**2 + 1.206**2 + 2 * 0.618**2, rel=1e-9)
    assert result.dof == 2
    assert result.observable.all()
    assert list(result.redundant) == [True, False, True, True, False, True]
    assert np.abs(NJ_A @ result.estimate).max() < 1e-9


def test_unobservable_and_non_redundant_flows_are_classified() -> None:
    """Streams 2, 3, 4, 5 unmeasured: only x1 = x6 is left; x2..x5 are not determined (x2 + x3 = x1 alone)."""
    measured = np.array([1, 0, 0, 0, 0, 1], dtype=bool)
    result = reconcile_linear(NJ_A, NJ_Y, np.ones(6), measured)
    assert list(result.observable) == [True, False, False, False, False, True]
    assert np.isnan(result.estimate[1:5]).all()
    assert result.dof == 1
    assert result.estimate[0] == pytest.approx((101.91 + 98.88) / 2)
    # Streams 1 and 3 alone determine every other flow (x2 = x4 = x1 - x3, x5 = x3, x6 = x1) and nothing
    # checks them: no degree of freedom, no redundancy, no adjustment.
    alone = reconcile_linear(NJ_A, NJ_Y, np.ones(6), np.array([1, 0, 1, 0, 0, 0], dtype=bool))
    assert alone.dof == 0 and not alone.redundant.any() and alone.observable.all()
    assert alone.estimate == pytest.approx([101.91, 67.26, 34.65, 67.26, 34.65, 101.91], abs=1e-9)


def test_gross_error_located_by_serial_elimination() -> None:
    y = NJ_Y.copy()
    y[1] = 68.45  # stream 2 four units high
    first, final, steps = serial_elimination(NJ_A, y, np.ones(6), np.ones(6, dtype=bool))
    # The global test fails: chi-square 16.674 > 9.488 (95 %, 4 dof).
    assert first.chi_square == pytest.approx(16.674167, rel=1e-6)
    assert first.chi_square > stats.chi2.ppf(0.95, 4)
    # Six measurement tests at the Šidák level 1 - 0.95^(1/6) = 0.8512 %: critical value 2.631.
    assert critical_measurement_test(6) == pytest.approx(2.6310, abs=1e-4)
    assert int(np.nanargmax(first.measurement_test)) == 1
    assert [s.column for s in steps] == [1]
    assert steps[0].measurement_test > steps[0].critical_value
    # Without stream 2's measurement the rest are consistent, and stream 2 is estimated from them (x2 = x4).
    assert stats.chi2.sf(final.chi_square, final.dof) > 0.05
    assert not final.measured[1]
    assert abs(final.estimate[1] - 64.5) < 0.1
    assert np.abs(NJ_A @ final.estimate).max() < 1e-9


# ------------------------------------------------------------------------------------ through the region


def write_region(root: Path, facilities: list[str], flows: list[dict[str, object]]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "region.yaml").write_text("name: Network\nperiod: year\ncurrency: EUR\n", encoding="utf-8")
    pd.DataFrame({"facility_id": facilities, "name": facilities, "sector": "23.51",
                  "lat": [55.60 + 0.01 * i for i in range(len(facilities))],
                  "lon": [11.00 + 0.01 * i for i in range(len(facilities))]}).to_csv(root / "facilities.csv",
                                                                                    index=False)
    columns = ["flow_id", "facility_id", "direction", "category", "material", "amount", "unit",
               "uncertainty_pct", "stream_id", "measured", "source"]
    frame = pd.DataFrame(flows).reindex(columns=columns).astype(object).fillna("")
    frame.loc[frame["unit"] == "", "unit"] = "t"
    frame.loc[frame["source"] == "", "source"] = "meter"
    frame.to_csv(root / "flows.csv", index=False)
    return root


def flow(flow_id: str, facility: str, direction: str, amount: float | None, *, material: str = "water",
         stream: str = "", unit: str = "t", sigma: float | None = None, pct: float | None = None) -> dict[str, object]:
    row: dict[str, object] = {
        "flow_id": flow_id, "facility_id": facility, "direction": direction,
        "category": "raw_material" if direction == "in" else "product", "material": material,
        "amount": "" if amount is None else repr(float(amount)), "unit": unit, "stream_id": stream,
        "measured": "false" if amount is None else ""}
    if sigma is not None and amount:
        row["uncertainty_pct"] = repr(float(100.0 * sigma / amount))
    if pct is not None:
        row["uncertainty_pct"] = repr(float(pct))
    return row


def textbook_region(root: Path, y: np.ndarray = NJ_Y) -> Path:
    """The textbook network as four facilities; each internal stream is an out row (measured, σ = 1) and an
    in row at the next facility (unmeasured) sharing a stream_id: one variable, one measurement."""
    return write_region(root, ["splitter", "exchanger", "valve", "mixer"], [
        flow("x1", "splitter", "in", y[0], sigma=1),
        flow("x2", "splitter", "out", y[1], stream="S2", sigma=1),
        flow("x3", "splitter", "out", y[2], stream="S3", sigma=1),
        flow("x2_in", "exchanger", "in", None, stream="S2"),
        flow("x4", "exchanger", "out", y[3], stream="S4", sigma=1),
        flow("x3_in", "valve", "in", None, stream="S3"),
        flow("x5", "valve", "out", y[4], stream="S5", sigma=1),
        flow("x4_in", "mixer", "in", None, stream="S4"),
        flow("x5_in", "mixer", "in", None, stream="S5"),
        flow("x6", "mixer", "out", y[5], sigma=1),
    ])


def test_textbook_network_as_a_region(tmp_path: Path) -> None:
    region = load_test_region(textbook_region(tmp_path / "nj"))
    result = reconcile_network(region)
    flows = result.flows.set_index("flow_id")
    # The two rows of a stream are one variable: the receiver's unmeasured row takes the same value.
    expected = {"x1": 100.22, "x2": 64.50, "x3": 35.72, "x4": 64.50, "x5": 35.72, "x6": 100.22,
                "x2_in": 64.50, "x3_in": 35.72, "x4_in": 64.50, "x5_in": 35.72}
    for flow_id, value in expected.items():
        assert flows.at[flow_id, "reconciled"] == pytest.approx(value, abs=1e-9), flow_id
        assert flows.at[flow_id, "reconciled_standard_uncertainty"] == pytest.approx(math.sqrt(1 / 3), rel=1e-9)
    assert result.global_test["chi_square"] == pytest.approx(6.4075, rel=1e-9)
    assert result.global_test["dof"] == 4
    assert result.global_test["passed"]
    assert flows.at["x1", "adjustment_sigma"] == pytest.approx(100.22 - 101.91, rel=1e-9)
    assert not flows.loc[["x2_in", "x3_in"], "measured_flow"].any()
    assert flows.loc[["x2_in", "x3_in"], "observable"].all()
    # Every balance closes exactly after reconciliation, facilities and stream links alike.
    assert np.abs(result.nodes["closure_reconciled"].to_numpy()).max() < 1e-9
    # The per-facility test of the figures as given: the splitter is measured all round (closure 101.91 -
    # 64.45 - 34.65 = 2.81, variance 3); the other three have an unmeasured in row and are not tested alone.
    tests = result.facility_tests().set_index("facility_id")
    assert tests.at["splitter", "chi_square"] == pytest.approx(2.81**2 / 3, rel=1e-9)
    assert tests.loc[["exchanger", "valve", "mixer"], "chi_square"].isna().all()
    assert not tests["gross_error_suspected"].any()
    # Balances of the reconciled region close to the same precision.
    table = balances(reconciled_region(region, result)).table
    assert np.abs(table["closure"].to_numpy()).max() < 1e-9


def test_textbook_network_as_processes_of_one_facility(tmp_path: Path) -> None:
    """The same network inside one plant: rows name their process (quantity centre), each process is a
    node, and the internal streams link the processes. The answer is the textbook's."""
    processes = {"x1": "split", "x2": "split", "x3": "split", "x2_in": "exchange", "x4": "exchange",
                 "x3_in": "valve", "x5": "valve", "x4_in": "mix", "x5_in": "mix", "x6": "mix"}
    root = textbook_region(tmp_path / "plant")
    frame = pd.read_csv(root / "flows.csv", dtype=str, keep_default_na=False)
    frame["process"] = frame["flow_id"].map(processes)
    frame["facility_id"] = "splitter"
    frame.to_csv(root / "flows.csv", index=False)
    result = reconcile_network(load_test_region(root))
    flows = result.flows.set_index("flow_id")
    assert flows.loc[["x1", "x2", "x3", "x4_in"], "reconciled"].to_numpy() == pytest.approx(
        [100.22, 64.50, 35.72, 64.50], abs=1e-9)
    assert result.global_test["dof"] == 4
    nodes = result.nodes[result.nodes["kind"] == "facility"]
    assert sorted(nodes["node"]) == ["splitter/exchange", "splitter/mix", "splitter/split", "splitter/valve"]
    assert np.abs(result.nodes["closure_reconciled"].to_numpy()).max() < 1e-9


def test_gross_error_located_in_the_region(tmp_path: Path) -> None:
    y = NJ_Y.copy()
    y[1] = 68.45
    result = reconcile_network(load_test_region(textbook_region(tmp_path / "nj", y)))
    assert not result.global_test["passed"]
    assert list(result.gross_errors["flow_id"]) == ["x2"]
    assert result.gross_errors["set_aside"].all()
    flows = result.flows.set_index("flow_id")
    assert flows.at["x2", "gross_error"] and flows["gross_error"].sum() == 1
    assert np.abs(result.nodes["closure_reconciled"].to_numpy()).max() < 1e-9


def kg_for_t_region(root: Path) -> Path:
    """A mill sends 950 t of concentrate to a plant (the stream is recorded at both ends); the plant sends
    1,000 t of product to works that record receiving 1,000 t; the plant wrote its product's figure with
    unit kg (1,000 kg = 1 t): its own out row is 1,000 times too small."""
    return write_region(root, ["mill", "plant", "works"], [
        flow("mill_ore", "mill", "in", 1000.0, material="clay"),
        flow("mill_concentrate", "mill", "out", 950.0, material="clay", stream="S1"),
        flow("mill_tailings", "mill", "out", 50.0, material="clay"),
        flow("plant_concentrate", "plant", "in", 950.0, material="clay", stream="S1"),
        flow("plant_additive", "plant", "in", 50.0, material="clay"),
        flow("plant_product", "plant", "out", 1000.0, material="clay", stream="S2", unit="kg"),
        flow("works_product", "works", "in", 1000.0, material="clay", stream="S2"),
        flow("works_output", "works", "out", 1000.0, material="clay"),
    ])


def test_kg_for_t_error_is_located_on_that_output(tmp_path: Path) -> None:
    result = reconcile_network(load_test_region(kg_for_t_region(tmp_path / "kg")))
    gross = result.gross_errors
    assert list(gross["flow_id"]) == ["plant_product"]
    assert gross["estimate_without"].iat[0] == pytest.approx(1000.0, rel=1e-9)
    assert gross["likely_cause"].iat[0].startswith("1000x too small")
    flows = result.flows.set_index("flow_id")
    # The right input is left alone (the former per-facility method moved it by -99.9 %).
    assert abs(flows.at["plant_concentrate", "adjustment_pct"]) < 1e-6
    assert flows.at["plant_product", "reconciled"] == pytest.approx(1000.0, rel=1e-9)
    assert np.abs(result.nodes["closure_reconciled"].to_numpy()).max() < 1e-9


def test_equivalent_set_a_unit_slip_decides_otherwise_reported(tmp_path: Path) -> None:
    """At a facility whose flows nothing else measures, the measurement tests of its flows are equal (an
    equivalent set): a figure that the rest put exactly 1000x away is set aside; without such a slip the set
    is reported and nothing is set aside at random."""
    slip = reconcile_network(load_test_region(write_region(tmp_path / "slip", ["plant"], [
        flow("raw", "plant", "in", 1000.0, material="clay"),
        flow("product", "plant", "out", 700.0, material="clay"),
        flow("waste", "plant", "out", 300.0, material="clay", unit="kg"),
    ])))
    # Closure 299.7 t against σ = √(50² + 35² + 0.015²): chi-square 24.1 with 1 dof, a gross error.
    assert list(slip.gross_errors["flow_id"]) == ["waste"]
    assert slip.gross_errors["set_aside"].all()
    assert slip.flows.set_index("flow_id").at["waste", "reconciled"] == pytest.approx(300.0, rel=1e-9)
    plain = reconcile_network(load_test_region(write_region(tmp_path / "plain", ["plant"], [
        flow("raw", "plant", "in", 1000.0, material="clay"),
        flow("product", "plant", "out", 600.0, material="clay"),
    ])))
    assert len(plain.gross_errors) == 1 and not plain.gross_errors["set_aside"].iat[0]
    assert set([plain.gross_errors["flow_id"].iat[0], plain.gross_errors["equivalent_flows"].iat[0]]) == {
        "raw", "product"}
    assert plain.flows["gross_error"].all()
    assert "equivalent set" in plain.warnings[0]


# ----------------------------------------------------------------------------------------------- bad input


def test_unobservable_flow_is_a_located_error(tmp_path: Path) -> None:
    region = load_test_region(write_region(tmp_path / "hub", ["hub"], [
        flow("hub_in", "hub", "in", 100.0),
        flow("hub_a", "hub", "out", None),
        flow("hub_b", "hub", "out", None),
    ]))
    with pytest.raises(InputError) as caught:
        reconcile_network(region)
    text = str(caught.value)
    assert "flows.csv, row 3, column 'amount'" in text and "flows.csv, row 4, column 'amount'" in text
    assert "cannot determine" in text and "hub_b" in text


def test_facility_without_a_measurement_is_an_error(tmp_path: Path) -> None:
    region = load_test_region(write_region(tmp_path / "blind", ["a", "b"], [
        flow("a_in", "a", "in", 100.0),
        flow("a_out", "a", "out", 100.0, stream="S"),
        flow("b_in", "b", "in", None, stream="S"),
        flow("b_out", "b", "out", None),
    ]))
    expected = (r"flows\.csv, row 4, column 'measured': a facility with no measured mass flow cannot be "
                "reconciled; found 'facility b: every mass flow is unmeasured'")
    with pytest.raises(InputError, match=expected):
        reconcile_network(region)


def test_bad_declarations_are_located(tmp_path: Path) -> None:
    bad = write_region(tmp_path / "bad", ["a", "b", "c"], [
        flow("a_in", "a", "in", 100.0, pct=0.0),
        flow("a_out", "a", "out", 60.0, stream="S"),
        flow("a_out2", "a", "out", 40.0, stream="S"),
        flow("b_in", "b", "in", 60.0, stream="S", material="clay"),
        {**flow("c_in", "c", "in", None), "measured": ""},
    ])
    with pytest.raises(InputError) as caught:
        load_test_region(bad)
    text = str(caught.value)
    assert "row 2, column 'uncertainty_pct': an uncertainty of zero" in text
    assert "row 4, column 'stream_id': a stream_id used by more than one out row" in text
    assert "row 5, column 'material': the rows of one stream are of different materials" in text
    assert "row 6, column 'amount': a value is required" in text and "measured" in text


# ------------------------------------------------------------------------------------------- properties


def kkt_solution(a: np.ndarray, y: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """The all-measured problem solved independently: the KKT system of min Σ((x - y)/σ)² s.t. A x = 0."""
    n, m = len(y), a.shape[0]
    kkt = np.block([[np.diag(2 / sigma**2), a.T], [a, np.zeros((m, m))]])
    rhs = np.concatenate([2 * y / sigma**2, np.zeros(m)])
    return np.asarray(linalg.lstsq(kkt, rhs)[0][:n])


@st.composite
def networks(draw: Callable[..., object]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    n_nodes = draw(st.integers(1, 5))
    edges = draw(st.lists(st.tuples(st.integers(-1, n_nodes - 1), st.integers(-1, n_nodes - 1)).filter(
        lambda e: e[0] != e[1]), min_size=2, max_size=10))
    a = np.zeros((n_nodes, len(edges)))
    for j, (source, target) in enumerate(edges):  # -1 is the world outside the region
        if source >= 0:
            a[source, j] -= 1
        if target >= 0:
            a[target, j] += 1
    y = np.array(draw(st.lists(st.floats(1, 1e5), min_size=len(edges), max_size=len(edges))))
    sigma = y * np.array(draw(st.lists(st.floats(0.01, 0.5), min_size=len(edges), max_size=len(edges))))
    measured = np.array(draw(st.lists(st.booleans(), min_size=len(edges), max_size=len(edges))))
    return a, y, sigma, measured


@settings(max_examples=60, deadline=None)
@given(networks())
def test_reconciled_flows_satisfy_every_balance(network: tuple[np.ndarray, ...]) -> None:
    a, y, sigma, measured = network
    result = reconcile_linear(a, y, sigma, measured)
    scale = max(1.0, float(np.abs(y).max()))
    # Every balance whose flows are all determined closes.
    determined = result.observable
    rows = ~(a[:, ~determined] != 0).any(axis=1)
    closure = a[rows][:, determined] @ result.estimate[determined]
    assert np.abs(closure).max(initial=0.0) <= 1e-9 * scale
    # Reconciliation never makes a measured flow less certain.
    assert (result.standard_uncertainty[measured] <= sigma[measured] * (1 + 1e-9)).all()
    if measured.all():
        assert result.estimate == pytest.approx(kkt_solution(a, y, sigma), rel=1e-7, abs=1e-7 * scale)


# --------------------------------------------------------------------------------------------- commands


def test_balance_reconcile_and_optimise_reconciled(tmp_path: Path, tiny_copy: Callable[..., Path]) -> None:
    import json

    from tests.test_cli import assert_ok, invoke

    out = tmp_path / "balance"
    assert_ok(invoke("balance", str(textbook_region(tmp_path / "nj")), "--out", out, "--reconcile", "--private"))
    test = json.loads((out / "reconciliation.json").read_text())
    assert test["dof"] == 4 and test["chi_square"] == pytest.approx(6.4075, rel=1e-9)
    flows = pd.read_csv(out / "reconciled_flows.csv").set_index("flow_id")
    assert flows.at["x2_in", "reconciled"] == pytest.approx(64.50, abs=1e-9)
    assert (out / "gross_errors.csv").exists()
    # The power station's gypsum raised to 30,000 t (5 %): its balance (coal and water in, CO2, fly ash and
    # gypsum out, the rest modelled at 30 %) no longer closes, and reconciliation lowers the gypsum.
    def edit(tables: dict[str, pd.DataFrame]) -> None:
        tables["flows"].loc[tables["flows"]["flow_id"] == "power_gypsum", "amount"] = "30000"
    region_path = tiny_copy(edit)
    reconciled = reconcile_network(load_test_region(region_path)).amounts()["power_gypsum"]
    assert 20_000 < reconciled < 30_000
    run = tmp_path / "run"
    assert_ok(invoke("optimise", region_path, "--out", run, "--reconciled", "--private"))
    kpis = json.loads((run / "kpis.json").read_text())
    assert kpis["reconciled_flows"] is True and kpis["reconciliation_dof"] == 4
    supplies = pd.read_csv(run / "supplies.csv").set_index("supply_id")
    assert supplies.at["power_gypsum", "amount_t_per_yr"] == pytest.approx(reconciled, rel=1e-12)
    # The report of a run on reconciled flows shows measured and reconciled side by side; the public one
    # leaves out the confidential cement works' flows, the private one shows them.
    for private in (False, True):
        report_dir = tmp_path / f"report{private}"
        assert_ok(invoke("run", region_path, "--out", report_dir, "--reconciled", "--no-pngs",
                         *(["--private"] if private else [])))
        html = (report_dir / "report.html").read_text(encoding="utf-8")
        assert "Measured and reconciled flows" in html and "power_gypsum" in html
        assert ("cement_clay" in html) is private
        assert (report_dir / "reconciled_flows.csv").exists()
    plain = tmp_path / "plain"
    assert_ok(invoke("optimise", region_path, "--out", plain, "--private"))
    assert "reconciled_flows" not in json.loads((plain / "kpis.json").read_text())
    assert pd.read_csv(plain / "supplies.csv").set_index("supply_id").at["power_gypsum", "amount_t_per_yr"] == 30_000


def test_public_reconciliation_hides_a_confidential_facility_s_streams(
        tmp_path: Path, tiny_copy: Callable[..., Path]) -> None:
    """The confidential cement works sends its clinker to the public power station (one stream, both rows):
    the public copy hides the cement works' rows and the receiver's row of that stream, whose reconciled
    figure is the sender's too; the private copy shows both."""
    from tests.test_cli import assert_ok, invoke

    def edit(tables: dict[str, pd.DataFrame]) -> None:
        flows = tables["flows"]
        flows["stream_id"] = ""
        flows.loc[flows["flow_id"] == "cement_clinker", "stream_id"] = "K"
        received = flows[flows["flow_id"] == "cement_clay"].assign(
            flow_id="power_clinker_in", facility_id="power", material="clinker", amount="99000", stream_id="K")
        tables["flows"] = pd.concat([flows, received], ignore_index=True)
    region = tiny_copy(edit)
    for private in (False, True):
        out = tmp_path / f"balance{private}"
        assert_ok(invoke("balance", region, "--out", out, "--reconcile", *(["--private"] if private else [])))
        flows = pd.read_csv(out / "reconciled_flows.csv").set_index("flow_id")
        assert ("cement_clinker" in flows.index) is private
        assert bool(np.isfinite(flows.at["power_clinker_in", "reconciled"])) is private
        assert bool(np.isfinite(flows.at["power_gypsum", "reconciled"]))  # the receiver's other flows stay public


def test_facilities_linked_to_none_are_solved_as_by_the_general_formulas(tiny_region) -> None:  # type: ignore[no-untyped-def]
    """Facilities with every flow measured and no stream (the closed form for one balance) give what the
    general projection gives on the same balance; the cement works' test by hand: closure 1,000 t against
    σ² = 5,000² + 4,950², so z = 1,000 / √(5,000² + 4,950²) = 0.1421 on both its flows."""
    result = reconcile_network(tiny_region).flows
    for facility, rows in result.groupby("facility_id"):
        sign = np.where(rows["direction"] == "in", 1.0, -1.0)[None, :]
        general = reconcile_linear(sign, rows["amount"].to_numpy(), rows["standard_uncertainty"].to_numpy(),
                                   np.ones(len(rows), dtype=bool))
        assert rows["reconciled"].to_numpy() == pytest.approx(general.estimate, rel=1e-12), facility
        assert rows["reconciled_standard_uncertainty"].to_numpy() == pytest.approx(
            general.standard_uncertainty, rel=1e-9), facility
        assert np.allclose(rows["measurement_test"].to_numpy(), general.measurement_test, equal_nan=True,
                           rtol=1e-9, atol=1e-12), facility
    cement = result.set_index("flow_id").loc[["cement_clay", "cement_clinker"], "measurement_test"]
    assert cement.to_numpy() == pytest.approx([1_000 / math.hypot(5_000, 4_950)] * 2, rel=1e-12)


@st.composite
def flow_tables(draw: Callable[..., object]) -> pd.DataFrame:
    """A random region's mass flows: facilities with inputs, outputs and stock changes, some rows linked in
    pairs by a stream_id (out at one facility, in at another), some unmeasured, some with their own σ."""
    n_facilities = draw(st.integers(1, 6))
    rows = []
    for k in range(draw(st.integers(2, 14))):
        direction = draw(st.sampled_from(["in", "out", "out", "stock"]))
        rows.append({"flow_id": f"f{k}", "facility_id": f"F{draw(st.integers(0, n_facilities - 1))}",
                     "direction": direction, "material": "clay", "quantity": "mass",
                     "amount_t_per_yr": draw(st.floats(1.0, 1e6)) * (-1 if direction == "stock" and
                                                                      draw(st.booleans()) else 1),
                     "uncertainty_pct": draw(st.one_of(st.just(math.nan), st.floats(0.5, 50.0))),
                     "data_quality": draw(st.sampled_from(["measured", "estimated", "modelled"])),
                     "measured": draw(st.booleans()) or draw(st.booleans()), "stream_id": "",
                     "origin": f"flows.csv:{k + 2}"})
    frame = pd.DataFrame(rows)
    outs = list(frame.index[frame["direction"] == "out"])
    ins = list(frame.index[frame["direction"] == "in"])
    for i, (o, j) in enumerate(zip(outs, ins, strict=False)):
        if draw(st.booleans()):
            frame.loc[[o, j], "stream_id"] = f"S{i}"
    frame.loc[~frame["measured"], "amount_t_per_yr"] = np.nan
    return frame


@settings(max_examples=80, deadline=None)
@given(flow_tables())
def test_region_reconciliation_closes_every_balance_or_says_why_not(flows: pd.DataFrame) -> None:
    from types import SimpleNamespace

    try:
        result = reconcile_network(SimpleNamespace(flows=flows))  # type: ignore[arg-type]
    except InputError as exc:  # an unmeasured flow nothing determines, or a facility with no measurement
        assert all(p.message in ("an unmeasured flow the balances cannot determine",
                                 "a facility with no measured mass flow cannot be reconciled") for p in exc.problems)
        return
    reconciled = result.flows.set_index("flow_id")["reconciled"]
    assert reconciled.notna().all()
    scale = max(1.0, float(np.nanmax(np.abs(flows["amount_t_per_yr"].to_numpy(float)), initial=1.0)))
    signed = np.where(flows["direction"] == "in", 1.0, -1.0) * reconciled.loc[flows["flow_id"]].to_numpy()
    per_facility = pd.Series(signed).groupby(flows["facility_id"].to_numpy()).sum()
    assert np.abs(per_facility.to_numpy()).max() <= 1e-9 * scale
    for _, pair in flows[flows["stream_id"] != ""].groupby("stream_id"):  # a stream's two rows are one flow
        values = reconciled.loc[pair["flow_id"]].to_numpy()
        assert np.abs(values - values[0]).max() <= 1e-9 * scale
    assert result.global_test["dof"] >= 0 and result.global_test["chi_square"] >= -1e-9


def test_run_reconciled_counts_the_warnings_its_report_lists(tmp_path: Path, tiny_copy: Callable[..., Path]) -> None:
    """With --reconciled the report's balances are the reconciled ones: the terminal counts those."""
    import re

    from tests.test_cli import assert_ok, invoke

    def edit(tables: dict[str, pd.DataFrame]) -> None:
        tables["flows"].loc[tables["flows"]["flow_id"] == "cement_clinker", "amount"] = "90000"
    out = tmp_path / "run"
    result = invoke("run", tiny_copy(edit), "--out", out, "--reconciled", "--no-pngs", "--private")
    assert_ok(result)
    found = re.search(r"(\d+) balance warning\(s\), (\d+) data-quality note\(s\), (\d+) loading warning\(s\): "
                      r"(\d+) listed in the report", result.output.replace("\n", " "))
    assert found, result.output
    balance_count, _, _, total = map(int, found.groups())
    # As given, the cement works' mass balance is 10 % open (a warning); reconciled, it closes. The power
    # station's energy balance (not reconciled) stays the one balance warning.
    assert balance_count == 1
    html = (out / "report.html").read_text(encoding="utf-8")
    listing = html.split('<ul class="warnings">', 1)[1].split("</ul>", 1)[0]
    assert listing.count("<li>") == total
    assert "balance does not close" not in listing and listing.count("energy balance open") == 1
