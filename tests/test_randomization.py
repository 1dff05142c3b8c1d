"""Randomization inference and Romano-Wolf / Westfall-Young adjustments.

Conventions: RI p-value = share of draws with |T*| >= |T| (Stata ritest, pyfixest ritest);
Romano-Wolf (count + 1)/(B + 1) step-down on |t| (rwolf, pyfixest); Westfall-Young free step-down
min-p, count / B (pyfixest wyoung). Checks: exact enumeration against a brute-force loop with
statsmodels OLS; the fast feols path against refitting on identical draws; the step-down arithmetic
against pyfixest's own functions; Holm against statsmodels.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

import cluster_econ as ce
from cluster_econ.errors import EstimationError
from cluster_econ.estimate.multiple_testing import romano_wolf_pvalues, westfall_young_pvalues


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    nf, T = 120, 5
    firm = np.repeat(np.arange(nf), T)
    year = np.tile(np.arange(T), nf)
    strat = rng.integers(0, 4, nf)
    tr = np.zeros(nf)
    for s in range(4):
        idx = np.flatnonzero(strat == s)
        tr[rng.choice(idx, len(idx) // 2, replace=False)] = 1
    post = (year >= 3).astype(float)
    x = rng.normal(size=nf * T)
    y = (0.3 * np.repeat(tr, T) * post + 0.3 * x + np.repeat(rng.normal(size=nf), T) + 0.1 * year
         + rng.normal(size=nf * T))
    return pd.DataFrame({"firm": firm, "year": year, "stratum": np.repeat(strat, T), "treated": np.repeat(tr, T),
                         "post": post, "x": x, "y": y, "sy": np.repeat(strat, T) * 10 + year})


@pytest.mark.parametrize("vcov", ["iid", "HC1", {"CRV1": "firm"}])
def test_fast_path_equals_refitting(panel: pd.DataFrame, vcov: object) -> None:
    fit = ce.feols("y ~ treated:post + x | firm + sy", panel, vcov=vcov)
    kw = dict(cluster="firm", strata="stratum", reps=60, seed=5)
    for stat in ("t", "coef"):
        fast = ce.randomization_inference(fit, panel, "treated:post", "treated", statistic=stat, **kw)
        slow = ce.randomization_inference(fit, panel, "treated:post", "treated", statistic=stat, fast=False, **kw)
        assert fast.method.startswith("fast") and slow.method == "refit"
        np.testing.assert_allclose(fast.draws, slow.draws, rtol=1e-8, atol=1e-10)
        assert fast.p_value == slow.p_value


def test_permutations_respect_strata_and_clusters(panel: pd.DataFrame) -> None:
    seen = []

    def record(rng: np.random.Generator, units: pd.DataFrame) -> np.ndarray:
        t = units["treatment"].to_numpy().copy()
        for s in np.unique(units["stratum"]):
            idx = np.flatnonzero(units["stratum"].to_numpy() == s)
            t[idx] = rng.permutation(t[idx])
        seen.append(t)
        return t

    fit = ce.feols("y ~ treated:post + x | firm + year", panel, vcov={"CRV1": "firm"})
    r = ce.randomization_inference(fit, panel, "treated:post", "treated", cluster="firm", strata="stratum",
                                   reps=20, assign=record)
    assert r.reps == 20 and len(seen) == 20
    units = ce.estimate.randomization.assignment_table(panel, "treated", "firm", "stratum")
    base = units.groupby("stratum")["treatment"].sum()
    for t in seen:
        assert (pd.Series(t).groupby(units["stratum"]).sum() == base).all()
    with pytest.raises(EstimationError, match="varies within"):
        ce.randomization_inference(fit, panel, "treated:post", "post", cluster="firm")


def test_exact_enumeration_matches_brute_force() -> None:
    import statsmodels.api as sm

    rng = np.random.default_rng(3)
    d = pd.DataFrame({"D": [1, 1, 1, 1, 0, 0, 0, 0, 0, 0.0], "x": rng.normal(size=10)})
    d["y"] = 0.8 * d["D"] + d["x"] + rng.normal(size=10)
    fit = ce.feols("y ~ D + x", d, vcov="HC1")
    r = ce.randomization_inference(fit, d, "D", "D", reps=1000)
    assert r.enumerated and r.reps == 210 and r.p_value_se == 0
    t_obs = sm.OLS(d["y"], sm.add_constant(d[["D", "x"]])).fit(cov_type="HC1").tvalues["D"]
    ts = []
    for comb in itertools.combinations(range(10), 4):
        Dp = np.zeros(10)
        Dp[list(comb)] = 1
        X = sm.add_constant(pd.DataFrame({"D": Dp, "x": d["x"]}))
        ts.append(sm.OLS(d["y"], X).fit(cov_type="HC1").tvalues["D"])
    ts = np.array(ts)
    assert r.statistic == pytest.approx(t_obs, rel=1e-10)
    assert r.p_value == pytest.approx(np.mean(np.abs(ts) >= abs(t_obs) - 1e-9), abs=1e-12)


def test_callable_model_any_estimator() -> None:
    """Any estimator: a logit coefficient, refitted per draw. With 120 units the randomization-t
    p-value is close to the asymptotic one (within Monte Carlo error plus a small-sample margin)."""
    rng = np.random.default_rng(9)
    d = pd.DataFrame({"D": rng.permutation(np.repeat([0.0, 1.0], 60)), "x": rng.normal(size=120)})
    d["y"] = (rng.random(120) < 1 / (1 + np.exp(-d["x"]))).astype(float)
    fit = ce.logit("y ~ D + x", d)
    r = ce.randomization_inference(lambda df: ce.logit("y ~ D + x", df), d, "D", "D", reps=399, seed=1)
    assert r.method == "refit" and r.estimate == pytest.approx(float(fit.params["D"]))
    p_asym = float(fit.pvalues["D"])
    assert abs(r.p_value - p_asym) < 4 * np.sqrt(p_asym * (1 - p_asym) / 399) + 0.01


def test_stepdown_matches_pyfixest() -> None:
    mc = pytest.importorskip("pyfixest.estimation.post_estimation.multcomp")
    rng = np.random.default_rng(1)
    for S in (1, 3, 7):
        t = rng.normal(size=S) * 2
        draws = rng.normal(size=(400, S))
        np.testing.assert_allclose(romano_wolf_pvalues(t, draws), mc._get_rwolf_pval(t.copy(), draws.copy()),
                                   atol=1e-15)
        p = rng.uniform(size=S) ** 2
        P = rng.uniform(size=(400, S))
        np.testing.assert_allclose(westfall_young_pvalues(p, P), mc._get_wyoung_pval(p.copy(), P.copy()),
                                   atol=1e-15)


def test_romano_wolf_many_outcomes() -> None:
    from statsmodels.stats.multitest import multipletests

    rng = np.random.default_rng(4)
    n = 200
    d = pd.DataFrame({"D": rng.permutation(np.repeat([0.0, 1.0], n // 2)), "x": rng.normal(size=n)})
    effects = [0.0, 0.0, 0.6]
    for j, b in enumerate(effects):
        d[f"y{j}"] = b * d["D"] + 0.5 * d["x"] + rng.normal(size=n)
    fits = [ce.feols(f"y{j} ~ D + x", d, vcov="HC1") for j in range(3)]
    rw = ce.romano_wolf(fits, d, "D", treatment="D", reps=299, seed=2)
    wy = ce.westfall_young(fits, d, "D", treatment="D", reps=299, seed=2)
    np.testing.assert_allclose(rw["p_holm"], multipletests(rw["p_value"], method="holm")[1])
    assert (rw["p_romano_wolf"] >= rw["p_value"] - 1e-12).all()  # adjustment never lowers p
    assert rw.loc[2, "p_romano_wolf"] < 0.05 < rw.loc[0, "p_romano_wolf"]  # the real effect survives
    assert wy.loc[2, "p_westfall_young"] < 0.05 < wy.loc[0, "p_westfall_young"]
    boot = ce.romano_wolf(fits, d, "D", method="bootstrap", reps=99, seed=2)
    assert boot["reps"].iloc[0] == 99 and boot.loc[2, "p_romano_wolf"] < 0.05


def test_experiment_pvalues_for_p9() -> None:
    from cluster_econ.estimate.multiple_testing import experiment_pvalues

    rng = np.random.default_rng(6)
    d = pd.DataFrame({"D": rng.permutation(np.repeat([0.0, 1.0], 50)), "x": rng.normal(size=100)})
    d["y0"] = d["x"] + rng.normal(size=100)
    d["y1"] = 0.9 * d["D"] + d["x"] + rng.normal(size=100)
    fits = [ce.feols(f"y{j} ~ D + x", d, vcov="HC1") for j in range(2)]
    out = experiment_pvalues(fits, d, "D", "D", reps=199, seed=3)
    single = ce.randomization_inference(fits[1], d, "D", "D", reps=199, seed=3)
    assert out.loc[1, "p_ri"] == single.p_value
    assert (out["p_romano_wolf"] >= out["p_ri"] - 1e-12).all() and out.loc[1, "p_romano_wolf"] < 0.05


# -- the batched fast path (unit, cell and row sums) against refitting -----------------------------
@pytest.fixture(scope="module")
def unbalanced() -> pd.DataFrame:
    """Firms randomized within strata, nested in 24 villages; a heteroskedastic outcome; 40 rows
    dropped at random (so the two-way demeaning iterates); ``cross`` crosses the firms."""
    rng = np.random.default_rng(11)
    nf, T = 96, 6
    firm = np.repeat(np.arange(nf), T)
    year = np.tile(np.arange(T), nf)
    tr = np.repeat((rng.random(nf) < 0.5).astype(float), T)
    d = pd.DataFrame({"firm": firm, "year": year, "village": np.repeat(rng.integers(0, 24, nf), T),
                      "stratum": np.repeat(rng.integers(0, 3, nf), T), "treated": tr,
                      "post": (year >= 3).astype(float), "x": rng.normal(size=nf * T), "x2": rng.normal(size=nf * T),
                      "cross": rng.integers(0, 25, nf * T)})
    d["y"] = (0.2 * tr * d["post"] + 0.3 * d["x"] + np.repeat(rng.normal(size=nf), T) + 0.1 * year
              + rng.normal(size=nf * T) * (1 + tr))
    return d.drop(index=rng.choice(len(d), 40, replace=False))


def _recorder(seen: list[np.ndarray]) -> Callable[[np.random.Generator, pd.DataFrame], np.ndarray]:
    def record(rng: np.random.Generator, units: pd.DataFrame) -> np.ndarray:
        t = units["treatment"].to_numpy().copy()
        for s in np.unique(units["stratum"]):
            idx = np.flatnonzero(units["stratum"].to_numpy() == s)
            t[idx] = rng.permutation(t[idx])
        seen.append(t)
        return t
    return record


@pytest.mark.parametrize(("formula", "vcov", "route"), [
    ("y ~ treated:post + x | firm + year", "iid", None),
    ("y ~ treated:post + x | firm + year", "HC1", "rows"),
    ("y ~ treated:post + x | firm + year", {"CRV1": "firm"}, "cells"),
    ("y ~ treated:post + x + x2 | firm + year", {"CRV1": "village"}, "cells"),  # clusters of several firms
    ("y ~ treated:post + x | firm + year", {"CRV1": "cross"}, "rows"),  # clusters crossing the firms
    ("y ~ treated + x | year", {"CRV1": "village"}, "cells"),  # no fixed effect nested in the firms
])
def test_batched_fast_path_equals_feols_refit(unbalanced: pd.DataFrame, formula: str, vcov: object,
                                              route: str | None) -> None:
    """Each draw's coefficient and t statistic (iid, HC1, CRV1 with the fit's small-sample
    multiplier, ssc="stata") equal refitting with feols on that assignment, to 1e-10."""
    from cluster_econ.estimate.randomization import _design
    from cluster_econ.estimate.randomization_fast import FastFeols

    param = "treated:post" if "post" in formula else "treated"
    fit = ce.feols(formula, unbalanced, vcov=vcov, tol=1e-13)
    des = _design(unbalanced, "treated", "firm", "stratum")
    engine = FastFeols(fit, unbalanced, param, "treated", des.unit_of_row, len(des.units))
    assert engine.batched("t") and engine.score_route == route
    for stat in ("coef", "t"):
        seen: list[np.ndarray] = []
        r = ce.randomization_inference(fit, unbalanced, param, "treated", cluster="firm", strata="stratum", reps=4,
                                       seed=3, statistic=stat, assign=_recorder(seen))
        assert "batched" in r.method
        for t_unit, got in zip(seen, r.draws, strict=True):
            refit = ce.feols(formula, unbalanced.assign(treated=t_unit[des.unit_of_row]), vcov=vcov, tol=1e-13)
            want = refit.params[param] if stat == "coef" else refit.tvalues[param]
            assert got == pytest.approx(want, rel=1e-10, abs=1e-10)


def test_batches_equal_one_draw_at_a_time_and_are_seeded(unbalanced: pd.DataFrame) -> None:
    """The batched route gives each draw the value of the per-draw route (rows swept one at a time)
    whatever the batch size, and the same seed gives byte-identical draws."""
    from cluster_econ.estimate.randomization import _design
    from cluster_econ.estimate.randomization_fast import FastFeols

    des = _design(unbalanced, "treated", "firm", "stratum")
    rng = np.random.default_rng(8)
    T = np.vstack([rng.permutation(des.treatment) for _ in range(7)])
    for vcov in ("iid", "HC1", {"CRV1": "firm"}, {"CRV1": "cross"}):
        fit = ce.feols("y ~ treated:post + x | firm + year", unbalanced, vcov=vcov)
        eng = FastFeols(fit, unbalanced, "treated:post", "treated", des.unit_of_row, len(des.units))
        one = np.array([eng.stats(t[eng.units]) for t in T])
        for stat, col in (("coef", 0), ("t", 1)):
            np.testing.assert_allclose(eng.batch(T, stat), one[:, col], rtol=1e-11, atol=1e-12)
            np.testing.assert_allclose(np.concatenate([eng.batch(T[i:i + 1], stat) for i in range(7)]),
                                       eng.batch(T, stat), rtol=1e-13, atol=1e-15)
        kw = dict(cluster="firm", strata="stratum", reps=300, seed=4)
        a = ce.randomization_inference(fit, unbalanced, "treated:post", "treated", **kw)
        b = ce.randomization_inference(fit, unbalanced, "treated:post", "treated", **kw)
        assert np.array_equal(a.draws, b.draws) and a.p_value == b.p_value


def test_weighted_and_unnested_fits_take_the_exact_routes(unbalanced: pd.DataFrame, monkeypatch) -> None:
    """A weighted fit is refitted (the fast path is unweighted); a largest fixed effect that is not
    nested in the randomization units (rows randomized, firm effects) is swept draw by draw."""
    import cluster_econ.estimate.randomization_fast as rf

    d = unbalanced.assign(w=np.random.default_rng(2).uniform(0.5, 2, len(unbalanced)))
    fit_w = ce.feols("y ~ treated:post + x | firm + year", d, vcov="HC1", weights="w")
    r = ce.randomization_inference(fit_w, d, "treated:post", "treated", cluster="firm", reps=5)
    assert r.method == "refit" and any("weighted" in n for n in r.notes)
    monkeypatch.setattr(rf, "MAX_SMALL_FE_LEVELS", 20)  # the firm effect must then be swept
    d = unbalanced.assign(treated=(np.random.default_rng(5).random(len(unbalanced)) < 0.5).astype(float))
    fit = ce.feols("y ~ treated:post + x | firm + year", d, vcov={"CRV1": "firm"})
    kw = dict(reps=6, seed=1)
    fast = ce.randomization_inference(fit, d, "treated:post", "treated", **kw)
    slow = ce.randomization_inference(fit, d, "treated:post", "treated", fast=False, **kw)
    assert fast.method.startswith("fast") and "batched" not in fast.method
    np.testing.assert_allclose(fast.draws, slow.draws, rtol=1e-9)
