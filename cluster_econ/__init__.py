"""cluster_econ: enterprise survey panels to tested propositions on cluster-based development.

``import cluster_econ as ce`` is light: the heavy libraries (statsmodels, linearmodels,
matplotlib) load only when a function that needs them is called. Public names resolve lazily.

One name, one thing: ``ce.panel`` is the panel-data estimator
(:func:`cluster_econ.estimate.panel_models.panel`), whatever was imported before; the Panel
container lives in the subpackage of the same name, imported as ``from cluster_econ.panel import
Panel`` (or ``ce.Panel``).
"""

from __future__ import annotations

from cluster_econ._lazy import lazy_attributes, pin_functions
from cluster_econ._version import __version__

# public name -> (module, attribute); attribute None means the module itself
_LAZY: dict[str, tuple[str, str | None]] = {
    # data
    "Panel": ("cluster_econ.panel", "Panel"),
    "read_panel": ("cluster_econ.panel", "read_panel"),
    "normalize": ("cluster_econ.harmonize.pipeline", "normalize"),
    "validate": ("cluster_econ.schema.validate", "validate"),
    "SchemaError": ("cluster_econ.errors", "SchemaError"),
    # estimation
    "Result": ("cluster_econ.estimate.result", "Result"),
    "TestResult": ("cluster_econ.estimate.result", "TestResult"),
    "feols": ("cluster_econ.estimate", "feols"),
    "iv": ("cluster_econ.estimate", "iv"),
    "panel": ("cluster_econ.estimate", "panel"),  # pinned below: the subpackage never hides it
    "hausman": ("cluster_econ.estimate", "hausman"),
    "logit": ("cluster_econ.estimate", "logit"),
    "probit": ("cluster_econ.estimate", "probit"),
    "lpm": ("cluster_econ.estimate", "lpm"),
    "cloglog": ("cluster_econ.estimate", "cloglog"),
    "conditional_logit": ("cluster_econ.estimate", "conditional_logit"),
    "cre_probit": ("cluster_econ.estimate", "cre_probit"),
    "tobit": ("cluster_econ.estimate", "tobit"),
    "ordered_probit": ("cluster_econ.estimate", "ordered_probit"),
    "marginal_effects": ("cluster_econ.estimate", "marginal_effects"),
    "cox": ("cluster_econ.estimate", "cox"),
    "hazard": ("cluster_econ.estimate", "hazard"),
    "kaplan_meier": ("cluster_econ.estimate", "kaplan_meier"),
    "logrank_test": ("cluster_econ.estimate", "logrank_test"),
    "wald_test": ("cluster_econ.estimate", "wald_test"),
    "wild_bootstrap": ("cluster_econ.estimate", "wild_bootstrap"),
    "prodest": ("cluster_econ.estimate", "prodest"),
    "estimate_productivity": ("cluster_econ.estimate", "estimate_productivity"),
    "pgmm": ("cluster_econ.estimate", "pgmm"),
    "fepois": ("cluster_econ.estimate", "fepois"),
    "ppml": ("cluster_econ.estimate", "ppml"),
    "fracreg": ("cluster_econ.estimate", "fracreg"),
    "liml": ("cluster_econ.estimate", "liml"),
    "fractional_logit": ("cluster_econ.estimate", "fractional_logit"),
    "fractional_probit": ("cluster_econ.estimate", "fractional_probit"),
    "SurveyDesign": ("cluster_econ.estimate", "SurveyDesign"),
    "survey_mean": ("cluster_econ.estimate", "survey_mean"),
    "survey_total": ("cluster_econ.estimate", "survey_total"),
    "att_gt": ("cluster_econ.estimate", "att_gt"),
    "aggte": ("cluster_econ.estimate", "aggte"),
    "randomization_inference": ("cluster_econ.estimate", "randomization_inference"),
    "romano_wolf": ("cluster_econ.estimate", "romano_wolf"),
    "westfall_young": ("cluster_econ.estimate", "westfall_young"),
    "lee_bounds": ("cluster_econ.estimate", "lee_bounds"),
    "ancova": ("cluster_econ.estimate", "ancova"),
    # hypotheses
    "test": ("cluster_econ.hypotheses", "test"),
    "test_all": ("cluster_econ.hypotheses", "test_all"),
    # subpackages
    "schema": ("cluster_econ.schema", None),
    "phases": ("cluster_econ.phases", None),
    "tables": ("cluster_econ.tables", None),
    "figures": ("cluster_econ.figures", None),
    "datasets": ("cluster_econ.datasets", None),
    "simulate": ("cluster_econ.simulate", None),
    "hypotheses": ("cluster_econ.hypotheses", None),
    "report": ("cluster_econ.report", None),
}

__all__ = ["__version__", *_LAZY]

__getattr__, __dir__ = lazy_attributes(__name__, _LAZY)
pin_functions(__name__, {"panel": ("cluster_econ.estimate.panel_models", "panel")})
