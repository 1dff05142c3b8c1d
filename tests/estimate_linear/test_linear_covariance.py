"""Covariance presets and edge cases that the peer comparisons do not reach.

Conventions: "fixest" = pyfixest default ssc(); "stata" = same except exact counting of redundant
fixed-effect levels between the first two factors and CRV3 multiplier (G-1)/G; "none" = no
small-sample multiplier.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from cluster_econ.errors import EstimationError
from cluster_econ.estimate.covariance import CovInputs, compute_vcov
from cluster_econ.estimate.linear import feols
from cluster_econ.panel.container import Panel


def _sim(seed: int = 0, n: int = 3000) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"firm": rng.integers(0, 150, n), "year": rng.integers(0, 6, n),
                       "x": rng.normal(size=n), "w": rng.uniform(0.5, 2, n)})
    df["state"] = df.firm % 30
    df["y"] = 0.5 * df.x + rng.normal(size=n)
    return df


def test_two_way_cluster_eigenvalue_fix_when_not_psd():
    rng = np.random.default_rng(1)
    X, u = rng.normal(size=(12, 2)), rng.normal(size=12)
    c1, c2 = np.repeat(np.arange(3), 4), np.tile(np.arange(4), 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        V, info = compute_vcov(CovInputs(X=X, u=u, bread=np.linalg.inv(X.T @ X), beta=np.zeros(2)),
                               "CRV1", [c1, c2], ["a", "b"], "none")
    assert info.details["eigen_fix"] is True
    assert np.linalg.eigvalsh(V).min() >= -1e-12
    assert any("positive semi-definite" in n for n in info.details["notes"])


def test_stata_counts_redundant_levels_of_disconnected_fixed_effects_exactly():
    """Two separate groups of firms observed in disjoint years: the firm-year graph has two
    components, so one more fixed-effect level is redundant than fixest's simple count assumes."""
    rng = np.random.default_rng(2)
    firm = np.r_[np.repeat(np.arange(10), 4), np.repeat(np.arange(10, 20), 4)]
    year = np.r_[np.tile([0, 1, 2, 3], 10), np.tile([4, 5, 6, 7], 10)]
    df = pd.DataFrame({"firm": firm, "year": year, "x": rng.normal(size=80)})
    df["y"] = df.x + rng.normal(size=80)
    st = feols("y ~ x | firm + year", df, ssc="stata")
    fx = feols("y ~ x | firm + year", df, ssc="fixest")
    n, k = 80, 1
    K_fixest = k + 20 + 8 - 1
    K_stata = k + 20 + 8 - 2
    assert fx.df_resid == n - K_fixest and st.df_resid == n - K_stata
    ratio = (st.bse["x"] / fx.bse["x"]) ** 2
    assert ratio == pytest.approx((n - K_fixest) / (n - K_stata), rel=1e-12)


def test_crv3_presets_differ_only_by_multiplier():
    df = _sim()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        st = feols("y ~ x | firm", df, vcov={"CRV3": "state"}, ssc="stata")
        fx = feols("y ~ x | firm", df, vcov={"CRV3": "state"}, ssc="fixest")
        no = feols("y ~ x | firm", df, vcov={"CRV3": "state"}, ssc="none")
    G = 30
    assert st.cov.iloc[0, 0] / no.cov.iloc[0, 0] == pytest.approx((G - 1) / G, rel=1e-12)
    assert fx.cov.iloc[0, 0] / no.cov.iloc[0, 0] == pytest.approx(fx.vcov_info.details["multiplier"], rel=1e-12)


def test_ssc_none_iid_uses_n():
    df = _sim()
    r = feols("y ~ x", df, ssc="none")
    u = r.extra["residuals"].to_numpy()
    Xm = np.column_stack([np.ones(len(df)), df.x])
    V = (u @ u / len(df)) * np.linalg.inv(Xm.T @ Xm)
    np.testing.assert_allclose(r.cov.to_numpy(), V, rtol=1e-10)


def test_unknown_vcov_and_ssc_are_clear_errors():
    df = _sim()
    with pytest.raises(EstimationError, match="vcov"):
        feols("y ~ x", df, vcov="HC9")
    with pytest.raises(EstimationError, match="ssc"):
        feols("y ~ x", df, ssc="sas")


def test_weights_zero_dropped_negative_rejected():
    df = _sim()
    df.loc[:4, "w"] = 0.0
    r = feols("y ~ x", df, weights="w")
    assert r.audit.dropped["zero weights"] == 5 and r.nobs == len(df) - 5
    df.loc[7, "w"] = -1.0
    with pytest.raises(EstimationError, match=r"weights column 'w'.*rows 7"):
        feols("y ~ x", df, weights="w")


def test_panel_input_joins_enterprise_table():
    rng = np.random.default_rng(3)
    ent = pd.DataFrame({"enterprise_id": np.arange(40), "cluster_id": np.arange(40) % 4})
    ey = pd.DataFrame({"enterprise_id": np.repeat(np.arange(40), 5), "year": np.tile(np.arange(2010, 2015), 40)})
    ey["employment"] = rng.uniform(1, 50, len(ey))
    ey["sales"] = 2 * np.log(ey.employment) + rng.normal(size=len(ey))
    p = Panel({"enterprise": ent, "enterprise_year": ey})
    r = feols("sales ~ log(employment) + C(cluster_id) | year", p)
    frame = ey.merge(ent, on="enterprise_id")
    s = feols("sales ~ log(employment) + C(cluster_id) | year", frame)
    np.testing.assert_allclose(r.params, s.params, rtol=1e-12)
    assert r.extra["entity"] == "enterprise_id" and r.extra["time"] == "year"


def test_hc3_with_one_absorbed_factor_equals_dummy_regression():
    """HC3 (no multiplier) with firm effects absorbed = statsmodels HC3 with firm dummies."""
    smf = pytest.importorskip("statsmodels.formula.api")
    df = _sim(n=600)
    df["firm"] = df.firm % 40
    ours = feols("y ~ x | firm", df, vcov="HC3")
    sm = smf.ols("y ~ x + C(firm)", df).fit(cov_type="HC3")
    assert ours.bse["x"] == pytest.approx(sm.bse["x"], rel=1e-8)
    with pytest.raises(EstimationError, match="HC3 with more than one"):
        feols("y ~ x | firm + year", df, vcov="HC3")


def test_cluster_list_equals_plus_syntax():
    df = _sim()
    with pytest.warns(UserWarning, match="only 6 clusters in 'year'"):
        a = feols("y ~ x | firm", df, vcov={"CRV1": "state+year"})
    with pytest.warns(UserWarning, match="wild_bootstrap"):
        b = feols("y ~ x | firm", df, vcov={"CRV1": ["state", "year"]})
    np.testing.assert_allclose(a.bse, b.bse, rtol=1e-14)
    assert b.vcov_info.cluster_vars == ("state", "year")


def test_demeaning_non_convergence_is_a_clear_error():
    from cluster_econ.estimate.demean import clear_cache
    clear_cache()
    df = _sim(seed=4)
    with pytest.raises(EstimationError, match="did not converge"):
        feols("y ~ x | firm + year + state^year", df, maxiter=1, tol=1e-14)
