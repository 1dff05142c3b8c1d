"""Readers for survey source files: CSV, Excel, Stata, SPSS and Parquet.

Every reader returns a :class:`SourceTable`: the data as read (codes, not labels), the variable and
value labels the file carries, the file's SHA-256, and notes on what was assumed while reading (the
encoding, the delimiter, the header row, the decimal mark, cells read as missing), which go into the
panel's audit. Problems are raised as :class:`~cluster_econ.errors.InputError` naming the file: a
missing file, an unknown format, a corrupt, truncated or empty file, or one with a header and no data
rows.

Identifiers are text exactly as written: the columns named in ``ReadOptions.text_columns`` (the
mapping's IDs and template parts) are never turned into numbers, so "007" stays "007" in CSV and in
Excel text cells. Numeric identifier columns of Stata, SPSS and Excel whose display format pads with
zeros (Stata ``%08.0f``, SPSS ``N8``, Excel ``00000000``) are reported in ``SourceTable.id_widths`` so
that they can be written with those zeros.

CSV and Excel go through :mod:`cluster_econ.io.sheets` (header and delimiter detection) and
:mod:`cluster_econ.io.numbers` (decimal and thousands marks, missing spellings). Stata and SPSS files
are read with pandas and pyreadstat (labels kept as metadata, never applied to the data). A repeated
column name in any format is read with a ``.1`` suffix and reported in ``duplicate_columns``.
"""

from __future__ import annotations

import hashlib
import re
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


@dataclass(frozen=True)
class ReadOptions:
    """How to read one source file (the mapping's ``source:`` block, plus the identifier columns).

    Attributes
    ----------
    format : str, optional
        csv, excel, stata, spss or parquet; by default from the extension.
    sheet : str or int, optional
        Excel sheet, by name or position (0 is the first; the default).
    encoding, delimiter : str, optional
        CSV only; detected when not given. UTF-16 and UTF-32 are read (with or without a byte-order
        mark for UTF-16).
    decimal, thousands : str, optional
        CSV and Excel text cells: the decimal mark ('.' or ',') and the one thousands mark accepted;
        detected when not given (see :mod:`cluster_econ.io.numbers`).
    header_row : int, optional
        1-based row of the column names (CSV, Excel). ``skip_rows`` is the same thing counted as
        rows above the header (``skip_rows: 2`` is ``header_row: 3``). Detected when neither is given.
    na_values : tuple of str, optional
        Cell texts that mean missing (CSV, Excel); default ``("", "NA")``.
    text_columns : frozenset of str
        Columns kept as text exactly as written (identifiers, template parts).
    """

    format: str | None = None
    sheet: str | int | None = None
    encoding: str | None = None
    delimiter: str | None = None
    decimal: str | None = None
    thousands: str | None = None
    header_row: int | None = None
    skip_rows: int | None = None
    na_values: tuple[str, ...] | None = None
    text_columns: frozenset[str] = frozenset()

    @property
    def header_index(self) -> int | None:
        """0-based row of the header when declared."""
        if self.header_row is not None and self.skip_rows is not None and self.header_row != self.skip_rows + 1:
            raise InputError(f"header_row {self.header_row} and skip_rows {self.skip_rows} disagree: give one of them")
        if self.header_row is not None:
            if self.header_row < 1:
                raise InputError(f"header_row is 1-based: {self.header_row} is not a row")
            return self.header_row - 1
        return self.skip_rows


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
    notes: list[dict[str, Any]] = field(default_factory=list)
    duplicate_columns: dict[str, list[str]] = field(default_factory=dict)
    id_widths: dict[str, int] = field(default_factory=dict)
    header_row: int | None = None

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
    options: ReadOptions | None = None,
    sheet: str | int | None = None,
    encoding: str | None = None,
    delimiter: str | None = None,
    text_columns: Any = (),
) -> SourceTable:
    """Read one survey source file.

    Parameters
    ----------
    path : path
        The file.
    format : {"csv", "excel", "stata", "spss", "parquet"}, optional
        Overrides the format implied by the extension (also ``options.format``).
    options : ReadOptions, optional
        Everything else about reading the file; ``sheet``, ``encoding``, ``delimiter`` and
        ``text_columns`` are shortcuts that fill it.
    """
    if options is None:
        options = ReadOptions(
            format=format, sheet=sheet, encoding=encoding, delimiter=delimiter, text_columns=frozenset(text_columns)
        )
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: file not found")
    if p.is_dir():
        raise InputError(f"{p}: is a folder, not a file")
    fmt = detect_format(p, format or options.format)
    if p.stat().st_size == 0:
        raise InputError(f"{p}: the file is empty (0 bytes)")
    from cluster_econ.io import sheets

    reader = {
        "csv": sheets.read_csv,
        "excel": sheets.read_excel,
        "stata": _read_stata,
        "spss": _read_spss,
        "parquet": _read_parquet,
    }[fmt]
    # the file is hashed on a second thread while it is parsed (hashlib and file reads release the GIL)
    digest: dict[str, str] = {}
    hasher = threading.Thread(target=lambda: digest.setdefault("sha256", file_sha256(p)), daemon=True)
    hasher.start()
    try:
        table = reader(p, options)
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
    if fmt in ("stata", "spss", "parquet"):
        _finish_binary(table, options)
    hasher.join()
    table.sha256 = digest["sha256"] if "sha256" in digest else file_sha256(p)
    return table


