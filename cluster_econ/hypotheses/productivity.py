"""Productivity for the propositions: the survey-robust estimator of
:mod:`cluster_econ.estimate.production`, and the covariance of its elasticities.

The propositions on productivity (P2 imitation, P3 stagnant expansion, P7 sources of growth)
read log productivity ``tfp = y - b_l l - b_k k`` estimated from the user's panel by
:func:`cluster_econ.estimate.production.estimate_productivity` with its default, a dynamic panel
(the common-factor model of Blundell and Bond 2000) whose instruments are dated so that
classical measurement error in money does not bias it, with each cluster's productivity level and
last year's innovation by phase in the law of motion. Its module docstring says why, and which
designs break it.

P3 and P7 add the elasticities' sampling error to their standard errors
(:mod:`cluster_econ.hypotheses.productivity_runners`), which needs the covariance of ``(b_l,
b_k)``. ``estimate_productivity`` gives one only through a block bootstrap (about 0.1 s a draw on
the demo universe, too slow for every verdict of a Monte Carlo). Until it offers an analytic one,
:func:`elasticity_covariance` computes it here: the GMM sandwich of the same model's moments
evaluated at the estimator's ``(b_l, b_k, rho)``.

The model, for enterprise ``i`` of cluster ``c`` in year ``t``::

    y_it = b_l l_it + b_k k_it + omega_it + e_it
    omega_it = rho omega_i,t-1 + a_c + g_phase(t) innovator_i,t-1 + xi_it

``e`` is serially independent (the transitory shock plus measurement error in value added and
capital). Quasi-differencing removes ``omega``::

    u_t = (y_t - rho y_t-1) - b_l (l_t - rho l_t-1) - b_k (k_t - rho k_t-1) - a_c
          - g_phase innovator_t-1 = xi_t + e_t - rho e_t-1

with moments ``E[u_t z_t] = 0`` for the instruments ``z``: cluster dummies and innovator x phase
(their own instruments), employment in ``t-1`` and ``t-2`` (head counts, taken as measured
without error), capital and value added in ``t-2`` (money: dated ``t-2`` because its error sits in
``e_t-1``), and the cluster's log price index in ``t-1`` and ``t-2`` when the panel has one.
The covariance is the sandwich with the two-stage least squares weight, clustered by enterprise,
on the enterprise-years observed with their two previous calendar years; the cluster levels and
innovation effects are re-fitted at the given ``(b_l, b_k, rho)``. On the demo design its
standard errors match the Monte Carlo spread of the estimates (see the tests).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["MomentDesign", "elasticity_covariance", "lag_positions", "moment_design"]

MIN_ROWS = 200


def _lag(values: np.ndarray, lagpos: np.ndarray) -> np.ndarray:
    out = np.full(values.shape, np.nan)
    ok = lagpos >= 0
    out[ok] = values[lagpos[ok]]
    return out


def lag_positions(entity: np.ndarray, year: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row positions of each row's own ``t-1`` and ``t-2`` rows (``-1`` where the enterprise was
    not observed in that calendar year). Rows must be sorted by entity, then year."""
    n = len(entity)
    same = np.r_[False, entity[1:] == entity[:-1]]
    gap1 = np.r_[0, np.diff(year)]
    lag1 = np.where(same & (gap1 == 1), np.arange(n) - 1, -1)
    lag2 = np.full(n, -1)
    has = lag1 >= 0
    lag2[has] = lag1[lag1[has]]
    return lag1, lag2


@dataclass(frozen=True)
class MomentDesign:
    """The arrays of the quasi-differenced moments (rows with every lag and instrument)."""

    y0: np.ndarray          # y_t
    y1: np.ndarray          # y_t-1
    X0: np.ndarray          # (l_t, k_t)
    X1: np.ndarray          # (l_t-1, k_t-1)
    D: np.ndarray           # law-of-motion controls (own instruments)
    W: np.ndarray           # excluded instruments
    instruments: tuple[str, ...]
    groups: np.ndarray      # enterprise codes


def _independent(A: np.ndarray) -> np.ndarray:
    """Indices of a set of linearly independent columns of ``A`` (pivoted QR)."""
    from scipy.linalg import qr as pivoted_qr

    if A.shape[1] == 0:
        return np.arange(0)
    _, r_piv, piv = pivoted_qr(A, mode="economic", pivoting=True)
    diag = np.abs(np.diag(r_piv))
    return np.sort(piv[diag > 1e-9 * max(float(diag.max()), 1e-300)])


