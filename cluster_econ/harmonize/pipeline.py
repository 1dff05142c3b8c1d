"""Source files and their mapping specifications to one validated canonical Panel.

The steps, for each source file: read it (:mod:`cluster_econ.io.readers`), check that every source
column the mapping names exists, map each canonical column (missing codes to missing, recode,
scale, constants, ID templates and crosswalks), deflate monetary columns, derive columns (the
mapping's ``derive`` and the schema's own derivations such as value added), keep unmapped source
columns as ``src_<name>``, and split the row into the canonical tables. Then the rounds are appended:
enterprise-level facts are combined (the latest round's non-missing value wins; disagreements are
counted in the audit), an enterprise-year reported twice with identical values is kept once, and one
reported twice with different values is an error (strict) or quarantined with both copies. Finally
every table is validated and the cluster-year aggregates are computed.

The audit accounts for every source row: read = kept + dropped (identical duplicates) + rejected.

Performance (a million enterprise-years should cost about what reading the file costs): values that
repeat (codes to recode, IDs to format, enterprise-level facts on every enterprise-year) are handled
once per distinct value through ``pd.factorize`` and spread back with one take; the tables share the
mapped columns rather than copying them (``_select``, ``_fresh_index``); work that cannot apply is
skipped (no duplicate enterprise-years, one file). These are written here rather than with pandas'
own ``map``/``groupby`` because those build a Python object or a group per row, which at this size is
most of the run time; each such helper says which pandas expression it reproduces.
"""

from __future__ import annotations

import hashlib
import string
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cluster_econ import schema
from cluster_econ.errors import ConfigError, MappingError, SchemaError
from cluster_econ.harmonize.expressions import evaluate_counted, names_in
from cluster_econ.harmonize.linking import link_identifiers
from cluster_econ.harmonize.spec import MappingSpec, load_mapping, recode_key, source_fields, template_fields
from cluster_econ.io.readers import SourceTable, read_source
from cluster_econ.panel.container import Panel

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
        return v.strip()
    if isinstance(v, float | np.floating) and float(v).is_integer():
        v = int(v)
    if isinstance(v, int | np.integer) and not isinstance(v, bool | np.bool_):
        return f"{int(v):0{width}d}" if width and v >= 0 else str(int(v))
    return str(v).strip()


def _as_text(series: pd.Series, width: int | None = None) -> pd.Series:
    """Values as text for IDs: 1001.0 -> "1001", " a " -> "a", missing stays missing."""
    codes, uniques = pd.factorize(series)
    text = np.array([*(_text_of(u, width) for u in uniques), None], dtype=object)
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
        width = widths.get(fields[0])
        codes, uniques = pd.factorize(column(fields[0]))
        texts = [
            "".join(literal + (_text_of(u, width) if field is not None else "") for literal, field, _, _ in parsed)
            for u in uniques
        ]
        return pd.Series(np.array([*texts, None], dtype=object)[codes], index=data.index, dtype=object)
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
            elif name in text_fields and not col.get("extra"):
                s = _as_text(s, widths.get(src_col))  # codes and ids as text: 1810.0 -> "1810"
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


# -- splitting into tables and appending rounds ------------------------------------------------
def _extras(wide: pd.DataFrame, spec: MappingSpec) -> list[str]:
    extra = [n for n, c in spec.columns.items() if c.get("extra")]
    return extra + [c for c in wide.columns if str(c).startswith(SOURCE_PREFIX)]


def split_tables(wide: pd.DataFrame, spec: MappingSpec) -> dict[str, pd.DataFrame]:
    unit = spec.unit
    tables: dict[str, pd.DataFrame] = {}
    unit_fields = [f for f in schema.load(unit).field_names if f in wide.columns]
    tables[unit] = _select(wide, unit_fields + _extras(wide, spec) + list(PROVENANCE))
    if unit == "enterprise_year":
        if spec.recall_blocks:
            wide = wide[wide["recall"].ne(True).to_numpy()]
        ent_fields = [f for f in schema.load("enterprise").field_names if f in wide.columns]
        tables["enterprise"] = _select(wide, [*ent_fields, "year", *PROVENANCE])
        man_fields = [f for f in schema.load("manager").field_names if f in wide.columns and f != "enterprise_id"]
        if [f for f in man_fields if f != "manager_id"]:
            man = _select(wide, ["enterprise_id", *man_fields, "year", *PROVENANCE])
            if "manager_id" not in man.columns:
                man.insert(1, "manager_id", "1")
            tables["manager"] = man
    return tables


