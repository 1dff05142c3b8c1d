"""The falsification matrix: every proposition on universes with each mechanism switched off in
turn, and on the full model, over many seeds.

>>> import cluster_econ as ce
>>> fm = ce.hypotheses.falsification(replications=20)     # doctest: +SKIP
>>> fm.cells()                                            # doctest: +SKIP
>>> fm.save("falsification")                              # doctest: +SKIP

A cell is a proposition in a universe; its value is the share of replications in which the
proposition was found ``supported`` (its rejection rate, with the binomial Monte Carlo s.e.).
Each cell has a role and a requirement:

- **full model**: the rate is the test's power at the design; required at least 0.8.
- **own mechanism off** (a switch in ``Proposition.mechanisms``): the claim is false, so the rate
  is the test's size; required at most ``alpha + 3 sqrt(alpha (1 - alpha) / R)`` (the nominal level
  plus three Monte Carlo standard errors at that level).
- **unrelated switch**: the claim still holds; the rate should not move from the full model's by
  more than three standard errors of a difference of two binomial rates,
  ``3 sqrt(2 p (1 - p) / R)`` with ``p`` the two rates' mean. When it must move (a switch that
  changes the sample, for example), the verdicts' reported power (column ``mean_power``) shows
  why.

The matrix is written as CSV, Markdown and HTML tables and as a heat map (deterministic PNG and
SVG); the seeds are ``seed, ..., seed + R - 1`` in every universe.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cluster_econ.errors import ConfigError
from cluster_econ.hypotheses.montecarlo import FULL_MODEL, Design, Task, binomial_se, run_tasks
from cluster_econ.tables._render import Cell, Layout, RenderedTable, Row

__all__ = ["FalsificationMatrix", "falsification", "switch_names"]

POWER_REQUIRED = 0.8
ROLES = ("full model", "own mechanism off", "unrelated switch")


def switch_names(combined: bool = False) -> list[str]:
    """The simulator's switches, in the order of :class:`cluster_econ.simulate.Switches`; each
    turns one mechanism off. ``combined=True`` adds the switches that combine several
    (``cluster_econ.simulate.config.COMBINED_SWITCHES``), which the matrix leaves out."""
    from cluster_econ.simulate import Switches
    from cluster_econ.simulate.config import COMBINED_SWITCHES

    return [f.name for f in dataclasses.fields(Switches) if combined or f.name not in COMBINED_SWITCHES]


def size_band(alpha: float, replications: int) -> float:
    """Largest rejection rate allowed with the proposition's own mechanism off."""
    return alpha + 3 * math.sqrt(alpha * (1 - alpha) / replications)


def _check_switches(names: Sequence[str]) -> None:
    known = switch_names(combined=True)
    bad = [s for s in names if s not in known]
    if bad:
        raise ConfigError(f"unknown simulator switch(es) {', '.join(bad)}; the switches are {', '.join(known)}")


