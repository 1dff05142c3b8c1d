"""Several detection methods side by side, and how much they agree.

For every pair of methods and every cluster (and all clusters pooled) the comparison reports
the cluster-years both label with a phase (``unknown`` years are counted apart and left out),
the share labelled the same, and Cohen's kappa, the agreement beyond what the two methods'
label frequencies would give by chance,

    kappa = (p_o - p_e) / (1 - p_e),   p_e = sum_k p_a(k) p_b(k),

with ``p_o`` the share labelled the same and ``p_a(k)``, ``p_b(k)`` the shares each method gives
phase ``k`` (unweighted: every disagreement counts the same). Kappa is undefined (NaN) when
``p_e = 1``, which happens only when both methods give every year the same single phase (and
then agree perfectly). Where the pooled kappa of a pair, or the kappa of a cluster, falls below
``min_kappa`` (default 0.6, the lower end of what Landis and Koch (1977) call substantial
agreement), a :class:`PhaseAgreementWarning` is raised and the summary says so: the phases then
depend on the method, and conclusions drawn from them should be checked with each.

Why hand-written: kappa is a two-line formula on a contingency table; statsmodels'
``cohens_kappa`` and scikit-learn's ``cohen_kappa_score`` compute it too (the tests compare
with both), but the first needs the table built and warns on the undefined case, and the second
would add scikit-learn as a dependency.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from cluster_econ.errors import ConfigError
from cluster_econ.phases.requirements import UNKNOWN
from cluster_econ.phases.result import PhaseResult

__all__ = ["PhaseAgreementWarning", "PhaseComparison", "cohen_kappa", "compare"]

ALL = "(all clusters)"


class PhaseAgreementWarning(UserWarning):
    """Phase detection methods disagree: the phases depend on the method chosen."""


def cohen_kappa(a: Sequence[Any], b: Sequence[Any]) -> float:
    """Cohen's (unweighted) kappa of two labellings of the same items.

    Returns NaN for no items or when chance agreement is 1 (both give every item one label).
    """
    a = np.asarray(a, dtype=object)
    b = np.asarray(b, dtype=object)
    if a.shape != b.shape:
        raise ValueError(f"cohen_kappa: {a.size} labels against {b.size}")
    n = a.size
    if n == 0:
        return float("nan")
    cats = sorted(set(a.tolist()) | set(b.tolist()), key=str)
    pa = np.array([(a == c).mean() for c in cats])
    pb = np.array([(b == c).mean() for c in cats])
    p_o = float((a == b).mean())
    p_e = float(pa @ pb)
    if p_e >= 1.0 - 1e-12:
        return float("nan")
    return (p_o - p_e) / (1.0 - p_e)


@dataclass(frozen=True)
class PhaseComparison:
    """Labels of several methods side by side, with their agreement.

    Attributes
    ----------
    methods : tuple of str
        The methods compared.
    labels : DataFrame
        ``cluster_id``, ``year``, ``phase_<method>`` for each method, and ``all_agree`` (every
        method gives the same label, ``unknown`` included).
    agreement : DataFrame
        One row per pair of methods and cluster (``cluster_id`` is ``"(all clusters)"`` for
        the pooled row): ``n`` cluster-years, ``n_labelled`` (both give a phase),
        ``n_unknown`` (either says unknown), ``share_same`` and ``kappa`` over the labelled
        ones, and ``low`` (kappa below ``min_kappa``).
    results : mapping
        The :class:`~cluster_econ.phases.result.PhaseResult` of each method.
    min_kappa : float
        Kappa below which agreement counts as low.
    messages : tuple of str
        The warnings raised (empty when the methods agree).
    """

    methods: tuple[str, ...]
    labels: pd.DataFrame
    agreement: pd.DataFrame
    results: Mapping[str, PhaseResult]
    min_kappa: float
    messages: tuple[str, ...] = field(default_factory=tuple)

    @property
    def overall(self) -> pd.DataFrame:
        """The pooled rows of :attr:`agreement`, one per pair of methods."""
        return self.agreement[self.agreement["cluster_id"] == ALL].reset_index(drop=True)

    def summary(self) -> str:
        lab = self.labels
        lines = [f"Phases by {', '.join(self.methods)}: {lab['cluster_id'].nunique()} clusters, "
                 f"{len(lab)} cluster-years; all methods give the same label (unknown "
                 f"included) in {lab['all_agree'].mean():.1%} of them"]
        for m in self.methods:
            n_unk = int((lab[f"phase_{m}"] == UNKNOWN).sum())
            if n_unk:
                lines.append(f"  {m}: {n_unk} cluster-years unknown (signals missing; see "
                             f".results[{m!r}].unknown)")

        def cell(r: Any) -> str:
            if r.n_labelled == 0:
                return "none labelled"
            kappa = "  n/a" if pd.isna(r.kappa) else f"{r.kappa:5.2f}"
            return f"{r.share_same:4.0%} {kappa}{' LOW' if r.low else '    '}"

        ag = self.agreement.assign(pair=self.agreement["method_a"] + "-" +
                                   self.agreement["method_b"])
        ag["cell"] = [cell(r) for r in ag.itertuples()]
        wide = ag.pivot(index="cluster_id", columns="pair", values="cell")
        wide = wide.reindex(index=[ALL, *[c for c in wide.index if c != ALL]],
                            columns=list(dict.fromkeys(ag["pair"])))
        wide.index.name = wide.columns.name = None
        lines.append("agreement (share of cluster-years both label with a phase that get the "
                     f"same one, Cohen's kappa; LOW below {self.min_kappa:g}):")
        lines.append(wide.to_string())
        if self.messages:
            lines.append("WARNING: " + "\nWARNING: ".join(self.messages))
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.summary()


def _pair_rows(a: pd.Series, b: pd.Series, clusters: pd.Series, ma: str, mb: str,
               min_kappa: float) -> list[dict]:
    rows = []
    labelled = (a.notna() & b.notna() & (a != UNKNOWN) & (b != UNKNOWN)).to_numpy()
    av, bv, cv = a.to_numpy(dtype=object), b.to_numpy(dtype=object), clusters.to_numpy()
    for cid in [ALL, *sorted(pd.unique(cv).tolist(), key=str)]:
        sel = np.ones(len(cv), dtype=bool) if cid == ALL else cv == cid
        ok = sel & labelled
        n_lab = int(ok.sum())
        share = float((av[ok] == bv[ok]).mean()) if n_lab else float("nan")
        kappa = cohen_kappa(av[ok], bv[ok])
        rows.append({"method_a": ma, "method_b": mb, "cluster_id": cid, "n": int(sel.sum()),
                     "n_labelled": n_lab, "n_unknown": int(sel.sum()) - n_lab,
                     "share_same": share, "kappa": kappa,
                     "low": bool(np.isfinite(kappa) and kappa < min_kappa)})
    return rows


def compare(data: Any, methods: Sequence[str] = ("rules", "breaks", "hmm"),
            configs: Mapping[str, Any] | None = None, min_kappa: float = 0.6,
            warn: bool = True) -> PhaseComparison:
    """Detect phases with several methods and report them side by side with their agreement.

    Parameters
    ----------
    data : Panel or DataFrame
        As for :func:`cluster_econ.phases.detect`.
    methods : sequence of str
        At least two of ``"rules"``, ``"breaks"``, ``"hmm"``.
    configs : mapping, optional
        Configuration per method (a config object or a mapping), for example
        ``{"hmm": {"seed": 3}}``.
    min_kappa : float
        Cohen's kappa below which agreement is low (a warning for the pooled pair and for each
        cluster below it).
    warn : bool
        Raise a :class:`PhaseAgreementWarning` when agreement is low (the messages are in the
        result either way).

    Returns
    -------
    PhaseComparison
    """
    from cluster_econ.phases import detect

    methods = tuple(dict.fromkeys(methods))
    if len(methods) < 2:
        raise ConfigError(f"phases compare: name at least two methods, got {list(methods)}")
    if not 0 < min_kappa <= 1:
        raise ConfigError(f"phases compare: min_kappa must be in (0, 1], got {min_kappa}")
    configs = dict(configs or {})
    bad = set(configs) - set(methods)
    if bad:
        raise ConfigError(f"phases compare: configs for methods not compared: {sorted(bad)}")
    results = {m: detect(data, method=m, config=configs.get(m)) for m in methods}
    base = results[methods[0]].cluster_year[["cluster_id", "year"]].reset_index(drop=True)
    labels = base.copy()
    for m in methods:
        cy = results[m].cluster_year
        if not (cy["cluster_id"].to_numpy() == base["cluster_id"].to_numpy()).all() or not (
                cy["year"].to_numpy() == base["year"].to_numpy()).all():
            raise RuntimeError(f"phases compare: {m} returned cluster-years in another order")
        labels[f"phase_{m}"] = cy["phase"].to_numpy()
    cols = [f"phase_{m}" for m in methods]
    labels["all_agree"] = labels[cols].nunique(axis=1, dropna=False).eq(1).to_numpy()
    rows = []
    for ma, mb in itertools.combinations(methods, 2):
        rows += _pair_rows(labels[f"phase_{ma}"], labels[f"phase_{mb}"], labels["cluster_id"],
                           ma, mb, min_kappa)
    agreement = pd.DataFrame(rows, columns=["method_a", "method_b", "cluster_id", "n",
                                            "n_labelled", "n_unknown", "share_same", "kappa",
                                            "low"])
    messages = []
    for r in agreement[agreement["low"]].itertuples():
        where = "over all clusters" if r.cluster_id == ALL else f"in cluster {r.cluster_id}"
        messages.append(f"{r.method_a} and {r.method_b} agree little {where}: kappa "
                        f"{r.kappa:.2f}, same label in {r.share_same:.0%} of "
                        f"{r.n_labelled} cluster-years; the phases depend on the method")
    if warn:
        for msg in messages:
            warnings.warn(msg, PhaseAgreementWarning, stacklevel=2)
    return PhaseComparison(methods=methods, labels=labels, agreement=agreement,
                           results=MappingProxyType(results), min_kappa=float(min_kappa),
                           messages=tuple(messages))
