"""Dynamic panel GMM (``ce.pgmm``) on Arellano and Bond's EmplUK panel.

References:

- Arellano and Bond (1991), Review of Economic Studies 58, Table 4, columns (a1) (one step, robust
  standard errors), (a2) and (b) (two steps, classical two-step standard errors), printed digits;
- the robust m1/m2 statistics of Stata's xtabond manual (examples 2 and 4), as quoted in R plm's
  own tests (``inst/tests/test_mtest.R``);
- R plm 2.6 ``pgmm`` on the same data, to 1e-6: ``tests/r_golden/pgmm_emplUK.R`` and its output
  ``pgmm_emplUK.csv`` (re-run when ``Rscript`` with plm is installed).

Standard errors: one step, the robust sandwich (clustered by firm, no small-sample factor); two
steps, Windmeijer-corrected (``robust=True``) or classical ``(X'Z A_2 Z'X)^{-1}`` (``robust=False``).
"""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import cluster_econ as ce
from cluster_econ.errors import EstimationError, FormulaError

GOLDEN = Path(__file__).parent / "r_golden"
F_A = ("log(emp) ~ lag(log(emp), 1:2) + lag(log(wage), 0:1) + lag(log(capital), 0:2) + "
       "lag(log(output), 0:2) | lag(log(emp), 2:99)")
F_B = ("log(emp) ~ lag(log(emp), 1:2) + lag(log(wage), 0:1) + log(capital) + lag(log(output), 0:1) "
       "| lag(log(emp), 2:99)")
F_BB = ("log(emp) ~ lag(log(emp), 1) + lag(log(wage), 0:1) + lag(log(capital), 0:1) | "
        "lag(log(emp), 2:99) + lag(log(wage), 2:99) + lag(log(capital), 2:99)")

CASES = {
    "a1_onestep_robust": (F_A, dict(model="onestep")),
    "a2_twostep_classical": (F_A, dict(model="twostep", robust=False)),
    "a2_twostep_windmeijer": (F_A, dict(model="twostep")),
    "b_twostep_classical": (F_B, dict(model="twostep", robust=False)),
    "b_twostep_windmeijer": (F_B, dict(model="twostep")),
    "b_twostep_collapse": (F_B, dict(model="twostep", collapse=True)),
    "b_individual_twostep": (F_B, dict(model="twostep", effect="individual")),
    "b_individual_onestep": (F_B, dict(model="onestep", effect="individual")),
    "bb4_system_onestep": (F_BB, dict(model="onestep", transformation="ld")),
    "bb4_system_twostep": (F_BB, dict(model="twostep", transformation="ld")),
}

# Arellano and Bond (1991), Table 4: coefficient (standard error) as printed
A1 = [(0.686, 0.145), (-0.0854, 0.0560), (-0.608, 0.178), (0.393, 0.168), (0.357, 0.0590),
      (-0.0580, None), (-0.0199, 0.0327), (0.609, 0.173), (-0.711, 0.232), (0.106, 0.141)]
A2 = [(0.629, 0.090), (-0.065, 0.027), (-0.526, 0.054), (0.311, 0.094), (0.278, 0.045),
      (0.014, 0.053), (-0.040, 0.026), (0.592, 0.116), (-0.566, 0.140), (0.101, 0.113)]
B = [(0.474, 0.085), (-0.053, 0.027), (-0.513, 0.049), (0.225, 0.080), (0.293, 0.039),
     (0.610, 0.109), (-0.446, 0.125)]


@pytest.fixture(scope="module")
def empl() -> pd.DataFrame:
    return ce.datasets.emplUK()


@pytest.fixture(scope="module")
def fits(empl: pd.DataFrame) -> dict[str, ce.Result]:
    return {case: ce.pgmm(f, empl, entity="firm", time="year", **kw) for case, (f, kw) in CASES.items()}


def _printed(value: float, printed: float) -> bool:
    """``value`` rounds to ``printed`` at the printed number of decimals."""
    decimals = len(f"{abs(printed):.10f}".rstrip("0").split(".")[1])
    return abs(value - printed) <= 0.5 * 10 ** (-decimals) + 1e-12


@pytest.mark.parametrize(("case", "table"), [("a1_onestep_robust", A1), ("a2_twostep_classical", A2),
                                             ("b_twostep_classical", B)])
def test_arellano_bond_table4_printed_digits(fits: dict[str, ce.Result], case: str, table: list) -> None:
    fit = fits[case]
    for j, (coef, se) in enumerate(table):
        assert _printed(fit.params.iloc[j], coef), (fit.params.index[j], fit.params.iloc[j], coef)
        if se is not None:
            assert _printed(fit.bse.iloc[j], se), (fit.params.index[j], fit.bse.iloc[j], se)
    assert fit.nobs == 611 and fit.groups["firm"] == 140
    assert fit.stats["sargan_df"] == 25


def test_arellano_bond_sargan_printed(fits: dict[str, ce.Result]) -> None:
    # Table 4 prints the two-step Sargan statistics 31.4 (a2) and 30.1 (b), 25 degrees of freedom
    assert round(fits["a2_twostep_classical"].stats["sargan"], 1) == 31.4
    assert round(fits["b_twostep_classical"].stats["sargan"], 1) == 30.1


def test_xtabond_manual_ar_tests(fits: dict[str, ce.Result]) -> None:
    a1, a2 = fits["a1_onestep_robust"].stats, fits["a2_twostep_windmeijer"].stats
    assert round(a1["ar1"], 4) == -3.5996 and round(a1["ar2"], 5) == -0.51603
    assert round(a2["ar1"], 4) == -2.1255 and round(a2["ar2"], 5) == -0.35166


