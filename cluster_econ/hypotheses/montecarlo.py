"""Monte Carlo of the propositions on simulated universes: the machinery behind the falsification
matrix (:mod:`cluster_econ.hypotheses.falsification`) and the power calculator
(:mod:`cluster_econ.hypotheses.calculator`).

A *task* is one universe (the full model, or the model with some mechanisms switched off by
:class:`cluster_econ.simulate.Switches`) at one replication. Replication ``r`` simulates with seed
``seed + r`` in every universe (common random numbers: universes of one replication start from
the same draws), tests the propositions with the default options a user gets (true phases from
``cluster_year.phase``, estimated productivity) and records, per proposition, the verdict, its
p-value, the first verdict check's estimate and standard error, every verdict check's estimate
(``checks``, JSON) and the verdict's reported power.
The *rejection* is ``verdict == "supported"``; a rate ``k / R`` has the binomial Monte Carlo
standard error ``sqrt(rate (1 - rate) / R)``.

Tasks run on local processes (:func:`parallel_map`, the one place that decides how), each with
one BLAS thread, so results are identical whatever the number of workers: a task's result depends
only on its universe, seed and design.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

__all__ = ["Design", "MonteCarlo", "Task", "parallel_map", "rejection_rate", "run_task"]

FULL_MODEL = "full model"


@dataclass(frozen=True)
class Design:
    """How a universe is made.

    Attributes
    ----------
    config : SimulationConfig
        The simulator configuration (switches are applied per universe on top of it).
    n_firms : int, optional
        Scale the clusters' markets so that about this many firms are ever founded.
    survey : object, optional
        A survey design with ``apply(simulation, seed) -> Panel`` (the power calculator's window
        and sample, :class:`cluster_econ.hypotheses.calculator.SurveyDesign`); ``None`` keeps
        the whole simulated panel.
    label : str
        A name for reports.
    """

    config: Any
    n_firms: int | None = None
    survey: Any = None
    label: str = "demo"


@dataclass(frozen=True)
class Task:
    """One universe at one replication."""

    universe: str
    switches: tuple[str, ...]
    replication: int
    seed: int
    design: Design
    propositions: tuple[str, ...]
    options: dict[str, Any] = field(default_factory=dict)


def universe_panel(design: Design, switches: Sequence[str], seed: int) -> Any:
    """The panel of one universe: simulate (switches on), then apply the survey design if any."""
    from cluster_econ.simulate import simulate

    cfg = design.config.with_switches(**dict.fromkeys(switches, True)) if switches else design.config
    sim = simulate(cfg, seed=seed, n_firms=design.n_firms, truth=False)
    return design.survey.apply(sim, seed) if design.survey is not None else sim.panel


def run_task(task: Task) -> list[dict[str, Any]]:
    """Simulate a task's universe and test its propositions; one row per proposition."""
    from cluster_econ import hypotheses as hyp
    from cluster_econ.hypotheses import _needs_productivity
    from cluster_econ.hypotheses.data import build

    base = {"universe": task.universe, "replication": task.replication, "seed": task.seed}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        panel = universe_panel(task.design, task.switches, task.seed)
        specs = [hyp.get(p) for p in task.propositions]
        data = build(panel, with_productivity=any(_needs_productivity(s) for s in specs),
                     productivity_method=task.options.get("productivity"),
                     cluster_aggregates=any(s.runner_name == "P8" for s in specs))
        fam = hyp.test_all(panel, ids=list(task.propositions), data=data)
    rows = []
    for r in fam:
        checks = {}
        if len(r.checks):
            v = r.checks[r.checks["role"] == "verdict"]
            checks = {str(k): round(float(e), 10) for k, e in zip(v["check"], v["estimate"], strict=True)}
        rows.append({**base, "proposition": r.id, "verdict": r.verdict, "supported": r.verdict == "supported",
                     "p_value": r.p_value, "estimate": r.contrast.get("estimate", math.nan),
                     "std_error": r.contrast.get("se", math.nan), "power": r.power,
                     "checks": json.dumps(checks, sort_keys=True),
                     "message": r.message if r.verdict in ("error", "cannot test") else ""})
    return rows


def parallel_map(fn: Callable[[Any], Any], items: Iterable[Any], workers: int | None = None,
                 progress: str | None = None) -> list[Any]:
    """``[fn(x) for x in items]`` on ``workers`` local processes (``None``: one per core), in the
    order of ``items``, through the package's one parallel map (:func:`cluster_econ.parallel.map_tasks`):
    every task runs with one BLAS thread, so the results do not depend on ``workers``.
    ``progress`` labels a progress bar."""
    from cluster_econ.parallel import map_tasks

    return map_tasks(fn, items, workers=workers, kind="processes", progress=bool(progress),
                     desc=progress or "tasks", blas_threads=1)


def run_tasks(tasks: Sequence[Task], workers: int | None = None, progress: str | None = None) -> pd.DataFrame:
    """Every task's rows, in task order."""
    rows = [row for chunk in parallel_map(run_task, tasks, workers, progress) for row in chunk]
    return pd.DataFrame(rows)


def binomial_se(rate: float, n: int) -> float:
    """Monte Carlo standard error of a rejection rate over ``n`` replications."""
    return math.sqrt(rate * (1 - rate) / n) if n else math.nan


@dataclass(frozen=True)
class MonteCarlo:
    """Rejection rate of a proposition over replications."""

    prop: str
    switches: dict[str, bool]
    replications: int
    rejections: int
    p_values: pd.Series
    estimates: pd.Series
    n_firms: int | None

    @property
    def rate(self) -> float:
        return self.rejections / self.replications if self.replications else float("nan")

    @property
    def mc_se(self) -> float:
        """Binomial Monte Carlo standard error of the rate."""
        return binomial_se(self.rate, self.replications)

    def __repr__(self) -> str:
        sw = ", ".join(k for k, v in self.switches.items() if v) or FULL_MODEL
        return (f"{self.prop} ({sw}): rejection rate {self.rate:.3f} (MC s.e. {self.mc_se:.3f}) over "
                f"{self.replications} replications")


def rejection_rate(prop: str = "P4", switches: dict[str, bool] | None = None, replications: int = 200,
                   seed: int = 1, n_firms: int | None = None, preset: str = "demo", progress: bool = False,
                   workers: int | None = 1, productivity: Any = None) -> MonteCarlo:
    """Share of simulated universes on which ``prop`` is found ``supported``.

    Parameters
    ----------
    prop : proposition id.
    switches : simulator switches to turn on (for example ``{"equal_schooling_slopes": True}``
        for the null of P4).
    replications, seed : replication ``r`` uses simulator seed ``seed + r``.
    n_firms : scale the universe to about this many firms ever founded (smaller is faster).
    preset : simulator preset.
    workers : processes (``None``: one per core).
    productivity : productivity method (``None``: the default, estimated).
    """
    from cluster_econ.simulate import preset as make_preset

    on = tuple(k for k, v in (switches or {}).items() if v)
    design = Design(make_preset(preset), n_firms=n_firms, label=preset)
    tasks = [Task(", ".join(on) or FULL_MODEL, on, r, seed + r, design, (prop,), {"productivity": productivity})
             for r in range(replications)]
    runs = run_tasks(tasks, workers, f"{prop} Monte Carlo" if progress else None)
    return MonteCarlo(prop, dict(switches or {}), replications, int(runs["supported"].sum()),
                      runs["p_value"].rename("p_value"), runs["estimate"].rename("estimate"), n_firms)
