"""One source file through its mapping: the wide canonical frame of a survey round.

For each canonical column: read its source column (``optional`` ones may be absent: missing values
and an audit note), special missing codes to missing, recode, scale, constants and run-time
parameters, ID templates (identifiers as text exactly as written; numbers with the zeros their
display format or the other rounds show) and crosswalks; recalled years become extra rows; monetary
columns are deflated; then the mapping's ``derive`` columns and the schema's own derivations (value
added) are computed, only from what was reported: a derivation whose inputs are not all mapped is
not made (an audit note says so), a missing input gives a missing value, a division by zero gives a
missing value. Unmapped source columns are kept as ``src_<name>``.

Performance: values that repeat (codes to recode, IDs to format) are handled once per distinct value
through ``pd.factorize`` and spread back with one take; each helper says which pandas expression it
reproduces where it departs from the obvious one.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cluster_econ import schema
from cluster_econ.errors import MappingError
from cluster_econ.harmonize.expressions import evaluate_counted, names_in
from cluster_econ.harmonize.spec import MappingSpec, recode_key, source_fields, template_fields
from cluster_econ.io.readers import SourceTable, read_source

PROVENANCE = ("_source", "_source_row")
SOURCE_PREFIX = "src_"


# -- one column ---------------------------------------------------------------------------------
def _apply_missing(series: pd.Series, codes: Sequence[Any]) -> tuple[pd.Series, int]:
    if not codes or len(series) == 0:
        return series, 0
    numeric_codes = [float(c) for c in codes if isinstance(c, int | float)]
    text_codes = {str(c).strip() for c in codes} | {f"{float(c):g}" for c in numeric_codes}
    if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype):
        values = series.to_numpy()
        hit = np.zeros(len(values), bool)
        for code in numeric_codes:
            hit |= values == code
    else:
        hit = series.astype("string").str.strip().isin(text_codes).fillna(False).to_numpy(dtype=bool)
    n = int(hit.sum())
    return (series.mask(hit) if n else series), n


def _recode(
    series: pd.Series, mapping: dict[Any, Any], unmatched: str, where: str, source: SourceTable, source_col: str
) -> tuple[pd.Series, int]:
    key = getattr(mapping, "key", recode_key)  # built-in recodes (country names) bring their own matching
    lookup = dict(mapping) if key is not recode_key else {recode_key(k): v for k, v in mapping.items()}
    if unmatched == "keep":
        return _recode_keep(series, lookup, key)
    # every step runs on the distinct values, then one take spreads them over the rows
    codes, uniques = pd.factorize(series)
    keys = pd.Series([key(u) for u in uniques], dtype=object)
    present = codes >= 0
    matched_u = keys.isin(list(lookup)).to_numpy()
    bad = present & ~matched_u[codes] if len(uniques) else np.zeros(len(series), bool)
    if bad.any() and unmatched == "error":
        vals = pd.Series(series[bad]).value_counts().head(8)
        rows = (np.flatnonzero(bad)[:10] + 1).tolist()
        listed = ", ".join(f"{v!r} ({n} rows)" for v, n in vals.items())
        name = getattr(mapping, "name", None)
        known = (
            f"the built-in recode {name} knows {len(mapping)} country names and codes"
            if name
            else f"Known values: {sorted(map(str, mapping))}"
        )
        raise MappingError(
            f"{where}: column {source_col!r} of {source.name} has values the recode does not list: {listed}; "
            f"first rows {rows}. {known}. If this round codes the item "
            "differently (for example 0/1 instead of 1/2), give it its own recode; or set unmatched: missing"
        )
    # missing rows map like a missing key (a last slot, which codes of -1 take); the slot is added only
    # when such rows exist, so the values' types are those the rows would give
    has_missing = not present.all()
    mapped = pd.Series([*keys, np.nan] if has_missing else list(keys), dtype=object).map(lookup)
    values = mapped.astype(object).where(mapped.notna(), None).to_numpy()
    if not has_missing:
        values = np.append(values, None)
    n_unmatched = int(bad.sum()) if unmatched == "missing" else 0
    return pd.Series(values[codes], index=series.index, dtype=object), n_unmatched


def _recode_keep(series: pd.Series, lookup: dict[Any, Any], key: Any = recode_key) -> tuple[pd.Series, int]:
    """Recode where values the recode does not list stay as they are."""
    uniques = pd.unique(series.dropna())
    keys = series.map({u: key(u) for u in uniques})
    present = series.notna().to_numpy()
    matched = keys.isin(list(lookup)).to_numpy()
    out = keys.map(lookup).where(matched | ~present, series)
    return out.astype(object).where(out.notna(), None), 0


def _text_of(v: Any, width: int | None = None) -> str:
    """An identifier's text: text as written (stripped); a whole number without '.0', with zeros in
    front up to ``width`` when the source shows it so (a zero-padded display format, or text ids of
    another round)."""
    if isinstance(v, str):
        text = v.strip()
        if width is not None and width < 0 and re.fullmatch(r"\d+\.0+", text):
            # a code exported through a float ("410032.0"): the whole number, padded (see linking)
            return f"{int(text.split('.')[0]):0{-width}d}"
        return text
    if isinstance(v, float | np.floating) and float(v).is_integer():
        v = int(v)
    if isinstance(v, int | np.integer) and not isinstance(v, bool | np.bool_):
        return f"{int(v):0{width}d}" if width and width > 0 and v >= 0 else str(int(v))
    return str(v).strip()


def _texts(uniques: Any, width: int | None = None) -> np.ndarray:
    """:func:`_text_of` of each distinct value, as an object array; whole numbers in bulk."""
    values = np.asarray(uniques)
    if values.dtype.kind == "f" and len(values):
        whole = np.isfinite(values) & (np.floor(values) == values) & (np.abs(values) < 2**53)
        if whole.all():
            values = values.astype(np.int64)
    if values.dtype.kind in "iu":
        text = values.astype(str)
        if width and width > 0:
            text = np.where(values >= 0, np.char.zfill(text, width), text)
        return text.astype(object)
    return np.array([_text_of(u, width) for u in values], dtype=object)


def _as_text(series: pd.Series, width: int | None = None) -> pd.Series:
    """Values as text for IDs: 1001.0 -> "1001", " a " -> "a", missing stays missing."""
    codes, uniques = pd.factorize(series)
    text = np.append(_texts(uniques, width), None)
    return pd.Series(text[codes], index=series.index, dtype=object)


def _template(
    data: pd.DataFrame,
    template: str,
    where: str,
    widths: dict[str, int] | None = None,
    mapped: dict[str, pd.Series] | None = None,
) -> pd.Series:
    """Text from source columns (``{name}``) and canonical columns mapped before (``{=name}``)."""
    widths = widths or {}
    fields = template_fields(template, where)  # checks the fields are plain names
    parsed = list(string.Formatter().parse(template))

    def column(f: str) -> pd.Series:
        return mapped[f[1:]] if f.startswith("=") and mapped is not None else data[f]

    if len(fields) == 1:
        # one field (the usual ID template): format each distinct value once
        codes, uniques = pd.factorize(column(fields[0]))
        parts = _texts(uniques, widths.get(fields[0]))
        (before, *_), (after, *_) = parsed[0], (parsed[1] if len(parsed) > 1 else ("",))
        if before or after:
            parts = np.array([before + p + after for p in parts], dtype=object)
        return pd.Series(np.append(parts, None)[codes], index=data.index, dtype=object)
    result = pd.Series("", index=data.index, dtype=object)
    missing = np.zeros(len(data), bool)
    for literal, field, _, _ in parsed:
        result = result + literal
        if field is not None:
            part = _as_text(column(field), widths.get(field))
            missing |= part.isna().to_numpy()
            result = result + part.fillna("")
    return result.where(~missing, None)


def _crosswalk(ids: pd.Series, path: Path, where: str) -> pd.Series:
    if not path.exists():
        raise MappingError(f"{where}: crosswalk file {path} not found")
    table = read_source(path, text_columns=("source_id", "enterprise_id")).data
    if not {"source_id", "enterprise_id"} <= set(table.columns):
        raise MappingError(
            f"{where}: crosswalk {path} needs columns source_id and enterprise_id "
            f"(found {', '.join(map(str, table.columns))})"
        )
    cw = dict(zip(_as_text(table["source_id"]), _as_text(table["enterprise_id"]), strict=True))
    return ids.map(lambda v: cw.get(v, v) if v is not None else None)


# -- one source file ----------------------------------------------------------------------------
def _note(rows: int, reason: str) -> dict[str, Any]:
    return {"step": "note", "rows": int(rows), "reason": reason}


def _absent(name: str, n: int, index: pd.Index) -> pd.Series:
    """The all-missing column of a question a round did not ask: NaN for numbers (and extra columns),
    None for text and booleans, so that appending the rounds keeps the other rounds' types."""
    ftype = _field_types().get(name)
    if ftype in ("number", "integer", None):
        return pd.Series(np.full(n, np.nan), index=index)
    return _constant(None, n, index)


