"""Tests of cluster_econ.estimate.survival: Cox, discrete-time hazard, Kaplan-Meier, log-rank.

References: published Rossi recidivism estimates (Fox), lifelines (CoxPHFitter,
KaplanMeierFitter, multivariate_logrank_test), statsmodels (PHReg, SurvfuncRight, survdiff) and,
when ``Rscript`` with the survival package is installed, R's ``coxph``.
"""

from __future__ import annotations

import shutil
import subprocess
import warnings

import numpy as np
import pandas as pd
import pytest

from cluster_econ.errors import EstimationError
from cluster_econ.estimate.survival import cox, hazard, kaplan_meier, logrank_test

ROSSI_X = ["fin", "age", "race", "wexp", "mar", "paro", "prio"]
ROSSI_F = "week ~ " + " + ".join(ROSSI_X)


@pytest.fixture(scope="module")
def rossi() -> pd.DataFrame:
    from lifelines.datasets import load_rossi
    return load_rossi()


def _sim(n: int = 3000, seed: int = 7, ties: bool = True) -> pd.DataFrame:
    """Firms with three regressors, integer (tied) or continuous exit times, late entry, strata,
    clusters. True beta = (0.5, -0.3, 0.4)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    X[:, 2] = (X[:, 2] > 0).astype(float)
    t = rng.exponential(np.exp(-X @ np.array([0.5, -0.3, 0.4]))) * 10
    c = rng.uniform(0, 20, n)
    if ties:
        t, c = np.ceil(t), np.ceil(c)
    df = pd.DataFrame(X, columns=["a", "b", "c"])
    df["y"] = np.minimum(t, c)
    df["d"] = (t <= c).astype(int)
    entry = rng.uniform(0, 1, n) * df["y"].to_numpy() * 0.7
    df["e"] = np.floor(entry) if ties else entry
    df["s"] = rng.integers(0, 3, n)
    df["cl"] = rng.integers(0, 60, n)
    return df


# ---------------------------------------------------------------------------------------------
# Cox: published values
# ---------------------------------------------------------------------------------------------
def test_rossi_published_values(rossi: pd.DataFrame) -> None:
    """Fox's Rossi fit, Efron ties, model-based (OIM) standard errors, to the printed digits."""
    res = cox(ROSSI_F, rossi, event="arrest")
    published = {"fin": (-0.379, 0.191), "age": (-0.0574, 0.0220), "race": (0.314, 0.308),
                 "wexp": (-0.150, 0.212), "mar": (-0.434, 0.382), "paro": (-0.0849, 0.196),
                 "prio": (0.0915, 0.0286)}
    for name, (b, se) in published.items():
        digits = len(str(b).split(".")[1])
        assert round(res.params[name], digits) == pytest.approx(b, abs=1e-12), name
        digits = len(str(se).split(".")[1])
        assert round(res.bse[name], digits) == pytest.approx(se, abs=1e-12), name
    assert round(res.stats["loglik"], 2) == -658.75
    assert res.stats["n_events"] == 114
    assert res.vcov_info.type == "OIM"


def test_rossi_against_lifelines(rossi: pd.DataFrame) -> None:
    """lifelines CoxPHFitter (Efron), OIM standard errors, to 1e-6."""
    from lifelines import CoxPHFitter
    res = cox(ROSSI_F, rossi, event="arrest")
    cph = CoxPHFitter().fit(rossi[["week", "arrest", *ROSSI_X]], "week", "arrest",
                            fit_options={"precision": 1e-12, "r_precision": 1e-14})
    np.testing.assert_allclose(res.params[ROSSI_X], cph.params_[ROSSI_X], atol=1e-6)
    np.testing.assert_allclose(res.bse[ROSSI_X], cph.standard_errors_[ROSSI_X], atol=1e-6)
    assert res.stats["loglik"] == pytest.approx(cph.log_likelihood_, abs=1e-6)


# ---------------------------------------------------------------------------------------------
# Cox: simulated data with ties, late entry and strata against peers
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("entry,strata", [(None, None), ("e", None), (None, "s"), ("e", "s")])
def test_cox_ties_entry_strata_against_lifelines(entry: str | None, strata: str | None) -> None:
    """lifelines with entry_col (R's (start, stop] convention) and strata; OIM SE; 1e-6."""
    from lifelines import CoxPHFitter
    df = _sim()
    res = cox("y ~ a + b + c", df, event="d", entry=entry, strata=strata)
    cols = ["a", "b", "c", "y", "d"] + ([entry] if entry else []) + ([strata] if strata else [])
    kw = {"entry_col": entry} if entry else {}
    if strata:
        kw["strata"] = [strata]
    cph = CoxPHFitter().fit(df[cols], "y", "d", fit_options={"precision": 1e-12, "r_precision": 1e-14},
                            **kw)
    np.testing.assert_allclose(res.params[["a", "b", "c"]], cph.params_[["a", "b", "c"]], atol=1e-6)
    np.testing.assert_allclose(res.bse[["a", "b", "c"]], cph.standard_errors_[["a", "b", "c"]], atol=1e-6)
    assert res.stats["loglik"] == pytest.approx(cph.log_likelihood_, abs=1e-6)


