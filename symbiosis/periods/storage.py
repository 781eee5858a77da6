"""Stores between periods: the stock balance, the store's capacity and its closing level as LP families.

A store holds one flow's material (t) or heat (MWh) from one period to the next. Its rows are store-period
pairs ``i = k·T + t`` (store k, period t). A store at a **supplier** (its flow is an out flow) takes in that
supply's surplus (``put``) and gives it back later (``take``), to be shipped on the supply's arcs of that
period or left to its fate; a store at a **receiver** (an in flow) takes in deliveries (in t of need met, or
MWh delivered) and gives them to the demand later. The columns follow the processors' z in the model:
``stock`` (K·T), ``put`` (K·T), ``take`` (K·T). Equations and duals: docs/formulation.md, "Periods and
storage".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyomo.environ as pyo
from pyomo.core.expr.numeric_expr import LinearExpression, MonomialTermExpression

if TYPE_CHECKING:
    from symbiosis.exchange.model import ExchangeArrays


@dataclass
class StorageArrays:
    """Store-period rows ``i = k·T + t`` as flat arrays (see the module docstring).

    ``supply_row``/``demand_row``: the (time-expanded) supply or demand row the store serves in that period
    (−1 on the other side); ``retain`` = 1 − loss per period; ``opening_rhs`` = retain × opening level in
    the first period, 0 after; ``stock_cost``: money per unit in stock at the end of the period (holding cost,
    plus at a supplier's store the fate cost of the share lost in the next period), ``stock_co2e`` alike.
    """

    n_stores: int
    n_periods: int
    supply_row: np.ndarray
    demand_row: np.ndarray
    retain: np.ndarray
    opening_rhs: np.ndarray
    capacity: np.ndarray
    closing: np.ndarray
    stock_cost: np.ndarray
    stock_co2e: np.ndarray
    #: Per store: cyclic (no opening or closing level given: the stock at the end of the last period is the
    #: stock before the first), with ``closing`` NaN.
    cyclic: np.ndarray
    #: Per store-period: a dedicated store site's (symbiosis.periods.sites), whose put enters its demand row
    #: and whose take its supply row (None: no site).
    site: np.ndarray | None = None

    @property
    def n_rows(self) -> int:
        return self.n_stores * self.n_periods

    @property
    def n_columns(self) -> int:
        return 3 * self.n_rows

    def cost_vector(self) -> np.ndarray:
        return np.concatenate([self.stock_cost, np.zeros(2 * self.n_rows)])

    def co2e_vector(self) -> np.ndarray:
        return np.concatenate([self.stock_co2e, np.zeros(2 * self.n_rows)])

    def split(self, columns: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(stock, put, take) from the storage part of a column vector."""
        n = self.n_rows
        return columns[:n], columns[n:2 * n], columns[2 * n:3 * n]


def _terms(pairs: list[tuple[float, pyo.Var]]) -> LinearExpression:
    return LinearExpression([v if k == 1.0 else MonomialTermExpression((k, v)) for k, v in pairs])


def add_storage(m: pyo.ConcreteModel, arrays: ExchangeArrays) -> None:
    r"""Stock balance, capacity and closing level of each store, and its link to a supply or demand row.

    .. math::

        s_{k,t} = (1 - \ell_k)\, s_{k,t-1} + p_{k,t} - q_{k,t}, \quad s_{k,-1} = S^0_k, \quad
        s_{k,T-1} = S^T_k, \quad 0 \le s_{k,t} \le C_k

        \text{cyclic store (no levels given): } s_{k,-1} = s_{k,T-1}

        \text{supplier's store: } \sum_{a \in out(s,t)} x_a + w_{s,t} + p_{k,t} - q_{k,t} = a_{s,t}
        \qquad
        \text{receiver's store: } \sum_{a \in in(d,t)} \rho_a x_a + y_{d,t} - p_{k,t} + q_{k,t} = r_{d,t}

    ========  =====================================================
    symbol    meaning
    ========  =====================================================
    s_{k,t}   stock of store k at the end of period t (``stock``)
    p, q      put into and taken from the store in period t (``put``, ``take``)
    ℓ_k       share of the stock lost per period (``stores.loss_per_period``)
    S^0, S^T  opening and closing levels; C_k the capacity
    ========  =====================================================

    Rows: ``stock_balance`` and ``store_capacity`` per store-period, ``store_closing`` per store. Without
    ``arrays.storage`` nothing is added.
    """
    st = arrays.storage
    if st is None or st.n_rows == 0:
        return
    n, periods = st.n_rows, st.n_periods
    m.stock = pyo.Var(range(n), domain=pyo.NonNegativeReals)
    m.put = pyo.Var(range(n), domain=pyo.NonNegativeReals)
    m.take = pyo.Var(range(n), domain=pyo.NonNegativeReals)
    stock, put, take = list(m.stock.values()), list(m.put.values()), list(m.take.values())
    m.storage_list = [*stock, *put, *take]
    retain, rhs, cyclic = st.retain.tolist(), st.opening_rhs.tolist(), st.cyclic.tolist()

    def balance(_m: pyo.ConcreteModel, i: int) -> tuple[object, float]:
        terms = [(1.0, stock[i]), (-1.0, put[i]), (1.0, take[i])]
        if i % periods and retain[i] != 0.0:
            terms.append((-retain[i], stock[i - 1]))
        elif i % periods == 0 and cyclic[i // periods] and retain[i] != 0.0:
            terms.append((-retain[i], stock[i + periods - 1]))
        return _terms(terms), rhs[i]

    m.stock_balance = pyo.Constraint(range(n), rule=balance)
    capacity = st.capacity.tolist()
    m.store_capacity = pyo.Constraint(range(n), rule=lambda _m, i: (None, stock[i], capacity[i]))
    closing = st.closing.tolist()
    m.store_closing = pyo.Constraint(np.flatnonzero(~st.cyclic).tolist(),
                                     rule=lambda _m, k: (stock[k * periods + periods - 1], closing[k]))
    site = st.site if st.site is not None else np.zeros(n, bool)
    for i in np.flatnonzero((st.supply_row >= 0) & ~site).tolist():
        con = m.supply_balance[int(st.supply_row[i])]
        con.set_value(con.body + put[i] - take[i] == con.upper)
    for i in np.flatnonzero((st.demand_row >= 0) & ~site).tolist():
        con = m.demand_balance[int(st.demand_row[i])]
        con.set_value(con.body - put[i] + take[i] == con.upper)
    add_site_rows(m, st)


def add_site_rows(m: pyo.ConcreteModel, st: StorageArrays) -> None:
    r"""A dedicated store site's rows (symbiosis.periods.sites): what arrives at the site goes into the store,
    what leaves it comes out of the store, and the site neither buys virgin material nor sends any to a fate.

    .. math::

        \sum_{a \in in(d_k,t)} x_a + y_{d_k,t} - p_{k,t} = 0, \quad
        \sum_{a \in out(s_k,t)} x_a + w_{s_k,t} - q_{k,t} = 0, \quad
        w_{s_k,t} + y_{d_k,t} = 0 \ (\text{row ``site_closed``})

    (the arcs into a site have ratio 1). Nothing is added without a site."""
    if st.site is None or not st.site.any():
        return
    put, take = list(m.put.values()), list(m.take.values())
    sites = np.flatnonzero(st.site).tolist()
    for i in sites:
        con = m.supply_balance[int(st.supply_row[i])]
        con.set_value(con.body - take[i] == con.upper)
        con = m.demand_balance[int(st.demand_row[i])]
        con.set_value(con.body - put[i] == con.upper)
    w, y = m.w, m.y
    m.site_closed = pyo.Constraint(range(len(sites)), rule=lambda _m, j: (
        _terms([(1.0, w[int(st.supply_row[sites[j]])]), (1.0, y[int(st.demand_row[sites[j]])])]), 0.0))