def _field_types() -> dict[str, str]:
    return {f.name: f.type for t in schema.TABLES for f in schema.load(t).fields}


def _absent_note(name: str, columns: list[str], source: SourceTable, n: int) -> dict[str, Any]:
    which = ", ".join(columns)
    return _note(n, f"{name}: {which} not in {source.name} (optional): left missing for this round")


def _map_columns(
    data: pd.DataFrame,
    spec: MappingSpec,
    columns: dict[str, dict[str, Any]],
    path: tuple[str | int, ...],
    params: dict[str, Any],
    source: SourceTable,
    notes: list[dict[str, Any]],
    used_source: set[str],
    widths: dict[str, int] | None = None,
) -> pd.DataFrame:
    out: dict[str, pd.Series] = {}
    n = len(data)
    widths = {**source.id_widths, **(widths or {})}
    text_fields = _text_fields()
    for name, col in columns.items():
        where = spec.where(*path, name)
        if "param" in col and (col["param"] in params or "from" not in col):
            if col["param"] in params:
                value = params[col["param"]]
                if "from" in col and str(col["from"]) in data.columns:
                    used_source.add(str(col["from"]))
                    notes.append(
                        _note(
                            n,
                            f"{name}: {value!r} for every row, as given (--set {col['param']}); the file's column "
                            f"{col['from']} was not read",
                        )
                    )
            elif "default" in col:
                value = col["default"]
            else:
                raise MappingError(
                    f"{where}: needs the parameter {col['param']!r}: pass --set {col['param']}=VALUE "
                    f"(or normalize(..., params={{'{col['param']}': ...}}))"
                )
            out[name] = _constant(value, n, data.index)
        elif "from" in col:
            src_col = str(col["from"])
            if src_col not in data.columns:  # an optional question this round did not ask
                out[name] = _absent(name, n, data.index)
                notes.append(_absent_note(name, [src_col], source, n))
                continue
            used_source.add(src_col)
            s = data[src_col]
            s, n_missing = _apply_missing(s, list(spec.missing_codes) + list(col.get("missing", [])))
            if n_missing:
                notes.append(_note(n_missing, f"{name}: {n_missing} special missing codes in {src_col} set to missing"))
            rec = spec.recode_map(name, col, path)
            if rec is not None:
                s, n_unmatched = _recode(s, rec, col.get("unmatched", "error"), where, source, src_col)
                if n_unmatched:
                    notes.append(
                        _note(
                            n_unmatched, f"{name}: {n_unmatched} values of {src_col} not in the recode set to missing"
                        )
                    )
            elif src_col in widths and name in text_fields and not col.get("extra"):
                s = _as_text(s, widths[src_col])  # numbers shown with leading zeros: 7 -> "007"
            # other numbers in text columns become whole-number text in validation (1810.0 -> "1810")
            if "scale" in col:
                num = pd.to_numeric(s, errors="coerce")
                # text that is not a number stays as it is, for validation to report
                s = (num * float(col["scale"])).astype(object).where(num.notna(), s)
            out[name] = s
        elif "const" in col:
            out[name] = _constant(col["const"], n, data.index)
        elif "template" in col:
            fields = source_fields(col["template"], where)
            absent = [f for f in fields if f not in data.columns]
            if absent:  # only an optional column gets here (check_against)
                out[name] = _absent(name, n, data.index)
                notes.append(_absent_note(name, absent, source, n))
                continue
            used_source.update(fields)
            out[name] = _template(data, col["template"], where, widths, out)
        if "crosswalk" in col and name in out:
            out[name] = _crosswalk(out[name], spec.base_dir / col["crosswalk"], where)
    return pd.DataFrame(out, index=data.index, copy=False)


