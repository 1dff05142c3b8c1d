"""Results of proposition tests: checks, verdicts, one result per proposition and the family.

The verdict rule (an intersection-union test). A proposition is decided by one or more *checks*,
each a one-sided test of a coefficient or contrast ``theta`` against a null value ``theta_0`` in
the direction the claim predicts. With one-sided p-values ``p_j`` (``H0: sign * (theta_j -
theta_0) <= 0``) and level ``alpha``:

- **supported** if every check has ``p_j < alpha`` (each estimate on the predicted side and
  significant); the proposition's p-value is ``max_j p_j``, which is a valid level-``alpha`` test of
  the intersection of the claims;
- **contradicted** if some check is significant on the *opposite* side (its opposite one-sided
  p-value is below ``alpha``);
- **inconclusive** otherwise;
- **cannot test** when the data the proposition needs are absent (``extra["reason"] = "data
  missing"``) or the data cannot support its models (too few rows, a phase without
  observations, a model that cannot be estimated: the package's own errors, ``"not
  estimable"``, with the message);
- **error** when its code failed (any other exception: a bug, never reported as missing data).

Power. Every verdict check reports its *minimum detectable effect* (the true value of the checked
quantity, measured from its null, that a one-sided level-``alpha`` test detects with probability
0.8: ``(t_{1-alpha} + t_{0.8}) * se`` with the check's reference distribution, the usual planning
approximation) and, when the proposition names a reference effect for it
(``Proposition.reference_effects``, the value the demo design's full model implies), its power
against that effect: ``P(T' > t_{1-alpha})`` with ``T'`` noncentral t (normal when the check has no
degrees of freedom) of noncentrality ``sign * (reference - null) / se``, the estimated standard
error standing in for the true one. The verdict's power is the product of its checks' powers:
the exact power of the intersection-union rule when the checks are independent, and a lower
bound when they are positively dependent. It says whether the data could have supported the
claim had the reference model been true: a verdict that is not "supported" with low power is
no evidence against the claim.

Family-wise adjustment across propositions (:class:`HypothesisFamily`): Holm's step-down
(family-wise error rate) and Benjamini-Hochberg (false discovery rate), computed here
(:func:`holm`, :func:`benjamini_hochberg`; equal to statsmodels' ``multipletests`` to 1e-12, see
the tests) because statsmodels' Holm runs a full garbage collection on every call, a tenth of a
second in a busy process, paid by every verdict of a Monte Carlo. Romano-Wolf stepdown needs a
joint bootstrap of all the propositions, which this package does not have; it is not reported.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["VERDICTS", "Check", "HypothesisFamily", "HypothesisResult", "Outcome", "decide", "rule_text"]

VERDICTS = ("supported", "contradicted", "inconclusive", "cannot test", "error")
#: why a proposition could not be tested (``HypothesisResult.extra["reason"]``)
CANNOT_TEST_REASONS = ("data missing", "not estimable")
ESTIMATE_COLUMNS = ["phase", "term", "estimate", "std_error", "p_value", "n", "model"]


@dataclass(frozen=True)
class Check:
    """One one-sided test in a verdict rule.

    ``p_value`` is one-sided in the predicted direction; ``p_opposite`` in the other.
    ``role="verdict"`` checks decide the verdict; ``"descriptive"`` ones are only reported.
    """

    name: str
    description: str
    estimate: float
    std_error: float
    expected_sign: int
    null: float = 0.0
    df: float | None = None
    role: str = "verdict"
    n: int = 0
    model: str = ""

    @property
    def statistic(self) -> float:
        if not np.isfinite(self.std_error) or self.std_error <= 0:
            return float("nan")
        return (self.estimate - self.null) / self.std_error

    def _sf(self, z: float) -> float:
        from scipy import stats

        if not np.isfinite(z):
            return float("nan")
        return float(stats.t.sf(z, self.df) if self.df is not None else stats.norm.sf(z))

    @property
    def p_value(self) -> float:
        return self._sf(self.expected_sign * self.statistic)

    @property
    def p_opposite(self) -> float:
        return self._sf(-self.expected_sign * self.statistic)

    def _quantile(self, q: float) -> float:
        from scipy import stats

        return float(stats.t.ppf(q, self.df) if self.df is not None else stats.norm.ppf(q))

    def mde(self, alpha: float, power: float = 0.8) -> float:
        """Minimum detectable effect (distance from the null) at level ``alpha`` with ``power``."""
        if not np.isfinite(self.std_error) or self.std_error <= 0:
            return float("nan")
        return (self._quantile(1 - alpha) + self._quantile(power)) * self.std_error

    def power_against(self, value: float, alpha: float) -> float:
        """Probability that the one-sided test rejects at level ``alpha`` when the checked quantity
        equals ``value`` (noncentral t with the check's degrees of freedom; normal without)."""
        from scipy import stats

        if not np.isfinite(self.std_error) or self.std_error <= 0 or not np.isfinite(value):
            return float("nan")
        nc = self.expected_sign * (value - self.null) / self.std_error
        crit = self._quantile(1 - alpha)
        if self.df is None:
            return float(stats.norm.sf(crit - nc))
        return float(stats.nct.sf(crit, self.df, nc))

    def as_dict(self) -> dict[str, Any]:
        return {"check": self.name, "description": self.description, "estimate": self.estimate,
                "std_error": self.std_error, "null": self.null, "statistic": self.statistic,
                "expected_sign": "+" if self.expected_sign > 0 else "-", "p_value": self.p_value,
                "df": self.df, "role": self.role, "n": self.n, "model": self.model}


@dataclass
class Outcome:
    """What a runner returns: checks, estimate rows, the underlying Results and notes."""

    checks: list[Check] = field(default_factory=list)
    estimates: list[dict[str, Any]] = field(default_factory=list)
    results: list[Any] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


def rule_text(checks: Sequence[Check], alpha: float) -> str:
    """The verdict rule in words for these checks."""
    parts = [f"{c.description} ({'>' if c.expected_sign > 0 else '<'} {c.null:g})"
             for c in checks if c.role == "verdict"]
    if not parts:
        return "no verdict check"
    return (f"supported if every one-sided p-value is below {alpha:g} with the expected sign: "
            + "; ".join(parts) + f". Contradicted if any is significant at {alpha:g} with the opposite "
            "sign; else inconclusive. The p-value is the largest one-sided p-value (intersection-union test).")


def decide(checks: Sequence[Check], alpha: float) -> tuple[str, float]:
    """Verdict and intersection-union p-value of the verdict checks."""
    v = [c for c in checks if c.role == "verdict"]
    if not v:
        return "inconclusive", float("nan")
    p = np.array([c.p_value for c in v], dtype=float)
    popp = np.array([c.p_opposite for c in v], dtype=float)
    p_iu = float(np.nanmax(p)) if np.isfinite(p).any() else float("nan")
    if np.isnan(p).any():
        p_iu = float("nan")
    if (popp < alpha).any():
        return "contradicted", p_iu
    if np.isfinite(p).all() and (p < alpha).all():
        return "supported", p_iu
    return "inconclusive", p_iu


@dataclass(frozen=True, eq=False)
class HypothesisResult:
    """The test of one proposition.

    Attributes
    ----------
    id, title : str
    verdict : str
        ``"supported"``, ``"contradicted"``, ``"inconclusive"`` or ``"cannot test"``.
    rule : str
        The verdict rule in words.
    estimates : DataFrame
        ``phase, term, estimate, std_error, p_value, n, model`` (two-sided p-values of the
        reported coefficients; contrasts and checks carry their one-sided p-values in
        ``checks``).
    checks : DataFrame
        The one-sided tests of the verdict rule.
    contrast : dict
        The first verdict check: ``estimate, se, statistic, p_value`` (one-sided).
    p_value : float
        Intersection-union p-value of the verdict checks.
    p_adjusted : dict
        ``{"holm": ..., "bh": ...}`` filled by :func:`test_all` across the family.
    results : tuple
        The underlying :class:`~cluster_econ.estimate.result.Result` objects.
    message : str
    phase_source : str
        Where the phases came from.
    spec : Proposition
    """

    id: str
    title: str
    verdict: str
    rule: str
    estimates: pd.DataFrame
    checks: pd.DataFrame
    contrast: dict[str, float]
    p_value: float
    p_adjusted: dict[str, float]
    results: tuple[Any, ...]
    message: str
    phase_source: str
    spec: Any = None
    extra: dict[str, Any] = field(default_factory=dict)
    power: float = float("nan")

    def tidy(self) -> pd.DataFrame:
        """The estimates with the proposition's id and verdict on every row."""
        est = self.estimates.copy()
        est.insert(0, "verdict", self.verdict)
        est.insert(0, "id", self.id)
        return est

    def row(self) -> dict[str, Any]:
        """One summary row (for :meth:`HypothesisFamily.tidy`)."""
        return {"id": self.id, "title": self.title, "verdict": self.verdict,
                "test": self.contrast.get("description", ""), "estimate": self.contrast.get("estimate", np.nan),
                "std_error": self.contrast.get("se", np.nan), "p_value": self.p_value,
                "p_holm": self.p_adjusted.get("holm", np.nan), "p_bh": self.p_adjusted.get("bh", np.nan),
                "power": self.power, "phase_source": self.phase_source, "message": self.message}

    @property
    def summary_line(self) -> str:
        """One line: verdict and the key estimate (or the message)."""
        est = self.contrast.get("estimate")
        if est is not None and np.isfinite(est):
            n = int((self.checks["role"] == "verdict").sum()) if len(self.checks) else 0
            more = f"; p over all {n} checks = {self.p_value:.3g}" if n > 1 else ""
            se, p1 = self.contrast.get("se", np.nan), self.contrast.get("p_value", np.nan)
            pw = f"; power {self.power:.2f} against the reference effects" if np.isfinite(self.power) else ""
            return (f"{self.verdict}: {self.contrast.get('description', '')} = {est:.4g} "
                    f"(se {se:.3g}, one-sided p = {p1:.3g}{more}{pw})")
        return f"{self.verdict}: {self.message}"

    def summary(self) -> str:
        lines = [f"{self.id} {self.title}: {self.verdict.upper()}", f"  rule: {self.rule}",
                 f"  phases: {self.phase_source}"]
        if self.message:
            lines.append(f"  {self.message}")
        if len(self.checks):
            cols = [c for c in ("check", "estimate", "std_error", "statistic", "p_value", "mde", "power", "role",
                                "n") if c in self.checks.columns]
            tab = self.checks[cols]
            lines.append(tab.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
        if np.isfinite(self.p_value):
            adj = ", ".join(f"{k}={v:.4g}" for k, v in self.p_adjusted.items())
            lines.append(f"  p-value {self.p_value:.4g}" + (f" (adjusted: {adj})" if adj else ""))
        if np.isfinite(self.power):
            lines.append(f"  power {self.power:.3f} against the reference effects (product of the checks' "
                         "powers; see the mde and power columns)")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.summary()


def cannot_test(spec: Any, message: str, phase_source: str = "", reason: str = "data missing") -> HypothesisResult:
    """A result without a verdict because the data are missing or cannot support the models."""
    return HypothesisResult(
        id=spec.id, title=spec.title, verdict="cannot test", rule="", estimates=pd.DataFrame(columns=ESTIMATE_COLUMNS),
        checks=pd.DataFrame(columns=["check", "estimate", "std_error", "statistic", "p_value", "role", "n"]),
        contrast={}, p_value=float("nan"), p_adjusted={}, results=(), message=message,
        phase_source=phase_source, spec=spec, extra={"reason": reason})


def errored(spec: Any, exc: BaseException, phase_source: str = "") -> HypothesisResult:
    """The result of a runner that raised: ``"cannot test"`` (reason ``"not estimable"``) for the
    package's own errors, which describe what the data cannot support; verdict ``"error"`` for
    any other exception, which is a fault in the code (the exception is kept in ``extra``)."""
    from cluster_econ.errors import ClusterEconError

    if isinstance(exc, ClusterEconError):
        res = cannot_test(spec, f"cannot test {spec.id}: {exc}", phase_source, reason="not estimable")
        res.extra["exception"] = exc
        return res
    import traceback

    where = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    at = f" (at {where.filename.rsplit('/', 1)[-1]}:{where.lineno})" if where else ""
    res = cannot_test(spec, f"error in {spec.id}: {type(exc).__name__}: {exc}{at}", phase_source, reason="error")
    res = dataclasses.replace(res, verdict="error")
    res.extra["error"] = exc
    return res


def holm(p: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values: ``max_{j <= i} min(1, (m - j + 1) p_(j))`` in the
    order of the sorted p-values, returned in the input order."""
    p = np.asarray(p, dtype=float)
    m = p.size
    order = np.argsort(p, kind="mergesort")
    adj = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out = np.empty(m)
    out[order] = adj
    return out


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values: ``min_{j >= i} min(1, m p_(j) / j)`` in the order of
    the sorted p-values, returned in the input order."""
    p = np.asarray(p, dtype=float)
    m = p.size
    order = np.argsort(p, kind="mergesort")
    ranked = p[order] * m / np.arange(1, m + 1)
    adj = np.minimum(1.0, np.minimum.accumulate(ranked[::-1])[::-1])
    out = np.empty(m)
    out[order] = adj
    return out


class HypothesisFamily(Sequence[HypothesisResult]):
    """The results of several propositions, with family-wise adjusted p-values."""

    def __init__(self, results: Sequence[HypothesisResult], phase_source: str = "") -> None:
        self._results = list(results)
        self.phase_source = phase_source
        self._adjust()

    def _adjust(self) -> None:
        p = np.array([r.p_value for r in self._results], dtype=float)
        ok = np.isfinite(p)
        if not ok.any():
            return
        holm_p = holm(p[ok])
        bh = benjamini_hochberg(p[ok])
        for r, h, b in zip([r for r, k in zip(self._results, ok, strict=True) if k], holm_p, bh, strict=True):
            r.p_adjusted.update(holm=float(h), bh=float(b))

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            for r in self._results:
                if r.id == key:
                    return r
            raise KeyError(key)
        return self._results[key]

    def __len__(self) -> int:
        return len(self._results)

    def __iter__(self) -> Iterator[HypothesisResult]:
        return iter(self._results)

    @property
    def errors(self) -> list[HypothesisResult]:
        """Results whose code failed (verdict ``"error"``), as opposed to those that cannot be
        tested because of their data (verdict ``"cannot test"``)."""
        return [r for r in self._results if r.verdict == "error"]

    def tidy(self) -> pd.DataFrame:
        """One row per proposition: verdict, key estimate, p-values (raw, Holm, BH), message."""
        return pd.DataFrame([r.row() for r in self._results])

    def estimates(self) -> pd.DataFrame:
        """All estimate rows of all propositions."""
        frames = [r.tidy() for r in self._results if len(r.estimates)]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["id", "verdict",
                                                                                         *ESTIMATE_COLUMNS])

    def summary(self) -> str:
        lines = [f"{len(self)} propositions; phases: {self.phase_source}",
                 "family-wise adjustment: Holm (FWER) and Benjamini-Hochberg (FDR); Romano-Wolf not "
                 "available (needs a joint bootstrap of all propositions)"]
        for r in self._results:
            lines.append(f"  {r.id:4s} {r.title}: {r.summary_line}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.summary()
