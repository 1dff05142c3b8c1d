"""Benchmark: dynamic panel GMM (Arellano-Bond two-step, Windmeijer s.e.) on a simulated firm panel.

Simulates ``--firms`` firms over ``--periods`` years (an unbalanced panel: some firms enter late)
from ``n_it = 0.5 n_i,t-1 + 0.3 w_it + a_i + e_it`` with ``w`` correlated with the firm effect,
fits ``n ~ lag(n, 1) + w | lag(n, 2:99)`` as difference GMM (two steps, period effects) with
cluster_econ, and, when ``Rscript`` with plm is installed, with R plm's ``pgmm`` on the same data
in the same run (the R time is measured inside R with ``system.time``, data loading excluded).
Prints both times, their ratio and the largest coefficient difference. R is run on
``--r-firms`` firms (plm loops over firms in R; 50,000 firms take minutes).

Target (issue 11): 50,000 firms under 30 s for cluster_econ.

Usage: python benchmarks/bench_pgmm.py [--firms 50000] [--periods 8] [--r-firms 5000]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

FORMULA = "n ~ lag(n, 1) + w | lag(n, 2:99)"


def simulate(firms: int, periods: int, seed: int = 11) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    burn = 20
    a = rng.normal(size=firms)
    n = np.zeros(firms)
    rows = []
    for t in range(burn + periods):
        w = 0.5 * a + rng.normal(size=firms)
        n = 0.5 * n + 0.3 * w + a + rng.normal(size=firms)
        if t >= burn:
            rows.append(pd.DataFrame({"firm": np.arange(firms), "year": 2000 + t - burn, "n": n, "w": w}))
    df = pd.concat(rows, ignore_index=True)
    start = rng.integers(0, 3, firms)  # unbalanced: a third of the firms enter one or two years late
    return df[df["year"] - 2000 >= start[df["firm"].to_numpy()]].reset_index(drop=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--firms", type=int, default=50_000)
    ap.add_argument("--periods", type=int, default=8)
    ap.add_argument("--r-firms", type=int, default=5_000)
    args = ap.parse_args()
    import cluster_econ as ce

    df = simulate(args.firms, args.periods)
    t0 = time.perf_counter()
    fit = ce.pgmm(FORMULA, df, entity="firm", time="year", model="twostep")
    ours = time.perf_counter() - t0
    print(f"cluster_econ pgmm: {args.firms:,} firms, {len(df):,} rows, {int(fit.stats['n_instruments'])} "
          f"instruments: {ours:.2f} s (target < 30 s); lag(n, 1) = {fit.params.iloc[0]:.4f} "
          f"(true 0.5), w = {fit.params.iloc[1]:.4f} (true 0.3)")
    if shutil.which("Rscript") is None or subprocess.run(["Rscript", "-e", "library(plm)"],
                                                         capture_output=True).returncode:
        print("R plm: not installed, skipped")
        return
    small = df[df["firm"] < args.r_firms]
    t0 = time.perf_counter()
    fit_s = ce.pgmm(FORMULA, small, entity="firm", time="year", model="twostep")
    ours_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "panel.csv"
        small.to_csv(path, index=False)
        script = f"""
suppressMessages(library(plm))
d <- read.csv("{path}")
p <- pdata.frame(d, index = c("firm", "year"))
tm <- system.time(f <- pgmm({FORMULA}, p, effect = "twoways", model = "twosteps"))
v <- vcovHC(f)
cat(tm[["elapsed"]], coef(f)[1:2], "\\n")
"""
        out = subprocess.run(["Rscript", "-e", script], capture_output=True, text=True, check=True).stdout
    vals = [float(x) for x in out.split()]
    r_time, r_coef = vals[0], np.array(vals[1:3])
    diff = float(np.max(np.abs(fit_s.params.to_numpy()[:2] - r_coef)))
    print(f"on {args.r_firms:,} firms: cluster_econ {ours_s:.3f} s, R plm pgmm {r_time:.2f} s "
          f"(ratio R / ours = {r_time / ours_s:.1f}); largest coefficient difference {diff:.1e}")


if __name__ == "__main__":
    main()
