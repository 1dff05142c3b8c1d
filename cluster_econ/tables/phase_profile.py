"""The phase profile: Otsuka and Sonobe's Table 1 (the characteristics of each development phase)
measured in a canonical Panel.

For every phase (initiation, quantity expansion, quality improvement, stagnation) the profile
reports, in five sections:

* **Sample**: clusters, cluster-years, enterprise-years and entrants behind the phase.
* **Founders' prior occupation**: shares of ``founder_origin`` among the enterprises that entered
  while their cluster was in the phase (an entry between two surveyed years counts in the next
  surveyed year's phase, as in :func:`cluster_econ.panel.derive.aggregate_cluster_year`; entries
  before a cluster's first surveyed year are not counted). Shares are among entrants whose origin
  is known; the share with a missing or ``unknown`` origin among all entrants is a row of its own.
* **Schooling**: mean and quartiles of the schooling of the manager in charge in each
  enterprise-year (:func:`cluster_econ.panel.derive.manager_schooling_by_year`: the manager with
  the latest ``start_year`` at or before the year, else the current manager).
* **Innovation, imitation and productivity**: shares of enterprise-years reporting each innovation
  item, the annual change of the cluster mean of log labour productivity (value added deflated by
  the country deflator, per worker), the annual change of the log real price index of the
  cluster's product, the annual change of the cluster mean price-cost margin
  ((sales - material - energy - labour cost) / sales), the exit and entry rates, and the spin-off
  share of entrants (entrants with a recorded ``spinoff_parent_id``).
* **Institutions**: the mean share of parts bought in the market, shares of enterprise-years with
  long-term subcontracts, vertical integration, an own brand and direct sales, mean employment and
  the four-firm concentration ratio (CR4, sales shares).

Each cell has a pooled estimate over the units of the phase (entrants, enterprise-years or
cluster-years) and, as its dispersion, the standard deviation across clusters of the clusters'
own values in the phase. :func:`phase_profile_long` also gives the standard error of every
estimate, clustered on the natural unit (entrants: none; enterprise-years: enterprise;
cluster-year changes: cluster), which the replication checks use as their tolerance.

Written here rather than taken from a library: no package computes this table; it is group means
over the canonical tables with pandas.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from cluster_econ import schema
from cluster_econ.errors import SchemaError

__all__ = ["PHASE_ORDER", "phase_profile", "phase_profile_long", "phase_profile_table"]

PHASE_ORDER: tuple[str, ...] = ("initiation", "quantity_expansion", "quality_improvement", "stagnation")

SECTIONS = {
    "sample": "Sample",
    "founders": "Founders' prior occupation (share of entrants with known origin)",
    "schooling": "Schooling of managers in charge (years)",
    "innovation": "Innovation, imitation and productivity",
    "institutions": "Institutions",
}

INNOVATION_ITEMS = ("new_product", "new_process", "quality_certification")
INSTITUTION_ITEMS = ("long_term_subcontract", "vertical_integration", "own_brand", "direct_sales")

ITEM_LABELS = {
    "n_clusters": "Clusters",
    "n_cluster_years": "Cluster-years",
    "n_enterprise_years": "Enterprise-years",
    "n_entrants": "Entrants",
    "origin_unknown": "Origin unknown (share of all entrants)",
    "schooling_mean": "Mean",
    "schooling_p25": "25th percentile",
    "schooling_p50": "Median",
    "schooling_p75": "75th percentile",
    "productivity_growth": "Labour productivity growth (change in mean log real VA per worker)",
    "price_trend": "Real price trend (change in log real price index)",
    "margin_trend": "Margin trend (change in mean price-cost margin)",
    "margin": "Price-cost margin (mean)",
    "exit_rate": "Exit rate",
    "entry_rate": "Entry rate",
    "spinoff_share": "Spin-off share of entrants (parent recorded)",
    "parts_market_share": "Share of parts bought in the market (mean, %)",
    "mean_employment": "Mean size (employees)",
    "cr4": "CR4 (sales share of the four largest)",
}

LONG_COLUMNS = ["section", "item", "phase", "estimate", "se", "n", "n_clusters", "sd_clusters"]


# -- helpers --------------------------------------------------------------------------------
def _clustered_mean(x: np.ndarray, groups: np.ndarray | None) -> tuple[float, float]:
    """Mean of ``x`` and its standard error clustered on ``groups`` (None: every row its own
    group), ``sqrt(G/(G-1) * sum_g (sum_{i in g} (x_i - mean))^2) / n``."""
    n = len(x)
    if n == 0:
        return float("nan"), float("nan")
    m = float(np.mean(x))
    if n < 2:
        return m, float("nan")
    dev = x - m
    if groups is None:
        s = dev
    else:
        codes, _ = pd.factorize(groups)
        s = np.bincount(codes, weights=dev)
    G = len(s)
    if G < 2:
        return m, float("nan")
    return m, float(np.sqrt(G / (G - 1) * np.sum(s**2)) / n)


def _rows_for(values: pd.Series, phase: pd.Series, cluster: pd.Series, se_group: pd.Series | None,
              section: str, item: str, phases: Sequence[str]) -> list[dict[str, Any]]:
    """One long row per phase: pooled mean of ``values``, clustered SE, s.d. of cluster means."""
    df = pd.DataFrame({"v": pd.to_numeric(values, errors="coerce").astype("float64"),
                       "phase": phase.to_numpy(), "cluster": cluster.to_numpy()})
    if se_group is not None:
        df["g"] = se_group.to_numpy()
    df = df[df["v"].notna() & df["phase"].notna()]
    out = []
    for ph in phases:
        sub = df[df["phase"] == ph]
        est, se = _clustered_mean(sub["v"].to_numpy(), sub["g"].to_numpy() if se_group is not None else None)
        cm = sub.groupby("cluster")["v"].mean()
        out.append({"section": section, "item": item, "phase": ph, "estimate": est, "se": se,
                    "n": len(sub), "n_clusters": int(cm.size),
                    "sd_clusters": float(cm.std(ddof=1)) if cm.size >= 2 else float("nan")})
    return out


def _phases_frame(panel: Any, phases: Any) -> pd.DataFrame:
    """cluster_id, year, phase from the argument, cluster_year["phase"] or rule-based detection."""
    if phases is not None:
        if hasattr(phases, "phases") and not isinstance(phases, pd.DataFrame):
            phases = phases.phases  # a PhaseResult
        if not isinstance(phases, pd.DataFrame) or not {"cluster_id", "year", "phase"} <= set(phases.columns):
            raise SchemaError("phase_profile: phases must be a PhaseResult or a DataFrame with cluster_id, "
                              "year and phase")
        ph = phases[["cluster_id", "year", "phase"]]
    else:
        cy = panel.cluster_year
        if cy is not None and "phase" in cy.columns and cy["phase"].notna().any():
            ph = cy[["cluster_id", "year", "phase"]]
        else:
            from cluster_econ.phases import detect

            ph = detect(panel, method="rules").phases
    ph = ph.dropna(subset=["phase"])
    ph = ph[ph["phase"] != "unknown"].copy()  # detection could not tell: no phase, like missing
    ph["year"] = pd.to_numeric(ph["year"]).astype("int64")
    ph["phase"] = ph["phase"].astype(str)
    unknown = sorted(set(ph["phase"]) - set(PHASE_ORDER))
    if unknown:
        raise SchemaError(f"phase_profile: column 'phase' has values outside {', '.join(PHASE_ORDER)}: "
                          f"{', '.join(unknown[:5])}")
    if ph.duplicated(["cluster_id", "year"]).any():
        raise SchemaError("phase_profile: phases have more than one row per cluster_id and year")
    return ph.reset_index(drop=True)


def _manager_in_charge(panel: Any, ey: pd.DataFrame) -> pd.Series:
    """Schooling of the manager in charge in each enterprise-year (the package's one definition,
    :func:`cluster_econ.panel.derive.manager_schooling_by_year`)."""
    from cluster_econ.panel.derive import manager_schooling_by_year

    return manager_schooling_by_year(panel, ey).astype("float64")


def _annual_change(cy: pd.DataFrame, column: str) -> pd.Series:
    """Change of ``column`` from the previous calendar year of the same cluster (missing across gaps)."""
    s = cy.sort_values(["cluster_id", "year"])
    prev_year = s.groupby("cluster_id")["year"].shift(1)
    diff = s.groupby("cluster_id")[column].diff()
    return diff.where(s["year"] - prev_year == 1).reindex(cy.index)


# -- public ---------------------------------------------------------------------------------
def phase_profile_long(panel: Any, phases: Any = None) -> pd.DataFrame:
    """The phase profile as a tidy table with standard errors.

    Parameters
    ----------
    panel : Panel
        A canonical Panel (``enterprise`` and ``enterprise_year``; ``manager``, ``cluster_year``
        and ``deflator`` used when present).
    phases : PhaseResult or DataFrame, optional
        ``cluster_id``, ``year``, ``phase``. Default: ``cluster_year["phase"]`` when present, else
        :func:`cluster_econ.phases.detect` with ``method="rules"``.

    Returns
    -------
    DataFrame
        One row per (section, item, phase): ``estimate``, ``se`` (clustered on the unit named in
        the module docstring), ``n`` (units), ``n_clusters`` and ``sd_clusters`` (standard
        deviation across clusters of the clusters' values in the phase).
    """
    ph = _phases_frame(panel, phases)
    present = [p for p in PHASE_ORDER if p in set(ph["phase"])]
    if not present:
        raise SchemaError("phase_profile: no cluster-year has a phase")
    ent = panel.enterprise
    cy = panel.with_cluster_year().cluster_year.drop(columns=["phase"], errors="ignore")
    cy = cy.assign(year=pd.to_numeric(cy["year"]).astype("int64")).merge(ph, on=["cluster_id", "year"], how="left")
    rows: list[dict[str, Any]] = []

    # sample sizes
    ey = panel.enterprise_year
    cluster_of = ent.set_index("enterprise_id")["cluster_id"]
    ey = ey.assign(cluster_id=ey["enterprise_id"].map(cluster_of), year=pd.to_numeric(ey["year"]).astype("int64"))
    if "operating" in ey.columns:
        ey = ey[ey["operating"].fillna(True).astype(bool).to_numpy()]
    ey = ey.merge(ph, on=["cluster_id", "year"], how="left")
    from cluster_econ.panel.derive import entry_exit

    ee = entry_exit(panel).dropna(subset=["entry_year"])
    ee = ee.assign(entry_year=ee["entry_year"].astype("float64")).sort_values("entry_year", kind="stable")
    phk = ph.assign(entry_year=ph["year"].astype("float64")).sort_values("entry_year", kind="stable")
    entrants = pd.merge_asof(ee, phk[["cluster_id", "entry_year", "phase"]], on="entry_year",
                             by="cluster_id", direction="forward")
    first_year = ph.groupby("cluster_id")["year"].min()
    entrants = entrants[entrants["entry_year"] >= entrants["cluster_id"].map(first_year).astype("float64")]
    entrants = entrants.dropna(subset=["phase"]).merge(
        ent.drop(columns=["cluster_id", "exit_year", "year_established"], errors="ignore"),
        on="enterprise_id", how="left")
    for ph_name in present:
        cyp = cy[cy["phase"] == ph_name]
        for item, value in (("n_clusters", cyp["cluster_id"].nunique()), ("n_cluster_years", len(cyp)),
                            ("n_enterprise_years", int((ey["phase"] == ph_name).sum())),
                            ("n_entrants", int((entrants["phase"] == ph_name).sum()))):
            rows.append({"section": "sample", "item": item, "phase": ph_name, "estimate": int(value),
                         "se": np.nan, "n": int(value), "n_clusters": int(cyp["cluster_id"].nunique()),
                         "sd_clusters": np.nan})

    # founders' prior occupations
    if "founder_origin" in entrants.columns and entrants["founder_origin"].notna().any():
        origins = schema.load("enterprise").field("founder_origin").enum or []
        origin = entrants["founder_origin"].astype("string")
        unknown = origin.isna() | origin.eq("unknown")
        known = entrants[~unknown.to_numpy()]
        seen = set(known["founder_origin"].astype(str))
        for name in [o for o in origins if o in seen and o != "unknown"]:
            rows += _rows_for(known["founder_origin"].astype(str).eq(name).astype(float), known["phase"],
                              known["cluster_id"], None, "founders", name, present)
        rows += _rows_for(unknown.astype(float), entrants["phase"], entrants["cluster_id"], None, "founders",
                          "origin_unknown", present)

    # schooling of the manager in charge
    school = _manager_in_charge(panel, ey)
    if school.notna().any():
        rows += _rows_for(school, ey["phase"], ey["cluster_id"], ey["enterprise_id"], "schooling",
                          "schooling_mean", present)
        frame = pd.DataFrame({"s": school, "phase": ey["phase"], "c": ey["cluster_id"]}).dropna()
        for q, name in ((0.25, "schooling_p25"), (0.5, "schooling_p50"), (0.75, "schooling_p75")):
            for ph_name in present:
                sub = frame[frame["phase"] == ph_name]
                cq = sub.groupby("c")["s"].quantile(q)
                rows.append({"section": "schooling", "item": name, "phase": ph_name,
                             "estimate": float(sub["s"].quantile(q)) if len(sub) else np.nan, "se": np.nan,
                             "n": len(sub), "n_clusters": int(cq.size),
                             "sd_clusters": float(cq.std(ddof=1)) if cq.size >= 2 else np.nan})

    # innovation, imitation and productivity
    for item in INNOVATION_ITEMS:
        if item in ey.columns and ey[item].notna().any():
            rows += _rows_for(ey[item].astype("float64"), ey["phase"], ey["cluster_id"], ey["enterprise_id"],
                              "innovation", item, present)
    firm_cy = _firm_cluster_year(panel, ey, ent)
    cyx = cy.merge(firm_cy, on=["cluster_id", "year"], how="left") if firm_cy is not None else cy
    changes = {}
    if "log_productivity" in cyx.columns:
        changes["productivity_growth"] = _annual_change(cyx, "log_productivity")
    if "price_index" in cyx.columns and cyx["price_index"].notna().any():
        lp = np.log(pd.to_numeric(cyx["price_index"], errors="coerce").where(lambda s: s > 0))
        changes["price_trend"] = _annual_change(cyx.assign(_lp=lp), "_lp")
    if "margin" in cyx.columns:
        changes["margin_trend"] = _annual_change(cyx, "margin")
    for item, series in changes.items():
        rows += _rows_for(series, cyx["phase"], cyx["cluster_id"], cyx["cluster_id"], "innovation", item, present)
    if "margin" in cyx.columns:
        rows += _rows_for(cyx["margin"], cyx["phase"], cyx["cluster_id"], cyx["cluster_id"], "innovation",
                          "margin", present)
    for item in ("exit_rate", "entry_rate"):
        if item in cyx.columns and cyx[item].notna().any():
            rows += _rows_for(cyx[item], cyx["phase"], cyx["cluster_id"], cyx["cluster_id"], "innovation", item,
                              present)
    if "spinoff_parent_id" in entrants.columns:
        rows += _rows_for(entrants["spinoff_parent_id"].notna().astype(float), entrants["phase"],
                          entrants["cluster_id"], None, "innovation", "spinoff_share", present)

    # institutions
    if "parts_market_share" in ey.columns and ey["parts_market_share"].notna().any():
        rows += _rows_for(ey["parts_market_share"], ey["phase"], ey["cluster_id"], ey["enterprise_id"],
                          "institutions", "parts_market_share", present)
    for item in INSTITUTION_ITEMS:
        if item in ey.columns and ey[item].notna().any():
            rows += _rows_for(ey[item].astype("float64"), ey["phase"], ey["cluster_id"], ey["enterprise_id"],
                              "institutions", item, present)
    if "employment" in ey.columns:
        rows += _rows_for(ey["employment"], ey["phase"], ey["cluster_id"], ey["enterprise_id"], "institutions",
                          "mean_employment", present)
    if "cr4" in cyx.columns and cyx["cr4"].notna().any():
        rows += _rows_for(cyx["cr4"], cyx["phase"], cyx["cluster_id"], cyx["cluster_id"], "institutions", "cr4",
                          present)
    return pd.DataFrame(rows, columns=LONG_COLUMNS)


def _firm_cluster_year(panel: Any, ey: pd.DataFrame, ent: pd.DataFrame) -> pd.DataFrame | None:
    """Cluster-year means of log labour productivity (deflated) and of the price-cost margin."""
    cols: dict[str, pd.Series] = {}
    if {"value_added", "employment"} <= set(ey.columns):
        va = pd.to_numeric(ey["value_added"], errors="coerce").astype("float64")
        defl = panel.deflator
        if defl is not None and {"country", "year", "price_index"} <= set(defl.columns) and "country" in ent.columns:
            country = ey["enterprise_id"].map(ent.set_index("enterprise_id")["country"])
            key = pd.MultiIndex.from_arrays([country, ey["year"]])
            d = defl.assign(year=pd.to_numeric(defl["year"]).astype("int64")).set_index(["country", "year"])
            price = pd.Series(d["price_index"].reindex(key).to_numpy(dtype="float64"), index=ey.index)
            va = va / price
        emp = pd.to_numeric(ey["employment"], errors="coerce").astype("float64")
        ok = (va > 0) & (emp > 0)
        cols["log_productivity"] = np.log(va.where(ok)) - np.log(emp.where(ok))
    if {"sales", "material_cost"} <= set(ey.columns):
        sales = pd.to_numeric(ey["sales"], errors="coerce").astype("float64")
        cost = sum(pd.to_numeric(ey[c], errors="coerce").fillna(0.0).astype("float64")
                   for c in ("material_cost", "energy_cost", "labour_cost") if c in ey.columns)
        cols["margin"] = ((sales - cost) / sales).where(sales > 0)
    if not cols:
        return None
    frame = pd.DataFrame({"cluster_id": ey["cluster_id"], "year": ey["year"], **cols})
    return frame.groupby(["cluster_id", "year"], as_index=False).mean(numeric_only=True)


def phase_profile(panel: Any, phases: Any = None) -> pd.DataFrame:
    """Otsuka and Sonobe's Table 1 measured in data, one column pair per phase.

    Parameters
    ----------
    panel : Panel
        A canonical Panel.
    phases : PhaseResult or DataFrame, optional
        ``cluster_id``, ``year``, ``phase``; default ``cluster_year["phase"]`` when present, else
        rule-based detection (:func:`cluster_econ.phases.detect`, ``method="rules"``).

    Returns
    -------
    DataFrame
        Rows: a two-level index (section, item) with the sections Sample, Founders' prior
        occupation, Schooling, Innovation/imitation/productivity and Institutions (see the
        module docstring for each item). Columns: a two-level index (phase, statistic) with the
        statistics ``estimate`` (pooled over the phase) and ``sd_clusters`` (standard deviation
        across clusters of the clusters' values). Counts are integers; missing cells are NaN.
    """
    long = phase_profile_long(panel, phases)
    phases_present = [p for p in PHASE_ORDER if p in set(long["phase"])]
    items = list(dict.fromkeys(zip(long["section"], long["item"], strict=True)))
    cols = pd.MultiIndex.from_tuples([(p, s) for p in phases_present for s in ("estimate", "sd_clusters")],
                                     names=["phase", "statistic"])
    index = pd.MultiIndex.from_tuples(items, names=["section", "item"])
    out = pd.DataFrame(index=index, columns=cols, dtype=object)
    for r in long.itertuples(index=False):
        est = int(r.estimate) if r.section == "sample" else float(r.estimate)
        out.loc[(r.section, r.item), (r.phase, "estimate")] = est
        out.loc[(r.section, r.item), (r.phase, "sd_clusters")] = (
            np.nan if r.section == "sample" else float(r.sd_clusters))
    return out


def phase_profile_table(panel: Any = None, phases: Any = None, *, profile: pd.DataFrame | None = None,
                        digits: int = 3, title: str | None = None) -> Any:
    """The phase profile rendered by :func:`cluster_econ.tables.descriptive_table`.

    Pass ``profile`` (the output of :func:`phase_profile`) to render it without recomputing.
    Returns a :class:`~cluster_econ.tables.descriptive.DescriptiveTable` (LaTeX, HTML, Markdown,
    Word, Excel, CSV).
    """
    from cluster_econ.tables.descriptive import descriptive_table

    prof = phase_profile(panel, phases) if profile is None else profile
    labels = {**SECTIONS, **ITEM_LABELS, "estimate": "Value", "sd_clusters": "S.d. across clusters"}
    for item in (*INNOVATION_ITEMS, *INSTITUTION_ITEMS):
        labels.setdefault(item, f"Share with {schema.labels().get(item, item).lower()}")
    notes = [
        "Values pool the units of each phase (entrants, enterprise-years or cluster-years); "
        "'S.d. across clusters' is the standard deviation of the clusters' own values in the phase.",
        "Phase of an entrant: its cluster's phase in the entry year. Annual changes are between "
        "consecutive calendar years of a cluster, assigned to the later year's phase.",
    ]
    return descriptive_table(prof, labels=labels, digits=digits, stub="",
                             title=title or "Phase profile (Otsuka and Sonobe, Table 1, measured)",
                             notes=notes)
