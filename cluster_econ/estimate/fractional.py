"""Fractional response models for shares (Papke and Wooldridge 1996): ``fracreg``,
``fractional_logit``, ``fractional_probit``.

For an outcome :math:`y_i \\in [0, 1]` (the share of sales exported, of inputs bought from the
cluster, of workers trained) the model is the conditional mean only,

.. math:: E[y_i \\mid x_i] = G(x_i'\\beta), \\qquad G = \\Lambda \\text{ (logit) or } \\Phi \\text{ (probit)},

estimated by maximising the Bernoulli quasi-log-likelihood
:math:`\\sum_i y_i \\log G(x_i'\\beta) + (1-y_i)\\log(1-G(x_i'\\beta))` (Newton's method with the
analytic score and observed Hessian). The estimator is consistent whatever the distribution of
:math:`y` given :math:`x` (values 0 and 1 included), so the covariance must be robust: the default is
the sandwich with per-row scores (``"HC1"``; ``{"CRV1": g}`` clusters), from
:func:`cluster_econ.estimate.covariance.mest_vcov`. Small-sample presets: ``"stata"`` multiplies by
``n/(n-1)`` (Stata's ``fracreg``), ``"fixest"`` by ``n/(n-k)``,
``"none"`` by 1 (statsmodels' ``HC0``). ``"iid"`` (the inverse quasi-information) is offered but is
not valid unless the Bernoulli variance is right.

Why our own code: statsmodels' ``GLM(Binomial)`` fits the same model and is the check in the tests,
but it warns on non-integer outcomes and its result does not carry the sample audit; the Newton
iteration is a few lines.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from cluster_econ.errors import EstimationError
from cluster_econ.estimate.binary import ENGINE_OWN, drop_collinear, first_rows, frame, parse_vcov
from cluster_econ.estimate.covariance import mest_vcov
from cluster_econ.estimate.result import Audit, Result, data_hash

__all__ = ["fracreg", "fractional_logit", "fractional_probit"]

_LOG_SQRT_2PI = 0.5 * np.log(2 * np.pi)


def _parts(link: str, y: np.ndarray, X: np.ndarray, beta: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Quasi-log-likelihood, per-row scores and Hessian."""
    eta = X @ beta
    if link == "logit":
        logG, log1G = -np.logaddexp(0, -eta), -np.logaddexp(0, eta)
        G = np.exp(logG)
        d1 = y - G
        d2 = -G * (1 - G)
    else:
        logG, log1G = special.log_ndtr(eta), special.log_ndtr(-eta)
        logphi = -0.5 * eta**2 - _LOG_SQRT_2PI
        r1 = np.exp(logphi - logG)       # phi / Phi
        r0 = np.exp(logphi - log1G)      # phi / (1 - Phi)
        d1 = y * r1 - (1 - y) * r0
        d2 = y * (-eta * r1 - r1**2) + (1 - y) * (eta * r0 - r0**2)
    ll = float(np.sum(y * logG + (1 - y) * log1G))
    S = d1[:, None] * X
    H = (X * d2[:, None]).T @ X
    return ll, S, (H + H.T) / 2


def fracreg(formula: str, data: Any, link: str = "logit", vcov: Any = "HC1", ssc: str = "stata",
            tol: float = 1e-12, maxiter: int = 100) -> Result:
    """Fractional logit or probit (see the module docstring).

    Parameters
    ----------
    formula : str
        ``"export_share ~ schooling_years + log(employment)"``; fixed effects are not allowed
        (enter a few as ``C(year)``).
    data : DataFrame or Panel
    link : ``"logit"`` or ``"probit"``.
    vcov : ``"HC1"`` (default), ``{"CRV1": col}`` or ``"iid"``.
    ssc : ``"stata"`` (default), ``"fixest"`` or ``"none"``.

    Returns
    -------
    Result
        ``model`` ``"fractional-logit"`` or ``"fractional-probit"``; ``stats``: ``quasi_loglik``.
    """
    if link not in ("logit", "probit"):
        raise EstimationError(f"fracreg: link {link!r} is not known; use 'logit' or 'probit'")
    kind, cl = parse_vcov(vcov)
    mf = frame(formula, data, extra=[cl] if cl else [], extra_reasons={cl: "missing cluster"} if cl else None)
    if mf.spec.fixed_effects or mf.spec.endog:
        raise EstimationError("fracreg: fixed effects and IV parts are not allowed (enter a few effects as "
                              "C(var) regressors)")
    y = mf.y.to_numpy(dtype=float)
    bad = (y < 0) | (y > 1)
    if bad.any():
        raise EstimationError(f"fracreg: the outcome {mf.spec.lhs!r} must lie in [0, 1] (a share, not a "
                              f"percentage); {int(bad.sum())} row(s) do not (rows {first_rows(bad, mf.index)})")
    if np.all(y == y[0]) and y[0] in (0.0, 1.0):
        raise EstimationError(f"fracreg: the outcome {mf.spec.lhs!r} is {y[0]:g} in every row")
    Xdf, collinear = drop_collinear(mf.X)
    X = Xdf.to_numpy(dtype=float)
    names = list(Xdf.columns)
    beta = np.zeros(X.shape[1])
    if "Intercept" in names:
        ybar = min(max(float(y.mean()), 1e-6), 1 - 1e-6)
        beta[names.index("Intercept")] = np.log(ybar / (1 - ybar)) if link == "logit" else special.ndtri(ybar)
    ll, S, H = _parts(link, y, X, beta)
    n_iter = 0
    for _ in range(maxiter):
        n_iter += 1
        step = np.linalg.solve(H, -S.sum(axis=0))
        t = 1.0
        while True:
            ll_c, S_c, H_c = _parts(link, y, X, beta + t * step)
            if ll_c >= ll - 1e-12 * abs(ll):
                break
            t /= 2
            if t < 1e-10:
                raise EstimationError("fracreg: Newton's method failed to improve the quasi-likelihood")
        beta, ll, S, H = beta + t * step, ll_c, S_c, H_c
        if np.max(np.abs(t * step)) < tol * (1 + np.max(np.abs(beta))):
            break
    else:
        raise EstimationError(f"fracreg: Newton's method did not converge in {maxiter} iterations")
    bread = np.linalg.inv(-H)
    cov, info = mest_vcov((bread + bread.T) / 2, S, kind, mf.extra[cl].to_numpy() if cl else None, ssc, cl)
    return Result(params=pd.Series(beta, index=names, name="coef"),
                  cov=pd.DataFrame(cov, index=names, columns=names), nobs=len(y), vcov_info=info,
                  formula=formula, model=f"fractional-{link}", engine=ENGINE_OWN,
                  audit=Audit(n_input=mf.n_input, dropped=dict(mf.dropped), collinear=collinear,
                              notes=(f"Newton's method converged in {n_iter} iterations",)),
                  data_hash=data_hash(mf.y, Xdf), stats={"quasi_loglik": ll},
                  extra={"link": link})


def fractional_logit(formula: str, data: Any, vcov: Any = "HC1", ssc: str = "stata") -> Result:
    """Fractional logit: :func:`fracreg` with ``link="logit"``."""
    return fracreg(formula, data, link="logit", vcov=vcov, ssc=ssc)


def fractional_probit(formula: str, data: Any, vcov: Any = "HC1", ssc: str = "stata") -> Result:
    """Fractional probit: :func:`fracreg` with ``link="probit"``."""
    return fracreg(formula, data, link="probit", vcov=vcov, ssc=ssc)
