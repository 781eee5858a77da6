"""Outputs: analyst files, the web map, Sankey diagrams, the HTML report and slide images, from Results."""

from symbiosis.outputs.export import public_results, write_results
from symbiosis.outputs.mapping import explore, save_map
from symbiosis.outputs.report import write_report
from symbiosis.outputs.sankey import facility_sankey, network_sankey
from symbiosis.outputs.static import exchange_map_png, kpi_bars_png

__all__ = [
    "exchange_map_png",
    "explore",
    "facility_sankey",
    "kpi_bars_png",
    "network_sankey",
    "public_results",
    "save_map",
    "write_report",
    "write_results",
]
