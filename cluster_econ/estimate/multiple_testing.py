"""Many outcomes: Romano-Wolf and Westfall-Young adjusted p-values from joint resampling.

For hypotheses :math:`H_s: \\beta_s = 0`, :math:`s = 1..S` (typically one treatment coefficient per
outcome), the resampled statistics :math:`t^*_{bs}` must come from the *same* draw :math:`b` for
every outcome, so that their dependence is kept:

- ``method="permutation"``: the same re-randomization of the treatment for every outcome
  (:func:`~cluster_econ.estimate.randomization.randomization_inference`, same seed); the
  :math:`t^*` are draws from the null distribution;
- ``method="bootstrap"``: the same pairs (cluster) bootstrap sample for every outcome, statistics
  centred at the estimate, :math:`t^*_{bs} = (\\hat\\beta^*_{bs} - \\hat\\beta_s)/\\hat\\sigma^*_{bs}`.

Romano-Wolf step-down (Romano and Wolf 2005, 2016; as Stata's ``rwolf`` and pyfixest's ``rwolf``):
order hypotheses by :math:`|t_s|` decreasing; the :math:`k`-th adjusted p-value is
:math:`(\\#\\{b: \\max_{j \\ge k}|t^*_{bj}| \\ge |t_{(k)}|\\} + 1)/(B + 1)`, made monotone.
Westfall-Young free step-down min-p (Westfall and Young 1993, algorithm 2.8; as pyfixest's
``wyoung``): with p-values :math:`p_s` and resampled :math:`p^*_{bs}` (the model's reference
distribution applied to :math:`t^*`), successive minima :math:`q^*_{b,k} = \\min_{j \\ge k} p^*_{b(j)}`
over hypotheses ordered by increasing :math:`p`; adjusted :math:`\\#\\{b: q^*_{b,k} \\le p_{(k)}\\}/B`,
made monotone.

Why our own code: statsmodels' ``multipletests`` has no resampling methods; pyfixest's versions
take pyfixest models only (no strata, no clustered re-randomization); they check the step-down
arithmetic in ``tests/test_multiple_testing.py``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from cluster_econ.errors import EstimationError
from cluster_econ.estimate.formula import as_frame
from cluster_econ.estimate.result import Result

__all__ = ["experiment_pvalues", "resampled_t", "romano_wolf", "romano_wolf_pvalues", "westfall_young",
           "westfall_young_pvalues"]


def romano_wolf_pvalues(t_obs: Sequence[float], t_draws: np.ndarray) -> np.ndarray:
    """Romano-Wolf step-down adjusted p-values from observed ``t_obs`` (S) and draws (B x S)."""
    t = np.abs(np.asarray(t_obs, dtype=float))
    D = np.abs(np.asarray(t_draws, dtype=float))
    if D.ndim != 2 or D.shape[1] != len(t):
        raise EstimationError(f"t_draws must be (B x {len(t)}), got {D.shape}")
    B = D.shape[0]
    order = np.argsort(-t, kind="stable")
    # max over the hypotheses not yet rejected = running max from the least significant one
    tail_max = np.maximum.accumulate(D[:, order[::-1]], axis=1)[:, ::-1]
    p = (np.sum(tail_max >= t[order][None, :], axis=0) + 1) / (B + 1)
    p = np.minimum(1.0, np.maximum.accumulate(p))
    out = np.empty_like(p)
    out[order] = p
    return out


def westfall_young_pvalues(p_obs: Sequence[float], p_draws: np.ndarray) -> np.ndarray:
    """Westfall-Young free step-down min-p adjusted p-values (``p_draws`` is B x S)."""
    p = np.asarray(p_obs, dtype=float)
    P = np.asarray(p_draws, dtype=float)
    if P.ndim != 2 or P.shape[1] != len(p):
        raise EstimationError(f"p_draws must be (B x {len(p)}), got {P.shape}")
    order = np.argsort(p, kind="stable")
    q = np.minimum.accumulate(P[:, order[::-1]], axis=1)[:, ::-1]
    adj = np.maximum.accumulate(np.mean(q <= p[order][None, :], axis=0))
    out = np.empty_like(adj)
    out[order] = adj
    return out


def _as_models(models: Result | Sequence[Result] | Mapping[str, Result]) -> tuple[list[str], list[Result]]:
    if isinstance(models, Result):
        return [models.formula], [models]
    if isinstance(models, Mapping):
        return [str(k) for k in models], list(models.values())
    models = list(models)
    return [m.formula for m in models], models


def resampled_t(models: Any, data: Any, param: str, *, method: str = "permutation", reps: int = 999,
                seed: int | None = 0, treatment: str | None = None, cluster: str | None = None,
                strata: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Observed t statistics (S) and jointly resampled ones (B x S); see the module docstring."""
    names, fits = _as_models(models)
    frame = as_frame(data)
    for nm, f in zip(names, fits, strict=True):
        if param not in f.params.index:
            raise EstimationError(f"{param!r} is not a coefficient of model {nm!r}")
    t_obs = np.array([float(f.tvalues[param]) for f in fits])
    if method == "permutation":
        if treatment is None:
            raise EstimationError("method='permutation' needs treatment= (the randomized column)")
        from cluster_econ.estimate.randomization import randomization_inference

        draws = [randomization_inference(f, frame, param, treatment, cluster=cluster, strata=strata, reps=reps,
                                         seed=seed, statistic="t").draws for f in fits]
        return t_obs, np.column_stack(draws)
    if method == "bootstrap":
        return t_obs, _pairs_bootstrap(fits, frame, param, reps, seed, cluster)
    raise EstimationError(f"method must be 'permutation' or 'bootstrap', not {method!r}")


