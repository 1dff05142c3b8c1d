"""``cluster-econ test``, ``falsify`` and ``power``: test the propositions on a panel, check that
their verdicts can fail, and plan a survey that can detect them.

``cluster-econ test DIR|demo [--hypotheses P4,P6] [--by phase] [--phases column|rules|breaks|hmm]
--out DIR`` reads a panel directory (:func:`cluster_econ.read_panel`) or the demo universe, runs
the propositions, writes ``verdicts`` (one row per proposition) and ``estimates`` (every
reported coefficient and check) as Parquet and CSV into ``--out`` (atomic writes), and prints one
line per proposition. Exit codes: 0 when every proposition ran (whatever the verdicts), 1 if one
raised an error, 2 for bad input or usage.

``cluster-econ falsify [--replications R] [--out DIR] [--seed S] [--workers N]`` runs the
falsification matrix (:mod:`cluster_econ.hypotheses.falsification`) and writes it as Markdown,
HTML and CSV with a heat map; exit 0 when every cell meets its requirement, 1 when one misses.

``cluster-econ power --clusters C --firms N --years T [--proposition P4] [--replications R]``
simulates surveys of that design (:mod:`cluster_econ.hypotheses.calculator`) and prints each
proposition's power and size.
"""

from __future__ import annotations

