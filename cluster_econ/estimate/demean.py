"""Absorbing fixed effects: alternating projections, a direct solver for hard graphs, and a cache.

For fixed-effect factors :math:`D_1, \\dots, D_J` the within transformation of a column :math:`x`
is the residual of its (weighted) projection on the span of all dummies. The fast path computes it
by sweeping: subtract the group means of factor 1, then of factor 2, ..., and repeat until a full
sweep changes no value by more than ``tol`` (relative to the column's scale). Group means are
computed with ``np.bincount``, so one sweep costs O(N) per column and factor. Every second sweep
is followed by an Irons-Tuck extrapolation, which speeds up unbalanced cases without changing the
fixed point.

On weakly connected graphs (a worker-firm panel with few movers) sweeping converges so slowly
that it can take hours. The sweeps are watched: when the observed rate of convergence predicts
more than ``SWITCH_PREDICTED`` further sweeps (or ``SWITCH_MAX_SWEEPS`` have passed), the
absorber switches, for this column and every later one, to the exact least-squares solution of
the dummies' normal equations with the largest factor eliminated
(:class:`cluster_econ.estimate.fe_solver.ReducedSystem`: conjugate gradients, or a sparse LU
factorization). Its result must pass the same test as the fast path (one more sweep changes no
value by more than ``tol``), so both paths return the projection to the same accuracy; nothing
is left for the user to set.

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
from cluster_econ.estimate.fe_solver import ReducedSystem, pair_components

__all__ = ["Absorber", "DemeanInfo", "clear_cache", "factorize", "get_absorber", "singleton_mask"]

SWITCH_CHECK = 6  # sweeps before the rate of convergence is judged
SWITCH_PREDICTED = 30  # predicted further sweeps above which the direct solver takes over
SWITCH_MAX_SWEEPS = 100  # sweeps after which it takes over anyway
ALTERNATING = "alternating projections"
DIRECT = "normal equations"


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
    """Convergence of the last demeaning: the method, sweeps used and the largest change in the
    last sweep; with the direct solver, how it solved its reduced system."""

    iterations: int = 0
    achieved_tol: float = 0.0
    converged: bool = True
    computed: int = 0
    reused: int = 0
    method: str = ALTERNATING
    solver: str = ""

    def describe(self) -> str:
        """One line for a Result's notes."""
        if self.method == ALTERNATING:
            how = f"alternating projections ({self.iterations} sweeps"
        else:
            how = f"solving the normal equations of the dummies ({self.solver}"
        return f"fixed effects absorbed by {how}; largest relative change in a last sweep {self.achieved_tol:.1e})"


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
        self.reduced: ReducedSystem | None = None  # built when sweeping proves slow
        self._last = DemeanInfo()

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
        self._last = DemeanInfo()
        if len(self.codes) == 1:
            self._sweep1(x)
            return x, 1, 0.0
        scale = float(np.sqrt(np.einsum("i,i->", x, x) / len(x))) if len(x) else 1.0
        thresh = self.tol * (scale if scale > 0 else 1.0)
        if self.reduced is not None:
            return self._direct(x, thresh, scale, 0)
        return self._alternate(x, thresh, scale, 0, watch=True)

    def _alternate(self, x: np.ndarray, thresh: float, scale: float, it: int,
                   watch: bool) -> tuple[np.ndarray, int, float]:
        """Sweeps with Irons-Tuck extrapolation from ``x`` (in place) after ``it`` sweeps; with
        ``watch``, hand over to the direct solver when convergence is predicted to be slow."""
        moved = np.inf
        history: list[float] = []
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
            history.append(moved)
            if watch and self._slow(history, thresh, it):
                self.reduced = ReducedSystem(self.codes, self.sizes, self.weights)
                return self._direct(x, thresh, scale, it)
            # Irons-Tuck extrapolation from x0 -> x1 -> x (= x2)
            d21 = x - x1
            d2 = d21 - (x1 - x0)
            den = float(np.einsum("i,i->", d2, d2))
            if den > 0:
                x -= (float(np.einsum("i,i->", d21, d2)) / den) * d21
        return x, it, moved / (scale or 1.0)

    @staticmethod
    def _slow(history: Sequence[float], thresh: float, sweeps: int) -> bool:
        """Whether sweeping is predicted to need more than SWITCH_PREDICTED further sweeps, from
        the change over the last four sweeps (``history``: largest change after every second)."""
        if sweeps >= SWITCH_MAX_SWEEPS:
            return True
        if sweeps < SWITCH_CHECK or len(history) < 3:
            return False
        now, before = history[-1], history[-3]
        if now >= before:
            return True
        rate = (now / before) ** 0.25  # per sweep
        return float(np.log(thresh / now) / np.log(rate)) > SWITCH_PREDICTED

    def _direct(self, x: np.ndarray, thresh: float, scale: float, it: int) -> tuple[np.ndarray, int, float]:
        """The projection from the reduced normal equations, checked (and if need be refined)
        with one sweep: the fast path's own convergence test."""
        assert self.reduced is not None
        r = x
        moved = np.inf
        for _ in range(3):
            r = self.reduced.residual(r, thresh)
            moved = self._sweep1(r)
            it += 1
            if moved <= thresh:
                break
        self._last = DemeanInfo(method=DIRECT, solver=self._solver_text())
        if moved <= thresh:
            return r, it, moved / (scale or 1.0)
        # numerically hard even for the direct solver: finish by sweeping
        r, it, ach = self._alternate(r, thresh, scale, it, watch=False)
        self._last.solver += ", finished by sweeping"
        return r, it, ach

    def _solver_text(self) -> str:
        red = self.reduced
        if red is None:
            return ""
        how = red.method + (f", {red.iterations} iterations" if red.method == "conjugate gradients" else "")
        return (f"{red.size} unknowns after eliminating factor {red.eliminated + 1} and dropping {red.dropped} "
                f"redundant levels; {how}")

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
        last = DemeanInfo()
        for j in range(M.shape[1]):
            out[:, j], it, ach = self._demean1(M[:, j])
            its, worst = max(its, it), max(worst, ach)
            if self._last.method != ALTERNATING:
                last = self._last
        conv = worst <= self.tol or len(self.codes) == 1
        self.info = DemeanInfo(its, worst, conv, M.shape[1], 0, last.method, last.solver)
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
        last = DemeanInfo()
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
            if self._last.method != ALTERNATING:
                last = self._last
        self.info = DemeanInfo(its, worst, True, computed, len(columns) - computed, last.method, last.solver)
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
            return total - self.components() - (J - 2)
        return total - (J - 1)

    def components(self) -> int:
        """Connected components of the bipartite graph of the first two factors (1 with one
        factor): groups of levels whose effects are compared with one another."""
        if len(self.codes) < 2:
            return 1 if self.codes else 0
        if "components" not in self._dof_memo:
            self._dof_memo["components"] = pair_components(self.codes, self.sizes)
        return self._dof_memo["components"]

    def graph_stats(self) -> dict[str, int]:
        """``fe_components`` (:meth:`components`) and ``fe_identified``: fixed-effect coefficients
        identified, the redundancies counted as reghdfe does (exactly for the first two factors,
        one level for each further factor; the one that plays the constant included)."""
        return {"fe_components": self.components(), "fe_identified": self.fe_dof(exact_pairs=True)}

    def recover(self, d: np.ndarray, maxiter: int = 1000) -> list[np.ndarray]:
        """Fixed-effect values ``a_j`` (one per level) with ``sum_j a_j[code_j] = d`` in the
        projection sense (Gauss-Seidel on the normal equations; the split between factors is
        normalised so that every factor but the first has mean zero). Graphs on which that is slow
        use the reduced normal equations instead (:class:`ReducedSystem`)."""
        w = self.weights
        vals = [np.zeros(g) for g in self.sizes]
        d = np.asarray(d, dtype=float)
        small = 1e-12 * (1 + float(np.max(np.abs(d))) if len(d) else 1)
        resid = d.copy()
        converged = len(self.codes) < 2
        for _ in range(0 if self.reduced is not None else maxiter):
            biggest = 0.0
            for j, (c, g, den) in enumerate(zip(self.codes, self.sizes, self.denoms, strict=True)):
                s = np.bincount(c, weights=resid * w if w is not None else resid, minlength=g)
                step = s / den
                vals[j] += step
                resid -= step[c]
                biggest = max(biggest, float(np.max(np.abs(step))) if g else 0.0)
            if biggest <= small:
                converged = True
                break
        if not converged:
            if self.reduced is None:
                self.reduced = ReducedSystem(self.codes, self.sizes, self.weights)
            vals = self.reduced.effects(d, small)
        for j in range(1, len(vals)):
            m = vals[j].mean() if len(vals[j]) else 0.0
            vals[j] -= m
            vals[0] += m
        return vals
