"""The simulator switches added so that every proposition has a mechanism it can be caught
without: each moves its statistic, and leaves what it should alone.

Universes: the demo configuration at seed 11 (as tests/test_simulate.py). Tolerances: 4 standard
errors of the statistic (iid standard errors of means and shares, stated at each test), or, for
the switches' documented design properties (similar size, similar innovator share), the bound the
docstring of the switch states.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest

from cluster_econ.simulate import preset, simulate
from cluster_econ.simulate.config import INSTITUTION_ITEMS

SEED = 11
QE, QI = "quantity_expansion", "quality_improvement"

_cache: dict[tuple[str, ...], object] = {}


def universe(*switches: str):
    if switches not in _cache:
        cfg = preset("demo").with_switches(**dict.fromkeys(switches, True)) if switches else preset("demo")
        _cache[switches] = simulate(cfg, seed=SEED)
    return _cache[switches]


def _by_phase(sim) -> pd.DataFrame:
    ey = sim.panel.enterprise_year
    ph = sim.truth.firm_year[["enterprise_id", "year", "phase"]]
    out = ey.assign(year=ey["year"].astype(int)).merge(ph, on=["enterprise_id", "year"])
    out["phase"] = out["phase"].replace({"stagnation": QE})
    return out


def _mean_diff(df: pd.DataFrame, col: str, a: str, b: str) -> tuple[float, float]:
    """Difference of the means of ``col`` in phases a and b, with its iid standard error."""
    x = pd.to_numeric(df.loc[df["phase"] == a, col].astype("Float64"), errors="coerce").dropna().astype(float)
    y = pd.to_numeric(df.loc[df["phase"] == b, col].astype("Float64"), errors="coerce").dropna().astype(float)
    return float(x.mean() - y.mean()), math.sqrt(x.var() / len(x) + y.var() / len(y))


@pytest.mark.parametrize("other", ["initiation", QI])
def test_no_institutional_change_flattens_the_parts_market(other):
    full = _by_phase(universe())
    d, se = _mean_diff(full, "parts_market_share", QE, other)
    assert d > 4 * se
    off = _by_phase(universe("no_institutional_change"))
    d, se = _mean_diff(off, "parts_market_share", QE, other)
    assert abs(d) <= 4 * se, (d, se)


@pytest.mark.parametrize("item", ["long_term_subcontract", "own_brand", "direct_sales"])
def test_no_institutional_change_flattens_the_institution_items(item):
    d, se = _mean_diff(_by_phase(universe()), item, QI, QE)
    assert d > 4 * se
    off = universe("no_institutional_change")
    d, se = _mean_diff(_by_phase(off), item, QI, QE)
    assert abs(d) <= 4 * se, (item, d, se)
    assert off.truth.schooling_slopes[item] == dict.fromkeys(off.truth.schooling_slopes[item], 0.0)
    # innovation proper is untouched
    assert off.truth.schooling_slopes["new_product"] == universe().truth.schooling_slopes["new_product"]


def test_institution_items_are_the_documented_ones():
    assert set(INSTITUTION_ITEMS) == {"long_term_subcontract", "vertical_integration", "own_brand", "direct_sales"}


def _schooling_slope_qi(sim, item: str = "new_product") -> tuple[float, float]:
    """Logit slope of an item on the current manager's schooling in quality improvement (true
    firm-years; model-based s.e.)."""
    import statsmodels.api as sm

    fy = sim.truth.firm_year
    ey = sim.panel.enterprise_year[["enterprise_id", "year", item]].dropna()
    d = fy[fy["phase"] == QI].merge(ey.assign(year=ey["year"].astype(int)), on=["enterprise_id", "year"])
    X = sm.add_constant(d["schooling"].to_numpy(dtype=float))
    res = sm.Logit(d[item].astype(float).to_numpy(), X).fit(disp=0)
    return float(res.params[1]), float(res.bse[1])


def test_no_schooling_returns_removes_the_gradient_not_the_innovation():
    off = universe("no_schooling_returns")
    assert all(v == 0.0 for item in off.truth.schooling_slopes.values() for v in item.values())
    b, se = _schooling_slope_qi(off)
    assert abs(b) <= 4 * se, (b, se)
    b_full, se_full = _schooling_slope_qi(universe())
    assert b_full > 4 * se_full
    # the intercepts move so that the share of innovators stays about the same (the switch's
    # documented property: within 0.05 of the full model's share in each phase)
    share = {k: s.truth.firm_year.groupby(s.truth.firm_year["phase"].replace({"stagnation": QE}))["innovator"]
             .mean() for k, s in (("full", universe()), ("off", off))}
    for phase in ("initiation", QE, QI):
        assert abs(share["off"][phase] - share["full"][phase]) < 0.05, (phase, share)


def test_productivity_gain_and_quality_upgrading_are_separate_switches():
    gain, noq, flat = universe("no_productivity_gain"), universe("no_quality_upgrading"), universe("flat_productivity")
    assert gain.truth.production["innovation_gain"][QI] == 0.0
    assert gain.truth.production["quality_gain"] == preset("demo").production.quality_gain
    q = gain.truth.cluster_year
    assert (q.loc[q["phase"] == QI, "quality"] > 0).any()
    assert noq.truth.production["quality_gain"] == 0.0
    assert noq.truth.production["innovation_gain"][QI] > 0
    assert (noq.truth.cluster_year["quality"] == 0).all()
    # flat_productivity is the two together
    assert flat.truth.production["innovation_gain"][QI] == 0.0 and flat.truth.production["quality_gain"] == 0.0
    both = simulate(preset("demo").with_switches(no_productivity_gain=True, no_quality_upgrading=True), seed=SEED)
    pd.testing.assert_frame_equal(both.panel.enterprise_year, flat.panel.enterprise_year)


def test_no_entry_response_keeps_the_universe_about_the_same_size():
    """Without the response entry runs at a constant multiplier (EntryConfig.unresponsive_multiplier),
    so the survey sees a universe of about the same size (documented: within 20%)."""
    full, off = universe(), universe("no_entry_response")
    assert off.truth.entry["margin_semi_elasticity"] == 0.0
    ratio = len(off.panel.enterprise_year) / len(full.panel.enterprise_year)
    assert 0.8 < ratio < 1.2, ratio
