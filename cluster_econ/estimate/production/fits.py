"""One fit per method: the first and second stages on a :class:`Sample`, the per-row
productivity, and a function that re-fits a bootstrap draw (frequency weights) from the estimate.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cluster_econ.errors import EstimationError
from cluster_econ.estimate.production.designs import dynamic_design, proxy_design
from cluster_econ.estimate.production.first_stage import FirstStage, proxy_first_stage, share_first_stage
from cluster_econ.estimate.production.markov import (
    MarkovDesign,
    MarkovGMM,
    RootReport,
    RootScreens,
    chi2_sf,
    choose_root,
    on_accepted_root,
    search_roots,
)
from cluster_econ.estimate.production.olley_pakes import op_lp_second_stage, survival_probability
from cluster_econ.estimate.production.polynomial import wls
from cluster_econ.estimate.production.sample import Sample
from cluster_econ.estimate.production.wooldridge import stacked_system, wooldridge_gmm, wooldridge_omega

__all__ = ["Fit", "Options", "fit_method"]


@dataclass(frozen=True)
class Options:
    poly_degree: int
    lom_degree: int
    screens: RootScreens


@dataclass
class Fit:
    """A point estimate and what the result and the bootstrap need."""

    coef: np.ndarray
    names: list[str]
    omega: np.ndarray
    tfp: np.ndarray
    used: np.ndarray
    gamma: np.ndarray
    lom_names: list[str]
    stats: dict[str, float]
    first: FirstStage | None = None
    chosen: RootReport | None = None
    roots: list[RootReport] = field(default_factory=list)
    instruments: list[str] = field(default_factory=list)
    cov: np.ndarray | None = None
    redraw: Callable[[np.ndarray], tuple[np.ndarray, bool]] | None = None
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


def ols_inputs(s: Sample, w: np.ndarray | None = None) -> np.ndarray:
    """OLS elasticities of output on the inputs (with a constant and the controls)."""
    X = np.column_stack([np.ones(s.n), s.X, s.C])
    return wls(X, s.y, w)[1: 1 + s.X.shape[1]]


def _starts_for_acf(s: Sample, o: Options) -> list[np.ndarray]:
    """OLS, LP and Wooldridge estimates as starting points (those that can be computed)."""
    starts = [ols_inputs(s)]
    with contextlib.suppress(EstimationError, np.linalg.LinAlgError, ValueError):
        starts.append(op_lp_second_stage(s, proxy_first_stage("lp", s, o.poly_degree), 1, [starts[0]]).coef)
    with contextlib.suppress(EstimationError, np.linalg.LinAlgError, ValueError):
        starts.append(wooldridge_gmm(stacked_system(s, o.poly_degree, 1)).coef[: s.X.shape[1]])
    return starts


def _markov_fit(label: str, s: Sample, d: MarkovDesign, o: Options, starts: list[np.ndarray],
                other: float = 0.0) -> tuple[MarkovGMM, RootReport, list[RootReport]]:
    eng = MarkovGMM(d)
    cands = search_roots(eng, starts)
    chosen, reports = choose_root(eng, cands, o.screens, list(s.spec.inputs), label, other)
    return eng, chosen, reports


def _lom_names(d: MarkovDesign) -> list[str]:
    return ["const", "omega_lag", *(f"omega_lag^{p}" for p in range(2, d.degree + 1)), *d.hx_names]


def _markov_stats(eng: MarkovGMM, chosen: RootReport, reports: list[RootReport]) -> dict[str, float]:
    return {"objective": chosen.objective, "j_stat": chosen.j_stat, "j_df": float(chosen.j_df),
            "j_pvalue": chosen.j_pvalue, "rho": chosen.rho, "converged": float(chosen.converged),
            "roots_found": float(len(reports)), "roots_admissible": float(sum(r.admissible for r in reports))}


def _fit_acf(s: Sample, o: Options) -> Fit:
    fs = proxy_first_stage("acf", s, o.poly_degree)
    d = proxy_design(s, fs.target, o.lom_degree)
    eng, chosen, reports = _markov_fit("acf", s, d, o, _starts_for_acf(s, o))
    b = chosen.b
    gamma = eng.evaluate(b)["gamma"]
    used = np.zeros(s.n, dtype=bool)
    used[d.rows] = True

    def redraw(w: np.ndarray) -> tuple[np.ndarray, bool]:
        fw = proxy_first_stage("acf", s, o.poly_degree, w)
        dw = proxy_design(s, fw.target, o.lom_degree)
        ew = MarkovGMM(dw, w[dw.rows])
        bw, ok = ew.solve(b)
        return bw, ok and on_accepted_root(ew, bw, chosen, reports, o.screens)

    return Fit(coef=b, names=list(s.spec.inputs), omega=fs.target - s.X @ b, tfp=fs.y_net - s.X @ b, used=used,
               gamma=gamma, lom_names=_lom_names(d), stats={**_markov_stats(eng, chosen, reports),
                                                            "n_first_stage": float(fs.n), "first_stage_r2": fs.r2},
               first=fs, chosen=chosen, roots=reports, instruments=list(d.z_names), redraw=redraw)


def _fit_gnr(s: Sample, o: Options) -> Fit:
    fs = share_first_stage(s, o.poly_degree)
    assert fs.flex_elasticity is not None and fs.flex_integral is not None
    d = proxy_design(s, fs.target, o.lom_degree)
    flex = float(np.mean(fs.flex_elasticity))
    X = np.column_stack([np.ones(s.n), s.X])
    start = wls(X, fs.target)[1:]
    eng, chosen, reports = _markov_fit("gnr", s, d, o, [start], flex)
    b = chosen.b
    used = np.zeros(s.n, dtype=bool)
    used[d.rows] = True

    def redraw(w: np.ndarray) -> tuple[np.ndarray, bool]:
        fw = share_first_stage(s, o.poly_degree, w)
        assert fw.flex_elasticity is not None
        fl = float(np.average(fw.flex_elasticity, weights=w))
        dw = proxy_design(s, fw.target, o.lom_degree)
        ew = MarkovGMM(dw, w[dw.rows])
        bw, ok = ew.solve(b)
        return np.r_[bw, fl], ok and on_accepted_root(ew, bw, chosen, reports, o.screens, fl)

    assert s.spec.proxy is not None
    return Fit(coef=np.r_[b, flex], names=[*s.spec.inputs, s.spec.proxy], omega=fs.target - s.X @ b,
               tfp=s.y - fs.flex_integral - s.X @ b, used=used, gamma=eng.evaluate(b)["gamma"],
               lom_names=_lom_names(d),
               stats={**_markov_stats(eng, chosen, reports), "n_first_stage": float(fs.n),
                      "share_regression_r2": fs.r2,
                      "flexible_elasticity_sd": float(np.std(fs.flex_elasticity))},
               first=fs, chosen=chosen, roots=reports, instruments=list(d.z_names), redraw=redraw,
               extra={"flexible_elasticity": fs.flex_elasticity})


def _fit_dynamic(s: Sample, o: Options) -> Fit:
    if o.lom_degree != 1:
        raise EstimationError("prodest (dynamic): the law of motion must be linear (lom_degree=1): with output "
                              "in place of a proxy, a polynomial in last year's output would carry its error")
    d = dynamic_design(s)
    eng, chosen, reports = _markov_fit("dynamic", s, d, o, [ols_inputs(s)])
    b = chosen.b
    used = np.zeros(s.n, dtype=bool)
    used[d.rows] = True

    def redraw(w: np.ndarray) -> tuple[np.ndarray, bool]:
        ew = MarkovGMM(d, w[d.rows])
        bw, ok = ew.solve(b)
        return bw, ok and on_accepted_root(ew, bw, chosen, reports, o.screens)

    tfp = s.y - s.X @ b
    notes = [f"{d.extra['rows_with_t2']} of {d.rows.size} rows have t-2 instruments"]
    return Fit(coef=b, names=list(s.spec.inputs), omega=tfp, tfp=tfp, used=used, gamma=eng.evaluate(b)["gamma"],
               lom_names=_lom_names(d), stats=_markov_stats(eng, chosen, reports), chosen=chosen, roots=reports,
               instruments=list(d.z_names), redraw=redraw, notes=notes)


def _fit_op_lp(method: str, s: Sample, o: Options) -> Fit:
    fs = proxy_first_stage(method, s, o.poly_degree)
    assert fs.b_free is not None
    notes: list[str] = []
    surv = None
    if s.spec.exit:
        surv, n_known, n_unknown = survival_probability(s)
        notes.append(f"exit correction: survival probit on {n_known} rows with a known next-year status; "
                     f"{n_unknown} rows left out (attrition without a recorded exit, or the panel's last year)")
    ols = ols_inputs(s)
    start = np.r_[fs.b_free, ols[s.F.shape[1]:]]
    starts = [start, *(start * f for f in (0.5, 0.75, 1.25)), np.full_like(start, 0.3)]
    nl = op_lp_second_stage(s, fs, o.lom_degree, starts, survival=surv)
    coef = nl.coef
    lom_names = (["const", "omega_lag", *(f"omega_lag^{p}" for p in range(2, o.lom_degree + 1))] if surv is None
                 else ["const", *(f"poly(omega_lag, P)_{j}" for j in range(nl.gamma.size - 1 - s.L.shape[1]))])
    lom_names += [f"L.{c}" for c in s.spec.lom_controls]

    def redraw(w: np.ndarray) -> tuple[np.ndarray, bool]:
        fw = proxy_first_stage(method, s, o.poly_degree, w)
        sw = survival_probability(s, w)[0] if s.spec.exit else None
        return op_lp_second_stage(s, fw, o.lom_degree, [coef], w, sw).coef, True

    stats = {"objective": nl.objective, "converged": float(nl.converged), "n_first_stage": float(fs.n),
             "first_stage_r2": fs.r2}
    if surv is None and o.lom_degree == 1:
        stats["rho"] = nl.rho
    if method == "op":
        notes.append(f"{int((~s.proxy_ok).sum())} rows with zero or negative investment left out of the "
                     "first stage (proxy not invertible)")
    return Fit(coef=coef, names=list(s.spec.inputs), omega=fs.target - s.X @ coef, tfp=fs.y_net - s.X @ coef,
               used=nl.rows, gamma=nl.gamma, lom_names=lom_names, stats=stats, first=fs, redraw=redraw, notes=notes,
               extra={"survival_probability": surv})


def _fit_wrdg(s: Sample, o: Options) -> Fit:
    sysm = stacked_system(s, o.poly_degree, o.lom_degree)
    fit = wooldridge_gmm(sysm)
    p = s.X.shape[1]
    coef = fit.coef[:p]
    omega = wooldridge_omega(s, fit, o.poly_degree)
    ctrl = s.C @ fit.coef[p:] if s.C.shape[1] else 0.0
    used = np.zeros(s.n, dtype=bool)
    used[sysm.rows] = True
    stats = {"j_stat": fit.j_stat, "j_df": float(fit.j_df),
             "j_pvalue": chi2_sf(fit.j_stat, fit.j_df) if fit.j_df > 0 else float("nan")}
    return Fit(coef=coef, names=list(s.spec.inputs), omega=omega, tfp=s.y - ctrl - s.X @ coef, used=used,
               gamma=fit.theta[p + s.C.shape[1]:], lom_names=sysm.x_names[p + s.C.shape[1]:], stats=stats,
               instruments=sysm.z_names, cov=fit.cov[:p, :p], extra={"controls": fit.coef[p:]})


def fit_method(method: str, s: Sample, o: Options) -> Fit:
    """Dispatch to the method's fit."""
    if method == "acf":
        return _fit_acf(s, o)
    if method == "gnr":
        return _fit_gnr(s, o)
    if method == "dynamic":
        return _fit_dynamic(s, o)
    if method in ("op", "lp"):
        return _fit_op_lp(method, s, o)
    if method == "wrdg":
        return _fit_wrdg(s, o)
    raise EstimationError(f"prodest: unknown method {method!r}")
