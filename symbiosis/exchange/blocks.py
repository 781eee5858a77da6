r"""The exchange LP split into independent blocks, each handed to its own HiGHS instance.

Without an emission cap no row of the exchange LP spans two connected components of the supply–demand
graph: a supply's balance holds only the arcs out of it and its fate, a demand's balance, share and quality
rows only the arcs into it and its virgin purchase. After permuting rows and columns the constraint matrix is
block diagonal, the objective is a sum over the blocks, and the LP is that many LPs of their own. Their
optima together are the optimum of the whole, and their duals the duals of the whole (each block's optimality
conditions involve only its own rows and columns).

It pays because an interior-point solve grows faster than linearly with the LP: on the arcs-only benchmark
(docs/performance.md) HiGHS needs about 11 s for 100k arcs and 400–550 s for 1M, while the 1M-arc LP is 8
independent blocks of about 125k arcs. The blocks are found generically on the matrix (a row and a column
are joined by a non-zero), not from the meaning of the rows, so a row that couples everything, such as the
emission cap, simply leaves one block. Small components are packed together (up to ``target_columns``
columns a block) so that thousands of tiny ones do not cost thousands of HiGHS instances; a packed block is
still block diagonal inside, which HiGHS solves as one LP. Blocks are solved on a thread pool: ``highspy``
releases the GIL in ``run``, and each block has its own instance.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from symbiosis.parallel import usable_cpus

logger = logging.getLogger(__name__)

INF = math.inf
#: Columns per packed block. Components larger than this stay whole; smaller ones are packed up to it.
TARGET_COLUMNS = 5_000


@dataclass
class StandardForm:
    """min cost·x + offset  s.t.  row_lower ≤ A x ≤ row_upper,  col_lower ≤ x ≤ col_upper (A column-wise)."""

    cost: np.ndarray
    col_lower: np.ndarray
    col_upper: np.ndarray
    row_lower: np.ndarray
    row_upper: np.ndarray
    matrix: sparse.csc_matrix
    offset: float = 0.0
    #: Per column 0 (continuous) or 1 (integer), None for an LP (symbiosis.energy.mip: the binaries).
    integrality: np.ndarray | None = None

    @property
    def n_col(self) -> int:
        return len(self.cost)

    @property
    def n_row(self) -> int:
        return len(self.row_lower)

    def with_row(self, lower: float, upper: float, cols: np.ndarray, coefs: np.ndarray) -> StandardForm:
        """A copy with one more row (appended last)."""
        row = sparse.csr_matrix((coefs, (np.zeros(len(cols), np.int64), cols)), shape=(1, self.n_col))
        return StandardForm(self.cost, self.col_lower, self.col_upper,
                            np.r_[self.row_lower, lower], np.r_[self.row_upper, upper],
                            sparse.vstack([self.matrix.tocsr(), row]).tocsc(), self.offset, self.integrality)


def block_labels(matrix: sparse.csc_matrix, target_columns: int = TARGET_COLUMNS) -> tuple[np.ndarray, np.ndarray]:
    """Block of every column and every row: connected components of the matrix, small ones packed together.

    Two columns are in one component when a row has a non-zero in both. A row with no non-zero (none is
    passed by the hand-over, but a caller may) goes to block 0. Components keep the order of their first
    column; consecutive ones are packed until a block reaches ``target_columns``.
    """
    n_row, n_col = matrix.shape
    coo = matrix.tocoo()
    graph = sparse.coo_matrix((np.ones(coo.nnz, dtype=np.int8), (coo.col, n_col + coo.row)),
                              shape=(n_col + n_row, n_col + n_row))
    _, label = connected_components(graph, directed=False)
    col_label = label[:n_col]
    # Components that hold columns, in the order of their first column; packed consecutively.
    components, first_col = np.unique(col_label, return_index=True)
    order = components[np.argsort(first_col)]
    sizes = np.bincount(col_label)[order]
    block_of_component = np.zeros(len(label), dtype=np.int64)  # row-only components: block 0
    filled, block = 0, 0
    for k, size in zip(order, sizes, strict=True):
        if filled and filled + size > target_columns:
            block, filled = block + 1, 0
        block_of_component[k] = block
        filled += size
    return block_of_component[col_label], block_of_component[label[n_col:]]


@dataclass
class _Block:
    highs: Any
    cols: np.ndarray  # global column positions, ascending
    rows: np.ndarray  # global row positions, ascending
    offset: float = 0.0  # the objective's constant, held by one block only
    #: The last solve's answer when it ran on another process (see :func:`remote_blocks`), else None.
    remote: dict[str, Any] | None = None


@dataclass
class BlockResult:
    """The assembled solution of all blocks, in the global column and row order."""

    col_value: np.ndarray
    row_dual: np.ndarray
    objective: float
    status: Any
    termination: str
    statuses: list[str] = field(default_factory=list)
    #: HiGHS's own relative MIP gap (the largest over the blocks); NaN for an LP.
    mip_gap: float = math.nan


class BlockSolver:
    """HiGHS instances for the blocks of one LP, with the changes the exchange model makes between solves.

    ``threads`` is how many blocks run at once (default: the CPUs the process may use, at most the blocks).
    ``decompose=False`` keeps the LP whole (one instance), like a plain hand-over.
    """

    def __init__(self, lp: StandardForm, *, decompose: bool = True, target_columns: int = TARGET_COLUMNS,
                 threads: int | None = None) -> None:
        self.lp = lp
        self._stale = False  # columns added with defer=True and not yet in any instance
        self.target_columns = target_columns
        self.threads = threads or usable_cpus()
        self.decompose = decompose
        self._build()

    def _build(self) -> None:
        lp = self.lp
        if self.decompose and lp.n_col > 1:
            col_block, row_block = block_labels(lp.matrix, self.target_columns)
        else:
            col_block, row_block = np.zeros(lp.n_col, np.int64), np.zeros(lp.n_row, np.int64)
        n_blocks = int(col_block.max()) + 1 if lp.n_col else 1
        self.col_block, self.row_block = col_block, row_block
        if n_blocks == 1:
            self.blocks = [self._pass(np.arange(lp.n_col), np.arange(lp.n_row), lp.matrix, lp.offset)]
        else:
            # One permutation for all blocks: columns grouped by block (stable), rows likewise; a block's
            # columns are then a contiguous CSC slice whose row indices fall in its own row range.
            col_order = np.argsort(col_block, kind="stable")
            row_order = np.argsort(row_block, kind="stable")
            row_rank = np.empty(lp.n_row, np.int64)
            row_rank[row_order] = np.arange(lp.n_row)
            permuted = lp.matrix[:, col_order]
            permuted.indices = row_rank[permuted.indices]
            col_start = np.searchsorted(col_block[col_order], np.arange(n_blocks + 1))
            row_start = np.searchsorted(row_block[row_order], np.arange(n_blocks + 1))
            self.blocks = []
            for b in range(n_blocks):
                c0, c1, r0, r1 = col_start[b], col_start[b + 1], row_start[b], row_start[b + 1]
                part = permuted[:, c0:c1]
                part = sparse.csc_matrix((part.data, part.indices - r0, part.indptr), shape=(r1 - r0, c1 - c0))
                self.blocks.append(self._pass(col_order[c0:c1], row_order[r0:r1], part,
                                              lp.offset if b == 0 else 0.0))
        self.local_col = np.empty(lp.n_col, np.int64)
        self.local_row = np.empty(lp.n_row, np.int64)
        for block in self.blocks:
            self.local_col[block.cols] = np.arange(len(block.cols))
            self.local_row[block.rows] = np.arange(len(block.rows))
        logger.debug("LP of %d columns and %d rows in %d block(s)", lp.n_col, lp.n_row, len(self.blocks))

    def _pass(self, cols: np.ndarray, rows: np.ndarray, matrix: sparse.csc_matrix | None = None,
              offset: float = 0.0) -> _Block:
        return _Block(_highs_of(self._part(cols, rows, matrix, offset)), cols, rows, float(offset))

    def _part(self, cols: np.ndarray, rows: np.ndarray, matrix: sparse.csc_matrix | None = None,
              offset: float = 0.0) -> dict[str, Any]:
        """The LP restricted to ``cols`` and ``rows`` as plain arrays (``matrix``: that part of the matrix with
        local row indices, sliced here when not given)."""
        lp = self.lp
        if matrix is None:
            matrix = lp.matrix[:, cols][rows, :].tocsc()
        return {"cost": lp.cost[cols], "col_lower": lp.col_lower[cols], "col_upper": lp.col_upper[cols],
                "row_lower": lp.row_lower[rows], "row_upper": lp.row_upper[rows], "indptr": matrix.indptr,
                "indices": matrix.indices, "data": matrix.data, "offset": float(offset),
                "integrality": None if lp.integrality is None else lp.integrality[cols]}

    @property
    def n_blocks(self) -> int:
        return len(self.blocks)

    # --- changes between solves ----------------------------------------------------------------------

    def set_cost(self, cost: np.ndarray) -> None:
        """New objective coefficients for every column (global order)."""
        self.lp.cost = np.asarray(cost, dtype=float)
        for block in self.blocks:
            local = self.lp.cost[block.cols]
            block.highs.changeColsCost(len(local), np.arange(len(local), dtype=np.int32), local)

    def set_cols_cost(self, cols: np.ndarray, cost: np.ndarray) -> None:
        """New objective coefficients for some columns (global positions): one HiGHS call per block touched."""
        cols = np.asarray(cols, dtype=np.int64)
        cost = np.asarray(cost, dtype=float)
        self.lp.cost[cols] = cost
        block_of = self.col_block[cols]
        for b in np.unique(block_of).tolist():
            mine = block_of == b
            local = self.local_col[cols[mine]].astype(np.int32)
            self.blocks[b].highs.changeColsCost(len(local), local, cost[mine])

    def set_row_bounds(self, row: int, lower: float, upper: float) -> None:
        self.lp.row_lower[row], self.lp.row_upper[row] = lower, upper
        block = self.blocks[self.row_block[row]]
        block.highs.changeRowBounds(int(self.local_row[row]), lower, upper)

    def add_row(self, lower: float, upper: float, cols: np.ndarray, coefs: np.ndarray) -> int:
        """Append a row; if it spans several blocks they can no longer be solved apart, so the LP is handed
        over again as one (the emission cap, the only such row, spans nearly every column anyway)."""
        cols = np.asarray(cols, dtype=np.int64)
        coefs = np.asarray(coefs, dtype=float)
        self.lp = self.lp.with_row(lower, upper, cols, coefs)
        spanned = np.unique(self.col_block[cols])
        if len(spanned) <= 1 and len(cols):
            b = int(spanned[0])
            block = self.blocks[b]
            block.highs.addRow(lower, upper, len(cols), self.local_col[cols].astype(np.int32), coefs)
            block.rows = np.r_[block.rows, self.lp.n_row - 1]
            self.row_block = np.r_[self.row_block, b]
            self.local_row = np.r_[self.local_row, len(block.rows) - 1]
        else:
            self.decompose = False
            self._build()
        return self.lp.n_row - 1

    def add_columns(self, cost: np.ndarray, lower: np.ndarray, upper: np.ndarray, matrix: sparse.csc_matrix,
                    *, defer: bool = False) -> np.ndarray:
        """Append continuous columns (``matrix``: their non-zeros in the LP's existing rows, n_row × k) and
        return their global positions (after every existing column).

        A column whose rows lie in one block goes into that block's HiGHS instance, which keeps its basis (the
        new column nonbasic at its lower bound) and its factorisation, so the next simplex solve continues from
        the last optimum. Columns that join blocks merge them: the merged block gets a new instance, started
        from the blocks' bases put together (still a basis: each part keeps its count of basic variables).
        Column generation grows its restricted model this way between rounds (symbiosis.exchange.grow).
        With ``defer`` the columns only join the LP kept here, and no instance is touched: call
        :meth:`redecompose` before the next solve (one hand-over of the grown LP instead of merges).
        """
        import highspy

        cost = np.asarray(cost, dtype=float)
        lower = np.asarray(lower, dtype=float)
        upper = np.asarray(upper, dtype=float)
        k = len(cost)
        lp = self.lp
        if matrix.shape != (lp.n_row, k):
            raise ValueError(f"new columns' matrix is {matrix.shape}, expected ({lp.n_row}, {k})")
        new = np.arange(lp.n_col, lp.n_col + k, dtype=np.int64)
        if k == 0:
            return new
        matrix = sparse.csc_matrix(matrix)
        matrix.sort_indices()
        integrality = None if lp.integrality is None else np.r_[lp.integrality, np.zeros(k, lp.integrality.dtype)]
        self.lp = StandardForm(np.r_[lp.cost, cost], np.r_[lp.col_lower, lower], np.r_[lp.col_upper, upper],
                               lp.row_lower, lp.row_upper, sparse.hstack([lp.matrix, matrix], format="csc"),
                               lp.offset, integrality)
        del lp
        if defer:
            self._stale = True
            return new
        # The block of each new column's rows; a column in no row joins block 0.
        counts = np.diff(matrix.indptr)
        term_block = self.row_block[matrix.indices]
        term_col = np.repeat(np.arange(k), counts)
        col_first = np.zeros(k, np.int64)
        has = counts > 0
        col_first[has] = term_block[matrix.indptr[:-1][has]]
        n_blocks = len(self.blocks)
        # Blocks joined by a column: components of the graph whose edges link each term's block to the column's
        # first block.
        link = sparse.coo_matrix((np.ones(len(term_col), np.int8), (col_first[term_col], term_block)),
                                 shape=(n_blocks, n_blocks))
        _, group = connected_components(link, directed=False)
        sizes = np.bincount(group, minlength=group.max() + 1)
        merged = sizes[group] > 1  # per block: part of a merge
        col_group_merged = merged[col_first]
        basis = self.global_basis() if merged.any() else None
        # Columns that stay in one block: addCols, the instance keeps its basis.
        for b in np.unique(col_first[~col_group_merged]).tolist():
            mine = np.flatnonzero((col_first == b) & ~col_group_merged)
            block = self.blocks[b]
            part = matrix[:, mine]
            local_rows = self.local_row[part.indices].astype(np.int32)
            status = block.highs.addCols(len(mine), cost[mine], lower[mine], upper[mine], int(part.nnz),
                                         part.indptr[:-1].astype(np.int32), local_rows, part.data.astype(float))
            if status != highspy.HighsStatus.kOk:
                raise ValueError(f"HiGHS refused new columns ({status})")
            block.cols = np.r_[block.cols, new[mine]]
        if merged.any():
            kept = [block for b, block in enumerate(self.blocks) if not merged[b]]
            for g in np.unique(group[merged]).tolist():
                members = np.flatnonzero(group == g)
                parts = [self.blocks[b] for b in members.tolist()]
                cols = np.sort(np.concatenate([*(p.cols for p in parts), new[np.isin(col_first, members)]]))
                rows = np.sort(np.concatenate([p.rows for p in parts]))
                block = self._pass(cols, rows, offset=sum(p.offset for p in parts))
                if basis is not None:  # taken after the columns were appended: theirs 0, nonbasic at lower
                    self._set_block_basis(block, basis[0][cols], basis[1][rows])
                kept.append(block)
            self.blocks = kept
            self._index()
        else:
            self._index_columns(new, col_first)
        return new

    def redecompose(self) -> None:
        """Find the LP's blocks anew and hand each to a new instance, keeping the basis where there is one.

        Merges in :meth:`add_columns` join whole packed blocks, so after many columns the blocks can be far
        larger than the LP's components; this splits them again (each new block is a union of components, so
        the basis of the whole restricted to it is a basis of it)."""
        basis = None if self._stale else self.global_basis()
        self.decompose = True
        self.blocks = []  # the old instances freed before the new ones are made
        self._build()
        self._stale = False
        if basis is not None:
            self.set_global_basis(*basis)

    def _index(self) -> None:
        """Block and local position of every column and row, from the blocks."""
        self.col_block = np.empty(self.lp.n_col, np.int64)
        self.row_block = np.empty(self.lp.n_row, np.int64)
        self.local_col = np.empty(self.lp.n_col, np.int64)
        self.local_row = np.empty(self.lp.n_row, np.int64)
        for b, block in enumerate(self.blocks):
            self.col_block[block.cols] = b
            self.row_block[block.rows] = b
            self.local_col[block.cols] = np.arange(len(block.cols))
            self.local_row[block.rows] = np.arange(len(block.rows))

    def _index_columns(self, new: np.ndarray, block_of: np.ndarray) -> None:
        """Block and local position of columns appended to their blocks (the last of each block's columns)."""
        self.col_block = np.r_[self.col_block, block_of]
        local = np.empty(len(new), np.int64)
        for b in np.unique(block_of).tolist():
            mine = np.flatnonzero(block_of == b)
            local[mine] = len(self.blocks[b].cols) - len(mine) + np.arange(len(mine))
        self.local_col = np.r_[self.local_col, local]

    def set_rows_bounds(self, rows: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> None:
        """New bounds for many rows (global positions) at once: one HiGHS call per block touched."""
        self._set_bounds("row", rows, lower, upper)

    def set_cols_bounds(self, cols: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> None:
        """New bounds for many columns (global positions) at once: one HiGHS call per block touched."""
        self._set_bounds("col", cols, lower, upper)

    def _set_bounds(self, kind: str, positions: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> None:
        """Bounds of rows (``kind`` "row") or columns ("col"): in the kept LP, then per block in HiGHS."""
        positions = np.asarray(positions, dtype=np.int64)
        lower = np.asarray(lower, dtype=float)
        upper = np.asarray(upper, dtype=float)
        getattr(self.lp, f"{kind}_lower")[positions] = lower
        getattr(self.lp, f"{kind}_upper")[positions] = upper
        block_of = getattr(self, f"{kind}_block")[positions]
        local_of = getattr(self, f"local_{kind}")
        for b in np.unique(block_of).tolist():
            mine = block_of == b
            local = local_of[positions[mine]].astype(np.int32)
            change = self.blocks[b].highs.changeRowsBounds if kind == "row" else self.blocks[b].highs.changeColsBounds
            change(len(local), local, lower[mine], upper[mine])

    def set_coefficients(self, rows: np.ndarray, cols: np.ndarray, values: np.ndarray) -> None:
        """Change existing non-zeros A[row, col] (global positions); a (row, col) must lie in one block,
        which it does for any non-zero the LP already has. HiGHS changes one coefficient a call."""
        rows = np.asarray(rows, dtype=np.int64)
        cols = np.asarray(cols, dtype=np.int64)
        values = np.asarray(values, dtype=float)
        if np.any(self.row_block[rows] != self.col_block[cols]):
            raise ValueError("a coefficient change would join two independent blocks")
        matrix = self.lp.matrix
        for r, c, v in zip(rows.tolist(), cols.tolist(), values.tolist(), strict=True):
            lo, hi = matrix.indptr[c], matrix.indptr[c + 1]
            hit = np.flatnonzero(matrix.indices[lo:hi] == r)
            if len(hit):
                matrix.data[lo + hit[0]] = v
            block = self.blocks[self.col_block[c]]
            block.highs.changeCoeff(int(self.local_row[r]), int(self.local_col[c]), v)

    def bases(self) -> list[Any]:
        """The current basis of every block (HiGHS ``HighsBasis`` objects; invalid before the first solve)."""
        return [block.highs.getBasis() for block in self.blocks]

    def set_bases(self, bases: list[Any]) -> None:
        """Start the next solve of every block from ``bases`` (as :meth:`bases` returned them)."""
        if len(bases) != len(self.blocks):
            raise ValueError(f"{len(bases)} bases for {len(self.blocks)} blocks")
        for block, basis in zip(self.blocks, bases, strict=True):
            if basis.valid:
                block.highs.setBasis(basis)

    def global_basis(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The basis of the whole LP as HiGHS status codes (``HighsBasisStatus`` values: 0 lower, 1 basic,
        2 upper, 3 zero, 4 nonbasic) per global column and row; None when a block has no valid basis."""
        cols = np.zeros(self.lp.n_col, np.int8)
        rows = np.zeros(self.lp.n_row, np.int8)
        for block in self.blocks:
            basis = block.highs.getBasis()
            if not basis.valid:
                return None
            cols[block.cols], rows[block.rows] = _codes(basis)
        return cols, rows

    def set_global_basis(self, cols: np.ndarray, rows: np.ndarray) -> None:
        """Start the next solve of every block from a basis of the whole LP (as :meth:`global_basis` gives it;
        each block's part must hold as many basic columns and rows as the block has rows)."""
        for block in self.blocks:
            self._set_block_basis(block, cols[block.cols], rows[block.rows])

    @staticmethod
    def _set_block_basis(block: _Block, cols: np.ndarray, rows: np.ndarray) -> None:
        _set_basis(block.highs, cols, rows)

    # --- solving -------------------------------------------------------------------------------------

    def run(self, options: dict[str, Any], only: np.ndarray | None = None) -> BlockResult:
        """Solve every block with ``options`` (HiGHS option name → value) and assemble the solution.

        A ``time_limit`` holds for the whole solve, not for each block: a block starts with what is left.
        ``only``: the blocks to solve (their numbers); the others keep the solution of their last solve, which
        is right only when nothing of theirs changed since (symbiosis.exchange.incremental).
        """
        if self._stale:
            raise RuntimeError("columns were added with defer=True: call redecompose() before solving")
        blocks = self.blocks if only is None else [self.blocks[b] for b in np.unique(only).tolist()]
        executor = _REMOTE[-1] if _REMOTE else None
        if executor is not None and self.lp.integrality is None:
            self._run_remote(executor, blocks, options)
            return self._assemble()
        for block in blocks:
            block.remote = None
            for name, value in options.items():
                block.highs.setOptionValue(name, value)
        limit = float(options.get("time_limit", INF))
        started = time.perf_counter()

        def solve(block: _Block) -> None:
            if math.isfinite(limit):
                block.highs.setOptionValue("time_limit", max(0.0, limit - (time.perf_counter() - started)))
            block.highs.run()

        workers = min(self.threads, len(blocks))
        if workers > 1:
            # Largest blocks first, so that one does not start last and leave a core idle at the end.
            order = sorted(blocks, key=lambda b: -len(b.cols))
            with ThreadPoolExecutor(max_workers=workers) as pool:
                list(pool.map(solve, order))
        else:
            for block in blocks:
                solve(block)
        return self._assemble()

    def _run_remote(self, executor: Any, blocks: list[_Block], options: dict[str, Any]) -> None:
        """Solve ``blocks`` on ``executor``'s workers, each from its instance's basis; the answers are kept on the
        blocks and their bases set back into the local instances (so that later changes start from them)."""
        futures = []
        for block in sorted(blocks, key=lambda b: -len(b.cols)):
            basis = block.highs.getBasis()
            payload = {**self._part(block.cols, block.rows, offset=block.offset), "options": dict(options),
                       "basis": _codes(basis) if basis.valid else None}
            futures.append((block, executor.submit(solve_block, payload)))
        for block, future in futures:
            answer = future.result()
            block.remote = answer
            if answer["basis"] is not None:
                self._set_block_basis(block, *answer["basis"])

    def _assemble(self) -> BlockResult:
        import highspy

        col_value = np.zeros(self.lp.n_col)
        row_dual = np.zeros(self.lp.n_row)
        objective = 0.0
        mip_gap = 0.0
        worst: Any = highspy.HighsModelStatus.kOptimal
        statuses = []
        for block in self.blocks:
            if block.remote is not None:
                answer = block.remote
                status = highspy.HighsModelStatus(answer["status"])
                statuses.append(answer["termination"])
                if status != highspy.HighsModelStatus.kOptimal:
                    worst = status if worst == highspy.HighsModelStatus.kOptimal else worst
                    continue
                col_value[block.cols] = answer["col_value"]
                row_dual[block.rows] = answer["row_dual"]
                objective += answer["objective"]
                continue
            h = block.highs
            status = h.getModelStatus()
            statuses.append(h.modelStatusToString(status))
            if status != highspy.HighsModelStatus.kOptimal:
                worst = status if worst == highspy.HighsModelStatus.kOptimal else worst
                continue
            sol = h.getSolution()
            col_value[block.cols] = np.asarray(sol.col_value, dtype=float)
            row_dual[block.rows] = np.asarray(sol.row_dual, dtype=float)
            info = h.getInfo()
            objective += float(info.objective_function_value)
            if self.lp.integrality is not None:
                mip_gap = max(mip_gap, float(info.mip_gap))
        termination = self.blocks[0].highs.modelStatusToString(worst)
        return BlockResult(col_value, row_dual, objective, worst, termination, statuses,
                           mip_gap if self.lp.integrality is not None else math.nan)


#: Executors that solve blocks on other processes or machines, innermost last (see :func:`remote_blocks`).
_REMOTE: list[Any] = []


@contextmanager
def remote_blocks(executor: Any) -> Iterator[None]:
    """Within the block, every LP's blocks are solved on ``executor`` (a ``concurrent.futures.Executor``: a Dask
    distributed client's ``get_executor()`` for a cluster, or a process pool), one task a block, each started
    from the block's basis when it has one; the answers and bases come back to this process, which keeps
    every HiGHS instance as it would locally. The optimum is the same as solved here (each block is the same
    LP, solved by the same HiGHS). Mixed-integer models stay local. ``None`` leaves solving local."""
    if executor is None:
        yield
        return
    _REMOTE.append(executor)
    try:
        yield
    finally:
        _REMOTE.pop()


def _highs_of(part: dict[str, Any]) -> Any:
    """A HiGHS instance holding the LP of ``part`` (as :meth:`BlockSolver._part` makes it), output off."""
    import highspy

    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    n_col = len(part["cost"])
    integrality = part.get("integrality")
    status = h.passModel(
        n_col, len(part["row_lower"]), int(len(part["data"])), 1, 1, float(part["offset"]),
        np.asarray(part["cost"], float), np.asarray(part["col_lower"], float), np.asarray(part["col_upper"], float),
        np.asarray(part["row_lower"], float), np.asarray(part["row_upper"], float),
        np.asarray(part["indptr"], np.int32), np.asarray(part["indices"], np.int32), np.asarray(part["data"], float),
        # 0 = kContinuous, 1 = kInteger: a MIP's binaries (0..1 bounds) are integer columns.
        np.zeros(n_col, np.int32) if integrality is None else np.asarray(integrality, np.int32),
    )
    if status != highspy.HighsStatus.kOk:
        raise ValueError(f"HiGHS refused the LP ({status}); check the data for infinite or huge values")
    return h


def _codes(basis: Any) -> tuple[np.ndarray, np.ndarray]:
    """A ``HighsBasis`` as status codes (int8) per column and per row."""
    return (np.fromiter((int(s) for s in basis.col_status), np.int8, len(basis.col_status)),
            np.fromiter((int(s) for s in basis.row_status), np.int8, len(basis.row_status)))


def _set_basis(h: Any, cols: np.ndarray, rows: np.ndarray) -> None:
    """Give ``h`` the basis of status codes ``cols`` and ``rows`` (as :func:`_codes` makes them)."""
    import highspy

    by_code = {int(s): s for s in highspy.HighsBasisStatus.__members__.values()}
    basis = highspy.HighsBasis()
    basis.col_status = [by_code[int(c)] for c in cols]
    basis.row_status = [by_code[int(r)] for r in rows]
    basis.valid = True
    if h.setBasis(basis) != highspy.HighsStatus.kOk:
        raise ValueError("HiGHS refused a starting basis")


def solve_block(payload: dict[str, Any]) -> dict[str, Any]:
    """Solve one block's LP in this process (a worker's task): its arrays, HiGHS options and starting basis in
    ``payload``; returns the primal values, row duals, objective, model status and optimal basis."""
    import highspy

    h = _highs_of(payload)
    n_col, n_row = len(payload["cost"]), len(payload["row_lower"])
    for name, value in payload["options"].items():
        h.setOptionValue(name, value)
    if payload["basis"] is not None:
        _set_basis(h, *payload["basis"])
    h.run()
    model_status = h.getModelStatus()
    answer: dict[str, Any] = {"status": int(model_status), "termination": h.modelStatusToString(model_status),
                              "col_value": np.zeros(n_col), "row_dual": np.zeros(n_row), "objective": 0.0,
                              "basis": None}
    if model_status == highspy.HighsModelStatus.kOptimal:
        sol = h.getSolution()
        answer["col_value"] = np.asarray(sol.col_value, dtype=float)
        answer["row_dual"] = np.asarray(sol.row_dual, dtype=float)
        answer["objective"] = float(h.getInfo().objective_function_value)
        basis = h.getBasis()
        if basis.valid:
            answer["basis"] = _codes(basis)
    return answer


__all__ = ["BlockResult", "BlockSolver", "StandardForm", "block_labels", "remote_blocks", "solve_block"]