@pytest.mark.parametrize("ties", ["efron", "breslow"])
def test_cox_against_statsmodels_phreg(ties: str) -> None:
    """statsmodels PHReg with entry= and strata=, OIM SE, to 1e-6.

    Entry times are placed half-way between the integer exit times: PHReg counts a row entering
    exactly at an event time as at risk, R and lifelines (and we) do not.
    """
    from statsmodels.duration.hazard_regression import PHReg
    df = _sim(seed=11)
    df["e"] = df["e"] + 0.5
    res = cox("y ~ a + b + c", df, event="d", entry="e", strata="s", ties=ties)
    m = PHReg(df["y"].to_numpy(), df[["a", "b", "c"]].to_numpy(), status=df["d"].to_numpy(),
              entry=df["e"].to_numpy(), strata=df["s"].to_numpy(), ties=ties).fit()
    np.testing.assert_allclose(res.params.to_numpy(), m.params, atol=1e-6)
    np.testing.assert_allclose(res.bse.to_numpy(), m.bse, atol=1e-6)
    assert res.stats["loglik"] == pytest.approx(m.llf, abs=1e-6)


def test_cox_baseline_against_lifelines_without_ties() -> None:
    """Baseline cumulative hazard: lifelines reports it at the mean covariates, ours is at
    x = 0, so ours * exp(mean(x)'b) must equal lifelines' at every event time; 1e-8."""
    from lifelines import CoxPHFitter
    df = _sim(ties=False, seed=3)
    res = cox("y ~ a + b + c", df, event="d")
    cph = CoxPHFitter().fit(df[["a", "b", "c", "y", "d"]], "y", "d",
                            fit_options={"precision": 1e-12, "r_precision": 1e-14})
    ours = res.extra["baseline"].set_index("time")["cumhaz"]
    scale = np.exp(df[["a", "b", "c"]].mean().to_numpy() @ res.params.to_numpy())
    ref = cph.baseline_cumulative_hazard_.iloc[:, 0].loc[ours.index]
    np.testing.assert_allclose(ours.to_numpy() * scale, ref.to_numpy(), rtol=1e-8)
    assert len(ours) == df["d"].sum()


def test_cox_robust_against_lifelines_without_ties() -> None:
    """Lin-Wei sandwich, ssc='none' (R's and lifelines' convention): per-row (robust=True) and
    clustered (cluster_col). Continuous times: lifelines' score residuals ignore ties."""
    from lifelines import CoxPHFitter
    df = _sim(ties=False, seed=3)
    opts = {"precision": 1e-12, "r_precision": 1e-14}
    res = cox("y ~ a + b + c", df, event="d", vcov="robust", ssc="none")
    cph = CoxPHFitter().fit(df[["a", "b", "c", "y", "d"]], "y", "d", robust=True, fit_options=opts)
    np.testing.assert_allclose(res.bse.to_numpy(), cph.standard_errors_[["a", "b", "c"]], atol=1e-6)
    res = cox("y ~ a + b + c", df, event="d", vcov={"CRV1": "cl"}, ssc="none")
    cph = CoxPHFitter().fit(df[["a", "b", "c", "y", "d", "cl"]], "y", "d", cluster_col="cl",
                            fit_options=opts)
    np.testing.assert_allclose(res.bse.to_numpy(), cph.standard_errors_[["a", "b", "c"]], atol=1e-6)
    assert res.vcov_info.type == "CRV1" and res.vcov_info.n_clusters == (60,)
    # the Stata preset multiplies the clustered covariance by G/(G-1)
    res_s = cox("y ~ a + b + c", df, event="d", vcov={"CRV1": "cl"}, ssc="stata")
    np.testing.assert_allclose(res_s.cov.to_numpy(), res.cov.to_numpy() * 60 / 59, rtol=1e-12)


