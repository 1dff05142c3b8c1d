"""What a streamed normalize keeps of each row between its two passes, and how it resolves
duplicate enterprise-years and merges what many chunks report (:mod:`cluster_econ.harmonize.stream`).

:func:`find_duplicates` decides, from a few numbers per row (enterprise, year, recall flag, place in
the files and a hash of the values), what :func:`~cluster_econ.harmonize.pipeline._resolve_duplicates`
decides from the rows themselves.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from cluster_econ.schema.validate import Violation


def merge_notes(notes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Audit notes of many chunks as if made once: counts of the same note added up (the count in
    the reason too)."""
    merged: dict[tuple[Any, ...], dict[str, Any]] = {}
    for note in notes:
        n = int(note["rows"])
        template = re.sub(rf"(?<![\d.]){n}(?![\d.])", "{n}", str(note["reason"]), count=1)
        key = (note.get("source"), note.get("table"), note["step"], template)
        if key in merged:
            merged[key]["rows"] += n
        else:
            merged[key] = {**note, "rows": n, "_template": template}
    out = []
    for note in merged.values():
        template = note.pop("_template")
        out.append({**note, "reason": template.replace("{n}", str(note["rows"])) if "{n}" in template
                    else note["reason"]})
    return out


def merge_violations(violations: list[Violation]) -> list[Violation]:
    """Violations of many chunks as one per table, column and rule (counts added, first rows kept)."""
    merged: dict[tuple[str, str, str, str], Violation] = {}
    for v in violations:
        key = (v.table, v.column, v.rule, v.scope)
        if key not in merged:
            merged[key] = v
            continue
        m = merged[key]
        merged[key] = Violation(m.table, m.column, m.rule, m.count + v.count, (m.rows + v.rows)[:10],
                                (m.values + v.values)[:5], tuple(sorted(set(m.sources) | set(v.sources)))[:5],
                                m.scope, m.detail)
    return list(merged.values())


