"""Instrument diagnostics of a 2SLS fit: weak identification, over-identification, endogeneity and
Anderson-Rubin confidence sets.

For :math:`y = X\\gamma + E\\beta + u` with endogenous :math:`E` (:math:`p` columns), included
exogenous :math:`X` (and absorbed fixed effects) and excluded instruments :math:`Z` (:math:`L_2`
columns), everything below is computed after partialling out :math:`X` and the fixed effects
(:math:`\\tilde y, \\tilde E, \\tilde Z`; Frisch-Waugh). :math:`\\hat\\Pi` are the first-stage
coefficients of :math:`\\tilde Z`, :math:`\\hat V` the first-stage residuals, :math:`L` the number
of instruments including :math:`X` and the fixed-effect coefficients, and :math:`d = n - L` (``n``
with ``ssc="none"``). Covariances are those of the fit (``vcov`` and ``ssc``), from
:mod:`cluster_econ.estimate.covariance` (an ``HC3`` fit's diagnostics use ``HC1``, a ``CRV3`` fit's
``CRV1``).

``cragg_donald_F``
    :math:`\\min\\operatorname{eig}(\\hat\\Sigma_{VV}^{-1/2}\\hat\\Pi'\\tilde Z'\\tilde Z\\hat\\Pi
    \\hat\\Sigma_{VV}^{-1/2})/L_2`, :math:`\\hat\\Sigma_{VV} = \\hat V'\\hat V/d`: for one endogenous
    regressor, the first-stage F under iid errors. Compared with the Stock-Yogo critical values
    (``extra["iv_diagnostics"]["stock_yogo"]``, from ``data/stock_yogo.csv``), which assume iid errors.
``kp_rk_wald_F``
    Kleibergen-Paap (2006) rank statistic of :math:`H_0: \\operatorname{rank}\\Pi = p - 1` with the
    fit's covariance of :math:`\\operatorname{vec}\\hat\\Pi`, divided by :math:`L_2`. For one
    endogenous regressor it is the first-stage Wald F with that covariance (``first_stage_F``);
    with the iid covariance it equals the Cragg-Donald F.
``kp_rk_lm``, ``kp_rk_lm_p``
    Under-identification LM test, chi-square with :math:`L_2 - p + 1` degrees of freedom. iid: the
    Anderson canonical-correlation statistic :math:`n\\,\\rho^2_{min}`; robust or clustered, one
    endogenous regressor: the score test of :math:`\\Pi = 0`,
    :math:`(\\tilde Z'\\tilde e)'\\hat S^{-1}(\\tilde Z'\\tilde e)` with :math:`\\tilde e = \\tilde E` and
    :math:`\\hat S` the (clustered) outer product of the scores, no small-sample factor. Not computed
    (``nan``) for several endogenous regressors with a robust covariance.
``sargan`` / ``hansen_J`` (over-identified models only, :math:`L_2 > p`)
    iid: Sargan's :math:`n R^2` of the 2SLS residuals on all instruments (as linearmodels' ``sargan``);
    robust or clustered: Hansen's J at the two-step efficient GMM estimate, weights from the 2SLS
    residuals (as linearmodels' ``IVGMM`` ``j_stat``). Chi-square, :math:`L_2 - p` degrees of freedom.
``endog_stat``, ``endog_p``
    Test that :math:`E` is exogenous. iid: Wu-Hausman F (control-function form, as linearmodels'
    ``wu_hausman``), :math:`F(p, n - k - 2p)` with :math:`k` the included exogenous columns and
    fixed-effect coefficients, and Durbin's chi-square (``durbin``); robust or clustered: the Wald
    test of the first-stage residuals added to the structural equation (Wooldridge's robust
    regression test, linearmodels' ``wooldridge_regression``), chi-square :math:`p`.
``ar_ci`` (one endogenous regressor)
    Anderson-Rubin confidence set at 95%: the :math:`\\beta_0` whose AR statistic (the Wald F of
    :math:`\\tilde Z` in the regression of :math:`\\tilde y - \\beta_0\\tilde e` on :math:`\\tilde Z`,
    with the fit's covariance) is below the critical value of F(:math:`L_2`, :math:`d`) (clustered:
    F(:math:`L_2`, G - 1); inference without degrees of freedom: chi-square / :math:`L_2`). It can be
    an interval, the whole line or the union of two rays; robust to weak instruments.

Why our own code: linearmodels has the Sargan, Durbin-Wu-Hausman and GMM J statistics (the checks
in the tests) but no Kleibergen-Paap, Cragg-Donald, Stock-Yogo or Anderson-Rubin set, and does not
absorb fixed effects; Stata's ivreg2/ranktest and weakiv are not Python.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd
from scipy import linalg, optimize, special

from cluster_econ.estimate.covariance import CovInputs, compute_vcov

__all__ = ["diagnose", "stock_yogo"]

STOCK_YOGO_SOURCE = ("Stock, J. H. and M. Yogo (2005), 'Testing for Weak Instruments in Linear IV "
                     "Regression', in Andrews and Stock (eds.), Identification and Inference for "
                     "Econometric Models, Cambridge University Press, Tables 5.1, 5.2 and 5.4")


@lru_cache(maxsize=1)
def _stock_yogo_table() -> pd.DataFrame:
    text = resources.files("cluster_econ.estimate").joinpath("data/stock_yogo.csv").read_text()
    import io
    return pd.read_csv(io.StringIO(text), comment="#")


def stock_yogo(n_endog: int, n_instruments: int) -> dict[str, float]:
    """Stock-Yogo critical values of the Cragg-Donald F for ``n_endog`` endogenous regressors and
    ``n_instruments`` excluded instruments, keyed like ``"TSLS size 10%"`` or ``"TSLS bias 5%"``
    (empty when the table has no entry). Source: :data:`STOCK_YOGO_SOURCE`."""
    t = _stock_yogo_table()
    rows = t[(t["n_endog"] == n_endog) & (t["n_instruments"] == n_instruments)]
    return {f"{r.estimator} {r.criterion} {round(100 * r.level)}%": float(r.critical_value)
            for r in rows.itertuples()}


def _sqrt_inv(S: np.ndarray) -> np.ndarray:
    ev, U = np.linalg.eigh((S + S.T) / 2)
    return (U / np.sqrt(ev)) @ U.T


def _sqrt(S: np.ndarray) -> np.ndarray:
    ev, U = np.linalg.eigh((S + S.T) / 2)
    return (U * np.sqrt(np.clip(ev, 0, None))) @ U.T


def _ols(A: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.linalg.lstsq(A, b, rcond=None)[0] if A.shape[1] else np.zeros((0, *b.shape[1:]))


class _Cov:
    """Covariance of OLS coefficients with the fit's covariance type, through the shared module."""

    def __init__(self, kind: str, clusters: Sequence[np.ndarray], cl_names: Sequence[str], ssc: str,
                 fe_codes: list[np.ndarray], fe_dof: Mapping[str, int], k_extra: int) -> None:
        self.kind = {"CRV3": "CRV1", "HC3": "HC1"}.get(kind, kind)
        self.clusters, self.cl_names, self.ssc = clusters, cl_names, ssc
        self.fe_codes, self.fe_dof, self.k_extra = fe_codes, fe_dof, k_extra

    def __call__(self, R: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, Any]:
        """Covariance of the coefficients of ``R`` (partialled regressors) given residuals ``u``;
        ``k_extra`` partialled columns are counted in the small-sample factor."""
        import warnings
        bread = linalg.inv(R.T @ R)
        # the partialled-out columns count in K: pad the design with zero-score columns
        Xp = np.hstack([R, np.zeros((len(u), self.k_extra))]) if self.k_extra else R
        Bp = np.zeros((Xp.shape[1], Xp.shape[1]))
        Bp[:R.shape[1], :R.shape[1]] = bread
        inp = CovInputs(X=Xp, u=u, bread=Bp, beta=np.zeros(Xp.shape[1]), fe_codes=self.fe_codes,
                        fe_dof=self.fe_dof,
                        leverage=lambda: np.einsum("ij,jk,ik->i", R, bread, R))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            V, info = compute_vcov(inp, self.kind, list(self.clusters), list(self.cl_names), self.ssc)
        k = R.shape[1]
        return V[:k, :k], info


