"""Lee bounds and multi-round ANCOVA.

Lee bounds: point bounds against pyleebounds (integer trimming, where both conventions coincide);
Lee's analytic standard errors (Proposition 3) against the Monte Carlo spread of the estimator.
ANCOVA: the constructed regression against pyfixest on the same frame (CRV1 by unit, fixest preset),
and McKenzie's (2012) variance formula for ANCOVA versus the post-only comparison.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import cluster_econ as ce


def _attrition_data(n: int, rng: np.random.Generator, effect: float = 0.5) -> pd.DataFrame:
    d = rng.permutation(np.repeat([0.0, 1.0], n // 2))
    y = 1.0 + effect * d + rng.normal(size=n)
    obs_prob = np.where(d == 1, 0.9, 0.72)  # treatment keeps more people in the survey
    s = rng.random(n) < obs_prob
    return pd.DataFrame({"D": d, "y": np.where(s, y, np.nan), "S": s.astype(float)})


def test_point_bounds_match_pyleebounds() -> None:
    plb = pytest.importorskip("pyleebounds")
    rng = np.random.default_rng(5)
    d = _attrition_data(2000, rng)
    ours = ce.lee_bounds(d, "y", "D")
    # choose the data so that the number trimmed is an integer in both conventions
    n_t = int(((d.D == 1) & (d.S == 1)).sum())
    assert ours.extra["trimmed_arm"] == "treated"
    k = ours.extra["trim_share"] * n_t
    peer = plb.LeeBounds(n_bootstrap=2).fit(d.fillna({"y": 0.0}), "y", "D", "S")
    if abs(k - round(k)) < 1e-9:
        assert ours.lower == pytest.approx(peer.lower_bound, abs=1e-12)
        assert ours.upper == pytest.approx(peer.upper_bound, abs=1e-12)
    else:  # fractional trimming differs from integer truncation by less than one observation's weight
        spread = float(np.nanmax(d.y) - np.nanmin(d.y))
        assert abs(ours.lower - peer.lower_bound) < spread / ((1 - ours.extra["trim_share"]) * n_t)
    assert ours.lower <= ours.extra["naive_difference"] <= ours.upper
    lo, hi = ours.conf_int_effect
    assert lo < ours.lower and hi > ours.upper


def test_analytic_se_matches_monte_carlo() -> None:
    rng = np.random.default_rng(17)
    reps, n = 300, 1500
    res = [ce.lee_bounds(_attrition_data(n, rng), "y", "D") for _ in range(reps)]
    lows = np.array([r.lower for r in res])
    se = np.array([float(r.bse["lower bound"]) for r in res])
    # the s.d. of a Monte Carlo s.d. from 300 draws is about 1/sqrt(600) = 4% of it
    assert np.mean(se) == pytest.approx(np.std(lows, ddof=1), rel=0.15)
    ups = np.array([r.upper for r in res])
    se_u = np.array([float(r.bse["upper bound"]) for r in res])
    assert np.mean(se_u) == pytest.approx(np.std(ups, ddof=1), rel=0.15)
    # the true effect 0.5 lies between the population bounds; coverage of the IM interval
    cover = np.mean([r.conf_int_effect[0] <= 0.5 <= r.conf_int_effect[1] for r in res])
    assert cover >= 0.93


def test_lee_bounds_trims_control_when_it_is_observed_more() -> None:
    rng = np.random.default_rng(2)
    d = _attrition_data(1000, rng)
    flipped = d.assign(D=1 - d["D"], y=-d["y"])
    a, b = ce.lee_bounds(d, "y", "D"), ce.lee_bounds(flipped, "y", "D")
    assert b.extra["trimmed_arm"] == "control"
    assert b.lower == pytest.approx(a.lower, abs=1e-12) and b.upper == pytest.approx(a.upper, abs=1e-12)


def _rounds(n_units: int, rho: float, m: int, r: int, rng: np.random.Generator) -> pd.DataFrame:
    T = m + r
    cov = np.full((T, T), rho) + (1 - rho) * np.eye(T)
    e = rng.multivariate_normal(np.zeros(T), cov, size=n_units)
    D = rng.permutation(np.repeat([0.0, 1.0], n_units // 2))
    y = e + np.outer(D, np.r_[np.zeros(m), np.full(r, 0.2)])
    return pd.DataFrame({"unit": np.repeat(np.arange(n_units), T), "round": np.tile(np.arange(T), n_units),
                         "D": np.repeat(D, T), "y": y.ravel()})


def test_ancova_matches_pyfixest_and_mckenzie() -> None:
    pf = pytest.importorskip("pyfixest")
    rng = np.random.default_rng(8)
    rho, m, r = 0.5, 2, 3
    d = _rounds(6000, rho, m, r, rng)
    d.loc[d.index[:m], "y"] = np.nan  # unit 0 has no baseline: kept with the missing-baseline dummy
    res = ce.ancova(d, "y", "D", "unit", "round", baseline=range(m), ssc="fixest")
    assert res.extra["ancova"]["units_without_baseline"] == 1
    post = d[d["round"] >= m].copy()
    base = d[d["round"] < m].groupby("unit")["y"].mean()
    post["yb"] = post["unit"].map(base)
    post["yb_miss"] = post["yb"].isna().astype(float)
    post["yb"] = post["yb"].fillna(0.0)
    peer = pf.feols("y ~ D + yb + yb_miss | round", post.dropna(subset=["y"]), vcov={"CRV1": "unit"})
    assert res.params["D"] == pytest.approx(peer.coef()["D"], abs=1e-10)
    assert res.bse["D"] == pytest.approx(peer.se()["D"], rel=1e-8)
    # McKenzie (2012): Var(ANCOVA) / Var(POST) = [(1+(r-1)rho)/r - m rho^2/(1+(m-1)rho)] / [(1+(r-1)rho)/r]
    post_only = ce.feols("y ~ D | round", post.dropna(subset=["y"]), vcov={"CRV1": "unit"}, ssc="fixest")
    ratio = (res.bse["D"] / post_only.bse["D"]) ** 2
    a = (1 + (r - 1) * rho) / r
    expected = (a - m * rho**2 / (1 + (m - 1) * rho)) / a
    assert ratio == pytest.approx(expected, rel=0.1)


def test_batch_specifications_with_evaluation_estimators() -> None:
    """The batch report's YAML names the new estimators (schema) and runs them (executor)."""
    import json
    from pathlib import Path

    import jsonschema

    from cluster_econ.report.batch import SCHEMA_PATH, _estimate

    md = pytest.importorskip("moderndid")
    frame = md.load_mpdta().to_pandas().rename(columns={"first.treat": "g", "countyreal": "enterprise_id"})
    specs = [
        {"name": "cs", "formula": "lemp ~ 1", "estimator": "att_gt", "options": {"gname": "g", "est_method": "reg"}},
        {"name": "sa", "formula": "lemp ~ sunab(g, year) | enterprise_id + year", "estimator": "feols",
         "vcov": {"CRV1": "enterprise_id"}},
        {"name": "ri", "formula": "lemp ~ treat | year", "estimator": "feols",
         "options": {"randomization": {"param": "treat", "treatment": "treat", "cluster": "enterprise_id",
                                       "reps": 50}}},
    ]
    jsonschema.validate({"data": "demo", "specifications": specs}, json.loads(Path(SCHEMA_PATH).read_text()))
    cs = _estimate(specs[0], frame)
    assert cs.estimate == pytest.approx(-0.0772, abs=5e-5)  # the published dynamic ATT
    assert "year::0" in _estimate(specs[1], frame).params.index
    ri = _estimate(specs[2], frame)
    assert 0 <= ri.stats["ri_p_value"] <= 1 and ri.stats["ri_reps"] == 50
    lb = _attrition_data(400, np.random.default_rng(1))
    lee = _estimate({"name": "lee", "formula": "y ~ D", "estimator": "lee_bounds"}, lb)
    assert lee.lower <= lee.upper
