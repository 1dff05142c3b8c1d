"""Dynamic panel GMM: Arellano-Bond difference GMM and Blundell-Bond system GMM (``pgmm``).

The model is

.. math:: y_{it} = \\sum_{l} \\rho_l y_{i,t-l} + x_{it}'\\beta + \\delta_t + \\alpha_i + e_{it},

with :math:`E[e_{it}] = 0`, no serial correlation in :math:`e`, and :math:`\\alpha_i` correlated with
the regressors. First differences remove :math:`\\alpha_i`; the levels
:math:`y_{i,t-2}, y_{i,t-3}, \\dots` (the GMM-style instruments of the formula) are valid
instruments for the differenced equation (Arellano and Bond 1991). System GMM (``"ld"``) adds the
equations in levels, instrumented by lagged first differences (Arellano and Bover 1995; Blundell
and Bond 1998).

Estimator, with :math:`Z_i` the instrument matrix of entity :math:`i` (one row per equation,
one column per moment), :math:`X_i` the transformed regressors and :math:`H` the first-step
weighting (for ``"d"`` the matrix :math:`G` with 2 on the diagonal and -1 beside it; for
``"ld"`` the "full" matrix of plm, :math:`G`, the difference operator and the identity):

- one step: :math:`\\hat\\beta_1 = (X'Z A_1 Z'X)^{-1} X'Z A_1 Z'y`, :math:`A_1 = (\\sum_i Z_i'HZ_i)^{-1}`;
- two steps: :math:`A_2 = (\\sum_i Z_i'\\hat e_{1i}\\hat e_{1i}'Z_i)^{-1}` from the one-step residuals.

Covariances (``robust=True``, the default): one step, the sandwich
:math:`B_1 X'Z A_1 A_2^{-1} A_1 Z'X B_1` with :math:`B_1 = (X'ZA_1Z'X)^{-1}` (robust to
heteroskedasticity and serial correlation within entity); two steps, Windmeijer's (2005)
finite-sample correction :math:`B_2 + DB_2 + B_2D' + DV_1D'`. ``robust=False`` gives the
classical two-step covariance :math:`B_2 = (X'ZA_2Z'X)^{-1}` (what Arellano and Bond printed).

Tests: Sargan-Hansen :math:`J = (\\sum_i Z_i'\\hat e_i)' A_2 (\\sum_i Z_i'\\hat e_i)`, chi-square
with (instruments - coefficients) degrees of freedom (what plm's ``sargan`` and Arellano and Bond
call the Sargan test; with the two-step weights it is Hansen's J); Arellano and Bond's
:math:`m_1`, :math:`m_2` tests of first- and second-order serial correlation in the differenced
residuals, with the covariance chosen by ``robust``.

Conventions (identical to R plm 2.6 ``pgmm`` unless stated): the panel is laid on the full grid
of periods from the first to the last (plm uses the periods present in the data: they differ only
when a whole period is absent); lags across a missing period are missing; a missing instrument is
0 ("missing = 0"); an equation with a missing value is dropped; instrument columns that are zero
for every entity are left out (plm keeps them and counts them in the Sargan degrees of freedom, as
xtabond2 does not); with ``effect="individual"`` the system GMM level equation keeps an intercept
(plm drops it, which leaves the level moments misspecified when the mean effect is not zero);
the level-equation instrument of a GMM term with lags ``a:b`` is :math:`\\Delta x_{t-a+1}` (plm
uses :math:`\\Delta x_{t-1}` whatever ``a``; identical for ``a = 2``).

Why our own code: linearmodels has no dynamic panel GMM, pydynpd is a young single-author package
and R's plm is not Python. The computations work on arrays of shape (entities, equations,
columns), so cross-products are a few BLAS calls instead of one small matrix per entity: the
estimator handles 50,000 firms in seconds (``benchmarks/bench_pgmm.py``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import linalg

from cluster_econ.errors import EstimationError, FormulaError
from cluster_econ.estimate.formula import (
    DynamicSpec,
    _term_columns,
    as_frame,
    parse_dynamic_formula,
)
from cluster_econ.estimate.linear import ENGINE
from cluster_econ.estimate.result import Audit, Result, VcovInfo, data_hash

__all__ = ["pgmm"]

EFFECTS = ("individual", "twoways")
MODELS = {"onestep": "onestep", "twostep": "twostep", "twosteps": "twostep"}
TRANSFORMATIONS = ("d", "ld")
SINGULAR_TOL = 1e-9
MAX_INSTRUMENT_CELLS = 150_000_000   # entities x equations x instruments (1.2 GB of float64)


def pgmm(formula: str, data: Any, entity: str | None = None, time: str | None = None,
         effect: str = "twoways", model: str = "onestep", transformation: str = "d",
         collapse: bool = False, robust: bool = True) -> Result:
    """Arellano-Bond (``transformation="d"``) or Blundell-Bond (``"ld"``) dynamic panel GMM.

    Parameters
    ----------
    formula : str
        plm's ``pgmm`` language: ``"log(emp) ~ lag(log(emp), 1:2) + lag(log(wage), 0:1) +
        log(capital) | lag(log(emp), 2:99)"``. The second part lists the GMM-style instruments
        (lags ``a:b`` of each term, 99 = all available), an optional third part the normal
        instruments (default: every regressor whose variable is not a GMM instrument, with its
        lags). Parsed by :func:`cluster_econ.estimate.formula.parse_dynamic_formula`, never
        evaluated.
    data : DataFrame or Panel
    entity, time : str
        Panel identifiers (default ``enterprise_id`` and ``year`` for a Panel). ``time`` must be
        whole numbers (years); each (entity, time) pair must appear once.
    effect : ``"twoways"`` (period effects, as plm's default) or ``"individual"``.
    model : ``"onestep"`` or ``"twostep"`` (``"twosteps"`` is accepted, as in plm).
    transformation : ``"d"`` (difference GMM) or ``"ld"`` (system GMM).
    collapse : bool
        One instrument column per lag instead of one per lag and period (Roodman 2009).
    robust : bool
        Robust covariance (one step: sandwich; two steps: Windmeijer). ``False`` gives the
        classical two-step covariance; it is not offered for one step (see the module docstring).

    Returns
    -------
    Result
        ``model`` ``"pgmm"``; coefficients named ``lag(term, l)`` (``term`` for lag 0) and, with
        period effects, ``time[period]``. ``stats``: ``n_instruments``, ``sargan``,
        ``sargan_df``, ``sargan_p``, ``ar1``, ``ar1_p``, ``ar2``, ``ar2_p``, ``n_diff_equations``,
        ``n_level_equations``. ``nobs`` counts the differenced equations used (``"d"``) or the
        level equations used (``"ld"``), as xtabond2 does.
    """
    if effect not in EFFECTS:
        raise EstimationError(f"pgmm: effect {effect!r} is not known; use 'individual' or 'twoways'")
    if model not in MODELS:
        raise EstimationError(f"pgmm: model {model!r} is not known; use 'onestep' or 'twostep'")
    model = MODELS[model]
    if transformation not in TRANSFORMATIONS:
        raise EstimationError(f"pgmm: transformation {transformation!r} is not known; use 'd' "
                              "(difference GMM) or 'ld' (system GMM)")
    if not robust and model == "onestep":
        raise EstimationError("pgmm: robust=False is offered for model='twostep' only; the one-step "
                              "classical covariance depends on an error-variance convention that "
                              "differs between programs (use the default robust covariance)")
    is_panel = not isinstance(data, pd.DataFrame)
    frame = as_frame(data)
    if is_panel:
        entity, time = entity or "enterprise_id", time or "year"
    if not entity or not time:
        raise EstimationError("pgmm needs the panel identifiers: pass entity= and time=")
    spec = parse_dynamic_formula(formula)
    for col in (entity, time, *spec.variables()):
        if col not in frame.columns:
            raise FormulaError(f"pgmm: column {col!r} is not in the data")
    if not spec.gmm:
        raise FormulaError(f"pgmm: formula {formula!r} names no GMM instruments")
    grid = _Grid(frame, entity, time)
    design = _build(spec, grid, effect, transformation, collapse)
    fit = _estimate(design, model, robust)
    return _result(spec, grid, design, fit, effect, model, transformation, collapse, robust)


# ----------------------------------------------------------------------------------------------
class _Grid:
    """Entities x periods layout of the data (missing cells are NaN)."""

    def __init__(self, frame: pd.DataFrame, entity: str, time: str) -> None:
        self.frame, self.entity, self.time = frame, entity, time
        self.n_input = len(frame)
        ok = frame[entity].notna().to_numpy() & frame[time].notna().to_numpy()
        self.n_missing_id = int((~ok).sum())
        raw_t = pd.to_numeric(frame[time], errors="coerce").to_numpy(dtype=float)
        bad = ok & (~np.isfinite(raw_t) | (np.round(raw_t) != raw_t))
        if bad.any():
            rows = ", ".join(map(str, frame.index[bad][:5]))
            vals = sorted({str(v) for v in frame[time][bad]})[:5]
            raise EstimationError(f"pgmm: the time column {time!r} must hold whole numbers (years); "
                                  f"{int(bad.sum())} row(s) do not (rows {rows}; values {vals})")
        self.rows = np.flatnonzero(ok)
        codes, self.levels = pd.factorize(frame[entity].to_numpy()[self.rows], sort=True)
        t = raw_t[self.rows].astype(np.int64)
        self.t0 = int(t.min()) if len(t) else 0
        self.T = int(t.max()) - self.t0 + 1 if len(t) else 0
        self.N = len(self.levels)
        if self.T > 200:
            raise EstimationError(f"pgmm: the time column {time!r} spans {self.T} periods "
                                  f"({self.t0} to {self.t0 + self.T - 1}); dynamic panel GMM is for "
                                  "short panels (use consecutive whole-number periods)")
        self.ent, self.per = codes.astype(np.int64), t - self.t0
        flat = self.ent * self.T + self.per
        counts = np.bincount(flat, minlength=self.N * self.T)
        if (counts > 1).any():
            dup = np.flatnonzero(counts > 1)
            ex = ", ".join(f"({self.levels[d // self.T]!r}, {self.t0 + d % self.T})" for d in dup[:5])
            raise EstimationError(f"pgmm: {int((counts[dup] - 1).sum())} duplicate ({entity}, {time}) "
                                  f"row(s) in {len(dup)} entity-period cell(s), for example {ex}; "
                                  "each entity may appear once per period")
        self.flat = flat
        self._memo: dict[str, np.ndarray] = {}

    def values(self, term: str) -> np.ndarray:
        """(N, T) values of a term; missing and non-finite cells are NaN."""
        if term not in self._memo:
            sub = self.frame.iloc[self.rows]
            col = np.asarray(_term_columns(term, sub)[term], dtype=float)
            col = np.where(np.isfinite(col), col, np.nan)
            out = np.full(self.N * self.T, np.nan)
            out[self.flat] = col
            self._memo[term] = out.reshape(self.N, self.T)
        return self._memo[term]

    def lagged(self, term: str, lag: int) -> np.ndarray:
        v = self.values(term)
        if lag == 0:
            return v
        out = np.full_like(v, np.nan)
        if lag < self.T:
            out[:, lag:] = v[:, :-lag]
        return out

    def label(self, period: int) -> str:
        return f"{self.time}[{self.t0 + period}]"


def _name(term: str, lag: int) -> str:
    return term if lag == 0 else f"lag({term}, {lag})"


class _Design:
    """Stacked equations per entity: y (N, R), X (N, R, K), Z (N, R, L), H (R, R)."""

    y: np.ndarray
    X: np.ndarray
    Z: np.ndarray
    H: np.ndarray
    names: list[str]
    n_diff_rows: int
    used: np.ndarray          # (N, R) bool: equation observed
    n_zero_instruments: int
    n_time_effects: int


def _G(r: int) -> np.ndarray:
    return 2 * np.eye(r) - np.eye(r, k=1) - np.eye(r, k=-1)


def _build(spec: DynamicSpec, grid: _Grid, effect: str, transformation: str, collapse: bool) -> _Design:
    T, N = grid.T, grid.N
    main_maxlag = max((max(lt.lags) for lt in spec.regressors), default=0)
    gmm_minlag = min(min(lt.lags) for lt in spec.gmm)
    tl1 = max(main_maxlag + 1, gmm_minlag)   # first period (0-based) of the differenced equations
    tl2 = tl1 - 1                             # first period of the level equations
    r1 = T - tl1
    if r1 < 1:
        raise EstimationError(f"pgmm: the data span {T} periods, too few for lags up to {main_maxlag} "
                              f"and GMM instruments from lag {gmm_minlag}")
    system = transformation == "ld"
    r2 = T - tl2 if system else 0
    dper = np.arange(tl1, T)          # periods of the differenced equations
    lper = np.arange(tl2, T)          # periods of the level equations

    def diff_rows(col: np.ndarray) -> np.ndarray:
        return col[:, dper] - col[:, dper - 1]

    # regressors
    names: list[str] = []
    xd: list[np.ndarray] = []
    xl: list[np.ndarray] = []
    for lt in spec.regressors:
        for g in lt.lags:
            c = grid.lagged(lt.term, g)
            names.append(_name(lt.term, g))
            xd.append(diff_rows(c))
            if system:
                xl.append(c[:, lper])
    yv = grid.values(spec.lhs)
    yd = diff_rows(yv)
    yl = yv[:, lper] if system else np.zeros((N, 0))
    # period effects (and the level-equation intercept)
    td_d: list[np.ndarray] = []
    td_l: list[np.ndarray] = []
    if not system and effect == "twoways":
        for j, p in enumerate(dper):
            col = np.zeros(r1)
            col[j] = 1.0
            if j + 1 < r1:
                col[j + 1] = -1.0
            td_d.append(np.broadcast_to(col, (N, r1)))
            names.append(grid.label(int(p)))
    elif system:
        periods = list(lper[1:]) if effect == "twoways" else []
        lev_cols = [np.ones(r2)] + [(lper == p).astype(float) for p in periods]
        for p, lc in zip([None, *periods], lev_cols, strict=True):
            td_l.append(np.broadcast_to(lc, (N, r2)))
            td_d.append(np.broadcast_to(lc[1:] - lc[:-1], (N, r1)))
            names.append("Intercept" if p is None else grid.label(int(p)))
    n_td = len(td_d)
    K = len(names)
    R = r1 + r2
    X = np.zeros((N, R, K))
    y = np.zeros((N, R))
    y[:, :r1] = yd
    for k, c in enumerate(xd):
        X[:, :r1, k] = c
    for k, c in enumerate(td_d):
        X[:, :r1, len(xd) + k] = c
    if system:
        y[:, r1:] = yl
        for k, c in enumerate(xl):
            X[:, r1:, k] = c
        for k, c in enumerate(td_l):
            X[:, r1:, len(xl) + k] = c
    used = np.isfinite(y) & np.isfinite(X).all(axis=2)
    # instruments: list of (N, R) columns
    zcols: list[np.ndarray] = []

    def new_col() -> np.ndarray:
        zcols.append(np.zeros((N, R)))
        return zcols[-1]

    for lt in spec.gmm:
        a, b = min(lt.lags), max(lt.lags)
        v = grid.values(lt.term)
        if collapse:
            width = min(T - a, b + 1 - a)
            for s in range(a, a + width):
                col = new_col()
                ok = dper - s >= 0
                col[:, :r1][:, ok] = v[:, dper[ok] - s]
        else:
            for r, t in enumerate(dper):
                for s in range(a, min(b, t) + 1):
                    new_col()[:, r] = v[:, t - s]
        if system:
            # level equation: the first difference of the term at lag a - 1
            ok = lper - a >= 0
            dv = v[:, lper[ok] - a + 1] - v[:, lper[ok] - a]
            rows = r1 + np.flatnonzero(ok)
            if collapse:
                col = new_col()
                col[:, rows] = dv
            else:
                for j, r in enumerate(rows):
                    new_col()[:, r] = dv[:, j]
    for c in td_l if system else td_d:
        col = new_col()
        if system:
            col[:, r1:] = c
        else:
            col[:, :r1] = c
    normal = spec.normal
    if normal is None:
        gmm_terms = {lt.term for lt in spec.gmm}
        normal = tuple(lt for lt in spec.regressors if lt.term not in gmm_terms)
    for lt in normal:
        for g in lt.lags:
            c = grid.lagged(lt.term, g)
            new_col()[:, :r1] = diff_rows(c)
            if system:
                new_col()[:, r1:] = c[:, lper]
    # an equation with a missing value is dropped; a missing instrument is 0
    y = np.where(used, y, 0.0)
    X = np.where(used[:, :, None], X, 0.0)
    if N * R * len(zcols) > MAX_INSTRUMENT_CELLS:
        raise EstimationError(
            f"pgmm: {len(zcols)} instrument columns for {N} entities and {R} equations each would need "
            f"{N * R * len(zcols) * 8 / 1e9:.1f} GB; with {T} periods the GMM-style instruments grow with "
            "the square of T: use collapse=True or a shorter lag range such as lag(y, 2:4)")
    Z = np.empty((N, R, len(zcols)))
    for j, c in enumerate(zcols):
        Z[:, :, j] = np.where(used & np.isfinite(c), c, 0.0)
    nonzero = np.abs(Z).reshape(N * R, -1).max(axis=0) > 0 if Z.size else np.zeros(0, bool)
    n_zero = int((~nonzero).sum())
    if n_zero:
        Z = Z[:, :, nonzero]
    if system:
        H = np.zeros((R, R))
        H[:r1, :r1] = _G(r1)
        fd = -np.eye(r1, r2) + np.eye(r1, r2, k=1)
        H[:r1, r1:] = fd
        H[r1:, :r1] = fd.T
        H[r1:, r1:] = np.eye(r2)
    else:
        H = _G(r1)
    d = _Design()
    d.y, d.X, d.Z, d.H, d.names = y, X, Z, H, names
    d.n_diff_rows, d.used, d.n_zero_instruments, d.n_time_effects = r1, used, n_zero, n_td
    d.first_period = tl1  # type: ignore[attr-defined]
    return d


# ----------------------------------------------------------------------------------------------
def _inverse(M: np.ndarray, what: str, notes: list[str]) -> np.ndarray:
    M = (M + M.T) / 2
    ev = np.linalg.eigvalsh(M)
    if ev.min() < SINGULAR_TOL * max(1.0, abs(ev).max()):
        notes.append(f"the {what} is singular: a generalized inverse is used")
        return np.linalg.pinv(M)
    return linalg.inv(M)


def _moments(Z: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Per-entity Z_i' v_i: (N, L) from Z (N, R, L) and v (N, R) (a C loop: no per-entity BLAS call)."""
    return np.einsum("nr,nrl->nl", v, Z)


def _estimate(d: _Design, model: str, robust: bool) -> dict[str, Any]:
    N, R, K = d.X.shape
    L = d.Z.shape[2]
    if L < K:
        raise EstimationError(f"pgmm: {L} instruments for {K} coefficients: the model is not identified")
    notes: list[str] = []
    Zf = d.Z.reshape(N * R, L)
    Xf = d.X.reshape(N * R, K)
    ZX = Zf.T @ Xf
    Zy = Zf.T @ d.y.reshape(-1)
    # H is banded (a few non-zeros per row): H Z_i for every entity by shifted sums, then one product
    HZ = np.zeros_like(d.Z)
    for r, s in zip(*np.nonzero(d.H), strict=True):
        HZ[:, r] += d.H[r, s] * d.Z[:, s]
    A1 = _inverse(Zf.T @ HZ.reshape(N * R, L), "first-step weighting matrix (sum of Z'HZ)", notes)
    del HZ

    def step(A: np.ndarray, second: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        M = ZX.T @ A @ ZX
        if np.linalg.matrix_rank(M) < K:
            if second:
                n_ent = int((np.abs(S1).sum(axis=1) > 0).sum())
                raise EstimationError(
                    f"pgmm: the two-step weighting matrix (sum over entities of Z'ee'Z) has rank at most "
                    f"{n_ent}, the number of entities, for {L} instruments and {K} coefficients: two-step "
                    "GMM is not identified; use model='onestep', collapse=True or fewer lags")
            raise EstimationError("pgmm: the regressors are collinear given the instruments "
                                  f"(rank {np.linalg.matrix_rank(M)} < {K} coefficients)")
        B = linalg.inv((M + M.T) / 2)
        b = B @ (ZX.T @ A @ Zy)
        e = d.y - (Xf @ b).reshape(N, R)
        return b, B, e

    b1, B1, e1 = step(A1)
    S1 = _moments(d.Z, e1)
    A2 = _inverse(S1.T @ S1, "second-step weighting matrix (sum of Z'ee'Z)", notes)
    V1 = B1 @ (ZX.T @ A1 @ (S1.T @ S1) @ A1 @ ZX) @ B1
    if model == "onestep":
        b, e, A, B, V = b1, e1, A1, B1, V1
        vtype = "robust one-step"
    else:
        b2, B2, e2 = step(A2, second=True)
        b, e, A, B = b2, e2, A2, B2
        if robust:
            S2 = _moments(d.Z, e2)
            a = A2 @ S2.sum(axis=0)
            c = A2 @ ZX @ B2
            S1c, S1a = S1 @ c, S1 @ a
            D = np.empty((K, K))
            for k in range(K):
                Pk = _moments(d.Z, d.X[:, :, k])
                D[:, k] = (Pk @ c).T @ S1a + S1c.T @ (Pk @ a)
            V = B2 + D @ B2 + B2 @ D.T + D @ V1 @ D.T
            vtype = "Windmeijer"
        else:
            V = B2
            vtype = "two-step classical"
    V = (V + V.T) / 2
    z = _moments(d.Z, e).sum(axis=0)
    sargan = float(z @ A2 @ z)
    ar = {}
    for order in (1, 2):
        if d.n_diff_rows > order:
            ar[order] = _ar_test(d, e, order, ZX, A, B, V)
    return {"b": b, "V": V, "e": e, "sargan": sargan, "df": L - K, "ar": ar, "notes": notes,
            "vtype": vtype, "L": L}


def _ar_test(d: _Design, e: np.ndarray, order: int, ZX: np.ndarray, A: np.ndarray, B: np.ndarray,
             V: np.ndarray) -> float:
    """Arellano-Bond m statistic of serial correlation of the given order in the differenced
    residuals (plm's ``mtest`` formula, with the covariance ``V`` of the estimates)."""
    r1 = d.n_diff_rows
    ed = np.zeros_like(e)
    ed[:, :r1] = e[:, :r1]
    el = np.zeros_like(e)
    el[:, order:r1] = e[:, :r1 - order]
    q = np.sum(ed * el, axis=1)                          # e_i' e_i,-order per entity
    num = float(q.sum())
    N, R, K = d.X.shape
    EX = el.reshape(-1) @ d.X.reshape(N * R, K)
    ZVE = (_moments(d.Z, ed) * q[:, None]).sum(axis=0)
    denom = float(q @ q - 2 * EX @ B @ ZX.T @ A @ ZVE + EX @ V @ EX)
    return num / np.sqrt(denom) if denom > 0 else float("nan")


def _result(spec: DynamicSpec, grid: _Grid, d: _Design, fit: dict[str, Any], effect: str, model: str,
            transformation: str, collapse: bool, robust: bool) -> Result:
    from scipy import special

    names = d.names
    r1 = d.n_diff_rows
    used = d.used
    n_diff = int(used[:, :r1].sum())
    n_level = int(used[:, r1:].sum())
    nobs = n_level if transformation == "ld" else n_diff
    entities = int(used.any(axis=1).sum())
    stats: dict[str, float] = {
        "n_instruments": float(fit["L"]),
        "sargan": fit["sargan"], "sargan_df": float(fit["df"]),
        "sargan_p": float(special.chdtrc(fit["df"], fit["sargan"])) if fit["df"] > 0 else float("nan"),
        "n_diff_equations": float(n_diff), "n_level_equations": float(n_level),
    }
    for order, m in fit["ar"].items():
        stats[f"ar{order}"] = float(m)
        stats[f"ar{order}_p"] = float(2 * special.ndtr(-abs(m))) if np.isfinite(m) else float("nan")
    notes = list(fit["notes"])
    if d.n_zero_instruments:
        notes.append(f"{d.n_zero_instruments} instrument column(s) zero for every entity left out")
    notes.append(f"{fit['L']} instruments for {len(names)} coefficients "
                 f"({'collapsed' if collapse else 'one column per lag and period'})")
    if fit["L"] > entities:
        import warnings
        msg = (f"{fit['L']} instruments for {entities} entities: with more instruments than entities the "
               "Sargan-Hansen test loses power and two-step estimates lean toward OLS (Roodman 2009); "
               "use collapse=True or fewer lags")
        notes.append(msg)
        warnings.warn(f"pgmm: {msg}", stacklevel=3)
    # what happened to the input rows: rows whose own equation is not used
    first = d.first_period if transformation == "d" else d.first_period - 1  # type: ignore[attr-defined]
    own = used[:, :r1] if transformation == "d" else used[:, r1:]
    cell_used = np.zeros((grid.N, grid.T), dtype=bool)
    cell_used[:, first:first + own.shape[1]] = own
    row_used = cell_used.reshape(-1)[grid.flat]
    before = grid.per < first
    dropped: dict[str, int] = {}
    if grid.n_missing_id:
        dropped["missing entity or time"] = grid.n_missing_id
    if before.any():
        dropped["first periods (lost to lags and differencing)"] = int(before.sum())
    other = int((~row_used & ~before).sum())
    if other:
        dropped["missing value, lag or gap"] = other
    vinfo = VcovInfo(type=fit["vtype"], ssc="none", cluster_vars=(grid.entity,), n_clusters=(entities,),
                     df_resid=None, details={"model": model, "transformation": transformation})
    params = pd.Series(fit["b"], index=names, name="coef")
    cov = pd.DataFrame(fit["V"], index=names, columns=names)
    extra = {"entity": grid.entity, "time": grid.time, "effect": effect, "transformation": transformation,
             "gmm_model": model, "collapse": collapse, "n_time_effects": d.n_time_effects,
             "fixed_effects": (grid.entity, grid.time) if effect == "twoways" else (grid.entity,)}
    return Result(params=params, cov=cov, nobs=nobs, vcov_info=vinfo, formula=spec.text, model="pgmm",
                  engine=ENGINE, audit=Audit(n_input=grid.n_input, dropped=dropped, notes=tuple(notes)),
                  data_hash=data_hash(d.y, d.X, d.Z), groups={grid.entity: entities}, stats=stats,
                  extra=extra)

