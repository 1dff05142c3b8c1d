"""Validation of canonical tables against the Table Schema JSON.

Every violation is collected before anything is reported: the table, column, rule, how many rows
break it, the first row numbers and sample values. Three modes:

``strict``
    raise :class:`~cluster_econ.errors.SchemaError` listing every violation.
``quarantine``
    move failing rows to ``panel.rejects[table]`` with a ``_reject_reason`` and keep the rest
    (children of a rejected enterprise are rejected too, so foreign keys still hold).
``report``
    return the report and change nothing.

Validation also casts columns to their schema types (``number`` to float, ``integer`` to
nullable Int64, ``boolean`` to nullable boolean, ``string`` to object). A value that cannot be cast
(text in a numeric column) is a ``type`` violation, never a silent missing value.

Row numbers are the ``_source_row`` of a row when harmonization recorded it (the line's data-row
number in its source file, named with ``_source``), else the 1-based position in the table.

Performance: text casts and patterns are computed once per distinct value; ID columns cast from
numbers keep their integer codes, which the primary- and foreign-key checks reuse instead of hashing
the text again; the typed table is assembled from its columns without copying the ones that do not
change. ``normalize`` validates a panel nobody else holds, so it also lets columns already of their
type be reused (``_validate(..., share=True)``); :func:`validate` itself returns tables that share
nothing with its input.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cluster_econ import schema
from cluster_econ.errors import ConfigError, InputError, SchemaError

if TYPE_CHECKING:
    from cluster_econ.panel import Panel

MODES = ("strict", "quarantine", "report")
MAX_ROWS_SHOWN = 10
BOOL_TRUE = {"true", "yes", "y", "1", "1.0", "t"}
BOOL_FALSE = {"false", "no", "n", "0", "0.0", "f"}


@dataclass(frozen=True)
class Violation:
    """One rule broken by one or more rows of one column (or key)."""

    table: str
    column: str
    rule: str
    count: int
    rows: tuple[Any, ...]
    values: tuple[Any, ...]
    sources: tuple[str, ...] = ()

    def describe(self) -> str:
        rows = ", ".join(str(r) for r in self.rows)
        more = f" (first {len(self.rows)})" if self.count > len(self.rows) else ""
        vals = ", ".join(repr(v) for v in self.values)
        src = f" in {', '.join(self.sources)}" if self.sources else ""
        return f"{self.table}.{self.column}: {self.rule}: {self.count} row(s){src}, rows {rows}{more}; values {vals}"


@dataclass
class ValidationReport:
    """All violations found, and the validated (typed, possibly quarantined) Panel."""

    violations: list[Violation] = field(default_factory=list)
    panel: Panel | None = None
    rejected: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.violations

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            [
                {
                    "table": v.table,
                    "column": v.column,
                    "rule": v.rule,
                    "count": v.count,
                    "rows": list(v.rows),
                    "values": [str(x) for x in v.values],
                    "sources": list(v.sources),
                }
                for v in self.violations
            ],
            columns=["table", "column", "rule", "count", "rows", "values", "sources"],
        )

    def __str__(self) -> str:
        if self.ok:
            return "validation passed: no violations"
        head = f"{len(self.violations)} schema violation(s):"
        return "\n".join([head, *("  - " + v.describe() for v in self.violations)])


# -- row bookkeeping ----------------------------------------------------------------------------
def _row_labels(df: pd.DataFrame, mask: np.ndarray) -> tuple[tuple[Any, ...], tuple[str, ...]]:
    idx = np.flatnonzero(mask)[:MAX_ROWS_SHOWN]
    if "_source_row" in df.columns:
        src_rows = df["_source_row"].to_numpy()[idx]
        rows = tuple(int(r) if pd.notna(r) else int(i) + 1 for r, i in zip(src_rows, idx, strict=True))
    else:
        rows = tuple(int(i) + 1 for i in idx)
    sources: tuple[str, ...] = ()
    if "_source" in df.columns:
        sources = tuple(sorted({str(s) for s in df["_source"].to_numpy()[np.flatnonzero(mask)] if pd.notna(s)}))[:5]
    return rows, sources


class _Collector:
    def __init__(self) -> None:
        self.violations: list[Violation] = []
        self.bad: dict[str, np.ndarray] = {}
        self.reasons: dict[str, list[tuple[np.ndarray, str]]] = {}
        # (table, column) -> (codes, distinct texts) of text columns cast from numbers: the key checks
        # reuse them instead of hashing a million strings again
        self.codes: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}

    def add(
        self,
        table: str,
        df: pd.DataFrame,
        column: str,
        rule: str,
        mask: np.ndarray,
        values: pd.Series | np.ndarray | None = None,
        reject: bool = True,
    ) -> None:
        mask = np.asarray(mask, dtype=bool)
        n = int(mask.sum())
        if n == 0:
            return
        rows, sources = _row_labels(df, mask)
        if values is None:
            values = df[column] if column in df.columns else pd.Series([None] * len(df))
        vals = np.asarray(values, dtype=object)[np.flatnonzero(mask)[:5]]
        self.violations.append(Violation(table, column, rule, n, rows, tuple(vals.tolist()), sources))
        if reject:
            cur = self.bad.get(table)
            self.bad[table] = mask.copy() if cur is None else (cur | mask)
            self.reasons.setdefault(table, []).append((mask, f"{column}: {rule}"))


# -- casting ------------------------------------------------------------------------------------
def _per_distinct(series: pd.Series, fn: Any, codes_out: dict[str, Any] | None = None) -> pd.Series:
    """``fn`` of each distinct non-missing value, spread over the rows (missing gives None). ``fn``
    must give different values for different inputs; the codes and values go to ``codes_out``."""
    codes, uniques = pd.factorize(series)
    values = np.array([*(fn(u) for u in uniques.tolist()), None], dtype=object)
    if codes_out is not None:
        codes_out["codes"], codes_out["values"] = codes, values[:-1]
    return pd.Series(values[codes], index=series.index, dtype=object)


def _cast_column(
    series: pd.Series, ftype: str, share: bool = False, codes_out: dict[str, Any] | None = None
) -> tuple[pd.Series, np.ndarray]:
    """Cast to the schema type; return the cast series and a mask of values that failed. With
    ``share``, a column that already has the type is returned as it is, not copied."""
    none = np.zeros(len(series), bool)
    if (
        ftype == "integer"
        and isinstance(series.dtype, np.dtype)
        and series.dtype.kind in "iu"
        and series.dtype.itemsize <= 4
    ):
        # small machine integers are exact in float64, so the float route below gives these same values
        values = series.to_numpy().astype(np.int64)
        return pd.Series(pd.arrays.IntegerArray(values, np.zeros(len(values), bool)), index=series.index), none
    if ftype == "number" and isinstance(series.dtype, np.dtype) and series.dtype.kind in "iuf":
        return series.astype("float64", copy=not share), none  # machine numbers: nothing can fail
    notna = series.notna().to_numpy() if ftype in ("number", "integer", "boolean") else none
    if ftype in ("number", "integer"):
        if pd.api.types.is_bool_dtype(series.dtype):
            num = series.astype("float64")
        elif pd.api.types.is_numeric_dtype(series.dtype):
            num = pd.to_numeric(series, errors="coerce").astype("float64", copy=not share)
        else:
            stripped = series.astype("string").str.strip() if series.dtype == object else series
            num = pd.to_numeric(stripped, errors="coerce").astype("float64")
        bad = notna & num.isna().to_numpy()
        if ftype == "integer":
            vals = num.to_numpy()
            frac = np.isfinite(vals) & (np.floor(vals) != vals)
            bad |= frac
            num = num.where(~frac)
            return num.astype("Int64"), bad
        return num, bad
    if ftype == "boolean":
        if pd.api.types.is_bool_dtype(series.dtype) or (
            series.dtype == object and pd.api.types.infer_dtype(series, skipna=True) in ("boolean", "empty")
        ):
            if series.dtype != object:
                return series.astype("boolean"), none
            # all values are booleans or missing: build the array directly (astype checks each value)
            values = series.to_numpy(dtype=object)
            missing = pd.isna(values)
            data = np.zeros(len(values), bool)
            data[~missing] = values[~missing].astype(bool)
            return pd.Series(pd.arrays.BooleanArray(data, missing), index=series.index), none
        text = series.astype("string").str.strip().str.lower()
        out = pd.array([pd.NA] * len(series), dtype="boolean")
        t = text.isin(BOOL_TRUE).fillna(False).to_numpy(dtype=bool)
        f = text.isin(BOOL_FALSE).fillna(False).to_numpy(dtype=bool)
        out[t] = True
        out[f] = False
        bad = notna & ~(t | f)
        return pd.Series(out, index=series.index), bad
    # string (and anything else): keep text, missing stays missing; numbers are converted once per
    # distinct value (ids repeat on every row of an enterprise)
    if pd.api.types.is_float_dtype(series.dtype):
        # ids read as floats (1.0) become "1"
        return _per_distinct(series, lambda v: f"{v:.0f}" if float(v).is_integer() else repr(v), codes_out), none
    if pd.api.types.is_integer_dtype(series.dtype):
        return _per_distinct(series, str, codes_out), none
    missing = series.isna()
    out = series.copy() if series.dtype == object and not missing.any() else series.astype(object).where(~missing, None)
    if pd.api.types.infer_dtype(out, skipna=True) not in ("string", "empty"):
        out = out.map(lambda v: v if v is None or isinstance(v, str) else str(v))
    return out, none


def _check_table(name: str, df: pd.DataFrame, col: _Collector, share: bool = False) -> pd.DataFrame:
    ts = schema.load(name)
    # the typed table is assembled from the casts and the other columns without setting columns one
    # by one (each set would copy the column); unless ``share``, it is then copied whole, so that it
    # shares nothing with the caller's table
    df = df.copy(deep=False)
    df.index = pd.RangeIndex(len(df))
    by_dict = not df.columns.has_duplicates
    columns = {c: df[c] for c in df.columns} if by_dict else {}
    for f in ts.fields:
        if f.name not in df.columns:
            if f.required:
                col.add(name, df, f.name, "required column is missing", np.ones(len(df), bool), reject=False)
                if len(df) == 0:
                    col.violations.append(Violation(name, f.name, "required column is missing", 0, (), ()))
            continue
        raw = df[f.name]
        found: dict[str, Any] = {}
        cast, bad = _cast_column(raw, f.type, share, found)
        if found:
            col.codes[(name, f.name)] = (found["codes"], found["values"])
        col.add(name, df, f.name, f"type: not a valid {f.type}", bad, values=raw)
        if by_dict:
            columns[f.name] = cast
        else:
            df[f.name] = cast
        c = f.constraints
        if c.get("required"):
            # a text column cast from numbers knows its missing values from its codes
            missing = found["codes"] < 0 if found else cast.isna().to_numpy()
            col.add(name, df, f.name, "required: missing value", (missing & ~bad), values=raw)
        if f.type in ("number", "integer"):
            if cast.dtype == np.float64:
                vals = cast.to_numpy()  # read only; missing values are already NaN
            else:
                vals = pd.to_numeric(cast, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            with np.errstate(invalid="ignore"):
                if "minimum" in c:
                    col.add(name, df, f.name, f"minimum: below {c['minimum']}", vals < c["minimum"], values=raw)
                if "maximum" in c:
                    col.add(name, df, f.name, f"maximum: above {c['maximum']}", vals > c["maximum"], values=raw)
                if "exclusiveMinimum" in c:
                    col.add(
                        name,
                        df,
                        f.name,
                        f"exclusiveMinimum: not above {c['exclusiveMinimum']}",
                        vals <= c["exclusiveMinimum"],
                        values=raw,
                    )
        if "enum" in c:
            present = cast.notna().to_numpy()
            allowed = cast.isin(c["enum"]).to_numpy()
            col.add(name, df, f.name, f"enum: not one of {c['enum']}", present & ~allowed, values=raw)
        if "pattern" in c:
            rx = re.compile(c["pattern"])
            present = cast.notna().to_numpy()
            codes, uniques = pd.factorize(cast)
            ok_u = np.array([*(bool(rx.fullmatch(v)) if isinstance(v, str) else True for v in uniques), True])
            ok = ok_u[codes]
            col.add(name, df, f.name, f"pattern: does not match {c['pattern']}", present & ~ok, values=raw)
    if by_dict:
        df = pd.DataFrame(columns, index=df.index, copy=False)
    if not share:
        df = df.copy()
    # primary key
    pk = [k for k in ts.primary_key if k in df.columns]
    if pk and len(pk) == len(ts.primary_key) and len(df):
        # one integer per distinct key (missing values equal each other, as in DataFrame.duplicated)
        key, n_key = _codes_of(name, df, pk[0], col)
        for k in pk[1:]:
            more, n_more = _codes_of(name, df, k, col)
            if n_key * n_more < 2**62:
                key, n_key = key * n_more + more, n_key * n_more
            else:
                key, uniques = pd.factorize(key * n_more + more)
                key, n_key = key.astype(np.int64), len(uniques)
        if n_key <= 8 * len(df) + 1024:
            # few possible keys: count them directly; look for the later copies only if there are any
            dup = np.bincount(key, minlength=n_key)[key] > 1
            later = pd.Series(key).duplicated(keep="first").to_numpy() if dup.any() else np.zeros(len(df), bool)
        else:
            keys = pd.Series(key)
            dup = keys.duplicated(keep=False).to_numpy()
            later = keys.duplicated(keep="first").to_numpy()
        if dup.any():
            keyvals = df[pk].astype(str).agg("/".join, axis=1)
            col.add(name, df, "+".join(pk), "primaryKey: duplicate key", dup, values=keyvals, reject=False)
            # quarantine keeps the first occurrence
            col.bad[name] = later if name not in col.bad else (col.bad[name] | later)
            col.reasons.setdefault(name, []).append((later, f"{'+'.join(pk)}: primaryKey: duplicate key"))
    # cross-field rules
    for rule in ts.cross_field_rules:
        _cross_field(name, df, rule, col)
    return df


def _codes_of(table: str, df: pd.DataFrame, column: str, col: _Collector) -> tuple[np.ndarray, int]:
    """Integer codes of a column's values (missing values share one code) and their count."""
    if (table, column) in col.codes:
        codes, values = col.codes[(table, column)]
        return np.where(codes < 0, len(values), codes).astype(np.int64), len(values) + 1
    codes, uniques = pd.factorize(df[column], use_na_sentinel=False)
    return codes.astype(np.int64), len(uniques) + 1


