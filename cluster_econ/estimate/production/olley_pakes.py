"""Step 3 for Olley-Pakes and Levinsohn-Petrin: non-linear least squares on the law of motion,
with Olley and Pakes' correction for selection on exit.

With ``y* = y - b_f'f - c'controls`` (``b_f`` from the first stage) and ``omega_t-1(b_s) =
Phi_t-1 - b_f'f_t-1 - b_s's_t-1``, ``b_s`` minimises ``sum (y*_t - b_s's_t - g(.))**2`` with
``g`` concentrated out by OLS:

- without the exit correction ``g = g(omega_t-1)`` (linear, or a polynomial of degree
  ``lom_degree``, plus the law-of-motion controls);
- with it (Olley and Pakes 1996, section 4.2) a firm still present in ``t`` is one whose
  productivity cleared an exit threshold that depends on its state, so ``E[omega_t | survival,
  info_t-1]`` depends on the survival probability ``P_t`` too: ``g = g(omega_t-1, P_t)`` is a
  complete polynomial of degree ``max(2, lom_degree)`` in both. ``P_t`` is the fitted value of a
  probit of survival into ``t`` on a complete quadratic in ``t-1``'s capital (state inputs) and
  log investment (with an indicator for zero investment), estimated on every row whose next-year
  status is known (exit recorded, or seen the next year); rows that attrit without a recorded
  exit, or fall in the panel's last year, are left out of the probit and counted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cluster_econ.errors import EstimationError
from cluster_econ.estimate.production.first_stage import FirstStage
from cluster_econ.estimate.production.polynomial import poly_matrix, wls
from cluster_econ.estimate.production.sample import Sample

__all__ = ["NLLSResult", "op_lp_second_stage", "probit_newton", "survival_probability"]


@dataclass
class NLLSResult:
    coef: np.ndarray
    gamma: np.ndarray
    objective: float
    rows: np.ndarray
    converged: bool
    rho: float


def probit_newton(X: np.ndarray, y: np.ndarray, w: np.ndarray | None = None, max_iter: int = 100) -> np.ndarray:
    """Probit coefficients by Newton's method on the observed information, frequency-weighted.

    Our own because statsmodels' Probit takes no frequency weights, which the bootstrap needs.
    """
    from scipy.special import log_ndtr

    w = np.ones(y.size) if w is None else w
    beta = np.zeros(X.shape[1])
    q = 2 * y - 1
    for _ in range(max_iter):
        xb = X @ beta
        z = q * xb
        lam = np.exp(-0.5 * z**2 - 0.5 * np.log(2 * np.pi) - log_ndtr(z))  # phi(z) / Phi(z)
        grad = X.T @ (w * q * lam)
        hw = w * lam * (lam + z)
        H = (X * hw[:, None]).T @ X
        step = np.linalg.lstsq(H, grad, rcond=None)[0]
        beta = beta + step
        if np.max(np.abs(step)) < 1e-10:
            break
    if not np.all(np.isfinite(beta)):
        raise EstimationError("prodest (op): the survival probit did not converge")
    return beta


def survival_probability(s: Sample, w: np.ndarray | None = None) -> tuple[np.ndarray, int, int]:
    """Fitted probability of survival into ``t`` for every row ``t`` with a ``t-1`` row
    (NaN elsewhere), the rows in the probit and those left out (status unknown)."""
    from scipy.special import ndtr

    assert s.survives is not None
    known = np.isfinite(s.survives)
    inv_pos = s.proxy_ok.astype(float)
    covars = np.column_stack([s.S, np.where(s.proxy_ok, s.P, 0.0)])
    center, scale = covars[known].mean(axis=0), covars[known].std(axis=0)
    X_all = np.column_stack([np.ones(s.n), poly_matrix(covars, 2, center, scale), 1.0 - inv_pos])
    use = known if w is None else known & (w > 0)
    y = s.survives[use]
    if y.min() == y.max():
        raise EstimationError("prodest (op): every row with a known next-year status "
                              + ("survives" if y.min() == 1 else "exits") + "; the exit correction needs both")
    beta = probit_newton(X_all[use], y, None if w is None else w[use])
    p = np.full(s.n, np.nan)
    has = s.lag1 >= 0
    p[has] = ndtr(X_all[s.lag1[has]] @ beta)
    return p, int(known.sum()), int((~known).sum())


def op_lp_second_stage(s: Sample, fs: FirstStage, lom_degree: int, starts: list[np.ndarray],
                       w: np.ndarray | None = None, survival: np.ndarray | None = None) -> NLLSResult:
    """Least-squares second stage of OP and LP (see the module docstring)."""
    from scipy.optimize import least_squares

    assert fs.b_free is not None
    phi = fs.target
    has = s.lag1 >= 0
    rows = np.zeros(s.n, dtype=bool)
    rows[has] = np.isfinite(phi[s.lag1[has]])
    if survival is not None:
        rows &= np.isfinite(survival)
    t = np.flatnonzero(rows)
    tl = s.lag1[t]
    nf, ns = s.F.shape[1], s.S.shape[1]
    if t.size < ns + lom_degree + 4:
        raise EstimationError(f"prodest: {t.size} rows with a usable lag are too few for the second stage")
    bf = fs.b_free
    ystar = fs.y_net[t] - s.F[t] @ bf
    S_t, S_l = s.S[t], s.S[tl]
    phi_l = phi[tl] - s.F[tl] @ bf
    L = s.L[tl]
    ww = np.ones(t.size) if w is None else w[t]
    root = np.sqrt(ww)
    P = survival[t] if survival is not None else None

    def basis(bs: np.ndarray) -> np.ndarray:
        om = phi_l - S_l @ bs
        if P is None:
            return np.column_stack([om**j for j in range(lom_degree + 1)] + [L])
        both = np.column_stack([om, P])
        return np.column_stack([np.ones(t.size), poly_matrix(both, max(2, lom_degree)), L])

    def resid(bs: np.ndarray) -> np.ndarray:
        target = ystar - S_t @ bs
        H = basis(bs)
        return root * (target - H @ wls(H, target, ww))

    best = None
    for x0 in starts:
        sol = least_squares(resid, np.asarray(x0, dtype=float)[nf:], method="lm", xtol=1e-12, ftol=1e-12,
                            gtol=1e-12)
        if best is None or sol.cost < best.cost - 1e-15:
            best = sol
    assert best is not None
    bs = best.x
    H = basis(bs)
    gamma = wls(H, ystar - S_t @ bs, ww)
    rho = float(gamma[1]) if P is None else float("nan")
    return NLLSResult(coef=np.concatenate([bf, bs]), gamma=gamma, objective=float(2 * best.cost / ww.sum()),
                      rows=rows, converged=bool(best.success), rho=rho)
