"""Batch reports: run propositions and custom specifications over data subsets, in parallel, with a
cache, and write one self-contained HTML report plus LaTeX, Word and Excel tables.

The configuration (YAML, validated against ``config.schema.json`` beside this module; errors name
the key and its line) gives:

``data``
    ``demo`` or the folder of a normalized Panel (relative to the configuration file).
``phases.method``
    ``column`` (use ``cluster_year["phase"]``), ``rules``, ``breaks`` or ``hmm``. Default:
    ``column`` when the data have phases, else ``rules``.
``propositions``
    Proposition ids (``P1`` ... ``P9``) tested with :func:`cluster_econ.hypotheses.test`.
``specifications``
    ``name``, ``formula`` (parsed by :func:`cluster_econ.estimate.formula.parse_formula`, never
    evaluated), ``estimator`` (``feols``, ``iv``, ``liml``, ``logit``, ``probit``, ``lpm``,
    ``cloglog``, ``fepois``, ``fractional_logit``, ``fractional_probit``, ``panel-<model>``,
    ``pgmm`` (with optional ``model``), or ``att_gt``, ``lee_bounds``, ``ancova`` with ``options``, see
    :mod:`cluster_econ.report.evaluation`), ``vcov`` and optional ``entity``/``time``. They run on the analysis frame:
    ``enterprise_year`` joined with ``enterprise``, the schooling of the manager in charge
    (``schooling_years``) and the cluster-year ``phase``.
``subsets``
    ``{by: cluster_id|country|industry_isic|survey_round}`` (one subset per value) or
    ``{name: ..., where: {column: [values]}}``. Every specification and proposition runs on the
    full data and on every subset.
``seed``
    Seed of the propositions' random draws (the wild cluster bootstrap of P9), passed to
    :func:`cluster_econ.hypotheses.test` as the option ``seed``; without it each proposition
    uses its registered default. The custom specifications' random draws (randomization inference,
    bootstrap bands) are seeded by their own ``options.seed`` (default 0).
``outputs``, ``workers`` (local worker processes; default: the machine's cores), ``title``,
    ``phase_profile`` (false leaves out the phase profile table of the data,
    :func:`cluster_econ.tables.phase_profile.phase_profile_table`).

Each (subset, task) pair is one job (:mod:`cluster_econ.report.jobs`). Jobs run through
:mod:`cluster_econ.parallel`: in local processes by default (as many as ``workers``; forked from
the process that loaded the data, so nothing is copied to them), or, with ``scheduler`` (``tcp://
host:8786`` or ``dask://host:8786``), on an existing Dask distributed cluster that receives the
data once per worker (or reads the Parquet panel folder itself when every worker sees it). Tables
and figures are then rendered in parallel on local processes (:mod:`cluster_econ.report.render`).
The results, tables and report are byte-identical whichever executor ran the jobs. A progress
bar shows the jobs done.

Each job's result is cached in ``DIR/.cache`` (:mod:`cluster_econ.report.cache`: canonical JSON
authenticated with a per-user key), keyed by the SHA-256 of the subset's data hash, the task's
canonical JSON, the phase method, the package version and, for propositions only, the seed
(:func:`_job_key`), so a re-run after a configuration change recomputes only the jobs that
changed, whichever executor computed them. A cache file whose MAC does not verify is counted in
``ReportSummary.cache_rejected`` and recomputed; when the per-user key cannot be created or is
readable by others, the cache is not used (``ReportSummary.cache_note``).

A job that fails is reported in the HTML report with its error and traceback and makes the exit
code 1; the other jobs still run. A worker that dies mid-run is replaced and its jobs rerun
(``ReportSummary.events``). Every output path is checked to stay inside the output folder.
"""

from __future__ import annotations

