"""Derived panel variables: gap-aware lags, entry and exit, spin-off lineage, cluster-year aggregates.

Definitions (used everywhere in the package):

- **lag**: the value of the same enterprise in calendar year ``t - k``. A lag across a year the
  enterprise was not observed is missing, never the previous row.
- **entry year**: ``year_established`` where known, else the first year observed. Enterprises first
  observed in a cluster's first survey year with no founding year are left-censored: not counted as
  entries.
- **exit**: a true exit is a row with ``exit`` true, or ``enterprise.exit_year``. An enterprise last
  observed before its cluster's last survey year with no exit recorded has *attrited* (left the
  sample, not the industry). One observed in the last survey year is *censored*.
- **lineage**: the chain of ``spinoff_parent_id`` up to a root founder; depth 0 for a non-spin-off.
- **cluster-year aggregates**: computed over operating enterprises (``operating`` not false).
  CR4 and HHI use sales shares; innovation shares are means over enterprises that answered the item;
  mean schooling is that of the manager in charge each year (see ``manager_schooling_by_year``).

Performance: the cluster-year aggregates hash the text IDs once and group on integer codes (an
enterprise's cluster is looked up once per enterprise, not per row); the four largest firms of each
cluster-year are found by sorting only the rows that can be among them (``_first_four``), which gives
the same rows as a full ``np.lexsort``; temporaries of a million rows are freed as soon as used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cluster_econ import schema
from cluster_econ.errors import SchemaError

if TYPE_CHECKING:
    from cluster_econ.panel.container import Panel

INNOVATION_ITEMS = (
    "new_product",
    "new_process",
    "own_brand",
    "direct_sales",
    "long_term_subcontract",
    "vertical_integration",
    "quality_certification",
)


def lag(
    ey: pd.DataFrame, column: str, periods: int = 1, entity: str = "enterprise_id", time: str = "year"
) -> pd.Series:
    """Gap-aware lag (``periods`` > 0) or lead (``periods`` < 0) of ``column``, aligned to ``ey``."""
    years = pd.to_numeric(ey[time]).astype("int64")
    source = pd.Series(
        ey[column].to_numpy(), index=pd.MultiIndex.from_arrays([ey[entity].to_numpy(), years.to_numpy()])
    )
    if source.index.has_duplicates:
        raise SchemaError(f"lag of {column}: {entity}+{time} is not unique; validate the panel first")
    wanted = pd.MultiIndex.from_arrays([ey[entity].to_numpy(), (years - periods).to_numpy()])
    out = source.reindex(wanted)
    return pd.Series(
        out.to_numpy(), index=ey.index, name=f"{column}_lag{periods}" if periods > 0 else f"{column}_lead{-periods}"
    )


def _with_cluster(panel: Panel) -> pd.DataFrame:
    ey = panel.enterprise_year
    if "cluster_id" in ey.columns:
        return ey
    return ey.assign(cluster_id=_cluster_by_row(panel, ey))


def _cluster_by_row(panel: Panel, ey: pd.DataFrame, firm: tuple[np.ndarray, Any] | None = None) -> pd.Series:
    """Each enterprise-year's cluster, from the enterprise table (missing when the enterprise is not
    there). Looked up once per enterprise, not once per row; ``firm`` is ``pd.factorize`` of
    ``ey["enterprise_id"]`` when the caller has it."""
    codes, firms = pd.factorize(ey["enterprise_id"]) if firm is None else firm
    per_firm = np.append(_cluster_of_firms(panel, firms), np.nan)  # position -1: a missing enterprise_id
    return pd.Series(per_firm[codes], index=ey.index, name="cluster_id")


def _cluster_of_firms(panel: Panel, firms: Any) -> np.ndarray:
    """The cluster of each of these enterprise ids in the enterprise table (missing if not there)."""
    ent = panel.enterprise
    at = pd.Index(ent["enterprise_id"]).get_indexer(firms)
    clusters = np.append(ent["cluster_id"].to_numpy(dtype=object), np.nan)  # position -1: not found
    return clusters[at]


def entry_exit(panel: Panel, ey: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per enterprise: first and last year observed, entry year, exit year and status.

    ``status`` is ``exited`` (true exit recorded), ``censored`` (observed in its cluster's last
    survey year) or ``attrited`` (stopped being observed without a recorded exit).
    """
    return _entry_exit(panel, _with_cluster(panel) if ey is None else ey)


