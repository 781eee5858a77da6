r"""Column generation over tiles of candidate arcs: the exact optimum without every arc in memory at once.

symbiosis.exchange.colgen prices every candidate arc of a region at once from the restricted master's
duals; at continental scale (tens of millions of arcs) the arc table itself is the memory. Here the arcs
live in **tiles** (symbiosis.tiles: the arcs out of a set of supplies, each arc in exactly one tile, with
the global id ``s * n_demands + d``), and only the master's arcs and one tile are in memory at a time:

1. every tile is generated once, its arrays built (``exchange_arrays`` of the tile's candidates: the whole
   supplies and demands, the tile's arcs) and what pricing needs of them kept aside (:class:`Tile`) --
   written as Parquet to a temporary folder (serial; symbiosis.exchange.tilefiles), or held by the Dask
   workers that made it (``client``);
2. each round, the master's raw row duals (per family of :data:`~symbiosis.exchange.colgen.ARC_ROW_FAMILIES`,
   with each row's key) are mapped onto each tile's rows by key -- zero on a tile row the master lacks,
   the same argument as colgen's -- and every arc of the tile is priced by colgen's formula
   (:func:`tile_reduced_costs`);
3. the entering arcs are chosen as colgen chooses them over the whole table: per supply the ``per_supply``
   most negative (a supply is wholly in one tile, so its tile's choice is the global one), per demand the
   ``per_demand`` most negative over all tiles (each tile sends its own best per demand; ties broken by
   global id, as colgen breaks them by position, which is the same order); their columns are added to the
   first master's HiGHS instances (``grow``, symbiosis.exchange.grow.add_keyed_columns: each tile sends the
   proposed arcs' objective coefficients, bounds and terms on the master's rows, and the first master holds
   an arc in every row any tile's arcs enter), or the master is rebuilt from the kept arcs, sorted by global
   id, warm from the last basis;
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
import shutil
import tempfile
import time
import weakref
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from symbiosis.candidates import Candidates
from symbiosis.exchange import tilefiles
from symbiosis.exchange.blocks import remote_blocks
from symbiosis.exchange.colgen import ARC_ROW_FAMILIES, _select, _transpose_dot
from symbiosis.exchange.model import ExchangeArrays, RowBlock, exchange_arrays, resolve_weights
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
    """One tile's arcs and what pricing needs, made once and read back every round: the arcs' global ids,
    supplies and demands, objective coefficients and column upper bounds (capacity; inf without), each arc row
    family's rows over the tile's arcs (``blocks``) and each row's key (``keys``); and the arc rows themselves
    (``arcs``, without the id columns) when the tile is in memory, or the folder they are in (``path``,
    symbiosis.exchange.tilefiles) when it was read back from disk for pricing."""

    number: int
    ids: np.ndarray
    arc_s: np.ndarray
    arc_d: np.ndarray
    objective: np.ndarray
    upper: np.ndarray
    blocks: dict[str, RowBlock]
    keys: dict[str, pd.Index]
    arcs: pd.DataFrame | None = None
    path: Path | None = None

    @property
    def n_arcs(self) -> int:
        return len(self.ids)

    def rows(self, picked: np.ndarray) -> pd.DataFrame:
        """The arc rows (without the id columns) at positions ``picked``, in that order."""
        if self.arcs is not None:
            return self.arcs.iloc[picked].reset_index(drop=True)
        assert self.path is not None
        return tilefiles.read_rows(self.path, picked)

    def batches(self) -> Iterator[pd.DataFrame]:
        """Every arc row (without the id columns), in order, :data:`~symbiosis.exchange.tilefiles.ROW_GROUP`
        rows at a time (read from disk one row group at a time when the tile is there)."""
        if self.arcs is not None:
            for start in range(0, len(self.arcs), tilefiles.ROW_GROUP):
                yield self.arcs.iloc[start:start + tilefiles.ROW_GROUP].reset_index(drop=True)
            return
        assert self.path is not None
        yield from tilefiles.iter_rows(self.path)


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
    #: per supply or is the supply's best (``sure``) or only a candidate per demand (the driver merges those),
    #: and their objective coefficient and upper bound (``tile_objective``, ``tile_upper``).
    rows: pd.DataFrame
    #: With ``terms``: per arc row family, the proposed arcs' terms as (row of ``rows``, row among the master's
    #: rows of that family (-1: the master lacks it), coefficient), for adding their columns to a grown master.
    terms: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = dataclasses.field(default_factory=dict)
    #: With ``cover``: per row of every family other than the balances, the tile's arc of least reduced cost in
    #: it (``family``, ``key``, ``at``: its row of ``rows``), so that a first master holds every row.
    cover: pd.DataFrame | None = None


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
    # where millions of strings would make each read-back slow. Of the arrays only what pricing needs is kept.
    n_a = arrays.n_arcs
    tile = Tile(k, ids, arrays.arc_s, arrays.arc_d, objective[:n_a].copy(),
                np.nan_to_num(arrays.capacity, nan=np.inf), {f.name: f.rows(arrays) for f in ARC_ROW_FAMILIES},
                {f.name: f.keys(arrays) for f in ARC_ROW_FAMILIES}, arcs=cands.arcs.drop(columns=list(TEXT_COLUMNS)))
    return tile, summary


def tile_duals(tile: Tile, master: MasterDuals) -> dict[str, np.ndarray]:
    """The master's raw row duals on a tile's rows, by key (0 on a row the master lacks: such a row is slack
    in the master, as colgen's module docstring shows, so its dual there is 0)."""
    return {name: dual for name, (dual, _position) in _on_tile_rows(tile, master).items()}


def _on_tile_rows(tile: Tile, master: MasterDuals) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per family: the master's raw dual on each of the tile's rows, and the position of that row among the
    master's rows (-1 where the master lacks it)."""
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for family in ARC_ROW_FAMILIES:
        n = tile.blocks[family.name].n_rows
        keys, raw = master[family.name]
        dual = np.zeros(n)
        position = np.full(n, -1, dtype=np.int64)
        if n and len(keys):
            mine = tile.keys[family.name]
            if isinstance(mine, pd.RangeIndex) and isinstance(keys, pd.RangeIndex) and len(mine) == len(keys):
                position = np.arange(n, dtype=np.int64)
            else:
                position = keys.get_indexer(mine).astype(np.int64)
            found = position >= 0
            if len(raw):
                dual[found] = np.asarray(raw, dtype=float)[position[found]]
        out[family.name] = (dual, position)
    return out


def tile_reduced_costs(tile: Tile, duals: Mapping[str, np.ndarray]) -> np.ndarray:
    """Every arc of ``tile``'s reduced cost, c_a − Σ_F Σ_k A^F_{k,a} π^F_k, from raw row duals on its rows
    (symbiosis.exchange.colgen.price_arcs over the tile's own rows)."""
    rc = np.array(tile.objective, dtype=float)
    for family in ARC_ROW_FAMILIES:
        rc -= _transpose_dot(tile.blocks[family.name], duals[family.name], tile.n_arcs)
    return rc


def price_tile(tile: Tile, master: MasterDuals, master_ids: np.ndarray, threshold: float, per_supply: int,
               per_demand: int, first: bool, *, terms: bool = False, cover: bool = False) -> TilePrice:
    """Price every arc of ``tile`` with the master's duals and propose the entering arcs (see the module
    docstring); ``master_ids`` are the sorted global ids of the master's arcs. With ``terms`` the proposals
    come with their columns' terms on the master's rows, with ``cover`` with the best arc of each of the tile's
    rows (:class:`TilePrice`). Runs on a Dask worker too."""
    from symbiosis.exchange.grow import ALWAYS_PRESENT

    mapped = _on_tile_rows(tile, master)
    rc = tile_reduced_costs(tile, {name: dual for name, (dual, _position) in mapped.items()})
    in_master = np.isin(tile.ids, master_ids, assume_unique=True) if len(master_ids) else np.zeros(len(rc), bool)
    entering = (rc < -threshold) & ~in_master
    by_supply = _select(rc, tile.arc_s, per_supply, entering)
    by_demand = _select(rc, tile.arc_d, per_demand, entering)
    sure = np.zeros(len(rc), dtype=bool)
    sure[by_supply] = True
    if first and len(rc):  # each supply's most attractive arc (the first of equals, in id order)
        order = np.lexsort((np.arange(len(rc)), rc, tile.arc_s))
        starts = np.r_[True, tile.arc_s[order][1:] != tile.arc_s[order][:-1]]
        sure[order[starts]] = True
    proposed = np.zeros(len(rc), dtype=bool)
    proposed[by_demand] = True
    proposed |= sure
    covering: list[tuple[str, np.ndarray, np.ndarray]] = []
    if cover:  # per row, the arc of least reduced cost (the first of equals, in id order)
        found: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
        for family in ARC_ROW_FAMILIES:
            block = tile.blocks[family.name]
            if family.name in ALWAYS_PRESENT or block.n_rows == 0 or len(block.cols) == 0:
                continue
            pattern = (id(block.ptr), id(block.cols))  # families over the same rows and arcs: the same arcs
            if pattern not in found:
                found[pattern] = _best_of_rows(block, rc)
            covering.append((family.name, *found[pattern]))
            proposed[found[pattern][1]] = True
    picked = np.flatnonzero(proposed & ~in_master)
    rows = tile.rows(picked)
    rows["arc_id"] = tile.ids[picked]
    rows["rc"] = rc[picked]
    rows["sure"] = sure[picked]
    rows["entering"] = entering[picked]
    rows["tile_objective"] = tile.objective[picked]
    rows["tile_upper"] = tile.upper[picked]
    out = TilePrice(int(entering.sum()), float(rc[~in_master].min(initial=np.inf)), rows)
    if terms:
        at = np.full(tile.n_arcs, -1, dtype=np.int64)
        at[picked] = np.arange(len(picked))
        hits: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
        for family in ARC_ROW_FAMILIES:
            block = tile.blocks[family.name]
            pattern = (id(block.ptr), id(block.cols))
            if pattern not in hits:
                hit = np.flatnonzero(at[block.cols] >= 0) if len(block.cols) else np.zeros(0, np.int64)
                hits[pattern] = (hit, np.searchsorted(block.ptr, hit, side="right") - 1)
            hit, row = hits[pattern]
            out.terms[family.name] = (at[block.cols[hit]], mapped[family.name][1][row], block.coefs[hit])
    if covering:
        at = np.searchsorted(picked, np.concatenate([arcs for _name, _rows, arcs in covering]))
        keys = [key for name, found, _arcs in covering for key in tile.keys[name][found].tolist()]
        out.cover = pd.DataFrame({"family": np.repeat([name for name, _r, _a in covering],
                                                      [len(found) for _n, found, _a in covering]),
                                  "key": pd.Series(keys, dtype=object), "at": at})
    return out


def _best_of_rows(block: RowBlock, rc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row of ``block`` that holds an arc, and its arc of least ``rc`` (of equals, the first in position
    order): (rows, arcs), in linear time."""
    counts = np.diff(block.ptr)
    rows = np.flatnonzero(counts)
    starts = block.ptr[:-1][rows]
    values = rc[block.cols]
    least = np.minimum.reduceat(values, starts)
    term_row = np.repeat(np.arange(len(rows)), counts[rows])
    cols = np.where(values == least[term_row], block.cols, np.iinfo(np.int64).max)
    return rows, np.minimum.reduceat(cols, starts)


def _chosen(prices: list[TilePrice], per_demand: int
            ) -> tuple[pd.DataFrame, dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    """The arcs that enter the master: every tile's sure arcs, per demand the ``per_demand`` most negative
    entering arcs over all tiles (ties by global id) and, where the tiles sent their rows' best arcs, the best of
    each row over all tiles (ties by global id); with their terms (:class:`TilePrice`), renumbered on the
    rows returned."""
    rows = pd.concat([p.rows for p in prices], ignore_index=True)
    offsets = np.r_[0, np.cumsum([len(p.rows) for p in prices])]
    if rows.empty:
        return rows, {}
    candidate = np.flatnonzero(rows["entering"].to_numpy(bool))
    keep = rows["sure"].to_numpy(bool).copy()
    ids, rc = rows["arc_id"].to_numpy(np.int64), rows["rc"].to_numpy(float)
    if len(candidate):
        d = rows["d"].to_numpy(np.int64)[candidate]
        order = candidate[np.lexsort((ids[candidate], rc[candidate], d))]
        g = rows["d"].to_numpy(np.int64)[order]
        start = np.r_[0, np.flatnonzero(np.diff(g)) + 1]
        rank = np.arange(len(order)) - np.repeat(start, np.diff(np.r_[start, len(order)]))
        keep[order[rank < per_demand]] = True
    covers = [p.cover.assign(at=p.cover["at"].to_numpy() + offsets[k]) for k, p in enumerate(prices)
              if p.cover is not None and len(p.cover)]
    if covers:
        cover = pd.concat(covers, ignore_index=True)
        at = cover["at"].to_numpy(np.int64)
        cover = cover.assign(rc=rc[at], arc_id=ids[at]).sort_values(["rc", "arc_id"], kind="stable")
        keep[cover.drop_duplicates(["family", "key"])["at"].to_numpy(np.int64)] = True
    renumber = np.cumsum(keep) - 1
    terms: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    for name in (prices[0].terms if prices else {}):
        parts = [(p.terms[name][0] + offsets[k], p.terms[name][1], p.terms[name][2]) for k, p in enumerate(prices)]
        col, row, coef = (np.concatenate([part[i] for part in parts]) for i in range(3))
        mine = keep[col] if len(col) else np.zeros(0, bool)
        terms[name] = (renumber[col[mine]], row[mine], coef[mine])
    return rows[keep].reset_index(drop=True), terms


def _with_text(rows: pd.DataFrame, shell: Candidates, columns: pd.Index) -> pd.DataFrame:
    """Tile rows with their id columns put back from the supplies and demands tables, in ``columns``' order."""
    rows = rows.copy()
    for column, (table, source) in TEXT_COLUMNS.items():
        frame = shell.supplies if table == "supplies" else shell.demands
        rows[column] = frame[source].to_numpy()[rows["s" if table == "supplies" else "d"].to_numpy(np.int64)]
    return rows[list(columns)]


def arc_ids_of(candidates: Candidates) -> np.ndarray:
    """The global ids of ``candidates``' arcs (symbiosis.tiles.arc_ids)."""
    return arc_ids(candidates.arcs["s"].to_numpy(np.int64), candidates.arcs["d"].to_numpy(np.int64),
                   len(candidates.demands))


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


class KeptTiles:
    """A finished tiled solve's tiles, kept for the outputs that read every arc (symbiosis.outputs.arcs): the
    spilled Parquet folder (removed by :meth:`close`, when this object is collected, or at the latest when the
    process ends) or the tiles in memory; tiles that were held by Dask workers (released after the solve) are
    made again from the tiling, one at a time, when read."""

    def __init__(self, tiling: Tiling, store: _Store | None, carbon_price: float | None,
                 weights: Mapping[str, float] | None) -> None:
        self.tiling = tiling
        self.n_tiles = tiling.n_tiles
        self._store = store
        self._options = (carbon_price, weights)
        self._finalizer = weakref.finalize(self, store.close) if store is not None else None

    def tile(self, k: int) -> Tile:
        if self._store is not None:
            return self._store.get(k)
        return build_tile(self.tiling, k, *self._options)[0]

    def close(self) -> None:
        if self._finalizer is not None:
            self._finalizer()


@dataclass
class TiledSolution:
    """The master's candidates (its arcs, sorted by global id; the whole region's screening and permit-
    screened arcs) and its Solution, which is the optimum over every arc of every tile; the last master's
    raw row duals (``duals``, which price every arc of every tile) and, when asked, its tiles (``tiles``)."""

    candidates: Candidates
    solution: Solution
    duals: MasterDuals | None = None
    tiles: KeptTiles | None = None


class _Store:
    """The tiles between rounds: written as Parquet to a temporary folder (``spill``,
    symbiosis.exchange.tilefiles) and read back for pricing, or kept in memory."""

    def __init__(self, spill: bool) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="symbiosis-tiles-")) if spill else None
        self.kept: dict[int, Tile] = {}

    def put(self, tile: Tile) -> None:
        if self.folder is None:
            self.kept[tile.number] = tile
            return
        tilefiles.write_tile(self.folder, tile)

    def get(self, k: int) -> Tile:
        if self.folder is None:
            return self.kept[k]
        return tilefiles.read_tile(tilefiles.tile_folder(self.folder, k))

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
    grow: bool = True,
    keep: bool = False,
) -> TiledSolution:
    """Solve the exchange LP of a tiled region by column generation over its tiles (module docstring).

    ``spill``: keep the tiles between rounds in a temporary folder (None: when there is more than one tile);
    ``warm``: start each master after the first from the last one's basis, as colgen does.
    ``client``: a dask.distributed Client whose workers make, hold and price the tiles (the master's duals
    are scattered to them once per round), and with ``blocks_remote`` the master LP's independent blocks
    are solved on them as well (symbiosis.exchange.blocks.remote_blocks); None: serially, one tile in memory
    at a time. Either way the same
    arcs enter in the same rounds, so the optimum is the same. Raises RuntimeError after ``max_iterations``
    rounds with arcs still pricing out negative (never a silently partial answer). ``grow``: after the first
    round, add the entering arcs' columns to the first master's HiGHS instances instead of building a new
    master (symbiosis.exchange.grow; the same optimum); ``keep``: hand the tiles over with the result
    (:class:`KeptTiles`) instead of removing them, for the outputs that read every arc.
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
            solved = _rounds(tiling, summaries, store, futures, client, carbon_price=carbon_price, weights=weights,
                             method=method, per_supply=per_supply, per_demand=per_demand,
                             max_iterations=max_iterations, tolerance=tolerance, rc_tolerance=rc_tolerance,
                             threads=threads, master_method=master_method, timings=timings, started=started,
                             warm=warm, grow=grow)
        if keep:
            solved.tiles = KeptTiles(tiling, store, carbon_price, weights)
            store = None  # now the kept tiles' to remove
        return solved
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
            master_method: str | None, timings: dict[str, float], started: float, warm: bool, grow: bool
            ) -> TiledSolution:
    from symbiosis.exchange import warm as warm_start
    from symbiosis.exchange.grow import GrownMaster, add_keyed_columns

    shell = summaries[0].shell
    assert shell is not None
    shell = dataclasses.replace(
        shell, screening=merge_screening([s.screening for s in summaries]),
        permit_screened=_concat([s.permit_screened for s in summaries]))
    price = _carbon_price(shell, carbon_price)
    weight_map = dict(zip(("cost", "co2e"), resolve_weights(weights), strict=True))
    objective = exchange_arrays(shell).objective_vector(price, weight_map)
    threshold = rc_tolerance * max(s.scale for s in summaries)
    n_candidate = sum(s.n_arcs for s in summaries)
    largest = max(s.n_arcs for s in summaries)
    grow = grow and warm

    def price_all(duals: MasterDuals, master_ids: np.ndarray, first: bool) -> list[TilePrice]:
        t0 = time.perf_counter()
        # A grown master takes the proposed arcs' columns from the tiles (terms); its first model needs every
        # row the arcs enter (cover), as column generation's does (symbiosis.exchange.grow).
        options = {"terms": grown is not None, "cover": first and grow}
        if client is None:
            assert store is not None
            out = [price_tile(store.get(k), duals, master_ids, threshold, per_supply, per_demand, first, **options)
                   for k in range(tiling.n_tiles)]
        else:
            shared = client.scatter([(duals, master_ids)], broadcast=True)[0]
            out = client.gather([client.submit(_price_remote, f, shared, threshold, per_supply, per_demand, first,
                                               options, pure=False) for f in futures])
        timings["pricing"] += time.perf_counter() - t0
        return out

    # The master's arcs: sorted by global id while it is rebuilt every round; once it grows, in the order of
    # its model's columns (the first model's, sorted, then each round's entering arcs).
    master = shell.arcs.assign(arc_id=np.zeros(0, dtype=np.int64))
    grown: GrownMaster | None = None
    result = None
    family_keys: dict[str, pd.Index] = {}
    prices = price_all(_bau_duals(shell, objective), np.zeros(0, np.int64), True)
    iteration = warm_rounds = grown_rounds = 0
    basis: warm_start.KeyedBasis | None = None
    # Column keys of the warm start: an arc's global id, then this many + the other columns' positions.
    universe = len(shell.supplies) * max(len(shell.demands), 1)
    while True:
        iteration += 1
        chosen, terms = _chosen(prices, per_demand)
        t0 = time.perf_counter()
        if grown is not None and not add_keyed_columns(grown, chosen["tile_objective"].to_numpy(float),
                                                       chosen["tile_upper"].to_numpy(float), terms):
            logger.info("tiled column generation rebuilds its master: an entering arc enters a row it lacks")
            grown, grow = None, False
        if len(chosen):
            new = _with_text(chosen, shell, master.columns)
            master = pd.concat([master, new], ignore_index=True) if len(master) else new
        if grown is not None:  # the entering arcs' columns were added to the model's HiGHS instances
            master_ids = np.sort(master["arc_id"].to_numpy(np.int64))
            result = grown.solve()
            grown_rounds += 1
            duals = {name: (family_keys[name], raw) for name, raw in grown.raw_duals(result).items()}
            objective_value = result.objective
        else:
            master = master.sort_values("arc_id", kind="stable").reset_index(drop=True)
            master_ids = master["arc_id"].to_numpy(np.int64)
            restricted = dataclasses.replace(shell, arcs=master.drop(columns="arc_id"))
            model = ExchangeModel(restricted, carbon_price=price, weights=weights, method=master_method or method,
                                  tolerance=tolerance, threads=threads)
            started_warm = False
            if basis is not None:  # the last master's basis, keyed by global arc id (symbiosis.exchange.warm)
                model.hand_over()
                started_warm = warm_start.start_from(model, basis, master_ids, universe)
            solution = model.solve(method="simplex" if started_warm else None)
            warm_rounds += started_warm
            objective_value = solution.objective
            duals = master_duals(model.arrays, solution)
            if grow:  # later rounds add their arcs' columns to this model (symbiosis.exchange.grow)
                try:
                    grown = GrownMaster(model, np.arange(len(master)), model.arrays,
                                        model.arrays.objective_vector(price, weight_map))
                    family_keys = {name: keys for name, (keys, _raw) in duals.items()}
                except ValueError as exc:
                    logger.info("tiled column generation rebuilds its master every round: %s", exc)
                    grow = False
            if grown is None:
                if warm:
                    basis = warm_start.basis_of(model, master_ids, universe)
                # A Pyomo model is a web of reference cycles: without a collection the last master would still
                # be in memory while the next one is built.
                del model, restricted
                gc.collect()
        timings["master"] += time.perf_counter() - t0
        prices = price_all(duals, master_ids, False)
        n_negative = sum(p.n_negative for p in prices)
        logger.info("tiled column generation round %d: %d arcs in the master, objective %.10g, %d of %d arcs in "
                    "%d tiles price out negative", iteration, len(master), objective_value, n_negative,
                    n_candidate, tiling.n_tiles)
        if n_negative == 0:
            break
        if iteration >= max_iterations:
            raise RuntimeError(f"tiled column generation did not converge in {max_iterations} rounds "
                               f"({n_negative} arcs still price out negative)")
    if grown is not None and result is not None:
        # The grown model's solution over its arcs (in its columns' order), then put in global id order.
        t0 = time.perf_counter()
        grown.full = exchange_arrays(dataclasses.replace(shell, arcs=master.drop(columns="arc_id")))
        solution = grown.solution(result)
        order = np.argsort(master["arc_id"].to_numpy(np.int64), kind="stable")
        master = master.iloc[order].reset_index(drop=True)
        solution.x = solution.x[order]
        timings["master"] += time.perf_counter() - t0
        timings["grow"] = grown.timings["grow"]
    restricted = dataclasses.replace(shell, arcs=master.drop(columns="arc_id"))
    solution.timings = {**solution.timings, **timings, "total": time.perf_counter() - started}
    solution.parameters = {**solution.parameters, "method": master_method or method,
                           "strategy": "tiled_column_generation", "iterations": iteration,
                           "warm_rounds": warm_rounds + grown_rounds, "grown_rounds": grown_rounds,
                           "master_arcs": int(len(master)), "candidate_arcs": int(n_candidate),
                           "tiles": int(tiling.n_tiles), "largest_tile_arcs": int(largest),
                           "min_reduced_cost_outside_master": float(min((p.min_rc for p in prices), default=np.inf)),
                           "scheduler": "dask" if client is not None else "serial"}
    return TiledSolution(restricted, solution, duals)


def _price_remote(tile: Tile, shared: tuple[MasterDuals, np.ndarray], threshold: float, per_supply: int,
                  per_demand: int, first: bool, options: dict[str, bool]) -> TilePrice:
    duals, master_ids = shared
    return price_tile(tile, duals, master_ids, threshold, per_supply, per_demand, first, **options)


def _concat(parts: list[pd.DataFrame | None]) -> pd.DataFrame | None:
    found = [p for p in parts if p is not None and len(p)]
    return pd.concat(found, ignore_index=True) if found else None


__all__ = ["KeptTiles", "Tile", "TilePrice", "TileSummary", "TiledSolution", "arc_ids_of", "build_tile",
           "master_duals", "price_tile", "solve_tiled", "tile_duals", "tile_reduced_costs"]
