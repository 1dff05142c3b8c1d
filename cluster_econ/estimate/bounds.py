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

Why our own code: the one Python package (``pyleebounds``) trims an integer number of
observations, trims only the treated arm and has unseeded bootstrap errors only; it checks the point
bounds in ``tests/test_bounds.py``.
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
               level: float = 0.95) -> LeeBoundsResult:
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

    Returns
    -------
    LeeBoundsResult
    """
    frame = as_frame(data)
    for c in (outcome, treatment, selection):
        if c is not None and c not in frame.columns:
            raise EstimationError(f"lee_bounds: column {c!r} is not in the data")
    d = pd.to_numeric(frame[treatment], errors="coerce")
    ok = d.notna().to_numpy()
    dropped = {"missing treatment": int((~ok).sum())} if (~ok).any() else {}
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
    n1, n0 = int(np.sum(dv == 1)), int(np.sum(dv == 0))
    s1, s0 = float(np.mean(s[dv == 1])), float(np.mean(s[dv == 0]))
    if min(s1, s0) <= 0:
        raise EstimationError("lee_bounds: an arm has no observed outcome")
    trim_arm = 1 if s1 >= s0 else 0
    p = 1 - min(s1, s0) / max(s1, s0)
    y_t = y[(dv == trim_arm) & s]
    y_o = y[(dv != trim_arm) & s]
    mu_o, var_o = float(np.mean(y_o)), float(np.var(y_o))
    lo_mu, lo_var, lo_q = _trimmed(y_t, 1 - p, top=False)
    hi_mu, hi_var, hi_q = _trimmed(y_t, 1 - p, top=True)
    v_p = (1 - p) ** 2 * ((1 - s0) / (s0 * n0) + (1 - s1) / (s1 * n1))

    def var_mean(mu: float, var: float, q: float) -> float:
        return (var + p * (q - mu) ** 2) / ((1 - p) * len(y_t)) + ((mu - q) / (1 - p)) ** 2 * v_p

    if trim_arm == 1:
        lower, upper = lo_mu - mu_o, hi_mu - mu_o
        v_lo, v_hi = var_mean(lo_mu, lo_var, lo_q), var_mean(hi_mu, hi_var, hi_q)
    else:  # trimming the control arm: its high mean gives the lower bound of the effect
        lower, upper = mu_o - hi_mu, mu_o - lo_mu
        v_lo, v_hi = var_mean(hi_mu, hi_var, hi_q), var_mean(lo_mu, lo_var, lo_q)
    v_o = var_o / len(y_o)
    se_lo, se_hi = np.sqrt(v_lo + v_o), np.sqrt(v_hi + v_o)
    ci = _imbens_manski(lower, upper, se_lo, se_hi, level)
    names = ["lower bound", "upper bound"]
    info = VcovInfo(type="analytic (Lee 2009, Proposition 3)", ssc="none", df_resid=None,
                    details={"covariance": "bounds treated as independent (off-diagonal not estimated)"})
    naive = float(np.mean(y[(dv == 1) & s]) - np.mean(y[(dv == 0) & s]))
    extra = {"trim_share": p, "trimmed_arm": "treated" if trim_arm == 1 else "control",
             "observed_share_treated": s1, "observed_share_control": s0, "n_treated": n1, "n_control": n0,
             "conf_int_effect": ci, "level": level, "naive_difference": naive}
    audit = Audit(n_input=len(frame), dropped=dropped,
                  notes=(f"trimmed {p:.4f} of the observed {extra['trimmed_arm']} outcomes",))
    return LeeBoundsResult(params=pd.Series([lower, upper], index=names),
                           cov=pd.DataFrame(np.diag([se_lo**2, se_hi**2]), index=names, columns=names),
                           nobs=int(s.sum()), vcov_info=info,
                           formula=f"{outcome} ~ {treatment} (Lee bounds)", model="lee_bounds",
                           engine=f"cluster_econ {__version__}", audit=audit, data_hash=data_hash(y, dv),
                           stats={"trim_share": p, "observed_share_treated": s1, "observed_share_control": s0},
                           extra=extra)
