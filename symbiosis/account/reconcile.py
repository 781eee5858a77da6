r"""Network data reconciliation: the region's mass flows adjusted, as one system, so that every balance closes.

Beside the balances stage (Region -> Balances), this module answers the question the closure errors raise:
which figure is wrong, by how much, and what the flows most probably are. The region is a network whose nodes
are facilities (mass in = mass out + stock change) and whose variables are the flow rows; a stream that
leaves one facility and enters another is entered twice in the data (an ``out`` row at the sender, an ``in``
row at the receiver, sharing a ``stream_id``) and is ONE variable: a link row of the constraint matrix makes
the two rows equal, so the two figures are two measurements of the same stream.

With measured flows :math:`y` (standard uncertainties :math:`\sigma`, covariance :math:`\Sigma =
\mathrm{diag}(\sigma^2)`), unmeasured flows :math:`u` and constraints :math:`A_x x + A_u u = 0`, the
unmeasured flows are eliminated by a projection :math:`P` with :math:`P A_u = 0` (Crowe, Garcia Campos and
Hrymak 1983; here the orthonormal basis of the left null space of :math:`A_u`, from an SVD). With
:math:`B` an orthonormal basis of the row space of :math:`P A_x` (its rank :math:`\nu` is the degrees of
freedom):

.. math::

    \hat x = y - \Sigma B^\top (B \Sigma B^\top)^{-1} B y, \qquad
    V = \Sigma B^\top (B \Sigma B^\top)^{-1} B \Sigma, \qquad \mathrm{Cov}(\hat x) = \Sigma - V,

    \hat u = -A_u^{+} A_x \hat x, \qquad \mathrm{Cov}(\hat u) = A_u^{+} A_x (\Sigma - V) A_x^\top A_u^{+\top}.

Global test: :math:`\gamma = (By)^\top (B\Sigma B^\top)^{-1} By \sim \chi^2_\nu`. Measurement test:
:math:`z_i = |y_i - \hat x_i| / \sqrt{V_{ii}}` (standard normal without a gross error), judged at the
Šidák-corrected level :math:`1 - (1 - \alpha)^{1/n}` over the :math:`n` redundant measurements, as Narasimhan
and Jordache (2000, ch. 7) recommend. Serial elimination: while the global test fails, the measurement with
the largest :math:`z_i` above the critical value is declared a gross error, treated as unmeasured, and the
reconciliation repeated. A measured flow is *redundant* when :math:`V_{ii} > 0` (the rest of the data would
determine it); an unmeasured flow is *observable* when the balances determine it (its row of the null space
of :math:`A_u` is zero). The network splits into independent parts (connected components of the
constraint graph), solved one at a time with dense linear algebra (numpy, scipy); the maths is in
docs/reconciliation.md.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import linalg, sparse, stats
from scipy.sparse import csgraph

from symbiosis.errors import Problems
from symbiosis.region import Region

logger = logging.getLogger(__name__)

#: Relative standard uncertainty (one standard deviation, as a fraction of the figure) of a flow that gives
#: no ``uncertainty_pct``, by data quality. Assumptions, not measured figures: the order (a record is better
#: than an estimate, an estimate than a model line) is what matters; STAN's users and VDI 2048's examples
#: use a few percent for weighed or metered flows and tens of percent for estimates.
DEFAULT_RELATIVE_UNCERTAINTY = {"measured": 0.05, "estimated": 0.20, "modelled": 0.30}
#: Significance level of the global and measurement tests.
ALPHA = 0.05
#: Relative tolerance under which a singular value, a residual variance or a null-space entry counts as zero.
RANK_TOLERANCE = 1e-9

FLOW_COLUMNS = [
    "flow_id", "facility_id", "process", "direction", "material", "stream_id", "data_quality", "measured_flow",
    "amount", "standard_uncertainty", "reconciled", "reconciled_standard_uncertainty", "adjustment",
    "adjustment_pct", "adjustment_sigma", "measurement_test", "redundant", "observable", "gross_error",
    "component",
]
NODE_COLUMNS = ["node", "kind", "facility_id", "process", "stream_id", "closure", "closure_standard_uncertainty",
                "chi_square", "closure_reconciled"]
GROSS_ERROR_COLUMNS = ["step", "flow_id", "facility_id", "component", "set_aside", "measurement_test", "critical_value",
                       "chi_square_before", "dof_before", "p_value_before", "measured", "estimate_without",
                       "ratio", "equivalent_flows", "likely_cause"]


# ------------------------------------------------------------------------------------------ linear algebra


@dataclass
class LinearReconciliation:
    """The solution of one reconciliation problem :math:`A x = 0` (arrays aligned with A's columns)."""

    estimate: np.ndarray
    standard_uncertainty: np.ndarray
    measured: np.ndarray
    observable: np.ndarray
    redundant: np.ndarray
    residual_variance: np.ndarray
    chi_square: float
    dof: int
    #: :math:`|y_i - \\hat x_i| / \\sqrt{V_{ii}}` per column (NaN where not a redundant measurement).
    measurement_test: np.ndarray = field(default_factory=lambda: np.zeros(0))


def _orthonormal_rows(matrix: np.ndarray) -> np.ndarray:
    """An orthonormal basis (as rows) of the row space of ``matrix``."""
    if matrix.size == 0:
        return np.zeros((0, matrix.shape[1]))
    _, singular, vt = linalg.svd(matrix, full_matrices=False)
    if not len(singular) or singular[0] == 0:
        return np.zeros((0, matrix.shape[1]))
    rank = int((singular > RANK_TOLERANCE * singular[0] * max(matrix.shape)).sum())
    return vt[:rank]


def reconcile_linear(a: np.ndarray, y: np.ndarray, sigma: np.ndarray, measured: np.ndarray) -> LinearReconciliation:
    r"""Weighted-least-squares reconciliation of :math:`A x = 0` with the columns ``measured`` measured.

    ``y`` and ``sigma`` are read on measured columns only (σ > 0). Unmeasured columns are eliminated by the
    projection onto the left null space of :math:`A_u` (Crowe et al. 1983); their estimates are the
    minimum-norm solution of :math:`A_u u = -A_x \hat x`, exact where they are observable and NaN elsewhere.
    """
    n = a.shape[1]
    measured = np.asarray(measured, dtype=bool)
    ax, au = a[:, measured], a[:, ~measured]
    ym, sm = np.asarray(y, float)[measured], np.asarray(sigma, float)[measured]
    variance = sm**2
    projection = linalg.null_space(au.T).T if au.shape[1] else np.eye(a.shape[0])
    basis = _orthonormal_rows(projection @ ax)
    dof = basis.shape[0]
    if dof:
        spread = (basis * variance) @ basis.T
        closure = basis @ ym
        multiplier = linalg.solve(spread, closure, assume_a="pos")
        estimate_m = ym - variance * (basis.T @ multiplier)
        # One step of iterative refinement: with σ spanning orders of magnitude the solve leaves a closure of
        # about 1e-9 of the largest flow; projecting what is left once more takes it to rounding.
        estimate_m -= variance * (basis.T @ linalg.solve(spread, basis @ estimate_m, assume_a="pos"))
        gain = linalg.solve(spread, basis * variance, assume_a="pos")
        residual_cov = (variance[:, None] * basis.T) @ gain
        chi_square = float(closure @ multiplier)
    else:
        estimate_m = ym.copy()
        residual_cov = np.zeros((len(ym), len(ym)))
        chi_square = 0.0
    covariance_m = np.diag(variance) - residual_cov
    residual_variance = np.clip(np.diag(residual_cov), 0.0, None)
    redundant_m = residual_variance > RANK_TOLERANCE * np.maximum(variance, np.finfo(float).tiny)

    estimate = np.full(n, np.nan)
    uncertainty = np.full(n, np.nan)
    observable = np.ones(n, dtype=bool)
    redundant = np.zeros(n, dtype=bool)
    residual = np.zeros(n)
    estimate[measured] = estimate_m
    uncertainty[measured] = np.sqrt(np.clip(np.diag(covariance_m), 0.0, None))
    redundant[measured] = redundant_m
    residual[measured] = residual_variance
    if au.shape[1]:
        pseudo = linalg.pinv(au)
        gain_u = -pseudo @ ax
        estimate_u = gain_u @ estimate_m
        estimate_u -= pseudo @ (au @ estimate_u + ax @ estimate_m)  # refined once, as the measured part
        covariance_u = gain_u @ covariance_m @ gain_u.T
        null = linalg.null_space(au)
        scale = max(1.0, float(np.abs(au).max()))
        observable_u = ~(np.abs(null) > 1e-8 * scale).any(axis=1) if null.size else np.ones(au.shape[1], bool)
        estimate[~measured] = np.where(observable_u, estimate_u, np.nan)
        uncertainty[~measured] = np.where(observable_u, np.sqrt(np.clip(np.diag(covariance_u), 0.0, None)), np.nan)
        observable[~measured] = observable_u
    z = np.full(n, np.nan)
    hit = measured & redundant
    z[hit] = np.abs(np.asarray(y, float)[hit] - estimate[hit]) / np.sqrt(residual[hit])
    return LinearReconciliation(estimate=estimate, standard_uncertainty=uncertainty, measured=measured.copy(),
                                observable=observable, redundant=redundant, residual_variance=residual,
                                chi_square=chi_square, dof=dof, measurement_test=z)


def critical_measurement_test(n_redundant: int, alpha: float = ALPHA) -> float:
    """Two-sided critical value of the measurement test over ``n_redundant`` tests (Šidák-corrected level)."""
    if n_redundant <= 0:
        return math.inf
    beta = 1.0 - (1.0 - alpha) ** (1.0 / n_redundant)
    return float(stats.norm.ppf(1.0 - beta / 2.0))


@dataclass
class EliminationStep:
    column: int
    measurement_test: float
    critical_value: float
    chi_square_before: float
    dof_before: int
    equivalent: list[int]
    #: False when the data cannot tell the suspects apart (an equivalent set, no unit slip among them): the
    #: set is reported and elimination stops, rather than setting one of them aside at random.
    set_aside: bool = True


Elimination = tuple[LinearReconciliation, LinearReconciliation, list[EliminationStep]]


def serial_elimination(a: np.ndarray, y: np.ndarray, sigma: np.ndarray, measured: np.ndarray,
                       alpha: float = ALPHA) -> Elimination:
    """Reconcile, then remove gross errors one at a time (measurement test with serial elimination).

    Returns the first reconciliation (every measurement), the final one (gross errors treated as
    unmeasured) and the steps. Measurements whose test statistic ties with the largest (an equivalent set:
    the data cannot tell them apart) are listed with the one removed."""
    active = np.asarray(measured, dtype=bool).copy()
    first = current = reconcile_linear(a, y, sigma, active)
    steps: list[EliminationStep] = []
    while current.dof > 0 and stats.chi2.sf(current.chi_square, current.dof) < alpha:
        z = current.measurement_test
        candidates = np.flatnonzero(np.isfinite(z))
        critical = critical_measurement_test(len(candidates), alpha)
        if not len(candidates) or np.nanmax(z) <= critical:
            break
        best = int(candidates[np.argmax(z[candidates])])
        top = z[best]
        tied = [int(c) for c in candidates if abs(z[c] - top) <= 1e-6 * top]
        chosen = _unit_error_among(a, y, sigma, active, tied, best)
        ties = [c for c in tied if c != chosen]
        steps.append(EliminationStep(chosen if chosen is not None else best, float(top), critical,
                                     current.chi_square, current.dof, ties if chosen is not None else
                                     [c for c in tied if c != best], set_aside=chosen is not None))
        if chosen is None:
            break
        active[chosen] = False
        current = reconcile_linear(a, y, sigma, active)
    return first, current, steps


def _unit_off(ratio: float) -> float:
    """How far (in decades) ``ratio`` is from a unit slip: a power of 1000 other than 1 (inf when not positive)."""
    if not math.isfinite(ratio) or ratio <= 0:
        return math.inf
    decades = math.log10(ratio)
    nearest = 3.0 * round(decades / 3.0)
    return abs(decades - nearest) if nearest != 0 else math.inf


def _unit_error_among(a: np.ndarray, y: np.ndarray, sigma: np.ndarray, active: np.ndarray, tied: list[int],
                      best: int) -> int | None:
    """Among measurements the test cannot tell apart (equal statistics: an equivalent set), the one that the
    rest of the data put a power of 1000 away from its figure (a kg-for-t slip), if exactly one is; else
    None when none or several are. Statistics alone cannot choose inside an equivalent set; a unit slip is the
    likeliest cause, and without one the set is reported, not one of its members picked at random."""
    if len(tied) < 2:
        return best
    slips = []
    for column in tied:
        trial = active.copy()
        trial[column] = False
        estimate = reconcile_linear(a, y, sigma, trial).estimate[column]
        if y[column] and _unit_off(estimate / y[column]) < 0.15:
            slips.append(column)
    return slips[0] if len(slips) == 1 else None


# ------------------------------------------------------------------------------------------- the region


@dataclass
class NetworkReconciliation:
    """Reconciled mass flows of a region (docs/reconciliation.md, docs/outputs.md).

    ``flows``: one row per mass flow row of the region (FLOW_COLUMNS); ``nodes``: one row per balance (a
    facility, or a stream's link between its two rows); ``gross_errors``: the serial-elimination steps;
    ``global_test``: chi-square, degrees of freedom, p-value and critical value of the data as given."""

    flows: pd.DataFrame
    nodes: pd.DataFrame
    gross_errors: pd.DataFrame
    global_test: dict[str, float | int | bool]
    alpha: float = ALPHA
    warnings: list[str] = field(default_factory=list)

    def amounts(self) -> pd.Series:
        """The reconciled amount of every flow row, by flow_id (t/yr)."""
        return self.flows.set_index("flow_id")["reconciled"]

    def facility_tests(self) -> pd.DataFrame:
        """Per facility: closure of the data as given, its standard uncertainty and chi-square (1 dof), and the
        closure after reconciliation (the columns of the former per-facility reconciliation, kept)."""
        facilities = self.nodes[self.nodes["kind"] == "facility"]
        table = facilities[["facility_id", "closure", "closure_standard_uncertainty", "chi_square",
                            "closure_reconciled", "process"]].copy()
        table["gross_error_suspected"] = table["chi_square"] > stats.chi2.ppf(1 - self.alpha, 1)
        return table.reset_index(drop=True)


def _origin(origin: str) -> tuple[str, int | None]:
    file, _, row = str(origin).rpartition(":")
    return (file, int(row)) if file and row.isdigit() else (str(origin), None)


def flow_uncertainty(flows: pd.DataFrame, amount: np.ndarray) -> np.ndarray:
    """Standard uncertainty (t/yr) of each flow: ``uncertainty_pct`` of the figure, else the default of its data
    quality (DEFAULT_RELATIVE_UNCERTAINTY)."""
    relative = flows["uncertainty_pct"].to_numpy(float) / 100.0
    default = flows["data_quality"].map(DEFAULT_RELATIVE_UNCERTAINTY).to_numpy(float)
    relative = np.where(np.isnan(relative), default, relative)
    return np.abs(amount) * relative


def _is_measured(flows: pd.DataFrame) -> np.ndarray:
    column = flows["measured"] if "measured" in flows.columns else pd.Series(True, index=flows.index)
    return column.fillna(True).astype(bool).to_numpy()


def network_matrix(flows: pd.DataFrame) -> tuple[sparse.csr_matrix, pd.DataFrame]:
    """The constraint matrix of the mass network (rows: facility balances, then stream links; columns: flows)
    and a table describing its rows (``node, kind, facility_id, stream_id``)."""
    n = len(flows)
    facility = flows["facility_id"].astype(str).to_numpy()
    process = (flows["process"].fillna("").astype(str).to_numpy() if "process" in flows.columns
               else np.full(n, "", dtype=object))
    # A facility whose rows name processes (sub-processes, quantity centres) has one balance per process.
    node_of = np.where(process == "", facility, facility + "/" + process)
    direction = flows["direction"].to_numpy()
    node_ids, first, index = np.unique(node_of, return_index=True, return_inverse=True)
    sign = np.where(direction == "in", 1.0, -1.0)  # outputs and stock change leave the balance
    rows = [index]
    cols = [np.arange(n)]
    vals = [sign]
    facilities = node_ids
    nodes = [pd.DataFrame({"node": node_ids, "kind": "facility", "facility_id": facility[first],
                           "process": process[first], "stream_id": ""})]
    stream = flows["stream_id"].fillna("").astype(str).to_numpy() if "stream_id" in flows.columns else np.full(n, "")
    linked = pd.DataFrame({"stream": stream, "direction": direction, "col": np.arange(n)})
    linked = linked[linked["stream"] != ""]
    outs = linked[linked["direction"] == "out"].set_index("stream")["col"]
    ins = linked[linked["direction"] == "in"].set_index("stream")["col"]
    both = outs.index.intersection(ins.index)
    if len(both):
        link_rows = len(facilities) + np.arange(len(both))
        rows += [link_rows, link_rows]
        cols += [outs.loc[both].to_numpy(), ins.loc[both].to_numpy()]
        vals += [np.ones(len(both)), -np.ones(len(both))]
        nodes.append(pd.DataFrame({"node": "stream " + both.astype(str), "kind": "stream", "facility_id": "",
                                   "process": "", "stream_id": both.astype(str)}))
    node_table = pd.concat(nodes, ignore_index=True)
    matrix = sparse.coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                               shape=(len(node_table), n)).tocsr()
    return matrix, node_table


