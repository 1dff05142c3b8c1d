"""Validation of canonical tables against the Table Schema JSON.

Every violation is collected before anything is reported: the table, column, rule, how many rows
break it, the first row numbers and sample values. Three modes:

``strict``
    raise one :class:`~cluster_econ.errors.SchemaError` listing every violation of every kind
    (types, ranges, infinite numbers, patterns, enums, cross-field rules, duplicate and foreign keys,
    and the manifest of a panel folder).
``quarantine``
    keep what is good (:mod:`cluster_econ.schema.quarantine`): a value that breaks the rule of a
    field that is neither a key nor required is set missing and logged cell by cell in
    ``panel.rejects["cells"]`` (table, column, rule, row, source, key, original value); a row is
    rejected (``panel.rejects[table]``, with its original values and ``_reject_reason``) only when a
    key or required field fails; rows whose enterprise was rejected follow it and are counted apart
    as foreign-key cascades.
``report``
    return the report and change nothing.

Validation also casts columns to their schema types (:mod:`cluster_econ.schema.casting`). A value
that cannot be cast (text in a numeric column) is a ``type`` violation, never a silent missing value;
an infinite number breaks the ``finite`` rule of every numeric field.

Row numbers are the ``_source_row`` of a row when harmonization recorded it (the line's data-row
number in its source file, named with ``_source``), else the 1-based position in the table.

Performance: ID columns cast from numbers keep their integer codes, which the primary- and
foreign-key checks reuse instead of hashing the text again; the typed table is assembled from its
columns without copying the ones that do not change. ``normalize`` validates a panel nobody else
holds, so it also lets columns already of their type be reused (``_validate(..., share=True)``);
:func:`validate` itself returns tables that share nothing with its input.
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
from cluster_econ.schema.casting import cast_column

if TYPE_CHECKING:
    from cluster_econ.panel import Panel

MODES = ("strict", "quarantine", "report")
MAX_ROWS_SHOWN = 10
# what a violation does in quarantine: set the cells missing, reject the row, reject it because its
# parent was rejected, or nothing can be done (a required column is absent)
SCOPES = ("cell", "row", "cascade", "table")


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
    scope: str = "row"
    detail: str = ""

    def describe(self) -> str:
        rows = ", ".join(str(r) for r in self.rows)
        more = f" (first {len(self.rows)})" if self.count > len(self.rows) else ""
        vals = ", ".join(repr(v) for v in self.values)
        src = f" in {', '.join(self.sources)}" if self.sources else ""
        where = f", rows {rows}{more}" if self.rows else ""
        values = f"; values {vals}" if self.values else ""
        text = f"{self.table}.{self.column}: {self.rule}: {self.count} row(s){src}{where}{values}"
        return text + "".join("\n      " + line.strip() for line in self.detail.splitlines())


@dataclass
class ValidationReport:
    """All violations found, and the validated (typed, possibly quarantined) Panel.

    ``rejected`` counts the rows rejected per table for their own values, ``cascaded`` those
    rejected because their enterprise was, ``cells`` the values set missing per table.
    """

    violations: list[Violation] = field(default_factory=list)
    panel: Panel | None = None
    rejected: dict[str, int] = field(default_factory=dict)
    cascaded: dict[str, int] = field(default_factory=dict)
    cells: dict[str, int] = field(default_factory=dict)

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
                    "scope": v.scope,
                }
                for v in self.violations
            ],
            columns=["table", "column", "rule", "count", "rows", "values", "sources", "scope"],
        )

    def quarantine_summary(self) -> str:
        """One line per table of what quarantine did (empty when it did nothing)."""
        lines = []
        for t in sorted(set(self.rejected) | set(self.cascaded) | set(self.cells)):
            parts = []
            if self.cells.get(t):
                parts.append(f"{self.cells[t]} value(s) set missing (rejects/cells)")
            if self.rejected.get(t):
                parts.append(f"{self.rejected[t]} row(s) rejected")
            if self.cascaded.get(t):
                parts.append(f"{self.cascaded[t]} row(s) rejected by foreign-key cascade")
            lines.append(f"  {t}: " + ", ".join(parts))
        return "\n".join(lines)

    def __str__(self) -> str:
        if self.ok:
            return "validation passed: no violations"
        head = f"{len(self.violations)} schema violation(s):"
        return "\n".join([head, *("  - " + v.describe() for v in self.violations)])


# -- row bookkeeping ----------------------------------------------------------------------------
def row_numbers(df: pd.DataFrame, idx: np.ndarray) -> np.ndarray:
    """Row numbers of positions ``idx``: ``_source_row`` where recorded, else the 1-based position."""
    pos = np.asarray(idx, dtype=np.int64) + 1
    if "_source_row" not in df.columns:
        return pos
    src = pd.to_numeric(df["_source_row"], errors="coerce").to_numpy(dtype=float)[idx]
    return np.where(np.isnan(src), pos, np.nan_to_num(src)).astype(np.int64)


def _row_labels(df: pd.DataFrame, mask: np.ndarray) -> tuple[tuple[Any, ...], tuple[str, ...]]:
    hit = np.flatnonzero(mask)
    rows = tuple(int(r) for r in row_numbers(df, hit[:MAX_ROWS_SHOWN]))
    sources: tuple[str, ...] = ()
    if "_source" in df.columns:
        sources = tuple(sorted({str(s) for s in df["_source"].to_numpy()[hit] if pd.notna(s)}))[:5]
    return rows, sources


@dataclass
class Finding:
    """Rows of one table that break one rule, and what quarantine does with them (``scope``):
    ``columns`` are the cells set missing (scope ``cell``) or the columns the rule is about."""

    columns: tuple[str, ...]
    rule: str
    mask: np.ndarray
    scope: str

    @property
    def reason(self) -> str:
        return f"{'+'.join(self.columns)}: {self.rule}"


class _Collector:
    def __init__(self) -> None:
        self.violations: list[Violation] = []
        self.findings: dict[str, list[Finding]] = {}
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
        scope: str = "row",
        cells: tuple[str, ...] | None = None,
    ) -> None:
        mask = np.asarray(mask, dtype=bool)
        n = int(mask.sum())
        if n == 0:
            return
        rows, sources = _row_labels(df, mask)
        if values is None:
            values = df[column] if column in df.columns else pd.Series([None] * len(df))
        vals = np.asarray(values, dtype=object)[np.flatnonzero(mask)[:5]]
        self.violations.append(Violation(table, column, rule, n, rows, tuple(vals.tolist()), sources, scope))
        if scope != "table":
            self.findings.setdefault(table, []).append(Finding(cells or (column,), rule, mask, scope))

    def bad_rows(self, table: str, n: int) -> np.ndarray:
        """Rows of ``table`` that quarantine rejects (for their own values or by cascade)."""
        bad = np.zeros(n, bool)
        for f in self.findings.get(table, []):
            if f.scope in ("row", "cascade"):
                bad |= f.mask
        return bad


def _row_fields(ts: schema.TableSchema) -> set[str]:
    """Fields whose failure rejects the whole row: the primary key and the required fields."""
    return set(ts.primary_key) | {f.name for f in ts.fields if f.required}


# -- one table ----------------------------------------------------------------------------------
def _check_table(
    name: str, df: pd.DataFrame, col: _Collector, share: bool = False
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Cast and check one table; returns the typed table and the input (both indexed 0..n-1)."""
    ts = schema.load(name)
    row_fields = _row_fields(ts)
    # the typed table is assembled from the casts and the other columns without setting columns one
    # by one (each set would copy the column); unless ``share``, it is then copied whole, so that it
    # shares nothing with the caller's table
    df = df.copy(deep=False)
    df.index = pd.RangeIndex(len(df))
    by_dict = not df.columns.has_duplicates
    columns = {c: df[c] for c in df.columns} if by_dict else {}
    typed = df.copy(deep=False) if not by_dict else None
    failed: dict[str, np.ndarray] = {}  # cells that broke their own field's rules (for cross-field rules)
    for f in ts.fields:
        if f.name not in df.columns:
            if f.required:
                col.add(name, df, f.name, "required column is missing", np.ones(len(df), bool), scope="table")
                if len(df) == 0:
                    col.violations.append(Violation(name, f.name, "required column is missing", 0, (), (),
                                                    scope="table"))
            continue
        scope = "row" if f.name in row_fields else "cell"
        raw = df[f.name]
        cast = cast_column(raw, f.type, share)
        if cast.codes is not None:
            col.codes[(name, f.name)] = (cast.codes, cast.distinct)
        values = cast.values
        bad = cast.invalid.copy()
        col.add(name, df, f.name, f"type: not a valid {f.type}", cast.invalid, values=raw, scope=scope)
        col.add(name, df, f.name, "finite: infinite value", cast.infinite, values=raw, scope=scope)
        bad |= cast.infinite
        if by_dict:
            columns[f.name] = values
        else:
            typed[f.name] = values
        c = f.constraints
        if c.get("required"):
            # a text column cast from numbers knows its missing values from its codes
            missing = cast.codes < 0 if cast.codes is not None else values.isna().to_numpy()
            col.add(name, df, f.name, "required: missing value", missing & ~cast.invalid, values=raw, scope=scope)
        if f.type in ("number", "integer"):
            if values.dtype == np.float64:
                vals = values.to_numpy()  # read only; missing values are already NaN
            else:
                vals = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            finite = ~cast.infinite
            with np.errstate(invalid="ignore"):
                for key, rule, broken in (
                    ("minimum", "minimum: below", np.less),
                    ("maximum", "maximum: above", np.greater),
                    ("exclusiveMinimum", "exclusiveMinimum: not above", np.less_equal),
                ):
                    if key in c:
                        mask = broken(vals, c[key]) & finite
                        col.add(name, df, f.name, f"{rule} {c[key]}", mask, values=raw, scope=scope)
                        bad |= mask
        if "enum" in c:
            present = values.notna().to_numpy()
            allowed = values.isin(c["enum"]).to_numpy()
            mask = present & ~allowed
            col.add(name, df, f.name, f"enum: not one of {c['enum']}", mask, values=raw, scope=scope)
            bad |= mask
        if "pattern" in c:
            rx = re.compile(c["pattern"])
            codes, uniques = pd.factorize(values)
            ok_u = np.array([*(bool(rx.fullmatch(v)) if isinstance(v, str) else True for v in uniques), True])
            mask = (codes >= 0) & ~ok_u[codes]
            col.add(name, df, f.name, f"pattern: does not match {c['pattern']}", mask, values=raw, scope=scope)
            bad |= mask
        if bad.any():
            failed[f.name] = bad
    if by_dict:
        typed = pd.DataFrame(columns, index=df.index, copy=False)
    if not share:
        typed = typed.copy()
    _check_primary_key(name, ts, typed, df, col)
    for rule in ts.cross_field_rules:
        _cross_field(name, typed, df, rule, col, failed, row_fields)
    return typed, df


