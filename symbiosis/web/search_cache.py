"""What partner searches share, kept per programme and *data version* (``Programme.data_version``, raised by
every write to its facilities and flows).

A partner search (:func:`symbiosis.partners.find_partners`) needs three things of the programme: the region
loaded from the database, its candidates (demands, quality bounds, arcs) and the regional optimum. The first
two are built once per data version (one thread builds, the others wait for it: fifty searches after an edit
load the region once) and every search of that version reuses them, so the figures of a search (distances,
quality fit, value per tonne for both sides, CO2e) are always those of the version the search started at,
never of an older one.

The optimum is solved in a child process (the solve is long and would hold the server's interpreter lock),
one solve per programme at a time, always of the newest snapshot asked for: writes that arrive during a solve
are taken up by the next solve, not one solve each. A search uses the optimum of its own data version when
there is one; when the programme changed since the newest optimum, it waits for the new one if the programme's
last solve took at most ``settings.PARTNERS_EXACT_OPTIMUM_S`` seconds (a small programme: the answer is exact
within a few seconds), and otherwise uses the newest optimum there is and says so on the page ("the regional
optimum as of N changes ago, being recomputed"). Only whether and how much the optimum ships a pair, the
stream's shadow value and the amount it exchanges come from the optimum (symbiosis.partners.find_partners).
"""

from __future__ import annotations

import atexit
import dataclasses
import hashlib
import logging
import multiprocessing
import os
import threading
import time
from collections import OrderedDict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from symbiosis.region import Region

logger = logging.getLogger(__name__)

#: Searches kept per programme (each holds a few hundred rows); the oldest go first.
MAX_SEARCHES = 2048


@dataclass
class Snapshot:
    """The programme at one data version, as a region."""

    version: int
    region: Region
    facilities_digest: str | None = None  # computed by the first search of the version
    #: Digests of the incoming flows of a set of materials with their quality rows (what a search of a stream
    #: of a material that replaces them reads), computed by the first search that needs one; a snapshot made
    #: by patching one facility inherits those its facility's incoming materials leave untouched.
    inputs_digests: dict[frozenset[str], str] = dataclasses.field(default_factory=dict)


@dataclass
class Optimum:
    """The part of an optimum partner searches read (``Results.supplies`` and ``Results.exchanges``)."""

    version: int
    supplies: pd.DataFrame
    exchanges: pd.DataFrame
    seconds: float
    #: ``solved`` (the whole programme) or ``re-optimised`` (from the solver's kept optimum: :func:`_solve_programme`)
    how: str = "solved"
    #: Seconds of the last solve of the whole programme this optimum descends from (None: this one's): what
    #: decides whether the programme is small enough for its searches to wait for the exact optimum.
    full_seconds: float | None = None

    @property
    def size_seconds(self) -> float:
        return self.seconds if self.full_seconds is None else self.full_seconds


@dataclass
class Search:
    """A partner search and the data versions it was made from."""

    result: Any  # symbiosis.partners.PartnerSearch
    version: int
    optimum_version: int
    #: The ranking as plain rows (the columns a page shows) and its receivers' demand ids, made once per
    #: result and shared by every page that shows it.
    records: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    demand_ids: list[str] = dataclasses.field(default_factory=list)

    @property
    def optimum_behind(self) -> int:
        """How many changes of the programme the optimum used is behind the search's figures (0: exact)."""
        return self.version - self.optimum_version


class _Programme:
    def __init__(self, key: str = "") -> None:
        self.key = key  # the programme's primary key: names its kept optimum in the solver's child
        self.lock = threading.Condition()  # (re-entrant) guards the fields below; notified when an optimum arrives
        self.build = threading.Lock()  # one snapshot built at a time
        self.snapshot: Snapshot | None = None
        self.optimum: Optimum | None = None
        self.solving = False
        self.wanted: Snapshot | None = None  # the newest snapshot whose optimum is wanted
        self.error: str | None = None
        self.last_start = float("-inf")  # time.monotonic() when the last solve started
        self.closed = False  # forgotten (clear) or the solver stopped (shutdown): its solve loop ends
        self.shared: Path | None = None  # the folder of the optima shared by the server's processes
        self.shared_started = float("-inf")  # time.time() when the newest shared optimum's solve started
        self.last_whole_start = float("-inf")  # time.monotonic() when the last solve of the whole programme started
        self.shared_whole_started = float("-inf")  # time.time(), the same of any process (the shared optima)
        self.needs_whole = False  # the solver's child answered that the newest change needs a whole solve
        self.searches: OrderedDict[tuple[str, str, str, str, int], Search] = OrderedDict()
        #: The same searches by (stream, data version, optimum version): a search repeated at one version
        #: finds its result without computing a digest.
        self.recent: OrderedDict[tuple[str, int, int], Search] = OrderedDict()


_programmes: dict[int, _Programme] = {}
_registry_lock = threading.Lock()
_pool: ProcessPoolExecutor | None = None
_pool_lock = threading.Lock()


