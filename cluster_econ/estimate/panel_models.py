"""Static panel models for regressors that do not vary over time (manager schooling, founder origin).

For :math:`y_{it} = \\alpha + x_{it}'\\beta + u_i + e_{it}` with entity :math:`i` and period :math:`t`:

``pooled``
    OLS on all rows.
``fe``
    Within estimator: entity effects absorbed (:func:`cluster_econ.estimate.linear.feols`).
``between``
    OLS on entity means :math:`\\bar y_i = \\alpha + \\bar x_i'\\beta + \\bar\\varepsilon_i`.
``re``
    Random effects, Swamy-Arora variance components: :math:`\\hat\\sigma^2_e = e_W'e_W/(N-n-K)`
    from the within residuals, :math:`\\hat\\sigma^2_u = \\max(0, e_B'e_B/(n-K-1) - \\hat\\sigma^2_e/\\bar T)`
    from the between residuals (:math:`\\bar T` the harmonic mean of the :math:`T_i`; with a
    balanced panel this is Baltagi's formula), :math:`\\theta_i = 1 - \\sqrt{\\sigma^2_e/(T_i\\sigma^2_u
    + \\sigma^2_e)}`, then OLS of :math:`y_{it} - \\theta_i\\bar y_i` on :math:`x_{it} - \\theta_i\\bar x_i`
    (the intercept column becomes :math:`1-\\theta_i`). :math:`K` counts the slopes.
``fd``
    First differences :math:`\\Delta y_{it} = \\delta + \\Delta x_{it}'\\beta + \\Delta e_{it}` between
    consecutive periods only: a difference across a missing period is not formed (those rows are
    counted in ``audit.dropped``).
``mundlak``
    Correlated random effects: the RE model with the entity means of the time-varying regressors
    added (named ``mean(x)``); their coefficients test RE against FE.

The RE, between and FD transformations are a few lines of numpy on top of the shared covariance
module, so every model gets the same covariance types and small-sample presets; linearmodels'
``RandomEffects``, ``BetweenOLS`` and ``FirstDifferenceOLS`` serve as the independent check in the
tests.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from scipy import linalg
from scipy import stats as sps

from cluster_econ.errors import EstimationError, FormulaError
from cluster_econ.estimate.covariance import CovInputs, clustering_columns, compute_vcov, parse_vcov
from cluster_econ.estimate.formula import FormulaSpec, as_frame, model_frame, parse_formula
from cluster_econ.estimate.linear import ENGINE, _LinearCovariance, feols
from cluster_econ.estimate.result import Audit, CovarianceUpdate, Result, TestResult, data_hash
from cluster_econ.estimate.survey import SurveyDesign, check_vcov_for_survey, design_rows
from cluster_econ.estimate.survey import sandwich as survey_sandwich

__all__ = ["hausman", "panel"]

MODELS = ("pooled", "fe", "re", "between", "fd", "mundlak")


def panel(formula: str, data: Any, model: str = "re", entity: str | None = None,
          time: str | None = None, vcov: str | Mapping[str, str] | None = "iid",
          ssc: str = "stata", survey: SurveyDesign | None = None) -> Result:
    """Estimate a static panel model (see the module docstring for each ``model``).

    Parameters
    ----------
    formula : str
        ``"y ~ x1 + x2"`` (no fixed-effects or IV part; entity effects come from ``model``).
    data : DataFrame or Panel
        A Panel is read as in :func:`feols` (enterprise, manager-in-charge and cluster-year columns
        joined to the enterprise-years).
    model : one of ``"pooled"``, ``"fe"``, ``"re"``, ``"between"``, ``"fd"``, ``"mundlak"``.
    entity, time : str
        Identifier columns (default ``enterprise_id`` and ``year`` for a Panel). ``time`` is
        required for ``fd``.
    vcov, ssc : covariance type and small-sample preset, as in :func:`feols`.
    survey : SurveyDesign, optional
        Sampling design (weights, strata, PSUs, fpc; :mod:`cluster_econ.estimate.survey`) for
        ``pooled``, ``fe`` and ``fd``: weighted least squares with the design-based linearised
        covariance (for ``fd`` the weight and PSU of each difference are those of its later
        period). Random effects, between and Mundlak (a random-effects GLS here) are not defined
        with sampling weights and raise an error; with a survey design use ``fe``, or ``pooled``
        with the entity means of the regressors added (the Mundlak device by pooled regression).

    Returns
    -------
    Result
        ``model`` is ``"panel-<model>"``. RE and Mundlak put ``sigma2_u``, ``sigma2_e`` and
        ``theta`` (the mean over entities if unbalanced) in ``stats``. ``result.vcov(other)``
        gives the same fit under another covariance (not with ``survey=``).
    """
    if model not in MODELS:
        raise EstimationError(f"panel model {model!r} is not known; choose one of {', '.join(MODELS)}")
    is_panel = not isinstance(data, pd.DataFrame)
    frame = as_frame(data)
    if is_panel:
        entity = entity or "enterprise_id"
        time = time or "year"
    if not entity:
        raise EstimationError("panel models need the entity column: pass entity=")
    spec = parse_formula(formula)
    if spec.fixed_effects or spec.endog:
        raise FormulaError(f"panel: formula {formula!r} must be 'y ~ regressors' (entity effects come "
                           "from model=; use feols for absorbed effects or IV)")
    if survey is not None and model not in ("pooled", "fe", "fd"):
        raise EstimationError(f"panel model {model!r} is not available with a survey design (its GLS weights "
                              "are not defined with sampling weights); use model='fe', 'fd', or 'pooled' with "
                              "the entity means of the regressors added")
    if model in ("pooled", "fe"):
        text = formula if model == "pooled" else f"{formula} | {entity}"
        res = feols(text, frame, vcov=vcov, ssc=ssc, entity=entity, time=time, drop_singletons=False,
                    survey=survey)
        assert isinstance(res, Result)
        if isinstance(res.covariance_source, _LinearCovariance):
            res.covariance_source.data = data  # vcov() joins a Panel again rather than keep the join
        return dataclasses.replace(res, model=f"panel-{model}", formula=formula)
    if model == "fd" and not time:
        raise EstimationError("first differences need the time column: pass time=")
    return _transformed(spec, frame, model, entity, time, vcov, ssc, survey, data=data)


def _ols(y: np.ndarray, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    XtX = X.T @ X
    beta = linalg.solve(XtX, X.T @ y, assume_a="pos")
    return beta, y - X @ beta, XtX


def _transformed(spec: FormulaSpec, frame: pd.DataFrame, model: str, entity: str, time: str | None,
                 vcov: Any, ssc: str, survey: SurveyDesign | None = None, data: Any = None) -> Result:
    design = None
    if survey is not None:
        check_vcov_for_survey(vcov, None)
        design = design_rows(survey, frame)
    kind, cl_names = parse_vcov(vcov)
    extra = [entity] + ([time] if time else []) + [c for c in cl_names if c not in (entity, time)]
    reasons = {entity: "missing entity", **({time: "missing time"} if time else {}),
               **{c: "missing cluster" for c in cl_names}}
    mf = model_frame(spec, frame, extra=extra, extra_reasons=reasons)
    dropped = dict(mf.dropped)
    notes: list[str] = []
    y = mf.y.to_numpy(dtype=float)
    X = mf.X.to_numpy(dtype=float)
    names = list(mf.X.columns)
    ent = pd.factorize(mf.extra[entity])[0].astype(np.int64)
    ent_rows = ent  # entity of each model-frame row (``ent`` follows the fd transformation)
    cur: np.ndarray | None = None
    G = int(ent.max()) + 1 if len(ent) else 0
    counts = np.bincount(ent, minlength=G).astype(float)

    def means(A: np.ndarray) -> np.ndarray:
        A2 = A if A.ndim == 2 else A[:, None]
        out = np.column_stack([np.bincount(ent, weights=A2[:, j], minlength=G) for j in range(A2.shape[1])])
        out = out / counts[:, None]
        return out if A.ndim == 2 else out[:, 0]

    slope = [j for j, nm in enumerate(names) if nm != "Intercept"]
    stats: dict[str, float] = {}
    extra_out: dict[str, Any] = {"entity": entity}
    if time:
        extra_out["time"] = time
    cl_frame = mf.extra
    base_cols = list(range(X.shape[1]))
    if model == "mundlak":
        xm = means(X[:, slope])[ent]
        within_var = np.array([np.sum((X[:, j] - xm[:, i]) ** 2) for i, j in enumerate(slope)])
        tv = [i for i, v in enumerate(within_var) if v > 1e-10 * max(1.0, np.sum(X[:, slope[i]] ** 2))]
        X = np.hstack([X, xm[:, tv]])
        names = names + [f"mean({names[slope[i]]})" for i in tv]
        slope = [j for j, nm in enumerate(names) if nm != "Intercept"]
    if model == "between":
        yb, Xb = means(y), means(X)
        Xt, yt = Xb, yb
        cl_frame = mf.extra.groupby(ent, sort=True).first()
    elif model == "fd":
        if time is None:
            raise EstimationError("first differences need the time column: pass time=")
        raw_t = mf.extra[time]
        t = pd.to_numeric(raw_t, errors="coerce").to_numpy(dtype=float)
        bad_t = np.isnan(t)
        if bad_t.any():
            rows = ", ".join(str(r) for r in raw_t.index[bad_t][:5])
            values = sorted({str(v) for v in raw_t[bad_t]})[:5]
            raise EstimationError(f"first differences: the time column {time!r} must be numeric periods; "
                                  f"{int(bad_t.sum())} row(s) are not (rows {rows}; values {values})")
        order = np.lexsort((t, ent))
        e_s, t_s = ent[order], t[order]
        dup = np.r_[False, (e_s[1:] == e_s[:-1]) & (t_s[1:] == t_s[:-1])]
        if dup.any():
            rows = mf.extra.index[order[dup]]
            ex = ", ".join(f"({mf.extra.at[r, entity]!r}, {mf.extra.at[r, time]!r})" for r in rows[:5])
            raise EstimationError(f"first differences: {int(dup.sum())} duplicate ({entity}, {time}) row(s) "
                                  f"found, for example {ex} (rows {', '.join(map(str, rows[:5]))}); each "
                                  "entity may appear once per period, so the difference is not defined")
        same = np.r_[False, e_s[1:] == e_s[:-1]]
        gap = np.r_[False, np.diff(t_s) != 1]
        ok = same & ~gap
        n_first = int((~same).sum())
        n_gap = int((same & gap).sum())
        dropped["first period (no lag)"] = n_first
        if n_gap:
            dropped["gap (difference across a missing period)"] = n_gap
        cur = order[ok]
        prev = order[np.flatnonzero(ok) - 1]
        if design is not None:
            at = (mf.positions if mf.positions is not None else np.arange(len(y)))[cur]
            inside = design.in_domain()[at] & (design.weights[at] > 0)
            if not inside.all():
                dropped["outside the survey domain or zero weight"] = int((~inside).sum())
                cur, prev, at = cur[inside], prev[inside], at[inside]
        yt = y[cur] - y[prev]
        Xt = X[cur] - X[prev]
        if "Intercept" in names:
            Xt[:, names.index("Intercept")] = 1.0
        cl_frame = mf.extra.iloc[cur]
        ent = ent[cur]
    else:  # re, mundlak
        ym, Xm = means(y), means(X)
        # variance components from the model without the Mundlak means (they are time-invariant:
        # absorbed in the within regression and collinear in the between regression)
        bslope = [j for j in slope if j in base_cols]
        Xw = X[:, bslope] - Xm[ent][:, bslope]
        yw = y - ym[ent]
        Kw = np.linalg.matrix_rank(Xw) if Xw.shape[1] else 0
        if Xw.shape[1]:
            bw = np.linalg.lstsq(Xw, yw, rcond=None)[0]
            ew = yw - Xw @ bw
        else:
            ew = yw
        N = len(y)
        if N - G - Kw <= 0:
            single = int((counts == 1).sum())
            raise EstimationError(
                f"{model}: random effects need repeated observations of the entities: {N} rows for {G} "
                f"entities ({single} with a single row) leave {N - G - Kw} degrees of freedom for the "
                f"within variance; use model='pooled' or data with several periods per {entity!r}")
        sigma2_e = float(ew @ ew) / (N - G - Kw)
        # between regression on entity means; regressors whose entity means do not vary (time
        # dummies in a balanced panel) are collinear with the constant there, so use the rank
        Xb = Xm[:, base_cols]
        eb = ym - Xb @ np.linalg.lstsq(Xb, ym, rcond=None)[0]
        Kb = int(np.linalg.matrix_rank(Xb))
        Tbar = G / np.sum(1.0 / counts)
        sigma2_u = max(0.0, float(eb @ eb) / (G - Kb) - sigma2_e / Tbar)
        theta = 1 - np.sqrt(sigma2_e / (counts * sigma2_u + sigma2_e))
        yt = y - theta[ent] * ym[ent]
        Xt = X - theta[ent][:, None] * Xm[ent]
        stats.update(sigma2_u=sigma2_u, sigma2_e=sigma2_e, theta=float(np.mean(theta)),
                     rho=sigma2_u / (sigma2_u + sigma2_e) if sigma2_u + sigma2_e > 0 else float("nan"))
        if np.ptp(theta) > 0:
            extra_out["theta"] = pd.Series(theta, name="theta")
        if sigma2_u == 0:
            notes.append("between variance estimate is not positive: sigma2_u set to 0 (RE = pooled OLS)")
    n = len(yt)
    k = Xt.shape[1]
    if n <= k:
        raise EstimationError(f"{model}: {n} observations are too few for {k} coefficients")
    rank = np.linalg.matrix_rank(Xt)
    if rank < k:
        raise EstimationError(f"{model}: regressors are collinear after the {model} transformation "
                              "(for between/fd, drop variables without between/within variation)")
    source = None
    if design is not None:
        w = design.weights[at]
        XtX = Xt.T @ (Xt * w[:, None])
        beta = linalg.solve(XtX, Xt.T @ (w * yt), assume_a="pos")
        u = yt - Xt @ beta
        bread = linalg.inv(XtX)
        V = survey_sandwich(design, (bread + bread.T) / 2, Xt * (w * u)[:, None], at)
        vinfo = design.vcov_info(k, at)
        notes.append(f"survey design ({survey.describe()}): weighted first differences")
        rss_weights = w
    else:
        beta, u, XtX = _ols(yt, Xt)
        bread = linalg.inv(XtX)
        bread = (bread + bread.T) / 2

        def leverage() -> np.ndarray:
            return np.einsum("ij,jk,ik->i", Xt, bread, Xt)

        cl_codes = [pd.factorize(cl_frame[c].to_numpy())[0].astype(np.int64) for c in cl_names]
        inputs = CovInputs(X=Xt, u=u, bread=bread, beta=beta, leverage=leverage)
        V, vinfo = compute_vcov(inputs, kind, cl_codes, cl_names, ssc)
        rss_weights = np.ones(n)
        source = _PanelCovariance(inputs, frame if data is None else data, len(frame),
                                  mf.positions if mf.positions is not None else np.arange(len(y)),
                                  mf.index, ent_rows if model == "between" else None, cur)
    notes.extend(vinfo.details.get("notes", ()))  # as feols: the covariance's own notes in the audit
    rss = float(np.sum(rss_weights * u * u))
    has_const = "Intercept" in names
    tss = float(np.sum((yt - yt.mean()) ** 2)) if has_const else float(yt @ yt)
    r2 = 1 - rss / tss if tss > 0 else float("nan")
    stats.update(r2=r2, adj_r2=1 - (1 - r2) * (n - 1) / (n - k), rmse=float(np.sqrt(rss / n)))
    if model in ("re", "mundlak"):
        # R2 of the untransformed model with the RE coefficients (overall), as Stata reports
        fit = X @ beta
        stats["overall_r2"] = float(np.corrcoef(fit, y)[0, 1] ** 2) if np.std(fit) > 0 else float("nan")
    groups = {entity: G}
    audit = Audit(n_input=mf.n_input, dropped=dropped, notes=tuple(notes))
    extra_out["residuals"] = pd.Series(u, name="residual")
    params = pd.Series(beta, index=names, name="coef")
    return Result(params=params, cov=pd.DataFrame(V, index=names, columns=names), nobs=n,
                  vcov_info=vinfo, formula=spec.text, model=f"panel-{model}", engine=ENGINE,
                  audit=audit, data_hash=data_hash(yt, Xt), groups=groups, stats=stats, extra=extra_out,
                  covariance_source=source)


class _PanelCovariance:
    """:meth:`Result.vcov` of the transformed panel models (re, between, fd, mundlak): the shared
    covariance code on the transformed design and residuals. Clustering variables are read from
    the data the model was fitted on, on the rows of the estimation sample, and carried through
    the transformation as the fit does (the first row of each entity for ``between``, the later
    period of each difference for ``fd``)."""

    def __init__(self, inputs: CovInputs, data: Any, n_rows: int, rows: np.ndarray, index: pd.Index,
                 between_entity: np.ndarray | None, fd_rows: np.ndarray | None) -> None:
        self.inputs, self.data, self.n_rows, self.rows, self.index = inputs, data, n_rows, rows, index
        self.between_entity, self.fd_rows = between_entity, fd_rows

    def __call__(self, vcov: Any, ssc: str) -> CovarianceUpdate:
        kind, names = parse_vcov(vcov)
        codes: list[np.ndarray] = []
        for column in (clustering_columns(self.data, names, self.n_rows, self.rows, self.index) if names else []):
            values = column.iloc[self.rows]
            if self.between_entity is not None:
                values = values.groupby(self.between_entity, sort=True).first()
            elif self.fd_rows is not None:
                values = values.iloc[self.fd_rows]
            codes.append(pd.factorize(values.to_numpy())[0].astype(np.int64))
        V, vinfo = compute_vcov(self.inputs, kind, codes, names, ssc)
        return CovarianceUpdate(cov=V, vcov_info=vinfo)


def hausman(fe_result: Result, re_result: Result, tol: float = 1e-8) -> TestResult:
    """Hausman test of the random-effects assumption.

    :math:`H = d'(V_{FE}-V_{RE})^{+}d`, :math:`d = b_{FE}-b_{RE}`, over the coefficients the two
    models share (the intercept excluded), referred to :math:`\\chi^2` with degrees of freedom
    equal to the rank of :math:`V_{FE}-V_{RE}` (as Stata's ``hausman``; R plm's ``phtest`` uses
    the number of coefficients and the ordinary inverse, which agree when the difference has full
    rank). The rank and the generalized inverse come from one eigen-decomposition of the
    difference scaled to unit diagonal of :math:`V_{FE}` (so units of measurement do not matter):
    eigenvalues above ``tol`` times the largest count, the others (zero or negative, that is,
    directions in which the efficient estimator is not more precise) are left out of both the
    statistic and the degrees of freedom, and ``note`` says so. Both results should use the iid
    covariance (the classical test is not valid with robust covariances).
    """
    common = [c for c in fe_result.params.index if c in re_result.params.index and c != "Intercept"]
    if not common:
        raise EstimationError("hausman: the two results share no coefficients")
    d = (fe_result.params[common] - re_result.params[common]).to_numpy()
    Vd = (fe_result.cov.loc[common, common] - re_result.cov.loc[common, common]).to_numpy()
    scale = np.sqrt(np.clip(np.diag(fe_result.cov.loc[common, common].to_numpy()), 0, None))
    scale = np.where(scale > 0, scale, 1.0)
    Vs = Vd / np.outer(scale, scale)
    evals, evecs = np.linalg.eigh((Vs + Vs.T) / 2)
    keep = evals > tol * max(float(np.abs(evals).max()), np.finfo(float).tiny)
    df = int(keep.sum())
    if df == 0:
        raise EstimationError("hausman: V_FE - V_RE has no positive eigenvalue; the test is not defined "
                              "(are both results from the same data with iid covariances?)")
    proj = evecs[:, keep].T @ (d / scale)
    H = float(np.sum(proj**2 / evals[keep]))
    note = ""
    if df < len(common):
        note = (f"V_FE - V_RE has rank {df} < {len(common)} coefficients: generalized inverse used, "
                "df = its rank")
    return TestResult("Hausman", H, df, float(sps.chi2.sf(H, df)), "chi2",
                      null="the random-effects estimator is consistent (effects uncorrelated with the "
                      "regressors)", note=note, details={"coefficients": tuple(common)})
