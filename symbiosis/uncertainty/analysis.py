"""The Monte Carlo of a region and what it tells: robustness of each exchange, spread of every KPI,
convergence with the number of samples, and which uncertain input moves what (sensitivity).

Statistics come from numpy (percentiles), scipy (ranks) and statsmodels (ordinary least squares for the
standardised regression coefficients); docs/uncertainty.md states the method.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from symbiosis.candidates import Candidates
from symbiosis.uncertainty.draws import Draws, draw, uncertain_inputs
from symbiosis.uncertainty.run import KPI_NAMES, KPIS, ChunkResult, KpiStatics, sample_kpis, solve_samples

logger = logging.getLogger(__name__)

#: An exchange in the optimum in at least this share of the samples is robust (drawn solid on the map).
ROBUST_PROBABILITY = 0.9
#: The KPIs a decision turns on, over which :func:`measure_first` ranks inputs (not the business-as-usual
#: totals, which every amount moves trivially).
DECISION_KPIS = ("net_cost_saving", "net_saving_incl_carbon", "co2e_avoided_t", "waste_diverted_t",
                 "virgin_avoided_t", "n_exchanges")
#: Inputs kept per output in the sensitivity table (ranked by |Spearman ρ|).
TOP_INPUTS = 20


@dataclass
class MonteCarlo:
    """Samples solved: ``kpis`` (samples × :data:`KPI_NAMES`, NaN rows for failed samples), ``flows`` (samples ×
    the arcs ``arcs`` that carry flow in some sample or in the base case), the base case's KPIs and flows."""

    draws: Draws
    kpis: np.ndarray
    arcs: np.ndarray
    flows: np.ndarray
    base_kpis: np.ndarray
    base_flows: np.ndarray
    failed: dict[int, str]
    candidates: Candidates
    parameters: dict[str, Any] = field(default_factory=dict)
    #: The base case's Solution (the stated amounts), for the run's results and map.
    base_solution: Any = None

    @property
    def ok(self) -> np.ndarray:
        return ~np.isnan(self.kpis).any(axis=1)


def monte_carlo(region: Any, candidates: Candidates, *, samples: int, seed: int, carbon_price: float | None = None,
                workers: int | None = None, scheduler: str | None = None, client: Any = None,
                progress: Callable[[int, int], None] | None = None, inputs: pd.DataFrame | None = None,
                timeout: float = 10.0) -> MonteCarlo:
    """Draw ``samples`` samples of the region's uncertain amounts (seeded with ``seed``) and solve each.

    ``inputs`` replaces the inputs :func:`uncertain_inputs` reads from ``region`` (a test builds its own).
    """
    from symbiosis.exchange import ExchangeModel

    started = time.perf_counter()
    if inputs is None:
        inputs = uncertain_inputs(region, candidates)
    price = float(carbon_price if carbon_price is not None else (candidates.parameters or {}).get("carbon_price", 0.0))
    draws = draw(inputs, samples, seed)
    base_model = ExchangeModel(candidates, carbon_price=price)
    base = base_model.solve()
    first_solve = time.perf_counter() - started
    base_kpis = sample_kpis(base_model.arrays, base, KpiStatics.of(candidates), price)
    solving = time.perf_counter()
    chunks = solve_samples(candidates, draws, carbon_price=price, workers=workers, scheduler=scheduler,
                           client=client, progress=progress, timeout=timeout, warm_model=base_model)
    seconds = time.perf_counter() - solving
    mc = collect(draws, chunks, candidates, base_kpis, base.x)
    mc.base_solution = base
    mc.parameters = {"samples": samples, "seed": seed, "carbon_price": price,
                     "workers": workers, "scheduler": scheduler or ("dask client" if client is not None else None),
                     "seconds_base": first_solve, "seconds_samples": seconds,
                     "seconds_per_sample": seconds / max(1, samples)}
    return mc