def _disagreement_note(table: str, column: str, n: int) -> dict[str, Any]:
    return {
        "step": "note",
        "table": table,
        "rows": n,
        "reason": f"{column}: {n} {table}(s) reported different values across rows; the latest non-missing "
        "value is kept",
    }


def _latest_per_key(df: pd.DataFrame, key: list[str], table: str) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """One row per key: the latest non-missing value of each column; count keys whose values disagree.

    "Latest" is the order of ``year``, then ``_order`` (the file's position), then the row. Keys come
    out in the order they first appear in that order; ``_source`` and ``_source_row`` are the latest
    row's. Computed on integer codes of the key, with one pass per column (the enterprise-level
    columns repeat on every enterprise-year row, so no frame of all rows is built or grouped).
    """
    notes: list[dict[str, Any]] = []
    if df.empty:
        return df, notes
    if not all(_plain_numeric(df[c]) for c in ("year", "_order") if c in df.columns):
        return _latest_per_key_sorted(df, key, table)
    n = len(df)
    order = _latest_order(df)
    kc = _codes(df, key)
    kcodes = kc[order]
    keyed = df[key].notna().all(axis=1).to_numpy()  # rows with a missing key count in no disagreement
    # positions (in the sorted order) of the first and the last row of each key
    first = np.flatnonzero(~pd.Series(kcodes).duplicated(keep="first").to_numpy())
    last_any = np.flatnonzero(~pd.Series(kcodes).duplicated(keep="last").to_numpy())
    n_keys = len(first)
    slot = np.empty(kcodes.max() + 1, dtype=np.int64)
    slot[kcodes[first]] = np.arange(n_keys)  # output row of each key code
    last_row = np.empty(n_keys, dtype=np.int64)
    last_row[slot[kcodes[last_any]]] = order[last_any]
    value_cols = [c for c in df.columns if c not in key and c not in ("year", "_order", *PROVENANCE)]
    repeated = n_keys < n
    out: dict[str, Any] = {c: _at(df[c], order[first]) for c in key}
    for c in [c for c in df.columns if c not in key and c not in ("year", "_order")]:
        col = df[c]
        if c in PROVENANCE:
            out[c] = _at(col, last_row)
            continue
        vcodes, _ = pd.factorize(col)
        present = (vcodes >= 0)[order]
        if present.all():
            out[c] = _at(col, last_row)
        else:
            # the last row of each key where the column has a value; keys without any stay missing
            pos = np.flatnonzero(present)
            sub = kcodes[pos]
            last = pos[~pd.Series(sub).duplicated(keep="last").to_numpy()]
            rows = np.full(n_keys, -1, dtype=np.int64)
            rows[slot[kcodes[last]]] = order[last]
            out[c] = _at(col, rows)
        if repeated and c in value_cols:
            # a key's values differ when their codes do: compare the least and the greatest code
            ok = (vcodes >= 0) & keyed
            low = np.full(n_keys, len(vcodes), dtype=np.int64)
            high = np.full(n_keys, -1, dtype=np.int64)
            np.minimum.at(low, slot[kc[ok]], vcodes[ok])
            np.maximum.at(high, slot[kc[ok]], vcodes[ok])
            n_conf = int((high > low).sum())
            if n_conf:
                notes.append(_disagreement_note(table, c, n_conf))
    return pd.DataFrame(out, copy=False), notes


def _plain_numeric(series: pd.Series) -> bool:
    return isinstance(series.dtype, np.dtype) and series.dtype.kind in "iuf"


