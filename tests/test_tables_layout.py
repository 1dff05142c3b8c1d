"""Regression-table layout (issue 13, item 8): empty cells blank (never ``nan`` or ``n/a``), row
labels left-aligned, the constant last unless ``order`` places it, in every format (LaTeX, HTML,
Markdown, Word, Excel, CSV), as modelsummary and fixest's etable lay tables out.

Fits are OLS with the iid covariance (Stata's ssc) on simulated data; the numbers are not under
test here, only where they go.
"""

from __future__ import annotations

import io
import re
import zipfile

import numpy as np
import pandas as pd
import pytest

import cluster_econ as ce
from cluster_econ.estimate.result import Audit, Result, VcovInfo
from cluster_econ.tables import regression_table


@pytest.fixture(scope="module")
def models() -> list[Result]:
    rng = np.random.default_rng(3)
    n = 200
    df = pd.DataFrame({"x": rng.normal(size=n), "z": rng.normal(size=n), "g": rng.integers(0, 25, n)})
    df["y"] = 1 + df["x"] + rng.normal(size=n)
    a = ce.feols("y ~ x", df)
    b = ce.feols("y ~ x + z", df)
    c = ce.feols("y ~ x + z | g", df)
    # a model with a coefficient whose standard error and a statistic are not finite
    nan_se = Result(params=pd.Series([1.0, 2.0], index=["Intercept", "x"]),
                    cov=pd.DataFrame([[np.nan, 0.0], [0.0, 0.04]], index=["Intercept", "x"],
                                     columns=["Intercept", "x"]),
                    nobs=50, vcov_info=VcovInfo("HC1", "stata", df_resid=48.0), formula="y ~ x",
                    model="feols", engine="test", audit=Audit(50), stats={"r2": float("nan"), "adj_r2": 0.5})
    return [a, b, c, nan_se]


def body_labels(tab) -> list[str]:
    return [r.label for r in tab.layout.sections[0] if r.kind == "body"]


def test_constant_is_last_unless_ordered(models):
    assert body_labels(regression_table(models[:3])) == ["x", "z", "Constant"]
    assert body_labels(regression_table(models[:3], order=["Intercept"])) == ["Constant", "x", "z"]
    assert body_labels(regression_table(models[:3], order=["z"])) == ["z", "x", "Constant"]


def test_no_nan_or_na_text_in_any_format(models, tmp_path):
    tab = regression_table(models)
    texts = [tab.to_latex(), tab.to_html(), tab.to_markdown(), tab.to_csv(), tab.to_frame().to_string()]
    for text in texts:
        assert not re.search(r"\bnan\b|n/a|<NA>|None", text, flags=re.I), text
    rows = {r.label: [c.text for c in r.cells] for sec in tab.layout.sections for r in sec if r.label}
    assert rows["Constant"][2] == "" and rows["Constant"][3] == "1.000"
    assert rows["R²"][3] == "" and rows["Adjusted R²"][3] == "0.500"
    sub = [r for r in tab.layout.sections[0] if r.kind == "sub"][-1]  # beneath the constant
    assert [c.text for c in sub.cells][3] == ""
    word = zipfile.ZipFile(io.BytesIO(tab.to_docx())).read("word/document.xml").decode()
    assert not re.search(r">(nan|n/a)<", word)
    openpyxl = pytest.importorskip("openpyxl")
    ws = openpyxl.load_workbook(io.BytesIO(tab.to_xlsx())).active
    values = [c.value for row in ws.iter_rows() for c in row if c.value is not None]
    assert not any(isinstance(v, str) and v.strip().lower() in ("nan", "n/a") for v in values)
    assert not any(isinstance(v, float) and not np.isfinite(v) for v in values)


def test_row_labels_are_left_aligned_in_every_format(models):
    tab = regression_table(models[:3], title="T")
    html = tab.to_html()
    labels = re.findall(r'<th scope="row"([^>]*)>', html)
    assert labels and all('style="text-align:left"' in a for a in labels)
    assert all('style="text-align:center"' in a for a in re.findall(r"<td([^>]*)>", html) if "ce-note" not in a)
    assert r"\begin{tabular}{lccc}" in tab.to_latex()
    assert "|:---|:---:|:---:|:---:|" in tab.to_markdown()
    doc = zipfile.ZipFile(io.BytesIO(tab.to_docx())).read("word/document.xml").decode()
    rows = re.findall(r"<w:tr[ >].*?</w:tr>", doc, flags=re.S)
    first_cells = [re.search(r"<w:tc>.*?</w:tc>", r, flags=re.S).group(0) for r in rows]
    assert all('<w:jc w:val="left"/>' in c for c in first_cells)
    openpyxl = pytest.importorskip("openpyxl")
    ws = openpyxl.load_workbook(io.BytesIO(tab.to_xlsx())).active
    label_cells = [ws.cell(row=r, column=1) for r in range(1, ws.max_row + 1)
                   if ws.cell(row=r, column=1).value in ("x", "z", "Constant", "Observations")]
    assert len(label_cells) == 4 and all(c.alignment.horizontal == "left" for c in label_cells)
