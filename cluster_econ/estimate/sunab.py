"""Sun and Abraham (2021) interaction-weighted event study through the formula: ``sunab(cohort, period)``.

``y ~ sunab(first_treat, year) | firm + year`` (as in R's fixest) replaces the term by one dummy per
treated cohort :math:`g` and relative period :math:`\\ell = t - g` (the reference period
:math:`\\ell = -1`, option ``ref_p``, is left out; never-treated units get no dummy), estimates the
saturated regression with :func:`~cluster_econ.estimate.linear.feols`, and reports per relative
period the interaction-weighted average

.. math:: \\hat\\beta_\\ell = \\sum_g \\hat w_{g,\\ell}\\, \\hat\\delta_{g,\\ell}, \\qquad
          \\hat w_{g,\\ell} = n_{g,\\ell} / \\textstyle\\sum_{g'} n_{g',\\ell},

with :math:`n_{g,\\ell}` the estimation-sample observations of cohort :math:`g` at relative
period :math:`\\ell` (the cohort shares of fixest and pyfixest). Its covariance is
:math:`W\\hat VW'` with :math:`\\hat V` the saturated regression's covariance (any ``vcov``).
``att=TRUE`` reports instead one ``ATT``: the share-weighted average over all cells with
:math:`\\ell \\ge 0`. Terms are named ``period::l`` (``year::-3``); the cohort-specific estimates
stay in ``result.extra["sunab"]``.

Cohorts: a value that is one of the sample's periods (or between the first and last) is a treated
cohort; 0, infinity or a value after the last period marks never-treated units (fixest's rule).
A cohort before the first period (always treated) is rejected with an error: such units are
absorbed by their fixed effect and would silently act as controls.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pandas as pd

from cluster_econ.errors import FormulaError

__all__ = ["aggregate", "sunab_columns", "sunab_spec"]


def _num(values: pd.Series, name: str) -> np.ndarray:
    if not (pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values)):
        raise FormulaError(f"sunab(): column {name!r} must be numeric (cohort and period are years or "
                           f"period numbers), it has type {values.dtype}")
    return values.to_numpy(dtype=float, na_value=np.nan)


def _cells(cohort: np.ndarray, period: np.ndarray, cname: str) -> tuple[np.ndarray, np.ndarray]:
    """Treated-cohort mask and relative period of every row."""
    finite_p = period[np.isfinite(period)]
    if finite_p.size == 0:
        return np.zeros(len(cohort), dtype=bool), np.full(len(cohort), np.nan)
    lo, hi = finite_p.min(), finite_p.max()
    early = np.isfinite(cohort) & (cohort > 0) & (cohort < lo)
    if early.any():
        raise FormulaError(f"sunab(): {int(early.sum())} rows have {cname!r} before the first period {lo:g} "
                           "(always treated); drop them or recode their cohort")
    treated = np.isfinite(cohort) & (cohort >= lo) & (cohort <= hi)
    return treated, period - cohort


def sunab_columns(cohort: str, period: str, ref_p: float, data: pd.DataFrame) -> list[tuple[str, np.ndarray]]:
    """Dummies of (treated cohort, relative period), the reference period left out."""
    c, p = _num(data[cohort], cohort), _num(data[period], period)
    treated, rel = _cells(c, p, cohort)
    keys = pd.DataFrame({"g": c[treated], "l": rel[treated]}).drop_duplicates().sort_values(["l", "g"])
    out = []
    for g, ell in keys.itertuples(index=False):
        if ell == ref_p:
            continue
        col = (treated & (c == g) & (rel == ell)).astype(float)
        out.append((f"{period}::{_fmt(ell)}:cohort::{_fmt(g)}", col))
    return out


def sunab_spec(term: str) -> tuple[str, str, bool]:
    """(cohort, period, att) of a parsed ``sunab(...)`` term."""
    from cluster_econ.estimate.formula import _parse_term_text

    atom = _parse_term_text(term)[0]
    return atom.var, atom.expr.name, atom.func == "sunab_att"


def _fmt(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:g}"


def aggregate(res: Any, term: str, cohort: str, period: str, att: bool, frame: pd.DataFrame) -> Any:
    """The interaction-weighted result of a fitted saturated ``feols`` (see the module docstring)."""
    names = list(res.params.index)
    prefix = f"{period}::"
    inter = [nm for nm in names if nm.startswith(prefix) and ":cohort::" in nm]
    if not inter:
        raise FormulaError(f"{term}: no cohort x relative-period coefficient could be estimated")
    rows = frame.loc[res.extra["residuals"].index]
    c, p = _num(rows[cohort], cohort), _num(rows[period], period)
    treated, rel = _cells(c, p, cohort)
    counts = pd.DataFrame({"g": c[treated], "l": rel[treated]}).value_counts()
    cells = []
    for nm in inter:
        ell_txt, g_txt = nm[len(prefix):].split(":cohort::")
        ell, g = float(ell_txt), float(g_txt)
        cells.append((nm, ell, g, int(counts.get((g, ell), 0))))
    cell = pd.DataFrame(cells, columns=["term", "rel", "cohort", "n"])
    others = [nm for nm in names if nm not in inter]
    if att:
        post = cell[cell["rel"] >= 0]
        if post.empty:
            raise FormulaError(f"{term}: no post-treatment cell to average")
        groups = [("ATT", post)]
    else:
        groups = [(f"{prefix}{_fmt(ell)}", grp) for ell, grp in cell.groupby("rel", sort=True)]
    new_names = others + [nm for nm, _ in groups]
    W = np.zeros((len(new_names), len(names)))
    pos = {nm: j for j, nm in enumerate(names)}
    for i, nm in enumerate(others):
        W[i, pos[nm]] = 1.0
    weight_rows = []
    for i, (nm, grp) in enumerate(groups, start=len(others)):
        share = grp["n"].to_numpy(float) / grp["n"].sum()
        for t, s in zip(grp["term"], share, strict=True):
            W[i, pos[t]] = s
            weight_rows.append({"term": nm, "cohort_term": t, "weight": s})
    b = W @ res.params.to_numpy()
    V = W @ res.cov.to_numpy() @ W.T
    V = (V + V.T) / 2
    extra = dict(res.extra)
    extra["sunab"] = {"cohort_params": res.params.copy(), "cohort_cov": res.cov.copy(),
                      "cells": cell, "weights": pd.DataFrame(weight_rows), "att": att}
    notes = (*res.audit.notes, f"{term}: Sun-Abraham interaction-weighted estimates from {len(inter)} "
             "cohort x relative-period coefficients, weights = cohort shares of the estimation sample")
    audit = dataclasses.replace(res.audit, notes=notes)
    source = None if res.covariance_source is None else _AggregatedCovariance(
        res.covariance_source, W, extra["sunab"], res.params.index)
    return dataclasses.replace(res, params=pd.Series(b, index=new_names, name=res.params.name),
                               cov=pd.DataFrame(V, index=new_names, columns=new_names), extra=extra,
                               audit=audit, covariance_source=source)


class _AggregatedCovariance:
    """:meth:`Result.vcov` of a Sun-Abraham fit: the saturated fit's new covariance ``V``, then
    ``W V W'`` with the same aggregation weights ``W``."""

    def __init__(self, base: Any, W: np.ndarray, sunab: dict[str, Any], cohort_names: pd.Index) -> None:
        self.base, self.W, self.sunab, self.cohort_names = base, W, sunab, cohort_names

    def __call__(self, vcov: Any, ssc: str) -> Any:
        upd = self.base(vcov, ssc)
        V = self.W @ upd.cov @ self.W.T
        names = self.cohort_names
        sunab = {**self.sunab, "cohort_cov": pd.DataFrame(upd.cov, index=names, columns=names)}
        return dataclasses.replace(upd, cov=(V + V.T) / 2, extra={**upd.extra, "sunab": sunab})
