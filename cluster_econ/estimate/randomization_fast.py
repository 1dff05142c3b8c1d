"""Randomization draws of a feols coefficient and its t statistic without refitting.

Model. ``feols`` estimated :math:`y = \\beta D + W\\gamma + \\text{fixed effects} + u` and the
randomization re-draws the treatment :math:`T` of each randomization unit; the tested column is
linear in it, :math:`D^* = T^*[\\text{unit}] \\cdot m` (``m`` = 1 for ``treated``, = ``post`` for
``treated:post``). Let :math:`M_B` sweep out the largest fixed effect (group means) and
:math:`Z = [M_B S, M_B W]` collect the smaller fixed effects' dummies :math:`S` and the other
regressors, swept by :math:`M_B`. By Frisch-Waugh-Lovell, with :math:`Q` the projection off the
fixed effects and :math:`W`,

.. math::

    \\ddot d = Q D^* = M_B D^* - Z g,\\quad g = (Z'Z)^{+} Z' M_B D^*,\\qquad
    \\hat\\beta^* = \\frac{\\ddot d'\\tilde y}{\\ddot d'\\ddot d},\\qquad
    u^* = \\tilde y - \\hat\\beta^* \\ddot d,

where :math:`\\tilde y = Qy` comes once from the fitted model (its residuals plus
:math:`\\hat\\beta Q D_{obs}`). These are the refit's coefficient and residuals exactly.

Unit level. When every group of the largest fixed effect lies inside one randomization unit,
:math:`M_B D^* = T^*[\\text{unit}]\\, \\tilde m` with :math:`\\tilde m = M_B m`, so

- :math:`Z'M_B D^* = A'T^*` with :math:`A` the unit sums of :math:`\\tilde m z_i`;
- :math:`\\ddot d'\\ddot d = \\sum_u T_u^{*2} c_u - g'Z'Z g` and
  :math:`\\ddot d'\\tilde y = \\sum_u T^*_u a_u` (:math:`\\tilde y \\perp Z`), so the coefficient
  and the iid variance :math:`(\\tilde y'\\tilde y - \\hat\\beta^{*2}\\ddot d'\\ddot d)/(N-K)` need
  only unit-level sums;
- the cluster-robust variance needs the score sums :math:`s_e = \\sum_{i\\in e}\\ddot d_i u^*_i` of
  the cells ``e`` = (randomization unit x cluster), on which :math:`T^*` is constant:
  :math:`s_e = T_e P_e - g'Q_e - \\hat\\beta^* (T_e^2 C_e - 2T_e g'H_e + g'K_e g)` with the cell
  sums :math:`P_e = \\sum \\tilde m_i\\tilde y_i`, :math:`Q_e = \\sum z_i\\tilde y_i`,
  :math:`C_e = \\sum\\tilde m_i^2`, :math:`H_e = \\sum \\tilde m_i z_i`, :math:`K_e = \\sum z_i z_i'`;
  clusters add their cells. When cells are nearly as many as rows (HC1, or clusters that cross
  the units), the rows are used directly: :math:`\\ddot d_i = T_i\\tilde m_i - z_i'g`.

Draws are processed in batches, so these become matrix products over (draws x units) and
(draws x cells) arrays; each draw's numbers do not depend on the other draws in its batch. The
covariance conventions (multiplier, residual degrees of freedom) are the fitted model's, which do
not change with the assignment. When the largest fixed effect is not nested in the units, each
draw is swept by :math:`M_B` on its own (one pass of group means per draw).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from cluster_econ.errors import EstimationError
from cluster_econ.estimate.formula import _design, _fe_column, _term_columns, parse_formula
from cluster_econ.estimate.result import Result

MAX_SMALL_FE_LEVELS = 3000   # fixed-effect levels handled as explicit dummies on the fast path
MAX_STORED = 25_000_000      # doubles the precomputed row or cell arrays may hold (200 MB)
BATCH_ELEMENTS = 4_000_000   # draws x (cells or rows) per batch (32 MB per array)


class NoFastPathError(Exception):
    """The fitted model is outside what the fast path reproduces exactly; refit instead."""


def term_of(spec: Any, param: str, frame: pd.DataFrame) -> str:
    """The formula term that produces the coefficient ``param``."""
    for t in spec.rhs:
        if param == t or param.startswith(t + "[") or param in _term_names(t, frame):
            return t
    raise EstimationError(f"{param!r} is not a coefficient of {spec.text!r}")


def _term_names(term: str, frame: pd.DataFrame) -> list[str]:
    try:
        return list(_term_columns(term, frame.head(200)))
    except Exception:  # a term that needs the full data to expand
        return []


def _nested(codes: np.ndarray, units: np.ndarray) -> bool:
    """True if every group of ``codes`` lies inside one randomization unit."""
    first = np.full(int(codes.max()) + 1, -1, dtype=np.int64)
    first[codes] = units
    return bool(np.array_equal(first[codes], units))


def _largest_swept(fe_codes: list[np.ndarray], units: np.ndarray) -> int | None:
    """Index of the fixed effect swept out by group means: the largest one nested in the units;
    if none nests, none when all are small enough to enter as dummies, else the largest."""
    if not fe_codes:
        return None
    sizes = [int(c.max()) + 1 for c in fe_codes]
    nested = [j for j, c in enumerate(fe_codes) if _nested(c, units)]
    if nested:
        return max(nested, key=lambda j: sizes[j])
    if sum(sizes) <= MAX_SMALL_FE_LEVELS:
        return None
    return int(np.argmax(sizes))


class FastFeols:
    """Coefficient and t statistic of ``param`` of a feols fit for re-drawn unit-level treatments."""

    def __init__(self, res: Result, frame: pd.DataFrame, param: str, treatment: str,
                 unit_of_row: np.ndarray, n_units: int) -> None:
        spec = parse_formula(res.formula)
        if spec.endog or res.model != "feols" or "sunab" in res.extra:
            raise NoFastPathError("not a plain OLS feols result")
        if res.extra.get("weights") is not None or res.extra.get("survey") is not None:
            raise NoFastPathError("weighted regression")
        vi = res.vcov_info
        self.kind = vi.type
        if self.kind not in ("iid", "HC1", "CRV1") or len(vi.cluster_vars) > 1:
            raise NoFastPathError(f"covariance {self.kind} with {len(vi.cluster_vars)} cluster variables")
        term = term_of(spec, param, frame)
        idx = res.extra["residuals"].index
        self.rows = frame.index.get_indexer(idx)
        if (self.rows < 0).any():
            raise NoFastPathError("estimation rows not found in the data")
        sub = frame.iloc[self.rows]
        # the tested column must be linear in the treatment: D = T * m
        col_obs = _term_columns(term, sub)[param]
        m = _term_columns(term, sub.assign(**{treatment: 1.0}))[param]
        zero = _term_columns(term, sub.assign(**{treatment: 0.0}))[param]
        t_obs = pd.to_numeric(sub[treatment], errors="coerce").to_numpy(dtype=float)
        if np.any(zero != 0) or not np.allclose(col_obs, t_obs * m, rtol=0, atol=1e-12):
            raise NoFastPathError(f"{param!r} is not proportional to {treatment!r}")
        self.m = np.asarray(m, dtype=float)
        n = len(sub)
        self.n = n
        fe_codes = [pd.factorize(_fe_column(sub, f))[0].astype(np.int64) for f in spec.fixed_effects]
        self.units = unit_of_row[self.rows]
        if (self.units < 0).any():
            raise NoFastPathError("estimation rows without a randomization unit")
        self.n_units = n_units
        big = _largest_swept(fe_codes, self.units)
        self.B: np.ndarray | None = fe_codes.pop(big) if big is not None else None
        if self.B is not None:
            self.nB = np.bincount(self.B).astype(float)
        sizes = [int(c.max()) + 1 for c in fe_codes]
        if sum(sizes) > MAX_SMALL_FE_LEVELS:
            raise NoFastPathError("the smaller fixed effects have too many levels")
        self.small = fe_codes
        self.small_sizes = sizes
        # other regressors (all columns of the design but the tested one), swept by B
        others = [c for c in res.params.index if c != param]
        W = _design(spec.rhs, sub, spec.intercept)[others].to_numpy(dtype=float) if others else np.empty((n, 0))
        self.Wb = np.column_stack([self._mb(W[:, j]) for j in range(W.shape[1])]) if W.shape[1] else W
        self.p = sum(sizes) + self.Wb.shape[1]
        self.G = self._gram(n)
        self.Ginv = np.linalg.pinv(self.G, rcond=1e-12, hermitian=True)
        # y residualised on everything but the tested column: u + beta * Q D_obs
        beta = float(res.params[param])
        d_obs = self.qd(t_obs * self.m)
        self.ytil = res.extra["residuals"].to_numpy(dtype=float) + beta * d_obs
        check = float(d_obs @ self.ytil) / float(d_obs @ d_obs)
        if not np.isclose(check, beta, rtol=1e-6, atol=1e-10 * max(1.0, abs(beta))):
            raise NoFastPathError(f"fast-path check failed ({check} vs {beta})")
        self.mult = float(vi.details.get("multiplier", 1.0))
        self.denominator = float(vi.details.get("denominator", n))
        self.cl = (pd.factorize(sub[vi.cluster_vars[0]])[0].astype(np.int64) if vi.cluster_vars else None)
        self._unit_level()

    # -- the projections ------------------------------------------------------------------------
    def _mb(self, x: np.ndarray) -> np.ndarray:
        """Sweep out the largest fixed effect (identity without fixed effects)."""
        if self.B is None:
            return np.array(x, dtype=float)
        return x - (np.bincount(self.B, weights=x, minlength=len(self.nB)) / self.nB)[self.B]

    def _zt(self, x: np.ndarray) -> np.ndarray:
        """Z' x for Z = [small fixed-effect dummies swept by B, W swept by B]."""
        parts = [np.bincount(c, weights=x, minlength=L) for c, L in zip(self.small, self.small_sizes, strict=True)]
        parts.append(self.Wb.T @ x)
        return np.concatenate(parts)

    def _z(self, g: np.ndarray) -> np.ndarray:
        """Z g (small-FE dummies times their coefficients, swept by B, plus W_B g_w)."""
        out = np.zeros(self.n)
        pos = 0
        for c, L in zip(self.small, self.small_sizes, strict=True):
            out += g[pos:pos + L][c]
            pos += L
        out = self._mb(out)
        if self.Wb.shape[1]:
            out += self.Wb @ g[pos:]
        return out

    def _small_dummies(self) -> sparse.csr_matrix | None:
        if not self.small:
            return None
        offs = np.cumsum([0, *self.small_sizes])
        rows = np.concatenate([np.arange(self.n)] * len(self.small))
        cols = np.concatenate([c + o for c, o in zip(self.small, offs[:-1], strict=True)])
        return sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(self.n, int(offs[-1])))

    def _gram(self, n: int) -> np.ndarray:
        """Z'Z from sparse cross-tabs (S'M_B S = S'S - S'B diag(1/n_B) B'S), never forming the
        n x levels dummy matrix."""
        S = self._small_dummies()
        if S is None:
            return self.Wb.T @ self.Wb
        Gss = (S.T @ S).toarray()
        if self.B is not None:
            Bm = sparse.csr_matrix((np.ones(n), (np.arange(n), self.B)), shape=(n, len(self.nB)))
            BS = (Bm.T @ S).tocsr()
            Gss -= (BS.T @ sparse.diags(1 / self.nB) @ BS).toarray()
        Gsw = S.T @ self.Wb if self.Wb.shape[1] else np.empty((S.shape[1], 0))
        Gww = self.Wb.T @ self.Wb
        return np.block([[Gss, Gsw], [Gsw.T, Gww]])

    def _z_dense(self) -> np.ndarray:
        """Z as an (n x p) array (small fixed-effect dummies minus their B-group shares)."""
        blocks = []
        for c, L in zip(self.small, self.small_sizes, strict=True):
            Zs = np.zeros((self.n, L))
            Zs[np.arange(self.n), c] = 1.0
            if self.B is not None:
                share = np.bincount(self.B * L + c, minlength=len(self.nB) * L).reshape(-1, L) / self.nB[:, None]
                Zs -= share[self.B]
            blocks.append(Zs)
        blocks.append(self.Wb)
        return np.hstack(blocks) if blocks else np.empty((self.n, 0))

    def qd(self, D: np.ndarray) -> np.ndarray:
        d = self._mb(D)
        if self.G.shape[0] == 0:
            return d
        return d - self._z(self.Ginv @ self._zt(d))

    # -- unit-level set-up ---------------------------------------------------------------------
    def _unit_level(self) -> None:
        """Precompute the unit, cell or row arrays of the batched route when the largest fixed
        effect nests in the randomization units; otherwise stay on the per-draw route."""
        self.unit_ok = self.B is None or _nested(self.B, self.units)
        if not self.unit_ok:
            return
        n, p, m_units = self.n, self.p, self.n_units
        mt = self._mb(self.m)
        self.mt = mt
        self.a = np.bincount(self.units, weights=self.m * self.ytil, minlength=m_units)
        self.c = np.bincount(self.units, weights=mt * mt, minlength=m_units)
        self.yy = float(self.ytil @ self.ytil)
        # A = unit sums of m~ z_i; for the small fixed effects m~ sums to zero within each group of
        # B, so their part is the unit-by-level cross-tab of m~ (sparse)
        blocks = [sparse.csr_matrix((mt, (self.units, c)), shape=(m_units, L))
                  for c, L in zip(self.small, self.small_sizes, strict=True)]
        if self.Wb.shape[1]:
            blocks.append(sparse.csr_matrix(np.column_stack(
                [np.bincount(self.units, weights=mt * self.Wb[:, j], minlength=m_units)
                 for j in range(self.Wb.shape[1])])))
        A = sparse.hstack(blocks).tocsr() if blocks else sparse.csr_matrix((m_units, 0))
        self.A = A.toarray() if m_units * p <= MAX_STORED else A
        self.score_route: str | None = None
        if self.kind == "iid" or n * p > MAX_STORED:
            return
        Z = self._z_dense()
        # cells: (unit x cluster) for CRV1, rows for HC1
        if self.kind == "CRV1":
            n_cl = int(self.cl.max()) + 1
            cell_ids, cell_of_row = np.unique(self.units * n_cl + self.cl, return_inverse=True)
            cell_of_row = cell_of_row.ravel()
            unit_of_cell, cl_of_cell = cell_ids // n_cl, cell_ids % n_cl
        else:
            cell_of_row, unit_of_cell, cl_of_cell, n_cl = np.arange(n), self.units, None, n
        E = len(unit_of_cell)
        pp = p * (p + 1) // 2
        cost_cells, cost_rows = E * (pp + 2 * p + 10), n * (p + 8)
        self.to_clusters = None
        if cl_of_cell is not None and not (n_cl == E and np.array_equal(cl_of_cell, np.arange(E))):
            self.to_clusters = sparse.csr_matrix((np.ones(E), (np.arange(E), cl_of_cell)), shape=(E, n_cl))
        if cost_cells < cost_rows and E * (pp + 2 * p + 3) <= MAX_STORED:
            ind = sparse.csr_matrix((np.ones(n), (cell_of_row, np.arange(n))), shape=(E, n))
            self.cell_unit = unit_of_cell
            self.P = np.bincount(cell_of_row, weights=mt * self.ytil, minlength=E)
            self.C = np.bincount(cell_of_row, weights=mt * mt, minlength=E)
            self.Q = np.asarray(ind @ (Z * self.ytil[:, None]))
            self.H = np.asarray(ind @ (Z * mt[:, None]))
            self.K = (np.hstack([np.asarray(ind @ (Z[:, j:] * Z[:, j:j + 1])) for j in range(p)]) if p
                      else np.empty((E, 0)))
            iu = np.triu_indices(p)
            self.pair = (iu[0], iu[1], np.where(iu[0] == iu[1], 1.0, 2.0))
            self.score_route = "cells"
            self.chunk = int(np.clip(BATCH_ELEMENTS // max(E, 1), 1, 256))
        else:
            # rows sorted by unit, so that a draw's row-level treatment is np.repeat of T
            order = np.argsort(self.units, kind="stable")
            self.Zt = np.ascontiguousarray(Z[order].T)
            self.row_mt, self.row_y = mt[order], self.ytil[order]
            self.row_counts = np.bincount(self.units, minlength=m_units)
            self.score_route = "rows"
            self.row_cluster = None
            if self.kind == "CRV1":
                self.row_cluster = sparse.csr_matrix((np.ones(n), (np.arange(n), self.cl[order])), shape=(n, n_cl))
            self.chunk = int(np.clip(BATCH_ELEMENTS // max(n, 1), 1, 256))

    def batched(self, statistic: str) -> bool:
        """True when draws of ``statistic`` go through the batched (unit-level) route."""
        return self.unit_ok and (statistic == "coef" or self.kind == "iid" or self.score_route is not None)

    def batch_size(self, statistic: str) -> int:
        """Draws per batch (fixed by the data, so results never depend on the machine)."""
        if statistic == "coef" or self.kind == "iid":
            return int(np.clip(BATCH_ELEMENTS // max(self.n_units, 1), 1, 256))
        return self.chunk

    # -- batched draws -------------------------------------------------------------------------
    def batch(self, T: np.ndarray, statistic: str) -> np.ndarray:
        """The statistic for each row of ``T`` (draws x randomization units)."""
        T = np.ascontiguousarray(T, dtype=float)
        v = np.asarray(T @ self.A) if isinstance(self.A, np.ndarray) else np.asarray((self.A.T @ T.T).T)
        g = v @ self.Ginv
        scale = (T * T) @ self.c
        den = scale - np.einsum("ij,ij->i", v, g)
        num = T @ self.a
        ok = den > 1e-12 * np.maximum(scale, 1e-300)
        b = np.where(ok, num / np.where(ok, den, 1.0), np.nan)
        if statistic == "coef":
            return b
        if self.kind == "iid":
            var = (self.yy - b * b * den) / self.denominator / den
        else:
            b0 = np.where(ok, b, 0.0)
            S = self._cell_scores(T, g, b0) if self.score_route == "cells" else self._row_scores(T, g, b0)
            var = self.mult * np.einsum("ij,ij->i", S, S) / (den * den)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(ok & (var > 0), b / np.sqrt(np.where(var > 0, var, 1.0)), np.nan)

    def _cell_scores(self, T: np.ndarray, g: np.ndarray, b: np.ndarray) -> np.ndarray:
        """(draws x clusters) sums of the scores, from the cell sums."""
        Te = T[:, self.cell_unit]
        j, k, w = self.pair
        gKg = (g[:, j] * g[:, k] * w) @ self.K.T
        dd2 = Te * Te * self.C - 2.0 * Te * (g @ self.H.T) + gKg
        s = Te * self.P - g @ self.Q.T - b[:, None] * dd2
        return s if self.to_clusters is None else np.asarray((self.to_clusters.T @ s.T).T)

    def _row_scores(self, T: np.ndarray, g: np.ndarray, b: np.ndarray) -> np.ndarray:
        """(draws x rows or clusters) scores from the rows: d_i = T_i m~_i - z_i'g."""
        dd = np.repeat(T, self.row_counts, axis=1)
        dd *= self.row_mt
        dd -= g @ self.Zt
        s = dd * self.row_y
        dd *= dd
        dd *= b[:, None]
        s -= dd  # d_i (y~_i - b d_i)
        return s if self.row_cluster is None else np.asarray((self.row_cluster.T @ s.T).T)

    # -- one draw at a time (largest fixed effect not nested in the units) -----------------------
    def stats(self, t_rows: np.ndarray) -> tuple[float, float]:
        """Coefficient and t statistic for a row-level treatment vector."""
        dd = self.qd(t_rows * self.m)
        den = float(dd @ dd)
        if den <= 1e-14 * max(1.0, float(np.sum((t_rows * self.m) ** 2))):
            return np.nan, np.nan
        b = float(dd @ self.ytil) / den
        u = self.ytil - b * dd
        if self.kind == "iid":
            var = float(u @ u) / self.denominator / den
        elif self.kind == "HC1":
            var = self.mult * float(np.sum((dd * u) ** 2)) / den**2
        else:
            s = np.bincount(self.cl, weights=dd * u)
            var = self.mult * float(s @ s) / den**2
        return b, b / np.sqrt(var) if var > 0 else np.nan
