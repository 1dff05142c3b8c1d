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
``outputs``, ``workers`` (at most 2), ``title``, ``phase_profile`` (false leaves out the
    phase profile table of the data, :func:`cluster_econ.tables.phase_profile.phase_profile_table`).

Each (subset, task) pair is one job. Jobs run in local processes
(:class:`concurrent.futures.ProcessPoolExecutor`, forked from the process that loaded the data)
under a tqdm progress bar. Each job's result is cached in ``DIR/.cache`` keyed by the SHA-256 of
the subset's data hash, the task's canonical JSON, the phase method, the package version and, for
propositions only, the seed (:func:`_job_key`), so a re-run after a configuration change
recomputes only the jobs that changed.

The cache is safe to find in a folder someone else prepared. A cache file is JSON (numbers,
strings, lists; tables as columns of values), never a pickle, so reading one cannot run code; and
it is authenticated with an HMAC-SHA256 of its cache key and content, keyed by a per-user secret
kept outside the output folder (``$XDG_CACHE_HOME/cluster_econ/cache.key``, by default
``~/.cache/cluster_econ/cache.key``: 32 bytes from :func:`os.urandom`, mode 0600, created on first
use). A file whose MAC does not verify (planted, edited, or written under another user's key) is
a cache miss: it is deleted, counted in ``ReportSummary.cache_rejected`` and the job is computed.
When the secret cannot be created or is readable by others, the cache is not used (said in
``ReportSummary.cache_note``). Fresh results pass through the same JSON encoding as cached ones,
so a report from the cache is byte-identical to a fresh one.

A job that fails is reported in the HTML report with its error and makes the exit code 1; the
other jobs still run. Every output path is checked to stay inside the output folder.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import html
import json
import multiprocessing
import os
import re
import stat
import sys
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from cluster_econ._version import __version__
from cluster_econ.errors import ConfigError
from cluster_econ.io.atomic import atomic_write

__all__ = ["ReportSummary", "load_config", "run_report"]

SCHEMA_PATH = Path(__file__).with_name("config.schema.json")
DEFAULT_OUTPUTS = ("html", "latex", "docx", "xlsx")
_TABLE_EXT = {"latex": "tex", "docx": "docx", "xlsx": "xlsx", "markdown": "md", "csv": "csv"}
_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


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


def _inside(root: Path, *parts: str, doc: Any = None, key: Sequence[str | int] = ()) -> Path:
    """``root / parts`` if it stays inside ``root``, else a ConfigError naming the key."""
    target = root.joinpath(*parts).resolve()
    base = root.resolve()
    if target != base and base not in target.parents:
        msg = f"output path {'/'.join(parts)!r} escapes the output folder {base}"
        raise doc.fail(list(key), msg) if doc is not None else ConfigError(msg)
    return target


# names Windows will not create as files, whatever the extension
_RESERVED_FILE_NAMES = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(10)), *(f"LPT{i}" for i in range(10))}
# table file stems the runner writes itself: the full-data subset and the phase profile
_RESERVED_TABLES = {"all": "the subset of the full data, 'all'", "phase_profile": "the phase profile table"}


def _slug(value: Any) -> str:
    """A file name stem from a label: letters, digits, ``_ . -`` only, no leading dot, never empty
    or a name Windows reserves. Two labels can share a slug; :func:`_check_unique_slugs` refuses
    that."""
    slug = _SAFE_NAME.sub("_", str(value)).strip("._") or "_"
    return "_" + slug if slug.split(".")[0].upper() in _RESERVED_FILE_NAMES else slug


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
        slug = _slug(label)
        other = seen.get(slug.casefold())
        if other is None:
            seen[slug.casefold()] = (label, key)
            continue
        other_label, other_key = other
        if other_key is None:
            clash = f"{other_label} (a reserved name)"
        else:
            line = line_of(doc.root, list(other_key))
            clash = f"{other_label!r} (key '{'.'.join(map(str, other_key))}'" + (f", line {line})" if line else ")")
        raise doc.fail(list(key or []), f"{what} {label!r} gives the output file name {slug!r}, as does {clash}; "
                                        "rename one of them")


def _spec_entries(cfg: Mapping[str, Any]) -> list[tuple[str, list[str | int]]]:
    return [(spec["name"], ["specifications", i, "name"]) for i, spec in enumerate(cfg.get("specifications") or [])]