#: Every ``stats`` key :func:`diagnose` can report (which ones depends on the covariance type).
STAT_KEYS = ("cragg_donald_F", "kp_rk_wald_F", "kp_rk_lm", "kp_rk_lm_df", "kp_rk_lm_p", "sargan",
             "sargan_df", "sargan_p", "hansen_J", "hansen_J_df", "hansen_J_p", "endog_stat", "endog_p",
             "durbin", "durbin_p")


def diagnose(y: np.ndarray, X: np.ndarray, E: np.ndarray, Z: np.ndarray, w: np.ndarray | None,
             kind: str, clusters: Sequence[np.ndarray], cl_names: Sequence[str], ssc: str,
             fe_codes: list[np.ndarray], fe_dof: Mapping[str, int], beta_e: np.ndarray,
             df_resid: float | None, level: float = 0.95) -> tuple[dict[str, float], dict[str, Any]]:
    """Diagnostics of a 2SLS fit (see the module docstring). ``X``, ``E``, ``Z``, ``y`` are the
    (fixed-effect demeaned) columns of the fit, ``beta_e`` the 2SLS coefficients of ``E``."""
    if w is not None:
        sw = np.sqrt(w)
        y, X, E, Z = y * sw, X * sw[:, None], E * sw[:, None], Z * sw[:, None]
    n, p, L2, kx = len(y), E.shape[1], Z.shape[1], X.shape[1]
    k_fe = int(fe_dof.get(ssc if ssc in fe_dof else "fixest", 0)) if fe_codes else 0
    # partial out the included exogenous regressors
    if kx:
        Q, _ = np.linalg.qr(X)
        yt, Et, Zt = y - Q @ (Q.T @ y), E - Q @ (Q.T @ E), Z - Q @ (Q.T @ Z)
    else:
        yt, Et, Zt = y, E, Z
    cov = _Cov(kind, clusters, cl_names, ssc, fe_codes, fe_dof, kx)
    robust = cov.kind != "iid"
    ZZ = Zt.T @ Zt
    Pi = linalg.solve(ZZ, Zt.T @ Et, assume_a="pos")
    Vhat = Et - Zt @ Pi
    L = kx + L2 + k_fe
    d = n if ssc == "none" else n - L
    stats: dict[str, float] = {}
    extra: dict[str, Any] = {"n_endogenous": p, "n_excluded_instruments": L2}
    # Cragg-Donald
    Svv = Vhat.T @ Vhat / d
    Si = _sqrt_inv(Svv)
    M = Si @ (Pi.T @ ZZ @ Pi) @ Si
    stats["cragg_donald_F"] = float(np.linalg.eigvalsh((M + M.T) / 2).min() / L2)
    # Kleibergen-Paap rk Wald (H0: rank Pi = p - 1)
    covPi = _vec_cov(Zt, Vhat, ZZ, cov, Svv) if robust else np.kron(Svv, linalg.inv(ZZ))
    rk = _kp_rank_stat(Pi, ZZ / n, Svv, covPi)
    stats["kp_rk_wald_F"] = rk / L2
    df_lm = L2 - p + 1
    if not robust:
        Sz = _sqrt_inv(ZZ)
        Se = _sqrt_inv(Et.T @ Et)
        cc = np.linalg.svd(Sz @ (Zt.T @ Et) @ Se, compute_uv=False)
        lm = float(n * cc.min() ** 2)
        extra["kp_rk_lm_type"] = "Anderson canonical-correlation LM (iid)"
    elif p == 1:
        g = Zt.T @ Et[:, 0]
        S = _meat(Zt * Et[:, [0]], clusters, cov.kind)
        lm = float(g @ linalg.solve(S, g, assume_a="pos"))
        extra["kp_rk_lm_type"] = f"robust score test of Pi = 0 ({cov.kind}, no small-sample factor)"
    else:
        lm = float("nan")
        extra["kp_rk_lm_type"] = "not computed for several endogenous regressors with a robust covariance"
    stats["kp_rk_lm"] = lm
    stats["kp_rk_lm_df"] = float(df_lm)
    stats["kp_rk_lm_p"] = float(special.chdtrc(df_lm, lm)) if np.isfinite(lm) else float("nan")
    # over-identification
    u = yt - Et @ beta_e
    if p < L2:
        dof = L2 - p
        if not robust:
            g = _ols(Zt, u)
            fit = Zt @ g
            # n R^2 of u on all instruments (X included; u is orthogonal to X already)
            stat = float(n * (fit @ fit) / (u @ u))
            stats["sargan"], stats["sargan_df"] = stat, float(dof)
            stats["sargan_p"] = float(special.chdtrc(dof, stat))
        else:
            stat = _hansen_j(yt, Et, Zt, u, clusters, cov.kind)
            stats["hansen_J"], stats["hansen_J_df"] = stat, float(dof)
            stats["hansen_J_p"] = float(special.chdtrc(dof, stat))
    # endogeneity (control function)
    R1 = np.hstack([Et, Vhat])
    b1 = _ols(R1, yt)
    e1 = yt - R1 @ b1
    if not robust:
        b0 = _ols(Et, yt)
        e0 = yt - Et @ b0
        ssr0, ssr1 = float(e0 @ e0), float(e1 @ e1)
        df2 = n - (kx + k_fe) - 2 * p
        wu = (ssr0 - ssr1) / p / (ssr1 / df2)
        stats["endog_stat"], stats["endog_p"] = wu, float(special.fdtrc(p, df2, wu))
        stats["durbin"] = n * (ssr0 - ssr1) / ssr0
        stats["durbin_p"] = float(special.chdtrc(p, stats["durbin"]))
        extra["endog_test"] = f"Wu-Hausman F({p}, {df2}) (iid); Durbin chi2({p}) in 'durbin'"
    else:
        V1, _ = cov(R1, e1)
        bv = b1[p:]
        stat = float(bv @ linalg.solve(V1[p:, p:], bv))
        stats["endog_stat"], stats["endog_p"] = stat, float(special.chdtrc(p, stat))
        extra["endog_test"] = f"Wald chi2({p}) of the first-stage residuals in the structural equation ({cov.kind})"
    extra["stock_yogo"] = stock_yogo(p, L2)
    extra["stock_yogo_source"] = STOCK_YOGO_SOURCE
    if p == 1:
        # reference distribution: F with the AR regression's residual degrees of freedom (n - L) when
        # the fit uses t and F without clusters, the fit's own (G - 1) when clustered, else chi2
        df_ar = df_resid if (df_resid is None or clusters) else float(d)
        extra["ar_ci"] = _ar_set(yt, Et[:, 0], Zt, cov, df_ar, level)
        extra["ar_level"] = level
    return stats, extra


