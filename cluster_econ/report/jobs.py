"""The jobs of a batch report, and the data they run on, in whichever process runs them.

A job is one (subset, task) pair: a custom specification fitted on the subset's analysis frame, or
a proposition tested on the subset's panel. :func:`run_job` runs one and returns its state as
canonical JSON (:func:`cluster_econ.report.cache.encode_state`), never raising: an error becomes
the state ``{"error": "Type: message", "traceback": ...}``, so one failing job never stops the
others.

The data reach the workers once, as the ``shared`` object of :mod:`cluster_econ.parallel`
(:class:`ReportData`): forked local workers inherit the phased panel and the subsets already cut
from it; spawned workers and Dask workers receive the phased panel once, or, when every Dask
worker sees the report's Parquet panel folder with the same manifest, only its path (each
worker then reads the folder itself, checking every file's hash). Each process keeps what it
builds from the data (subset panels, analysis frames, the propositions' prepared data) for the
next job on the same data.
"""

from __future__ import annotations

import hashlib
import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from cluster_econ.errors import ConfigError
from cluster_econ.report.cache import encode_state, result_state

__all__ = ["ReportData", "analysis_frame", "panel_hash", "run_job", "subset_panel"]


class ReportData:
    """The data every job of one report needs, shipped once per worker.

    Parameters
    ----------
    token : str
        Identifies the data (the full panel's hash and the phase method): the key of each
        process's cache of subset panels, frames and prepared data.
    wheres : mapping
        Subset name to its filter (``{}`` for the full data ``all``).
    panel : Panel, optional
        The phased panel.
    path, manifest_sha256, cluster_year : optional
        Instead of ``panel``: a Parquet panel folder the workers read themselves, the SHA-256 of
        its ``manifest.json`` (checked on the worker), and the phased ``cluster_year`` table.
    prebuilt : mapping, optional
        Subset panels already built (inherited by forked workers; never pickled).
    """

    def __init__(self, token: str, wheres: Mapping[str, Mapping[str, Sequence[Any]]], panel: Any = None,
                 path: str | None = None, manifest_sha256: str | None = None, cluster_year: Any = None,
                 prebuilt: Mapping[Any, Any] | None = None) -> None:
        self.token = token
        self.wheres = {k: dict(v) for k, v in wheres.items()}
        self.panel = panel
        self.path = path
        self.manifest_sha256 = manifest_sha256
        self.cluster_year = cluster_year
        self.prebuilt = dict(prebuilt or {})

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["prebuilt"] = {}  # what a forked worker inherits is rebuilt elsewhere, not shipped
        return state

    def by_path(self) -> ReportData:
        """The same data described by the panel folder's path instead of the panel itself."""
        return ReportData(self.token, self.wheres, None, self.path, self.manifest_sha256, self.cluster_year)


# per process: data token -> {key: value}; the two most recent data sets are kept
_CACHE: OrderedDict[str, dict[Any, Any]] = OrderedDict()
_CACHE_DATA_SETS = 2
_LOCK = threading.RLock()  # Dask workers may run several jobs of one process in threads


def _memo(data: ReportData, key: Any, build: Callable[[], Any]) -> Any:
    with _LOCK:
        store = _CACHE.get(data.token)
        if store is None:
            store = _CACHE[data.token] = dict(data.prebuilt)
            while len(_CACHE) > _CACHE_DATA_SETS:
                _CACHE.popitem(last=False)
        _CACHE.move_to_end(data.token)
        if key not in store:
            store[key] = build()
        return store[key]


def manifest_sha256(folder: str | Path) -> str | None:
    """SHA-256 of a panel folder's ``manifest.json``, or None when it cannot be read."""
    try:
        return hashlib.sha256((Path(folder) / "manifest.json").read_bytes()).hexdigest()
    except OSError:
        return None


def sees_panel(path: str, sha256: str) -> bool:
    """Whether this process sees the panel folder ``path`` with this manifest (run on workers)."""
    return manifest_sha256(path) == sha256


def _full_panel(data: ReportData) -> Any:
    if data.panel is not None:
        return data.panel
    if sees_panel(str(data.path), str(data.manifest_sha256)) is False:
        raise ConfigError(f"this worker does not see the panel folder {data.path} with the manifest the report "
                          "was started with; give the workers the same folder, or run without it on the path")
    from cluster_econ.io.parquet import read_panel

    return read_panel(str(data.path)).replace(cluster_year=data.cluster_year)


