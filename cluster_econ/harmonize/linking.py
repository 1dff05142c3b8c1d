"""Identifiers across survey rounds: the same firm must get the same ``enterprise_id`` in every round,
whether a round stores its code as text or as a number.

Identifiers are text exactly as written. A number becomes the whole number it is (410032.0 ->
"410032"); a number shown with leading zeros by its display format (Stata ``%08.0f``, SPSS ``N8``,
Excel ``00000000``) gets those zeros. When one round stores the code as numbers and another as text
of one fixed width with leading zeros ("00410032"), the numbers lost their zeros on the way (a
``destring`` in Stata, a spreadsheet), so they are written with zeros to that width. Every such case
is reported in the audit with the number of identifiers of the numeric round found in the others, so
that a user sees at once whether the rounds link.

A round whose text ids are all whole numbers written with a decimal point ("410032.0", what a
spreadsheet or ``DataFrame.to_csv`` writes for a code held as a float) while another round of the
same shape holds the plain code is a numeric round in disguise: it is linked like one (its width is
given negative: drop the decimal point, then pad), and the audit says so.
"""

from __future__ import annotations

import string
from typing import Any

import numpy as np
import pandas as pd

from cluster_econ.harmonize.spec import MappingSpec, template_fields
from cluster_econ.io.readers import SourceTable

ID_COLUMN = "enterprise_id"


def _id_parts(spec: MappingSpec, params: dict[str, Any]) -> tuple[tuple[str, ...], list[str]] | None:
    """(literal text around the fields, source fields) of a mapping's enterprise_id, or None when it
    does not come from source columns alone (a constant, a parameter, a crosswalk)."""
    col = spec.columns.get(ID_COLUMN, {})
    if "crosswalk" in col:
        return None
    if "template" in col:
        parsed = list(string.Formatter().parse(col["template"]))
        fields = template_fields(col["template"], spec.where("columns", ID_COLUMN, "template"))
        return tuple(literal for literal, *_ in parsed), fields
    if spec.reads_from(col, params):
        return ("",), [str(col["from"])]
    return None


def _is_number_column(source: SourceTable, column: str) -> bool:
    s = source.data[column]
    return isinstance(s.dtype, np.dtype) and s.dtype.kind in "iuf" and column not in source.id_widths


def _whole_numbers(s: pd.Series) -> np.ndarray:
    values = pd.unique(s.dropna().to_numpy(dtype="float64") if s.dtype != object
                       else s.dropna().astype(str).str.strip().astype("float64").to_numpy())
    return values


def _written_with_decimal_point(source: SourceTable, column: str) -> bool:
    """Text ids that are all whole numbers written with a decimal point ("410032.0")."""
    s = source.data[column]
    values = s.dropna().astype(str).str.strip() if s.dtype == object else pd.Series(dtype=object)
    return bool(len(values)) and bool(values.str.fullmatch(r"\d+\.0+").all())


def link_identifiers(
    sources: list[SourceTable], specs: list[MappingSpec], params: dict[str, Any]
) -> tuple[list[dict[str, int]], list[tuple[int, dict[str, Any]]]]:
    """Widths to which numeric identifier columns are written with leading zeros, per source, and
    audit notes as (source position, note).

    Compared are the sources whose ``enterprise_id`` has the same shape (the same literal text
    around the same number of template fields), field by field.
    """
    widths: list[dict[str, int]] = [{} for _ in sources]
    notes: list[tuple[int, dict[str, Any]]] = []
    shapes: dict[tuple[str, ...], list[tuple[int, list[str]]]] = {}
    for i, spec in enumerate(specs):
        parts = _id_parts(spec, params)
        if parts is not None:
            shapes.setdefault(parts[0], []).append((i, parts[1]))
    for members in shapes.values():
        if len(members) < 2:
            continue
        for k in range(len(members[0][1])):
            numeric = [
                (i, f[k]) for i, f in members if f[k] in sources[i].data.columns and _is_number_column(sources[i], f[k])
            ]
            text = [
                (i, f[k])
                for i, f in members
                if f[k] in sources[i].data.columns and sources[i].data[f[k]].dtype == object
            ]
            dotted = [(i, c) for i, c in text if _written_with_decimal_point(sources[i], c)]
            if dotted and (numeric or len(dotted) < len(text)):
                text = [t for t in text if t not in dotted]
                numeric = numeric + dotted
            else:
                dotted = []
            if not numeric or not text:
                for i, column in dotted:  # numbers and dotted text only: both become whole-number text
                    widths[i][column] = -1
                    notes.append((i, _dotted_note(sources[i], column, None)))
                continue
            written = pd.unique(
                pd.concat([sources[i].data[c].dropna().astype(str).str.strip() for i, c in text], ignore_index=True)
            )
            width = _common_zero_width(written)
            for i, column in numeric:
                numbers = _whole_numbers(sources[i].data[column])
                pad = (
                    width
                    if width
                    and len(numbers)
                    and bool((numbers >= 0).all() and (np.floor(numbers) == numbers).all())
                    and int(numbers.max()) < 10**width
                    else None
                )
                if (i, column) in dotted:
                    widths[i][column] = -(pad or 1)
                    notes.append((i, _dotted_note(sources[i], column, pad)))
                elif pad:
                    widths[i][column] = pad
                as_text = {
                    f"{int(v):0{pad}d}" if pad else (str(int(v)) if float(v).is_integer() else str(v)) for v in numbers
                }
                found = len(as_text & set(written))
                others = ", ".join(sorted({sources[j].name for j, _ in text}))
                if (i, column) in dotted:
                    reason = (f"{ID_COLUMN}: {found} of {len(as_text)} ids of {sources[i].name} are also found "
                              f"in {others}")
                    notes.append((i, {"step": "note", "rows": found, "reason": reason}))
                    continue
                how = (
                    f"the text ids there all have {width} digits with leading zeros, so these numbers are written "
                    f"with zeros to {width} digits (e.g. {int(numbers.min())} -> {int(numbers.min()):0{width}d})"
                    if pad
                    else "the numbers are written as whole numbers, without '.0'"
                )
                notes.append(
                    (
                        i,
                        {
                            "step": "note",
                            "rows": found,
                            "reason": f"{ID_COLUMN}: {column} is stored as numbers in {sources[i].name} and as text "
                            f"in {others}; {how}: {found} of {len(as_text)} ids of {sources[i].name} are also "
                            "found there",
                        },
                    )
                )
    return widths, notes


def _dotted_note(source: SourceTable, column: str, pad: int | None) -> dict[str, Any]:
    example = str(source.data[column].dropna().astype(str).str.strip().iloc[0])
    number = int(example.split(".")[0])
    shown = f"{number:0{pad}d}" if pad else str(number)
    return {"step": "note", "rows": int(source.data[column].notna().sum()),
            "reason": f"{ID_COLUMN}: {column} in {source.name} is written as whole numbers with a decimal point "
                      f"(a code exported through a float) while other rounds hold the plain code: read as "
                      f"{'whole numbers with zeros to ' + str(pad) + ' digits' if pad else 'whole numbers'} "
                      f"({example!r} -> {shown!r})"}


def _common_zero_width(written: np.ndarray) -> int | None:
    """The one width of text ids made of digits when some have leading zeros, else None."""
    if len(written) == 0:
        return None
    texts = pd.Series(written, dtype=object)
    if not texts.str.fullmatch(r"\d+").all():
        return None
    lengths = texts.str.len().unique()
    if len(lengths) != 1 or lengths[0] < 2 or not texts.str.startswith("0").any():
        return None
    return int(lengths[0])
