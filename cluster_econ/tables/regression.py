"""Regression tables: several :class:`~cluster_econ.estimate.result.Result` objects side by side.

A regression table reads only Result objects. Each coefficient is shown with a statistic
beneath it (standard error, t statistic, p-value or confidence interval, all taken from the
Result so that the covariance type and reference distribution are the estimator's own), and the
bottom rows report, per model: observations, clusters (``vcov_info.n_clusters``), fixed effects
(Yes/No), fit statistics under exact labels, and the covariance type with its small-sample
correction. A within R² is only ever shown as "Within R²".

Layout, as modelsummary and fixest's etable: row labels left-aligned in every format, the
constant last (``order=`` places it elsewhere), and an empty cell wherever a model has no value
(a term it does not have, a statistic it does not report, a number that is not finite): never
``nan`` or ``n/a``.
"""

from __future__ import annotations

import numbers
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from cluster_econ.estimate.result import Result, VcovInfo
from cluster_econ.tables._format import INTERCEPT_NAMES, excel_format, excel_quote, fmt_number, label_term
from cluster_econ.tables._render import (
    Cell,
    Layout,
    RenderedTable,
    Row,
    TableError,
    spans_from_groups,
)

#: Fit statistics shown by default: Result.stats key -> row label (exact wording).
FIT_STATS: dict[str, str] = {
    "r2": "R²",
    "adj_r2": "Adjusted R²",
    "within_r2": "Within R²",
    "overall_r2": "Overall R²",
    "pseudo_r2": "Pseudo R²",
    "loglik": "Log likelihood",
    # instrumental variables (iv, feols IV, liml): weak identification, over-identification, endogeneity
    "cragg_donald_F": "Cragg-Donald F",
    "kp_rk_wald_F": "Kleibergen-Paap rk Wald F",
    "hansen_J_p": "Hansen J p-value",
    "sargan_p": "Sargan p-value",
    "endog_p": "Endogeneity test p-value",
    # dynamic panel GMM (pgmm)
    "n_instruments": "Instruments",
    "ar1_p": "AR(1) test p-value",
    "ar2_p": "AR(2) test p-value",
}
#: Further statistics that may be requested with ``stats=``.
EXTRA_STATS: dict[str, str] = {
    "first_stage_F": "First-stage F",
    "aic": "AIC",
    "bic": "BIC",
    "rmse": "RMSE",
}

#: Statistics that are counts (printed without decimals).
COUNT_STATS = frozenset({"n_instruments", "n_events", "iterations"})

STAT_NOTES = {
    "se": "Standard errors in parentheses.",
    "t": "t statistics in parentheses.",
    "p": "p-values in parentheses.",
}

#: Models whose ``groups`` are groupings (entities, strata) rather than fixed effects. Panel
#: models (``panel-<kind>``) other than ``panel-fe`` and discrete-time hazards are covered by
#: prefix in :func:`fixed_effects`.
NON_FE_MODELS = frozenset({
    "re", "random-effects", "random_effects", "pooled", "between", "first-difference",
    "mundlak", "cre", "cre_probit", "cre-probit", "ols", "logit", "probit", "lpm", "cloglog",
    "tobit", "ordered_probit", "ordered-probit", "cox", "hazard", "ame", "lee_bounds",
    "fractional-logit", "fractional-probit",
})


def fixed_effects(result: Result) -> tuple[str, ...]:
    """Fixed effects of a fitted model.

    Taken from ``result.extra["fixed_effects"]`` when the estimator sets it, else from the
    fixest-style formula (``y ~ x | firm + year``; an IV part ``| d ~ z`` is skipped), else the
    keys of ``result.groups`` for ``panel-fe`` and estimators not known to use groups otherwise
    (random effects, pooled, between, first differences, Mundlak, Cox strata and discrete-time
    hazards report groupings that are not fixed effects).
    """
    explicit = result.extra.get("fixed_effects")
    if explicit is not None:
        return tuple(str(x) for x in explicit)
    if str(result.model).lower() == "pgmm":
        # the formula's second part lists GMM instruments, not fixed effects: the entity effects
        # are differenced out (the time effects are coefficients)
        return tuple(str(k) for k in result.groups)
    parts = str(result.formula).split("|")
    if len(parts) > 1:
        names: list[str] = []
        for part in parts[1:]:
            if "~" in part:
                continue
            names += [t.strip() for t in part.split("+") if t.strip() not in ("", "0", "1")]
        return tuple(names)
    model = str(result.model).lower()
    if model.startswith("panel-"):
        return tuple(str(k) for k in result.groups) if model == "panel-fe" else ()
    if model in NON_FE_MODELS or model.startswith(("hazard", "att_gt")):
        return ()
    return tuple(str(k) for k in result.groups)


