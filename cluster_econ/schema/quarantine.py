"""Quarantine: keep what is good, and keep a record of everything set aside.

Given the findings of validation (:mod:`cluster_econ.schema.validate`), for each table:

- a value that breaks the rule of a field that is neither a key nor required is **set missing** in
  the kept table and logged cell by cell in ``panel.rejects["cells"]`` with its table, column, rule,
  row number, source file, the row's primary key and the original value (as text, exactly as it
  reached validation: after the mapping's scale and recode);
- a row whose key or a required field fails is **rejected**: it moves to ``panel.rejects[table]``
  with its original values (not the typed ones, so "eighty" in a numeric column stays "eighty"),
  every reason it failed in ``_reject_reason`` and ``_cascade`` false;
- a row whose enterprise was rejected follows it (``_cascade`` true, reason ``foreignKey cascade``),
  counted apart.

The audit gains one ``rejected`` row per source, table and reason (taken off that source's
``kept`` count) and one ``note`` per source, column and rule for the values set missing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cluster_econ import schema
from cluster_econ.schema.validate import Finding, ValidationReport, row_numbers

if TYPE_CHECKING:
    from cluster_econ.panel import Panel

CELLS = "cells"
CELL_COLUMNS = ["table", "column", "rule", "row", "source", "key", "value"]


def value_text(v: Any) -> str | None:
    """A value as text for the cell log: floats in their shortest exact form, missing as None."""
    if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)):
        return None
    if isinstance(v, float | np.floating):
        return repr(float(v))
    return str(v)


def _blank(series: pd.Series, mask: np.ndarray) -> pd.Series:
    """``series`` with the masked values missing (a new column; the input is not changed)."""
    if series.dtype == np.float64:
        return pd.Series(np.where(mask, np.nan, series.to_numpy()), index=series.index, name=series.name)
    if series.dtype == object:
        return series.where(~mask, None)
    return series.mask(mask)


def _keys_text(typed: pd.DataFrame, pk: list[str], idx: np.ndarray) -> np.ndarray:
    """The primary key of rows ``idx`` as text ("ET-1/2004")."""
    if not pk or any(k not in typed.columns for k in pk):
        return np.full(len(idx), None, dtype=object)
    parts = [typed[k].to_numpy(dtype=object)[idx] for k in pk]
    return np.array(["/".join(str(p) for p in vals) for vals in zip(*parts, strict=True)], dtype=object)


def _table(
    name: str, typed: pd.DataFrame, raw: pd.DataFrame, findings: list[Finding]
) -> tuple[pd.DataFrame, pd.DataFrame | None, pd.DataFrame | None, int, int]:
    """Quarantine one table: the kept rows, the rejected rows, the cell log, and the counts of rows
    rejected for their own values and by cascade."""
    n = len(typed)
    direct, cascade = np.zeros(n, bool), np.zeros(n, bool)
    for f in findings:
        if f.scope == "row":
            direct |= f.mask
        elif f.scope == "cascade":
            cascade |= f.mask
    bad = direct | cascade
    rejected = None
    if bad.any():
        idx = np.flatnonzero(bad)
        reasons = np.full(len(idx), "", dtype=object)
        for f in findings:
            hit = f.mask[idx]
            if hit.any():
                reasons[hit] = np.where(reasons[hit] == "", f.reason, reasons[hit] + "; " + f.reason)
        rejected = raw.iloc[idx].copy()
        rejected["_reject_reason"] = reasons
        rejected["_cascade"] = cascade[idx] & ~direct[idx]
        if "_source_row" not in rejected.columns:
            rejected["_source_row"] = idx + 1
    # cells: on the rows that stay
    pk = list(schema.load(name).primary_key)
    blank: dict[str, np.ndarray] = {}
    logs: list[pd.DataFrame] = []
    for f in findings:
        if f.scope != "cell":
            continue
        m = f.mask & ~bad
        if not m.any():
            continue
        idx = np.flatnonzero(m)
        rows = row_numbers(raw, idx)
        sources = raw["_source"].to_numpy(dtype=object)[idx] if "_source" in raw.columns else None
        keys = _keys_text(typed, pk, idx)
        for c in f.columns:
            blank[c] = blank[c] | m if c in blank else m.copy()
            original = raw[c].to_numpy(dtype=object)[idx]
            logs.append(
                pd.DataFrame(
                    {
                        "table": name,
                        "column": c,
                        "rule": f.rule,
                        "row": rows,
                        "source": sources,
                        "key": keys,
                        "value": [value_text(v) for v in original],
                    },
                    columns=CELL_COLUMNS,
                )
            )
    kept = typed
    if blank:
        kept = typed.copy(deep=False)
        for c, m in blank.items():
            kept[c] = _blank(typed[c], m)
    if bad.any():
        kept = kept[~bad].reset_index(drop=True)
    cells = pd.concat(logs, ignore_index=True) if logs else None
    return kept, rejected, cells, int(direct.sum()), int((cascade & ~direct).sum())


def quarantine(
    panel: Panel,
    typed: dict[str, pd.DataFrame],
    raw: dict[str, pd.DataFrame],
    findings: dict[str, list[Finding]],
    report: ValidationReport,
) -> Panel:
    """The quarantined Panel (see the module docstring); fills the counts of ``report``."""
    from cluster_econ.panel import Panel

    kept: dict[str, pd.DataFrame] = {}
    rejects = dict(panel.rejects)
    cell_logs = [rejects.pop(CELLS)] if CELLS in rejects else []
    audit_rows: list[dict[str, Any]] = []
    for name, df in typed.items():
        kept[name], rej, cells, n_direct, n_cascade = _table(name, df, raw[name], findings.get(name, []))
        if rej is not None:
            rejects[name] = pd.concat([rejects[name], rej], ignore_index=True) if name in rejects else rej
            if n_direct:
                report.rejected[name] = n_direct
            if n_cascade:
                report.cascaded[name] = n_cascade
            source = rej["_source"].fillna("") if "_source" in rej.columns else pd.Series("", index=rej.index)
            for (src, why), count in rej.groupby([source, rej["_reject_reason"]], sort=True).size().items():
                audit_rows.append({"source": src, "table": name, "step": "rejected", "rows": int(count),
                                   "reason": why})
        if cells is not None:
            cell_logs.append(cells)
            report.cells[name] = len(cells)
            for (src, column, rule), count in (
                cells.assign(source=cells["source"].fillna("")).groupby(["source", "column", "rule"]).size().items()
            ):
                audit_rows.append({"source": src, "table": name, "step": "note", "rows": int(count),
                                   "reason": f"{column}: {rule}: {count} value(s) set missing (see rejects/cells)"})
    if cell_logs:
        rejects[CELLS] = pd.concat(cell_logs, ignore_index=True)
    audit = panel.audit
    if audit_rows:
        audit = _rebalance_audit(audit, pd.DataFrame(audit_rows))
    return Panel(kept, audit, rejects, panel.metadata)


def _rebalance_audit(audit: pd.DataFrame, added: pd.DataFrame) -> pd.DataFrame:
    """Add the quarantine rows to the audit and take rejected rows off the ``kept`` count of their
    source."""
    audit = audit.copy()
    rejected = added[added["step"] == "rejected"]
    if not audit.empty and len(rejected):
        for (src, table), grp in rejected.groupby(["source", "table"]):
            hit = (audit["step"] == "kept") & (audit["table"] == table) & (audit["source"] == src)
            if hit.any():
                i = audit.index[hit][0]
                audit.loc[i, "rows"] = int(audit.loc[i, "rows"]) - int(grp["rows"].sum())
    return pd.concat([audit, added], ignore_index=True)
