"""CSV and Excel sources: encoding, delimiter, header row and number format, detected or declared.

Both go the same way: look at the first rows to find the header (a title or note above it is
skipped), read every cell as written (text for CSV; the cell's own value for Excel, with text cells
kept as text), then convert with :mod:`cluster_econ.io.numbers`: missing spellings to missing, and
numbers written in the file's convention to numbers, except in identifier columns, which keep their
text ("007" stays "007"). Every assumption goes into the source's audit notes.

A title row is a leading row with one or two filled cells (up to a quarter of the widest of the
first rows, when that is wider), fewer than the widest: a title such as "Survey of footwear firms,
2004" above the header, as spreadsheets export it (with or without trailing delimiters); a header
with a few unnamed columns is still a header. Declared ``header_row`` (1-based) or
``skip_rows`` (rows above the header) turns detection off.

Reading a large CSV chunk by chunk: :func:`sniff_csv` decides the encoding, delimiter, header and
column names from the file's first megabyte; :func:`read_csv_text` with ``chunksize`` then yields
frames of strings, named by :func:`name_columns`; :func:`cluster_econ.io.numbers.detect_number_format`
(once, on the first chunk) and :func:`cluster_econ.io.numbers.convert_text_cells` (on each chunk)
turn them into typed columns. :func:`read_csv` is that sequence in one piece.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cluster_econ.errors import InputError
from cluster_econ.io.numbers import DEFAULT_NA_VALUES, convert_text_cells, detect_number_format

if TYPE_CHECKING:
    from cluster_econ.io.readers import ReadOptions, SourceTable

SNIFF_BYTES = 1 << 20
HEAD_ROWS = 30  # rows looked at to find the header and the delimiter
DELIMITERS = (",", ";", "\t", "|")
BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
WESTERN_COUSINS = frozenset(
    {
        "cp1250",
        "cp1252",
        "latin_1",
        "iso8859_15",
        "cp1253",
        "mac_iceland",
        "mac_roman",
        "mac_latin2",
        "mac_turkish",
        "cp850",
        "cp858",
        "cp437",
        "cp1254",
        "iso8859_9",
    }
)
EXCEL_ERRORS = frozenset({"#N/A", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#NULL!"})


@dataclass
class CsvLayout:
    """What :func:`sniff_csv` found: how to read the file and what was assumed."""

    encoding: str
    delimiter: str
    header_index: int  # 0-based line of the column names
    columns: list[str]
    duplicates: dict[str, list[str]] = field(default_factory=dict)
    notes: list[dict[str, Any]] = field(default_factory=list)


# -- encoding, delimiter, header ------------------------------------------------------------------
def detect_encoding(sample: bytes, path: Path) -> tuple[str, str | None]:
    """The encoding of a text file's first bytes, and a note when it was guessed rather than certain."""
    for bom, name in BOMS:
        if sample.startswith(bom):
            return name, None
    head = sample[:4096]
    if b"\x00" in head:
        # UTF-16 without a byte-order mark: every other byte of ASCII text is zero
        even, odd = head[0::2], head[1::2]
        if odd.count(0) > 0.4 * len(odd) and even.count(0) < 0.05 * len(even):
            return "utf-16-le", "encoding UTF-16 (little-endian, no byte-order mark) detected"
        if even.count(0) > 0.4 * len(even) and odd.count(0) < 0.05 * len(odd):
            return "utf-16-be", "encoding UTF-16 (big-endian, no byte-order mark) detected"
        raise InputError(
            f"{path}: cannot read as csv: the file contains binary data (NUL bytes); if it is text in another "
            "encoding, declare it in the mapping: source: {encoding: ...}"
        )
    try:
        sample.decode("utf-8")
        return "utf-8", None
    except UnicodeDecodeError as exc:
        if exc.start >= len(sample) - 4 and len(sample) == SNIFF_BYTES:
            return "utf-8", None  # a character cut at the end of the sample
    from charset_normalizer import from_bytes

    best = from_bytes(sample).best()
    if best is None:
        raise InputError(
            f"{path}: cannot detect the text encoding; declare it in the mapping: source: {{encoding: ...}}"
        )
    enc = best.encoding
    # single-byte Western files are almost always cp1252 / latin-1 (Excel's "CSV" on Windows); on a
    # sample with few accents charset-normalizer may name a cousin (even mac_iceland)
    if enc in WESTERN_COUSINS:
        try:
            sample.decode("cp1252")
            enc = "cp1252"
        except UnicodeDecodeError:
            enc = "latin-1"
    return enc, f"encoding {enc} detected (not UTF-8); declare source: {{encoding: ...}} if accents look wrong"


