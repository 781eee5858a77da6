r"""Column generation over tiles of candidate arcs: the exact optimum without every arc in memory at once.

symbiosis.exchange.colgen prices every candidate arc of a region at once from the restricted master's
duals; at continental scale (tens of millions of arcs) the arc table itself is the memory. Here the arcs
live in **tiles** (symbiosis.tiles: the arcs out of a set of supplies, each arc in exactly one tile, with
the global id ``s * n_demands + d``), and only the master's arcs and one tile are in memory at a time:

1. every tile is generated once, its arrays built (``exchange_arrays`` of the tile's candidates: the whole
   supplies and demands, the tile's arcs) and kept aside -- spilled to a temporary folder (serial), or held
   by the Dask workers that made it (``client``);
2. each round, the master's raw row duals (per family of :data:`~symbiosis.exchange.colgen.ARC_ROW_FAMILIES`,
   with each row's key) are mapped onto each tile's rows by key -- zero on a tile row the master lacks,
   the same argument as colgen's -- and every arc of the tile is priced with
   :func:`~symbiosis.exchange.colgen.price_arcs`;
3. the entering arcs are chosen as colgen chooses them over the whole table: per supply the ``per_supply``
   most negative (a supply is wholly in one tile, so its tile's choice is the global one), per demand the
   ``per_demand`` most negative over all tiles (each tile sends its own best per demand; ties broken by
   global id, as colgen breaks them by position, which is the same order); the master is rebuilt from the
   kept arcs, sorted by global id;
4. when no arc of any tile prices out negative the master's optimum is the full LP's optimum: the proof
   covers every arc, tile by tile.

Beside colgen's starting arcs (the most negative at business-as-usual prices), the first master gets each
supply's *most attractive* arc (the least cost minus saving per tonne, whatever its sign): that is the arc
whose binding constraint "why not matched" reports for a supply left to its fate (symbiosis.results), so
the reasons read from the master are the reasons of the whole table.

The Solution's ``x`` is over the master's arcs (the candidates returned beside it), not over every arc;
the screening counts are summed over the tiles and the arcs a missing permit screened out are gathered,
so the results, exports, map and report are written from the master as from a whole table (docs/
architecture.md, "Tiled candidates").
"""

from __future__ import annotations

import dataclasses
import gc
import logging
import pickle
import shutil
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from symbiosis.candidates import Candidates
from symbiosis.exchange.blocks import remote_blocks
from symbiosis.exchange.colgen import ARC_ROW_FAMILIES, _select, price_arcs
from symbiosis.exchange.model import ExchangeArrays, exchange_arrays, resolve_weights
from symbiosis.exchange.solve import ExchangeModel, Solution, _carbon_price
from symbiosis.tiles import Tiling, arc_ids, merge_screening

logger = logging.getLogger(__name__)

#: The arc columns that are a supply's or demand's own, rebuilt from ``s`` and ``d`` (``_with_text``).
TEXT_COLUMNS = {"supply_id": ("supplies", "supply_id"), "demand_id": ("demands", "demand_id"),
                "supply_facility": ("supplies", "facility_id"), "demand_facility": ("demands", "facility_id")}

#: Per family: (key of each master row, raw row dual of each master row).
MasterDuals = dict[str, tuple[pd.Index, np.ndarray]]


@dataclass
class Tile:
    """One tile's arcs and everything pricing needs, made once and read back every round."""

    number: int
    ids: np.ndarray
    arcs: pd.DataFrame
    arrays: ExchangeArrays
    objective: np.ndarray


@dataclass
class TileSummary:
    """What the driver keeps of a tile: its size, objective scale and the whole-table pieces it contributes."""

    number: int
    n_arcs: int
    scale: float
    screening: pd.DataFrame
    permit_screened: pd.DataFrame | None
    #: The tile's candidates without arcs (the whole small tables): from tile 0 only, to build masters on.
    shell: Candidates | None = None


