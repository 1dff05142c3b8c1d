"""Job states as JSON, and the authenticated cache of batch reports (``DIR/.cache``).

A job's state (a Result's numbers, tidy tables, a proposition's verdict row, warnings, or an
error with its traceback) is encoded as canonical JSON: numbers exactly (floats with ``repr``),
tables as columns of values. Fresh results pass through the same encoding as cached ones, so a
report is byte-identical whether its results came from the cache or from any executor.

A cache file is that JSON, never a pickle, so reading one cannot run code; it is authenticated
with an HMAC-SHA256 of its cache key and content, keyed by a per-user secret kept outside the
output folder (``$XDG_CACHE_HOME/cluster_econ/cache.key``, by default
``~/.cache/cluster_econ/cache.key``: 32 bytes from :func:`os.urandom`, mode 0600, created on
first use). A file whose MAC does not verify is deleted and recomputed.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import itertools
import json
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd


def jsonable(value: Any) -> Any:
    """``value`` as JSON data: numpy scalars to Python, sequences to lists, missing to None; other
    objects to their text."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int | float):
        return value.item() if hasattr(value, "item") else value
    if hasattr(value, "dtype") and getattr(value, "ndim", 1) == 0:  # numpy scalar
        return jsonable(value.item())
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple) or (hasattr(value, "tolist") and hasattr(value, "ndim")):
        return [jsonable(v) for v in (value.tolist() if hasattr(value, "tolist") else value)]
    if value is pd.NA or value is pd.NaT:
        return None
    return str(value)


# dtypes a cached table may declare; anything else comes back as object
_FRAME_DTYPES = {"float64", "int64", "bool", "object", "string", "Int64", "Float64", "boolean"}


def frame_to_json(df: pd.DataFrame) -> dict[str, Any]:
    cols = [df.iloc[:, j] for j in range(df.shape[1])]
    plain = isinstance(df.index, pd.RangeIndex) and df.index.start == 0 and df.index.step == 1
    return {"columns": [str(c) for c in df.columns], "dtypes": [str(c.dtype) for c in cols],
            "data": [[jsonable(v) for v in c.tolist()] for c in cols],
            "index": None if plain else [jsonable(v) for v in df.index.tolist()]}


def frame_from_json(obj: Mapping[str, Any]) -> pd.DataFrame:
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


def result_state(res: Any) -> dict[str, Any]:
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
                      "details": jsonable(dict(vi.details))},
        "formula": res.formula, "model": res.model, "engine": res.engine,
        "audit": {"n_input": int(audit.n_input), "dropped": {str(k): int(v) for k, v in audit.dropped.items()},
                  "collinear": [str(c) for c in audit.collinear], "notes": [str(n) for n in audit.notes]},
        "data_hash": res.data_hash, "groups": {str(k): int(v) for k, v in res.groups.items()},
        "stats": {str(k): jsonable(v) for k, v in res.stats.items() if isinstance(v, int | float)},
    }


def rebuild_result(state: Mapping[str, Any]) -> Any:
    """The Result of :func:`result_state`'s data."""
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


def encode_state(state: Mapping[str, Any]) -> str:
    """A job's state as canonical JSON (tables as columns of values)."""
    out = {k: (frame_to_json(v) if isinstance(v, pd.DataFrame) else jsonable(v)) for k, v in state.items()
           if k != "seconds"}
    return json.dumps(out, sort_keys=True, separators=(",", ":"), allow_nan=True)


def decode_state(text: str | bytes) -> dict[str, Any]:
    """The state of :func:`encode_state`; raises ValueError/KeyError/TypeError on malformed data."""
    state = json.loads(text)
    if not isinstance(state, dict) or not isinstance(state.get("warnings", []), list):
        raise ValueError("a cached job state must be a JSON object")
    if state.get("error") is None:
        if "tidy" not in state or not ("result" in state or "row" in state):
            raise ValueError("cached job state without its results")
        state["tidy"] = frame_from_json(state["tidy"])
        if "result" in state:
            rebuild_result(state["result"])  # checks that it is a complete Result
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


def cache_secret() -> tuple[bytes | None, str]:
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


def cache_read(path: Path, key: str, secret: bytes) -> dict[str, Any] | None:
    """The state cached at ``path``: None when there is no such file; raises
    :class:`RejectedCacheError` (after deleting the file) when it is not a regular file (links,
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
        return decode_state(payload)
    except (OSError, ValueError, KeyError, TypeError, AttributeError, IndexError):
        with contextlib.suppress(OSError):
            path.unlink()
        raise RejectedCacheError from None


class RejectedCacheError(Exception):
    """A cache file that is not this user's cluster_econ output (or is damaged)."""


_TMP_COUNTER = itertools.count()


def cache_write(path: Path, key: str, secret: bytes, payload: str) -> None:
    """Write a cache file: a temporary file renamed into place, so a reader sees the whole file or
    none. Not synced to disk (unlike the report's outputs): a cache file lost in a crash, or torn,
    fails its MAC and is recomputed, and skipping the sync keeps the per-job cost low."""
    data = payload.encode("utf-8")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    while True:  # a fresh name, never a file (or link) someone placed there
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{next(_TMP_COUNTER)}.tmp")
        try:
            fd = os.open(tmp, flags, 0o600)
        except FileExistsError:
            continue
        break
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(_mac(secret, key, data).encode("ascii") + b"\n" + data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise

