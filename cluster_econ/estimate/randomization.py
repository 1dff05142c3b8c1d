"""Randomization inference: re-run the experiment's assignment rule and recompute the statistic.

Under the sharp null of no effect for any unit, the outcome does not depend on the assignment, so
the distribution of a statistic :math:`T(D^*)` over the assignments :math:`D^*` the design could
have produced is its exact null distribution (Fisher). :func:`randomization_inference` draws
``reps`` assignments by the design's rule (by default: the observed treatment permuted across
randomization units within strata, which keeps the number treated per stratum, i.e. complete
randomization; or any rule given as a function), re-estimates, and reports

.. math:: p = \\frac{1}{B} \\#\\{b : |T^*_b| \\ge |T_{obs}|\\}

(two-sided; as Stata's ``ritest`` and pyfixest's ``ritest``), with its binomial Monte Carlo
standard error. When the design has at most ``reps`` distinct assignments, all are enumerated and
the p-value is exact. The statistic is the coefficient (``"coef"``) or its t statistic
(``"t"``, with the model's own covariance: the randomization-t of Young 2019).

Fast path for :func:`~cluster_econ.estimate.linear.feols` with absorbed fixed effects: the tested
regressor is linear in the randomized column (``treated``, ``treated:post``...). With :math:`Q` the
projection off the fixed effects and the other regressors, :math:`\\hat\\beta^* = \\ddot d^{*\\prime}
\\tilde y / \\ddot d^{*\\prime}\\ddot d^*` with :math:`\\ddot d^* = QD^*` and :math:`\\tilde y = Qy`
(computed once from the fitted model), so no draw is demeaned again. When the largest fixed effect
nests in the randomization units (firm effects, firms randomized), the coefficient, the iid
variance and the cluster-robust variance come from unit- and cell-level sums, computed for batches
of draws with matrix products; HC1 uses the rows. Otherwise each draw is swept by the largest fixed
effect once. See :mod:`cluster_econ.estimate.randomization_fast`. Anything else (other estimators,
a statistic of your own) is refitted per draw from the permuted data.

Why our own code: Stata's ``ritest`` has no Python equivalent with strata and clustered assignment
and pyfixest's ``ritest`` permutes without strata; both are used as checks in
``tests/test_randomization.py``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from cluster_econ.errors import EstimationError
from cluster_econ.estimate.formula import as_frame
from cluster_econ.estimate.randomization_fast import FastFeols, NoFastPathError
from cluster_econ.estimate.result import Result

__all__ = ["RandomizationResult", "assignment_table", "randomization_inference"]

@dataclass(frozen=True)
class RandomizationResult:
    """Outcome of :func:`randomization_inference`."""

    param: str
    estimate: float
    statistic: float
    statistic_kind: str
    p_value: float
    p_value_se: float
    reps: int
    enumerated: bool
    method: str
    n_units: int
    n_strata: int
    seed: int | None
    draws: np.ndarray = field(repr=False, default_factory=lambda: np.empty(0))
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("draws")
        return out

    def tidy(self) -> pd.DataFrame:
        """One row: term, estimate, statistic, p_value (randomization), its Monte Carlo s.e., reps."""
        return pd.DataFrame([{"term": self.param, "estimate": self.estimate, "statistic": self.statistic,
                              "p_value": self.p_value, "p_value_se": self.p_value_se, "reps": self.reps,
                              "method": self.method}])


# ----------------------------------------------------------------------------------------------
# assignments
# ----------------------------------------------------------------------------------------------
@dataclass
class _Design:
    units: pd.DataFrame        # one row per randomization unit: treatment, stratum
    unit_of_row: np.ndarray    # (n_data,) unit index of each data row, -1 if not randomized
    strata_codes: np.ndarray   # (m,)
    treatment: np.ndarray      # (m,) observed unit-level assignment


def _design(frame: pd.DataFrame, treatment: str, cluster: str | None, strata: str | None) -> _Design:
    for c in (treatment, cluster, strata):
        if c is not None and c not in frame.columns:
            raise EstimationError(f"randomization_inference: column {c!r} is not in the data")
    ok = frame[treatment].notna().to_numpy()
    unit_key = frame[cluster] if cluster else pd.Series(np.arange(len(frame)), index=frame.index)
    ok &= unit_key.notna().to_numpy()
    if strata:
        ok &= frame[strata].notna().to_numpy()
    codes = np.full(len(frame), -1, dtype=np.int64)
    ucodes, ulabels = pd.factorize(unit_key[ok], sort=True)
    codes[ok] = ucodes
    t = pd.to_numeric(frame.loc[ok, treatment], errors="coerce").to_numpy(dtype=float)
    m = len(ulabels)
    for col, what, vals in [(treatment, "treatment", t),
                            *([(strata, "stratum", pd.factorize(frame.loc[ok, strata])[0].astype(float))]
                              if strata else [])]:
        lo = np.full(m, np.inf)
        hi = np.full(m, -np.inf)
        np.minimum.at(lo, ucodes, vals)
        np.maximum.at(hi, ucodes, vals)
        bad = np.flatnonzero(lo != hi)
        if bad.size:
            raise EstimationError(f"randomization_inference: the {what} column {col!r} varies within the "
                                  f"randomization unit {cluster!r} = {', '.join(map(str, ulabels[bad[:5]]))}; "
                                  "give cluster= the level at which treatment was assigned")
        if what == "treatment":
            t_unit = lo
        else:
            s_unit = lo.astype(np.int64)
    if not strata:
        s_unit = np.zeros(m, dtype=np.int64)
    units = pd.DataFrame({"unit": ulabels, "treatment": t_unit, "stratum": s_unit})
    return _Design(units=units, unit_of_row=codes, strata_codes=s_unit, treatment=t_unit)


def _n_assignments(des: _Design) -> float:
    total = 1.0
    for s in np.unique(des.strata_codes):
        vals = des.treatment[des.strata_codes == s]
        counts = np.unique(vals, return_counts=True)[1]
        log_n = math.lgamma(len(vals) + 1) - sum(math.lgamma(int(c) + 1) for c in counts)
        if log_n > 30:
            return math.inf
        total *= math.exp(log_n)
        if total > 1e9:
            return total
    return total


def _enumerate(des: _Design) -> np.ndarray:
    """Every distinct assignment (rows), complete randomization within strata (binary treatment)."""
    per = []
    for s in np.unique(des.strata_codes):
        idx = np.flatnonzero(des.strata_codes == s)
        vals = des.treatment[idx]
        levels = np.unique(vals)
        if len(levels) > 2:
            raise EstimationError("enumeration of assignments needs a binary treatment")
        k = int(np.sum(vals == levels[-1]))
        opts = []
        for comb in itertools.combinations(range(len(idx)), k):
            v = np.full(len(idx), levels[0])
            v[list(comb)] = levels[-1]
            opts.append(v)
        per.append((idx, np.array(opts)))
    out = []
    for combo in itertools.product(*[range(len(o)) for _, o in per]):
        t = np.empty(len(des.treatment))
        for (idx, o), j in zip(per, combo, strict=True):
            t[idx] = o[j]
        out.append(t)
    return np.array(out)


def _permuter(des: _Design) -> Callable[[np.random.Generator], np.ndarray]:
    base = np.argsort(des.strata_codes, kind="stable")
    t_sorted = des.treatment[base]

    codes = des.strata_codes.astype(float)

    def draw(rng: np.random.Generator) -> np.ndarray:
        order = np.argsort(codes + rng.random(len(base)))  # by stratum, random within it
        out = np.empty(len(base))
        out[order] = t_sorted
        return out

    return draw


def _vcov_arg(res: Result) -> Any:
    vi = res.vcov_info
    if vi.type in ("CRV1", "CRV3"):
        return {vi.type: "+".join(vi.cluster_vars)}
    return vi.type


# ----------------------------------------------------------------------------------------------
def randomization_inference(model: Result | str | Callable[[pd.DataFrame], Any], data: Any, param: str,
                            treatment: str, *, cluster: str | None = None, strata: str | None = None,
                            reps: int = 1000, seed: int | None = 0, statistic: str = "t",
                            assign: Callable[[np.random.Generator, pd.DataFrame], np.ndarray] | None = None,
                            vcov: Any = None, ssc: str | None = None, fast: bool = True) -> RandomizationResult:
    """Randomization (permutation) p-value of ``param`` under the sharp null of no effect.

    Parameters
    ----------
    model : Result, formula or callable
        A :func:`feols` (or any formula-based) Result, whose formula, covariance and small-sample
        correction are re-used; a formula for :func:`feols`; or a function ``data -> Result``
        (any estimator returning the coefficient ``param``).
    data : DataFrame or Panel
        All randomized units, including any the estimation sample drops.
    param : str
        Tested coefficient (for example ``"treated"`` or ``"treated:post"``).
    treatment : str
        The randomized column (constant within ``cluster``).
    cluster : str, optional
        Unit of randomization (default: each row).
    strata : str, optional
        Randomization strata; assignments are permuted within them.
    reps : int
        Draws; if the design has at most ``reps`` distinct assignments, all are enumerated.
    seed : int or None
        Seed of the ``numpy.random.Generator`` (default 0, reproducible).
    statistic : ``"t"`` (default) or ``"coef"``.
    assign : callable, optional
        ``assign(rng, units) -> new treatment per unit`` re-running your actual assignment rule;
        ``units`` has one row per randomization unit with ``unit``, ``treatment``, ``stratum``.
    vcov, ssc : override the covariance of a formula model (default ``"iid"``, ``"stata"``).
    fast : use the fast path for feols when it applies (results equal to refitting).
    """
    if statistic not in ("t", "coef"):
        raise EstimationError(f"statistic must be 't' or 'coef', not {statistic!r}")
    if reps < 1:
        raise EstimationError("reps must be positive")
    frame = as_frame(data)
    from cluster_econ.estimate.linear import feols

    if isinstance(model, str):
        fit_obs = feols(model, frame, vcov=vcov or "iid", ssc=ssc or "stata")
        formula = model
    elif isinstance(model, Result):
        fit_obs, formula = model, model.formula
    elif callable(model):
        fit_obs, formula = model(frame), None
    else:
        raise EstimationError("model must be a Result, a formula or a function of the data")
    if isinstance(fit_obs, Result):
        vcov_use = vcov or _vcov_arg(fit_obs)
        ssc_use = ssc or fit_obs.vcov_info.ssc
    else:
        vcov_use, ssc_use = vcov, ssc
    b_obs, t_obs = _extract(fit_obs, param)
    des = _design(frame, treatment, cluster, strata)
    notes: list[str] = []
    n_assign = _n_assignments(des)
    enumerated = assign is None and n_assign <= reps
    rng = np.random.default_rng(seed)
    if enumerated:
        assignments = _enumerate(des)
        notes.append(f"all {len(assignments)} assignments enumerated: the p-value is exact")
    draw = _permuter(des)
    fast_engine = None
    method = "refit"
    if fast and isinstance(fit_obs, Result) and formula is not None and fit_obs.model == "feols":
        try:
            fast_engine = FastFeols(fit_obs, frame, param, treatment, des.unit_of_row, len(des.units))
            method = ("fast feols (Frisch-Waugh-Lovell, no re-demeaning"
                      + (", unit-level sums, batched)" if fast_engine.batched(statistic) else ")"))
        except NoFastPathError as exc:
            notes.append(f"refitting every draw: {exc}")
    rows_unit = des.unit_of_row
    B = len(assignments) if enumerated else int(reps)
    col = frame[treatment]

    def assignment(b: int) -> np.ndarray:
        if enumerated:
            return assignments[b]
        if assign is not None:
            t_unit = np.asarray(assign(rng, des.units.copy()), dtype=float)
            if t_unit.shape != (len(des.units),):
                raise EstimationError(f"assign() must return one value per randomization unit "
                                      f"({len(des.units)}), got shape {t_unit.shape}")
            return t_unit
        return draw(rng)

    out = np.empty(B)
    if fast_engine is not None and fast_engine.batched(statistic):
        # draws in batches: matrix products over (draws x units); each draw's value does not
        # depend on the others in its batch, and assignments are drawn in the same order
        size = fast_engine.batch_size(statistic)
        for start in range(0, B, size):
            T = np.vstack([assignment(b) for b in range(start, min(start + size, B))])
            out[start:start + len(T)] = fast_engine.batch(T, statistic)
    else:
        for b in range(B):
            t_unit = assignment(b)
            if fast_engine is not None:
                bb, tt = fast_engine.stats(t_unit[fast_engine.units])
            else:
                t_rows = np.where(rows_unit >= 0, t_unit[np.maximum(rows_unit, 0)], np.nan)
                perm = frame.assign(**{treatment: pd.Series(np.where(rows_unit >= 0, t_rows, col.to_numpy(
                    dtype=float, na_value=np.nan)), index=frame.index)})
                refit = (model(perm) if callable(model) and not isinstance(model, Result)
                         else feols(formula, perm, vcov=vcov_use, ssc=ssc_use))
                bb, tt = _extract(refit, param)
            out[b] = tt if statistic == "t" else bb
    obs = t_obs if statistic == "t" else b_obs
    finite = np.isfinite(out)
    if (~finite).any():
        notes.append(f"{int((~finite).sum())} draws where {param!r} was not identified are left out")
    valid = out[finite]
    p = float(np.mean(np.abs(valid) >= abs(obs) * (1 - 1e-10))) if valid.size else np.nan
    p_se = 0.0 if enumerated else float(np.sqrt(p * (1 - p) / max(valid.size, 1)))
    return RandomizationResult(param=param, estimate=b_obs, statistic=obs, statistic_kind=statistic,
                               p_value=p, p_value_se=p_se, reps=int(valid.size), enumerated=enumerated,
                               method=method, n_units=len(des.units),
                               n_strata=len(np.unique(des.strata_codes)), seed=seed, draws=out,
                               notes=tuple(notes))


def _extract(fit: Any, param: str) -> tuple[float, float]:
    if isinstance(fit, Result):
        if param not in fit.params.index:
            return np.nan, np.nan
        return float(fit.params[param]), float(fit.tvalues[param])
    if isinstance(fit, int | float | np.floating):
        return float(fit), float(fit)
    raise EstimationError("the model function must return a Result or a number")


def assignment_table(data: Any, treatment: str, cluster: str | None = None,
                     strata: str | None = None) -> pd.DataFrame:
    """The randomization units as :func:`randomization_inference` sees them (for writing ``assign``)."""
    return _design(as_frame(data), treatment, cluster, strata).units.copy()

