"""Files of a multi-period run: exchanges, KPIs and stores per period, and a chart of them (docs/outputs.md).

``period_tables`` gives ``exchanges_by_period``, ``kpis_by_period`` and ``stores`` (masked for the public
copy through symbiosis.disclosure like every other table); ``periods_png`` draws each store's level and each
exchange's amount per period (matplotlib, no pyplot state).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from symbiosis import disclosure

#: At most this many exchanges get their own line in the chart (the largest by annual amount).
MAX_CHART_EXCHANGES = 12


def period_tables(results: Any, *, public: bool = True, region: Any = None) -> dict[str, pd.DataFrame]:
    """The per-period tables of ``results`` ({} for a run without periods), public or private."""
    periods = getattr(results, "periods", None)
    if periods is None:
        return {}
    tables = {"exchanges_by_period": periods.exchanges, "kpis_by_period": periods.kpis}
    if len(periods.stores):
        tables["stores"] = periods.stores
    if public:
        d = disclosure.for_results(results, region)
        tables = {name: (frame if name == "kpis_by_period" else d.frame(frame)) for name, frame in tables.items()}
    return {name: frame for name, frame in tables.items() if frame is not None}


def periods_png(results: Any, path: str | os.PathLike[str], *, public: bool = True, region: Any = None,
                dpi: int = 120) -> Path | None:
    """A PNG of each store's level and each exchange's amount per period (None without periods)."""
    from matplotlib.figure import Figure

    from symbiosis.outputs.static import _plain, _save

    tables = period_tables(results, public=public, region=region)
    if not tables:
        return None
    names = list(results.periods.periods["period"])
    stores = tables.get("stores", pd.DataFrame())
    if len(stores):  # the public copy blanks a confidential facility's store rows (period and figures): no line
        stores = stores[stores["period"].astype(str).isin([str(n) for n in names]) & stores["level"].notna()]
    exchanges = tables["exchanges_by_period"]
    panels = 2 if len(stores) else 1
    fig = Figure(figsize=(10.0, 3.4 * panels))
    axes = [fig.add_subplot(panels, 1, i + 1) for i in range(panels)]
    position = np.arange(len(names))
    if len(exchanges):
        amount = exchanges["amount_t"].fillna(exchanges["amount_mwh"])
        unit = np.where(exchanges["quantity"] == "energy", "MWh", "t")
        label = (exchanges["supply_id"].astype(str) + " → " + exchanges["demand_id"].astype(str) + " (" + unit + ")")
        frame = pd.DataFrame({"label": label, "period": exchanges["period"], "amount": amount})
        table = frame.pivot_table(index="period", columns="label", values="amount", aggfunc="sum").reindex(names)
        top = table.sum().sort_values(ascending=False).index[:MAX_CHART_EXCHANGES]
        for column in top:
            axes[0].plot(position, table[column].fillna(0.0).to_numpy(), marker="o", label=_plain(str(column)))
        axes[0].legend(fontsize=7, loc="upper right")
    axes[0].set_title("Exchanged per period")
    axes[0].set_ylabel("t or MWh per period")
    if len(stores):
        for store_id, rows in stores.groupby("store_id", sort=False):
            level = rows.set_index("period")["level"].reindex(names).fillna(0.0).to_numpy(float)
            axes[1].plot(position, level, marker="s", label=_plain(f"{store_id} ({rows['unit'].iat[0]})"))
        axes[1].set_title("Store level at the end of each period")
        axes[1].set_ylabel("t or MWh in stock")
        axes[1].legend(fontsize=7, loc="upper right")
    for ax in axes:
        ax.set_xticks(position, [_plain(str(n)) for n in names], rotation=90 if len(names) > 12 else 0,
                      fontsize=7 if len(names) > 12 else 9)
        ax.set_ylim(bottom=0)
    fig.tight_layout()
    return _save(fig, path, dpi)


def report_context(results: Any, *, public: bool = True, region: Any = None) -> dict[str, Any] | None:
    """The report's "Over the year" section: KPIs per period and a line per store (None without periods)."""
    tables = period_tables(results, public=public, region=region)
    if not tables:
        return None
    stores = tables.get("stores", pd.DataFrame())
    summary: list[dict[str, Any]] = []
    if len(stores):
        grouped = stores.groupby("store_id", sort=False).agg(
            unit=("unit", "first"), capacity=("capacity", "first"), level=("level", "max"), fill=("fill", "sum"),
            loss=("loss", "sum"), capacity_value_per_unit=("capacity_value_per_unit", "sum"))
        summary = grouped.reset_index().to_dict("records")
    return {"n": len(results.periods.periods), "rows": tables["kpis_by_period"].to_dict("records"),
            "stores": summary}