def _pairs_bootstrap(fits: list[Result], frame: pd.DataFrame, param: str, reps: int, seed: int | None,
                     cluster: str | None) -> np.ndarray:
    from cluster_econ.estimate.linear import feols
    from cluster_econ.estimate.randomization import _vcov_arg

    rng = np.random.default_rng(seed)
    key = frame[cluster].to_numpy() if cluster else np.arange(len(frame))
    codes, labels = pd.factorize(key, sort=True)
    if (codes < 0).any():
        raise EstimationError(f"cluster column {cluster!r} has missing values")
    members = np.split(np.argsort(codes, kind="stable"), np.cumsum(np.bincount(codes))[:-1])
    G = len(labels)
    out = np.full((reps, len(fits)), np.nan)
    for b in range(reps):
        pick = rng.integers(0, G, G)
        rows = np.concatenate([members[g] for g in pick])
        new_id = np.repeat(np.arange(G), [len(members[g]) for g in pick])
        boot = frame.iloc[rows].reset_index(drop=True)
        if cluster:
            boot[cluster] = new_id  # a cluster drawn twice counts as two clusters (and two fixed-effect levels)
        for s, f in enumerate(fits):
            try:
                r = feols(f.formula, boot, vcov=_vcov_arg(f), ssc=f.vcov_info.ssc)
                out[b, s] = (float(r.params[param]) - float(f.params[param])) / float(r.bse[param])
            except (EstimationError, KeyError):
                continue
    return out


def _table(names: list[str], fits: list[Result], param: str) -> pd.DataFrame:
    rows = []
    for nm, f in zip(names, fits, strict=True):
        rows.append({"model": nm, "outcome": f.formula.split("~", 1)[0].strip(), "term": param,
                     "estimate": float(f.params[param]), "std_error": float(f.bse[param]),
                     "statistic": float(f.tvalues[param]), "p_value": float(f.pvalues[param])})
    return pd.DataFrame(rows)


