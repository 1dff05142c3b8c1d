"""Wald tests against statsmodels' f_test (HC1: n/(n-k) multiplier; F with n-k df)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cluster_econ.errors import FormulaError
from cluster_econ.estimate.inference import parse_restrictions
from cluster_econ.estimate.linear import feols


@pytest.fixture
def df() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    n = 500
    d = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.normal(size=n)})
    d["y"] = 1 + 0.5 * d.a + 0.4 * d.b + 0.1 * d.c + rng.normal(size=n) * (1 + d.a.abs())
    return d


def test_string_restrictions_match_statsmodels_f_test(df):
    smf = pytest.importorskip("statsmodels.formula.api")
    r = feols("y ~ a + b + c", df, vcov="HC1")
    sm = smf.ols("y ~ a + b + c", df).fit(cov_type="HC1")
    ours = r.wald_test("a - b = 0; c = 0")
    peer = sm.f_test("a - b = 0, c = 0")
    assert ours.distribution == "F" and ours.df == 2 and ours.df_denom == 496
    assert ours.statistic == pytest.approx(float(np.squeeze(peer.fvalue)), rel=1e-9)
    assert ours.p_value == pytest.approx(float(peer.pvalue), rel=1e-9)


def test_matrix_form_equals_string_form(df):
    r = feols("y ~ a + b + c", df, vcov="HC1")
    R = np.array([[0, 2, 1, 0.0]])
    s = r.wald_test("2*a + b = 1")
    m = r.wald_test(R, 1.0)
    assert s.statistic == pytest.approx(m.statistic, rel=1e-12)
    # single restriction: F equals the squared t of the combination
    t = (2 * r.params["a"] + r.params["b"] - 1) / np.sqrt(
        R[0] @ r.cov.to_numpy() @ R[0])
    assert s.statistic == pytest.approx(t**2, rel=1e-10)


def test_parse_restrictions_names_with_symbols():
    names = ["Intercept", "C(p)[T.b]", "I(x ** 2)", "x"]
    R, q = parse_restrictions("C(p)[T.b] - 0.5*I(x ** 2) = 2; x = 0", names)
    np.testing.assert_array_equal(R, [[0, 1, -0.5, 0], [0, 0, 0, 1]])
    np.testing.assert_array_equal(q, [2, 0])


@pytest.mark.parametrize("bad", ["a + zz = 0", "a = b = c", "__import__('os') = 0", "3 = 1", "a + = 0"])
def test_bad_restrictions_raise(bad):
    with pytest.raises(FormulaError):
        parse_restrictions(bad, ["a", "b", "c"])
