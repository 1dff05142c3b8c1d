"""Production-function estimation with proxy variables: Olley-Pakes, Levinsohn-Petrin, Ackerberg-Caves-Frazer.

The model (value added, Cobb-Douglas in logs) for enterprise ``i`` in year ``t``::

    y_it = b_f' f_it + b_s' s_it + omega_it + eps_it

``y`` is log output (log real value added), ``f`` the *free* inputs (log labour, chosen after
productivity ``omega`` is known), ``s`` the *state* inputs (log capital, decided a period ahead),
``eps`` a shock unknown to the firm when it chooses inputs. Productivity is a first-order Markov
process, ``omega_it = g(omega_i,t-1) + xi_it``, with ``g`` linear (AR(1), ``lom_degree=1``) or a
polynomial of degree ``lom_degree`` with an intercept. The firm's demand for a *proxy* input is
strictly increasing in ``omega`` and can be inverted, so ``omega`` is a function of observables.

``method="acf"`` (Ackerberg, Caves and Frazer 2015, value-added version)
    First stage: ``y = Phi(f, s, proxy) + c'controls + eps`` with ``Phi`` a complete polynomial of
    degree ``poly_degree`` (all monomials, interactions included), by OLS. Second stage: for a
    trial ``b = (b_f, b_s)`` let ``omega(b) = Phi - b_f' f - b_s' s``; regress ``omega_t(b)`` on
    ``[1, omega_t-1(b), ..., omega_t-1(b)**lom_degree]`` to get ``xi(b)``; ``b`` minimises the
    sum of squares of the standardised sample moments ``E[xi * s_t]``, ``E[xi * f_t-1]`` and
    ``E[xi * s_t-1]`` (one-step GMM, identity weight on moments scaled by the instruments' standard
    deviations; Levenberg-Marquardt from the OLS values and four other starting points, the
    smallest objective kept). The first two are ACF's moments; the third, also implied by the
    timing assumptions, over-identifies the model and removes the spurious root (labour
    coefficient far above the truth, productivity without persistence) that the just-identified
    moments have on some of the package's simulated panels. Where labour is a linear function of
    productivity plus a serially independent shock (as in ``cluster_econ.simulate``), a second
    root remains that no moment dated ``t-1`` excludes: the ``b_f`` at which ``omega(b)`` keeps
    only labour's own shock, which nothing dated ``t-1`` predicts and which has no persistence.
    When several starting points reach roots that fit the moments equally well (within sampling
    noise), the root whose productivity is most persistent (largest coefficient on
    ``omega_t-1`` in ``g``) is kept, and every root found is listed in ``audit.notes``: proxy
    methods rest on productivity being persistent. The rule fails when labour has persistent
    drivers of its own that are not productivity (in the simulator: the scale of innovators that
    grow, switch ``no_large_firms`` off); then the notes show competing persistent roots and the
    estimate should not be trusted. An instrument that shifts labour but not productivity
    separates the roots: on the simulator, last year's output price (``lag_instruments=
    ["log_output_price"]`` on a Panel) leaves a single root, and with the innovation gain of the
    quality-improvement phase in the law of motion (``lom_controls``: the innovator indicator
    times the phase) ACF recovers the true elasticities on the full model (see the tests).

``method="lp"`` (Levinsohn and Petrin 2003; proxy: log materials) and ``method="op"`` (Olley
and Pakes 1996; proxy: investment in levels, ``log`` taken inside)
    First stage: ``y = b_f' f + Phi(s, proxy) + c'controls + eps`` (``Phi`` a complete polynomial
    in the state inputs and the proxy), which gives ``b_f``. Second stage: with ``y* = y - b_f' f
    - c'controls`` and ``omega_t-1(b_s) = Phi_t-1 + ... - b_s' s_t-1`` (the first-stage fitted
    value net of the free inputs), ``b_s`` minimises ``sum (y*_t - b_s' s_t - g(omega_t-1(b_s)))**2``
    with ``g`` concentrated out by OLS (the non-linear least squares of Olley and Pakes; levpet's
    default second stage is the same idea). For OP, rows with zero (or negative) investment cannot
    be inverted: they are left out of the first stage and cannot serve as the lagged observation
    in the second stage (counted in the audit); they do count as current observations. The
    Olley-Pakes correction for selection on exit (``exit=``) is **not implemented**: firms in
    the simulator exit on size and innovation, not on productivity given the state, and passing
    ``exit`` raises an error rather than silently ignoring it.

Controls enter the first stage linearly and are treated as shifters of output (for example year
dummies or a price index), not of productivity: their fitted contribution is removed before the
second stage. Lags follow calendar time: the lag of a row is the same entity's row of year ``t-1``;
a lag across a year the entity was not observed is missing, and such rows are counted.

Standard errors come from a seeded block bootstrap over entities (or over ``vcov_cluster``
groups, which must nest the entities): ``bootstrap`` draws of whole histories with replacement,
each draw re-estimating both stages; the covariance is that of the draws (``ddof=1``). Draws in
which an estimation fails are counted in ``vcov_info.details``.

On the functional dependence problem (Ackerberg, Caves and Frazer): when labour is chosen
after, or together with, the proxy and both depend on the same unobservables, the LP/OP first
stage cannot identify ``b_f`` (labour carries no variation beyond ``Phi``). This happens in
``cluster_econ.simulate``, whose materials are Leontief in planned output (materials move
one for one with ``b_l l + b_k k + omega``): LP then reports a labour coefficient near zero.
ACF is the estimator to use on such data; LP is correct when the proxy does not respond to the
free input (see the tests).

Practical limits, measured on the simulator. Several currencies: monetary logs then carry a
country constant; pass country dummies as ``lom_controls`` (a dummy's lag is itself), which on
the twelve-cluster demo universe (five countries, survey realism off) gives labour 0.569 (s.e.
0.010) and capital 0.304 (0.006) against 0.6 and 0.3. Measurement error in the proxy breaks the
inversion: with the simulator's survey realism on (5-12% multiplicative error on money) ACF's
estimates are meaningless (labour -0.34), while missing values, attrition and recall gaps alone
(error switched off) leave them intact (0.568, 0.308). Check a survey's measurement before
trusting proxy estimates.

Why our own code: no maintained Python library estimates OP, LP or ACF (the references are
Stata's ``prodest``/``levpet``/``acfest`` and R's ``prodest``); the algorithm is short, its
numerics (OLS and a small least-squares problem) come from numpy and scipy, and writing it here
lets it read the canonical panel, respect calendar gaps, count dropped rows and return the
package's Result.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from cluster_econ._version import __version__
from cluster_econ.errors import EstimationError, SchemaError
from cluster_econ.estimate.result import Audit, Result, VcovInfo, data_hash

__all__ = ["prodest"]

ENGINE = f"cluster_econ {__version__}"
METHODS = ("acf", "lp", "op")

# names of the columns built from a Panel
PANEL_COLUMNS = {
    "output": "log_value_added",
    "free": "log_employment",
    "state": "log_capital",
    "proxy_materials": "log_materials",
    "proxy_investment": "investment",
}


# --------------------------------------------------------------------------------------------
# polynomial
# --------------------------------------------------------------------------------------------
def poly_terms(names: Sequence[str], degree: int) -> list[tuple[int, ...]]:
    """Exponent tuples of every monomial of total degree 1..``degree`` in ``names`` (no constant),
    ordered by degree, then lexicographically."""
    k = len(names)
    terms: list[tuple[int, ...]] = []
    for d in range(1, degree + 1):
        for combo in itertools.combinations_with_replacement(range(k), d):
            exps = [0] * k
            for j in combo:
                exps[j] += 1
            terms.append(tuple(exps))
    return terms


def poly_matrix(x: np.ndarray, degree: int) -> np.ndarray:
    """Complete polynomial of degree ``degree`` in the columns of ``x`` (no constant column).

    Columns are standardised first for numerical conditioning; the span (and so every fitted
    value) is that of the raw polynomial.
    """
    x = np.asarray(x, dtype=float)
    mu = x.mean(axis=0)
    sd = x.std(axis=0)
    sd[sd == 0] = 1.0
    z = (x - mu) / sd
    terms = poly_terms([str(i) for i in range(x.shape[1])], degree)
    out = np.empty((x.shape[0], len(terms)))
    for c, exps in enumerate(terms):
        col = np.ones(x.shape[0])
        for j, e in enumerate(exps):
            if e:
                col = col * z[:, j] ** e
        out[:, c] = col
    return out


def _ols(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    coef, *_ = np.linalg.lstsq(X, y, rcond=None)
    return coef


def _lom_basis(w: np.ndarray, degree: int) -> np.ndarray:
    return np.column_stack([w**p for p in range(degree + 1)])


# --------------------------------------------------------------------------------------------
# one estimation on arrays sorted by entity and time
# --------------------------------------------------------------------------------------------
class _Arrays:
    """Estimation arrays: output, free, state, proxy, controls and the row of each lag (-1: none)."""

    def __init__(self, y: np.ndarray, F: np.ndarray, S: np.ndarray, P: np.ndarray, C: np.ndarray,
                 L: np.ndarray, IV: np.ndarray, lagpos: np.ndarray, proxy_ok: np.ndarray) -> None:
        self.y, self.F, self.S, self.P, self.C, self.L, self.IV = y, F, S, P, C, L, IV
        self.lagpos, self.proxy_ok = lagpos, proxy_ok

    def take(self, rows: np.ndarray, lagpos: np.ndarray) -> _Arrays:
        return _Arrays(self.y[rows], self.F[rows], self.S[rows], self.P[rows], self.C[rows], self.L[rows],
                       self.IV[rows], lagpos, self.proxy_ok[rows])


def _first_stage(method: str, a: _Arrays, degree: int) -> dict[str, Any]:
    """OLS of output on the polynomial (and controls) over the rows whose proxy can be inverted."""
    use = a.proxy_ok
    if method == "acf":
        poly = poly_matrix(np.column_stack([a.F[use], a.S[use], a.P[use]]), degree)
        X = np.column_stack([np.ones(use.sum()), poly, a.C[use]])
        coef = _ols(X, a.y[use])
        fitted = X @ coef
        ctrl = a.C[use] @ coef[X.shape[1] - a.C.shape[1]:] if a.C.shape[1] else 0.0
        bf = None
    else:
        poly = poly_matrix(np.column_stack([a.S[use], a.P[use]]), degree)
        nf = a.F.shape[1]
        X = np.column_stack([a.F[use], np.ones(use.sum()), poly, a.C[use]])
        coef = _ols(X, a.y[use])
        fitted = X @ coef
        ctrl = a.C[use] @ coef[X.shape[1] - a.C.shape[1]:] if a.C.shape[1] else 0.0
        bf = coef[:nf]
    phi = np.full(a.y.shape[0], np.nan)
    phi[use] = fitted - ctrl  # Phi: fitted output net of the controls' contribution
    yc = a.y.copy()
    yc[use] -= ctrl
    if a.C.shape[1] and (~use).any():
        yc[~use] -= a.C[~use] @ coef[X.shape[1] - a.C.shape[1]:]
    resid = a.y[use] - fitted
    tss = ((a.y[use] - a.y[use].mean()) ** 2).sum()
    return {"phi": phi, "y_net": yc, "bf": bf, "r2": 1.0 - (resid**2).sum() / tss if tss > 0 else np.nan,
            "n": int(use.sum()), "fitted": fitted, "coef": coef}


def _second_stage(method: str, a: _Arrays, fs: dict[str, Any], lom_degree: int,
                  starts: list[np.ndarray]) -> dict[str, Any]:
    from scipy.optimize import least_squares

    phi = fs["phi"]
    lag = a.lagpos
    has_lag = lag >= 0
    lag_ok = np.zeros_like(has_lag)
    lag_ok[has_lag] = np.isfinite(phi[lag[has_lag]])
    rows = lag_ok & np.isfinite(phi) if method == "acf" else lag_ok
    t = np.flatnonzero(rows)
    tl = lag[t]
    nf, ns = a.F.shape[1], a.S.shape[1]
    if t.size < nf + ns + lom_degree + 2:
        raise EstimationError(f"{t.size} rows with a usable lag are too few for the second stage")
    L = a.L[tl] if a.L.shape[1] else np.empty((t.size, 0))
    if method == "acf":
        X_t = np.column_stack([a.F[t], a.S[t]])
        X_l = np.column_stack([a.F[tl], a.S[tl]])
        Z = np.column_stack([a.S[t], a.F[tl], a.S[tl], a.IV[tl]])
        phi_t, phi_l = phi[t], phi[tl]
        scale = Z.std(axis=0)
        scale[scale == 0] = 1.0

        def moments(b: np.ndarray) -> np.ndarray:
            w_t = phi_t - X_t @ b
            H = np.column_stack([_lom_basis(phi_l - X_l @ b, lom_degree), L])
            xi = w_t - H @ _ols(H, w_t)
            return Z.T @ xi / t.size / scale

        def persistence(b: np.ndarray) -> tuple[float, float]:
            w_t = phi_t - X_t @ b
            H = np.column_stack([_lom_basis(phi_l - X_l @ b, lom_degree), L])
            g = _ols(H, w_t)
            return float(g[1]), float(np.var(w_t - H @ g))

        sols = [least_squares(moments, x0, method="lm", xtol=1e-12, ftol=1e-12, gtol=1e-12) for x0 in starts]
        objs = np.array([2 * sol.cost for sol in sols])
        best_i = int(np.argmin(objs))
        roots: list[tuple[np.ndarray, float, float]] = []
        if len(sols) > 1:
            from scipy.stats import chi2

            var_xi = persistence(sols[best_i].x)[1]
            # solutions that fit the moments as well as the best one, up to sampling noise
            tol = max(3 * objs[best_i], objs[best_i] + chi2.ppf(0.99, Z.shape[1]) * var_xi / t.size)
            for sol, obj in zip(sols, objs, strict=True):
                if obj <= tol and not any(np.allclose(sol.x, r[0], atol=1e-4) for r in roots):
                    roots.append((sol.x, float(obj), persistence(sol.x)[0]))
            if len(roots) > 1:
                # several roots fit as well: keep the one whose productivity is most persistent
                best_x = max(roots, key=lambda r: r[2])[0]
                best_i = next(i for i, sol in enumerate(sols) if np.array_equal(sol.x, best_x))
        sol = sols[best_i]
        b = sol.x
        w_t = phi_t - X_t @ b
        H = np.column_stack([_lom_basis(phi_l - X_l @ b, lom_degree), L])
        gamma = _ols(H, w_t)
        objective = float(np.sum(moments(b) ** 2))
        coef = b
        extra_roots = [(r[0].copy(), r[1], r[2]) for r in roots] if len(roots) > 1 else []
    else:
        extra_roots = []
        bf = fs["bf"]
        ystar = fs["y_net"][t] - a.F[t] @ bf
        S_t, S_l = a.S[t], a.S[tl]
        phi_l = phi[tl] - a.F[tl] @ bf

        def resid(bs: np.ndarray) -> np.ndarray:
            target = ystar - S_t @ bs
            H = np.column_stack([_lom_basis(phi_l - S_l @ bs, lom_degree), L])
            return target - H @ _ols(H, target)

        best = None
        for x0 in starts:
            sol = least_squares(resid, x0[nf:], method="lm", xtol=1e-12, ftol=1e-12, gtol=1e-12)
            if best is None or sol.cost < best.cost - 1e-15:
                best = sol
        assert best is not None
        sol = best
        bs = sol.x
        H = np.column_stack([_lom_basis(phi_l - S_l @ bs, lom_degree), L])
        gamma = _ols(H, ystar - S_t @ bs)
        objective = float(np.mean(resid(bs) ** 2))
        coef = np.concatenate([bf, bs])
    return {"coef": coef, "gamma": gamma, "objective": objective, "rows": rows, "n": int(t.size),
            "converged": bool(sol.success), "roots": extra_roots}


def _estimate(method: str, a: _Arrays, degree: int, lom_degree: int, start: np.ndarray | None,
              multistart: bool = False) -> dict[str, Any]:
    fs = _first_stage(method, a, degree)
    if start is None:
        X = np.column_stack([np.ones(a.y.shape[0]), a.F, a.S, a.C])
        start = _ols(X, a.y)[1: 1 + a.F.shape[1] + a.S.shape[1]]
        if method != "acf":
            start = np.concatenate([fs["bf"], start[a.F.shape[1]:]])
    start = np.asarray(start, dtype=float)
    # the ACF moments can have spurious roots: the point estimate tries starting points around
    # the OLS values (see _second_stage for the choice among roots); bootstrap draws start at it
    others = [start * f for f in (0.5, 0.75, 1.25)] + [np.full_like(start, 0.3)]
    starts = [start, *others] if multistart else [start]
    ss = _second_stage(method, a, fs, lom_degree, starts)
    return {"first": fs, "second": ss}


# --------------------------------------------------------------------------------------------
# data preparation
# --------------------------------------------------------------------------------------------
def _as_tuple(x: str | Sequence[str] | None) -> tuple[str, ...]:
    if x is None:
        return ()
    if isinstance(x, str):
        return (x,)
    return tuple(x)


def _rows_text(idx: pd.Index, limit: int = 10) -> str:
    vals = list(idx[:limit])
    more = f" and {len(idx) - limit} more" if len(idx) > limit else ""
    return ", ".join(str(v) for v in vals) + more


def panel_frame(panel: Any, method: str = "acf") -> tuple[pd.DataFrame, list[str]]:
    """The estimation frame built from a Panel's ``enterprise_year``, with notes on how.

    Columns added: ``log_value_added`` (log of ``value_added`` divided by the country deflator
    ``deflator.price_index`` where ``price_base_year`` is missing, and by the cluster's
    ``cluster_year.price_index`` when that table has one: output per unit of input, not revenue),
    ``log_employment``, ``log_capital`` (``capital_stock`` deflated the same way as money),
    ``log_materials`` (``material_cost``, deflated) and ``investment`` (deflated, in levels).
    Also, when available, ``log_output_price`` (log of ``cluster_year.price_index``, whose lag
    is a labour-demand shifter that can serve in ``lag_instruments``) and ``innovator``
    (``new_product`` or ``new_process``; missing when both are, a candidate for
    ``lom_controls``).
    Zero or negative value added and zero capital, employment or materials give a missing log
    (the row is then dropped and counted); negative capital, employment, materials or
    investment are impossible values and raise :class:`~cluster_econ.errors.SchemaError`.
    Monetary values remain in local currency units: with several currencies, add country
    dummies as controls or estimate per country.
    """
    ey = panel.enterprise_year
    need = ["enterprise_id", "year", "value_added", "employment", "capital_stock"]
    need.append("investment" if method == "op" else "material_cost")
    missing = [c for c in need if c not in ey.columns]
    if missing:
        raise SchemaError(f"prodest ({method}): enterprise_year has no column {', '.join(missing)}; "
                          f"the estimator needs {', '.join(need)}")
    notes: list[str] = []
    out = ey.copy()
    num = {c: pd.to_numeric(ey[c], errors="coerce") for c in need[2:]}
    for c in ("capital_stock", "employment", "material_cost", "investment"):
        if c not in num:
            continue
        bad = num[c] < 0
        if bad.any():
            raise SchemaError(f"prodest: enterprise_year.{c} must be non-negative; {int(bad.sum())} rows "
                              f"are negative (rows {_rows_text(ey.index[bad.to_numpy()])}; values "
                              f"{', '.join(f'{v:g}' for v in num[c][bad].head(5))})")
    ent = panel.enterprise
    ids = ey["enterprise_id"]
    years = pd.to_numeric(ey["year"], errors="coerce")
    divisor = pd.Series(1.0, index=ey.index)
    defl = panel.deflator
    nominal = ey["price_base_year"].isna() if "price_base_year" in ey.columns else pd.Series(True, index=ey.index)
    if defl is not None and {"country", "year", "price_index"} <= set(defl.columns) and nominal.any():
        if "country" in ey.columns:
            country = ey["country"]
        elif "country" in ent.columns:
            country = ids.map(ent.drop_duplicates("enterprise_id").set_index("enterprise_id")["country"])
        else:
            country = pd.Series(np.nan, index=ey.index)
        key = pd.MultiIndex.from_arrays([defl["country"].astype(str), pd.to_numeric(defl["year"]).astype("int64")])
        d = pd.Series(pd.to_numeric(defl["price_index"], errors="coerce").to_numpy(), index=key)
        d = d[~d.index.duplicated()]
        want = pd.MultiIndex.from_arrays([country.astype(str).to_numpy(), years.fillna(-1).astype("int64").to_numpy()])
        dv = pd.Series(d.reindex(want).to_numpy(), index=ey.index)
        divisor = dv.where(nominal, 1.0)
        notes.append("money deflated by deflator.price_index (country-year) where price_base_year is missing")
    else:
        notes.append("money not deflated (no deflator table or values already in base-year prices)")
    va_div = divisor.copy()
    cy = panel.cluster_year
    if cy is not None and "price_index" in cy.columns:
        cluster = ey["cluster_id"] if "cluster_id" in ey.columns else ids.map(
            ent.drop_duplicates("enterprise_id").set_index("enterprise_id")["cluster_id"])
        key = pd.MultiIndex.from_arrays([cy["cluster_id"].astype(str), pd.to_numeric(cy["year"]).astype("int64")])
        p = pd.Series(pd.to_numeric(cy["price_index"], errors="coerce").to_numpy(), index=key)
        p = p[~p.index.duplicated()]
        want = pd.MultiIndex.from_arrays([cluster.astype(str).to_numpy(), years.fillna(-1).astype("int64").to_numpy()])
        va_div = va_div * pd.Series(p.reindex(want).to_numpy(), index=ey.index)
        notes.append("value added also divided by cluster_year.price_index (the cluster's output price)")

    def safe_log(s: pd.Series) -> pd.Series:
        s = s.astype(float)
        return np.log(s.where(s > 0))

    out[PANEL_COLUMNS["output"]] = safe_log(num["value_added"] / va_div)
    out[PANEL_COLUMNS["free"]] = safe_log(num["employment"])
    out[PANEL_COLUMNS["state"]] = safe_log(num["capital_stock"] / divisor)
    if "material_cost" in num:
        out[PANEL_COLUMNS["proxy_materials"]] = safe_log(num["material_cost"] / divisor)
    if "investment" in num:
        out[PANEL_COLUMNS["proxy_investment"]] = num["investment"] / divisor
    if cy is not None and "price_index" in cy.columns:
        out["log_output_price"] = safe_log(va_div / divisor)
    if {"new_product", "new_process"} <= set(ey.columns):
        items = ey[["new_product", "new_process"]].astype("boolean")
        out["innovator"] = items.any(axis=1, skipna=True).astype(float).where(items.notna().any(axis=1))
    return out, notes


def _bootstrap_rows(starts: np.ndarray, lengths: np.ndarray, lag_in_block: np.ndarray,
                    pick: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of a block-bootstrap sample and the lag pointers inside it."""
    lens = lengths[pick]
    new_starts = np.concatenate([[0], np.cumsum(lens)[:-1]])
    total = int(lens.sum())
    block_of_row = np.repeat(np.arange(pick.size), lens)
    within = np.arange(total) - new_starts[block_of_row]
    rows = starts[pick][block_of_row] + within
    lag_rel = lag_in_block[rows]  # offset of the lag row inside the block, -1 if none
    lagpos = np.where(lag_rel >= 0, new_starts[block_of_row] + lag_rel, -1)
    return rows, lagpos


