"""Linear models with absorbed fixed effects: OLS (``feols``) and two-stage least squares (``iv``).

The model is

.. math:: y_i = x_i'\\beta + \\alpha_{1,g_1(i)} + \\dots + \\alpha_{J,g_J(i)} + \\varepsilon_i,

estimated by ordinary (or analytically weighted) least squares after sweeping the fixed effects
out of :math:`y` and :math:`X` (Frisch-Waugh-Lovell; see :mod:`cluster_econ.estimate.demean`). With
an IV part ``endog ~ instruments`` the endogenous regressors are replaced by their first-stage
projection on the exogenous regressors and the excluded instruments (2SLS), everything within
the fixed effects.

Why our own code: pyfixest does the same computations but is an optional peer (with numba) and
has no cache across calls; statsmodels and linearmodels do not absorb several high-dimensional
fixed effects. Correctness is checked against all three in ``tests/estimate_linear``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import linalg

from cluster_econ._version import __version__
from cluster_econ.errors import EstimationError, FormulaError
from cluster_econ.estimate.covariance import CovInputs, clustering_columns, compute_vcov, parse_vcov
from cluster_econ.estimate.demean import Absorber, get_absorber, singleton_mask
from cluster_econ.estimate.formula import (
    FormulaSpec,
    _design,
    _fe_column,
    as_frame,
    model_frame,
    parse_formula,
)
from cluster_econ.estimate.result import Audit, CovarianceUpdate, Result, data_hash
from cluster_econ.estimate.survey import SurveyDesign, check_vcov_for_survey, design_rows
from cluster_econ.estimate.survey import sandwich as survey_sandwich

__all__ = ["feols", "feols_many", "iv"]

ENGINE = f"cluster_econ {__version__}"
COLLINEAR_TOL = 1e-10


def _panel_defaults(data: Any, entity: str | None, time: str | None) -> tuple[pd.DataFrame, str | None, str | None]:
    is_panel = not isinstance(data, pd.DataFrame)
    frame = as_frame(data)
    if is_panel:
        entity = entity or "enterprise_id"
        time = time or "year"
    return frame, entity, time


def feols(formula: str | Sequence[str], data: Any, vcov: str | Mapping[str, str] | None = "iid",
          weights: str | None = None, ssc: str = "stata", entity: str | None = None,
          time: str | None = None, tol: float = 1e-10, maxiter: int = 10_000,
          drop_singletons: bool = True, survey: SurveyDesign | None = None) -> Result | list[Result]:
    """OLS (or 2SLS with an IV part) with any number of absorbed fixed effects.

    Parameters
    ----------
    formula : str or list of str
        ``"y ~ x1 + x2 | firm + year"``; ``"y ~ x | firm | d ~ z"`` for 2SLS; ``a^b`` interacts
        fixed effects. A list estimates each formula, sharing the demeaning (see
        :func:`feols_many`).
    data : DataFrame or Panel
        A Panel is used as one row per enterprise-year with the columns of its enterprise, of the
        manager in charge that year (``schooling_years``, ``management_training``...) and of its
        cluster-year (``phase``): :func:`cluster_econ.estimate.panel_frame.panel_frame`.
    vcov : ``"iid"``, ``"HC1"``, ``"HC3"``, ``{"CRV1": "firm"}``, ``{"CRV1": "firm+year"}``,
        ``{"CRV3": "firm"}``; see :mod:`cluster_econ.estimate.covariance`.
    weights : str, optional
        Column of analytic weights (positive; rows with weight 0 are dropped and counted).
    ssc : ``"stata"``, ``"fixest"`` or ``"none"``: the small-sample correction preset.
    entity, time : str, optional
        Panel identifiers (recorded in the result; default to ``enterprise_id`` and ``year`` for a
        Panel).
    tol, maxiter : demeaning tolerance and maximum sweeps.
    drop_singletons : bool
        Iteratively drop observations alone in a fixed-effect group (counted in
        ``audit.dropped["singletons"]``), as reghdfe and fixest do.
    survey : SurveyDesign, optional
        The sampling design (:class:`cluster_econ.estimate.survey.SurveyDesign`): the regression is
        weighted by its sampling weights, restricted to its domain, and its covariance is the
        design-based Taylor linearisation (strata, PSUs, finite-population correction) of R's
        ``svyglm``, computed from the within-transformed scores when fixed effects are absorbed.
        ``vcov`` and ``weights`` must then be left at their defaults.

    Returns
    -------
    Result
        ``stats``: ``r2``, ``adj_r2``, ``rmse``, ``within_r2`` (with fixed effects) and, for 2SLS,
        ``first_stage_F`` (Wald F of the excluded instruments in the first stage, with the same
        covariance type as the second stage). ``result.vcov(other, ssc=...)`` gives the same fit
        under another covariance (not with ``survey=``).
    """
    if not isinstance(formula, str):
        if not isinstance(formula, Sequence) or not all(isinstance(f, str) for f in formula):
            raise FormulaError(f"formula must be a string such as 'y ~ x | firm' or a list of them, "
                               f"not {type(formula).__name__}")
        if any("sunab(" in f for f in formula):
            return [feols(f, data, vcov=vcov, weights=weights, ssc=ssc, entity=entity, time=time, tol=tol,
                          maxiter=maxiter, drop_singletons=drop_singletons, survey=survey) for f in formula]
        return feols_many(formula, data, vcov=vcov, weights=weights, ssc=ssc, entity=entity,
                          time=time, tol=tol, maxiter=maxiter, drop_singletons=drop_singletons,
                          survey=survey)
    frame, entity, time = _panel_defaults(data, entity, time)
    spec = parse_formula(formula)
    shared: dict[str, Any] = {"data": data}  # what Result.vcov() reads new clustering variables from
    weights = _survey_setup(survey, frame, vcov, weights, shared)
    res = _fit(spec, frame, vcov, weights, ssc, tol, maxiter, drop_singletons, entity, time, shared)
    for term in (t for t in spec.rhs if t.startswith("sunab(")):  # Sun-Abraham: aggregate the cells
        from cluster_econ.estimate.sunab import aggregate, sunab_spec
        res = aggregate(res, term, *sunab_spec(term), frame)
    return res


def _survey_setup(survey: SurveyDesign | None, frame: pd.DataFrame, vcov: Any, weights: str | None,
                  shared: dict[str, Any]) -> str | None:
    """Resolve a survey design into ``shared["survey"]``; return the weights column to use."""
    if survey is None:
        return weights
    check_vcov_for_survey(vcov, weights)
    shared["survey"] = design_rows(survey, frame)
    return survey.weights


def feols_many(formulas: Sequence[str], data: Any, **kwargs: Any) -> list[Result]:
    """Estimate several formulas on the same data, demeaning each column once.

    Fixed-effect codes, singleton removal and demeaned columns are shared between formulas with
    the same estimation sample and fixed effects; the formulas of one sample are then fitted in
    parallel threads (``workers=``, default the machine's cores; see
    :func:`cluster_econ.parallel.map_tasks`), with results identical to ``workers=1``.
    """
    entity, time = kwargs.pop("entity", None), kwargs.pop("time", None)
    frame, entity, time = _panel_defaults(data, entity, time)
    shared: dict[str, Any] = {}
    opts = {"vcov": "iid", "weights": None, "ssc": "stata", "tol": 1e-10, "maxiter": 10_000,
            "drop_singletons": True, "survey": None}
    shared["workers"] = kwargs.pop("workers", None)  # threads fitting the formulas of one sample
    unknown = set(kwargs) - set(opts)
    if unknown:
        raise TypeError(f"unknown arguments {sorted(unknown)}")
    opts.update(kwargs)
    opts["weights"] = _survey_setup(opts.pop("survey"), frame, opts["vcov"], opts["weights"], shared)
    args = (opts["vcov"], opts["weights"], opts["ssc"], opts["tol"], opts["maxiter"],
            opts["drop_singletons"], entity, time, shared)
    specs = [parse_formula(f) for f in formulas]
    results: list[Result | None] = [None] * len(specs)
    # formulas with the same outcome and fixed effects, no IV part, and the same estimation sample
    # are fitted from one prepared sample (union of their regressors)
    groups: dict[tuple[Any, ...], list[int]] = {}
    for i, sp in enumerate(specs):
        if not sp.endog:
            groups.setdefault((sp.lhs, sp.fixed_effects), []).append(i)
    _, cl_names = parse_vcov(opts["vcov"])
    extra_cols = [*cl_names, *([opts["weights"]] if opts["weights"] else [])]
    notna: dict[str, np.ndarray] = {}
    for idxs in groups.values():
        if len(idxs) < 2:
            continue
        members = [specs[i] for i in idxs]
        try:
            masks = [_notna_all([*sp.variables(), *extra_cols], frame, notna) for sp in members]
        except KeyError:
            continue  # a missing column: let the single fits raise the clear error
        if not all(np.array_equal(m, masks[0]) for m in masks[1:]):
            continue
        first = members[0]
        union = FormulaSpec(text=" ; ".join(sp.text for sp in members), lhs=first.lhs,
                            rhs=tuple(dict.fromkeys(t for sp in members for t in sp.rhs)),
                            intercept=any(sp.intercept for sp in members),
                            fixed_effects=first.fixed_effects)
        try:
            fitted = _fit(union, frame, *args, variants=members)
        except (EstimationError, _NotShareableError):
            continue
        for i, r in zip(idxs, fitted, strict=True):
            results[i] = r
    for i, sp in enumerate(specs):
        if results[i] is None:
            results[i] = _fit(sp, frame, *args)
    return [r for r in results if r is not None]


def _notna_all(cols: Sequence[str], frame: pd.DataFrame, memo: dict[str, np.ndarray]) -> np.ndarray:
    out = np.ones(len(frame), dtype=bool)
    for c in dict.fromkeys(cols):
        if c not in memo:
            memo[c] = frame[c].notna().to_numpy()
        out &= memo[c]
    return out


class _NotShareableError(Exception):
    """The formulas of a group do not share one estimation sample."""


def iv(formula: str, data: Any, **kwargs: Any) -> Result:
    """Two-stage least squares: ``y ~ exog | fe | endog ~ instruments`` or ``y ~ exog | endog ~ z``.

    Same engine and arguments as :func:`feols`; the formula must have an IV part.
    """
    spec = parse_formula(formula)
    if not spec.endog:
        raise FormulaError(f"iv: formula {formula!r} has no 'endog ~ instruments' part")
    res = feols(formula, data, **kwargs)
    assert isinstance(res, Result)
    return res


# ----------------------------------------------------------------------------------------------
def _select_independent(G: np.ndarray, diag_ref: np.ndarray, forced: int = 0) -> list[int]:
    """Indices of columns kept, in order, dropping any column whose residual sum of squares after
    projection on the earlier kept columns is <= COLLINEAR_TOL times its reference size.
    The first ``forced`` columns are checked only among themselves (they are kept if possible)."""
    keep: list[int] = []
    for j in range(G.shape[0]):
        if diag_ref[j] <= 0 or G[j, j] <= COLLINEAR_TOL * diag_ref[j]:
            continue
        if keep:
            S = np.array(keep)
            try:
                coef = linalg.solve(G[np.ix_(S, S)], G[S, j], assume_a="pos")
            except (linalg.LinAlgError, ValueError):
                coef = np.linalg.lstsq(G[np.ix_(S, S)], G[S, j], rcond=None)[0]
            r = G[j, j] - G[j, S] @ coef
        else:
            r = G[j, j]
        if r > COLLINEAR_TOL * G[j, j]:
            keep.append(j)
    return keep


def _fstack(cols: Sequence[np.ndarray], n: int) -> np.ndarray:
    """Column-major (n x k) matrix from 1-d columns (column operations stay contiguous)."""
    out = np.empty((n, len(cols)), order="F")
    for j, c in enumerate(cols):
        out[:, j] = c
    return out


def _cat(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Columns of A then B, without a copy when B is empty."""
    return A if B.shape[1] == 0 else np.hstack([A, B])