def _cross_field(name: str, df: pd.DataFrame, rule: dict[str, Any], col: _Collector) -> None:
    if "sum" in rule:
        cols = [c for c in rule["sum"] if c in df.columns]
        if not cols:
            return
        total = sum(pd.to_numeric(df[c], errors="coerce").fillna(0).to_numpy(dtype=float) for c in cols)
        mask = total > float(rule["right"])
        col.add(name, df, "+".join(cols), f"{rule['name']}: {rule['description']}", mask, values=total)
        return
    left, right = rule["left"], rule["right"]
    if left not in df.columns or right not in df.columns:
        return
    lv = pd.to_numeric(df[left], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    rv = pd.to_numeric(df[right], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    ops = {">=": np.greater_equal, "<=": np.less_equal, ">": np.greater, "<": np.less}
    with np.errstate(invalid="ignore"):
        ok = ops[rule["op"]](lv, rv)
    mask = np.isfinite(lv) & np.isfinite(rv) & ~ok
    if not mask.any():
        return
    pairs = pd.Series([f"{left}={a:g}, {right}={b:g}" for a, b in zip(lv, rv, strict=True)])
    col.add(name, df, f"{left},{right}", f"{rule['name']}: {rule['description']}", mask, values=pairs)


def _as_key(series: pd.Series) -> pd.Series:
    if series.dtype == object and pd.api.types.infer_dtype(series, skipna=True) in ("string", "empty"):
        return series
    return series.astype(str).where(series.notna(), None)


def _key_index(df: pd.DataFrame, fields: list[str]) -> pd.Index:
    cols = [_as_key(df[f]) for f in fields]
    return cols[0].pipe(pd.Index) if len(cols) == 1 else pd.MultiIndex.from_arrays(cols)


def _check_foreign_keys(tables: dict[str, pd.DataFrame], col: _Collector, keep: dict[str, np.ndarray]) -> None:
    for name, df in tables.items():
        ts = schema.load(name)
        for fk in ts.foreign_keys:
            fields = fk["fields"]
            ref_table = fk["reference"]["resource"] or name
            ref_fields = fk["reference"]["fields"]
            if ref_table not in tables or any(f not in df.columns for f in fields):
                continue
            ref = tables[ref_table]
            if ref_table in keep:
                ref = ref[keep[ref_table]]
            if any(f not in ref.columns for f in ref_fields):
                continue
            if len(fields) == 1 and (name, fields[0]) in col.codes:
                # look up each distinct id once, then spread the answer over the rows
                codes, values = col.codes[(name, fields[0])]
                present = codes >= 0
                hit = pd.Index(values).isin(_key_index(ref, ref_fields))
                found = np.append(hit, False)[codes]
            else:
                present = df[fields].notna().all(axis=1).to_numpy()
                found = _key_index(df, fields).isin(_key_index(ref, ref_fields))
            mask = present & ~found
            if not mask.any():
                continue
            target = f"{ref_table}.{'+'.join(ref_fields)}"
            col.add(
                name,
                df,
                "+".join(fields),
                f"foreignKey: no matching {target}",
                mask,
                values=df[fields].astype(str).agg("/".join, axis=1) if len(fields) > 1 else df[fields[0]],
            )


def validate(panel_or_dir: Panel | str | Path, mode: str = "strict") -> ValidationReport:
    """Validate every canonical table of a Panel (or a Panel directory).

    Parameters
    ----------
    panel_or_dir : Panel or path
        The panel, or a directory written by ``Panel.to_parquet``.
    mode : {"strict", "quarantine", "report"}
        See the module docstring.

    Returns
    -------
    ValidationReport
        ``.violations`` (empty when valid), ``.panel`` (typed; in quarantine mode without the failing
        rows, which are in ``panel.rejects``), ``.rejected`` counts per table.

    Raises
    ------
    SchemaError
        In strict mode, if there is any violation; the message lists all of them.
    """
    return _validate(panel_or_dir, mode)


def _validate(panel_or_dir: Panel | str | Path, mode: str = "strict", share: bool = False) -> ValidationReport:
    """:func:`validate`; with ``share`` (for a panel nobody else holds, as in ``normalize``) the typed
    tables reuse the input's columns that already have their type instead of copying them."""
    from cluster_econ.panel import Panel, read_panel

    if mode not in MODES:
        raise ConfigError(f"validate: mode must be one of {', '.join(MODES)}, not {mode!r}")
    panel = read_panel(str(panel_or_dir)) if isinstance(panel_or_dir, str | Path) else panel_or_dir
    if not isinstance(panel, Panel):
        raise InputError(f"validate: expected a cluster_econ Panel or a panel folder, got {type(panel).__name__}; "
                         "build one with cluster_econ.Panel({'enterprise': ..., 'enterprise_year': ...})")
    col = _Collector()
    typed: dict[str, pd.DataFrame] = {}
    for name in schema.TABLES:
        df = panel.get(name)
        if df is None:
            continue
        typed[name] = _check_table(name, df, col, share)
    # rows rejected so far, then foreign keys against the kept parents (cascade)
    keep = {n: ~col.bad.get(n, np.zeros(len(df), bool)) for n, df in typed.items()}
    _check_foreign_keys(typed, col, keep if mode == "quarantine" else {})
    report = ValidationReport(violations=col.violations)
    if mode == "strict" and col.violations:
        raise SchemaError(str(report), violations=report.to_frame())
    if mode == "quarantine":
        kept, rejects = {}, dict(panel.rejects)
        audit_rows = []
        for name, df in typed.items():
            bad = col.bad.get(name, np.zeros(len(df), bool))
            if bad.any():
                reasons = np.array([""] * len(df), dtype=object)
                for mask, why in col.reasons.get(name, []):
                    reasons[mask] = np.where(reasons[mask] == "", why, reasons[mask] + "; " + why)
                rej = df[bad].copy()
                rej["_reject_reason"] = reasons[bad]
                if "_source_row" not in rej.columns:
                    rej["_source_row"] = np.flatnonzero(bad) + 1
                rejects[name] = pd.concat([rejects[name], rej]) if name in rejects else rej
                report.rejected[name] = int(bad.sum())
                for (src, why), n in (
                    rej.groupby([rej.get("_source", pd.Series("", index=rej.index)).fillna(""), "_reject_reason"])
                    .size()
                    .items()
                ):
                    audit_rows.append({"source": src, "table": name, "step": "rejected", "rows": int(n), "reason": why})
            kept[name] = df[~bad].reset_index(drop=True) if bad.any() else df
        audit = panel.audit
        if audit_rows:
            audit = _rebalance_audit(audit, pd.DataFrame(audit_rows))
        report.panel = Panel(kept, audit, rejects, panel.metadata)
    else:
        report.panel = Panel(typed, panel.audit, panel.rejects, panel.metadata)
    return report


def _rebalance_audit(audit: pd.DataFrame, rejected: pd.DataFrame) -> pd.DataFrame:
    """Add rejected rows to the audit and take them off the ``kept`` count of their source."""
    audit = audit.copy()
    for (src, table), grp in rejected.groupby(["source", "table"]):
        n = int(grp["rows"].sum())
        if audit.empty:
            continue
        hit = (audit["step"] == "kept") & (audit["table"] == table) & (audit["source"] == src)
        if hit.any():
            i = audit.index[hit][0]
            audit.loc[i, "rows"] = int(audit.loc[i, "rows"]) - n
    return pd.concat([audit, rejected], ignore_index=True)
