"""Rule-based phase detection from the signals of Otsuka and Sonobe's phase table.

Model
-----
Each smoothed signal (see :mod:`cluster_econ.phases.signals`) is turned into a piece of evidence
between -1 and 1 by a threshold from :class:`RulesConfig`, for example
``price_fall = clip(-price_trend / price_decline, -1, 1)``. Each phase gets a score, the weighted
mean of the evidence that speaks for (+) or against (-) it, over the signals available:

* initiation: few firms relative to the cluster's peak (+), innovation (-), quality institutions (-);
* quantity expansion: growth of the firm count (+), net entry (+), falling real prices (+),
  few firms (-), innovation (-), quality institutions (-), productivity growth (-);
* quality improvement: innovation (+), brands, direct sales, subcontracts, certification (+),
  exits (+), productivity growth (+), rising concentration (+), growth of the firm count (-).

The raw label of a year is the phase with the highest score. The phase order initiation ->
quantity expansion -> quality improvement is then enforced within each cluster by the
minimum-cost non-decreasing relabelling (:func:`~cluster_econ.phases.result.ordered_path`); the
cost is disagreement with the raw label (``cost="disagreement"``, ties broken by the score
margin) or the score margin itself (``cost="margin"``). The result reports how many
cluster-years the ordering changed. Finally a cluster that never reaches quality improvement and
stays in quantity expansion for more than ``stagnation_years`` years is labelled stagnation from
then on. A label whose defining signals were not observed becomes ``unknown``
(:mod:`cluster_econ.phases.requirements`); ``candidate_phase`` keeps what the rules proposed.

Scores are not probabilities. ``raw_phase`` is always the phase with the highest score;
``phase`` differs from it only where the ordering step, the stagnation rule or a missing signal
changed it (``n_changed_by_ordering`` counts the first).

Known limitation: initiation is read mainly from the cluster's size relative to its peak. Where
the number of firms jumps when expansion starts (as in the model of Otsuka and Sonobe, and in
:mod:`cluster_econ.simulate`), this dates the start of expansion well; where expansion builds up
gradually over many years, its first years are still small relative to the peak and are read
as initiation. Raise ``initiation_size`` or the weight of firm growth to change this.

Why hand-written: the rules are the paper's phase table made explicit; no library encodes them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from types import MappingProxyType

import numpy as np
import pandas as pd

from cluster_econ.errors import ConfigError
from cluster_econ.phases.requirements import label_rows, parse_requirements
from cluster_econ.phases.result import LABELS, PhaseResult, apply_stagnation, ordered_path
from cluster_econ.phases.signals import compute_signals, prepare_cluster_year, smooth

__all__ = ["RulesConfig", "detect_rules", "evidence", "phase_scores"]


def _default_weights() -> dict[str, dict[str, float]]:
    return {
        "initiation": {"small": 3.0, "innovation": -1.0, "institutions": -1.0},
        "quantity_expansion": {"growth": 1.0, "net_entry": 1.0, "price_fall": 1.0,
                               "small": -2.0, "innovation": -1.0, "institutions": -1.0,
                               "productivity": -0.5},
        "quality_improvement": {"innovation": 1.5, "institutions": 1.0, "exit": 0.5,
                                "productivity": 0.5, "concentration": 0.5, "growth": -1.0},
    }


@dataclass(frozen=True)
class RulesConfig:
    """Thresholds and weights of the rule-based detection.

    Attributes
    ----------
    window : int
        Years in the centred moving average applied to every signal.
    initiation_size : float
        A cluster with fewer than this share of its peak number of firms counts as small
        (evidence +1 at zero firms, 0 at half this share, -1 at or above it).
    growth_low, growth_high : float
        Annual growth of the log firm count mapped to evidence -1 and +1 of quantity expansion
        (slow growth speaks for initiation or a mature cluster).
    expansion_net_entry : float
        Net entry rate (entry minus exit rate) that counts as full evidence of expansion.
    price_decline : float
        Annual fall of the log real price that counts as full evidence of expansion.
    productivity_growth : float
        Annual growth of log sales per worker that counts as full evidence of quality
        improvement (and against expansion).
    innovation_low, innovation_high : float
        Innovation share (mean of new product and new process shares) mapped to evidence -1
        and +1.
    institutions_low, institutions_high : float
        The same for the mean share of brands, direct sales, long-term subcontracts, vertical
        integration and quality certification.
    exit_low, exit_high : float
        The same for the exit rate.
    concentration_rise : float
        Annual rise in CR4 that counts as full evidence of quality improvement.
    stagnation_years : int or None
        Quantity expansion lasting more than this many years in a cluster that never reaches
        quality improvement is labelled stagnation after that; None switches the rule off.
    cost : {"disagreement", "margin"}
        Cost of the ordered relabelling.
    weights : mapping
        Weight of each piece of evidence in each phase score (negative: evidence against).
    requirements : mapping or None
        Signals each phase label needs (None: the defaults of
        :mod:`cluster_econ.phases.requirements`); a cluster-year whose label lacks them is
        ``unknown``.
    """

    window: int = 3
    initiation_size: float = 0.2
    growth_low: float = 0.0
    growth_high: float = 0.15
    expansion_net_entry: float = 0.03
    price_decline: float = 0.02
    productivity_growth: float = 0.02
    innovation_low: float = 0.05
    innovation_high: float = 0.25
    institutions_low: float = 0.05
    institutions_high: float = 0.25
    exit_low: float = 0.03
    exit_high: float = 0.12
    concentration_rise: float = 0.01
    stagnation_years: int | None = 14
    cost: str = "disagreement"
    weights: dict[str, dict[str, float]] = field(default_factory=_default_weights)
    requirements: dict | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "requirements", parse_requirements(self.requirements))
        if int(self.window) < 1:
            raise ConfigError(f"phases rules: window must be at least 1, got {self.window}")
        for lo, hi in (("growth_low", "growth_high"), ("innovation_low", "innovation_high"), ("institutions_low",
                                                                "institutions_high"),
                       ("exit_low", "exit_high")):
            if not getattr(self, lo) < getattr(self, hi):
                raise ConfigError(f"phases rules: {lo} ({getattr(self, lo)}) must be below {hi} "
                                  f"({getattr(self, hi)})")
        for name in ("initiation_size", "expansion_net_entry",
                     "price_decline", "productivity_growth", "concentration_rise"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"phases rules: {name} must be positive, got "
                                  f"{getattr(self, name)}")
        if self.cost not in ("disagreement", "margin"):
            raise ConfigError(f"phases rules: cost must be 'disagreement' or 'margin', got "
                              f"{self.cost!r}")
        if self.stagnation_years is not None and int(self.stagnation_years) < 1:
            raise ConfigError("phases rules: stagnation_years must be a positive integer or None")
        unknown = set(self.weights) - set(LABELS[:3])
        if unknown:
            raise ConfigError(f"phases rules: weights for unknown phases {sorted(unknown)}")
        known_ev = set(EVIDENCE)
        for ph, w in self.weights.items():
            bad = set(w) - known_ev
            if bad:
                raise ConfigError(f"phases rules: weights[{ph!r}] names unknown evidence "
                                  f"{sorted(bad)}; the evidence is {', '.join(EVIDENCE)}")

    @classmethod
    def from_mapping(cls, mapping: dict | None) -> RulesConfig:
        """Build from a plain mapping (a YAML section), rejecting unknown keys."""
        mapping = dict(mapping or {})
        known = set(cls.__dataclass_fields__)
        bad = set(mapping) - known
        if bad:
            raise ConfigError(f"phases rules: unknown keys {sorted(bad)}; known keys are "
                              f"{', '.join(sorted(known))}")
        if "weights" in mapping:
            w = _default_weights()
            for ph, vals in dict(mapping["weights"]).items():
                w.setdefault(ph, {}).update(dict(vals))
            mapping["weights"] = w
        return cls(**mapping)

    def to_dict(self) -> dict:
        return asdict(self)


EVIDENCE: tuple[str, ...] = ("small", "growth", "net_entry", "price_fall", "productivity",
                             "innovation", "institutions", "exit", "concentration")


def _ramp(x: pd.Series, lo: float, hi: float) -> pd.Series:
    return (2.0 * (x - lo) / (hi - lo) - 1.0).clip(-1.0, 1.0)


def evidence(signals: pd.DataFrame, config: RulesConfig) -> pd.DataFrame:
    """Evidence between -1 and 1 from (smoothed) signals; missing where a signal is missing."""
    c = config
    ev = pd.DataFrame(index=signals.index)
    if "rel_size" in signals:
        ev["small"] = (1.0 - 2.0 * signals["rel_size"] / c.initiation_size).clip(-1.0, 1.0)
    if "firm_growth" in signals:
        ev["growth"] = _ramp(signals["firm_growth"], c.growth_low, c.growth_high)
    if "net_entry" in signals:
        ev["net_entry"] = (signals["net_entry"] / c.expansion_net_entry).clip(-1.0, 1.0)
    if "price_trend" in signals:
        ev["price_fall"] = (-signals["price_trend"] / c.price_decline).clip(-1.0, 1.0)
    if "productivity_trend" in signals:
        ev["productivity"] = (signals["productivity_trend"] / c.productivity_growth).clip(-1, 1)
    if "innovation" in signals:
        ev["innovation"] = _ramp(signals["innovation"], c.innovation_low, c.innovation_high)
    if "institutions" in signals:
        ev["institutions"] = _ramp(signals["institutions"], c.institutions_low,
                                   c.institutions_high)
    if "exit_rate" in signals:
        ev["exit"] = _ramp(signals["exit_rate"], c.exit_low, c.exit_high)
    if "concentration_trend" in signals:
        ev["concentration"] = (signals["concentration_trend"] / c.concentration_rise).clip(-1, 1)
    return ev


def phase_scores(ev: pd.DataFrame, config: RulesConfig) -> pd.DataFrame:
    """Score of each ordered phase: weighted mean of the available evidence (0 if none)."""
    out = {}
    for phase in LABELS[:3]:
        w = config.weights.get(phase, {})
        num = np.zeros(len(ev))
        den = np.zeros(len(ev))
        for name, wt in w.items():
            if name not in ev:
                continue
            x = ev[name].to_numpy(dtype=float)
            ok = ~np.isnan(x)
            num += np.where(ok, wt * x, 0.0)
            den += np.where(ok, abs(wt), 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[phase] = np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)
    return pd.DataFrame(out, index=ev.index)


def _ordering_cost(scores: np.ndarray, raw: np.ndarray, how: str) -> np.ndarray:
    margin = scores.max(axis=1, keepdims=True) - scores
    if how == "margin":
        return margin
    dis = (np.arange(scores.shape[1])[None, :] != raw[:, None]).astype(float)
    return dis + 1e-3 * margin


def detect_rules(data: object, config: RulesConfig | dict | None = None) -> PhaseResult:
    """Phases by transparent rules; see the module docstring for the model."""
    if config is None:
        cfg = RulesConfig()
    elif isinstance(config, RulesConfig):
        cfg = config
    else:
        cfg = RulesConfig.from_mapping(config)
    cy = prepare_cluster_year(data)
    raw_sig = compute_signals(cy)
    sm = smooth(raw_sig, cy["cluster_id"], int(cfg.window))
    ev = evidence(sm, cfg)
    sc = phase_scores(ev, cfg)
    S = sc.to_numpy()
    raw = S.argmax(axis=1)
    labels = np.empty(len(cy), dtype=int)
    for _, idx in cy.groupby("cluster_id", sort=False).indices.items():
        idx = np.sort(idx)
        path = ordered_path(_ordering_cost(S[idx], raw[idx], cfg.cost))
        labels[idx] = path
    n_changed = int((labels != raw).sum())
    final = labels.copy()
    for _, idx in cy.groupby("cluster_id", sort=False).indices.items():
        idx = np.sort(idx)
        final[idx] = apply_stagnation(labels[idx], cfg.stagnation_years)
    names = np.array(LABELS)
    phase, reason, req_diag = label_rows(cy, raw_sig, final, cfg.requirements)
    out = cy[["cluster_id", "year"]].copy()
    out["phase"] = phase
    out["candidate_phase"] = names[final]
    out["unknown_reason"] = reason
    out["raw_phase"] = names[raw]
    for col in sc:
        out[f"score_{col}"] = sc[col].to_numpy()
    for col in raw_sig:
        out[col] = raw_sig[col].to_numpy()
        out[f"s_{col}"] = sm[col].to_numpy()
    diag = {
        "signals": list(raw_sig.columns),
        "evidence": list(ev.columns),
        "n_changed_by_ordering": n_changed,
        "n_stagnation": int((final == 3).sum()),
        "raw_label_counts": dict(pd.Series(names[raw]).value_counts()),
        **req_diag,
    }
    return PhaseResult(method="rules", cluster_year=out, diagnostics=MappingProxyType(diag),
                       config=cfg, n_changed=n_changed)