def _check_primary_key(name: str, ts: schema.TableSchema, typed: pd.DataFrame, raw: pd.DataFrame,
                       col: _Collector) -> None:
    """Rows that share a complete primary key with another row (every copy is flagged: which one is
    right is not known). Rows with a missing key part fail ``required`` instead."""
    pk = list(ts.primary_key)
    if not pk or any(k not in typed.columns for k in pk) or not len(typed):
        return
    # one integer per distinct key
    key, n_key, complete = _codes_of(name, typed, pk[0], col)
    for k in pk[1:]:
        more, n_more, more_complete = _codes_of(name, typed, k, col)
        complete &= more_complete
        if n_key * n_more < 2**62:
            key, n_key = key * n_more + more, n_key * n_more
        else:
            key, uniques = pd.factorize(key * n_more + more)
            key, n_key = key.astype(np.int64), len(uniques)
    if n_key <= 8 * len(typed) + 1024:
        counts = np.bincount(key[complete], minlength=n_key)
        dup = complete & (counts[key] > 1)
    else:
        dup = complete & pd.Series(key).duplicated(keep=False).to_numpy()
    if not dup.any():
        return
    shown = np.flatnonzero(dup)[:5]
    keyvals = np.full(len(typed), None, dtype=object)
    keyvals[shown] = ["/".join(str(typed[k].iloc[i]) for k in pk) for i in shown]
    col.add(name, raw, "+".join(pk), "primaryKey: duplicate key", dup, values=keyvals, scope="row",
            cells=tuple(pk))


