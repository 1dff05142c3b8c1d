"""Analysis data for the propositions: phases, the firm-year frame and productivity.

Everything the proposition runners read is built here, once per panel and phase labelling, so
every test uses the same definitions:

- **phase** of a firm-year: the phase of its cluster in that year (``cluster_year``), from the
  source :func:`resolve_phases` chose. By default ``stagnation`` is analysed as quantity
  expansion (stagnation is quantity expansion that does not end); ``stagnation="separate"``
  keeps it apart.
- **entry year** and **entry phase**: :meth:`Panel.entry_exit` (``year_established`` where known,
  else first year observed; left-censored founders are not entrants); the entry phase is the
  cluster's phase in the entry year (``"unknown"`` in the firm-year frame when it is not known).
- **schooling**: years of schooling of the manager in charge in the year (the manager with the
  latest ``manager.start_year`` at or before the year, when the panel records start years);
  otherwise of the enterprise's current manager (highest generation), constant per enterprise
  (:func:`cluster_econ.panel.derive.manager_schooling_by_year` and
  :func:`~cluster_econ.panel.derive.current_manager_schooling`, shared with the phase profile
  table).
- **innovator**: ``new_product`` or ``new_process`` in the year (missing if both are missing).
- **exit**: ``enterprise_year.exit`` (a true exit in the year), else the year equal to
  ``enterprise.exit_year``.
- **real price**: ``log(price_main_product / deflator)``, the enterprise's real unit price.
- **real values**: monetary columns divided by the country deflator (``deflator.price_index``)
  when the rows are nominal (``price_base_year`` missing).
- **productivity** (:func:`productivity`): a Cobb-Douglas residual
  ``tfp = log V - b_l log L - b_k log K``, where ``V`` is real value added (divided by
  ``cluster_year.price_index``, the real price of the cluster's product, when present, so the
  residual measures output per unit of input rather than revenue). The elasticities are
  **estimated from the data** by default (:data:`DEFAULT_PRODUCTIVITY`: the dynamic-panel GMM of
  :func:`cluster_econ.estimate.production.estimate_productivity`, robust to measurement error in
  money; see :mod:`cluster_econ.hypotheses.productivity`); the
  alternatives are the index-number ``"cost_share"`` (median labour-cost share, constant
  returns), ``"feols"`` (fixed effects, biased by simultaneity) or a given pair ``(b_l, b_k)``.
  Productivity is never taken from a simulator's truth.

Written here (not taken from a library) because no library knows the canonical tables; the
estimation itself goes through :mod:`cluster_econ.estimate`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from cluster_econ.errors import InputError
from cluster_econ.panel.container import Panel
from cluster_econ.panel.derive import current_manager_schooling, manager_schooling_by_year

__all__ = ["DEFAULT_PRODUCTIVITY", "PRODUCTIVITY_METHODS", "AnalysisData", "ProductivityModel", "build",
           "productivity", "resolve_phases"]

#: How the propositions measure productivity unless told otherwise: the production function is
#: estimated from the data (never assumed). Change this one line to switch estimator.
DEFAULT_PRODUCTIVITY = "dynamic"
PRODUCTIVITY_METHODS = ("dynamic", "cost_share", "feols")

ORDERED = ("initiation", "quantity_expansion", "quality_improvement")
INNOVATION_ITEMS = ("new_product", "new_process", "own_brand", "direct_sales", "long_term_subcontract",
                    "vertical_integration", "quality_certification")


def _num(s: pd.Series) -> pd.Series:
    """Float copy of a column (nullable Int64/boolean become float with NaN)."""
    if s.dtype == object:
        return pd.to_numeric(s, errors="coerce").astype(float)
    return s.astype("Float64").astype(float) if str(s.dtype) in ("boolean", "Int64") else pd.to_numeric(
        s, errors="coerce").astype(float)


# --------------------------------------------------------------------------------------------
# phases
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PhaseLabels:
    """Phase of every cluster-year and where it came from."""

    table: pd.DataFrame  # cluster_id, year, phase
    source: str          # "column phase", "rules", "breaks", "hmm", "user table"


def resolve_phases(panel: Panel, phases: Any = None, by: str = "phase") -> PhaseLabels:
    """Phase labels per cluster-year.

    Parameters
    ----------
    panel : Panel
    phases : None, "column", "rules", "breaks", "hmm" or DataFrame
        ``None``: the ``cluster_year`` column ``by`` when it has values, else phases detected by
        the rules method. ``"column"``: that column (an error if absent). A method name: run
        :func:`cluster_econ.phases.detect`. A DataFrame with ``cluster_id``, ``year`` and ``by``
        (or ``phase``): the user's own labels, validated.
    by : str
        Name of the phase column.
    """
    from cluster_econ import phases as ph

    cy = panel.cluster_year
    if isinstance(phases, pd.DataFrame):
        col = by if by in phases.columns else "phase"
        res = ph.from_column(phases, column=col)
        return PhaseLabels(res.phases, "user table")
    if phases is None or phases == "column":
        if cy is not None and by in cy.columns and cy[by].notna().any():
            res = ph.from_column(cy, column=by)
            return PhaseLabels(res.phases, f"column cluster_year.{by}")
        if phases == "column":
            raise InputError(f"phases='column': the panel has no cluster_year.{by} column with values")
        phases = "rules"
    if phases not in ("rules", "breaks", "hmm"):
        raise InputError(f"phases must be None, 'column', 'rules', 'breaks', 'hmm' or a DataFrame, "
                         f"not {phases!r}")
    res = ph.detect(panel, method=phases)
    return PhaseLabels(res.phases, f"detected ({phases})")


# --------------------------------------------------------------------------------------------
# productivity
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ProductivityModel:
    """How productivity was measured: the elasticities, their fit and the price used."""

    beta_l: float
    beta_k: float
    price: str
    result: Any = None
    note: str = ""
    status: str = "ok"
    cov: Any = None  # 2 x 2 covariance of (beta_l, beta_k); None when the method gives none


def _real_money(panel: Panel, ey: pd.DataFrame, country: pd.Series) -> tuple[pd.Series, str]:
    """Divisor that turns nominal money of each row into base-year money."""
    defl = panel.deflator
    nominal = ey["price_base_year"].isna() if "price_base_year" in ey.columns else pd.Series(True, index=ey.index)
    if defl is None or not {"country", "year", "price_index"} <= set(defl.columns):
        return pd.Series(1.0, index=ey.index), "nominal (no deflator table)"
    d = defl.assign(year=pd.to_numeric(defl["year"]).astype(int))
    key = pd.MultiIndex.from_arrays([d["country"].astype(str), d["year"]])
    s = pd.Series(pd.to_numeric(d["price_index"], errors="coerce").to_numpy(), index=key)
    want = pd.MultiIndex.from_arrays([country.astype(str).to_numpy(), ey["year"].astype(int).to_numpy()])
    div = pd.Series(s.reindex(want).to_numpy(), index=ey.index)
    div = div.where(nominal, 1.0)
    return div, "deflated by deflator.price_index"


def productivity(frame: pd.DataFrame, method: Any = None) -> tuple[pd.Series, ProductivityModel]:
    """Cobb-Douglas productivity residual ``tfp = log V - b_l log L - b_k log K`` of a frame built
    by :func:`build` (``V`` is the column ``log_va_q``, see the module docstring).

    ``method=None`` is :data:`DEFAULT_PRODUCTIVITY`. ``"dynamic"`` (the default): the elasticities
    are estimated from the frame by :func:`cluster_econ.estimate.production.estimate_productivity`
    (dynamic-panel GMM with the common-factor restriction, instruments dated so that survey error
    in money does not bias it, cluster levels and last year's innovation by phase in the law of
    motion), and their covariance by
    :func:`cluster_econ.hypotheses.productivity.elasticity_covariance`; when the estimator
    declines (no admissible root, competing roots, too few rows), productivity is missing and
    ``ProductivityModel.status`` says why.
    ``"cost_share"``: an index-number Solow residual, ``b_l`` the median labour-cost share of value
    added in the enterprise's cluster and ``b_k = 1 - b_l`` (constant returns; when firms grow and
    true returns are decreasing, part of their growth shows up as productivity: on the simulator
    with innovation gains switched off, ``no_productivity_gain``, P3 and P7 still find faster
    productivity growth in quality improvement with this index). ``"feols"``: ``feols`` of ``log V``
    on ``log L`` and ``log K`` with enterprise and cluster-by-year fixed effects (biased when
    labour responds to productivity: on the demo universe about 0.95 and 0.03 against true 0.6
    and 0.3). ``(b_l, b_k)``: elasticities the user takes from elsewhere.
    Rows with non-positive value added, employment or capital get a missing productivity.
    """
    method = DEFAULT_PRODUCTIVITY if method is None else method
    res = None
    status = "ok"
    cov = None
    if isinstance(method, tuple | list):
        if len(method) != 2:
            raise InputError("productivity elasticities must be a pair (b_l, b_k)")
        bl = pd.Series(float(method[0]), index=frame.index)
        bk = pd.Series(float(method[1]), index=frame.index)
        note = f"elasticities given by the user: b_l={float(method[0]):g}, b_k={float(method[1]):g}"
        cov = np.zeros((2, 2))
    elif method == "dynamic":
        from cluster_econ.estimate.production import estimate_productivity
        from cluster_econ.hypotheses.productivity import elasticity_covariance

        est = estimate_productivity(frame.rename(columns={"log_va_q": "log_value_added", "log_l": "log_employment",
                                                          "log_k": "log_capital"}))
        res = est
        if not est.accepted:
            status = "declined"
            note = f"productivity not estimated (the production function estimate was declined): {est.reason}"
            bl = bk = pd.Series(np.nan, index=frame.index)
        else:
            b_l, b_k = float(est.elasticities["log_employment"]), float(est.elasticities["log_capital"])
            rho = float(est.result.stats.get("rho", np.nan)) if est.result is not None else np.nan
            cov = elasticity_covariance(frame, b_l, b_k, rho)
            se = np.sqrt(np.diag(cov)) if cov is not None else (np.nan, np.nan)
            bl, bk = pd.Series(b_l, index=frame.index), pd.Series(b_k, index=frame.index)
            note = (f"elasticities by dynamic-panel GMM (estimate_productivity): b_l={b_l:.3f} (se {se[0]:.3f}), "
                    f"b_k={b_k:.3f} (se {se[1]:.3f}), rho={rho:.3f}, {est.result.nobs if est.result else 0} "
                    "enterprise-years")
    elif method == "feols":
        from cluster_econ.estimate import feols

        need = frame[["log_va_q", "log_l", "log_k", "enterprise_id", "cluster_id", "year"]].dropna()
        if len(need) < 10:
            return pd.Series(np.nan, index=frame.index, name="tfp"), ProductivityModel(
                np.nan, np.nan, "", None, "too few rows with value added, employment and capital",
                "too few rows")
        res = feols("log_va_q ~ log_l + log_k | enterprise_id + cluster_id^year", need, vcov="iid")
        bl = pd.Series(float(res.params["log_l"]), index=frame.index)
        bk = pd.Series(float(res.params["log_k"]), index=frame.index)
        note = "elasticities by feols with enterprise and cluster-by-year fixed effects"
        cov = res.cov.loc[["log_l", "log_k"], ["log_l", "log_k"]].to_numpy()
    elif method == "cost_share":
        if "labour_cost" not in frame.columns:
            return pd.Series(np.nan, index=frame.index, name="tfp"), ProductivityModel(
                np.nan, np.nan, "", None, "cost shares need enterprise_year.labour_cost", "no labour cost")
        share = pd.to_numeric(frame["labour_cost"], errors="coerce") / pd.to_numeric(
            frame["value_added"], errors="coerce")
        share = share.where((share > 0) & (share < 1))
        bl = share.groupby(frame["cluster_id"]).transform("median").fillna(share.median())
        bk = 1.0 - bl
        note = "elasticities from the median labour-cost share of value added per cluster, constant returns"
    else:
        raise InputError(f"productivity method must be one of {', '.join(PRODUCTIVITY_METHODS)} or a pair "
                         f"(b_l, b_k), not {method!r}")
    tfp = frame["log_va_q"] - bl * frame["log_l"] - bk * frame["log_k"]
    return tfp.rename("tfp"), ProductivityModel(float(bl.mean()), float(bk.mean()),
                                                str(frame.attrs.get("price", "")), res, note, status, cov)


# --------------------------------------------------------------------------------------------
# the firm-year frame
# --------------------------------------------------------------------------------------------
@dataclass
class AnalysisData:
    """Everything the runners read: the firm-year frame, firms, cluster-years, labels."""

    panel: Panel
    firm_year: pd.DataFrame
    firms: pd.DataFrame
    cluster_year: pd.DataFrame
    phase_source: str
    stagnation: str
    productivity: ProductivityModel | None = None
    notes: list[str] = field(default_factory=list)
    _cache: dict[str, Any] = field(default_factory=dict)

    def has(self, table: str, column: str) -> bool:
        return self.panel.has_column(table, column)


def _analysis_phase(raw: pd.Series, stagnation: str) -> pd.Series:
    if stagnation == "quantity_expansion":
        return raw.replace({"stagnation": "quantity_expansion"})
    if stagnation == "separate":
        return raw
    raise InputError(f"stagnation must be 'quantity_expansion' or 'separate', not {stagnation!r}")


def build(panel: Panel, phases: Any = None, by: str = "phase", stagnation: str = "quantity_expansion",
          with_productivity: bool = True, productivity_method: Any = None,
          cluster_aggregates: bool = True) -> AnalysisData:
    """Build the analysis data of a panel (see the module docstring for every definition).

    ``with_productivity=False`` skips the production function and ``cluster_aggregates=False``
    the cluster-year aggregates of ``enterprise_year`` (CR4, HHI, counts; P8 reads CR4) when
    ``cluster_year`` lacks them: a Monte Carlo of propositions that need neither runs faster.
    """
    labels = resolve_phases(panel, phases, by)
    ph = labels.table.assign(year=lambda d: d["year"].astype(int), cluster_id=lambda d: d["cluster_id"].astype(str))
    ph = ph.rename(columns={"phase": "phase_label"})
    ph["phase"] = _analysis_phase(ph["phase_label"], stagnation)

    ent = panel.enterprise.copy()
    ent["enterprise_id"] = ent["enterprise_id"].astype(str)
    ent["cluster_id"] = ent["cluster_id"].astype(str)
    ey = panel.enterprise_year.copy()
    ey["enterprise_id"] = ey["enterprise_id"].astype(str)
    ey = ey[pd.to_numeric(ey["year"], errors="coerce").notna()]
    ey["year"] = pd.to_numeric(ey["year"]).astype(int)
    if "operating" in ey.columns:
        ey = ey[ey["operating"].fillna(True).astype(bool).to_numpy()]
    keep_ent = [c for c in ("enterprise_id", "cluster_id", "country", "product_complexity", "founder_origin",
                            "spinoff_parent_id", "year_established") if c in ent.columns]
    fy = ey.drop(columns=[c for c in keep_ent if c != "enterprise_id" and c in ey.columns]).merge(
        ent[keep_ent], on="enterprise_id", how="left")
    fy = fy.merge(ph, on=["cluster_id", "year"], how="left")
    fy = fy.sort_values(["enterprise_id", "year"], kind="mergesort").reset_index(drop=True)

    # entry and exit per enterprise
    ee = Panel({"enterprise": ent, "enterprise_year": fy}).entry_exit()
    ee = ee.set_index("enterprise_id")
    key = pd.MultiIndex.from_arrays([ph["cluster_id"], ph["year"]])
    phase_of = pd.Series(ph["phase"].to_numpy(), index=key)
    label_of = pd.Series(ph["phase_label"].to_numpy(), index=key)
    ey_ = ee["entry_year"]
    want = pd.MultiIndex.from_arrays([ee["cluster_id"].astype(str).to_numpy(),
                                      ey_.fillna(-1).astype(int).to_numpy()])
    ee["entry_phase"] = np.where(ey_.notna(), phase_of.reindex(want).to_numpy(), None)
    ee["entry_phase_label"] = np.where(ey_.notna(), label_of.reindex(want).to_numpy(), None)
    firms = ent.set_index("enterprise_id").join(
        ee[["first_year", "last_year", "entry_year", "exit_year", "status", "entry_phase", "entry_phase_label"]],
        how="left", rsuffix="_ee")
    school = current_manager_schooling(panel).astype(float)
    school.index = school.index.astype(str)
    firms["schooling"] = school.reindex(firms.index)

    fy["entry_year"] = fy["enterprise_id"].map(ee["entry_year"])
    fy["entry_phase"] = fy["enterprise_id"].map(ee["entry_phase"]).fillna("unknown").astype(str)
    fy["age"] = (fy["year"] - fy["entry_year"]).where(lambda a: a >= 0)
    fy["schooling"] = np.asarray(manager_schooling_by_year(panel, fy), dtype=float)
    for c in INNOVATION_ITEMS:
        if c in fy.columns:
            fy[c] = _num(fy[c])
    if "new_product" in fy.columns or "new_process" in fy.columns:
        a = fy.get("new_product", pd.Series(np.nan, index=fy.index))
        b = fy.get("new_process", pd.Series(np.nan, index=fy.index))
        fy["innovator"] = np.where((a == 1) | (b == 1), 1.0, np.where(a.isna() & b.isna(), np.nan, 0.0))
    if "exit" in fy.columns:
        fy["exit"] = _num(fy["exit"]).fillna(0.0)
    else:
        fy["exit"] = (fy["year"] == fy["enterprise_id"].map(ee["exit_year"])).astype(float)

    country = fy["country"] if "country" in fy.columns else pd.Series("", index=fy.index)
    div, how = _real_money(panel, fy, country)
    notes = [f"money {how}"]
    cy = panel.cluster_year
    cprice = None
    if cy is not None and "price_index" in cy.columns and cy["price_index"].notna().any():
        c2 = cy.assign(year=pd.to_numeric(cy["year"]).astype(int), cluster_id=cy["cluster_id"].astype(str))
        s = pd.Series(pd.to_numeric(c2["price_index"], errors="coerce").to_numpy(),
                      index=pd.MultiIndex.from_arrays([c2["cluster_id"], c2["year"]]))
        cprice = pd.Series(s.reindex(pd.MultiIndex.from_arrays([fy["cluster_id"], fy["year"]])).to_numpy(),
                           index=fy.index)

    def log_pos(x: pd.Series) -> pd.Series:
        x = pd.to_numeric(x, errors="coerce").astype(float)
        return np.log(x.where(x > 0))

    va = fy["value_added"] if "value_added" in fy.columns else pd.Series(np.nan, index=fy.index)
    fy["log_va"] = log_pos(va / div)
    if cprice is not None:
        fy["log_price_index"] = np.log(cprice.where(cprice > 0))
        fy["log_va_q"] = fy["log_va"] - fy["log_price_index"]
        fy.attrs["price"] = "value added deflated by the country deflator and the cluster's real price index"
    else:
        fy["log_va_q"] = fy["log_va"]
        fy.attrs["price"] = "value added deflated by the country deflator (revenue-based)"
    fy["log_l"] = log_pos(fy["employment"]) if "employment" in fy.columns else np.nan
    fy["log_k"] = log_pos(fy["capital_stock"] / div) if "capital_stock" in fy.columns else np.nan
    if "price_main_product" in fy.columns:
        fy["log_real_price"] = log_pos(fy["price_main_product"] / div)
    if "parts_market_share" in fy.columns:
        fy["parts_market_share"] = _num(fy["parts_market_share"])
    if "management_score" in fy.columns:
        fy["management_score"] = _num(fy["management_score"])

    prod = None
    if with_productivity and fy["log_va_q"].notna().any() and fy["log_l"].notna().any() \
            and fy["log_k"].notna().any():
        fy["tfp"], prod = productivity(fy, productivity_method)
    else:
        fy["tfp"] = np.nan
    # gap-aware one-year changes
    prev_year = fy.groupby("enterprise_id")["year"].shift(1)
    consecutive = (fy["year"] - prev_year) == 1
    for col in ("tfp", "log_real_price", "log_l", "log_k", "log_va"):
        if col in fy.columns:
            fy[f"d_{col}"] = (fy[col] - fy.groupby("enterprise_id")[col].shift(1)).where(consecutive)
    fy["log_l_lag"] = fy.groupby("enterprise_id")["log_l"].shift(1).where(consecutive)

    aggregate = cy is None or ("cr4" not in cy.columns and cluster_aggregates)
    cyf = panel.with_cluster_year().cluster_year if aggregate else cy
    cyf = cyf.assign(year=pd.to_numeric(cyf["year"]).astype(int), cluster_id=cyf["cluster_id"].astype(str))
    cyf = cyf.drop(columns=[c for c in ("phase",) if c in cyf.columns]).merge(ph, on=["cluster_id", "year"],
                                                                              how="left")
    n_missing = int(fy["phase"].isna().sum())
    if n_missing:
        notes.append(f"{n_missing} firm-years have no phase (cluster-year not labelled)")
    return AnalysisData(panel=panel, firm_year=fy, firms=firms.reset_index(), cluster_year=cyf,
                        phase_source=labels.source + (" (stagnation analysed as quantity_expansion)"
                                                      if stagnation == "quantity_expansion"
                                                      and (ph["phase_label"] == "stagnation").any() else ""),
                        stagnation=stagnation, productivity=prod, notes=notes)