def _latest_order(df: pd.DataFrame) -> np.ndarray:
    """Row positions sorted by year, then file, stably (missing years last)."""
    if "year" not in df.columns:
        return np.arange(len(df))
    year = df["year"].to_numpy()
    if "_order" in df.columns and df["_order"].nunique() > 1:
        return np.lexsort((df["_order"].to_numpy(), year))
    return np.argsort(year, kind="stable")


def _codes(df: pd.DataFrame, key: list[str]) -> np.ndarray:
    """One integer per distinct key (missing values form their own key, as in groupby(dropna=False))."""
    codes, _ = pd.factorize(df[key[0]], use_na_sentinel=False)
    for c in key[1:]:
        more, uniques = pd.factorize(df[c], use_na_sentinel=False)
        codes, _ = pd.factorize(codes.astype(np.int64) * (len(uniques) + 1) + more)
    return codes.astype(np.int64)


def _at(col: pd.Series, rows: np.ndarray) -> pd.Series:
    """Values of ``col`` at positions ``rows`` (-1 gives a missing value), indexed 0..len(rows)-1."""
    found = rows >= 0
    taken = col.iloc[rows if found.all() else np.where(found, rows, 0)].reset_index(drop=True)
    return taken if found.all() else taken.where(pd.Series(found))


def _latest_per_key_sorted(df: pd.DataFrame, key: list[str], table: str) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """As :func:`_latest_per_key`, through pandas sorting and grouping (years that are not plain numbers)."""
    notes: list[dict[str, Any]] = []
    order = (
        df.sort_values([c for c in ("year",) if c in df.columns] + ["_order"], kind="stable")
        if "_order" in df.columns
        else df
    )
    value_cols = [c for c in df.columns if c not in key and c not in ("year", "_order", *PROVENANCE)]
    dup = order.duplicated(key, keep=False)
    if dup.any():
        sub = order[dup]
        counts = sub.groupby(key, sort=False)[value_cols].nunique() if value_cols else pd.DataFrame()
        for c in value_cols:
            n_conf = int((counts[c] > 1).sum())
            if n_conf:
                notes.append(_disagreement_note(table, c, n_conf))
    last = order.groupby(key, sort=False, dropna=False).last().reset_index()
    last = last.drop(columns=[c for c in ("year", "_order") if c in last.columns])
    return last, notes


def _any_duplicate_key(ey: pd.DataFrame) -> bool:
    """Whether some enterprise_id+year occurs twice (ids compared as text, years as numbers)."""
    ids = ey["enterprise_id"]
    if not (_plain_numeric(ids) or pd.api.types.is_bool_dtype(ids.dtype)):
        ids = ids.astype(str)  # numbers compare as themselves; anything else as its text, as below
    year = pd.to_numeric(ey["year"], errors="coerce")
    # as DataFrame({"i": ids, "y": year}).duplicated().any(), on codes (missing values equal each other)
    id_codes, id_values = pd.factorize(ids, use_na_sentinel=False)
    year_codes, year_values = pd.factorize(year, use_na_sentinel=False)
    key = id_codes.astype(np.int64) * len(year_values) + year_codes
    if len(id_values) * len(year_values) <= 8 * len(key) + 1024:
        return bool((np.bincount(key) > 1).any()) if len(key) else False
    return bool(pd.Series(key).duplicated().any())


