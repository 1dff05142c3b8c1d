"""Censored and ordered outcomes: Tobit and ordered probit.

Models
------
``tobit`` is the censored normal regression

    y*_i = x_i' beta + e_i,  e_i ~ N(0, sigma^2),  y_i = min(max(y*_i, left), right),

estimated by maximum likelihood. A row at (or below) ``left`` contributes ``log Φ((left - x'β)/σ)``,
a row at (or above) ``right`` contributes ``log Φ((x'β - right)/σ)``, and other rows the normal
density. Written here (scipy.optimize with an analytic gradient and Hessian in ``(β, log σ)``)
because neither statsmodels nor linearmodels ships a Tobit estimator. The reported ``sigma`` is
``exp(log σ)`` with a delta-method standard error (as Stata's ``/sigma``).

``ordered_probit`` is ``P(y_i <= j) = Φ(κ_j - x_i'β)`` for ordered categories ``j``, by Newton's
method with the analytic score and Hessian in ``(β, κ)``; the thresholds are reported as ``cut1``,
``cut2``, ... on the latent scale. statsmodels ``OrderedModel`` (numerical Hessian, thresholds as
log increments) is the independent check in the tests.

Covariance conventions follow :mod:`cluster_econ.estimate.binary`: ``"iid"`` (inverse observed
information, named OIM), ``"HC1"`` and ``{"CRV1": col}`` with the ``ssc`` presets.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, special

from cluster_econ.errors import EstimationError
from cluster_econ.estimate.binary import (
    ENGINE_OWN,
    drop_collinear,
    frame,
    parse_vcov,
)
from cluster_econ.estimate.covariance import mest_vcov
from cluster_econ.estimate.result import Audit, Result, data_hash

__all__ = ["ordered_probit", "tobit"]

_LOG_SQRT_2PI = 0.5 * np.log(2 * np.pi)


def _mills(z: np.ndarray) -> np.ndarray:
    """φ(z)/Φ(z), stable in the left tail."""
    return np.exp(-0.5 * z * z - _LOG_SQRT_2PI - special.log_ndtr(z))


def _tobit_parts(theta: np.ndarray, y: np.ndarray, X: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                 left: float | None, right: float | None, hess: bool = True
                 ) -> tuple[float, np.ndarray, np.ndarray | None, np.ndarray]:
    """Log-likelihood, gradient, Hessian and per-row scores in ``theta = (beta, log sigma)``."""
    k = X.shape[1]
    beta, s = theta[:k], theta[k]
    sigma = np.exp(s)
    xb = X @ beta
    n = len(y)
    ll = np.empty(n)
    gb = np.empty(n)  # d l_i / d xb  times sigma
    gs = np.empty(n)  # d l_i / d s
    hbb = np.empty(n)  # d2 l_i / d beta d beta' = hbb * x x' / sigma^2
    hbs = np.empty(n)  # d2 l_i / d beta d s = hbs * x / sigma
    hss = np.empty(n)
    mid = ~(lo | hi)
    r = (y[mid] - xb[mid]) / sigma
    ll[mid] = -_LOG_SQRT_2PI - s - 0.5 * r * r
    gb[mid], gs[mid] = r, -1 + r * r
    hbb[mid], hbs[mid], hss[mid] = -1.0, -2 * r, -2 * r * r
    if lo.any():
        c = (left - xb[lo]) / sigma
        lam = _mills(c)
        ll[lo] = special.log_ndtr(c)
        gb[lo], gs[lo] = -lam, -lam * c
        q = 1 - c * (c + lam)
        hbb[lo], hbs[lo], hss[lo] = -lam * (c + lam), lam * q, lam * c * q
    if hi.any():
        d = (xb[hi] - right) / sigma
        lam = _mills(d)
        ll[hi] = special.log_ndtr(d)
        gb[hi], gs[hi] = lam, -lam * d
        q = 1 - d * (d + lam)
        hbb[hi], hbs[hi], hss[hi] = -lam * (d + lam), -lam * q, lam * d * q
    scores = np.column_stack([X * (gb / sigma)[:, None], gs])
    grad = scores.sum(axis=0)
    H = None
    if hess:
        H = np.empty((k + 1, k + 1))
        H[:k, :k] = (X * (hbb / sigma ** 2)[:, None]).T @ X
        H[:k, k] = H[k, :k] = X.T @ (hbs / sigma)
        H[k, k] = hss.sum()
    return float(ll.sum()), grad, H, scores


def tobit(formula: str, data: Any, left: float | None = 0.0, right: float | None = None,
          vcov: Any = "iid", ssc: str = "stata") -> Result:
    """Tobit (censored normal) regression by maximum likelihood.

    Parameters
    ----------
    formula : str
        ``"hours ~ educ + exper"``. Fixed effects are not allowed (incidental parameters).
    data : DataFrame or Panel
    left, right : float or None
        Censoring points; rows with ``y <= left`` are left-censored, ``y >= right`` right-censored.
        ``None`` means no censoring on that side. Values beyond a censoring point are an error.
    vcov : ``"iid"`` (OIM), ``"HC1"`` or ``{"CRV1": col}``.
    ssc : ``"stata"``, ``"fixest"`` or ``"none"``.

    Returns
    -------
    Result with coefficients and ``sigma``; ``stats`` ``loglik``, ``n_left``, ``n_right``,
    ``n_uncensored``, ``loglik_null`` (intercept-only Tobit), ``pseudo_r2``.
    """
    from cluster_econ.estimate.binary import first_rows
    if left is None and right is None:
        raise EstimationError("tobit: give a left and/or right censoring point")
    if left is not None and right is not None and not left < right:
        raise EstimationError(f"tobit: left ({left}) must be below right ({right})")
    kind, cl = parse_vcov(vcov)
    mf = frame(formula, data, extra=[cl] if cl else [], extra_reasons={cl: "missing cluster"} if cl else None)
    if mf.spec.fixed_effects:
        raise EstimationError("tobit: fixed effects are not allowed (the Tobit MLE with many dummies is "
                              "inconsistent); add group dummies or means explicitly")
    y = mf.y.to_numpy(dtype=float)
    below = (y < left) if left is not None else np.zeros(len(y), bool)
    above = (y > right) if right is not None else np.zeros(len(y), bool)
    if below.any() or above.any():
        bad = below | above
        raise EstimationError(f"tobit: {mf.spec.lhs!r} has {int(bad.sum())} values outside "
                              f"[{left}, {right}] (rows {first_rows(bad, mf.index)}); check the "
                              "censoring points")
    lo = (y <= left) if left is not None else np.zeros(len(y), bool)
    hi = (y >= right) if right is not None else np.zeros(len(y), bool)
    if (~(lo | hi)).sum() < 2:
        raise EstimationError("tobit: fewer than two uncensored rows; the model is not identified")
    X, collinear = drop_collinear(mf.X)
    Xa = X.to_numpy(dtype=float)
    n, k = Xa.shape

    def fit(Xm: np.ndarray) -> tuple[np.ndarray, float, np.ndarray, np.ndarray]:
        b0, *_ = np.linalg.lstsq(Xm, y, rcond=None)
        s0 = np.log(max(np.std(y - Xm @ b0), 1e-8))
        th0 = np.r_[b0, s0]

        def nll(th: np.ndarray) -> tuple[float, np.ndarray]:
            ll, g, _, _ = _tobit_parts(th, y, Xm, lo, hi, left, right, hess=False)
            return -ll, -g

        def nhess(th: np.ndarray) -> np.ndarray:
            return -_tobit_parts(th, y, Xm, lo, hi, left, right)[2]

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            opt = optimize.minimize(nll, th0, jac=True, hess=nhess, method="trust-exact",
                                    options={"gtol": 1e-9, "maxiter": 500})
        th = opt.x
        ll, g, H, S = _tobit_parts(th, y, Xm, lo, hi, left, right)
        for _ in range(3):  # Newton polish
            th = th - np.linalg.solve(H, g)
            ll, g, H, S = _tobit_parts(th, y, Xm, lo, hi, left, right)
        if not np.all(np.isfinite(th)) or np.max(np.abs(g)) > 1e-4 * max(1.0, abs(ll)):
            raise EstimationError("tobit: maximum likelihood did not converge")
        return th, ll, H, S

    th, ll, H, S = fit(Xa)
    ll0 = fit(np.ones((n, 1)))[1] if "Intercept" in X.columns else np.nan
    bread = np.linalg.inv(-H)
    cov_t, info = mest_vcov(bread, S, kind, mf.extra[cl].to_numpy() if cl else None, ssc, cl)
    sigma = float(np.exp(th[k]))
    J = np.eye(k + 1)
    J[k, k] = sigma  # d sigma / d log sigma
    cov = J @ cov_t @ J.T
    names = [*X.columns, "sigma"]
    params = pd.Series(np.r_[th[:k], sigma], index=names)
    stats_out = {"loglik": ll, "loglik_null": ll0, "pseudo_r2": 1 - ll / ll0 if ll0 == ll0 else np.nan,
                 "n_left": float(lo.sum()), "n_right": float(hi.sum()),
                 "n_uncensored": float((~(lo | hi)).sum())}
    return Result(
        params=params, cov=pd.DataFrame(cov, index=names, columns=names), nobs=n, vcov_info=info,
        formula=formula, model="tobit", engine=ENGINE_OWN,
        audit=Audit(n_input=mf.n_input, dropped=dict(mf.dropped), collinear=collinear),
        data_hash=data_hash(pd.Series(y), X), stats=stats_out,
        extra={"left": left, "right": right, "spec": mf.spec},
    )


def _oprobit_parts(theta: np.ndarray, codes: np.ndarray, X: np.ndarray, n_cuts: int,
                   hess: bool = True) -> tuple[float, np.ndarray, np.ndarray | None]:
    """Log-likelihood, per-row scores and (analytic) Hessian of the ordered probit in
    ``theta = (beta, cut_1, ..., cut_{J-1})``.

    With :math:`a_i = c_{y_i} - x_i'\\beta` and :math:`b_i = c_{y_i - 1} - x_i'\\beta`
    (:math:`c_0 = -\\infty`, :math:`c_J = +\\infty`), :math:`P_i = \\Phi(a_i) - \\Phi(b_i)`; the
    derivatives of :math:`a, b` are :math:`\\partial a_i = (-x_i, e_{y_i})`, :math:`\\partial b_i =
    (-x_i, e_{y_i-1})`, and :math:`\\nabla^2 \\log P_i = (-a\\phi(a)\\partial a\\partial a' +
    b\\phi(b)\\partial b\\partial b')/P_i - s_i s_i'` with :math:`s_i = (\\phi(a)\\partial a -
    \\phi(b)\\partial b)/P_i`.
    """
    k = X.shape[1]
    beta, cuts = theta[:k], theta[k:]
    eta = X @ beta
    ext = np.r_[-np.inf, cuts, np.inf]
    a = ext[codes + 1] - eta
    b = ext[codes] - eta
    # P = Phi(a) - Phi(b), computed in the tail where it is accurate
    upper = b > 0
    P = np.where(upper, special.ndtr(-b) - special.ndtr(-a), special.ndtr(a) - special.ndtr(b))
    P = np.maximum(P, 1e-300)
    fa = np.where(np.isfinite(a), np.exp(-0.5 * np.where(np.isfinite(a), a, 0) ** 2) / np.sqrt(2 * np.pi), 0.0)
    fb = np.where(np.isfinite(b), np.exp(-0.5 * np.where(np.isfinite(b), b, 0) ** 2) / np.sqrt(2 * np.pi), 0.0)
    n = len(codes)
    Da = np.zeros((n, k + n_cuts))
    Db = np.zeros((n, k + n_cuts))
    Da[:, :k] = -X
    Db[:, :k] = -X
    rows = np.arange(n)
    ia = codes < n_cuts          # a finite: its cut is cut_{y}
    Da[rows[ia], k + codes[ia]] = 1.0
    ib = codes > 0               # b finite: cut_{y-1}
    Db[rows[ib], k + codes[ib] - 1] = 1.0
    S = (fa / P)[:, None] * Da - (fb / P)[:, None] * Db
    ll = float(np.sum(np.log(P)))
    if not hess:
        return ll, S, None
    wa = np.where(np.isfinite(a), -np.where(np.isfinite(a), a, 0) * fa, 0.0) / P
    wb = np.where(np.isfinite(b), np.where(np.isfinite(b), b, 0) * fb, 0.0) / P
    H = (Da * wa[:, None]).T @ Da + (Db * wb[:, None]).T @ Db - S.T @ S
    return ll, S, (H + H.T) / 2


def ordered_probit(formula: str, data: Any, vcov: Any = "iid", ssc: str = "stata") -> Result:
    """Ordered probit ``P(y <= j | x) = Φ(cut_j - x'β)``, by Newton's method with the analytic
    score and Hessian (:func:`_oprobit_parts`).

    The outcome's distinct values, sorted, are the ordered categories (an ordered pandas
    Categorical keeps its category order). No intercept is estimated (the cut points take its
    place); the cut points ``cut1`` ... are parameters on the latent scale, so their standard
    errors come straight from the inverse information (as Stata's ``oprobit`` and R's
    ``ordinal::clm``).
    """
    from cluster_econ.estimate.formula import as_frame, parse_formula
    kind, cl = parse_vcov(vcov)
    spec = parse_formula(formula)
    df = as_frame(data)
    levels: list[Any] | None = None
    if spec.lhs in df.columns and not pd.api.types.is_numeric_dtype(df[spec.lhs]):
        col = df[spec.lhs]
        if not (isinstance(col.dtype, pd.CategoricalDtype) and col.cat.ordered):
            raise EstimationError(f"ordered_probit: {spec.lhs!r} must be numeric or an ordered pandas "
                                  f"Categorical (its order defines the categories), not {col.dtype}")
        levels = list(col.cat.categories)
        codes_all = col.cat.codes.astype(float).where(col.cat.codes >= 0)
        df = df.assign(**{spec.lhs: codes_all})
    mf = frame(formula, df, extra=[cl] if cl else [], extra_reasons={cl: "missing cluster"} if cl else None)
    if mf.spec.fixed_effects:
        raise EstimationError("ordered_probit: fixed effects are not allowed")
    if levels is not None:
        codes = mf.y.to_numpy().astype(int)
    else:
        levels = sorted(pd.unique(mf.y))
        codes = np.searchsorted(np.asarray(levels), mf.y.to_numpy())
    present = np.unique(codes)
    if len(present) < 2:
        raise EstimationError(f"ordered_probit: {mf.spec.lhs!r} has fewer than two categories")
    codes = np.searchsorted(present, codes)
    levels = [levels[i] for i in present]
    X = mf.X.drop(columns=["Intercept"], errors="ignore")
    Xc = X - X.mean()
    Xc, collinear = drop_collinear(Xc)
    X = X[list(Xc.columns)]
    Xa = X.to_numpy(dtype=float)
    k = Xa.shape[1]
    J_cat = len(levels)
    counts = np.bincount(codes, minlength=J_cat)
    # start: no slopes, cuts at the normal quantiles of the cumulative shares (the null model's MLE)
    theta = np.r_[np.zeros(k), special.ndtri(np.cumsum(counts)[:-1] / counts.sum())]
    ll, S, H = _oprobit_parts(theta, codes, Xa, J_cat - 1)
    converged = False
    for _ in range(200):
        g = S.sum(axis=0)
        step = np.linalg.solve(H, -g)
        t = 1.0
        while True:
            cand = theta + t * step
            if np.all(np.diff(cand[k:]) > 0):
                ll_c, S_c, H_c = _oprobit_parts(cand, codes, Xa, J_cat - 1)
                if ll_c >= ll - 1e-12 * abs(ll):
                    break
            t /= 2
            if t < 1e-10:
                raise EstimationError("ordered_probit: Newton's method failed to improve the likelihood "
                                      "(is a regressor a perfect predictor of the categories?)")
        theta, ll, S, H = cand, ll_c, S_c, H_c
        if np.max(np.abs(t * step)) < 1e-10 and np.max(np.abs(S.sum(axis=0))) < 1e-8:
            converged = True
            break
    if not converged:
        raise EstimationError("ordered_probit: Newton's method did not converge in 200 iterations")
    assert H is not None
    bread = np.linalg.inv(-H)
    cov, info = mest_vcov((bread + bread.T) / 2, S, kind, mf.extra[cl].to_numpy() if cl else None, ssc, cl)
    names = [*X.columns, *[f"cut{j + 1}" for j in range(J_cat - 1)]]
    p = counts / counts.sum()
    ll0 = float((counts * np.log(p)).sum())
    return Result(
        params=pd.Series(theta, index=names), cov=pd.DataFrame(cov, index=names, columns=names),
        nobs=len(codes), vcov_info=info, formula=formula, model="ordered-probit", engine=ENGINE_OWN,
        audit=Audit(n_input=mf.n_input, dropped=dict(mf.dropped), collinear=collinear),
        data_hash=data_hash(pd.Series(codes), X),
        stats={"loglik": ll, "loglik_null": ll0, "pseudo_r2": 1 - ll / ll0},
        extra={"categories": tuple(levels)},
    )