@dataclass
class TilePrice:
    """One tile priced: how many of its arcs price out negative outside the master, and its proposals."""

    n_negative: int
    #: The least reduced cost of the tile's arcs outside the master (inf without any): ≥ −threshold at the end.
    min_rc: float
    #: Arc rows proposed to the master (per supply, per demand and, in the first round, each supply's most
    #: attractive arc), with their global id (``arc_id``), reduced cost (``rc``) and whether each was chosen
    #: per supply or is the supply's best (``sure``) or only a candidate per demand (the driver merges those).
    rows: pd.DataFrame


def build_tile(tiling: Tiling, k: int, carbon_price: float | None, weights: Mapping[str, float] | None
               ) -> tuple[Tile, TileSummary]:
    """Generate tile ``k`` and its arrays (a pure function of the tiling: runs on a Dask worker as well)."""
    cands = tiling.candidates(k)
    arrays = exchange_arrays(cands)
    price = _carbon_price(cands, carbon_price)
    objective = arrays.objective_vector(price, dict(zip(("cost", "co2e"), resolve_weights(weights), strict=True)))
    ids = arc_ids(arrays.arc_s, arrays.arc_d, arrays.n_demands)
    shell = dataclasses.replace(cands, arcs=cands.arcs.iloc[:0].reset_index(drop=True)) if k == 0 else None
    summary = TileSummary(k, arrays.n_arcs, max(1.0, float(np.abs(objective).max(initial=0.0))), cands.screening,
                          cands.permit_screened, shell)
    # The id columns are the supplies' and demands' (by s and d): kept once in the master, not in every tile,
    # where millions of strings would make each read-back slow.
    return Tile(k, ids, cands.arcs.drop(columns=list(TEXT_COLUMNS)), arrays, objective), summary


def tile_duals(arrays: ExchangeArrays, master: MasterDuals) -> dict[str, np.ndarray]:
    """The master's raw row duals on a tile's rows, by key (0 on a row the master lacks: such a row is slack
    in the master, as colgen's module docstring shows, so its dual there is 0)."""
    out: dict[str, np.ndarray] = {}
    for family in ARC_ROW_FAMILIES:
        n = family.rows(arrays).n_rows
        keys, raw = master[family.name]
        dual = np.zeros(n)
        if n and len(raw):
            mine = family.keys(arrays)
            if isinstance(mine, pd.RangeIndex) and isinstance(keys, pd.RangeIndex) and len(mine) == len(keys):
                dual = np.asarray(raw, dtype=float).copy()
            else:
                position = keys.get_indexer(mine)
                found = position >= 0
                dual[found] = np.asarray(raw, dtype=float)[position[found]]
        out[family.name] = dual
    return out


def price_tile(tile: Tile, master: MasterDuals, master_ids: np.ndarray, threshold: float, per_supply: int,
               per_demand: int, first: bool) -> TilePrice:
    """Price every arc of ``tile`` with the master's duals and propose the entering arcs (see the module
    docstring); ``master_ids`` are the sorted global ids of the master's arcs. Runs on a Dask worker too."""
    arrays = tile.arrays
    rc = price_arcs(arrays, tile_duals(arrays, master), tile.objective)
    in_master = np.isin(tile.ids, master_ids, assume_unique=True) if len(master_ids) else np.zeros(len(rc), bool)
    entering = (rc < -threshold) & ~in_master
    by_supply = _select(rc, arrays.arc_s, per_supply, entering)
    by_demand = _select(rc, arrays.arc_d, per_demand, entering)
    sure = np.zeros(len(rc), dtype=bool)
    sure[by_supply] = True
    if first and len(rc):  # each supply's most attractive arc (the first of equals, in id order)
        order = np.lexsort((np.arange(len(rc)), rc, arrays.arc_s))
        starts = np.r_[True, arrays.arc_s[order][1:] != arrays.arc_s[order][:-1]]
        sure[order[starts]] = True
    proposed = np.zeros(len(rc), dtype=bool)
    proposed[by_demand] = True
    proposed |= sure
    picked = np.flatnonzero(proposed & ~in_master)
    rows = tile.arcs.iloc[picked].reset_index(drop=True)
    rows["arc_id"] = tile.ids[picked]
    rows["rc"] = rc[picked]
    rows["sure"] = sure[picked]
    rows["entering"] = entering[picked]
    n_negative = int(entering.sum())
    return TilePrice(n_negative, float(rc[~in_master].min(initial=np.inf)), rows)


