"""Propositions as declarative specifications, and the registry that names them.

A :class:`Proposition` says what is tested (the claim, the data it needs, the outcome,
regressors, controls, fixed effects, estimator, covariance, the coefficient or contrast that
carries the test and its expected sign) and which *runner* turns it into estimates. It is a
frozen dataclass: change a copy with :meth:`Proposition.replace`, add your own with
:func:`register`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from cluster_econ.errors import ConfigError

__all__ = ["Proposition", "get", "ids", "register", "registry", "unregister"]

PHASE_MODES = ("interacted", "by")


def _tuple(v: Any) -> tuple[str, ...]:
    if v is None:
        return ()
    if isinstance(v, str):
        return (v,)
    return tuple(v)


@dataclass(frozen=True)
class Proposition:
    """One testable proposition.

    Attributes
    ----------
    id : str
        Short name, for example ``"P4"``.
    title : str
        A few words.
    claim : str
        The claim in one sentence.
    requires : tuple of str
        ``"table.column"`` entries the test needs; if one is absent or empty the verdict is
        ``"cannot test"``.
    outcome : str
        Outcome column of the analysis frame (see :mod:`cluster_econ.hypotheses.data`), for
        example ``"new_product"``.
    regressors : tuple of str
        The regressors of interest (interacted with phase when ``phase_mode="interacted"``).
    controls : tuple of str
        Further regressors (terms of the safe formula grammar, for example ``"log_l"`` or
        ``"C(cluster_id)"``).
    fixed_effects : tuple of str
        Absorbed fixed effects (``"cluster_id^year"``, ``"enterprise_id"``).
    estimator : str
        ``"feols"``/``"lpm"`` (OLS with absorbed effects), ``"logit"``, ``"probit"``,
        ``"cloglog"``, ``"re"``, ``"mundlak"``, ``"pooled"``, ``"between"``, ``"cox"``, or what
        the runner accepts.
    vcov : str or mapping
        Covariance, default clustered by ``cluster_id`` (``{"CRV1": "cluster_id"}``).
    test : str
        The coefficient or contrast that decides the verdict, in words.
    expected_sign : int
        +1 or -1: the sign the claim predicts for that coefficient or contrast.
    phase_mode : str
        ``"interacted"`` (one model, regressors interacted with phase) or ``"by"`` (one model
        per phase).
    contrast : tuple of str
        The two phases compared, ``(high, low)``: the test is on ``beta_high - beta_low``.
    runner : str or callable
        Name of a registered runner (default: the id) or a function
        ``runner(spec, data) -> Outcome``.
    alpha : float
        Level of every one-sided test in the verdict rule.
    options : mapping
        Runner-specific settings (documented with each runner).
    mechanisms : tuple of str
        The simulator switches (:class:`cluster_econ.simulate.Switches`) that turn off the
        mechanism behind the claim: with any of them on, the proposition should not be supported
        (the falsification matrix checks this; the others are its *unrelated* switches).
    reference_effects : mapping
        ``{check name: effect}``: the value of each verdict check the reference model implies
        (the demo design's full model), against which every verdict reports its power.
    """

    id: str
    title: str
    claim: str
    requires: tuple[str, ...] = ()
    outcome: str = ""
    regressors: tuple[str, ...] = ()
    controls: tuple[str, ...] = ()
    fixed_effects: tuple[str, ...] = ()
    estimator: str = "feols"
    vcov: Any = field(default_factory=lambda: MappingProxyType({"CRV1": "cluster_id"}))
    test: str = ""
    expected_sign: int = 1
    phase_mode: str = "interacted"
    contrast: tuple[str, ...] = ("quality_improvement", "quantity_expansion")
    runner: str | Callable[..., Any] = ""
    alpha: float = 0.05
    options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    mechanisms: tuple[str, ...] = ()
    reference_effects: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        object.__setattr__(self, "reference_effects",
                           MappingProxyType({str(k): float(v) for k, v in dict(self.reference_effects).items()}))
        for name in ("requires", "regressors", "controls", "fixed_effects", "contrast", "mechanisms"):
            object.__setattr__(self, name, _tuple(getattr(self, name)))
        if isinstance(self.vcov, Mapping):
            object.__setattr__(self, "vcov", MappingProxyType(dict(self.vcov)))
        object.__setattr__(self, "options", MappingProxyType(dict(self.options)))
        if not self.id or not isinstance(self.id, str):
            raise ConfigError("a Proposition needs a non-empty string id")
        if self.expected_sign not in (1, -1):
            raise ConfigError(f"{self.id}: expected_sign must be +1 or -1, not {self.expected_sign!r}")
        if self.phase_mode not in PHASE_MODES:
            raise ConfigError(f"{self.id}: phase_mode must be one of {', '.join(PHASE_MODES)}")
        if not 0 < self.alpha < 1:
            raise ConfigError(f"{self.id}: alpha must lie between 0 and 1")
        for r in self.requires:
            if r.count(".") != 1:
                raise ConfigError(f"{self.id}: requires entry {r!r} must be 'table.column'")

    @property
    def runner_name(self) -> str:
        if callable(self.runner):
            return getattr(self.runner, "__name__", "custom")
        return self.runner or self.id

    def replace(self, **changes: Any) -> Proposition:
        """A copy with some fields changed; ``options`` given here are merged into the old ones.

        Example: ``spec.replace(controls=["log_l"], estimator="logit", outcome="own_brand")``.
        """
        names = {f.name for f in dataclasses.fields(self)}
        unknown = set(changes) - names
        if unknown:
            raise ConfigError(f"{self.id}: unknown fields {sorted(unknown)}; the fields are {', '.join(sorted(names))}")
        if "options" in changes:
            changes["options"] = {**dict(self.options), **dict(changes["options"] or {})}
        if "vcov" in changes and isinstance(changes["vcov"], Mapping):
            changes["vcov"] = dict(changes["vcov"])
        return dataclasses.replace(self, **changes)

    def describe(self) -> str:
        """Readable text of the specification."""
        lines = [f"{self.id}: {self.title}", f"  claim: {self.claim}"]
        rows = [("requires", ", ".join(self.requires)), ("outcome", self.outcome),
                ("regressors", ", ".join(self.regressors)), ("controls", ", ".join(self.controls)),
                ("fixed effects", ", ".join(self.fixed_effects)), ("estimator", self.estimator),
                ("covariance", str(dict(self.vcov)) if isinstance(self.vcov, Mapping) else str(self.vcov)),
                ("test", self.test), ("expected sign", "+" if self.expected_sign > 0 else "-"),
                ("phases", self.phase_mode), ("runner", self.runner_name),
                ("mechanisms (simulator switches)", ", ".join(self.mechanisms))]
        lines += [f"  {k}: {v}" for k, v in rows if v]
        if self.options:
            lines.append("  options: " + ", ".join(f"{k}={v!r}" for k, v in self.options.items()))
        return "\n".join(lines)


_REGISTRY: dict[str, Proposition] = {}


def register(prop: Proposition, overwrite: bool = False) -> Proposition:
    """Add a proposition to the registry (``overwrite=True`` replaces one of the same id)."""
    if not isinstance(prop, Proposition):
        raise ConfigError(f"register needs a Proposition, got {type(prop).__name__}")
    if prop.id in _REGISTRY and not overwrite:
        raise ConfigError(f"a proposition {prop.id!r} is already registered; pass overwrite=True to replace it")
    _REGISTRY[prop.id] = prop
    return prop


def unregister(prop_id: str) -> None:
    """Remove a proposition from the registry."""
    _REGISTRY.pop(prop_id, None)


def get(prop_id: str) -> Proposition:
    """The registered proposition with this id."""
    try:
        return _REGISTRY[prop_id]
    except KeyError:
        raise ConfigError(f"no proposition {prop_id!r}; registered: {', '.join(_REGISTRY)}") from None


def ids() -> list[str]:
    """Ids of the registered propositions, in registration order."""
    return list(_REGISTRY)


def registry() -> Mapping[str, Proposition]:
    """A read-only view of the registry."""
    return MappingProxyType(_REGISTRY)
