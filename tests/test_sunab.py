"""Sun-Abraham event study through the formula: ``sunab(cohort, period)``.

Reference: pyfixest's saturated event study (``event_study(..., estimator="saturated")`` and its
``aggregate()``, cohort-share weights) on the did package's ``mpdta``, to 1e-10. Standard errors:
CRV1 by county with the fixest small-sample preset (pyfixest's default), delta method for the
interaction-weighted averages. (pyfixest's aggregate p-values are normal; ours use t(G-1) as every
clustered feols here.)
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import cluster_econ as ce
from cluster_econ.errors import FormulaError
from cluster_econ.estimate.formula import parse_formula

md = pytest.importorskip("moderndid")
pf = pytest.importorskip("pyfixest")


@pytest.fixture(scope="module")
def mpdta() -> pd.DataFrame:
    return md.load_mpdta().to_pandas().rename(columns={"first.treat": "g"})


def test_matches_pyfixest_saturated(mpdta: pd.DataFrame) -> None:
    ours = ce.feols("lemp ~ sunab(g, year) | countyreal + year", mpdta, vcov={"CRV1": "countyreal"},
                    ssc="fixest")
    with pytest.warns(UserWarning):
        es = pf.event_study(mpdta, yname="lemp", idname="countyreal", tname="year", gname="g",
                            estimator="saturated")
        agg = es.aggregate()
    assert list(ours.params.index) == [f"year::{int(p)}" for p in agg.index]
    np.testing.assert_allclose(ours.params.to_numpy(), agg["Estimate"].to_numpy(float), atol=1e-10)
    np.testing.assert_allclose(ours.bse.to_numpy(), agg["Std. Error"].to_numpy(float), rtol=1e-8)
    cells = es.tidy()["Estimate"].to_numpy(float)
    np.testing.assert_allclose(ours.extra["sunab"]["cohort_params"].to_numpy(), cells, atol=1e-10)


def test_att_and_reference_period(mpdta: pd.DataFrame) -> None:
    res = ce.feols("lemp ~ sunab(g, year, att=TRUE) | countyreal + year", mpdta, vcov={"CRV1": "countyreal"})
    assert list(res.params.index) == ["ATT"]
    w = res.extra["sunab"]["weights"]
    assert w["weight"].sum() == pytest.approx(1.0)
    # post cells only, weighted by their sample counts
    cells = res.extra["sunab"]["cells"].query("rel >= 0")
    expect = np.sum(cells["n"] / cells["n"].sum() * res.extra["sunab"]["cohort_params"][cells["term"]].to_numpy())
    assert res.params["ATT"] == pytest.approx(expect, abs=1e-12)
    alt = ce.feols("lemp ~ sunab(g, year, ref_p=-2) | countyreal + year", mpdta)
    assert "year::-2" not in alt.params.index and "year::-1" in alt.params.index


def test_parser_is_safe_and_strict() -> None:
    spec = parse_formula("y ~ sunab(g, year) + x | id + year")
    assert spec.rhs[0] == "sunab(g, year)" and "g" in spec.variables()
    for bad in ("y ~ sunab(g, __import__) | id", "y ~ sunab(g) | id", "y ~ sunab(g, year, foo=1) | id",
                "y ~ sunab(g, year, att=os) | id"):
        with pytest.raises(FormulaError):
            parse_formula(bad)
    d = pd.DataFrame({"y": [1.0, 2, 3, 4], "g": [2, 2, 0, 0], "year": [1, 2, 1, 2], "x": [1.0, 0, 1, 0],
                      "id": [1, 1, 2, 2]})
    with pytest.raises(FormulaError, match="interacted"):
        ce.feols("y ~ sunab(g, year):x | id", d)
    with pytest.raises(FormulaError, match="always treated"):
        ce.feols("y ~ sunab(g, year) | id", d.assign(g=[0.5, 0.5, 0, 0]))
