"""The manifest of a panel folder: what it promises, checked file by file, and reading the folder.

``manifest.json`` lists every file of the panel with its table, row count and SHA-256 (and, in a
partitioned table, its partition values), the row count and columns of every table, the schema
and package versions, and the provenance metadata. :func:`check_folder` checks every promise it
can: the format and schema version; each listed file is there, is readable Parquet, has its hash
and its row count (read from the Parquet footer); each partition file sits under the path of its
partition values; each table's files add up to its row count and carry its columns; and no data
file is there that the manifest does not list (a leftover of another run). Each broken promise is a
:class:`~cluster_econ.schema.validate.Violation` of table ``manifest``.

A reader that runs while a writer switches the folder (:mod:`cluster_econ.io.atomic`) may read
the old manifest and a new file; :func:`read_folder` then sees the manifest change and reads again.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pandas as pd

from cluster_econ import schema
from cluster_econ.errors import InputError

MANIFEST = "manifest.json"
HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"
FORMAT = "cluster_econ panel"
READ_ATTEMPTS = 3


def is_panel_folder(path: Path) -> bool:
    """Whether ``path`` is a folder with a panel manifest (one this package may replace)."""
    try:
        return json.loads((Path(path) / MANIFEST).read_text(encoding="utf-8")).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def _manifest_path(directory: str | Path) -> Path:
    d = Path(directory)
    if not d.exists():
        _put_back(d)
    if not d.exists():
        raise InputError(f"{d}: panel folder not found")
    if not d.is_dir():
        raise InputError(f"{d}: is a file, not a panel folder")
    m = d / MANIFEST
    if not m.exists():
        raise InputError(
            f"{d}: not a cluster_econ panel folder (no {MANIFEST}; write one with "
            "'cluster-econ normalize' or Panel.to_parquet)"
        )
    return m


def _put_back(d: Path) -> None:
    """A folder a writer set aside and was killed before it put the new one in place (only where
    the system cannot exchange two folders in one step): put it back, if no writer is at work."""
    from cluster_econ.errors import OutputBusyError
    from cluster_econ.io.atomic import clean_interrupted, writer_lock

    if not d.parent.is_dir() or not any(p.name.startswith(f".{d.name}.old-") for p in d.parent.iterdir()):
        return
    try:
        with writer_lock(d):
            clean_interrupted(d)
    except OutputBusyError:
        return  # a writer is at work: it puts a folder in place itself


def read_manifest(directory: str | Path) -> dict[str, Any]:
    """The manifest of a panel folder; :class:`InputError` if it is not one or cannot be parsed."""
    m = _manifest_path(directory)
    try:
        manifest = json.loads(m.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{m}: corrupt manifest ({exc})") from exc
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise InputError(f"{m}: corrupt manifest (no 'files' listing)")
    return manifest


def _violation(column: str, rule: str, value: Any = None) -> Any:
    from cluster_econ.schema.validate import Violation

    return Violation("manifest", column, rule, 1, (), () if value is None else (value,), scope="table")


def _tables_of(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The manifest's tables (older manifests list only files: one file per table)."""
    tables = manifest.get("tables")
    if isinstance(tables, dict):
        return tables
    out: dict[str, dict[str, Any]] = {}
    for rel, info in manifest["files"].items():
        if isinstance(info, dict) and rel == f"{info.get('table')}.parquet" and info.get("table") in schema.TABLES:
            out[info["table"]] = {"rows": info.get("rows")}
    return out


def _data_files(d: Path) -> set[str]:
    """Data files in the places a panel keeps them: top-level Parquet files, ``rejects/`` and the
    canonical tables' dataset folders (other folders, such as a simulator's ``truth/``, are not the
    panel's)."""
    found = {p.name for p in d.glob("*.parquet")}
    for sub in ("rejects", *schema.TABLES):
        if (d / sub).is_dir():
            found |= {p.relative_to(d).as_posix() for p in (d / sub).rglob("*") if p.is_file()}
    return found


