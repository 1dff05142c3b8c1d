"""Benchmark: att_gt on 1M firm-years (100k firms, 10 periods, 5 cohorts and never-treated firms),
analytic standard errors, against moderndid's att_gt on the same data in the same process.

Prints the wall time of each (no bootstrap, no uniform band: ``cband=False`` in both), the ratio,
and the largest difference of the ATT(g,t) and their standard errors. Two specifications: no
covariates (outcome regression) and one covariate (doubly robust).

BLAS threads are set to one before numpy loads (both peers run under the same setting; on a shared
machine multithreaded BLAS makes small vector products erratic).

Run: python benchmarks/bench_did.py [n_firms]
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import sys
import time

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
    d = make_panel(n_firms)
    dp = pl.from_pandas(d)
    ce.att_gt(d.head(5000), "y", "year", "firm", "g", cband=False)  # imports and first-call costs
    print(f"att_gt on {len(d):,} firm-years ({n_firms:,} firms, 10 periods, 5 cohorts), analytic s.e.")
    for xformla, method in ((None, "reg"), ("~ x", "dr")):
        t0 = time.perf_counter()
        ours = ce.att_gt(d, "y", "year", "firm", "g", xformla=xformla, est_method=method, cband=False)
        t_ours = time.perf_counter() - t0
        t0 = time.perf_counter()
        peer = moderndid.att_gt(data=dp, yname="y", tname="year", idname="firm", gname="g",
                                xformla=xformla.replace(" ", "") if xformla else None, est_method=method,
                                cband=False)
        t_peer = time.perf_counter() - t0
        d_att = np.max(np.abs(ours.params.to_numpy() - np.asarray(peer.att_gt)))
        d_se = np.max(np.abs(ours.bse.to_numpy() - np.asarray(peer.se_gt)))
        print(f"  {method:3s} covariates={xformla or 'none':5s} cluster_econ {t_ours:7.2f} s   moderndid "
              f"{t_peer:7.2f} s   ratio {t_peer / t_ours:6.1f}x   max|dATT| {d_att:.1e}  max|dSE| {d_se:.1e}")


if __name__ == "__main__":
    main()
