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

``structural_breaks`` dates breaks in any series (Bai-Perron, with Bai (1997) intervals);
``from_column`` and ``from_start_years`` take phases the user supplies; ``accuracy`` compares
two labellings.
"""

from __future__ import annotations

from typing import Any

from cluster_econ.errors import ConfigError
from cluster_econ.phases.breaks import BreaksResult, structural_breaks
from cluster_econ.phases.hmm import HMMConfig, detect_hmm
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
    "PHASES",
    "SIGNAL_SOURCES",
    "Accuracy",
    "BreaksConfig",
    "BreaksResult",
    "HMMConfig",
    "PhaseResult",
    "RulesConfig",
    "accuracy",
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