def _meat(S: np.ndarray, clusters: Sequence[np.ndarray], kind: str) -> np.ndarray:
    if kind == "CRV1" and clusters:
        out = np.zeros((S.shape[1], S.shape[1]))
        parts = [(1.0, c) for c in clusters]
        if len(clusters) == 2:
            inter = pd.factorize(clusters[0] * (int(clusters[1].max()) + 2) + clusters[1])[0]
            parts.append((-1.0, inter))
        for sign, c in parts:
            G = int(c.max()) + 1
            Sg = np.column_stack([np.bincount(c, weights=S[:, j], minlength=G) for j in range(S.shape[1])])
            out += sign * (Sg.T @ Sg)
        return out
    return S.T @ S


def _vec_cov(Zt: np.ndarray, Vhat: np.ndarray, ZZ: np.ndarray, cov: _Cov, Svv: np.ndarray) -> np.ndarray:
    """Covariance of vec(Pi) (columns stacked) with the fit's covariance type and small-sample
    factor (the factor is read from the first equation's covariance)."""
    p = Vhat.shape[1]
    _, info = cov(Zt, Vhat[:, 0])
    mult = float(info.details.get("multiplier", 1.0))
    S = np.hstack([Zt * Vhat[:, [j]] for j in range(p)])
    meat = _meat(S, cov.clusters, cov.kind)
    B = np.kron(np.eye(p), linalg.inv(ZZ))
    return mult * B @ meat @ B


