"""Staggered adoption (Callaway and Sant'Anna): att_gt and aggte.

References: the printed output of R's ``did`` README on its minimum-wage example (``mpdta``,
shipped by moderndid), and moderndid 0.2 on the same data to 1e-6. Standard-error convention:
analytic influence-function s.e. ``sqrt(sum_i psi_i^2) / n`` at the unit level (R's ``did`` and
moderndid with ``bstrap=FALSE``); bootstrap checks are held to their Monte Carlo error.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import cluster_econ as ce
from cluster_econ.errors import EstimationError

md = pytest.importorskip("moderndid")
pl = pytest.importorskip("polars")


@pytest.fixture(scope="module")
def mpdta() -> pd.DataFrame:
    return md.load_mpdta().to_pandas()


@pytest.fixture(scope="module")
def fit_reg(mpdta: pd.DataFrame):
    return ce.att_gt(mpdta, yname="lemp", tname="year", idname="countyreal", gname="first.treat",
                     xformla="~1", est_method="reg")


# the README of R's did (version 2.5.1): summary(att_gt(..., xformla = ~1, est_method = "reg"))
PUBLISHED_ATT = [-0.0105, -0.0704, -0.1373, -0.1008, 0.0065, -0.0028, -0.0046, -0.0412, 0.0305, -0.0027,
                 -0.0311, -0.0261]
PUBLISHED_DYNAMIC = {-3: 0.0305, -2: -0.0006, -1: -0.0245, 0: -0.0199, 1: -0.0510, 2: -0.1373, 3: -0.1008}
PUBLISHED_GROUP = {2004: -0.0797, 2006: -0.0229, 2007: -0.0261}


def test_published_mpdta_values(fit_reg) -> None:
    tab = fit_reg.tidy()
    assert list(tab["group"]) == [2004] * 4 + [2006] * 4 + [2007] * 4
    assert list(tab["time"]) == [2004, 2005, 2006, 2007] * 3
    np.testing.assert_array_equal(np.round(tab["estimate"].to_numpy(), 4), PUBLISHED_ATT)
    assert round(fit_reg.pretest().p_value, 5) == 0.16812
    dyn = fit_reg.aggte("dynamic")
    assert round(dyn.estimate, 4) == -0.0772
    got = dict(zip(dyn.tidy()["event"].iloc[1:].astype(int), dyn.params.iloc[1:].round(4), strict=True))
    assert got == PUBLISHED_DYNAMIC
    grp = fit_reg.aggte("group")
    assert round(grp.estimate, 3) == -0.031
    got = dict(zip(grp.tidy()["group"].iloc[1:].astype(int), grp.params.iloc[1:].round(4), strict=True))
    assert got == PUBLISHED_GROUP


@pytest.mark.parametrize("est_method", ["reg", "ipw", "dr"])
@pytest.mark.parametrize("opts", [{}, {"control_group": "notyettreated"}, {"base_period": "universal"},
                                  {"anticipation": 1}])
def test_matches_moderndid(mpdta: pd.DataFrame, est_method: str, opts: dict) -> None:
    ours = ce.att_gt(mpdta, yname="lemp", tname="year", idname="countyreal", gname="first.treat",
                     xformla="~ lpop", est_method=est_method, cband=False, **opts)
    with pytest.warns(UserWarning) if opts.get("anticipation") else _NullContext():
        peer = md.att_gt(data=pl.from_pandas(mpdta), yname="lemp", tname="year", idname="countyreal",
                         gname="first.treat", xformla="~lpop", est_method=est_method, **opts)
    np.testing.assert_allclose(ours.params.to_numpy(), np.asarray(peer.att_gt), rtol=0, atol=1e-9)
    np.testing.assert_allclose(ours.bse.to_numpy(), np.asarray(peer.se_gt), rtol=1e-7, atol=1e-10)
    assert ours.pretest().p_value == pytest.approx(float(peer.wald_pvalue), abs=6e-6)  # printed to 5 places
    for kind in ("simple", "group", "dynamic", "calendar"):
        a = ours.aggte(kind, cband=False)
        b = md.aggte(peer, type=kind, cband=False)
        assert a.estimate == pytest.approx(float(b.overall_att), abs=1e-9)
        assert a.std_error == pytest.approx(float(b.overall_se), rel=1e-7)
        if kind != "simple":
            np.testing.assert_allclose(a.params.to_numpy()[1:], np.asarray(b.att_by_event), atol=1e-9)
            np.testing.assert_allclose(a.bse.to_numpy()[1:], np.asarray(b.se_by_event), rtol=1e-7)


class _NullContext:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def test_weights_match_moderndid_cells(mpdta: pd.DataFrame) -> None:
    d = mpdta.copy()
    rng = np.random.default_rng(3)
    d["w"] = d["countyreal"].map(dict(zip(d["countyreal"].unique(), rng.uniform(0.5, 2, 500), strict=True)))
    ours = ce.att_gt(d, "lemp", "year", "countyreal", "first.treat", xformla="~lpop", weightsname="w",
                     cband=False)
    peer = md.att_gt(data=pl.from_pandas(d), yname="lemp", tname="year", idname="countyreal",
                     gname="first.treat", xformla="~lpop", weightsname="w")
    np.testing.assert_allclose(ours.params.to_numpy(), np.asarray(peer.att_gt), atol=1e-9)
    np.testing.assert_allclose(ours.bse.to_numpy(), np.asarray(peer.se_gt), rtol=1e-7)
    # aggregation weights: weighted cohort shares, as R's did (moderndid 0.2 drops the weights here)
    simple = ours.aggte("simple")
    post = ours.tidy().query("post")
    share = {g: float(np.sum(d.loc[(d.year == 2003) & (d["first.treat"] == g), "w"])) for g in (2004, 2006, 2007)}
    wts = post["group"].map(share).to_numpy()
    assert simple.estimate == pytest.approx(float(np.sum(wts * post["estimate"]) / wts.sum()), abs=1e-12)


def test_bootstrap_and_band(mpdta: pd.DataFrame, fit_reg) -> None:
    boot = ce.att_gt(mpdta, "lemp", "year", "countyreal", "first.treat", est_method="reg", bstrap=True,
                     biters=2000, seed=7)
    again = ce.att_gt(mpdta, "lemp", "year", "countyreal", "first.treat", est_method="reg", bstrap=True,
                      biters=2000, seed=7)
    np.testing.assert_array_equal(boot.bse.to_numpy(), again.bse.to_numpy())  # seeded
    # IQR-based s.e. from B draws has relative Monte Carlo s.d. about 1.17 / sqrt(B) (normal draws)
    tol = 4 * 1.17 / np.sqrt(2000)
    np.testing.assert_allclose(boot.bse.to_numpy(), fit_reg.bse.to_numpy(), rtol=tol)
    crit = boot.extra["crit_val"]
    assert 1.96 < crit < 3.0  # sup-t over 12 correlated cells: above pointwise, below Bonferroni (3.04)
    tab = boot.tidy()
    assert (tab["band_high"] - tab["band_low"] > tab["conf_high"] - tab["conf_low"]).all()
    dyn = boot.aggte("dynamic")
    assert dyn.std_error == pytest.approx(fit_reg.aggte("dynamic").std_error, rel=tol)


def test_clustered(mpdta: pd.DataFrame) -> None:
    d = mpdta.assign(state=mpdta["countyreal"] // 1000)
    an = ce.att_gt(d, "lemp", "year", "countyreal", "first.treat", est_method="reg", clustervars="state",
                   cband=False)
    assert an.vcov_info.cluster_vars == ("state",) and an.vcov_info.n_clusters[0] == d["state"].nunique()
    bs = ce.att_gt(d, "lemp", "year", "countyreal", "first.treat", est_method="reg", clustervars="state",
                   bstrap=True, biters=2000, seed=1)
    # the bootstrap sums influence functions within clusters (R's did >= 2.2): same scale as analytic
    np.testing.assert_allclose(bs.bse.to_numpy(), an.bse.to_numpy(), rtol=4 * 1.17 / np.sqrt(2000) * 1.5)
    single = ce.att_gt(d.assign(c=d["countyreal"]), "lemp", "year", "countyreal", "first.treat",
                       est_method="reg", clustervars="c", cband=False)
    plain = ce.att_gt(d, "lemp", "year", "countyreal", "first.treat", est_method="reg", cband=False)
    np.testing.assert_allclose(single.bse.to_numpy(), plain.bse.to_numpy(), rtol=1e-12)


def test_sample_rules_and_errors(mpdta: pd.DataFrame) -> None:
    d = mpdta.copy()
    unbalanced = d.drop(index=d.index[:2])  # first county misses two years
    r = ce.att_gt(unbalanced, "lemp", "year", "countyreal", "first.treat", est_method="reg", cband=False)
    assert r.extra["n_units"] == 499
    assert sum(r.audit.dropped.values()) == 3  # the county's three remaining rows
    with pytest.raises(EstimationError, match="share an"):
        ce.att_gt(pd.concat([d, d.head(1)]), "lemp", "year", "countyreal", "first.treat")
    bad = d.copy()
    bad.loc[bad.index[0], "first.treat"] = 2006
    with pytest.raises(EstimationError, match="changes over time"):
        ce.att_gt(bad, "lemp", "year", "countyreal", "first.treat")
    with pytest.raises(EstimationError, match="not in the data"):
        ce.att_gt(d, "lemp", "year", "countyreal", "first_treat")
    early = d.copy()
    early.loc[early["countyreal"] == early["countyreal"].iloc[0], "first.treat"] = 2003
    r = ce.att_gt(early, "lemp", "year", "countyreal", "first.treat", est_method="reg", cband=False)
    assert r.audit.dropped["already treated in the first period"] == 5


def test_recovers_known_effects() -> None:
    """Simulated staggered design with dynamic effects 0.5 * (e + 1) and cohort-specific trends that
    a two-way fixed-effects regression gets wrong; tolerance from the estimated s.e."""
    rng = np.random.default_rng(11)
    n, T = 3000, 8
    g = rng.choice([0, 4, 6], n)
    t = np.tile(np.arange(1, T + 1), n)
    gg = np.repeat(g, T)
    eff = np.where((gg > 0) & (t >= gg), 0.5 * (t - gg + 1), 0.0)
    y = np.repeat(rng.normal(size=n) + g / 3, T) + 0.3 * t + eff + rng.normal(size=n * T)
    d = pd.DataFrame({"id": np.repeat(np.arange(n), T), "t": t, "g": gg, "y": y})
    dyn = ce.att_gt(d, "y", "t", "id", "g", cband=False).aggte("dynamic", cband=False)
    tab = dyn.tidy().iloc[1:]
    truth = np.where(tab["event"] >= 0, 0.5 * (tab["event"] + 1), 0.0)
    z = (tab["estimate"] - truth) / tab["std_error"]
    assert np.all(np.abs(z) < 4)


@pytest.mark.parametrize("est_method", ["ipw", "dr"])
@pytest.mark.parametrize("opts", [{}, {"control_group": "notyettreated"}, {"base_period": "universal"}])
def test_time_varying_covariate_matches_moderndid(mpdta: pd.DataFrame, est_method: str, opts: dict) -> None:
    """A covariate that changes every year: each cell's propensity score uses the covariate of its
    own earlier period (the score is re-used across cells only when the covariates do not change)."""
    d = mpdta.copy()
    d["lpop_t"] = d["lpop"] + np.random.default_rng(7).normal(0, 0.3, len(d))
    ours = ce.att_gt(d, "lemp", "year", "countyreal", "first.treat", xformla="~ lpop_t", est_method=est_method,
                     cband=False, **opts)
    peer = md.att_gt(data=pl.from_pandas(d), yname="lemp", tname="year", idname="countyreal",
                     gname="first.treat", xformla="~lpop_t", est_method=est_method, **opts)
    np.testing.assert_allclose(ours.params.to_numpy(), np.asarray(peer.att_gt), rtol=0, atol=1e-9)
    np.testing.assert_allclose(ours.bse.to_numpy(), np.asarray(peer.se_gt), rtol=1e-7, atol=1e-10)
