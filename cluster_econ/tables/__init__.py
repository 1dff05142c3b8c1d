"""Regression and descriptive tables with LaTeX, HTML, Markdown, Word, Excel and CSV output.

>>> from cluster_econ.tables import regression_table
>>> tab = regression_table([res1, res2], stars=True, groups={"Phase Q": [0], "Phase U": [1]})
>>> tab.save("table1.tex")                                                   # doctest: +SKIP

Tables read only :class:`cluster_econ.estimate.result.Result` objects (and DataFrames for
descriptive tables). Every file is written atomically (see :func:`atomic_write`).
"""

from __future__ import annotations

from cluster_econ.tables._escape import (
    html_escape,
    latex_escape,
    markdown_escape,
    neutralise_cell,
    xml_safe,
)
from cluster_econ.tables._io import atomic_write
from cluster_econ.tables._render import Cell, Layout, RenderedTable, Row, TableError
from cluster_econ.tables.descriptive import DescriptiveTable, descriptive_table
from cluster_econ.tables.regression import (
    FIT_STATS,
    RegressionTable,
    fixed_effects,
    regression_table,
)

__all__ = [
    "FIT_STATS",
    "Cell",
    "DescriptiveTable",
    "Layout",
    "RegressionTable",
    "RenderedTable",
    "Row",
    "TableError",
    "atomic_write",
    "descriptive_table",
    "fixed_effects",
    "html_escape",
    "latex_escape",
    "markdown_escape",
    "neutralise_cell",
    "regression_table",
    "xml_safe",
]
