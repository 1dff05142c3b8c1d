"""Configuration of the simulator: one typed dataclass tree with a default for every parameter.

The tree mirrors the mechanisms of the endogenous model of cluster-based industrial development
(Otsuka and Sonobe): phase timing, profit-driven entry, founders and spin-offs, schooling,
innovation, shake-out, production, institutions, a management-training experiment and survey
realism. Every mechanism has a switch in :class:`Switches` that turns it off, so that a test of a
proposition can be checked to fail when the mechanism behind it is absent.

Phases are keyed by the DGP *regime*: ``initiation``, ``quantity_expansion`` and
``quality_improvement``. Years labelled ``stagnation`` run under the ``quantity_expansion`` regime
(stagnation is quantity expansion that does not end).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

PHASES = ("initiation", "quantity_expansion", "quality_improvement", "stagnation")
REGIMES = ("initiation", "quantity_expansion", "quality_improvement")
ORIGINS = ("merchant", "engineer", "spinoff", "other")
INNOVATION_ITEMS = (
    "new_product", "new_process", "own_brand", "direct_sales", "long_term_subcontract",
    "vertical_integration", "export_share", "quality_certification",
)
#: switches that turn several mechanisms off at once (each maps to the switches it combines)
COMBINED_SWITCHES = {"flat_productivity": ("no_productivity_gain", "no_quality_upgrading")}
#: the items that are institutions (switched off together by ``no_institutional_change``)
INSTITUTION_ITEMS = ("long_term_subcontract", "vertical_integration", "own_brand", "direct_sales")


def regime_of(phase: str) -> str:
    """The DGP regime a labelled phase runs under (stagnation runs as quantity expansion)."""
    return "quantity_expansion" if phase == "stagnation" else phase


@dataclass(frozen=True)
class ClusterSpec:
    """One industrial cluster (a location x industry).

    Parameters
    ----------
    cluster_id, country, currency, industry_isic, product : str
        Identifier, ISO 3166-1 alpha-3 country, ISO 4217 currency, ISIC Rev. 4 code (2-4 digits)
        and the name of the cluster's main product.
    product_complexity : {"simple", "complex"}
        Complexity of the production method; decides who founds the industry.
    product_variants : tuple of str
        Product lines a firm can make (``enterprise.product``); spin-offs inherit their parent's.
    start_year, n_years : int
        First simulated year (the industry's first founders) and number of years simulated.
    initiation_years : int
        Length of the initiation phase.
    expansion_years : int or None
        Length of quantity expansion before quality improvement starts; ``None`` means the cluster
        never makes the transition (it stagnates).
    n_scale : float
        Size of the cluster's market: the number of typical firms at which the real price equals
        its reference level. The long-run number of firms is of this order.
    n_founders : int
        Founders in the first year.
    training : bool
        Whether a management-training experiment runs in the cluster (if it stagnates).
    """

    cluster_id: str
    country: str
    currency: str
    industry_isic: str
    product: str
    product_complexity: str
    product_variants: tuple[str, ...]
    start_year: int
    n_years: int = 30
    initiation_years: int = 5
    expansion_years: int | None = 12
    n_scale: float = 150.0
    n_founders: int = 4
    training: bool = False


@dataclass
class PhaseConfig:
    """Phase labelling.

    Parameters
    ----------
    stagnation_after : int
        A cluster whose quantity expansion has lasted this many years without transition is
        labelled ``stagnation`` from then on (year index ``initiation_years + stagnation_after``
        onward), while its DGP stays that of quantity expansion.
    """

    stagnation_after: int = 14


@dataclass
class EntryConfig:
    """Entry driven by profitability.

    Expected entrants in year t of a cluster past initiation::

        mu_t = (rate[regime] * N_{t-1} + outside_rate[regime] * n_scale)
               * exp(margin_semi_elasticity * (margin_{t-1} - margin_ref))

    where ``margin`` is the cluster's price-cost margin (sales minus material, energy and labour
    cost, over sales) and ``N`` the number of operating firms; entrants ~ Poisson(mu_t), capped at
    ``max_growth * N_{t-1} + 0.2 * n_scale``. During initiation, entrants ~ Poisson(founder_rate).
    With the switch ``no_entry_response`` the exponential term is replaced by the constant
    ``unresponsive_multiplier`` (about its average over the demo clusters' expansion), so that
    clusters without the response reach a similar size and the switch changes how entry responds,
    not how many firms a survey sees.
    """

    founder_rate: float = 2.0
    rate: dict[str, float] = field(default_factory=lambda: {
        "quantity_expansion": 0.045, "quality_improvement": 0.02})
    outside_rate: dict[str, float] = field(default_factory=lambda: {
        "quantity_expansion": 0.012, "quality_improvement": 0.006})
    margin_semi_elasticity: float = 5.0
    margin_ref: float = 0.27
    max_growth: float = 0.8
    unresponsive_multiplier: float = 2.0


def _origin_defaults() -> dict[str, dict[str, dict[str, float]]]:
    return {
        "initiation": {
            "simple": {"merchant": 0.65, "engineer": 0.10, "spinoff": 0.0, "other": 0.25},
            "complex": {"merchant": 0.10, "engineer": 0.65, "spinoff": 0.0, "other": 0.25},
        },
        "quantity_expansion": {
            "simple": {"merchant": 0.08, "engineer": 0.05, "spinoff": 0.60, "other": 0.27},
            "complex": {"merchant": 0.05, "engineer": 0.08, "spinoff": 0.60, "other": 0.27},
        },
        "quality_improvement": {
            "simple": {"merchant": 0.15, "engineer": 0.20, "spinoff": 0.25, "other": 0.40},
            "complex": {"merchant": 0.10, "engineer": 0.30, "spinoff": 0.25, "other": 0.35},
        },
    }


@dataclass
class FounderConfig:
    """Who enters: founder origin by regime x product complexity, and spin-off imitation.

    ``origin_probs[regime][complexity][origin]`` sums to one. A spin-off's parent is an incumbent
    drawn with probability proportional to its employment. The spin-off's initial log
    productivity is ``mean + imitation_elasticity * (omega_parent - mean) + noise`` (noise variance
    chosen so that the entrant's variance equals the stationary one), and it makes its parent's
    product line with probability ``product_inherit_prob`` (otherwise a random line).
    """

    origin_probs: dict[str, dict[str, dict[str, float]]] = field(default_factory=_origin_defaults)
    imitation_elasticity: float = 0.7
    product_inherit_prob: float = 0.8


@dataclass
class SchoolingConfig:
    """Manager schooling (years, rounded to integers, clipped to [0, 22]).

    A founder entering in regime r with origin o has schooling ~ Normal(mean[r] + origin_shift[o],
    sd). Successors (generation 2, role ``successor``) take over from founders aged
    ``succession_age`` or more with probability ``succession_prob`` a year; their schooling ~
    Normal(successor_mean, successor_sd).
    """

    mean: dict[str, float] = field(default_factory=lambda: {
        "initiation": 8.0, "quantity_expansion": 10.5, "quality_improvement": 13.5})
    origin_shift: dict[str, float] = field(default_factory=lambda: {
        "merchant": -1.0, "engineer": 3.0, "spinoff": -1.0, "other": 0.0})
    sd: float = 2.8
    successor_mean: float = 14.5
    successor_sd: float = 2.5
    succession_age: int = 55
    succession_prob: float = 0.15
    max_years: float = 22.0


def _intercepts() -> dict[str, dict[str, float]]:
    # logit index at schooling_center years of schooling, by regime
    return {
        "new_product": {"initiation": -2.2, "quantity_expansion": -2.4, "quality_improvement": -0.6},
        "new_process": {"initiation": -2.6, "quantity_expansion": -2.8, "quality_improvement": -0.9},
        "own_brand": {"initiation": -3.0, "quantity_expansion": -3.2, "quality_improvement": -1.1},
        "direct_sales": {"initiation": -1.8, "quantity_expansion": -2.2, "quality_improvement": -0.7},
        "long_term_subcontract": {"initiation": -3.2, "quantity_expansion": -2.8,
                                  "quality_improvement": -0.8},
        "vertical_integration": {"initiation": -3.5, "quantity_expansion": -3.5,
                                 "quality_improvement": -1.4},
        "export_share": {"initiation": -3.5, "quantity_expansion": -3.0, "quality_improvement": -1.2},
        "quality_certification": {"initiation": -5.0, "quantity_expansion": -4.5,
                                  "quality_improvement": -1.6},
    }


def _slopes() -> dict[str, dict[str, float]]:
    # logit slope per year of schooling, by regime (quality improvement > quantity expansion)
    return {
        "new_product": {"initiation": 0.10, "quantity_expansion": 0.10, "quality_improvement": 0.35},
        "new_process": {"initiation": 0.08, "quantity_expansion": 0.08, "quality_improvement": 0.30},
        "own_brand": {"initiation": 0.05, "quantity_expansion": 0.05, "quality_improvement": 0.30},
        "direct_sales": {"initiation": 0.05, "quantity_expansion": 0.05, "quality_improvement": 0.25},
        "long_term_subcontract": {"initiation": 0.05, "quantity_expansion": 0.05,
                                  "quality_improvement": 0.25},
        "vertical_integration": {"initiation": 0.03, "quantity_expansion": 0.03,
                                 "quality_improvement": 0.20},
        "export_share": {"initiation": 0.05, "quantity_expansion": 0.08, "quality_improvement": 0.30},
        "quality_certification": {"initiation": 0.05, "quantity_expansion": 0.05,
                                  "quality_improvement": 0.30},
    }


@dataclass
class InnovationConfig:
    """Innovation items: P(item = 1) = logistic(intercept[item][regime] + slope[item][regime] *
    (schooling - schooling_center)), independently across items given the current manager's
    schooling. For ``export_share`` the item is "exports directly" (export_share > 0); the share
    itself is 100 x Beta(2, 3) among exporters. A firm is an *innovator* in a year if it has
    ``new_product`` or ``new_process`` that year.

    ``operating_schooling`` is the typical schooling of the managers operating in each regime
    (about the demo universe's average, logit curvature included): when a switch changes a
    schooling slope (``equal_schooling_slopes``, ``no_schooling_returns``,
    ``no_institutional_change``) the intercept moves by ``(old slope - new slope) *
    (operating_schooling - schooling_center)``, so that the share of firms with the item stays
    about the same and the switch removes the gradient, not the item.
    """

    intercept: dict[str, dict[str, float]] = field(default_factory=_intercepts)
    slope: dict[str, dict[str, float]] = field(default_factory=_slopes)
    schooling_center: float = 10.0
    operating_schooling: dict[str, float] = field(default_factory=lambda: {
        "initiation": 8.7, "quantity_expansion": 10.1, "quality_improvement": 11.75})


@dataclass
class ExitConfig:
    """Exit hazard, discrete-time complementary log-log (so exp(coefficient) is a hazard ratio)::

        P(exit in t) = 1 - exp(-exp(baseline[regime] + innovator_effect[regime] * innovator_t
                                    + size_effect * (log L_t - log typical_employment)))
    """

    baseline: dict[str, float] = field(default_factory=lambda: {
        "initiation": -3.4, "quantity_expansion": -3.0, "quality_improvement": -2.0})
    innovator_effect: dict[str, float] = field(default_factory=lambda: {
        "initiation": 0.0, "quantity_expansion": -0.2, "quality_improvement": -1.2})
    size_effect: float = -0.3


@dataclass
class ProductionConfig:
    """Production, productivity, inputs and prices (real units; 1 = one worker's annual wage).

    Real value added: ``V = exp(beta_l * l + beta_k * k + omega + training + eps)``, eps ~
    N(0, sigma_eps), l and k logs of employment and capital. Productivity is a first-order Markov
    (AR(1)) process controlled by innovation::

        omega_t = rho * omega_{t-1} + (1 - rho) * omega_bar + innovation_gain[regime] * innovator_{t-1}
                  + xi_t,   xi ~ N(0, sigma_xi)

    Labour is set at the start of the year from productivity, capital and last year's price
    (``l = log typical_employment + labour_omega * (omega - omega_bar) + labour_capital *
    (k - log typical_capital) + labour_price * log P_{t-1} + s + nu``, nu ~ N(0,
    labour_shock_sd)), where the firm's scale s grows by ``innovator_growth[regime]`` in each year
    it innovates (successful innovators become large firms in quality improvement),
    so labour responds to omega (the reason OLS is biased) without being a deterministic function
    of (omega, k). Materials (Leontief in planned output): ``material_ratio * exp(beta_l l + beta_k
    k + omega)``, a strictly increasing function of omega given (l, k): the Levinsohn-Petrin /
    ACF proxy. Investment: ``I = K * exp(invest_const + invest_omega * (omega - omega_bar))``
    (zero with probability ``zero_investment_prob``; strictly increasing in omega otherwise: the
    Olley-Pakes proxy); ``K_{t+1} = (1 - depreciation) K_t + I_t``.

    Price of value added: ``log P_t = -(1 / demand_elasticity) * log((Q_t + demand_choke * Q_ref)
    / Q_ref) + quality_t``, Q_t = cluster output, Q_ref = n_scale typical firms' output (the
    choke term bounds the price while a cluster has only a handful of firms); in quality improvement
    ``quality_t = quality_{t-1} + quality_gain * innovator share_{t-1}``. Sales = P V + materials +
    energy. With the switch ``no_price_response`` the price is ``unresponsive_price * exp(quality_t)``:
    a level at which the price-cost margin is about the full model's average over expansion, so
    that entry, and the size of the clusters, stay about the same.
    """

    beta_l: float = 0.6
    beta_k: float = 0.3
    rho: float = 0.8
    sigma_xi: float = 0.12
    sigma_eps: float = 0.1
    innovation_gain: dict[str, float] = field(default_factory=lambda: {
        "initiation": 0.0, "quantity_expansion": 0.0, "quality_improvement": 0.06})
    innovator_growth: dict[str, float] = field(default_factory=lambda: {
        "initiation": 0.0, "quantity_expansion": 0.0, "quality_improvement": 0.15})
    typical_employment: float = 10.0
    typical_capital: float = 30.0
    labour_omega: float = 1.2
    labour_capital: float = 0.3
    labour_price: float = 0.4
    labour_shock_sd: float = 0.2
    material_ratio: float = 0.8
    energy_ratio: float = 0.05
    depreciation: float = 0.08
    invest_const: float = -2.5
    invest_omega: float = 1.5
    zero_investment_prob: float = 0.1
    entrant_capital_sd: float = 0.5
    demand_elasticity: float = 2.0
    demand_choke: float = 0.1
    quality_gain: float = 0.05
    unresponsive_price: float = 1.5


@dataclass
class InstitutionsConfig:
    """Share of parts bought in anonymous markets (percent) by regime, lower for firms with
    long-term subcontracts or vertical integration; indirect exports through merchants."""

    parts_market_mean: dict[str, float] = field(default_factory=lambda: {
        "initiation": 20.0, "quantity_expansion": 72.0, "quality_improvement": 55.0})
    parts_market_sd: float = 12.0
    parts_linked_shift: float = -25.0
    indirect_export_prob: dict[str, float] = field(default_factory=lambda: {
        "initiation": 0.02, "quantity_expansion": 0.10, "quality_improvement": 0.08})


@dataclass
class TrainingConfig:
    """Randomized management-training experiment in stagnant clusters with ``training=True``.

    In year ``stagnation start + years_after_stagnation`` all firms operating in the cluster
    (recruited from a listing, so later survey attrition does not decide who is in it) are
    stratified into ``n_strata`` employment quantile groups and within each
    stratum ``share_treated`` are assigned to training (complete randomization). A treated firm
    attends with probability ``takeup``; attendees attend a share ~ Beta(attendance_a,
    attendance_b) of sessions. From the next year on, the management score rises by
    ``management_effect * attendance_share``; from ``va_lag`` years after assignment, log value
    added rises by ``va_effect`` per unit of that management gain. Controls cannot attend.
    """

    enabled: bool = True
    years_after_stagnation: int = 2
    share_treated: float = 0.5
    n_strata: int = 3
    takeup: float = 0.75
    attendance_a: float = 6.0
    attendance_b: float = 2.0
    management_effect: float = 0.2
    va_effect: float = 1.0
    va_lag: int = 2


@dataclass
class SurveyConfig:
    """Survey realism.

    Rounds every ``round_interval`` years (and in the last year); years between rounds are
    recalled at the next round (``recall=True``). Measurement error is multiplicative lognormal
    (sd ``measurement_sd``, ``recall_measurement_sd`` in recall years); values are missing
    completely at random at ``missing_rate`` (``recall_missing_rate`` in recall years; the
    management score is collected in round years only). Firms attrit (stop being observed, with
    no exit recorded) at ``attrition_rate`` a year; founder origin is ``unknown`` at
    ``unknown_origin_rate`` and a spin-off's parent is unrecorded at ``unknown_parent_rate``.
    Money is rounded to 3 significant digits, percentages to integers, employment to whole
    workers. ``enabled=False`` gives exact data: no error, no missing values, no attrition.
    """

    enabled: bool = True
    round_interval: int = 3
    measurement_sd: float = 0.05
    recall_measurement_sd: float = 0.12
    missing_rate: float = 0.02
    recall_missing_rate: float = 0.06
    attrition_rate: float = 0.015
    unknown_origin_rate: float = 0.02
    unknown_parent_rate: float = 0.05
    rounding: bool = True


@dataclass
class Switches:
    """Turn mechanisms off (all False = the full model).

    equal_schooling_slopes
        Schooling slopes of innovation in quality improvement equal those in quantity expansion
        (intercepts moved so the share of innovators stays about the same, see
        :class:`InnovationConfig`). The mechanism behind P4.
    no_shakeout
        The exit hazard in quality improvement equals that in quantity expansion (baseline and
        innovator effect). The mechanism behind P6.
    no_spinoff_imitation
        Spin-offs neither inherit their parent's productivity (imitation elasticity 0) nor its
        product line. One of the two mechanisms behind P2.
    no_spinoff_wave
        Spin-offs are no more frequent among entrants in quantity expansion than other origins
        (their share is cut to 0.1). The other mechanism behind P2.
    no_founder_pattern
        Initiation founders have the same origin mix for simple and complex products. The
        mechanism behind P1.
    no_productivity_gain
        Innovation raises no productivity in quality improvement (innovation gain 0): the
        productivity gain behind P3 and P7, alone (prices still move with quality).
    no_quality_upgrading
        Innovators do not raise the quality of the cluster's product in quality improvement, so
        the real price no longer rises with the innovator share.
    flat_productivity
        ``no_productivity_gain`` and ``no_quality_upgrading`` together: productivity a plain
        AR(1) and prices moved by output only (the universe the production-function tests use).
        A combination, not a mechanism of its own: the falsification matrix leaves it out
        (:data:`COMBINED_SWITCHES`).
    no_entry_response
        Entry does not respond to the price-cost margin (it runs at a constant multiplier,
        ``EntryConfig.unresponsive_multiplier``, so the clusters keep about their size).
    no_price_response
        The real price does not fall with cluster output (the price response behind P3).
    no_schooling_shift
        Entrants' schooling has the same mean in every phase and successors the same as founders.
    no_schooling_returns
        Schooling does not change the chance of any innovation item in any phase (every schooling
        slope is zero, intercepts moved so the share of innovators stays about the same), so it
        raises neither productivity nor growth: the schooling-performance gradient behind P5 is
        absent (and P4's slopes are equal too).
    no_training_effect
        The training experiment runs, but neither management nor value added responds. The
        mechanism behind P9.
    no_large_firms
        Innovators do not grow faster than other firms (no rise in concentration).
    no_institutional_change
        Institutions do not change with the phase: the share of parts bought in the market has its
        quantity-expansion mean in every phase (and no shift for linked firms), and the
        institution items (long-term subcontracts, vertical integration, own brands, direct
        sales) follow their quantity-expansion equation without a schooling gradient in every
        phase. The mechanism behind P8.
    """

    equal_schooling_slopes: bool = False
    no_shakeout: bool = False
    no_spinoff_imitation: bool = False
    no_spinoff_wave: bool = False
    no_founder_pattern: bool = False
    no_productivity_gain: bool = False
    no_quality_upgrading: bool = False
    flat_productivity: bool = False
    no_entry_response: bool = False
    no_price_response: bool = False
    no_schooling_shift: bool = False
    no_schooling_returns: bool = False
    no_training_effect: bool = False
    no_large_firms: bool = False
    no_institutional_change: bool = False


@dataclass
class SimulationConfig:
    """Everything the simulator needs. ``clusters`` is the list of clusters (by default the
    twelve clusters of the demo universe); the rest are the mechanism blocks, each documented in
    its own class."""

    clusters: tuple[ClusterSpec, ...] = field(default_factory=lambda: _default_clusters())
    label: str = "cluster_econ simulated panel (SYNTHETIC)"
    price_base_year: int = 2000
    phases: PhaseConfig = field(default_factory=PhaseConfig)
    entry: EntryConfig = field(default_factory=EntryConfig)
    founders: FounderConfig = field(default_factory=FounderConfig)
    schooling: SchoolingConfig = field(default_factory=SchoolingConfig)
    innovation: InnovationConfig = field(default_factory=InnovationConfig)
    exit: ExitConfig = field(default_factory=ExitConfig)
    production: ProductionConfig = field(default_factory=ProductionConfig)
    institutions: InstitutionsConfig = field(default_factory=InstitutionsConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    survey: SurveyConfig = field(default_factory=SurveyConfig)
    switches: Switches = field(default_factory=Switches)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (JSON-serialisable) of the configuration."""
        return _plain(dataclasses.asdict(self))

    def with_switches(self, **flags: bool) -> SimulationConfig:
        """A copy with some switches set, for example ``cfg.with_switches(no_shakeout=True)``."""
        unknown = set(flags) - {f.name for f in dataclasses.fields(Switches)}
        if unknown:
            raise ValueError(f"unknown switches {sorted(unknown)}; the switches are "
                             f"{', '.join(f.name for f in dataclasses.fields(Switches))}")
        return dataclasses.replace(self, switches=dataclasses.replace(self.switches, **flags))


def _default_clusters() -> tuple[ClusterSpec, ...]:
    from cluster_econ.simulate.presets import demo_clusters

    return demo_clusters()


def _plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    return obj