def _decode_sample(sample: bytes, encoding: str, path: Path) -> str:
    try:
        decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    except LookupError as exc:
        raise InputError(f"{path}: unknown encoding {encoding!r}") from exc
    try:
        return decoder.decode(sample, final=False)
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{path}: is not {encoding} text (byte {exc.start} cannot be decoded); declare the file's encoding in "
            "the mapping: source: {encoding: ...}"
        ) from exc


def _rows(lines: list[str], delimiter: str) -> list[list[str]]:
    return list(csv.reader(lines, delimiter=delimiter, skipinitialspace=True))


def _sniff_delimiter(lines: list[str]) -> str:
    """The delimiter that splits most of the first rows into the same number (> 1) of fields."""
    best, best_score = ",", (-1, -1)
    for d in DELIMITERS:
        counts = [len(r) for r in _rows(lines, d) if r]
        if not counts:
            continue
        mode = max(set(counts), key=lambda k: (counts.count(k), k))
        score = (counts.count(mode) if mode > 1 else 0, mode)
        if score > best_score:
            best, best_score = d, score
    return best


def find_header(rows: list[list[Any]]) -> int:
    """0-based index of the header among the first rows: the first row that is not a title."""
    filled = [sum(1 for v in r if v is not None and str(v).strip() != "") for r in rows]
    widest = max(filled, default=0)
    short = max(2, widest // 4)  # a title or a note: a cell or two (a quarter of a wide sheet)
    for i, n in enumerate(filled):
        if n >= widest or n > short:
            return i
    return 0


def _header_index(options: ReadOptions, rows: list[list[Any]], path: Path) -> tuple[int, str | None]:
    declared = options.header_index
    if declared is not None:
        if declared >= len(rows) and len(rows) < HEAD_ROWS:
            raise InputError(f"{path}: header_row {declared + 1} is beyond the file's {len(rows)} rows")
        return declared, None
    i = find_header(rows)
    if i == 0:
        return 0, None
    skipped = " | ".join(" ".join(str(v) for v in r if v is not None and str(v).strip())[:60] for r in rows[:i])
    return i, (
        f"header found on row {i + 1}; {i} row(s) above it skipped as a title ({skipped!r}); declare "
        "source: {header_row: N} if that is wrong"
    )


def column_names(raw: list[Any]) -> tuple[list[str], dict[str, list[str]]]:
    """Header cells as column names: stripped text, numbers without '.0', empty ones 'Unnamed: i',
    a repeated name suffixed '.1', '.2' (as pandas does); the repeats are returned."""
    names: list[str] = []
    seen: dict[str, int] = {}
    duplicates: dict[str, list[str]] = {}
    for i, v in enumerate(raw):
        if v is None or str(v).strip() == "":
            name = f"Unnamed: {i}"
        elif isinstance(v, float) and v.is_integer():
            name = str(int(v))
        else:
            name = str(v).strip()
        if name in seen:
            k = seen[name]
            new = f"{name}.{k}"
            while new in seen:
                k += 1
                new = f"{name}.{k}"
            seen[name] = k + 1
            duplicates.setdefault(name, [name]).append(new)
            name = new
        seen.setdefault(name, 1)
        names.append(name)
    return names, duplicates


def duplicate_note(duplicates: dict[str, list[str]]) -> dict[str, Any]:
    listed = "; ".join(f"{k!r} {len(v)} times (read as {', '.join(v)})" for k, v in duplicates.items())
    return {
        "step": "note",
        "rows": 0,
        "reason": f"repeated column names: {listed}; a mapping that names one of them is an error",
    }


def sniff_csv(path: Path, options: ReadOptions) -> CsvLayout:
    """Encoding, delimiter, header row and column names of a delimited text file."""
    with open(path, "rb") as fh:
        sample = fh.read(SNIFF_BYTES)
    if not sample.strip():
        raise InputError(f"{path}: the file is empty (only whitespace)")
    notes: list[dict[str, Any]] = []
    if options.encoding:
        encoding = options.encoding
        try:
            codecs.lookup(encoding)
        except LookupError as exc:
            raise InputError(f"{path}: unknown encoding {encoding!r} (source.encoding)") from exc
        if codecs.lookup(encoding).name == "utf-8" and sample.startswith(codecs.BOM_UTF8):
            encoding = "utf-8-sig"
    else:
        encoding, note = detect_encoding(sample, path)
        if note:
            notes.append({"step": "note", "rows": 0, "reason": note})
    text = _decode_sample(sample, encoding, path).lstrip("\ufeff")
    lines = text.splitlines()
    if len(sample) == SNIFF_BYTES and len(lines) > 1:
        lines = lines[:-1]  # the last line of a cut sample may be incomplete
    head = [ln for ln in lines[: HEAD_ROWS * 4]][: HEAD_ROWS * 4]
    delimiter = options.delimiter or _sniff_delimiter(head[:HEAD_ROWS])
    rows = _rows(head[:HEAD_ROWS], delimiter)
    header_index, note = _header_index(options, rows, path)
    if note:
        notes.append({"step": "note", "rows": header_index, "reason": note})
    names, duplicates = column_names(rows[header_index] if header_index < len(rows) else [])
    if duplicates:
        notes.append(duplicate_note(duplicates))
    return CsvLayout(encoding, delimiter, header_index, names, duplicates, notes)


def read_csv_text(path: Path, layout: CsvLayout, chunksize: int | None = None) -> pd.DataFrame | Iterator[pd.DataFrame]:
    """The cells below the header as strings (empty cells as ""), in one frame or by chunks.

    The frame's columns are numbered; :func:`name_columns` gives them the header's names. A row
    with more cells than the first data row is an error that names its line (nothing is dropped).
    """
    return pd.read_csv(
        path,
        sep=layout.delimiter,
        encoding=layout.encoding,
        header=None,
        skiprows=layout.header_index + 1,
        dtype=str,
        na_filter=False,
        skipinitialspace=True,
        skip_blank_lines=True,
        index_col=False,
        engine="c",
        chunksize=chunksize,
    )


def name_columns(frame: pd.DataFrame, layout: CsvLayout) -> pd.DataFrame:
    """Header names on the numbered columns of :func:`read_csv_text`; cells beyond the header get
    ``Unnamed: i``, and header names beyond the cells get empty columns."""
    names = list(layout.columns)
    width = frame.shape[1]
    if width > len(names):
        names += [f"Unnamed: {i}" for i in range(len(names), width)]
    frame.columns = names[:width]
    for name in names[width:]:
        frame[name] = ""
    return frame


def read_csv(path: Path, options: ReadOptions) -> SourceTable:
    from cluster_econ.io.readers import SourceTable

    layout = sniff_csv(path, options)
    try:
        frame = read_csv_text(path, layout)
    except pd.errors.EmptyDataError as exc:
        if not layout.columns:
            raise InputError(f"{path}: the file is empty") from exc
        frame = pd.DataFrame({i: pd.Series([], dtype=object) for i in range(len(layout.columns))})
    except pd.errors.ParserError as exc:
        raise InputError(
            f"{path}: cannot parse as text separated by {layout.delimiter!r} (header on line "
            f"{layout.header_index + 1}): {exc}"
        ) from exc
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{path}: is not {layout.encoding} text further in the file ({exc.reason}); declare the file's "
            "encoding in the mapping: source: {encoding: ...}"
        ) from exc
    assert isinstance(frame, pd.DataFrame)
    frame = name_columns(frame, layout)
    frame, notes = _finish(frame, options, layout.delimiter, cells_are_text=True, path=path)
    table = SourceTable(frame, str(path), "csv", "", encoding=layout.encoding, delimiter=layout.delimiter)
    table.notes = layout.notes + notes
    table.duplicate_columns = layout.duplicates
    table.header_row = layout.header_index + 1
    return table