def _check(flows: pd.DataFrame, amount: np.ndarray, measured: np.ndarray, sigma: np.ndarray,
           nodes: pd.DataFrame, matrix: sparse.csr_matrix) -> None:
    problems = Problems()
    for position in np.flatnonzero(measured & ~(sigma > 0) & (amount != 0)):
        file, row = _origin(flows["origin"].iat[position])
        problems.add(file, "a measured flow needs an uncertainty above zero", row=row, column="uncertainty_pct",
                     found=flows["uncertainty_pct"].iat[position],
                     expected="a standard uncertainty in percent > 0 (or leave it empty for the default of its "
                              "data quality)")
    facility_rows = np.flatnonzero(nodes["kind"].to_numpy() == "facility")
    has_measured = (abs(matrix[facility_rows]) @ measured.astype(float)) > 0
    for k in np.flatnonzero(~has_measured):
        fid = nodes["node"].iat[facility_rows[k]]
        first = int(matrix[facility_rows[k]].indices.min())  # its first row in the flows table
        file, row = _origin(flows["origin"].iat[first])
        problems.add(file, "a facility with no measured mass flow cannot be reconciled", row=row,
                     column="measured", found=f"facility {fid}: every mass flow is unmeasured",
                     expected="at least one measured flow at each facility",
                     fix=f"give a measured amount for one of {fid}'s flows (measured: true)")
    problems.raise_if_any()