def row_signature(ey: pd.DataFrame, compare: list[str]) -> np.ndarray:
    """A 64-bit hash of each row's values in ``compare``, compared as the duplicate check of
    ``normalize`` compares them (:func:`~cluster_econ.harmonize.pipeline._comparable`): a number
    hashes by its value whether its column was read as numbers or as text, so that a chunk typed one
    way and a chunk typed the other agree."""
    from cluster_econ.harmonize.pipeline import _comparable

    total = np.zeros(len(ey), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for c in compare:
            values = _comparable(ey[c])
            if values.dtype == np.float64:
                h = pd.util.hash_array(values.to_numpy())
            else:  # hashed once per distinct value, then spread over the rows
                codes, uniques = pd.factorize(values)
                distinct = uniques.tolist()
                numeric = np.array([isinstance(v, float) for v in distinct], dtype=bool)
                per = np.empty(len(distinct) + 1, dtype=np.uint64)
                per[:-1][numeric] = pd.util.hash_array(np.array(distinct, dtype=object)[numeric].astype(np.float64))
                others = [f"{type(v).__name__}:{v!r}" for v, n in zip(distinct, numeric, strict=True) if not n]
                per[:-1][~numeric] = pd.util.hash_array(np.array(others, dtype=object))
                per[-1] = pd.util.hash_array(np.array([np.nan]))[0]  # missing, as a missing number
                h = per[codes]
            total = total * np.uint64(1_000_003) + h
    return total


OTHER_IDS = 1 << 40  # codes of enterprise ids that have no enterprise row


@dataclass
class RowIndex:
    """What the first pass keeps of each enterprise-year row, in the order the rows come."""

    ids: list[np.ndarray] = field(default_factory=list)
    year: list[np.ndarray] = field(default_factory=list)
    recall: list[np.ndarray] = field(default_factory=list)
    file: list[np.ndarray] = field(default_factory=list)
    block: list[np.ndarray] = field(default_factory=list)
    row: list[np.ndarray] = field(default_factory=list)
    signature: list[np.ndarray] = field(default_factory=list)
    no_id: list[np.ndarray] = field(default_factory=list)
    other_ids: dict[str, int] = field(default_factory=dict)

    def add(self, ey: pd.DataFrame, file: int, compare: list[str], known: Any) -> None:
        """One chunk's enterprise-year rows; ``known`` gives the codes of enterprise ids already seen
        (:meth:`~cluster_econ.harmonize.latest.LatestPerKey.lookup`, -1 otherwise), so that the
        ids are held once for both."""
        ids = ey["enterprise_id"]
        self.no_id.append(ids.isna().to_numpy())
        codes = known(ids)
        unknown = (codes < 0) & ids.notna().to_numpy()
        if unknown.any():  # an id with no enterprise row (it fails the foreign key): a code of its own
            local, uniques = pd.factorize(ids[unknown].astype(str))
            extra = [OTHER_IDS + self.other_ids.setdefault(u, len(self.other_ids)) for u in uniques.tolist()]
            codes[unknown] = np.asarray(extra, dtype=np.int64)[local]
        self.ids.append(codes)
        self.year.append(pd.to_numeric(ey["year"], errors="coerce").to_numpy(dtype=float, na_value=np.nan))
        rec = ey["recall"].eq(True).fillna(False).to_numpy(dtype=bool) if "recall" in ey.columns else None
        self.recall.append(rec if rec is not None else np.zeros(len(ey), bool))
        self.file.append(np.full(len(ey), file, dtype=np.int16))
        self.block.append(ey["_block"].to_numpy(dtype=np.int16))
        self.row.append(ey["_source_row"].to_numpy(dtype=np.int32))
        self.signature.append(row_signature(ey, compare))

    def arrays(self) -> dict[str, np.ndarray]:
        out = {}
        for name in ("ids", "year", "recall", "file", "block", "row", "signature", "no_id"):
            parts = getattr(self, name)
            out[name] = np.concatenate(parts) if parts else np.empty(0)
            setattr(self, name, [])
        return out


def find_duplicates(rows: dict[str, np.ndarray], files: list[str], has_recall: bool
                ) -> tuple[np.ndarray, np.ndarray, list[dict[str, Any]]]:
    """As :func:`~cluster_econ.harmonize.pipeline._resolve_duplicates`, on the row index: the rows
    to drop (superseded recalls, later identical copies), the rows set aside (copies with different
    values; they are resolved at the end with their values), and the audit of the drops."""
    n = len(rows["ids"])
    drop, aside = np.zeros(n, bool), np.zeros(n, bool)
    audit: list[dict[str, Any]] = []
    if not n:
        return drop, aside, audit
    year_codes, years = pd.factorize(rows["year"])
    # a row without a year (or enterprise) is no one's duplicate: validation rejects it on its own
    complete = (year_codes >= 0) & ~rows["no_id"]
    # one integer per (enterprise, year), numbered densely when the ids are (so that counting them
    # is a bincount, not a hash table of every row)
    ids = rows["ids"]
    dense = bool(len(ids)) and int(ids.max()) < (1 << 40)
    key = ids * (len(years) + 1) + year_codes
    small = dense and int(ids.max() + 1) * (len(years) + 1) <= 8 * n + 1024

    def dup_of(alive: np.ndarray) -> np.ndarray:
        if not alive.any():
            return alive
        if small:
            counts = np.bincount(key[alive])
            return alive & (counts[np.where(alive, key, 0)] > 1)
        k = pd.Series(np.where(alive, key, -1 - np.arange(n)))
        return k.duplicated(keep=False).to_numpy() & alive

    dup = dup_of(complete)
    if not dup.any():
        return drop, aside, audit

    def count(mask: np.ndarray, reason: str) -> None:
        for f, m in sorted(pd.Series(rows["file"][mask]).value_counts().items()):
            audit.append({"source": files[f], "table": "enterprise_year", "step": "dropped", "rows": int(m),
                          "reason": reason})

    if has_recall:
        reported_keys = np.unique(key[dup & ~rows["recall"]])
        superseded = dup & rows["recall"] & np.isin(key, reported_keys)
        if superseded.any():
            drop |= superseded
            count(superseded, "recalled year superseded by the row reported for that year")
            dup = dup_of(complete & ~drop)
    if not dup.any():
        return drop, aside, audit
    idx = np.flatnonzero(dup)
    frame = pd.DataFrame({"key": key[idx], "sig": rows["signature"][idx], "file": rows["file"][idx],
                          "block": rows["block"][idx], "row": rows["row"][idx], "i": idx})
    varied = frame.groupby("key")["sig"].nunique()
    conflict = frame["key"].isin(varied.index[varied > 1]).to_numpy()
    aside[idx[conflict]] = True
    same = frame[~conflict].sort_values(["file", "block", "row"], kind="stable")
    later = same["i"].to_numpy()[same.duplicated("key", keep="first").to_numpy()]
    drop[later] = True
    if len(later):
        later_mask = np.zeros(n, bool)
        later_mask[later] = True
        count(later_mask, "duplicate enterprise-year reported with identical values (kept once)")
    return drop, aside, audit
