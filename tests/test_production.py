"""Tests of cluster_econ.estimate.production (prodest: OP, LP, ACF).

No published OP/LP/ACF estimates exist on data shipped in a PyPI package (the references, Stata's
prodest/levpet and R's prodest, use data sets not on PyPI), so the estimators are checked for
recovery of known parameters on simulated data, the first stage against statsmodels OLS, and the
bias of OLS is shown on the same data (so the recovery tests can fail).

Data:
- ``cluster_econ.simulate`` with survey realism off (exact data), the four Chinese demo clusters
  (one currency, so the local-currency unit is a constant absorbed in the intercept), and the
  switches ``flat_productivity`` (productivity an AR(1) without innovation gains, the law of
  motion ``prodest`` estimates) and ``no_large_firms`` (labour has no persistent driver other
  than productivity and capital; see the module docstring on the second ACF root). True
  elasticities 0.6 and 0.3 (``truth.production``).
- The same with innovation on (the full model, ``lom_controls`` and ``lag_instruments``) and with
  ``flat_productivity`` only (innovators still grow; ``lag_instruments``).
- A proxy DGP written in this file in which materials and investment depend on capital and
  productivity only and labour also on a persistent firm wage: every assumption of LP, OP and
  ACF holds. The simulator's materials are Leontief in planned output, so LP's first stage
  cannot identify labour there (ACF's functional dependence point); that is tested too.

Standard errors: block bootstrap over enterprises (VcovInfo type "bootstrap", ssc "none"),
B draws stated in each test. Tolerance: 4 bootstrap standard errors, from the data.
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pandas as pd
import pytest

from cluster_econ.errors import EstimationError, SchemaError
from cluster_econ.estimate.production import panel_frame, prodest
from cluster_econ.simulate import preset, simulate

BETA_L, BETA_K = 0.6, 0.3


@pytest.fixture(scope="module")
def sim():
    cfg = preset("demo")
    clusters = tuple(c for c in cfg.clusters if c.country == "CHN")
    cfg = dataclasses.replace(cfg, clusters=clusters, survey=dataclasses.replace(cfg.survey, enabled=False))
    return simulate(cfg.with_switches(flat_productivity=True, no_large_firms=True), seed=1)


@pytest.fixture(scope="module")
def acf_sim(sim):
    return prodest(sim.panel, method="acf", bootstrap=100, seed=3)


def proxy_dgp(n_firms: int = 600, n_years: int = 10, seed: int = 0, burn: int = 10) -> pd.DataFrame:
    """y = 0.6 l + 0.3 k + omega + eps; omega AR(1) (0.8); l = 1 + 1.2 omega + 0.3 k - w + nu with
    a persistent log wage w (AR(1), 0.7); log materials 0.5 + 1.5 omega + 0.4 k; investment
    K exp(-2.5 + 1.5 omega), zero for 10% of firm-years at random; K' = 0.92 K + I."""
    rng = np.random.default_rng(seed)
    omega = rng.normal(0, 0.12 / np.sqrt(1 - 0.8**2), n_firms)
    w = rng.normal(0, 0.15 / np.sqrt(1 - 0.7**2), n_firms)
    K = np.exp(rng.normal(3.0, 0.5, n_firms))
    rows = []
    for t in range(burn + n_years):
        omega = 0.8 * omega + rng.normal(0, 0.12, n_firms)
        w = 0.7 * w + rng.normal(0, 0.15, n_firms)
        k = np.log(K)
        lab = 1.0 + 1.2 * omega + 0.3 * k - 1.0 * w + rng.normal(0, 0.1, n_firms)
        mat = 0.5 + 1.5 * omega + 0.4 * k
        inv = K * np.exp(-2.5 + 1.5 * omega) * (rng.random(n_firms) >= 0.1)
        y = BETA_L * lab + BETA_K * k + omega + rng.normal(0, 0.1, n_firms)
        if t >= burn:
            rows.append(pd.DataFrame({"firm": np.arange(n_firms), "year": 2000 + t - burn, "y": y, "l": lab,
                                      "k": k, "m": mat, "inv": inv, "omega": omega}))
        K = 0.92 * K + inv
    return pd.concat(rows, ignore_index=True)


