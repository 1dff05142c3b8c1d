"""A small reduced-form generator of cluster_year tables with known phases.

This is not the model of :mod:`cluster_econ.simulate` (which simulates enterprises); it writes
cluster-level series directly, with phase-specific drifts that follow the paper's phase table,
so that phase detection can be tested on data whose truth is known and whose noise is set by the
caller. Phase means (per year): initiation, few firms growing slowly, prices flat, little
innovation; quantity expansion, the firm count growing by ``expansion_growth``, net entry, real
prices falling, productivity flat; quality improvement, innovation and quality institutions
high, exits up, the firm count shrinking, productivity and concentration rising. Managers'
mean schooling is low in initiation (6 years), mixed in expansion and stagnation (8) and high in
quality improvement (12); it is drawn from a generator spawned from ``seed``, so the other
series are the same as without it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["synthetic_cluster_year"]

_MEANS = {
    # firm growth, price trend, productivity trend, innovation, institutions, exit, entry, dcr4
    "initiation": (0.05, 0.00, 0.00, 0.04, 0.02, 0.02, 0.07, 0.000),
    "quantity_expansion": (0.25, -0.04, 0.00, 0.06, 0.04, 0.04, 0.29, -0.010),
    "stagnation": (0.02, -0.01, -0.01, 0.06, 0.04, 0.08, 0.10, 0.000),
    "quality_improvement": (-0.03, 0.01, 0.04, 0.40, 0.35, 0.12, 0.09, 0.015),
}
_SCHOOLING = {"initiation": 6.0, "quantity_expansion": 8.0, "stagnation": 8.0,
              "quality_improvement": 12.0}


def synthetic_cluster_year(
    durations: Sequence[Sequence[tuple[str, int]]],
    seed: int | np.random.Generator = 0,
    noise: float = 1.0,
    start_year: int = 1980,
    initial_firms: int = 3,
) -> pd.DataFrame:
    """Cluster-year table with a ``phase`` column holding the truth.

    Parameters
    ----------
    durations : sequence of sequences of (phase, years)
        For each cluster, its phases in order and how many years each lasts.
    seed : int or Generator
        Randomness (a ``numpy.random.Generator`` or a seed for one).
    noise : float
        Multiplier of the noise standard deviations (1 = default; 0 = noiseless).
    start_year : int
        First year of every cluster.
    initial_firms : int
        Firms in the first year.
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    rng_school = rng.spawn(1)[0]
    rows = []
    for c, plan in enumerate(durations):
        n = float(initial_firms)
        logp = np.log(100.0)
        sales_pw = 10.0
        cr4 = 0.8
        year = start_year
        for phase, years in plan:
            g, dp, dprod, inn, inst, ex, en, dcr = _MEANS[phase]
            for _ in range(int(years)):
                n_prev = n
                n = max(n * np.exp(g + noise * rng.normal(0, 0.03)), 1.0)
                logp += dp + noise * rng.normal(0, 0.01)
                sales_pw *= np.exp(dprod + noise * rng.normal(0, 0.01))
                cr4 = float(np.clip(cr4 + dcr + noise * rng.normal(0, 0.005), 0.05, 1.0))
                n_firms = round(n)
                exit_rate = float(np.clip(ex + noise * rng.normal(0, 0.01), 0, 1))
                entry_rate = float(np.clip(en + noise * rng.normal(0, 0.02), 0, None))
                emp = 5.0 + (10.0 if phase == "quality_improvement" else 0.0)
                sh_np = float(np.clip(inn + noise * rng.normal(0, 0.03), 0, 1))
                sh_pc = float(np.clip(inn * 0.8 + noise * rng.normal(0, 0.03), 0, 1))
                sh_inst = [float(np.clip(inst + noise * rng.normal(0, 0.03), 0, 1))
                           for _ in range(5)]
                rows.append({
                    "cluster_id": f"C{c + 1:02d}", "year": year, "n_firms": n_firms,
                    "n_entries": round(entry_rate * n_prev), "n_exits": round(exit_rate * n_firms),
                    "entry_rate": entry_rate, "exit_rate": exit_rate,
                    "mean_employment": emp, "cr4": cr4,
                    "share_new_product": sh_np, "share_new_process": sh_pc,
                    "share_own_brand": sh_inst[0], "share_direct_sales": sh_inst[1],
                    "share_long_term_subcontract": sh_inst[2],
                    "share_vertical_integration": sh_inst[3],
                    "share_quality_certification": sh_inst[4],
                    "total_sales": sales_pw * emp * n_firms, "price_index": float(np.exp(logp)),
                    "mean_schooling": float(max(_SCHOOLING[phase]
                                                + noise * rng_school.normal(0, 0.5), 0.0)),
                    "phase": phase,
                })
                year += 1
    return pd.DataFrame(rows)