import hashlib
import json
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from cluster_econ._version import __version__
from cluster_econ.errors import ConfigError
from cluster_econ.io.atomic import atomic_write
from cluster_econ.report import cache, jobs
from cluster_econ.report.jobs import analysis_frame
from cluster_econ.report.render import RenderData, early_tasks, slug
from cluster_econ.report.render import inside as _inside
from cluster_econ.report.render import render as render_task
from cluster_econ.report.render import warm_up as render_warm_up

# names other modules and tests import from here (they moved to jobs.py and cache.py)
_estimate = jobs.estimate_spec
_rebuild = cache.rebuild_result
_result_state = cache.result_state

__all__ = ["ReportSummary", "analysis_frame", "load_config", "run_report"]

SCHEMA_PATH = Path(__file__).with_name("config.schema.json")
DEFAULT_OUTPUTS = ("html", "latex", "docx", "xlsx")
# table file stems the runner writes itself: the full-data subset and the phase profile
_RESERVED_TABLES = {"all": "the subset of the full data, 'all'", "phase_profile": "the phase profile table"}
PROFILE_TITLE = "Phase profile of the data (Otsuka and Sonobe, Table 1, measured)"


# -- configuration ------------------------------------------------------------------------------
def load_config(path: str | Path) -> tuple[dict[str, Any], Any]:
    """Read and check a report configuration; returns the mapping and its YamlDocument.

    Raises
    ------
    ConfigError
        Naming the key and its line, for schema violations, formulas outside the grammar,
        unknown proposition ids, duplicate names and data folders that do not exist.
    """
    from cluster_econ.errors import FormulaError
    from cluster_econ.estimate.formula import parse_formula
    from cluster_econ.schema.yamlconf import YamlDocument, load_json_schema

    doc = YamlDocument.from_file(path)
    if not isinstance(doc.data, Mapping):
        raise doc.fail([], "the configuration must be a mapping of keys to values")
    doc.check(load_json_schema(SCHEMA_PATH))
    cfg = dict(doc.data)
    names: set[str] = set()
    for i, spec in enumerate(cfg.get("specifications") or []):
        try:
            parse_formula(spec["formula"])
        except FormulaError as exc:
            raise doc.fail(["specifications", i, "formula"], str(exc)) from None
        if spec["name"] in names:
            raise doc.fail(["specifications", i, "name"], f"duplicate specification name {spec['name']!r}")
        names.add(spec["name"])
    # file names: specification figures, and the tables of the named subsets (those split 'by' a
    # column are checked when the data are loaded)
    _check_unique_slugs(doc, _spec_entries(cfg), "specification name")
    _check_unique_slugs(doc, [(sub["name"], ["subsets", i, "name"]) for i, sub in enumerate(cfg.get("subsets") or [])
                              if "name" in sub], "subset name", _RESERVED_TABLES)
    for i, pid in enumerate(cfg.get("propositions") or []):
        known = _proposition_ids()
        if known is not None and pid not in known:
            raise doc.fail(["propositions", i], f"unknown proposition {pid!r}; known: {', '.join(known)}")
    if not cfg.get("specifications") and not cfg.get("propositions"):
        raise doc.fail([], "give 'specifications' or 'propositions' (or both): nothing to run")
    if cfg["data"] != "demo":
        folder = (Path(doc.path).parent / cfg["data"]).resolve()
        if not folder.is_dir():
            raise doc.fail(["data"], f"'demo' or the folder of a normalized Panel; {folder} does not exist")
    return cfg, doc


def _proposition_ids() -> list[str] | None:
    try:
        from cluster_econ.hypotheses.spec import ids
    except ImportError:
        return None
    return list(ids())


