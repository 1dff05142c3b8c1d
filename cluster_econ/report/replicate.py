"""Run the exhibits in ``replication/`` and compare every number with its expected value.

An exhibit is one of two kinds, and says which (``kind`` in its ``config.yaml``):

* ``replication``: public data and a published source (``source``); it compares at least one
  number with its printing (``printed:``) and never with the simulator;
* ``simulation_check``: the synthetic demo universe checked against the simulator's own settings
  and the orderings the model implies; it reproduces nothing published and must not claim to.

Each exhibit is a folder (installed as package data under ``cluster_econ/replication/``) with

* ``config.yaml``: ``exhibit`` (the builder in :data:`cluster_econ.report.exhibits.BUILDERS`),
  ``kind``, ``source`` (replications), ``title``, output ``formats`` and ``figure_formats``, and
  builder settings;
* ``expected.yaml``: ``checks``, each naming a computed quantity (``value``), what it is
  compared with and the ``source`` of that expectation:

  - ``printed: "-.317"``: a published number as printed; the tolerance is half a unit in the last
    printed digit (unless ``tolerance`` is given);
  - ``expected: 0.5`` with ``tolerance``: a number;
  - ``quantity: linearmodels.re.grant.coef`` with ``tolerance``: another computed quantity (an
    independent implementation, or a truth quantity of the simulator);
  - ``truth: spinoff_share.quantity_expansion.simple`` with ``tolerance``: a value of
    :func:`cluster_econ.datasets.demo_truth` by key path;
  - ``relation: "<"`` or ``">"`` with ``than: <quantity or number>``: a strict ordering;
  - ``equals: "supported"``: a text (verdicts).

  ``tolerance`` is a number or ``{se: k}``: k times the standard error of ``value`` (the quantity
  ``<value>.se``), a tolerance that follows from the sample size;
* ``README.md``: the data editors' template README of the replication.

:func:`run` builds each exhibit, writes its tables (LaTeX, HTML, Markdown, CSV, Excel, Word) and
figures (PNG, SVG) atomically under ``out/<name>/``, checks every expectation and returns one
:class:`ExhibitOutcome` per replication. ``checks.csv`` and ``summary.csv`` go through
:func:`cluster_econ.io.atomic.atomic_write_csv` (atomic, spreadsheet formulas neutralised).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

from cluster_econ.errors import ConfigError
from cluster_econ.io.atomic import atomic_write_csv

__all__ = ["KINDS", "CheckOutcome", "ExhibitOutcome", "available", "describe", "replication_root", "run"]

TABLE_FORMATS = ("tex", "html", "md", "csv", "xlsx", "docx")
FIGURE_FORMATS = ("png", "svg")

KINDS = ("replication", "simulation_check")

_CONFIG_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["exhibit", "kind", "title"],
    "additionalProperties": False,
    "if": {"properties": {"kind": {"const": "replication"}}},
    "then": {"required": ["source"]},
    "properties": {
        "exhibit": {"type": "string"},
        "kind": {"enum": list(KINDS)},
        "source": {"type": "string", "minLength": 1},
        "title": {"type": "string"},
        "description": {"type": "string"},
        "data": {"type": "string"},
        "formats": {"type": "array", "items": {"enum": list(TABLE_FORMATS)}},
        "figure_formats": {"type": "array", "items": {"enum": list(FIGURE_FORMATS)}},
        "propositions": {"type": "array", "items": {"type": "string"}},
    },
}

_CHECK_KINDS = ("printed", "expected", "quantity", "truth", "than", "equals")
_EXPECTED_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["checks"],
    "additionalProperties": False,
    "properties": {
        "checks": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["name", "value", "source"],
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string"},
                    "value": {"type": "string"},
                    "source": {"type": "string"},
                    "printed": {"type": "string", "pattern": r"^[-+]?(\d+\.?\d*|\.\d+)$"},
                    "expected": {"type": "number"},
                    "quantity": {"type": "string"},
                    "truth": {"type": "string"},
                    "than": {"type": ["string", "number"]},
                    "relation": {"enum": ["<", ">"]},
                    "equals": {"type": "string"},
                    "tolerance": {"oneOf": [
                        {"type": "number", "minimum": 0},
                        {"type": "object", "required": ["se"], "additionalProperties": False,
                         "properties": {"se": {"type": "number", "exclusiveMinimum": 0}}},
                    ]},
                },
            },
        },
    },
}


@dataclass(frozen=True)
class CheckOutcome:
    """One compared number: what was computed, what was expected, within what, and why."""

    exhibit: str
    name: str
    quantity: str
    value: Any
    expected: str
    tolerance: str
    source: str
    passed: bool
    note: str = ""

    def line(self) -> str:
        status = "PASS" if self.passed else "FAIL"
        val = _fmt(self.value)
        text = (f"{status}  {self.exhibit}: {self.name}: {self.quantity} = {val}; expected {self.expected}"
                f" (tolerance {self.tolerance}); source: {self.source}")
        return text + (f"  [{self.note}]" if self.note else "")


@dataclass
class ExhibitOutcome:
    """The result of one replication: its checks, the files written, an error or a skip reason."""

    name: str
    title: str = ""
    kind: str = ""
    source: str = ""
    checks: list[CheckOutcome] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    error: str | None = None
    skipped: str | None = None
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return self.error is None and all(c.passed for c in self.checks)

    @property
    def n_failed(self) -> int:
        return sum(not c.passed for c in self.checks) + (self.error is not None)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "nan" if not math.isfinite(v) else f"{v:.6g}"
    return str(v)


def replication_root() -> Path:
    """The folder that holds the replications (package data)."""
    return Path(str(resources.files("cluster_econ") / "replication"))


def available(root: str | Path | None = None) -> list[str]:
    """Names of the replications: folders of ``root`` with a ``config.yaml``."""
    base = Path(root) if root is not None else replication_root()
    return sorted(p.name for p in base.iterdir() if p.is_dir() and (p / "config.yaml").is_file())


def describe(name: str, root: str | Path | None = None) -> tuple[str, str]:
    """The kind of an exhibit (``replication`` or ``simulation_check``) and its published source."""
    from cluster_econ.schema.yamlconf import YamlDocument

    base = Path(root) if root is not None else replication_root()
    data = YamlDocument.from_file(base / name / "config.yaml").data
    return str(data.get("kind", "?")), str(data.get("source", ""))


def _load(folder: Path) -> tuple[dict[str, Any], Any]:
    from cluster_econ.schema.yamlconf import YamlDocument

    cfg = YamlDocument.from_file(folder / "config.yaml")
    cfg.check(_CONFIG_SCHEMA)
    from cluster_econ.report.exhibits import BUILDERS

    if cfg.data["exhibit"] not in BUILDERS:
        raise cfg.fail(["exhibit"], f"unknown exhibit {cfg.data['exhibit']!r}; known: {', '.join(BUILDERS)}")
    exp = YamlDocument.from_file(folder / "expected.yaml")
    exp.check(_EXPECTED_SCHEMA)
    for i, chk in enumerate(exp.data["checks"]):
        kinds = [k for k in _CHECK_KINDS if k in chk]
        if len(kinds) != 1:
            raise exp.fail(["checks", i], f"give exactly one of {', '.join(_CHECK_KINDS)}; found "
                                          f"{', '.join(kinds) or 'none'}")
        kind = kinds[0]
        if kind == "than" and "relation" not in chk:
            raise exp.fail(["checks", i], "'than' needs 'relation' ('<' or '>')")
        if kind in ("expected", "quantity", "truth") and "tolerance" not in chk:
            raise exp.fail(["checks", i], f"'{kind}' needs a 'tolerance' (a number or {{se: k}})")
        if kind == "truth" and cfg.data["kind"] == "replication":
            raise exp.fail(["checks", i], "a replication compares with published numbers, not with the "
                                          "simulator's truth: make this exhibit a simulation_check")
        if kind == "printed" and cfg.data["kind"] == "simulation_check":
            raise exp.fail(["checks", i], "a simulation check has no published numbers to print: make this "
                                          "exhibit a replication (with its source) or use 'expected'")
    if cfg.data["kind"] == "replication" and not any("printed" in c for c in exp.data["checks"]):
        raise cfg.fail(["kind"], "a replication must compare at least one number with its published "
                                 "printing ('printed:' in expected.yaml); otherwise it is a simulation_check")
    return dict(cfg.data), exp


def _half_unit(printed: str) -> float:
    digits = printed.split(".")[1] if "." in printed else ""
    return 0.5 * 10.0 ** (-len(digits))


def _check(exhibit: str, chk: Mapping[str, Any], q: Mapping[str, Any]) -> CheckOutcome:
    name, key, source = chk["name"], chk["value"], chk["source"]

    def out(value: Any, expected: str, tol: str, passed: bool, note: str = "") -> CheckOutcome:
        return CheckOutcome(exhibit, name, key, value, expected, tol, source, bool(passed), note)

    if key not in q:
        return out("missing", "a computed value", "-", False, f"the exhibit computed no quantity {key!r}")
    value = q[key]
    if "equals" in chk:
        return out(value, repr(chk["equals"]), "exact", str(value) == chk["equals"])
    try:
        v = float(value)
    except (TypeError, ValueError):
        return out(value, "a number", "-", False, "the computed value is not a number")
    if "than" in chk:
        other = chk["than"] if isinstance(chk["than"], int | float) else q.get(chk["than"])
        if other is None:
            return out(v, f"{chk['relation']} {chk['than']}", "strict", False,
                       f"the exhibit computed no quantity {chk['than']!r}")
        w = float(other)
        ok = v < w if chk["relation"] == "<" else v > w
        shown = f"{chk['relation']} {_fmt(w)}" if isinstance(chk["than"], int | float) else \
            f"{chk['relation']} {chk['than']} = {_fmt(w)}"
        return out(v, shown, "strict (ordering)", ok and math.isfinite(v))
    if "printed" in chk:
        target = float(chk["printed"])
        tol = _half_unit(chk["printed"]) if isinstance(chk.get("tolerance"), Mapping | None) else float(
            chk["tolerance"])
        shown = chk["printed"]
    elif "expected" in chk:
        target, shown = float(chk["expected"]), _fmt(float(chk["expected"]))
        tol = None
    elif "quantity" in chk:
        if chk["quantity"] not in q:
            return out(v, chk["quantity"], "-", False, f"the exhibit computed no quantity {chk['quantity']!r}")
        target = float(q[chk["quantity"]])
        shown = f"{chk['quantity']} = {_fmt(target)}"
        tol = None
    else:  # truth
        from cluster_econ.report.exhibits import resolve_truth

        truth = q.get("_truth")
        if truth is None:
            return out(v, f"truth {chk['truth']}", "-", False, "this exhibit has no simulator truth")
        try:
            target = float(resolve_truth(truth, chk["truth"]))
        except (KeyError, AttributeError, TypeError, ValueError) as exc:
            return out(v, f"truth {chk['truth']}", "-", False, str(exc))
        shown = f"truth {chk['truth']} = {_fmt(target)}"
        tol = None
    note = ""
    spec = chk.get("tolerance")
    if isinstance(spec, Mapping) or (tol is None and spec is not None):
        if isinstance(spec, Mapping):
            se = q.get(f"{key}.se")
            if se is None or not math.isfinite(float(se)):
                return out(v, shown, f"{spec['se']} se", False, f"no standard error for {key!r}")
            tol = float(spec["se"]) * float(se)
            note = f"{spec['se']:g} x se {float(se):.3g}"
        else:
            tol = float(spec)
    # a hair above the tolerance for binary floating point (0.1155 vs 0.1156 +- 0.00005)
    ok = math.isfinite(v) and abs(v - target) <= tol * (1 + 1e-9) + 1e-12
    return out(v, shown, f"{tol:.3g}", ok, note)


def _write_outputs(name: str, data: Any, cfg: Mapping[str, Any], folder: Path) -> list[Path]:
    from cluster_econ.figures import save

    files: list[Path] = []
    formats = cfg.get("formats") or list(TABLE_FORMATS)
    for tname, table in data.tables.items():
        for ext in formats:
            files.append(table.save(folder / "tables" / f"{tname}.{ext}"))
    fig_formats = cfg.get("figure_formats") or list(FIGURE_FORMATS)
    for fname, fig in data.figures.items():
        files += save(fig, [folder / "figures" / f"{fname}.{ext}" for ext in fig_formats])
        try:
            import matplotlib.pyplot as plt

            plt.close(fig)
        except Exception:  # pragma: no cover - closing is housekeeping
            pass
    return files


_CHECK_COLUMNS = ["exhibit", "check", "quantity", "value", "expected", "tolerance", "source", "passed", "note"]


def _checks_frame(outcome: ExhibitOutcome) -> pd.DataFrame:
    """One row per check, every cell text (numbers as shown on the PASS/FAIL lines)."""
    rows = [[c.exhibit, c.name, c.quantity, _fmt(c.value), c.expected, c.tolerance, c.source,
             "yes" if c.passed else "no", c.note] for c in outcome.checks]
    return pd.DataFrame(rows, columns=_CHECK_COLUMNS, dtype=object)


def run_one(name: str, out: str | Path, root: str | Path | None = None) -> ExhibitOutcome:
    """Run one replication (see :func:`run`)."""
    from cluster_econ.report.exhibits import BUILDERS

    base = Path(root) if root is not None else replication_root()
    folder = base / name
    outcome = ExhibitOutcome(name=name)
    t0 = time.perf_counter()
    if not (folder / "config.yaml").is_file():
        outcome.error = f"no replication {name!r} (known: {', '.join(available(base))})"
        return outcome
    try:
        cfg, exp = _load(folder)
    except ConfigError as exc:
        outcome.error = str(exc)
        return outcome
    outcome.title = str(cfg.get("title", name))
    outcome.kind, outcome.source = str(cfg["kind"]), str(cfg.get("source", ""))
    try:
        data = BUILDERS[cfg["exhibit"]](cfg)
    except Exception as exc:  # an exhibit that cannot be computed is a failure, reported
        outcome.error = f"{type(exc).__name__}: {exc}"
        outcome.seconds = time.perf_counter() - t0
        return outcome
    if data.skipped:
        outcome.skipped = data.skipped
        outcome.seconds = time.perf_counter() - t0
        return outcome
    target = Path(out) / name
    outcome.checks = [_check(name, chk, data.quantities) for chk in exp.data["checks"]]
    try:
        outcome.files = _write_outputs(name, data, cfg, target)
    except Exception as exc:
        outcome.error = f"writing outputs failed: {type(exc).__name__}: {exc}"
    outcome.files.append(atomic_write_csv(_checks_frame(outcome), target / "checks.csv", lineterminator="\r\n"))
    outcome.seconds = time.perf_counter() - t0
    return outcome


def run(names: Sequence[str] | None = None, out: str | Path = "replication_output",
        root: str | Path | None = None) -> list[ExhibitOutcome]:
    """Run replications and check their numbers.

    Parameters
    ----------
    names : sequence of str, optional
        Replications to run (default: all of :func:`available`).
    out : path
        Output folder; each replication writes into ``out/<name>/`` (tables, figures,
        ``checks.csv``) and a summary goes to ``out/summary.csv``. Nothing written holds a
        time: two runs on the same inputs write the same bytes. Each outcome's wall-clock
        ``seconds`` is returned (and printed by ``cluster-econ replicate``) instead.
    root : path, optional
        Folder holding the replication folders (default: the installed ``replication/``).

    Returns
    -------
    list of ExhibitOutcome
        One per replication, in the order run. An exhibit that raises is an outcome with
        ``error`` set (a failure); one whose inputs are unavailable has ``skipped`` set.
    """
    chosen = list(names) if names else available(root)
    outcomes = [run_one(n, out, root) for n in chosen]
    rows = []
    for o in outcomes:
        status = "skipped" if o.skipped else ("pass" if o.passed else "fail")
        rows.append([o.name, o.kind, status, str(len(o.checks)), str(o.n_failed), o.source,
                     o.error or o.skipped or ""])
    # no wall-clock times in written files: the same inputs give the same bytes (times: ExhibitOutcome.seconds,
    # printed by the command)
    summary = pd.DataFrame(rows, columns=["exhibit", "kind", "status", "checks", "failed", "source", "detail"],
                           dtype=object)
    atomic_write_csv(summary, Path(out) / "summary.csv", lineterminator="\r\n")
    return outcomes
