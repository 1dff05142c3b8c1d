"""Runners of the productivity propositions, P3 (stagnant expansion) and P7 (sources of
productivity growth), and the dynamic Olley-Pakes decomposition.

Productivity is estimated (:mod:`cluster_econ.hypotheses.productivity`), so its sampling error
enters every statistic built on it. Each statistic here is linear in productivity, ``tfp = y -
b_l l - b_k k``: a contrast ``theta(b) = theta_y - b_l theta_l - b_k theta_k``, where
``theta_x`` is the same statistic computed on the input ``x`` instead of ``tfp``. Its variance is
that of the regression at the estimated elasticities plus ``(theta_l, theta_k) V_b (theta_l,
theta_k)'`` (delta method, a two-step correction in the manner of Murphy and Topel that ignores
the covariance between the two steps), with ``V_b`` the elasticities' covariance
(``ProductivityModel.cov``; no correction when the method gives none, as the cost-share index).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pandas as pd

from cluster_econ.errors import EstimationError
from cluster_econ.hypotheses.data import AnalysisData
from cluster_econ.hypotheses.result import Check, Outcome
from cluster_econ.hypotheses.runners import (
    _check_outcome,
    _coef_check,
    _contrast_check,
    _dummies,
    _formula,
    _phases,
    _pretty,
    _rows,
    _vcov,
    fit,
    register_runner,
)
from cluster_econ.hypotheses.spec import Proposition

__all__ = ["COMPONENTS", "decompose", "run_p3", "run_p7", "with_productivity_error"]

ERROR_NOTE = ("standard errors of the productivity checks include the estimation of the production function "
              "(delta method with the elasticities' covariance)")


def _lincomb(res: Any, weights: dict[str, float]) -> float:
    return float(sum(w * res.params[t] for t, w in weights.items()))


def with_productivity_error(check: Check, data: AnalysisData, on_inputs: dict[str, Any],
                            weights: dict[str, float]) -> Check:
    """``check`` with the elasticities' sampling error added to its variance.

    ``on_inputs`` maps ``"l"`` and ``"k"`` to the same model fitted on the input (labour, capital)
    in place of productivity; ``weights`` is the linear combination of its terms the check tests
    (``{term: 1}`` for a coefficient, ``{a: 1, b: -1}`` for a contrast)."""
    prod = data.productivity
    cov = getattr(prod, "cov", None)
    if cov is None or not np.isfinite(check.std_error):
        return check
    g = np.array([_lincomb(on_inputs["l"], weights), _lincomb(on_inputs["k"], weights)])
    extra = float(g @ np.asarray(cov, dtype=float) @ g)
    return dataclasses.replace(check, std_error=float(np.sqrt(check.std_error ** 2 + max(extra, 0.0))))


# --------------------------------------------------------------------------------------------
# P3 stagnant expansion
# --------------------------------------------------------------------------------------------
@register_runner("P3")
def run_p3(spec: Proposition, data: AnalysisData) -> Outcome:
    """Productivity growth (``d_tfp``, the one-year change of an enterprise's productivity, so
    levels cancel) is higher in quality improvement than in quantity expansion (phase dummies with
    the proposition's fixed effects, by default the cluster's, so the contrast compares the two
    phases within each cluster; ``fixed_effects=("enterprise_id",)`` compares them within
    enterprises that lived through both, at a large cost in power) and positive in quality
    improvement (mean growth in that phase), growth in quantity expansion stays below
    ``flat_margin`` (default 0.02 a year; mean growth in that phase, cluster-robust), and the real
    price falls in quantity expansion (mean one-year change of the log real unit price
    ``d_log_real_price`` of the main product, or of the cluster's ``price_index`` when firms
    report no price)."""
    fy = data.firm_year
    out = Outcome()
    hi, lo = spec.contrast
    vcov = _vcov(spec)
    y = spec.outcome or "d_tfp"
    _check_outcome(fy, y, spec.id)
    d = fy[fy["phase"].notna() & fy[y].notna()].copy()
    phases = _phases(d)
    dums = _dummies(d, phases)
    ref = f"ph__{lo}"
    terms = [t for t in dums if t != ref] + list(spec.controls)
    res = fit(spec.estimator, _formula(y, terms, spec.fixed_effects), d, vcov)
    out.results.append(res)
    out.estimates += _rows(res, {p: f"ph__{p}" for p in phases if p != lo}, f"{res.model}: {y} relative to {lo}")
    lev = fit("feols", _formula(y, [*dums, "-1"]), d, vcov)
    out.results.append(lev)
    out.estimates += _rows(lev, {p: f"ph__{p}" for p in phases}, f"feols: mean {y}")
    # the same models on the inputs' growth, for the productivity estimate's sampling error
    on_inputs: dict[str, dict[str, Any]] = {"contrast": {}, "level": {}}
    adjust = y == "d_tfp" and {"d_log_l", "d_log_k"} <= set(d.columns)
    if adjust:
        for key, col in (("l", "d_log_l"), ("k", "d_log_k")):
            on_inputs["contrast"][key] = fit(spec.estimator, _formula(col, terms, spec.fixed_effects), d, vcov)
            on_inputs["level"][key] = fit("feols", _formula(col, [*dums, "-1"]), d, vcov)
    margin = float(spec.options.get("flat_margin", 0.02))
    checks = [
        (_coef_check(res, f"ph__{hi}", spec.expected_sign, f"productivity growth in {_pretty(hi)} minus {_pretty(lo)}",
                     f"{y}: {hi} - {lo}"), "contrast", f"ph__{hi}"),
        (_coef_check(lev, f"ph__{hi}", 1, f"productivity grows in {_pretty(hi)}", f"{y} in {hi} rises"),
         "level", f"ph__{hi}"),
        (_coef_check(lev, f"ph__{lo}", -1, f"productivity growth in {_pretty(lo)} below {margin:g}",
                     f"{y} in {lo} flat", null=margin), "level", f"ph__{lo}"),
    ]
    for chk, model, term in checks:
        out.checks.append(with_productivity_error(chk, data, on_inputs[model], {term: 1.0}) if adjust else chk)
    if adjust and data.productivity is not None and data.productivity.cov is not None:
        out.notes.append(ERROR_NOTE)
    # prices
    if "d_log_real_price" in fy.columns and fy["d_log_real_price"].notna().any():
        pd_ = fy[fy["phase"].notna() & fy["d_log_real_price"].notna()].copy()
        py = "d_log_real_price"
        pdum = _dummies(pd_, _phases(pd_))
        pres = fit("feols", _formula(py, [*pdum, "-1"]), pd_, vcov)
    else:
        cy = data.cluster_year.sort_values(["cluster_id", "year"]).copy()
        if "price_index" not in cy.columns or not cy["price_index"].notna().any():
            out.notes.append("no firm prices and no cluster price index: the price check is skipped")
            return out
        lp = np.log(pd.to_numeric(cy["price_index"], errors="coerce"))
        gap = cy.groupby("cluster_id")["year"].diff()
        cy["d_log_price_index"] = (lp - lp.groupby(cy["cluster_id"]).shift(1)).where(gap == 1)
        pd_ = cy[cy["phase"].notna() & cy["d_log_price_index"].notna()].copy()
        py = "d_log_price_index"
        pdum = _dummies(pd_, _phases(pd_))
        pres = fit("feols", _formula(py, [*pdum, "-1"]), pd_, vcov)
    out.results.append(pres)
    out.estimates += _rows(pres, {p: f"ph__{p}" for p in _phases(pd_)}, f"feols: mean {py}")
    out.checks.append(_coef_check(pres, f"ph__{lo}", -1, f"real price falls in {_pretty(lo)}",
                                  f"{py} in {lo}"))
    return out


# --------------------------------------------------------------------------------------------
# P7 productivity decomposition
# --------------------------------------------------------------------------------------------
COMPONENTS = ("total", "within", "between", "entry", "exit")


def decompose(fy: pd.DataFrame, value: str = "tfp", weight: str = "employment") -> pd.DataFrame:
    """Dynamic Olley-Pakes decomposition (Melitz and Polanec 2015) of the change in aggregate
    productivity ``Phi_t = sum_i s_it phi_it`` between consecutive years of each cluster.

    With survivors S (present in both years), entrants E (present only in ``t``) and exiters X
    (present only in ``t-1``), group aggregates ``Phi_G`` (share-weighted means within the group)
    and group shares ``s_G``::

        dPhi = [dmean_S] + [dcov_S] + s_E,t (Phi_E,t - Phi_S,t) + s_X,t-1 (Phi_S,t-1 - Phi_X,t-1)

    where ``mean_S`` is the unweighted mean of survivors and ``cov_S = Phi_S - mean_S`` the
    Olley-Pakes covariance term: within, between (reallocation), entry, exit. Presence means a
    row with productivity and a positive weight; an enterprise missing from the survey in a year
    (attrition, item non-response) counts as an exit or entry, which the caller should note.
    Computed with group sums over cluster-year cells (no loop over clusters and years).
    """
    d = fy[["cluster_id", "enterprise_id", "year", value, weight]].copy()
    d[weight] = pd.to_numeric(d[weight], errors="coerce")
    d = d[d[value].notna() & (d[weight] > 0)].reset_index(drop=True)
    cols = ["cluster_id", "year", "total", "within", "between", "entry", "exit", "n_survivors", "n_entrants",
            "n_exiters"]
    if d.empty:
        return pd.DataFrame(columns=cols)
    # group sums by (cluster, year) of rows whose enterprise is / is not present the year after
    # (as the earlier year of a pair) and the year before (as the later year), all on codes
    cl = pd.factorize(d["cluster_id"], sort=True)
    firm = pd.factorize(d["enterprise_id"])[0].astype(np.int64)
    year = d["year"].to_numpy(dtype=np.int64)
    y0 = int(year.min())
    span = int(year.max()) - y0 + 3
    cy = cl[0].astype(np.int64) * span + (year - y0 + 1)        # cluster-year cell, years padded
    fkey = firm * span + (year - y0 + 1)                          # enterprise-year key
    present = pd.Index(fkey)
    nxt = present.get_indexer(fkey + 1) >= 0
    prv = present.get_indexer(fkey - 1) >= 0
    v = d[value].to_numpy(dtype=float)
    w = d[weight].to_numpy(dtype=float)
    ncell = int(cy.max()) + 2
    wsum = np.bincount(cy, weights=w, minlength=ncell)
    sh = w / wsum[cy]

    def total(weights: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        return np.bincount(cy, weights=weights if mask is None else weights * mask, minlength=ncell)

    one = np.ones_like(v)
    agg = {
        "level": total(sh * v), "any": total(one),
        "s_next": total(sh, nxt), "sv_next": total(sh * v, nxt), "n_next": total(one, nxt), "v_next": total(v, nxt),
        "s_prev": total(sh, prv), "sv_prev": total(sh * v, prv), "n_prev": total(one, prv), "v_prev": total(v, prv),
        "s_exit": total(sh, ~nxt), "sv_exit": total(sh * v, ~nxt), "n_exit": total(one, ~nxt),
        "s_entry": total(sh, ~prv), "sv_entry": total(sh * v, ~prv), "n_entry": total(one, ~prv),
    }
    later = np.flatnonzero(agg["n_prev"] > 0)                      # cells with survivors from the year before
    earlier = later - 1
    later = later[agg["any"][earlier] > 0]
    earlier = later - 1
    with np.errstate(invalid="ignore", divide="ignore"):
        ps0 = agg["sv_next"][earlier] / agg["s_next"][earlier]
        ps1 = agg["sv_prev"][later] / agg["s_prev"][later]
        m0 = agg["v_next"][earlier] / agg["n_next"][earlier]
        m1 = agg["v_prev"][later] / agg["n_prev"][later]
        n_ent, n_ext = agg["n_entry"][later], agg["n_exit"][earlier]
        entry = np.where(n_ent > 0, agg["s_entry"][later] * (agg["sv_entry"][later] / agg["s_entry"][later] - ps1),
                         0.0)
        exit_ = np.where(n_ext > 0, agg["s_exit"][earlier] * (ps0 - agg["sv_exit"][earlier] / agg["s_exit"][earlier]),
                         0.0)
    out = pd.DataFrame({
        "cluster_id": np.asarray(cl[1])[later // span], "year": (later % span) + y0 - 1,
        "total": agg["level"][later] - agg["level"][earlier], "within": m1 - m0, "between": (ps1 - m1) - (ps0 - m0),
        "entry": entry, "exit": exit_, "n_survivors": agg["n_prev"][later].astype(int),
        "n_entrants": n_ent.astype(int), "n_exiters": n_ext.astype(int)})
    return out[cols].reset_index(drop=True)


@register_runner("P7")
def run_p7(spec: Proposition, data: AnalysisData) -> Outcome:
    """Aggregate (employment-weighted) productivity growth per cluster-year and its dynamic
    Olley-Pakes components, averaged by phase (feols of each component on phase dummies,
    cluster-robust); checks: total growth higher in quality improvement than in quantity
    expansion, and positive in quality improvement. Components are reported, not tested."""
    out = Outcome()
    value, weight = spec.options.get("value", "tfp"), spec.options.get("weight", "employment")
    fy = data.firm_year
    fy = fy[fy[value].notna()] if value in fy.columns else fy
    dec = decompose(fy, value, weight)
    if dec.empty:
        raise EstimationError(f"{spec.id}: no consecutive cluster-years with productivity to decompose")
    cy = data.cluster_year[["cluster_id", "year", "phase"]]
    dec = dec.merge(cy, on=["cluster_id", "year"], how="left")
    dec = dec[dec["phase"].notna()].copy()
    phases = _phases(dec)
    dums = _dummies(dec, phases)
    hi, lo = spec.contrast
    vcov = _vcov(spec)
    tested = spec.outcome or "total"
    # the same decomposition of the inputs (same enterprises, same weights), for the productivity
    # estimate's sampling error: aggregate productivity is linear in the elasticities
    on_inputs: dict[str, Any] = {}
    if value == "tfp" and getattr(data.productivity, "cov", None) is not None:
        for key, col in (("l", "log_l"), ("k", "log_k")):
            di = decompose(fy, col, weight).merge(dec[["cluster_id", "year"]], on=["cluster_id", "year"])
            di = di.merge(cy, on=["cluster_id", "year"], how="left")
            on_inputs[key] = fit("feols", _formula(tested, [*_dummies(di, phases), "-1"]), di, vcov)
    for comp in COMPONENTS:
        res = fit("feols", _formula(comp, [*dums, "-1"]), dec, vcov)
        out.results.append(res)
        out.estimates += [{**r, "term": f"{comp} (mean per year)"} for r in
                          _rows(res, {p: f"ph__{p}" for p in phases}, "feols: dynamic Olley-Pakes")]
        if comp == tested:
            for chk, w in (
                (_contrast_check(res, f"ph__{hi}", f"ph__{lo}", spec.expected_sign,
                                 f"aggregate productivity growth ({comp}) in {_pretty(hi)} minus {_pretty(lo)}",
                                 f"{comp}: {hi} - {lo}"), {f"ph__{hi}": 1.0, f"ph__{lo}": -1.0}),
                (_coef_check(res, f"ph__{hi}", spec.expected_sign,
                             f"aggregate productivity ({comp}) rises in {_pretty(hi)}", f"{comp} in {hi} rises"),
                 {f"ph__{hi}": 1.0}),
            ):
                out.checks.append(with_productivity_error(chk, data, on_inputs, w) if on_inputs else chk)
    if on_inputs:
        out.notes.append(ERROR_NOTE)
    out.notes.append("entry and exit in the decomposition count enterprises appearing in or leaving the "
                     "survey, including attrition and item non-response")
    out.extra["decomposition"] = dec
    return out