def _check_unique_slugs(doc: Any, entries: Sequence[tuple[str, Sequence[str | int] | None]], what: str,
                        reserved: Mapping[str, str] | None = None) -> None:
    """Raise a ConfigError when two labels give the same output file name (compared without case,
    as on macOS and Windows), naming both keys and their lines.

    ``entries`` are ``(label, key path)``; a label generated from the data names its ``by`` key.
    ``reserved`` maps file stems the runner writes itself to a description.
    """
    from cluster_econ.schema.yamlconf import line_of

    seen: dict[str, tuple[str, Sequence[str | int] | None]] = {}
    for stem, desc in (reserved or {}).items():
        seen[stem.casefold()] = (desc, None)
    for label, key in entries:
        slug_ = slug(label)
        other = seen.get(slug_.casefold())
        if other is None:
            seen[slug_.casefold()] = (label, key)
            continue
        other_label, other_key = other
        if other_key is None:
            clash = f"{other_label} (a reserved name)"
        else:
            line = line_of(doc.root, list(other_key))
            clash = f"{other_label!r} (key '{'.'.join(map(str, other_key))}'" + (f", line {line})" if line else ")")
        raise doc.fail(list(key or []), f"{what} {label!r} gives the output file name {slug_!r}, as does {clash}; "
                                        "rename one of them")


def _spec_entries(cfg: Mapping[str, Any]) -> list[tuple[str, list[str | int]]]:
    return [(spec["name"], ["specifications", i, "name"]) for i, spec in enumerate(cfg.get("specifications") or [])]

# -- data -------------------------------------------------------------------------------------
def _load_panel(cfg: Mapping[str, Any], base: Path) -> Any:
    if cfg["data"] == "demo":
        from cluster_econ.datasets import demo

        return demo()
    from cluster_econ.io.parquet import read_panel

    return read_panel(str((base / cfg["data"]).resolve()))


def _phased(panel: Any, method: str | None) -> tuple[Any, str]:
    """The panel with ``cluster_year["phase"]`` set by the chosen method."""
    cy = panel.cluster_year
    has = cy is not None and "phase" in cy.columns and cy["phase"].notna().any()
    method = method or ("column" if has else "rules")
    if method == "column":
        if not has:
            raise ConfigError("phases.method 'column': the data have no cluster_year.phase; use rules, breaks "
                              "or hmm")
        return panel, method
    from cluster_econ.phases import detect

    ph = detect(panel, method=method).phases
    base = panel.with_cluster_year().cluster_year.drop(columns=["phase"], errors="ignore")
    base = base.assign(year=pd.to_numeric(base["year"]).astype("int64"))
    ph = ph.assign(year=pd.to_numeric(ph["year"]).astype("int64"))
    return panel.replace(cluster_year=base.merge(ph, on=["cluster_id", "year"], how="left")), method


def _subsets(panel: Any, cfg: Mapping[str, Any]) -> list[tuple[str, dict[str, list[Any]], list[str | int] | None]]:
    """``(name, where, configuration key)`` of every subset, the full data ``all`` first."""
    out: list[tuple[str, dict[str, list[Any]], list[str | int] | None]] = [("all", {}, None)]
    for i, sub in enumerate(cfg.get("subsets") or []):
        if "by" in sub:
            col = sub["by"]
            src = panel.enterprise_year if col == "survey_round" else panel.enterprise
            if col not in src.columns:
                raise ConfigError(f"subsets: the data have no column {col!r} to split by")
            for value in sorted(src[col].dropna().astype(str).unique()):
                out.append((f"{col}={value}", {col: [value]}, ["subsets", i, "by"]))
        else:
            out.append((sub["name"], {k: list(v) for k, v in sub["where"].items()}, ["subsets", i, "name"]))
    return out