def _codes_of(table: str, df: pd.DataFrame, column: str, col: _Collector) -> tuple[np.ndarray, int, np.ndarray]:
    """Integer codes of a column's values (missing values share one code), their count, and the mask
    of rows where the value is present."""
    if (table, column) in col.codes:
        codes, values = col.codes[(table, column)]
        present = codes >= 0
        return np.where(present, codes, len(values)).astype(np.int64), len(values) + 1, present
    codes, uniques = pd.factorize(df[column])
    present = codes >= 0
    return np.where(present, codes, len(uniques)).astype(np.int64), len(uniques) + 1, present


def _cross_field(
    name: str,
    typed: pd.DataFrame,
    raw: pd.DataFrame,
    rule: dict[str, Any],
    col: _Collector,
    failed: dict[str, np.ndarray],
    row_fields: set[str],
) -> None:
    """A rule between fields, on the values that passed their own field's rules. In quarantine the
    cells involved are set missing (which of them is wrong cannot be known); the row is rejected only
    when every field involved is a key or required."""

    def numbers(c: str) -> np.ndarray:
        v = pd.to_numeric(typed[c], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        v = np.where(np.isfinite(v), v, np.nan)
        return np.where(failed[c], np.nan, v) if c in failed else v

    if "sum" in rule:
        cols = [c for c in rule["sum"] if c in typed.columns]
        if not cols:
            return
        parts = [numbers(c) for c in cols]
        total = sum(np.nan_to_num(p, nan=0.0) for p in parts)
        mask = total > float(rule["right"])
        cells = tuple(c for c in cols if c not in row_fields)
        col.add(name, raw, "+".join(cols), f"{rule['name']}: {rule['description']}", mask, values=total,
                scope="cell" if cells else "row", cells=cells or tuple(cols))
        return
    left, right = rule["left"], rule["right"]
    if left not in typed.columns or right not in typed.columns:
        return
    lv, rv = numbers(left), numbers(right)
    ops = {">=": np.greater_equal, "<=": np.less_equal, ">": np.greater, "<": np.less}
    with np.errstate(invalid="ignore"):
        ok = ops[rule["op"]](lv, rv)
    mask = np.isfinite(lv) & np.isfinite(rv) & ~ok
    if not mask.any():
        return
    pairs = np.full(len(typed), None, dtype=object)
    for i in np.flatnonzero(mask)[:5]:
        pairs[i] = f"{left}={lv[i]:g}, {right}={rv[i]:g}"
    cells = tuple(c for c in (left, right) if c not in row_fields)
    col.add(name, raw, f"{left},{right}", f"{rule['name']}: {rule['description']}", mask, values=pairs,
            scope="cell" if cells else "row", cells=cells or (left, right))


# -- foreign keys -------------------------------------------------------------------------------
def _as_key(series: pd.Series) -> pd.Series:
    if series.dtype == object and pd.api.types.infer_dtype(series, skipna=True) in ("string", "empty"):
        return series
    return series.astype(str).where(series.notna(), None)


def _key_index(df: pd.DataFrame, fields: list[str]) -> pd.Index:
    cols = [_as_key(df[f]) for f in fields]
    return cols[0].pipe(pd.Index) if len(cols) == 1 else pd.MultiIndex.from_arrays(cols)


def _found_in(df: pd.DataFrame, name: str, fields: list[str], ref_keys: pd.Index,
              col: _Collector) -> tuple[np.ndarray, np.ndarray]:
    """Rows whose key is present, and rows whose key is among ``ref_keys``."""
    if len(fields) == 1 and (name, fields[0]) in col.codes:
        # look up each distinct id once, then spread the answer over the rows
        codes, values = col.codes[(name, fields[0])]
        hit = pd.Index(values).isin(ref_keys)
        return codes >= 0, np.append(hit, False)[codes]
    present = df[fields].notna().all(axis=1).to_numpy()
    return present, _key_index(df, fields).isin(ref_keys)


def _check_foreign_keys(
    typed: dict[str, pd.DataFrame], raw: dict[str, pd.DataFrame], col: _Collector, cascade: bool
) -> None:
    """Keys that point at no parent row. With ``cascade`` (quarantine), a key whose parent is there
    but was rejected is a cascade, counted apart."""
    bad = {n: col.bad_rows(n, len(df)) for n, df in typed.items()} if cascade else {}
    for name, df in typed.items():
        ts = schema.load(name)
        row_fields = _row_fields(ts)
        for fk in ts.foreign_keys:
            fields = fk["fields"]
            ref_table = fk["reference"]["resource"] or name
            ref_fields = fk["reference"]["fields"]
            if ref_table not in typed or any(f not in df.columns for f in fields):
                continue
            ref = typed[ref_table]
            if any(f not in ref.columns for f in ref_fields):
                continue
            present, found = _found_in(df, name, fields, _key_index(ref, ref_fields), col)
            orphan = present & ~found
            target = f"{ref_table}.{'+'.join(ref_fields)}"
            column = "+".join(fields)
            is_row = any(f in row_fields for f in fields)
            values = df[fields].astype(str).agg("/".join, axis=1) if len(fields) > 1 else raw[name][fields[0]]
            col.add(name, raw[name], column, f"foreignKey: no matching {target}", orphan, values=values,
                    scope="row" if is_row else "cell", cells=tuple(fields))
            if cascade and bad[ref_table].any():
                kept_keys = _key_index(ref[~bad[ref_table]], ref_fields)
                _, found_kept = _found_in(df, name, fields, kept_keys, col)
                followed = found & ~found_kept & ~bad[name]
                col.add(name, raw[name], column, f"foreignKey cascade: its {target} was rejected", followed,
                        values=values, scope="cascade" if is_row else "cell", cells=tuple(fields))


# -- entry points -------------------------------------------------------------------------------
def validate(panel_or_dir: Panel | str | Path, mode: str = "strict") -> ValidationReport:
    """Validate every canonical table of a Panel (or a Panel directory).

    Parameters
    ----------
    panel_or_dir : Panel or path
        The panel, or a directory written by ``Panel.to_parquet``. For a directory the manifest is
        checked too (every file listed is there, has its SHA-256 and its row count; no unlisted data
        file); those problems are violations of table ``manifest``.
    mode : {"strict", "quarantine", "report"}
        See the module docstring.

    Returns
    -------
    ValidationReport
        ``.violations`` (empty when valid), ``.panel`` (typed; in quarantine mode without the
        rejected rows and values, which are in ``panel.rejects``), counts of what quarantine did.

    Raises
    ------
    SchemaError
        In strict mode, if there is any violation; the message lists all of them.
    """
    return _validate(panel_or_dir, mode)


def _validate(
    panel_or_dir: Panel | str | Path,
    mode: str = "strict",
    share: bool = False,
    prior: list[Violation] | None = None,
) -> ValidationReport:
    """:func:`validate`; with ``share`` (for a panel nobody else holds, as in ``normalize``) the typed
    tables reuse the input's columns that already have their type instead of copying them.
    ``prior`` are violations found before (duplicate enterprise-years in ``normalize``), reported
    with the others."""
    from cluster_econ.panel import Panel
    from cluster_econ.schema.quarantine import quarantine

    if mode not in MODES:
        raise ConfigError(f"validate: mode must be one of {', '.join(MODES)}, not {mode!r}")
    col = _Collector()
    col.violations.extend(prior or [])
    if isinstance(panel_or_dir, str | Path):
        from cluster_econ.io.manifest import read_checked

        panel, manifest_problems = read_checked(panel_or_dir)
        col.violations.extend(manifest_problems)
        if panel is None:  # the manifest cannot be read: nothing more to check
            report = ValidationReport(violations=col.violations)
            if mode == "strict":
                raise SchemaError(str(report), violations=report.to_frame())
            return report
    else:
        panel = panel_or_dir
    if not isinstance(panel, Panel):
        raise InputError(f"validate: expected a cluster_econ Panel or a panel folder, got {type(panel).__name__}; "
                         "build one with cluster_econ.Panel({'enterprise': ..., 'enterprise_year': ...})")
    typed: dict[str, pd.DataFrame] = {}
    raw: dict[str, pd.DataFrame] = {}
    for name in schema.TABLES:
        df = panel.get(name)
        if df is None:
            continue
        typed[name], raw[name] = _check_table(name, df, col, share)
    _check_foreign_keys(typed, raw, col, cascade=mode == "quarantine")
    report = ValidationReport(violations=col.violations)
    if mode == "strict" and col.violations:
        raise SchemaError(str(report), violations=report.to_frame())
    if mode == "quarantine":
        structural = [v for v in col.violations if v.scope == "table"]
        if structural:
            raise SchemaError(
                "quarantine cannot keep any row of a table that lacks a required column:\n"
                + "\n".join("  - " + v.describe() for v in structural),
                violations=ValidationReport(structural).to_frame(),
            )
        report.panel = quarantine(panel, typed, raw, col.findings, report)
    else:
        report.panel = Panel(typed, panel.audit, panel.rejects, panel.metadata)
    return report
