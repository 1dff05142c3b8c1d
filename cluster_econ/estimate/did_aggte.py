"""Aggregations of group-time effects (R's ``did::aggte``) and their influence functions.

With :math:`\\pi_g` the (weighted) share of units in cohort :math:`g`:

``"simple"``
    :math:`\\theta = \\sum_{g \\le t} \\pi_g ATT(g,t) / \\sum_{g \\le t} \\pi_g` over post-treatment cells.
``"group"``
    :math:`\\theta(g)` = mean of :math:`ATT(g,t)` over :math:`t \\ge g`; overall
    :math:`\\sum_g \\pi_g\\theta(g)/\\sum_g\\pi_g`.
``"dynamic"``
    :math:`\\theta(e) = \\sum_g \\pi_g ATT(g, g+e)/\\sum_g \\pi_g` (an event study); overall the mean
    of :math:`\\theta(e)` over :math:`e \\ge 0`.
``"calendar"``
    :math:`\\theta(t)` = :math:`\\pi`-weighted mean of :math:`ATT(g,t)` over :math:`g \\le t`; overall
    the mean over :math:`t`.

Influence functions are the weighted sums of the cells' influence functions plus the estimation
effect of the weights :math:`\\hat\\pi` (R's ``wif``), so the standard errors account for both.
Standard errors, bootstrap and bands follow :mod:`cluster_econ.estimate.did`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from cluster_econ.errors import EstimationError
from cluster_econ.estimate.did import ENGINE, _fmt, _mboot
from cluster_econ.estimate.result import Audit, Result, VcovInfo

__all__ = ["AggteResult", "aggte"]

_KINDS = {"simple": "", "group": "group", "dynamic": "event", "calendar": "time"}


@dataclass(frozen=True, eq=False)
class AggteResult(Result):
    """Aggregated treatment effect: the overall ``ATT`` term first, then one term per event time
    (``event::e``), cohort (``group::g``) or period (``time::t``)."""

    @property
    def estimate(self) -> float:
        """The overall aggregated ATT."""
        return float(self.params["ATT"])

    @property
    def std_error(self) -> float:
        """Standard error of the overall ATT."""
        return float(self.bse["ATT"])

    @property
    def type(self) -> str:
        return str(self.extra["type"])

    def tidy(self, level: float | None = None) -> pd.DataFrame:
        """Rows: the overall ``ATT`` then the components; columns ``term``, the component value
        (``event``, ``group`` or ``time``; NaN for the overall row), ``estimate``, ``std_error``,
        ``statistic``, ``p_value``, pointwise ``conf_low``/``conf_high`` and the uniform band
        ``band_low``/``band_high`` of the components."""
        level = 1 - float(self.extra["alp"]) if level is None else level
        out = super().tidy(level)
        kind = _KINDS[self.type] or "component"
        out.insert(1, kind, np.concatenate([[np.nan], np.asarray(self.extra["egt"], dtype=float)]))
        half = float(self.extra["crit_val"]) * out["std_error"].to_numpy()
        out["band_low"] = out["estimate"] - half
        out["band_high"] = out["estimate"] + half
        out.loc[0, ["band_low", "band_high"]] = out.loc[0, ["conf_low", "conf_high"]].to_numpy()
        return out


def _wif(keep: np.ndarray, pg: np.ndarray, w: np.ndarray, coh: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Influence function of the estimated aggregation weights pi_g / sum pi_g."""
    spg = pg[keep].sum()
    centered = np.column_stack([w * (coh == group[k]) - pg[k] for k in keep])
    return centered / spg - np.outer(centered.sum(axis=1), pg[keep] / spg**2)


