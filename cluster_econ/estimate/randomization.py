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
(computed once from the fitted model). :math:`Q` is applied by Frisch-Waugh-Lovell: the largest
fixed effect is swept out by one group-mean pass, and the smaller ones and the regressors enter
through a small precomputed cross-product matrix, so each draw costs a few passes over the rows and
no iterative demeaning. Anything else (other estimators, a statistic of your own) is refitted per
draw from the permuted data.

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
from cluster_econ.estimate.formula import _term_columns, as_frame, parse_formula
from cluster_econ.estimate.result import Result

__all__ = ["RandomizationResult", "assignment_table", "randomization_inference"]

MAX_SMALL_FE_LEVELS = 3000  # fixed-effect levels handled as explicit dummies on the fast path


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


# ----------------------------------------------------------------------------------------------
# the fast path for feols
# ----------------------------------------------------------------------------------------------
class _FastFeols:
    """Coefficient and t statistic of ``param`` for permuted treatments, without re-demeaning."""

    def __init__(self, res: Result, frame: pd.DataFrame, param: str, treatment: str,
                 unit_of_row: np.ndarray, n_units: int) -> None:
        spec = parse_formula(res.formula)
        if spec.endog or res.model != "feols" or "sunab" in res.extra:
            raise _NoFastPathError("not a plain OLS feols result")
        term = _term_of(spec, param, frame)
        idx = res.extra["residuals"].index
        self.rows = frame.index.get_indexer(idx)
        if (self.rows < 0).any():
            raise _NoFastPathError("estimation rows not found in the data")
        sub = frame.iloc[self.rows]
        # the tested column must be linear in the treatment: D = T * m
        col_obs = _term_columns(term, sub)[param]
        m = _term_columns(term, sub.assign(**{treatment: 1.0}))[param]
        zero = _term_columns(term, sub.assign(**{treatment: 0.0}))[param]
        t_obs = pd.to_numeric(sub[treatment], errors="coerce").to_numpy(dtype=float)
        if np.any(zero != 0) or not np.allclose(col_obs, t_obs * m, rtol=0, atol=1e-12):
            raise _NoFastPathError(f"{param!r} is not proportional to {treatment!r}")
        self.m = m
        n = len(sub)
        fes = list(spec.fixed_effects)
        from cluster_econ.estimate.formula import _fe_column
        fe_codes = [pd.factorize(_fe_column(sub, f))[0].astype(np.int64) for f in fes]
        sizes = [int(c.max()) + 1 for c in fe_codes]
        if fe_codes:
            big = int(np.argmax(sizes))
            self.B = fe_codes.pop(big)
            sizes.pop(big)
        else:
            self.B = np.zeros(n, dtype=np.int64)
        if sum(sizes) > MAX_SMALL_FE_LEVELS:
            raise _NoFastPathError("the smaller fixed effects have too many levels")
        self.nB = np.bincount(self.B).astype(float)
        # other regressors (all columns of the design but the tested one), demeaned by B
        others = [c for c in res.params.index if c != param]
        from cluster_econ.estimate.formula import _design
        W = _design(spec.rhs, sub, spec.intercept)[others].to_numpy(dtype=float) if others else np.empty((n, 0))
        self.small = fe_codes
        self.Wb = np.column_stack([self._mb(W[:, j]) for j in range(W.shape[1])]) if W.shape[1] else W
        self.G = self._gram(n)
        self.Ginv = np.linalg.pinv(self.G, rcond=1e-12, hermitian=True)
        # y residualised on everything but the tested column: u + beta * Q D_obs
        beta = float(res.params[param])
        d_obs = self.qd(t_obs * m)
        self.ytil = res.extra["residuals"].to_numpy(dtype=float) + beta * d_obs
        check = float(d_obs @ self.ytil) / float(d_obs @ d_obs)
        if not np.isclose(check, beta, rtol=1e-6, atol=1e-10 * max(1.0, abs(beta))):
            raise _NoFastPathError(f"fast-path check failed ({check} vs {beta})")
        self.units = unit_of_row[self.rows]
        if (self.units < 0).any():
            raise _NoFastPathError("estimation rows without a randomization unit")
        self._unit_level(n_units)
        vi = res.vcov_info
        self.kind = vi.type
        self.mult = float(vi.details.get("multiplier", 1.0))
        self.denominator = float(vi.details.get("denominator", n))
        if self.kind not in ("iid", "HC1", "CRV1") or len(vi.cluster_vars) > 1:
            raise _NoFastPathError(f"covariance {self.kind} with {len(vi.cluster_vars)} cluster variables")
        self.cl = (pd.factorize(sub[vi.cluster_vars[0]])[0].astype(np.int64) if vi.cluster_vars else None)

    def _unit_level(self, n_units: int) -> None:
        """When every level of the largest fixed effect lies in one randomization unit, M_B D* =
        T*[unit] * M_B m, so the coefficient needs only unit-level sums (O(units) per draw)."""
        first = np.full(len(self.nB), -1, dtype=np.int64)
        first[self.B] = self.units
        self.unit_ok = bool(np.array_equal(first[self.B], self.units))
        if not self.unit_ok:
            return
        from scipy import sparse

        mt = self._mb(self.m)
        self.a = np.bincount(self.units, weights=self.m * self.ytil, minlength=n_units)
        self.c = np.bincount(self.units, weights=mt * mt, minlength=n_units)
        blocks = [sparse.csr_matrix((mt, (self.units, c)), shape=(n_units, int(c.max()) + 1)) for c in self.small]
        self.As = sparse.hstack(blocks).tocsc() if blocks else None
        self.Aw = np.column_stack([np.bincount(self.units, weights=mt * self.Wb[:, j], minlength=n_units)
                                   for j in range(self.Wb.shape[1])]) if self.Wb.shape[1] else None

    def coef_units(self, t_unit: np.ndarray) -> float:
        """The coefficient for a unit-level assignment (requires ``unit_ok``)."""
        parts = []
        if self.As is not None:
            parts.append(self.As.T @ t_unit)
        if self.Aw is not None:
            parts.append(self.Aw.T @ t_unit)
        den = float((t_unit * t_unit) @ self.c)
        if parts:
            v = np.concatenate(parts)
            den -= float(v @ self.Ginv @ v)
        if den <= 1e-12 * max(float((t_unit * t_unit) @ self.c), 1e-300):
            return np.nan
        return float(t_unit @ self.a) / den

    def _mb(self, x: np.ndarray) -> np.ndarray:
        return x - (np.bincount(self.B, weights=x, minlength=len(self.nB)) / self.nB)[self.B]

    def _zt(self, x: np.ndarray) -> np.ndarray:
        """Z' x for Z = [small fixed-effect dummies, W demeaned by B]."""
        parts = [np.bincount(c, weights=x) for c in self.small]
        parts.append(self.Wb.T @ x)
        return np.concatenate(parts)

    def _z(self, g: np.ndarray) -> np.ndarray:
        """Z g (small-FE dummies times their coefficients plus W_B g_w), then swept by B."""
        out = np.zeros(len(self.B))
        pos = 0
        for c in self.small:
            L = int(c.max()) + 1
            out += g[pos:pos + L][c]
            pos += L
        out = self._mb(out)
        if self.Wb.shape[1]:
            out += self.Wb @ g[pos:]
        return out

    def _gram(self, n: int) -> np.ndarray:
        """Z'Z for Z = [M_B S, W_B] with S the small fixed effects' dummies, from sparse cross-tabs
        (S'M_B S = S'S - S'B diag(1/n_B) B'S), never forming the n x levels dummy matrix."""
        from scipy import sparse

        if self.small:
            offs = np.cumsum([0] + [int(c.max()) + 1 for c in self.small])
            rows = np.concatenate([np.arange(n)] * len(self.small))
            cols = np.concatenate([c + o for c, o in zip(self.small, offs[:-1], strict=True)])
            S = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, int(offs[-1])))
            Bm = sparse.csr_matrix((np.ones(n), (np.arange(n), self.B)), shape=(n, len(self.nB)))
            BS = (Bm.T @ S).tocsr()
            Gss = (S.T @ S).toarray() - (BS.T @ sparse.diags(1 / self.nB) @ BS).toarray()
            Gsw = S.T @ self.Wb if self.Wb.shape[1] else np.empty((S.shape[1], 0))
            Gww = self.Wb.T @ self.Wb
            return np.block([[Gss, Gsw], [Gsw.T, Gww]])
        return self.Wb.T @ self.Wb

    def qd(self, D: np.ndarray) -> np.ndarray:
        d = self._mb(D)
        if self.G.shape[0] == 0:
            return d
        return d - self._z(self.Ginv @ self._zt(d))

    def stats(self, t_rows: np.ndarray) -> tuple[float, float]:
        dd = self.qd(t_rows * self.m)
        den = float(dd @ dd)
        if den <= 1e-14 * max(1.0, float(np.sum((t_rows * self.m) ** 2))):
            return np.nan, np.nan
        b = float(dd @ self.ytil) / den
        u = self.ytil - b * dd
        if self.kind == "iid":
            var = float(u @ u) / self.denominator / den
        elif self.kind == "HC1":
            var = self.mult * float(np.sum((dd * u) ** 2)) / den**2
        else:
            s = np.bincount(self.cl, weights=dd * u)
            var = self.mult * float(s @ s) / den**2
        return b, b / np.sqrt(var) if var > 0 else np.nan


