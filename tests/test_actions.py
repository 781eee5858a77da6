"""The ranked action plan: AHP weights and consistency against Saaty's published example, weights that reorder
the ranking as they should, every action linked to the rows of data it comes from, and the register export."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from symbiosis.account.actions import (
    CRITERIA,
    ahp,
    candidate_actions,
    read_ahp,
    score_actions,
    write_register,
)
from symbiosis.account.mci import circularity
from symbiosis.account.mfca import mfca
from symbiosis.balances import balances, reconcile
from symbiosis.errors import InputError

REPO = Path(__file__).resolve().parent.parent


def test_ahp_saaty_wealth_of_nations() -> None:
    # Saaty, T.L. (1977), "A scaling method for priorities in hierarchical structures", J. Math. Psychology 15,
    # 234-281, and Saaty (1980), The Analytic Hierarchy Process, McGraw-Hill: the relative wealth of nations
    # (US, USSR, China, France, UK, Japan, W. Germany). Published eigenvector .427 .230 .021 .052 .052 .123
    # .094, λmax = 7.61; CR = (7.61 − 7)/6 / 1.32 = 0.08 with the random index 1.32 for n = 7.
    matrix = [[1, 4, 9, 6, 6, 5, 5], [1 / 4, 1, 7, 5, 5, 3, 4], [1 / 9, 1 / 7, 1, 1 / 5, 1 / 5, 1 / 7, 1 / 5],
              [1 / 6, 1 / 5, 5, 1, 1, 1 / 3, 1 / 3], [1 / 6, 1 / 5, 5, 1, 1, 1 / 3, 1 / 3],
              [1 / 5, 1 / 3, 7, 3, 3, 1, 2], [1 / 5, 1 / 4, 5, 3, 3, 1 / 2, 1]]
    result = ahp(matrix, ["us", "ussr", "china", "france", "uk", "japan", "germany"])
    published = [0.427, 0.230, 0.021, 0.052, 0.052, 0.123, 0.094]
    assert [round(w, 3) for w in result.weights.values()] == published
    assert round(result.lambda_max, 2) == 7.61
    assert round(result.consistency_ratio, 2) == 0.08


def test_read_ahp_consistent_matrix(tmp_path: Path) -> None:
    # A perfectly consistent matrix (a_ij = w_i / w_j with w = 4:2:1): weights 4/7, 2/7, 1/7, λmax = 3, CR = 0.
    path = tmp_path / "weights.csv"
    path.write_text("criterion,technical,environmental,economic\ntechnical,1,2,4\nenvironmental,1/2,1,2\n"
                    "economic,1/4,0.5,1\n", encoding="utf-8")
    result = read_ahp(path)
    assert result.weights == pytest.approx({"technical": 4 / 7, "environmental": 2 / 7, "economic": 1 / 7})
    assert result.consistency_ratio == pytest.approx(0.0, abs=1e-9)


def test_inconsistent_matrix_is_a_located_error(tmp_path: Path) -> None:
    # Circular preferences: technical ≫ environmental ≫ economic ≫ technical.
    path = tmp_path / "weights.csv"
    path.write_text("criterion,technical,environmental,economic\ntechnical,1,9,1/9\nenvironmental,1/9,1,9\n"
                    "economic,9,1/9,1\n", encoding="utf-8")
    with pytest.raises(InputError) as info:
        read_ahp(path)
    text = str(info.value)
    assert f"{path}, column 'consistency ratio': the pairwise comparisons are inconsistent" in text
    assert "expected CR ≤ 0.1" in text
    assert re.search(r"row \d \((technical|environmental|economic)\), column '\w+'", text)


def test_non_reciprocal_matrix_is_a_located_error(tmp_path: Path) -> None:
    path = tmp_path / "weights.csv"
    path.write_text("criterion,technical,economic\ntechnical,1,3\neconomic,3,1\n", encoding="utf-8")
    with pytest.raises(InputError) as info:
        read_ahp(path)
    expected = f"{path}, row 3, column 'technical': the matrix is not reciprocal; found '3'; expected 1/3"
    assert expected in str(info.value)


def _two_actions() -> pd.DataFrame:
    # "far": a big saving but 80 km away on estimated data; "near": a small saving, on site, measured.
    rows = []
    for action_id, saving, distance, confidence in (("far", 900_000.0, 80.0, 0.5), ("near", 50_000.0, 0.0, 1.0)):
        row = {c: np.nan for c in CRITERIA}
        row.update(action_id=action_id, facility_id="f", partner_id="", kind="exchange", action=action_id,
                   evidence="flows.csv:2",
                   saving_per_yr=saving, distance_km=distance, data_confidence=confidence, feasibility=0.8,
                   permit_ok=1.0, co2e_avoided_t=100.0)
        rows.append(row)
    return pd.DataFrame(rows)


def test_weights_reorder_the_ranking() -> None:
    actions = _two_actions()
    economic = score_actions(actions, {"technical": 0.1, "environmental": 0.1, "economic": 0.8})
    technical = score_actions(actions, {"technical": 0.8, "environmental": 0.1, "economic": 0.1})
    assert economic["action_id"].tolist() == ["far", "near"]
    assert technical["action_id"].tolist() == ["near", "far"]
    # per criterion: saving alone puts "far" first; distance alone puts "near" first
    assert score_actions(actions, {"saving_per_yr": 1})["action_id"].iat[0] == "far"
    assert score_actions(actions, {"distance_km": 1})["action_id"].iat[0] == "near"
    with pytest.raises(ValueError, match="unknown weight"):
        score_actions(actions, {"speed": 1})


def test_every_action_links_to_its_rows(sample: tuple[object, object], tmp_path: Path) -> None:
    results, region = sample
    actions = candidate_actions(region, mfca=mfca(region, results=results), results=results,  # type: ignore[arg-type]
                                circularity=circularity(region, results), balances=balances(region),  # type: ignore[arg-type]
                                reconciliation=reconcile(region))  # type: ignore[arg-type]
    assert set(actions["kind"]) >= {"reduce_loss", "exchange", "meet_benchmark"}
    lines: dict[str, list[str]] = {}
    for evidence in actions["evidence"]:
        assert evidence, "an action without its data rows"
        for origin in evidence.split("; "):
            if origin.startswith("models/"):
                assert (REPO / origin).is_file(), origin
                continue
            if origin.startswith("balance:"):
                continue
            file, row = origin.rsplit(":", 1)
            if file not in lines:
                lines[file] = (REPO / file).read_text(encoding="utf-8").splitlines()
            assert 2 <= int(row) <= len(lines[file]), origin
    # an exchange's evidence is the rows of its two flows
    exchange = actions[actions["kind"] == "exchange"].iloc[0]
    supply_id, demand_id = exchange["action_id"].removeprefix("exchange:").split("->")
    flows = region.flows.set_index("flow_id")  # type: ignore[attr-defined]
    for flow_id in (supply_id, demand_id):
        assert flows.loc[flow_id, "origin"] in exchange["evidence"]


def test_register_export(tmp_path: Path) -> None:
    actions = _two_actions()
    actions.loc[0, "action"] = "=HYPERLINK(\"http://x\")"
    written = write_register(score_actions(actions), tmp_path)
    csv = pd.read_csv(written["csv"], keep_default_na=False)
    xlsx = pd.read_excel(written["xlsx"], sheet_name="actions", keep_default_na=False)
    for frame in (csv, xlsx):
        assert list(frame.columns[-3:]) == ["owner", "due_date", "status"]
        assert frame["rank"].tolist() == [1, 2]
        assert not frame["action"].astype(str).str.startswith("=").any()


def test_balance_gap_and_gross_error_actions_cite_their_rows(tiny_copy: Any) -> None:
    from tests.conftest import load_test_region

    def shrink(tables: dict[str, pd.DataFrame]) -> None:
        flows = tables["flows"]
        flows.loc[flows["flow_id"] == "board_product", "amount"] = "20000"  # 4,000 t/yr unaccounted (16 %)

    region = load_test_region(tiny_copy(shrink))
    flagged = pd.DataFrame({"flow_id": ["board_product", "board_gypsum"], "gross_error": [True, False]})
    actions = candidate_actions(region, balances=balances(region), reconciliation=flagged).set_index("action_id")
    gap = actions.loc["gap:board:mass"]
    assert gap["kind"] == "close_balance_gap" and "+4,000 t/yr open" in gap["action"]
    # rows 3, 4 and 5 of flows.csv are the board's gypsum, product and stock change
    assert set(gap["evidence"].split("; ")) == {f"{region.flows['origin'].iat[0].rsplit(':', 1)[0]}:{n}"
                                                for n in (3, 4, 5)}
    check = actions.loc["check:board_product"]
    assert check["facility_id"] == "board" and check["evidence"].endswith("flows.csv:4")
    assert "check:board_gypsum" not in actions.index


def test_measure_better_puts_the_saving_at_stake(sample: tuple[Any, Any]) -> None:
    # asnaes_fgd_gypsum states ±15 % (flows.csv); every exchange it supplies scales with it, so ±15 % of their
    # saving is at stake.
    results, region = sample
    actions = candidate_actions(region, results=results).set_index("action_id")
    measured = actions[actions["kind"] == "measure_better"]
    assert 0 < len(measured) <= 10
    exchanges = results.exchanges
    stake = 0.15 * exchanges.loc[exchanges["supply_id"] == "asnaes_fgd_gypsum", "saving"].abs().sum()
    assert f"±{stake:,.0f} EUR/yr" in measured.loc["measure:asnaes_fgd_gypsum", "action"]
    assert measured.loc["measure:asnaes_fgd_gypsum", "evidence"].endswith("flows.csv:2")


def test_ahp_weights_rank_like_the_groups_they_give(tmp_path: Path) -> None:
    # technical 4/7, environmental 2/7, economic 1/7 (the consistent matrix above): "near" (closer, better
    # data) wins, as with those weights given directly.
    path = tmp_path / "weights.csv"
    path.write_text("criterion,technical,environmental,economic\ntechnical,1,2,4\nenvironmental,1/2,1,2\n"
                    "economic,1/4,1/2,1\n", encoding="utf-8")
    by_ahp = score_actions(_two_actions(), read_ahp(path))
    direct = score_actions(_two_actions(), {"technical": 4, "environmental": 2, "economic": 1})
    assert by_ahp["action_id"].tolist() == direct["action_id"].tolist() == ["near", "far"]
    assert by_ahp["score"].tolist() == pytest.approx(direct["score"].tolist())


@pytest.mark.parametrize("text", ["", "criterion\n", "criterion,technical\n"])
def test_empty_or_short_matrix_is_a_located_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "weights.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as info:
        read_ahp(path)
    assert str(path) in str(info.value)


def test_network_gross_error_becomes_a_check_with_its_likely_cause(tmp_path: Path) -> None:
    # The network reconciliation's kg-for-t case (tests/test_reconcile_network.py): the plant's product row is
    # 1000x too small; the action names that flow, the likely cause, and the row it comes from; the plant gets
    # no second, facility-level check.
    from tests.conftest import load_test_region
    from tests.test_reconcile_network import kg_for_t_region

    region = load_test_region(kg_for_t_region(tmp_path / "kg"))
    actions = candidate_actions(region, reconciliation=reconcile(region)).set_index("action_id")
    checks = actions[actions["kind"] == "check_measurement"]
    assert list(checks.index) == ["check:plant_product"]
    check = checks.loc["check:plant_product"]
    assert check["facility_id"] == "plant" and "1000x too small" in check["action"]
    origin = region.flows.set_index("flow_id").at["plant_product", "origin"]  # type: ignore[attr-defined]
    assert check["evidence"] == origin