# -- summary ------------------------------------------------------------------------------------
@dataclass
class ReportSummary:
    """What a batch run did.

    ``cache_rejected`` counts cache files whose MAC did not verify (recomputed); ``cache_note``
    says why the cache was not used, if it was not.

    ``failed`` and ``warnings`` hold ``(subset, task, message)``: the error of each failed job (or
    rendering task), and each distinct warning a job raised (few clusters, convergence, ...), also
    shown in the report. ``executor`` says what ran the jobs; ``reruns`` and ``events`` report
    workers lost during the run and the jobs run again because of it; ``timings`` holds the
    seconds spent preparing, computing the jobs (``jobs``, with ``job_seconds`` their own summed
    run time) and rendering.
    """

    out: Path
    report: Path | None = None
    jobs: int = 0
    cache_hits: int = 0
    cache_rejected: int = 0
    cache_note: str = ""
    computed: int = 0
    failed: list[tuple[str, str, str]] = field(default_factory=list)
    warnings: list[tuple[str, str, str]] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    seconds: float = 0.0
    executor: str = ""
    reruns: int = 0
    events: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def n_failed(self) -> int:
        return len(self.failed)

    def text(self) -> str:
        lines = [f"{self.jobs} jobs: {self.computed} computed, {self.cache_hits} from the cache, "
                 f"{self.n_failed} failed ({self.seconds:.1f} s" + (f", {self.executor}" if self.executor else "")
                 + ")"]
        if self.cache_rejected:
            lines.append(f"{self.cache_rejected} cache file(s) rejected (not written by your cluster_econ, "
                         "or damaged) and recomputed")
        if self.cache_note:
            lines.append(self.cache_note)
        lines += [f"WORKER  {e}" for e in self.events]
        lines += [f"FAILED  {sub} / {name}: {err}" for sub, name, err in self.failed]
        lines += [f"WARNING  {sub} / {name}: {msg}" for sub, name, msg in self.warnings]
        if self.report is not None:
            lines.append(f"report: {self.report}")
        return "\n".join(lines)


