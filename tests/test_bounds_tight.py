"""Lee bounds tightened with a discrete covariate (Lee 2009, section on covariates).

Point bounds: each cell's bounds by brute force (arms of equal size within every cell, so that the
number trimmed is an integer) and by pyleebounds on that cell (where its truncation of the number
trimmed gives the same integer), combined with the cells' shares of the observed control units, as
Lee's formula prescribes. Standard errors (delta method over
cells, reducing to Lee's Proposition 3 with one cell) against the Monte Carlo spread of the
estimator. Symmetry when the control arm is trimmed; clear errors for cells without an arm.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import cluster_econ as ce
from cluster_econ.errors import EstimationError

CELL_SIZES = (400, 700, 1100)
CONTROL_OBSERVED = (0.8, 0.6, 0.72)  # the treated are observed with probability 0.9 in every cell


def _cells_data(rng: np.random.Generator, effect: float = 0.5) -> pd.DataFrame:
    parts = []
    for x, (n, pc) in enumerate(zip(CELL_SIZES, CONTROL_OBSERVED, strict=True)):
        d = rng.permutation(np.repeat([0.0, 1.0], n // 2))  # equal arms within the cell
        y = 1.0 + effect * d + 1.5 * x + rng.normal(size=n)
        s = rng.random(n) < np.where(d == 1, 0.9, pc)
        parts.append(pd.DataFrame({"D": d, "y": np.where(s, y, np.nan), "S": s.astype(float), "x": x}))
    return pd.concat(parts, ignore_index=True)


def test_tight_bounds_are_cell_bounds_weighted_by_observed_control_shares() -> None:
    plb = pytest.importorskip("pyleebounds")
    d = _cells_data(np.random.default_rng(3))
    res = ce.lee_bounds(d, "y", "D", tight="x")
    lows, highs, weights, checked = [], [], [], 0
    for x in range(len(CELL_SIZES)):
        cell = d[d["x"] == x]
        y_t = np.sort(cell.loc[(cell.D == 1) & (cell.S == 1), "y"].to_numpy())
        y_o = cell.loc[(cell.D == 0) & (cell.S == 1), "y"].to_numpy()
        k = len(y_t) - len(y_o)  # equal arms: the trim share times the observed treated is an integer
        lows.append(y_t[: len(y_t) - k].mean() - y_o.mean())
        highs.append(y_t[k:].mean() - y_o.mean())
        weights.append(len(y_o))
        peer = plb.LeeBounds(n_bootstrap=2).fit(cell.fillna({"y": 0.0}), "y", "D", "S")
        if int(len(y_t) * ((peer.p1 - peer.p0) / peer.p1)) == k:  # the peer truncates k(1 + rounding error)
            assert (peer.lower_bound, peer.upper_bound) == pytest.approx((lows[-1], highs[-1]), abs=1e-12)
            checked += 1
    assert checked >= 2
    w = np.array(weights) / np.sum(weights)
    assert res.lower == pytest.approx(float(w @ lows), abs=1e-12)
    assert res.upper == pytest.approx(float(w @ highs), abs=1e-12)
    cells = res.extra["cells"]
    np.testing.assert_allclose(cells["weight"], w, rtol=1e-15)
    np.testing.assert_allclose(cells["lower_bound"], lows, atol=1e-12)
    # the covariate explains much of the outcome: in the population (this design with 500 times the
    # units) the tightened width is 0.63 of the pooled one (0.75 against 1.19); the sample widths
    # have s.e. below 0.1, so 0.85 leaves more than two of them
    plain = ce.lee_bounds(d, "y", "D")
    assert res.upper - res.lower < 0.85 * (plain.upper - plain.lower)
    assert res.lower <= 0.5 <= res.upper


def test_one_cell_is_the_untightened_estimator_and_control_trimming_is_symmetric() -> None:
    d = _cells_data(np.random.default_rng(4))
    plain = ce.lee_bounds(d, "y", "D")
    one = ce.lee_bounds(d.assign(c="all"), "y", "D", tight="c")
    np.testing.assert_allclose(one.params, plain.params, rtol=1e-14)
    np.testing.assert_allclose(one.bse, plain.bse, rtol=1e-12)
    a = ce.lee_bounds(d, "y", "D", tight="x")
    b = ce.lee_bounds(d.assign(D=1 - d["D"], y=-d["y"]), "y", "D", tight="x")
    assert b.extra["trimmed_arm"] == "control"
    assert b.lower == pytest.approx(a.lower, abs=1e-12) and b.upper == pytest.approx(a.upper, abs=1e-12)
    np.testing.assert_allclose(b.bse.to_numpy(), a.bse.to_numpy(), rtol=1e-12)


def test_tight_standard_errors_match_monte_carlo() -> None:
    """The s.d. of a Monte Carlo s.d. from 250 draws is about 1/sqrt(500) = 4.5% of it: 15% is >3 s.e."""
    rng = np.random.default_rng(21)
    res = [ce.lee_bounds(_cells_data(rng), "y", "D", tight="x") for _ in range(250)]
    for k, name in enumerate(("lower bound", "upper bound")):
        est = np.array([r.params.iloc[k] for r in res])
        se = np.array([float(r.bse[name]) for r in res])
        assert np.mean(se) == pytest.approx(np.std(est, ddof=1), rel=0.15)


def test_tight_cells_errors_and_notes() -> None:
    d = _cells_data(np.random.default_rng(5))
    d.loc[(d["x"] == 2) & (d["D"] == 0), "x"] = 3  # cell 2 loses its controls, cell 3 has no treated
    with pytest.raises(EstimationError, match=r"cell \{'x': 2\} has no units in one arm"):
        ce.lee_bounds(d, "y", "D", tight="x")
    d = _cells_data(np.random.default_rng(5))
    d.loc[d.index[:7], "x"] = np.nan
    flip = (d["x"] == 0) & (d["D"] == 0) & d["y"].isna()
    d.loc[flip, "y"] = 1.0  # controls of cell 0 all observed: more often than the treated there
    res = ce.lee_bounds(d, "y", "D", tight="x")
    assert res.audit.dropped["missing x (tightening cells)"] == 7
    assert res.extra["cells"].loc[0, "trim_share"] == 0.0
    assert any("not trimmed" in n for n in res.audit.notes)


def test_batch_specification_passes_tight() -> None:
    from cluster_econ.report.batch import _estimate

    d = _cells_data(np.random.default_rng(6))
    spec = {"name": "lee", "formula": "y ~ D", "estimator": "lee_bounds", "options": {"tight": "x"}}
    got = _estimate(spec, d)
    want = ce.lee_bounds(d, "y", "D", tight="x")
    assert got.lower == want.lower and got.upper == want.upper and got.extra["tight"] == ("x",)
