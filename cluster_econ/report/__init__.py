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

from cluster_econ._lazy import lazy_attributes

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

__getattr__, __dir__ = lazy_attributes(__name__, _LAZY)