def subset_panel(data: ReportData, name: str) -> Any:
    """The panel of subset ``name`` (built once per process)."""
    full = _memo(data, "panel", lambda: _full_panel(data))
    where = data.wheres[name]
    return _memo(data, ("subset", name), lambda: subset(full, where) if where else full)


def subset(panel: Any, where: Mapping[str, Sequence[Any]]) -> Any:
    """The panel restricted to enterprises (or enterprise-years) matching ``where``."""
    ent, ey = panel.enterprise, panel.enterprise_year
    keep = pd.Series(True, index=ent.index)
    ey_keep = pd.Series(True, index=ey.index)
    for col, values in where.items():
        vals = {str(v) for v in values}
        if col == "survey_round":
            if col not in ey.columns:
                raise ConfigError("subset on survey_round: enterprise_year has no survey_round column")
            ey_keep &= ey[col].astype(str).isin(vals)
        else:
            if col not in ent.columns:
                raise ConfigError(f"subset on {col}: the enterprise table has no {col} column")
            keep &= ent[col].astype(str).isin(vals)
    ids = set(ent.loc[keep, "enterprise_id"])
    tables = {"enterprise": ent[keep].reset_index(drop=True)}
    ey2 = ey[ey_keep & ey["enterprise_id"].isin(ids)].reset_index(drop=True)
    tables["enterprise_year"] = ey2
    clusters = set(tables["enterprise"]["cluster_id"])
    for name in ("manager", "rct_assignment"):
        df = panel.get(name)
        if df is not None:
            tables[name] = df[df["enterprise_id"].isin(ids)].reset_index(drop=True)
    cy = panel.cluster_year
    if cy is not None:
        tables["cluster_year"] = cy[cy["cluster_id"].isin(clusters)].reset_index(drop=True)
    if panel.deflator is not None:
        tables["deflator"] = panel.deflator
    from cluster_econ.panel import Panel

    return Panel(tables, panel.audit, panel.rejects, panel.metadata)


_HASHED_TABLES = ("enterprise", "enterprise_year", "manager", "cluster_year", "rct_assignment", "deflator")


def panel_hash(panel: Any) -> str:
    """A digest of the panel's tables (names, columns, dtypes and every value), 16 hex digits."""
    h = hashlib.sha256()
    for name in _HASHED_TABLES:
        df = panel.get(name)
        if df is None:
            continue
        h.update(name.encode())
        h.update("\x1f".join(map(str, df.columns)).encode())
        h.update("\x1f".join(map(str, df.dtypes)).encode())
        h.update(pd.util.hash_pandas_object(df, index=False).to_numpy().tobytes())
    return h.hexdigest()[:16]


def analysis_frame(panel: Any) -> pd.DataFrame:
    """enterprise_year joined with enterprise, the manager in charge's ``schooling_years`` and the
    cluster-year ``phase``: the data custom specifications run on."""
    from cluster_econ.estimate.formula import as_frame
    from cluster_econ.tables.phase_profile import _manager_in_charge

    frame = as_frame(panel)
    frame = frame.assign(year=pd.to_numeric(frame["year"]).astype("int64"))
    if "schooling_years" not in frame.columns:
        frame["schooling_years"] = _manager_in_charge(panel, frame).to_numpy()
    cy = panel.cluster_year
    if cy is not None and "phase" in cy.columns and "phase" not in frame.columns:
        ph = cy[["cluster_id", "year", "phase"]].assign(year=pd.to_numeric(cy["year"]).astype("int64"))
        frame = frame.merge(ph, on=["cluster_id", "year"], how="left")
    return frame


def estimate_spec(spec: Mapping[str, Any], frame: pd.DataFrame) -> Any:
    """One custom specification (random draws, if any, seeded by its own ``options.seed``)."""
    from cluster_econ import estimate

    est = spec["estimator"]
    vcov = spec.get("vcov", "iid")
    if est in ("att_gt", "lee_bounds", "ancova"):  # evaluation estimators: see report/evaluation.py
        from cluster_econ.report.evaluation import estimate_evaluation
        return estimate_evaluation(spec, frame)
    if spec.get("options"):
        from cluster_econ.report.evaluation import estimate_evaluation
        return estimate_evaluation(spec, frame, estimate_spec({k: v for k, v in spec.items() if k != "options"},
                                                              frame))
    if est.startswith("panel-"):
        return estimate.panel(spec["formula"], frame, model=est.split("-", 1)[1],
                              entity=spec.get("entity", "enterprise_id"), time=spec.get("time", "year"),
                              vcov=vcov)
    if est == "feols":
        return estimate.feols(spec["formula"], frame, vcov=vcov)
    if est == "pgmm":  # robust (Windmeijer) covariance always; two-step difference GMM by default
        return estimate.pgmm(spec["formula"], frame, entity=spec.get("entity", "enterprise_id"),
                             time=spec.get("time", "year"), model=spec.get("model", "twostep"))
    return getattr(estimate, est)(spec["formula"], frame, vcov=vcov)


