"""Least-squares multiple structural breaks (Bai and Perron) with Bai (1997) confidence intervals.

Model
-----
For observations ``t = 1..n`` and ``m`` breaks at ``T_1 < ... < T_m`` the regression

    y_t = x_t' beta_j + u_t,   T_{j-1} < t <= T_j,   j = 1..m+1   (T_0 = 0, T_{m+1} = n)

is fitted by least squares in every regime. The break dates minimise the total residual sum of
squares over all partitions whose regimes hold at least ``h`` observations. They are found by
dynamic programming over the triangular matrix of segment residual sums of squares
(Bai and Perron 2003, "Computation and analysis of multiple structural change models"). The
number of breaks is chosen by BIC (as R's strucchange does: ``(k + 1)(m + 1)`` parameters,
Gaussian log-likelihood with variance ``RSS / n``) or by the modified Schwarz criterion of Liu,
Wu and Zidek (1997) as given in Bai and Perron (2003).

Confidence intervals for each break date use the limiting distribution of Bai (1997) with
regressors and errors allowed to differ across the two adjacent regimes (heterogeneous ``Q`` and
error variance, the defaults of strucchange's ``confint``; no HAC correction).

Why hand-written: no maintained Python package implements Bai-Perron dating with Bai (1997)
intervals. ``ruptures`` finds optimal segmentations for a given number of breaks, but has neither
the regression model, nor the information criteria, nor the interval for the break dates; the
tests compare the segmentation to an exhaustive search and, where installed, to ruptures.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, special

from cluster_econ.errors import EstimationError, InputError

__all__ = ["BreaksResult", "argmax_cdf", "segment_rss_matrix", "structural_breaks"]


# ---------------------------------------------------------------------------------------------
# segment residual sums of squares
# ---------------------------------------------------------------------------------------------
def segment_rss_matrix(y: np.ndarray, X: np.ndarray | None = None, h: int = 1) -> np.ndarray:
    """Residual sum of squares of every segment ``[i, j]`` (0-based, inclusive).

    Parameters
    ----------
    y : array, shape (n,) or (n, p)
        Response. With ``X`` None and a 2-D ``y``, the model is a mean shift common to all
        ``p`` columns and the segment cost is the sum of the columns' residual sums of squares.
    X : array, shape (n, k), optional
        Regressors; ``None`` means a constant only (a mean-shift model).
    h : int
        Minimum segment length; entries of shorter segments are ``inf``.

    Returns
    -------
    ndarray, shape (n, n)
        ``R[i, j]`` is the segment RSS for ``i <= j`` with ``j - i + 1 >= h``, else ``inf``.
    """
    y = np.asarray(y, dtype=float)
    n = y.shape[0]
    R = np.full((n, n), np.inf)
    if X is None:
        Y = y.reshape(n, -1)
        c1 = np.vstack([np.zeros((1, Y.shape[1])), np.cumsum(Y, axis=0)])
        c2 = np.vstack([np.zeros((1, Y.shape[1])), np.cumsum(Y**2, axis=0)])
        i, j = np.triu_indices(n)
        length = (j - i + 1)[:, None]
        s1 = c1[j + 1] - c1[i]
        s2 = c2[j + 1] - c2[i]
        rss = np.maximum(s2 - s1**2 / length, 0.0).sum(axis=1)
        R[i, j] = rss
    else:
        X = np.asarray(X, dtype=float)
        if y.ndim != 1:
            raise InputError("a regression with breaks needs a one-dimensional response y")
        k = X.shape[1]
        for i in range(n):
            # recursive least squares: the RSS grows by the squared recursive residual
            # scaled by 1 / (1 + x' P x) once the first k observations fix beta.
            stop = min(n, i + k)
            Xi, yi = X[i:stop], y[i:stop]
            if stop - i < k:
                break
            XtX = Xi.T @ Xi
            try:
                P = np.linalg.inv(XtX)
            except np.linalg.LinAlgError:
                P = None
            if P is None or not np.all(np.isfinite(P)):
                # singular start: fall back to direct least squares for this row
                for j in range(i + k - 1, n):
                    Xs, ys = X[i:j + 1], y[i:j + 1]
                    beta = np.linalg.lstsq(Xs, ys, rcond=None)[0]
                    R[i, j] = float(np.sum((ys - Xs @ beta) ** 2))
                continue
            beta = P @ (Xi.T @ yi)
            rss = float(np.sum((yi - Xi @ beta) ** 2))
            R[i, stop - 1] = rss
            for j in range(stop, n):
                x = X[j]
                Px = P @ x
                f = 1.0 + x @ Px
                e = y[j] - x @ beta
                rss += e * e / f
                beta = beta + Px * (e / f)
                P = P - np.outer(Px, Px) / f
                R[i, j] = rss
    if h > 1:
        i, j = np.triu_indices(n)
        short = (j - i + 1) < h
        R[i[short], j[short]] = np.inf
    return R


def _optimal_partitions(R: np.ndarray, h: int, max_breaks: int) -> list[tuple[float, list[int]]]:
    """Minimum-RSS partitions with 0..max_breaks breaks.

    Returns a list indexed by the number of breaks ``m`` of ``(rss, ends)`` where ``ends`` are
    the 0-based indices of the last observation of every regime but the last.
    """
    n = R.shape[0]
    # cost[m][j]: minimal RSS of observations 0..j in m + 1 regimes; arg[m][j]: end of regime m
    cost = np.full((max_breaks + 1, n), np.inf)
    arg = np.full((max_breaks + 1, n), -1, dtype=int)
    cost[0] = R[0]
    for m in range(1, max_breaks + 1):
        for j in range((m + 1) * h - 1, n):
            lo, hi = m * h - 1, j - h          # last index of regime m (0-based)
            if hi < lo:
                continue
            t = np.arange(lo, hi + 1)
            cand = cost[m - 1, t] + R[t + 1, j]
            best = int(np.argmin(cand))
            cost[m, j] = cand[best]
            arg[m, j] = t[best]
    out: list[tuple[float, list[int]]] = []
    for m in range(max_breaks + 1):
        total = cost[m, n - 1]
        ends: list[int] = []
        j = n - 1
        for mm in range(m, 0, -1):
            j = int(arg[mm, j])
            ends.append(j)
        out.append((float(total), sorted(ends)))
    return out


# ---------------------------------------------------------------------------------------------
# Bai (1997) limiting distribution of the break date
# ---------------------------------------------------------------------------------------------
def argmax_cdf(x: float, xi: float = 1.0, phi1: float = 1.0, phi2: float = 1.0) -> float:
    """Distribution function of the location of the maximum of Bai's (1997) two-sided process.

    The process is ``W1(-s) - |s|/2`` for ``s <= 0`` and ``sqrt(xi) * (phi2/phi1) * W2(s) -
    xi * s / 2`` for ``s > 0`` (``W1``, ``W2`` independent Wiener processes), whose argmax gives the
    rescaled error of a least-squares break date; ``xi`` is the ratio of the quadratic forms of the
    shift in the regressor second moments after and before the break, ``phi1``, ``phi2`` the error
    standard deviations. The closed form is Bai (1997, Proposition 3), evaluated with logs of the
    normal distribution function so that the exponentially growing factors do not overflow. (The
    coefficients multiplying the normal tails are positive for all admissible ``xi``, ``phi``.)
    """
    phi = xi * (phi2 / phi1) ** 2
    a = abs(float(x))
    log_ndtr = special.log_ndtr
    if x < 0:
        r = xi / phi
        t1 = np.exp(0.5 * np.log(a) - a / 8.0 - 0.5 * np.log(2 * np.pi))
        t2 = (phi / xi) * (phi + 2 * xi) / (phi + xi) * np.exp(
            r * (1 + r) * a / 2.0 + log_ndtr(-(0.5 + r) * np.sqrt(a)))
        c3 = a / 2.0 - 2.0 + (phi + 2 * xi) ** 2 / ((phi + xi) * xi)
        t3 = np.exp(np.log(c3) + log_ndtr(-np.sqrt(a) / 2.0))
        return float(-t1 - t2 + t3)
    r = xi**2 / phi
    t1 = np.sqrt(r) * np.exp(0.5 * np.log(a) - r * a / 8.0 - 0.5 * np.log(2 * np.pi)) if a else 0.0
    t2 = (xi / phi) * (2 * phi + xi) / (phi + xi) * np.exp(
        (phi + xi) * a / 2.0 + log_ndtr(-(phi + xi / 2.0) / np.sqrt(phi) * np.sqrt(a)))
    c3 = (2 * phi + xi) ** 2 / ((phi + xi) * phi) - 2.0 + r * a / 2.0
    t3 = np.exp(np.log(c3) + log_ndtr(-np.sqrt(r) * np.sqrt(a) / 2.0))
    return float(1.0 + t1 + t2 - t3)


def _bai_interval(xi: float, phi1: float, phi2: float, qprod1: float,
                  level: float) -> tuple[float, float] | None:
    """Lower and upper quantiles of the break-date error (in observations), or None."""
    a2 = (1.0 - level) / 2.0
    p0 = argmax_cdf(0.0, xi, phi1, phi2)
    if not np.isfinite(p0) or p0 < a2 or p0 > 1 - a2:
        return None

    def f(x: float, target: float) -> float:
        return argmax_cdf(x, xi, phi1, phi2) - target

    ub = 0.0
    while f(ub, 1 - a2) < 0:
        ub += 1000.0
    lb = 0.0
    while f(lb, a2) > 0:
        lb -= 1000.0
    upper = optimize.brentq(f, 0.0, ub, args=(1 - a2,), xtol=1e-10) if ub > 0 else 0.0
    lower = optimize.brentq(f, lb, 0.0, args=(a2,), xtol=1e-10) if lb < 0 else 0.0
    scale = phi1**2 / qprod1
    return lower * scale, upper * scale


# ---------------------------------------------------------------------------------------------
# result
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BreaksResult:
    """Structural breaks of one series.

    Attributes
    ----------
    breakpoints : list
        Index label of the last observation of every regime except the last (R strucchange's
        ``breakdates`` for a series indexed by years).
    positions : list of int
        The same as 1-based observation counts (strucchange's ``breakpoints``).
    n_breaks : int
        Number of breaks chosen by ``criterion``.
    criterion : str
        ``"BIC"`` or ``"LWZ"``.
    bic : DataFrame
        By number of breaks ``m``: ``rss``, ``BIC``, ``LWZ`` and the optimal break labels.
    rss : float
        Residual sum of squares of the chosen partition.
    segments : DataFrame
        One row per regime: ``start``, ``end`` (labels), ``n`` and the coefficient estimates.
    h : int
        Minimum segment length in observations.
    """

    breakpoints: list[Any]
    positions: list[int]
    n_breaks: int
    criterion: str
    bic: pd.DataFrame
    rss: float
    segments: pd.DataFrame
    h: int
    index: pd.Index
    y: np.ndarray = field(repr=False)
    X: np.ndarray = field(repr=False)
    coef_names: tuple[str, ...] = ("(Intercept)",)

    def confint(self, level: float = 0.95, het_reg: bool = True,
                het_err: bool = True) -> pd.DataFrame:
        """Confidence intervals for the break dates (Bai 1997).

        Regressor moments and error variances may differ across the two regimes around each
        break (``het_reg``, ``het_err``; strucchange's defaults); no HAC correction. The bounds
        are rounded outward to whole observations as strucchange does and reported as index
        labels (``lower``, ``breakpoint``, ``upper``); ``lower_pos``/``upper_pos`` give 1-based
        observation numbers, which may fall outside the sample when the interval is wide
        (the label is then missing). A break whose interval cannot be computed (the limiting
        distribution puts less than ``(1 - level)/2`` on one side) gets missing bounds.
        """
        if self.n_breaks == 0:
            raise EstimationError("no breaks were found, so there are no break dates to bound")
        if not 0 < level < 1:
            raise InputError(f"level must be between 0 and 1, got {level}")
        y, X = self.y, self.X
        n = len(y)
        bounds = [0, *self.positions, n]
        coefs, sig, Qs = [], [], []
        resid_all = []
        for s, e in itertools.pairwise(bounds):
            Xs, ys = X[s:e], y[s:e]
            beta = np.linalg.lstsq(Xs, ys, rcond=None)[0]
            res = ys - Xs @ beta
            resid_all.append(res)
            coefs.append(beta)
            sig.append(float(res @ res) / (e - s))
            Qs.append(Xs.T @ Xs / (e - s))
        pooled_sigma = float(np.sum(np.concatenate(resid_all) ** 2)) / n
        pooled_Q = X.T @ X / n
        rows = []
        for b in range(self.n_breaks):
            delta = coefs[b + 1] - coefs[b]
            Q1 = Qs[b] if het_reg else pooled_Q
            Q2 = Qs[b + 1] if het_reg else pooled_Q
            s1 = sig[b] if het_err else pooled_sigma
            s2 = sig[b + 1] if het_err else pooled_sigma
            q1 = float(delta @ Q1 @ delta)
            q2 = float(delta @ Q2 @ delta)
            xi = q2 / q1 if het_reg else 1.0
            iv = _bai_interval(xi, np.sqrt(s1), np.sqrt(s2), q1, level)
            pos = self.positions[b]
            if iv is None:
                lo_pos = hi_pos = None
            else:
                lo_pos = pos - int(np.ceil(iv[1]))
                hi_pos = pos - int(np.floor(iv[0]))
            rows.append({
                "lower": self._label(lo_pos), "breakpoint": self.breakpoints[b],
                "upper": self._label(hi_pos), "lower_pos": lo_pos, "position": pos,
                "upper_pos": hi_pos,
            })
        out = pd.DataFrame(rows)
        out.attrs["level"] = level
        return out

    def _label(self, pos: int | None) -> Any:
        if pos is None or pos < 1 or pos > len(self.index):
            return None
        return self.index[pos - 1]

    def fitted(self) -> pd.Series:
        """Fitted values of the chosen partition, indexed like the input."""
        bounds = [0, *self.positions, len(self.y)]
        out = np.empty(len(self.y))
        for s, e in itertools.pairwise(bounds):
            beta = np.linalg.lstsq(self.X[s:e], self.y[s:e], rcond=None)[0]
            out[s:e] = self.X[s:e] @ beta
        return pd.Series(out, index=self.index)

    def summary(self) -> str:
        lines = [f"Structural breaks: {self.n_breaks} chosen by {self.criterion} "
                 f"(h = {self.h}, n = {len(self.y)})"]
        if self.n_breaks:
            lines.append("break dates (last observation of each regime): "
                         + ", ".join(str(b) for b in self.breakpoints))
        lines.append(self.bic.to_string(index=False))
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.summary()


def _lwz(rss: float, n: int, m: int, q: int, p: int = 0) -> float:
    # Liu, Wu and Zidek (1997) as in Bai and Perron (2003): c0 = 0.299, delta0 = 0.1
    pstar = (m + 1) * q + m + p
    if n - pstar <= 0 or rss <= 0:
        return np.inf
    return float(np.log(rss / (n - pstar)) + pstar / n * 0.299 * np.log(n) ** 2.1)


def _bic(rss: float, n: int, m: int, k: int) -> float:
    # Gaussian log-likelihood with ML variance; (k + 1)(m + 1) parameters as in strucchange
    if rss <= 0:
        return -np.inf
    return float(n * (np.log(rss) + 1 - np.log(n) + np.log(2 * np.pi)) + np.log(n) * (k + 1) * (m + 1))


def structural_breaks(
    y: Sequence[float] | np.ndarray | pd.Series,
    max_breaks: int | None = 5,
    h: float | int = 0.15,
    criterion: str = "BIC",
    index: Sequence[Any] | pd.Index | None = None,
    X: np.ndarray | pd.DataFrame | None = None,
    breaks: int | None = None,
) -> BreaksResult:
    """Least-squares structural breaks in the mean (or regression) of one series.

    Parameters
    ----------
    y : array-like or Series
        The series, in time order, without missing values. A Series supplies its index as labels.
    max_breaks : int or None
        Largest number of breaks considered; capped by what ``h`` allows
        (``ceil(n / h) - 2``); None means that cap.
    h : float or int
        Minimum regime length: a fraction of ``n`` (``floor(h * n)`` observations) if below 1,
        otherwise a number of observations. It must exceed the number of regressors.
    criterion : {"BIC", "LWZ"}
        How the number of breaks is chosen.
    index : sequence, optional
        Labels of the observations (for example years); default the Series index or 1..n.
    X : array, optional
        Regressors whose coefficients break (default: a constant, i.e. a mean-shift model).
    breaks : int, optional
        Impose this number of breaks instead of choosing it.

    Returns
    -------
    BreaksResult
    """
    if isinstance(y, pd.Series):
        labels = pd.Index(y.index) if index is None else pd.Index(index)
        name = y.name
        yv = y.to_numpy(dtype=float)
    else:
        yv = np.asarray(y, dtype=float)
        name = None
        labels = pd.Index(np.arange(1, len(yv) + 1)) if index is None else pd.Index(index)
    if yv.ndim != 1:
        raise InputError("structural_breaks takes one series; got an array of shape "
                         f"{yv.shape}")
    n = len(yv)
    if len(labels) != n:
        raise InputError(f"index has {len(labels)} labels for {n} observations")
    bad = np.flatnonzero(~np.isfinite(yv))
    if bad.size:
        shown = ", ".join(str(labels[i]) for i in bad[:10])
        raise InputError(f"series {name or 'y'} has {bad.size} missing or infinite values "
                         f"(at {shown}); drop or fill them first")
    if X is None:
        Xv = np.ones((n, 1))
        names: tuple[str, ...] = ("(Intercept)",)
    else:
        names = tuple(map(str, X.columns)) if isinstance(X, pd.DataFrame) else tuple(
            f"x{i}" for i in range(np.asarray(X).reshape(n, -1).shape[1]))
        Xv = np.asarray(X, dtype=float).reshape(n, -1)
    k = Xv.shape[1]
    hh = int(np.floor(h * n)) if h < 1 else int(h)
    if hh <= k:
        raise InputError(f"minimum segment length h = {hh} observations must exceed the "
                         f"number of regressors ({k}); n = {n}")
    if hh > n // 2:
        raise InputError(f"minimum segment length h = {hh} must be at most half the "
                         f"{n} observations")
    cap = int(np.ceil(n / hh)) - 2
    mb = cap if max_breaks is None else min(int(max_breaks), cap)
    if breaks is not None:
        if breaks > cap:
            raise InputError(f"{breaks} breaks requested but h = {hh} allows at most {cap}")
        mb = max(mb, int(breaks))
    mb = max(mb, 0)
    crit = criterion.upper()
    if crit not in ("BIC", "LWZ"):
        raise InputError(f"criterion must be 'BIC' or 'LWZ', got {criterion!r}")
    R = segment_rss_matrix(yv, None if X is None else Xv, hh)
    parts = _optimal_partitions(R, hh, mb)
    table = []
    for m, (rss, ends) in enumerate(parts):
        table.append({"m": m, "rss": rss, "BIC": _bic(rss, n, m, k), "LWZ": _lwz(rss, n, m, k),
                      "breakpoints": [labels[e] for e in ends]})
    bic = pd.DataFrame(table)
    m_star = int(breaks) if breaks is not None else int(np.argmin(bic[crit].to_numpy()))
    rss, ends = parts[m_star]
    positions = [e + 1 for e in ends]
    bounds = [0, *positions, n]
    seg_rows = []
    for s, e in itertools.pairwise(bounds):
        beta = np.linalg.lstsq(Xv[s:e], yv[s:e], rcond=None)[0]
        row: dict[str, Any] = {"start": labels[s], "end": labels[e - 1], "n": e - s}
        row.update(dict(zip(names, beta.tolist(), strict=False)))
        seg_rows.append(row)
    return BreaksResult(
        breakpoints=[labels[e] for e in ends], positions=positions, n_breaks=m_star,
        criterion=crit, bic=bic, rss=rss, segments=pd.DataFrame(seg_rows), h=hh, index=labels,
        y=yv, X=Xv, coef_names=names,
    )


def mean_shift_interval(z1: np.ndarray, z2: np.ndarray, level: float = 0.95) -> tuple[float, float] | None:
    """Bai (1997) interval for a break in the mean between two adjacent regimes ``z1``, ``z2``.

    Returns the lower and upper error of the break date in observations (the date lies in
    ``[break - ceil(upper), break - floor(lower)]``), or None when it cannot be computed. The error
    variances may differ between the regimes (strucchange's ``het.err``).
    """
    z1 = np.asarray(z1, dtype=float)
    z2 = np.asarray(z2, dtype=float)
    delta = z2.mean() - z1.mean()
    if delta == 0 or len(z1) < 2 or len(z2) < 2:
        return None
    s1 = float(np.mean((z1 - z1.mean()) ** 2))
    s2 = float(np.mean((z2 - z2.mean()) ** 2))
    if s1 <= 0 or s2 <= 0:
        return None
    return _bai_interval(1.0, np.sqrt(s1), np.sqrt(s2), delta**2, level)
