"""The propositions of cluster-based industrial development as named hypothesis tests.

>>> import cluster_econ as ce
>>> panel = ce.datasets.demo()
>>> r = ce.hypotheses.test(panel, "P4")               # doctest: +SKIP
>>> r.verdict, r.contrast["estimate"]                 # doctest: +SKIP
>>> fam = ce.hypotheses.test_all(panel)               # doctest: +SKIP
>>> fam.tidy()                                        # doctest: +SKIP

Each proposition (P1 founders, P2 spin-off imitation, P3 stagnant expansion, P4 education and
innovation, P5 education and performance, P6 shake-out, P7 sources of productivity growth, P8
institutions and size, P9 management training) is a :class:`Proposition` in a registry: run it as
it is, change a copy (``get("P4").replace(outcome="own_brand", estimator="logit")``) or register
your own (:func:`register`). :func:`test` returns a :class:`HypothesisResult` with a verdict
(``supported``, ``contradicted``, ``inconclusive``, ``cannot test``) decided by a rule stated in
words; :func:`test_all` a :class:`HypothesisFamily` with Holm and Benjamini-Hochberg adjusted
p-values. Definitions of every derived variable (phases, entry, schooling, productivity) are in
:mod:`cluster_econ.hypotheses.data`; the verdict rule in :mod:`cluster_econ.hypotheses.result`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cluster_econ.errors import ConfigError, InputError
from cluster_econ.hypotheses.data import AnalysisData, build
from cluster_econ.hypotheses.propositions import register_builtin
from cluster_econ.hypotheses.result import (
    VERDICTS,
    Check,
    HypothesisFamily,
    HypothesisResult,
    Outcome,
    cannot_test,
    decide,
    errored,
    rule_text,
)
from cluster_econ.hypotheses.runners import RUNNERS, register_runner
from cluster_econ.hypotheses.spec import Proposition, get, ids, register, registry, unregister

__all__ = [
    "VERDICTS",
    "AnalysisData",
    "Check",
    "HypothesisFamily",
    "HypothesisResult",
    "Outcome",
    "Proposition",
    "falsification",
    "get",
    "ids",
    "missing_data",
    "power",
    "prepare",
    "register",
    "register_runner",
    "registry",
    "test",
    "test_all",
    "unregister",
]

register_builtin()


def power(*args: Any, **kwargs: Any) -> Any:
    """Power and size for a survey design (see :func:`cluster_econ.hypotheses.calculator.power`)."""
    from cluster_econ.hypotheses.calculator import power as run

    return run(*args, **kwargs)


def falsification(*args: Any, **kwargs: Any) -> Any:
    """Run the falsification matrix (see :func:`cluster_econ.hypotheses.falsification.falsification`)."""
    from cluster_econ.hypotheses.falsification import falsification as run

    return run(*args, **kwargs)


def _require_panel(panel: Any, where: str) -> None:
    """Raise :class:`InputError` unless ``panel`` is a :class:`~cluster_econ.Panel`."""
    from cluster_econ.panel.container import Panel

    if isinstance(panel, Panel):
        return
    what = type(panel).__module__ + "." + type(panel).__qualname__
    if type(panel).__module__ == "builtins":
        what = type(panel).__qualname__
    hint = ""
    if what == "pandas.core.frame.DataFrame":
        what = "a pandas DataFrame"
        hint = (" The propositions read several canonical tables at once; build a Panel from them "
                "(cluster_econ.Panel({table name: DataFrame, ...})) or read a panel folder with "
                "cluster_econ.read_panel(DIR).")
    raise InputError(f"{where}: expected a cluster_econ Panel as the panel argument, got {what}.{hint}")


def prepare(panel: Any, phases: Any = None, by: str = "phase", stagnation: str = "quantity_expansion",
            productivity: Any = None) -> AnalysisData:
    """Build the analysis data once (phases, firm-year frame, productivity) for several tests.

    Parameters are those of :func:`test`. Pass the result as ``data=`` to :func:`test`.
    """
    _require_panel(panel, "prepare")
    return build(panel, phases=phases, by=by, stagnation=stagnation, productivity_method=productivity)


def missing_data(panel: Any, spec: Proposition) -> list[str]:
    """The ``table.column`` entries of ``spec.requires`` the panel lacks (absent or all missing).

    ``deflator.price_index`` counts as present when every enterprise-year is already in real
    terms (``enterprise_year.price_base_year`` filled in).
    """
    _require_panel(panel, "missing_data")
    out = []
    for req in spec.requires:
        table, column = req.split(".")
        if panel.has_column(table, column):
            continue
        if req == "deflator.price_index":
            ey = panel.enterprise_year
            if "price_base_year" in ey.columns and len(ey) and ey["price_base_year"].notna().all():
                continue
        out.append(req)
    return out


def _spec_of(prop: str | Proposition, overrides: dict[str, Any]) -> Proposition:
    spec = prop if isinstance(prop, Proposition) else get(prop)
    return spec.replace(**overrides) if overrides else spec


# built-in runners whose verdict compares the two phases of ``spec.contrast``
CONTRAST_RUNNERS = frozenset({"interaction", "P2", "P3", "P6", "P7", "P8"})


def _missing_phases(spec: Proposition, data: AnalysisData) -> list[str]:
    """Phases the proposition's contrast compares that no cluster-year of the data is in."""
    if callable(spec.runner) or spec.runner_name not in CONTRAST_RUNNERS:
        return []
    wanted = [p for p in (spec.contrast or ()) if isinstance(p, str)]
    if not wanted or "phase" not in data.cluster_year.columns:
        return []
    present = set(data.cluster_year["phase"].dropna().astype(str))
    return [p for p in wanted if p not in present]


