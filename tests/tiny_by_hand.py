"""The tiny test region (tests/data/regions/tiny) solved by hand: the figures the end-to-end tests expect.

Nothing here calls symbiosis: inputs are the region's files and the test reference tables, distances come
from Vincenty's formula (tests/independent.py, itself checked against published geodesics).

Data (facilities.csv, flows.csv, quality.csv, region.yaml; tests/data/reference; tests/data/models):

- power (55.66 N, 11.08 E): FGD gypsum 20,000 t/yr to landfill at 60 EUR/t (flows.csv), and from its process
  model (1,000,000 MWh × 0.04 t/MWh) 40,000 t/yr fly ash to landfill (fates.csv: 60 EUR/t, 0.01 t CO2e/t);
  the model's water (100,000 t, no price, 0.0003 t CO2e/t virgin) is a demand no supply can serve.
- board (55.67, 11.10): natural gypsum 25,000 t/yr at 25 EUR/t (0.02 t CO2e/t), purity ≥ 90 %.
- cement (55.70, 11.20, confidential): clay 100,000 t/yr at 12 EUR/t (0.01 t CO2e/t), at most 50 %
  secondary, chloride ≤ 0.1 % (virgin 0.01 %).
- far (57.05, 9.92): clay 200,000 t/yr at 8 EUR/t.
- substitutions: FGD gypsum → natural gypsum ratio 1.0, processing 2 EUR/t; fly ash → clay ratio 0.9, at
  most 30 % of the need (max_share), processing 1 EUR/t. Fly ash carries a 300 km material limit (materials.csv),
  everything else the region's 50 km. Road km = 1.3 × geodesic km; transport 0.10 EUR and 0.000062 t CO2e
  per t·km.

Candidate arcs: gypsum → board (2.2 km); fly ash → cement (11.4 km) and → far (221.7 km, within 300).
A max_share becomes an arc capacity: ρx ≤ 0.3 r, so x ≤ 0.3 · 100,000 / 0.9 = 33,333.3 t into cement and
x ≤ 0.3 · 200,000 / 0.9 = 66,666.7 t into far.

Saving per tonne shipped (fate avoided + ρ × virgin price − processing − transport):
  gypsum → board:  60 + 25 − 2 − 0.10 · 2.18  = 82.78 EUR/t
  fly ash → cement: 60 + 0.9 · 12 − 1 − 0.10 · 11.39 = 68.66 EUR/t
  fly ash → far:    60 + 0.9 · 8 − 1 − 0.10 · 221.75 = 44.03 EUR/t
Every arc saves money, so every tonne is shipped. Gypsum: all 20,000 t to board (need 25,000; purity 96 %
against ≥ 90 %, the virgin at the bound, so the blend passes). Fly ash: cement first (the larger saving) up to
its capacity 33,333.3 t (replacing 30,000 t of clay; the 50 % share, 50,000 t, and chloride, 0.05 % < 0.1 %,
do not bind), the remaining 6,666.7 t to far (below its capacity; replacing 6,000 t).

Optimum (money): virgin still bought 5,000 · 25 + 70,000 · 12 + 194,000 · 8 + 100,000 · 0 = 2,517,000;
processing 20,000 · 2 + 40,000 · 1 = 80,000; transport 0.10 · Σ km · x ≈ 190,180; no fate left: 2,787,180.
Business as usual: 60 · 60,000 + 25 · 25,000 + 12 · 100,000 + 8 · 200,000 = 7,025,000; saving 4,237,820.
Emissions: BAU 0.01 · 60,000 + 0.02 · 25,000 + 0.01 · 300,000 + 0.0003 · 100,000 = 4,130 t; optimum
0.02 · 5,000 + 0.01 · 264,000 + 30 + 0.000062 · Σ km · x = 2,887.9 t.
Duals: one more tonne of gypsum goes to board and saves 25 − 2 − 0.218 = 22.78 EUR/t (no fate to avoid: the
tonne is new); one more tonne of fly ash can only go to far: 0.9 · 8 − 1 − 22.17 = −15.97 EUR/t; every demand
still buys virgin at the margin, so its dual is its virgin price (25, 12, 8, 0).
"""

from __future__ import annotations

from tests.independent import vincenty_km

POWER, BOARD, CEMENT, FAR = (55.66, 11.08), (55.67, 11.10), (55.70, 11.20), (57.05, 9.92)
CIRCUITY = 1.3
TRANSPORT_PER_TKM = 0.10
TRANSPORT_CO2_PER_TKM = 0.000062

KM_GYPSUM = CIRCUITY * vincenty_km(*POWER, *BOARD)
KM_CEMENT = CIRCUITY * vincenty_km(*POWER, *CEMENT)
KM_FAR = CIRCUITY * vincenty_km(*POWER, *FAR)

X_GYPSUM = 20_000.0
X_CEMENT = 0.3 * 100_000 / 0.9
X_FAR = 40_000.0 - X_CEMENT

SAVING_PER_T = {
    "board": 60 + 25 - 2 - TRANSPORT_PER_TKM * KM_GYPSUM,
    "cement": 60 + 0.9 * 12 - 1 - TRANSPORT_PER_TKM * KM_CEMENT,
    "far": 60 + 0.9 * 8 - 1 - TRANSPORT_PER_TKM * KM_FAR,
}
TKM = X_GYPSUM * KM_GYPSUM + X_CEMENT * KM_CEMENT + X_FAR * KM_FAR
COST_BAU = 60 * 60_000 + 25 * 25_000 + 12 * 100_000 + 8 * 200_000
COST_OPTIMUM = (25 * 5_000 + 12 * (100_000 - 0.9 * X_CEMENT) + 8 * (200_000 - 0.9 * X_FAR)
                + 2 * X_GYPSUM + 1 * (X_CEMENT + X_FAR) + TRANSPORT_PER_TKM * TKM)
CO2E_BAU = 0.01 * 60_000 + 0.02 * 25_000 + 0.01 * (100_000 + 200_000) + 0.0003 * 100_000
CO2E_OPTIMUM = (0.02 * 5_000 + 0.01 * (100_000 - 0.9 * X_CEMENT + 200_000 - 0.9 * X_FAR) + 0.0003 * 100_000
                + TRANSPORT_CO2_PER_TKM * TKM)
SUPPLY_DUAL = {"power_gypsum": 25 - 2 - TRANSPORT_PER_TKM * KM_GYPSUM,
               "power.model.out.fly_ash": 0.9 * 8 - 1 - TRANSPORT_PER_TKM * KM_FAR}
#: Each exchange: (t/yr shipped, t/yr of virgin replaced, road km).
EXCHANGES = {"board": (X_GYPSUM, X_GYPSUM, KM_GYPSUM), "cement": (X_CEMENT, 0.9 * X_CEMENT, KM_CEMENT),
             "far": (X_FAR, 0.9 * X_FAR, KM_FAR)}