def _wsum(a: np.ndarray, w: np.ndarray | None) -> np.ndarray:
    return a * w[:, None] if w is not None and a.ndim == 2 else (a * w if w is not None else a)


def _fit(spec: FormulaSpec, frame: pd.DataFrame, vcov: Any, weights: str | None, ssc: str,
         tol: float, maxiter: int, drop_singletons: bool, entity: str | None, time: str | None,
         shared: dict[str, Any], variants: Sequence[FormulaSpec] | None = None) -> Any:
    """Fit ``spec``; with ``variants`` (formulas whose regressor terms are a subset of ``spec``'s
    and whose estimation sample is the same), prepare the sample once and fit each variant."""
    kind, cl_names = parse_vcov(vcov)
    extra = list(cl_names) + ([weights] if weights else [])
    reasons = {c: "missing cluster" for c in cl_names}
    if weights:
        reasons[weights] = "missing weights"
    mf = model_frame(spec, frame, extra=extra, extra_reasons=reasons)
    if variants is not None and "non-finite values" in mf.dropped:
        raise _NotShareableError
    dropped = dict(mf.dropped)
    n0 = len(mf.y)
    keep = np.ones(n0, dtype=bool)
    w = None
    if weights:
        w_all = pd.to_numeric(mf.extra[weights], errors="coerce").to_numpy(dtype=float)
        bad = np.flatnonzero(~np.isfinite(w_all) | (w_all < 0))
        if bad.size:
            rows = ", ".join(map(str, mf.index[bad[:10]].tolist()))
            raise EstimationError(f"weights column {weights!r} must be finite and non-negative; "
                                  f"bad values in rows {rows}")
        zero = w_all == 0
        if zero.any():
            dropped["zero weights"] = int(zero.sum())
            keep &= ~zero
    # fixed effects: codes, singletons
    fe_names = list(mf.fe.columns)
    pos = mf.positions if mf.positions is not None else np.arange(n0)
    survey = shared.get("survey")
    if survey is not None and survey.domain is not None:
        outside = keep & ~survey.domain[pos]
        if outside.any():
            dropped["outside the survey domain"] = int(outside.sum())
            keep &= ~outside

    def full_codes(kind: str, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Codes of a column over the whole input frame (shared between formulas)."""
        key = (kind, name)
        if key not in shared:
            col = _fe_column(frame, name) if kind == "fe" else frame[name]
            cd, uniq = pd.factorize(col)
            shared[key] = (cd.astype(np.int64), np.asarray(uniq))
        return shared[key]

    def sample_codes(kind: str, name: str, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        cd, uniq = full_codes(kind, name)
        if rows is None and len(pos) == len(cd):
            return cd, uniq  # every input row kept: the full-frame codes are already compact
        c = cd[pos] if rows is None else cd[pos][rows]
        present = np.bincount(c, minlength=len(uniq)) > 0
        newid = np.cumsum(present) - 1
        return newid[c], uniq[present]

    if fe_names:
        raw_codes = [sample_codes("fe", c, None)[0] for c in fe_names]
        if drop_singletons:
            sm = singleton_mask([c[keep] for c in raw_codes]) if keep.any() else keep[keep]
            idx = np.flatnonzero(keep)
            n_single = int((~sm).sum())
            if n_single:
                dropped["singletons"] = n_single
                keep[idx[~sm]] = False
    if not keep.any():
        raise EstimationError(f"no observations left to estimate {spec.text!r} "
                              f"(input {mf.n_input} rows; dropped: {dropped})")
    n = int(keep.sum())
    index = mf.index[keep]
    w = w_all[keep] if weights else None
    fe_levels: list[np.ndarray] = []
    codes: list[np.ndarray] = []
    all_rows = bool(keep.all())
    for c in fe_names:
        cd, uniq = sample_codes("fe", c, None if all_rows else keep)
        codes.append(cd)
        fe_levels.append(uniq)

    def rows(a: np.ndarray) -> np.ndarray:
        return a if all_rows else a[keep]

    y_raw = rows(mf.y.to_numpy(dtype=float))
    X_raw = rows(mf.X.to_numpy(dtype=float))
    E_raw = rows(mf.endog.to_numpy(dtype=float))
    Z_raw = rows(mf.Z.to_numpy(dtype=float))
    xnames = list(mf.X.columns)
    enames = list(mf.endog.columns)
    znames = list(mf.Z.columns)
    notes: list[str] = []
    # demean (cached across calls on the same sample and fixed effects)
    absorber = None
    if codes:
        absorber = get_absorber(codes, w, tol, maxiter)
        cols = {"y|" + spec.lhs: y_raw}
        cols.update({"x|" + nm: X_raw[:, j] for j, nm in enumerate(xnames)})
        cols.update({"e|" + nm: E_raw[:, j] for j, nm in enumerate(enames)})
        cols.update({"z|" + nm: Z_raw[:, j] for j, nm in enumerate(znames)})
        dm = absorber.demean_named(cols)
        info = absorber.info
        notes.append(f"{info.describe()[:-1]}, tol {tol:g}): {info.computed} columns demeaned, "
                     f"{info.reused} reused from the cache")
        y = dm["y|" + spec.lhs]
        X = _fstack([dm["x|" + nm] for nm in xnames], n)
        E = _fstack([dm["e|" + nm] for nm in enames], n)
        Z = _fstack([dm["z|" + nm] for nm in znames], n)
    else:
        y, X, E, Z = y_raw, X_raw, E_raw, Z_raw
    fe_dof: dict[str, int] = {}
    if absorber is not None:
        fe_dof = {"fixest": absorber.fe_dof(False), "none": absorber.fe_dof(False)}
        fe_dof["stata"] = absorber.fe_dof(True) if ssc == "stata" else fe_dof["fixest"]
    cl_codes = [sample_codes("cl", c, None if all_rows else keep)[0] for c in cl_names]
    # hash of the estimation sample: digests of y, of each regressor and of the grouping columns
    # and weights, combined (so formulas on one sample share the work)
    gdigest = data_hash(*(codes or []), *(cl_codes or []), *([w] if w is not None else []))
    col_digest: dict[str, str] = {}

    def digest(name: str, col: np.ndarray) -> str:
        if name not in col_digest:
            col_digest[name] = data_hash(col)
        return col_digest[name]

    ydigest = digest("y|" + spec.lhs, y_raw)
    sample_notes = notes
    X_all, X_raw_all, xnames_all = X, X_raw, xnames
    xpos = {nm: j for j, nm in enumerate(xnames_all)}

    E_all, Z_all = E, Z
    norm_memo: dict[tuple[str, int], float] = {}

    def raw_norm(part: str, j: int) -> float:
        """Weighted sum of squares of a raw (not demeaned) regressor column."""
        if (part, j) not in norm_memo:
            col = X_raw_all[:, j] if part == "x" else E_raw[:, j]
            norm_memo[(part, j)] = float(np.sum(w * col * col)) if w is not None else float(col @ col)
        return norm_memo[(part, j)]

    tss_memo: dict[Any, float] = {}
    nested_memo: dict[Any, bool] = {}

    def total_ss(has_const: bool | None) -> float:
        """Total sum of squares of y: centred (True), uncentred (False), within (None)."""
        if has_const not in tss_memo:
            wt = w if w is not None else np.ones(n)
            if has_const is None:
                val = float(np.sum(wt * y**2))
            elif has_const:
                ybar = float(np.sum(wt * y_raw) / np.sum(wt))
                val = float(np.sum(wt * (y_raw - ybar) ** 2))
            else:
                val = float(np.sum(wt * y_raw**2))
            tss_memo[has_const] = val
        return tss_memo[has_const]

    def estimate(spec: FormulaSpec, idx: list[int]) -> Result:
        full = idx == list(range(X_all.shape[1]))
        X = X_all if full else _fstack([X_all[:, jj] for jj in idx], n)
        raw_idx = list(idx)

        def raw_design(sel: list[int]) -> np.ndarray:
            """Raw (not demeaned) regressors [X, endog] restricted to the columns ``sel``."""
            nxr = len(raw_idx)
            return _fstack([X_raw_all[:, raw_idx[j]] if j < nxr else E_raw[:, j - nxr] for j in sel], n)
        xnames = [xnames_all[jj] for jj in idx]
        E, Z = E_all, Z_all
        notes = list(sample_notes)
        # collinearity: regressors [X, E] in order; then instruments [X kept, Z]
        R = _cat(X, E)
        rnames = xnames + enames
        GR = _wsum(R, w).T @ R
        ref = np.array([raw_norm("x", jj) for jj in raw_idx] + [raw_norm("e", jj) for jj in range(E_raw.shape[1])]) \
            if codes else np.diag(GR).copy()
        absorbed = [j for j in range(R.shape[1]) if ref[j] > 0 and GR[j, j] <= COLLINEAR_TOL * ref[j]]
        kept = _select_independent(GR, ref)
        collinear = [rnames[j] for j in range(len(rnames)) if j not in kept]
        if absorbed:
            notes.append("absorbed by the fixed effects: " + ", ".join(rnames[j] for j in absorbed))
        nx = len(xnames)
        kx = [j for j in kept if j < nx]
        ke = [j - nx for j in kept if j >= nx]
        if enames and len(ke) < len(enames):
            bad_e = ", ".join(enames[j] for j in range(len(enames)) if j not in ke)
            raise EstimationError("an endogenous regressor is collinear with the exogenous regressors or "
                                  f"absorbed by the fixed effects: {bad_e}")
        if kx != list(range(X.shape[1])):
            X = X[:, kx]
        if ke != list(range(E.shape[1])):
            E = E[:, ke]
        xnames_k, enames_k = [xnames[j] for j in kx], [enames[j] for j in ke]
        is_iv = bool(enames)
        if is_iv:
            W = np.hstack([X, Z])
            GW = _wsum(W, w).T @ W
            refw = np.diag(GW).copy()
            kw = _select_independent(GW, refw)
            zk = [j - X.shape[1] for j in kw if j >= X.shape[1]]
            dropped_z = [znames[j] for j in range(len(znames)) if j not in zk]
            if dropped_z:
                collinear += dropped_z
            Z, znames_k = Z[:, zk], [znames[j] for j in zk]
            if len(znames_k) < len(enames_k):
                raise EstimationError(f"under-identified: {len(enames_k)} endogenous regressors but only "
                                      f"{len(znames_k)} usable excluded instruments")
            W = np.hstack([X, Z])
        names = xnames_k + enames_k
        Rk = _cat(X, E)
        k = Rk.shape[1]
        if k == 0:
            raise EstimationError(f"no regressors left in {spec.text!r} after removing collinear terms")
        if n <= k:
            raise EstimationError(f"{n} observations are too few for {k} coefficients")
        if is_iv:
            WtW = _wsum(W, w).T @ W
            Pi = linalg.solve(WtW, _wsum(W, w).T @ Rk, assume_a="pos")
            Rhat = W @ Pi
            A = _wsum(Rhat, w).T @ Rk
            beta = linalg.solve(A, _wsum(Rhat, w).T @ y)
            Xs = Rhat
        else:
            Xs = Rk
            A = _wsum(Rk, w).T @ Rk
            beta = linalg.solve(A, _wsum(Rk, w).T @ y, assume_a="pos")
        u = y - Rk @ beta
        XtX = _wsum(Xs, w).T @ Xs if is_iv else A
        bread = linalg.inv(XtX)
        bread = (bread + bread.T) / 2

        def leverage() -> np.ndarray:
            """Diagonal of the hat matrix of the full model, fixed-effect dummies included."""
            h = np.einsum("ij,jk,ik->i", Xs, bread, Xs)
            h = h * w if w is not None else h
            if len(codes) == 1:
                # one absorbed factor: its dummies add w_i / sum of w in the group
                c = codes[0]
                wt = w if w is not None else np.ones(n)
                h = h + wt / np.bincount(c, weights=wt)[c]
            elif len(codes) > 1:
                raise EstimationError("HC3 with more than one absorbed fixed effect is not implemented "
                                      "(the leverage of the fixed effects is not available); use "
                                      "'HC1' or a clustered covariance, or enter the smaller factor "
                                      "as C(...) regressors")
            return h

        def jackknife(cl: np.ndarray) -> np.ndarray:
            """Leave-one-cluster-out coefficients. Exact: when a fixed effect is not nested in the
            clusters, the remaining sample is demeaned again for each cluster left out."""
            if is_iv:
                raise EstimationError("CRV3 is implemented for OLS only")
            order = np.argsort(cl, kind="stable")
            bounds = np.flatnonzero(np.diff(cl[order])) + 1
            groups_idx = np.split(order, bounds)
            G = int(cl.max()) + 1
            nested = all(len(np.unique(c * G + cl)) == int(c.max()) + 1 for c in codes)
            out = []
            if nested:
                Xw = _wsum(Xs, w)
                Xty = Xw.T @ y
                for grp in groups_idx:
                    Xg, yg, Xwg = Xs[grp], y[grp], Xw[grp]
                    out.append(np.linalg.lstsq(XtX - Xwg.T @ Xg, Xty - Xwg.T @ yg, rcond=None)[0])
                return np.array(out)
            raw = np.column_stack([y_raw, raw_design(sel_k)])
            for grp in groups_idx:
                m = np.ones(n, dtype=bool)
                m[grp] = False
                sub_codes = [pd.factorize(c[m])[0].astype(np.int64) for c in codes]
                ws = w[m] if w is not None else None
                D = Absorber(sub_codes, ws, tol, maxiter).demean(raw[m])
                ys, Xsub = D[:, 0], D[:, 1:]
                out.append(np.linalg.lstsq(_wsum(Xsub, ws).T @ Xsub, _wsum(Xsub, ws).T @ ys, rcond=None)[0])
            return np.array(out)

        sel_k = [*kx, *[nx + j for j in ke]]
        parts = [ydigest] + [digest("x|" + nm, X_raw_all[:, jj]) for jj, nm in zip(raw_idx, xnames, strict=True)]
        parts += [digest("e|" + nm, E_raw[:, jj]) for jj, nm in enumerate(enames)]

        def covariance(vkind: str, vcodes: list[np.ndarray], vnames: Sequence[str], vssc: str) -> CovarianceUpdate:
            """The covariance of this fit under one type and preset, with what depends on it."""
            dof = fe_dof
            if absorber is not None and vssc == "stata" and ssc != "stata":
                dof = {**fe_dof, "stata": absorber.fe_dof(True)}
            inputs = CovInputs(X=Xs, u=u, bread=bread, beta=beta, weights=w, fe_codes=codes, fe_dof=dof,
                               leverage=leverage, jackknife=jackknife, nested_memo=nested_memo)
            if survey is not None:
                V = survey_sandwich(survey, bread, inputs.scores(), pos[keep])
                vinfo = survey.vcov_info(k + (fe_dof.get("fixest", 0) if codes else 0), pos[keep])
            else:
                V, vinfo = compute_vcov(inputs, vkind, vcodes, vnames, vssc)
            stats_v: dict[str, float] = {}
            extra_v: dict[str, Any] = {}
            if is_iv:
                fs = _first_stage_F(X, Z, E, enames_k, w, vkind, vcodes, vnames, vssc, codes, dof)
                for nm, val in fs.items():
                    stats_v[f"first_stage_F[{nm}]"] = val
                stats_v["first_stage_F"] = min(fs.values())
                extra_v["first_stage_F_type"] = (f"Wald F of the excluded instruments in each first-stage "
                                                 f"regression, {vinfo.type} covariance, ssc={vssc}")
                from cluster_econ.estimate.iv_diagnostics import diagnose
                try:
                    if survey is not None:
                        raise ValueError("they assume independent sampling, not a survey design")
                    diag_stats, diag_extra = diagnose(y, X, E, Z, w, vkind, vcodes, vnames, vssc, codes, dof,
                                                      beta[len(xnames_k):], vinfo.df_resid)
                except (np.linalg.LinAlgError, linalg.LinAlgError, ValueError) as exc:
                    # the estimates stand; the diagnostics say why they are missing (a covariance note)
                    diag_stats, diag_extra = {}, {"error": f"instrument diagnostics not computed: {exc}"}
                    vinfo = dataclasses.replace(vinfo, details={
                        **vinfo.details, "notes": (*vinfo.details.get("notes", ()), diag_extra["error"])})
                stats_v.update(diag_stats)
                extra_v["iv_diagnostics"] = diag_extra
            same = tuple(vnames) == tuple(cl_names)  # the same clustering columns: the same codes
            gd = gdigest if same else data_hash(*(codes or []), *(vcodes or []), *([w] if w is not None else []))
            dh = data_hash(np.frombuffer("|".join([*parts, gd]).encode(), dtype=np.uint8))
            return CovarianceUpdate(cov=V, vcov_info=vinfo, stats=stats_v,
                                    stat_keys=_iv_stat_keys(enames_k) if is_iv else (), extra=extra_v,
                                    data_hash=dh)

        cov_fit = covariance(kind, cl_codes, cl_names, ssc)
        V, vinfo = cov_fit.cov, cov_fit.vcov_info
        notes.extend(vinfo.details.get("notes", ()))
        # fit statistics
        rss = float(u @ u) if w is None else float(np.sum(w * u**2))
        has_const = bool(codes) or "Intercept" in names
        tss = total_ss(has_const)
        K_full = k + (fe_dof.get("fixest", 0) if codes else 0)
        r2 = 1 - rss / tss if tss > 0 else float("nan")
        stats: dict[str, float] = {
            "r2": r2,
            "adj_r2": 1 - (1 - r2) * ((n - 1) if has_const else n) / (n - K_full) if n > K_full else float("nan"),
            "rmse": float(np.sqrt(rss / np.sum(w))) if w is not None else float(np.sqrt(rss / n)),
            "rss": rss,
        }
        if codes:
            tss_w = total_ss(None)
            stats["within_r2"] = 1 - rss / tss_w if tss_w > 0 else float("nan")
            stats.update(absorber.graph_stats())  # connected components, identified effects
        stats.update(cov_fit.stats)
        extra: dict[str, Any] = {"residuals": pd.Series(u, index=index, name="residual"), **cov_fit.extra}
        if weights:
            extra["weights"] = weights  # the column, so that re-uses of the fit (RI) can tell
        groups = {fe: int(c.max()) + 1 for fe, c in zip(fe_names, codes, strict=True)}
        if entity:
            extra["entity"] = entity
        if time:
            extra["time"] = time
        audit = Audit(n_input=mf.n_input, dropped=dropped, collinear=tuple(collinear), notes=tuple(notes))
        dh = cov_fit.data_hash or ""
        params = pd.Series(beta, index=names, name="coef")
        cov = pd.DataFrame(V, index=names, columns=names)
        predictor = _Predictor(spec, names, beta, y_raw, u, index, fe_names, fe_levels, absorber,
                               lambda sel=sel_k: raw_design(sel))
        source = None if survey is not None else _LinearCovariance(
            covariance, shared.get("data", frame), len(frame), pos[keep], index)
        model = "iv" if is_iv else "feols"
        return Result(params=params, cov=cov, nobs=n, vcov_info=vinfo, formula=spec.text, model=model,
                      engine=ENGINE, audit=audit, data_hash=dh, groups=groups, stats=stats, extra=extra,
                      predictor=predictor, covariance_source=source)

    if variants is None:
        return estimate(spec, list(range(X_all.shape[1])))

    def fit_variant(v: FormulaSpec) -> Result | Exception:
        cols = (["Intercept"] if v.intercept else []) + [c for t in v.rhs for c in mf.term_columns[t]]
        try:
            return estimate(v, [xpos[c] for c in cols])
        except Exception as exc:  # raised below, in formula order
            return exc

    from cluster_econ.parallel import map_tasks

    out = map_tasks(fit_variant, variants, workers=shared.get("workers"), kind="threads")
    for r in out:
        if isinstance(r, Exception):
            raise r
    return out


def _iv_stat_keys(enames: Sequence[str]) -> tuple[str, ...]:
    """The ``stats`` keys of a 2SLS fit that depend on its covariance."""
    from cluster_econ.estimate.iv_diagnostics import STAT_KEYS

    return ("first_stage_F", *(f"first_stage_F[{nm}]" for nm in enames), *STAT_KEYS)


class _LinearCovariance:
    """:meth:`Result.vcov` of ``feols`` and ``iv`` fits: the same covariance code as the fit, on
    the kept design, residuals and bread; clustering variables are read from the data the model
    was fitted on (a Panel is joined again), on the rows of the estimation sample, and coded as
    the fit codes them (so the numbers equal those of a fresh fit with that ``vcov``)."""

    def __init__(self, covariance: Callable[..., CovarianceUpdate], data: Any, n_rows: int,
                 rows: np.ndarray, index: pd.Index) -> None:
        self.covariance, self.data, self.n_rows, self.rows, self.index = covariance, data, n_rows, rows, index

    def __call__(self, vcov: Any, ssc: str) -> CovarianceUpdate:
        kind, names = parse_vcov(vcov)
        codes: list[np.ndarray] = []
        for column in (clustering_columns(self.data, names, self.n_rows, self.rows, self.index) if names else []):
            full, _ = pd.factorize(column)
            c = full[self.rows]
            present = np.bincount(c, minlength=int(full.max()) + 1) > 0
            codes.append((np.cumsum(present) - 1)[c].astype(np.int64))
        return self.covariance(kind, codes, names, ssc)


def _first_stage_F(X: np.ndarray, Z: np.ndarray, E: np.ndarray, enames: list[str], w: np.ndarray | None,
                   kind: str, cl_codes: list[np.ndarray], cl_names: Sequence[str], ssc: str,
                   codes: list[np.ndarray], fe_dof: Mapping[str, int]) -> dict[str, float]:
    import warnings
    W = np.hstack([X, Z])
    WtW = _wsum(W, w).T @ W
    bread = linalg.inv(WtW)
    bread = (bread + bread.T) / 2
    kz = Z.shape[1]
    sel = np.arange(X.shape[1], W.shape[1])
    out = {}
    fs_kind = "HC1" if kind == "CRV3" and not cl_codes else ("CRV1" if kind == "CRV3" else kind)
    for j, nm in enumerate(enames):
        b = bread @ (_wsum(W, w).T @ E[:, j])
        u = E[:, j] - W @ b

        def lev(W: np.ndarray = W, bread: np.ndarray = bread) -> np.ndarray:
            h = np.einsum("ij,jk,ik->i", W, bread, W)
            return h * w if w is not None else h

        inp = CovInputs(X=W, u=u, bread=bread, beta=b, weights=w, fe_codes=codes, fe_dof=fe_dof,
                        leverage=lev)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            V, _ = compute_vcov(inp, fs_kind, cl_codes, cl_names, ssc)
        bz = b[sel]
        Vz = V[np.ix_(sel, sel)]
        out[nm] = float(bz @ np.linalg.solve(Vz, bz) / kz)
    return out


class _Predictor:
    """Predictions of a fitted linear model: fitted values on the estimation sample, or the
    linear index plus the recovered fixed effects on new data (unseen levels give NaN)."""

    def __init__(self, spec: FormulaSpec, names: list[str], beta: np.ndarray, y: np.ndarray,
                 u: np.ndarray, index: pd.Index, fe_names: list[str], fe_levels: list[np.ndarray],
                 absorber: Absorber | None, R_raw: Callable[[], np.ndarray]) -> None:
        self.spec, self.names, self.beta, self.y, self.u, self.index = spec, names, beta, y, u, index
        self.fe_names, self.fe_levels, self.absorber, self.R_raw = fe_names, fe_levels, absorber, R_raw
        self._fe_values: list[np.ndarray] | None = None

    def __call__(self, result: Result, data: pd.DataFrame | None) -> pd.Series:
        if data is None:
            return pd.Series(self.y - self.u, index=self.index, name="fitted")
        if any("^" in fe for fe in self.fe_names):
            raise NotImplementedError("predict on new data is not available with interacted fixed "
                                      "effects (a^b); use predict() for the estimation sample")
        data = as_frame(data)
        terms = list(self.spec.rhs) + list(self.spec.endog)
        D = _design(terms, data, self.spec.intercept)
        D = D.reindex(columns=self.names, fill_value=0.0)
        pred = D.to_numpy(dtype=float) @ self.beta
        if self.fe_names:
            if self._fe_values is None:
                assert self.absorber is not None
                self._fe_values = self.absorber.recover(self.y - self.u - self.R_raw() @ self.beta)
            from cluster_econ.estimate.formula import _fe_column
            for fe, levels, vals in zip(self.fe_names, self.fe_levels, self._fe_values, strict=True):
                col = _fe_column(data, fe)
                mapping = pd.Series(vals, index=pd.Index(levels))
                pred = pred + col.map(mapping).to_numpy(dtype=float)
        return pd.Series(pred, index=data.index, name="prediction")
