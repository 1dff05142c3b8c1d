"""Casting a column to its schema type, with the values that cannot be cast.

``number`` becomes float64, ``integer`` nullable Int64, ``boolean`` nullable boolean, and
``string`` (and anything else) object text. A value that cannot be cast (text in a numeric column, a
fraction in an integer column, "maybe" in a boolean) is reported in a mask, never turned silently
into a missing value; so is an infinite number (``inf`` in the source, or a division by zero in a
derivation), which no schema field accepts.

Performance: text casts are computed once per distinct value (IDs repeat on every row of an
enterprise) and the codes are handed back, so that the key checks reuse them instead of hashing the
text again; a column that already has its type is returned as it is when the caller allows it
(``share``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

BOOL_TRUE = {"true", "yes", "y", "1", "1.0", "t"}
BOOL_FALSE = {"false", "no", "n", "0", "0.0", "f"}


@dataclass
class Cast:
    """A column cast to its schema type.

    ``invalid`` marks values that could not be cast (they are missing in ``values``); ``infinite``
    marks numbers that are infinite (kept in a ``number`` column, missing in an ``integer`` one).
    ``codes`` and ``distinct`` are set for text cast from numbers: ``pd.factorize`` of the column.
    """

    values: pd.Series
    invalid: np.ndarray
    infinite: np.ndarray
    codes: np.ndarray | None = None
    distinct: np.ndarray | None = None


def _per_distinct(series: pd.Series, fn: Any) -> tuple[pd.Series, np.ndarray, np.ndarray]:
    """``fn`` of each distinct non-missing value, spread over the rows (missing gives None); also the
    codes and the distinct results. ``fn`` must give different values for different inputs."""
    codes, uniques = pd.factorize(series)
    values = np.array([*(fn(u) for u in uniques.tolist()), None], dtype=object)
    return pd.Series(values[codes], index=series.index, dtype=object), codes, values[:-1]


def _float_text(v: float) -> str:
    """An ID read as a float: 1.0 -> "1"; anything else its shortest exact text."""
    return f"{v:.0f}" if float(v).is_integer() else repr(v)


def cast_column(series: pd.Series, ftype: str, share: bool = False) -> Cast:
    """Cast ``series`` to the schema type ``ftype``. With ``share``, a column that already has the
    type is returned as it is, not copied."""
    n = len(series)
    none = np.zeros(n, bool)
    if ftype in ("number", "integer"):
        return _cast_numeric(series, ftype, share, none)
    if ftype == "boolean":
        return _cast_boolean(series, none)
    # string (and anything else): keep text, missing stays missing; numbers are converted once per
    # distinct value
    if pd.api.types.is_float_dtype(series.dtype):
        values, codes, distinct = _per_distinct(series, _float_text)
        return Cast(values, none, none, codes, distinct)
    if pd.api.types.is_integer_dtype(series.dtype):
        values, codes, distinct = _per_distinct(series, str)
        return Cast(values, none, none, codes, distinct)
    missing = series.isna()
    out = series.copy() if series.dtype == object and not missing.any() else series.astype(object).where(~missing, None)
    if pd.api.types.infer_dtype(out, skipna=True) not in ("string", "empty"):
        out = out.map(lambda v: v if v is None or isinstance(v, str) else str(v))
    return Cast(out, none, none)


def _cast_numeric(series: pd.Series, ftype: str, share: bool, none: np.ndarray) -> Cast:
    kind = series.dtype.kind if isinstance(series.dtype, np.dtype) else ""
    if ftype == "integer" and kind in "iu" and series.dtype.itemsize <= 4:
        # small machine integers are exact in float64, so the float route below gives these same values
        values = series.to_numpy().astype(np.int64)
        return Cast(pd.Series(pd.arrays.IntegerArray(values, np.zeros(len(values), bool)), index=series.index),
                    none, none)
    if ftype == "number" and kind in "iuf":
        num = series.astype("float64", copy=not share)  # machine numbers: only infinity can fail
        return Cast(num, none, np.isinf(num.to_numpy()) if kind == "f" else none)
    notna = series.notna().to_numpy()
    if pd.api.types.is_bool_dtype(series.dtype):
        num = series.astype("float64")
    elif pd.api.types.is_numeric_dtype(series.dtype):
        num = pd.to_numeric(series, errors="coerce").astype("float64", copy=not share)
    else:
        stripped = series.astype("string").str.strip() if series.dtype == object else series
        num = pd.to_numeric(stripped, errors="coerce").astype("float64")
        failed = notna & num.isna().to_numpy()
        if failed.any():
            # pandas gives up on numbers too large for a float ("1e400"); Python reads them as
            # infinite, as a reader that converts the column itself does: they then fail "finite"
            codes, uniques = pd.factorize(stripped[failed])
            again = np.array([_float_or_nan(u) for u in uniques.tolist()], dtype=float)[codes]
            if not np.isnan(again).all():
                num = num.copy()
                num.iloc[np.flatnonzero(failed)] = again
    vals = num.to_numpy()
    invalid = notna & np.isnan(vals)
    infinite = np.isinf(vals)
    if ftype == "integer":
        frac = np.isfinite(vals) & (np.floor(vals) != vals)
        invalid |= frac
        if (frac | infinite).any():
            num = num.where(~(frac | infinite))
        return Cast(num.astype("Int64"), invalid, infinite)
    return Cast(num, invalid, infinite)


def _float_or_nan(text: Any) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return np.nan


def _cast_boolean(series: pd.Series, none: np.ndarray) -> Cast:
    if pd.api.types.is_bool_dtype(series.dtype):
        return Cast(series.astype("boolean"), none, none)
    if series.dtype == object:
        # one pass over the rows: when every distinct value is a boolean (a recode's output), the
        # array is built from the codes (as astype("boolean"), without checking each row again)
        codes, uniques = pd.factorize(series)
        if all(isinstance(u, bool | np.bool_) for u in uniques):
            data = np.append(np.asarray(uniques, dtype=bool), False)[codes]
            return Cast(pd.Series(pd.arrays.BooleanArray(data, codes < 0), index=series.index), none, none)
    notna = series.notna().to_numpy()
    text = series.astype("string").str.strip().str.lower()
    out = pd.array([pd.NA] * len(series), dtype="boolean")
    t = text.isin(BOOL_TRUE).fillna(False).to_numpy(dtype=bool)
    f = text.isin(BOOL_FALSE).fillna(False).to_numpy(dtype=bool)
    out[t] = True
    out[f] = False
    return Cast(pd.Series(out, index=series.index), notna & ~(t | f), none)
