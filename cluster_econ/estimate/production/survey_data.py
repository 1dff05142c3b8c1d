"""Log productivity for survey data: the entry point the propositions call.

:func:`estimate_productivity` estimates a value-added Cobb-Douglas production function on a
canonical panel (or the frame :func:`panel_frame` builds) and returns log productivity for every
row, aligned to the input's index, with the fitted :class:`~cluster_econ.estimate.result.Result`
and a status: ``"accepted"``, or ``"declined"`` with the reason (no admissible root, competing
roots, too few usable rows) and no numbers.

Why the dynamic panel is the default. Enterprise surveys measure money with error (recall,
rounding; value added is sales minus materials, so their errors are correlated), observe firms
for a few years with gaps, and lose firms to exit and attrition. On the package's Monte Carlo
designs (``benchmarks/bench_prodest.py``, R = 100; table in :mod:`cluster_econ.estimate.production`):

- the proxy estimators invert materials or investment. With 10% classical error in log materials
  ACF has no admissible root in any of the 300 replications of ACF's DGP1-3 (it declines), LP's
  labour elasticity falls to 0.15-0.33 and WRDG's to 0.31-0.38 (truth 0.6); on the package's
  simulator with survey realism (5-12% error in every money value) ACF declines too;
- the dynamic panel (:func:`prodest` ``method="dynamic"``) uses output itself, with instruments
  dated ``t-1`` (head counts) and ``t-2`` (money), so serially independent measurement error in
  output, materials and capital leaves it consistent: on DGP2 and DGP3 with the 10% error its
  mean labour elasticity is 0.599 and 0.597 (Monte Carlo s.e. 0.003 and 0.002), capital 0.401 and
  0.405. It uses every firm seen two years running (three for the ``t-2`` instruments) and gaps
  only cost the rows they touch. On the demo universe (about 45,000 firm-years, survey realism
  on) it gives labour 0.603 and capital 0.287 (truth 0.6, 0.3) in under a second.

Its costs, stated: it is less precise than ACF when materials are measured exactly (DGP2 s.d.
0.030 against 0.020); where labour's only movement apart from productivity is a weakly
persistent wage (DGP1) its moments have a second root ("productivity" = the wage) and it
declines in about half the replications rather than guess; and exit decided on *current*
productivity (Olley and Pakes's timing) biases it (capital -0.065 on the exit design, where OP
with its exit correction is off by -0.012). Exit decided on what the firm knew at the end of the
previous year (as in the package's simulator) does not.

Productivity shifters (``shifters="auto"``): each cluster gets its own productivity level (one
dummy per cluster; country dummies when there is no cluster), which also absorbs the currency of
monetary logs, and last year's innovation (``innovator``) shifts the law of motion with an
effect per phase when ``phase`` is known (the controlled Markov process of the model's quality
improvement). Missing innovation answers count as "not reported" (an indicator), not as a
dropped row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from cluster_econ.errors import EstimationError
from cluster_econ.estimate.production.estimator import prodest
from cluster_econ.estimate.production.markov import RootScreens, RootSelectionError
from cluster_econ.estimate.production.sample import panel_frame
from cluster_econ.estimate.result import Result

__all__ = ["DEFAULT_METHOD", "ProductivityEstimate", "estimate_productivity", "productivity_shifters"]

DEFAULT_METHOD = "dynamic"


@dataclass(frozen=True)
class ProductivityEstimate:
    """Log productivity per row, or the reason there is none.

    Attributes
    ----------
    log_productivity : pandas.Series
        On the input's index: ``omega`` of the fitted model (for the dynamic panel ``y - b'x``,
        the transitory shock included; its level includes each cluster's constant). NaN where a
        row lacks output or an input, and everywhere when the estimate was declined.
    status : str
        ``"accepted"`` or ``"declined"``.
    reason : str
        Why declined (empty when accepted).
    method : str
    elasticities : pandas.Series
        The input elasticities (NaN when declined).
    result : Result or None
        The fitted model (None when declined).
    roots : pandas.DataFrame
        Every root of the moment conditions that was found, with its verdict.
    shifters : tuple of str
        The law-of-motion controls used.
    """

    log_productivity: pd.Series
    status: str
    reason: str
    method: str
    elasticities: pd.Series
    result: Result | None
    roots: pd.DataFrame
    shifters: tuple[str, ...]

    @property
    def accepted(self) -> bool:
        return self.status == "accepted"


def productivity_shifters(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The ``shifters="auto"`` columns (module docstring), added to a copy of ``frame``."""
    out = frame.copy()
    names: list[str] = []
    level = next((c for c in ("cluster_id", "country") if c in out.columns and out[c].nunique(dropna=True) > 1), None)
    if level is not None:
        codes = out[level].astype("string").fillna("(missing)")
        levels = sorted(codes.unique())
        for lv in levels[1:]:
            name = f"_level[{level}={lv}]"
            out[name] = (codes == lv).astype(float).to_numpy()
            names.append(name)
    if "innovator" in out.columns:
        inn = pd.to_numeric(out["innovator"], errors="coerce")
        missing = inn.isna()
        inn = inn.fillna(0.0)
        if "phase" in out.columns and out["phase"].notna().any():
            phase = out["phase"].astype("string").fillna("(unknown)")
            for ph in sorted(phase.unique()):
                name = f"_innovator[phase={ph}]"
                out[name] = (inn * (phase == ph)).to_numpy(dtype=float)
                names.append(name)
        else:
            out["_innovator"] = inn.to_numpy(dtype=float)
            names.append("_innovator")
        if missing.any():
            out["_innovator_not_reported"] = missing.astype(float).to_numpy()
            names.append("_innovator_not_reported")
    return out, names


