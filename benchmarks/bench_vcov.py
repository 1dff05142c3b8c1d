"""Benchmark: another covariance for a fitted two-way fixed-effects OLS (``Result.vcov``).

On firm-years with firm and year effects, times (second of two runs) our ``fit.vcov(v)`` and a
fresh ``feols(..., vcov=v)`` against pyfixest's ``Feols.vcov(v)`` in the same process, for
HC1, CRV1 by firm and two-way CRV1 by firm and year, and checks that the standard errors agree
(ours against pyfixest with the fixest small-sample preset). Prints ratios (peer time / our time).

Run: python benchmarks/bench_vcov.py [--firms 100000] [--years 10]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from bench_feols import make_data  # the same firm-year panel


def timed(fn, repeat: int = 2) -> tuple[float, object]:
    out, t = None, 0.0
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        t = time.perf_counter() - t0
    return t, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--firms", type=int, default=100_000)
    ap.add_argument("--years", type=int, default=10)
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    import pyfixest as pf

    import cluster_econ as ce

    df = make_data(args.firms, args.years)
    formula = "y ~ x1 + x2 + x3 + x4 | firm + year"
    ours = ce.feols(formula, df, ssc="fixest")
    peer = pf.feols(formula, df, vcov="iid")
    print(f"{len(df):,} firm-years, firm and year effects, 4 regressors")
    print(f"{'vcov':>22} {'ours vcov()':>12} {'ours refit':>11} {'pyfixest':>9} {'ratio':>6} {'max |se diff|':>14}")
    cases = [("HC1", "hetero"), ({"CRV1": "firm"}, {"CRV1": "firm"}), ({"CRV1": "firm+year"}, {"CRV1": "firm+year"})]
    for v_ours, v_peer in cases:
        t_new, new = timed(lambda v=v_ours: ours.vcov(v))
        t_refit, _ = timed(lambda v=v_ours: ce.feols(formula, df, vcov=v, ssc="fixest"))
        t_peer, fitted = timed(lambda v=v_peer: peer.vcov(v))
        se_peer = fitted.tidy()["Std. Error"].to_numpy()
        diff = float(np.max(np.abs(new.bse.to_numpy() - se_peer)))
        print(f"{v_ours!s:>22} {t_new:11.3f}s {t_refit:10.3f}s {t_peer:8.3f}s {t_peer / t_new:6.1f} {diff:14.2e}")


if __name__ == "__main__":
    main()