def _resolve_duplicates(ey: pd.DataFrame, mode: str) -> tuple[pd.DataFrame, pd.DataFrame, list[dict[str, Any]]]:
    """Enterprise-years reported twice: identical copies are kept once; different ones are an error."""
    key = ["enterprise_id", "year"]
    audit: list[dict[str, Any]] = []
    if not {"enterprise_id", "year"} <= set(ey.columns):
        return ey, ey.iloc[0:0].copy(), audit
    if not _any_duplicate_key(ey):
        return ey, ey.iloc[0:0].copy(), audit
    yr = pd.to_numeric(ey["year"], errors="coerce")
    keyframe = pd.DataFrame({"enterprise_id": ey["enterprise_id"].astype(str), "year": yr})
    dup = keyframe.duplicated(keep=False).to_numpy()
    if not dup.any():
        return ey, ey.iloc[0:0].copy(), audit
    compare = [
        c
        for c in ey.columns
        if c in schema.load("enterprise_year").field_names and c not in (*key, "survey_round", "recall")
    ]
    if "recall" in ey.columns:
        # a year reported in its own round beats the same year recalled in a later round
        flagged = ey["recall"].eq(True).fillna(False).to_numpy(dtype=bool)
        has_reported = (
            keyframe[dup & ~flagged].drop_duplicates().merge(keyframe[dup], how="right", indicator=True)["_merge"]
        )
        superseded = np.zeros(len(ey), bool)
        superseded[np.flatnonzero(dup)] = has_reported.eq("both").to_numpy() & flagged[dup]
        if superseded.any():
            for src, n in ey.loc[superseded, "_source"].value_counts().sort_index().items():
                audit.append(
                    {
                        "source": src,
                        "table": "enterprise_year",
                        "step": "dropped",
                        "rows": int(n),
                        "reason": "recalled year superseded by the row reported for that year",
                    }
                )
            ey, keyframe = ey[~superseded], keyframe[~superseded]
            dup = keyframe.duplicated(keep=False).to_numpy()
            if not dup.any():
                return ey, ey.iloc[0:0].copy(), audit
    sub = ey[dup].assign(_k1=keyframe["enterprise_id"][dup], _k2=keyframe["year"][dup])
    nun = sub.groupby(["_k1", "_k2"])[compare].nunique(dropna=False) if compare else None
    differ_keys = nun.index[(nun > 1).any(axis=1)] if nun is not None else pd.Index([])
    in_conflict = pd.MultiIndex.from_frame(sub[["_k1", "_k2"]]).isin(differ_keys)
    conflict_rows = sub[in_conflict]
    identical_later = sub[~in_conflict].duplicated(["_k1", "_k2"], keep="first")
    drop_idx = sub[~in_conflict].index[identical_later.to_numpy()]
    for src, n in ey.loc[drop_idx, "_source"].value_counts().sort_index().items():
        audit.append(
            {
                "source": src,
                "table": "enterprise_year",
                "step": "dropped",
                "rows": int(n),
                "reason": "duplicate enterprise-year reported with identical values (kept once)",
            }
        )
    rejects = ey.iloc[0:0].copy()
    if len(conflict_rows):
        details = []
        for (eid, year), grp in list(conflict_rows.groupby(["_k1", "_k2"]))[:10]:
            cols = [c for c in compare if grp[c].nunique(dropna=False) > 1]
            where = ", ".join(f"{s} row {r}" for s, r in zip(grp["_source"], grp["_source_row"], strict=True))
            details.append(f"  - enterprise {eid}, year {int(year)}: {', '.join(cols)} differ ({where})")
        n_keys = conflict_rows.groupby(["_k1", "_k2"]).ngroups
        message = (
            f"enterprise_year.enterprise_id+year: duplicate enterprise-year with different values: "
            f"{n_keys} enterprise-year(s), {len(conflict_rows)} rows:\n" + "\n".join(details)
        )
        if mode == "strict":
            raise SchemaError(message)
        rejects = conflict_rows.drop(columns=["_k1", "_k2"]).copy()
        diff_cols = {}
        for (eid, year), grp in conflict_rows.groupby(["_k1", "_k2"]):
            diff_cols[(eid, year)] = ", ".join(c for c in compare if grp[c].nunique(dropna=False) > 1)
        rejects["_reject_reason"] = [
            f"enterprise_id+year: duplicate with different values in {diff_cols[(a, b)]}"
            for a, b in zip(conflict_rows["_k1"], conflict_rows["_k2"], strict=True)
        ]
        for (src, why), n in rejects.groupby(["_source", "_reject_reason"]).size().items():
            audit.append({"source": src, "table": "enterprise_year", "step": "rejected", "rows": int(n), "reason": why})
    keep = ey.index.difference(drop_idx).difference(conflict_rows.index)
    return ey.loc[keep], rejects, audit