def moment_design(frame: pd.DataFrame) -> MomentDesign | None:
    """The moment arrays of a frame built by :func:`cluster_econ.hypotheses.data.build`
    (``enterprise_id``, ``cluster_id``, ``year``, ``log_va_q``, ``log_l``, ``log_k``; ``innovator``,
    ``phase`` and ``log_price_index`` when present), or ``None`` with fewer than 200 usable rows or
    fewer than three independent instruments."""
    d = frame.sort_values(["enterprise_id", "year"], kind="mergesort")
    ent = pd.factorize(d["enterprise_id"])[0]
    lag1, lag2 = lag_positions(ent, d["year"].to_numpy(dtype=np.int64))
    y = d["log_va_q"].to_numpy(dtype=float)
    lab = d["log_l"].to_numpy(dtype=float)
    cap = d["log_k"].to_numpy(dtype=float)
    cols = {"y": y, "l": lab, "k": cap, "y1": _lag(y, lag1), "l1": _lag(lab, lag1), "k1": _lag(cap, lag1),
            "l2": _lag(lab, lag2), "k2": _lag(cap, lag2), "y2": _lag(y, lag2)}
    instruments = ["l1", "l2", "k2", "y2"]
    if "log_price_index" in d.columns and d["log_price_index"].notna().any():
        lp = d["log_price_index"].to_numpy(dtype=float)
        cols["p1"], cols["p2"] = _lag(lp, lag1), _lag(lp, lag2)
        instruments += ["p1", "p2"]
    ok = np.ones(len(d), dtype=bool)
    for v in cols.values():
        ok &= np.isfinite(v)
    exog = [pd.get_dummies(d["cluster_id"].astype(str)).to_numpy(dtype=float)]
    if "innovator" in d.columns and d["innovator"].notna().any():
        inn1 = _lag(d["innovator"].to_numpy(dtype=float), lag1)
        phase = d["phase"].astype(str).to_numpy() if "phase" in d.columns else np.full(len(d), "all")
        ok &= np.isfinite(inn1)
        exog += [(inn1 * (phase == p))[:, None] for p in sorted(set(phase[ok]))]
    if int(ok.sum()) < MIN_ROWS:
        return None
    D = np.column_stack(exog)[ok]
    D = D[:, _independent(D)]
    W = np.column_stack([cols[c][ok] for c in instruments])
    # instruments that add nothing beyond the controls (a price index that never moves) are dropped
    W_net = W - D @ np.linalg.lstsq(D, W, rcond=None)[0]
    keep = _independent(W_net / np.maximum(W_net.std(axis=0), 1e-300))
    keep = keep[W_net[:, keep].std(axis=0) > 1e-9 * np.maximum(W.std(axis=0)[keep], 1e-300)]
    if len(keep) < 3:
        return None
    return MomentDesign(cols["y"][ok], cols["y1"][ok], np.column_stack([cols["l"][ok], cols["k"][ok]]),
                        np.column_stack([cols["l1"][ok], cols["k1"][ok]]), D, W[:, keep],
                        tuple(instruments[j] for j in keep), ent[ok])


def elasticity_covariance(frame: pd.DataFrame, beta_l: float, beta_k: float, rho: float) -> np.ndarray | None:
    """Covariance of ``(b_l, b_k)`` at the given estimate: the GMM sandwich
    ``(A'P A)^-1 A'Z (Z'Z)^-1 S (Z'Z)^-1 Z'A (A'P A)^-1``, ``A = -du/dtheta`` (the
    quasi-differenced inputs, the controls, and ``y_t-1 - b'x_t-1`` for rho), ``P`` the projection
    on ``Z = (D, W)``, ``S = G/(G-1) sum_g s_g s_g'`` with ``s_g`` the sum of ``z_i u_i`` over
    enterprise ``g``'s rows. ``None`` when the frame cannot support the moments."""
    m = moment_design(frame)
    if m is None or not all(np.isfinite(v) for v in (beta_l, beta_k, rho)):
        return None
    b = np.array([beta_l, beta_k])
    r = (m.y0 - rho * m.y1) - (m.X0 - rho * m.X1) @ b
    c = np.linalg.lstsq(m.D, r, rcond=None)[0]        # the controls at (b, rho): D is in Z
    u = r - m.D @ c
    Z = np.column_stack([m.D, m.W])
    A = np.column_stack([m.X0 - rho * m.X1, m.D, m.y1 - m.X1 @ b])
    ZZ_inv_ZA = np.linalg.solve(Z.T @ Z, Z.T @ A)
    bread = np.linalg.pinv((Z.T @ A).T @ ZZ_inv_ZA)
    G = int(m.groups.max()) + 1
    s = np.zeros((G, Z.shape[1]))
    np.add.at(s, m.groups, Z * u[:, None])
    meat = (G / max(G - 1, 1)) * (s.T @ s)
    cov = bread @ (ZZ_inv_ZA.T @ meat @ ZZ_inv_ZA) @ bread
    return cov[:2, :2]
