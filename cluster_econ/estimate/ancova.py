"""ANCOVA for randomized experiments with several survey rounds (McKenzie 2012).

With baseline rounds :math:`b = 1..m` and follow-up rounds :math:`t = 1..r`, the pooled ANCOVA is

.. math:: Y_{it} = \\gamma D_i + \\theta\\, \\bar Y_{i,\\text{pre}} + \\delta_t + \\varepsilon_{it},
          \\qquad t \\text{ a follow-up round},

with :math:`\\bar Y_{i,\\text{pre}}` the unit's mean outcome over its observed baseline rounds and
round fixed effects :math:`\\delta_t` (and, optionally, randomization-strata fixed effects and
controls), estimated by :func:`~cluster_econ.estimate.linear.feols` with standard errors clustered
by unit (or by the randomization cluster). A unit without any baseline value gets
:math:`\\bar Y_{i,\\text{pre}} = 0` and a missing-baseline indicator, so it is kept. McKenzie shows
that with low autocorrelation ANCOVA has much smaller variance than difference in differences, and
that more follow-up rounds help more than more baselines.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from cluster_econ.errors import EstimationError
from cluster_econ.estimate.formula import as_frame
from cluster_econ.estimate.result import Result

__all__ = ["ancova"]


def ancova(data: Any, outcome: str, treatment: str, unit: str, time: str, baseline: Sequence[Any],
           *, controls: Sequence[str] = (), strata: str | None = None, cluster: str | None = None,
           ssc: str = "stata") -> Result:
    """Pooled ANCOVA over the follow-up rounds (see the module docstring).

    Parameters
    ----------
    data : DataFrame or Panel
        Long panel, one row per unit and round.
    outcome, treatment, unit, time : str
        Columns: the outcome, the (time-invariant) assignment, the unit and the survey round.
    baseline : sequence
        The values of ``time`` that are baseline rounds; every other round is a follow-up.
    controls : sequence of str
        Further regressors (formula terms).
    strata : str, optional
        Randomization strata, absorbed as fixed effects.
    cluster : str, optional
        Cluster variable of the standard errors (default ``unit``).

    Returns
    -------
    Result
        The feols result on the follow-up rows; the coefficient of ``treatment`` is the ITT;
        ``extra["ancova"]`` records the rounds and how many units lacked a baseline.
    """
    frame = as_frame(data)
    for c in (outcome, treatment, unit, time, *([strata] if strata else []), *([cluster] if cluster else [])):
        if c not in frame.columns:
            raise EstimationError(f"ancova: column {c!r} is not in the data")
    base_vals = list(baseline)
    is_base = frame[time].isin(base_vals).to_numpy()
    if not is_base.any():
        raise EstimationError(f"ancova: no row has {time!r} in the baseline rounds {base_vals}")
    if is_base.all():
        raise EstimationError("ancova: every round is a baseline round; there is no follow-up")
    base_mean = frame.loc[is_base].groupby(unit)[outcome].mean()
    post = frame.loc[~is_base].copy()
    bname, mname = f"{outcome}_baseline", f"{outcome}_baseline_missing"
    post[bname] = post[unit].map(base_mean)
    post[mname] = post[bname].isna().astype(float)
    n_missing = int(post.loc[post[mname] == 1, unit].nunique())
    post[bname] = post[bname].fillna(0.0)
    rhs = [treatment, bname, *([mname] if n_missing else []), *controls]
    fes = [time, *([strata] if strata else [])]
    formula = f"{outcome} ~ {' + '.join(rhs)} | {' + '.join(fes)}"
    from cluster_econ.estimate.linear import feols

    res = feols(formula, post, vcov={"CRV1": cluster or unit}, ssc=ssc)
    extra = dict(res.extra)
    extra["ancova"] = {"baseline_rounds": base_vals,
                       "followup_rounds": sorted(pd.unique(post[time]).tolist()),
                       "units_without_baseline": n_missing,
                       "baseline_mean_of": int(np.sum(is_base))}
    import dataclasses

    return dataclasses.replace(res, extra=extra, model="feols")