class _NoFastPathError(Exception):
    pass


def _term_of(spec: Any, param: str, frame: pd.DataFrame) -> str:
    for t in spec.rhs:
        if param == t or param.startswith(t + "[") or param in _term_names(t, frame):
            return t
    raise EstimationError(f"{param!r} is not a coefficient of {spec.text!r}")


def _term_names(term: str, frame: pd.DataFrame) -> list[str]:
    try:
        return list(_term_columns(term, frame.head(200)))
    except Exception:  # a term that needs the full data to expand
        return []


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
            fast_engine = _FastFeols(fit_obs, frame, param, treatment, des.unit_of_row, len(des.units))
            method = "fast feols (Frisch-Waugh-Lovell, no re-demeaning)"
        except _NoFastPathError as exc:
            notes.append(f"refitting every draw: {exc}")
    rows_unit = des.unit_of_row
    B = len(assignments) if enumerated else int(reps)
    out = np.empty(B)
    col = frame[treatment]
    for b in range(B):
        if enumerated:
            t_unit = assignments[b]
        elif assign is not None:
            t_unit = np.asarray(assign(rng, des.units.copy()), dtype=float)
            if t_unit.shape != (len(des.units),):
                raise EstimationError(f"assign() must return one value per randomization unit "
                                      f"({len(des.units)}), got shape {t_unit.shape}")
        else:
            t_unit = draw(rng)
        if fast_engine is not None and statistic == "coef" and fast_engine.unit_ok:
            bb, tt = fast_engine.coef_units(t_unit), np.nan
        elif fast_engine is not None:
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

