"""Phase signals: the cluster-year series that tell the phases of Otsuka and Sonobe apart.

Each signal is a transparent transformation of canonical ``cluster_year`` columns (the columns are
checked against ``data_schemas/cluster_year.json``; see :data:`SIGNAL_SOURCES`):

========================  ==================================================================
signal                    definition
========================  ==================================================================
``rel_size``              firms operating / the cluster's peak number of firms (0 to 1)
``firm_growth``           annual change in ``log(1 + n_firms)``
``net_entry``             ``entry_rate - exit_rate`` (or entries minus exits over last year's
                          firms when the rates are missing)
``price_trend``           annual change in ``log(price_index)``
``productivity_trend``    annual change in log sales per worker
                          (``total_sales / (n_firms * mean_employment)``)
``innovation``            mean of ``share_new_product`` and ``share_new_process``
``institutions``          mean of the shares with own brand, direct sales, long-term
                          subcontracts, vertical integration and quality certification
``exit_rate``             ``exit_rate``
``concentration_trend``   annual change in ``cr4``
``schooling``             ``mean_schooling``
========================  ==================================================================

Signals whose source columns are absent or entirely missing are left out, and the detection
methods use whichever signals are available. Changes are divided by the number of years between
consecutive observations, so gaps in the years do not inflate them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from cluster_econ import schema
from cluster_econ.errors import InputError, SchemaError

__all__ = ["PHASES", "SIGNAL_SOURCES", "compute_signals", "prepare_cluster_year", "smooth"]

#: the ordered phases (the first three) and the stuck state
PHASES: tuple[str, ...] = tuple(schema.load("cluster_year").field("phase").enum or ())
ORDERED: tuple[str, str, str] = ("initiation", "quantity_expansion", "quality_improvement")
STAGNATION = "stagnation"

#: canonical cluster_year columns each signal is built from
SIGNAL_SOURCES: dict[str, tuple[str, ...]] = {
    "rel_size": ("n_firms",),
    "firm_growth": ("n_firms",),
    "net_entry": ("entry_rate", "exit_rate", "n_entries", "n_exits", "n_firms"),
    "price_trend": ("price_index",),
    "productivity_trend": ("total_sales", "n_firms", "mean_employment"),
    "innovation": ("share_new_product", "share_new_process"),
    "institutions": ("share_own_brand", "share_direct_sales", "share_long_term_subcontract",
                     "share_vertical_integration", "share_quality_certification"),
    "exit_rate": ("exit_rate",),
    "concentration_trend": ("cr4",),
    "schooling": ("mean_schooling",),
}

SIGNALS: tuple[str, ...] = tuple(SIGNAL_SOURCES)


def _has(df: pd.DataFrame, col: str) -> bool:
    return col in df.columns and bool(pd.to_numeric(df[col], errors="coerce").notna().any())


def prepare_cluster_year(data: Any) -> pd.DataFrame:
    """The cluster_year table of a Panel or a DataFrame, checked and sorted.

    A Panel without ``cluster_year``, or whose ``cluster_year`` lacks ``n_firms``, gets the
    aggregates of ``enterprise_year`` (``Panel.with_cluster_year``) first.
    """
    from cluster_econ.panel.container import Panel

    if isinstance(data, Panel):
        cy = data.cluster_year
        if cy is None or not _has(cy, "n_firms"):
            cy = data.with_cluster_year().cluster_year
        if cy is None:
            raise InputError("the panel has no cluster_year table and none could be derived")
    elif isinstance(data, pd.DataFrame):
        cy = data
    else:
        raise InputError(f"phase detection needs a Panel or a cluster_year DataFrame, got "
                         f"{type(data).__name__}")
    missing = [c for c in ("cluster_id", "year") if c not in cy.columns]
    if missing:
        raise SchemaError(f"cluster_year lacks the key column(s) {', '.join(missing)}",
                          violations=[{"table": "cluster_year", "column": c,
                                       "rule": "required"} for c in missing])
    out = cy.copy()
    bad_year = pd.to_numeric(out["year"], errors="coerce")
    nonnum = np.flatnonzero(bad_year.isna().to_numpy())
    if nonnum.size:
        raise SchemaError(f"cluster_year.year is missing or not a number in {nonnum.size} rows "
                          f"(rows {', '.join(map(str, nonnum[:10]))})",
                          violations=[{"table": "cluster_year", "column": "year",
                                       "rule": "type integer", "rows": nonnum.tolist()}])
    out["year"] = bad_year.astype(int)
    out["cluster_id"] = out["cluster_id"].astype(str)
    dup = out.duplicated(["cluster_id", "year"], keep=False)
    if dup.any():
        rows = np.flatnonzero(dup.to_numpy())
        raise SchemaError(f"cluster_year has {rows.size} rows sharing a (cluster_id, year) key "
                          f"(rows {', '.join(map(str, rows[:10]))}); the key must be unique",
                          violations=[{"table": "cluster_year", "column": "cluster_id, year",
                                       "rule": "primary key unique", "rows": rows.tolist()}])
    return out.sort_values(["cluster_id", "year"], kind="mergesort").reset_index(drop=True)


def _per_year_change(values: pd.Series, years: pd.Series, groups: pd.Series) -> pd.Series:
    dv = values.groupby(groups, sort=False).diff()
    dy = years.groupby(groups, sort=False).diff()
    return dv / dy.where(dy > 0)


def _mean_of(df: pd.DataFrame, cols: tuple[str, ...]) -> pd.Series | None:
    present = [c for c in cols if _has(df, c)]
    if not present:
        return None
    return df[present].apply(pd.to_numeric, errors="coerce").mean(axis=1, skipna=True)


def compute_signals(cy: pd.DataFrame) -> pd.DataFrame:
    """Raw (unsmoothed) phase signals, one row per cluster-year, aligned with ``cy``.

    ``cy`` must come from :func:`prepare_cluster_year` (sorted by cluster and year).
    """
    g = cy["cluster_id"]
    year = cy["year"].astype(float)
    num = {c: pd.to_numeric(cy[c], errors="coerce").astype("float64") for c in cy.columns
           if c in schema.load("cluster_year").field_names and c not in ("cluster_id", "year",
                                                                          "phase")}
    sig = pd.DataFrame(index=cy.index)
    if _has(cy, "n_firms"):
        nf = num["n_firms"].astype(float)
        if (nf < 0).any():
            rows = np.flatnonzero((nf < 0).to_numpy())
            raise SchemaError(f"cluster_year.n_firms is negative in rows "
                              f"{', '.join(map(str, rows[:10]))}",
                              violations=[{"table": "cluster_year", "column": "n_firms",
                                           "rule": "minimum 0", "rows": rows.tolist()}])
        peak = nf.groupby(g, sort=False).transform("max")
        sig["rel_size"] = nf / peak.where(peak > 0)
        sig["firm_growth"] = _per_year_change(np.log1p(nf), year, g)
    if _has(cy, "entry_rate") and _has(cy, "exit_rate"):
        sig["net_entry"] = num["entry_rate"] - num["exit_rate"]
    elif _has(cy, "n_entries") and _has(cy, "n_exits") and _has(cy, "n_firms"):
        lag = num["n_firms"].groupby(g, sort=False).shift(1)
        sig["net_entry"] = (num["n_entries"] - num["n_exits"]) / lag.where(lag > 0)
    if _has(cy, "price_index"):
        p = num["price_index"]
        sig["price_trend"] = _per_year_change(np.log(p.where(p > 0)), year, g)
    if all(_has(cy, c) for c in ("total_sales", "n_firms", "mean_employment")):
        workers = num["n_firms"] * num["mean_employment"]
        spw = num["total_sales"] / workers.where(workers > 0)
        sig["productivity_trend"] = _per_year_change(np.log(spw.where(spw > 0)), year, g)
    for name in ("innovation", "institutions"):
        m = _mean_of(cy, SIGNAL_SOURCES[name])
        if m is not None:
            sig[name] = m
    if _has(cy, "exit_rate"):
        sig["exit_rate"] = num["exit_rate"]
    if _has(cy, "cr4"):
        sig["concentration_trend"] = _per_year_change(num["cr4"], year, g)
    if _has(cy, "mean_schooling"):
        sig["schooling"] = num["mean_schooling"]
    sig = sig.astype("float64").replace([np.inf, -np.inf], np.nan)
    return sig.dropna(axis=1, how="all")


#: level signals that mark a phase change by a jump: not smoothed
UNSMOOTHED: tuple[str, ...] = ("rel_size",)


def smooth(signals: pd.DataFrame, groups: pd.Series, window: int) -> pd.DataFrame:
    """Centred moving average of each signal within cluster (missing values skipped).

    The relative size of the cluster is left as it is: the jump in the number of firms at the
    start of quantity expansion is itself the signal, and averaging would move it earlier.
    """
    out = signals.copy()
    if window <= 1:
        return out
    cols = [c for c in signals.columns if c not in UNSMOOTHED]
    if cols:
        out[cols] = signals[cols].groupby(groups.to_numpy(), sort=False).transform(
            lambda s: s.rolling(window, center=True, min_periods=1).mean())
    return out
