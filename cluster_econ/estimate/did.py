"""Staggered adoption: group-time average treatment effects (Callaway and Sant'Anna 2021).

Units :math:`i` are observed in periods :math:`t_1 < \\dots < t_T`; :math:`G_i` is the first period
in which unit :math:`i` is treated (0 or infinity for units never treated). For every cohort
:math:`g` and period :math:`t` the group-time effect

.. math:: ATT(g, t) = E[Y_t(g) - Y_t(0) \\mid G = g]

is identified by a two-period, two-group comparison: the change of the outcome between a base
period :math:`b` and :math:`t` in cohort :math:`g` against the same change in a comparison group
(never-treated units, or units not yet treated by :math:`t` + ``anticipation``). The base period is
:math:`g - 1 - \\delta` (the last period before treatment, :math:`\\delta` = ``anticipation``) for
:math:`t \\ge g`; for pre-treatment cells it is :math:`t - 1` (``base_period="varying"``) or
:math:`g - 1 - \\delta` (``"universal"``). Each comparison is estimated by outcome regression
(``"reg"``, Heckman, Ichimura and Todd 1997), standardized inverse probability weighting
(``"ipw"``, Abadie 2005) or the doubly robust estimator of Sant'Anna and Zhao (2020) (``"dr"``), with
covariates taken in the earlier of the two periods, exactly as R's ``did`` (``DRDID::reg_did_panel``,
``std_ipw_did_panel``, ``drdid_panel``).

Inference. Each :math:`\\widehat{ATT}(g,t)` is asymptotically linear with influence function
:math:`\\psi_{gt}`; stacked over cells, :math:`\\hat V = n^{-1}\\sum_i \\psi_i\\psi_i'` and the
analytic standard error is :math:`\\sqrt{\\hat V_{jj}/n}` (with ``clustervars`` the influence
functions are summed within clusters first, :math:`\\hat V = n^{-1}\\sum_c S_c S_c'`). The
multiplier bootstrap (Mammen weights, seeded) gives the bootstrap standard error
:math:`(q_{.75} - q_{.25})/(z_{.75} - z_{.25})` of the draws and the critical value of the uniform
band (the :math:`1-\\alpha` quantile of :math:`\\max_j |t^*_j|`), as R's ``did::mboot``. The
pre-trend test is the Wald statistic :math:`n\\,\\hat\\theta_{pre}'\\hat V_{pre}^{-1}\\hat\\theta_{pre}`
of all pre-treatment cells, referred to :math:`\\chi^2`.

Sample rules (R's ``did``): rows with a missing value in a used column are dropped; units not
observed in every period are dropped (balanced panel); cohorts later than the last period plus
``anticipation`` count as never treated; units treated in the first period (plus ``anticipation``)
are dropped; without never-treated units the last cohort becomes the comparison group and the
periods from its treatment on are dropped. Every drop is counted in the result's audit.

Why our own code: the peers (``moderndid``, ``csdid``) are heavy optional dependencies and slow on
a million firm-years; here every cell is a few vectorised operations on the wide outcome matrix.
They are the independent checks in ``tests/test_did.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from cluster_econ._version import __version__
from cluster_econ.errors import EstimationError, FormulaError
from cluster_econ.estimate.formula import _design, as_frame, parse_formula
from cluster_econ.estimate.result import Audit, Result, TestResult, VcovInfo, data_hash

__all__ = ["AttGtResult", "att_gt"]

ENGINE = f"cluster_econ {__version__}"
_TRIM = 0.995  # propensity scores of comparison units at or above this are trimmed (as DRDID)


# ----------------------------------------------------------------------------------------------
# the 2x2 estimators on one cell: dy (change of the outcome), D (1 = cohort g), X (covariates
# with an intercept), w (sampling weights). Each returns (att, influence function per unit).
# ----------------------------------------------------------------------------------------------
def _wls_controls(dy: np.ndarray, D: np.ndarray, X: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fitted change of the comparison units' outcome regression at every unit, and the
    asymptotic linear representation of its coefficients."""
    n = len(dy)
    wc = w * (1 - D)
    XtWX = (X * wc[:, None]).T @ X
    if np.linalg.cond(XtWX) > 1e13:
        raise _CellError("the covariate matrix of the comparison units is singular")
    beta = np.linalg.solve(XtWX, (X * wc[:, None]).T @ dy)
    fitted = X @ beta
    alr = (X * (wc * (dy - fitted))[:, None]) @ np.linalg.inv(XtWX / n)
    return fitted, alr