def _spans(years: np.ndarray, codes: np.ndarray, n_groups: int, with_size: bool = False) -> pd.DataFrame:
    """First and last year (and row count) per group code, as ``groupby(codes).agg(["min", "max"])``."""
    how = ["min", "max", "size"] if with_size else ["min", "max"]
    if not len(codes) or codes.min() < 0 or np.isnan(years).any():
        return pd.Series(years).groupby(codes).agg(how)
    size = np.bincount(codes, minlength=n_groups)
    low, high = np.full(n_groups, np.inf), np.full(n_groups, -np.inf)
    np.minimum.at(low, codes, years)
    np.maximum.at(high, codes, years)
    seen = np.flatnonzero(size > 0)  # groupby lists only the groups that occur
    out = pd.DataFrame({"min": low[seen], "max": high[seen]}, index=seen)
    if with_size:
        out["size"] = size[seen]
    return out


def _entry_exit(
    panel: Panel,
    ey: pd.DataFrame,
    firm: tuple[np.ndarray, Any] | None = None,
    cluster: tuple[np.ndarray, Any] | None = None,
) -> pd.DataFrame:
    """:func:`entry_exit`; ``firm`` and ``cluster`` are ``pd.factorize`` of ``ey``'s enterprise_id and
    cluster_id when the caller has them."""
    ent = panel.enterprise.set_index("enterprise_id")
    years = pd.to_numeric(ey["year"]).to_numpy(dtype=float)
    # group on integer codes: much faster than on the text ids at a million rows
    codes, firm_ids = pd.factorize(ey["enterprise_id"]) if firm is None else firm
    ccodes, cluster_ids = pd.factorize(ey["cluster_id"]) if cluster is None else cluster
    by_firm = _spans(years, codes, len(firm_ids), with_size=True)
    out = pd.DataFrame(
        {
            "first_year": by_firm["min"].to_numpy(),
            "last_year": by_firm["max"].to_numpy(),
            "n_years": by_firm["size"].to_numpy(),
        },
        index=pd.Index(firm_ids, name="enterprise_id"),
    )
    first_row = np.flatnonzero(~pd.Series(codes).duplicated().to_numpy())  # codes number firms in order seen
    out["cluster_id"] = np.asarray(cluster_ids, dtype=object)[ccodes[first_row]]
    # group on the cluster codes (a missing cluster counts with the last one listed, as indexing by -1 does)
    by_cluster = _spans(years, np.where(ccodes < 0, len(cluster_ids) - 1, ccodes), len(cluster_ids))
    by_cluster.index = pd.Index(np.asarray(cluster_ids, dtype=object)[by_cluster.index.to_numpy()])
    cluster_last, cluster_first = by_cluster["max"], by_cluster["min"]
    if "exit" in ey.columns:
        ex = ey.loc[ey["exit"].fillna(False).astype(bool)]
        exit_from_rows = pd.to_numeric(ex["year"]).groupby(ex["enterprise_id"]).min()
    else:
        exit_from_rows = pd.Series(dtype=float)
    exit_year = exit_from_rows.reindex(out.index)
    if "exit_year" in ent.columns:
        exit_year = exit_year.fillna(pd.to_numeric(ent["exit_year"]).reindex(out.index))
    out["exit_year"] = exit_year
    established = (
        pd.to_numeric(ent["year_established"]).reindex(out.index)
        if "year_established" in ent.columns
        else pd.Series(np.nan, index=out.index)
    )
    out["year_established"] = established
    left_censored = established.isna() & (out["first_year"] == out["cluster_id"].map(cluster_first))
    out["entry_year"] = established.fillna(out["first_year"].where(~left_censored))
    last_survey = out["cluster_id"].map(cluster_last)
    out["status"] = np.where(
        out["exit_year"].notna(), "exited", np.where(out["last_year"] >= last_survey, "censored", "attrited")
    )
    out["exit"] = out["status"].eq("exited")
    return out.reset_index()