def _golden() -> pd.DataFrame:
    return pd.read_csv(GOLDEN / "pgmm_emplUK.csv")


@pytest.mark.parametrize("case", list(CASES))
def test_matches_r_plm(fits: dict[str, ce.Result], case: str) -> None:
    g = _golden()
    g = g[g["case"] == case]
    fit = fits[case]
    coef = g[g["kind"] == "coef"]["value"].to_numpy()
    se = g[g["kind"] == "se"]["value"].to_numpy()
    assert len(coef) == len(fit.params)
    np.testing.assert_allclose(fit.params.to_numpy(), coef, rtol=0, atol=1e-6)
    np.testing.assert_allclose(fit.bse.to_numpy(), se, rtol=0, atol=1e-6)
    stats = dict(zip(g[g["kind"] == "stat"]["name"], g[g["kind"] == "stat"]["value"], strict=True))
    for key in ("sargan", "ar1", "ar2"):
        assert fit.stats[key] == pytest.approx(stats[key], abs=1e-6), key
    assert fit.stats["sargan_df"] == stats["sargan_df"]
    assert fit.stats["n_instruments"] == stats["n_instruments"]


@pytest.mark.skipif(shutil.which("Rscript") is None, reason="R is not installed")
def test_golden_file_is_what_r_prints() -> None:
    if subprocess.run(["Rscript", "-e", "library(plm)"], capture_output=True).returncode:
        pytest.skip("R package plm is not installed")
    out = subprocess.run(["Rscript", str(GOLDEN / "pgmm_emplUK.R")], capture_output=True, text=True,
                         check=True).stdout
    fresh = pd.read_csv(io.StringIO(out))
    stored = _golden()
    assert list(fresh["case"]) == list(stored["case"])
    np.testing.assert_allclose(fresh["value"], stored["value"], rtol=1e-9, atol=1e-9)


def test_audit_accounts_for_every_row(fits: dict[str, ce.Result], empl: pd.DataFrame) -> None:
    fit = fits["b_twostep_windmeijer"]
    assert fit.audit.n_input == len(empl) == 1031
    assert fit.audit.n_input - sum(fit.audit.dropped.values()) == fit.nobs
    assert fit.vcov_info.type.startswith("Windmeijer")
    system = fits["bb4_system_onestep"]
    assert system.nobs == system.stats["n_level_equations"] == 891
    assert "Intercept" in system.params.index


def test_windmeijer_larger_than_classical(fits: dict[str, ce.Result]) -> None:
    w, c = fits["b_twostep_windmeijer"], fits["b_twostep_classical"]
    np.testing.assert_allclose(w.params, c.params)
    assert (w.bse.iloc[:7] > c.bse.iloc[:7]).all()


def test_bad_input(empl: pd.DataFrame) -> None:
    dup = pd.concat([empl, empl.iloc[:3]])
    with pytest.raises(EstimationError, match="3 duplicate"):
        ce.pgmm(F_B, dup, entity="firm", time="year")
    frac = empl.assign(year=empl["year"] + 0.5 * (empl.index == 4))
    with pytest.raises(EstimationError, match="whole numbers"):
        ce.pgmm(F_B, frac, entity="firm", time="year")
    with pytest.raises(FormulaError, match="not allowed"):
        ce.pgmm("emp ~ lag(emp, 1) | lag(__class__, 2:99)", empl, entity="firm", time="year")
    with pytest.raises(FormulaError, match="not in the data"):
        ce.pgmm("emp ~ lag(emp, 1) | lag(empl, 2:99)", empl, entity="firm", time="year")
    with pytest.raises(EstimationError, match="robust=False"):
        ce.pgmm(F_B, empl, entity="firm", time="year", robust=False)
    with pytest.raises(EstimationError, match="too few"):
        ce.pgmm("emp ~ lag(emp, 1:9) | lag(emp, 2:99)", empl, entity="firm", time="year")


def test_gaps_are_missing_lags(empl: pd.DataFrame) -> None:
    """Dropping one middle year of one firm removes the equations that need it, nothing else."""
    fit = ce.pgmm(F_B, empl, entity="firm", time="year", model="twostep")
    holed = empl.drop(index=empl[(empl["firm"] == 1) & (empl["year"] == 1980)].index)
    fit2 = ce.pgmm(F_B, holed, entity="firm", time="year", model="twostep")
    # the differenced equations of 1980 to 1983 use n(1980): (n1980 - n1979), lag 1 at 1981, lag 2
    # at 1982 and, as the earlier value of the difference of lag 2, at 1983
    assert fit.nobs - fit2.nobs == 4
    assert sum(fit2.audit.dropped.values()) == len(holed) - fit2.nobs


def test_many_instruments_few_entities() -> None:
    """Grunfeld's 10 firms over 20 years: 191 GMM instruments. Two-step GMM is not identified (a
    clear error); one step runs, warns about instrument proliferation, and its Sargan-Hansen test
    is degenerate (p = 1), the textbook symptom (Roodman 2009)."""
    g = ce.datasets.grunfeld()
    f = "inv ~ lag(inv, 1) + value + capital | lag(inv, 2:99)"
    with pytest.raises(EstimationError, match="two-step GMM is not identified"):
        ce.pgmm(f, g, entity="firm", time="year", model="twostep")
    with pytest.warns(UserWarning, match="191 instruments for 10 entities"):
        fit = ce.pgmm(f, g, entity="firm", time="year", model="onestep")
    assert fit.stats["sargan_p"] > 0.999
