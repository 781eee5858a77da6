"""Column generation over tiles (symbiosis.exchange.tiled) reaches the optimum of the whole LP.

The tiled optimum is checked against the whole candidate table without symbiosis.exchange: its flows, put
back on every arc by global id, and its published duals form an optimal pair of the LP assembled
independently from the raw tables (tests/independent.py: every arc of every tile has a reduced cost ≥ 0 at
0 flow, complementary slackness, strong duality), and its objective equals the monolithic solve's to 1e-7.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from symbiosis.candidates import candidates, prepare
from symbiosis.exchange import solve_column_generation, solve_exchange
from symbiosis.exchange.model import exchange_arrays
from symbiosis.exchange.tiled import solve_tiled
from symbiosis.inputs import load_region
from symbiosis.region import Region
from symbiosis.tiled_run import tile_count
from symbiosis.tiles import TILED_FROM_FACILITIES, Tiling, arc_ids, tiling
from tests.conftest import load_test_region
from tests.independent import assert_kkt, reference_lp

TEST_REGIONS = Path(__file__).parent / "data" / "regions"
SHIPPED = Path(__file__).parent.parent / "data" / "regions"


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Region:
    from symbiosis.synthetic import generate_region

    folder = tmp_path_factory.mktemp("generated")
    return load_region(generate_region(300, folder / "region", seed=3))  # processors and heat


def _on_every_arc(whole, tiled):
    """The tiled Solution with x put back on every arc of the whole table (0 outside the master)."""
    n_d = len(whole.demands)
    whole_ids = arc_ids(whole.arcs["s"].to_numpy(), whole.arcs["d"].to_numpy(), n_d)
    master = tiled.candidates.arcs
    master_ids = arc_ids(master["s"].to_numpy(), master["d"].to_numpy(), n_d)
    at = np.searchsorted(whole_ids, master_ids)
    assert (whole_ids[at] == master_ids).all(), "a master arc is not in the whole table"
    # The master's arcs are the whole table's rows, value for value.
    pd.testing.assert_frame_equal(master.reset_index(drop=True), whole.arcs.iloc[at].reset_index(drop=True),
                                  check_dtype=False)
    solution = tiled.solution
    x = np.zeros(len(whole.arcs))
    x[at] = solution.x
    return solution, x


def _check(region: Region, tiles: Tiling, **options) -> None:
    whole = candidates(region)
    mono = solve_exchange(whole, decompose=False)
    tiled = solve_tiled(tiles, **options)
    assert tiled.solution.objective == pytest.approx(mono.objective, rel=1e-7, abs=1e-7)
    solution, x = _on_every_arc(whole, tiled)
    master_arrays = exchange_arrays(tiled.candidates)
    certificate = type(solution)(**{**solution.__dict__, "x": x})
    assert_kkt(reference_lp(whole, carbon_price=float(whole.parameters["carbon_price"])), certificate,
               master_arrays.quality_rows, facility_intake_ids=master_arrays.facility_intake_ids,
               permit_ids=(master_arrays.permit_facility, master_arrays.permit_code))
    assert tiled.solution.parameters["strategy"] == "tiled_column_generation"
    assert tiled.solution.parameters["candidate_arcs"] == len(whole.arcs)
    assert tiled.solution.parameters["min_reduced_cost_outside_master"] >= -1e-6 * max(1.0, abs(mono.objective))
    # The screening counts are the whole table's.
    pd.testing.assert_frame_equal(tiled.candidates.screening.reset_index(drop=True),
                                  whole.screening.reset_index(drop=True), check_dtype=False)


@pytest.mark.parametrize("name", ["tiny", "heat", "processor", "kalundborg"])
def test_tiled_optimum_on_small_regions(name):
    region = (load_test_region(TEST_REGIONS / name) if name == "tiny"
              else load_region((SHIPPED if name == "kalundborg" else TEST_REGIONS) / name))
    _check(region, tiling(prepare(region), 3), per_supply=1, per_demand=1)


@pytest.mark.parametrize("n_tiles", [1, 4, 9])
def test_tiled_optimum_on_a_generated_region(generated, n_tiles):
    _check(generated, tiling(prepare(generated), n_tiles), spill=n_tiles == 4)


def test_tiled_rounds_are_the_untiled_rounds(generated):
    """The same arcs enter in the same rounds as colgen over the whole table (its per-demand choice merged over
    tiles), so the rounds and the objective agree, and the master holds colgen's final master."""
    whole = candidates(generated)
    untiled = solve_column_generation(whole, max_master_share=1.0, warm=False)
    tiled = solve_tiled(tiling(prepare(generated), 6), grow=False).solution
    assert tiled.parameters["iterations"] == untiled.parameters["iterations"]
    assert tiled.objective == pytest.approx(untiled.objective, rel=1e-9)
    assert tiled.parameters["master_arcs"] >= untiled.parameters["master_arcs"]
    # Every master after the first started from the last one's basis (arcs keyed by global id).
    assert tiled.parameters["iterations"] >= 2
    assert tiled.parameters["warm_rounds"] == tiled.parameters["iterations"] - 1


