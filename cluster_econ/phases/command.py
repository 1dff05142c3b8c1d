"""``cluster-econ phases``: detect the phase of every cluster-year of a panel."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from cluster_econ.errors import InputError

__all__ = ["register", "run"]


def _seed(text: str) -> int:
    """argparse type of ``--seed``: a non-negative integer (what numpy's generators accept)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got {value}")
    return value


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``phases`` subcommand to an argparse subparsers object."""
    p = subparsers.add_parser(
        "phases",
        help="detect the development phase of every cluster-year",
        description="Detect the phase (initiation, quantity expansion, quality improvement, "
                    "stagnation) of every cluster-year of a panel from its cluster-level "
                    "signals: firm counts, entry and exit, the real price, innovation and "
                    "institution shares, schooling and concentration. A cluster-year whose "
                    "proposed phase lacks the signals that define it is labelled 'unknown' and "
                    "the missing signals are named. Prints each cluster's phase spans (or, with "
                    "--compare, how far the methods agree) and optionally writes the labelled "
                    "cluster_year table.",
    )
    p.add_argument("panel", metavar="DIR",
                   help="panel directory written by normalize (or Panel.to_parquet), a "
                        "cluster_year .csv/.parquet file, or the word 'demo' for the demo panel")
    p.add_argument("--method", choices=["rules", "breaks", "hmm", "all"], default="rules",
                   help="rules: thresholds on smoothed signals with the phase order enforced "
                        "(default); breaks: common structural breaks in the signals; hmm: "
                        "left-to-right hidden Markov model; all: the three side by side (as "
                        "--compare)")
    p.add_argument("--compare", action="store_true",
                   help="run rules, breaks and hmm and print their labels' agreement (share of "
                        "cluster-years labelled the same and Cohen's kappa, per cluster and "
                        "overall), with a warning where it is low; --out then writes the labels "
                        "side by side")
    p.add_argument("--min-kappa", type=float, default=0.6, metavar="K",
                   help="with --compare: kappa below which agreement counts as low (default 0.6)")
    p.add_argument("--out", metavar="FILE",
                   help="write the labelled cluster_year table (.parquet or .csv)")
    p.add_argument("--seed", type=_seed, default=0,
                   help="seed of the HMM's random starts (a non-negative integer)")
    p.set_defaults(func=run)
    return p


def _load(source: str) -> Any:
    path = Path(source)
    if source == "demo" or path.is_dir():
        from cluster_econ.panel import open_panel
        return open_panel(source)
    if not path.exists():
        raise InputError(f"{source}: no such file or directory")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            return pd.read_csv(path)
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
    except (OSError, ValueError) as exc:
        raise InputError(f"{source}: cannot be read ({exc})") from exc
    raise InputError(f"{source}: expected a panel directory or a .csv/.parquet cluster_year file")


def _write(df: pd.DataFrame, out: str) -> None:
    """Write the labelled table atomically: CSV with spreadsheet formulas neutralised, or Parquet
    encoded in memory and renamed into place (:mod:`cluster_econ.io.atomic`)."""
    from cluster_econ.io.atomic import atomic_write, atomic_write_csv

    path = Path(out)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet", ".pq"):
        raise InputError(f"--out {out}: use a .parquet or .csv file name")
    if suffix == ".csv":
        atomic_write_csv(df, path)
        return
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), sink)
    atomic_write(path, sink.getvalue().to_pybytes())


def _run_compare(data: Any, args: argparse.Namespace) -> int:
    import warnings

    from cluster_econ import phases

    if not 0 < args.min_kappa <= 1:
        raise InputError(f"--min-kappa must be in (0, 1], got {args.min_kappa}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", phases.PhaseAgreementWarning)   # printed below instead
        cmp = phases.compare(data, configs={"hmm": {"seed": args.seed}},
                             min_kappa=args.min_kappa)
    print(cmp.summary())
    from cluster_econ.phases.result import _reason_lines

    for m, res in cmp.results.items():
        reasons = res.unknown_reasons()
        if len(reasons):
            print(f"why unknown ({m}):")
            print("\n".join(_reason_lines(reasons)))
    if cmp.messages:
        print(f"{len(cmp.messages)} low-agreement warning(s)", file=sys.stderr)
    if args.out:
        _write(cmp.labels, args.out)
        print(f"wrote {len(cmp.labels)} cluster-years to {args.out}", file=sys.stderr)
    return 0


def run(args: argparse.Namespace) -> int:
    from cluster_econ import phases

    data = _load(args.panel)
    if args.compare or args.method == "all":
        return _run_compare(data, args)
    kw = {"seed": args.seed} if args.method == "hmm" else {}
    res = phases.detect(data, method=args.method, **kw)
    print(res.summary())
    if res.break_dates is not None and len(res.break_dates):
        tr = res.break_dates[res.break_dates["transition"]]
        if len(tr):
            print("phase transitions (last year of the earlier phase, "
                  f"{int(100 * res.break_dates.attrs.get('level', 0.95))}% interval):")
            for r in tr.itertuples():
                lo = "?" if r.lower is None or pd.isna(r.lower) else int(r.lower)
                hi = "?" if r.upper is None or pd.isna(r.upper) else int(r.upper)
                print(f"  {r.cluster_id}: {r.from_phase} -> {r.to_phase} after {r.year} "
                      f"[{lo}, {hi}]")
    if args.out:
        _write(res.cluster_year, args.out)
        print(f"wrote {len(res.cluster_year)} cluster-years to {args.out}", file=sys.stderr)
    return 0
