"""Monte Carlo size (and power) of the P4 test: education and innovation.

Under the simulator's ``equal_schooling_slopes`` switch the logit schooling slope of innovation is
the same in quality improvement and quantity expansion, so P4's null holds; the share of
replications in which P4 is found "supported" is the size of its one-sided test at 5%. With the
full model the same share is the power. Each replication simulates the 12-cluster demo
configuration scaled to about ``--firms`` firms ever founded (seed = 1 + replication) and runs
``cluster_econ.hypotheses.test(panel, "P4")`` with the true phases (logit with cluster fixed
effects and phase effects, CRV1 by cluster_id, t reference with G - 1 = 11 degrees of freedom).

Usage::

    python benchmarks/bench_p4_size.py [--reps 200] [--firms 1500] [--power-reps 50]

Prints the rejection rates with their binomial Monte Carlo standard errors and the time per
replication.
"""

from __future__ import annotations

import argparse
import time

from cluster_econ.hypotheses.montecarlo import rejection_rate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=200, help="replications under the null (default 200)")
    ap.add_argument("--power-reps", type=int, default=50, help="replications under the full model (default 50)")
    ap.add_argument("--firms", type=int, default=1500, help="firms ever founded per universe (default 1500)")
    args = ap.parse_args()
    t0 = time.perf_counter()
    null = rejection_rate("P4", {"equal_schooling_slopes": True}, replications=args.reps, n_firms=args.firms)
    t1 = time.perf_counter()
    print(f"size  (equal_schooling_slopes): {null.rate:.3f} (MC s.e. {null.mc_se:.3f}) at nominal 0.05, "
          f"{null.replications} replications, {(t1 - t0) / max(1, null.replications):.2f} s each")
    print(f"      null p-values: mean {null.p_values.mean():.3f}, share below 0.10 "
          f"{(null.p_values < 0.10).mean():.3f}; mean contrast {null.estimates.mean():.4f}")
    if args.power_reps:
        power = rejection_rate("P4", None, replications=args.power_reps, n_firms=args.firms)
        t2 = time.perf_counter()
        print(f"power (full model):             {power.rate:.3f} (MC s.e. {power.mc_se:.3f}), "
              f"{power.replications} replications, {(t2 - t1) / max(1, power.replications):.2f} s each")


if __name__ == "__main__":
    main()
