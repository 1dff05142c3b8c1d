"""Readers for survey source files: CSV, Excel, Stata, SPSS and Parquet.

Every reader returns a :class:`SourceTable`: the data as read (codes, not labels), the variable and
value labels the file carries, and the file's SHA-256. Problems are raised as
:class:`~cluster_econ.errors.InputError` naming the file: a missing file, an unknown format, a
corrupt or empty file, or one with a header and no data rows.

Stata and SPSS files are read with pyreadstat (labels kept as metadata, never applied to the
data); CSV encoding is detected with charset-normalizer and the delimiter sniffed from a sample.
"""

from __future__ import annotations

import csv
import hashlib
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cluster_econ.errors import InputError

FORMATS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".xlsx": "excel",
    ".xlsm": "excel",
    ".dta": "stata",
    ".sav": "spss",
    ".zsav": "spss",
    ".parquet": "parquet",
    ".pq": "parquet",
}
SNIFF_BYTES = 1 << 20


@dataclass
class SourceTable:
    """One source file as read."""

    data: pd.DataFrame
    path: str
    format: str
    sha256: str
    variable_labels: dict[str, str] = field(default_factory=dict)
    value_labels: dict[str, dict[Any, str]] = field(default_factory=dict)
    encoding: str | None = None
    delimiter: str | None = None

    @property
    def name(self) -> str:
        return Path(self.path).name


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def detect_format(path: str | Path, format: str | None = None) -> str:
    if format:
        if format not in set(FORMATS.values()):
            raise InputError(f"{path}: unknown format {format!r}; use one of {sorted(set(FORMATS.values()))}")
        return format
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise InputError(
            f"{path}: unknown file format {suffix or '(no extension)'!r}; supported: "
            + ", ".join(sorted(FORMATS))
            + " (or pass the format explicitly)"
        )
    return FORMATS[suffix]


def read_source(
    path: str | Path,
    format: str | None = None,
    *,
    sheet: str | int | None = None,
    encoding: str | None = None,
    delimiter: str | None = None,
) -> SourceTable:
    """Read one survey source file.

    Parameters
    ----------
    path : path
        The file.
    format : {"csv", "excel", "stata", "spss", "parquet"}, optional
        Overrides the format implied by the extension.
    sheet : str or int, optional
        Excel sheet (default the first).
    encoding, delimiter : str, optional
        CSV only; detected when not given.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: file not found")
    if p.is_dir():
        raise InputError(f"{p}: is a folder, not a file")
    fmt = detect_format(p, format)
    if p.stat().st_size == 0:
        raise InputError(f"{p}: the file is empty (0 bytes)")
    reader = {
        "csv": _read_csv,
        "excel": _read_excel,
        "stata": _read_stata,
        "spss": _read_spss,
        "parquet": _read_parquet,
    }[fmt]
    # the file is hashed on a second thread while it is parsed (hashlib and file reads release the GIL)
    digest: dict[str, str] = {}
    hasher = threading.Thread(target=lambda: digest.setdefault("sha256", file_sha256(p)), daemon=True)
    hasher.start()
    try:
        table = reader(p, sheet=sheet, encoding=encoding, delimiter=delimiter)
    except InputError:
        raise
    except Exception as exc:  # a reader's own error: say which file and format failed
        raise InputError(
            f"{p}: cannot read as {fmt}: the file is corrupt or not a {fmt} file ({type(exc).__name__}: {exc})"
        ) from exc
    if table.data.shape[1] == 0:
        raise InputError(f"{p}: no columns found")
    if len(table.data) == 0:
        raise InputError(f"{p}: has a header ({table.data.shape[1]} columns) but no data rows")
    hasher.join()
    table.sha256 = digest["sha256"] if "sha256" in digest else file_sha256(p)
    return table


def _detect_encoding(raw: bytes) -> str:
    try:
        raw.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(raw).best()
    if best is None:
        raise InputError("cannot detect the text encoding; pass encoding=")
    enc = best.encoding
    # single-byte Western files are usually cp1252 / latin-1; charset-normalizer may name a cousin
    return "cp1252" if enc in {"cp1250", "cp1252", "latin_1", "iso8859_15", "cp1253"} else enc


def _read_csv(p: Path, *, encoding: str | None, delimiter: str | None, **_: Any) -> SourceTable:
    with open(p, "rb") as fh:
        sample = fh.read(SNIFF_BYTES)
    if not sample.strip():
        raise InputError(f"{p}: the file is empty (only whitespace)")
    if sample.startswith(b"\x00") or b"\x00" in sample[:4096]:
        raise InputError(f"{p}: cannot read as csv: the file contains binary data (NUL bytes)")
    enc = encoding or _detect_encoding(sample)
    if enc == "utf-8" and sample.startswith(b"\xef\xbb\xbf"):
        enc = "utf-8-sig"
    text = sample.decode(enc, errors="replace")
    if delimiter is None:
        try:
            delimiter = csv.Sniffer().sniff(text[:65536], delimiters=",;\t|").delimiter
        except csv.Error:
            delimiter = ","
    try:
        df = pd.read_csv(
            p,
            sep=delimiter,
            encoding=enc,
            dtype=str,
            keep_default_na=False,
            na_values=[""],
            skipinitialspace=True,
            engine="c",
        )
    except pd.errors.EmptyDataError as exc:
        raise InputError(f"{p}: the file is empty") from exc
    except pd.errors.ParserError as exc:
        raise InputError(f"{p}: cannot parse as delimited text with {delimiter!r}: {exc}") from exc
    df.columns = [str(c).strip() for c in df.columns]
    df = _infer_numeric(df)
    return SourceTable(df, str(p), "csv", "", encoding=enc, delimiter=delimiter)


def _infer_numeric(df: pd.DataFrame) -> pd.DataFrame:
    """Turn text columns whose every non-empty value is a number into numbers (others stay text)."""
    out = {}
    for c in df.columns:
        s = df[c]
        num = pd.to_numeric(s, errors="coerce")
        out[c] = num if num.notna().sum() == s.notna().sum() else s
    return pd.DataFrame(out, index=df.index)


def _read_excel(p: Path, *, sheet: str | int | None, **_: Any) -> SourceTable:
    df = pd.read_excel(p, sheet_name=sheet if sheet is not None else 0, engine="openpyxl")
    df.columns = [str(c).strip() for c in df.columns]
    return SourceTable(df, str(p), "excel", "")


STATA_CHUNK_ROWS = 250_000


def _read_stata(p: Path, **_: Any) -> SourceTable:
    """Data through pandas' Stata reader (codes, not labels; Stata's extended missing values .a-.z
    become missing), labels through pyreadstat's metadata-only pass: the fastest pair measured."""
    import pyreadstat

    _, meta = pyreadstat.read_dta(str(p), metadataonly=True)
    df = _read_stata_data(p, getattr(meta, "number_rows", None))
    return SourceTable(
        df, str(p), "stata", "", variable_labels=_variable_labels(meta), value_labels=_value_labels(meta)
    )


