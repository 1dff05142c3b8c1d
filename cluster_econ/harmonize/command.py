"""Command-line subcommands for the data layer: ``normalize``, ``validate`` and ``schema``."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

EXIT_OK, EXIT_FAILED = 0, 1


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "normalize",
        help="harmonize survey files into a canonical Panel folder",
        description="Read survey source files (CSV, Excel, Stata .dta, SPSS .sav, Parquet), map each with a YAML "
        "mapping specification, append the rounds, validate, and write a Panel folder (Parquet + manifest). "
        "Exit 0 on success, 1 if validation fails in strict mode, 2 for unreadable input or a bad mapping.",
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="source files, one survey round each")
    p.add_argument(
        "--mapping",
        "-m",
        action="append",
        required=True,
        metavar="SPEC",
        help="mapping YAML, or the name of a mapping shipped with cluster_econ (wbes); give it once for all "
        "files or once per file, in the same order",
    )
    p.add_argument("--out", "-o", required=True, metavar="DIR", help="output Panel folder")
    p.add_argument(
        "--quarantine", action="store_true", help="move failing rows to rejects with their reasons instead of failing"
    )
    p.add_argument("--deflator", metavar="FILE", help="deflator table (country, year, price_index)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        dest="params",
        help="value of a mapping parameter, e.g. --set country=KEN --set year=2013",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_normalize)

    v = sub.add_parser(
        "validate",
        help="validate a Panel folder against the canonical schema",
        description="Check every table of a Panel folder (types, ranges, enums, keys, foreign keys, "
        "cross-field rules). Prints every violation; exit 0 if valid, 1 if not.",
    )
    v.add_argument("panel", metavar="DIR")
    v.set_defaults(func=_validate)

    s = sub.add_parser(
        "schema",
        help="print the canonical schema",
        description="Without TABLE: list the canonical tables. With TABLE: its fields, types, units, "
        "constraints and keys. --json prints the Table Schema JSON itself.",
    )
    s.add_argument("table", nargs="?", metavar="TABLE")
    s.add_argument("--json", action="store_true", help="print the JSON Table Schema")
    s.set_defaults(func=_schema)


def _check_out(out: str) -> None:
    """``--out`` must be a folder (existing or not), never a file: say so before any work is done."""
    from pathlib import Path

    from cluster_econ.errors import InputError

    p = Path(out)
    for folder in (p, *p.parents):
        if folder.exists():
            if not folder.is_dir():
                what = "is a file" if folder == p else f"is inside {folder}, which is a file"
                raise InputError(f"--out {out}: {what}; give the folder the panel is written to")
            return


def _print_notes(audit: pd.DataFrame) -> None:
    """What was assumed or changed while reading and mapping (the audit's notes), one line each."""
    if audit.empty or "step" not in audit:
        return
    notes = audit[audit["step"] == "note"]
    if len(notes):
        print("notes (also in the panel's audit):")
        for src, reason in zip(notes["source"], notes["reason"], strict=True):
            print(f"  {src}: {reason}")


def _normalize(args: argparse.Namespace) -> int:
    from cluster_econ.errors import MappingError, SchemaError
    from cluster_econ.harmonize import normalize

    _check_out(args.out)
    mapping = args.mapping if len(args.mapping) > 1 else args.mapping[0]
    params = {}
    for item in args.params:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise MappingError(f"--set expects NAME=VALUE, got {item!r}")
        params[name.strip()] = int(value) if value.strip().lstrip("-").isdigit() else value.strip()
    try:
        panel = normalize(
            args.files,
            mapping=mapping,
            mode="quarantine" if args.quarantine else "strict",
            deflator=args.deflator,
            progress=not args.no_progress,
            params=params,
        )
    except SchemaError as exc:
        print(f"validation failed:\n{exc}", file=sys.stderr)
        print("no panel written; rerun with --quarantine to keep the valid rows", file=sys.stderr)
        return EXIT_FAILED
    panel.to_parquet(args.out)
    summary = panel.audit_summary()
    print(summary.to_string(index=False))
    _print_notes(panel.audit)
    ey = summary[summary["table"] == "enterprise_year"]
    rows_in, added = int(ey["read"].sum()), int(ey["added"].sum())
    rows_out, rejected, dropped = int(ey["kept"].sum()), int(ey["rejected"].sum()), int(ey["dropped"].sum())
    print(
        f"enterprise-year rows: {rows_in} read, {added} recalled years added, {rows_out} kept, "
        f"{rejected} rejected, {dropped} duplicates dropped"
    )
    for table, n in panel.tables.items():
        print(f"  {table}: {len(n)} rows")
    print(f"wrote {args.out}")
    return EXIT_OK


def _validate(args: argparse.Namespace) -> int:
    from cluster_econ.schema.validate import validate

    report = validate(args.panel, mode="report")
    print(report)
    return EXIT_OK if report.ok else EXIT_FAILED


def _schema(args: argparse.Namespace) -> int:
    import json

    from cluster_econ import schema

    if args.json:
        payload = schema.load(args.table).raw if args.table else {t: schema.load(t).raw for t in schema.TABLES}
        print(json.dumps(payload, indent=2))
    else:
        try:
            print(schema.describe(args.table))
        except KeyError as exc:
            print(f"error: {exc.args[0]}", file=sys.stderr)
            return 2
    return EXIT_OK
