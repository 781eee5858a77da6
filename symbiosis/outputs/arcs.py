"""``candidates.csv`` / ``candidates.parquet``: every candidate arc, with its flow and reduced cost at the optimum.

Written by ``symbiosis run --arcs`` (``optimise(..., arcs=True)``, then :func:`symbiosis.pipeline.write_outputs`):
one row per candidate arc the screening kept, whether the optimum uses it or not: the arc's own columns
(docs/architecture.md, "Candidates", without the internal ``s`` and ``d``), then ``amount_per_yr`` (its flow at
the optimum, t/yr, MWh/yr on a heat arc; 0 on an arc left unused) and ``reduced_cost_per_unit`` (objective units
per t or MWh: how much cheaper the arc would have to be before the optimum would use it; ≥ 0 up to the
solver's tolerance at an optimum, 0 on an arc that carries flow).

The table is written **streaming**, never whole in memory: from the candidate table of a run that had every arc
in memory (:class:`WholeArcs`), or tile after tile from the tiles a tiled run spilled to Parquet
(:class:`TiledArcs`, symbiosis.exchange.tilefiles: one tile's reduced costs and one row group of its arcs at a
time). Below :data:`~symbiosis.outputs.export.PARQUET_FROM_ROWS` arcs it is a CSV; from there on (a continental
region has millions of arcs) it is Parquet only, unless asked otherwise (``parquet``). A public run masks
confidential facilities in it as in every other table (symbiosis.disclosure).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from symbiosis.atomic import write_atomic

if TYPE_CHECKING:
    from symbiosis.candidates import Candidates
    from symbiosis.exchange.solve import Solution
    from symbiosis.exchange.tiled import KeptTiles, MasterDuals

logger = logging.getLogger(__name__)

#: The id columns of an arc, from the supplies and demands tables by ``s`` and ``d``.
ID_COLUMNS = ("supply_id", "demand_id", "supply_facility", "demand_facility")
#: The columns after the arc's own.
SOLUTION_COLUMNS = ("amount_per_yr", "reduced_cost_per_unit")
#: Rows per batch of :class:`WholeArcs`.
BATCH = 65_536


def _rows(arcs: pd.DataFrame, flow: np.ndarray, rc: np.ndarray) -> pd.DataFrame:
    """``arcs``' ``s``, ``d`` and own columns (not the id columns), then the flow and the reduced cost."""
    out = arcs.drop(columns=[c for c in ID_COLUMNS if c in arcs.columns]).reset_index(drop=True)
    out["amount_per_yr"] = np.maximum(np.asarray(flow, dtype=float), 0.0)
    out["reduced_cost_per_unit"] = np.asarray(rc, dtype=float)
    return out


def _with_ids(rows: pd.DataFrame, ids: dict[str, np.ndarray]) -> pd.DataFrame:
    """The output rows: the id columns (``ids``: per supply or demand row) by ``s`` and ``d``, then the rest."""
    s = rows["s"].to_numpy(np.int64)
    d = rows["d"].to_numpy(np.int64)
    out = pd.DataFrame({"supply_id": ids["supply_id"][s], "demand_id": ids["demand_id"][d],
                        "supply_facility": ids["supply_facility"][s], "demand_facility": ids["demand_facility"][d]})
    rest = rows.drop(columns=["s", "d"])
    return pd.concat([out, rest], axis=1)


def _objective(arrays: Any, parameters: dict[str, Any]) -> np.ndarray:
    return np.asarray(arrays.objective_vector(float(parameters.get("carbon_price", 0.0) or 0.0),
                                              parameters.get("weights")))


@dataclass
class WholeArcs:
    """Every arc of a run that held the whole candidate table: its rows, flows and reduced costs (priced with
    the solution's duals by symbiosis.exchange.colgen's formula)."""

    candidates: Candidates
    solution: Solution

    @property
    def n_arcs(self) -> int:
        return len(self.candidates.arcs)

    def batches(self) -> Iterator[pd.DataFrame]:
        from symbiosis.exchange.colgen import price_arcs, raw_duals
        from symbiosis.exchange.model import exchange_arrays

        arrays = exchange_arrays(self.candidates)
        rc = price_arcs(arrays, raw_duals(arrays, self.solution), _objective(arrays, self.solution.parameters))
        arcs, x = self.candidates.arcs, np.asarray(self.solution.x, dtype=float)
        for start in range(0, len(arcs), BATCH):
            part = slice(start, start + BATCH)
            yield _rows(arcs.iloc[part], x[part], rc[part])


