"""Step 4: the block bootstrap of production-function estimates.

Whole histories are resampled: ``G`` draws with replacement from the ``G`` entities (or from the
``vcov_cluster`` groups, which must contain whole entities). A draw is carried as frequency
weights on the rows (an entity drawn twice counts twice), which is exactly the estimator on the
resampled panel (every statistic is a sum over rows, and lags stay inside an entity) without
copying data. Each draw re-estimates both stages, starting from the point estimate.

Roots. For the GMM estimators (ACF, GNR, the dynamic panel) a draw can land on another root of
its own moment conditions. A draw counts as *on the estimate's root* when its solution passes
the economic screens and is nearer to the accepted root than to any other root found on the full
sample; the others are counted (``root_switches``), listed in the notes and left out of the
covariance, never mixed into it silently. Draws whose estimation fails are counted too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from cluster_econ.errors import EstimationError
from cluster_econ.estimate.production.sample import Sample

__all__ = ["BootstrapOutcome", "block_bootstrap"]


@dataclass
class BootstrapOutcome:
    draws: np.ndarray
    failed: int
    switched: int
    switched_examples: list[np.ndarray]
    n_groups: int


def block_bootstrap(s: Sample, B: int, seed: int,
                    draw: Callable[[np.ndarray], tuple[np.ndarray, bool]]) -> BootstrapOutcome:
    """Run ``B`` draws; ``draw(weights)`` returns (coefficients, on_the_accepted_root)."""
    group = s.group if s.group is not None else s.entity
    G = int(group.max() + 1)
    rng = np.random.default_rng(seed)
    out: list[np.ndarray] = []
    failed = switched = 0
    examples: list[np.ndarray] = []
    for _ in range(int(B)):
        pick = rng.integers(0, G, G)
        w = np.bincount(pick, minlength=G).astype(float)[group]
        try:
            coef, on_root = draw(w)
        except (EstimationError, np.linalg.LinAlgError, FloatingPointError, ValueError):
            failed += 1
            continue
        if not np.all(np.isfinite(coef)):
            failed += 1
            continue
        if not on_root:
            switched += 1
            if len(examples) < 3:
                examples.append(coef)
            continue
        out.append(coef)
    draws = np.array(out)
    return BootstrapOutcome(draws=draws, failed=failed, switched=switched, switched_examples=examples, n_groups=G)
