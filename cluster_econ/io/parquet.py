"""The Panel on disk: Parquet files with a manifest, written as one folder that changes at once.

Layout of a panel folder::

    manifest.json            schema version, package version, tables, every file's rows and SHA-256
    enterprise.parquet       ... one file per canonical table present, or, when partitioned,
    enterprise_year/country=KEN/survey_round=2013/part-0.parquet   (a hive-style dataset)
    audit.parquet            row accounting per source
    rejects/<table>.parquet  rows quarantined by validation, with their original values and reasons
    rejects/cells.parquet    values set missing by quarantine, cell by cell

Writing is crash-safe and concurrent-safe (:func:`cluster_econ.io.atomic.atomic_directory`): the
new folder is built beside the old one and switched in one step, so a run interrupted at any
moment (Ctrl-C, ``kill -9``, power loss after the switch) leaves the previous panel byte-identical
and readable, and a later run removes what it left; a second writer of the same folder fails at once.
A folder that exists, is not empty and has no manifest is never replaced. Output is byte-identical
for the same Panel: no timestamps, no pandas index.

**Partitioned panels** (``Panel.to_parquet(dir, partition_by=["country", "survey_round"])``):
each table is written as a hive-style dataset (``<table>/<column>=<value>/part-<k>.parquet``,
values percent-encoded) by those of the columns it has, or, for ``country``, can take from its
enterprise (``enterprise_year``, ``manager`` and ``rct_assignment`` carry their enterprise's
country in the path; :func:`read_panel` drops it again). A column partitions a table only when every
row has a value (Dask cannot read a dataset with missing partition values); otherwise it stays an
ordinary column, and the manifest says which columns partition each table. Partitions are in the
order of their paths, rows within a partition in their order in the table. DuckDB
(``read_parquet('DIR/enterprise_year/**/*.parquet', hive_partitioning=true)``), polars
(``pl.scan_parquet('DIR/enterprise_year/**/*.parquet', hive_partitioning=True)``) and Dask
(``dd.read_parquet('DIR/enterprise_year')``) read such a table as it is; each infers the partition
columns' types from the paths, while :func:`read_panel` gives them their schema type.
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import pandas as pd

from cluster_econ import schema
from cluster_econ._version import __version__
from cluster_econ.errors import InputError
from cluster_econ.io.atomic import HashingFile, atomic_directory, atomic_file, atomic_write, new_file
from cluster_econ.io.manifest import FORMAT, MANIFEST, is_panel_folder, read_manifest  # noqa: F401
from cluster_econ.io.readers import file_sha256

# the name other modules use for byte payloads
atomic_write_bytes = atomic_write
PART = "part-{}.parquet"
HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"  # the folder name of a missing partition value
MAX_OPEN = 64  # part files kept open at once by a table written in pieces


ROW_GROUP = 1 << 17  # rows per row group: the Arrow copy of a table is made one row group at a time


def _text(series: pd.Series) -> pd.Series:
    return series.map(lambda v: None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v))


def _prepared(df: pd.DataFrame) -> tuple[pd.DataFrame, Any]:
    """The frame to write and its Arrow schema (with the pandas metadata that restores nullable
    integers and booleans on reading). Object columns are text (``string``), booleans, or, when
    their values are of mixed types (raw source columns, original values of rejected rows), stored
    as text; their type is decided here in one pass instead of pyarrow's own inference."""
    import pyarrow as pa

    types: dict[str, Any] = {}
    fixed: dict[str, pd.Series] = {}
    for c in df.columns:
        if df[c].dtype == object:
            inferred = pd.api.types.infer_dtype(df[c], skipna=True)
            if inferred == "boolean":
                types[c] = pa.bool_()
            else:
                types[c] = pa.string()
                if inferred not in ("string", "empty"):
                    fixed[c] = _text(df[c])
    if fixed:
        # only the columns that change are replaced, on a shallow copy (the index is never stored)
        df = df.copy(deep=False)
        for c, values in fixed.items():
            df[c] = values
    arrow_schema = pa.Schema.from_pandas(df.iloc[:0], preserve_index=False)
    for c, t in types.items():
        arrow_schema = arrow_schema.set(arrow_schema.get_field_index(c), pa.field(c, t))
    return df, arrow_schema


