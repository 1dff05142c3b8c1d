"""Poisson pseudo-maximum likelihood with absorbed fixed effects (``fepois``, alias ``ppml``).

The model is the conditional mean

.. math:: E[y_i \\mid x_i, g(i)] = \\exp(x_i'\\beta + \\alpha_{1,g_1(i)} + \\dots + \\alpha_{J,g_J(i)}),

for a count or any non-negative outcome (export values, numbers of products, workers), estimated
by the Poisson first-order conditions, which stay consistent when the outcome is not Poisson
(Santos Silva and Tenreyro 2006): the standard errors should then be robust or clustered.

Algorithm: iteratively reweighted least squares, each step a weighted least-squares regression of
the working outcome :math:`z = \\eta + (y - \\mu)/\\mu` on :math:`X` with weights :math:`\\mu`, the
fixed effects swept out by the shared demeaning (:class:`cluster_econ.estimate.demean.Absorber`,
weighted by :math:`\\mu`); the start is :math:`\\mu = (y + \\bar y)/2` and the stopping rule the
relative change of the deviance, :math:`|D - D_{old}| / (0.1 + |D_{old}|) <` ``tol`` (as fixest and
pyfixest).

Sample: rows with missing values are dropped; observations alone in a fixed-effect group are dropped
(iteratively, as in ``feols``); then observations in a fixed-effect group whose outcome is zero in
every row are dropped (their fixed effect would be minus infinity: the "fe" separation check of
pyfixest and ppmlhdfe); each count is recorded in ``audit.dropped``. Separation by regressors
(ppmlhdfe's iterative rectifier) is not checked: a regressor that is zero wherever the outcome is
positive makes the fit diverge, and the error says so.

Covariance (``vcov``): ``"iid"`` is the inverse Hessian :math:`(\\tilde X'W\\tilde X)^{-1}` times the
small-sample factor of the preset; ``"HC1"`` and ``{"CRV1": g}`` are sandwiches with scores
:math:`(y_i - \\mu_i)\\tilde x_i` computed by :mod:`cluster_econ.estimate.covariance`, so the
``ssc`` presets are those of ``feols`` (``"fixest"`` reproduces pyfixest's and fixest's defaults,
fixed effects nested in the clusters counted once).

Why our own code: pyfixest's ``fepois`` is the peer in the tests (to 1e-6), but it is an optional
dependency with numba; statsmodels' GLM does not absorb fixed effects.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from scipy import linalg, special

from cluster_econ.errors import EstimationError, FormulaError
from cluster_econ.estimate.covariance import CovInputs, compute_vcov, parse_vcov
from cluster_econ.estimate.demean import Absorber, singleton_mask
from cluster_econ.estimate.formula import as_frame, model_frame, parse_formula
from cluster_econ.estimate.linear import ENGINE, _select_independent
from cluster_econ.estimate.result import Audit, Result, data_hash

__all__ = ["fepois", "ppml"]


def fepois(formula: str, data: Any, vcov: str | Mapping[str, str] | None = "HC1", ssc: str = "fixest",
           tol: float = 1e-10, maxiter: int = 100, fixef_tol: float = 1e-12,
           drop_singletons: bool = True) -> Result:
    """Poisson PML with absorbed fixed effects: ``"exports ~ log_size + training | firm + year"``.

    Parameters
    ----------
    formula : str
        fixest syntax without an IV part; the outcome must be non-negative.
    data : DataFrame or Panel
    vcov : ``"iid"``, ``"HC1"`` (default: robust, as the pseudo-likelihood calls for),
        ``{"CRV1": "firm"}``, ``{"CRV1": "firm+year"}``.
    ssc : small-sample preset (see :mod:`cluster_econ.estimate.covariance`); default ``"fixest"``.
    tol, maxiter : IRLS stopping rule (relative deviance change) and iteration limit.
    fixef_tol : tolerance of the demeaning inside each IRLS step.
    drop_singletons : drop observations alone in a fixed-effect group (counted).

    Returns
    -------
    Result
        ``model`` ``"fepois"``; ``stats``: ``loglik``, ``loglik_null`` (constant-only model),
        ``pseudo_r2``, ``deviance``, ``iterations``.
    """
    spec = parse_formula(formula)
    if spec.endog:
        raise FormulaError(f"fepois: formula {formula!r} has an IV part; Poisson IV is not implemented")
    kind, cl_names = parse_vcov(vcov)
    if kind in ("HC3", "CRV3"):
        raise EstimationError(f"fepois: vcov {kind} is not available; use 'iid', 'HC1' or CRV1")
    frame = as_frame(data)
    mf = model_frame(spec, frame, extra=list(cl_names), extra_reasons={c: "missing cluster" for c in cl_names})
    dropped = dict(mf.dropped)
    y_all = mf.y.to_numpy(dtype=float)
    neg = y_all < 0
    if neg.any():
        rows = ", ".join(map(str, mf.index[neg][:5]))
        raise EstimationError(f"fepois: the outcome {spec.lhs!r} must be non-negative; {int(neg.sum())} "
                              f"row(s) are negative (rows {rows})")
    keep = np.ones(len(y_all), dtype=bool)
    codes_all = [pd.factorize(mf.fe[c])[0].astype(np.int64) for c in mf.fe.columns]
    if codes_all and drop_singletons:
        sm = singleton_mask(codes_all)
        if (~sm).any():
            dropped["singletons"] = int((~sm).sum())
            keep &= sm
    if codes_all:
        sep = np.zeros(len(y_all), dtype=bool)
        idx = np.flatnonzero(keep)
        for c in codes_all:
            cc = c[idx]
            pos = np.bincount(cc, weights=(y_all[idx] > 0).astype(float), minlength=int(c.max()) + 1)
            sep[idx[pos[cc] == 0]] = True
        if sep.any():
            dropped["all-zero outcome in a fixed-effect group (separation)"] = int(sep.sum())
            keep &= ~sep
    if not keep.any() or not (y_all[keep] > 0).any():
        raise EstimationError(f"fepois: no observation with a positive outcome left to estimate {formula!r} "
                              f"(dropped: {dropped})")
    y = y_all[keep]
    X_raw = mf.X.to_numpy(dtype=float)[keep]
    names = list(mf.X.columns)
    codes = [pd.factorize(c[keep])[0].astype(np.int64) for c in codes_all]
    n = len(y)
    fit = _irls(y, X_raw, codes, tol, maxiter, fixef_tol)
    keep_cols = fit["columns"]
    collinear = tuple(nm for j, nm in enumerate(names) if j not in keep_cols)
    names = [names[j] for j in keep_cols]
    Xt, mu, beta = fit["Xt"], fit["mu"], fit["beta"]
    bread = linalg.inv(fit["XWX"])
    bread = (bread + bread.T) / 2
    absorber = Absorber(codes, mu, fixef_tol) if codes else None
    fe_dof: dict[str, int] = {}
    if absorber is not None:
        fe_dof = {"fixest": absorber.fe_dof(False), "none": absorber.fe_dof(False),
                  "stata": absorber.fe_dof(True)}
    cl_frame = mf.extra.loc[keep] if cl_names else None
    cl_codes = [pd.factorize(cl_frame[c])[0].astype(np.int64) for c in cl_names] if cl_names else []
    inputs = CovInputs(X=Xt, u=(y - mu) / mu, bread=bread, beta=beta, weights=mu, fe_codes=codes,
                       fe_dof=fe_dof)
    if kind == "iid":
        K = len(beta) + (fe_dof.get(ssc if ssc in fe_dof else "fixest", 0) if codes else 0)
        factor = 1.0 if ssc == "none" else (n - 1) / (n - K)
        V = factor * bread
        from cluster_econ.estimate.result import VcovInfo
        vinfo = VcovInfo(type="iid", ssc=ssc, df_resid=None,
                         details={"multiplier": factor, "K": K, "note": "inverse Hessian of the Poisson "
                                  "log-likelihood (no dispersion parameter)"})
    else:
        V, vinfo = compute_vcov(inputs, kind, cl_codes, cl_names, ssc)
        import dataclasses
        vinfo = dataclasses.replace(vinfo, df_resid=None)  # z inference, as pyfixest and fixest for GLMs
    ll = float(np.sum(y * np.log(mu) - mu - special.gammaln(y + 1)))
    ybar = float(y.mean())
    ll0 = float(np.sum(y * np.log(ybar) - ybar - special.gammaln(y + 1)))
    stats = {"loglik": ll, "loglik_null": ll0, "pseudo_r2": 1 - ll / ll0, "deviance": fit["deviance"],
             "iterations": float(fit["iterations"])}
    groups = {fe: int(c.max()) + 1 for fe, c in zip(mf.fe.columns, codes, strict=True)}
    notes = [f"IRLS converged in {fit['iterations']} iterations (relative deviance change "
             f"{fit['crit']:.1e} < tol {tol:g})"]
    return Result(params=pd.Series(beta, index=names, name="coef"),
                  cov=pd.DataFrame(V, index=names, columns=names), nobs=n, vcov_info=vinfo,
                  formula=formula, model="fepois", engine=ENGINE,
                  audit=Audit(n_input=mf.n_input, dropped=dropped, collinear=collinear, notes=tuple(notes)),
                  data_hash=data_hash(y, X_raw, *codes), groups=groups, stats=stats,
                  extra={"fitted": pd.Series(mu, index=mf.index[keep], name="fitted"),
                         "fixed_effects": tuple(mf.fe.columns)})


ppml = fepois


def _deviance(y: np.ndarray, mu: np.ndarray) -> float:
    with np.errstate(divide="ignore", invalid="ignore"):
        term = np.where(y > 0, y * np.log(y / mu), 0.0)
    return float(2 * np.sum(term - (y - mu)))


def _irls(y: np.ndarray, X: np.ndarray, codes: list[np.ndarray], tol: float, maxiter: int,
          fixef_tol: float) -> dict[str, Any]:
    mu = (y + y.mean()) / 2
    eta = np.log(mu)
    last = _deviance(y, mu)
    columns: list[int] | None = None
    crit = np.inf
    for it in range(1, maxiter + 1):
        z = eta + y / mu - 1
        M = np.column_stack([z, X])
        D = Absorber(codes, mu, fixef_tol, 100_000).demean(M) if codes else M
        zt, Xt = D[:, 0], D[:, 1:]
        if columns is None:
            G = (Xt * mu[:, None]).T @ Xt
            ref = (X * mu[:, None]).T @ X
            columns = _select_independent(G, np.diag(ref).copy())
            if not columns:
                raise EstimationError("fepois: every regressor is collinear or absorbed by the fixed effects")
        Xt = Xt[:, columns]
        XWX = (Xt * mu[:, None]).T @ Xt
        beta = linalg.solve(XWX, (Xt * mu[:, None]).T @ zt, assume_a="pos")
        resid = zt - Xt @ beta
        eta = z - resid
        if not np.all(np.isfinite(eta)) or np.max(eta) > 700:
            raise EstimationError("fepois: the fit diverges (a fitted mean overflows): a regressor may "
                                  "separate the zero outcomes (for example a dummy that is 0 wherever the "
                                  "outcome is positive); drop it or the rows it separates")
        mu = np.exp(eta)
        dev = _deviance(y, mu)
        crit = abs(dev - last) / (0.1 + abs(last))
        last = dev
        if crit < tol:
            return {"beta": beta, "mu": mu, "Xt": Xt, "XWX": XWX, "columns": columns, "deviance": dev,
                    "iterations": it, "crit": crit}
    raise EstimationError(f"fepois: IRLS did not converge in {maxiter} iterations (relative deviance "
                          f"change {crit:.1e} > tol {tol:g}); raise maxiter")