# propositions whose checks read the estimated productivity (they need value added and capital)
def _needs_productivity(spec: Proposition) -> bool:
    return "enterprise_year.capital_stock" in spec.requires


def _run(spec: Proposition, data: AnalysisData) -> HypothesisResult:
    runner = spec.runner if callable(spec.runner) else RUNNERS.get(spec.runner_name)
    if runner is None:
        raise ConfigError(f"{spec.id}: no runner {spec.runner_name!r}; registered runners: {', '.join(RUNNERS)}")
    absent = _missing_phases(spec, data)
    if absent:
        return cannot_test(spec, f"cannot test {spec.id}: no cluster-year of the panel is in "
                                 f"{' or '.join(absent)} ({data.phase_source})", data.phase_source)
    prod = data.productivity
    if _needs_productivity(spec) and prod is not None and prod.status != "ok":
        return cannot_test(spec, f"cannot test {spec.id}: {prod.note}", data.phase_source, reason="not estimable")
    out: Outcome = runner(spec, data)
    import numpy as np
    import pandas as pd

    from cluster_econ.hypotheses.result import ESTIMATE_COLUMNS

    verdict, p = decide(out.checks, spec.alpha)
    checks = pd.DataFrame([c.as_dict() for c in out.checks])
    if len(checks):
        # minimum detectable effect and power against the reference effect (verdict checks)
        ref = spec.reference_effects
        checks["mde"] = [c.mde(spec.alpha) if c.role == "verdict" else np.nan for c in out.checks]
        checks["power"] = [c.power_against(ref[c.name], spec.alpha) if c.role == "verdict" and c.name in ref
                           else np.nan for c in out.checks]
    verdict_power = checks.loc[checks["role"] == "verdict", "power"] if len(checks) else pd.Series(dtype=float)
    power = float(verdict_power.prod()) if len(verdict_power) and verdict_power.notna().all() else float("nan")
    first = next((c for c in out.checks if c.role == "verdict"), None)
    contrast = {} if first is None else {"description": first.description, "estimate": first.estimate,
                                         "se": first.std_error, "statistic": first.statistic,
                                         "p_value": first.p_value}
    est = pd.DataFrame(out.estimates, columns=ESTIMATE_COLUMNS)
    notes = [*out.notes]
    for res in out.results:  # what the estimators noted (separation, dropped regressors), once each
        for note in getattr(getattr(res, "audit", None), "notes", ()):
            if note not in notes and any(k in note for k in ("perfect", "separat", "collinear", "converge")):
                notes.append(note)
    if prod is not None and _needs_productivity(spec):
        notes.append(f"productivity: {prod.note}; {prod.price}")
    return HypothesisResult(
        id=spec.id, title=spec.title, verdict=verdict, rule=rule_text(out.checks, spec.alpha), estimates=est,
        checks=checks, contrast=contrast, p_value=p, p_adjusted={}, results=tuple(out.results),
        message="; ".join(notes), phase_source=data.phase_source, spec=spec, extra=dict(out.extra), power=power)


