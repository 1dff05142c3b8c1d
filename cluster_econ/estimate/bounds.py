"""Lee (2009) bounds on a treatment effect when attrition (or selection) may depend on treatment.

With random assignment :math:`D`, outcomes observed only when :math:`S = 1`, and monotone selection
(treatment moves observation one way only), let :math:`s_d = P(S = 1 \\mid D = d)` and suppose
:math:`s_1 \\ge s_0`. Among observed treated units a share :math:`p = 1 - s_0/s_1` would not have been
observed without treatment; trimming that share from the top (bottom) of the observed treated
outcomes gives the lower (upper) bound of the effect on the always-observed:

.. math:: \\Delta_L = E[Y \\mid D=1, S=1, Y \\le y_{1-p}] - E[Y \\mid D=0, S=1], \\qquad
          \\Delta_U = E[Y \\mid D=1, S=1, Y \\ge y_{p}] - E[Y \\mid D=0, S=1].

(With :math:`s_0 > s_1` the control arm is trimmed.) Trimming is fractional: the observation at the
cut-off enters with the fraction needed so that exactly :math:`(1-p) n` observations are kept (with
:math:`pn` an integer this is the plain trimmed mean). Standard errors are Lee's Proposition 3: for
the trimmed mean :math:`\\mu` with cut-off :math:`q`,

.. math:: V = \\frac{\\sigma^2_\\mu + p (q - \\mu)^2}{(1-p)\\, n_{1}^{obs}}
          + \\Big(\\frac{\\mu - q}{1-p}\\Big)^2 V_p + \\frac{\\sigma_0^2}{n_0^{obs}}, \\qquad
          V_p = (1-p)^2\\Big(\\frac{1-s_0}{s_0 n_0} + \\frac{1-s_1}{s_1 n_1}\\Big),

and the confidence interval for the effect is Imbens and Manski's (2004), as Stata's ``leebounds``
with ``cieffect``.

Tightening (``tight=``, Lee 2009, section on covariates). With a discrete pre-treatment covariate
:math:`X`, the share :math:`p_x = 1 - s_0(x)/s_1(x)` is trimmed within each cell (clipped at 0 when
a cell's untrimmed arm is observed more often: monotonicity runs one way for everybody), and the
bounds are :math:`\\sum_x \\pi_x \\Delta_{L,U}(x)` with :math:`\\pi_x` the cell's share of the observed
untrimmed arm (under monotonicity, the always-observed). Their variance is the delta method over
the independent cells: each cell's trimmed mean and untrimmed mean as in Proposition 3, its two
observation rates (which move both :math:`p_x` and the weights :math:`\\pi`):

.. math:: V = \\sum_x \\pi_x^2 \\Big[\\frac{\\sigma^2_{\\mu,x} + p_x (q_x - \\mu_x)^2}{(1-p_x) m_{t,x}}
          + \\frac{\\sigma^2_{o,x}}{m_{o,x}}\\Big] + \\sum_x g_{t,x}^2 \\frac{s_t(1-s_t)}{n_{t,x}}
          + g_{o,x}^2 \\frac{s_o(1-s_o)}{n_{o,x}},

:math:`g_t = \\pi_x \\mu'_x s_o/s_t^2`, :math:`g_o = -\\pi_x \\mu'_x/s_t + (n_{o,x}/M)(\\Delta_x - \\Delta)`,
:math:`\\mu'_x = (\\mu_x - q_x)/(1-p_x)`, :math:`M` the observed untrimmed units (sign-adjusted when
the control arm is trimmed). With one cell this is Proposition 3.

Why our own code: the one Python package (``pyleebounds``) trims an integer number of
observations, trims only the treated arm and has unseeded bootstrap errors only; it checks the point
bounds in ``tests/test_bounds_ancova.py`` and, cell by cell, the tightened bounds in
``tests/test_bounds_tight.py`` (which has no covariate option).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from cluster_econ._version import __version__
from cluster_econ.errors import EstimationError
from cluster_econ.estimate.formula import as_frame
from cluster_econ.estimate.result import Audit, Result, VcovInfo, data_hash

__all__ = ["LeeBoundsResult", "lee_bounds"]


@dataclass(frozen=True, eq=False)
class LeeBoundsResult(Result):
    """Lee bounds: terms ``lower bound`` and ``upper bound``; ``extra`` holds the trimming share,
    observation rates, the trimmed arm and the Imbens-Manski interval (``conf_int_effect``)."""

    @property
    def lower(self) -> float:
        return float(self.params["lower bound"])

    @property
    def upper(self) -> float:
        return float(self.params["upper bound"])

    @property
    def conf_int_effect(self) -> tuple[float, float]:
        return tuple(self.extra["conf_int_effect"])  # type: ignore[return-value]


def _trimmed(y: np.ndarray, keep_share: float, top: bool) -> tuple[float, float, float]:
    """Mean and variance of the lowest (``top=False``) or highest share of ``y``, and the cut-off."""
    ys = np.sort(y)[::-1] if top else np.sort(y)
    n = len(ys)
    k = keep_share * n
    whole = int(np.floor(k + 1e-9))
    frac = k - whole
    w = np.zeros(n)
    w[:whole] = 1.0
    if whole < n and frac > 1e-9:
        w[whole] = frac
    mu = float(w @ ys / w.sum())
    var = float(w @ (ys - mu) ** 2 / w.sum())
    cut = ys[min(max(int(np.ceil(k - 1e-9)) - 1, 0), n - 1)]
    return mu, var, float(cut)


def _imbens_manski(lo: float, hi: float, se_lo: float, se_hi: float, level: float) -> tuple[float, float]:
    from scipy import optimize, special

    s = max(se_lo, se_hi)
    gap = (hi - lo) / s if s > 0 else np.inf

    def f(c: float) -> float:
        return float(special.ndtr(c + gap) - special.ndtr(-c) - level)

    c = optimize.brentq(f, 0.0, 10.0) if np.isfinite(gap) else float(special.ndtri(level))
    return lo - c * se_lo, hi + c * se_hi


def lee_bounds(data: Any, outcome: str, treatment: str, selection: str | None = None,
               level: float = 0.95, tight: str | list[str] | None = None) -> LeeBoundsResult:
    """Lee (2009) bounds on the effect of ``treatment`` on ``outcome`` under attrition.

    Parameters
    ----------
    data : DataFrame or Panel
        One row per randomized unit (including those whose outcome is missing).
    outcome : str
        Outcome, observed where ``selection`` is 1.
    treatment : str
        Binary assignment (0/1).
    selection : str, optional
        Observation indicator (0/1); default: the outcome is not missing.
    level : float
        Level of the Imbens-Manski interval for the effect (and of the bounds' own intervals).
    tight : str or list of str, optional
        Discrete pre-treatment covariates whose cells tighten the bounds (Lee 2009, section on
        covariates): trimming within each cell, cell bounds averaged with the cells' shares of the
        observed units of the untrimmed arm. ``extra["cells"]`` lists the cells.

    Returns
    -------
    LeeBoundsResult
    """
    frame = as_frame(data)
    tight_cols = [tight] if isinstance(tight, str) else list(tight or [])
    for c in (outcome, treatment, selection, *tight_cols):
        if c is not None and c not in frame.columns:
            raise EstimationError(f"lee_bounds: column {c!r} is not in the data")
    d = pd.to_numeric(frame[treatment], errors="coerce")
    ok = d.notna().to_numpy()
    dropped = {"missing treatment": int((~ok).sum())} if (~ok).any() else {}
    if tight_cols:
        no_cell = ok & frame[tight_cols].isna().any(axis=1).to_numpy()
        if no_cell.any():
            dropped[f"missing {'/'.join(tight_cols)} (tightening cells)"] = int(no_cell.sum())
            ok &= ~no_cell
    dv = d.to_numpy(dtype=float)[ok]
    if not set(np.unique(dv)) <= {0.0, 1.0} or len(np.unique(dv)) < 2:
        raise EstimationError(f"lee_bounds: {treatment!r} must take the values 0 and 1 (found "
                              f"{sorted(np.unique(dv))[:5]})")
    y = pd.to_numeric(frame[outcome], errors="coerce").to_numpy(dtype=float)[ok]
    if selection is None:
        s = np.isfinite(y)
    else:
        sv = pd.to_numeric(frame[selection], errors="coerce").to_numpy(dtype=float)[ok]
        if not set(np.unique(sv[np.isfinite(sv)])) <= {0.0, 1.0}:
            raise EstimationError(f"lee_bounds: selection {selection!r} must be 0/1")
        s = sv == 1
        bad = s & ~np.isfinite(y)
        if bad.any():
            raise EstimationError(f"lee_bounds: {int(bad.sum())} rows are selected but have no {outcome!r}")
    if tight_cols:
        keys = frame.loc[ok, tight_cols]
        cell, labels = pd.MultiIndex.from_frame(keys).factorize(sort=True) if len(tight_cols) > 1 else (
            pd.factorize(keys[tight_cols[0]], sort=True))
        cell_labels = [lab if len(tight_cols) > 1 else (lab,) for lab in labels]
    else:
        cell, cell_labels = np.zeros(len(dv), dtype=np.int64), [()]
    n1, n0 = int(np.sum(dv == 1)), int(np.sum(dv == 0))
    s1, s0 = float(np.mean(s[dv == 1])), float(np.mean(s[dv == 0]))
    if min(s1, s0) <= 0:
        raise EstimationError("lee_bounds: an arm has no observed outcome")
    trim_arm = 1 if s1 >= s0 else 0
    sign = 1.0 if trim_arm == 1 else -1.0
    cells = _cell_bounds(y, dv == trim_arm, s, cell, cell_labels, tight_cols)
    pi = cells["weight"].to_numpy()
    M = float(cells["observed_other"].sum())
    delta = {}
    se = {}
    # the lower bound uses the low trimmed mean when the treated arm is trimmed, the high one otherwise
    variants = (("lower", "low"), ("upper", "high")) if trim_arm == 1 else (("lower", "high"), ("upper", "low"))
    for bound, variant in variants:
        mu, var, q = (cells[f"{variant}_{k}"].to_numpy() for k in ("mean", "var", "cut"))
        p, st, so = cells["trim_share"].to_numpy(), cells["s_trimmed"].to_numpy(), cells["s_other"].to_numpy()
        nt, no = cells["n_trimmed"].to_numpy(), cells["n_other"].to_numpy()
        mt, mo = cells["observed_trimmed"].to_numpy(), cells["observed_other"].to_numpy()
        dx = sign * (mu - cells["other_mean"].to_numpy())
        b = float(pi @ dx)
        deriv = (mu - q) / (1 - p)  # d trimmed mean / d trim share
        v_within = (var + p * (q - mu) ** 2) / ((1 - p) * mt) + cells["other_var"].to_numpy() / mo
        g_t = pi * sign * deriv * so / st**2
        g_o = -pi * sign * deriv / st + no / M * (dx - b)
        v = float(np.sum(pi**2 * v_within + g_t**2 * st * (1 - st) / nt + g_o**2 * so * (1 - so) / no))
        delta[bound], se[bound] = b, float(np.sqrt(v))
        cells[f"{bound}_bound"] = dx
    lower, upper = delta["lower"], delta["upper"]
    se_lo, se_hi = se["lower"], se["upper"]
    p_all = 1 - min(s1, s0) / max(s1, s0)
    ci = _imbens_manski(lower, upper, se_lo, se_hi, level)
    names = ["lower bound", "upper bound"]
    details = {"covariance": "bounds treated as independent (off-diagonal not estimated)"}
    if tight_cols:
        details["tightening"] = ("delta method over cells: trimmed means, observation rates and the cells' "
                                 "weights (shares of the observed untrimmed arm)")
    info = VcovInfo(type="analytic (Lee 2009, Proposition 3)", ssc="none", df_resid=None, details=details)
    naive = float(np.mean(y[(dv == 1) & s]) - np.mean(y[(dv == 0) & s]))
    notes = [f"trimmed {p_all:.4f} of the observed {'treated' if trim_arm == 1 else 'control'} outcomes"]
    if tight_cols:
        notes = [f"trimmed within {len(cells)} cells of {', '.join(tight_cols)} (shares "
                 f"{cells['trim_share'].min():.4f} to {cells['trim_share'].max():.4f})"]
        clipped = int(cells["clipped"].sum())
        if clipped:
            notes.append(f"{clipped} cells where the untrimmed arm is observed more often are not trimmed "
                         "(monotonicity is assumed in one direction for all cells)")
    extra = {"trim_share": p_all, "trimmed_arm": "treated" if trim_arm == 1 else "control",
             "observed_share_treated": s1, "observed_share_control": s0, "n_treated": n1, "n_control": n0,
             "conf_int_effect": ci, "level": level, "naive_difference": naive, "tight": tuple(tight_cols)}
    if tight_cols:
        extra["cells"] = cells.drop(columns=["clipped"])
    audit = Audit(n_input=len(frame), dropped=dropped, notes=tuple(notes))
    digest = data_hash(y, dv, cell) if tight_cols else data_hash(y, dv)
    return LeeBoundsResult(params=pd.Series([lower, upper], index=names),
                           cov=pd.DataFrame(np.diag([se_lo**2, se_hi**2]), index=names, columns=names),
                           nobs=int(s.sum()), vcov_info=info,
                           formula=f"{outcome} ~ {treatment} (Lee bounds)", model="lee_bounds",
                           engine=f"cluster_econ {__version__}", audit=audit, data_hash=digest,
                           stats={"trim_share": p_all, "observed_share_treated": s1, "observed_share_control": s0},
                           extra=extra)


def _cell_bounds(y: np.ndarray, in_trimmed: np.ndarray, s: np.ndarray, cell: np.ndarray,
                 labels: list[tuple[Any, ...]], names: list[str]) -> pd.DataFrame:
    """Per cell: assigned and observed counts of both arms, observation rates, the trim share
    (clipped at 0), the low and high trimmed means of the trimmed arm (mean, variance, cut-off), the
    untrimmed arm's observed mean and variance, and the cell's weight (its share of the observed
    untrimmed arm)."""
    rows = []
    for c, lab in enumerate(labels):
        here = cell == c
        where = f"cell {dict(zip(names, lab, strict=True))} " if names else ""
        n_t, n_o = int(np.sum(here & in_trimmed)), int(np.sum(here & ~in_trimmed))
        if n_t == 0 or n_o == 0:
            raise EstimationError(f"lee_bounds: {where}has no units in one arm ({n_t} and {n_o}); merge cells")
        y_t, y_o = y[here & in_trimmed & s], y[here & ~in_trimmed & s]
        if len(y_o) == 0:
            continue  # no always-observed units in this cell: weight 0
        if len(y_t) == 0:
            raise EstimationError(f"lee_bounds: {where}has no observed outcome in the trimmed arm; merge cells")
        s_t, s_o = len(y_t) / n_t, len(y_o) / n_o
        p = max(0.0, 1 - s_o / s_t)
        lo = _trimmed(y_t, 1 - p, top=False)
        hi = _trimmed(y_t, 1 - p, top=True)
        rows.append({**dict(zip(names, lab, strict=True)), "n_trimmed": n_t, "n_other": n_o,
                     "observed_trimmed": len(y_t), "observed_other": len(y_o), "s_trimmed": s_t, "s_other": s_o,
                     "trim_share": p, "clipped": s_o > s_t, "low_mean": lo[0], "low_var": lo[1], "low_cut": lo[2],
                     "high_mean": hi[0], "high_var": hi[1], "high_cut": hi[2], "other_mean": float(np.mean(y_o)),
                     "other_var": float(np.var(y_o))})
    out = pd.DataFrame(rows)
    out.insert(len(names), "weight", out["observed_other"] / out["observed_other"].sum())
    return out
