"""``prodest``: the steps in order (sample, first stage, second stage, bootstrap, result)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from cluster_econ._version import __version__
from cluster_econ.errors import EstimationError
from cluster_econ.estimate.production.bootstrap import BootstrapOutcome, block_bootstrap
from cluster_econ.estimate.production.fits import Fit, Options, fit_method
from cluster_econ.estimate.production.markov import RootScreens, roots_frame
from cluster_econ.estimate.production.sample import PANEL_COLUMNS, Sample, Spec, as_tuple, panel_frame, prepare_sample
from cluster_econ.estimate.result import Audit, Result, VcovInfo, data_hash

__all__ = ["LABELS", "METHODS", "prodest"]

ENGINE = f"cluster_econ {__version__}"
METHODS = ("acf", "lp", "op", "wrdg", "gnr", "dynamic")
LABELS = {"acf": "Ackerberg-Caves-Frazer", "lp": "Levinsohn-Petrin", "op": "Olley-Pakes",
          "wrdg": "Wooldridge one-step GMM", "gnr": "Gandhi-Navarro-Rivers (gross output)",
          "dynamic": "dynamic panel (common-factor GMM)"}


def _panel_defaults(method: str) -> dict[str, str | None]:
    out: dict[str, str | None] = {"output": PANEL_COLUMNS["output"], "free": PANEL_COLUMNS["free"],
                                  "state": PANEL_COLUMNS["state"], "proxy": PANEL_COLUMNS["proxy_materials"],
                                  "share": None}
    if method == "op":
        out["proxy"] = PANEL_COLUMNS["proxy_investment"]
    elif method == "gnr":
        out["output"] = PANEL_COLUMNS["gross_output"]
        out["share"] = PANEL_COLUMNS["share"]
    elif method == "dynamic":
        out["proxy"] = None
    return out


def _check_int(name: str, value: Any, low: int) -> int:
    if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < low:
        raise EstimationError(f"prodest: {name} must be an integer of at least {low}, not {value!r}")
    return int(value)


def _formula(method: str, spec: Spec, fit: Fit, o: Options) -> str:
    f, s = " + ".join(spec.free), " + ".join(spec.state)
    sp = ", ".join([*spec.state, str(spec.proxy)])
    lom = "AR(1)" if o.lom_degree == 1 else f"polynomial of degree {o.lom_degree}"
    if spec.lom_controls:
        lom += " + " + " + ".join(f"L.{c}" for c in spec.lom_controls)
    ctrl = f" + {' + '.join(spec.controls)}" if spec.controls else ""
    inst = ", ".join(fit.instruments)
    if method == "acf":
        stage = f"first stage {spec.output} ~ poly{o.poly_degree}({', '.join([*spec.inputs, str(spec.proxy)])}){ctrl}"
        second = f"E[xi * ({inst})] = 0"
    elif method in ("lp", "op"):
        inverted = f"log {spec.proxy}" if method == "op" else spec.proxy
        stage = (f"first stage {spec.output} ~ {f} + poly{o.poly_degree}("
                 f"{', '.join([*spec.state, str(inverted)])}){ctrl}")
        second = "NLLS on y - b_f'f - b_s's - g(omega_t-1" + (", P(survival))" if spec.exit else ")")
    elif method == "wrdg":
        stage = (f"{spec.output} ~ {f} + {s}{ctrl} + poly{o.poly_degree}({sp}) "
                 f"and ~ ... + poly{o.poly_degree * o.lom_degree}(L.({sp}))")
        second = f"stacked two-step GMM, instruments {inst}"
    elif method == "gnr":
        stage = (f"share regression {spec.share} ~ log poly{o.poly_degree}("
                 f"{', '.join([*spec.inputs, str(spec.proxy)])}); integral over {spec.proxy}")
        second = f"E[xi * ({inst})] = 0"
    else:
        stage = "no first stage (output itself; its lag instrumented)"
        second = f"E[u * ({inst})] = 0, u = xi + e_t - rho e_t-1"
    return (f"{LABELS[method]}: {spec.output} ~ {f} (free) + {s} (state)"
            + (f"; proxy {spec.proxy}" if spec.proxy and method not in ("dynamic",) else "")
            + f"; {stage}; law of motion {lom}; {second}")


def prodest(
    data: Any,
    *,
    output: str | None = None,
    free: str | Sequence[str] | None = None,
    state: str | Sequence[str] | None = None,
    proxy: str | None = None,
    method: str = "acf",
    proxy_type: str | None = None,
    entity: str = "enterprise_id",
    time: str = "year",
    controls: Sequence[str] = (),
    poly_degree: int | None = None,
    lom_degree: int = 1,
    lom_controls: Sequence[str] = (),
    lag_instruments: Sequence[str] = (),
    exit: str | None = None,
    share: str | None = None,
    screens: RootScreens | Mapping[str, Any] | None = None,
    bootstrap: int = 200,
    seed: int = 0,
    vcov_cluster: str | None = None,
) -> Result:
    """Estimate a Cobb-Douglas production function with control functions or dynamic-panel GMM.

    The models, the algorithms, and which design breaks which method are stated in the
    docstring of :mod:`cluster_econ.estimate.production`.

    Parameters
    ----------
    data : Panel or DataFrame
        A :class:`~cluster_econ.panel.Panel` (the frame is built by :func:`panel_frame`; the
        column arguments then default to ``log_value_added``, ``log_employment``,
        ``log_capital`` and ``log_materials``; OP: ``investment``; GNR: ``log_gross_output``
        with ``log_materials`` as the flexible input and ``log_materials_share``) or a
        DataFrame holding the named columns.
    output, free, state : str (free and state may be sequences)
        Log output (value added; gross output for GNR), log free inputs (chosen with or after
        productivity is known: labour), log state inputs (chosen a period ahead: capital).
    proxy : str
        ACF, LP, WRDG: log materials (or any log input strictly increasing in productivity).
        OP: investment **in levels**; rows with zero or negative investment are not used to
        invert it (counted). GNR: the log flexible input. Not used by ``"dynamic"``.
    method : {"acf", "lp", "op", "wrdg", "gnr", "dynamic"}
    proxy_type : {"materials", "investment"}, optional
        What the proxy is: ``"investment"`` (in levels; log taken inside, zero or negative
        rows not inverted) for OP (the default there) and optionally WRDG; ``"materials"``
        (already in logs) otherwise.
    entity, time : str
        Panel identifiers; ``time`` must be integer years (lags follow calendar years).
    controls : sequence of str
        Numeric columns that shift output (first stage of the proxy methods; both equations of
        WRDG; ``t`` and ``t-1`` values in the law of motion of ``"dynamic"``).
    poly_degree : int, optional
        Degree of the complete polynomial of the control function (default 3), or of GNR's
        share regression (default 2).
    lom_degree : int
        Degree of the law of motion of productivity in ``omega_t-1`` (1: AR(1)).
    lom_controls : sequence of str
        Numeric columns whose value in ``t-1`` shifts the law of motion linearly (a controlled
        Markov process, for example last year's innovation), or whose dummies give each
        country or cluster its own productivity level.
    lag_instruments : sequence of str
        Columns whose ``t-1`` values are added to the instruments (ACF, GNR, WRDG; and ``t-2``
        for ``"dynamic"``): shifters of input demand that are not productivity (a lagged output
        or wage price) separate the true root from spurious ones.
    exit : str, optional
        OP only: a 0/1 column that is 1 in the year an entity exits; turns on the Olley-Pakes
        selection correction (survival probability in the law of motion).
    share : str, optional
        GNR only: the log revenue share of the flexible input, ``log(p_m M / p Y)``.
    screens : RootScreens or mapping, optional
        Ranges a root must fall in to be an estimate (ACF, GNR, dynamic); see
        :class:`~cluster_econ.estimate.production.RootScreens`.
    bootstrap : int
        Block-bootstrap draws for the covariance (0: no standard errors, covariance NaN). WRDG
        uses its analytic cluster-robust GMM covariance instead.
    seed : int
        Seed of the bootstrap's ``numpy.random.Generator``.
    vcov_cluster : str, optional
        Resample these groups (which must contain whole entities) instead of entities.

    Returns
    -------
    Result
        ``params`` indexed by the input names (GNR: also the flexible input, its mean output
        elasticity). ``extra``: ``status`` ("accepted"), ``omega`` (log productivity per input
        row, NaN where it cannot be evaluated; its level includes the constant; for
        ``"dynamic"`` it equals ``tfp``), ``tfp`` (``y - b'x``, the transitory shock included),
        ``first_stage``, ``law_of_motion``, ``roots`` (every root found, with its fit, economics
        and verdict), ``instruments``, ``bootstrap_draws``. ``predict(frame)`` gives ``y - b'x``.

    Raises
    ------
    RootSelectionError
        (an :class:`~cluster_econ.errors.EstimationError`) when no root, or more than one, fits
        the moments and passes the screens: no point estimate is returned, and the error's
        ``roots`` lists what was found.
    """
    from cluster_econ.panel.container import Panel

    if method not in METHODS:
        raise EstimationError(f"prodest: method must be one of {', '.join(METHODS)}, not {method!r}")
    if exit is not None and method != "op":
        raise EstimationError("prodest: the exit (selection) correction is Olley-Pakes's (method='op'), "
                              f"not {method!r}")
    if share is not None and method != "gnr":
        raise EstimationError("prodest: share= is used by method='gnr' only")
    if proxy_type is None:
        proxy_type = "investment" if method == "op" else "materials"
    if proxy_type not in ("materials", "investment") or (proxy_type == "investment" and method not in ("op", "wrdg")):
        raise EstimationError(f"prodest: proxy_type must be 'materials' or 'investment' (investment for 'op' and "
                              f"'wrdg' only), not {proxy_type!r} with method={method!r}")
    if lag_instruments and method in ("op", "lp"):
        raise EstimationError(f"prodest: lag_instruments are not used by method={method!r}")
    degree = _check_int("poly_degree", poly_degree if poly_degree is not None else (2 if method == "gnr" else 3),
                        0 if method == "gnr" else 1)
    lom = _check_int("lom_degree", lom_degree, 1)
    if not isinstance(bootstrap, int | np.integer) or bootstrap < 0 or bootstrap == 1:
        raise EstimationError(f"prodest: bootstrap must be 0 or an integer of at least 2, not {bootstrap!r}")
    if screens is None:
        screens = RootScreens()
    elif isinstance(screens, Mapping):
        screens = RootScreens(**screens)
    notes: list[str] = []
    if isinstance(data, Panel):
        frame, built = panel_frame(data, "op" if proxy_type == "investment" else method)
        notes.extend(built)
        dflt = _panel_defaults(method)
        output = output or dflt["output"]
        free = dflt["free"] if free is None else free
        state = dflt["state"] if state is None else state
        proxy = proxy or (PANEL_COLUMNS["proxy_investment"] if proxy_type == "investment" else dflt["proxy"])
        share = share or dflt["share"]
    elif isinstance(data, pd.DataFrame):
        frame = data
    else:
        raise EstimationError(f"prodest: data must be a Panel or a pandas DataFrame, not {type(data).__name__}")
    if not output:
        raise EstimationError("prodest: name the output column (output=...)")
    if not as_tuple(free) and not as_tuple(state):
        raise EstimationError("prodest: name the free and state input columns (free=..., state=...)")
    if method != "dynamic" and not proxy:
        raise EstimationError(f"prodest ({method}): name the proxy column (proxy=...)")
    if method == "gnr" and not share:
        raise EstimationError("prodest (gnr): name the flexible input's log revenue share (share=...)")
    assert output is not None
    spec = Spec(method=method, output=output, free=as_tuple(free), state=as_tuple(state),
                proxy=proxy if method != "dynamic" else None, controls=as_tuple(controls),
                lom_controls=as_tuple(lom_controls), lag_instruments=as_tuple(lag_instruments), share=share,
                exit=exit, proxy_type=proxy_type, entity=entity, time=time, vcov_cluster=vcov_cluster)
    # 1. sample
    sample = prepare_sample(frame, spec, notes)
    # 2-3. first and second stage
    opts = Options(poly_degree=degree, lom_degree=lom, screens=screens)
    try:
        fit = fit_method(method, sample, opts)
    except np.linalg.LinAlgError as err:
        raise EstimationError(f"prodest ({method}): estimation failed: {err}") from None
    # 4. bootstrap
    boot = None
    if bootstrap and fit.redraw is not None:
        boot = block_bootstrap(sample, int(bootstrap), int(seed), fit.redraw)
        if boot.draws.shape[0] < 2:
            raise EstimationError(f"prodest: only {boot.draws.shape[0]} of {bootstrap} bootstrap draws could be "
                                  f"estimated on the accepted root ({boot.failed} failed, {boot.switched} fell on "
                                  "another root)")
    # 5. result
    return _result(method, sample, fit, opts, boot, int(bootstrap), int(seed))


def _result(method: str, s: Sample, fit: Fit, o: Options, boot: BootstrapOutcome | None, B: int, seed: int) -> Result:
    spec = s.spec
    from cluster_econ.estimate.production.sample import count_lag_losses

    reason = None
    if method == "op":
        lag_zero = np.zeros(s.n, dtype=bool)
        has = s.lag1 >= 0
        lag_zero[has] = ~s.proxy_ok[s.lag1[has]]
        if lag_zero.sum():
            s.dropped["investment zero or negative in t-1 (no proxy inversion)"] = int(lag_zero.sum())
        used = fit.used | lag_zero
        if spec.exit:
            no_p = has & ~lag_zero & ~fit.used
            if no_p.sum():
                s.dropped["no survival probability (t-1 status unknown)"] = int(no_p.sum())
            used = used | no_p
        count_lag_losses(s, used)
    elif method == "wrdg" and (~s.proxy_ok).any():
        count_lag_losses(s, fit.used, "proxy not invertible in t or t-1")
    else:
        count_lag_losses(s, fit.used, reason)
    notes = [*s.notes, *fit.notes]
    if fit.chosen is None:  # LP, OP, WRDG: no root choice, but say when the estimate is implausible
        rho = float(fit.stats.get("rho", float("nan")))
        why = o.screens.economics(fit.coef[: len(spec.inputs)], rho if np.isfinite(rho) else 0.5)
        if why:
            notes.append("the estimate fails the plausibility screens a GMM root must pass (" + "; ".join(why)
                         + "); see the module docstring for the designs that break this method")
    names = fit.names
    k = len(names)
    details: dict[str, Any]
    if fit.cov is not None:
        cov = fit.cov
        vinfo = VcovInfo(type="GMM-clustered", ssc="none", cluster_vars=(spec.entity,),
                         n_clusters=(s.n_entities,), df_resid=None,
                         details={"weighting": "two-step, inverse of the entity-clustered moment covariance "
                                               "at the one-step (2SLS) residuals",
                                  "convention": "linearmodels IVGMM, weight_type and cov_type 'clustered', "
                                                "debiased=False"})
        draws = np.empty((0, k))
        if B:
            notes.append("wrdg: analytic cluster-robust GMM covariance; bootstrap= not used")
    else:
        draws = boot.draws if boot is not None else np.empty((0, k))
        if boot is not None:
            cov = np.atleast_2d(np.cov(draws, rowvar=False, ddof=1))
            n_groups = boot.n_groups
            if boot.switched:
                ex = "; ".join("(" + ", ".join(f"{v:.3f}" for v in e) + ")" for e in boot.switched_examples)
                notes.append(f"bootstrap: {boot.switched} of {B} draws fell on another root (e.g. {ex}) and are left "
                             "out of the covariance"
                             + ("; with more than 10% of draws elsewhere the root is fragile: treat the estimate "
                                "with caution" if boot.switched > 0.1 * B else ""))
        else:
            cov = np.full((k, k), np.nan)
            n_groups = int(s.group.max() + 1) if s.group is not None else s.n_entities
            notes.append("bootstrap=0: no standard errors")
        details = {"B": B, "seed": seed, "failed_draws": boot.failed if boot else 0,
                   "root_switches": boot.switched if boot else 0,
                   "scheme": f"block bootstrap over {spec.vcov_cluster or spec.entity} (whole histories resampled "
                             "with replacement as frequency weights, both stages re-estimated from the estimate)"}
        vinfo = VcovInfo(type="bootstrap", ssc="none", cluster_vars=(spec.vcov_cluster or spec.entity,),
                         n_clusters=(int(n_groups),), df_resid=None, details=details)
    coef = fit.coef
    X_all = s.X

    def predictor(res: Result, new: pd.DataFrame | None = None) -> pd.Series:
        if new is None:
            return pd.Series(res.extra["tfp"], name="tfp")
        inputs = list(spec.inputs)
        lacking = [c for c in [spec.output, *inputs] if c not in new.columns]
        if lacking:
            raise EstimationError(f"prodest predict: columns {', '.join(lacking)} not in the data")
        val = pd.to_numeric(new[spec.output]).astype(float) - sum(
            float(res.params[c]) * pd.to_numeric(new[c]).astype(float) for c in inputs)
        return pd.Series(val.to_numpy(), index=new.index, name="tfp")

    index = pd.Index(names)
    stats = dict(fit.stats)
    stats["returns_to_scale"] = float(np.sum(coef))
    if boot is not None:
        stats["bootstrap_root_switches"] = float(boot.switched)
    first = fit.first.target if fit.first is not None else np.full(s.n, np.nan)
    extra = {
        "status": "accepted",
        "method": method,
        "omega": s.to_input_order(fit.omega, "omega"),
        "tfp": s.to_input_order(fit.tfp, "tfp"),
        "first_stage": s.to_input_order(first, "phi"),
        "law_of_motion": pd.Series(fit.gamma, index=fit.lom_names[: len(fit.gamma)]),
        "bootstrap_draws": pd.DataFrame(draws, columns=names),
        "roots": roots_frame(fit.roots, list(spec.inputs)) if fit.roots else pd.DataFrame(),
        "instruments": tuple(fit.instruments),
        **fit.extra,
    }
    if method == "gnr" and "flexible_elasticity" in extra:
        extra["flexible_elasticity"] = s.to_input_order(extra["flexible_elasticity"], "elasticity")
    if "survival_probability" in extra and extra["survival_probability"] is not None:
        extra["survival_probability"] = s.to_input_order(extra["survival_probability"], "survival_probability")
    nobs = int(fit.used.sum())
    return Result(
        params=pd.Series(coef, index=index),
        cov=pd.DataFrame(cov, index=index, columns=index),
        nobs=nobs,
        vcov_info=vinfo,
        formula=_formula(method, spec, fit, o),
        model=f"prodest-{method}",
        engine=ENGINE,
        audit=Audit(n_input=s.n_input, dropped=dict(s.dropped), notes=tuple(notes)),
        data_hash=data_hash(s.y, X_all, s.P, s.C, s.L, s.IV, s.lag1),
        groups={spec.entity: s.n_entities},
        stats=stats,
        extra=extra,
        predictor=predictor,
    )