def lineage(enterprise: pd.DataFrame) -> pd.DataFrame:
    """Spin-off lineage: parent, root ancestor and depth (0 for enterprises that are not spin-offs)."""
    ids = enterprise["enterprise_id"].astype(str).to_numpy()
    parent = (
        enterprise["spinoff_parent_id"]
        if "spinoff_parent_id" in enterprise.columns
        else pd.Series([None] * len(enterprise))
    )
    parent_of = {i: (str(p) if pd.notna(p) else None) for i, p in zip(ids, parent, strict=True)}
    roots, depths = [], []
    for i in ids:
        node, depth, seen = i, 0, {i}
        while parent_of.get(node) is not None and parent_of[node] in parent_of:
            node = parent_of[node]
            depth += 1
            if node in seen:
                raise SchemaError(f"enterprise.spinoff_parent_id: cycle in spin-off lineage through {i!r}")
            seen.add(node)
        roots.append(node)
        depths.append(depth)
    return pd.DataFrame(
        {"enterprise_id": ids, "spinoff_parent_id": [parent_of[i] for i in ids], "root_id": roots, "depth": depths}
    )


def _count_events(ee: pd.DataFrame, column: str, index: pd.MultiIndex) -> np.ndarray:
    """Events per cluster-year (``index`` sorted by cluster, then year). An event between survey years
    counts in the next surveyed year; one before a cluster's first surveyed year is not counted (it
    predates the sample), nor one after its last."""
    clusters = index.get_level_values("cluster_id")
    years = index.get_level_values("year").to_numpy(dtype=float)
    cluster_codes = pd.Index(clusters.unique())
    row_cluster = cluster_codes.get_indexer(clusters)
    events = ee.dropna(subset=[column])
    ev_cluster = cluster_codes.get_indexer(events["cluster_id"])
    ev_year = events[column].to_numpy(dtype=float)
    keep = ev_cluster >= 0
    ev_cluster, ev_year = ev_cluster[keep], ev_year[keep]
    # position of the first cluster-year of the same cluster at or after the event
    span = float(np.nanmax(np.abs(np.r_[years, ev_year, 0.0]))) * 4 + 1
    row_key = row_cluster * span + years
    pos = np.searchsorted(row_key, ev_cluster * span + ev_year, side="left")
    valid = pos < len(row_key)
    valid[valid] &= row_cluster[pos[valid]] == ev_cluster[valid]
    first_year = np.full(len(cluster_codes), np.inf)
    np.minimum.at(first_year, row_cluster, years)
    valid &= ev_year >= first_year[ev_cluster]
    return np.bincount(pos[valid], minlength=len(index)).astype("int64")


def current_manager_schooling(panel: Panel) -> pd.Series:
    """Schooling of each enterprise's current manager (highest generation, then last manager_id).
    Missing when that manager's schooling is missing: never borrowed from an earlier manager."""
    man = panel.manager
    if man is None or "schooling_years" not in man.columns:
        return pd.Series(dtype=float)
    order = [c for c in ("generation", "manager_id") if c in man.columns]
    m = man.sort_values(order, kind="stable") if order else man
    current = m.groupby("enterprise_id", sort=True).tail(1).set_index("enterprise_id")["schooling_years"]
    return pd.to_numeric(current, errors="coerce").sort_index()


