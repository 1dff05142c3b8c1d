"""Replications and batch reports.

- :func:`run_replications` (``cluster_econ.report.replicate.run``): re-run the shipped
  replications (``replication/<name>/``: config, template README, expected values with sources)
  and check every number; ``cluster-econ replicate``.
- :func:`run_report` (``cluster_econ.report.batch.run_report``): a batch of propositions and
  custom specifications over data subsets, in parallel with a cache, written as one
  self-contained HTML report plus LaTeX, Word and Excel tables; ``cluster-econ report``.

Names resolve lazily so that ``import cluster_econ.report`` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY: dict[str, tuple[str, str]] = {
    "run_replications": ("cluster_econ.report.replicate", "run"),
    "available_replications": ("cluster_econ.report.replicate", "available"),
    "ExhibitOutcome": ("cluster_econ.report.replicate", "ExhibitOutcome"),
    "CheckOutcome": ("cluster_econ.report.replicate", "CheckOutcome"),
    "run_report": ("cluster_econ.report.batch", "run_report"),
    "load_config": ("cluster_econ.report.batch", "load_config"),
    "ReportSummary": ("cluster_econ.report.batch", "ReportSummary"),
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    try:
        module, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'cluster_econ.report' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
