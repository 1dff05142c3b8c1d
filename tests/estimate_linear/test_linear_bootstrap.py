"""Wild cluster bootstrap: exact agreement with a brute-force implementation under full
enumeration, agreement with wildboottest within Monte Carlo error, and inversion properties.
The bootstrap t uses CRV1 with the multiplier G/(G-1) (N-1)/(N-K) (it cancels in the p-value)."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pandas as pd
import pytest

from cluster_econ.estimate.bootstrap import wild_bootstrap
from cluster_econ.estimate.linear import feols


def _data(G: int, n: int, seed: int, effect: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"cl": rng.integers(0, G, n), "year": rng.integers(0, 4, n), "x": rng.normal(size=n)})
    df["firm"] = df.cl * 5 + rng.integers(0, 5, n)
    df["d"] = (df.cl % 2) + rng.normal(size=n) * 0.3
    df["y"] = effect * df.d + df.x + rng.normal(size=n) + rng.normal(size=G)[df.cl]
    return df


def _brute_force_p(df: pd.DataFrame, param: str, null: float) -> float:
    """WCR by direct computation on the full dummy design, one regression per sign vector."""
    firm = pd.get_dummies(df.firm, dtype=float).to_numpy()
    year = pd.get_dummies(df.year, dtype=float).to_numpy()[:, 1:]
    X = np.column_stack([df.d, df.x, firm, year])
    y = df.y.to_numpy()
    cl = pd.factorize(df.cl)[0]
    G, n, k = cl.max() + 1, len(y), X.shape[1]
    mult = G / (G - 1) * (n - 1) / (n - 3)  # K = slopes d, x + one for the nested firm effects

    def t_of(yv: np.ndarray) -> float:
        XtXi = np.linalg.inv(X.T @ X)
        b = XtXi @ X.T @ yv
        u = yv - X @ b
        meat = np.zeros((k, k))
        for g in range(G):
            s = X[cl == g].T @ u[cl == g]
            meat += np.outer(s, s)
        V = mult * XtXi @ meat @ XtXi
        return (b[0] - null) / np.sqrt(V[0, 0])

    Xo = X[:, 1:]
    yr = y - null * X[:, 0]
    br = np.linalg.lstsq(Xo, yr, rcond=None)[0]
    ur = yr - Xo @ br
    fit0 = y - ur
    t0 = abs(t_of(y))
    count = 0
    signs = list(itertools.product([-1.0, 1.0], repeat=G))
    for v in signs:
        ystar = fit0 + ur * np.asarray(v)[cl]
        count += abs(t_of(ystar)) > t0 * (1 + 1e-9)
    return count / len(signs)


def test_full_enumeration_equals_brute_force():
    df = _data(G=8, n=160, seed=4)
    r = wild_bootstrap("y ~ d + x | firm + year", df, "d", "cl", B=999, seed=0, ci=False)
    assert r.enumerated and r.B == 256
    assert r.p_value == _brute_force_p(df, "d", 0.0)
    r2 = wild_bootstrap("y ~ d + x | firm + year", df, "d", "cl", B=999, seed=0, null=0.4, ci=False)
    assert r2.p_value == _brute_force_p(df, "d", 0.4)


def test_t_statistic_equals_feols_crv1():
    df = _data(G=30, n=900, seed=5)
    r = wild_bootstrap("y ~ d + x | firm + year", df, "d", "cl", B=99, seed=1, ci=False)
    f = feols("y ~ d + x | firm + year", df, vcov={"CRV1": "cl"})
    assert r.statistic == pytest.approx(f.tvalues["d"], rel=1e-8)
    assert r.nobs == f.nobs


@pytest.mark.peer
@pytest.mark.parametrize("impose_null", [True, False])
def test_p_value_matches_wildboottest_within_monte_carlo_error(impose_null):
    wbt = pytest.importorskip("wildboottest.wildboottest")
    smf = pytest.importorskip("statsmodels.formula.api")
    df = _data(G=50, n=2000, seed=6, effect=0.25)
    ours = wild_bootstrap("y ~ d + x | year", df, "d", "cl", B=9999, seed=11, ci=False,
                          impose_null=impose_null)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        peer = wbt.wildboottest(smf.ols("y ~ d + x + C(year)", df), param="d", cluster=df.cl, B=9999,
                                seed=12, show=False, impose_null=impose_null)
    p_peer = float(peer["p-value"].iloc[0])
    assert ours.statistic == pytest.approx(float(peer["statistic"].iloc[0]), rel=1e-6)
    # two independent Monte Carlo estimates: s.e. of the difference is sqrt(2 p (1-p) / B)
    se = np.sqrt(2 * p_peer * (1 - p_peer) / 9999)
    assert abs(ours.p_value - p_peer) < 3 * se + 1e-4


def test_confidence_interval_is_test_inversion():
    df = _data(G=40, n=1200, seed=7, effect=0.3)
    r = wild_bootstrap("y ~ d + x | firm + year", df, "d", "cl", B=1999, seed=3)
    lo, hi = r.conf_int
    assert lo < r.estimate < hi
    eps = 1e-3 * (hi - lo)
    for edge, inward in ((lo, +1), (hi, -1)):
        inside = wild_bootstrap("y ~ d + x | firm + year", df, "d", "cl", B=1999, seed=3,
                                null=edge + inward * eps, ci=False)
        outside = wild_bootstrap("y ~ d + x | firm + year", df, "d", "cl", B=1999, seed=3,
                                 null=edge - inward * eps, ci=False)
        assert inside.p_value >= 0.05 > outside.p_value


def test_seeded_and_reproducible_with_webb_weights():
    df = _data(G=12, n=600, seed=8)
    a = wild_bootstrap("y ~ d + x | firm", df, "d", "cl", B=999, seed=5, weights="webb")
    b = wild_bootstrap("y ~ d + x | firm", df, "d", "cl", B=999, seed=5, weights="webb")
    assert a == b and not a.enumerated


def test_size_under_the_null_is_close_to_nominal():
    """Rejection rate at 5% over 400 simulated data sets with G=20 and a true null: within 3
    binomial standard errors of 0.05 (0.05 +/- 0.033). The band excludes 0 and 0.1, so a test that
    never rejects, or one that rejects twice as often as it should, fails here."""
    reps = 400
    se = np.sqrt(0.05 * 0.95 / reps)
    assert 3 * se < 0.05  # the band must exclude a test that never rejects
    rej = 0
    for s in range(reps):
        df = _data(G=20, n=400, seed=100 + s)
        rej += wild_bootstrap("y ~ d + x", df, "d", "cl", B=199, seed=s, ci=False).p_value < 0.05
    assert abs(rej / reps - 0.05) <= 3 * se, rej / reps


def test_result_input_reuses_formula_and_cluster():
    df = _data(G=25, n=700, seed=9)
    res = feols("y ~ d + x | firm", df, vcov={"CRV1": "cl"})
    a = wild_bootstrap(res, df, "d", B=499, seed=2, ci=False)
    b = wild_bootstrap("y ~ d + x | firm", df, "d", "cl", B=499, seed=2, ci=False)
    assert (a.p_value, a.statistic, a.n_clusters) == (b.p_value, b.statistic, b.n_clusters)