def short_vcov(info: VcovInfo) -> str:
    """``vcov_info.describe()`` without the cluster counts (they have their own rows)."""
    text = info.type
    if info.cluster_vars:
        text += " by " + " & ".join(label_term(v) for v in info.cluster_vars)
    return f"{text}, ssc={info.ssc}"


def _dependent(formula: str) -> str:
    if "~" not in formula:
        return ""
    lhs = formula.split("~", 1)[0].strip()
    return label_term(lhs) if lhs else ""


def _select(terms: list[str], keep: Any, drop: Any, order: Any) -> list[str]:
    def matches(spec: Any, term: str) -> bool:
        if isinstance(spec, re.Pattern):
            return bool(spec.search(term))
        return term == spec

    def check(specs: Sequence[Any], what: str) -> None:
        for spec in specs:
            if not any(matches(spec, t) for t in terms):
                raise TableError(f"{what}: no model has a term {spec if isinstance(spec, str) else spec.pattern!r}; "
                                 f"the terms are {', '.join(terms)}")

    def as_list(x: Any) -> list[Any]:
        if x is None:
            return []
        return [x] if isinstance(x, str | re.Pattern) else list(x)

    keep_l, drop_l, order_l = as_list(keep), as_list(drop), as_list(order)
    check(keep_l, "keep")
    check(drop_l, "drop")
    check(order_l, "order")
    out = list(terms)
    if keep_l:
        out = [t for t in out if any(matches(s, t) for s in keep_l)]
    out = [t for t in out if not any(matches(s, t) for s in drop_l)]
    first: list[str] = []
    for spec in order_l:
        first += [t for t in out if matches(spec, t) and t not in first]
    rest = [t for t in out if t not in first]
    # the constant last, as modelsummary, etable and esttab print it (unless ``order`` places it)
    return first + [t for t in rest if t not in INTERCEPT_NAMES] + [t for t in rest if t in INTERCEPT_NAMES]


def _stars_spec(stars: bool | Sequence[float]) -> tuple[float, ...]:
    if stars is False or stars is None:
        return ()
    levels = (0.10, 0.05, 0.01) if stars is True else tuple(float(s) for s in stars)
    if not levels or any(not 0 < s < 1 for s in levels) or list(levels) != sorted(levels, reverse=True):
        raise TableError(f"stars must be True or decreasing p-value thresholds in (0, 1), got {stars!r}")
    return levels


class RegressionTable(RenderedTable):
    """A regression table; render with ``to_latex``, ``to_html``, ``to_markdown``, ``to_docx``,
    ``to_xlsx``, ``to_csv``, ``to_frame`` or ``save(path)``.

    Attributes
    ----------
    layout : Layout
        The format-neutral content.
    terms : tuple of str
        Model terms in row order.
    """

    def __init__(self, layout: Layout, terms: Sequence[str], stat: str) -> None:
        self.layout = layout
        self.terms = tuple(terms)
        self.stat = stat

    def to_frame(self) -> pd.DataFrame:
        """Displayed strings; the index is (row label, ``"estimate"``/statistic/``""``)."""
        frame = super().to_frame()
        keys: list[tuple[str, str]] = []
        for k, sec in enumerate(self.layout.sections):
            last = ""
            for row in sec:
                if k == 0 and self.terms and row.kind == "sub":
                    keys.append((last, self.stat))
                elif k == 0 and self.terms:
                    last = row.label
                    keys.append((row.label, "estimate"))
                else:
                    keys.append((row.label, ""))
        frame.index = pd.MultiIndex.from_tuples(keys, names=["row", "statistic"])
        return frame


