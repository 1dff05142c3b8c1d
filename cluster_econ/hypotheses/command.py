"""``cluster-econ test``: test the propositions on a panel and write tidy results.

``cluster-econ test DIR|demo [--hypotheses P4,P6] [--by phase] [--phases column|rules|breaks|hmm]
--out DIR`` reads a panel directory (:func:`cluster_econ.read_panel`) or the demo universe, runs
the propositions, writes ``verdicts`` (one row per proposition) and ``estimates`` (every
reported coefficient and check) as Parquet and CSV into ``--out`` (atomic writes), and prints one
line per proposition. Exit codes: 0 when every proposition ran (whatever the verdicts), 1 if one
raised an error, 2 for bad input or usage.
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

__all__ = ["register", "run"]

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
    return p


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