@pytest.fixture(scope="module")
def dgp() -> pd.DataFrame:
    return proxy_dgp()


def _within(res, name: str, truth: float, k: float = 4.0) -> None:
    est, se = float(res.params[name]), float(res.bse[name])
    assert se > 0
    assert abs(est - truth) < k * se, f"{name}: {est:.4f} vs truth {truth} (bootstrap s.e. {se:.4f})"


# --------------------------------------------------------------------------------------------
# recovery on the package's simulator
# --------------------------------------------------------------------------------------------
def test_acf_recovers_simulator_elasticities(sim, acf_sim) -> None:
    """ACF, block bootstrap by enterprise (B=100, seed 3): both elasticities within 4 s.e."""
    res = acf_sim
    assert sim.truth.production["beta_l"] == BETA_L and sim.truth.production["beta_k"] == BETA_K
    _within(res, "log_employment", BETA_L)
    _within(res, "log_capital", BETA_K)
    assert res.vcov_info.type == "bootstrap" and res.vcov_info.ssc == "none"
    assert res.vcov_info.cluster_vars == ("enterprise_id",)
    assert res.vcov_info.details["B"] == 100 and res.vcov_info.details["seed"] == 3
    assert res.engine.startswith("cluster_econ ")
    assert res.model == "prodest-acf" and "Ackerberg" in res.formula
    # estimated productivity tracks the true omega (level is only identified up to a constant)
    ey = sim.panel.enterprise_year
    truth = sim.truth.firm_year.set_index(["enterprise_id", "year"])["omega"]
    true_omega = truth.reindex(pd.MultiIndex.from_arrays([ey["enterprise_id"], ey["year"].astype("int64")]))
    om = res.extra["omega"]
    assert om.index.equals(ey.index)
    assert np.corrcoef(om.to_numpy(), true_omega.to_numpy())[0, 1] > 0.97


def test_ols_is_biased_on_the_same_data(sim, acf_sim) -> None:
    """OLS of log VA on log L and log K (statsmodels, CRV by enterprise, no small-sample
    correction) overstates the labour elasticity by more than its s.e.: the recovery test can
    fail, and ACF moves the estimate to the truth."""
    import statsmodels.api as sm

    frame, _ = panel_frame(sim.panel)
    X = sm.add_constant(frame[["log_employment", "log_capital"]])
    ols = sm.OLS(frame["log_value_added"], X).fit(
        cov_type="cluster", cov_kwds={"groups": pd.factorize(frame["enterprise_id"])[0], "use_correction": False})
    b, se = ols.params["log_employment"], ols.bse["log_employment"]
    assert b - BETA_L > se
    assert b - BETA_L > 4 * float(acf_sim.bse["log_employment"])


def test_acf_full_model_with_innovation_in_the_law_of_motion() -> None:
    """The full simulator (innovation raises productivity and firm scale in quality
    improvement): ACF with last year's innovator x quality-improvement indicator in the law of
    motion and last year's output price as an extra instrument (labour responds to it,
    productivity does not) recovers both elasticities within 4 s.e. (bootstrap by enterprise,
    B=40) and the innovation gain (0.06) within 0.03."""
    cfg = preset("demo")
    clusters = tuple(c for c in cfg.clusters if c.country == "CHN")
    cfg = dataclasses.replace(cfg, clusters=clusters, survey=dataclasses.replace(cfg.survey, enabled=False))
    full = simulate(cfg, seed=2)
    panel = full.panel
    ey = panel.enterprise_year
    cluster = ey["enterprise_id"].map(panel.enterprise.set_index("enterprise_id")["cluster_id"])
    phase = panel.cluster_year.set_index(["cluster_id", "year"])["phase"]
    qi = phase.reindex(list(zip(cluster, ey["year"].astype(int), strict=True))).to_numpy() == "quality_improvement"
    innovator = ey["new_product"].astype(bool) | ey["new_process"].astype(bool)
    panel = panel.replace(enterprise_year=ey.assign(innovator_qi=(innovator & qi).astype(float)))
    res = prodest(panel, method="acf", lom_controls=["innovator_qi"], lag_instruments=["log_output_price"],
                  bootstrap=40, seed=2)
    _within(res, "log_employment", BETA_L)
    _within(res, "log_capital", BETA_K)
    gain = full.truth.production["innovation_gain"]["quality_improvement"]
    assert abs(res.extra["law_of_motion"]["L.innovator_qi"] - gain) < 0.03
    assert "L.log_output_price" in res.formula and "L.innovator_qi" in res.formula