def manager_schooling_by_year(panel: Panel, ey: pd.DataFrame) -> pd.Series:
    """Schooling of the manager in charge in each enterprise-year, aligned to ``ey``.

    The manager in charge in year *t* is the one with the latest ``start_year`` at or before *t*;
    when that manager's schooling is not known, the value is missing (never borrowed from another
    manager). Without start years (or for years before any start year), it is the current
    manager: the highest generation, then the last manager_id.
    """
    man = panel.manager
    if man is None or "schooling_years" not in man.columns:
        return pd.Series(np.nan, index=ey.index)
    school = pd.to_numeric(man["schooling_years"], errors="coerce")
    out = ey["enterprise_id"].map(current_manager_schooling(panel)).astype(float)
    if "start_year" in man.columns and man["start_year"].notna().any():
        starts = (
            pd.DataFrame(
                {
                    "enterprise_id": man["enterprise_id"].astype(str),
                    "start": pd.to_numeric(man["start_year"], errors="coerce").astype(float),
                    "school": school,
                }
            )
            .dropna(subset=["start"])
            .sort_values("start", kind="stable")
        )
        rows = pd.DataFrame(
            {
                "enterprise_id": ey["enterprise_id"].astype(str).to_numpy(),
                "year": pd.to_numeric(ey["year"]).astype(float).to_numpy(),
                "_row": np.arange(len(ey)),
            }
        ).sort_values("year", kind="stable")
        matched = pd.merge_asof(
            rows, starts, left_on="year", right_on="start", by="enterprise_id", direction="backward"
        )
        by_row = np.full(len(ey), np.nan)
        in_charge = np.zeros(len(ey), dtype=bool)
        by_row[matched["_row"].to_numpy()] = matched["school"].to_numpy(dtype=float)
        in_charge[matched["_row"].to_numpy()] = matched["start"].notna().to_numpy()
        out = pd.Series(np.where(in_charge, by_row, out.to_numpy()), index=ey.index)
    return out


def _first_four(key: np.ndarray, gid: np.ndarray, n_groups: int) -> np.ndarray:
    """Mask of the first four rows of each group in the order of ``np.lexsort((-key, gid))``: the four
    largest keys of the group, ties going to the earlier row.

    Only candidate rows are sorted: a group's fourth largest key is at least the least of the maxima
    of four disjoint chunks of the group (four rows reach it), so rows below that bound cannot be
    among the four. Groups must be numbered 0..n_groups-1 with no empty group.
    """
    rows = np.argsort(gid.astype(np.int16) if n_groups < 2**15 else gid, kind="stable")  # by group, then row
    values = key[rows]
    sizes = np.bincount(gid, minlength=n_groups)
    starts = np.r_[0, np.cumsum(sizes)[:-1]]
    n_chunks = np.where(sizes >= 4, 4, 1)
    group_of_chunk = np.repeat(np.arange(n_groups), n_chunks)
    part = np.arange(len(group_of_chunk)) - np.repeat(np.cumsum(n_chunks) - n_chunks, n_chunks)
    edges = starts[group_of_chunk] + (sizes[group_of_chunk] * part) // n_chunks[group_of_chunk]
    maxima = np.maximum.reduceat(values, edges) if len(values) else np.empty(0)
    bound = np.full(n_groups, np.inf)
    np.minimum.at(bound, group_of_chunk, maxima)
    bound[sizes < 4] = -np.inf  # every row of a small group is a candidate
    candidates = rows[values >= bound[np.repeat(np.arange(n_groups), sizes)]]
    order = candidates[np.lexsort((-key[candidates], gid[candidates]))]
    first = np.r_[True, np.diff(gid[order]) != 0]
    group_start = np.flatnonzero(first)
    rank = np.arange(len(order)) - np.repeat(group_start, np.diff(np.r_[group_start, len(order)]))
    top4 = np.zeros(len(key), bool)
    top4[order[rank < 4]] = True
    return top4