def _kp_rank_stat(Pi: np.ndarray, Qzz: np.ndarray, Svv: np.ndarray, covPi: np.ndarray) -> float:
    """Kleibergen-Paap (2006) rk statistic of H0: rank(Pi) = p - 1 (p = columns of Pi)."""
    p = Pi.shape[1]
    q = p - 1
    G = _sqrt(Qzz)
    F = _sqrt_inv(Svv)
    Theta = G @ Pi @ F
    U, _, Vt = np.linalg.svd(Theta)
    V = Vt.T
    U12, U22 = U[:q, q:], U[q:, q:]
    V12, V22 = V[:q, q:], V[q:, q:]
    A = np.vstack([U12, U22]) @ linalg.inv(U22) @ _sqrt(U22 @ U22.T)
    B = _sqrt(V22 @ V22.T) @ linalg.inv(V22.T) @ np.hstack([V12.T, V22.T])
    T = np.kron(B, A.T)
    lam = T @ Theta.reshape(-1, order="F")
    FG = np.kron(F, G)
    Om = T @ FG @ covPi @ FG.T @ T.T
    return float(lam @ linalg.solve((Om + Om.T) / 2, lam, assume_a="pos"))


def _hansen_j(yt: np.ndarray, Et: np.ndarray, Zt: np.ndarray, u: np.ndarray, clusters: Sequence[np.ndarray],
              kind: str) -> float:
    """Hansen's J at the two-step efficient GMM estimate (weights from the 2SLS residuals ``u``)."""
    S = _meat(Zt * u[:, None], clusters, kind)
    Wm = linalg.inv(S)
    ZE, Zy = Zt.T @ Et, Zt.T @ yt
    b = linalg.solve(ZE.T @ Wm @ ZE, ZE.T @ Wm @ Zy)
    g = Zy - ZE @ b
    return float(g @ Wm @ g)


