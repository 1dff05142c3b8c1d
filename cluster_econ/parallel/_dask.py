"""Dask distributed executor of :mod:`cluster_econ.parallel`.

The shared object is scattered once to every worker (``broadcast=True``; a worker that joins
later fetches it from a peer); chunks of tasks are submitted with unique keys; a worker that dies
is handled by the scheduler, which reruns the tasks it was running or holding (and gives up on a
task after its ``allowed-failures``, which then fails here with ``KilledWorker``). The scheduler's
``remove-worker`` events for this run's keys are reported in ``TaskRun.events``.

Needs the optional ``distributed`` package (``pip install "cluster-econ[dask]"``), imported only
when a scheduler is given.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from cluster_econ import parallel as _api
from cluster_econ.errors import ClusterEconError, MissingDependencyError

EXTRA_HINT = 'pip install "cluster-econ[dask]"'


def _distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise MissingDependencyError(
            "running on a Dask cluster needs the optional package 'distributed' (not installed); "
            f"install it with: {EXTRA_HINT}") from None
    return distributed


def normalize_address(scheduler: str) -> str:
    """``dask://host:port`` and ``host:port`` become ``tcp://host:port``; other schemes stay."""
    address = scheduler.strip()
    if address.startswith("dask://"):
        address = "tcp://" + address[len("dask://"):]
    elif "://" not in address:
        address = "tcp://" + address
    if not re.fullmatch(r"(tcp|tls|inproc|ucx|ws|wss)://[^\s/]+(/.*)?", address):
        raise ClusterEconError(f"not a Dask scheduler address: {scheduler!r} (expected tcp://host:8786 or "
                               "dask://host:8786)")
    return address


def connect(scheduler: Any, timeout: str = "20s") -> tuple[Any, bool]:
    """A ``distributed.Client`` for ``scheduler`` (an address or a Client) and whether we opened it
    (and so must close it)."""
    distributed = _distributed()
    if isinstance(scheduler, distributed.Client):
        return scheduler, False
    if not isinstance(scheduler, str):
        raise TypeError(f"scheduler must be an address such as 'tcp://host:8786' or a distributed.Client, "
                        f"not {type(scheduler).__name__}")
    address = normalize_address(scheduler)
    try:
        client = distributed.Client(address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise ClusterEconError(f"cannot connect to the Dask scheduler at {address}: {exc}") from None
    return client, True


def _key_prefix(desc: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", f"cluster_econ-{desc}")[:60] + "-" + uuid.uuid4().hex[:12]


def run_dask(fn: Callable[..., Any], calls: Sequence[Any], scheduler: Any, shared: Any, chunksize: int | None,
             tick: Callable[[int], None], desc: str, blas_threads: int | None) -> _api.TaskRun:
    distributed = _distributed()
    client, owned = connect(scheduler)
    try:
        info = client.scheduler_info().get("workers", {})
        n_workers = len(info)
        threads = sum(int(w.get("nthreads", 1)) for w in info.values()) or 1
        size = _api._chunksize(chunksize, len(calls), threads)
        ref: Any = _api._Direct(None)
        if shared is not None:
            ref = client.scatter([shared], broadcast=True, hash=False)[0]
        prefix = _key_prefix(desc)
        chunks = [list(calls[i:i + size]) for i in range(0, len(calls), size)]
        futures = {client.submit(_api._run_chunk, fn, chunk, ref, blas=blas_threads, key=f"{prefix}-{ci}",
                                 pure=False): ci
                   for ci, chunk in enumerate(chunks)}
        results: dict[int, Any] = {}
        for fut in distributed.as_completed(list(futures), loop=client.loop):
            ci = futures[fut]
            try:
                out = fut.result()
            except Exception as exc:  # KilledWorker, or the function could not be loaded on the worker
                out = [(i, _api.failure_of(i, exc)) for i, _, _ in chunks[ci]]
            for i, value in out:
                results[i] = value
            tick(len(out))
        keys = {str(fut.key): ci for fut, ci in futures.items()}
        events, rerun_chunks = _worker_losses(client, keys)
        for fut in futures:
            fut.release()
        reruns = sum(len(chunks[ci]) for ci in rerun_chunks)
        return _api.TaskRun([results[i] for i in range(len(calls))], f"dask {client.scheduler.address}",
                            n_workers, reruns, events)
    finally:
        if owned:
            client.close()


def _worker_losses(client: Any, keys: dict[Any, int]) -> tuple[list[str], set[int]]:
    """Workers the scheduler removed while holding or running this run's tasks, in words, and the
    chunks it had to run again."""
    try:
        log = client.run_on_scheduler(_removals)
    except Exception:  # pragma: no cover - a scheduler without cluster_econ, or an older one
        return [], set()
    events, again = [], set()
    for msg in log:
        running = [keys[k] for k in msg.get("processing-tasks", ()) if k in keys]
        held = [keys[k] for k in msg.get("lost-computed-tasks", ()) if k in keys]
        if not running and not held:
            continue
        again.update(running)
        again.update(held)
        how = "as expected" if msg.get("expected") else "unexpectedly"
        events.append(f"Dask worker {msg.get('worker')} left {how} while running {len(running)} chunk(s) of "
                      f"tasks and holding {len(held)} finished one(s); the scheduler reran them on other workers")
    return events, again


def _removals(dask_scheduler: Any = None) -> list[dict[str, Any]]:
    """On the scheduler: its ``remove-worker`` events as plain data (``Client.get_events`` cannot
    send the whole log, which holds objects that do not serialize)."""
    out = []
    for _, msg in dask_scheduler.get_events("all"):
        if isinstance(msg, dict) and msg.get("action") == "remove-worker":
            out.append({"worker": str(msg.get("worker")), "expected": bool(msg.get("expected")),
                        "processing-tasks": [str(k) for k in msg.get("processing-tasks", ())],
                        "lost-computed-tasks": [str(k) for k in msg.get("lost-computed-tasks", ())]})
    return out
