"""Command-line subcommands ``replicate`` and ``report``.

``cluster-econ replicate [NAME ...|--all] [--out DIR]`` runs the replications in ``replication/``,
writes their tables and figures, prints one PASS/FAIL line per check and a count line (with each
replication's wall-clock time, which no written file holds), and exits
1 if any check fails (0 otherwise). ``cluster-econ report CONFIG.yaml --out DIR [--workers N]
[--scheduler ADDRESS]`` runs a batch report (see :mod:`cluster_econ.report.batch`) on local
processes or on a Dask cluster and exits 1 if a specification failed.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def register(subparsers: Any) -> None:
    """Add the ``replicate`` and ``report`` subcommands."""
    rep = subparsers.add_parser(
        "replicate",
        help="re-run the replications of published results and the simulation checks of the demo",
        description="Run the exhibits of replication/ (each a folder with config.yaml, expected.yaml and "
        "README.md), write their tables (LaTeX, HTML, Markdown, CSV, Excel, Word) and figures (PNG, SVG), "
        "compare each number with its expected value and print one PASS/FAIL line per check. Two kinds: "
        "REPLICATIONS reproduce published numbers on public data (each names its source and compares "
        "with the printed digits: wooldridge_jtrain, Wooldridge's Introductory Econometrics ch. 13 and "
        "Example 14.1; baltagi_grunfeld, Baltagi's Table 2.1); SIMULATION CHECKS run on the synthetic "
        "demo universe and compare with the simulator's own settings (simcheck_*): they show the code "
        "recovers what was built in, not that anything published is reproduced. --list shows which is "
        "which. Exit code 1 if any check fails, 0 otherwise. With no names, runs all of them.",
    )
    rep.add_argument("names", nargs="*", metavar="NAME", help="replications to run (default: all)")
    rep.add_argument("--all", action="store_true", help="run every replication")
    rep.add_argument("--out", default="replication_output", help="output folder (default: ./replication_output)")
    rep.add_argument("--list", action="store_true", help="list the replications and exit")
    rep.add_argument("--from", dest="root", default=None, metavar="DIR",
                     help="folder holding replication folders (default: the installed replication/)")
    rep.set_defaults(func=_replicate)

    bat = subparsers.add_parser(
        "report",
        help="run a batch of specifications from a YAML configuration and write one HTML report",
        description="Run the propositions and custom specifications of CONFIG.yaml on the data and "
        "subsets it names, in parallel local processes (or on an existing Dask cluster with --scheduler), "
        "with a cache under DIR/.cache, and write a self-contained HTML report plus LaTeX, Word and Excel "
        "tables into DIR. The outputs are byte-identical whichever executor ran the jobs. Exit code 1 if "
        "a specification failed (the others still run), 2 for an invalid configuration.",
    )
    bat.add_argument("config", metavar="CONFIG.yaml", help="batch report configuration")
    bat.add_argument("--out", required=True, metavar="DIR", help="output folder (everything is written inside it)")
    bat.add_argument("--workers", type=_positive, default=None, metavar="N",
                     help="local worker processes (default: the configuration's workers, else the machine's "
                     "cores; 1 runs everything in this process); with --scheduler, the local processes that "
                     "render tables and figures")
    bat.add_argument("--scheduler", default=None, metavar="ADDRESS",
                     help="run the jobs on the Dask distributed cluster whose scheduler is at ADDRESS "
                     "(tcp://host:8786 or dask://host:8786); needs pip install \"cluster-econ[dask]\"")
    bat.add_argument("--no-progress", action="store_true", help="do not show the progress bar")
    bat.set_defaults(func=_report)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {text!r}")
    return value


def _replicate(args: argparse.Namespace) -> int:
    from cluster_econ.report.replicate import available, describe, run

    if args.list:
        for name in available(args.root):
            kind, source = describe(name, args.root)
            print(f"{name}\t{kind}\t{source}")
        return EXIT_OK
    if args.all and args.names:
        print("error: give replication names or --all, not both", file=sys.stderr)
        return EXIT_USAGE
    known = available(args.root)
    unknown = [n for n in args.names if n not in known]
    if unknown:
        print(f"error: unknown replication(s) {', '.join(unknown)}; known: {', '.join(known)}", file=sys.stderr)
        return EXIT_USAGE
    outcomes = run(args.names or None, out=args.out, root=args.root)
    n_pass = n_fail = n_skip = 0
    heading = {"replication": "Replications of published results (public data, printed digits)",
               "simulation_check": "Simulation checks (SYNTHETIC demo universe against the simulator's settings; "
                                   "nothing published is reproduced)"}
    shown = None
    for o in sorted(outcomes, key=lambda o: o.kind != "replication"):
        if o.kind != shown:
            shown = o.kind
            print(f"== {heading.get(o.kind, o.kind)}")
        if o.kind == "replication" and o.source:
            print(f"   {o.name}: source: {o.source}")
        if o.skipped:
            n_skip += 1
            print(f"SKIP  {o.name}: skipped: {o.skipped}")
            continue
        if o.error:
            print(f"FAIL  {o.name}: error: {o.error}")
        for c in o.checks:
            print(c.line())
        n_pass += sum(c.passed for c in o.checks)
        n_fail += o.n_failed
    n_rep = sum(o.kind == "replication" for o in outcomes)
    print(f"{len(outcomes)} exhibits ({n_rep} replications, {len(outcomes) - n_rep} simulation checks), "
          f"{n_pass + n_fail} checks: {n_pass} passed, {n_fail} failed"
          + (f", {n_skip} exhibits skipped" if n_skip else "") + f"; outputs in {args.out}; "
          + "times: " + ", ".join(f"{o.name} {o.seconds:.1f} s" for o in outcomes))
    return EXIT_FAILED if n_fail else EXIT_OK


def _report(args: argparse.Namespace) -> int:
    from cluster_econ.report.batch import run_report

    summary = run_report(args.config, args.out, workers=args.workers, progress=not args.no_progress,
                         scheduler=args.scheduler)
    print(summary.text())
    return EXIT_FAILED if summary.n_failed else EXIT_OK
