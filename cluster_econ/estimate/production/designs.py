"""The law-of-motion moment problems of ACF, GNR and the dynamic panel, built from a sample.

``proxy_design`` (ACF on ``Phi``, GNR on ``C + omega``)
    Rows ``t`` whose first-stage value exists in ``t`` and ``t-1``. Instruments: state inputs in
    ``t``, free and state inputs in ``t-1``, the ``lag_instruments`` in ``t-1``; law-of-motion
    controls in ``t-1`` enter ``g`` linearly.

``dynamic_design`` (the dynamic panel)
    Rows ``t`` observed with ``t-1``. ``v`` is output itself, so ``v_t-1(b)`` carries last
    year's transitory shock and any measurement error; the law of motion is fitted by 2SLS.
    Instruments: the constant, the law-of-motion controls (``t-1``), the controls (``t`` and
    ``t-1``, entering ``g`` freely), the free inputs in ``t-1``, every input and output in ``t-2``
    (set to zero, with an indicator in ``g`` and among the instruments, where ``t-2`` was not
    observed: such rows still identify through ``t-1``) and the ``lag_instruments`` in ``t-1``
    and ``t-2``.
    Nothing dated ``t`` and no money value dated ``t-1`` is an instrument: classical measurement
    error in output, capital or materials, independent across years, leaves the moments valid.
"""

from __future__ import annotations

import numpy as np

from cluster_econ.errors import EstimationError
from cluster_econ.estimate.production.markov import MarkovDesign
from cluster_econ.estimate.production.sample import Sample

__all__ = ["dynamic_design", "independent_columns", "proxy_design"]


def independent_columns(M: np.ndarray, with_constant: bool = True, tol: float = 1e-9) -> list[int]:
    """Indices of columns of ``M`` kept greedily, left to right, when not (numerically) a linear
    combination of the kept ones (and of a constant): a pivot-free Cholesky on the Gram matrix."""
    Mc = M - M.mean(axis=0) if with_constant else M
    G = Mc.T @ Mc
    kept: list[int] = []
    for j in range(M.shape[1]):
        gjj = G[j, j]
        if gjj <= 1e-14 * max(1.0, float(np.max(np.abs(np.diag(G))))):
            continue
        if kept:
            K = np.array(kept)
            resid = gjj - G[j, K] @ np.linalg.solve(G[np.ix_(K, K)], G[K, j])
            if resid <= tol * gjj:
                continue
        kept.append(j)
    return kept


def proxy_design(s: Sample, target: np.ndarray, lom_degree: int) -> MarkovDesign:
    """ACF / GNR second-stage problem on the first-stage ``target``."""
    has = s.lag1 >= 0
    ok = np.zeros(s.n, dtype=bool)
    ok[has] = np.isfinite(target[has]) & np.isfinite(target[s.lag1[has]])
    t = np.flatnonzero(ok)
    tl = s.lag1[t]
    nf, ns = s.F.shape[1], s.S.shape[1]
    X = s.X
    spec = s.spec
    z_cols = ([("X", nf + j) for j in range(ns)] + [("Xl", j) for j in range(nf)]
              + [("Xl", nf + j) for j in range(ns)] + [("E", j) for j in range(s.IV.shape[1])])
    z_names = ([*spec.state] + [f"L.{c}" for c in spec.free] + [f"L.{c}" for c in spec.state]
               + [f"L.{c}" for c in spec.lag_instruments])
    return MarkovDesign(v=target[t], X=X[t], vl=target[tl], Xl=X[tl], Hx=s.L[tl], E=s.IV[tl],
                        z_cols=tuple(z_cols), lom="ols", degree=lom_degree, entity=s.entity[t], rows=t,
                        z_names=tuple(z_names), hx_names=tuple(f"L.{c}" for c in spec.lom_controls))


def dynamic_design(s: Sample) -> MarkovDesign:
    """The dynamic-panel problem (see the module docstring)."""
    spec = s.spec
    t = np.flatnonzero(s.lag1 >= 0)
    if t.size == 0:
        raise EstimationError("prodest (dynamic): no entity is observed in two consecutive years")
    tl = s.lag1[t]
    t2 = s.lag2[t]
    has2 = t2 >= 0
    t2s = np.where(has2, t2, 0)
    nf = s.F.shape[1]
    X = s.X
    miss2 = (~has2).astype(float)[:, None]
    hx_parts = [s.L[tl], s.C[t], s.C[tl], miss2]
    hx_names = ([f"L.{c}" for c in spec.lom_controls] + list(spec.controls) + [f"L.{c}" for c in spec.controls]
                + ["no t-2"])
    Hx_all = np.column_stack(hx_parts)
    keep_h = independent_columns(Hx_all)
    Hx = Hx_all[:, keep_h]
    hx_names = [hx_names[j] for j in keep_h]
    zero2 = has2.astype(float)[:, None]
    e_parts = [s.F[t2s] * zero2, s.S[t2s] * zero2, s.y[t2s][:, None] * zero2, s.IV[tl], s.IV[t2s] * zero2]
    e_names = ([f"L2.{c}" for c in spec.free] + [f"L2.{c}" for c in spec.state] + [f"L2.{spec.output}"]
               + [f"L.{c}" for c in spec.lag_instruments] + [f"L2.{c}" for c in spec.lag_instruments])
    E_all = np.column_stack(e_parts)
    base = np.column_stack([Hx, X[tl][:, :nf]])
    keep_e = [j for j in independent_columns(np.column_stack([base, E_all]))
              if j >= base.shape[1]]
    keep_e = [j - base.shape[1] for j in keep_e]
    E = E_all[:, keep_e]
    z_cols = ([("one", 0)] + [("Hx", j) for j in range(Hx.shape[1])] + [("Xl", j) for j in range(nf)]
              + [("E", j) for j in range(E.shape[1])])
    z_names = ["const", *hx_names, *(f"L.{c}" for c in spec.free), *(e_names[j] for j in keep_e)]
    d = MarkovDesign(v=s.y[t], X=X[t], vl=s.y[tl], Xl=X[tl], Hx=Hx, E=E, z_cols=tuple(z_cols), lom="iv",
                     degree=1, entity=s.entity[t], rows=t, z_names=tuple(z_names), hx_names=tuple(hx_names),
                     extra={"rows_with_t2": int(has2.sum())})
    if d.df < 0:
        raise EstimationError(f"prodest (dynamic): {d.m} instruments ({', '.join(z_names)}) cannot identify "
                              f"{d.p} elasticities and {d.h} law-of-motion coefficients; the panel needs entities "
                              "observed three years running, or lag_instruments")
    return d