# --------------------------------------------------------------------------------------------
# public entry point
# --------------------------------------------------------------------------------------------
def prodest(
    data: Any,
    *,
    output: str | None = None,
    free: str | Sequence[str] | None = None,
    state: str | Sequence[str] | None = None,
    proxy: str | None = None,
    method: str = "acf",
    entity: str = "enterprise_id",
    time: str = "year",
    controls: Sequence[str] = (),
    poly_degree: int = 3,
    lom_degree: int = 1,
    lom_controls: Sequence[str] = (),
    lag_instruments: Sequence[str] = (),
    exit: str | None = None,
    bootstrap: int = 200,
    seed: int = 0,
    vcov_cluster: str | None = None,
) -> Result:
    """Estimate a Cobb-Douglas value-added production function by OP, LP or ACF.

    The models and the algorithm are stated in the module docstring.

    Parameters
    ----------
    data : Panel or DataFrame
        A :class:`~cluster_econ.panel.Panel` (the frame is built by :func:`panel_frame`; the
        column arguments then default to ``log_value_added``, ``log_employment``,
        ``log_capital`` and ``log_materials`` (ACF, LP) or ``investment`` (OP)) or a DataFrame
        holding the named columns.
    output, free, state : str (free and state may be sequences)
        Log output, log free inputs (labour), log state inputs (capital).
    proxy : str
        ACF and LP: log materials (any log input strictly increasing in productivity).
        OP: investment **in levels**; rows with zero or negative investment are not used to
        invert the proxy (counted).
    method : {"acf", "lp", "op"}
    entity, time : str
        Panel identifiers; ``time`` must be integer years (lags follow calendar years).
    controls : sequence of str
        Numeric columns that shift output (first stage), removed before the second stage.
    poly_degree : int
        Degree of the complete polynomial of the first stage.
    lom_degree : int
        Degree of the law of motion of productivity in ``omega_t-1`` (1: AR(1)).
    lom_controls : sequence of str
        Numeric columns whose value in ``t-1`` shifts the law of motion linearly (a controlled
        Markov process, for example last year's innovation: ``omega_t = g(omega_t-1) + c'z_t-1
        + xi_t``).
    lag_instruments : sequence of str
        ACF only: columns whose ``t-1`` values are added to the instruments (valid under the
        timing assumptions, since ``xi_t`` is news in ``t``). Shifters of labour demand that are
        not productivity (a lagged output or wage price index) separate the true root from the
        spurious one described in the module docstring.
    exit : None
        The Olley-Pakes exit correction is not implemented; anything but ``None`` raises.
    bootstrap : int
        Number of block-bootstrap draws for the covariance (0: no standard errors, covariance NaN).
    seed : int
        Seed of the bootstrap's ``numpy.random.Generator``.
    vcov_cluster : str, optional
        Resample these groups (which must contain whole entities) instead of entities.

    Returns
    -------
    Result
        ``params`` indexed by the free and state input names; covariance of the bootstrap draws
        (``vcov_info.type == "bootstrap"``); ``extra["omega"]`` the estimated log productivity
        ``Phi - b'x`` per row (aligned to the input rows, missing where the first stage could not
        be evaluated; its level includes the production function's constant), ``extra["tfp"]``
        ``y - b'x`` (log TFP including the transitory shock) per row, ``extra["law_of_motion"]``
        the coefficients of ``g``, ``extra["bootstrap_draws"]``; ``predict(frame)`` gives
        ``y - b'x`` on new data with the same columns.
    """
    from cluster_econ.panel.container import Panel

    if method not in METHODS:
        raise EstimationError(f"prodest: method must be one of {', '.join(METHODS)}, not {method!r}")
    if exit is not None:
        raise EstimationError("prodest: the Olley-Pakes exit (selection) correction is not implemented; "
                              "call without exit=")
    if not isinstance(poly_degree, int | np.integer) or poly_degree < 1:
        raise EstimationError(f"prodest: poly_degree must be a positive integer, not {poly_degree!r}")
    if not isinstance(lom_degree, int | np.integer) or lom_degree < 1:
        raise EstimationError(f"prodest: lom_degree must be a positive integer, not {lom_degree!r}")
    if not isinstance(bootstrap, int | np.integer) or bootstrap < 0 or bootstrap == 1:
        raise EstimationError(f"prodest: bootstrap must be 0 or an integer of at least 2, not {bootstrap!r}")
    notes: list[str] = []
    if isinstance(data, Panel):
        frame, built = panel_frame(data, method)
        notes.extend(built)
        output = output or PANEL_COLUMNS["output"]
        free = free or PANEL_COLUMNS["free"]
        state = state or PANEL_COLUMNS["state"]
        proxy = proxy or PANEL_COLUMNS["proxy_investment" if method == "op" else "proxy_materials"]
    elif isinstance(data, pd.DataFrame):
        frame = data
    else:
        raise EstimationError(f"prodest: data must be a Panel or a pandas DataFrame, not {type(data).__name__}")
    frees, states, ctrls = _as_tuple(free), _as_tuple(state), _as_tuple(controls)
    lctrls = _as_tuple(lom_controls)
    linst = _as_tuple(lag_instruments)
    if linst and method != "acf":
        raise EstimationError("prodest: lag_instruments are used by method='acf' only")
    for arg, val in (("output", output), ("free", frees), ("state", states), ("proxy", proxy)):
        if not val:
            raise EstimationError(f"prodest: name the {arg} column ({arg}=...)")
    assert output is not None and proxy is not None
    columns = [output, *frees, *states, proxy, *ctrls, *lctrls, *linst, entity, time]
    if vcov_cluster:
        columns.append(vcov_cluster)
    absent = [c for c in dict.fromkeys(columns) if c not in frame.columns]
    if absent:
        raise EstimationError(f"prodest: column {', '.join(repr(c) for c in absent)} not found in the data; "
                              f"available: {', '.join(map(str, list(frame.columns)[:30]))}")
    n_input = len(frame)
    numeric = [output, *frees, *states, proxy, *ctrls, *lctrls, *linst]
    values = {}
    for c in dict.fromkeys(numeric):
        s = frame[c]
        if s.dtype == object or isinstance(s.dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(s):
            conv = pd.to_numeric(s, errors="coerce")
            bad = conv.isna() & s.notna()
            if bad.any():
                raise EstimationError(f"prodest: column {c!r} must be numeric; rows "
                                      f"{_rows_text(frame.index[bad.to_numpy()])} hold text such as "
                                      f"{s[bad].iloc[0]!r}")
            s = conv
        values[c] = pd.to_numeric(s).astype(float).to_numpy()
    tvals = pd.to_numeric(frame[time], errors="coerce")
    if (tvals.notna() & (tvals != np.round(tvals))).any():
        raise EstimationError(f"prodest: time column {time!r} must hold integer years")
    if method == "op":
        inv = values[proxy]
        if np.isfinite(inv).any() and not (inv[np.isfinite(inv)] > 0).any():
            raise EstimationError(f"prodest (op): proxy column {proxy!r} (investment) has no positive value; "
                                  "Olley-Pakes inverts investment, so it needs firms that invest "
                                  "(use method='acf' or 'lp' with materials)")
    # -- rows: missing values ------------------------------------------------------------
    dropped: dict[str, int] = {}
    ok = np.ones(n_input, dtype=bool)
    for c in dict.fromkeys(numeric):
        ok &= np.isfinite(values[c])
    ok &= frame[entity].notna().to_numpy() & tvals.notna().to_numpy()
    if vcov_cluster:
        ok &= frame[vcov_cluster].notna().to_numpy()
    if (~ok).sum():
        dropped["missing values"] = int((~ok).sum())
    sub = pd.DataFrame({"_e": frame[entity].to_numpy()[ok], "_t": tvals.to_numpy()[ok].astype("int64"),
                        "_row": np.flatnonzero(ok)})
    if sub.duplicated(["_e", "_t"]).any():
        dup = sub[sub.duplicated(["_e", "_t"], keep=False)]
        raise SchemaError(f"prodest: {entity} + {time} is not unique; rows "
                          f"{_rows_text(frame.index[dup['_row'].to_numpy()])} repeat a firm-year")
    ecode = pd.factorize(sub["_e"])[0]
    order = np.lexsort((sub["_t"].to_numpy(), ecode))
    sub = sub.iloc[order].reset_index(drop=True)
    ecode = ecode[order]
    rows = sub["_row"].to_numpy()
    tt = sub["_t"].to_numpy()
    n = rows.size
    if n == 0:
        raise EstimationError("prodest: no rows left after dropping missing values")
    same_prev = np.r_[False, ecode[1:] == ecode[:-1]]
    consecutive = same_prev & np.r_[False, tt[1:] - tt[:-1] == 1]
    lagpos = np.where(consecutive, np.arange(n) - 1, -1)

    def mat(names: tuple[str, ...]) -> np.ndarray:
        return np.column_stack([values[c][rows] for c in names]) if names else np.empty((n, 0))

    P = values[proxy][rows]
    if method == "op":
        proxy_ok = P > 0
        P = np.log(np.where(proxy_ok, P, 1.0))
    else:
        proxy_ok = np.ones(n, dtype=bool)
    a = _Arrays(values[output][rows], mat(frees), mat(states), P[:, None], mat(ctrls), mat(lctrls), mat(linst),
                lagpos, proxy_ok)
    # -- point estimate ----------------------------------------------------------------------
    try:
        est = _estimate(method, a, int(poly_degree), int(lom_degree), None, multistart=True)
    except np.linalg.LinAlgError as err:
        raise EstimationError(f"prodest ({method}): estimation failed: {err}") from None
    fs, ss = est["first"], est["second"]
    names = [*frees, *states]
    coef = ss["coef"]
    if ss["roots"]:
        notes.append(
            "the ACF moments have several roots: "
            + "; ".join(f"({', '.join(f'{v:.4f}' for v in r[0])}) with objective {r[1]:.3g} and rho {r[2]:.3f}"
                        for r in ss["roots"])
            + "; kept the one with the most persistent productivity (see the module docstring)")
    # -- audit of the second-stage sample --------------------------------------------------
    first_row = ~same_prev
    gap = same_prev & ~consecutive
    if first_row.sum():
        dropped["first year observed (no lag)"] = int(first_row.sum())
    if gap.sum():
        dropped["previous calendar year not observed (gap)"] = int(gap.sum())
    no_lag_proxy = (lagpos >= 0) & ~ss["rows"]
    if method == "op":
        lag_zero = np.zeros(n, dtype=bool)
        lag_zero[lagpos >= 0] = ~proxy_ok[lagpos[lagpos >= 0]]
        if lag_zero.sum():
            dropped["investment zero or negative in t-1 (no proxy inversion)"] = int(lag_zero.sum())
        notes.append(f"{int((~proxy_ok).sum())} rows with zero or negative investment left out of the "
                     "first stage (proxy not invertible)")
        no_lag_proxy &= ~lag_zero
    if no_lag_proxy.sum():
        dropped["no first-stage value"] = int(no_lag_proxy.sum())
    # -- bootstrap --------------------------------------------------------------------------
    n_fail = 0
    draws = np.empty((0, len(names)))
    if bootstrap:
        if vcov_cluster:
            gvals = frame[vcov_cluster].to_numpy()[rows]
            per_entity = pd.Series(gvals).groupby(ecode).nunique()
            if (per_entity > 1).any():
                raise EstimationError(f"prodest: vcov_cluster {vcov_cluster!r} must contain whole entities; "
                                      f"{int((per_entity > 1).sum())} {entity} values fall in several groups")
            gcode = pd.factorize(gvals)[0]
        else:
            gcode = ecode
        # blocks: contiguous runs of rows of one resampling unit (rows are sorted by entity;
        # with vcov_cluster, re-sort by group so each group is contiguous)
        if vcov_cluster:
            gorder = np.argsort(gcode, kind="stable")
            inv_order = np.empty(n, dtype=np.int64)
            inv_order[gorder] = np.arange(n)
            a_b = a.take(gorder, np.where(lagpos[gorder] >= 0, inv_order[np.maximum(lagpos[gorder], 0)], -1))
            g_sorted = gcode[gorder]
        else:
            a_b, g_sorted = a, gcode
        starts = np.flatnonzero(np.r_[True, g_sorted[1:] != g_sorted[:-1]])
        lengths = np.diff(np.r_[starts, n])
        block_start_of_row = np.repeat(starts, lengths)
        lag_in_block = np.where(a_b.lagpos >= 0, a_b.lagpos - block_start_of_row, -1)
        rng = np.random.default_rng(seed)
        G = starts.size
        out = []
        for _ in range(int(bootstrap)):
            pick = rng.integers(0, G, G)
            brows, blag = _bootstrap_rows(starts, lengths, lag_in_block, pick)
            try:
                e = _estimate(method, a_b.take(brows, blag), int(poly_degree), int(lom_degree), coef)
                c = e["second"]["coef"]
                if not np.all(np.isfinite(c)):
                    raise FloatingPointError
                out.append(c)
            except (EstimationError, np.linalg.LinAlgError, FloatingPointError, ValueError):
                n_fail += 1
        draws = np.array(out).reshape(-1, len(names))
        if draws.shape[0] < 2:
            raise EstimationError(f"prodest: only {draws.shape[0]} of {bootstrap} bootstrap draws could be estimated")
        cov = np.atleast_2d(np.cov(draws, rowvar=False, ddof=1))
        n_groups = G
    else:
        cov = np.full((len(names), len(names)), np.nan)
        n_groups = int(ecode.max() + 1)
        notes.append("bootstrap=0: no standard errors")
    # -- per-row productivity ---------------------------------------------------------------
    X_all = np.column_stack([a.F, a.S])
    omega_sorted = fs["phi"] - X_all @ coef
    omega = np.full(n_input, np.nan)
    omega[rows] = omega_sorted
    phi_rows = np.full(n_input, np.nan)
    phi_rows[rows] = fs["phi"]
    tfp = np.full(n_input, np.nan)
    tfp[rows] = fs["y_net"] - X_all @ coef

    def predictor(res: Result, new: pd.DataFrame | None = None) -> pd.Series:
        if new is None:
            return pd.Series(res.extra["tfp"], name="tfp")
        lacking = [c for c in [output, *names] if c not in new.columns]
        if lacking:
            raise EstimationError(f"prodest predict: columns {', '.join(lacking)} not in the data")
        val = pd.to_numeric(new[output]).astype(float) - sum(
            float(res.params[c]) * pd.to_numeric(new[c]).astype(float) for c in names)
        return pd.Series(val.to_numpy(), index=new.index, name="tfp")

    label = {"acf": "Ackerberg-Caves-Frazer", "lp": "Levinsohn-Petrin", "op": "Olley-Pakes"}[method]
    if method == "acf":
        stage1 = f"poly{poly_degree}({', '.join([*frees, *states, proxy])})"
        moments = (f"E[xi * ({', '.join(states)}, {', '.join('L.' + f for f in frees)}, "
                   f"{', '.join('L.' + s for s in [*states, *linst])})] = 0")
    else:
        inverted = f"log {proxy}" if method == "op" else proxy
        stage1 = f"{' + '.join(frees)} + poly{poly_degree}({', '.join([*states, inverted])})"
        moments = "NLLS on y - b_f'f - b_s's - g(omega_t-1)"
    lom = "AR(1)" if lom_degree == 1 else f"polynomial of degree {lom_degree}"
    if lctrls:
        lom += " + " + " + ".join(f"L.{c}" for c in lctrls)
    formula = (f"{label}: {output} ~ {' + '.join(frees)} (free) + {' + '.join(states)} (state); proxy {proxy}; "
               f"first stage {output} ~ {stage1}" + (f" + {' + '.join(ctrls)}" if ctrls else "")
               + f"; law of motion {lom}; {moments}")
    vinfo = VcovInfo(
        type="bootstrap", ssc="none", cluster_vars=(vcov_cluster or entity,), n_clusters=(int(n_groups),),
        df_resid=None,
        details={"B": int(bootstrap), "seed": int(seed), "failed_draws": int(n_fail),
                 "scheme": f"block bootstrap over {vcov_cluster or entity} (whole histories resampled "
                           "with replacement, both stages re-estimated)"},
    )
    index = pd.Index(names)
    frame_index = frame.index
    lom_names = (["const", "omega_lag"] + [f"omega_lag^{p}" for p in range(2, lom_degree + 1)]
                 + [f"L.{c}" for c in lctrls])
    extra = {
        "omega": pd.Series(omega, index=frame_index, name="omega"),
        "tfp": pd.Series(tfp, index=frame_index, name="tfp"),
        "first_stage": pd.Series(phi_rows, index=frame_index, name="phi"),
        "law_of_motion": pd.Series(ss["gamma"], index=lom_names),
        "bootstrap_draws": pd.DataFrame(draws, columns=names),
        "method": method,
    }
    stats = {
        "n_first_stage": float(fs["n"]),
        "first_stage_r2": float(fs["r2"]),
        "objective": ss["objective"],
        "returns_to_scale": float(coef.sum()),
        "converged": float(ss["converged"]),
    }
    if lom_degree == 1:
        stats["rho"] = float(ss["gamma"][1])
    return Result(
        params=pd.Series(coef, index=index),
        cov=pd.DataFrame(cov, index=index, columns=index),
        nobs=ss["n"],
        vcov_info=vinfo,
        formula=formula,
        model=f"prodest-{method}",
        engine=ENGINE,
        audit=Audit(n_input=n_input, dropped=dropped, notes=tuple(notes)),
        data_hash=data_hash(a.y, X_all, a.P, a.C, lagpos),
        groups={entity: int(ecode.max() + 1)},
        stats=stats,
        extra=extra,
        predictor=predictor,
    )

