"""Benchmark: randomization inference, 2,000 permutations of a 1M-row regression with firm and year
fixed effects (100k firms, 10 years, treatment x post, one control, 20 strata, CRV1 by firm).

Prints the wall time of ``randomization_inference`` for the coefficient (the fast path: unit-level
sums, no re-demeaning) and, on fewer draws, for the t statistic (row-level fast path), each
extrapolated to 2,000 draws; and, for scale, the time of one refit of the same model with ``feols``
(what a refitting implementation such as Stata's ritest pays per draw, cache helping).

Run: python benchmarks/bench_ri.py [n_firms]
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import sys
import time

import numpy as np
import pandas as pd


def make_experiment(n_firms: int = 100_000, T: int = 10, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    strat = rng.integers(0, 20, n_firms)
    treated = (rng.random(n_firms) < 0.5).astype(float)
    year = np.tile(np.arange(T), n_firms)
    post = (year >= T // 2).astype(float)
    x = rng.normal(size=n_firms * T)
    y = (0.02 * np.repeat(treated, T) * post + 0.3 * x + np.repeat(rng.normal(size=n_firms), T) + 0.1 * year
         + rng.normal(size=n_firms * T))
    return pd.DataFrame({"firm": np.repeat(np.arange(n_firms), T), "year": year, "stratum": np.repeat(strat, T),
                         "treated": np.repeat(treated, T), "post": post, "x": x, "y": y})


def main() -> None:
    import cluster_econ as ce

    n_firms = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    d = make_experiment(n_firms)
    t0 = time.perf_counter()
    fit = ce.feols("y ~ treated:post + x | firm + year", d, vcov={"CRV1": "firm"})
    t_fit = time.perf_counter() - t0
    d2 = d.assign(treated=np.repeat(np.random.default_rng(1).permutation(d["treated"].to_numpy()[::10]), 10))
    t0 = time.perf_counter()
    ce.feols("y ~ treated:post + x | firm + year", d2, vcov={"CRV1": "firm"})
    t_refit = time.perf_counter() - t0
    print(f"{len(d):,} rows, {n_firms:,} firms; first feols {t_fit:.2f} s, one refit (cache warm) {t_refit:.2f} s "
          f"-> 2,000 refits about {2000 * t_refit:,.0f} s")
    t0 = time.perf_counter()
    r = ce.randomization_inference(fit, d, "treated:post", "treated", cluster="firm", strata="stratum", reps=2000,
                                   seed=1, statistic="coef")
    t_coef = time.perf_counter() - t0
    print(f"RI, coefficient, 2,000 permutations within strata: {t_coef:.1f} s (p = {r.p_value:.3f}; {r.method})")
    reps_t = 100
    t0 = time.perf_counter()
    r = ce.randomization_inference(fit, d, "treated:post", "treated", cluster="firm", strata="stratum",
                                   reps=reps_t, seed=1, statistic="t")
    t_t = time.perf_counter() - t0
    print(f"RI, t statistic (CRV1), {reps_t} permutations: {t_t:.1f} s -> 2,000 about {t_t / reps_t * 2000:.0f} s")


if __name__ == "__main__":
    main()