def regression_table(
    results: Result | Sequence[Result] | Mapping[str, Result],
    *,
    labels: Mapping[str, str] | None = None,
    model_names: Sequence[str] | None = None,
    groups: Mapping[str, Sequence[int]] | None = None,
    stat: str = "se",
    stars: bool | Sequence[float] = False,
    digits: int = 3,
    keep: str | re.Pattern[str] | Sequence[str | re.Pattern[str]] | None = None,
    drop: str | re.Pattern[str] | Sequence[str | re.Pattern[str]] | None = None,
    order: str | re.Pattern[str] | Sequence[str | re.Pattern[str]] | None = None,
    notes: str | Sequence[str] | None = None,
    title: str | None = None,
    stats: Sequence[str] | None = None,
    level: float = 0.95,
) -> RegressionTable:
    """Put fitted models side by side.

    Parameters
    ----------
    results : Result, sequence of Result, or mapping of name to Result
        The models, one column each (a mapping's keys become the model names).
    labels : mapping, optional
        Term (or variable) -> label; overrides the schema labels of canonical columns.
        Interactions ``a:b`` are labelled ``A × B`` from the labels of their parts.
    model_names : sequence of str, optional
        One name per column; default the label of each model's dependent variable.
    groups : mapping of str to list of int, optional
        Spanning headers over contiguous columns (0-based), for example
        ``{"Quantity expansion": [0, 1], "Quality improvement": [2, 3]}``.
    stat : {"se", "t", "p", "ci"}
        What to show beneath each coefficient: standard error, t statistic, p-value (all in
        parentheses) or confidence interval (in brackets, at ``level``).
    stars : bool or sequence of float
        ``True`` for ``*`` p < 0.10, ``**`` p < 0.05, ``***`` p < 0.01, or decreasing
        thresholds. The thresholds are stated in the notes. p-values are the Result's own
        (Student t with its residual degrees of freedom where it sets them, else normal).
    digits : int
        Decimals of coefficients, statistics and fit statistics.
    keep, drop, order : str, compiled regex, or a sequence of them
        Terms to keep, to drop, and to put first. A ``str`` matches a term exactly, a compiled
        pattern (``re.compile``) by ``search``. A spec that matches no term is an error. The
        constant (``Intercept``) comes last unless ``order`` names it.
    notes : str or sequence of str, optional
        Notes printed under the table after the generated ones.
    title : str, optional
        Caption.
    stats : sequence of str, optional
        ``Result.stats`` keys for the fit-statistic rows; default ``r2, adj_r2, within_r2,
        overall_r2, pseudo_r2, loglik`` and, for the models that report them, the instrument
        diagnostics (``cragg_donald_F``, ``kp_rk_wald_F``, ``hansen_J_p``, ``sargan_p``,
        ``endog_p``) and the dynamic panel GMM tests (``n_instruments``, ``ar1_p``, ``ar2_p``).
        A row appears only if at least one model has the statistic.
    level : float
        Confidence level for ``stat="ci"``.

    Returns
    -------
    RegressionTable
    """
    if isinstance(results, Result):
        res_list, names_from_keys = [results], None
    elif isinstance(results, Mapping):
        res_list, names_from_keys = list(results.values()), [str(k) for k in results]
    else:
        res_list, names_from_keys = list(results), None
    if not res_list:
        raise TableError("regression_table needs at least one Result")
    for i, r in enumerate(res_list):
        if not isinstance(r, Result):
            raise TableError(f"model {i} is a {type(r).__name__}, not a cluster_econ Result")
    if stat not in ("se", "t", "p", "ci"):
        raise TableError(f"stat must be one of 'se', 't', 'p', 'ci', got {stat!r}")
    if not 0 < level < 1:
        raise TableError(f"level must be in (0, 1), got {level!r}")
    digits = int(digits)
    if digits < 0:
        raise TableError(f"digits must be >= 0, got {digits}")
    star_levels = _stars_spec(stars)
    k = len(res_list)
    user_labels = dict(labels or {})

    if model_names is None:
        model_names = names_from_keys or [_dependent(r.formula) for r in res_list]
    model_names = [str(m) for m in model_names]
    if len(model_names) != k:
        raise TableError(f"model_names has {len(model_names)} names for {k} models")
    spans = spans_from_groups({str(g): list(v) for g, v in (groups or {}).items()}, k)

    all_terms: list[str] = []
    for r in res_list:
        all_terms += [t for t in r.params.index.astype(str) if t not in all_terms]
    terms = _select(all_terms, keep, drop, order)

    fmt = excel_format(digits)
    coef_rows: list[Row] = []
    tidy = [r.tidy(level) for r in res_list]
    for df in tidy:
        df.index = df["term"].astype(str)
    for term in terms:
        top: list[Cell] = []
        sub: list[Cell] = []
        for df in tidy:
            if term not in df.index:
                top.append(Cell(""))
                sub.append(Cell(""))
                continue
            row = df.loc[term]
            est, p = float(row["estimate"]), float(row["p_value"])
            mark = ""
            if star_levels and np.isfinite(p):
                mark = "*" * sum(p < s for s in star_levels)
            if not np.isfinite(est):  # not estimated: blank, as an absent term
                top.append(Cell(""))
                sub.append(Cell(""))
                continue
            top.append(Cell(fmt_number(est, digits) + mark, est, fmt + excel_quote(mark)))
            if stat == "ci":
                lo, hi = float(row["conf_low"]), float(row["conf_high"])
                ok = np.isfinite(lo) and np.isfinite(hi)
                sub.append(Cell(f"[{fmt_number(lo, digits)}, {fmt_number(hi, digits)}]" if ok else ""))
            else:
                col = {"se": "std_error", "t": "statistic", "p": "p_value"}[stat]
                v = float(row[col])
                if stat == "p" and np.isfinite(v) and v < 0.5 * 10 ** (-digits):
                    sub.append(Cell(f"(<{fmt_number(10 ** (-digits), digits)})"))
                elif np.isfinite(v):
                    sub.append(Cell(f"({fmt_number(v, digits)})", v, f"({fmt})"))
                else:
                    sub.append(Cell(""))  # no standard error (a singular covariance): blank
        coef_rows.append(Row(label_term(term, user_labels), tuple(top)))
        coef_rows.append(Row("", tuple(sub), kind="sub"))

    # observations, clusters, fixed effects
    info_rows = [Row("Observations", tuple(Cell(f"{int(r.nobs):,}", int(r.nobs), "#,##0")
                                            for r in res_list))]
    cluster_vars: list[str] = []
    for r in res_list:
        cluster_vars += [v for v in r.vcov_info.cluster_vars if v not in cluster_vars]
    for var in cluster_vars:
        cells = []
        for r in res_list:
            counts = dict(zip(r.vcov_info.cluster_vars, r.vcov_info.n_clusters, strict=False))
            n = counts.get(var)
            cells.append(Cell(f"{int(n):,}", int(n), "#,##0") if n is not None else Cell(""))
        info_rows.append(Row(f"Clusters ({label_term(var, user_labels)})", tuple(cells)))
    fe_per_model = [fixed_effects(r) for r in res_list]
    fe_all: list[str] = []
    for fes in fe_per_model:
        fe_all += [f for f in fes if f not in fe_all]
    for fe in fe_all:
        info_rows.append(Row(f"{label_term(fe, user_labels)} FE",
                             tuple(Cell("Yes" if fe in fes else "No") for fes in fe_per_model)))

    # fit statistics
    stat_keys = list(stats) if stats is not None else list(FIT_STATS)
    fit_rows = []
    for key in stat_keys:
        label = FIT_STATS.get(key) or EXTRA_STATS.get(key) or key
        vals = [r.stats.get(key) for r in res_list]
        if all(v is None for v in vals):
            continue
        cells = []
        for v in vals:
            if v is None:
                cells.append(Cell(""))
            elif isinstance(v, numbers.Real) and key in COUNT_STATS and np.isfinite(float(v)):
                cells.append(Cell(f"{int(v):,}", int(v), "#,##0"))
            elif isinstance(v, numbers.Real):
                fv = float(v)
                cells.append(Cell(fmt_number(fv, digits), fv, fmt) if np.isfinite(fv) else Cell(""))
            elif isinstance(v, str) and v.strip().lower() in ("nan", "none", "<na>", ""):
                cells.append(Cell(""))
            else:
                cells.append(Cell(str(v)))
        fit_rows.append(Row(label, tuple(cells)))
    fit_rows.append(Row("Standard errors", tuple(Cell(short_vcov(r.vcov_info)) for r in res_list)))

    note_list: list[str] = []
    if stat == "ci":
        note_list.append(f"{level:.0%} confidence intervals in brackets.")
    else:
        note_list.append(STAT_NOTES[stat])
    if star_levels:
        marks = ", ".join(f"{'*' * (i + 1)} p < {s:g}" for i, s in enumerate(star_levels))
        note_list.append(f"{marks} (two-sided; Student t with the model's residual degrees of "
                         "freedom where it sets them, else normal).")
    if isinstance(notes, str):
        note_list.append(notes)
    elif notes:
        note_list += [str(n) for n in notes]

    headers: list[tuple[str, ...]] = []
    if any(model_names):
        headers.append(tuple(model_names))
    headers.append(tuple(f"({i + 1})" for i in range(k)))
    sections = tuple(s for s in (tuple(coef_rows), tuple(info_rows), tuple(fit_rows)) if s)
    layout = Layout(ncols=k, headers=tuple(headers), sections=sections, spans=spans,
                    notes=tuple(note_list), title=title)
    return RegressionTable(layout, terms, stat)
