"""The built-in propositions P1-P9 of Otsuka and Sonobe's model of cluster-based industrial
development, as registered specifications (claims in our own words).

``mechanisms`` names the simulator switches that make each claim false (the falsification
matrix checks that the verdict then fails). ``reference_effects`` are the values of each verdict
check in the demo design's full model, the mean over the 20 full-model replications of
``benchmarks/bench_falsification.py`` (seeds 1-20; FalsificationMatrix.reference_effects()):
every verdict reports its power against them.
"""

from __future__ import annotations

from cluster_econ.hypotheses.spec import Proposition, register

QI, QE = "quality_improvement", "quantity_expansion"

BUILTIN = (
    Proposition(
        id="P1", title="founders",
        claim="Enterprises founded while a cluster is being initiated are started by merchants when the product "
              "is simple to make and by engineers when it is complex.",
        requires=("enterprise.founder_origin", "enterprise.product_complexity"),
        outcome="founder_origin", regressors=("simple", "complex"), estimator="logit",
        test="merchant ~ simple and engineer ~ complex among initiation entrants, both coefficients > 0",
        expected_sign=1, phase_mode="by", runner="P1",
        mechanisms=("no_founder_pattern",),
        reference_effects={
            "engineer ~ complex": 2.74,
            "merchant ~ simple": 2.817}),
    Proposition(
        id="P2", title="spin-off imitation",
        claim="Entrants during quantity expansion are more often spin-offs of incumbents than later entrants, and "
              "a spin-off starts with a productivity that follows its parent's.",
        requires=("enterprise.founder_origin", "enterprise.spinoff_parent_id", "enterprise_year.value_added",
                  "enterprise_year.employment", "enterprise_year.capital_stock", "deflator.price_index"),
        outcome="spinoff", regressors=("entered_in_expansion", "tfp_parent"), estimator="logit",
        test="spinoff ~ entered_in_expansion (> 0) and the imitation elasticity of entrant productivity on the "
             "parent's (> 0)",
        expected_sign=1, phase_mode="by", contrast=(QI, QE), runner="P2",
        mechanisms=("no_spinoff_wave", "no_spinoff_imitation"),
        reference_effects={
            "imitation elasticity": 0.3557,
            "spin-off wave": 1.475}),
    Proposition(
        id="P3", title="stagnant expansion",
        claim="During quantity expansion productivity hardly grows while real prices fall; productivity grows "
              "faster once quality improvement starts.",
        requires=("enterprise_year.value_added", "enterprise_year.employment", "enterprise_year.capital_stock",
                  "deflator.price_index"),
        outcome="d_tfp", regressors=("phase",), fixed_effects=("cluster_id",), estimator="feols",
        test="productivity growth of enterprises (one-year changes) in quality improvement minus quantity "
             "expansion within clusters (> 0) and in quality improvement (> 0); growth in quantity expansion below "
             "a margin; real price change in quantity expansion (< 0)",
        expected_sign=1, phase_mode="interacted", runner="P3",
        mechanisms=("no_productivity_gain", "no_price_response"),
        reference_effects={
            "d_log_real_price in quantity_expansion": -0.02838,
            "d_tfp in quality_improvement rises": 0.01682,
            "d_tfp in quantity_expansion flat": -0.0004704,
            "d_tfp: quality_improvement - quantity_expansion": 0.02046},
        options={"flat_margin": 0.02}),
    Proposition(
        id="P4", title="education and innovation",
        claim="Managers with more schooling innovate more, and the more so in quality improvement than in "
              "quantity expansion.",
        requires=("manager.schooling_years", "enterprise_year.new_product", "enterprise_year.employment"),
        outcome="new_product", regressors=("schooling",), controls=("log_l", "age"),
        fixed_effects=("cluster_id",), estimator="logit",
        test="logit schooling slope in quality improvement minus quantity expansion (> 0), with cluster fixed "
             "effects and phase effects; the LPM with cluster-by-year fixed effects is reported beside it",
        expected_sign=1, phase_mode="interacted", runner="interaction",
        mechanisms=("equal_schooling_slopes", "no_schooling_returns"),
        reference_effects={
            "schooling: quality_improvement - quantity_expansion": 0.2489},
        options={"companion": "lpm", "companion_fixed_effects": ("cluster_id^year",)}),
    Proposition(
        id="P5", title="education and performance",
        claim="Schooling raises value added more in quality improvement than in quantity expansion.",
        requires=("manager.schooling_years", "enterprise_year.value_added", "deflator.price_index"),
        outcome="log_va", regressors=("schooling",), controls=("age", "C(entry_phase)"),
        fixed_effects=("cluster_id^year",), estimator="feols",
        test="schooling slope on log real value added in quality improvement minus quantity expansion (> 0), "
             "comparing enterprises of the same cluster and year, age and entry phase (pooled OLS: schooling "
             "does not vary within enterprises)",
        expected_sign=1, phase_mode="interacted", runner="interaction",
        mechanisms=("no_schooling_returns",),
        reference_effects={
            "schooling: quality_improvement - quantity_expansion": 0.04445}),
    Proposition(
        id="P6", title="shake-out",
        claim="In quality improvement enterprises that do not innovate exit much more often than innovators, "
              "more so than in quantity expansion.",
        requires=("enterprise_year.exit", "enterprise_year.new_product", "enterprise_year.new_process",
                  "manager.schooling_years", "enterprise_year.employment"),
        outcome="exit", regressors=("innovator",), controls=("schooling", "log_l"), estimator="cloglog",
        test="innovator log hazard ratio in quality improvement minus quantity expansion (< 0) and in quality "
             "improvement (< 0)",
        expected_sign=-1, phase_mode="interacted", runner="P6",
        mechanisms=("no_shakeout",),
        reference_effects={
            "innovator in quality_improvement": -1.17,
            "innovator: quality_improvement - quantity_expansion": -0.9488}),
    Proposition(
        id="P7", title="sources of productivity growth",
        claim="Aggregate productivity rises in quality improvement, through within-firm gains, reallocation "
              "towards better firms and the exit of worse ones.",
        requires=("enterprise_year.value_added", "enterprise_year.employment", "enterprise_year.capital_stock",
                  "deflator.price_index"),
        outcome="total", regressors=("phase",), estimator="feols",
        test="aggregate productivity growth per year in quality improvement minus quantity expansion (> 0) and "
             "in quality improvement (> 0); within, between, entry and exit components reported",
        expected_sign=1, phase_mode="by", runner="P7",
        mechanisms=("no_productivity_gain",),
        reference_effects={
            "total in quality_improvement rises": 0.01639,
            "total: quality_improvement - quantity_expansion": 0.01482}),
    Proposition(
        id="P8", title="institutions and size",
        claim="Parts are bought in anonymous markets mostly in quantity expansion; subcontracting, own brands "
              "and direct sales spread in quality improvement, where large firms emerge.",
        requires=("enterprise_year.parts_market_share",),
        outcome="parts_market_share", regressors=("phase",), estimator="lpm",
        test="parts market share highest in quantity expansion; long-term subcontracts, own brands and direct "
             "sales higher in quality improvement than quantity expansion (all > 0); CR4 and Gibrat reported",
        expected_sign=1, phase_mode="by", runner="P8",
        mechanisms=("no_institutional_change",),
        reference_effects={
            "direct_sales: quality_improvement - quantity_expansion": 0.3464,
            "long_term_subcontract: quality_improvement - quantity_expansion": 0.3692,
            "own_brand: quality_improvement - quantity_expansion": 0.3506,
            "parts_market_share: quantity_expansion - initiation": 51.85,
            "parts_market_share: quantity_expansion - quality_improvement": 31.03}),
    Proposition(
        id="P9", title="management training",
        claim="Randomly offered management training raises the adoption of management practices and then "
              "value added.",
        requires=("rct_assignment.treatment", "enterprise_year.management_score"),
        outcome="management_score", regressors=("treated",), fixed_effects=("stratum_id", "cluster_id^year"),
        estimator="feols", vcov={"CRV1": "enterprise_id"},
        test="ITT on management score and on log value added (> 0); TOT by 2SLS and wild bootstrap reported",
        expected_sign=1, phase_mode="by", runner="P9",
        mechanisms=("no_training_effect",),
        reference_effects={
            "ITT log_va": 0.1114,
            "ITT management_score": 0.1095},
        options={"va_lag": 2, "bootstrap": 999}),
)


def register_builtin() -> None:
    """(Re-)register P1-P9 (overwriting user changes of the same ids)."""
    for p in BUILTIN:
        register(p, overwrite=True)
