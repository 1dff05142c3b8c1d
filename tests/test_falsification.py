"""The falsification matrix, the power calculator and the power every verdict reports.

Fast checks run small designs (the three-cluster ``small`` preset, one or two seeds): the
machinery (tasks, determinism whatever the number of workers, files, requirements, command
lines). The Monte Carlo of size and power of every proposition at the demo design is the slow
test at the end (``-m slow``). Standard errors of the verdicts are the propositions' defaults
(CRV1 by cluster_id, t with G - 1 degrees of freedom; CRV1 by enterprise_id for P9).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import cluster_econ.hypotheses as hyp
from cluster_econ.errors import ConfigError
from cluster_econ.hypotheses.calculator import SurveyDesign, window_start
from cluster_econ.hypotheses.falsification import FalsificationMatrix, falsification, size_band, switch_names
from cluster_econ.hypotheses.montecarlo import FULL_MODEL, parallel_map
from cluster_econ.hypotheses.result import Check

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


# -- the power a verdict reports -------------------------------------------------------------------
@pytest.mark.parametrize("df", [None, 11.0])
def test_check_power_and_minimum_detectable_effect(df):
    c = Check("x", "x", estimate=0.3, std_error=0.1, expected_sign=1, null=0.0, df=df)
    # at the null the power is the level; at the minimum detectable effect it is 0.8 (exact for
    # the normal reference, the usual planning approximation for t)
    assert c.power_against(0.0, 0.05) == pytest.approx(0.05, abs=1e-12)
    mde = c.mde(0.05)
    crit = stats.norm.isf(0.05) if df is None else stats.t.isf(0.05, df)
    assert mde == pytest.approx((crit + (stats.norm.ppf(0.8) if df is None else stats.t.ppf(0.8, df))) * 0.1)
    if df is None:
        assert c.power_against(mde, 0.05) == pytest.approx(0.8, abs=1e-12)
    else:
        assert c.power_against(0.25, 0.05) == pytest.approx(stats.nct.sf(crit, df, 2.5), rel=1e-12)
        assert 0.75 < c.power_against(mde, 0.05) < 0.85
    # the sign of the claim: a negative claim has power against negative effects
    neg = Check("x", "x", estimate=-0.3, std_error=0.1, expected_sign=-1, null=0.0, df=df)
    assert neg.power_against(-0.25, 0.05) == pytest.approx(c.power_against(0.25, 0.05))
    assert neg.power_against(0.25, 0.05) < 0.05


def test_holm_and_benjamini_hochberg_match_statsmodels():
    from statsmodels.stats.multitest import multipletests

    from cluster_econ.hypotheses.result import benjamini_hochberg, holm

    rng = np.random.default_rng(7)
    for _ in range(100):
        p = rng.random(int(rng.integers(1, 15))) ** 2
        p[-1] = p[0]  # a tie
        np.testing.assert_allclose(holm(p), multipletests(p, method="holm")[1], rtol=0, atol=1e-12)
        np.testing.assert_allclose(benjamini_hochberg(p), multipletests(p, method="fdr_bh")[1], rtol=0, atol=1e-12)


def test_every_builtin_proposition_names_its_mechanisms_and_reference_effects():
    names = set(switch_names())
    for pid in hyp.ids():
        spec = hyp.get(pid)
        assert spec.mechanisms, pid
        assert set(spec.mechanisms) <= names, pid
        assert spec.reference_effects, pid


def test_verdicts_report_their_power_on_the_demo():
    from cluster_econ.datasets import demo

    panel = demo()
    fam = hyp.test_all(panel, ids=["P4", "P9"])
    for r in fam:
        assert 0 < r.power <= 1, r.summary()
        v = r.checks[r.checks["role"] == "verdict"]
        assert v["power"].notna().all() and (v["mde"] > 0).all()
        assert r.power == pytest.approx(float(v["power"].prod()))
        assert "power" in r.summary_line and "power" in r.summary()
    assert "power" in fam.tidy().columns


# -- productivity estimated from the data ----------------------------------------------------------
def test_productivity_is_estimated_from_the_panel_not_assumed():
    """The default productivity of P2, P3, P7: elasticities estimated from the demo panel (survey
    error on), within 4 of their standard errors (the GMM sandwich clustered by enterprise of
    hypotheses.productivity) of the simulator's 0.6 and 0.3; a panel too short for the estimator
    gives "cannot test" (not estimable), not a number (two survey years leave the dynamic panel
    without enough lagged instruments)."""
    from cluster_econ.datasets import demo

    panel = demo()
    data = hyp.prepare(panel)
    prod = data.productivity
    assert prod.status == "ok" and "estimate_productivity" in prod.note
    se = np.sqrt(np.diag(prod.cov))
    assert abs(prod.beta_l - 0.6) < 4 * se[0] and abs(prod.beta_k - 0.3) < 4 * se[1], (prod.note, se)
    assert 0.005 < se[0] < 0.1 and 0.005 < se[1] < 0.1
    fy = data.firm_year
    inputs = fy[["log_va_q", "log_l", "log_k"]].notna().all(axis=1)
    assert (fy["tfp"].notna() == inputs).all()
    np.testing.assert_allclose(fy["tfp"][inputs], (fy["log_va_q"] - prod.beta_l * fy["log_l"]
                                                   - prod.beta_k * fy["log_k"])[inputs], rtol=0, atol=1e-9)
    ey = panel.enterprise_year
    two_years = panel.replace(enterprise_year=ey[ey["year"].astype(int).isin([1995, 1996])].reset_index(drop=True))
    r = hyp.test(two_years, "P3")
    assert r.verdict == "cannot test" and "productivity not estimated" in r.message, r.message
    assert r.extra["reason"] == "not estimable"


# -- the Monte Carlo machinery ---------------------------------------------------------------------
def _square(x: int) -> int:
    return x * x


def test_parallel_map_keeps_the_order_whatever_the_workers():
    assert parallel_map(_square, range(7), workers=1) == [x * x for x in range(7)]
    assert parallel_map(_square, range(7), workers=2) == [x * x for x in range(7)]


@pytest.fixture(scope="module")
def small_matrix():
    return falsification(replications=2, seed=3, workers=1, propositions=["P4", "P6"],
                         switches=["no_shakeout", "equal_schooling_slopes"], preset="small")


def test_falsification_is_the_same_whatever_the_number_of_workers(small_matrix):
    again = falsification(replications=2, seed=3, workers=2, propositions=["P4", "P6"],
                          switches=["no_shakeout", "equal_schooling_slopes"], preset="small")
    pd.testing.assert_frame_equal(small_matrix.runs, again.runs)
    runs = small_matrix.runs
    assert len(runs) == 2 * 3 * 2
    assert sorted(runs["seed"].unique()) == [3, 4]
    assert set(runs["universe"]) == {FULL_MODEL, "no_shakeout", "equal_schooling_slopes"}
    assert runs["verdict"].isin(hyp.VERDICTS).all() and not (runs["verdict"] == "error").any()
    assert all(isinstance(json.loads(c), dict) for c in runs["checks"])


def test_falsification_cells_roles_and_files(small_matrix, tmp_path):
    cells = small_matrix.cells().set_index(["proposition", "universe"])
    assert cells.loc[("P6", "no_shakeout"), "role"] == "own mechanism off"
    assert cells.loc[("P4", "no_shakeout"), "role"] == "unrelated switch"
    assert cells.loc[("P4", FULL_MODEL), "role"] == "full model"
    assert list(small_matrix.rates().index) == ["P4", "P6"]
    written = small_matrix.save(tmp_path / "a")
    names = {p.name for p in written}
    assert {"falsification.md", "falsification.html", "falsification.csv", "falsification_cells.csv",
            "falsification_runs.csv", "falsification.png", "falsification.svg", "falsification.json"} <= names
    meta = json.loads((tmp_path / "a" / "falsification.json").read_text())
    assert meta["seeds"] == [3, 4] and meta["mechanisms"]["P6"] == ["no_shakeout"]
    small_matrix.save(tmp_path / "b")
    for name in names:  # byte-identical outputs for the same inputs
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    md = (tmp_path / "a" / "falsification.md").read_text()
    assert "| P6 |" in md and "no\\_shakeout" in md


def _matrix(rates: dict[tuple[str, str], tuple[int, int]], mechanisms: dict[str, tuple[str, ...]]):
    rows = []
    for (prop, uni), (k, n) in rates.items():
        for r in range(n):
            rows.append({"universe": uni, "replication": r, "seed": r, "proposition": prop,
                         "verdict": "supported" if r < k else "inconclusive", "supported": r < k,
                         "p_value": np.nan, "estimate": np.nan, "std_error": np.nan, "power": np.nan,
                         "checks": "{}", "message": ""})
    universes = tuple(dict.fromkeys(u for _, u in rates))
    props = tuple(dict.fromkeys(p for p, _ in rates))
    return FalsificationMatrix(pd.DataFrame(rows), props, universes, mechanisms, dict.fromkeys(props, 0.05),
                               n, 1, "test")


def test_requirements_catch_a_test_that_never_or_always_rejects():
    R = 20
    good = _matrix({("P", FULL_MODEL): (19, R), ("P", "own"): (1, R), ("P", "other"): (17, R)}, {"P": ("own",)})
    assert good.cells()["meets"].all()
    never = _matrix({("P", FULL_MODEL): (0, R), ("P", "own"): (0, R)}, {"P": ("own",)})
    assert not never.cells().set_index("universe").loc[FULL_MODEL, "meets"]
    always = _matrix({("P", FULL_MODEL): (R, R), ("P", "own"): (R, R)}, {"P": ("own",)})
    assert not always.cells().set_index("universe").loc["own", "meets"]
    assert size_band(0.05, R) == pytest.approx(0.05 + 3 * math.sqrt(0.05 * 0.95 / R))
    # 5 of 20 with the mechanism off is above the band (0.196); an unrelated switch that halves the
    # rate is flagged, one that moves it by a few replications is not
    moved = _matrix({("P", FULL_MODEL): (R, R), ("P", "own"): (5, R), ("P", "other"): (10, R)}, {"P": ("own",)})
    assert set(moved.misses()["universe"]) == {"own", "other"}


def test_falsification_rejects_unknown_switches():
    with pytest.raises(ConfigError, match="unknown simulator switch"):
        falsification(replications=1, switches=["no_such_switch"], propositions=["P4"])


# -- the power calculator --------------------------------------------------------------------------
def test_survey_design_samples_the_window_and_the_firms():
    from cluster_econ.simulate import simulate

    design = SurveyDesign(clusters=4, firms=120, years=6)
    cfg = design.config()
    assert len(cfg.clusters) == 4
    assert sum(c.expansion_years is None for c in cfg.clusters) == 1      # QI, QI, S, QI
    sim = simulate(cfg, seed=2, truth=False)
    panel = design.apply(sim, 2)
    ey = panel.enterprise_year
    ent = panel.enterprise.set_index("enterprise_id")
    per_cluster = ey.groupby(ey["enterprise_id"].map(ent["cluster_id"]))["enterprise_id"].nunique()
    assert (per_cluster <= 30).all() and per_cluster.sum() == 120
    for spec in cfg.clusters:
        first = window_start(spec, 6)
        years = ey.loc[ey["enterprise_id"].map(ent["cluster_id"]) == spec.cluster_id, "year"].astype(int)
        assert years.min() >= first and years.max() < first + 6
    qi = next(c for c in cfg.clusters if c.expansion_years is not None)
    assert window_start(qi, 6) == qi.start_year + qi.initiation_years + qi.expansion_years - 3
    assert set(panel.enterprise["enterprise_id"]) == set(ey["enterprise_id"])
    # the same seed gives the same sample
    again = design.apply(simulate(cfg, seed=2, truth=False), 2)
    pd.testing.assert_frame_equal(panel.enterprise_year, again.enterprise_year)


def test_survey_design_rejects_impossible_numbers():
    with pytest.raises(ConfigError, match="at least the number of clusters"):
        SurveyDesign(clusters=8, firms=5, years=6)
    with pytest.raises(ConfigError, match="positive"):
        SurveyDesign(clusters=0, firms=5, years=6)


def test_power_calculator_reports_power_and_size():
    pa = hyp.power(clusters=3, firms=240, years=8, propositions=["P4"], replications=2, workers=1)
    tab = pa.table().set_index("proposition")
    assert {"power", "power_se", "size", "size_se", "size_switch", "reported_power",
            "size[equal_schooling_slopes]", "size[no_schooling_returns]"} <= set(tab.columns)
    assert 0 <= tab.loc["P4", "power"] <= 1 and 0 <= tab.loc["P4", "size"] <= 1
    assert set(pa.runs["universe"]) == {FULL_MODEL, "equal_schooling_slopes", "no_schooling_returns"}
    assert "power at 3 clusters, 240 firms, 8 years" in pa.summary()


# -- command lines ---------------------------------------------------------------------------------
def test_cli_falsify_and_power(tmp_path, capsys):
    from cluster_econ.cli import main

    code = main(["falsify", "--replications", "1", "--hypotheses", "P6", "--switches", "no_shakeout",
                 "--workers", "1", "--out", str(tmp_path / "f")])
    out = capsys.readouterr().out
    assert code in (0, 1)
    assert "| P6 |" in out and (tmp_path / "f" / "falsification.png").exists()
    cells = pd.read_csv(tmp_path / "f" / "falsification_cells.csv")
    assert code == (0 if cells["meets"].all() else 1)
    code = main(["power", "--clusters", "3", "--firms", "150", "--years", "8", "--proposition", "P4",
                 "--replications", "1", "--workers", "1", "--out", str(tmp_path / "p")])
    assert code == 0
    assert "P4   power" in capsys.readouterr().out
    assert (tmp_path / "p" / "power.csv").exists()
    assert main(["power", "--clusters", "3", "--firms", "150", "--years", "8", "--proposition", "P99"]) == 2
    with pytest.raises(SystemExit):
        main(["power", "--clusters", "0", "--firms", "150", "--years", "8"])


# -- Monte Carlo of size and power at the demo design (slow) ------------------------------------------
SLOW_REPS = 10


@pytest.mark.slow
def test_elasticity_standard_errors_match_their_monte_carlo_spread():
    """Over R = 16 demo universes the spread of the estimated elasticities matches the mean of
    their sandwich standard errors: the ratio sd / se must lie in [0.55, 1.6], about 3 standard
    errors of a standard deviation estimated from 16 draws (relative s.e. 1 / sqrt(2 * 15) = 0.18);
    and the mean estimates lie within 4 Monte Carlo s.e. (sd / 4) of the truth."""
    from cluster_econ.hypotheses.data import build
    from cluster_econ.simulate import preset, simulate

    est = []
    for seed in range(1, 17):
        prod = build(simulate(preset("demo"), seed=seed, truth=False).panel).productivity
        est.append((prod.beta_l, prod.beta_k, *np.sqrt(np.diag(prod.cov))))
    a = np.array(est)
    sd, se = a[:, :2].std(axis=0, ddof=1), a[:, 2:].mean(axis=0)
    assert ((sd / se > 0.55) & (sd / se < 1.6)).all(), (sd, se)
    assert (np.abs(a[:, :2].mean(axis=0) - [0.6, 0.3]) < 4 * sd / 4).all(), a[:, :2].mean(axis=0)


@pytest.mark.slow
def test_size_and_power_of_every_proposition_at_the_demo_design():
    """Every proposition at the demo design with the default options, over R = 10 seeds: in the
    full model, and with each of its own mechanisms off (the universes the requirements are about;
    the whole matrix is benchmarks/bench_falsification.py). Bands from the binomial s.e. at R:

    - power: the rate must not fall more than 3 s.e. below 0.8, i.e. at least
      0.8 - 3 sqrt(0.8 * 0.2 / R) = 0.42 (a test that never rejects fails);
    - size: at most 0.05 + 3 sqrt(0.05 * 0.95 / R) = 0.257 (a test that always rejects fails).

    About 120 simulated universes on two processes: a couple of minutes.
    """
    own = list(dict.fromkeys(s for p in hyp.ids() for s in hyp.get(p).mechanisms))
    fm = falsification(replications=SLOW_REPS, seed=500, switches=own)
    cells = fm.cells()
    assert (cells["errors"] == 0).all()
    low = 0.8 - 3 * math.sqrt(0.8 * 0.2 / SLOW_REPS)
    full = cells[cells["role"] == "full model"].set_index("proposition")
    assert (full["rate"] >= low).all(), full[["rate", "mean_power"]]
    size = cells[cells["role"] == "own mechanism off"]
    assert (size["rate"] <= size_band(0.05, SLOW_REPS) + 1e-12).all(), size[["proposition", "universe", "rate"]]
