"""The one Result type every estimator returns, and the one type of a test statistic.

A :class:`Result` is immutable: estimators build it once and tables, reports and hypothesis
tests only read it. ``params`` and ``cov`` are stored as read-only arrays and every access returns
a new pandas object over them, so neither ``fit.params.iloc[0] = 1`` (an error) nor
``fit.params.index = ...`` (changes a throw-away object) can alter the result; ``stats``,
``extra`` and ``groups`` are read-only mappings. Another covariance is a new result:
:meth:`Result.vcov` (as pyfixest's ``Feols.vcov()``), for the estimators that keep what it needs.
A result carries the numbers together with everything a reader needs to defend them: the
covariance type and its small-sample correction by name, the clusters, what was dropped from the
sample and why, the formula, the engine and its version, and a hash of the estimation data.

:class:`TestResult` is what a test returns (Wald, Hausman, log-rank, pre-trend tests): statistic,
degrees of freedom, p-value and reference distribution, with ``tidy()`` and ``summary()``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import FrozenInstanceError, dataclass, field
from typing import Any

import numpy as np
import pandas as pd


class FrozenMapping(Mapping[str, Any]):
    """A read-only mapping (the ``stats``, ``extra`` and ``groups`` of a result, the details of its
    covariance and its row audit). Unlike ``types.MappingProxyType`` it can be copied and pickled."""

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, Any] | None = None) -> None:
        self._data = dict(data or {})

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return repr(self._data)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self._data,))


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

    def __post_init__(self) -> None:
        object.__setattr__(self, "details", FrozenMapping(dict(self.details)))

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

    def __post_init__(self) -> None:
        object.__setattr__(self, "dropped", FrozenMapping(dict(self.dropped)))
        object.__setattr__(self, "collinear", tuple(self.collinear))
        object.__setattr__(self, "notes", tuple(self.notes))

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


class _ReadOnlyLabelled:
    """Data descriptor behind :attr:`Result.params` and :attr:`Result.cov`.

    The value given to the constructor is stored once as a read-only float array with its
    labels; every access returns a new pandas object over that array (no copy). Writing into it
    raises ``ValueError: assignment destination is read-only``; relabelling it changes only the
    object returned, never the result.
    """

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name
        self.slot = f"_{name}_frozen"

    def __get__(self, obj: Any, objtype: type | None = None) -> Any:
        if obj is None:  # no class-level value: the dataclass field stays required
            raise AttributeError(self.name)
        values, index, columns, label = obj.__dict__[self.slot]
        if columns is None:
            return pd.Series(values, index=index, name=label, copy=False)
        return pd.DataFrame(values, index=index, columns=columns, copy=False)

    def __set__(self, obj: Any, value: Any) -> None:
        if self.slot in obj.__dict__:
            raise FrozenInstanceError(f"cannot assign to field {self.name!r}")
        if isinstance(value, pd.DataFrame):
            values = np.array(value.to_numpy(dtype=float), dtype=float, copy=True)
            frozen = (values, value.index, value.columns, None)
        else:
            series = value if isinstance(value, pd.Series) else pd.Series(value)
            values = np.array(series.to_numpy(dtype=float), dtype=float, copy=True)
            frozen = (values, series.index, None, series.name)
        values.flags.writeable = False
        obj.__dict__[self.slot] = frozen


def _read_only(value: Any) -> Any:
    """A read-only view of an array (or a Series over one) kept in ``Result.extra``."""
    if isinstance(value, np.ndarray) and value.dtype != object:
        view = value.view()
        view.flags.writeable = False
        return view
    if isinstance(value, pd.Series) and isinstance(value.dtype, np.dtype) and value.dtype != object:
        values = value.to_numpy().view()
        values.flags.writeable = False
        return pd.Series(values, index=value.index, name=value.name, copy=False)
    return value


@dataclass(frozen=True)
class CovarianceUpdate:
    """What changes in a :class:`Result` under another covariance (see :meth:`Result.vcov`).

    Attributes
    ----------
    cov : (k, k) array
        The new covariance of ``params`` (same order).
    vcov_info : VcovInfo
        Its description; ``details["notes"]`` are the audit notes that belong to the covariance.
    stats : mapping
        Statistics that depend on the covariance (first-stage F, instrument diagnostics), new values.
    stat_keys : tuple of str
        Every ``stats`` key that depends on the covariance (removed when absent from ``stats``).
    extra : mapping
        ``extra`` entries that depend on the covariance, new values.
    data_hash : str or None
        The hash of the estimation data when it covers the clustering variables.
    """

    cov: np.ndarray
    vcov_info: VcovInfo
    stats: Mapping[str, Any] = field(default_factory=dict)
    stat_keys: tuple[str, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)
    data_hash: str | None = None


#: ``source(vcov, ssc) -> CovarianceUpdate``: how an estimator recomputes its covariance.
CovarianceSource = Callable[[Any, str], CovarianceUpdate]


@dataclass(frozen=True, eq=False)
class Result:
    """Immutable estimation result.

    Parameters
    ----------
    params : pandas.Series
        Coefficients indexed by term name (read-only; see the module docstring).
    cov : pandas.DataFrame
        Covariance matrix of ``params``, labelled on both axes (read-only).
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
        Estimator-specific objects (marginal effects, fitted values, baseline hazard); arrays
        and Series in it are read-only.
    predictor : callable, optional
        ``predictor(result, data)`` behind :meth:`predict`.
    covariance_source : callable, optional
        ``covariance_source(vcov, ssc)`` behind :meth:`vcov`, set by the estimators that can
        recompute their covariance (``feols``, ``iv``, ``panel``).
    """

    params: pd.Series = _ReadOnlyLabelled()  # type: ignore[assignment]
    cov: pd.DataFrame = _ReadOnlyLabelled()  # type: ignore[assignment]
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
    predictor: Any = field(default=None, repr=False)
    covariance_source: CovarianceSource | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        k = len(self._params_frozen[0])
        if self._cov_frozen[0].shape != (k, k):
            raise ValueError(f"cov has shape {self._cov_frozen[0].shape} for {k} coefficients")
        object.__setattr__(self, "groups", FrozenMapping(dict(self.groups)))
        object.__setattr__(self, "stats", FrozenMapping(dict(self.stats)))
        object.__setattr__(self, "extra", FrozenMapping({k: _read_only(v) for k, v in self.extra.items()}))

    # -- derived quantities -------------------------------------------------------------
    @property
    def bse(self) -> pd.Series:
        """Standard errors (a new Series on every access)."""
        cov = self._cov_frozen[0]
        return pd.Series(np.sqrt(np.clip(np.diag(cov), 0, None)), index=self._params_frozen[1],
                         name="std_error")

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

    def vcov(self, vcov: str | Mapping[str, str], ssc: str | None = None) -> Result:
        """The same estimates under another covariance, as a NEW result (this one is unchanged).

        Parameters
        ----------
        vcov : ``"iid"``, ``"HC1"``, ``"HC3"``, ``{"CRV1": "firm"}``, ``{"CRV1": "firm+year"}``
            or ``{"CRV3": "firm"}`` (see :mod:`cluster_econ.estimate.covariance`).
        ssc : ``"stata"``, ``"fixest"`` or ``"none"``; default the preset of this result.

        Returns
        -------
        Result
            Coefficients, sample and fit statistics as here; the covariance, ``vcov_info``, the
            statistics that depend on the covariance (first-stage F and instrument diagnostics of
            IV fits) and the covariance notes as a fresh fit with ``vcov=`` and ``ssc=`` gives them.
            Clustering variables are read from the data the model was fitted on; they must have
            no missing value in the estimation sample.

        Raises
        ------
        EstimationError
            For estimators that do not keep what the computation needs (maximum-likelihood models,
            survey designs, bootstrap covariances): refit with ``vcov=`` instead.
        """
        from cluster_econ.errors import EstimationError

        if self.covariance_source is None:
            raise EstimationError(
                f"{self.model}: vcov() is not available for this estimator (it keeps only the "
                f"covariance it computed: {self.vcov_info.describe()}); fit the model again with "
                f"vcov={vcov!r}")
        upd = self.covariance_source(vcov, self.vcov_info.ssc if ssc is None else ssc)
        k = len(self._params_frozen[0])
        if upd.cov.shape != (k, k):
            raise EstimationError(f"{self.model}: the recomputed covariance has shape {upd.cov.shape} "
                                  f"for {k} coefficients")
        stats = {key: v for key, v in self.stats.items() if key not in upd.stat_keys}
        stats.update(upd.stats)
        old_notes = set(self.vcov_info.details.get("notes", ()))
        notes = (*(n for n in self.audit.notes if n not in old_notes),
                 *upd.vcov_info.details.get("notes", ()))
        names = self._params_frozen[1]
        return dataclasses.replace(
            self, cov=pd.DataFrame(upd.cov, index=names, columns=names), vcov_info=upd.vcov_info,
            stats=stats, extra={**self.extra, **upd.extra},
            audit=dataclasses.replace(self.audit, notes=notes),
            data_hash=upd.data_hash if upd.data_hash is not None else self.data_hash)

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

    def wald_test(self, R: np.ndarray | pd.DataFrame | str, q: np.ndarray | float | None = None) -> TestResult:
        """Wald test of ``R @ params = q`` (see :func:`cluster_econ.estimate.inference.wald_test`).

        ``R`` may be a matrix (rows are restrictions) or a string such as ``"a - b = 0"`` with one
        restriction per ``;`` naming terms of ``params``. Returns a :class:`TestResult`: F with
        ``df_resid`` denominator degrees of freedom if set, else chi-square.
        """
        from cluster_econ.estimate.inference import wald_test  # local: avoids a cycle

        return wald_test(self, R, q)


# ----------------------------------------------------------------------------------------------
# tests
# ----------------------------------------------------------------------------------------------
#: Dict keys of the tests that returned dicts before 0.2, and the attribute each maps to.
_OLD_KEYS = {"df_num": "df", "df": "df", "df_denom": "df_denom", "statistic": "statistic",
             "p_value": "p_value", "distribution": "distribution", "note": "note"}


@dataclass(frozen=True)
class TestResult:
    """The outcome of a hypothesis test.

    Attributes
    ----------
    test : str
        What was tested, for example ``"Wald"``, ``"Hausman"``, ``"log-rank"``.
    statistic : float
        The test statistic (F or chi-square).
    df : float
        Degrees of freedom of the reference distribution (the numerator's for ``F``).
    p_value : float
        Upper-tail probability of ``statistic`` under the null.
    distribution : str
        ``"F"`` or ``"chi2"``.
    df_denom : float or None
        Denominator degrees of freedom of ``F``; ``None`` for chi-square.
    null : str
        The null hypothesis in words.
    note : str
        Anything a reader needs (a generalized inverse used, a statistic not defined).
    details : mapping
        Test-specific objects (the coefficients compared, the table of observed and expected
        counts, the row audit).

    Dict-style access (``t["p_value"]``, ``t["df_num"]``) still works in this release, with a
    ``DeprecationWarning``: use the attributes.
    """

    __test__ = False  # not a pytest test class

    test: str
    statistic: float
    df: float
    p_value: float
    distribution: str
    df_denom: float | None = None
    null: str = ""
    note: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "details", FrozenMapping(dict(self.details)))

    def tidy(self) -> pd.DataFrame:
        """One row: test, statistic, df, df_denom, p_value, distribution, null, note."""
        return pd.DataFrame([{"test": self.test, "statistic": self.statistic, "df": self.df,
                              "df_denom": self.df_denom, "p_value": self.p_value,
                              "distribution": self.distribution, "null": self.null, "note": self.note}])

    def summary(self) -> str:
        """One line, for example ``Wald test: F(2, 97) = 3.412, p = 0.0370``, then the null and note."""
        if self.distribution == "F" and self.df_denom is not None:
            ref = f"F({_fmt_df(self.df)}, {_fmt_df(self.df_denom)})"
        else:
            ref = f"{self.distribution}({_fmt_df(self.df)})"
        lines = [f"{self.test} test: {ref} = {self.statistic:.4g}, p = {self.p_value:.4g}"]
        if self.null:
            lines.append(f"H0: {self.null}")
        if self.note:
            lines.append(f"note: {self.note}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.summary()

    def __getitem__(self, key: str) -> Any:
        warnings.warn(f"{self.test} test results are no longer dicts: use .{_OLD_KEYS.get(key, key)} "
                      f"instead of [{key!r}]", DeprecationWarning, stacklevel=2)
        if key in _OLD_KEYS:
            return getattr(self, _OLD_KEYS[key])
        if key in self.details:
            return self.details[key]
        raise KeyError(key)


def _fmt_df(df: float) -> str:
    return str(int(df)) if math.isfinite(df) and float(df).is_integer() else f"{df:.4g}"