@dataclass
class TiledArcs:
    """Every arc of a tiled run, read tile by tile from its kept tiles: flows from the master (0 outside it),
    reduced costs from the last master's duals mapped onto each tile's rows (as the last round priced them)."""

    tiles: KeptTiles
    shell: Candidates
    master_ids: np.ndarray
    x: np.ndarray
    duals: MasterDuals
    n_arcs: int

    def batches(self) -> Iterator[pd.DataFrame]:
        from symbiosis.exchange.tiled import tile_duals, tile_reduced_costs

        for k in range(self.tiles.n_tiles):
            tile = self.tiles.tile(k)
            rc = tile_reduced_costs(tile, tile_duals(tile, self.duals))
            flow = np.zeros(tile.n_arcs)
            at = np.searchsorted(self.master_ids, tile.ids)
            found = at < len(self.master_ids)
            found[found] = self.master_ids[at[found]] == tile.ids[found]
            flow[found] = self.x[at[found]]
            start = 0
            for rows in tile.batches():
                part = slice(start, start + len(rows))
                yield _rows(rows, flow[part], rc[part])
                start += len(rows)
            del tile, rc, flow

    def close(self) -> None:
        self.tiles.close()


def write_arcs(source: WholeArcs | TiledArcs, out_dir: Path, *, public: bool, results: Any, region: Any = None,
               parquet: bool | None = None) -> dict[str, Path]:
    """Write ``candidates.csv`` (below PARQUET_FROM_ROWS arcs, or with ``parquet=False``) and/or
    ``candidates.parquet`` (from that size, or with ``parquet=True``) from ``source``, one batch at a time,
    through the public view of ``results`` unless ``public`` is False. Returns the paths by file name."""
    from symbiosis import disclosure
    from symbiosis.outputs.export import PARQUET_FROM_ROWS, excel_safe, write_csv_batches

    scrub = disclosure.for_results(results, region) if public else None
    large = source.n_arcs >= PARQUET_FROM_ROWS
    as_csv = parquet is False or not large
    as_parquet = bool(parquet) or (parquet is None and large)
    written: dict[str, Path] = {}
    shell = source.candidates if isinstance(source, WholeArcs) else source.shell
    raw = {"supply_id": shell.supplies["supply_id"], "demand_id": shell.demands["demand_id"],
           "supply_facility": shell.supplies["facility_id"], "demand_facility": shell.demands["facility_id"]}
    # Without a confidential facility to mask, the ids are made safe for a spreadsheet once per supply and
    # demand, not once per arc; with one, each batch goes through the disclosure rules and then excel_safe.
    masked = scrub is not None and scrub.active
    ids = {name: (column if masked else excel_safe(column.to_frame()).iloc[:, 0]).to_numpy(dtype=object)
           for name, column in raw.items()}

    def batches() -> Iterator[pd.DataFrame]:
        for rows in source.batches():
            frame = _with_ids(rows, ids)
            if masked:
                assert scrub is not None
                frame = excel_safe(scrub.frame(frame))
            yield frame

    if as_csv:
        written["candidates.csv"] = write_csv_batches(Path(out_dir) / "candidates.csv", batches(),
                                                      _with_ids(_empty(source), ids))
    if as_parquet:
        import pyarrow as pa
        import pyarrow.parquet as pq

        def write_parquet(tmp: Path) -> None:
            writer = None
            try:
                for frame in batches():
                    if writer is None:
                        table = pa.Table.from_pandas(frame, preserve_index=False)
                        writer = pq.ParquetWriter(tmp, table.schema)
                    else:
                        table = pa.Table.from_pandas(frame, schema=writer.schema, preserve_index=False)
                    writer.write_table(table)
                if writer is None:
                    pq.write_table(pa.Table.from_pandas(_with_ids(_empty(source), ids), preserve_index=False), tmp)
            finally:
                if writer is not None:
                    writer.close()

        written["candidates.parquet"] = write_atomic(Path(out_dir) / "candidates.parquet", write_parquet)
    logger.info("wrote the %d candidate arcs to %s", source.n_arcs, ", ".join(written))
    return written


def _empty(source: WholeArcs | TiledArcs) -> pd.DataFrame:
    shell = source.candidates if isinstance(source, WholeArcs) else source.shell
    return _rows(shell.arcs.iloc[:0], np.zeros(0), np.zeros(0))


__all__ = ["ID_COLUMNS", "SOLUTION_COLUMNS", "TiledArcs", "WholeArcs", "write_arcs"]
