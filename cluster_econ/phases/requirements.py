"""Which signals each phase label needs, and the ``unknown`` label where they are missing.

A detection method proposes a phase for every cluster-year (its *candidate*). The candidate is
kept only if the signals that define that phase in Otsuka and Sonobe's phase table were observed
for the cluster in or next to that year; otherwise the cluster-year is labelled
:data:`UNKNOWN` and the reason names the missing signals and the cluster_year columns they come
from. No method falls back to a second-best phase: where the data cannot tell, the output says so.

Default requirements (each phase needs every group; a group is met by any one of its signals):

======================  ======================================================================
phase                   groups of signals (source columns, see ``signals.SIGNAL_SOURCES``)
======================  ======================================================================
initiation              firm count (``n_firms``); innovation (new product / new process
                        shares), which tells a young cluster from a shrunken mature one
quantity_expansion      entry wave (firm growth or net entry); falling prices (``price_index``)
quality_improvement     innovation; schooling (``mean_schooling``); shake-out (exit rate or
                        change in CR4)
stagnation              entry wave; falling prices; innovation (to show that quality
                        improvement did not come)
======================  ======================================================================

Availability is the same for every method: a signal counts for a cluster-year when it is
observed in that row or in the previous or next observed row of the same cluster (so the first
year of a cluster, whose changes are not defined, borrows its neighbour's, and a survey round
speaks for the rows next to it). Requirements can be changed (``requirements=`` on every method's
configuration): a mapping from phase to a list of groups, each group a list of signal names.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import numpy as np
import pandas as pd

from cluster_econ.errors import ConfigError
from cluster_econ.phases.signals import ORDERED, SIGNAL_SOURCES, SIGNALS, STAGNATION

__all__ = ["DEFAULT_REQUIREMENTS", "UNKNOWN", "apply_requirements", "parse_requirements",
           "signal_availability"]

#: the label of a cluster-year whose candidate phase lacks the signals that define it
UNKNOWN = "unknown"

#: named groups of signals; a group is met by any one of its signals
GROUPS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "firm count": ("rel_size",),
    "entry wave": ("firm_growth", "net_entry"),
    "falling prices": ("price_trend",),
    "innovation": ("innovation",),
    "schooling": ("schooling",),
    "shake-out": ("exit_rate", "concentration_trend"),
})

DEFAULT_REQUIREMENTS: Mapping[str, tuple[tuple[str, ...], ...]] = MappingProxyType({
    "initiation": (GROUPS["firm count"], GROUPS["innovation"]),
    "quantity_expansion": (GROUPS["entry wave"], GROUPS["falling prices"]),
    "quality_improvement": (GROUPS["innovation"], GROUPS["schooling"], GROUPS["shake-out"]),
    STAGNATION: (GROUPS["entry wave"], GROUPS["falling prices"], GROUPS["innovation"]),
})

_LABELS = (*ORDERED, STAGNATION)


def parse_requirements(mapping: Mapping | None) -> dict[str, tuple[tuple[str, ...], ...]]:
    """Requirements from a mapping (phases not named keep their defaults), checked.

    Each value is a list of groups, each group a list of signal names (or one name); an empty
    list means the phase needs nothing.
    """
    if mapping is None:
        return dict(DEFAULT_REQUIREMENTS)
    if not isinstance(mapping, Mapping):
        raise ConfigError(f"phases: requirements must be a mapping from phase to groups of "
                          f"signals, got {type(mapping).__name__}")
    out = dict(DEFAULT_REQUIREMENTS)
    for phase, groups in mapping.items():
        if phase not in _LABELS:
            raise ConfigError(f"phases: requirements name an unknown phase {phase!r}; the phases "
                              f"are {', '.join(_LABELS)}")
        if isinstance(groups, str):
            groups = [groups]
        parsed = []
        for grp in groups:
            names = (grp,) if isinstance(grp, str) else tuple(grp)
            bad = [s for s in names if s not in SIGNALS]
            if bad or not names:
                raise ConfigError(f"phases: requirements[{phase!r}] name unknown signals {bad}; "
                                  f"the signals are {', '.join(SIGNALS)}")
            parsed.append(names)
        out[phase] = tuple(parsed)
    return out


def signal_availability(signals: pd.DataFrame, groups: pd.Series) -> pd.DataFrame:
    """Whether each signal is observed in a row or the previous or next row of its cluster.

    ``signals`` are the raw signals (:func:`~cluster_econ.phases.signals.compute_signals`) of a
    cluster_year table sorted by cluster and year; ``groups`` its ``cluster_id``. Signals that
    could not be computed at all are columns of ``False``.
    """
    g = groups.to_numpy()
    same_prev = np.r_[False, g[1:] == g[:-1]]          # row i-1 is in the same cluster
    same_next = np.r_[g[:-1] == g[1:], False]
    seen = np.zeros((len(g), len(SIGNALS)), dtype=bool)
    for j, col in enumerate(SIGNALS):
        if col not in signals.columns:
            continue
        ok = signals[col].notna().to_numpy()
        prev = np.r_[False, ok[:-1]] & same_prev
        nxt = np.r_[ok[1:], False] & same_next
        seen[:, j] = ok | prev | nxt
    return pd.DataFrame(seen, index=signals.index, columns=list(SIGNALS))


def _describe(group: tuple[str, ...]) -> str:
    name = next((k for k, v in GROUPS.items() if v == group), " or ".join(group))
    cols: list[str] = []
    for sig in group:
        for c in SIGNAL_SOURCES[sig]:
            if c not in cols:
                cols.append(c)
    return f"{name} ({', '.join(cols)})"


def apply_requirements(candidate: np.ndarray, available: pd.DataFrame, cluster: pd.Series,
                       requirements: Mapping[str, tuple[tuple[str, ...], ...]]
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Replace candidates whose signals are missing by :data:`UNKNOWN`.

    Parameters
    ----------
    candidate : array of str
        The method's phase for every row.
    available : DataFrame of bool
        From :func:`signal_availability`, aligned with ``candidate``.
    cluster : Series
        ``cluster_id`` of every row (used to say whether a signal is missing in the whole
        cluster or only around that year).
    requirements : mapping
        From :func:`parse_requirements`.

    Returns
    -------
    labels, reasons : arrays of object
        The labels (``candidate`` or ``"unknown"``) and, for unknown rows, the reason (None
        elsewhere), for example ``"quality_improvement needs innovation (share_new_product,
        share_new_process): not observed in this cluster"``.
    """
    cand = np.asarray(candidate, dtype=object)
    labels = cand.copy()
    reasons = np.full(len(cand), None, dtype=object)
    col = {name: j for j, name in enumerate(available.columns)}
    here_all = available.to_numpy(dtype=bool)
    codes, _ = pd.factorize(cluster.to_numpy())
    n_groups = int(codes.max()) + 1 if codes.size else 0
    counts = np.zeros((n_groups, here_all.shape[1]))
    np.add.at(counts, codes, here_all)
    anywhere_all = (counts > 0)[codes]                  # observed somewhere in the cluster
    for phase, groups in requirements.items():
        rows = np.flatnonzero(cand == phase)
        if rows.size == 0 or not groups:
            continue
        ok_all = np.ones(rows.size, dtype=bool)
        parts: list[tuple[np.ndarray, str]] = []
        for grp in groups:
            idx = [col[s] for s in grp]
            here = here_all[np.ix_(rows, idx)].any(axis=1)
            anywhere = anywhere_all[np.ix_(rows, idx)].any(axis=1)
            ok_all &= here
            parts.append((~here & anywhere,
                          f"{_describe(grp)}: not observed in or next to this year"))
            parts.append((~anywhere, f"{_describe(grp)}: not observed in this cluster"))
        bad = np.flatnonzero(~ok_all)
        if not bad.size:
            continue
        labels[rows[bad]] = UNKNOWN
        # one text per combination of missing groups
        flags = np.column_stack([mask[bad] for mask, _ in parts])
        combos, inverse = np.unique(flags, axis=0, return_inverse=True)
        texts = [f"{phase} needs " + "; ".join(t for (_, t), on in zip(parts, combo, strict=True)
                                               if on) for combo in combos]
        reasons[rows[bad]] = np.array(texts, dtype=object)[inverse.ravel()]
    return labels, reasons


def label_rows(cy: pd.DataFrame, raw_signals: pd.DataFrame, candidate: np.ndarray,
               requirements: Mapping[str, tuple[tuple[str, ...], ...]]
               ) -> tuple[np.ndarray, np.ndarray, dict]:
    """Final labels of a method's candidates (integer codes of ``LABELS``) with the reasons.

    Returns the labels, the reasons and diagnostics: ``n_unknown`` and ``unknown_by_phase``
    (how many candidates of each phase lacked their signals).
    """
    from cluster_econ.phases.result import LABELS

    names = np.array(LABELS, dtype=object)[np.asarray(candidate, dtype=int)]
    avail = signal_availability(raw_signals, cy["cluster_id"])
    labels, reasons = apply_requirements(names, avail, cy["cluster_id"], requirements)
    unknown = labels == UNKNOWN
    diag = {"n_unknown": int(unknown.sum()),
            "unknown_by_phase": {str(k): int(v) for k, v in
                                 pd.Series(names[unknown]).value_counts().items()},
            "requirements": {k: [list(g) for g in v] for k, v in requirements.items()}}
    return labels, reasons, diag
