"""Binary-outcome models: logit, probit, linear probability, complementary log-log, conditional
(fixed-effects) logit, correlated random-effects probit, and average marginal effects.

Models
------
``logit``, ``probit`` and ``cloglog`` estimate the pooled index model

    P(y_i = 1 | x_i) = F(x_i' beta),

with ``F`` the logistic, standard normal or ``1 - exp(-exp(.))`` distribution function, by maximum
likelihood (statsmodels ``Logit``, ``Probit`` and ``GLM(Binomial(CLogLog))`` do the fitting). ``lpm``
is the linear probability model ``E(y | x) = x' beta`` by OLS. Fixed effects written after ``|`` enter
as dummy variables (an unconditional fixed-effects estimator, fine when every effect has many rows,
for example cluster-year effects); levels whose outcome never varies are dropped and counted, as in
fixest.

``conditional_logit`` is Chamberlain's fixed-effects logit, ``P(y_it = 1) = Λ(α_i + x_it' β)`` with
``α_i`` conditioned away (statsmodels ``ConditionalLogit``). ``cre_probit`` is the correlated
random-effects (Mundlak-Chamberlain) probit: a pooled probit of ``y_it`` on ``x_it`` and the entity
means of the time-varying regressors, clustered by entity.

``marginal_effects`` returns average marginal effects of every variable: derivatives of
``F(x'beta)`` averaged over the sample for continuous variables, discrete changes (1 versus 0, each
level versus the reference) for dummies and factors, with delta-method standard errors. Derivatives
with respect to a variable are taken through the formula (so ``log(x)``, ``x:z`` and squares are
handled), numerically in the variable and analytically in ``beta``.

Covariance
----------
``vcov="iid"`` is the inverse of the observed information (named ``OIM``); ``"HC1"``/``"robust"``
is the sandwich ``H^-1 (sum s_i s_i') H^-1`` built from per-row scores ``s_i``; ``{"CRV1": "firm"}``
sums the scores within clusters first. The small-sample multiplier follows ``ssc``: ``"stata"``
(Stata's rule for maximum-likelihood models: ``n/(n-1)`` robust, ``G/(G-1)`` clustered),
``"fixest"`` (``n/(n-k)`` robust, ``G/(G-1)(n-1)/(n-k)`` clustered) or ``"none"``. The LPM is
OLS and takes its covariance from the shared ``covariance`` module (so ``"HC3"``, two-way
``{"CRV1": "firm+year"}`` and the presets mean exactly what they mean for ``feols``). The sandwich
for the score-based models (``mest_vcov``) lives beside it in the shared ``covariance`` module;
``censored`` and ``survival`` use it too.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from cluster_econ._version import __version__
from cluster_econ.errors import EstimationError
from cluster_econ.estimate.covariance import mest_vcov
from cluster_econ.estimate.result import Audit, Result, VcovInfo, data_hash
from cluster_econ.estimate.survey import SurveyDesign, check_vcov_for_survey, design_rows
from cluster_econ.estimate.survey import sandwich as survey_sandwich

__all__ = ["cloglog", "conditional_logit", "cre_probit", "logit", "lpm", "marginal_effects", "probit"]

ENGINE_OWN = f"cluster_econ {__version__}"


# ---------------------------------------------------------------------------------------------
# shared helpers (also used by censored.py and survival.py)
# ---------------------------------------------------------------------------------------------
def sm_engine() -> str:
    import statsmodels
    return f"statsmodels {statsmodels.__version__}"


def parse_vcov(vcov: Any) -> tuple[str, str | None]:
    """Normalise the ``vcov`` argument to ``(kind, cluster column)``.

    ``kind`` is ``"OIM"``, ``"HC1"`` or ``"CRV1"``. Accepts ``"iid"``/``"OIM"``, ``"HC1"``/
    ``"robust"``/``"hetero"``, ``{"CRV1": "firm"}`` or ``"CRV1"`` with a one-key mapping.
    """
    if vcov is None:
        return "OIM", None
    if isinstance(vcov, str):
        key = vcov.strip()
        if key.lower() in ("iid", "oim", "classical"):
            return "OIM", None
        if key.lower() in ("hc1", "robust", "hetero", "hc0"):
            return "HC1", None
        raise EstimationError(f"vcov {vcov!r} is not understood: use 'iid', 'HC1' (or 'robust') or "
                              "{'CRV1': 'cluster column'}")
    if isinstance(vcov, Mapping) and len(vcov) == 1:
        ((kind, col),) = vcov.items()
        if str(kind).upper() != "CRV1":
            raise EstimationError(f"vcov {vcov!r}: only CRV1 clustering is available for this model")
        if isinstance(col, list | tuple):
            if len(col) != 1:
                raise EstimationError(f"vcov {vcov!r}: one clustering variable only for this model")
            col = col[0]
        if not isinstance(col, str):
            raise EstimationError(f"vcov {vcov!r}: the cluster must be a column name")
        return "CRV1", col
    raise EstimationError(f"vcov {vcov!r} is not understood: use 'iid', 'HC1' or {{'CRV1': 'firm'}}")


def first_rows(mask: np.ndarray, index: pd.Index, limit: int = 5) -> str:
    """Text naming the first offending row labels."""
    labels = [str(v) for v in index[np.asarray(mask)][:limit]]
    more = int(np.sum(mask)) - len(labels)
    return ", ".join(labels) + (f" and {more} more" if more > 0 else "")


def check_binary(y: pd.Series, name: str) -> np.ndarray:
    """``y`` as 0/1 floats, or an error naming the column, rule and rows."""
    v = pd.to_numeric(y, errors="coerce").to_numpy(dtype=float)
    bad = ~np.isin(v, (0.0, 1.0))
    if bad.any():
        raise EstimationError(f"column {name!r} must be 0/1 for a binary model; {int(bad.sum())} rows "
                              f"break the rule (rows {first_rows(bad, y.index)}; values "
                              f"{sorted(set(np.asarray(y)[bad].tolist()), key=str)[:5]})")
    return v


def drop_collinear(X: pd.DataFrame, tol: float = 1e-10) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """Drop columns that are (numerically) linear combinations of earlier columns.

    Sequential Cholesky on the Gram matrix of the unit-norm columns: column ``j`` is kept when its
    squared residual on the kept columns exceeds ``tol`` (an ``R^2`` above ``1 - tol``).
    """
    if X.shape[1] == 0:
        return X, ()
    A = X.to_numpy(dtype=float)
    scale = np.sqrt(np.einsum("ij,ij->j", A, A))
    G = (A.T @ A) / np.outer(np.where(scale > 0, scale, 1), np.where(scale > 0, scale, 1))
    keep: list[int] = []
    L = np.zeros((0, 0))
    for j in range(A.shape[1]):
        if scale[j] == 0:
            continue
        if keep:
            lj = np.linalg.solve(L, G[keep, j]) if L.size else np.zeros(0)
            res = G[j, j] - lj @ lj
        else:
            lj, res = np.zeros(0), G[j, j]
        if res > tol:
            k = len(keep)
            L2 = np.zeros((k + 1, k + 1))
            L2[:k, :k] = L
            L2[k, :k] = lj
            L2[k, k] = np.sqrt(res)
            L = L2
            keep.append(j)
    kept = set(keep)
    dropped = tuple(c for i, c in enumerate(X.columns) if i not in kept)
    return X.iloc[:, keep], dropped


def frame(formula: str, data: Any, extra: Sequence[str] = (),
          extra_reasons: Mapping[str, str] | None = None) -> Any:
    """The model frame of ``formula`` (the safe parser of ``estimate.formula``; never ``eval``)."""
    from cluster_econ.estimate.formula import model_frame, parse_formula
    spec = parse_formula(formula)
    return model_frame(spec, data, extra=[e for e in extra if e], extra_reasons=extra_reasons)


# ---------------------------------------------------------------------------------------------
# index models
# ---------------------------------------------------------------------------------------------
_LINKS = ("logit", "probit", "cloglog", "identity")


def _cdf(link: str, xb: np.ndarray) -> np.ndarray:
    if link == "logit":
        return 1.0 / (1.0 + np.exp(-xb))
    if link == "probit":
        return stats.norm.cdf(xb)
    if link == "cloglog":
        return -np.expm1(-np.exp(xb))
    return xb


def _pdf(link: str, xb: np.ndarray) -> np.ndarray:
    if link == "logit":
        p = 1.0 / (1.0 + np.exp(-xb))
        return p * (1 - p)
    if link == "probit":
        return stats.norm.pdf(xb)
    if link == "cloglog":
        e = np.exp(xb)
        return e * np.exp(-e)
    return np.ones_like(xb)


def _fe_dummies(mf: Any, y: np.ndarray) -> tuple[pd.DataFrame, np.ndarray, dict[str, int], list[str]]:
    """Dummy columns for the fixed effects; rows in levels whose outcome never varies are dropped."""
    fe = mf.fe
    keep = np.ones(len(y), dtype=bool)
    dropped: dict[str, int] = {}
    notes: list[str] = []
    if fe.shape[1] == 0:
        return pd.DataFrame(index=mf.index), keep, dropped, notes
    changed = True
    while changed:  # dropping one effect's levels can make another effect's levels constant
        changed = False
        for col in fe.columns:
            codes = pd.factorize(fe[col].to_numpy()[keep])[0]
            yk = y[keep]
            mean = np.bincount(codes, weights=yk) / np.bincount(codes)
            const = (mean == 0) | (mean == 1)
            if const.any():
                idx = np.flatnonzero(keep)[const[codes]]
                keep[idx] = False
                reason = f"fixed-effect {col} levels with a constant outcome"
                dropped[reason] = dropped.get(reason, 0) + len(idx)
                notes.append(f"{int(const.sum())} levels of {col} have an outcome that never varies; "
                             f"their {len(idx)} rows are dropped (they carry no information)")
                changed = True
    return _dummies(fe.loc[keep]), keep, dropped, notes


def _dummies(fe: pd.DataFrame) -> pd.DataFrame:
    """Dummies of every level but the first of each fixed effect, named ``fe[level]``."""
    cols = {}
    for col in fe.columns:
        vals = fe[col].astype(str).to_numpy()
        for lv in sorted(set(vals.tolist()))[1:]:
            cols[f"{col}[{lv}]"] = (vals == lv).astype(float)
    return pd.DataFrame(cols, index=fe.index)


def _separation(X: pd.DataFrame, y: np.ndarray) -> list[tuple[str, np.ndarray, str]]:
    """Regressors that perfectly predict the outcome for a subset of rows.

    For a 0/1 regressor: a value (0 or 1) at which the outcome never varies. For any regressor:
    complete separation by a threshold (``max(x | y=0) < min(x | y=1)`` or the reverse).
    Returns (regressor, rows perfectly predicted, description).
    """
    out = []
    for c in X.columns:
        if c == "Intercept":
            continue
        x = X[c].to_numpy()
        uniq = np.unique(x)
        if len(uniq) <= 1:
            continue
        if len(uniq) == 2 and set(uniq.tolist()) <= {0.0, 1.0}:
            for val in (1.0, 0.0):
                rows = x == val
                m = y[rows].mean()
                if m in (0.0, 1.0):
                    out.append((c, rows, f"{c} == {val:g} predicts {'failure' if m == 0 else 'success'} "
                                f"perfectly ({int(rows.sum())} rows)"))
                    break
            continue
        x0, x1 = x[y == 0], x[y == 1]
        if len(x0) and len(x1) and (x0.max() < x1.min() or x1.max() < x0.min()):
            out.append((c, np.ones(len(x), bool),
                        f"{c} separates the outcome completely (every row is predicted perfectly)"))
    return out


def _index_model(formula: str, data: Any, link: str, vcov: Any, ssc: str, model: str,
                 separation: str = "raise", extra_cols: Sequence[str] = (),
                 survey: SurveyDesign | None = None) -> Result:
    design = None
    if survey is not None:
        if link == "identity":
            raise EstimationError("lpm: use feols(..., survey=) for a linear probability model on a survey design")
        from cluster_econ.estimate.formula import as_frame

        check_vcov_for_survey(vcov, None)
        design = design_rows(survey, as_frame(data))
        vcov = "iid"
    if link == "identity":
        # the LPM is OLS: its covariance comes from the shared linear-model module
        from cluster_econ.estimate import covariance as cv
        kind, cl_names = cv.parse_vcov(vcov)
        cl = None
    else:
        kind, cl = parse_vcov(vcov)
        cl_names = (cl,) if cl else ()
    mf = frame(formula, data, extra=[*cl_names, *extra_cols],
               extra_reasons={c: "missing cluster" for c in cl_names} or None)
    dropped = dict(mf.dropped)
    notes: list[str] = []
    y = check_binary(mf.y, mf.spec.lhs)
    X = mf.X
    if link != "identity":
        D, keep, fe_drop, fe_notes = _fe_dummies(mf, y)
    else:
        D, keep, fe_drop, fe_notes = _fe_dummies_linear(mf)
    dropped.update(fe_drop)
    notes += fe_notes
    if mf.fe.shape[1]:
        X = pd.concat([X.loc[keep], D], axis=1)
        if not mf.spec.intercept and mf.spec.fixed_effects:
            X.insert(0, "Intercept", 1.0)
    y = y[keep]
    index = mf.index[keep]
    extra = mf.extra.loc[keep]
    pos = (mf.positions if mf.positions is not None else np.arange(len(mf.index)))[keep]
    if design is not None:
        w_here = design.weights[pos]
        out = (w_here == 0) | ~design.in_domain()[pos]
        if out.any():
            n_dom = int((~design.in_domain()[pos]).sum())
            if n_dom:
                dropped["outside the survey domain"] = n_dom
            if int(out.sum()) - n_dom:
                dropped["zero weights"] = int(out.sum()) - n_dom
            X, y, index, extra, pos = X.loc[~out], y[~out], index[~out], extra.loc[~out], pos[~out]
    if len(y) == 0:
        raise EstimationError(f"{model}: no rows left to estimate {formula!r}")
    X, collinear = drop_collinear(X)
    if link != "identity":
        if y.min() == y.max():
            raise EstimationError(f"{model}: the outcome {mf.spec.lhs!r} is always {y[0]:g} in the "
                                  "estimation sample")
        sep = _separation(X, y)
        if sep:
            if separation == "raise":
                raise EstimationError(
                    f"{model}: perfect prediction (separation): " + "; ".join(s[2] for s in sep)
                    + ". Drop the regressor or those rows, or pass separation='drop' to drop them "
                    "as Stata does")
            if separation != "drop":
                raise EstimationError("separation must be 'raise' or 'drop'")
            # every mask refers to the same sample: combine them, then drop once
            drop_rows = np.zeros(len(X), dtype=bool)
            for c, rows, desc in sep:
                drop_rows |= rows
                dropped[f"perfect prediction by {c}"] = int(rows.sum())
                notes.append(desc + f"; {c} and those rows dropped")
            if drop_rows.all():
                raise EstimationError(f"{model}: " + "; ".join(s[2] for s in sep) + "; the model cannot be estimated")
            keep2 = ~drop_rows
            cols = [s[0] for s in sep]
            X = X.loc[keep2].drop(columns=cols)
            y = y[keep2]
            index = index[keep2]
            extra = extra.loc[keep2]
            pos = pos[keep2]
            collinear = (*collinear, *cols)
            X, more = drop_collinear(X)
            collinear = (*collinear, *more)
    Xa = X.to_numpy(dtype=float)
    n = Xa.shape[0]
    stats_out: dict[str, float] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if link == "identity":
            import statsmodels.api as sm
            res = sm.OLS(y, Xa).fit()
            beta = res.params
            resid = y - Xa @ beta
            bread = np.linalg.inv(Xa.T @ Xa)
            inp = cv.CovInputs(X=Xa, u=resid, bread=bread, beta=np.asarray(beta),
                               leverage=lambda: np.einsum("ij,jk,ik->i", Xa, bread, Xa))
            cov, info = cv.compute_vcov(inp, kind, cv.cluster_codes(extra, cl_names), cl_names, ssc)
            stats_out.update(r2=float(res.rsquared), adj_r2=float(res.rsquared_adj))
            engine = sm_engine()
        elif design is not None:
            beta, bread, scores, ll, ll0, engine = _fit_weighted_glm(link, y, Xa, design.weights[pos])
            _check_fitted(link, Xa @ beta, X.columns, beta, model)
            cov = survey_sandwich(design, bread, scores, pos)
            info = design.vcov_info(Xa.shape[1], pos)
            notes.append(f"survey design ({survey.describe()}): weighted pseudo-likelihood; log likelihoods "
                         "are weighted")
        else:
            beta, bread, scores, ll, ll0, engine = _fit_ml(link, y, Xa)
            _check_fitted(link, Xa @ beta, X.columns, beta, model)
            cov, info = mest_vcov(bread, scores, kind, extra[cl].to_numpy() if cl else None, ssc, cl)
            stats_out.update(loglik=ll, loglik_null=ll0, pseudo_r2=1 - ll / ll0 if ll0 else np.nan)
            stats_out["lr_chi2"] = 2 * (ll - ll0)
    names = list(X.columns)
    params = pd.Series(beta, index=names)
    covdf = pd.DataFrame(cov, index=names, columns=names)
    groups = {fe: int(mf.fe[fe].loc[index].nunique()) for fe in mf.fe.columns}
    from cluster_econ.estimate.formula import as_frame
    src = as_frame(data)
    sample = (src.loc[index, [c for c in mf.spec.variables() if c in src.columns]]
              if src.index.is_unique else None)
    return Result(
        params=params, cov=covdf, nobs=n, vcov_info=info, formula=formula, model=model,
        engine=engine, audit=Audit(n_input=mf.n_input, dropped=dropped, collinear=collinear,
                                   notes=tuple(notes)),
        data_hash=data_hash(pd.Series(y), X), groups=groups, stats=stats_out,
        extra={"link": link, "spec": mf.spec, "index": index, "columns": tuple(names),
               "fe_columns": tuple(D.columns) if mf.fe.shape[1] else (), "sample": sample},
        predictor=_predict_index,
    )


def _fe_dummies_linear(mf: Any) -> tuple[pd.DataFrame, np.ndarray, dict[str, int], list[str]]:
    keep = np.ones(len(mf.index), dtype=bool)
    return _dummies(mf.fe), keep, {}, []


def _fit_ml(link: str, y: np.ndarray, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                             float, float, str]:
    """Fit by statsmodels; return beta, bread = (-H)^-1, row scores, loglik, null loglik, engine."""
    import statsmodels.api as sm
    if link in ("logit", "probit"):
        mod = (sm.Logit if link == "logit" else sm.Probit)(y, X)
        res = mod.fit(method="newton", disp=False, maxiter=200, tol=1e-12)
        beta = np.asarray(res.params)
        H = mod.hessian(beta)
        S = mod.score_obs(beta)
        ll = float(mod.loglike(beta))
    else:
        fam = sm.families.Binomial(link=sm.families.links.CLogLog())
        mod = sm.GLM(y, X, family=fam)
        res = mod.fit(method="newton", maxiter=200, tol=1e-12)
        beta = np.asarray(res.params)
        # polish with IRLS-independent Newton steps on the observed Hessian
        for _ in range(5):
            H = mod.hessian(beta, observed=True)
            g = mod.score(beta)
            beta = beta - np.linalg.solve(H, g)
        H = mod.hessian(beta, observed=True)
        S = mod.score_obs(beta)
        ll = float(mod.loglike(beta, scale=1.0))
    converged = bool(getattr(res, "mle_retvals", {}).get("converged", True)) if hasattr(res, "mle_retvals") else True
    if not converged and link != "cloglog":
        raise EstimationError(f"{link}: maximum likelihood did not converge (possible separation)")
    pbar = y.mean()
    ll0 = float(len(y) * (pbar * np.log(pbar) + (1 - pbar) * np.log(1 - pbar)))
    try:
        bread = np.linalg.inv(-H)
    except np.linalg.LinAlgError as exc:
        raise EstimationError(f"{link}: singular information matrix (collinear regressors or "
                              "separation)") from exc
    return beta, bread, np.asarray(S), ll, ll0, sm_engine()


def _fit_weighted_glm(link: str, y: np.ndarray, X: np.ndarray, w: np.ndarray) -> tuple[
        np.ndarray, np.ndarray, np.ndarray, float, float, str]:
    """Weighted (pseudo-)maximum likelihood of a binary index model, as R's ``svyglm`` with a
    ``quasibinomial`` family: beta solves ``sum_i w_i x_i (y_i - mu_i) mu_i' / V(mu_i) = 0``; the
    bread is the inverse *expected* information ``(X' W X)^-1`` with working weights
    ``w_i mu_i'^2 / V(mu_i)``; the scores are the weighted per-row score contributions."""
    import statsmodels.api as sm

    links = {"logit": sm.families.links.Logit(), "probit": sm.families.links.Probit(),
             "cloglog": sm.families.links.CLogLog()}
    fam = sm.families.Binomial(link=links[link])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = sm.GLM(y, X, family=fam, var_weights=w).fit(tol=1e-13, maxiter=200)
    beta = np.asarray(res.params, dtype=float)
    if not res.converged:
        raise EstimationError(f"{link}: weighted maximum likelihood did not converge (possible separation)")
    eta = X @ beta
    mu = np.clip(fam.link.inverse(eta), 1e-300, 1 - 1e-16)
    dmu = fam.link.inverse_deriv(eta)
    var = mu * (1 - mu)
    work = w * dmu**2 / var
    try:
        bread = np.linalg.inv(X.T @ (X * work[:, None]))
    except np.linalg.LinAlgError as exc:
        raise EstimationError(f"{link}: singular information matrix (collinear regressors or separation)") from exc
    scores = X * (w * (y - mu) * dmu / var)[:, None]
    ll = float(np.sum(w * (y * np.log(mu) + (1 - y) * np.log1p(-mu))))
    pbar = float(np.sum(w * y) / np.sum(w))
    ll0 = float(np.sum(w) * (pbar * np.log(pbar) + (1 - pbar) * np.log(1 - pbar)))
    return beta, (bread + bread.T) / 2, scores, ll, ll0, sm_engine()


def _check_fitted(link: str, xb: np.ndarray, names: Sequence[str], beta: np.ndarray, model: str) -> None:
    """Refuse results where maximum likelihood ran off to infinity (quasi-complete separation)."""
    p = _cdf(link, xb)
    extreme = (p < 1e-10) | (p > 1 - 1e-10)
    if extreme.sum() > 0 and np.abs(xb).max() > 25:
        j = int(np.argmax(np.abs(beta) * (np.array([n != "Intercept" for n in names]))))
        raise EstimationError(
            f"{model}: {int(extreme.sum())} rows have fitted probabilities of exactly 0 or 1 "
            f"(quasi-complete separation; largest coefficient: {names[j]} = {beta[j]:.3g}). "
            "The estimates are not finite: drop the regressor or the rows it predicts perfectly")


def _design_for(result: Result, data: pd.DataFrame) -> pd.DataFrame:
    """Design matrix of ``result``'s formula on ``data``, aligned to its coefficients.

    The rows are built together with the estimation sample kept in the Result, so that factor
    levels absent from ``data`` (for example a factor set to one level) still get their columns.
    Columns of the outcome that ``data`` lacks are filled with 1 (they do not enter the design).
    """
    from cluster_econ.estimate.formula import as_frame, model_frame, term_variables
    spec = result.extra["spec"]
    data = as_frame(data)
    fill = {v: 1.0 for v in term_variables(spec.lhs) if v not in data.columns}
    if fill:
        data = data.assign(**fill)
    m = len(data)
    sample = result.extra.get("sample")
    used = [c for c in spec.variables() if c in data.columns]
    parts = [data[used].reset_index(drop=True)]
    if sample is not None and all(c in sample.columns for c in used):
        parts.append(sample[used].reset_index(drop=True))
    stacked = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    mf = model_frame(spec, stacked)
    pos = np.asarray(mf.X.index)
    mine = pos < m
    X = mf.X.loc[mine].copy()
    if result.extra.get("fe_columns"):
        for col in mf.fe.columns:
            vals = mf.fe[col].loc[mine].astype(str).to_numpy()
            for name in result.extra["fe_columns"]:
                if name.startswith(f"{col}["):
                    X[name] = (vals == name[len(col) + 1:-1]).astype(float)
        if "Intercept" not in X.columns:
            X.insert(0, "Intercept", 1.0)
    X.index = data.index[pos[mine]]
    return X.reindex(columns=list(result.params.index), fill_value=0.0)


def _predict_index(result: Result, data: pd.DataFrame | None) -> pd.Series:
    """Predicted probabilities ``F(x'beta)`` (fitted values for the LPM)."""
    if data is None:
        raise EstimationError("predict needs data for this model")
    X = _design_for(result, data)
    xb = X.to_numpy(dtype=float) @ result.params.to_numpy()
    return pd.Series(_cdf(result.extra["link"], xb), index=X.index, name="prediction")


def logit(formula: str, data: Any, vcov: Any = "iid", ssc: str = "stata",
          separation: str = "raise", survey: SurveyDesign | None = None) -> Result:
    """Pooled logit ``P(y=1|x) = 1/(1+exp(-x'beta))`` by maximum likelihood (statsmodels).

    Parameters
    ----------
    formula : str
        ``"y ~ x1 + x2"``, optionally ``| fe1 + fe2`` for fixed effects as dummies.
    data : DataFrame or Panel
    vcov : ``"iid"`` (inverse observed information, "OIM"), ``"HC1"`` or ``{"CRV1": "firm"}``.
    ssc : small-sample preset, ``"stata"`` (default), ``"fixest"`` or ``"none"``.
    separation : ``"raise"`` (default) or ``"drop"``: what to do when a regressor predicts the
        outcome perfectly for some rows. ``"drop"`` drops those rows and the regressor (Stata's
        behaviour) and records both in the audit.
    survey : SurveyDesign, optional
        Sampling design: weighted pseudo-maximum likelihood with the design-based (linearised)
        covariance of R's ``svyglm(..., family=quasibinomial)`` (bread: inverse expected
        information); see :mod:`cluster_econ.estimate.survey`. ``vcov`` must stay at its default.

    Returns
    -------
    Result with ``stats`` ``loglik``, ``loglik_null``, ``pseudo_r2`` (McFadden), ``lr_chi2``.
    """
    return _index_model(formula, data, "logit", vcov, ssc, "logit", separation, survey=survey)


def probit(formula: str, data: Any, vcov: Any = "iid", ssc: str = "stata",
           separation: str = "raise", survey: SurveyDesign | None = None) -> Result:
    """Pooled probit ``P(y=1|x) = Φ(x'beta)`` by maximum likelihood (statsmodels). Arguments as
    :func:`logit`."""
    return _index_model(formula, data, "probit", vcov, ssc, "probit", separation, survey=survey)


def cloglog(formula: str, data: Any, vcov: Any = "iid", ssc: str = "stata",
            separation: str = "raise", survey: SurveyDesign | None = None) -> Result:
    """Complementary log-log model ``P(y=1|x) = 1 - exp(-exp(x'beta))`` by maximum likelihood
    (statsmodels GLM, binomial family; ``OIM`` uses the observed, not expected, information).
    Arguments as :func:`logit`."""
    return _index_model(formula, data, "cloglog", vcov, ssc, "cloglog", separation, survey=survey)


def lpm(formula: str, data: Any, vcov: Any = "HC1", ssc: str = "stata") -> Result:
    """Linear probability model ``E(y|x) = x'beta`` by OLS (statsmodels).

    The default covariance is heteroskedasticity-robust (``HC1``) because the errors of a linear
    probability model are heteroskedastic by construction. ``vcov`` accepts everything the shared
    ``covariance`` module does for OLS: ``"iid"``, ``"HC1"``, ``"HC3"``, ``{"CRV1": "firm"}``,
    ``{"CRV1": "firm+year"}``. Fixed effects after ``|`` are absorbed by :func:`feols`, so the
    small-sample presets count them exactly as they do there (fixed effects nested in the clusters
    are not counted).
    """
    from cluster_econ.estimate.formula import as_frame, parse_formula

    spec = parse_formula(formula)
    if not spec.fixed_effects:
        return _index_model(formula, data, "identity", vcov, ssc, "lpm")
    import dataclasses

    from cluster_econ.estimate.linear import feols

    frame_ = as_frame(data)
    if spec.lhs in frame_.columns:
        y = frame_[spec.lhs]
        check_binary(y[y.notna()], spec.lhs)
    res = feols(formula, frame_, vcov=vcov, ssc=ssc)
    return dataclasses.replace(res, model="lpm")


# ---------------------------------------------------------------------------------------------
# average marginal effects
# ---------------------------------------------------------------------------------------------
def marginal_effects(result: Result, data: Any = None) -> Result:
    """Average marginal effects of every variable of an index model, with delta-method SE.

    For a continuous variable ``v``: ``mean_i dF(x_i'beta)/dv`` (central difference in ``v``
    through the formula, so transforms and interactions are respected). For a 0/1 variable:
    ``mean_i [F(x_i(v=1)'beta) - F(x_i(v=0)'beta)]``. For a factor: each level against the
    reference level. The covariance is ``J V J'`` with ``J`` the derivative of the effects with
    respect to ``beta`` (analytic) and ``V`` the covariance of ``result``.

    Parameters
    ----------
    result : Result of :func:`logit`, :func:`probit`, :func:`cloglog`, :func:`lpm` or
        :func:`cre_probit`.
    data : DataFrame, optional
        Rows over which to average (those of the estimation sample when their labels match);
        by default the estimation sample kept in ``result.extra["sample"]``.

    Returns
    -------
    Result with ``model="ame"``.
    """
    from cluster_econ.estimate.formula import as_frame
    if "link" not in result.extra or "spec" not in result.extra:
        raise EstimationError(f"marginal_effects needs a binary index model, not {result.model!r}")
    if data is None:
        df = result.extra.get("sample")
        if df is None:
            raise EstimationError("marginal_effects: pass data (the model was fitted on data whose "
                                  "row labels are not unique, so its sample was not kept)")
    else:
        df = as_frame(data)
    idx = result.extra["index"]
    if df.index.is_unique and set(idx).issubset(df.index):
        df = df.loc[idx]
    means = result.extra.get("cre_means", {})
    if means and not all(m in df.columns for m in means.values()):
        df = _add_means(df, result.extra["cre_entity"], means)
    spec = result.extra["spec"]
    link = result.extra["link"]
    beta = result.params.to_numpy()
    V = result.cov.to_numpy()
    lhs_vars = set(_term_vars(spec.lhs))
    variables = [v for v in spec.variables() if v not in lhs_vars and v not in spec.fe_variables]
    if means:
        variables = [v for v in variables if v not in set(means.values())]
    names, effects, jac = [], [], []

    def design(d: pd.DataFrame) -> np.ndarray:
        return _design_for(result, d).to_numpy(dtype=float)

    def contrast(d1: pd.DataFrame, d0: pd.DataFrame, h: float = 1.0) -> tuple[float, np.ndarray]:
        X1, X0 = design(d1), design(d0)
        xb1, xb0 = X1 @ beta, X0 @ beta
        eff = float(np.mean(_cdf(link, xb1) - _cdf(link, xb0)) / h)
        J = ((_pdf(link, xb1)[:, None] * X1 - _pdf(link, xb0)[:, None] * X0).mean(axis=0)) / h
        return eff, J

    for v in variables:
        col = df[v]
        numeric = pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col)
        as_factor = any(t.startswith(f"C({v}") or t.startswith(f"i({v}") for t in _atoms(spec))
        uniq = pd.unique(col.dropna())
        if numeric and not as_factor and set(np.asarray(uniq, dtype=float).tolist()) <= {0.0, 1.0}:
            d1, d0 = df.copy(), df.copy()
            d1[v], d0[v] = 1.0, 0.0
            e, J = contrast(d1, d0)
            names.append(v)
        elif numeric and not as_factor:
            x = col.to_numpy(dtype=float)
            h = 1e-5 * max(float(np.std(x)), 1e-8) + 1e-7 * max(float(np.abs(x).mean()), 1.0)
            d1, d0 = df.copy(), df.copy()
            d1[v], d0[v] = x + h, x - h
            e, J = contrast(d1, d0, 2 * h)
            names.append(v)
        else:
            levels = sorted(uniq.tolist(), key=lambda z: (str(type(z)), z))
            base = levels[0]
            for lv in levels[1:]:
                d1, d0 = df.copy(), df.copy()
                d1[v] = pd.Series([lv] * len(df), index=df.index, dtype=col.dtype)
                d0[v] = pd.Series([base] * len(df), index=df.index, dtype=col.dtype)
                e, J = contrast(d1, d0)
                names.append(f"{v}[{lv}]")
                effects.append(e)
                jac.append(J)
            continue
        effects.append(e)
        jac.append(J)
    Jm = np.array(jac).reshape(len(names), len(beta))
    cov = Jm @ V @ Jm.T
    info = result.vcov_info
    return Result(
        params=pd.Series(effects, index=names), cov=pd.DataFrame(cov, index=names, columns=names),
        nobs=len(df), vcov_info=VcovInfo(type=info.type, ssc=info.ssc, cluster_vars=info.cluster_vars,
                                         n_clusters=info.n_clusters, df_resid=info.df_resid,
                                         details={**dict(info.details), "method": "delta"}),
        formula=result.formula, model="ame", engine=ENGINE_OWN, audit=result.audit,
        data_hash=result.data_hash, groups=result.groups,
        stats={"n_averaged": float(len(df))},
        extra={"of_model": result.model, "link": link},
    )


