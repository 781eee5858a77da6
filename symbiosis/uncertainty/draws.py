"""What is uncertain in a region, and the Monte Carlo draws of it.

The data give one uncertainty per flow: ``uncertainty_pct`` (one relative standard deviation, as
reconciliation reads it, symbiosis/balances.py), or, where a flow gives none, a default by its data quality
class (``symbiosis.balances.DEFAULT_UNCERTAINTY``: measured 5 %, estimated 20 %, modelled 30 %). A flow's
optional ``price_uncertainty_pct`` makes its price uncertain too: the fate cost of a supply, the virgin price
of a demand, as the candidate tables hold them. The region format has no range for distances or substitution
ratios, so those are not drawn (docs/uncertainty.md says so).

Each amount is drawn from a normal distribution with mean the stated amount and standard deviation the stated
share of it, truncated at zero: a draw below zero is replaced by a draw from the same normal conditioned on
being ≥ 0 (scipy's ``truncnorm``), and counted. Virgin prices are truncated at zero alike; fate costs are not
(a cost may turn into a revenue: negative is "sold"), their standard deviation the share of |cost|.

Sample k uses its own generator, seeded with the k-th child of ``numpy.random.SeedSequence(seed)``, so a
sample's draws do not depend on how the samples are split between workers.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from symbiosis.candidates import Candidates
from symbiosis.errors import InputError, Problem
from symbiosis.region import Region

#: Above this share of its mass below zero, a flow's normal distribution is said to be truncated in warnings.
TRUNCATION_NOTE = 0.001

INPUT_COLUMNS = ["input", "kind", "row", "flow_id", "facility_id", "material", "amount", "unit", "relative_sd",
                 "sd_from", "p_below_zero"]
#: Kinds of input: supply and demand amounts, and the prices a flow's ``price_uncertainty_pct`` makes uncertain.
AMOUNT_KINDS = ("supply", "demand")
PRICE_KINDS = ("fate_cost", "virgin_price")
#: Kinds drawn from a normal truncated at zero (a fate cost may be negative: not truncated).
TRUNCATED_KINDS = ("supply", "demand", "virgin_price")


@dataclass
class Draws:
    """The uncertain inputs (``inputs``, one row each, ``INPUT_COLUMNS``) and their draws.

    ``values``: samples × inputs, in the inputs' own units; ``truncated``: per input, how many of its draws fell
    below zero and were redrawn from the truncated distribution; ``seeds``: the entropy and spawn key that
    reproduce the draws.
    """

    inputs: pd.DataFrame
    values: np.ndarray
    truncated: np.ndarray
    seed: int

    @property
    def n_samples(self) -> int:
        return int(self.values.shape[0])

    def amounts(self, k: int, supply: np.ndarray, demand: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Sample ``k``'s supply and demand amounts: the base ``supply``/``demand`` with the drawn rows replaced."""
        return apply_draw(self.inputs, self.values[k], supply, demand)


