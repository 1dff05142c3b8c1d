"""Benchmark: two-way fixed-effects OLS with firm-clustered errors on 1M firm-years.

Compares cluster_econ.feols with pyfixest.feols and linearmodels PanelOLS in the same process
(fit time, second of two runs so that one-time compilation is not counted, first run reported
too), the whole process including imports as subprocesses, and 50 specifications on one sample
(feols_many) against 50 separate pyfixest calls. Prints ratios (peer time / our time).

Run: /work/venv/bin/python benchmarks/bench_feols.py [--firms 100000] [--years 10]
"""

from __future__ import annotations

import argparse
import itertools
import os
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np
import pandas as pd


def make_data(firms: int, years: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = firms * years
    firm = np.repeat(np.arange(firms), years)
    year = np.tile(np.arange(2000, 2000 + years), firms)
    X = rng.normal(size=(n, 8)) + rng.normal(size=(firms, 1))[firm]
    df = pd.DataFrame(X, columns=[f"x{i}" for i in range(1, 9)])
    df.insert(0, "firm", firm)
    df.insert(1, "year", year)
    df["y"] = X[:, :5] @ np.array([1.0, -0.5, 0.25, 0.1, 0.0]) + rng.normal(size=firms)[firm] \
        + 0.05 * (year - 2000) + rng.normal(size=n)
    return df


def timed(fn, repeat: int = 2) -> tuple[float, float, object]:
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return times[0], times[-1], out


FML = "y ~ x1 + x2 + x3 + x4 + x5 | firm + year"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--firms", type=int, default=100_000)
    ap.add_argument("--years", type=int, default=10)
    ap.add_argument("--specs", type=int, default=50)
    args = ap.parse_args()
    df = make_data(args.firms, args.years)
    print(f"data: {len(df):,} rows, {args.firms:,} firms x {args.years} years; model {FML}, CRV1 by firm")

    import pyfixest as pf
    from linearmodels.panel import PanelOLS

    from cluster_econ.estimate import demean
    from cluster_econ.estimate.linear import feols, feols_many

    def ours():
        demean.clear_cache()  # no reuse between runs: a cold fit each time
        return feols(FML, df, vcov={"CRV1": "firm"}, ssc="fixest")

    def pyf():
        return pf.feols(FML, df, vcov={"CRV1": "firm"})

    pdf = df.set_index(["firm", "year"])

    def lm():
        mod = PanelOLS(pdf.y, pdf[["x1", "x2", "x3", "x4", "x5"]], entity_effects=True, time_effects=True)
        return mod.fit(cov_type="clustered", cluster_entity=True)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        o1, o2, r_o = timed(ours)
        p1, p2, r_p = timed(pyf)
        l1, l2, r_l = timed(lm)
    diff = np.max(np.abs(r_o.params.to_numpy() - r_p.coef()[r_o.params.index].to_numpy()))
    sediff = np.max(np.abs(r_o.bse.to_numpy() / r_p.se()[r_o.params.index].to_numpy() - 1))
    print(f"[fit, same process] ours {o2:.3f}s (first {o1:.3f}s) | pyfixest {p2:.3f}s (first {p1:.3f}s)"
          f" | PanelOLS {l2:.3f}s (first {l1:.3f}s)")
    print(f"  ratio pyfixest/ours = {p2 / o2:.2f}   PanelOLS/ours = {l2 / o2:.2f}   "
          f"(max |coef diff| vs pyfixest {diff:.1e}, max rel SE diff {sediff:.1e})")
    lm_diff = np.max(np.abs(r_o.params.to_numpy() - r_l.params.to_numpy()))
    print(f"  max |coef diff| vs PanelOLS {lm_diff:.1e}")

    # whole process, including imports, reading the same Parquet file
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "panel.parquet")
        df.to_parquet(path)
        scripts = {
            "ours": ("import pandas as pd; from cluster_econ.estimate import feols; "
                     f"d = pd.read_parquet({path!r}); feols({FML!r}, d, vcov={{'CRV1': 'firm'}})"),
            "pyfixest": ("import pandas as pd, pyfixest as pf; "
                         f"d = pd.read_parquet({path!r}); pf.feols({FML!r}, d, vcov={{'CRV1': 'firm'}})"),
            "PanelOLS": ("import pandas as pd; from linearmodels.panel import PanelOLS; "
                         f"d = pd.read_parquet({path!r}).set_index(['firm', 'year']); "
                         "PanelOLS(d.y, d[['x1','x2','x3','x4','x5']], entity_effects=True, "
                         "time_effects=True).fit(cov_type='clustered', cluster_entity=True)"),
        }
        wall = {}
        for name, code in scripts.items():
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-W", "ignore", "-c", code], check=True)
            wall[name] = time.perf_counter() - t0
    print(f"[whole process incl. import] ours {wall['ours']:.2f}s | pyfixest {wall['pyfixest']:.2f}s | "
          f"PanelOLS {wall['PanelOLS']:.2f}s  -> ratios pyfixest/ours {wall['pyfixest'] / wall['ours']:.2f}, "
          f"PanelOLS/ours {wall['PanelOLS'] / wall['ours']:.2f}")

    # 50 specifications on one sample
    regs = [f"x{i}" for i in range(1, 9)]
    combos = [c for r in range(1, 9) for c in itertools.combinations(regs, r)][: args.specs]
    fmls = [f"y ~ {' + '.join(c)} | firm + year" for c in combos]
    demean.clear_cache()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        many = feols_many(fmls, df, vcov={"CRV1": "firm"}, ssc="fixest")
        t_ours = time.perf_counter() - t0
        t0 = time.perf_counter()
        peers = [pf.feols(f, df, vcov={"CRV1": "firm"}) for f in fmls]
        t_pf = time.perf_counter() - t0
    worst = max(np.max(np.abs(m.params.to_numpy() - p.coef()[m.params.index].to_numpy()))
                for m, p in zip(many, peers, strict=True))
    print(f"[{len(fmls)} specifications, one sample] ours (feols_many) {t_ours:.2f}s | "
          f"{len(fmls)} pyfixest calls {t_pf:.2f}s -> ratio {t_pf / t_ours:.1f}x  (max |coef diff| {worst:.1e})")


if __name__ == "__main__":
    main()