def romano_wolf(models: Any, data: Any, param: str, *, method: str = "permutation", reps: int = 999,
                seed: int | None = 0, treatment: str | None = None, cluster: str | None = None,
                strata: str | None = None) -> pd.DataFrame:
    """Romano-Wolf adjusted p-values of ``param`` across models (one per outcome).

    Parameters
    ----------
    models : Result, list of Result or mapping name -> Result
        Fitted formula models (their formula, covariance and small-sample correction are re-used).
    data : the data they were fitted on (all randomized units for ``"permutation"``).
    param : the coefficient tested in every model.
    method : ``"permutation"`` (re-randomize ``treatment`` within ``strata`` by ``cluster``) or
        ``"bootstrap"`` (pairs bootstrap of ``cluster``).
    reps, seed : draws and the seed of the ``numpy.random.Generator``.

    Returns
    -------
    DataFrame
        One row per model: estimate, std_error, statistic, p_value (the model's own), ``p_romano_wolf``,
        ``p_holm`` (for comparison), ``reps``, ``method``.
    """
    names, fits = _as_models(models)
    t_obs, draws = resampled_t(fits, data, param, method=method, reps=reps, seed=seed, treatment=treatment,
                               cluster=cluster, strata=strata)
    ok = np.isfinite(draws).all(axis=1)
    out = _table(names, fits, param)
    out["p_romano_wolf"] = romano_wolf_pvalues(t_obs, draws[ok])
    from statsmodels.stats.multitest import multipletests

    out["p_holm"] = multipletests(out["p_value"].to_numpy(), method="holm")[1]
    out["reps"] = int(ok.sum())
    out["method"] = method
    return out


def westfall_young(models: Any, data: Any, param: str, *, method: str = "permutation", reps: int = 999,
                   seed: int | None = 0, treatment: str | None = None, cluster: str | None = None,
                   strata: str | None = None) -> pd.DataFrame:
    """Westfall-Young adjusted p-values of ``param`` across models (arguments as :func:`romano_wolf`)."""
    names, fits = _as_models(models)
    t_obs, draws = resampled_t(fits, data, param, method=method, reps=reps, seed=seed, treatment=treatment,
                               cluster=cluster, strata=strata)
    ok = np.isfinite(draws).all(axis=1)
    from scipy import special

    dfs = [f.vcov_info.df_resid for f in fits]

    def pval(t: np.ndarray, df: float | None) -> np.ndarray:
        return 2 * (special.stdtr(df, -np.abs(t)) if df is not None else special.ndtr(-np.abs(t)))

    p_obs = np.array([pval(np.array([t]), df)[0] for t, df in zip(t_obs, dfs, strict=True)])
    p_draws = np.column_stack([pval(draws[ok, s], dfs[s]) for s in range(len(fits))])
    out = _table(names, fits, param)
    out["p_westfall_young"] = westfall_young_pvalues(p_obs, p_draws)
    out["reps"] = int(ok.sum())
    out["method"] = method
    return out


def experiment_pvalues(models: Any, data: Any, param: str, treatment: str, *, cluster: str | None = None,
                       strata: str | None = None, reps: int = 999, seed: int | None = 0) -> pd.DataFrame:
    """Per model: the randomization-inference p-value of ``param`` and the Romano-Wolf and
    Westfall-Young adjustments across the models, all from the same re-randomizations (for a
    training experiment with several outcomes, as proposition P9 reports them).

    Returns the :func:`romano_wolf` table with the columns ``p_ri`` and ``p_westfall_young`` added.
    """
    names, fits = _as_models(models)
    t_obs, draws = resampled_t(fits, data, param, method="permutation", reps=reps, seed=seed, treatment=treatment,
                               cluster=cluster, strata=strata)
    ok = np.isfinite(draws).all(axis=1)
    out = _table(names, fits, param)
    out["p_ri"] = [float(np.mean(np.abs(draws[ok, s]) >= abs(t_obs[s]) * (1 - 1e-10))) for s in range(len(fits))]
    out["p_romano_wolf"] = romano_wolf_pvalues(t_obs, draws[ok])
    from scipy import special

    def pval(t: np.ndarray, df: float | None) -> np.ndarray:
        return 2 * (special.stdtr(df, -np.abs(t)) if df is not None else special.ndtr(-np.abs(t)))

    dfs = [f.vcov_info.df_resid for f in fits]
    p_obs = np.array([pval(np.array([t]), df)[0] for t, df in zip(t_obs, dfs, strict=True)])
    out["p_westfall_young"] = westfall_young_pvalues(
        p_obs, np.column_stack([pval(draws[ok, s], dfs[s]) for s in range(len(fits))]))
    out["reps"] = int(ok.sum())
    return out