@pytest.mark.skipif(shutil.which("Rscript") is None, reason="R is not installed")
@pytest.mark.parametrize("ties", ["efron", "breslow"])
def test_cox_cluster_robust_against_r(tmp_path, ties: str) -> None:
    """R's coxph(Surv(e, y, d) ~ a + b + c + strata(s), cluster = cl), ties and late entry:
    coefficients, model and cluster-robust SE (ssc='none') and the baseline cumulative hazard
    (basehaz, centered=FALSE) to 1e-6."""
    ok = subprocess.run(["Rscript", "-e", "library(survival)"], capture_output=True).returncode == 0
    if not ok:
        pytest.skip("R survival package is not installed")
    df = _sim(seed=5)
    path = tmp_path / "sim.csv"
    df.to_csv(path, index=False)
    script = (f"library(survival); d <- read.csv('{path}');"
              f"m <- coxph(Surv(e, y, d) ~ a + b + c + strata(s), data=d, cluster=cl, ties='{ties}');"
              "write.table(rbind(coef(m), sqrt(diag(m$naive.var)), sqrt(diag(m$var))), "
              "row.names=FALSE, col.names=FALSE); cat(format(m$loglik[2], digits=15), '\\n');"
              f"write.csv(basehaz(m, centered=FALSE), '{tmp_path / 'bh.csv'}', row.names=FALSE)")
    out = subprocess.run(["Rscript", "-e", script], capture_output=True, text=True, check=True).stdout
    lines = out.strip().splitlines()
    ref = np.array([[float(v) for v in ln.split()] for ln in lines[:3]])
    res = cox("y ~ a + b + c", df, event="d", entry="e", strata="s", vcov={"CRV1": "cl"}, ssc="none",
              ties=ties)
    oim = cox("y ~ a + b + c", df, event="d", entry="e", strata="s", ties=ties)
    np.testing.assert_allclose(res.params.to_numpy(), ref[0], atol=1e-6)
    np.testing.assert_allclose(oim.bse.to_numpy(), ref[1], atol=1e-6)
    np.testing.assert_allclose(res.bse.to_numpy(), ref[2], atol=1e-6)
    assert res.stats["loglik"] == pytest.approx(float(lines[3]), abs=1e-6)
    # baseline cumulative hazard at x = 0 per stratum (R's basehaz(centered=FALSE)) at event times
    bh = pd.read_csv(tmp_path / "bh.csv")
    bh["s"] = bh["strata"].str.replace("s=", "").astype(int)
    both = res.extra["baseline"].merge(bh, on=["s", "time"], suffixes=("", "_r"))
    assert len(both) == len(res.extra["baseline"]) > 0
    np.testing.assert_allclose(both["cumhaz"], both["hazard_r"], rtol=1e-6)


def test_cox_split_episodes_equal_unsplit() -> None:
    """Counting-process identity: splitting each firm's spell (entry, stop] at t = 4 into two rows
    (event on the last) leaves coefficients, log-likelihood, OIM SE and the firm-clustered SE
    unchanged (the sum of a firm's score residuals is its unsplit residual)."""
    df = _sim(n=1500, seed=13).reset_index(names="firm")
    cut = 4.0
    long = df[(df["e"] < cut) & (df["y"] > cut)]
    first = long.assign(y=cut, d=0)
    second = long.assign(e=cut)
    split = pd.concat([df.drop(long.index), first, second], ignore_index=True)
    assert len(split) > len(df)
    a = cox("y ~ a + b + c", df, event="d", entry="e", vcov={"CRV1": "firm"})
    b = cox("y ~ a + b + c", split, event="d", entry="e", vcov={"CRV1": "firm"})
    np.testing.assert_allclose(a.params.to_numpy(), b.params.to_numpy(), atol=1e-10)
    np.testing.assert_allclose(a.bse.to_numpy(), b.bse.to_numpy(), rtol=1e-8)
    assert a.stats["loglik"] == pytest.approx(b.stats["loglik"], abs=1e-8)
    oa = cox("y ~ a + b + c", df, event="d", entry="e")
    ob = cox("y ~ a + b + c", split, event="d", entry="e")
    np.testing.assert_allclose(oa.bse.to_numpy(), ob.bse.to_numpy(), rtol=1e-8)


def test_cox_recovers_true_parameters() -> None:
    """Continuous-time simulation with independent late entry (firms observed only if they
    survive to their entry time), true beta (0.5, -0.3, 0.4): each estimate within 4 SE."""
    rng = np.random.default_rng(21)
    n = 30000
    X = rng.normal(size=(n, 3))
    X[:, 2] = (X[:, 2] > 0).astype(float)
    t = rng.exponential(np.exp(-X @ np.array([0.5, -0.3, 0.4])))
    c = rng.uniform(0, 3, n)
    e = rng.uniform(0, 1, n)
    df = pd.DataFrame(X, columns=["a", "b", "c"]).assign(y=np.minimum(t, c), d=(t <= c).astype(int), e=e)
    df = df[df["y"] > df["e"]]
    res = cox("y ~ a + b + c", df, event="d", entry="e")
    z = (res.params.to_numpy() - np.array([0.5, -0.3, 0.4])) / res.bse.to_numpy()
    assert np.all(np.abs(z) < 4), z