class MatrixTable(RenderedTable):
    """A rendered matrix (every output format of :class:`~cluster_econ.tables._render.RenderedTable`)."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout


@dataclass(frozen=True)
class FalsificationMatrix:
    """Rejection rates of propositions (rows) in universes (columns), with every run behind them.

    Attributes
    ----------
    runs : DataFrame
        One row per universe x replication x proposition: ``universe, replication, seed,
        proposition, verdict, supported, p_value, estimate, std_error, power, message``.
    propositions, universes : tuple of str
        Row and column order (``universes[0]`` is the full model).
    mechanisms : dict
        Each proposition's own switches.
    alphas : dict
        Each proposition's level.
    replications, seed : int
        Replication ``r`` used simulator seed ``seed + r`` in every universe.
    design : str
        What was simulated.
    """

    runs: pd.DataFrame
    propositions: tuple[str, ...]
    universes: tuple[str, ...]
    mechanisms: dict[str, tuple[str, ...]]
    alphas: dict[str, float]
    replications: int
    seed: int
    design: str

    def role(self, prop: str, universe: str) -> str:
        if universe == FULL_MODEL:
            return "full model"
        return "own mechanism off" if universe in self.mechanisms.get(prop, ()) else "unrelated switch"

    def cells(self) -> pd.DataFrame:
        """One row per proposition x universe: rate, Monte Carlo s.e., role, requirement and
        whether it is met, the verdicts' mean reported power, counts of errors and of "cannot
        test"."""
        g = self.runs.groupby(["proposition", "universe"], sort=False)
        agg = pd.DataFrame({
            "replications": g.size(), "supported": g["supported"].sum(),
            "errors": g["verdict"].agg(lambda v: int((v == "error").sum())),
            "cannot_test": g["verdict"].agg(lambda v: int((v == "cannot test").sum())),
            "mean_power": g["power"].mean(),
        })
        rows = []
        for prop in self.propositions:
            full = agg.loc[(prop, FULL_MODEL)] if (prop, FULL_MODEL) in agg.index else None
            full_rate = full["supported"] / full["replications"] if full is not None else math.nan
            for uni in self.universes:
                if (prop, uni) not in agg.index:
                    continue
                a = agg.loc[(prop, uni)]
                n = int(a["replications"])
                rate = float(a["supported"]) / n
                role = self.role(prop, uni)
                alpha = self.alphas[prop]
                if role == "full model":
                    requirement, meets = f"rate >= {POWER_REQUIRED:g}", rate >= POWER_REQUIRED
                elif role == "own mechanism off":
                    band = size_band(alpha, n)
                    requirement, meets = f"rate <= {band:.3f}", rate <= band + 1e-12
                else:
                    pbar = (rate + full_rate) / 2
                    band = 3 * math.sqrt(2 * pbar * (1 - pbar) / n)
                    requirement = f"|rate - {full_rate:.2f}| <= {band:.3f}"
                    meets = abs(rate - full_rate) <= band + 1e-12
                rows.append({"proposition": prop, "universe": uni, "role": role, "replications": n,
                             "supported": int(a["supported"]), "rate": rate, "mc_se": binomial_se(rate, n),
                             "mean_power": float(a["mean_power"]), "errors": int(a["errors"]),
                             "cannot_test": int(a["cannot_test"]), "requirement": requirement,
                             "meets": bool(meets) and int(a["errors"]) == 0})
        return pd.DataFrame(rows)

    def reference_effects(self) -> dict[str, dict[str, float]]:
        """Mean of each verdict check's estimate over the full model's replications: the effects
        the design implies (what ``Proposition.reference_effects`` holds for the demo design)."""
        full = self.runs[self.runs["universe"] == FULL_MODEL]
        out: dict[str, dict[str, float]] = {}
        for prop, g in full.groupby("proposition", sort=False):
            est = pd.DataFrame([json.loads(c) for c in g["checks"]])
            out[str(prop)] = {str(k): float(v) for k, v in est.mean().items()}
        return out

    def rates(self) -> pd.DataFrame:
        """The matrix of rejection rates (propositions x universes)."""
        c = self.cells()
        return c.pivot(index="proposition", columns="universe", values="rate").reindex(
            index=list(self.propositions), columns=list(self.universes))

    def misses(self) -> pd.DataFrame:
        """The cells that miss their requirement."""
        c = self.cells()
        return c[~c["meets"]].reset_index(drop=True)

    # -- tables -----------------------------------------------------------------------------
    def table(self) -> RenderedTable:
        """The matrix as a table (``.to_markdown()``, ``.to_html()``, ``.to_csv()``, ``.save(path)``):
        each cell shows ``rate (s.e.)``; ``*`` marks the proposition's own mechanism off and ``!``
        a cell that misses its requirement."""
        c = self.cells().set_index(["proposition", "universe"])
        rows = []
        for prop in self.propositions:
            cells = []
            for uni in self.universes:
                if (prop, uni) not in c.index:
                    cells.append(Cell(""))
                    continue
                x = c.loc[(prop, uni)]
                mark = ("*" if x["role"] == "own mechanism off" else "") + ("" if x["meets"] else "!")
                cells.append(Cell(f"{x['rate']:.2f} ({x['mc_se']:.2f}){mark}", float(x["rate"])))
            rows.append(Row(prop, tuple(cells)))
        notes = (
            f"Share of {self.replications} replications (simulator seeds {self.seed} to "
            f"{self.seed + self.replications - 1}, {self.design}) in which the proposition is supported; "
            "binomial Monte Carlo standard error in parentheses.",
            f"* the proposition's own mechanism is off: required at most the nominal level plus 3 Monte Carlo "
            f"s.e. ({size_band(0.05, self.replications):.3f} at 5%). Full model: required at least "
            f"{POWER_REQUIRED:g}. Other switches: within 3 s.e. of a difference from the full model.",
            "! the cell misses its requirement.",
        )
        layout = Layout(ncols=len(self.universes), headers=(tuple(self.universes),), sections=(tuple(rows),),
                        stub="proposition", notes=notes, title="Falsification matrix: share of replications "
                        "in which each proposition is supported")
        return MatrixTable(layout)

    # -- figure -----------------------------------------------------------------------------
    def figure(self, path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None = None) -> Any:
        """Heat map of the rejection rates (own-mechanism cells framed, misses marked with ``!``);
        written to ``path`` (``.png``/``.svg``, deterministic bytes) when given. Returns the Figure."""
        from matplotlib.patches import Rectangle

        from cluster_econ.figures.style import new_figure, save, style

        rates = self.rates()
        c = self.cells().set_index(["proposition", "universe"])
        nr, nc = rates.shape
        with style():
            fig, axes = new_figure(height=1.2 + 0.32 * nr + 0.08 * max(len(u) for u in self.universes))
            ax = axes[0][0]
            ax.grid(False)
            im = ax.imshow(rates.to_numpy(dtype=float), cmap="Blues", vmin=0.0, vmax=1.0, aspect="auto")
            for i, prop in enumerate(rates.index):
                for j, uni in enumerate(rates.columns):
                    v = rates.iat[i, j]
                    if not np.isfinite(v):
                        continue
                    x = c.loc[(prop, uni)]
                    text = ("1" if v == 1 else "0" if v == 0 else f"{v:.2f}".lstrip("0")) + ("" if x["meets"] else "!")
                    ax.text(j, i, text, ha="center", va="center", fontsize=6.5,
                            color="white" if v > 0.6 else "black", fontweight="bold" if not x["meets"] else "normal")
                    if x["role"] == "own mechanism off":
                        ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="#d55e00", lw=1.6))
            ax.set_xticks(range(nc), [u.replace("_", " ") for u in rates.columns], rotation=45, ha="right",
                          rotation_mode="anchor", fontsize=7)
            ax.set_yticks(range(nr), list(rates.index), fontsize=8)
            ax.tick_params(length=0)
            for side in ("top", "right", "left", "bottom"):
                ax.spines[side].set_visible(False)
            ax.set_title(f"Share of {self.replications} replications supported (framed: own mechanism off; "
                         "! misses its band)", fontsize=8.5)
            fig.colorbar(im, ax=ax, fraction=0.025, pad=0.01)
        save(fig, path)
        return fig

    # -- files ------------------------------------------------------------------------------
    def save(self, directory: str | os.PathLike[str], stem: str = "falsification") -> list[Path]:
        """Write the matrix (``.md``, ``.html``, ``.csv``), the cells and the runs (CSV), the heat map
        (``.png``, ``.svg``) and ``<stem>.json`` (design, seeds, replications) into ``directory``."""
        from cluster_econ.io.atomic import atomic_write, atomic_write_csv

        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        tab = self.table()
        written = [tab.save(out / f"{stem}.md"), tab.save(out / f"{stem}.html"), tab.save(out / f"{stem}.csv")]
        written.append(atomic_write_csv(self.cells(), out / f"{stem}_cells.csv", index=False, lineterminator="\n",
                                        float_format="%.6g"))
        written.append(atomic_write_csv(self.runs, out / f"{stem}_runs.csv", index=False, lineterminator="\n",
                                        float_format="%.6g"))
        figures = [out / f"{stem}.png", out / f"{stem}.svg"]
        self.figure(figures)
        written += figures
        meta = {"design": self.design, "replications": self.replications,
                "seeds": list(range(self.seed, self.seed + self.replications)),
                "propositions": list(self.propositions), "universes": list(self.universes),
                "mechanisms": {k: list(v) for k, v in self.mechanisms.items()}}
        written.append(atomic_write(out / f"{stem}.json", json.dumps(meta, indent=2) + "\n"))
        return written

    def __repr__(self) -> str:
        return self.table().to_markdown()


