"""Covariance matrices of linear estimators and their small-sample corrections, in one place.

Every estimator hands this module its bread :math:`B = (\\tilde X' W \\tilde X)^{-1}` (for 2SLS the
projected regressors :math:`\\hat X`), residuals :math:`u`, weights :math:`w` and design
:math:`\\tilde X`, and receives the covariance with a :class:`VcovInfo` that names the estimator and
the correction. Scores are :math:`s_i = w_i u_i \\tilde x_i`.

Estimators
----------
``"iid"``
    :math:`V = \\hat\\sigma^2 B` with :math:`\\hat\\sigma^2 = \\sum_i w_i u_i^2 / d`.
``"HC1"``
    :math:`V = c\\, B (\\sum_i s_i s_i') B` (HC0 times the multiplier :math:`c`).
``"HC3"``
    :math:`V = B (\\sum_i s_i s_i' / (1-h_i)^2) B`, :math:`h_i = w_i \\tilde x_i' B \\tilde x_i`;
    no further multiplier under any preset (as statsmodels and Stata ``vce(hc3)``).
``{"CRV1": "g"}``
    :math:`V = c\\, B (\\sum_g S_g S_g') B`, :math:`S_g = \\sum_{i\\in g} s_i`.
``{"CRV1": "g+h"}``
    Cameron-Gelbach-Miller two-way: :math:`V = c(V_g + V_h - V_{g\\cap h})`. If the sum is not
    positive semi-definite, negative eigenvalues are set to zero and ``details["eigen_fix"]`` says so.
``{"CRV3": "g"}``
    Leave-one-cluster-out jackknife: :math:`V = c \\sum_g (\\hat\\beta_{-g}-\\hat\\beta)
    (\\hat\\beta_{-g}-\\hat\\beta)'`.

Small-sample presets (``ssc``)
------------------------------
Let :math:`N` be observations, :math:`k` estimated slopes (with the intercept when no fixed
effects are absorbed), :math:`K_{FE}` the free fixed-effect coefficients, :math:`G` clusters
(for two-way clustering :math:`G = \\min(G_1, G_2)`).

``"fixest"`` (R fixest defaults: ``adj=TRUE, fixef.K="nested", cluster.adj=TRUE,
cluster.df="min", t.df="min"``; identical to pyfixest's default ``ssc()``):
    :math:`K_{FE} = \\sum_j G_j - (J-1)`. For clustered errors, a fixed effect whose every level
    lies inside one cluster ("nested") contributes one coefficient instead of :math:`G_j`.
    :math:`K = k + K_{FE}`.
    iid: :math:`d = N-K`; HC1: :math:`c = N/(N-K)`; CRV1 and CRV3:
    :math:`c = \\frac{N-1}{N-K}\\frac{G}{G-1}`. Degrees of freedom for t and F: :math:`N-K`, or
    :math:`G-1` when clustered.
``"stata"`` (Stata ``regress``, ``xtreg, fe`` and ``reghdfe``):
    as ``"fixest"`` except that redundant coefficients of the first two absorbed factors are
    counted exactly (connected components of their bipartite graph, as reghdfe does), and CRV3
    uses :math:`c = (G-1)/G` (the jackknife convention of MacKinnon, Nielsen and Webb / summclust).
    For connected panels the two presets give identical iid, HC1 and CRV1 numbers.
``"none"``:
    :math:`d = N`, :math:`c = 1` for every estimator; degrees of freedom as above.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from cluster_econ.errors import EstimationError
from cluster_econ.estimate.result import VcovInfo

__all__ = ["SSC_PRESETS", "CovInputs", "cluster_codes", "clustering_columns", "compute_vcov", "mest_vcov",
           "parse_vcov"]

SSC_PRESETS = ("stata", "fixest", "none")
_KINDS = ("iid", "HC1", "HC3", "CRV1", "CRV3")
FEW_CLUSTERS = 20


def _user_level() -> int:
    """``stacklevel`` that points a warning at the first caller outside cluster_econ."""
    import sys
    frame, level = sys._getframe(1), 1
    while frame is not None and str(frame.f_globals.get("__name__", "")).startswith("cluster_econ"):
        frame, level = frame.f_back, level + 1
    return level


def parse_vcov(vcov: str | Mapping[str, str] | None) -> tuple[str, tuple[str, ...]]:
    """``"iid"``, ``"HC1"``, ``{"CRV1": "firm+year"}`` -> (kind, cluster variables)."""
    if vcov is None:
        return "iid", ()
    if isinstance(vcov, str):
        key = {"hetero": "HC1", "robust": "HC1", "hc1": "HC1", "hc3": "HC3"}.get(vcov.lower(), vcov)
        if key not in ("iid", "HC1", "HC3"):
            raise EstimationError(f"vcov {vcov!r} is not known; use 'iid', 'HC1', 'HC3', "
                                  "{'CRV1': 'cluster'}, {'CRV1': 'c1+c2'} or {'CRV3': 'cluster'}")
        return key, ()
    if isinstance(vcov, Mapping) and len(vcov) == 1:
        kind, spec = next(iter(vcov.items()))
        if kind not in ("CRV1", "CRV3"):
            raise EstimationError(f"clustered vcov must be CRV1 or CRV3, got {kind!r}")
        parts = list(spec) if isinstance(spec, list | tuple) else str(spec).split("+")
        names = tuple(str(v).strip() for v in parts if str(v).strip())
        if not 1 <= len(names) <= 2:
            raise EstimationError(f"clustering takes one or two variables, got {spec!r}")
        if kind == "CRV3" and len(names) != 1:
            raise EstimationError("CRV3 supports one-way clustering only")
        return kind, names
    raise EstimationError(f"vcov {vcov!r} is not understood")


def cluster_codes(frame: pd.DataFrame, names: Sequence[str]) -> list[np.ndarray]:
    """Integer codes of each clustering variable (rows with missing values must be gone)."""
    return [pd.factorize(frame[n])[0].astype(np.int64) for n in names]


def clustering_columns(data: Any, names: Sequence[str], n_rows: int, rows: np.ndarray,
                       index: pd.Index) -> list[pd.Series]:
    """The clustering columns ``names`` of the data a model was fitted on, for ``Result.vcov()``.

    ``data`` is what the estimator was given (a Panel is joined again by ``as_frame``); ``rows``
    are the positions of the estimation sample in it and ``index`` their labels, as at the fit.
    Each column is returned whole (the caller codes it as the fit did). Raises when the data's rows
    have changed since the fit, a column is absent, or a column is missing in the sample (a fit with
    that clustering would drop those rows: another sample).
    """
    from cluster_econ.estimate.formula import as_frame

    frame = as_frame(data)
    if len(frame) != n_rows or not frame.index[rows].equals(index):
        raise EstimationError("vcov(): the rows of the data this model was fitted on have changed since "
                              "the fit; fit the model again with vcov=")
    out = []
    for name in names:
        if name not in frame.columns:
            raise EstimationError(f"vcov(): clustering variable {name!r} is not a column of the data this "
                                  "model was fitted on")
        column = frame[name]
        missing = np.flatnonzero(column.iloc[rows].isna().to_numpy())
        if missing.size:
            where = ", ".join(map(str, index[missing[:5]].tolist()))
            raise EstimationError(f"vcov(): clustering variable {name!r} is missing in {missing.size} row(s) "
                                  f"of the estimation sample (rows {where}); a fit with this vcov drops them, "
                                  "so it is another sample: fit the model again with vcov=")
        out.append(column)
    return out


@dataclass
class CovInputs:
    """What an estimator knows after fitting.

    ``X`` is the design entering the scores (demeaned; for 2SLS the fitted first-stage design),
    ``bread`` the inverse of its weighted cross-product, ``u`` the residuals.
    ``fe_codes`` the absorbed factors' codes, ``fe_dof`` maps preset -> free FE coefficients.
    ``jackknife`` returns the (G, k) leave-one-cluster-out coefficients for CRV3.
    """

    X: np.ndarray
    u: np.ndarray
    bread: np.ndarray
    beta: np.ndarray
    weights: np.ndarray | None = None
    fe_codes: list[np.ndarray] = field(default_factory=list)
    fe_dof: Mapping[str, int] = field(default_factory=dict)
    leverage: Callable[[], np.ndarray] | None = None
    jackknife: Callable[[np.ndarray], np.ndarray] | None = None
    meat_transform: Callable[[np.ndarray], np.ndarray] | None = None
    nested_memo: dict[Any, bool] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.u)

    @property
    def k(self) -> int:
        return self.X.shape[1]

    def cluster_scores(self, codes: np.ndarray) -> np.ndarray:
        """(G x k) sums of the scores within clusters, one column at a time (no n x k temporary)."""
        wu = self.u * self.weights if self.weights is not None else self.u
        G = int(codes.max()) + 1
        buf = np.empty(len(wu))
        out = np.empty((G, self.k))
        for j in range(self.k):
            np.multiply(self.X[:, j], wu, out=buf)
            out[:, j] = np.bincount(codes, weights=buf, minlength=G)
        return out

    def scores(self) -> np.ndarray:
        wu = self.u * self.weights if self.weights is not None else self.u
        out = np.empty(self.X.shape, order="F")
        for j in range(self.X.shape[1]):
            np.multiply(self.X[:, j], wu, out=out[:, j])
        return out


def _cluster_sum(scores: np.ndarray, codes: np.ndarray) -> np.ndarray:
    G = int(codes.max()) + 1
    return np.column_stack([np.bincount(codes, weights=scores[:, j], minlength=G)
                            for j in range(scores.shape[1])]) if scores.shape[1] else np.zeros((G, 0))


def _nested(fe: np.ndarray, cl: np.ndarray) -> bool:
    """True if every level of ``fe`` lies within one cluster."""
    first = np.empty(int(fe.max()) + 1, dtype=np.int64)
    first[fe] = cl  # one cluster per level (the last written); nested iff every row agrees
    return bool(np.array_equal(first[fe], cl))


def compute_vcov(inp: CovInputs, kind: str, clusters: Sequence[np.ndarray] = (),
                 cluster_names: Sequence[str] = (), ssc: str = "stata") -> tuple[np.ndarray, VcovInfo]:
    """Covariance of the coefficients and its description (see the module docstring)."""
    if ssc not in SSC_PRESETS:
        raise EstimationError(f"ssc {ssc!r} is not a preset; choose one of {', '.join(SSC_PRESETS)}")
    if kind not in _KINDS:
        raise EstimationError(f"vcov type {kind!r} is not known")
    n, k = inp.n, inp.k
    k_fe = int(inp.fe_dof.get(ssc if ssc in inp.fe_dof else "fixest", 0)) if inp.fe_codes else 0
    details: dict[str, Any] = {}
    notes: list[str] = []
    B = inp.bread
    if kind in ("iid", "HC1", "HC3"):
        K = k + k_fe
        df = n - K
        if df <= 0:
            raise EstimationError(f"no residual degrees of freedom: {n} observations, {K} coefficients")
        if kind == "iid":
            w = inp.weights if inp.weights is not None else 1.0
            rss = float(np.sum(w * inp.u**2))
            d = n if ssc == "none" else n - K
            sigma2 = rss / d
            V = sigma2 * B
            details.update(sigma2=sigma2, denominator=d)
        else:
            S = inp.scores()
            if kind == "HC3":
                h = inp.leverage() if inp.leverage is not None else np.zeros(n)
                if np.any(h >= 1 - 1e-12):
                    raise EstimationError("HC3 is undefined: some observations have leverage 1 "
                                          "(a regressor identifies single observations)")
                S = S / (1 - h)[:, None]
                mult = 1.0
            else:
                mult = 1.0 if ssc == "none" else n / (n - K)
            meat = S.T @ S
            if inp.meat_transform is not None:
                meat = inp.meat_transform(meat)
            V = mult * (B @ meat @ B)
            details["multiplier"] = mult
        details["K"] = K
        info = VcovInfo(type=kind, ssc=ssc, df_resid=float(df), details=details)
        return V, info

    # clustered
    Gs = [int(c.max()) + 1 if len(c) else 0 for c in clusters]
    for name, G in zip(cluster_names, Gs, strict=True):
        if G < 2:
            raise EstimationError(f"cannot cluster on one group: {name!r} takes a single value in the "
                                  "estimation sample; use 'HC1' or another cluster variable")
        if G < FEW_CLUSTERS:
            warnings.warn(f"only {G} clusters in {name!r}: cluster-robust standard errors are "
                          "unreliable with fewer than 20 clusters; use "
                          "cluster_econ.estimate.wild_bootstrap for inference", stacklevel=_user_level())
    nested_fe = []
    if inp.fe_codes and ssc != "none":
        for j, fe in enumerate(inp.fe_codes):
            for ci, c in enumerate(clusters):
                key = (j, ci, tuple(cluster_names))
                if key not in inp.nested_memo:
                    inp.nested_memo[key] = _nested(fe, c)
            if any(inp.nested_memo[(j, ci, tuple(cluster_names))] for ci in range(len(clusters))):
                nested_fe.append(j)
    sizes = [int(c.max()) + 1 for c in inp.fe_codes]
    K = k + k_fe - sum(sizes[j] for j in nested_fe) + len(nested_fe)
    G = min(Gs)
    if ssc == "none":
        adj = 1.0
    elif kind == "CRV3" and ssc == "stata":
        adj = (G - 1) / G
    else:
        adj = (n - 1) / (n - K) * G / (G - 1)
    details.update(multiplier=adj, K=K, nested_fixed_effects=len(nested_fe))
    if kind == "CRV3":
        betas = inp.jackknife(clusters[0]) if inp.jackknife is not None else None
        if betas is None:
            raise EstimationError("CRV3 is not available for this estimator")
        D = betas - inp.beta[None, :]
        V = adj * (D.T @ D)
    else:
        parts: list[tuple[float, np.ndarray]] = [(1.0, c) for c in clusters]
        if len(clusters) == 2:
            inter = pd.factorize(clusters[0] * (Gs[1] + 1) + clusters[1])[0].astype(np.int64)
            parts.append((-1.0, inter))
            details["n_intersection_clusters"] = int(inter.max()) + 1
        meat = np.zeros((k, k))
        for sign, c in parts:
            Sg = inp.cluster_scores(c)
            meat += sign * (Sg.T @ Sg)
        if inp.meat_transform is not None:
            meat = inp.meat_transform(meat)
        V = adj * (B @ meat @ B)
        if len(clusters) == 2:
            V = (V + V.T) / 2
            evals, evecs = np.linalg.eigh(V)
            if evals.min() < 0:
                V = (evecs * np.clip(evals, 0, None)) @ evecs.T
                details["eigen_fix"] = True
                notes.append("two-way clustered covariance was not positive semi-definite; "
                             "negative eigenvalues set to zero (Cameron, Gelbach and Miller 2011)")
    if notes:
        details["notes"] = tuple(notes)
    info = VcovInfo(type=kind, ssc=ssc, cluster_vars=tuple(cluster_names), n_clusters=tuple(Gs),
                    df_resid=float(G - 1), details=details)
    return V, info


def mest_vcov(bread: np.ndarray, scores: np.ndarray | None, kind: str, clusters: Any = None,
              ssc: str = "stata", cluster_var: str | None = None) -> tuple[np.ndarray, VcovInfo]:
    """Covariance of an M-estimator (maximum likelihood, Cox partial likelihood, Tobit) from its
    bread (inverse negative Hessian) and per-row scores.

    Parameters
    ----------
    bread : (k, k) array
        ``(-H)^{-1}`` with ``H`` the Hessian of the objective summed over rows.
    scores : (n, k) array
        Per-row contributions to the gradient at the estimate (``None`` for ``OIM``).
    kind : {"OIM", "HC1", "CRV1"}
    clusters : array of length n, for ``CRV1``.
    ssc : {"stata", "fixest", "none"}
        Small-sample multiplier for maximum-likelihood models (these differ from the OLS presets
        above): ``"stata"`` as Stata's ``vce(robust)``/``vce(cluster)`` after ML commands,
        ``n/(n-1)`` robust and ``G/(G-1)`` clustered; ``"fixest"`` as fixest's ``feglm``,
        ``n/(n-k)`` robust and ``G/(G-1) (n-1)/(n-k)`` clustered; ``"none"``: 1.
    """
    if ssc not in SSC_PRESETS:
        raise EstimationError(f"ssc {ssc!r} is not a preset: use one of {', '.join(SSC_PRESETS)}")
    k = bread.shape[0]
    if kind == "OIM":
        return bread, VcovInfo(type="OIM", ssc="none", details={"multiplier": 1.0})
    if scores is None:
        raise EstimationError(f"{kind} covariance needs the per-row scores")
    n = scores.shape[0]
    if kind == "HC1":
        meat = scores.T @ scores
        mult = {"stata": n / (n - 1), "fixest": n / (n - k), "none": 1.0}[ssc]
        info = VcovInfo(type="HC1", ssc=ssc, details={"multiplier": mult})
    elif kind == "CRV1":
        codes, uniq = pd.factorize(pd.Series(clusters), sort=True)
        G = len(uniq)
        if G < 2:
            raise EstimationError(f"cannot cluster on {cluster_var!r}: the estimation sample has "
                                  f"{G} cluster")
        Sg = np.zeros((G, k))
        np.add.at(Sg, codes, scores)
        meat = Sg.T @ Sg
        gfac = G / (G - 1)
        nk = (n - 1) / (n - k)
        mult = {"stata": gfac, "fixest": gfac * nk, "none": 1.0}[ssc]
        info = VcovInfo(type="CRV1", ssc=ssc, cluster_vars=(cluster_var or "cluster",),
                        n_clusters=(G,), details={"multiplier": mult})
    else:
        raise EstimationError(f"unknown covariance kind {kind!r}")
    return mult * bread @ meat @ bread, info