def _check_params(specs: list[MappingSpec], params: dict[str, Any]) -> None:
    """A parameter no mapping reads is a mistake (a typo, or the wrong mapping): say so."""
    used = set().union(*(s.params_used() for s in specs))
    unused = sorted(set(params) - used)
    if unused:
        raise MappingError(
            f"parameter(s) {', '.join(unused)} given (--set) but not used by the mapping(s) "
            f"{', '.join(sorted({s.name for s in specs}))}; they take: {', '.join(sorted(used)) or 'no parameters'}"
        )


def _spec_for(mapping: Any, i: int, n_files: int) -> MappingSpec:
    if isinstance(mapping, MappingSpec):
        return mapping
    if isinstance(mapping, str | Path):
        return load_mapping(mapping)
    if isinstance(mapping, Sequence):
        if len(mapping) == 1:
            return _spec_for(mapping[0], 0, 1)
        if len(mapping) != n_files:
            raise MappingError(
                f"give one mapping for all files or one per file: {len(mapping)} mappings for {n_files} files"
            )
        return _spec_for(mapping[i], i, n_files)
    raise MappingError(f"mapping must be a path or a MappingSpec, not {type(mapping).__name__}")


def normalize(
    files: str | Path | Sequence[str | Path],
    mapping: Any,
    mode: str = "strict",
    deflator: pd.DataFrame | str | Path | None = None,
    progress: bool = False,
    cluster_year: bool = True,
    params: dict[str, Any] | None = None,
) -> Panel:
    """Harmonize survey source files into one validated canonical Panel.

    Parameters
    ----------
    files : path or list of paths
        Source files (CSV, Excel, Stata, SPSS, Parquet), one survey round each.
    mapping : path, MappingSpec, or list of them
        One mapping for all files, or one per file.
    mode : {"strict", "quarantine"}
        ``strict`` raises :class:`SchemaError` listing every violation; ``quarantine`` moves failing
        rows to ``panel.rejects`` with their reasons and keeps the rest.
    deflator : DataFrame or path, optional
        A deflator table (country, year, price_index) that overrides the mappings' ``deflate.deflator``
        and is stored as the panel's ``deflator`` table.
    progress : bool
        Show a progress bar over files.
    params : dict, optional
        Values for the mappings' ``param`` columns (for example ``{"country": "KEN", "year": 2013}``).
    cluster_year : bool
        Compute the cluster-year aggregates (default True).

    Returns
    -------
    Panel
        Typed, validated tables; ``panel.audit`` accounts for every source row.
    """
    from cluster_econ.schema.validate import _validate

    if mode not in ("strict", "quarantine"):
        raise ConfigError(f"normalize: mode must be 'strict' or 'quarantine', not {mode!r}")
    paths = [files] if isinstance(files, str | Path) else list(files)
    if not paths:
        raise MappingError("no source files given")
    defl_df = None
    if deflator is not None:
        defl_df = deflator if isinstance(deflator, pd.DataFrame) else read_source(deflator).data
    pieces: dict[str, list[pd.DataFrame]] = {}
    audit: list[dict[str, Any]] = []
    sources_meta: list[dict[str, Any]] = []
    var_labels: dict[str, Any] = {}
    val_labels: dict[str, Any] = {}
    params = dict(params or {})
    specs = [_spec_for(mapping, i, len(paths)) for i in range(len(paths))]
    _check_params(specs, params)
    iterator: Any = enumerate(paths)
    if progress:
        from tqdm import tqdm

        iterator = tqdm(iterator, total=len(paths), desc="read", unit="file")
    sources: list[SourceTable | None] = [read_source(path, options=specs[i].read_options()) for i, path in iterator]
    # identifiers stored as numbers in one round and as text in another (audit notes say what was done)
    id_widths, link_notes = link_identifiers(sources, specs, params)  # type: ignore[arg-type]
    for i, path in enumerate(paths):
        spec, source = specs[i], sources[i]
        assert source is not None
        sources[i] = None  # the mapped frame keeps what it needs
        wide, notes = map_source(source, spec, defl_df, params, id_widths[i])
        notes += [note for j, note in link_notes if j == i]
        for note in notes:
            audit.append({"source": source.name, "table": spec.unit, **note})
        audit.append(
            {
                "source": source.name,
                "table": spec.unit,
                "step": "read",
                "rows": len(source.data),
                "reason": f"mapping {spec.name}",
            }
        )
        for table, df in split_tables(wide, spec).items():
            if table in ("enterprise", "manager"):
                df = df.copy(deep=False)
                df["_order"] = i
            pieces.setdefault(table, []).append(df)
        sources_meta.append(
            {
                "file": source.name,
                "path": str(path),
                "format": source.format,
                "sha256": source.sha256,
                "rows": len(source.data),
                "encoding": source.encoding,
                "delimiter": source.delimiter,
                "header_row": source.header_row,
                "mapping": spec.path,
                "mapping_name": spec.name,
                "mapping_sha256": spec.sha256,
            }
        )
        if source.variable_labels:
            var_labels[source.name] = source.variable_labels
        if source.value_labels:
            val_labels[source.name] = {k: {str(a): b for a, b in v.items()} for k, v in source.value_labels.items()}
    tables: dict[str, pd.DataFrame] = {}
    rejects: dict[str, pd.DataFrame] = {}
    for table, dfs in pieces.items():
        df = _fresh_index(dfs[0]) if len(dfs) == 1 else pd.concat(dfs, ignore_index=True)
        if table == "enterprise":
            df, notes = _latest_per_key(df, ["enterprise_id"], table)
            audit.extend({"source": "(all)", **n} for n in notes)
        elif table == "manager":
            df, notes = _latest_per_key(df, ["enterprise_id", "manager_id"], table)
            audit.extend({"source": "(all)", **n} for n in notes)
        elif table == "enterprise_year":
            df, rej, dup_audit = _resolve_duplicates(df, mode)
            audit.extend(dup_audit)
            if len(rej):
                rejects[table] = rej
        tables[table] = _fresh_index(df)
    if defl_df is not None:
        tables["deflator"] = defl_df.copy()  # validation may reuse its columns: never the caller's frame
    for table, df in tables.items():
        if "_source" in df.columns:
            for src, n in df["_source"].value_counts().sort_index().items():
                audit.append({"source": src, "table": table, "step": "kept", "rows": int(n), "reason": ""})
    if "enterprise" not in tables:
        raise MappingError("the sources produced no enterprise table: map enterprise_id and cluster_id")
    if "enterprise_year" not in tables:
        tables["enterprise_year"] = pd.DataFrame(columns=["enterprise_id", "year"])
    metadata = {
        "sources": sources_meta,
        "variable_labels": var_labels,
        "value_labels": val_labels,
        "label": ", ".join(s["file"] for s in sources_meta),
    }
    panel = Panel(tables, pd.DataFrame(audit), rejects, metadata)
    # nothing else holds the untyped tables: drop the references so that memory is freed as the
    # validation replaces them, and let it reuse the columns that already have their type
    del tables, pieces, dfs, df, wide, source
    report = _validate(panel, mode=mode, share=True)
    del panel
    panel = report.panel
    if cluster_year and panel.has_column("enterprise", "cluster_id"):
        panel = panel.with_cluster_year()
    return panel


def dataset_hash(panel: Panel) -> str:
    """Hash of the canonical tables' contents (for manifests and result provenance)."""
    h = hashlib.sha256()
    for name in schema.TABLES:
        df = panel.get(name)
        if df is not None:
            h.update(name.encode())
            h.update(pd.util.hash_pandas_object(df.reset_index(drop=True), index=False).to_numpy().tobytes())
    return h.hexdigest()[:16]
