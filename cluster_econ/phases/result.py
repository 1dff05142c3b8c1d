"""The result of phase detection and the pieces every method shares (ordered relabelling,
the stagnation rule, phase spans)."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from cluster_econ.phases.requirements import UNKNOWN
from cluster_econ.phases.signals import ORDERED, STAGNATION

__all__ = ["PhaseResult", "apply_stagnation", "ordered_path", "phase_spans"]


def ordered_path(cost: np.ndarray) -> np.ndarray:
    """Minimum-cost non-decreasing label sequence.

    Parameters
    ----------
    cost : array, shape (T, K)
        Cost of giving label ``k`` (0 = initiation, 1 = quantity expansion, 2 = quality
        improvement) to period ``t``.

    Returns
    -------
    ndarray of int, shape (T,)
        Labels ``l_0 <= l_1 <= ... <= l_{T-1}`` minimising the summed cost (dynamic programming
        over monotone sequences: ``D[t, k] = cost[t, k] + min_{j <= k} D[t-1, j]``). Ties go to
        the later phase at the end and the earlier phase along the path.
    """
    cost = np.asarray(cost, dtype=float)
    T, K = cost.shape
    if T == 0:
        return np.zeros(0, dtype=int)
    D = np.empty((T, K))
    back = np.zeros((T, K), dtype=int)
    D[0] = cost[0]
    for t in range(1, T):
        prev = D[t - 1]
        best = np.minimum.accumulate(prev)           # min_{j <= k} D[t-1, j]
        arg = np.zeros(K, dtype=int)
        for k in range(1, K):
            arg[k] = arg[k - 1] if prev[arg[k - 1]] <= prev[k] else k
        D[t] = cost[t] + best
        back[t] = arg
    path = np.empty(T, dtype=int)
    last = D[-1]
    path[-1] = int(np.flatnonzero(last == last.min())[-1])
    for t in range(T - 1, 0, -1):
        path[t - 1] = back[t, path[t]]
    return path


def apply_stagnation(labels: np.ndarray, stagnation_years: int | None) -> np.ndarray:
    """Relabel a cluster's long expansion that never reaches quality improvement.

    ``labels`` are ordered integer labels of one cluster in year order. If the cluster never
    reaches quality improvement (label 2) and its quantity expansion (label 1) lasts more than
    ``stagnation_years`` years, the expansion years after the first ``stagnation_years`` are
    labelled stagnation (returned as label 3). ``None`` switches the rule off.
    """
    out = np.asarray(labels, dtype=int).copy()
    if stagnation_years is None or (out == 2).any():
        return out
    exp = np.flatnonzero(out == 1)
    if exp.size > stagnation_years:
        out[exp[stagnation_years:]] = 3
    return out


LABELS: tuple[str, ...] = (*ORDERED, STAGNATION)


def _reason_lines(reasons: pd.DataFrame, max_clusters: int = 4) -> list[str]:
    """Indented lines of :meth:`PhaseResult.unknown_reasons` for a summary."""
    lines = []
    for r in reasons.itertuples():
        names = r.clusters.split(", ")
        where = (", ".join(names) if len(names) <= max_clusters
                 else f"{len(names)} clusters: {', '.join(names[:max_clusters])}, ...")
        lines.append(f"  {r.cluster_years} cluster-years ({where}): {r.reason}")
    return lines


def phase_spans(cluster_year: pd.DataFrame, column: str = "phase") -> pd.DataFrame:
    """Consecutive runs of one phase per cluster: cluster_id, phase, start_year, end_year, years."""
    rows = []
    for cid, grp in cluster_year.sort_values(["cluster_id", "year"]).groupby("cluster_id",
                                                                               sort=True):
        ph = grp[column].to_numpy()
        yr = grp["year"].to_numpy()
        start = 0
        for i in range(1, len(ph) + 1):
            if i == len(ph) or ph[i] != ph[start]:
                rows.append({"cluster_id": cid, "phase": ph[start], "start_year": int(yr[start]),
                             "end_year": int(yr[i - 1]), "years": i - start})
                start = i
    return pd.DataFrame(rows, columns=["cluster_id", "phase", "start_year", "end_year", "years"])


@dataclass(frozen=True)
class PhaseResult:
    """Phases detected for every cluster-year.

    Attributes
    ----------
    method : str
        ``"rules"``, ``"breaks"``, ``"hmm"`` or ``"user"``.
    cluster_year : DataFrame
        ``cluster_id``, ``year``, ``phase``, ``candidate_phase``, ``unknown_reason`` and the
        per-year signals the method used (smoothed signals are prefixed ``s_``; rules add the raw
        label and scores, hmm the state probabilities ``p_<phase>``, ``p_label`` and the
        ``viterbi`` state). ``phase`` is the method's candidate where the signals that define
        that phase were observed, else ``"unknown"`` with the missing signals named in
        ``unknown_reason`` (see :mod:`cluster_econ.phases.requirements`).
    diagnostics : mapping
        Method-specific summaries (for example the number of years the ordering step changed,
        the HMM log-likelihood and parameters, the break tables).
    config : object
        The configuration used.
    break_dates : DataFrame or None
        ``breaks``: one row per break with the last year of the regime and its confidence
        interval.
    probabilities : DataFrame or None
        ``hmm``: smoothed state probabilities per cluster-year.
    n_changed : int or None
        ``rules``: cluster-years whose raw label the ordering step changed.
    """

    method: str
    cluster_year: pd.DataFrame
    diagnostics: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))
    config: Any = None
    break_dates: pd.DataFrame | None = None
    probabilities: pd.DataFrame | None = None
    n_changed: int | None = None

    @property
    def phases(self) -> pd.DataFrame:
        """``cluster_id``, ``year``, ``phase`` only (``phase`` may be ``"unknown"``)."""
        return self.cluster_year[["cluster_id", "year", "phase"]].copy()

    @property
    def unknown(self) -> pd.DataFrame:
        """Runs of unknown cluster-years: cluster_id, the method's candidate phase, first and
        last year, number of years and the reason (the signals that were missing)."""
        cols = ["cluster_id", "candidate_phase", "start_year", "end_year", "years", "reason"]
        cy = self.cluster_year
        if "unknown_reason" not in cy.columns:
            return pd.DataFrame(columns=cols)
        is_unknown = cy["phase"] == UNKNOWN
        if not is_unknown.any():
            return pd.DataFrame(columns=cols)
        key = cy["candidate_phase"].astype(str) + "\x1f" + cy["unknown_reason"].astype(str)
        sp = phase_spans(cy.assign(_key=key.where(is_unknown, "")), column="_key")
        sp = sp[sp["phase"] != ""].reset_index(drop=True)
        sp[["candidate_phase", "reason"]] = sp["phase"].str.split("\x1f", n=1, expand=True)
        return sp[cols]

    def unknown_reasons(self) -> pd.DataFrame:
        """Why cluster-years are unknown: one row per reason with the number of cluster-years,
        of clusters, and the clusters (most frequent reason first)."""
        cols = ["reason", "cluster_years", "n_clusters", "clusters"]
        cy = self.cluster_year
        if "unknown_reason" not in cy.columns or not (cy["phase"] == UNKNOWN).any():
            return pd.DataFrame(columns=cols)
        u = cy[cy["phase"] == UNKNOWN]
        g = u.groupby("unknown_reason", sort=True)["cluster_id"]
        out = pd.DataFrame({"cluster_years": g.size(), "n_clusters": g.nunique(),
                            "clusters": g.apply(lambda s: ", ".join(sorted(map(str, s.unique()))))})
        out = out.rename_axis("reason").reset_index()
        return out.sort_values(["cluster_years", "reason"], ascending=[False, True],
                               kind="mergesort").reset_index(drop=True)[cols]

    def spans(self) -> pd.DataFrame:
        """Phase spans per cluster (first and last year of each run of a phase)."""
        return phase_spans(self.cluster_year)

    def to_panel(self, panel: Any, keep_given: bool = True) -> Any:
        """A Panel whose ``cluster_year.phase`` holds these phases.

        The panel's cluster_year is aggregated from enterprise_year first if it lacks the
        aggregates. A ``phase`` column it already had (for example the truth of a simulation)
        is kept as ``phase_given`` unless ``keep_given`` is False. Cluster-years of the panel
        that this result does not cover get a missing phase. An ``unknown`` cluster-year gets
        a missing ``phase`` (the canonical schema holds only the four phases) and its reason in
        the column ``phase_reason``.
        """
        cy = panel.cluster_year
        if cy is None or "n_firms" not in cy.columns:
            panel = panel.with_cluster_year()
            cy = panel.cluster_year
        cy = cy.copy()
        if "phase" in cy.columns:
            given = cy.pop("phase")
            if keep_given:
                cy["phase_given"] = given
        lab = self.cluster_year
        key = cy["cluster_id"].astype(str) + "\x1f" + cy["year"].astype(int).astype(str)
        lkey = lab["cluster_id"].astype(str) + "\x1f" + lab["year"].astype(int).astype(str)
        phase = key.map(dict(zip(lkey, lab["phase"], strict=False)))
        cy["phase"] = phase.where(phase != UNKNOWN).to_numpy()
        if "unknown_reason" in lab.columns and (lab["phase"] == UNKNOWN).any():
            cy["phase_reason"] = key.map(dict(zip(lkey, lab["unknown_reason"],
                                                  strict=False))).to_numpy()
        return panel.replace(cluster_year=cy)

    def summary(self) -> str:
        sp = self.spans()
        lines = [f"Phases by {self.method}: {self.cluster_year['cluster_id'].nunique()} clusters, "
                 f"{len(self.cluster_year)} cluster-years"]
        if self.n_changed is not None:
            lines.append(f"ordering step changed {self.n_changed} cluster-years")
        n_unknown = int((self.cluster_year["phase"] == UNKNOWN).sum())
        if n_unknown:
            lines.append(f"unknown: {n_unknown} cluster-years lack the signals of the phase the "
                         "method proposed (see .unknown)")
        for cid, grp in sp.groupby("cluster_id", sort=True):
            parts = [f"{r.phase} {r.start_year}-{r.end_year}" for r in grp.itertuples()]
            lines.append(f"  {cid}: " + ", ".join(parts))
        if n_unknown:
            lines.append("why unknown:")
            lines.extend(_reason_lines(self.unknown_reasons()))
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.summary()