def collect(draws: Draws, chunks: list[ChunkResult], candidates: Candidates, base_kpis: np.ndarray,
            base_x: np.ndarray) -> MonteCarlo:
    """Assemble the workers' chunks (in sample order) into one :class:`MonteCarlo`."""
    n = draws.n_samples
    kpis = np.full((n, len(KPI_NAMES)), np.nan)
    used: list[tuple[np.ndarray, np.ndarray]] = [(np.zeros(0, np.int64), np.zeros(0))] * n
    failed: dict[int, str] = {}
    for chunk in chunks:
        kpis[chunk.first:chunk.first + len(chunk.kpis)] = chunk.kpis
        for i, pair in enumerate(chunk.used):
            used[chunk.first + i] = pair
        failed.update(chunk.errors)
    from symbiosis.uncertainty.run import FLOW_TOLERANCE

    base_arcs = np.flatnonzero(base_x > FLOW_TOLERANCE)
    arcs = np.unique(np.concatenate([base_arcs, *[idx for idx, _ in used]])).astype(np.int64)
    position = {a: k for k, a in enumerate(arcs.tolist())}
    flows = np.zeros((n, len(arcs)))
    for k, (idx, values) in enumerate(used):
        if len(idx):
            flows[k, [position[a] for a in idx.tolist()]] = values
    flows[np.isnan(kpis).any(axis=1)] = np.nan
    return MonteCarlo(draws, kpis, arcs, flows, base_kpis, base_x[arcs] if len(arcs) else np.zeros(0), failed,
                      candidates)


def _quantiles(values: np.ndarray) -> np.ndarray:
    """P5, P50, P95 over the rows (samples), ignoring failed samples (NaN)."""
    if values.shape[0] == 0 or np.isnan(values).all():
        return np.full((3, values.shape[1]), np.nan)
    return np.nanpercentile(values, [5, 50, 95], axis=0)


def kpi_table(mc: MonteCarlo) -> pd.DataFrame:
    """Per KPI: the base case, mean, standard deviation, P5/P50/P95 and the Monte Carlo standard error of the mean."""
    ok = mc.kpis[mc.ok]
    q = _quantiles(ok)
    n = len(ok)
    sd = ok.std(axis=0, ddof=1) if n > 1 else np.full(len(KPI_NAMES), np.nan)
    return pd.DataFrame({
        "kpi": KPI_NAMES, "unit": [unit for _, unit in KPIS], "base": mc.base_kpis,
        "mean": ok.mean(axis=0) if n else np.nan, "sd": sd, "p5": q[0], "p50": q[1], "p95": q[2],
        "standard_error": sd / np.sqrt(max(n, 1)), "n_samples": n,
    })


def exchange_table(mc: MonteCarlo, *, robust: float = ROBUST_PROBABILITY) -> pd.DataFrame:
    """Per arc that carries flow in some sample: the probability that it is in the optimum (its share of the
    samples with flow > 1e-6), with the binomial standard error, and P5/P50/P95 of its flow (0 where unused)."""
    arcs = mc.candidates.arcs
    sup, dem = mc.candidates.supplies, mc.candidates.demands
    ok = mc.ok
    flows = mc.flows[ok]
    n = int(ok.sum())
    from symbiosis.uncertainty.run import FLOW_TOLERANCE

    probability = (flows > FLOW_TOLERANCE).mean(axis=0) if n else np.full(len(mc.arcs), np.nan)
    q = _quantiles(flows) if n else np.full((3, len(mc.arcs)), np.nan)
    s = arcs["s"].to_numpy(np.int64)[mc.arcs]
    d = arcs["d"].to_numpy(np.int64)[mc.arcs]
    energy = (sup["quantity"].to_numpy() == "energy")[s] if "quantity" in sup.columns else np.zeros(len(s), bool)
    table = pd.DataFrame({
        "supply_id": arcs["supply_id"].to_numpy()[mc.arcs], "demand_id": arcs["demand_id"].to_numpy()[mc.arcs],
        "supply_facility": arcs["supply_facility"].to_numpy()[mc.arcs],
        "demand_facility": arcs["demand_facility"].to_numpy()[mc.arcs],
        "material": sup["material"].to_numpy()[s], "primary_material": dem["material"].to_numpy()[d],
        "quantity": np.where(energy, "energy", "mass"), "unit": np.where(energy, "MWh/yr", "t/yr"),
        "distance_km": arcs["distance_km"].to_numpy(float)[mc.arcs],
        "probability": probability,
        "probability_se": np.sqrt(probability * (1 - probability) / max(n, 1)),
        "base_amount": mc.base_flows, "mean_amount": flows.mean(axis=0) if n else np.nan,
        "p5_amount": q[0], "p50_amount": q[1], "p95_amount": q[2],
    })
    table["in_base_optimum"] = table["base_amount"] > FLOW_TOLERANCE
    table["robust"] = table["probability"] >= robust
    return table.sort_values(["probability", "mean_amount"], ascending=False, kind="stable").reset_index(drop=True)


