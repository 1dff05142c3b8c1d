"""The falsification matrix of the demo design: time it, and write it into the docs.

Runs :func:`cluster_econ.hypotheses.falsification` (every proposition, the full model and each
simulator switch, ``--reps`` seeds each, default options as a user gets them) on ``--workers``
local processes, and writes:

- ``docs/falsification.md``: the matrix (rate and Monte Carlo s.e. per cell), the cells that miss
  their requirement, the reference effects measured in the full model, the seeds and the time;
- ``docs/figures/falsification.png`` and ``.svg``: the heat map;
- ``--out`` (default ``benchmarks/results/falsification``, not versioned): every file of
  ``FalsificationMatrix.save``
  (tables, cells, every run).

No peer tool computes a falsification matrix, so the time is compared with the goal (10 minutes
at R = 20 on a 2-core machine) rather than with a peer.

Usage::

    nice python benchmarks/bench_falsification.py [--reps 20] [--seed 1] [--workers 2] [--docs docs]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

GOAL_SECONDS = 600.0


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children (the worker processes)."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    from cluster_econ.hypotheses.falsification import falsification
    from cluster_econ.io.atomic import atomic_write

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=20, help="seeds per universe (default 20)")
    ap.add_argument("--seed", type=int, default=1, help="first seed (default 1)")
    ap.add_argument("--workers", type=int, default=None, help="processes (default: one per core)")
    ap.add_argument("--docs", default=str(Path(__file__).resolve().parents[1] / "docs"),
                    help="docs folder to write falsification.md and figures/ into")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "falsification"))
    args = ap.parse_args()

    t0 = time.perf_counter()
    cpu0 = _cpu_seconds()
    load0 = os.getloadavg()[0]
    fm = falsification(replications=args.reps, seed=args.seed, workers=args.workers, progress=True)
    seconds = time.perf_counter() - t0
    cpu = _cpu_seconds() - cpu0
    load = (load0 + os.getloadavg()[0]) / 2
    fm.save(args.out)
    docs = Path(args.docs)
    fm.figure([docs / "figures" / "falsification.png", docs / "figures" / "falsification.svg"])
    cells = fm.cells()
    misses = fm.misses()
    workers = args.workers or os.cpu_count()
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    lines = [
        "# Falsification matrix of the demo design",
        "",
        "Each proposition (rows) tested with the default options on universes of the demo design (the",
        "twelve-cluster demo configuration, about 4,900 firms and 45,000 firm-years each) with every",
        "mechanism of the model on (*full model*) and with each simulator switch turned on in turn",
        "(columns, see `cluster_econ.simulate.Switches`). A cell is the share of replications in which the",
        "proposition is found *supported*, with its binomial Monte Carlo standard error in parentheses.",
        "`*` marks the proposition's own mechanism switched off; `!` a cell that misses its requirement:",
        "",
        "- full model: at least 0.8 (power);",
        "- own mechanism off: at most the nominal level plus 3 Monte Carlo s.e. (size);",
        "- any other switch: within 3 standard errors of a difference of the full model's rate.",
        "",
        "![falsification matrix](figures/falsification.png)",
        "",
        fm.table().to_markdown(),
        "## Cells that miss their requirement",
        "",
    ]
    if len(misses):
        for _, m in misses.iterrows():
            lines.append(f"- {m['proposition']} with `{m['universe']}` ({m['role']}): rate {m['rate']:.2f} "
                         f"(s.e. {m['mc_se']:.2f}); required {m['requirement']}; the verdicts reported a mean "
                         f"power of {m['mean_power']:.2f}.")
    else:
        lines.append("None: every cell meets its requirement.")
    lines += ["", "## Power the verdicts report", "",
              "Mean over replications of the power each verdict reports against the reference effects "
              "(`Proposition.reference_effects`), full model and unrelated switches:", "",
              "| proposition | " + " | ".join(["full model", "lowest (switch)"]) + " |", "|:---|:---:|:---:|"]
    for prop in fm.propositions:
        c = cells[(cells["proposition"] == prop) & (cells["role"] != "own mechanism off")]
        full = c[c["role"] == "full model"]["mean_power"]
        low = c.loc[c["mean_power"].idxmin()] if c["mean_power"].notna().any() else None
        lines.append(f"| {prop} | {float(full.iloc[0]):.2f} | "
                     + (f"{low['mean_power']:.2f} ({low['universe']})" if low is not None else "n/a") + " |")
    lines += ["", "## Reference effects (mean of each verdict check over the full model's replications)", "",
              "```json", json.dumps(fm.reference_effects(), indent=1, sort_keys=True), "```", "",
              "## How it was made", "",
              f"`nice python benchmarks/bench_falsification.py --reps {args.reps} --seed {args.seed}`: "
              f"{args.reps} replications, simulator seeds {args.seed} to {args.seed + args.reps - 1} in every "
              f"universe, {len(fm.universes)} universes x {len(fm.propositions)} propositions = "
              f"{len(fm.runs)} tests on {workers} worker processes in {seconds:.0f} s "
              f"(goal: {GOAL_SECONDS:.0f} s; {machine}, shared with other jobs: load average about "
              f"{load:.1f} during the run). The work itself took {cpu:.0f} CPU-seconds "
              f"({cpu / max(len(fm.runs) // max(len(fm.propositions), 1), 1):.2f} s per universe: simulation, "
              f"productivity and the nine tests), i.e. about {cpu / max(workers, 1):.0f} s on {workers} idle "
              "cores. The same command with any number of workers gives the same matrix.", ""]
    atomic_write(docs / "falsification.md", "\n".join(lines))
    print(fm.table().to_markdown())
    print(f"{len(misses)} cells miss their requirement")
    print(f"falsification matrix: {len(fm.runs)} tests in {seconds:.1f} s on {workers} workers "
          f"({cpu:.0f} CPU-s, load average {load:.1f}); goal {GOAL_SECONDS:.0f} s: ratio {seconds / GOAL_SECONDS:.2f}")


if __name__ == "__main__":
    main()