def _chosen(prices: list[TilePrice], per_demand: int) -> pd.DataFrame:
    """The arcs that enter the master: every tile's sure arcs, and per demand the ``per_demand`` most negative
    entering arcs over all tiles (ties by global id)."""
    rows = pd.concat([p.rows for p in prices], ignore_index=True)
    if rows.empty:
        return rows
    candidate = np.flatnonzero(rows["entering"].to_numpy(bool))
    keep = rows["sure"].to_numpy(bool).copy()
    if len(candidate):
        ids, rc = rows["arc_id"].to_numpy(np.int64), rows["rc"].to_numpy(float)
        d = rows["d"].to_numpy(np.int64)[candidate]
        order = candidate[np.lexsort((ids[candidate], rc[candidate], d))]
        g = rows["d"].to_numpy(np.int64)[order]
        start = np.r_[0, np.flatnonzero(np.diff(g)) + 1]
        rank = np.arange(len(order)) - np.repeat(start, np.diff(np.r_[start, len(order)]))
        keep[order[rank < per_demand]] = True
    return rows[keep]


def _with_text(rows: pd.DataFrame, shell: Candidates, columns: pd.Index) -> pd.DataFrame:
    """Tile rows with their id columns put back from the supplies and demands tables, in ``columns``' order."""
    rows = rows.copy()
    for column, (table, source) in TEXT_COLUMNS.items():
        frame = shell.supplies if table == "supplies" else shell.demands
        rows[column] = frame[source].to_numpy()[rows["s" if table == "supplies" else "d"].to_numpy(np.int64)]
    return rows[list(columns)]


def master_duals(arrays: ExchangeArrays, solution: Solution) -> MasterDuals:
    """Each family's row keys and raw row duals in a solved master."""
    return {f.name: (f.keys(arrays), f.raw_dual(arrays, solution)) for f in ARC_ROW_FAMILIES}


def _bau_duals(shell: Candidates, objective: np.ndarray) -> MasterDuals:
    """Business-as-usual prices as master duals: a supply is worth its fate cost, a demand its virgin price."""
    n_s, n_d = len(shell.supplies), len(shell.demands)  # the shell has no arcs: its columns are w, y, ...
    out = {f.name: (pd.Index([]), np.zeros(0)) for f in ARC_ROW_FAMILIES}
    out["supply_balance"] = (pd.RangeIndex(n_s), np.asarray(objective[:n_s], dtype=float))
    out["demand_balance"] = (pd.RangeIndex(n_d), np.asarray(objective[n_s:n_s + n_d], dtype=float))
    return out


@dataclass
class TiledSolution:
    """The master's candidates (its arcs, sorted by global id; the whole region's screening and permit-
    screened arcs) and its Solution, which is the optimum over every arc of every tile."""

    candidates: Candidates
    solution: Solution


class _Store:
    """The tiles between rounds: pickled to a temporary folder (``spill``) or kept in memory."""

    def __init__(self, spill: bool) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="symbiosis-tiles-")) if spill else None
        self.kept: dict[int, Tile] = {}

    def put(self, tile: Tile) -> None:
        if self.folder is None:
            self.kept[tile.number] = tile
            return
        with open(self.folder / f"tile-{tile.number}.pickle", "wb") as f:
            pickle.dump(tile, f, protocol=pickle.HIGHEST_PROTOCOL)

    def get(self, k: int) -> Tile:
        if self.folder is None:
            return self.kept[k]
        with open(self.folder / f"tile-{k}.pickle", "rb") as f:
            tile: Tile = pickle.load(f)
        return tile

    def close(self) -> None:
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
        self.kept.clear()


