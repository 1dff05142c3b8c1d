"""Limited-information maximum likelihood and Fuller's modification (``liml``), with absorbed fixed
effects.

For :math:`y = X\\gamma + E\\beta + u` with excluded instruments :math:`Z`, the k-class estimator
with :math:`R = [X, E]`, :math:`W = [X, Z]` and :math:`M_W = I - W(W'W)^{-1}W'` is

.. math:: \\hat\\theta(\\kappa) = \\{R'(I - \\kappa M_W)R\\}^{-1} R'(I - \\kappa M_W) y .

LIML takes :math:`\\kappa` as the smallest root of :math:`|Y'M_X Y - \\kappa\\, Y'M_W Y| = 0` with
:math:`Y = [y, E]`; Fuller's estimator uses :math:`\\kappa - \\alpha/(n - L)` (:math:`L` the
instruments including :math:`X` and the fixed-effect coefficients; :math:`\\alpha = 1` is nearly
unbiased, :math:`\\alpha = 4` minimises the mean squared error). 2SLS is :math:`\\kappa = 1`.
LIML is median-unbiased and its tests are closer to their size than 2SLS's with many or weak
instruments (Stock-Yogo's LIML critical values are much lower).

Covariance: bread :math:`B = \\{R'(I - \\kappa M_W)R\\}^{-1}`, scores :math:`(P_W R)_i \\hat u_i` with
:math:`\\hat u = y - R\\hat\\theta` (the projected regressors, as for 2SLS: linearmodels' k-class
convention), and the shared covariance module (``"iid"``, ``"HC1"``, ``{"CRV1": g}``
and the ``ssc`` presets as for ``feols``; ``ssc="none"`` equals linearmodels' ``IVLIML`` with
``debiased=False``). Fixed effects are absorbed first (the k-class estimator is linear in the
demeaned columns).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from scipy import linalg

from cluster_econ.errors import EstimationError, FormulaError
from cluster_econ.estimate.covariance import CovInputs, compute_vcov, parse_vcov
from cluster_econ.estimate.demean import get_absorber, singleton_mask
from cluster_econ.estimate.formula import as_frame, model_frame, parse_formula
from cluster_econ.estimate.linear import ENGINE, _select_independent
from cluster_econ.estimate.result import Audit, Result, data_hash

__all__ = ["liml"]


def liml(formula: str, data: Any, fuller: float | None = None, vcov: str | Mapping[str, str] | None = "iid",
         ssc: str = "stata", drop_singletons: bool = True) -> Result:
    """LIML (``fuller=None``) or Fuller's k-class estimator (``fuller=alpha``).

    Parameters
    ----------
    formula : str
        ``"y ~ exog | fe | endog ~ instruments"`` or ``"y ~ exog | endog ~ instruments"``.
    data : DataFrame or Panel
    fuller : float, optional
        Fuller's alpha (1 or 4 are common).
    vcov, ssc : as in :func:`cluster_econ.estimate.linear.feols` (CRV3 and HC3 are not offered).

    Returns
    -------
    Result
        ``model`` ``"liml"`` or ``"fuller"``; ``stats["kappa"]`` the k-class parameter used,
        ``stats["kappa_liml"]`` the LIML root.
    """
    spec = parse_formula(formula)
    if not spec.endog:
        raise FormulaError(f"liml: formula {formula!r} has no 'endog ~ instruments' part")
    kind, cl_names = parse_vcov(vcov)
    if kind in ("HC3", "CRV3"):
        raise EstimationError(f"liml: vcov {kind} is not available; use 'iid', 'HC1' or CRV1")
    frame = as_frame(data)
    mf = model_frame(spec, frame, extra=list(cl_names), extra_reasons={c: "missing cluster" for c in cl_names})
    dropped = dict(mf.dropped)
    n0 = len(mf.y)
    keep = np.ones(n0, dtype=bool)
    codes_all = [pd.factorize(mf.fe[c])[0].astype(np.int64) for c in mf.fe.columns]
    if codes_all and drop_singletons:
        sm = singleton_mask(codes_all)
        if (~sm).any():
            dropped["singletons"] = int((~sm).sum())
            keep &= sm
    codes = [pd.factorize(c[keep])[0].astype(np.int64) for c in codes_all]
    y = mf.y.to_numpy(dtype=float)[keep]
    X = mf.X.to_numpy(dtype=float)[keep]
    E = mf.endog.to_numpy(dtype=float)[keep]
    Z = mf.Z.to_numpy(dtype=float)[keep]
    xnames, enames, znames = list(mf.X.columns), list(mf.endog.columns), list(mf.Z.columns)
    n = len(y)
    absorber = None
    if codes:
        absorber = get_absorber(codes)
        D = absorber.demean(np.column_stack([y, X, E, Z]))
        y, X, E, Z = D[:, 0], D[:, 1:1 + X.shape[1]], D[:, 1 + X.shape[1]:1 + X.shape[1] + E.shape[1]], \
            D[:, 1 + X.shape[1] + E.shape[1]:]
    R = np.hstack([X, E])
    kept = _select_independent(R.T @ R, np.diag(R.T @ R).copy())
    if [j for j in kept if j >= X.shape[1]] != list(range(X.shape[1], R.shape[1])):
        raise EstimationError("liml: an endogenous regressor is collinear with the exogenous regressors or "
                              "absorbed by the fixed effects")
    collinear = [xnames[j] for j in range(X.shape[1]) if j not in kept]
    X = X[:, [j for j in kept if j < X.shape[1]]]
    xnames = [nm for nm in xnames if nm not in collinear]
    W = np.hstack([X, Z])
    kw = _select_independent(W.T @ W, np.diag(W.T @ W).copy())
    zk = [j - X.shape[1] for j in kw if j >= X.shape[1]]
    collinear += [znames[j] for j in range(len(znames)) if j not in zk]
    Z = Z[:, zk]
    if Z.shape[1] < E.shape[1]:
        raise EstimationError(f"liml: under-identified: {E.shape[1]} endogenous regressors but "
                              f"{Z.shape[1]} usable excluded instruments")
    W = np.hstack([X, Z])
    R = np.hstack([X, E])

    def resid_on(A: np.ndarray, B: np.ndarray) -> np.ndarray:
        if A.shape[1] == 0:
            return B
        Q, _ = np.linalg.qr(A)
        return B - Q @ (Q.T @ B)

    Y = np.column_stack([y, E])
    YX, YW = resid_on(X, Y), resid_on(W, Y)
    A, B = YX.T @ YX, YW.T @ YW
    kappa_liml = float(linalg.eigh((A + A.T) / 2, (B + B.T) / 2, eigvals_only=True)[0])
    fe_dof: dict[str, int] = {}
    if absorber is not None:
        fe_dof = {"fixest": absorber.fe_dof(False), "none": absorber.fe_dof(False),
                  "stata": absorber.fe_dof(True) if ssc == "stata" else absorber.fe_dof(False)}
    n_instr = W.shape[1] + (fe_dof.get("fixest", 0) if codes else 0)
    kappa = kappa_liml - (fuller / (n - n_instr) if fuller is not None else 0.0)
    Rk = R - kappa * resid_on(W, R)
    RkR = Rk.T @ R
    beta = linalg.solve((RkR + RkR.T) / 2, Rk.T @ y)
    u = y - R @ beta
    bread = linalg.inv((RkR + RkR.T) / 2)
    cl_codes = [pd.factorize(mf.extra.loc[keep, c])[0].astype(np.int64) for c in cl_names]
    # scores use the projected regressors P_W R (as 2SLS and linearmodels' k-class covariance)
    V, vinfo = compute_vcov(CovInputs(X=R - resid_on(W, R), u=u, bread=bread, beta=beta, fe_codes=codes,
                                      fe_dof=fe_dof), kind, cl_codes, cl_names, ssc)
    names = xnames + enames
    model = "liml" if fuller is None else "fuller"
    notes = [f"k-class estimator with kappa = {kappa:.8g}" +
             (f" (LIML root {kappa_liml:.8g} minus Fuller's {fuller:g}/(n - {n_instr}))" if fuller else "")]
    return Result(params=pd.Series(beta, index=names, name="coef"),
                  cov=pd.DataFrame(V, index=names, columns=names), nobs=n, vcov_info=vinfo,
                  formula=formula, model=model, engine=ENGINE,
                  audit=Audit(n_input=mf.n_input, dropped=dropped, collinear=tuple(collinear), notes=tuple(notes)),
                  data_hash=data_hash(y, R, Z), groups={fe: int(c.max()) + 1 for fe, c in zip(mf.fe.columns, codes,
                                                                                             strict=True)},
                  stats={"kappa": kappa, "kappa_liml": kappa_liml, "rss": float(u @ u)},
                  extra={"fixed_effects": tuple(mf.fe.columns)})
