"""Benchmark: randomization inference, 2,000 permutations of a 1M-row regression with firm and year
fixed effects (100k firms, 10 years, treatment x post, one control, 20 strata, firms randomized
within strata).

Prints the wall and CPU time of ``randomization_inference`` with 2,000 permutations for the coefficient and
for the t statistic with CRV1 by firm (cell sums), iid (unit sums) and HC1 (rows); checks on three
draws that the fast t statistics equal refitting with ``feols``; and, for scale, the time of one
refit (what a refitting implementation such as Stata's ``ritest`` pays per draw, cache helping).

BLAS is limited to one thread (``OPENBLAS_NUM_THREADS=1``, set before numpy loads): the machine is
shared, and oversubscribed BLAS threads distort timings.

Run: python benchmarks/bench_ri.py [n_firms] [reps]
"""

from __future__ import annotations

import os

os.environ["OPENBLAS_NUM_THREADS"] = "1"
os.environ["OMP_NUM_THREADS"] = "1"
os.environ["MKL_NUM_THREADS"] = "1"

import sys
import time

import numpy as np
import pandas as pd

FORMULA = "y ~ treated:post + x | firm + year"


def make_experiment(n_firms: int = 100_000, T: int = 10, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    strat = rng.integers(0, 20, n_firms)
    treated = (rng.random(n_firms) < 0.5).astype(float)
    year = np.tile(np.arange(T), n_firms)
    post = (year >= T // 2).astype(float)
    x = rng.normal(size=n_firms * T)
    y = (0.01 * np.repeat(treated, T) * post + 0.3 * x + np.repeat(rng.normal(size=n_firms), T) + 0.1 * year
         + rng.normal(size=n_firms * T) * (1 + np.repeat(treated, T)))
    return pd.DataFrame({"firm": np.repeat(np.arange(n_firms), T), "year": year, "stratum": np.repeat(strat, T),
                         "treated": np.repeat(treated, T), "post": post, "x": x, "y": y})


def main() -> None:
    import cluster_econ as ce

    n_firms = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    reps = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    print(f"OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']} (one BLAS thread; shared machine, load "
          f"average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores: wall time exceeds CPU time under load)")
    d = make_experiment(n_firms)
    t0 = time.perf_counter()
    fit = ce.feols(FORMULA, d, vcov={"CRV1": "firm"})
    t_fit = time.perf_counter() - t0
    d2 = d.assign(treated=np.repeat(np.random.default_rng(1).permutation(d["treated"].to_numpy()[::10]), 10))
    t0 = time.perf_counter()
    ce.feols(FORMULA, d2, vcov={"CRV1": "firm"})
    t_refit = time.perf_counter() - t0
    print(f"{len(d):,} rows, {n_firms:,} firms, firm + year fixed effects; first feols {t_fit:.2f} s, one refit "
          f"(cache warm) {t_refit:.2f} s -> {reps:,} refits about {reps * t_refit:,.0f} s")
    kw = dict(cluster="firm", strata="stratum", reps=reps, seed=1)
    times = {}
    for label, vcov, stat in [("coefficient", {"CRV1": "firm"}, "coef"), ("t, CRV1 by firm", {"CRV1": "firm"}, "t"),
                              ("t, iid", "iid", "t"), ("t, HC1", "HC1", "t")]:
        f = fit if vcov == {"CRV1": "firm"} else ce.feols(FORMULA, d, vcov=vcov)
        t0, c0 = time.perf_counter(), time.process_time()
        r = ce.randomization_inference(f, d, "treated:post", "treated", statistic=stat, **kw)
        times[label] = time.perf_counter() - t0
        print(f"RI, {label:<16} {reps:,} permutations within strata: {times[label]:6.1f} s wall, "
              f"{time.process_time() - c0:6.1f} s CPU (p = {r.p_value:.4f}; {r.method})")

    # exactness at scale: three draws, fast t against refitting with feols
    seen: list[np.ndarray] = []

    def record(rng: np.random.Generator, units: pd.DataFrame) -> np.ndarray:
        t = units["treatment"].to_numpy().copy()
        s = units["stratum"].to_numpy()
        for k in np.unique(s):
            idx = np.flatnonzero(s == k)
            t[idx] = rng.permutation(t[idx])
        seen.append(t)
        return t

    r = ce.randomization_inference(fit, d, "treated:post", "treated", cluster="firm", strata="stratum", reps=3,
                                   seed=2, assign=record)
    worst = 0.0
    for t_unit, t_fast in zip(seen, r.draws, strict=True):
        refit = ce.feols(FORMULA, d.assign(treated=np.repeat(t_unit, 10)), vcov={"CRV1": "firm"}, tol=1e-13)
        worst = max(worst, abs(t_fast - refit.tvalues["treated:post"]) / max(1.0, abs(t_fast)))
    print(f"largest relative difference of the fast CRV1 t from refitting, 3 draws: {worst:.1e}")
    target = 60.0
    for label in ("coefficient", "t, CRV1 by firm"):
        print(f"target {reps:,} permutations under {target:.0f} s, {label}: "
              f"{'met' if times[label] < target else 'MISSED'} ({times[label]:.1f} s; refitting would take about "
              f"{reps * t_refit / times[label]:.0f}x longer)")


if __name__ == "__main__":
    main()
