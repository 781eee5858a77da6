"""Candidates by tile (symbiosis.tiles): the union of the tiles' arcs is the whole candidate arc table, every
column and every row, each arc in exactly one tile, on the shipped regions and a generated one with
processors and heat; tiles of very different sizes and empty tiles change nothing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from symbiosis.candidates import candidates, prepare
from symbiosis.inputs import load_region
from symbiosis.region import Region
from symbiosis.tiles import Tiling, arc_ids, merge_screening, plan_tiles, tiling
from tests.conftest import load_test_region

TEST_REGIONS = Path(__file__).parent / "data" / "regions"
SHIPPED = Path(__file__).parent.parent / "data" / "regions"


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Region:
    from symbiosis.synthetic import generate_region

    folder = tmp_path_factory.mktemp("generated")
    return load_region(generate_region(400, folder / "region", seed=7, max_distance_km=40.0))


def _regions(generated: Region) -> list[Region]:
    return [load_test_region(TEST_REGIONS / "tiny"), load_region(TEST_REGIONS / "heat"),
            load_region(TEST_REGIONS / "processor"), load_region(SHIPPED / "kalundborg"), generated]


def _keyed(arcs: pd.DataFrame, n_demands: int) -> pd.DataFrame:
    keyed = arcs.copy()
    keyed.index = pd.Index(arc_ids(arcs["s"].to_numpy(), arcs["d"].to_numpy(), n_demands), name="arc_id")
    return keyed


def _assert_union_is_whole(region: Region, tiles: list[np.ndarray]) -> None:
    whole = candidates(region)
    tiled = Tiling(prepare(region), tiles)
    n_d = len(whole.demands)
    parts = [tiled.candidates(k) for k in range(tiled.n_tiles)]
    for k, part in enumerate(parts):
        # Only the tile's own supplies send arcs, in the whole table's order (by supply, then demand).
        assert set(part.arcs["s"].tolist()) <= set(tiles[k].tolist())
        ids = arc_ids(part.arcs["s"].to_numpy(), part.arcs["d"].to_numpy(), n_d)
        assert (np.diff(ids) > 0).all()
        # The small tables are whole in every tile.
        pd.testing.assert_frame_equal(part.supplies, whole.supplies)
        pd.testing.assert_frame_equal(part.demands, whole.demands)
        pd.testing.assert_frame_equal(part.demand_quality, whole.demand_quality)
    union = pd.concat([_keyed(p.arcs, n_d) for p in parts])
    assert not union.index.duplicated().any(), "an arc is in two tiles"
    expected = _keyed(whole.arcs, n_d)
    assert list(union.columns) == list(expected.columns)
    union = union.sort_index()
    pd.testing.assert_frame_equal(union, expected, check_dtype=False)
    screening = merge_screening([p.screening for p in parts])
    pd.testing.assert_frame_equal(screening.reset_index(drop=True), whole.screening.reset_index(drop=True),
                                  check_dtype=False)
    screened = [p.permit_screened for p in parts if p.permit_screened is not None]
    n_screened = 0 if whole.permit_screened is None else len(whole.permit_screened)
    assert sum(len(p) for p in screened) == n_screened


def test_tiles_make_the_whole_candidate_table(generated):
    for region in _regions(generated):
        prepared = prepare(region)
        n_s = len(prepared.supplies)
        for n_tiles in (1, 3, 7):
            tiles = plan_tiles(prepared, n_tiles)
            assert len(tiles) == n_tiles
            assert sorted(np.concatenate(tiles).tolist()) == list(range(n_s))
            _assert_union_is_whole(region, tiles)


def test_tiles_of_very_different_sizes_and_empty_tiles(generated):
    region = generated
    n_s = len(prepare(region).supplies)
    rng = np.random.default_rng(3)
    order = rng.permutation(n_s)
    # One supply alone, an empty tile, a tenth, the rest scattered at random (not spatial), another empty one.
    tiles = [np.sort(order[:1]), np.zeros(0, dtype=np.int64), np.sort(order[1:n_s // 10]),
             np.sort(order[n_s // 10:]), np.zeros(0, dtype=np.int64)]
    _assert_union_is_whole(region, tiles)
    empty = Tiling(prepare(region), tiles).candidates(1)
    assert len(empty.arcs) == 0 and list(empty.arcs.columns) == list(candidates(region).arcs.columns)


def test_the_generated_region_has_what_the_tiles_must_carry(generated):
    whole = candidates(generated)
    assert len(whole.arcs) > 2000
    assert whole.processors is not None and len(whole.processors) > 0
    s = whole.arcs["s"].to_numpy()
    assert (whole.supplies["quantity"].to_numpy()[s] == "energy").any()
    assert not whole.demand_quality.empty


def test_planned_tiles_balance_the_arcs_and_are_spatial(generated):
    prepared = prepare(generated)
    t = tiling(prepared, tile_arcs=1500)
    assert t.n_tiles >= 3
    sizes = [len(t.candidates(k).arcs) for k in range(t.n_tiles)]
    assert max(sizes) < 3 * (sum(sizes) / len(sizes))
    # A spatial tile's supplies lie closer together than the region's as a whole.
    lat = prepared.lat[prepared.s_fac]
    spread = [np.ptp(lat[rows]) for rows in t.tiles if len(rows) > 1]
    assert np.median(spread) < np.ptp(lat)
    with pytest.raises(ValueError, match="at least 1"):
        plan_tiles(prepared, 0)
