"""Outputs: files, maps, Sankey diagrams and the HTML report made from a Results object."""

from symbiosis.outputs.export import public_results, write_results
from symbiosis.outputs.mapping import explore, save_map

__all__ = ["explore", "public_results", "save_map", "write_results"]
