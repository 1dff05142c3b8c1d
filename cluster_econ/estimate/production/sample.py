"""Step 1 of every production-function estimate: the estimation sample.

:func:`prepare_sample` checks the arguments and the columns, drops rows with missing values
(counted), sorts the rows by entity and year and finds each row's lags in *calendar* time: the
lag of a row is the same entity's row of year ``t-1`` (``t-2``); across a year the entity was not
observed there is no lag, and such rows are counted. :func:`panel_frame` builds the estimation
frame from a canonical :class:`~cluster_econ.panel.Panel`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from cluster_econ.errors import EstimationError, SchemaError

__all__ = ["PANEL_COLUMNS", "Sample", "Spec", "panel_frame", "prepare_sample"]

# names of the columns built from a Panel
PANEL_COLUMNS = {
    "output": "log_value_added",
    "gross_output": "log_gross_output",
    "free": "log_employment",
    "state": "log_capital",
    "proxy_materials": "log_materials",
    "proxy_investment": "investment",
    "share": "log_materials_share",
    "exit": "exit",
}


def as_tuple(x: str | Sequence[str] | None) -> tuple[str, ...]:
    if x is None:
        return ()
    if isinstance(x, str):
        return (x,)
    return tuple(x)


def rows_text(idx: pd.Index, limit: int = 10) -> str:
    vals = list(idx[:limit])
    more = f" and {len(idx) - limit} more" if len(idx) > limit else ""
    return ", ".join(str(v) for v in vals) + more


@dataclass(frozen=True)
class Spec:
    """Which column plays which role (names as in the data)."""

    method: str
    output: str
    free: tuple[str, ...]
    state: tuple[str, ...]
    proxy: str | None
    controls: tuple[str, ...] = ()
    lom_controls: tuple[str, ...] = ()
    lag_instruments: tuple[str, ...] = ()
    share: str | None = None
    exit: str | None = None
    proxy_type: str = "materials"
    entity: str = "enterprise_id"
    time: str = "year"
    vcov_cluster: str | None = None

    @property
    def inputs(self) -> tuple[str, ...]:
        return (*self.free, *self.state)

    @property
    def proxy_is_investment(self) -> bool:
        return self.proxy_type == "investment"


@dataclass
class Sample:
    """Estimation arrays, sorted by entity and year.

    ``lag1`` / ``lag2`` hold the position of the same entity's row of year ``t-1`` / ``t-2``
    (-1 when it was not observed). ``proxy_ok`` marks rows whose proxy can be inverted (positive
    investment for Olley-Pakes; every row otherwise). ``survives`` (Olley-Pakes exit correction)
    is 1 when the entity is seen the next calendar year, 0 when it exits in this year, NaN when
    unknown (attrition or the panel's last year).
    """

    spec: Spec
    y: np.ndarray
    F: np.ndarray
    S: np.ndarray
    P: np.ndarray
    C: np.ndarray
    L: np.ndarray
    IV: np.ndarray
    share: np.ndarray | None
    survives: np.ndarray | None
    entity: np.ndarray
    year: np.ndarray
    rows: np.ndarray
    lag1: np.ndarray
    lag2: np.ndarray
    proxy_ok: np.ndarray
    n_input: int
    frame_index: pd.Index
    dropped: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    group: np.ndarray | None = None

    @property
    def n(self) -> int:
        return int(self.y.shape[0])

    @property
    def X(self) -> np.ndarray:
        """Free then state inputs (the order of the coefficients)."""
        return np.column_stack([self.F, self.S])

    @property
    def n_entities(self) -> int:
        return int(self.entity.max() + 1) if self.n else 0

    def to_input_order(self, values: np.ndarray, name: str) -> pd.Series:
        """A per-row array of the sample as a Series on the input frame's index (NaN elsewhere)."""
        out = np.full(self.n_input, np.nan)
        out[self.rows] = values
        return pd.Series(out, index=self.frame_index, name=name)


def _numeric(frame: pd.DataFrame, c: str) -> np.ndarray:
    s = frame[c]
    if s.dtype == object or isinstance(s.dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(s):
        conv = pd.to_numeric(s, errors="coerce")
        bad = conv.isna() & s.notna()
        if bad.any():
            raise EstimationError(f"prodest: column {c!r} must be numeric; rows "
                                  f"{rows_text(frame.index[bad.to_numpy()])} hold text such as "
                                  f"{s[bad].iloc[0]!r}")
        s = conv
    if pd.api.types.is_bool_dtype(s):
        s = s.astype(float)
    return pd.to_numeric(s).astype(float).to_numpy()


def prepare_sample(frame: pd.DataFrame, spec: Spec, notes: Sequence[str] = ()) -> Sample:
    """Check the columns, drop and count incomplete rows, sort, and find calendar lags."""
    needs_proxy = spec.method in ("acf", "lp", "op", "wrdg", "gnr")
    columns = [spec.output, *spec.inputs, *spec.controls, *spec.lom_controls, *spec.lag_instruments,
               spec.entity, spec.time]
    if needs_proxy:
        columns.append(spec.proxy)
    if spec.share:
        columns.append(spec.share)
    if spec.exit:
        columns.append(spec.exit)
    if spec.vcov_cluster:
        columns.append(spec.vcov_cluster)
    absent = [c for c in dict.fromkeys(columns) if c not in frame.columns]
    if absent:
        raise EstimationError(f"prodest: column {', '.join(repr(c) for c in absent)} not found in the data; "
                              f"available: {', '.join(map(str, list(frame.columns)[:30]))}")
    n_input = len(frame)
    numeric = [spec.output, *spec.inputs, *spec.controls, *spec.lom_controls, *spec.lag_instruments]
    if needs_proxy:
        numeric.append(spec.proxy)
    if spec.share:
        numeric.append(spec.share)
    values = {c: _numeric(frame, c) for c in dict.fromkeys(numeric)}
    tvals = pd.to_numeric(frame[spec.time], errors="coerce")
    if (tvals.notna() & (tvals != np.round(tvals))).any():
        raise EstimationError(f"prodest: time column {spec.time!r} must hold integer years")
    if spec.proxy_is_investment and needs_proxy:
        inv = values[spec.proxy]
        if np.isfinite(inv).any() and not (inv[np.isfinite(inv)] > 0).any():
            raise EstimationError(f"prodest ({spec.method}): proxy column {spec.proxy!r} (investment) has no "
                                  "positive value; an investment proxy must be inverted, so it needs firms that "
                                  "invest (use materials instead)")
    # -- rows: missing values ---------------------------------------------------------------
    dropped: dict[str, int] = {}
    ok = np.ones(n_input, dtype=bool)
    for c in values:
        ok &= np.isfinite(values[c])
    ok &= frame[spec.entity].notna().to_numpy() & tvals.notna().to_numpy()
    if spec.vcov_cluster:
        ok &= frame[spec.vcov_cluster].notna().to_numpy()
    if (~ok).sum():
        dropped["missing values"] = int((~ok).sum())
    ent_all = frame[spec.entity].to_numpy()
    t_all = tvals.to_numpy()
    key = pd.DataFrame({"_e": ent_all, "_t": t_all})
    dup_all = key.notna().all(axis=1).to_numpy() & key.duplicated(keep=False).to_numpy()
    if dup_all.any():
        raise SchemaError(f"prodest: {spec.entity} + {spec.time} is not unique; rows "
                          f"{rows_text(frame.index[dup_all])} repeat a firm-year")
    rows0 = np.flatnonzero(ok)
    ecode0 = pd.factorize(ent_all[rows0])[0]
    tt0 = t_all[rows0].astype("int64")
    order = np.lexsort((tt0, ecode0))
    rows = rows0[order]
    ecode = ecode0[order]
    tt = tt0[order]
    n = rows.size
    if n == 0:
        raise EstimationError("prodest: no rows left after dropping missing values")
    same1 = np.r_[False, ecode[1:] == ecode[:-1]]
    lag1 = np.where(same1 & np.r_[False, tt[1:] - tt[:-1] == 1], np.arange(n) - 1, -1)
    # t-2: the previous row (gap in t-1) or the one before it
    lag2 = np.full(n, -1)
    prev1 = same1 & np.r_[False, tt[1:] - tt[:-1] == 2]
    lag2[prev1] = np.flatnonzero(prev1) - 1
    same2 = np.r_[False, False, ecode[2:] == ecode[:-2]]
    prev2 = same2 & np.r_[False, False, tt[2:] - tt[:-2] == 2]
    lag2[prev2] = np.flatnonzero(prev2) - 2

    def mat(names: Sequence[str]) -> np.ndarray:
        return np.column_stack([values[c][rows] for c in names]) if names else np.empty((n, 0))

    P = values[spec.proxy][rows] if needs_proxy else np.zeros(n)
    if needs_proxy and spec.proxy_is_investment:
        proxy_ok = P > 0
        P = np.log(np.where(proxy_ok, P, 1.0))
    else:
        proxy_ok = np.ones(n, dtype=bool)
    survives = None
    if spec.exit:
        ex = frame[spec.exit]
        exv = pd.to_numeric(ex.astype("float64") if pd.api.types.is_bool_dtype(ex) else ex, errors="coerce").to_numpy()
        bad = np.isfinite(exv) & ~np.isin(exv, (0.0, 1.0))
        if bad.any():
            raise EstimationError(f"prodest: exit column {spec.exit!r} must be 0/1 (or boolean); rows "
                                  f"{rows_text(frame.index[bad])} hold other values")
        seen = pd.MultiIndex.from_arrays([ent_all[np.isfinite(t_all)], t_all[np.isfinite(t_all)].astype("int64")])
        nxt = pd.MultiIndex.from_arrays([ent_all[rows], tt + 1])
        observed_next = nxt.isin(seen)
        e_r = exv[rows]
        survives = np.where(e_r == 1, 0.0, np.where(observed_next, 1.0, np.nan))
    group = None
    if spec.vcov_cluster:
        gvals = frame[spec.vcov_cluster].to_numpy()[rows]
        per_entity = pd.Series(gvals).groupby(ecode).nunique()
        if (per_entity > 1).any():
            raise EstimationError(f"prodest: vcov_cluster {spec.vcov_cluster!r} must contain whole entities; "
                                  f"{int((per_entity > 1).sum())} {spec.entity} values fall in several groups")
        group = pd.factorize(gvals)[0]
    return Sample(
        spec=spec, y=values[spec.output][rows], F=mat(spec.free), S=mat(spec.state), P=P,
        C=mat(spec.controls), L=mat(spec.lom_controls), IV=mat(spec.lag_instruments),
        share=values[spec.share][rows] if spec.share else None, survives=survives,
        entity=ecode, year=tt, rows=rows, lag1=lag1, lag2=lag2, proxy_ok=proxy_ok, n_input=n_input,
        frame_index=frame.index, dropped=dropped, notes=list(notes), group=group,
    )


def count_lag_losses(sample: Sample, used: np.ndarray, reason_no_first_stage: str | None = None) -> None:
    """Add to ``sample.dropped`` why rows are not in the second stage (``used`` marks those that are)."""
    same_prev = np.r_[False, sample.entity[1:] == sample.entity[:-1]]
    first = ~same_prev
    gap = same_prev & (sample.lag1 < 0)
    if first.sum():
        sample.dropped["first year observed (no lag)"] = int(first.sum())
    if gap.sum():
        sample.dropped["previous calendar year not observed (gap)"] = int(gap.sum())
    rest = (sample.lag1 >= 0) & ~used
    if rest.sum():
        sample.dropped[reason_no_first_stage or "no first-stage value"] = int(rest.sum())


# --------------------------------------------------------------------------------------------
# the estimation frame of a canonical Panel
# --------------------------------------------------------------------------------------------
def _lookup(table: pd.DataFrame, keys: list[str], value: str, want: list[np.ndarray]) -> np.ndarray:
    idx = pd.MultiIndex.from_arrays([table[keys[0]].astype(str), pd.to_numeric(table[keys[1]]).astype("int64")])
    s = pd.Series(pd.to_numeric(table[value], errors="coerce").to_numpy(), index=idx)
    s = s[~s.index.duplicated()]
    return s.reindex(pd.MultiIndex.from_arrays(want)).to_numpy()


def panel_frame(panel: Any, method: str = "acf") -> tuple[pd.DataFrame, list[str]]:
    """The estimation frame built from a Panel's ``enterprise_year``, with notes on how.

    Columns added: ``log_value_added`` (log of ``value_added`` divided by the country deflator
    ``deflator.price_index`` where ``price_base_year`` is missing, and by the cluster's
    ``cluster_year.price_index`` when that table has one: output per unit of input, not revenue),
    ``log_employment``, ``log_capital`` (``capital_stock`` deflated the same way as money),
    ``log_materials`` (``material_cost``, deflated) and ``investment`` (deflated, in levels).
    When the columns exist: ``log_gross_output`` (``sales`` deflated like value added) and
    ``log_materials_share`` (log of ``material_cost / sales``, the flexible input's revenue share
    that ``method="gnr"`` needs); ``log_output_price`` (log of ``cluster_year.price_index``,
    whose lag is a labour-demand shifter that can serve in ``lag_instruments``); ``innovator``
    (``new_product`` or ``new_process``; missing when both are); ``cluster_id`` and ``country``
    from ``enterprise``; ``phase`` from ``cluster_year``.
    Zero or negative value added and zero capital, employment or materials give a missing log
    (the row is then dropped and counted); negative capital, employment, materials or
    investment are impossible values and raise :class:`~cluster_econ.errors.SchemaError`.
    Monetary values remain in local currency units: with several currencies, add country (or
    cluster) dummies or estimate per country.
    """
    ey = panel.enterprise_year
    need = ["enterprise_id", "year", "value_added", "employment", "capital_stock"]
    if method in ("op",):
        need.append("investment")
    elif method in ("acf", "lp", "wrdg", "gnr"):
        need.append("material_cost")
    if method == "gnr":
        need.append("sales")
    missing = [c for c in need if c not in ey.columns]
    if missing:
        raise SchemaError(f"prodest ({method}): enterprise_year has no column {', '.join(missing)}; "
                          f"the estimator needs {', '.join(need)}")
    notes: list[str] = []
    out = ey.copy()
    money_cols = [c for c in ("value_added", "employment", "capital_stock", "material_cost", "investment", "sales")
                  if c in ey.columns]
    num = {c: pd.to_numeric(ey[c], errors="coerce") for c in money_cols}
    for c in ("capital_stock", "employment", "material_cost", "investment"):
        if c not in num:
            continue
        bad = num[c] < 0
        if bad.any():
            raise SchemaError(f"prodest: enterprise_year.{c} must be non-negative; {int(bad.sum())} rows "
                              f"are negative (rows {rows_text(ey.index[bad.to_numpy()])}; values "
                              f"{', '.join(f'{v:g}' for v in num[c][bad].head(5))})")
    ent = panel.enterprise.drop_duplicates("enterprise_id").set_index("enterprise_id")
    ids = ey["enterprise_id"]
    years = pd.to_numeric(ey["year"], errors="coerce")
    ykey = years.fillna(-1).astype("int64").to_numpy()
    for col in ("cluster_id", "country"):
        if col not in out.columns and col in ent.columns:
            out[col] = ids.map(ent[col])
    divisor = pd.Series(1.0, index=ey.index)
    defl = panel.deflator
    nominal = ey["price_base_year"].isna() if "price_base_year" in ey.columns else pd.Series(True, index=ey.index)
    if defl is not None and {"country", "year", "price_index"} <= set(defl.columns) and nominal.any():
        country = out["country"] if "country" in out.columns else pd.Series(np.nan, index=ey.index)
        dv = pd.Series(_lookup(defl, ["country", "year"], "price_index",
                               [country.astype(str).to_numpy(), ykey]), index=ey.index)
        divisor = dv.where(nominal, 1.0)
        notes.append("money deflated by deflator.price_index (country-year) where price_base_year is missing")
    else:
        notes.append("money not deflated (no deflator table or values already in base-year prices)")
    va_div = divisor.copy()
    cy = panel.cluster_year
    has_cluster = cy is not None and "cluster_id" in out.columns
    if has_cluster and "price_index" in cy.columns:
        p = _lookup(cy, ["cluster_id", "year"], "price_index", [out["cluster_id"].astype(str).to_numpy(), ykey])
        va_div = va_div * pd.Series(p, index=ey.index)
        notes.append("value added also divided by cluster_year.price_index (the cluster's output price)")
    if has_cluster and "phase" in cy.columns and "phase" not in out.columns:
        ph = cy.assign(_k=pd.to_numeric(cy["year"]).astype("int64")).drop_duplicates(["cluster_id", "_k"])
        ph = ph.set_index([ph["cluster_id"].astype(str), "_k"])["phase"]
        out["phase"] = ph.reindex(pd.MultiIndex.from_arrays([out["cluster_id"].astype(str).to_numpy(), ykey])
                                  ).to_numpy()

    def safe_log(s: pd.Series) -> pd.Series:
        s = s.astype(float)
        return np.log(s.where(s > 0))

    out[PANEL_COLUMNS["output"]] = safe_log(num["value_added"] / va_div)
    out[PANEL_COLUMNS["free"]] = safe_log(num["employment"])
    out[PANEL_COLUMNS["state"]] = safe_log(num["capital_stock"] / divisor)
    if "material_cost" in num:
        out[PANEL_COLUMNS["proxy_materials"]] = safe_log(num["material_cost"] / divisor)
    if "investment" in num:
        out[PANEL_COLUMNS["proxy_investment"]] = num["investment"] / divisor
    if "sales" in num:
        out[PANEL_COLUMNS["gross_output"]] = safe_log(num["sales"] / va_div)
        if "material_cost" in num:
            out[PANEL_COLUMNS["share"]] = safe_log(num["material_cost"] / num["sales"])
    if has_cluster and "price_index" in cy.columns:
        out["log_output_price"] = safe_log(va_div / divisor)
    if {"new_product", "new_process"} <= set(ey.columns):
        items = ey[["new_product", "new_process"]].astype("boolean")
        out["innovator"] = items.any(axis=1, skipna=True).astype(float).where(items.notna().any(axis=1))
    return out, notes
