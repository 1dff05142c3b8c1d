"""The one Result type every estimator returns.

A :class:`Result` is immutable: estimators build it once and tables, reports and hypothesis
tests only read it. It carries the numbers (coefficients, covariance) together with everything a
reader needs to defend them: the covariance type and its small-sample correction by name, the
clusters, what was dropped from the sample and why, the formula, the engine and its version, and
a hash of the estimation data.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class VcovInfo:
    """How a covariance matrix was computed.

    Attributes
    ----------
    type : str
        ``"iid"``, ``"HC1"``, ``"HC3"``, ``"CRV1"``, ``"CRV3"``, ``"OIM"`` (inverse information),
        ``"bootstrap"`` or another named estimator.
    ssc : str
        Name of the small-sample correction preset (``"stata"``, ``"fixest"``, ``"none"``) or a
        description of the correction applied.
    cluster_vars : tuple of str
        Clustering variables (empty unless clustered).
    n_clusters : tuple of int
        Number of clusters per clustering variable.
    df_resid : float or None
        Residual degrees of freedom used for t and F reference distributions; ``None`` means
        normal / chi-square inference.
    details : mapping
        Anything else a reader may need (the multiplier actually applied, for example).
    """

    type: str
    ssc: str = "none"
    cluster_vars: tuple[str, ...] = ()
    n_clusters: tuple[int, ...] = ()
    df_resid: float | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        """One line for tables: for example ``CRV1 by firm (54 clusters), ssc=stata``."""
        text = self.type
        if self.cluster_vars:
            parts = [f"{v} ({n} clusters)" for v, n in zip(self.cluster_vars, self.n_clusters, strict=False)]
            text += " by " + " and ".join(parts)
        return f"{text}, ssc={self.ssc}"


@dataclass(frozen=True)
class Audit:
    """What happened to the rows between the input data and the estimation sample.

    Attributes
    ----------
    n_input : int
        Rows in the data passed to the estimator.
    dropped : mapping of str to int
        Rows dropped, by reason (``"missing values"``, ``"singletons"``, ``"missing cluster"``...).
    collinear : tuple of str
        Regressors dropped because they were collinear with others or absorbed by fixed effects.
    notes : tuple of str
        Free-text remarks (convergence of the demeaning, separation detected, warnings).
    """

    n_input: int
    dropped: Mapping[str, int] = field(default_factory=dict)
    collinear: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    def to_frame(self) -> pd.DataFrame:
        rows = [{"step": "input", "rows": self.n_input}]
        rows += [{"step": f"dropped: {k}", "rows": -int(v)} for k, v in self.dropped.items()]
        rows.append({"step": "estimation sample", "rows": self.n_input - sum(self.dropped.values())})
        return pd.DataFrame(rows)


def data_hash(*frames: pd.DataFrame | pd.Series | np.ndarray) -> str:
    """SHA-256 (first 16 hex digits) of the values of the estimation data, order-sensitive."""
    h = hashlib.sha256()
    for obj in frames:
        if isinstance(obj, pd.DataFrame | pd.Series):
            h.update(pd.util.hash_pandas_object(obj, index=False).to_numpy().tobytes())
        else:
            h.update(np.ascontiguousarray(obj).tobytes())
    return h.hexdigest()[:16]


@dataclass(frozen=True, eq=False)
class Result:
    """Immutable estimation result.

    Parameters
    ----------
    params : pandas.Series
        Coefficients indexed by term name.
    cov : pandas.DataFrame
        Covariance matrix of ``params``, labelled on both axes.
    nobs : int
        Observations in the estimation sample.
    vcov_info : VcovInfo
        Covariance type, small-sample correction, clusters.
    formula : str
        The model as the user wrote it.
    model : str
        Estimator name, for example ``"feols"``, ``"panel-re"``, ``"logit"``, ``"cox"``.
    engine : str
        Who computed it and the version, for example ``"cluster_econ 0.1.0"`` or
        ``"statsmodels 0.14.2"``.
    audit : Audit
        Rows dropped with reasons, collinear terms, notes.
    data_hash : str
        Hash of the estimation sample.
    groups : mapping of str to int
        Number of levels of each fixed effect or panel grouping.
    stats : mapping of str to float
        Fit statistics with exact names: ``"r2"``, ``"adj_r2"``, ``"within_r2"``, ``"loglik"``,
        ``"pseudo_r2"``, ``"first_stage_F"``...
    extra : mapping
        Estimator-specific objects (marginal effects, fitted values, baseline hazard).
    """

    params: pd.Series
    cov: pd.DataFrame
    nobs: int
    vcov_info: VcovInfo
    formula: str
    model: str
    engine: str
    audit: Audit
    data_hash: str = ""
    groups: Mapping[str, int] = field(default_factory=dict)
    stats: Mapping[str, float] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)
    predictor: Any = None

    def __post_init__(self) -> None:
        params = self.params.astype(float).copy()
        cov = self.cov.astype(float).copy()
        object.__setattr__(self, "params", params)
        object.__setattr__(self, "cov", cov)
        object.__setattr__(self, "groups", MappingProxyType(dict(self.groups)))
        object.__setattr__(self, "stats", MappingProxyType(dict(self.stats)))
        object.__setattr__(self, "extra", MappingProxyType(dict(self.extra)))

    # -- derived quantities -------------------------------------------------------------
    @property
    def bse(self) -> pd.Series:
        """Standard errors."""
        return pd.Series(
            np.sqrt(np.clip(np.diag(self.cov.to_numpy()), 0, None)), index=self.params.index, name="std_error"
        )

    @property
    def tvalues(self) -> pd.Series:
        return (self.params / self.bse).rename("t")

    @property
    def df_resid(self) -> float | None:
        return self.vcov_info.df_resid

    @property
    def pvalues(self) -> pd.Series:
        """Two-sided p-values: Student t with ``vcov_info.df_resid`` degrees of freedom, else normal."""
        t = np.abs(self.tvalues.to_numpy())
        df = self.df_resid
        from scipy import special  # here, not at import: estimation alone never needs it

        p = 2 * (special.stdtr(df, -t) if df is not None else special.ndtr(-t))
        return pd.Series(p, index=self.params.index, name="p_value")

    def conf_int(self, level: float = 0.95) -> pd.DataFrame:
        """Wald confidence intervals with the same reference distribution as ``pvalues``."""
        q = 0.5 + level / 2
        df = self.df_resid
        from scipy import special

        crit = special.stdtrit(df, q) if df is not None else special.ndtri(q)
        half = crit * self.bse
        return pd.DataFrame({"lower": self.params - half, "upper": self.params + half})

    def tidy(self, level: float = 0.95) -> pd.DataFrame:
        """One row per term: estimate, std_error, statistic, p_value, conf_low, conf_high."""
        ci = self.conf_int(level)
        return pd.DataFrame(
            {
                "term": self.params.index,
                "estimate": self.params.to_numpy(),
                "std_error": self.bse.to_numpy(),
                "statistic": self.tvalues.to_numpy(),
                "p_value": self.pvalues.to_numpy(),
                "conf_low": ci["lower"].to_numpy(),
                "conf_high": ci["upper"].to_numpy(),
            }
        )

    def predict(self, data: pd.DataFrame | None = None) -> pd.Series:
        """Predictions where the estimator defines them (the linear index or fitted values)."""
        if self.predictor is None:
            raise NotImplementedError(f"predict is not defined for model {self.model!r}")
        return self.predictor(self, data)

    def summary(self) -> str:
        """Readable text: header, coefficient table, fit statistics and the row audit."""
        lines = [
            f"{self.model}: {self.formula}",
            f"engine: {self.engine}   data hash: {self.data_hash}",
            f"observations: {self.nobs}",
        ]
        if self.groups:
            lines.append("groups: " + ", ".join(f"{k}={v}" for k, v in self.groups.items()))
        lines.append(f"covariance: {self.vcov_info.describe()}")
        tab = self.tidy().set_index("term")
        lines.append(tab.to_string(float_format=lambda v: f"{v:.6g}"))
        if self.stats:
            lines.append(
                "  ".join(f"{k}={v:.6g}" for k, v in self.stats.items() if isinstance(v, int | float | np.floating))
            )
        if self.audit.dropped:
            lines.append("dropped: " + ", ".join(f"{k}: {v}" for k, v in self.audit.dropped.items()))
        if self.audit.collinear:
            lines.append("collinear (dropped): " + ", ".join(self.audit.collinear))
        lines.extend(f"note: {n}" for n in self.audit.notes)
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.summary()

    def wald_test(self, R: np.ndarray | pd.DataFrame | str, q: np.ndarray | float | None = None) -> dict[str, float]:
        """Wald test of ``R @ params = q``.

        ``R`` may be a matrix (rows are restrictions) or a string such as ``"a - b = 0"`` with one
        restriction per ``;`` naming terms of ``params``. Returns the statistic, degrees of
        freedom and p-value (F with ``df_resid`` if set, else chi-square).
        """
        from cluster_econ.estimate.inference import wald_test  # local: avoids a cycle

        return wald_test(self, R, q)
