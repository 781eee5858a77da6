"""Candidate arcs tile by tile: the arcs of a continental region never all in memory at once.

A **tile** is a set of supplies (rows of ``candidates.supplies``); its arcs are every candidate arc out of
those supplies, made exactly as :func:`symbiosis.candidates.candidates` makes them (same columns, values and
order: by supply, then demand) from one :class:`~symbiosis.candidates.Prepared` region. The supplies,
demands, quality and processor tables are small and stay whole; only the arcs are cut. The tiles partition
the supplies, so the union of the tiles' arcs is the whole arc table, each arc in exactly one tile.

Every arc has a stable global id, ``s * n_demands + d`` (:func:`arc_ids`): the same in a tile, in the whole
table (which is sorted by it) and in a restricted model, whatever the tiling.

Tiles are spatial: the supplies are ordered along a Morton (Z-order) curve of their facility's cell and cut
into runs of about the same estimated number of arcs (the facilities within reach, counted on the k-d trees
without making any pair), so one tile's arcs reach a compact set of demands.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from symbiosis.candidates import _SPHERE_MARGIN, Candidates, Prepared, _chord, candidates_of

#: Estimated arcs per tile when the number of tiles is chosen for the caller (``plan_tiles``).
TILE_ARCS = 1_000_000
#: ``symbiosis run --tiles auto`` tiles a region from this many facilities (docs/performance.md, "Tiled
#: candidates": below it the whole arc table fits comfortably and the untiled path is faster).
TILED_FROM_FACILITIES = 20_000


def arc_ids(s: np.ndarray, d: np.ndarray, n_demands: int) -> np.ndarray:
    """The global id of the arcs from supply rows ``s`` to demand rows ``d``: ``s * n_demands + d``."""
    return np.asarray(s, dtype=np.int64) * max(int(n_demands), 1) + np.asarray(d, dtype=np.int64)


def estimated_arcs(prepared: Prepared) -> np.ndarray:
    """Per supply, an upper estimate of its candidate arcs: the demand flows of the facilities within the
    search radius of each of its substitution rows (counted on the k-d trees; no pair is made)."""
    estimate = np.zeros(len(prepared.supplies))
    for _k, s_rows, d_rows, d_facs, _inverse, tree_d, radius in prepared.reach:
        per_facility = len(d_rows) / max(len(d_facs), 1)
        s_facs, s_inverse = np.unique(prepared.s_fac[s_rows], return_inverse=True)
        found = tree_d.query_ball_point(prepared.points[s_facs], _chord(radius * _SPHERE_MARGIN),
                                        return_length=True)
        np.add.at(estimate, s_rows, np.asarray(found, dtype=float)[s_inverse] * per_facility)
    return estimate


def _morton(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Z-order key of each point on a 2^16 x 2^16 grid of latitude and longitude."""
    y = np.clip((np.asarray(lat, float) + 90.0) / 180.0 * 65535.0, 0, 65535).astype(np.uint64)
    x = np.clip((np.asarray(lon, float) + 180.0) / 360.0 * 65535.0, 0, 65535).astype(np.uint64)
    key = np.zeros(len(y), dtype=np.uint64)
    for bit in range(16):
        key |= ((x >> np.uint64(bit)) & np.uint64(1)) << np.uint64(2 * bit)
        key |= ((y >> np.uint64(bit)) & np.uint64(1)) << np.uint64(2 * bit + 1)
    return key


def plan_tiles(prepared: Prepared, n_tiles: int | None = None, *, tile_arcs: int = TILE_ARCS
               ) -> list[np.ndarray]:
    """The supplies cut into spatial tiles: ``n_tiles`` of them (None: enough for about ``tile_arcs``
    estimated arcs each), each a sorted array of supply rows. Tiles may be empty when there are fewer
    supplies with arcs than tiles; every supply is in exactly one tile."""
    n_s = len(prepared.supplies)
    estimate = estimated_arcs(prepared)
    total = float(estimate.sum())
    if n_tiles is None:
        n_tiles = max(1, math.ceil(total / max(tile_arcs, 1)))
    if n_tiles < 1:
        raise ValueError(f"the number of tiles must be at least 1, got {n_tiles}")
    fac = prepared.s_fac
    order = np.lexsort((np.arange(n_s), _morton(prepared.lat[fac], prepared.lon[fac])))
    # Cut where the running estimate crosses each multiple of total / n_tiles (supplies without arcs count
    # a little, so that a region without any arc still spreads its supplies).
    weight = estimate[order] + 1e-3
    running = np.cumsum(weight)
    bounds = np.searchsorted(running, running[-1] * np.arange(1, n_tiles) / n_tiles, side="right") if n_s else \
        np.zeros(n_tiles - 1, dtype=np.int64)
    return [np.sort(part) for part in np.split(order, bounds)]


@dataclass
class Tiling:
    """A prepared region and its tiles of supplies."""

    prepared: Prepared
    tiles: list[np.ndarray]

    @property
    def n_tiles(self) -> int:
        return len(self.tiles)

    def candidates(self, k: int) -> Candidates:
        """The candidates of tile ``k``: whole supplies and demands, the arcs out of the tile's supplies."""
        return candidates_of(self.prepared, self.tiles[k])


def tiling(prepared: Prepared, n_tiles: int | None = None, *, tile_arcs: int = TILE_ARCS) -> Tiling:
    """:func:`plan_tiles` as a :class:`Tiling`."""
    return Tiling(prepared, plan_tiles(prepared, n_tiles, tile_arcs=tile_arcs))


SUMMED_SCREENING = ("n_within_distance", "n_quality_fail", "n_arcs", "n_no_permit", "n_too_far_for_carrier",
                    "n_too_cold")


def merge_screening(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """The whole region's screening table from its tiles' (each counts its own supplies' arcs, 0 elsewhere):
    counts of arcs summed; ``n_compatible`` and ``nearest_compatible_km`` (which every tile computes for its
    own supplies only, 0 and NaN elsewhere) likewise summed and taken as the smallest."""
    if not parts:
        raise ValueError("no tile to merge")
    merged = parts[0].copy()
    for part in parts[1:]:
        for column in merged.columns:
            if column == "supply_id":
                continue
            if column == "nearest_compatible_km":
                merged[column] = np.fmin(merged[column].to_numpy(float), part[column].to_numpy(float))
            else:
                merged[column] = merged[column].to_numpy() + part[column].to_numpy()
    return merged


__all__ = ["TILED_FROM_FACILITIES", "TILE_ARCS", "Tiling", "arc_ids", "estimated_arcs", "merge_screening",
           "plan_tiles", "tiling"]
