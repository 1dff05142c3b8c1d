"""The endogenous model of cluster-based industrial development as a data-generating process.

``simulate()`` returns a :class:`Simulation` whose ``panel`` is a canonical
:class:`~cluster_econ.panel.Panel` (all tables of ``data_schemas/``, flagged synthetic) and whose
``truth`` holds the true values of what each proposition tests (phase timing, schooling slopes of
innovation, exit hazard ratios, spin-off shares, imitation elasticity, production elasticities,
training effects, ...). The model follows Otsuka and Sonobe, "Strategy for Cluster-based
Industrial Development in Developing Countries": per cluster, initiation by merchants (simple
products) or engineers (complex products); quantity expansion through profit-driven entry of
imitating spin-offs, with falling real prices and flat productivity; quality improvement through
innovation by educated managers, a shake-out of non-innovators and rising productivity and
concentration; or stagnation (expansion that never ends), where a randomized management-training
experiment can run. Each equation is documented in :mod:`cluster_econ.simulate.config`, where
:class:`Switches` turns each mechanism off.

Example
-------
>>> from cluster_econ.simulate import simulate
>>> sim = simulate(preset="small", seed=1)
>>> sim.panel.metadata["synthetic"]
True
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from cluster_econ.simulate.build import Truth, build_tables, build_truth
from cluster_econ.simulate.config import (
    INNOVATION_ITEMS,
    PHASES,
    ClusterSpec,
    EntryConfig,
    ExitConfig,
    FounderConfig,
    InnovationConfig,
    InstitutionsConfig,
    PhaseConfig,
    ProductionConfig,
    SchoolingConfig,
    SimulationConfig,
    SurveyConfig,
    Switches,
    TrainingConfig,
)
from cluster_econ.simulate.presets import COUNTRIES, PRESETS, preset

if TYPE_CHECKING:
    from cluster_econ.panel import Panel

__all__ = [
    "INNOVATION_ITEMS",
    "PHASES",
    "PRESETS",
    "ClusterSpec",
    "EntryConfig",
    "ExitConfig",
    "FounderConfig",
    "InnovationConfig",
    "InstitutionsConfig",
    "PhaseConfig",
    "ProductionConfig",
    "SchoolingConfig",
    "Simulation",
    "SimulationConfig",
    "SurveyConfig",
    "Switches",
    "TrainingConfig",
    "Truth",
    "preset",
    "simulate",
]

# firms ever founded by each preset at seed 0, used to scale to ``n_firms`` (measured once)
NOMINAL_FIRMS = {"demo": 5050.0, "small": 1390.0, "large": 111000.0}


@dataclass(frozen=True)
class Simulation:
    """A simulated panel and the truth behind it.

    Attributes
    ----------
    panel : Panel
        Canonical tables ``enterprise``, ``manager``, ``enterprise_year``, ``cluster_year``
        (cluster_id, year, the real price index and the TRUE phase), ``rct_assignment`` (if an
        experiment ran) and ``deflator``; ``metadata["synthetic"]`` is True.
        In ``manager``, ``manager_id`` "1" is the current manager (the successor, generation 2,
        where the survey saw a succession; the founder is then "2") and the extra column
        ``start_year`` is the year each manager took over. Monetary columns of
        ``enterprise_year`` are nominal local currency (deflate with ``deflator``).
    truth : Truth or None
        True parameters and true (error-free) series; see :class:`Truth` (``None`` when
        simulated with ``truth=False``).
    config : SimulationConfig
        The configuration simulated (after any ``n_firms`` scaling).
    seed : int
        Seed of the random streams.
    """

    panel: Panel
    truth: Truth | None
    config: SimulationConfig
    seed: int


def simulate(config: SimulationConfig | None = None, *, preset: str | None = None, seed: int = 0,
             n_firms: int | None = None, truth: bool = True) -> Simulation:
    """Simulate enterprise survey panels of industrial clusters.

    Parameters
    ----------
    config : SimulationConfig, optional
        Full configuration. If omitted, the named ``preset`` (default ``"demo"``) is used.
    preset : str, optional
        ``"demo"``, ``"small"`` or ``"large"``; ignored if ``config`` is given.
    seed : int
        Seed: the same configuration and seed give identical tables. Cluster i uses the streams
        ``SeedSequence([seed, i])`` (economy) and its sibling (survey layer).
    n_firms : int, optional
        Scale every cluster's market so that about this many firms are ever founded.
    truth : bool
        Build the :class:`Truth` (default). ``False`` skips it (``Simulation.truth`` is ``None``),
        for Monte Carlo runs that only test the panel.

    Returns
    -------
    Simulation
    """
    from cluster_econ.panel import Panel
    from cluster_econ.simulate import engine
    from cluster_econ.simulate.presets import scale_to_firms

    if config is not None and preset is not None:
        raise ValueError("give either config or preset, not both")
    name = preset or ("demo" if config is None else None)
    if config is None:
        config = _preset(name or "demo")
    if not config.clusters:
        raise ValueError("the configuration has no clusters")
    if n_firms is not None:
        config = scale_to_firms(config, int(n_firms), NOMINAL_FIRMS.get(name or "", _guess(config)))
    _check(config)
    eff = engine.effective(config)
    runs, srngs = [], []
    for i, spec in enumerate(config.clusters):
        econ_seq, survey_seq = np.random.SeedSequence([int(seed), i]).spawn(2)
        srng = np.random.default_rng(survey_seq)
        runs.append(engine.simulate_cluster(spec, config, eff, np.random.default_rng(econ_seq),
                                            srng, COUNTRIES[spec.country].female_share))
        srngs.append(srng)
    tables, helpers = build_tables(runs, config, eff, srngs)
    truth_ = build_truth(runs, helpers, config, eff) if truth else None
    metadata = {
        "synthetic": True, "label": config.label, "seed": int(seed), "preset": name,
        "simulator_config": config.to_dict(),
        "source": "cluster_econ.simulate (synthetic data, not a real survey)",
    }
    import pandas as pd

    audit = pd.DataFrame([
        {"source": "cluster_econ.simulate", "table": name, "step": step, "rows": len(df),
         "reason": reason}
        for name, df in tables.items()
        for step, reason in (("read", "simulated (synthetic)"), ("kept", ""))
    ])
    panel = Panel(tables=tables, audit=audit, metadata=metadata)
    return Simulation(panel=panel, truth=truth_, config=config, seed=int(seed))


def _preset(name: str) -> SimulationConfig:
    return preset(name)


def _guess(config: SimulationConfig) -> float:
    # about 1.25 firms ever founded per unit of market size over 30 years
    return max(1.0, sum(c.n_scale * 1.25 * c.n_years / 30 for c in config.clusters))


def _check(config: SimulationConfig) -> None:
    seen = set()
    for c in config.clusters:
        if c.cluster_id in seen:
            raise ValueError(f"duplicate cluster_id {c.cluster_id!r}")
        seen.add(c.cluster_id)
        if c.country not in COUNTRIES:
            raise ValueError(f"cluster {c.cluster_id}: no money settings for country {c.country!r}; "
                             f"known: {', '.join(COUNTRIES)}")
        if c.product_complexity not in ("simple", "complex"):
            raise ValueError(f"cluster {c.cluster_id}: product_complexity must be 'simple' or "
                             f"'complex', got {c.product_complexity!r}")
        if c.n_years < 1 or c.initiation_years < 1 or c.n_founders < 1 or c.n_scale <= 0:
            raise ValueError(f"cluster {c.cluster_id}: n_years, initiation_years, n_founders and "
                             "n_scale must be positive")
        if not c.product_variants:
            raise ValueError(f"cluster {c.cluster_id}: product_variants is empty")
    if config.survey.round_interval < 1:
        raise ValueError("survey.round_interval must be at least 1")
    _ = dataclasses.asdict(config.switches)