def aggte(res: Any, type: str = "group", balance_e: int | None = None, min_e: float = -np.inf,
          max_e: float = np.inf, na_rm: bool = False, bstrap: bool | None = None, biters: int | None = None,
          cband: bool | None = None, alp: float | None = None, seed: int | None = None) -> AggteResult:
    """Aggregate an :class:`~cluster_econ.estimate.did.AttGtResult` (R's ``did::aggte``).

    Parameters
    ----------
    res : AttGtResult
    type : ``"simple"``, ``"group"`` (default, as R), ``"dynamic"`` or ``"calendar"``.
    balance_e : int, optional
        Event study on the cohorts observed for at least ``balance_e`` periods after treatment.
    min_e, max_e : event times kept (``max_e`` also limits the other aggregations).
    na_rm : drop cells whose ATT(g,t) could not be estimated.
    bstrap, biters, cband, alp, seed : as in :func:`~cluster_econ.estimate.did.att_gt`; default the
        values ``res`` was estimated with.
    """
    if type not in _KINDS:
        raise EstimationError(f"aggte type must be one of {', '.join(_KINDS)}, not {type!r}")
    ex = res.extra
    bstrap = ex["bstrap"] if bstrap is None else bstrap
    biters = ex["biters"] if biters is None else biters
    cband = ex["cband"] if cband is None else cband
    alp = ex["alp"] if alp is None else alp
    seed = ex["seed"] if seed is None else seed
    att = res.params.to_numpy(dtype=float)
    group, t = np.asarray(ex["group"], dtype=float), np.asarray(ex["time"], dtype=float)
    IF = np.asarray(ex["influence"], dtype=float)
    if na_rm:
        ok = np.isfinite(att)
        att, group, t, IF = att[ok], group[ok], t[ok], IF[:, ok]
    elif np.isnan(att).any():
        raise EstimationError("aggte: some ATT(g,t) are missing (see the audit notes); pass na_rm=True "
                              "to aggregate the others")
    w, coh, cluster = np.asarray(ex["unit_weights"]), np.asarray(ex["unit_group"]), ex["cluster"]
    n = IF.shape[0]
    glist = np.unique(group)
    pg_g = np.array([np.mean(w * (coh == g)) for g in glist])
    pg = pg_g[np.searchsorted(glist, group)]
    post_cell = (group <= t) & (t <= group + max_e)

    def combine(which: np.ndarray, weights: np.ndarray, with_wif: bool, att_v: np.ndarray = att,
                IF_m: np.ndarray = IF, pg_v: np.ndarray = pg, grp: np.ndarray = group,
                G_v: np.ndarray = coh) -> tuple[float, np.ndarray]:
        if which.size == 0:
            raise EstimationError(f"aggte({type!r}): no ATT(g,t) to aggregate")
        val = float(att_v[which] @ weights)
        psi = IF_m[:, which] @ weights
        if with_wif:
            psi = psi + _wif(which, pg_v, w, G_v, grp) @ att_v[which]
        return val, psi

    egt: list[float] = []
    comp_val: list[float] = []
    comp_psi: list[np.ndarray] = []
    if type == "simple":
        keep = np.flatnonzero(post_cell)
        overall, psi_all = combine(keep, pg[keep] / pg[keep].sum(), True)
    elif type == "group":
        for g in glist:
            which = np.flatnonzero((group == g) & post_cell)
            if which.size == 0:
                continue
            v, ps = combine(which, pg[which] / pg[which].sum(), False)
            egt.append(g)
            comp_val.append(v)
            comp_psi.append(ps)
        gidx = np.searchsorted(glist, egt)
        pgg = pg_g[gidx]
        cv, cpsi = np.array(comp_val), np.column_stack(comp_psi)
        overall, psi_all = combine(np.arange(len(egt)), pgg / pgg.sum(), True, att_v=cv, IF_m=cpsi,
                                   pg_v=pgg, grp=np.asarray(egt))
    elif type == "dynamic":
        e_all = t - group
        incl = np.ones(len(att), dtype=bool)
        eseq = np.unique(e_all)
        if balance_e is not None:
            incl = (t.max() - group) >= balance_e
            eseq = np.unique(e_all[incl])
            eseq = eseq[(eseq <= balance_e) & (eseq >= balance_e - t.max() + t.min())]
        eseq = eseq[(eseq >= min_e) & (eseq <= max_e)]
        if eseq.size == 0:
            raise EstimationError("aggte('dynamic'): no event time within min_e, max_e, balance_e")
        for e in eseq:
            which = np.flatnonzero((e_all == e) & incl)
            v, ps = combine(which, pg[which] / pg[which].sum(), True)
            egt.append(e)
            comp_val.append(v)
            comp_psi.append(ps)
        cv, cpsi = np.array(comp_val), np.column_stack(comp_psi)
        pos = np.flatnonzero(np.asarray(egt) >= 0)
        if pos.size == 0:
            raise EstimationError("aggte('dynamic'): no event time >= 0 for the overall effect")
        overall, psi_all = float(cv[pos].mean()), cpsi[:, pos].mean(axis=1)
    else:  # calendar
        for t1 in np.unique(t[t >= group.min()]):
            which = np.flatnonzero((t == t1) & (group <= t))
            if which.size == 0:
                continue
            v, ps = combine(which, pg[which] / pg[which].sum(), True)
            egt.append(t1)
            comp_val.append(v)
            comp_psi.append(ps)
        cv, cpsi = np.array(comp_val), np.column_stack(comp_psi)
        overall, psi_all = float(cv.mean()), cpsi.mean(axis=1)

    Psi = np.column_stack([psi_all, *comp_psi]) if comp_psi else psi_all[:, None]
    vals = np.array([overall, *comp_val])
    if cluster is not None:
        codes, uniq = pd.factorize(cluster, sort=True)
        S = np.column_stack([np.bincount(codes, weights=Psi[:, j], minlength=len(uniq)) for j in range(Psi.shape[1])])
        C = S.T @ S / n**2
    else:
        C = Psi.T @ Psi / n**2
    se = np.sqrt(np.clip(np.diag(C), 0, None))
    from scipy import special

    crit = float(special.ndtri(1 - alp / 2))
    details: dict[str, Any] = {"alp": alp, "aggregation": type}
    if bstrap or (cband and comp_psi):
        b_all = _mboot(Psi, cluster, biters, seed, alp)
        if bstrap:
            se = b_all["se"] * np.sqrt(b_all["m"]) / n
        if cband and comp_psi:
            b_comp = _mboot(Psi[:, 1:], cluster, biters, seed, alp)
            if np.isfinite(b_comp["crit"]):
                crit = max(float(b_comp["crit"]), crit)
        details.update(biters=biters, seed=seed, bootstrap_weights="Mammen")
    details["band"] = "uniform (multiplier bootstrap sup-t)" if cband and comp_psi else "pointwise"
    details["crit_val"] = crit
    se = np.where(se <= np.sqrt(np.finfo(float).eps) * 10, np.nan, se)
    d = np.sqrt(np.clip(np.diag(C), 0, None))
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = np.where(np.outer(d, d) > 0, C / np.outer(d, d), 0.0)
    cov = corr * np.outer(se, se)
    np.fill_diagonal(cov, se**2)
    prefix = _KINDS[type]
    names = ["ATT"] + [f"{prefix}::{_fmt(v)}" for v in egt]
    vi = res.vcov_info
    info = VcovInfo(type="multiplier bootstrap" if bstrap else "influence function", ssc="none",
                    cluster_vars=vi.cluster_vars, n_clusters=vi.n_clusters, df_resid=None, details=details)
    extra = {"type": type, "egt": np.array(egt, dtype=float), "crit_val": crit, "alp": alp,
             "influence": Psi, "att_gt": res, "balance_e": balance_e, "min_e": min_e, "max_e": max_e}
    label = {"simple": "simple", "group": "group/cohort", "dynamic": "event-study/dynamic",
             "calendar": "calendar-time"}[type]
    formula = res.formula.replace("ATT(g,t)", f"aggte {label}")
    return AggteResult(params=pd.Series(vals, index=names), cov=pd.DataFrame(cov, index=names, columns=names),
                       nobs=res.nobs, vcov_info=info, formula=formula, model=f"att_gt-{type}", engine=ENGINE,
                       audit=Audit(n_input=res.audit.n_input, dropped=dict(res.audit.dropped),
                                   notes=tuple(res.audit.notes)),
                       data_hash=res.data_hash, groups=dict(res.groups),
                       stats={"pretest_p": res.stats.get("pretest_p", np.nan)}, extra=extra)