def convergence_table(mc: MonteCarlo) -> pd.DataFrame:
    """The estimates after the first N/8, N/4, N/2 and N samples: mean, P5, P50, P95 of every KPI and the
    probability of every exchange, with the change from the previous step (how the estimates settle)."""
    n = mc.draws.n_samples
    steps = sorted({max(1, n // 8), max(1, n // 4), max(1, n // 2), n})
    rows = []
    from symbiosis.uncertainty.run import FLOW_TOLERANCE

    arcs = mc.candidates.arcs
    names = [f"P(exchange {a} -> {b})" for a, b in zip(arcs["supply_id"].to_numpy()[mc.arcs],
                                                          arcs["demand_id"].to_numpy()[mc.arcs], strict=True)]
    previous: dict[tuple[str, str], float] = {}
    for m in steps:
        ok = mc.ok[:m]
        kp = mc.kpis[:m][ok]
        q = _quantiles(kp)
        stats = {"mean": kp.mean(axis=0) if len(kp) else np.full(len(KPI_NAMES), np.nan),
                 "p5": q[0], "p50": q[1], "p95": q[2]}
        for stat, values in stats.items():
            for name, value in zip(KPI_NAMES, values, strict=True):
                rows.append((name, stat, m, float(value)))
        prob = (mc.flows[:m][ok] > FLOW_TOLERANCE).mean(axis=0) if len(kp) else np.full(len(mc.arcs), np.nan)
        for name, value in zip(names, prob, strict=True):
            rows.append((name, "probability", m, float(value)))
    table = pd.DataFrame(rows, columns=["quantity", "statistic", "n_samples", "value"])
    change = []
    for row in table.itertuples(index=False):
        key = (row.quantity, row.statistic)
        change.append(row.value - previous[key] if key in previous else np.nan)
        previous[key] = row.value
    table["change_from_previous"] = change
    return table


def sensitivity_table(mc: MonteCarlo, *, top: int = TOP_INPUTS) -> pd.DataFrame:
    """Which inputs move each KPI and each exchange's flow most, ranked per output by |Spearman ρ| (rank
    correlation over the samples, any monotone effect), with the standardised regression coefficient (SRC,
    an ordinary least squares fit of the standardised output on all standardised inputs, statsmodels) and
    that fit's R² (near 1: the SRCs explain the output; their squares are then its variance shares).
    SRCs need more samples than inputs; with fewer they are left empty."""
    from scipy.stats import rankdata

    ok = mc.ok
    x = mc.draws.values[ok]
    inputs = mc.draws.inputs
    columns = ["output_kind", "output", "unit", "rank", "input", "flow_id", "facility_id", "spearman_rho", "src",
               "r2"]
    if len(x) < 3:
        return pd.DataFrame(columns=columns)
    arcs = mc.candidates.arcs
    outputs = [("kpi", name, unit, mc.kpis[ok][:, k]) for k, (name, unit) in enumerate(KPIS)]
    outputs += [("exchange", f"{a} -> {b}", "", mc.flows[ok][:, j])
                for j, (a, b) in enumerate(zip(arcs["supply_id"].to_numpy()[mc.arcs],
                                               arcs["demand_id"].to_numpy()[mc.arcs], strict=True))]
    varied = x.std(axis=0) > 0
    xv = x[:, varied]
    names = inputs["input"].to_numpy()[varied]
    flow_ids = inputs["flow_id"].to_numpy()[varied]
    facilities = inputs["facility_id"].to_numpy()[varied]
    if xv.shape[1] == 0:
        return pd.DataFrame(columns=columns)
    rx = _standardise(rankdata(xv, axis=0))
    n = len(xv)
    regression = n > xv.shape[1] + 2
    zx = _standardise(xv) if regression else None
    outputs = [o for o in outputs if np.std(o[3]) > 0]
    rows: list[tuple[Any, ...]] = []
    for lo in range(0, len(outputs), 500):  # outputs in blocks: one matrix product each, memory bounded
        part = outputs[lo:lo + 500]
        ry = _standardise(rankdata(np.column_stack([o[3] for o in part]), axis=0))
        rho_all = rx.T @ ry / n
        for j, (kind, name, unit, y) in enumerate(part):
            rho = rho_all[:, j]
            src = np.full(len(rho), np.nan)
            r2 = np.nan
            if regression and zx is not None:
                import statsmodels.api as sm

                fit = sm.OLS(_standardise(y), zx).fit()
                src, r2 = np.asarray(fit.params, dtype=float), float(fit.rsquared)
            order = np.argsort(-np.abs(rho), kind="stable")[:top]
            rows.extend((kind, name, unit, rank, names[i], flow_ids[i], facilities[i], float(rho[i]),
                         float(src[i]), r2) for rank, i in enumerate(order, start=1))
    return pd.DataFrame(rows, columns=columns)


def _standardise(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    sd = values.std(axis=0)
    return (values - values.mean(axis=0)) / np.where(sd > 0, sd, 1.0)


def measure_first(sensitivity: pd.DataFrame, inputs: pd.DataFrame) -> pd.DataFrame:
    """Value of information, as a ranking: the inputs whose uncertainty moves the decision's KPIs
    (:data:`DECISION_KPIS`) and the exchanges most (largest |ρ| over those KPIs, and how many exchanges each
    one ranks first for), most influential first: the figures to measure before signing."""
    columns = ["rank", "input", "flow_id", "facility_id", "relative_sd", "max_abs_rho_kpi", "kpi",
               "n_exchanges_ranked_first", "mean_abs_rho_exchanges"]
    if sensitivity.empty:
        return pd.DataFrame(columns=columns)
    decision = (sensitivity["output_kind"] == "kpi") & sensitivity["output"].isin(DECISION_KPIS)
    kpi = sensitivity[decision].assign(abs_rho=lambda f: f["spearman_rho"].abs())
    best = kpi.sort_values("abs_rho", ascending=False, kind="stable").drop_duplicates("input")
    exchanges = sensitivity[sensitivity["output_kind"] == "exchange"]
    firsts = exchanges[exchanges["rank"] == 1]["input"].value_counts()
    mean_ex = exchanges.assign(abs_rho=exchanges["spearman_rho"].abs()).groupby("input")["abs_rho"].mean()
    table = pd.DataFrame({"input": pd.unique(pd.concat([best["input"], exchanges["input"]]))})
    table = table.merge(best[["input", "abs_rho", "output"]].rename(columns={"abs_rho": "max_abs_rho_kpi",
                                                                             "output": "kpi"}),
                        on="input", how="left")
    table["n_exchanges_ranked_first"] = table["input"].map(firsts).fillna(0).astype(int)
    table["mean_abs_rho_exchanges"] = table["input"].map(mean_ex)
    meta = inputs.set_index("input")
    table["flow_id"] = table["input"].map(meta["flow_id"])
    table["facility_id"] = table["input"].map(meta["facility_id"])
    table["relative_sd"] = table["input"].map(meta["relative_sd"])
    table = table.sort_values(["max_abs_rho_kpi", "n_exchanges_ranked_first"], ascending=False,
                              kind="stable", na_position="last").reset_index(drop=True)
    table["rank"] = np.arange(1, len(table) + 1)
    return table[columns]


def inputs_table(mc: MonteCarlo) -> pd.DataFrame:
    """The uncertain inputs with the number of their draws that fell below zero and were redrawn."""
    table = mc.draws.inputs.copy()
    table["draws_truncated"] = mc.draws.truncated
    return table


__all__ = ["ROBUST_PROBABILITY", "MonteCarlo", "collect", "convergence_table", "exchange_table", "inputs_table",
           "kpi_table", "measure_first", "monte_carlo", "sensitivity_table"]
