"""Monte Carlo checks of the production-function estimators (slow: ``pytest -m slow``).

Designs: :mod:`cluster_econ.estimate.production.montecarlo` (Ackerberg-Caves-Frazer DGP1-3 with
and without measurement error in materials, the proxy world, the proxy world with exit on
productivity, gross output with a flexible input) and the package's simulator. R is small (10 to
20 replications); the full tables (R = 100) are printed by ``benchmarks/bench_prodest.py``.

Tolerances come from the Monte Carlo: "unbiased" means the mean over the accepted replications
is within ``c`` Monte Carlo standard errors (``sd / sqrt(R)``) of the truth, with ``c`` the
Student-t quantile with ``R - 1`` degrees of freedom at the two-sided level of 3 normal standard
errors (0.27%: with R = 12, ``c = 3.9``), since the standard error is itself estimated from R
draws; at most one replication may be declined (the fit screen rejects a true root at the 0.1%
level, so a decline in R = 15 happens about once in 70 runs). "Broken" means a bias far outside
that band, in the direction theory says. Which design breaks which estimator:

- LP and WRDG (materials) on every ACF design: materials are Leontief in planned output, so given
  capital and materials labour has no variation left (functional dependence): LP's labour
  elasticity is 0.
- ACF with 10% classical error in log materials: its moments have no admissible root, so it
  declines (no estimate) in every replication.
- OP on the ACF designs: investment has a shock of its own, so it does not invert to
  productivity; biased.
- The dynamic panel on DGP1: labour's only movement apart from productivity is a wage with AR
  coefficient 0.3, a second Markov root; it declines in about half the replications.
- Exit on productivity (the proxy world with a survival threshold that falls with capital):
  OP's capital elasticity is biased down; the exit correction removes most of that bias.
"""

from __future__ import annotations

import numpy as np
import pytest

from cluster_econ.estimate.production.montecarlo import (
    ACF_TRUTH,
    GROSS_TRUTH,
    PROXY_TRUTH,
    acf_panel,
    gross_output_panel,
    monte_carlo,
    proxy_panel,
)

pytestmark = pytest.mark.slow

PANEL = {"output": "y", "free": "l", "state": "k", "entity": "firm"}


def _crit(accepted: int) -> float:
    """Student-t critical value (``accepted - 1`` df) at the two-sided level of 3 normal s.e."""
    from scipy import stats

    return float(stats.t.ppf(1 - stats.norm.sf(3.0), accepted - 1))


def _unbiased(tab, label: str, truth: dict) -> None:
    row = tab.set_index("estimator").loc[label] if "estimator" in tab.columns else tab.loc[label]
    assert row["declined"] <= 1, f"{label}: {row['declined']} declined"
    c = _crit(int(row["accepted"]))
    for name, value in truth.items():
        mean, mcse = row[f"{name}_mean"], row[f"{name}_mcse"]
        assert abs(mean - value) < c * mcse, f"{label} {name}: mean {mean:.4f} (MC s.e. {mcse:.4f}) vs {value}"


@pytest.mark.parametrize("dgp", [1, 2, 3])
def test_acf_designs_without_measurement_error(dgp) -> None:
    est = {"ACF": {**PANEL, "method": "acf", "proxy": "m"}, "LP": {**PANEL, "method": "lp", "proxy": "m"},
           "dynamic": {**PANEL, "method": "dynamic"}}
    tab = monte_carlo(lambda s: acf_panel(dgp, seed=s), est, ACF_TRUTH, 12, seed=500 + 100 * dgp)
    _unbiased(tab, "ACF", ACF_TRUTH)
    lp = tab.set_index("estimator").loc["LP"]
    assert abs(lp["l_mean"]) < 0.05  # not identified: functional dependence
    dyn = tab.set_index("estimator").loc["dynamic"]
    if dgp == 1:
        assert dyn["declined"] >= 2  # the wage root competes
    else:
        _unbiased(tab, "dynamic", ACF_TRUTH)


