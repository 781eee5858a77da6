"""Gate fees in the per-facility accounting: a processor's gate fee income and its suppliers' gate fee cost
are in their gains, and the gains still sum to the system's saving.

tests/data/regions/processor: a brewery sends its 6000 t/yr of spent grain to a biogas plant that charges a
gate fee of 10 EUR/t (processors.csv). At the optimum all 6000 t go (tests/test_processors.py), so the brewery
pays 60,000 EUR/yr and the plant receives them. Before this change the fee was recorded and nowhere counted:
both gains were as with no fee.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from symbiosis.inputs import load_region
from symbiosis.pipeline import optimise

REGION = Path(__file__).parent / "data" / "regions" / "processor"


def _with_fee(tmp_path: Path, fee: str) -> Path:
    folder = tmp_path / f"fee{fee}"
    shutil.copytree(REGION, folder)
    text = (folder / "processors.csv").read_text(encoding="utf-8")
    text = text.replace("digester,30000,4,10,", f"digester,30000,4,{fee},")
    (folder / "processors.csv").write_text(text, encoding="utf-8")
    return folder


def test_the_gate_fee_moves_gain_from_the_supplier_to_the_processor_and_cancels_in_the_sum(tmp_path: Path) -> None:
    with_fee = optimise(load_region(_with_fee(tmp_path, "10")))
    without = optimise(load_region(_with_fee(tmp_path, "0")))
    grain = with_fee.exchanges.loc[with_fee.exchanges["supply_id"] == "brewery_grain", "amount_t_per_yr"].sum()
    assert grain == pytest.approx(6000.0, rel=1e-9)
    fac = with_fee.facilities.set_index("facility_id")
    base = without.facilities.set_index("facility_id")
    assert fac.at["brewery", "gate_fees_paid"] == pytest.approx(60_000.0, rel=1e-9)
    assert fac.at["digester", "gate_fees_received"] == pytest.approx(60_000.0, rel=1e-9)
    assert fac.at["farm", "gate_fees_paid"] == 0.0 and fac.at["farm", "gate_fees_received"] == 0.0
    assert fac.at["brewery", "gain"] == pytest.approx(base.at["brewery", "gain"] - 60_000.0, rel=1e-9)
    assert fac.at["digester", "gain"] == pytest.approx(base.at["digester", "gain"] + 60_000.0, rel=1e-9)
    # The fee is a transfer: the system's saving, and the sum of the gains, do not move ...
    k = with_fee.kpis
    saving = k["cost_bau"] - k["cost_optimum"]
    assert saving == pytest.approx(without.kpis["cost_bau"] - without.kpis["cost_optimum"], rel=1e-12)
    assert fac["gain"].sum() == pytest.approx(saving, rel=1e-9)
    assert fac["cost_optimum"].sum() == pytest.approx(k["cost_optimum"], rel=1e-9)
    # ... and with no carbon price the saving is the objective's: BAU minus optimum.
    assert saving == pytest.approx(k["objective_bau"] - k["objective_optimum"], rel=1e-9)
    # Settled at indicative prices instead (which stand in for any negotiated price), nobody loses.
    assert (fac["gain_at_indicative_prices"] >= -1e-6).all()
    assert fac["gain_at_indicative_prices"].to_numpy() == pytest.approx(
        base["gain_at_indicative_prices"].reindex(fac.index).to_numpy(), rel=1e-9, abs=1e-6)