def _concentration(sales: np.ndarray, gid: np.ndarray, n_groups: int) -> dict[str, np.ndarray]:
    """Total sales, CR4 and HHI per group (``gid`` numbers the groups 0..n_groups-1); ``sales`` are
    non-negative or missing.

    CR4 is the four largest firms' sales over the total, not a sum of their shares: both sums add
    the same numbers in the same row order, one skipping rows, and rounded addition of non-negative
    numbers never decreases, so the ratio is at most 1 exactly (a sum of three shares can come out
    as 1.0000000000000002). HHI, the sum of squared shares, is at most 1 in exact arithmetic; when
    one firm has nearly everything, rounding can put it one unit in the last place above, so it is
    capped at 1.
    """
    ok = np.isfinite(sales)
    total = np.bincount(gid[ok], weights=sales[ok], minlength=n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(ok, sales / total[gid], np.nan)
    top4 = _first_four(np.nan_to_num(sales, nan=-np.inf), gid, n_groups) & ok
    positive = total > 0
    top_total = np.bincount(gid[top4], weights=sales[top4], minlength=n_groups)
    hhi = np.minimum(np.bincount(gid[ok], weights=share[ok] ** 2, minlength=n_groups), 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        cr4 = top_total / total
    return {
        "total_sales": np.where(np.bincount(gid[ok], minlength=n_groups) > 0, total, np.nan),
        "cr4": np.where(positive, cr4, np.nan),
        "hhi": np.where(positive, hhi, np.nan),
    }


def _clusters_with_exit_records(panel: Panel, ey: pd.DataFrame, ccode: np.ndarray, n_clusters: int) -> np.ndarray:
    """Per cluster code: whether its survey recorded exits at all (an answered ``exit`` question in
    some enterprise-year, or an ``exit_year`` for some enterprise). Where neither was asked, the
    number of exits is unknown: the aggregates leave it missing instead of counting zero."""
    recorded = np.zeros(n_clusters + 1, dtype=bool)  # last slot: rows without a cluster
    if "exit" in ey.columns:
        answered = ey["exit"].notna().to_numpy()
        recorded[np.where(ccode[answered] >= 0, ccode[answered], n_clusters)] = True
    ent = panel.enterprise
    if ent is not None and "exit_year" in ent.columns and ent["exit_year"].notna().any():
        firms = set(ent.loc[ent["exit_year"].notna(), "enterprise_id"])
        rows = ey["enterprise_id"].isin(firms).to_numpy()
        recorded[np.where(ccode[rows] >= 0, ccode[rows], n_clusters)] = True
    return recorded[:n_clusters]


def aggregate_cluster_year(panel: Panel) -> pd.DataFrame:
    """Cluster-year aggregates of enterprise_year, merged with existing cluster-level columns."""
    full = panel.enterprise_year
    year_all = pd.to_numeric(full["year"]).astype("int64")
    # the text ids are hashed once each; every grouping below works on these integer codes
    firm = pd.factorize(full["enterprise_id"])
    if "cluster_id" in full.columns:
        cluster = pd.factorize(full["cluster_id"])
    else:
        # each enterprise's cluster from the enterprise table, coded once per enterprise: the codes
        # come out as pd.factorize of the rows' clusters would give them (firms are numbered in the
        # order they first appear, so clusters are too)
        firm_cluster, cluster_ids = pd.factorize(_cluster_of_firms(panel, firm[1]))
        cluster = (np.append(firm_cluster, -1)[firm[0]], cluster_ids)
    sorted_codes, sorted_clusters = pd.factorize(cluster[1], sort=True)
    ccode_all = np.where(cluster[0] >= 0, sorted_codes[cluster[0]], -1)
    # the columns entry and exit need, as a frame that shares them (no copy of the table)
    light = {"enterprise_id": full["enterprise_id"], "year": year_all}
    if "exit" in full.columns:
        light["exit"] = full["exit"]
    ey = pd.DataFrame(light, index=full.index, copy=False)
    exit_recorded = _clusters_with_exit_records(panel, full, ccode_all, len(sorted_clusters))
    operating = full["operating"].fillna(True).astype(bool).to_numpy() if "operating" in full.columns else None
    every = operating is None or bool(operating.all())

    def column(name: str) -> pd.Series:
        """A column over the operating enterprise-years."""
        values = year_all if name == "year" else full[name]
        return values if every else values[operating]

    present = set(full.columns)
    keys = ["cluster_id", "year"]
    # one integer code per cluster-year, computed once and reused by every aggregate
    # as pd.factorize(column("cluster_id"), sort=True), from the codes above
    ccode, clusters = (ccode_all if every else ccode_all[operating]), sorted_clusters
    year = column("year").to_numpy()
    y0 = int(year.min()) if len(year) else 0
    span = int(year.max()) - y0 + 1 if len(year) else 1
    gid, combos = pd.factorize(ccode.astype("int64") * span + (year - y0), sort=True)
    index = pd.MultiIndex.from_arrays(
        [np.asarray(clusters, dtype=object)[combos // span], combos % span + y0], names=keys
    )

    # the cluster-year codes as a categorical: pandas groups on its codes without hashing them again
    group_key = pd.Categorical.from_codes(gid, categories=pd.RangeIndex(len(index)))

    def by_group(values: pd.Series | np.ndarray, how: str) -> np.ndarray:
        out = pd.Series(np.asarray(values, dtype="float64")).groupby(group_key, observed=True).agg(how)
        if len(out) == len(index):  # every cluster-year has rows, in code order
            return out.to_numpy()
        out = pd.Series(np.asarray(values, dtype="float64")).groupby(gid).agg(how)
        return out.reindex(range(len(index))).to_numpy()

    agg = pd.DataFrame({"n_firms": np.bincount(gid, minlength=len(index))}, index=index)
    # entries and exits, each counted in the first cluster-year at or after it happened
    ee = _entry_exit(panel, ey, firm, cluster)
    del ey, light, firm, cluster  # (only what the aggregates below use stays in memory)
    agg["n_entries"] = _count_events(ee, "entry_year", agg.index)
    agg["n_exits"] = _count_events(ee, "exit_year", agg.index)
    prev = agg["n_firms"].groupby(level="cluster_id").shift(1)
    prev_year_ok = (
        pd.Series(agg.index.get_level_values("year"), index=agg.index).groupby(level="cluster_id").diff().eq(1)
    )
    agg["entry_rate"] = (agg["n_entries"] / prev).where(prev_year_ok & (prev > 0))
    agg["exit_rate"] = (agg["n_exits"] / agg["n_firms"]).clip(upper=1.0)
    # a cluster whose survey recorded no exits at all has unknown exits, not zero
    unrecorded = ~exit_recorded[combos // span]
    if unrecorded.any():
        agg.loc[unrecorded, ["n_exits", "exit_rate"]] = np.nan
    if "employment" in present:
        emp = pd.to_numeric(column("employment"), errors="coerce")
        agg["mean_employment"] = by_group(emp, "mean")
        agg["median_employment"] = by_group(emp, "median")
        del emp
    if "sales" in present:
        sales = pd.to_numeric(column("sales"), errors="coerce").clip(lower=0).to_numpy(dtype=float)
        for name, values in _concentration(sales, gid, len(index)).items():
            agg[name] = values
        del sales
    for item in INNOVATION_ITEMS:
        if item in present:
            agg[f"share_{item}"] = by_group(column(item).astype("float64"), "mean")
    export_cols = [c for c in ("export_share", "indirect_export_share") if c in present]
    if export_cols:
        exp = sum(pd.to_numeric(column(c), errors="coerce").fillna(0) for c in export_cols)
        answered = np.logical_or.reduce([column(c).notna().to_numpy() for c in export_cols])
        agg["share_exporter"] = by_group((exp > 0).astype(float).where(answered), "mean")
        del exp, answered
    if "parts_market_share" in present:
        agg["mean_parts_market_share"] = by_group(pd.to_numeric(column("parts_market_share"), errors="coerce"), "mean")
    if panel.manager is not None and "schooling_years" in panel.manager.columns:
        op = pd.DataFrame({"enterprise_id": column("enterprise_id"), "year": column("year")}, copy=False)
        agg["mean_schooling"] = by_group(manager_schooling_by_year(panel, op), "mean")
    agg = agg.reset_index()
    existing = panel.cluster_year
    if existing is not None and len(existing):
        ex = existing.assign(year=pd.to_numeric(existing["year"]).astype("int64"))
        keep_cols = [c for c in ex.columns if c not in agg.columns or c in keys]
        agg = ex[keep_cols].merge(agg, on=keys, how="outer")
    order = [f for f in schema.load("cluster_year").field_names if f in agg.columns]
    rest = [c for c in agg.columns if c not in order]
    out = agg[order + rest].sort_values(keys, kind="stable").reset_index(drop=True)
    for c in ("n_firms", "n_entries", "n_exits"):
        if c in out.columns:
            out[c] = out[c].astype("Int64")
    return out
