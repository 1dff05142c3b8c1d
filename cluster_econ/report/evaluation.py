"""Batch-report specifications for the evaluation estimators (kept out of :mod:`batch` so that its
executor can change independently).

A specification names ``estimator: att_gt`` (formula ``y ~ covariates``, ``y ~ 1`` for none;
``options``: ``gname`` (required), ``control_group``, ``est_method``, ``anticipation``,
``aggregation`` = simple | group | dynamic | calendar, default ``dynamic``), ``estimator: lee_bounds``
(formula ``y ~ treatment``; ``options.selection``, ``options.tight`` = covariate(s) whose cells
tighten the bounds), ``estimator: ancova`` (formula ``y ~ treatment``;
``options``: ``baseline`` (list of rounds), ``strata``), or any formula estimator with
``options.randomization`` = ``{param, treatment, cluster, strata, reps}``, which adds the
randomization-inference p-value to the result's statistics as ``ri_p_value``. Every draw is seeded
(``options.seed``, default 0), so a specification's output is reproducible.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import pandas as pd

from cluster_econ.errors import ConfigError

__all__ = ["EVALUATION_ESTIMATORS", "estimate_evaluation"]

EVALUATION_ESTIMATORS = ("att_gt", "lee_bounds", "ancova")


def _sides(formula: str) -> tuple[str, str]:
    if "~" not in formula:
        raise ConfigError(f"formula {formula!r} must be 'y ~ ...'")
    lhs, rhs = (s.strip() for s in formula.split("~", 1))
    return lhs, rhs


def estimate_evaluation(spec: Mapping[str, Any], frame: pd.DataFrame, base: Any = None) -> Any:
    """Result of one specification with an evaluation estimator or ``options.randomization``."""
    from cluster_econ import estimate

    est, opts = spec["estimator"], dict(spec.get("options") or {})
    seed = int(opts.get("seed", 0))
    entity, time = spec.get("entity", "enterprise_id"), spec.get("time", "year")
    if est == "att_gt":
        if "gname" not in opts:
            raise ConfigError(f"specification {spec.get('name')!r}: att_gt needs options.gname (first treated period)")
        y, rhs = _sides(spec["formula"])
        res = estimate.att_gt(frame, yname=y, tname=time, idname=entity, gname=opts["gname"],
                              xformla=None if rhs in ("", "1") else rhs,
                              control_group=opts.get("control_group", "nevertreated"),
                              est_method=opts.get("est_method", "dr"),
                              anticipation=int(opts.get("anticipation", 0)), seed=seed)
        return res.aggte(opts.get("aggregation", "dynamic"))
    if est == "lee_bounds":
        y, d = _sides(spec["formula"])
        return estimate.lee_bounds(frame, y, d, selection=opts.get("selection"), tight=opts.get("tight"))
    if est == "ancova":
        y, d = _sides(spec["formula"])
        if "baseline" not in opts:
            raise ConfigError(f"specification {spec.get('name')!r}: ancova needs options.baseline (rounds)")
        return estimate.ancova(frame, y, d, unit=entity, time=time, baseline=list(opts["baseline"]),
                               strata=opts.get("strata"))
    ri = opts.get("randomization")
    if base is None or not isinstance(ri, Mapping):
        raise ConfigError(f"specification {spec.get('name')!r}: options are understood only for "
                          f"{', '.join(EVALUATION_ESTIMATORS)} or as options.randomization")
    out = estimate.randomization_inference(base, frame, ri["param"], ri["treatment"], cluster=ri.get("cluster"),
                                           strata=ri.get("strata"), reps=int(ri.get("reps", 999)), seed=seed)
    return dataclasses.replace(base, stats={**base.stats, "ri_p_value": out.p_value, "ri_reps": out.reps})