def _unobservable(flows: pd.DataFrame, bad: np.ndarray, measured: np.ndarray, matrix: sparse.csr_matrix,
                  eliminated: np.ndarray) -> None:
    problems = Problems()
    incidence = abs(matrix).tocsc()
    for position in np.flatnonzero(bad):
        file, row = _origin(flows["origin"].iat[position])
        balances = incidence[:, position].nonzero()[0]
        partners = np.unique(abs(matrix[balances]).nonzero()[1])
        others = [str(flows["flow_id"].iat[p]) for p in partners if p != position and not measured[p]]
        why = ("its measurement was set aside as a gross error and nothing else determines it"
               if eliminated[position] else "no balance determines it from the measured flows")
        problems.add(file, "an unmeasured flow the balances cannot determine", row=row, column="amount",
                     found=f"flow {flows['flow_id'].iat[position]}: {why}",
                     expected="a measurement of this flow"
                              + (f", or of one of the other unmeasured flows it shares a balance with "
                                 f"({', '.join(others[:5])})" if others else ""),
                     fix="give its amount (measured: true), or a stream_id linking it to a measured row at the "
                         "other facility")
    problems.raise_if_any()


def _likely_cause(ratio: float) -> str:
    if math.isnan(ratio):
        return ("the data cannot tell these measurements apart (an equivalent set): check each; a second "
                "measurement of one of them (a stream_id to the other facility's row) would locate the error")
    if not math.isfinite(ratio) or ratio <= 0:
        return "check the figure"
    for factor, cause in ((1000.0, "1000x too small: a figure in t entered with unit kg?"),
                          (1e-3, "1000x too large: a figure in kg entered with unit t?"),
                          (1e6, "a million times too small: a unit error?"),
                          (1e-6, "a million times too large: a unit error?")):
        if abs(math.log10(ratio / factor)) < 0.15:
            return cause
    return f"{ratio:.3g}x the figure: check it"


