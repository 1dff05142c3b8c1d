"""The power calculator: time one proposition at 200 replications of a 600-firm design.

Runs :func:`cluster_econ.hypotheses.power` (the demo model's mechanisms; ``--clusters`` demo
clusters, ``--firms`` enterprises sampled in total, each cluster surveyed ``--years`` years around
its phase change) for ``--proposition`` (default P4): the full model gives the power, each of the
proposition's own switches its size, ``--reps`` seeds each. Prints power and size with their
Monte Carlo standard errors and the time, against the goal (2 minutes on a 2-core machine for one
proposition at 200 replications of a 600-firm design). No peer tool simulates the power of these
tests, so there is no peer ratio.

It replaces ``bench_p4_size.py``: the size of P4's test is the rate under
``equal_schooling_slopes`` (and ``no_schooling_returns``) in its output.

Usage::

    nice python benchmarks/bench_power.py [--proposition P4] [--reps 200] [--clusters 8] [--firms 600] [--years 6]
"""

from __future__ import annotations

import argparse
import os
import time

GOAL_SECONDS = 120.0


def main() -> None:
    from cluster_econ.hypotheses.calculator import power

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--proposition", default="P4")
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--clusters", type=int, default=8)
    ap.add_argument("--firms", type=int, default=600)
    ap.add_argument("--years", type=int, default=6)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--workers", type=int, default=None)
    args = ap.parse_args()
    import resource

    t0 = time.perf_counter()
    load0 = os.getloadavg()[0]
    pa = power(clusters=args.clusters, firms=args.firms, years=args.years, propositions=[args.proposition],
               replications=args.reps, seed=args.seed, workers=args.workers, progress=True)
    seconds = time.perf_counter() - t0
    ru = [resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    cpu = sum(r.ru_utime + r.ru_stime for r in ru)
    load = (load0 + os.getloadavg()[0]) / 2
    print(pa.summary())
    tab = pa.table().iloc[0]
    for col in [c for c in pa.table().columns if c.startswith("size[")]:
        print(f"  {col}: {tab[col]:.3f}")
    p = pa.runs[pa.runs["universe"] == "full model"]["p_value"]
    print(f"  full-model p-values: median {p.median():.3g}")
    workers = args.workers or os.cpu_count()
    n_universes = 1 + len(pa.mechanisms[args.proposition])
    print(f"power calculator: {args.proposition}, {args.reps} replications x {n_universes} "
          f"universes of {args.clusters} clusters / {args.firms} firms / {args.years} years in {seconds:.1f} s on "
          f"{workers} workers ({cpu:.0f} CPU-s including imports, load average {load:.1f}); goal "
          f"{GOAL_SECONDS:.0f} s: ratio {seconds / GOAL_SECONDS:.2f}")


if __name__ == "__main__":
    main()
