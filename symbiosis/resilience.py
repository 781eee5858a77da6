"""Who depends on whom: remove each facility (or exchange) in turn, re-optimise, and rank what is lost.

The benefit of the network is what the optimum saves against business as usual, in money, CO2e and waste
diverted. Without facility f the region is re-optimised (its flows are gone, so business as usual changes
too); the loss is the benefit with f minus the benefit without f. Exchanges of the base optimum that vanish
are listed as failing; supplies whose partner was removed but that find another receiver are listed as
re-routed. networkx measures of the exchange graph (degree, betweenness, components) sit beside the ranking.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import networkx as nx
import pandas as pd

from symbiosis.region import Region

logger = logging.getLogger(__name__)


@dataclass
class Resilience:
    facilities: pd.DataFrame
    exchanges: pd.DataFrame
    graph: pd.DataFrame


def _benefit(kpis: dict[str, object]) -> tuple[float, float, float]:
    return (float(kpis["net_cost_saving"]), float(kpis["co2e_avoided_t"]),  # type: ignore[arg-type]
            float(kpis["waste_diverted_t"]))  # type: ignore[arg-type]


def exchange_graph(exchanges: pd.DataFrame, facility_ids: list[str]) -> nx.DiGraph:
    graph = nx.DiGraph()
    graph.add_nodes_from(facility_ids)
    for row in exchanges.itertuples():
        if row.supply_facility == row.demand_facility:
            continue
        if graph.has_edge(row.supply_facility, row.demand_facility):
            graph[row.supply_facility][row.demand_facility]["t_per_yr"] += row.amount_t_per_yr
        else:
            graph.add_edge(row.supply_facility, row.demand_facility, t_per_yr=row.amount_t_per_yr)
    return graph


def graph_measures(exchanges: pd.DataFrame, facility_ids: list[str]) -> pd.DataFrame:
    graph = exchange_graph(exchanges, facility_ids)
    undirected = graph.to_undirected()
    betweenness = nx.betweenness_centrality(undirected, normalized=True)
    component = {}
    for k, nodes in enumerate(sorted(nx.connected_components(undirected), key=len, reverse=True)):
        for node in nodes:
            component[node] = k
    return pd.DataFrame({
        "facility_id": facility_ids,
        "degree": [undirected.degree(f) for f in facility_ids],
        "in_degree": [graph.in_degree(f) for f in facility_ids],
        "out_degree": [graph.out_degree(f) for f in facility_ids],
        "betweenness": [betweenness[f] for f in facility_ids],
        "component": [component[f] for f in facility_ids],
    })


def resilience(region: Region, *, only_participants: bool = False, include_exchanges: bool = False,
               progress: Callable[[str, int, int], None] | None = None, **overrides: Any) -> Resilience:
    """Rank facilities (and optionally exchanges) by the benefit the network loses without them."""
    from symbiosis.pipeline import optimise
    from symbiosis.scenarios import RemoveFacility, _remove_facility

    base = optimise(region, **overrides)
    cost0, co20, waste0 = _benefit(base.kpis)
    base_ex = base.exchanges.set_index(["supply_id", "demand_id"])
    participants = set(base.exchanges["supply_facility"]) | set(base.exchanges["demand_facility"])
    ids = list(region.facilities["facility_id"])
    todo = [f for f in ids if f in participants] if only_participants else ids
    rows = []
    for k, facility in enumerate(todo, start=1):
        if progress:
            progress(facility, k, len(todo))
        without = region.copy()
        from symbiosis.errors import Problems

        _remove_facility(without, RemoveFacility(facility=facility), {}, "resilience", Problems())
        results = optimise(without, **overrides)
        cost, co2, waste = _benefit(results.kpis)
        new_ex = results.exchanges.set_index(["supply_id", "demand_id"])
        failing = [p for p in base_ex.index if p not in new_ex.index]
        touched = base.exchanges[(base.exchanges["supply_facility"] == facility)
                                 | (base.exchanges["demand_facility"] == facility)]
        rerouted = sorted({sid for sid in touched["supply_id"]
                           if sid in set(results.exchanges["supply_id"])})
        rows.append({
            "facility_id": facility, "cost_benefit_lost": cost0 - cost, "co2e_benefit_lost_t": co20 - co2,
            "waste_diversion_lost_t": waste0 - waste, "n_exchanges_failing": len(failing),
            "exchanges_failing": "; ".join(f"{s}→{d}" for s, d in failing), "supplies_rerouted": "; ".join(rerouted),
        })
    table = pd.DataFrame(rows)
    measures = graph_measures(base.exchanges, ids)
    if len(table):
        table = table.merge(measures, on="facility_id", how="left")
        table = table.sort_values(["cost_benefit_lost", "co2e_benefit_lost_t"], ascending=False).reset_index(drop=True)
        table.insert(0, "rank", range(1, len(table) + 1))
    exchange_rows = []
    if include_exchanges and region.time is not None:  # the exchange removals below solve the annual model
        from symbiosis.errors import SymbiosisError

        raise SymbiosisError("resilience --exchanges does not handle periods or stores yet (region.yaml "
                             "`periods:`, stores.csv): rank the facilities without --exchanges")
    if include_exchanges:
        from symbiosis.candidates import candidates as build_candidates
        from symbiosis.exchange import ExchangeModel
        from symbiosis.results import evaluate

        cands = build_candidates(region, **{k: v for k, v in overrides.items() if k != "weights"})
        for row in base.exchanges.itertuples():
            mask = ~((cands.arcs["supply_id"] == row.supply_id) & (cands.arcs["demand_id"] == row.demand_id))
            reduced = type(cands)(cands.supplies, cands.demands, cands.arcs[mask].reset_index(drop=True),
                                  cands.supply_quality, cands.demand_quality, cands.screening, cands.parameters)
            solution = ExchangeModel(reduced).solve()
            res = evaluate(region, reduced, solution)
            cost, co2, waste = _benefit(res.kpis)
            exchange_rows.append({"supply_id": row.supply_id, "demand_id": row.demand_id,
                                  "supply_facility": row.supply_facility, "demand_facility": row.demand_facility,
                                  "cost_benefit_lost": cost0 - cost, "co2e_benefit_lost_t": co20 - co2,
                                  "waste_diversion_lost_t": waste0 - waste})
    exchanges = pd.DataFrame(exchange_rows)
    if len(exchanges):
        exchanges = exchanges.sort_values("cost_benefit_lost", ascending=False).reset_index(drop=True)
    return Resilience(facilities=table, exchanges=exchanges, graph=measures)
