"""Figures: cluster timelines with phase shading, coefficients by phase, Kaplan-Meier curves and
event studies, in one style (:mod:`cluster_econ.figures.style`), saved as deterministic PNG/SVG.

matplotlib is imported only when a plot is drawn.
"""

from __future__ import annotations

from cluster_econ.figures.plots import (
    cluster_timeline,
    coefficient_plot,
    event_study_frame,
    event_study_plot,
    km_plot,
)
from cluster_econ.figures.style import FigureError, save

__all__ = ["FigureError", "cluster_timeline", "coefficient_plot", "event_study_frame", "event_study_plot",
           "km_plot", "save"]