def _finish(
    frame: pd.DataFrame, options: ReadOptions, delimiter: str | None, cells_are_text: bool, path: Path
) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Drop empty rows and unnamed empty columns, then detect the number format and convert."""
    notes: list[dict[str, Any]] = []
    na_values = options.na_values if options.na_values is not None else DEFAULT_NA_VALUES
    if cells_are_text:
        blank = frame.isin([""])  # leading spaces are skipped by the parser, so a blank cell is ""
    else:
        blank = frame.map(lambda v: v is None or (isinstance(v, str) and not v.strip()) or v != v)
    unnamed_empty = [c for c in frame.columns if str(c).startswith("Unnamed: ") and blank[c].all()]
    if unnamed_empty:
        frame = frame.drop(columns=unnamed_empty)
        blank = blank.drop(columns=unnamed_empty)
    empty_rows = blank.all(axis=1).to_numpy()
    if empty_rows.any() and frame.shape[1]:
        frame = frame[~empty_rows].reset_index(drop=True)
        notes.append({"step": "note", "rows": int(empty_rows.sum()), "reason": "empty rows skipped"})
    text_columns = set(options.text_columns) & set(frame.columns)
    fmt, fmt_notes = detect_number_format(frame, text_columns, na_values, delimiter, options.decimal, options.thousands)
    frame, conv_notes = convert_text_cells(frame, text_columns, fmt, na_values, cells_are_text=cells_are_text)
    return frame, notes + fmt_notes + conv_notes


# -- Excel ----------------------------------------------------------------------------------------
def _zero_width(number_format: str) -> int | None:
    """Width of a number format that pads whole numbers with zeros ('000' -> 3), else None."""
    fmt = number_format.strip()
    return len(fmt) if len(fmt) > 1 and set(fmt) == {"0"} else None


def read_excel(path: Path, options: ReadOptions) -> SourceTable:
    import openpyxl

    from cluster_econ.io.readers import SourceTable

    wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    try:
        sheets = wb.sheetnames
        sheet = options.sheet if options.sheet is not None else 0
        if isinstance(sheet, int):
            if not 0 <= sheet < len(sheets):
                raise InputError(
                    f"{path}: no sheet at position {sheet} (0 is the first); sheets: "
                    + ", ".join(f"{i}: {s!r}" for i, s in enumerate(sheets))
                )
            name = sheets[sheet]
        elif sheet in sheets:
            name = sheet
        else:
            raise InputError(f"{path}: no sheet named {sheet!r}; sheets: {', '.join(map(repr, sheets))}")
        ws = wb[name]
        rows = [list(r) for r in ws.iter_rows(values_only=True)]
        notes: list[dict[str, Any]] = []
        if len(sheets) > 1 and options.sheet is None:
            notes.append({"step": "note", "rows": 0, "reason": f"sheet {name!r} read (the first of {len(sheets)})"})
        header_index, note = _header_index(options, rows[:HEAD_ROWS], path)
        if note:
            notes.append({"step": "note", "rows": header_index, "reason": note})
        width = max((len(r) for r in rows), default=0)
        header = (rows[header_index] if header_index < len(rows) else []) + [None] * width
        names, duplicates = column_names(header[:width])
        if duplicates:
            notes.append(duplicate_note(duplicates))
        body = rows[header_index + 1 :]
        cells = np.empty((len(body), width), dtype=object)
        for i, r in enumerate(body):
            cells[i, : len(r)] = r
        frame = pd.DataFrame(cells, columns=names)
        # zero-padded number formats of identifier columns ('00000' shows 7 as 00007)
        widths = _id_widths(ws, names, options, header_index, frame)
    finally:
        wb.close()
    frame = frame.map(lambda v: None if isinstance(v, str) and v.strip() in EXCEL_ERRORS else v)
    frame, more = _finish(frame, options, None, cells_are_text=False, path=path)
    table = SourceTable(frame, str(path), "excel", "")
    table.notes = notes + more
    table.duplicate_columns = duplicates
    table.header_row = header_index + 1
    table.id_widths = widths
    return table


def _id_widths(
    ws: Any, names: list[str], options: ReadOptions, header_index: int, frame: pd.DataFrame
) -> dict[str, int]:
    widths: dict[str, int] = {}
    for c in options.text_columns:
        if c not in names:
            continue
        col = frame[c]
        if not col.map(lambda v: isinstance(v, int | float) and not isinstance(v, bool)).any():
            continue
        j = names.index(c) + 1
        found = {
            _zero_width(cell.number_format)
            for (cell,) in ws.iter_rows(min_row=header_index + 2, min_col=j, max_col=j)
            if isinstance(cell.value, int | float) and not isinstance(cell.value, bool)
        }
        found.discard(None)
        if len(found) == 1:
            widths[c] = found.pop()  # type: ignore[assignment]
    return widths