import argparse
import io
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["register", "run", "run_falsify", "run_power"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``test`` subcommand to an argparse subparsers object."""
    p = subparsers.add_parser(
        "test",
        help="test the propositions (P1-P9) on a panel and write verdicts and estimates",
        description="Test the propositions of cluster-based industrial development (P1 founders, P2 "
                    "spin-off imitation, P3 stagnant expansion, P4 education and innovation, P5 "
                    "education and performance, P6 shake-out, P7 sources of productivity growth, P8 "
                    "institutions and size, P9 management training) on a panel, phase by phase. "
                    "Writes verdicts and estimates as Parquet and CSV and prints one line per "
                    "proposition. Exit code 0 when every proposition ran (whatever the verdicts), 1 if "
                    "one failed with an error, 2 for bad input.",
    )
    p.add_argument("panel", metavar="DIR", help="panel directory written by normalize (or Panel.to_parquet), "
                                                "or the word 'demo' for the built-in synthetic demo universe")
    p.add_argument("--hypotheses", metavar="IDS", default=None,
                   help="comma-separated proposition ids (default: all registered, P1-P9)")
    p.add_argument("--by", default=None, metavar="COLUMN",
                   help="cluster_year column holding the phases (default: phase); a column the panel does "
                        "not have is an error")
    p.add_argument("--phases", choices=["column", "rules", "breaks", "hmm"], default=None,
                   help="where phases come from: the cluster_year column, or detection by rules, "
                        "structural breaks or a hidden Markov model (default: the column when present, "
                        "else rules)")
    p.add_argument("--out", metavar="DIR", required=True, help="output folder for verdicts and estimates")
    p.set_defaults(func=run)
    _register_falsify(subparsers)
    _register_power(subparsers)
    return p


def _ids(text: str | None) -> list[str] | None:
    from cluster_econ import hypotheses as hyp
    from cluster_econ.errors import ConfigError

    if not text:
        return None
    ids = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [i for i in ids if i not in hyp.ids()]
    if unknown:
        raise ConfigError(f"unknown proposition(s) {', '.join(unknown)}; registered: {', '.join(hyp.ids())}")
    return ids


def _positive(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return v


def _register_falsify(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "falsify",
        help="falsification matrix: each proposition with each simulator mechanism switched off, over many seeds",
        description="Simulate the demo design with each mechanism of the model switched off in turn (and the full "
                    "model), R seeds each, test every proposition with the default options, and report per "
                    "proposition and universe the share of seeds in which it is supported, with its Monte Carlo "
                    "standard error. Required: at least 0.8 in the full model (power); at most the nominal level "
                    "plus 3 Monte Carlo s.e. with the proposition's own mechanism off (size); other switches "
                    "within 3 s.e. of the full model. Writes falsification.md/.html/.csv, the cells and every run "
                    "as CSV, a heat map (PNG, SVG) and the seeds (JSON). Exit 0 when every cell meets its "
                    "requirement, 1 when one misses, 2 for bad usage.")
    p.add_argument("--replications", "-R", type=_positive, default=20, metavar="R",
                   help="seeds per universe (default 20)")
    p.add_argument("--seed", type=int, default=1, help="first seed; replication r uses seed + r (default 1)")
    p.add_argument("--workers", type=_positive, default=None, metavar="N",
                   help="local processes (default: one per core); results do not depend on it")
    p.add_argument("--hypotheses", metavar="IDS", default=None, help="comma-separated proposition ids (default all)")
    p.add_argument("--switches", metavar="NAMES", default=None,
                   help="comma-separated simulator switches (default: every switch)")
    p.add_argument("--out", metavar="DIR", default="falsification", help="output folder (default ./falsification)")
    p.set_defaults(func=run_falsify)


def run_falsify(args: argparse.Namespace) -> int:
    import time

    from cluster_econ.hypotheses.falsification import falsification

    ids = _ids(args.hypotheses)
    switches = [s.strip() for s in args.switches.split(",") if s.strip()] if args.switches else None
    t0 = time.perf_counter()
    fm = falsification(replications=args.replications, seed=args.seed, workers=args.workers, propositions=ids,
                       switches=switches, progress=sys.stderr.isatty())
    seconds = time.perf_counter() - t0
    print(fm.table().to_markdown())
    written = fm.save(args.out)
    misses = fm.misses()
    for _, m in misses.iterrows():
        print(f"miss: {m['proposition']} in {m['universe']} ({m['role']}): rate {m['rate']:.2f} "
              f"(s.e. {m['mc_se']:.2f}), required {m['requirement']}; mean reported power {m['mean_power']:.2f}"
              + (f"; {m['errors']} errors" if m["errors"] else ""))
    print(f"{len(fm.runs)} tests in {seconds:.0f} s; wrote {len(written)} files to {args.out}", file=sys.stderr)
    return EXIT_FAILED if len(misses) else EXIT_OK


def _register_power(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "power",
        help="power calculator: what a survey of C clusters, N firms and T years can detect",
        description="Simulate surveys of the given size (the demo model's mechanisms; clusters sampled from the "
                    "demo's, about two thirds reaching quality improvement; each cluster surveyed for T years "
                    "around its phase change; N firms in total, sampled at random) and report each proposition's "
                    "power (share of seeds supported with the full model) and size (with its own mechanism "
                    "switched off), with Monte Carlo standard errors. Exit 0 on success, 2 for bad usage.")
    p.add_argument("--clusters", type=_positive, required=True, help="number of clusters surveyed")
    p.add_argument("--firms", type=_positive, required=True, help="number of enterprises surveyed in total")
    p.add_argument("--years", type=_positive, required=True, help="number of survey years per cluster")
    p.add_argument("--proposition", "--hypotheses", dest="hypotheses", metavar="IDS", default=None,
                   help="comma-separated proposition ids (default all)")
    p.add_argument("--replications", "-R", type=_positive, default=100, metavar="R",
                   help="seeds per universe (default 100)")
    p.add_argument("--seed", type=int, default=1, help="first seed; replication r uses seed + r (default 1)")
    p.add_argument("--workers", type=_positive, default=None, metavar="N",
                   help="local processes (default: one per core); results do not depend on it")
    p.add_argument("--out", metavar="DIR", default=None, help="also write power.csv and the runs to this folder")
    p.set_defaults(func=run_power)


def run_power(args: argparse.Namespace) -> int:
    import time

    from cluster_econ.hypotheses.calculator import power

    ids = _ids(args.hypotheses)
    t0 = time.perf_counter()
    pa = power(clusters=args.clusters, firms=args.firms, years=args.years, propositions=ids,
               replications=args.replications, seed=args.seed, workers=args.workers, progress=sys.stderr.isatty())
    print(pa.summary())
    if args.out:
        from cluster_econ.io.atomic import atomic_write_csv

        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_csv(pa.table(), out / "power.csv", index=False, lineterminator="\n", float_format="%.6g")
        atomic_write_csv(pa.runs, out / "power_runs.csv", index=False, lineterminator="\n", float_format="%.6g")
    print(f"{len(pa.runs)} tests in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return EXIT_OK


def _write(df: pd.DataFrame, out: Path, name: str) -> list[Path]:
    from cluster_econ.io.atomic import atomic_write, atomic_write_csv

    df = df.copy()
    for c in df.columns:
        if df[c].dtype == object:
            df[c] = df[c].map(lambda v: None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v))
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    atomic_write(out / f"{name}.parquet", buf.getvalue())
    # text cells a spreadsheet would run as formulas (ids, terms, messages) are neutralised
    atomic_write_csv(df, out / f"{name}.csv", lineterminator="\n")
    return [out / f"{name}.parquet", out / f"{name}.csv"]


def _line(r: Any) -> str:
    return f"{r.id:4s} {r.title}: {r.summary_line}"


def run(args: argparse.Namespace) -> int:
    from cluster_econ import hypotheses as hyp
    from cluster_econ.errors import ConfigError

    ids = [s.strip() for s in args.hypotheses.split(",") if s.strip()] if args.hypotheses else None
    if ids:
        unknown = [i for i in ids if i not in hyp.ids()]
        if unknown:
            raise ConfigError(f"--hypotheses: unknown proposition(s) {', '.join(unknown)}; "
                              f"registered: {', '.join(hyp.ids())}")
    from cluster_econ.panel import open_panel

    panel = open_panel(args.panel)
    if args.by is not None:
        cy = panel.cluster_year
        columns = [] if cy is None else [str(c) for c in cy.columns]
        if args.by not in columns:
            raise ConfigError(f"--by {args.by}: the panel's cluster_year has no such column (its columns: "
                              f"{', '.join(columns) or 'none, no cluster_year table'}); name the column that "
                              "holds the phases, or use --phases rules|breaks|hmm to detect them")
    by = args.by or "phase"
    out = Path(args.out)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fam = hyp.test_all(panel, ids=ids, by=by, phases=args.phases, progress=sys.stderr.isatty())
    print(f"phases: {fam.phase_source}")
    for r in fam:
        print(_line(r))
    verdicts = fam.tidy()
    estimates = fam.estimates()
    written = _write(verdicts, out, "verdicts") + _write(estimates, out, "estimates")
    msgs = sorted({str(w.message) for w in caught if "clusters" in str(w.message)})
    for m in msgs[:3]:
        print(f"warning: {m}", file=sys.stderr)
    print(f"wrote {', '.join(str(p) for p in written)}", file=sys.stderr)
    if fam.errors:
        for r in fam.errors:
            print(f"error: {r.message}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK
