"""Scenario comparisons in the web app beyond carbon prices: a landfill tax factor, facilities that close and
any scenario of `symbiosis compare` written as YAML, checked at their fields by the library's own checks, run
in the background as `symbiosis compare`."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from symbiosis.web.models import Run
from tests.web_helpers import World

pytestmark = pytest.mark.django_db

URL = "/programme/runs/"


def _errors(world: World, data: dict[str, str]) -> dict[str, list[str]]:
    response = world.client("facilitator").post(URL, {"kind": "compare", **data})
    assert response.status_code == 200, "a bad comparison must be sent back, not started"
    return {k: [str(m) for m in v] for k, v in response.context["form"].errors.items()}


def test_bad_scenarios_are_refused_at_their_field_and_nothing_starts(world: World) -> None:
    errors = _errors(world, {"closing": "asnaes, no_such_plant"})
    assert any("unknown facility" in m and "no_such_plant" in m for m in errors["closing"]), errors
    errors = _errors(world, {"scenarios": "- name: [unclosed"})
    assert any(m.startswith("not YAML") for m in errors["scenarios"]), errors
    errors = _errors(world, {"scenarios": "- name: both\n  changes:\n  - fate_cost: {fate: landfill, factor: 2, "
                                          "add: 3}\n"})
    assert any("exactly one of factor, tax_factor, add, set" in m for m in errors["scenarios"]), errors
    errors = _errors(world, {"scenarios": "- name: programme\n  changes: []\n"})
    assert any("the name is taken" in m for m in errors["scenarios"]), errors
    errors = _errors(world, {"scenarios": "- name: dearer\n  changes:\n  - price: {material: unobtainium, "
                                          "factor: 2}\n"})
    assert errors["scenarios"], errors
    errors = _errors(world, {"landfill_tax_factor": "-1"})
    assert "landfill_tax_factor" in errors
    errors = _errors(world, {})
    assert any("at least one scenario" in m for m in errors["carbon_prices"]), errors
    # A hostile id comes back as text in the error, never as markup.
    page = world.client("facilitator").post(URL, {"kind": "compare", "closing": "<script>alert(1)</script>"})
    assert b"<script>alert(1)" not in page.content and b"&lt;script&gt;alert(1)" in page.content
    assert not Run.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_comparison_of_a_landfill_tax_a_closure_and_a_yaml_scenario(tmp_path, settings) -> None:
    from symbiosis.web import jobs
    from tests.web_helpers import make_world

    settings.RUNS_DIR = tmp_path
    w = make_world()
    client = w.client("facilitator")
    scenarios = ("- name: gypsum dearer\n  description: natural gypsum 50 % dearer\n  changes:\n"
                 "  - price: {material: natural_gypsum, factor: 1.5}\n")
    response = client.post(URL, {"kind": "compare", "landfill_tax_factor": "2", "closing": "asnaes",
                                 "scenarios": scenarios})
    assert response.status_code == 302, response.context["form"].errors if response.context else response
    run = Run.objects.get(kind="compare")
    names = [s["name"] for s in run.options["scenarios"]]
    assert names == ["landfill tax x2", "closing", "gypsum dearer"]
    jobs.wait(run.pk, timeout=600)
    run.refresh_from_db()
    assert run.status == "done", run.progress
    out = Path(run.out_dir)
    kpis = pd.read_csv(out / "kpis_comparison.csv").set_index("indicator")
    assert {"programme", "landfill tax x2", "closing", "gypsum dearer"} <= set(kpis.columns), kpis.columns
    bau = kpis.loc["system cost, business as usual"]
    assert float(bau["landfill tax x2"]) > float(bau["programme"])  # Kalundborg landfills some of its waste
    assert float(bau["gypsum dearer"]) > float(bau["programme"])  # and buys natural gypsum
    # Each scenario did what it says: the closed plant is in no exchange; the landfill fates' tax doubled.
    closed = pd.read_csv(out / "closing" / "exchanges.csv")
    assert len(closed) and not (closed.astype(str) == "asnaes").any().any()
    assert (pd.read_csv(out / "programme" / "exchanges.csv").astype(str) == "asnaes").any().any()
    resolved = yaml.safe_load((out / "landfill_tax_x2" / "scenario.resolved.yaml").read_text())
    changed = [c for c in resolved["changes"] if c.get("operation") == "fate_cost"]
    assert changed and all(c["tax_factor"] == 2.0 and str(c["fate"]).startswith("landfill") for c in changed)
    # The run's page lists the comparison's files, which the agency can open.
    page = client.get(f"/programme/runs/{run.pk}/").content.decode()
    assert "kpis_comparison.csv" in page
