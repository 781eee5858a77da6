"""Energy exchanges (steam, hot water, district heat, waste heat) and the optional mixed-integer mode.

``symbiosis.energy.heat`` turns heat flows into supplies, demands and arcs in MWh (carrier reach, losses per
km, temperature levels and heat pumps); ``symbiosis.energy.mip`` adds fixed connection costs and minimum
sizes as binaries (``optimise(..., mode="mip")``). The maths is in docs/formulation.md.
"""

from symbiosis.energy.heat import HEAT_PUMP, HeatPump, heat_pump_cop, row_amount

__all__ = ["HEAT_PUMP", "HeatPump", "heat_pump_cop", "row_amount"]