def estimate_productivity(data: Any, *, method: str = DEFAULT_METHOD, shifters: str | Sequence[str] | None = "auto",
                          bootstrap: int = 0, seed: int = 0, screens: RootScreens | None = None,
                          **prodest_args: Any) -> ProductivityEstimate:
    """Estimate the production function and return log productivity per row.

    Parameters
    ----------
    data : Panel or DataFrame
        A canonical :class:`~cluster_econ.panel.Panel`, or a frame with the columns
        :func:`panel_frame` builds (``log_value_added``, ``log_employment``, ``log_capital``,
        ``enterprise_id``, ``year``; ``cluster_id``, ``innovator`` and ``phase`` when there).
    method : str
        Any :func:`prodest` method; the default ``"dynamic"`` and why are in the module
        docstring.
    shifters : "auto", sequence of str, or None
        Law-of-motion controls: ``"auto"`` (cluster levels and last year's innovation by phase,
        see the module docstring), column names, or None.
    bootstrap, seed, screens
        As :func:`prodest` (no bootstrap by default: point estimates are what the propositions
        use).
    **prodest_args
        Passed to :func:`prodest` (``output=``, ``free=``, ``lag_instruments=``...).

    Returns
    -------
    ProductivityEstimate
    """
    from cluster_econ.panel.container import Panel

    if isinstance(data, Panel):
        frame, _ = panel_frame(data, method)
    elif isinstance(data, pd.DataFrame):
        frame = data
    else:
        raise EstimationError(f"estimate_productivity: data must be a Panel or a DataFrame, not {type(data).__name__}")
    if shifters == "auto":
        frame, names = productivity_shifters(frame)
    elif shifters is None:
        names = []
    elif isinstance(shifters, str):
        names = [shifters]
    else:
        names = list(shifters)
    args: dict[str, Any] = {"output": "log_value_added", "free": "log_employment", "state": "log_capital"}
    if method == "gnr":
        args = {"output": "log_gross_output", "free": "log_employment", "state": "log_capital",
                "proxy": "log_materials", "share": "log_materials_share"}
    elif method in ("acf", "lp", "wrdg"):
        args["proxy"] = "log_materials"
    elif method == "op":
        args["proxy"] = "investment"
    args.update(prodest_args)
    lom = [*args.pop("lom_controls", ()), *names]
    empty = pd.Series(np.nan, index=frame.index, name="log_productivity")
    try:
        res = prodest(frame, method=method, lom_controls=lom, bootstrap=bootstrap, seed=seed, screens=screens, **args)
    except RootSelectionError as err:
        return ProductivityEstimate(empty, "declined", str(err), method, pd.Series(dtype=float), None, err.roots,
                                    tuple(names))
    except EstimationError as err:
        return ProductivityEstimate(empty, "declined", str(err), method, pd.Series(dtype=float), None,
                                    pd.DataFrame(), tuple(names))
    omega = res.extra["omega"].rename("log_productivity")
    return ProductivityEstimate(omega, "accepted", "", method, res.params.copy(), res, res.extra["roots"],
                                tuple(names))