def test_cox_input_errors_and_audit() -> None:
    df = _sim(n=500)
    bad = df.copy()
    bad.loc[3, "d"] = 2
    with pytest.raises(EstimationError, match=r"'d'.*0/1.*3"):
        cox("y ~ a + b", bad, event="d")
    bad = df.copy()
    bad.loc[[4, 9], "e"] = bad.loc[[4, 9], "y"]
    with pytest.raises(EstimationError, match=r"must exceed entry 'e'; 2 rows.*4, 9"):
        cox("y ~ a + b", bad, event="d", entry="e")
    with pytest.raises(EstimationError, match="strata"):
        cox("y ~ a + b | s", df, event="d")
    miss = df.copy()
    miss.loc[[1, 2], "a"] = np.nan
    miss.loc[5, "cl"] = np.nan
    res = cox("y ~ a + b", miss, event="d", vcov={"CRV1": "cl"})
    assert res.nobs == 497
    assert dict(res.audit.dropped) == {"missing values": 2, "missing cluster": 1}
    dup = df.assign(a2=2 * df["a"])
    res = cox("y ~ a + a2 + b", dup, event="d")
    assert res.audit.collinear == ("a2",)


# ---------------------------------------------------------------------------------------------
# discrete-time hazard
# ---------------------------------------------------------------------------------------------
def _firm_years(n_firms: int = 4000, seed: int = 2) -> pd.DataFrame:
    """Firm-year rows from a grouped-time proportional-hazards model: yearly exit probability
    1 - exp(-exp(alpha_t + 0.6 x_it - 0.4 z_i)), up to 8 years, rows stop at exit."""
    rng = np.random.default_rng(seed)
    alpha = np.log(np.linspace(0.05, 0.15, 8))
    rows = []
    z = rng.binomial(1, 0.5, n_firms)
    alive = np.ones(n_firms, bool)
    for t in range(8):
        x = rng.normal(size=n_firms)
        p = 1 - np.exp(-np.exp(alpha[t] + 0.6 * x - 0.4 * z))
        ex = rng.uniform(size=n_firms) < p
        idx = np.flatnonzero(alive)
        rows.append(pd.DataFrame({"firm": idx, "year": 2000 + t, "x": x[idx], "z": z[idx],
                                  "exit": ex[idx].astype(int)}))
        alive &= ~ex
    return pd.concat(rows, ignore_index=True)


def test_hazard_cloglog_against_statsmodels_glm() -> None:
    """Year dummies, cloglog: statsmodels GLM on a design built in the test; OIM SE and
    CRV1 (firm) SE with ssc='none' compared with the sandwich computed from GLM scores."""
    import statsmodels.api as sm
    df = _firm_years()
    res = hazard("exit ~ x + z", df, entity="firm", time="year", vcov="iid")
    D = pd.get_dummies(df["year"], prefix="yr", drop_first=True, dtype=float)
    X = pd.concat([pd.Series(1.0, index=df.index, name="const"), df[["x", "z"]], D], axis=1)
    fam = sm.families.Binomial(link=sm.families.links.CLogLog())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = sm.GLM(df["exit"], X, family=fam).fit(method="newton", tol=1e-12)
    np.testing.assert_allclose(res.params[["x", "z"]], m.params[["x", "z"]], atol=1e-6)
    np.testing.assert_allclose(res.bse[["x", "z"]], m.bse[["x", "z"]], atol=1e-6)
    assert res.stats["n_events"] == df["exit"].sum()
    cl = hazard("exit ~ x + z", df, entity="firm", time="year", ssc="none")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mc = sm.GLM(df["exit"], X, family=fam).fit(method="newton", tol=1e-12, cov_type="cluster",
                                                   cov_kwds={"groups": df["firm"].to_numpy(),
                                                             "use_correction": False})
    np.testing.assert_allclose(cl.bse[["x", "z"]], mc.bse[["x", "z"]], rtol=1e-5)
    assert cl.vcov_info.cluster_vars == ("firm",)


