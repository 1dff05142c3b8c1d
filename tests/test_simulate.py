"""Tests of the simulator: determinism, schema validity, phases, and recovery of the truth.

Recovery tolerances follow from the sample size: a statistic is compared with its true value
within 4 standard errors (binomial or normal s.e. from the sample; for model fits, the
estimator's own model-based s.e. as noted at each test). Switches are checked to move the
statistic away from the full model's truth by more than that tolerance.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os

import numpy as np
import pandas as pd
import pytest

from cluster_econ import schema
from cluster_econ.schema.validate import validate
from cluster_econ.simulate import INNOVATION_ITEMS, SimulationConfig, preset, simulate
from cluster_econ.simulate.config import regime_of

SEED = int(os.environ.get("CLUSTER_ECON_SIM_TEST_SEED", "11"))  # other seeds: robustness runs


@pytest.fixture(scope="module")
def sim():
    return simulate(preset="demo", seed=SEED)


def _switched(**flags):
    return simulate(preset("demo").with_switches(**flags), seed=SEED)


def _table_hashes(panel) -> dict[str, int]:
    return {name: int(pd.util.hash_pandas_object(df, index=True).sum())
            for name, df in panel.tables.items()}


# -- determinism, schema -------------------------------------------------------------------------
def test_same_seed_gives_identical_tables():
    a = simulate(preset="small", seed=5)
    b = simulate(preset="small", seed=5)
    c = simulate(preset="small", seed=6)
    assert set(a.panel.tables) == set(b.panel.tables)
    for name in a.panel.tables:
        pd.testing.assert_frame_equal(a.panel[name], b.panel[name])
    assert _table_hashes(a.panel) == _table_hashes(b.panel)
    assert _table_hashes(a.panel)["enterprise_year"] != _table_hashes(c.panel)["enterprise_year"]


def test_survey_layer_leaves_true_economy_unchanged():
    cfg = preset("small")
    exact = dataclasses.replace(cfg, survey=dataclasses.replace(cfg.survey, enabled=False))
    a = simulate(cfg, seed=2).truth.firm_year
    b = simulate(exact, seed=2).truth.firm_year
    cols = ["enterprise_id", "year", "omega", "log_employment", "schooling", "innovator", "exit"]
    pd.testing.assert_frame_equal(a[cols], b[cols])


def test_every_table_passes_strict_validation(sim):
    report = validate(sim.panel, mode="strict")
    assert report.ok


@pytest.mark.parametrize("table", ["enterprise", "manager", "enterprise_year", "rct_assignment",
                                   "deflator"])
def test_tables_have_exactly_the_schema_columns(sim, table):
    df = sim.panel[table]
    fields = schema.load(table).field_names
    canonical = [c for c in df.columns if not c.startswith("src_")]
    assert canonical == fields


def test_cluster_year_has_what_the_simulator_owns(sim):
    cy = sim.panel.cluster_year
    assert list(cy.columns) == ["cluster_id", "year", "price_index", "phase"]
    assert set(cy["phase"]) <= set(schema.load("cluster_year").field("phase").enum)


def test_panel_is_labelled_synthetic(sim):
    md = sim.panel.metadata
    assert md["synthetic"] is True and "SYNTHETIC" in md["label"]
    assert md["seed"] == SEED and md["preset"] == "demo"
    assert md["simulator_config"]["switches"]["no_shakeout"] is False
    assert "SYNTHETIC" in sim.panel.summary()


# -- phases ------------------------------------------------------------------------------------
def test_demo_has_clusters_in_every_phase(sim):
    cy = sim.panel.cluster_year
    per_cluster = cy.groupby("cluster_id")["phase"].agg(set)
    assert len(per_cluster) == 12
    assert sum("quality_improvement" in s for s in per_cluster) >= 6
    assert sum("stagnation" in s for s in per_cluster) >= 3
    assert all("initiation" in s and "quantity_expansion" in s for s in per_cluster)
    assert not any("stagnation" in s and "quality_improvement" in s for s in per_cluster)


def test_phase_order_and_truth_agree(sim):
    rank = {"initiation": 0, "quantity_expansion": 1, "stagnation": 2, "quality_improvement": 2}
    cy = sim.panel.cluster_year.sort_values(["cluster_id", "year"])
    for _, g in cy.groupby("cluster_id"):
        r = g["phase"].map(rank).to_numpy()
        assert (np.diff(r) >= 0).all()
    truth = sim.truth
    merged = cy.merge(truth.cluster_year[["cluster_id", "year", "phase"]], on=["cluster_id", "year"])
    assert (merged["phase_x"] == merged["phase_y"]).all()
    starts = truth.phase_starts.set_index("cluster_id")
    for cid, g in cy.groupby("cluster_id"):
        for p in ("initiation", "quantity_expansion", "quality_improvement", "stagnation"):
            years = g.loc[g["phase"] == p, "year"]
            expected = starts.loc[cid, f"{p}_start"]
            if len(years):
                assert int(years.min()) == int(expected)
            else:
                assert pd.isna(expected)


def test_stagnation_rule_follows_configuration():
    cfg = preset("small")
    late = dataclasses.replace(cfg, phases=dataclasses.replace(cfg.phases, stagnation_after=20))
    s = simulate(late, seed=1).truth.phase_starts.set_index("cluster_id")
    stuck = "ETH-ADDISABABA-FOOTWEAR"
    spec = next(c for c in cfg.clusters if c.cluster_id == stuck)
    assert s.loc[stuck, "stagnation_start"] == spec.start_year + spec.initiation_years + 20


# -- recovery of the truth -------------------------------------------------------------------------
def _entry_phase(panel) -> pd.Series:
    ent = panel.enterprise
    cy = panel.cluster_year
    key = ent[["cluster_id", "year_established"]].rename(columns={"year_established": "year"})
    key = key.assign(year=key["year"].astype("int64"))
    cy = cy.assign(year=cy["year"].astype("int64"))
    return key.merge(cy[["cluster_id", "year", "phase"]], on=["cluster_id", "year"],
                     how="left")["phase"]


def test_founder_origin_shares_by_phase_and_complexity(sim):
    ent = sim.panel.enterprise.assign(entry_phase=_entry_phase(sim.panel).to_numpy())
    known = ent[ent["founder_origin"] != "unknown"]
    truth = sim.truth.origin_shares
    checked = 0
    for (phase, cx), g in known.groupby(["entry_phase", "product_complexity"]):
        n = len(g)
        if n < 30:
            continue
        for origin in ("merchant", "engineer", "spinoff", "other"):
            p = truth[phase][cx][origin]
            share = float((g["founder_origin"] == origin).mean())
            se = math.sqrt(max(p * (1 - p), 1e-4) / n)   # binomial s.e. at the true p
            assert abs(share - p) <= 4 * se, (phase, cx, origin, share, p, n)
            checked += 1
    assert checked >= 20
    # the proposition itself: merchants found simple-product clusters, engineers complex ones
    init = known[ent.loc[known.index, "entry_phase"] == "initiation"]
    simple = init[init["product_complexity"] == "simple"]["founder_origin"]
    complex_ = init[init["product_complexity"] == "complex"]["founder_origin"]
    assert (simple == "merchant").mean() > (simple == "engineer").mean()
    assert (complex_ == "engineer").mean() > (complex_ == "merchant").mean()


def test_spinoff_share_in_expansion(sim):
    ent = sim.panel.enterprise.assign(entry_phase=_entry_phase(sim.panel).to_numpy())
    qe = ent[ent["entry_phase"].isin(["quantity_expansion", "stagnation"])
             & (ent["founder_origin"] != "unknown")]
    p = sim.truth.spinoff_share["quantity_expansion"]["simple"]
    assert p == sim.truth.spinoff_share["quantity_expansion"]["complex"]
    share = float((qe["founder_origin"] == "spinoff").mean())
    assert abs(share - p) <= 4 * math.sqrt(p * (1 - p) / len(qe))
    # spin-offs have a recorded parent unless the survey lost it; parents are incumbents
    spin = ent[ent["founder_origin"] == "spinoff"]
    has_parent = spin["spinoff_parent_id"].notna()
    assert has_parent.mean() > 0.9
    par = ent.set_index("enterprise_id").loc[spin.loc[has_parent, "spinoff_parent_id"]]
    assert (par["year_established"].to_numpy() <= spin.loc[has_parent, "year_established"]
            .to_numpy()).all()
    assert (par["cluster_id"].to_numpy() == spin.loc[has_parent, "cluster_id"].to_numpy()).all()
    # spin-offs make their parent's product line with probability inherit + (1 - inherit) / V
    inherit = sim.truth.product_inherit_prob
    n_lines = {c.cluster_id: len(c.product_variants) for c in sim.config.clusters}
    p_same = inherit + (1 - inherit) / spin.loc[has_parent, "cluster_id"].map(n_lines)
    same = par["product"].to_numpy() == spin.loc[has_parent, "product"].to_numpy()
    se = math.sqrt(float((p_same * (1 - p_same)).sum())) / len(same)
    assert abs(same.mean() - p_same.mean()) <= 4 * se


def test_manager_table_conventions(sim):
    man = sim.panel.manager
    ent = sim.panel.enterprise.set_index("enterprise_id")
    assert set(man["enterprise_id"]) == set(ent.index)
    succ = man[man["role"] == "successor"]
    assert len(succ) > 100
    assert (succ["manager_id"] == "1").all() and (succ["generation"] == 2).all()
    handed_over = man[man["enterprise_id"].isin(succ["enterprise_id"]) & (man["role"] == "founder")]
    assert (handed_over["manager_id"] == "2").all()
    est = ent.loc[succ["enterprise_id"], "year_established"].to_numpy()
    assert (succ["start_year"].to_numpy() > est).all()
    # successors are the educated second generation
    assert succ["schooling_years"].mean() > man.loc[man["role"] == "founder", "schooling_years"].mean()


def test_founder_schooling_by_entry_phase(sim):
    man = sim.panel.manager
    founders = man[man["role"] == "founder"].set_index("enterprise_id")["schooling_years"]
    ent = sim.panel.enterprise.assign(entry_phase=_entry_phase(sim.panel).to_numpy())
    ent = ent.assign(schooling=ent["enterprise_id"].map(founders)).dropna(subset=["schooling"])
    expected = sim.truth.mean_schooling["entrant_founders"]
    for (phase, cx), g in ent.groupby(["entry_phase", "product_complexity"]):
        if len(g) < 30:
            continue
        se = g["schooling"].std(ddof=1) / math.sqrt(len(g))
        assert abs(g["schooling"].mean() - expected[phase][cx]) <= 4 * se, (phase, cx)
    by_phase = ent.groupby("entry_phase")["schooling"].mean()
    assert by_phase["quality_improvement"] > by_phase["quantity_expansion"] + 2


def test_exit_rates_by_phase_match_the_hazard(sim):
    """Observed exit frequency by phase (survey rows) vs the mean true exit probability."""
    fy = sim.truth.firm_year
    h = sim.truth.exit_hazard
    eta = (fy["phase"].map(h["baseline"]) + fy["phase"].map(h["innovator_log_hazard_ratio"])
           * fy["innovator"] + h["size_effect"] * (fy["log_employment"] - math.log(10.0)))
    p = -np.expm1(-np.exp(eta))
    ey = sim.panel.enterprise_year.merge(
        fy.assign(p=p)[["enterprise_id", "year", "phase", "p"]], on=["enterprise_id", "year"])
    for phase, g in ey.groupby("phase"):
        rate = float(g["exit"].astype(bool).mean())
        se = math.sqrt(float((g["p"] * (1 - g["p"])).sum())) / len(g)
        assert abs(rate - g["p"].mean()) <= 4 * se, phase
    rates = ey.groupby("phase")["exit"].apply(lambda s: s.astype(bool).mean())
    assert rates["quality_improvement"] > rates["quantity_expansion"]


def _cloglog_innovator_effects(truth) -> tuple[pd.Series, pd.Series]:
    import statsmodels.api as sm

    fy = truth.firm_year
    regime = fy["phase"].map(regime_of)
    X = pd.DataFrame({
        f"base_{r}": (regime == r).astype(float) for r in
        ("initiation", "quantity_expansion", "quality_improvement")})
    for r in ("quantity_expansion", "quality_improvement"):
        X[f"innov_{r}"] = ((regime == r) & fy["innovator"]).astype(float)
    X["size"] = fy["log_employment"] - math.log(10.0)
    fam = sm.families.Binomial(link=sm.families.links.CLogLog())
    res = sm.GLM(fy["exit"].astype(float), X, family=fam).fit()   # model-based (OIM) s.e.
    return res.params, res.bse


def test_shakeout_hazard_ratio_recovered(sim):
    params, bse = _cloglog_innovator_effects(sim.truth)
    h = sim.truth.exit_hazard
    for r in ("quantity_expansion", "quality_improvement"):
        assert abs(params[f"innov_{r}"] - h["innovator_log_hazard_ratio"][r]) <= 4 * bse[f"innov_{r}"]
        assert abs(params[f"base_{r}"] - h["baseline"][r]) <= 4 * bse[f"base_{r}"]
    assert abs(params["size"] - h["size_effect"]) <= 4 * bse["size"]


def test_no_shakeout_switch_removes_the_innovator_gap():
    s = _switched(no_shakeout=True)
    params, bse = _cloglog_innovator_effects(s.truth)
    full = preset("demo").exit
    assert s.truth.exit_hazard["innovator_log_hazard_ratio"]["quality_improvement"] == \
        full.innovator_effect["quantity_expansion"]
    # the estimate is far from the full model's -1.2 and close to the expansion value
    assert abs(params["innov_quality_improvement"] - full.innovator_effect["quality_improvement"]) \
        > 4 * bse["innov_quality_improvement"]
    assert abs(params["innov_quality_improvement"] - full.innovator_effect["quantity_expansion"]) \
        <= 4 * bse["innov_quality_improvement"]


def _schooling_slope(truth, panel, item: str, phase: str) -> tuple[float, float]:
    import statsmodels.api as sm

    fy = truth.firm_year[["enterprise_id", "year", "phase", "schooling"]]
    ey = panel.enterprise_year[["enterprise_id", "year", item]].merge(fy, on=["enterprise_id", "year"])
    d = ey[(ey["phase"] == phase) & ey[item].notna()]
    X = sm.add_constant(d["schooling"].to_numpy(dtype=float) - truth.schooling_center)
    res = sm.Logit(d[item].astype(float).to_numpy(), X).fit(disp=0)   # OIM s.e.
    return float(res.params[1]), float(res.bse[1])


@pytest.mark.parametrize("item", ["new_product", "own_brand"])
def test_schooling_slopes_of_innovation_recovered(sim, item):
    truth = sim.truth
    for phase in ("quantity_expansion", "quality_improvement"):
        b, se = _schooling_slope(truth, sim.panel, item, phase)
        assert abs(b - truth.schooling_slopes[item][phase]) <= 4 * se, (item, phase, b)
    assert truth.schooling_slopes[item]["quality_improvement"] > \
        truth.schooling_slopes[item]["quantity_expansion"]


def test_equal_schooling_slopes_switch():
    s = _switched(equal_schooling_slopes=True)
    full = preset("demo").innovation.slope["new_product"]
    b, se = _schooling_slope(s.truth, s.panel, "new_product", "quality_improvement")
    assert s.truth.schooling_slopes["new_product"]["quality_improvement"] == full["quantity_expansion"]
    assert abs(b - full["quantity_expansion"]) <= 4 * se
    assert abs(b - full["quality_improvement"]) > 4 * se


def _imitation_slope(truth) -> tuple[float, float, int]:
    f = truth.firms
    sp = f[f["origin"] == "spinoff"]
    x = sp["parent_omega"].to_numpy()
    y = sp["omega_entry"].to_numpy()
    X = np.column_stack([np.ones_like(x), x])
    beta, *_ = np.linalg.lstsq(X, y, rcond=None)
    resid = y - X @ beta
    s2 = resid @ resid / (len(y) - 2)
    se = math.sqrt(s2 * np.linalg.inv(X.T @ X)[1, 1])   # classical OLS s.e.
    return float(beta[1]), se, len(y)


def test_imitation_elasticity_recovered(sim):
    b, se, n = _imitation_slope(sim.truth)
    assert n > 500
    assert abs(b - sim.truth.imitation_elasticity) <= 4 * se


def test_no_spinoff_imitation_switch():
    s = _switched(no_spinoff_imitation=True)
    b, se, _ = _imitation_slope(s.truth)
    assert s.truth.imitation_elasticity == 0.0
    assert abs(b) <= 4 * se
    assert abs(b - preset("demo").founders.imitation_elasticity) > 4 * se


def test_entry_semi_elasticity_recovered(sim):
    import statsmodels.api as sm

    cfg = sim.config
    cy = sim.truth.cluster_year.sort_values(["cluster_id", "year"]).copy()
    scale = {c.cluster_id: c.n_scale for c in cfg.clusters}
    cy["n_prev"] = cy.groupby("cluster_id")["n_firms"].shift() - cy.groupby("cluster_id")["n_exits"].shift()
    cy["margin_prev"] = cy.groupby("cluster_id")["margin"].shift()
    d = cy[cy["phase"] != "initiation"].dropna(subset=["n_prev", "margin_prev"])
    regime = d["phase"].map(regime_of)
    base = (regime.map(cfg.entry.rate) * d["n_prev"]
            + regime.map(cfg.entry.outside_rate) * d["cluster_id"].map(scale))
    X = sm.add_constant((d["margin_prev"] - cfg.entry.margin_ref).to_numpy())
    res = sm.GLM(d["n_entries"].to_numpy(float), X, family=sm.families.Poisson(),
                 offset=np.log(base.to_numpy(float))).fit()     # model-based s.e.
    theta = sim.truth.entry["margin_semi_elasticity"]
    assert abs(res.params[1] - theta) <= 4 * res.bse[1]
    assert abs(res.params[0]) <= 4 * res.bse[0]


def _mean_omega_changes(truth, phase: str, min_years: int = 1) -> tuple[np.ndarray, float]:
    """Per cluster, the change of the cluster's mean log productivity (mean_omega over every firm
    of the true economy) from the first to the last year of ``phase``; and the standard error of
    the average change over those clusters.

    The s.e. takes the number of firms from the data: a cluster-year mean of n firms has s.e.
    sd / sqrt(n) with sd the stationary sd of omega, and the first- and last-year means are
    treated as independent (the firms mostly differ after a decade of entry and exit, and omega's
    autocorrelation rho^T is small), so one cluster's change has variance
    sd^2 (1 / n_first + 1 / n_last) and the average over C clusters sqrt(sum of those) / C.
    """
    sd = truth.production["omega_sd_stationary"]
    n = truth.firm_year.groupby(["cluster_id", "year"]).size()
    cy = truth.cluster_year.sort_values(["cluster_id", "year"])
    changes, variances = [], []
    for _, g in cy.groupby("cluster_id"):
        g = g[g["phase"] == phase]
        if len(g) < max(min_years, 2):
            continue
        first, last = g.iloc[0], g.iloc[-1]
        n_first, n_last = n[(first["cluster_id"], first["year"])], n[(last["cluster_id"], last["year"])]
        changes.append(last["mean_omega"] - first["mean_omega"])
        variances.append(sd**2 * (1 / n_first + 1 / n_last))
    return np.asarray(changes), math.sqrt(sum(variances)) / len(changes)


def test_expansion_prices_fall_and_productivity_is_flat(sim):
    cy = sim.truth.cluster_year.sort_values(["cluster_id", "year"])
    falls = []
    for _, g in cy.groupby("cluster_id"):
        qe = g[g["phase"] == "quantity_expansion"]
        falls.append(np.log(qe["price_index"].iloc[-1]) - np.log(qe["price_index"].iloc[0]))
    assert all(f < 0 for f in falls)
    # the average change of mean productivity over the expansion is within 4 s.e. of zero
    flat, se = _mean_omega_changes(sim.truth, "quantity_expansion")
    assert len(flat) == len(falls)
    assert abs(flat.mean()) <= 4 * se


def test_productivity_rises_in_quality_improvement_unless_switched_off(sim):
    gains, se = _mean_omega_changes(sim.truth, "quality_improvement", min_years=5)
    assert len(gains) >= 5
    assert gains.mean() > 4 * se
    flat_gains, flat_se = _mean_omega_changes(_switched(flat_productivity=True).truth, "quality_improvement",
                                              min_years=5)
    assert abs(flat_gains.mean()) <= 4 * flat_se


def _cr4_rise_in_quality_improvement(cluster_year: pd.DataFrame, phases: pd.DataFrame) -> np.ndarray:
    """Per cluster with at least five quality-improvement years: mean CR4 of its last three such years
    minus that of its first three."""
    cy = cluster_year.drop(columns=["phase"], errors="ignore").merge(
        phases[["cluster_id", "year", "phase"]], on=["cluster_id", "year"]).sort_values(["cluster_id", "year"])
    ups = []
    for _, g in cy.groupby("cluster_id"):
        qi = g[g["phase"] == "quality_improvement"]
        if len(qi) >= 5:
            ups.append(qi["cr4"].iloc[-3:].mean() - qi["cr4"].iloc[:3].mean())
    return np.array(ups)


def test_concentration_rises_in_quality_improvement(sim):
    truth = sim.truth.cluster_year
    assert (_cr4_rise_in_quality_improvement(truth, truth) > 0).sum() >= 6
    # the panel's own CR4, computed from surveyed sales by the cluster-year aggregates, shows it too
    observed = _cr4_rise_in_quality_improvement(sim.panel.with_cluster_year().cluster_year, truth)
    assert len(observed) >= 6 and (observed > 0).sum() >= 6
    # and it comes from the large-firm mechanism: switched off (same seed, same clusters), the rise is
    # smaller in every cluster pair on average by more than 3 standard errors of the paired difference
    off = _switched(no_large_firms=True)
    observed_off = _cr4_rise_in_quality_improvement(off.panel.with_cluster_year().cluster_year,
                                                    off.truth.cluster_year)
    diff = observed - observed_off
    assert diff.mean() > 3 * diff.std(ddof=1) / np.sqrt(len(diff))


def test_institutions_by_phase(sim):
    ey = sim.panel.enterprise_year.merge(sim.truth.firm_year[["enterprise_id", "year", "phase"]],
                                         on=["enterprise_id", "year"])
    parts = ey.groupby("phase")["parts_market_share"].mean()
    assert parts["quantity_expansion"] > parts["quality_improvement"] > parts["initiation"]
    for item in ("own_brand", "direct_sales", "long_term_subcontract", "quality_certification"):
        share = ey.groupby("phase")[item].apply(lambda s: s.dropna().astype(float).mean())
        assert share["quality_improvement"] > share["quantity_expansion"], item


def test_production_elasticities_exact_without_survey_noise():
    """With the survey layer off, log real value added built from the tables equals
    beta_l log L + beta_k log K + omega + training shift + eps (eps ~ N(0, sigma_eps))."""
    cfg = preset("small")
    cfg = dataclasses.replace(cfg, survey=dataclasses.replace(cfg.survey, enabled=False))
    s = simulate(cfg, seed=4)
    p = s.panel
    ey = p.enterprise_year.merge(p.enterprise[["enterprise_id", "cluster_id", "country"]],
                                 on="enterprise_id")
    ey = ey.merge(p.deflator[["country", "year", "price_index"]], on=["country", "year"])
    ey = ey.merge(p.cluster_year.rename(columns={"price_index": "cluster_price"})
                  [["cluster_id", "year", "cluster_price"]], on=["cluster_id", "year"])
    lcu = ey["country"].map(s.truth.production["lcu_per_unit"])
    money = ey["price_index"] * lcu
    log_v = np.log(ey["value_added"] / (money * ey["cluster_price"]))
    log_k = np.log(ey["capital_stock"] / money)
    fy = s.truth.firm_year.set_index(["enterprise_id", "year"])
    key = pd.MultiIndex.from_frame(ey[["enterprise_id", "year"]].astype({"year": "int64"}))
    omega = fy.loc[key, "omega"].to_numpy() + fy.loc[key, "training_shift"].to_numpy()
    X = np.column_stack([np.log(ey["employment"]), log_k])
    y = log_v.to_numpy() - omega
    beta, *_ = np.linalg.lstsq(np.column_stack([np.ones(len(y)), X]), y, rcond=None)
    resid = y - np.column_stack([np.ones(len(y)), X]) @ beta
    se = resid.std() * np.sqrt(np.diag(np.linalg.inv(
        np.column_stack([np.ones(len(y)), X]).T @ np.column_stack([np.ones(len(y)), X]))))
    assert abs(beta[1] - s.truth.production["beta_l"]) <= 4 * se[1]
    assert abs(beta[2] - s.truth.production["beta_k"]) <= 4 * se[2]
    # the sample sd of n normal residuals has s.e. sigma / sqrt(2 (n - 1)); n from the data
    sigma = s.truth.production["sigma_eps"]
    assert abs(resid.std() - sigma) <= 4 * sigma / math.sqrt(2 * (len(resid) - 1))
    # proxies: materials and (non-zero) investment are exact increasing functions of omega
    planned = (s.truth.production["beta_l"] * np.log(ey["employment"])
               + s.truth.production["beta_k"] * log_k + fy.loc[key, "omega"].to_numpy())
    ratio = np.log(ey["material_cost"] / money) - planned
    assert ratio.std() < 1e-5   # the deflator table is rounded to 6 decimals
    inv = ey["investment"] > 0
    rate = np.log(ey.loc[inv, "investment"] / ey.loc[inv, "capital_stock"])
    assert np.corrcoef(rate, fy.loc[key, "omega"].to_numpy()[inv.to_numpy()])[0, 1] > 1 - 1e-9
    assert 0.05 < (~inv).mean() < 0.15


def _training_itt(sim) -> tuple[float, float, float, float]:
    """ITT on the management score: difference of firm means after assignment (treated minus
    control), with the two-sample s.e.; and the Wald TOT (ITT / take-up difference)."""
    rct = sim.panel.rct_assignment
    ey = sim.panel.enterprise_year.merge(rct, on="enterprise_id")
    post = ey[(ey["year"] > ey["assignment_year"]) & ey["management_score"].notna()]
    firm = post.groupby("enterprise_id").agg(score=("management_score", "mean"),
                                             treat=("treatment", "first"))
    t = firm.loc[firm["treat"].astype(bool), "score"]
    c = firm.loc[~firm["treat"].astype(bool), "score"]
    itt = float(t.mean() - c.mean())
    se = math.sqrt(t.var(ddof=1) / len(t) + c.var(ddof=1) / len(c))
    takeup = float(rct.loc[rct["treatment"].astype(bool), "attended"].astype(float).mean())
    return itt, se, itt / takeup, se / takeup


def test_training_itt_and_tot_recovered(sim):
    truth = sim.truth.training
    assert len(truth["clusters"]) >= 2
    rct = sim.panel.rct_assignment
    assert not rct.loc[~rct["treatment"].astype(bool), "attended"].astype(bool).any()
    assert 0.5 < rct.loc[rct["treatment"].astype(bool), "attended"].astype(float).mean() < 1.0
    itt, se, tot, se_tot = _training_itt(sim)
    assert abs(itt - truth["itt_management"]) <= 4 * se
    assert abs(tot - truth["tot_management"]) <= 4 * se_tot
    off = _switched(no_training_effect=True)
    itt0, se0, _, _ = _training_itt(off)
    assert abs(itt0) <= 4 * se0
    assert abs(itt0 - truth["itt_management"]) > 4 * se0


def test_training_raises_value_added_later(sim):
    import statsmodels.formula.api as smf

    rct = sim.panel.rct_assignment
    ey = sim.panel.enterprise_year.merge(rct, on=["enterprise_id"])
    ey = ey[ey["value_added"] > 0].assign(lva=lambda d: np.log(d["value_added"]))
    lag = sim.config.training.va_lag
    pre = ey[ey["year"] < ey["assignment_year"]].groupby("enterprise_id")["lva"].mean()
    post = ey[ey["year"] >= ey["assignment_year"] + lag].groupby("enterprise_id")["lva"].mean()
    d = pd.DataFrame({"change": post - pre}).dropna().join(
        rct.set_index("enterprise_id")[["treatment", "cluster_id"]])
    d["treatment"] = d["treatment"].astype(float)
    res = smf.ols("change ~ treatment + C(cluster_id)", data=d).fit(cov_type="HC1")  # HC1 s.e.
    truth = sim.truth.training["itt_log_value_added"]
    assert abs(res.params["treatment"] - truth) <= 4 * res.bse["treatment"]


# -- survey realism ------------------------------------------------------------------------------
def test_survey_realism(sim):
    ey = sim.panel.enterprise_year
    ent = sim.panel.enterprise
    recall = ey["recall"].astype(bool)
    assert 0.3 < recall.mean() < 0.9
    assert ey.loc[recall, "management_score"].isna().all()
    assert ey.loc[~recall, "management_score"].notna().mean() > 0.9
    for col in ("sales", "employment", "new_product"):
        assert 0 < ey[col].isna().mean() < 0.1
    # money is rounded to three significant digits
    s = ey["sales"].dropna()
    mag = 10 ** (np.floor(np.log10(s)) - 2)
    assert np.allclose(s / mag, np.round(s / mag))
    # exits are flagged in the last observed year; attrited firms simply stop
    last = ey.groupby("enterprise_id")["year"].max()
    exits = ey[ey["exit"].astype(bool)].set_index("enterprise_id")["year"]
    assert (last.loc[exits.index] == exits).all()
    ent = ent.set_index("enterprise_id")
    assert (ent.loc[exits.index, "exit_year"].astype(int) == exits).all()
    truth_firms = sim.truth.firms.set_index("enterprise_id")
    attrited = truth_firms["last_surveyed_year"] < truth_firms["exit_year"].fillna(9999)
    attrited &= truth_firms["last_surveyed_year"] < truth_firms["entry_year"] + 29
    assert attrited.sum() > 100
    assert ent.loc[attrited[attrited].index, "exit_year"].isna().all()
    # nominal money: sales of the same firm rise with the deflator on average
    assert (sim.panel.deflator.groupby("country")["price_index"].apply(
        lambda s: s.is_monotonic_increasing)).all()


def test_exact_survey_has_no_missing_values():
    cfg = preset("small")
    exact = dataclasses.replace(cfg, survey=dataclasses.replace(cfg.survey, enabled=False))
    s = simulate(exact, seed=3)
    ey = s.panel.enterprise_year
    for col in ("sales", "employment", "value_added", "new_product", "parts_market_share"):
        assert ey[col].notna().all()
    assert not ey["recall"].astype(bool).any()
    assert len(ey) == len(s.truth.firm_year)


# -- configuration and scaling -----------------------------------------------------------------------
def test_n_firms_scales_the_universe():
    s = simulate(preset="small", seed=1, n_firms=700)
    assert 0.75 * 700 < len(s.panel.enterprise) < 1.25 * 700


def test_bad_configuration_is_rejected():
    cfg = preset("small")
    bad = dataclasses.replace(cfg, clusters=(dataclasses.replace(
        cfg.clusters[0], product_complexity="medium"),))
    with pytest.raises(ValueError, match="product_complexity"):
        simulate(bad)
    with pytest.raises(ValueError, match="unknown switches"):
        cfg.with_switches(no_such_thing=True)
    with pytest.raises(ValueError, match="unknown preset"):
        simulate(preset="nope")
    with pytest.raises(ValueError, match="no clusters"):
        simulate(SimulationConfig(clusters=()))
    assert len(SimulationConfig().clusters) == 12   # the default tree is complete


def test_config_round_trips_to_plain_dict():
    d = preset("demo").to_dict()
    assert d["switches"]["equal_schooling_slopes"] is False
    assert set(d["innovation"]["slope"]) == set(INNOVATION_ITEMS)
    assert len(d["clusters"]) == 12


def test_simulate_command_writes_a_panel(tmp_path):
    from cluster_econ.io.parquet import read_panel
    from cluster_econ.simulate import command

    parser = argparse.ArgumentParser()
    command.register(parser.add_subparsers())
    out = tmp_path / "sim"
    args = parser.parse_args(["simulate", "--preset", "small", "--seed", "2", "--out", str(out),
                              "--truth"])
    assert args.func(args) == 0
    back = read_panel(str(out))
    assert back.metadata["synthetic"] is True
    direct = simulate(preset="small", seed=2).panel
    assert len(back.enterprise_year) == len(direct.enterprise_year)
    assert (out / "truth.json").exists() and (out / "truth" / "firm_year.parquet").exists()
    with pytest.raises(SystemExit):
        parser.parse_args(["simulate", "--preset", "nope", "--out", str(out)])


def test_cli_main_runs_simulate(tmp_path):
    from cluster_econ.cli import main

    out = tmp_path / "cli"
    assert main(["simulate", "--preset", "small", "--seed", "1", "--firms", "300",
                 "--out", str(out)]) == 0
    assert (out / "manifest.json").exists()
    assert main(["simulate", "--preset", "small", "--firms", "0", "--out", str(out)]) == 2
