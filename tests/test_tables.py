"""Tests of cluster_econ.tables: structure, labels, escaping, neutralisation, byte identity.

The Results here are built directly (no estimator involved) so that every displayed number can
be checked against the Result it came from. Covariance conventions are stated per Result: the
numbers are whatever ``cov`` says; the tables only format them. p-values and CIs are the
Result's own (Student t with ``vcov_info.df_resid``; normal when it is None).
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import time
import zipfile

import numpy as np
import pandas as pd
import pytest

from cluster_econ.errors import ClusterEconError
from cluster_econ.estimate.result import Audit, Result, VcovInfo
from cluster_econ.tables import (
    TableError,
    atomic_write,
    descriptive_table,
    latex_escape,
    neutralise_cell,
    regression_table,
)


def make_result(terms, est, se, *, stats=None, formula=None, vcov=None, groups=None,
                nobs=1234, model="feols", extra=None):
    """A Result with a diagonal covariance (CRV1 by enterprise, Stata ssc, df = G - 1 = 53)."""
    params = pd.Series(est, index=terms, dtype=float)
    cov = pd.DataFrame(np.diag(np.asarray(se, dtype=float) ** 2), index=terms, columns=terms)
    return Result(
        params=params, cov=cov, nobs=nobs,
        vcov_info=vcov or VcovInfo("CRV1", "stata", ("enterprise_id",), (54,), 53.0),
        formula=formula or f"value_added ~ {' + '.join(terms)} | enterprise_id + year",
        model=model, engine="test", audit=Audit(n_input=nobs + 10),
        groups={"enterprise_id": 54, "year": 10} if groups is None else groups,
        stats={"r2": 0.81, "within_r2": 0.27} if stats is None else stats,
        extra=extra or {},
    )


@pytest.fixture
def two_models():
    r1 = make_result(["schooling_years", "schooling_years:phase[T.quality_improvement]"],
                     [-0.252, 0.1041], [0.05, 0.2])
    r2 = make_result(["schooling_years", "employment", "Intercept"], [0.3, 1.5, 2.0],
                     [0.1, 0.7, 0.4], stats={"r2": 0.5, "adj_r2": 0.45},
                     formula="value_added ~ schooling_years + employment | year")
    return r1, r2


def rows_by_label(tab):
    out = {}
    for sec in tab.layout.sections:
        for r in sec:
            out.setdefault(r.label, [c.text for c in r.cells])
    return out


# -- structure -------------------------------------------------------------------------------
def test_coefficients_and_standard_errors_beneath(two_models):
    r1, r2 = two_models
    tab = regression_table([r1, r2])
    rows = [r for r in tab.layout.sections[0]]
    assert [r.label for r in rows[::2]] == [
        "Schooling", "Schooling × Phase: Quality improvement", "Employment", "Constant"]
    assert all(r.kind == "sub" and r.label == "" for r in rows[1::2])
    assert [c.text for c in rows[0].cells] == ["-0.252", "0.300"]
    assert [c.text for c in rows[1].cells] == ["(0.050)", "(0.100)"]
    # absent term -> empty cell
    assert [c.text for c in rows[2].cells] == ["0.104", ""]
    assert [c.text for c in rows[5].cells] == ["", "(0.700)"]
    assert tab.layout.headers == (("Value added", "Value added"), ("(1)", "(2)"))
    assert "Standard errors in parentheses." in tab.layout.notes


def test_bottom_rows_n_clusters_fixed_effects_vcov(two_models):
    r1, r2 = two_models
    r2 = make_result(["schooling_years"], [0.3], [0.1], formula="value_added ~ schooling_years",
                     vcov=VcovInfo("HC1", "stata", df_resid=900.0), groups={}, nobs=5000,
                     stats={"r2": 0.2}, model="ols")
    rows = rows_by_label(regression_table([r1, r2]))
    assert rows["Observations"] == ["1,234", "5,000"]
    assert rows["Clusters (Enterprise ID)"] == ["54", ""]
    assert rows["Enterprise ID FE"] == ["Yes", "No"]
    assert rows["Year FE"] == ["Yes", "No"]
    assert rows["Standard errors"] == ["CRV1 by Enterprise ID, ssc=stata", "HC1, ssc=stata"]


def test_fixed_effects_from_groups_when_formula_has_none():
    fe = make_result(["x"], [1.0], [0.1], formula="y ~ x", groups={"year": 9}, model="feols")
    re_ = make_result(["x"], [1.0], [0.1], formula="y ~ x", groups={"enterprise_id": 50},
                      model="panel-re")
    explicit = make_result(["x"], [1.0], [0.1], formula="y ~ x", groups={"enterprise_id": 50},
                           model="panel-fe", extra={"fixed_effects": ("enterprise_id",)})
    rows = rows_by_label(regression_table([fe, re_, explicit]))
    assert rows["Year FE"] == ["Yes", "No", "No"]
    assert rows["Enterprise ID FE"] == ["No", "No", "Yes"]


def test_within_r2_never_under_plain_r2_label():
    within_only = make_result(["x"], [1.0], [0.5], stats={"within_r2": 0.123})
    rows = rows_by_label(regression_table([within_only]))
    assert rows["Within R²"] == ["0.123"]
    assert "R²" not in rows
    both = make_result(["x"], [1.0], [0.5], stats={"r2": 0.9, "within_r2": 0.2,
                                                   "adj_r2": 0.85, "pseudo_r2": 0.3,
                                                   "loglik": -1234.5678})
    rows = rows_by_label(regression_table([both]))
    assert rows["R²"] == ["0.900"]
    assert rows["Within R²"] == ["0.200"]
    assert rows["Adjusted R²"] == ["0.850"]
    assert rows["Pseudo R²"] == ["0.300"]
    assert rows["Log likelihood"] == ["-1234.568"]
    labels = [r.label for r in regression_table([both]).layout.sections[-1]]
    assert labels == ["R²", "Adjusted R²", "Within R²", "Pseudo R²", "Log likelihood",
                      "Standard errors"]


@pytest.mark.parametrize("stat", ["t", "p", "ci"])
def test_statistic_beneath(two_models, stat):
    r1, _ = two_models
    tab = regression_table([r1], stat=stat, digits=4)
    sub = tab.layout.sections[0][1].cells[0].text
    if stat == "t":
        assert sub == f"({r1.tvalues.iloc[0]:.4f})" == "(-5.0400)"
        assert "t statistics in parentheses." in tab.layout.notes
    elif stat == "p":
        # |t| = 5.04 with 53 df: p is about 5.6e-06 -> shown as below 0.0001
        assert r1.pvalues.iloc[0] < 5e-5
        assert sub == "(<0.0001)"
        assert tab.layout.sections[0][3].cells[0].text == f"({r1.pvalues.iloc[1]:.4f})"
    else:
        ci = r1.conf_int(0.95).iloc[0]
        assert sub == f"[{ci['lower']:.4f}, {ci['upper']:.4f}]"
        assert "95% confidence intervals in brackets." in tab.layout.notes


def test_stars_follow_result_pvalues_and_are_stated(two_models):
    r1, r2 = two_models
    tab = regression_table([r1, r2], stars=True)
    rows = rows_by_label(tab)
    # r2 employment: t = 1.5/0.7 = 2.143, 53 df -> p = 0.037 -> **
    assert 0.01 < r2.pvalues["employment"] < 0.05
    assert rows["Employment"] == ["", "1.500**"]
    assert rows["Schooling"] == ["-0.252***", "0.300***"]
    assert rows["Schooling × Phase: Quality improvement"] == ["0.104", ""]  # p = 0.6: none
    assert any("* p < 0.1, ** p < 0.05, *** p < 0.01" in n for n in tab.layout.notes)
    custom = regression_table([r2], stars=(0.05, 0.001))
    assert rows_by_label(custom)["Employment"] == ["1.500*"]
    assert any("* p < 0.05, ** p < 0.001" in n for n in custom.layout.notes)
    with pytest.raises(TableError, match="thresholds"):
        regression_table([r2], stars=(0.01, 0.05))


def test_labels_schema_user_interactions_and_model_names(two_models):
    r1, r2 = two_models
    tab = regression_table({"A": r1, "B": r2}, labels={"schooling_years": "Years of school"})
    labels = [r.label for r in tab.layout.sections[0] if r.kind == "body"]
    assert labels[:2] == ["Years of school", "Years of school × Phase: Quality improvement"]
    assert tab.layout.headers[0] == ("A", "B")
    tab = regression_table([r1, r2], labels={"schooling_years:phase[T.quality_improvement]": "S×Q"},
                           model_names=["m1", "m2"])
    assert [r.label for r in tab.layout.sections[0] if r.kind == "body"][1] == "S×Q"
    assert tab.layout.headers[0] == ("m1", "m2")
    with pytest.raises(TableError, match="2 models"):
        regression_table([r1, r2], model_names=["only one"])


def test_keep_drop_order(two_models):
    r1, r2 = two_models
    tab = regression_table([r1, r2], drop="Intercept", order=["employment"])
    assert tab.terms == ("employment", "schooling_years", "schooling_years:phase[T.quality_improvement]")
    tab = regression_table([r1, r2], keep=re.compile("^schooling"))
    assert tab.terms == ("schooling_years", "schooling_years:phase[T.quality_improvement]")
    with pytest.raises(TableError, match="no model has a term 'nonexistent'"):
        regression_table([r1, r2], keep=["nonexistent"])


def test_column_groups_render_as_spanning_headers(two_models):
    r1, r2 = two_models
    groups = {"Quantity expansion": [0, 1], "Quality improvement": [2, 3]}
    tab = regression_table([r1, r2, r1, r2], groups=groups)
    tex = tab.to_latex()
    assert r"\multicolumn{2}{c}{Quantity expansion}" in tex
    assert r"\cmidrule(lr){2-3} \cmidrule(lr){4-5}" in tex
    html = tab.to_html()
    assert '<th colspan="2" class="ce-span">Quality improvement</th>' in html
    assert tab.to_frame().columns[2] == ("Quality improvement", "Value added", "(3)")
    for bad, msg in [({"a": [0, 2]}, "contiguous"), ({"a": [0, 1], "b": [1, 2]}, "both"),
                     ({"a": [3, 4]}, "valid indices")]:
        with pytest.raises(TableError, match=msg):
            regression_table([r1, r2, r1, r2], groups=bad)


def test_bad_arguments_raise_package_errors(two_models):
    r1, _ = two_models
    with pytest.raises(TableError, match="not a cluster_econ Result"):
        regression_table([r1, "oops"])
    with pytest.raises(TableError, match="stat must be"):
        regression_table([r1], stat="z")
    with pytest.raises(ClusterEconError, match="extension"):
        regression_table([r1]).save("table.pdf")


def test_to_frame_index(two_models):
    r1, r2 = two_models
    frame = regression_table([r1, r2]).to_frame()
    assert frame.loc[("Schooling", "estimate")].tolist() == ["-0.252", "0.300"]
    assert frame.loc[("Schooling", "se")].tolist() == ["(0.050)", "(0.100)"]
    assert frame.loc[("Observations", "")].tolist() == ["1,234", "1,234"]


# -- escaping and neutralisation -------------------------------------------------------------
EVIL = "50% & $x_1$ #{}~^\\ <b>\"it's\"</b>"


def test_latex_escapes_every_text(two_models):
    r1, _ = two_models
    tab = regression_table([r1], labels={"schooling_years": EVIL}, model_names=[EVIL],
                           groups={EVIL: [0]}, notes=EVIL, title=EVIL)
    tex = tab.to_latex()
    esc = latex_escape(EVIL)
    assert esc == (r"50\% \& \$x\_1\$ \#\{\}\textasciitilde{}\textasciicircum{}\textbackslash{} "
                   r"\textless{}b\textgreater{}\"it's\"\textless{}/b\textgreater{}".replace(r'\"', '"'))
    assert tex.count(esc) >= 5  # label, interaction label part, model name, group, note, title
    assert EVIL not in tex


def test_html_and_markdown_escape_every_text(two_models):
    r1, _ = two_models
    tab = regression_table([r1], labels={"schooling_years": "<script>alert(1)</script>"},
                           model_names=['"><img src=x>'], notes="a & b", title="<i>t</i>")
    html = tab.to_html()
    assert "<script>" not in html and "<img" not in html and "<i>t" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&quot;&gt;&lt;img src=x&gt;" in html
    assert "a &amp; b" in html
    md = tab.to_markdown()
    assert "<script>" not in md and r"\<script\>" in md
    pipe = regression_table([r1], labels={"schooling_years": "a|b"}).to_markdown()
    assert r"a\|b" in pipe


def test_neutralise_cell_rules():
    assert neutralise_cell("=HYPERLINK(\"http://x\")") == "'=HYPERLINK(\"http://x\")"
    assert neutralise_cell("+1+cmd") == "'+1+cmd"
    assert neutralise_cell("@SUM(A1)") == "'@SUM(A1)"
    assert neutralise_cell("\tx") == "'\tx"
    assert neutralise_cell("-0.252***") == "'-0.252***"
    assert neutralise_cell("-1+2") == "'-1+2"
    assert neutralise_cell("-0.252") == "-0.252"
    assert neutralise_cell("-1,234.5") == "-1,234.5"
    assert neutralise_cell("Schooling") == "Schooling"


def test_csv_neutralises_formulas_and_keeps_plain_numbers(two_models, tmp_path):
    r1, _ = two_models
    evil = '=HYPERLINK("http://evil.example","click")'
    tab = regression_table([r1], labels={"schooling_years": evil}, stars=True)
    text = tab.to_csv(tmp_path / "t.csv")
    back = pd.read_csv(tmp_path / "t.csv", header=None, dtype=str, keep_default_na=False)
    first_col = back[0].tolist()
    assert "'" + evil in first_col
    assert not any(str(v).startswith(("=", "+", "@")) for v in back.to_numpy().ravel())
    assert "'-0.252***" in back[1].tolist()
    plain = regression_table([r1]).to_csv()
    assert "\r\nSchooling,-0.252\r\n" in plain  # a plain number stays a number
    assert (tmp_path / "t.csv").read_bytes() == text.encode("utf-8")


def test_xlsx_numbers_stay_numbers_and_text_is_neutralised(two_models, tmp_path):
    openpyxl = pytest.importorskip("openpyxl")
    r1, _ = two_models
    evil = '=HYPERLINK("http://evil.example","click")'
    tab = regression_table([r1], labels={"schooling_years": evil}, model_names=["-bad"],
                           stars=True, title="@title")
    path = tmp_path / "t.xlsx"
    tab.to_xlsx(path)
    ws = openpyxl.load_workbook(path).active
    values = {c.coordinate: c for row in ws.iter_rows() for c in row if c.value is not None}
    texts = [c.value for c in values.values() if isinstance(c.value, str)]
    assert "'" + evil in texts and "'-bad" in texts and "'@title" in texts
    assert all(c.data_type != "f" for c in values.values())
    assert not any(t.startswith(("=", "+", "-", "@")) for t in texts)
    coef = next(c for c in values.values() if c.value == pytest.approx(-0.252))
    assert coef.data_type == "n" and coef.number_format == '0.000"***"'
    se = next(c for c in values.values() if c.value == pytest.approx(0.05))
    assert se.number_format == "(0.000)"
    nobs = next(c for c in values.values() if c.value == 1234)
    assert nobs.data_type == "n"


# -- files -----------------------------------------------------------------------------------
def test_docx_contains_the_table(two_models, tmp_path):
    docx = pytest.importorskip("docx")
    r1, r2 = two_models
    tab = regression_table([r1, r2], groups={"Both": [0, 1]}, title="T", notes="note here")
    tab.to_docx(tmp_path / "t.docx")
    doc = docx.Document(str(tmp_path / "t.docx"))
    table = doc.tables[0]
    texts = [[c.text for c in row.cells] for row in table.rows]
    assert texts[0][1] == texts[0][2] == "Both"  # merged span
    assert texts[2] == ["", "(1)", "(2)"]
    assert ["Schooling", "-0.252", "0.300"] in texts
    assert any(p.text == "note here" for p in doc.paragraphs)


def test_same_inputs_give_identical_bytes(two_models, tmp_path):
    r1, r2 = two_models
    tab = regression_table([r1, r2], groups={"G": [0, 1]}, stars=True, title="T", notes="n")
    first = {ext: (tab.save(tmp_path / f"a{ext}").read_bytes())
             for ext in (".docx", ".xlsx", ".tex", ".html", ".md", ".csv")}
    time.sleep(2.1)  # zip stores 2-second times; a timestamp leak would show now
    again = regression_table([r1, r2], groups={"G": [0, 1]}, stars=True, title="T", notes="n")
    for ext, data in first.items():
        assert again.save(tmp_path / f"b{ext}").read_bytes() == data, ext
    for ext in (".docx", ".xlsx"):
        with zipfile.ZipFile(io.BytesIO(first[ext])) as z:
            assert {i.date_time for i in z.infolist()} == {(1980, 1, 1, 0, 0, 0)}
            core = z.read("docProps/core.xml").decode()
            assert re.findall(r"\d{4}-\d\d-\d\dT[\d:]+Z", core)
            assert set(re.findall(r"\d{4}-\d\d-\d\dT[\d:]+Z", core)) == {"1980-01-01T00:00:00Z"}


def test_save_dispatches_on_extension(two_models, tmp_path):
    r1, _ = two_models
    tab = regression_table([r1])
    assert tab.save(tmp_path / "x.tex").read_text().startswith(r"\begin{table}")
    assert tab.save(tmp_path / "x.html").read_text().startswith('<table class="ce-table">')
    assert tab.save(tmp_path / "x.md").read_text().startswith("|  | Value added<br>(1) |")
    assert tab.save(tmp_path / "sub" / "x.csv").exists()
    assert zipfile.is_zipfile(tab.save(tmp_path / "x.docx"))
    assert zipfile.is_zipfile(tab.save(tmp_path / "x.xlsx"))


def test_atomic_write_replaces_and_leaves_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "out.txt"
    atomic_write(target, "old")
    atomic_write(target, b"new \xc3\xa9")
    assert target.read_text(encoding="utf-8") == "new é"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]
    assert (target.stat().st_mode & 0o777) == (0o666 & ~_umask())

    def failing_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, "partial")
    assert target.read_text(encoding="utf-8") == "new é"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex not installed")
def test_latex_compiles_with_booktabs_only(two_models, tmp_path):
    r1, r2 = two_models
    tab = regression_table([r1, r2, r1], stars=True, groups={"Quantity & expansion": [0, 1]},
                           labels={"employment": EVIL}, title="Table 1: 50% of $", notes=EVIL)
    doc = ("\\documentclass{article}\n\\usepackage{booktabs}\n\\begin{document}\n"
           + tab.to_latex() + descriptive_table(_profile()).to_latex() + "\\end{document}\n")
    (tmp_path / "t.tex").write_text(doc, encoding="utf-8")
    proc = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "t.tex"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert (tmp_path / "t.pdf").stat().st_size > 1000


# -- descriptive tables ----------------------------------------------------------------------
def _profile() -> pd.DataFrame:
    cols = pd.MultiIndex.from_tuples([("quantity_expansion", "mean"), ("quantity_expansion", "n"),
                                      ("quality_improvement", "mean"),
                                      ("quality_improvement", "n")])
    return pd.DataFrame([[6.25, 120, 11.5, 80], [-0.5, 1200, np.nan, 15000]],
                        index=pd.Index(["schooling_years", "employment"], name="variable"),
                        columns=cols).astype({cols[1]: "int64", cols[3]: "int64"})


def test_descriptive_table_structure_and_labels(tmp_path):
    tab = descriptive_table(_profile(), digits=2, title="Profile", notes=["Means by phase."])
    lay = tab.layout
    assert lay.spans == (("Quantity expansion", 0, 1), ("Quality improvement", 2, 3))
    assert lay.headers == (("mean", "n", "mean", "n"),)
    rows = rows_by_label(tab)
    assert rows["Schooling"] == ["6.25", "120", "11.50", "80"]
    assert rows["Employment"] == ["-0.50", "1,200", "", "15,000"]
    assert lay.stub == "variable"
    assert r"\multicolumn{2}{c}{Quantity expansion}" in tab.to_latex()
    openpyxl = pytest.importorskip("openpyxl")
    ws = openpyxl.load_workbook(tab.save(tmp_path / "p.xlsx")).active
    numbers = [c.value for row in ws.iter_rows() for c in row if c.data_type == "n" and c.value is not None]
    assert -0.5 in numbers and 15000 in numbers


def test_descriptive_table_sections_groups_and_errors():
    idx = pd.MultiIndex.from_tuples([("Firms", "n_firms"), ("Firms", "n_entries"),
                                     ("Prices", "price_index")])
    df = pd.DataFrame({"a": [10, 2, 1.5], "b": [12, 3, 1.25]}, index=idx)
    tab = descriptive_table(df, groups={"Both": [0, 1]}, labels={"a": "Early", "b": "Late"})
    labels = [(r.label, r.kind) for r in tab.layout.sections[0]]
    assert labels == [("Firms", "heading"), ("Firms", "body"), ("Entries", "body"),
                      ("Prices", "heading"), ("Price index", "body")]
    assert tab.layout.headers == (("Early", "Late"),)
    assert "<th colspan=\"3\" scope=\"rowgroup\" style=\"text-align:left\">Prices</th>" in tab.to_html()
    with pytest.raises(TableError, match="DataFrame"):
        descriptive_table([[1, 2]])
    with pytest.raises(TableError, match="both column groups"):
        descriptive_table(df, groups={"x": [0], "y": [0]})
    bad = pd.DataFrame([[1, 2, 3]], columns=pd.MultiIndex.from_tuples(
        [("g", "a"), ("h", "b"), ("g", "c")]))
    with pytest.raises(TableError, match="not contiguous"):
        descriptive_table(bad)


def test_control_characters_do_not_break_word_or_excel(two_models, tmp_path):
    docx = pytest.importorskip("docx")
    openpyxl = pytest.importorskip("openpyxl")
    r1, _ = two_models
    tab = regression_table([r1], labels={"schooling_years": "School\x00ing\x07"}, title="T\x1b")
    doc = docx.Document(str(tab.save(tmp_path / "c.docx")))
    assert "Schooling" in [row.cells[0].text for row in doc.tables[0].rows]
    ws = openpyxl.load_workbook(tab.save(tmp_path / "c.xlsx")).active
    assert "Schooling" in [c.value for c in ws["A"]]


@pytest.mark.parametrize("model, expected", [
    ("panel-fe", ("enterprise_id",)), ("panel-re", ()), ("panel-mundlak", ()),
    ("panel-between", ()), ("panel-fd", ()), ("cox", ()), ("hazard-cloglog", ()),
    ("feols", ("enterprise_id",)),
])
def test_fixed_effects_by_model(model, expected):
    from cluster_econ.tables import fixed_effects

    res = make_result(["x"], [1.0], [0.1], formula="y ~ x", groups={"enterprise_id": 50},
                      model=model)
    assert fixed_effects(res) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("-0.252", "-0.252"), ("-.252", "-.252"), ("-1.2e-05", "-1.2e-05"), ("1,234", "1,234"),
     ("-0.252***", "'-0.252***"), ("=1+1", "'=1+1"), ("-1+2", "'-1+2"), ("@SUM(A1)", "'@SUM(A1)"), ("-", "'-")],
)
def test_neutralise_cell_numbers_and_formulas(text, expected):
    from cluster_econ.tables._escape import neutralise_cell

    assert neutralise_cell(text) == expected