# -- data -------------------------------------------------------------------------------------
_STATE: dict[str, Any] = {}


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


def _subset(panel: Any, where: Mapping[str, Sequence[Any]]) -> Any:
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


def _panel_hash(panel: Any) -> str:
    h = hashlib.sha256()
    for name in ("enterprise", "enterprise_year", "manager", "cluster_year", "rct_assignment", "deflator"):
        df = panel.get(name)
        if df is None:
            continue
        h.update(name.encode())
        h.update(",".join(map(str, df.columns)).encode())
        h.update(pd.util.hash_pandas_object(df.astype(str), index=False).to_numpy().tobytes())
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


# -- jobs ---------------------------------------------------------------------------------------
def _jsonable(value: Any) -> Any:
    """``value`` as JSON data: numpy scalars to Python, sequences to lists, missing to None; other
    objects to their text."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int | float):
        return value.item() if hasattr(value, "item") else value
    if hasattr(value, "dtype") and getattr(value, "ndim", 1) == 0:  # numpy scalar
        return _jsonable(value.item())
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple) or (hasattr(value, "tolist") and hasattr(value, "ndim")):
        return [_jsonable(v) for v in (value.tolist() if hasattr(value, "tolist") else value)]
    if value is pd.NA or value is pd.NaT:
        return None
    return str(value)


# dtypes a cached table may declare; anything else comes back as object
_FRAME_DTYPES = {"float64", "int64", "bool", "object", "string", "Int64", "Float64", "boolean"}


def _frame_to_json(df: pd.DataFrame) -> dict[str, Any]:
    cols = [df.iloc[:, j] for j in range(df.shape[1])]
    plain = isinstance(df.index, pd.RangeIndex) and df.index.start == 0 and df.index.step == 1
    return {"columns": [str(c) for c in df.columns], "dtypes": [str(c.dtype) for c in cols],
            "data": [[_jsonable(v) for v in c.tolist()] for c in cols],
            "index": None if plain else [_jsonable(v) for v in df.index.tolist()]}


def _frame_from_json(obj: Mapping[str, Any]) -> pd.DataFrame:
    columns, dtypes, data = list(obj["columns"]), list(obj["dtypes"]), list(obj["data"])
    if not (len(columns) == len(dtypes) == len(data)):
        raise ValueError("table with mismatched columns")
    series = []
    for values, dtype in zip(data, dtypes, strict=True):
        try:
            series.append(pd.Series(values, dtype=dtype if dtype in _FRAME_DTYPES else object))
        except (TypeError, ValueError):
            series.append(pd.Series(values, dtype=object))
    df = pd.concat(series, axis=1, ignore_index=True) if series else pd.DataFrame()
    df.columns = pd.Index(columns, dtype=object)
    if obj.get("index") is not None:
        df.index = pd.Index(obj["index"])
    return df


def _result_state(res: Any) -> dict[str, Any]:
    """A Result as JSON data (its numbers exactly: floats are written with ``repr``)."""
    vi, audit = res.vcov_info, res.audit
    cov = res.cov
    return {
        "params": {"index": [str(t) for t in res.params.index], "values": [float(v) for v in res.params]},
        "cov": {"index": [str(t) for t in cov.index], "columns": [str(t) for t in cov.columns],
                "values": cov.to_numpy(dtype=float).tolist()},
        "nobs": int(res.nobs),
        "vcov_info": {"type": vi.type, "ssc": vi.ssc, "cluster_vars": list(vi.cluster_vars),
                      "n_clusters": [int(n) for n in vi.n_clusters],
                      "df_resid": None if vi.df_resid is None else float(vi.df_resid),
                      "details": _jsonable(dict(vi.details))},
        "formula": res.formula, "model": res.model, "engine": res.engine,
        "audit": {"n_input": int(audit.n_input), "dropped": {str(k): int(v) for k, v in audit.dropped.items()},
                  "collinear": [str(c) for c in audit.collinear], "notes": [str(n) for n in audit.notes]},
        "data_hash": res.data_hash, "groups": {str(k): int(v) for k, v in res.groups.items()},
        "stats": {str(k): _jsonable(v) for k, v in res.stats.items() if isinstance(v, int | float)},
    }


def _rebuild(state: Mapping[str, Any]) -> Any:
    """The Result of :func:`_result_state`'s data."""
    from cluster_econ.estimate.result import Audit, Result, VcovInfo

    vi, audit = state["vcov_info"], state["audit"]
    return Result(
        params=pd.Series(state["params"]["values"], index=state["params"]["index"], dtype=float),
        cov=pd.DataFrame(state["cov"]["values"], index=state["cov"]["index"], columns=state["cov"]["columns"],
                         dtype=float),
        nobs=int(state["nobs"]),
        vcov_info=VcovInfo(type=str(vi["type"]), ssc=str(vi["ssc"]), cluster_vars=tuple(vi["cluster_vars"]),
                           n_clusters=tuple(int(n) for n in vi["n_clusters"]), df_resid=vi["df_resid"],
                           details={k: tuple(v) if isinstance(v, list) else v for k, v in vi["details"].items()}),
        formula=str(state["formula"]), model=str(state["model"]), engine=str(state["engine"]),
        audit=Audit(n_input=int(audit["n_input"]), dropped=dict(audit["dropped"]),
                    collinear=tuple(audit["collinear"]), notes=tuple(audit["notes"])),
        data_hash=str(state["data_hash"]), groups=dict(state["groups"]), stats=dict(state["stats"]))


