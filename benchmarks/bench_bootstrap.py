"""Benchmark: wild cluster restricted bootstrap (WCR), 9,999 Rademacher draws.

1. 100k rows, 50 clusters, no absorbed effects: cluster_econ.wild_bootstrap vs wildboottest
   (on a statsmodels OLS) in the same process; prints time ratio and both p-values.
2. Firm and year fixed effects absorbed, 50 clusters (regions nesting the firms), at 100k and 1M
   rows: ours only, each in a fresh subprocess; prints the time of the call (with and without
   the confidence interval by test inversion), the peak traced memory during the call and the
   peak resident memory of the process.

Run: /work/venv/bin/python benchmarks/bench_bootstrap.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import warnings

import numpy as np
import pandas as pd


def make_data(n: int, G: int = 50, firms_per_cluster: int | None = None, years: int = 10,
              seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    firms_per_cluster = firms_per_cluster or max(1, n // (G * years))
    firm = rng.integers(0, G * firms_per_cluster, n)
    cl = firm // firms_per_cluster
    df = pd.DataFrame({"firm": firm, "cl": cl, "year": rng.integers(0, years, n),
                       "x": rng.normal(size=n)})
    df["d"] = (cl % 2) + rng.normal(size=n) * 0.5
    df["y"] = 0.02 * df.d + df.x + rng.normal(size=G)[cl] + rng.normal(size=n)
    return df


CHILD = r"""
import json, resource, sys, time, tracemalloc
sys.path.insert(0, {bench_dir!r})
from bench_bootstrap import make_data
from cluster_econ.estimate.bootstrap import wild_bootstrap
df = make_data({n})
tracemalloc.start()
t0 = time.perf_counter()
r = wild_bootstrap("y ~ d + x | firm + year", df, "d", "cl", B=9999, seed=1, ci=False)
t_test = time.perf_counter() - t0
_, peak = tracemalloc.get_traced_memory()
tracemalloc.stop()
t0 = time.perf_counter()
r2 = wild_bootstrap("y ~ d + x | firm + year", df, "d", "cl", B=9999, seed=1)
t_ci = time.perf_counter() - t0
print(json.dumps({{"n": len(df), "firms": int(df.firm.nunique()), "t_test": t_test, "t_ci": t_ci,
                   "peak_traced_mb": peak / 2**20,
                   "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                   "p": r.p_value, "ci": r2.conf_int}}))
"""


def main() -> None:
    import os

    from cluster_econ.estimate.bootstrap import wild_bootstrap

    df = make_data(100_000, G=50)
    t0 = time.perf_counter()
    ours = wild_bootstrap("y ~ d + x", df, "d", "cl", B=9999, seed=1, ci=False)
    t_ours = time.perf_counter() - t0
    try:
        import statsmodels.formula.api as smf
        from wildboottest.wildboottest import wildboottest
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = smf.ols("y ~ d + x", df)
            t0 = time.perf_counter()
            peer = wildboottest(model, param="d", cluster=df.cl, B=9999, seed=2, show=False)
            t_peer = time.perf_counter() - t0
        print(f"[100k rows, 50 clusters, B=9999, no FE] ours {t_ours:.3f}s (p = {ours.p_value:.4f}) | "
              f"wildboottest {t_peer:.3f}s (p = {float(peer['p-value'].iloc[0]):.4f}) "
              f"-> ratio wildboottest/ours {t_peer / t_ours:.1f}x")
    except ImportError:
        print(f"[100k rows, 50 clusters, B=9999, no FE] ours {t_ours:.3f}s (wildboottest not installed)")

    bench_dir = os.path.dirname(os.path.abspath(__file__))
    for n in (100_000, 1_000_000):
        code = CHILD.format(bench_dir=bench_dir, n=n)
        out = subprocess.run([sys.executable, "-W", "ignore", "-c", code], check=True,
                             capture_output=True, text=True).stdout
        r = json.loads(out.strip().splitlines()[-1])
        print(f"[{r['n']:,} rows, {r['firms']:,} firms, firm + year FE, 50 clusters, B=9999] "
              f"test {r['t_test']:.2f}s, test + CI by inversion {r['t_ci']:.2f}s, "
              f"peak traced memory in the call {r['peak_traced_mb']:.0f} MiB, process max RSS "
              f"{r['max_rss_mb']:.0f} MiB (p = {r['p']:.4f}, CI = [{r['ci'][0]:.4f}, {r['ci'][1]:.4f}])")


if __name__ == "__main__":
    main()
