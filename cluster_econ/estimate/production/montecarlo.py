"""Monte Carlo designs with known production functions (for tests and benchmarks).

Written by us from the published descriptions; parameters the descriptions leave open are ours
and stated here. Every generator returns one row per firm-year with ``firm``, ``year``, log
output ``y``, log labour ``l``, log capital ``k``, log materials ``m`` (as measured), investment
in levels ``inv`` and the true log productivity ``omega``, after a burn-in.

:func:`acf_panel` -- the designs of Ackerberg, Caves and Frazer (2015, section 5)
    Value added ``y = 0.6 l + 0.4 k + omega + eps`` (``eps ~ N(0, 0.1)``), Leontief in materials:
    the firm buys materials in proportion to the output it plans with the labour it has, ``m =
    0.6 l + 0.4 k + omega``, so materials rise one for one with productivity and with labour
    (ACF's functional dependence: given capital and materials, labour has no variation left for
    the first stage of LP). ``omega`` is AR(1) with ``rho =
    0.7`` and stationary s.d. 0.3, evolving in two half-year steps (``omega_t-b``, ``b = 0.5``).
    Capital: ``K_t+1 = 0.8 K_t + I_t`` with ``I_t = K_t exp(-1.8 + omega_t + psi_t)``,
    ``psi ~ N(0, 0.3)`` an investment-cost shock of the firm-year. Labour is the static demand
    ``l* = (log 0.6 + 0.4 k + E[omega] - w) / 0.4`` under one of three sources of variation:

    - ``dgp=1``: labour is chosen at ``t-b``, knowing ``omega_t-b`` only; firms face log wages
      ``w`` that follow an AR(1) (0.3, stationary s.d. 0.1);
    - ``dgp=2``: labour is chosen at ``t`` knowing ``omega_t``, one wage for all, plus an
      optimisation error ``zeta ~ N(0, 0.37)`` (realised before materials are bought);
    - ``dgp=3``: both: timing, wages and the optimisation error.

    ``materials_error`` adds classical measurement error ``N(0, sd)`` to log materials.

:func:`proxy_panel` -- every proxy assumption holds (the Olley-Pakes / Levinsohn-Petrin world)
    ``y = 0.6 l + 0.3 k + omega + eps``; ``omega`` AR(1) 0.8, innovation s.d. 0.12; log labour
    ``1 + 1.2 omega + 0.3 k - w + nu`` with a persistent log wage (AR(1) 0.7, innovation s.d.
    0.15) and ``nu ~ N(0, 0.1)``; log materials ``0.5 + 1.5 omega + 0.4 k`` and investment
    ``K exp(-2.5 + 1.5 omega)``, zero for 10% of firm-years, both functions of (capital,
    productivity) only; ``K' = (1 - d) K + I`` with a depreciation rate ``d ~ U(0.02, 0.14)`` of
    the firm-year (so this year's capital is not an exact function of last year's capital and
    investment, which would leave Wooldridge's second equation unidentified). With
    ``exit_threshold`` set, a firm exits (it is last seen in ``t-1``, with ``exit`` 1 there) when
    its new productivity falls below
    ``exit_threshold - 0.3 (k_t - 3)``: the Olley-Pakes selection, where larger firms survive
    lower productivity. Exiting firms are replaced by entrants, so the panel keeps its size.

:func:`gross_output_panel` -- Gandhi, Navarro and Rivers' setting
    Gross output ``y = 0.3 l + 0.2 k + 0.45 m + omega + eps``; materials are flexible, bought
    knowing ``omega`` at a firm-year relative price ``pi ~ N(0, 0.1)`` (so the revenue share is
    ``log 0.45 + log E[exp eps] - eps``, column ``share``); labour is chosen in ``t-1`` from
    ``E[omega_t]`` and a persistent wage; capital as in :func:`acf_panel`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["ACF_TRUTH", "GROSS_TRUTH", "PROXY_TRUTH", "acf_panel", "gross_output_panel", "monte_carlo", "proxy_panel"]

ACF_TRUTH = {"l": 0.6, "k": 0.4}
PROXY_TRUTH = {"l": 0.6, "k": 0.3}
GROSS_TRUTH = {"l": 0.3, "k": 0.2, "m": 0.45}


def acf_panel(dgp: int = 1, *, n_firms: int = 1000, n_years: int = 10, seed: int = 0,
              materials_error: float = 0.0, burn: int = 30) -> pd.DataFrame:
    """One panel of the Ackerberg-Caves-Frazer design ``dgp`` (1, 2 or 3; module docstring)."""
    if dgp not in (1, 2, 3):
        raise ValueError(f"dgp must be 1, 2 or 3, not {dgp!r}")
    bl, bk, rho, sd, sd_eps = 0.6, 0.4, 0.7, 0.3, 0.1
    rng = np.random.default_rng(seed)
    sd_half = sd * np.sqrt(1 - rho)
    omega = rng.normal(0, sd, n_firms)
    wages = dgp in (1, 3)
    w = rng.normal(0, 0.1, n_firms) if wages else np.zeros(n_firms)
    k = rng.normal(1.0, 0.5, n_firms)
    out = []
    for t in range(burn + n_years):
        omega_half = np.sqrt(rho) * omega + rng.normal(0, sd_half, n_firms)
        omega_new = np.sqrt(rho) * omega_half + rng.normal(0, sd_half, n_firms)
        if wages:
            w = 0.3 * w + rng.normal(0, 0.1 * np.sqrt(1 - 0.3**2), n_firms)
        known = omega_new if dgp == 2 else np.sqrt(rho) * omega_half + 0.5 * sd_half**2
        l_plan = (np.log(bl) + bk * k + known - w) / (1 - bl)
        l = l_plan + (rng.normal(0, 0.37, n_firms) if dgp in (2, 3) else 0.0)
        omega = omega_new
        m = bl * l + bk * k + omega
        y = bl * l + bk * k + omega + rng.normal(0, sd_eps, n_firms)
        inv = np.exp(k) * np.exp(-1.8 + omega + rng.normal(0, 0.3, n_firms))
        if t >= burn:
            m_obs = m + (rng.normal(0, materials_error, n_firms) if materials_error else 0.0)
            out.append(pd.DataFrame({"firm": np.arange(n_firms), "year": 2000 + t - burn, "y": y, "l": l, "k": k,
                                     "m": m_obs, "inv": inv, "omega": omega}))
        k = np.log(0.8 * np.exp(k) + inv)
    return pd.concat(out, ignore_index=True)


def proxy_panel(*, n_firms: int = 600, n_years: int = 10, seed: int = 0, burn: int = 10,
                exit_threshold: float | None = None) -> pd.DataFrame:
    """One panel in which every proxy assumption holds (module docstring); optional OP exit."""
    rng = np.random.default_rng(seed)
    sd_w = 0.15 / np.sqrt(1 - 0.7**2)

    def fresh(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return (rng.normal(0, 0.12 / np.sqrt(1 - 0.8**2), n), rng.normal(0, sd_w, n),
                np.exp(rng.normal(3.0, 0.5, n)))

    omega, w, K = fresh(n_firms)
    ids = np.arange(n_firms)
    next_id = n_firms
    rows = []
    for t in range(burn + n_years):
        omega = 0.8 * omega + rng.normal(0, 0.12, n_firms)
        w = 0.7 * w + rng.normal(0, 0.15, n_firms)
        k = np.log(K)
        if exit_threshold is not None:
            leave = omega < exit_threshold - 0.3 * (k - 3.0)
            if t >= burn + 1 and leave.any():
                rows[-1].loc[leave, "exit"] = 1
            if leave.any():
                n_new = int(leave.sum())
                o_new, w_new, k_new = fresh(n_new)
                omega[leave], w[leave], K[leave] = o_new, w_new, k_new
                ids[leave] = np.arange(next_id, next_id + n_new)
                next_id += n_new
                k = np.log(K)
        lab = 1.0 + 1.2 * omega + 0.3 * k - w + rng.normal(0, 0.1, n_firms)
        mat = 0.5 + 1.5 * omega + 0.4 * k
        inv = K * np.exp(-2.5 + 1.5 * omega) * (rng.random(n_firms) >= 0.1)
        y = 0.6 * lab + 0.3 * k + omega + rng.normal(0, 0.1, n_firms)
        if t >= burn:
            rows.append(pd.DataFrame({"firm": ids.copy(), "year": 2000 + t - burn, "y": y, "l": lab, "k": k,
                                      "m": mat, "inv": inv, "omega": omega.copy(), "exit": 0}))
        K = (1 - rng.uniform(0.02, 0.14, n_firms)) * K + inv
    return pd.concat(rows, ignore_index=True)


def gross_output_panel(*, n_firms: int = 1000, n_years: int = 10, seed: int = 0, burn: int = 30) -> pd.DataFrame:
    """One gross-output panel with a flexible input (module docstring); ``share`` is the log
    revenue share of materials."""
    bl, bk, bm, rho, sd, sd_eps = 0.3, 0.2, 0.45, 0.7, 0.3, 0.1
    rng = np.random.default_rng(seed)
    log_e = 0.5 * sd_eps**2  # log E[exp eps]
    omega = rng.normal(0, sd, n_firms)
    w = rng.normal(0, 0.15, n_firms)
    k = rng.normal(1.0, 0.5, n_firms)
    l = rng.normal(0.0, 0.5, n_firms)
    out = []
    for t in range(burn + n_years):
        omega_new = rho * omega + rng.normal(0, sd * np.sqrt(1 - rho**2), n_firms)
        pi = rng.normal(0, 0.1, n_firms)
        m = (np.log(bm) + log_e + bl * l + bk * k + omega_new - pi) / (1 - bm)
        eps = rng.normal(0, sd_eps, n_firms)
        y = bl * l + bk * k + bm * m + omega_new + eps
        share = np.log(bm) + log_e - eps
        inv = np.exp(k) * np.exp(-1.8 + omega_new + rng.normal(0, 0.3, n_firms))
        if t >= burn:
            out.append(pd.DataFrame({"firm": np.arange(n_firms), "year": 2000 + t - burn, "y": y, "l": l, "k": k,
                                     "m": m, "share": share, "inv": inv, "omega": omega_new}))
        # next year's labour, chosen now from expected productivity and the wage
        w = 0.6 * w + rng.normal(0, 0.15 * np.sqrt(1 - 0.36), n_firms)
        e_next = rho * omega_new
        l = (np.log(bl) + bk * np.log(0.8 * np.exp(k) + inv) + e_next - w) / (1 - bl - bm)
        k = np.log(0.8 * np.exp(k) + inv)
        omega = omega_new
    return pd.concat(out, ignore_index=True)


def monte_carlo(make_panel: Callable[[int], pd.DataFrame], estimators: Mapping[str, Mapping[str, Any]],
                truth: Mapping[str, float], replications: int, seed: int = 0) -> pd.DataFrame:
    """Run every estimator on ``replications`` panels ``make_panel(seed + r)``.

    ``estimators`` maps a label to :func:`~cluster_econ.estimate.production.prodest` arguments
    (``bootstrap=0`` is added). Returns one row per label with, for each input in ``truth``, the
    mean estimate over the replications that gave one, its Monte Carlo standard error
    (``sd / sqrt(R_accepted)``), the bias and the standard deviation, beside how many
    replications were declined and the mean seconds per fit.
    """
    import time

    from cluster_econ.errors import EstimationError
    from cluster_econ.estimate.production.estimator import prodest

    est: dict[str, list[np.ndarray]] = {k: [] for k in estimators}
    declined = dict.fromkeys(estimators, 0)
    seconds = dict.fromkeys(estimators, 0.0)
    names = list(truth)
    for r in range(replications):
        panel = make_panel(seed + r)
        for label, args in estimators.items():
            t0 = time.perf_counter()
            try:
                res = prodest(panel, bootstrap=0, **args)
                est[label].append(res.params.reindex(names).to_numpy(dtype=float))
            except EstimationError:
                declined[label] += 1
            seconds[label] += time.perf_counter() - t0
    rows = []
    for label in estimators:
        a = np.array(est[label]).reshape(-1, len(names))
        row: dict[str, Any] = {"estimator": label, "accepted": a.shape[0], "declined": declined[label],
                               "seconds_per_fit": seconds[label] / max(replications, 1)}
        for j, nm in enumerate(names):
            col = a[:, j]
            n = col.size
            row[f"{nm}_mean"] = float(col.mean()) if n else np.nan
            row[f"{nm}_mcse"] = float(col.std(ddof=1) / np.sqrt(n)) if n > 1 else np.nan
            row[f"{nm}_bias"] = float(col.mean() - truth[nm]) if n else np.nan
            row[f"{nm}_sd"] = float(col.std(ddof=1)) if n > 1 else np.nan
        rows.append(row)
    return pd.DataFrame(rows)