def _single_balances(matrix: sparse.csr_matrix, keep_rows: np.ndarray, active_cols: np.ndarray,
                     row_label: np.ndarray, col_label: np.ndarray, n_parts: int, amount: np.ndarray,
                     sigma: np.ndarray, measured: np.ndarray, alpha: float, estimate: np.ndarray,
                     reconciled_sigma: np.ndarray, redundant: np.ndarray, z: np.ndarray,
                     component_of: np.ndarray) -> tuple[np.ndarray, float]:
    r"""The parts of the network that are one balance with every flow measured (a facility linked to no other,
    most of a large region), solved at once in closed form: with closure :math:`c = a^\top y` and
    :math:`S = \sum a_j^2 \sigma_j^2`, :math:`\hat x = y - \sigma^2 a\, c / S`, :math:`V_{ii} =
    \sigma_i^4 a_i^2 / S`, :math:`z_i = |c| / \sqrt S`, :math:`\gamma = c^2 / S` with 1 degree of freedom
    (the general formulas with :math:`B = a^\top/\lVert a \rVert`). Parts whose test fails go through
    :func:`serial_elimination`. Fills the arrays in place; returns which parts it solved and their
    chi-square."""
    rows_per_part = np.bincount(row_label, minlength=n_parts)
    unmeasured = np.bincount(col_label, weights=(~measured[active_cols]).astype(float), minlength=n_parts)
    simple = (rows_per_part == 1) & (unmeasured == 0)
    if not simple.any():
        return np.zeros(n_parts, dtype=bool), 0.0
    row_of_part = np.zeros(n_parts, dtype=int)
    row_of_part[row_label] = keep_rows
    in_simple = simple[col_label]
    cols, parts = active_cols[in_simple], col_label[in_simple]
    coefficient = np.asarray(matrix[row_of_part[parts], cols]).ravel()
    variance = sigma[cols] ** 2
    closure = np.bincount(parts, weights=coefficient * amount[cols], minlength=n_parts)
    spread = np.bincount(parts, weights=coefficient**2 * variance, minlength=n_parts)
    with np.errstate(divide="ignore", invalid="ignore"):
        chi = np.where(spread > 0, closure**2 / spread, np.inf)
    fast = simple & (spread > 0) & (chi <= stats.chi2.ppf(1 - alpha, 1))
    take = fast[parts]
    cols, parts, a, v = cols[take], parts[take], coefficient[take], variance[take]
    c, s = closure[parts], spread[parts]
    estimate[cols] = amount[cols] - v * a * c / s
    residual_variance = v**2 * a**2 / s
    reconciled_sigma[cols] = np.sqrt(np.clip(v - residual_variance, 0.0, None))
    is_redundant = residual_variance > RANK_TOLERANCE * v
    redundant[cols] = is_redundant
    z[cols] = np.where(is_redundant, np.abs(c) / np.sqrt(s), np.nan)
    component_of[cols] = parts
    return fast, float(chi[fast].sum())