def _finish_binary(table: SourceTable, options: ReadOptions) -> None:
    """Repeated names get a suffix; text identifier cells that are empty are missing (Stata and SPSS
    have no missing text: an empty string is the missing value)."""
    from cluster_econ.io.sheets import column_names, duplicate_note

    names, duplicates = column_names(list(table.data.columns))
    if duplicates:
        table.data.columns = names
        table.duplicate_columns = duplicates
        table.notes.append(duplicate_note(duplicates))
    for c in options.text_columns:
        if c in table.data.columns and table.data[c].dtype == object:
            col = table.data[c]
            blank = col.map(lambda v: isinstance(v, str) and not v.strip()).to_numpy(dtype=bool)
            if blank.any():
                table.data[c] = col.where(~blank, None)


STATA_CHUNK_ROWS = 250_000


def _read_stata(p: Path, options: ReadOptions) -> SourceTable:
    """Data through pandas' Stata reader (codes, not labels; Stata's extended missing values .a-.z
    become missing), labels through pyreadstat's metadata-only pass: the fastest pair measured."""
    import pyreadstat

    _check_stata_complete(p)
    _, meta = pyreadstat.read_dta(str(p), metadataonly=True)
    df = _read_stata_data(p, getattr(meta, "number_rows", None))
    table = SourceTable(
        df, str(p), "stata", "", variable_labels=_variable_labels(meta), value_labels=_value_labels(meta)
    )
    table.id_widths = _zero_padded(meta, options, r"%0(\d+)(?:\.0)?[fg]")
    return table


def _check_stata_complete(p: Path) -> None:
    """Refuse a Stata file cut short. pandas and pyreadstat read one whose value labels (the last
    section) are cut with the labels silently missing. A Stata 13+ file (format 117-119) ends with
    its closing tag; in formats 113-115 the value-label tables after the data must end at the end of
    the file (a file cut exactly between two tables cannot be told from a complete one)."""
    with open(p, "rb") as fh:
        head = fh.read(11)
        fh.seek(0, 2)
        size = fh.tell()
        if head[:1] in (b"q", b"r", b"s") and head[1:2] in (b"\x01", b"\x02"):  # formats 113, 114, 115
            where = _old_stata_labels_end(fh, size)
            if where is not None:
                raise InputError(
                    f"{p}: the Stata file is truncated ({size} bytes; its value labels {where}): copy or export "
                    "it again"
                )
            return
        if head != b"<stata_dta>":
            return
        fh.seek(max(0, size - (1 << 20)))
        tail = fh.read().rstrip(b"\r\n\x00 ")
    if not tail.endswith(b"</stata_dta>"):
        section = "value labels" if b"<value_labels>" in tail else "data"
        raise InputError(
            f"{p}: the Stata file is truncated ({size} bytes; it ends inside its {section}, without the closing "
            "</stata_dta> tag): copy or export it again"
        )


def _old_stata_labels_end(fh: Any, size: int) -> str | None:
    """Where the value labels of a format 113-115 file go wrong (None when they end with the file).

    Layout (Stata's dta format 113-115): a 109-byte header, the variable descriptors (types, names,
    sort list, formats, label names, variable labels), expansion fields, the data, then tables of
    ``int32 length, 33-byte name, 3 bytes padding, length bytes``. Only the headers are read.
    """
    import struct

    fh.seek(0)
    header = fh.read(109)
    order = ">" if header[1] == 1 else "<"
    nvar, nobs = struct.unpack_from(f"{order}Hi", header, 4)
    types = fh.read(nvar)
    fmt_width = 12 if header[0] == 113 else 49
    pos = 109 + nvar + 33 * nvar + 2 * (nvar + 1) + fmt_width * nvar + 33 * nvar + 81 * nvar
    while True:  # expansion fields
        fh.seek(pos)
        field = fh.read(5)
        if len(field) < 5:
            return "are missing: the file ends inside its header"
        kind, length = field[0], struct.unpack_from(f"{order}i", field, 1)[0]
        pos += 5
        if kind == 0 and length == 0:
            break
        pos += length
    width = sum(t if t <= 244 else {251: 1, 252: 2, 253: 4, 254: 4, 255: 8}.get(t, 0) for t in types)
    pos += width * nobs
    if pos > size:
        return "are missing: the file ends inside its data"
    while pos < size:
        fh.seek(pos)
        table = fh.read(40)
        if len(table) < 40:
            return f"end {len(table)} bytes into a table's header"
        length = struct.unpack_from(f"{order}i", table, 0)[0]
        name = table[4:37].split(b"\x00")[0].decode("latin-1")
        pos += 40 + length
        if length < 0 or pos > size:
            return f"are cut inside the table {name!r}"
    return None


def _zero_padded(meta: Any, options: ReadOptions, pattern: str) -> dict[str, int]:
    """Identifier columns whose display format pads numbers with zeros, and their width."""
    formats = getattr(meta, "original_variable_types", None) or {}
    widths = {}
    for c in options.text_columns:
        m = re.fullmatch(pattern, str(formats.get(c, "")))
        if m and int(m.group(1)) > 1:
            widths[c] = int(m.group(1))
    return widths


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


def _read_spss(p: Path, options: ReadOptions) -> SourceTable:
    import pyreadstat

    df, meta = pyreadstat.read_sav(str(p), apply_value_formats=False)
    table = SourceTable(
        df, str(p), "spss", "", variable_labels=_variable_labels(meta), value_labels=_value_labels(meta)
    )
    table.id_widths = _zero_padded(meta, options, r"N(\d+)")  # SPSS N format: digits with leading zeros
    return table


def _read_parquet(p: Path, options: ReadOptions) -> SourceTable:
    import pyarrow.parquet as pq

    df = pq.read_table(p).to_pandas()
    return SourceTable(df, str(p), "parquet", "")