def _encode_state(state: Mapping[str, Any]) -> str:
    """A job's state as canonical JSON (tables as columns of values)."""
    out = {k: (_frame_to_json(v) if isinstance(v, pd.DataFrame) else _jsonable(v)) for k, v in state.items()
           if k != "seconds"}
    return json.dumps(out, sort_keys=True, separators=(",", ":"), allow_nan=True)


def _decode_state(text: str | bytes) -> dict[str, Any]:
    """The state of :func:`_encode_state`; raises ValueError/KeyError/TypeError on malformed data."""
    state = json.loads(text)
    if not isinstance(state, dict) or not isinstance(state.get("warnings", []), list):
        raise ValueError("a cached job state must be a JSON object")
    if state.get("error") is None:
        if "tidy" not in state or not ("result" in state or "row" in state):
            raise ValueError("cached job state without its results")
        state["tidy"] = _frame_from_json(state["tidy"])
        if "result" in state:
            _rebuild(state["result"])  # checks that it is a complete Result
        elif not isinstance(state["row"], dict):
            raise ValueError("cached proposition row must be a mapping")
    elif not isinstance(state["error"], str):
        raise ValueError("cached error must be text")
    return state


# -- cache authentication -------------------------------------------------------------------------
_SECRET_BYTES = 32
_MAX_CACHE_FILE = 256 * 2**20  # bytes; a larger file in the cache folder is not read


def cache_key_path() -> Path:
    """Where the per-user cache secret lives: ``$XDG_CACHE_HOME/cluster_econ/cache.key`` (default
    ``~/.cache``), outside any output folder."""
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "cluster_econ" / "cache.key"