def solve_tiled(
    tiling: Tiling,
    *,
    carbon_price: float | None = None,
    weights: Mapping[str, float] | None = None,
    method: str = "ipm",
    per_supply: int = 4,
    per_demand: int = 4,
    max_iterations: int = 50,
    tolerance: float = 1e-7,
    rc_tolerance: float = 1e-7,
    threads: int | None = None,
    master_method: str | None = "simplex",
    spill: bool | None = None,
    client: Any = None,
    warm: bool = True,
    blocks_remote: bool = True,
) -> TiledSolution:
    """Solve the exchange LP of a tiled region by column generation over its tiles (module docstring).

    ``spill``: keep the tiles between rounds in a temporary folder (None: when there is more than one tile);
    ``warm``: start each master after the first from the last one's basis, as colgen does.
    ``client``: a dask.distributed Client whose workers make, hold and price the tiles (the master's duals
    are scattered to them once per round), and with ``blocks_remote`` the master LP's independent blocks
    are solved on them as well (symbiosis.exchange.blocks.remote_blocks); None: serially, one tile in memory
    at a time. Either way the same
    arcs enter in the same rounds, so the optimum is the same. Raises RuntimeError after ``max_iterations``
    rounds with arcs still pricing out negative (never a silently partial answer).
    """
    started = time.perf_counter()
    timings = {"tiles": 0.0, "pricing": 0.0, "master": 0.0}
    n_tiles = tiling.n_tiles
    t0 = time.perf_counter()
    store = _Store(n_tiles > 1 if spill is None else spill) if client is None else None
    futures: list[Any] = []
    try:  # the spilled tiles are removed and the workers' released however the solve ends
        if store is not None:
            summaries = []
            for k in range(n_tiles):
                tile, summary = build_tile(tiling, k, carbon_price, weights)
                store.put(tile)
                summaries.append(summary)
                del tile
        else:
            shared = client.scatter(tiling, broadcast=True)
            built = [client.submit(build_tile, shared, k, carbon_price, weights, pure=False)
                     for k in range(n_tiles)]
            futures = [client.submit(_first, b, pure=False) for b in built]
            summaries = client.gather([client.submit(_second, b, pure=False) for b in built])
            del built
        timings["tiles"] = time.perf_counter() - t0
        # With a client, the master's independent blocks are solved on its workers too.
        remote = remote_blocks(client.get_executor() if client is not None and blocks_remote else None)
        with remote:
            return _rounds(tiling, summaries, store, futures, client, carbon_price=carbon_price, weights=weights,
                           method=method, per_supply=per_supply, per_demand=per_demand,
                           max_iterations=max_iterations, tolerance=tolerance, rc_tolerance=rc_tolerance,
                           threads=threads, master_method=master_method, timings=timings, started=started,
                           warm=warm)
    finally:
        if store is not None:
            store.close()
        if futures:
            client.cancel(futures)


def _first(pair: tuple[Tile, TileSummary]) -> Tile:
    return pair[0]


def _second(pair: tuple[Tile, TileSummary]) -> TileSummary:
    return pair[1]