def test_the_tiled_master_grows_in_place(generated):
    """After the first round the entering arcs' columns are added to the first master's HiGHS instances
    (symbiosis.exchange.grow.add_keyed_columns) instead of a new model being built: the optimum is the whole
    LP's, proven over every arc of every tile by the independent KKT check, and equals the rebuilt masters'."""
    tiles = tiling(prepare(generated), 6)
    _check(generated, tiles, spill=True)
    tiled = solve_tiled(tiles, spill=True)
    grown = tiled.solution
    rebuilt = solve_tiled(tiles, spill=True, grow=False).solution
    assert grown.parameters["iterations"] >= 2
    assert grown.parameters["grown_rounds"] == grown.parameters["iterations"] - 1
    assert rebuilt.parameters["grown_rounds"] == 0
    assert grown.objective == pytest.approx(rebuilt.objective, rel=1e-9)
    # The master holds every row an arc of any tile enters (the first one did, so that later arcs can join it):
    # an arc into every demand that has one, and the whole table's quality rows.
    whole = exchange_arrays(candidates(generated))
    mine = exchange_arrays(tiled.candidates)
    assert set(np.unique(mine.arc_d)) == set(np.unique(whole.arc_d))
    assert mine.quality.n_rows == whole.quality.n_rows > 0


