"""Runners: the code that turns a :class:`~cluster_econ.hypotheses.spec.Proposition` and the
analysis data into estimates and verdict checks.

Every runner has the signature ``runner(spec, data) -> Outcome``. The models are fitted by
:mod:`cluster_econ.estimate` (feols, logit/probit/cloglog/lpm, panel, cox, iv, wild_bootstrap);
what is written here is the sample selection, the design (phase interactions) and the contrasts,
because they are specific to the propositions. Contrasts of coefficients of one model use its
covariance matrix: ``se(b_a - b_b) = sqrt(V_aa + V_bb - 2 V_ab)``, with the model's reference
distribution (t with ``df_resid`` when the model has one; t with ``G - 1`` degrees of freedom for
clustered maximum-likelihood models such as logit, cloglog and Cox, which otherwise report normal
inference; else normal).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from cluster_econ.errors import EstimationError
from cluster_econ.hypotheses.data import ORDERED, AnalysisData
from cluster_econ.hypotheses.result import Check, Outcome
from cluster_econ.hypotheses.spec import Proposition

__all__ = ["RUNNERS", "fit", "register_runner"]

RUNNERS: dict[str, Callable[[Proposition, AnalysisData], Outcome]] = {}
PANEL_MODELS = ("re", "mundlak", "pooled", "between", "fe", "fd")
BINARY_MODELS = ("logit", "probit", "cloglog")


def register_runner(name: str) -> Callable[[Callable[..., Outcome]], Callable[..., Outcome]]:
    """Decorator: register a runner under a name (propositions refer to it by ``runner=``)."""
    def deco(fn: Callable[..., Outcome]) -> Callable[..., Outcome]:
        RUNNERS[name] = fn
        return fn
    return deco


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------
def _vcov(spec: Proposition) -> Any:
    return dict(spec.vcov) if isinstance(spec.vcov, Mapping) else spec.vcov


def fit(estimator: str, formula: str, df: pd.DataFrame, vcov: Any, **kw: Any) -> Any:
    """Fit ``formula`` with a named estimator of :mod:`cluster_econ.estimate`."""
    from cluster_econ import estimate as est

    if estimator in ("feols", "lpm", "ols"):
        # the linear probability model is OLS: feols absorbs the fixed effects instead of dummies
        return est.feols(formula, df, vcov=vcov)
    if estimator in BINARY_MODELS:
        return getattr(est, estimator)(formula, df, vcov=vcov, separation="drop")
    if estimator in PANEL_MODELS:
        return est.panel(formula, df, model=estimator, entity=kw.get("entity", "enterprise_id"),
                         time=kw.get("time", "year"), vcov=vcov)
    raise EstimationError(f"estimator {estimator!r} is not available here; use feols, lpm, logit, probit, "
                          f"cloglog or one of the panel models {', '.join(PANEL_MODELS)}")


def _phases(df: pd.DataFrame, col: str = "phase") -> list[str]:
    present = set(df[col].dropna().unique())
    order = [*ORDERED, "stagnation"]
    return [p for p in order if p in present] + sorted(present - set(order))


def _dummies(df: pd.DataFrame, phases: Sequence[str], col: str = "phase", prefix: str = "ph") -> list[str]:
    names = []
    for p in phases:
        name = f"{prefix}__{p}"
        df[name] = (df[col] == p).astype(float).where(df[col].notna())
        names.append(name)
    return names


def _interact(df: pd.DataFrame, x: str, phases: Sequence[str], col: str = "phase") -> dict[str, str]:
    out = {}
    for p in phases:
        name = f"{x}__{p}"
        df[name] = df[x] * (df[col] == p).astype(float).where(df[col].notna())
        out[p] = name
    return out


def _df_of(res: Any) -> float | None:
    """Reference degrees of freedom of a check on ``res``: the model's own, else ``G - 1`` for a
    clustered covariance (t with G - 1 degrees of freedom, the usual few-cluster convention for
    models that report normal inference), else ``None`` (normal)."""
    info = res.vcov_info
    if info.df_resid is not None:
        return float(info.df_resid)
    if info.n_clusters:
        return float(max(1, min(info.n_clusters) - 1))
    return None


def _rows(res: Any, terms: Mapping[str, str], model: str) -> list[dict[str, Any]]:
    """Estimate rows for ``{phase: term}`` of a Result."""
    tidy = res.tidy().set_index("term")
    rows = []
    for phase, term in terms.items():
        if term in tidy.index:
            r = tidy.loc[term]
            rows.append({"phase": phase, "term": term, "estimate": float(r["estimate"]),
                         "std_error": float(r["std_error"]), "p_value": float(r["p_value"]),
                         "n": int(res.nobs), "model": model})
    return rows


def _coef_check(res: Any, term: str, sign: int, desc: str, name: str, null: float = 0.0,
                role: str = "verdict", model: str = "") -> Check:
    if term not in res.params.index:
        return Check(name, desc + f" (term {term} not estimated)", np.nan, np.nan, sign, null, None, role,
                     int(res.nobs), model)
    return Check(name, desc, float(res.params[term]), float(res.bse[term]), sign, null, _df_of(res), role,
                 int(res.nobs), model or res.model)


def _contrast_check(res: Any, a: str, b: str, sign: int, desc: str, name: str, role: str = "verdict",
                    model: str = "") -> Check:
    if a not in res.params.index or b not in res.params.index:
        missing = [t for t in (a, b) if t not in res.params.index]
        return Check(name, desc + f" (not estimated: {', '.join(missing)})", np.nan, np.nan, sign, 0.0, None,
                     role, int(res.nobs), model)
    V = res.cov
    est = float(res.params[a] - res.params[b])
    var = float(V.loc[a, a] + V.loc[b, b] - 2 * V.loc[a, b])
    return Check(name, desc, est, float(np.sqrt(max(var, 0.0))), sign, 0.0, _df_of(res), role, int(res.nobs),
                 model or res.model)


def _check_row(c: Check, phase: str, term: str) -> dict[str, Any]:
    return {"phase": phase, "term": term, "estimate": c.estimate, "std_error": c.std_error,
            "p_value": c.p_value, "n": c.n, "model": c.model + " (one-sided)"}


def _pretty(p: str) -> str:
    return p.replace("_", " ")


def _has_cluster_year_fe(fes: Sequence[str]) -> bool:
    return any(set(f.split("^")) >= {"cluster_id", "year"} for f in fes)


def _formula(y: str, terms: Sequence[str], fes: Sequence[str] = ()) -> str:
    no_icpt = "-1" in terms
    terms = [t for t in terms if t != "-1"]
    rhs = (" + ".join(terms) if terms else "1") + (" - 1" if no_icpt else "")
    return f"{y} ~ {rhs}" + (f" | {' + '.join(fes)}" if fes else "")


def _check_outcome(df: pd.DataFrame, col: str, what: str) -> None:
    if col not in df.columns:
        raise EstimationError(f"{what}: the analysis data have no column {col!r}")


# --------------------------------------------------------------------------------------------
# generic: regressor x phase, contrast of two phases (P4, P5 and user propositions)
# --------------------------------------------------------------------------------------------
@register_runner("interaction")
def run_interaction(spec: Proposition, data: AnalysisData) -> Outcome:
    """``outcome ~ x * phase + controls | fixed effects``; contrast ``beta_high - beta_low`` of the
    first regressor between the two phases of ``spec.contrast``.

    ``phase_mode="interacted"``: one model with ``x`` interacted with every phase (phase main
    effects added unless a cluster-by-year fixed effect absorbs them). ``phase_mode="by"``: one
    model per phase; the contrast's standard error then treats the two phase samples as
    independent (an approximation when clusters appear in both).
    Options: ``sample`` (a phase list to keep); ``companion`` (a second estimator, for example
    ``"lpm"``, reported beside the verdict model with ``companion_fixed_effects``).
    """
    df = data.firm_year
    out = Outcome()
    for c in (spec.outcome, *spec.regressors):
        _check_outcome(df, c, spec.id)
    keep = df["phase"].notna() & df[spec.outcome].notna()
    if spec.options.get("sample"):
        keep &= df["phase"].isin(list(spec.options["sample"]))
    d = df.loc[keep].copy()
    if "cluster_year_id" in " ".join(spec.controls):
        d["cluster_year_id"] = d["cluster_id"].astype(str) + ":" + d["year"].astype(str)
    phases = _phases(d)
    hi, lo = spec.contrast
    if hi not in phases or lo not in phases:
        raise EstimationError(f"{spec.id}: the data have no rows in phase {hi if hi not in phases else lo}")
    x = spec.regressors[0]
    vcov = _vcov(spec)
    if spec.phase_mode == "interacted":
        terms: list[str] = []
        inter: dict[str, dict[str, str]] = {}
        for r in spec.regressors:
            inter[r] = _interact(d, r, phases)
            terms += list(inter[r].values())
        if not _has_cluster_year_fe(spec.fixed_effects):
            terms += _dummies(d, phases)[1:]
        terms += list(spec.controls)
        res = fit(spec.estimator, _formula(spec.outcome, terms, spec.fixed_effects), d, vcov)
        out.results.append(res)
        for r in spec.regressors:
            out.estimates += _rows(res, inter[r], res.model)
        chk = _contrast_check(res, inter[x][hi], inter[x][lo], spec.expected_sign,
                              f"{x} slope in {_pretty(hi)} minus {_pretty(lo)}", f"{x}: {hi} - {lo}")
        comp = spec.options.get("companion")
        if comp:  # a second estimator reported beside the verdict model (not deciding it)
            cfe = tuple(spec.options.get("companion_fixed_effects", spec.fixed_effects))
            cterms = [t for t in terms if not (t.startswith("ph__") and _has_cluster_year_fe(cfe))]
            cres = fit(comp, _formula(spec.outcome, cterms, cfe), d, vcov)
            out.results.append(cres)
            label = f"{cres.model} | {' + '.join(cfe)}" if cfe else cres.model
            out.estimates += [{**r, "model": label} for r in _rows(cres, inter[x], cres.model)]
            out.checks.append(_contrast_check(cres, inter[x][hi], inter[x][lo], spec.expected_sign,
                                              f"{x} slope in {_pretty(hi)} minus {_pretty(lo)} ({label})",
                                              f"{x}: {hi} - {lo} ({comp})", role="descriptive", model=label))
    else:
        fits = {}
        for p in phases:
            dp = d[d["phase"] == p]
            try:
                res = fit(spec.estimator, _formula(spec.outcome, [*spec.regressors, *spec.controls],
                                                   spec.fixed_effects), dp, vcov)
            except EstimationError as exc:
                out.notes.append(f"{p}: {exc}")
                continue
            fits[p] = res
            out.results.append(res)
            out.estimates += _rows(res, {p: x}, res.model)
        if hi not in fits or lo not in fits:
            raise EstimationError(f"{spec.id}: the model could not be estimated in {hi} or {lo}")
        a, b = fits[hi], fits[lo]
        est = float(a.params[x] - b.params[x])
        se = float(np.sqrt(a.bse[x] ** 2 + b.bse[x] ** 2))
        dfs = [v for v in (_df_of(a), _df_of(b)) if v is not None]
        chk = Check(f"{x}: {hi} - {lo}", f"{x} slope in {_pretty(hi)} minus {_pretty(lo)} (separate models)",
                    est, se, spec.expected_sign, 0.0, min(dfs) if dfs else None, "verdict", a.nobs + b.nobs,
                    a.model)
        out.notes.append("contrast of separate models: the two phase samples are treated as independent")
    out.checks.insert(0, chk)
    for c in out.checks:
        out.estimates.append(_check_row(c, f"{hi} - {lo}", f"contrast {x}"))
    return out


# --------------------------------------------------------------------------------------------
# P1 founders
# --------------------------------------------------------------------------------------------
@register_runner("P1")
def run_p1(spec: Proposition, data: AnalysisData) -> Outcome:
    """Among enterprises that entered while their cluster was in initiation (origin known): the
    probability of a merchant founder is higher for simple products and that of an engineer
    founder higher for complex products. Binary models (``spec.estimator``, logit by default) of
    ``merchant ~ simple`` and ``engineer ~ complex``; Pearson chi-square of origin x complexity
    reported as a descriptive row (it ignores clustering)."""
    from scipy import stats

    f = data.firms
    out = Outcome()
    phase = spec.options.get("entry_phase", "initiation")
    d = f[(f["entry_phase_label"] == phase) & f["founder_origin"].notna()
          & ~f["founder_origin"].isin(["unknown"]) & f["product_complexity"].isin(["simple", "complex"])].copy()
    dropped = int(((f["entry_phase_label"] == phase) & ~f.index.isin(d.index)).sum())
    if dropped:
        out.notes.append(f"{dropped} {phase} entrants dropped: origin unknown or complexity missing")
    if d["product_complexity"].nunique() < 2:
        raise EstimationError(f"{spec.id}: {phase} entrants make only {d['product_complexity'].unique().tolist()} "
                              "products; both simple and complex are needed")
    d["simple"] = (d["product_complexity"] == "simple").astype(float)
    d["complex"] = 1.0 - d["simple"]
    d["merchant"] = (d["founder_origin"] == "merchant").astype(float)
    d["engineer"] = (d["founder_origin"] == "engineer").astype(float)
    vcov = _vcov(spec)
    for y, x in (("merchant", "simple"), ("engineer", "complex")):
        res = fit(spec.estimator, _formula(y, [x, *spec.controls]), d, vcov)
        out.results.append(res)
        out.estimates += _rows(res, {phase: x}, f"{res.model}: {y}")
        chk = _coef_check(res, x, spec.expected_sign, f"{y} founders more likely for {x} products", f"{y} ~ {x}")
        out.checks.append(chk)
        share = d.groupby("product_complexity")[y].mean()
        for comp, v in share.items():
            out.estimates.append({"phase": phase, "term": f"share {y} | {comp}", "estimate": float(v),
                                  "std_error": np.nan, "p_value": np.nan,
                                  "n": int((d["product_complexity"] == comp).sum()), "model": "share"})
    tab = pd.crosstab(d["founder_origin"], d["product_complexity"])
    tab = tab.loc[tab.sum(axis=1) > 0]
    if tab.shape[0] > 1 and tab.shape[1] > 1:
        chi2, p, dof, _ = stats.chi2_contingency(tab.to_numpy())
        out.estimates.append({"phase": phase, "term": f"chi2 origin x complexity (df {dof})", "estimate": float(chi2),
                              "std_error": np.nan, "p_value": float(p), "n": int(tab.to_numpy().sum()),
                              "model": "pearson chi2 (iid)"})
    return out


# --------------------------------------------------------------------------------------------
# P2 spin-offs
# --------------------------------------------------------------------------------------------
@register_runner("P2")
def run_p2(spec: Proposition, data: AnalysisData) -> Outcome:
    """(a) Entrants in quantity expansion are more often spin-offs than entrants in quality
    improvement: ``spinoff ~ entered_in_expansion`` (``spec.estimator``, logit) among entrants of
    the two phases with known origin. (b) Imitation: a spin-off's productivity in its entry year
    on its parent's productivity the same year (feols, cluster fixed effects), elasticity > 0.
    Options: ``checks`` (subset of ``("wave", "imitation")``)."""
    f = data.firms
    out = Outcome()
    which = tuple(spec.options.get("checks", ("wave", "imitation")))
    vcov = _vcov(spec)
    hi, lo = spec.contrast[1], spec.contrast[0]  # expansion vs quality improvement
    if "wave" in which:
        d = f[f["entry_phase"].isin([hi, lo])].copy()
        has_parent = d["spinoff_parent_id"].notna() if "spinoff_parent_id" in d else pd.Series(False, index=d.index)
        origin = d["founder_origin"] if "founder_origin" in d else pd.Series(None, index=d.index)
        known = has_parent | (origin.notna() & (origin != "unknown"))
        n_unknown = int((~known).sum())
        if n_unknown:
            out.notes.append(f"{n_unknown} entrants dropped: origin unknown")
        d = d[known]
        d["spinoff"] = ((origin.loc[d.index] == "spinoff") | has_parent.loc[d.index]).astype(float)
        d["entered_in_expansion"] = (d["entry_phase"] == hi).astype(float)
        res = fit(spec.estimator, _formula("spinoff", ["entered_in_expansion", *spec.controls]), d, vcov)
        out.results.append(res)
        out.estimates += _rows(res, {f"{hi} vs {lo}": "entered_in_expansion"}, res.model)
        for p, v in d.groupby("entry_phase")["spinoff"].mean().items():
            out.estimates.append({"phase": p, "term": "share spinoff among entrants", "estimate": float(v),
                                  "std_error": np.nan, "p_value": np.nan,
                                  "n": int((d["entry_phase"] == p).sum()), "model": "share"})
        out.checks.append(_coef_check(res, "entered_in_expansion", 1,
                                      f"spin-offs more frequent among {_pretty(hi)} entrants than {_pretty(lo)}",
                                      "spin-off wave"))
    if "imitation" in which:
        fy = data.firm_year
        tfp = pd.Series(fy["tfp"].to_numpy(), index=pd.MultiIndex.from_arrays([fy["enterprise_id"], fy["year"]]))
        kids = f[f["spinoff_parent_id"].notna() & f["entry_year"].notna()].copy()
        kids = kids[kids["first_year"] == kids["entry_year"]]
        yr = kids["entry_year"].astype(int).to_numpy()
        kids["tfp_entrant"] = tfp.reindex(pd.MultiIndex.from_arrays([kids["enterprise_id"], yr])).to_numpy()
        kids["tfp_parent"] = tfp.reindex(pd.MultiIndex.from_arrays([kids["spinoff_parent_id"].astype(str),
                                                                     yr])).to_numpy()
        kids["entry_phase_"] = kids["entry_phase"].fillna("unknown")
        n0 = len(kids)
        kids = kids.dropna(subset=["tfp_entrant", "tfp_parent"])
        out.notes.append(f"imitation: {len(kids)} of {n0} spin-offs observed in their entry year have both "
                         "their own and their parent's productivity that year")
        fe = spec.options.get("imitation_fe", ("cluster_id",))
        res = fit("feols", _formula("tfp_entrant", ["tfp_parent"], fe), kids, vcov)
        out.results.append(res)
        out.estimates += _rows(res, {"all": "tfp_parent"}, "feols: imitation elasticity")
        out.checks.append(_coef_check(res, "tfp_parent", 1, "entrant's productivity rises with its parent's "
                                      "(imitation elasticity)", "imitation elasticity"))
    return out


# --------------------------------------------------------------------------------------------
# P6 shake-out
# --------------------------------------------------------------------------------------------
AGE_BINS = (-0.5, 0.5, 1.5, 2.5, 4.5, 9.5, 19.5, np.inf)


@register_runner("P6")
def run_p6(spec: Proposition, data: AnalysisData) -> Outcome:
    """Exit hazard of enterprise-years with innovator x phase, phase effects and controls.

    ``estimator="cloglog"`` (default): discrete-time complementary log-log hazard with a baseline
    in age groups (0, 1, 2, 3-4, 5-9, 10-19, 20+ years), so coefficients are log hazard ratios of
    the grouped-time proportional-hazards model. ``"logit"`` uses the logistic link.
    ``"cox"``: Cox model on the same enterprise-year rows as counting-process intervals
    ``(age, age + 1]`` (late entry: an enterprise enters the risk set at its first observed age).
    Checks: the innovator log hazard ratio in quality improvement is negative and below the one
    in quantity expansion.
    """
    from cluster_econ import estimate as est

    fy = data.firm_year
    out = Outcome()
    x = spec.regressors[0] if spec.regressors else "innovator"
    y = spec.outcome or "exit"
    for c in (x, y, "age"):
        _check_outcome(fy, c, spec.id)
    d = fy[fy["phase"].notna() & fy[x].notna() & fy["age"].notna()].copy()
    phases = _phases(d)
    hi, lo = spec.contrast
    inter = _interact(d, x, phases)
    dums = _dummies(d, phases)
    vcov = _vcov(spec)
    if spec.estimator == "cox":
        d["age_start"] = d["age"].astype(float)
        d["age_stop"] = d["age_start"] + 1.0
        terms = [*inter.values(), *[t for t in dums if t != f"ph__{lo}"], *spec.controls]
        res = est.cox(_formula("age_stop", terms), d, event=y, entry="age_start", vcov=vcov)
    elif spec.estimator in ("cloglog", "logit"):
        d["age_group"] = pd.cut(d["age"], AGE_BINS, labels=False).astype(float)
        terms = [*inter.values(), *[t for t in dums if t != f"ph__{lo}"], *spec.controls, "C(age_group)"]
        fn = est.cloglog if spec.estimator == "cloglog" else est.logit
        res = fn(_formula(y, terms), d, vcov=vcov, separation="drop")
    else:
        raise EstimationError(f"{spec.id}: estimator must be 'cloglog', 'logit' or 'cox', not {spec.estimator!r}")
    out.results.append(res)
    out.estimates += _rows(res, inter, f"{res.model}: {x} x phase")
    out.estimates += _rows(res, {p: f"ph__{p}" for p in phases if p != lo}, f"{res.model}: phase vs {lo}")
    out.checks.append(_contrast_check(res, inter[hi], inter[lo], spec.expected_sign,
                                      f"{x} log hazard ratio in {_pretty(hi)} minus {_pretty(lo)}",
                                      f"{x}: {hi} - {lo}"))
    out.checks.append(_coef_check(res, inter[hi], spec.expected_sign,
                                  f"{x} log hazard ratio in {_pretty(hi)}", f"{x} in {hi}"))
    for c in out.checks:
        out.estimates.append(_check_row(c, hi, c.name))
    return out


# --------------------------------------------------------------------------------------------
# P8 institutions and size
# --------------------------------------------------------------------------------------------
@register_runner("P8")
def run_p8(spec: Proposition, data: AnalysisData) -> Outcome:
    """(a) The share of parts bought in the market is highest in quantity expansion (above
    initiation and above quality improvement); (b) long-term subcontracting, own brands and direct
    sales are more frequent in quality improvement than in quantity expansion (linear probability,
    phase means, cluster-robust). Reported without entering the verdict: CR4 levels and yearly
    changes by phase and a Gibrat regression of employment growth on lagged log employment by
    phase (``d_log_l ~ log_l_lag``, cluster-by-year fixed effects; a slope of 0 is Gibrat's law).
    Options: ``items`` (the institution items), ``parts`` (the parts column)."""
    fy = data.firm_year
    out = Outcome()
    vcov = _vcov(spec)
    hi, lo = spec.contrast
    parts = spec.options.get("parts", "parts_market_share")
    items = tuple(spec.options.get("items", ("long_term_subcontract", "own_brand", "direct_sales")))

    def means(col: str) -> tuple[Any, list[str]] | None:
        if col not in fy.columns or not fy[col].notna().any():
            out.notes.append(f"no {col}: its check is skipped")
            return None
        d = fy[fy["phase"].notna() & fy[col].notna()].copy()
        ph = _phases(d)
        dums = _dummies(d, ph)
        res = fit("lpm" if col != parts else "feols", _formula(col, [*dums, "-1"]), d, vcov)
        out.results.append(res)
        out.estimates += _rows(res, {p: f"ph__{p}" for p in ph}, f"feols: mean {col}")
        return res, ph

    m = means(parts)
    if m is not None:
        res, ph = m
        for other in ("initiation", hi):
            if other in ph and lo in ph:
                out.checks.append(_contrast_check(res, f"ph__{lo}", f"ph__{other}", 1,
                                                  f"{parts} in {_pretty(lo)} minus {_pretty(other)}",
                                                  f"{parts}: {lo} - {other}"))
    for item in items:
        m = means(item)
        if m is not None:
            res, _ = m
            out.checks.append(_contrast_check(res, f"ph__{hi}", f"ph__{lo}", 1,
                                              f"{item} in {_pretty(hi)} minus {_pretty(lo)}", f"{item}: {hi} - {lo}"))
    # concentration and Gibrat (descriptive)
    cy = data.cluster_year.sort_values(["cluster_id", "year"]).copy()
    if "cr4" in cy.columns and cy["cr4"].notna().any():
        cy["cr4"] = pd.to_numeric(cy["cr4"], errors="coerce")
        gap = cy.groupby("cluster_id")["year"].diff()
        cy["d_cr4"] = (cy["cr4"] - cy.groupby("cluster_id")["cr4"].shift(1)).where(gap == 1)
        for col in ("cr4", "d_cr4"):
            c2 = cy[cy["phase"].notna() & cy[col].notna()].copy()
            ph = _phases(c2)
            res = fit("feols", _formula(col, [*_dummies(c2, ph), "-1"]), c2, vcov)
            out.results.append(res)
            out.estimates += _rows(res, {p: f"ph__{p}" for p in ph}, f"feols: mean {col}")
            if col == "d_cr4":
                out.checks.append(_contrast_check(res, f"ph__{hi}", f"ph__{lo}", 1,
                                                  f"yearly change of CR4 in {_pretty(hi)} minus {_pretty(lo)}",
                                                  f"d_cr4: {hi} - {lo}", role="descriptive"))
    if "d_log_l" in fy.columns:
        d = fy[fy["phase"].notna() & fy["d_log_l"].notna() & fy["log_l_lag"].notna()].copy()
        ph = _phases(d)
        inter = _interact(d, "log_l_lag", ph)
        res = fit("feols", _formula("d_log_l", list(inter.values()), ("cluster_id^year",)), d, vcov)
        out.results.append(res)
        out.estimates += _rows(res, inter, "feols: Gibrat (growth on lagged size)")
        out.checks.append(_contrast_check(res, inter[hi], inter[lo], 1,
                                          f"growth-size slope in {_pretty(hi)} minus {_pretty(lo)}",
                                          f"Gibrat: {hi} - {lo}", role="descriptive"))
    return out


# --------------------------------------------------------------------------------------------
# P9 training experiment
# --------------------------------------------------------------------------------------------
@register_runner("P9")
def run_p9(spec: Proposition, data: AnalysisData) -> Outcome:
    """Intent-to-treat effects of random assignment to management training by ANCOVA: the outcome
    in post-assignment years on the assignment dummy, the outcome's baseline (last value at or
    before the assignment year; missing baselines set to 0 with a missing-baseline dummy) and
    stratum-by-cluster and cluster-by-year fixed effects, clustered by enterprise (the unit of
    randomization). Outcomes: ``management_score`` from the year after assignment and
    ``log_va`` from ``va_lag`` (option, default 2) years after. Reported beside it: the
    difference-in-differences ITT (``treated x post`` with enterprise and cluster-by-year fixed
    effects, on the pre-assignment and post years). Treatment on the treated by 2SLS
    with assignment instrumenting attendance. A wild cluster bootstrap p-value (restricted,
    Rademacher, ``bootstrap`` draws, option, default 999; 0 turns it off) of each ITT is
    reported. Checks: both ITT effects positive."""
    from cluster_econ import estimate as est

    rct = data.panel.rct_assignment
    if rct is None or rct.empty:
        raise EstimationError(f"{spec.id}: the panel has no rct_assignment rows")
    out = Outcome()
    fy = data.firm_year
    r = rct.copy()
    r["enterprise_id"] = r["enterprise_id"].astype(str)
    r["treated"] = pd.to_numeric(r["treatment"].astype("Float64"), errors="coerce").astype(float)
    r["attended_"] = pd.to_numeric(r["attended"].astype("Float64"), errors="coerce").astype(float) \
        if "attended" in r.columns else np.nan
    r["assign_year"] = pd.to_numeric(r["assignment_year"], errors="coerce")
    strat = r["stratum"].astype(str) if "stratum" in r.columns else pd.Series("all", index=r.index)
    r["stratum_id"] = r["cluster_id"].astype(str) + ":" + strat
    d = fy.merge(r[["enterprise_id", "treated", "attended_", "assign_year", "stratum_id"]], on="enterprise_id")
    phase_at = d.loc[d["year"] == d["assign_year"], "phase_label"].dropna()
    phase = str(phase_at.mode().iloc[0]) if len(phase_at) else "experiment"
    lags = {"management_score": 1, "log_va": int(spec.options.get("va_lag", 2))}
    outcomes = [spec.outcome] if spec.options.get("only_outcome") else list(dict.fromkeys([spec.outcome, *lags]))
    B = int(spec.options.get("bootstrap", 999))
    vcov = _vcov(spec)
    for y in outcomes:
        if y not in d.columns or not d[y].notna().any():
            out.notes.append(f"no {y}: its ITT is skipped")
            continue
        pre = d[(d["year"] <= d["assign_year"]) & d[y].notna()].sort_values("year")
        base = pre.groupby("enterprise_id")[y].last()
        post = d[(d["year"] >= d["assign_year"] + lags.get(y, 1)) & d[y].notna()].copy()
        post["baseline"] = post["enterprise_id"].map(base)
        post["baseline_missing"] = post["baseline"].isna().astype(float)
        post["baseline"] = post["baseline"].fillna(0.0)
        ctrl = ["baseline", "baseline_missing"] if post["baseline_missing"].any() else ["baseline"]
        fes = ("stratum_id", "cluster_id^year")
        res = est.feols(_formula(y, ["treated", *ctrl, *spec.controls], fes), post, vcov=vcov)
        out.results.append(res)
        out.estimates += _rows(res, {phase: "treated"}, f"feols ANCOVA ITT: {y}")
        out.checks.append(_coef_check(res, "treated", spec.expected_sign, f"ITT of training on {y}", f"ITT {y}"))
        # difference in differences on all years, enterprise fixed effects (reported, not deciding)
        dd = d[d[y].notna() & ((d["year"] <= d["assign_year"]) | (d["year"] >= d["assign_year"] + lags.get(y, 1)))]
        dd = dd.assign(treated_post=dd["treated"] * (dd["year"] > dd["assign_year"]).astype(float))
        try:
            did = est.feols(_formula(y, ["treated_post", *spec.controls], ("enterprise_id", "cluster_id^year")),
                            dd, vcov=vcov)
            out.results.append(did)
            out.estimates += _rows(did, {phase: "treated_post"}, f"feols DiD ITT: {y}")
            out.checks.append(_coef_check(did, "treated_post", spec.expected_sign, f"DiD ITT of training on {y}",
                                          f"DiD ITT {y}", role="descriptive"))
        except EstimationError as exc:
            out.notes.append(f"DiD {y}: {exc}")
        if post["attended_"].notna().any():
            try:
                tot = est.iv(f"{y} ~ {' + '.join([*ctrl, *spec.controls])} | {' + '.join(fes)} | attended_ ~ treated",
                             post, vcov=vcov)
                out.results.append(tot)
                out.estimates += _rows(tot, {phase: "attended_"}, f"2SLS TOT: {y}")
            except EstimationError as exc:
                out.notes.append(f"TOT {y}: {exc}")
        if B > 0:
            cl = vcov.get("CRV1") if isinstance(vcov, Mapping) else None
            if cl:
                try:
                    wb = est.wild_bootstrap(res, post, param="treated", cluster=cl, B=B,
                                            seed=int(spec.options.get("seed", 12345)), ci=False)
                    out.estimates.append({"phase": phase, "term": "treated (wild cluster bootstrap)",
                                          "estimate": wb.estimate, "std_error": np.nan, "p_value": wb.p_value,
                                          "n": wb.nobs, "model": f"WCR {wb.weights} B={B}, two-sided"})
                except EstimationError as exc:
                    out.notes.append(f"wild bootstrap {y}: {exc}")
    if not out.checks:
        raise EstimationError(f"{spec.id}: no outcome could be analysed")
    return out


# P3 and P7 (productivity) live in their own module; importing it registers them
from cluster_econ.hypotheses.productivity_runners import COMPONENTS, decompose, run_p3, run_p7  # noqa: E402

__all__ += ["COMPONENTS", "decompose", "run_p3", "run_p7"]
