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

import hashlib
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from cluster_econ.errors import EstimationError

__all__ = ["Absorber", "DemeanInfo", "clear_cache", "factorize", "singleton_mask"]


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


def _hash_array(a: np.ndarray) -> str:
    h = hashlib.blake2b(digest_size=16)
    h.update(str(a.dtype).encode())
    h.update(np.ascontiguousarray(a).view(np.uint8).tobytes() if a.size else b"")
    return h.hexdigest()


_CACHE: OrderedDict[str, dict[str, np.ndarray]] = OrderedDict()
_CACHE_ENTRIES = 4


def clear_cache() -> None:
    """Forget all demeaned columns."""
    _CACHE.clear()


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
        parts = [_hash_array(c) for c in self.codes]
        parts.append(_hash_array(w) if w is not None else "unweighted")
        parts.append(repr(self.tol))
        self.key = hashlib.blake2b("|".join(parts).encode(), digest_size=16).hexdigest()

    # -- one sweep over all factors, all columns at once ----------------------------------
    def _sweep(self, M: np.ndarray) -> np.ndarray:
        out = M.copy()
        w = self.weights
        for c, g, den in zip(self.codes, self.sizes, self.denoms, strict=True):
            for j in range(out.shape[1]):
                col = out[:, j]
                s = np.bincount(c, weights=col * w if w is not None else col, minlength=g)
                col -= (s / den)[c]
        return out

    def demean(self, M: np.ndarray) -> np.ndarray:
        """Within-transform the columns of ``M`` (n x k); returns a new array."""
        M = np.asarray(M, dtype=float)
        if M.ndim == 1:
            return self.demean(M[:, None])[:, 0]
        if not self.codes or M.shape[1] == 0:
            self.info = DemeanInfo(0, 0.0, True)
            return M.copy()
        if len(self.codes) == 1:
            out = self._sweep(M)
            self.info = DemeanInfo(1, 0.0, True)
            return out
        scale = np.sqrt(np.mean(M**2, axis=0))
        scale[scale == 0] = 1.0
        x = M.copy()
        done = np.zeros(M.shape[1], dtype=bool)
        it = 0
        change = np.full(M.shape[1], np.inf)
        while it < self.maxiter and not done.all():
            act = np.flatnonzero(~done)
            x0 = x[:, act]
            x1 = self._sweep(x0)
            it += 1
            ch1 = np.max(np.abs(x1 - x0), axis=0) / scale[act]
            conv1 = ch1 <= self.tol
            x2 = self._sweep(x1)
            it += 1
            d21 = x2 - x1
            ch2 = np.max(np.abs(d21), axis=0) / scale[act]
            conv = conv1 | (ch2 <= self.tol)
            # Irons-Tuck extrapolation for the columns still moving
            d2 = d21 - (x1 - x0)
            denom = np.einsum("ij,ij->j", d2, d2)
            num = np.einsum("ij,ij->j", d21, d2)
            coef = np.divide(num, denom, out=np.zeros_like(num), where=denom > 0)
            xa = x2 - d21 * coef
            xa[:, conv1] = x1[:, conv1]
            xa[:, conv & ~conv1] = x2[:, conv & ~conv1]
            x[:, act] = xa
            change[act] = np.where(conv1, ch1, ch2)
            done[act[conv]] = True
        self.info = DemeanInfo(it, float(change.max()) if change.size else 0.0, bool(done.all()))
        if not done.all():
            bad = int((~done).sum())
            raise EstimationError(f"demeaning did not converge in {self.maxiter} sweeps for {bad} "
                                  f"column(s) (largest change {change.max():.2e} > tol {self.tol}); "
                                  "raise maxiter or check the fixed effects")
        return x

    def demean_named(self, columns: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Demean named columns, reusing columns already demeaned on this sample and FE set.

        The cache is keyed by the fixed-effect codes, the weights and the tolerance; inside, by a
        hash of each column's values (so a changed column is never served stale).
        """
        store = _CACHE.get(self.key)
        if store is None:
            store = {}
            _CACHE[self.key] = store
            while len(_CACHE) > _CACHE_ENTRIES:
                _CACHE.popitem(last=False)
        else:
            _CACHE.move_to_end(self.key)
        keys = {name: name + ":" + _hash_array(np.asarray(col, dtype=float)) for name, col in columns.items()}
        todo = [name for name in columns if keys[name] not in store]
        if todo:
            M = np.column_stack([np.asarray(columns[n], dtype=float) for n in todo])
            D = self.demean(M)
            for j, name in enumerate(todo):
                store[keys[name]] = D[:, j]
        else:
            self.info = DemeanInfo(0, 0.0, True)
        self.info.computed = len(todo)
        self.info.reused = len(columns) - len(todo)
        return {name: store[keys[name]] for name in columns}

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
            from scipy.sparse import coo_matrix
            from scipy.sparse.csgraph import connected_components
            g1, g2 = self.sizes[0], self.sizes[1]
            big = coo_matrix((np.ones(self.n), (self.codes[0], g1 + self.codes[1])),
                             shape=(g1 + g2, g1 + g2))
            ncomp, _ = connected_components(big, directed=False)
            return total - ncomp - (J - 2)
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