def _read_stata_data(p: Path, n_rows: int | None) -> pd.DataFrame:
    """``pd.read_stata(p, convert_categoricals=False, convert_dates=True, preserve_dtypes=True)``.

    A large file (``n_rows`` from its header) is read in chunks of rows copied into columns made
    once for all rows: the same frame with a much lower memory peak, and less time at a million rows
    (one read builds every column of the whole file, then copies it into blocks). An integer column
    with missing values in some chunk becomes float64, as in one read (pandas turns such a column to
    float64). A file that fits in one chunk, or whose chunks differ in their types any other way, is
    read in one piece.
    """
    options: dict[str, Any] = {"convert_categoricals": False, "convert_dates": True, "preserve_dtypes": True}
    if n_rows is None or n_rows <= STATA_CHUNK_ROWS:
        return pd.read_stata(p, **options)
    columns: dict[Any, np.ndarray] = {}
    done = 0
    with pd.read_stata(p, chunksize=STATA_CHUNK_ROWS, **options) as reader:
        for chunk in reader:
            m = len(chunk)
            if done + m > n_rows:
                break
            for c in chunk.columns:
                piece = chunk[c]
                if not isinstance(piece.dtype, np.dtype):
                    return pd.read_stata(p, **options)
                values = piece.to_numpy()
                column = columns.get(c)
                if column is None:
                    column = columns[c] = np.empty(n_rows, dtype=values.dtype)
                elif values.dtype != column.dtype:
                    if values.dtype == np.float64 and column.dtype.kind in "iu":
                        wider = np.empty(n_rows, dtype=np.float64)  # missing values turned it to float64
                        wider[:done] = column[:done]
                        column = columns[c] = wider
                    elif not (column.dtype == np.float64 and values.dtype.kind in "iu"):
                        return pd.read_stata(p, **options)
                column[done : done + m] = values
            done += m
            del chunk
    if done != n_rows:
        return pd.read_stata(p, **options)
    return pd.DataFrame(columns, copy=False)


def _variable_labels(meta: Any) -> dict[str, str]:
    return {k: v for k, v in zip(meta.column_names, meta.column_labels or [], strict=False) if v}


def _value_labels(meta: Any) -> dict[str, dict[Any, str]]:
    return {col: dict(meta.value_labels.get(lbl, {})) for col, lbl in (meta.variable_to_label or {}).items()}


def _read_spss(p: Path, **_: Any) -> SourceTable:
    import pyreadstat

    df, meta = pyreadstat.read_sav(str(p), apply_value_formats=False)
    labels = {k: v for k, v in zip(meta.column_names, meta.column_labels or [], strict=False) if v}
    value_labels = {col: dict(meta.value_labels.get(lbl, {})) for col, lbl in (meta.variable_to_label or {}).items()}
    return SourceTable(df, str(p), "spss", "", variable_labels=labels, value_labels=value_labels)


def _read_parquet(p: Path, **_: Any) -> SourceTable:
    import pyarrow.parquet as pq

    df = pq.read_table(p).to_pandas()
    return SourceTable(df, str(p), "parquet", "")
