"""Wild cluster bootstrap (restricted, WCR, or unrestricted, WCU) for one coefficient of a linear
model with absorbed fixed effects, computed at the cluster level.

Model :math:`y = X\\beta + D\\alpha + u`, clusters :math:`g = 1..G`, hypothesis
:math:`H_0: \\beta_j = \\beta_0`. Fixed effects nested in the bootstrap clusters are absorbed
(within transformation, :math:`\\tilde X`); fixed effects that cut across clusters (years, when
clustering by firm or region) enter :math:`\\tilde X` as dummy columns. WCR draws

.. math:: y^*_b = \\tilde X\\ddot\\beta + \\ddot u \\odot v_{g(i),b},

with :math:`\\ddot\\beta, \\ddot u` from the regression that imposes :math:`H_0`, and cluster
weights :math:`v` (Rademacher :math:`\\pm1`, or Webb's six points :math:`\\pm\\sqrt{1/2}, \\pm1,
\\pm\\sqrt{3/2}`). With :math:`a` the :math:`j`-th row of :math:`(\\tilde X'\\tilde X)^{-1}`, the
bootstrap numerator and cluster scores are linear in :math:`v`:

.. math:: \\hat\\beta^*_{j,b} - \\beta_0 = \\sum_g c_g v_{gb}, \\qquad
          s_{gb} = c_g v_{gb} - A_g' \\sum_h w_h v_{hb},

where :math:`w_h = \\tilde X_h'\\ddot u_h`, :math:`c_g = a'w_g` and :math:`A_g = (\\tilde X'\\tilde
X)^{-1}\\tilde X_g'\\tilde X_g a`. So :math:`t^*_b = \\sum_g c_g v_{gb} / \\sqrt{m \\sum_g s_{gb}^2}`
(CRV1, :math:`m = \\frac{G}{G-1}\\frac{N-1}{N-K}`) costs :math:`O(G k)` per draw after one
:math:`O(N k)` pass over the data; no :math:`N \\times B` matrix is formed (the "fast and wild"
approach of Roodman, MacKinnon, Nielsen and Webb 2019). Because :math:`\\ddot u` is linear in
:math:`\\beta_0`, so are :math:`c` and :math:`w`; the bootstrap sums needed for any
:math:`\\beta_0` reduce to five length-:math:`B` vectors, and the confidence interval is found by
bisection on :math:`\\beta_0` (test inversion) at negligible cost.

p-value: :math:`P^* = B^{-1}\\#\\{b: |t^*_b| > |t|\\}` (strict inequality, as wildboottest; draws
equal to :math:`|t|` up to a relative 1e-9 do not count).
With Rademacher weights and :math:`2^G \\le B` all :math:`2^G` sign vectors are enumerated.

Why our own code: no maintained Python package implements the cluster-level algorithm with
absorbed fixed effects and test inversion (wildboottest works on statsmodels OLS without absorbed
effects and builds N x B matrices); it is used as the independent check in the tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from cluster_econ.errors import EstimationError, FormulaError
from cluster_econ.estimate.demean import Absorber, singleton_mask
from cluster_econ.estimate.formula import FormulaSpec, as_frame, model_frame, parse_formula
from cluster_econ.estimate.linear import _select_independent
from cluster_econ.parallel import map_tasks

__all__ = ["WildBootstrapResult", "multiplier_bootstrap", "wild_bootstrap"]

MAX_CROSS_FE_LEVELS = 5000
_CHUNK_CELLS = 20_000_000  # G x block of draws held at once, at most
_BLOCK_DRAWS = 4096  # draws per block (a task of the parallel map)


@dataclass(frozen=True)
class WildBootstrapResult:
    """Outcome of :func:`wild_bootstrap`."""

    param: str
    estimate: float
    null_value: float
    statistic: float
    p_value: float
    conf_int: tuple[float, float]
    level: float
    B: int
    weights: str
    impose_null: bool
    n_clusters: int
    nobs: int
    enumerated: bool
    seed: int | None
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _draws(G: int, B: int, kind: str, rng: np.random.Generator, start: int | None = None) -> np.ndarray:
    """(G x B) cluster weights. ``start`` given: the Rademacher sign vectors numbered
    start..start+B-1 of the full enumeration (bit g of the number is cluster g's sign)."""
    if kind == "rademacher":
        if start is not None:
            num = np.arange(start, start + B, dtype=np.int64)
            return ((num[None, :] >> np.arange(G)[:, None]) & 1).astype(float) * 2 - 1
        return rng.integers(0, 2, size=(G, B)).astype(float) * 2 - 1
    if kind == "webb":
        pts = np.array([-np.sqrt(1.5), -1, -np.sqrt(0.5), np.sqrt(0.5), 1, np.sqrt(1.5)])
        return pts[rng.integers(0, 6, size=(G, B))]
    if kind == "mammen":
        # two points with mean 0 and variance 1: (1 - sqrt5)/2 with probability (sqrt5 + 1)/(2 sqrt5)
        s5 = np.sqrt(5.0)
        low = rng.random(size=(G, B)) < (s5 + 1) / (2 * s5)
        return np.where(low, (1 - s5) / 2, (1 + s5) / 2)
    raise EstimationError(f"bootstrap weights {kind!r} are not known; use 'rademacher', 'webb' or 'mammen'")


def multiplier_bootstrap(influence: np.ndarray, B: int, rng: np.random.Generator,
                         cluster: np.ndarray | None = None, weights: str = "mammen") -> np.ndarray:
    """Multiplier bootstrap draws of asymptotically linear estimators.

    For an (n x k) matrix of influence functions psi_i (so that theta_hat - theta is about
    n^-1 sum_i psi_i) returns the (B x k) draws m^-1/2 sum_j xi_jb S_j, with S_j the influence
    functions summed within cluster j (each row its own cluster without ``cluster``), m the number
    of clusters and xi i.i.d. weights with mean 0 and variance 1 (Mammen by default, as R's
    ``did``). Draws are generated in chunks, so memory stays O(m x chunk).
    """
    psi = np.asarray(influence, dtype=float)
    psi = psi[:, None] if psi.ndim == 1 else psi
    if cluster is not None:
        codes, uniq = pd.factorize(np.asarray(cluster), sort=True)
        psi = np.column_stack([np.bincount(codes, weights=psi[:, j], minlength=len(uniq))
                               for j in range(psi.shape[1])])
    m = psi.shape[0]
    out = np.empty((B, psi.shape[1]))
    step = max(1, _CHUNK_CELLS // max(m, 1))
    for lo in range(0, B, step):
        hi = min(B, lo + step)
        xi = _draws(m, hi - lo, weights, rng)
        out[lo:hi] = (xi.T @ psi) / np.sqrt(m)
    return out


def _csum(M: np.ndarray, codes: np.ndarray, G: int) -> np.ndarray:
    M2 = M if M.ndim == 2 else M[:, None]
    out = np.column_stack([np.bincount(codes, weights=M2[:, j], minlength=G) for j in range(M2.shape[1])])
    return out if M.ndim == 2 else out[:, 0]


def wild_bootstrap(result_or_formula: Any, data: Any, param: str, cluster: str | None = None, B: int = 9999,
                   weights: str = "rademacher", impose_null: bool = True, seed: int | None = 0,
                   level: float = 0.95, fe: str | Sequence[str] | None = None, null: float = 0.0,
                   rng: np.random.Generator | None = None, ci: bool = True,
                   workers: int | None = None) -> WildBootstrapResult:
    """Wild cluster bootstrap test of ``param = null`` and confidence interval by test inversion.

    Parameters
    ----------
    result_or_formula : Result or str
        A :func:`feols` result (its formula is re-used) or a formula ``"y ~ x + d | firm + year"``.
    data : DataFrame or Panel
        The data the model is estimated on.
    param : str
        Coefficient name to test.
    cluster : str, optional
        Bootstrap (and covariance) cluster column; defaults to the (one-way) cluster variable of
        a clustered Result.
    B : int
        Bootstrap draws. With Rademacher weights and ``2**G <= B`` all sign vectors are enumerated.
    weights : ``"rademacher"`` or ``"webb"``.
    impose_null : bool
        True for WCR (restricted residuals; the recommended default), False for WCU.
    seed, rng : seed of a new ``numpy.random.Generator`` (default 0, so that the same call gives the
        same p-value and interval; pass another seed to check Monte Carlo variation), or a
        Generator. ``seed=None`` draws fresh entropy and is not reproducible.
    level : confidence level of the interval.
    fe : str or list, optional
        Extra fixed effects to absorb (``"firm+year"``), added to the formula's own.
    null : float
        Value of the coefficient under the null hypothesis.
    ci : bool
        Compute the confidence interval (test inversion).
    workers : int, optional
        Threads computing the blocks of draws (default: the machine's cores); the draws of each
        block come from its own stream spawned from ``seed`` (or ``rng``), so the result does
        not depend on ``workers``.

    Returns
    -------
    WildBootstrapResult
    """
    formula = result_or_formula if isinstance(result_or_formula, str) else getattr(result_or_formula, "formula", None)
    if not isinstance(formula, str):
        raise EstimationError("wild_bootstrap needs a formula or a Result with one")
    if cluster is None:
        cvars = getattr(getattr(result_or_formula, "vcov_info", None), "cluster_vars", ())
        if len(cvars) != 1:
            raise EstimationError("wild_bootstrap needs cluster= (one clustering variable)")
        cluster = cvars[0]
    spec = parse_formula(formula)
    if spec.endog:
        raise EstimationError("wild_bootstrap supports OLS models only (no IV part)")
    extra_fe: list[str] = []
    if fe:
        extra_fe = [f.strip() for f in (fe.split("+") if isinstance(fe, str) else fe) if f.strip()]
    fes = tuple(dict.fromkeys([*spec.fixed_effects, *extra_fe]))
    spec = FormulaSpec(spec.text, spec.lhs, spec.rhs, spec.intercept and not fes, fes)
    if weights not in ("rademacher", "webb"):
        raise EstimationError(f"bootstrap weights {weights!r} are not known; use 'rademacher' or 'webb'")
    if rng is None:
        rng = np.random.default_rng(seed)
    frame = as_frame(data)
    mf = model_frame(spec, frame, extra=[cluster], extra_reasons={cluster: "missing cluster"})
    if param not in mf.X.columns:
        raise FormulaError(f"param {param!r} is not a regressor of {formula!r}; regressors: "
                           f"{', '.join(mf.X.columns)}")
    notes: list[str] = []
    cl = pd.factorize(mf.extra[cluster])[0].astype(np.int64)
    keep = np.ones(len(cl), dtype=bool)
    raw_codes = [pd.factorize(mf.fe[c])[0].astype(np.int64) for c in mf.fe.columns]
    if raw_codes:
        keep = singleton_mask(raw_codes)
        if (~keep).any():
            notes.append(f"{int((~keep).sum())} singleton observations dropped")
    cl = pd.factorize(cl[keep])[0].astype(np.int64)
    G = int(cl.max()) + 1
    if G < 2:
        raise EstimationError(f"cannot cluster on one group: {cluster!r}")
    y = mf.y.to_numpy(dtype=float)[keep]
    X = mf.X.to_numpy(dtype=float)[keep]
    names = list(mf.X.columns)
    nested, cross = [], []
    for name, c in zip(mf.fe.columns, raw_codes, strict=True):
        c = pd.factorize(c[keep])[0].astype(np.int64)
        is_nested = len(np.unique(c * G + cl)) == int(c.max()) + 1
        (nested if is_nested else cross).append((name, c))
    # fixed effects cutting across clusters enter as dummies (first level dropped if no intercept
    # is otherwise absorbed, all handled by the collinearity check)
    for name, c in cross:
        L = int(c.max()) + 1
        if L > MAX_CROSS_FE_LEVELS:
            raise EstimationError(f"fixed effect {name!r} ({L} levels) is not nested in the bootstrap "
                                  f"clusters {cluster!r} and has too many levels to enter as dummies "
                                  f"(limit {MAX_CROSS_FE_LEVELS}); cluster at a level that nests it")
        D = np.zeros((len(c), L))
        D[np.arange(len(c)), c] = 1.0
        X = np.hstack([X, D])
        names += [f"{name}[{lv}]" for lv in range(L)]
    if nested:
        ab = Absorber([c for _, c in nested])
        M = ab.demean(np.column_stack([y, X]))
        y, X = M[:, 0], M[:, 1:]
    # drop collinear columns, keeping the tested one
    j0 = names.index(param)
    order = [j0] + [j for j in range(X.shape[1]) if j != j0]
    GX = X[:, order].T @ X[:, order]
    raw_ref = np.diag(GX).copy()
    kept = [order[i] for i in _select_independent(GX, raw_ref)]
    if j0 not in kept:
        raise EstimationError(f"{param!r} is collinear with other regressors or absorbed by the fixed effects")
    kept.sort()
    X = X[:, kept]
    names = [names[j] for j in kept]
    j = names.index(param)
    n, k = X.shape
    XtX_inv = np.linalg.inv(X.T @ X)
    a = XtX_inv[j]
    beta = XtX_inv @ (X.T @ y)
    u_hat = y - X @ beta
    # nested fixed effects count one coefficient each in the CRV1 correction (as feols)
    K = k + len(nested)
    mult = G / (G - 1) * (n - 1) / (n - K)
    Xa = X @ a
    A = _csum(X * Xa[:, None], cl, G) @ XtX_inv  # rows A_g
    se = float(np.sqrt(mult * np.sum(_csum(Xa * u_hat, cl, G) ** 2)))
    bj = float(beta[j])
    # restricted residuals are linear in the null value: u(b0) = ua - b0 * ub
    if impose_null:
        others = [i for i in range(k) if i != j]
        Xo = X[:, others]
        if Xo.shape[1]:
            P = np.linalg.solve(Xo.T @ Xo, Xo.T @ np.column_stack([y, X[:, j]]))
            ua = y - Xo @ P[:, 0]
            ub = X[:, j] - Xo @ P[:, 1]
        else:
            ua, ub = y.copy(), X[:, j].copy()
    else:
        ua, ub = u_hat, np.zeros(n)
    Wa, Wb = _csum(X * ua[:, None], cl, G), _csum(X * ub[:, None], cl, G)
    ca, cb = Wa @ a, Wb @ a
    # draws come in blocks of a fixed size (G x block: memory stays O(G * block) for any B), each
    # from its own stream spawned from the seed, computed in parallel threads; the blocks and their
    # streams do not depend on the number of workers, so neither does the result
    enumerated = weights == "rademacher" and 2**G <= B
    Beff = 2**G if enumerated else B
    if enumerated:
        notes.append(f"all 2^{G} = {Beff} Rademacher sign vectors enumerated")
    block = max(1, min(_BLOCK_DRAWS, _CHUNK_CELLS // max(G, 1)))
    starts = list(range(0, Beff, block))
    streams: list[Any] = [None] * len(starts) if enumerated else rng.spawn(len(starts))

    def one_block(task: tuple[int, Any]) -> tuple[int, np.ndarray]:
        lo, stream = task
        Vc = _draws(G, min(Beff, lo + block) - lo, weights, stream, start=lo if enumerated else None)
        P1 = ca[:, None] * Vc - A @ (Wa.T @ Vc)
        P2 = cb[:, None] * Vc - A @ (Wb.T @ Vc)
        return lo, np.vstack([ca @ Vc, cb @ Vc, np.einsum("gb,gb->b", P1, P1), np.einsum("gb,gb->b", P1, P2),
                              np.einsum("gb,gb->b", P2, P2)])

    # five length-B vectors: numerator parts and sums of squared scores
    sums = np.empty((5, Beff))
    for lo, part in map_tasks(one_block, list(zip(starts, streams, strict=True)), workers=workers, kind="threads"):
        sums[:, lo:lo + part.shape[1]] = part
    na, nb, s11, s12, s22 = sums

    def tstar(b0: float) -> np.ndarray:
        if impose_null:
            num = na - b0 * nb
            ss = s11 - 2 * b0 * s12 + b0 * b0 * s22
        else:
            num, ss = na, s11
        with np.errstate(divide="ignore", invalid="ignore"):
            return num / np.sqrt(mult * np.maximum(ss, 0))

    def pval(b0: float) -> float:
        t = abs(bj - b0) / se
        # strict exceedance; draws equal to |t| up to rounding (the draws v = +1 and v = -1
        # reproduce |t| exactly in exact arithmetic) do not count
        return float(np.mean(np.abs(tstar(b0)) > t * (1 + 1e-9)))

    t_obs = (bj - null) / se
    p = pval(null)
    lo_hi = (float("nan"), float("nan"))
    alpha = 1 - level
    if ci:
        if impose_null:
            lo_hi = (_invert(pval, bj, se, alpha, -1), _invert(pval, bj, se, alpha, +1))
        else:
            q = float(np.quantile(np.abs(tstar(bj)), level))
            lo_hi = (bj - q * se, bj + q * se)
    return WildBootstrapResult(param=param, estimate=bj, null_value=null, statistic=t_obs, p_value=p,
                               conf_int=lo_hi, level=level, B=Beff, weights=weights,
                               impose_null=impose_null, n_clusters=G, nobs=n, enumerated=enumerated,
                               seed=seed, notes=tuple(notes))


def _invert(pval: Any, bj: float, se: float, alpha: float, side: int) -> float:
    """Null value on ``side`` of the estimate where the bootstrap p-value crosses ``alpha``."""
    inner = bj
    step = se
    outer = bj + side * step
    for _ in range(60):
        if pval(outer) < alpha:
            break
        inner = outer
        step *= 2
        outer = bj + side * step
    else:
        return float("inf") * side
    for _ in range(80):
        mid = (inner + outer) / 2
        if pval(mid) < alpha:
            outer = mid
        else:
            inner = mid
        if abs(outer - inner) <= 1e-8 * max(se, 1e-300):
            break
    return (inner + outer) / 2
