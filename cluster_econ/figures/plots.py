"""The package's plots: cluster timelines with phase shading, coefficients by phase,
Kaplan-Meier curves and event studies.

Each function returns the matplotlib :class:`~matplotlib.figure.Figure` (built on the Agg
canvas, without pyplot, so no global figure state is touched) and writes it atomically to the
``.png`` / ``.svg`` path(s) given. Styling comes from :mod:`cluster_econ.figures.style` only.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cluster_econ.figures.style import (
    BAND_ALPHA,
    NEUTRAL,
    SHADE_ALPHA,
    FigureError,
    group_colors,
    new_figure,
    order_groups,
    phase_color,
    pretty,
    save,
    style,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

PathArg = str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None

#: Default timeline series (canonical cluster_year columns), shown when present.
TIMELINE_SERIES = ("n_firms", "n_entries", "n_exits", "price_index")
_PRODUCTIVITY = re.compile(r"tfp|productivity", re.IGNORECASE)


def _label(name: str, labels: Mapping[str, str] | None = None) -> str:
    from cluster_econ.tables._format import _schema_labels, label_term, pretty_level

    if (labels and name in labels) or name in _schema_labels():
        return label_term(name, labels)
    text = label_term(name, labels)
    return pretty_level(text) if text == name else text


def _group_label(value: Any, labels: Mapping[Any, str] | None) -> str:
    if labels:
        for key in (value, str(value)):
            if key in labels:
                return str(labels[key])
    return pretty(value)


def _require(df: Any, columns: Sequence[str], what: str) -> pd.DataFrame:
    if not isinstance(df, pd.DataFrame):
        raise FigureError(f"{what} needs a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise FigureError(f"{what}: missing column(s) {', '.join(missing)}; the data has "
                          f"{', '.join(map(str, df.columns))}")
    return df


def _numeric(df: pd.DataFrame, columns: Sequence[str], what: str) -> pd.DataFrame:
    out = df.copy()
    for c in columns:
        conv = pd.to_numeric(out[c], errors="coerce")
        bad = out.index[conv.isna() & out[c].notna()]
        if len(bad):
            raise FigureError(f"{what}: column {c!r} is not numeric in rows "
                              f"{', '.join(map(str, list(bad[:5])))} (e.g. {out.loc[bad[0], c]!r})")
        out[c] = conv.astype(float)
    return out


def _phase_runs(years: np.ndarray, phase: pd.Series) -> list[tuple[str, float, float]]:
    """Contiguous runs of one phase: (phase, first year - 0.5, last year + 0.5)."""
    runs: list[tuple[str, float, float]] = []
    for yr, ph in zip(years, phase, strict=True):
        if pd.isna(ph):
            continue
        ph = str(ph)
        if runs and runs[-1][0] == ph and yr - runs[-1][2] <= 1.5:
            runs[-1] = (ph, runs[-1][1], yr + 0.5)
        else:
            runs.append((ph, yr - 0.5, yr + 0.5))
    return runs


def cluster_timeline(
    cluster_year: pd.DataFrame,
    cluster_id: Any,
    path: PathArg = None,
    series: Sequence[str] | None = None,
    *,
    labels: Mapping[str, str] | None = None,
    title: str | None = None,
) -> Figure:
    """Multi-panel timeline of one cluster with its phases shaded.

    Parameters
    ----------
    cluster_year : DataFrame
        The canonical ``cluster_year`` table (``cluster_id``, ``year``, the series, optionally
        ``phase``).
    cluster_id : scalar
        The cluster to plot.
    path : path or sequence of paths, optional
        ``.png`` / ``.svg`` files to write.
    series : sequence of str, optional
        Columns, one panel each. Default: ``n_firms``, ``n_entries``, ``n_exits``,
        ``price_index`` and the first productivity column (name containing ``tfp`` or
        ``productivity``), those present in the data.
    labels : mapping, optional
        Column -> panel label (default the schema label).
    title : str, optional
        Figure title (default ``Cluster <id>``).

    Returns
    -------
    matplotlib.figure.Figure
    """
    df = _require(cluster_year, ["cluster_id", "year"], "cluster_timeline")
    if series is None:
        chosen = [c for c in TIMELINE_SERIES if c in df.columns]
        prod = [c for c in df.columns if isinstance(c, str) and _PRODUCTIVITY.search(c)]
        chosen += prod[:1]
        if not chosen:
            raise FigureError("cluster_timeline: the data has none of the default series "
                              f"{', '.join(TIMELINE_SERIES)} nor a productivity column; pass series=")
    else:
        chosen = [series] if isinstance(series, str) else list(series)
        _require(df, chosen, "cluster_timeline")
        if not chosen:
            raise FigureError("cluster_timeline: series is empty")
    sub = df[df["cluster_id"].astype(str) == str(cluster_id)]
    if sub.empty:
        known = sorted(map(str, df["cluster_id"].dropna().unique()))
        raise FigureError(f"cluster_timeline: no rows for cluster_id {cluster_id!r}; the clusters "
                          f"are {', '.join(known[:20])}{' ...' if len(known) > 20 else ''}")
    sub = _numeric(sub, ["year", *chosen], "cluster_timeline").sort_values("year")
    dup = sub["year"][sub["year"].duplicated()]
    if len(dup):
        raise FigureError(f"cluster_timeline: cluster {cluster_id!r} has several rows for year(s) "
                          f"{', '.join(str(int(y)) for y in dup.unique()[:5])}")
    years = sub["year"].to_numpy()
    runs = _phase_runs(years, sub["phase"]) if "phase" in sub.columns else []
    present = order_groups([r[0] for r in runs])
    colors = group_colors(present)

    with style():
        from matplotlib.patches import Patch

        fig, axes = new_figure(len(chosen), 1, height=1.2 + 1.45 * len(chosen), sharex=True)
        for ax_row, col in zip(axes, chosen, strict=True):
            ax = ax_row[0]
            for ph, start, stop in runs:
                ax.axvspan(start, stop, color=colors[ph], alpha=SHADE_ALPHA, lw=0)
            ax.plot(years, sub[col].to_numpy(), color=NEUTRAL, marker="o")
            ax.set_ylabel(_label(col, labels))
            ax.margins(x=0)
            if len(years):
                ax.set_xlim(years.min() - 0.5, years.max() + 0.5)
        from matplotlib.ticker import MaxNLocator

        axes[-1][0].xaxis.set_major_locator(MaxNLocator(integer=True))
        axes[-1][0].set_xlabel(_label("year", labels))
        if present:
            handles = [Patch(facecolor=colors[p], alpha=min(1.0, 2.5 * SHADE_ALPHA),
                             label=pretty(p)) for p in present]
            fig.legend(handles=handles, loc="outside lower center", ncols=len(handles))
        fig.suptitle(title if title is not None else f"Cluster {cluster_id}")
    save(fig, path)
    return fig


def coefficient_plot(
    estimates: pd.DataFrame | Mapping[Any, Any],
    term: str | None = None,
    by: str = "phase",
    path: PathArg = None,
    *,
    level: float = 0.95,
    labels: Mapping[str, str] | None = None,
    title: str | None = None,
) -> Figure:
    """Point estimates of one term with confidence intervals, by phase (or another grouping).

    Parameters
    ----------
    estimates : DataFrame or mapping of group -> Result
        A DataFrame with columns ``by``, ``estimate``, ``conf_low``, ``conf_high`` (and
        optionally ``term``, filtered on ``term``), or a mapping from group (phase) to a
        :class:`~cluster_econ.estimate.result.Result`, from which ``term`` and its Wald
        interval at ``level`` are taken.
    term : str
        The coefficient to plot (required for Results, or when the DataFrame has several terms).
    by : str
        Grouping column of the DataFrame (the axis); canonical phases are ordered and coloured
        as everywhere in the package.
    path : path or sequence of paths, optional
        ``.png`` / ``.svg`` files to write.
    level : float
        Confidence level of the intervals computed from Results.
    labels : mapping, optional
        Labels of the term, of ``by`` and of the groups (tick labels).
    title : str, optional
        Axes title (default the term's label).

    Returns
    -------
    matplotlib.figure.Figure
    """
    if isinstance(estimates, Mapping):
        from cluster_econ.estimate.result import Result

        if term is None:
            raise FigureError("coefficient_plot: give term= when plotting Results")
        rows = []
        for group, res in estimates.items():
            if not isinstance(res, Result):
                raise FigureError(f"coefficient_plot: value for {group!r} is a "
                                  f"{type(res).__name__}, not a Result")
            if term not in res.params.index:
                raise FigureError(f"coefficient_plot: the model for {group!r} has no term "
                                  f"{term!r}; its terms are {', '.join(res.params.index)}")
            ci = res.conf_int(level).loc[term]
            rows.append({by: group, "estimate": float(res.params[term]),
                         "conf_low": float(ci["lower"]), "conf_high": float(ci["upper"])})
        df = pd.DataFrame(rows, columns=[by, "estimate", "conf_low", "conf_high"])
    else:
        df = _require(estimates, [by, "estimate", "conf_low", "conf_high"], "coefficient_plot")
        if "term" in df.columns:
            terms = list(dict.fromkeys(df["term"].astype(str)))
            if term is None and len(terms) > 1:
                raise FigureError(f"coefficient_plot: the data has several terms ({', '.join(terms)}); "
                                  "choose one with term=")
            if term is not None:
                if term not in terms:
                    raise FigureError(f"coefficient_plot: no rows for term {term!r}; the terms are "
                                      f"{', '.join(terms)}")
                df = df[df["term"].astype(str) == term]
            term = term or (terms[0] if terms else None)
        df = _numeric(df, ["estimate", "conf_low", "conf_high"], "coefficient_plot")
    if df.empty:
        raise FigureError("coefficient_plot: no estimates to plot")
    dups = df[by][df[by].duplicated()]
    if len(dups):
        raise FigureError(f"coefficient_plot: several estimates for {by} = {dups.iloc[0]!r}")
    groups = order_groups(list(df[by]))
    colors = group_colors(groups)
    df = df.set_index(by).loc[groups]

    with style():
        fig, axes = new_figure(1, 1, height=3.0)
        ax = axes[0][0]
        ax.axhline(0.0, color=NEUTRAL, lw=0.8, ls="--")
        for i, g in enumerate(groups):
            est, lo, hi = df.loc[g, ["estimate", "conf_low", "conf_high"]].to_numpy(dtype=float)
            ax.errorbar([i], [est], yerr=[[est - lo], [hi - est]], fmt="o", color=colors[g],
                        capsize=3.5, markersize=6, lw=1.6)
        ax.set_xticks(range(len(groups)), [_group_label(g, labels) for g in groups])
        ax.set_xlim(-0.6, len(groups) - 0.4)
        ax.set_xlabel(_label(by, labels))
        ax.set_ylabel(f"Estimate ({level:.0%} CI)")
        ax.grid(axis="x", visible=False)
        ax.set_title(title if title is not None else (_label(term, labels) if term else ""))
    save(fig, path)
    return fig


def km_plot(
    km_df: pd.DataFrame,
    path: PathArg = None,
    *,
    title: str | None = None,
    xlabel: str = "Years since entry",
    ylabel: str = "Survival probability",
    start: float | None = 0.0,
    labels: Mapping[Any, str] | None = None,
) -> Figure:
    """Kaplan-Meier survival curves by group with confidence bands.

    ``km_df`` is tidy: columns ``group``, ``time``, ``survival``, ``lower``, ``upper`` (the
    shape returned by ``cluster_econ.estimate.kaplan_meier``, one row per event time). Curves
    are step functions, continuous from the right; bands are drawn as steps too. Each curve
    starts at ``S(start) = 1`` (band collapsed) when its first row is later than ``start``;
    ``start=None`` draws the rows only. ``labels`` maps group values to legend labels.

    Parameters
    ----------
    km_df : DataFrame
        Tidy survival curves (group, time, survival, lower, upper).
    path : path or sequence of paths, optional
        ``.png`` / ``.svg`` files to write.
    title, xlabel, ylabel : str
        Text of the axes.
    start : float or None
        Time at which every curve starts at 1.
    labels : mapping, optional
        Group value -> legend label (default: readable phase names, else the value).

    Returns
    -------
    matplotlib.figure.Figure
    """
    cols = ["group", "time", "survival", "lower", "upper"]
    df = _numeric(_require(km_df, cols, "km_plot"), cols[1:], "km_plot")
    if df.empty:
        raise FigureError("km_plot: no rows to plot")
    out_of_range = df.index[(df["survival"] < -1e-12) | (df["survival"] > 1 + 1e-12)]
    if len(out_of_range):
        raise FigureError(f"km_plot: survival outside [0, 1] in rows "
                          f"{', '.join(map(str, list(out_of_range[:5])))}")
    groups = order_groups(list(df["group"]))
    colors = group_colors(groups)
    with style():
        fig, axes = new_figure(1, 1, height=3.4)
        ax = axes[0][0]
        for g in groups:
            part = df[df["group"] == g].sort_values("time", kind="mergesort")
            if start is not None and part["time"].iloc[0] > start:
                origin = pd.DataFrame({"group": [g], "time": [float(start)], "survival": [1.0],
                                       "lower": [1.0], "upper": [1.0]})
                part = pd.concat([origin, part[origin.columns]], ignore_index=True)
            t = part["time"].to_numpy()
            ax.fill_between(t, part["lower"].to_numpy(), part["upper"].to_numpy(), step="post",
                            color=colors[g], alpha=BAND_ALPHA, lw=0)
            ax.step(t, part["survival"].to_numpy(), where="post", color=colors[g],
                    label=_group_label(g, labels))
        ax.set_ylim(0, 1.02)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.legend(loc="best")
        if title:
            ax.set_title(title)
    save(fig, path)
    return fig


def event_study_frame(result: Any, level: float = 0.95) -> pd.DataFrame:
    """Event-study rows (``rel_time``, ``estimate``, ``conf_low``, ``conf_high`` and, where the
    estimator has one, the uniform band ``band_low``/``band_high``) from an
    ``att_gt(...).aggte("dynamic")`` result or a ``feols`` result with ``sunab(cohort, period)``
    (terms ``period::l``)."""
    tab = result.tidy(level)
    if "event" in tab.columns:  # aggte("dynamic")
        tab = tab[tab["event"].notna()].rename(columns={"event": "rel_time"})
    else:
        rel = tab["term"].astype(str).str.extract(r"::(-?\d+(?:\.\d+)?)$")[0]
        if rel.isna().all():
            raise FigureError("event_study_frame: the result has no event-time terms (use aggte('dynamic') "
                              "or a sunab() regression)")
        tab = tab.assign(rel_time=pd.to_numeric(rel, errors="coerce")).dropna(subset=["rel_time"])
    cols = ["rel_time", "estimate", "conf_low", "conf_high"] + [c for c in ("band_low", "band_high") if c in tab]
    return tab[cols].reset_index(drop=True)


def event_study_plot(
    df: pd.DataFrame | Any,
    path: PathArg = None,
    *,
    reference: float | None = -1,
    title: str | None = None,
    xlabel: str = "Years relative to treatment",
    ylabel: str = "Estimate",
) -> Figure:
    """Event-study coefficients with confidence intervals.

    ``df`` has columns ``rel_time``, ``estimate``, ``conf_low``, ``conf_high`` (and optionally
    ``band_low``/``band_high``, a uniform band drawn shaded), or is a result accepted by
    :func:`event_study_frame` (``aggte("dynamic")``, a ``sunab()`` regression). The omitted
    reference period (``reference``, default -1) is drawn as a hollow point at zero when it is
    not in the data; a dashed vertical line separates pre- from post-treatment periods.

    Parameters
    ----------
    df : DataFrame
        One row per relative period: rel_time, estimate, conf_low, conf_high.
    path : path or sequence of paths, optional
        ``.png`` / ``.svg`` files to write.
    reference : float or None
        The normalised (omitted) period, drawn at zero; ``None`` to skip.
    title, xlabel, ylabel : str
        Text of the axes.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if not isinstance(df, pd.DataFrame) and hasattr(df, "tidy"):
        df = event_study_frame(df)
    cols = ["rel_time", "estimate", "conf_low", "conf_high"]
    band = isinstance(df, pd.DataFrame) and {"band_low", "band_high"} <= set(df.columns)
    data = _numeric(_require(df, cols, "event_study_plot"), cols + (["band_low", "band_high"] if band else []),
                    "event_study_plot")
    if data.empty:
        raise FigureError("event_study_plot: no rows to plot")
    if data["rel_time"].duplicated().any():
        dup = data["rel_time"][data["rel_time"].duplicated()].iloc[0]
        raise FigureError(f"event_study_plot: several rows for rel_time = {dup:g}")
    data = data.sort_values("rel_time")
    t = data["rel_time"].to_numpy()
    est = data["estimate"].to_numpy()
    with style():
        fig, axes = new_figure(1, 1, height=3.2)
        ax = axes[0][0]
        ax.axhline(0.0, color=NEUTRAL, lw=0.8)
        if (t < 0).any() and (t >= 0).any():
            ax.axvline(-0.5, color=NEUTRAL, lw=0.8, ls="--")
        color = phase_color("quantity_expansion")
        add_ref = reference is not None and float(reference) not in set(t.tolist())
        line_t, line_y = t, est
        if add_ref:
            line_t = np.append(t, float(reference))
            line_y = np.append(est, 0.0)
            order = np.argsort(line_t, kind="mergesort")
            line_t, line_y = line_t[order], line_y[order]
        ax.plot(line_t, line_y, color=color, lw=1.2)
        if band:
            ax.fill_between(t, data["band_low"].to_numpy(), data["band_high"].to_numpy(), color=color,
                            alpha=BAND_ALPHA, lw=0, label="uniform band")
        yerr = np.vstack([est - data["conf_low"].to_numpy(), data["conf_high"].to_numpy() - est])
        ax.errorbar(t, est, yerr=yerr, fmt="o", color=color, ecolor=color, capsize=3,
                    markersize=5)
        if add_ref:
            ax.plot([float(reference)], [0.0], marker="o", mfc="white", mec=color, ls="none",
                    markersize=5, label=f"reference period ({float(reference):g})")
        if add_ref or band:
            ax.legend(loc="best")
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        if title:
            ax.set_title(title)
    save(fig, path)
    return fig
