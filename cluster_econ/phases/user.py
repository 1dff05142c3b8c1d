"""Phases the user supplies (a column or a table of start years), and accuracy against a truth.

User labels may contain ``"unknown"`` (a year the user cannot date) besides the four phases.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from cluster_econ.errors import InputError, SchemaError
from cluster_econ.phases.requirements import UNKNOWN
from cluster_econ.phases.result import PhaseResult
from cluster_econ.phases.signals import PHASES, prepare_cluster_year

__all__ = ["Accuracy", "accuracy", "from_column", "from_start_years", "validate_phases"]

#: order of the phases within a cluster (stagnation comes after expansion, before quality)
RANK = {"initiation": 0, "quantity_expansion": 1, "stagnation": 2, "quality_improvement": 3}


def _violation(msg: str, column: str, rule: str, rows: list[int], values: list[Any]) -> SchemaError:
    return SchemaError(msg, violations=[{"table": "cluster_year", "column": column, "rule": rule,
                                         "rows": rows, "values": values}])


def validate_phases(df: pd.DataFrame, column: str = "phase") -> None:
    """Check labels and order of a phase column in a (cluster_id, year)-sorted table.

    Raises
    ------
    SchemaError
        Naming the column, the rule and the rows: labels that are neither a phase nor
        ``"unknown"``, or a cluster whose phases go backwards (the order is initiation, quantity
        expansion, stagnation, quality improvement; phases may be skipped but not revisited;
        missing and ``"unknown"`` years are left out of the order check).
    """
    vals = df[column]
    known = vals.isna() | vals.isin((*PHASES, UNKNOWN))
    if not known.all():
        rows = np.flatnonzero(~known.to_numpy())
        bad = sorted(set(map(str, vals[~known])))
        raise _violation(f"column {column!r} has {rows.size} rows with unknown phase labels "
                         f"{bad[:10]} (rows {', '.join(map(str, rows[:10]))}); the phases are "
                         f"{', '.join(PHASES)} (or {UNKNOWN})", column, "enum", rows.tolist(), bad)
    rank = vals.map(RANK)
    back_rows = []
    for _, ix in df.groupby("cluster_id", sort=False).indices.items():
        r = rank.to_numpy()[np.sort(ix)]
        ok = ~np.isnan(r)
        rr = r[ok]
        cummax = np.maximum.accumulate(rr) if rr.size else rr
        backwards = np.flatnonzero(rr < cummax)
        if backwards.size:
            back_rows.extend(np.sort(ix)[ok][backwards].tolist())
    if back_rows:
        cids = sorted(set(df["cluster_id"].to_numpy()[back_rows].tolist()))
        raise _violation(f"column {column!r}: phases go backwards in clusters {cids[:10]} "
                         f"(rows {', '.join(map(str, back_rows[:10]))}); the order is "
                         "initiation, quantity_expansion, stagnation, quality_improvement",
                         column, "phase order", back_rows, cids)


def from_column(cluster_year: pd.DataFrame, column: str = "phase") -> PhaseResult:
    """Phases taken from a column of a cluster_year table (for example the truth of a simulation,
    or a researcher's own dating), validated for labels and order."""
    from cluster_econ.panel.container import Panel

    if isinstance(cluster_year, Panel):
        cluster_year = cluster_year.cluster_year
        if cluster_year is None:
            raise InputError("the panel has no cluster_year table")
    if column not in cluster_year.columns:
        raise InputError(f"cluster_year has no column {column!r}; columns are "
                         f"{', '.join(map(str, cluster_year.columns))}")
    cy = prepare_cluster_year(cluster_year)
    out = cy[["cluster_id", "year"]].copy()
    out["phase"] = cy[column].where(cy[column].notna(), None)
    validate_phases(out)
    n_missing = int(out["phase"].isna().sum())
    return PhaseResult(method="user", cluster_year=out,
                       diagnostics=MappingProxyType({"source": f"column {column}",
                                                     "n_missing": n_missing}))


def from_start_years(table: pd.DataFrame, cluster_year: pd.DataFrame | None = None,
                     end_year: int | None = None) -> PhaseResult:
    """Expand a table of phase start years to cluster-years.

    Parameters
    ----------
    table : DataFrame
        ``cluster_id``, ``phase``, ``start_year``: each phase runs from its start year to the
        year before the next phase of the same cluster starts. An optional ``end_year`` column
        ends a cluster's last phase.
    cluster_year : DataFrame, optional
        If given, its (cluster_id, year) rows are labelled (years before a cluster's first start,
        or clusters not in ``table``, get a missing phase, counted in the diagnostics).
    end_year : int, optional
        Without ``cluster_year``, the last year of every cluster (unless ``table`` has
        ``end_year``).
    """
    need = [c for c in ("cluster_id", "phase", "start_year") if c not in table.columns]
    if need:
        raise InputError(f"the phase start table lacks the column(s) {', '.join(need)}; it needs "
                         "cluster_id, phase, start_year")
    t = table.copy().reset_index(drop=True)
    t["cluster_id"] = t["cluster_id"].astype(str)
    sy = pd.to_numeric(t["start_year"], errors="coerce")
    if sy.isna().any():
        rows = np.flatnonzero(sy.isna().to_numpy())
        raise SchemaError(f"start_year is missing or not a number in rows "
                          f"{', '.join(map(str, rows[:10]))}",
                          violations=[{"table": "phase_starts", "column": "start_year",
                                       "rule": "type integer", "rows": rows.tolist()}])
    t["start_year"] = sy.astype(int)
    bad = ~t["phase"].isin(PHASES)
    if bad.any():
        rows = np.flatnonzero(bad.to_numpy())
        raise SchemaError(f"phase has unknown labels {sorted(set(map(str, t['phase'][bad])))} in "
                          f"rows {', '.join(map(str, rows[:10]))}; the phases are "
                          f"{', '.join(PHASES)}",
                          violations=[{"table": "phase_starts", "column": "phase",
                                       "rule": "enum", "rows": rows.tolist()}])
    dup = t.duplicated(["cluster_id", "phase"], keep=False) | t.duplicated(
        ["cluster_id", "start_year"], keep=False)
    if dup.any():
        rows = np.flatnonzero(dup.to_numpy())
        raise SchemaError(f"a cluster lists the same phase or the same start year twice (rows "
                          f"{', '.join(map(str, rows[:10]))})",
                          violations=[{"table": "phase_starts", "column": "cluster_id, phase",
                                       "rule": "unique", "rows": rows.tolist()}])
    t = t.sort_values(["cluster_id", "start_year"], kind="mergesort")
    validate_phases(t.rename(columns={"start_year": "year"}))
    if cluster_year is not None:
        cy = prepare_cluster_year(cluster_year)[["cluster_id", "year"]]
    else:
        rows = []
        for cid, grp in t.groupby("cluster_id", sort=True):
            last = None
            if "end_year" in grp and grp["end_year"].notna().any():
                last = int(pd.to_numeric(grp["end_year"], errors="coerce").max())
            elif end_year is not None:
                last = int(end_year)
            if last is None:
                raise InputError(f"cluster {cid}: the last phase has no end; give an end_year "
                                 "column, the end_year argument or a cluster_year table")
            first = int(grp["start_year"].min())
            if last < int(grp["start_year"].max()):
                raise InputError(f"cluster {cid}: end year {last} is before its last phase start")
            rows.extend({"cluster_id": cid, "year": y} for y in range(first, last + 1))
        cy = pd.DataFrame(rows, columns=["cluster_id", "year"])
    out = cy.copy().reset_index(drop=True)
    out["phase"] = None
    for cid, grp in t.groupby("cluster_id", sort=False):
        sel = (out["cluster_id"] == cid).to_numpy()
        yrs = out.loc[sel, "year"].to_numpy()
        starts = grp["start_year"].to_numpy()
        pos = np.searchsorted(starts, yrs, side="right") - 1
        lab = np.where(pos >= 0, grp["phase"].to_numpy()[np.maximum(pos, 0)], None)
        out.loc[sel, "phase"] = lab
    n_missing = int(out["phase"].isna().sum())
    return PhaseResult(method="user", cluster_year=out,
                       diagnostics=MappingProxyType({"source": "start years",
                                                     "n_missing": n_missing}))


@dataclass(frozen=True)
class Accuracy:
    """Agreement of detected phases with true phases.

    Attributes
    ----------
    overall : float
        Share of compared cluster-years labelled right.
    by_phase : DataFrame
        Per true phase: cluster-years, correctly labelled, share (recall).
    confusion : DataFrame
        Counts, true phase in rows, detected phase in columns.
    start_mae : float
        Mean absolute error in years of the first year of each phase, over (cluster, phase)
        pairs present in both labellings (NaN if none).
    start_errors : DataFrame
        cluster_id, phase, true_start, detected_start, error.
    n_compared : int
        Cluster-years present and labelled in both (a detected ``unknown`` counts as labelled
        and wrong: abstaining is never scored as right).
    n_unmatched : int
        Cluster-years present in only one of the two, or unlabelled in either.
    n_unknown : int
        Compared cluster-years detected as ``unknown``.
    overall_known : float
        Share right among the compared cluster-years not detected as ``unknown`` (NaN if none).
    """

    overall: float
    by_phase: pd.DataFrame
    confusion: pd.DataFrame
    start_mae: float
    start_errors: pd.DataFrame
    n_compared: int
    n_unmatched: int
    n_unknown: int = 0
    overall_known: float = float("nan")

    def summary(self) -> str:
        unk = (f"; {self.n_unknown} detected unknown (accuracy {self.overall_known:.3f} on the "
               "rest)" if self.n_unknown else "")
        return (f"accuracy {self.overall:.3f} on {self.n_compared} cluster-years{unk}; "
                f"start-year MAE {self.start_mae:.2f}\n{self.by_phase.to_string()}\n"
                f"{self.confusion.to_string()}")

    def __repr__(self) -> str:
        return self.summary()


def _as_labels(obj: Any, name: str) -> pd.DataFrame:
    if isinstance(obj, PhaseResult):
        obj = obj.cluster_year
    if not isinstance(obj, pd.DataFrame):
        raise InputError(f"{name} must be a PhaseResult or a DataFrame with cluster_id, year, "
                         f"phase; got {type(obj).__name__}")
    miss = [c for c in ("cluster_id", "year", "phase") if c not in obj.columns]
    if miss:
        raise InputError(f"{name} lacks the column(s) {', '.join(miss)}")
    out = obj[["cluster_id", "year", "phase"]].copy()
    out["cluster_id"] = out["cluster_id"].astype(str)
    out["year"] = pd.to_numeric(out["year"], errors="coerce")
    dup = out.duplicated(["cluster_id", "year"])
    if dup.any():
        raise InputError(f"{name} has {int(dup.sum())} duplicated (cluster_id, year) rows")
    return out


def accuracy(detected: Any, true: Any) -> Accuracy:
    """Share of cluster-years labelled right (overall, per true phase, confusion table) and
    the mean absolute error in years of phase start dates."""
    d = _as_labels(detected, "detected")
    t = _as_labels(true, "true")
    m = t.merge(d, on=["cluster_id", "year"], how="outer", suffixes=("_true", "_det"),
                indicator=True)
    both = m[(m["_merge"] == "both") & m["phase_true"].notna() & m["phase_det"].notna()]
    n_unmatched = len(m) - len(both)
    if both.empty:
        raise InputError("detected and true phases share no labelled cluster-years")
    right = both["phase_true"] == both["phase_det"]
    order = [p for p in (*PHASES, UNKNOWN)
             if p in set(both["phase_true"]) | set(both["phase_det"])]
    by = both.assign(correct=right).groupby("phase_true").agg(
        n=("correct", "size"), correct=("correct", "sum"))
    by["share"] = by["correct"] / by["n"]
    by = by.reindex([p for p in order if p in by.index])
    by.index.name = "true_phase"
    conf = pd.crosstab(both["phase_true"], both["phase_det"]).reindex(
        index=[p for p in order if p in set(both["phase_true"])], columns=order, fill_value=0)
    conf.index.name, conf.columns.name = "true", "detected"
    fs_t = t[t["phase"].notna() & (t["phase"] != UNKNOWN)].groupby(
        ["cluster_id", "phase"])["year"].min()
    fs_d = d[d["phase"].notna() & (d["phase"] != UNKNOWN)].groupby(
        ["cluster_id", "phase"])["year"].min()
    se = pd.concat([fs_t.rename("true_start"), fs_d.rename("detected_start")], axis=1,
                   join="inner").reset_index()
    se["error"] = se["detected_start"] - se["true_start"]
    mae = float(se["error"].abs().mean()) if len(se) else float("nan")
    is_unknown = (both["phase_det"] == UNKNOWN).to_numpy()
    known_right = right.to_numpy()[~is_unknown]
    return Accuracy(overall=float(right.mean()), by_phase=by, confusion=conf, start_mae=mae,
                    start_errors=se, n_compared=len(both), n_unmatched=int(n_unmatched),
                    n_unknown=int(is_unknown.sum()),
                    overall_known=float(known_right.mean()) if known_right.size else float("nan"))
