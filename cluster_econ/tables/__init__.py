"""Regression and descriptive tables with LaTeX, HTML, Markdown, Word, Excel and CSV output.

>>> from cluster_econ.tables import regression_table
>>> tab = regression_table([res1, res2], stars=True, groups={"Phase Q": [0], "Phase U": [1]})
>>> tab.save("table1.tex")                                                   # doctest: +SKIP

Tables read only :class:`cluster_econ.estimate.result.Result` objects (and DataFrames for
descriptive tables). Every file is written atomically (see :func:`atomic_write`).

Names resolve lazily, so ``from cluster_econ.tables import atomic_write`` stays cheap (no scipy).
"""

from __future__ import annotations

from cluster_econ._lazy import lazy_attributes

_LAZY: dict[str, str] = {
    "atomic_write": "cluster_econ.tables._io",
    "html_escape": "cluster_econ.tables._escape",
    "latex_escape": "cluster_econ.tables._escape",
    "markdown_escape": "cluster_econ.tables._escape",
    "neutralise_cell": "cluster_econ.tables._escape",
    "xml_safe": "cluster_econ.tables._escape",
    "Cell": "cluster_econ.tables._render",
    "Layout": "cluster_econ.tables._render",
    "RenderedTable": "cluster_econ.tables._render",
    "Row": "cluster_econ.tables._render",
    "TableError": "cluster_econ.tables._render",
    "TABLE_CSS": "cluster_econ.tables._render",
    "DescriptiveTable": "cluster_econ.tables.descriptive",
    "descriptive_table": "cluster_econ.tables.descriptive",
    "FIT_STATS": "cluster_econ.tables.regression",
    "RegressionTable": "cluster_econ.tables.regression",
    "fixed_effects": "cluster_econ.tables.regression",
    "regression_table": "cluster_econ.tables.regression",
    "phase_profile": "cluster_econ.tables.phase_profile",
    "phase_profile_long": "cluster_econ.tables.phase_profile",
    "phase_profile_table": "cluster_econ.tables.phase_profile",
    "survey_summary": "cluster_econ.tables.survey_table",
    "survey_table": "cluster_econ.tables.survey_table",
}

__all__ = sorted(_LAZY)

__getattr__, __dir__ = lazy_attributes(__name__, _LAZY)
