"""The solver's child re-optimises a programme's optimum after a change of amounts and prices
(symbiosis.web.search_cache._solve_programme, symbiosis.exchange.incremental.Reoptimiser) and gives the optimum a
solve of the whole programme gives; a structural change is solved whole."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from symbiosis.candidates import candidates
from symbiosis.exchange import solve_exchange
from symbiosis.inputs import load_region
from symbiosis.pipeline import optimise
from symbiosis.reference import data_dir
from symbiosis.web import search_cache


@pytest.fixture(autouse=True)
def _forget() -> None:
    search_cache._kept.clear()
    yield
    search_cache._kept.clear()


def _objective(region) -> float:  # type: ignore[no-untyped-def]
    """The LP optimum of the whole region, solved from nothing (HiGHS on every candidate arc)."""
    cands = candidates(region)
    return float(solve_exchange(cands, carbon_price=float(cands.parameters["carbon_price"])).objective)


def _with_amount(region, flow_id: str, factor: float):  # type: ignore[no-untyped-def]
    flows = region.flows.copy()
    at = flows.index[flows["flow_id"] == flow_id]
    flows.loc[at, "amount_t_per_yr"] = flows.loc[at, "amount_t_per_yr"] * factor
    return dataclasses.replace(region, flows=flows)


def _exchanged(supplies: pd.DataFrame) -> pd.Series:
    return supplies.set_index("supply_id")["exchanged_t_per_yr"].fillna(0.0).sort_index()


def test_an_edited_amount_is_re_optimised_to_the_optimum_of_a_whole_solve() -> None:
    region = load_region(data_dir() / "regions" / "kalundborg")
    _s, _e, _seconds, how = search_cache._solve_programme("k", region)
    assert how == "solved" and "k" in search_cache._kept
    # Asnæs's gypsum and fly ash: 20 % more, then 40 % less (each a change from the one before); the second
    # with the flows in another order, as a snapshot patched with one facility holds them
    for flow_id, factor in (("asnaes_fgd_gypsum", 1.2), ("asnaes_fly_ash", 0.6)):
        region = _with_amount(region, flow_id, factor)
        if factor < 1:
            region = dataclasses.replace(region, flows=region.flows.iloc[::-1].reset_index(drop=True))
        supplies, exchanges, _seconds, how = search_cache._solve_programme("k", region)
        assert how == "re-optimised"
        kept = search_cache._kept["k"].reoptimiser.solution.objective
        assert kept == pytest.approx(_objective(region), rel=1e-7)
        whole = optimise(region)
        # what searches read: the stream's amount exchanged and its shadow value, the pairs the optimum ships
        pd.testing.assert_series_equal(_exchanged(supplies), _exchanged(whole.supplies), rtol=1e-6, atol=1e-6)
        got = exchanges.set_index(["supply_id", "demand_id"])["amount_t_per_yr"].sort_index()
        expected = whole.exchanges.set_index(["supply_id", "demand_id"])["amount_t_per_yr"].sort_index()
        pd.testing.assert_series_equal(got, expected, rtol=1e-6, atol=1e-6)
        shipped = float(exchanges.loc[exchanges["supply_id"] == flow_id, "amount_t_per_yr"].sum())
        assert shipped > 0  # the edited stream is exchanged: the change reached the optimum


def test_a_synthetic_programme_with_processors_and_heat_re_optimises_to_the_same_objective(tmp_path: Path) -> None:
    from symbiosis.synthetic import generate_region

    region = load_region(generate_region(150, tmp_path / "r", seed=3))
    search_cache._solve_programme("s", region)
    r = search_cache._kept["s"].reoptimiser
    sup = r.candidates.supplies
    driven = np.zeros(len(sup), bool)
    driven[r.state.full.out_rows] = True
    free = sup.loc[(sup["quantity"] == "mass").to_numpy() & ~driven, "supply_id"].tolist()
    for flow_id in free[:3]:
        region = _with_amount(region, flow_id, 1.3)
        _s, _e, _seconds, how = search_cache._solve_programme("s", region)
        assert how == "re-optimised"
        assert search_cache._kept["s"].reoptimiser.solution.objective == pytest.approx(_objective(region), rel=1e-7)


def test_a_moved_facility_and_a_changed_composition_are_re_optimised_a_removed_stream_solved_whole() -> None:
    region = load_region(data_dir() / "regions" / "kalundborg")
    search_cache._solve_programme("m", region)
    # Gyproc 5 km further north: its arcs' distances and costs change, its rows do not (Reoptimiser.update).
    facilities = region.facilities.copy()
    facilities.loc[facilities["facility_id"] == "gyproc", "lat"] += 0.05
    moved = dataclasses.replace(region, facilities=facilities)
    assert len(candidates(moved).arcs) == len(candidates(region).arcs)
    assert not candidates(moved).arcs["transport_cost_per_t"].equals(candidates(region).arcs["transport_cost_per_t"])
    _s, _e, _seconds, how = search_cache._solve_programme("m", moved)
    assert how == "re-optimised"
    assert search_cache._kept["m"].reoptimiser.solution.objective == pytest.approx(_objective(moved), rel=1e-7)
    # A stream's composition: the quality values of Asnæs's gypsum a third higher.
    quality = moved.quality.copy()
    gypsum = (quality["flow_id"] == "asnaes_fgd_gypsum").to_numpy()
    assert gypsum.any()
    quality.loc[gypsum, "value"] = quality.loc[gypsum, "value"] * 1.3
    changed = dataclasses.replace(moved, quality=quality)
    _s, _e, _seconds, how = search_cache._solve_programme("m", changed)
    assert how == "re-optimised"
    assert search_cache._kept["m"].reoptimiser.solution.objective == pytest.approx(_objective(changed), rel=1e-7)
    # A removed stream changes the rows: solved whole.
    fewer = dataclasses.replace(changed, flows=changed.flows[changed.flows["flow_id"] != "asnaes_fly_ash"]
                                .reset_index(drop=True))
    supplies, _e, _seconds, how = search_cache._solve_programme("m", fewer)
    assert how == "solved" and "asnaes_fly_ash" not in set(supplies["supply_id"])
    assert search_cache._kept["m"].reoptimiser.solution.objective == pytest.approx(_objective(fewer), rel=1e-7)


class _Child:
    """The solver's child as the server sees it: re-optimises (``can``) or says why a whole solve is needed
    when it is not allowed yet."""

    def __init__(self, can: bool) -> None:
        self.can = can
        self.calls: list[bool] = []

    def submit(self, fn, key, region, whole):  # type: ignore[no-untyped-def]
        from concurrent.futures import Future

        self.calls.append(whole)
        done: Future = Future()
        done.set_result((pd.DataFrame(), pd.DataFrame(), 0.1, "re-optimised") if self.can
                        else (pd.DataFrame(), pd.DataFrame(), 30.0, "solved") if whole else "a moved facility")
        return done


@pytest.mark.parametrize("can", [True, False])
def test_a_large_programme_is_re_optimised_soon_and_solved_whole_at_most_once_an_interval(settings, monkeypatch,
                                                                                          can: bool) -> None:
    """Just after a whole solve of a large programme (30 s, more than PARTNERS_EXACT_OPTIMUM_S), the next change
    is re-optimised PARTNERS_REOPTIMISE_MIN_S after it; a change the child cannot re-optimise waits for
    PARTNERS_REFRESH_MIN_S since the whole solve. A re-optimised optimum keeps the whole solve's size, so the
    programme's searches still do not wait for the solver."""
    import threading
    import time

    settings.PARTNERS_EXACT_OPTIMUM_S = 5.0
    settings.PARTNERS_REFRESH_MIN_S = 3600.0
    settings.PARTNERS_REOPTIMISE_MIN_S = 1.0
    child = _Child(can)
    monkeypatch.setattr(search_cache, "_solver", lambda: child)
    entry = search_cache._entry(876543)
    entry.optimum = search_cache.Optimum(1, None, None, 30.0)  # type: ignore[arg-type]
    entry.last_start = entry.last_whole_start = time.monotonic()
    entry.wanted = search_cache.Snapshot(2, None)  # type: ignore[arg-type]
    entry.solving = True
    loop = threading.Thread(target=search_cache._solve_loop, args=(entry,), daemon=True)
    loop.start()
    loop.join(4.0)
    try:
        assert child.calls == [False]  # asked once, after the short interval, to re-optimise only
        if can:
            assert not loop.is_alive()
            assert entry.optimum.version == 2 and entry.optimum.how == "re-optimised"
            assert entry.optimum.size_seconds == 30.0  # still a large programme
        else:
            assert loop.is_alive() and entry.needs_whole  # waiting for the hour, not solving
            assert entry.optimum.version == 1
    finally:
        search_cache.clear()
        loop.join(5.0)
    assert not loop.is_alive()


def test_an_edited_stream_of_a_processor_is_re_optimised(tmp_path: Path) -> None:
    from symbiosis.synthetic import generate_region

    region = load_region(generate_region(150, tmp_path / "r", seed=3))
    search_cache._solve_programme("p", region)
    r = search_cache._kept["p"].reoptimiser
    driven = r.candidates.supplies["supply_id"].iloc[r.state.full.out_rows].tolist()
    assert driven, "the generated programme has processors with outputs"
    changed = _with_amount(region, driven[0], 1.4)  # its yield per unit of activity 40 % higher
    _s, _e, _seconds, how = search_cache._solve_programme("p", changed)
    assert how == "re-optimised"
    assert search_cache._kept["p"].reoptimiser.solution.objective == pytest.approx(_objective(changed), rel=1e-7)