def test_acf_flat_productivity_needs_the_price_instrument() -> None:
    """flat_productivity with innovators still growing (scale): the ACF moments alone have a
    persistent spurious root (listed in the notes); last year's output price as an instrument
    gives the truth within 4 s.e. (bootstrap by enterprise, B=30). This is the data on which
    cost-share productivity gives a false positive for P3/P7."""
    cfg = preset("demo")
    clusters = tuple(c for c in cfg.clusters if c.country == "CHN")
    cfg = dataclasses.replace(cfg, clusters=clusters, survey=dataclasses.replace(cfg.survey, enabled=False))
    panel = simulate(cfg.with_switches(flat_productivity=True), seed=1).panel
    plain = prodest(panel, method="acf", bootstrap=0)
    assert any("several roots" in n for n in plain.audit.notes)
    res = prodest(panel, method="acf", lag_instruments=["log_output_price"], bootstrap=30, seed=4)
    _within(res, "log_employment", BETA_L)
    _within(res, "log_capital", BETA_K)
    assert not any("several roots" in n for n in res.audit.notes)


def test_op_recovers_simulator_elasticities(sim) -> None:
    """OP with investment (zero-investment rows not inverted and counted), bootstrap B=40."""
    res = prodest(sim.panel, method="op", bootstrap=40, seed=5)
    _within(res, "log_employment", BETA_L)
    _within(res, "log_capital", BETA_K)
    inv = sim.panel.enterprise_year["investment"]
    assert any(str((inv == 0).sum()) in n for n in res.audit.notes)
    assert res.audit.dropped["investment zero or negative in t-1 (no proxy inversion)"] > 0
    assert res.audit.n_input - sum(res.audit.dropped.values()) == res.nobs


def test_lp_not_identified_when_materials_are_leontief(sim) -> None:
    """The simulator's materials move one for one with b_l l + b_k k + omega, so LP's first stage
    leaves labour no variation of its own (ACF's functional dependence): LP's labour coefficient
    collapses towards 0, far below the truth. Documents why ACF is the default."""
    res = prodest(sim.panel, method="lp", bootstrap=0)
    assert abs(float(res.params["log_employment"])) < 0.1


# --------------------------------------------------------------------------------------------
# recovery where every assumption holds
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method,proxy", [("lp", "m"), ("acf", "m"), ("op", "inv")])
def test_recovery_on_proxy_dgp(dgp, method, proxy) -> None:
    """LP, ACF and OP on the proxy DGP (600 firms x 10 years), bootstrap by firm B=50: within 4 s.e."""
    res = prodest(dgp, output="y", free="l", state="k", proxy=proxy, method=method, entity="firm",
                  bootstrap=50, seed=11)
    _within(res, "l", BETA_L)
    _within(res, "k", BETA_K)
    assert res.groups == {"firm": 600}
    assert np.corrcoef(res.extra["omega"].dropna(), dgp.loc[res.extra["omega"].notna(), "omega"])[0, 1] > 0.95


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
    terms = []
    for d in (1, 2, 3):
        for combo in itertools.combinations_with_replacement(poly_vars, d):
            terms.append(f"I({' * '.join(combo)})")
    formula = "y ~ " + " + ".join(terms) + " + c" + (" + l" if method == "lp" else "")
    sm_fit = smf.ols(formula, data=df).fit()
    res = prodest(df, output="y", free="l", state="k", proxy="m", method=method, entity="firm", controls=["c"],
                  bootstrap=0)
    expected = sm_fit.fittedvalues - sm_fit.params["c"] * df["c"]
    assert np.max(np.abs(res.extra["first_stage"].to_numpy() - expected.to_numpy())) < 1e-8


