"""Numbers written as text: decimal and thousands marks, missing-value spellings, and the conversion
of a table's text cells into numbers (CSV files, and text cells of Excel sheets).

A column becomes numeric only when every non-missing cell is a number written in the file's
convention; otherwise it stays text, exactly as written, and validation reports the cells that are
not numbers. Identifier columns are never converted ("007" stays "007").

The convention is one per file, as a spreadsheet's locale is:

``point``  decimal ``.``, thousands ``,`` (``1,234.5``)
``comma``  decimal ``,``, thousands ``.`` (``1.234,5``)

In both, a space, a no-break space or a narrow no-break space also groups thousands (``25 000``).
A thousands mark is accepted only between groups of three digits (``47.000.000`` is 47000000, but
``2.5`` in a decimal-comma file is not a number), so a misread mark cannot silently scale a value.

When the file does not declare its decimal mark, each column votes: a column whose cells are numbers
in only one convention (``3,5``, ``0,125``, ``47.000.000`` say comma; ``2.75``, ``1,234.5`` say
point) decides; columns in both camps are an error that names them; when no column decides but some
cells read differently in the two conventions (``25.000``), the delimiter decides (``;`` files use a
decimal comma, others a point) and the audit says so. This is what a person does reading the file.

Missing cells: empty cells and ``NA`` (R's and pandas' spelling) are missing by default, as in
readr, data.table and pandas; ``na_values`` replaces that list. Other spellings (``.``, ``N/A``,
``NULL``, ...) in an otherwise numeric column are left as text, with an audit note that suggests
adding them to ``na_values``: a dot may be a Stata missing value or a typo, and only the user knows.

Written here rather than with ``pandas.read_csv(decimal=..., thousands=...)`` because pandas strips a
thousands mark wherever it appears, takes one convention per call without detecting it, and does not
apply to Excel text cells.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from cluster_econ.errors import InputError

DEFAULT_NA_VALUES = ("", "NA")
# spellings of "missing" that are not missing by default: a column of numbers holding them gets a hint
MISSING_LOOKALIKES = frozenset(
    {".", "N/A", "n/a", "NULL", "null", "NaN", "nan", "-", "--", "#N/A", "?", "missing", "na", "n.a.", "None"}
)
SPACES = " \u00a0\u202f"
DETECT_SAMPLE = 20_000  # distinct values per column looked at to detect the convention
SAMPLE_ROWS = 200_000  # rows of a column looked at to detect the convention
CHECK_ROWS = 2_000  # non-missing cells of a column tried first: one that is not a number makes it text


@dataclass(frozen=True)
class NumberFormat:
    """How numbers are written: the decimal mark and the marks allowed between thousands groups."""

    decimal: str = "."
    thousands: str = "," + SPACES

    @classmethod
    def named(cls, decimal: str, thousands: str | None = None) -> NumberFormat:
        """The format for a decimal mark; ``thousands`` given pins the one thousands mark accepted."""
        if decimal not in (".", ","):
            raise InputError(f"decimal mark must be '.' or ',', not {decimal!r}")
        if thousands is not None:
            if thousands == decimal:
                raise InputError(f"the thousands mark cannot be the decimal mark ({decimal!r})")
            if len(thousands) != 1 or thousands.isdigit():
                raise InputError(f"thousands mark must be one character that is not a digit, not {thousands!r}")
            return cls(decimal, thousands)
        return cls(decimal, ("," if decimal == "." else ".") + SPACES)

    @property
    def name(self) -> str:
        return "decimal point" if self.decimal == "." else "decimal comma"

    def _patterns(self) -> tuple[re.Pattern[str], re.Pattern[str]]:
        d = re.escape(self.decimal)
        t = "".join(re.escape(c) for c in self.thousands)
        plain = re.compile(rf"[+-]?(?:\d+(?:{d}\d*)?|{d}\d+)(?:[eE][+-]?\d+)?")
        grouped = re.compile(rf"[+-]?[1-9]\d{{0,2}}(?P<t>[{t}])\d{{3}}(?:(?P=t)\d{{3}})*(?:{d}\d*)?") if t else None
        return plain, grouped  # type: ignore[return-value]

    def parse(self, text: pd.Series) -> pd.Series:
        """Numbers (float64) of a series of stripped strings; cells that are not numbers give NaN.

        Cells pandas reads as numbers in C (plain numbers, with a decimal point; cells holding a
        ``.`` are left out in a decimal-comma file) are read that way; only the others are matched
        against the format's patterns, in Python.
        """
        s = text.astype(object)
        if self.decimal == ".":
            num = _exact_numbers(s)
        else:
            has_point = s.str.contains(".", regex=False, na=False).to_numpy(dtype=bool)
            num = _exact_numbers(s.where(~has_point).str.replace(",", ".", regex=False))
        failed = (s.notna().to_numpy() & num.isna().to_numpy()).nonzero()[0]
        if len(failed) == 0:
            return num
        rest = s.iloc[failed]
        plain, grouped = self._patterns()
        is_plain = rest.str.fullmatch(plain.pattern, na=False).to_numpy(dtype=bool)
        is_grouped = (
            rest.str.fullmatch(grouped.pattern, na=False).to_numpy(dtype=bool)
            if grouped is not None
            else np.zeros(len(rest), bool)
        )
        cleaned = rest.where(is_plain | is_grouped)
        if is_grouped.any():
            marks = "".join(re.escape(c) for c in self.thousands)
            cleaned = cleaned.where(~is_grouped, cleaned.str.replace(f"[{marks}]", "", regex=True))
        if self.decimal != ".":
            cleaned = cleaned.str.replace(self.decimal, ".", regex=False)
        values = num.to_numpy(copy=True)
        values[failed] = _exact_numbers(cleaned).to_numpy()
        return pd.Series(values, index=s.index)


def _exact_numbers(s: pd.Series) -> pd.Series:
    """``pd.to_numeric(s, errors="coerce")`` as float64, each value the double nearest to its text.

    pandas' fast text-to-float conversion may be one unit in the last place off; the values it
    accepts are converted with Python's correctly rounded ``float`` (in one pass when all are numbers).
    """
    values = s.to_numpy(dtype=object)
    present = s.notna().to_numpy()
    if present.all():
        try:
            return pd.Series(values.astype("float64"), index=s.index)
        except (TypeError, ValueError):
            pass
    num = pd.to_numeric(s, errors="coerce").astype("float64")
    ok = num.notna().to_numpy()
    if ok.any():
        exact = num.to_numpy(copy=True)
        try:
            exact[ok] = values[ok].astype("float64")
        except (TypeError, ValueError):
            return num
        return pd.Series(exact, index=s.index)
    return num


POINT = NumberFormat.named(".")
COMMA = NumberFormat.named(",")


def _distinct_text(series: pd.Series, na: frozenset[str]) -> pd.Series:
    """Up to DETECT_SAMPLE distinct stripped strings of a column (of its first SAMPLE_ROWS rows)
    that are not missing."""
    if series.dtype != object:
        return pd.Series([], dtype=object)
    distinct = pd.unique(series.to_numpy()[:SAMPLE_ROWS])
    u = pd.Series(pd.unique(np.array([v.strip() for v in distinct if isinstance(v, str)], dtype=object)), dtype=object)
    u = u[~u.isin(list(na))]
    return u.iloc[:DETECT_SAMPLE]


def detect_number_format(
    frame: pd.DataFrame,
    text_columns: set[str],
    na_values: tuple[str, ...],
    delimiter: str | None,
    decimal: str | None = None,
    thousands: str | None = None,
) -> tuple[NumberFormat, list[dict[str, Any]]]:
    """The file's number format and audit notes saying what was assumed (see the module docstring).

    ``frame`` holds the text as read (all of it, or the first rows when reading by chunks); columns
    in ``text_columns`` (identifiers) take no part.
    """
    if decimal is not None:
        return NumberFormat.named(decimal, thousands), []
    na = frozenset(na_values)
    says_point: dict[str, str] = {}
    says_comma: dict[str, str] = {}
    ambiguous: dict[str, str] = {}
    for c in frame.columns:
        if c in text_columns:
            continue
        u = _distinct_text(frame[c], na)
        if u.empty:
            continue
        as_point, as_comma = POINT.parse(u), COMMA.parse(u)
        point_ok, comma_ok = bool(as_point.notna().all()), bool(as_comma.notna().all())
        if point_ok and not comma_ok:
            says_point[c] = _example(u, as_comma.isna())
        elif comma_ok and not point_ok:
            says_comma[c] = _example(u, as_point.isna())
        elif point_ok and comma_ok:
            differ = (as_point != as_comma).to_numpy()
            if differ.any():
                ambiguous[c] = str(u[differ].iloc[0])
    if says_point and says_comma:
        raise InputError(
            "cannot tell the decimal mark: "
            + _listing(says_comma, "read as decimal commas")
            + "; "
            + _listing(says_point, "as decimal points")
            + ". Declare it in the mapping: source: {decimal: ','} (or '.')"
        )
    notes: list[dict[str, Any]] = []
    if says_comma:
        fmt = NumberFormat.named(",", thousands)
        notes.append(_note(f"numbers read with a decimal comma, as {_listing(says_comma, 'show')}"))
    elif says_point:
        fmt = NumberFormat.named(".", thousands)
    elif ambiguous:
        fmt = NumberFormat.named("," if delimiter == ";" else ".", thousands)
        reading = "a decimal comma and '.' between thousands" if fmt.decimal == "," else "a decimal point"
        why = "the file is separated by ';'" if fmt.decimal == "," else "the usual convention"
        notes.append(
            _note(
                f"ASSUMED {reading} ({why}): {_listing(ambiguous, 'could be read either way')}. "
                "Declare source: {decimal: ...} in the mapping if this is wrong"
            )
        )
    else:
        fmt = NumberFormat.named(".", thousands)
    return fmt, notes


def _example(u: pd.Series, mask: pd.Series) -> str:
    return str(u[mask.to_numpy()].iloc[0])


def _listing(examples: dict[str, str], verb: str) -> str:
    shown = ", ".join(f"{c} ({v!r})" for c, v in list(examples.items())[:4])
    more = f" and {len(examples) - 4} more" if len(examples) > 4 else ""
    return f"columns {shown}{more} {verb}"


def _note(reason: str, rows: int = 0) -> dict[str, Any]:
    return {"step": "note", "rows": rows, "reason": reason}


def convert_text_cells(
    frame: pd.DataFrame,
    text_columns: set[str],
    fmt: NumberFormat,
    na_values: tuple[str, ...],
    cells_are_text: bool = True,
) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Missing cells to missing, then numbers to numbers, column by column.

    ``frame`` holds strings (CSV, ``cells_are_text``) or the cells' own values (Excel: numbers,
    strings, dates, booleans). Columns in ``text_columns`` keep their text exactly (only missing
    spellings become missing). Another column becomes float64, or int64 when every value is a whole
    number and none is missing, if every non-missing cell is a number; else it keeps its cells.

    Works on any slice of rows, so a file can be converted chunk by chunk with the format that
    :func:`detect_number_format` chose once (a column may then come out numeric in one chunk and
    text in another; the caller decides how to combine them).
    """
    na = frozenset(na_values)
    na_list, explicit_na = sorted(na), sorted(v for v in na if v)
    out: dict[str, pd.Series] = {}
    na_counts: dict[str, int] = {}
    notes: list[dict[str, Any]] = []
    for c in frame.columns:
        col = frame[c]
        if col.dtype != object:
            out[c] = col
            continue
        if cells_are_text:
            # the parser skips leading spaces; a number with trailing ones is still read as a number
            stripped = col
        else:
            is_str = col.map(lambda v: isinstance(v, str)).to_numpy(dtype=bool)
            stripped = pd.Series(
                [v.strip() if isinstance(v, str) else None for v in col], index=col.index, dtype=object
            )
        is_na = stripped.isin(na_list).to_numpy(dtype=bool) if na else np.zeros(len(col), bool)
        if explicit_na and is_na.any():
            n_explicit = int(stripped.isin(explicit_na).sum())
            if n_explicit:
                na_counts[c] = n_explicit
        kept = col.where(~is_na, None) if is_na.any() else col
        if c in text_columns:
            if not cells_are_text and present_numbers_only(col, is_na):
                # an Excel identifier column of number cells: numbers, as in Stata, so that rounds
                # with text ids can be compared with it (cluster_econ.harmonize.linking)
                out[c] = _tidy_numbers(pd.to_numeric(kept, errors="coerce").astype("float64"))
            else:
                out[c] = kept
            continue
        present = col.notna().to_numpy(dtype=bool) & ~is_na
        if cells_are_text:
            # a column of words is found out on its first cells, without parsing all of it
            first = stripped[present][:CHECK_ROWS]
            bad_first = first[fmt.parse(first).isna().to_numpy()]
            if len(bad_first) and not bad_first.isin(list(MISSING_LOOKALIKES)).all():
                out[c] = kept
                continue
            num = fmt.parse(stripped.where(~is_na))
            ok = present & num.notna().to_numpy()
            if (ok == present).all():
                out[c] = _tidy_numbers(num)
            else:
                out[c] = kept
                notes.extend(_lookalike_hint(c, stripped[present & ~ok]))
            continue
        # Excel: number cells are numbers already; text cells may be numbers written as text
        is_num = col.map(lambda v: isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool))
        is_num = is_num.to_numpy(dtype=bool)
        text_present = present & is_str
        parsed = fmt.parse(stripped.where(text_present)) if text_present.any() else None
        text_ok = text_present & (parsed.notna().to_numpy() if parsed is not None else False)
        if present.any() and ((present & is_num) | text_ok).sum() == present.sum():
            values = pd.to_numeric(col.where(is_num), errors="coerce").astype("float64")
            if parsed is not None:
                values = values.where(~text_ok, parsed)
            out[c] = _tidy_numbers(values.where(present))
        else:
            out[c] = kept
            if text_present.any() and (present & is_num).any():
                notes.extend(_lookalike_hint(c, stripped[text_present & ~text_ok]))
    if na_counts:
        listed = ", ".join(f"{c} ({n})" for c, n in list(na_counts.items())[:6])
        spelled = "/".join(repr(v) for v in na_values if v)
        notes.append(
            _note(
                f"cells written {spelled} read as missing: {listed}; set source.na_values to change this",
                sum(na_counts.values()),
            )
        )
    return pd.DataFrame(out, index=frame.index, copy=False), notes


