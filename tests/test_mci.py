"""Material Circularity Indicator: the methodology's limiting cases, a worked example and a facility by hand.

Source: Ellen MacArthur Foundation and Granta Design (2015), "Circularity Indicators: An Approach to Measuring
Circularity. Methodology", section on the product-level MCI: V = M(1 − F_R − F_U), W0 = M(1 − C_R − C_U),
W_C = M(1 − E_C)C_R, W_F = M(1 − E_F)F_R/E_F, W = W0 + (W_F + W_C)/2, LFI = (V + W)/(2M + (W_F − W_C)/2),
F(X) = 0.9/X, MCI = max(0, 1 − LFI·F(X)). Its stated limiting cases: a fully linear product with the average
utility (X = 1) scores 0.1; a fully restorative one (all feedstock recycled or reused, all collected and
recycled at full efficiency) scores 1; a longer life or more intensive use (X > 1) raises the MCI.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from symbiosis.account.mci import circularity, material_circularity
from symbiosis.inputs import load_region


def test_fully_linear_scores_one_tenth() -> None:
    got = material_circularity(100.0).iloc[0]
    assert got["LFI"] == pytest.approx(1.0)
    assert got["MCI"] == pytest.approx(0.1)


def test_fully_restorative_scores_one() -> None:
    got = material_circularity(100.0, recycled_in=0.6, reused_in=0.4, collected_recycling=0.5,
                               collected_reuse=0.5).iloc[0]
    assert got["LFI"] == pytest.approx(0.0)
    assert got["MCI"] == pytest.approx(1.0)


def test_utility_factor() -> None:
    # Linear product: MCI = 1 − 0.9/X. Twice the average lifetime: 0.55; twice as intensively used too (X = 4):
    # 0.775; half the average lifetime: 1 − 1.8 < 0, held at 0.
    got = material_circularity(np.array([1.0, 1.0, 1.0]), lifetime_ratio=np.array([2.0, 2.0, 0.5]),
                               intensity_ratio=np.array([1.0, 2.0, 1.0]))
    assert got["MCI"].tolist() == pytest.approx([0.55, 0.775, 0.0])
    assert got["FX"].tolist() == pytest.approx([0.45, 0.225, 1.8])


def test_worked_example_by_hand() -> None:
    # M = 1, F_R = 0.5, C_R = 0.6, E_C = 0.8, E_F = 0.9, L/L_av = 2:
    # V = 0.5; W0 = 0.4; W_C = 0.2 x 0.6 = 0.12; W_F = 0.1 x 0.5 / 0.9 = 0.0555...;
    # W = 0.4 + (0.0555... + 0.12) / 2 = 0.48777...; LFI = 0.98777... / (2 + (0.0555... − 0.12) / 2)
    #   = 0.98777... / 1.96777... = 0.501976; F(X) = 0.45; MCI = 1 − 0.501976 x 0.45 = 0.774111.
    got = material_circularity(1.0, recycled_in=0.5, collected_recycling=0.6, recycling_efficiency=0.8,
                               feedstock_efficiency=0.9, lifetime_ratio=2.0).iloc[0]
    assert got["WF"] == pytest.approx(0.05 / 0.9)
    assert got["W"] == pytest.approx(0.4 + (0.05 / 0.9 + 0.12) / 2)
    assert got["LFI"] == pytest.approx(0.501976, abs=1e-6)
    assert got["MCI"] == pytest.approx(0.774111, abs=1e-6)


def test_fractions_are_checked() -> None:
    with pytest.raises(ValueError, match="F_R"):
        material_circularity(1.0, recycled_in=1.5)
    with pytest.raises(ValueError, match="efficiency"):
        material_circularity(1.0, recycling_efficiency=0.0)


FLOWS = """flow_id,facility_id,direction,category,material,amount,unit,fate,source
clay_in,works,in,raw_material,clay,60,t,,invoice
ash_in,works,in,raw_material,fly_ash,40,t,,invoice
water_in,works,in,water,freshwater,500,t,,meter
clinker_out,works,out,product,cement_clinker,85,t,,meter
dust_out,works,out,waste,cement_kiln_dust,10,t,landfill,weighbridge
slag_out,works,out,by_product,bottom_ash,5,t,recycling,weighbridge
water_out,works,out,wastewater,wastewater,500,t,sewer,meter
"""


def test_facility_gate_to_gate_by_hand(tmp_path: Path) -> None:
    # Feedstock M = 60 clay + 40 fly ash (a secondary material) = 100 (water out of scope); V = 60.
    # Residues: 10 t dust landfilled (W0 = 10), 5 t bottom ash recycled (C_R·M = 5); with E_C = 0.8, W_C = 1.
    # W = 10 + 1/2 = 10.5; LFI = (60 + 10.5) / (200 − 1/2) = 0.353383; MCI = 1 − 0.9 x 0.353383 = 0.681955.
    folder = tmp_path / "r"
    folder.mkdir()
    (folder / "region.yaml").write_text("name: MCI\n", encoding="utf-8")
    (folder / "facilities.csv").write_text("facility_id,name,sector,lat,lon\nworks,Works,23.51,55.7,11.2\n",
                                           encoding="utf-8")
    (folder / "flows.csv").write_text(FLOWS, encoding="utf-8")
    result = circularity(load_region(folder), recycling_efficiency=0.8)
    works = result.facilities.set_index("facility_id").loc["works"]
    assert works["M_bau"] == pytest.approx(100)
    assert works["V_bau"] == pytest.approx(60)
    assert works["W0_bau"] == pytest.approx(10)
    assert works["LFI_bau"] == pytest.approx(70.5 / 199.5)
    assert works["MCI_bau"] == pytest.approx(1 - 0.9 * 70.5 / 199.5)
    # The product at the gate: F_R = 0.4 of the feedstock, landfilled at end of life (no data):
    # V = 0.6 M, W0 = M, LFI = 1.6 / 2 = 0.8, MCI = 1 − 0.72 = 0.28.
    clinker = result.products.set_index("flow_id").loc["clinker_out"]
    assert clinker["MCI_bau"] == pytest.approx(0.28)


def test_exchanges_raise_receivers_circularity(sample: tuple[object, object]) -> None:
    results, region = sample
    result = circularity(region, results)  # type: ignore[arg-type]
    facilities = result.facilities.set_index("facility_id")
    receivers = set(results.exchanges["demand_facility"])  # type: ignore[attr-defined]
    gained = facilities.loc[sorted(receivers & set(facilities.index))]
    assert (gained["recycled_feedstock_optimum"] >= gained["recycled_feedstock_bau"]).all()
    assert (gained["MCI_change"].dropna() >= -1e-12).all()
    assert facilities.loc["gyproc", "MCI_optimum"] > facilities.loc["gyproc", "MCI_bau"]
