"""Benchmark: fixed effects on hard and easy graphs, at 1M rows, against pyfixest in the same run.

1. Low-mobility worker-firm panel: 200k workers seen 5 consecutive years out of 10, 20k firms,
   2% of workers move once (to a neighbouring firm on a ring of firms, the default, or to any
   firm with ``--random-moves``), worker + firm + year effects; ``y ~ x``, CRV1 by firm.
   - cluster_econ ``feols`` with default options (it detects the slow graph and switches to the
     reduced normal equations by itself);
   - pyfixest with ``demeaner=LsmrDemeaner()`` (its LSMR demeaner, the one that solves this);
   - pyfixest's default demeaner (alternating projections, fixef_maxiter 10,000) in a subprocess
     stopped after ``--peer-map-timeout`` seconds (it fails on this graph);
   - our alternating projections alone for ``--map-sweeps`` sweeps on y, to show how far they get.
2. Easy graphs (the fast path must not regress), 1M rows: firm + year balanced (100k x 10), firm +
   year unbalanced, and firm + year + region-industry unbalanced; ours vs pyfixest's default.

Times are the best of two cold runs (our demeaning cache cleared). Ratios are peer / ours.

Run: python benchmarks/bench_hard_fe.py [--random-moves] [--peer-map-timeout 420] [--map-sweeps 200]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np
import pandas as pd

FML = "y ~ x | worker + firm + year"


def low_mobility(workers: int = 200_000, firms: int = 20_000, years: int = 10, spell: int = 5,
                 movers: float = 0.02, random_moves: bool = False, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    w = np.repeat(np.arange(workers), spell)
    pos = np.tile(np.arange(spell), workers)
    t = rng.integers(0, years - spell + 1, workers)[w] + pos
    home = rng.integers(0, firms, workers)
    dest = rng.integers(0, firms, workers) if random_moves else (home + rng.choice([-2, -1, 1, 2], workers)) % firms
    moves = (rng.random(workers) < movers)[w] & (pos >= rng.integers(1, spell, workers)[w])
    firm = np.where(moves, dest[w], home[w])
    a, psi, g = rng.normal(size=workers), rng.normal(size=firms), 0.1 * rng.normal(size=years)
    x = rng.normal(size=len(w)) + 0.3 * psi[firm] + 0.2 * a[w]
    y = 0.5 * x + a[w] + psi[firm] + g[t] + rng.normal(size=len(w))
    return pd.DataFrame({"worker": w, "firm": firm, "year": 2000 + t, "x": x, "y": y})


def easy(kind: str, seed: int = 1) -> tuple[pd.DataFrame, str]:
    rng = np.random.default_rng(seed)
    if kind == "firm + year, balanced":
        firm, year = np.repeat(np.arange(100_000), 10), np.tile(np.arange(10), 100_000)
        extra = None
    elif kind == "firm + year, unbalanced":
        cells = rng.choice(150_000 * 10, size=1_000_000, replace=False)
        firm, year = cells // 10, cells % 10
        extra = None
    else:
        cells = rng.choice(150_000 * 10, size=1_000_000, replace=False)
        firm, year = cells // 10, cells % 10
        extra = rng.integers(0, 500, len(firm))  # a third effect crossing firms and years
    n = len(firm)
    psi = rng.normal(size=int(firm.max()) + 1)
    x = rng.normal(size=n) + 0.5 * psi[firm]
    df = pd.DataFrame({"firm": firm, "year": year, "x": x,
                       "y": 0.5 * x + psi[firm] + 0.1 * year + rng.normal(size=n)})
    fml = "y ~ x | firm + year"
    if extra is not None:
        df["cell"] = extra
        fml = "y ~ x | firm + year + cell"
    return df, fml


def best_of_two(fn):
    out, best = None, np.inf
    for _ in range(2):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


PEER_MAP = r"""
import sys, time, warnings, pandas as pd, pyfixest as pf
warnings.simplefilter("ignore")
df = pd.read_parquet(sys.argv[1])
t0 = time.perf_counter()
try:
    r = pf.feols(sys.argv[2], df, vcov={"CRV1": "firm"})
    print(f"finished in {time.perf_counter() - t0:.0f}s, coef {float(r.coef()['x']):.10f}")
except Exception as exc:
    print(f"failed after {time.perf_counter() - t0:.0f}s: {type(exc).__name__}: {str(exc)[:120]}")