def _versions() -> dict[str, str]:
    from importlib import metadata

    out = {"python": sys.version.split()[0], "cluster_econ": __version__}
    for pkg in ("numpy", "pandas", "scipy", "statsmodels", "linearmodels", "matplotlib", "pyarrow"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def _job_key(data_hash: str, kind: str, task: Mapping[str, Any], method: str, seed: int | None) -> str:
    """The cache key of a job: SHA-256 of what its result depends on. The seed enters only for
    propositions (the only jobs that draw random numbers), so changing it reuses the custom
    specifications' results."""
    src = {"data": data_hash, "kind": kind, "task": task, "phases": method, "version": __version__}
    if kind == "proposition":
        src["seed"] = seed
    return hashlib.sha256(json.dumps(src, sort_keys=True).encode()).hexdigest()


def _task_label(job: Mapping[str, Any]) -> str:
    return job["task"]["name"] if job["kind"] == "spec" else job["task"]["id"]


# -- main ---------------------------------------------------------------------------------------
def run_report(config: str | Path, out: str | Path, workers: int | None = None, progress: bool = True,
               scheduler: Any = None) -> ReportSummary:
    """Run a batch report (see the module docstring) and write it into ``out``.

    Parameters
    ----------
    config : path
        The YAML configuration.
    out : path
        Output folder; everything is written inside it.
    workers : int, optional
        Local worker processes (default: the configuration's ``workers``, else the machine's
        cores, :func:`cluster_econ.parallel.default_workers`); 1 runs everything in this process.
        With ``scheduler``, the local processes that render tables and figures.
    progress : bool
        Show a progress bar of the jobs (stderr).
    scheduler : str or distributed.Client, optional
        Run the jobs on this Dask distributed cluster (``tcp://host:8786``, ``dask://host:8786``
        or a connected Client); needs ``pip install "cluster-econ[dask]"``.

    Returns
    -------
    ReportSummary
        Jobs, cache hits, computed jobs, failures (subset, task, error), worker events and files
        written.
    """
    from cluster_econ.parallel import default_workers
    from cluster_econ.schema import SCHEMA_VERSION

    t0 = time.perf_counter()
    cfg, doc = load_config(config)
    base = Path(doc.path).parent
    out_dir = Path(out)
    summary = ReportSummary(out=out_dir.resolve())
    seed = int(cfg["seed"]) if cfg.get("seed") is not None else None
    n_local = int(workers or cfg.get("workers") or default_workers())
    if n_local < 1:
        raise ConfigError(f"workers must be a positive integer, not {n_local}")

    panel, method = _phased(_load_panel(cfg, base), (cfg.get("phases") or {}).get("method"))
    entries = _subsets(panel, cfg)
    # every subset's tables are tables/<slug>.<ext>: the slugs (with the values a 'by' split found
    # in the data) must differ, and every file name written stays inside the output folder
    _check_unique_slugs(doc, [(name, key) for name, _, key in entries[1:]], "subset", _RESERVED_TABLES)
    subsets = [(name, where) for name, where, _ in entries]
    for name, _, key in entries:
        _inside(out_dir, "tables", f"{slug(name)}.tex", doc=doc, key=key or [])
    for name, key in _spec_entries(cfg):
        _inside(out_dir, "figures", f"spec_{slug(name)}.png", doc=doc, key=key)
    out_dir.mkdir(parents=True, exist_ok=True)
    tasks: list[tuple[str, dict[str, Any]]] = [("spec", dict(s)) for s in cfg.get("specifications") or []]
    tasks += [("proposition", {"id": p}) for p in cfg.get("propositions") or []]
    hashes, prebuilt = {}, {"panel": panel}
    for name, where in subsets:
        sub = jobs.subset(panel, where) if where else panel
        prebuilt[("subset", name)] = sub
        hashes[name] = jobs.panel_hash(sub)
    token = f"{hashes['all']}:{method}"

    cache_dir = _inside(out_dir, ".cache")
    cache_dir.mkdir(exist_ok=True)
    secret, summary.cache_note = cache.cache_secret()
    all_jobs, results = [], {}
    for sname, _ in subsets:
        for kind, task in tasks:
            key = _job_key(hashes[sname], kind, task, method, seed)
            job = {"subset": sname, "kind": kind, "task": task, "seed": seed if kind == "proposition" else None,
                   "key": key}
            all_jobs.append(job)
            if secret is None or key in results:
                continue
            try:
                state = cache.cache_read(cache_dir / f"{key}.json", key, secret)
            except cache.RejectedCacheError:
                summary.cache_rejected += 1
                continue
            if state is not None:
                results[key] = state
                summary.cache_hits += 1
    summary.jobs = len(all_jobs)
    todo = list({j["key"]: j for j in all_jobs if j["key"] not in results}.values())
    # the heavier propositions first, so that the last jobs to finish are short ones
    todo.sort(key=lambda j: j["kind"] != "proposition")
    data = jobs.ReportData(token, dict(subsets), panel=panel,
                           path=None if cfg["data"] == "demo" else str((base / cfg["data"]).resolve()),
                           cluster_year=panel.cluster_year, prebuilt=prebuilt)
    if data.path is not None:
        data.manifest_sha256 = jobs.manifest_sha256(data.path)
    summary.timings["prepare"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    # the renderings that need no job's result (the phase profile, the timeline) run beside the jobs
    # on local workers, off the critical path
    early: dict[tuple[str, str], Any] = {}
    outputs = cfg.get("outputs") or list(DEFAULT_OUTPUTS)
    rdata = RenderData(out_dir, outputs, panel, [s for s, _ in subsets], {}, PROFILE_TITLE)
    pre = early_tasks(rdata, bool(cfg.get("phase_profile", True)))
    try:
        if todo:
            early = _compute(todo, data, results, summary, n_local, scheduler, progress, cache_dir, secret,
                             pre if scheduler is None else [], rdata)
        else:
            summary.executor = "cache"
    finally:
        jobs.release(token)
    summary.timings["jobs"] = time.perf_counter() - t1
    for job in all_jobs:
        state = results[job["key"]]
        if state.get("error"):
            summary.failed.append((job["subset"], _task_label(job), state["error"]))
        summary.warnings += [(job["subset"], _task_label(job), w) for w in state.get("warnings", ())]

    t2 = time.perf_counter()
    _render(cfg, out_dir, panel, subsets, all_jobs, results, seed, method, hashes["all"], summary, n_local,
            SCHEMA_VERSION, early)
    summary.timings["render"] = time.perf_counter() - t2
    summary.seconds = time.perf_counter() - t0
    return summary


def _job_or_render(item: tuple[str, Any], shared: tuple[jobs.ReportData, RenderData]) -> Any:
    """One task of the local pool: a group of jobs, or a rendering that needs no job's result."""
    kind, task = item
    return render_task(task, shared[1]) if kind == "render" else jobs.run_jobs(task, shared[0])


def _group_size(n_jobs: int, workers: int) -> int:
    """Jobs of one subset and kind sent together: enough to share their data, few enough to keep
    every worker busy (about eight groups per worker)."""
    return max(1, min(50, n_jobs // (8 * max(1, workers))))


def _compute(todo: list[dict[str, Any]], data: jobs.ReportData, results: dict[str, Any], summary: ReportSummary,
             n_local: int, scheduler: Any, progress: bool, cache_dir: Path, secret: bytes | None,
             pre: Sequence[tuple[str, str]], rdata: RenderData) -> dict[tuple[str, str], Any]:
    """Run the jobs not in the cache on the chosen executor (and, on local workers, the renderings
    ``pre``); cache what succeeded. Returns the renderings' outputs by task."""
    from cluster_econ.parallel import TaskFailure, dask_client, progress_bar, run_tasks

    bar = progress_bar(desc="report", unit="task", disable=not progress, file=sys.stderr)
    seen = [0]
    warm: list[threading.Thread] = []

    def advance(done: int) -> None:
        if not warm and scheduler is None:  # the workers are running: import what rendering needs meanwhile
            warm.append(threading.Thread(target=render_warm_up, args=(rdata.outputs,), daemon=True))
            warm[0].start()
        bar.update(done - seen[0])  # tasks: groups of jobs (and early renderings), shown as they end
        seen[0] = done

    try:
        if scheduler is not None:
            with dask_client(scheduler) as client:
                shared = data
                if data.path is not None and data.manifest_sha256 is not None:
                    sees = client.run(jobs.sees_panel, data.path, data.manifest_sha256)
                    if sees and all(sees.values()):
                        shared = data.by_path()  # each worker reads the Parquet folder itself
                threads = sum(int(w.get("nthreads", 1)) for w in client.scheduler_info()["workers"].values())
                groups = jobs.group_jobs(todo, _group_size(len(todo), threads))
                bar.total = len(groups)
                run = run_tasks(jobs.run_jobs, groups, scheduler=client, shared=shared, progress=advance,
                                desc="report", chunksize=1)
                summary.executor = f"{run.executor} ({run.workers} workers" + (
                    ", data read by path)" if shared is not data else ", data scattered)")
            group_outs = run.results
            early: dict[tuple[str, str], Any] = {}
        else:
            groups = jobs.group_jobs(todo, _group_size(len(todo), n_local))
            items = [("render", t) for t in pre] + [("job", g) for g in groups]
            bar.total = len(items)
            if min(n_local, len(items)) > 1:
                jobs.warm_up([(j["kind"], j["task"]) for j in todo])
            run = run_tasks(_job_or_render, items, workers=min(n_local, len(items)), shared=(data, rdata),
                            progress=advance, desc="report", chunksize=1)
            summary.executor = "this process" if run.executor == "serial" else f"{run.workers} local processes"
            early = dict(zip(pre, run.results[:len(pre)], strict=True))
            group_outs = run.results[len(pre):]
    finally:
        bar.close()
        for thread in warm:
            thread.join()
    summary.reruns, summary.events = run.reruns, list(run.events)
    by_job: dict[str, Any] = {}
    for group, out in zip(groups, group_outs, strict=True):
        for job, one in zip(group, [out] * len(group) if isinstance(out, TaskFailure) else out, strict=True):
            by_job[job["key"]] = one
    seconds = 0.0
    for job in todo:
        out = by_job[job["key"]]
        if isinstance(out, TaskFailure):
            payload = cache.encode_state({"error": out.error, "traceback": out.traceback})
        else:
            payload, took = out
            seconds += took
        # fresh results take the same JSON round trip as cached ones: identical reports either way
        state = cache.decode_state(payload)
        results[job["key"]] = state
        if secret is not None and state.get("error") is None:
            cache.cache_write(cache_dir / f"{job['key']}.json", job["key"], secret, payload)
    summary.computed = len(todo)
    summary.timings["job_seconds"] = seconds
    return early


def _render(cfg: Mapping[str, Any], out_dir: Path, panel: Any, subsets: Sequence[tuple[str, Any]],
            all_jobs: Sequence[Mapping[str, Any]], results: Mapping[str, Any], seed: int | None, method: str,
            data_hash: str, summary: ReportSummary, n_local: int, schema_version: str,
            early: Mapping[tuple[str, str], Any]) -> None:
    """Tables, figures (in parallel local processes), the HTML page and the manifest; ``early``
    holds the renderings already done beside the jobs."""
    from cluster_econ.parallel import TaskFailure, run_tasks
    from cluster_econ.report import render

    outputs = cfg.get("outputs") or list(DEFAULT_OUTPUTS)
    manifest = {
        "title": cfg.get("title", "cluster_econ report"), "data": cfg["data"],
        "data_hash": data_hash, "schema_version": schema_version, "package_versions": _versions(),
        "seed": seed, "phase_method": method, "configuration": cfg,
        "synthetic": bool(panel.metadata.get("synthetic")),
    }
    names = [s for s, _ in subsets]
    spec_states: dict[str, dict[str, Any]] = {s: {} for s in names}
    for job in all_jobs:
        state = results[job["key"]]
        if job["kind"] == "spec" and state.get("error") is None:
            spec_states[job["subset"]][job["task"]["name"]] = state["result"]
    rdata = render.RenderData(out_dir, outputs, panel, names, spec_states, PROFILE_TITLE)
    spec_names = [s["name"] for s in cfg.get("specifications") or []]
    with_profile = bool(cfg.get("phase_profile", True))
    rtasks = render.render_tasks(rdata, spec_names, with_profile)
    todo = [t for t in rtasks if t not in early]
    if min(n_local, len(todo)) > 1:
        render.warm_up(outputs)
    run = run_tasks(render.render, todo, workers=min(n_local, max(1, len(todo))), shared=rdata,
                    desc="render", chunksize=1)
    done = {**early, **dict(zip(todo, run.results, strict=True))}
    fragments: dict[tuple[str, str], str] = {}
    render_failures = []
    for task in rtasks:
        out = done[task]
        if isinstance(out, TaskFailure):
            what = "phase profile" if task[0] == "profile" else f"{task[0]} {task[1]}".strip()
            render_failures.append(("all", what, out.error, out.traceback))
            summary.failed.append(("all", what, out.error))
            continue
        summary.files += out["files"]
        fragments[task] = out["html"]
    if "html" in outputs:
        failures = [(j["subset"], _task_label(j), results[j["key"]]["error"], results[j["key"]].get("traceback"))
                    for j in all_jobs if results[j["key"]].get("error")] + render_failures
        text = render.html_page(manifest, panel, names, all_jobs, results, fragments, failures, _task_label)
        summary.report = atomic_write(out_dir / "report.html", text)
        summary.files.append(summary.report)
    summary.files.append(atomic_write(out_dir / "manifest.json",
                                      json.dumps(manifest, indent=2, sort_keys=True, default=str)))