def reconcile_network(region: Region, *, alpha: float = ALPHA) -> NetworkReconciliation:
    """Reconcile the region's mass flows as one network (module docstring; docs/reconciliation.md).

    Raises :class:`~symbiosis.errors.InputError` for a measured flow with no uncertainty above zero, a facility
    with no measured mass flow, and an unmeasured flow the balances cannot determine."""
    flows = region.flows[region.flows["quantity"] == "mass"].reset_index(drop=True)
    if "origin" not in flows.columns:
        flows = flows.assign(origin="flows")
    amount = flows["amount_t_per_yr"].to_numpy(float)
    measured = _is_measured(flows) & ~np.isnan(amount)
    sigma = flow_uncertainty(flows, amount)
    matrix, nodes = network_matrix(flows)
    _check(flows, amount, measured, sigma, nodes, matrix)
    # A measured zero is known exactly (its relative uncertainty is zero): it leaves the system.
    exact = measured & (amount == 0)
    active_cols = np.flatnonzero(~exact)
    n = len(flows)
    estimate = np.where(exact, 0.0, np.nan)
    reconciled_sigma = np.where(exact, 0.0, np.nan)
    observable = np.ones(n, dtype=bool)
    redundant = np.zeros(n, dtype=bool)
    z = np.full(n, np.nan)
    gross = np.zeros(n, dtype=bool)
    component_of = np.full(n, -1)
    chi_total, dof_total = 0.0, 0
    step_rows: list[dict[str, object]] = []
    final_measured = measured.copy()

    unobservable = np.zeros(n, dtype=bool)
    sub = matrix[:, active_cols]
    keep_rows = np.flatnonzero(sub.getnnz(axis=1) > 0)
    pattern = sparse.csr_matrix(abs(sub[keep_rows]) > 0, dtype=float)
    graph = sparse.bmat([[None, pattern], [pattern.T, None]])
    n_parts, labels = (csgraph.connected_components(graph, directed=False) if pattern.nnz
                       else (0, np.zeros(len(keep_rows) + len(active_cols), int)))
    row_label, col_label = labels[:len(keep_rows)], labels[len(keep_rows):]
    order = np.argsort(col_label, kind="stable")
    starts = np.searchsorted(col_label[order], np.arange(n_parts + 1))
    row_order = np.argsort(row_label, kind="stable")
    row_starts = np.searchsorted(row_label[row_order], np.arange(n_parts + 1))
    fast, chi_fast = _single_balances(matrix, keep_rows, active_cols, row_label, col_label, n_parts, amount,
                                      sigma, measured, alpha, estimate, reconciled_sigma, redundant, z, component_of)
    chi_total += chi_fast
    dof_total += int(fast.sum())
    for part in np.flatnonzero(~fast):
        cols_local = order[starts[part]:starts[part + 1]]
        if not len(cols_local):
            continue
        cols = active_cols[cols_local]
        rows = keep_rows[row_order[row_starts[part]:row_starts[part + 1]]]
        block = matrix[rows][:, cols].toarray()
        first, final, steps = serial_elimination(block, amount[cols], sigma[cols], measured[cols], alpha)
        component_of[cols] = part
        estimate[cols] = final.estimate
        reconciled_sigma[cols] = final.standard_uncertainty
        observable[cols] = first.observable
        redundant[cols] = first.redundant
        z[cols] = first.measurement_test
        final_measured[cols] = final.measured
        chi_total += first.chi_square
        dof_total += first.dof
        for step in steps:
            col = cols[step.column]
            gross[col] = True
            gross[cols[step.equivalent]] = True
            without = final.estimate[step.column] if step.set_aside else math.nan
            ratio = without / amount[col] if amount[col] else math.nan
            step_rows.append({
                "step": len(step_rows) + 1, "flow_id": flows["flow_id"].iat[col],
                "facility_id": flows["facility_id"].iat[col], "component": part, "set_aside": step.set_aside,
                "measurement_test": step.measurement_test, "critical_value": step.critical_value,
                "chi_square_before": step.chi_square_before, "dof_before": step.dof_before,
                "p_value_before": float(stats.chi2.sf(step.chi_square_before, step.dof_before)),
                "measured": amount[col], "estimate_without": without, "ratio": ratio,
                "equivalent_flows": ";".join(str(flows["flow_id"].iat[cols[e]]) for e in step.equivalent),
                "likely_cause": _likely_cause(ratio),
            })
        unobservable[cols] = ~final.observable
    if unobservable.any():
        _unobservable(flows, unobservable, final_measured, matrix, gross)

    adjustment = estimate - amount
    with np.errstate(divide="ignore", invalid="ignore"):
        adjustment_pct = np.where(measured & (amount != 0), 100.0 * adjustment / amount, np.nan)
        adjustment_sigma = np.where(measured & (sigma > 0), adjustment / sigma, np.nan)
    table = pd.DataFrame({
        "flow_id": flows["flow_id"].to_numpy(), "facility_id": flows["facility_id"].to_numpy(),
        "process": (flows["process"].fillna("").astype(str).to_numpy() if "process" in flows.columns else ""),
        "direction": flows["direction"].to_numpy(), "material": flows["material"].to_numpy(),
        "stream_id": (flows["stream_id"].fillna("").astype(str).to_numpy() if "stream_id" in flows.columns
                      else ""),
        "data_quality": flows["data_quality"].to_numpy(), "measured_flow": measured,
        "amount": amount, "standard_uncertainty": np.where(measured, sigma, np.nan),
        "reconciled": estimate, "reconciled_standard_uncertainty": reconciled_sigma,
        "adjustment": np.where(measured, adjustment, np.nan), "adjustment_pct": adjustment_pct,
        "adjustment_sigma": adjustment_sigma, "measurement_test": z, "redundant": redundant,
        "observable": observable, "gross_error": gross, "component": component_of,
    })[FLOW_COLUMNS]

    # Node closures: of the data as given (measured rows), with the uncertainty of that sum, and reconciled.
    given = np.where(measured, amount, 0.0)
    closure = matrix @ given
    closure_sigma = np.sqrt(matrix.multiply(matrix) @ (np.where(measured, sigma, 0.0) ** 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        node_chi = np.where(closure_sigma > 0, closure**2 / closure_sigma**2, np.where(closure != 0, np.inf, 0.0))
    # A balance with an unmeasured flow cannot be tested alone: its closure of the figures is not a closure.
    partial = (abs(matrix) @ (~measured & ~exact).astype(float)) > 0
    closure, closure_sigma, node_chi = (np.where(partial, np.nan, v) for v in (closure, closure_sigma, node_chi))
    node_table = nodes.assign(closure=closure, closure_standard_uncertainty=closure_sigma, chi_square=node_chi,
                              closure_reconciled=matrix @ np.nan_to_num(estimate))[NODE_COLUMNS]
    critical = float(stats.chi2.ppf(1 - alpha, dof_total)) if dof_total else math.nan
    p_value = float(stats.chi2.sf(chi_total, dof_total)) if dof_total else math.nan
    global_test = {"chi_square": chi_total, "dof": dof_total, "p_value": p_value, "critical_value": critical,
                   "alpha": alpha, "passed": bool(dof_total == 0 or chi_total <= critical),
                   "n_gross_errors": len(step_rows)}
    gross_table = pd.DataFrame(step_rows, columns=GROSS_ERROR_COLUMNS)
    warnings = [f"flow {r.flow_id} ({r.facility_id}): measured {r.measured:,.6g} t/yr, the rest of the data give "
                f"{r.estimate_without:,.6g} t/yr (measurement test {r.measurement_test:.1f} > "
                f"{r.critical_value:.2f}): {r.likely_cause}" if r.set_aside else
                f"flows {r.flow_id};{r.equivalent_flows} ({r.facility_id}): one of them is likely wrong "
                f"(measurement test {r.measurement_test:.1f} > {r.critical_value:.2f}): {r.likely_cause}"
                for r in gross_table.itertuples()]
    logger.info("reconciliation: chi-square %.3g with %d dof (p = %.3g), %d gross error(s)", chi_total, dof_total,
                p_value, len(step_rows))
    return NetworkReconciliation(flows=table, nodes=node_table, gross_errors=gross_table, global_test=global_test,
                                 alpha=alpha, warnings=warnings)


def reconciled_region(region: Region, result: NetworkReconciliation | None = None) -> Region:
    """A copy of the region whose mass flows carry their reconciled amounts (what ``optimise --reconciled``
    optimises on); energy flows are unchanged."""
    import copy

    result = result or reconcile_network(region)
    flows = region.flows.copy()
    amounts = result.amounts()
    hit = flows["flow_id"].isin(amounts.index) & (flows["quantity"] == "mass")
    flows.loc[hit, "amount_t_per_yr"] = flows.loc[hit, "flow_id"].map(amounts).to_numpy(float)
    out = copy.copy(region)
    out.flows = flows
    return out


def shares_stream_with(flows: pd.DataFrame, facilities: set[str]) -> pd.Series:
    """Rows whose stream (``stream_id``) is also a row of one of ``facilities``: in a public view, a public
    receiver's reconciled figure of a confidential sender's stream is the sender's figure too."""
    streams = flows["stream_id"].astype(str)
    theirs = set(streams[flows["facility_id"].astype(str).isin(facilities) & (streams != "")])
    return streams.isin(theirs)


def write_reconciliation(result: NetworkReconciliation, folder: Path, scrub: Any = None,
                         also: Iterable[str] = ()) -> list[Path]:
    """``reconciled_flows.csv``, ``reconciliation.csv`` (per facility), ``gross_errors.csv`` and
    ``reconciliation.json`` (the global test) in ``folder`` (docs/outputs.md), through the public view
    ``scrub`` (a :class:`symbiosis.disclosure.Disclosure`) when given."""
    import json

    from symbiosis.atomic import write_text_atomic
    from symbiosis.outputs.export import write_csv

    also = set(also)

    def public(frame: pd.DataFrame, hidden: pd.Series | None = None) -> pd.DataFrame:
        return scrub.frame(frame, locate_by="", also=also, hidden=hidden) if scrub is not None else frame

    flows_hidden = None
    if scrub is not None and scrub.active:
        hidden_facilities = set(scrub.id_map) | also
        flows_hidden = result.flows["facility_id"].astype(str).isin(hidden_facilities) | shares_stream_with(
            result.flows, hidden_facilities)
    return [write_csv(folder / "reconciled_flows.csv", public(result.flows, flows_hidden)),
            write_csv(folder / "reconciliation.csv", public(result.facility_tests())),
            write_csv(folder / "gross_errors.csv", public(result.gross_errors)),
            write_text_atomic(folder / "reconciliation.json", json.dumps(result.global_test, indent=2) + "\n")]


__all__ = ["DEFAULT_RELATIVE_UNCERTAINTY", "LinearReconciliation", "NetworkReconciliation",
           "critical_measurement_test", "network_matrix", "reconcile_linear", "reconcile_network",
           "reconciled_region", "serial_elimination", "shares_stream_with", "write_reconciliation"]