"""


def hard(args: argparse.Namespace) -> None:
    import pyfixest as pf
    from pyfixest import LsmrDemeaner

    from cluster_econ.estimate import demean
    from cluster_econ.estimate.demean import Absorber, factorize
    from cluster_econ.estimate.linear import feols

    df = low_mobility(random_moves=args.random_moves)
    how = "any firm" if args.random_moves else "a neighbouring firm"
    print(f"[low-mobility panel: {len(df):,} rows, {df.worker.nunique():,} workers, {df.firm.nunique():,} firms, "
          f"2% movers (to {how}), {df.year.nunique()} years; {FML}, CRV1 by firm; load {os.getloadavg()[0]:.1f}]")

    def ours():
        demean.clear_cache()
        return feols(FML, df, vcov={"CRV1": "firm"}, ssc="fixest")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t_ours, r_ours = best_of_two(ours)
        t_lsmr, r_lsmr = best_of_two(lambda: pf.feols(FML, df, vcov={"CRV1": "firm"}, demeaner=LsmrDemeaner()))
    note = next(n for n in r_ours.audit.notes if "fixed effects" in n)
    print(f"  cluster_econ feols (defaults)   {t_ours:6.2f}s  coef {r_ours.params['x']:.10f}  "
          f"se {r_ours.bse['x']:.3e}\n    {note}\n    connected components (worker-firm) "
          f"{r_ours.stats['fe_components']:,}, identified effects {r_ours.stats['fe_identified']:,}")
    print(f"  pyfixest LsmrDemeaner()         {t_lsmr:6.2f}s  coef {float(r_lsmr.coef()['x']):.10f}  "
          f"se {float(r_lsmr.se()['x']):.3e}  -> ratio pyfixest/ours {t_lsmr / t_ours:.1f}x, "
          f"|coef diff| {abs(r_ours.params['x'] - float(r_lsmr.coef()['x'])):.1e}")
    if args.map_sweeps:
        codes = factorize(df[["worker", "firm", "year"]])
        ab = Absorber(codes, maxiter=args.map_sweeps)
        y = df["y"].to_numpy()
        scale = float(np.sqrt(np.mean(y * y)))
        t0 = time.perf_counter()
        _, it, ach = ab._alternate(y.copy(), 1e-10 * scale, scale, 0, watch=False)
        print(f"  our alternating projections alone: {it} sweeps in {time.perf_counter() - t0:.1f}s, largest relative "
              f"change in the last sweep {ach:.1e} (tol 1e-10): not converged")
    if args.peer_map_timeout:
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "panel.parquet")
            df.to_parquet(path)
            try:
                proc = subprocess.run([sys.executable, "-c", PEER_MAP, path, FML], capture_output=True, text=True,
                                      timeout=args.peer_map_timeout)
                outcome = (proc.stdout.strip() or proc.stderr.strip().splitlines()[-1])[:200]
            except subprocess.TimeoutExpired:
                outcome = f"no answer after {args.peer_map_timeout}s (stopped)"
        print(f"  pyfixest default demeaner (MapDemeaner, fixef_maxiter 10,000): {outcome}")


def easy_graphs() -> None:
    import pyfixest as pf

    from cluster_econ.estimate import demean
    from cluster_econ.estimate.linear import feols

    print(f"[easy graphs, 1M rows, CRV1 by firm; fast path must hold; load {os.getloadavg()[0]:.1f}]")
    for kind in ("firm + year, balanced", "firm + year, unbalanced", "firm + year + cell (500), unbalanced"):
        df, fml = easy(kind)

        def ours(df=df, fml=fml):
            demean.clear_cache()
            return feols(fml, df, vcov={"CRV1": "firm"}, ssc="fixest")

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t_o, r_o = best_of_two(ours)
            t_p, r_p = best_of_two(lambda df=df, fml=fml: pf.feols(fml, df, vcov={"CRV1": "firm"}))
        note = next(n for n in r_o.audit.notes if "fixed effects" in n)
        method = note.split(" (")[0].replace("fixed effects absorbed by ", "")
        print(f"  {kind:38s} ours {t_o:5.2f}s ({method}) | pyfixest {t_p:5.2f}s -> ratio {t_p / t_o:4.1f}x  "
              f"|coef diff| {abs(r_o.params['x'] - float(r_p.coef()['x'])):.1e}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--random-moves", action="store_true", help="movers go to any firm, not a neighbour")
    ap.add_argument("--peer-map-timeout", type=int, default=420, help="seconds for pyfixest's default (0: skip)")
    ap.add_argument("--map-sweeps", type=int, default=200, help="sweeps of our alternating projections alone (0: skip)")
    ap.add_argument("--skip-easy", action="store_true")
    ap.add_argument("--skip-hard", action="store_true")
    args = ap.parse_args()
    if not args.skip_hard:
        hard(args)
    if not args.skip_easy:
        easy_graphs()


if __name__ == "__main__":
    main()
