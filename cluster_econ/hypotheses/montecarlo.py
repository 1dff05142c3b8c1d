"""Monte Carlo of a proposition's test on simulated universes: size under a switched-off
mechanism, power with it on.

For replication ``r`` the universe is ``cluster_econ.simulate.simulate(config, seed=seed + r)``
(optionally scaled to ``n_firms`` firms ever founded); the proposition is tested with the true
phases, and the rejection is ``verdict == "supported"`` (the one-sided test at the
proposition's ``alpha``). The rejection rate ``k / R`` has the binomial Monte Carlo standard error
``sqrt(rate (1 - rate) / R)``.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import pandas as pd

__all__ = ["MonteCarlo", "rejection_rate"]


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
        r = self.rate
        return math.sqrt(r * (1 - r) / self.replications) if self.replications else float("nan")

    def __repr__(self) -> str:
        sw = ", ".join(k for k, v in self.switches.items() if v) or "full model"
        return (f"{self.prop} ({sw}): rejection rate {self.rate:.3f} (MC s.e. {self.mc_se:.3f}) over "
                f"{self.replications} replications")


def rejection_rate(prop: str = "P4", switches: dict[str, bool] | None = None, replications: int = 200,
                   seed: int = 1, n_firms: int | None = None, preset: str = "demo", progress: bool = False,
                   **overrides: Any) -> MonteCarlo:
    """Share of simulated universes on which ``prop`` is found ``supported``.

    Parameters
    ----------
    prop : proposition id.
    switches : simulator switches to turn on (for example ``{"equal_schooling_slopes": True}``
        for the null of P4).
    replications, seed : replication ``r`` uses simulator seed ``seed + r``.
    n_firms : scale the universe to about this many firms ever founded (smaller is faster).
    preset : simulator preset.
    **overrides : changes to the proposition (as in :func:`cluster_econ.hypotheses.test`).
    """
    from cluster_econ import hypotheses as hyp
    from cluster_econ.simulate import preset as make_preset
    from cluster_econ.simulate import simulate

    cfg = make_preset(preset)
    if switches:
        cfg = cfg.with_switches(**switches)
    pvals, ests, hits = [], [], 0
    it: Any = range(replications)
    if progress:
        from tqdm import tqdm
        it = tqdm(it, desc=f"{prop} Monte Carlo", unit="rep")
    for r in it:
        sim = simulate(cfg, seed=seed + r, n_firms=n_firms)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = hyp.test(sim.panel, prop, **overrides)
        hits += res.verdict == "supported"
        pvals.append(res.p_value)
        ests.append(res.contrast.get("estimate", float("nan")))
    return MonteCarlo(prop, dict(switches or {}), replications, int(hits), pd.Series(pvals, name="p_value"),
                      pd.Series(ests, name="estimate"), n_firms)