def _ar_set(yt: np.ndarray, et: np.ndarray, Zt: np.ndarray, cov: _Cov, df_resid: float | None,
            level: float) -> dict[str, Any]:
    """Anderson-Rubin confidence set for one endogenous coefficient, by test inversion."""
    L2 = Zt.shape[1]
    ZZi = linalg.inv(Zt.T @ Zt)
    gy, ge = ZZi @ (Zt.T @ yt), ZZi @ (Zt.T @ et)
    ry, re = yt - Zt @ gy, et - Zt @ ge
    crit = (float(special.fdtri(L2, df_resid, level)) if df_resid is not None
            else float(special.chdtri(L2, 1 - level)) / L2)

    # the covariance of gy - b0 ge is quadratic in b0: precompute its three parts once
    _, info = cov(Zt, ry)
    if cov.kind == "iid":
        den = float(info.details["denominator"])
        parts = [np.array([[ry @ ry]]), np.array([[ry @ re]]), np.array([[re @ re]])]

        def vcov_at(b0: float) -> np.ndarray:
            s2 = (parts[0] - 2 * b0 * parts[1] + b0**2 * parts[2])[0, 0] / den
            return s2 * ZZi
    elif cov.kind in ("HC1", "CRV1"):
        mult = float(info.details.get("multiplier", 1.0))
        both = _meat(np.hstack([Zt * ry[:, None], Zt * re[:, None]]), cov.clusters, cov.kind)
        Myy, Mye, Mee = both[:L2, :L2], both[:L2, L2:], both[L2:, L2:]

        def vcov_at(b0: float) -> np.ndarray:
            return mult * ZZi @ (Myy - b0 * (Mye + Mye.T) + b0**2 * Mee) @ ZZi
    else:
        def vcov_at(b0: float) -> np.ndarray:
            return cov(Zt, ry - b0 * re)[0]

    def stat(b0: float) -> float:
        g = gy - b0 * ge
        return float(g @ linalg.solve(vcov_at(b0), g)) / L2

    # as b0 -> +-infinity the statistic tends to the first-stage Wald F
    V_e, _ = cov(Zt, re)
    limit = float(ge @ linalg.solve(V_e, ge)) / L2
    b2 = float(gy @ ge / (ge @ ge))    # a point near the centre (the just-identified IV if L2 = 1)
    spread = 1.0 + abs(b2)
    grid = b2 + spread * np.sinh(np.linspace(-12, 12, 1601))   # dense near b2, reaches ~1e5 * spread
    vals = np.array([stat(b) for b in grid]) - crit
    roots = []
    for i in np.flatnonzero(np.sign(vals[:-1]) != np.sign(vals[1:])):
        roots.append(float(optimize.brentq(lambda b: stat(b) - crit, grid[i], grid[i + 1], xtol=1e-12)))
    inside_ends = (vals[0] <= 0, vals[-1] <= 0)
    if not roots:
        kind = "whole line" if vals[0] <= 0 else "empty"
        return {"type": kind, "intervals": [[-np.inf, np.inf]] if kind == "whole line" else [],
                "critical_value": crit, "limit_F": limit}
    edges = ([-np.inf] if inside_ends[0] else []) + roots + ([np.inf] if inside_ends[1] else [])
    intervals = [[edges[i], edges[i + 1]] for i in range(0, len(edges) - 1, 2)]
    kind = "interval" if len(intervals) == 1 and np.isfinite(intervals[0]).all() else (
        "union of two rays" if not np.isfinite(intervals[0][0]) and not np.isfinite(intervals[-1][1])
        and len(intervals) == 2 else "union of intervals")
    return {"type": kind, "intervals": intervals, "critical_value": crit, "limit_F": limit}
