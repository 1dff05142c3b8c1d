"""Descriptive tables: any DataFrame of summary statistics, in the same formats as regressions.

The phase profile table and other summaries build a DataFrame (rows = variables or groups,
columns = statistics or phases) and render it here. A two-level column index becomes spanning
headers; a two-level row index becomes section headings.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from functools import cache

import numpy as np
import pandas as pd

from cluster_econ.tables._format import excel_format, fmt_number, label_term, pretty_level
from cluster_econ.tables._render import (
    Cell,
    Layout,
    RenderedTable,
    Row,
    TableError,
    spans_from_groups,
)


@cache
def _enum_values() -> frozenset[str]:
    from cluster_econ import schema

    values: set[str] = set()
    for t in schema.TABLES:
        for f in schema.load(t).fields:
            values.update(str(v) for v in (f.enum or []))
    return frozenset(values)


def _label(value: object, user: Mapping[str, str], relabel: bool) -> str:
    text = str(value)
    if text in user:
        return str(user[text])
    if not relabel:
        return text
    if text in _enum_values():
        return pretty_level(text)
    return label_term(text, user)


def _cell(value: object, digits: int, na_rep: str) -> Cell:
    if value is None or (isinstance(value, float | np.floating) and not np.isfinite(value)):
        return Cell(na_rep)
    if value is pd.NA or value is pd.NaT:
        return Cell(na_rep)
    if isinstance(value, bool | np.bool_):
        return Cell("Yes" if value else "No")
    if isinstance(value, numbers.Integral):
        return Cell(f"{int(value):,}", int(value), "#,##0")
    if isinstance(value, numbers.Real):
        v = float(value)
        return Cell(fmt_number(v, digits), v, excel_format(digits))
    return Cell(str(value))


class DescriptiveTable(RenderedTable):
    """A rendered summary table (same output methods as :class:`RegressionTable`)."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout


def descriptive_table(
    df: pd.DataFrame,
    *,
    labels: Mapping[str, str] | None = None,
    digits: int | Mapping[str, int] = 3,
    groups: Mapping[str, Sequence[int]] | None = None,
    stub: str | None = None,
    notes: str | Sequence[str] | None = None,
    title: str | None = None,
    na_rep: str = "",
    relabel: bool = True,
) -> DescriptiveTable:
    """Render a DataFrame of summary statistics.

    Parameters
    ----------
    df : DataFrame
        Rows and columns as they should appear. Integer values print without decimals (with
        thousands separators), other numbers with ``digits`` decimals, booleans as Yes/No,
        missing values as ``na_rep``. A two-level column index gives spanning headers (its first
        level) over the second level; a two-level row index gives section headings.
    labels : mapping, optional
        Row, column or group name -> label. Canonical column names get their schema label and
        canonical category values (``quality_improvement``) a readable one unless
        ``relabel=False``; user labels always win.
    digits : int or mapping of column -> int
        Decimals, for all columns or per column (by the original column key; missing keys use 3).
    groups : mapping of str to list of int, optional
        Spanning headers over contiguous columns (0-based); not with a two-level column index.
    stub : str, optional
        Header of the row-label column; default the index name.
    notes, title : optional
        Notes under the table and the caption.
    na_rep : str
        Text for missing values.
    relabel : bool
        Apply schema labels to row and column names.
    """
    if not isinstance(df, pd.DataFrame):
        raise TableError(f"descriptive_table needs a pandas DataFrame, got {type(df).__name__}")
    if df.shape[1] == 0:
        raise TableError("descriptive_table: the DataFrame has no columns")
    user = {str(k): str(v) for k, v in (labels or {}).items()}
    ncols = df.shape[1]

    if isinstance(df.columns, pd.MultiIndex):
        if df.columns.nlevels != 2:
            raise TableError(f"descriptive_table supports at most two column levels, got "
                             f"{df.columns.nlevels}")
        if groups:
            raise TableError("pass either a two-level column index or groups=, not both")
        top = [str(x) for x in df.columns.get_level_values(0)]
        span_dict: dict[str, list[int]] = {}
        runs: list[tuple[str, list[int]]] = []
        for i, g in enumerate(top):
            if runs and runs[-1][0] == g:
                runs[-1][1].append(i)
            else:
                runs.append((g, [i]))
        for g, idx in runs:
            lab = _label(g, user, relabel)
            if lab in span_dict:
                raise TableError(f"column group {g!r} is not contiguous in the column index")
            span_dict[lab] = idx
        spans = spans_from_groups(span_dict, ncols)
        header = tuple(_label(x, user, relabel) for x in df.columns.get_level_values(1))
    else:
        spans = spans_from_groups({str(g): list(v) for g, v in (groups or {}).items()}, ncols)
        header = tuple(_label(x, user, relabel) for x in df.columns)

    col_keys = list(df.columns)
    if isinstance(digits, Mapping):
        col_digits = [int(digits.get(c if not isinstance(c, tuple) else c[-1],
                                     digits.get(c, 3))) for c in col_keys]
    else:
        col_digits = [int(digits)] * ncols

    def make_row(label_value: object, values: Sequence[object]) -> Row:
        return Row(_label(label_value, user, relabel),
                   tuple(_cell(v, d, na_rep) for v, d in zip(values, col_digits, strict=True)))

    rows: list[Row] = []
    values = df.astype(object).to_numpy()
    if isinstance(df.index, pd.MultiIndex):
        if df.index.nlevels != 2:
            raise TableError(f"descriptive_table supports at most two row levels, got "
                             f"{df.index.nlevels}")
        last = object()
        for (sec, name), vals in zip(df.index, values, strict=True):
            if sec != last:
                rows.append(Row(_label(sec, user, relabel), tuple(Cell("") for _ in range(ncols)),
                                kind="heading"))
                last = sec
            rows.append(make_row(name, vals))
        index_name = df.index.names[-1]
    else:
        rows = [make_row(name, vals) for name, vals in zip(df.index, values, strict=True)]
        index_name = df.index.name
    if stub is None:
        stub = _label(index_name, user, relabel) if index_name is not None else ""
    note_list = [notes] if isinstance(notes, str) else [str(n) for n in (notes or [])]
    layout = Layout(ncols=ncols, headers=(header,), sections=(tuple(rows),), spans=spans,
                    stub=stub, notes=tuple(note_list), title=title)
    return DescriptiveTable(layout)