def run_job(job: Mapping[str, Any], shared: ReportData) -> tuple[str, float]:
    """Run one job; returns its state as canonical JSON and the seconds it took (never raises)."""
    from cluster_econ.parallel import format_traceback

    t0 = time.perf_counter()
    sname = job["subset"]
    try:
        panel = subset_panel(shared, sname)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if job["kind"] == "spec":
                frame = _memo(shared, ("frame", sname), lambda: analysis_frame(panel))
                res = estimate_spec(job["task"], frame)
                state: dict[str, Any] = {"result": result_state(res), "tidy": res.tidy()}
            else:
                from cluster_econ import hypotheses

                # prepared once per subset and process, shared by the propositions
                hdata = _memo(shared, ("hdata", sname), lambda: hypotheses.prepare(panel, phases="column"))
                seeded = {"options": {"seed": job["seed"]}} if job["seed"] is not None else {}
                hr = hypotheses.test(panel, job["task"]["id"], data=hdata, **seeded)
                state = {"row": {k: (v if isinstance(v, str | int | float) else str(v))
                                 for k, v in hr.row().items()},
                         "tidy": hr.tidy(), "verdict": str(hr.verdict)}
        state["warnings"] = sorted({str(w.message) for w in caught})
        state["error"] = None
    except Exception as exc:  # a failing job is reported, the others still run
        state = {"error": f"{type(exc).__name__}: {exc}", "traceback": format_traceback(exc)}
    return encode_state(state), time.perf_counter() - t0


def run_jobs(group: Sequence[Mapping[str, Any]], shared: ReportData) -> list[tuple[str, float]]:
    """Run jobs that share a subset and kind in one task: the worker that prepares the subset's
    frame (or the propositions' data) uses it for all of them; each job still fails alone."""
    return [run_job(job, shared) for job in group]


def group_jobs(todo: Sequence[Mapping[str, Any]], size: int) -> list[list[Mapping[str, Any]]]:
    """``todo`` in groups of at most ``size`` jobs of one subset and kind, in order of first
    appearance."""
    groups: dict[tuple[str, str], list[list[Mapping[str, Any]]]] = {}
    for job in todo:
        runs = groups.setdefault((job["subset"], job["kind"]), [[]])
        if len(runs[-1]) >= size:
            runs.append([])
        runs[-1].append(job)
    return [g for runs in groups.values() for g in runs]


def warm_up(tasks: Sequence[tuple[str, Mapping[str, Any]]]) -> None:
    """Import what the jobs import, so that forked workers inherit the modules instead of each
    importing them again (seconds per process: statsmodels, the estimators, the propositions)."""
    import importlib

    estimate = importlib.import_module("cluster_econ.estimate")
    importlib.import_module("cluster_econ.estimate.linear")
    estimators = {t["estimator"] for kind, t in tasks if kind == "spec"}
    for est in estimators:  # the package's names resolve lazily: this imports each one's module
        getattr(estimate, "panel" if est.startswith("panel-") else est, None)
    if estimators - {"feols", "iv"} or any(kind == "proposition" for kind, _ in tasks):
        importlib.import_module("statsmodels.api")  # binary, count and survival models use it
    if any(kind == "proposition" for kind, _ in tasks):
        importlib.import_module("cluster_econ.hypotheses.runners")
    if any(t.get("options") or t["estimator"] in ("att_gt", "lee_bounds", "ancova") for kind, t in tasks
           if kind == "spec"):
        importlib.import_module("cluster_econ.report.evaluation")


def release(token: str) -> None:
    """Forget what this process built from the data ``token`` (the report is done with it)."""
    with _LOCK:
        _CACHE.pop(token, None)