def test(panel: Any, prop: str | Proposition = "P4", by: str = "phase", phases: Any = None, *,
         data: AnalysisData | None = None, stagnation: str = "quantity_expansion",
         productivity: Any = None, **overrides: Any) -> HypothesisResult:
    """Test one proposition on a panel.

    Parameters
    ----------
    panel : Panel
    prop : str or Proposition
        Registered id (``"P4"``) or a specification.
    by : str
        The cluster_year column holding the phase labels (default ``"phase"``).
    phases : None, "column", "rules", "breaks", "hmm" or DataFrame
        Where phases come from. ``None``: ``cluster_year[by]`` when present (the user's or true
        phases), else detected by the rules method; the source is recorded in ``phase_source``.
    data : AnalysisData, optional
        Prepared by :func:`prepare` (then ``phases``, ``by``, ``stagnation`` and ``productivity``
        are ignored).
    stagnation : "quantity_expansion" or "separate"
        Analyse stagnation years as quantity expansion (default) or as a phase of their own.
    productivity : None, "dynamic_panel", "cost_share", "feols" or a pair (b_l, b_k)
        How the productivity elasticities are obtained (:func:`cluster_econ.hypotheses.data.productivity`).
        ``None``: :data:`cluster_econ.hypotheses.data.DEFAULT_PRODUCTIVITY`, estimated from the
        panel by a dynamic-panel GMM robust to survey error in money; or median labour-cost shares
        with constant returns, fixed-effects estimates, or elasticities given by the user.
    **overrides
        Fields of the :class:`Proposition` to change for this run, for example
        ``outcome="own_brand", estimator="logit", controls=["log_l"]``.

    Returns
    -------
    HypothesisResult
        ``verdict="cannot test"`` with a message naming the missing ``table.column`` when the
        panel lacks data the proposition needs.

    Raises
    ------
    InputError
        When ``panel`` is not a :class:`~cluster_econ.Panel` (for example a single DataFrame).
    """
    _require_panel(panel, "test")
    spec = _spec_of(prop, overrides)
    missing = missing_data(panel, spec)
    if missing:
        return cannot_test(spec, f"cannot test {spec.id}: the panel has no {', '.join(missing)}")
    if data is None:
        data = prepare(panel, phases=phases, by=by, stagnation=stagnation, productivity=productivity)
    return _run(spec, data)


def test_all(panel: Any, ids: Sequence[str] | None = None, by: str = "phase", phases: Any = None, *,
             data: AnalysisData | None = None, stagnation: str = "quantity_expansion",
             productivity: Any = None, overrides: dict[str, dict[str, Any]] | None = None,
             progress: bool = False) -> HypothesisFamily:
    """Test several propositions (default: every registered one) on the same analysis data.

    A proposition whose data are missing gets ``"cannot test"`` (``extra["reason"] == "data
    missing"``); one whose runner raises one of the package's errors (the data cannot support
    its models: too few rows, an empty phase) gets ``"cannot test"`` with reason ``"not
    estimable"`` and the error's message; one whose runner raises any other exception (a fault in
    the code, never reported as missing data) gets the verdict ``"error"`` with the exception in
    ``extra["error"]`` (listed by :attr:`HypothesisFamily.errors`). The others still run.
    ``overrides`` maps ids to field changes. p-values are adjusted across the family (Holm, BH).
    """
    from cluster_econ.hypotheses.spec import ids as registered

    _require_panel(panel, "test_all")
    wanted = list(ids) if ids is not None else registered()
    overrides = overrides or {}
    if data is None:
        data = prepare(panel, phases=phases, by=by, stagnation=stagnation, productivity=productivity)
    results = []
    it = wanted
    if progress:
        from tqdm import tqdm
        it = tqdm(wanted, desc="propositions", unit="test")
    for pid in it:
        spec = _spec_of(pid, overrides.get(pid, {}))
        missing = missing_data(panel, spec)
        if missing:
            results.append(cannot_test(spec, f"cannot test {spec.id}: the panel has no {', '.join(missing)}",
                                       data.phase_source))
            continue
        try:
            results.append(_run(spec, data))
        except Exception as exc:  # one failing proposition must not stop the family; it is reported
            results.append(errored(spec, exc, data.phase_source))
    return HypothesisFamily(results, phase_source=data.phase_source)