# --------------------------------------------------------------------------------------------
# lags, audit, determinism
# --------------------------------------------------------------------------------------------
def test_gaps_break_lags_and_are_counted(dgp) -> None:
    """Removing year 2004 for 50 firms: their 2005 rows have no lag (gap), counted as such."""
    drop = dgp["firm"].lt(50) & dgp["year"].eq(2004)
    df = dgp.loc[~drop]
    res = prodest(df, output="y", free="l", state="k", proxy="m", method="acf", entity="firm", bootstrap=0)
    assert res.audit.dropped["previous calendar year not observed (gap)"] == 50
    assert res.audit.dropped["first year observed (no lag)"] == 600
    assert res.nobs == len(df) - 650
    assert res.audit.n_input - sum(res.audit.dropped.values()) == res.nobs


def test_missing_values_counted(dgp) -> None:
    df = dgp.copy()
    df.loc[[3, 7, 11], "m"] = np.nan
    res = prodest(df, output="y", free="l", state="k", proxy="m", method="lp", entity="firm", bootstrap=0)
    assert res.audit.dropped["missing values"] == 3
    assert np.isnan(res.extra["omega"].loc[[3, 7, 11]]).all()


def test_same_seed_same_numbers(dgp) -> None:
    kw = dict(output="y", free="l", state="k", proxy="m", method="acf", entity="firm", bootstrap=20)
    a = prodest(dgp, seed=7, **kw)
    b = prodest(dgp, seed=7, **kw)
    c = prodest(dgp, seed=8, **kw)
    assert a.params.equals(b.params) and a.cov.equals(b.cov)
    assert a.extra["bootstrap_draws"].equals(b.extra["bootstrap_draws"])
    assert a.data_hash == b.data_hash
    assert not np.allclose(a.cov.to_numpy(), c.cov.to_numpy())


def test_bootstrap_over_clusters_of_entities(dgp) -> None:
    df = dgp.assign(group=dgp["firm"] // 10)
    res = prodest(df, output="y", free="l", state="k", proxy="m", method="lp", entity="firm", bootstrap=20,
                  vcov_cluster="group")
    assert res.vcov_info.cluster_vars == ("group",) and res.vcov_info.n_clusters == (60,)
    bad = dgp.assign(group=dgp["year"])
    with pytest.raises(EstimationError, match="whole entities"):
        prodest(bad, output="y", free="l", state="k", proxy="m", method="lp", entity="firm", bootstrap=20,
                vcov_cluster="group")


def test_predict_gives_tfp(dgp) -> None:
    res = prodest(dgp, output="y", free="l", state="k", proxy="m", method="lp", entity="firm", bootstrap=0)
    tfp = res.predict(dgp.head(5))
    expected = dgp["y"].head(5) - res.params["l"] * dgp["l"].head(5) - res.params["k"] * dgp["k"].head(5)
    assert np.allclose(tfp, expected)
    assert np.allclose(res.extra["tfp"].head(5), expected)


# --------------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------------
def test_missing_column(dgp) -> None:
    with pytest.raises(EstimationError, match="'materials' not found"):
        prodest(dgp, output="y", free="l", state="k", proxy="materials", entity="firm", bootstrap=0)


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
        prodest(dgp.assign(inv=0.0), output="y", free="l", state="k", proxy="inv", method="op", entity="firm",
                bootstrap=0)


def test_other_bad_arguments(dgp) -> None:
    kw = dict(output="y", free="l", state="k", proxy="m", entity="firm", bootstrap=0)
    with pytest.raises(EstimationError, match="method must be one of"):
        prodest(dgp, method="gmm", **kw)
    with pytest.raises(EstimationError, match=r"exit .*not implemented"):
        prodest(dgp, exit="exit", **kw)
    with pytest.raises(EstimationError, match="name the output column"):
        prodest(dgp, free="l", state="k", proxy="m", entity="firm")
    with pytest.raises(SchemaError, match="not unique"):
        prodest(pd.concat([dgp, dgp.head(3)]), **kw)
    with pytest.raises(EstimationError, match="must be numeric"):
        prodest(dgp.assign(l=dgp["l"].astype(object).where(dgp.index != 5, "ten")), **kw)