def _entry(programme_pk: int) -> _Programme:
    with _registry_lock:
        return _programmes.setdefault(programme_pk, _Programme(str(programme_pk)))


def _close_all() -> None:
    """End every programme's solve loop (one waiting before its next refresh stops waiting)."""
    with _registry_lock:
        entries = list(_programmes.values())
    for entry in entries:
        with entry.lock:
            entry.closed = True
            entry.lock.notify_all()


def clear() -> None:
    """Forget everything (a database restored or replaced under a running process; each test)."""
    _close_all()
    with _registry_lock:
        _programmes.clear()


def shutdown() -> None:
    """Stop the solver's child process (at exit; tests) and forget the programmes (their solve loops end)."""
    global _pool
    clear()
    with _pool_lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown(wait=True, cancel_futures=True)


atexit.register(shutdown)


def _solver() -> ProcessPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            # spawn, not fork: the server has threads (waitress, background runs) a fork would copy mid-state
            # and at a lower priority: pages are served first, the optimum catches up in the time left over
            _pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                                        initializer=_solver_start, initargs=(os.getpid(),))
        return _pool


def _solver_start(parent: int) -> None:
    """In the solver's child process: a lower priority, and an end when the server ends (a server stopped by
    a signal runs no exit handler, and the child would be left behind waiting for work)."""
    os.nice(10)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="symbiosis-solver-watch", daemon=True).start()


def _solve(region: Region) -> tuple[pd.DataFrame, pd.DataFrame, float]:
    """In the child process: the optimum's supplies and exchanges (only the columns searches read)."""
    from symbiosis.pipeline import optimise

    started = time.perf_counter()
    results = optimise(region)
    supplies = results.supplies[[c for c in ("supply_id", "fate_cost_per_t", "fate_co2e_per_t",
                                             "shadow_price_per_t", "exchanged_t_per_yr")
                                 if c in results.supplies.columns]]
    exchanges = results.exchanges[[c for c in ("supply_id", "demand_id", "amount_t_per_yr", "amount_mwh_per_yr")
                                   if c in results.exchanges.columns]]
    return supplies.copy(), exchanges.copy(), time.perf_counter() - started


# ------------------------------------------------------------- in the solver's child: re-optimisation


@dataclass
class _Kept:
    """A programme's optimum kept in the solver's child for re-optimising (symbiosis.exchange.incremental)."""

    reoptimiser: Any  # symbiosis.exchange.incremental.Reoptimiser
    structure: str  # digest of what the candidate arcs are made of besides the streams' amounts and prices
    supply_quality: pd.DataFrame
    demand_quality: pd.DataFrame


_kept: dict[str, _Kept] = {}


def _structure(region: Region, parameters: dict[str, Any]) -> str:
    """Digest of the region's tables and settings a change of amounts and prices leaves as they are (the
    facilities and their locations, quality, arcs, permits and processors tables, the settings, the run's
    parameters); a change to any of them changes the candidate arcs or the model's rows: solved anew."""
    h = hashlib.blake2b(digest_size=16)
    for frame in (region.facilities, region.quality, region.arcs, region.permits, region.processors):
        h.update(_digest(frame).encode() if frame is not None else b"-")
    h.update(region.settings.model_dump_json().encode())
    h.update(repr(sorted((k, repr(v)) for k, v in parameters.items())).encode())
    h.update(repr(sorted(region.energy_efficiency.items())).encode())
    return h.hexdigest()


def _quality_by_id(prepared: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The candidates' quality tables with stream ids for positions, in a fixed order (a snapshot patched with
    one facility holds that facility's streams together, where a fresh load lists modelled flows last: the
    same streams in another order)."""
    supply_quality = prepared.supply_quality.copy()
    supply_quality["s"] = prepared.supplies["supply_id"].to_numpy()[supply_quality["s"].to_numpy(int)]
    demand_quality = prepared.demand_quality.copy()
    demand_quality["d"] = prepared.demands["demand_id"].to_numpy()[demand_quality["d"].to_numpy(int)]
    return (supply_quality.sort_values(list(supply_quality.columns), kind="stable").reset_index(drop=True),
            demand_quality.sort_values(list(demand_quality.columns), kind="stable").reset_index(drop=True))


def _in_order_of(new: pd.DataFrame, old: pd.DataFrame, key: str) -> pd.DataFrame:
    """``new``'s rows in the order of ``old``'s ids, its columns those of ``old``; StructuralChange when the
    ids or columns differ."""
    from symbiosis.exchange.incremental import StructuralChange

    ids = new[key].astype(str)
    if len(new) != len(old) or not ids.is_unique or set(ids) != set(old[key].astype(str)) \
            or not set(old.columns) <= set(new.columns):
        raise StructuralChange(f"other streams or columns ({key})")
    position = pd.Series(np.arange(len(new)), index=ids.to_numpy())
    return new.iloc[position.loc[old[key].astype(str).to_numpy()].to_numpy()][list(old.columns)].reset_index(drop=True)


def _optimum_tables(cands: Any, arrays: Any, solution: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The columns of ``Results.supplies`` and ``Results.exchanges`` searches read, as
    :func:`symbiosis.results.evaluate` computes them, without the rest of its tables."""
    from symbiosis.energy.heat import is_energy
    from symbiosis.results import _exchanges

    sup = cands.supplies
    shipped = np.bincount(arrays.arc_s, weights=solution.x, minlength=arrays.n_supplies)
    supplies = sup[[c for c in ("supply_id", "fate_cost_per_t", "fate_co2e_per_t") if c in sup.columns]].copy()
    supplies["shadow_price_per_t"] = solution.supply_dual
    supplies["exchanged_t_per_yr"] = np.where(is_energy(sup), np.nan, shipped)
    exchanges = _exchanges(cands, arrays, solution, 1e-6)
    exchanges = exchanges[[c for c in ("supply_id", "demand_id", "amount_t_per_yr", "amount_mwh_per_yr")
                           if c in exchanges.columns]]
    return supplies.copy(), exchanges.copy()