def _write_frame(df: pd.DataFrame, fh: Any) -> None:
    """Write a DataFrame as Parquet (snappy, no index) to an open binary file.

    The Arrow copy is made one row group at a time (:data:`ROW_GROUP` rows), so the peak memory of
    writing is one row group's, not the table's; columns are converted through the system allocator
    (it reuses memory the process has just freed instead of growing Arrow's own pool). Dictionary
    encoding is used for every column but floating-point ones, where values rarely repeat and
    building the dictionary costs more than it saves. The bytes depend only on the frame.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not all(isinstance(c, str) for c in df.columns) or df.columns.has_duplicates:
        pq.write_table(pa.Table.from_pandas(df, preserve_index=False), fh, compression="snappy")
        return
    df, arrow_schema = _prepared(df)
    pool = pa.system_memory_pool()
    dictionary = [f.name for f in arrow_schema if not pa.types.is_floating(f.type)]
    with pq.ParquetWriter(fh, arrow_schema, compression="snappy", use_dictionary=dictionary,
                          memory_pool=pool) as writer:
        for start in range(0, max(len(df), 1), ROW_GROUP):
            part = df.iloc[start:start + ROW_GROUP]
            arrays = [pa.Array.from_pandas(part[f.name], type=f.type, memory_pool=pool) for f in arrow_schema]
            writer.write_table(pa.Table.from_arrays(arrays, schema=arrow_schema))
            del arrays


class _OpenPart:
    """A part file of a table written in pieces: one Parquet writer kept open, a row group (or more)
    per piece, the SHA-256 computed as the bytes go out; synced and closed by :meth:`close`."""

    def __init__(self, path: Path, df: pd.DataFrame) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        _, self.schema = _prepared(df)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.fh = open(path, "xb")  # noqa: SIM115 (closed by close())
        self.out = HashingFile(self.fh)
        dictionary = [f.name for f in self.schema if not pa.types.is_floating(f.type)]
        self.writer = pq.ParquetWriter(self.out, self.schema, compression="snappy", use_dictionary=dictionary,
                                       memory_pool=pa.system_memory_pool())
        self.rows = 0

    def write(self, df: pd.DataFrame) -> None:
        import pyarrow as pa

        df, _ = _prepared(df)
        pool = pa.system_memory_pool()
        for start in range(0, len(df), ROW_GROUP):
            part = df.iloc[start:start + ROW_GROUP]
            try:
                arrays = [pa.Array.from_pandas(part[f.name], type=f.type, memory_pool=pool) if f.name in part.columns
                          else pa.nulls(len(part), f.type) for f in self.schema]
            except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
                raise InputError(f"{self.fh.name}: a piece of the table does not fit the types of the first one "
                                 f"({exc}); read the source in one piece or declare the column's type") from exc
            self.writer.write_table(pa.Table.from_arrays(arrays, schema=self.schema))
        self.rows += len(df)

    def close(self) -> str:
        self.writer.close()
        self.fh.flush()
        os.fsync(self.fh.fileno())
        self.fh.close()
        return self.out.hexdigest()


def _write_parquet(df: pd.DataFrame, path: Path) -> str:
    """Write one table to its own file atomically (temporary file, then rename); returns the SHA-256
    of the bytes written. For single files outside a panel folder (the simulator's truth)."""
    with atomic_file(path) as fh:
        _write_frame(df, fh)
    return file_sha256(path)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if obj is None or isinstance(obj, str | int | float | bool):
        return obj
    return str(obj)


def partition_text(value: Any) -> str:
    """A partition value as text: integers without a decimal point, text as it is."""
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


class PanelFolderWriter:
    """Writes the files of one panel folder (inside a staging folder) and its manifest.

    Tables may be given in pieces (``add_table(..., pieces=True)`` called again for the same table):
    each partition's part file stays open and each piece adds row groups to it, so a table larger
    than memory is streamed into one file per partition (a new part file only when more than
    :data:`MAX_OPEN` partitions are being written at once).
    """

    def __init__(self, folder: Path, partition_by: Sequence[str] | None = None) -> None:
        self.folder = folder
        self.partition_by = tuple(partition_by or ())
        self.files: dict[str, dict[str, Any]] = {}
        self.tables: dict[str, dict[str, Any]] = {}
        self._parts: dict[str, int] = {}  # partition folder -> next part number
        # part files of tables written in pieces, kept open (at most MAX_OPEN, least recently used closed)
        self._open: OrderedDict[str, tuple[_OpenPart, str, dict[str, Any]]] = OrderedDict()

    def _piece(self, folder: str, df: pd.DataFrame, info: dict[str, Any]) -> None:
        """Rows of a table written in pieces, appended to the open part file of ``folder``."""
        if folder in self._open:
            self._open.move_to_end(folder)
            part = self._open[folder][0]
        else:
            if len(self._open) >= MAX_OPEN:
                self._close(next(iter(self._open)))
            k = self._parts.get(folder, 0)
            self._parts[folder] = k + 1
            rel = f"{folder}/{PART.format(k)}"
            part = _OpenPart(self.folder / rel, df)
            self._open[folder] = (part, rel, info)
        part.write(df)

    def _close(self, folder: str) -> None:
        part, rel, info = self._open.pop(folder)
        digest = part.close()
        self.files[rel] = {**info, "rows": part.rows, "sha256": digest}

    def close(self) -> None:
        """Finish the part files still open."""
        for folder in list(self._open):
            self._close(folder)

    def _file(self, rel: str, df: pd.DataFrame, info: dict[str, Any]) -> None:
        with new_file(self.folder / rel) as fh:
            _write_frame(df, fh)
        self.files[rel] = {**info, "rows": len(df), "sha256": fh.hexdigest()}

    def add_single(self, rel: str, label: str, df: pd.DataFrame) -> None:
        """A file that is not a canonical table (audit, rejects)."""
        self._file(rel, df, {"table": label})

    def partition_columns(self, df: pd.DataFrame, name: str) -> list[str]:
        """Columns of ``df`` that partition table ``name``: those asked for that ``df`` has, with a
        value on every row."""
        return [c for c in self.partition_by if c in df.columns and len(df) and bool(df[c].notna().all())]

    def add_table(self, name: str, df: pd.DataFrame, added: Sequence[str] = (),
                  parts: Sequence[str] | None = None, pieces: bool = False) -> None:
        """Write (a piece of) canonical table ``name``. ``added`` are columns put in only to
        partition by (dropped again by :func:`read_panel`). ``parts`` fixes the partition columns
        (for a table written in pieces, decided before the first); by default those of
        :meth:`partition_columns` for the first piece. ``pieces``: the table comes in several
        pieces, so even without partitions it is a dataset folder (``<table>/part-<k>.parquet``)."""
        entry = self.tables.get(name)
        if entry is not None:
            parts = entry.get("partition_by", [])
        elif parts is None:
            parts = self.partition_columns(df, name)
        else:
            parts = [c for c in parts if c in df.columns]
        if entry is None:
            entry = {"rows": 0, "columns": [c for c in df.columns if c not in added]}
            if parts:
                entry["partition_by"] = parts
                entry["added_columns"] = [c for c in added if c in parts]
            if pieces:
                entry["dataset"] = True
            self.tables[name] = entry
        entry["rows"] += len(df)
        if not parts:
            rel = f"{name}.parquet"
            body = df.drop(columns=[c for c in added if c in df.columns])
            if entry.get("dataset"):
                self._piece(name, body, {"table": name})
                return
            if rel in self.files:
                raise ValueError(f"table {name} is not partitioned and was already written")
            self._file(rel, body, {"table": name})
            return
        drop = [c for c in df.columns if c in added and c not in parts]
        body = df.drop(columns=[*parts, *drop])
        # the partition of each row as one code; each column's distinct values are made text once
        combo = np.zeros(len(df), dtype=np.int64)
        column_codes, labels = [], []
        for c in parts:
            col_codes, col_values = pd.factorize(df[c])
            column_codes.append(col_codes)
            # position -1 (a missing value) takes the hive convention's name for it
            labels.append(np.array([*(partition_text(v) for v in col_values.tolist()), HIVE_NULL], dtype=object))
            combo = combo * (len(col_values) + 1) + (col_codes + 1)
        local, _ = pd.factorize(combo)
        first_rows = np.flatnonzero(~pd.Series(local).duplicated().to_numpy())  # a row of each partition
        texts = [labels[j][column_codes[j][first_rows]] for j in range(len(parts))]
        distinct = pd.MultiIndex.from_arrays(texts) if len(parts) > 1 else pd.Index(texts[0])
        sorted_codes, uniques = pd.factorize(distinct, sort=True)
        codes = sorted_codes[local]
        order = np.argsort(codes, kind="stable")
        bounds = np.r_[0, np.cumsum(np.bincount(codes, minlength=len(uniques)))]
        for code, value in enumerate(uniques):
            values = value if isinstance(value, tuple) else (value,)
            rows = order[bounds[code]:bounds[code + 1]]
            folder = "/".join(f"{c}={quote(v, safe='')}" for c, v in zip(parts, values, strict=True))
            piece = body.iloc[rows] if len(rows) < len(body) else body
            info = {"table": name, "partition": {c: (None if v == HIVE_NULL else v)
                                                 for c, v in zip(parts, values, strict=True)}}
            if entry.get("dataset"):
                self._piece(f"{name}/{folder}", piece, info)
                continue
            k = self._parts.get(f"{name}/{folder}", 0)
            self._parts[f"{name}/{folder}"] = k + 1
            self._file(f"{name}/{folder}/{PART.format(k)}", piece, info)

    def write_manifest(self, metadata: dict[str, Any]) -> None:
        self.close()
        manifest = {
            "format": FORMAT,
            "schema_version": schema.SCHEMA_VERSION,
            "package_version": __version__,
            "tables": self.tables,
            "files": self.files,
            "metadata": _jsonable(metadata),
        }
        with new_file(self.folder / MANIFEST) as fh:
            fh.write((json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode())


def _with_country(panel: Any, name: str, df: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """``df`` with its enterprise's country added (for partitioning), when it has none."""
    ent = panel.get("enterprise")
    if "country" in df.columns or "enterprise_id" not in df.columns or ent is None or "country" not in ent.columns:
        return df, []
    at = pd.Index(ent["enterprise_id"]).get_indexer(df["enterprise_id"])
    country = np.append(ent["country"].to_numpy(dtype=object), None)[at]
    return df.assign(country=country), ["country"]


def write_panel(panel: Any, directory: str | Path, partition_by: Sequence[str] | None = None) -> str:
    """Write a Panel as a folder of Parquet files with a manifest; returns the folder.

    Parameters
    ----------
    panel : Panel
    directory : path
        The panel folder. It is replaced as a whole (see the module docstring); an existing folder
        that is not a panel folder and not empty is refused.
    partition_by : sequence of str, optional
        Columns to partition the tables by (for example ``["country", "survey_round"]``).
    """
    if isinstance(partition_by, str):
        partition_by = [partition_by]
    with atomic_directory(directory, replaceable=is_panel_folder) as staging:
        writer = PanelFolderWriter(staging, partition_by)
        for name in schema.TABLES:
            df = panel.get(name)
            if df is None:
                continue
            added: list[str] = []
            if "country" in writer.partition_by:
                df, added = _with_country(panel, name, df)
            writer.add_table(name, df, added)
        writer.add_single("audit.parquet", "audit", panel.audit)
        for name, df in sorted(panel.rejects.items()):
            writer.add_single(f"rejects/{name}.parquet", f"rejects/{name}", df)
        writer.write_manifest(panel.metadata)
    return str(directory)


def read_panel(directory: str | Path, verify: bool = True) -> Any:
    """Read a panel folder.

    With ``verify`` every file is checked against the manifest first (present, its SHA-256 and its
    row count, no unlisted data file); any problem is an :class:`~cluster_econ.errors.InputError`
    listing them all (``cluster-econ validate DIR`` reports them as failed checks).
    """
    from cluster_econ.io.manifest import read_folder

    return read_folder(directory, verify=verify)
