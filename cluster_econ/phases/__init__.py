"""Phase detection: which phase of cluster-based development (Otsuka and Sonobe) each
cluster-year is in.

Three methods read the cluster_year table (firm counts, entry and exit, the real price,
innovation and institution shares, concentration):

* ``detect(..., method="rules")``: transparent thresholds on smoothed signals, with the phase
  order enforced by a minimum-cost ordered relabelling (:mod:`cluster_econ.phases.rules`);
* ``detect(..., method="breaks")``: common least-squares structural breaks in the signals,
  regimes mapped to phases in order (:mod:`cluster_econ.phases.segments`);
* ``detect(..., method="hmm")``: a left-to-right Gaussian hidden Markov model
  (:mod:`cluster_econ.phases.hmm`).

Every label needs the signals that define its phase (:mod:`cluster_econ.phases.requirements`):
where they were not observed the cluster-year is labelled ``"unknown"`` (:data:`UNKNOWN`), with
the method's candidate phase in ``candidate_phase`` and the missing signals in
``unknown_reason``. Code that consumes phases must treat ``unknown`` as "phase not known"
(like a missing value), never as a fifth phase.

``compare`` runs several methods and reports their labels side by side with the share of
cluster-years labelled the same and Cohen's kappa per cluster and overall, warning
(:class:`PhaseAgreementWarning`) when agreement is low. ``structural_breaks`` dates breaks in any
series (Bai-Perron, with Bai (1997) intervals); ``from_column`` and ``from_start_years`` take
phases the user supplies; ``accuracy`` compares two labellings.
"""

from __future__ import annotations

from typing import Any

from cluster_econ.errors import ConfigError
from cluster_econ.phases.breaks import BreaksResult, structural_breaks
from cluster_econ.phases.compare import (
    PhaseAgreementWarning,
    PhaseComparison,
    cohen_kappa,
    compare,
)
from cluster_econ.phases.hmm import HMMConfig, detect_hmm
from cluster_econ.phases.requirements import DEFAULT_REQUIREMENTS, UNKNOWN
from cluster_econ.phases.result import PhaseResult, phase_spans
from cluster_econ.phases.rules import RulesConfig, detect_rules
from cluster_econ.phases.segments import BreaksConfig, detect_breaks
from cluster_econ.phases.signals import PHASES, SIGNAL_SOURCES, compute_signals
from cluster_econ.phases.user import (
    Accuracy,
    accuracy,
    from_column,
    from_start_years,
    validate_phases,
)

__all__ = [
    "DEFAULT_REQUIREMENTS",
    "PHASES",
    "SIGNAL_SOURCES",
    "UNKNOWN",
    "Accuracy",
    "BreaksConfig",
    "BreaksResult",
    "HMMConfig",
    "PhaseAgreementWarning",
    "PhaseComparison",
    "PhaseResult",
    "RulesConfig",
    "accuracy",
    "cohen_kappa",
    "compare",
    "compute_signals",
    "detect",
    "from_column",
    "from_start_years",
    "phase_spans",
    "structural_breaks",
    "validate_phases",
]

_METHODS = {
    "rules": (detect_rules, RulesConfig),
    "breaks": (detect_breaks, BreaksConfig),
    "hmm": (detect_hmm, HMMConfig),
}


def detect(panel_or_cluster_year: Any, method: str = "rules", config: Any = None,
           **kw: Any) -> PhaseResult:
    """Detect the phase of every cluster-year.

    Parameters
    ----------
    panel_or_cluster_year : Panel or DataFrame
        A Panel (its ``cluster_year``; aggregated from ``enterprise_year`` first when it lacks
        the aggregates) or a cluster_year DataFrame with ``cluster_id``, ``year`` and the
        canonical aggregate columns.
    method : {"rules", "breaks", "hmm"}
        Detection method.
    config : RulesConfig, BreaksConfig, HMMConfig or mapping, optional
        Settings of the method (a mapping is validated key by key).
    **kw
        Individual settings overriding ``config`` (for example ``window=5`` or ``seed=3``).

    Returns
    -------
    PhaseResult
        ``cluster_year.phase`` is one of :data:`PHASES` or ``"unknown"`` (the signals the
        method's candidate phase needs were not observed; ``unknown_reason`` names them).
    """
    if method not in _METHODS:
        raise ConfigError(f"unknown phase detection method {method!r}; choose one of "
                          f"{', '.join(_METHODS)}")
    fn, cls = _METHODS[method]
    if config is None:
        cfg = cls.from_mapping(kw) if kw else cls()
    elif isinstance(config, cls):
        cfg = config
        if kw:
            from dataclasses import replace
            bad = set(kw) - set(cls.__dataclass_fields__)
            if bad:
                raise ConfigError(f"phases {method}: unknown settings {sorted(bad)}")
            cfg = replace(cfg, **kw)
    elif isinstance(config, dict):
        cfg = cls.from_mapping({**config, **kw})
    else:
        raise ConfigError(f"phases {method}: config must be a {cls.__name__} or a mapping, got "
                          f"{type(config).__name__}")
    return fn(panel_or_cluster_year, cfg)