def falsification(replications: int = 20, seed: int = 1, workers: int | None = None,
                  propositions: Sequence[str] | None = None, switches: Sequence[str] | None = None,
                  preset: str = "demo", n_firms: int | None = None, progress: bool = False,
                  productivity: Any = None) -> FalsificationMatrix:
    """Run the falsification matrix.

    Parameters
    ----------
    replications : int
        Seeds per universe (``R``).
    seed : int
        Replication ``r`` simulates with seed ``seed + r`` in every universe.
    workers : int, optional
        Local processes (default: one per core); the results do not depend on it.
    propositions : sequence of str, optional
        Proposition ids (default: every registered one).
    switches : sequence of str, optional
        Switches to turn on one at a time (default: every switch of the simulator that turns one
        mechanism off).
    preset : str
        Simulator preset (``"demo"``: the demo design).
    n_firms : int, optional
        Scale the universes to about this many firms ever founded.
    productivity : optional
        Productivity method (default: estimated, as for a user).

    Returns
    -------
    FalsificationMatrix
    """
    from cluster_econ import hypotheses as hyp
    from cluster_econ.simulate import preset as make_preset

    if replications < 1:
        raise ConfigError(f"replications must be at least 1, got {replications}")
    props = tuple(propositions) if propositions is not None else tuple(hyp.ids())
    specs = {p: hyp.get(p) for p in props}
    sw = list(switches) if switches is not None else switch_names()
    _check_switches(sw)
    for s in specs.values():
        _check_switches(s.mechanisms)
    try:
        config = make_preset(preset)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    design = Design(config, n_firms=n_firms, label=preset)
    label = f"the {preset} design" + (f" scaled to about {n_firms} firms" if n_firms else "")
    universes = (FULL_MODEL, *sw)
    tasks = [Task(u, () if u == FULL_MODEL else (u,), r, seed + r, design, props, {"productivity": productivity})
             for r in range(replications) for u in universes]
    runs = run_tasks(tasks, workers, "falsification" if progress else None)
    return FalsificationMatrix(runs=runs, propositions=props, universes=universes,
                               mechanisms={p: tuple(s.mechanisms) for p, s in specs.items()},
                               alphas={p: float(s.alpha) for p, s in specs.items()},
                               replications=int(replications), seed=int(seed), design=label)