def test_tiles_of_very_different_sizes(generated):
    n_s = len(prepare(generated).supplies)
    rows = np.random.default_rng(1).permutation(n_s)
    tiles = [np.sort(rows[:2]), np.zeros(0, np.int64), np.sort(rows[2:n_s // 3]), np.sort(rows[n_s // 3:])]
    _check(generated, Tiling(prepare(generated), tiles), per_supply=2, per_demand=2)


def test_spilled_tiles_read_back_as_they_were_written(generated, tmp_path, monkeypatch):
    """A tile written as Parquet and read back prices exactly as in memory: the same ids, supplies, demands,
    objective, bounds, rows and keys of every family, and the same arc rows for any positions asked."""
    import pyarrow.parquet as pq

    from symbiosis.exchange import tilefiles
    from symbiosis.exchange.colgen import ARC_ROW_FAMILIES
    from symbiosis.exchange.tiled import build_tile

    monkeypatch.setattr(tilefiles, "ROW_GROUP", 500)  # several row groups a tile: rows read from a few of them
    tiles = tiling(prepare(generated), 3)
    n_quality = 0
    for k in range(tiles.n_tiles):
        tile, _summary = build_tile(tiles, k, None, None)
        where = tilefiles.write_tile(tmp_path, tile)
        back = tilefiles.read_tile(where)
        assert back.arcs is None and back.number == k
        for name in ("ids", "arc_s", "arc_d", "objective", "upper"):
            np.testing.assert_array_equal(getattr(back, name), getattr(tile, name), err_msg=name)
        for family in ARC_ROW_FAMILIES:
            mine, theirs = back.blocks[family.name], tile.blocks[family.name]
            for part in ("ptr", "cols", "coefs"):
                np.testing.assert_array_equal(getattr(mine, part), getattr(theirs, part), err_msg=family.name)
            assert back.keys[family.name].equals(tile.keys[family.name]), family.name
            # Keys read back match the in-memory ones by value, as the master's are matched to them.
            np.testing.assert_array_equal(tile.keys[family.name].get_indexer(back.keys[family.name]),
                                          np.arange(len(back.keys[family.name])))
        picked = np.sort(np.random.default_rng(k).choice(tile.n_arcs, size=min(50, tile.n_arcs), replace=False))
        pd.testing.assert_frame_equal(back.rows(picked), tile.rows(picked))
        pd.testing.assert_frame_equal(back.rows(np.zeros(0, np.int64)), tile.rows(np.zeros(0, np.int64)))
        # Pricing reads the tile's own columns, never the descriptive ones.
        assert set(pq.read_schema(where / "arcs.parquet").names) >= {"s", "d", "tile_arc_id", "tile_objective"}
        assert pq.ParquetFile(where / "arcs.parquet").num_row_groups > 1
        n_quality += len(back.keys["quality_limit"])
    assert n_quality > 0  # keyed rows (demand, parameter, bound) were written and read back


def test_spilled_tiled_in_memory_and_untiled_agree(generated):
    """The tiles spilled to Parquet give the same rounds, master and optimum as the tiles kept in memory, and
    the optimum of the whole table (1e-9 relative), on a region with processors and heat."""
    tiles = tiling(prepare(generated), 5)
    assert len(generated.processors) and tiles.prepared.supplies["quantity"].eq("energy").any()
    kept = solve_tiled(tiles, spill=False).solution
    spilled = solve_tiled(tiles, spill=True)
    whole = solve_exchange(candidates(generated), decompose=False)
    assert spilled.solution.objective == pytest.approx(kept.objective, rel=1e-9)
    assert spilled.solution.objective == pytest.approx(whole.objective, rel=1e-9)
    for key in ("iterations", "master_arcs", "candidate_arcs"):
        assert spilled.solution.parameters[key] == kept.parameters[key], key
    np.testing.assert_allclose(spilled.solution.x, kept.x, rtol=1e-9, atol=1e-9)


def test_a_tiled_run_that_cannot_finish_says_so_and_leaves_no_tiles_behind(generated, tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    made = []
    mkdtemp = tempfile.mkdtemp
    monkeypatch.setattr(tempfile, "mkdtemp", lambda **kw: made.append(mkdtemp(**kw)) or made[-1])
    with pytest.raises(RuntimeError, match="did not converge in 1 rounds"):
        solve_tiled(tiling(prepare(generated), 3), per_supply=1, per_demand=1, max_iterations=1, spill=True)
    assert len(made) == 1 and Path(made[0]).parent == tmp_path  # the tiles were spilled there ...
    assert list(tmp_path.iterdir()) == []  # ... and removed


# --- the pipeline and the command line ------------------------------------------------------------------


def test_a_tiled_run_gives_the_whole_tables_results(generated):
    from symbiosis.pipeline import optimise

    whole = optimise(generated, strategy="monolithic")
    tiled = optimise(generated, tiles=5)
    assert tiled.parameters["strategy"] == "tiled_column_generation" and tiled.parameters["tiles"] == 5
    assert tiled.kpis["objective_optimum"] == pytest.approx(whole.kpis["objective_optimum"], rel=1e-7)
    for key in ("cost_bau", "co2e_bau_t", "n_exchanges"):
        assert tiled.kpis[key] == pytest.approx(whole.kpis[key], rel=1e-6), key
    # Why each supply is left to its fate is judged on its most attractive arc of the whole table, which the
    # master holds: the same reasons as the whole-table run.
    pd.testing.assert_series_equal(tiled.supplies["reason"], whole.supplies["reason"])
    assert (tiled.supplies["reason"] == "not_economic").any()


def test_tiles_option_is_checked(generated):
    from symbiosis.errors import SymbiosisError
    from symbiosis.pipeline import optimise

    for bad in ("0", "many", "-2", "2.5"):
        with pytest.raises(SymbiosisError, match="--tiles must be auto, off or a number"):
            optimise(generated, tiles=bad)
    with pytest.raises(SymbiosisError, match="annual LP only"):
        optimise(generated, tiles=3, mode="mip")
    with pytest.raises(SymbiosisError, match="--scheduler prices tiles"):
        optimise(generated, tiles="off", scheduler="local")
    # auto leaves a region below TILED_FROM_FACILITIES to the whole table
    assert len(generated.facilities) < TILED_FROM_FACILITIES
    assert tile_count(generated, "auto") is None and tile_count(generated, " 7 ") == 7
    assert tile_count(generated, "OFF") is None


def test_run_with_tiles_on_the_command_line(tmp_path):
    from typer.testing import CliRunner

    from symbiosis.cli import app

    out = tmp_path / "out"
    runner = CliRunner()
    result = runner.invoke(app, ["run", str(SHIPPED / "kalundborg"), "--out", str(out), "--no-pngs", "--tiles", "2",
                                 "--arcs"])
    assert result.exit_code == 0, result.output
    assert (out / "exchanges.csv").exists() and (out / "map.html").exists()
    assert len(pd.read_csv(out / "candidates.csv")) == json.loads((out / "parameters.json").read_text())[
        "parameters"]["candidate_arcs"]
    assert "candidates.csv" in (out / "manifest.json").read_text()
    assert '"strategy": "tiled_column_generation"' in (out / "parameters.json").read_text()
    bad = runner.invoke(app, ["run", str(SHIPPED / "kalundborg"), "--out", str(out), "--tiles", "lots"])
    assert bad.exit_code == 1 and "--tiles must be auto, off or a number" in bad.output
    assert "Traceback" not in bad.output


# --- Dask: the tiles made, held and priced on distributed workers -----------------------------------------


def test_the_same_optimum_on_a_dask_local_cluster(generated):
    distributed = pytest.importorskip("distributed")
    tiles = tiling(prepare(generated), 5)
    serial = solve_tiled(tiles)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        with distributed.get_task_stream(client) as stream:
            spread = solve_tiled(tiles, client=client, keep=True)
        ran = {task["key"].split("-")[0] if isinstance(task["key"], str) else str(task["key"])
               for task in stream.data}
        # Nothing is left on the workers once the solve is over (the tiles, the region, the duals).
        import time

        deadline = time.monotonic() + 10
        while any(client.run(lambda dask_worker: len(dask_worker.data)).values()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(client.run(lambda dask_worker: len(dask_worker.data)).values()), \
            client.run(lambda dask_worker: list(dask_worker.data))
    assert spread.solution.parameters["scheduler"] == "dask"
    assert spread.solution.parameters["grown_rounds"] == serial.solution.parameters["grown_rounds"] >= 1
    # The tiles were made and priced, and the master's blocks solved, on the workers.
    assert {"build_tile", "_price_remote", "solve_block"} <= ran, ran
    assert spread.solution.objective == pytest.approx(serial.solution.objective, rel=1e-9)
    assert spread.solution.parameters["iterations"] == serial.solution.parameters["iterations"]
    pd.testing.assert_frame_equal(spread.candidates.arcs, serial.candidates.arcs)
    np.testing.assert_allclose(spread.solution.x, serial.solution.x, rtol=1e-7, atol=1e-6)
    # The workers' tiles are gone with the cluster: every arc is read by making each tile again, one at a time.
    from symbiosis.exchange.tiled import arc_ids_of
    from symbiosis.outputs.arcs import TiledArcs

    assert spread.tiles is not None and spread.tiles._store is None
    every = TiledArcs(spread.tiles, spread.candidates, arc_ids_of(spread.candidates), spread.solution.x,
                      spread.duals, spread.solution.parameters["candidate_arcs"])
    streamed = pd.concat(list(every.batches()), ignore_index=True)
    whole = candidates(generated).arcs
    assert len(streamed) == len(whole)
    assert set(arc_ids(streamed["s"], streamed["d"], len(spread.candidates.demands))) == set(
        arc_ids(whole["s"], whole["d"], len(spread.candidates.demands)))
    assert streamed["amount_per_yr"].sum() == pytest.approx(spread.solution.x.sum(), rel=1e-9)


# --- outputs that read every arc: candidates.csv / .parquet streamed from the tiles ---------------------------


def _rows_as_set(frame: pd.DataFrame) -> set[tuple]:
    return set(map(tuple, frame.round(6).astype(str).to_numpy()))


@pytest.mark.parametrize("name", ["kalundborg", "heat", "processor"])
def test_a_tiled_runs_outputs_are_the_untiled_runs(name, tmp_path):
    """Every table of a run forced into 3 tiles, candidates.csv (every arc, read back tile by tile from the
    spilled Parquet) included, holds the same rows as the whole-table run's."""
    from symbiosis.pipeline import optimise, write_outputs

    region = load_region((SHIPPED if name == "kalundborg" else TEST_REGIONS) / name)
    whole = optimise(region, arcs=True)
    tiled = optimise(region, tiles=3, arcs=True)
    assert tiled.parameters["strategy"] == "tiled_column_generation" and tiled.parameters["tiles"] == 3
    write_outputs(whole, region, tmp_path / "whole", pngs=False)
    write_outputs(tiled, region, tmp_path / "tiled", pngs=False)
    tables = sorted(p.name for p in (tmp_path / "whole").glob("*.csv"))
    assert tables == sorted(p.name for p in (tmp_path / "tiled").glob("*.csv"))
    assert "candidates.csv" in tables
    for table in tables:
        a, b = pd.read_csv(tmp_path / "whole" / table), pd.read_csv(tmp_path / "tiled" / table)
        assert list(a.columns) == list(b.columns) and len(a) == len(b), table
        assert _rows_as_set(a) == _rows_as_set(b), table
    arcs = pd.read_csv(tmp_path / "tiled" / "candidates.csv")
    assert len(arcs) == tiled.parameters["candidate_arcs"] > tiled.parameters["master_arcs"] - 1


def test_every_arc_streams_from_the_spilled_tiles(generated, tmp_path, monkeypatch):
    """On a region with processors and heat in 4 spilled tiles, candidates.csv and candidates.parquet are
    written a row group at a time from the tiles' Parquet: the whole table's arcs (the same rows), the optimum's
    flows on them, and reduced costs that prove the optimum (≥ 0 on every arc, 0 on every arc used)."""
    from symbiosis.exchange import tilefiles
    from symbiosis.pipeline import optimise, write_outputs

    monkeypatch.setattr(tilefiles, "ROW_GROUP", 300)  # many batches a tile
    read = []
    real_read_tile = tilefiles.read_tile
    monkeypatch.setattr(tilefiles, "read_tile", lambda where: read.append(where) or real_read_tile(where))
    tiled = optimise(generated, tiles=4, arcs=True)
    kept = tiled.arcs.tiles._store.folder
    assert kept is not None and kept.exists()
    read.clear()
    write_outputs(tiled, generated, tmp_path / "tiled", pngs=False, parquet=True)
    # Each tile read once for each file written (CSV and Parquet), in turn.
    assert [Path(p).name for p in read] == [f"tile-{k:05d}" for k in range(4)] * 2
    whole = candidates(generated)
    streamed = pd.read_csv(tmp_path / "tiled" / "candidates.csv", keep_default_na=False, na_values=[""])
    assert len(streamed) == len(whole.arcs) > 4 * 300
    own = [c for c in whole.arcs.columns if c not in ("s", "d")]
    expected = whole.arcs[own].astype({c: str for c in own[:4]})
    assert _rows_as_set(streamed[own]) == _rows_as_set(expected)
    parquet = pd.read_parquet(tmp_path / "tiled" / "candidates.parquet")
    assert len(parquet) == len(streamed)
    assert _rows_as_set(parquet) == _rows_as_set(streamed)
    # The flows are the optimum's, the reduced costs its proof over every arc: ≥ 0 on an arc below its
    # capacity, ≤ 0 on an arc that carries flow (so 0 on one between its bounds).
    assert streamed["amount_per_yr"].sum() == pytest.approx(tiled.exchanges["amount_t_per_yr"].fillna(0).sum()
                                                            + tiled.exchanges["amount_mwh_per_yr"].fillna(0).sum(),
                                                            rel=1e-6)
    rc = streamed["reduced_cost_per_unit"].to_numpy(float)
    amount = streamed["amount_per_yr"].to_numpy(float)
    capacity = streamed["capacity_t_per_yr"].to_numpy(float)
    tol = 1e-6 * max(1.0, float(np.abs(rc).max()))
    below_capacity = np.isnan(capacity) | (amount < capacity * (1 - 1e-9) - 1e-9)
    used = amount > 1e-6
    assert rc[below_capacity].min() >= -tol
    assert rc[used].max() <= tol
    assert (rc[~used] > tol).any() and used.any()
    tiled.arcs.close()
    assert not kept.exists()


def test_public_candidate_arcs_mask_confidential_facilities(tmp_path):
    from symbiosis.pipeline import optimise, write_outputs

    region = load_region(SHIPPED / "kalundborg")
    secret = region.facilities["facility_id"].iloc[0]
    region.facilities["confidential"] = region.facilities["facility_id"] == secret
    results = optimise(region, tiles=2, arcs=True)
    write_outputs(results, region, tmp_path / "public", pngs=False)
    text = (tmp_path / "public" / "candidates.csv").read_text()
    assert secret not in text and "confidential-" in text
    arcs = pd.read_csv(tmp_path / "public" / "candidates.csv")
    theirs = arcs["supply_facility"].str.startswith("confidential-") | arcs["demand_facility"].str.startswith(
        "confidential-")
    assert theirs.any() and arcs.loc[theirs, "amount_per_yr"].isna().all()
    write_outputs(results, region, tmp_path / "private", pngs=False, public=False)
    assert secret in (tmp_path / "private" / "candidates.csv").read_text()


def test_arcs_are_refused_where_they_are_not_written(generated):
    from symbiosis.errors import SymbiosisError
    from symbiosis.pipeline import optimise

    with pytest.raises(SymbiosisError, match="--arcs writes the candidate arcs of the annual LP"):
        optimise(generated, mode="mip", arcs=True)
