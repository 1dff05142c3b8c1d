"""Wooldridge (2009) one-step GMM against linearmodels' IVGMM on the same stacked system.

The stacked system is built here independently of the package: raw monomials written out by
hand (the package standardises its polynomial columns, a reparametrisation of the same span),
equation indicators, the lag found by a pandas merge on (firm, year - 1). linearmodels is given
the shared inputs as regressors (capital exogenous, labour endogenous), each equation's constant
and polynomial as exogenous regressors, and labour in ``t`` (equation 1 rows) and ``t-1``
(equation 2 rows) as the excluded instruments: the instrument span equals the package's
block-diagonal one, so the two-step GMM estimates coincide.

Convention (both sides): two-step GMM, first step 2SLS, weight the inverse of the firm-clustered
moment covariance at the one-step residuals; covariance the clustered sandwich at the two-step
residuals; no small-sample correction (linearmodels ``weight_type="clustered"``,
``cov_type="clustered"``, ``debiased=False``). Tolerance 1e-6 (relative).
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from cluster_econ.errors import EstimationError
from cluster_econ.estimate.production import prodest
from cluster_econ.estimate.production.montecarlo import proxy_panel


def _monomials(frame: pd.DataFrame, cols: list[str], degree: int, prefix: str) -> pd.DataFrame:
    out = {}
    for d in range(1, degree + 1):
        for combo in itertools.combinations_with_replacement(cols, d):
            name = prefix + "*".join(combo)
            val = np.ones(len(frame))
            for c in combo:
                val = val * frame[c].to_numpy()
            out[name] = val
    return pd.DataFrame(out, index=frame.index)


def _stacked(df: pd.DataFrame, degree: int) -> dict[str, pd.DataFrame | pd.Series]:
    prev = df[["firm", "year", "l", "k", "m"]].assign(year=df["year"] + 1).rename(
        columns={"l": "l_lag", "k": "k_lag", "m": "m_lag"})
    d = df.merge(prev, on=["firm", "year"], how="inner").reset_index(drop=True)
    n = len(d)
    c1 = _monomials(d, ["k", "m"], degree, "eq1:")
    c2 = _monomials(d.rename(columns={"k_lag": "kl", "m_lag": "ml"}), ["kl", "ml"], degree, "eq2:")
    zeros1 = pd.DataFrame(0.0, index=d.index, columns=c1.columns)
    zeros2 = pd.DataFrame(0.0, index=d.index, columns=c2.columns)
    ones, nil = np.ones(n), np.zeros(n)
    top = pd.concat([pd.DataFrame({"k": d["k"], "eq1": ones, "eq2": nil}), c1, zeros2], axis=1)
    bottom = pd.concat([pd.DataFrame({"k": d["k"], "eq1": nil, "eq2": ones}), zeros1, c2], axis=1)
    exog = pd.concat([top, bottom], ignore_index=True)
    endog = pd.DataFrame({"l": np.r_[d["l"], d["l"]]})
    instr = pd.DataFrame({"l_eq1": np.r_[d["l"], nil], "l_lag_eq2": np.r_[nil, d["l_lag"]]})
    dep = pd.Series(np.r_[d["y"], d["y"]], name="y")
    clusters = pd.Series(np.r_[d["firm"], d["firm"]])
    return {"dep": dep, "exog": exog, "endog": endog, "instr": instr, "clusters": clusters}


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    return proxy_panel(seed=3)


@pytest.mark.parametrize("degree", [2, 3])
def test_wrdg_matches_linearmodels_ivgmm(panel, degree) -> None:
    from linearmodels.iv import IVGMM

    s = _stacked(panel, degree)
    lm = IVGMM(s["dep"], s["exog"], s["endog"], s["instr"], weight_type="clustered",
               clusters=s["clusters"].to_numpy()).fit(cov_type="clustered", clusters=s["clusters"].to_numpy(),
                                                      debiased=False)
    res = prodest(panel, output="y", free="l", state="k", proxy="m", method="wrdg", entity="firm",
                  poly_degree=degree)
    for ours, theirs in (("l", "l"), ("k", "k")):
        assert res.params[ours] == pytest.approx(lm.params[theirs], rel=1e-6)
        assert res.bse[ours] == pytest.approx(lm.std_errors[theirs], rel=1e-6)
    assert res.stats["j_stat"] == pytest.approx(float(lm.j_stat.stat), rel=1e-6)
    assert res.stats["j_df"] == lm.j_stat.df
    assert res.vcov_info.type == "GMM-clustered" and res.vcov_info.ssc == "none"
    assert res.vcov_info.cluster_vars == ("firm",) and res.vcov_info.n_clusters == (600,)


def test_wrdg_recovers_the_proxy_world(panel) -> None:
    """Both proxies, every proxy assumption holds: within 4 analytic s.e. of the truth."""
    for proxy, kind in (("m", "materials"), ("inv", "investment")):
        res = prodest(panel, output="y", free="l", state="k", proxy=proxy, proxy_type=kind, method="wrdg",
                      entity="firm")
        assert abs(res.params["l"] - 0.6) < 4 * res.bse["l"]
        assert abs(res.params["k"] - 0.3) < 4 * res.bse["k"]
        assert res.extra["omega"].notna().sum() > 0.8 * len(panel)


def test_wrdg_detects_capital_accumulation_identity() -> None:
    """Capital that accumulates exactly from last year's capital and investment, with an
    investment proxy: the second equation cannot identify capital, and the estimator says so."""
    df = proxy_panel(seed=5).sort_values(["firm", "year"]).reset_index(drop=True)
    k = df["k"].to_numpy().copy()
    inv = df["inv"].to_numpy()
    same = np.r_[False, df["firm"].to_numpy()[1:] == df["firm"].to_numpy()[:-1]]
    for i in np.flatnonzero(same):
        k[i] = np.log(0.92 * np.exp(k[i - 1]) + inv[i - 1])
    with pytest.raises(EstimationError, match="exact function of last year"):
        prodest(df.assign(k=k), output="y", free="l", state="k", proxy="inv", proxy_type="investment",
                method="wrdg", entity="firm")
