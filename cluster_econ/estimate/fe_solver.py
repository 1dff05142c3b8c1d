"""Fixed effects on weakly connected graphs: the normal equations of the dummies, solved directly.

Alternating projections (:mod:`cluster_econ.estimate.demean`) converge at a rate set by how well
the fixed-effect graph is connected. On a worker-firm panel with few movers, a firm is linked to
the rest only through a handful of workers, and the method needs tens of thousands of sweeps.
This module computes the same projection without sweeping.

Model. With dummies :math:`D = [D_e, D_R]` (``e``: the factor with the most levels, eliminated;
``R``: the others) and weights :math:`W`, the within transformation of a column :math:`x` is
:math:`r = x - D\\alpha` where :math:`D'WD\\alpha = D'Wx`. Eliminating :math:`\\alpha_e` (its
block :math:`D_e'WD_e` is diagonal) leaves the Schur complement

.. math:: S\\,\\beta = b, \\qquad S = D_R'WD_R - C'\\,\\mathrm{diag}(1/w_e)\\,C, \\qquad
          C = D_e'WD_R, \\qquad b = D_R'W(x - P_e x),

a sparse symmetric positive semi-definite system of size :math:`\\sum_{k \\in R} G_k` (about the
number of firms and years, not workers), and :math:`r = (I - P_e)(x - D_R\\beta)`. The system is
singular by construction: within each connected component of the bipartite graph of ``e`` and a
factor ``k``, the levels of ``k`` sum to the same column as the levels of ``e``. One level of
``k`` per component is therefore dropped (its coefficient set to zero), which removes exactly
redundant columns and leaves the projection unchanged. On a low-mobility panel most firms are a
component of their own (no movers), so the system shrinks to the firms that movers connect.

Solution. Conjugate gradients on :math:`S` with a diagonal (Jacobi) preconditioner, stopped
when every group mean of the residual is below the tolerance; this converges in tens to a few
thousand iterations of cost ``nnz(S)``. If it has not converged within its budget, a sparse LU
factorization (SuperLU, ``scipy.sparse.linalg.splu``) is computed once and reused for every
column (weakly connected graphs, where conjugate gradients struggle, are also the ones whose
factorization stays sparse). The caller checks the result with one sweep of alternating
projections, the same convergence criterion as the fast path.

Why our own code: pyfixest's LSMR demeaner needs its Rust extension and has no cache across
specifications; scipy provides the sparse kernels (``csgraph``, ``splu``), and the elimination of
the largest factor is what makes the system small enough to solve this way.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["ReducedSystem", "components_of_levels", "pair_components"]

CG_BUDGET = 2_000  # iterations before falling back to the factorization
CG_MAX = 200_000  # iterations when there is no factorization to fall back on
DIRECT_MAX_LEVELS = 200_000  # larger reduced systems are not factorized
_PAIR_DENSE = 4_000_000  # count level pairs in a dense table when G_k^2 is at most this


def _dot(a: np.ndarray, b: np.ndarray) -> float:
    """Inner product without BLAS (BLAS threads on short vectors cost more than they save)."""
    return float(np.einsum("i,i->", a, b))


def components_of_levels(ce: np.ndarray, ge: int, ck: np.ndarray, gk: int) -> tuple[int, np.ndarray]:
    """Connected components of the levels of factor ``k`` in the bipartite graph that links each
    row's level of ``e`` (``ce``, ``ge`` levels) to its level of ``k`` (``ck``, ``gk`` levels).

    Two levels of ``k`` are connected when a chain of rows through levels of ``e`` joins them.
    Every level of ``e`` is tied to one level of ``k`` (an anchor: the ``k`` of its first row),
    so joining each row's ``k`` to the anchor of its ``e`` gives the same components on a graph
    of ``gk`` nodes. Returns the number of components and each level's component label.
    """
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    if gk == 0:
        return 0, np.zeros(0, dtype=np.int64)
    anchor = np.zeros(max(ge, 1), dtype=np.int64)
    anchor[ce[::-1]] = ck[::-1]  # the last write wins: the first row of each level of e
    a = anchor[ce]
    moved = a != ck
    a, b = a[moved], ck[moved]
    if gk * gk <= _PAIR_DENSE:
        pairs = np.flatnonzero(np.bincount(a * gk + b, minlength=gk * gk))
        a, b = pairs // gk, pairs % gk
    graph = csr_matrix((np.ones(len(a)), (a, b)), shape=(gk, gk))
    n, labels = connected_components(graph, directed=False)
    return int(n), labels.astype(np.int64)


def pair_components(codes: Sequence[np.ndarray], sizes: Sequence[int]) -> int:
    """Connected components of the bipartite graph of the first two factors (every level of the
    first factor belongs to the component of a level of the second)."""
    return components_of_levels(codes[0], sizes[0], codes[1], sizes[1])[0]


class ReducedSystem:
    """The normal equations of the fixed-effect dummies with the largest factor eliminated (see
    the module docstring), built once per estimation sample and reused for every column.

    Attributes
    ----------
    eliminated : int
        Index of the factor eliminated (the one with the most levels).
    size : int
        Unknowns of the reduced system after one level per component was dropped.
    dropped : int
        Levels dropped as exactly redundant (components of each pair with the eliminated factor).
    method : str
        ``"conjugate gradients"`` or ``"sparse LU"``: what solved the last system.
    iterations : int
        Conjugate-gradient iterations of the last solve (0 with the factorization).
    """

    def __init__(self, codes: Sequence[np.ndarray], sizes: Sequence[int], weights: np.ndarray | None) -> None:
        from scipy import sparse

        self.codes, self.sizes = list(codes), list(sizes)
        n = len(self.codes[0])
        e = int(np.argmax(self.sizes))
        self.eliminated = e
        self.others = [k for k in range(len(self.codes)) if k != e]
        ce, ge = self.codes[e], self.sizes[e]
        w = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
        self.weights = weights
        we = np.bincount(ce, weights=w, minlength=ge)
        self.inv_we = np.divide(1.0, we, out=np.zeros(ge), where=we > 0)
        # codes of the other factors on the reduced unknowns; a dropped level maps to the extra
        # slot at the end of its block (a coefficient fixed at zero), so no row is masked
        self.reduced: list[np.ndarray] = []
        self.remaps: list[np.ndarray] = []
        self.offsets = [0]
        self.dropped = 0
        for k in self.others:
            _, labels = components_of_levels(ce, ge, self.codes[k], self.sizes[k])
            first = np.unique(labels, return_index=True)[1]
            keep = np.ones(self.sizes[k], dtype=bool)
            keep[first] = False
            m_k = int(keep.sum())
            remap = np.full(self.sizes[k], m_k, dtype=np.int64)
            remap[keep] = np.arange(m_k)
            self.remaps.append(remap)
            self.reduced.append(remap[self.codes[k]])
            self.offsets.append(self.offsets[-1] + m_k)
            self.dropped += len(first)
        self.size = self.offsets[-1]
        blocks_c = []
        for i, c in enumerate(self.reduced):
            m_i = self.offsets[i + 1] - self.offsets[i]
            ci = sparse.csr_matrix((w, (ce, c)), shape=(ge, m_i + 1))[:, :m_i]
            ci.sum_duplicates()
            blocks_c.append(ci)
        scaled = [sparse.diags(self.inv_we) @ ci for ci in blocks_c]
        grid: list[list[object]] = [[None] * len(self.reduced) for _ in self.reduced]
        for i, a in enumerate(self.reduced):
            m_i = self.offsets[i + 1] - self.offsets[i]
            for j in range(i, len(self.reduced)):
                m_j = self.offsets[j + 1] - self.offsets[j]
                if i == j:
                    cross = sparse.diags(np.bincount(a, weights=w, minlength=m_i + 1)[:m_i])
                else:
                    cross = sparse.csr_matrix((w, (a, self.reduced[j])), shape=(m_i + 1, m_j + 1))[:m_i, :m_j]
                grid[i][j] = (cross - blocks_c[i].T @ scaled[j]).tocsr()
                if j > i:
                    grid[j][i] = grid[i][j].T
        self.S = sparse.bmat(grid, format="csr") if self.size else sparse.csr_matrix((0, 0))
        self.S.sum_duplicates()
        diag = self.S.diagonal()
        top = float(diag.max()) if len(diag) else 0.0
        self.jacobi = np.divide(1.0, diag, out=np.zeros(len(diag)), where=diag > 1e-12 * top)
        counts = [np.bincount(c, weights=w, minlength=self.offsets[i + 1] - self.offsets[i] + 1)
                  [:self.offsets[i + 1] - self.offsets[i]] for i, c in enumerate(self.reduced)]
        cnt = np.concatenate(counts) if counts else np.zeros(0)
        self.inv_counts = np.divide(1.0, cnt, out=np.zeros(len(cnt)), where=cnt > 0)
        self._lu = None
        self._cg_failed = False
        self.method = "conjugate gradients"
        self.iterations = 0

    # -- the projection ----------------------------------------------------------------------
    def _weighted(self, x: np.ndarray) -> np.ndarray:
        return x if self.weights is None else x * self.weights

    def _less_mean_e(self, x: np.ndarray) -> np.ndarray:
        ce = self.codes[self.eliminated]
        m = np.bincount(ce, weights=self._weighted(x), minlength=self.sizes[self.eliminated]) * self.inv_we
        return x - m[ce]

    def rhs(self, x: np.ndarray) -> np.ndarray:
        """``b = D_R'W(x - P_e x)`` on the reduced unknowns."""
        xt = self._weighted(self._less_mean_e(x))
        parts = [np.bincount(c, weights=xt, minlength=self.offsets[i + 1] - self.offsets[i] + 1)
                 [:self.offsets[i + 1] - self.offsets[i]] for i, c in enumerate(self.reduced)]
        return np.concatenate(parts) if parts else np.zeros(0)

    def coefficients(self, beta: np.ndarray) -> list[np.ndarray]:
        """Per factor in ``others``: each row's coefficient (zero for dropped levels)."""
        out = []
        for i, c in enumerate(self.reduced):
            ext = np.append(beta[self.offsets[i]:self.offsets[i + 1]], 0.0)
            out.append(ext[c])
        return out

    def residual(self, x: np.ndarray, thresh: float) -> np.ndarray:
        """``(I - P_D) x``, with every group mean of the reduced equations below ``thresh``."""
        x = np.asarray(x, dtype=float)
        beta = self.solve(self.rhs(x), thresh)
        z = x.copy()
        for part in self.coefficients(beta):
            z -= part
        return self._less_mean_e(z)

    def effects(self, d: np.ndarray, thresh: float) -> list[np.ndarray]:
        """Fixed-effect values (one per level of each factor, in factor order) whose sum over a
        row's levels is the projection of ``d`` on the dummies; dropped levels are zero."""
        d = np.asarray(d, dtype=float)
        beta = self.solve(self.rhs(d), thresh)
        vals: list[np.ndarray] = [np.zeros(0)] * len(self.codes)
        z = d.copy()
        for i, k in enumerate(self.others):
            ext = np.append(beta[self.offsets[i]:self.offsets[i + 1]], 0.0)
            vals[k] = ext[self.remaps[i]]
            z -= ext[self.reduced[i]]
        e = self.eliminated
        vals[e] = np.bincount(self.codes[e], weights=self._weighted(z), minlength=self.sizes[e]) * self.inv_we
        return vals

    # -- the reduced system ------------------------------------------------------------------------
    def solve(self, b: np.ndarray, thresh: float) -> np.ndarray:
        """``S beta = b`` until every reduced group mean of the residual is below ``thresh``."""
        if self.size == 0:
            return np.zeros(0)
        if self._lu is not None:
            self.method, self.iterations = "sparse LU", 0
            return self._lu.solve(b)
        if not self._cg_failed:
            beta, ok = self._cg(b, thresh, CG_BUDGET)
            if ok:
                return beta
            self._cg_failed = True
        if self.size <= DIRECT_MAX_LEVELS:
            from scipy.sparse.linalg import splu

            try:
                self._lu = splu(self.S.tocsc(), permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0)
            except RuntimeError:  # exactly singular: a redundancy the components do not reveal
                self._lu = None
            else:
                self.method, self.iterations = "sparse LU", 0
                return self._lu.solve(b)
        return self._cg(b, thresh, CG_MAX)[0]

    def _cg(self, b: np.ndarray, thresh: float, maxiter: int) -> tuple[np.ndarray, bool]:
        """Jacobi-preconditioned conjugate gradients from zero."""
        S, jac, inv_cnt = self.S, self.jacobi, self.inv_counts
        target = 0.1 * thresh
        beta = np.zeros_like(b)
        r = b.copy()
        z = jac * r
        p = z.copy()
        rz = _dot(r, z)
        self.method = "conjugate gradients"
        for it in range(maxiter + 1):
            if float(np.max(np.abs(r) * inv_cnt)) <= target:
                self.iterations = it
                return beta, True
            if it == maxiter or rz <= 0:
                break
            sp_ = S @ p
            curv = _dot(p, sp_)
            if curv <= 0:
                break
            step = rz / curv
            beta += step * p
            r -= step * sp_
            z = jac * r
            rz_new = _dot(r, z)
            p = z + (rz_new / rz) * p
            rz = rz_new
        self.iterations = it
        return beta, False
