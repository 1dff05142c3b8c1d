"""A source file in pieces of rows, for sources too large to read at once.

A CSV file is read chunk by chunk along the route :mod:`cluster_econ.io.sheets` describes: its
layout (encoding, delimiter, header, column names) is sniffed once from the first megabyte, the
number format (decimal and thousands marks) is detected once on the first chunk, and every chunk is
converted with it; empty rows are skipped (and counted) in every chunk; unnamed columns beyond the
header that are empty in the first chunk are dropped, and a later chunk with cells in one of them
is an error rather than a silent loss. Only one chunk of text is in memory at a time. Other formats
(Stata, SPSS, Excel, Parquet) are read whole, as :func:`cluster_econ.io.readers.read_source` reads
them, and handed out in slices. The pieces of a CSV file carry no SHA-256 (the caller hashes the
file).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from cluster_econ.errors import InputError
from cluster_econ.io.readers import ReadOptions, SourceTable, detect_format, read_source


def iter_source(path: str | Path, options: ReadOptions, chunk_rows: int) -> Iterator[tuple[SourceTable, int]]:
    """The source in pieces of at most ``chunk_rows`` rows, each with the number of rows before it.

    Every piece carries the file's name, format, encoding and labels; the first also the reader's
    notes (what was detected or assumed).
    """
    p = Path(path)
    fmt = detect_format(p, options.format)
    if fmt != "csv":
        whole = read_source(p, options=options)
        for start in range(0, len(whole.data), chunk_rows):
            piece = _like(whole, whole.data.iloc[start:start + chunk_rows].reset_index(drop=True))
            piece.notes = list(whole.notes) if start == 0 else []
            yield piece, start
        return
    yield from _csv_chunks(p, options, chunk_rows)


def _like(table: SourceTable, data: pd.DataFrame) -> SourceTable:
    out = SourceTable(data, table.path, table.format, table.sha256, table.variable_labels, table.value_labels,
                      table.encoding, table.delimiter)
    out.duplicate_columns, out.id_widths, out.header_row = table.duplicate_columns, table.id_widths, table.header_row
    return out


def _csv_chunks(p: Path, options: ReadOptions, chunk_rows: int) -> Iterator[tuple[SourceTable, int]]:
    from cluster_econ.io import sheets
    from cluster_econ.io.numbers import DEFAULT_NA_VALUES, convert_text_cells, detect_number_format

    if not p.exists():
        raise InputError(f"{p}: file not found")
    if p.stat().st_size == 0:
        raise InputError(f"{p}: the file is empty (0 bytes)")
    layout = sheets.sniff_csv(p, options)
    na_values = options.na_values if options.na_values is not None else DEFAULT_NA_VALUES
    text_columns = set(options.text_columns)
    number_format = None
    dropped: list[str] = []
    offset = 0
    try:
        for k, frame in enumerate(sheets.read_csv_text(p, layout, chunksize=chunk_rows)):
            frame = sheets.name_columns(frame, layout)
            notes = list(layout.notes) if k == 0 else []
            blank = frame.isin([""])
            if k == 0:
                dropped = [c for c in frame.columns if str(c).startswith("Unnamed: ") and blank[c].all()]
            elif any(not blank[c].all() for c in dropped if c in frame.columns):
                raise InputError(f"{p}: cells beyond the header's {len(layout.columns)} columns after data row "
                                 f"{offset}; the file's rows have more cells than its header")
            if dropped:
                frame = frame.drop(columns=dropped, errors="ignore")
                blank = blank.drop(columns=dropped, errors="ignore")
            empty = blank.all(axis=1).to_numpy()
            if empty.any() and frame.shape[1]:
                frame = frame[~empty].reset_index(drop=True)
                notes.append({"step": "note", "rows": int(empty.sum()), "reason": "empty rows skipped"})
            if number_format is None:
                number_format, fmt_notes = detect_number_format(
                    frame, text_columns & set(frame.columns), na_values, layout.delimiter, options.decimal,
                    options.thousands)
                notes += fmt_notes
            frame, conv_notes = convert_text_cells(frame, text_columns & set(frame.columns), number_format, na_values)
            table = SourceTable(frame, str(p), "csv", "", encoding=layout.encoding, delimiter=layout.delimiter)
            table.notes = notes + conv_notes
            table.duplicate_columns = layout.duplicates
            table.header_row = layout.header_index + 1
            if not len(frame):
                continue
            yield table, offset
            offset += len(frame)
    except pd.errors.EmptyDataError as exc:
        raise InputError(f"{p}: the file is empty") from exc
    except pd.errors.ParserError as exc:
        raise InputError(f"{p}: cannot parse as text separated by {layout.delimiter!r} (header on line "
                         f"{layout.header_index + 1}): {exc}") from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"{p}: is not {layout.encoding} text further in the file ({exc.reason}); declare the "
                         "file's encoding in the mapping: source: {encoding: ...}") from exc
    if offset == 0:
        raise InputError(f"{p}: has a header ({len(layout.columns)} columns) but no data rows")