def _reoptimised(kept: _Kept, region: Region) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The optimum of ``region`` from the kept one, when only amounts and prices of streams changed (the
    candidates' supplies and demands tables of the region, made without their arcs, against the kept ones);
    raises StructuralChange otherwise."""
    from symbiosis.candidates import prepare
    from symbiosis.exchange.incremental import StructuralChange

    r = kept.reoptimiser
    prepared = prepare(region)
    if _structure(region, prepared.parameters) != kept.structure:
        raise StructuralChange("facilities, quality, arcs, permits, processors or settings changed")
    supply_quality, demand_quality = _quality_by_id(prepared)
    if not (supply_quality.equals(kept.supply_quality) and demand_quality.equals(kept.demand_quality)):
        raise StructuralChange("the streams' quality changed")
    old_s, old_d = r.candidates.supplies, r.candidates.demands
    changes = r.changes_from(_in_order_of(prepared.supplies, old_s, "supply_id"),
                             _in_order_of(prepared.demands, old_d, "demand_id"))
    # What the re-optimisation does not move: an arc's capacity made from its demand's amount (a substitution's
    # own share), and the heat pipes of energy streams.
    for name, table in (("supply_amount", old_s), ("demand_amount", old_d)):
        rows = np.fromiter(changes.get(name, {}), np.int64)
        if len(rows) and (table["quantity"].to_numpy()[rows] == "energy").any():
            raise StructuralChange("an energy stream's amount changed")
    for name in ("demand_amount", "virgin_price"):
        rows = np.fromiter(changes.get(name, {}), np.int64)
        if len(rows):
            arcs = r.candidates.arcs
            into = np.isin(arcs["d"].to_numpy(np.int64), rows)
            if np.isfinite(arcs["capacity_t_per_yr"].to_numpy(float)[into]).any():
                raise StructuralChange("a changed demand has arcs of limited capacity")
    if changes:
        r.change(**changes)
    return _optimum_tables(r.candidates, r.state.full, r.solution)


def _updated(kept: _Kept, region: Region) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The optimum of ``region`` from the kept one when its candidate arcs changed but not its rows
    (symbiosis.exchange.incremental.Reoptimiser.update: the region's candidates made again, the model's
    changed arcs retired and entered anew, every arc priced); raises StructuralChange otherwise (a new or
    removed stream, a demand reached for the first time, a changed processor or limit). ``kept`` then
    describes the region."""
    from symbiosis.candidates import candidates, prepare

    if region.time is not None:
        from symbiosis.exchange.incremental import StructuralChange

        raise StructuralChange("a programme with periods is solved whole")
    r = kept.reoptimiser
    r.update(candidates(region))
    prepared = prepare(region)
    kept.structure = _structure(region, prepared.parameters)
    kept.supply_quality, kept.demand_quality = _quality_by_id(prepared)
    return _optimum_tables(r.candidates, r.state.full, r.solution)


def _first_optimum(region: Region) -> tuple[_Kept, pd.DataFrame, pd.DataFrame]:
    """The whole programme solved by column generation, its model kept for re-optimising."""
    from symbiosis.candidates import candidates, prepare
    from symbiosis.exchange.incremental import Reoptimiser

    prepared = prepare(region)
    cands = candidates(region)
    r = Reoptimiser(cands, carbon_price=float(cands.parameters["carbon_price"]))  # type: ignore[arg-type]
    if len(r.solution.x) != len(cands.arcs):
        raise ValueError("the kept solution does not cover every candidate arc")
    kept = _Kept(r, _structure(region, prepared.parameters), *_quality_by_id(prepared))
    supplies, exchanges = _optimum_tables(r.candidates, r.state.full, r.solution)
    return kept, supplies, exchanges


def _solve_programme(key: str, region: Region, whole: bool = True
                     ) -> tuple[pd.DataFrame, pd.DataFrame, float, str] | str:
    """In the child process: the optimum of ``region`` (a programme's snapshot; ``key`` names the programme),
    **re-optimised** from the programme's kept optimum when only amounts and prices of its streams changed
    since (symbiosis.exchange.incremental.Reoptimiser: the blocks the change touches are solved again, every
    arc is priced; the same optimum as a solve of the whole programme), else **solved** whole by column
    generation and kept. A programme with periods or stores, or one whose solve keeps no model, is solved by
    :func:`_solve` (symbiosis.pipeline.optimise) and nothing is kept. Returns supplies, exchanges, seconds and
    how (``re-optimised`` or ``solved``); without solving, why the change needs a whole solve when ``whole`` is
    false (the server waits for the refresh interval of whole solves, then asks again)."""
    from symbiosis.errors import SymbiosisError
    from symbiosis.exchange.incremental import StructuralChange

    started = time.perf_counter()
    kept = _kept.pop(key, None)
    why = "no optimum kept in this process's solver"
    if kept is not None:
        try:
            try:
                supplies, exchanges = _reoptimised(kept, region)
            except StructuralChange:
                # Arcs that moved (a facility's location, a stream's composition, a capacity that follows an
                # amount): the whole region's candidates, re-optimised in the blocks they touch.
                supplies, exchanges = _updated(kept, region)
        except StructuralChange as exc:
            why = str(exc)
        except Exception as exc:  # noqa: BLE001 - whatever failed, the whole solve below still answers
            why = f"the re-optimisation failed ({type(exc).__name__}: {exc})"
        else:
            _kept[key] = kept
            return supplies, exchanges, time.perf_counter() - started, "re-optimised"
    if not whole:
        return why
    if region.time is None:
        try:
            kept, supplies, exchanges = _first_optimum(region)
        except (SymbiosisError, ValueError) as exc:  # solved by the pipeline below, which says what is wrong
            logger.info("programme %s: not kept for re-optimisation (%s)", key, exc)
        else:
            _kept[key] = kept
            return supplies, exchanges, time.perf_counter() - started, "solved"
    supplies, exchanges, seconds = _solve(region)
    return supplies, exchanges, seconds, "solved"


def warm_up() -> threading.Thread:
    """In the background: load every programme and start its first optimum (``symbiosis serve`` calls it on
    start, so that the first partner searches do not all wait for the first solve)."""

    def work() -> None:
        from django.db import connection

        from .models import Programme

        try:
            for programme in Programme.objects.all():
                _want_optimum(_entry(programme.pk), snapshot(programme))
        except Exception:  # a programme that does not load: its searches will say why
            logger.exception("warming up the partner searches failed")
        finally:
            connection.close()  # this thread's own connection: never left open

    thread = threading.Thread(target=work, name="symbiosis-warm-up", daemon=True)
    thread.start()
    return thread


def current_version(programme_pk: int) -> int:
    from .models import Programme

    return int(Programme.objects.filter(pk=programme_pk).values_list("data_version", flat=True).get())


def snapshot(programme: Any, *, load: bool = True) -> Snapshot | Any:
    """The programme's region at its current data version (built once per version): the kept snapshot
    brought up to date from the programme's changes (:func:`record_change`) when every change since has its
    facility's tables, else loaded from the database (``load=False``: None instead)."""
    from . import bridge

    entry = _entry(programme.pk)
    _name_shared(entry, programme)
    version = current_version(programme.pk)
    with entry.lock:
        if entry.snapshot is not None and entry.snapshot.version >= version:
            return entry.snapshot
    with entry.build:
        with entry.lock:  # built by another thread while this one waited
            if entry.snapshot is not None and entry.snapshot.version >= version:
                return entry.snapshot
            old = entry.snapshot
        # The version is read before the rows: a write that lands in between makes the snapshot newer than its
        # label (the next search rebuilds, or replays that change again, which leaves it as it is), never older.
        version = current_version(programme.pk)
        built = _replayed(programme.pk, old, version) if old is not None else None
        if built is None:
            if not load:
                return None
            started = time.perf_counter()
            built = Snapshot(version, bridge.load_programme_region(programme))
            logger.info("loaded programme %s at data version %d in %.1f s (process %d)", programme.pk, version,
                        time.perf_counter() - started, os.getpid())
        with entry.lock:
            if entry.snapshot is None or entry.snapshot.version < built.version:
                entry.snapshot = built
            return entry.snapshot if entry.snapshot.version >= built.version else built


def record_change(programme: Any, checked: Any) -> None:
    """In the transaction of a write, after ``Programme.touch``: the row of the new data version, with the
    facility's tables as the check loaded them (``checked``, a :class:`symbiosis.web.bridge.CheckedRow` of a
    flow) when they are still the facility's: no change to it, and no change without a row, came between the
    check and this write. Keeps the newest 1,000 rows of the programme."""
    import pickle

    from .models import ProgrammeChange

    version = int(programme.data_version)
    part = None
    facility_id = ""
    if checked is not None and checked.region is not None and checked.version >= 0:
        facility_id = checked.facility_id
        between = ProgrammeChange.objects.filter(programme=programme, version__gt=checked.version,
                                                 version__lt=version)
        if between.count() == version - checked.version - 1 and not between.filter(facility_id=facility_id).exists():
            region = checked.region
            part = pickle.dumps((region.facilities, region.flows, region.model_figures, region.energy_efficiency),
                                protocol=pickle.HIGHEST_PROTOCOL)
    ProgrammeChange.objects.create(programme=programme, version=version, facility_id=facility_id, part=part)
    ProgrammeChange.objects.filter(programme=programme, version__lte=version - 1000).delete()


def _replayed(programme_pk: int, old: Snapshot, version: int) -> Snapshot | None:
    """``old`` brought to ``version`` by the changes recorded since (None when one has no facility tables)."""
    import pickle

    from .models import ProgrammeChange

    if version - old.version > 200:
        return None
    rows = list(ProgrammeChange.objects.filter(programme_id=programme_pk, version__gt=old.version,
                                               version__lte=version).order_by("version")
                .values_list("version", "facility_id", "part"))
    if len(rows) != version - old.version or any(part is None for _v, _f, part in rows):
        return None
    snap = old
    for v, facility_id, part in rows:
        facilities, flows, figures, efficiency = pickle.loads(bytes(part))  # noqa: S301 - written by the server
        loaded = dataclasses.replace(snap.region, facilities=facilities, flows=flows, model_figures=figures,
                                     energy_efficiency=efficiency)
        region = patched(snap.region, loaded, facility_id)
        if region is None:
            return None
        snap = _patched_snapshot(snap, v, region, loaded, facility_id)
    return snap


def _want_optimum(entry: _Programme, snap: Snapshot) -> None:
    """Solve the optimum of ``snap`` (or of a newer snapshot) unless it is solved or being solved."""
    with entry.lock:
        if entry.optimum is not None and entry.optimum.version >= snap.version:
            return
        if entry.wanted is None or entry.wanted.version < snap.version:
            entry.wanted = snap
        if entry.solving:
            return
        entry.solving = True
        entry.error = None
    threading.Thread(target=_solve_loop, args=(entry,), name="symbiosis-optimum", daemon=True).start()


def refresh_pause(last_seconds: float | None, since_last_start: float, exact_below_s: float,
                  refresh_min_s: float) -> float:
    """Seconds to wait before the next solve of a programme: none for a small programme (its last solve took at
    most ``exact_below_s``: its searches wait for the exact answer) or before the first solve; for a large one,
    what is left of ``refresh_min_s`` since the last solve started."""
    if last_seconds is None or last_seconds <= exact_below_s:
        return 0.0
    return max(0.0, refresh_min_s - since_last_start)


def _solve_loop(entry: _Programme) -> None:
    """Solve the newest wanted snapshot until the optimum is of the newest one (no database access here); on a
    large programme at most one solve per ``settings.PARTNERS_REFRESH_MIN_S`` (:func:`refresh_pause`).

    Several server processes (``symbiosis serve --workers N``) share one solver per programme: the process
    that takes the programme's solver lock (a file lock in ``SYMBIOSIS_WEB_DIR/optima/``) solves and writes
    the optimum to a file named by its data version; the others load the newest such file instead of solving,
    and count the refresh interval from the start of the last solve of any of them."""
    from django.conf import settings

    while True:
        _take_shared(entry)
        with entry.lock:
            snap = entry.wanted
            if entry.closed or snap is None or (entry.optimum is not None and entry.optimum.version >= snap.version):
                entry.solving = False
                entry.lock.notify_all()
                return
            now, wall = time.monotonic(), time.time()
            since = min(now - entry.last_start, wall - entry.shared_started)
            since_whole = min(now - entry.last_whole_start, wall - entry.shared_whole_started)
            size = entry.optimum.size_seconds if entry.optimum is not None else None
            # A re-optimisation may start PARTNERS_REOPTIMISE_MIN_S after the last solve started; a solve of the
            # whole programme (a change the child cannot re-optimise) PARTNERS_REFRESH_MIN_S after the last one.
            whole_pause = refresh_pause(size, since_whole, settings.PARTNERS_EXACT_OPTIMUM_S,
                                        settings.PARTNERS_REFRESH_MIN_S)
            pause = whole_pause if entry.needs_whole else refresh_pause(
                size, since, settings.PARTNERS_EXACT_OPTIMUM_S, settings.PARTNERS_REOPTIMISE_MIN_S)
            if pause > 0:  # woken early when closed; another process's optimum is looked for every second
                entry.lock.wait_for(lambda: entry.closed, timeout=min(pause, 1.0))
                continue
        lock = _solver_lock(entry)
        if lock is False:  # another process is solving this programme: wait for its optimum
            with entry.lock:
                entry.lock.wait_for(lambda: entry.closed, timeout=0.5)
            continue
        try:
            if _take_shared(entry):  # written while this process waited for the lock
                continue
            entry.last_start, started_wall = time.monotonic(), time.time()
            try:
                answer = _solver().submit(_solve_programme, entry.key, snap.region, whole_pause <= 0).result()
            except Exception as exc:  # the searches waiting must hear of it, whatever failed
                with entry.lock:
                    entry.error = f"the regional optimum could not be solved: {type(exc).__name__}: {exc}"
                    entry.solving = False
                    entry.wanted = None
                    entry.lock.notify_all()
                return
            if isinstance(answer, str):  # not re-optimisable, and a whole solve must wait for its interval
                logger.info("programme %s at data version %d is solved whole after the refresh interval: %s",
                            entry.shared.name if entry.shared else "?", snap.version, answer)
                entry.needs_whole = True
                continue
            supplies, exchanges, seconds, how = answer
            entry.needs_whole = False
            if how == "solved":
                entry.last_whole_start = entry.last_start
            with entry.lock:
                before = entry.optimum
            full = (None if how == "solved" else before.size_seconds if before is not None else None)
            optimum = Optimum(snap.version, supplies, exchanges, seconds, how, full)
            logger.info("%s the optimum of programme %s at data version %d in %.1f s (process %d)",
                        how, entry.shared.name if entry.shared else "?", snap.version, seconds, os.getpid())
            _write_shared(entry, optimum, started_wall)
            with entry.lock:
                if entry.optimum is None or entry.optimum.version < snap.version:
                    entry.optimum = optimum
                entry.error = None
                entry.lock.notify_all()
        finally:
            if lock is not None and lock is not False:
                lock.close()  # releases the file lock


def _name_shared(entry: _Programme, programme: Any) -> None:
    """The folder of the programme's shared optima: by primary key and creation time (a database replaced
    under the same folder, as the tests do, never reads another programme's optimum)."""
    if entry.shared is not None:
        return
    from django.conf import settings

    created = getattr(programme, "created", None)
    stamp = int(created.timestamp() * 1_000_000) if created is not None else 0
    folder = Path(settings.WEB_DIR) / "optima" / f"{programme.pk}-{stamp}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:  # a read-only folder: this process solves for itself
        logger.warning("cannot create %s: optima are not shared between server processes", folder)
        return
    entry.shared = folder


def _solver_lock(entry: _Programme) -> Any:
    """The programme's solver lock, taken without waiting: an open file holding it, False when another process
    holds it, None when optima are not shared (no folder, or no ``fcntl``: each process solves its own)."""
    if entry.shared is None:
        return None
    try:
        import fcntl
    except ImportError:  # Windows: one process (waitress)
        return None
    handle = (entry.shared / "solver.lock").open("a")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return False
    return handle


def _shared_versions(folder: Path) -> list[int]:
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    return sorted(int(n[:-4]) for n in names if n.endswith(".pkl") and n[:-4].isdigit())


def _take_shared(entry: _Programme) -> bool:
    """Install the newest optimum another process wrote, if newer than this process's; True if one was."""
    import pickle

    if entry.shared is None:
        return False
    versions = _shared_versions(entry.shared)
    if not versions:
        return False
    newest = versions[-1]
    with entry.lock:
        if entry.optimum is not None and entry.optimum.version >= newest:
            return False
    try:
        with (entry.shared / f"{newest:012d}.pkl").open("rb") as handle:
            supplies, exchanges, seconds, started, how, full = pickle.load(handle)  # noqa: S301 - by the server
    except (OSError, EOFError, pickle.UnpicklingError, ValueError):  # pruned meanwhile, or another version's
        return False
    with entry.lock:
        entry.shared_started = max(entry.shared_started, started)
        if how == "solved":
            entry.shared_whole_started = max(entry.shared_whole_started, started)
        if entry.optimum is not None and entry.optimum.version >= newest:
            return False
        entry.optimum = Optimum(newest, supplies, exchanges, seconds, how, full)
        entry.error = None
        entry.lock.notify_all()
    return True


def _write_shared(entry: _Programme, optimum: Optimum, started_wall: float) -> None:
    """Write the optimum for the other processes (complete or not at all: renamed into place), keeping the
    newest three."""
    import pickle

    if entry.shared is None:
        return
    path = entry.shared / f"{optimum.version:012d}.pkl"
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with partial.open("wb") as handle:
        pickle.dump((optimum.supplies, optimum.exchanges, optimum.seconds, started_wall, optimum.how,
                     optimum.full_seconds), handle,
                    protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(partial, path)
    entry.shared_started = max(entry.shared_started, started_wall)
    if optimum.how == "solved":
        entry.shared_whole_started = max(entry.shared_whole_started, started_wall)
    for old in _shared_versions(entry.shared)[:-3]:
        (entry.shared / f"{old:012d}.pkl").unlink(missing_ok=True)


def optimum_for(programme: Any, snap: Snapshot, exact_below_s: float, timeout_s: float = 600.0) -> Optimum:
    """The optimum a search of ``snap`` uses (module docstring); waits for the first one."""
    entry = _entry(programme.pk)
    _want_optimum(entry, snap)
    deadline = time.monotonic() + timeout_s
    with entry.lock:
        while True:
            best = entry.optimum
            if best is not None and best.version >= snap.version:
                return best
            if best is not None and best.size_seconds > exact_below_s:
                return best  # a large programme: the newest optimum, labelled on the page
            if entry.error is not None and not entry.solving:
                raise RuntimeError(entry.error)
            left = deadline - time.monotonic()
            if left <= 0:
                if best is not None:
                    return best
                raise TimeoutError("the regional optimum is still being solved; try again in a minute")
            entry.lock.wait(min(left, 1.0))


def search(programme: Any, flow_id: str, exact_below_s: float) -> Search:
    """A partner search of one of the programme's streams, reusing what its data version shares.

    A search is kept under the contents of what it reads (the stream and its quality rows, the incoming flows
    of the materials it can replace with theirs, the facilities) and the optimum it used, not under the data
    version: an edit elsewhere in the programme leaves it valid, an edit of the stream, of a receiver or of a
    facility makes a new one. The digests of those contents are kept per snapshot (and inherited by a
    snapshot patched from it), so that a search whose result is kept costs a few milliseconds."""
    snap = snapshot(programme)
    optimum = optimum_for(programme, snap, exact_below_s)
    entry = _entry(programme.pk)
    quick = (flow_id, snap.version, optimum.version)
    with entry.lock:
        hit = entry.recent.get(quick)
        if hit is not None:
            return hit
    region = snap.region
    flows = region.flows
    supply = flows[flows["flow_id"].to_numpy() == flow_id]
    if supply.empty:  # find_partners says the flow is unknown, with its "did you mean"
        return Search(_find(region, flow_id, optimum), snap.version, optimum.version)
    primaries = _primaries(region, str(supply["material"].iloc[0]))
    own_quality = region.quality[region.quality["flow_id"].to_numpy() == flow_id]
    key = (flow_id, _digest(supply, own_quality), _inputs_digest(snap, primaries), _facilities_digest(snap),
           optimum.version)
    with entry.lock:
        hit = entry.searches.get(key)
        if hit is not None:
            entry.searches.move_to_end(key)
    if hit is None:
        result = _find(search_region(region, flow_id), flow_id, optimum)
        records, demand_ids = _records(result)
        hit = Search(result, snap.version, optimum.version, records, demand_ids)
        with entry.lock:
            entry.searches[key] = hit
            while len(entry.searches) > MAX_SEARCHES:
                entry.searches.popitem(last=False)
    found = Search(hit.result, snap.version, optimum.version, hit.records, hit.demand_ids)
    with entry.lock:
        entry.recent[quick] = found
        while len(entry.recent) > MAX_SEARCHES:
            entry.recent.popitem(last=False)
    return found


#: The columns of a ranking a page shows (symbiosis.web.views.partner_rows), per t or per MWh.
RECORD_COLUMNS = ("facility_id", "demand_id", "material", "distance_km", "quality_fit", "used_by_optimum",
                  "what_would_make_it_viable", "supplier_value_per_t", "receiver_value_per_t", "co2e_avoided_per_t",
                  "supplier_value_per_mwh", "receiver_value_per_mwh", "co2e_avoided_t_per_mwh")


def _records(result: Any) -> tuple[list[dict[str, Any]], list[str]]:
    partners = result.partners
    if not len(partners):
        return [], []
    columns = [c for c in RECORD_COLUMNS if c in partners.columns]
    # column by column as Python values (what to_dict("records") gives, without boxing cell by cell)
    values = [partners[c].astype(str).tolist() if c == "facility_id" else partners[c].tolist() for c in columns]
    records = [dict(zip(columns, row, strict=True)) for row in zip(*values, strict=True)]
    return records, [str(d) for d in partners["demand_id"]]


def _primaries(region: Region, material: str) -> frozenset[str]:
    subs = region.reference.substitutions
    return frozenset(subs.loc[subs["secondary_material"] == material, "primary_material"])


def _inputs_digest(snap: Snapshot, primaries: frozenset[str]) -> str:
    """Digest of the incoming flows of ``primaries`` and their quality rows (kept on the snapshot)."""
    hit = snap.inputs_digests.get(primaries)
    if hit is not None:
        return hit
    flows = snap.region.flows
    inputs = flows[(flows["direction"] == "in").to_numpy() & flows["material"].isin(primaries).to_numpy()]
    quality = snap.region.quality[snap.region.quality["flow_id"].isin(set(inputs["flow_id"]))]
    digest = _digest(inputs, quality)
    snap.inputs_digests[primaries] = digest
    return digest


def _digest(*frames: pd.DataFrame) -> str:
    """A digest of the frames' contents (row order included)."""
    h = hashlib.blake2b(digest_size=16)
    for frame in frames:
        h.update(",".join(map(str, frame.columns)).encode())
        h.update(pd.util.hash_pandas_object(frame.astype(str), index=False).to_numpy().tobytes())
    return h.hexdigest()


def _facilities_digest(snap: Snapshot) -> str:
    if snap.facilities_digest is None:
        snap.facilities_digest = _digest(snap.region.facilities)
    return snap.facilities_digest


def search_region(region: Region, flow_id: str) -> Region:
    """The part of ``region`` a partner search of ``flow_id`` reads: the stream, the incoming flows of the
    materials it can replace (with their quality rows) and the facilities of those flows. Candidates are built
    per supply-demand pair, so this part's candidates for the stream are those of the whole region
    (tests/test_web_search_cache.py checks it on every stream of two regions), at the cost of one stream."""
    flows = region.flows
    supply = flows[flows["flow_id"] == flow_id]
    if supply.empty:
        return region  # find_partners says the flow is unknown, with its "did you mean"
    subs = region.reference.substitutions
    primaries = set(subs.loc[subs["secondary_material"] == supply["material"].iloc[0], "primary_material"])
    keep = (flows["flow_id"] == flow_id) | ((flows["direction"] == "in") & flows["material"].isin(primaries))
    part_flows = flows[keep].reset_index(drop=True)
    quality = region.quality[region.quality["flow_id"].isin(set(part_flows["flow_id"]))].reset_index(drop=True)
    # The facilities of those flows only: the candidates' per-facility work (positions, coordinates) then
    # costs what the part's facilities do, not the programme's thousands.
    facilities = region.facilities[region.facilities["facility_id"].isin(set(part_flows["facility_id"]))]
    return dataclasses.replace(region, flows=part_flows, quality=quality,  # shares the rest, read only
                               facilities=facilities.reset_index(drop=True))


def _find(part: Region, flow_id: str, optimum: Optimum) -> Any:
    """find_partners on the stream's part of the region (:func:`search_region`)."""
    from symbiosis.candidates import candidates
    from symbiosis.partners import find_partners

    return find_partners(part, flow_id, results=optimum, cands=candidates(part))


def changed(programme: Any, checked: Any = None) -> None:
    """After a write: bring the kept snapshot up to date from the recorded changes (:func:`record_change`;
    a flow saved through the form replays its facility, a few milliseconds) and start the optimum of the new
    version in the background. When a change cannot be replayed, the next search loads the programme again."""
    snap = snapshot(programme, load=False)
    if snap is not None:
        _want_optimum(_entry(programme.pk), snap)


def _incoming_materials(flows: pd.DataFrame) -> set[str]:
    return set(flows.loc[flows["direction"] == "in", "material"].astype(str))


def _patched_snapshot(old: Snapshot, version: int, region: Region, part: Region, facility_id: str) -> Snapshot:
    """The snapshot of ``region`` (``old``'s with ``facility_id``'s rows from ``part``), with the digests of
    ``old`` the patch cannot have changed: those of material sets none of the facility's incoming flows (before
    or after) is of, and the facilities' digest when the facility's row is unchanged."""
    flows_before = old.region.flows[old.region.flows["facility_id"] == facility_id]
    touched = _incoming_materials(flows_before) | _incoming_materials(part.flows)
    new = Snapshot(version, region)
    new.inputs_digests = {k: v for k, v in old.inputs_digests.items() if not (k & touched)}
    before = old.region.facilities[old.region.facilities["facility_id"] == facility_id].reset_index(drop=True)
    after = part.facilities.reset_index(drop=True)
    if old.facilities_digest is not None and list(before.columns) == list(after.columns) and \
            before.astype(str).equals(after.astype(str)):
        new.facilities_digest = old.facilities_digest
    return new


def _replace_rows(frame: pd.DataFrame, new: pd.DataFrame, facility_id: str) -> pd.DataFrame | None:
    """``frame`` with its rows of ``facility_id`` replaced by ``new``'s, where the first of them stood."""
    if list(frame.columns) != list(new.columns):
        return None
    mine = (frame["facility_id"] == facility_id).to_numpy()
    positions = np.flatnonzero(mine)
    if len(positions) and positions[-1] - positions[0] + 1 == len(positions):  # together (once patched): one copy
        return pd.concat([frame.iloc[:positions[0]], new, frame.iloc[positions[-1] + 1:]], ignore_index=True)
    at = int(mine.argmax()) if mine.any() else len(frame)
    rest = frame[~mine]
    before = int((~mine[:at]).sum())
    return pd.concat([rest.iloc[:before], new, rest.iloc[before:]], ignore_index=True)


def patched(region: Region, part: Region, facility_id: str) -> Region | None:
    """``region`` with one facility's rows (facility, flows, model figures, energy efficiency) taken from
    ``part``, that facility loaded alone; None where the tables do not line up (then the region is reloaded)."""
    facilities = _replace_rows(region.facilities, part.facilities, facility_id)
    flows = _replace_rows(region.flows, part.flows, facility_id)
    if facilities is None or flows is None:
        return None
    out = dataclasses.replace(region, facilities=facilities, flows=flows)  # the other tables are shared, read only
    if len(region.model_figures) or len(part.model_figures):
        if not len(region.model_figures):
            out.model_figures = part.model_figures.copy()
        elif len(part.model_figures):
            figures = _replace_rows(region.model_figures, part.model_figures, facility_id)
            if figures is None:
                return None
            out.model_figures = figures
        else:
            out.model_figures = region.model_figures[region.model_figures["facility_id"] != facility_id]
    efficiency = {k: v for k, v in region.energy_efficiency.items() if k != facility_id}
    efficiency.update(part.energy_efficiency)
    out.energy_efficiency = efficiency
    return out