@pytest.mark.parametrize("baseline", ["dummies", "poly", "spline"])
def test_hazard_recovers_grouped_time_ph(baseline: str) -> None:
    """True (0.6, -0.4) within 4 clustered SE for every baseline."""
    df = _firm_years(seed=9)
    res = hazard("exit ~ x + z", df, entity="firm", time="year", baseline=baseline)
    z = (res.params[["x", "z"]].to_numpy() - np.array([0.6, -0.4])) / res.bse[["x", "z"]].to_numpy()
    assert np.all(np.abs(z) < 4), z


def test_hazard_period_without_exits_is_dropped_and_counted() -> None:
    """A year in which no firm exits: its rows are dropped (audit) and the slopes equal the fit
    on the other years."""
    df = _firm_years(n_firms=1500, seed=5)
    df.loc[df["year"] == 2002, "exit"] = 0  # the 2002 exits become censored spells
    n02 = int((df["year"] == 2002).sum())
    res = hazard("exit ~ x + z", df, entity="firm", time="year")
    assert res.audit.dropped == {"fixed-effect year levels with a constant outcome": n02}
    ref = hazard("exit ~ x + z", df[df["year"] != 2002], entity="firm", time="year")
    np.testing.assert_allclose(res.params[["x", "z"]], ref.params[["x", "z"]], atol=1e-10)


def test_hazard_rejects_rows_after_exit() -> None:
    df = _firm_years(n_firms=300)
    first_exit = df.index[df["exit"] == 1][0]
    firm = df.loc[first_exit, "firm"]
    extra = pd.DataFrame({"firm": [firm], "year": [2010], "x": [0.0], "z": [0], "exit": [0]})
    with pytest.raises(EstimationError, match=r"at most once per firm.*" + str(firm)):
        hazard("exit ~ x + z", pd.concat([df, extra], ignore_index=True), entity="firm", time="year")


# ---------------------------------------------------------------------------------------------
# Kaplan-Meier and log-rank
# ---------------------------------------------------------------------------------------------
def test_kaplan_meier_against_lifelines_and_statsmodels() -> None:
    """Survival and log-log bands against lifelines (entry, per group); Greenwood SE against
    statsmodels SurvfuncRight; 1e-8."""
    from lifelines import KaplanMeierFitter
    from statsmodels.duration.survfunc import SurvfuncRight
    df = _sim(n=1500, seed=4)
    km = kaplan_meier(df, duration="y", event="d", entry="e", group="s")
    for g in (0, 1, 2):
        sub = df[df["s"] == g]
        ours = km[km["group"] == g].set_index("time")
        kmf = KaplanMeierFitter().fit(sub["y"], sub["d"], entry=sub["e"])
        sf = kmf.survival_function_.iloc[:, 0].loc[ours.index]
        ci = kmf.confidence_interval_.loc[ours.index]
        np.testing.assert_allclose(ours["survival"], sf, atol=1e-10)
        np.testing.assert_allclose(ours["lower"], ci.iloc[:, 0], atol=1e-8)
        np.testing.assert_allclose(ours["upper"], ci.iloc[:, 1], atol=1e-8)
        sm = SurvfuncRight(sub["y"].to_numpy(), sub["d"].to_numpy(), entry=sub["e"].to_numpy() + 0.5)
        # statsmodels counts entries at t as at risk at t: shift the entries to match R's rule
        ev_times = ours.index[ours["events"] > 0]
        sm_se = pd.Series(sm.surv_prob_se, index=sm.surv_times).loc[ev_times]
        np.testing.assert_allclose(ours.loc[ev_times, "std_err"], sm_se, atol=1e-8)
        np.testing.assert_allclose(ours.loc[ev_times, "at_risk"],
                                   pd.Series(sm.n_risk, index=sm.surv_times).loc[ev_times])


def test_logrank_against_lifelines_and_statsmodels() -> None:
    from lifelines.statistics import multivariate_logrank_test
    from statsmodels.duration.survfunc import survdiff
    df = _sim(n=1500, seed=8)
    df.loc[df["s"] == 2, "y"] = np.ceil(df.loc[df["s"] == 2, "y"] * 0.8)  # a real difference
    out = logrank_test(df, duration="y", event="d", group="s")
    ref = multivariate_logrank_test(df["y"], df["s"], df["d"])
    assert out.statistic == pytest.approx(ref.test_statistic, rel=1e-9)
    assert out.df == 2
    assert out.p_value == pytest.approx(ref.p_value, rel=1e-7)
    stat, _p = survdiff(df["y"].to_numpy(), df["d"].to_numpy(), df["s"].to_numpy())
    assert out.statistic == pytest.approx(stat, rel=1e-9)
    with pytest.raises(EstimationError, match="fewer than two groups"):
        logrank_test(df.assign(g=1), duration="y", event="d", group="g")
