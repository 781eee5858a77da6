"""Seasons for a generated region: periods, profiles and stores added to a region folder (invented figures).

``add_seasons(folder)`` turns an annual region (e.g. one written by ``symbiosis.synthetic``) into a
multi-period one, for the benchmark of the time-expanded model and for tests at scale:

- region.yaml gets ``periods: 12 months`` (or the calendar given);
- profiles.csv holds three invented profiles: ``winter`` (heating season: November to March), ``campaign``
  (a four-month processing campaign, September to December, as a sugar campaign) and ``summer`` (May to
  August);
- every ``every``-th in flow (not marked ``exchangeable: false``) follows ``winter``, every ``every``-th
  by-product or waste supply follows ``campaign`` and the one after it ``summer`` (the others spread over the
  year by the periods' lengths);
- stores.csv gets ``n_stores`` stores at suppliers of by-products or wastes, chosen at random among those
  not at a processor, with invented capacities (a quarter of the supply's annual amount), holding costs and
  losses.

Every figure is invented and labelled so in the files' ``source`` and ``note`` columns. Deterministic for a
given ``seed``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from symbiosis.periods.data import CALENDARS
from symbiosis.synthetic import _write_csv

SOURCE = "invented (symbiosis.periods.seasonal)"
NOTE = "benchmark figure: no real profile or store"
#: Per profile, the months it holds material in and their weights (normalised to shares).
PROFILES = {
    "winter": {"nov": 1.0, "dec": 1.3, "jan": 1.4, "feb": 1.2, "mar": 0.9},
    "campaign": {"sep": 1.0, "oct": 1.0, "nov": 1.0, "dec": 1.0},
    "summer": {"may": 1.0, "jun": 1.0, "jul": 1.0, "aug": 1.0},
}
SUPPLY_CATEGORIES = ("by_product", "waste")


def _profiles(periods: str) -> pd.DataFrame:
    names = [name for name, _ in CALENDARS[periods]]
    rows = []
    for profile, weights in PROFILES.items():
        if periods == "12 months":
            raw = np.array([weights.get(name, 0.0) for name in names])
        else:  # other calendars: the same season by position in the year
            position = (np.arange(len(names)) + 0.5) / len(names) * 12.0
            month = [list(CALENDARS["12 months"])[int(p)][0] for p in position]
            raw = np.array([weights.get(m, 0.0) for m in month])
        shares = raw / raw.sum()
        shares[np.flatnonzero(shares)[-1]] += 1.0 - shares.sum()  # exact sum 1 in binary
        rows += [{"profile": profile, "period": name, "share": float(share), "source": SOURCE, "note": NOTE}
                 for name, share in zip(names, shares, strict=True)]
    return pd.DataFrame(rows)


def _write_input(path: Path, frame: pd.DataFrame) -> None:
    """An input table of the region, cells as they are (symbiosis.synthetic's writer: these are inputs, not
    outputs for a spreadsheet, so no cell is escaped)."""
    rows = frame.astype(object).where(frame.notna(), "").itertuples(index=False, name=None)
    _write_csv(path, [str(c) for c in frame.columns], [list(r) for r in rows])


def add_seasons(folder: str | Path, *, periods: str = "12 months", every: int = 3, n_stores: int = 20,
                seed: int = 0) -> dict[str, int]:
    """Add periods, profiles and stores to the region in ``folder`` (see the module docstring); returns
    how many demands and supplies got a profile and how many stores were written."""
    if periods not in CALENDARS:
        raise ValueError(f"periods must be one of {', '.join(CALENDARS)}, got {periods!r}")
    if every < 1:
        raise ValueError(f"every must be at least 1, got {every}")
    folder = Path(folder)
    rng = np.random.default_rng(seed)
    settings = yaml.safe_load((folder / "region.yaml").read_text(encoding="utf-8")) or {}
    settings["periods"] = periods
    (folder / "region.yaml").write_text(yaml.safe_dump(settings, sort_keys=False, allow_unicode=True),
                                        encoding="utf-8")
    flows = pd.read_csv(folder / "flows.csv", dtype=str, keep_default_na=False)
    processors = set()
    if (folder / "processors.csv").exists():
        processors = set(pd.read_csv(folder / "processors.csv", dtype=str)["facility_id"])
    exchangeable = flows["exchangeable"].str.strip().str.lower() if "exchangeable" in flows else ""
    demand = (flows["direction"] == "in") & (exchangeable != "false")
    supply = (flows["direction"] == "out") & flows["category"].isin(SUPPLY_CATEGORIES)
    profile = pd.Series("", index=flows.index)
    demand_rows = np.flatnonzero(demand.to_numpy())
    profile.iloc[demand_rows[::every]] = "winter"
    supply_rows = np.flatnonzero(supply.to_numpy())
    profile.iloc[supply_rows[::every]] = "campaign"
    profile.iloc[supply_rows[1::every]] = "summer"
    flows["profile"] = profile
    _write_input(folder / "flows.csv", flows)
    _write_input(folder / "profiles.csv", _profiles(periods))

    # Stores at suppliers given in t (their capacity is a share of the amount), never at a processor.
    in_tonnes = flows["unit"].iloc[supply_rows].str.strip().str.lower().eq("t").to_numpy()
    free = supply_rows[~flows["facility_id"].iloc[supply_rows].isin(processors).to_numpy() & in_tonnes]
    chosen = np.sort(rng.choice(free, size=min(n_stores, len(free)), replace=False)) if len(free) else free
    amount = pd.to_numeric(flows["amount"].iloc[chosen], errors="coerce").to_numpy(float)
    stores = pd.DataFrame({
        "store_id": [f"K{i + 1:04d}" for i in range(len(chosen))],
        "flow_id": flows["flow_id"].iloc[chosen].to_numpy(),
        "capacity": np.round(0.25 * amount, 3),
        "cost_per_period": np.round(rng.uniform(0.1, 2.0, len(chosen)), 3),
        "loss_per_period": np.round(rng.uniform(0.0, 0.05, len(chosen)), 4),
        "source": SOURCE, "note": NOTE,
    })
    _write_input(folder / "stores.csv", stores)
    return {"demands_with_profile": len(demand_rows[::every]),
            "supplies_with_profile": len(supply_rows[::every]) + len(supply_rows[1::every]),
            "stores": len(stores)}


__all__ = ["add_seasons"]