def apply_draw(inputs: pd.DataFrame, draw: np.ndarray, supply: np.ndarray,
               demand: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The base amounts with the drawn ones in place (supplies and demands by position)."""
    return _put(inputs, draw, "supply", supply), _put(inputs, draw, "demand", demand)


def apply_prices(inputs: pd.DataFrame, draw: np.ndarray, fate_cost: np.ndarray,
                 virgin_price: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The base fate costs and virgin prices with the drawn ones in place (by supply and demand position)."""
    return _put(inputs, draw, "fate_cost", fate_cost), _put(inputs, draw, "virgin_price", virgin_price)


def _put(inputs: pd.DataFrame, draw: np.ndarray, kind: str, base: np.ndarray) -> np.ndarray:
    out = base.copy()
    mine = inputs["kind"].to_numpy() == kind
    out[inputs["row"].to_numpy(np.int64)[mine]] = draw[mine]
    return out


def has_prices(inputs: pd.DataFrame) -> bool:
    return bool(inputs["kind"].isin(PRICE_KINDS).any())


def _origin(origin: str) -> tuple[str, int | None]:
    """(file, spreadsheet row) from a flow's ``origin`` (``path:row``), or (origin, None)."""
    match = re.fullmatch(r"(.*):(\d+)", str(origin))
    if match:
        return match.group(1), int(match.group(2))
    return str(origin) or "flows", None


def uncertain_inputs(region: Region, candidates: Candidates) -> pd.DataFrame:
    """One row per supply and demand amount of the exchange model that can be drawn, with its uncertainty.

    Processor rows (their amounts follow the processor's activity) and rows whose amount is 0 are left out.
    A flow's ``uncertainty_pct`` outside 0..100 is an :class:`InputError` located at its file and row.
    """
    from symbiosis.balances import DEFAULT_UNCERTAINTY
    from symbiosis.energy.heat import row_amount

    flows = region.flows.drop_duplicates("flow_id").set_index("flow_id")
    problems: list[Problem] = []
    pct = pd.to_numeric(flows["uncertainty_pct"], errors="coerce")
    bad = pct[(pct < 0) | (pct > 100) | np.isinf(pct)]
    for flow_id, value in bad.items():
        file, row = _origin(str(flows.at[flow_id, "origin"]) if "origin" in flows.columns else "")
        problems.append(Problem(file, f"flow {flow_id}: uncertainty out of range", row=row, column="uncertainty_pct",
                                found=f"{value:g}", expected="a percentage from 0 to 100 (one standard deviation)",
                                fix="give the relative standard uncertainty in percent, e.g. 15"))
    if problems:
        raise InputError(problems)
    processor_rows: dict[str, set[int]] = {"supply": set(), "demand": set()}
    links = candidates.processor_links
    if links is not None and len(links):
        processor_rows["supply"] = set(links.loc[links["side"] == "out", "row"].astype(int))
        processor_rows["demand"] = set(links.loc[links["side"] == "in", "row"].astype(int))
    parts = []
    for kind, table, id_column in (("supply", candidates.supplies, "supply_id"),
                                   ("demand", candidates.demands, "demand_id")):
        amount = row_amount(table)
        energy = (table["quantity"].to_numpy() == "energy") if "quantity" in table.columns \
            else np.zeros(len(table), bool)
        ids = table[id_column].astype(str)
        known = ids.isin(flows.index).to_numpy()
        stated = np.full(len(table), np.nan)
        stated[known] = pct.reindex(ids[known]).to_numpy(float) / 100.0
        quality = np.full(len(table), "", dtype=object)
        quality[known] = flows["data_quality"].reindex(ids[known]).astype(str).to_numpy()
        default = np.array([DEFAULT_UNCERTAINTY.get(q, DEFAULT_UNCERTAINTY["estimated"]) for q in quality])
        relative = np.where(np.isnan(stated), default, stated)
        sd_from = np.where(~np.isnan(stated), "uncertainty_pct",
                           np.array([f"default for {q or 'estimated'}" for q in quality], dtype=object))
        keep = (amount > 0) & ~np.isin(np.arange(len(table)), list(processor_rows[kind]))
        part = pd.DataFrame({
            "kind": kind, "row": np.arange(len(table)), "flow_id": ids.to_numpy(),
            "facility_id": table["facility_id"].astype(str).to_numpy(),
            "material": table["material"].astype(str).to_numpy(), "amount": amount,
            "unit": np.where(energy, "MWh/yr", "t/yr"), "relative_sd": relative, "sd_from": sd_from,
        })[keep]
        parts.append(part)
    parts += _price_inputs(flows, candidates)
    inputs = pd.concat(parts, ignore_index=True)
    label = inputs["kind"].map({"supply": "supply amount ", "demand": "demand amount ", "fate_cost": "fate cost ",
                                "virgin_price": "virgin price "})
    inputs.insert(0, "input", label + inputs["flow_id"])
    truncated = inputs["kind"].isin(TRUNCATED_KINDS).to_numpy()
    with np.errstate(divide="ignore"):
        below = _normal_cdf(-1.0 / inputs["relative_sd"].to_numpy(float))
    inputs["p_below_zero"] = np.where(truncated, below, np.nan)
    return inputs[INPUT_COLUMNS]


def _price_inputs(flows: pd.DataFrame, candidates: Candidates) -> list[pd.DataFrame]:
    """Fate costs of supplies and virgin prices of demands whose flow gives ``price_uncertainty_pct``."""
    if "price_uncertainty_pct" not in flows.columns:
        return []
    pct = pd.to_numeric(flows["price_uncertainty_pct"], errors="coerce")
    parts = []
    for kind, table, id_column, column in (("fate_cost", candidates.supplies, "supply_id", "fate_cost_per_t"),
                                           ("virgin_price", candidates.demands, "demand_id", "virgin_price_per_t")):
        ids = table[id_column].astype(str)
        relative = pct.reindex(ids).to_numpy(float) / 100.0
        price = pd.to_numeric(table[column], errors="coerce").to_numpy(float)
        keep = ~np.isnan(relative) & ~np.isnan(price) & (price != 0)
        energy = (table["quantity"].to_numpy() == "energy") if "quantity" in table.columns \
            else np.zeros(len(table), bool)
        parts.append(pd.DataFrame({
            "kind": kind, "row": np.arange(len(table)), "flow_id": ids.to_numpy(),
            "facility_id": table["facility_id"].astype(str).to_numpy(),
            "material": table["material"].astype(str).to_numpy(), "amount": price,
            "unit": np.where(energy, "currency/MWh", "currency/t"), "relative_sd": relative,
            "sd_from": "price_uncertainty_pct",
        })[keep])
    return parts


def _normal_cdf(z: np.ndarray) -> np.ndarray:
    from scipy.special import ndtr

    with np.errstate(divide="ignore"):
        return np.asarray(ndtr(z), dtype=float)


def draw(inputs: pd.DataFrame, n_samples: int, seed: int) -> Draws:
    """``n_samples`` draws of every input (normal, truncated at zero), sample k from SeedSequence(seed).spawn."""
    from scipy.stats import truncnorm

    if n_samples <= 0:
        raise ValueError(f"the number of samples must be at least 1, got {n_samples}")
    mean = inputs["amount"].to_numpy(float)
    sd = np.abs(mean) * inputs["relative_sd"].to_numpy(float)
    truncate = inputs["kind"].isin(TRUNCATED_KINDS).to_numpy()
    n = len(mean)
    values = np.empty((n_samples, n))
    truncated = np.zeros(n, np.int64)
    for k, child in enumerate(np.random.SeedSequence(seed).spawn(n_samples)):
        rng = np.random.default_rng(child)
        value = mean + sd * rng.standard_normal(n)
        low = (value < 0) & truncate
        if low.any():
            truncated += low
            a = -mean[low] / sd[low]  # zero, in standard units
            value[low] = truncnorm.rvs(a, math.inf, loc=mean[low], scale=sd[low], random_state=rng)
        values[k] = value
    return Draws(inputs, values, truncated, seed)


__all__ = ["AMOUNT_KINDS", "PRICE_KINDS", "Draws", "apply_draw", "apply_prices", "draw", "has_prices",
           "uncertain_inputs"]