@pytest.mark.parametrize("dgp", [2, 3])
def test_acf_designs_with_measurement_error_in_materials(dgp) -> None:
    est = {"ACF": {**PANEL, "method": "acf", "proxy": "m"}, "dynamic": {**PANEL, "method": "dynamic"},
           "LP": {**PANEL, "method": "lp", "proxy": "m"}}
    tab = monte_carlo(lambda s: acf_panel(dgp, seed=s, materials_error=0.1), est, ACF_TRUTH, 12,
                      seed=900 + 100 * dgp).set_index("estimator")
    assert tab.loc["ACF", "accepted"] == 0  # declines every time
    assert tab.loc["LP", "l_bias"] < -0.2
    _unbiased(tab, "dynamic", ACF_TRUTH)


def test_proxy_world_every_estimator() -> None:
    est = {
        "ACF": {**PANEL, "method": "acf", "proxy": "m"},
        "LP": {**PANEL, "method": "lp", "proxy": "m"},
        "OP": {**PANEL, "method": "op", "proxy": "inv"},
        "WRDG (materials)": {**PANEL, "method": "wrdg", "proxy": "m"},
        "WRDG (investment)": {**PANEL, "method": "wrdg", "proxy": "inv", "proxy_type": "investment"},
        "dynamic": {**PANEL, "method": "dynamic"},
    }
    tab = monte_carlo(lambda s: proxy_panel(seed=s, n_firms=1000), est, PROXY_TRUTH, 15, seed=300)
    for label in est:
        _unbiased(tab, label, PROXY_TRUTH)


def test_exit_correction() -> None:
    """Exit on productivity: OP's capital elasticity biased down by more than 3 MC s.e.; with the
    correction the remaining bias is less than half the uncorrected one."""
    est = {"OP": {**PANEL, "method": "op", "proxy": "inv"},
           "OP + exit": {**PANEL, "method": "op", "proxy": "inv", "exit": "exit"}}
    tab = monte_carlo(lambda s: proxy_panel(seed=s, n_firms=2000, exit_threshold=-0.25), est, PROXY_TRUTH, 10,
                      seed=700).set_index("estimator")
    plain, corr = tab.loc["OP"], tab.loc["OP + exit"]
    assert plain["k_bias"] < -3 * plain["k_mcse"]
    assert abs(corr["k_bias"]) < 0.5 * abs(plain["k_bias"])
    assert abs(corr["l_bias"]) < _crit(int(corr["accepted"])) * corr["l_mcse"] + 0.01


def test_gnr_gross_output() -> None:
    est = {f"GNR degree {d}": {"output": "y", "free": [], "state": ["l", "k"], "entity": "firm", "method": "gnr",
                               "proxy": "m", "share": "share", "poly_degree": d} for d in (0, 2)}
    tab = monte_carlo(lambda s: gross_output_panel(seed=s), est, GROSS_TRUTH, 12, seed=100)
    for label in est:
        _unbiased(tab, label, GROSS_TRUTH)


def test_entry_point_on_simulated_universes() -> None:
    """estimate_productivity (dynamic panel, shifters auto) on six demo-design universes with
    survey realism on: accepted in all; mean labour and capital within the t band of 0.6 and 0.3
    plus 0.02 (the simulator rounds employment to whole workers, at least one, which the model
    does not know)."""
    from cluster_econ.estimate.production import estimate_productivity
    from cluster_econ.simulate import simulate

    est = []
    for seed in range(6):
        out = estimate_productivity(simulate(preset="demo", seed=100 + seed).panel)
        assert out.accepted, out.reason
        est.append(out.elasticities.to_numpy())
    a = np.array(est)
    mean, mcse = a.mean(axis=0), a.std(axis=0, ddof=1) / np.sqrt(len(a))
    for j, truth in enumerate((0.6, 0.3)):
        assert abs(mean[j] - truth) < _crit(len(a)) * mcse[j] + 0.02, (mean, mcse)
