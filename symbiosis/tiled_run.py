"""``symbiosis run --tiles`` and ``--scheduler``: the pipeline's optimise stage over tiles of candidate arcs.

The choice (:func:`tile_count`): ``off`` never tiles; ``N`` cuts the supplies into N spatial tiles; ``auto``
(the default) tiles a region of :data:`~symbiosis.tiles.TILED_FROM_FACILITIES` facilities or more into tiles
of about :data:`~symbiosis.tiles.TILE_ARCS` estimated arcs, and leaves smaller regions to the whole-table path
(docs/performance.md, "Tiled candidates"). The tiled path is the annual LP's: a region with periods or stores,
the mixed-integer mode and a warm re-solve keep the whole table (``auto``) or are refused (an explicit N).

``scheduler``: ``None`` prices the tiles here, one at a time; an address (``tcp://host:8786``) or ``local``
(a LocalCluster of this machine's CPUs, one thread each) makes, holds and prices them on Dask workers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from symbiosis.errors import SymbiosisError
from symbiosis.region import Region

if TYPE_CHECKING:
    from symbiosis.pipeline import Progress, Timings
    from symbiosis.results import Results

logger = logging.getLogger(__name__)


def tile_count(region: Region, tiles: str | int | None) -> int | str | None:
    """What ``--tiles`` asks for this region: None (the whole table), ``"auto"`` (tiles sized by estimated arcs)
    or a number of tiles. Raises SymbiosisError on a value that is none of off, auto or a positive integer."""
    from symbiosis.tiles import TILED_FROM_FACILITIES

    if tiles is None:
        tiles = "auto"
    text = str(tiles).strip().lower()
    if text == "off":
        return None
    if text == "auto":
        return "auto" if len(region.facilities) >= TILED_FROM_FACILITIES else None
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1 or str(n) != text:
        raise SymbiosisError(f"--tiles must be auto, off or a number of tiles (1 or more), got {tiles!r}")
    return n


@contextmanager
def dask_client(scheduler: str | None) -> Iterator[Any]:
    """A Dask client for ``scheduler`` (None: none; ``local``: a LocalCluster of this machine, closed after)."""
    if scheduler is None:
        yield None
        return
    if scheduler.strip().lower() == "local":
        try:
            from distributed import Client, LocalCluster
        except ImportError as exc:  # pragma: no cover - dask is an optional extra
            raise SymbiosisError("--scheduler needs Dask distributed: pip install 'symbiosis[dask]'") from exc
        from symbiosis.parallel import usable_cpus

        with LocalCluster(n_workers=usable_cpus(), threads_per_worker=1, dashboard_address=None) as cluster, \
                Client(cluster, set_as_default=False) as client:
            yield client
        return
    from symbiosis.uncertainty.run import connect

    client = connect(scheduler)
    try:
        yield client
    finally:
        client.close()


def optimise_tiled(region: Region, n_tiles: int | str, *, method: str, threads: int | None, weights: Any,
                   scheduler: str | None, timings: Timings, say: Progress, arcs: bool = False,
                   **overrides: Any) -> Results:
    """Prepare the region, cut it into tiles, solve over them (symbiosis.exchange.tiled) and evaluate the
    master: the Results of the whole table's optimum (its exchanges, supplies' reasons and screening); with
    ``arcs``, ``results.arcs`` reads every arc from the tiles, kept for it (symbiosis.outputs.arcs.TiledArcs)."""
    from symbiosis.candidates import prepare
    from symbiosis.exchange.tiled import solve_tiled
    from symbiosis.results import evaluate
    from symbiosis.tiles import tiling

    started = time.perf_counter()
    say("screening candidate exchanges (tiled)")
    prepared = prepare(region, **overrides)
    if weights:
        prepared.parameters["weights"] = weights
    tiles = tiling(prepared, None if n_tiles == "auto" else int(n_tiles))
    timings.record("candidates", started)
    started = time.perf_counter()
    say(f"solving the exchange model over {tiles.n_tiles} tiles of candidate arcs")
    with dask_client(scheduler) as client:
        tiled = solve_tiled(tiles, carbon_price=float(prepared.parameters["carbon_price"]),  # type: ignore[arg-type]
                            weights=weights, method=method, threads=threads, client=client, keep=arcs)
    timings.record("solve", started)
    started = time.perf_counter()
    say("evaluating results against business as usual")
    results = evaluate(region, tiled.candidates, tiled.solution)
    if tiled.candidates.permit_screened is not None and len(tiled.candidates.permit_screened):
        # Pricing a permit change re-solves with the screened arcs added: over the whole table, which the
        # tiled path never holds. Said in the parameters rather than priced on the master alone.
        results.parameters["permit_opportunities"] = "not computed in tiled mode"
    if tiled.tiles is not None and tiled.duals is not None:
        from symbiosis.exchange.tiled import arc_ids_of
        from symbiosis.outputs.arcs import TiledArcs

        results.arcs = TiledArcs(tiled.tiles, tiled.candidates, arc_ids_of(tiled.candidates),
                                 tiled.solution.x, tiled.duals, int(tiled.solution.parameters["candidate_arcs"]))
    timings.record("results", started)
    return results


__all__ = ["dask_client", "optimise_tiled", "tile_count"]
