"""Command-line subcommands for the data layer: ``normalize``, ``validate`` and ``schema``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
        "--quarantine",
        action="store_true",
        help="keep what is good instead of failing: bad values are set missing and logged in rejects/cells, "
        "rows with a bad key or required field go to rejects/<table> with their reasons",
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
    p.add_argument(
        "--partition-by",
        metavar="COLS",
        help="write each table as a dataset partitioned by these columns, e.g. country,survey_round "
        "(readable by DuckDB, polars and Dask as it is)",
    )
    p.add_argument(
        "--chunk-rows",
        type=int,
        metavar="N",
        help="stream: read, map, validate and write N rows at a time (two passes over each file), for files "
        "larger than memory; the panel is the same",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_normalize)

    v = sub.add_parser(
        "validate",
        help="validate a Panel folder against the canonical schema",
        description="Check a Panel folder: its manifest (every file listed is there, readable, with its "
        "SHA-256 and row count; each table's files add up to its row count; no unlisted data file) and every "
        "table against the canonical schema (types, ranges, infinite numbers, enums, patterns, keys, foreign "
        "keys, cross-field rules). Prints every problem found. Exit codes: 0 the panel is valid; 1 a check "
        "failed (a schema violation, or the folder does not match its manifest: edited, truncated, missing or "
        "extra files, a corrupt manifest); 2 the path is not a panel folder (missing, a file, or no "
        "manifest.json).",
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
    from cluster_econ.io.atomic import writer_lock

    partition_by = [c.strip() for c in args.partition_by.split(",") if c.strip()] if args.partition_by else None
    if args.chunk_rows is not None:
        return _normalize_streamed(args, mapping, params, partition_by)
    # the output's writer lock is taken before the work, so a second run into the same folder fails at once
    with writer_lock(args.out):
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
            print("no panel written; rerun with --quarantine to keep the valid rows and values", file=sys.stderr)
            return EXIT_FAILED
        panel.to_parquet(args.out, partition_by=partition_by)
    _print_summary(panel.audit_summary(), panel.audit, panel.rejects.get("cells"))
    for table, n in panel.tables.items():
        print(f"  {table}: {len(n)} rows")
    print(f"wrote {args.out}")
    return EXIT_OK


def _normalize_streamed(args: argparse.Namespace, mapping: Any, params: dict[str, Any],
                        partition_by: list[str] | None) -> int:
    """``normalize --chunk-rows N``: the streamed route (:func:`cluster_econ.harmonize.stream.normalize_to_folder`);
    the summary is read back from the folder's audit and manifest (not its tables)."""
    import pandas as pd
    import pyarrow.parquet as pq

    from cluster_econ import schema
    from cluster_econ.errors import SchemaError
    from cluster_econ.harmonize.stream import normalize_to_folder
    from cluster_econ.io.manifest import read_manifest
    from cluster_econ.panel.container import Panel

    try:
        normalize_to_folder(args.files, mapping, args.out, mode="quarantine" if args.quarantine else "strict",
                            deflator=args.deflator, params=params,
                            partition_by=partition_by if partition_by is not None else (),
                            chunk_rows=args.chunk_rows, progress=not args.no_progress)
    except SchemaError as exc:
        print(f"validation failed:\n{exc}", file=sys.stderr)
        print("no panel written; rerun with --quarantine to keep the valid rows and values", file=sys.stderr)
        return EXIT_FAILED
    out = Path(args.out)
    audit = pq.read_table(out / "audit.parquet").to_pandas()
    cells = pq.read_table(out / "rejects" / "cells.parquet").to_pandas() \
        if (out / "rejects" / "cells.parquet").exists() else None
    summary = Panel({"enterprise": pd.DataFrame(), "enterprise_year": pd.DataFrame()}, audit).audit_summary()
    _print_summary(summary, audit, cells)
    tables = read_manifest(out).get("tables", {})
    for table in [t for t in schema.TABLES if t in tables]:
        print(f"  {table}: {tables[table]['rows']} rows")
    print(f"wrote {args.out}")
    return EXIT_OK


def _print_summary(summary: pd.DataFrame, audit: pd.DataFrame, cells: pd.DataFrame | None) -> None:
    print(summary.to_string(index=False))
    _print_notes(audit)
    ey = summary[summary["table"] == "enterprise_year"]
    rows_in, added = int(ey["read"].sum()), int(ey["added"].sum())
    rows_out, rejected, dropped = int(ey["kept"].sum()), int(ey["rejected"].sum()), int(ey["dropped"].sum())
    print(
        f"enterprise-year rows: {rows_in} read, {added} recalled years added, {rows_out} kept, "
        f"{rejected} rejected, {dropped} duplicates dropped"
    )
    if cells is not None and len(cells):
        per_column = cells.groupby(["table", "column"]).size()
        listed = ", ".join(f"{t}.{c} {n}" for (t, c), n in per_column.items())
        print(f"values set missing by quarantine: {len(cells)} ({listed}); each is in rejects/cells.parquet")


def _validate(args: argparse.Namespace) -> int:
    from cluster_econ.schema.validate import validate

    report = validate(args.panel, mode="report")  # not a panel folder: InputError, exit 2
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
