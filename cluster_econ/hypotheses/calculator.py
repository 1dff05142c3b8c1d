"""Power calculator: what a survey of a given size can detect, by simulation.

>>> import cluster_econ as ce
>>> pa = ce.hypotheses.power(clusters=8, firms=150, years=6, propositions=["P4"])   # doctest: +SKIP
>>> pa.table()                                                                      # doctest: +SKIP

For a planned survey of ``clusters`` clusters, ``firms`` enterprises in total and ``years`` survey
years, :func:`power` simulates universes of that design and reports, per proposition, its
**power** (the share of replications in which it is found ``supported`` with every mechanism of
the model on) and its **size** (the same share with the proposition's own mechanism switched off,
for each of its switches), with binomial Monte Carlo standard errors, and the mean power the
verdicts themselves reported (see :mod:`cluster_econ.hypotheses.result`).

The design is built from the demo universe's mechanisms, scaled to the user's numbers. Held
fixed: every parameter of the demo's model (entry, founders, schooling, innovation, exit,
production, institutions, the training experiment) and its survey realism (rounds every three
years with recall, measurement error, missing values, attrition); the clusters' own size and
history (clusters are demo clusters; a survey *samples* firms from them). Chosen by the
calculator:

- **clusters**: taken from the demo's twelve in the order QI, QI, S, QI, QI, S, ... (QI: a cluster
  that reaches quality improvement; S: a stagnant one, the first three running the training
  experiment), so any number of clusters keeps about two thirds reaching quality improvement.
  Beyond twelve, the list repeats with new cluster ids (independent draws).
- **years**: each cluster is surveyed for ``years`` consecutive years, placed where a researcher
  studying the model would place them: centred on the transition to quality improvement;
  starting the year before the training is assigned in an experimental cluster; centred on the
  year expansion turns into stagnation otherwise. The clusters' phase history
  (``cluster_year``) is known for every year, as from a cluster's documented history, and
  founders' origin and year of establishment are recalled.
- **firms**: ``firms`` enterprises in total, shared equally among the clusters, drawn at random
  (without replacement) among the enterprises operating in the cluster during the survey window
  (a panel refreshed with entrants); all of a cluster's enterprises when it has fewer.

So the answer is the power of a survey timed to see the phases it compares; a survey that sees
only one phase cannot test a contrast between two (its verdict is "cannot test").
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from cluster_econ.errors import ConfigError
from cluster_econ.hypotheses.montecarlo import FULL_MODEL, Design, Task, binomial_se, run_tasks

__all__ = ["PowerAnalysis", "SurveyDesign", "power"]

# demo cluster order that keeps about two thirds reaching quality improvement for any count
_ORDER = (0, 1, 8, 2, 3, 9, 4, 5, 10, 6, 7, 11)


def design_clusters(n: int, years: int) -> tuple[Any, ...]:
    """``n`` demo clusters (interleaved, repeated with new ids beyond twelve), each simulated up to
    the end of its survey window."""
    from cluster_econ.simulate.presets import demo_clusters

    base = demo_clusters()
    out = []
    for i in range(n):
        spec = base[_ORDER[i % len(_ORDER)]]
        rep = i // len(_ORDER)
        if rep:
            spec = dataclasses.replace(spec, cluster_id=f"{spec.cluster_id}-{rep + 1}")
        start = window_start(spec, years)
        end = min(spec.n_years, start - spec.start_year + years)
        out.append(dataclasses.replace(spec, n_years=end))
    return tuple(out)


def window_start(spec: Any, years: int, stagnation_after: int = 14, years_after_stagnation: int = 2) -> int:
    """First surveyed year of a cluster (see the module docstring)."""
    if spec.expansion_years is not None:
        centre = spec.start_year + spec.initiation_years + spec.expansion_years
        first = centre - years // 2
    elif spec.training:
        first = spec.start_year + spec.initiation_years + stagnation_after + years_after_stagnation - 1
    else:
        first = spec.start_year + spec.initiation_years + stagnation_after - years // 2
    return int(min(max(first, spec.start_year), spec.start_year + spec.n_years - years))


@dataclass(frozen=True)
class SurveyDesign:
    """A survey of ``clusters`` clusters, ``firms`` enterprises in total, ``years`` years."""

    clusters: int
    firms: int
    years: int

    def __post_init__(self) -> None:
        for name in ("clusters", "firms", "years"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{name} must be a positive number, got {getattr(self, name)}")
        if self.firms < self.clusters:
            raise ConfigError(f"firms ({self.firms}) must be at least the number of clusters ({self.clusters})")
        if self.years > 30:
            raise ConfigError(f"years must be at most 30 (a cluster's simulated history), got {self.years}")

    def config(self) -> Any:
        """The simulator configuration of the design (demo parameters, the design's clusters)."""
        from cluster_econ.simulate.presets import demo

        cfg = demo()
        return dataclasses.replace(cfg, clusters=design_clusters(self.clusters, self.years),
                                   label=f"power design: {self.clusters} clusters, {self.firms} firms, "
                                         f"{self.years} years (SYNTHETIC)")

    def apply(self, sim: Any, seed: int) -> Any:
        """The surveyed panel: each cluster's window and a random sample of its enterprises."""
        from cluster_econ.panel import Panel

        p = sim.panel
        cfg = sim.config
        rng = np.random.default_rng([int(seed), 7919])
        ey = p.enterprise_year
        ent = p.enterprise
        # enterprises as integer codes (enterprise table order), rows by code: no string searches
        ent_ids = ent["enterprise_id"].astype(str).to_numpy()
        code_of = pd.Index(ent_ids)
        ey_code = code_of.get_indexer(ey["enterprise_id"].astype(str).to_numpy())
        ent_cluster = ent["cluster_id"].astype(str).to_numpy()
        year = pd.to_numeric(ey["year"]).to_numpy()
        chosen = np.zeros(len(ent_ids), dtype=bool)
        window = np.zeros(len(ey), dtype=bool)
        quota = np.full(self.clusters, self.firms // self.clusters)
        quota[: self.firms % self.clusters] += 1
        for i, spec in enumerate(cfg.clusters):
            first = window_start(spec, self.years, cfg.phases.stagnation_after, cfg.training.years_after_stagnation)
            in_window = (ent_cluster[ey_code] == spec.cluster_id) & (year >= first) & (year < first + self.years)
            window |= in_window
            codes = np.unique(ey_code[in_window])
            take = codes if len(codes) <= quota[i] else np.sort(rng.choice(codes, int(quota[i]), replace=False))
            chosen[take] = True
        keep_rows = window & chosen[ey_code]
        sample = pd.Index(ent_ids[chosen])

        def of(df: pd.DataFrame | None) -> pd.DataFrame | None:
            if df is None:
                return None
            return df[df["enterprise_id"].astype(str).isin(sample)].reset_index(drop=True)

        tables = {"enterprise": of(ent), "manager": of(p.manager),
                  "enterprise_year": ey[keep_rows].reset_index(drop=True),
                  "cluster_year": p.cluster_year, "deflator": p.deflator}
        rct = of(p.tables.get("rct_assignment"))
        if rct is not None and len(rct):
            tables["rct_assignment"] = rct
        return Panel(tables={k: v for k, v in tables.items() if v is not None},
                     metadata={**p.metadata, "survey_design": dataclasses.asdict(self)})


@dataclass(frozen=True)
class PowerAnalysis:
    """Power and size of propositions at a survey design, by simulation.

    ``runs`` holds every replication (as in the falsification matrix); :meth:`table` the summary.
    """

    design: SurveyDesign
    runs: pd.DataFrame
    propositions: tuple[str, ...]
    mechanisms: dict[str, tuple[str, ...]]
    replications: int
    seed: int

    def table(self) -> pd.DataFrame:
        """One row per proposition: ``power`` and its Monte Carlo s.e. (full model), ``size`` (the
        largest rate with one of its own mechanisms off) and its s.e., each own switch's rate,
        the mean power the verdicts reported, and the share of replications that could not be
        tested."""
        rows = []
        for prop in self.propositions:
            r = self.runs[self.runs["proposition"] == prop]
            full = r[r["universe"] == FULL_MODEL]
            n = len(full)
            pw = float(full["supported"].mean()) if n else math.nan
            row: dict[str, Any] = {"proposition": prop, "power": pw, "power_se": binomial_se(pw, n)}
            sizes = {}
            for sw in self.mechanisms[prop]:
                s = r[r["universe"] == sw]
                sizes[sw] = float(s["supported"].mean()) if len(s) else math.nan
            worst = max(sizes, key=lambda k: sizes[k]) if sizes else None
            row["size"] = sizes[worst] if worst else math.nan
            row["size_se"] = binomial_se(row["size"], self.replications) if worst else math.nan
            row["size_switch"] = worst or ""
            row["reported_power"] = float(full["power"].mean()) if n else math.nan
            row["cannot_test"] = float((full["verdict"] == "cannot test").mean()) if n else math.nan
            row["errors"] = int((r["verdict"] == "error").sum())
            for sw, v in sizes.items():
                row[f"size[{sw}]"] = v
            rows.append(row)
        return pd.DataFrame(rows)

    def summary(self) -> str:
        d = self.design
        lines = [f"power at {d.clusters} clusters, {d.firms} firms, {d.years} years "
                 f"({self.replications} replications, seeds {self.seed}-{self.seed + self.replications - 1}; "
                 "binomial Monte Carlo s.e. in parentheses)"]
        for _, r in self.table().iterrows():
            extra = f"; cannot test in {r['cannot_test']:.0%}" if r["cannot_test"] > 0 else ""
            lines.append(f"  {r['proposition']:4s} power {r['power']:.2f} ({r['power_se']:.2f}), size "
                         f"{r['size']:.2f} ({r['size_se']:.2f}) with {r['size_switch']} off; verdicts' "
                         f"reported power {r['reported_power']:.2f}{extra}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.summary()


def power(clusters: int = 8, firms: int = 150, years: int = 6, propositions: Sequence[str] | None = None,
          replications: int = 200, seed: int = 1, workers: int | None = None, progress: bool = False,
          productivity: Any = None) -> PowerAnalysis:
    """Power and size of the propositions for a survey of ``clusters`` clusters, ``firms``
    enterprises in total and ``years`` years (the design is described in the module docstring).

    Replication ``r`` simulates with seed ``seed + r``; ``workers`` local processes (default one
    per core) give identical results whatever their number.
    """
    from cluster_econ import hypotheses as hyp

    if replications < 1:
        raise ConfigError(f"replications must be at least 1, got {replications}")
    survey = SurveyDesign(int(clusters), int(firms), int(years))
    props = tuple(propositions) if propositions is not None else tuple(hyp.ids())
    specs = {p: hyp.get(p) for p in props}
    switches = list(dict.fromkeys(s for p in props for s in specs[p].mechanisms))
    design = Design(survey.config(), survey=survey, label=f"{clusters} clusters, {firms} firms, {years} years")
    universes = (FULL_MODEL, *switches)
    tasks = []
    for r in range(replications):
        for u in universes:
            # a universe runs only the propositions it informs: all in the full model, the
            # propositions whose own mechanism it switches off otherwise
            wanted = props if u == FULL_MODEL else tuple(p for p in props if u in specs[p].mechanisms)
            tasks.append(Task(u, () if u == FULL_MODEL else (u,), r, seed + r, design, wanted,
                              {"productivity": productivity}))
    runs = run_tasks(tasks, workers, "power" if progress else None)
    return PowerAnalysis(survey, runs, props, {p: tuple(specs[p].mechanisms) for p in props},
                         int(replications), int(seed))