def _term_vars(term: str) -> list[str]:
    from cluster_econ.estimate.formula import term_variables
    return term_variables(term)


def _atoms(spec: Any) -> list[str]:
    out = []
    for t in spec.rhs:
        out.extend(a.strip() for a in t.split(":"))
    return out


# ---------------------------------------------------------------------------------------------
# panel binary models
# ---------------------------------------------------------------------------------------------
def conditional_logit(formula: str, data: Any, group: str, vcov: Any = "iid",
                      ssc: str = "stata") -> Result:
    """Fixed-effects (conditional) logit ``P(y_it=1) = Λ(α_i + x_it'β)``, ``α_i`` conditioned out.

    Groups whose outcome never varies carry no information and are dropped (counted in the audit).
    Regressors constant within every group are not identified and are dropped (listed as
    collinear). Fitting: statsmodels ``ConditionalLogit``. ``vcov="iid"`` is the inverse observed
    information; ``{"CRV1": col}`` sums group scores within clusters (``col`` may be ``group``).
    No intercept is estimated.
    """
    import statsmodels
    from statsmodels.discrete.conditional_models import ConditionalLogit
    kind, cl = parse_vcov(vcov)
    if kind == "HC1":
        raise EstimationError("conditional_logit: use vcov='iid' or {'CRV1': group}; row-level "
                              "robust scores are not defined for the conditional likelihood")
    mf = frame(formula, data, extra=[group] + ([cl] if cl and cl != group else []),
               extra_reasons={group: "missing group", **({cl: "missing cluster"} if cl else {})})
    dropped = dict(mf.dropped)
    y = check_binary(mf.y, mf.spec.lhs)
    g = mf.extra[group].to_numpy()
    codes, _ = pd.factorize(g)
    gm = np.bincount(codes, weights=y) / np.bincount(codes)
    keep = (gm > 0) & (gm < 1)
    keep = keep[codes]
    if (~keep).any():
        dropped["groups without variation in the outcome"] = int((~keep).sum())
    n_groups_dropped = int(((gm == 0) | (gm == 1)).sum())
    X = mf.X.drop(columns=["Intercept"], errors="ignore").loc[keep]
    y, g = y[keep], g[keep]
    if len(y) == 0:
        raise EstimationError(f"conditional_logit: no group of {group!r} has variation in "
                              f"{mf.spec.lhs!r}")
    # drop regressors constant within every group
    codes2 = pd.factorize(g)[0]
    within = X.groupby(codes2).transform(lambda s: s - s.mean())
    const = [c for c in X.columns if np.allclose(within[c].to_numpy(), 0)]
    Xw, coll = drop_collinear(within.drop(columns=const))
    collinear = (*const, *coll)
    X = X[list(Xw.columns)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mod = ConditionalLogit(y, X.to_numpy(dtype=float), groups=codes2)
        res = mod.fit(method="bfgs", disp=False, maxiter=1000, gtol=1e-10)
        beta = np.asarray(res.params)
        for _ in range(3):  # Newton polish on the numerical Hessian
            H = mod.hessian(beta)
            beta = beta - np.linalg.solve(H, mod.score(beta))
        H = mod.hessian(beta)
    bread = np.linalg.inv(-H)
    scores = None
    clusters = None
    if kind == "CRV1":
        scores = np.array([mod.score_grp(i, beta) for i in range(mod._n_groups)])
        grp_first = pd.Series(mf.extra[cl].loc[X.index].to_numpy()).groupby(codes2).first()
        if cl != group:
            nun = pd.Series(mf.extra[cl].loc[X.index].to_numpy()).groupby(codes2).nunique()
            if (nun > 1).any():
                raise EstimationError(f"conditional_logit: clusters {cl!r} must nest groups {group!r}")
        clusters = grp_first.to_numpy()
    cov, info = mest_vcov(bread, scores, kind, clusters, ssc, cl)
    ll = float(mod.loglike(beta))
    names = list(X.columns)
    return Result(
        params=pd.Series(beta, index=names), cov=pd.DataFrame(cov, index=names, columns=names),
        nobs=len(y), vcov_info=info, formula=formula, model="conditional-logit",
        engine=f"statsmodels {statsmodels.__version__}",
        audit=Audit(n_input=mf.n_input, dropped=dropped, collinear=tuple(collinear),
                    notes=(f"{n_groups_dropped} groups of {group} without variation in the outcome "
                           "dropped",) if n_groups_dropped else ()),
        data_hash=data_hash(pd.Series(y), X), groups={group: len(np.unique(codes2))},
        stats={"loglik": ll},
    )


def _add_means(df: pd.DataFrame, entity: str, means: Mapping[str, str]) -> pd.DataFrame:
    df = df.copy()
    for v, m in means.items():
        df[m] = df.groupby(entity)[v].transform("mean")
    return df


def cre_probit(formula: str, data: Any, entity: str, vcov: Any = None, ssc: str = "stata") -> Result:
    """Correlated random-effects (Mundlak-Chamberlain) probit.

    Model: ``P(y_it = 1 | x_i) = Φ(x_it'β + x̄_i'ξ + ψ)`` where ``x̄_i`` are the entity means (over
    the estimation sample) of the time-varying regressors; the pooled probit estimates the scaled
    coefficients (Wooldridge, Econometric Analysis of Cross Section and Panel Data, 15.8.2).
    Regressors constant within every entity get no mean term. The mean of ``x`` appears as
    ``mean_x``. The default covariance is clustered by ``entity`` (the pooled probit ignores the
    serial dependence of the scores).
    """
    from cluster_econ.estimate.formula import as_frame, model_frame, parse_formula
    spec = parse_formula(formula)
    if spec.fixed_effects:
        raise EstimationError("cre_probit: fixed effects are not allowed (the entity means replace them)")
    df = as_frame(data)
    if not df.index.is_unique:
        df = df.reset_index(drop=True)
    if entity not in df.columns:
        raise EstimationError(f"cre_probit: entity column {entity!r} is not in the data")
    # the estimation sample first, so that the means use exactly the rows estimated
    mf = model_frame(spec, df, extra=[entity], extra_reasons={entity: "missing entity"})
    sub = df.loc[mf.index]
    means: dict[str, str] = {}
    codes = pd.factorize(sub[entity])[0]
    for term in spec.rhs:
        if ":" in term or "(" in term:
            continue
        x = pd.to_numeric(sub[term], errors="coerce")
        dev = x - x.groupby(codes).transform("mean")
        if not np.allclose(dev.to_numpy(dtype=float), 0):
            means[term] = f"mean_{term}"
    if not means:
        raise EstimationError("cre_probit: no regressor varies within entities; use probit")
    sub = _add_means(sub, entity, means)
    rhs = " + ".join([*spec.rhs, *means.values()])
    f2 = f"{spec.lhs} ~ {rhs}" + ("" if spec.intercept else " - 1")
    res = _index_model(f2, sub, "probit", vcov if vcov is not None else {"CRV1": entity}, ssc,
                       "cre-probit")
    audit = Audit(n_input=mf.n_input, dropped={**mf.dropped, **dict(res.audit.dropped)},
                  collinear=res.audit.collinear, notes=res.audit.notes)
    return Result(params=res.params, cov=res.cov, nobs=res.nobs, vcov_info=res.vcov_info,
                  formula=formula, model="cre-probit", engine=res.engine, audit=audit,
                  data_hash=res.data_hash, groups={entity: int(sub[entity].nunique())},
                  stats=res.stats, extra={**dict(res.extra), "cre_means": means,
                                          "cre_entity": entity, "spec": res.extra["spec"]},
                  predictor=res.predictor)
