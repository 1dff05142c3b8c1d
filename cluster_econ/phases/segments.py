"""Phases from structural breaks in a cluster's phase signals.

Model
-----
For one cluster the standardised signals ``z_t`` (relative size, firm growth, net entry, real
price trend, innovation, quality institutions, exit rate; those available) follow a mean-shift model with
breaks common to all signals,

    z_t = mu_j + e_t,   T_{j-1} < t <= T_j,

fitted by least squares: the break dates minimise the summed residual sum of squares of all
signals (Bai and Perron dynamic programming, minimum regime length ``min_years``). The number
of breaks minimises a BIC for the stacked Gaussian model with a common variance,
``N log(RSS / N) + log(N) (p (m + 1) + m)`` with ``N = T p`` observations of ``p`` signals
(or the LWZ criterion with the same parameter count).

Each regime is then scored with the rule-based evidence of :mod:`cluster_econ.phases.rules`
(averaged over the regime), and the regimes receive phases in order by the minimum-cost
non-decreasing assignment, the cost of a regime being its length times its score margin.
Adjacent regimes with the same phase merge; breaks between different phases are the phase
transitions (``break_dates`` shows the candidate phases). A label whose defining signals were
not observed becomes ``unknown`` (:mod:`cluster_econ.phases.requirements`). The confidence
interval of each break date is Bai's (1997) interval for the mean shift of the signals projected
on the direction of the estimated shift, with the error variance allowed to differ across the
two regimes.
"""

from __future__ import annotations

import itertools
import warnings
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np
import pandas as pd

from cluster_econ.errors import ConfigError
from cluster_econ.phases.breaks import (
    _lwz,
    _optimal_partitions,
    mean_shift_interval,
    segment_rss_matrix,
)
from cluster_econ.phases.requirements import label_rows, parse_requirements
from cluster_econ.phases.result import LABELS, PhaseResult, apply_stagnation, ordered_path
from cluster_econ.phases.rules import RulesConfig, evidence, phase_scores
from cluster_econ.phases.signals import compute_signals, prepare_cluster_year, smooth

__all__ = ["BreaksConfig", "detect_breaks"]

BREAK_SIGNALS = ("rel_size", "firm_growth", "net_entry", "price_trend", "innovation",
                 "institutions", "exit_rate")


@dataclass(frozen=True)
class BreaksConfig:
    """Settings of the break-based phase detection.

    Attributes
    ----------
    signals : tuple of str
        Signals searched for common breaks (those available are used).
    min_years : int
        Minimum regime length ``h`` in years.
    max_breaks : int
        Largest number of breaks per cluster.
    level : float
        Confidence level of the break-date intervals.
    criterion : {"BIC", "LWZ"}
        How the number of breaks is chosen (LWZ: Liu, Wu and Zidek's modified Schwarz
        criterion with ``p (m + 1) + m`` parameters).
    rules : RulesConfig
        Thresholds used to score each regime.
    stagnation_years : int or None
        See :func:`cluster_econ.phases.result.apply_stagnation`.
    requirements : mapping or None
        Signals each phase label needs (None: the defaults of
        :mod:`cluster_econ.phases.requirements`; ``rules.requirements`` is not used here).
    """

    signals: tuple[str, ...] = BREAK_SIGNALS
    min_years: int = 3
    max_breaks: int = 3
    level: float = 0.95
    criterion: str = "BIC"
    rules: RulesConfig = field(default_factory=RulesConfig)
    stagnation_years: int | None = 14
    requirements: dict | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "requirements", parse_requirements(self.requirements))
        if self.min_years < 2:
            raise ConfigError("phases breaks: min_years must be at least 2")
        if self.max_breaks < 0:
            raise ConfigError("phases breaks: max_breaks must be non-negative")
        if not 0 < self.level < 1:
            raise ConfigError("phases breaks: level must be between 0 and 1")
        if self.criterion not in ("BIC", "LWZ"):
            raise ConfigError(f"phases breaks: criterion must be 'BIC' or 'LWZ', got "
                              f"{self.criterion!r}")

    @classmethod
    def from_mapping(cls, mapping: dict | None) -> BreaksConfig:
        mapping = dict(mapping or {})
        bad = set(mapping) - set(cls.__dataclass_fields__)
        if bad:
            raise ConfigError(f"phases breaks: unknown keys {sorted(bad)}")
        if "signals" in mapping:
            mapping["signals"] = tuple(mapping["signals"])
        if "rules" in mapping and not isinstance(mapping["rules"], RulesConfig):
            mapping["rules"] = RulesConfig.from_mapping(mapping["rules"])
        return cls(**mapping)


def _fill(block: pd.DataFrame) -> pd.DataFrame:
    return block.ffill().bfill().fillna(0.0)