def _text_fields() -> set[str]:
    return {f.name for t in schema.TABLES for f in schema.load(t).fields if f.type == "string"}


def _constant(value: Any, n: int, index: pd.Index) -> pd.Series:
    values = np.empty(n, dtype=object)
    values.fill(value)
    return pd.Series(values, index=index, dtype=object)


def _select(df: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """The columns as a new frame sharing the data (``df[columns]`` would copy every column)."""
    return pd.DataFrame({c: df[c] for c in columns}, index=df.index, copy=False)


def _fresh_index(df: pd.DataFrame) -> pd.DataFrame:
    """``df.reset_index(drop=True)`` without copying the data when the index is already 0..n-1."""
    if isinstance(df.index, pd.RangeIndex) and df.index.start == 0 and df.index.step == 1:
        return df
    out = df.copy(deep=False)
    out.index = pd.RangeIndex(len(df))
    return out


RECALL_CARRY = ("enterprise_id", "cluster_id", "country", "survey_round", "currency")


def map_source(
    source: SourceTable,
    spec: MappingSpec,
    deflators: pd.DataFrame | None = None,
    params: dict[str, Any] | None = None,
    id_widths: dict[str, int] | None = None,
) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Apply a mapping to one source table: the wide canonical frame (recalled years appended, with
    ``recall`` true) and audit notes.

    ``id_widths`` gives, for source columns of identifiers stored as numbers, the width to which
    they are written with leading zeros (see :func:`cluster_econ.harmonize.linking.link_identifiers`).
    """
    data = _fresh_index(source.data)
    params = dict(params or {})
    spec.check_against(source, params=params)
    notes: list[dict[str, Any]] = list(source.notes)
    used_source: set[str] = set()
    n = len(data)
    wide = _map_columns(data, spec, spec.columns, ("columns",), params, source, notes, used_source, id_widths)
    wide["_source_row"] = np.arange(1, n + 1)
    frames = [wide]
    for i, block in enumerate(spec.recall_blocks):
        rec = _map_columns(
            data, spec, block["columns"], ("recall", i, "columns"), params, source, notes, used_source, id_widths
        )
        for c in RECALL_CARRY:
            if c in wide.columns and c not in rec.columns:
                rec[c] = wide[c]
        rec["year"] = pd.to_numeric(wide["year"], errors="coerce") + int(block["year_offset"])
        rec["recall"] = True
        rec["_source_row"] = wide["_source_row"]
        frames.append(rec)
        notes.append({"step": "added", "rows": n, "reason": f"recall rows for year {block['year_offset']:+d}"})
    if len(frames) > 1:
        wide["recall"] = wide["recall"] if "recall" in wide.columns else False
        wide = pd.concat(frames, ignore_index=True)
    if "deflate" in spec.data:
        wide = _deflate(wide, spec, deflators)
    for name, col in spec.columns.items():
        if "derive" in col:
            wide[name] = _derive(name, col["derive"], wide, notes)
    wide = _schema_derivations(wide, spec, notes)
    rest = [c for c in data.columns if str(c) not in used_source] if spec.keep_unmapped else []
    if rest and len(frames) > 1:
        # kept on the source's own rows (the first n); recalled rows have none
        wide = wide.join(data[rest].add_prefix(SOURCE_PREFIX))
        rest = []
    columns = {c: wide[c] for c in wide.columns}
    columns.update({f"{SOURCE_PREFIX}{c}": data[c] for c in rest})
    columns["_source"] = _constant(source.name, len(wide), wide.index)
    return pd.DataFrame(columns, index=wide.index, copy=False), notes


def _derive(name: str, expr: str, wide: pd.DataFrame, notes: list[dict[str, Any]]) -> pd.Series:
    """A mapping's ``derive``: only from what was reported (missing inputs give missing values)."""
    absent = [c for c in names_in(expr) if c not in wide.columns]
    if absent:
        notes.append(_note(len(wide), f"{name}: not derived ({expr}): {', '.join(absent)} not mapped; left missing"))
        return _constant(None, len(wide), wide.index)
    values, n_zero = evaluate_counted(expr, wide)
    if n_zero:
        notes.append(_note(n_zero, f"{name}: {n_zero} row(s) divide by zero in {expr}: set missing"))
    return values


def _schema_derivations(wide: pd.DataFrame, spec: MappingSpec, notes: list[dict[str, Any]]) -> pd.DataFrame:
    """Fill schema-derived columns (for example value added) when the source does not report them,
    only where every input is mapped: value added is never computed from sales alone."""
    for table in schema.TABLES:
        for field in schema.load(table).raw["fields"]:
            expr = field.get("derived")
            if not expr or field["name"] in spec.columns:
                continue
            needed = names_in(expr)
            present = [c for c in needed if c in wide.columns]
            if not present:
                continue
            if len(present) < len(needed):
                absent = [c for c in needed if c not in wide.columns]
                notes.append(
                    _note(
                        0,
                        f"{field['name']}: not derived: it is {expr}, and {', '.join(absent)} "
                        f"{'is' if len(absent) == 1 else 'are'} not mapped. If this survey defines it from "
                        f'what it asked, say so: {field["name"]}: {{derive: "..."}}',
                    )
                )
                continue
            wide[field["name"]] = _derive(field["name"], expr, wide, notes)
    return wide


def _deflate(wide: pd.DataFrame, spec: MappingSpec, deflators: pd.DataFrame | None) -> pd.DataFrame:
    conf = spec.data["deflate"]
    where = spec.where("deflate")
    if deflators is None:
        path = spec.base_dir / conf["deflator"]
        if not path.exists():
            raise MappingError(f"{where}: deflator file {path} not found")
        deflators = read_source(path).data
    need = {"country", "year", "price_index"}
    if not need <= set(deflators.columns):
        raise MappingError(f"{where}: the deflator table needs columns {sorted(need)}")
    for c in ("country", "year"):
        if c not in wide.columns:
            raise MappingError(f"{where}: deflating needs the canonical column {c!r} to be mapped")
    d = deflators.assign(year=pd.to_numeric(deflators["year"]).astype(float), country=deflators["country"].astype(str))
    idx = d.set_index(["country", "year"])["price_index"].astype(float)
    base_year = conf.get("base_year")
    if idx.index.has_duplicates:
        raise MappingError(f"{where}: the deflator table lists a country-year more than once")
    country = wide["country"].astype(str).to_numpy()
    year = pd.to_numeric(wide["year"], errors="coerce").to_numpy(dtype=float)
    level = idx.reindex(pd.MultiIndex.from_arrays([country, year])).to_numpy(dtype=float)
    if base_year is not None:
        base = idx.reindex(pd.MultiIndex.from_arrays([country, np.full(len(year), float(base_year))]))
        base = base.to_numpy(dtype=float)
    else:
        base = np.ones(len(year))
    missing = ~np.isfinite(level / base)
    if missing.any():
        pairs = pd.DataFrame({"c": country[missing], "y": year[missing]}).drop_duplicates()
        absent = sorted(f"{c} {y:g}" for c, y in pairs.itertuples(index=False))[:10]
        raise MappingError(
            f"{where}: no deflator for {', '.join(absent)} ({int(missing.sum())} rows; base year {base_year})"
        )
    factor = level / base
    for c in conf["columns"]:
        if c not in wide.columns:
            raise MappingError(f"{spec.where('deflate', 'columns')}: {c!r} is not a mapped column")
        num = pd.to_numeric(wide[c], errors="coerce")
        wide[c] = (num / factor).astype(object).where(num.notna(), wide[c])
    wide["price_base_year"] = base_year
    return wide
