"""Tests of the safe formula parser and the model frame (no estimation, no standard errors)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cluster_econ.errors import FormulaError
from cluster_econ.estimate.formula import model_frame, parse_formula


@pytest.fixture
def df() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    n = 12
    return pd.DataFrame({
        "y": rng.uniform(1, 2, n), "x": rng.normal(size=n), "z": rng.normal(size=n),
        "p": list("aabbccaabbcc"), "s": np.arange(n, dtype=float),
        "firm": np.repeat(np.arange(4), 3), "year": np.tile([2000, 2001, 2002], 4),
    })


def test_three_parts_are_exog_fe_iv():
    spec = parse_formula("y ~ x | firm + year | d ~ z1 + z2")
    assert spec.rhs == ("x",)
    assert spec.fixed_effects == ("firm", "year")
    assert spec.endog == ("d",) and spec.instruments == ("z1", "z2")
    assert spec.intercept is False


def test_two_parts_with_tilde_are_exog_iv():
    spec = parse_formula("y ~ x | d ~ z")
    assert spec.fixed_effects == () and spec.endog == ("d",) and spec.intercept is True


def test_star_expands_and_minus_one_drops_intercept():
    spec = parse_formula("log(y) ~ a*b - 1")
    assert spec.lhs == "log(y)"
    assert spec.rhs == ("a", "b", "a:b")
    assert spec.intercept is False
    assert parse_formula("y ~ x + 0").intercept is False
    assert parse_formula("y ~ x + 1").intercept is True


def test_interacted_fixed_effects():
    spec = parse_formula("y ~ x | firm^year + firm")
    assert spec.fixed_effects == ("firm^year", "firm")
    assert spec.fe_variables == ("firm", "year")


def test_canonical_term_text_reparses_identically():
    spec = parse_formula("y ~ I(x**2 / 3 - 1) + I((a-b)-(c+d)) + I((-x)**2) + log1p(abs(x))")
    for term in spec.rhs:
        assert parse_formula(f"y ~ {term}").rhs == (term,)


@pytest.mark.parametrize("hostile", [
    "y ~ __import__('os').system('x')",
    "y ~ x.__class__",
    "y ~ open('f')",
    "y ~ I(x.real)",
    "y ~ x[0]",
    "y ~ lambda: 1",
    "y ~ eval(x)",
    "y ~ I(__builtins__)",
    "y ~ x | a + b(1)",
    "y ~ getattr(x, 'a')",
    "y ~ x; import os",
    "y ~ C('a')",
])
def test_hostile_formulas_are_rejected_with_formula_error(hostile):
    with pytest.raises(FormulaError):
        parse_formula(hostile)


def test_rejection_names_the_offending_text():
    with pytest.raises(FormulaError, match="open"):
        parse_formula("y ~ open('f')")
    with pytest.raises(FormulaError, match="__class__"):
        parse_formula("y ~ x.__class__")


def test_missing_column_names_closest(df):
    with pytest.raises(FormulaError, match=r"'xx'.*closest existing columns: x"):
        model_frame("y ~ xx", df)


def test_factor_dummies_and_slopes(df):
    mf = model_frame("y ~ C(p) + C(p):s + i(p, ref=b)", df)
    cols = list(mf.X.columns)
    assert cols[:3] == ["Intercept", "C(p)[T.b]", "C(p)[T.c]"]
    assert {"C(p)[T.a]:s", "C(p)[T.b]:s", "C(p)[T.c]:s"} <= set(cols)
    assert "i(p, ref=b)[T.a]" in cols and "i(p, ref=b)[T.b]" not in cols
    np.testing.assert_array_equal(mf.X["C(p)[T.b]:s"], np.where(df.p == "b", df.s, 0.0))


def test_transforms_computed_with_numpy(df):
    mf = model_frame("log(y) ~ I(x**2 - z) + sqrt(s) + exp(z)", df)
    np.testing.assert_allclose(mf.y, np.log(df.y))
    np.testing.assert_allclose(mf.X["I(x ** 2 - z)"], df.x**2 - df.z)
    np.testing.assert_allclose(mf.X["sqrt(s)"], np.sqrt(df.s))


def test_missing_and_nonfinite_rows_counted(df):
    d = df.copy()
    d.loc[0, "x"] = np.nan
    d.loc[1, "s"] = 0.0
    d.loc[2, "firm"] = np.nan
    mf = model_frame("y ~ x + log(s) | firm", d, extra=["z"])
    assert mf.dropped == {"missing values": 2, "non-finite values": 1}
    assert len(mf.y) == len(d) - 3 == len(mf.X) == len(mf.fe) == len(mf.extra)
    assert mf.n_input == len(d)


def test_extra_column_missing_reason(df):
    d = df.copy()
    d["cl"] = d.firm.astype(float)
    d.loc[[4, 5], "cl"] = np.nan
    mf = model_frame("y ~ x", d, extra=["cl"], extra_reasons={"cl": "missing cluster"})
    assert mf.dropped == {"missing cluster": 2}


def test_interacted_fe_column(df):
    mf = model_frame("y ~ x | firm^year", df)
    assert mf.fe["firm^year"].nunique() == 12


def test_text_outcome_is_a_clear_error():
    df = pd.DataFrame({"y": ["1", "2", "3", "x", "5"], "x": [1.0, 2, 3, 4, 5]})
    with pytest.raises(FormulaError, match=r"the outcome 'y' must be numeric: 1 row\(s\) .*rows 3; values \['x'\]"):
        model_frame("y ~ x", df)
    # numbers stored as text are fine
    mf = model_frame("y ~ x", df.assign(y=["1", "2", "3", "4", "5.5"]))
    assert mf.y.tolist() == [1.0, 2.0, 3.0, 4.0, 5.5]


@pytest.mark.parametrize("formula", [
    "y ~ " + "(" * 300 + "x" + ")" * 300,                   # grouping parentheses
    "y ~ I(" + "(" * 300 + "x" + ")" * 300 + ")",           # arithmetic parentheses
    "y ~ " + "log(" * 300 + "x" + ")" * 300,                 # nested transforms
    "y ~ I(" + "-" * 900 + "x)",                            # a chain of signs
    "y ~ I(x" + "**x" * 900 + ")",                          # a chain of powers
    "y ~ x | firm | " + "(" * 300 + "d" + ")" * 300 + " ~ z",  # the IV part
])
def test_deep_nesting_is_a_formula_error_not_a_recursion_error(formula):
    with pytest.raises(FormulaError, match="nested more than 50 levels deep"):
        parse_formula(formula)


def test_nesting_up_to_the_limit_parses_and_evaluates(df):
    from cluster_econ.estimate.formula import MAX_NESTING, parse_dynamic_formula

    depth = MAX_NESTING - 2  # I( and log( use two levels
    spec = parse_formula("y ~ I(" + "(" * depth + "x + 1" + ")" * depth + ") + log(y)")
    mf = model_frame(spec, df)
    np.testing.assert_allclose(mf.X["I(x + 1)"], df["x"] + 1)
    with pytest.raises(FormulaError, match="nested more than"):
        parse_dynamic_formula("y ~ lag(" + "(" * 300 + "y" + ")" * 300 + ", 1) | lag(y, 2:99)")