def _cache_secret() -> tuple[bytes | None, str]:
    """The per-user secret (created on first use: 32 random bytes, mode 0600), or None and why not."""
    path = cache_key_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not path.exists():
            # write a complete key under a private name, then link it into place: a concurrent run
            # sees either no key or the whole key, and the first link wins
            tmp = path.with_name(f".cache.key.{os.getpid()}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0), 0o600)
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(os.urandom(_SECRET_BYTES))
                    fh.flush()
                    os.fsync(fh.fileno())
                with contextlib.suppress(FileExistsError):
                    os.link(tmp, path)
            finally:
                tmp.unlink(missing_ok=True)
        st = os.lstat(path)
        if not stat.S_ISREG(st.st_mode) or st.st_size != _SECRET_BYTES:
            return None, f"cache not used: {path} is not a {_SECRET_BYTES}-byte regular file"
        if os.name == "posix" and (st.st_mode & 0o077 or st.st_uid != os.getuid()):
            return None, f"cache not used: {path} must belong to you and be readable by you only (mode 0600)"
        return path.read_bytes(), ""
    except OSError as exc:
        return None, f"cache not used: cannot create or read the cache key {path}: {exc.strerror or exc}"


def _mac(secret: bytes, key: str, payload: bytes) -> str:
    return hmac.new(secret, key.encode("ascii") + b"\n" + payload, hashlib.sha256).hexdigest()


def _cache_read(path: Path, key: str, secret: bytes) -> dict[str, Any] | None:
    """The state cached at ``path``: None when there is no such file; raises
    :class:`_RejectedCacheError` (after deleting the file) when it is not a regular file (links,
    devices and pipes are never opened), its MAC does not verify or it does not decode."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    try:
        if not stat.S_ISREG(st.st_mode) or st.st_size > _MAX_CACHE_FILE:
            raise ValueError("not a regular file of a sensible size")
        blob = path.read_bytes()
        mac, sep, payload = blob.partition(b"\n")
        if not sep or not hmac.compare_digest(mac, _mac(secret, key, payload).encode("ascii")):
            raise ValueError("MAC does not verify")
        return _decode_state(payload)
    except (OSError, ValueError, KeyError, TypeError, AttributeError, IndexError):
        with contextlib.suppress(OSError):
            path.unlink()
        raise _RejectedCacheError from None


class _RejectedCacheError(Exception):
    """A cache file that is not this user's cluster_econ output (or is damaged)."""


def _cache_write(path: Path, key: str, secret: bytes, payload: str) -> None:
    data = payload.encode("utf-8")
    atomic_write(path, _mac(secret, key, data).encode("ascii") + b"\n" + data)


def _estimate(spec: Mapping[str, Any], frame: pd.DataFrame) -> Any:
    """One custom specification; every estimator the configuration can name is deterministic."""
    from cluster_econ import estimate

    est = spec["estimator"]
    vcov = spec.get("vcov", "iid")
    if est in ("att_gt", "lee_bounds", "ancova"):  # evaluation estimators: see report/evaluation.py
        from cluster_econ.report.evaluation import estimate_evaluation
        return estimate_evaluation(spec, frame)
    if spec.get("options"):
        from cluster_econ.report.evaluation import estimate_evaluation
        return estimate_evaluation(spec, frame, _estimate({k: v for k, v in spec.items() if k != "options"}, frame))
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


def _run_job(job: Mapping[str, Any]) -> dict[str, Any]:
    """Run one (subset, task) job in a worker; returns a picklable state (never raises)."""
    import warnings

    t0 = time.perf_counter()
    try:
        panel = _STATE.get(("subset", job["subset"]))
        if panel is None:
            panel = _subset(_STATE["panel"], job["where"]) if job["where"] else _STATE["panel"]
            _STATE[("subset", job["subset"])] = panel
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if job["kind"] == "spec":
                frame = _STATE.get(("frame", job["subset"]))
                if frame is None:
                    frame = analysis_frame(panel)
                    _STATE[("frame", job["subset"])] = frame
                res = _estimate(job["task"], frame)
                state = {"result": _result_state(res), "tidy": res.tidy()}
            else:
                from cluster_econ.hypotheses import prepare, test

                hdata = _STATE.get(("hdata", job["subset"]))
                if hdata is None:  # prepared once per subset and process, shared by the propositions
                    hdata = prepare(panel, phases="column")
                    _STATE[("hdata", job["subset"])] = hdata
                seeded = {"options": {"seed": job["seed"]}} if job["seed"] is not None else {}
                hr = test(panel, job["task"]["id"], data=hdata, **seeded)
                state = {"row": {k: (v if isinstance(v, str | int | float) else str(v))
                                 for k, v in hr.row().items()},
                         "tidy": hr.tidy(), "verdict": str(hr.verdict)}
        state["warnings"] = sorted({str(w.message) for w in caught})
        state["error"] = None
    except Exception as exc:  # a failing job is reported, the others still run
        state = {"error": f"{type(exc).__name__}: {exc}"}
    state["seconds"] = time.perf_counter() - t0
    return state


def _init_worker(cfg: Mapping[str, Any], base: str, method: str | None) -> None:
    """Under the spawn start method, load the data once per worker (fork inherits them)."""
    if "panel" not in _STATE:
        _STATE["panel"] = _phased(_load_panel(cfg, Path(base)), method)[0]


# -- summary ------------------------------------------------------------------------------------
@dataclass
class ReportSummary:
    """What a batch run did.

    ``cache_rejected`` counts cache files whose MAC did not verify (recomputed); ``cache_note``
    says why the cache was not used, if it was not.

    ``failed`` and ``warnings`` hold ``(subset, task, message)``: the error of each failed job, and
    each distinct warning a job raised (few clusters, convergence, ...), also shown in the report.
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

    @property
    def n_failed(self) -> int:
        return len(self.failed)

    def text(self) -> str:
        lines = [f"{self.jobs} jobs: {self.computed} computed, {self.cache_hits} from the cache, "
                 f"{self.n_failed} failed ({self.seconds:.1f} s)"]
        if self.cache_rejected:
            lines.append(f"{self.cache_rejected} cache file(s) rejected (not written by your cluster_econ, "
                         "or damaged) and recomputed")
        if self.cache_note:
            lines.append(self.cache_note)
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
def run_report(config: str | Path, out: str | Path, workers: int | None = None,
               progress: bool = True) -> ReportSummary:
    """Run a batch report (see the module docstring) and write it into ``out``.

    Returns
    -------
    ReportSummary
        Jobs, cache hits, computed jobs, failures (subset, task, error) and files written.
    """
    from tqdm import tqdm

    from cluster_econ.schema import SCHEMA_VERSION

    t0 = time.perf_counter()
    cfg, doc = load_config(config)
    base = Path(doc.path).parent
    out_dir = Path(out)
    summary = ReportSummary(out=out_dir.resolve())
    seed = int(cfg["seed"]) if cfg.get("seed") is not None else None

    panel, method = _phased(_load_panel(cfg, base), (cfg.get("phases") or {}).get("method"))
    entries = _subsets(panel, cfg)
    # every subset's tables are tables/<slug>.<ext>: the slugs (with the values a 'by' split found
    # in the data) must differ, and every file name written stays inside the output folder
    _check_unique_slugs(doc, [(name, key) for name, _, key in entries[1:]], "subset", _RESERVED_TABLES)
    subsets = [(name, where) for name, where, _ in entries]
    for name, _, key in entries:
        _inside(out_dir, "tables", f"{_slug(name)}.tex", doc=doc, key=key or [])
    for name, key in _spec_entries(cfg):
        _inside(out_dir, "figures", f"spec_{_slug(name)}.png", doc=doc, key=key)
    out_dir.mkdir(parents=True, exist_ok=True)
    _STATE.clear()
    _STATE["panel"] = panel
    tasks: list[tuple[str, dict[str, Any]]] = [("spec", dict(s)) for s in cfg.get("specifications") or []]
    tasks += [("proposition", {"id": p}) for p in cfg.get("propositions") or []]
    hashes = {}
    for name, where in subsets:
        sub = _subset(panel, where) if where else panel
        _STATE[("subset", name)] = sub
        hashes[name] = _panel_hash(sub)

    cache_dir = _inside(out_dir, ".cache")
    cache_dir.mkdir(exist_ok=True)
    secret, summary.cache_note = _cache_secret()
    jobs, results = [], {}
    for sname, where in subsets:
        for kind, task in tasks:
            key = _job_key(hashes[sname], kind, task, method, seed)
            job = {"subset": sname, "where": where, "kind": kind, "task": task,
                   "seed": seed if kind == "proposition" else None, "key": key}
            jobs.append(job)
            if secret is None or key in results:
                continue
            try:
                state = _cache_read(cache_dir / f"{key}.json", key, secret)
            except _RejectedCacheError:
                summary.cache_rejected += 1
                continue
            if state is not None:
                results[key] = state
                summary.cache_hits += 1
    summary.jobs = len(jobs)
    todo = [j for j in jobs if j["key"] not in results]
    n_workers = max(1, min(int(workers or cfg.get("workers") or 2), 2, len(todo) or 1))
    if n_workers > 1:
        # build each subset's analysis frame once, before the workers fork (they inherit it)
        for sname in dict.fromkeys(j["subset"] for j in todo if j["kind"] == "spec"):
            with contextlib.suppress(Exception):  # the job itself reports the error
                _STATE[("frame", sname)] = analysis_frame(_STATE[("subset", sname)])
    bar = tqdm(total=len(jobs), initial=len(jobs) - len(todo), desc="report", unit="job",
               disable=not progress, file=sys.stderr)
    if todo:
        if n_workers == 1:
            for job in todo:
                results[job["key"]] = _run_job(job)
                bar.update(1)
        else:
            methods = multiprocessing.get_all_start_methods()
            ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
            with ProcessPoolExecutor(max_workers=n_workers, mp_context=ctx, initializer=_init_worker,
                                     initargs=(cfg, str(base), method)) as pool:
                futures = {pool.submit(_run_job, job): job for job in todo}
                for fut in as_completed(futures):
                    job = futures[fut]
                    try:
                        results[job["key"]] = fut.result()
                    except Exception as exc:  # the worker itself died
                        results[job["key"]] = {"error": f"worker failed: {type(exc).__name__}: {exc}",
                                               "seconds": 0.0}
                    bar.update(1)
        for job in todo:
            # fresh results take the same JSON round trip as cached ones: identical reports either way
            payload = _encode_state(results[job["key"]])
            results[job["key"]] = _decode_state(payload)
            if secret is not None and results[job["key"]].get("error") is None:
                _cache_write(cache_dir / f"{job['key']}.json", job["key"], secret, payload)
        summary.computed = len(todo)
    bar.close()
    for job in jobs:
        err = results[job["key"]].get("error")
        if err:
            summary.failed.append((job["subset"], _task_label(job), err))
        summary.warnings += [(job["subset"], _task_label(job), w) for w in results[job["key"]].get("warnings", ())]

    outputs = cfg.get("outputs") or list(DEFAULT_OUTPUTS)
    manifest = {
        "title": cfg.get("title", "cluster_econ report"), "data": cfg["data"],
        "data_hash": hashes["all"], "schema_version": SCHEMA_VERSION, "package_versions": _versions(),
        "seed": seed, "phase_method": method, "configuration": cfg,
        "synthetic": bool(panel.metadata.get("synthetic")),
    }
    summary.files += _write_tables(out_dir, jobs, results, subsets, outputs)
    profile = None
    if cfg.get("phase_profile", True):
        try:
            from cluster_econ.tables.phase_profile import phase_profile_table

            profile = phase_profile_table(panel, title="Phase profile of the data (Otsuka and Sonobe, Table 1, "
                                                       "measured)")
            for ext in (_TABLE_EXT[o] for o in outputs if o in _TABLE_EXT):
                summary.files.append(profile.save(_inside(out_dir, "tables", f"phase_profile.{ext}")))
        except Exception as exc:  # the profile is descriptive: its failure is reported, not fatal
            summary.failed.append(("all", "phase profile", f"{type(exc).__name__}: {exc}"))
    if "html" in outputs:
        text = _html_report(manifest, panel, subsets, jobs, results, out_dir, profile)
        summary.report = atomic_write(out_dir / "report.html", text)
        summary.files.append(summary.report)
    summary.files.append(atomic_write(out_dir / "manifest.json",
                                      json.dumps(manifest, indent=2, sort_keys=True, default=str)))
    summary.seconds = time.perf_counter() - t0
    _STATE.clear()  # free the data held for the workers
    return summary


def _spec_results(sname: str, jobs: Sequence[Mapping[str, Any]], results: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for job in jobs:
        if job["subset"] == sname and job["kind"] == "spec":
            state = results[job["key"]]
            if state.get("error") is None:
                out[job["task"]["name"]] = _rebuild(state["result"])
    return out


def _write_tables(out_dir: Path, jobs: Sequence[Mapping[str, Any]], results: Mapping[str, Any],
                  subsets: Sequence[tuple[str, Any]], outputs: Sequence[str]) -> list[Path]:
    from cluster_econ.tables import regression_table

    files: list[Path] = []
    exts = [_TABLE_EXT[o] for o in outputs if o in _TABLE_EXT]
    for sname, _ in subsets:
        res = _spec_results(sname, jobs, results)
        if not res:
            continue
        tab = regression_table(res, title=f"Specifications: {sname}", digits=3)
        for ext in exts:
            files.append(tab.save(_inside(out_dir, "tables", f"{_slug(sname)}.{ext}")))
    return files


def _figure_b64(fig: Any, out_dir: Path, name: str) -> str:
    from cluster_econ.figures import save

    (path,) = save(fig, _inside(out_dir, "figures", f"{name}.png"))
    try:
        import matplotlib.pyplot as plt

        plt.close(fig)
    except Exception:  # pragma: no cover - housekeeping
        pass
    return base64.b64encode(path.read_bytes()).decode("ascii")


def _timeline_html(panel: Any, out_dir: Path) -> str:
    """The first cluster's timeline with its phases shaded, as an embedded PNG."""
    from cluster_econ.figures import cluster_timeline

    cy = panel.with_cluster_year().cluster_year
    if cy is None or cy.empty:
        return ""
    first = sorted(cy["cluster_id"].astype(str).unique())[0]
    series = [c for c in ("n_firms", "n_entries", "n_exits", "price_index") if c in cy.columns and cy[c].notna().any()]
    fig = cluster_timeline(cy, first, series=series or None, title=f"{first}: firms, entry, exit and phases")
    b64 = _figure_b64(fig, out_dir, f"timeline_{_slug(first)}")
    esc = html.escape
    return (f'<figure><img alt="timeline of {esc(first)}" src="data:image/png;base64,{b64}">'
            f"<figcaption>Timeline of cluster {esc(first)} with its phases shaded</figcaption></figure>")


def _frame_html(df: pd.DataFrame, caption: str | None = None) -> str:
    """A DataFrame as an HTML table; every cell and header escaped."""
    esc = html.escape
    head = "".join(f"<th>{esc(str(c))}</th>" for c in df.columns)
    body = []
    for row in df.itertuples(index=False):
        cells = []
        for v in row:
            text = f"{v:.4g}" if isinstance(v, float) else ("" if v is None else str(v))
            cells.append(f"<td>{esc(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    return f'<table class="frame">{cap}<thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


_CSS = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:0.9em}
td,th{border-bottom:1px solid #ccc;padding:0.2em 0.6em;text-align:right}
caption{font-weight:bold;text-align:left}
.failed{background:#fde8e8;border-left:4px solid #c00;padding:0.5em 1em;margin:0.5em 0}
.warning{background:#fff8e1;border-left:4px solid #e0a800;padding:0.5em 1em;margin:0.5em 0}
.synthetic{background:#fff3cd;border-left:4px solid #b58900;padding:0.5em 1em}
pre{background:#f6f6f6;padding:0.6em;overflow-x:auto;font-size:0.85em}
figure img{max-width:100%}
"""


def _html_report(manifest: Mapping[str, Any], panel: Any, subsets: Sequence[tuple[str, Any]],
                 jobs: Sequence[Mapping[str, Any]], results: Mapping[str, Any], out_dir: Path,
                 profile: Any = None) -> str:
    from cluster_econ.figures import coefficient_plot
    from cluster_econ.tables import regression_table

    esc = html.escape
    title = str(manifest["title"])
    parts = [f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{esc(title)}</title>"
             f"<style>{_CSS}</style></head><body>", f"<h1>{esc(title)}</h1>"]
    if manifest.get("synthetic"):
        parts.append('<p class="synthetic">SYNTHETIC DATA: simulated by cluster_econ.simulate, not a real '
                     "survey.</p>")
    failed = [(j, results[j["key"]]["error"]) for j in jobs if results[j["key"]].get("error")]
    if profile is None and manifest["configuration"].get("phase_profile") is not False:
        failed.append(({"subset": "all", "kind": "spec", "task": {"name": "phase profile"}},
                       "the phase profile could not be computed"))
    parts.append(f"<p>{len(jobs)} jobs ({len(subsets)} data subsets), {len(failed)} failed.</p>")
    if failed:
        parts.append('<section id="failures"><h2>Failed specifications</h2>')
        for job, err in failed:
            parts.append(f'<div class="failed"><b>{esc(job["subset"])} / {esc(_task_label(job))}</b>: '
                         f"{esc(err)}</div>")
        parts.append("</section>")
    warned = [(j, results[j["key"]]["warnings"]) for j in jobs if results[j["key"]].get("warnings")]
    if warned:
        parts.append('<section id="warnings"><h2>Warnings</h2>')
        for job, messages in warned:
            items = "".join(f"<li>{esc(m)}</li>" for m in messages)
            parts.append(f'<div class="warning"><b>{esc(job["subset"])} / {esc(_task_label(job))}</b>'
                         f"<ul>{items}</ul></div>")
        parts.append("</section>")

    # data and row audit
    parts.append('<section id="data"><h2>Data</h2>')
    parts.append(f"<pre>{esc(panel.summary())}</pre>")
    audit = panel.audit_summary()
    if len(audit):
        parts.append(_frame_html(audit, "Row audit: rows read, added, kept, dropped and rejected"))
    if profile is not None:
        parts.append(profile.to_html())
    parts.append("</section>")

    # specifications by subset
    specs = [j for j in jobs if j["kind"] == "spec"]
    if specs:
        parts.append('<section id="specifications"><h2>Specifications</h2>')
        for sname, _ in subsets:
            res = _spec_results(sname, jobs, results)
            parts.append(f"<h3>Subset: {esc(sname)}</h3>")
            if res:
                parts.append(regression_table(res, title=f"Specifications: {sname}", digits=3).to_html())
                for name, r in res.items():
                    parts.append(_frame_html(r.audit.to_frame(), f"Row audit: {name} ({sname})"))
            for job in specs:
                if job["subset"] == sname and results[job["key"]].get("error"):
                    parts.append(f'<div class="failed">{esc(_task_label(job))}: '
                                 f'{esc(results[job["key"]]["error"])}</div>')
        parts.append("</section>")
        # one figure per specification: its first slope across subsets
        parts.append('<section id="figures"><h2>Figures</h2>')
        parts.append(_timeline_html(panel, out_dir))
        for spec in dict.fromkeys(j["task"]["name"] for j in specs):
            by_subset = {}
            for sname, _ in subsets:
                r = _spec_results(sname, jobs, results).get(spec)
                if r is not None:
                    by_subset[sname] = r
            terms = [t for r in by_subset.values() for t in r.params.index if t != "Intercept"]
            if not terms:
                continue
            term = terms[0]
            by_subset = {k: r for k, r in by_subset.items() if term in r.params.index}
            fig = coefficient_plot(by_subset, term=term, by="subset", title=f"{spec}: {term}")
            b64 = _figure_b64(fig, out_dir, f"spec_{_slug(spec)}")
            parts.append(f'<figure><img alt="{esc(spec)}: {esc(term)} by subset" '
                         f'src="data:image/png;base64,{b64}"><figcaption>{esc(spec)}: coefficient of '
                         f"{esc(term)} by subset (95% CI)</figcaption></figure>")
        parts.append("</section>")

    # propositions
    props = [j for j in jobs if j["kind"] == "proposition"]
    if props and not specs:
        parts.append('<section id="figures"><h2>Figures</h2>' + _timeline_html(panel, out_dir) + "</section>")
    if props:
        parts.append('<section id="propositions"><h2>Propositions</h2>')
        rows = []
        for job in props:
            st = results[job["key"]]
            if st.get("error"):
                continue
            row = dict(st["row"])
            rows.append({"subset": job["subset"], "id": row.get("id"), "verdict": row.get("verdict"),
                         "test": row.get("test"), "estimate": row.get("estimate"),
                         "p_value": row.get("p_value"), "message": row.get("message")})
        if rows:
            parts.append(_frame_html(pd.DataFrame(rows), "Verdicts by subset"))
        for job in props:
            st = results[job["key"]]
            if st.get("error") is None and len(st["tidy"]):
                parts.append(_frame_html(st["tidy"], f"{job['task']['id']} estimates ({job['subset']})"))
        parts.append("</section>")

    # manifest
    parts.append('<section id="manifest"><h2>Manifest</h2>')
    man = pd.DataFrame([
        {"item": "data", "value": manifest["data"]},
        {"item": "data hash", "value": manifest["data_hash"]},
        {"item": "schema version", "value": manifest["schema_version"]},
        {"item": "seed", "value": "none (each proposition's default)" if manifest["seed"] is None
         else str(manifest["seed"])},
        {"item": "phase method", "value": manifest["phase_method"]},
        *({"item": k, "value": v} for k, v in manifest["package_versions"].items()),
    ])
    parts.append(_frame_html(man, "Manifest"))
    parts.append("<h3>Configuration</h3><pre>"
                 + esc(json.dumps(manifest["configuration"], indent=2, sort_keys=True, default=str)) + "</pre>")
    parts.append("</section></body></html>")
    return "\n".join(parts) + "\n"

