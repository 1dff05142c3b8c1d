"""Step 3 for ACF, GNR and the dynamic-panel estimator: GMM on productivity's law of motion,
and the choice among its roots.

For trial elasticities ``b`` let ``v_t(b) = v_t - b'x_t`` (``v`` is ACF's ``Phi``, GNR's
``C + omega`` or, for the dynamic panel, output itself) and ``v_t-1(b)`` the same a year
earlier. The law of motion ``v_t(b) = g(v_t-1(b)) + h'controls + u_t`` has coefficients
``gamma``, concentrated out for every ``b``: by OLS when ``v`` is productivity measured without
error (ACF, GNR: ``lom="ols"``), by two-stage least squares on the instruments when the lag is
measured with error (the dynamic panel, where ``v_t-1(b)`` carries last year's transitory shock
and survey error: ``lom="iv"``). ``b`` minimises ``Q(b) = g(b)' W g(b)`` with ``g(b) = Z'u(b)/N``
and ``W = (Z'Z/N)^-1`` (non-linear two-stage least squares).

Fast path. With a linear law of motion every quantity is a quadratic form in ``b`` of one Gram
matrix of the data columns, computed once (``O(N)``); ``Q(b)`` then costs ``O(1)`` in ``N``,
so a grid of thousands of trial values costs milliseconds and the bootstrap re-uses the
algebra. A polynomial law of motion (``degree > 1``) is evaluated row by row.

Roots. The moment conditions can have several roots (Ackerberg, Caves and Frazer 2015, section
4.3; Kim, Luo and Su 2019): a root where "productivity" is the labour input's own serially
independent shock (elasticity of labour near one, capital near zero, productivity without
persistence) exists in population whenever labour has such a shock, and finite samples add
others (a near-unit-root law of motion with a negative capital elasticity on the design of
issue 9). :func:`search_roots` starts the Levenberg-Marquardt solver from the caller's sensible
points (OLS, LP, Wooldridge) and from the best well-separated points of a grid over the
elasticities; :func:`assess_root` checks each root against the data and the economics
(:class:`RootScreens`): the moments must be zero within sampling noise (Hansen's J with a
cluster-robust weight, two-step, at the 1% level; for exactly identified models J is zero at a
root and positive at a local minimum that is not one), every elasticity and the returns to scale
must be in a plausible range, and productivity must be persistent and stationary (the AR
coefficient, or the mean slope of a polynomial law of motion, in ``[0.3, 1.05]``: the timing
moments identify nothing when productivity has no persistence). One admissible root: it is the
estimate. None, or several distinct ones: no estimate (:class:`RootSelectionError` names them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from cluster_econ.errors import EstimationError
from cluster_econ.estimate.production.polynomial import wls

__all__ = ["MarkovDesign", "MarkovGMM", "RootReport", "RootScreens", "RootSelectionError", "assess_root",
           "choose_root", "on_accepted_root", "search_roots"]


class RootSelectionError(EstimationError):
    """No point estimate: the moment conditions have no admissible root, or several.

    ``roots`` is a DataFrame with one row per root found (elasticities, objective, Hansen J and
    its p-value, persistence, returns to scale, whether admissible and why not).
    """

    def __init__(self, message: str, roots: pd.DataFrame) -> None:
        super().__init__(message)
        self.roots = roots


@dataclass(frozen=True)
class RootScreens:
    """What a root must satisfy to be an estimate (see the module docstring).

    ``elasticity``: range of every elasticity; ``returns_to_scale``: range of their sum;
    ``persistence``: range of the AR coefficient of productivity (mean slope for a polynomial law
    of motion); ``fit_pvalue``: a root whose Hansen J p-value is below it does not fit the
    moments.
    """

    elasticity: tuple[float, float] = (-0.1, 1.2)
    returns_to_scale: tuple[float, float] = (0.4, 1.3)
    persistence: tuple[float, float] = (0.3, 1.05)
    fit_pvalue: float = 0.001

    def economics(self, b: np.ndarray, rho: float, other_elasticity: float = 0.0) -> list[str]:
        """Reasons a root fails the economic screens (empty: passes). ``other_elasticity``: an
        input's elasticity estimated outside ``b`` (GNR's flexible input), part of the returns to
        scale."""
        out = []
        lo, hi = self.elasticity
        if np.any(b < lo) or np.any(b > hi):
            out.append(f"elasticity outside [{lo:g}, {hi:g}]")
        rts = float(np.sum(b)) + other_elasticity
        lo, hi = self.returns_to_scale
        if not lo <= rts <= hi:
            out.append(f"returns to scale {rts:.3f} outside [{lo:g}, {hi:g}]")
        lo, hi = self.persistence
        if not (np.isfinite(rho) and lo <= rho <= hi):
            out.append(f"productivity persistence {rho:.3f} outside [{lo:g}, {hi:g}]")
        return out


@dataclass
class MarkovDesign:
    """Columns of the law-of-motion moment problem, one row per year ``t`` with a usable ``t-1``.

    ``z_cols`` names the instruments by where they come from: ``("X", j)`` an input at ``t``,
    ``("Xl", j)`` an input at ``t-1``, ``("one", 0)`` the constant, ``("Hx", j)`` an exogenous
    law-of-motion regressor, ``("E", j)`` an extra instrument column.
    """

    v: np.ndarray
    X: np.ndarray
    vl: np.ndarray
    Xl: np.ndarray
    Hx: np.ndarray
    E: np.ndarray
    z_cols: tuple[tuple[str, int], ...]
    lom: str
    degree: int
    entity: np.ndarray
    rows: np.ndarray
    z_names: tuple[str, ...] = ()
    hx_names: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def p(self) -> int:
        return int(self.X.shape[1])

    @property
    def h(self) -> int:
        return self.degree + 1 + int(self.Hx.shape[1])

    @property
    def m(self) -> int:
        return len(self.z_cols)

    @property
    def df(self) -> int:
        """Over-identifying restrictions."""
        return self.m - self.p - (self.h if self.lom == "iv" else 0)


class MarkovGMM:
    """The objective of a :class:`MarkovDesign` under frequency weights ``w`` and moment weight
    ``weight`` (default ``(Z'Z/N)^-1``)."""

    def __init__(self, d: MarkovDesign, w: np.ndarray | None = None, weight: np.ndarray | None = None) -> None:
        self.d = d
        n, p = d.X.shape
        q, r = d.Hx.shape[1], d.E.shape[1]
        self.w = np.ones(n) if w is None else np.asarray(w, dtype=float)
        A = np.column_stack([d.v, d.X, d.vl, d.Xl, np.ones(n), d.Hx, d.E])
        self.i_v, self.i_x = 0, np.arange(1, 1 + p)
        self.i_vl, self.i_xl = 1 + p, np.arange(2 + p, 2 + 2 * p)
        self.i_one = 2 + 2 * p
        self.i_hx = np.arange(3 + 2 * p, 3 + 2 * p + q)
        i_e = np.arange(3 + 2 * p + q, 3 + 2 * p + q + r)
        where = {"X": self.i_x, "Xl": self.i_xl, "one": np.array([self.i_one]), "Hx": self.i_hx, "E": i_e}
        self.zidx = np.array([where[k][j] for k, j in d.z_cols], dtype=int)
        self.A = A
        self.N = float(self.w.sum())
        G = A.T @ (A * self.w[:, None])
        self.G = G
        self.Z = A[:, self.zidx]
        self.default_weight = weight is None
        self.W = np.linalg.pinv(G[np.ix_(self.zidx, self.zidx)] / self.N) if weight is None else weight
        self.root_W = _matrix_root(self.W)
        # blocks of the Gram matrix used at every evaluation (linear law of motion)
        z, D = self.zidx, np.r_[self.i_one, self.i_hx]
        self.D = D
        self.zD, self.zv0, self.zX = G[np.ix_(z, D)], G[z, self.i_v], G[np.ix_(z, self.i_x)]
        self.zvl0, self.zXl = G[z, self.i_vl], G[np.ix_(z, self.i_xl)]

    def _quad(self, Gm: np.ndarray, i: int, I: np.ndarray, j: int, J: np.ndarray, b: np.ndarray) -> np.ndarray:
        """``(a_i - A_I b)'(a_j - A_J b)`` from a Gram matrix, for each row of ``b`` (k x p)."""
        return (Gm[i, j] - b @ Gm[I, j] - b @ Gm[i, J] + np.einsum("kp,pq,kq->k", b, Gm[np.ix_(I, J)], b))

    def _eval_gram(self, b: np.ndarray) -> dict[str, Any]:
        """Everything at one ``b`` from the Gram matrix (linear law of motion, any weight)."""
        G, W, D = self.G, self.W, self.D
        zv = self.zv0 - self.zX @ b
        zvl = self.zvl0 - self.zXl @ b
        ZH = np.column_stack([self.zD[:, :1], zvl, self.zD[:, 1:]])
        if self.d.lom == "ols":
            Dvl = G[D, self.i_vl] - G[np.ix_(D, self.i_xl)] @ b
            Dv = G[D, self.i_v] - G[np.ix_(D, self.i_x)] @ b
            bb = b[None, :]
            vlvl = self._quad(G, self.i_vl, self.i_xl, self.i_vl, self.i_xl, bb)[0]
            vlv = self._quad(G, self.i_vl, self.i_xl, self.i_v, self.i_x, bb)[0]
            HH = np.empty((D.size + 1, D.size + 1))
            DD = G[np.ix_(D, D)]
            HH[np.ix_([0, *range(2, D.size + 1)], [0, *range(2, D.size + 1)])] = DD
            HH[1, 1] = vlvl
            HH[1, [0, *range(2, D.size + 1)]] = Dvl
            HH[[0, *range(2, D.size + 1)], 1] = Dvl
            Hv = np.r_[Dv[0], vlv, Dv[1:]]
            gamma = np.linalg.lstsq(HH, Hv, rcond=None)[0]
        else:
            WZH = W @ ZH
            gamma = np.linalg.lstsq(ZH.T @ WZH, WZH.T @ zv, rcond=None)[0]
        g = (zv - ZH @ gamma) / self.N
        return {"g": g, "gamma": gamma, "Q": float(g @ W @ g), "rho": float(gamma[1])}

    def batch_objective(self, B: np.ndarray, chunk: int = 4000) -> np.ndarray:
        """``Q`` (default weight) at every row of ``B``, with a linear law of motion: the law of
        motion's constant and controls are partialled out of the Gram matrix once (Frisch-Waugh),
        leaving one coefficient, ``rho``, per trial value. Seeds for the root search."""
        G, D, N = self.G, self.D, self.N
        Gt = G - G[:, D] @ np.linalg.pinv(G[np.ix_(D, D)]) @ G[D, :]
        if self.d.lom == "ols":
            zt, W = self.zidx, self.W
        else:
            zt = np.array([z for z in self.zidx if z not in set(D.tolist())], dtype=int)
            W = np.linalg.pinv(Gt[np.ix_(zt, zt)] / N)
        out = []
        for i in range(0, B.shape[0], chunk):
            b = B[i:i + chunk]
            zv = Gt[zt, self.i_v][None, :] - b @ Gt[np.ix_(zt, self.i_x)].T
            zvl = Gt[zt, self.i_vl][None, :] - b @ Gt[np.ix_(zt, self.i_xl)].T
            if self.d.lom == "ols":
                rho = (self._quad(Gt, self.i_vl, self.i_xl, self.i_v, self.i_x, b)
                       / self._quad(Gt, self.i_vl, self.i_xl, self.i_vl, self.i_xl, b))
            else:
                a = zvl @ W
                rho = np.sum(a * zv, axis=1) / np.sum(a * zvl, axis=1)
            g = (zv - rho[:, None] * zvl) / N
            out.append(np.sum((g @ W) * g, axis=1))
        return np.concatenate(out) if out else np.empty(0)

    def _lom_basis(self, vl: np.ndarray) -> np.ndarray:
        return np.column_stack([vl**j for j in range(self.d.degree + 1)] + [self.d.Hx])

    def residuals(self, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Row residuals ``u``, LOM coefficients and the LOM design at ``b`` (row by row)."""
        d, w = self.d, self.w
        v = d.v - d.X @ b
        H = self._lom_basis(d.vl - d.Xl @ b)
        if d.lom == "ols":
            gamma = wls(H, v, w)
        else:
            ZwH = self.Z.T @ (H * w[:, None]) / self.N
            Zwv = self.Z.T @ (v * w) / self.N
            WZH = self.W @ ZwH
            gamma = np.linalg.lstsq(ZwH.T @ WZH, WZH.T @ Zwv, rcond=None)[0]
        return v - H @ gamma, gamma, H

    def evaluate(self, b: np.ndarray) -> dict[str, Any]:
        """Moments ``g``, objective ``Q``, ``gamma`` and persistence ``rho`` at ``b``."""
        b = np.asarray(b, dtype=float)
        if self.d.degree == 1:
            return self._eval_gram(b)
        u, gamma, H = self.residuals(b)
        g = self.Z.T @ (u * self.w) / self.N
        vl = H[:, 1]
        slope = sum(j * gamma[j] * vl ** (j - 1) for j in range(1, self.d.degree + 1))
        return {"g": g, "gamma": gamma, "Q": float(g @ self.W @ g), "rho": float(np.average(slope, weights=self.w))}

    def whitened(self, b: np.ndarray) -> np.ndarray:
        """``R'g(b)`` with ``W = R R'``: its sum of squares is ``Q(b)``."""
        return self.root_W.T @ self.evaluate(b)["g"]

    def solve(self, x0: np.ndarray) -> tuple[np.ndarray, bool]:
        from scipy.optimize import least_squares

        if self.d.m < self.d.p:
            raise EstimationError(f"prodest: {self.d.m} moment conditions cannot identify {self.d.p} elasticities")
        sol = least_squares(self.whitened, np.asarray(x0, dtype=float), method="lm", xtol=1e-12, ftol=1e-14,
                            gtol=1e-14, max_nfev=400 * (self.d.p + 1))
        return sol.x, bool(sol.success) and bool(np.all(np.isfinite(sol.x)))

    # -- inference on the fit ---------------------------------------------------------------
    def cluster_weight(self, b: np.ndarray) -> np.ndarray:
        """Inverse of the entity-clustered covariance of the moments at ``b`` (instruments
        residualised on the law of motion when its coefficients are fitted by OLS)."""
        u, _, H = self.residuals(b)
        Z = self.Z
        w = self.w
        if self.d.lom == "ols":
            Hw = H * w[:, None]
            Z = Z - H @ np.linalg.lstsq(H.T @ Hw, Hw.T @ Z, rcond=None)[0]
        scores = Z * (u * w)[:, None]
        G = int(self.d.entity.max() + 1)
        sg = np.column_stack([np.bincount(self.d.entity, weights=scores[:, j], minlength=G)
                              for j in range(scores.shape[1])])
        S = sg.T @ sg / self.N
        return np.linalg.pinv(S)

    def hansen_j(self, b: np.ndarray) -> tuple[float, np.ndarray]:
        """Two-step Hansen J from ``b`` (cluster-robust weight) and the two-step estimate."""
        W2 = self.cluster_weight(b)
        two = MarkovGMM(self.d, self.w, weight=W2)
        b2, _ = two.solve(b)
        return float(self.N * two.evaluate(b2)["Q"]), b2


def _matrix_root(W: np.ndarray) -> np.ndarray:
    """``R`` with ``W = R R'`` (symmetric square root through the eigen-decomposition)."""
    evals, evecs = np.linalg.eigh((W + W.T) / 2)
    return evecs * np.sqrt(np.clip(evals, 0, None))


# --------------------------------------------------------------------------------------------
# roots
# --------------------------------------------------------------------------------------------
@dataclass
class RootReport:
    """One root of the moment conditions and how it fares (see :func:`assess_root`)."""

    b: np.ndarray
    objective: float
    j_stat: float
    j_df: int
    j_pvalue: float
    rho: float
    returns_to_scale: float
    converged: bool
    reasons: list[str]

    @property
    def admissible(self) -> bool:
        return not self.reasons

    def describe(self, names: list[str]) -> str:
        coef = ", ".join(f"{n}={v:.4f}" for n, v in zip(names, self.b, strict=True))
        why = "admissible" if self.admissible else "; ".join(self.reasons)
        return f"({coef}; rho={self.rho:.3f}, J={self.j_stat:.3g}, p={self.j_pvalue:.3g}: {why})"


def chi2_sf(x: float, df: int) -> float:
    from scipy.special import chdtrc

    return float(chdtrc(df, x))


def assess_root(engine: MarkovGMM, b: np.ndarray, screens: RootScreens, converged: bool = True,
                other_elasticity: float = 0.0) -> RootReport:
    """Fit (Hansen J) and economics (``screens``) of the root ``b``."""
    ev = engine.evaluate(b)
    j, _ = engine.hansen_j(b)
    df = engine.d.df
    pval = chi2_sf(j, max(df, 1))
    reasons = []
    if not converged:
        reasons.append("solver did not converge")
    if pval < screens.fit_pvalue:
        reasons.append(f"moments not zero (J={j:.3g}, p={pval:.2g})" if df > 0 else
                       f"a local minimum, not a root (J={j:.3g})")
    reasons += screens.economics(b, ev["rho"], other_elasticity)
    return RootReport(b=np.asarray(b, dtype=float), objective=float(ev["Q"]), j_stat=j, j_df=df, j_pvalue=pval,
                      rho=float(ev["rho"]), returns_to_scale=float(np.sum(b)) + other_elasticity, converged=converged,
                      reasons=reasons)


def grid_points(p: int, box: tuple[float, float] = (-0.5, 1.5), step: float = 0.05,
                n_random: int = 3000) -> np.ndarray:
    """A full grid over ``box`` for one or two elasticities; seeded uniform draws for more."""
    if p <= 2:
        axis = np.arange(box[0], box[1] + step / 2, step)
        return np.array(np.meshgrid(*([axis] * p), indexing="ij")).reshape(p, -1).T
    rng = np.random.default_rng(20240611)
    return rng.uniform(box[0], box[1], size=(n_random, p))


def search_roots(engine: MarkovGMM, starts: list[np.ndarray], n_seeds: int = 8,
                 separation: float = 0.2) -> list[tuple[np.ndarray, bool]]:
    """Distinct solutions reached from ``starts`` and from the best well-separated grid points."""
    d = engine.d
    lin = engine if d.degree == 1 else MarkovGMM(
        MarkovDesign(d.v, d.X, d.vl, d.Xl, d.Hx, d.E, d.z_cols, d.lom, 1, d.entity, d.rows), engine.w)
    pts = grid_points(d.p)
    Q = lin.batch_objective(pts)
    order = np.argsort(np.where(np.isfinite(Q), Q, np.inf), kind="stable")
    seeds: list[np.ndarray] = []
    for i in order:
        if len(seeds) >= n_seeds:
            break
        if all(np.max(np.abs(pts[i] - s)) >= separation for s in seeds):
            seeds.append(pts[i])
    found: list[tuple[np.ndarray, bool, float]] = []
    for x0 in [*starts, *seeds]:
        if not np.all(np.isfinite(x0)):
            continue
        try:
            b, ok = engine.solve(x0)
        except (np.linalg.LinAlgError, ValueError):
            continue
        if not np.all(np.isfinite(b)):
            continue
        found.append((b, ok, float(engine.evaluate(b)["Q"])))
    found.sort(key=lambda r: r[2])
    distinct: list[tuple[np.ndarray, bool]] = []
    for b, ok, _ in found:
        if all(np.max(np.abs(b - c)) > 1e-3 for c, _ in distinct):
            distinct.append((b, ok))
    return distinct


def roots_frame(reports: list[RootReport], names: list[str]) -> pd.DataFrame:
    rows = []
    for r in reports:
        row: dict[str, Any] = dict(zip(names, r.b.tolist(), strict=True))
        row.update({"objective": r.objective, "j_stat": r.j_stat, "j_df": r.j_df, "j_pvalue": r.j_pvalue,
                    "rho": r.rho, "returns_to_scale": r.returns_to_scale, "admissible": r.admissible,
                    "reasons": "; ".join(r.reasons)})
        rows.append(row)
    return pd.DataFrame(rows)


def choose_root(engine: MarkovGMM, candidates: list[tuple[np.ndarray, bool]], screens: RootScreens,
                names: list[str], label: str, other_elasticity: float = 0.0) -> tuple[RootReport, list[RootReport]]:
    """The one admissible root, or :class:`RootSelectionError` naming what was found."""
    reports = [assess_root(engine, b, screens, ok, other_elasticity) for b, ok in candidates]
    good = [r for r in reports if r.admissible]
    if len(good) == 1:
        return good[0], reports
    frame = roots_frame(reports, names)
    listed = "; ".join(r.describe(names) for r in reports) or "none"
    if not good:
        raise RootSelectionError(f"prodest ({label}): no root of the moment conditions is admissible, so there is "
                                 f"no estimate. Roots found: {listed}", frame)
    raise RootSelectionError(f"prodest ({label}): {len(good)} roots fit the moments and pass the economic screens; "
                             f"the data cannot choose between them, so there is no estimate. Roots: "
                             + "; ".join(r.describe(names) for r in good)
                             + ". An instrument that moves the free inputs but not productivity (lag_instruments) "
                             "or a longer panel may separate them.", frame)


def on_accepted_root(engine: MarkovGMM, b: np.ndarray, chosen: RootReport, reports: list[RootReport],
                     screens: RootScreens, other_elasticity: float = 0.0) -> bool:
    """Whether a bootstrap solution ``b`` belongs to the accepted root (module ``bootstrap``)."""
    if screens.economics(b, engine.evaluate(b)["rho"], other_elasticity):
        return False
    dist = [float(np.max(np.abs(b - r.b))) for r in reports]
    return reports[int(np.argmin(dist))] is chosen
