"""Absorbing fixed effects: the method of alternating projections, with a reusable cache.

For fixed-effect factors :math:`D_1, \\dots, D_J` the within transformation of a column :math:`x`
is the residual of its (weighted) projection on the span of all dummies. It is computed by
sweeping: subtract the group means of factor 1, then of factor 2, ..., and repeat until a full
sweep changes no value by more than ``tol`` (relative to the column's scale). Group means are
computed with ``np.bincount``, so one sweep costs O(N) per column and factor. Every second sweep
is followed by an Irons-Tuck extrapolation, which speeds up slow (unbalanced, weakly connected)
cases without changing the fixed point.

Why our own code: the projection is a few lines of numpy, and writing it here lets estimators
share a cache of demeaned columns keyed by the sample and the fixed-effect set, so that fifty
specifications on one sample demean each column once (pyfixest's ``demean`` has no such cache, and
importing it would make the package depend on numba).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from cluster_econ.errors import EstimationError

__all__ = ["Absorber", "DemeanInfo", "clear_cache", "factorize", "get_absorber", "singleton_mask"]


def factorize(fe: pd.DataFrame) -> list[np.ndarray]:
    """Integer codes 0..G-1 of each fixed-effect column (no missing values allowed)."""
    out = []
    for col in fe.columns:
        codes, _ = pd.factorize(fe[col], sort=False)
        if (codes < 0).any():
            raise EstimationError(f"fixed effect {col!r} has missing values")
        out.append(codes.astype(np.int64))
    return out


def recode(codes: Sequence[np.ndarray], mask: np.ndarray | None = None) -> list[np.ndarray]:
    """Codes restricted to the rows in ``mask``, renumbered 0..G-1 without gaps."""
    out = []
    for c in codes:
        c = c[mask] if mask is not None else c
        _, inv = np.unique(c, return_inverse=True)
        out.append(inv.astype(np.int64))
    return out


def singleton_mask(codes: Sequence[np.ndarray], max_rounds: int = 1000) -> np.ndarray:
    """Rows to keep after iteratively removing observations alone in a fixed-effect group.

    Removing a singleton of one factor can create a singleton in another, so the removal repeats
    until no factor has a group of size one (as Stata's reghdfe and R's fixest do).
    """
    n = len(codes[0]) if codes else 0
    keep = np.ones(n, dtype=bool)
    for _ in range(max_rounds):
        changed = False
        for c in codes:
            counts = np.bincount(c[keep], minlength=int(c.max()) + 1 if n else 0)
            single = keep & (counts[c] == 1)
            if single.any():
                keep &= ~single
                changed = True
        if not changed:
            break
    return keep


@dataclass
class DemeanInfo:
    """Convergence of the last demeaning: sweeps used and the largest change in the last sweep."""

    iterations: int = 0
    achieved_tol: float = 0.0
    converged: bool = True
    computed: int = 0
    reused: int = 0


def _fingerprint(a: np.ndarray | None) -> tuple[Any, ...]:
    """Cheap lookup key of an array (verified exactly with ``np.array_equal`` on a hit)."""
    if a is None:
        return ("none",)
    n = len(a)
    if n == 0:
        return (str(a.dtype), 0)
    step = max(1, n // 64)
    return (str(a.dtype), n, float(np.sum(a[::step], dtype=float)), float(a[0]), float(a[-1]))


_CACHE: OrderedDict[tuple[Any, ...], list[Absorber]] = OrderedDict()
_CACHE_ENTRIES = 4


def clear_cache() -> None:
    """Forget all cached absorbers and their demeaned columns."""
    _CACHE.clear()


def get_absorber(codes: list[np.ndarray], weights: np.ndarray | None = None, tol: float = 1e-10,
                 maxiter: int = 10_000) -> Absorber:
    """The cached :class:`Absorber` of these fixed-effect codes and weights, or a new one.

    A hit requires exactly equal codes and weights (compared element by element), so a cache
    entry is never served for a different sample.
    """
    key = (tuple(_fingerprint(c) for c in codes), _fingerprint(weights), tol, maxiter)
    for ab in _CACHE.get(key, []):
        same = all(np.array_equal(a, b) for a, b in zip(ab.codes, codes, strict=True))
        if same and (weights is None) == (ab.weights is None) and (
                weights is None or np.array_equal(weights, ab.weights)):
            _CACHE.move_to_end(key)
            return ab
    ab = Absorber([np.ascontiguousarray(c) for c in codes],
                  None if weights is None else np.ascontiguousarray(weights, dtype=float), tol, maxiter)
    _CACHE.setdefault(key, []).append(ab)
    _CACHE.move_to_end(key)
    while sum(len(v) for v in _CACHE.values()) > _CACHE_ENTRIES:
        k0 = next(iter(_CACHE))
        _CACHE[k0].pop(0)
        if not _CACHE[k0]:
            del _CACHE[k0]
    return ab


@dataclass
class Absorber:
    """Fixed effects of one estimation sample, ready to demean columns.

    Parameters
    ----------
    codes : list of int arrays
        Group codes 0..G-1 of each factor on the estimation sample.
    weights : array, optional
        Analytic weights (weighted group means).
    tol, maxiter : convergence tolerance (relative, per column) and maximum number of sweeps.
    """

    codes: list[np.ndarray]
    weights: np.ndarray | None = None
    tol: float = 1e-10
    maxiter: int = 10_000
    info: DemeanInfo = field(default_factory=DemeanInfo)

    def __post_init__(self) -> None:
        self.n = len(self.codes[0]) if self.codes else 0
        self.sizes = [int(c.max()) + 1 if len(c) else 0 for c in self.codes]
        w = self.weights
        self.denoms = [np.bincount(c, weights=w, minlength=g) for c, g in zip(self.codes, self.sizes,
                                                                              strict=True)]
        self.inv_denoms = [np.divide(1.0, d, out=np.zeros(len(d)), where=d > 0) for d in self.denoms]
        # demeaned columns by name, with the raw values they were computed from
        self._store: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._dof_memo: dict[str, int] = {}

    # -- one sweep over all factors for one contiguous column, in place ----------------------
    def _sweep1(self, x: np.ndarray) -> float:
        """Subtract the group means of each factor in turn; returns the sum over factors of the
        largest absolute mean removed (an upper bound on the change of any element)."""
        w = self.weights
        moved = 0.0
        for c, g, inv in zip(self.codes, self.sizes, self.inv_denoms, strict=True):
            m = np.bincount(c, weights=x * w if w is not None else x, minlength=g)
            m *= inv
            x -= m[c]
            moved += float(np.max(np.abs(m))) if g else 0.0
        return moved

    def _demean1(self, col: np.ndarray) -> tuple[np.ndarray, int, float]:
        x = np.array(col, dtype=float, copy=True)
        if len(self.codes) == 1:
            self._sweep1(x)
            return x, 1, 0.0
        scale = float(np.sqrt(np.mean(x * x))) if len(x) else 1.0
        thresh = self.tol * (scale if scale > 0 else 1.0)
        it = 0
        moved = np.inf
        while it < self.maxiter:
            x0 = x.copy()
            moved = self._sweep1(x)
            it += 1
            if moved <= thresh:
                return x, it, moved / (scale or 1.0)
            x1 = x.copy()
            moved = self._sweep1(x)
            it += 1
            if moved <= thresh:
                return x, it, moved / (scale or 1.0)
            # Irons-Tuck extrapolation from x0 -> x1 -> x (= x2)
            d21 = x - x1
            d2 = d21 - (x1 - x0)
            den = float(d2 @ d2)
            if den > 0:
                x -= (float(d21 @ d2) / den) * d21
        return x, it, moved / (scale or 1.0)

    def demean(self, M: np.ndarray) -> np.ndarray:
        """Within-transform the columns of ``M`` (n x k, or a vector); returns a new array."""
        M = np.asarray(M, dtype=float)
        if M.ndim == 1:
            return self.demean(M[:, None])[:, 0]
        out = np.empty(M.shape, order="F")
        if not self.codes:
            out[:] = M
            self.info = DemeanInfo(0, 0.0, True, M.shape[1], 0)
            return out
        its, worst = 0, 0.0
        for j in range(M.shape[1]):
            out[:, j], it, ach = self._demean1(M[:, j])
            its, worst = max(its, it), max(worst, ach)
        conv = worst <= self.tol or len(self.codes) == 1
        self.info = DemeanInfo(its, worst, conv, M.shape[1], 0)
        if not conv:
            raise EstimationError(f"demeaning did not converge in {self.maxiter} sweeps (largest "
                                  f"relative change {worst:.2e} > tol {self.tol}); raise maxiter "
                                  "or check the fixed effects")
        return out

    def demean_named(self, columns: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Demean named columns, reusing columns already demeaned on this sample and FE set.

        A column is reused only if its raw values equal those it was demeaned from (compared
        element by element), so a changed column is never served stale.
        """
        out: dict[str, np.ndarray] = {}
        its, worst, computed = 0, 0.0, 0
        for name, col in columns.items():
            col = np.asarray(col, dtype=float)
            hit = self._store.get(name)
            if hit is not None and np.array_equal(hit[0], col):
                out[name] = hit[1]
                continue
            d, it, ach = (self._demean1(col) if self.codes else (col.copy(), 0, 0.0))
            if ach > self.tol and len(self.codes) > 1:
                raise EstimationError(f"demeaning of {name.split('|')[-1]!r} did not converge in "
                                      f"{self.maxiter} sweeps (largest relative change {ach:.2e} > "
                                      f"tol {self.tol}); raise maxiter or check the fixed effects")
            self._store[name] = (col.copy(), d)
            out[name] = d
            its, worst, computed = max(its, it), max(worst, ach), computed + 1
        self.info = DemeanInfo(its, worst, True, computed, len(columns) - computed)
        return out

    def fe_dof(self, exact_pairs: bool = False) -> int:
        """Number of free fixed-effect coefficients (including the one that plays the constant).

        ``sum(G_j) - (J - 1)`` in general. With ``exact_pairs`` the redundancy between the first
        two factors is counted exactly as the number of connected components of their bipartite
        graph (as Stata's reghdfe does), and every further factor loses one level.
        """
        if not self.codes:
            return 0
        total = sum(self.sizes)
        J = len(self.codes)
        if J == 1:
            return total
        if exact_pairs:
            if "exact" in self._dof_memo:
                return self._dof_memo["exact"]
            from scipy.sparse import coo_matrix
            from scipy.sparse.csgraph import connected_components
            g1, g2 = self.sizes[0], self.sizes[1]
            big = coo_matrix((np.ones(self.n), (self.codes[0], g1 + self.codes[1])),
                             shape=(g1 + g2, g1 + g2))
            ncomp, _ = connected_components(big, directed=False)
            self._dof_memo["exact"] = total - ncomp - (J - 2)
            return self._dof_memo["exact"]
        return total - (J - 1)

    def recover(self, d: np.ndarray, maxiter: int = 1000) -> list[np.ndarray]:
        """Fixed-effect values ``a_j`` (one per level) with ``sum_j a_j[code_j] = d`` in the
        projection sense (Gauss-Seidel on the normal equations; the split between factors is
        normalised so that every factor but the first has mean zero)."""
        w = self.weights
        vals = [np.zeros(g) for g in self.sizes]
        resid = np.asarray(d, dtype=float).copy()
        for _ in range(maxiter):
            biggest = 0.0
            for j, (c, g, den) in enumerate(zip(self.codes, self.sizes, self.denoms, strict=True)):
                s = np.bincount(c, weights=resid * w if w is not None else resid, minlength=g)
                step = s / den
                vals[j] += step
                resid -= step[c]
                biggest = max(biggest, float(np.max(np.abs(step))) if g else 0.0)
            if biggest <= 1e-12 * (1 + float(np.max(np.abs(d))) if len(d) else 1):
                break
        for j in range(1, len(vals)):
            m = vals[j].mean() if len(vals[j]) else 0.0
            vals[j] -= m
            vals[0] += m
        return vals
