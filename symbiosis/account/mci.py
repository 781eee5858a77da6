r"""Material Circularity Indicator (Ellen MacArthur Foundation and Granta Design, "Circularity Indicators:
An Approach to Measuring Circularity. Methodology", 2015), per product and per facility, before and after the
optimum's exchanges.

For a mass :math:`M` of material, with fractions of feedstock from recycling :math:`F_R` and reuse :math:`F_U`,
fractions collected for recycling :math:`C_R` and for reuse :math:`C_U` after use, and efficiencies of the
recycling process :math:`E_C` (of what is collected) and of making the recycled feedstock :math:`E_F`:

.. math::

    V &= M (1 - F_R - F_U) &\quad& \text{virgin feedstock} \\
    W_0 &= M (1 - C_R - C_U) && \text{unrecoverable waste from the product itself} \\
    W_C &= M (1 - E_C) C_R && \text{waste of recycling what is collected} \\
    W_F &= M \frac{(1 - E_F) F_R}{E_F} && \text{waste of making the recycled feedstock} \\
    W &= W_0 + \frac{W_F + W_C}{2} \\
    LFI &= \frac{V + W}{2M + \frac{W_F - W_C}{2}} && \text{linear flow index, 0 restorative .. 1 linear} \\
    X &= \frac{L}{L_{av}} \cdot \frac{U}{U_{av}}, \quad F(X) = \frac{0.9}{X} && \text{utility} \\
    MCI &= \max\left(0,\ 1 - LFI \cdot F(X)\right)

A fully linear product (all virgin, all landfilled, :math:`X = 1`) scores 0.1, a fully restorative one 1.

**Facilities** are read gate to gate: :math:`M` is the facility's material feedstock (mass inputs of categories
raw material, semi-finished and auxiliary; water, seawater, wastewater, gases and energy carriers are out
of scope, as are emissions of them; solid and liquid fuels are in, since their ash is a residue),
:math:`F_R` the share of it that is a secondary material (a material that substitutions.csv names only as a
secondary material, never as a primary one) or, after the optimum, received through an exchange; the
residues (non-product mass outputs in scope) are collected for recycling when their fate is a recovery or a
sale (or, after the optimum, when they are exchanged) and unrecoverable waste otherwise (landfill,
incineration, sewer, other). Products leave into use: at the gate they are neither waste nor collected, so
:math:`W_0` is the unrecoverable residue and :math:`C_R M` the recycled residue. **Products** are read as the
methodology reads a product: their own mass, the feedstock fractions of the facility that makes them, and an
end of life the data do not hold: ``product_end_of_life`` gives (:math:`C_R`, :math:`C_U`) per product
material; where it is not given, the product is assumed landfilled at end of life (:math:`C_R = C_U = 0`),
the methodology's linear default.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from symbiosis.region import Region

#: The constant of the utility function F(X) = a / X (EMF 2015: 0.9, so that a linear product scores 0.1).
UTILITY_CONSTANT = 0.9
#: Material classes outside the indicator's scope (not product material: water, energy, fuels, gases).
OUT_OF_SCOPE_CLASSES = frozenset({"water", "seawater", "wastewater", "gas", "energy"})
FEEDSTOCK_CATEGORIES = ("raw_material", "semi_finished", "auxiliary")
COLLECTED_FATE_KINDS = frozenset({"recovery", "sold"})


def material_circularity(mass: Any, *, recycled_in: Any = 0.0, reused_in: Any = 0.0, collected_recycling: Any = 0.0,
                         collected_reuse: Any = 0.0, recycling_efficiency: Any = 1.0, feedstock_efficiency: Any = 1.0,
                         lifetime_ratio: Any = 1.0, intensity_ratio: Any = 1.0) -> pd.DataFrame:
    """The methodology's quantities (columns ``M, V, W0, WC, WF, W, LFI, X, FX, MCI``) for arrays of products.

    ``recycled_in`` = F_R, ``reused_in`` = F_U, ``collected_recycling`` = C_R, ``collected_reuse`` = C_U (all
    fractions of M), ``recycling_efficiency`` = E_C, ``feedstock_efficiency`` = E_F, ``lifetime_ratio`` = L/L_av,
    ``intensity_ratio`` = U/U_av. Fractions outside 0..1, or summing above 1, are an error.
    """
    m = np.atleast_1d(np.asarray(mass, dtype=float))
    arrays = {name: np.broadcast_to(np.asarray(value, dtype=float), m.shape) for name, value in (
        ("F_R", recycled_in), ("F_U", reused_in), ("C_R", collected_recycling), ("C_U", collected_reuse),
        ("E_C", recycling_efficiency), ("E_F", feedstock_efficiency), ("L", lifetime_ratio),
        ("U", intensity_ratio))}
    for name in ("F_R", "F_U", "C_R", "C_U"):
        if np.any((arrays[name] < 0) | (arrays[name] > 1 + 1e-12)):
            raise ValueError(f"{name} must be a fraction between 0 and 1")
    if np.any(arrays["F_R"] + arrays["F_U"] > 1 + 1e-9) or np.any(arrays["C_R"] + arrays["C_U"] > 1 + 1e-9):
        raise ValueError("F_R + F_U and C_R + C_U must each be at most 1")
    for name in ("E_C", "E_F"):
        if np.any((arrays[name] <= 0) | (arrays[name] > 1)):
            raise ValueError(f"{name} must be an efficiency in (0, 1]")
    if np.any(arrays["L"] <= 0) or np.any(arrays["U"] <= 0):
        raise ValueError("L/L_av and U/U_av must be positive")
    virgin = m * (1 - arrays["F_R"] - arrays["F_U"])
    w0 = m * (1 - arrays["C_R"] - arrays["C_U"])
    wc = m * (1 - arrays["E_C"]) * arrays["C_R"]
    wf = m * (1 - arrays["E_F"]) * arrays["F_R"] / arrays["E_F"]
    return _indicator(m, virgin, w0, wc, wf, arrays["L"] * arrays["U"])


def _indicator(m: np.ndarray, virgin: np.ndarray, w0: np.ndarray, wc: np.ndarray, wf: np.ndarray,
               utility: np.ndarray) -> pd.DataFrame:
    waste = w0 + (wf + wc) / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        denominator = 2 * m + (wf - wc) / 2
        lfi = np.where(denominator > 0, (virgin + waste) / np.where(denominator > 0, denominator, 1.0), np.nan)
        fx = UTILITY_CONSTANT / utility
    mci = np.where(np.isnan(lfi), np.nan, np.maximum(0.0, 1 - lfi * fx))
    return pd.DataFrame({"M": m, "V": virgin, "W0": w0, "WC": wc, "WF": wf, "W": waste, "LFI": lfi, "X": utility,
                         "FX": fx, "MCI": mci})


@dataclass
class Circularity:
    """``facilities``: one row per facility with the quantities before (``*_bau``) and after (``*_optimum``) the
    optimum; ``products``: one row per product flow, the same. Masses in t/yr."""

    facilities: pd.DataFrame
    products: pd.DataFrame


def _in_scope(flows: pd.DataFrame, region: Region) -> pd.Series:
    classes = flows["material"].map(region.reference.materials["class"]).fillna("other")
    return ~classes.isin(OUT_OF_SCOPE_CLASSES)


def circularity(region: Region, results: Any = None, *, recycling_efficiency: float = 1.0,
                feedstock_efficiency: float = 1.0, utility: float | Mapping[str, float] = 1.0,
                product_end_of_life: Mapping[str, tuple[float, float]] | None = None) -> Circularity:
    """MCI of every facility (gate to gate) and product, before and, given ``results``, after the optimum.

    ``utility``: X for every product, or per facility id (L/L_av · U/U_av; 1 when the data say nothing about
    lifetime and intensity of use). ``product_end_of_life``: product material → (C_R, C_U).
    """
    flows = region.flows[(region.flows["quantity"] == "mass")]
    flows = flows[_in_scope(flows, region)]
    ids = region.facilities["facility_id"].astype(str).tolist()
    substitutions = region.reference.substitutions
    secondary = (set(substitutions["secondary_material"].astype(str))
                 - set(substitutions["primary_material"].astype(str)))
    feed = flows[(flows["direction"] == "in") & flows["category"].isin(FEEDSTOCK_CATEGORIES)]
    outputs = flows[flows["direction"] == "out"]
    kind = outputs["fate"].map(region.reference.fates["kind"]).fillna("")
    product = outputs["category"] == "product"  # a by-product sold is a residue collected for reuse
    residues = outputs[~product]
    collected = kind[~product].isin(COLLECTED_FATE_KINDS)

    def per(frame: pd.DataFrame, mask: Any = None) -> np.ndarray:
        part = frame if mask is None else frame[mask]
        return part.groupby("facility_id")["amount_t_per_yr"].sum().reindex(ids).fillna(0.0).to_numpy(float)

    m_bau = per(feed)
    r_bau = per(feed, feed["material"].isin(secondary))
    collected_bau = per(residues, collected)
    lost_bau = per(residues, ~collected)

    m_opt, r_opt, collected_opt, lost_opt = m_bau.copy(), r_bau.copy(), collected_bau.copy(), lost_bau.copy()
    if results is not None and len(results.exchanges):
        ex = results.exchanges
        ex = ex[ex["quantity"].fillna("mass") == "mass"] if "quantity" in ex.columns else ex
        scope_in = ex["material"].map(region.reference.materials["class"]).fillna("other")
        ex = ex[~scope_in.isin(OUT_OF_SCOPE_CLASSES)]
        received = ex.groupby("demand_facility")["amount_t_per_yr"].sum().reindex(ids).fillna(0.0).to_numpy(float)
        replaced = ex.groupby("demand_facility")["replaced_t_per_yr"].sum().reindex(ids).fillna(0.0).to_numpy(float)
        # what the exchange replaced was virgin feedstock in scope; the secondary received is feedstock too
        m_opt = np.maximum(m_bau - replaced + received, 0.0)
        r_opt = r_bau + received
        fate_kind = ex["supply_id"].map(dict(zip(residues["flow_id"], collected, strict=True)))
        from_lost = ex[fate_kind.eq(False)]
        moved = from_lost.groupby("supply_facility")["amount_t_per_yr"].sum().reindex(ids).fillna(0.0).to_numpy(float)
        lost_opt = np.maximum(lost_bau - moved, 0.0)
        collected_opt = collected_bau + moved
    x = np.array([float(utility.get(f, 1.0)) if isinstance(utility, Mapping) else float(utility) for f in ids])

    def facility_rows(m: np.ndarray, r: np.ndarray, kept: np.ndarray, lost: np.ndarray) -> pd.DataFrame:
        m = m.astype(float)
        wc = kept * (1 - recycling_efficiency)
        wf = r * (1 - feedstock_efficiency) / feedstock_efficiency
        return _indicator(m, np.maximum(m - r, 0.0), lost, wc, wf, x)

    before = facility_rows(m_bau, r_bau, collected_bau, lost_bau)
    after = facility_rows(m_opt, r_opt, collected_opt, lost_opt)
    facilities = pd.DataFrame({"facility_id": ids})
    for suffix, frame in (("bau", before), ("optimum", after)):
        for column in ("M", "V", "W0", "W", "LFI", "MCI"):
            facilities[f"{column}_{suffix}"] = frame[column].to_numpy()
    facilities["recycled_feedstock_bau"] = r_bau
    facilities["recycled_feedstock_optimum"] = r_opt
    facilities["X"] = x
    facilities["MCI_change"] = facilities["MCI_optimum"] - facilities["MCI_bau"]
    origins = feed.groupby("facility_id")["origin"].agg(lambda s: "; ".join(map(str, s))).to_dict()
    facilities["origin"] = [origins.get(f, "") for f in ids]

    prods = outputs[product]
    eol = product_end_of_life or {}
    index = {f: i for i, f in enumerate(ids)}
    at = prods["facility_id"].map(index).to_numpy(int)
    with np.errstate(invalid="ignore", divide="ignore"):
        fr_bau = np.where(m_bau > 0, r_bau / np.where(m_bau > 0, m_bau, 1.0), 0.0)
        fr_opt = np.where(m_opt > 0, np.minimum(r_opt / np.where(m_opt > 0, m_opt, 1.0), 1.0), 0.0)
    c_r = prods["material"].map(lambda mat: eol.get(mat, (0.0, 0.0))[0]).to_numpy(float)
    c_u = prods["material"].map(lambda mat: eol.get(mat, (0.0, 0.0))[1]).to_numpy(float)
    products = pd.DataFrame({"flow_id": prods["flow_id"].to_numpy(), "facility_id": prods["facility_id"].to_numpy(),
                             "material": prods["material"].to_numpy(), "M": prods["amount_t_per_yr"].to_numpy(float),
                             "origin": prods["origin"].to_numpy()})
    for suffix, fr in (("bau", fr_bau), ("optimum", fr_opt)):
        got = material_circularity(products["M"].to_numpy(), recycled_in=fr[at] if len(at) else 0.0,
                                   collected_recycling=c_r, collected_reuse=c_u,
                                   recycling_efficiency=recycling_efficiency,
                                   feedstock_efficiency=feedstock_efficiency, lifetime_ratio=x[at] if len(at) else 1.0)
        products[f"F_R_{suffix}"] = fr[at] if len(at) else []
        products[f"LFI_{suffix}"] = got["LFI"].to_numpy() if len(products) else []
        products[f"MCI_{suffix}"] = got["MCI"].to_numpy() if len(products) else []
    return Circularity(facilities=facilities, products=products.reset_index(drop=True))