def detect_breaks(data: object, config: BreaksConfig | dict | None = None) -> PhaseResult:
    """Phases from common structural breaks in each cluster's signals (see module docstring)."""
    if config is None:
        cfg = BreaksConfig()
    elif isinstance(config, BreaksConfig):
        cfg = config
    else:
        cfg = BreaksConfig.from_mapping(config)
    cy = prepare_cluster_year(data)
    raw = compute_signals(cy)
    use = [s for s in cfg.signals if s in raw.columns]
    sm = smooth(raw, cy["cluster_id"], int(cfg.rules.window))
    zs = (raw[use] - raw[use].mean()) / raw[use].std(ddof=0).replace(0, 1.0)
    h = int(cfg.min_years)
    final = np.zeros(len(cy), dtype=int)
    regime_no = np.zeros(len(cy), dtype=int)
    break_rows = []
    bic_rows = []
    seg_means: list[np.ndarray] = []
    plans = []
    sm_np = sm.to_numpy(dtype=float)
    for cid, ix in cy.groupby("cluster_id", sort=False).indices.items():
        ix = np.sort(ix)
        T = len(ix)
        years = cy["year"].to_numpy()[ix]
        Z = _fill(zs.iloc[ix]).to_numpy() if use else np.zeros((T, 0))
        p = Z.shape[1]
        mb = min(cfg.max_breaks, max(T // h - 1, 0)) if p else 0
        if mb > 0:
            R = segment_rss_matrix(Z, None, h)
            parts = _optimal_partitions(R, h, mb)
            N = T * p
            if cfg.criterion == "LWZ":
                bics = [_lwz(rss, N, m, p) for m, (rss, _) in enumerate(parts)]
            else:
                bics = [N * np.log(max(rss, 1e-12) / N) + np.log(N) * (p * (m + 1) + m)
                        for m, (rss, _) in enumerate(parts)]
            m_star = int(np.argmin(bics))
            ends = parts[m_star][1]
            for m, b in enumerate(bics):
                bic_rows.append({"cluster_id": cid, "m": m, "rss": parts[m][0],
                                 cfg.criterion: b})
        else:
            ends = []
        bounds = [0, *[e + 1 for e in ends], T]
        for s, e in itertools.pairwise(bounds):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                seg_means.append(np.nanmean(sm_np[ix[s:e]], axis=0))
        plans.append((cid, ix, T, years, Z, ends, bounds))
    # score all regimes of all clusters at once
    seg_table = pd.DataFrame(np.array(seg_means).reshape(-1, sm.shape[1]), columns=sm.columns)
    all_scores = phase_scores(evidence(seg_table, cfg.rules), cfg.rules).to_numpy()
    pos0 = 0
    for cid, ix, T, years, Z, ends, bounds in plans:
        seg_scores = all_scores[pos0:pos0 + len(bounds) - 1]
        pos0 += len(bounds) - 1
        S = np.array(seg_scores)
        lens = np.diff(bounds)[:, None]
        seg_lab = ordered_path(lens * (S.max(axis=1, keepdims=True) - S))
        labels = np.repeat(seg_lab, np.diff(bounds))
        final[ix] = apply_stagnation(labels, cfg.stagnation_years)
        regime_no[ix] = np.repeat(np.arange(len(bounds) - 1), np.diff(bounds))
        for b, e in enumerate(ends):
            z1 = Z[bounds[b]:bounds[b + 1]]
            z2 = Z[bounds[b + 1]:bounds[b + 2]]
            d = z2.mean(axis=0) - z1.mean(axis=0)
            norm = float(np.linalg.norm(d))
            iv = (mean_shift_interval(z1 @ d / norm, z2 @ d / norm, cfg.level)
                  if norm > 0 else None)
            pos = e + 1
            if iv is None:
                lo = hi = None
            else:
                lo_pos = pos - int(np.ceil(iv[1]))
                hi_pos = pos - int(np.floor(iv[0]))
                lo = int(years[lo_pos - 1]) if 1 <= lo_pos <= T else None
                hi = int(years[hi_pos - 1]) if 1 <= hi_pos <= T else None
            break_rows.append({
                "cluster_id": cid, "break": b + 1, "year": int(years[e]), "lower": lo,
                "upper": hi, "from_phase": LABELS[seg_lab[b]], "to_phase": LABELS[seg_lab[b + 1]],
                "transition": bool(seg_lab[b] != seg_lab[b + 1]),
            })
    names = np.array(LABELS)
    phase, reason, req_diag = label_rows(cy, raw, final, cfg.requirements)
    out = cy[["cluster_id", "year"]].copy()
    out["phase"] = phase
    out["candidate_phase"] = names[final]
    out["unknown_reason"] = reason
    out["regime"] = regime_no
    for col in raw:
        out[col] = raw[col].to_numpy()
    bd = pd.DataFrame(break_rows, columns=["cluster_id", "break", "year", "lower", "upper",
                                           "from_phase", "to_phase", "transition"])
    bd.attrs["level"] = cfg.level
    diag = {
        "signals": use,
        "bic": pd.DataFrame(bic_rows, columns=["cluster_id", "m", "rss", cfg.criterion]),
        "n_breaks": bd.groupby("cluster_id").size().to_dict() if len(bd) else {},
        "n_stagnation": int((final == 3).sum()),
        **req_diag,
    }
    return PhaseResult(method="breaks", cluster_year=out, diagnostics=MappingProxyType(diag),
                       config=cfg, break_dates=bd)
