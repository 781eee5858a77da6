"""The folium map, the Sankey diagrams and the HTML report, checked on their generated HTML and figures.

What a browser shows is checked in test_browser.py; here: composition, escaping, clustering, file size,
confidentiality and the figures behind the Sankeys and the report.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import folium
import numpy as np
import pytest

from symbiosis.outputs.export import exchange_material_groups
from symbiosis.outputs.mapping import explore, line_weights, map_html, save_map, screen_bearing
from symbiosis.outputs.report import format_kpi, render_report, write_report
from symbiosis.outputs.sankey import facility_sankey, network_sankey
from symbiosis.region import Region
from symbiosis.results import Results
from tests.browser_support import most_connected, optimised_with, synthetic_pipeline_results
from tests.conftest import TINY, load_test_region

HOSTILE = "<script>alert(1)</script>"
HOSTILE_JS = "${alert(2)}`\\"
#: A generated region through the real pipeline: above the clustering threshold (200) and big enough for the
#: file-size check, small enough to generate and optimise in a few seconds (985 exchanges with seed 1).
BIG_REGION_FACILITIES = 600


@pytest.fixture(scope="module")
def big() -> Results:
    return synthetic_pipeline_results(BIG_REGION_FACILITIES)[0]


def exchange_rows(m: folium.Map) -> list[list[Any]]:
    """The exchange rows the map's exchange layers carry (walks folium's element tree)."""
    rows: list[list[Any]] = []

    def walk(element: Any) -> None:
        for child in element._children.values():
            if getattr(child, "_name", "") == "SymbiosisExchanges":
                rows.extend(child.rows)
            walk(child)

    walk(m)
    return rows


def test_line_weights_are_sqrt_scaled_between_2_and_12() -> None:
    weights = line_weights(np.array([0.0, 25.0, 100.0]))
    assert weights.tolist() == pytest.approx([2.0, 7.0, 12.0])
    assert np.all(np.diff(line_weights(np.sort(np.random.default_rng(0).uniform(1, 1e6, 50)))) >= 0)
    assert line_weights(np.array([5.0, 5.0])).tolist() == [12.0, 12.0]


def test_screen_bearing() -> None:
    assert screen_bearing(55.0, 11.0, 56.0, 11.0) == pytest.approx(0.0)
    assert screen_bearing(55.0, 11.0, 55.0, 12.0) == pytest.approx(90.0)
    assert screen_bearing(55.0, 11.0, 54.0, 11.0) == pytest.approx(180.0)


def test_explore_draws_one_line_per_exchange_in_one_layer_per_material_group(results: Results) -> None:
    m = explore(results)
    assert isinstance(m, folium.Map)
    rows = exchange_rows(m)
    assert len(rows) == len(results.exchanges)
    names = [child.layer_name for child in m._children.values() if isinstance(child, folium.FeatureGroup)]
    from symbiosis.outputs.mapping import HEAT_GROUP

    # heat exchanges (material class energy; Kalundborg has them) have their own layer, named with their unit
    for group in {HEAT_GROUP if g == "energy" else g for g in exchange_material_groups(results)}:
        assert any(name.startswith(f"Exchanges: {group} (") for name in names)
    html = m.get_root().render()
    assert "sym-exchange" in html and "sym-facility" in html and "sym-legend" in html
    assert "fitBounds" in html


def test_explore_composes_with_a_given_map(results: Results) -> None:
    base = folium.Map(location=[55.6, 11.1], zoom_start=9, tiles=None)
    out = explore(results, m=base, opacity=0.5)
    assert out is base
    html = out.get_root().render()
    assert '"opacity": 0.5' in html
    assert "L.control.layers" not in html  # the caller's map: no layer control unless asked
    assert "L.control.layers" in explore(results, m=folium.Map(), layer_control=True).get_root().render()


def test_user_text_is_escaped_everywhere(sample: tuple[Results, Region]) -> None:
    results, region = sample
    hostile, hostile_region = optimised_with(region, most_connected(results), name=HOSTILE + HOSTILE_JS)
    html = map_html(hostile)
    assert HOSTILE not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html.replace("\\u0026", "&")
    report = render_report(hostile, region=hostile_region)
    assert HOSTILE not in report
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in report


def test_many_facilities_are_clustered_and_the_file_stays_small(big: Results, results: Results,
                                                                 tmp_path: Path) -> None:
    n_facilities, n_exchanges = len(big.facilities), len(big.exchanges)
    assert n_facilities == BIG_REGION_FACILITIES and n_exchanges > n_facilities  # a real network, not a handful
    path = save_map(big, tmp_path / "big.html")
    html = path.read_text(encoding="utf-8")
    assert "markerClusterGroup" in html
    # One drawing loop per material group, not one folium object per exchange.
    assert html.count("L.polyline(") == exchange_material_groups(big).nunique()
    # docs/outputs.md: about 0.6 kB per facility and 1 kB per exchange (about 1 MB here for 600 and 985).
    assert path.stat().st_size < 600 * n_facilities + 1_000 * n_exchanges + 100_000
    small = map_html(results)
    assert len(results.facilities) <= 200 and "markerClusterGroup" not in small


def test_public_map_hides_confidential_names(sample: tuple[Results, Region]) -> None:
    results, region = sample
    assert not region.facilities["confidential"].any()
    name = "Secret Works Ltd"
    hidden, hidden_region = optimised_with(region, most_connected(results), name=name, confidential=True)
    html = map_html(hidden)
    assert name not in html and "Confidential facility 1" in html
    assert name in map_html(hidden, public=False)
    assert name not in render_report(hidden, region=hidden_region)


def test_facility_sankey_shows_an_unaccounted_node_only_when_the_balance_does_not_close() -> None:
    region = load_test_region(TINY)
    # cement: 100,000 t clay in, 99,000 t clinker out; the gap is its own node.
    labels = list(facility_sankey(region, "cement").data[0].node.label)
    assert "Unaccounted loss" in labels
    assert {"Raw material", "Product"} <= set(labels)
    # board closes through its stock change; power (outputs from its process model) closes too.
    labels = list(facility_sankey(region, "board").data[0].node.label)
    assert {"Raw material", "Product", "Stock increase"} <= set(labels)
    assert not any("Unaccounted" in label for label in labels)
    labels = list(facility_sankey(region, "power").data[0].node.label)
    assert {"Raw material", "By-product", "Emission"} <= set(labels)
    assert not any("Unaccounted" in label for label in labels)
    # Closing cement's balance removes the node; outputs above inputs give the opposite one.
    clinker = region.flows["flow_id"] == "cement_clinker"
    for amount, expected in ((100_000.0, None), (101_000.0, "Unaccounted source")):
        edited = region.copy()
        edited.flows.loc[clinker, "amount_t_per_yr"] = amount
        labels = list(facility_sankey(edited, "cement").data[0].node.label)
        assert [label for label in labels if "Unaccounted" in label] == ([expected] if expected else [])


def test_facility_sankey_from_balances_totals(results: Results) -> None:
    fid = str(results.balances.table["facility_id"].iloc[0])
    fig = facility_sankey(results, fid, by_category=False)
    row = results.balances.table.set_index("facility_id").loc[fid]
    row = row.iloc[0] if row.ndim > 1 else row
    link = fig.data[0].link
    assert sum(v for v, s in zip(link.value, link.source, strict=True) if fig.data[0].node.label[s] == "Inputs") == \
        pytest.approx(row["inputs"])


def test_network_sankey_carries_every_tonne(results: Results) -> None:
    after = network_sankey(results, after=True)
    before = network_sankey(results, after=False)
    s, d, e = results.supplies, results.demands, results.exchanges
    assert sum(before.data[0].link.value) == pytest.approx(s["amount_t_per_yr"].sum() + d["amount_t_per_yr"].sum())
    carried = (e["amount_t_per_yr"].sum() + s["to_fate_t_per_yr"].clip(lower=0).sum()
               + d["virgin_t_per_yr"].clip(lower=0).sum())
    assert sum(after.data[0].link.value) == pytest.approx(carried)
    by_facility = network_sankey(results, by="facility")
    assert any(label.startswith("Supply: ") for label in by_facility.data[0].node.label)


def test_report_kpis_match_the_record(results: Results, tmp_path: Path) -> None:
    path = write_report(results, tmp_path)
    assert (tmp_path / "map.html").exists()
    html = path.read_text(encoding="utf-8")
    shown = re.findall(r'data-kpi="([a-z_0-9]+)">([^<]*)<', html)
    assert {key for key, _ in shown} >= {"net_cost_saving", "co2e_avoided_t", "cost_bau", "cost_optimum"}
    for key, text in shown:
        assert text == format_kpi(results.kpis[key])
    assert 'src="https://cdn.plot.ly/' in html and 'src="map.html"' in html
    for section in ("kpis", "map", "sankey", "exchanges", "gains", "prices", "unmatched", "balances", "methods"):
        assert f'id="{section}"' in html
    assert results.kpis["solver"] in html


def test_self_contained_report_inlines_plotly_and_the_map(results: Results, tmp_path: Path) -> None:
    path = write_report(results, tmp_path, self_contained=True)
    html = path.read_text(encoding="utf-8")
    assert '<script src="https://cdn.plot.ly' not in html
    assert "Plotly.newPlot" in html and "srcdoc=" in html
    assert not (tmp_path / "map.html").exists()


def test_format_kpi() -> None:
    assert format_kpi(1234567.891) == "1,234,568"
    assert format_kpi(3.14159) == "3.14"
    assert format_kpi(17) == "17"
    assert format_kpi("EUR") == "EUR"
    assert json.dumps(format_kpi(float("nan"))) == '"n/a"'


def test_long_tables_are_cut_and_name_their_file(results: Results) -> None:
    n = len(results.exchanges)
    assert n > 5
    html = render_report(results, max_rows=5)
    assert f"Showing the first 5 of {n} rows; all are in <code>exchanges.csv</code>" in html
    assert html.count('class="exchange-row"') == 5


def test_network_sankey_of_the_tiny_region_by_hand() -> None:
    """Link values against the hand optimum of tests/tiny_by_hand.py, not against the tables drawn from."""
    from symbiosis.pipeline import optimise
    from tests import tiny_by_hand as hand

    results = optimise(load_test_region(TINY))

    def links(after: bool) -> dict[tuple[str, str], float]:
        data = network_sankey(results, after=after, by="facility", public=False).data[0]
        label = list(data.node.label)
        return {(label[s], label[t]): v for s, t, v in zip(data.link.source, data.link.target, data.link.value,
                                                            strict=True)}

    after = links(True)
    assert after == pytest.approx({
        ("Supply: Power station", "Demand: Plasterboard plant"): hand.X_GYPSUM,
        ("Supply: Power station", "Demand: Cement works"): hand.X_CEMENT,
        ("Supply: Power station", "Demand: Distant cement works"): hand.X_FAR,
        ("Virgin: Plasterboard plant", "Demand: Plasterboard plant"): 25_000 - hand.X_GYPSUM,
        ("Virgin: Cement works", "Demand: Cement works"): 100_000 - 0.9 * hand.X_CEMENT,
        ("Virgin: Distant cement works", "Demand: Distant cement works"): 200_000 - 0.9 * hand.X_FAR,
        ("Virgin: Power station", "Demand: Power station"): 100_000,
    }, rel=1e-7)  # nothing is left to landfill: no fate link
    before = links(False)
    assert before == pytest.approx({
        ("Supply: Power station", "Fate: landfill"): 60_000,
        ("Virgin: Plasterboard plant", "Demand: Plasterboard plant"): 25_000,
        ("Virgin: Cement works", "Demand: Cement works"): 100_000,
        ("Virgin: Distant cement works", "Demand: Distant cement works"): 200_000,
        ("Virgin: Power station", "Demand: Power station"): 100_000,
    }, rel=1e-12)


def test_heat_paths_carry_mwh_not_tonnes(results: Results) -> None:
    """Kalundborg's heat exchanges are in MWh/yr: their layer's paths carry ``data-mwh-per-yr`` (and class
    sym-heat, data-unit MWh/yr), the material layers ``data-t-per-yr``; before, every path said t/yr."""
    from symbiosis.outputs.mapping import HEAT_GROUP

    m = explore(results)
    heat_amounts = sorted(results.exchanges.loc[results.exchanges["quantity"] == "energy",
                                                "amount_mwh_per_yr"].astype(float).round(3))
    assert heat_amounts, "Kalundborg has heat exchanges"
    found: dict[str, tuple[str, str, list[float]]] = {}

    def walk(element: Any, layer: str) -> None:
        for child in element._children.values():
            name = getattr(child, "layer_name", layer)
            if getattr(child, "_name", "") == "SymbiosisExchanges":
                found[name] = (child.amount_attribute, child.unit, [float(r[9]) for r in child.rows])
            walk(child, name)

    walk(m, "")
    heat = [v for k, v in found.items() if k.startswith(f"Exchanges: {HEAT_GROUP} (")]
    assert len(heat) == 1
    attribute, unit, amounts = heat[0]
    assert (attribute, unit) == ("data-mwh-per-yr", "MWh/yr")
    assert sorted(amounts) == pytest.approx(heat_amounts)
    others = [v for k, v in found.items() if not k.startswith(f"Exchanges: {HEAT_GROUP} (")]
    assert others and all((a, u) == ("data-t-per-yr", "t/yr") for a, u, _ in others)
    html = m.get_root().render()
    assert '"data-mwh-per-yr"' in html and '" sym-heat"' in html
