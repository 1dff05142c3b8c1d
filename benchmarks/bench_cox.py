"""Benchmark: Cox model with Efron ties and late entry on simulated firm data.

Times cluster_econ.estimate.cox against lifelines CoxPHFitter and statsmodels PHReg in the same
process, on the same data, and prints the ratios (peer time / our time) and the largest
coefficient difference. R's coxph is timed too when ``Rscript`` with the survival package is
installed (its time includes no data loading: it is measured inside R with system.time).

Usage: python benchmarks/bench_cox.py [--n 100000] [--n-phreg 20000] [--repeat 1]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd


def simulate(n: int, seed: int = 2024, per_year: int = 1) -> pd.DataFrame:
    """Firms with five regressors, exit times recorded ``per_year`` times a year (1: yearly,
    heavily tied; 365: daily, few ties), late entry, observed only if alive at entry."""
    rng = np.random.default_rng(seed)
    n_draw = int(n * 1.6) + 100
    X = rng.normal(size=(n_draw, 5))
    X[:, 3] = (X[:, 3] > 0).astype(float)
    X[:, 4] = rng.integers(0, 4, n_draw)
    beta = np.array([0.4, -0.2, 0.1, 0.3, -0.1])
    t = np.ceil(rng.exponential(np.exp(-X @ beta)) * 8 * per_year) / per_year
    c = np.ceil(rng.uniform(0, 25, n_draw) * per_year) / per_year
    df = pd.DataFrame(X, columns=[f"x{j}" for j in range(1, 6)])
    df["stop"] = np.minimum(t, c)
    df["event"] = (t <= c).astype(int)
    e = rng.uniform(0, 6, n_draw)
    df["entry"] = np.floor(e)
    # firms are observed only if they survive to their entry year (left truncation)
    return df[df["stop"] > df["entry"]].iloc[:n].reset_index(drop=True)


def timed(fn, repeat: int) -> tuple[float, object]:
    best, out = np.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--n-phreg", type=int, default=20_000, help="size for statsmodels PHReg (slow)")
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()

    from lifelines import CoxPHFitter
    from statsmodels.duration.hazard_regression import PHReg

    from cluster_econ.estimate.survival import cox

    xs = [f"x{j}" for j in range(1, 6)]
    formula = "stop ~ " + " + ".join(xs)
    warm = simulate(2000)  # imports and first-call costs are not timed
    cox(formula, warm, event="event", entry="entry")
    CoxPHFitter().fit(warm[[*xs, "stop", "event", "entry"]], "stop", "event", entry_col="entry")
    runs = [(args.n, 1, ("lifelines", "R")), (args.n, 365, ("lifelines", "R")),
            (args.n_phreg, 1, ("lifelines", "statsmodels", "R")),
            (args.n_phreg, 365, ("lifelines", "statsmodels", "R"))]
    for n, per_year, peers in runs:
        df = simulate(n, per_year=per_year)
        label = "yearly" if per_year == 1 else "daily"
        print(f"\n== {len(df)} firms, {int(df['event'].sum())} exits, {df['stop'].nunique()} distinct "
              f"{label} exit times (Efron ties, late entry) ==")
        t_ours, res = timed(lambda df=df: cox(formula, df, event="event", entry="entry"), args.repeat)
        print(f"cluster_econ cox        {t_ours:8.3f} s")
        ours = res.params.to_numpy()
        if "lifelines" in peers:
            def run_ll(df=df):
                return CoxPHFitter().fit(df[[*xs, "stop", "event", "entry"]], "stop", "event",
                                         entry_col="entry")
            t, m = timed(run_ll, args.repeat)
            diff = np.abs(m.params_[xs].to_numpy() - ours).max()
            print(f"lifelines CoxPHFitter   {t:8.3f} s   ratio {t / t_ours:7.1f}x   max |Δβ| {diff:.1e}")
        if "statsmodels" in peers:
            # PHReg counts a row entering at t as at risk at t (R does not): move entries half a
            # time unit forward so that both conventions give the same risk sets
            d2 = df.assign(entry=df["entry"] + 0.5 / per_year)
            res2 = cox(formula, d2, event="event", entry="entry")
            t_ours2, _ = timed(lambda d2=d2: cox(formula, d2, event="event", entry="entry"), args.repeat)

            def run_sm(d2=d2):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    return PHReg(d2["stop"].to_numpy(), d2[xs].to_numpy(), status=d2["event"].to_numpy(),
                                 entry=d2["entry"].to_numpy(), ties="efron").fit()
            t, m = timed(run_sm, args.repeat)
            diff = np.abs(m.params - res2.params.to_numpy()).max()
            print(f"statsmodels PHReg       {t:8.3f} s   ratio {t / t_ours2:7.1f}x   max |Δβ| {diff:.1e}")
        if "R" in peers and shutil.which("Rscript"):
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "d.csv"
                df.to_csv(path, index=False)
                script = (f"suppressMessages(library(survival)); d <- read.csv('{path}');"
                          "tm <- system.time(m <- coxph(Surv(entry, stop, event) ~ x1 + x2 + x3 + x4 + x5,"
                          " data=d, ties='efron'))[['elapsed']]; cat(tm, coef(m), '\\n')")
                p = subprocess.run(["Rscript", "-e", script], capture_output=True, text=True)
            if p.returncode == 0:
                vals = [float(v) for v in p.stdout.split()]
                diff = np.abs(np.array(vals[1:]) - ours).max()
                print(f"R coxph (survival)      {vals[0]:8.3f} s   ratio {vals[0] / t_ours:7.1f}x   "
                      f"max |Δβ| {diff:.1e}")


if __name__ == "__main__":
    main()
