"""Step 2: first stages.

``proxy_first_stage`` (OP, LP, ACF)
    OLS of output on a complete polynomial and the controls. ACF: ``y = Phi(f, s, proxy) +
    c'controls + eps``; LP/OP: ``y = b_f'f + Phi(s, proxy) + c'controls + eps`` (which gives
    ``b_f``). ``Phi`` is the fitted value net of the controls' contribution. Rows whose proxy
    cannot be inverted (zero investment for OP) are left out and get no ``Phi``.

``share_first_stage`` (Gandhi, Navarro and Rivers 2020)
    With gross output ``y = f(f, s, m) + omega + eps`` and a flexible input ``m`` chosen knowing
    ``omega`` but not ``eps``, the first-order condition gives the input's revenue share
    ``log share = log D(f, s, m) + log E[exp eps] - eps`` with ``D`` the output elasticity of
    ``m``. ``D`` is a complete polynomial (with a constant) of degree ``degree`` in the raw logs,
    fitted by non-linear least squares of ``log share`` on ``log D``; ``eps = log D - log share``;
    the elasticity is ``D / mean(exp eps)``. Integrating the elasticity over ``log m`` (monomial
    by monomial, from the sample mean of ``log m``, which keeps the constant of integration, a
    function of the other inputs, small) gives the part of ``f`` due to ``m``; ``y - eps -
    integral`` is ``C(f, s) + omega``, whose Cobb-Douglas ``C`` the second stage estimates.

All first stages take frequency weights (the block bootstrap draws entities as weights).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cluster_econ.errors import EstimationError
from cluster_econ.estimate.production.polynomial import monomials, poly_matrix, poly_terms, wls
from cluster_econ.estimate.production.sample import Sample

__all__ = ["FirstStage", "proxy_first_stage", "share_first_stage"]


@dataclass
class FirstStage:
    """What the second stage needs from the first.

    ``target``: ``Phi`` (proxy methods) or ``C + omega`` (GNR), NaN where not evaluable;
    ``y_net``: output net of the controls' fitted contribution; ``b_free``: LP/OP's free-input
    coefficients; ``flex``: GNR's per-row elasticity of the flexible input and its integral.
    """

    target: np.ndarray
    y_net: np.ndarray
    n: int
    r2: float
    b_free: np.ndarray | None = None
    flex_elasticity: np.ndarray | None = None
    flex_integral: np.ndarray | None = None
    eps: np.ndarray | None = None


def _r2(y: np.ndarray, fitted: np.ndarray, w: np.ndarray | None) -> float:
    w = np.ones_like(y) if w is None else w
    ybar = np.average(y, weights=w)
    tss = float(np.sum(w * (y - ybar) ** 2))
    return 1.0 - float(np.sum(w * (y - fitted) ** 2)) / tss if tss > 0 else float("nan")


def proxy_first_stage(method: str, s: Sample, degree: int, w: np.ndarray | None = None) -> FirstStage:
    """OLS first stage of OP, LP and ACF (``method`` ``"op"``, ``"lp"`` or ``"acf"``)."""
    use = s.proxy_ok if w is None else s.proxy_ok & (w > 0)
    if use.sum() == 0:
        raise EstimationError("prodest: no row has an invertible proxy")
    nc = s.C.shape[1]
    nf = s.F.shape[1]
    ok = s.proxy_ok
    if method == "acf":
        base = np.column_stack([s.F, s.S, s.P])
        lead = np.empty((s.n, 0))
    else:
        base = np.column_stack([s.S, s.P])
        lead = s.F
    center, scale = base[ok].mean(axis=0), base[ok].std(axis=0)
    poly = poly_matrix(base[ok], degree, center, scale)
    X = np.column_stack([lead[ok], np.ones(ok.sum()), poly, s.C[ok]])
    wu = None if w is None else w[ok]
    fit_rows = use[ok]
    coef = wls(X[fit_rows], s.y[ok][fit_rows], None if wu is None else wu[fit_rows])
    fitted = X @ coef
    ctrl = s.C[ok] @ coef[X.shape[1] - nc:] if nc else 0.0
    target = np.full(s.n, np.nan)
    target[ok] = fitted - ctrl  # Phi: fitted output net of the controls (LP/OP: b_f'f included)
    y_net = s.y - (s.C @ coef[X.shape[1] - nc:] if nc else 0.0)
    b_free = coef[:nf].copy() if method != "acf" else None
    return FirstStage(target=target, y_net=y_net, n=int(use.sum()),
                      r2=_r2(s.y[use], fitted[fit_rows], None if wu is None else wu[fit_rows]), b_free=b_free)


def _raw_poly(x: np.ndarray, degree: int) -> tuple[np.ndarray, list[tuple[int, ...]]]:
    """Complete polynomial with a constant in the raw (unstandardised) columns, and its terms."""
    terms = [tuple([0] * x.shape[1]), *poly_terms([str(i) for i in range(x.shape[1])], degree)]
    return monomials(x, terms), terms


def share_first_stage(s: Sample, degree: int, w: np.ndarray | None = None) -> FirstStage:
    """Gandhi-Navarro-Rivers share regression and integration (see the module docstring)."""
    from scipy.optimize import least_squares

    if s.share is None:
        raise EstimationError("prodest (gnr): name the flexible input's log revenue share (share=...)")
    m = s.P
    x = np.column_stack([s.F, s.S, m])
    basis, terms = _raw_poly(x, degree)
    use = np.ones(s.n, dtype=bool) if w is None else w > 0
    sw = np.ones(s.n) if w is None else w
    sh = s.share
    g0 = np.zeros(basis.shape[1])
    g0[0] = float(np.exp(np.average(sh[use], weights=sw[use])))
    if degree == 0 or basis.shape[1] == 1:
        gamma = g0
    else:
        r = np.sqrt(sw[use])
        B, shu = basis[use], sh[use]

        def resid(g: np.ndarray) -> np.ndarray:
            D = B @ g
            bad = D <= 1e-8
            out = shu - np.log(np.where(bad, 1e-8, D))
            return r * np.where(bad, out + 1e3 * (1e-8 - D), out)

        sol = least_squares(resid, g0, method="lm", xtol=1e-12, ftol=1e-12, gtol=1e-12, max_nfev=2000)
        gamma = sol.x
    D = basis @ gamma
    if np.any(D[use] <= 0):
        raise EstimationError("prodest (gnr): the fitted elasticity of the flexible input is not positive on "
                              f"{int((D[use] <= 0).sum())} rows; lower poly_degree")
    with np.errstate(invalid="ignore", divide="ignore"):  # rows outside a bootstrap draw may have D <= 0
        eps = np.log(D) - sh
        fitted_share = np.log(D)
    E = float(np.average(np.exp(eps[use]), weights=sw[use]))
    gamma_e = gamma / E
    elasticity = basis @ gamma_e
    # integral over log m from its sample mean: l^a k^b m^c -> l^a k^b (m^(c+1) - mbar^(c+1)) / (c+1)
    j = x.shape[1] - 1
    mbar = float(np.average(m[use], weights=sw[use]))
    integral = np.zeros(s.n)
    for g, exps in zip(gamma_e, terms, strict=True):
        col = np.ones(s.n)
        for i, e in enumerate(exps):
            if i != j and e:
                col = col * x[:, i] ** e
        c = exps[j]
        integral += g * col * (m ** (c + 1) - mbar ** (c + 1)) / (c + 1)
    target = s.y - eps - integral
    return FirstStage(target=target, y_net=s.y.copy(), n=int(use.sum()),
                      r2=_r2(sh[use], fitted_share[use], None if w is None else w[use]),
                      flex_elasticity=elasticity, flex_integral=integral, eps=eps)