def present_numbers_only(col: pd.Series, is_na: np.ndarray) -> bool:
    """Whether every cell that is not missing is a number (not text, not a boolean)."""
    cells = col[~is_na & col.notna().to_numpy()]
    return len(cells) > 0 and bool(
        cells.map(lambda v: isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool)).all()
    )


def _lookalike_hint(column: str, bad: pd.Series) -> list[dict[str, Any]]:
    """A hint when the cells that keep a column from being numeric look like a missing value."""
    looks = bad[bad.isin(list(MISSING_LOOKALIKES))]
    if looks.empty or len(looks) < len(bad):
        return []
    spellings = sorted(set(looks))
    return [
        _note(
            f"{column}: {len(looks)} cell(s) written {', '.join(map(repr, spellings))} keep the column from being "
            f"numeric; if they mean missing, add them to the mapping's source.na_values",
            len(looks),
        )
    ]


def _tidy_numbers(values: pd.Series) -> pd.Series:
    """int64 when every value is a whole number and none is missing (as pandas' CSV reader gives)."""
    arr = values.to_numpy(dtype="float64")
    if len(arr) and np.isfinite(arr).all() and (np.floor(arr) == arr).all() and (np.abs(arr) < 2**53).all():
        return pd.Series(arr.astype(np.int64), index=values.index)
    return pd.Series(arr, index=values.index)
