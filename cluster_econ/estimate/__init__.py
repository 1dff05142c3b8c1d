"""Estimators. Every function returns :class:`cluster_econ.estimate.result.Result` (immutable;
``result.vcov(...)`` gives the same estimates under another covariance as a new result); tests
(``wald_test``, ``hausman``, ``logrank_test``) return a :class:`~cluster_econ.estimate.result.TestResult`.

Modules (one public entry point each, shared numerics in one place):

- ``formula``: the safe formula parser (fixest syntax) and design-matrix builder
- ``panel_frame``: the estimation frame of a Panel (enterprise, manager-in-charge and cluster-year
  columns joined to the enterprise-years)
- ``demean``: absorbing fixed effects (alternating projections), reusable across specifications
- ``covariance``: iid, HC1, HC3, CRV1 (one- and two-way), CRV3 and the named small-sample corrections
- ``linear``: ``feols`` and ``iv`` (2SLS), absorbed fixed effects
- ``panel_models``: ``panel`` (pooled, fe, re, between, fd, mundlak) and ``hausman``
- ``inference``: ``wald_test``
- ``bootstrap``: ``wild_bootstrap`` (wild cluster, restricted, Rademacher / Webb)
- ``binary``: ``logit``, ``probit``, ``lpm``, ``cloglog``, ``conditional_logit``, ``cre_probit``,
  ``marginal_effects``
- ``censored``: ``tobit``, ``ordered_probit``
- ``survival``: ``cox``, ``hazard``, ``kaplan_meier``, ``logrank_test``
- ``production``: ``prodest`` (Olley-Pakes, Levinsohn-Petrin, Ackerberg-Caves-Frazer, Wooldridge,
  Gandhi-Navarro-Rivers, dynamic panel), ``estimate_productivity`` (log productivity for survey data)
- ``gmm``: ``pgmm`` (dynamic panel GMM: Arellano-Bond difference, Blundell-Bond system)
- ``liml``: ``liml`` (LIML and Fuller k-class IV)
- ``iv_diagnostics``: weak-instrument, over-identification and endogeneity tests, Anderson-Rubin
  sets (reported by ``iv`` and ``feols`` IV fits)
- ``poisson``: ``fepois`` / ``ppml`` (Poisson PML with absorbed fixed effects)
- ``fractional``: ``fracreg``, ``fractional_logit``, ``fractional_probit`` (Papke-Wooldridge)
- ``survey``: ``SurveyDesign`` (weights, strata, PSUs, fpc) for ``survey=``, ``survey_mean``,
  ``survey_total`` (Taylor-linearised variances as R's survey package)
- ``did``, ``did_aggte``: ``att_gt`` and ``aggte`` (staggered adoption, Callaway and Sant'Anna);
  ``sunab``: the Sun-Abraham event study behind ``feols("y ~ sunab(cohort, period) | ...")``
- ``randomization``: ``randomization_inference``; ``multiple_testing``: ``romano_wolf``,
  ``westfall_young``
- ``bounds``: ``lee_bounds``; ``ancova``: ``ancova`` (several follow-up rounds)
"""

from __future__ import annotations

from cluster_econ._lazy import lazy_attributes

_LAZY = {
    "Result": "result", "TestResult": "result",
    "feols": "linear", "iv": "linear",
    "panel": "panel_models", "hausman": "panel_models",
    "wald_test": "inference",
    "wild_bootstrap": "bootstrap",
    "logit": "binary", "probit": "binary", "lpm": "binary", "cloglog": "binary",
    "conditional_logit": "binary", "cre_probit": "binary", "marginal_effects": "binary",
    "tobit": "censored", "ordered_probit": "censored",
    "cox": "survival", "hazard": "survival", "kaplan_meier": "survival", "logrank_test": "survival",
    "prodest": "production", "estimate_productivity": "production",
    "pgmm": "gmm",
    "fepois": "poisson", "ppml": "poisson",
    "liml": "liml",
    "fracreg": "fractional", "fractional_logit": "fractional", "fractional_probit": "fractional",
    "SurveyDesign": "survey", "survey_mean": "survey", "survey_total": "survey",
    "att_gt": "did", "aggte": "did_aggte",
    "randomization_inference": "randomization",
    "romano_wolf": "multiple_testing", "westfall_young": "multiple_testing",
    "lee_bounds": "bounds", "ancova": "ancova",
}

__all__ = list(_LAZY)

__getattr__, __dir__ = lazy_attributes(__name__, {name: f"{__name__}.{module}" for name, module in _LAZY.items()})