def _logit(D: np.ndarray, X: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted logit of D on X by Newton's method; fitted probabilities and the asymptotic
    linear representation of the coefficients (score times n times the inverse information)."""
    n, k = X.shape
    if k == 1:  # intercept only: the weighted share, closed form
        ps = np.full(n, float(np.sum(w * D) / np.sum(w)))
    else:
        beta = np.zeros(k)
        for _ in range(100):
            ps = 1 / (1 + np.exp(-(X @ beta)))
            H = (X * (w * ps * (1 - ps))[:, None]).T @ X
            step = np.linalg.solve(H, X.T @ (w * (D - ps)))
            beta += step
            if np.max(np.abs(step)) < 1e-12:
                break
        else:
            raise _CellError("the propensity-score logit did not converge (separation?)")
        ps = 1 / (1 + np.exp(-(X @ beta)))
    ps = np.minimum(ps, 1 - 1e-6)
    info = (X * (w * ps * (1 - ps))[:, None]).T @ X
    if np.linalg.cond(info) > 1e13:
        raise _CellError("the propensity-score information matrix is singular")
    alr = (X * (w * (D - ps))[:, None]) @ (np.linalg.inv(info) * n)
    return ps, alr


class _CellError(Exception):
    """A 2x2 comparison cannot be estimated; its ATT(g,t) is reported as missing."""


def _reg(dy: np.ndarray, D: np.ndarray, X: np.ndarray, w: np.ndarray) -> tuple[float, np.ndarray]:
    fitted, alr = _wls_controls(dy, D, X, w)
    wt = w * D
    mt = wt.mean()
    eta_t = np.mean(wt * dy) / mt
    eta_c = np.mean(wt * fitted) / mt
    inf_t = (wt * dy - wt * eta_t) / mt
    inf_c = (wt * fitted - wt * eta_c + alr @ np.mean(wt[:, None] * X, axis=0)) / mt
    return float(eta_t - eta_c), inf_t - inf_c


def _ipw(dy: np.ndarray, D: np.ndarray, X: np.ndarray, w: np.ndarray,
         ps_fit: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[float, np.ndarray]:
    ps, alr = ps_fit if ps_fit is not None else _logit(D, X, w)
    keep = np.where(D == 1, True, ps < _TRIM)
    wt = keep * w * D
    wc = keep * w * ps * (1 - D) / (1 - ps)
    mt, mc = wt.mean(), wc.mean()
    if mc <= 0:
        raise _CellError("no comparison units left after trimming the propensity score")
    eta_t = np.mean(wt * dy) / mt
    eta_c = np.mean(wc * dy) / mc
    inf_t = (wt * dy - wt * eta_t) / mt
    m2 = np.mean((wc * (dy - eta_c))[:, None] * X, axis=0)
    inf_c = (wc * dy - wc * eta_c + alr @ m2) / mc
    return float(eta_t - eta_c), inf_t - inf_c


def _dr(dy: np.ndarray, D: np.ndarray, X: np.ndarray, w: np.ndarray,
        ps_fit: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[float, np.ndarray]:
    ps, alr_ps = ps_fit if ps_fit is not None else _logit(D, X, w)
    fitted, alr_ols = _wls_controls(dy, D, X, w)
    keep = np.where(D == 1, True, ps < _TRIM)
    wt = keep * w * D
    wc = keep * w * ps * (1 - D) / (1 - ps)
    mt, mc = wt.mean(), wc.mean()
    if mc <= 0:
        raise _CellError("no comparison units left after trimming the propensity score")
    r = dy - fitted
    eta_t = np.mean(wt * r) / mt
    eta_c = np.mean(wc * r) / mc
    inf_t = (wt * r - wt * eta_t - alr_ols @ np.mean(wt[:, None] * X, axis=0)) / mt
    m2 = np.mean((wc * (r - eta_c))[:, None] * X, axis=0)
    m3 = np.mean(wc[:, None] * X, axis=0)
    inf_c = (wc * r - wc * eta_c + alr_ps @ m2 - alr_ols @ m3) / mc
    return float(eta_t - eta_c), inf_t - inf_c


_ESTIMATORS = {"reg": _reg, "ipw": _ipw, "dr": _dr}
_METHOD_NAMES = {"reg": "outcome regression", "ipw": "inverse probability weighting",
                 "dr": "doubly robust (Sant'Anna and Zhao 2020)"}


# ----------------------------------------------------------------------------------------------
# the result
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class AttGtResult(Result):
    """Group-time average treatment effects: a :class:`Result` whose terms are ``ATT(g,t)``.

    ``extra`` holds ``group``, ``time``, ``post`` (arrays per term), ``influence`` (units x terms),
    ``crit_val`` (uniform band critical value), ``pretest`` and the settings.
    """

    def tidy(self, level: float | None = None) -> pd.DataFrame:
        """One row per (group, time): ``group``, ``time``, ``post``, ``estimate``, ``std_error``,
        ``statistic``, ``p_value``, pointwise ``conf_low``/``conf_high`` at ``level`` (default
        1 - ``alp``) and the uniform band ``band_low``/``band_high``."""
        level = 1 - float(self.extra["alp"]) if level is None else level
        out = super().tidy(level)
        out.insert(0, "time", np.asarray(self.extra["time"]))
        out.insert(0, "group", np.asarray(self.extra["group"]))
        out.insert(2, "post", np.asarray(self.extra["post"], dtype=bool))
        half = float(self.extra["crit_val"]) * out["std_error"].to_numpy()
        out["band_low"] = out["estimate"] - half
        out["band_high"] = out["estimate"] + half
        return out

    def pretest(self) -> TestResult:
        """Wald pre-test of parallel trends (chi-square): ``statistic``, ``df``, ``p_value`` (NaN when
        there are no pre-treatment cells or their covariance is singular; ``note`` says why)."""
        pre = self.extra["pretest"]
        return TestResult("pre-trend Wald", float(pre["statistic"]), pre["df"], float(pre["p_value"]), "chi2",
                          null="every pre-treatment ATT(g,t) is zero (parallel trends before treatment)",
                          note=pre.get("note", ""))

    def aggte(self, type: str = "group", balance_e: int | None = None, min_e: float = -np.inf,
              max_e: float = np.inf, na_rm: bool = False, bstrap: bool | None = None,
              biters: int | None = None, cband: bool | None = None, alp: float | None = None,
              seed: int | None = None) -> Any:
        """Aggregate the group-time effects (R's ``aggte``): ``"simple"``, ``"group"``,
        ``"dynamic"`` (event study) or ``"calendar"``. See :func:`cluster_econ.estimate.did_aggte.aggte`."""
        from cluster_econ.estimate.did_aggte import aggte

        return aggte(self, type=type, balance_e=balance_e, min_e=min_e, max_e=max_e, na_rm=na_rm,
                     bstrap=bstrap, biters=biters, cband=cband, alp=alp, seed=seed)


# ----------------------------------------------------------------------------------------------
# preparation of the panel
# ----------------------------------------------------------------------------------------------
@dataclass
class _Panel:
    ids: np.ndarray          # unit labels (N,)
    tlist: np.ndarray        # periods (T,)
    Y: np.ndarray            # (N, T) outcome
    X: np.ndarray            # (T, N, k) covariates with intercept
    xnames: list[str]
    coh: np.ndarray            # (N,) first treatment period, 0 = never
    w: np.ndarray            # (N,) weights
    cluster: np.ndarray | None
    glist: np.ndarray        # cohorts with ATT(g,t)
    dropped: dict[str, int]
    notes: list[str]
    n_input: int


def _covariate_terms(xformla: str | None) -> list[str]:
    if xformla is None:
        return []
    text = str(xformla).strip()
    if text.startswith("~"):
        text = text[1:]
    if text.strip() in ("", "1"):
        return []
    spec = parse_formula(f"y ~ {text}")
    if spec.fixed_effects or spec.endog:
        raise FormulaError(f"xformla {xformla!r}: covariates only (no '|' parts)")
    return list(spec.rhs)


def _prepare(data: Any, yname: str, tname: str, idname: str, gname: str, xformla: str | None,
             control_group: str, anticipation: int, weightsname: str | None,
             clustervars: Any) -> _Panel:
    frame = as_frame(data)
    terms = _covariate_terms(xformla)
    from cluster_econ.estimate.formula import term_variables

    xvars = list(dict.fromkeys(v for t in terms for v in term_variables(t)))
    cl_list = [clustervars] if isinstance(clustervars, str) else list(clustervars or [])
    cl_extra = [c for c in cl_list if c != idname]
    if len(cl_extra) > 1:
        raise EstimationError(f"clustervars {cl_list!r}: at most one cluster variable besides {idname!r} "
                              "(as R's did)")
    used = [yname, tname, idname, gname, *xvars, *([weightsname] if weightsname else []), *cl_extra]
    missing_cols = [c for c in dict.fromkeys(used) if c not in frame.columns]
    if missing_cols:
        raise EstimationError(f"att_gt: column(s) {', '.join(map(repr, missing_cols))} not in the data; "
                              f"columns are {', '.join(map(str, frame.columns[:30]))}")
    for c in (yname, tname, gname, *([weightsname] if weightsname else [])):
        if not (pd.api.types.is_numeric_dtype(frame[c]) or pd.api.types.is_bool_dtype(frame[c])):
            raise EstimationError(f"att_gt: column {c!r} must be numeric (it has type {frame[c].dtype})")
    n_input = len(frame)
    dropped: dict[str, int] = {}
    notes: list[str] = []
    sub = frame[list(dict.fromkeys(used))]
    ok = sub.notna().all(axis=1).to_numpy()
    gv = pd.to_numeric(sub[gname], errors="coerce").to_numpy(dtype=float)
    ok &= ~np.isnan(gv)
    if (~ok).any():
        dropped["missing values"] = int((~ok).sum())
    if not ok.all():
        sub = sub.loc[ok]
    if sub.empty:
        raise EstimationError("att_gt: no rows left after dropping missing values")
    X_all = _design(terms, sub, intercept=True)
    xnames = list(X_all.columns)
    Xv = X_all.to_numpy(dtype=float)
    finite = np.isfinite(Xv).all(axis=1) & np.isfinite(sub[yname].to_numpy(dtype=float))
    if (~finite).any():
        dropped["non-finite values"] = int((~finite).sum())
        sub, Xv = sub.loc[finite], Xv[finite]
    if weightsname:
        wv = sub[weightsname].to_numpy(dtype=float)
        if (wv < 0).any():
            raise EstimationError(f"att_gt: weights {weightsname!r} must be non-negative")
    # units (sorted labels, as np.unique) and periods; then duplicates and time-invariance
    ucodes, uid = pd.factorize(sub[idname].to_numpy(), sort=True)
    uid = np.asarray(uid)
    times = sub[tname].to_numpy(dtype=float)
    tlist = np.unique(times)
    cell_key = ucodes * len(tlist) + np.searchsorted(tlist, times)
    per_cell = np.bincount(cell_key, minlength=len(uid) * len(tlist))
    if (per_cell > 1).any():
        dup = per_cell[cell_key] > 1
        first = sub.loc[dup, [idname, tname]].head(5).to_dict("records")
        raise EstimationError(f"att_gt: {int(dup.sum())} rows share an ({idname}, {tname}) pair, e.g. "
                              f"{first}; a panel needs one row per unit and period")
    first_row = np.zeros(len(uid), dtype=np.int64)
    first_row[ucodes[::-1]] = np.arange(len(ucodes))[::-1]
    for col, what in [(gname, "cohort"), *([(weightsname, "weight")] if weightsname else []),
                      *[(c, "cluster") for c in cl_extra]]:
        codes = pd.factorize(sub[col].to_numpy())[0]
        differs = codes != codes[first_row][ucodes]
        if differs.any():
            bad = np.unique(ucodes[differs])
            raise EstimationError(f"att_gt: the {what} column {col!r} changes over time within units "
                                  f"{', '.join(map(str, uid[bad[:5]]))}; it must be constant per {idname!r}")
    # balanced panel
    counts = np.bincount(ucodes, minlength=len(uid))
    full = counts == len(tlist)
    if not full.all():
        rows = int(counts[~full].sum())
        dropped[f"unbalanced panel ({int((~full).sum())} units missing some periods)"] = rows
        notes.append(f"{int((~full).sum())} units not observed in every period dropped (balanced panel)")
        keep_rows = full[ucodes]
        sub, Xv, times = sub.loc[keep_rows], Xv[keep_rows], times[keep_rows]
        ucodes, uid = pd.factorize(sub[idname].to_numpy(), sort=True)
        uid = np.asarray(uid)
        tlist = np.unique(times)
        first_row = np.zeros(len(uid), dtype=np.int64)
        first_row[ucodes[::-1]] = np.arange(len(ucodes))[::-1]
    if len(tlist) < 2:
        raise EstimationError("att_gt: at least two periods are needed")
    N, T = len(uid), len(tlist)
    tcodes = np.searchsorted(tlist, times)
    # Y in Fortran order: each period's column is contiguous (the cells read columns)
    Y = np.empty((N, T), order="F")
    flat = tcodes * N + ucodes
    Y.reshape(-1, order="F")[flat] = sub[yname].to_numpy(dtype=float)
    X = np.empty((T, N, Xv.shape[1]))
    X.reshape(T * N, -1)[flat] = Xv
    coh = pd.to_numeric(sub[gname], errors="coerce").to_numpy(dtype=float)[first_row]
    w = sub[weightsname].to_numpy(dtype=float)[first_row] if weightsname else np.ones(N)
    cluster = sub[cl_extra[0]].to_numpy()[first_row] if cl_extra else None
    if (coh < 0).any():
        raise EstimationError(f"att_gt: {gname!r} has negative values; use 0 (or inf) for never-treated units")
    coh = np.where(np.isinf(coh), 0.0, coh)
    late = coh > tlist[-1] + anticipation
    if late.any():
        notes.append(f"{int(late.sum())} units first treated after the last period (+ anticipation) "
                     "count as never treated")
        coh[late] = 0.0
    keep_units = np.ones(N, dtype=bool)
    if not (coh == 0).any():
        latest = coh.max()
        cutoff = latest - anticipation
        tkeep = tlist < cutoff
        notes.append(f"no never-treated units: periods from {cutoff:g} on are dropped and the last cohort "
                     f"({latest:g}) serves as the comparison group")
        dropped["periods without a comparison group"] = int(N * (~tkeep).sum())
        tlist, Y, X = tlist[tkeep], Y[:, tkeep], X[tkeep]
        if control_group == "nevertreated":
            coh = np.where(coh == latest, 0.0, coh)
        T = len(tlist)
        if T < 2:
            raise EstimationError("att_gt: fewer than two periods remain once the last cohort is the "
                                  "comparison group")
    first_treated = (coh > 0) & (coh <= tlist[0] + anticipation)
    if first_treated.any():
        dropped["already treated in the first period"] = int(first_treated.sum()) * T
        notes.append(f"{int(first_treated.sum())} units already treated in the first period dropped")
        keep_units &= ~first_treated
    if not keep_units.all():
        uid, Y, X, coh, w = uid[keep_units], Y[keep_units], X[:, keep_units], coh[keep_units], w[keep_units]
        cluster = cluster[keep_units] if cluster is not None else None
    glist = np.unique(coh[coh > 0])
    if control_group == "notyettreated" and not (coh == 0).any():
        glist = glist[glist < glist.max()]
    glist = glist[glist > tlist[0] + anticipation]
    if len(glist) == 0:
        raise EstimationError("att_gt: no treated cohort with a pre-treatment period remains")
    if control_group == "nevertreated" and not (coh == 0).any():
        raise EstimationError("att_gt: no never-treated units; use control_group='notyettreated'")
    return _Panel(ids=uid, tlist=tlist, Y=np.asfortranarray(Y), X=X, xnames=xnames, coh=coh, w=w, cluster=cluster,
                  glist=glist, dropped=dropped, notes=notes, n_input=n_input)


# ----------------------------------------------------------------------------------------------
# public entry point
# ----------------------------------------------------------------------------------------------
def att_gt(data: Any, yname: str, tname: str, idname: str, gname: str, xformla: str | None = None,
           control_group: str = "nevertreated", est_method: str = "dr", anticipation: int = 0,
           weightsname: str | None = None, clustervars: str | list[str] | None = None,
           base_period: str = "varying", alp: float = 0.05, bstrap: bool = False, cband: bool = True,
           biters: int = 1000, seed: int | None = 0) -> AttGtResult:
    """Group-time average treatment effects with staggered adoption (Callaway and Sant'Anna 2021).

    Arguments are named as in R's ``did::att_gt`` so that its users recognise them.

    Parameters
    ----------
    data : DataFrame or Panel
        Long panel, one row per unit and period.
    yname, tname, idname, gname : str
        Outcome, period, unit identifier, and first treatment period (0 or inf = never treated).
    xformla : str, optional
        Covariates, ``"~ x1 + x2"`` (parsed by the package's formula parser, never evaluated).
    control_group : ``"nevertreated"`` or ``"notyettreated"``.
    est_method : ``"dr"`` (default), ``"ipw"`` or ``"reg"``.
    anticipation : int
        Periods before treatment in which units may already react.
    weightsname : str, optional
        Time-invariant sampling weights.
    clustervars : str or list, optional
        A time-invariant cluster variable (besides ``idname``) for the standard errors.
    base_period : ``"varying"`` (default) or ``"universal"``.
    alp : float
        Significance level of the intervals and bands.
    bstrap : bool
        Report multiplier-bootstrap standard errors instead of the analytic ones.
    cband : bool
        Compute the uniform (simultaneous) band by the multiplier bootstrap.
    biters : int
        Bootstrap draws.
    seed : int or None
        Seed of the ``numpy.random.Generator`` for the bootstrap (default 0: reproducible).

    Returns
    -------
    AttGtResult
        Terms ``ATT(g,t)``; ``.tidy()`` has ``group``, ``time``, ``estimate``, ``std_error``,
        pointwise and uniform intervals; ``.aggte(type)`` aggregates; ``.pretest()`` tests
        parallel pre-trends.
    """
    if control_group not in ("nevertreated", "notyettreated"):
        raise EstimationError(f"control_group must be 'nevertreated' or 'notyettreated', not {control_group!r}")
    if est_method not in _ESTIMATORS:
        raise EstimationError(f"est_method must be 'dr', 'ipw' or 'reg', not {est_method!r}")
    if base_period not in ("varying", "universal"):
        raise EstimationError(f"base_period must be 'varying' or 'universal', not {base_period!r}")
    if int(anticipation) != anticipation or anticipation < 0:
        raise EstimationError(f"anticipation must be a non-negative integer, not {anticipation!r}")
    if not 0 < alp < 1:
        raise EstimationError(f"alp must be in (0, 1), not {alp!r}")
    p = _prepare(data, yname, tname, idname, gname, xformla, control_group, int(anticipation),
                 weightsname, clustervars)
    est = _ESTIMATORS[est_method]
    N, T = p.Y.shape
    tl = p.tlist
    groups, times, post, atts, notes = [], [], [], [], list(p.notes)
    t_range = range(T) if base_period == "universal" else range(1, T)
    IF = np.zeros((N, len(p.glist) * len(t_range)), order="F")  # influence functions, one column per cell
    # the propensity score depends on the cell's units and the covariates' period only: with
    # time-invariant covariates it is fitted once per comparison (cohort, comparison group)
    uses_ps = est_method != "reg"
    x_static = uses_ps and all(np.array_equal(p.X[k], p.X[0]) for k in range(1, T))
    ps_memo: dict[tuple[Any, ...], Any] = {}
    for g in p.glist:
        before = np.flatnonzero(tl + anticipation < g)
        pre_g = int(before[-1])
        treated = p.coh == g
        for cur in t_range:
            j = len(atts)
            is_post = g <= tl[cur]
            base = pre_g if (is_post or base_period == "universal") else cur - 1
            groups.append(g)
            times.append(tl[cur])
            post.append(bool(is_post))
            if base == cur:  # universal base period: normalised to zero
                atts.append(0.0)
                continue
            if control_group == "nevertreated":
                control = p.coh == 0
            else:
                thresh = tl[max(cur, base)] + anticipation
                control = (p.coh == 0) | ((p.coh > thresh) & (p.coh != g))
            cell = treated | control
            idx = np.flatnonzero(cell)
            n1 = len(idx)
            D = treated[idx].astype(float)
            dy = p.Y[:, cur][idx] - p.Y[:, base][idx]
            Xc = p.X[min(cur, base)][idx]
            wc = p.w[idx]
            wc = wc / wc.mean()
            try:
                if not control[idx].any():
                    raise _CellError("no comparison units")
                if uses_ps:
                    key = (g, None if control_group == "nevertreated" else thresh, -1 if x_static else min(cur, base))
                    if key not in ps_memo:
                        try:
                            ps_memo[key] = _logit(D, Xc, wc)
                        except (_CellError, np.linalg.LinAlgError) as exc:
                            ps_memo[key] = exc
                    if isinstance(ps_memo[key], Exception):
                        raise ps_memo[key]
                    att, inf = est(dy, D, Xc, wc, ps_memo[key])
                else:
                    att, inf = est(dy, D, Xc, wc)
                IF[idx, j] = inf * (N / n1)
            except (_CellError, np.linalg.LinAlgError) as exc:
                att = np.nan
                IF[:, j] = np.nan
                notes.append(f"ATT({g:g},{tl[cur]:g}) not estimated: {exc}")
            atts.append(att)
    att = np.array(atts, dtype=float)
    names = [f"ATT({_fmt(g)},{_fmt(t)})" for g, t in zip(groups, times, strict=True)]
    V, se, vinfo, crit = _inference(IF, p.cluster, alp, bstrap, cband, biters, seed, idname,
                                    clustervars, N)
    pre = _pretest(att, IF, V, np.array(groups), np.array(times), N)
    notes += [f"pre-test: {pre['note']}"] if pre.get("note") else []
    cov = _cov_from(V, se, N)
    extra = {
        "group": np.array(groups, dtype=float), "time": np.array(times, dtype=float),
        "post": np.array(post, dtype=bool), "influence": IF, "crit_val": crit, "pretest": pre,
        "alp": alp, "control_group": control_group, "est_method": est_method,
        "anticipation": int(anticipation), "base_period": base_period, "n_units": N,
        "unit_weights": p.w, "unit_group": p.coh, "cluster": p.cluster, "bstrap": bstrap,
        "cband": cband, "biters": biters, "seed": seed, "idname": idname, "tname": tname,
        "gname": gname, "yname": yname, "covariates": p.xnames,
    }
    formula = f"{yname} ~ {' + '.join(p.xnames[1:]) or '1'} (ATT(g,t), {est_method}, {control_group})"
    audit = Audit(n_input=p.n_input, dropped=p.dropped, notes=tuple(notes))
    return AttGtResult(params=pd.Series(att, index=names), cov=pd.DataFrame(cov, index=names, columns=names),
                       nobs=N * len(tl), vcov_info=vinfo, formula=formula, model="att_gt", engine=ENGINE,
                       audit=audit, data_hash=data_hash(p.Y, p.coh, p.w), groups={idname: N},
                       stats={"pretest_p": pre["p_value"]}, extra=extra)


def _fmt(v: float) -> str:
    return f"{v:g}" if float(v) != int(v) else str(int(v))


def _inference(IF: np.ndarray, cluster: np.ndarray | None, alp: float, bstrap: bool, cband: bool,
               biters: int, seed: int | None, idname: str, clustervars: Any,
               n: int) -> tuple[np.ndarray, np.ndarray, VcovInfo, float]:
    """Analytic covariance, standard errors (analytic or bootstrap), description and the
    critical value of the uniform band (normal quantile without ``cband``)."""
    from scipy import special

    ok = np.isfinite(IF).all(axis=0)
    Psi = IF if ok.all() else np.where(np.isfinite(IF), IF, 0.0)
    if cluster is not None:
        codes, uniq = pd.factorize(cluster, sort=True)
        S = np.column_stack([np.bincount(codes, weights=Psi[:, j], minlength=len(uniq))
                             for j in range(Psi.shape[1])])
        V = S.T @ S / n
        n_cl = len(uniq)
        cl_name = clustervars if isinstance(clustervars, str) else next(c for c in clustervars if c != idname)
    else:
        V = Psi.T @ Psi / n
        n_cl, cl_name = n, idname
    se = np.sqrt(np.clip(np.diag(V), 0, None) / n)
    se[~ok | (se <= np.sqrt(np.finfo(float).eps) * 10)] = np.nan
    crit = float(special.ndtri(1 - alp / 2))
    details: dict[str, Any] = {"alp": alp, "influence_function": "unit level, scaled by n / n_cell"}
    if bstrap or cband:
        b = _mboot(Psi[:, ok], cluster, biters, seed, alp)
        if bstrap:
            se_b = np.full(len(se), np.nan)
            se_b[np.flatnonzero(ok)] = b["se"] * np.sqrt(b["m"]) / n
            se = np.where(np.isfinite(se), se_b, np.nan)
        if cband and np.isfinite(b["crit"]):
            crit = max(float(b["crit"]), crit)
        details.update(biters=biters, seed=seed, bootstrap_weights="Mammen")
    kind = "multiplier bootstrap" if bstrap else "influence function"
    details["band"] = "uniform (multiplier bootstrap sup-t)" if cband else "pointwise"
    details["crit_val"] = crit
    info = VcovInfo(type=kind, ssc="none", cluster_vars=(cl_name,), n_clusters=(n_cl,), df_resid=None,
                    details=details)
    return V, se, info, crit


def _mboot(Psi: np.ndarray, cluster: np.ndarray | None, biters: int, seed: int | None,
           alp: float) -> dict[str, Any]:
    """R ``did::mboot``: draws, IQR-based scale of each column and the sup-t critical value."""
    from cluster_econ.estimate.bootstrap import multiplier_bootstrap

    rng = np.random.default_rng(seed)
    draws = multiplier_bootstrap(Psi, int(biters), rng, cluster=cluster)
    m = len(np.unique(cluster)) if cluster is not None else Psi.shape[0]
    if draws.shape[1] == 0:
        return {"se": np.array([]), "crit": np.nan, "m": m, "draws": draws}
    srt = np.sort(draws, axis=0)
    B = srt.shape[0]
    q75 = srt[int(np.ceil(0.75 * B)) - 1]
    q25 = srt[int(np.ceil(0.25 * B)) - 1]
    from scipy import special
    sigma = (q75 - q25) / (special.ndtri(0.75) - special.ndtri(0.25))
    good = sigma > np.sqrt(np.finfo(float).eps) * 10
    if good.any():
        tmax = np.max(np.abs(draws[:, good] / sigma[good]), axis=1)
        crit = float(np.sort(tmax)[int(np.ceil((1 - alp) * B)) - 1])  # quantile type 1
    else:
        crit = np.nan
    return {"se": np.where(good, sigma, np.nan), "crit": crit, "m": m, "draws": draws}


def _cov_from(V: np.ndarray, se: np.ndarray, n: int) -> np.ndarray:
    """Covariance of the estimates: V / n, rescaled to the reported standard errors."""
    C = V / n
    d = np.sqrt(np.clip(np.diag(C), 0, None))
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = C / np.outer(d, d)
    corr = np.where(np.isfinite(corr), corr, 0.0)
    s = np.where(np.isfinite(se), se, np.nan)
    out = corr * np.outer(s, s)
    np.fill_diagonal(out, s**2)
    return out


def _pretest(att: np.ndarray, IF: np.ndarray, V: np.ndarray, group: np.ndarray, time: np.ndarray,
             n: int) -> dict[str, Any]:
    """Wald test of the pre-treatment cells, from their block of the (cluster-summed) covariance
    ``V`` of the influence functions."""
    from scipy import stats

    pre = np.flatnonzero((group > time) & np.isfinite(att) & np.isfinite(IF).all(axis=0))
    pre = pre[np.any(IF[:, pre] != 0, axis=0)] if pre.size else pre
    if pre.size == 0:
        return {"statistic": np.nan, "df": 0, "p_value": np.nan, "note": "no pre-treatment cells"}
    Vp = V[np.ix_(pre, pre)]
    if 1 / np.linalg.cond(Vp) <= np.finfo(float).eps:
        return {"statistic": np.nan, "df": int(pre.size), "p_value": np.nan,
                "note": "singular covariance of the pre-treatment cells"}
    a = att[pre]
    W = float(n * a @ np.linalg.solve(Vp, a))
    return {"statistic": W, "df": int(pre.size), "p_value": float(stats.chi2.sf(W, pre.size)), "note": ""}