def _rounds(tiling: Tiling, summaries: list[TileSummary], store: _Store | None, futures: list[Any], client: Any,
            *, carbon_price: float | None, weights: Mapping[str, float] | None, method: str, per_supply: int,
            per_demand: int, max_iterations: int, tolerance: float, rc_tolerance: float, threads: int | None,
            master_method: str | None, timings: dict[str, float], started: float, warm: bool
            ) -> TiledSolution:
    from symbiosis.exchange import warm as warm_start

    shell = summaries[0].shell
    assert shell is not None
    shell = dataclasses.replace(
        shell, screening=merge_screening([s.screening for s in summaries]),
        permit_screened=_concat([s.permit_screened for s in summaries]))
    price = _carbon_price(shell, carbon_price)
    objective = exchange_arrays(shell).objective_vector(
        price, dict(zip(("cost", "co2e"), resolve_weights(weights), strict=True)))
    threshold = rc_tolerance * max(s.scale for s in summaries)
    n_candidate = sum(s.n_arcs for s in summaries)
    largest = max(s.n_arcs for s in summaries)

    def price_all(duals: MasterDuals, master_ids: np.ndarray, first: bool) -> list[TilePrice]:
        t0 = time.perf_counter()
        if client is None:
            assert store is not None
            out = [price_tile(store.get(k), duals, master_ids, threshold, per_supply, per_demand, first)
                   for k in range(tiling.n_tiles)]
        else:
            shared = client.scatter([(duals, master_ids)], broadcast=True)[0]
            out = client.gather([client.submit(_price_remote, f, shared, threshold, per_supply, per_demand, first,
                                               pure=False) for f in futures])
        timings["pricing"] += time.perf_counter() - t0
        return out

    master = shell.arcs.assign(arc_id=np.zeros(0, dtype=np.int64))
    prices = price_all(_bau_duals(shell, objective), np.zeros(0, np.int64), True)
    iteration = warm_rounds = 0
    basis: warm_start.KeyedBasis | None = None
    # Column keys of the warm start: an arc's global id, then this many + the other columns' positions.
    universe = len(shell.supplies) * max(len(shell.demands), 1)
    while True:
        iteration += 1
        chosen = _chosen(prices, per_demand)
        if len(chosen):
            new = _with_text(chosen, shell, master.columns)
            master = pd.concat([master, new], ignore_index=True) if len(master) else new
        master = master.sort_values("arc_id", kind="stable").reset_index(drop=True)
        master_ids = master["arc_id"].to_numpy(np.int64)
        restricted = dataclasses.replace(shell, arcs=master.drop(columns="arc_id"))
        t0 = time.perf_counter()
        model = ExchangeModel(restricted, carbon_price=price, weights=weights, method=master_method or method,
                              tolerance=tolerance, threads=threads)
        started_warm = False
        if basis is not None:  # the last master's basis, keyed by global arc id (symbiosis.exchange.warm)
            model.hand_over()
            started_warm = warm_start.start_from(model, basis, master_ids, universe)
        solution = model.solve(method="simplex" if started_warm else None)
        warm_rounds += started_warm
        if warm:
            basis = warm_start.basis_of(model, master_ids, universe)
        timings["master"] += time.perf_counter() - t0
        duals = master_duals(model.arrays, solution)
        # A Pyomo model is a web of reference cycles: without a collection the last master would still be in
        # memory while the next one is built.
        del model, restricted
        gc.collect()
        prices = price_all(duals, master_ids, False)
        n_negative = sum(p.n_negative for p in prices)
        logger.info("tiled column generation round %d: %d arcs in the master, objective %.10g, %d of %d arcs in "
                    "%d tiles price out negative", iteration, len(master), solution.objective, n_negative,
                    n_candidate, tiling.n_tiles)
        if n_negative == 0:
            break
        if iteration >= max_iterations:
            raise RuntimeError(f"tiled column generation did not converge in {max_iterations} rounds "
                               f"({n_negative} arcs still price out negative)")
    restricted = dataclasses.replace(shell, arcs=master.drop(columns="arc_id"))
    solution.timings = {**solution.timings, **timings, "total": time.perf_counter() - started}
    solution.parameters = {**solution.parameters, "method": master_method or method,
                           "strategy": "tiled_column_generation", "iterations": iteration,
                           "warm_rounds": warm_rounds,
                           "master_arcs": int(len(master)), "candidate_arcs": int(n_candidate),
                           "tiles": int(tiling.n_tiles), "largest_tile_arcs": int(largest),
                           "min_reduced_cost_outside_master": float(min((p.min_rc for p in prices), default=np.inf)),
                           "scheduler": "dask" if client is not None else "serial"}
    return TiledSolution(restricted, solution)


def _price_remote(tile: Tile, shared: tuple[MasterDuals, np.ndarray], threshold: float, per_supply: int,
                  per_demand: int, first: bool) -> TilePrice:
    duals, master_ids = shared
    return price_tile(tile, duals, master_ids, threshold, per_supply, per_demand, first)


def _concat(parts: list[pd.DataFrame | None]) -> pd.DataFrame | None:
    found = [p for p in parts if p is not None and len(p)]
    return pd.concat(found, ignore_index=True) if found else None


__all__ = ["Tile", "TilePrice", "TileSummary", "TiledSolution", "build_tile", "master_duals", "price_tile",
           "solve_tiled", "tile_duals"]
