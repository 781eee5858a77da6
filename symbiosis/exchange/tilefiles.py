"""Tiles of candidate arcs on disk, as Parquet: written once, read back column by column.

A tiled solve (symbiosis.exchange.tiled) prices every tile every round but keeps only one in memory; the
others wait on disk in a folder of their own, one sub-folder per tile (``tile-00007/``):

- ``arcs.parquet``: one row per arc of the tile, in the tile's order (by supply, then demand): the columns of
  the candidate ``arcs`` table (without the supply's and demand's id columns, which the supplies and demands
  tables give by ``s`` and ``d``), then ``tile_arc_id`` (the global id, ``s * n_demands + d``),
  ``tile_objective`` (the arc's objective coefficient) and ``tile_upper`` (its column's upper bound: its
  capacity, infinite without). Written in row groups of :data:`ROW_GROUP` arcs, so that the few arcs a round
  proposes are read from the row groups that hold them only.
- ``terms-<family>.parquet``: the rows of the arc row families (symbiosis.exchange.colgen.ARC_ROW_FAMILIES)
  over the tile's arcs, one term a row (``row``, ``col``, then one ``coef_<family>`` column per family):
  families whose rows hold the same arcs (the demand balance, share and intake rows all hold the arcs into
  each demand) share one file, each with its own column of coefficients, or share that too when their
  coefficients are the same (the demand balance's and the share row's ratio).
- ``keys-<family>.parquet``: each row's key, for a family whose keys are not simply 0, 1, 2 ... (quality rows
  by demand, parameter and bound; facility intake rows by facility; permit rows by facility and EWC code).

How the files hold the families is written in ``arcs.parquet``'s schema metadata (``symbiosis.tile``). Pricing
reads ``tile_arc_id``, ``s``, ``d``, ``tile_objective``, ``tile_upper`` and the terms and keys, never the other
arc columns (:func:`read_tile`); the proposed arcs' whole rows come from :func:`read_rows`, and an output
that needs every arc (symbiosis.outputs.arcs) streams each tile with :func:`iter_rows`, one row group at a
time.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from symbiosis.exchange.model import RowBlock

if TYPE_CHECKING:
    from symbiosis.exchange.tiled import Tile

#: Arcs per row group of ``arcs.parquet``.
ROW_GROUP = 65_536
#: The columns of ``arcs.parquet`` that are the tile's own, after the candidate arc columns.
OWN_COLUMNS = ("tile_arc_id", "tile_objective", "tile_upper")
#: Where the metadata is kept in ``arcs.parquet``'s schema.
METADATA_KEY = b"symbiosis.tile"
#: The arc columns pricing reads every round: not compressed (read about three times faster than with the
#: default codec, measured on a tile of 0.57M arcs; docs/performance.md), the others compressed.
PRICING_COLUMNS = ("s", "d", *OWN_COLUMNS)


def tile_folder(folder: Path, number: int) -> Path:
    """The sub-folder of tile ``number`` in ``folder``."""
    return Path(folder) / f"tile-{number:05d}"


def write_tile(folder: Path, tile: Tile) -> Path:
    """Write ``tile`` (its arcs in memory) into its sub-folder of ``folder``; returns that sub-folder."""
    from symbiosis.exchange.colgen import ARC_ROW_FAMILIES

    if tile.arcs is None:
        raise ValueError("a tile read from disk is written already")
    where = tile_folder(folder, tile.number)
    where.mkdir(parents=True, exist_ok=False)
    families: dict[str, dict[str, object]] = {}
    # Families whose rows hold the same arcs (the same ptr and cols arrays) share a terms file.
    patterns: dict[tuple[int, int], tuple[str, RowBlock, dict[int, str], dict[str, np.ndarray]]] = {}
    for family in ARC_ROW_FAMILIES:
        name = family.name
        block = tile.blocks[name]
        keys = tile.keys[name]
        pattern = (id(block.ptr), id(block.cols))
        if pattern not in patterns:
            patterns[pattern] = (name, block, {}, {})
        file_name, _block, coef_of, coefs = patterns[pattern]
        if id(block.coefs) not in coef_of:
            coef_of[id(block.coefs)] = f"coef_{name}"
            coefs[f"coef_{name}"] = block.coefs
        record: dict[str, object] = {"terms": f"terms-{file_name}.parquet", "coef": coef_of[id(block.coefs)],
                                     "n_rows": block.n_rows}
        if isinstance(keys, pd.RangeIndex) and keys.start == 0 and keys.step == 1:
            record["keys"] = None
        else:
            record["keys"] = f"keys-{name}.parquet"
            frame = keys.to_frame(index=False) if len(keys) else pd.DataFrame(
                {f"key_{k}": pd.Series(dtype=object) for k in range(keys.nlevels)})
            frame.columns = [f"key_{k}" for k in range(frame.shape[1])]
            pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), where / str(record["keys"]))
        families[name] = record
    for file_name, block, _coef_of, coefs in patterns.values():
        columns = {"row": block.term_rows().astype(np.int64), "col": np.asarray(block.cols, dtype=np.int64),
                   **{name: np.asarray(values, dtype=float) for name, values in coefs.items()}}
        pq.write_table(pa.table(columns), where / f"terms-{file_name}.parquet", compression="none")
    table = pa.Table.from_pandas(tile.arcs.reset_index(drop=True), preserve_index=False)
    for name, values in zip(OWN_COLUMNS, (tile.ids, tile.objective, tile.upper), strict=True):
        table = table.append_column(name, pa.array(values))
    metadata = {"number": tile.number, "n_arcs": int(len(tile.ids)), "families": families}
    table = table.replace_schema_metadata({**(table.schema.metadata or {}),
                                           METADATA_KEY: json.dumps(metadata).encode()})
    codecs = {name: "none" if name in PRICING_COLUMNS else "snappy" for name in table.column_names}
    pq.write_table(table, where / "arcs.parquet", row_group_size=ROW_GROUP, compression=codecs)
    return where


def _numpy(table: pa.Table, name: str, dtype: type) -> np.ndarray:
    return np.asarray(table.column(name).to_numpy(), dtype=dtype)


def _keys(where: Path, record: dict[str, object]) -> pd.Index:
    if record["keys"] is None:
        return pd.RangeIndex(int(record["n_rows"]))  # type: ignore[call-overload]
    frame = pq.read_table(where / str(record["keys"])).to_pandas()
    levels = [frame[c].to_numpy(dtype=object) if not pd.api.types.is_integer_dtype(frame[c])
              else frame[c].to_numpy(np.int64) for c in frame.columns]
    if len(levels) == 1:
        return pd.Index(levels[0], dtype=object if levels[0].dtype == object else None)
    return pd.MultiIndex.from_arrays(levels) if len(frame) else pd.MultiIndex.from_arrays(
        [np.zeros(0, np.int64 if k == 0 else object) for k in range(len(levels))])


def read_tile(where: Path) -> Tile:
    """The tile in ``where`` as pricing needs it: ids, supplies, demands, objective, bounds, the families' rows
    and keys (the other arc columns stay on disk: :meth:`Tile.rows` reads those of the arcs asked for)."""
    from symbiosis.exchange.tiled import Tile

    where = Path(where)
    source = pq.ParquetFile(where / "arcs.parquet", memory_map=True)
    metadata = json.loads((source.schema_arrow.metadata or {})[METADATA_KEY])
    arcs = source.read(columns=list(PRICING_COLUMNS))
    terms: dict[str, pa.Table] = {}
    blocks: dict[str, RowBlock] = {}
    keys: dict[str, pd.Index] = {}
    families = metadata["families"]
    assert isinstance(families, dict)
    for name, record in families.items():
        file_name = str(record["terms"])
        if file_name not in terms:
            terms[file_name] = pq.read_table(where / file_name, memory_map=True)
        table = terms[file_name]
        n_rows = int(record["n_rows"])
        row = _numpy(table, "row", np.int64)
        ptr = np.zeros(n_rows + 1, dtype=np.int64)
        np.cumsum(np.bincount(row, minlength=n_rows), out=ptr[1:])
        blocks[name] = RowBlock(ptr, _numpy(table, "col", np.int64), _numpy(table, str(record["coef"]), float))
        keys[name] = _keys(where, record)
    return Tile(int(metadata["number"]), _numpy(arcs, "tile_arc_id", np.int64),  # type: ignore[call-overload]
                _numpy(arcs, "s", np.int64), _numpy(arcs, "d", np.int64), _numpy(arcs, "tile_objective", float),
                _numpy(arcs, "tile_upper", float), blocks, keys, arcs=None, path=where)


def read_rows(where: Path, picked: np.ndarray) -> pd.DataFrame:
    """The candidate arc columns (not the tile's own) of the arcs at positions ``picked`` of the tile in
    ``where``, in that order, read from the row groups that hold them only."""
    picked = np.asarray(picked, dtype=np.int64)
    source = pq.ParquetFile(Path(where) / "arcs.parquet", memory_map=True)
    columns = [name for name in source.schema_arrow.names if name not in OWN_COLUMNS]
    sizes = np.array([source.metadata.row_group(k).num_rows for k in range(source.num_row_groups)], dtype=np.int64)
    starts = np.r_[0, np.cumsum(sizes)]
    groups = np.unique(np.searchsorted(starts, picked, side="right") - 1) if len(picked) else np.zeros(0, np.int64)
    if len(groups) == 0:
        return source.schema_arrow.empty_table().select(columns).to_pandas()
    table = source.read_row_groups(groups.tolist(), columns=columns)
    # Position of each picked arc in the concatenation of the row groups read.
    offset = np.r_[0, np.cumsum(sizes[groups])][:-1]
    group = np.searchsorted(starts, picked, side="right") - 1
    at = offset[np.searchsorted(groups, group)] + (picked - starts[group])
    return table.take(pa.array(at)).to_pandas()


def iter_rows(where: Path, columns: list[str] | None = None) -> Iterator[pd.DataFrame]:
    """The arcs of the tile in ``where``, in order, one row group at a time: the candidate arc columns, or
    ``columns`` (which may name the tile's own as well)."""
    source = pq.ParquetFile(Path(where) / "arcs.parquet", memory_map=True)
    names = columns or [name for name in source.schema_arrow.names if name not in OWN_COLUMNS]
    for batch in source.iter_batches(batch_size=ROW_GROUP, columns=names):
        yield batch.to_pandas()


__all__ = ["OWN_COLUMNS", "ROW_GROUP", "iter_rows", "read_rows", "read_tile", "tile_folder", "write_tile"]
