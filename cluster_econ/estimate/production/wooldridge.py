"""Wooldridge (2009): the two proxy-method equations estimated jointly by linear GMM.

For firm-year ``(i, t)`` observed with ``t-1`` (and an invertible proxy in both years)::

    (1)  y_t = a1 + b_f'f_t + b_s's_t + c'controls_t + lambda' c(s_t, p_t)      + e1_t
    (2)  y_t = a2 + b_f'f_t + b_s's_t + c'controls_t + delta' c2(s_t-1, p_t-1)
              + kappa'lom_controls_t-1                                          + e2_t

``c`` is a complete polynomial of degree ``poly_degree`` in the state inputs and the proxy
(materials, or log investment), Olley-Pakes / Levinsohn-Petrin's control function ``omega_t =
c(s_t, p_t)``; in (2), ``g(omega_t-1)`` with ``g`` a polynomial of degree ``lom_degree`` is
approximated by an unrestricted complete polynomial ``c2`` of degree ``poly_degree * lom_degree``
(Wooldridge's linear version, which drops the cross-equation restriction ``delta = g(lambda)``).
``b_f``, ``b_s`` and the controls' ``c`` are common to both equations. Instruments: everything in
(1) is its own instrument (``e1`` is news after every input is chosen); in (2) the free inputs
are endogenous and are instrumented by their ``t-1`` values, beside ``s_t``, the controls,
``c2``, the law-of-motion controls and the ``lag_instruments`` in ``t-1``.

The stacked system is linear in its parameters. Estimation: two-step GMM. Step one is 2SLS on
the stacked rows (weight ``(Z'Z)^-1``, block-diagonal); step two uses the inverse of the
entity-clustered covariance of the moments, ``S1 = sum_g s_g s_g'`` with ``s_g`` the sum over
entity ``g``'s firm-years and both equations of ``z * residual``, at the one-step residuals.
Covariance: the sandwich ``A^-1 (X'Z S1^-1 S2 S1^-1 Z'X) A^-1``, ``A = X'Z S1^-1 Z'X``, with
``S2`` the same clustered sum at the two-step residuals; Hansen's J is ``g' S1^-1 g`` with ``g``
the moment sums at the estimate. No small-sample correction. This is the convention of
linearmodels' ``IVGMM`` with ``weight_type="clustered"``, ``cov_type="clustered"`` and
``debiased=False`` (the tests match coefficients and standard errors to 1e-6).

Identification. (1) and (2) identify ``b_f`` only if the free inputs move independently of
``(s_t, p_t)``: with materials Leontief in output (the functional dependence of Ackerberg, Caves
and Frazer) the model is not identified, as LP is not. With an investment proxy and capital that
accumulates exactly (``K_t = (1 - d) K_t-1 + I_t-1``), ``s_t`` is a function of ``(s_t-1,
p_t-1)``, which ``c2`` absorbs, so (2) cannot identify ``b_s``; this is detected and reported
(Olley-Pakes's restricted ``g`` does not have the problem).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cluster_econ.errors import EstimationError
from cluster_econ.estimate.production.designs import independent_columns
from cluster_econ.estimate.production.polynomial import poly_matrix
from cluster_econ.estimate.production.sample import Sample

__all__ = ["StackedSystem", "WooldridgeFit", "stacked_system", "wooldridge_gmm", "wooldridge_omega"]


@dataclass
class StackedSystem:
    """The stacked rows (equation 1 on top of equation 2) of :func:`wooldridge_gmm`."""

    y: np.ndarray
    X: np.ndarray
    Z: np.ndarray
    cluster: np.ndarray
    rows: np.ndarray
    x_names: list[str]
    z_names: list[str]
    n_common: int
    poly_center: np.ndarray
    poly_scale: np.ndarray


@dataclass
class WooldridgeFit:
    coef: np.ndarray
    cov: np.ndarray
    j_stat: float
    j_df: int
    system: StackedSystem
    theta: np.ndarray


def stacked_system(s: Sample, poly_degree: int, lom_degree: int) -> StackedSystem:
    """Build the stacked system of the module docstring from a sample."""
    spec = s.spec
    has = s.lag1 >= 0
    ok = np.zeros(s.n, dtype=bool)
    ok[has] = s.proxy_ok[has] & s.proxy_ok[s.lag1[has]]
    t = np.flatnonzero(ok)
    if t.size == 0:
        raise EstimationError("prodest (wrdg): no firm-year with a usable proxy in t and t-1")
    tl = s.lag1[t]
    n = t.size
    sp = np.column_stack([s.S, s.P])
    center, scale = sp[s.proxy_ok].mean(axis=0), sp[s.proxy_ok].std(axis=0)
    c1 = poly_matrix(sp[t], poly_degree, center, scale)
    c2 = poly_matrix(sp[tl], poly_degree * lom_degree, center, scale)
    F, S, C = s.F[t], s.S[t], s.C[t]
    Fl, L, IV = s.F[tl], s.L[tl], s.IV[tl]
    zeros = np.zeros
    common = np.column_stack([F, S, C])
    common_names = [*spec.free, *spec.state, *spec.controls]
    one = np.ones((n, 1))
    X1 = np.column_stack([common, one, c1, zeros((n, 1 + c2.shape[1] + L.shape[1]))])
    X2 = np.column_stack([common, zeros((n, 1 + c1.shape[1])), one, c2, L])
    x_names = (common_names + ["eq1:const"] + [f"eq1:c{j}" for j in range(c1.shape[1])]
               + ["eq2:const"] + [f"eq2:c{j}" for j in range(c2.shape[1])]
               + [f"eq2:L.{c}" for c in spec.lom_controls])
    # equation (2) identifies b_s only if s_t moves apart from last year's state and proxy: with an
    # investment proxy and K_t = (1 - d) K_t-1 + I_t-1 exactly, s_t is a function of them
    exog2 = np.column_stack([one, c2, C, L])
    for j, name in enumerate(spec.state):
        col = S[:, j]
        resid = col - exog2 @ np.linalg.lstsq(exog2, col, rcond=None)[0]
        if resid.var() <= 1e-6 * max(col.var(), 1e-300):
            raise EstimationError(f"prodest (wrdg): {name} in t is (almost) an exact function of last year's "
                                  f"{', '.join(spec.state)} and proxy (R2 > 0.999999), so the second equation "
                                  "cannot identify its elasticity (with an investment proxy this is the capital "
                                  "accumulation identity); use materials as the proxy, or method='op'")
    Z1_all = np.column_stack([F, C, one, c1])
    z1_names = [*spec.free, *spec.controls, "const", *(f"c{j}" for j in range(c1.shape[1]))]
    keep1 = independent_columns(Z1_all, with_constant=False)
    Z2_all = np.column_stack([S, Fl, C, one, c2, L, IV])
    z2_names = [*spec.state, *(f"L.{c}" for c in spec.free), *spec.controls, "const",
                *(f"c2_{j}" for j in range(c2.shape[1])), *(f"L.{c}" for c in spec.lom_controls),
                *(f"L.{c}" for c in spec.lag_instruments)]
    keep2 = independent_columns(Z2_all, with_constant=False)
    Z1, Z2 = Z1_all[:, keep1], Z2_all[:, keep2]
    Z = np.vstack([np.column_stack([Z1, zeros((n, Z2.shape[1]))]), np.column_stack([zeros((n, Z1.shape[1])), Z2])])
    X = np.vstack([X1, X2])
    keep_x = independent_columns(X, with_constant=False)
    if len(keep_x) < X.shape[1]:
        dropped = [x_names[j] for j in range(X.shape[1]) if j not in keep_x]
        if any(nm in common_names for nm in dropped):
            raise EstimationError(f"prodest (wrdg): {', '.join(dropped)} collinear in the stacked system")
        X = X[:, keep_x]
        x_names = [x_names[j] for j in keep_x]
    ent = s.entity[t]
    return StackedSystem(
        y=np.r_[s.y[t], s.y[t]], X=X, Z=Z, cluster=np.r_[ent, ent], rows=t, x_names=x_names,
        z_names=[f"eq1:{z1_names[j]}" for j in keep1] + [f"eq2:{z2_names[j]}" for j in keep2],
        n_common=len(common_names), poly_center=center, poly_scale=scale,
    )


def _cluster_scores(Z: np.ndarray, u: np.ndarray, cluster: np.ndarray) -> np.ndarray:
    G = int(cluster.max() + 1)
    sc = Z * u[:, None]
    return np.column_stack([np.bincount(cluster, weights=sc[:, j], minlength=G) for j in range(Z.shape[1])])


def wooldridge_gmm(sysm: StackedSystem) -> WooldridgeFit:
    """Two-step GMM of the stacked system (see the module docstring)."""
    X, Z, y = sysm.X, sysm.Z, sysm.y
    if Z.shape[1] < X.shape[1]:
        raise EstimationError(f"prodest (wrdg): {Z.shape[1]} instruments for {X.shape[1]} parameters")
    ZX, Zy = Z.T @ X, Z.T @ y
    W1 = np.linalg.pinv(Z.T @ Z)
    theta1 = np.linalg.solve(ZX.T @ W1 @ ZX, ZX.T @ W1 @ Zy)
    u1 = y - X @ theta1
    sg = _cluster_scores(Z, u1, sysm.cluster)
    S_sum = sg.T @ sg
    W2 = np.linalg.pinv(S_sum)
    A = ZX.T @ W2 @ ZX
    theta = np.linalg.solve(A, ZX.T @ W2 @ Zy)
    u2 = y - X @ theta
    s2 = _cluster_scores(Z, u2, sysm.cluster)
    A_inv = np.linalg.inv(A)
    XZW = ZX.T @ W2
    cov = A_inv @ (XZW @ (s2.T @ s2) @ XZW.T) @ A_inv
    cov = (cov + cov.T) / 2
    gbar = Z.T @ u2
    j_stat = float(gbar @ W2 @ gbar)
    return WooldridgeFit(coef=theta[: sysm.n_common], cov=cov[: sysm.n_common, : sysm.n_common], j_stat=j_stat,
                         j_df=int(Z.shape[1] - X.shape[1]), system=sysm, theta=theta)


def wooldridge_omega(s: Sample, fit: WooldridgeFit, poly_degree: int) -> np.ndarray:
    """Log productivity ``a1 + lambda'c(s_t, p_t)`` (equation 1's control function) on every row
    with an invertible proxy (NaN elsewhere)."""
    sysm = fit.system
    names = sysm.x_names
    coef = dict(zip(names, fit.theta, strict=True))
    sp = np.column_stack([s.S, s.P])
    c1 = poly_matrix(sp, poly_degree, sysm.poly_center, sysm.poly_scale)
    om = np.full(s.n, coef.get("eq1:const", 0.0))
    for j in range(c1.shape[1]):
        om = om + coef.get(f"eq1:c{j}", 0.0) * c1[:, j]
    return np.where(s.proxy_ok, om, np.nan)
