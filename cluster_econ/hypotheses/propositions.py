"""The built-in propositions P1-P9 of Otsuka and Sonobe's model of cluster-based industrial
development, as registered specifications (claims in our own words)."""

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
        expected_sign=1, phase_mode="by", runner="P1"),
    Proposition(
        id="P2", title="spin-off imitation",
        claim="Entrants during quantity expansion are more often spin-offs of incumbents than later entrants, and "
              "a spin-off starts with a productivity that follows its parent's.",
        requires=("enterprise.founder_origin", "enterprise.spinoff_parent_id", "enterprise_year.value_added",
                  "enterprise_year.employment", "enterprise_year.capital_stock", "deflator.price_index"),
        outcome="spinoff", regressors=("entered_in_expansion", "tfp_parent"), estimator="logit",
        test="spinoff ~ entered_in_expansion (> 0) and the imitation elasticity of entrant productivity on the "
             "parent's (> 0)",
        expected_sign=1, phase_mode="by", contrast=(QI, QE), runner="P2"),
    Proposition(
        id="P3", title="stagnant expansion",
        claim="During quantity expansion productivity hardly grows while real prices fall; productivity grows "
              "faster once quality improvement starts.",
        requires=("enterprise_year.value_added", "enterprise_year.employment", "enterprise_year.capital_stock",
                  "deflator.price_index"),
        outcome="d_tfp", regressors=("phase",), fixed_effects=("enterprise_id",), estimator="feols",
        test="within-firm productivity growth in quality improvement minus quantity expansion (> 0); growth in "
             "quantity expansion below a margin; real price change in quantity expansion (< 0)",
        expected_sign=1, phase_mode="interacted", runner="P3", options={"flat_margin": 0.02}),
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
        options={"companion": "lpm", "companion_fixed_effects": ("cluster_id^year",)}),
    Proposition(
        id="P5", title="education and performance",
        claim="Schooling raises value added more in quality improvement than in quantity expansion.",
        requires=("manager.schooling_years", "enterprise_year.value_added", "deflator.price_index"),
        outcome="log_va", regressors=("schooling",), controls=("age", "C(cluster_id)"), estimator="re",
        test="schooling slope on log real value added in quality improvement minus quantity expansion (> 0), "
             "random effects (schooling does not vary within firms)",
        expected_sign=1, phase_mode="interacted", runner="interaction"),
    Proposition(
        id="P6", title="shake-out",
        claim="In quality improvement enterprises that do not innovate exit much more often than innovators, "
              "more so than in quantity expansion.",
        requires=("enterprise_year.exit", "enterprise_year.new_product", "enterprise_year.new_process",
                  "manager.schooling_years", "enterprise_year.employment"),
        outcome="exit", regressors=("innovator",), controls=("schooling", "log_l"), estimator="cloglog",
        test="innovator log hazard ratio in quality improvement minus quantity expansion (< 0) and in quality "
             "improvement (< 0)",
        expected_sign=-1, phase_mode="interacted", runner="P6"),
    Proposition(
        id="P7", title="sources of productivity growth",
        claim="Aggregate productivity rises in quality improvement, through within-firm gains, reallocation "
              "towards better firms and the exit of worse ones.",
        requires=("enterprise_year.value_added", "enterprise_year.employment", "enterprise_year.capital_stock",
                  "deflator.price_index"),
        outcome="total", regressors=("phase",), estimator="feols",
        test="aggregate productivity growth per year in quality improvement minus quantity expansion (> 0); "
             "within, between, entry and exit components reported",
        expected_sign=1, phase_mode="by", runner="P7"),
    Proposition(
        id="P8", title="institutions and size",
        claim="Parts are bought in anonymous markets mostly in quantity expansion; subcontracting, own brands "
              "and direct sales spread in quality improvement, where large firms emerge.",
        requires=("enterprise_year.parts_market_share",),
        outcome="parts_market_share", regressors=("phase",), estimator="lpm",
        test="parts market share highest in quantity expansion; long-term subcontracts, own brands and direct "
             "sales higher in quality improvement than quantity expansion (all > 0); CR4 and Gibrat reported",
        expected_sign=1, phase_mode="by", runner="P8"),
    Proposition(
        id="P9", title="management training",
        claim="Randomly offered management training raises the adoption of management practices and then "
              "value added.",
        requires=("rct_assignment.treatment", "enterprise_year.management_score"),
        outcome="management_score", regressors=("treated",), fixed_effects=("stratum_id", "cluster_id^year"),
        estimator="feols", vcov={"CRV1": "enterprise_id"},
        test="ITT on management score and on log value added (> 0); TOT by 2SLS and wild bootstrap reported",
        expected_sign=1, phase_mode="by", runner="P9", options={"va_lag": 2, "bootstrap": 999}),
)


def register_builtin() -> None:
    """(Re-)register P1-P9 (overwriting user changes of the same ids)."""
    for p in BUILTIN:
        register(p, overwrite=True)