def check_folder(directory: str | Path) -> tuple[dict[str, Any] | None, list[Any]]:
    """Check a panel folder against its manifest; returns the manifest (None when unreadable) and
    the broken promises. A folder with no manifest at all is an :class:`InputError` (not a panel)."""
    import pyarrow.parquet as pq

    from cluster_econ.io.readers import file_sha256

    d = Path(directory)
    m = _manifest_path(d)
    problems: list[Any] = []
    try:
        manifest = json.loads(m.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return None, [_violation(MANIFEST, f"not valid JSON ({exc})")]
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        return None, [_violation(MANIFEST, "no 'files' listing")]
    if manifest.get("format") != FORMAT:
        problems.append(_violation("format", f"expected {FORMAT!r}", manifest.get("format")))
    version = str(manifest.get("schema_version", ""))
    if version.split(".")[0] != schema.SCHEMA_VERSION.split(".")[0]:
        problems.append(_violation("schema_version", f"written for schema {version or '?'}, this package reads "
                                                     f"{schema.SCHEMA_VERSION}", version))
    if not isinstance(manifest.get("metadata", {}), dict):
        problems.append(_violation("metadata", "not a mapping"))
    rows_by_table: dict[str, int] = {}
    columns_by_table: dict[str, set[str]] = {}
    for rel, info in sorted(manifest["files"].items()):
        path = d / rel
        if not isinstance(info, dict):
            problems.append(_violation(rel, "entry is not a mapping"))
            continue
        if not path.is_file():
            problems.append(_violation(rel, "listed in the manifest but missing"))
            continue
        if file_sha256(path) != info.get("sha256"):
            problems.append(_violation(rel, "sha256: contents changed since the manifest was written (hash mismatch)"))
        try:
            meta = pq.ParquetFile(path)
            n_rows, names = meta.metadata.num_rows, set(meta.schema_arrow.names)
        except Exception as exc:  # pyarrow raises several types for a damaged file
            problems.append(_violation(rel, f"not a readable Parquet file ({type(exc).__name__}: {exc})"))
            continue
        if info.get("rows") != n_rows:
            problems.append(_violation(rel, f"rows: the manifest says {info.get('rows')!r}, the file has {n_rows}",
                                       info.get("rows")))
        partition = info.get("partition") or {}
        if partition:
            expected = "/".join(f"{c}={quote(str(v), safe='') if v is not None else HIVE_NULL}"
                                for c, v in partition.items())
            if Path(rel).parent.as_posix() != f"{info.get('table')}/{expected}":
                problems.append(_violation(rel, f"partition: path does not match the values {partition}"))
        table = info.get("table")
        if table in schema.TABLES:
            rows_by_table[table] = rows_by_table.get(table, 0) + n_rows
            columns_by_table.setdefault(table, set()).update(names | set(partition))
    for table, entry in _tables_of(manifest).items():
        if not isinstance(entry, dict):
            problems.append(_violation(f"tables.{table}", "entry is not a mapping"))
            continue
        if entry.get("rows") != rows_by_table.get(table, 0):
            problems.append(_violation(f"tables.{table}", f"rows: the manifest says {entry.get('rows')!r}, its "
                                                          f"files have {rows_by_table.get(table, 0)}",
                                       entry.get("rows")))
        if "columns" in entry and table in columns_by_table:
            expected_cols = set(entry["columns"]) | set(entry.get("added_columns", []))
            if expected_cols != columns_by_table[table]:
                diff = sorted(expected_cols ^ columns_by_table[table])
                problems.append(_violation(f"tables.{table}", f"columns: the files differ from the manifest in "
                                                              f"{', '.join(diff)}"))
    for rel in sorted(_data_files(d) - set(manifest["files"])):
        problems.append(_violation(rel, "data file not listed in the manifest (left by another run?)"))
    return manifest, problems


def _read_table(d: Path, files: list[tuple[str, dict[str, Any]]], entry: dict[str, Any]) -> pd.DataFrame:
    """One table from its file(s); partition values become columns of their schema type."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from cluster_econ.schema.casting import cast_column

    parts = entry.get("partition_by") or []
    if not parts and len(files) == 1:
        return pq.read_table(d / files[0][0]).to_pandas()
    pieces = []
    for rel, info in files:
        t = pq.read_table(d / rel)
        for c in parts:
            value = info["partition"][c]
            t = t.append_column(c, pa.array([None if value is None else str(value)] * t.num_rows, pa.string()))
        pieces.append(t)
    df = pa.concat_tables(pieces, promote_options="default").to_pandas()
    table = files[0][1]["table"]
    ts = schema.load(table)
    for c in parts:
        if ts.has(c) and ts.field(c).type != "string":
            df[c] = cast_column(df[c], ts.field(c).type).values
    order = [c for c in entry.get("columns", df.columns) if c in df.columns]
    return df[order] if list(df.columns) != order else df


def _read_once(d: Path, manifest: dict[str, Any]) -> Any:
    from cluster_econ.panel.container import Panel

    by_table: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    rejects: dict[str, pd.DataFrame] = {}
    audit = None
    tables_meta = _tables_of(manifest)
    for rel, info in sorted(manifest["files"].items()):
        table = info["table"]
        if rel == "audit.parquet":
            audit = _read_single(d / rel)
        elif rel.startswith("rejects/"):
            rejects[table.split("/", 1)[1]] = _read_single(d / rel)
        else:
            by_table.setdefault(table, []).append((rel, info))
    tables = {t: _read_table(d, files, tables_meta.get(t, {})) for t, files in by_table.items()}
    return Panel(tables, audit, rejects, manifest.get("metadata", {}))


def _read_single(path: Path) -> pd.DataFrame:
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pandas()


def _stamp(d: Path) -> tuple[int, bytes]:
    """What changes when a writer switches the folder: its inode and its manifest."""
    try:
        return os.stat(d).st_ino, (d / MANIFEST).read_bytes()
    except OSError:
        return -1, b""


def read_folder(directory: str | Path, verify: bool = True) -> Any:
    """Read a panel folder (see :func:`cluster_econ.io.parquet.read_panel`)."""
    d = Path(directory)
    for attempt in range(READ_ATTEMPTS):
        before = _stamp(d)
        try:
            if verify:
                manifest, problems = check_folder(d)
                if problems:
                    raise InputError(f"{d}: the folder does not match its manifest:\n"
                                     + "\n".join(f"  - {p.column}: {p.rule}" for p in problems))
            else:
                manifest = read_manifest(d)
            panel = _read_once(d, manifest)
        except (InputError, OSError):
            if attempt + 1 < READ_ATTEMPTS and _stamp(d) != before:
                continue  # a writer switched the folder while we read: read the new one
            raise
        if _stamp(d) == before:
            return panel
    raise InputError(f"{d}: the panel kept changing while it was read ({READ_ATTEMPTS} attempts)")


def read_checked(directory: str | Path) -> tuple[Any, list[Any]]:
    """The panel as far as it can be read, and the manifest's broken promises (for ``validate``):
    files that are missing or unreadable are left out; files whose hash or row count is wrong are
    still read, so that their rows are validated too."""
    d = Path(directory)
    manifest, problems = check_folder(d)
    if manifest is None:
        return None, problems
    broken = {p.column for p in problems if "missing" in p.rule or "readable" in p.rule}
    files = {rel: info for rel, info in manifest["files"].items() if rel not in broken and isinstance(info, dict)}
    try:
        panel = _read_once(d, {**manifest, "files": files})
    except Exception as exc:  # a table that cannot be assembled is one more failed check
        from cluster_econ.errors import SchemaError

        if isinstance(exc, SchemaError):  # a required table is missing
            problems.append(_violation(MANIFEST, str(exc)))
            return None, problems
        raise
    return panel, problems
