"""Benchmark: att_gt on 1M firm-years (100k firms, 10 periods, 5 cohorts and never-treated firms),
analytic standard errors, against moderndid's att_gt on the same data in the same process.

Prints, for each peer, the best of ``repeats`` runs (no bootstrap, no uniform band: ``cband=False``
in both) in wall time and in process CPU time, the ratios, and the largest difference of the
ATT(g,t) and their standard errors. Two specifications: no covariates (outcome regression) and one
covariate (doubly robust).

BLAS threads are set to one before numpy loads (``OPENBLAS_NUM_THREADS=1``; both peers run under the
same setting; on a shared machine oversubscribed BLAS threads distort timings). polars keeps its
own thread pool (moderndid prepares data with it), so moderndid's CPU time can exceed its wall
time; on an oversubscribed machine wall times of both grow with the load, CPU times much less.

Run: python benchmarks/bench_did.py [n_firms] [repeats]
"""

from __future__ import annotations

import os

os.environ["OPENBLAS_NUM_THREADS"] = "1"
os.environ["OMP_NUM_THREADS"] = "1"
os.environ["MKL_NUM_THREADS"] = "1"

import sys
import time
from typing import Any

import numpy as np
import pandas as pd


def make_panel(n_firms: int = 100_000, T: int = 10, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = rng.choice([0, 3, 4, 5, 6, 7], n_firms)  # never treated and five cohorts
    x = rng.normal(size=n_firms)
    t = np.tile(np.arange(1, T + 1), n_firms)
    gg, xx = np.repeat(g, T), np.repeat(x, T)
    effect = np.where((gg > 0) & (t >= gg), 0.1 * (t - gg + 1), 0.0)
    y = np.repeat(rng.normal(size=n_firms) + 0.5 * (g > 0), T) + 0.05 * t + 0.2 * xx * t / T + effect
    y = y + rng.normal(size=n_firms * T)
    return pd.DataFrame({"firm": np.repeat(np.arange(n_firms), T), "year": t, "g": gg, "x": xx, "y": y})


def main() -> None:
    import moderndid
    import polars as pl

    import cluster_econ as ce

    n_firms = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    d = make_panel(n_firms)
    dp = pl.from_pandas(d)
    ce.att_gt(d.head(5000), "y", "year", "firm", "g", cband=False)  # imports and first-call costs
    print(f"OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']} (one BLAS thread for both; shared machine, "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    print(f"att_gt on {len(d):,} firm-years ({n_firms:,} firms, 10 periods, 5 cohorts), analytic s.e., "
          f"best of {repeats}: wall s / CPU s")

    def best(fn: Any) -> tuple[Any, float, float]:
        walls, cpus = [], []
        for _ in range(repeats):
            w0, c0 = time.perf_counter(), time.process_time()
            out = fn()
            walls.append(time.perf_counter() - w0)
            cpus.append(time.process_time() - c0)
        return out, min(walls), min(cpus)

    for xformla, method in ((None, "reg"), ("~ x", "dr")):
        ours, w_ours, c_ours = best(lambda xformla=xformla, method=method: ce.att_gt(
            d, "y", "year", "firm", "g", xformla=xformla, est_method=method, cband=False))
        peer, w_peer, c_peer = best(lambda xformla=xformla, method=method: moderndid.att_gt(
            data=dp, yname="y", tname="year", idname="firm", gname="g",
            xformla=xformla.replace(" ", "") if xformla else None, est_method=method, cband=False))
        d_att = np.max(np.abs(ours.params.to_numpy() - np.asarray(peer.att_gt)))
        d_se = np.max(np.abs(ours.bse.to_numpy() - np.asarray(peer.se_gt)))
        print(f"  {method:3s} covariates={xformla or 'none':5s} cluster_econ {w_ours:6.2f} / {c_ours:6.2f}   "
              f"moderndid {w_peer:6.2f} / {c_peer:6.2f}   ratio wall {w_peer / w_ours:5.1f}x, CPU "
              f"{c_peer / c_ours:5.1f}x   max|dATT| {d_att:.1e}  max|dSE| {d_se:.1e}")

if __name__ == "__main__":
    main()
