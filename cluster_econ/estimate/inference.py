"""Wald tests of linear restrictions :math:`R\\beta = q` on any :class:`Result`.

.. math:: W = (R\\hat\\beta - q)'(R\\hat V R')^{-1}(R\\hat\\beta - q)

With residual degrees of freedom in ``result.vcov_info.df_resid`` the statistic reported is
:math:`F = W/r` referred to :math:`F(r, \\text{df\\_resid})`; otherwise :math:`W` is referred to
:math:`\\chi^2(r)`. Restrictions may be written as text (``"a - b = 0; c = 0"``, ``"2*a + b = 1"``):
the text is parsed here by matching coefficient names, numbers, ``+ - *`` and ``=``, never
evaluated.

Written here rather than taken from statsmodels' ``wald_test``: that works on statsmodels'
results only and on its own degrees-of-freedom convention, while this one reads any
:class:`Result` (fixed-effects, survival, bootstrap-free nonlinear models alike) and uses the
covariance and residual degrees of freedom the Result names.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from cluster_econ.errors import FormulaError
from cluster_econ.estimate.result import TestResult

__all__ = ["TestResult", "parse_restrictions", "wald_test"]

_NUM = re.compile(r"(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def _parse_side(text: str, names: list[str]) -> tuple[np.ndarray, float]:
    """Coefficient vector and constant of one side of a restriction."""
    coef = np.zeros(len(names))
    const = 0.0
    by_len = sorted(range(len(names)), key=lambda j: -len(names[j]))
    pos, s = 0, text
    expect_term = True
    sign = 1.0
    while True:
        while pos < len(s) and s[pos].isspace():
            pos += 1
        if pos >= len(s):
            break
        if expect_term:
            if s[pos] in "+-":
                sign *= -1.0 if s[pos] == "-" else 1.0
                pos += 1
                continue
            mult = 1.0
            m = _NUM.match(s, pos)
            if m:
                mult = float(m.group())
                pos = m.end()
                while pos < len(s) and s[pos].isspace():
                    pos += 1
                if pos < len(s) and s[pos] == "*":
                    pos += 1
                    while pos < len(s) and s[pos].isspace():
                        pos += 1
                else:
                    const += sign * mult
                    sign = 1.0
                    expect_term = False
                    continue
            hit = next((j for j in by_len if s.startswith(names[j], pos)), None)
            if hit is None:
                raise FormulaError(f"restriction {text.strip()!r}: no coefficient name at "
                                   f"{s[pos:pos + 20]!r}; coefficients are {', '.join(names)}")
            pos += len(names[hit])
            coef[hit] += sign * mult
            sign = 1.0
            expect_term = False
        else:
            if s[pos] not in "+-":
                raise FormulaError(f"restriction {text.strip()!r}: expected + or - at {s[pos:pos + 20]!r}")
            expect_term = True
    if expect_term and text.strip():
        raise FormulaError(f"restriction {text.strip()!r} ends with an operator")
    return coef, const


def parse_restrictions(text: str, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """``"a - b = 0; c = 0"`` -> (R, q) over the coefficient ``names``."""
    rows, qs = [], []
    for part in text.split(";"):
        if not part.strip():
            continue
        sides = part.split("=")
        if len(sides) != 2:
            raise FormulaError(f"restriction {part.strip()!r} must have exactly one '='")
        lc, lk = _parse_side(sides[0], names)
        rc, rk = _parse_side(sides[1], names)
        row = lc - rc
        if not np.any(row):
            raise FormulaError(f"restriction {part.strip()!r} involves no coefficient")
        rows.append(row)
        qs.append(rk - lk)
    if not rows:
        raise FormulaError("no restriction given")
    return np.vstack(rows), np.array(qs)


def wald_test(result: Any, R: np.ndarray | pd.DataFrame | str,
              q: np.ndarray | float | None = None) -> TestResult:
    """Wald test of ``R @ params = q``.

    Returns
    -------
    TestResult
        ``statistic`` (F or chi-square), ``df`` (the number of restrictions), ``df_denom`` (None
        for chi-square), ``p_value`` and ``distribution`` (``"F"`` or ``"chi2"``); ``details``
        holds ``R`` and ``q``.
    """
    names = list(result.params.index)
    b = result.params.to_numpy(dtype=float)
    V = result.cov.loc[names, names].to_numpy(dtype=float)
    if isinstance(R, str):
        Rm, qv = parse_restrictions(R, names)
        if q is not None:
            qv = np.broadcast_to(np.asarray(q, dtype=float), qv.shape).copy()
    else:
        if isinstance(R, pd.DataFrame):
            Rm = R.reindex(columns=names, fill_value=0.0).to_numpy(dtype=float)
        else:
            Rm = np.atleast_2d(np.asarray(R, dtype=float))
        if Rm.shape[1] != len(names):
            raise FormulaError(f"R has {Rm.shape[1]} columns but the model has {len(names)} coefficients")
        qv = np.zeros(Rm.shape[0]) if q is None else np.broadcast_to(
            np.asarray(q, dtype=float), (Rm.shape[0],)).copy()
    r = Rm.shape[0]
    diff = Rm @ b - qv
    M = Rm @ V @ Rm.T
    try:
        W = float(diff @ np.linalg.solve(M, diff))
    except np.linalg.LinAlgError as exc:
        raise FormulaError("the restrictions are linearly dependent (R V R' is singular)") from exc
    null = R.strip() if isinstance(R, str) and q is None else f"R b = q ({r} restriction{'s' if r > 1 else ''})"
    details = {"R": pd.DataFrame(Rm, columns=names), "q": qv, "covariance": result.vcov_info.describe()}
    df = result.vcov_info.df_resid
    if df is not None:
        F = W / r
        return TestResult("Wald", F, r, float(stats.f.sf(F, r, df)), "F", df_denom=float(df), null=null,
                          details=details)
    return TestResult("Wald", W, r, float(stats.chi2.sf(W, r)), "chi2", null=null, details=details)
